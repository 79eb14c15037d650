/*
 * auth: who a peer is, from its certificate (proto/ckpt/v1/auth.proto).
 *
 * Three parts, each usable alone:
 *  - roles: the SAN URI "ckpt:node:<id>", "ckpt:nas", "ckpt:manager",
 *    "ckpt:operator" to a struct auth_id and back (pure functions);
 *  - proofs: a process's own credentials (certificate chain and key,
 *    auth_cred) sign a challenge; a verifier (the CA, auth_verifier)
 *    checks a chain, a signature and the role (OpenSSL's libcrypto);
 *  - the pipe table: what the rpc server knows of each connection (its
 *    pending nonce, its proven identity), from the connection's start to
 *    its end.
 *
 * Threads: a cred and a verifier are read-only once made and may be used
 * by any number of threads; the pipe table has its own mutex.
 * Errors are negative errno values; functions that take err/errlen write a
 * one-line cause there. Nothing here logs.
 */
#ifndef CKPT_AUTH_H
#define CKPT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <protobuf-c/protobuf-c.h>

#include "key.h"

#define AUTH_NONCE_LEN 32
#define AUTH_CHAIN_MAX 4            /* certificates in a proof */
#define AUTH_CERT_MAX (16u << 10)   /* bytes of one DER certificate */
#define AUTH_SIG_MAX 1024u          /* bytes of a signature (RSA 8192) */
#define AUTH_LABEL "ckpt-auth-v1"   /* domain of the signed bytes (auth.proto) */
#define AUTH_SERVER_LABEL "ckpt-auth-v1-server" /* domain of a server's proof (1b) */
#define AUTH_URI_PREFIX "ckpt:"
/*
 * The SAN URI that marks an intermediate CA as a node CA: certificates
 * issued through one prove ckpt:node:<id> roles only (auth_verify()).
 */
#define AUTH_NODE_CA_URI "ckpt:node-ca"
/* "node:" + a node name + NUL: the longest identity string. */
#define AUTH_ID_MAX (5 + KEY_NAME_MAX + 1)
#define AUTH_ERR_MAX 256

enum auth_role {
	AUTH_ROLE_NODE = 1,
	AUTH_ROLE_NAS,
	AUTH_ROLE_MANAGER,
	AUTH_ROLE_OPERATOR,
};

/* Role masks, for tables of who may call what (rpc_server_config.rs_roles). */
#define AUTH_NODE (1u << AUTH_ROLE_NODE)
#define AUTH_NAS (1u << AUTH_ROLE_NAS)
#define AUTH_MANAGER (1u << AUTH_ROLE_MANAGER)
#define AUTH_OPERATOR (1u << AUTH_ROLE_OPERATOR)
#define AUTH_ANY (AUTH_NODE | AUTH_NAS | AUTH_MANAGER | AUTH_OPERATOR)

struct auth_id {
	enum auth_role ai_role;
	char ai_node[KEY_NAME_MAX + 1]; /* AUTH_ROLE_NODE: its node; otherwise "" */
};

/*
 * Reads one SAN URI of len bytes (not NUL-terminated). 0 and *ret_id for a
 * ckpt role; -ENOENT for a URI that is not "ckpt:..." (another scheme,
 * ignored); -EINVAL for a "ckpt:" URI that names no valid role (unknown
 * role, a node name key_name_check() refuses, anything after the role).
 */
int auth_role_parse(const char *uri, size_t len, struct auth_id *ret_id);
/* "node:n1", "nas", "manager", "operator" into buf (AUTH_ID_MAX bytes). */
void auth_id_str(const struct auth_id *id, char *buf, size_t len);
/* "operator, manager" for a mask, into buf. */
void auth_mask_str(unsigned mask, char *buf, size_t len);
/* Whether id is node `node`. */
bool auth_id_is_node(const struct auth_id *id, const char *node);

/*
 * The role of a DER certificate: its SAN URIs through auth_role_parse().
 * -EINVAL when it is not a certificate, -ENOENT when it has no ckpt role,
 * -EINVAL for a malformed one or more than one (a certificate has one role).
 */
int auth_cert_role(const uint8_t *der, size_t len, struct auth_id *ret_id, char *err,
    size_t errlen);

/* ---- this process's credentials ---- */

struct auth_cred;

/*
 * Reads cert_file (PEM: the process's certificate, then any intermediates)
 * and key_file (PEM private key, unencrypted) and checks that the key is
 * the certificate's. The certificate may have no ckpt role (a server's own
 * identity is then ""), but not two.
 */
int auth_cred_load(const char *cert_file, const char *key_file, struct auth_cred **ret_cred,
    char *err, size_t errlen);
void auth_cred_free(struct auth_cred *c);
/* The chain as DER, own certificate first: ProveRequest.chain. Valid while c lives. */
const ProtobufCBinaryData *auth_cred_chain(const struct auth_cred *c, size_t *ret_n);
/* The identity of c's certificate: "node:n1"..., "" when it has no role. */
const char *auth_cred_name(const struct auth_cred *c);

/*
 * The bytes a proof signs: AUTH_LABEL, 0x00, the nonce, the audience (no
 * terminator). buf holds at least auth_signed_len(audience_len) bytes.
 */
size_t auth_signed_len(size_t audience_len);
void auth_signed_bytes(const uint8_t nonce[AUTH_NONCE_LEN], const char *audience,
    size_t audience_len, uint8_t *buf);

/*
 * Signs for a Prove: sig has room for AUTH_SIG_MAX bytes, *ret_len is what
 * was written (ECDSA/SHA-256, RSA PKCS#1 v1.5/SHA-256 or Ed25519 by key type).
 */
int auth_sign(const struct auth_cred *c, const uint8_t nonce[AUTH_NONCE_LEN],
    const char *audience, size_t audience_len, uint8_t *sig, size_t *ret_len);

/*
 * The server's proof (auth.proto, step 1b): the bytes it signs are
 * AUTH_SERVER_LABEL, 0x00, the client's nonce, the server's nonce, the
 * audience (no terminator); buf holds auth_server_signed_len() bytes.
 */
size_t auth_server_signed_len(size_t audience_len);
void auth_server_signed_bytes(const uint8_t client_nonce[AUTH_NONCE_LEN],
    const uint8_t server_nonce[AUTH_NONCE_LEN], const char *audience, size_t audience_len,
    uint8_t *buf);
/* Signs a server's proof, as auth_sign() does a client's. */
int auth_sign_server(const struct auth_cred *c, const uint8_t client_nonce[AUTH_NONCE_LEN],
    const uint8_t server_nonce[AUTH_NONCE_LEN], const char *audience, size_t audience_len,
    uint8_t *sig, size_t *ret_len);
/* 32 fresh random bytes (a client's nonce): 0 or -EIO. */
int auth_nonce(uint8_t ret_nonce[AUTH_NONCE_LEN]);

/* ---- checking a peer's proof ---- */

struct auth_verifier;

/* Reads the CA certificates (PEM, one or more) from ca_file. */
int auth_verifier_new(const char *ca_file, struct auth_verifier **ret_v, char *err,
    size_t errlen);
void auth_verifier_free(struct auth_verifier *v);

/*
 * Checks a proof: chain (DER, own first, n at most AUTH_CHAIN_MAX) verifies
 * against v's CA at time `at` (0: now), sig verifies with chain[0]'s key
 * over auth_signed_bytes(nonce, audience), and chain[0] has exactly one
 * role, written to *ret_id; a role other than node is refused when a CA
 * of the verified path above chain[0] is a node CA (AUTH_NODE_CA_URI). -EPERM with the cause in err otherwise
 * ("certificate has expired", "signature does not verify"...), -ENOMEM.
 */
int auth_verify(const struct auth_verifier *v, const ProtobufCBinaryData *chain, size_t n,
    const uint8_t nonce[AUTH_NONCE_LEN], const char *audience, size_t audience_len,
    const uint8_t *sig, size_t sig_len, time_t at, struct auth_id *ret_id, char *err,
    size_t errlen);

/*
 * Checks a server's proof (auth.proto, step 1b) as auth_verify() checks a
 * client's: the chain against v's CA at `at`, the role and the node-CA
 * restriction, sig over auth_server_signed_bytes(), and, in addition, that
 * the role proven is exactly `audience` (what the server claimed). -EPERM
 * with the cause in err otherwise, -ENOMEM.
 */
int auth_verify_server(const struct auth_verifier *v, const ProtobufCBinaryData *chain, size_t n,
    const uint8_t client_nonce[AUTH_NONCE_LEN], const uint8_t server_nonce[AUTH_NONCE_LEN],
    const char *audience, size_t audience_len, const uint8_t *sig, size_t sig_len, time_t at,
    struct auth_id *ret_id, char *err, size_t errlen);

/* ---- connections ---- */

/*
 * What a server knows of each connection (nng pipe id): an entry is made
 * when the connection starts (auth_pipes_add() from NNG_PIPE_EV_ADD_PRE,
 * before any request can arrive on it) and dropped when it ends
 * (auth_pipes_drop() from NNG_PIPE_EV_REM_POST). Calls about a pipe
 * without an entry (gone, or never added) find nothing: -ENOENT. So an
 * identity lives exactly as long as its connection, and the table holds
 * one entry per open connection.
 */
struct auth_pipes;

int auth_pipes_new(struct auth_pipes **ret_t);
/* Accepts NULL. */
void auth_pipes_free(struct auth_pipes *t);
int auth_pipes_add(struct auth_pipes *t, uint32_t pipe);
void auth_pipes_drop(struct auth_pipes *t, uint32_t pipe);
/* Draws a fresh nonce for pipe, replacing any pending one. */
int auth_pipes_challenge(struct auth_pipes *t, uint32_t pipe, uint8_t ret_nonce[AUTH_NONCE_LEN]);
/*
 * Consumes pipe's pending nonce: 0 when it equals nonce (len bytes),
 * -ESTALE when none is pending or it differs (it is consumed either way).
 */
int auth_pipes_take_nonce(struct auth_pipes *t, uint32_t pipe, const uint8_t *nonce, size_t len);
int auth_pipes_bind(struct auth_pipes *t, uint32_t pipe, const struct auth_id *id);
/* pipe's proven identity: 0, or -ENOENT when it has none (or no entry). */
int auth_pipes_get(struct auth_pipes *t, uint32_t pipe, struct auth_id *ret_id);
/* True the first time it is called for a live pipe (a refusal to log once). */
bool auth_pipes_first_refusal(struct auth_pipes *t, uint32_t pipe);
size_t auth_pipes_count(struct auth_pipes *t);

#endif

/*
 * auth: roles from SAN URIs, credentials, proofs checked against a CA, the
 * pipe table, and the handshake over real sockets (rpc with rs_auth).
 * Certificates come from tests/auth/mkcerts.sh (openssl CLI), made once
 * per run into a temporary folder. Proofs checked by auth_verify() are
 * also made by hand here with OpenSSL, from the byte layout auth.proto
 * gives, as a foreign client would.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth.h"
#include "ckpt/v1/agent.pb-c.h"
#include "ckpt/v1/auth.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "err.h"
#include "metrics.h"
#include "rpc.h"
#include "../testrun.h"

static char dir[256];

static void
path(char *buf, size_t len, const char *name, const char *ext)
{
	snprintf(buf, len, "%s/%s.%s", dir, name, ext);
}

static struct auth_cred *
cred(const char *name)
{
	char cert[512], key[512], err[AUTH_ERR_MAX];
	struct auth_cred *c = NULL;

	path(cert, sizeof(cert), name, "pem");
	path(key, sizeof(key), name, "key");
	ck_assert_msg(auth_cred_load(cert, key, &c, err, sizeof(err)) == 0, "%s: %s", name, err);
	return c;
}

static struct auth_verifier *
verifier(const char *ca)
{
	char file[512], err[AUTH_ERR_MAX];
	struct auth_verifier *v = NULL;

	path(file, sizeof(file), ca, "pem");
	ck_assert_msg(auth_verifier_new(file, &v, err, sizeof(err)) == 0, "%s", err);
	return v;
}

/* ---- roles ---- */

START_TEST(role_parse_accepts_the_four_roles_and_refuses_the_rest)
{
	static const struct {
		const char *uri;
		int rv;
		enum auth_role role;
		const char *node;
	} cases[] = {
		{ "ckpt:node:n1", 0, AUTH_ROLE_NODE, "n1" },
		{ "ckpt:node:dummy_1.a-b", 0, AUTH_ROLE_NODE, "dummy_1.a-b" },
		{ "ckpt:nas", 0, AUTH_ROLE_NAS, "" },
		{ "ckpt:manager", 0, AUTH_ROLE_MANAGER, "" },
		{ "ckpt:operator", 0, AUTH_ROLE_OPERATOR, "" },
		{ "CKPT:operator", 0, AUTH_ROLE_OPERATOR, "" }, /* the scheme is case-insensitive */
		{ "https://example.org/", -ENOENT, 0, NULL },
		{ "ckpt", -ENOENT, 0, NULL },
		{ "", -ENOENT, 0, NULL },
		{ "ckpt:", -EINVAL, 0, NULL },
		{ "ckpt:node:", -EINVAL, 0, NULL },
		{ "ckpt:node", -EINVAL, 0, NULL },
		{ "ckpt:node:a/b", -EINVAL, 0, NULL },
		{ "ckpt:node:a b", -EINVAL, 0, NULL },
		{ "ckpt:node:n1:x", -EINVAL, 0, NULL },
		{ "ckpt:Nas", -EINVAL, 0, NULL },
		{ "ckpt:nas:", -EINVAL, 0, NULL },
		{ "ckpt:nas ", -EINVAL, 0, NULL },
		{ "ckpt:operators", -EINVAL, 0, NULL },
		{ "ckpt:boss", -EINVAL, 0, NULL },
		{ "ckpt:node:123456789012345678901234567890123456789012345678901234567890123", 0,
		    AUTH_ROLE_NODE, "123456789012345678901234567890123456789012345678901234567890123" },
		{ "ckpt:node:1234567890123456789012345678901234567890123456789012345678901234", -EINVAL,
		    0, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct auth_id id = { 0 };
		int rv = auth_role_parse(cases[i].uri, strlen(cases[i].uri), &id);
		char back[AUTH_ID_MAX];

		ck_assert_msg(rv == cases[i].rv, "%s: %d", cases[i].uri, rv);
		if (rv != 0)
			continue;
		ck_assert_int_eq(id.ai_role, cases[i].role);
		ck_assert_str_eq(id.ai_node, cases[i].node);
		auth_id_str(&id, back, sizeof(back));
		/* The identity string is the URI without "ckpt:". */
		ck_assert_str_eq(back, cases[i].uri + 5);
	}
}
END_TEST

START_TEST(role_parse_refuses_an_embedded_nul)
{
	static const char uri[] = "ckpt:node:n1\0x";
	struct auth_id id;

	ck_assert_int_eq(auth_role_parse(uri, sizeof(uri) - 1, &id), -EINVAL);
	ck_assert_int_eq(auth_role_parse(uri, 12, &id), 0);
	ck_assert(auth_id_is_node(&id, "n1"));
	ck_assert(!auth_id_is_node(&id, "n2"));
}
END_TEST

/* ---- credentials ---- */

START_TEST(cred_load_reads_chain_key_and_role)
{
	struct auth_cred *c = cred("node-n1");
	size_t n;

	ck_assert_str_eq(auth_cred_name(c), "node:n1");
	ck_assert_ptr_nonnull(auth_cred_chain(c, &n));
	ck_assert_uint_eq(n, 1);
	auth_cred_free(c);
	c = cred("norole");
	ck_assert_str_eq(auth_cred_name(c), ""); /* a server may have no role */
	auth_cred_free(c);
}
END_TEST

START_TEST(cred_load_refuses_a_foreign_key_two_roles_and_missing_files)
{
	char cert[512], key[512], err[AUTH_ERR_MAX];
	struct auth_cred *c = NULL;

	path(cert, sizeof(cert), "node-n1", "pem");
	path(key, sizeof(key), "nas", "key");
	ck_assert_int_eq(auth_cred_load(cert, key, &c, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "is not the key"));
	path(cert, sizeof(cert), "tworoles", "pem");
	path(key, sizeof(key), "tworoles", "key");
	ck_assert_int_eq(auth_cred_load(cert, key, &c, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "more than one"));
	path(cert, sizeof(cert), "badrole", "pem");
	path(key, sizeof(key), "badrole", "key");
	ck_assert_int_eq(auth_cred_load(cert, key, &c, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "malformed role"));
	path(cert, sizeof(cert), "absent", "pem");
	ck_assert_int_eq(auth_cred_load(cert, key, &c, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_null(c);
}
END_TEST

/* ---- proofs ---- */

/*
 * A proof made with OpenSSL alone from files, as auth.proto describes it:
 * the DER certificates of file, and a signature with keyfile over
 * "ckpt-auth-v1" 0x00 nonce audience.
 */
struct proof {
	ProtobufCBinaryData p_chain[AUTH_CHAIN_MAX];
	size_t p_n;
	uint8_t p_sig[AUTH_SIG_MAX];
	size_t p_siglen;
};

/* p: the chain in certs (PEM) and a signature with keyname's key over tbs. */
static void
proof_sign(struct proof *p, const char *certs, const char *keyname, const uint8_t *tbs,
    size_t tbs_len)
{
	char file[512];
	EVP_MD_CTX *ctx;
	EVP_PKEY *key;
	X509 *x;
	FILE *f;

	memset(p, 0, sizeof(*p));
	path(file, sizeof(file), certs, "pem");
	f = fopen(file, "r");
	ck_assert_ptr_nonnull(f);
	while (p->p_n < AUTH_CHAIN_MAX && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		unsigned char *der = NULL;
		int len = i2d_X509(x, &der);
		ck_assert_int_gt(len, 0);
		p->p_chain[p->p_n].data = der;
		p->p_chain[p->p_n].len = (size_t)len;
		p->p_n++;
		X509_free(x);
	}
	fclose(f);
	path(file, sizeof(file), keyname, "key");
	f = fopen(file, "r");
	ck_assert_ptr_nonnull(f);
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_ptr_nonnull(key);
	ctx = EVP_MD_CTX_new();
	p->p_siglen = sizeof(p->p_sig);
	ck_assert_int_eq(EVP_DigestSignInit(ctx, NULL,
	                     EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256(), NULL, key),
	    1);
	ck_assert_int_eq(EVP_DigestSign(ctx, p->p_sig, &p->p_siglen, tbs, tbs_len), 1);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
}

static void
proof_make(struct proof *p, const char *certs, const char *keyname, const uint8_t *nonce,
    const char *aud)
{
	uint8_t tbs[256];

	memcpy(tbs, "ckpt-auth-v1", 12);
	tbs[12] = 0;
	memcpy(tbs + 13, nonce, 32);
	memcpy(tbs + 45, aud, strlen(aud));
	proof_sign(p, certs, keyname, tbs, 45 + strlen(aud));
}

/*
 * A server's proof (auth.proto 1b) by hand: label (the spec's
 * "ckpt-auth-v1-server", or another to test), 0x00, the client's nonce,
 * the server's nonce, the audience.
 */
static void
proof_make_server(struct proof *p, const char *certs, const char *keyname, const char *label,
    const uint8_t *cnonce, const uint8_t *snonce, const char *aud)
{
	size_t l = strlen(label);
	uint8_t tbs[256];

	memcpy(tbs, label, l);
	tbs[l] = 0;
	memcpy(tbs + l + 1, cnonce, 32);
	memcpy(tbs + l + 33, snonce, 32);
	memcpy(tbs + l + 65, aud, strlen(aud));
	proof_sign(p, certs, keyname, tbs, l + 65 + strlen(aud));
}

static void
proof_free(struct proof *p)
{
	for (size_t i = 0; i < p->p_n; i++)
		OPENSSL_free(p->p_chain[i].data);
}

static const uint8_t nonce_a[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
	19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t nonce_b[32] = { 32, 31 };

/* auth_verify() of a hand-made proof: its result, the identity, the message. */
static int
verify_by_hand(const char *ca, const char *certs, const char *key, const uint8_t *sign_nonce,
    const char *sign_aud, const uint8_t *check_nonce, const char *check_aud, time_t at,
    char *ret_id, char *err, size_t errlen)
{
	struct auth_verifier *v = verifier(ca);
	struct auth_id id;
	struct proof p;
	int rv;

	proof_make(&p, certs, key, sign_nonce, sign_aud);
	rv = auth_verify(v, p.p_chain, p.p_n, check_nonce, check_aud, strlen(check_aud), p.p_sig,
	    p.p_siglen, at, &id, err, errlen);
	if (rv == 0)
		auth_id_str(&id, ret_id, AUTH_ID_MAX);
	proof_free(&p);
	auth_verifier_free(v);
	return rv;
}

START_TEST(verify_accepts_a_good_proof_of_each_key_type)
{
	static const struct {
		const char *name, *id;
	} cases[] = {
		{ "node-n1", "node:n1" },
		{ "nas", "nas" },
		{ "manager", "manager" },
		{ "operator", "operator" },
		{ "rsa-operator", "operator" },
		{ "ed-operator", "operator" },
	};
	char id[AUTH_ID_MAX], err[AUTH_ERR_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rv = verify_by_hand("ca", cases[i].name, cases[i].name, nonce_a, "nas", nonce_a,
		    "nas", 0, id, err, sizeof(err));
		ck_assert_msg(rv == 0, "%s: %s", cases[i].name, err);
		ck_assert_str_eq(id, cases[i].id);
	}
}
END_TEST

START_TEST(verify_accepts_a_chain_through_an_intermediate)
{
	char id[AUTH_ID_MAX], err[AUTH_ERR_MAX];

	ck_assert_int_eq(verify_by_hand("ca", "chain-n3", "node-n3", nonce_a, "", nonce_a, "", 0, id,
	                     err, sizeof(err)),
	    0);
	ck_assert_str_eq(id, "node:n3");
	/* Without the intermediate the leaf does not reach the CA. */
	ck_assert_int_eq(verify_by_hand("ca", "node-n3", "node-n3", nonce_a, "", nonce_a, "", 0, id,
	                     err, sizeof(err)),
	    -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "not trusted"));
}
END_TEST

START_TEST(verify_takes_only_node_roles_through_a_node_ca)
{
	static const char *const refused[] = { "manager", "operator" };
	char id[AUTH_ID_MAX], err[AUTH_ERR_MAX], chain[64], key[64];

	ck_assert_int_eq(verify_by_hand("ca", "chain-nodeca-node-n4", "nodeca-node-n4", nonce_a, "",
	                     nonce_a, "", 0, id, err, sizeof(err)),
	    0);
	ck_assert_str_eq(id, "node:n4");
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		snprintf(chain, sizeof(chain), "chain-nodeca-%s", refused[i]);
		snprintf(key, sizeof(key), "nodeca-%s", refused[i]);
		ck_assert_int_eq(verify_by_hand("ca", chain, key, nonce_a, "", nonce_a, "", 0, id, err,
		                     sizeof(err)),
		    -EPERM);
		ck_assert_msg(strstr(err, "issued by a node CA") != NULL && strstr(err, refused[i]),
		    "%s", err);
	}
	/* A chain through an unmarked intermediate still verifies. */
	ck_assert_int_eq(verify_by_hand("ca", "chain-n3", "node-n3", nonce_a, "", nonce_a, "", 0, id,
	                     err, sizeof(err)),
	    0);
}
END_TEST

START_TEST(verify_refuses_other_ca_expired_wrong_signature_and_bad_roles)
{
	static const struct {
		const char *what, *ca, *cert, *key;
		const uint8_t *check_nonce;
		const char *check_aud;
		time_t later; /* seconds after now to verify at */
		const char *msg;
	} cases[] = {
		{ "other CA", "ca", "other-n1", "other-n1", nonce_a, "nas", 0, "not trusted" },
		{ "our cert, other CA trusted", "ca2", "node-n1", "node-n1", nonce_a, "nas", 0,
		    "not trusted" },
		{ "expired", "ca", "node-n1", "node-n1", nonce_a, "nas", 3 * 86400, "expired" },
		{ "another nonce", "ca", "node-n1", "node-n1", nonce_b, "nas", 0, "signature" },
		{ "another audience", "ca", "node-n1", "node-n1", nonce_a, "manager", 0, "signature" },
		{ "another key", "ca", "node-n1", "node-n2", nonce_a, "nas", 0, "signature" },
		{ "no role", "ca", "norole", "norole", nonce_a, "nas", 0, "no ckpt role" },
		{ "no SAN", "ca", "nosan", "nosan", nonce_a, "nas", 0, "no ckpt role" },
		{ "two roles", "ca", "tworoles", "tworoles", nonce_a, "nas", 0, "more than one" },
		{ "bad role", "ca", "badrole", "badrole", nonce_a, "nas", 0, "malformed role" },
	};
	char id[AUTH_ID_MAX], err[AUTH_ERR_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rv;

		err[0] = '\0';
		rv = verify_by_hand(cases[i].ca, cases[i].cert, cases[i].key, nonce_a, "nas",
		    cases[i].check_nonce, cases[i].check_aud,
		    cases[i].later != 0 ? time(NULL) + cases[i].later : 0, id, err, sizeof(err));
		ck_assert_msg(rv == -EPERM, "%s: %d", cases[i].what, rv);
		ck_assert_msg(strstr(err, cases[i].msg) != NULL, "%s: '%s'", cases[i].what, err);
	}
}
END_TEST

START_TEST(verify_refuses_malformed_proofs)
{
	struct auth_verifier *v = verifier("ca");
	ProtobufCBinaryData chain[AUTH_CHAIN_MAX + 1];
	uint8_t junk[64] = { 0x30, 0x82 }, sig[8] = { 0 };
	char err[AUTH_ERR_MAX];
	struct auth_id id;
	struct proof p;

	proof_make(&p, "node-n1", "node-n1", nonce_a, "");
	for (size_t i = 0; i <= AUTH_CHAIN_MAX; i++)
		chain[i] = p.p_chain[0];
	ck_assert_int_eq(auth_verify(v, chain, 0, nonce_a, "", 0, p.p_sig, p.p_siglen, 0, &id, err,
	                     sizeof(err)),
	    -EPERM);
	ck_assert_int_eq(auth_verify(v, chain, AUTH_CHAIN_MAX + 1, nonce_a, "", 0, p.p_sig,
	                     p.p_siglen, 0, &id, err, sizeof(err)),
	    -EPERM);
	ck_assert_int_eq(auth_verify(v, chain, 1, nonce_a, "", 0, sig, 0, 0, &id, err, sizeof(err)),
	    -EPERM);
	ck_assert_int_eq(auth_verify(v, chain, 1, nonce_a, "", 0, sig, sizeof(sig), 0, &id, err,
	                     sizeof(err)),
	    -EPERM);
	/* A certificate with bytes after it, and one that is not one. */
	chain[0].len++;
	ck_assert_int_eq(auth_verify(v, chain, 1, nonce_a, "", 0, p.p_sig, p.p_siglen, 0, &id, err,
	                     sizeof(err)),
	    -EPERM);
	chain[0].data = junk;
	chain[0].len = sizeof(junk);
	ck_assert_int_eq(auth_verify(v, chain, 1, nonce_a, "", 0, p.p_sig, p.p_siglen, 0, &id, err,
	                     sizeof(err)),
	    -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "not DER"));
	proof_free(&p);
	auth_verifier_free(v);
}
END_TEST

START_TEST(sign_then_verify_round_trips)
{
	struct auth_verifier *v = verifier("ca");
	struct auth_cred *c = cred("operator");
	const ProtobufCBinaryData *chain;
	uint8_t sig[AUTH_SIG_MAX];
	char err[AUTH_ERR_MAX];
	struct auth_id id;
	size_t n, siglen;

	ck_assert_int_eq(auth_sign(c, nonce_a, "node:n2", 7, sig, &siglen), 0);
	chain = auth_cred_chain(c, &n);
	ck_assert_int_eq(auth_verify(v, chain, n, nonce_a, "node:n2", 7, sig, siglen, 0, &id, err,
	                     sizeof(err)),
	    0);
	ck_assert_int_eq(id.ai_role, AUTH_ROLE_OPERATOR);
	auth_cred_free(c);
	auth_verifier_free(v);
}
END_TEST

/* auth_verify_server() of a hand-made server proof, claiming `aud`. */
static int
verify_server_by_hand(const char *ca, const char *certs, const char *key, const char *label,
    const uint8_t *sign_cnonce, const uint8_t *check_cnonce, const char *aud, char *ret_id,
    char *err, size_t errlen)
{
	struct auth_verifier *v = verifier(ca);
	struct auth_id id;
	struct proof p;
	int rv;

	proof_make_server(&p, certs, key, label, sign_cnonce, nonce_b, aud);
	err[0] = '\0';
	rv = auth_verify_server(v, p.p_chain, p.p_n, check_cnonce, nonce_b, aud, strlen(aud),
	    p.p_sig, p.p_siglen, 0, &id, err, errlen);
	if (rv == 0)
		auth_id_str(&id, ret_id, AUTH_ID_MAX);
	proof_free(&p);
	auth_verifier_free(v);
	return rv;
}

START_TEST(verify_server_accepts_a_good_proof_and_refuses_the_rest)
{
	static const char *const label = "ckpt-auth-v1-server";
	static const struct {
		const char *what, *ca, *cert, *key, *label;
		const uint8_t *check_cnonce;
		const char *aud, *msg; /* msg NULL: accepted, as aud */
	} cases[] = {
		{ "good nas", "ca", "nas", "nas", label, nonce_a, "nas", NULL },
		{ "good node", "ca", "node-n1", "node-n1", label, nonce_a, "node:n1", NULL },
		{ "good node through a node CA", "ca", "chain-nodeca-node-n4", "nodeca-node-n4", label,
		    nonce_a, "node:n4", NULL },
		{ "the client's label", "ca", "nas", "nas", "ckpt-auth-v1", nonce_a, "nas",
		    "signature" },
		{ "another client nonce", "ca", "nas", "nas", label, nonce_b, "nas", "signature" },
		{ "other CA", "ca", "other-n1", "other-n1", label, nonce_a, "node:n1",
		    "not trusted" },
		{ "our nas, other CA trusted", "ca2", "nas", "nas", label, nonce_a, "nas",
		    "not trusted" },
		{ "node-CA certificate for nas", "ca", "chain-nodeca-nas", "nodeca-nas", label,
		    nonce_a, "nas", "issued by a node CA" },
		{ "node certificate claiming nas", "ca", "node-n1", "node-n1", label, nonce_a, "nas",
		    "proves identity node:n1 but the server claims 'nas'" },
		{ "another key", "ca", "nas", "manager", label, nonce_a, "nas", "signature" },
	};
	char id[AUTH_ID_MAX], err[AUTH_ERR_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rv = verify_server_by_hand(cases[i].ca, cases[i].cert, cases[i].key, cases[i].label,
		    nonce_a, cases[i].check_cnonce, cases[i].aud, id, err, sizeof(err));
		if (cases[i].msg == NULL) {
			ck_assert_msg(rv == 0, "%s: %s", cases[i].what, err);
			ck_assert_str_eq(id, cases[i].aud);
		} else {
			ck_assert_msg(rv == -EPERM, "%s: %d", cases[i].what, rv);
			ck_assert_msg(strstr(err, cases[i].msg) != NULL, "%s: '%s'", cases[i].what, err);
		}
	}
}
END_TEST

START_TEST(sign_server_then_verify_round_trips_and_differs_from_a_client_proof)
{
	struct auth_verifier *v = verifier("ca");
	struct auth_cred *c = cred("nas");
	const ProtobufCBinaryData *chain;
	uint8_t sig[AUTH_SIG_MAX], tbs[128], cn[AUTH_NONCE_LEN];
	char err[AUTH_ERR_MAX];
	struct auth_id id;
	size_t n, siglen;

	ck_assert_int_eq(auth_nonce(cn), 0);
	ck_assert_int_eq(auth_server_signed_len(3), 19 + 1 + 32 + 32 + 3);
	auth_server_signed_bytes(cn, nonce_b, "nas", 3, tbs);
	ck_assert_int_eq(memcmp(tbs, "ckpt-auth-v1-server", 20), 0); /* with the 0x00 */
	ck_assert_int_eq(memcmp(tbs + 20, cn, 32), 0);
	ck_assert_int_eq(memcmp(tbs + 52, nonce_b, 32), 0);
	ck_assert_int_eq(memcmp(tbs + 84, "nas", 3), 0);
	ck_assert_int_eq(auth_sign_server(c, cn, nonce_b, "nas", 3, sig, &siglen), 0);
	chain = auth_cred_chain(c, &n);
	ck_assert_int_eq(auth_verify_server(v, chain, n, cn, nonce_b, "nas", 3, sig, siglen, 0, &id,
	                     err, sizeof(err)),
	    0);
	ck_assert_int_eq(id.ai_role, AUTH_ROLE_NAS);
	/* A server's proof is no client's proof over the same nonce, and back. */
	ck_assert_int_eq(auth_verify(v, chain, n, nonce_b, "nas", 3, sig, siglen, 0, &id, err,
	                     sizeof(err)),
	    -EPERM);
	ck_assert_int_eq(auth_sign(c, nonce_b, "nas", 3, sig, &siglen), 0);
	ck_assert_int_eq(auth_verify_server(v, chain, n, cn, nonce_b, "nas", 3, sig, siglen, 0, &id,
	                     err, sizeof(err)),
	    -EPERM);
	auth_cred_free(c);
	auth_verifier_free(v);
}
END_TEST

/* ---- the pipe table ---- */

START_TEST(pipes_hold_nonce_and_identity_for_the_pipe_life)
{
	struct auth_pipes *t;
	uint8_t nonce[AUTH_NONCE_LEN], other[AUTH_NONCE_LEN];
	struct auth_id id = { .ai_role = AUTH_ROLE_NODE, .ai_node = "n1" }, got;

	ck_assert_int_eq(auth_pipes_new(&t), 0);
	ck_assert_int_eq(auth_pipes_challenge(t, 7, nonce), -ENOENT); /* never added */
	for (uint32_t p = 1; p <= 1000; p++)
		ck_assert_int_eq(auth_pipes_add(t, p), 0);
	ck_assert_uint_eq(auth_pipes_count(t), 1000);
	ck_assert_int_eq(auth_pipes_get(t, 7, &got), -ENOENT);
	ck_assert_int_eq(auth_pipes_challenge(t, 7, nonce), 0);
	ck_assert_int_eq(auth_pipes_challenge(t, 7, other), 0); /* replaces */
	ck_assert_int_eq(auth_pipes_take_nonce(t, 7, nonce, sizeof(nonce)), -ESTALE);
	ck_assert_int_eq(auth_pipes_take_nonce(t, 7, other, sizeof(other)), -ESTALE); /* consumed */
	ck_assert_int_eq(auth_pipes_challenge(t, 7, nonce), 0);
	ck_assert_int_eq(auth_pipes_take_nonce(t, 8, nonce, sizeof(nonce)), -ESTALE); /* other pipe */
	ck_assert_int_eq(auth_pipes_take_nonce(t, 7, nonce, sizeof(nonce) - 1), -ESTALE);
	ck_assert_int_eq(auth_pipes_challenge(t, 7, nonce), 0);
	ck_assert_int_eq(auth_pipes_take_nonce(t, 7, nonce, sizeof(nonce)), 0);
	ck_assert_int_eq(auth_pipes_take_nonce(t, 7, nonce, sizeof(nonce)), -ESTALE); /* once */
	ck_assert_int_eq(auth_pipes_bind(t, 7, &id), 0);
	ck_assert_int_eq(auth_pipes_get(t, 7, &got), 0);
	ck_assert(auth_id_is_node(&got, "n1"));
	ck_assert_int_eq(auth_pipes_get(t, 8, &got), -ENOENT);
	ck_assert(auth_pipes_first_refusal(t, 7));
	ck_assert(!auth_pipes_first_refusal(t, 7));
	ck_assert(!auth_pipes_first_refusal(t, 9999)); /* not a live pipe */
	auth_pipes_drop(t, 7);
	ck_assert_int_eq(auth_pipes_get(t, 7, &got), -ENOENT);
	ck_assert_int_eq(auth_pipes_bind(t, 7, &id), -ENOENT); /* gone: nothing comes back */
	ck_assert_uint_eq(auth_pipes_count(t), 999);
	auth_pipes_free(t);
}
END_TEST

/* ---- the handshake over real sockets ---- */

static struct auth_verifier *srv_v;
static struct auth_cred *srv_cred;
static struct rpc_server *srv;
static struct metrics *srv_metrics;
static atomic_int refused_lines;
static char last_line[RPC_ERRMSG_MAX + 256];
static char seen_peer[AUTH_ID_MAX];
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;

/* Status: answers with the caller's identity as the node name. */
static int
h_status(void *arg, struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	Ckpt__V1__StatusReply *r = (Ckpt__V1__StatusReply *)reply;
	const struct auth_id *peer = rpc_call_peer(call);
	char who[AUTH_ID_MAX];
	(void)arg;
	(void)req;
	ck_assert_ptr_nonnull(peer); /* the layer let nobody unproven through */
	auth_id_str(peer, who, sizeof(who));
	pthread_mutex_lock(&seen_mu);
	snprintf(seen_peer, sizeof(seen_peer), "%s", who);
	pthread_mutex_unlock(&seen_mu);
	r->node = arena_strdup(rpc_call_arena(call), who);
	return 0;
}

/* Stop: the manager only. */
static int
h_stop(void *arg, struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const struct auth_id *peer = rpc_call_peer(call);
	(void)arg;
	(void)req;
	(void)reply;
	if (peer->ai_role != AUTH_ROLE_MANAGER)
		return rpc_call_forbid(call, "only the manager stops components");
	return 0;
}

static void
on_refused(void *arg, const char *line)
{
	(void)arg;
	atomic_fetch_add(&refused_lines, 1);
	pthread_mutex_lock(&seen_mu);
	snprintf(last_line, sizeof(last_line), "%s", line);
	pthread_mutex_unlock(&seen_mu);
}

static const rpc_handler_fn handlers[] = { NULL, h_stop, NULL, h_status };

static void
server_start(const char *url)
{
	struct rpc_server_config cfg = {
		.rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = handlers,
		.rs_workers = 4,
		.rs_auth = srv_v,
		.rs_auth_cred = srv_cred,
		.rs_on_refused = on_refused,
		.rs_metrics = srv_metrics,
	};
	ck_assert_int_eq(rpc_server_start(&cfg, url, &srv), 0);
}

static void
net_setup(void)
{
	srv_v = verifier("ca");
	srv_cred = cred("node-n2"); /* the server is node n2's agent */
	ck_assert_int_eq(metrics_new(&srv_metrics), 0);
	atomic_store(&refused_lines, 0);
	server_start("tcp://127.0.0.1:0");
}

static void
net_teardown(void)
{
	rpc_server_stop(srv);
	metrics_free(srv_metrics);
	auth_cred_free(srv_cred);
	auth_verifier_free(srv_v);
}

static struct rpc_client *
client(struct auth_cred *c, const char *expect)
{
	struct rpc_client *cl = NULL;
	struct rpc_error err;

	ck_assert_int_eq(rpc_client_open(rpc_server_url(srv), &ckpt__v1__agent__descriptor,
	                     RPC_CLIENT_DIAL_NOW, 0, &cl, &err),
	    0);
	if (c != NULL)
		rpc_client_set_auth(cl, c, expect);
	return cl;
}

/* Status as cl: 0 and the name the server saw, or the error. */
static int
status(struct rpc_client *cl, char *ret_who, struct rpc_error *err)
{
	Ckpt__V1__StatusRequest req = CKPT__V1__STATUS_REQUEST__INIT;
	Ckpt__V1__StatusReply *rep = NULL;
	int rv = rpc_client_call(cl, 3, &req.base, 5000, (ProtobufCMessage **)&rep, err);

	if (rv == 0) {
		snprintf(ret_who, AUTH_ID_MAX, "%s", rep->node);
		rpc_reply_free(&rep->base);
	}
	return rv;
}

static int
stop(struct rpc_client *cl, struct rpc_error *err)
{
	Ckpt__V1__StopRequest req = CKPT__V1__STOP_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	int rv = rpc_client_call(cl, 1, &req.base, 5000, &rep, err);
	rpc_reply_free(rep);
	return rv;
}

static bool
metrics_has(const char *needle)
{
	char *text;
	size_t len;
	bool found;

	ck_assert_int_eq(metrics_render(srv_metrics, &text, &len), 0);
	found = strstr(text, needle) != NULL;
	free(text);
	return found;
}

START_TEST(rpc_without_credentials_is_unauthenticated_and_logged_once)
{
	struct rpc_client *cl = client(NULL, NULL);
	struct rpc_error err;
	char who[AUTH_ID_MAX];

	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(status(cl, who, &err), -EPERM);
		ck_assert_int_eq(err.re_code, CKPT__V1__CODE__UNAUTHENTICATED);
		ck_assert_ptr_nonnull(strstr(err.re_msg, "authenticate first"));
	}
	ck_assert_int_eq(atomic_load(&refused_lines), 1);
	ck_assert_ptr_nonnull(strstr(last_line, "UNAUTHENTICATED Agent.Status from (no identity) "
	                                        "at 127.0.0.1:"));
	ck_assert(metrics_has("ckpt_rpc_refused_total{service=\"Agent\",method=\"Status\","
	                      "reason=\"unauthenticated\"} 3"));
	rpc_client_close(cl);
}
END_TEST

START_TEST(rpc_with_credentials_proves_once_and_the_handler_sees_who)
{
	struct auth_cred *c = cred("node-n1");
	struct rpc_client *cl = client(c, NULL);
	struct rpc_error err;
	char who[AUTH_ID_MAX];

	for (int i = 0; i < 3; i++) {
		ck_assert_msg(status(cl, who, &err) == 0, "%s", err.re_msg);
		ck_assert_str_eq(who, "node:n1");
	}
	ck_assert_int_eq(atomic_load(&refused_lines), 0); /* proved before the first call */
	ck_assert(metrics_has("ckpt_rpc_auth_handshakes_total{service=\"Agent\",result=\"ok\"} 1"));
	rpc_client_close(cl);
	auth_cred_free(c);
}
END_TEST

START_TEST(rpc_forbid_is_permission_denied_logged_once_and_counted)
{
	struct auth_cred *c = cred("operator"), *m = cred("manager");
	struct rpc_client *cl = client(c, NULL), *ml = client(m, NULL);
	struct rpc_error err;

	ck_assert_int_eq(stop(cl, &err), -EACCES);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__PERMISSION_DENIED);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "only the manager stops components"));
	ck_assert_int_eq(stop(cl, &err), -EACCES);
	ck_assert_int_eq(stop(ml, &err), 0);
	{
		/* On the wire: the reason beside the code (rpc.proto Reply.reason). */
		static const uint8_t env[] = { 0x08, 0x01 }; /* Request{method: 1 (Stop)} */
		Ckpt__V1__Reply *r;
		void *out;
		size_t n;

		ck_assert_int_eq(rpc_client_call_raw(cl, env, sizeof(env), 3000, &out, &n, &err), 0);
		r = ckpt__v1__reply__unpack(NULL, n, out);
		free(out);
		ck_assert_int_eq(r->code, CKPT__V1__CODE__PERMISSION_DENIED);
		ck_assert_str_eq(r->reason, "forbidden");
		ckpt__v1__reply__free_unpacked(r, NULL);
	}
	/* The operator's refusal, once on its connection; nothing of the manager's. */
	ck_assert_int_eq(atomic_load(&refused_lines), 1);
	ck_assert_ptr_nonnull(strstr(last_line, "PERMISSION_DENIED Agent.Stop from operator at "
	                                        "127.0.0.1:"));
	ck_assert(metrics_has("ckpt_rpc_refused_total{service=\"Agent\",method=\"Stop\","
	                      "reason=\"forbidden\"} 3"));
	rpc_client_close(ml);
	rpc_client_close(cl);
	auth_cred_free(m);
	auth_cred_free(c);
}
END_TEST

START_TEST(rpc_refuses_a_proof_from_another_ca)
{
	struct auth_cred *c = cred("other-n1");
	struct rpc_client *cl = client(c, NULL);
	struct rpc_error err;
	char who[AUTH_ID_MAX];

	ck_assert_int_eq(status(cl, who, &err), -EPERM);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__UNAUTHENTICATED);
	ck_assert_msg(strstr(err.re_msg, "Auth.Prove") != NULL &&
	    strstr(err.re_msg, "not trusted") != NULL, "%s", err.re_msg);
	ck_assert(metrics_has("ckpt_rpc_auth_handshakes_total{service=\"Agent\","
	                      "result=\"refused\"} 1"));
	rpc_client_close(cl);
	auth_cred_free(c);
}
END_TEST

START_TEST(rpc_client_checks_the_server_identity_before_proving)
{
	struct auth_cred *c = cred("manager");
	struct rpc_client *cl = client(c, "node:n1"), *ok = client(c, "node:n2");
	struct rpc_error err;
	char who[AUTH_ID_MAX];

	ck_assert_int_eq(status(cl, who, &err), -EACCES);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "answers as 'node:n2'"));
	ck_assert_int_eq(status(ok, who, &err), 0);
	ck_assert_str_eq(who, "manager");
	rpc_client_close(ok);
	rpc_client_close(cl);
	auth_cred_free(c);
}
END_TEST

START_TEST(rpc_auth_methods_refuse_a_stale_nonce_and_a_replay)
{
	struct auth_cred *c = cred("node-n1");
	struct rpc_client *cl = client(c, NULL), *other = client(c, NULL);
	Ckpt__V1__ChallengeRequest creq = CKPT__V1__CHALLENGE_REQUEST__INIT;
	Ckpt__V1__Request env = CKPT__V1__REQUEST__INIT;
	Ckpt__V1__ProveRequest preq = CKPT__V1__PROVE_REQUEST__INIT;
	Ckpt__V1__ChallengeReply *ch;
	Ckpt__V1__Reply *r;
	struct rpc_error err;
	uint8_t buf[8192], body[4096], sig[AUTH_SIG_MAX];
	size_t n, siglen;
	void *out;
	char who[AUTH_ID_MAX];

	/* Challenge by hand on cl's connection. */
	env.service = "ckpt.v1.Auth";
	env.method = 0;
	env.body.data = body;
	env.body.len = ckpt__v1__challenge_request__pack(&creq, body);
	n = ckpt__v1__request__pack(&env, buf);
	ck_assert_int_eq(rpc_client_call_raw(cl, buf, n, 3000, &out, &n, &err), 0);
	r = ckpt__v1__reply__unpack(NULL, n, out);
	free(out);
	ck_assert_int_eq(r->code, CKPT__V1__CODE__OK);
	ch = ckpt__v1__challenge_reply__unpack(NULL, r->body.len, r->body.data);
	ckpt__v1__reply__free_unpacked(r, NULL);
	ck_assert_uint_eq(ch->nonce.len, 32);
	ck_assert_str_eq(ch->audience, "node:n2");
	/* The proof, sent on another connection: refused, and the nonce is not its. */
	ck_assert_int_eq(auth_sign(c, ch->nonce.data, ch->audience, strlen(ch->audience), sig,
	                     &siglen),
	    0);
	preq.chain = (ProtobufCBinaryData *)auth_cred_chain(c, &preq.n_chain);
	preq.nonce = ch->nonce;
	preq.signature.data = sig;
	preq.signature.len = siglen;
	env.method = 1;
	env.body.len = ckpt__v1__prove_request__pack(&preq, body);
	n = ckpt__v1__request__pack(&env, buf);
	for (int i = 0; i < 2; i++) {
		/* On the other connection (refused: nothing pending there), then on its own. */
		struct rpc_client *via = i == 0 ? other : cl;
		size_t len;
		ck_assert_int_eq(rpc_client_call_raw(via, buf, n, 3000, &out, &len, &err), 0);
		r = ckpt__v1__reply__unpack(NULL, len, out);
		free(out);
		if (i == 0) {
			ck_assert_int_eq(r->code, CKPT__V1__CODE__UNAUTHENTICATED);
			ck_assert_ptr_nonnull(strstr(r->message, "no challenge pending"));
			ck_assert_str_eq(r->reason, "unauthenticated");
		} else {
			ck_assert_int_eq(r->code, CKPT__V1__CODE__OK);
		}
		ckpt__v1__reply__free_unpacked(r, NULL);
	}
	/* The same proof again on its own connection: the nonce was used. */
	ck_assert_int_eq(rpc_client_call_raw(cl, buf, n, 3000, &out, &n, &err), 0);
	r = ckpt__v1__reply__unpack(NULL, n, out);
	free(out);
	ck_assert_int_eq(r->code, CKPT__V1__CODE__UNAUTHENTICATED);
	ckpt__v1__reply__free_unpacked(r, NULL);
	ckpt__v1__challenge_reply__free_unpacked(ch, NULL);
	/* cl's connection is proven (the replay did not undo that). */
	rpc_client_set_auth(cl, NULL, NULL);
	ck_assert_int_eq(status(cl, who, &err), 0);
	ck_assert_str_eq(who, "node:n1");
	rpc_client_close(other);
	rpc_client_close(cl);
	auth_cred_free(c);
}
END_TEST

struct hammer {
	struct rpc_client *h_cl;
	atomic_int *h_ok;
};

static void *
hammer_main(void *arg)
{
	struct hammer *h = arg;
	struct rpc_error err;
	char who[AUTH_ID_MAX];

	for (int i = 0; i < 20; i++) {
		if (status(h->h_cl, who, &err) == 0 && strcmp(who, "operator") == 0)
			atomic_fetch_add(h->h_ok, 1);
	}
	return NULL;
}

START_TEST(rpc_threads_sharing_a_client_prove_once)
{
	struct auth_cred *c = cred("operator");
	struct rpc_client *cl = client(c, NULL);
	struct hammer h[8];
	pthread_t t[8];
	atomic_int ok = 0;

	for (int i = 0; i < 8; i++) {
		h[i] = (struct hammer){ cl, &ok };
		ck_assert_int_eq(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&ok), 8 * 20);
	ck_assert(metrics_has("ckpt_rpc_auth_handshakes_total{service=\"Agent\",result=\"ok\"} 1"));
	rpc_client_close(cl);
	auth_cred_free(c);
}
END_TEST

START_TEST(rpc_client_proves_again_after_the_server_restarts)
{
	struct auth_cred *c = cred("node-n1");
	struct rpc_client *cl = client(c, NULL);
	struct rpc_error err;
	char who[AUTH_ID_MAX], url[256];
	int rv = -1;

	ck_assert_int_eq(status(cl, who, &err), 0);
	snprintf(url, sizeof(url), "%s", rpc_server_url(srv));
	rpc_server_stop(srv);
	server_start(url);
	/* The client reconnects in the background: the new connection has no identity. */
	for (int i = 0; i < 100 && rv != 0; i++) {
		rv = status(cl, who, &err);
		if (rv != 0)
			usleep(50 * 1000);
	}
	ck_assert_msg(rv == 0, "%s", err.re_msg);
	ck_assert_str_eq(who, "node:n1");
	rpc_client_close(cl);
	auth_cred_free(c);
}
END_TEST

START_TEST(rpc_client_with_a_verifier_needs_the_server_proven)
{
	struct rpc_server_config cfg = {
		.rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = handlers,
	};
	struct auth_verifier *v = verifier("ca"), *v2 = verifier("ca2");
	struct auth_cred *c = cred("manager"), *norole;
	struct rpc_client *good = client(c, "node:n2"), *any = client(c, NULL);
	struct rpc_client *wrong = client(c, "nas"), *foreign = client(c, "node:n2"), *old = NULL;
	struct rpc_server *plain;
	struct rpc_error err;
	char who[AUTH_ID_MAX];

	rpc_client_set_verifier(good, v);
	rpc_client_set_verifier(any, v);
	rpc_client_set_verifier(wrong, v);
	rpc_client_set_verifier(foreign, v2);
	ck_assert_msg(status(good, who, &err) == 0, "%s", err.re_msg);
	ck_assert_str_eq(who, "manager");
	ck_assert_msg(status(any, who, &err) == 0, "%s", err.re_msg);
	/* The server is node n2's agent, proven: not what a client of the NAS wants. */
	ck_assert_int_eq(status(wrong, who, &err), -EPERM);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__UNAUTHENTICATED);
	ck_assert_str_eq(err.re_reason, "unauthenticated");
	ck_assert_msg(strstr(err.re_msg, "proved identity node:n2, expected nas") != NULL, "%s",
	    err.re_msg);
	/* A server whose certificate our CA did not sign. */
	ck_assert_int_eq(status(foreign, who, &err), -EPERM);
	ck_assert_msg(strstr(err.re_msg, "failed to prove identity 'node:n2'") != NULL &&
	        strstr(err.re_msg, "not trusted") != NULL,
	    "%s", err.re_msg);
	/* Nothing of ours reached the server: no Prove was sent by the refused clients. */
	ck_assert(metrics_has("ckpt_rpc_auth_handshakes_total{service=\"Agent\",result=\"ok\"} 2"));
	ck_assert(!metrics_has("result=\"refused\""));
	/* A server that does not authenticate at all proves nothing: refused too. */
	ck_assert_int_eq(rpc_server_start(&cfg, "tcp://127.0.0.1:0", &plain), 0);
	ck_assert_int_eq(rpc_client_open(rpc_server_url(plain), &ckpt__v1__agent__descriptor,
	                     RPC_CLIENT_DIAL_NOW, 0, &old, &err),
	    0);
	rpc_client_set_auth(old, c, NULL);
	rpc_client_set_verifier(old, v);
	ck_assert_int_eq(status(old, who, &err), -EPERM);
	ck_assert_msg(strstr(err.re_msg, "does not authenticate") != NULL, "%s", err.re_msg);
	rpc_client_close(old);
	rpc_server_stop(plain);
	/* A server with authentication on but no role of its own sends no proof, as an old one. */
	norole = cred("norole");
	cfg.rs_auth = srv_v;
	cfg.rs_auth_cred = norole;
	ck_assert_int_eq(rpc_server_start(&cfg, "tcp://127.0.0.1:0", &plain), 0);
	ck_assert_int_eq(rpc_client_open(rpc_server_url(plain), &ckpt__v1__agent__descriptor,
	                     RPC_CLIENT_DIAL_NOW, 0, &old, &err),
	    0);
	rpc_client_set_auth(old, c, NULL);
	rpc_client_set_verifier(old, v);
	ck_assert_int_eq(status(old, who, &err), -EPERM);
	ck_assert_msg(strstr(err.re_msg, "sent no proof of its identity") != NULL, "%s",
	    err.re_msg);
	/* The same server still serves a client that asks no proof (an old client). */
	rpc_client_set_verifier(old, NULL);
	ck_assert_msg(status(old, who, &err) == 0, "%s", err.re_msg);
	ck_assert_str_eq(who, "manager");
	rpc_client_close(old);
	rpc_server_stop(plain);
	auth_cred_free(norole);
	rpc_client_close(foreign);
	rpc_client_close(wrong);
	rpc_client_close(any);
	rpc_client_close(good);
	auth_cred_free(c);
	auth_verifier_free(v2);
	auth_verifier_free(v);
}
END_TEST

START_TEST(rpc_server_without_auth_answers_auth_unimplemented)
{
	struct rpc_server_config cfg = {
		.rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = handlers,
	};
	struct auth_cred *c = cred("node-n1");
	struct rpc_server *plain;
	struct rpc_client *cl = NULL;
	struct rpc_error err;

	ck_assert_int_eq(rpc_server_start(&cfg, "tcp://127.0.0.1:0", &plain), 0);
	ck_assert_int_eq(rpc_client_open(rpc_server_url(plain), &ckpt__v1__agent__descriptor,
	                     RPC_CLIENT_DIAL_NOW, 0, &cl, &err),
	    0);
	rpc_client_set_auth(cl, c, NULL);
	ck_assert_int_eq(rpc_client_authenticate(cl, 3000, &err), -ENOSYS);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__UNIMPLEMENTED);
	rpc_client_close(cl);
	rpc_server_stop(plain);
	auth_cred_free(c);
}
END_TEST

/* Outside any test (check's asserts are not usable here): 0 or -1 with a line on stderr. */
static int
certs_make(void)
{
	char cmd[1024];

	snprintf(dir, sizeof(dir), "/tmp/ckpt-test-auth-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "bash '%s' '%s'", CKPT_MKCERTS, dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "%s failed (see %s/mkcerts.log)\n", CKPT_MKCERTS, dir);
		return -1;
	}
	return 0;
}

static void
certs_remove(void)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

int
main(void)
{
	Suite *s = suite_create("auth");
	TCase *pure = tcase_create("pure"), *certs = tcase_create("certs");
	TCase *net = tcase_create("net");
	int rv;

	tcase_add_test(pure, role_parse_accepts_the_four_roles_and_refuses_the_rest);
	tcase_add_test(pure, role_parse_refuses_an_embedded_nul);
	tcase_add_test(pure, pipes_hold_nonce_and_identity_for_the_pipe_life);
	suite_add_tcase(s, pure);
	tcase_add_test(certs, cred_load_reads_chain_key_and_role);
	tcase_add_test(certs, cred_load_refuses_a_foreign_key_two_roles_and_missing_files);
	tcase_add_test(certs, verify_accepts_a_good_proof_of_each_key_type);
	tcase_add_test(certs, verify_accepts_a_chain_through_an_intermediate);
	tcase_add_test(certs, verify_takes_only_node_roles_through_a_node_ca);
	tcase_add_test(certs, verify_refuses_other_ca_expired_wrong_signature_and_bad_roles);
	tcase_add_test(certs, verify_refuses_malformed_proofs);
	tcase_add_test(certs, sign_then_verify_round_trips);
	tcase_add_test(certs, verify_server_accepts_a_good_proof_and_refuses_the_rest);
	tcase_add_test(certs, sign_server_then_verify_round_trips_and_differs_from_a_client_proof);
	suite_add_tcase(s, certs);
	tcase_add_checked_fixture(net, net_setup, net_teardown);
	tcase_set_timeout(net, 30);
	tcase_add_test(net, rpc_without_credentials_is_unauthenticated_and_logged_once);
	tcase_add_test(net, rpc_with_credentials_proves_once_and_the_handler_sees_who);
	tcase_add_test(net, rpc_forbid_is_permission_denied_logged_once_and_counted);
	tcase_add_test(net, rpc_refuses_a_proof_from_another_ca);
	tcase_add_test(net, rpc_client_checks_the_server_identity_before_proving);
	tcase_add_test(net, rpc_auth_methods_refuse_a_stale_nonce_and_a_replay);
	tcase_add_test(net, rpc_threads_sharing_a_client_prove_once);
	tcase_add_test(net, rpc_client_proves_again_after_the_server_restarts);
	tcase_add_test(net, rpc_server_without_auth_answers_auth_unimplemented);
	tcase_add_test(net, rpc_client_with_a_verifier_needs_the_server_proven);
	suite_add_tcase(s, net);
	/* Once for every test (forked by check, they read what the parent made). */
	if (certs_make() != 0)
		return EXIT_FAILURE;
	rv = test_run(s);
	certs_remove();
	return rv;
}

/*
 * The identity handshake's messages (proto/ckpt/v1/auth.proto) from any
 * bytes. The first byte picks the path:
 *   0 mod 4: the rest is a ProveRequest, decoded and checked as the rpc
 *         layer does (auth_verify() against a fixed CA at a fixed time,
 *         nonce 0x5a * 32, audience "nas"), and each certificate of its
 *         chain is read for its role (auth_cert_role());
 *   2 mod 4: the rest is a ChallengeReply, decoded and its server's proof
 *         checked as a client with TLS does (auth.proto 1b:
 *         auth_verify_server() against the same CA and time, client nonce
 *         0xa5 * 32, the reply's own nonce and audience);
 *   odd:  the rest is a whole request, dispatched by a server with
 *         authentication on (rpc_server_dispatch(): the envelope, the Auth
 *         service's decoding, and the refusal of everything else).
 * Checks: a proof accepted names the role its first certificate carries; a
 * request on the dispatch path (no connection, so never proven) is never
 * answered OK except a Challenge... which fails too without a connection:
 * every reply is an error; a server's proof accepted proves exactly the
 * audience it claims. The seeds (tests/fuzz/seeds/auth) hold a valid proof
 * by a certificate of the CA below, whose key is gone, and a ChallengeReply
 * carrying that certificate as the server's (its signature does not verify:
 * no key is left to make one that does).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "ckpt/v1/agent.pb-c.h"
#include "ckpt/v1/auth.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A throwaway CA (EC P-256, valid until 2126); its key was deleted. */
static const char fz_ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBhDCCASugAwIBAgIUEb6A33zkmHXrz6mIbe87/Kc/Ne4wCgYIKoZIzj0EAwIw\n"
    "FzEVMBMGA1UEAwwMY2twdCBmdXp6IGNhMCAXDTI2MTIwNDA5NDMwMFoYDzIxMjYx\n"
    "MTEwMDk0MzAwWjAXMRUwEwYDVQQDDAxja3B0IGZ1enogY2EwWTATBgcqhkjOPQIB\n"
    "BggqhkjOPQMBBwNCAAT7dOgU9tofZM8HRtnmKTZjvLd7272kpzseM79LlOnEYa2p\n"
    "RQcMyq5rO4ERv+F2FmzfUgif2YE5Rw4TriLlmsOEo1MwUTAdBgNVHQ4EFgQUnYE9\n"
    "8JYBevhPlbHiyrUswGjfQAAwHwYDVR0jBBgwFoAUnYE98JYBevhPlbHiyrUswGjf\n"
    "QAAwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiAVeg6a07zb+wTo\n"
    "HiM2aBGOgUKnX3PKKIBPgltg9lYgOAIgMv3es6ZZ8sGY2XVUaGelk5zXZ0eaYEYD\n"
    "EetynHHXjTs=\n"
    "-----END CERTIFICATE-----\n";
/* 2027-01-01: inside the seed certificate's validity, whatever today is. */
#define FZ_AT ((time_t)1798761600)

static struct auth_verifier *fz_v;
static struct rpc_server *fz_srv;

static const rpc_handler_fn fz_handlers[4];

static void
fz_fini(void)
{
	rpc_server_stop(fz_srv);
	auth_verifier_free(fz_v);
}

static void
fz_init(void)
{
	char file[] = "/tmp/ckpt-fuzz-auth-XXXXXX", err[AUTH_ERR_MAX];
	struct rpc_server_config cfg = {
		.rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = fz_handlers,
		.rs_workers = 1,
	};
	int fd = mkstemp(file);

	if (fd < 0 || write(fd, fz_ca_pem, sizeof(fz_ca_pem) - 1) != (ssize_t)sizeof(fz_ca_pem) - 1)
		abort();
	close(fd);
	if (auth_verifier_new(file, &fz_v, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	unlink(file);
	cfg.rs_auth = fz_v;
	if (rpc_server_start(&cfg, "inproc://ckpt-fuzz-auth", &fz_srv) != 0)
		abort();
	atexit(fz_fini);
}

static void
fz_prove(const uint8_t *data, size_t size)
{
	static const uint8_t nonce[AUTH_NONCE_LEN] = { 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
		0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
		0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a };
	Ckpt__V1__ProveRequest *req = ckpt__v1__prove_request__unpack(NULL, size, data);
	struct auth_id id, leaf;
	char err[AUTH_ERR_MAX];
	int rv;

	if (req == NULL)
		return;
	err[0] = '\0';
	for (size_t i = 0; i < req->n_chain; i++)
		(void)auth_cert_role(req->chain[i].data, req->chain[i].len, &leaf, err, sizeof(err));
	err[0] = '\0';
	rv = auth_verify(fz_v, req->chain, req->n_chain, nonce, "nas", 3, req->signature.data,
	    req->signature.len, FZ_AT, &id, err, sizeof(err));
	if (rv != 0 && rv != -EPERM && rv != -ENOMEM)
		abort();
	if (rv == 0 && (auth_cert_role(req->chain[0].data, req->chain[0].len, &leaf, err,
	                    sizeof(err)) != 0 ||
	                   leaf.ai_role != id.ai_role || strcmp(leaf.ai_node, id.ai_node) != 0))
		abort();
	if (rv == -EPERM && (err[0] == '\0' || memchr(err, '\n', strlen(err)) != NULL))
		abort(); /* a refusal says why, in one line */
	ckpt__v1__prove_request__free_unpacked(req, NULL);
}

static void
fz_server_proof(const uint8_t *data, size_t size)
{
	static const uint8_t cnonce[AUTH_NONCE_LEN] = { 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5,
		0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5,
		0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5 };
	Ckpt__V1__ChallengeReply *rep = ckpt__v1__challenge_reply__unpack(NULL, size, data);
	char err[AUTH_ERR_MAX], name[AUTH_ID_MAX];
	struct auth_id id, leaf;
	int rv;

	if (rep == NULL)
		return;
	/* A client refuses a reply whose nonce is not 32 bytes before anything else. */
	if (rep->nonce.len == AUTH_NONCE_LEN) {
		err[0] = '\0';
		rv = auth_verify_server(fz_v, rep->server_chain, rep->n_server_chain, cnonce,
		    rep->nonce.data, rep->audience, strlen(rep->audience), rep->server_signature.data,
		    rep->server_signature.len, FZ_AT, &id, err, sizeof(err));
		if (rv != 0 && rv != -EPERM && rv != -ENOMEM)
			abort();
		if (rv == 0) {
			auth_id_str(&id, name, sizeof(name));
			if (strcmp(name, rep->audience) != 0 ||
			    auth_cert_role(rep->server_chain[0].data, rep->server_chain[0].len, &leaf,
			        err, sizeof(err)) != 0 ||
			    leaf.ai_role != id.ai_role || strcmp(leaf.ai_node, id.ai_node) != 0)
				abort();
		}
		if (rv == -EPERM && (err[0] == '\0' || memchr(err, '\n', strlen(err)) != NULL))
			abort();
	}
	ckpt__v1__challenge_reply__free_unpacked(rep, NULL);
}

static void
fz_dispatch(const uint8_t *data, size_t size)
{
	Ckpt__V1__Reply *r;
	nng_msg *reply = NULL;

	if (rpc_server_dispatch(fz_srv, data, size, &reply) != 0)
		return;
	r = ckpt__v1__reply__unpack(NULL, nng_msg_len(reply), nng_msg_body(reply));
	if (r == NULL || r->code == CKPT__V1__CODE__OK)
		abort(); /* nothing runs, nothing is proven, without a connection */
	ckpt__v1__reply__free_unpacked(r, NULL);
	nng_msg_free(reply);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_v == NULL)
		fz_init();
	if (size == 0)
		return 0;
	if ((data[0] & 3) == 0)
		fz_prove(data + 1, size - 1);
	else if ((data[0] & 3) == 2)
		fz_server_proof(data + 1, size - 1);
	else
		fz_dispatch(data + 1, size - 1);
	return 0;
}

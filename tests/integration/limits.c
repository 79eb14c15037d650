/*
 * ckpt-limits URL TEST [N]: drives a running NAS over one of its limits on
 * peers and prints the Reply.reason of the first refusal ("-" when none
 * came), one line:
 *
 *   conns N      N connections, each calling Stat (the first two, the
 *                test's --max-conns, wait up to 10 s): how many were served
 *                ("served=K reason=-": a closed connection has no reason)
 *   rps N        N Stat calls back to back on one connection
 *   uploads N    N threads sending PutChunks of fresh 2 MiB chunks on one
 *                connection, until one is refused or 40 rounds went by
 *   string       a List whose node filter is 9000 bytes
 *   list N       a HaveChunks of N hashes
 *   msgsize N    a HaveChunks of N bytes of hashes (a request over recv-max)
 *
 * A fourth argument K (rps and uploads) spreads the calls over K
 * connections (round robin; uploaders: thread i on connection i % K), to
 * show that a limit counts per identity, not per connection. With
 * CKPT_TLS_CA, CKPT_TLS_CERT and CKPT_TLS_KEY set, every connection is
 * tls+tcp:// with that certificate (one identity).
 *
 * Exit 0 when the calls ran (refused or not), 1 when the NAS could not be
 * reached at all, 2 on usage errors.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/nas.pb-c.h"
#include "err.h"
#include "methods.h"
#include "rpc.h"
#include "sha.h"

#define LIM_CHUNK (2u << 20)

static char first_reason[LIMIT_REPLY_REASON_MAX] = "-";
static pthread_mutex_t first_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int refused;

static void
note(int rv, const struct rpc_error *err)
{
	if (rv == 0)
		return;
	pthread_mutex_lock(&first_mu);
	if (strcmp(first_reason, "-") == 0 && err->re_reason[0] != '\0') {
		snprintf(first_reason, sizeof(first_reason), "%s", err->re_reason);
		fprintf(stderr, "ckpt-limits: refused: %s\n", err->re_msg);
	}
	pthread_mutex_unlock(&first_mu);
	if (err->re_code == CKPT__V1__CODE__RESOURCE_EXHAUSTED)
		atomic_fetch_add(&refused, 1);
}

static int
call(struct rpc_client *c, unsigned method, const ProtobufCMessage *req, unsigned timeout_ms)
{
	ProtobufCMessage *rep = NULL;
	struct rpc_error err;
	int rv = rpc_client_call(c, method, req, timeout_ms, &rep, &err);

	rpc_reply_free(rep);
	note(rv, &err);
	return rv;
}

static int
stat_call(struct rpc_client *c, unsigned timeout_ms)
{
	Ckpt__V1__StatRequest req = CKPT__V1__STAT_REQUEST__INIT;
	return call(c, NAS_STAT, &req.base, timeout_ms);
}

struct uploader {
	struct rpc_client *u_client;
	unsigned u_seed;
};

static void *
uploader_main(void *arg)
{
	struct uploader *u = arg;
	Ckpt__V1__PutChunksRequest req = CKPT__V1__PUT_CHUNKS_REQUEST__INIT;
	Ckpt__V1__Chunk ch = CKPT__V1__CHUNK__INIT, *chp = &ch;
	uint8_t *data = malloc(LIM_CHUNK), sha[SHA_LEN];

	if (data == NULL)
		return NULL;
	for (int round = 0; round < 40 && atomic_load(&refused) == 0; round++) {
		for (size_t i = 0; i < LIM_CHUNK; i += 4) {
			u->u_seed = u->u_seed * 1103515245u + 12345u;
			memcpy(data + i, &u->u_seed, 4);
		}
		sha256(data, LIM_CHUNK, sha);
		ch.sha256.data = sha;
		ch.sha256.len = SHA_LEN;
		ch.data.data = data;
		ch.data.len = LIM_CHUNK;
		req.chunks = &chp;
		req.n_chunks = 1;
		(void)call(u->u_client, NAS_PUT_CHUNKS, &req.base, 30000);
	}
	free(data);
	return NULL;
}

static int
run_uploads(struct rpc_client **c, unsigned k, unsigned n)
{
	pthread_t th[16];
	struct uploader up[16];

	if (n > 16)
		n = 16;
	for (unsigned i = 0; i < n; i++) {
		up[i] = (struct uploader){ c[i % k], 7919u * (i + 1) };
		if (pthread_create(&th[i], NULL, uploader_main, &up[i]) != 0)
			return -errno;
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	return 0;
}

static int
run_hashes(struct rpc_client *c, size_t n)
{
	Ckpt__V1__HaveChunksRequest req = CKPT__V1__HAVE_CHUNKS_REQUEST__INIT;
	ProtobufCBinaryData *h = calloc(n, sizeof(*h));
	static uint8_t zero[SHA_LEN];

	if (h == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		h[i].data = zero;
		h[i].len = SHA_LEN;
	}
	req.sha256 = h;
	req.n_sha256 = n;
	(void)call(c, NAS_HAVE_CHUNKS, &req.base, 10000);
	free(h);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *url, *test;
	struct rpc_client *cs[8] = { NULL }, *c = NULL;
	struct tls_conf tls = { .tc_ca = getenv("CKPT_TLS_CA"), .tc_cert = getenv("CKPT_TLS_CERT"),
		.tc_key = getenv("CKPT_TLS_KEY") };
	struct rpc_error err;
	unsigned n, k;
	int rv = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: ckpt-limits URL conns|rps|uploads|string|list|msgsize [N]\n");
		return 2;
	}
	url = argv[1];
	test = argv[2];
	n = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 1;
	k = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 1;
	if (k < 1 || k > 8) {
		fprintf(stderr, "ckpt-limits: 1 to 8 connections\n");
		return 2;
	}
	if (strcmp(test, "conns") == 0) {
		struct rpc_client *conns[64];
		unsigned served = 0;

		if (n > 64)
			n = 64;
		for (unsigned i = 0; i < n; i++) {
			/*
			 * The connections within the limit get time to dial and be
			 * answered on a loaded machine; one over it is closed as
			 * it opens, and its call would wait for nothing.
			 */
			unsigned wait_ms = i < 2 ? 10000 : 1000;
			conns[i] = NULL;
			if (rpc_client_open(url, &ckpt__v1__nas__descriptor, 0, 0, &conns[i], &err) == 0 &&
			    stat_call(conns[i], wait_ms) == 0)
				served++;
		}
		for (unsigned i = 0; i < n; i++)
			rpc_client_close(conns[i]);
		printf("served=%u reason=%s\n", served, first_reason);
		return 0;
	}
	for (unsigned i = 0; i < k; i++) {
		if (rpc_client_open_tls(url, &ckpt__v1__nas__descriptor, RPC_CLIENT_DIAL_NOW, 64u << 20,
		        &tls, &cs[i], &err) != 0) {
			fprintf(stderr, "ckpt-limits: %s\n", err.re_msg);
			for (unsigned j = 0; j < i; j++)
				rpc_client_close(cs[j]);
			return 1;
		}
	}
	c = cs[0];
	if (strcmp(test, "rps") == 0) {
		for (unsigned i = 0; i < n; i++)
			(void)stat_call(cs[i % k], 5000);
	} else if (strcmp(test, "uploads") == 0) {
		rv = run_uploads(cs, k, n);
	} else if (strcmp(test, "string") == 0) {
		Ckpt__V1__ListRequest req = CKPT__V1__LIST_REQUEST__INIT;
		char *s = malloc(9001);
		if (s != NULL) {
			memset(s, 'n', 9000);
			s[9000] = '\0';
			req.node = s;
			(void)call(c, NAS_LIST, &req.base, 5000);
			free(s);
		}
	} else if (strcmp(test, "list") == 0) {
		rv = run_hashes(c, n);
	} else if (strcmp(test, "msgsize") == 0) {
		rv = run_hashes(c, n / (SHA_LEN + 2));
	} else {
		fprintf(stderr, "ckpt-limits: unknown test '%s'\n", test);
		rv = 2;
	}
	for (unsigned i = 0; i < k; i++)
		rpc_client_close(cs[i]);
	if (rv == 2)
		return 2;
	printf("refused=%d reason=%s\n", atomic_load(&refused), first_reason);
	return rv == 0 ? 0 : 1;
}

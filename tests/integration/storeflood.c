/*
 * ckpt-storeflood URL N BYTES [K]: N clients send one Store each whose
 * chunks (BYTES of fresh data, chunks of at most 1 MiB) all go inline, all
 * at once (the connections are opened first, then the calls start
 * together), as a fleet of agents storing after a NAS restart does. They
 * share K connections (default N: one each; client i on connection i % K):
 * nng reads one request ahead per connection, so few connections leave
 * the NAS's memory to what it holds itself.
 * Checkpoint i is flood/c<i>@1. One line per Store:
 *
 *   ok flood/c<i> <sha256 of its bytes, hex>
 *   failed flood/c<i> <code> <message>
 *
 * then "stored=K failed=F". With CKPT_TLS_CA, CKPT_TLS_CERT and CKPT_TLS_KEY
 * set, the connections use that certificate (tls+tcp:// URLs). Exit 0 when
 * all were stored, 1 when one was not (or the NAS could not be reached), 2
 * on usage errors.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/nas.pb-c.h"
#include "err.h"
#include "methods.h"
#include "rpc.h"
#include "sha.h"
#include "tls.h"

#define FLOOD_CHUNK (1u << 20)
#define FLOOD_CHUNKS_MAX 16u
#define FLOOD_N_MAX 256u

struct flooder {
	struct rpc_client *f_client;
	unsigned f_i;
	size_t f_bytes;
	pthread_barrier_t *f_go;
	int f_rv;
	struct rpc_error f_err;
	char f_hex[2 * SHA_LEN + 1];
};

static void *
flooder_main(void *arg)
{
	struct flooder *f = arg;
	Ckpt__V1__StoreRequest req = CKPT__V1__STORE_REQUEST__INIT;
	Ckpt__V1__ChunkRef refs[FLOOD_CHUNKS_MAX], *refp[FLOOD_CHUNKS_MAX];
	Ckpt__V1__Chunk chunks[FLOOD_CHUNKS_MAX], *chp[FLOOD_CHUNKS_MAX];
	uint8_t sha[FLOOD_CHUNKS_MAX][SHA_LEN], whole[SHA_LEN];
	uint8_t *data = malloc(f->f_bytes);
	unsigned seed = 7919u * (f->f_i + 1), n = 0;
	char component[32];
	ProtobufCMessage *rep = NULL;

	f->f_rv = -ENOMEM;
	if (data == NULL) {
		pthread_barrier_wait(f->f_go);
		return NULL;
	}
	for (size_t i = 0; i + 4 <= f->f_bytes; i += 4) {
		seed = seed * 1103515245u + 12345u;
		memcpy(data + i, &seed, 4);
	}
	sha256(data, f->f_bytes, whole);
	sha_hex(whole, SHA_LEN, f->f_hex);
	for (size_t off = 0; off < f->f_bytes; off += FLOOD_CHUNK, n++) {
		size_t len = f->f_bytes - off < FLOOD_CHUNK ? f->f_bytes - off : FLOOD_CHUNK;

		sha256(data + off, len, sha[n]);
		refs[n] = (Ckpt__V1__ChunkRef)CKPT__V1__CHUNK_REF__INIT;
		refs[n].sha256.data = sha[n];
		refs[n].sha256.len = SHA_LEN;
		refs[n].size = (uint32_t)len;
		refp[n] = &refs[n];
		chunks[n] = (Ckpt__V1__Chunk)CKPT__V1__CHUNK__INIT;
		chunks[n].sha256.data = sha[n];
		chunks[n].sha256.len = SHA_LEN;
		chunks[n].data.data = data + off;
		chunks[n].data.len = len;
		chp[n] = &chunks[n];
	}
	snprintf(component, sizeof(component), "c%u", f->f_i);
	req.node = "flood";
	req.component = component;
	req.seq = 1;
	req.size = f->f_bytes;
	req.sha256.data = whole;
	req.sha256.len = SHA_LEN;
	req.n_chunks = n;
	req.chunks = refp;
	req.n_inline_chunks = n;
	req.inline_chunks = chp;
	pthread_barrier_wait(f->f_go);
	f->f_rv = rpc_client_call(f->f_client, NAS_STORE, &req.base, 120000, &rep, &f->f_err);
	rpc_reply_free(rep);
	free(data);
	return NULL;
}

int
main(int argc, char **argv)
{
	static struct flooder fl[FLOOD_N_MAX];
	pthread_t th[FLOOD_N_MAX];
	struct rpc_client *conns[FLOOD_N_MAX];
	struct tls_conf tls = { .tc_ca = getenv("CKPT_TLS_CA"), .tc_cert = getenv("CKPT_TLS_CERT"),
		.tc_key = getenv("CKPT_TLS_KEY") };
	pthread_barrier_t go;
	unsigned n, k, stored = 0;
	size_t bytes;
	int rv = 0;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: ckpt-storeflood URL N BYTES [K]\n");
		return 2;
	}
	n = (unsigned)strtoul(argv[2], NULL, 10);
	bytes = strtoull(argv[3], NULL, 10);
	k = argc == 5 ? (unsigned)strtoul(argv[4], NULL, 10) : n;
	if (n == 0 || n > FLOOD_N_MAX || bytes == 0 || bytes > FLOOD_CHUNKS_MAX * FLOOD_CHUNK ||
	    k == 0 || k > n) {
		fprintf(stderr, "ckpt-storeflood: N in 1..%u, BYTES in 1..%u, K in 1..N\n",
		    FLOOD_N_MAX, FLOOD_CHUNKS_MAX * FLOOD_CHUNK);
		return 2;
	}
	for (unsigned i = 0; i < k; i++) {
		struct rpc_error err;

		if (rpc_client_open_tls(argv[1], &ckpt__v1__nas__descriptor, RPC_CLIENT_DIAL_NOW, 0,
		    tls.tc_ca != NULL ? &tls : NULL, &conns[i], &err) != 0) {
			fprintf(stderr, "ckpt-storeflood: %s: %s\n", argv[1], err.re_msg);
			return 1;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		fl[i].f_client = conns[i % k];
		fl[i].f_i = i;
		fl[i].f_bytes = bytes;
		fl[i].f_go = &go;
	}
	pthread_barrier_init(&go, NULL, n);
	for (unsigned i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, flooder_main, &fl[i]) != 0) {
			fprintf(stderr, "ckpt-storeflood: no thread\n");
			return 1;
		}
	for (unsigned i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		if (fl[i].f_rv == 0) {
			printf("ok flood/c%u %s\n", i, fl[i].f_hex);
			stored++;
		} else {
			printf("failed flood/c%u %d %s\n", i, fl[i].f_err.re_code, fl[i].f_err.re_msg);
			rv = 1;
		}
	}
	for (unsigned i = 0; i < k; i++)
		rpc_client_close(conns[i]);
	pthread_barrier_destroy(&go);
	printf("stored=%u failed=%u\n", stored, n - stored);
	return rv;
}

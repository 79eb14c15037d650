/*
 * Benchmark: the NAS's CPU for a Store commit whose chunks the store holds
 * already (an incremental checkpoint), in-process, LMDB in a temporary
 * folder. One record of N 4 KiB chunks (PutChunks, then Store), then R
 * records of the same list with NEW chunks replaced by new ones (uploaded
 * first, outside the measure): W3 after W2 has 9,069 chunks, ~1% new.
 * Prints the commit thread's CPU time (the caller leads its own group
 * commit), median and least of R.
 *
 *   meson test -C build --benchmark nas_commit
 *   CKPT_BENCH_CHUNKS=9069 CKPT_BENCH_NEW=90 CKPT_BENCH_ROUNDS=20 build/tests/unit/nas/bench_nas_commit
 *   CKPT_BENCH_RESERVE=16777216 ...: with the NAS's default disk reserve
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "digest.h"
#include "sha.h"
#include "store.h"

#include "nasfix.h"

#define CHUNK 4096u
#define BATCH 64u

static size_t
env_size(const char *name, size_t dflt)
{
	const char *v = getenv(name);
	return v != NULL && *v != '\0' ? strtoul(v, NULL, 10) : dflt;
}

static uint64_t
thread_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Chunk i's bytes (distinct for every i: nothing is deduplicated). */
static void
fill(uint8_t *buf, uint64_t i)
{
	uint64_t x = 88172645463325252u ^ (i * 0x9e3779b97f4a7c15u);
	for (size_t k = 0; k < CHUNK; k += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + k, &x, 8);
	}
}

/* Uploads chunks ids[0..n) and names them in refs. */
static int
put(struct store *st, const uint64_t *ids, size_t n, uint8_t (*sha)[SHA_LEN],
    Ckpt__V1__ChunkRef *refs, const size_t *at)
{
	static uint8_t data[BATCH][CHUNK];
	Ckpt__V1__Chunk ch[BATCH], *chp[BATCH];
	struct store_error err;
	uint32_t stored;

	for (size_t i = 0; i < n; i += BATCH) {
		size_t m = n - i < BATCH ? n - i : BATCH;
		for (size_t j = 0; j < m; j++) {
			size_t r = at[i + j];
			fill(data[j], ids[i + j]);
			sha256(data[j], CHUNK, sha[r]);
			ckpt__v1__chunk__init(&ch[j]);
			ch[j].sha256 = (ProtobufCBinaryData){ SHA_LEN, sha[r] };
			ch[j].data = (ProtobufCBinaryData){ CHUNK, data[j] };
			chp[j] = &ch[j];
			ckpt__v1__chunk_ref__init(&refs[r]);
			refs[r].sha256 = ch[j].sha256;
			refs[r].size = CHUNK;
		}
		if (store_put_chunks(st, chp, m, &stored, &err) != 0) {
			fprintf(stderr, "put: %s\n", err.se_msg);
			return -1;
		}
	}
	return 0;
}

static int
commit(struct store *st, Ckpt__V1__ChunkRef **rptr, size_t n, uint64_t *ret_ns)
{
	Ckpt__V1__StoreRequest req = CKPT__V1__STORE_REQUEST__INIT;
	Ckpt__V1__CheckpointInfo *info;
	uint8_t digest[SHA_LEN];
	struct store_error err;
	struct arena *a;
	bool existed;
	uint64_t t0;
	int rv;

	if (arena_new(&a) != 0)
		return -1;
	req.node = "n";
	req.component = "mem";
	req.kind = "raw";
	req.size = (uint64_t)n * CHUNK;
	req.n_chunks = n;
	req.chunks = rptr;
	digest_refs(rptr, n, digest);
	req.digest = (ProtobufCBinaryData){ SHA_LEN, digest };
	t0 = thread_ns();
	rv = store_commit(st, &req, a, &info, &existed, NULL, &err);
	*ret_ns = thread_ns() - t0;
	if (rv != 0)
		fprintf(stderr, "commit: %s\n", err.se_msg);
	arena_free(a);
	return rv;
}

int
main(void)
{
	size_t n = env_size("CKPT_BENCH_CHUNKS", 9069), fresh = env_size("CKPT_BENCH_NEW", 90);
	size_t rounds = env_size("CKPT_BENCH_ROUNDS", 20);
	char dir[64] = "/var/tmp/ckpt-bench-commit-XXXXXX";
	/* CKPT_BENCH_RESERVE: the disk reserve's least size (--disk-reserve; 0: none). */
	struct store_config sc = { dir, 1ull << 30, 64ull << 30, 1000, false, false, NULL, false,
		env_size("CKPT_BENCH_RESERVE", 0) };
	uint8_t (*sha)[SHA_LEN] = calloc(n, SHA_LEN);
	Ckpt__V1__ChunkRef *refs = calloc(n, sizeof(*refs)), **rptr = calloc(n, sizeof(*rptr));
	uint64_t *ids = calloc(n, sizeof(*ids)), *ns = calloc(rounds + 1, sizeof(*ns));
	size_t *at = calloc(n, sizeof(*at));
	struct store_error err;
	struct store *st = NULL;
	uint64_t next = 0, first;
	int rv = 1;

	if (sha == NULL || refs == NULL || rptr == NULL || ids == NULL || ns == NULL ||
	    at == NULL || mkdtemp(dir) == NULL || fresh > n)
		goto out;
	if (store_open(&sc, &st, NULL, &err) != 0) {
		fprintf(stderr, "open: %s\n", err.se_msg);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		ids[i] = next++;
		at[i] = i;
		rptr[i] = &refs[i];
	}
	if (put(st, ids, n, sha, refs, at) != 0 || commit(st, rptr, n, &first) != 0)
		goto out;
	for (size_t r = 0; r < rounds; r++) {
		/* fresh chunks at spread places, new bytes each round */
		for (size_t i = 0; i < fresh; i++) {
			at[i] = (i * n / (fresh ? fresh : 1) + r) % n;
			ids[i] = next++;
		}
		if (put(st, ids, fresh, sha, refs, at) != 0 || commit(st, rptr, n, &ns[r]) != 0)
			goto out;
	}
	qsort(ns, rounds, sizeof(*ns), cmp_u64);
	printf("commit of %zu chunks: first (all new) %.2f ms CPU; with %zu new, %zu rounds: "
	    "median %.2f ms, least %.2f ms\n", n, first / 1e6, fresh, rounds,
	    rounds ? ns[rounds / 2] / 1e6 : 0.0, rounds ? ns[0] / 1e6 : 0.0);
	rv = 0;
out:
	store_close(st);
	nasfix_rmtree(dir);
	free(sha);
	free(refs);
	free(rptr);
	free(ids);
	free(ns);
	free(at);
	return rv;
}

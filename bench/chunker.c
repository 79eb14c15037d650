/*
 * chunker: MB/s (10^6 bytes per second of this thread's CPU time, which
 * counts other processes on a shared machine less) of chunk_next() on whole files,
 * against the byte-at-a-time reference of tests/chunkref.h measured in the
 * same run, and a check that both cut every file at the same points.
 *
 *   python3 bench/workloads.py /tmp/wl
 *   meson compile -C build-rel bench/bench_chunker
 *   build-rel/bench/bench_chunker /tmp/wl/W1 /tmp/wl/W2
 *   build-rel/bench/bench_chunker -p 64,256,1024 /tmp/wl/W1      other bounds
 *
 * Each file is read into memory once and cut whole, ROUNDS times for each
 * implementation, alternating; the best round counts. Exits 1 when the cuts
 * differ. Not a test: it asserts nothing about time.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chunk.h"
#include "../tests/chunkref.h"

#define ROUNDS 7

typedef size_t (*chunker_fn)(const struct chunk_params *, const uint8_t *, size_t, bool *);

struct chunker_cuts {
	size_t cc_n;
	size_t cc_holes;
	size_t cc_cap;
	size_t *cc_len;    /* chunk lengths; a hole is stored negated (~len) */
};

static double
chunker_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Cuts the whole of buf; records the cuts when c is not NULL. Seconds taken. */
static double
chunker_run(chunker_fn fn, const struct chunk_params *p, const uint8_t *buf, size_t len,
    struct chunker_cuts *c)
{
	double t0 = chunker_now();
	size_t off = 0;

	while (off < len) {
		bool zero;
		size_t k = fn(p, buf + off, len - off, &zero);

		if (c != NULL) {
			if (c->cc_n == c->cc_cap) {
				c->cc_cap = c->cc_cap != 0 ? 2 * c->cc_cap : 1024;
				c->cc_len = realloc(c->cc_len, c->cc_cap * sizeof(*c->cc_len));
				if (c->cc_len == NULL) {
					perror("realloc");
					exit(2);
				}
			}
			c->cc_len[c->cc_n++] = zero ? ~k : k;
			c->cc_holes += zero;
		}
		off += k;
	}
	return chunker_now() - t0;
}

static uint8_t *
chunker_read(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
		goto out;
	}
	*ret_len = (size_t)n;
out:
	if (f != NULL)
		fclose(f);
	return buf;
}

/* 0 when chunk_next and the reference cut path the same way, 1 when not, 2 on errors. */
static int
chunker_file(const struct chunk_params *p, const char *path)
{
	struct chunker_cuts ref = { 0 }, fast = { 0 };
	double t_ref = 1e9, t_fast = 1e9;
	size_t len = 0;
	uint8_t *buf = chunker_read(path, &len);
	int rc = 0;

	if (buf == NULL) {
		fprintf(stderr, "bench_chunker: %s: %s\n", path, strerror(errno));
		return 2;
	}
	chunker_run(chunkref_next, p, buf, len, &ref);
	chunker_run(chunk_next, p, buf, len, &fast);
	if (ref.cc_n != fast.cc_n ||
	    memcmp(ref.cc_len, fast.cc_len, ref.cc_n * sizeof(*ref.cc_len)) != 0) {
		size_t i = 0;
		while (i < ref.cc_n && i < fast.cc_n && ref.cc_len[i] == fast.cc_len[i])
			i++;
		printf("%s: CUTS DIFFER at chunk %zu (reference %zu chunks, chunk_next %zu)\n",
		    path, i, ref.cc_n, fast.cc_n);
		rc = 1;
		goto out;
	}
	for (int r = 0; r < ROUNDS; r++) {
		double t = chunker_run(chunkref_next, p, buf, len, NULL);
		t_ref = t < t_ref ? t : t_ref;
		t = chunker_run(chunk_next, p, buf, len, NULL);
		t_fast = t < t_fast ? t : t_fast;
	}
	printf("%s: %zu B, %zu chunks (%zu holes), cuts identical; reference %.0f MB/s, "
	       "chunk_next %.0f MB/s (x%.2f)\n",
	    path, len, fast.cc_n, fast.cc_holes, (double)len / t_ref / 1e6,
	    (double)len / t_fast / 1e6, t_ref / t_fast);
out:
	free(ref.cc_len);
	free(fast.cc_len);
	free(buf);
	return rc;
}

int
main(int argc, char **argv)
{
	unsigned min = CHUNK_MIN_DEFAULT, avg = CHUNK_AVG_DEFAULT, max = CHUNK_MAX_DEFAULT;
	struct chunk_params p;
	int i = 1, rc = 0;

	if (argc > 2 && strcmp(argv[1], "-p") == 0) {
		if (sscanf(argv[2], "%u,%u,%u", &min, &avg, &max) != 3) {
			fprintf(stderr, "bench_chunker: -p wants min,avg,max\n");
			return 2;
		}
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: bench_chunker [-p min,avg,max] FILE...\n");
		return 2;
	}
	if (chunk_params_init(min, avg, max, &p) != 0) {
		fprintf(stderr, "bench_chunker: bad bounds %u,%u,%u\n", min, avg, max);
		return 2;
	}
	printf("bounds min %u avg %u max %u, best of %d rounds\n", p.cp_min, p.cp_avg, p.cp_max,
	    ROUNDS);
	for (; i < argc; i++) {
		int r = chunker_file(&p, argv[i]);
		rc = r > rc ? r : rc;
	}
	return rc;
}

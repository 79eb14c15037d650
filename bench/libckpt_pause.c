/*
 * libckpt_pause: how long ckpt_checkpoint() stops the application, against
 * a memcpy of the same bytes in the same run.
 *
 *   build/bench/bench_libckpt_pause [RUNS]        (RUNS: 15)
 *
 * One process: an agent's Local server (services/agent/local.c) on an
 * ipc:// socket in a temporary folder, and libckpt talking to it over that
 * socket. For 1, 16 and 64 MiB of regions (one region, and the same bytes
 * as 16 regions), it alternates RUNS times: memcpy of the bytes into a
 * buffer already touched, and ckpt_checkpoint() (the copy into the shared
 * segment and the handover, sent without waiting for the agent). Between
 * runs it waits for the agent's answer (ckpt_wait(), "answer": the agent
 * opens, checks and maps the segment), which the program does not wait for
 * when its checkpoints are further apart than that. The agent here
 * releases each checkpoint at once (a real one releases after its upload;
 * the application's pause is the same). It prints medians, the ratio, the
 * answer, and the first (cold) checkpoint, which creates and populates the
 * segment. Nothing is asserted: it is a measurement.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "local.h"

static int
on_checkpoint(void *arg, struct local_ckpt *ck, const char **ret_why)
{
	(void)arg;
	(void)ret_why;
	local_ckpt_release(ck);
	return 0;
}

static uint64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* This thread's CPU time: the pause without the time other programs took the CPU. */
static uint64_t
cpu_ns(void)
{
	return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t
median(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

/* One size, regions pieces: prints a line; returns 0 or a ckpt error. */
static int
measure(struct local_server *srv, const char *url, size_t kib, unsigned pieces, int runs,
    const char *comp)
{
	size_t size = kib << 10, piece = size / pieces;
	uint8_t *src = malloc(size), *dst = malloc(size);
	uint64_t *t_cpy = calloc((size_t)runs, sizeof(uint64_t));
	uint64_t *t_ck = calloc((size_t)runs, sizeof(uint64_t));
	uint64_t *t_ack = calloc((size_t)runs, sizeof(uint64_t));
	uint64_t *c_cpy = calloc((size_t)runs, sizeof(uint64_t));
	uint64_t *c_ck = calloc((size_t)runs, sizeof(uint64_t));
	struct local_expect le = { .le_component = comp, .le_pid = getpid() };
	uint64_t cold, mc, mk, ma, cc, ck;
	int64_t seq;
	int rv;

	if (src == NULL || dst == NULL || t_cpy == NULL || t_ck == NULL || t_ack == NULL ||
	    c_cpy == NULL || c_ck == NULL) {
		rv = CKPT_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < size; i++)
		src[i] = (uint8_t)(i * 2654435761u >> 13);
	memset(dst, 1, size);
	rv = local_expect(srv, &le);
	if (rv != 0) {
		fprintf(stderr, "local_expect: %s\n", strerror(-rv));
		rv = CKPT_EAGENT;
		goto out;
	}
	rv = ckpt_init(comp, url);
	for (unsigned i = 0; rv == 0 && i < pieces; i++)
		rv = ckpt_protect(i + 1, src + (size_t)i * piece, piece);
	if (rv != 0)
		goto out;
	cold = now_ns();
	seq = ckpt_checkpoint();
	cold = now_ns() - cold;
	if (seq < 0) {
		rv = (int)seq;
		goto out_fin;
	}
	rv = ckpt_wait();
	if (rv != 0)
		goto out_fin;
	for (int r = 0; r < runs; r++) {
		uint64_t t0 = now_ns(), c0 = cpu_ns(), t1;
		memcpy(dst, src, size);
		t_cpy[r] = now_ns() - t0;
		c_cpy[r] = cpu_ns() - c0;
		src[(size_t)r * 4096 % size] ^= dst[size - 1 - (size_t)r]; /* keep the copy live */
		t0 = now_ns();
		c0 = cpu_ns();
		seq = ckpt_checkpoint();
		t1 = now_ns();
		c_ck[r] = cpu_ns() - c0;
		t_ck[r] = t1 - t0;
		if (seq < 0) {
			rv = (int)seq;
			goto out_fin;
		}
		/* The agent's answer, while the program would run on: not pause. */
		rv = ckpt_wait();
		t_ack[r] = now_ns() - t1;
		if (rv != 0)
			goto out_fin;
	}
	mc = median(t_cpy, runs);
	mk = median(t_ck, runs);
	ma = median(t_ack, runs);
	cc = median(c_cpy, runs);
	ck = median(c_ck, runs);
	printf("%4zu %s %5u  %9.1f %9.1f %6.2fx  %9.1f %9.1f %6.2fx  %9.1f %10.1f\n",
	    kib >= 1024 ? kib >> 10 : kib, kib >= 1024 ? "MiB" : "KiB",
	    pieces, mc / 1e3, mk / 1e3, (double)mk / (double)mc, cc / 1e3, ck / 1e3,
	    (double)ck / (double)cc, ma / 1e3, cold / 1e3);
out_fin:
	ckpt_finalize();
	local_forget(srv, comp);
out:
	free(c_ck);
	free(c_cpy);
	free(t_ack);
	free(t_ck);
	free(t_cpy);
	free(dst);
	free(src);
	return rv;
}

int
main(int argc, char **argv)
{
	/* KiB; 4 KiB shows what a checkpoint costs besides the copy. */
	static const size_t sizes[] = { 4, 1024, 16 << 10, 64 << 10 };
	static const unsigned pieces[] = { 1, 16 };
	struct local_config cfg = { .lc_on_checkpoint = on_checkpoint };
	struct local_server *srv;
	char dir[64] = "/tmp/ckpt-bench-XXXXXX", url[128], comp[32];
	int runs = argc > 1 ? atoi(argv[1]) : 15, rv = 0, k = 0;

	if (runs < 1) {
		fprintf(stderr, "usage: %s [RUNS]\n", argv[0]);
		return 2;
	}
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(url, sizeof(url), "ipc://%s/local.sock", dir);
	cfg.lc_url = url;
	rv = local_start(&cfg, &srv);
	if (rv != 0) {
		fprintf(stderr, "local_start %s: %s\n", url, strerror(-rv));
		rmdir(dir);
		return 1;
	}
	printf("libckpt pause against memcpy, medians of %d runs (microseconds;\n"
	    "wall: elapsed, cpu: this thread's CPU time, without other programs' turns)\n", runs);
	printf("    size regions  memcpy     pause   ratio   memcpy    pause   ratio"
	    "     answer cold pause\n");
	printf("                  (wall)    (wall)           (cpu)     (cpu)\n");
	for (size_t i = 0; rv == 0 && i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (size_t j = 0; rv == 0 && j < sizeof(pieces) / sizeof(pieces[0]); j++) {
			snprintf(comp, sizeof(comp), "bench%d", k++);
			rv = measure(srv, url, sizes[i], pieces[j], runs, comp);
			if (rv != 0)
				fprintf(stderr, "%zu KiB: %s (%s)\n", sizes[i], ckpt_strerror(rv),
				    ckpt_errmsg());
		}
	}
	local_stop(srv);
	rmdir(dir);
	return rv == 0 ? 0 : 1;
}

/*
 * fleet: many agents checkpointing small components into one NAS at once
 * (workload W4: 4 KiB checkpoints). Not a test: it prints a table.
 *
 *   fleet [-n COUNT] [--normal] NAS_URL W4_DIR [WRITERS...]
 *                                   (bench/fleet.sh starts the NAS)
 *
 * For each number of writers (default 1 4 16), that many threads, each with
 * its own client connection (as separate agents have), store COUNT
 * checkpoints (default 1000: W4's, then W4's again) between them, each as
 * its own component, every one durable when acknowledged. Every round
 * stores new bytes: the first 8 bytes of each checkpoint are replaced by a
 * stamp of the process and the round, so nothing is deduplicated against an
 * earlier round (W4's own bytes would be, from the second round on).
 * --normal: every store takes HaveChunks, PutChunks and Store, as before
 * small checkpoints went inline (nasc_set_inline()). Printed: checkpoints
 * per second, the ratio against the first row measured in the same run, and
 * the NAS's write transactions per checkpoint (from Stat: 1 for an inline
 * store, 2 for PutChunks and Store; below that, concurrent writes shared
 * commits), and the CPU this process spent per checkpoint (getrusage: every
 * writer thread and their nng threads, connecting included).
 *
 * The clock runs from the moment every writer is connected (each dials its
 * NAS before, as redis-benchmark connects its clients before it starts its
 * clock) to the last writer's last acknowledged store: connection setup and
 * teardown, the same for a run of 10 or of 10,000 checkpoints, are not
 * counted per checkpoint.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/v1/nas.pb-c.h"
#include "methods.h"
#include "nasc.h"

#define FLEET_CKPTS 1000          /* W4's */
#define FLEET_SIZE 4096
#define FLEET_WRITERS_MAX 64
#define FLEET_COUNT_MAX 1000000

struct fleet_run {
	const char *f_url;
	unsigned f_round;             /* components are new in every round */
	uint8_t (*f_data)[FLEET_SIZE];
	size_t f_count;               /* checkpoints to store */
	bool f_normal;                /* --normal */
	size_t f_next;                /* the next checkpoint to store */
	pthread_mutex_t f_mu;
	int f_failed;
	pthread_barrier_t f_ready;    /* every writer connected (or failed to), and main */
	double f_end;                 /* when the last store was acknowledged */
};

static double
fleet_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *
fleet_writer(void *arg)
{
	struct fleet_run *r = arg;
	char *urls[1] = { (char *)r->f_url };
	struct rpc_error err;
	struct nasc *n;
	double end;

	if (nasc_open(urls, 1, RPC_CLIENT_DIAL_NOW, &n, &err) != 0) {
		fprintf(stderr, "fleet: %s\n", err.re_msg);
		pthread_mutex_lock(&r->f_mu);
		r->f_failed++;
		pthread_mutex_unlock(&r->f_mu);
		pthread_barrier_wait(&r->f_ready);
		return NULL;
	}
	nasc_set_inline(n, !r->f_normal);
	pthread_barrier_wait(&r->f_ready);
	for (;;) {
		char comp[48];
		struct nasc_put p = { "fleet", comp, "raw", 0, 0 };
		struct nasc_info info;
		uint8_t buf[FLEET_SIZE];
		uint64_t stamp;
		size_t i;

		pthread_mutex_lock(&r->f_mu);
		i = r->f_next++;
		pthread_mutex_unlock(&r->f_mu);
		if (i >= r->f_count)
			break;
		/* New bytes in every round and every process: nothing deduplicates across them. */
		stamp = (uint64_t)getpid() << 40 ^ (uint64_t)r->f_round << 24 ^ i;
		memcpy(buf, r->f_data[i % FLEET_CKPTS], FLEET_SIZE);
		memcpy(buf, &stamp, sizeof(stamp));
		snprintf(comp, sizeof(comp), "p%ld-r%u-c%06zu", (long)getpid(), r->f_round, i);
		if (nasc_store_buf(n, &p, buf, FLEET_SIZE, 0, &info, &err) != 0) {
			fprintf(stderr, "fleet: store %s: %s\n", comp, err.re_msg);
			pthread_mutex_lock(&r->f_mu);
			r->f_failed++;
			pthread_mutex_unlock(&r->f_mu);
		}
	}
	end = fleet_now();
	pthread_mutex_lock(&r->f_mu);
	if (end > r->f_end)
		r->f_end = end;
	pthread_mutex_unlock(&r->f_mu);
	nasc_close(n);
	return NULL;
}

/* CPU seconds of this process so far, every thread's (user and system). */
static double
fleet_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int
fleet_stat(const char *url, uint64_t *ret_writes, uint64_t *ret_commits)
{
	Ckpt__V1__StatRequest req = CKPT__V1__STAT_REQUEST__INIT;
	Ckpt__V1__StatReply *rep;
	char *urls[1] = { (char *)url };
	struct rpc_error err;
	struct nasc *n;
	int rv;

	rv = nasc_open(urls, 1, 0, &n, &err);
	if (rv == 0)
		rv = nasc_call(n, NAS_STAT, &req.base, 0, (ProtobufCMessage **)&rep, &err);
	if (rv != 0) {
		fprintf(stderr, "fleet: stat: %s\n", err.re_msg);
		nasc_close(n);
		return rv;
	}
	*ret_writes = rep->writes;
	*ret_commits = rep->write_commits;
	rpc_reply_free(&rep->base);
	nasc_close(n);
	return 0;
}

int
main(int argc, char **argv)
{
	static uint8_t data[FLEET_CKPTS][FLEET_SIZE];
	unsigned writers[16] = { 1, 4, 16 }, nw = 3;
	size_t count = FLEET_CKPTS;
	bool normal = false;
	double base = 0;

	while (argc > 1 && argv[1][0] == '-') {
		if (strcmp(argv[1], "--normal") == 0) {
			normal = true;
			argv++;
			argc--;
		} else if (strcmp(argv[1], "-n") == 0 && argc > 2) {
			long c = strtol(argv[2], NULL, 10);
			if (c < 1 || c > FLEET_COUNT_MAX) {
				fprintf(stderr, "fleet: -n: 1 to %d\n", FLEET_COUNT_MAX);
				return 2;
			}
			count = (size_t)c;
			argv += 2;
			argc -= 2;
		} else {
			break;
		}
	}
	if (argc < 3) {
		fprintf(stderr, "usage: fleet [-n COUNT] [--normal] NAS_URL W4_DIR [WRITERS...]\n");
		return 2;
	}
	for (size_t i = 0; i < FLEET_CKPTS; i++) {
		char path[4096];
		FILE *f;
		snprintf(path, sizeof(path), "%s/ckpt%04zu", argv[2], i);
		f = fopen(path, "rb");
		if (f == NULL || fread(data[i], 1, FLEET_SIZE, f) != FLEET_SIZE) {
			fprintf(stderr, "fleet: cannot read %s (made by workloads.py)\n", path);
			return 1;
		}
		fclose(f);
	}
	if (argc > 3) {
		nw = 0;
		for (int i = 3; i < argc && nw < 16; i++) {
			long w = strtol(argv[i], NULL, 10);
			if (w < 1 || w > FLEET_WRITERS_MAX) {
				fprintf(stderr, "fleet: writers: 1 to %d\n", FLEET_WRITERS_MAX);
				return 2;
			}
			writers[nw++] = (unsigned)w;
		}
	}
	{
		char vs[16];
		snprintf(vs, sizeof(vs), "vs %u", writers[0]);
		printf("%-10s %12s %10s %22s %16s\n", "writers", "ckpt/s", vs, "NAS commits per ckpt",
		    "writer us/ckpt");
	}
	for (unsigned k = 0; k < nw; k++) {
		struct fleet_run r = { .f_url = argv[1], .f_round = k, .f_data = data, .f_count = count,
			.f_normal = normal, .f_mu = PTHREAD_MUTEX_INITIALIZER };
		pthread_t t[FLEET_WRITERS_MAX];
		uint64_t w0, c0, w1, c1;
		unsigned started = 0;
		double t0, dt, rate, cpu0, cpu;

		if (fleet_stat(argv[1], &w0, &c0) != 0)
			return 1;
		/* From before the writers connect: their connections' setup is theirs too. */
		cpu0 = fleet_cpu();
		if (pthread_barrier_init(&r.f_ready, NULL, writers[k] + 1) != 0)
			return 1;
		for (unsigned i = 0; i < writers[k]; i++)
			started += pthread_create(&t[started], NULL, fleet_writer, &r) == 0;
		if (started != writers[k]) {
			fprintf(stderr, "fleet: cannot start %u writers\n", writers[k]);
			return 1; /* (the started ones wait at the barrier) */
		}
		pthread_barrier_wait(&r.f_ready);
		t0 = fleet_now();
		for (unsigned i = 0; i < started; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&r.f_ready);
		cpu = fleet_cpu() - cpu0;
		dt = r.f_end - t0;
		if (r.f_failed != 0 || fleet_stat(argv[1], &w1, &c1) != 0) {
			fprintf(stderr, "fleet: %d stores failed\n", r.f_failed);
			return 1;
		}
		rate = (double)count / dt;
		if (k == 0)
			base = rate;
		if (c1 == c0) /* a NAS older than the writes counters */
			printf("%-10u %12.0f %10.2f %22s %16.0f\n", writers[k], rate, rate / base, "-",
			    cpu * 1e6 / (double)count);
		else
			printf("%-10u %12.0f %10.2f %22.2f %16.0f\n", writers[k], rate, rate / base,
			    (double)(c1 - c0) / (double)count, cpu * 1e6 / (double)count);
	}
	return 0;
}

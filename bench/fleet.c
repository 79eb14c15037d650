/*
 * fleet: many agents checkpointing small components into one NAS at once
 * (workload W4: 1000 checkpoints of 4 KiB). Not a test: it prints a table.
 *
 *   fleet NAS_URL W4_DIR [WRITERS...]     (bench/fleet.sh starts the NAS)
 *
 * For each number of writers (default 1 4 16), that many threads, each with
 * its own client connection (as separate agents have), store the 1000
 * checkpoints between them, each as its own component, every one durable
 * when acknowledged. Printed: checkpoints per second, the ratio against one
 * writer measured in the same run, and the NAS's write transactions per
 * checkpoint (from Stat: below 2, concurrent writes shared commits).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt/v1/nas.pb-c.h"
#include "methods.h"
#include "nasc.h"

#define FLEET_CKPTS 1000
#define FLEET_SIZE 4096
#define FLEET_WRITERS_MAX 64

struct fleet_run {
	const char *f_url;
	unsigned f_round;             /* components are new in every round */
	uint8_t (*f_data)[FLEET_SIZE];
	size_t f_next;                /* the next checkpoint to store */
	pthread_mutex_t f_mu;
	int f_failed;
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

	if (nasc_open(urls, 1, 0, &n, &err) != 0) {
		fprintf(stderr, "fleet: %s\n", err.re_msg);
		pthread_mutex_lock(&r->f_mu);
		r->f_failed++;
		pthread_mutex_unlock(&r->f_mu);
		return NULL;
	}
	for (;;) {
		char comp[32];
		struct nasc_put p = { "fleet", comp, "raw", 0, 0 };
		struct nasc_info info;
		size_t i;

		pthread_mutex_lock(&r->f_mu);
		i = r->f_next++;
		pthread_mutex_unlock(&r->f_mu);
		if (i >= FLEET_CKPTS)
			break;
		snprintf(comp, sizeof(comp), "r%u-c%04zu", r->f_round, i);
		if (nasc_store_buf(n, &p, r->f_data[i], FLEET_SIZE, 0, &info, &err) != 0) {
			fprintf(stderr, "fleet: store %s: %s\n", comp, err.re_msg);
			pthread_mutex_lock(&r->f_mu);
			r->f_failed++;
			pthread_mutex_unlock(&r->f_mu);
		}
	}
	nasc_close(n);
	return NULL;
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
	double base = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: fleet NAS_URL W4_DIR [WRITERS...]\n");
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
		printf("%-10s %12s %10s %22s\n", "writers", "ckpt/s", vs, "NAS commits per ckpt");
	}
	for (unsigned k = 0; k < nw; k++) {
		struct fleet_run r = { argv[1], k, data, 0, PTHREAD_MUTEX_INITIALIZER, 0 };
		pthread_t t[FLEET_WRITERS_MAX];
		uint64_t w0, c0, w1, c1;
		unsigned started = 0;
		double t0, dt, rate;

		if (fleet_stat(argv[1], &w0, &c0) != 0)
			return 1;
		t0 = fleet_now();
		for (unsigned i = 0; i < writers[k]; i++)
			started += pthread_create(&t[started], NULL, fleet_writer, &r) == 0;
		for (unsigned i = 0; i < started; i++)
			pthread_join(t[i], NULL);
		dt = fleet_now() - t0;
		if (r.f_failed != 0 || started != writers[k] || fleet_stat(argv[1], &w1, &c1) != 0) {
			fprintf(stderr, "fleet: %d stores failed\n", r.f_failed);
			return 1;
		}
		rate = FLEET_CKPTS / dt;
		if (k == 0)
			base = rate;
		if (c1 == c0) /* a NAS older than the writes counters */
			printf("%-10u %12.0f %10.2f %22s\n", writers[k], rate, rate / base, "-");
		else
			printf("%-10u %12.0f %10.2f %22.2f\n", writers[k], rate, rate / base,
			    (double)(c1 - c0) / FLEET_CKPTS);
	}
	return 0;
}

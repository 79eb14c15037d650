/*
 * The metrics updates of the NAS's Stores, without the Stores: each of T
 * threads makes the five updates one Store makes (ckpt_rpc_requests_total
 * {service,method,code}, ckpt_rpc_request_duration_seconds{service,method},
 * ckpt_nas_checkpoints_stored_total{component} over C components,
 * ckpt_nas_checkpoint_bytes_total and ckpt_nas_received_bytes_total), N
 * times, and prints the CPU (getrusage, every thread) and wall time per
 * Store's five. Not a test; checks only that the totals came out right.
 *
 *   build/bench/bench_metrics [N [C]]        (threads 1, 2, 4, 8)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "metrics.h"

struct bm {
	struct metrics *bm_m;
	struct metrics_fam *bm_req, *bm_dur, *bm_stored, *bm_bytes, *bm_recv;
	long bm_n, bm_comps;
	char (*bm_names)[32];
};

static void *
bm_run(void *arg)
{
	struct bm *b = arg;

	for (long i = 0; i < b->bm_n; i++) {
		metrics_inc(b->bm_req, 1, METRICS_L("Nas", "Store", "OK"));
		metrics_observe(b->bm_dur, 0.002, METRICS_L("Nas", "Store"));
		metrics_inc(b->bm_stored, 1, METRICS_L(b->bm_names[i % b->bm_comps]));
		metrics_inc(b->bm_bytes, 4096, NULL, 0);
		metrics_inc(b->bm_recv, 4096, NULL, 0);
	}
	return NULL;
}

static double
bm_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double
bm_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000, comps = argc > 2 ? atol(argv[2]) : 1000;
	static const int threads[] = { 1, 2, 4, 8 };

	if (n <= 0 || comps <= 0 || comps > METRICS_SERIES_MAX) {
		fprintf(stderr, "usage: bench_metrics [N [COMPONENTS <= %d]]\n", METRICS_SERIES_MAX);
		return 2;
	}
	printf("%-8s %14s %14s  (per Store: its 5 updates; %ld per thread, %ld components)\n",
	    "threads", "CPU ns", "wall ns", n, comps);
	for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
		struct bm b = { .bm_n = n, .bm_comps = comps };
		pthread_t th[8];
		double c0, w0, c1, w1;
		char *text, want[128];
		size_t len;

		b.bm_names = calloc((size_t)comps, sizeof(*b.bm_names));
		if (b.bm_names == NULL || metrics_new(&b.bm_m) != 0 ||
		    metrics_add_family(b.bm_m, METRICS_COUNTER, "ckpt_rpc_requests_total", "",
			"service,method,code", NULL, 0, &b.bm_req) != 0 ||
		    metrics_add_family(b.bm_m, METRICS_HISTOGRAM, "ckpt_rpc_request_duration_seconds",
			"", "service,method", metrics_latency_buckets, metrics_latency_nbuckets,
			&b.bm_dur) != 0 ||
		    metrics_add_family(b.bm_m, METRICS_COUNTER, "ckpt_nas_checkpoints_stored_total",
			"", "component", NULL, 0, &b.bm_stored) != 0 ||
		    metrics_add_family(b.bm_m, METRICS_COUNTER, "ckpt_nas_checkpoint_bytes_total", "",
			NULL, NULL, 0, &b.bm_bytes) != 0 ||
		    metrics_add_family(b.bm_m, METRICS_COUNTER, "ckpt_nas_received_bytes_total", "",
			NULL, NULL, 0, &b.bm_recv) != 0)
			return 1;
		for (long i = 0; i < comps; i++) {
			snprintf(b.bm_names[i], sizeof(b.bm_names[i]), "component-%ld", i);
			metrics_inc(b.bm_stored, 0, METRICS_L(b.bm_names[i]));
		}
		c0 = bm_cpu();
		w0 = bm_wall();
		for (int i = 0; i < threads[t]; i++)
			pthread_create(&th[i], NULL, bm_run, &b);
		for (int i = 0; i < threads[t]; i++)
			pthread_join(th[i], NULL);
		c1 = bm_cpu();
		w1 = bm_wall();
		if (metrics_render(b.bm_m, &text, &len) != 0)
			return 1;
		snprintf(want, sizeof(want), "ckpt_rpc_requests_total{service=\"Nas\",method=\"Store\",code=\"OK\"} %ld\n",
		    n * threads[t]);
		if (strstr(text, want) == NULL) {
			fprintf(stderr, "bench_metrics: wrong total, wanted %s", want);
			return 1;
		}
		free(text);
		printf("%-8d %14.0f %14.0f\n", threads[t], (c1 - c0) * 1e9 / (double)(n * threads[t]),
		    (w1 - w0) * 1e9 / (double)(n * threads[t]));
		metrics_free(b.bm_m);
		free(b.bm_names);
	}
	return 0;
}

/*
 * latency: a real-time-like task for bench/disturb.sh. A thread wakes every
 * PERIOD_US microseconds at absolute times (clock_nanosleep, TIMER_ABSTIME on
 * CLOCK_MONOTONIC, as cyclictest does) for SECONDS seconds and records how
 * late each wake-up is; prints one line:
 *
 *   samples=N p50_us=X p99_us=X max_us=X
 *
 *   build/bench/bench_latency SECONDS [PERIOD_US] [fifo]
 *
 * "fifo" runs the thread under SCHED_FIFO priority 50 (needs CAP_SYS_NICE;
 * it says so and stays SCHED_OTHER otherwise). Asserts nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t
ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

int
main(int argc, char **argv)
{
	unsigned seconds, period_us = 1000;
	uint64_t *lat, n, next, end;
	struct timespec ts;
	size_t cap, count = 0;

	if (argc < 2 || (seconds = (unsigned)strtoul(argv[1], NULL, 10)) == 0) {
		fprintf(stderr, "usage: %s SECONDS [PERIOD_US] [fifo]\n", argv[0]);
		return 2;
	}
	if (argc > 2)
		period_us = (unsigned)strtoul(argv[2], NULL, 10);
	if (period_us < 100 || period_us > 1000000) {
		fprintf(stderr, "%s: PERIOD_US out of range [100, 1000000]\n", argv[0]);
		return 2;
	}
	if (argc > 3 && strcmp(argv[3], "fifo") == 0) {
		struct sched_param sp = { .sched_priority = 50 };
		int rv = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
		if (rv != 0)
			fprintf(stderr, "%s: SCHED_FIFO refused (%s): SCHED_OTHER\n", argv[0],
			    strerror(rv));
	}
	n = (uint64_t)seconds * 1000000u / period_us;
	cap = (size_t)n;
	lat = calloc(cap, sizeof(*lat));
	if (lat == NULL)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	next = ts_ns(&ts) + (uint64_t)period_us * 1000u;
	end = next + (uint64_t)seconds * 1000000000u;
	while (next < end && count < cap) {
		struct timespec at = { (time_t)(next / 1000000000u), (long)(next % 1000000000u) };
		uint64_t now;

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
			;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = ts_ns(&ts);
		lat[count++] = now > next ? now - next : 0;
		next += (uint64_t)period_us * 1000u;
		/* Overran a whole period: count the miss once, resume on the grid. */
		while (next <= now)
			next += (uint64_t)period_us * 1000u;
	}
	qsort(lat, count, sizeof(*lat), cmp_u64);
	printf("samples=%zu p50_us=%.1f p99_us=%.1f max_us=%.1f\n", count,
	    count ? (double)lat[count / 2] / 1000.0 : 0.0,
	    count ? (double)lat[count * 99 / 100] / 1000.0 : 0.0,
	    count ? (double)lat[count - 1] / 1000.0 : 0.0);
	free(lat);
	return 0;
}

#include "rate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define NS_PER_S 1000000000ull
/* Far enough (292 years) that no one waits it out, low enough to add to. */
#define RATE_TAT_MAX (UINT64_MAX / 2)

struct rate {
	uint64_t r_bps;            /* bytes per second, RATE_MIN..RATE_MAX */
	uint64_t r_burst_ns;       /* the burst's worth of time */
	rate_clock_fn r_clock;
	void *r_clock_arg;
	pthread_mutex_t r_mu;      /* guards r_tat */
	uint64_t r_tat;            /* when the debt taken so far is paid (ns) */
	bool r_tat_set;            /* r_tat holds a time (false until the first take) */
	uint64_t r_waited;         /* sum of the waits returned (ns) */
};

static uint64_t
rate_clock_mono(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/*
 * n bytes' worth of time at bps, rounded up; without overflow for any n (no
 * 128-bit arithmetic: armhf has none): (n % bps) * 1e9 < 2^32 * 2^30.
 */
static uint64_t
rate_cost_ns(uint64_t bps, uint64_t n)
{
	uint64_t whole = n / bps, part = n % bps;

	if (whole >= UINT64_MAX / NS_PER_S)
		return RATE_TAT_MAX; /* centuries: the caller is stopped long before */
	return whole * NS_PER_S + (part * NS_PER_S + bps - 1) / bps;
}

int
rate_new(uint64_t bytes_per_s, uint64_t burst, rate_clock_fn clock, void *clock_arg,
    struct rate **ret_rate)
{
	struct rate *r;

	if (bytes_per_s < RATE_MIN || bytes_per_s > RATE_MAX || burst > bytes_per_s)
		return -EINVAL;
	if (burst == 0)
		burst = bytes_per_s / 10 > 0 ? bytes_per_s / 10 : 1;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->r_bps = bytes_per_s;
	r->r_burst_ns = rate_cost_ns(bytes_per_s, burst);
	r->r_clock = clock != NULL ? clock : rate_clock_mono;
	r->r_clock_arg = clock_arg;
	pthread_mutex_init(&r->r_mu, NULL);
	*ret_rate = r;
	return 0;
}

void
rate_free(struct rate *r)
{
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->r_mu);
	free(r);
}

uint64_t
rate_bytes_per_s(const struct rate *r)
{
	return r->r_bps;
}

uint64_t
rate_take(struct rate *r, uint64_t n)
{
	uint64_t now, cost = rate_cost_ns(r->r_bps, n), wait = 0;

	pthread_mutex_lock(&r->r_mu);
	/*
	 * A second later than the clock, so that now - burst (at most a
	 * second) is never below 0, even right after boot or on a test clock.
	 */
	now = r->r_clock(r->r_clock_arg) + NS_PER_S;
	/* Idle time refills the bucket up to the burst, no more. */
	if (!r->r_tat_set || r->r_tat + r->r_burst_ns < now) {
		r->r_tat = now - r->r_burst_ns;
		r->r_tat_set = true;
	}
	/* Saturates at centuries of debt instead of wrapping round to none. */
	r->r_tat = cost < RATE_TAT_MAX - r->r_tat ? r->r_tat + cost : RATE_TAT_MAX;
	if (r->r_tat > now)
		wait = r->r_tat - now;
	r->r_waited += wait < UINT64_MAX - r->r_waited ? wait : 0;
	pthread_mutex_unlock(&r->r_mu);
	return wait;
}

uint64_t
rate_waited_ns(struct rate *r)
{
	uint64_t w;

	pthread_mutex_lock(&r->r_mu);
	w = r->r_waited;
	pthread_mutex_unlock(&r->r_mu);
	return w;
}

int
rate_wait(struct rate *r, uint64_t n, rate_stop_fn stop, void *stop_arg)
{
	uint64_t wait = rate_take(r, n), until;

	if (wait == 0 || r->r_clock != rate_clock_mono)
		return 0;
	until = rate_clock_mono(NULL) + wait;
	for (;;) {
		uint64_t now = rate_clock_mono(NULL), step;
		struct timespec ts;

		if (stop != NULL && stop(stop_arg))
			return -ECANCELED;
		if (now >= until)
			return 0;
		step = until - now;
		if (step > (uint64_t)RATE_STEP_MS * 1000000u)
			step = (uint64_t)RATE_STEP_MS * 1000000u;
		ts.tv_sec = (time_t)(step / NS_PER_S);
		ts.tv_nsec = (long)(step % NS_PER_S);
		/* EINTR: the loop measures again. */
		(void)clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	}
}

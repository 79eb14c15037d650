#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "rate.h"
#include "../testrun.h"

/* A clock the test moves by hand (ns). */
static uint64_t
test_clock(void *arg)
{
	return *(uint64_t *)arg;
}

#define MS 1000000ull
#define S 1000000000ull

START_TEST(rate_rejects_bounds)
{
	struct rate *r = NULL;
	uint64_t t = 0;

	ck_assert_int_eq(rate_new(0, 0, test_clock, &t, &r), -EINVAL);
	ck_assert_int_eq(rate_new(RATE_MAX + 1, 0, test_clock, &t, &r), -EINVAL);
	ck_assert_int_eq(rate_new(1000, 1001, test_clock, &t, &r), -EINVAL);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(rate_new(RATE_MAX, 0, test_clock, &t, &r), 0);
	ck_assert_uint_eq(rate_bytes_per_s(r), RATE_MAX);
	rate_free(r);
	rate_free(NULL);
}
END_TEST

START_TEST(rate_burst_goes_at_once_then_pays)
{
	struct rate *r;
	uint64_t t = 100 * S;

	/* 1000 B/s, burst 100 B (the default: a tenth of a second). */
	ck_assert_int_eq(rate_new(1000, 0, test_clock, &t, &r), 0);
	ck_assert_uint_eq(rate_take(r, 100), 0);        /* the full bucket */
	ck_assert_uint_eq(rate_take(r, 1), 1 * MS);     /* 1 B at 1000 B/s */
	ck_assert_uint_eq(rate_take(r, 500), 501 * MS); /* queued behind the first */
	t += 501 * MS;                                  /* it waited and sent */
	ck_assert_uint_eq(rate_take(r, 10), 10 * MS);
	ck_assert_uint_eq(rate_waited_ns(r), (1 + 501 + 10) * MS);
	rate_free(r);
}
END_TEST

START_TEST(rate_idle_refills_up_to_the_burst_only)
{
	struct rate *r;
	uint64_t t = 5 * S;

	ck_assert_int_eq(rate_new(1000, 200, test_clock, &t, &r), 0);
	ck_assert_uint_eq(rate_take(r, 1000), 800 * MS); /* 1 s of bytes, 0.2 s of burst */
	t += 800 * MS;
	t += 60 * S; /* a minute idle: the bucket holds 200 B, not 60000 */
	ck_assert_uint_eq(rate_take(r, 200), 0);
	ck_assert_uint_eq(rate_take(r, 1), 1 * MS);
	/* Half refilled: 100 ms idle is 100 B. */
	t += 1 * MS + 100 * MS;
	ck_assert_uint_eq(rate_take(r, 100), 0);
	ck_assert_uint_eq(rate_take(r, 3), 3 * MS);
	rate_free(r);
}
END_TEST

START_TEST(rate_average_holds_over_many_takes)
{
	struct rate *r;
	uint64_t t = 0, sent = 0, start;

	/* 1 MiB/s sent in 64 KiB messages: 16 MiB take 16 s less the burst. */
	ck_assert_int_eq(rate_new(1u << 20, 0, test_clock, &t, &r), 0);
	start = t;
	for (int i = 0; i < 256; i++) {
		t += rate_take(r, 64u << 10);
		sent += 64u << 10;
	}
	/* The last message may go once 16 MiB minus the burst are paid for. */
	ck_assert_uint_eq(sent, 16u << 20);
	ck_assert_uint_ge(t - start, 15 * S);
	ck_assert_uint_le(t - start, 16 * S);
	rate_free(r);
}
END_TEST

START_TEST(rate_rounds_up_and_never_overflows)
{
	struct rate *r;
	uint64_t t = 0;

	ck_assert_int_eq(rate_new(3, 1, test_clock, &t, &r), 0);
	ck_assert_uint_eq(rate_take(r, 1), 0);
	ck_assert_uint_eq(rate_take(r, 1), 333333334); /* 1/3 s, rounded up */
	rate_free(r);
	ck_assert_int_eq(rate_new(RATE_MAX, 0, test_clock, &t, &r), 0);
	ck_assert_uint_eq(rate_take(r, RATE_MAX / 10), 0);
	ck_assert_uint_eq(rate_take(r, RATE_MAX), S); /* one second, exactly */
	rate_free(r);
	ck_assert_int_eq(rate_new(1, 0, test_clock, &t, &r), 0);
	ck_assert_uint_gt(rate_take(r, UINT64_MAX), 1000 * S); /* saturates, no wrap to 0 */
	rate_free(r);
}
END_TEST

static bool
stop_now(void *arg)
{
	(void)arg;
	return true;
}

START_TEST(rate_wait_stops_when_asked)
{
	struct rate *r;

	/* The real clock: 1 B/s and 10 bytes owed is ten seconds, cut short by stop. */
	ck_assert_int_eq(rate_new(1, 1, NULL, NULL, &r), 0);
	ck_assert_int_eq(rate_wait(r, 1, NULL, NULL), 0); /* the burst */
	ck_assert_int_eq(rate_wait(r, 10, stop_now, NULL), -ECANCELED);
	rate_free(r);
}
END_TEST

struct taker {
	struct rate *t_rate;
	uint64_t t_waits;
};

static void *
taker_main(void *arg)
{
	struct taker *tk = arg;
	for (int i = 0; i < 1000; i++)
		tk->t_waits += rate_take(tk->t_rate, 10);
	return NULL;
}

START_TEST(rate_shared_by_threads_counts_every_byte)
{
	struct taker tk[4];
	pthread_t th[4];
	struct rate *r;
	uint64_t t = 0;

	/* The clock stands still: 4 x 1000 x 10 B at 1000 B/s is 40 s of debt less the burst. */
	ck_assert_int_eq(rate_new(1000, 100, test_clock, &t, &r), 0);
	for (int i = 0; i < 4; i++) {
		tk[i].t_rate = r;
		tk[i].t_waits = 0;
		ck_assert_int_eq(pthread_create(&th[i], NULL, taker_main, &tk[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ck_assert_uint_eq(rate_take(r, 0), 40 * S - 100 * MS);
	rate_free(r);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("rate");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, rate_rejects_bounds);
	tcase_add_test(tc, rate_burst_goes_at_once_then_pays);
	tcase_add_test(tc, rate_idle_refills_up_to_the_burst_only);
	tcase_add_test(tc, rate_average_holds_over_many_takes);
	tcase_add_test(tc, rate_rounds_up_and_never_overflows);
	tcase_add_test(tc, rate_wait_stops_when_asked);
	tcase_add_test(tc, rate_shared_by_threads_counts_every_byte);
	suite_add_tcase(s, tc);
	return test_run(s);
}

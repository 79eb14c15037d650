#include <check.h>
#include <stdint.h>

#include "limit.h"
#include "../testrun.h"

#define MS 1000000ull
#define S 1000000000ull

START_TEST(limit_bucket_takes_a_burst_then_one_per_token)
{
	uint64_t tat = 0, now = 50 * S;
	int got = 0;

	/* 10 per second (100 ms a token), burst 5: five at once, then none. */
	for (int i = 0; i < 20; i++)
		got += limit_bucket_take(&tat, now, 100 * MS, 5) ? 1 : 0;
	ck_assert_int_eq(got, 5);
	/* 100 ms later one more fits, and only one. */
	now += 100 * MS;
	ck_assert(limit_bucket_take(&tat, now, 100 * MS, 5));
	ck_assert(!limit_bucket_take(&tat, now, 100 * MS, 5));
}
END_TEST

START_TEST(limit_bucket_refused_take_leaves_it_unchanged)
{
	uint64_t tat = 0, now = 7 * S, before;

	ck_assert(limit_bucket_take(&tat, now, S, 1));
	before = tat;
	ck_assert(!limit_bucket_take(&tat, now, S, 1));
	ck_assert_uint_eq(tat, before);
}
END_TEST

START_TEST(limit_bucket_idle_refills_to_the_burst_only)
{
	uint64_t tat = 0, now = S;
	int got = 0;

	ck_assert(limit_bucket_take(&tat, now, 10 * MS, 3));
	now += 3600 * S; /* an hour idle */
	for (int i = 0; i < 10; i++)
		got += limit_bucket_take(&tat, now, 10 * MS, 3) ? 1 : 0;
	ck_assert_int_eq(got, 3);
}
END_TEST

START_TEST(limit_bucket_average_holds)
{
	uint64_t tat = 0, now = S;
	int got = 0;

	/* 1000 tries a millisecond apart at 100/s, burst 10: 10 + 100 per second of time. */
	for (int i = 0; i < 1000; i++, now += MS)
		got += limit_bucket_take(&tat, now, 10 * MS, 10) ? 1 : 0;
	ck_assert_int_ge(got, 100);
	ck_assert_int_le(got, 111);
}
END_TEST

START_TEST(limit_log_goes_once_per_interval_and_counts_the_rest)
{
	uint64_t last = 0, held = 0, n = 99;

	ck_assert(limit_log_ok(&last, &held, 1000, 5000, &n));
	ck_assert_uint_eq(n, 0);
	ck_assert(!limit_log_ok(&last, &held, 1001, 5000, &n));
	ck_assert(!limit_log_ok(&last, &held, 5999, 5000, &n));
	ck_assert(limit_log_ok(&last, &held, 6000, 5000, &n));
	ck_assert_uint_eq(n, 2);
	ck_assert(!limit_log_ok(&last, &held, 6001, 5000, &n));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("limit");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, limit_bucket_takes_a_burst_then_one_per_token);
	tcase_add_test(tc, limit_bucket_refused_take_leaves_it_unchanged);
	tcase_add_test(tc, limit_bucket_idle_refills_to_the_burst_only);
	tcase_add_test(tc, limit_bucket_average_holds);
	tcase_add_test(tc, limit_log_goes_once_per_interval_and_counts_the_rest);
	suite_add_tcase(s, tc);
	return test_run(s);
}

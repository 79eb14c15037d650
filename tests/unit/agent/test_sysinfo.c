/* Capacity from /proc: parsers on fixtures, and the running system. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "sysinfo.h"
#include "../testrun.h"

START_TEST(sysinfo_parses_meminfo)
{
	const char *text = "MemTotal:        8030000 kB\n"
	                   "MemFree:          100000 kB\n"
	                   "MemAvailable:    5000000 kB\n"
	                   "Buffers:           12345 kB\n";
	uint64_t free_b = 0, total = 0;

	ck_assert_int_eq(sysinfo_parse_meminfo(text, &free_b, &total), 0);
	ck_assert_uint_eq(total, 8030000ull * 1024);
	ck_assert_uint_eq(free_b, 5000000ull * 1024);
}
END_TEST

START_TEST(sysinfo_falls_back_to_memfree_without_memavailable)
{
	const char *text = "MemTotal: 2048 kB\nMemFree: 1024 kB\n";
	uint64_t free_b = 0, total = 0;

	ck_assert_int_eq(sysinfo_parse_meminfo(text, &free_b, &total), 0);
	ck_assert_uint_eq(free_b, 1024ull * 1024);
	ck_assert_uint_eq(total, 2048ull * 1024);
}
END_TEST

START_TEST(sysinfo_rejects_meminfo_without_total)
{
	static const char *const bad[] = { "", "MemFree: 10 kB\n", "MemTotal: x kB\nMemFree: 1 kB\n",
		"MemTotal: 10 kB\n", "MemTotalX: 10 kB\nMemFree: 1 kB\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t f = 7, t = 7;
		ck_assert_int_eq(sysinfo_parse_meminfo(bad[i], &f, &t), -EINVAL);
		ck_assert_uint_eq(f, 7); /* untouched on failure */
	}
}
END_TEST

START_TEST(sysinfo_parses_loadavg)
{
	uint32_t milli = 0;

	ck_assert_int_eq(sysinfo_parse_loadavg("0.52 0.58 0.59 1/467 12345\n", &milli), 0);
	ck_assert_uint_eq(milli, 520);
	ck_assert_int_eq(sysinfo_parse_loadavg("12.00 1.00 1.00 1/1 1", &milli), 0);
	ck_assert_uint_eq(milli, 12000);
	ck_assert_int_eq(sysinfo_parse_loadavg("", &milli), -EINVAL);
	ck_assert_int_eq(sysinfo_parse_loadavg("-1 0 0", &milli), -EINVAL);
	ck_assert_int_eq(sysinfo_parse_loadavg("abc", &milli), -EINVAL);
}
END_TEST

START_TEST(sysinfo_reads_sane_values_of_this_machine)
{
	struct sysinfo_cap c = { 0 };

	ck_assert_int_eq(sysinfo_read(&c), 0);
	ck_assert_uint_gt(c.sc_mem_total, 16ull << 20);
	ck_assert_uint_gt(c.sc_mem_free, 0);
	ck_assert_uint_le(c.sc_mem_free, c.sc_mem_total);
	ck_assert_uint_ge(c.sc_cpus, 1);
	ck_assert_uint_lt(c.sc_load_milli, 100000000u);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sysinfo");
	TCase *tc = tcase_create("sysinfo");

	tcase_add_test(tc, sysinfo_parses_meminfo);
	tcase_add_test(tc, sysinfo_falls_back_to_memfree_without_memavailable);
	tcase_add_test(tc, sysinfo_rejects_meminfo_without_total);
	tcase_add_test(tc, sysinfo_parses_loadavg);
	tcase_add_test(tc, sysinfo_reads_sane_values_of_this_machine);
	suite_add_tcase(s, tc);
	return test_run(s);
}

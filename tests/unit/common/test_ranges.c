#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ranges.h"
#include "../testrun.h"

static int
parse(const char *text, uint64_t page, struct nasc_range **r, size_t *n, char *err)
{
	return ranges_parse(text, strlen(text), page, r, n, err, 256);
}

START_TEST(ranges_reads_the_three_forms)
{
	struct nasc_range *r;
	char err[256];
	size_t n;

	ck_assert_int_eq(parse("# comment 1 2\n7 3-5,0x10\n\n100+1 0x20+0x10 # tail\n", 4096, &r, &n,
	    err), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_uint_eq(r[0].nr_off, 7 * 4096);
	ck_assert_uint_eq(r[0].nr_len, 4096);
	ck_assert_uint_eq(r[1].nr_off, 3 * 4096);
	ck_assert_uint_eq(r[1].nr_len, 3 * 4096);
	ck_assert_uint_eq(r[2].nr_off, 16 * 4096);
	ck_assert_uint_eq(r[2].nr_len, 4096);
	ck_assert_uint_eq(r[3].nr_off, 100);
	ck_assert_uint_eq(r[3].nr_len, 1);
	ck_assert_uint_eq(r[4].nr_off, 32);
	ck_assert_uint_eq(r[4].nr_len, 16);
	free(r);
	/* Another page size. */
	ck_assert_int_eq(parse("2", 65536, &r, &n, err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(r[0].nr_off, 131072);
	ck_assert_uint_eq(r[0].nr_len, 65536);
	free(r);
}
END_TEST

START_TEST(ranges_empty_means_nothing_changed)
{
	struct nasc_range *r = (void *)1;
	char err[256];
	size_t n = 9;

	ck_assert_int_eq(parse("", 4096, &r, &n, err), 0);
	ck_assert_uint_eq(n, 0);
	free(r);
	ck_assert_int_eq(parse(" \n# nothing\n,\n", 4096, &r, &n, err), 0);
	ck_assert_uint_eq(n, 0);
	free(r);
}
END_TEST

START_TEST(ranges_refuses_bad_tokens_with_their_line)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "1\nx", "line 2: 'x': not a number" },
		{ "5-3", "M below N" },
		{ "4+0", "LEN 0" },
		{ "1-", "expected N, N-M or OFF+LEN" },
		{ "1+2+3", "expected N, N-M or OFF+LEN" },
		{ "-1", "not a number" },
		{ "0x", "expected N, N-M or OFF+LEN" },
		{ "0xg", "not a number" },
		{ "99999999999999999999", "not a number" },
		{ "18446744073709551615+1", "past 2^64" },
		{ "4503599627370496", "page number too large" },
		{ "1-4503599627370496", "page number too large" },
		{ "1.5", "expected N, N-M or OFF+LEN" },
	};
	struct nasc_range *r;
	char err[256];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(parse(bad[i].text, 4096, &r, &n, err), -EINVAL);
		ck_assert_msg(strstr(err, bad[i].why) != NULL, "%s: got '%s'", bad[i].text, err);
		ck_assert_uint_eq(n, 0);
		ck_assert_ptr_null(r);
	}
}
END_TEST

START_TEST(ranges_refuses_bad_page_sizes)
{
	struct nasc_range *r;
	char err[256];
	size_t n;

	ck_assert_int_eq(parse("1", 1000, &r, &n, err), -EINVAL);
	ck_assert_int_eq(parse("1", 256, &r, &n, err), -EINVAL);
	ck_assert_int_eq(parse("1", RANGES_PAGE_MAX * 2, &r, &n, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "page size"));
	ck_assert_int_eq(parse("1", 512, &r, &n, err), 0);
	free(r);
}
END_TEST

START_TEST(ranges_load_reads_a_file_and_says_when_it_cannot)
{
	char path[] = "/tmp/ckpt-ranges-XXXXXX", err[256];
	struct nasc_range *r;
	size_t n;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "1 2-3\n", 6), 6);
	close(fd);
	ck_assert_int_eq(ranges_load(path, 4096, &r, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 2);
	free(r);
	unlink(path);
	ck_assert_int_eq(ranges_load(path, 4096, &r, &n, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "cannot open"));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("ranges");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, ranges_reads_the_three_forms);
	tcase_add_test(tc, ranges_empty_means_nothing_changed);
	tcase_add_test(tc, ranges_refuses_bad_tokens_with_their_line);
	tcase_add_test(tc, ranges_refuses_bad_page_sizes);
	tcase_add_test(tc, ranges_load_reads_a_file_and_says_when_it_cannot);
	suite_add_tcase(s, tc);
	return test_run(s);
}

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "../testrun.h"

struct conf {
	char *listen;
	int64_t workers;
	uint64_t after_ms;
	uint64_t size;
	bool verbose;
	struct cfg_list nas;
};

static const struct cfg_opt table[] = {
	{ "listen", CFG_STR, offsetof(struct conf, listen), NULL, 0, 0, CFG_REQUIRED, "URL", "where" },
	{ "workers", CFG_INT, offsetof(struct conf, workers), "4", 1, 64, 0, "N", "threads" },
	{ "migrate-after", CFG_DURATION, offsetof(struct conf, after_ms), "0", 0, 0, 0, "D", "after" },
	{ "size", CFG_SIZE, offsetof(struct conf, size), "64K", 0, 1 << 30, 0, "BYTES", "size" },
	{ "verbose", CFG_BOOL, offsetof(struct conf, verbose), "false", 0, 0, 0, NULL, "chatty" },
	{ "nas", CFG_LIST, offsetof(struct conf, nas), NULL, 0, 0, 0, "URL", "NAS" },
};
#define N (sizeof(table) / sizeof(table[0]))

static int
parse(struct conf *c, int argc, char **argv, int *argi, char *err)
{
	memset(c, 0, sizeof(*c));
	return cfg_parse(table, N, c, argc, argv, argi, err, 256);
}

START_TEST(cfg_defaults_then_flags)
{
	char *argv[] = { "p", "--listen", "tcp://x:1", "--workers=8", "--migrate-after", "3s",
		"--verbose", "--nas", "a,b", "--nas", "c", "cmd", "arg", NULL };
	struct conf c;
	char err[256] = "";
	int argi = 0;

	unsetenv("CKPT_WORKERS");
	ck_assert_int_eq(parse(&c, 13, argv, &argi, err), 0);
	ck_assert_str_eq(c.listen, "tcp://x:1");
	ck_assert_int_eq(c.workers, 8);
	ck_assert_uint_eq(c.after_ms, 3000);
	ck_assert_uint_eq(c.size, 65536);
	ck_assert(c.verbose);
	ck_assert_uint_eq(c.nas.cl_count, 3);
	ck_assert_str_eq(c.nas.cl_items[2], "c");
	ck_assert_int_eq(argi, 11);
	ck_assert_str_eq(argv[argi], "cmd");
	cfg_free(table, N, &c);
	ck_assert_ptr_null(c.listen);
}
END_TEST

START_TEST(cfg_environment_is_below_flags)
{
	char *argv1[] = { "p", "--listen", "u", NULL };
	char *argv2[] = { "p", "--listen", "u", "--workers", "2", NULL };
	struct conf c;
	char err[256];
	int argi;

	setenv("CKPT_WORKERS", "16", 1);
	setenv("CKPT_NAS", "x,y", 1);
	ck_assert_int_eq(parse(&c, 3, argv1, &argi, err), 0);
	ck_assert_int_eq(c.workers, 16);
	ck_assert_uint_eq(c.nas.cl_count, 2);
	cfg_free(table, N, &c);
	ck_assert_int_eq(parse(&c, 5, argv2, &argi, err), 0);
	ck_assert_int_eq(c.workers, 2);
	cfg_free(table, N, &c);
	setenv("CKPT_WORKERS", "many", 1);
	ck_assert_int_eq(parse(&c, 3, argv1, &argi, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "CKPT_WORKERS"));
	cfg_free(table, N, &c);
	unsetenv("CKPT_WORKERS");
	unsetenv("CKPT_NAS");
}
END_TEST

START_TEST(cfg_rejects_bad_input)
{
	static const struct {
		const char *a1, *a2;
		const char *needle;
	} cases[] = {
		{ "--workers", "0", "out of range" },
		{ "--workers", "65", "out of range" },
		{ "--workers", "x", "invalid value" },
		{ "--bogus", "1", "unknown option --bogus" },
		{ "--migrate-after", "soon", "invalid value" },
		{ "--size", "2G", "out of range" },
		{ "--verbose=maybe", "x", "invalid value" },
		{ "--nas", "a,,b", "invalid value" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = { "p", "--listen", "u", (char *)cases[i].a1, (char *)cases[i].a2, NULL };
		struct conf c;
		char err[256] = "";
		int argi;
		ck_assert_msg(parse(&c, 5, argv, &argi, err) == -EINVAL, "case %zu", i);
		ck_assert_msg(strstr(err, cases[i].needle) != NULL, "case %zu: '%s'", i, err);
		cfg_free(table, N, &c);
	}
}
END_TEST

START_TEST(cfg_url_options_need_a_scheme_and_ranges_name_units)
{
	static const struct cfg_opt urls[] = {
		{ "listen", CFG_STR, offsetof(struct conf, listen), NULL, 0, 0, CFG_URL, "URL", "u" },
		{ "nas", CFG_LIST, offsetof(struct conf, nas), NULL, 0, 0, CFG_URL, "URL", "n" },
		{ "migrate-after", CFG_DURATION, offsetof(struct conf, after_ms), "1s", 1, 600000, 0,
		    "D", "d" },
		{ "size", CFG_SIZE, offsetof(struct conf, size), "64K", 64, 4 << 20, 0, "B", "s" },
	};
	static const struct {
		const char *a1, *a2;
		const char *needle; /* NULL: accepted */
	} cases[] = {
		{ "--listen", "tcp://127.0.0.1:7420", NULL },
		{ "--listen", "ipc:///tmp/x", NULL },
		{ "--listen", "127.0.0.1:7420",
		    "'127.0.0.1:7420' is not a URL (did you mean tcp://127.0.0.1:7420?)" },
		{ "--listen", "/tmp/sock", "is not a URL (tcp://host:port or ipc:///path)" },
		{ "--nas", "tcp://a:1,b:2", "--nas: 'b:2' is not a URL (did you mean tcp://b:2?)" },
		{ "--migrate-after", "0", "out of range [1ms, 10m]" },
		{ "--size", "8M", "out of range [64, 4M]" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = { "p", (char *)cases[i].a1, (char *)cases[i].a2, NULL };
		struct conf c;
		char err[256] = "";
		int argi, rv;
		memset(&c, 0, sizeof(c));
		rv = cfg_parse(urls, 4, &c, 3, argv, &argi, err, sizeof(err));
		if (cases[i].needle == NULL)
			ck_assert_msg(rv == 0, "case %zu: %d '%s'", i, rv, err);
		else
			ck_assert_msg(rv == -EINVAL && strstr(err, cases[i].needle) != NULL,
			    "case %zu: '%s'", i, err);
		cfg_free(urls, 4, &c);
	}
}
END_TEST

START_TEST(cfg_required_and_help)
{
	char *argv1[] = { "p", NULL };
	char *argv2[] = { "p", "--help", NULL };
	char *argv3[] = { "p", "--listen", NULL };
	struct conf c;
	char err[256] = "";
	int argi;

	ck_assert_int_eq(parse(&c, 1, argv1, &argi, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "missing required option --listen (or CKPT_LISTEN)"));
	cfg_free(table, N, &c);
	ck_assert_int_eq(parse(&c, 2, argv2, &argi, err), -ECANCELED);
	cfg_free(table, N, &c);
	ck_assert_int_eq(parse(&c, 2, argv3, &argi, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "needs a value"));
	cfg_free(table, N, &c);
}
END_TEST

START_TEST(cfg_usage_lists_every_option)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cfg_usage(f, "prog", "[options]", table, N);
	fclose(f);
	for (size_t i = 0; i < N; i++)
		ck_assert_ptr_nonnull(strstr(buf, table[i].co_name));
	ck_assert_ptr_nonnull(strstr(buf, "CKPT_MIGRATE_AFTER"));
	ck_assert_ptr_nonnull(strstr(buf, "default 4"));
	free(buf);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("cfg");
	TCase *tc = tcase_create("cfg");

	tcase_add_test(tc, cfg_defaults_then_flags);
	tcase_add_test(tc, cfg_environment_is_below_flags);
	tcase_add_test(tc, cfg_rejects_bad_input);
	tcase_add_test(tc, cfg_required_and_help);
	tcase_add_test(tc, cfg_url_options_need_a_scheme_and_ranges_name_units);
	tcase_add_test(tc, cfg_usage_lists_every_option);
	suite_add_tcase(s, tc);
	return test_run(s);
}

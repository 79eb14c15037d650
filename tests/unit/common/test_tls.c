/* tls: which addresses the settings permit, and settings that cannot work refused at start. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls.h"
#include "../testrun.h"

static char ca[] = "ca.pem", cert[] = "cert.pem", key[] = "key.pem";
static struct tls_conf none = { .tc_allow_plain = false };
static struct tls_conf plain = { .tc_allow_plain = true };
static struct tls_conf files = { .tc_ca = ca, .tc_cert = cert, .tc_key = key };

/* url, settings, expected tls_url_check() result */
static const struct {
	const char *url;
	const struct tls_conf *conf;
	int rv;
} tls_cases[] = {
	{ "tcp://127.0.0.1:7410", &none, 0 },
	{ "tcp://127.8.9.10:7410", &none, 0 },
	{ "tcp://localhost:7410", &none, 0 },
	{ "tcp://[::1]:7410", &none, 0 },
	{ "tcp6://[::1]:7410", &none, 0 },
	{ "tcp4://127.0.0.1:0", &none, 0 },
	{ "ipc:///tmp/ckpt.sock", &none, 0 },
	{ "inproc://x", &none, 0 },
	{ "tcp://127.0.0.1:7410", NULL, 0 },
	{ "tcp://10.0.0.1:1", &none, -EPERM },
	{ "tcp://10.0.0.1:1", NULL, -EPERM },
	{ "tcp://0.0.0.0:7410", &none, -EPERM },
	{ "tcp://*:7410", &none, -EPERM },
	{ "tcp://[::]:7410", &none, -EPERM },
	{ "tcp://:7410", &none, -EPERM },
	{ "tcp://ckpt-nas:7410", &none, -EPERM },
	{ "tcp://localhost.example:7410", &none, -EPERM },
	{ "tcp://128.0.0.1:7410", &none, -EPERM },
	{ "tcp://[::2]:7410", &none, -EPERM },
	{ "ws://10.0.0.1:80/x", &none, -EPERM },
	{ "tcp://10.0.0.1:1", &plain, 0 },
	{ "tcp://0.0.0.0:7410", &plain, 0 },
	{ "tls+tcp://10.0.0.1:1", &none, -EINVAL },
	{ "tls+tcp://127.0.0.1:1", NULL, -EINVAL },
	{ "tls+tcp://127.0.0.1:1", &plain, -EINVAL },
	{ "tls+tcp://10.0.0.1:1", &files, 0 },
	{ "tls+tcp4://0.0.0.0:0", &files, 0 },
	{ "wss://10.0.0.1:443/x", &files, 0 },
	{ "tcp://10.0.0.1:1", &files, -EPERM },
};

START_TEST(tls_permits_only_safe_addresses)
{
	char err[512] = "";
	int rv = tls_url_check(tls_cases[_i].conf, tls_cases[_i].url, err, sizeof(err));

	ck_assert_msg(rv == tls_cases[_i].rv, "%s: got %d, want %d (%s)", tls_cases[_i].url, rv,
	    tls_cases[_i].rv, err);
	if (rv != 0)
		ck_assert_ptr_nonnull(strstr(err, tls_cases[_i].url));
	if (rv == -EPERM)
		ck_assert_ptr_nonnull(strstr(err, "--allow-plain"));
}
END_TEST

START_TEST(tls_refuses_incomplete_or_unreadable_files)
{
	struct tls_conf half = { .tc_ca = ca };
	struct tls_conf missing = { .tc_ca = "/nonexistent/ca.pem",
		.tc_cert = "/nonexistent/c.pem", .tc_key = "/nonexistent/k.pem" };
	struct tls_conf garbage;
	char dir[] = "/tmp/ckpt-test-tls-XXXXXX", path[64], err[512] = "";
	FILE *f;

	ck_assert_int_eq(tls_conf_check(NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(tls_conf_check(&none, err, sizeof(err)), 0);
	ck_assert_int_eq(tls_conf_check(&half, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "--tls-cert"));
	ck_assert_int_eq(tls_conf_check(&missing, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/ca.pem"));

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/x.pem", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", f);
	fclose(f);
	garbage = (struct tls_conf){ .tc_ca = path, .tc_cert = path, .tc_key = path };
	ck_assert_int_lt(tls_conf_check(&garbage, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "--tls-ca"));
	unlink(path);
	rmdir(dir);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("tls");

	tcase_add_loop_test(tc, tls_permits_only_safe_addresses, 0,
	    (int)(sizeof(tls_cases) / sizeof(tls_cases[0])));
	tcase_add_test(tc, tls_refuses_incomplete_or_unreadable_files);
	suite_add_tcase(s, tc);
	return test_run(s);
}

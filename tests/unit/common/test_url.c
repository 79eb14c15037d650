/* url: wildcard hosts are recognised, hosts replaced, peer addresses formatted. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"
#include "../testrun.h"

static const struct {
	const char *url;
	bool wildcard;
} url_cases[] = {
	{ "tcp://0.0.0.0:7431", true },
	{ "tcp://:7431", true },
	{ "tcp://*:7431", true },
	{ "tcp://[::]:7431", true },
	{ "tcp4://0.0.0.0:1", true },
	{ "tcp6://[::]:1", true },
	{ "tls+tcp://0.0.0.0:443", true },
	{ "ws://0.0.0.0:80/ckpt", true },
	{ "ws://0.0.0.0/ckpt", true },
	{ "wss://[::]/ckpt", true },
	{ "ws://node-1/ckpt", false },
	{ "tcp://127.0.0.1:7431", false },
	{ "tcp://node-1.example:7431", false },
	{ "tcp://[::1]:7431", false },
	{ "tcp://0.0.0.1:7431", false },
	{ "ipc:///tmp/agent.sock", false },
	{ "inproc://x", false },
	{ "tcp://0.0.0.0", false },       /* no port */
	{ "tcp://[::]", false },
	{ "nonsense", false },
	{ "", false },
};

START_TEST(url_knows_wildcard_hosts)
{
	ck_assert_msg(url_host_is_wildcard(url_cases[_i].url) == url_cases[_i].wildcard, "%s",
	    url_cases[_i].url);
}
END_TEST

START_TEST(url_replaces_the_host_and_keeps_the_rest)
{
	char out[128];

	ck_assert_int_eq(url_with_host("tcp://0.0.0.0:7431", "10.1.2.3", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "tcp://10.1.2.3:7431");
	ck_assert_int_eq(url_with_host("tcp://[::]:7431", "fd00::5", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "tcp://[fd00::5]:7431");
	ck_assert_int_eq(url_with_host("tcp://:7431", "::ffff:10.0.0.1", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "tcp://[::ffff:10.0.0.1]:7431");
	ck_assert_int_eq(url_with_host("ws://*:80/ckpt/v1", "10.1.2.3", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "ws://10.1.2.3:80/ckpt/v1");
	ck_assert_int_eq(url_with_host("tls+tcp6://[::]:1", "::1", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "tls+tcp6://[::1]:1");
	ck_assert_int_eq(url_with_host("ws://0.0.0.0/ckpt", "10.1.2.3", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "ws://10.1.2.3/ckpt");
	/* Nothing to replace, nothing to replace it with, no room. */
	ck_assert_int_eq(url_with_host("ipc:///tmp/a", "10.1.2.3", out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(url_with_host("tcp://0.0.0.0", "10.1.2.3", out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(url_with_host("tcp://[::1:7431", "10.1.2.3", out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(url_with_host("tcp://0.0.0.0:1", "", out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(url_with_host("tcp://0.0.0.0:7431", "10.1.2.3", out, 19), -ENAMETOOLONG);
	ck_assert_int_eq(url_with_host("tcp://0.0.0.0:7431", "10.1.2.3", out, 20), 0);
}
END_TEST

START_TEST(url_formats_peer_addresses)
{
	nng_sockaddr sa;
	char out[64];

	memset(&sa, 0, sizeof(sa));
	sa.s_in.sa_family = NNG_AF_INET;
	sa.s_in.sa_addr = htonl(0x7f000001);
	ck_assert_int_eq(url_sockaddr_host(&sa, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "127.0.0.1");
	memset(&sa, 0, sizeof(sa));
	sa.s_in6.sa_family = NNG_AF_INET6;
	sa.s_in6.sa_addr[15] = 1;
	ck_assert_int_eq(url_sockaddr_host(&sa, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "::1");
	memset(&sa, 0, sizeof(sa));
	sa.s_ipc.sa_family = NNG_AF_IPC;
	ck_assert_int_eq(url_sockaddr_host(&sa, out, sizeof(out)), -EAFNOSUPPORT);
}
END_TEST

/* The peer stands in for a wildcard host only where it can be dialed back with the scheme. */
START_TEST(url_puts_the_peer_where_it_can_be_dialed)
{
	nng_sockaddr v4, v6, mapped, link, ipc;
	char out[128];

	memset(&v4, 0, sizeof(v4));
	v4.s_in.sa_family = NNG_AF_INET;
	v4.s_in.sa_addr = htonl(0x0a000005); /* 10.0.0.5 */
	memset(&v6, 0, sizeof(v6));
	v6.s_in6.sa_family = NNG_AF_INET6;
	v6.s_in6.sa_addr[0] = 0xfd;
	v6.s_in6.sa_addr[15] = 5; /* fd00::5 */
	mapped = v6;
	memset(mapped.s_in6.sa_addr, 0, 16);
	mapped.s_in6.sa_addr[10] = mapped.s_in6.sa_addr[11] = 0xff;
	mapped.s_in6.sa_addr[12] = 10;
	mapped.s_in6.sa_addr[15] = 5; /* ::ffff:10.0.0.5, an IPv4 peer of a dual-stack listener */
	link = v6;
	link.s_in6.sa_addr[0] = 0xfe;
	link.s_in6.sa_addr[1] = 0x80;
	memset(&ipc, 0, sizeof(ipc));
	ipc.s_ipc.sa_family = NNG_AF_IPC;

	ck_assert_int_eq(url_with_peer("tcp://0.0.0.0:7431", &v4, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "tcp://10.0.0.5:7431");
	ck_assert_int_eq(url_with_peer("tcp://[::]:7431", &v6, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "tcp://[fd00::5]:7431");
	ck_assert_int_eq(url_with_peer("tcp4://0.0.0.0:7431", &mapped, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "tcp4://10.0.0.5:7431");
	ck_assert_int_eq(url_with_peer("tcp6://[::]:7431", &v6, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "tcp6://[fd00::5]:7431");
	ck_assert_int_eq(url_with_peer("tcp4://0.0.0.0:7431", &v6, out, sizeof(out)), -EAFNOSUPPORT);
	ck_assert_int_eq(url_with_peer("tcp6://[::]:7431", &v4, out, sizeof(out)), -EAFNOSUPPORT);
	ck_assert_int_eq(url_with_peer("tcp6://[::]:7431", &mapped, out, sizeof(out)), -EAFNOSUPPORT);
	ck_assert_int_eq(url_with_peer("tcp://[::]:7431", &link, out, sizeof(out)), -EADDRNOTAVAIL);
	ck_assert_int_eq(url_with_peer("tcp://0.0.0.0:7431", &ipc, out, sizeof(out)), -EAFNOSUPPORT);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("url");
	TCase *tc = tcase_create("url");

	tcase_add_loop_test(tc, url_knows_wildcard_hosts, 0,
	    (int)(sizeof(url_cases) / sizeof(url_cases[0])));
	tcase_add_test(tc, url_replaces_the_host_and_keeps_the_rest);
	tcase_add_test(tc, url_formats_peer_addresses);
	tcase_add_test(tc, url_puts_the_peer_where_it_can_be_dialed);
	suite_add_tcase(s, tc);
	return test_run(s);
}

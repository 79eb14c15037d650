#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "key.h"
#include "../testrun.h"

START_TEST(key_names_are_checked)
{
	static const struct {
		const char *name;
		int ok;
	} cases[] = {
		{ "dummy_1", 1 }, { "a", 1 }, { "A-b.c_9", 1 }, { "", 0 }, { "a/b", 0 }, { "a b", 0 },
		{ "a\tb", 0 }, { "ü", 0 }, { "a@1", 0 },
		{ "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123", 1 }, /* 63 */
		{ "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234", 0 }, /* 64 */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg((key_name_check(cases[i].name) == 0) == cases[i].ok, "case %zu '%s'", i,
		    cases[i].name);
	ck_assert_int_eq(key_name_check(NULL), -EINVAL);
}
END_TEST

START_TEST(key_round_trips)
{
	uint8_t buf[KEY_MAX];
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1];
	uint64_t seq;
	size_t len;

	ck_assert_int_eq(key_encode("dummy_1", "demo_1", 0x0102030405060708ull, buf, &len), 0);
	ck_assert_uint_eq(len, 7 + 1 + 6 + 1 + 8);
	ck_assert_mem_eq(buf, "dummy_1\0demo_1\0\x01\x02\x03\x04\x05\x06\x07\x08", len);
	ck_assert_int_eq(key_decode(buf, len, node, comp, &seq), 0);
	ck_assert_str_eq(node, "dummy_1");
	ck_assert_str_eq(comp, "demo_1");
	ck_assert_uint_eq(seq, 0x0102030405060708ull);
}
END_TEST

START_TEST(key_order_is_numeric_by_seq)
{
	uint8_t a[KEY_MAX], b[KEY_MAX];
	size_t la, lb;
	static const uint64_t seqs[] = { 1, 2, 255, 256, 65535, 65536, 1ull << 40, UINT64_MAX };

	for (size_t i = 0; i + 1 < sizeof(seqs) / sizeof(seqs[0]); i++) {
		key_encode("n", "c", seqs[i], a, &la);
		key_encode("n", "c", seqs[i + 1], b, &lb);
		ck_assert_uint_eq(la, lb);
		ck_assert_int_lt(memcmp(a, b, la), 0);
	}
	/* A component's keys sort before the next component's. */
	key_encode("n", "c", UINT64_MAX, a, &la);
	key_encode("n", "d", 1, b, &lb);
	ck_assert_int_lt(memcmp(a, b, la < lb ? la : lb), 0);
}
END_TEST

START_TEST(key_decode_rejects_malformed)
{
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1];
	uint64_t seq;
	static const struct {
		const char *k;
		size_t len;
	} bad[] = {
		{ "", 0 },
		{ "n\0c\0\0\0\0\0\0\0\0", 11 },        /* 8-byte tail too short */
		{ "nc\0\0\0\0\0\0\0\0\0\0", 12 },      /* one separator */
		{ "\0c\0\0\0\0\0\0\0\0\1", 11 },       /* empty node */
		{ "n\0\0\0\0\0\0\0\0\0\0\1", 12 },     /* empty component */
		{ "n\0c\0x\0\0\0\0\0\0\0\0", 13 },     /* junk after component */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(key_decode((const uint8_t *)bad[i].k, bad[i].len, node, comp, &seq) ==
		        -EINVAL, "case %zu", i);
}
END_TEST

START_TEST(key_prefix_matches_encoded_keys)
{
	uint8_t p[KEY_MAX], k[KEY_MAX];
	size_t lp, lk;
	ck_assert_int_eq(key_prefix("node", "comp", p, &lp), 0);
	ck_assert_int_eq(key_encode("node", "comp", 7, k, &lk), 0);
	ck_assert_uint_eq(lp, lk - 8);
	ck_assert_mem_eq(p, k, lp);
	ck_assert_int_eq(key_prefix("node", NULL, p, &lp), 0);
	ck_assert_uint_eq(lp, 5);
	ck_assert_int_eq(key_prefix("bad/node", NULL, p, &lp), -EINVAL);
}
END_TEST

START_TEST(key_refs_parse)
{
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1];
	uint64_t seq = 99;
	static const char *const bad[] = { "", "node", "/comp", "node/", "node/comp@", "node/comp@0",
		"node/comp@x", "node/comp@1x", "no de/comp", "node/co/mp", "node/comp@-1" };

	ck_assert_int_eq(key_parse_ref("dummy_1/demo_1", node, comp, &seq), 0);
	ck_assert_str_eq(node, "dummy_1");
	ck_assert_str_eq(comp, "demo_1");
	ck_assert_uint_eq(seq, 0);
	ck_assert_int_eq(key_parse_ref("n/c@42", node, comp, &seq), 0);
	ck_assert_uint_eq(seq, 42);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(key_parse_ref(bad[i], node, comp, &seq) == -EINVAL, "'%s'", bad[i]);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("key");
	TCase *tc = tcase_create("key");

	tcase_add_test(tc, key_names_are_checked);
	tcase_add_test(tc, key_round_trips);
	tcase_add_test(tc, key_order_is_numeric_by_seq);
	tcase_add_test(tc, key_decode_rejects_malformed);
	tcase_add_test(tc, key_prefix_matches_encoded_keys);
	tcase_add_test(tc, key_refs_parse);
	suite_add_tcase(s, tc);
	return test_run(s);
}

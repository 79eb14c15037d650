/* The demo component: determinism, serialised format, malformed inputs. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"
#include "sha.h"
#include "../testrun.h"

static struct demo *
make(const char *name, uint64_t bytes, unsigned ticks)
{
	struct demo *d = NULL;
	ck_assert_int_eq(demo_new(name, bytes, &d), 0);
	for (unsigned i = 0; i < ticks; i++)
		demo_tick(d);
	return d;
}

static void
serialize(const struct demo *d, uint8_t **ret_buf, size_t *ret_len)
{
	void *buf = NULL;
	ck_assert_int_eq(demo_serialize(d, &buf, ret_len), 0);
	ck_assert_uint_eq(*ret_len, demo_state_size(d));
	*ret_buf = buf;
}

START_TEST(demo_state_is_deterministic_from_name)
{
	struct demo *a = make("demo_1", 64 << 10, 37), *b = make("demo_1", 64 << 10, 37);
	uint8_t *ba, *bb;
	size_t la, lb;

	serialize(a, &ba, &la);
	serialize(b, &bb, &lb);
	ck_assert_uint_eq(la, lb);
	ck_assert_mem_eq(ba, bb, la);
	ck_assert_uint_eq(demo_counter(a), 37);
	free(ba);
	free(bb);
	demo_free(a);
	demo_free(b);
}
END_TEST

START_TEST(demo_states_of_different_names_differ)
{
	struct demo *a = make("demo_1", 4096, 5), *b = make("demo_2", 4096, 5);
	uint8_t *ba, *bb;
	size_t la, lb, off;

	serialize(a, &ba, &la);
	serialize(b, &bb, &lb);
	ck_assert_uint_eq(la, lb);
	off = la - 4096; /* compare the buffers, not just the names */
	ck_assert_int_ne(memcmp(ba + off, bb + off, 4096), 0);
	free(ba);
	free(bb);
	demo_free(a);
	demo_free(b);
}
END_TEST

START_TEST(demo_serialized_layout_is_documented_one)
{
	struct demo *d = make("abc", 10, 3);
	uint8_t *buf;
	size_t len;

	serialize(d, &buf, &len);
	ck_assert_uint_eq(len, 8 + 8 + 4 + 3 + 8 + 10);
	ck_assert_mem_eq(buf, "CKDEMO1\0", 8);
	ck_assert_uint_eq(buf[8], 3); /* counter, little-endian */
	ck_assert_uint_eq(buf[9], 0);
	ck_assert_uint_eq(buf[16], 3); /* name length */
	ck_assert_mem_eq(buf + 20, "abc", 3);
	ck_assert_uint_eq(buf[23], 10); /* buffer length */
	free(buf);
	demo_free(d);
}
END_TEST

/* The state where it lies is the serialised state, before and after ticks and a restore. */
START_TEST(demo_state_view_is_the_serialised_state_in_place)
{
	static const uint64_t sizes[] = { 0, 1, 65536 };
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct demo *d = make("view", sizes[k], 0), *r = NULL;
		const void *v;
		uint8_t *buf, *copy;
		size_t len, vlen;

		for (int round = 0; round < 3; round++) {
			demo_tick(d);
			serialize(d, &buf, &len);
			demo_state_view(d, &v, &vlen);
			ck_assert_uint_eq(vlen, len);
			ck_assert_mem_eq(v, buf, len);
			free(buf);
		}
		/* Restored by taking the bytes over: the view is those bytes. */
		copy = malloc(vlen);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, v, vlen);
		ck_assert_int_eq(demo_restore_take(copy, vlen, &r, NULL), 0);
		demo_state_view(r, &v, &len);
		ck_assert_ptr_eq(v, copy);
		demo_tick(r);
		serialize(r, &buf, &len);
		demo_state_view(r, &v, &vlen);
		ck_assert_mem_eq(v, buf, len);
		free(buf);
		demo_free(r);
		demo_free(d);
	}
}
END_TEST

START_TEST(demo_restore_round_trip_gives_identical_bytes_and_digest)
{
	static const uint64_t sizes[] = { 0, 1, 7, 8, 65536, 1000003 };
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct demo *d = make("round.trip-1", sizes[k], 11), *r = NULL;
		uint8_t *b1, *b2, h1[SHA_LEN], h2[SHA_LEN], h3[SHA_LEN];
		size_t l1, l2;

		serialize(d, &b1, &l1);
		ck_assert_int_eq(demo_restore(b1, l1, &r, NULL), 0);
		ck_assert_str_eq(demo_name(r), "round.trip-1");
		ck_assert_uint_eq(demo_counter(r), 11);
		ck_assert_uint_eq(demo_bytes(r), sizes[k]);
		serialize(r, &b2, &l2);
		ck_assert_uint_eq(l1, l2);
		ck_assert_mem_eq(b1, b2, l1);
		sha256(b1, l1, h1);
		ck_assert_int_eq(demo_sha256(r, h2), 0);
		ck_assert_mem_eq(h1, h2, SHA_LEN);
		/* The restored demo goes on exactly like the original. */
		demo_tick(d);
		demo_tick(r);
		ck_assert_int_eq(demo_sha256(d, h2), 0);
		ck_assert_int_eq(demo_sha256(r, h3), 0);
		ck_assert_mem_eq(h2, h3, SHA_LEN);
		/* Taken over instead of copied: the same state; demo_free() frees the buffer. */
		demo_free(r);
		r = NULL;
		free(b2);
		serialize(d, &b2, &l2);
		ck_assert_int_eq(demo_restore_take(b2, l2, &r, NULL), 0);
		ck_assert_uint_eq(demo_bytes(r), sizes[k]);
		ck_assert_int_eq(demo_sha256(r, h3), 0);
		ck_assert_mem_eq(h2, h3, SHA_LEN);
		demo_tick(d);
		demo_tick(r);
		ck_assert_int_eq(demo_sha256(d, h2), 0);
		ck_assert_int_eq(demo_sha256(r, h3), 0);
		ck_assert_mem_eq(h2, h3, SHA_LEN);
		free(b1);
		demo_free(d);
		demo_free(r);
	}
}
END_TEST

START_TEST(demo_tick_changes_counter_and_few_bytes)
{
	const size_t n = 64 << 10;
	struct demo *d = make("ticker", n, 0);
	uint8_t *before, *after;
	size_t lb, la, changed = 0, off;

	for (int t = 0; t < 50; t++) {
		serialize(d, &before, &lb);
		demo_tick(d);
		serialize(d, &after, &la);
		off = lb - n;
		changed = 0;
		for (size_t i = 0; i < n; i++)
			changed += before[off + i] != after[off + i];
		ck_assert_uint_ge(changed, 1);
		ck_assert_uint_le(changed, DEMO_TICK_BYTES);
		ck_assert_int_ne(memcmp(before + 8, after + 8, 8), 0); /* the counter moved */
		free(before);
		free(after);
	}
	demo_free(d);
}
END_TEST

START_TEST(demo_new_rejects_bad_name_and_size)
{
	struct demo *d = NULL;
	ck_assert_int_eq(demo_new("", 10, &d), -EINVAL);
	ck_assert_int_eq(demo_new("a/b", 10, &d), -EINVAL);
	ck_assert_int_eq(demo_new("ok", DEMO_BYTES_MAX + 1, &d), -EINVAL);
	ck_assert_ptr_null(d);
}
END_TEST

/* A valid state of "ab" with a 4-byte buffer, patched by the table below. */
static size_t
valid_state(uint8_t *out)
{
	static const uint8_t s[] = { 'C', 'K', 'D', 'E', 'M', 'O', '1', 0, /* magic */
		5, 0, 0, 0, 0, 0, 0, 0,                                      /* counter */
		2, 0, 0, 0, 'a', 'b',                                        /* name */
		4, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4 };                        /* buffer */
	memcpy(out, s, sizeof(s));
	return sizeof(s);
}

struct malformed {
	const char *what;
	size_t off;      /* byte to patch (SIZE_MAX: none) */
	uint8_t val;
	long len_delta;  /* added to the valid length */
};

static const struct malformed malformed[] = {
	{ "empty", SIZE_MAX, 0, -34 },
	{ "truncated magic", SIZE_MAX, 0, -30 },
	{ "truncated header", SIZE_MAX, 0, -16 },
	{ "bad magic", 0, 'X', 0 },
	{ "magic without NUL", 7, '!', 0 },
	{ "name length zero", 16, 0, 0 },
	{ "name length beyond the data", 16, 60, 0 },
	{ "name length over the maximum", 19, 1, 0 },
	{ "name with a slash", 21, '/', 0 },
	{ "name with a NUL", 20, 0, 0 },
	{ "truncated buffer length", SIZE_MAX, 0, -9 },
	{ "buffer length larger than the data", 22, 5, 0 },
	{ "buffer length smaller than the data", 22, 3, 0 },
	{ "buffer length over 1 GiB", 27, 0x40, 0 },
	{ "buffer length of 2^64-1", 29, 0xff, 0 },
	{ "truncated buffer", SIZE_MAX, 0, -1 },
	{ "bytes after the buffer", SIZE_MAX, 0, 1 },
};

START_TEST(demo_restore_rejects_malformed_state)
{
	const struct malformed *m = &malformed[_i];
	uint8_t buf[64] = { 0 };
	size_t len = valid_state(buf);
	struct demo *d = NULL;
	const char *why = NULL;

	if (m->off != SIZE_MAX)
		buf[m->off] = m->val;
	if (m->off == 29) /* all eight bytes of the buffer length */
		memset(buf + 22, 0xff, 8);
	len = (size_t)((long)len + m->len_delta);
	ck_assert_msg(demo_restore(buf, len, &d, &why) == -EBADMSG, "accepted: %s", m->what);
	ck_assert_ptr_null(d);
	ck_assert_ptr_nonnull(why);
	/* Refused, a buffer handed over stays the caller's (ASan: no double free, no leak). */
	{
		uint8_t *copy = malloc(sizeof(buf));
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, buf, sizeof(buf));
		why = NULL;
		ck_assert_int_eq(demo_restore_take(copy, len, &d, &why), -EBADMSG);
		ck_assert_ptr_null(d);
		ck_assert_ptr_nonnull(why);
		free(copy);
	}
}
END_TEST

START_TEST(demo_restore_accepts_the_unpatched_fixture)
{
	uint8_t buf[64];
	size_t len = valid_state(buf);
	struct demo *d = NULL;

	ck_assert_int_eq(demo_restore(buf, len, &d, NULL), 0);
	ck_assert_str_eq(demo_name(d), "ab");
	ck_assert_uint_eq(demo_counter(d), 5);
	ck_assert_uint_eq(demo_bytes(d), 4);
	demo_free(d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("demo");
	TCase *tc = tcase_create("demo");

	tcase_add_test(tc, demo_state_is_deterministic_from_name);
	tcase_add_test(tc, demo_states_of_different_names_differ);
	tcase_add_test(tc, demo_serialized_layout_is_documented_one);
	tcase_add_test(tc, demo_state_view_is_the_serialised_state_in_place);
	tcase_add_test(tc, demo_restore_round_trip_gives_identical_bytes_and_digest);
	tcase_add_test(tc, demo_tick_changes_counter_and_few_bytes);
	tcase_add_test(tc, demo_new_rejects_bad_name_and_size);
	tcase_add_test(tc, demo_restore_accepts_the_unpatched_fixture);
	tcase_add_loop_test(tc, demo_restore_rejects_malformed_state, 0,
	    (int)(sizeof(malformed) / sizeof(malformed[0])));
	suite_add_tcase(s, tc);
	return test_run(s);
}

/*
 * nasc_store_hinted() against nasc_store_buf() of the same bytes, on the Nas
 * service in-process (LMDB in a temporary folder, tcp on 127.0.0.1): for
 * random edits, the record built from hints and the record built from the
 * whole state have the same chunk list, entry for entry, and restore the
 * same bytes.
 */
#include <check.h>
#include <errno.h>
#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/nas.pb-c.h"
#include "chunk.h"
#include "log.h"
#include "methods.h"
#include "nas.h"
#include "nasc.h"
#include "rpc.h"
#include "sha.h"
#include "store.h"

#include "nasfix.h"
#include "../testbuf.h"
#include "../testrun.h"

#define MiB (1u << 20)
#define TIMEOUT_MS 20000u
#define EDITS_MAX 16

static struct nasfix fix;
static struct nasc *cli;

static void
setup(void)
{
	log_init("test-hints", NULL, LOG_LEVEL_WARN);
	ck_assert_int_eq(nasfix_start(&fix, "hints-test", 64 * MiB, 1024 * MiB), 0);
	cli = fix.f_cli;
}

static void
teardown(void)
{
	nasfix_stop(&fix);
}

static uint32_t
rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (uint32_t)(*x >> 16);
}

static void
store_whole(const char *comp, const uint8_t *b, size_t len, struct nasc_info *ret_info)
{
	struct nasc_put p = { "n1", comp, "raw", 0, 1 };
	struct rpc_error err;
	int rv = nasc_store_buf(cli, &p, b, len, TIMEOUT_MS, ret_info, &err);
	ck_assert_msg(rv == 0, "store %s: %s", comp, err.re_msg);
}

/* A hinted store; returns whether the hints were used. */
static bool
store_hinted(const char *comp, const uint8_t *b, size_t len, const uint8_t *base,
    const struct nasc_range *r, size_t nr, struct nasc_info *ret_info)
{
	struct nasc_put p = { "n1", comp, "raw", 0, 1 };
	struct nasc_hints h = { { 0 }, r, nr };
	struct nasc_stats before, after;
	struct rpc_error err;
	int rv;

	memcpy(h.nh_base_digest, base, SHA_LEN);
	nasc_get_stats(cli, &before);
	rv = nasc_store_hinted(cli, &p, b, len, &h, TIMEOUT_MS, ret_info, &err);
	ck_assert_msg(rv == 0, "hinted store %s: %s", comp, err.re_msg);
	nasc_get_stats(cli, &after);
	return after.ns_hinted_stores == before.ns_hinted_stores + 1;
}

static Ckpt__V1__RetrieveReply *
record(const char *comp, uint64_t seq)
{
	Ckpt__V1__RetrieveRequest req = CKPT__V1__RETRIEVE_REQUEST__INIT;
	Ckpt__V1__RetrieveReply *rep = NULL;
	struct rpc_error err;

	req.node = "n1";
	req.component = (char *)comp;
	req.seq = seq;
	ck_assert_int_eq(nasc_call(cli, NAS_RETRIEVE, &req.base, TIMEOUT_MS,
	                     (ProtobufCMessage **)&rep, &err),
	    0);
	return rep;
}

/* The two records list the same chunks, and the hinted one restores b. */
static void
expect_same(const struct nasc_info *hi, const struct nasc_info *wi, const uint8_t *b, size_t len,
    const char *what)
{
	Ckpt__V1__RetrieveReply *h = record("h", hi->ni_seq), *w = record("w", wi->ni_seq);
	struct rpc_error err;
	struct nasc_info out;
	void *got = NULL;
	size_t got_len = 0;

	ck_assert_mem_eq(hi->ni_digest, wi->ni_digest, SHA_LEN);
	ck_assert_msg(h->n_chunks == w->n_chunks, "%s: %zu chunks from hints, %zu whole", what,
	    h->n_chunks, w->n_chunks);
	for (size_t i = 0; i < h->n_chunks; i++) {
		const Ckpt__V1__ChunkRef *x = h->chunks[i], *y = w->chunks[i];
		ck_assert_msg(x->size == y->size && x->zero == y->zero, "%s: chunk %zu differs", what,
		    i);
		ck_assert_uint_eq(x->sha256.len, y->sha256.len);
		if (x->sha256.len != 0)
			ck_assert_mem_eq(x->sha256.data, y->sha256.data, x->sha256.len);
	}
	rpc_reply_free(&h->base);
	rpc_reply_free(&w->base);
	/*
	 * The fingerprints remembered for the next store are a whole read's too
	 * (bcache.h); a small (inline) store remembers none either way.
	 */
	if (len > NASC_INLINE_MAX) {
		struct bcache_list lh, lw;
		ck_assert_msg(nasc_cache_export(cli, "n1", "h", &lh) == 0, "%s: no fingerprints", what);
		ck_assert_int_eq(nasc_cache_export(cli, "n1", "w", &lw), 0);
		ck_assert_uint_eq(lh.bl_n, lw.bl_n);
		for (size_t i = 0; i < lh.bl_n; i++) {
			ck_assert_msg(memcmp(lh.bl_fp[i], lw.bl_fp[i], BCACHE_FP_LEN) == 0,
			    "%s: fingerprint %zu differs", what, i);
			ck_assert_msg(lh.bl_head[i] == lw.bl_head[i], "%s: head %zu differs", what, i);
		}
		bcache_list_free(&lh);
		bcache_list_free(&lw);
	}
	ck_assert_int_eq(nasc_retrieve_buf(cli, "n1", "h", hi->ni_seq, len + 1, TIMEOUT_MS, &got,
	                     &got_len, &out, &err),
	    0);
	ck_assert_uint_eq(got_len, len);
	if (len != 0)
		ck_assert_mem_eq(got, b, len);
	free(got);
}

/* Cut points of b, as the writer makes them (for edits across boundaries). */
static size_t
some_cut(const struct chunk_params *cp, const uint8_t *b, size_t len, uint64_t *x)
{
	size_t off = 0, pick = off, n = 0;

	while (off < len) {
		bool zero;
		off += chunk_next(cp, b + off, len - off, &zero);
		if (rnd(x) % ++n == 0)
			pick = off;
	}
	return pick;
}

/* One random edit of b (len stays); its range in *r. */
static void
edit(const struct chunk_params *cp, uint8_t *b, size_t len, uint64_t *x, struct nasc_range *r)
{
	size_t off, n = 1 + rnd(x) % (rnd(x) % 4 == 0 ? 40000 : 64);
	unsigned kind = rnd(x) % 9;

	if (n > len)
		n = len;
	switch (kind) {
	case 0: /* at the start */
		off = 0;
		break;
	case 1: /* at the end */
		off = len - n;
		break;
	case 2: { /* across a cut point */
		size_t c = some_cut(cp, b, len, x);
		off = c >= n / 2 ? c - n / 2 : 0;
		if (off + n > len)
			off = len - n;
		break;
	}
	case 7: /* just past a cut point: what the chunker looks ahead at */
	case 8: { /* the same, a run of zeros that may end the chunk before it */
		size_t c = some_cut(cp, b, len, x);
		n = kind == 7 ? 1 : 60 + rnd(x) % 100;
		off = c + rnd(x) % (2 * CHUNK_LOOKAHEAD);
		off = off < len ? off : len - 1;
		n = n < len - off ? n : len - off;
		if (c > 0 && kind == 8)
			off = c - 1 - rnd(x) % (c < 70 ? c : 70);
		break;
	}
	default:
		off = rnd(x) % (len - n + 1);
		break;
	}
	if (kind == 3 || kind == 4 || kind == 8) {
		memset(b + off, 0, n); /* a hole, or part of one */
	} else {
		for (size_t i = 0; i < n; i++)
			b[off + i] = (uint8_t)rnd(x);
	}
	r->nr_off = off;
	r->nr_len = n;
}

/*
 * Stores a state whole under "h" and "w", then edits it a few times: "h"
 * from hints, "w" whole; every round compares the two records.
 */
static void
edit_rounds(unsigned seed, size_t len, bool small_chunks)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
	uint8_t *b = seed % 2 ? testbuf_image(len, seed) : testbuf_bytes(len, seed);
	struct nasc_range r[EDITS_MAX];
	struct nasc_info hi, wi;
	struct chunk_params cp;
	char what[64];

	if (small_chunks)
		ck_assert_int_eq(nasc_set_chunking(cli, 256, 1024, 4096), 0);
	else
		ck_assert_int_eq(nasc_set_chunking(cli, CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT,
		                     CHUNK_MAX_DEFAULT),
		    0);
	ck_assert_int_eq(small_chunks ? chunk_params_init(256, 1024, 4096, &cp)
	                              : chunk_params_init(CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT,
	                                    CHUNK_MAX_DEFAULT, &cp),
	    0);
	store_whole("h", b, len, &hi);
	for (unsigned round = 0; round < 4; round++) {
		size_t nr = rnd(&x) % EDITS_MAX;
		uint8_t base[SHA_LEN];
		struct nasc_stats before, after;

		for (size_t i = 0; i < nr; i++)
			edit(&cp, b, len, &x, &r[i]);
		memcpy(base, hi.ni_digest, SHA_LEN);
		nasc_get_stats(cli, &before);
		ck_assert_msg(store_hinted("h", b, len, base, r, nr, &hi), "seed %u round %u: hints "
		    "not used", seed, round);
		nasc_get_stats(cli, &after);
		/* Untouched parts are neither cut nor hashed again. */
		if (nr == 0)
			ck_assert_uint_eq(after.ns_cut_bytes, before.ns_cut_bytes);
		store_whole("w", b, len, &wi);
		snprintf(what, sizeof(what), "seed %u round %u (%zu edits)", seed, round, nr);
		expect_same(&hi, &wi, b, len, what);
	}
	free(b);
}

START_TEST(hints_random_edits_make_the_whole_state_record)
{
	for (unsigned seed = 0; seed < 16; seed++)
		edit_rounds(seed, 3 * MiB + seed * 4099, false);
}
END_TEST

START_TEST(hints_random_edits_with_small_chunks_make_the_whole_state_record)
{
	for (unsigned seed = 100; seed < 160; seed++)
		edit_rounds(seed, 256 * 1024 + seed * 37, true);
}
END_TEST

START_TEST(hints_hash_only_around_the_changes)
{
	size_t len = 8 * MiB;
	uint8_t *b = testbuf_bytes(len, 5);
	struct nasc_range r = { 3 * MiB + 17, 100 };
	struct nasc_info hi, wi;
	struct nasc_stats before, after;

	store_whole("h", b, len, &hi);
	memset(b + r.nr_off, 0xab, r.nr_len);
	nasc_get_stats(cli, &before);
	ck_assert(store_hinted("h", b, len, hi.ni_digest, &r, 1, &hi));
	nasc_get_stats(cli, &after);
	/* A changed range is re-cut from the cut before it to a few chunks after. */
	ck_assert_uint_gt(after.ns_hashed_bytes - before.ns_hashed_bytes, 0);
	ck_assert_uint_le(after.ns_hashed_bytes - before.ns_hashed_bytes, 4 * CHUNK_MAX_DEFAULT);
	ck_assert_uint_le(after.ns_cut_bytes - before.ns_cut_bytes, 4 * CHUNK_MAX_DEFAULT);
	ck_assert_uint_gt(after.ns_reused_chunks - before.ns_reused_chunks, 100);
	store_whole("w", b, len, &wi);
	expect_same(&hi, &wi, b, len, "one range");
	free(b);
}
END_TEST

START_TEST(hints_over_another_base_read_the_state_whole)
{
	size_t len = 2 * MiB;
	uint8_t *b = testbuf_bytes(len, 7), other[SHA_LEN];
	struct nasc_range r = { 1000, 10 };
	struct nasc_info hi, wi;

	store_whole("h", b, len, &hi);
	memcpy(other, hi.ni_digest, SHA_LEN);
	other[0] ^= 1;
	/* The change lies outside the range: only a whole read finds it. */
	b[len / 2] ^= 0x55;
	ck_assert(!store_hinted("h", b, len, other, &r, 1, &hi));
	store_whole("w", b, len, &wi);
	expect_same(&hi, &wi, b, len, "another base");
	/* Another chunking than the remembered list's: whole too. */
	b[10] ^= 1;
	r.nr_off = 10;
	r.nr_len = 1;
	ck_assert_int_eq(nasc_set_chunking(cli, 2048, 8192, 32768), 0);
	ck_assert(!store_hinted("h", b, len, hi.ni_digest, &r, 1, &hi));
	free(b);
}
END_TEST

START_TEST(hints_follow_a_state_that_grows_and_shrinks)
{
	size_t cap = 3 * MiB, len = 2 * MiB;
	uint8_t *b = testbuf_image(cap, 11);
	struct nasc_info hi, wi;
	uint64_t x = 42;

	store_whole("h", b, len, &hi);
	for (unsigned round = 0; round < 8; round++) {
		size_t next = MiB + rnd(&x) % (2 * MiB);
		/* Bytes past the old end are new; so are those the edit touches. */
		struct nasc_range r[2] = { { len < next ? len : next, cap }, { 0, 0 } };
		size_t off = rnd(&x) % next;
		b[off] ^= 0x5a;
		r[1].nr_off = off;
		r[1].nr_len = 1;
		len = next;
		ck_assert(store_hinted("h", b, len, hi.ni_digest, r, 2, &hi));
		store_whole("w", b, len, &wi);
		expect_same(&hi, &wi, b, len, "length change");
	}
	free(b);
}
END_TEST

START_TEST(hints_after_a_refused_store_read_the_state_whole)
{
	size_t len = MiB;
	uint8_t *b = testbuf_bytes(len, 13);
	struct nasc_put p = { "n1", "h", "raw", 0, 1 };
	struct nasc_range r = { 5, 5 };
	struct nasc_info hi, wi, bad;
	struct rpc_error err;

	store_whole("h", b, len, &hi);
	/* A store refused (its seq is taken) forgets the remembered list. */
	b[7] ^= 1;
	p.np_seq = hi.ni_seq;
	ck_assert_int_ne(nasc_store_buf(cli, &p, b, len, TIMEOUT_MS, &bad, &err), 0);
	ck_assert(!store_hinted("h", b, len, hi.ni_digest, &r, 1, &hi));
	store_whole("w", b, len, &wi);
	expect_same(&hi, &wi, b, len, "after a refusal");
	/* ...and the store that read it whole is the base of the next. */
	b[8] ^= 1;
	r.nr_off = 8;
	r.nr_len = 1;
	ck_assert(store_hinted("h", b, len, hi.ni_digest, &r, 1, &hi));
	store_whole("w", b, len, &wi);
	expect_same(&hi, &wi, b, len, "after the whole one");
	free(b);
}
END_TEST

/*
 * The new chunks of a hinted store go inline in its Store when they fit
 * (nasc_store_inline()): one Store, no PutChunks; with inline chunks off,
 * by PutChunks. Either way the record is the whole state's and reads back.
 */
START_TEST(hints_new_chunks_go_inline_in_the_store)
{
	size_t len = 4 * MiB;
	uint8_t *b = testbuf_bytes(len, 17);
	struct nasc_range r = { 100000, 300000 };
	struct nasc_stats s0, s1;
	struct nasc_info hi, wi;

	store_whole("h", b, len, &hi);
	for (size_t i = r.nr_off; i < r.nr_off + r.nr_len; i += 4096)
		b[i] ^= 0x5a;
	nasc_get_stats(cli, &s0);
	ck_assert(store_hinted("h", b, len, hi.ni_digest, &r, 1, &hi));
	nasc_get_stats(cli, &s1);
	ck_assert_uint_eq(s1.ns_held_inline, s0.ns_held_inline + 1);
	ck_assert_uint_gt(s1.ns_put_chunks, s0.ns_put_chunks);
	store_whole("w", b, len, &wi);
	expect_same(&hi, &wi, b, len, "inline");
	nasc_set_inline(cli, false);
	for (size_t i = r.nr_off; i < r.nr_off + r.nr_len; i += 4096)
		b[i] ^= 0x33;
	nasc_get_stats(cli, &s0);
	ck_assert(store_hinted("h", b, len, hi.ni_digest, &r, 1, &hi));
	nasc_get_stats(cli, &s1);
	ck_assert_uint_eq(s1.ns_held_inline, s0.ns_held_inline);
	ck_assert_uint_gt(s1.ns_put_chunks, s0.ns_put_chunks);
	store_whole("w", b, len, &wi);
	expect_same(&hi, &wi, b, len, "by PutChunks");
	nasc_set_inline(cli, true);
	free(b);
}
END_TEST

START_TEST(hints_of_an_empty_state_and_no_ranges)
{
	uint8_t one[1] = { 0 };
	struct nasc_info hi, wi;

	/* A small state goes inline, hints or not (nasc.h): the hinted path is tested with it off. */
	store_whole("h", one, 0, &hi);
	ck_assert(!store_hinted("h", one, 0, hi.ni_digest, NULL, 0, &hi));
	nasc_set_inline(cli, false);
	ck_assert(store_hinted("h", one, 0, hi.ni_digest, NULL, 0, &hi));
	store_whole("w", one, 0, &wi);
	expect_same(&hi, &wi, one, 0, "empty");
	nasc_set_inline(cli, true);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("hints");
	TCase *tc = tcase_create("hints");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, hints_random_edits_make_the_whole_state_record);
	tcase_add_test(tc, hints_random_edits_with_small_chunks_make_the_whole_state_record);
	tcase_add_test(tc, hints_hash_only_around_the_changes);
	tcase_add_test(tc, hints_over_another_base_read_the_state_whole);
	tcase_add_test(tc, hints_follow_a_state_that_grows_and_shrinks);
	tcase_add_test(tc, hints_after_a_refused_store_read_the_state_whole);
	tcase_add_test(tc, hints_new_chunks_go_inline_in_the_store);
	tcase_add_test(tc, hints_of_an_empty_state_and_no_ranges);
	suite_add_tcase(s, tc);
	return test_run(s);
}

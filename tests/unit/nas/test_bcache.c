/*
 * The base cache (bcache.h): for random edits (insertions, deletions,
 * overwrites, growth, shrinking, zero ranges, edits at and just past cut
 * points), a list walked from the previous list's fingerprints is, entry
 * for entry, the list a whole read makes, with the same digest; through
 * nasc on the Nas service in-process (LMDB in a temporary folder, tcp on
 * 127.0.0.1) the record restores the same bytes. Cache files: a round trip,
 * and every kind of bad file refused.
 */
#include <check.h>
#include <errno.h>
#define _XOPEN_SOURCE_EXTENDED 1
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bcache.h"
#include "chunk.h"
#include "digest.h"
#include "log.h"
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

static struct nasfix fix;
static struct nasc *cli;

static void
setup(void)
{
	log_init("test-bcache", NULL, LOG_LEVEL_WARN);
	ck_assert_int_eq(nasfix_start(&fix, "bcache-test", 64 * MiB, 1024 * MiB), 0);
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

/* The list a whole read makes of b, with fingerprints (what a full store remembers). */
static void
whole_list(const struct chunk_params *cp, const uint8_t *b, size_t len, struct bcache_list *l)
{
	size_t n = 0, ndata = 0, off = 0;

	while (off < len) {
		bool zero;
		size_t k = chunk_next(cp, b + off, len - off, &zero);
		n++;
		ndata += !zero;
		off += k;
	}
	ck_assert_int_eq(bcache_list_alloc(l, n, ndata), 0);
	off = 0;
	ndata = 0;
	for (size_t i = 0; i < n; i++) {
		bool zero;
		size_t k = chunk_next(cp, b + off, len - off, &zero);
		l->bl_sizes[i] = (uint32_t)k << 1 | (zero ? 1u : 0u);
		if (!zero)
			sha256(b + off, k, l->bl_sha[ndata++]);
		bcache_fp(b, len, off, (uint32_t)k, l->bl_fp[i], &l->bl_head[i]);
		off += k;
	}
	l->bl_len = len;
	l->bl_min = cp->cp_min;
	l->bl_avg = cp->cp_avg;
	l->bl_max = cp->cp_max;
	ck_assert_int_eq(digest_compact(l->bl_sizes, n, (const uint8_t *)l->bl_sha, ndata,
	                     l->bl_digest),
	    0);
}

/* A cut point of b, picked at random. */
static size_t
some_cut(const struct chunk_params *cp, const uint8_t *b, size_t len, uint64_t *x)
{
	size_t off = 0, pick = 0, n = 0;

	while (off < len) {
		bool zero;
		off += chunk_next(cp, b + off, len - off, &zero);
		if (rnd(x) % ++n == 0)
			pick = off;
	}
	return pick < len ? pick : 0;
}

/*
 * One random edit of b (*len bytes, cap allocated): overwrite, zero range,
 * insertion, deletion, growth, shrinking; at a random place, at a cut point
 * or just past one (what the chunker looks ahead at).
 */
static void
edit(const struct chunk_params *cp, uint8_t *b, size_t *len, size_t cap, uint64_t *x)
{
	size_t n = 1 + rnd(x) % (rnd(x) % 4 == 0 ? 40000 : 100), off;
	unsigned where = rnd(x) % 4, kind = rnd(x) % 7;

	if (*len == 0)
		kind = 4;
	if (where == 0 || *len == 0) {
		off = *len != 0 ? rnd(x) % *len : 0;
	} else {
		size_t c = some_cut(cp, b, *len, x);
		off = where == 1 ? c : where == 2 ? c + rnd(x) % (2 * CHUNK_LOOKAHEAD) :
		    (c > 100 ? c - 1 - rnd(x) % 100 : c);
		off = off < *len ? off : *len - 1;
	}
	switch (kind) {
	case 0: /* overwrite */
	case 1:
		n = n < *len - off ? n : *len - off;
		for (size_t i = 0; i < n; i++)
			b[off + i] = (uint8_t)rnd(x);
		break;
	case 2: /* a zero range (a hole, part of one, or zeros that end a chunk) */
		n = n < *len - off ? n : *len - off;
		memset(b + off, 0, n);
		break;
	case 3: /* insertion */
		n = n < cap - *len ? n : cap - *len;
		memmove(b + off + n, b + off, *len - off);
		for (size_t i = 0; i < n; i++)
			b[off + i] = rnd(x) % 3 == 0 ? 0 : (uint8_t)rnd(x);
		*len += n;
		break;
	case 4: /* growth at the end */
		n = n < cap - *len ? n : cap - *len;
		if (rnd(x) % 2)
			memset(b + *len, 0, n);
		else
			for (size_t i = 0; i < n; i++)
				b[*len + i] = (uint8_t)rnd(x);
		*len += n;
		break;
	case 5: /* deletion */
		n = n < *len - off ? n : *len - off;
		memmove(b + off, b + off + n, *len - off - n);
		*len -= n;
		break;
	default: /* shrinking at the end */
		n = n < *len ? n : *len;
		*len -= n;
		break;
	}
}

/*
 * Windows as a file reader gives them (bcache_io): a copy of exactly the
 * bytes asked for, followed by a guard of other bytes, so that a walk that
 * read past its window would cut or fingerprint something else.
 */
struct win_io {
	const uint8_t *wi_data;
	uint8_t *wi_buf;
	unsigned wi_calls;
};

#define WIN_GUARD (128u << 10)

static const uint8_t *
win_fn(void *arg, uint64_t off, uint64_t n)
{
	struct win_io *w = arg;

	free(w->wi_buf);
	w->wi_buf = malloc(n + WIN_GUARD);
	ck_assert_ptr_nonnull(w->wi_buf);
	memcpy(w->wi_buf, w->wi_data + off, n);
	memset(w->wi_buf + n, 0xa5, WIN_GUARD);
	w->wi_calls++;
	return w->wi_buf;
}

/*
 * The walk of b against base is the whole read's list; returns the bytes of
 * data chunks cut again (what SHA-256 hashes; holes moved are cut again, at
 * the cost of a scan for zeros).
 */
static uint64_t
expect_walk(const struct chunk_params *cp, const struct bcache_list *base, const uint8_t *b,
    size_t len, struct bcache_list *ret_new, const char *what)
{
	struct bcache_walk w;
	uint8_t digest[SHA_LEN];
	size_t kd = 0, off = 0;
	size_t *dord = calloc(base->bl_n + 1, sizeof(*dord));
	uint64_t cut = 0;

	ck_assert_ptr_nonnull(dord);
	for (size_t i = 0, k = 0; i < base->bl_n; i++) {
		dord[i] = k;
		k += (base->bl_sizes[i] & 1u) == 0;
	}
	whole_list(cp, b, len, ret_new);
	ck_assert_int_eq(bcache_walk(cp, base, b, len, NULL, &w), 0);
	ck_assert_msg(w.bw_n == ret_new->bl_n, "%s: %zu chunks walked, %zu read whole", what,
	    w.bw_n, ret_new->bl_n);
	for (size_t i = 0; i < w.bw_n; i++) {
		uint32_t v = w.bw_sizes[i];
		ck_assert_msg(v == ret_new->bl_sizes[i], "%s: chunk %zu is %u, whole %u", what, i, v,
		    ret_new->bl_sizes[i]);
		ck_assert_mem_eq(w.bw_fp[i], ret_new->bl_fp[i], BCACHE_FP_LEN);
		ck_assert_uint_eq(w.bw_head[i], ret_new->bl_head[i]);
		/* A reused data chunk is named by the base's hash: that of the new bytes. */
		if (w.bw_from[i] != BCACHE_FRESH && (v & 1u) == 0)
			ck_assert_msg(memcmp(base->bl_sha[dord[w.bw_from[i]]], ret_new->bl_sha[kd],
			                  SHA_LEN) == 0,
			    "%s: chunk %zu reused with another hash", what, i);
		if (w.bw_from[i] == BCACHE_FRESH && (v & 1u) == 0)
			cut += v >> 1;
		kd += (v & 1u) == 0;
		off += v >> 1;
	}
	ck_assert_uint_eq(off, len);
	ck_assert_int_eq(digest_buf(cp, b, len, digest), 0);
	ck_assert_mem_eq(digest, ret_new->bl_digest, SHA_LEN);
	bcache_walk_free(&w);
	/* The same walk through windows of a reader (a small window: many of them). */
	{
		struct win_io wi = { b, NULL, 0 };
		struct bcache_io io = { win_fn, &wi, 3 * cp->cp_max };
		struct bcache_walk w2;
		ck_assert_int_eq(bcache_walk(cp, base, NULL, len, &io, &w2), 0);
		ck_assert_uint_eq(w2.bw_n, ret_new->bl_n);
		for (size_t i = 0; i < w2.bw_n; i++) {
			ck_assert_msg(w2.bw_sizes[i] == ret_new->bl_sizes[i],
			    "%s: through windows, chunk %zu differs", what, i);
			ck_assert_mem_eq(w2.bw_fp[i], ret_new->bl_fp[i], BCACHE_FP_LEN);
		}
		ck_assert(len == 0 || wi.wi_calls > 0);
		bcache_walk_free(&w2);
		free(wi.wi_buf);
	}
	free(dord);
	return cut;
}

static void
walk_rounds(unsigned seed, size_t len, const struct chunk_params *cp)
{
	size_t cap = len + len / 2 + 4096;
	uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
	uint8_t *b = seed % 2 ? testbuf_image(cap, seed) : testbuf_bytes(cap, seed);
	struct bcache_list base, next;
	char what[80];

	whole_list(cp, b, len, &base);
	for (unsigned round = 0; round < 6; round++) {
		unsigned edits = rnd(&x) % 6;
		for (unsigned e = 0; e < edits; e++)
			edit(cp, b, &len, cap, &x);
		snprintf(what, sizeof(what), "seed %u round %u (%u edits, %zu bytes)", seed, round,
		    edits, len);
		(void)expect_walk(cp, &base, b, len, &next, what);
		bcache_list_free(&base);
		base = next;
	}
	bcache_list_free(&base);
	free(b);
}

START_TEST(bcache_walk_of_random_edits_is_the_whole_read)
{
	struct chunk_params cp;

	ck_assert_int_eq(chunk_params_init(CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT, CHUNK_MAX_DEFAULT,
	                     &cp),
	    0);
	for (unsigned seed = 0; seed < 24; seed++)
		walk_rounds(seed, (seed % 3 == 0 ? 100 * 1024 : MiB) + seed * 4099, &cp);
}
END_TEST

START_TEST(bcache_walk_with_small_chunks_is_the_whole_read)
{
	struct chunk_params cp;

	ck_assert_int_eq(chunk_params_init(256, 1024, 4096, &cp), 0);
	for (unsigned seed = 100; seed < 200; seed++)
		walk_rounds(seed, 1 + (seed * 7919) % (200 * 1024), &cp);
}
END_TEST

START_TEST(bcache_walk_cuts_only_around_changes)
{
	struct chunk_params cp;
	size_t len = 8 * MiB;
	uint8_t *b = testbuf_image(len + 4096, 3);
	struct bcache_list base, next;
	uint64_t cut;

	ck_assert_int_eq(chunk_params_init(CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT, CHUNK_MAX_DEFAULT,
	                     &cp),
	    0);
	whole_list(&cp, b, len, &base);
	/* Unchanged: nothing is cut again. */
	ck_assert_uint_eq(expect_walk(&cp, &base, b, len, &next, "unchanged"), 0);
	bcache_list_free(&next);
	/* One byte overwritten: a few chunks around it. */
	b[3 * MiB + 5] ^= 0x5a;
	cut = expect_walk(&cp, &base, b, len, &next, "one byte");
	ck_assert_uint_gt(cut, 0);
	ck_assert_uint_le(cut, 3 * CHUNK_MAX_DEFAULT);
	bcache_list_free(&base);
	base = next;
	/* 100 bytes inserted: the chunks after it are found again where they moved. */
	memmove(b + 2 * MiB + 100, b + 2 * MiB, len - 2 * MiB);
	memset(b + 2 * MiB, 0x77, 100);
	len += 100;
	cut = expect_walk(&cp, &base, b, len, &next, "insertion");
	ck_assert_uint_le(cut, 3 * CHUNK_MAX_DEFAULT);
	bcache_list_free(&next);
	bcache_list_free(&base);
	free(b);
}
END_TEST

/* ---- through nasc and the NAS ---- */

static void
store(struct nasc *c, const char *comp, const uint8_t *b, size_t len, struct nasc_info *info)
{
	struct nasc_put p = { "n1", comp, "raw", 0, 1 };
	struct rpc_error err;
	int rv = nasc_store_buf(c, &p, b, len, TIMEOUT_MS, info, &err);
	ck_assert_msg(rv == 0, "store %s: %s", comp, err.re_msg);
}

static void
expect_restores(struct nasc *c, const char *comp, uint64_t seq, const uint8_t *b, size_t len)
{
	struct rpc_error err;
	struct nasc_info out;
	void *got = NULL;
	size_t got_len = 0;

	ck_assert_int_eq(nasc_retrieve_buf(c, "n1", comp, seq, len + 1, TIMEOUT_MS, &got, &got_len,
	                     &out, &err),
	    0);
	ck_assert_uint_eq(got_len, len);
	if (len != 0)
		ck_assert_mem_eq(got, b, len);
	free(got);
}

START_TEST(bcache_stores_of_random_edits_match_whole_stores)
{
	struct chunk_params cp;
	size_t cap = 6 * MiB, len = 3 * MiB;
	uint8_t *b = testbuf_image(cap, 21);
	uint64_t x = 77;
	struct nasc_info ci, wi;
	uint8_t digest[SHA_LEN];

	ck_assert_int_eq(chunk_params_init(CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT, CHUNK_MAX_DEFAULT,
	                     &cp),
	    0);
	store(cli, "c", b, len, &ci);
	for (unsigned round = 0; round < 12; round++) {
		struct nasc_stats before, after;
		char w[16];

		for (unsigned e = rnd(&x) % 5; e > 0; e--)
			edit(&cp, b, &len, cap, &x);
		nasc_get_stats(cli, &before);
		store(cli, "c", b, len, &ci);
		nasc_get_stats(cli, &after);
		ck_assert_uint_eq(after.ns_fp_stores, before.ns_fp_stores + 1);
		/* The whole state, under a name never stored: no base to walk. */
		snprintf(w, sizeof(w), "w%u", round);
		nasc_get_stats(cli, &before);
		store(cli, w, b, len, &wi);
		nasc_get_stats(cli, &after);
		ck_assert_uint_eq(after.ns_fp_stores, before.ns_fp_stores);
		ck_assert_mem_eq(ci.ni_digest, wi.ni_digest, SHA_LEN);
		ck_assert_int_eq(digest_buf(&cp, b, len, digest), 0);
		ck_assert_mem_eq(ci.ni_digest, digest, SHA_LEN);
		expect_restores(cli, "c", ci.ni_seq, b, len);
	}
	free(b);
}
END_TEST

START_TEST(bcache_unchanged_state_is_neither_cut_nor_hashed)
{
	size_t len = 4 * MiB;
	uint8_t *b = testbuf_bytes(len, 8);
	struct nasc_stats before, after;
	struct nasc_info i1, i2;

	store(cli, "u", b, len, &i1);
	nasc_get_stats(cli, &before);
	store(cli, "u", b, len, &i2);
	nasc_get_stats(cli, &after);
	ck_assert_uint_eq(after.ns_hashed_bytes, before.ns_hashed_bytes);
	ck_assert_uint_eq(after.ns_cut_bytes, before.ns_cut_bytes);
	ck_assert_uint_eq(after.ns_reused_bytes - before.ns_reused_bytes, len);
	ck_assert_mem_eq(i1.ni_digest, i2.ni_digest, SHA_LEN);
	/* Off, the store reads it whole. */
	nasc_set_fingerprints(cli, false);
	store(cli, "u", b, len, &i2);
	nasc_get_stats(cli, &before);
	ck_assert_uint_eq(before.ns_hashed_bytes - after.ns_hashed_bytes, len);
	nasc_set_fingerprints(cli, true);
	free(b);
}
END_TEST

/* A list imported from elsewhere whose chunks this NAS never held: one refusal, then whole. */
START_TEST(bcache_imported_list_of_chunks_the_nas_lacks_costs_a_whole_store)
{
	char why[256];
	struct nasfix fix2;
	struct nasc *cli2;
	size_t len = 2 * MiB;
	uint8_t *b = testbuf_image(len, 31);
	struct bcache_list l;
	struct nasc_info i1, i2;

	store(cli, "m", b, len, &i1);
	ck_assert_int_eq(nasc_cache_export(cli, "n1", "m", &l), 0);
	ck_assert_int_eq(nasfix_start(&fix2, "bcache-test", 64 * MiB, 1024 * MiB), 0);
	cli2 = fix2.f_cli;
	ck_assert_int_eq(nasc_cache_import(cli2, "n1", "m", &l, why, sizeof(why)), 0);
	b[len / 2] ^= 1;
	store(cli2, "m", b, len, &i2);
	expect_restores(cli2, "m", i2.ni_seq, b, len);
	/* An inconsistent list is refused. */
	l.bl_sha[0][0] ^= 1;
	ck_assert_int_eq(nasc_cache_import(cli2, "n1", "m", &l, why, sizeof(why)), -EBADMSG);
	bcache_list_free(&l);
	nasfix_stop(&fix2);
	free(b);
}
END_TEST

/* ---- cache files ---- */

static void
corrupt_at(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t c;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= 0x10;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

START_TEST(bcache_file_round_trip_and_bad_files_refused)
{
	struct chunk_params cp;
	size_t len = MiB + 123;
	uint8_t *b = testbuf_image(len, 5);
	struct bcache_list l, r;
	char path[256], copy[300], why[512], cmd[700];
	struct stat sb;

	ck_assert_int_eq(chunk_params_init(CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT, CHUNK_MAX_DEFAULT,
	                     &cp),
	    0);
	whole_list(&cp, b, len, &l);
	ck_assert_int_eq(bcache_path(fix.f_dir, "n1", "c", path, sizeof(path)), 0);
	ck_assert_int_eq(bcache_load(path, "n1", "c", &r, why, sizeof(why)), -ENOENT);
	ck_assert_int_eq(bcache_save(path, "n1", "c", &l, why, sizeof(why)), 0);
	ck_assert_int_eq(bcache_load(path, "n1", "c", &r, why, sizeof(why)), 0);
	ck_assert_uint_eq(r.bl_n, l.bl_n);
	ck_assert_uint_eq(r.bl_len, l.bl_len);
	ck_assert_mem_eq(r.bl_sizes, l.bl_sizes, l.bl_n * sizeof(*l.bl_sizes));
	ck_assert_mem_eq(r.bl_fp, l.bl_fp, l.bl_n * BCACHE_FP_LEN);
	ck_assert_mem_eq(r.bl_head, l.bl_head, l.bl_n * sizeof(*l.bl_head));
	ck_assert_mem_eq(r.bl_sha, l.bl_sha, l.bl_ndata * SHA_LEN);
	ck_assert_mem_eq(r.bl_digest, l.bl_digest, SHA_LEN);
	bcache_list_free(&r);
	/* Another node or component. */
	ck_assert_int_eq(bcache_load(path, "n2", "c", &r, why, sizeof(why)), -EBADMSG);
	ck_assert_int_eq(bcache_load(path, "n1", "d", &r, why, sizeof(why)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "another component"));
	/* One flipped bit anywhere: the header, a size, a hash, the checksum. */
	ck_assert_int_eq(stat(path, &sb), 0);
	snprintf(copy, sizeof(copy), "%s.good", path);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, copy);
	ck_assert_int_eq(system(cmd), 0);
	{
		off_t offs[] = { 0, 9, 20, 40, 300, sb.st_size / 2, sb.st_size - 40, sb.st_size - 1 };
		for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
			snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", copy, path);
			ck_assert_int_eq(system(cmd), 0);
			corrupt_at(path, offs[i]);
			ck_assert_msg(bcache_load(path, "n1", "c", &r, why, sizeof(why)) == -EBADMSG,
			    "a flipped bit at %lld was not found", (long long)offs[i]);
		}
	}
	/* Cut short, and empty. */
	ck_assert_int_eq(truncate(path, sb.st_size - 1), 0);
	ck_assert_int_eq(bcache_load(path, "n1", "c", &r, why, sizeof(why)), -EBADMSG);
	ck_assert_int_eq(truncate(path, 0), 0);
	ck_assert_int_eq(bcache_load(path, "n1", "c", &r, why, sizeof(why)), -EBADMSG);
	/* Consistent checksum but a hash that does not give its digest (a list made by hand). */
	l.bl_sha[0][3] ^= 1;
	ck_assert_int_eq(bcache_save(path, "n1", "c", &l, why, sizeof(why)), 0);
	ck_assert_int_eq(bcache_load(path, "n1", "c", &r, why, sizeof(why)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "digest"));
	unlink(copy);
	unlink(path);
	bcache_list_free(&l);
	free(b);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("bcache");
	TCase *tc = tcase_create("bcache");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, bcache_walk_of_random_edits_is_the_whole_read);
	tcase_add_test(tc, bcache_walk_with_small_chunks_is_the_whole_read);
	tcase_add_test(tc, bcache_walk_cuts_only_around_changes);
	tcase_add_test(tc, bcache_stores_of_random_edits_match_whole_stores);
	tcase_add_test(tc, bcache_unchanged_state_is_neither_cut_nor_hashed);
	tcase_add_test(tc, bcache_imported_list_of_chunks_the_nas_lacks_costs_a_whole_store);
	tcase_add_test(tc, bcache_file_round_trip_and_bad_files_refused);
	suite_add_tcase(s, tc);
	return test_run(s);
}

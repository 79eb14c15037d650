/* The content-defined chunker (common/chunk.c) and the chunk codec (common/zchunk.c). */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "chunk.h"
#include "chunklist.h"
#include "digest.h"
#include "sha.h"
#include "zchunk.h"

#include "../../chunkref.h"
#include "../testbuf.h"
#include "../testrun.h"

#define KiB 1024u
#define MAXCUTS 4096

/* Chunk lengths of the whole buffer, as a writer would cut them. */
static size_t
cut_all_holes(const struct chunk_params *p, const uint8_t *buf, size_t len, size_t *lens,
    bool *holes)
{
	size_t n = 0, off = 0;
	while (off < len) {
		bool zero;
		size_t k = chunk_next(p, buf + off, len - off, &zero);
		ck_assert_uint_gt(k, 0);
		ck_assert_uint_lt(n, MAXCUTS);
		if (holes != NULL)
			holes[n] = zero;
		lens[n++] = k;
		off += k;
	}
	return n;
}

static size_t
cut_all(const struct chunk_params *p, const uint8_t *buf, size_t len, size_t *lens)
{
	return cut_all_holes(p, buf, len, lens, NULL);
}

static struct chunk_params
defaults(void)
{
	struct chunk_params p;
	ck_assert_int_eq(chunk_params_init(CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT, CHUNK_MAX_DEFAULT,
	                     &p),
	    0);
	return p;
}

START_TEST(chunk_is_deterministic_and_respects_bounds)
{
	struct chunk_params p = defaults();
	size_t len = 8u << 20, *a = calloc(MAXCUTS, sizeof(*a)), *b = calloc(MAXCUTS, sizeof(*b));
	uint8_t *buf = testbuf_bytes(len, 1);
	size_t na = cut_all(&p, buf, len, a), nb = cut_all(&p, buf, len, b);

	ck_assert_uint_eq(na, nb);
	ck_assert_mem_eq(a, b, na * sizeof(*a));
	for (size_t i = 0; i + 1 < na; i++) {
		ck_assert_uint_ge(a[i], CHUNK_MIN_DEFAULT);
		ck_assert_uint_le(a[i], CHUNK_MAX_DEFAULT);
	}
	/* About 16 KiB on average (normalised chunking: 12 to 24 KiB). */
	ck_assert_uint_ge(len / na, 12 * KiB);
	ck_assert_uint_le(len / na, 24 * KiB);
	free(a);
	free(b);
	free(buf);
}
END_TEST

START_TEST(chunk_boundaries_survive_an_insertion_near_the_start)
{
	struct chunk_params p = defaults();
	size_t len = 4u << 20, *a = calloc(MAXCUTS, sizeof(*a)), *b = calloc(MAXCUTS, sizeof(*b));
	uint8_t *buf = testbuf_bytes(len + 1, 2), *ins = malloc(len + 1);
	size_t na, nb, same = 0, ia, ib, ea = 0, eb = 0;

	/* One byte inserted at offset 100. */
	memcpy(ins, buf, 100);
	ins[100] = 0x5a;
	memcpy(ins + 101, buf + 100, len - 100);
	na = cut_all(&p, buf, len, a);
	nb = cut_all(&p, ins, len + 1, b);
	/* Walk both lists of cut offsets: after the first chunk or two, they agree (shifted by 1). */
	for (ia = 0, ib = 0; ia < na && ib < nb;) {
		if (ea + a[ia] + 1 == eb + b[ib]) {
			if (ia >= 2)
				same++;
			ea += a[ia++];
			eb += b[ib++];
		} else if (ea + a[ia] + 1 < eb + b[ib]) {
			ea += a[ia++];
		} else {
			eb += b[ib++];
		}
	}
	/* Every chunk but the first two ends where it did before, one byte later. */
	ck_assert_uint_ge(same, na - 2 - 1);
	free(a);
	free(b);
	free(buf);
	free(ins);
}
END_TEST

START_TEST(chunk_zero_runs_cut_the_same_way_every_time)
{
	struct chunk_params p = defaults();
	size_t len = 1u << 20, *a = calloc(MAXCUTS, sizeof(*a));
	bool *holes = calloc(MAXCUTS, sizeof(*holes));
	uint8_t *z = calloc(1, len);
	size_t n = cut_all_holes(&p, z, len, a, holes);

	/* A run of zeros is cut into holes of max bytes. */
	ck_assert_uint_eq(n, len / CHUNK_MAX_DEFAULT);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_eq(a[i], CHUNK_MAX_DEFAULT);
		ck_assert(holes[i]);
	}
	free(a);
	free(holes);
	free(z);
}
END_TEST

START_TEST(chunk_holes_follow_the_zero_pages_of_an_image)
{
	struct chunk_params p = defaults();
	size_t pages = 1024, len = pages * 4 * KiB, off = 0, zero_bytes = 0, hole_bytes = 0;
	size_t *a = calloc(MAXCUTS, sizeof(*a)), *b = calloc(MAXCUTS, sizeof(*b));
	bool *ha = calloc(MAXCUTS, sizeof(*ha)), *hb = calloc(MAXCUTS, sizeof(*hb));
	uint8_t *img = testbuf_image(pages * 4 * KiB, 5);
	size_t na = cut_all_holes(&p, img, len, a, ha), nb, changed = 0;

	for (size_t i = 0; i < pages; i++)
		if (img[i * 4 * KiB] == 0 && img[i * 4 * KiB + 4 * KiB - 1] == 0)
			zero_bytes += 4 * KiB;
	for (size_t i = 0; i < na; i++) {
		if (ha[i]) {
			for (size_t k = 0; k < a[i]; k++)
				ck_assert_uint_eq(img[off + k], 0);
			hole_bytes += a[i];
		} else {
			/* Data chunks are cut at min or later, or at zeros from min / 4. */
			ck_assert(i + 1 == na || a[i] >= CHUNK_MIN_DEFAULT / 4);
		}
		off += a[i];
	}
	/* Nearly every zero page is in a hole (a data chunk may end inside one). */
	ck_assert_uint_ge(hole_bytes, zero_bytes - zero_bytes / 10);
	ck_assert_uint_le(hole_bytes, zero_bytes);
	/* One page rewritten: at most two data chunks differ. */
	memset(img + 300 * 4 * KiB, 0x77, 4 * KiB);
	img[300 * 4 * KiB + 5] = 1;
	nb = cut_all_holes(&p, img, len, b, hb);
	for (size_t i = 0, ea = 0, ia = 0; i < nb; i++) {
		size_t start = 0;
		bool same = false;
		for (size_t k = 0; k < i; k++)
			start += b[k];
		for (; ia < na && ea < start; ia++)
			ea += a[ia];
		same = ia < na && ea == start && a[ia] == b[i] && ha[ia] == hb[i];
		if (!same && !hb[i])
			changed++;
	}
	ck_assert_uint_le(changed, 2);
	free(a);
	free(b);
	free(ha);
	free(hb);
	free(img);
}
END_TEST

/* chunk_next() and the byte-at-a-time reference agree on buf[0, n). */
static void
matches_reference(const struct chunk_params *p, const uint8_t *buf, size_t n, const char *what,
    size_t off)
{
	bool zf = true, zr = false;
	size_t kf = chunk_next(p, buf, n, &zf), kr = chunkref_next(p, buf, n, &zr);

	ck_assert_msg(kf == kr && zf == zr,
	    "%s, bounds %u/%u/%u, offset %zu, length %zu: chunk_next %zu%s, reference %zu%s", what,
	    p->cp_min, p->cp_avg, p->cp_max, off, n, kf, zf ? " (hole)" : "", kr,
	    zr ? " (hole)" : "");
}

/*
 * Every chunk of buf, chunk by chunk as a writer cuts it; every length
 * 0..300 at the start of buf and at its end; every length near floor, min,
 * avg / 2 and max; and pieces at pseudo-random offsets and lengths.
 */
static void
matches_reference_everywhere(const struct chunk_params *p, const uint8_t *buf, size_t len,
    const char *what)
{
	size_t marks[] = { p->cp_floor, p->cp_min, p->cp_avg / 2, p->cp_max };
	uint32_t x = 12345;

	for (size_t off = 0; off < len;) {
		bool zero;
		size_t k = chunkref_next(p, buf + off, len - off, &zero);
		matches_reference(p, buf + off, len - off, what, off);
		off += k;
	}
	for (size_t n = 0; n <= 300 && n <= len; n++) {
		matches_reference(p, buf, n, what, 0);
		matches_reference(p, buf + len - n, n, what, len - n);
	}
	for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++)
		for (size_t n = marks[m] > 20 ? marks[m] - 20 : 0; n <= marks[m] + 20 && n <= len; n++)
			matches_reference(p, buf, n, what, 0);
	for (int i = 0; i < 200; i++) {
		size_t off, n;
		x = x * 1103515245u + 12345u;
		off = (x >> 4) % len;
		x = x * 1103515245u + 12345u;
		n = (x >> 4) % (p->cp_max + p->cp_max / 4 + 1);
		matches_reference(p, buf + off, n <= len - off ? n : len - off, what, off);
	}
}

/* Random bytes with runs of 60..70 zeros, 0..299 bytes apart: around CHUNK_ZERO_MIN. */
static uint8_t *
short_zero_runs(size_t len, unsigned seed)
{
	uint8_t *b = testbuf_bytes(len, seed);
	uint32_t x = seed;

	for (size_t off = 0; off < len;) {
		size_t run;
		x = x * 1103515245u + 12345u;
		off += (x >> 8) % 300;
		run = 60 + (x >> 20) % 11;
		if (off >= len)
			break;
		memset(b + off, 0, run < len - off ? run : len - off);
		off += run;
	}
	return b;
}

START_TEST(chunk_cuts_where_the_byte_at_a_time_reference_cuts)
{
	/* Defaults, tiny, odd, min above avg / 2, avg rounded down to min. */
	static const uint32_t bounds[][3] = {
		{ CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT, CHUNK_MAX_DEFAULT },
		{ 64, 256, 1024 },
		{ 100, 300, 1000 },
		{ 3000, 4096, 9001 },
		{ 64, 65, 66 },
		{ 129, 1000, 70001 },
	};

	for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
		struct chunk_params p;
		/* A few max-sized chunks' worth, and an odd length. */
		size_t len = (bounds[b][2] < 4096 ? 64 * 4096 : 12 * (size_t)bounds[b][2]) + 13;
		uint8_t *buf;

		ck_assert_int_eq(chunk_params_init(bounds[b][0], bounds[b][1], bounds[b][2], &p), 0);
		buf = testbuf_bytes(len, 11);
		matches_reference_everywhere(&p, buf, len, "random");
		free(buf);
		buf = testbuf_image(len, 12);
		matches_reference_everywhere(&p, buf, len, "memory image");
		free(buf);
		buf = short_zero_runs(len, 13);
		matches_reference_everywhere(&p, buf, len, "short zero runs");
		free(buf);
		buf = calloc(1, len);
		matches_reference_everywhere(&p, buf, len, "all zero");
		memset(buf, 0xff, len);
		matches_reference_everywhere(&p, buf, len, "all 0xff");
		free(buf);
	}
}
END_TEST

/*
 * Bytes from CHUNK_LOOKAHEAD past a chunk's end on do not move its cut: for
 * every chunk of images with small chunks (many zero runs), scribbling or
 * zeroing there leaves chunk_next() at its start as it was.
 */
START_TEST(chunk_cut_does_not_look_past_the_lookahead)
{
	struct chunk_params cp;
	size_t len = 1u << 20;
	uint32_t x = 77;

	ck_assert_int_eq(chunk_params_init(256, 1024, 4096, &cp), 0);
	for (unsigned seed = 1; seed <= 4; seed++) {
		uint8_t *b = testbuf_image(len, seed), *m = malloc(len);
		size_t off = 0;

		ck_assert_ptr_nonnull(m);
		/* Short zero runs and lone zeros too, around the holes' edges. */
		for (size_t i = 0; i + 90 < len; i += 97 + (x = x * 1103515245u + 12345u) % 300)
			memset(b + i, 0, (x >> 8) % 90);
		while (off < len) {
			bool zero, zero2;
			size_t k = chunk_next(&cp, b + off, len - off, &zero), from, k2;

			from = off + k + CHUNK_LOOKAHEAD;
			if (off + k < len && from < len) {
				size_t n = len - from < 600 ? len - from : 600;
				memcpy(m + from, b + from, n);
				for (size_t i = 0; i < n; i++) {
					x = x * 1103515245u + 12345u;
					b[from + i] = seed % 2 ? 0 : (uint8_t)(x >> 16);
				}
				k2 = chunk_next(&cp, b + off, len - off, &zero2);
				ck_assert_msg(k2 == k && zero2 == zero, "seed %u: chunk at %zu: %zu then %zu",
				    seed, off, k, k2);
				memcpy(b + from, m + from, n);
			}
			off += k;
		}
		free(m);
		free(b);
	}
}
END_TEST

START_TEST(chunk_params_refuse_bad_bounds)
{
	struct chunk_params p;

	ck_assert_int_eq(chunk_params_init(16 * KiB, 16 * KiB, 64 * KiB, &p), -EINVAL);
	ck_assert_int_eq(chunk_params_init(4 * KiB, 64 * KiB, 64 * KiB, &p), -EINVAL);
	ck_assert_int_eq(chunk_params_init(16, 1 * KiB, 4 * KiB, &p), -EINVAL);
	ck_assert_int_eq(chunk_params_init(4 * KiB, 16 * KiB, 8u << 20, &p), -EINVAL);
	ck_assert_int_eq(chunk_params_init(1 * KiB, 3 * KiB, 8 * KiB, &p), 0);
	ck_assert_uint_eq(p.cp_avg, 2 * KiB); /* rounded down to a power of two */
	/* Short inputs: the whole of them, never more than max. */
	ck_assert_int_eq(chunk_params_init(1 * KiB, 2 * KiB, 4 * KiB, &p), 0);
	{
		uint8_t *b = testbuf_bytes(64 * KiB, 3);
		bool zero;
		ck_assert_uint_eq(chunk_next(&p, b, 100, &zero), 100);
		ck_assert(!zero);
		ck_assert_uint_le(chunk_next(&p, b, 64 * KiB, &zero), 4 * KiB);
		ck_assert_uint_eq(chunk_next(&p, b, 0, &zero), 0);
		free(b);
	}
}
END_TEST

START_TEST(zchunk_compresses_when_it_pays_and_verifies)
{
	struct zchunk *z;
	size_t len = 16 * KiB, clen;
	uint8_t *zero = calloc(1, len), *rnd = testbuf_bytes(len, 4), *out, *raw_out = malloc(len);
	uint8_t sha[SHA_LEN];
	const void *raw;
	unsigned codec;

	ck_assert_int_eq(zchunk_new(&z), 0);
	out = malloc(zchunk_bound(len));
	ck_assert_int_eq(zchunk_compress(z, zero, len, out, zchunk_bound(len), &clen, &codec), 0);
	ck_assert_uint_eq(codec, ZCHUNK_ZSTD);
	ck_assert_uint_lt(clen, len / 8);
	sha256(zero, len, sha);
	ck_assert_int_eq(zchunk_verify(z, codec, out, clen, len, len, raw_out, sha, &raw), 0);
	ck_assert_mem_eq(raw, zero, len);
	/* Another raw size than the frame declares, a raw size over the limit (zip bomb). */
	ck_assert_int_eq(zchunk_verify(z, codec, out, clen, len - 1, len, raw_out, sha, &raw),
	    -EBADMSG);
	ck_assert_int_eq(zchunk_verify(z, codec, out, clen, len, len - 1, raw_out, sha, &raw),
	    -EINVAL);
	/* A flipped bit in the frame is caught. */
	out[clen / 2] ^= 0x10;
	ck_assert_int_ne(zchunk_verify(z, codec, out, clen, len, len, raw_out, sha, &raw), 0);
	/* Random bytes: kept raw. */
	ck_assert_int_eq(zchunk_compress(z, rnd, len, out, zchunk_bound(len), &clen, &codec), 0);
	ck_assert_uint_eq(codec, ZCHUNK_RAW);
	sha256(rnd, len, sha);
	ck_assert_int_eq(zchunk_verify(z, ZCHUNK_RAW, rnd, len, len, len, NULL, sha, &raw), 0);
	ck_assert_ptr_eq(raw, rnd);
	rnd[0] ^= 1;
	ck_assert_int_eq(zchunk_verify(z, ZCHUNK_RAW, rnd, len, len, len, NULL, sha, &raw), -EBADMSG);
	ck_assert_int_eq(zchunk_verify(z, 7, rnd, len, len, len, NULL, sha, &raw), -EINVAL);
	zchunk_free(z);
	free(zero);
	free(rnd);
	free(out);
	free(raw_out);
}
END_TEST

START_TEST(chunklist_expands_the_compact_form_and_refuses_bad_ones)
{
	Ckpt__V1__StoreRequest req = CKPT__V1__STORE_REQUEST__INIT;
	const Ckpt__V1__StoreRequest *x;
	Ckpt__V1__ChunkRef ref = CKPT__V1__CHUNK_REF__INIT, *rptr = &ref;
	uint32_t sizes[3] = { 4096u << 1, 100u << 1 | 1u, 8u << 1 };
	uint8_t hashes[2 * SHA_LEN];
	struct arena *a;
	char err[128];

	for (size_t i = 0; i < sizeof(hashes); i++)
		hashes[i] = (uint8_t)i;
	ck_assert_int_eq(arena_new(&a), 0);
	/* No compact list: the request itself. */
	ck_assert_int_eq(chunklist_expand(a, &req, 10, &x, err, sizeof(err)), 0);
	ck_assert_ptr_eq(x, &req);
	req.n_chunk_sizes = 3;
	req.chunk_sizes = sizes;
	req.chunk_sha256.data = hashes;
	req.chunk_sha256.len = sizeof(hashes);
	ck_assert_int_eq(chunklist_expand(a, &req, 10, &x, err, sizeof(err)), 0);
	ck_assert_uint_eq(x->n_chunks, 3);
	ck_assert_uint_eq(x->n_chunk_sizes, 0);
	ck_assert_uint_eq(x->chunks[0]->size, 4096);
	ck_assert(!x->chunks[0]->zero);
	ck_assert_mem_eq(x->chunks[0]->sha256.data, hashes, SHA_LEN);
	ck_assert(x->chunks[1]->zero);
	ck_assert_uint_eq(x->chunks[1]->size, 100);
	ck_assert_uint_eq(x->chunks[1]->sha256.len, 0);
	ck_assert_uint_eq(x->chunks[2]->size, 8);
	ck_assert_mem_eq(x->chunks[2]->sha256.data, hashes + SHA_LEN, SHA_LEN);
	/* Hashes that do not match the sizes, too many chunks, both forms at once. */
	req.chunk_sha256.len = SHA_LEN;
	ck_assert_int_eq(chunklist_expand(a, &req, 10, &x, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "chunk_sha256"));
	req.chunk_sha256.len = sizeof(hashes);
	ck_assert_int_eq(chunklist_expand(a, &req, 2, &x, err, sizeof(err)), -EINVAL);
	req.n_chunks = 1;
	req.chunks = &rptr;
	ck_assert_int_eq(chunklist_expand(a, &req, 10, &x, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "both"));
	/* Hashes without sizes. */
	req.n_chunks = 0;
	req.n_chunk_sizes = 0;
	ck_assert_int_eq(chunklist_expand(a, &req, 10, &x, err, sizeof(err)), -EINVAL);
	arena_free(a);
}
END_TEST

/*
 * The definition in proto/ckpt/v1/nas.proto, followed by hand in Python
 * (hashlib, struct.pack('<I', ...)) for [data "abc", hole of 100, data
 * 0..69]: the known answer below.
 */
START_TEST(digest_matches_its_definition_in_nas_proto)
{
	static const char want_hex[] =
	    "d7cb166d2e359057852cb01614cc5f2fd4c57293c2ae395993609c3dd484ca86";
	uint8_t b70[70], sha[2][SHA_LEN], got[SHA_LEN], want[SHA_LEN];
	uint32_t sizes[3] = { 3u << 1, 100u << 1 | 1u, 70u << 1 };
	Ckpt__V1__ChunkRef r[3], *rp[3] = { &r[0], &r[1], &r[2] };
	char str[DIGEST_STR_LEN];

	for (int i = 0; i < 70; i++)
		b70[i] = (uint8_t)i;
	sha256("abc", 3, sha[0]);
	sha256(b70, 70, sha[1]);
	ck_assert_int_eq(sha_parse_hex(want_hex, want), 0);
	ck_assert_int_eq(digest_compact(sizes, 3, sha[0], 2, got), 0);
	ck_assert_mem_eq(got, want, SHA_LEN);
	for (int i = 0; i < 3; i++)
		ckpt__v1__chunk_ref__init(&r[i]);
	r[0].size = 3;
	r[0].sha256 = (ProtobufCBinaryData){ SHA_LEN, sha[0] };
	r[1].size = 100;
	r[1].zero = true;
	r[2].size = 70;
	r[2].sha256 = (ProtobufCBinaryData){ SHA_LEN, sha[1] };
	ck_assert_int_eq(digest_refs(rp, 3, got), 0);
	ck_assert_mem_eq(got, want, SHA_LEN);
	digest_str(got, str);
	ck_assert_str_eq(str, "ckpt-chunks-sha256:"
	    "d7cb166d2e359057852cb01614cc5f2fd4c57293c2ae395993609c3dd484ca86");
	/* The hash count must match the data chunks; a data ref needs its hash. */
	ck_assert_int_eq(digest_compact(sizes, 3, sha[0], 1, got), -EINVAL);
	r[2].sha256.len = 0;
	ck_assert_int_eq(digest_refs(rp, 3, got), -EINVAL);
}
END_TEST

/* digest_buf (ckptctl digest) and digest_buf2 (the demo) against the list chunk_next cuts. */
START_TEST(digest_of_bytes_is_the_digest_of_their_chunk_list)
{
	size_t len = 300000;
	uint8_t *b = testbuf_bytes(len, 9), *hashes = malloc(len / 64 * SHA_LEN + SHA_LEN);
	uint32_t *sizes = malloc((len / 64 + 1) * sizeof(*sizes));
	uint8_t a[SHA_LEN], c[SHA_LEN], d[SHA_LEN];
	struct chunk_params p;
	size_t n = 0, nh = 0;

	memset(b + 50000, 0, 40000);  /* a hole */
	ck_assert_int_eq(chunk_params_init(256, 1024, 4096, &p), 0);
	for (size_t off = 0; off < len;) {
		bool zero = false;
		size_t k = chunk_next(&p, b + off, len - off, &zero);
		sizes[n++] = (uint32_t)k << 1 | (zero ? 1u : 0u);
		if (!zero)
			sha256(b + off, k, hashes + SHA_LEN * nh++);
		off += k;
	}
	ck_assert_int_eq(digest_compact(sizes, n, hashes, nh, a), 0);
	ck_assert_int_eq(digest_buf(&p, b, len, c), 0);
	ck_assert_mem_eq(a, c, SHA_LEN);
	for (size_t head = 0; head < 9000; head += 1777) {
		ck_assert_int_eq(digest_buf2(&p, b, head, b + head, len - head, d), 0);
		ck_assert_mem_eq(a, d, SHA_LEN);
	}
	free(sizes);
	free(hashes);
	free(b);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("chunk");
	TCase *tc = tcase_create("chunk");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, digest_matches_its_definition_in_nas_proto);
	tcase_add_test(tc, digest_of_bytes_is_the_digest_of_their_chunk_list);
	tcase_add_test(tc, chunk_is_deterministic_and_respects_bounds);
	tcase_add_test(tc, chunk_boundaries_survive_an_insertion_near_the_start);
	tcase_add_test(tc, chunk_zero_runs_cut_the_same_way_every_time);
	tcase_add_test(tc, chunk_holes_follow_the_zero_pages_of_an_image);
	tcase_add_test(tc, chunk_cuts_where_the_byte_at_a_time_reference_cuts);
	tcase_add_test(tc, chunk_cut_does_not_look_past_the_lookahead);
	tcase_add_test(tc, chunk_params_refuse_bad_bounds);
	tcase_add_test(tc, zchunk_compresses_when_it_pays_and_verifies);
	tcase_add_test(tc, chunklist_expands_the_compact_form_and_refuses_bad_ones);
	suite_add_tcase(s, tc);
	return test_run(s);
}

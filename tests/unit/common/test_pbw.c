/*
 * pbw writes, byte for byte, what protobuf-c packs: GetChunks replies of 0, 1
 * and many chunks, split chunks (head and tail), every varint boundary.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/nas.pb-c.h"
#include "pbw.h"

#include "../testbuf.h"
#include "../testrun.h"

#define MAXC 16

/* A reply of n chunks, described twice: for protobuf-c and for pbw. */
struct reply {
	size_t n;
	struct pbw_chunk pc[MAXC];
	Ckpt__V1__Chunk c[MAXC], *cp[MAXC];
	uint8_t *joined[MAXC]; /* head + tail, for protobuf-c */
};

/* Adds a chunk whose data is head bytes, then tail bytes (tail 0: not split). */
static void
reply_add(struct reply *r, size_t sha_len, size_t head, size_t tail, uint32_t raw_size,
    uint32_t codec)
{
	size_t i = r->n++;
	uint8_t *sha = testbuf_bytes(sha_len, (unsigned)i + 100);
	uint8_t *data = testbuf_bytes(head + tail, (unsigned)i);

	ck_assert_uint_lt(i, MAXC);
	r->joined[i] = data;
	r->pc[i] = (struct pbw_chunk){ .pc_sha256 = sha, .pc_sha256_len = sha_len,
		.pc_data = data, .pc_len = head, .pc_tail = tail != 0 ? data + head : NULL,
		.pc_tail_len = tail, .pc_raw_size = raw_size, .pc_codec = codec };
	ckpt__v1__chunk__init(&r->c[i]);
	r->c[i].sha256 = (ProtobufCBinaryData){ sha_len, sha };
	r->c[i].data = (ProtobufCBinaryData){ head + tail, data };
	r->c[i].raw_size = raw_size;
	r->c[i].codec = codec;
	r->cp[i] = &r->c[i];
}

static void
reply_free(struct reply *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free((void *)r->pc[i].pc_sha256);
		free(r->joined[i]);
	}
	r->n = 0;
}

/* Encodes r both ways and compares. */
static void
reply_check(const struct reply *r)
{
	Ckpt__V1__GetChunksReply m = CKPT__V1__GET_CHUNKS_REPLY__INIT;
	size_t want, len = 0;
	uint8_t *a, *b, *p;

	m.n_chunks = r->n;
	m.chunks = (Ckpt__V1__Chunk **)r->cp;
	want = ckpt__v1__get_chunks_reply__get_packed_size(&m);
	for (size_t i = 0; i < r->n; i++)
		len += pbw_reply_chunk_len(&r->pc[i]);
	ck_assert_uint_eq(len, want);
	a = malloc(want + 1);
	b = malloc(want + 1);
	ck_assert(a != NULL && b != NULL);
	ck_assert_uint_eq(ckpt__v1__get_chunks_reply__pack(&m, a), want);
	p = b;
	for (size_t i = 0; i < r->n; i++)
		p = pbw_reply_chunk_put(p, &r->pc[i]);
	ck_assert_uint_eq((size_t)(p - b), want);
	ck_assert(memcmp(a, b, want) == 0);
	free(a);
	free(b);
}

START_TEST(pbw_empty_reply_is_no_bytes)
{
	struct reply r = { 0 };
	reply_check(&r);
}
END_TEST

START_TEST(pbw_one_chunk_matches_protobuf_c)
{
	struct reply r = { 0 };
	reply_add(&r, 32, 4096, 0, 4096, 0);
	reply_check(&r);
	reply_free(&r);
	/* Compressed: codec and raw size are written. */
	reply_add(&r, 32, 1000, 0, 65536, 1);
	reply_check(&r);
	reply_free(&r);
}
END_TEST

START_TEST(pbw_many_chunks_match_protobuf_c)
{
	struct reply r = { 0 };
	for (unsigned i = 0; i < MAXC; i++)
		reply_add(&r, 32, 100 + 977 * i, i % 3 == 0 ? 17 * i + 1 : 0, 5000 + i, i % 2);
	reply_check(&r);
	reply_free(&r);
}
END_TEST

START_TEST(pbw_split_chunks_match_protobuf_c)
{
	struct reply r = { 0 };
	/* The head and tail of stored chunks: 3 pages less the headers, then a short tail. */
	reply_add(&r, 32, 3 * 4096 - 24, 100, 3 * 4096 - 24 + 100, 0);
	reply_add(&r, 32, 4096 - 24, 1536, 4096 - 24 + 1536, 0);
	reply_add(&r, 32, 8192 - 24, 1, 70000, 1);
	reply_check(&r);
	reply_free(&r);
}
END_TEST

/* Lengths and values on either side of each varint boundary. */
static const uint64_t bounds[] = { 0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455,
	268435456, UINT32_MAX };

START_TEST(pbw_sizes_at_varint_boundaries_match_protobuf_c)
{
	struct reply r = { 0 };
	size_t nb = sizeof(bounds) / sizeof(bounds[0]);

	/* raw_size and codec: every boundary, including 0 (left out). */
	for (size_t i = 0; i < nb; i++) {
		reply_add(&r, 32, 10, 0, (uint32_t)bounds[i], (uint32_t)bounds[nb - 1 - i]);
		if (r.n == MAXC) {
			reply_check(&r);
			reply_free(&r);
		}
	}
	reply_check(&r);
	reply_free(&r);
	/* Data lengths up to 2 MiB + 1: the chunk's own length crosses the boundaries too. */
	for (size_t i = 1; i < nb && bounds[i] <= 2097152; i++) {
		reply_add(&r, 32, (size_t)bounds[i], 0, 0, 0);
		reply_add(&r, 32, (size_t)bounds[i] - 1, 1, (uint32_t)bounds[i], 0);
		/* Chunk messages of exactly 127/128 ... bytes: data shortened by the other fields. */
		if (bounds[i] > 40)
			reply_add(&r, 32, (size_t)bounds[i] - 40, 0, 1, 1);
		reply_check(&r);
		reply_free(&r);
	}
	/* No hash, no data: both fields left out, as protobuf-c does. */
	reply_add(&r, 0, 0, 0, 0, 0);
	reply_add(&r, 0, 0, 0, 7, 1);
	reply_check(&r);
	reply_free(&r);
}
END_TEST

START_TEST(pbw_varints_match_protobuf_c)
{
	uint64_t vs[] = { 0, 1, 127, 128, 16383, 16384, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
		(1ull << 56) - 1, 1ull << 56, (1ull << 63) - 1, 1ull << 63, UINT64_MAX };

	for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
		/* A StatReply of one uint64 field (chunks = 2): tag, then the varint. */
		Ckpt__V1__StatReply m = CKPT__V1__STAT_REPLY__INIT;
		uint8_t a[16], b[PBW_VARINT_MAX + 1];
		size_t n;

		m.chunks = vs[i];
		n = ckpt__v1__stat_reply__pack(&m, a);
		if (vs[i] == 0) {
			ck_assert_uint_eq(n, 0);
			ck_assert_uint_eq(pbw_varint_len(0), 1);
			continue;
		}
		ck_assert_uint_eq(pbw_varint_len(vs[i]), n - 1);
		ck_assert_uint_eq((size_t)(pbw_varint_put(b, vs[i]) - b), n - 1);
		ck_assert(memcmp(a + 1, b, n - 1) == 0);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("pbw");
	TCase *tc = tcase_create("pbw");

	tcase_add_test(tc, pbw_empty_reply_is_no_bytes);
	tcase_add_test(tc, pbw_one_chunk_matches_protobuf_c);
	tcase_add_test(tc, pbw_many_chunks_match_protobuf_c);
	tcase_add_test(tc, pbw_split_chunks_match_protobuf_c);
	tcase_add_test(tc, pbw_sizes_at_varint_boundaries_match_protobuf_c);
	tcase_add_test(tc, pbw_varints_match_protobuf_c);
	suite_add_tcase(s, tc);
	return test_run(s);
}

/*
 * pbv reads what protobuf-c writes, and refuses a table of malformed inputs;
 * chunkv reads a PutChunksRequest in place, as protobuf-c unpacks it.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "chunkv.h"
#include "ckpt/v1/nas.pb-c.h"
#include "pbv.h"
#include "../testrun.h"

START_TEST(pbv_reads_a_packed_get_chunks_reply)
{
	uint8_t sha[32] = { 7 }, data[300], buf[1024];
	Ckpt__V1__Chunk c1 = CKPT__V1__CHUNK__INIT, c2 = CKPT__V1__CHUNK__INIT;
	Ckpt__V1__Chunk *cs[2] = { &c1, &c2 };
	Ckpt__V1__GetChunksReply r = CKPT__V1__GET_CHUNKS_REPLY__INIT;
	struct pbv_field f, g;
	struct pbv v, w;
	size_t n, chunks = 0;

	memset(data, 0xab, sizeof(data));
	c1.sha256 = (ProtobufCBinaryData){ sizeof(sha), sha };
	c1.data = (ProtobufCBinaryData){ sizeof(data), data };
	c1.raw_size = 70000;
	c1.codec = 1;
	c2.data = (ProtobufCBinaryData){ 1, data };
	r.n_chunks = 2;
	r.chunks = cs;
	n = ckpt__v1__get_chunks_reply__pack(&r, buf);
	pbv_init(&v, buf, n);
	while (pbv_next(&v, &f) == 1) {
		ck_assert_uint_eq(f.pf_num, 1);
		ck_assert_int_eq(f.pf_wire, PBV_LEN);
		pbv_init(&w, f.pf_data, f.pf_len);
		while (pbv_next(&w, &g) == 1) {
			if (chunks == 0 && g.pf_num == 1)
				ck_assert(g.pf_len == 32 && memcmp(g.pf_data, sha, 32) == 0);
			if (chunks == 0 && g.pf_num == 2)
				ck_assert(g.pf_len == 300 && g.pf_data[299] == 0xab);
			if (chunks == 0 && g.pf_num == 3)
				ck_assert_uint_eq(g.pf_u64, 70000);
			if (chunks == 1 && g.pf_num == 2)
				ck_assert_uint_eq(g.pf_len, 1);
		}
		chunks++;
	}
	ck_assert_uint_eq(chunks, 2);
	pbv_init(&v, buf, 0);
	ck_assert_int_eq(pbv_next(&v, &f), 0);
}
END_TEST

START_TEST(pbv_reads_every_wire_type)
{
	/* 1: varint 300, 2: fixed64, 3: bytes "hi", 4: fixed32, 5: max varint */
	const uint8_t b[] = { 0x08, 0xac, 0x02, 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0x1a, 2, 'h', 'i',
		0x25, 1, 0, 0, 0x80, 0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	struct pbv_field f;
	struct pbv v;

	pbv_init(&v, b, sizeof(b));
	ck_assert_int_eq(pbv_next(&v, &f), 1);
	ck_assert(f.pf_num == 1 && f.pf_wire == PBV_VARINT && f.pf_u64 == 300);
	ck_assert_int_eq(pbv_next(&v, &f), 1);
	ck_assert(f.pf_num == 2 && f.pf_wire == PBV_I64 && f.pf_u64 == 0x0807060504030201ull);
	ck_assert_int_eq(pbv_next(&v, &f), 1);
	ck_assert(f.pf_num == 3 && f.pf_wire == PBV_LEN && f.pf_len == 2 && f.pf_data == b + 14);
	ck_assert_int_eq(pbv_next(&v, &f), 1);
	ck_assert(f.pf_num == 4 && f.pf_wire == PBV_I32 && f.pf_u64 == 0x80000001u);
	ck_assert_int_eq(pbv_next(&v, &f), 1);
	ck_assert(f.pf_num == 5 && f.pf_u64 == UINT64_MAX);
	ck_assert_int_eq(pbv_next(&v, &f), 0);
}
END_TEST

static const struct {
	const char *name;
	uint8_t bytes[16];
	size_t len;
} malformed[] = {
	{ "tag cut short", { 0x80 }, 1 },
	{ "field number 0", { 0x00, 0x01 }, 2 },
	{ "varint cut short", { 0x08, 0xff }, 2 },
	{ "varint of 11 bytes", { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0x01 }, 12 },
	{ "varint past 64 bits", { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0x02 }, 11 },
	{ "length past the end", { 0x0a, 0x05, 'a', 'b' }, 4 },
	{ "huge length", { 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f }, 6 },
	/* Over-long encodings of small numbers, which protobuf-c refuses (found by fuzz_pbv). */
	{ "tag of 6 bytes", { 0x88, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01 }, 7 },
	{ "length of 6 bytes", { 0x0a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 'a' }, 8 },
	{ "fixed64 cut short", { 0x09, 1, 2, 3 }, 4 },
	{ "fixed32 cut short", { 0x0d, 1, 2 }, 3 },
	{ "start group", { 0x0b }, 1 },
	{ "end group", { 0x0c }, 1 },
	{ "wire type 6", { 0x0e, 0 }, 2 },
	{ "wire type 7", { 0x0f, 0 }, 2 },
	{ "field number past 2^29", { 0xf8, 0xff, 0xff, 0xff, 0x7f, 0 }, 6 },
};

START_TEST(pbv_refuses_malformed_input)
{
	struct pbv_field f = { 0 };
	struct pbv v;
	int rv;

	pbv_init(&v, malformed[_i].bytes, malformed[_i].len);
	while ((rv = pbv_next(&v, &f)) == 1)
		;
	ck_assert_msg(rv == -EPROTO, "%s: %d", malformed[_i].name, rv);
}
END_TEST

START_TEST(chunkv_reads_a_put_chunks_request_in_place)
{
	uint8_t sha[32], data[5000], buf[16384];
	Ckpt__V1__Chunk c[3] = { CKPT__V1__CHUNK__INIT, CKPT__V1__CHUNK__INIT, CKPT__V1__CHUNK__INIT };
	Ckpt__V1__Chunk *cs[3] = { &c[0], &c[1], &c[2] };
	Ckpt__V1__PutChunksRequest r = CKPT__V1__PUT_CHUNKS_REQUEST__INIT, *got;
	/* Unknown fields: 7 (varint) at the top, 9 (bytes) in a chunk; both skipped. */
	const uint8_t unknown_top[] = { 0x38, 0x05 };
	const uint8_t chunk_unknown[] = { 0x0a, 6, 0x4a, 2, 'x', 'y', 0x18, 9 };
	struct arena *a;
	size_t n;

	for (size_t i = 0; i < sizeof(sha); i++)
		sha[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	c[0].sha256 = (ProtobufCBinaryData){ sizeof(sha), sha };
	c[0].data = (ProtobufCBinaryData){ sizeof(data), data };
	c[0].raw_size = 70000;
	c[0].codec = 1;
	c[1].sha256 = (ProtobufCBinaryData){ sizeof(sha), sha };
	c[1].data = (ProtobufCBinaryData){ 1, data + 3 };
	/* c[2]: every field empty */
	r.n_chunks = 3;
	r.chunks = cs;
	n = ckpt__v1__put_chunks_request__pack(&r, buf);
	memcpy(buf + n, unknown_top, sizeof(unknown_top));
	n += sizeof(unknown_top);
	memcpy(buf + n, chunk_unknown, sizeof(chunk_unknown));
	n += sizeof(chunk_unknown);

	ck_assert_int_eq(arena_new(&a), 0);
	ck_assert_int_eq(chunkv_put_request(a, buf, n, 4, &got), 0);
	ck_assert_uint_eq(got->n_chunks, 4);
	ck_assert_uint_eq(got->chunks[0]->sha256.len, 32);
	ck_assert_mem_eq(got->chunks[0]->sha256.data, sha, 32);
	ck_assert_uint_eq(got->chunks[0]->data.len, sizeof(data));
	ck_assert_mem_eq(got->chunks[0]->data.data, data, sizeof(data));
	/* In place: the bytes are the buffer's, not a copy. */
	ck_assert(got->chunks[0]->data.data > buf && got->chunks[0]->data.data < buf + n);
	ck_assert_uint_eq(got->chunks[0]->raw_size, 70000);
	ck_assert_uint_eq(got->chunks[0]->codec, 1);
	ck_assert_uint_eq(got->chunks[1]->data.len, 1);
	ck_assert_uint_eq(got->chunks[1]->data.data[0], data[3]);
	ck_assert_uint_eq(got->chunks[1]->raw_size, 0);
	ck_assert_uint_eq(got->chunks[2]->sha256.len, 0);
	ck_assert_uint_eq(got->chunks[2]->data.len, 0);
	ck_assert_uint_eq(got->chunks[3]->data.len, 0);
	ck_assert_uint_eq(got->chunks[3]->raw_size, 9);

	/* One chunk more than max: refused before anything is allocated. */
	ck_assert_int_eq(chunkv_put_request(a, buf, n, 3, &got), -E2BIG);
	/* No chunks at all is a request too. */
	ck_assert_int_eq(chunkv_put_request(a, buf, 0, 4, &got), 0);
	ck_assert_uint_eq(got->n_chunks, 0);
	arena_free(a);
}
END_TEST

/* Each refused: chunks of the wrong wire type, a raw_size past 32 bits, cut short. */
static const struct {
	uint8_t b[16];
	size_t len;
} chunkv_bad[] = {
	{ { 0x08, 0x01 }, 2 },                                   /* chunks as a varint */
	{ { 0x0a, 2, 0x08, 0x01 }, 4 },                          /* sha256 as a varint */
	{ { 0x0a, 2, 0x10, 0x01 }, 4 },                          /* data as a varint */
	{ { 0x0a, 3, 0x1a, 1, 0 }, 5 },                          /* raw_size as bytes */
	{ { 0x0a, 6, 0x18, 0x80, 0x80, 0x80, 0x80, 0x10 }, 8 },  /* raw_size 2^32 */
	{ { 0x0a, 6, 0x20, 0xff, 0xff, 0xff, 0xff, 0x1f }, 8 },  /* codec past 32 bits */
	{ { 0x0a, 5, 0x0a, 1 }, 4 },                             /* chunk longer than the buffer */
	{ { 0x0a, 2, 0x0a, 5 }, 4 },                             /* sha256 longer than its chunk */
};

START_TEST(chunkv_refuses_malformed_requests)
{
	Ckpt__V1__PutChunksRequest *got = NULL;
	struct arena *a;

	ck_assert_int_eq(arena_new(&a), 0);
	ck_assert_int_eq(chunkv_put_request(a, chunkv_bad[_i].b, chunkv_bad[_i].len, 8, &got), -EPROTO);
	ck_assert_ptr_null(got);
	arena_free(a);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("pbv");
	TCase *tc = tcase_create("pbv");

	tcase_add_test(tc, pbv_reads_a_packed_get_chunks_reply);
	tcase_add_test(tc, pbv_reads_every_wire_type);
	tcase_add_test(tc, chunkv_reads_a_put_chunks_request_in_place);
	tcase_add_loop_test(tc, chunkv_refuses_malformed_requests, 0,
	    (int)(sizeof(chunkv_bad) / sizeof(chunkv_bad[0])));
	tcase_add_loop_test(tc, pbv_refuses_malformed_input, 0,
	    (int)(sizeof(malformed) / sizeof(malformed[0])));
	suite_add_tcase(s, tc);
	return test_run(s);
}

/* pbv reads what protobuf-c writes, and refuses a table of malformed inputs. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/nas.pb-c.h"
#include "pbv.h"

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

int
main(void)
{
	Suite *s = suite_create("pbv");
	TCase *tc = tcase_create("pbv");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, pbv_reads_a_packed_get_chunks_reply);
	tcase_add_test(tc, pbv_reads_every_wire_type);
	tcase_add_loop_test(tc, pbv_refuses_malformed_input, 0,
	    (int)(sizeof(malformed) / sizeof(malformed[0])));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

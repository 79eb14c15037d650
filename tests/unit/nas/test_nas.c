/* The Nas service in-process, over tcp on 127.0.0.1 (port 0), driven by nasc and raw bytes. */
#include <check.h>
#include <errno.h>
#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/nas.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "chunk.h"
#include "log.h"
#include "methods.h"
#include "nas.h"
#include "digest.h"
#include "err.h"
#include "nasc.h"
#include "rpc.h"
#include "sha.h"
#include "store.h"

#include "nasfix.h"
#include "../testbuf.h"
#include "../testrun.h"

#define MiB (1u << 20)
#define TIMEOUT_MS 10000u

static struct nasfix fix;
static struct nas *srv;
static struct nasc *cli;

static void
setup(void)
{
	const char *url;

	log_init("test-nas", NULL, LOG_LEVEL_INFO);
	ck_assert_int_eq(nasfix_start(&fix, "nas-test", 64 * MiB, 1024 * MiB), 0);
	cli = fix.f_cli;
	srv = fix.f_srv;
	url = nas_url(srv);
	ck_assert_ptr_nonnull(strstr(url, "tcp://127.0.0.1:"));
}

static void
teardown(void)
{
	nasfix_stop(&fix);
}

static int
put(const char *node, const char *comp, uint64_t epoch, const void *buf, size_t len,
    struct nasc_info *ret_info, struct rpc_error *err)
{
	struct nasc_put p = { node, comp, "raw", 0, epoch };
	return nasc_store_buf(cli, &p, buf, len, TIMEOUT_MS, ret_info, err);
}

static void
round_trip(size_t len, unsigned seed)
{
	uint8_t *b = testbuf_bytes(len, seed), want[SHA_LEN];
	struct nasc_info in, out;
	struct rpc_error err;
	void *got;
	size_t got_len;
	int rv;

	rv = put("n1", "c", 1, b, len, &in, &err);
	ck_assert_msg(rv == 0, "store: %s", err.re_msg);
	{
		struct chunk_params cp;
		ck_assert_int_eq(digest_params(0, 0, 0, &cp), 0);
		ck_assert_int_eq(digest_buf(&cp, b, len, want), 0);
	}
	ck_assert_mem_eq(in.ni_digest, want, SHA_LEN);
	ck_assert(!in.ni_has_sha256);
	ck_assert_uint_eq(in.ni_size, len);
	rv = nasc_retrieve_buf(cli, "", "c", 0, len + 1, TIMEOUT_MS, &got, &got_len, &out, &err);
	ck_assert_msg(rv == 0, "retrieve: %s", err.re_msg);
	ck_assert_uint_eq(got_len, len);
	ck_assert_mem_eq(got, b, len);
	ck_assert_uint_eq(out.ni_seq, in.ni_seq);
	ck_assert_str_eq(out.ni_node, "n1");
	free(got);
	free(b);
}

/* The stored record's chunk list equals one thread's pass of chunk_next. */
static void
expect_sequential_cuts(const uint8_t *b, size_t len, uint64_t seq)
{
	Ckpt__V1__RetrieveRequest req = CKPT__V1__RETRIEVE_REQUEST__INIT;
	Ckpt__V1__RetrieveReply *rep = NULL;
	struct chunk_params cp;
	struct rpc_error err;
	size_t off = 0, i = 0;

	req.node = "n1";
	req.component = "img";
	req.seq = seq;
	ck_assert_int_eq(nasc_call(cli, NAS_RETRIEVE, &req.base, TIMEOUT_MS,
	                     (ProtobufCMessage **)&rep, &err),
	    0);
	ck_assert_int_eq(chunk_params_init(CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT, CHUNK_MAX_DEFAULT,
	                     &cp),
	    0);
	for (; off < len; i++) {
		bool zero;
		size_t k = chunk_next(&cp, b + off, len - off, &zero);
		ck_assert_uint_lt(i, rep->n_chunks);
		ck_assert_uint_eq(rep->chunks[i]->size, k);
		ck_assert(rep->chunks[i]->zero == zero);
		off += k;
	}
	ck_assert_uint_eq(i, rep->n_chunks);
	rpc_reply_free(&rep->base);
}

START_TEST(nas_writer_cuts_like_one_thread_in_place_and_from_a_reader)
{
	size_t len = 24 * MiB + 4321;
	uint8_t *b = testbuf_image(len, 9);
	struct nasc_put p = { "n1", "img", "raw", 0, 1 };
	struct membuf m = { b, len, 0, 100000 };
	struct nasc_info info;
	struct rpc_error err;

	ck_assert_msg(put("n1", "img", 1, b, len, &info, &err) == 0, "%s", err.re_msg);
	expect_sequential_cuts(b, len, info.ni_seq);
	ck_assert_msg(nasc_store(cli, &p, membuf_read, &m, TIMEOUT_MS, &info, &err) == 0, "%s",
	    err.re_msg);
	expect_sequential_cuts(b, len, info.ni_seq);
	free(b);
}
END_TEST

START_TEST(nas_writer_recovers_from_a_remembered_base_that_was_deleted)
{
	size_t len = 3 * MiB + 17;
	uint8_t *b = testbuf_image(len, 11);
	Ckpt__V1__DeleteRequest dreq = CKPT__V1__DELETE_REQUEST__INIT;
	Ckpt__V1__DeleteReply *drep = NULL;
	struct nasc_info info;
	struct rpc_error err;
	void *got;
	size_t got_len;

	/* Stored, then deleted behind the writer's back: its remembered base is gone. */
	ck_assert_msg(put("n1", "gone", 1, b, len, &info, &err) == 0, "%s", err.re_msg);
	dreq.node = "n1";
	dreq.component = "gone";
	ck_assert_int_eq(nasc_call(cli, NAS_DELETE, &dreq.base, TIMEOUT_MS,
	                     (ProtobufCMessage **)&drep, &err),
	    0);
	ck_assert_uint_eq(drep->deleted, 1);
	rpc_reply_free(&drep->base);
	/* The next store finds out at commit and stores again against the NAS's record. */
	ck_assert_msg(put("n1", "gone", 1, b, len, &info, &err) == 0, "%s", err.re_msg);
	ck_assert_int_eq(nasc_retrieve_buf(cli, "n1", "gone", 0, len + 1, TIMEOUT_MS, &got, &got_len,
	                     &info, &err),
	    0);
	ck_assert_uint_eq(got_len, len);
	ck_assert_mem_eq(got, b, len);
	free(got);
	free(b);
}
END_TEST

static Ckpt__V1__StatReply
nas_stat(void)
{
	Ckpt__V1__StatRequest req = CKPT__V1__STAT_REQUEST__INIT;
	Ckpt__V1__StatReply *rep = NULL, out;
	struct rpc_error err;

	ck_assert_int_eq(nasc_call(cli, NAS_STAT, &req.base, TIMEOUT_MS, (ProtobufCMessage **)&rep,
	                     &err),
	    0);
	out = *rep;
	out.store_id = NULL;
	rpc_reply_free(&rep->base);
	return out;
}

/* Stores b and reads it back byte for byte; returns whether it went inline. */
static bool
small_round_trip(const char *comp, const uint8_t *b, size_t len, uint64_t *ret_writes)
{
	struct nasc_stats s0, s1;
	Ckpt__V1__StatReply r0 = nas_stat(), r1;
	struct nasc_info in, out;
	struct rpc_error err;
	uint8_t want[SHA_LEN];
	struct chunk_params cp;
	void *got;
	size_t got_len;

	nasc_get_stats(cli, &s0);
	ck_assert_msg(put("n1", comp, 1, b, len, &in, &err) == 0, "store %zu: %s", len, err.re_msg);
	nasc_get_stats(cli, &s1);
	r1 = nas_stat();
	*ret_writes = r1.writes - r0.writes;
	ck_assert_int_eq(digest_params(0, 0, 0, &cp), 0);
	ck_assert_int_eq(digest_buf(&cp, b, len, want), 0);
	ck_assert_mem_eq(in.ni_digest, want, SHA_LEN);
	ck_assert_int_eq(nasc_retrieve_buf(cli, "n1", comp, 0, len + 1, TIMEOUT_MS, &got, &got_len,
	                     &out, &err),
	    0);
	ck_assert_uint_eq(got_len, len);
	ck_assert_mem_eq(got, b, len);
	ck_assert_mem_eq(out.ni_digest, want, SHA_LEN);
	free(got);
	return s1.ns_inline_stores == s0.ns_inline_stores + 1;
}

START_TEST(nas_stores_a_small_checkpoint_in_one_round_trip_and_one_commit)
{
	uint8_t *b = testbuf_bytes(NASC_INLINE_MAX + 1, 21);
	uint8_t *img = testbuf_image(48 * 1024, 22);
	Ckpt__V1__StatReply r0, r1;
	struct nasc_stats s0, s1;
	struct nasc_put p = { "n1", "reader", "raw", 0, 1 };
	struct membuf m = { b, 5000, 0, 999 };
	struct nasc_info info;
	struct rpc_error err;
	uint64_t writes;

	/* One Store (and the Stat that asks): chunks and record in one write. */
	r0 = nas_stat();
	ck_assert(small_round_trip("small", b, 4096, &writes));
	r1 = nas_stat();
	ck_assert_uint_eq(writes, 1);
	/* Requests since r0 (a Stat counts itself): Stat, Store, Stat, Retrieve, GetChunks, Stat. */
	ck_assert_uint_eq(r1.requests - r0.requests, 6);
	/* Again: the chunk the NAS holds (remembered) is not sent. */
	nasc_get_stats(cli, &s0);
	ck_assert(small_round_trip("small", b, 4096, &writes));
	nasc_get_stats(cli, &s1);
	ck_assert_uint_eq(writes, 1);
	ck_assert_uint_eq(s1.ns_put_chunks, s0.ns_put_chunks);
	ck_assert_uint_eq(s1.ns_dedup_chunks, s0.ns_dedup_chunks + 1);
	/* Holes and compressible pages, several chunks; the threshold itself. */
	ck_assert(small_round_trip("image", img, 48 * 1024, &writes));
	ck_assert_uint_eq(writes, 1);
	ck_assert(small_round_trip("edge", b, NASC_INLINE_MAX, &writes));
	ck_assert_uint_eq(writes, 1);
	ck_assert(small_round_trip("empty", b, 0, &writes));
	/* One byte more: HaveChunks, PutChunks and Store, two writes. */
	ck_assert(!small_round_trip("over", b, NASC_INLINE_MAX + 1, &writes));
	ck_assert_uint_eq(writes, 2);
	/* From a reader that ends within the threshold: inline too; past it: the normal path. */
	nasc_get_stats(cli, &s0);
	ck_assert_msg(nasc_store(cli, &p, membuf_read, &m, TIMEOUT_MS, &info, &err) == 0, "%s",
	    err.re_msg);
	m = (struct membuf){ b, NASC_INLINE_MAX + 1, 0, 999 };
	p.np_component = "reader2";
	ck_assert_msg(nasc_store(cli, &p, membuf_read, &m, TIMEOUT_MS, &info, &err) == 0, "%s",
	    err.re_msg);
	nasc_get_stats(cli, &s1);
	ck_assert_uint_eq(s1.ns_inline_stores, s0.ns_inline_stores + 1);
	{
		void *got;
		size_t len;
		ck_assert_int_eq(nasc_retrieve_buf(cli, "n1", "reader", 0, MiB, TIMEOUT_MS, &got, &len,
		                     &info, &err),
		    0);
		ck_assert_uint_eq(len, 5000);
		ck_assert_mem_eq(got, b, 5000);
		free(got);
		ck_assert_int_eq(nasc_retrieve_buf(cli, "n1", "reader2", 0, MiB, TIMEOUT_MS, &got, &len,
		                     &info, &err),
		    0);
		ck_assert_uint_eq(len, NASC_INLINE_MAX + 1);
		ck_assert_mem_eq(got, b, NASC_INLINE_MAX + 1);
		free(got);
	}
	free(b);
	free(img);
}
END_TEST

START_TEST(nas_small_store_recovers_a_deleted_base_and_refuses_a_stale_epoch)
{
	uint8_t *a = testbuf_bytes(6000, 23), *b = testbuf_bytes(6000, 24);
	Ckpt__V1__DeleteRequest dreq = CKPT__V1__DELETE_REQUEST__INIT;
	Ckpt__V1__DeleteReply *drep = NULL;
	struct nasc_stats s0, s1;
	struct nasc_info info;
	struct rpc_error err;
	void *got;
	size_t len;

	/* Stored, then deleted behind the writer's back: the chunk it remembers is gone. */
	ck_assert_msg(put("n1", "gone", 1, a, 6000, &info, &err) == 0, "%s", err.re_msg);
	dreq.node = "n1";
	dreq.component = "gone";
	ck_assert_int_eq(nasc_call(cli, NAS_DELETE, &dreq.base, TIMEOUT_MS,
	                     (ProtobufCMessage **)&drep, &err),
	    0);
	rpc_reply_free(&drep->base);
	nasc_get_stats(cli, &s0);
	ck_assert_msg(put("n1", "gone", 1, a, 6000, &info, &err) == 0, "%s", err.re_msg);
	nasc_get_stats(cli, &s1);
	ck_assert_uint_eq(s1.ns_inline_stores, s0.ns_inline_stores + 1);
	ck_assert_int_eq(nasc_retrieve_buf(cli, "n1", "gone", 0, MiB, TIMEOUT_MS, &got, &len, &info,
	                     &err),
	    0);
	ck_assert_uint_eq(len, 6000);
	ck_assert_mem_eq(got, a, 6000);
	free(got);
	/* Fenced: a stale epoch is refused with its code and nothing of it is visible. */
	ck_assert_int_eq(put("n1", "fenced", 5, a, 6000, &info, &err), 0);
	ck_assert_int_eq(put("n2", "fenced", 4, b, 6000, &info, &err), -ESTALE);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__FAILED_PRECONDITION);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "stale epoch 4 < 5 for component fenced"));
	ck_assert_int_eq(nasc_retrieve_buf(cli, "", "fenced", 0, MiB, TIMEOUT_MS, &got, &len, &info,
	                     &err),
	    0);
	ck_assert_uint_eq(info.ni_seq, 1);
	ck_assert_str_eq(info.ni_node, "n1");
	ck_assert_mem_eq(got, a, 6000);
	free(got);
	/* The refusal did not turn the fast path off. */
	nasc_get_stats(cli, &s0);
	ck_assert_int_eq(put("n1", "fenced", 5, b, 6000, &info, &err), 0);
	nasc_get_stats(cli, &s1);
	ck_assert_uint_eq(s1.ns_inline_stores, s0.ns_inline_stores + 1);
	free(a);
	free(b);
}
END_TEST

START_TEST(nas_round_trips_3mib_over_tcp)
{
	round_trip(3 * MiB, 1);
}
END_TEST

/*
 * A PutChunks, envelope and all, stays within NASC_BATCH bytes (its
 * message is then of one size, whose freed buffer the next one reuses):
 * random bytes, sent raw, through a NAS that takes no request larger.
 * Batches of NASC_BATCH chunk bytes plus their fields were refused there.
 */
START_TEST(nas_put_chunks_requests_stay_within_nasc_batch)
{
	struct nasfix f4;
	struct nasc_put p = { "n1", "big", "raw", 0, 1 };
	struct nasc_info info;
	struct nasc_stats s0, s1;
	struct rpc_error err;
	size_t len = 12 * MiB + 777; /* under testbuf_bytes()'s period (16 MiB): nothing repeats */
	uint8_t *b = testbuf_bytes(len, 11);
	void *got;
	size_t got_len;

	ck_assert_int_eq(nasfix_start_recv(&f4, "nas-batch", 64 * MiB, 1024 * MiB, NASC_BATCH), 0);
	nasc_get_stats(f4.f_cli, &s0);
	ck_assert_msg(nasc_store_buf(f4.f_cli, &p, b, len, TIMEOUT_MS, &info, &err) == 0, "%s",
	    err.re_msg);
	nasc_get_stats(f4.f_cli, &s1);
	/* All of it went by PutChunks (nothing to deduplicate, nothing compressed). */
	ck_assert_uint_ge(s1.ns_put_bytes - s0.ns_put_bytes, len);
	ck_assert_int_eq(nasc_retrieve_buf(f4.f_cli, "", "big", 0, len, TIMEOUT_MS, &got, &got_len,
	                     &info, &err),
	    0);
	ck_assert_uint_eq(got_len, len);
	ck_assert_mem_eq(got, b, len);
	free(got);
	free(b);
	nasfix_stop(&f4);
}
END_TEST

START_TEST(nas_round_trips_empty_and_odd_sizes)
{
	round_trip(0, 2);
	round_trip(1, 3);
	round_trip(MiB + 1, 4);
}
END_TEST

START_TEST(nas_refusals_reach_the_client_with_their_code)
{
	uint8_t b[100] = { 1 };
	struct nasc_info info;
	struct rpc_error err;
	void *got;
	size_t len;

	ck_assert_int_eq(put("n1", "c", 5, b, sizeof(b), &info, &err), 0);
	ck_assert_int_eq(put("n2", "c", 4, b, sizeof(b), &info, &err), -ESTALE);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__FAILED_PRECONDITION);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "stale epoch 4 < 5 for component c"));
	ck_assert_str_eq(err.re_reason, "stale_epoch");
	ck_assert_int_eq(put("bad node", "c", 5, b, sizeof(b), &info, &err), -EINVAL);
	ck_assert_str_eq(err.re_reason, "");
	ck_assert_int_eq(nasc_retrieve_buf(cli, "n1", "nope", 0, 10, TIMEOUT_MS, &got, &len, &info,
	                     &err),
	    -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "no checkpoint n1/nope@latest"));
	/* PutChunks over its chunk limit: refused as it is read, with the limit. */
	{
		static Ckpt__V1__Chunk *many[STORE_PUT_MAX + 1];
		Ckpt__V1__Chunk empty = CKPT__V1__CHUNK__INIT;
		Ckpt__V1__PutChunksRequest preq = CKPT__V1__PUT_CHUNKS_REQUEST__INIT;
		Ckpt__V1__PutChunksReply *prep = NULL;
		for (size_t i = 0; i <= STORE_PUT_MAX; i++)
			many[i] = &empty;
		preq.chunks = many;
		preq.n_chunks = STORE_PUT_MAX + 1;
		ck_assert_int_eq(nasc_call(cli, NAS_PUT_CHUNKS, &preq.base, TIMEOUT_MS,
		                     (ProtobufCMessage **)&prep, &err),
		    -EINVAL);
		ck_assert_int_eq(err.re_code, CKPT__V1__CODE__INVALID_ARGUMENT);
		ck_assert_ptr_nonnull(strstr(err.re_msg, "too many chunks in one PutChunks (at most 4096)"));
	}
	/* A Store naming a chunk the NAS lacks: the same code as a stale epoch, its own reason. */
	{
		uint32_t sizes[1] = { 100u << 1 };
		uint8_t sha[SHA_LEN] = { 0xde, 0xad }, dig[SHA_LEN];
		Ckpt__V1__StoreRequest sreq = CKPT__V1__STORE_REQUEST__INIT;
		Ckpt__V1__StoreReply *srep = NULL;

		ck_assert_int_eq(digest_compact(sizes, 1, sha, 1, dig), 0);
		sreq.node = "n1";
		sreq.component = "absent";
		sreq.size = 100;
		sreq.n_chunk_sizes = 1;
		sreq.chunk_sizes = sizes;
		sreq.chunk_sha256 = (ProtobufCBinaryData){ SHA_LEN, sha };
		sreq.digest = (ProtobufCBinaryData){ SHA_LEN, dig };
		ck_assert_int_eq(nasc_call(cli, NAS_STORE, &sreq.base, TIMEOUT_MS,
		                     (ProtobufCMessage **)&srep, &err),
		    -ESTALE);
		ck_assert_int_eq(err.re_code, CKPT__V1__CODE__FAILED_PRECONDITION);
		ck_assert_str_eq(err.re_reason, "missing_chunks");
		ck_assert(rpc_error_is(&err, ERR_REASON_MISSING_CHUNKS));
		ck_assert(!rpc_error_is(&err, ERR_REASON_STALE_EPOCH));
	}
	/* A Store whose digest is not its chunk list's: INVALID_ARGUMENT, nothing visible. */
	{
		uint32_t sizes[1] = { 100u << 1 | 1u };
		uint8_t want[SHA_LEN], bad[SHA_LEN];
		Ckpt__V1__StoreRequest sreq = CKPT__V1__STORE_REQUEST__INIT;
		Ckpt__V1__StoreReply *srep = NULL;

		ck_assert_int_eq(digest_compact(sizes, 1, NULL, 0, want), 0);
		memcpy(bad, want, SHA_LEN);
		bad[0] ^= 0x80;
		sreq.node = "n1";
		sreq.component = "holes";
		sreq.size = 100;
		sreq.n_chunk_sizes = 1;
		sreq.chunk_sizes = sizes;
		sreq.digest = (ProtobufCBinaryData){ SHA_LEN, bad };
		ck_assert_int_eq(nasc_call(cli, NAS_STORE, &sreq.base, TIMEOUT_MS,
		                     (ProtobufCMessage **)&srep, &err),
		    -EINVAL);
		ck_assert_int_eq(err.re_code, CKPT__V1__CODE__INVALID_ARGUMENT);
		ck_assert_ptr_nonnull(strstr(err.re_msg, "digest does not match the chunk list"));
		ck_assert_int_eq(nasc_retrieve_buf(cli, "", "holes", 0, 1000, TIMEOUT_MS, &got, &len,
		                     &info, &err),
		    -ENOENT);
		sreq.digest = (ProtobufCBinaryData){ SHA_LEN, want };
		ck_assert_int_eq(nasc_call(cli, NAS_STORE, &sreq.base, TIMEOUT_MS,
		                     (ProtobufCMessage **)&srep, &err),
		    0);
		ck_assert_mem_eq(srep->info->digest.data, want, SHA_LEN);
		rpc_reply_free(&srep->base);
		ck_assert_int_eq(nasc_retrieve_buf(cli, "", "holes", 0, 1000, TIMEOUT_MS, &got, &len,
		                     &info, &err),
		    0);
		ck_assert_uint_eq(len, 100);
		ck_assert_mem_eq(info.ni_digest, want, SHA_LEN);
		ck_assert(!info.ni_has_sha256);
		free(got);
	}
}
END_TEST

START_TEST(nas_keeps_specs_over_the_wire_and_checks_their_form)
{
	Ckpt__V1__ComponentSpec spec = CKPT__V1__COMPONENT_SPEC__INIT;
	Ckpt__V1__DemoSettings demo = CKPT__V1__DEMO_SETTINGS__INIT;
	Ckpt__V1__PutSpecRequest preq = CKPT__V1__PUT_SPEC_REQUEST__INIT;
	Ckpt__V1__PutSpecReply *prep = NULL;
	Ckpt__V1__GetSpecRequest greq = CKPT__V1__GET_SPEC_REQUEST__INIT;
	Ckpt__V1__GetSpecReply *grep = NULL;
	Ckpt__V1__ListSpecsRequest lreq = CKPT__V1__LIST_SPECS_REQUEST__INIT;
	Ckpt__V1__ListSpecsReply *lrep = NULL;
	Ckpt__V1__DeleteSpecRequest dreq = CKPT__V1__DELETE_SPEC_REQUEST__INIT;
	Ckpt__V1__DeleteSpecReply *drep = NULL;
	struct rpc_error err;

	spec.name = "web";
	spec.driver = "demo";
	spec.settings_case = CKPT__V1__COMPONENT_SPEC__SETTINGS_DEMO;
	demo.bytes = 4096;
	spec.demo = &demo;
	preq.spec = &spec;
	ck_assert_int_eq(nasc_call(cli, NAS_PUT_SPEC, &preq.base, TIMEOUT_MS,
	                     (ProtobufCMessage **)&prep, &err),
	    0);
	ck_assert(!prep->replaced);
	rpc_reply_free(&prep->base);
	greq.component = "web";
	ck_assert_int_eq(nasc_call(cli, NAS_GET_SPEC, &greq.base, TIMEOUT_MS,
	                     (ProtobufCMessage **)&grep, &err),
	    0);
	ck_assert_str_eq(grep->spec->driver, "demo");
	ck_assert_uint_eq(grep->spec->demo->bytes, 4096);
	rpc_reply_free(&grep->base);
	ck_assert_int_eq(nasc_call(cli, NAS_LIST_SPECS, &lreq.base, TIMEOUT_MS,
	                     (ProtobufCMessage **)&lrep, &err),
	    0);
	ck_assert_uint_eq(lrep->n_specs, 1);
	rpc_reply_free(&lrep->base);
	spec.name = "no/name";
	ck_assert_int_eq(nasc_call(cli, NAS_PUT_SPEC, &preq.base, TIMEOUT_MS,
	                     (ProtobufCMessage **)&prep, &err),
	    -EINVAL);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__INVALID_ARGUMENT);
	dreq.component = "web";
	ck_assert_int_eq(nasc_call(cli, NAS_DELETE_SPEC, &dreq.base, TIMEOUT_MS,
	                     (ProtobufCMessage **)&drep, &err),
	    0);
	ck_assert(drep->existed);
	rpc_reply_free(&drep->base);
	ck_assert_int_eq(nasc_call(cli, NAS_GET_SPEC, &greq.base, TIMEOUT_MS,
	                     (ProtobufCMessage **)&grep, &err),
	    -ENOENT);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__NOT_FOUND);
}
END_TEST

START_TEST(nas_list_delete_and_stat_over_the_wire)
{
	Ckpt__V1__ListRequest lreq = CKPT__V1__LIST_REQUEST__INIT;
	Ckpt__V1__ListReply *lrep = NULL;
	Ckpt__V1__DeleteRequest dreq = CKPT__V1__DELETE_REQUEST__INIT;
	Ckpt__V1__DeleteReply *drep = NULL;
	Ckpt__V1__StatRequest sreq = CKPT__V1__STAT_REQUEST__INIT;
	Ckpt__V1__StatReply *srep = NULL;
	uint8_t *b = testbuf_bytes(2 * MiB, 5);
	struct nasc_info info;
	struct nasc_stats before, after;
	struct rpc_error err;
	uint32_t first_chunks;

	ck_assert_int_eq(put("n1", "c", 0, b, MiB, &info, &err), 0);
	first_chunks = info.ni_chunk_count;
	ck_assert_uint_gt(first_chunks, 16); /* content-defined, about 16 KiB each */
	nasc_get_stats(cli, &before);
	ck_assert_int_eq(put("n1", "c", 0, b, 2 * MiB, &info, &err), 0);
	nasc_get_stats(cli, &after);
	ck_assert_uint_eq(info.ni_seq, 2);
	/* Every chunk of the first MiB but its last (cut by the end) was found again. */
	ck_assert_uint_eq(after.ns_dedup_chunks - before.ns_dedup_chunks, first_chunks - 1);
	ck_assert_uint_lt(after.ns_put_bytes - before.ns_put_bytes, MiB + 64 * 1024);
	lreq.latest_only = 1;
	ck_assert_int_eq(nasc_call(cli, NAS_LIST, &lreq.base, TIMEOUT_MS,
	                     (ProtobufCMessage **)&lrep, &err),
	    0);
	ck_assert_uint_eq(lrep->n_checkpoints, 1);
	ck_assert_uint_eq(lrep->checkpoints[0]->seq, 2);
	rpc_reply_free(&lrep->base);

	/* Both share the first MiB but its last chunk: only that one is freed by deleting seq 1. */
	dreq.node = "n1";
	dreq.component = "c";
	dreq.seq = 1;
	ck_assert_int_eq(nasc_call(cli, NAS_DELETE, &dreq.base, TIMEOUT_MS,
	                     (ProtobufCMessage **)&drep, &err),
	    0);
	ck_assert_uint_eq(drep->deleted, 1);
	rpc_reply_free(&drep->base);
	ck_assert_int_eq(nasc_call(cli, NAS_STAT, &sreq.base, TIMEOUT_MS,
	                     (ProtobufCMessage **)&srep, &err),
	    0);
	ck_assert_uint_eq(srep->checkpoints, 1);
	ck_assert_uint_eq(srep->chunks, info.ni_chunk_count);
	/* Random bytes do not compress: stored raw. */
	ck_assert_uint_eq(srep->chunk_bytes, 2 * MiB);
	ck_assert_uint_eq(srep->chunk_raw_bytes, 2 * MiB);
	ck_assert_uint_ge(srep->put_bytes, 2 * MiB);
	ck_assert_uint_ge(srep->map_size, 64 * MiB);
	ck_assert_uint_gt(srep->map_used, 2 * MiB);
	ck_assert_uint_ge(srep->requests, 8);
	rpc_reply_free(&srep->base);
	free(b);
}
END_TEST

/* Sends raw bytes; returns the reply's code. */
static int
raw_call(struct rpc_client *c, const void *msg, size_t len)
{
	struct rpc_error err;
	Ckpt__V1__Reply *rep;
	void *out;
	size_t out_len;
	int code;

	ck_assert_int_eq(rpc_client_call_raw(c, msg, len, TIMEOUT_MS, &out, &out_len, &err), 0);
	rep = ckpt__v1__reply__unpack(NULL, out_len, out);
	ck_assert_ptr_nonnull(rep);
	ck_assert_str_ne(rep->message, "");
	code = (int)rep->code;
	ckpt__v1__reply__free_unpacked(rep, NULL);
	free(out);
	return code;
}

START_TEST(nas_answers_garbage_and_goes_on_serving)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x42, 0x99 };
	uint8_t env[64], body[] = { 0x0a, 0x50, 'x' }; /* StoreRequest.node claims 80 bytes */
	Ckpt__V1__Request req = CKPT__V1__REQUEST__INIT;
	Ckpt__V1__StatRequest sreq = CKPT__V1__STAT_REQUEST__INIT;
	Ckpt__V1__StatReply *srep = NULL;
	struct rpc_client *c;
	struct rpc_error err;
	size_t n;

	ck_assert_int_eq(rpc_client_open(nas_url(srv), &ckpt__v1__nas__descriptor,
	                     RPC_CLIENT_DIAL_NOW, 0, &c, &err),
	    0);
	ck_assert_int_eq(raw_call(c, garbage, sizeof(garbage)), CKPT__V1__CODE__INVALID_ARGUMENT);
	req.method = 99;
	n = ckpt__v1__request__pack(&req, env);
	ck_assert_int_eq(raw_call(c, env, n), CKPT__V1__CODE__UNIMPLEMENTED);
	req.method = NAS_STORE;
	req.body.data = body;
	req.body.len = sizeof(body);
	n = ckpt__v1__request__pack(&req, env);
	ck_assert_int_eq(raw_call(c, env, n), CKPT__V1__CODE__INVALID_ARGUMENT);

	ck_assert_int_eq(rpc_client_call(c, NAS_STAT, &sreq.base, TIMEOUT_MS,
	                     (ProtobufCMessage **)&srep, &err),
	    0);
	ck_assert_uint_eq(srep->bad_requests, 3);
	ck_assert_uint_eq(srep->requests, 4);
	rpc_reply_free(&srep->base);
	rpc_client_close(c);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("nas");
	TCase *tc = tcase_create("nas");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, nas_round_trips_3mib_over_tcp);
	tcase_add_test(tc, nas_stores_a_small_checkpoint_in_one_round_trip_and_one_commit);
	tcase_add_test(tc, nas_small_store_recovers_a_deleted_base_and_refuses_a_stale_epoch);
	tcase_add_test(tc, nas_round_trips_empty_and_odd_sizes);
	tcase_add_test(tc, nas_put_chunks_requests_stay_within_nasc_batch);
	tcase_add_test(tc, nas_refusals_reach_the_client_with_their_code);
	tcase_add_test(tc, nas_list_delete_and_stat_over_the_wire);
	tcase_add_test(tc, nas_answers_garbage_and_goes_on_serving);
	tcase_add_test(tc, nas_writer_cuts_like_one_thread_in_place_and_from_a_reader);
	tcase_add_test(tc, nas_writer_recovers_from_a_remembered_base_that_was_deleted);
	tcase_add_test(tc, nas_keeps_specs_over_the_wire_and_checks_their_form);
	suite_add_tcase(s, tc);
	return test_run(s);
}

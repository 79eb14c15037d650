/*
 * nasc's reader against a fake Nas over tcp on 127.0.0.1: records with holes
 * (ChunkRef.zero), many batches, short GetChunks replies, corrupt chunks and
 * the fallback to an older sequence. The fake serves Retrieve, List and
 * GetChunks from fixtures built here, and counts what it was asked.
 */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ckpt/v1/nas.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "methods.h"
#include "nasc.h"
#include "rpc.h"
#include "sha.h"
#include "zchunk.h"
#include "../testrun.h"

#define TIMEOUT_MS 10000u
#define FX_PIECES_MAX 4096

enum fx_kind { FX_RAW, FX_ZSTD, FX_HOLE };

struct fx_piece {
	enum fx_kind p_kind;
	uint32_t p_size;
};

/* One checkpoint of component "c" on node "n1", as the fake NAS holds it. */
struct fx_ckpt {
	Ckpt__V1__CheckpointInfo f_info;
	uint8_t f_whole[SHA_LEN];
	uint8_t *f_bytes; /* the checkpoint */
	size_t f_len;
	size_t f_n;
	Ckpt__V1__ChunkRef f_refs[FX_PIECES_MAX];
	Ckpt__V1__ChunkRef *f_ptrs[FX_PIECES_MAX];
	uint8_t f_sha[FX_PIECES_MAX][SHA_LEN];
	Ckpt__V1__Chunk f_stored[FX_PIECES_MAX]; /* what GetChunks sends (holes: unused) */
};

static struct fx_ckpt *fx[2];       /* seq 1 and seq 2 */
static size_t fx_reply_max;         /* chunks per GetChunks reply; 0: all */
static atomic_int fx_gets, fx_bad_asks;
static struct rpc_server *srv;
static struct nasc *cli;

static struct fx_ckpt *
fx_find(uint64_t seq)
{
	if (seq == 0)
		return fx[1] != NULL ? fx[1] : fx[0];
	return seq >= 1 && seq <= 2 ? fx[seq - 1] : NULL;
}

static int
h_retrieve(void *arg, struct rpc_call *call, const ProtobufCMessage *req_, ProtobufCMessage *reply_)
{
	const Ckpt__V1__RetrieveRequest *req = (const Ckpt__V1__RetrieveRequest *)req_;
	Ckpt__V1__RetrieveReply *reply = (Ckpt__V1__RetrieveReply *)reply_;
	struct fx_ckpt *f = fx_find(req->seq);
	(void)arg;
	if (f == NULL || strcmp(req->component, "c") != 0) {
		rpc_call_errorf(call, "no such checkpoint");
		return -ENOENT;
	}
	reply->info = &f->f_info;
	reply->n_chunks = f->f_n;
	reply->chunks = f->f_ptrs;
	return 0;
}

static int
h_list(void *arg, struct rpc_call *call, const ProtobufCMessage *req_, ProtobufCMessage *reply_)
{
	Ckpt__V1__ListReply *reply = (Ckpt__V1__ListReply *)reply_;
	Ckpt__V1__CheckpointInfo **l = arena_alloc(rpc_call_arena(call), 2 * sizeof(*l));
	(void)arg;
	(void)req_;
	for (size_t i = 0; i < 2; i++) {
		if (fx[i] != NULL)
			l[reply->n_checkpoints++] = &fx[i]->f_info;
	}
	reply->checkpoints = l;
	return 0;
}

static const Ckpt__V1__Chunk *
fx_chunk(const ProtobufCBinaryData *h)
{
	for (size_t k = 0; k < 2; k++) {
		for (size_t i = 0; fx[k] != NULL && i < fx[k]->f_n; i++) {
			if (!fx[k]->f_refs[i].zero && memcmp(fx[k]->f_sha[i], h->data, SHA_LEN) == 0)
				return &fx[k]->f_stored[i];
		}
	}
	return NULL;
}

static int
h_get_chunks(void *arg, struct rpc_call *call, const ProtobufCMessage *req_,
    ProtobufCMessage *reply_)
{
	const Ckpt__V1__GetChunksRequest *req = (const Ckpt__V1__GetChunksRequest *)req_;
	Ckpt__V1__GetChunksReply *reply = (Ckpt__V1__GetChunksReply *)reply_;
	size_t n = req->n_sha256;
	(void)arg;
	atomic_fetch_add(&fx_gets, 1);
	if (fx_reply_max != 0 && n > fx_reply_max)
		n = fx_reply_max;
	reply->chunks = arena_alloc(rpc_call_arena(call), (n ? n : 1) * sizeof(*reply->chunks));
	for (size_t i = 0; i < req->n_sha256; i++) {
		const Ckpt__V1__Chunk *c;
		if (req->sha256[i].len != SHA_LEN || (c = fx_chunk(&req->sha256[i])) == NULL) {
			atomic_fetch_add(&fx_bad_asks, 1);
			rpc_call_errorf(call, "asked for a chunk that is not stored");
			return -ENOENT;
		}
		if (i < n)
			reply->chunks[reply->n_chunks++] = (Ckpt__V1__Chunk *)c;
	}
	return 0;
}

static const rpc_handler_fn fx_handlers[NAS_METHODS] = {
	[NAS_RETRIEVE] = h_retrieve,
	[NAS_LIST] = h_list,
	[NAS_GET_CHUNKS] = h_get_chunks,
};

/* Deterministic bytes: random for FX_RAW, compressible for FX_ZSTD. */
static void
fx_fill(uint8_t *p, size_t len, enum fx_kind kind, uint32_t *x)
{
	for (size_t i = 0; i < len; i++) {
		*x = *x * 1103515245u + 12345u;
		p[i] = kind == FX_ZSTD ? (uint8_t)("checkpoint "[i % 11] + ((*x >> 28) == 0))
		                       : (uint8_t)(*x >> 16);
	}
}

static struct fx_ckpt *
fx_build(uint64_t seq, const struct fx_piece *p, size_t n, unsigned seed)
{
	struct fx_ckpt *f = calloc(1, sizeof(*f));
	struct zchunk *z;
	uint32_t x = seed * 2654435761u + 1;
	size_t off = 0;

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_le(n, FX_PIECES_MAX);
	ck_assert_int_eq(zchunk_new(&z), 0);
	for (size_t i = 0; i < n; i++)
		f->f_len += p[i].p_size;
	f->f_bytes = calloc(1, f->f_len ? f->f_len : 1);
	ck_assert_ptr_nonnull(f->f_bytes);
	for (size_t i = 0; i < n; i++) {
		Ckpt__V1__ChunkRef *r = &f->f_refs[i];
		Ckpt__V1__Chunk *c = &f->f_stored[i];
		ckpt__v1__chunk_ref__init(r);
		ckpt__v1__chunk__init(c);
		r->size = p[i].p_size;
		f->f_ptrs[i] = r;
		if (p[i].p_kind == FX_HOLE) {
			r->zero = true;
		} else {
			size_t cap = zchunk_bound(r->size), clen = 0;
			unsigned codec;
			uint8_t *out = malloc(cap);
			ck_assert_ptr_nonnull(out);
			fx_fill(f->f_bytes + off, r->size, p[i].p_kind, &x);
			sha256(f->f_bytes + off, r->size, f->f_sha[i]);
			r->sha256.data = f->f_sha[i];
			r->sha256.len = SHA_LEN;
			ck_assert_int_eq(zchunk_compress(z, f->f_bytes + off, r->size, out, cap, &clen,
			                     &codec), 0);
			if (codec == ZCHUNK_RAW) {
				memcpy(out, f->f_bytes + off, r->size);
				clen = r->size;
			}
			c->sha256 = r->sha256;
			c->data.data = out;
			c->data.len = clen;
			c->raw_size = r->size;
			c->codec = codec;
		}
		off += r->size;
	}
	f->f_n = n;
	sha256(f->f_bytes, f->f_len, f->f_whole);
	ckpt__v1__checkpoint_info__init(&f->f_info);
	f->f_info.node = "n1";
	f->f_info.component = "c";
	f->f_info.seq = seq;
	f->f_info.size = f->f_len;
	f->f_info.sha256.data = f->f_whole;
	f->f_info.sha256.len = SHA_LEN;
	f->f_info.chunk_count = (uint32_t)n;
	zchunk_free(z);
	return f;
}

static void
fx_free(struct fx_ckpt *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->f_n; i++)
		free(f->f_stored[i].data.data);
	free(f->f_bytes);
	free(f);
}

static void
setup(void)
{
	struct rpc_server_config cfg = {
		.rs_service = &ckpt__v1__nas__descriptor,
		.rs_handlers = fx_handlers,
		.rs_workers = 4,
	};
	struct rpc_error err;
	char *url;

	ck_assert_int_eq(rpc_server_start(&cfg, "tcp://127.0.0.1:0", &srv), 0);
	url = (char *)rpc_server_url(srv);
	ck_assert_int_eq(nasc_open(&url, 1, RPC_CLIENT_DIAL_NOW, &cli, &err), 0);
	fx_reply_max = 0;
	atomic_store(&fx_gets, 0);
	atomic_store(&fx_bad_asks, 0);
}

static void
teardown(void)
{
	nasc_close(cli);
	rpc_server_stop(srv);
	for (size_t i = 0; i < 2; i++) {
		fx_free(fx[i]);
		fx[i] = NULL;
	}
}

/* Retrieves seq into a buffer and checks it is f's bytes. */
static void
read_back(uint64_t seq, const struct fx_ckpt *f)
{
	struct nasc_info info;
	struct rpc_error err;
	void *got = NULL;
	size_t len = 0;
	int rv;

	rv = nasc_retrieve_buf(cli, "", "c", seq, f->f_len + 1, TIMEOUT_MS, &got, &len, &info, &err);
	ck_assert_msg(rv == 0, "retrieve: %d %s", rv, err.re_msg);
	ck_assert_uint_eq(len, f->f_len);
	ck_assert_int_eq(memcmp(got, f->f_bytes, len), 0);
	ck_assert_mem_eq(info.ni_sha256, f->f_whole, SHA_LEN);
	ck_assert_int_eq(atomic_load(&fx_bad_asks), 0);
	free(got);
}

START_TEST(nasc_reads_a_record_with_holes_without_asking_for_them)
{
	const struct fx_piece p[] = {
		{ FX_HOLE, 4096 }, { FX_RAW, 10000 }, { FX_HOLE, 100 }, { FX_ZSTD, 20000 },
		{ FX_HOLE, 1 }, { FX_HOLE, 8192 }, { FX_RAW, 1 }, { FX_HOLE, 4096 },
	};
	fx[0] = fx_build(1, p, sizeof(p) / sizeof(p[0]), 1);
	ck_assert_int_eq(fx[0]->f_stored[3].codec, ZCHUNK_ZSTD);
	read_back(1, fx[0]);
	ck_assert_int_eq(atomic_load(&fx_gets), 1);
}
END_TEST

START_TEST(nasc_reads_a_record_of_holes_only_without_get_chunks)
{
	const struct fx_piece p[] = { { FX_HOLE, NASC_RAW_MAX }, { FX_HOLE, 3 } };
	fx[0] = fx_build(1, p, 2, 2);
	read_back(1, fx[0]);
	ck_assert_int_eq(atomic_load(&fx_gets), 0);
}
END_TEST

/* ~9 MiB in several batches, holes between chunks, replies cut short at 7 chunks. */
START_TEST(nasc_reads_many_batches_in_order_from_short_replies)
{
	static struct fx_piece p[1200];
	for (size_t i = 0; i < 1200; i++) {
		p[i].p_kind = i % 3 == 0 ? FX_HOLE : i % 3 == 1 ? FX_RAW : FX_ZSTD;
		p[i].p_size = 4096 + (uint32_t)(i * 37 % 12000);
	}
	p[600].p_kind = FX_RAW;
	p[600].p_size = NASC_RAW_MAX; /* one chunk bigger than a batch */
	fx[0] = fx_build(1, p, 1200, 3);
	fx_reply_max = 7;
	read_back(1, fx[0]);
	ck_assert_int_gt(atomic_load(&fx_gets), 1200 * 2 / 3 / 7);
	fx_reply_max = 0;
	atomic_store(&fx_gets, 0);
	read_back(0, fx[0]);
	ck_assert_int_lt(atomic_load(&fx_gets), 20);
}
END_TEST

/* A bad chunk list is DATA_LOSS before any chunk is asked for. */
START_TEST(nasc_rejects_bad_holes_as_data_loss)
{
	const struct fx_piece p[] = { { FX_RAW, 5000 }, { FX_HOLE, 4096 }, { FX_RAW, 7000 } };
	static uint8_t some_hash[SHA_LEN] = { 1 };
	struct nasc_info info;
	struct rpc_error err;
	void *got = NULL;
	size_t len = 0;

	for (int bad = 0; bad < 5; bad++) {
		fx[0] = fx_build(1, p, 3, 4);
		switch (bad) {
		case 0: /* a hole with a hash */
			fx[0]->f_refs[1].sha256.data = some_hash;
			fx[0]->f_refs[1].sha256.len = SHA_LEN;
			break;
		case 1: /* an empty hole */
			fx[0]->f_refs[1].size = 0;
			fx[0]->f_info.size -= 4096;
			break;
		case 2: /* a hole over the largest chunk */
			fx[0]->f_refs[1].size = NASC_RAW_MAX + 1;
			fx[0]->f_info.size += NASC_RAW_MAX + 1 - 4096;
			break;
		case 3: /* a chunk without a hash */
			fx[0]->f_refs[2].sha256.len = 0;
			break;
		case 4: /* sizes that do not add up to the checkpoint's */
			fx[0]->f_info.size += 1;
			break;
		}
		ck_assert_int_eq(nasc_retrieve_buf(cli, "", "c", 1, 1 << 20, TIMEOUT_MS, &got, &len,
		                     &info, &err), -EBADMSG);
		ck_assert_int_eq(err.re_code, CKPT__V1__CODE__DATA_LOSS);
		ck_assert_ptr_nonnull(strstr(err.re_msg, "DATA_LOSS"));
		ck_assert_int_eq(atomic_load(&fx_gets), 0);
		fx_free(fx[0]);
		fx[0] = NULL;
	}
}
END_TEST

/* A chunk corrupt in a later batch: DATA_LOSS, and the fallback reads seq 1. */
START_TEST(nasc_corrupt_chunk_in_a_later_batch_falls_back)
{
	static struct fx_piece p[600];
	struct nasc_fallback fb;
	struct nasc_info info;
	struct rpc_error err;
	void *got = NULL;
	size_t len = 0;

	for (size_t i = 0; i < 600; i++) {
		p[i].p_kind = i % 2 == 0 ? FX_RAW : FX_HOLE;
		p[i].p_size = 16384;
	}
	fx[0] = fx_build(1, p, 600, 5);
	fx[1] = fx_build(2, p, 600, 6);
	fx[1]->f_stored[598].data.data[7] ^= 1;
	ck_assert_int_eq(nasc_retrieve_buf(cli, "", "c", 2, 64 << 20, TIMEOUT_MS, &got, &len, &info,
	                     &err), -EBADMSG);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__DATA_LOSS);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "n1/c@2: DATA_LOSS"));
	ck_assert_int_eq(nasc_retrieve_buf_fallback(cli, "", "c", 0, 64 << 20, TIMEOUT_MS, &got, &len,
	                     &info, &fb, &err), 0);
	ck_assert_uint_eq(info.ni_seq, 1);
	ck_assert_uint_eq(fb.nf_bad_seq, 2);
	ck_assert_uint_eq(len, fx[0]->f_len);
	ck_assert_int_eq(memcmp(got, fx[0]->f_bytes, len), 0);
	free(got);
}
END_TEST

static int
write_fails_second_time(void *arg, const void *buf, size_t len)
{
	int *calls = arg;
	(void)buf;
	(void)len;
	return ++*calls == 2 ? -EIO : 0;
}

START_TEST(nasc_writer_error_stops_the_read)
{
	static struct fx_piece p[800];
	struct nasc_info info;
	struct rpc_error err;
	int calls = 0;

	for (size_t i = 0; i < 800; i++)
		p[i] = (struct fx_piece){ FX_RAW, 16384 };
	fx[0] = fx_build(1, p, 800, 7);
	ck_assert_int_eq(nasc_retrieve(cli, "", "c", 1, write_fails_second_time, &calls, TIMEOUT_MS,
	                     &info, &err), -EIO);
	ck_assert_int_eq(calls, 2);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "writing checkpoint"));
}
END_TEST

/* A vectored writer collecting what it is handed (nasc_retrieve_fallback_v). */
struct gather {
	uint8_t *g_buf;
	size_t g_len, g_cap;
	int g_calls, g_max_count, g_fail_at;
};

static int
gather_writev(void *arg, struct iovec *iov, int count)
{
	struct gather *g = arg;

	if (++g->g_calls == g->g_fail_at)
		return -EIO;
	ck_assert_int_gt(count, 0);
	ck_assert_int_le(count, NASC_IOV_MAX);
	if (count > g->g_max_count)
		g->g_max_count = count;
	for (int i = 0; i < count; i++) {
		ck_assert_uint_le(g->g_len + iov[i].iov_len, g->g_cap);
		memcpy(g->g_buf + g->g_len, iov[i].iov_base, iov[i].iov_len);
		g->g_len += iov[i].iov_len;
	}
	return 0;
}

static int
gather_reset(void *arg)
{
	struct gather *g = arg;
	g->g_len = 0;
	return 0;
}

/* Retrieves seq through a vectored writer and checks it is f's bytes. */
static void
gather_back(uint64_t seq, const struct fx_ckpt *f, struct gather *g)
{
	struct nasc_fallback fb;
	struct nasc_info info;
	struct rpc_error err;
	int rv;

	g->g_cap = f->f_len;
	g->g_buf = malloc(f->f_len ? f->f_len : 1);
	ck_assert_ptr_nonnull(g->g_buf);
	rv = nasc_retrieve_fallback_v(cli, "", "c", seq, gather_writev, gather_reset, g, TIMEOUT_MS,
	    &info, &fb, &err);
	ck_assert_msg(rv == 0, "retrieve: %d %s", rv, err.re_msg);
	ck_assert_uint_eq(g->g_len, f->f_len);
	ck_assert_int_eq(memcmp(g->g_buf, f->f_bytes, f->f_len), 0);
	ck_assert_mem_eq(info.ni_sha256, f->f_whole, SHA_LEN);
	ck_assert_int_eq(atomic_load(&fx_bad_asks), 0);
	free(g->g_buf);
	g->g_buf = NULL;
}

/*
 * Gathering: raw chunks handed from the replies, compressed ones decoded,
 * holes (one larger than the zero buffer, 64 KiB) as zeros, over many
 * batches of short replies (a batch's pieces in several replies) and one
 * chunk larger than a batch; more pieces than one writev takes.
 */
START_TEST(nasc_hands_a_vectored_writer_the_pieces_as_they_lie)
{
	static struct fx_piece p[3000];
	struct gather g = { 0 };

	for (size_t i = 0; i < 3000; i++) {
		p[i].p_kind = i % 3 == 0 ? FX_HOLE : i % 3 == 1 ? FX_RAW : FX_ZSTD;
		p[i].p_size = 1 + (uint32_t)(i * 37 % 9000);
	}
	p[3].p_size = 300000;        /* a hole of several zero pieces */
	p[1500].p_kind = FX_RAW;
	p[1500].p_size = NASC_RAW_MAX; /* one chunk bigger than a batch */
	fx[0] = fx_build(1, p, 3000, 8);
	fx_reply_max = 7;
	gather_back(1, fx[0], &g);
	ck_assert_int_gt(g.g_calls, 1);
	fx_reply_max = 0;
	memset(&g, 0, sizeof(g));
	gather_back(0, fx[0], &g);
	fx_free(fx[0]);
	/* Small raw chunks and holes: a batch of more pieces than one writev takes. */
	for (size_t i = 0; i < 3000; i++)
		p[i] = (struct fx_piece){ i % 2 == 0 ? FX_RAW : FX_HOLE, 1 + (uint32_t)(i % 50) };
	fx[0] = fx_build(1, p, 3000, 12);
	memset(&g, 0, sizeof(g));
	gather_back(1, fx[0], &g);
	ck_assert_int_eq(g.g_max_count, NASC_IOV_MAX);
	fx_free(fx[0]);
	/* Holes only (no GetChunks), and an empty checkpoint (nothing written). */
	p[0] = (struct fx_piece){ FX_HOLE, NASC_RAW_MAX };
	p[1] = (struct fx_piece){ FX_HOLE, 3 };
	fx[0] = fx_build(1, p, 2, 13);
	atomic_store(&fx_gets, 0);
	memset(&g, 0, sizeof(g));
	gather_back(1, fx[0], &g);
	ck_assert_int_eq(atomic_load(&fx_gets), 0);
	fx_free(fx[0]);
	fx[0] = fx_build(1, p, 0, 14);
	memset(&g, 0, sizeof(g));
	gather_back(1, fx[0], &g);
	ck_assert_int_eq(g.g_calls, 0);
}
END_TEST

/* Gathering, a corrupt chunk is DATA_LOSS; the fallback starts over (reset) and reads seq 1. */
START_TEST(nasc_vectored_corrupt_chunk_falls_back)
{
	static struct fx_piece p[600];
	struct gather g = { 0 };

	for (size_t i = 0; i < 600; i++) {
		p[i].p_kind = i % 2 == 0 ? FX_RAW : FX_HOLE;
		p[i].p_size = 16384;
	}
	fx[0] = fx_build(1, p, 600, 9);
	fx[1] = fx_build(2, p, 600, 10);
	fx[1]->f_stored[598].data.data[7] ^= 1;
	gather_back(0, fx[0], &g);
	ck_assert_int_gt(g.g_calls, 1); /* seq 2's first batches were written, then forgotten */
}
END_TEST

START_TEST(nasc_vectored_writer_error_stops_the_read)
{
	static struct fx_piece p[800];
	struct gather g = { 0 };
	struct nasc_fallback fb;
	struct nasc_info info;
	struct rpc_error err;

	for (size_t i = 0; i < 800; i++)
		p[i] = (struct fx_piece){ FX_RAW, 16384 };
	fx[0] = fx_build(1, p, 800, 11);
	g.g_cap = fx[0]->f_len;
	g.g_buf = malloc(g.g_cap);
	g.g_fail_at = 2;
	ck_assert_int_eq(nasc_retrieve_fallback_v(cli, "", "c", 1, gather_writev, gather_reset, &g,
	                     TIMEOUT_MS, &info, &fb, &err), -EIO);
	ck_assert_int_eq(g.g_calls, 2);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "writing checkpoint"));
	free(g.g_buf);
}
END_TEST

/* Into a buffer: the record's size is checked against the bound before any chunk is asked for. */
START_TEST(nasc_too_big_for_the_buffer_fails_before_reading)
{
	const struct fx_piece p[] = { { FX_RAW, 10000 }, { FX_HOLE, 4096 }, { FX_ZSTD, 20000 } };
	struct nasc_fallback fb;
	struct nasc_info info;
	struct rpc_error err;
	void *got = NULL;
	size_t len = 0;

	fx[0] = fx_build(1, p, 3, 4);
	ck_assert_int_eq(nasc_retrieve_buf(cli, "", "c", 1, fx[0]->f_len - 1, TIMEOUT_MS, &got, &len,
	                     &info, &err), -EFBIG);
	ck_assert_ptr_null(got);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "34096 bytes"));
	ck_assert_int_eq(nasc_retrieve_buf_fallback(cli, "", "c", 1, fx[0]->f_len - 1, TIMEOUT_MS,
	                     &got, &len, &info, &fb, &err), -EFBIG);
	ck_assert_int_eq(atomic_load(&fx_gets), 0);
	/* Exactly the bound is fine. */
	ck_assert_int_eq(nasc_retrieve_buf_fallback(cli, "", "c", 1, fx[0]->f_len, TIMEOUT_MS, &got,
	                     &len, &info, &fb, &err), 0);
	ck_assert_uint_eq(len, fx[0]->f_len);
	ck_assert_int_eq(memcmp(got, fx[0]->f_bytes, len), 0);
	free(got);
}
END_TEST

/* ---- store check: fake NAS that answer Stat with the store id in their arg ---- */

static int
h_stat_id(void *arg, struct rpc_call *call, const ProtobufCMessage *req_, ProtobufCMessage *reply_)
{
	Ckpt__V1__StatReply *reply = (Ckpt__V1__StatReply *)reply_;
	(void)call;
	(void)req_;
	reply->store_id = arg;
	return 0;
}

static const rpc_handler_fn id_handlers[NAS_METHODS] = {
	[NAS_STAT] = h_stat_id,
};

static struct rpc_server *
id_server(const char *url, const char *id)
{
	struct rpc_server_config cfg = {
		.rs_service = &ckpt__v1__nas__descriptor,
		.rs_handlers = id_handlers,
		.rs_arg = (void *)id,
		.rs_workers = 1,
	};
	struct rpc_server *s = NULL;

	ck_assert_int_eq(rpc_server_start(&cfg, url, &s), 0);
	return s;
}

static atomic_int id_done_rv = 1;

static void
id_done(void *arg, int rv, const char *msg)
{
	(void)arg;
	(void)msg;
	atomic_store(&id_done_rv, rv);
}

START_TEST(nasc_check_store_accepts_one_store_under_two_urls)
{
	struct rpc_server *a = id_server("tcp://127.0.0.1:0", "aaaa");
	char other[128], *urls[2] = { (char *)rpc_server_url(a), other };
	struct rpc_error err;
	struct nasc *n;

	snprintf(other, sizeof(other), "tcp://localhost:%s", strrchr(urls[0], ':') + 1);
	ck_assert_int_eq(nasc_open(urls, 2, 0, &n, &err), 0);
	ck_assert_msg(nasc_check_store(n, TIMEOUT_MS, NULL, NULL, &err) == 0, "%s", err.re_msg);
	nasc_close(n);
	rpc_server_stop(a);
}
END_TEST

START_TEST(nasc_check_store_refuses_two_stores_and_every_call_after)
{
	struct rpc_server *a = id_server("tcp://127.0.0.1:0", "aaaa");
	struct rpc_server *b = id_server("tcp://127.0.0.1:0", "bbbb");
	char *urls[2] = { (char *)rpc_server_url(a), (char *)rpc_server_url(b) };
	Ckpt__V1__StatRequest req = CKPT__V1__STAT_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	struct rpc_error err;
	struct nasc *n;

	ck_assert_int_eq(nasc_open(urls, 2, 0, &n, &err), 0);
	ck_assert_int_eq(nasc_check_store(n, TIMEOUT_MS, NULL, NULL, &err), -EXDEV);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__FAILED_PRECONDITION);
	ck_assert_msg(strstr(err.re_msg, "is store aaaa but") != NULL &&
	        strstr(err.re_msg, "is store bbbb: a NAS list must be addresses of one store") != NULL,
	    "%s", err.re_msg);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(nasc_call(n, NAS_STAT, &req.base, TIMEOUT_MS, &rep, &err), -EXDEV);
	ck_assert_ptr_null(rep);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "different stores are refused"));
	nasc_close(n);
	rpc_server_stop(a);
	rpc_server_stop(b);
}
END_TEST

START_TEST(nasc_check_store_checks_a_nas_down_at_start_once_it_answers)
{
	struct rpc_server *a = id_server("tcp://127.0.0.1:0", "aaaa");
	struct rpc_server *b = id_server("tcp://127.0.0.1:0", "bbbb");
	char burl[128], *urls[2] = { (char *)rpc_server_url(a), burl };
	Ckpt__V1__StatRequest req = CKPT__V1__STAT_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	struct rpc_error err;
	struct nasc *n;

	snprintf(burl, sizeof(burl), "%s", rpc_server_url(b));
	rpc_server_stop(b); /* down at start */
	atomic_store(&id_done_rv, 1);
	ck_assert_int_eq(nasc_open(urls, 2, 0, &n, &err), 0);
	ck_assert_int_eq(nasc_check_store(n, 300, id_done, NULL, &err), -EAGAIN);
	/* Meanwhile calls go through (to the first NAS). */
	ck_assert_int_eq(nasc_call(n, NAS_STAT, &req.base, TIMEOUT_MS, &rep, &err), 0);
	rpc_reply_free(rep);
	b = id_server(burl, "bbbb");
	for (int i = 0; i < 300 && atomic_load(&id_done_rv) == 1; i++)
		usleep(100 * 1000);
	ck_assert_int_eq(atomic_load(&id_done_rv), -EXDEV);
	ck_assert_int_eq(nasc_call(n, NAS_STAT, &req.base, TIMEOUT_MS, &rep, &err), -EXDEV);
	nasc_close(n);
	rpc_server_stop(a);
	rpc_server_stop(b);
}
END_TEST

START_TEST(nasc_close_stops_a_store_check_in_progress)
{
	struct rpc_server *a = id_server("tcp://127.0.0.1:0", "aaaa");
	struct rpc_server *b = id_server("tcp://127.0.0.1:0", "bbbb");
	char burl[128], *urls[2] = { (char *)rpc_server_url(a), burl };
	struct rpc_error err;
	struct nasc *n;

	snprintf(burl, sizeof(burl), "%s", rpc_server_url(b));
	rpc_server_stop(b);
	atomic_store(&id_done_rv, 1);
	ck_assert_int_eq(nasc_open(urls, 2, 0, &n, &err), 0);
	ck_assert_int_eq(nasc_check_store(n, 300, id_done, NULL, &err), -EAGAIN);
	nasc_close(n);
	ck_assert_int_eq(atomic_load(&id_done_rv), 1); /* never called */
	rpc_server_stop(a);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("nasc");
	TCase *tc = tcase_create("nasc");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, nasc_reads_a_record_with_holes_without_asking_for_them);
	tcase_add_test(tc, nasc_too_big_for_the_buffer_fails_before_reading);
	tcase_add_test(tc, nasc_reads_a_record_of_holes_only_without_get_chunks);
	tcase_add_test(tc, nasc_reads_many_batches_in_order_from_short_replies);
	tcase_add_test(tc, nasc_rejects_bad_holes_as_data_loss);
	tcase_add_test(tc, nasc_corrupt_chunk_in_a_later_batch_falls_back);
	tcase_add_test(tc, nasc_writer_error_stops_the_read);
	tcase_add_test(tc, nasc_hands_a_vectored_writer_the_pieces_as_they_lie);
	tcase_add_test(tc, nasc_vectored_corrupt_chunk_falls_back);
	tcase_add_test(tc, nasc_vectored_writer_error_stops_the_read);
	tcase_add_test(tc, nasc_check_store_accepts_one_store_under_two_urls);
	tcase_add_test(tc, nasc_check_store_refuses_two_stores_and_every_call_after);
	tcase_add_test(tc, nasc_check_store_checks_a_nas_down_at_start_once_it_answers);
	tcase_add_test(tc, nasc_close_stops_a_store_check_in_progress);
	suite_add_tcase(s, tc);
	return test_run(s);
}

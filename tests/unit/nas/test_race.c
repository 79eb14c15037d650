/*
 * Stores that lose chunks while they run, each case caused for real at one
 * chosen point: the client talks to the in-process NAS (nasfix.h) through a
 * relay (nasrelay.h) that runs a hook before passing on the Store. The hook
 * deletes a record as `ckptctl rm` would (the chunks a HaveChunks was just
 * told the NAS holds are gone), or restarts the NAS (its sweep after open
 * deletes the chunks the store uploaded and has not committed yet).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ckpt/v1/nas.pb-c.h"
#include "err.h"
#include "log.h"
#include "methods.h"
#include "nas.h"
#include "nasc.h"
#include "rpc.h"
#include "store.h"

#include "nasfix.h"
#include "nasrelay.h"
#include "../testbuf.h"
#include "../testrun.h"

#define MiB (1u << 20)
#define TIMEOUT_MS 10000u

static struct nasfix fix;     /* the NAS, and a client straight to it (fix.f_cli) */
static struct nasrelay relay; /* to fix's NAS, wherever it restarts */
static struct nasc *rc;       /* the client under test, through the relay */

static void
setup(void)
{
	struct rpc_error err;
	char *url;

	log_init("test-race", NULL, LOG_LEVEL_WARN);
	ck_assert_int_eq(nasfix_start(&fix, "race", 64 * MiB, 1024 * MiB), 0);
	ck_assert_int_eq(nasrelay_start(&relay, nas_url(fix.f_srv)), 0);
	url = relay.nr_url;
	ck_assert_int_eq(nasc_open(&url, 1, RPC_CLIENT_DIAL_NOW, &rc, &err), 0);
}

static void
teardown(void)
{
	nasc_close(rc);
	nasrelay_stop(&relay);
	nasfix_stop(&fix);
}

/* ---- hooks: what happens between the last call of a store and its Store ---- */

/* Deletes every record of n1/dh_comp (ckptctl rm), straight at the NAS. */
struct del_hook {
	const char *dh_comp;
	int dh_rv;
	uint32_t dh_deleted;
};

static void
hook_delete(struct nasrelay *r, void *arg)
{
	Ckpt__V1__DeleteRequest req = CKPT__V1__DELETE_REQUEST__INIT;
	Ckpt__V1__DeleteReply *rep = NULL;
	struct del_hook *d = arg;
	struct rpc_error err;

	(void)r;
	req.node = "n1";
	req.component = (char *)d->dh_comp;
	d->dh_rv = nasc_call(fix.f_cli, NAS_DELETE, &req.base, TIMEOUT_MS,
	    (ProtobufCMessage **)&rep, &err);
	if (d->dh_rv == 0) {
		d->dh_deleted += rep->deleted;
		rpc_reply_free(&rep->base);
	}
}

/*
 * Restarts the NAS on fix's folder: the store closed and opened again, its
 * sweep after open run to its end before the service starts (no client
 * named a chunk since the open), the relay and the direct client pointed at
 * the new port.
 */
struct restart_hook {
	int rh_rv;            /* the first failure */
	size_t rh_orphans;    /* chunks the sweeps deleted */
};

static void
hook_restart(struct nasrelay *r, void *arg)
{
	struct store_config sc = { .sc_dir = fix.f_dir, .sc_map_size = 64 * MiB,
		.sc_map_max = 1024 * MiB, .sc_sweep_manual = true };
	struct nas_config nc = { .nc_listen = "tcp://127.0.0.1:0", .nc_workers = 4 };
	struct restart_hook *h = arg;
	struct store_error serr;
	size_t orphans = 0;
	int rv;

	nas_stop(fix.f_srv);
	fix.f_srv = NULL;
	store_close(fix.f_st);
	fix.f_st = NULL;
	rv = store_open(&sc, &fix.f_st, NULL, &serr);
	if (rv == 0)
		rv = store_sweep_wait(fix.f_st, &orphans);
	if (rv == 0)
		rv = nas_start(&nc, fix.f_st, &fix.f_srv);
	if (rv == 0)
		rv = nasrelay_redial(r, nas_url(fix.f_srv));
	/* The direct client too (the hooks delete with it). */
	nasc_close(fix.f_cli);
	fix.f_cli = NULL;
	if (rv == 0) {
		struct rpc_error err;
		char *url = (char *)nas_url(fix.f_srv);
		rv = nasc_open(&url, 1, RPC_CLIENT_DIAL_NOW, &fix.f_cli, &err);
	}
	if (h->rh_rv == 0)
		h->rh_rv = rv;
	h->rh_orphans += orphans;
}

/* Deletes n1/tiny, then restarts the NAS. */
struct small_hook {
	struct del_hook sh_del;
	struct restart_hook sh_restart;
};

static void
hook_delete_restart(struct nasrelay *r, void *arg)
{
	struct small_hook *s = arg;

	hook_delete(r, &s->sh_del);
	hook_restart(r, &s->sh_restart);
}

/* ---- helpers ---- */

/* n1/comp := buf, straight at the NAS (not through the relay). */
static void
put_direct(const char *comp, const uint8_t *buf, size_t len, struct nasc_info *ret_info)
{
	struct nasc_put p = { "n1", comp, "raw", 0, 1 };
	struct rpc_error err;

	ck_assert_msg(nasc_store_buf(fix.f_cli, &p, buf, len, TIMEOUT_MS, ret_info, &err) == 0,
	    "store %s: %s", comp, err.re_msg);
}

/* n1/comp reads back (through the relay) as the checkpoint info names, byte for byte. */
static void
expect_stored(const char *comp, const uint8_t *buf, size_t len, const struct nasc_info *info)
{
	struct nasc_info out;
	struct rpc_error err;
	void *got;
	size_t got_len;

	ck_assert_msg(nasc_retrieve_buf(rc, "n1", comp, 0, len + 1, TIMEOUT_MS, &got, &got_len,
	                  &out, &err) == 0,
	    "retrieve %s: %s", comp, err.re_msg);
	ck_assert_uint_eq(out.ni_seq, info->ni_seq);
	ck_assert_mem_eq(out.ni_digest, info->ni_digest, SHA_LEN);
	ck_assert_uint_eq(got_len, len);
	ck_assert_mem_eq(got, buf, len);
	free(got);
}

/* Nothing of n1/comp is stored. */
static void
expect_none(const char *comp)
{
	struct nasc_info out;
	struct rpc_error err;
	void *got = NULL;
	size_t got_len;

	ck_assert_int_eq(nasc_retrieve_buf(rc, "n1", comp, 0, 64 * MiB, TIMEOUT_MS, &got, &got_len,
	                     &out, &err),
	    -ENOENT);
	free(got);
}

/* Requests of method the relay passed on; times its hook ran. */
static unsigned
count(unsigned method)
{
	return atomic_load(&relay.nr_count[method]);
}

static unsigned
fired(void)
{
	return atomic_load(&relay.nr_fired);
}

/* ---- the cases ---- */

START_TEST(store_sends_again_chunks_deleted_between_have_chunks_and_store)
{
	size_t len = 3 * MiB + 17;
	uint8_t *b = testbuf_bytes(len, 31);
	struct del_hook d = { "other", -1, 0 };
	struct nasc_put p = { "n1", "racer", "raw", 0, 1 };
	struct nasc_stats s0, s1;
	struct nasc_info info, other;
	struct rpc_error err;
	int rv;

	/* Another component holds every chunk: HaveChunks answers "have" to each, none is sent. */
	put_direct("other", b, len, &other);
	ck_assert_uint_gt(other.ni_chunk_count, 1);
	/* Its record deleted after that answer, before the Store: the chunks are gone. */
	nasrelay_hook(&relay, NAS_STORE, 1, false, hook_delete, &d);
	nasc_get_stats(rc, &s0);
	rv = nasc_store_buf(rc, &p, b, len, TIMEOUT_MS, &info, &err);
	nasc_get_stats(rc, &s1);
	ck_assert_uint_eq(fired(), 1);
	ck_assert_int_eq(d.dh_rv, 0);
	ck_assert_uint_eq(d.dh_deleted, 1);
	ck_assert_msg(rv == 0, "store: %s", err.re_msg);
	/* Refused once; then the base asked again (none), every chunk asked, sent, committed. */
	ck_assert_uint_eq(count(NAS_STORE), 2);
	ck_assert_uint_eq(count(NAS_RETRIEVE), 2);
	ck_assert_uint_eq(count(NAS_HAVE_CHUNKS), 2);
	ck_assert_uint_eq(s1.ns_race_retries - s0.ns_race_retries, 1);
	ck_assert_uint_eq(s1.ns_stale_retries, s0.ns_stale_retries);
	ck_assert_uint_eq(s1.ns_dedup_chunks - s0.ns_dedup_chunks, other.ni_chunk_count);
	ck_assert_uint_eq(s1.ns_put_chunks - s0.ns_put_chunks, other.ni_chunk_count);
	ck_assert_mem_eq(info.ni_digest, other.ni_digest, SHA_LEN);
	expect_stored("racer", b, len, &info);
	free(b);
}
END_TEST

START_TEST(store_sends_again_its_base_deleted_before_the_commit)
{
	size_t len = 3 * MiB + 17;
	uint8_t *v1 = testbuf_bytes(len, 32), *v2 = testbuf_bytes(len, 32);
	struct del_hook d = { "comp", -1, 0 };
	struct nasc_put p = { "n1", "comp", "raw", 0, 1 };
	struct nasc_stats s0, s1;
	struct nasc_info info, first;
	struct rpc_error err;
	int rv;

	/*
	 * The previous checkpoint, stored by another client: this one remembers
	 * nothing and takes the NAS's record as its base (Retrieve), whose
	 * chunks it does not ask about; only the changed chunk is sent.
	 */
	put_direct("comp", v1, len, &first);
	memset(v2 + MiB, 0x5a, 100);
	/* That record deleted (rm, or retention) before the Store. */
	nasrelay_hook(&relay, NAS_STORE, 1, false, hook_delete, &d);
	nasc_get_stats(rc, &s0);
	rv = nasc_store_buf(rc, &p, v2, len, TIMEOUT_MS, &info, &err);
	nasc_get_stats(rc, &s1);
	ck_assert_uint_eq(fired(), 1);
	ck_assert_int_eq(d.dh_rv, 0);
	ck_assert_uint_eq(d.dh_deleted, 1);
	ck_assert_msg(rv == 0, "store: %s", err.re_msg);
	ck_assert_uint_eq(count(NAS_STORE), 2);
	ck_assert_uint_eq(count(NAS_RETRIEVE), 2);
	ck_assert_uint_eq(s1.ns_race_retries - s0.ns_race_retries, 1);
	ck_assert_uint_eq(s1.ns_stale_retries, s0.ns_stale_retries);
	/* The first attempt sent the changed chunks, the second every other one. */
	ck_assert_uint_eq(s1.ns_put_chunks - s0.ns_put_chunks, info.ni_chunk_count);
	ck_assert_uint_lt(s1.ns_dedup_chunks - s0.ns_dedup_chunks, first.ni_chunk_count + 3ull);
	expect_stored("comp", v2, len, &info);
	free(v1);
	free(v2);
}
END_TEST

START_TEST(store_sends_again_its_uploads_swept_by_a_nas_restart)
{
	size_t len = 5 * MiB + 3;
	uint8_t *b = testbuf_bytes(len, 33);
	char path[] = "/tmp/ckpt-race-file-XXXXXX";
	struct restart_hook h = { 0, 0 };
	struct nasc_put p = { "n1", "file", "raw", 0, 1 };
	struct nasc_stats s0, s1;
	struct nasc_info info;
	struct rpc_error err;
	void *map;
	int fd, rv;

	/* A mapped file (ckptctl put -i FILE): two windows, their chunks all new. */
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(write(fd, b, len), (ssize_t)len);
	map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	/* Uploaded by PutChunks, then the NAS restarts before the Store: its sweep deletes them. */
	nasrelay_hook(&relay, NAS_STORE, 1, false, hook_restart, &h);
	nasc_get_stats(rc, &s0);
	rv = nasc_store_file(rc, &p, fd, map, len, NULL, TIMEOUT_MS, &info, &err);
	nasc_get_stats(rc, &s1);
	ck_assert_uint_eq(fired(), 1);
	ck_assert_int_eq(h.rh_rv, 0);
	ck_assert_msg(rv == 0, "store: %s", err.re_msg);
	ck_assert_uint_eq(count(NAS_STORE), 2);
	ck_assert_uint_eq(count(NAS_HAVE_CHUNKS), 4);
	ck_assert_uint_eq(s1.ns_race_retries - s0.ns_race_retries, 1);
	/* Every chunk was an orphan of the restart, then sent again. */
	ck_assert_uint_gt(info.ni_chunk_count, 1);
	ck_assert_uint_eq(h.rh_orphans, info.ni_chunk_count);
	ck_assert_uint_eq(s1.ns_put_chunks - s0.ns_put_chunks, 2 * (uint64_t)info.ni_chunk_count);
	ck_assert_uint_eq(s1.ns_dedup_chunks, s0.ns_dedup_chunks);
	expect_stored("file", b, len, &info);
	munmap(map, len);
	close(fd);
	free(b);
}
END_TEST

START_TEST(store_is_sent_again_once_only)
{
	size_t len = 2 * MiB + 5;
	uint8_t *b = testbuf_bytes(len, 34);
	struct restart_hook h = { 0, 0 };
	struct nasc_put p = { "n1", "unlucky", "raw", 0, 1 };
	struct nasc_stats s0, s1;
	struct nasc_info info;
	struct rpc_error err;
	int rv;

	/* A restart before every Store: the second refusal is the caller's. */
	nasrelay_hook(&relay, NAS_STORE, 1, true, hook_restart, &h);
	nasc_get_stats(rc, &s0);
	rv = nasc_store_buf(rc, &p, b, len, TIMEOUT_MS, &info, &err);
	nasc_get_stats(rc, &s1);
	ck_assert_int_eq(h.rh_rv, 0);
	ck_assert_int_eq(rv, -ESTALE);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__FAILED_PRECONDITION);
	ck_assert(rpc_error_is(&err, ERR_REASON_MISSING_CHUNKS));
	ck_assert_uint_eq(fired(), 2);
	ck_assert_uint_eq(count(NAS_STORE), 2);
	ck_assert_uint_eq(s1.ns_race_retries - s0.ns_race_retries, 1);
	nasrelay_hook(&relay, NAS_STORE, 1, false, NULL, NULL);
	expect_none("unlucky");
	free(b);
}
END_TEST

START_TEST(store_from_a_stream_is_refused_with_a_message_to_store_it_again)
{
	size_t len = 3 * MiB + 17;
	uint8_t *b = testbuf_bytes(len, 35);
	struct del_hook d = { "other", -1, 0 };
	struct nasc_put p = { "n1", "piped", "raw", 0, 1 };
	struct membuf m = { b, len, 0, 100000 };
	struct nasc_stats s0, s1;
	struct nasc_info info, other;
	struct rpc_error err;
	int rv;

	/* As in the first case, from a reader (ckptctl put from a pipe): its bytes are gone. */
	put_direct("other", b, len, &other);
	nasrelay_hook(&relay, NAS_STORE, 1, false, hook_delete, &d);
	nasc_get_stats(rc, &s0);
	rv = nasc_store(rc, &p, membuf_read, &m, TIMEOUT_MS, &info, &err);
	nasc_get_stats(rc, &s1);
	ck_assert_int_eq(d.dh_rv, 0);
	ck_assert_uint_eq(d.dh_deleted, 1);
	ck_assert_int_eq(rv, -ESTALE);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__FAILED_PRECONDITION);
	ck_assert(rpc_error_is(&err, ERR_REASON_MISSING_CHUNKS));
	ck_assert_msg(strstr(err.re_msg, "read from a stream cannot be read again") != NULL &&
	        strstr(err.re_msg, "nothing was stored, store it again") != NULL &&
	        strstr(err.re_msg, "chunks missing") != NULL,
	    "%s", err.re_msg);
	ck_assert_uint_eq(count(NAS_STORE), 1);
	ck_assert_uint_eq(s1.ns_race_retries, s0.ns_race_retries);
	ck_assert_uint_eq(s1.ns_stale_retries, s0.ns_stale_retries);
	expect_none("piped");
	free(b);
}
END_TEST

/*
 * A small checkpoint leaves out only the chunks its remembered list names;
 * refused for one of them, it sends every chunk inline, written in the
 * commit's own transaction: neither a delete nor a restart before that
 * Store can make it miss one.
 */
START_TEST(small_store_sends_every_chunk_inline_after_a_refusal)
{
	size_t len = 48 * 1024;
	uint8_t *b = testbuf_bytes(len, 36);
	struct small_hook h = { { "tiny", -1, 0 }, { 0, 0 } };
	struct nasc_put p = { "n1", "tiny", "raw", 0, 1 };
	struct nasc_stats s0, s1;
	struct nasc_info info;
	struct rpc_error err;
	int rv;

	ck_assert_msg(nasc_store_buf(rc, &p, b, len, TIMEOUT_MS, &info, &err) == 0, "%s",
	    err.re_msg);
	/* Before each Store: the previous record deleted, the NAS restarted. */
	nasrelay_hook(&relay, NAS_STORE, 1, true, hook_delete_restart, &h);
	nasc_get_stats(rc, &s0);
	rv = nasc_store_buf(rc, &p, b, len, TIMEOUT_MS, &info, &err);
	nasc_get_stats(rc, &s1);
	ck_assert_int_eq(h.sh_restart.rh_rv, 0);
	ck_assert_msg(rv == 0, "store: %s", err.re_msg);
	ck_assert_uint_eq(fired(), 2);
	ck_assert_uint_eq(h.sh_del.dh_deleted, 1);
	ck_assert_uint_eq(count(NAS_STORE), 3);
	ck_assert_uint_eq(count(NAS_HAVE_CHUNKS), 0);
	ck_assert_uint_eq(count(NAS_PUT_CHUNKS), 0);
	ck_assert_uint_eq(s1.ns_inline_stores - s0.ns_inline_stores, 1);
	ck_assert_uint_eq(s1.ns_stale_retries - s0.ns_stale_retries, 1);
	ck_assert_uint_eq(s1.ns_race_retries, s0.ns_race_retries);
	nasrelay_hook(&relay, NAS_STORE, 1, false, NULL, NULL);
	expect_stored("tiny", b, len, &info);
	free(b);
}
END_TEST

/* A stale epoch is final for a small store: no normal store after it, no upload to orphan. */
START_TEST(small_store_refused_a_stale_epoch_uploads_nothing)
{
	size_t len = 6000;
	uint8_t *b = testbuf_bytes(len, 37);
	struct nasc_put p = { "n1", "old", "raw", 0, 5 };
	struct nasc_info info;
	struct rpc_error err;
	unsigned stores, puts, haves;

	ck_assert_msg(nasc_store_buf(rc, &p, b, len, TIMEOUT_MS, &info, &err) == 0, "%s",
	    err.re_msg);
	stores = count(NAS_STORE);
	puts = count(NAS_PUT_CHUNKS);
	haves = count(NAS_HAVE_CHUNKS);
	p.np_epoch = 4;
	b[0] ^= 1;
	ck_assert_int_eq(nasc_store_buf(rc, &p, b, len, TIMEOUT_MS, &info, &err), -ESTALE);
	ck_assert(rpc_error_is(&err, ERR_REASON_STALE_EPOCH));
	ck_assert_uint_eq(count(NAS_STORE), stores + 1);
	ck_assert_uint_eq(count(NAS_PUT_CHUNKS), puts);
	ck_assert_uint_eq(count(NAS_HAVE_CHUNKS), haves);
	free(b);
}
END_TEST

/* ---- inline Stores of a store from its base, refused by a NAS (nasc_store_inline()) ---- */

/* How the relay refuses Stores in the NAS's place (nasrelay_answer()). */
struct refuse {
	Ckpt__V1__Code rf_code;
	const char *rf_msg;          /* fixed message, or NULL: computed (below) */
	const char *rf_reason;
	unsigned rf_left;            /* refusals left (UINT32_MAX: all) */
	uint64_t rf_limit;           /* rf_msg NULL: refuse more inline bytes than this (1 MiB NAS) */
	bool rf_ignore;              /* rf_msg NULL: miss the first inline chunk (a NAS without the field) */
};

/* The index in req's chunk list of the chunk with hash sha, or SIZE_MAX. */
static size_t
list_index(const Ckpt__V1__StoreRequest *req, const ProtobufCBinaryData *sha)
{
	size_t ord = 0;

	for (size_t i = 0; i < req->n_chunk_sizes; i++) {
		if ((req->chunk_sizes[i] & 1u) != 0)
			continue;
		if (sha->len == SHA_LEN && (ord + 1) * SHA_LEN <= req->chunk_sha256.len &&
		    memcmp(req->chunk_sha256.data + ord * SHA_LEN, sha->data, SHA_LEN) == 0)
			return i;
		ord++;
	}
	return SIZE_MAX;
}

static bool
answer_store(const uint8_t *body, size_t len, void *arg, Ckpt__V1__Code *ret_code, char *ret_msg,
    size_t msg_size, char *ret_reason, size_t reason_size)
{
	struct refuse *f = arg;
	Ckpt__V1__StoreRequest *req;
	uint64_t bytes = 0;
	bool refuse = false;

	if (f->rf_left == 0 || (req = ckpt__v1__store_request__unpack(NULL, len, body)) == NULL)
		return false;
	for (size_t i = 0; i < req->n_inline_chunks; i++)
		bytes += req->inline_chunks[i]->data.len;
	if (f->rf_msg != NULL) {
		snprintf(ret_msg, msg_size, "%s", f->rf_msg);
		refuse = true;
	} else if (f->rf_limit != 0 && bytes > f->rf_limit) {
		/* services/nas/store_rec.c's words since 3e44387. */
		snprintf(ret_msg, msg_size, "%llu bytes of inline chunks (at most %llu): send them "
		    "with PutChunks", (unsigned long long)bytes, (unsigned long long)f->rf_limit);
		refuse = true;
	} else if (f->rf_ignore && req->n_inline_chunks != 0) {
		snprintf(ret_msg, msg_size, "%zu of %zu chunks missing (first: index %zu); send them "
		    "with PutChunks", req->n_inline_chunks, req->n_chunk_sizes,
		    list_index(req, &req->inline_chunks[0]->sha256));
		refuse = true;
	}
	ckpt__v1__store_request__free_unpacked(req, NULL);
	if (!refuse)
		return false;
	if (f->rf_left != UINT32_MAX)
		f->rf_left--;
	*ret_code = f->rf_code;
	snprintf(ret_reason, reason_size, "%s", f->rf_reason);
	return true;
}

/* Flips a byte every 4 KiB of [off, off + n): that much new data, incompressible. */
static void
change(uint8_t *b, size_t off, size_t n, uint8_t x)
{
	for (size_t i = off; i < off + n; i += 4096)
		b[i] ^= x;
}

/* A store of comp from base with the range r, through the relay. */
static int
store_hinted(const char *comp, const uint8_t *b, size_t len, struct nasc_info *base,
    const struct nasc_range *r, struct rpc_error *err)
{
	struct nasc_put p = { "n1", comp, "raw", 0, 1 };
	struct nasc_hints h = { { 0 }, r, 1 };

	memcpy(h.nh_base_digest, base->ni_digest, SHA_LEN);
	return nasc_store_hinted(rc, &p, b, len, &h, TIMEOUT_MS, base, err);
}

/*
 * An inline Store refused for something else than its inline chunks (a bad
 * digest, a stale epoch from a NAS older than reasons) stands: no PutChunks
 * of the chunks it carried, no second Store.
 */
START_TEST(inline_store_refused_for_another_cause_uploads_nothing)
{
	static const struct refuse cases[] = {
		{ CKPT__V1__CODE__INVALID_ARGUMENT, "digest does not match the chunk list (which "
		    "gives ckpt-chunks-sha256:00)", "", 1, 0, false },
		{ CKPT__V1__CODE__FAILED_PRECONDITION, "stale epoch 1 < 2 for component ia", "", 1,
		    0, false },
		{ CKPT__V1__CODE__FAILED_PRECONDITION, "stale epoch 1 < 2 for component ia",
		    ERR_REASON_STALE_EPOCH, 1, 0, false },
	};
	size_t len = 4 * MiB;
	uint8_t *b = testbuf_bytes(len, 41);
	struct nasc_range r = { MiB, 300000 };
	struct nasc_info info;
	struct rpc_error err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* A component each: a refusal drops the remembered list (the next reads whole). */
		char comp[8] = { 'i', 'a', (char)('0' + i), '\0' };
		struct nasc_put p = { "n1", comp, "raw", 0, 1 };
		struct refuse f = cases[i];
		unsigned puts, stores, answered = atomic_load(&relay.nr_answered);

		ck_assert_msg(nasc_store_buf(rc, &p, b, len, TIMEOUT_MS, &info, &err) == 0, "%s",
		    err.re_msg);
		puts = count(NAS_PUT_CHUNKS);
		stores = count(NAS_STORE);
		change(b, r.nr_off, r.nr_len, (uint8_t)(i + 1));
		nasrelay_answer(&relay, NAS_STORE, answer_store, &f);
		ck_assert_int_ne(store_hinted(comp, b, len, &info, &r, &err), 0);
		nasrelay_answer(&relay, NAS_STORE, NULL, NULL);
		ck_assert_int_eq(err.re_code, f.rf_code == CKPT__V1__CODE__INVALID_ARGUMENT ?
		    CKPT__V1__CODE__INVALID_ARGUMENT : CKPT__V1__CODE__FAILED_PRECONDITION);
		ck_assert_uint_eq(f.rf_left, 0);
		ck_assert_uint_eq(atomic_load(&relay.nr_answered), answered + 1);
		ck_assert_msg(count(NAS_PUT_CHUNKS) == puts, "case %zu: %u PutChunks", i,
		    count(NAS_PUT_CHUNKS) - puts);
		ck_assert_uint_eq(count(NAS_STORE), stores);
		change(b, r.nr_off, r.nr_len, (uint8_t)(i + 1));
	}
	free(b);
}
END_TEST

/*
 * Chunks of the base missing (deleted meanwhile) are no sign that the NAS
 * ignores inline chunks, even when the store then passes (another writer
 * put them back): the store is made again whole, and the next one from a
 * base still goes inline.
 */
START_TEST(inline_store_missing_base_chunks_keeps_inline_on)
{
	struct refuse f = { CKPT__V1__CODE__FAILED_PRECONDITION, "3 of 70 chunks missing (first: "
	    "index 0); send them with PutChunks", ERR_REASON_MISSING_CHUNKS, 1, 0, false };
	size_t len = 4 * MiB;
	uint8_t *b = testbuf_bytes(len, 42);
	struct nasc_put p = { "n1", "ib", "raw", 0, 1 };
	struct nasc_range r = { MiB, 300000 };
	struct nasc_stats s0, s1;
	struct nasc_info info;
	struct rpc_error err;

	ck_assert_msg(nasc_store_buf(rc, &p, b, len, TIMEOUT_MS, &info, &err) == 0, "%s",
	    err.re_msg);
	change(b, r.nr_off, r.nr_len, 1);
	nasrelay_answer(&relay, NAS_STORE, answer_store, &f);
	ck_assert_msg(store_hinted("ib", b, len, &info, &r, &err) == 0, "%s", err.re_msg);
	nasrelay_answer(&relay, NAS_STORE, NULL, NULL);
	ck_assert_uint_eq(f.rf_left, 0);
	expect_stored("ib", b, len, &info);
	change(b, r.nr_off, r.nr_len, 2);
	nasc_get_stats(rc, &s0);
	ck_assert_msg(store_hinted("ib", b, len, &info, &r, &err) == 0, "%s", err.re_msg);
	nasc_get_stats(rc, &s1);
	ck_assert_uint_eq(s1.ns_held_inline, s0.ns_held_inline + 1);
	expect_stored("ib", b, len, &info);
	free(b);
}
END_TEST

/*
 * A NAS that takes 1 MiB inline (older than 4 MiB) refuses 2 MiB of new
 * chunks: they go by PutChunks, and the limit is remembered: the next such
 * store goes straight to PutChunks, a smaller one still inline.
 */
START_TEST(inline_limit_of_an_older_nas_is_remembered)
{
	struct refuse f = { CKPT__V1__CODE__INVALID_ARGUMENT, NULL, "", UINT32_MAX, MiB, false };
	size_t len = 8 * MiB;
	uint8_t *b = testbuf_bytes(len, 43);
	struct nasc_put p = { "n1", "il", "raw", 0, 1 };
	struct nasc_range big = { MiB, 2 * MiB }, small = { 5 * MiB, 200000 };
	struct nasc_stats s0, s1;
	struct nasc_info info;
	struct rpc_error err;
	unsigned stores, puts;

	ck_assert_msg(nasc_store_buf(rc, &p, b, len, TIMEOUT_MS, &info, &err) == 0, "%s",
	    err.re_msg);
	nasrelay_answer(&relay, NAS_STORE, answer_store, &f);
	for (int round = 0; round < 2; round++) {
		change(b, big.nr_off, big.nr_len, (uint8_t)(round + 1));
		nasc_get_stats(rc, &s0);
		stores = count(NAS_STORE);
		puts = count(NAS_PUT_CHUNKS);
		ck_assert_msg(store_hinted("il", b, len, &info, &big, &err) == 0, "%s", err.re_msg);
		nasc_get_stats(rc, &s1);
		ck_assert_uint_eq(s1.ns_held_inline, s0.ns_held_inline);
		ck_assert_uint_gt(count(NAS_PUT_CHUNKS), puts);
		ck_assert_uint_eq(count(NAS_STORE), stores + 1);
		/* Refused once, the first time only. */
		ck_assert_msg(atomic_load(&relay.nr_answered) == 1, "round %d: %u refusals", round,
		    atomic_load(&relay.nr_answered));
		expect_stored("il", b, len, &info);
	}
	change(b, small.nr_off, small.nr_len, 3);
	nasc_get_stats(rc, &s0);
	ck_assert_msg(store_hinted("il", b, len, &info, &small, &err) == 0, "%s", err.re_msg);
	nasc_get_stats(rc, &s1);
	nasrelay_answer(&relay, NAS_STORE, NULL, NULL);
	ck_assert_uint_eq(s1.ns_held_inline, s0.ns_held_inline + 1);
	ck_assert_uint_eq(atomic_load(&relay.nr_answered), 1);
	expect_stored("il", b, len, &info);
	free(b);
}
END_TEST

/*
 * A NAS older than the field misses the inline chunks (its message names
 * the first, one sent inline): they go by PutChunks, and the next store
 * from a base does not try inline again.
 */
START_TEST(inline_ignored_by_an_older_nas_is_remembered)
{
	struct refuse f = { CKPT__V1__CODE__FAILED_PRECONDITION, NULL, "", UINT32_MAX, 0, true };
	size_t len = 4 * MiB;
	uint8_t *b = testbuf_bytes(len, 44);
	struct nasc_put p = { "n1", "ig", "raw", 0, 1 };
	struct nasc_range r = { MiB, 300000 };
	struct nasc_stats s0, s1;
	struct nasc_info info;
	struct rpc_error err;

	ck_assert_msg(nasc_store_buf(rc, &p, b, len, TIMEOUT_MS, &info, &err) == 0, "%s",
	    err.re_msg);
	nasrelay_answer(&relay, NAS_STORE, answer_store, &f);
	for (int round = 0; round < 2; round++) {
		change(b, r.nr_off, r.nr_len, (uint8_t)(round + 1));
		nasc_get_stats(rc, &s0);
		ck_assert_msg(store_hinted("ig", b, len, &info, &r, &err) == 0, "%s", err.re_msg);
		nasc_get_stats(rc, &s1);
		ck_assert_uint_eq(s1.ns_held_inline, s0.ns_held_inline);
		ck_assert_uint_eq(atomic_load(&relay.nr_answered), 1);
		expect_stored("ig", b, len, &info);
	}
	nasrelay_answer(&relay, NAS_STORE, NULL, NULL);
	free(b);
}
END_TEST

static Suite *
race_suite(void)
{
	Suite *s = suite_create("nas_race");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, store_sends_again_chunks_deleted_between_have_chunks_and_store);
	tcase_add_test(tc, store_sends_again_its_base_deleted_before_the_commit);
	tcase_add_test(tc, store_sends_again_its_uploads_swept_by_a_nas_restart);
	tcase_add_test(tc, store_is_sent_again_once_only);
	tcase_add_test(tc, store_from_a_stream_is_refused_with_a_message_to_store_it_again);
	tcase_add_test(tc, small_store_sends_every_chunk_inline_after_a_refusal);
	tcase_add_test(tc, small_store_refused_a_stale_epoch_uploads_nothing);
	tcase_add_test(tc, inline_store_refused_for_another_cause_uploads_nothing);
	tcase_add_test(tc, inline_store_missing_base_chunks_keeps_inline_on);
	tcase_add_test(tc, inline_limit_of_an_older_nas_is_remembered);
	tcase_add_test(tc, inline_ignored_by_an_older_nas_is_remembered);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return test_run(race_suite());
}

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
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return test_run(race_suite());
}

/*
 * store_sweep.c: the sweep after open, in the background. It deletes orphan
 * chunks (uploaded by PutChunks, never referenced by a Store: the client
 * died between the two) and counts the chunk bytes the store holds, while
 * the NAS serves. The protocol:
 *
 * - Walk. "chunk" in key order, STORE_SWEEP_BATCH keys per write transaction
 *   (through store_write_frees(), so a batch joins the group commit like any
 *   write and never holds the writer for long), each batch read once before
 *   in a read transaction so that its write transaction finds the pages in
 *   memory. Then "tail", deleting tails whose chunk is gone (never written
 *   by this code; cheap to sweep).
 *
 * - Counts. s_chunk_bytes and s_chunk_raw_bytes start at 0 at open. "meta"
 *   holds STORE_SWEEP_KEY while the count runs: the last chunk key counted
 *   (the frontier), written by each batch in its own transaction, deleted by
 *   the batch that reaches the end. A write that adds or frees a chunk
 *   (store_put_run(), store_chunk_reseal(), store_ref_release()) counts it
 *   only when store_sweep_passed(): the key is at or before the frontier in
 *   its own transaction; a chunk after it is counted by the batch that
 *   reaches it, if it is still there. Writers are serialized by LMDB, so
 *   every chunk is counted exactly once and the totals are exact once the
 *   frontier key is gone (s_sweep_counting false: Stat's counting).
 *
 * - Safety. A chunk is deleted only when, in the batch's own transaction, it
 *   has no "ref" entry and no HaveChunks or PutChunks named it since the open
 *   (store_sweep_touch(), which they call before their transaction): an
 *   orphan reused by a new upload is kept, and so is every chunk uploaded
 *   after the open (it may be waiting for its Store). The batch marks a
 *   chunk it deletes "doomed" before its commit: a HaveChunks that names it
 *   later in the sweep answers "missing" even when its read transaction
 *   still sees the chunk, so no client is told "have it" of a chunk the
 *   sweep deletes (a missing answer for a chunk that stays only costs an
 *   upload PutChunks finds there). Names are kept only while the walk of
 *   "chunk" runs, at most STORE_SWEEP_NAMES_MAX: past that the sweep keeps
 *   every orphan (they go at the next open), and those it doomed before
 *   still answer missing. A name given while doomed is kept by a batch that
 *   runs again after a failure (the failed one deleted nothing, and a
 *   PutChunks in between found the chunk there and was acknowledged).
 *
 * - Failure. A failed batch commits nothing; the thread runs it again after
 *   1 s, doubling to a minute (a full disk may get room back), except when
 *   the map is full at --map-max (store_map_at_max()): nothing but a delete
 *   could free pages there, and with --disk-reserve 0 deletes fail on the
 *   full map too. The sweep then ends (store_sweep_give_up(): one warning,
 *   store_sweep_wait() returns -ENOSPC), the frontier stays in "meta" and
 *   s_sweep_counting true: the counts are not final, the orphans not
 *   reached stay until the next open.
 *
 * Locks: sw_mu guards the names, the in-memory frontier and the thread's
 * state; it is taken inside a write transaction (the batch) and outside any
 * (HaveChunks, PutChunks), never the other way round.
 */
#include "store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lmdb.h>

#include "err.h"
#include "log.h"

#define STORE_SWEEP_KEY "sweep"
#define STORE_SWEEP_KEYLEN 511                /* LMDB's largest key (MDB_MAXKEYSIZE) */
#define STORE_SWEEP_NAMES_MAX (256u * 1024)   /* names kept; a table of 17 MiB at most */
#define STORE_SWEEP_RETRY_MS 1000             /* after a failed batch, doubling to a minute */

/*
 * SW_DOOMED_NAMED: doomed, then named by a client. Answered missing like
 * SW_DOOMED, but a batch that runs again after a failure keeps it: the
 * failed batch deleted nothing, and a PutChunks in between found it there.
 */
enum store_sweep_name { SW_EMPTY, SW_TOUCHED, SW_DOOMED, SW_DOOMED_NAMED };

struct store_sweep_slot {
	uint8_t ss_name[SHA_LEN];
	uint8_t ss_state; /* enum store_sweep_name */
};

struct store_sweep {
	pthread_mutex_t sw_mu;
	pthread_cond_t sw_cv;          /* sw_stop set, or the sweep ended */
	pthread_t sw_thread;
	bool sw_thread_ready;
	bool sw_stop;
	bool sw_ended;                 /* the sweep ended (sw_rv: how) */
	int sw_rv;
	/* The walk: which database, and the last key done (in memory, of committed batches). */
	bool sw_tails;                 /* walking "tail"; the count is final */
	uint8_t sw_last[STORE_SWEEP_KEYLEN];
	size_t sw_last_len;
	bool sw_started;               /* sw_last holds a key */
	/* Names HaveChunks and PutChunks gave since the open, after the frontier. */
	struct store_sweep_slot *sw_slots;
	size_t sw_cap, sw_n;           /* slots (a power of two), names held */
	bool sw_keep_all;              /* a name did not fit: delete nothing more */
	/* What the sweep did. */
	uint64_t sw_keys, sw_orphans, sw_kept, sw_tails_deleted;
};

/* LMDB's default order: bytes, then the shorter first. */
static int
store_sweep_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* ---- the names (sw_mu held) ---- */

static size_t
store_sweep_hash(const uint8_t *name, size_t mask)
{
	uint64_t h = 0;

	memcpy(&h, name, sizeof(h)); /* names are SHA-256 or HMAC-SHA256: uniform */
	return (size_t)h & mask;
}

static struct store_sweep_slot *
store_sweep_find(struct store_sweep *sw, const uint8_t *name)
{
	size_t mask = sw->sw_cap - 1;

	if (sw->sw_cap == 0)
		return NULL;
	for (size_t i = store_sweep_hash(name, mask);; i = (i + 1) & mask) {
		struct store_sweep_slot *e = &sw->sw_slots[i];
		if (e->ss_state == SW_EMPTY || memcmp(e->ss_name, name, SHA_LEN) == 0)
			return e;
	}
}

/* Room for one more name (the table at most half full): false when there is none. */
static bool
store_sweep_room(struct store_sweep *sw)
{
	struct store_sweep_slot *old = sw->sw_slots, *e;
	size_t ocap = sw->sw_cap, ncap;

	if (2 * (sw->sw_n + 1) <= sw->sw_cap)
		return true;
	if (sw->sw_n + 1 > STORE_SWEEP_NAMES_MAX)
		return false;
	ncap = ocap != 0 ? 2 * ocap : 1024;
	sw->sw_slots = calloc(ncap, sizeof(*sw->sw_slots));
	if (sw->sw_slots == NULL) {
		sw->sw_slots = old;
		return false;
	}
	sw->sw_cap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].ss_state == SW_EMPTY)
			continue;
		e = store_sweep_find(sw, old[i].ss_name);
		*e = old[i];
	}
	free(old);
	return true;
}

/* Sets name's state (SW_TOUCHED never replaces SW_DOOMED); false when it did not fit. */
static bool
store_sweep_mark(struct store_sweep *sw, const uint8_t *name, enum store_sweep_name state)
{
	struct store_sweep_slot *e = store_sweep_find(sw, name);

	if (e != NULL && e->ss_state != SW_EMPTY) {
		if (state == SW_DOOMED)
			e->ss_state = SW_DOOMED;
		return true;
	}
	if (!store_sweep_room(sw))
		return false;
	e = store_sweep_find(sw, name);
	memcpy(e->ss_name, name, SHA_LEN);
	e->ss_state = (uint8_t)state;
	sw->sw_n++;
	return true;
}

/* ---- what writers and HaveChunks call ---- */

bool
store_sweep_passed(struct store *s, MDB_txn *txn, const void *key, size_t klen)
{
	MDB_val mk = { strlen(STORE_SWEEP_KEY), STORE_SWEEP_KEY }, v;

	if (!atomic_load(&s->s_sweep_counting))
		return true;
	if (mdb_get(txn, s->s_dbi[DB_META], &mk, &v) != 0)
		return true; /* gone in this transaction: the count is final */
	/* "k" and the last key counted; "k" alone: none yet. */
	return v.mv_size > 1 &&
	    store_sweep_cmp(key, klen, (const uint8_t *)v.mv_data + 1, v.mv_size - 1) <= 0;
}

bool
store_sweep_lock(struct store *s)
{
	struct store_sweep *sw = s->s_sweep;

	if (sw == NULL)
		return false;
	pthread_mutex_lock(&sw->sw_mu);
	/*
	 * The walk of "chunk" is over: nothing to note. Not when it keeps
	 * everything (sw_keep_all): the batch running may have doomed names
	 * before the table filled, and it deletes those.
	 */
	if (sw->sw_tails || sw->sw_ended) {
		pthread_mutex_unlock(&sw->sw_mu);
		return false;
	}
	return true;
}

bool
store_sweep_touch(struct store *s, const uint8_t *name)
{
	struct store_sweep *sw = s->s_sweep;
	struct store_sweep_slot *e;

	/* Before the frontier of a committed batch: the sweep never looks at it again. */
	if (sw->sw_started && store_sweep_cmp(name, SHA_LEN, sw->sw_last, sw->sw_last_len) <= 0)
		return false;
	e = store_sweep_find(sw, name);
	if (e != NULL && (e->ss_state == SW_DOOMED || e->ss_state == SW_DOOMED_NAMED)) {
		e->ss_state = SW_DOOMED_NAMED;
		return true;
	}
	if (sw->sw_keep_all)
		return false; /* the sweep dooms nothing more */
	if (!store_sweep_mark(sw, name, SW_TOUCHED))
		sw->sw_keep_all = true; /* safe: the sweep deletes nothing more */
	return false;
}

void
store_sweep_unlock(struct store *s)
{
	pthread_mutex_unlock(&s->s_sweep->sw_mu);
}

/* ---- the walk ---- */

struct store_sweep_op {
	/* In: where to go on from, how far; so_dry: read only (the read before a batch). */
	const uint8_t *so_from;
	size_t so_from_len;
	bool so_started;
	bool so_tails;
	size_t so_max;
	bool so_dry;
	/* Out. */
	uint8_t so_last[STORE_SWEEP_KEYLEN];
	size_t so_last_len;
	bool so_end;                   /* the walk of this database reached its end */
	uint64_t so_keys, so_bytes, so_raw, so_orphans, so_kept, so_tails_deleted;
};

/* Positions c at the first key after so_from (or the first key). */
static int
store_sweep_seek(MDB_cursor *c, const struct store_sweep_op *op, MDB_val *k, MDB_val *v)
{
	int rc;

	if (!op->so_started)
		return mdb_cursor_get(c, k, v, MDB_FIRST);
	k->mv_size = op->so_from_len;
	k->mv_data = (void *)op->so_from;
	rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
	if (rc == 0 && store_sweep_cmp(k->mv_data, k->mv_size, op->so_from, op->so_from_len) == 0)
		rc = mdb_cursor_get(c, k, v, MDB_NEXT);
	return rc;
}

/*
 * One chunk without a "ref" entry: deleted, unless a client named it since
 * the open (or the names are full); *ret_deleted tells.
 */
static int
store_sweep_orphan(struct store *s, MDB_txn *txn, MDB_cursor *c, const MDB_val *k,
    bool *ret_deleted)
{
	struct store_sweep *sw = s->s_sweep;
	MDB_val tk = *k;
	bool doom = false;
	int rc;

	pthread_mutex_lock(&sw->sw_mu);
	if (sw->sw_keep_all) {
		doom = false;
	} else if (k->mv_size != SHA_LEN) {
		doom = true; /* not a name a client can give */
	} else {
		struct store_sweep_slot *e = store_sweep_find(sw, k->mv_data);
		if (e != NULL && (e->ss_state == SW_TOUCHED || e->ss_state == SW_DOOMED_NAMED)) {
			/* Named by a client since the open (or since a batch that failed). */
			e->ss_state = SW_TOUCHED;
			doom = false;
		} else if (store_sweep_mark(sw, k->mv_data, SW_DOOMED))
			doom = true;
		else
			sw->sw_keep_all = true; /* did not fit: keep it, and every other */
	}
	pthread_mutex_unlock(&sw->sw_mu);
	*ret_deleted = doom;
	if (!doom)
		return 0;
	rc = mdb_cursor_del(c, 0);
	if (rc == 0)
		rc = mdb_del(txn, s->s_dbi[DB_TAIL], &tk, NULL); /* the header is not read */
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The bytes of a chunk kept (its value v, its count rv_ or none), its tail's included. */
static int
store_sweep_count(struct store *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v,
    const MDB_val *ref_v, uint64_t *bytes, uint64_t *raw)
{
	struct store_chunk_val cv;
	struct store_ref ref;
	MDB_val tk = *k, tv;
	int rc;

	if (ref_v != NULL && store_ref_decode(ref_v, &ref) == 0 && ref.r_raw_size != 0 &&
	    v->mv_size > STORE_CHUNK_HDR) {
		/* From sizes LMDB keeps in its pages: the value's bytes are not read. */
		*bytes += v->mv_size - STORE_CHUNK_HDR;
		*raw += ref.r_raw_size;
	} else if (store_chunk_parse(v, &cv) == 0) {
		/* A count of the older form, or none (an orphan kept): the header. */
		*bytes += cv.cv_len;
		*raw += cv.cv_raw_size;
	}
	rc = mdb_get(txn, s->s_dbi[DB_TAIL], &tk, &tv);
	if (rc == 0)
		*bytes += tv.mv_size;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * The key the walk is at, copied into op (where the next batch resumes; the
 * key's bytes in the map move when the cursor deletes it), and counted.
 */
static MDB_val
store_sweep_key(struct store_sweep_op *op, const MDB_val *k)
{
	MDB_val copy;

	op->so_last_len = k->mv_size < sizeof(op->so_last) ? k->mv_size : sizeof(op->so_last);
	memcpy(op->so_last, k->mv_data, op->so_last_len);
	op->so_keys++;
	copy.mv_size = op->so_last_len;
	copy.mv_data = op->so_last;
	return copy;
}

static int
store_sweep_chunks(struct store *s, MDB_txn *txn, MDB_cursor *c, struct store_sweep_op *op)
{
	MDB_val k, v, rk, rv_;
	int rc;

	for (rc = store_sweep_seek(c, op, &k, &v); rc == 0 && op->so_keys < op->so_max;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		bool deleted = false;

		k = store_sweep_key(op, &k);
		rk = k;
		rc = mdb_get(txn, s->s_dbi[DB_REF], &rk, &rv_);
		if (op->so_dry) {
			MDB_val tk = k, tv;
			rc = mdb_get(txn, s->s_dbi[DB_TAIL], &tk, &tv); /* brings its page in */
		} else if (rc == MDB_NOTFOUND) {
			rc = store_sweep_orphan(s, txn, c, &k, &deleted);
			if (rc == 0 && deleted)
				op->so_orphans++;
			else if (rc == 0) {
				op->so_kept++;
				rc = store_sweep_count(s, txn, &k, &v, NULL, &op->so_bytes, &op->so_raw);
			}
		} else if (rc == 0) {
			rc = store_sweep_count(s, txn, &k, &v, &rv_, &op->so_bytes,
			    &op->so_raw);
		}
		if (rc == MDB_NOTFOUND)
			rc = 0;
		if (rc != 0)
			return store_rc(rc);
	}
	if (rc == MDB_NOTFOUND)
		op->so_end = true;
	else if (rc != 0)
		return store_rc(rc);
	return 0;
}

static int
store_sweep_tails(struct store *s, MDB_txn *txn, MDB_cursor *c, struct store_sweep_op *op)
{
	MDB_val k, v;
	int rc;

	for (rc = store_sweep_seek(c, op, &k, &v); rc == 0 && op->so_keys < op->so_max;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		MDB_val ck, cv;

		ck = store_sweep_key(op, &k);
		rc = mdb_get(txn, s->s_dbi[DB_CHUNK], &ck, &cv);
		if (rc == MDB_NOTFOUND && !op->so_dry) {
			rc = mdb_cursor_del(c, 0);
			op->so_tails_deleted += rc == 0;
		}
		if (rc == MDB_NOTFOUND)
			rc = 0;
		if (rc != 0)
			return store_rc(rc);
	}
	if (rc == MDB_NOTFOUND)
		op->so_end = true;
	else if (rc != 0)
		return store_rc(rc);
	return 0;
}

/* Writes the frontier (the last chunk key counted) or, at the end, deletes it. */
static int
store_sweep_front(struct store *s, MDB_txn *txn, const struct store_sweep_op *op)
{
	MDB_val mk = { strlen(STORE_SWEEP_KEY), STORE_SWEEP_KEY }, v;
	uint8_t buf[1 + STORE_SWEEP_KEYLEN];
	int rc;

	if (op->so_end) {
		rc = mdb_del(txn, s->s_dbi[DB_META], &mk, NULL);
		return rc == MDB_NOTFOUND ? 0 : store_rc(rc);
	}
	buf[0] = 'k';
	memcpy(buf + 1, op->so_last, op->so_last_len);
	v.mv_size = 1 + op->so_last_len;
	v.mv_data = buf;
	return store_rc(mdb_put(txn, s->s_dbi[DB_META], &mk, &v, 0));
}

/* One batch (or its read beforehand): a store_txn_fn. */
static int
store_sweep_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_sweep_op *op = arg;
	MDB_cursor *c;
	int rc, rv;

	/* A full map runs the batch again from the same key. */
	op->so_end = false;
	op->so_last_len = 0;
	op->so_keys = op->so_bytes = op->so_raw = 0;
	op->so_orphans = op->so_kept = op->so_tails_deleted = 0;
	rc = mdb_cursor_open(txn, s->s_dbi[op->so_tails ? DB_TAIL : DB_CHUNK], &c);
	if (rc != 0)
		return store_rc(rc);
	rv = op->so_tails ? store_sweep_tails(s, txn, c, op) : store_sweep_chunks(s, txn, c, op);
	mdb_cursor_close(c);
	if (rv == 0 && op->so_keys == 0 && op->so_started) {
		/* Nothing after the last key: the walk goes on from there. */
		op->so_last_len = op->so_from_len;
		memcpy(op->so_last, op->so_from, op->so_from_len);
	}
	if (rv == 0 && !op->so_dry && !op->so_tails)
		rv = store_sweep_front(s, txn, op);
	return rv;
}

int
store_sweep_step(struct store *s, size_t max_keys, bool *ret_done, struct store_error *ret_err)
{
	struct store_sweep *sw = s->s_sweep;
	struct store_sweep_op one, *op = &one;
	int rv;

	ret_err->se_msg[0] = '\0';
	if (sw == NULL || sw->sw_ended) {
		*ret_done = true;
		return 0;
	}
	memset(op, 0, sizeof(*op));
	/* Only this function moves the walk on: read without the lock. */
	op->so_from = sw->sw_last;
	op->so_from_len = sw->sw_last_len;
	op->so_started = sw->sw_started;
	op->so_tails = sw->sw_tails;
	op->so_max = max_keys != 0 ? max_keys : STORE_SWEEP_BATCH;
	op->so_dry = true;
	rv = store_read(s, store_sweep_txn, op);
	if (rv != 0) {
		store_errorf(ret_err, "the read before a batch of \"%s\": %s",
		    op->so_tails ? "tail" : "chunk", err_str(rv));
		return rv;
	}
	op->so_dry = false;
	/* It frees room (orphans): on a full disk it may use the reserve. */
	rv = store_write_frees(s, store_sweep_txn, op, ret_err);
	if (rv != 0) {
		if (ret_err->se_msg[0] == '\0')
			store_errorf(ret_err, "a batch of \"%s\": %s", op->so_tails ? "tail" : "chunk",
			    err_str(rv));
		return rv;
	}
	/* Committed: the counts join the running totals, the walk moves on. */
	atomic_fetch_add(&s->s_chunk_bytes, op->so_bytes);
	atomic_fetch_add(&s->s_chunk_raw_bytes, op->so_raw);
	pthread_mutex_lock(&sw->sw_mu);
	if (!sw->sw_tails)
		sw->sw_keys += op->so_keys;
	sw->sw_orphans += op->so_orphans;
	sw->sw_kept += op->so_kept;
	sw->sw_tails_deleted += op->so_tails_deleted;
	memcpy(sw->sw_last, op->so_last, op->so_last_len);
	sw->sw_last_len = op->so_last_len;
	sw->sw_started = op->so_last_len != 0 || op->so_started;
	if (op->so_end && !sw->sw_tails) {
		/* The count is final; nothing more is deleted: the names go. */
		atomic_store(&s->s_sweep_counting, false);
		sw->sw_tails = true;
		sw->sw_started = false;
		sw->sw_last_len = 0;
		free(sw->sw_slots);
		sw->sw_slots = NULL;
		sw->sw_cap = sw->sw_n = 0;
	} else if (op->so_end) {
		sw->sw_ended = true;
		sw->sw_rv = 0;
		pthread_cond_broadcast(&sw->sw_cv);
	}
	*ret_done = sw->sw_ended;
	pthread_mutex_unlock(&sw->sw_mu);
	if (*ret_done)
		LOG_INFO("store: sweep after open done: %llu chunks, %llu orphan chunks deleted "
		    "(uploaded, never referenced by a checkpoint)%s%s, byte counts final",
		    (unsigned long long)sw->sw_keys, (unsigned long long)sw->sw_orphans,
		    sw->sw_kept != 0 ? ", some kept: named by a client since the open" : "",
		    sw->sw_tails_deleted != 0 ? ", stray tails deleted" : "");
	return 0;
}

/* ---- the thread ---- */

/*
 * A batch found the map full at --map-max: no retry can fit until a delete
 * frees pages in it, and with no room kept for deletes (--disk-reserve 0)
 * deletes fail there too. The sweep ends (store_sweep_wait() returns rv);
 * the count stays not final (s_sweep_counting: Stat's counting), the
 * orphans not reached stay until a start with room. Logged once.
 */
static void
store_sweep_give_up(struct store *s, int rv, const struct store_error *err)
{
	struct store_sweep *sw = s->s_sweep;
	unsigned long long orphans;
	bool tails;

	pthread_mutex_lock(&sw->sw_mu);
	tails = sw->sw_tails;
	orphans = (unsigned long long)sw->sw_orphans;
	sw->sw_ended = true;
	sw->sw_rv = rv;
	/* No batch runs again: HaveChunks and PutChunks note nothing more. */
	free(sw->sw_slots);
	sw->sw_slots = NULL;
	sw->sw_cap = sw->sw_n = 0;
	pthread_cond_broadcast(&sw->sw_cv);
	pthread_mutex_unlock(&sw->sw_mu);
	if (tails)
		LOG_WARN("store: sweep after open stopped: %s; the map cannot grow: stray tails "
		    "kept until a start with room (byte counts are final)", err->se_msg);
	else
		LOG_WARN("store: sweep after open stopped: %s; the map cannot grow, and deleting "
		    "orphan chunks needs room in it: %llu deleted, the rest kept, byte counts not final "
		    "(ckptctl stat: counting) until a start with room in the map (a larger "
		    "--map-max; --disk-reserve above 0 keeps room in it for deletes)", err->se_msg,
		    orphans);
}

static void *
store_sweep_main(void *arg)
{
	struct store *s = arg;
	struct store_sweep *sw = s->s_sweep;
	unsigned wait_ms = STORE_SWEEP_RETRY_MS;
	struct store_error err;
	bool done = false;

	for (;;) {
		int rv;

		pthread_mutex_lock(&sw->sw_mu);
		if (sw->sw_stop || sw->sw_ended) {
			pthread_mutex_unlock(&sw->sw_mu);
			break;
		}
		pthread_mutex_unlock(&sw->sw_mu);
		rv = store_sweep_step(s, STORE_SWEEP_BATCH, &done, &err);
		if (rv == 0) {
			wait_ms = STORE_SWEEP_RETRY_MS;
			continue;
		}
		if (rv == -ENOSPC && store_map_at_max(s)) {
			store_sweep_give_up(s, rv, &err);
			break;
		}
		/* A full disk most likely (room may come back): the NAS serves on; try again later. */
		LOG_WARN("store: sweep after open: %s; again in %u ms (byte counts not final)",
		    err.se_msg, wait_ms);
		pthread_mutex_lock(&sw->sw_mu);
		if (!sw->sw_stop) {
			struct timespec at;
			clock_gettime(CLOCK_REALTIME, &at);
			at.tv_sec += wait_ms / 1000;
			at.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
			if (at.tv_nsec >= 1000000000L) {
				at.tv_sec++;
				at.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&sw->sw_cv, &sw->sw_mu, &at);
		}
		pthread_mutex_unlock(&sw->sw_mu);
		wait_ms = wait_ms < 30000 ? 2 * wait_ms : 60000;
	}
	return NULL;
}

/* ---- open, wait, close ---- */

/* The frontier at open: nothing counted yet. */
static int
store_sweep_begin_txn(struct store *s, MDB_txn *txn, void *arg)
{
	MDB_val mk = { strlen(STORE_SWEEP_KEY), STORE_SWEEP_KEY }, v = { 1, "k" };

	(void)arg;
	return store_rc(mdb_put(txn, s->s_dbi[DB_META], &mk, &v, 0));
}

struct store_count_op {
	uint64_t c_bytes, c_raw;
};

/* Read-only (--check): the bytes from each chunk's header, and the tails. */
static int
store_sweep_count_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_count_op *op = arg;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	op->c_bytes = op->c_raw = 0;
	rc = mdb_cursor_open(txn, s->s_dbi[DB_CHUNK], &c);
	if (rc != 0)
		return store_rc(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		rc = store_sweep_count(s, txn, &k, &v, NULL, &op->c_bytes, &op->c_raw);
		if (rc != 0)
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : store_rc(rc);
}

int
store_sweep_start(struct store *s, bool manual, struct store_error *err)
{
	struct store_sweep *sw;
	struct store_count_op co;
	int rv;

	if (s->s_readonly) {
		rv = store_read(s, store_sweep_count_txn, &co);
		if (rv == 0) {
			atomic_store(&s->s_chunk_bytes, co.c_bytes);
			atomic_store(&s->s_chunk_raw_bytes, co.c_raw);
		}
		return rv;
	}
	sw = calloc(1, sizeof(*sw));
	if (sw == NULL)
		return -ENOMEM;
	rv = -pthread_mutex_init(&sw->sw_mu, NULL);
	if (rv != 0) {
		free(sw);
		return rv;
	}
	pthread_cond_init(&sw->sw_cv, NULL);
	s->s_sweep = sw;
	atomic_store(&s->s_chunk_bytes, 0);
	atomic_store(&s->s_chunk_raw_bytes, 0);
	/* The open's own write: a NAS starts on a full disk (store_room.c). */
	rv = store_write_frees(s, store_sweep_begin_txn, NULL, err);
	if (rv != 0)
		return rv; /* store_sweep_stop() frees it */
	atomic_store(&s->s_sweep_counting, true);
	if (manual)
		return 0;
	rv = -pthread_create(&sw->sw_thread, NULL, store_sweep_main, s);
	if (rv == 0)
		sw->sw_thread_ready = true;
	return rv;
}

int
store_sweep_wait(struct store *s, size_t *ret_orphans)
{
	struct store_sweep *sw = s->s_sweep;
	struct store_error err;
	bool done = false;
	int rv = 0;

	if (sw == NULL) {
		if (ret_orphans != NULL)
			*ret_orphans = 0;
		return 0;
	}
	if (!sw->sw_thread_ready) {
		while (rv == 0 && !done)
			rv = store_sweep_step(s, 0, &done, &err);
	} else {
		pthread_mutex_lock(&sw->sw_mu);
		while (!sw->sw_ended)
			pthread_cond_wait(&sw->sw_cv, &sw->sw_mu);
		rv = sw->sw_rv;
		pthread_mutex_unlock(&sw->sw_mu);
	}
	if (rv == 0 && ret_orphans != NULL)
		*ret_orphans = (size_t)sw->sw_orphans;
	return rv;
}

void
store_sweep_stop(struct store *s)
{
	struct store_sweep *sw = s->s_sweep;

	if (sw == NULL)
		return;
	if (sw->sw_thread_ready) {
		pthread_mutex_lock(&sw->sw_mu);
		sw->sw_stop = true;
		pthread_cond_broadcast(&sw->sw_cv);
		pthread_mutex_unlock(&sw->sw_mu);
		pthread_join(sw->sw_thread, NULL);
	}
	pthread_cond_destroy(&sw->sw_cv);
	pthread_mutex_destroy(&sw->sw_mu);
	free(sw->sw_slots);
	free(sw);
	s->s_sweep = NULL;
}

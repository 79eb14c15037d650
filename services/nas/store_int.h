/*
 * store_int.h: what the files of the store share; not for other modules
 * (store.h is the interface). One struct store, one transaction engine:
 *
 *   store.c        small helpers, transactions, group commit and map growth,
 *                  open (databases, format, keys) and close
 *   store_chunk.c  the chunk format (header, tails), chunk names and sealing
 *                  under keys, HaveChunks, PutChunks, GetChunks
 *   store_rec.c    records (sealed or not), component records, commit with its
 *                  fencing (epochs), quota and reference counting, retrieve, list
 *   store_keep.c   reference counts, delete, retention and pins
 *   store_spec.c   component specs
 *   store_grant.c  grants (Nas.Grant), and their end with the component's checkpoints
 *   store_check.c  the format 3 to 4 upgrade, check (scrub) and stat
 *   store_sweep.c  the sweep after open, in the background: orphan chunks
 *                  deleted, chunk bytes counted (its protocol is told there)
 *   store_room.c   the disk reserve: room kept past the data's end for deletes
 *
 * Internal functions keep the store_ prefix; those used by one file only stay
 * static there. Every write runs as a store_txn_fn through store_write(),
 * store_write_need() or store_write_frees() (group commit, store.c; the
 * disk reserve decides which, store_room.c), every read through store_read().
 */
#ifndef CKPT_NAS_STORE_INT_H
#define CKPT_NAS_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "key.h"
#include "seal.h"
#include "sha.h"
#include "store.h"

/*
 * Internal result of a transaction function: the map is full, grow it and
 * run the operation again. LMDB's code lies outside the errno range; it never
 * leaves the store (store_write() turns it into -ENOSPC).
 */
#define STORE_MAP_FULL MDB_MAP_FULL
/* store_chunk_find(): found, but not under the store's newest key. Not an LMDB code. */
#define STORE_FOUND_OLD (MDB_LAST_ERRCODE + 1)
#define STORE_MAXDBS 12
#define STORE_MAXREADERS 1024
#define STORE_CIDX_MAX (KEY_NAME_MAX + 1 + 8)
#define STORE_SEQ_LEN 8

enum store_db { DB_CKPT, DB_CIDX, DB_COMP, DB_CHUNK, DB_TAIL, DB_REF, DB_PIN, DB_KEEP, DB_META,
	DB_SPEC, DB_GRANT, DB_COUNT };

/*
 * Chunk values: 8-byte header (codec, flags, 2 zero bytes, raw size LE32),
 * then the data. A value longer than a page lives on overflow pages, the
 * first of which starts with LMDB's 16-byte page header: a chunk of exactly
 * 4096 * k bytes (a page-aligned run of a memory image) would take k + 1
 * pages. When the last page would hold at most STORE_TAIL_MAX bytes, those
 * bytes are cut off into "tail" (key: the same SHA-256), where small values
 * share leaf pages, and the header says so (STORE_CHUNK_SPLIT).
 */
#define STORE_CHUNK_HDR 8
#define STORE_CHUNK_SPLIT 0x01u
/*
 * Encryption at rest: the data after the header is the stored form sealed
 * (seal.h: key id, nonce, ciphertext, tag), authenticated with the chunk's
 * name, codec and raw size; the key is the chunk's keyed name (seal_name()).
 */
#define STORE_CHUNK_SEALED 0x02u
#define STORE_PAGE_HDR 16 /* LMDB's PAGEHDRSZ on 64-bit */
#define STORE_TAIL_MAX 1536u
#define STORE_FORMAT_KEY "format"
/*
 * 1: raw chunk values without a header (before zstd); 2: no tails (read as
 * 3); 3: records named by the plain SHA-256 of the whole checkpoint only
 * (upgraded on open: each record gets the digest of its chunk list); 4:
 * records with digests.
 */
#define STORE_FORMAT_DIGEST "4"
#define STORE_FORMAT_PLAIN "3"
#define STORE_FORMAT_NOTAIL "2"
/*
 * 5: format 4 with sealed values (STORE_CHUNK_SEALED, records beginning with
 * SEAL_RECORD_MAGIC) and a check value per key id ("key.<16 hex digits>" in
 * "meta"); set when a store first got a key, so that an older ckpt-nas
 * refuses the data instead of reading sealed records as corrupt ones.
 */
#define STORE_FORMAT_SEALED "5"
/*
 * 6: format 4 or 5 (sealed or not: the "key." entries in "meta" tell) whose
 * "ref" values may carry the chunk's raw size (STORE_REF_LEN). A 4 or 5 is
 * marked 6 on the first open for writing, nothing rewritten (values of the
 * older form are read as they are and upgraded when a commit rewrites
 * them): a ckpt-nas that knows 4 and 5 only refuses it at open, instead of
 * failing every commit and delete with a "ref" value it cannot read.
 */
#define STORE_FORMAT "6"
#define STORE_KEY_PREFIX "key."
#define STORE_ID_KEY "store_id"
/*
 * Free space under which a failed write is taken for a full disk: a write
 * that did not fit leaves less than the group it tried to write (chunks of
 * up to STORE_CHUNK_MAX, requests of --recv-max, 16 MiB by default).
 */
#define STORE_DISK_LOW (16u << 20)
/* In the data folder, beside LMDB's files: held by the process that has it open. */
#define STORE_LOCK_FILE "lock"

/*
 * "ref" values (key: the chunk's name in "chunk"): the number of references
 * to the chunk from records, one per occurrence (8 bytes, host order), then
 * its raw size (LE32): a commit checks the sizes its record gives against
 * these instead of reading each chunk's header (one overflow page, a page
 * fault in a process that wrote it with pwrite()). The older form has the
 * count only (STORE_REF_OLD: format 4 and 5, and --test-format3).
 */
#define STORE_REF_OLD 8
#define STORE_REF_LEN 12

struct store_ref {
	uint64_t r_count;
	uint32_t r_raw_size; /* 0: a value of the older form, the size unknown */
};

struct store {
	MDB_env *s_env;
	MDB_dbi s_dbi[DB_COUNT];
	/* Read side: held by every transaction. Write side: resizing the map. */
	pthread_rwlock_t s_lock;
	bool s_lock_ready;
	uint64_t s_map_size; /* written under the write side of s_lock */
	uint64_t s_map_max;
	uint32_t s_keep;     /* checkpoints kept per component unless overridden */
	atomic_uint_fast64_t s_node_quota; /* store_set_node_quota(); 0: none */
	size_t s_psize;      /* LMDB's page size */
	bool s_readonly;
	bool s_format3;      /* sc_format3: tests only */
	bool s_no_specs;     /* read-only, and a store from before specs: no "spec" yet */
	bool s_no_grants;    /* read-only, and a store from before grants: no "grant" yet */
	char *s_dir;         /* the data folder (statvfs of a failed write) */
	char s_id[STORE_ID_LEN + 1]; /* set at open, then constant */
	/* Encryption at rest: set at open, then constant. */
	struct seal_ring s_ring;
	bool s_seal;         /* s_ring has a key: new values are sealed */
	/* Key ids the store holds values of that s_ring lacks (their values fail to read). */
	uint8_t s_missing[SEAL_KEYS_MAX][SEAL_ID_LEN];
	size_t s_nmissing;
	int s_lock_fd;       /* STORE_LOCK_FILE, flock()ed until store_close(); -1: none */
	/*
	 * Bytes of chunk data held (stored, and raw): from 0 at open, counted by
	 * the sweep after open (store_sweep.c) and kept up to date by writes;
	 * exact once s_sweep_counting is false.
	 */
	atomic_uint_fast64_t s_chunk_bytes;
	atomic_uint_fast64_t s_chunk_raw_bytes;
	atomic_bool s_sweep_counting;
	struct store_sweep *s_sweep;       /* NULL: read-only, or not started */
	/*
	 * Group commit: writers queue here; one of them (the leader) runs every
	 * write queued in one LMDB transaction, so one fsync makes them all
	 * durable, while the next group queues up behind it.
	 */
	pthread_mutex_t s_wq_mu;              /* the queue; each writer waits on its own cv */
	bool s_wq_ready;
	bool s_wq_busy;                    /* a leader is running a group */
	struct store_wreq *s_wq_head;
	struct store_wreq **s_wq_tail;
	/*
	 * The commit thread (store_commit_main()): leads the groups of queued
	 * writes (store_write_async()), whose callers never lead, and admits
	 * those whose admission may have to commit (a nearly full disk's
	 * settling commit). Woken once when queued writes find no leader:
	 * s_wq_kick is then set, and s_wq_busy with it (the lead is the
	 * thread's until it runs).
	 */
	pthread_cond_t s_wq_cv;
	pthread_t s_wq_thread;
	bool s_wq_thread_on;               /* started: joined by store_close() */
	bool s_wq_kick;                    /* the queue is the thread's to lead */
	bool s_wq_quit;
	struct store_wreq *s_wq_admit;     /* queued writes the thread admits first */
	struct store_wreq **s_wq_admit_tail;
	atomic_uint_fast64_t s_writes;     /* write calls run */
	atomic_uint_fast64_t s_commits;    /* write transactions committed for them */
	/*
	 * The disk reserve (store_room.c): bytes allocated past the end LMDB
	 * uses, for deletes on a full disk. 0: none (read-only, sc_disk_reserve
	 * 0, or a file system without fallocate).
	 */
	atomic_uint_fast64_t s_reserve;    /* its least size: sc_disk_reserve */
	atomic_uint_fast64_t s_reserve_want; /* its size at the last take */
	atomic_uint_fast64_t s_reserve_bound; /* what two deletes may write at the last take: kept in the map too */
	atomic_uint_fast64_t s_room_end;   /* the end LMDB used at the last take */
	atomic_uint_fast64_t s_room_ahead; /* blocks taken past the reserve at the last take (0: short) */
	atomic_bool s_reserve_held;        /* the whole reserve was allocated at the end now used */
	/*
	 * What admitted writes not yet finished may need (store_room_admit()
	 * adds, store_room_release() takes off): room promised, weighed
	 * against by the next admissions.
	 */
	atomic_uint_fast64_t s_room_promised;
	pthread_mutex_t s_room_mu;         /* one store_room_take() at a time; guards s_reserve_limit */
	bool s_room_ready;
	uint64_t s_reserve_limit;          /* the end of the blocks taken last (0: none) */
	bool s_room_settle;                /* the databases are open: store_room_settle() may write */
};

typedef int (*store_txn_fn)(struct store *s, MDB_txn *txn, void *arg);
/* A queued write's end (store_write_async()): its result. */
typedef void (*store_done_fn)(void *arg, int rv);

struct store_chunk_val {
	unsigned cv_codec;
	uint32_t cv_raw_size;
	bool cv_split;            /* the data goes on in "tail" */
	bool cv_sealed;           /* the data (and tail) is sealed (STORE_CHUNK_SEALED) */
	const uint8_t *cv_data;   /* in the "chunk" value */
	size_t cv_len;
	const uint8_t *cv_tail;   /* store_chunk_read(): the "tail" value, or NULL */
	size_t cv_tail_len;
};

struct store_comp {
	bool sc_found;
	char sc_node[KEY_NAME_MAX + 1]; /* "" when it has no checkpoint left */
	uint64_t sc_seq;
	uint64_t sc_epoch;
};

struct store_put_op {
	Ckpt__V1__Chunk *const *p_chunks;
	size_t p_n;
	/*
	 * A store with keys: each chunk's data sealed (data.len + SEAL_OVERHEAD
	 * bytes, in p_buf) and its name.
	 */
	uint8_t **p_sealed;
	uint8_t *p_buf;
	uint8_t (*p_names)[SHA_LEN];
	uint32_t p_stored;
	uint64_t p_bytes;
	uint64_t p_raw;
};

/* What a delete (or retention) removed; also the state of store_delete(). */
struct store_delete_op {
	const char *d_node;
	const char *d_component;
	uint64_t d_seq;
	uint32_t d_deleted;
	uint64_t d_chunks_freed;
	uint64_t d_bytes_freed;
	uint64_t d_raw_freed;
};

/* store.c: small helpers, transactions and group commit, open and close */
void store_errorf(struct store_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int store_rc(int mdb_rc);
uint64_t store_be64_get(const uint8_t *p);
const char *store_printable(const char *s, char *buf, size_t len);
int store_check_name(const char *what, const char *name, struct store_error *err);
int store_check_filter(const char *what, const char *name, struct store_error *err);
int store_check_hashes(const ProtobufCBinaryData *hashes, size_t n, struct store_error *err);
void store_ref_str(const char *node, const char *component, uint64_t seq, char *buf, size_t len);
size_t store_cidx_key(const char *component, uint64_t seq, uint8_t *buf);
int store_read(struct store *s, store_txn_fn fn, void *arg);
/*
 * What a write is taken to need on disk when it does not say
 * (store_write()): a few pages of index, the small writes (specs, grants,
 * pins, retention settings, the open's).
 */
#define STORE_NEED_MIN (64u << 10)
/* store_write_need() for at most STORE_NEED_MIN bytes. */
int store_write(struct store *s, store_txn_fn fn, void *arg, struct store_error *err);
/*
 * A write that may need up to need bytes on disk: refused up front with
 * -ENOSPC (the disk is full, a reserve kept for deletes) when the room
 * outside the disk reserve does not hold it (store_room_admit()).
 */
int store_write_need(struct store *s, store_txn_fn fn, void *arg, uint64_t need,
    struct store_error *err);
/*
 * store_write_need() of chunk uploads (PutChunks): committed as any write,
 * but a group of them only does not sync its meta page (MDB_NOMETASYNC):
 * a crash may undo it (never tear the store), and the next commit that
 * syncs (a Store naming the chunks) makes it durable. One device flush per
 * upload instead of two.
 */
int store_write_upload(struct store *s, store_txn_fn fn, void *arg, uint64_t need,
    struct store_error *err);
/*
 * A write that frees room (a delete): never refused up front, it may use
 * the disk reserve. One the disk or the map had no room for runs once
 * more after store_room_settle(): what the last commit freed is then LMDB's
 * to reuse.
 */
int store_write_frees(struct store *s, store_txn_fn fn, void *arg, struct store_error *err);
/* store_write_frees() without the second run: the settling write itself. */
int store_write_run(struct store *s, store_txn_fn fn, void *arg, struct store_error *err);
/*
 * store_write_need() without waiting: queues fn and returns 0 (or -ENOMEM,
 * or -ENOSPC with err's message when the disk reserve refuses it: nothing
 * queued); done(done_arg, rv) is called once with store_write()'s
 * result, after the group's commit is durable (or failed), by the thread
 * leading the group, never the caller's: the caller neither commits nor
 * waits for the disk (it may be an nng thread, rpc.h's rs_direct). With no
 * leader running, it wakes the store's commit thread, which leads. An
 * admission that would have to commit first (store_room_admit() settling
 * on a nearly full disk) is the commit thread's too: done may then say
 * -ENOSPC. err and arg must live until done.
 */
int store_write_async(struct store *s, store_txn_fn fn, void *arg, uint64_t need,
    struct store_error *err, store_done_fn done, void *done_arg);
/*
 * The map is at --map-max: it cannot grow, and a write that found it full
 * (-ENOSPC) fits only once a delete frees pages in it.
 */
bool store_map_at_max(struct store *s);
void store_human(uint64_t v, char *buf, size_t len);
/* "64G", "256M", "12K" or bytes: the way sizes are written on the command line. */
void store_size_str(uint64_t v, char *buf, size_t len);
int store_keys_push(uint8_t (**keys)[KEY_MAX], size_t **klens, size_t *nkeys, size_t *cap,
    const void *key, size_t klen);

/* store_chunk.c: the chunk format, chunk names under keys, HaveChunks, PutChunks, GetChunks */
int store_chunk_parse(const MDB_val *v, struct store_chunk_val *ret);
int store_chunk_read(struct store *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v,
    struct store_chunk_val *ret);
void store_chunk_copy(const struct store_chunk_val *cv, uint8_t *out);
int store_chunk_find(struct store *s, MDB_txn *txn, const uint8_t *sha, uint8_t *ret_name,
    MDB_val *ret_val);
void store_chunk_name(const struct store *s, const uint8_t *sha, uint8_t *ret_name);
void store_chunk_name_of(const struct store *s, const uint8_t *id, const uint8_t *sha,
    uint8_t *ret_name);
void store_nokey_error(struct store_error *err, const char *what, const uint8_t id[SEAL_ID_LEN]);
int store_chunk_open(const struct store *s, struct seal_ctx *ctx, const uint8_t *name,
    struct store_chunk_val *cv, uint8_t *out, uint8_t ret_id[SEAL_ID_LEN]);
int store_chunk_reseal(struct store *s, MDB_txn *txn, const uint8_t *old_name,
    const MDB_val *old_val, const uint8_t *new_name, uint64_t *bytes, uint64_t *raw);
int store_put_run(struct store *s, MDB_txn *txn, struct store_put_op *op);
/*
 * Disk a new chunk may take beside its bytes: the rest of its last overflow
 * page (what "tail" does not take) and its "chunk" and "ref" entries.
 */
#define STORE_NEED_CHUNK 2048u
/* Disk a new record may take per chunk it lists: its entry in the list, its "ref" update. */
#define STORE_NEED_REF 64u
uint64_t store_put_need(const struct store_put_op *op);
int store_put_seal(struct store *s, struct store_put_op *op);
int store_check_chunks(Ckpt__V1__Chunk *const *chunks, size_t n, struct store_error *err);

/* store_rec.c: records, component records, commit and fencing, retrieve, list */
int store_record_open(const struct store *s, const MDB_val *k, const MDB_val *v, MDB_val *ret_plain,
    uint8_t **ret_buf, uint8_t ret_id[SEAL_ID_LEN]);
int store_db_last(struct store *s, MDB_txn *txn, enum store_db db, const uint8_t *prefix,
    size_t plen, MDB_val *ret_key, MDB_val *ret_val);
int store_db_first(struct store *s, MDB_txn *txn, enum store_db db, const uint8_t *prefix,
    size_t plen, uint8_t *ret_key, size_t *ret_len);
int store_comp_get(struct store *s, MDB_txn *txn, const char *component,
    struct store_comp *ret_comp);
int store_comp_refresh(struct store *s, MDB_txn *txn, const char *component);

/* store_keep.c: reference counts, delete, retention and pins */
int store_ref_decode(const MDB_val *v, struct store_ref *ret);
size_t store_ref_encode(const struct store_ref *r, uint8_t buf[STORE_REF_LEN]);
int store_retain(struct store *s, MDB_txn *txn, const char *component,
    struct store_delete_op *op);
void store_retain_done(struct store *s, const struct store_delete_op *op);

/* store_grant.c: grants */
int store_grant_drop_if_gone(struct store *s, MDB_txn *txn, const char *component);

/* store_sweep.c: the sweep after open (orphans, byte counts), in the background */
#define STORE_SWEEP_BATCH 2048u /* chunk keys per write transaction */
/*
 * Read-only: counts the bytes now. Otherwise marks the count as running
 * (s_sweep_counting) and starts the sweep's thread (manual: none, for
 * store_sweep_step()). store_sweep_stop() undoes it, even after a failure.
 */
int store_sweep_start(struct store *s, bool manual, struct store_error *err);
/* Stops the thread (after its batch) and frees the sweep; accepts none. */
void store_sweep_stop(struct store *s);
/*
 * In a write transaction that adds or frees the chunk of key (in "chunk"):
 * whether its bytes go into the running totals (true), or the sweep counts
 * it when it reaches it (false: it has not yet).
 */
bool store_sweep_passed(struct store *s, MDB_txn *txn, const void *key, size_t klen);
/*
 * Before HaveChunks or PutChunks: store_sweep_lock() (false: nothing to note,
 * and no lock taken), then store_sweep_touch() for each chunk name the
 * request gives (its key in "chunk"), then store_sweep_unlock(). The sweep
 * then deletes none of them; true: the sweep deletes this one (doomed):
 * HaveChunks answers it missing. Outside any transaction.
 */
bool store_sweep_lock(struct store *s);
bool store_sweep_touch(struct store *s, const uint8_t *name);
void store_sweep_unlock(struct store *s);

/* store_check.c: the format 3 to 4 upgrade, check (scrub), stat */
int store_upgrade_digests(struct store *s, MDB_txn *txn, size_t *ret_count);

/* store_room.c: the disk reserve */
/* Pages the reserve holds beyond the bound it computes (branch splits, the meta database). */
#define STORE_ROOM_SLACK 16u
#define STORE_ROOM_AHEAD_MIN (1u << 20) /* taken beyond the reserve (store_room_take()) */
/* Pages a settling commit (store_room_settle()) copies, and so frees, at most: meta, main, free pages. */
#define STORE_ROOM_SETTLE 8u
/* Free pages in a run this long hold a chunk of ckptctl's largest (64 KiB) and its header. */
#define STORE_ROOM_RUN 17u
/* Free pages sorted to find runs (8 MiB of page numbers); beyond, all count as runs. */
#define STORE_ROOM_SCAN_MAX ((size_t)1 << 20)
/* Sets up the reserve of reserve bytes (none when read-only) and takes it. */
int store_room_open(struct store *s, uint64_t reserve);
/* Accepts a store whose reserve was never set up. */
void store_room_close(struct store *s);
/* Allocates the reserve past the end LMDB now uses (after a commit). */
void store_room_take(struct store *s);
/*
 * 0 when a write that may need need bytes fits in the room outside the
 * reserve less what is promised to writes admitted before it and not yet
 * finished; the write then holds a promise of need bytes until its
 * writer calls store_room_release(s, need) (once, after the write's last
 * run: committed, failed, or refused). Else -ENOSPC, nothing promised,
 * and err's message says the disk is full.
 */
int store_room_admit(struct store *s, uint64_t need, struct store_error *err);
/*
 * store_room_admit() that never commits: -EAGAIN, nothing promised, where
 * store_room_admit() would run a settling commit (store_room_settle()) to
 * find the room. For a caller that must not wait for the disk.
 */
int store_room_admit_now(struct store *s, uint64_t need, struct store_error *err);
/* Gives back a promise store_room_admit() made. */
void store_room_release(struct store *s, uint64_t need);
/*
 * Commits a write that changes nothing the store reads, so that LMDB may
 * reuse what the last commit freed (it reuses a commit's freed pages only
 * two commits later). 0, or the write's error (err says why); -EAGAIN
 * before the databases are open or without a reserve.
 */
int store_room_settle(struct store *s, struct store_error *err);

#endif

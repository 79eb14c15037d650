/*
 * store: the NAS's LMDB layer (no networking; unit-tested on its own).
 *
 * One LMDB environment in a directory, opened with MDB_NOTLS and LMDB's
 * default sync flags, so every commit is on disk before it returns. Eleven
 * named databases (enum store_db in store_int.h; docs/storage.md):
 *
 *   "ckpt"   node \0 component \0 seq (uint64 BE)  -> packed ckpt.v1.CheckpointRecord
 *   "cidx"   component \0 seq (uint64 BE)          -> node name (no NUL)
 *   "comp"   component                             -> packed ckpt.v1.ComponentRecord
 *   "chunk"  SHA-256 (32 bytes)                    -> 8-byte header (codec, flags, raw
 *                                                     size) and the chunk as the writer
 *                                                     sent it (raw or zstd)
 *   "tail"   SHA-256 (32 bytes)                    -> the last bytes of a chunk value,
 *                                                     cut off when its last overflow page
 *                                                     would hold at most 1536 of them
 *                                                     (format 3 on; the header says so)
 *   "ref"    SHA-256 (32 bytes)                    -> reference count, uint64 in host
 *                                                     byte order (LMDB files are not
 *                                                     portable across byte orders anyway)
 *   "pin"    a "ckpt" key                          -> "" (pinned: kept by retention)
 *   "keep"   component                             -> its own retention, uint32 in host
 *                                                     byte order (absent: the default)
 *   "meta"   "format" -> "4" ("5": with keys); "store_id" -> 32 hex digits (store_id());
 *            "key.<16 hex digits>" -> the check value of a key the store sealed under
 *   "spec"   component                             -> packed ckpt.v1.ComponentSpec (ckptctl
 *                                                     apply; opaque here). Added in format 3:
 *                                                     made at the first open for writing; a
 *                                                     read-only open of an older store has none
 *   "grant"  component                             -> packed ckpt.v1.GrantRequest (Nas.Grant:
 *                                                     the node last granted its reading; in
 *                                                     clear, even with keys). Added in format
 *                                                     4 like "spec": no format bump
 *
 * With encryption at rest (sc_ring), "chunk", "tail" and "ref" are keyed by
 * the chunk's name, seal_name() of its SHA-256, instead (docs/storage.md).
 *
 * A component's seq is unique across nodes ("cidx" has one entry per seq), so
 * the latest checkpoint of a component is the last "cidx" key of its prefix.
 * Chunks are content-addressed and counted once per occurrence in a record;
 * a chunk whose count drops to zero is deleted with its "ref" entry. Chunks
 * uploaded but never referenced (the client died before Store) have no "ref"
 * entry and are collected by the sweep store_open() starts in the background
 * (store_sweep.c), which also counts the chunk bytes.
 *
 * The map grows on demand: when a write transaction finds the map full it is
 * aborted, the map doubled (up to the configured maximum) and the operation
 * run again. Resizing needs every transaction of the process closed, so every
 * transaction runs under the read side of a rwlock and a resize takes the
 * write side. At the maximum, writes fail with -ENOSPC and the store stays as
 * it was: reads go on working. With a disk reserve (sc_disk_reserve), what
 * a delete may write is kept out of the stores' reach, on the disk and in
 * the map, so deletes go through on a full disk and at the maximum.
 *
 * Every function returns 0 or a negative errno (err.h). Functions that take a
 * struct store_error fill it with a one-line message on failure. Output that
 * points into memory comes from the caller's arena and lives as long as it;
 * nothing returned points into the LMDB map. All functions are thread-safe.
 */
#ifndef CKPT_NAS_STORE_H
#define CKPT_NAS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "key.h"
#include "limit.h"
#include "ckpt/v1/nas.pb-c.h"
#include "ckpt/v1/store.pb-c.h"
#include "seal.h"

#define STORE_CHUNK_MAX LIMIT_CHUNK_MAX
#define STORE_HASHES_MAX LIMIT_HASHES_MAX
#define STORE_PUT_MAX LIMIT_PUT_CHUNKS_MAX
#define STORE_INLINE_MAX LIMIT_STORE_INLINE_MAX /* chunk data bytes inline in one Store */
#define STORE_REFS_MAX LIMIT_REFS_MAX
#define STORE_LIST_MAX LIMIT_LIST_MAX
#define STORE_GET_BYTES_MAX LIMIT_GET_BYTES_MAX
#define STORE_ERRMSG_MAX 256
#define STORE_SPEC_MAX LIMIT_SPEC_MAX
#define STORE_SPECS_MAX 4096u          /* specs one store holds in one ListSpecs answer */
#define STORE_ID_LEN 32                /* hex digits of a store id (16 random bytes) */

struct store;

#define STORE_KEEP_DEFAULT 3u          /* checkpoints kept per component */
#define STORE_KEEP_MAX 1000000u
#define STORE_PROBLEMS_MAX 100u        /* problem lines a check reports */
#define STORE_PROBLEM_LEN 160

/*
 * The largest LMDB map a process of this build can ask for. LMDB maps the whole
 * file at once and mdb_env_set_mapsize() takes a size_t: a 32-bit target
 * (armhf) has 3 to 4 GiB of address space, shared with the heap, the libraries
 * and the stacks, where 4 GiB would wrap to 0. store_open() refuses a larger
 * initial size and caps sc_map_max here.
 */
#if SIZE_MAX > UINT32_MAX
#define STORE_MAP_LIMIT ((uint64_t)1 << 50)
#else
#define STORE_MAP_LIMIT ((uint64_t)2 << 30)
#endif

struct store_config {
	const char *sc_dir;    /* created if missing */
	uint64_t sc_map_size;  /* initial map size, bytes */
	uint64_t sc_map_max;   /* the map grows up to this, bytes (capped at STORE_MAP_LIMIT) */
	uint32_t sc_keep;      /* checkpoints kept per component; 0: STORE_KEEP_DEFAULT */
	bool sc_readonly;      /* for --check: no write, no orphan collection */
	/*
	 * Tests only: keep (or make) the data in format 3, as versions before the
	 * chunk-list digest wrote it: records keep the sha256 sent and get no
	 * digest, so that opening it again without the flag tests the upgrade.
	 */
	bool sc_format3;
	/*
	 * Encryption at rest (seal.h; NULL or empty: none). sr_keys[0] seals new
	 * chunks and records, every key opens. Chunks are then named by
	 * seal_name() of their SHA-256 and sealed after compression; records are
	 * sealed whole (their key, node \0 component \0 seq, stays in clear).
	 * The store keeps a check value per key id in "meta": store_open() refuses
	 * a key whose check differs, keys of which none is known to a store that
	 * has keys (a wrong key), and no key for a store that has keys. A store
	 * without keys opened with one seals what is written from then on; what
	 * it held stays readable in clear. Values sealed under a key not given
	 * fail to read with -ENOKEY and a message naming the key id.
	 */
	const struct seal_ring *sc_ring;
	/*
	 * Tests only: no thread for the sweep after open; store_sweep_step()
	 * runs it a batch at a time (store_sweep_wait(): to its end).
	 */
	bool sc_sweep_manual;
	/*
	 * The least of the reserve kept allocated past the end of the data for
	 * deletes, so that a full disk can be emptied: more when a copy of the
	 * index needs more (store_room.c, docs/storage.md); 0: no reserve.
	 * Writes other than deletes are refused -ENOSPC ("the disk holding the
	 * NAS data ... is full") when they would have to use it.
	 */
	uint64_t sc_disk_reserve;
};

struct store_error {
	char se_msg[STORE_ERRMSG_MAX];
	/*
	 * store_commit(): the case of the error, NULL for none named: -ESTALE's
	 * (ERR_REASON_STALE_EPOCH, ERR_REASON_MISSING_CHUNKS) and -EDQUOT's
	 * LIMIT_N_QUOTA (the node quota, not the disk's).
	 */
	const char *se_reason;
};

struct store_stats {
	uint64_t ss_checkpoints;
	uint64_t ss_chunks;
	uint64_t ss_chunk_bytes;      /* as stored (compressed) */
	uint64_t ss_chunk_raw_bytes;  /* uncompressed */
	uint64_t ss_map_size;
	uint64_t ss_map_used;
	/* Since open: writes run, and the transactions that committed them (group commit). */
	uint64_t ss_writes;
	uint64_t ss_write_commits;
	char ss_store_id[STORE_ID_LEN + 1]; /* store_id() */
	/*
	 * The sweep after open is still counting: ss_chunk_bytes and
	 * ss_chunk_raw_bytes are below the totals, which they reach when it ends.
	 */
	bool ss_counting;
	/*
	 * The disk reserve for deletes (sc_disk_reserve): its size now, 0 when
	 * there is none; short when the disk could not give all of it, and only
	 * stores that LMDB's free pages hold beside it are let in.
	 */
	uint64_t ss_disk_reserve;
	bool ss_disk_reserve_short;
};

/*
 * Opens (creating if needed) the environment in cfg->sc_dir, without reading
 * the chunks: opened for writing, a thread then sweeps them in the
 * background, in bounded write transactions joining the group commit. It
 * deletes orphan chunks (no record references them), except any that a
 * HaveChunks or PutChunks named since the open, and counts the chunk bytes
 * (store_stats' ss_counting until it ends). *ret_orphans (may be NULL): 0,
 * kept for callers; store_sweep_wait() tells what the sweep deleted.
 */
int store_open(const struct store_config *cfg, struct store **ret_store, size_t *ret_orphans,
    struct store_error *ret_err);
/*
 * Waits for the sweep after open to end (with sc_sweep_manual: runs it);
 * *ret_orphans (may be NULL): the orphan chunks it deleted. 0 at once for a
 * store opened read-only; -ENOSPC when the sweep stopped on a full map at
 * --map-max (the counts stay not final: ss_counting). Tests, and tools that
 * want the final counts.
 */
int store_sweep_wait(struct store *s, size_t *ret_orphans);
/*
 * Tests only (sc_sweep_manual): one batch of the sweep, at most max_keys
 * keys (0: STORE_SWEEP_BATCH), in one write transaction; *ret_done: the
 * sweep has ended.
 */
int store_sweep_step(struct store *s, size_t max_keys, bool *ret_done,
    struct store_error *ret_err);
/* No call may be running. Accepts NULL. */
void store_close(struct store *s);
/*
 * The store's id: random, made when the data folder is created (or first
 * opened by a version that had none) and kept in "meta". "" for a store
 * opened read-only that has none yet.
 */
const char *store_id(const struct store *s);

/*
 * Bytes of checkpoints one node may hold, 0: no quota. What counts is the
 * logical size of the node's records (CheckpointInfo.size, holes included)
 * after a commit and its retention: deduplication does not lower it, as a
 * node pays for what it stored, not for what others share. A Store over it
 * fails -EDQUOT with se_reason LIMIT_N_QUOTA and commits nothing.
 * Thread-safe; applies to the commits that start after it.
 */
void store_set_node_quota(struct store *s, uint64_t bytes);

/* Indexes (into hashes) of the chunks the store lacks. */
int store_have_chunks(struct store *s, const ProtobufCBinaryData *hashes, size_t n,
    struct arena *a, uint32_t **ret_missing, size_t *ret_n_missing, struct store_error *ret_err);
/*
 * Verifies each chunk (decodes it, bounded by STORE_CHUNK_MAX, and checks the
 * SHA-256 of its raw bytes) and writes the new ones, in the form they came,
 * in one synced transaction. A chunk already present is left alone, so two
 * writers uploading the same chunk are both served. *ret_stored: how many
 * were new.
 */
int store_put_chunks(struct store *s, Ckpt__V1__Chunk *const *chunks, size_t n,
    uint32_t *ret_stored, struct store_error *ret_err);
/*
 * A prefix of the requested chunks, at least one, whose data stays within
 * max_bytes (capped at STORE_GET_BYTES_MAX), as stored (codec, raw_size).
 * Not hashed here (the reader verifies every chunk, Scrub verifies at rest):
 * -EBADMSG only for a chunk whose header is corrupt, -ENOENT when absent.
 * The returned chunks' sha256 fields point into hashes.
 */
int store_get_chunks(struct store *s, const ProtobufCBinaryData *hashes, size_t n,
    size_t max_bytes, struct arena *a, Ckpt__V1__Chunk ***ret_chunks, size_t *ret_n,
    struct store_error *ret_err);

/*
 * Room for an encoded reply of len bytes, which the caller fills at once:
 * returns 0 and points *ret_buf at it, or a negative errno.
 */
typedef int (*store_reserve_fn)(void *arg, size_t len, uint8_t **ret_buf);
/*
 * store_get_chunks() with the answer encoded as a ckpt.v1.GetChunksReply,
 * byte for byte what ckpt__v1__get_chunks_reply__pack() would make of
 * store_get_chunks()' chunks: in the one read transaction, it sizes the
 * reply, calls reserve once for that many bytes and writes them there,
 * copying each chunk's bytes once, from the map. reserve is not called when
 * the request fails before (bad hashes, a chunk absent or corrupt).
 * *ret_n: how many chunks the reply holds.
 */
int store_get_chunks_wire(struct store *s, const ProtobufCBinaryData *hashes, size_t n,
    size_t max_bytes, struct arena *a, store_reserve_fn reserve, void *reserve_arg,
    size_t *ret_n, struct store_error *ret_err);

/*
 * Commits a checkpoint record (see nas.proto, StoreRequest), durably, all or
 * nothing, and applies the component's retention in the same transaction
 * (*ret_retained: older checkpoints deleted; may be NULL). -ESTALE for an
 * epoch older than the component's newest or for absent chunks, -EEXIST
 * when the key holds a different checkpoint (the same one again is a
 * success: *ret_existed is set), -EINVAL for bad input or a chunk whose
 * stored size differs from the record's, -ENOSPC when full.
 *
 * The record's digest is computed from the request's chunk list (nas.proto)
 * and a request whose digest differs is -EINVAL, nothing committed; the
 * bytes are not read again: chunks are verified when they arrive
 * (store_put_chunks). A plain sha256 (older writers) is recorded as sent.
 *
 * req->inline_chunks (a small checkpoint in one round trip): verified as
 * store_put_chunks() verifies, at most STORE_PUT_MAX of them and
 * STORE_INLINE_MAX bytes of data, and written in the commit's transaction,
 * before its chunks are looked up: the record and its new chunks become
 * visible together or not at all. A new inline chunk the list does not name
 * is -EINVAL; one the store holds already is left alone.
 */
int store_commit(struct store *s, const Ckpt__V1__StoreRequest *req, struct arena *a,
    Ckpt__V1__CheckpointInfo **ret_info, bool *ret_existed, uint32_t *ret_retained,
    struct store_error *ret_err);
/* What store_commit() returns through its pointers, for store_commit_async(). */
struct store_commit_result {
	Ckpt__V1__CheckpointInfo *cr_info;
	bool cr_existed;
	uint32_t cr_retained;
};
typedef void (*store_commit_done_fn)(void *arg, int rv, const struct store_commit_result *res);
/*
 * store_commit() without waiting for its group: checks, seals and looks on
 * the caller's thread, then queues its write and goes on: the caller never
 * commits nor waits for the disk (the store's commit thread leads a group
 * nobody leads; store_write_async()). done(done_arg, rv, res) is called
 * exactly once, with store_commit()'s result (res's fields set when rv is
 * 0), after the commit is durable: on the caller's thread before this
 * returns (a refusal, a checkpoint stored already), or on the thread
 * leading the group (the commit thread, or a synchronous writer's). a (which holds
 * the result), req and err must live until done. Returns 0, or -ENOMEM
 * (done not called, nothing done).
 */
int store_commit_async(struct store *s, const Ckpt__V1__StoreRequest *req, struct arena *a,
    struct store_error *err, store_commit_done_fn done, void *done_arg);
/*
 * node "" : whichever node stored it; seq 0: the latest. -ENOENT when absent.
 */
int store_retrieve(struct store *s, const char *node, const char *component, uint64_t seq,
    struct arena *a, Ckpt__V1__CheckpointRecord **ret_rec, struct store_error *ret_err);
/*
 * Checkpoints in key order (node, component, seq), filtered by node and/or
 * component ("" : any), only the newest of each node/component with
 * latest_only. At most max entries (0 or more than STORE_LIST_MAX:
 * STORE_LIST_MAX), the first ones in key order; *ret_truncated tells
 * whether there may be more.
 */
int store_list(struct store *s, const char *node, const char *component, bool latest_only,
    size_t max, bool *ret_truncated, struct arena *a, Ckpt__V1__CheckpointInfo ***ret_infos,
    size_t *ret_n, struct store_error *ret_err);
/*
 * Deletes node/component@seq (seq 0: every seq of node/component), releases
 * its chunks and frees those no longer referenced. -ENOENT when nothing
 * matched. When the component has no checkpoint left on any node, its grant
 * goes too (store_grant_get() then answers -ENOENT).
 */
int store_delete(struct store *s, const char *node, const char *component, uint64_t seq,
    uint32_t *ret_deleted, uint64_t *ret_chunks_freed, struct store_error *ret_err);
int store_stat(struct store *s, struct store_stats *ret_stats, struct store_error *ret_err);

/*
 * Pins (keeps regardless of retention) or unpins node/component@seq, which
 * must exist. Unpinning applies retention at once (*ret_deleted).
 */
int store_pin(struct store *s, const char *node, const char *component, uint64_t seq, bool pinned,
    bool *ret_changed, uint32_t *ret_deleted, struct store_error *ret_err);
/*
 * Sets how many checkpoints of component are kept (0: the store's default)
 * and applies it. *ret_keep: the number now in force. -ENOENT for a
 * component with no checkpoint and no setting of its own (a typo, most
 * likely): nothing is set.
 */
int store_set_keep(struct store *s, const char *component, uint32_t keep, uint32_t *ret_keep,
    uint32_t *ret_deleted, struct store_error *ret_err);

/* A stored spec: its packed bytes, in the caller's arena. */
struct store_spec {
	uint8_t *ss_data;
	size_t ss_len;
	uint64_t ss_epoch; /* get: the component's newest epoch seen ("comp"), 0: none */
};

/*
 * Component specs, by component name (the value is opaque bytes, at most
 * STORE_SPEC_MAX). put replaces one of the same name (*ret_replaced) and
 * tells the component's newest epoch the store has seen (*ret_epoch, 0: none;
 * kept when its checkpoints are deleted, so a fresh start can go above it);
 * get: -ENOENT when none; list: every spec in name order (at most
 * STORE_SPECS_MAX); delete: *ret_existed tells whether there was one.
 */
int store_spec_put(struct store *s, const char *component, const uint8_t *data, size_t len,
    bool *ret_replaced, uint64_t *ret_epoch, struct store_error *ret_err);
int store_spec_get(struct store *s, const char *component, struct arena *a,
    struct store_spec *ret_spec, struct store_error *ret_err);
int store_spec_list(struct store *s, struct arena *a, struct store_spec **ret_specs, size_t *ret_n,
    struct store_error *ret_err);
int store_spec_delete(struct store *s, const char *component, bool *ret_existed,
    struct store_error *ret_err);

/*
 * Grants (Nas.Grant; grant.h keeps them in memory and writes them through):
 * one per component, the node last granted the reading of its checkpoints.
 * put replaces the component's grant (*ret_replaced: another node held it;
 * may be NULL), durably, in clear (names only, like records' keys); get:
 * -ENOENT when none; each: fn for every grant in component order, in one
 * read transaction (fn must not call the store; a nonzero return stops the
 * walk and is returned); *ret_bad: values that do not decode, skipped (may
 * be NULL). A delete that leaves a component without checkpoints on any node
 * deletes its grant in the same transaction (store_delete()).
 */
typedef int (*store_grant_fn)(void *arg, const char *component, const char *node,
    uint64_t epoch);
int store_grant_put(struct store *s, const char *component, const char *node, uint64_t epoch,
    bool *ret_replaced, struct store_error *ret_err);
int store_grant_get(struct store *s, const char *component, char ret_node[KEY_NAME_MAX + 1],
    uint64_t *ret_epoch, struct store_error *ret_err);
int store_grant_each(struct store *s, store_grant_fn fn, void *arg, size_t *ret_bad,
    struct store_error *ret_err);

#define STORE_CHECK_KEYS 32u           /* key ids store_check() counts apart */

/* Chunks and records sealed under one key id (store_check()). */
struct store_check_key {
	char kk_id[SEAL_ID_HEX_LEN + 1];
	bool kk_loaded;             /* the store was opened with this key */
	uint64_t kk_chunks, kk_records;
};

/* What store_check() found. */
struct store_check {
	uint64_t sk_chunks, sk_records;
	uint64_t sk_bad_chunks;     /* undecodable or not matching their SHA-256 */
	uint64_t sk_missing;        /* referenced, absent */
	uint64_t sk_bad_refcounts;  /* count differs from the records' references */
	uint64_t sk_orphans;        /* held, unreferenced (collected by the sweep after the next open) */
	uint64_t sk_bad_records;
	uint64_t sk_locked;         /* sealed under a key the store was not given: unchecked */
	uint64_t sk_plain_chunks, sk_plain_records; /* not sealed */
	struct store_check_key sk_keys[STORE_CHECK_KEYS];
	size_t sk_nkeys;
	size_t sk_nproblems, sk_more;
	char sk_problems[STORE_PROBLEMS_MAX][STORE_PROBLEM_LEN];
};

/*
 * Decodes and hashes every chunk, recounts every reference from the records,
 * in one read transaction. Problems are reported in *ret_check, not as an
 * error; an error means the check could not run.
 */
int store_check(struct store *s, struct store_check *ret_check, struct store_error *ret_err);
/* No corruption found and nothing left unchecked (orphans are not corruption). */
bool store_check_clean(const struct store_check *ck);

#endif

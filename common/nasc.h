/*
 * nasc: the client side of the NAS data path, shared by the agent, the
 * manager and ckptctl.
 *
 * A checkpoint moves in bounded pieces: the writer reads it in windows of
 * NASC_BATCH bytes, splits each window into content-defined chunks
 * (chunk.h: about 16 KiB, configurable), hashes each chunk (SHA-256 of its
 * raw bytes), asks the NAS which of the window's chunks it lacks (one
 * HaveChunks per window), compresses only those (zchunk.h: zstd, or raw
 * when that does not pay) and sends them in messages of at most NASC_BATCH
 * bytes (PutChunks), then commits the record (Store) with its digest, the
 * ckpt-chunks-sha256 of the chunk list (digest.h): the bytes are read once.
 * A small checkpoint (NASC_INLINE_MAX) skips HaveChunks and PutChunks: its
 * chunks ride in the Store, one round trip and one NAS commit.
 * The reader gets the record (Retrieve), checks its digest against its chunk
 * list, fetches chunks in bounded batches (GetChunks), decompresses each and
 * verifies every chunk's hash; a record of the older format (a plain
 * SHA-256, no digest) also has its whole SHA-256 checked. Memory is bounded
 * by NASC_BATCH, not by the checkpoint size.
 *
 * A store given changed ranges (nasc_store_hinted) cuts and hashes only
 * around them when the client remembers the list of the state they are
 * relative to, and reuses that list elsewhere: the same list, entry for
 * entry, as reading it whole (docs/data-path.md, "Changed ranges").
 *
 * A store of bytes in memory without hints walks the remembered list's
 * fingerprints instead (bcache.h, the base cache): chunks whose bytes did not
 * change are taken as they are, neither cut nor hashed with SHA-256; the
 * list is again the one a whole read makes. nasc_cache_export() and
 * nasc_cache_import() carry a remembered list to and from a file (ckptctl
 * put --cache), so that separate processes benefit too.
 *
 * Threads: each client has one worker pool (pool.h), made on its first
 * store or retrieve, that cuts and hashes half of each window, sends the
 * PutChunks and fetches and verifies the GetChunks batches (two in flight;
 * a retrieve into memory decodes them in place into its buffer).
 *
 * With several NAS URLs, a call that finds a NAS unavailable goes to the next.
 * Such a list names addresses of one store (replicas or front-ends of the
 * same data), never several stores: nasc_check_store() refuses a list whose
 * NAS answer different store ids (Nas.Stat store_id).
 */
#ifndef CKPT_NASC_H
#define CKPT_NASC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bcache.h"
#include "chunk.h"
#include "ckpt/v1/nas.pb-c.h"
#include "key.h"
#include "rpc.h"
#include "sha.h"

/*
 * Small checkpoints: one of at most this many bytes is stored in one round
 * trip and one NAS commit, its chunks inline in the Store (nas.proto,
 * StoreRequest.inline_chunks), instead of HaveChunks, PutChunks and Store.
 * Well under the NAS's limit on inline data (STORE_INLINE_MAX, 4 MiB) and
 * its message limit (--recv-max, 16 MiB): 64 KiB is the largest chunk the
 * default chunking makes, and past it the normal path's dedup and
 * pipelining pay for their round trips. docs/data-path.md, "Small checkpoints".
 */
#define NASC_INLINE_MAX (64u << 10)
/* Obsolete (chunks are content-defined now): kept for estimates only. */
#define NASC_CHUNK (1u << 20)
#define NASC_BATCH (4u << 20)
/*
 * A store from its base (hints or fingerprints) whose new chunks and list
 * fit in a Store of this many bytes sends them inline in it, not by
 * PutChunks (nasc_store_inline()); a NAS takes that much inline
 * (LIMIT_STORE_INLINE_MAX) and reads such a message as a PutChunks of
 * NASC_BATCH.
 */
#define NASC_STORE_INLINE LIMIT_STORE_INLINE_MAX
/* Largest raw chunk a reader accepts (the NAS's own limit). */
#define NASC_RAW_MAX LIMIT_CHUNK_MAX
/* How many older sequences nasc_retrieve_fallback() tries after a DATA_LOSS. */
#define NASC_FALLBACK_MAX 8
#define NASC_URLS_MAX 8

struct nasc;

struct nasc_info {
	char ni_node[KEY_NAME_MAX + 1];
	char ni_component[KEY_NAME_MAX + 1];
	char ni_kind[32];
	uint64_t ni_seq;
	uint64_t ni_epoch;
	uint64_t ni_size;
	uint64_t ni_created_unix_ms;
	/* The identity digest, ckpt-chunks-sha256 (digest.h): set by every store and read. */
	uint8_t ni_digest[SHA_LEN];
	bool ni_has_digest;
	/* The plain SHA-256 of the bytes, when the record has one (older format). */
	uint8_t ni_sha256[SHA_LEN];
	bool ni_has_sha256;
	/* The writer's chunking (chunk.h); 0: not recorded (older format). */
	uint32_t ni_chunk_min, ni_chunk_avg, ni_chunk_max;
	uint32_t ni_chunk_count;
	/* nasc_store_hinted() only: chunk entries taken from the previous list (0: read whole). */
	uint32_t ni_reused_chunks;
};

/* What this client sent and read (since nasc_open), for benchmarks and logs. */
struct nasc_stats {
	uint64_t ns_store_bytes;      /* raw bytes of checkpoints stored */
	uint64_t ns_put_bytes;        /* chunk bytes sent with PutChunks (after compression) */
	uint64_t ns_put_chunks;       /* chunks sent */
	uint64_t ns_dedup_chunks;     /* chunks the NAS already held */
	uint64_t ns_get_bytes;        /* chunk bytes received with GetChunks */
	uint64_t ns_sent_bytes;       /* encoded HaveChunks, PutChunks and Store requests */
	uint64_t ns_cut_bytes;        /* bytes the chunker scanned for cut points */
	uint64_t ns_hashed_bytes;     /* bytes of data chunks hashed (holes and reused chunks are not) */
	uint64_t ns_hinted_stores;    /* nasc_store_hinted() calls that used their hints */
	uint64_t ns_reused_chunks;    /* chunk entries taken from the previous list unread */
	uint64_t ns_inline_stores;    /* small checkpoints stored in one Store, chunks inline */
	uint64_t ns_held_inline;      /* stores from a base whose new chunks went inline in the Store */
	uint64_t ns_fp_stores;        /* stores walked against a remembered list's fingerprints */
	uint64_t ns_fp_bytes;         /* bytes fingerprinted (XXH3-128) */
	uint64_t ns_reused_bytes;     /* bytes of chunk entries a walk or hints took unchanged */
	uint64_t ns_stale_retries;    /* stores redone whole: their remembered list named
	                               * chunks the NAS no longer held (missing_chunks) */
	uint64_t ns_race_retries;     /* stores redone whole, their base not remembered: chunks
	                               * the NAS had said it held, or had been sent, were gone
	                               * at the commit (deleted meanwhile, or swept after a NAS
	                               * restart; missing_chunks) */
};

/* Set by nasc_retrieve_fallback() when it did not read the sequence asked for. */
struct nasc_fallback {
	uint64_t nf_bad_seq;          /* first sequence found corrupt (DATA_LOSS); 0: none */
	unsigned nf_skipped;          /* sequences skipped */
	char nf_bad_msg[RPC_ERRMSG_MAX]; /* the DATA_LOSS message of nf_bad_seq */
};

struct nasc_put {
	const char *np_node;
	const char *np_component;
	const char *np_kind;  /* "demo", "raw"... */
	uint64_t np_seq;      /* 0: the NAS assigns latest + 1 */
	uint64_t np_epoch;
};

/* Reads up to len bytes; returns the count, 0 at the end, or a negative errno. */
typedef ssize_t (*nasc_read_fn)(void *arg, void *buf, size_t len);
/* Consumes len bytes; returns 0 or a negative errno. */
typedef int (*nasc_write_fn)(void *arg, const void *buf, size_t len);
/*
 * Consumes the bytes of iov[0..count) in order (count at most NASC_IOV_MAX,
 * as writev(2) takes them); may change iov (util_writev_all()). 0 or a
 * negative errno.
 */
struct iovec;
typedef int (*nasc_writev_fn)(void *arg, struct iovec *iov, int count);
#define NASC_IOV_MAX 1024
/* Forgets everything written so far (for a fallback); 0 or a negative errno. */
typedef int (*nasc_reset_fn)(void *arg);

/* flags: RPC_CLIENT_DIAL_NOW to fail at once when no NAS can be reached. */
int nasc_open(char *const *urls, size_t n, unsigned flags, struct nasc **ret_nasc,
    struct rpc_error *ret_err);
/* nasc_open() following the TLS settings tls (tls.h, rpc_client_open_tls()). */
int nasc_open_tls(char *const *urls, size_t n, unsigned flags, const struct tls_conf *tls,
    struct nasc **ret_nasc, struct rpc_error *ret_err);
void nasc_close(struct nasc *n);
/* rpc_client_abort() on every NAS: pending calls return at once. Accepts NULL. */
void nasc_abort(struct nasc *n);
/*
 * Chunk size bounds of the writer (chunk.h; defaults CHUNK_*_DEFAULT).
 * -EINVAL when they are not min < avg < max within the chunker's limits.
 * Not thread-safe against a store in progress.
 */
int nasc_set_chunking(struct nasc *n, uint32_t min, uint32_t avg, uint32_t max);
/*
 * Caps the bytes of PutChunks requests (rate.h): each waits for its bytes
 * before it is sent; nothing else (reads, HaveChunks, Store) is capped.
 * r may be shared by several clients and must outlive n; NULL: no cap.
 * nasc_abort() ends a wait within RATE_STEP_MS. Set before storing.
 */
struct rate;
void nasc_set_rate(struct nasc *n, struct rate *r);
void nasc_get_stats(struct nasc *n, struct nasc_stats *ret_stats);
/*
 * Whether small checkpoints go inline (NASC_INLINE_MAX; on by default), and
 * the new chunks of a store from its base (NASC_STORE_INLINE). Off, every
 * store takes HaveChunks, PutChunks and Store, as before inline chunks
 * (bench/fleet.sh measures both in one run). Set before storing; on, it
 * also forgets what a NAS taught (that it ignores inline chunks, its limit).
 */
void nasc_set_inline(struct nasc *n, bool on);
/*
 * Tests only: store as versions before the chunk-list digest did, with a
 * plain SHA-256 of the whole checkpoint (a second pass) and no digest, no
 * hints; what `ckpt-nas --test-format3` takes, to make a store to upgrade.
 */
void nasc_set_format3(struct nasc *n, bool on);

/*
 * Whether stores of bytes in memory fingerprint their chunks for the next
 * store of the component (on by default: about 1/10 of a whole read's CPU;
 * off, the base cache is neither filled nor used). Set before storing.
 */
void nasc_set_fingerprints(struct nasc *n, bool on);
/*
 * The list this client remembers for node/component, with its fingerprints
 * (from its last store of it, from bytes in memory without hints), as a
 * bcache_list of the client's chunking: -ENOENT when there is none, -ENOMEM.
 * bcache_list_free() it.
 */
int nasc_cache_export(struct nasc *n, const char *node, const char *component,
    struct bcache_list *ret_list);
/*
 * Remembers l (copied) as the last stored list of node/component, as if this
 * client had stored it: its chunks are not asked about and, when l has the
 * client's chunking, the next store walks its fingerprints. -EBADMSG (with a
 * reason in err) when l is not consistent (bcache_list_check); -ENOMEM. A
 * list whose chunks the NAS no longer holds costs one refused Store, then a
 * whole read (as for any remembered list).
 */
int nasc_cache_import(struct nasc *n, const char *node, const char *component,
    const struct bcache_list *l, char *err, size_t errlen);

/*
 * A checkpoint of at most NASC_INLINE_MAX bytes (from a reader: one that
 * ends within that many) goes in one Store with its chunks inline, but for
 * chunks this client stored in the component's previous checkpoint (its
 * remembered list; no Retrieve is made for it). Refused for a missing chunk
 * (one remembered was deleted since), it is sent again with every chunk;
 * refused so with every chunk inline (a NAS older than inline chunks), it
 * takes the normal path, and this client keeps to it from then on.
 * nasc_store_hinted() ignores the hints of such a checkpoint.
 *
 * Any other store refused for missing chunks (FAILED_PRECONDITION, reason
 * missing_chunks: chunks deleted by rm or retention while it ran, or its
 * uploads swept by a NAS that restarted before its commit) is made once
 * more, whole, when its bytes can be read again (a buffer or a mapping;
 * ns_stale_retries or ns_race_retries count it). From a reader it is not:
 * the refusal is returned, its message saying to store it again.
 */
int nasc_store(struct nasc *n, const struct nasc_put *p, nasc_read_fn rd, void *rd_arg,
    unsigned timeout_ms, struct nasc_info *ret_info, struct rpc_error *ret_err);
int nasc_store_buf(struct nasc *n, const struct nasc_put *p, const void *buf, size_t len,
    unsigned timeout_ms, struct nasc_info *ret_info, struct rpc_error *ret_err);

/*
 * nasc_store_buf() of a read-only mapping of a regular file (mmap, from its
 * first byte, len > 0): the pages of the windows already sent are dropped
 * (MADV_DONTNEED), so the resident set is a few windows, not the file; a
 * page read again comes back from the file. Never for anonymous memory,
 * which MADV_DONTNEED zeroes.
 */
int nasc_store_mapped(struct nasc *n, const struct nasc_put *p, const void *map, size_t len,
    unsigned timeout_ms, struct nasc_info *ret_info, struct rpc_error *ret_err);

/* A byte range of a checkpoint: offset and length. */
struct nasc_range {
	uint64_t nr_off;
	uint64_t nr_len;
};
struct nasc_hints;

/*
 * nasc_store_mapped() of map, a mapping of the regular file fd: a store
 * walked against the base cache (bcache.h) reads the file with pread()
 * instead of through the mapping, which costs page tables (about 3 times
 * the CPU here); the rest is nasc_store_mapped(). h, when not NULL, are
 * changed ranges as for nasc_store_hinted(): only the pages around them are
 * read (through the mapping).
 */
int nasc_store_file(struct nasc *n, const struct nasc_put *p, int fd, const void *map, size_t len,
    const struct nasc_hints *h, unsigned timeout_ms, struct nasc_info *ret_info,
    struct rpc_error *ret_err);

/*
 * What changed since an earlier state of the same component (the "base"):
 * every byte of the new state outside the ranges, at an offset below the
 * base's length, equals the base's byte at that offset. Ranges may overlap,
 * come in any order and reach past the end (they are clipped); at most
 * NASC_RANGES_MAX of them.
 */
struct nasc_hints {
	uint8_t nh_base_digest[SHA_LEN]; /* the base's identity digest (nasc_info ni_digest) */
	const struct nasc_range *nh_ranges;
	size_t nh_count;
};

#define NASC_RANGES_MAX (1u << 20)

/*
 * nasc_store_buf() helped by hints. When this client's last store of
 * node/component was the base (same digest, same chunking), only the chunks
 * around the changed ranges are cut and hashed again: from the last previous
 * cut point before each range, until a cut point of the previous list is
 * reached again with no change within the chunker's reach (cp_max bytes);
 * every other chunk entry is the previous list's. Chunk boundaries depend on
 * the bytes within cp_max of each cut only, so the list is the one
 * nasc_store_buf() makes of the same bytes, chunk for chunk. Otherwise (no
 * remembered list, another base, a retry after a refusal) it is exactly
 * nasc_store_buf(). Bytes outside those stretches are not read. Wrong hints
 * (a change outside the ranges) make a wrong chunk list: callers pass only
 * ranges they know cover every change.
 */
int nasc_store_hinted(struct nasc *n, const struct nasc_put *p, const void *buf, size_t len,
    const struct nasc_hints *h, unsigned timeout_ms, struct nasc_info *ret_info,
    struct rpc_error *ret_err);

/*
 * node "" (or NULL): whichever node stored it; seq 0: the latest. Verifies the
 * record's digest against its chunk list and each chunk against its hash
 * (and a plain SHA-256 when the record has one); a mismatch is -EBADMSG
 * (DATA_LOSS). ret_info->ni_digest is always set. Bytes are
 * handed to wr as they arrive and verified: on -EBADMSG the writer has
 * already seen bytes of a bad checkpoint and must discard them.
 */
int nasc_retrieve(struct nasc *n, const char *node, const char *component, uint64_t seq,
    nasc_write_fn wr, void *wr_arg, unsigned timeout_ms, struct nasc_info *ret_info,
    struct rpc_error *ret_err);
/* Same into a malloc'ed buffer (free() it); bounded by max_size (-EFBIG beyond). */
int nasc_retrieve_buf(struct nasc *n, const char *node, const char *component, uint64_t seq,
    size_t max_size, unsigned timeout_ms, void **ret_buf, size_t *ret_len,
    struct nasc_info *ret_info, struct rpc_error *ret_err);

/*
 * nasc_retrieve(), and when the checkpoint read turns out corrupt (-EBADMSG,
 * DATA_LOSS) the previous sequences of the component, newest first, up to
 * NASC_FALLBACK_MAX of them: reset (which must not be NULL for a fallback to
 * happen) is called before each new attempt. On success *ret_info is the
 * checkpoint actually read and *ret_fb says whether and why it is not the one
 * asked for. Errors other than DATA_LOSS are returned as they are.
 */
int nasc_retrieve_fallback(struct nasc *n, const char *node, const char *component,
    uint64_t seq, nasc_write_fn wr, nasc_reset_fn reset, void *arg, unsigned timeout_ms,
    struct nasc_info *ret_info, struct nasc_fallback *ret_fb, struct rpc_error *ret_err);
/*
 * nasc_retrieve_fallback() handing the bytes to a vectored writer as they
 * lie: each chunk, once verified, straight from the GetChunks reply it came
 * in (a compressed one from where it was decoded), each hole as pieces of a
 * zero buffer; no copy into a batch buffer, no zeroing (ckptctl get writes
 * them with writev(2)). The pieces are valid during the call only.
 */
int nasc_retrieve_fallback_v(struct nasc *n, const char *node, const char *component,
    uint64_t seq, nasc_writev_fn wr, nasc_reset_fn reset, void *arg, unsigned timeout_ms,
    struct nasc_info *ret_info, struct nasc_fallback *ret_fb, struct rpc_error *ret_err);
/* The same into a malloc'ed buffer (free() it), bounded by max_size. */
int nasc_retrieve_buf_fallback(struct nasc *n, const char *node, const char *component,
    uint64_t seq, size_t max_size, unsigned timeout_ms, void **ret_buf, size_t *ret_len,
    struct nasc_info *ret_info, struct nasc_fallback *ret_fb, struct rpc_error *ret_err);

/* Any Nas method (List, Delete, Stat...), with fail-over between NAS URLs. */
int nasc_call(struct nasc *n, unsigned method, const ProtobufCMessage *req, unsigned timeout_ms,
    ProtobufCMessage **ret_reply, struct rpc_error *ret_err);

/* How often the background store check asks the NAS that did not answer yet. */
#define NASC_STORE_RETRY_MS 1000u
#define NASC_STORE_ID_MAX 64

/* The outcome of a background store check: rv 0 or -EXDEV, msg one line. */
typedef void (*nasc_store_fn)(void *arg, int rv, const char *msg);

/*
 * Checks that every URL of n reaches the same store: each NAS not yet known
 * is asked for its store id (Nas.Stat, timeout_ms each). Returns
 *   0        all answered one id (with a single URL: at once, nothing asked);
 *   -EXDEV   two ids differ: *ret_err says which, and from then on every
 *            call of n fails with that message (FAILED_PRECONDITION);
 *   -EAGAIN  some did not answer (*ret_err says which) and those that did
 *            agree: a thread of n asks again every NASC_STORE_RETRY_MS until
 *            all have answered, then refuses the list as above on a
 *            mismatch and calls done(done_arg, 0 or -EXDEV, message) once,
 *            unless n is closed first. done may be NULL.
 * Call it at most once per nasc, before the calls it should guard.
 */
int nasc_check_store(struct nasc *n, unsigned timeout_ms, nasc_store_fn done, void *done_arg,
    struct rpc_error *ret_err);

void nasc_info_from_pb(const Ckpt__V1__CheckpointInfo *pb, struct nasc_info *ret_info);

#endif

/*
 * nasc_int.h: what the files of the NAS client share; not for other modules
 * (nasc.h is the interface). One struct nasc per client:
 *
 *   nasc.c        open and close, settings and stats, calls with address
 *                 failover (nasc_call), the store check and its thread
 *   nasc_base.c   the base of a store: the remembered chunk lists of the last
 *                 checkpoints stored (the "cache"), their export and import,
 *                 a base loaded from them or from the NAS (Retrieve)
 *   nasc_write.c  the writer: chunk lists, PutChunks batches, cutting and
 *                 hashing windows, stores whole, from hints and by
 *                 fingerprints, and the nasc_store*() entry points
 *   nasc_small.c  small checkpoints: one Store, their chunks inline
 *   nasc_read.c   the reader: plan, GetChunks pipeline, retrieve, fallback
 *                 to older sequences, into the caller's writer or a growing buffer
 *
 * Internal functions keep the nasc_ prefix; those used by one file only stay
 * static there.
 */
#ifndef CKPT_NASC_INT_H
#define CKPT_NASC_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bcache.h"
#include "chunk.h"
#include "key.h"
#include "limit.h"
#include "nasc.h"
#include "rpc.h"
#include "sha.h"

struct pool;
struct rate;
struct zchunk;

/* Chunks in one PutChunks and in one GetChunks (the NAS's limits). */
#define NASC_PUT_MAX LIMIT_PUT_CHUNKS_MAX
/* Components whose last stored chunk list a client remembers (an agent's). */
#define NASC_CACHE_MAX 32u
#define NASC_GET_MAX LIMIT_HASHES_MAX

/*
 * The hashes of the last checkpoint this client stored for a node/component,
 * kept so that the next store of it needs no Retrieve (an agent stores its
 * components every few seconds). Dropped when a store of it fails.
 */
struct nasc_cached {
	char c_node[KEY_NAME_MAX + 1];
	char c_component[KEY_NAME_MAX + 1];
	uint8_t (*c_sha)[SHA_LEN];
	size_t c_n;
	uint64_t c_used;             /* for the least recently used */
	/* The whole list, for nasc_store_hinted(): NULL when it could not be kept. */
	uint32_t *c_sizes;           /* per chunk: size << 1 | 1 for a hole */
	size_t c_nchunks;
	uint64_t c_len;              /* bytes of the checkpoint */
	uint8_t c_digest[SHA_LEN];   /* its whole digest */
	struct chunk_params c_chunking; /* what cut it */
	/* Per chunk of c_sizes: fingerprint and head (bcache.h), or NULL when not known. */
	uint8_t (*c_fp)[BCACHE_FP_LEN];
	uint64_t *c_head;
};

struct nasc {
	struct rpc_client *n_clients[NASC_URLS_MAX];
	size_t n_count;
	struct chunk_params n_chunking;
	bool n_format3;      /* nasc_set_format3(): tests only */
	struct rate *n_rate; /* nasc_set_rate(): caps PutChunks, or NULL */
	/*
	 * Workers for the data path, made once: hashing and cutting a window,
	 * sending a PutChunks, fetching and verifying GetChunks batches.
	 */
	struct pool *n_pool;
	atomic_bool n_aborted; /* nasc_abort() was called */
	atomic_uint_fast64_t n_store_bytes, n_put_bytes, n_put_chunks, n_dedup_chunks, n_get_bytes;
	atomic_uint_fast64_t n_sent_bytes;
	atomic_uint_fast64_t n_cut_bytes, n_hashed_bytes, n_hinted_stores, n_reused_chunks;
	atomic_uint_fast64_t n_inline_stores, n_held_inline;
	atomic_uint_fast64_t n_fp_stores, n_fp_bytes, n_reused_bytes, n_stale_retries;
	atomic_uint_fast64_t n_race_retries;
	atomic_bool n_no_fp;     /* nasc_set_fingerprints(n, false) */
	atomic_bool n_no_inline; /* the NAS ignored inline chunks: the normal path only */
	/* Bytes of inline chunks the NAS said it takes at most (an older one: 1 MiB); 0: unknown */
	atomic_uint_fast32_t n_inline_max;
	/* A compressor for small stores, made once (a zstd context is ~100 KB to set up). */
	pthread_mutex_t n_small_mu;
	struct zchunk *n_small_z;
	pthread_mutex_t n_cache_mu;
	struct nasc_cached *n_cache;          /* NASC_CACHE_MAX entries */
	uint64_t n_cache_clock;
	/*
	 * Store check (nasc_check_store): the id each URL answered ("" not yet).
	 * Written by one check round at a time: the first, then the thread's.
	 */
	char n_ids[NASC_URLS_MAX][NASC_STORE_ID_MAX + 1];
	unsigned n_id_timeout_ms;
	nasc_store_fn n_id_done;
	void *n_id_arg;
	pthread_mutex_t n_id_mu;              /* n_id_stop, and done() runs under it */
	pthread_cond_t n_id_cv;
	bool n_id_stop;
	bool n_id_started;                    /* n_id_thread runs */
	pthread_t n_id_thread;
	char n_refusal[RPC_ERRMSG_MAX];       /* written once, before n_refused */
	atomic_bool n_refused;
};

/*
 * The chunks of the component's previous checkpoint (its "base"): the NAS
 * held them a moment ago, so they are not asked about again. Store checks
 * every chunk with its full SHA-256, so a base chunk deleted meanwhile makes
 * the store fail (FAILED_PRECONDITION), never a wrong record. An open
 * addressing table of indexes into b_sha.
 */
struct nasc_base {
	uint8_t (*b_sha)[SHA_LEN];   /* the base's chunks that are not holes */
	size_t b_n;
	uint32_t *b_slots;           /* index + 1; 0: empty */
	size_t b_mask;
	bool b_cached;               /* from n_cache, not from the NAS */
	bool b_hints;                /* b_sizes is the base of the hints given */
	/* Or, with b_sizes, per chunk: fingerprint and head (bcache.h), for a walk. */
	uint8_t (*b_fp)[BCACHE_FP_LEN];
	uint64_t *b_head;
	/*
	 * The base's whole list, when it is the base of the hints given (same
	 * digest, same chunking): b_sizes[i] is chunk i's size << 1 | hole, and
	 * the data chunks' hashes are b_sha in order. NULL otherwise.
	 */
	uint32_t *b_sizes;
	size_t b_nchunks;
	uint64_t b_len;
};

/* The whole chunk list of a checkpoint just stored, for the cache. */
struct nasc_list {
	const uint32_t *l_sizes;     /* per chunk: size << 1 | 1 for a hole */
	size_t l_nchunks;
	uint64_t l_len;
	const uint8_t *l_digest;
	/* Per chunk: fingerprint and head (bcache.h), or NULL. */
	const uint8_t (*l_fp)[BCACHE_FP_LEN];
	const uint64_t *l_head;
};

/* The chunk list of the checkpoint being stored (for Store). */
struct nasc_refs {
	Ckpt__V1__ChunkRef *r_refs;
	uint8_t (*r_sha)[SHA_LEN];
	size_t r_count, r_cap;
};

/* Where a checkpoint comes from: a reader, or bytes already in memory. */
struct nasc_src {
	nasc_read_fn s_rd;
	void *s_rd_arg;
	const uint8_t *s_data;   /* non-NULL: s_len bytes in memory, read in place */
	size_t s_len;
	bool s_mapped;           /* s_data maps a file: pages read may be dropped */
	bool s_has_fd;           /* s_data maps s_fd (nasc_store_file) */
	int s_fd;
};

/* nasc.c: open, close and settings */
bool nasc_is_aborted(void *arg);
/* nasc_call() with packed told of each encoding of req (rpc_client_call_packed()). */
int nasc_call_packed(struct nasc *n, unsigned method, const ProtobufCMessage *req,
    const struct rpc_packed *packed, unsigned timeout_ms, ProtobufCMessage **ret_reply,
    struct rpc_error *ret_err);
/* nasc_call() with the reply left in its message (rpc_client_call_view()): rpc_view_free() it. */
int nasc_call_view(struct nasc *n, unsigned method, const ProtobufCMessage *req,
    unsigned timeout_ms, struct rpc_view *ret_view, struct rpc_error *ret_err);
/* nasc_base.c: the remembered lists (the cache) and the base of a store */
struct nasc_cached *nasc_cache_find(struct nasc *n, const char *node, const char *component);
void nasc_cache_put(struct nasc *n, const char *node, const char *component,
    const uint8_t (*sha)[SHA_LEN], size_t count, const struct nasc_list *l);
void nasc_cache_drop(struct nasc *n, const char *node, const char *component);
void nasc_cached_clear(struct nasc_cached *c);
int nasc_base_index(struct nasc_base *b, uint8_t (*sha)[SHA_LEN], size_t n);
/*
 * The base of p's component as this client remembers it (no Retrieve): its
 * chunks' index in b, and with list its whole list too (for hints relative
 * to base, or a fingerprint walk). 1 when remembered, 0 when not (b empty),
 * -ENOMEM.
 */
int nasc_base_cached(struct nasc *n, const struct nasc_put *p, const uint8_t *base, bool list,
    struct nasc_base *b);
int nasc_base_load(struct nasc *n, const struct nasc_put *p, const uint8_t *base,
    unsigned timeout_ms, struct nasc_base *b, struct rpc_error *err);
bool nasc_base_has(const struct nasc_base *b, const uint8_t *sha);
void nasc_base_free(struct nasc_base *b);
/* nasc_write.c: the writer */
int nasc_refs_add(struct nasc_refs *r, uint32_t size, bool zero);
void nasc_refs_free(struct nasc_refs *r);
/* One attempt of the normal path (HaveChunks, PutChunks, Store); *ret_cached: base remembered. */
int nasc_store_once(struct nasc *n, const struct nasc_put *p, const struct nasc_src *src,
    const struct nasc_hints *h, unsigned timeout_ms, struct nasc_info *ret_info, bool *ret_cached,
    struct rpc_error *ret_err);
/*
 * The normal path: nasc_store_once(), redone once when the commit is
 * refused for missing chunks and the bytes can be read again (src->s_data).
 */
int nasc_store_normal(struct nasc *n, const struct nasc_put *p, const struct nasc_src *src,
    const struct nasc_hints *h, unsigned timeout_ms, struct nasc_info *ret_info,
    struct rpc_error *ret_err);
/* nasc_small.c: small checkpoints, one Store with their chunks inline */
int nasc_store_small(struct nasc *n, const struct nasc_put *p, const uint8_t *data, size_t len,
    unsigned timeout_ms, struct nasc_info *ret_info, struct rpc_error *ret_err);

#endif

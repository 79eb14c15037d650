/*
 * bcache: the writer's base cache. What a writer remembers of the last
 * checkpoint it stored of a component, so that the next store of it costs
 * what changed, not what it weighs: the chunk list (sizes, hole flags, the
 * SHA-256 of each data chunk) and, per chunk, a fingerprint of its bytes,
 * XXH3-128 (xxhash.h), which runs at memory speed (10+ GB/s here, against
 * about 1.5 GB/s for SHA-256 with the CPU's SHA extensions).
 *
 * A chunk's fingerprint covers what decides it (chunk.h, CHUNK_LOOKAHEAD):
 * its bytes and the CHUNK_LOOKAHEAD bytes after it, or up to the end of the
 * data when that comes first (its "reach"). Its "head" is the XXH3-64 of its
 * first BCACHE_HEAD bytes (fewer at the end of the data), to find a chunk
 * that moved.
 *
 * bcache_walk() cuts new bytes against such a list: where a cut point of the
 * new bytes starts a chunk of the list (at the same offset, or anywhere, by
 * its head) and the bytes over the chunk's reach have its fingerprint, the
 * chunker would cut the same chunk there (a cut depends only on the bytes
 * from the chunk's start to its reach, and on how far the data goes while it
 * is within cp_max: the walk checks both), so the entry is taken as it is:
 * no cutting, no SHA-256. Elsewhere it cuts afresh (chunk_next) until it
 * lands on such a chunk again. The list is, entry for entry, the one a
 * whole read would make, as long as XXH3-128 finds every change, which it
 * does for accidental ones (a 2^-128 chance of missing one), not for a
 * change made on purpose to collide with it (XXH3 is not cryptographic:
 * docs/data-path.md, "Base cache").
 *
 * The file form (bcache_save, bcache_load) is for writers of one store each
 * (ckptctl put --cache): little-endian, checked by an XXH3-128 of its body;
 * one that is short, corrupt, of another version, node, component or
 * chunking, or whose digest does not follow from its list, is refused
 * (-EBADMSG, with the reason), never half used.
 */
#ifndef CKPT_BCACHE_H
#define CKPT_BCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunk.h"
#include "sha.h"

#define BCACHE_FP_LEN 16u
#define BCACHE_HEAD 64u
/* Most chunks a cache file may list: 64 GiB of 4 KiB chunks (about 1 GiB of file). */
#define BCACHE_CHUNKS_MAX (16u << 20)
/* Where a chunk of a walk comes from: freshly cut, or the base's index. */
#define BCACHE_FRESH SIZE_MAX

/* The last stored list of a node/component, with fingerprints. */
struct bcache_list {
	uint32_t *bl_sizes;                   /* per chunk: size << 1 | 1 for a hole */
	uint8_t (*bl_sha)[SHA_LEN];           /* the data chunks' SHA-256, in order */
	uint8_t (*bl_fp)[BCACHE_FP_LEN];      /* per chunk: XXH3-128 over its reach */
	uint64_t *bl_head;                    /* per chunk: XXH3-64 of its first bytes */
	size_t bl_n, bl_ndata;
	uint64_t bl_len;                      /* bytes of the checkpoint */
	uint8_t bl_digest[SHA_LEN];           /* its ckpt-chunks-sha256 (digest.h) */
	uint32_t bl_min, bl_avg, bl_max;      /* the chunking that cut it */
};

/* Frees the arrays of l (accepts a zeroed or half-built one) and zeroes it. */
void bcache_list_free(struct bcache_list *l);
/*
 * Allocates the arrays of l for n chunks, ndata of them data (zeroed). -ENOMEM.
 */
int bcache_list_alloc(struct bcache_list *l, size_t n, size_t ndata);
/* A deep copy. -ENOMEM. */
int bcache_list_copy(const struct bcache_list *l, struct bcache_list *ret_copy);
/*
 * Whether l is whole and consistent: sizes add up to bl_len, ndata data
 * chunks, none empty or past bl_max, chunking valid and the digest the one
 * its list gives. 0 or -EBADMSG with a reason in err.
 */
int bcache_list_check(const struct bcache_list *l, char *err, size_t errlen);

/* The fingerprint and head of the chunk at off (size bytes) of buf (len bytes). */
void bcache_fp(const uint8_t *buf, uint64_t len, uint64_t off, uint32_t size,
    uint8_t ret_fp[BCACHE_FP_LEN], uint64_t *ret_head);

/* A walk's result: the new list, and where each entry came from. */
struct bcache_walk {
	uint32_t *bw_sizes;                   /* per chunk: size << 1 | hole */
	size_t *bw_from;                      /* per chunk: base index, or BCACHE_FRESH */
	uint8_t (*bw_fp)[BCACHE_FP_LEN];      /* per chunk */
	uint64_t *bw_head;                    /* per chunk */
	size_t bw_n, bw_cap;
	uint64_t bw_cut_bytes;                /* bytes cut again (fresh chunks) */
	uint64_t bw_fp_bytes;                 /* bytes fingerprinted (checks and fresh chunks) */
};

/*
 * How the walk reads the data, window by window, for a caller whose bytes
 * are in a file: before it reads from off on, it calls bi_fn(bi_arg, off, n)
 * (n: bi_window, or a chunk's reach at least, or what is left), which
 * returns where bytes [off, off + n) are, valid until the next call, or NULL
 * on an error (the walk fails with -EIO). Bytes below off are not read
 * again: a file mapping's pages may be populated ahead in one call and
 * dropped behind, or the bytes read with pread() into one buffer (no page
 * tables at all: about 3 times cheaper in CPU here).
 */
struct bcache_io {
	const uint8_t *(*bi_fn)(void *arg, uint64_t off, uint64_t n);
	void *bi_arg;
	uint64_t bi_window;
};

/*
 * The chunk list of buf (len bytes) cut with cp, from base b (cut with the
 * same cp; the caller checks): see above. io NULL: from buf, else through io
 * (buf unused). -ENOMEM, -EIO.
 */
int bcache_walk(const struct chunk_params *cp, const struct bcache_list *b, const uint8_t *buf,
    uint64_t len, const struct bcache_io *io, struct bcache_walk *w);
void bcache_walk_free(struct bcache_walk *w);

/*
 * The cache file of node/component in dir: "DIR/NODE@COMPONENT.bcache"
 * ('@' is not a name character). -ENAMETOOLONG.
 */
int bcache_path(const char *dir, const char *node, const char *component, char *out,
    size_t outlen);
/*
 * Writes l for node/component to path: a temporary file beside it, then
 * rename(), so a reader sees the old file or the new one (a crash may leave a
 * torn one, which bcache_load refuses). Negative errno with a reason in err.
 */
int bcache_save(const char *path, const char *node, const char *component,
    const struct bcache_list *l, char *err, size_t errlen);
/*
 * Reads path into *ret_list when it holds a whole, consistent list of
 * node/component (bcache_list_check). -ENOENT (no file), -EBADMSG (not a
 * cache file of this node/component, corrupt), other negative errno, each
 * with a reason in err.
 */
int bcache_load(const char *path, const char *node, const char *component,
    struct bcache_list *ret_list, char *err, size_t errlen);

#endif

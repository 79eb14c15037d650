/*
 * zchunk: the stored and wire form of one chunk (raw, or one zstd frame).
 *
 * The writer compresses each chunk once, and keeps it raw when compression
 * does not pay (saves less than 1/8). The SHA-256 that names a chunk is
 * always of its raw bytes. Decoding never trusts the sender: a frame must
 * declare exactly the raw size it claims, the raw size is bounded by the
 * caller's limit (no zip bombs), and decompression must produce exactly it.
 */
#ifndef CKPT_ZCHUNK_H
#define CKPT_ZCHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "sha.h"

enum zchunk_codec { ZCHUNK_RAW = 0, ZCHUNK_ZSTD = 1 };

#define ZCHUNK_LEVEL 1 /* zstd level: fast; memory images compress well anyway */
/*
 * A chunk of half a sample or more is compressed only when the bytes of its
 * middle sample (at most ZCHUNK_SAMPLE bytes) carry at most ZCHUNK_ENTROPY_MAX bits each (zstd cannot save
 * 1/8 of bytes above 7 bits; trying costs more than the histogram). Repeats
 * of high-entropy bytes inside one chunk are missed that way; repeats across
 * chunks are deduplicated anyway.
 */
#define ZCHUNK_ENTROPY_MAX 7.0
#define ZCHUNK_SAMPLE 2048u

struct zchunk;

/* Compression and decompression contexts for one thread. */
int zchunk_new(struct zchunk **ret_z);
void zchunk_free(struct zchunk *z);

/* Bytes of out that zchunk_compress may need for len bytes of input. */
size_t zchunk_bound(size_t len);
/*
 * Compresses raw into out (zchunk_bound(len) bytes). *ret_codec is
 * ZCHUNK_RAW (out is scratch then) when compression saves less than len / 8,
 * or when the sample in the middle of a long chunk does not compress.
 */
int zchunk_compress(struct zchunk *z, const void *raw, size_t len, void *out, size_t cap,
    size_t *ret_len, unsigned *ret_codec);
/*
 * Decodes one chunk of raw_size bytes (at most max_raw) into out (raw_size
 * bytes); for ZCHUNK_RAW *ret_raw points at data itself and out is unused.
 * -EBADMSG for data that is not what it claims, -EINVAL for an unknown codec
 * or a raw size over max_raw.
 */
int zchunk_decode(struct zchunk *z, unsigned codec, const void *data, size_t len,
    size_t raw_size, size_t max_raw, void *out, const void **ret_raw);
/*
 * Decodes and checks the SHA-256 of the raw bytes: -EBADMSG on a mismatch.
 * z may be NULL for a raw chunk. z keeps a SHA-256 context for the next call.
 */
int zchunk_verify(struct zchunk *z, unsigned codec, const void *data, size_t len,
    size_t raw_size, size_t max_raw, void *out, const uint8_t sha[SHA_LEN],
    const void **ret_raw);

#endif

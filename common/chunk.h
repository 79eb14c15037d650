/*
 * chunk: content-defined chunking (a gear-hash chunker in the manner of
 * FastCDC, with normalised chunking).
 *
 * A rolling "gear" hash h = (h << 1) + G[byte] runs over the data; its top
 * bits depend on the last 64 bytes only, so a cut point ("the top bits of h
 * are zero") depends on local content: inserting or deleting bytes moves the
 * cuts near the edit and no others, and the chunks after it are found again
 * (deduplicated) by their SHA-256. Before half the average size a stricter
 * mask is used, after it a looser one, which narrows the spread of chunk sizes
 * around the average. No cut is made before min bytes; one is forced at max.
 *
 * Runs of zero bytes (half the pages of a typical memory image) get their
 * own chunks, "holes": a chunk that starts with CHUNK_ZERO_MIN zero bytes runs
 * to the end of the zeros (at most max), and a data chunk ends where a run of
 * CHUNK_ZERO_MIN zeros begins (not before min / 4, so sparse data does not
 * make tiny chunks). The gear hash of 64 zero
 * bytes is a constant, so this too depends on local content only. A hole is
 * never hashed, stored or sent: its ChunkRef says "size zero bytes".
 *
 * The gear table is generated once from a fixed seed, so chunk boundaries
 * are the same in every process and every version that keeps the seed.
 */
#ifndef CKPT_CHUNK_H
#define CKPT_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHUNK_MIN_DEFAULT (4u << 10)
#define CHUNK_AVG_DEFAULT (16u << 10)
#define CHUNK_MAX_DEFAULT (64u << 10)
#define CHUNK_MIN_LIMIT 64u          /* smallest min accepted */
#define CHUNK_MAX_LIMIT (4u << 20)   /* largest max accepted */
#define CHUNK_ZERO_MIN 64u           /* shortest run of zeros that is a hole */
/*
 * How far past its end a chunk's bytes decide it: chunk_next() at s giving
 * length L (when L < len, or len unchanged) gives L again for any bytes at
 * s + L + CHUNK_LOOKAHEAD and beyond. A gear cut at L needs no zero run to
 * start before L, which the bytes up to L + CHUNK_ZERO_MIN decide (read a
 * word at a time: 8 more); a cut where zeros begin is the same; a hole
 * ends at its first byte that is not zero; a forced cut at max reads no
 * further. (nasc re-reads around changed ranges with it.)
 */
#define CHUNK_LOOKAHEAD (CHUNK_ZERO_MIN + 16u)

struct chunk_params {
	uint32_t cp_min;
	uint32_t cp_avg;                /* rounded down to a power of two */
	uint32_t cp_max;
	uint32_t cp_floor;              /* a data chunk ending at zeros: at least this */
	uint64_t cp_mask_small;         /* before avg / 2: harder to match */
	uint64_t cp_mask_large;         /* after it: easier */
};

/*
 * Checks min < avg < max within CHUNK_MIN_LIMIT..CHUNK_MAX_LIMIT and fills
 * *ret_params. -EINVAL otherwise.
 */
int chunk_params_init(uint32_t min, uint32_t avg, uint32_t max, struct chunk_params *ret_params);

/*
 * Length of the chunk that starts at buf: a cut point, at most p->cp_max and
 * at most len. A cut found before len is final; a length equal to len is
 * final only when len >= p->cp_max or buf ends the data, so callers keep at
 * least cp_max bytes ahead until the end of the data. 0 only when len is 0.
 * *ret_zero tells whether the chunk is a hole (all zero bytes, at least
 * CHUNK_ZERO_MIN of them). Before the data ends, a data chunk is at least
 * p->cp_floor bytes long and a hole at least CHUNK_ZERO_MIN.
 */
size_t chunk_next(const struct chunk_params *p, const uint8_t *buf, size_t len, bool *ret_zero);

#endif

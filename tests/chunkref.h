/*
 * chunkref: a byte-at-a-time reference of chunk_next() (common/chunk.c),
 * header only, for the tests that compare cut points with it
 * (tests/unit/nas/test_chunk.c, tests/fuzz/fuzz_chunk.c) and for
 * bench/chunker.c, which measures both.
 *
 * Written for clarity, not speed, and independent of chunk.c: it makes its
 * own gear table from the seed, hashes one byte per step and tracks runs of
 * zeros one byte at a time. What it must match, byte for byte:
 *  - a chunk that starts with CHUNK_ZERO_MIN or more zeros is a hole, to the
 *    end of the zeros or to max;
 *  - otherwise the first run of CHUNK_ZERO_MIN zeros that starts at or after
 *    cp_floor ends the chunk where it starts; zeros before cp_floor do not
 *    count, and the run must fit in the whole 8-byte words after cp_floor
 *    (chunk.c looks for zeros a word at a time and leaves the last bytes of
 *    the data, less than a word, unexamined);
 *  - the gear hash is warmed on the 64 bytes before min and cuts after
 *    byte k >= min when the top bits of h are zero (mask cp_mask_small for
 *    k < avg / 2, cp_mask_large after), unless a run of zeros starts at or
 *    before k;
 *  - no chunk is longer than max or than the data.
 */
#ifndef CKPT_CHUNKREF_H
#define CKPT_CHUNKREF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunk.h"

/* The seed of chunk.c: a different table moves every cut. */
#define CHUNKREF_SEED 0x636b70742d636463ull

static inline const uint64_t *
chunkref_gear(void)
{
	static uint64_t g[256];
	static bool done;

	if (!done) {
		uint64_t s = CHUNKREF_SEED;
		for (int i = 0; i < 256; i++) {
			uint64_t z = (s += 0x9e3779b97f4a7c15ull);
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
			z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
			g[i] = z ^ (z >> 31);
		}
		done = true;
	}
	return g;
}

static inline size_t
chunkref_next(const struct chunk_params *p, const uint8_t *buf, size_t len, bool *ret_zero)
{
	const uint64_t *g = chunkref_gear();
	size_t end = len < p->cp_max ? len : p->cp_max;
	size_t min = end < p->cp_min ? end : p->cp_min;
	size_t mid = p->cp_avg / 2;
	size_t zfloor = end < p->cp_floor ? end : p->cp_floor;
	size_t zend, t, run = 0, k;
	uint64_t h = 0;

	*ret_zero = false;
	for (k = 0; k < end && buf[k] == 0; k++)
		;
	if (k >= CHUNK_ZERO_MIN) {
		*ret_zero = true;
		return k;
	}
	if (end <= zfloor)
		return end;
	zend = zfloor + (end - zfloor) / 8 * 8;
	for (k = min >= 64 ? min - 64 : 0; k < min; k++)
		h = (h << 1) + g[buf[k]];
	/* t: the next byte for the zero tracker, which stays 63 bytes ahead of k. */
	for (k = min, t = zfloor; k < end; k++) {
		for (; t < zend && t <= k + CHUNK_ZERO_MIN - 1; t++) {
			run = buf[t] == 0 ? run + 1 : 0;
			if (run == CHUNK_ZERO_MIN)
				return t + 1 - CHUNK_ZERO_MIN;
		}
		h = (h << 1) + g[buf[k]];
		if ((h & (k < mid ? p->cp_mask_small : p->cp_mask_large)) == 0)
			return k + 1;
	}
	for (; t < zend; t++) {
		run = buf[t] == 0 ? run + 1 : 0;
		if (run == CHUNK_ZERO_MIN)
			return t + 1 - CHUNK_ZERO_MIN;
	}
	return end;
}

#endif

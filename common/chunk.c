#include "chunk.h"

#include <errno.h>
#include <pthread.h>
#include <endian.h>
#include <stdint.h>
#include <string.h>

/* Any fixed value: changing it moves every chunk boundary (and loses dedup). */
#define CHUNK_GEAR_SEED 0x636b70742d636463ull /* "ckpt-cdc" */

static uint64_t chunk_gear[256];
static pthread_once_t chunk_gear_once = PTHREAD_ONCE_INIT;

/* splitmix64: a small PRNG, good enough to spread 256 table entries. */
static uint64_t
chunk_splitmix(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void
chunk_gear_init(void)
{
	uint64_t state = CHUNK_GEAR_SEED;
	for (int i = 0; i < 256; i++)
		chunk_gear[i] = chunk_splitmix(&state);
}

/* The top `bits` bits set: they depend on the last 64 bytes hashed. */
static uint64_t
chunk_top_mask(unsigned bits)
{
	return bits == 0 ? 0 : ~0ull << (64 - bits);
}

int
chunk_params_init(uint32_t min, uint32_t avg, uint32_t max, struct chunk_params *ret_params)
{
	struct chunk_params p;
	unsigned bits = 0;

	if (min < CHUNK_MIN_LIMIT || max > CHUNK_MAX_LIMIT || !(min < avg && avg < max))
		return -EINVAL;
	while ((2u << bits) <= avg)
		bits++;
	p.cp_min = min;
	p.cp_avg = 1u << bits;
	p.cp_max = max;
	/*
	 * Normalised chunking: before avg / 2 a mask one bit harder than avg, after
	 * it one bit easier, so a chunk is about avg / 2 + avg / 2 = avg long.
	 */
	/* A data chunk ends at a run of zeros from a quarter of min on. */
	p.cp_floor = min / 4 > 2 * CHUNK_ZERO_MIN ? min / 4 : 2 * CHUNK_ZERO_MIN;
	if (p.cp_floor > min)
		p.cp_floor = min;
	p.cp_mask_small = chunk_top_mask(bits + 1);
	p.cp_mask_large = chunk_top_mask(bits - 1);
	pthread_once(&chunk_gear_once, chunk_gear_init);
	*ret_params = p;
	return 0;
}

/* Bytes of zero at the start of buf, looking at no more than len. */
static size_t
chunk_zero_run(const uint8_t *buf, size_t len)
{
	size_t i = 0;
	uint64_t w;

	for (; i + sizeof(w) <= len; i += sizeof(w)) {
		memcpy(&w, buf + i, sizeof(w));
		if (w != 0)
			break;
	}
	while (i < len && buf[i] == 0)
		i++;
	return i;
}

/* The 8 bytes at buf + o, byte k in bits 8k..8k+7. */
static inline uint64_t
chunk_word(const uint8_t *buf, size_t o)
{
	uint64_t w;

	memcpy(&w, buf + o, sizeof(w));
	return le64toh(w);
}

/*
 * A word that is not zero ends a run of CHUNK_ZERO_MIN zeros only when the
 * word before it is zero: after a word that is not zero the run so far is at
 * most 7 bytes, and this one starts with at most 7 more.
 */
_Static_assert(CHUNK_ZERO_MIN > 2 * 7, "chunk_zero_find skips words that are not zero");

/*
 * Looks for a run of CHUNK_ZERO_MIN zero bytes in buf[from, to), 8 bytes at
 * a time. *zrun carries the zero bytes that ended the previous call's range
 * (0 at first). Returns where the run starts, or SIZE_MAX. Bytes at the end
 * of the range that do not fill a word are left for the next call
 * (*ret_to: where this one stopped).
 *
 * Words that are not zero and follow one that is not zero are only tested
 * for zero, four at a time (random data is all such words); the zeros that
 * end the last of them are counted when a zero word comes.
 */
static size_t
chunk_zero_find(const uint8_t *buf, size_t from, size_t to, size_t *zrun, size_t *ret_to)
{
	size_t o = from, z = *zrun;
	uint64_t w;

	while (o + sizeof(w) <= to) {
		w = chunk_word(buf, o);
		if (w == 0) {
			z += sizeof(w);
			o += sizeof(w);
			if (z >= CHUNK_ZERO_MIN) {
				*zrun = z;
				*ret_to = o;
				return o - z;
			}
			continue;
		}
		/* Zero bytes at the word's start end the run so far; those at its end start one. */
		if (z + (size_t)__builtin_ctzll(w) / 8 >= CHUNK_ZERO_MIN) {
			*zrun = z;
			*ret_to = o + sizeof(w);
			return o - z;
		}
		for (o += sizeof(w); to - o >= 4 * sizeof(w); o += 4 * sizeof(w))
			if (chunk_word(buf, o) == 0 || chunk_word(buf, o + 8) == 0 ||
			    chunk_word(buf, o + 16) == 0 || chunk_word(buf, o + 24) == 0)
				break;
		while (o + sizeof(w) <= to && chunk_word(buf, o) != 0)
			o += sizeof(w);
		z = (size_t)__builtin_clzll(chunk_word(buf, o - sizeof(w))) / 8;
	}
	*zrun = z;
	*ret_to = o;
	return SIZE_MAX;
}

/*
 * Gear-hashes buf[*i, to): a cut point (mask hit), or 0.
 *
 * Four bytes a step: h4 = (h << 4) + s with s = 8 G[b0] + 4 G[b1] + 2 G[b2] +
 * G[b3], which does not depend on h, so the chain from one step to the next
 * is one shift and one add instead of four of each; h1..h3, needed for their
 * masks only, come off it. A step with a hit is left to the byte-at-a-time
 * loop after it, which finds the exact byte (the first hit of the four).
 */
static inline size_t
chunk_gear_run(const uint8_t *buf, size_t *i, size_t to, uint64_t mask, uint64_t *h)
{
	uint64_t x = *h;
	size_t k = *i;

	for (; k + 4 <= to; k += 4) {
		uint64_t g0 = chunk_gear[buf[k]], g1 = chunk_gear[buf[k + 1]];
		uint64_t g2 = chunk_gear[buf[k + 2]], g3 = chunk_gear[buf[k + 3]];
		uint64_t x1 = (x << 1) + g0, x2 = (x1 << 1) + g1, x3 = (x2 << 1) + g2;
		uint64_t s = (((((g0 << 1) + g1) << 1) + g2) << 1) + g3;

		/* Else the compilers fold s back into (x << 4) + ... and the chain is long again. */
		__asm__("" : "+r"(s));
		if ((x1 & mask) == 0 || (x2 & mask) == 0 || (x3 & mask) == 0 ||
		    (((x << 4) + s) & mask) == 0)
			break;
		x = (x << 4) + s;
	}
	for (; k < to; k++) {
		x = (x << 1) + chunk_gear[buf[k]];
		if ((x & mask) == 0) {
			*h = x;
			*i = k + 1;
			return k + 1;
		}
	}
	*h = x;
	*i = k;
	return 0;
}

#define CHUNK_BLOCK 2048u /* bytes scanned for zeros ahead of the gear hash */

size_t
chunk_next(const struct chunk_params *p, const uint8_t *buf, size_t len, bool *ret_zero)
{
	size_t end = len < p->cp_max ? len : p->cp_max;
	size_t mid = p->cp_avg / 2 < end ? p->cp_avg / 2 : end;
	size_t min = end < p->cp_min ? end : p->cp_min;
	size_t zfloor = end < p->cp_floor ? end : p->cp_floor;
	size_t scan = zfloor, zrun = 0, gi;
	uint64_t h = 0;

	*ret_zero = false;
	if (end >= CHUNK_ZERO_MIN) {
		size_t z = chunk_zero_run(buf, end);
		if (z >= CHUNK_ZERO_MIN) {
			*ret_zero = true;
			return z;
		}
	}
	if (end <= zfloor)
		return end;
	/* The hash restarts at each chunk: warm it on the 64 bytes before min. */
	for (gi = min >= 64 ? min - 64 : 0; gi < min; gi++)
		h = (h << 1) + chunk_gear[buf[gi]];
	/*
	 * Block by block: zeros first (a run of them ends the chunk where it
	 * starts, from zfloor on), then the gear hash up to there (before mid a
	 * mask one bit harder than avg, after it one bit easier).
	 */
	while (scan < end) {
		size_t bend = end - scan > CHUNK_BLOCK ? scan + CHUNK_BLOCK : end;
		size_t zs = chunk_zero_find(buf, scan, bend, &zrun, &scan);
		size_t limit, cut;

		if (zs == SIZE_MAX && scan < bend)
			scan = bend; /* the data's last bytes, less than a word: no run of zeros ends there */
		limit = zs != SIZE_MAX ? zs : scan;
		if (gi < mid && (cut = chunk_gear_run(buf, &gi, limit < mid ? limit : mid,
		    p->cp_mask_small, &h)) != 0)
			return cut;
		if (gi >= mid && (cut = chunk_gear_run(buf, &gi, limit, p->cp_mask_large, &h)) != 0)
			return cut;
		if (zs != SIZE_MAX)
			return zs;
	}
	return end;
}

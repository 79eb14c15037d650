#include "chunk.h"

#include <errno.h>
#include <pthread.h>
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

/*
 * The gear hash at position i has seen 64 zero bytes (the hash of 64 zeros is
 * a constant): cut where that run of zeros starts, but not before zfloor.
 */
static size_t
chunk_zero_cut(const uint8_t *buf, size_t i, size_t min)
{
	while (i > min && buf[i - 1] == 0)
		i--;
	return i;
}

size_t
chunk_next(const struct chunk_params *p, const uint8_t *buf, size_t len, bool *ret_zero)
{
	size_t end = len < p->cp_max ? len : p->cp_max;
	size_t mid = p->cp_avg / 2 < end ? p->cp_avg / 2 : end;
	const uint64_t zh = 0 - chunk_gear[0]; /* the hash after 64 zero bytes */
	size_t min = end < p->cp_min ? end : p->cp_min;
	size_t zfloor = end < p->cp_floor ? end : p->cp_floor;
	uint64_t h = 0;
	size_t i;

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
	/* The hash restarts at each chunk: warm it on the 64 bytes before zfloor. */
	i = zfloor - 64;
	for (; i < zfloor; i++)
		h = (h << 1) + chunk_gear[buf[i]];
	/* Before min, only a run of zeros ends the chunk. */
	for (; i < min; i++) {
		h = (h << 1) + chunk_gear[buf[i]];
		if (h == zh)
			return chunk_zero_cut(buf, i + 1, zfloor);
	}
	for (; i < mid; i++) {
		h = (h << 1) + chunk_gear[buf[i]];
		if ((h & p->cp_mask_small) == 0)
			return i + 1;
		if (h == zh)
			return chunk_zero_cut(buf, i + 1, zfloor);
	}
	for (; i < end; i++) {
		h = (h << 1) + chunk_gear[buf[i]];
		if ((h & p->cp_mask_large) == 0)
			return i + 1;
		if (h == zh)
			return chunk_zero_cut(buf, i + 1, zfloor);
	}
	return end;
}

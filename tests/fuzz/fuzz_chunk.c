/*
 * chunk_next() over any bytes and any valid bounds: every chunk is 1 to max
 * bytes, the chunks cover the input exactly, a hole is all zero bytes, a
 * data chunk that is not the last is at least cp_floor bytes, and every cut
 * is the one of the byte-at-a-time reference (tests/chunkref.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "../chunkref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chunk_params p;
	uint32_t min, avg, max;
	size_t off = 0;

	if (size < 3)
		return 0;
	/*
	 * Bounds from the first bytes: min 64 B to 4 KiB, avg and max above, not
	 * always powers of two.
	 */
	min = (64u << (data[0] % 7)) + (data[0] >> 3) * 7u;
	avg = (min << (1 + data[1] % 4)) + (data[1] >> 2);
	max = (avg << (1 + data[2] % 4)) + (data[2] >> 2);
	if (chunk_params_init(min, avg, max, &p) != 0)
		return 0;
	data += 3;
	size -= 3;
	while (off < size) {
		bool zero, rzero;
		size_t k = chunk_next(&p, data + off, size - off, &zero);
		if (k == 0 || k > max || k > size - off)
			abort();
		if (chunkref_next(&p, data + off, size - off, &rzero) != k || rzero != zero)
			abort();
		if (zero) {
			if (k < CHUNK_ZERO_MIN)
				abort();
			for (size_t i = 0; i < k; i++)
				if (data[off + i] != 0)
					abort();
		} else if (off + k < size && k < p.cp_floor) {
			abort();
		}
		off += k;
	}
	return 0;
}

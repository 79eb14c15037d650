/*
 * zchunk_decode() of any bytes as any codec and raw size (the NAS and every
 * reader decode chunks from the wire): it never writes past raw_size and
 * never accepts more than max_raw. Then a round trip: what compresses
 * decodes back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zchunk.h"

#define MAX_RAW (256u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[MAX_RAW], frame[MAX_RAW + 1024];
	struct zchunk *z;
	const void *raw;
	unsigned codec;
	size_t raw_size, flen;

	if (size < 4 || zchunk_new(&z) != 0)
		return 0;
	codec = data[0] % 3;
	raw_size = ((size_t)data[1] << 16 | (size_t)data[2] << 8 | data[3]) % (MAX_RAW + 2);
	if (zchunk_decode(z, codec, data + 4, size - 4, raw_size, MAX_RAW, out, &raw) == 0 &&
	    raw_size > MAX_RAW)
		abort();
	/* Round trip of the input itself. */
	if (size <= MAX_RAW && zchunk_compress(z, data, size, frame, sizeof(frame), &flen,
	    &codec) == 0) {
		const void *back;
		const void *src = codec == ZCHUNK_RAW ? data : frame;
		size_t slen = codec == ZCHUNK_RAW ? size : flen;
		if (zchunk_decode(z, codec, src, slen, size, MAX_RAW, out, &back) != 0 ||
		    memcmp(back, data, size) != 0)
			abort();
	}
	zchunk_free(z);
	return 0;
}

/*
 * key_decode() of any bytes (keys are read back from LMDB, and from a store
 * that may be damaged): a key it accepts encodes back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1];
	uint8_t again[KEY_MAX];
	uint64_t seq;
	size_t len;

	if (key_decode(data, size, node, comp, &seq) != 0)
		return 0;
	if (key_encode(node, comp, seq, again, &len) != 0 || len != size ||
	    memcmp(again, data, size) != 0)
		abort();
	return 0;
}

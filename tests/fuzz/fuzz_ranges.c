/*
 * ranges_parse() of any bytes (a --changed file is the user's): it accepts or
 * refuses with a reason, never reads past the text; every range it returns
 * is non-empty and does not wrap past 2^64, and the list printed back in
 * OFF+LEN form parses to the same ranges.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ranges.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nasc_range *r = NULL, *again = NULL;
	char err[256] = "", *text;
	size_t n = 0, m = 0, len = 0;
	/* The page size from the first byte: the valid ones and some that are not. */
	uint64_t page = size > 0 ? 1ull << (data[0] % 32) : 4096;
	int rv;

	if (size > 0) {
		data++;
		size--;
	}
	/* A copy of exactly size bytes: ASan sees a read past them. */
	text = malloc(size != 0 ? size : 1);
	if (text == NULL)
		return 0;
	if (size != 0)
		memcpy(text, data, size);
	rv = ranges_parse(text, size, page, &r, &n, err, sizeof(err));
	free(text);
	if (rv != 0) {
		if (r != NULL || n != 0 || err[0] == '\0' || (rv != -EINVAL && rv != -E2BIG))
			abort();
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (r[i].nr_len == 0 || r[i].nr_off > UINT64_MAX - r[i].nr_len)
			abort();
	/* Printed back as OFF+LEN, the list parses to the same ranges. */
	text = malloc(n * 44 + 1);
	if (text == NULL) {
		free(r);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "%" PRIu64 "+%" PRIu64 "\n", r[i].nr_off,
		    r[i].nr_len);
	if (ranges_parse(text, len, 4096, &again, &m, err, sizeof(err)) != 0 || m != n ||
	    (n != 0 && memcmp(again, r, n * sizeof(*r)) != 0))
		abort();
	free(text);
	free(again);
	free(r);
	return 0;
}

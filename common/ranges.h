/*
 * ranges: lists of changed byte ranges, as a user writes them (ckptctl put
 * --changed FILE): the hints of nasc_store_hinted().
 *
 * Text. Tokens are separated by white space or commas; '#' starts a comment
 * that runs to the end of its line. Each token is one of:
 *   N        page N: bytes [N * page, (N + 1) * page)
 *   N-M      pages N to M, both included (N <= M)
 *   OFF+LEN  LEN bytes from byte OFF (LEN > 0)
 * Numbers are decimal, or hexadecimal with 0x. An empty list (or only
 * comments) says nothing changed. Ranges may overlap, come in any order and
 * reach past the end of the checkpoint (nasc_store_hinted() clips them).
 */
#ifndef CKPT_RANGES_H
#define CKPT_RANGES_H

#include <stddef.h>
#include <stdint.h>

#include "nasc.h"

/* Largest page size accepted (a huge page of 1 GiB). */
#define RANGES_PAGE_MAX (1ull << 30)
/* Largest list file read: more than NASC_RANGES_MAX tokens cannot fit anyway. */
#define RANGES_FILE_MAX (64u << 20)

/*
 * Parses len bytes of text (page: bytes per page, a power of two from 512 to
 * RANGES_PAGE_MAX) into *ret (malloc'ed, free() it; may be NULL when *ret_n
 * is 0). -EINVAL with the first bad token, its line and why in err; -E2BIG
 * beyond NASC_RANGES_MAX ranges; -ENOMEM.
 */
int ranges_parse(const char *text, size_t len, uint64_t page, struct nasc_range **ret,
    size_t *ret_n, char *err, size_t errlen);
/* ranges_parse() of the file path ("-": standard input). Also -errno of reading it. */
int ranges_load(const char *path, uint64_t page, struct nasc_range **ret, size_t *ret_n,
    char *err, size_t errlen);

#endif

#include "digest.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
digest_entry(struct sha_ctx *c, uint32_t compact, const uint8_t *sha)
{
	uint8_t le[4] = { (uint8_t)compact, (uint8_t)(compact >> 8), (uint8_t)(compact >> 16),
		(uint8_t)(compact >> 24) };

	sha_update(c, le, sizeof(le));
	if (sha != NULL)
		sha_update(c, sha, SHA_LEN);
}

int
digest_compact(const uint32_t *sizes, size_t n, const uint8_t *sha, size_t nsha,
    uint8_t ret_digest[SHA_LEN])
{
	struct sha_ctx *c;
	size_t k = 0;
	int rv;

	for (size_t i = 0; i < n; i++)
		k += (sizes[i] & 1u) == 0;
	if (k != nsha)
		return -EINVAL;
	rv = sha_new(&c);
	if (rv != 0)
		return rv;
	k = 0;
	for (size_t i = 0; i < n; i++) {
		bool hole = (sizes[i] & 1u) != 0;
		digest_entry(c, sizes[i], hole ? NULL : sha + SHA_LEN * k++);
	}
	sha_final(c, ret_digest);
	sha_free(c);
	return 0;
}

int
digest_refs(Ckpt__V1__ChunkRef *const *refs, size_t n, uint8_t ret_digest[SHA_LEN])
{
	struct sha_ctx *c;
	int rv;

	for (size_t i = 0; i < n; i++)
		if (refs[i]->size > UINT32_MAX >> 1 ||
		    (!refs[i]->zero && refs[i]->sha256.len != SHA_LEN))
			return -EINVAL;
	rv = sha_new(&c);
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < n; i++)
		digest_entry(c, refs[i]->size << 1 | (refs[i]->zero ? 1u : 0u),
		    refs[i]->zero ? NULL : refs[i]->sha256.data);
	sha_final(c, ret_digest);
	sha_free(c);
	return 0;
}

int
digest_buf(const struct chunk_params *p, const void *buf, size_t len,
    uint8_t ret_digest[SHA_LEN])
{
	const uint8_t *b = buf;
	struct sha_ctx *c;
	uint8_t sha[SHA_LEN];
	size_t off = 0;
	int rv;

	rv = sha_new(&c);
	if (rv != 0)
		return rv;
	while (off < len) {
		bool zero = false;
		size_t n = chunk_next(p, b + off, len - off, &zero);
		if (!zero)
			sha256(b + off, n, sha);
		digest_entry(c, (uint32_t)n << 1 | (zero ? 1u : 0u), zero ? NULL : sha);
		off += n;
	}
	sha_final(c, ret_digest);
	sha_free(c);
	return 0;
}

/* Cuts and hashes b[*off, len) into c; stops once *off reaches until (or len). */
static void
digest_run(struct sha_ctx *c, const struct chunk_params *p, const uint8_t *b, size_t len,
    size_t until, size_t *off)
{
	uint8_t sha[SHA_LEN];

	while (*off < len && *off < until) {
		bool zero = false;
		size_t n = chunk_next(p, b + *off, len - *off, &zero);
		if (!zero)
			sha256(b + *off, n, sha);
		digest_entry(c, (uint32_t)n << 1 | (zero ? 1u : 0u), zero ? NULL : sha);
		*off += n;
	}
}

int
digest_buf2(const struct chunk_params *p, const void *head, size_t hlen, const void *body,
    size_t blen, uint8_t ret_digest[SHA_LEN])
{
	size_t take = blen < 2 * (size_t)p->cp_max ? blen : 2 * (size_t)p->cp_max;
	size_t off = 0;
	struct sha_ctx *c;
	uint8_t *join;
	int rv;

	join = malloc(hlen + take + 1);
	if (join == NULL)
		return -ENOMEM;
	rv = sha_new(&c);
	if (rv != 0) {
		free(join);
		return rv;
	}
	memcpy(join, head, hlen);
	memcpy(join + hlen, body, take);
	/*
	 * Cuts that start in head: more than cp_max bytes lie ahead of each (or
	 * the end of the data), so each is the cut of the whole (chunk.h).
	 */
	digest_run(c, p, join, hlen + take, hlen, &off);
	free(join);
	off -= hlen;
	digest_run(c, p, body, blen, blen, &off);
	sha_final(c, ret_digest);
	sha_free(c);
	return 0;
}

int
digest_params(uint32_t min, uint32_t avg, uint32_t max, struct chunk_params *ret_params)
{
	if (min == 0 && avg == 0 && max == 0)
		return chunk_params_init(CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT, CHUNK_MAX_DEFAULT,
		    ret_params);
	return chunk_params_init(min, avg, max, ret_params);
}

void
digest_str(const uint8_t digest[SHA_LEN], char *out)
{
	char hex[SHA_HEX_LEN + 1];

	sha_hex(digest, SHA_LEN, hex);
	snprintf(out, DIGEST_STR_LEN, "%s:%s", DIGEST_ALG, hex);
}

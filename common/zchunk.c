#include "zchunk.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

struct zchunk {
	ZSTD_CCtx *z_c;
	ZSTD_DCtx *z_d;
	struct sha_ctx *z_sha;   /* zchunk_verify()'s, made at its first call */
};

/* c * log2(c) for every count of the sample: the entropy test without a log per byte value. */
static float zchunk_clog[ZCHUNK_SAMPLE + 1];
static pthread_once_t zchunk_clog_once = PTHREAD_ONCE_INIT;

static void
zchunk_clog_init(void)
{
	for (unsigned c = 2; c <= ZCHUNK_SAMPLE; c++)
		zchunk_clog[c] = (float)((double)c * log2((double)c));
}

int
zchunk_new(struct zchunk **ret_z)
{
	struct zchunk *z = calloc(1, sizeof(*z));

	if (z == NULL)
		return -ENOMEM;
	z->z_c = ZSTD_createCCtx();
	z->z_d = ZSTD_createDCtx();
	if (z->z_c == NULL || z->z_d == NULL) {
		zchunk_free(z);
		return -ENOMEM;
	}
	pthread_once(&zchunk_clog_once, zchunk_clog_init);
	*ret_z = z;
	return 0;
}

void
zchunk_free(struct zchunk *z)
{
	if (z == NULL)
		return;
	ZSTD_freeCCtx(z->z_c);
	ZSTD_freeDCtx(z->z_d);
	sha_free(z->z_sha);
	free(z);
}

size_t
zchunk_bound(size_t len)
{
	return ZSTD_compressBound(len);
}

/*
 * Shannon entropy of the bytes of p (n <= ZCHUNK_SAMPLE), in bits per byte
 * (0 to 8): log2(n) - sum(c * log2(c)) / n over the byte counts c, the
 * products from a table. Four histograms, so that a run of one byte value
 * does not wait on its own increments.
 */
static double
zchunk_entropy(const uint8_t *p, size_t n)
{
	uint16_t count[4][256];
	double s = 0;
	size_t i = 0;

	memset(count, 0, sizeof(count));
	for (; i + 4 <= n; i += 4) {
		count[0][p[i]]++;
		count[1][p[i + 1]]++;
		count[2][p[i + 2]]++;
		count[3][p[i + 3]]++;
	}
	for (; i < n; i++)
		count[0][p[i]]++;
	for (int b = 0; b < 256; b++)
		s += zchunk_clog[count[0][b] + count[1][b] + count[2][b] + count[3][b]];
	return n == 0 ? 0 : log2((double)n) - s / (double)n;
}

int
zchunk_compress(struct zchunk *z, const void *raw, size_t len, void *out, size_t cap,
    size_t *ret_len, unsigned *ret_codec)
{
	size_t k;

	if (len < 64) {
		*ret_len = len;
		*ret_codec = ZCHUNK_RAW;
		return 0;
	}
	/* A sample from the middle first: incompressible bytes cost a histogram, not a try. */
	if (len >= ZCHUNK_SAMPLE / 2 &&
	    zchunk_entropy((const uint8_t *)raw + (len - (len < ZCHUNK_SAMPLE ? len : ZCHUNK_SAMPLE)) / 2,
	        len < ZCHUNK_SAMPLE ? len : ZCHUNK_SAMPLE) > ZCHUNK_ENTROPY_MAX) {
		*ret_len = len;
		*ret_codec = ZCHUNK_RAW;
		return 0;
	}
	k = ZSTD_compressCCtx(z->z_c, out, cap, raw, len, ZCHUNK_LEVEL);
	if (ZSTD_isError(k))
		return -EIO;
	if (k > len - len / 8) {
		*ret_len = len;
		*ret_codec = ZCHUNK_RAW;
		return 0;
	}
	*ret_len = k;
	*ret_codec = ZCHUNK_ZSTD;
	return 0;
}

int
zchunk_decode(struct zchunk *z, unsigned codec, const void *data, size_t len, size_t raw_size,
    size_t max_raw, void *out, const void **ret_raw)
{
	unsigned long long declared;
	size_t k;

	if (raw_size > max_raw)
		return -EINVAL;
	switch (codec) {
	case ZCHUNK_RAW:
		if (len != raw_size)
			return -EBADMSG;
		*ret_raw = data;
		return 0;
	case ZCHUNK_ZSTD:
		declared = ZSTD_getFrameContentSize(data, len);
		if (declared != raw_size || ZSTD_findFrameCompressedSize(data, len) != len)
			return -EBADMSG;
		k = ZSTD_decompressDCtx(z->z_d, out, raw_size, data, len);
		if (ZSTD_isError(k) || k != raw_size)
			return -EBADMSG;
		*ret_raw = out;
		return 0;
	default:
		return -EINVAL;
	}
}

int
zchunk_verify(struct zchunk *z, unsigned codec, const void *data, size_t len, size_t raw_size,
    size_t max_raw, void *out, const uint8_t sha[SHA_LEN], const void **ret_raw)
{
	uint8_t h[SHA_LEN];
	const void *raw;
	int rv;

	rv = zchunk_decode(z, codec, data, len, raw_size, max_raw, out, &raw);
	if (rv != 0)
		return rv;
	/*
	 * One context for every chunk (sha.c: no lookup per chunk); sha256()
	 * without memory, or without z (a raw chunk needs no decoder).
	 */
	if (z != NULL && z->z_sha == NULL && sha_new(&z->z_sha) != 0)
		z->z_sha = NULL;
	if (z != NULL && z->z_sha != NULL) {
		sha_update(z->z_sha, raw, raw_size);
		sha_final(z->z_sha, h);
	} else {
		sha256(raw, raw_size, h);
	}
	if (memcmp(h, sha, SHA_LEN) != 0)
		return -EBADMSG;
	*ret_raw = raw;
	return 0;
}

#include "bcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(__x86_64__)
/* XXH3 with AVX2 or AVX-512 when the CPU has them, chosen at run time (in Debian's libxxhash). */
#include <xxh_x86dispatch.h>
#endif

#include "digest.h"
#include "key.h"

#define BCACHE_MAGIC "ckptbc1\n"
#define BCACHE_VERSION 1u
#define BCACHE_NAME_FIELD (KEY_NAME_MAX + 1)
/* magic, version, min, avg, max, len, n, ndata, digest, node, component */
#define BCACHE_HEADER (8 + 4 * 4 + 3 * 8 + SHA_LEN + 2 * BCACHE_NAME_FIELD)
/* Per chunk: size, fingerprint, head; per data chunk: its SHA-256. */
#define BCACHE_PER_CHUNK (4 + BCACHE_FP_LEN + 8)

void
bcache_list_free(struct bcache_list *l)
{
	free(l->bl_sizes);
	free(l->bl_sha);
	free(l->bl_fp);
	free(l->bl_head);
	memset(l, 0, sizeof(*l));
}

int
bcache_list_alloc(struct bcache_list *l, size_t n, size_t ndata)
{
	memset(l, 0, sizeof(*l));
	l->bl_sizes = calloc(n != 0 ? n : 1, sizeof(*l->bl_sizes));
	l->bl_sha = calloc(ndata != 0 ? ndata : 1, sizeof(*l->bl_sha));
	l->bl_fp = calloc(n != 0 ? n : 1, sizeof(*l->bl_fp));
	l->bl_head = calloc(n != 0 ? n : 1, sizeof(*l->bl_head));
	if (l->bl_sizes == NULL || l->bl_sha == NULL || l->bl_fp == NULL || l->bl_head == NULL) {
		bcache_list_free(l);
		return -ENOMEM;
	}
	l->bl_n = n;
	l->bl_ndata = ndata;
	return 0;
}

int
bcache_list_copy(const struct bcache_list *l, struct bcache_list *ret_copy)
{
	struct bcache_list c;
	int rv = bcache_list_alloc(&c, l->bl_n, l->bl_ndata);

	if (rv != 0)
		return rv;
	memcpy(c.bl_sizes, l->bl_sizes, l->bl_n * sizeof(*c.bl_sizes));
	memcpy(c.bl_sha, l->bl_sha, l->bl_ndata * sizeof(*c.bl_sha));
	memcpy(c.bl_fp, l->bl_fp, l->bl_n * sizeof(*c.bl_fp));
	memcpy(c.bl_head, l->bl_head, l->bl_n * sizeof(*c.bl_head));
	c.bl_len = l->bl_len;
	memcpy(c.bl_digest, l->bl_digest, SHA_LEN);
	c.bl_min = l->bl_min;
	c.bl_avg = l->bl_avg;
	c.bl_max = l->bl_max;
	*ret_copy = c;
	return 0;
}

int
bcache_list_check(const struct bcache_list *l, char *err, size_t errlen)
{
	struct chunk_params cp;
	uint8_t digest[SHA_LEN];
	uint64_t sum = 0;
	size_t ndata = 0;

	if (chunk_params_init(l->bl_min, l->bl_avg, l->bl_max, &cp) != 0) {
		snprintf(err, errlen, "bad chunking %u/%u/%u", l->bl_min, l->bl_avg, l->bl_max);
		return -EBADMSG;
	}
	for (size_t i = 0; i < l->bl_n; i++) {
		uint32_t size = l->bl_sizes[i] >> 1;
		if (size == 0 || size > cp.cp_max) {
			snprintf(err, errlen, "chunk %zu has a bad size %u", i, size);
			return -EBADMSG;
		}
		sum += size;
		ndata += (l->bl_sizes[i] & 1u) == 0;
	}
	if (sum != l->bl_len || ndata != l->bl_ndata) {
		snprintf(err, errlen, "its chunks do not add up to its length");
		return -EBADMSG;
	}
	if (digest_compact(l->bl_sizes, l->bl_n, (const uint8_t *)l->bl_sha, l->bl_ndata,
	    digest) != 0 || memcmp(digest, l->bl_digest, SHA_LEN) != 0) {
		snprintf(err, errlen, "its digest does not follow from its chunk list");
		return -EBADMSG;
	}
	return 0;
}

void
bcache_fp(const uint8_t *buf, uint64_t len, uint64_t off, uint32_t size,
    uint8_t ret_fp[BCACHE_FP_LEN], uint64_t *ret_head)
{
	uint64_t rem = len - off, reach = (uint64_t)size + CHUNK_LOOKAHEAD;
	XXH128_canonical_t c;

	reach = reach < rem ? reach : rem;
	XXH128_canonicalFromHash(&c, XXH3_128bits(buf + off, (size_t)reach));
	memcpy(ret_fp, c.digest, BCACHE_FP_LEN);
	*ret_head = XXH3_64bits(buf + off, (size_t)(rem < BCACHE_HEAD ? rem : BCACHE_HEAD));
}

/* ---- the walk ---- */

/* The base's data chunks by head (open addressing; index + 1, 0: empty). */
struct bcache_index {
	uint64_t *x_key;
	uint32_t *x_idx;
	size_t x_mask;
};

static int
bcache_index_build(const struct bcache_list *b, struct bcache_index *x)
{
	size_t cap = 16;

	while (cap < 2 * b->bl_ndata)
		cap *= 2;
	x->x_key = calloc(cap, sizeof(*x->x_key));
	x->x_idx = calloc(cap, sizeof(*x->x_idx));
	if (x->x_key == NULL || x->x_idx == NULL)
		return -ENOMEM;
	x->x_mask = cap - 1;
	for (size_t i = 0; i < b->bl_n && i < UINT32_MAX; i++) {
		size_t j;
		if ((b->bl_sizes[i] & 1u) != 0)
			continue; /* holes are cut fast anyway, and all look alike */
		for (j = b->bl_head[i] & x->x_mask; x->x_idx[j] != 0; j = (j + 1) & x->x_mask)
			if (x->x_key[j] == b->bl_head[i])
				break;
		if (x->x_idx[j] != 0)
			continue; /* the first of the same head only */
		x->x_key[j] = b->bl_head[i];
		x->x_idx[j] = (uint32_t)i + 1;
	}
	return 0;
}

static size_t
bcache_index_find(const struct bcache_index *x, uint64_t head)
{
	for (size_t j = head & x->x_mask; x->x_idx[j] != 0; j = (j + 1) & x->x_mask)
		if (x->x_key[j] == head)
			return x->x_idx[j] - 1;
	return BCACHE_FRESH;
}

static int
bcache_walk_grow(struct bcache_walk *w, size_t cap)
{
	void *a;

	if ((a = realloc(w->bw_sizes, cap * sizeof(*w->bw_sizes))) == NULL)
		return -ENOMEM;
	w->bw_sizes = a;
	if ((a = realloc(w->bw_from, cap * sizeof(*w->bw_from))) == NULL)
		return -ENOMEM;
	w->bw_from = a;
	if ((a = realloc(w->bw_fp, cap * sizeof(*w->bw_fp))) == NULL)
		return -ENOMEM;
	w->bw_fp = a;
	if ((a = realloc(w->bw_head, cap * sizeof(*w->bw_head))) == NULL)
		return -ENOMEM;
	w->bw_head = a;
	w->bw_cap = cap;
	return 0;
}

static int
bcache_walk_add(struct bcache_walk *w, uint32_t sz, size_t from, const uint8_t *fp,
    uint64_t head)
{
	int rv;

	if (w->bw_n == w->bw_cap && (rv = bcache_walk_grow(w, 2 * w->bw_cap)) != 0)
		return rv;
	w->bw_sizes[w->bw_n] = sz;
	w->bw_from[w->bw_n] = from;
	memcpy(w->bw_fp[w->bw_n], fp, BCACHE_FP_LEN);
	w->bw_head[w->bw_n++] = head;
	return 0;
}

/*
 * Whether base chunk k (at boff) is what the chunker cuts at s of the new
 * bytes: the data goes on either as far past both (cp_max and the chunk's
 * reach at least) or exactly as far, and the bytes over its reach have its
 * fingerprint.
 */
static bool
bcache_same(const struct chunk_params *cp, const struct bcache_list *b, size_t k, uint64_t boff,
    const uint8_t *cur, uint64_t nrem, struct bcache_walk *w)
{
	uint64_t brem = b->bl_len - boff;
	uint64_t need = (uint64_t)(b->bl_sizes[k] >> 1) + CHUNK_LOOKAHEAD;
	XXH128_canonical_t c;

	need = need > cp->cp_max ? need : cp->cp_max;
	if (!(brem == nrem || (brem >= need && nrem >= need)))
		return false;
	need = (uint64_t)(b->bl_sizes[k] >> 1) + CHUNK_LOOKAHEAD;
	need = need < nrem ? need : nrem;
	w->bw_fp_bytes += need;
	XXH128_canonicalFromHash(&c, XXH3_128bits(cur, (size_t)need));
	return memcmp(c.digest, b->bl_fp[k], BCACHE_FP_LEN) == 0;
}

int
bcache_walk(const struct chunk_params *cp, const struct bcache_list *b, const uint8_t *buf,
    uint64_t len, const struct bcache_io *io, struct bcache_walk *w)
{
	struct bcache_index x = { NULL, NULL, 0 };
	uint64_t *boff = malloc((b->bl_n != 0 ? b->bl_n : 1) * sizeof(*boff));
	/* Bytes a step may read past s: a chunk's reach, or a cut's. */
	uint64_t ahead = (uint64_t)cp->cp_max + 2 * CHUNK_LOOKAHEAD, wlo = 0, whi = len;
	const uint8_t *win = buf;                /* bytes [wlo, whi) of the data */
	uint64_t s = 0, o = 0;
	size_t k = 0;
	int rv = 0;

	memset(w, 0, sizeof(*w));
	if (boff == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < b->bl_n; i++) {
		boff[i] = o;
		o += b->bl_sizes[i] >> 1;
	}
	/* Sized for the base and some more at once: growing a large array faults it in twice. */
	rv = bcache_walk_grow(w, b->bl_n + b->bl_n / 8 + 1024);
	if (rv == 0)
		rv = bcache_index_build(b, &x);
	if (io != NULL)
		whi = 0;
	while (rv == 0 && s < len) {
		size_t c = BCACHE_FRESH, h, tried = BCACHE_FRESH;
		uint64_t head, rem = len - s;
		uint8_t fp[BCACHE_FP_LEN];
		const uint8_t *cur;
		bool zero;
		size_t cut;

		if (io != NULL && s + ahead > whi && whi < len) {
			uint64_t n = io->bi_window > ahead ? io->bi_window : ahead;
			n = n < rem ? n : rem;
			win = io->bi_fn(io->bi_arg, s, n);
			if (win == NULL) {
				rv = -EIO;
				break;
			}
			wlo = s;
			whi = s + n;
		}
		cur = win + (s - wlo);
		while (k < b->bl_n && boff[k] < s)
			k++;
		/* The chunk of the base at the same offset (edits in place)... */
		if (k < b->bl_n && boff[k] == s) {
			tried = k;
			if (bcache_same(cp, b, k, boff[k], cur, rem, w))
				c = k;
		}
		/* ...or one with the same first bytes (bytes moved by an insertion, a deletion). */
		if (c == BCACHE_FRESH) {
			h = bcache_index_find(&x, XXH3_64bits(cur,
			    (size_t)(rem < BCACHE_HEAD ? rem : BCACHE_HEAD)));
			if (h != BCACHE_FRESH && h != tried &&
			    bcache_same(cp, b, h, boff[h], cur, rem, w))
				c = h;
		}
		if (c != BCACHE_FRESH) {
			rv = bcache_walk_add(w, b->bl_sizes[c], c, b->bl_fp[c], b->bl_head[c]);
			s += b->bl_sizes[c] >> 1;
			continue;
		}
		/* What it is given past cp_max does not change a cut (only the end within it does). */
		cut = chunk_next(cp, cur, (size_t)(rem < ahead ? rem : ahead), &zero);
		bcache_fp(cur, rem, 0, (uint32_t)cut, fp, &head);
		w->bw_fp_bytes += cut + CHUNK_LOOKAHEAD < rem ? cut + CHUNK_LOOKAHEAD : rem;
		rv = bcache_walk_add(w, (uint32_t)cut << 1 | (zero ? 1u : 0u), BCACHE_FRESH, fp, head);
		w->bw_cut_bytes += cut;
		s += cut;
	}
	free(x.x_key);
	free(x.x_idx);
	free(boff);
	if (rv != 0)
		bcache_walk_free(w);
	return rv;
}

void
bcache_walk_free(struct bcache_walk *w)
{
	free(w->bw_sizes);
	free(w->bw_from);
	free(w->bw_fp);
	free(w->bw_head);
	memset(w, 0, sizeof(*w));
}

/* ---- the file ---- */

static uint8_t *
bcache_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint8_t *
bcache_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint32_t
bcache_get32(const uint8_t **p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)(*p)[i] << (8 * i);
	*p += 4;
	return v;
}

static uint64_t
bcache_get64(const uint8_t **p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)(*p)[i] << (8 * i);
	*p += 8;
	return v;
}

int
bcache_path(const char *dir, const char *node, const char *component, char *out,
    size_t outlen)
{
	int k = snprintf(out, outlen, "%s/%s@%s.bcache", dir, node, component);
	return k < 0 || (size_t)k >= outlen ? -ENAMETOOLONG : 0;
}

static size_t
bcache_file_size(size_t n, size_t ndata)
{
	return BCACHE_HEADER + n * BCACHE_PER_CHUNK + ndata * SHA_LEN + BCACHE_FP_LEN;
}

int
bcache_save(const char *path, const char *node, const char *component,
    const struct bcache_list *l, char *err, size_t errlen)
{
	size_t size = bcache_file_size(l->bl_n, l->bl_ndata), done = 0;
	char tmp[4096];
	uint8_t *buf, *p;
	XXH128_canonical_t c;
	int fd, rv = 0;

	if (strlen(node) > KEY_NAME_MAX || strlen(component) > KEY_NAME_MAX) {
		snprintf(err, errlen, "name too long");
		return -EINVAL;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "path too long");
		return -ENAMETOOLONG;
	}
	buf = p = calloc(1, size);
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(p, BCACHE_MAGIC, 8);
	p = bcache_put32(p + 8, BCACHE_VERSION);
	p = bcache_put32(p, l->bl_min);
	p = bcache_put32(p, l->bl_avg);
	p = bcache_put32(p, l->bl_max);
	p = bcache_put64(p, l->bl_len);
	p = bcache_put64(p, l->bl_n);
	p = bcache_put64(p, l->bl_ndata);
	memcpy(p, l->bl_digest, SHA_LEN);
	p += SHA_LEN;
	memcpy(p, node, strlen(node));
	p += BCACHE_NAME_FIELD;
	memcpy(p, component, strlen(component));
	p += BCACHE_NAME_FIELD;
	for (size_t i = 0; i < l->bl_n; i++) {
		p = bcache_put32(p, l->bl_sizes[i]);
		memcpy(p, l->bl_fp[i], BCACHE_FP_LEN);
		p = bcache_put64(p + BCACHE_FP_LEN, l->bl_head[i]);
	}
	memcpy(p, l->bl_sha, l->bl_ndata * SHA_LEN);
	p += l->bl_ndata * SHA_LEN;
	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, (size_t)(p - buf)));
	memcpy(p, c.digest, BCACHE_FP_LEN);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		free(buf);
		return rv;
	}
	while (done < size) {
		ssize_t k = write(fd, buf + done, size - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rv = -errno;
			snprintf(err, errlen, "writing %s: %s", tmp, strerror(errno));
			break;
		}
		done += (size_t)k;
	}
	/* No fsync: a cache file lost or torn in a crash is refused, and the store is whole. */
	if (close(fd) != 0 && rv == 0) {
		rv = -errno;
		snprintf(err, errlen, "writing %s: %s", tmp, strerror(errno));
	}
	if (rv == 0 && rename(tmp, path) != 0) {
		rv = -errno;
		snprintf(err, errlen, "rename to %s: %s", path, strerror(errno));
	}
	if (rv != 0)
		(void)unlink(tmp);
	free(buf);
	return rv;
}

/* Reads the whole of path (at most max bytes) into a malloc'ed buffer. */
static int
bcache_read(const char *path, size_t max, uint8_t **ret_buf, size_t *ret_len, char *err,
    size_t errlen)
{
	struct stat sb;
	size_t done = 0;
	uint8_t *buf;
	int fd, rv = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rv;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > max ||
	    (uint64_t)sb.st_size < BCACHE_HEADER) {
		snprintf(err, errlen, "%s: not a cache file (size)", path);
		close(fd);
		return -EBADMSG;
	}
	/* The size its header gives, before reading (and allocating) the rest. */
	{
		uint8_t h[BCACHE_HEADER];
		const uint8_t *p = h + 8 + 4 * 4 + 8;
		uint64_t n, ndata;
		if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
			snprintf(err, errlen, "%s: not a cache file (short)", path);
			close(fd);
			return -EBADMSG;
		}
		n = bcache_get64(&p);
		ndata = bcache_get64(&p);
		if (n > BCACHE_CHUNKS_MAX || ndata > n ||
		    (uint64_t)sb.st_size != bcache_file_size((size_t)n, (size_t)ndata)) {
			snprintf(err, errlen, "%s: size does not match its header", path);
			close(fd);
			return -EBADMSG;
		}
	}
	buf = malloc((size_t)sb.st_size);
	if (buf == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while (done < (size_t)sb.st_size) {
		ssize_t k = read(fd, buf + done, (size_t)sb.st_size - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			rv = k < 0 ? -errno : -EBADMSG;
			snprintf(err, errlen, "reading %s: %s", path, k < 0 ? strerror(errno) : "short");
			break;
		}
		done += (size_t)k;
	}
	close(fd);
	if (rv != 0) {
		free(buf);
		return rv;
	}
	*ret_buf = buf;
	*ret_len = done;
	return 0;
}

int
bcache_load(const char *path, const char *node, const char *component,
    struct bcache_list *ret_list, char *err, size_t errlen)
{
	size_t max = bcache_file_size(BCACHE_CHUNKS_MAX, BCACHE_CHUNKS_MAX), len = 0;
	struct bcache_list l = { 0 };
	char name[BCACHE_NAME_FIELD];
	uint8_t *buf = NULL;
	const uint8_t *p;
	XXH128_canonical_t c;
	uint32_t min, avg, mx;
	uint64_t blen, n, ndata;
	int rv;

	rv = bcache_read(path, max, &buf, &len, err, errlen);
	if (rv != 0)
		return rv;
	p = buf;
	rv = -EBADMSG;
	if (memcmp(p, BCACHE_MAGIC, 8) != 0) {
		snprintf(err, errlen, "%s: not a cache file", path);
		goto out;
	}
	p += 8;
	if (bcache_get32(&p) != BCACHE_VERSION) {
		snprintf(err, errlen, "%s: another version", path);
		goto out;
	}
	min = bcache_get32(&p);
	avg = bcache_get32(&p);
	mx = bcache_get32(&p);
	blen = bcache_get64(&p);
	n = bcache_get64(&p);
	ndata = bcache_get64(&p);
	if (n > BCACHE_CHUNKS_MAX || ndata > n || len != bcache_file_size(n, ndata)) {
		snprintf(err, errlen, "%s: size does not match its header", path);
		goto out;
	}
	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, len - BCACHE_FP_LEN));
	if (memcmp(c.digest, buf + len - BCACHE_FP_LEN, BCACHE_FP_LEN) != 0) {
		snprintf(err, errlen, "%s: corrupt (checksum)", path);
		goto out;
	}
	rv = bcache_list_alloc(&l, n, ndata);
	if (rv != 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rv = -EBADMSG;
	l.bl_min = min;
	l.bl_avg = avg;
	l.bl_max = mx;
	l.bl_len = blen;
	memcpy(l.bl_digest, p, SHA_LEN);
	p += SHA_LEN;
	memcpy(name, p, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	p += BCACHE_NAME_FIELD;
	if (strcmp(name, node) != 0) {
		snprintf(err, errlen, "%s: of another node", path);
		goto out;
	}
	memcpy(name, p, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	p += BCACHE_NAME_FIELD;
	if (strcmp(name, component) != 0) {
		snprintf(err, errlen, "%s: of another component", path);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		l.bl_sizes[i] = bcache_get32(&p);
		memcpy(l.bl_fp[i], p, BCACHE_FP_LEN);
		p += BCACHE_FP_LEN;
		l.bl_head[i] = bcache_get64(&p);
	}
	memcpy(l.bl_sha, p, ndata * SHA_LEN);
	{
		char why[128];
		if (bcache_list_check(&l, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s: %s", path, why);
			goto out;
		}
	}
	*ret_list = l;
	memset(&l, 0, sizeof(l));
	rv = 0;
out:
	bcache_list_free(&l);
	free(buf);
	return rv;
}

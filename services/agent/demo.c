#include "demo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct demo {
	char d_name[KEY_NAME_MAX + 1];
	uint32_t d_name_len;
	uint64_t d_counter;
	uint8_t *d_buf;
	uint64_t d_len;
	/*
	 * The serialised state, header then buffer (d_buf points into it), so
	 * that a checkpoint reads it where it lies (demo_state_view()).
	 */
	uint8_t *d_mem;
};

#define DEMO_FNV_OFFSET 0xcbf29ce484222325ull
#define DEMO_FNV_PRIME 0x100000001b3ull

static uint64_t
demo_fnv1a(const char *s)
{
	uint64_t h = DEMO_FNV_OFFSET;
	for (; *s != '\0'; s++) {
		h ^= (uint8_t)*s;
		h *= DEMO_FNV_PRIME;
	}
	return h;
}

static uint64_t
demo_xorshift64s(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* splitmix64's finaliser: a well-mixed function of one counter value. */
static uint64_t
demo_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void
demo_put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
demo_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
demo_get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t
demo_get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static size_t demo_header(const struct demo *d, uint8_t out[DEMO_HEADER_MAX]);

/*
 * Allocates a demo with an uninitialised buffer of len bytes, behind its
 * header in one block (the serialised layout).
 */
static int
demo_alloc(const char *name, size_t name_len, uint64_t len, struct demo **ret_demo)
{
	struct demo *d = calloc(1, sizeof(*d));
	size_t hlen;

	if (d == NULL)
		return -ENOMEM;
	memcpy(d->d_name, name, name_len);
	d->d_name[name_len] = '\0';
	d->d_name_len = (uint32_t)name_len;
	d->d_len = len;
	hlen = demo_buffer_offset(d);
	d->d_mem = malloc(hlen + (size_t)len);
	if (d->d_mem == NULL) {
		free(d);
		return -ENOMEM;
	}
	d->d_buf = d->d_mem + hlen;
	*ret_demo = d;
	return 0;
}

int
demo_new(const char *name, uint64_t bytes, struct demo **ret_demo)
{
	struct demo *d;
	uint64_t seed;
	int rv;

	if (key_name_check(name) != 0 || bytes > DEMO_BYTES_MAX)
		return -EINVAL;
	rv = demo_alloc(name, strlen(name), bytes, &d);
	if (rv != 0)
		return rv;
	seed = demo_fnv1a(name);
	if (seed == 0)
		seed = DEMO_FNV_OFFSET; /* xorshift must not start at 0 */
	for (uint64_t off = 0; off < bytes; off += 8) {
		uint8_t word[8];
		uint64_t n = bytes - off < 8 ? bytes - off : 8;
		demo_put_u64(word, demo_xorshift64s(&seed));
		memcpy(d->d_buf + off, word, (size_t)n);
	}
	*ret_demo = d;
	return 0;
}

void
demo_free(struct demo *d)
{
	if (d == NULL)
		return;
	free(d->d_mem);
	free(d);
}

unsigned
demo_tick_at(struct demo *d, uint64_t ret_pos[DEMO_TICK_BYTES])
{
	uint64_t h;

	d->d_counter++;
	if (d->d_len == 0)
		return 0;
	h = d->d_counter;
	for (unsigned k = 0; k < DEMO_TICK_BYTES; k++) {
		h = demo_mix(h);
		ret_pos[k] = h % d->d_len;
		/* Or-ing 1 in makes the xor change the byte it touches. */
		d->d_buf[ret_pos[k]] ^= (uint8_t)((h >> 56) | 1u);
	}
	return DEMO_TICK_BYTES;
}

void
demo_tick(struct demo *d)
{
	uint64_t pos[DEMO_TICK_BYTES];
	(void)demo_tick_at(d, pos);
}

size_t
demo_buffer_offset(const struct demo *d)
{
	return DEMO_MAGIC_LEN + 8 + 4 + d->d_name_len + 8;
}

const char *
demo_name(const struct demo *d)
{
	return d->d_name;
}

uint64_t
demo_counter(const struct demo *d)
{
	return d->d_counter;
}

uint64_t
demo_bytes(const struct demo *d)
{
	return d->d_len;
}

static size_t
demo_header(const struct demo *d, uint8_t out[DEMO_HEADER_MAX])
{
	size_t n = 0;
	memcpy(out, DEMO_MAGIC, DEMO_MAGIC_LEN);
	n += DEMO_MAGIC_LEN;
	demo_put_u64(out + n, d->d_counter);
	n += 8;
	demo_put_u32(out + n, d->d_name_len);
	n += 4;
	memcpy(out + n, d->d_name, d->d_name_len);
	n += d->d_name_len;
	demo_put_u64(out + n, d->d_len);
	n += 8;
	return n;
}

size_t
demo_state_size(const struct demo *d)
{
	return DEMO_MAGIC_LEN + 8 + 4 + d->d_name_len + 8 + (size_t)d->d_len;
}

int
demo_serialize(const struct demo *d, void **ret_buf, size_t *ret_len)
{
	uint8_t hdr[DEMO_HEADER_MAX];
	size_t hlen = demo_header(d, hdr);
	uint8_t *buf = malloc(hlen + (size_t)d->d_len);

	if (buf == NULL)
		return -ENOMEM;
	memcpy(buf, hdr, hlen);
	if (d->d_len > 0)
		memcpy(buf + hlen, d->d_buf, (size_t)d->d_len);
	*ret_buf = buf;
	*ret_len = hlen + (size_t)d->d_len;
	return 0;
}

void
demo_state_view(struct demo *d, const void **ret_state, size_t *ret_len)
{
	uint8_t hdr[DEMO_HEADER_MAX];
	size_t hlen = demo_header(d, hdr);

	/* The header as it stands (its counter moves with every tick). */
	memcpy(d->d_mem, hdr, hlen);
	*ret_state = d->d_mem;
	*ret_len = hlen + (size_t)d->d_len;
}

int
demo_sha256(const struct demo *d, uint8_t ret_digest[SHA_LEN])
{
	uint8_t hdr[DEMO_HEADER_MAX];
	size_t hlen = demo_header(d, hdr);
	struct sha_ctx *c;
	int rv;

	rv = sha_new(&c);
	if (rv != 0)
		return rv;
	sha_update(c, hdr, hlen);
	sha_update(c, d->d_buf, (size_t)d->d_len);
	sha_final(c, ret_digest);
	sha_free(c);
	return 0;
}

int
demo_digest(const struct demo *d, const struct chunk_params *cp, uint8_t ret_digest[SHA_LEN])
{
	uint8_t hdr[DEMO_HEADER_MAX];
	size_t hlen = demo_header(d, hdr);

	return digest_buf2(cp, hdr, hlen, d->d_buf, (size_t)d->d_len, ret_digest);
}

/*
 * Checks serialised state: on success the buffer's bytes are at p + *ret_off,
 * *ret_blen of them, and name holds the component's name.
 */
static int
demo_parse(const uint8_t *p, size_t len, char name[KEY_NAME_MAX + 1], size_t *ret_off,
    uint64_t *ret_blen, const char **why)
{
	const char *reason;
	uint32_t nlen;
	uint64_t blen;
	size_t off;

	if (len < DEMO_MAGIC_LEN + 8 + 4) {
		reason = "truncated header";
		goto out_bad;
	}
	if (memcmp(p, DEMO_MAGIC, DEMO_MAGIC_LEN) != 0) {
		reason = "bad magic (not a demo state)";
		goto out_bad;
	}
	nlen = demo_get_u32(p + 16);
	if (nlen == 0 || nlen > KEY_NAME_MAX) {
		reason = "name length out of range";
		goto out_bad;
	}
	off = DEMO_MAGIC_LEN + 8 + 4;
	if (len - off < (size_t)nlen + 8) {
		reason = "truncated name or buffer length";
		goto out_bad;
	}
	memcpy(name, p + off, nlen);
	name[nlen] = '\0';
	if (strlen(name) != nlen || key_name_check(name) != 0) {
		reason = "invalid component name";
		goto out_bad;
	}
	off += nlen;
	blen = demo_get_u64(p + off);
	off += 8;
	if (blen > DEMO_BYTES_MAX) {
		reason = "buffer length out of range";
		goto out_bad;
	}
	if (len - off != blen) {
		reason = len - off < blen ? "truncated buffer" : "bytes after the buffer";
		goto out_bad;
	}
	*ret_off = off;
	*ret_blen = blen;
	return 0;

out_bad:
	if (why != NULL)
		*why = reason;
	return -EBADMSG;
}

/* A demo whose state is mem (malloc'ed, taken), its buffer data (blen bytes) in it. */
static int
demo_adopt(const char *name, const uint8_t *state, uint8_t *data, uint64_t blen, uint8_t *mem,
    struct demo **ret_demo)
{
	struct demo *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -ENOMEM;
	d->d_name_len = (uint32_t)strlen(name);
	memcpy(d->d_name, name, d->d_name_len + 1);
	d->d_counter = demo_get_u64(state + DEMO_MAGIC_LEN);
	d->d_buf = data;
	d->d_len = blen;
	d->d_mem = mem;
	*ret_demo = d;
	return 0;
}

int
demo_restore(const void *buf, size_t len, struct demo **ret_demo, const char **why)
{
	char name[KEY_NAME_MAX + 1];
	uint64_t blen;
	size_t off;
	void *copy;
	int rv;

	rv = demo_parse(buf, len, name, &off, &blen, why);
	if (rv != 0)
		return rv;
	copy = malloc(len);
	if (copy == NULL)
		return -ENOMEM;
	memcpy(copy, buf, len);
	rv = demo_adopt(name, copy, (uint8_t *)copy + off, blen, copy, ret_demo);
	if (rv != 0)
		free(copy);
	return rv;
}

int
demo_restore_take(void *buf, size_t len, struct demo **ret_demo, const char **why)
{
	char name[KEY_NAME_MAX + 1];
	uint64_t blen;
	size_t off;
	int rv;

	rv = demo_parse(buf, len, name, &off, &blen, why);
	if (rv != 0)
		return rv;
	return demo_adopt(name, buf, (uint8_t *)buf + off, blen, buf, ret_demo);
}

/*
 * testbuf: deterministic bytes for the unit tests (header only, included by
 * the test programs that need it).
 */
#ifndef CKPT_TESTBUF_H
#define CKPT_TESTBUF_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* len bytes that differ with seed (malloc'ed; at least 1 byte is allocated). */
static inline uint8_t *
testbuf_bytes(size_t len, unsigned seed)
{
	uint8_t *b = malloc(len != 0 ? len : 1);
	uint32_t x = seed * 2654435761u + 1;

	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (uint8_t)(x >> 16);
	}
	return b;
}

/* A memory image: testbuf_bytes() in 4 KiB pages, about half of them zero. */
static inline uint8_t *
testbuf_image(size_t len, unsigned seed)
{
	uint8_t *b = testbuf_bytes(len, seed);
	uint32_t x = seed;

	for (size_t off = 0; off + 4096 <= len; off += 4096) {
		x = x * 1103515245u + 12345u;
		if ((x >> 16) & 1)
			memset(b + off, 0, 4096);
	}
	return b;
}

/* Bytes in memory read in pieces of at most m_step, as a pipe hands them out. */
struct membuf {
	const uint8_t *m_data;
	size_t m_len, m_off, m_step;
};

/* A reader (nasc_read_fn) over a struct membuf. */
static inline ssize_t
membuf_read(void *arg, void *buf, size_t len)
{
	struct membuf *m = arg;
	size_t k = m->m_len - m->m_off;

	k = k < len ? k : len;
	k = k < m->m_step ? k : m->m_step;
	memcpy(buf, m->m_data + m->m_off, k);
	m->m_off += k;
	return (ssize_t)k;
}

#endif

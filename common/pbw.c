#include "pbw.h"

#include <string.h>

/* Tags: field number << 3 | wire type. */
#define PBW_TAG_REPLY_CHUNKS 0x0a /* GetChunksReply.chunks = 1, length-delimited */
#define PBW_TAG_SHA256 0x0a       /* Chunk.sha256 = 1, length-delimited */
#define PBW_TAG_DATA 0x12         /* Chunk.data = 2, length-delimited */
#define PBW_TAG_RAW_SIZE 0x18     /* Chunk.raw_size = 3, varint */
#define PBW_TAG_CODEC 0x20        /* Chunk.codec = 4, varint */

size_t
pbw_varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

uint8_t *
pbw_varint_put(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Bytes of a length-delimited field of len bytes (proto3: none when empty). */
static size_t
pbw_bytes_len(size_t len)
{
	return len != 0 ? 1 + pbw_varint_len(len) + len : 0;
}

/* Bytes of a uint32 field (proto3: none when 0). */
static size_t
pbw_u32_len(uint32_t v)
{
	return v != 0 ? 1 + pbw_varint_len(v) : 0;
}

/* The encoded Chunk message alone, without its tag and length. */
static size_t
pbw_chunk_body_len(const struct pbw_chunk *c)
{
	return pbw_bytes_len(c->pc_sha256_len) + pbw_bytes_len(c->pc_len + c->pc_tail_len) +
	    pbw_u32_len(c->pc_raw_size) + pbw_u32_len(c->pc_codec);
}

size_t
pbw_reply_chunk_len(const struct pbw_chunk *c)
{
	size_t body = pbw_chunk_body_len(c);
	return 1 + pbw_varint_len(body) + body;
}

uint8_t *
pbw_reply_chunk_put(uint8_t *p, const struct pbw_chunk *c)
{
	size_t data_len = c->pc_len + c->pc_tail_len;

	*p++ = PBW_TAG_REPLY_CHUNKS;
	p = pbw_varint_put(p, pbw_chunk_body_len(c));
	if (c->pc_sha256_len != 0) {
		*p++ = PBW_TAG_SHA256;
		p = pbw_varint_put(p, c->pc_sha256_len);
		memcpy(p, c->pc_sha256, c->pc_sha256_len);
		p += c->pc_sha256_len;
	}
	if (data_len != 0) {
		*p++ = PBW_TAG_DATA;
		p = pbw_varint_put(p, data_len);
		if (c->pc_len != 0)
			memcpy(p, c->pc_data, c->pc_len);
		p += c->pc_len;
		if (c->pc_tail_len != 0)
			memcpy(p, c->pc_tail, c->pc_tail_len);
		p += c->pc_tail_len;
	}
	if (c->pc_raw_size != 0) {
		*p++ = PBW_TAG_RAW_SIZE;
		p = pbw_varint_put(p, c->pc_raw_size);
	}
	if (c->pc_codec != 0) {
		*p++ = PBW_TAG_CODEC;
		p = pbw_varint_put(p, c->pc_codec);
	}
	return p;
}

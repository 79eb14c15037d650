/*
 * pbw: writes the protobuf wire format by hand, for the one message too big
 * to go through a copy: a GetChunks reply, whose chunk bytes are written
 * straight from the NAS's LMDB map into the outgoing nng message.
 *
 * What it writes is byte for byte what protobuf-c packs for the same message
 * (minimal varints, fields in number order, proto3 fields that hold zero or
 * nothing left out), so readers in any language decode it as usual. pbv.h
 * is the reader.
 */
#ifndef CKPT_PBW_H
#define CKPT_PBW_H

#include <stddef.h>
#include <stdint.h>

#define PBW_VARINT_MAX 10 /* bytes of the longest varint (a uint64) */

/* Bytes of v as a varint. */
size_t pbw_varint_len(uint64_t v);
/* Writes v as a varint at p; returns the byte after it. */
uint8_t *pbw_varint_put(uint8_t *p, uint64_t v);

/*
 * One ckpt.v1.Chunk (nas.proto) whose data may be in two pieces (a stored
 * chunk's head and its "tail"): the data is pc_data followed by pc_tail.
 */
struct pbw_chunk {
	const uint8_t *pc_sha256;
	size_t pc_sha256_len;
	const uint8_t *pc_data;
	size_t pc_len;
	const uint8_t *pc_tail;   /* may be NULL when pc_tail_len is 0 */
	size_t pc_tail_len;
	uint32_t pc_raw_size;
	uint32_t pc_codec;
};

/*
 * A GetChunksReply is its chunks one after the other, each as field 1
 * (repeated Chunk chunks = 1): these give the bytes of one such field and
 * write it at p (returning the byte after it). An empty reply is 0 bytes.
 */
size_t pbw_reply_chunk_len(const struct pbw_chunk *c);
uint8_t *pbw_reply_chunk_put(uint8_t *p, const struct pbw_chunk *c);

#endif

/*
 * chunkv: ckpt.v1.Chunk messages (nas.proto) read in place, where megabytes
 * of chunk bytes arrive: a GetChunks reply on the client, a PutChunks request
 * on the NAS. protobuf-c would copy every chunk's bytes into new memory (and
 * zero that memory first); here the bytes fields of the messages filled in
 * point into the buffer read, which must outlive them.
 *
 * What is accepted is what protobuf-c accepts, except that a raw_size or
 * codec varint past 32 bits is refused instead of cut to 32 bits; unknown
 * fields are skipped; a field of the wrong wire type is refused.
 */
#ifndef CKPT_CHUNKV_H
#define CKPT_CHUNKV_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "ckpt/v1/nas.pb-c.h"

/* Reads one Chunk into *ret_chunk (initialised here). -EPROTO when it is not one. */
int chunkv_parse(const uint8_t *data, size_t len, Ckpt__V1__Chunk *ret_chunk);
/*
 * Reads one ChunkRef (common.proto: a Retrieve reply's entries) into
 * *ret_ref, its sha256 pointing into data. -EPROTO when it is not one.
 */
int chunkv_ref_parse(const uint8_t *data, size_t len, Ckpt__V1__ChunkRef *ret_ref);

/*
 * Reads a PutChunksRequest of at most max chunks: the message, its chunk
 * array and chunks come from a; their bytes point into data. -EPROTO when
 * it is not one, -E2BIG when it has more chunks (nothing allocated: a body
 * of empty chunks would otherwise cost 40 bytes of memory per 2 bytes
 * received), -ENOMEM.
 */
int chunkv_put_request(struct arena *a, const uint8_t *data, size_t len, size_t max,
    Ckpt__V1__PutChunksRequest **ret_req);

#endif

/*
 * pbv, the in-place protobuf reader the client uses for GetChunks replies:
 * on any bytes it stays inside the buffer (ASan), every field it returns
 * lies within it, and a reply both it and protobuf-c accept holds the same
 * chunks (pbv refuses some framing protobuf-c lets through, field 0 say).
 * The same bytes read as a PutChunksRequest by chunkv (the NAS's in-place
 * reader): whatever it accepts, protobuf-c accepts with the same chunks,
 * field for field, and every byte field points into the input. As one
 * ChunkRef (a Retrieve reply's entry, read in place by the client): what
 * chunkv_ref_parse accepts, protobuf-c reads the same. And as a request
 * envelope: what rpc_envelope_read accepts, protobuf-c unpacks to
 * the same method, deadline, body and service.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "chunkv.h"
#include "ckpt/v1/nas.pb-c.h"
#include "pbv.h"
#include "rpc.h"
#include "ckpt/v1/rpc.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks buf; 0 at its end, -EPROTO on bad framing. Counts top-level fields numbered 1. */
static int
walk(const uint8_t *buf, size_t len, size_t *ret_ones, const uint8_t **ret_last_data,
    size_t *ret_last_len)
{
	struct pbv v;
	struct pbv_field f;
	int rv;

	*ret_ones = 0;
	pbv_init(&v, buf, len);
	while ((rv = pbv_next(&v, &f)) == 1) {
		if (f.pf_num == 0)
			abort();
		if (f.pf_wire == PBV_LEN &&
		    (f.pf_data < buf || f.pf_len > len || f.pf_data + f.pf_len > buf + len))
			abort();
		if (f.pf_num == 1 && f.pf_wire == PBV_LEN) {
			(*ret_ones)++;
			if (ret_last_data != NULL) {
				*ret_last_data = f.pf_data;
				*ret_last_len = f.pf_len;
			}
		}
	}
	return rv;
}

static int
same_bytes(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void
check_chunkv(const uint8_t *data, size_t size)
{
	Ckpt__V1__PutChunksRequest *mine, *pc;
	struct arena *a = NULL;

	if (arena_new(&a) != 0)
		abort();
	if (chunkv_put_request(a, data, size, SIZE_MAX, &mine) == 0) {
		pc = ckpt__v1__put_chunks_request__unpack(NULL, size, data);
		if (pc == NULL || pc->n_chunks != mine->n_chunks)
			abort();
		for (size_t i = 0; i < pc->n_chunks; i++) {
			const Ckpt__V1__Chunk *x = mine->chunks[i], *y = pc->chunks[i];
			if (!same_bytes(&x->sha256, &y->sha256) || !same_bytes(&x->data, &y->data) ||
			    x->raw_size != y->raw_size || x->codec != y->codec)
				abort();
			if (x->data.len != 0 && (x->data.data < data || x->data.data + x->data.len > data + size))
				abort();
		}
		ckpt__v1__put_chunks_request__free_unpacked(pc, NULL);
	}
	arena_free(a);
}

static void
check_ref(const uint8_t *data, size_t size)
{
	Ckpt__V1__ChunkRef mine, *pc;

	if (chunkv_ref_parse(data, size, &mine) != 0)
		return;
	pc = ckpt__v1__chunk_ref__unpack(NULL, size, data);
	if (pc == NULL || !same_bytes(&mine.sha256, &pc->sha256) || mine.size != pc->size ||
	    mine.zero != pc->zero)
		abort();
	if (mine.sha256.len != 0 &&
	    (mine.sha256.data < data || mine.sha256.data + mine.sha256.len > data + size))
		abort();
	ckpt__v1__chunk_ref__free_unpacked(pc, NULL);
}

static void
check_envelope(const uint8_t *data, size_t size)
{
	struct rpc_envelope e;
	Ckpt__V1__Request *pc;

	if (rpc_envelope_read(data, size, &e) != 0)
		return;
	pc = ckpt__v1__request__unpack(NULL, size, data);
	if (pc == NULL || pc->method != e.en_method || pc->timeout_ms != e.en_timeout_ms ||
	    pc->body.len != e.en_body_len ||
	    (e.en_body_len != 0 && memcmp(pc->body.data, e.en_body, e.en_body_len) != 0) ||
	    (e.en_body_len != 0 && (e.en_body < data || e.en_body + e.en_body_len > data + size)))
		abort();
	/* protobuf-c's string ends at its first NUL, ours is the bytes sent. */
	if (strlen(pc->service) > e.en_service_len ||
	    memcmp(pc->service, e.en_service != NULL ? (const char *)e.en_service : "",
	        strlen(pc->service)) != 0)
		abort();
	ckpt__v1__request__free_unpacked(pc, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Ckpt__V1__GetChunksReply *rep;
	size_t ones;
	int rv;

	check_chunkv(data, size);
	check_ref(data, size);
	check_envelope(data, size);
	rv = walk(data, size, &ones, NULL, NULL);
	rep = ckpt__v1__get_chunks_reply__unpack(NULL, size, data);
	if (rep == NULL)
		return 0;
	/* pbv is stricter than protobuf-c (field number 0, say): agree when both accept. */
	if (rv != 0) {
		ckpt__v1__get_chunks_reply__free_unpacked(rep, NULL);
		return 0;
	}
	if (ones != rep->n_chunks)
		abort();
	/* Each chunk as pbv reads it: its sha256 (field 1) is protobuf-c's. */
	{
		struct pbv v;
		struct pbv_field f;
		size_t i = 0;
		pbv_init(&v, data, size);
		while (pbv_next(&v, &f) == 1) {
			const uint8_t *sha = NULL;
			size_t sha_len = 0, n;
			if (f.pf_num != 1 || f.pf_wire != PBV_LEN)
				continue;
			if (walk(f.pf_data, f.pf_len, &n, &sha, &sha_len) != 0)
				break; /* pbv refuses the chunk: the client answers DATA_LOSS */
			if (sha_len != rep->chunks[i]->sha256.len ||
			    (sha_len != 0 && memcmp(sha, rep->chunks[i]->sha256.data, sha_len) != 0))
				abort();
			i++;
		}
	}
	ckpt__v1__get_chunks_reply__free_unpacked(rep, NULL);
	return 0;
}

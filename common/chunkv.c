#include "chunkv.h"

#include <errno.h>

#include "pbv.h"

int
chunkv_parse(const uint8_t *data, size_t len, Ckpt__V1__Chunk *ret_chunk)
{
	Ckpt__V1__Chunk c = CKPT__V1__CHUNK__INIT;
	struct pbv_field f;
	struct pbv v;
	int rv;

	pbv_init(&v, data, len);
	while ((rv = pbv_next(&v, &f)) == 1) {
		switch (f.pf_num) {
		case 1: /* sha256 */
		case 2: /* data */
			if (f.pf_wire != PBV_LEN)
				return -EPROTO;
			*(f.pf_num == 1 ? &c.sha256 : &c.data) =
			    (ProtobufCBinaryData){ f.pf_len, (uint8_t *)f.pf_data };
			break;
		case 3: /* raw_size */
		case 4: /* codec */
			if (f.pf_wire != PBV_VARINT || f.pf_u64 > UINT32_MAX)
				return -EPROTO;
			*(f.pf_num == 3 ? &c.raw_size : &c.codec) = (uint32_t)f.pf_u64;
			break;
		default:
			break;
		}
	}
	if (rv != 0)
		return rv;
	*ret_chunk = c;
	return 0;
}

int
chunkv_put_request(struct arena *a, const uint8_t *data, size_t len, size_t max,
    Ckpt__V1__PutChunksRequest **ret_req)
{
	Ckpt__V1__PutChunksRequest *req;
	Ckpt__V1__Chunk *chunks;
	struct pbv_field f;
	struct pbv v;
	size_t n = 0, i = 0;
	int rv;

	/* Count first (field 1, repeated Chunk), so that one array holds them all. */
	pbv_init(&v, data, len);
	while ((rv = pbv_next(&v, &f)) == 1) {
		if (f.pf_num != 1)
			continue;
		if (f.pf_wire != PBV_LEN)
			return -EPROTO;
		n++;
	}
	if (rv != 0)
		return rv;
	if (n > max)
		return -E2BIG;
	req = arena_alloc(a, sizeof(*req));
	chunks = arena_alloc(a, (n ? n : 1) * sizeof(*chunks));
	if (req == NULL || chunks == NULL)
		return -ENOMEM;
	ckpt__v1__put_chunks_request__init(req);
	req->chunks = arena_alloc(a, (n ? n : 1) * sizeof(*req->chunks));
	if (req->chunks == NULL)
		return -ENOMEM;
	pbv_init(&v, data, len);
	while (pbv_next(&v, &f) == 1) {
		if (f.pf_num != 1)
			continue;
		rv = chunkv_parse(f.pf_data, f.pf_len, &chunks[i]);
		if (rv != 0)
			return rv;
		req->chunks[i] = &chunks[i];
		i++;
	}
	req->n_chunks = n;
	*ret_req = req;
	return 0;
}

int
chunkv_ref_parse(const uint8_t *data, size_t len, Ckpt__V1__ChunkRef *ret_ref)
{
	Ckpt__V1__ChunkRef c = CKPT__V1__CHUNK_REF__INIT;
	struct pbv_field f;
	struct pbv v;
	int rv;

	pbv_init(&v, data, len);
	while ((rv = pbv_next(&v, &f)) == 1) {
		if (f.pf_num == 1 && f.pf_wire == PBV_LEN)
			c.sha256 = (ProtobufCBinaryData){ f.pf_len, (uint8_t *)f.pf_data };
		else if (f.pf_num == 2 && f.pf_wire == PBV_VARINT)
			c.size = (uint32_t)f.pf_u64; /* as protobuf-c reads a uint32 */
		else if (f.pf_num == 3 && f.pf_wire == PBV_VARINT)
			c.zero = f.pf_u64 != 0;
		else if (f.pf_num >= 1 && f.pf_num <= 3)
			return -EPROTO;
	}
	if (rv != 0)
		return rv;
	*ret_ref = c;
	return 0;
}

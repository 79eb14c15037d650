/*
 * pbv: reads the protobuf wire format in place, without copying or
 * allocating: for the few messages too big to unpack (a GetChunks reply
 * holds megabytes of chunks, which protobuf-c would copy field by field).
 *
 * The reader checks the framing only (tags, varints, lengths within the
 * buffer); what a field means, and whether its wire type is the expected
 * one, is for the caller.
 */
#ifndef CKPT_PBV_H
#define CKPT_PBV_H

#include <stddef.h>
#include <stdint.h>

enum pbv_wire { PBV_VARINT = 0, PBV_I64 = 1, PBV_LEN = 2, PBV_I32 = 5 };

struct pbv {
	const uint8_t *pv_p;
	const uint8_t *pv_end;
};

struct pbv_field {
	uint32_t pf_num;         /* field number, 1 or more */
	enum pbv_wire pf_wire;
	uint64_t pf_u64;         /* PBV_VARINT, PBV_I64, PBV_I32 */
	const uint8_t *pf_data;  /* PBV_LEN: the bytes, inside the buffer read */
	size_t pf_len;
};

void pbv_init(struct pbv *v, const void *data, size_t len);
/*
 * Reads the next field into *ret_f: returns 1, or 0 at the end of the
 * buffer, or -EPROTO when the buffer is not protobuf (a varint over 10
 * bytes, a tag or a length over 5 as protobuf-c refuses them too, a varint
 * cut short, a length past the end, field number 0, a group or an unknown
 * wire type).
 */
int pbv_next(struct pbv *v, struct pbv_field *ret_f);

#endif

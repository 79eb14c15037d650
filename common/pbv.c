#include "pbv.h"

#include <errno.h>

#define PBV_FIELD_MAX ((1u << 29) - 1)

void
pbv_init(struct pbv *v, const void *data, size_t len)
{
	v->pv_p = data;
	v->pv_end = v->pv_p + len;
}

/*
 * A varint of at most max bytes: 10 for a value, 5 for a tag or a length
 * (32 bits, as protobuf-c reads them: it refuses longer ones, so must we).
 */
static int
pbv_varint(struct pbv *v, unsigned max, uint64_t *ret_u)
{
	uint64_t u = 0;

	for (unsigned i = 0; i < max; i++) {
		uint8_t b;
		if (v->pv_p == v->pv_end)
			return -EPROTO;
		b = *v->pv_p++;
		if (i == 9 && b > 1)
			return -EPROTO; /* past 64 bits */
		u |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			*ret_u = u;
			return 0;
		}
	}
	return -EPROTO;
}

static int
pbv_fixed(struct pbv *v, size_t n, uint64_t *ret_u)
{
	uint64_t u = 0;

	if ((size_t)(v->pv_end - v->pv_p) < n)
		return -EPROTO;
	for (size_t i = 0; i < n; i++)
		u |= (uint64_t)v->pv_p[i] << (8 * i);
	v->pv_p += n;
	*ret_u = u;
	return 0;
}

int
pbv_next(struct pbv *v, struct pbv_field *ret_f)
{
	struct pbv_field f = { 0 };
	uint64_t tag, len;
	int rv;

	if (v->pv_p == v->pv_end)
		return 0;
	rv = pbv_varint(v, 5, &tag);
	if (rv != 0)
		return rv;
	if ((tag >> 3) == 0 || (tag >> 3) > PBV_FIELD_MAX)
		return -EPROTO;
	f.pf_num = (uint32_t)(tag >> 3);
	switch (tag & 7) {
	case PBV_VARINT:
		f.pf_wire = PBV_VARINT;
		rv = pbv_varint(v, 10, &f.pf_u64);
		break;
	case PBV_I64:
		f.pf_wire = PBV_I64;
		rv = pbv_fixed(v, 8, &f.pf_u64);
		break;
	case PBV_I32:
		f.pf_wire = PBV_I32;
		rv = pbv_fixed(v, 4, &f.pf_u64);
		break;
	case PBV_LEN:
		f.pf_wire = PBV_LEN;
		rv = pbv_varint(v, 5, &len);
		if (rv == 0 && len > (uint64_t)(v->pv_end - v->pv_p))
			rv = -EPROTO;
		if (rv == 0) {
			f.pf_data = v->pv_p;
			f.pf_len = (size_t)len;
			v->pv_p += len;
		}
		break;
	default:
		rv = -EPROTO; /* groups (3, 4) and wire types 6, 7 */
		break;
	}
	if (rv != 0)
		return rv;
	*ret_f = f;
	return 1;
}

/*
 * A ComponentSpec from the wire (any bytes): spec_from_pb() either refuses it
 * or gives a spec that goes back to the same message bytes again and again
 * (spec_to_pb, pack, unpack, spec_from_pb); spec_check() against a small
 * allow list only looks (stat, access), whatever the spec asks for.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The packed form of s; aborts on failure. */
static uint8_t *
pack(const struct spec *s, size_t *ret_len)
{
	Ckpt__V1__ComponentSpec *pb = NULL;
	uint8_t *buf;

	if (spec_to_pb(s, &pb) != 0)
		abort();
	*ret_len = ckpt__v1__component_spec__get_packed_size(pb);
	buf = malloc(*ret_len + 1);
	ckpt__v1__component_spec__pack(pb, buf);
	spec_pb_free(pb);
	return buf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *programs[] = { "/bin/true", NULL }, *folders[] = { "/tmp", NULL },
		    *drivers[] = { "exec", NULL };
	struct spec_allow allow = { .sa_drivers = drivers, .sa_programs = programs,
		.sa_folders = folders };
	Ckpt__V1__ComponentSpec *un = ckpt__v1__component_spec__unpack(NULL, size, data), *un2;
	struct spec *s = NULL, *s2 = NULL;
	uint8_t *b1, *b2;
	size_t l1, l2;
	char err[512];

	if (un == NULL)
		return 0;
	if (spec_from_pb(un, &s, err, sizeof(err)) != 0) {
		ckpt__v1__component_spec__free_unpacked(un, NULL);
		return 0;
	}
	b1 = pack(s, &l1);
	un2 = ckpt__v1__component_spec__unpack(NULL, l1, b1);
	if (un2 == NULL || spec_from_pb(un2, &s2, err, sizeof(err)) != 0)
		abort();
	b2 = pack(s2, &l2);
	if (l1 != l2 || memcmp(b1, b2, l1) != 0)
		abort();
	(void)spec_check(s, &allow, err, sizeof(err));
	free(b1);
	free(b2);
	spec_free(s);
	spec_free(s2);
	ckpt__v1__component_spec__free_unpacked(un, NULL);
	ckpt__v1__component_spec__free_unpacked(un2, NULL);
	return 0;
}

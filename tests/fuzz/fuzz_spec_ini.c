/*
 * The agent's config file (any bytes): spec_config_load() refuses it with a
 * FILE:LINE message, or every component it gives survives the wire form
 * (spec_to_pb, pack, unpack, spec_from_pb, pack: the same bytes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	static const struct cfg_opt opts[] = {
		{ "node", CFG_STR, 0, NULL, 0, 0, 0, "ID", "" },
		{ "label", CFG_LIST, 0, NULL, 0, 0, 0, "K=V", "" },
	};
	struct spec_config *cfg = NULL;
	char path[64], err[600];
	int fd = memfd_create("fuzz_spec_ini", MFD_CLOEXEC);

	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (spec_config_load(path, opts, 2, &cfg, err, sizeof(err)) != 0) {
		if (strncmp(err, path, strlen(path)) != 0 || strchr(err, '\n') != NULL)
			abort();
		close(fd);
		return 0;
	}
	for (size_t i = 0; i < cfg->sc_nspecs; i++) {
		struct spec *back = NULL;
		Ckpt__V1__ComponentSpec *un;
		size_t l1, l2;
		uint8_t *b1 = pack(cfg->sc_specs[i], &l1), *b2;

		un = ckpt__v1__component_spec__unpack(NULL, l1, b1);
		if (un == NULL || spec_from_pb(un, &back, err, sizeof(err)) != 0)
			abort();
		b2 = pack(back, &l2);
		if (l1 != l2 || memcmp(b1, b2, l1) != 0)
			abort();
		free(b1);
		free(b2);
		spec_free(back);
		ckpt__v1__component_spec__free_unpacked(un, NULL);
	}
	spec_config_free(cfg);
	close(fd);
	return 0;
}

/*
 * A StoreRequest from the wire (protobuf-c), then chunklist_expand(): on
 * success every chunk is a hole without a hash or a chunk with a 32-byte
 * hash, and the count is bounded.
 */
#include <stdint.h>
#include <stdlib.h>

#include "arena.h"
#include "chunklist.h"
#include "sha.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Ckpt__V1__StoreRequest *req = ckpt__v1__store_request__unpack(NULL, size, data);
	const Ckpt__V1__StoreRequest *x;
	struct arena *a;
	char err[256];

	if (req == NULL)
		return 0;
	if (arena_new(&a) != 0)
		abort();
	if (chunklist_expand(a, req, 4096, &x, err, sizeof(err)) == 0) {
		if (x->n_chunks > 4096 && x != req)
			abort();
		for (size_t i = 0; x != req && i < x->n_chunks; i++) {
			const Ckpt__V1__ChunkRef *r = x->chunks[i];
			if (r->sha256.len != (r->zero ? 0 : SHA_LEN))
				abort();
		}
	}
	arena_free(a);
	ckpt__v1__store_request__free_unpacked(req, NULL);
	return 0;
}

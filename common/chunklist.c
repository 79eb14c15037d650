#include "chunklist.h"

#include <errno.h>
#include <stdio.h>

#include "sha.h"

int
chunklist_expand(struct arena *a, const Ckpt__V1__StoreRequest *req, size_t max,
    const Ckpt__V1__StoreRequest **ret_req, char *err, size_t errlen)
{
	Ckpt__V1__StoreRequest *x;
	Ckpt__V1__ChunkRef *refs, **ptrs;
	size_t n = req->n_chunk_sizes, data = 0;

	*ret_req = req;
	if (n == 0 && req->chunk_sha256.len == 0)
		return 0;
	if (req->n_chunks != 0) {
		snprintf(err, errlen, "both chunks and chunk_sizes: send one chunk list");
		return -EINVAL;
	}
	if (n > max) {
		snprintf(err, errlen, "too many chunks: %zu (at most %zu)", n, max);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		data += (req->chunk_sizes[i] & 1u) == 0;
	if (req->chunk_sha256.len != data * SHA_LEN) {
		snprintf(err, errlen, "chunk_sha256 has %zu bytes, want %zu for %zu chunks that are "
		    "not holes", req->chunk_sha256.len, data * SHA_LEN, data);
		return -EINVAL;
	}
	x = arena_alloc(a, sizeof(*x));
	refs = arena_alloc(a, (n != 0 ? n : 1) * sizeof(*refs));
	ptrs = arena_alloc(a, (n != 0 ? n : 1) * sizeof(*ptrs));
	if (x == NULL || refs == NULL || ptrs == NULL)
		return -ENOMEM;
	*x = *req;
	x->n_chunk_sizes = 0;
	x->chunk_sizes = NULL;
	x->chunk_sha256.len = 0;
	x->chunk_sha256.data = NULL;
	data = 0;
	for (size_t i = 0; i < n; i++) {
		ckpt__v1__chunk_ref__init(&refs[i]);
		refs[i].size = req->chunk_sizes[i] >> 1;
		refs[i].zero = (req->chunk_sizes[i] & 1u) != 0;
		if (!refs[i].zero) {
			refs[i].sha256.data = req->chunk_sha256.data + SHA_LEN * data++;
			refs[i].sha256.len = SHA_LEN;
		}
		ptrs[i] = &refs[i];
	}
	x->chunks = ptrs;
	x->n_chunks = n;
	*ret_req = x;
	return 0;
}

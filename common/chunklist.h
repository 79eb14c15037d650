/*
 * chunklist: the two wire forms of a checkpoint's chunk list in a
 * StoreRequest. A writer sends either `chunks` (one ChunkRef each) or the
 * compact form: `chunk_sizes` (size << 1, | 1 for a hole) and `chunk_sha256`
 * (the 32-byte hashes of the chunks that are not holes, back to back).
 * Servers turn the compact form into ChunkRefs with chunklist_expand().
 */
#ifndef CKPT_CHUNKLIST_H
#define CKPT_CHUNKLIST_H

#include <stddef.h>

#include "arena.h"
#include "ckpt/v1/nas.pb-c.h"

/*
 * *ret_req is req itself when it carries no compact list, else a shallow
 * copy of it (in a) whose chunks are the compact list expanded. -EINVAL (with
 * a one-line reason in err) for both forms at once, more than max chunks, or
 * hashes that do not match the sizes; -ENOMEM.
 */
int chunklist_expand(struct arena *a, const Ckpt__V1__StoreRequest *req, size_t max,
    const Ckpt__V1__StoreRequest **ret_req, char *err, size_t errlen);

#endif

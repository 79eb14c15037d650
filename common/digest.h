/*
 * digest: a checkpoint's identity digest, "ckpt-chunks-sha256", computed
 * from its chunk list (the definition is in proto/ckpt/v1/nas.proto): for
 * each chunk in order, its compact size (size << 1, | 1 for a hole) as 4
 * bytes little-endian, then the SHA-256 of its bytes unless it is a hole;
 * the digest is the SHA-256 of all that. Cheap to compute from a list (36
 * bytes per chunk), so nobody hashes the whole checkpoint a second time.
 */
#ifndef CKPT_DIGEST_H
#define CKPT_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "chunk.h"
#include "ckpt/v1/common.pb-c.h"
#include "sha.h"

#define DIGEST_ALG "ckpt-chunks-sha256"
/* The algorithm of a record of the older format, named the same way. */
#define DIGEST_ALG_PLAIN "sha256"
/* "ckpt-chunks-sha256:" and 64 hex digits, with its NUL. */
#define DIGEST_STR_LEN (sizeof(DIGEST_ALG) + SHA_HEX_LEN + 1)

/*
 * Of a compact list: sizes[i] is chunk i's size << 1 | hole, sha the
 * nsha hashes of the chunks that are not holes, back to back. -EINVAL when
 * nsha is not the count of data chunks; -ENOMEM.
 */
int digest_compact(const uint32_t *sizes, size_t n, const uint8_t *sha, size_t nsha,
    uint8_t ret_digest[SHA_LEN]);
/* Of ChunkRefs (a hole: zero set, no hash). -EINVAL for a ref without its 32-byte hash. */
int digest_refs(Ckpt__V1__ChunkRef *const *refs, size_t n, uint8_t ret_digest[SHA_LEN]);
/* Of bytes cut with p: one pass that cuts and hashes each chunk. */
int digest_buf(const struct chunk_params *p, const void *buf, size_t len,
    uint8_t ret_digest[SHA_LEN]);
/*
 * Of head followed by body (a small header before a large buffer), without
 * joining them: only head and the first 2 * cp_max bytes of body are copied.
 */
int digest_buf2(const struct chunk_params *p, const void *head, size_t hlen, const void *body,
    size_t blen, uint8_t ret_digest[SHA_LEN]);
/*
 * The chunking a record names (0s: not recorded, an older record: the
 * defaults, which older writers used unless told otherwise).
 */
int digest_params(uint32_t min, uint32_t avg, uint32_t max, struct chunk_params *ret_params);
/* "ckpt-chunks-sha256:HEX" into out (DIGEST_STR_LEN bytes). */
void digest_str(const uint8_t digest[SHA_LEN], char *out);

#endif

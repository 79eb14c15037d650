/*
 * sha: SHA-256 through OpenSSL's libcrypto (uses the CPU's SHA extensions).
 */
#ifndef CKPT_SHA_H
#define CKPT_SHA_H

#include <stddef.h>
#include <stdint.h>

#define SHA_LEN 32
#define SHA_HEX_LEN 64

struct sha_ctx;

int sha_new(struct sha_ctx **ret_ctx);
void sha_update(struct sha_ctx *c, const void *data, size_t len);
/* Writes the digest and resets the context for reuse. */
void sha_final(struct sha_ctx *c, uint8_t out[SHA_LEN]);
void sha_free(struct sha_ctx *c);

/* One-shot digest. */
void sha256(const void *data, size_t len, uint8_t out[SHA_LEN]);
/* Lower-case hex as sha256sum prints it; out must hold SHA_HEX_LEN + 1. */
void sha_hex(const uint8_t *digest, size_t len, char *out);
/* Parses 64 hex digits; -EINVAL otherwise. */
int sha_parse_hex(const char *hex, uint8_t out[SHA_LEN]);

#endif

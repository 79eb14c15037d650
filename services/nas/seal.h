/*
 * seal: encryption at rest for the NAS store (AES-256-GCM, libcrypto EVP).
 *
 * A deployment key is 32 random bytes in a file (raw, or 64 hex digits). Four
 * values are derived from it with HMAC-SHA256 under fixed labels, so that no
 * two uses share a key:
 *
 *   id     first 8 bytes of HMAC(key, "ckpt key id"): stored beside every
 *          sealed value, names the key in `--check` and in errors
 *   check  HMAC(key, "ckpt key check"): kept in the store's meta per key id;
 *          a key whose id is known but whose check differs is refused
 *   aead   HMAC(key, "ckpt seal aes-256-gcm"): the AES-256-GCM key
 *   name   HMAC(key, "ckpt chunk name"): chunk names, HMAC(name, SHA-256 of
 *          the chunk's bytes), so that equal contents share one name inside a
 *          deployment and the name says nothing about the bytes outside it
 *
 * A sealed value is id (8) | nonce (12) | ciphertext (as long as the
 * plaintext) | tag (16). The nonce is 96 random bits per seal: the chance of
 * two seals under one key sharing a nonce stays below 2^-32 for up to 2^32
 * seals per key (NIST SP 800-38D, 8.3), that is 2^32 chunk and record writes,
 * some 64 TiB of 16 KiB chunks; rotate the key well before (docs/storage.md).
 * The caller's associated data (the chunk's name and header, the record's key)
 * is authenticated with it, so a value moved under another name fails to open.
 *
 * Keys live in memory only; no function here logs. Every function returns 0
 * or a negative errno: -EBADMSG for a value that does not open (tampered, or
 * sealed under another key).
 */
#ifndef CKPT_NAS_SEAL_H
#define CKPT_NAS_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "key.h"

#define SEAL_KEY_LEN 32
#define SEAL_ID_LEN 8
#define SEAL_ID_HEX_LEN (2 * SEAL_ID_LEN)
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN 16
#define SEAL_CHECK_LEN 32
#define SEAL_NAME_LEN 32
/* Bytes a sealed value adds to its plaintext. */
#define SEAL_OVERHEAD (SEAL_ID_LEN + SEAL_NONCE_LEN + SEAL_TAG_LEN)
/* Keys one NAS holds: the sealing key and older ones (--decrypt-keys). */
#define SEAL_KEYS_MAX 16
#define SEAL_ERRMSG_MAX 256

struct seal_key {
	uint8_t sk_id[SEAL_ID_LEN];
	uint8_t sk_check[SEAL_CHECK_LEN];
	uint8_t sk_aead[SEAL_KEY_LEN];
	uint8_t sk_name[SEAL_KEY_LEN];
};

/* The keys of one NAS: sr_keys[0] seals new values, every one opens. */
struct seal_ring {
	struct seal_key sr_keys[SEAL_KEYS_MAX];
	size_t sr_n;
};

/* The derived values of a raw key. */
void seal_key_derive(const uint8_t raw[SEAL_KEY_LEN], struct seal_key *ret_key);
/*
 * Reads a key file: exactly 32 bytes, or 64 hex digits (surrounding white
 * space allowed). -EPERM when group or others have any permission on it,
 * -EINVAL when it holds something else; err names the file and the fix.
 */
int seal_key_load(const char *path, struct seal_key *ret_key, char *err, size_t errlen);
/*
 * The ring of a NAS: the sealing key from encrypt_path, then one key per
 * comma-separated file of decrypt_paths (NULL or "": none). A key given twice
 * is taken once. -E2BIG for more than SEAL_KEYS_MAX keys.
 */
int seal_ring_load(const char *encrypt_path, const char *decrypt_paths, struct seal_ring *ret_ring,
    char *err, size_t errlen);
/* The key of that id in the ring, or NULL. */
const struct seal_key *seal_ring_find(const struct seal_ring *r, const uint8_t id[SEAL_ID_LEN]);
/* Wipes the ring's keys from memory. */
void seal_ring_wipe(struct seal_ring *r);

/* HMAC(name key, sha): a chunk's name in the store. */
void seal_name(const struct seal_key *k, const uint8_t sha[32], uint8_t ret_name[SEAL_NAME_LEN]);

/*
 * Seals len bytes of in (len + SEAL_OVERHEAD bytes into out; in and out must
 * not overlap) under a fresh random nonce, authenticating aad with them.
 */
int seal_encrypt(const struct seal_key *k, const void *aad, size_t aadlen, const void *in,
    size_t len, uint8_t *out);
/*
 * Opens a sealed value given in two pieces (head, then tail: hlen + tlen
 * bytes, tlen may be 0) into out (hlen + tlen - SEAL_OVERHEAD bytes).
 * -EBADMSG when it is too short, sealed under another key id, or fails its
 * tag (tampered bytes or associated data); out is then not to be used.
 */
int seal_decrypt(const struct seal_key *k, const void *aad, size_t aadlen, const void *head,
    size_t hlen, const void *tail, size_t tlen, uint8_t *out);
/*
 * One thread's AES-GCM context for many values (a batch of chunks): keyed
 * again only when the key or the direction changes, so a value costs its
 * nonce and its bytes. seal_encrypt() and seal_decrypt() make one per call.
 * Not shared between threads.
 */
struct seal_ctx;
int seal_ctx_new(struct seal_ctx **ret_ctx);
void seal_ctx_free(struct seal_ctx *c); /* accepts NULL */
int seal_encrypt_ctx(struct seal_ctx *c, const struct seal_key *k, const void *aad, size_t aadlen,
    const void *in, size_t len, uint8_t *out);
int seal_decrypt_ctx(struct seal_ctx *c, const struct seal_key *k, const void *aad, size_t aadlen,
    const void *head, size_t hlen, const void *tail, size_t tlen, uint8_t *out);

/*
 * What a sealed value authenticates besides its bytes. A chunk: its name,
 * codec and raw size (SEAL_CHUNK_AAD_LEN bytes). A record: a label and the
 * record's key, node \0 component \0 seq (at most SEAL_RECORD_AAD_MAX bytes).
 * A sealed record's value is SEAL_RECORD_MAGIC and then the sealed bytes; a
 * packed protobuf never begins with a zero byte (field number 0 is invalid).
 */
#define SEAL_CHUNK_AAD_LEN (SEAL_NAME_LEN + 1 + 4)
#define SEAL_RECORD_LABEL "ckpt record"
#define SEAL_RECORD_AAD_MAX (sizeof(SEAL_RECORD_LABEL) + KEY_MAX)
#define SEAL_RECORD_MAGIC "\0S"
#define SEAL_RECORD_MAGIC_LEN 2
void seal_chunk_aad(const uint8_t name[SEAL_NAME_LEN], unsigned codec, uint32_t raw_size,
    uint8_t out[SEAL_CHUNK_AAD_LEN]);
size_t seal_record_aad(const void *key, size_t klen, uint8_t *out);
/* The key id a sealed value of at least SEAL_OVERHEAD bytes names (its first bytes). */
const uint8_t *seal_id_of(const void *sealed);
/* 16 hex digits and a NUL into out. */
void seal_id_hex(const uint8_t id[SEAL_ID_LEN], char *out);
/* Constant-time comparison of a check value. */
bool seal_check_equal(const uint8_t a[SEAL_CHECK_LEN], const uint8_t b[SEAL_CHECK_LEN]);

#endif

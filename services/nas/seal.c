#include "seal.h"
#include "sha.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>

/* A key file is small: 32 bytes or 64 hex digits and some white space. */
#define SEAL_FILE_MAX 256

/*
 * AES-256-GCM fetched once: EVP_aes_256_gcm() makes OpenSSL 3 look the
 * implementation up again at every init, which cost more than sealing a
 * 16 KiB chunk. Written once under pthread_once, then only read.
 */
static EVP_CIPHER *seal_gcm;
static pthread_once_t seal_gcm_once = PTHREAD_ONCE_INIT;

static void
seal_gcm_fetch(void)
{
	seal_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *
seal_cipher(void)
{
	pthread_once(&seal_gcm_once, seal_gcm_fetch);
	return seal_gcm != NULL ? seal_gcm : EVP_aes_256_gcm();
}

static void
seal_hmac(const uint8_t key[SEAL_KEY_LEN], const char *label, const void *msg, size_t len,
    uint8_t out[32])
{
	unsigned outlen = 32;

	if (label != NULL) {
		msg = label;
		len = strlen(label);
	}
	/* HMAC-SHA256 with a 32-byte key cannot fail but for memory. */
	if (HMAC(EVP_sha256(), key, SEAL_KEY_LEN, msg, len, out, &outlen) == NULL)
		abort();
}

void
seal_key_derive(const uint8_t raw[SEAL_KEY_LEN], struct seal_key *ret_key)
{
	uint8_t id[32];

	seal_hmac(raw, "ckpt key id", NULL, 0, id);
	memcpy(ret_key->sk_id, id, SEAL_ID_LEN);
	seal_hmac(raw, "ckpt key check", NULL, 0, ret_key->sk_check);
	seal_hmac(raw, "ckpt seal aes-256-gcm", NULL, 0, ret_key->sk_aead);
	seal_hmac(raw, "ckpt chunk name", NULL, 0, ret_key->sk_name);
	OPENSSL_cleanse(id, sizeof(id));
}

static bool
seal_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A key is as long as a SHA-256 digest: its hex form is parsed alike. */
_Static_assert(SEAL_KEY_LEN == SHA_LEN, "seal_key_parse() uses sha_parse_hex()");

/* 32 raw bytes, or 64 hex digits between white space. */
static int
seal_key_parse(const char *buf, size_t len, uint8_t raw[SEAL_KEY_LEN])
{
	char hex[SHA_HEX_LEN + 1];
	size_t b = 0, e = len;
	int rv;

	if (len == SEAL_KEY_LEN) {
		memcpy(raw, buf, SEAL_KEY_LEN);
		return 0;
	}
	while (b < e && seal_space(buf[b]))
		b++;
	while (e > b && seal_space(buf[e - 1]))
		e--;
	if (e - b != SHA_HEX_LEN)
		return -EINVAL;
	memcpy(hex, buf + b, SHA_HEX_LEN);
	hex[SHA_HEX_LEN] = '\0';
	rv = sha_parse_hex(hex, raw);
	OPENSSL_cleanse(hex, sizeof(hex));
	return rv;
}

int
seal_key_load(const char *path, struct seal_key *ret_key, char *err, size_t errlen)
{
	char buf[SEAL_FILE_MAX + 1];
	uint8_t raw[SEAL_KEY_LEN];
	struct stat st;
	size_t len = 0;
	ssize_t got;
	int fd, rv = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "key file %s: %s", path, strerror(-rv));
		return rv;
	}
	if (fstat(fd, &st) != 0) {
		rv = -errno;
		snprintf(err, errlen, "key file %s: %s", path, strerror(-rv));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "key file %s: not a regular file", path);
		rv = -EINVAL;
		goto out_close;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(err, errlen, "key file %s: group or others may access it (mode %04o); "
		    "chmod 600 %s (Kubernetes: defaultMode 0400)", path, (unsigned)(st.st_mode & 07777),
		    path);
		rv = -EPERM;
		goto out_close;
	}
	while (len <= SEAL_FILE_MAX) {
		got = read(fd, buf + len, SEAL_FILE_MAX + 1 - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rv = -errno;
			snprintf(err, errlen, "key file %s: %s", path, strerror(-rv));
			goto out_wipe;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	if (len > SEAL_FILE_MAX || seal_key_parse(buf, len, raw) != 0) {
		snprintf(err, errlen, "key file %s: want 32 random bytes or 64 hex digits "
		    "(openssl rand -hex 32)", path);
		rv = -EINVAL;
		goto out_wipe;
	}
	seal_key_derive(raw, ret_key);
out_wipe:
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(raw, sizeof(raw));
out_close:
	close(fd);
	return rv;
}

static int
seal_ring_add(struct seal_ring *r, const char *path, char *err, size_t errlen)
{
	struct seal_key k;
	int rv;

	rv = seal_key_load(path, &k, err, errlen);
	if (rv != 0)
		return rv;
	if (seal_ring_find(r, k.sk_id) != NULL) {
		OPENSSL_cleanse(&k, sizeof(k));
		return 0;
	}
	if (r->sr_n == SEAL_KEYS_MAX) {
		snprintf(err, errlen, "more than %d keys", SEAL_KEYS_MAX);
		OPENSSL_cleanse(&k, sizeof(k));
		return -E2BIG;
	}
	r->sr_keys[r->sr_n++] = k;
	OPENSSL_cleanse(&k, sizeof(k));
	return 0;
}

int
seal_ring_load(const char *encrypt_path, const char *decrypt_paths, struct seal_ring *ret_ring,
    char *err, size_t errlen)
{
	const char *p = decrypt_paths;
	int rv;

	ret_ring->sr_n = 0;
	rv = seal_ring_add(ret_ring, encrypt_path, err, errlen);
	while (rv == 0 && p != NULL && *p != '\0') {
		const char *comma = strchr(p, ',');
		size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		char path[PATH_MAX];

		if (n >= sizeof(path)) {
			snprintf(err, errlen, "--decrypt-keys: a path is too long");
			rv = -ENAMETOOLONG;
			break;
		}
		if (n != 0) {
			memcpy(path, p, n);
			path[n] = '\0';
			rv = seal_ring_add(ret_ring, path, err, errlen);
		}
		p = comma != NULL ? comma + 1 : p + n;
	}
	if (rv != 0)
		seal_ring_wipe(ret_ring);
	return rv;
}

const struct seal_key *
seal_ring_find(const struct seal_ring *r, const uint8_t id[SEAL_ID_LEN])
{
	for (size_t i = 0; r != NULL && i < r->sr_n; i++)
		if (memcmp(r->sr_keys[i].sk_id, id, SEAL_ID_LEN) == 0)
			return &r->sr_keys[i];
	return NULL;
}

void
seal_ring_wipe(struct seal_ring *r)
{
	if (r == NULL)
		return;
	OPENSSL_cleanse(r->sr_keys, sizeof(r->sr_keys));
	r->sr_n = 0;
}

void
seal_name(const struct seal_key *k, const uint8_t sha[32], uint8_t ret_name[SEAL_NAME_LEN])
{
	seal_hmac(k->sk_name, NULL, sha, 32, ret_name);
}

/* Nonces drawn at once: one RAND_bytes call per 64 seals instead of one each. */
#define SEAL_NONCE_POOL 64

struct seal_ctx {
	EVP_CIPHER_CTX *sc_c;
	uint8_t sc_nonces[SEAL_NONCE_POOL][SEAL_NONCE_LEN]; /* random, each used once */
	size_t sc_nonces_left;
	const struct seal_key *sc_key; /* keyed with (and for sc_enc), or NULL */
	uint8_t sc_id[SEAL_ID_LEN];    /* its id: a key copied elsewhere is another key */
	bool sc_enc;
};

int
seal_ctx_new(struct seal_ctx **ret_ctx)
{
	struct seal_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -ENOMEM;
	c->sc_c = EVP_CIPHER_CTX_new();
	if (c->sc_c == NULL) {
		free(c);
		return -ENOMEM;
	}
	*ret_ctx = c;
	return 0;
}

void
seal_ctx_free(struct seal_ctx *c)
{
	if (c == NULL)
		return;
	EVP_CIPHER_CTX_free(c->sc_c);
	OPENSSL_cleanse(c->sc_nonces, sizeof(c->sc_nonces));
	free(c);
}

/* A fresh random nonce: the next unused one of the pool, refilled when empty. */
static int
seal_nonce(struct seal_ctx *c, uint8_t *out)
{
	if (c->sc_nonces_left == 0) {
		if (RAND_bytes(&c->sc_nonces[0][0], (int)sizeof(c->sc_nonces)) != 1)
			return -EIO;
		c->sc_nonces_left = SEAL_NONCE_POOL;
	}
	c->sc_nonces_left--;
	memcpy(out, c->sc_nonces[c->sc_nonces_left], SEAL_NONCE_LEN);
	/* Used: never handed out twice, even if the pool were read again. */
	memset(c->sc_nonces[c->sc_nonces_left], 0, SEAL_NONCE_LEN);
	return 0;
}

/*
 * Starts a value under k with nonce: the key schedule and GHASH tables are
 * made only when the key or the direction changes; otherwise only the nonce
 * is set.
 */
static int
seal_ctx_start(struct seal_ctx *c, const struct seal_key *k, bool enc, const uint8_t *nonce)
{
	bool same = c->sc_key == k && c->sc_enc == enc &&
	    memcmp(c->sc_id, k->sk_id, SEAL_ID_LEN) == 0;
	int ok;

	/* The default IV length of GCM is 96 bits: no EVP_CTRL_GCM_SET_IVLEN. */
	if (enc)
		ok = EVP_EncryptInit_ex(c->sc_c, same ? NULL : seal_cipher(), NULL,
		    same ? NULL : k->sk_aead, nonce);
	else
		ok = EVP_DecryptInit_ex(c->sc_c, same ? NULL : seal_cipher(), NULL,
		    same ? NULL : k->sk_aead, nonce);
	if (ok != 1) {
		c->sc_key = NULL;
		return -EIO;
	}
	c->sc_key = k;
	c->sc_enc = enc;
	memcpy(c->sc_id, k->sk_id, SEAL_ID_LEN);
	return 0;
}

int
seal_encrypt_ctx(struct seal_ctx *c, const struct seal_key *k, const void *aad, size_t aadlen,
    const void *in, size_t len, uint8_t *out)
{
	uint8_t *nonce = out + SEAL_ID_LEN, *ct = nonce + SEAL_NONCE_LEN;
	int n, rv;

	if (len > INT_MAX || aadlen > INT_MAX)
		return -EINVAL;
	memcpy(out, k->sk_id, SEAL_ID_LEN);
	rv = seal_nonce(c, nonce);
	if (rv == 0)
		rv = seal_ctx_start(c, k, true, nonce);
	if (rv != 0)
		return rv;
	if ((aadlen != 0 && EVP_EncryptUpdate(c->sc_c, NULL, &n, aad, (int)aadlen) != 1) ||
	    (len != 0 && EVP_EncryptUpdate(c->sc_c, ct, &n, in, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(c->sc_c, ct + len, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c->sc_c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, ct + len) != 1) {
		c->sc_key = NULL;
		return -EIO;
	}
	return 0;
}

int
seal_encrypt(const struct seal_key *k, const void *aad, size_t aadlen, const void *in, size_t len,
    uint8_t *out)
{
	struct seal_ctx *c;
	int rv;

	rv = seal_ctx_new(&c);
	if (rv == 0)
		rv = seal_encrypt_ctx(c, k, aad, aadlen, in, len, out);
	seal_ctx_free(c);
	return rv;
}

/* n bytes at offset off of head followed by tail, into out. */
static void
seal_gather(const uint8_t *head, size_t hlen, const uint8_t *tail, size_t off, size_t n,
    uint8_t *out)
{
	for (size_t i = 0; i < n; i++, off++)
		out[i] = off < hlen ? head[off] : tail[off - hlen];
}

int
seal_decrypt_ctx(struct seal_ctx *c, const struct seal_key *k, const void *aad, size_t aadlen,
    const void *head_, size_t hlen, const void *tail_, size_t tlen, uint8_t *out)
{
	const uint8_t *head = head_, *tail = tail_;
	size_t total = hlen + tlen, ctlen, from_head;
	uint8_t hdr[SEAL_ID_LEN + SEAL_NONCE_LEN], tag[SEAL_TAG_LEN];
	int n, rv;

	if (total < SEAL_OVERHEAD || total - SEAL_OVERHEAD > INT_MAX || aadlen > INT_MAX)
		return -EBADMSG;
	ctlen = total - SEAL_OVERHEAD;
	seal_gather(head, hlen, tail, 0, sizeof(hdr), hdr);
	seal_gather(head, hlen, tail, total - SEAL_TAG_LEN, SEAL_TAG_LEN, tag);
	if (memcmp(hdr, k->sk_id, SEAL_ID_LEN) != 0)
		return -EBADMSG;
	/* The ciphertext is [sizeof(hdr), sizeof(hdr) + ctlen): its part in head, then in tail. */
	from_head = hlen > sizeof(hdr) ? hlen - sizeof(hdr) : 0;
	if (from_head > ctlen)
		from_head = ctlen;
	rv = seal_ctx_start(c, k, false, hdr + SEAL_ID_LEN);
	if (rv != 0)
		return rv;
	if ((aadlen != 0 && EVP_DecryptUpdate(c->sc_c, NULL, &n, aad, (int)aadlen) != 1) ||
	    (from_head != 0 &&
	        EVP_DecryptUpdate(c->sc_c, out, &n, head + sizeof(hdr), (int)from_head) != 1) ||
	    (ctlen > from_head &&
	        EVP_DecryptUpdate(c->sc_c, out + from_head, &n,
	            tail + (sizeof(hdr) + from_head - hlen), (int)(ctlen - from_head)) != 1) ||
	    EVP_CIPHER_CTX_ctrl(c->sc_c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tag) != 1) {
		c->sc_key = NULL;
		return -EBADMSG;
	}
	if (EVP_DecryptFinal_ex(c->sc_c, out + ctlen, &n) != 1) {
		c->sc_key = NULL; /* keyed afresh next time, whatever state a failure left */
		return -EBADMSG;
	}
	return 0;
}

int
seal_decrypt(const struct seal_key *k, const void *aad, size_t aadlen, const void *head,
    size_t hlen, const void *tail, size_t tlen, uint8_t *out)
{
	struct seal_ctx *c;
	int rv;

	rv = seal_ctx_new(&c);
	if (rv == 0)
		rv = seal_decrypt_ctx(c, k, aad, aadlen, head, hlen, tail, tlen, out);
	seal_ctx_free(c);
	return rv == -ENOMEM ? rv : rv != 0 ? -EBADMSG : 0;
}

void
seal_chunk_aad(const uint8_t name[SEAL_NAME_LEN], unsigned codec, uint32_t raw_size,
    uint8_t out[SEAL_CHUNK_AAD_LEN])
{
	memcpy(out, name, SEAL_NAME_LEN);
	out[SEAL_NAME_LEN] = (uint8_t)codec;
	for (int i = 0; i < 4; i++)
		out[SEAL_NAME_LEN + 1 + i] = (uint8_t)(raw_size >> (8 * i));
}

size_t
seal_record_aad(const void *key, size_t klen, uint8_t *out)
{
	if (klen > KEY_MAX)
		klen = KEY_MAX;
	memcpy(out, SEAL_RECORD_LABEL, sizeof(SEAL_RECORD_LABEL)); /* with its NUL */
	memcpy(out + sizeof(SEAL_RECORD_LABEL), key, klen);
	return sizeof(SEAL_RECORD_LABEL) + klen;
}

const uint8_t *
seal_id_of(const void *sealed)
{
	return sealed;
}

void
seal_id_hex(const uint8_t id[SEAL_ID_LEN], char *out)
{
	for (size_t i = 0; i < SEAL_ID_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
}

bool
seal_check_equal(const uint8_t a[SEAL_CHECK_LEN], const uint8_t b[SEAL_CHECK_LEN])
{
	return CRYPTO_memcmp(a, b, SEAL_CHECK_LEN) == 0;
}

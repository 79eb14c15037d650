/* seal: the crypto of encryption at rest, and the store's use of its keys. */
#define _GNU_SOURCE 1 /* memmem */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "arena.h"
#include "digest.h"
#include "key.h"
#include "seal.h"
#include "sha.h"
#include "store.h"

#include "../testrun.h"

static char dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ckpt-seal-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void
key_of(uint8_t fill, struct seal_key *ret)
{
	uint8_t raw[SEAL_KEY_LEN];
	memset(raw, fill, sizeof(raw));
	seal_key_derive(raw, ret);
}

/* Writes a key file of len bytes with mode; returns its path (static buffer per call site). */
static void
write_file(const char *name, const void *data, size_t len, mode_t mode, char *path, size_t plen)
{
	int fd;
	snprintf(path, plen, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

START_TEST(seal_roundtrip_gives_the_plaintext)
{
	struct seal_key k;
	const char msg[] = "process memory with a password in it";
	uint8_t out[sizeof(msg) + SEAL_OVERHEAD], back[sizeof(msg)];

	key_of(1, &k);
	ck_assert_int_eq(seal_encrypt(&k, "aad", 3, msg, sizeof(msg), out), 0);
	ck_assert_mem_eq(seal_id_of(out), k.sk_id, SEAL_ID_LEN);
	ck_assert_ptr_null(memmem(out, sizeof(out), "password", 8));
	ck_assert_int_eq(seal_decrypt(&k, "aad", 3, out, sizeof(out), NULL, 0, back), 0);
	ck_assert_mem_eq(back, msg, sizeof(msg));
}
END_TEST

START_TEST(seal_two_seals_of_the_same_bytes_differ)
{
	struct seal_key k;
	uint8_t a[16 + SEAL_OVERHEAD], b[16 + SEAL_OVERHEAD], msg[16] = { 0 };

	key_of(2, &k);
	ck_assert_int_eq(seal_encrypt(&k, NULL, 0, msg, sizeof(msg), a), 0);
	ck_assert_int_eq(seal_encrypt(&k, NULL, 0, msg, sizeof(msg), b), 0);
	/* Fresh nonces: neither the nonce nor the ciphertext repeats. */
	ck_assert_int_ne(memcmp(a + SEAL_ID_LEN, b + SEAL_ID_LEN, SEAL_NONCE_LEN), 0);
	ck_assert_int_ne(memcmp(a, b, sizeof(a)), 0);
}
END_TEST

START_TEST(seal_any_flipped_byte_fails_to_open)
{
	struct seal_key k;
	uint8_t msg[40], out[sizeof(msg) + SEAL_OVERHEAD], back[sizeof(msg)];

	key_of(3, &k);
	memset(msg, 'x', sizeof(msg));
	ck_assert_int_eq(seal_encrypt(&k, "n", 1, msg, sizeof(msg), out), 0);
	/* Key id, nonce, ciphertext and tag: every byte counts. */
	for (size_t i = 0; i < sizeof(out); i++) {
		out[i] ^= 0x01;
		ck_assert_int_eq(seal_decrypt(&k, "n", 1, out, sizeof(out), NULL, 0, back), -EBADMSG);
		out[i] ^= 0x01;
	}
	ck_assert_int_eq(seal_decrypt(&k, "n", 1, out, sizeof(out), NULL, 0, back), 0);
	/* Shorter than the overhead. */
	ck_assert_int_eq(seal_decrypt(&k, "n", 1, out, SEAL_OVERHEAD - 1, NULL, 0, back), -EBADMSG);
}
END_TEST

START_TEST(seal_other_associated_data_or_key_fails_to_open)
{
	struct seal_key k, other;
	uint8_t name[SEAL_NAME_LEN] = { 7 }, aad[SEAL_CHUNK_AAD_LEN], aad2[SEAL_CHUNK_AAD_LEN];
	uint8_t msg[100] = { 9 }, out[sizeof(msg) + SEAL_OVERHEAD], back[sizeof(msg)];

	key_of(4, &k);
	key_of(5, &other);
	seal_chunk_aad(name, 1, 100, aad);
	ck_assert_int_eq(seal_encrypt(&k, aad, sizeof(aad), msg, sizeof(msg), out), 0);
	/* Another name, another codec, another raw size: a chunk moved or relabelled. */
	name[0] ^= 1;
	seal_chunk_aad(name, 1, 100, aad2);
	ck_assert_int_eq(seal_decrypt(&k, aad2, sizeof(aad2), out, sizeof(out), NULL, 0, back),
	    -EBADMSG);
	name[0] ^= 1;
	seal_chunk_aad(name, 0, 100, aad2);
	ck_assert_int_eq(seal_decrypt(&k, aad2, sizeof(aad2), out, sizeof(out), NULL, 0, back),
	    -EBADMSG);
	seal_chunk_aad(name, 1, 101, aad2);
	ck_assert_int_eq(seal_decrypt(&k, aad2, sizeof(aad2), out, sizeof(out), NULL, 0, back),
	    -EBADMSG);
	ck_assert_int_eq(seal_decrypt(&other, aad, sizeof(aad), out, sizeof(out), NULL, 0, back),
	    -EBADMSG);
	ck_assert_int_eq(seal_decrypt(&k, aad, sizeof(aad), out, sizeof(out), NULL, 0, back), 0);
}
END_TEST

START_TEST(seal_opens_a_value_cut_anywhere_into_head_and_tail)
{
	struct seal_key k;
	uint8_t msg[300], out[sizeof(msg) + SEAL_OVERHEAD], back[sizeof(msg)];

	key_of(6, &k);
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7);
	ck_assert_int_eq(seal_encrypt(&k, "r", 1, msg, sizeof(msg), out), 0);
	for (size_t cut = 0; cut <= sizeof(out); cut++) {
		memset(back, 0, sizeof(back));
		ck_assert_int_eq(seal_decrypt(&k, "r", 1, out, cut, out + cut, sizeof(out) - cut, back), 0);
		ck_assert_mem_eq(back, msg, sizeof(msg));
	}
}
END_TEST

START_TEST(seal_one_context_serves_keys_and_directions_in_turn)
{
	struct seal_key a, b;
	struct seal_ctx *c;
	uint8_t msg[64], sa[sizeof(msg) + SEAL_OVERHEAD], sb[sizeof(msg) + SEAL_OVERHEAD];
	uint8_t back[sizeof(msg)];

	key_of(9, &a);
	key_of(10, &b);
	memset(msg, 'm', sizeof(msg));
	ck_assert_int_eq(seal_ctx_new(&c), 0);
	for (int round = 0; round < 3; round++) {
		ck_assert_int_eq(seal_encrypt_ctx(c, &a, "x", 1, msg, sizeof(msg), sa), 0);
		ck_assert_int_eq(seal_encrypt_ctx(c, &b, "x", 1, msg, sizeof(msg), sb), 0);
		/* Each opens alone, with its own key, after the other's work. */
		ck_assert_int_eq(seal_decrypt(&a, "x", 1, sa, sizeof(sa), NULL, 0, back), 0);
		ck_assert_int_eq(seal_decrypt_ctx(c, &b, "x", 1, sb, sizeof(sb), NULL, 0, back), 0);
		ck_assert_mem_eq(back, msg, sizeof(msg));
		/* A failed open leaves the context fit for the next value. */
		sa[SEAL_ID_LEN + SEAL_NONCE_LEN] ^= 1;
		ck_assert_int_eq(seal_decrypt_ctx(c, &a, "x", 1, sa, sizeof(sa), NULL, 0, back), -EBADMSG);
		sa[SEAL_ID_LEN + SEAL_NONCE_LEN] ^= 1;
		ck_assert_int_eq(seal_decrypt_ctx(c, &a, "x", 1, sa, sizeof(sa), NULL, 0, back), 0);
		ck_assert_int_eq(seal_decrypt_ctx(c, &a, "x", 1, sa, sizeof(sa), NULL, 0, back), 0);
		ck_assert_int_eq(seal_decrypt_ctx(c, &b, "x", 1, sa, sizeof(sa), NULL, 0, back), -EBADMSG);
		ck_assert_mem_eq(back, msg, sizeof(msg));
	}
	seal_ctx_free(c);
	seal_ctx_free(NULL);
}
END_TEST

START_TEST(seal_names_are_keyed)
{
	struct seal_key a, a2, b;
	uint8_t sha[32], n1[SEAL_NAME_LEN], n2[SEAL_NAME_LEN], n3[SEAL_NAME_LEN];

	key_of(7, &a);
	key_of(7, &a2);
	key_of(8, &b);
	sha256("chunk", 5, sha);
	seal_name(&a, sha, n1);
	seal_name(&a2, sha, n2);
	seal_name(&b, sha, n3);
	ck_assert_mem_eq(n1, n2, SEAL_NAME_LEN);          /* dedup inside a deployment */
	ck_assert_int_ne(memcmp(n1, n3, SEAL_NAME_LEN), 0); /* nothing shared outside it */
	ck_assert_int_ne(memcmp(n1, sha, SEAL_NAME_LEN), 0);
	/* Derived values are distinct from each other. */
	ck_assert_int_ne(memcmp(a.sk_aead, a.sk_name, SEAL_KEY_LEN), 0);
	ck_assert_int_ne(memcmp(a.sk_id, b.sk_id, SEAL_ID_LEN), 0);
}
END_TEST

START_TEST(seal_key_load_reads_raw_and_hex_alike)
{
	uint8_t raw[SEAL_KEY_LEN];
	char hex[2 * SEAL_KEY_LEN + 2], p1[128], p2[128], err[256];
	struct seal_key k1, k2;

	for (size_t i = 0; i < sizeof(raw); i++) {
		raw[i] = (uint8_t)(i * 13 + 10); /* holds '\n' (10): raw is raw */
		snprintf(hex + 2 * i, 3, "%02X", raw[i]);
	}
	strcat(hex, "\n");
	write_file("raw", raw, sizeof(raw), 0600, p1, sizeof(p1));
	write_file("hex", hex, strlen(hex), 0400, p2, sizeof(p2));
	ck_assert_int_eq(seal_key_load(p1, &k1, err, sizeof(err)), 0);
	ck_assert_int_eq(seal_key_load(p2, &k2, err, sizeof(err)), 0);
	ck_assert_mem_eq(k1.sk_id, k2.sk_id, SEAL_ID_LEN);
	ck_assert_mem_eq(k1.sk_aead, k2.sk_aead, SEAL_KEY_LEN);
}
END_TEST

START_TEST(seal_key_load_refuses_a_file_others_may_read)
{
	char p[128], err[256];
	struct seal_key k;
	uint8_t raw[SEAL_KEY_LEN] = { 1 };

	write_file("open", raw, sizeof(raw), 0640, p, sizeof(p));
	ck_assert_int_eq(seal_key_load(p, &k, err, sizeof(err)), -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "chmod 600"));
	write_file("open", raw, sizeof(raw), 0604, p, sizeof(p));
	ck_assert_int_eq(seal_key_load(p, &k, err, sizeof(err)), -EPERM);
	snprintf(p, sizeof(p), "%s/absent", dir);
	ck_assert_int_eq(seal_key_load(p, &k, err, sizeof(err)), -ENOENT);
}
END_TEST

START_TEST(seal_key_load_refuses_what_is_not_a_key)
{
	static const char *const bad[] = {
		"",
		"0123456789abcdef",                                                  /* short hex */
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\n", /* not hex */
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef00", /* 33 bytes */
		"a key of thirty-one bytes......",                                   /* 31 raw */
	};
	char p[128], err[256];
	struct seal_key k;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file("bad", bad[i], strlen(bad[i]), 0600, p, sizeof(p));
		ck_assert_msg(seal_key_load(p, &k, err, sizeof(err)) == -EINVAL, "case %zu", i);
		ck_assert_ptr_nonnull(strstr(err, "64 hex digits"));
	}
}
END_TEST

START_TEST(seal_ring_takes_the_sealing_key_first_and_a_key_once)
{
	uint8_t a[SEAL_KEY_LEN], b[SEAL_KEY_LEN];
	char pa[128], pb[128], list[300], err[256];
	struct seal_ring r;
	struct seal_key ka, kb;

	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	seal_key_derive(a, &ka);
	seal_key_derive(b, &kb);
	write_file("a", a, sizeof(a), 0600, pa, sizeof(pa));
	write_file("b", b, sizeof(b), 0600, pb, sizeof(pb));
	snprintf(list, sizeof(list), "%s,%s,,%s", pb, pa, pb);
	ck_assert_int_eq(seal_ring_load(pa, list, &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.sr_n, 2);
	ck_assert_mem_eq(r.sr_keys[0].sk_id, ka.sk_id, SEAL_ID_LEN);
	ck_assert_ptr_eq(seal_ring_find(&r, kb.sk_id), &r.sr_keys[1]);
	seal_ring_wipe(&r);
	ck_assert_uint_eq(r.sr_n, 0);
	ck_assert_ptr_null(seal_ring_find(&r, ka.sk_id));
}
END_TEST

/* ---- the store's keys ---- */

static int
open_with(const struct seal_ring *r, bool readonly, struct store **ret, struct store_error *err)
{
	char d[96];
	struct store_config cfg = { d, 1u << 20, 64u << 20, 0, readonly, false, r, false, 0 };
	snprintf(d, sizeof(d), "%s/data", dir);
	return store_open(&cfg, ret, NULL, err);
}

static void
ring_of(struct seal_ring *r, int n, ...)
{
	r->sr_n = 0;
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		key_of((uint8_t)va_arg(ap, int), &r->sr_keys[r->sr_n++]);
	va_end(ap);
}

START_TEST(store_with_a_key_refuses_no_key_and_a_wrong_key)
{
	struct seal_ring ra, rb, rba, none = { .sr_n = 0 };
	struct store_error err;
	struct store *s = NULL;

	ring_of(&ra, 1, 0xa);
	ring_of(&rb, 1, 0xb);
	ring_of(&rba, 2, 0xb, 0xa);
	ck_assert_int_eq(open_with(&ra, false, &s, &err), 0);
	store_close(s);
	ck_assert_int_eq(open_with(NULL, false, &s, &err), -ENOKEY);
	ck_assert_ptr_nonnull(strstr(err.se_msg, "--encrypt-key"));
	ck_assert_int_eq(open_with(&none, true, &s, &err), -ENOKEY);
	ck_assert_int_eq(open_with(&rb, false, &s, &err), -EKEYREJECTED);
	ck_assert_ptr_nonnull(strstr(err.se_msg, "wrong key"));
	ck_assert_int_eq(open_with(&rb, true, &s, &err), -EKEYREJECTED);
	/* A rotation: the new key with the old one. Then the new key alone is known. */
	ck_assert_int_eq(open_with(&rba, false, &s, &err), 0);
	store_close(s);
	ck_assert_int_eq(open_with(&rb, false, &s, &err), 0);
	store_close(s);
}
END_TEST

START_TEST(store_without_keys_starts_sealing_when_given_one)
{
	struct seal_ring ra;
	struct store_error err;
	struct store *s = NULL;

	ring_of(&ra, 1, 0xa);
	ck_assert_int_eq(open_with(NULL, false, &s, &err), 0);
	store_close(s);
	ck_assert_int_eq(open_with(&ra, false, &s, &err), 0);
	store_close(s);
	/* From then on it has a key. */
	ck_assert_int_eq(open_with(NULL, false, &s, &err), -ENOKEY);
}
END_TEST

/*
 * Four 4 KiB chunks of distinct bytes, committed as n/COMP@SEQ (uploaded when
 * put); the record says chunk 1 has skew bytes more and chunk 2 skew fewer.
 */
static int
commit_four(struct store *s, const char *comp, uint64_t seq, bool put, uint8_t (*sha)[SHA_LEN],
    int skew, struct store_error *err)
{
	static uint8_t buf[4][4096];
	uint8_t digest[SHA_LEN];
	Ckpt__V1__StoreRequest req = CKPT__V1__STORE_REQUEST__INIT;
	Ckpt__V1__ChunkRef refs[4], *rp[4];
	Ckpt__V1__CheckpointInfo *info;
	struct arena *a;
	bool existed;
	int rv;

	ck_assert_int_eq(arena_new(&a), 0);
	for (int i = 0; i < 4; i++) {
		memset(buf[i], 'A' + i, sizeof(buf[i]));
		sha256(buf[i], sizeof(buf[i]), sha[i]);
		ckpt__v1__chunk_ref__init(&refs[i]);
		refs[i].sha256.data = sha[i];
		refs[i].sha256.len = SHA_LEN;
		refs[i].size = sizeof(buf[i]);
		rp[i] = &refs[i];
		if (put) {
			Ckpt__V1__Chunk ch = CKPT__V1__CHUNK__INIT, *chp = &ch;
			uint32_t stored;
			ch.sha256 = refs[i].sha256;
			ch.data.data = buf[i];
			ch.data.len = sizeof(buf[i]);
			ck_assert_int_eq(store_put_chunks(s, &chp, 1, &stored, err), 0);
		}
	}
	refs[1].size += (uint32_t)skew;
	refs[2].size -= (uint32_t)skew;
	req.node = "n";
	req.component = (char *)comp;
	req.kind = "raw";
	req.seq = seq;
	req.size = sizeof(buf);
	req.n_chunks = 4;
	req.chunks = rp;
	ck_assert_int_eq(digest_refs(rp, 4, digest), 0);
	req.digest.data = digest;
	req.digest.len = SHA_LEN;
	rv = store_commit(s, &req, a, &info, &existed, NULL, err);
	arena_free(a);
	return rv;
}

/* Four 4 KiB chunks of distinct bytes, stored as n/COMP@SEQ (uploaded when put). */
static void
store_four(struct store *s, const char *comp, uint64_t seq, bool put, uint8_t (*sha)[SHA_LEN])
{
	struct store_error err;
	int rv = commit_four(s, comp, seq, put, sha, 0, &err);

	ck_assert_msg(rv == 0, "commit: %d %s", rv, err.se_msg);
}

static size_t
missing_of(struct store *s, uint8_t (*sha)[SHA_LEN])
{
	ProtobufCBinaryData h[4];
	struct store_error err;
	struct arena *a;
	uint32_t *missing;
	size_t nm;

	ck_assert_int_eq(arena_new(&a), 0);
	for (int i = 0; i < 4; i++) {
		h[i].data = sha[i];
		h[i].len = SHA_LEN;
	}
	ck_assert_int_eq(store_have_chunks(s, h, 4, a, &missing, &nm, &err), 0);
	arena_free(a);
	return nm;
}

static void
check_clean(struct store *s, const char *what)
{
	struct store_check *ck = calloc(1, sizeof(*ck));
	struct store_error err;

	ck_assert_int_eq(store_check(s, ck, &err), 0);
	ck_assert_msg(store_check_clean(ck), "%s: %s", what, ck->sk_nproblems ? ck->sk_problems[0] : "");
	free(ck);
}

static int
get_all(struct store *s, uint8_t (*sha)[SHA_LEN], struct store_error *err)
{
	ProtobufCBinaryData h[4];
	Ckpt__V1__Chunk **chunks;
	struct arena *a;
	size_t n;
	int rv;

	ck_assert_int_eq(arena_new(&a), 0);
	for (int i = 0; i < 4; i++) {
		h[i].data = sha[i];
		h[i].len = SHA_LEN;
	}
	rv = store_get_chunks(s, h, 4, 0, a, &chunks, &n, err);
	for (size_t i = 0; rv == 0 && i < n; i++) {
		uint8_t got[SHA_LEN];
		ck_assert_uint_eq(chunks[i]->codec, 0);
		sha256(chunks[i]->data.data, chunks[i]->data.len, got);
		ck_assert_mem_eq(got, sha[i], SHA_LEN);
	}
	if (rv == 0)
		ck_assert_uint_eq(n, 4);
	arena_free(a);
	return rv;
}

START_TEST(store_rotation_seals_shared_chunks_anew_and_frees_the_old_ones)
{
	struct seal_ring ra, rba, rb;
	uint8_t sha[4][SHA_LEN];
	struct store_stats stt;
	struct store_error err;
	struct store *s = NULL;
	uint32_t deleted;
	uint64_t freed;

	ring_of(&ra, 1, 0xa);
	ring_of(&rba, 2, 0xb, 0xa);
	ring_of(&rb, 1, 0xb);
	ck_assert_int_eq(open_with(&ra, false, &s, &err), 0);
	store_four(s, "c", 1, true, sha);
	ck_assert_uint_eq(missing_of(s, sha), 0);
	check_clean(s, "key A");
	store_close(s);

	ck_assert_int_eq(open_with(&rba, false, &s, &err), 0);
	/* Under key B's names the chunks are not there: a writer sends them again... */
	ck_assert_uint_eq(missing_of(s, sha), 4);
	/* ...or commits them from its base: sealed anew under B in the commit. */
	store_four(s, "c", 2, false, sha);
	ck_assert_uint_eq(missing_of(s, sha), 0);
	ck_assert_int_eq(store_stat(s, &stt, &err), 0);
	ck_assert_uint_eq(stt.ss_chunks, 8);
	check_clean(s, "keys B and A");
	/* The record under A goes, and its chunks under A with it. */
	ck_assert_int_eq(store_delete(s, "n", "c", 1, &deleted, &freed, &err), 0);
	ck_assert_uint_eq(freed, 4);
	ck_assert_int_eq(store_stat(s, &stt, &err), 0);
	ck_assert_uint_eq(stt.ss_chunks, 4);
	check_clean(s, "after the delete");
	store_close(s);

	/* Key A can go: everything left reads with B alone, and the store forgets A. */
	ck_assert_int_eq(open_with(&rb, false, &s, &err), 0);
	ck_assert_int_eq(get_all(s, sha, &err), 0);
	check_clean(s, "key B alone");
	{
		struct store_check *ck = calloc(1, sizeof(*ck));
		ck_assert_int_eq(store_check(s, ck, &err), 0);
		ck_assert_uint_eq(ck->sk_nkeys, 1);
		ck_assert_uint_eq(ck->sk_keys[0].kk_chunks, 4);
		ck_assert(ck->sk_keys[0].kk_loaded);
		free(ck);
	}
	store_close(s);
}
END_TEST

START_TEST(store_without_the_old_key_says_which_key_is_missing)
{
	struct seal_ring ra, rba, rb;
	uint8_t sha[4][SHA_LEN];
	Ckpt__V1__CheckpointRecord *rec;
	struct store_error err;
	struct store *s = NULL;
	struct arena *a;

	ring_of(&ra, 1, 0xa);
	ring_of(&rba, 2, 0xb, 0xa);
	ring_of(&rb, 1, 0xb);
	ck_assert_int_eq(open_with(&ra, false, &s, &err), 0);
	store_four(s, "c", 1, true, sha);
	store_close(s);
	ck_assert_int_eq(open_with(&rba, false, &s, &err), 0);
	store_four(s, "d", 1, true, (uint8_t (*)[SHA_LEN])sha);
	store_close(s);
	ck_assert_int_eq(open_with(&rb, false, &s, &err), 0);
	ck_assert_int_eq(arena_new(&a), 0);
	ck_assert_int_eq(store_retrieve(s, "n", "c", 1, a, &rec, &err), -ENOKEY);
	ck_assert_msg(strstr(err.se_msg, "sealed under key id") != NULL, "%s", err.se_msg);
	ck_assert_int_eq(store_retrieve(s, "n", "d", 1, a, &rec, &err), 0);
	arena_free(a);
	store_close(s);
	/* Key A still seals n/c@1: it is not forgotten, and a rotation back to it still works. */
	ck_assert_int_eq(open_with(&rba, false, &s, &err), 0);
	store_close(s);
}
END_TEST

/* Gives each of two keys (of klen bytes) of db the other's value. */
static void
swap_in(MDB_txn *txn, const char *db, const void *n1, const void *n2, size_t klen)
{
	MDB_dbi dbi;
	MDB_val k1 = { klen, (void *)n1 }, k2 = { klen, (void *)n2 }, v1, v2, w1, w2;
	uint8_t *c1, *c2;

	ck_assert_int_eq(mdb_dbi_open(txn, db, 0, &dbi), 0);
	ck_assert_int_eq(mdb_get(txn, dbi, &k1, &v1), 0);
	ck_assert_int_eq(mdb_get(txn, dbi, &k2, &v2), 0);
	c1 = malloc(v1.mv_size);
	c2 = malloc(v2.mv_size);
	memcpy(c1, v1.mv_data, v1.mv_size);
	memcpy(c2, v2.mv_data, v2.mv_size);
	w1 = (MDB_val){ v2.mv_size, c2 };
	w2 = (MDB_val){ v1.mv_size, c1 };
	ck_assert_int_eq(mdb_put(txn, dbi, &k1, &w1, 0), 0);
	ck_assert_int_eq(mdb_put(txn, dbi, &k2, &w2, 0), 0);
	free(c1);
	free(c2);
}

/* The LMDB environment of the closed store, for a write transaction. */
static MDB_env *
env_open(MDB_txn **ret_txn)
{
	char d[96];
	MDB_env *env;

	snprintf(d, sizeof(d), "%s/data", dir);
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 16), 0);
	ck_assert_int_eq(mdb_env_open(env, d, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, ret_txn), 0);
	return env;
}

/*
 * Swaps two chunks whole ("chunk" values and, 4 KiB chunks being split,
 * their "tail" values) in the LMDB environment of the closed store: each
 * name then holds the other's intact sealed bytes.
 */
static void
swap_values(const uint8_t *n1, const uint8_t *n2)
{
	MDB_txn *txn;
	MDB_env *env = env_open(&txn);

	swap_in(txn, "chunk", n1, n2, SHA_LEN);
	swap_in(txn, "tail", n1, n2, SHA_LEN);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

START_TEST(store_chunks_swapped_on_disk_fail_to_open)
{
	struct seal_ring ra;
	uint8_t sha[4][SHA_LEN], n0[SEAL_NAME_LEN], n1[SEAL_NAME_LEN];
	struct store_error err;
	struct store *s = NULL;
	ProtobufCBinaryData h;
	Ckpt__V1__Chunk **chunks;
	struct arena *a;
	size_t n;

	ring_of(&ra, 1, 0xa);
	ck_assert_int_eq(open_with(&ra, false, &s, &err), 0);
	store_four(s, "c", 1, true, sha);
	ck_assert_int_eq(get_all(s, sha, &err), 0);
	store_close(s);
	/* Both are 4 KiB raw chunks: the same header, so only the name tells them apart. */
	seal_name(&ra.sr_keys[0], sha[0], n0);
	seal_name(&ra.sr_keys[0], sha[1], n1);
	swap_values(n0, n1);
	ck_assert_int_eq(open_with(&ra, false, &s, &err), 0);
	ck_assert_int_eq(arena_new(&a), 0);
	h.data = sha[0];
	h.len = SHA_LEN;
	ck_assert_int_eq(store_get_chunks(s, &h, 1, 0, a, &chunks, &n, &err), -EBADMSG);
	ck_assert_msg(strstr(err.se_msg, "authentication tag") != NULL, "%s", err.se_msg);
	h.data = sha[2];
	ck_assert_int_eq(store_get_chunks(s, &h, 1, 0, a, &chunks, &n, &err), 0);
	{
		struct store_check *ck = calloc(1, sizeof(*ck));
		ck_assert_int_eq(store_check(s, ck, &err), 0);
		ck_assert_uint_eq(ck->sk_bad_chunks, 2);
		free(ck);
	}
	arena_free(a);
	store_close(s);
}
END_TEST

START_TEST(store_records_swapped_on_disk_fail_to_open)
{
	struct seal_ring ra;
	uint8_t sha[4][SHA_LEN], k1[KEY_MAX], k2[KEY_MAX];
	Ckpt__V1__CheckpointRecord *rec;
	struct store_error err;
	struct store *s = NULL;
	struct arena *a;
	size_t l1, l2;
	MDB_txn *txn;
	MDB_env *env;

	ring_of(&ra, 1, 0xa);
	ck_assert_int_eq(open_with(&ra, false, &s, &err), 0);
	store_four(s, "c", 1, true, sha);
	store_four(s, "d", 1, false, sha);
	store_close(s);
	/* n/c@1 gets n/d@1's sealed record and the other way round. */
	ck_assert_int_eq(key_encode("n", "c", 1, k1, &l1), 0);
	ck_assert_int_eq(key_encode("n", "d", 1, k2, &l2), 0);
	ck_assert_uint_eq(l1, l2);
	env = env_open(&txn);
	swap_in(txn, "ckpt", k1, k2, l1);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	ck_assert_int_eq(open_with(&ra, false, &s, &err), 0);
	ck_assert_int_eq(arena_new(&a), 0);
	ck_assert_int_eq(store_retrieve(s, "n", "c", 1, a, &rec, &err), -EBADMSG);
	ck_assert_msg(strstr(err.se_msg, "authentication tag") != NULL, "%s", err.se_msg);
	ck_assert_int_eq(store_retrieve(s, "n", "d", 1, a, &rec, &err), -EBADMSG);
	arena_free(a);
	store_close(s);
}
END_TEST

START_TEST(store_seals_a_stores_inline_chunks)
{
	static uint8_t buf[3000];
	Ckpt__V1__StoreRequest req = CKPT__V1__STORE_REQUEST__INIT;
	Ckpt__V1__ChunkRef ref = CKPT__V1__CHUNK_REF__INIT, *rp = &ref;
	Ckpt__V1__Chunk ch = CKPT__V1__CHUNK__INIT, *chp = &ch;
	Ckpt__V1__CheckpointInfo *info;
	uint8_t sha[4][SHA_LEN], digest[SHA_LEN], name[SEAL_NAME_LEN];
	struct seal_ring ra;
	struct store_error err;
	struct store *s = NULL;
	struct arena *a;
	bool existed;
	MDB_txn *txn;
	MDB_env *env;
	MDB_dbi dbi;
	MDB_val k, v;

	ring_of(&ra, 1, 0xa);
	memset(buf, 's', sizeof(buf));
	sha256(buf, sizeof(buf), sha[0]);
	ref.sha256.data = sha[0];
	ref.sha256.len = SHA_LEN;
	ref.size = sizeof(buf);
	ch.sha256 = ref.sha256;
	ch.data.data = buf;
	ch.data.len = sizeof(buf);
	req.node = "n";
	req.component = "inl";
	req.kind = "raw";
	req.size = sizeof(buf);
	req.n_chunks = 1;
	req.chunks = &rp;
	req.n_inline_chunks = 1;
	req.inline_chunks = &chp;
	ck_assert_int_eq(digest_refs(&rp, 1, digest), 0);
	req.digest.data = digest;
	req.digest.len = SHA_LEN;
	ck_assert_int_eq(open_with(&ra, false, &s, &err), 0);
	ck_assert_int_eq(arena_new(&a), 0);
	ck_assert_msg(store_commit(s, &req, a, &info, &existed, NULL, &err) == 0, "%s", err.se_msg);
	arena_free(a);
	check_clean(s, "inline");
	store_close(s);
	/* Under its name, sealed; nothing under its SHA-256. */
	seal_name(&ra.sr_keys[0], sha[0], name);
	env = env_open(&txn);
	ck_assert_int_eq(mdb_dbi_open(txn, "chunk", 0, &dbi), 0);
	k = (MDB_val){ SHA_LEN, name };
	ck_assert_int_eq(mdb_get(txn, dbi, &k, &v), 0);
	ck_assert_uint_eq(((const uint8_t *)v.mv_data)[1] & 0x02, 0x02);
	ck_assert_ptr_null(memmem(v.mv_data, v.mv_size, "ssssssss", 8));
	k = (MDB_val){ SHA_LEN, sha[0] };
	ck_assert_int_eq(mdb_get(txn, dbi, &k, &v), MDB_NOTFOUND);
	mdb_txn_abort(txn);
	mdb_env_close(env);
}
END_TEST

/*
 * The "ref" value under name in the closed store: its length (0: none), count
 * and raw size (0: the older form); make_old rewrites it as a count only.
 */
static size_t
ref_at(const uint8_t *name, bool make_old, uint64_t *ret_count, uint32_t *ret_size)
{
	MDB_val k = { SHA_LEN, (void *)name }, v;
	uint8_t val[12] = { 0 };
	size_t n = 0;
	MDB_txn *txn;
	MDB_env *env = env_open(&txn);
	MDB_dbi dbi;

	ck_assert_int_eq(mdb_dbi_open(txn, "ref", 0, &dbi), 0);
	if (mdb_get(txn, dbi, &k, &v) == 0) {
		n = v.mv_size;
		memcpy(val, v.mv_data, n < sizeof(val) ? n : sizeof(val));
	}
	memcpy(ret_count, val, sizeof(*ret_count));
	*ret_size = n == 12 ? (uint32_t)val[8] | (uint32_t)val[9] << 8 |
	    (uint32_t)val[10] << 16 | (uint32_t)val[11] << 24 : 0;
	if (make_old && n == 12) {
		v = (MDB_val){ sizeof(*ret_count), val };
		ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
		ck_assert_int_eq(mdb_txn_commit(txn), 0);
	} else {
		mdb_txn_abort(txn);
	}
	mdb_env_close(env);
	return n;
}

static void
expect_refs(const uint8_t (*names)[SEAL_NAME_LEN], size_t len, uint64_t count, const char *what)
{
	for (int i = 0; i < 4; i++) {
		uint64_t c = 0;
		uint32_t size = 0;
		size_t n = ref_at(names[i], false, &c, &size);
		ck_assert_msg(n == len && c == count && size == (len == 12 ? 4096 : 0),
		    "%s: chunk %d: ref of %zu bytes, count %llu, size %u", what, i, n,
		    (unsigned long long)c, size);
	}
}

/* Uploads 4 KiB of byte b (no Store follows); its SHA-256 into sha. */
static void
upload_one(struct store *s, uint8_t b, uint8_t sha[SHA_LEN])
{
	static uint8_t buf[4096];
	Ckpt__V1__Chunk ch = CKPT__V1__CHUNK__INIT, *chp = &ch;
	struct store_error err;
	uint32_t stored;

	memset(buf, b, sizeof(buf));
	sha256(buf, sizeof(buf), sha);
	ch.sha256 = (ProtobufCBinaryData){ SHA_LEN, sha };
	ch.data = (ProtobufCBinaryData){ sizeof(buf), buf };
	ck_assert_int_eq(store_put_chunks(s, &chp, 1, &stored, &err), 0);
	ck_assert_uint_eq(stored, 1);
}

/*
 * With keys, chunks are named by their keyed name: the sweep after open
 * keeps an orphan a HaveChunks named by its SHA-256 (the name it notes is
 * the keyed one the sweep walks), deletes the other one, and counts the
 * sealed bytes.
 */
START_TEST(store_sealed_sweep_keeps_an_orphan_named_by_its_sha)
{
	char d[96];
	struct seal_ring ra;
	struct store_config cfg = { d, 1u << 20, 64u << 20, 0, false, false, &ra, true, 0 };
	uint8_t sha[2][SHA_LEN];
	ProtobufCBinaryData h[2] = { { SHA_LEN, sha[0] }, { SHA_LEN, sha[1] } };
	struct store_stats st;
	struct store_error err;
	struct store *s = NULL;
	struct arena *a;
	uint32_t *missing;
	size_t nm, orphans;

	snprintf(d, sizeof(d), "%s/data", dir);
	ring_of(&ra, 1, 0xa);
	ck_assert_int_eq(open_with(&ra, false, &s, &err), 0);
	upload_one(s, 'x', sha[0]);
	upload_one(s, 'y', sha[1]);
	store_close(s);
	ck_assert_int_eq(store_open(&cfg, &s, NULL, &err), 0);
	ck_assert_int_eq(arena_new(&a), 0);
	ck_assert_int_eq(store_have_chunks(s, h, 1, a, &missing, &nm, &err), 0);
	ck_assert_uint_eq(nm, 0);
	ck_assert_int_eq(store_sweep_wait(s, &orphans), 0);
	ck_assert_uint_eq(orphans, 1);
	ck_assert_int_eq(store_have_chunks(s, h, 2, a, &missing, &nm, &err), 0);
	ck_assert_uint_eq(nm, 1);
	ck_assert_uint_eq(missing[0], 1);
	ck_assert_int_eq(store_stat(s, &st, &err), 0);
	ck_assert(!st.ss_counting);
	ck_assert_uint_eq(st.ss_chunk_bytes, 4096 + SEAL_OVERHEAD);
	ck_assert_uint_eq(st.ss_chunk_raw_bytes, 4096);
	store_close(s);
	/* Never referenced: the next open's sweep takes it. */
	ck_assert_int_eq(open_with(&ra, false, &s, &err), 0);
	ck_assert_int_eq(store_sweep_wait(s, &orphans), 0);
	ck_assert_uint_eq(orphans, 1);
	store_close(s);
	arena_free(a);
	seal_ring_wipe(&ra);
}
END_TEST

START_TEST(store_sealed_refs_carry_sizes_through_commits_and_rotation)
{
	uint8_t sha[4][SHA_LEN], na[4][SEAL_NAME_LEN], nb[4][SEAL_NAME_LEN];
	struct seal_ring ra, rba;
	struct store_error err;
	struct store *s = NULL;
	uint64_t count;
	uint32_t size;
	char v[8] = { 0 };

	ring_of(&ra, 1, 0xa);
	ring_of(&rba, 2, 0xb, 0xa);
	ck_assert_int_eq(open_with(&ra, false, &s, &err), 0);
	store_four(s, "c", 1, true, sha);
	store_close(s);
	for (int i = 0; i < 4; i++) {
		seal_name(&ra.sr_keys[0], sha[i], na[i]);
		seal_name(&rba.sr_keys[0], sha[i], nb[i]);
	}
	/* Counts under the chunks' names, with their sizes; two made of the older form. */
	expect_refs((const uint8_t (*)[SEAL_NAME_LEN])na, 12, 1, "first commit");
	ck_assert_uint_eq(ref_at(na[0], true, &count, &size), 12);
	ck_assert_uint_eq(ref_at(na[2], true, &count, &size), 12);
	ck_assert_int_eq(open_with(&ra, false, &s, &err), 0);
	check_clean(s, "mixed forms, sealed");
	/* A size that is not the chunk's, against either form: refused. */
	ck_assert_int_eq(commit_four(s, "c", 2, false, sha, 1, &err), -EINVAL);
	ck_assert_str_eq(err.se_msg, "chunk 1: size 4097 does not match the stored chunk (4096 bytes)");
	ck_assert_int_eq(commit_four(s, "c", 2, false, sha, -1, &err), -EINVAL);
	ck_assert_str_eq(err.se_msg, "chunk 1: size 4095 does not match the stored chunk (4096 bytes)");
	/* From the store's chunks: every count rewritten with its size. */
	store_four(s, "c", 2, false, sha);
	check_clean(s, "second commit");
	store_close(s);
	expect_refs((const uint8_t (*)[SEAL_NAME_LEN])na, 12, 2, "second commit");
	{
		MDB_txn *txn;
		MDB_env *env = env_open(&txn);
		MDB_dbi dbi;
		MDB_val k = { 6, "format" }, fv;
		ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
		ck_assert_int_eq(mdb_get(txn, dbi, &k, &fv), 0);
		memcpy(v, fv.mv_data, fv.mv_size < sizeof(v) - 1 ? fv.mv_size : sizeof(v) - 1);
		mdb_txn_abort(txn);
		mdb_env_close(env);
		ck_assert_str_eq(v, "6");
	}
	/*
	 * A rotation: a commit from the store's chunks seals them anew under B,
	 * whose names get counts with sizes. A refused one leaves nothing under B.
	 */
	ck_assert_int_eq(open_with(&rba, false, &s, &err), 0);
	ck_assert_int_eq(commit_four(s, "c", 3, false, sha, 1, &err), -EINVAL);
	ck_assert_uint_eq(missing_of(s, sha), 4);
	store_four(s, "c", 3, false, sha);
	ck_assert_uint_eq(missing_of(s, sha), 0);
	check_clean(s, "rotated");
	store_close(s);
	expect_refs((const uint8_t (*)[SEAL_NAME_LEN])nb, 12, 1, "under B");
	expect_refs((const uint8_t (*)[SEAL_NAME_LEN])na, 12, 2, "under A");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("seal");
	TCase *tc = tcase_create("seal");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, seal_roundtrip_gives_the_plaintext);
	tcase_add_test(tc, seal_two_seals_of_the_same_bytes_differ);
	tcase_add_test(tc, seal_any_flipped_byte_fails_to_open);
	tcase_add_test(tc, seal_other_associated_data_or_key_fails_to_open);
	tcase_add_test(tc, seal_opens_a_value_cut_anywhere_into_head_and_tail);
	tcase_add_test(tc, seal_one_context_serves_keys_and_directions_in_turn);
	tcase_add_test(tc, seal_names_are_keyed);
	tcase_add_test(tc, seal_key_load_reads_raw_and_hex_alike);
	tcase_add_test(tc, seal_key_load_refuses_a_file_others_may_read);
	tcase_add_test(tc, seal_key_load_refuses_what_is_not_a_key);
	tcase_add_test(tc, seal_ring_takes_the_sealing_key_first_and_a_key_once);
	tcase_add_test(tc, store_with_a_key_refuses_no_key_and_a_wrong_key);
	tcase_add_test(tc, store_without_keys_starts_sealing_when_given_one);
	tcase_add_test(tc, store_rotation_seals_shared_chunks_anew_and_frees_the_old_ones);
	tcase_add_test(tc, store_without_the_old_key_says_which_key_is_missing);
	tcase_add_test(tc, store_chunks_swapped_on_disk_fail_to_open);
	tcase_add_test(tc, store_records_swapped_on_disk_fail_to_open);
	tcase_add_test(tc, store_seals_a_stores_inline_chunks);
	tcase_add_test(tc, store_sealed_refs_carry_sizes_through_commits_and_rotation);
	tcase_add_test(tc, store_sealed_sweep_keeps_an_orphan_named_by_its_sha);
	suite_add_tcase(s, tc);
	return test_run(s);
}

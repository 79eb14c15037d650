/*
 * ckpt-corrupt DIR NODE COMPONENT SEQ: the corruption tests' hook. Flips one
 * byte of the raw bytes of the middle chunk (the data chunk nearest it: holes
 * hold no bytes) of NODE/COMPONENT@SEQ (a zstd
 * chunk is rewritten raw, so the flip always changes the content, never only
 * a field of the frame that does not matter) in the
 * NAS's LMDB environment in DIR (a running NAS may keep it open: LMDB
 * serialises writers across processes). Prints the chunk's SHA-256.
 * With KEYFILE (a store encrypted at rest, seal.h): the record is opened with
 * that key and one byte of the middle chunk's ciphertext is flipped where it
 * lies, under the chunk's keyed name: its tag no longer matches.
 * Exit 0 done, 1 failure (one line on stderr), 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>
#include <zstd.h>

#include "ckpt/v1/store.pb-c.h"
#include "key.h"
#include "seal.h"
#include "sha.h"

#define HDR 8 /* chunk value header (store.proto) */

static int
fail(const char *what, int rc)
{
	fprintf(stderr, "ckpt-corrupt: %s: %s\n", what, mdb_strerror(rc));
	return 1;
}

int
main(int argc, char **argv)
{
	uint8_t key[KEY_MAX], sha[SHA_LEN], *copy, *opened = NULL;
	struct seal_key sk;
	bool sealed = argc == 6;
	char hex[SHA_HEX_LEN + 1];
	Ckpt__V1__CheckpointRecord *rec;
	MDB_dbi ckpt, chunk, tail;
	MDB_val k, v;
	MDB_env *env;
	MDB_txn *txn;
	size_t klen, mid;
	int rc;

	if ((argc != 5 && argc != 6) ||
	    key_encode(argv[2], argv[3], strtoull(argv[4], NULL, 10), key, &klen) != 0) {
		fprintf(stderr, "usage: ckpt-corrupt DIR NODE COMPONENT SEQ [KEYFILE]\n");
		return 2;
	}
	if (sealed) {
		char err[256];
		if (seal_key_load(argv[5], &sk, err, sizeof(err)) != 0) {
			fprintf(stderr, "ckpt-corrupt: %s\n", err);
			return 1;
		}
	}
	if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_maxdbs(env, 16)) != 0 ||
	    (rc = mdb_env_open(env, argv[1], 0, 0640)) != 0)
		return fail(argv[1], rc);
	if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "ckpt", 0, &ckpt)) != 0 ||
	    (rc = mdb_dbi_open(txn, "chunk", 0, &chunk)) != 0 ||
	    (rc = mdb_dbi_open(txn, "tail", 0, &tail)) != 0)
		return fail("open", rc);
	k.mv_size = klen;
	k.mv_data = key;
	if ((rc = mdb_get(txn, ckpt, &k, &v)) != 0)
		return fail("record", rc);
	if (sealed) {
		uint8_t aad[SEAL_RECORD_AAD_MAX];
		size_t alen = seal_record_aad(key, klen, aad);
		if (v.mv_size < SEAL_RECORD_MAGIC_LEN + SEAL_OVERHEAD ||
		    memcmp(v.mv_data, SEAL_RECORD_MAGIC, SEAL_RECORD_MAGIC_LEN) != 0 ||
		    (opened = malloc(v.mv_size)) == NULL ||
		    seal_decrypt(&sk, aad, alen, (uint8_t *)v.mv_data + SEAL_RECORD_MAGIC_LEN,
		        v.mv_size - SEAL_RECORD_MAGIC_LEN, NULL, 0, opened) != 0) {
			fprintf(stderr, "ckpt-corrupt: the record is not sealed under that key\n");
			return 1;
		}
		v.mv_size -= SEAL_RECORD_MAGIC_LEN + SEAL_OVERHEAD;
		v.mv_data = opened;
	}
	rec = ckpt__v1__checkpoint_record__unpack(NULL, v.mv_size, v.mv_data);
	free(opened);
	if (rec == NULL || rec->n_chunks == 0) {
		fprintf(stderr, "ckpt-corrupt: the record has no chunk\n");
		return 1;
	}
	/*
	 * The middle chunk that is not a hole, else the nearest before it (how
	 * many chunks the data and the holes make depends on the data's cut).
	 */
	mid = rec->n_chunks / 2;
	while (mid < rec->n_chunks && rec->chunks[mid]->zero)
		mid++;
	if (mid == rec->n_chunks) {
		mid = rec->n_chunks / 2;
		while (mid > 0 && rec->chunks[mid]->zero)
			mid--;
	}
	if (rec->chunks[mid]->zero) {
		fprintf(stderr, "ckpt-corrupt: the record has only holes\n");
		return 1;
	}
	memcpy(sha, rec->chunks[mid]->sha256.data, SHA_LEN);
	ckpt__v1__checkpoint_record__free_unpacked(rec, NULL);
	k.mv_size = SHA_LEN;
	k.mv_data = sha;
	if (sealed) {
		static uint8_t name[SEAL_NAME_LEN];
		seal_name(&sk, sha, name);
		k.mv_data = name;
	}
	if ((rc = mdb_get(txn, chunk, &k, &v)) != 0)
		return fail("chunk", rc);
	if (v.mv_size <= HDR + SEAL_OVERHEAD) {
		fprintf(stderr, "ckpt-corrupt: the chunk value is too short\n");
		return 1;
	}
	if (sealed) {
		/* A byte of ciphertext, in place: the chunk keeps its form, its tag fails. */
		copy = malloc(v.mv_size);
		memcpy(copy, v.mv_data, v.mv_size);
		copy[HDR + SEAL_ID_LEN + SEAL_NONCE_LEN + (v.mv_size - HDR - SEAL_OVERHEAD) / 2] ^= 0x20;
		v.mv_data = copy;
	} else {
		const uint8_t *p = v.mv_data;
		size_t raw = (size_t)p[4] | (size_t)p[5] << 8 | (size_t)p[6] << 16 | (size_t)p[7] << 24;
		size_t len = v.mv_size - HDR;
		uint8_t *whole = malloc(len + 4096), hdr[HDR];
		memcpy(hdr, p, HDR);
		memcpy(whole, p + HDR, len);
		if (hdr[1] & 1) { /* split: the rest of the bytes are in "tail" */
			MDB_val tv;
			if ((rc = mdb_get(txn, tail, &k, &tv)) != 0 || tv.mv_size > 4096)
				return fail("tail", rc != 0 ? rc : MDB_CORRUPTED);
			memcpy(whole + len, tv.mv_data, tv.mv_size);
			len += tv.mv_size;
			if ((rc = mdb_del(txn, tail, &k, NULL)) != 0)
				return fail("tail", rc);
		}
		copy = malloc(HDR + raw);
		memcpy(copy, hdr, HDR);
		copy[0] = 0; /* raw */
		copy[1] = 0; /* in one piece */
		if (hdr[0] == 1) {
			size_t got = ZSTD_decompress(copy + HDR, raw, whole, len);
			if (ZSTD_isError(got) || got != raw) {
				fprintf(stderr, "ckpt-corrupt: the chunk does not decompress\n");
				return 1;
			}
		} else {
			memcpy(copy + HDR, whole, raw);
		}
		free(whole);
		copy[HDR + raw / 2] ^= 0x20;
		v.mv_size = HDR + raw;
		v.mv_data = copy;
	}
	if ((rc = mdb_put(txn, chunk, &k, &v, 0)) != 0 || (rc = mdb_txn_commit(txn)) != 0)
		return fail("write", rc);
	mdb_env_close(env);
	free(copy);
	sha_hex(sha, SHA_LEN, hex);
	printf("%s\n", hex);
	return 0;
}

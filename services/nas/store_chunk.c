#include "store_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "pbw.h"
#include "seal.h"
#include "sha.h"
#include "zchunk.h"

/* ---- the chunk format ---- */

/* Splits the header off a "chunk" value; -EBADMSG when it is not one. */
int
store_chunk_parse(const MDB_val *v, struct store_chunk_val *ret)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size <= STORE_CHUNK_HDR || (p[1] & ~(STORE_CHUNK_SPLIT | STORE_CHUNK_SEALED)) != 0 ||
	    p[2] != 0 ||
	    p[3] != 0 || (p[0] != ZCHUNK_RAW && p[0] != ZCHUNK_ZSTD))
		return -EBADMSG;
	ret->cv_codec = p[0];
	ret->cv_split = (p[1] & STORE_CHUNK_SPLIT) != 0;
	ret->cv_sealed = (p[1] & STORE_CHUNK_SEALED) != 0;
	ret->cv_raw_size = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
	    (uint32_t)p[7] << 24;
	ret->cv_data = p + STORE_CHUNK_HDR;
	ret->cv_len = v->mv_size - STORE_CHUNK_HDR;
	ret->cv_tail = NULL;
	ret->cv_tail_len = 0;
	if (ret->cv_raw_size == 0 || ret->cv_raw_size > STORE_CHUNK_MAX ||
	    (ret->cv_codec == ZCHUNK_RAW && !ret->cv_split &&
	        ret->cv_len != ret->cv_raw_size + (ret->cv_sealed ? SEAL_OVERHEAD : 0)) ||
	    (ret->cv_sealed && !ret->cv_split && ret->cv_len <= SEAL_OVERHEAD))
		return -EBADMSG;
	return 0;
}

/* store_chunk_parse() and, for a split chunk, its tail. -EBADMSG when inconsistent. */
int
store_chunk_read(struct store *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v,
    struct store_chunk_val *ret)
{
	MDB_val tk = *k, tv;
	int rc, rv;

	rv = store_chunk_parse(v, ret);
	if (rv != 0 || !ret->cv_split)
		return rv;
	rc = mdb_get(txn, s->s_dbi[DB_TAIL], &tk, &tv);
	if (rc == MDB_NOTFOUND)
		return -EBADMSG;
	if (rc != 0)
		return store_rc(rc);
	ret->cv_tail = tv.mv_data;
	ret->cv_tail_len = tv.mv_size;
	if (ret->cv_codec == ZCHUNK_RAW && ret->cv_len + ret->cv_tail_len !=
	    ret->cv_raw_size + (ret->cv_sealed ? SEAL_OVERHEAD : 0))
		return -EBADMSG;
	if (ret->cv_sealed && ret->cv_len < SEAL_ID_LEN)
		return -EBADMSG;
	return 0;
}

/* Copies a chunk's stored bytes (head and tail) into out. */
void
store_chunk_copy(const struct store_chunk_val *cv, uint8_t *out)
{
	memcpy(out, cv->cv_data, cv->cv_len);
	if (cv->cv_tail_len != 0)
		memcpy(out + cv->cv_len, cv->cv_tail, cv->cv_tail_len);
}

/* Bytes of a value of len bytes to cut off into "tail" (0: keep it whole). */
static size_t
store_tail_len(size_t len, size_t page)
{
	size_t last = (len + STORE_PAGE_HDR) % page;

	if (len + STORE_PAGE_HDR <= page || last == 0 || last > STORE_TAIL_MAX)
		return 0;
	return last;
}

static void
store_chunk_hdr(uint8_t *p, unsigned codec, bool split, bool sealed, uint32_t raw_size)
{
	p[0] = (uint8_t)codec;
	p[1] = (uint8_t)((split ? STORE_CHUNK_SPLIT : 0) | (sealed ? STORE_CHUNK_SEALED : 0));
	p[2] = p[3] = 0;
	p[4] = (uint8_t)raw_size;
	p[5] = (uint8_t)(raw_size >> 8);
	p[6] = (uint8_t)(raw_size >> 16);
	p[7] = (uint8_t)(raw_size >> 24);
}

/*
 * Writes a new chunk value under k: its header, then data[0, len) (its stored
 * bytes), the end cut off into "tail" when that saves a page. An LMDB code:
 * MDB_KEYEXIST when k is there already (nothing written).
 */
static int
store_chunk_put(struct store *s, MDB_txn *txn, const MDB_val *k, unsigned codec, bool sealed,
    uint32_t raw_size, const uint8_t *data, size_t len)
{
	size_t tail = store_tail_len(STORE_CHUNK_HDR + len, s->s_psize), head = len - tail;
	MDB_val key = *k, v = { STORE_CHUNK_HDR + head, NULL };
	int rc;

	rc = mdb_put(txn, s->s_dbi[DB_CHUNK], &key, &v, MDB_NOOVERWRITE | MDB_RESERVE);
	if (rc != 0)
		return rc;
	store_chunk_hdr(v.mv_data, codec, tail != 0, sealed, raw_size);
	memcpy((uint8_t *)v.mv_data + STORE_CHUNK_HDR, data, head);
	if (tail != 0) {
		MDB_val tv = { tail, (void *)(data + head) };
		key = *k;
		rc = mdb_put(txn, s->s_dbi[DB_TAIL], &key, &tv, 0);
	}
	return rc;
}

/* ---- encryption at rest (seal.h) ---- */

/*
 * Finds the chunk of SHA-256 sha: under its SHA-256 in a store without keys;
 * else under its name for each key of the ring in turn (a chunk written
 * before a rotation keeps its older name), then under its SHA-256 (written
 * before the store had a key). ret_name (SHA_LEN bytes): the name it was
 * found under, or, when it is nowhere (MDB_NOTFOUND), the name a new chunk
 * gets. Returns an LMDB code, or STORE_FOUND_OLD when a store with keys has
 * it in another form than under its newest key (an older key, or in clear).
 */
int
store_chunk_find(struct store *s, MDB_txn *txn, const uint8_t *sha, uint8_t *ret_name,
    MDB_val *ret_val)
{
	MDB_val k = { SHA_LEN, ret_name };
	int rc;

	for (size_t i = 0; s->s_seal && i < s->s_ring.sr_n; i++) {
		seal_name(&s->s_ring.sr_keys[i], sha, ret_name);
		rc = mdb_get(txn, s->s_dbi[DB_CHUNK], &k, ret_val);
		if (rc == MDB_NOTFOUND)
			continue;
		/* Found under an older key: tell the caller (store_chunk_reseal()). */
		return rc == 0 && i != 0 ? STORE_FOUND_OLD : rc;
	}
	memcpy(ret_name, sha, SHA_LEN);
	rc = mdb_get(txn, s->s_dbi[DB_CHUNK], &k, ret_val);
	if (rc == MDB_NOTFOUND && s->s_seal)
		seal_name(&s->s_ring.sr_keys[0], sha, ret_name);
	return rc == 0 && s->s_seal ? STORE_FOUND_OLD : rc;
}

/* The name a chunk is written under: its SHA-256, or its name under the store's key. */
void
store_chunk_name(const struct store *s, const uint8_t *sha, uint8_t *ret_name)
{
	if (s->s_seal)
		seal_name(&s->s_ring.sr_keys[0], sha, ret_name);
	else
		memcpy(ret_name, sha, SHA_LEN);
}

/*
 * The name of a chunk of a record: a record sealed under key id id (NULL:
 * one in clear) holds chunks named under that key (store_commit_refs() sees
 * to it), or in clear.
 */
void
store_chunk_name_of(const struct store *s, const uint8_t *id, const uint8_t *sha,
    uint8_t *ret_name)
{
	const struct seal_key *key = id != NULL ? seal_ring_find(&s->s_ring, id) : NULL;

	if (key != NULL)
		seal_name(key, sha, ret_name);
	else
		memcpy(ret_name, sha, SHA_LEN);
}

/* A key id the store holds values of but was not given. */
void
store_nokey_error(struct store_error *err, const char *what, const uint8_t id[SEAL_ID_LEN])
{
	char hex[SEAL_ID_HEX_LEN + 1];

	seal_id_hex(id, hex);
	store_errorf(err, "%s is sealed under key id %s, which this NAS was not given "
	    "(--decrypt-keys FILE)", what, hex);
}

/*
 * Opens a sealed chunk (read by store_chunk_read(), stored under name) into
 * out (cv_len + cv_tail_len - SEAL_OVERHEAD bytes); cv then describes the
 * opened bytes, the stored form the writer sent. *ret_id: the key id. ctx:
 * the caller's thread's context for a batch, or NULL.
 * -ENOKEY for a key the store was not given, -EBADMSG for bytes that fail
 * their tag (tampered, or moved under another name).
 */
int
store_chunk_open(const struct store *s, struct seal_ctx *ctx, const uint8_t *name,
    struct store_chunk_val *cv, uint8_t *out, uint8_t ret_id[SEAL_ID_LEN])
{
	uint8_t aad[SEAL_CHUNK_AAD_LEN];
	const struct seal_key *key;
	size_t len = cv->cv_len + cv->cv_tail_len;
	int rv;

	memcpy(ret_id, seal_id_of(cv->cv_data), SEAL_ID_LEN); /* cv_len >= SEAL_ID_LEN: parsed */
	key = seal_ring_find(&s->s_ring, ret_id);
	if (key == NULL)
		return -ENOKEY;
	seal_chunk_aad(name, cv->cv_codec, cv->cv_raw_size, aad);
	rv = ctx != NULL ? seal_decrypt_ctx(ctx, key, aad, sizeof(aad), cv->cv_data, cv->cv_len,
	    cv->cv_tail, cv->cv_tail_len, out) : seal_decrypt(key, aad, sizeof(aad), cv->cv_data,
	    cv->cv_len, cv->cv_tail, cv->cv_tail_len, out);
	if (rv != 0)
		return rv;
	cv->cv_data = out;
	cv->cv_len = len - SEAL_OVERHEAD;
	cv->cv_tail = NULL;
	cv->cv_tail_len = 0;
	cv->cv_split = false;
	cv->cv_sealed = false;
	return 0;
}

/*
 * A chunk a new record references that was found under an older key or in
 * clear (old_name, old_val: store_chunk_find()) is sealed anew under the
 * store's key, as new_name; the old one stays for the records that hold it.
 * So every record written after a rotation reads with the newest key alone,
 * and an old key can go once the records written before it are gone.
 * *bytes and *raw grow by what was added.
 */
int
store_chunk_reseal(struct store *s, MDB_txn *txn, const uint8_t *old_name, const MDB_val *old_val,
    const uint8_t *new_name, uint64_t *bytes, uint64_t *raw)
{
	const struct seal_key *key = &s->s_ring.sr_keys[0];
	MDB_val ok = { SHA_LEN, (void *)old_name }, k = { SHA_LEN, (void *)new_name };
	uint8_t aad[SEAL_CHUNK_AAD_LEN], id[SEAL_ID_LEN], *plain, *sealed = NULL;
	struct store_chunk_val cv;
	size_t len;
	int rc, rv;

	rv = store_chunk_read(s, txn, &ok, old_val, &cv);
	if (rv != 0)
		return rv;
	len = cv.cv_len + cv.cv_tail_len;
	/* Copied out before the first write: old_val points into the map. */
	plain = malloc(len != 0 ? len : 1);
	if (plain == NULL)
		return -ENOMEM;
	if (cv.cv_sealed) {
		rv = len > SEAL_OVERHEAD ? store_chunk_open(s, NULL, old_name, &cv, plain, id) : -EBADMSG;
	} else {
		store_chunk_copy(&cv, plain);
		cv.cv_data = plain;
		cv.cv_len = len;
	}
	len = cv.cv_len + SEAL_OVERHEAD;
	if (rv == 0 && (sealed = malloc(len)) == NULL)
		rv = -ENOMEM;
	if (rv == 0) {
		seal_chunk_aad(new_name, cv.cv_codec, cv.cv_raw_size, aad);
		rv = seal_encrypt(key, aad, sizeof(aad), cv.cv_data, cv.cv_len, sealed);
	}
	if (rv != 0)
		goto out;
	rc = store_chunk_put(s, txn, &k, cv.cv_codec, true, cv.cv_raw_size, sealed, len);
	if (rc == MDB_KEYEXIST)
		goto out;
	rv = store_rc(rc);
	if (rv == 0 && store_sweep_passed(s, txn, new_name, SHA_LEN)) {
		*bytes += len;
		*raw += cv.cv_raw_size;
	}
out:
	free(sealed);
	free(plain);
	return rv;
}

/* ---- chunks ---- */

struct store_have_op {
	const ProtobufCBinaryData *h_hashes;
	size_t h_n;
	uint8_t (*h_names)[SHA_LEN];  /* NULL: computed here */
	bool *h_doomed;               /* NULL: none (store_sweep_touch()) */
	uint32_t *h_missing;
	size_t h_n_missing;
};

static int
store_have_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_have_op *op = arg;

	op->h_n_missing = 0;
	for (size_t i = 0; i < op->h_n; i++) {
		uint8_t name[SHA_LEN];
		MDB_val k = { SHA_LEN, name }, v;
		int rc;

		/* Under the newest key only: a writer sends again what older keys sealed. */
		if (op->h_names != NULL)
			memcpy(name, op->h_names[i], SHA_LEN);
		else
			store_chunk_name(s, op->h_hashes[i].data, name);
		rc = mdb_get(txn, s->s_dbi[DB_CHUNK], &k, &v);
		/* Doomed: the sweep after open deletes it (or did), whatever this snapshot says. */
		if (rc == 0 && op->h_doomed != NULL && op->h_doomed[i])
			rc = MDB_NOTFOUND;
		if (rc == MDB_NOTFOUND)
			op->h_missing[op->h_n_missing++] = (uint32_t)i;
		else if (rc != 0)
			return store_rc(rc);
	}
	return 0;
}

/*
 * While the sweep after open may delete chunks: the names asked for are
 * noted before the read (the sweep then keeps them), and those it deletes
 * are answered missing (store_sweep_touch()). The names are computed
 * before the lock (an HMAC each with keys).
 */
static int
store_have_touch(struct store *s, struct store_have_op *op, struct arena *a)
{
	if (!atomic_load(&s->s_sweep_counting) || op->h_n == 0)
		return 0;
	op->h_names = arena_alloc(a, op->h_n * sizeof(*op->h_names));
	op->h_doomed = arena_alloc(a, op->h_n * sizeof(*op->h_doomed));
	if (op->h_names == NULL || op->h_doomed == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < op->h_n; i++) {
		store_chunk_name(s, op->h_hashes[i].data, op->h_names[i]);
		op->h_doomed[i] = false;
	}
	if (!store_sweep_lock(s))
		return 0;
	for (size_t i = 0; i < op->h_n; i++)
		op->h_doomed[i] = store_sweep_touch(s, op->h_names[i]);
	store_sweep_unlock(s);
	return 0;
}

int
store_have_chunks(struct store *s, const ProtobufCBinaryData *hashes, size_t n, struct arena *a,
    uint32_t **ret_missing, size_t *ret_n_missing, struct store_error *ret_err)
{
	struct store_have_op op = { hashes, n, NULL, NULL, NULL, 0 };
	int rv;

	ret_err->se_msg[0] = '\0';
	rv = store_check_hashes(hashes, n, ret_err);
	if (rv != 0)
		return rv;
	op.h_missing = arena_alloc(a, (n != 0 ? n : 1) * sizeof(uint32_t));
	if (op.h_missing == NULL)
		return -ENOMEM;
	rv = store_have_touch(s, &op, a);
	if (rv == 0)
		rv = store_read(s, store_have_txn, &op);
	if (rv != 0)
		return rv;
	*ret_missing = op.h_missing;
	*ret_n_missing = op.h_n_missing;
	return 0;
}

/*
 * A chunk from the wire: bounded, decodable, and its raw bytes match its
 * SHA-256. Decompresses into out (STORE_CHUNK_MAX bytes) when it has to.
 */
static int
store_check_chunk(struct zchunk *z, uint8_t *out, const Ckpt__V1__Chunk *c, size_t i,
    struct store_error *err)
{
	size_t raw_size = c->raw_size != 0 ? c->raw_size : c->data.len;
	const void *raw;
	int rv;

	if (c->sha256.len != SHA_LEN) {
		store_errorf(err, "chunk %zu: sha256 has %zu bytes, want %d", i, c->sha256.len, SHA_LEN);
		return -EINVAL;
	}
	if (c->codec != ZCHUNK_RAW && c->codec != ZCHUNK_ZSTD) {
		store_errorf(err, "chunk %zu: unknown codec %u (0 raw, 1 zstd)", i, c->codec);
		return -EINVAL;
	}
	if (raw_size == 0 || raw_size > STORE_CHUNK_MAX || c->data.len == 0 ||
	    c->data.len > STORE_CHUNK_MAX) {
		store_errorf(err, "chunk %zu: %zu bytes (raw %zu), want 1 to %u", i, c->data.len,
		    raw_size, STORE_CHUNK_MAX);
		return -EINVAL;
	}
	rv = zchunk_verify(z, c->codec, c->data.data, c->data.len, raw_size, STORE_CHUNK_MAX, out,
	    c->sha256.data, &raw);
	if (rv == -EBADMSG && c->codec == ZCHUNK_ZSTD) {
		const void *r2;
		/* Tell a bad frame from a frame of other bytes. */
		if (zchunk_decode(z, c->codec, c->data.data, c->data.len, raw_size, STORE_CHUNK_MAX, out,
		    &r2) != 0) {
			store_errorf(err, "chunk %zu: not a zstd frame of %zu bytes", i, raw_size);
			return -EINVAL;
		}
	}
	if (rv != 0) {
		store_errorf(err, "chunk %zu: data does not match its SHA-256", i);
		return -EINVAL;
	}
	return 0;
}

/* Writes the chunks of op the store lacks (PutChunks, or a Store's inline chunks). */
int
store_put_run(struct store *s, MDB_txn *txn, struct store_put_op *op)
{
	op->p_stored = 0;
	op->p_bytes = 0;
	op->p_raw = 0;
	/* A store with keys writes only what store_put_seal() sealed: never bytes in clear. */
	if (s->s_seal && op->p_n != 0 && (op->p_sealed == NULL || op->p_names == NULL))
		return -EINVAL;
	for (size_t i = 0; i < op->p_n; i++) {
		const Ckpt__V1__Chunk *c = op->p_chunks[i];
		uint32_t raw_size = c->raw_size != 0 ? c->raw_size : (uint32_t)c->data.len;
		const uint8_t *data = c->data.data;
		size_t len = c->data.len;
		MDB_val k = { SHA_LEN, c->sha256.data };
		int rc;

		if (s->s_seal) {
			k.mv_data = op->p_names[i];
			data = op->p_sealed[i];
			len += SEAL_OVERHEAD;
		}
		/* Two uploads of the same chunk: the first writer wins, the other finds it. */
		rc = store_chunk_put(s, txn, &k, c->codec, s->s_seal, raw_size, data, len);
		if (rc == MDB_KEYEXIST)
			continue;
		if (rc != 0)
			return store_rc(rc);
		op->p_stored++;
		/* A chunk after the sweep's frontier: the sweep counts it when it gets there. */
		if (!store_sweep_passed(s, txn, k.mv_data, k.mv_size))
			continue;
		op->p_bytes += len;
		op->p_raw += raw_size;
	}
	return 0;
}

/*
 * Seals every chunk under the store's key (outside the transaction, like the
 * verification): the stored form, authenticated with the chunk's name under
 * that key, its codec and raw size.
 */
int
store_put_seal(struct store *s, struct store_put_op *op)
{
	const struct seal_key *key = &s->s_ring.sr_keys[0];
	struct seal_ctx *ctx = NULL;
	size_t total = 0, off = 0;
	int rv;

	for (size_t i = 0; i < op->p_n; i++)
		total += op->p_chunks[i]->data.len + SEAL_OVERHEAD;
	op->p_buf = malloc(total);
	op->p_sealed = malloc(op->p_n * sizeof(*op->p_sealed));
	op->p_names = malloc(op->p_n * sizeof(*op->p_names));
	if (op->p_buf == NULL || op->p_sealed == NULL || op->p_names == NULL)
		return -ENOMEM;
	rv = seal_ctx_new(&ctx);
	for (size_t i = 0; i < op->p_n && rv == 0; i++) {
		const Ckpt__V1__Chunk *c = op->p_chunks[i];
		uint32_t raw_size = c->raw_size != 0 ? c->raw_size : (uint32_t)c->data.len;
		uint8_t aad[SEAL_CHUNK_AAD_LEN];

		seal_name(key, c->sha256.data, op->p_names[i]);
		seal_chunk_aad(op->p_names[i], c->codec, raw_size, aad);
		op->p_sealed[i] = op->p_buf + off;
		rv = seal_encrypt_ctx(ctx, key, aad, sizeof(aad), c->data.data, c->data.len,
		    op->p_sealed[i]);
		off += c->data.len + SEAL_OVERHEAD;
	}
	seal_ctx_free(ctx);
	return rv;
}

static int
store_put_txn(struct store *s, MDB_txn *txn, void *arg)
{
	return store_put_run(s, txn, arg);
}

/*
 * Every chunk bounded, decodable and matching its SHA-256; done outside any
 * transaction, so the single writer is not held by CPU work.
 */
int
store_check_chunks(Ckpt__V1__Chunk *const *chunks, size_t n, struct store_error *err)
{
	struct zchunk *z = NULL;
	uint8_t *out = NULL;
	int rv = 0;

	if (n > STORE_PUT_MAX) {
		store_errorf(err, "too many chunks: %zu (at most %u)", n, STORE_PUT_MAX);
		return -EINVAL;
	}
	/* A raw chunk needs no decoder: a small store of raw chunks makes none (~100 KB to set up). */
	for (size_t i = 0; i < n && rv == 0; i++) {
		if (chunks[i]->codec == ZCHUNK_ZSTD && out == NULL && (out = malloc(STORE_CHUNK_MAX)) == NULL)
			rv = -ENOMEM;
		if (rv == 0 && chunks[i]->codec == ZCHUNK_ZSTD && z == NULL)
			rv = zchunk_new(&z);
		if (rv == 0)
			rv = store_check_chunk(z, out, chunks[i], i, err);
	}
	free(out);
	zchunk_free(z);
	return rv;
}

/*
 * What writing op's chunks may take on disk: their bytes, and for each a
 * part of an overflow page (a value ends in a page of its own, of which at
 * most STORE_TAIL_MAX bytes go to "tail") and its index entries.
 */
uint64_t
store_put_need(const struct store_put_op *op)
{
	uint64_t need = STORE_NEED_MIN;

	for (size_t i = 0; i < op->p_n; i++)
		need += op->p_chunks[i]->data.len + STORE_CHUNK_HDR + SEAL_OVERHEAD + STORE_NEED_CHUNK;
	return need;
}

int
store_put_chunks(struct store *s, Ckpt__V1__Chunk *const *chunks, size_t n, uint32_t *ret_stored,
    struct store_error *ret_err)
{
	struct store_put_op op = { .p_chunks = chunks, .p_n = n };
	int rv;

	ret_err->se_msg[0] = '\0';
	if (n == 0) {
		*ret_stored = 0;
		return 0;
	}
	rv = store_check_chunks(chunks, n, ret_err);
	if (rv == 0 && s->s_seal)
		rv = store_put_seal(s, &op);
	/* The sweep after open keeps these (a Store may follow): noted before the write. */
	if (rv == 0 && store_sweep_lock(s)) {
		for (size_t i = 0; i < n; i++)
			(void)store_sweep_touch(s, s->s_seal ? op.p_names[i] : chunks[i]->sha256.data);
		store_sweep_unlock(s);
	}
	if (rv == 0)
		rv = store_write_upload(s, store_put_txn, &op, store_put_need(&op), ret_err);
	free(op.p_sealed);
	free(op.p_buf);
	free(op.p_names);
	if (rv != 0)
		return rv;
	atomic_fetch_add(&s->s_chunk_bytes, op.p_bytes);
	atomic_fetch_add(&s->s_chunk_raw_bytes, op.p_raw);
	*ret_stored = op.p_stored;
	return 0;
}

struct store_get_op {
	const ProtobufCBinaryData *g_hashes;
	size_t g_n;
	size_t g_budget;
	struct arena *g_arena;
	struct store_error *g_err;
	struct store_chunk_val *g_cv; /* g_n entries: the chunks found, pointing into the map */
	size_t g_n_out;
	/* What is done with the chunks found, inside the transaction. */
	int (*g_emit)(struct store_get_op *op);
	Ckpt__V1__Chunk **g_chunks;   /* store_get_chunks() */
	store_reserve_fn g_reserve;   /* store_get_chunks_wire() */
	void *g_reserve_arg;
	struct seal_ctx *g_seal;      /* made at the first sealed chunk */
};

/* A sealed chunk found by store_get_txn(), opened into the caller's arena. */
static int
store_get_open(struct store *s, struct store_get_op *op, size_t i, const uint8_t *name)
{
	struct store_chunk_val *cv = &op->g_cv[i];
	size_t len = cv->cv_len + cv->cv_tail_len;
	char hex[SHA_HEX_LEN + 1], what[SHA_HEX_LEN + 8];
	uint8_t id[SEAL_ID_LEN], *out;
	int rv;

	sha_hex(op->g_hashes[i].data, SHA_LEN, hex);
	out = len > SEAL_OVERHEAD ? arena_alloc(op->g_arena, len - SEAL_OVERHEAD) : NULL;
	if (len <= SEAL_OVERHEAD) {
		rv = -EBADMSG;
	} else if (out == NULL) {
		return -ENOMEM;
	} else {
		rv = op->g_seal == NULL ? seal_ctx_new(&op->g_seal) : 0;
		if (rv == 0)
			rv = store_chunk_open(s, op->g_seal, name, cv, out, id);
	}
	snprintf(what, sizeof(what), "chunk %s", hex);
	if (rv == -ENOKEY)
		store_nokey_error(op->g_err, what, id);
	else if (rv == -EBADMSG)
		store_errorf(op->g_err, "chunk %s is corrupt: it fails its authentication tag "
		    "(its stored bytes were changed)", hex);
	return rv;
}

/*
 * Finds the prefix of the requested chunks that fits the budget and reads
 * their headers (and tails). Their bytes are not hashed here: the reader
 * decompresses and verifies every chunk and the whole digest, and Scrub /
 * --check verify them at rest.
 *
 * In two passes: every lookup first, each found value's header prefetched,
 * then the headers read. A header is the first byte of its value read, far
 * in the map from the last one: read at once, its cache (and TLB) miss was
 * 8% of the NAS's CPU samples in a restore of W1; prefetched, it overlaps
 * the next lookups' own misses (6%).
 */
static int
store_get_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_get_op *op = arg;
	char hex[SHA_HEX_LEN + 1];
	uint8_t (*names)[SHA_LEN];
	MDB_val *vals;
	size_t total = 0, found = 0;

	op->g_n_out = 0;
	names = arena_alloc(op->g_arena, (op->g_n != 0 ? op->g_n : 1) * sizeof(*names));
	vals = arena_alloc(op->g_arena, (op->g_n != 0 ? op->g_n : 1) * sizeof(*vals));
	if (names == NULL || vals == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < op->g_n; i++) {
		int rc = store_chunk_find(s, txn, op->g_hashes[i].data, names[i], &vals[i]);

		if (rc == STORE_FOUND_OLD)
			rc = 0;
		if (rc == MDB_NOTFOUND && s->s_nmissing != 0) {
			char id[SEAL_ID_HEX_LEN + 1];
			sha_hex(op->g_hashes[i].data, SHA_LEN, hex);
			seal_id_hex(s->s_missing[0], id);
			store_errorf(op->g_err, "chunk %s not found under the keys given; the store holds "
			    "chunks of key id %s%s, which this NAS was not given (--decrypt-keys FILE)", hex,
			    id, s->s_nmissing > 1 ? " and others" : "");
			return -ENOKEY;
		}
		if (rc == MDB_NOTFOUND) {
			sha_hex(op->g_hashes[i].data, SHA_LEN, hex);
			store_errorf(op->g_err, "chunk %s not found", hex);
			return -ENOENT;
		}
		if (rc != 0)
			return store_rc(rc);
		if (i > 0 && total + vals[i].mv_size + 16 > op->g_budget)
			break;
		__builtin_prefetch(vals[i].mv_data);
		total += vals[i].mv_size + 16;
		found = i + 1;
	}
	for (size_t i = 0; i < found; i++) {
		MDB_val k = { SHA_LEN, names[i] };
		int rv = store_chunk_read(s, txn, &k, &vals[i], &op->g_cv[i]);

		if (rv == -EBADMSG) {
			sha_hex(op->g_hashes[i].data, SHA_LEN, hex);
			store_errorf(op->g_err, "chunk %s is corrupt: its header is not valid", hex);
		}
		/* Under a keyed name only a sealed value belongs (its header was changed). */
		if (rv == 0 && !op->g_cv[i].cv_sealed &&
		    memcmp(names[i], op->g_hashes[i].data, SHA_LEN) != 0) {
			sha_hex(op->g_hashes[i].data, SHA_LEN, hex);
			store_errorf(op->g_err, "chunk %s is corrupt: it is not sealed", hex);
			rv = -EBADMSG;
		}
		if (rv == 0 && op->g_cv[i].cv_sealed)
			rv = store_get_open(s, op, i, names[i]);
		if (rv != 0)
			return rv;
		op->g_n_out = i + 1;
	}
	return op->g_emit(op);
}

/* store_get_chunks(): copies the chunks found into the caller's arena. */
static int
store_get_copy(struct store_get_op *op)
{
	for (size_t i = 0; i < op->g_n_out; i++) {
		const struct store_chunk_val *cv = &op->g_cv[i];
		Ckpt__V1__Chunk *c;
		uint8_t *data;

		c = arena_alloc(op->g_arena, sizeof(*c));
		data = arena_alloc(op->g_arena, cv->cv_len + cv->cv_tail_len);
		if (c == NULL || data == NULL)
			return -ENOMEM;
		ckpt__v1__chunk__init(c);
		c->sha256 = op->g_hashes[i];
		store_chunk_copy(cv, data);
		c->data.data = data;
		c->data.len = cv->cv_len + cv->cv_tail_len;
		c->raw_size = cv->cv_raw_size;
		c->codec = cv->cv_codec;
		op->g_chunks[i] = c;
	}
	return 0;
}

static void
store_get_pbw(const struct store_get_op *op, size_t i, struct pbw_chunk *ret)
{
	const struct store_chunk_val *cv = &op->g_cv[i];

	*ret = (struct pbw_chunk){ .pc_sha256 = op->g_hashes[i].data,
		.pc_sha256_len = op->g_hashes[i].len,
		.pc_data = cv->cv_data,
		.pc_len = cv->cv_len,
		.pc_tail = cv->cv_tail,
		.pc_tail_len = cv->cv_tail_len,
		.pc_raw_size = cv->cv_raw_size,
		.pc_codec = cv->cv_codec };
}

/* store_get_chunks_wire(): the encoded reply, written once, from the map. */
static int
store_get_encode(struct store_get_op *op)
{
	struct pbw_chunk pc;
	size_t len = 0;
	uint8_t *p, *end;
	int rv;

	for (size_t i = 0; i < op->g_n_out; i++) {
		store_get_pbw(op, i, &pc);
		len += pbw_reply_chunk_len(&pc);
	}
	rv = op->g_reserve(op->g_reserve_arg, len, &p);
	if (rv != 0)
		return rv;
	end = p + len;
	for (size_t i = 0; i < op->g_n_out; i++) {
		store_get_pbw(op, i, &pc);
		p = pbw_reply_chunk_put(p, &pc);
	}
	return p == end ? 0 : -EFAULT;
}

/* Checks the request and runs op. */
static int
store_get_run(struct store *s, struct store_get_op *op)
{
	int rv;

	op->g_err->se_msg[0] = '\0';
	rv = store_check_hashes(op->g_hashes, op->g_n, op->g_err);
	if (rv != 0)
		return rv;
	if (op->g_budget == 0 || op->g_budget > STORE_GET_BYTES_MAX)
		op->g_budget = STORE_GET_BYTES_MAX;
	op->g_cv = arena_alloc(op->g_arena, (op->g_n != 0 ? op->g_n : 1) * sizeof(*op->g_cv));
	if (op->g_cv == NULL)
		return -ENOMEM;
	rv = store_read(s, store_get_txn, op);
	seal_ctx_free(op->g_seal);
	op->g_seal = NULL;
	return rv;
}

int
store_get_chunks(struct store *s, const ProtobufCBinaryData *hashes, size_t n, size_t max_bytes,
    struct arena *a, Ckpt__V1__Chunk ***ret_chunks, size_t *ret_n, struct store_error *ret_err)
{
	struct store_get_op op = { .g_hashes = hashes, .g_n = n, .g_budget = max_bytes,
		.g_arena = a, .g_err = ret_err, .g_emit = store_get_copy };
	int rv;

	op.g_chunks = arena_alloc(a, (n != 0 ? n : 1) * sizeof(*op.g_chunks));
	if (op.g_chunks == NULL)
		return -ENOMEM;
	rv = store_get_run(s, &op);
	if (rv != 0)
		return rv;
	*ret_chunks = op.g_chunks;
	*ret_n = op.g_n_out;
	return 0;
}

int
store_get_chunks_wire(struct store *s, const ProtobufCBinaryData *hashes, size_t n,
    size_t max_bytes, struct arena *a, store_reserve_fn reserve, void *reserve_arg,
    size_t *ret_n, struct store_error *ret_err)
{
	struct store_get_op op = { .g_hashes = hashes, .g_n = n, .g_budget = max_bytes,
		.g_arena = a, .g_err = ret_err, .g_emit = store_get_encode, .g_reserve = reserve,
		.g_reserve_arg = reserve_arg };
	int rv;

	rv = store_get_run(s, &op);
	if (rv != 0)
		return rv;
	*ret_n = op.g_n_out;
	return 0;
}

#include "store_int.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "digest.h"
#include "err.h"
#include "key.h"
#include "pbv.h"
#include "seal.h"
#include "sha.h"
#include "util.h"

/* ---- records at rest (seal.h) ---- */

/*
 * A record's packed bytes (*ret_plain): v itself, or a sealed record opened
 * into a malloc'ed buffer (*ret_buf, the caller's to free; NULL for v).
 * -ENOKEY (*ret_id set) for a key the store was not given, -EBADMSG for a
 * record that fails its tag, -ENOMEM.
 */
int
store_record_open(const struct store *s, const MDB_val *k, const MDB_val *v, MDB_val *ret_plain,
    uint8_t **ret_buf, uint8_t ret_id[SEAL_ID_LEN])
{
	const uint8_t *p = v->mv_data;
	uint8_t aad[SEAL_RECORD_AAD_MAX], *buf;
	const struct seal_key *key;
	size_t len;
	int rv;

	*ret_buf = NULL;
	if (v->mv_size < SEAL_RECORD_MAGIC_LEN ||
	    memcmp(p, SEAL_RECORD_MAGIC, SEAL_RECORD_MAGIC_LEN) != 0) {
		*ret_plain = *v;
		return 0;
	}
	if (v->mv_size < SEAL_RECORD_MAGIC_LEN + SEAL_OVERHEAD)
		return -EBADMSG;
	memcpy(ret_id, seal_id_of(p + SEAL_RECORD_MAGIC_LEN), SEAL_ID_LEN);
	key = seal_ring_find(&s->s_ring, ret_id);
	if (key == NULL)
		return -ENOKEY;
	len = v->mv_size - SEAL_RECORD_MAGIC_LEN - SEAL_OVERHEAD;
	buf = malloc(len != 0 ? len : 1);
	if (buf == NULL)
		return -ENOMEM;
	rv = seal_decrypt(key, aad, seal_record_aad(k->mv_data, k->mv_size, aad),
	    p + SEAL_RECORD_MAGIC_LEN, v->mv_size - SEAL_RECORD_MAGIC_LEN, NULL, 0, buf);
	if (rv != 0) {
		free(buf);
		return rv;
	}
	ret_plain->mv_data = buf;
	ret_plain->mv_size = len;
	*ret_buf = buf;
	return 0;
}

/* Writes a record at k (flags: mdb_put's), packed, and sealed when the store has a key. */
static int
store_record_put(struct store *s, MDB_txn *txn, const MDB_val *k,
    const Ckpt__V1__CheckpointRecord *rec, unsigned flags)
{
	size_t len = ckpt__v1__checkpoint_record__get_packed_size(rec);
	uint8_t aad[SEAL_RECORD_AAD_MAX], *buf;
	MDB_val kk = *k, v = { len, NULL };
	int rv;

	if (!s->s_seal) {
		rv = store_rc(mdb_put(txn, s->s_dbi[DB_CKPT], &kk, &v, flags | MDB_RESERVE));
		if (rv == 0)
			ckpt__v1__checkpoint_record__pack(rec, v.mv_data);
		return rv;
	}
	buf = malloc(len != 0 ? len : 1);
	if (buf == NULL)
		return -ENOMEM;
	ckpt__v1__checkpoint_record__pack(rec, buf);
	v.mv_size = SEAL_RECORD_MAGIC_LEN + SEAL_OVERHEAD + len;
	rv = store_rc(mdb_put(txn, s->s_dbi[DB_CKPT], &kk, &v, flags | MDB_RESERVE));
	if (rv == 0) {
		memcpy(v.mv_data, SEAL_RECORD_MAGIC, SEAL_RECORD_MAGIC_LEN);
		rv = seal_encrypt(&s->s_ring.sr_keys[0], aad,
		    seal_record_aad(k->mv_data, k->mv_size, aad), buf, len,
		    (uint8_t *)v.mv_data + SEAL_RECORD_MAGIC_LEN);
	}
	free(buf);
	return rv;
}

/* ---- cursors and records ---- */

/*
 * Finds the last key made of prefix plus an 8-byte big-endian seq (the
 * largest such key is prefix + ff..ff). -ENOENT when there is none.
 */
static int
store_last_in_prefix(MDB_cursor *c, const uint8_t *prefix, size_t plen, MDB_val *ret_key,
    MDB_val *ret_val)
{
	uint8_t seek[KEY_MAX];
	MDB_val k = { plen + STORE_SEQ_LEN, seek }, v;
	int rc;

	memcpy(seek, prefix, plen);
	memset(seek + plen, 0xff, STORE_SEQ_LEN);
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size == plen + STORE_SEQ_LEN && memcmp(k.mv_data, seek, k.mv_size) == 0)
		goto out_found;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_rc(rc);
	rc = mdb_cursor_get(c, &k, &v, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
	if (rc != 0)
		return store_rc(rc);
	if (k.mv_size != plen + STORE_SEQ_LEN || memcmp(k.mv_data, prefix, plen) != 0)
		return -ENOENT;
out_found:
	*ret_key = k;
	*ret_val = v;
	return 0;
}

/* Same on a database, opening a cursor for the search. */
int
store_db_last(struct store *s, MDB_txn *txn, enum store_db db, const uint8_t *prefix, size_t plen,
    MDB_val *ret_key, MDB_val *ret_val)
{
	MDB_cursor *c;
	int rv;

	rv = store_rc(mdb_cursor_open(txn, s->s_dbi[db], &c));
	if (rv != 0)
		return rv;
	rv = store_last_in_prefix(c, prefix, plen, ret_key, ret_val);
	mdb_cursor_close(c);
	return rv;
}

/* Copies out the first key that starts with prefix. -ENOENT when there is none. */
int
store_db_first(struct store *s, MDB_txn *txn, enum store_db db, const uint8_t *prefix,
    size_t plen, uint8_t *ret_key, size_t *ret_len)
{
	MDB_val k = { plen, (void *)prefix }, v;
	MDB_cursor *c;
	int rv;

	rv = store_rc(mdb_cursor_open(txn, s->s_dbi[db], &c));
	if (rv != 0)
		return rv;
	rv = store_rc(mdb_cursor_get(c, &k, &v, MDB_SET_RANGE));
	if (rv == 0 && (k.mv_size < plen || k.mv_size > KEY_MAX ||
	                   memcmp(k.mv_data, prefix, plen) != 0))
		rv = -ENOENT;
	if (rv == 0) {
		memcpy(ret_key, k.mv_data, k.mv_size);
		*ret_len = k.mv_size;
	}
	mdb_cursor_close(c);
	return rv;
}

/*
 * Unpacks only field 1 (info) of a packed CheckpointRecord, skipping the
 * chunk list that List does not need. -EBADMSG for a record without one or
 * that is not protobuf: pbv_next() refuses field 0 and tags over 5 bytes, as
 * unpacking the whole record (Retrieve) does, and varints past 64 bits, which
 * protobuf-c never writes.
 */
static int
store_record_info_parse(const MDB_val *v, struct arena *a, Ckpt__V1__CheckpointInfo **ret_info)
{
	struct pbv r;
	struct pbv_field f;
	int rv;

	pbv_init(&r, v->mv_data, v->mv_size);
	while ((rv = pbv_next(&r, &f)) == 1 && !(f.pf_num == 1 && f.pf_wire == PBV_LEN))
		;
	if (rv != 1)
		return -EBADMSG;
	*ret_info = ckpt__v1__checkpoint_info__unpack(arena_protobuf(a), f.pf_len, f.pf_data);
	return *ret_info != NULL ? 0 : -EBADMSG;
}

/* The info of the record v at k, opened if sealed (store_record_open()). */
static int
store_record_info(const struct store *s, const MDB_val *k, const MDB_val *v, struct arena *a,
    Ckpt__V1__CheckpointInfo **ret_info, uint8_t ret_id[SEAL_ID_LEN])
{
	MDB_val pv;
	uint8_t *buf;
	int rv;

	rv = store_record_open(s, k, v, &pv, &buf, ret_id);
	if (rv == 0)
		rv = store_record_info_parse(&pv, a, ret_info);
	free(buf);
	return rv;
}

/*
 * The whole record at key, unpacked into a. -ENOENT, -EBADMSG, -ENOKEY
 * (sealed under a key the store was not given: err says which).
 */
static int
store_record_get(struct store *s, MDB_txn *txn, const uint8_t *key, size_t klen, struct arena *a,
    Ckpt__V1__CheckpointRecord **ret_rec, struct store_error *err)
{
	MDB_val k = { klen, (void *)key }, v, pv;
	Ckpt__V1__CheckpointRecord *rec;
	uint8_t id[SEAL_ID_LEN], *buf;
	int rv;

	rv = store_rc(mdb_get(txn, s->s_dbi[DB_CKPT], &k, &v));
	if (rv != 0)
		return rv;
	rv = store_record_open(s, &k, &v, &pv, &buf, id);
	if (rv != 0) {
		char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1], what[KEY_MAX + 48];
		uint64_t seq = 0;
		if (key_decode(key, klen, node, comp, &seq) != 0)
			node[0] = comp[0] = '\0';
		store_ref_str(node, comp, seq, what, sizeof(what));
		if (rv == -ENOKEY)
			store_nokey_error(err, what, id);
		else if (rv == -EBADMSG)
			store_errorf(err, "%s is corrupt: its record fails its authentication tag", what);
		return rv;
	}
	rec = ckpt__v1__checkpoint_record__unpack(arena_protobuf(a), pv.mv_size, pv.mv_data);
	free(buf);
	if (rec == NULL || rec->info == NULL)
		return -EBADMSG;
	*ret_rec = rec;
	return 0;
}

/* ---- component records ---- */

int
store_comp_get(struct store *s, MDB_txn *txn, const char *component, struct store_comp *ret_comp)
{
	MDB_val k = { strlen(component), (void *)component }, v;
	Ckpt__V1__ComponentRecord *rec;
	struct store_comp c = { 0 };
	int rc;

	rc = mdb_get(txn, s->s_dbi[DB_COMP], &k, &v);
	if (rc == MDB_NOTFOUND) {
		*ret_comp = c;
		return 0;
	}
	if (rc != 0)
		return store_rc(rc);
	rec = ckpt__v1__component_record__unpack(NULL, v.mv_size, v.mv_data);
	if (rec == NULL)
		return -EBADMSG;
	c.sc_found = true;
	snprintf(c.sc_node, sizeof(c.sc_node), "%s", rec->node);
	c.sc_seq = rec->seq;
	c.sc_epoch = rec->epoch;
	ckpt__v1__component_record__free_unpacked(rec, NULL);
	*ret_comp = c;
	return 0;
}

static int
store_comp_put(struct store *s, MDB_txn *txn, const char *component, const struct store_comp *c)
{
	Ckpt__V1__ComponentRecord rec = CKPT__V1__COMPONENT_RECORD__INIT;
	MDB_val k = { strlen(component), (void *)component }, v;
	int rv;

	rec.node = (char *)c->sc_node;
	rec.seq = c->sc_seq;
	rec.epoch = c->sc_epoch;
	v.mv_size = ckpt__v1__component_record__get_packed_size(&rec);
	v.mv_data = NULL;
	rv = store_rc(mdb_put(txn, s->s_dbi[DB_COMP], &k, &v, MDB_RESERVE));
	if (rv == 0)
		ckpt__v1__component_record__pack(&rec, v.mv_data);
	return rv;
}

/* Points the component's "latest" at its newest remaining checkpoint; keeps the epoch. */
int
store_comp_refresh(struct store *s, MDB_txn *txn, const char *component)
{
	uint8_t prefix[STORE_CIDX_MAX];
	size_t plen = strlen(component) + 1;
	struct store_comp c;
	MDB_val k, v;
	int rv;

	rv = store_comp_get(s, txn, component, &c);
	if (rv != 0 || !c.sc_found)
		return rv;
	memcpy(prefix, component, plen);
	rv = store_db_last(s, txn, DB_CIDX, prefix, plen, &k, &v);
	if (rv == -ENOENT) {
		c.sc_node[0] = '\0';
		c.sc_seq = 0;
		rv = 0;
	} else if (rv == 0) {
		if (v.mv_size == 0 || v.mv_size > KEY_NAME_MAX)
			return -EBADMSG;
		memcpy(c.sc_node, v.mv_data, v.mv_size);
		c.sc_node[v.mv_size] = '\0';
		c.sc_seq = store_be64_get((const uint8_t *)k.mv_data + plen);
	}
	return rv == 0 ? store_comp_put(s, txn, component, &c) : rv;
}

/* ---- commit ---- */

struct store_commit_op {
	const Ckpt__V1__StoreRequest *co_req;
	struct arena *co_arena;
	struct store_error *co_err;
	Ckpt__V1__CheckpointInfo *co_info; /* the new record's, or the existing one's */
	bool co_existed;
	struct store_delete_op co_retained; /* older checkpoints deleted by retention */
	uint8_t co_digest[SHA_LEN];         /* of the request's chunk list */
	uint64_t co_bytes, co_raw;          /* chunks sealed anew (store_chunk_reseal()) */
	struct store_put_op co_put;         /* the request's inline chunks */
	/* store_commit_async(): where the result goes. */
	struct store *co_store;
	store_commit_done_fn co_done;
	void *co_done_arg;
};

static int
store_check_kind(const char *kind, struct store_error *err)
{
	char safe[LIMIT_KIND_MAX + 2];

	if (kind[0] == '\0' || (strlen(kind) <= LIMIT_KIND_MAX && key_name_check(kind) == 0))
		return 0;
	store_errorf(err, "invalid kind '%s': want at most %d characters of [A-Za-z0-9._-]",
	    store_printable(kind, safe, sizeof(safe)), LIMIT_KIND_MAX);
	return -EINVAL;
}

/* A Store's inline chunks: bounded, and each one verified (store_check_chunks). */
static int
store_commit_check_inline(const Ckpt__V1__StoreRequest *req, struct store_error *err)
{
	uint64_t bytes = 0;
	int rv;

	for (size_t i = 0; i < req->n_inline_chunks; i++)
		bytes += req->inline_chunks[i]->data.len;
	if (bytes > STORE_INLINE_MAX) {
		store_errorf(err, "%llu bytes of inline chunks (at most %u): send them with PutChunks",
		    (unsigned long long)bytes, STORE_INLINE_MAX);
		return -EINVAL;
	}
	rv = store_check_chunks(req->inline_chunks, req->n_inline_chunks, err);
	if (rv != 0 && req->n_inline_chunks <= STORE_PUT_MAX) {
		char msg[STORE_ERRMSG_MAX];
		snprintf(msg, sizeof(msg), "inline %s", err->se_msg);
		memcpy(err->se_msg, msg, sizeof(msg));
	}
	return rv;
}

/*
 * After store_commit_refs: every inline chunk written anew is one the record
 * references (it has a count now); anything else would be an orphan.
 */
static int
store_commit_inline_named(struct store *s, MDB_txn *txn, const struct store_commit_op *op)
{
	const Ckpt__V1__StoreRequest *req = op->co_req;

	if (op->co_put.p_stored == 0)
		return 0;
	for (size_t i = 0; i < req->n_inline_chunks; i++) {
		/* A store with keys counts a chunk under its name (store_put_seal()). */
		MDB_val k = { SHA_LEN, s->s_seal ? op->co_put.p_names[i] :
			req->inline_chunks[i]->sha256.data }, v;
		int rc = mdb_get(txn, s->s_dbi[DB_REF], &k, &v);
		if (rc == MDB_NOTFOUND) {
			store_errorf(op->co_err, "inline chunk %zu is not in the chunk list", i);
			return -EINVAL;
		}
		if (rc != 0)
			return store_rc(rc);
	}
	return 0;
}

static int
store_commit_check(const struct store *s, const Ckpt__V1__StoreRequest *req,
    uint8_t ret_digest[SHA_LEN], struct store_error *err)
{
	uint64_t sum = 0;
	int rv;

	rv = store_check_name("node", req->node, err);
	if (rv == 0)
		rv = store_check_name("component", req->component, err);
	if (rv == 0)
		rv = store_check_kind(req->kind, err);
	if (rv != 0)
		return rv;
	/* A digest, or the plain SHA-256 of an older writer (the only one format 3 takes). */
	if (req->digest.len != 0 && req->digest.len != SHA_LEN) {
		store_errorf(err, "digest has %zu bytes, want %d", req->digest.len, SHA_LEN);
		return -EINVAL;
	}
	if (req->sha256.len != 0 && req->sha256.len != SHA_LEN) {
		store_errorf(err, "sha256 has %zu bytes, want %d", req->sha256.len, SHA_LEN);
		return -EINVAL;
	}
	if (req->sha256.len == 0 && (req->digest.len == 0 || s->s_format3)) {
		store_errorf(err, "no digest: want the %s of the chunk list (or the sha256 of an "
		    "older writer)", DIGEST_ALG);
		return -EINVAL;
	}
	if (req->n_chunks > STORE_REFS_MAX) {
		store_errorf(err, "too many chunks: %zu (at most %u)", req->n_chunks, STORE_REFS_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < req->n_chunks; i++) {
		const Ckpt__V1__ChunkRef *c = req->chunks[i];
		if (c->sha256.len != (c->zero ? 0 : SHA_LEN) || c->size == 0 ||
		    c->size > STORE_CHUNK_MAX) {
			store_errorf(err, "chunk %zu: want a %d-byte sha256 (none for a hole) and 1 to %u "
			    "bytes", i, SHA_LEN, STORE_CHUNK_MAX);
			return -EINVAL;
		}
		sum += c->size;
	}
	if (sum != req->size) {
		store_errorf(err, "size %llu does not match the sum of the chunk sizes (%llu)",
		    (unsigned long long)req->size, (unsigned long long)sum);
		return -EINVAL;
	}
	/*
	 * The record's identity, from the list as received: every chunk was
	 * verified against its hash on arrival, so a digest that matches the
	 * list names exactly the bytes the writer cut.
	 */
	rv = digest_refs(req->chunks, req->n_chunks, ret_digest);
	if (rv != 0)
		return rv;
	if (req->digest.len == SHA_LEN && memcmp(req->digest.data, ret_digest, SHA_LEN) != 0) {
		char hex[SHA_HEX_LEN + 1];
		sha_hex(ret_digest, SHA_LEN, hex);
		store_errorf(err, "digest does not match the chunk list (which gives %s:%s)",
		    DIGEST_ALG, hex);
		return -EINVAL;
	}
	return store_commit_check_inline(req, err);
}

static int
store_commit_fence(const struct store_comp *c, const Ckpt__V1__StoreRequest *req,
    struct store_error *err)
{
	if (!c->sc_found || req->epoch >= c->sc_epoch)
		return 0;
	store_errorf(err, "stale epoch %llu < %llu for component %s", (unsigned long long)req->epoch,
	    (unsigned long long)c->sc_epoch, req->component);
	err->se_reason = ERR_REASON_STALE_EPOCH;
	return -ESTALE;
}

/*
 * With an explicit seq: the same checkpoint already there is a success
 * (co_existed), another one under the key or under the component's seq is
 * -EEXIST.
 */
static int
store_commit_existing(struct store *s, MDB_txn *txn, struct store_commit_op *op)
{
	const Ckpt__V1__StoreRequest *req = op->co_req;
	uint8_t key[KEY_MAX], ck[STORE_CIDX_MAX];
	Ckpt__V1__CheckpointInfo *info;
	char ref[KEY_MAX + 24];
	MDB_val k, v;
	size_t klen;
	int rc, rv;

	rv = key_encode(req->node, req->component, req->seq, key, &klen);
	if (rv != 0)
		return rv;
	store_ref_str(req->node, req->component, req->seq, ref, sizeof(ref));
	k.mv_size = klen;
	k.mv_data = key;
	rc = mdb_get(txn, s->s_dbi[DB_CKPT], &k, &v);
	if (rc == 0) {
		uint8_t id[SEAL_ID_LEN];
		rv = store_record_info(s, &k, &v, op->co_arena, &info, id);
		if (rv == -ENOKEY)
			store_nokey_error(op->co_err, ref, id);
		if (rv != 0)
			return rv;
		/* The same checkpoint: the same digest, or (format 3) the same plain SHA-256. */
		if ((info->digest.len == SHA_LEN && !s->s_format3) ?
		    memcmp(info->digest.data, op->co_digest, SHA_LEN) == 0 :
		    (info->sha256.len == SHA_LEN && req->sha256.len == SHA_LEN &&
		     memcmp(info->sha256.data, req->sha256.data, SHA_LEN) == 0)) {
			op->co_info = info;
			op->co_existed = true;
			return 0;
		}
		store_errorf(op->co_err, "%s already exists with a different digest", ref);
		return -EEXIST;
	}
	if (rc != MDB_NOTFOUND)
		return store_rc(rc);
	k.mv_size = store_cidx_key(req->component, req->seq, ck);
	k.mv_data = ck;
	rc = mdb_get(txn, s->s_dbi[DB_CIDX], &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc == 0) {
		store_errorf(op->co_err, "%s@%llu already exists, stored by node %.*s", req->component,
		    (unsigned long long)req->seq, (int)(v.mv_size < KEY_NAME_MAX ? v.mv_size : KEY_NAME_MAX),
		    (const char *)v.mv_data);
		return -EEXIST;
	}
	return store_rc(rc);
}

static int
store_missing_error(size_t missing, size_t total, size_t first, struct store_error *err)
{
	store_errorf(err, "%zu of %zu chunks missing (first: index %zu); send them with PutChunks",
	    missing, total, first);
	err->se_reason = ERR_REASON_MISSING_CHUNKS;
	return -ESTALE;
}

/*
 * Read phase: everything that can be refused before taking the single
 * writer. The write phase checks again what another writer could have
 * changed meanwhile.
 *
 * The record's digest is the one of its chunk list (store_commit_check),
 * and every chunk was verified against its hash when it arrived, so the
 * record names exactly the bytes the writer hashed without reading them
 * again. A plain SHA-256 sent by an older writer is recorded unchecked;
 * readers verify it. A commit costs what the record lists, not what the
 * checkpoint weighs.
 */
static int
store_commit_verify_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_commit_op *op = arg;
	struct store_comp comp;
	int rv;

	op->co_existed = false;
	rv = op->co_req->seq != 0 ? store_commit_existing(s, txn, op) : 0;
	if (rv != 0 || op->co_existed)
		return rv;
	rv = store_comp_get(s, txn, op->co_req->component, &comp);
	if (rv == 0)
		rv = store_commit_fence(&comp, op->co_req, op->co_err);
	return rv;
}

/* seq 0: one past the component's latest on any node; the first is 1. */
static int
store_next_seq(struct store *s, MDB_txn *txn, const char *component, uint64_t *ret_seq)
{
	uint8_t prefix[STORE_CIDX_MAX];
	size_t plen = strlen(component) + 1;
	uint64_t last;
	MDB_val k, v;
	int rv;

	memcpy(prefix, component, plen);
	rv = store_db_last(s, txn, DB_CIDX, prefix, plen, &k, &v);
	if (rv == -ENOENT) {
		*ret_seq = 1;
		return 0;
	}
	if (rv != 0)
		return rv;
	last = store_be64_get((const uint8_t *)k.mv_data + plen);
	if (last == UINT64_MAX)
		return -ERANGE;
	*ret_seq = last + 1;
	return 0;
}

/* A chunk of the record being committed, for the walk in hash order. */
struct store_ref_item {
	/*
	 * The name's first 8 bytes, big-endian: the sort compares in the array
	 * (names are uniformly spread; they tie on equal names only) instead of
	 * following ri_name into the request for each comparison.
	 */
	uint64_t ri_prefix;
	const uint8_t *ri_name;  /* its key in "chunk": its SHA-256, or its keyed name (sealed) */
	uint32_t ri_size;
	uint32_t ri_index;  /* in the record */
};

static int
store_ref_item_cmp(const void *a_, const void *b_)
{
	const struct store_ref_item *a = a_, *b = b_;
	int c;

	if (a->ri_prefix != b->ri_prefix)
		return a->ri_prefix < b->ri_prefix ? -1 : 1;
	c = memcmp(a->ri_name, b->ri_name, SHA_LEN);
	return c != 0 ? c : (a->ri_index > b->ri_index) - (a->ri_index < b->ri_index);
}

/*
 * Sorts the items by name (then index) into a new array: a counting pass on
 * the top bits of ri_prefix (about one bucket per item), then an insertion
 * pass. Names are SHA-256s or keyed names, evenly spread, so buckets hold
 * about one item each and the insertion pass moves few: O(n), where qsort
 * took ~1 ms of a 9,069-chunk commit's ~6 ms CPU here. Names made to share
 * their top bits (a writer may name any hash) would make the insertion pass
 * quadratic: past a budget of moves, qsort finishes the job.
 */
static int
store_ref_items_sort(struct arena *a, const struct store_ref_item *items, size_t n,
    struct store_ref_item **ret_sorted)
{
	unsigned bits = 1;
	size_t nb, moves = 0, budget = 8 * n + 64;
	struct store_ref_item *out, tmp;
	uint32_t *start;

	while (((size_t)1 << bits) < n && bits < 18)
		bits++;
	nb = (size_t)1 << bits;
	start = arena_alloc(a, (nb + 1) * sizeof(*start));
	out = arena_alloc(a, (n != 0 ? n : 1) * sizeof(*out));
	if (start == NULL || out == NULL)
		return -ENOMEM;
	memset(start, 0, (nb + 1) * sizeof(*start));
	for (size_t i = 0; i < n; i++)
		start[(items[i].ri_prefix >> (64 - bits)) + 1]++;
	for (size_t b = 1; b <= nb; b++)
		start[b] += start[b - 1];
	/* Stable: equal names stay in index order. */
	for (size_t i = 0; i < n; i++)
		out[start[items[i].ri_prefix >> (64 - bits)]++] = items[i];
	for (size_t i = 1; i < n; i++) {
		size_t j = i;
		tmp = out[i];
		for (; j > 0 && store_ref_item_cmp(&out[j - 1], &tmp) > 0; j--) {
			out[j] = out[j - 1];
			if (++moves > budget) {
				out[j - 1] = tmp; /* a permutation again */
				qsort(out, n, sizeof(*out), store_ref_item_cmp);
				goto done;
			}
		}
		out[j] = tmp;
	}
done:
	*ret_sorted = out;
	return 0;
}

/*
 * Every chunk must be there with the size the record gives it; then one more
 * reference on each (per occurrence). In hash order, with one cursor per
 * database: neighbouring keys share pages, and each count is rewritten in
 * place once however often the record holds its chunk. The size comes from
 * the chunk's "ref" value (STORE_REF_LEN); the chunk's header is read only
 * for a chunk without a count yet, or with a count of the older form, which
 * is rewritten with the size. So a record of chunks the store holds already
 * (an incremental checkpoint) touches "chunk" and "ref" pages only, never
 * the chunks' overflow pages. A refusal may leave counts written: the
 * transaction of a failed write is aborted (store_run_group()).
 */
static int
store_commit_refs(struct store *s, MDB_txn *txn, struct store_commit_op *op)
{
	const Ckpt__V1__StoreRequest *req = op->co_req;
	struct store_ref_item *items, *bad = NULL;
	MDB_cursor *cc = NULL, *rc = NULL;
	uint32_t bad_size = 0;
	size_t n = 0, missing = 0, first = SIZE_MAX;
	int mrc, rv = 0;

	items = arena_alloc(op->co_arena, (req->n_chunks != 0 ? req->n_chunks : 1) * sizeof(*items));
	if (items == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < req->n_chunks && rv == 0; i++) {
		if (req->chunks[i]->zero)
			continue;
		items[n].ri_name = req->chunks[i]->sha256.data;
		/* A store with keys: the name the chunk is stored under (store_chunk_find()). */
		if (s->s_seal) {
			uint8_t *name = arena_alloc(op->co_arena, SHA_LEN);
			MDB_val fv;
			if (name == NULL)
				return -ENOMEM;
			mrc = store_chunk_find(s, txn, req->chunks[i]->sha256.data, name, &fv);
			if (mrc != 0 && mrc != MDB_NOTFOUND && mrc != STORE_FOUND_OLD)
				return store_rc(mrc);
			items[n].ri_name = name;
			if (mrc == STORE_FOUND_OLD) {
				uint8_t now[SHA_LEN];
				store_chunk_name(s, req->chunks[i]->sha256.data, now);
				rv = store_chunk_reseal(s, txn, name, &fv, now, &op->co_bytes, &op->co_raw);
				if (rv == -EBADMSG)
					store_errorf(op->co_err, "chunk %zu is corrupt: it cannot be sealed under "
					    "the new key", i);
				if (rv != 0)
					return rv;
				memcpy(name, now, SHA_LEN);
			}
		}
		items[n].ri_prefix = store_be64_get(items[n].ri_name);
		items[n].ri_size = req->chunks[i]->size;
		items[n++].ri_index = (uint32_t)i;
	}
	rv = store_ref_items_sort(op->co_arena, items, n, &items);
	if (rv != 0)
		return rv;
	mrc = mdb_cursor_open(txn, s->s_dbi[DB_CHUNK], &cc);
	if (mrc == 0)
		mrc = mdb_cursor_open(txn, s->s_dbi[DB_REF], &rc);
	if (mrc != 0) {
		rv = store_rc(mrc);
		goto out;
	}
	for (size_t i = 0; i < n && rv == 0;) {
		MDB_val k = { SHA_LEN, (void *)items[i].ri_name }, v;
		MDB_val rk = { SHA_LEN, (void *)items[i].ri_name }, rv_;
		struct store_ref ref = { 0, 0 };
		struct store_chunk_val cv;
		uint8_t buf[STORE_REF_LEN];
		bool present, counted = false;
		uint32_t size = 0;
		size_t j = i;

		/* Present: a lookup in the tree (the value's own pages are not read). */
		mrc = mdb_cursor_get(cc, &k, &v, MDB_SET_KEY);
		if (mrc != 0 && mrc != MDB_NOTFOUND) {
			rv = store_rc(mrc);
			break;
		}
		present = mrc == 0;
		if (present) {
			mrc = mdb_cursor_get(rc, &rk, &rv_, MDB_SET_KEY);
			if (mrc != 0 && mrc != MDB_NOTFOUND) {
				rv = store_rc(mrc);
				break;
			}
			counted = mrc == 0;
			if (counted && (rv = store_ref_decode(&rv_, &ref)) != 0) {
				store_errorf(op->co_err, "chunk %u: its reference count is malformed "
				    "(ckpt-nas --check)", items[i].ri_index);
				break;
			}
			size = ref.r_raw_size;
			/* No count yet, or one of the older form: the size from the chunk's header. */
			if (size == 0 && store_chunk_parse(&v, &cv) == 0)
				size = cv.cv_raw_size;
		}
		for (; j < n && memcmp(items[j].ri_name, items[i].ri_name, SHA_LEN) == 0; j++) {
			if (!present) {
				missing++;
				first = items[j].ri_index < first ? items[j].ri_index : first;
			} else if (size != items[j].ri_size &&
			    (bad == NULL || items[j].ri_index < bad->ri_index)) {
				bad = &items[j];
				bad_size = size;
			}
		}
		/* One more reference per occurrence, with the size (not in format 3). */
		if (present && bad == NULL && missing == 0) {
			ref.r_count += j - i;
			ref.r_raw_size = s->s_format3 ? 0 : size;
			rv_.mv_size = store_ref_encode(&ref, buf);
			rv_.mv_data = buf;
			rk.mv_size = SHA_LEN;
			rk.mv_data = (void *)items[i].ri_name;
			/* MDB_CURRENT: in place, or moved when the older form grows. */
			rv = store_rc(mdb_cursor_put(rc, &rk, &rv_, counted ? MDB_CURRENT : 0));
		}
		i = j;
	}
	if (rv == 0 && bad != NULL) {
		/* The first one in the record. */
		store_errorf(op->co_err, "chunk %u: size %u does not match the stored chunk (%u bytes)",
		    bad->ri_index, bad->ri_size, bad_size);
		rv = -EINVAL;
	}
	if (rv == 0 && missing != 0)
		rv = store_missing_error(missing, req->n_chunks, first, op->co_err);
out:
	if (cc != NULL)
		mdb_cursor_close(cc);
	if (rc != NULL)
		mdb_cursor_close(rc);
	return rv;
}

static Ckpt__V1__CheckpointInfo *
store_info_new(const struct store *s, struct arena *a, const Ckpt__V1__StoreRequest *req,
    const uint8_t digest[SHA_LEN], uint64_t seq)
{
	Ckpt__V1__CheckpointInfo *info = arena_alloc(a, sizeof(*info));

	if (info == NULL)
		return NULL;
	ckpt__v1__checkpoint_info__init(info);
	info->node = arena_strdup(a, req->node);
	info->component = arena_strdup(a, req->component);
	info->kind = arena_strdup(a, req->kind);
	if (req->sha256.len == SHA_LEN) {
		info->sha256.data = arena_memdup(a, req->sha256.data, SHA_LEN);
		info->sha256.len = SHA_LEN;
	}
	/* Format 3 (tests only) writes records as older versions did. */
	if (!s->s_format3) {
		info->digest.data = arena_memdup(a, digest, SHA_LEN);
		info->digest.len = SHA_LEN;
		info->chunk_min = req->chunk_min;
		info->chunk_avg = req->chunk_avg;
		info->chunk_max = req->chunk_max;
	}
	info->seq = seq;
	info->epoch = req->epoch;
	info->size = req->size;
	info->chunk_count = (uint32_t)req->n_chunks;
	info->created_unix_ms = util_now_unix_ms();
	if (info->node == NULL || info->component == NULL || info->kind == NULL ||
	    (info->sha256.len != 0 && info->sha256.data == NULL) ||
	    (info->digest.len != 0 && info->digest.data == NULL))
		return NULL;
	return info;
}

/* Writes the record straight into the map (MDB_RESERVE), then its index entries. */
static int
store_commit_put(struct store *s, MDB_txn *txn, struct store_commit_op *op,
    Ckpt__V1__CheckpointInfo *info, struct store_comp *comp)
{
	const Ckpt__V1__StoreRequest *req = op->co_req;
	Ckpt__V1__CheckpointRecord rec = CKPT__V1__CHECKPOINT_RECORD__INIT;
	uint8_t key[KEY_MAX], ck[STORE_CIDX_MAX];
	MDB_val k, v;
	size_t klen;
	int rv;

	rv = key_encode(req->node, req->component, info->seq, key, &klen);
	if (rv != 0)
		return rv;
	rec.info = info;
	rec.n_chunks = req->n_chunks;
	rec.chunks = req->chunks;
	k.mv_size = klen;
	k.mv_data = key;
	rv = store_record_put(s, txn, &k, &rec, MDB_NOOVERWRITE);
	if (rv != 0)
		return rv;
	k.mv_size = store_cidx_key(req->component, info->seq, ck);
	k.mv_data = ck;
	v.mv_size = strlen(req->node);
	v.mv_data = req->node;
	rv = store_rc(mdb_put(txn, s->s_dbi[DB_CIDX], &k, &v, MDB_NOOVERWRITE));
	if (rv != 0)
		return rv;
	if (!comp->sc_found || comp->sc_node[0] == '\0' || info->seq > comp->sc_seq) {
		snprintf(comp->sc_node, sizeof(comp->sc_node), "%s", req->node);
		comp->sc_seq = info->seq;
	}
	if (req->epoch > comp->sc_epoch)
		comp->sc_epoch = req->epoch;
	return store_comp_put(s, txn, req->component, comp);
}

void
store_set_node_quota(struct store *s, uint64_t bytes)
{
	atomic_store(&s->s_node_quota, bytes);
}

/*
 * The node's quota (store_set_node_quota()): the logical sizes of its
 * records, this one included and those retention just deleted left out.
 * -EDQUOT over it (the nested transaction rolls back alone).
 */
static int
store_quota_check(struct store *s, MDB_txn *txn, struct store_commit_op *op)
{
	uint64_t quota = atomic_load(&s->s_node_quota), held = 0;
	const char *node = op->co_req->node;
	uint8_t prefix[KEY_MAX];
	MDB_val k, v;
	MDB_cursor *c;
	size_t plen;
	int rc, rv;

	if (quota == 0)
		return 0;
	rv = key_prefix(node, NULL, prefix, &plen);
	if (rv == 0)
		rv = store_rc(mdb_cursor_open(txn, s->s_dbi[DB_CKPT], &c));
	if (rv != 0)
		return rv;
	k.mv_size = plen;
	k.mv_data = prefix;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && rv == 0 && held <= quota && k.mv_size >= plen &&
	     memcmp(k.mv_data, prefix, plen) == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		Ckpt__V1__CheckpointInfo *info;
		uint8_t id[SEAL_ID_LEN];
		rv = store_record_info(s, &k, &v, op->co_arena, &info, id);
		if (rv == -ENOKEY) /* sealed under a key not given: not counted, not refused */
			rv = 0;
		else if (rv == 0)
			held += info->size;
	}
	mdb_cursor_close(c);
	if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
		rv = store_rc(rc);
	if (rv != 0 || held <= quota)
		return rv;
	store_errorf(op->co_err, "node %s would hold %llu bytes or more of checkpoints with this "
	    "one of %s, over its quota of %llu bytes (limit node_bytes): delete or unpin older "
	    "ones, or raise --node-quota", node, (unsigned long long)held, op->co_req->component,
	    (unsigned long long)quota);
	op->co_err->se_reason = LIMIT_N_QUOTA;
	return -EDQUOT;
}

static int
store_commit_write_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_commit_op *op = arg;
	const Ckpt__V1__StoreRequest *req = op->co_req;
	Ckpt__V1__CheckpointInfo *info;
	struct store_comp comp;
	uint64_t seq = req->seq;
	int rv;

	op->co_existed = false;
	op->co_bytes = op->co_raw = 0; /* a full map runs the transaction again */
	op->co_put.p_stored = 0; /* run again after a full map: nothing written yet */
	op->co_put.p_bytes = 0;
	op->co_put.p_raw = 0;
	rv = seq != 0 ? store_commit_existing(s, txn, op) : 0;
	if (rv != 0 || op->co_existed)
		return rv;
	rv = store_comp_get(s, txn, req->component, &comp);
	if (rv == 0)
		rv = store_commit_fence(&comp, req, op->co_err);
	if (rv == 0 && seq == 0)
		rv = store_next_seq(s, txn, req->component, &seq);
	/* Inline chunks first, in this transaction: then they are looked up like the others. */
	if (rv == 0)
		rv = store_put_run(s, txn, &op->co_put);
	if (rv == 0)
		rv = store_commit_refs(s, txn, op);
	if (rv == 0)
		rv = store_commit_inline_named(s, txn, op);
	if (rv != 0)
		return rv;
	info = store_info_new(s, op->co_arena, req, op->co_digest, seq);
	if (info == NULL)
		return -ENOMEM;
	rv = store_commit_put(s, txn, op, info, &comp);
	/* Retention in the same transaction: the new record and the deletions land together. */
	if (rv == 0)
		rv = store_retain(s, txn, req->component, &op->co_retained);
	/* After retention: what the node holds once this commit is in. */
	if (rv == 0)
		rv = store_quota_check(s, txn, op);
	if (rv == 0)
		op->co_info = info;
	return rv;
}

/* The part of a commit before its write: checks, sealing, the read-only look. */
static int
store_commit_prepare(struct store *s, struct store_commit_op *op)
{
	int rv;

	op->co_err->se_msg[0] = '\0';
	op->co_err->se_reason = NULL;
	rv = store_commit_check(s, op->co_req, op->co_digest, op->co_err);
	/* Inline chunks are sealed like PutChunks' chunks, outside the transaction. */
	if (rv == 0 && s->s_seal && op->co_put.p_n != 0)
		rv = store_put_seal(s, &op->co_put);
	if (rv == 0)
		rv = store_read(s, store_commit_verify_txn, op);
	return rv;
}

/* What the commit's write may take on disk (store_write_need()): its inline chunks, its record. */
static uint64_t
store_commit_need(const struct store_commit_op *op)
{
	return store_put_need(&op->co_put) + (uint64_t)op->co_req->n_chunks * STORE_NEED_REF;
}

/* The part after its write (result rv): frees, counts, and returns rv. */
static int
store_commit_end(struct store *s, struct store_commit_op *op, int rv)
{
	free(op->co_put.p_sealed);
	free(op->co_put.p_buf);
	free(op->co_put.p_names);
	op->co_put.p_sealed = NULL;
	op->co_put.p_buf = NULL;
	op->co_put.p_names = NULL;
	if (rv == -ERANGE)
		store_errorf(op->co_err, "sequence numbers of component %s are exhausted",
		    op->co_req->component);
	if (rv != 0)
		return rv;
	atomic_fetch_add(&s->s_chunk_bytes, op->co_put.p_bytes);
	atomic_fetch_add(&s->s_chunk_raw_bytes, op->co_put.p_raw);
	store_retain_done(s, &op->co_retained);
	atomic_fetch_add(&s->s_chunk_bytes, op->co_bytes);
	atomic_fetch_add(&s->s_chunk_raw_bytes, op->co_raw);
	return 0;
}

int
store_commit(struct store *s, const Ckpt__V1__StoreRequest *req, struct arena *a,
    Ckpt__V1__CheckpointInfo **ret_info, bool *ret_existed, uint32_t *ret_retained,
    struct store_error *ret_err)
{
	struct store_commit_op op = { req, a, ret_err, NULL, false, { 0 }, { 0 }, 0, 0,
		{ .p_chunks = req->inline_chunks, .p_n = req->n_inline_chunks }, NULL, NULL, NULL };
	int rv;

	rv = store_commit_prepare(s, &op);
	if (rv == 0 && !op.co_existed)
		rv = store_write_need(s, store_commit_write_txn, &op, store_commit_need(&op), ret_err);
	rv = store_commit_end(s, &op, rv);
	if (rv != 0)
		return rv;
	if (ret_retained != NULL)
		*ret_retained = op.co_retained.d_deleted;
	*ret_info = op.co_info;
	*ret_existed = op.co_existed;
	return 0;
}

/* store_write_async()'s end of a commit: the caller's callback. */
static void
store_commit_written(void *arg, int rv)
{
	struct store_commit_op *op = arg;
	struct store_commit_result res = { NULL, false, 0 };

	rv = store_commit_end(op->co_store, op, rv);
	if (rv == 0) {
		res.cr_info = op->co_info;
		res.cr_existed = op->co_existed;
		res.cr_retained = op->co_retained.d_deleted;
	}
	op->co_done(op->co_done_arg, rv, &res);
}

int
store_commit_async(struct store *s, const Ckpt__V1__StoreRequest *req, struct arena *a,
    struct store_error *err, store_commit_done_fn done, void *done_arg)
{
	struct store_commit_op *op = arena_alloc(a, sizeof(*op));
	int rv;

	if (op == NULL)
		return -ENOMEM;
	memset(op, 0, sizeof(*op));
	op->co_req = req;
	op->co_arena = a;
	op->co_err = err;
	op->co_put.p_chunks = req->inline_chunks;
	op->co_put.p_n = req->n_inline_chunks;
	op->co_store = s;
	op->co_done = done;
	op->co_done_arg = done_arg;
	rv = store_commit_prepare(s, op);
	if (rv == 0 && !op->co_existed)
		rv = store_write_async(s, store_commit_write_txn, op, store_commit_need(op), err,
		    store_commit_written, op);
	else
		rv = rv != 0 ? rv : 1; /* refused, or stored already: answered now */
	if (rv != 0)
		store_commit_written(op, rv > 0 ? 0 : rv);
	return 0;
}

/* ---- retrieve ---- */

/* node "" and/or seq 0 -> the "ckpt" key they designate, through "cidx". */
static int
store_cidx_resolve(struct store *s, MDB_txn *txn, const char *component, uint64_t seq,
    uint8_t *key, size_t *ret_len)
{
	uint8_t ck[STORE_CIDX_MAX];
	char node[KEY_NAME_MAX + 1];
	size_t plen = strlen(component) + 1;
	MDB_val k = { store_cidx_key(component, seq, ck), ck }, v;
	int rv;

	if (seq == 0)
		rv = store_db_last(s, txn, DB_CIDX, ck, plen, &k, &v);
	else
		rv = store_rc(mdb_get(txn, s->s_dbi[DB_CIDX], &k, &v));
	if (rv != 0)
		return rv;
	if (v.mv_size == 0 || v.mv_size > KEY_NAME_MAX)
		return -EBADMSG;
	memcpy(node, v.mv_data, v.mv_size);
	node[v.mv_size] = '\0';
	seq = store_be64_get((const uint8_t *)k.mv_data + plen);
	return key_encode(node, component, seq, key, ret_len) == 0 ? 0 : -EBADMSG;
}

static int
store_resolve(struct store *s, MDB_txn *txn, const char *node, const char *component,
    uint64_t seq, uint8_t *key, size_t *ret_len)
{
	uint8_t prefix[KEY_MAX];
	size_t plen;
	MDB_val k, v;
	int rv;

	if (node[0] == '\0')
		return store_cidx_resolve(s, txn, component, seq, key, ret_len);
	if (seq != 0)
		return key_encode(node, component, seq, key, ret_len);
	rv = key_prefix(node, component, prefix, &plen);
	if (rv == 0)
		rv = store_db_last(s, txn, DB_CKPT, prefix, plen, &k, &v);
	if (rv != 0)
		return rv;
	memcpy(key, k.mv_data, k.mv_size);
	*ret_len = k.mv_size;
	return 0;
}

struct store_retrieve_op {
	const char *r_node;
	const char *r_component;
	uint64_t r_seq;
	struct arena *r_arena;
	Ckpt__V1__CheckpointRecord *r_rec;
	struct store_error *r_err;
};

static int
store_retrieve_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_retrieve_op *op = arg;
	uint8_t key[KEY_MAX];
	size_t klen;
	int rv;

	rv = store_resolve(s, txn, op->r_node, op->r_component, op->r_seq, key, &klen);
	if (rv == 0)
		rv = store_record_get(s, txn, key, klen, op->r_arena, &op->r_rec, op->r_err);
	return rv;
}

int
store_retrieve(struct store *s, const char *node, const char *component, uint64_t seq,
    struct arena *a, Ckpt__V1__CheckpointRecord **ret_rec, struct store_error *ret_err)
{
	struct store_retrieve_op op = { node, component, seq, a, NULL, ret_err };
	char ref[KEY_MAX + 24];
	int rv;

	ret_err->se_msg[0] = '\0';
	rv = store_check_filter("node", node, ret_err);
	if (rv == 0)
		rv = store_check_name("component", component, ret_err);
	if (rv != 0)
		return rv;
	rv = store_read(s, store_retrieve_txn, &op);
	store_ref_str(node, component, seq, ref, sizeof(ref));
	if (rv == -ENOENT)
		store_errorf(ret_err, "no checkpoint %s", ref);
	else if (rv == -EBADMSG && ret_err->se_msg[0] == '\0')
		store_errorf(ret_err, "the record of %s is corrupt", ref);
	if (rv != 0)
		return rv;
	*ret_rec = op.r_rec;
	return 0;
}

/* ---- list ---- */

struct store_list_op {
	const char *l_node;
	const char *l_component;
	bool l_latest;
	struct arena *l_arena;
	const struct store *l_store;
	Ckpt__V1__CheckpointInfo **l_infos;
	size_t l_n, l_cap;
	size_t l_max;                   /* entries at most */
	bool l_truncated;               /* stopped at l_max with keys left */
};

/*
 * A record sealed under a key the store was not given is listed by its key
 * alone (node, component, seq): List goes on working, Retrieve says why not.
 */
static int
store_list_locked(struct store_list_op *op, const MDB_val *k, Ckpt__V1__CheckpointInfo **ret_info)
{
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1];
	Ckpt__V1__CheckpointInfo *info = arena_alloc(op->l_arena, sizeof(*info));
	uint64_t seq;

	if (info == NULL)
		return -ENOMEM;
	if (key_decode(k->mv_data, k->mv_size, node, comp, &seq) != 0)
		return -EBADMSG;
	ckpt__v1__checkpoint_info__init(info);
	info->node = arena_strdup(op->l_arena, node);
	info->component = arena_strdup(op->l_arena, comp);
	info->seq = seq;
	if (info->node == NULL || info->component == NULL)
		return -ENOMEM;
	*ret_info = info;
	return 0;
}

static int
store_list_push(struct store_list_op *op, const MDB_val *k, const MDB_val *v)
{
	Ckpt__V1__CheckpointInfo *info;
	uint8_t id[SEAL_ID_LEN];
	int rv;

	if (op->l_n == op->l_cap) {
		size_t cap = op->l_cap != 0 ? 2 * op->l_cap : 64;
		void *p = arena_alloc(op->l_arena, cap * sizeof(*op->l_infos));
		if (p == NULL)
			return -ENOMEM;
		if (op->l_n != 0)
			memcpy(p, op->l_infos, op->l_n * sizeof(*op->l_infos));
		op->l_infos = p;
		op->l_cap = cap;
	}
	rv = store_record_info(op->l_store, k, v, op->l_arena, &info, id);
	if (rv == -ENOKEY)
		rv = store_list_locked(op, k, &info);
	if (rv == 0)
		op->l_infos[op->l_n++] = info;
	return rv;
}

/* A "ckpt" key whose component is op->l_component (when that filter is set alone). */
static bool
store_list_match(const struct store_list_op *op, const MDB_val *k)
{
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1];
	uint64_t seq;

	if (op->l_component[0] == '\0' || op->l_node[0] != '\0')
		return true;
	return key_decode(k->mv_data, k->mv_size, node, comp, &seq) == 0 &&
	    strcmp(comp, op->l_component) == 0;
}

static bool
store_same_group(const MDB_val *a, const MDB_val *b)
{
	return a->mv_size == b->mv_size &&
	    memcmp(a->mv_data, b->mv_data, a->mv_size - STORE_SEQ_LEN) == 0;
}

/* Walks "ckpt" in key order; with latest_only, emits the last key of each group. */
static int
store_list_walk(MDB_cursor *c, struct store_list_op *op, const uint8_t *prefix, size_t plen)
{
	MDB_val k = { plen, (void *)prefix }, v, pk = { 0, NULL }, pv = { 0, NULL };
	int rc, rv = 0;

	for (rc = mdb_cursor_get(c, &k, &v, plen != 0 ? MDB_SET_RANGE : MDB_FIRST);
	     rc == 0 && rv == 0 && op->l_n < op->l_max;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if (k.mv_size <= STORE_SEQ_LEN || !store_list_match(op, &k))
			continue;
		if (!op->l_latest) {
			rv = store_list_push(op, &k, &v);
			continue;
		}
		if (pk.mv_size != 0 && !store_same_group(&pk, &k))
			rv = store_list_push(op, &pk, &pv);
		pk = k;
		pv = v;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_rc(rc);
	/* Stopped by the cap on a key of the range: there may be more. */
	if (rc == 0 && op->l_n >= op->l_max && k.mv_size >= plen &&
	    memcmp(k.mv_data, prefix, plen) == 0)
		op->l_truncated = true;
	/* The last group (latest_only) is emitted here, or left out by the cap. */
	if (rv == 0 && pk.mv_size != 0 && op->l_n < op->l_max)
		rv = store_list_push(op, &pk, &pv);
	else if (rv == 0 && pk.mv_size != 0)
		op->l_truncated = true;
	return rv;
}

static int
store_list_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_list_op *op = arg;
	uint8_t prefix[KEY_MAX];
	size_t plen = 0;
	MDB_cursor *c;
	int rv = 0;

	op->l_n = 0;
	op->l_truncated = false;
	if (op->l_node[0] != '\0')
		rv = key_prefix(op->l_node, op->l_component[0] != '\0' ? op->l_component : NULL, prefix,
		    &plen);
	if (rv != 0)
		return rv;
	rv = store_rc(mdb_cursor_open(txn, s->s_dbi[DB_CKPT], &c));
	if (rv != 0)
		return rv;
	rv = store_list_walk(c, op, prefix, plen);
	mdb_cursor_close(c);
	return rv;
}

int
store_list(struct store *s, const char *node, const char *component, bool latest_only,
    size_t max, bool *ret_truncated, struct arena *a, Ckpt__V1__CheckpointInfo ***ret_infos,
    size_t *ret_n, struct store_error *ret_err)
{
	struct store_list_op op = { node, component, latest_only, a, s, NULL, 0, 0,
		max != 0 && max < STORE_LIST_MAX ? max : STORE_LIST_MAX, false };
	int rv;

	ret_err->se_msg[0] = '\0';
	rv = store_check_filter("node", node, ret_err);
	if (rv == 0)
		rv = store_check_filter("component", component, ret_err);
	if (rv == 0)
		rv = store_read(s, store_list_txn, &op);
	if (rv == -EBADMSG)
		store_errorf(ret_err, "a checkpoint record is corrupt");
	if (rv != 0)
		return rv;
	*ret_infos = op.l_infos;
	*ret_n = op.l_n;
	if (ret_truncated != NULL)
		*ret_truncated = op.l_truncated;
	return 0;
}

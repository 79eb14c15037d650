#include "store_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "key.h"
#include "seal.h"
#include "sha.h"

/* ---- reference counts ---- */

/* Either form (STORE_REF_LEN, STORE_REF_OLD); -EBADMSG for anything else. */
int
store_ref_decode(const MDB_val *v, struct store_ref *ret)
{
	const uint8_t *p = v->mv_data;
	uint32_t raw = 0;

	if (v->mv_size != STORE_REF_LEN && v->mv_size != STORE_REF_OLD)
		return -EBADMSG;
	if (v->mv_size == STORE_REF_LEN) {
		raw = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 |
		    (uint32_t)p[11] << 24;
		if (raw == 0 || raw > STORE_CHUNK_MAX)
			return -EBADMSG;
	}
	memcpy(&ret->r_count, p, sizeof(ret->r_count));
	ret->r_raw_size = raw;
	return 0;
}

/* The value's length: the older form when the size is not known (r_raw_size 0). */
size_t
store_ref_encode(const struct store_ref *r, uint8_t buf[STORE_REF_LEN])
{
	memcpy(buf, &r->r_count, sizeof(r->r_count));
	if (r->r_raw_size == 0)
		return STORE_REF_OLD;
	buf[8] = (uint8_t)r->r_raw_size;
	buf[9] = (uint8_t)(r->r_raw_size >> 8);
	buf[10] = (uint8_t)(r->r_raw_size >> 16);
	buf[11] = (uint8_t)(r->r_raw_size >> 24);
	return STORE_REF_LEN;
}

static int
store_ref_get(struct store *s, MDB_txn *txn, const uint8_t *sha, struct store_ref *ret_ref)
{
	MDB_val k = { SHA_LEN, (void *)sha }, v;
	int rc;

	rc = mdb_get(txn, s->s_dbi[DB_REF], &k, &v);
	if (rc == MDB_NOTFOUND) {
		ret_ref->r_count = 0;
		ret_ref->r_raw_size = 0;
		return 0;
	}
	if (rc != 0)
		return store_rc(rc);
	return store_ref_decode(&v, ret_ref);
}

/*
 * sha: the chunk's name in "chunk" (store_chunk_name_of()).
 * Drops one reference (the value keeps its form); the last one deletes the
 * chunk and its count and adds its size to *freed_bytes and 1 to
 * *freed_chunks. A chunk without a count is left for the sweep after open.
 */
static int
store_ref_release(struct store *s, MDB_txn *txn, const uint8_t *sha, uint64_t *freed_chunks,
    uint64_t *freed_bytes, uint64_t *freed_raw)
{
	struct store_chunk_val cv;
	struct store_ref ref;
	uint8_t buf[STORE_REF_LEN];
	MDB_val k = { SHA_LEN, (void *)sha }, v;
	bool split = false;
	int rv, rc;

	rv = store_ref_get(s, txn, sha, &ref);
	if (rv != 0 || ref.r_count == 0)
		return rv;
	if (ref.r_count > 1) {
		ref.r_count--;
		v.mv_size = store_ref_encode(&ref, buf);
		v.mv_data = buf;
		return store_rc(mdb_put(txn, s->s_dbi[DB_REF], &k, &v, 0));
	}
	rv = store_rc(mdb_del(txn, s->s_dbi[DB_REF], &k, NULL));
	if (rv != 0)
		return rv;
	rc = mdb_get(txn, s->s_dbi[DB_CHUNK], &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc == 0) {
		/* A header that cannot be read leaves a tail for the sweep after open. */
		split = store_chunk_parse(&v, &cv) == 0 && cv.cv_split;
		/* One the sweep after open has not counted yet: it never will. */
		if (store_chunk_read(s, txn, &k, &v, &cv) == 0 &&
		    store_sweep_passed(s, txn, k.mv_data, k.mv_size)) {
			*freed_bytes += cv.cv_len + cv.cv_tail_len;
			*freed_raw += cv.cv_raw_size;
		}
		(*freed_chunks)++;
		rc = mdb_del(txn, s->s_dbi[DB_CHUNK], &k, NULL);
	}
	if (rc == 0 && split)
		rc = mdb_del(txn, s->s_dbi[DB_TAIL], &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : store_rc(rc);
}

/* ---- delete ---- */

/* Deletes one record, its "cidx" entry, and releases its chunks. */
static int
store_delete_one(struct store *s, MDB_txn *txn, struct store_delete_op *op, const uint8_t *key,
    size_t klen)
{
	MDB_val k = { klen, (void *)key }, v, pv;
	Ckpt__V1__CheckpointRecord *rec;
	uint8_t ck[STORE_CIDX_MAX], id[SEAL_ID_LEN], *buf;
	int rv;

	rv = store_rc(mdb_get(txn, s->s_dbi[DB_CKPT], &k, &v));
	if (rv != 0)
		return rv;
	/* Sealed under a key not given (-ENOKEY): its chunks cannot be released; it stays. */
	rv = store_record_open(s, &k, &v, &pv, &buf, id);
	if (rv != 0)
		return rv;
	rec = ckpt__v1__checkpoint_record__unpack(NULL, pv.mv_size, pv.mv_data);
	free(buf); /* buf != NULL below only tells that the record was sealed */
	if (rec == NULL)
		return -EBADMSG;
	for (size_t i = 0; i < rec->n_chunks && rv == 0; i++) {
		uint8_t name[SHA_LEN];
		if (rec->chunks[i]->sha256.len != SHA_LEN)
			continue;
		store_chunk_name_of(s, buf != NULL ? id : NULL, rec->chunks[i]->sha256.data, name);
		rv = store_ref_release(s, txn, name, &op->d_chunks_freed, &op->d_bytes_freed,
		    &op->d_raw_freed);
	}
	ckpt__v1__checkpoint_record__free_unpacked(rec, NULL);
	if (rv == 0)
		rv = store_rc(mdb_del(txn, s->s_dbi[DB_CKPT], &k, NULL));
	if (rv == 0)
		rv = store_rc(mdb_del(txn, s->s_dbi[DB_PIN], &k, NULL));
	if (rv == -ENOENT)
		rv = 0;
	if (rv != 0)
		return rv;
	k.mv_size = store_cidx_key(op->d_component, store_be64_get(key + klen - STORE_SEQ_LEN), ck);
	k.mv_data = ck;
	rv = store_rc(mdb_get(txn, s->s_dbi[DB_CIDX], &k, &v));
	if (rv == 0 && v.mv_size == strlen(op->d_node) && memcmp(v.mv_data, op->d_node, v.mv_size) == 0)
		rv = store_rc(mdb_del(txn, s->s_dbi[DB_CIDX], &k, NULL));
	if (rv == -ENOENT)
		rv = 0;
	if (rv == 0)
		op->d_deleted++;
	return rv;
}

static int
store_delete_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_delete_op *op = arg;
	uint8_t key[KEY_MAX], prefix[KEY_MAX];
	size_t klen, plen;
	int rv;

	op->d_deleted = 0;
	op->d_chunks_freed = 0;
	op->d_bytes_freed = 0;
	op->d_raw_freed = 0;
	if (op->d_seq != 0) {
		rv = key_encode(op->d_node, op->d_component, op->d_seq, key, &klen);
		if (rv == 0)
			rv = store_delete_one(s, txn, op, key, klen);
	} else {
		rv = key_prefix(op->d_node, op->d_component, prefix, &plen);
		while (rv == 0) {
			rv = store_db_first(s, txn, DB_CKPT, prefix, plen, key, &klen);
			if (rv == 0)
				rv = store_delete_one(s, txn, op, key, klen);
		}
		if (rv == -ENOENT && op->d_deleted != 0)
			rv = 0;
	}
	if (rv == 0)
		rv = store_comp_refresh(s, txn, op->d_component);
	if (rv == 0)
		rv = store_grant_drop_if_gone(s, txn, op->d_component);
	return rv;
}

int
store_delete(struct store *s, const char *node, const char *component, uint64_t seq,
    uint32_t *ret_deleted, uint64_t *ret_chunks_freed, struct store_error *ret_err)
{
	struct store_delete_op op = { node, component, seq, 0, 0, 0, 0 };
	char ref[KEY_MAX + 24];
	int rv;

	ret_err->se_msg[0] = '\0';
	rv = store_check_name("node", node, ret_err);
	if (rv == 0)
		rv = store_check_name("component", component, ret_err);
	if (rv != 0)
		return rv;
	rv = store_write_frees(s, store_delete_txn, &op, ret_err);
	store_ref_str(node, component, seq, ref, sizeof(ref));
	if (rv == -ENOENT && seq != 0)
		store_errorf(ret_err, "no checkpoint %s", ref);
	else if (rv == -ENOENT)
		store_errorf(ret_err, "no checkpoint of %s/%s", node, component);
	else if (rv == -EBADMSG)
		store_errorf(ret_err, "a record of %s/%s is corrupt", node, component);
	else if (rv == -ENOKEY)
		store_errorf(ret_err, "%s is sealed under a key this NAS was not given "
		    "(--decrypt-keys FILE); nothing deleted", ref);
	if (rv != 0)
		return rv;
	atomic_fetch_sub(&s->s_chunk_bytes, op.d_bytes_freed);
	atomic_fetch_sub(&s->s_chunk_raw_bytes, op.d_raw_freed);
	*ret_deleted = op.d_deleted;
	*ret_chunks_freed = op.d_chunks_freed;
	return 0;
}

/* ---- retention and pins ---- */

/* The number of checkpoints kept for component: its own setting or the default. */
static int
store_keep_get(struct store *s, MDB_txn *txn, const char *component, uint32_t *ret_keep,
    bool *ret_own)
{
	MDB_val k = { strlen(component), (void *)component }, v;
	uint32_t keep;
	int rc;

	rc = mdb_get(txn, s->s_dbi[DB_KEEP], &k, &v);
	if (rc == MDB_NOTFOUND) {
		*ret_keep = s->s_keep;
		*ret_own = false;
		return 0;
	}
	if (rc != 0)
		return store_rc(rc);
	if (v.mv_size != sizeof(keep))
		return -EBADMSG;
	memcpy(&keep, v.mv_data, sizeof(keep));
	*ret_keep = keep != 0 ? keep : s->s_keep;
	*ret_own = keep != 0;
	return 0;
}

static bool
store_pinned(struct store *s, MDB_txn *txn, const uint8_t *key, size_t klen)
{
	MDB_val k = { klen, (void *)key }, v;
	return mdb_get(txn, s->s_dbi[DB_PIN], &k, &v) == 0;
}

/*
 * Deletes the checkpoints of component beyond the newest `keep` (any node),
 * except pinned ones, in the caller's transaction. The newest is never
 * deleted (keep >= 1).
 */
int
store_retain(struct store *s, MDB_txn *txn, const char *component, struct store_delete_op *op)
{
	uint8_t prefix[STORE_CIDX_MAX], (*keys)[KEY_MAX] = NULL;
	size_t plen = strlen(component) + 1, *klens = NULL, nkeys = 0, cap = 0;
	uint32_t keep = 0, seen = 0;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	bool own;
	int rc, rv;

	op->d_deleted = 0;
	op->d_chunks_freed = op->d_bytes_freed = op->d_raw_freed = 0;
	rv = store_keep_get(s, txn, component, &keep, &own);
	if (rv != 0)
		return rv;
	memcpy(prefix, component, plen);
	rv = store_db_last(s, txn, DB_CIDX, prefix, plen, &k, &v);
	if (rv == -ENOENT)
		return 0;
	if (rv == 0)
		rv = store_rc(mdb_cursor_open(txn, s->s_dbi[DB_CIDX], &c));
	if (rv == 0)
		rv = store_rc(mdb_cursor_get(c, &k, &v, MDB_SET_KEY));
	/* Newest first: collect the keys to delete, then delete (no cursor on a changing tree). */
	for (rc = rv == 0 ? 0 : -1; rc == 0 && rv == 0; rc = mdb_cursor_get(c, &k, &v, MDB_PREV)) {
		char node[KEY_NAME_MAX + 1];
		uint8_t key[KEY_MAX];
		size_t klen;

		if (k.mv_size != plen + STORE_SEQ_LEN || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if (++seen <= keep)
			continue;
		if (v.mv_size == 0 || v.mv_size > KEY_NAME_MAX) {
			rv = -EBADMSG;
			break;
		}
		memcpy(node, v.mv_data, v.mv_size);
		node[v.mv_size] = '\0';
		rv = key_encode(node, component, store_be64_get((const uint8_t *)k.mv_data + plen), key,
		    &klen);
		if (rv != 0 || store_pinned(s, txn, key, klen))
			continue;
		rv = store_keys_push(&keys, &klens, &nkeys, &cap, key, klen);
		if (rv != 0)
			break;
	}
	if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
		rv = store_rc(rc);
	mdb_cursor_close(c);
	for (size_t i = 0; i < nkeys && rv == 0; i++) {
		char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1];
		uint64_t seq;
		rv = key_decode(keys[i], klens[i], node, comp, &seq) == 0 ? 0 : -EBADMSG;
		op->d_node = node;
		op->d_component = component;
		if (rv == 0)
			rv = store_delete_one(s, txn, op, keys[i], klens[i]);
		/* Sealed under a key this NAS was not given: kept until it is. */
		if (rv == -ENOKEY)
			rv = 0;
		op->d_node = NULL;
	}
	free(keys);
	free(klens);
	return rv;
}

void
store_retain_done(struct store *s, const struct store_delete_op *op)
{
	atomic_fetch_sub(&s->s_chunk_bytes, op->d_bytes_freed);
	atomic_fetch_sub(&s->s_chunk_raw_bytes, op->d_raw_freed);
}

struct store_pin_op {
	const char *pn_node, *pn_component;
	uint64_t pn_seq;
	bool pn_pinned;
	bool pn_changed;
	struct store_delete_op pn_del;
};

static int
store_pin_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_pin_op *op = arg;
	uint8_t key[KEY_MAX];
	MDB_val k, v;
	size_t klen;
	int rv;

	op->pn_changed = false;
	rv = key_encode(op->pn_node, op->pn_component, op->pn_seq, key, &klen);
	if (rv != 0)
		return rv;
	k.mv_size = klen;
	k.mv_data = key;
	rv = store_rc(mdb_get(txn, s->s_dbi[DB_CKPT], &k, &v));
	if (rv != 0)
		return rv;
	if (op->pn_pinned) {
		v.mv_size = 0;
		v.mv_data = "";
		rv = store_rc(mdb_put(txn, s->s_dbi[DB_PIN], &k, &v, MDB_NOOVERWRITE));
		op->pn_changed = rv == 0;
		return rv == -EEXIST ? 0 : rv;
	}
	rv = store_rc(mdb_del(txn, s->s_dbi[DB_PIN], &k, NULL));
	if (rv == -ENOENT)
		return 0;
	op->pn_changed = rv == 0;
	/* Unpinned: it may now fall out of the retention window. */
	return rv == 0 ? store_retain(s, txn, op->pn_component, &op->pn_del) : rv;
}

int
store_pin(struct store *s, const char *node, const char *component, uint64_t seq, bool pinned,
    bool *ret_changed, uint32_t *ret_deleted, struct store_error *ret_err)
{
	struct store_pin_op op = { node, component, seq, pinned, false, { 0 } };
	char ref[KEY_MAX + 24];
	int rv;

	ret_err->se_msg[0] = '\0';
	rv = store_check_name("node", node, ret_err);
	if (rv == 0)
		rv = store_check_name("component", component, ret_err);
	if (rv == 0 && seq == 0) {
		store_errorf(ret_err, "pin needs a sequence number (NODE/COMPONENT@SEQ)");
		rv = -EINVAL;
	}
	if (rv != 0)
		return rv;
	/*
	 * An unpin deletes what falls out of retention (it frees room): never
	 * refused up front, it may use the disk reserve, as ckptctl keep does.
	 */
	if (pinned)
		rv = store_write(s, store_pin_txn, &op, ret_err);
	else
		rv = store_write_frees(s, store_pin_txn, &op, ret_err);
	store_ref_str(node, component, seq, ref, sizeof(ref));
	if (rv == -ENOENT)
		store_errorf(ret_err, "no checkpoint %s", ref);
	if (rv != 0)
		return rv;
	store_retain_done(s, &op.pn_del);
	*ret_changed = op.pn_changed;
	*ret_deleted = op.pn_del.d_deleted;
	return 0;
}

struct store_keep_op {
	const char *kp_component;
	uint32_t kp_keep;
	uint32_t kp_effective;
	struct store_delete_op kp_del;
};

static int
store_keep_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_keep_op *op = arg;
	MDB_val k = { strlen(op->kp_component), (void *)op->kp_component };
	MDB_val v = { sizeof(op->kp_keep), &op->kp_keep };
	uint8_t prefix[STORE_CIDX_MAX];
	size_t plen = strlen(op->kp_component) + 1;
	MDB_val lk, lv;
	bool own = false;
	int rv;

	/* Retention is per component: one the NAS knows nothing of is a mistake (a typo). */
	memcpy(prefix, op->kp_component, plen);
	rv = store_keep_get(s, txn, op->kp_component, &op->kp_effective, &own);
	if (rv == 0 && !own)
		rv = store_db_last(s, txn, DB_CIDX, prefix, plen, &lk, &lv);
	if (rv != 0)
		return rv;
	if (op->kp_keep == 0) {
		rv = store_rc(mdb_del(txn, s->s_dbi[DB_KEEP], &k, NULL));
		if (rv == -ENOENT)
			rv = 0;
	} else {
		rv = store_rc(mdb_put(txn, s->s_dbi[DB_KEEP], &k, &v, 0));
	}
	if (rv == 0)
		rv = store_keep_get(s, txn, op->kp_component, &op->kp_effective, &own);
	if (rv == 0)
		rv = store_retain(s, txn, op->kp_component, &op->kp_del);
	return rv;
}

int
store_set_keep(struct store *s, const char *component, uint32_t keep, uint32_t *ret_keep,
    uint32_t *ret_deleted, struct store_error *ret_err)
{
	struct store_keep_op op = { component, keep, 0, { 0 } };
	int rv;

	ret_err->se_msg[0] = '\0';
	rv = store_check_name("component", component, ret_err);
	if (rv == 0 && keep > STORE_KEEP_MAX) {
		store_errorf(ret_err, "keep %u is too large (at most %u)", keep, STORE_KEEP_MAX);
		rv = -EINVAL;
	}
	if (rv == 0)
		rv = store_write_frees(s, store_keep_txn, &op, ret_err); /* may delete */
	if (rv == -ENOENT)
		store_errorf(ret_err, "component %s has no checkpoint on this NAS (retention is set "
		    "per component once it has one; see ckptctl ls)", component);
	if (rv != 0)
		return rv;
	store_retain_done(s, &op.kp_del);
	*ret_keep = op.kp_effective;
	*ret_deleted = op.kp_del.d_deleted;
	return 0;
}

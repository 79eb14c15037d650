#include "store_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "digest.h"
#include "err.h"
#include "key.h"
#include "seal.h"
#include "sha.h"
#include "zchunk.h"

/* ---- format upgrade ---- */

/*
 * Format 3 to 4: every record without a digest gets the one of its chunk
 * list (a few dozen bytes per chunk hashed; no chunk is read). Records that
 * do not decode are left for the checks to report. The keys are gathered
 * first and the records rewritten after: a record that grows may move to
 * other (overflow) pages, under a cursor that would then walk a changed tree.
 */

int
store_upgrade_digests(struct store *s, MDB_txn *txn, size_t *ret_count)
{
	MDB_cursor *cur;
	MDB_val k, v;
	uint8_t (*keys)[KEY_MAX] = NULL;
	size_t *klens = NULL, nkeys = 0, cap = 0, count = 0;
	int mrc, rv = 0;

	mrc = mdb_cursor_open(txn, s->s_dbi[DB_CKPT], &cur);
	if (mrc != 0)
		return store_rc(mrc);
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && rv == 0;
	    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size > KEY_MAX)
			continue;
		rv = store_keys_push(&keys, &klens, &nkeys, &cap, k.mv_data, k.mv_size);
		if (rv != 0)
			break;
	}
	if (rv == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
		rv = store_rc(mrc);
	mdb_cursor_close(cur);
	for (size_t i = 0; i < nkeys && rv == 0; i++) {
		Ckpt__V1__CheckpointRecord *rec;
		uint8_t digest[SHA_LEN];

		k.mv_size = klens[i];
		k.mv_data = keys[i];
		mrc = mdb_get(txn, s->s_dbi[DB_CKPT], &k, &v);
		if (mrc != 0) {
			rv = store_rc(mrc);
			break;
		}
		rec = ckpt__v1__checkpoint_record__unpack(NULL, v.mv_size, v.mv_data);
		if (rec == NULL || rec->info == NULL || rec->info->digest.len == SHA_LEN ||
		    digest_refs(rec->chunks, rec->n_chunks, digest) != 0) {
			ckpt__v1__checkpoint_record__free_unpacked(rec, NULL);
			continue;
		}
		rec->info->digest.data = digest; /* not freed: taken back below */
		rec->info->digest.len = SHA_LEN;
		/*
		 * In clear, like the chunks they hold: a record sealed under a key names
		 * its chunks under that key (store_chunk_name_of()).
		 */
		{
			MDB_val nv = { ckpt__v1__checkpoint_record__get_packed_size(rec), NULL };
			rv = store_rc(mdb_put(txn, s->s_dbi[DB_CKPT], &k, &nv, MDB_RESERVE));
			if (rv == 0) {
				ckpt__v1__checkpoint_record__pack(rec, nv.mv_data);
				count++;
			}
		}
		rec->info->digest.data = NULL;
		rec->info->digest.len = 0;
		ckpt__v1__checkpoint_record__free_unpacked(rec, NULL);
	}
	free(keys);
	free(klens);
	if (rv == 0)
		*ret_count = count;
	return rv;
}

/* ---- check (scrub) ---- */

struct store_check_op {
	struct store_check *ck_out;
	struct zchunk *ck_z;
	uint8_t *ck_raw;                 /* STORE_CHUNK_MAX bytes */
	uint8_t *ck_whole;               /* STORE_CHUNK_MAX bytes: a split chunk in one piece */
	uint8_t (*ck_refs)[SHA_LEN];     /* every reference of every record, sorted */
	struct seal_ctx *ck_seal;        /* store with keys: opens the chunks */
	size_t ck_nrefs, ck_cap;
};

static void store_problem(struct store_check *ck, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
store_problem(struct store_check *ck, const char *fmt, ...)
{
	va_list ap;

	if (ck->sk_nproblems >= STORE_PROBLEMS_MAX) {
		ck->sk_more++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(ck->sk_problems[ck->sk_nproblems++], STORE_PROBLEM_LEN, fmt, ap);
	va_end(ap);
}

/* The counts of key id id in ck (NULL when STORE_CHECK_KEYS ids are counted already). */
static struct store_check_key *
store_check_key_of(const struct store *s, struct store_check *ck, const uint8_t *id)
{
	char hex[SEAL_ID_HEX_LEN + 1];
	struct store_check_key *kk;

	seal_id_hex(id, hex);
	for (size_t i = 0; i < ck->sk_nkeys; i++)
		if (strcmp(ck->sk_keys[i].kk_id, hex) == 0)
			return &ck->sk_keys[i];
	if (ck->sk_nkeys == STORE_CHECK_KEYS)
		return NULL;
	kk = &ck->sk_keys[ck->sk_nkeys++];
	memcpy(kk->kk_id, hex, sizeof(kk->kk_id));
	kk->kk_loaded = seal_ring_find(&s->s_ring, id) != NULL;
	return kk;
}

static int
store_sha_cmp(const void *a, const void *b)
{
	return memcmp(a, b, SHA_LEN);
}

/* Collects the chunk references of every record. */
static int
store_check_records(struct store *s, MDB_txn *txn, struct store_check_op *op)
{
	struct store_check *ck = op->ck_out;
	MDB_cursor *c;
	MDB_val k, v;
	int rc, rv = 0;

	rc = mdb_cursor_open(txn, s->s_dbi[DB_CKPT], &c);
	if (rc != 0)
		return store_rc(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1];
		Ckpt__V1__CheckpointRecord *rec = NULL;
		uint8_t id[SEAL_ID_LEN], *buf;
		struct store_check_key *kk;
		bool sealed;
		MDB_val pv;
		uint64_t seq;
		int orc;

		ck->sk_records++;
		if (key_decode(k.mv_data, k.mv_size, node, comp, &seq) != 0) {
			node[0] = comp[0] = '\0';
			seq = 0;
		}
		orc = store_record_open(s, &k, &v, &pv, &buf, id);
		if (orc == -ENOMEM) {
			rv = orc;
			break;
		}
		if (orc == 0 && buf == NULL)
			ck->sk_plain_records++;
		else if (orc != -EBADMSG && (kk = store_check_key_of(s, ck, id)) != NULL)
			kk->kk_records++;
		if (orc == -ENOKEY) {
			char hex[SEAL_ID_HEX_LEN + 1];
			seal_id_hex(id, hex);
			ck->sk_locked++;
			store_problem(ck, "%s/%s@%llu is sealed under key id %s, which was not given: "
			    "not checked", node, comp, (unsigned long long)seq, hex);
			continue;
		}
		if (orc == 0)
			rec = ckpt__v1__checkpoint_record__unpack(NULL, pv.mv_size, pv.mv_data);
		sealed = buf != NULL;
		free(buf);
		if (node[0] == '\0' || rec == NULL || rec->info == NULL) {
			ck->sk_bad_records++;
			if (orc == -EBADMSG)
				store_problem(ck, "%s/%s@%llu is corrupt: its record fails its authentication "
				    "tag", node, comp, (unsigned long long)seq);
			else
				store_problem(ck, "record %zu of \"ckpt\" is undecodable",
				    (size_t)ck->sk_records);
			if (rec != NULL)
				ckpt__v1__checkpoint_record__free_unpacked(rec, NULL);
			continue;
		}
		for (size_t i = 0; i < rec->n_chunks && rv == 0; i++) {
			if (rec->chunks[i]->zero && rec->chunks[i]->sha256.len == 0)
				continue;
			if (rec->chunks[i]->sha256.len != SHA_LEN) {
				ck->sk_bad_records++;
				store_problem(ck, "%s/%s@%llu: chunk %zu has a bad hash", node, comp,
				    (unsigned long long)seq, i);
				continue;
			}
			if (op->ck_nrefs == op->ck_cap) {
				size_t cap = op->ck_cap != 0 ? 2 * op->ck_cap : 4096;
				void *a = realloc(op->ck_refs, cap * SHA_LEN);
				if (a == NULL) {
					rv = -ENOMEM;
					break;
				}
				op->ck_refs = a;
				op->ck_cap = cap;
			}
			/* Under the name the record's key gives it (store_chunk_name_of()). */
			store_chunk_name_of(s, sealed ? id : NULL, rec->chunks[i]->sha256.data,
			    op->ck_refs[op->ck_nrefs++]);
		}
		/* Its digest names its chunk list (records of format 3 may have none yet). */
		if (rv == 0 && rec->info->digest.len != 0) {
			uint8_t digest[SHA_LEN];
			if (rec->info->digest.len != SHA_LEN ||
			    digest_refs(rec->chunks, rec->n_chunks, digest) != 0 ||
			    memcmp(digest, rec->info->digest.data, SHA_LEN) != 0) {
				ck->sk_bad_records++;
				store_problem(ck, "%s/%s@%llu: its digest does not match its chunk list",
				    node, comp, (unsigned long long)seq);
			}
		}
		ckpt__v1__checkpoint_record__free_unpacked(rec, NULL);
	}
	mdb_cursor_close(c);
	if (rv == 0 && rc != MDB_NOTFOUND)
		rv = store_rc(rc);
	return rv;
}

/*
 * A sealed chunk at rest: opened under its key (counted per key id), then
 * decoded, and its name must be the keyed name of the SHA-256 of its bytes.
 * true: sealed under a key not given, nothing checked (not even its count:
 * the records that hold it may be sealed under that key too).
 */
static bool
store_check_sealed(struct store *s, struct store_check_op *op, const uint8_t *name,
    struct store_chunk_val *cv, const char *hex)
{
	struct store_check *ck = op->ck_out;
	uint8_t id[SEAL_ID_LEN], sha[SHA_LEN], want[SEAL_NAME_LEN];
	const struct seal_key *key;
	struct store_check_key *kk;
	const void *raw;
	int rv;

	memcpy(id, seal_id_of(cv->cv_data), SEAL_ID_LEN);
	kk = store_check_key_of(s, ck, id);
	if (kk != NULL)
		kk->kk_chunks++;
	key = seal_ring_find(&s->s_ring, id);
	if (key == NULL) {
		char idhex[SEAL_ID_HEX_LEN + 1];
		seal_id_hex(id, idhex);
		ck->sk_locked++;
		store_problem(ck, "chunk %s is sealed under key id %s, which was not given: not checked",
		    hex, idhex);
		return true;
	}
	rv = cv->cv_len + cv->cv_tail_len > STORE_CHUNK_MAX + SEAL_OVERHEAD ? -EBADMSG :
	    store_chunk_open(s, op->ck_seal, name, cv, op->ck_whole, id);
	if (rv != 0) {
		ck->sk_bad_chunks++;
		store_problem(ck, "chunk %s is corrupt: it fails its authentication tag", hex);
		return false;
	}
	rv = zchunk_decode(op->ck_z, cv->cv_codec, cv->cv_data, cv->cv_len, cv->cv_raw_size,
	    STORE_CHUNK_MAX, op->ck_raw, &raw);
	if (rv == 0) {
		sha256(raw, cv->cv_raw_size, sha);
		seal_name(key, sha, want);
	}
	if (rv != 0 || memcmp(want, name, SEAL_NAME_LEN) != 0) {
		ck->sk_bad_chunks++;
		store_problem(ck, "chunk %s is corrupt: its bytes do not match its name", hex);
	}
	return false;
}

/* One chunk: decodable, hash matches, reference count as the records say. */
static void
store_check_chunk_at_rest(struct store *s, MDB_txn *txn, struct store_check_op *op,
    const MDB_val *k, const MDB_val *v, uint64_t expected)
{
	struct store_check *ck = op->ck_out;
	char hex[SHA_HEX_LEN + 1];
	struct store_chunk_val cv;
	MDB_val rk = *k, rv_;
	struct store_ref ref = { 0, 0 };
	const void *raw;
	uint64_t count;
	bool bad, sealed;
	int rc;

	ck->sk_chunks++;
	sha_hex(k->mv_data, SHA_LEN, hex);
	bad = k->mv_size != SHA_LEN || store_chunk_read(s, txn, k, v, &cv) != 0;
	sealed = !bad && cv.cv_sealed;
	if (sealed && store_check_sealed(s, op, k->mv_data, &cv, hex))
		return;
	else if (!bad && cv.cv_split) {
		/* Head and tail in one piece, then verified like any chunk. */
		store_chunk_copy(&cv, op->ck_whole);
		cv.cv_data = op->ck_whole;
		cv.cv_len += cv.cv_tail_len;
	}
	if (!bad && !sealed)
		ck->sk_plain_chunks++;
	if (bad || (!sealed && zchunk_verify(op->ck_z, cv.cv_codec, cv.cv_data, cv.cv_len,
	        cv.cv_raw_size, STORE_CHUNK_MAX, op->ck_raw, k->mv_data, &raw) != 0)) {
		ck->sk_bad_chunks++;
		store_problem(ck, "chunk %s is corrupt: its bytes do not match their SHA-256", hex);
	}
	/* Either form of "ref" value; one of neither counts as a wrong count. */
	rc = mdb_get(txn, s->s_dbi[DB_REF], &rk, &rv_);
	if (rc == 0 && store_ref_decode(&rv_, &ref) != 0)
		ref.r_count = UINT64_MAX;
	count = ref.r_count;
	if (expected == 0 && count == 0) {
		ck->sk_orphans++;
		return;
	}
	if (count != expected) {
		ck->sk_bad_refcounts++;
		store_problem(ck, "chunk %s: reference count %llu, the records hold %llu", hex,
		    (unsigned long long)count, (unsigned long long)expected);
	} else if (!bad && ref.r_raw_size != 0 && ref.r_raw_size != cv.cv_raw_size) {
		/* Commits check the records' sizes against this one. */
		ck->sk_bad_refcounts++;
		store_problem(ck, "chunk %s: its reference count gives %u bytes, the chunk holds %u",
		    hex, ref.r_raw_size, cv.cv_raw_size);
	}
}

/* Every tail belongs to a split chunk. */
static int
store_check_tails(struct store *s, MDB_txn *txn, struct store_check_op *op)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	rc = mdb_cursor_open(txn, s->s_dbi[DB_TAIL], &c);
	if (rc != 0)
		return store_rc(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct store_chunk_val cv;
		char hex[SHA_HEX_LEN + 1];
		MDB_val ck = k, chv;
		int grc = mdb_get(txn, s->s_dbi[DB_CHUNK], &ck, &chv);

		if (grc != 0 && grc != MDB_NOTFOUND) {
			rc = grc;
			break;
		}
		if (grc == 0 && store_chunk_parse(&chv, &cv) == 0 && cv.cv_split)
			continue;
		op->ck_out->sk_orphans++;
		sha_hex(k.mv_size == SHA_LEN ? k.mv_data : (const uint8_t[SHA_LEN]){ 0 }, SHA_LEN, hex);
		store_problem(op->ck_out, "tail %s belongs to no split chunk", hex);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : store_rc(rc);
}

/*
 * A chunk a record references that is not there: missing, or, in a store
 * that holds keys it was not given, maybe sealed under one of them.
 */
static void
store_check_missing(const struct store *s, struct store_check *ck, const uint8_t *name)
{
	char hex[SHA_HEX_LEN + 1];

	sha_hex(name, SHA_LEN, hex);
	if (s->s_nmissing != 0) {
		ck->sk_locked++;
		store_problem(ck, "chunk %s is referenced but not found under the keys given: "
		    "not checked", hex);
		return;
	}
	ck->sk_missing++;
	store_problem(ck, "chunk %s is referenced but missing", hex);
}

static int
store_check_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_check_op *op = arg;
	struct store_check *ck = op->ck_out;
	size_t r = 0;
	MDB_cursor *c;
	MDB_val k, v;
	int rc, rv;

	rv = store_check_records(s, txn, op);
	if (rv != 0)
		return rv;
	if (op->ck_nrefs > 1)
		qsort(op->ck_refs, op->ck_nrefs, SHA_LEN, store_sha_cmp);
	rc = mdb_cursor_open(txn, s->s_dbi[DB_CHUNK], &c);
	if (rc != 0)
		return store_rc(rc);
	/* Both in memcmp order: one merge walk. */
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t expected = 0;
		while (r < op->ck_nrefs && k.mv_size == SHA_LEN &&
		    memcmp(op->ck_refs[r], k.mv_data, SHA_LEN) < 0) {
			store_check_missing(s, ck, op->ck_refs[r]);
			while (r + 1 < op->ck_nrefs && memcmp(op->ck_refs[r + 1], op->ck_refs[r], SHA_LEN) == 0)
				r++;
			r++;
		}
		while (r < op->ck_nrefs && k.mv_size == SHA_LEN &&
		    memcmp(op->ck_refs[r], k.mv_data, SHA_LEN) == 0) {
			expected++;
			r++;
		}
		store_check_chunk_at_rest(s, txn, op, &k, &v, expected);
	}
	mdb_cursor_close(c);
	for (; r < op->ck_nrefs; r++) {
		if (r > 0 && memcmp(op->ck_refs[r], op->ck_refs[r - 1], SHA_LEN) == 0)
			continue;
		store_check_missing(s, ck, op->ck_refs[r]);
	}
	if (rc != MDB_NOTFOUND)
		return store_rc(rc);
	return store_check_tails(s, txn, op);
}

int
store_check(struct store *s, struct store_check *ret_check, struct store_error *ret_err)
{
	struct store_check_op op = { 0 };
	struct store_check *ck;
	int rv;

	ret_err->se_msg[0] = '\0';
	ck = calloc(1, sizeof(*ck));
	if (ck == NULL)
		return -ENOMEM;
	op.ck_out = ck;
	/* Every key known, given or not, is listed, even with nothing sealed under it. */
	for (size_t i = 0; i < s->s_ring.sr_n; i++)
		store_check_key_of(s, ck, s->s_ring.sr_keys[i].sk_id);
	for (size_t i = 0; i < s->s_nmissing; i++)
		store_check_key_of(s, ck, s->s_missing[i]);
	op.ck_raw = malloc(STORE_CHUNK_MAX);
	op.ck_whole = malloc(STORE_CHUNK_MAX);
	rv = op.ck_raw == NULL || op.ck_whole == NULL ? -ENOMEM : zchunk_new(&op.ck_z);
	if (rv == 0)
		rv = seal_ctx_new(&op.ck_seal);
	if (rv == 0)
		rv = store_read(s, store_check_txn, &op);
	free(op.ck_raw);
	free(op.ck_whole);
	free(op.ck_refs);
	zchunk_free(op.ck_z);
	seal_ctx_free(op.ck_seal);
	if (rv != 0) {
		store_errorf(ret_err, "check stopped: %s", err_str(rv));
		free(ck);
		return rv;
	}
	*ret_check = *ck;
	free(ck);
	return 0;
}

bool
store_check_clean(const struct store_check *ck)
{
	return ck->sk_bad_chunks == 0 && ck->sk_missing == 0 && ck->sk_bad_refcounts == 0 &&
	    ck->sk_bad_records == 0 && ck->sk_locked == 0;
}

/* ---- stat ---- */

static int
store_stat_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_stats *st = arg;
	MDB_stat ms;
	MDB_envinfo info;
	int rc;

	rc = mdb_stat(txn, s->s_dbi[DB_CKPT], &ms);
	if (rc == 0)
		st->ss_checkpoints = ms.ms_entries;
	if (rc == 0)
		rc = mdb_stat(txn, s->s_dbi[DB_CHUNK], &ms);
	if (rc == 0)
		st->ss_chunks = ms.ms_entries;
	if (rc == 0)
		rc = mdb_env_stat(s->s_env, &ms);
	if (rc == 0)
		rc = mdb_env_info(s->s_env, &info);
	if (rc != 0)
		return store_rc(rc);
	st->ss_map_size = info.me_mapsize;
	st->ss_map_used = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	return 0;
}

/* A byte count that moves up and down in racing steps: "below 0" reads 0. */
static uint64_t
store_count_read(atomic_uint_fast64_t *v)
{
	uint64_t x = atomic_load(v);

	return x > INT64_MAX ? 0 : x;
}

int
store_stat(struct store *s, struct store_stats *ret_stats, struct store_error *ret_err)
{
	struct store_stats st = { 0 };
	int rv;

	ret_err->se_msg[0] = '\0';
	rv = store_read(s, store_stat_txn, &st);
	if (rv != 0)
		return rv;
	/*
	 * A delete may subtract a chunk before the thread that counted it adds
	 * it (the sweep after open, a PutChunks whose commit returned late):
	 * the counter then wraps for an instant. Reported as 0, not 2^64 - n.
	 */
	st.ss_chunk_bytes = store_count_read(&s->s_chunk_bytes);
	st.ss_chunk_raw_bytes = store_count_read(&s->s_chunk_raw_bytes);
	st.ss_writes = atomic_load(&s->s_writes);
	st.ss_write_commits = atomic_load(&s->s_commits);
	memcpy(st.ss_store_id, s->s_id, sizeof(st.ss_store_id));
	st.ss_counting = atomic_load(&s->s_sweep_counting);
	if (atomic_load(&s->s_reserve) != 0) {
		st.ss_disk_reserve = atomic_load(&s->s_reserve_want);
		st.ss_disk_reserve_short = !atomic_load(&s->s_reserve_held);
	}
	*ret_stats = st;
	return 0;
}

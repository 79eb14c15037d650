#include "nasc_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "err.h"
#include "methods.h"
#include "rate.h"
#include "zchunk.h"

/* ---- small checkpoints: one Store, chunks inline ---- */

/* The chunks of a small checkpoint, cut and hashed, and what goes inline. */
struct nasc_small {
	struct nasc_refs s_refs;
	uint32_t *s_sizes;                   /* compact list: size << 1 | hole */
	uint8_t (*s_sha)[SHA_LEN];           /* the data chunks' hashes, in order */
	size_t s_ndata;
	Ckpt__V1__Chunk *s_chunks, **s_cptr; /* inline */
	size_t s_ninline, s_known;           /* inline; held by the NAS already (cache) */
	uint8_t *s_out;                      /* compressed chunks */
	uint64_t s_wire;                     /* inline chunk bytes */
};

static void
nasc_small_free(struct nasc_small *m)
{
	nasc_refs_free(&m->s_refs);
	free(m->s_sizes);
	free(m->s_sha);
	free(m->s_chunks);
	free(m->s_cptr);
	free(m->s_out);
}

/* Is sha among the first k inline chunks? (k is small: a few dozen at most by default.) */
static bool
nasc_small_has(const struct nasc_small *m, const uint8_t *sha)
{
	for (size_t i = 0; i < m->s_ninline; i++)
		if (memcmp(m->s_chunks[i].sha256.data, sha, SHA_LEN) == 0)
			return true;
	return false;
}

/*
 * Cuts and hashes data, then compresses into m->s_chunks the data chunks to
 * send: every one, but those in base (the NAS held them a moment ago) and
 * repeats. Raw chunks point into data.
 */
static int
nasc_small_build(struct nasc *n, const uint8_t *data, size_t len, const struct nasc_base *base,
    struct nasc_small *m)
{
	struct zchunk *z = NULL;
	size_t off = 0, cap = 0, used = 0;
	bool own = false; /* z is n->n_small_z, locked */
	int rv = 0;

	while (off < len && rv == 0) {
		bool zero;
		size_t k = chunk_next(&n->n_chunking, data + off, len - off, &zero);
		rv = nasc_refs_add(&m->s_refs, (uint32_t)k, zero);
		cap += zero ? 0 : zchunk_bound(k);
		off += k;
	}
	if (rv != 0)
		return rv;
	m->s_sizes = malloc((m->s_refs.r_count != 0 ? m->s_refs.r_count : 1) * sizeof(*m->s_sizes));
	m->s_sha = malloc((m->s_refs.r_count != 0 ? m->s_refs.r_count : 1) * SHA_LEN);
	m->s_chunks = calloc(m->s_refs.r_count != 0 ? m->s_refs.r_count : 1, sizeof(*m->s_chunks));
	m->s_cptr = calloc(m->s_refs.r_count != 0 ? m->s_refs.r_count : 1, sizeof(*m->s_cptr));
	m->s_out = malloc(cap != 0 ? cap : 1);
	if (m->s_sizes == NULL || m->s_sha == NULL || m->s_chunks == NULL || m->s_cptr == NULL ||
	    m->s_out == NULL)
		return -ENOMEM;
	off = 0;
	for (size_t i = 0; i < m->s_refs.r_count && rv == 0; i++) {
		const Ckpt__V1__ChunkRef *r = &m->s_refs.r_refs[i];
		uint8_t *sha = m->s_sha[m->s_ndata];
		Ckpt__V1__Chunk *c;
		unsigned codec;
		size_t clen;

		m->s_sizes[i] = r->size << 1 | (r->zero ? 1u : 0u);
		if (r->zero) {
			off += r->size;
			continue;
		}
		sha256(data + off, r->size, sha);
		m->s_ndata++;
		if (nasc_base_has(base, sha)) {
			m->s_known++;
		} else if (!nasc_small_has(m, sha)) {
			/* The client's compressor, or one of this store's own when another store has it. */
			if (z == NULL && pthread_mutex_trylock(&n->n_small_mu) == 0) {
				own = true;
				if (n->n_small_z == NULL)
					rv = zchunk_new(&n->n_small_z);
				z = n->n_small_z;
			} else if (z == NULL) {
				rv = zchunk_new(&z);
			}
			if (rv == 0)
				rv = zchunk_compress(z, data + off, r->size, m->s_out + used, cap - used, &clen,
				    &codec);
			if (rv != 0)
				break;
			c = &m->s_chunks[m->s_ninline];
			ckpt__v1__chunk__init(c);
			c->sha256.data = sha;
			c->sha256.len = SHA_LEN;
			c->raw_size = r->size;
			c->codec = codec;
			if (codec == ZCHUNK_RAW) {
				c->data.data = (uint8_t *)data + off;
				c->data.len = r->size;
			} else {
				c->data.data = m->s_out + used;
				c->data.len = clen;
				used += clen;
			}
			m->s_wire += c->data.len;
			m->s_cptr[m->s_ninline++] = c;
		}
		off += r->size;
	}
	if (own)
		pthread_mutex_unlock(&n->n_small_mu);
	else
		zchunk_free(z);
	return rv;
}

/*
 * The data chunks of the component's previous checkpoint, when this client
 * remembers them (no Retrieve: that would be a round trip of its own).
 */
static int
nasc_small_base(struct nasc *n, const struct nasc_put *p, struct nasc_base *b)
{
	int rv;

	memset(b, 0, sizeof(*b));
	if (p->np_node == NULL || p->np_component == NULL)
		return 0;
	rv = nasc_base_cached(n, p, NULL, false, b);
	return rv < 0 ? rv : 0;
}

/*
 * One Store carrying the checkpoint's chunks; with use_cache, not those of
 * the remembered previous checkpoint (*ret_known: how many were left out).
 */
static int
nasc_store_inline(struct nasc *n, const struct nasc_put *p, const uint8_t *data, size_t len,
    bool use_cache, unsigned timeout_ms, struct nasc_info *ret_info, size_t *ret_known,
    struct rpc_error *ret_err)
{
	Ckpt__V1__StoreRequest sreq = CKPT__V1__STORE_REQUEST__INIT;
	Ckpt__V1__StoreReply *srep = NULL;
	struct nasc_small m;
	struct nasc_base base;
	uint8_t digest[SHA_LEN];
	size_t size;
	int rv = 0;

	ret_err->re_code = 0;
	ret_err->re_msg[0] = '\0';
	memset(&m, 0, sizeof(m));
	memset(&base, 0, sizeof(base));
	if (use_cache)
		rv = nasc_small_base(n, p, &base);
	if (rv == 0)
		rv = nasc_small_build(n, data, len, &base, &m);
	*ret_known = m.s_known;
	if (rv == 0)
		rv = digest_compact(m.s_sizes, m.s_refs.r_count, (const uint8_t *)m.s_sha, m.s_ndata,
		    digest);
	if (rv != 0)
		goto out;
	sreq.node = (char *)p->np_node;
	sreq.component = (char *)p->np_component;
	sreq.kind = (char *)(p->np_kind != NULL ? p->np_kind : "");
	sreq.seq = p->np_seq;
	sreq.epoch = p->np_epoch;
	sreq.size = len;
	sreq.digest.data = digest;
	sreq.digest.len = SHA_LEN;
	sreq.chunk_min = n->n_chunking.cp_min;
	sreq.chunk_avg = n->n_chunking.cp_avg;
	sreq.chunk_max = n->n_chunking.cp_max;
	sreq.n_chunk_sizes = m.s_refs.r_count;
	sreq.chunk_sizes = m.s_sizes;
	sreq.chunk_sha256.data = (uint8_t *)m.s_sha;
	sreq.chunk_sha256.len = m.s_ndata * SHA_LEN;
	sreq.n_inline_chunks = m.s_ninline;
	sreq.inline_chunks = m.s_cptr;
	size = ckpt__v1__store_request__get_packed_size(&sreq);
	atomic_fetch_add(&n->n_sent_bytes, size);
	/* Chunk bytes are uploads wherever they ride: under the cap as PutChunks are. */
	if (m.s_ninline != 0 && n->n_rate != NULL &&
	    (rv = rate_wait(n->n_rate, size, nasc_is_aborted, n)) == -ECANCELED) {
		ret_err->re_code = CKPT__V1__CODE__ABORTED;
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg),
		    "aborted while waiting for the upload rate cap");
	}
	if (rv == 0)
		rv = nasc_call(n, NAS_STORE, &sreq.base, timeout_ms, (ProtobufCMessage **)&srep, ret_err);
	if (rv == 0) {
		struct nasc_list l = { m.s_sizes, m.s_refs.r_count, len, digest, NULL, NULL };
		uint64_t hashed = 0;

		nasc_info_from_pb(srep->info, ret_info);
		rpc_reply_free(&srep->base);
		if (!ret_info->ni_has_digest) {
			memcpy(ret_info->ni_digest, digest, SHA_LEN);
			ret_info->ni_has_digest = true;
		}
		for (size_t i = 0; i < m.s_refs.r_count; i++)
			hashed += m.s_refs.r_refs[i].zero ? 0 : m.s_refs.r_refs[i].size;
		atomic_fetch_add(&n->n_store_bytes, len);
		atomic_fetch_add(&n->n_put_bytes, m.s_wire);
		atomic_fetch_add(&n->n_put_chunks, m.s_ninline);
		atomic_fetch_add(&n->n_dedup_chunks, m.s_known);
		atomic_fetch_add(&n->n_cut_bytes, len);
		atomic_fetch_add(&n->n_hashed_bytes, hashed);
		atomic_fetch_add(&n->n_inline_stores, 1);
		if (p->np_node != NULL && p->np_component != NULL)
			nasc_cache_put(n, p->np_node, p->np_component,
			    (const uint8_t(*)[SHA_LEN])m.s_sha, m.s_ndata, &l);
	}
out:
	if (rv != 0 && p->np_node != NULL && p->np_component != NULL)
		nasc_cache_drop(n, p->np_node, p->np_component);
	nasc_base_free(&base);
	nasc_small_free(&m);
	return rv;
}

/*
 * Whether a refused small store is worth another try: missing chunks (a
 * FAILED_PRECONDITION without a reason comes from a NAS older than reasons).
 * A stale epoch is final: every other path is refused it too, and a normal
 * store would upload every chunk first, orphans until the NAS's next start.
 */
static bool
nasc_small_again(int rv, const struct rpc_error *err)
{
	return rv != 0 && err->re_code == CKPT__V1__CODE__FAILED_PRECONDITION &&
	    !rpc_error_is(err, ERR_REASON_STALE_EPOCH);
}

/* A checkpoint of at most NASC_INLINE_MAX bytes (nasc.h: what is tried in which order). */
int
nasc_store_small(struct nasc *n, const struct nasc_put *p, const uint8_t *data, size_t len,
    unsigned timeout_ms, struct nasc_info *ret_info, struct rpc_error *ret_err)
{
	struct nasc_src src = { NULL, NULL, data, len, false, false, -1 };
	size_t known = 0;
	int rv;

	rv = nasc_store_inline(n, p, data, len, true, timeout_ms, ret_info, &known, ret_err);
	if (!nasc_small_again(rv, ret_err))
		return rv;
	/*
	 * A chunk remembered as held was deleted since: send every one. The only
	 * chunks a small store does not send are those (known): with every chunk
	 * inline, written in the commit's own transaction, a NAS that reads
	 * inline chunks has none to miss, whatever is deleted or swept meanwhile.
	 */
	if (known != 0) {
		atomic_fetch_add(&n->n_stale_retries, 1);
		rv = nasc_store_inline(n, p, data, len, false, timeout_ms, ret_info, &known, ret_err);
		if (!nasc_small_again(rv, ret_err))
			return rv;
	}
	/* Every chunk was inline and the NAS still misses some: it ignores inline chunks (an older one). */
	rv = nasc_store_normal(n, p, &src, NULL, timeout_ms, ret_info, ret_err);
	if (rv == 0)
		atomic_store(&n->n_no_inline, true);
	return rv;
}

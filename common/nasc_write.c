#include "nasc_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "digest.h"
#include "err.h"
#include "methods.h"
#include "pool.h"
#include "rate.h"
#include "util.h"
#include "zchunk.h"

/* ---- store ---- */

int
nasc_refs_add(struct nasc_refs *r, uint32_t size, bool zero)
{
	if (r->r_count == r->r_cap) {
		size_t cap = r->r_cap ? 2 * r->r_cap : 1024;
		void *a = realloc(r->r_refs, cap * sizeof(*r->r_refs));
		if (a == NULL)
			return -ENOMEM;
		r->r_refs = a;
		a = realloc(r->r_sha, cap * sizeof(*r->r_sha));
		if (a == NULL)
			return -ENOMEM;
		r->r_sha = a;
		r->r_cap = cap;
	}
	ckpt__v1__chunk_ref__init(&r->r_refs[r->r_count]);
	r->r_refs[r->r_count].size = size;
	r->r_refs[r->r_count].zero = zero;
	r->r_count++;
	return 0;
}

/*
 * Room for n entries in all, when memory allows (else nasc_refs_add() grows
 * it as it goes): a list whose size is known is not copied while it grows.
 */
static void
nasc_refs_reserve(struct nasc_refs *r, size_t n)
{
	void *a;

	if (r->r_cap >= n)
		return;
	if ((a = realloc(r->r_refs, n * sizeof(*r->r_refs))) == NULL)
		return;
	r->r_refs = a;
	if ((a = realloc(r->r_sha, n * sizeof(*r->r_sha))) == NULL)
		return;
	r->r_sha = a;
	r->r_cap = n;
}

void
nasc_refs_free(struct nasc_refs *r)
{
	free(r->r_refs);
	free(r->r_sha);
}

/*
 * One PutChunks being filled, or being sent. Chunks are compressed into it
 * as the windows go by; a full batch is sent by a thread of its own while
 * the next one fills, so hashing, the wire and the NAS's writes overlap.
 * Up to NASC_UP_SENDING batches are on their way at once: the NAS verifies
 * one while it commits the one before (each commit of a PutChunks waits
 * for its fdatasync(), about half of a W1 store's time when only one was
 * on its way: docs/benchmarks.md, "Full store: the profile").
 */
#define NASC_UP_SENDING 2
#define NASC_UP_BATCHES (NASC_UP_SENDING + 1)
/*
 * A PutChunks request, envelope and all, stays within NASC_BATCH bytes
 * (its message is then one size, whose freed buffer the next one reuses:
 * rpc.c, RPC_MSG_ROUND): at most this for the envelope (service, method,
 * deadline, the body's tag and length) and for the fields of each chunk
 * besides its bytes (hash, sizes, codec, tags and lengths).
 */
#define NASC_PUT_ENVELOPE 256u
#define NASC_PUT_CHUNK_FIELDS 64u

struct nasc_batch {
	uint8_t *b_out;                      /* compressed chunks (mapped: nasc_up_init()) */
	size_t b_out_cap, b_out_used;
	size_t b_wire;                       /* chunk bytes in it */
	Ckpt__V1__Chunk *b_chunks;
	Ckpt__V1__Chunk **b_cptr;
	uint8_t (*b_sha)[SHA_LEN];           /* their hashes */
	size_t b_n, b_cap;
	const uint8_t *b_lo;                 /* lowest source byte sent in place, or NULL */
	/* While it is sent: */
	struct nasc_up *b_up;
	struct pool_job b_job;
	bool b_sending;                      /* b_job was submitted */
	atomic_bool b_packed;                /* its request holds a copy of its bytes */
	int b_rv;
	struct rpc_error b_err;
};

/* Work memory of one store, allocated once. */
struct nasc_up {
	struct nasc *u_nasc;
	struct nasc_base u_base;
	struct zchunk *u_z;
	unsigned u_timeout_ms;
	struct rpc_error *u_err;
	struct nasc_batch u_batch[NASC_UP_BATCHES]; /* filling: u_batch[u_cur]; the others may be sending */
	unsigned u_cur;
	/*
	 * Held (a store of bytes in memory from its base: hints or
	 * fingerprints): the chunks to send stay in the batch as the windows go
	 * by instead of going out at each window's end, so that, when they all
	 * fit (NASC_STORE_INLINE), they go inline in the Store: one round trip
	 * and one commit, not a PutChunks and a Store with a commit each.
	 */
	bool u_hold;
	bool u_flushed;                      /* a PutChunks went out: nothing goes inline */
	size_t *u_offs;                      /* per chunk of the window: offset in it */
	size_t *u_idx;                       /* per chunk of the window: index in refs */
	ProtobufCBinaryData *u_hashes;       /* per chunk of the window */
	bool u_in_place;                     /* the source's bytes stay put until the end */
	/* Fingerprints of a whole read from memory, for the next store's walk (bcache.h). */
	bool u_fp_on;
	uint8_t (*u_fp)[BCACHE_FP_LEN];
	uint64_t *u_head;
	size_t u_fp_cap;
};

/* The batch's request is in its message: the source pages it was sent from may go. */
static void
nasc_batch_packed(void *arg)
{
	struct nasc_batch *b = arg;

	atomic_store(&b->b_packed, true);
}

static void
nasc_batch_send(void *arg)
{
	Ckpt__V1__PutChunksRequest preq = CKPT__V1__PUT_CHUNKS_REQUEST__INIT;
	Ckpt__V1__PutChunksReply *prep = NULL;
	struct nasc_batch *b = arg;
	struct nasc *n = b->b_up->u_nasc;
	struct rpc_packed packed = { nasc_batch_packed, b };
	size_t size;

	preq.n_chunks = b->b_n;
	preq.chunks = b->b_cptr;
	size = ckpt__v1__put_chunks_request__get_packed_size(&preq);
	atomic_fetch_add(&n->n_sent_bytes, size);
	/* The wait is not counted in the call's deadline: it is the cap's, not the NAS's. */
	b->b_rv = n->n_rate != NULL ? rate_wait(n->n_rate, size, nasc_is_aborted, n) : 0;
	if (b->b_rv == -ECANCELED) {
		b->b_err.re_code = CKPT__V1__CODE__ABORTED;
		snprintf(b->b_err.re_msg, sizeof(b->b_err.re_msg),
		    "aborted while waiting for the upload rate cap");
	}
	if (b->b_rv == 0)
		b->b_rv = nasc_call_packed(n, NAS_PUT_CHUNKS, &preq.base, &packed,
		    b->b_up->u_timeout_ms, (ProtobufCMessage **)&prep, &b->b_err);
	if (b->b_rv == 0) {
		atomic_fetch_add(&n->n_put_bytes, b->b_wire);
		atomic_fetch_add(&n->n_put_chunks, b->b_n);
		rpc_reply_free(&prep->base);
	}
}

/* Waits for the batch's PutChunks, if one is on its way; empties the batch. */
static int
nasc_batch_wait(struct nasc_up *u, struct nasc_batch *b)
{
	int rv = 0;

	if (b->b_sending) {
		pool_wait(u->u_nasc->n_pool, &b->b_job, true);
		b->b_sending = false;
		rv = b->b_rv;
		if (rv != 0 && u->u_err->re_code == 0 && u->u_err->re_msg[0] == '\0')
			*u->u_err = b->b_err;
	}
	b->b_n = 0;
	b->b_out_used = 0;
	b->b_wire = 0;
	b->b_lo = NULL;
	return rv;
}

/* The batch after the current one in the ring: the one sent longest ago, if any is on its way. */
static struct nasc_batch *
nasc_up_oldest(struct nasc_up *u)
{
	return &u->u_batch[(u->u_cur + 1) % NASC_UP_BATCHES];
}

/*
 * Sends the batch being filled (a job of the pool) and makes the next one
 * of the ring current, once its own PutChunks (the oldest on its way) has
 * been answered.
 */
static int
nasc_up_flush(struct nasc_up *u)
{
	struct nasc_batch *b = &u->u_batch[u->u_cur], *other = nasc_up_oldest(u);

	if (b->b_n == 0)
		return 0;
	b->b_up = u;
	atomic_store(&b->b_packed, false);
	b->b_rv = 0;
	b->b_err.re_code = 0;
	b->b_err.re_msg[0] = '\0';
	pool_submit(u->u_nasc->n_pool, &b->b_job, nasc_batch_send, b);
	b->b_sending = true;
	u->u_flushed = true;
	u->u_cur = (u->u_cur + 1) % NASC_UP_BATCHES;
	return nasc_batch_wait(u, other);
}

/* Sends what is left and waits for every PutChunks. */
static int
nasc_up_finish(struct nasc_up *u)
{
	int rv = nasc_up_flush(u);

	for (int i = 0; i < NASC_UP_BATCHES; i++) {
		int rv2 = nasc_batch_wait(u, &u->u_batch[i]);
		if (rv == 0)
			rv = rv2;
	}
	return rv;
}

/* Compresses one missing chunk into the pending PutChunks (sent when full). */
static int
nasc_up_add(struct nasc_up *u, const ProtobufCBinaryData *hash, const uint8_t *raw, size_t len)
{
	size_t bound = zchunk_bound(len), clen;
	struct nasc_batch *b = &u->u_batch[u->u_cur];
	Ckpt__V1__Chunk *c;
	unsigned codec;
	int rv = 0;

	if (b->b_n == b->b_cap || b->b_out_used + bound > b->b_out_cap ||
	    NASC_PUT_ENVELOPE + b->b_wire + (b->b_n + 1) * NASC_PUT_CHUNK_FIELDS + len >
	        NASC_BATCH) {
		rv = nasc_up_flush(u);
		b = &u->u_batch[u->u_cur];
	}
	if (rv != 0)
		return rv;
	rv = zchunk_compress(u->u_z, raw, len, b->b_out + b->b_out_used,
	    b->b_out_cap - b->b_out_used, &clen, &codec);
	if (rv != 0)
		return rv;
	c = &b->b_chunks[b->b_n];
	ckpt__v1__chunk__init(c);
	/* The window moves on before the batch is sent: keep copies (of the bytes too, from a reader). */
	memcpy(b->b_sha[b->b_n], hash->data, SHA_LEN);
	c->sha256.data = b->b_sha[b->b_n];
	c->sha256.len = SHA_LEN;
	c->raw_size = (uint32_t)len;
	c->codec = codec;
	if (codec == ZCHUNK_RAW && u->u_in_place) {
		/* Sent from where it lies: the store waits for every PutChunks before it returns. */
		c->data.data = (uint8_t *)raw;
		c->data.len = len;
		if (b->b_lo == NULL || raw < b->b_lo)
			b->b_lo = raw;
	} else {
		if (codec == ZCHUNK_RAW) {
			memcpy(b->b_out + b->b_out_used, raw, len);
			clen = len;
		}
		c->data.data = b->b_out + b->b_out_used;
		c->data.len = clen;
		b->b_out_used += clen;
	}
	b->b_wire += c->data.len;
	b->b_cptr[b->b_n++] = c;
	return 0;
}

/* One HaveChunks for the chunks refs[first, last) of a window, then the missing ones. */
static int
nasc_store_window(struct nasc_up *u, const uint8_t *buf, const struct nasc_refs *r,
    size_t first, size_t last)
{
	Ckpt__V1__HaveChunksRequest hreq = CKPT__V1__HAVE_CHUNKS_REQUEST__INIT;
	Ckpt__V1__HaveChunksReply *hrep = NULL;
	size_t count = 0, off = 0;
	int rv;

	/* Holes and base chunks are not asked for: u_idx maps the asked chunks back to refs. */
	for (size_t i = first; i < last; i++) {
		if (!r->r_refs[i].zero && nasc_base_has(&u->u_base, r->r_sha[i])) {
			atomic_fetch_add(&u->u_nasc->n_dedup_chunks, 1);
		} else if (!r->r_refs[i].zero) {
			u->u_hashes[count].data = (uint8_t *)r->r_sha[i];
			u->u_hashes[count].len = SHA_LEN;
			u->u_offs[count] = off;
			u->u_idx[count++] = i;
		}
		off += r->r_refs[i].size;
	}
	if (count == 0)
		return 0;
	hreq.n_sha256 = count;
	hreq.sha256 = u->u_hashes;
	atomic_fetch_add(&u->u_nasc->n_sent_bytes, ckpt__v1__have_chunks_request__get_packed_size(&hreq));
	rv = nasc_call(u->u_nasc, NAS_HAVE_CHUNKS, &hreq.base, u->u_timeout_ms,
	    (ProtobufCMessage **)&hrep, u->u_err);
	if (rv != 0)
		return rv;
	atomic_fetch_add(&u->u_nasc->n_dedup_chunks, count - hrep->n_missing);
	for (size_t i = 0; i < hrep->n_missing && rv == 0; i++) {
		uint32_t k = hrep->missing[i];
		if (k >= count || (i > 0 && k <= hrep->missing[i - 1])) {
			rv = -EPROTO;
			snprintf(u->u_err->re_msg, sizeof(u->u_err->re_msg),
			    "NAS answered a bad chunk index %u", k);
			break;
		}
		rv = nasc_up_add(u, &u->u_hashes[k], buf + u->u_offs[k], r->r_refs[u->u_idx[k]].size);
	}
	rpc_reply_free(&hrep->base);
	/*
	 * A batch goes out when full, and at the end of a window if fewer than
	 * NASC_UP_SENDING are on their way: the NAS writes while the next window
	 * is hashed, and little is left to send after the last one.
	 */
	if (rv == 0 && (!u->u_hold || u->u_flushed) && u->u_batch[u->u_cur].b_n != 0 &&
	    (!nasc_up_oldest(u)->b_sending || pool_done(u->u_nasc->n_pool, &nasc_up_oldest(u)->b_job)))
		rv = nasc_up_flush(u);
	return rv;
}

static int
nasc_read_full(nasc_read_fn rd, void *arg, uint8_t *buf, size_t cap, size_t *ret_len)
{
	size_t got = 0;
	while (got < cap) {
		ssize_t k = rd(arg, buf + got, cap - got);
		if (k < 0)
			return (int)k;
		if (k == 0)
			break;
		got += (size_t)k;
	}
	*ret_len = got;
	return 0;
}

static int
nasc_up_init(struct nasc_up *u, struct nasc *n, unsigned timeout_ms, struct rpc_error *err)
{
	/* The most data chunks one window can hold. */
	size_t per_window = NASC_BATCH / n->n_chunking.cp_floor + 1;

	memset(u, 0, sizeof(*u));
	u->u_nasc = n;
	u->u_timeout_ms = timeout_ms;
	u->u_err = err;
	for (int i = 0; i < NASC_UP_BATCHES; i++) {
		struct nasc_batch *b = &u->u_batch[i];
		b->b_cap = NASC_PUT_MAX;
		b->b_out_cap = NASC_BATCH + zchunk_bound(n->n_chunking.cp_max);
		/*
		 * Mapped, not malloc'ed: its pages become resident only where
		 * chunks are compressed or copied into it (none for a file of
		 * random bytes, sent in place), and no allocator fills it
		 * (MALLOC_PERTURB_, set by meson test, made all three resident:
		 * 12 MiB of ckptctl put -i's peak in test_mem).
		 */
		b->b_out = mmap(NULL, b->b_out_cap, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (b->b_out == MAP_FAILED)
			b->b_out = NULL;
		b->b_chunks = calloc(b->b_cap, sizeof(*b->b_chunks));
		b->b_cptr = calloc(b->b_cap, sizeof(*b->b_cptr));
		b->b_sha = calloc(b->b_cap, sizeof(*b->b_sha));
		if (b->b_out == NULL || b->b_chunks == NULL || b->b_cptr == NULL || b->b_sha == NULL)
			return -ENOMEM;
	}
	u->u_offs = calloc(per_window, sizeof(*u->u_offs));
	u->u_idx = calloc(per_window, sizeof(*u->u_idx));
	u->u_hashes = calloc(per_window, sizeof(*u->u_hashes));
	if (u->u_offs == NULL || u->u_idx == NULL || u->u_hashes == NULL)
		return -ENOMEM;
	return zchunk_new(&u->u_z);
}

static void
nasc_up_free(struct nasc_up *u)
{
	nasc_base_free(&u->u_base);
	zchunk_free(u->u_z);
	for (int i = 0; i < NASC_UP_BATCHES; i++) {
		struct nasc_batch *b = &u->u_batch[i];
		/* A store that failed early may have one on its way: not begun, it is dropped. */
		if (b->b_sending)
			pool_wait(u->u_nasc->n_pool, &b->b_job, false);
		b->b_sending = false;
		if (b->b_out != NULL)
			munmap(b->b_out, b->b_out_cap);
		free(b->b_chunks);
		free(b->b_cptr);
		free(b->b_sha);
	}
	free(u->u_offs);
	free(u->u_idx);
	free(u->u_hashes);
	free(u->u_fp);
	free(u->u_head);
}

/*
 * Reads the checkpoint window by window: the chunks cut in a window are
 * hashed, checked with the NAS and the missing ones sent before the next
 * window is read. A window ends at the last cut point; its tail starts the
 * next one, so chunk boundaries do not depend on the window size.
 */
/* The SHA-256 of refs[first, last) (holes excepted), whose bytes start at win. */
struct nasc_hash_job {
	struct nasc_refs *h_refs;
	size_t h_first, h_last;
	const uint8_t *h_win;
};

static void
nasc_hash_run(void *arg)
{
	struct nasc_hash_job *j = arg;
	const uint8_t *p = j->h_win;

	for (size_t i = j->h_first; i < j->h_last; i++) {
		if (!j->h_refs->r_refs[i].zero)
			sha256(p, j->h_refs->r_refs[i].size, j->h_refs->r_sha[i]);
		p += j->h_refs->r_refs[i].size;
	}
}

/*
 * Hashes the chunks cut in a window (len bytes from win, refs from first
 * on): the second half of its bytes on a worker of the pool.
 */
static void
nasc_hash_chunks(struct pool *pool, struct nasc_refs *refs, size_t first, const uint8_t *win,
    size_t len)
{
	struct nasc_hash_job a = { refs, first, refs->r_count, win }, b = a;
	struct pool_job job = { 0 };
	size_t off = 0, i = first;

	for (; i < refs->r_count && off < len / 2; i++)
		off += refs->r_refs[i].size;
	a.h_last = i;
	b.h_first = i;
	b.h_win = win + off;
	if (b.h_first == b.h_last) {
		a.h_last = refs->r_count;
		nasc_hash_run(&a);
		return;
	}
	pool_submit(pool, &job, nasc_hash_run, &b);
	nasc_hash_run(&a);
	pool_wait(pool, &job, true);
}

/* Cuts of buf[from, have) as if a chunk started at from (the second half of a window). */
struct nasc_cuts {
	const struct chunk_params *c_cp;
	const uint8_t *c_buf;
	size_t c_from, c_have;
	bool c_eof;
	size_t *c_end;       /* offset where each chunk ends */
	bool *c_zero;
	size_t c_n, c_cap;
	bool c_failed;
};

static void
nasc_cuts_run(void *arg)
{
	struct nasc_cuts *c = arg;
	size_t pos = c->c_from;

	while (pos < c->c_have && (c->c_eof || c->c_have - pos >= c->c_cp->cp_max)) {
		bool zero;
		size_t k = chunk_next(c->c_cp, c->c_buf + pos, c->c_have - pos, &zero);
		if (c->c_n == c->c_cap) {
			size_t cap = c->c_cap != 0 ? 2 * c->c_cap : 1024;
			size_t *e = realloc(c->c_end, cap * sizeof(*e));
			bool *z = e != NULL ? realloc(c->c_zero, cap * sizeof(*z)) : NULL;
			if (e != NULL)
				c->c_end = e;
			if (z == NULL) {
				c->c_failed = true;
				break;
			}
			c->c_zero = z;
			c->c_cap = cap;
		}
		pos += k;
		c->c_end[c->c_n] = pos;
		c->c_zero[c->c_n++] = zero;
	}
}

/*
 * The chunks of a window (have bytes; the data ends with it when eof), added
 * to refs; *ret_pos: where the last final one ends. Cutting is sequential by
 * nature, but it finds its way back: a second thread cuts the second half as
 * if a chunk began in its middle, and once the first thread ends a chunk
 * where the second ended one, every later cut is the second's. The cuts are
 * exactly those of one thread (chunk boundaries must not depend on how the
 * bytes were read, or nothing would deduplicate).
 */
static int
nasc_cut_window(struct pool *pool, const struct chunk_params *cp, const uint8_t *win,
    size_t have, bool eof, struct nasc_refs *refs, size_t *ret_pos)
{
	struct nasc_cuts b = { cp, win, have / 2, have, eof, NULL, NULL, 0, 0, false };
	struct pool_job job = { 0 };
	size_t pos = 0, j = 0;
	bool threaded = false, joined = false;
	int rv = 0;

	if (have >= 4 * (size_t)cp->cp_max) {
		pool_submit(pool, &job, nasc_cuts_run, &b);
		threaded = true;
	}
	while (rv == 0 && pos < have && (eof || have - pos >= cp->cp_max)) {
		bool zero;
		size_t k;

		if (threaded && pos >= b.c_from) {
			if (!joined) {
				pool_wait(pool, &job, true);
				joined = true;
				if (b.c_failed) {
					rv = -ENOMEM;
					break;
				}
			}
			while (j < b.c_n && b.c_end[j] <= pos)
				j++;
			if (j > 0 && b.c_end[j - 1] == pos) {
				/* In step: the rest are the second thread's cuts. */
				for (; j < b.c_n && rv == 0; j++) {
					rv = nasc_refs_add(refs, (uint32_t)(b.c_end[j] - pos), b.c_zero[j]);
					pos = b.c_end[j];
				}
				break;
			}
		}
		k = chunk_next(cp, win + pos, have - pos, &zero);
		rv = nasc_refs_add(refs, (uint32_t)k, zero);
		pos += k;
	}
	if (threaded && !joined)
		pool_wait(pool, &job, false); /* not needed: dropped if not begun */
	free(b.c_end);
	free(b.c_zero);
	*ret_pos = pos;
	return rv;
}

/*
 * Drops the pages of a mapped source below off that no PutChunks still
 * sends from (*released: where the last drop ended): those of a batch on
 * its way go once its request is packed (a copy in its message), not when
 * it is answered (ckptctl put -i of 256 MiB: 16 MiB of the file resident
 * at the peak before, the window and the batch being filled now). A
 * dropped page of a file mapping is read again from the file if touched
 * (a request sent again is packed again): this only bounds the resident
 * set, by the window and the batch being filled, not by the file.
 */
static void
nasc_src_release(const struct nasc_src *src, const struct nasc_up *u, size_t off,
    size_t *released)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), lim = off;

	for (int i = 0; i < NASC_UP_BATCHES; i++) {
		const struct nasc_batch *b = &u->u_batch[i];
		const uint8_t *lo = b->b_lo;
		if (b->b_sending && atomic_load(&b->b_packed))
			continue;
		if (b->b_n != 0 && lo != NULL && (size_t)(lo - src->s_data) < lim)
			lim = (size_t)(lo - src->s_data);
	}
	lim -= lim % page;
	if (!src->s_mapped || lim <= *released)
		return;
	(void)madvise((void *)(src->s_data + *released), lim - *released, MADV_DONTNEED);
	*released = lim;
}

/* ---- base cache: fingerprints (bcache.h) ---- */

/* Room for cap fingerprints and heads in u (u_fp, u_head). -ENOMEM. */
static int
nasc_fp_reserve(struct nasc_up *u, size_t cap)
{
	void *x;

	if ((x = realloc(u->u_fp, cap * sizeof(*u->u_fp))) == NULL)
		return -ENOMEM;
	u->u_fp = x;
	if ((x = realloc(u->u_head, cap * sizeof(*u->u_head))) == NULL)
		return -ENOMEM;
	u->u_head = x;
	u->u_fp_cap = cap;
	return 0;
}

/* Fingerprints of refs[fj_first, fj_last), whose bytes start at offset fj_off of the source. */
struct nasc_fp_job {
	struct nasc_up *fj_up;
	const struct nasc_src *fj_src;
	const struct nasc_refs *fj_refs;
	size_t fj_first, fj_last;
	uint64_t fj_off;
};

static void
nasc_fp_run(void *arg)
{
	struct nasc_fp_job *j = arg;
	uint64_t off = j->fj_off;

	for (size_t i = j->fj_first; i < j->fj_last; i++) {
		uint32_t size = j->fj_refs->r_refs[i].size;
		bcache_fp(j->fj_src->s_data, j->fj_src->s_len, off, size, j->fj_up->u_fp[i],
		    &j->fj_up->u_head[i]);
		off += size;
	}
}

/*
 * The fingerprints of the chunks refs[first, r_count) cut in a window of a
 * source in memory (starting at off): half of them on a worker of the pool.
 * They cover CHUNK_LOOKAHEAD bytes past each chunk, read from the source.
 */
static int
nasc_fp_window(struct nasc *n, struct nasc_up *u, const struct nasc_src *src,
    const struct nasc_refs *refs, size_t first, uint64_t off)
{
	struct nasc_fp_job a = { u, src, refs, first, refs->r_count, off }, b = a;
	struct pool_job job = { 0 };
	uint64_t len = 0, half = 0;
	size_t i;

	if (refs->r_count > u->u_fp_cap) {
		size_t cap = u->u_fp_cap != 0 ? u->u_fp_cap : 1024;
		while (cap < refs->r_count)
			cap *= 2;
		if (nasc_fp_reserve(u, cap) != 0)
			return -ENOMEM;
	}
	for (i = first; i < refs->r_count; i++)
		len += refs->r_refs[i].size;
	for (i = first; i < refs->r_count && 2 * half < len; i++)
		half += refs->r_refs[i].size;
	a.fj_last = i;
	b.fj_first = i;
	b.fj_off = off + half;
	if (b.fj_first < b.fj_last)
		pool_submit(n->n_pool, &job, nasc_fp_run, &b);
	nasc_fp_run(&a);
	if (b.fj_first < b.fj_last)
		pool_wait(n->n_pool, &job, true);
	atomic_fetch_add(&n->n_fp_bytes, len);
	return 0;
}

/*
 * Reads the checkpoint window by window: the chunks cut in a window are
 * hashed, checked with the NAS and the missing ones sent (a PutChunks on its
 * way while the next window is hashed). From a reader, a window ends at the
 * last cut point and its tail starts the next one, so chunk boundaries do
 * not depend on the window size. From memory, windows are read in place.
 * The bytes are read once: the record's digest comes from the chunk list.
 */
static int
nasc_store_chunks(struct nasc *n, struct nasc_up *u, const struct nasc_src *src, uint8_t *buf,
    struct nasc_refs *refs, struct sha_ctx *plain, uint64_t *ret_total, struct rpc_error *err)
{
	const struct chunk_params *cp = &n->n_chunking;
	size_t have = 0, off = 0, released = 0;
	uint64_t total = 0;
	bool eof = false;
	int rv = 0;

	while (rv == 0) {
		size_t got = 0, pos = 0, first = refs->r_count;
		const uint8_t *win = buf;

		if (src->s_data != NULL) {
			win = src->s_data + off;
			have = src->s_len - off < NASC_BATCH ? src->s_len - off : NASC_BATCH;
			eof = off + have == src->s_len;
			/* A file's pages mapped in one call, not a fault per 16 of them. */
			if (src->s_mapped)
				util_prefault_read(win, have);
		} else if (!eof) {
			rv = nasc_read_full(src->s_rd, src->s_rd_arg, buf + have, NASC_BATCH - have, &got);
			if (rv != 0) {
				snprintf(err->re_msg, sizeof(err->re_msg), "reading checkpoint: %s",
				    err_str(rv));
				break;
			}
			eof = have + got < NASC_BATCH;
			have += got;
		}
		if (have == 0)
			break;
		/* Cut points first; then the chunk digests. */
		rv = nasc_cut_window(n->n_pool, cp, win, have, eof, refs, &pos);
		if (rv == 0) {
			nasc_hash_chunks(n->n_pool, refs, first, win, pos);
			if (plain != NULL)
				sha_update(plain, win, pos);
			total += pos;
			if (u->u_fp_on && src->s_data != NULL)
				rv = nasc_fp_window(n, u, src, refs, first, off);
			if (rv == 0)
				rv = nasc_store_window(u, win, refs, first, refs->r_count);
		}
		if (src->s_data != NULL) {
			off += pos;
			if (rv == 0)
				nasc_src_release(src, u, off, &released);
			if (eof && pos == have)
				break;
			continue;
		}
		memmove(buf, buf + pos, have - pos);
		have -= pos;
		if (eof && have == 0)
			break;
	}
	if (rv == 0)
		rv = nasc_up_finish(u);
	if (rv == 0) {
		uint64_t hashed = 0;
		for (size_t i = 0; i < refs->r_count; i++)
			hashed += refs->r_refs[i].zero ? 0 : refs->r_refs[i].size;
		atomic_fetch_add(&n->n_cut_bytes, total);
		atomic_fetch_add(&n->n_hashed_bytes, hashed);
		*ret_total = total;
	}
	return rv;
}

/* ---- store from hints ---- */

static int
nasc_range_cmp(const void *a_, const void *b_)
{
	const struct nasc_range *a = a_, *b = b_;
	return a->nr_off < b->nr_off ? -1 : a->nr_off > b->nr_off;
}

/*
 * The ranges of h clipped to len, sorted and merged (malloc'ed, free() it;
 * *ret_n may be 0). -E2BIG beyond NASC_RANGES_MAX, -ENOMEM.
 */
static int
nasc_ranges_norm(const struct nasc_hints *h, uint64_t len, struct nasc_range **ret_r,
    size_t *ret_n)
{
	struct nasc_range *r;
	size_t n = 0, m = 0;

	if (h->nh_count > NASC_RANGES_MAX)
		return -E2BIG;
	r = malloc((h->nh_count != 0 ? h->nh_count : 1) * sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < h->nh_count; i++) {
		const struct nasc_range *x = &h->nh_ranges[i];
		if (x->nr_len == 0 || x->nr_off >= len)
			continue;
		r[n].nr_off = x->nr_off;
		r[n++].nr_len = x->nr_len < len - x->nr_off ? x->nr_len : len - x->nr_off;
	}
	qsort(r, n, sizeof(*r), nasc_range_cmp);
	for (size_t i = 0; i < n; i++) {
		if (m > 0 && r[i].nr_off <= r[m - 1].nr_off + r[m - 1].nr_len) {
			uint64_t end = r[i].nr_off + r[i].nr_len;
			if (end > r[m - 1].nr_off + r[m - 1].nr_len)
				r[m - 1].nr_len = end - r[m - 1].nr_off;
			continue;
		}
		r[m++] = r[i];
	}
	*ret_r = r;
	*ret_n = m;
	return 0;
}

/* The chunks of a hinted store that are new (cut again): hashed on two threads. */
struct nasc_fresh {
	size_t *f_idx;        /* index in refs */
	uint64_t *f_off;      /* offset in the checkpoint */
	size_t f_n, f_cap;
};

struct nasc_fresh_job {
	struct nasc_refs *fj_refs;
	const struct nasc_fresh *fj_fresh;
	const uint8_t *fj_buf;
	uint64_t fj_len;
	struct nasc_up *fj_up;  /* with fj_fp: fingerprints into u_fp, u_head */
	bool fj_fp;
	size_t fj_first, fj_last;
};

static void
nasc_fresh_run(void *arg)
{
	struct nasc_fresh_job *j = arg;

	for (size_t i = j->fj_first; i < j->fj_last; i++) {
		size_t k = j->fj_fresh->f_idx[i];
		if (!j->fj_refs->r_refs[k].zero)
			sha256(j->fj_buf + j->fj_fresh->f_off[i], j->fj_refs->r_refs[k].size,
			    j->fj_refs->r_sha[k]);
		if (j->fj_fp)
			bcache_fp(j->fj_buf, j->fj_len, j->fj_fresh->f_off[i],
			    j->fj_refs->r_refs[k].size, j->fj_up->u_fp[k], &j->fj_up->u_head[k]);
	}
}

static int
nasc_fresh_add(struct nasc_fresh *f, size_t idx, uint64_t off)
{
	if (f->f_n == f->f_cap) {
		size_t cap = f->f_cap != 0 ? 2 * f->f_cap : 256;
		void *a = realloc(f->f_idx, cap * sizeof(*f->f_idx));
		if (a == NULL)
			return -ENOMEM;
		f->f_idx = a;
		a = realloc(f->f_off, cap * sizeof(*f->f_off));
		if (a == NULL)
			return -ENOMEM;
		f->f_off = a;
		f->f_cap = cap;
	}
	f->f_idx[f->f_n] = idx;
	f->f_off[f->f_n++] = off;
	return 0;
}

/*
 * The chunk list of buf (len bytes) from the base's list (u->u_base.b_sizes)
 * and the changed ranges r (sorted, merged): walks the cut points; a chunk
 * of the base is taken as it is where the walk stands on one of the base's
 * cut points and no changed byte lies within the chunker's reach from it
 * (cp_max bytes, or to the end when the length did not change). Elsewhere it
 * cuts (chunk_next) and hashes. *ret_cut: bytes cut again.
 */
static int
nasc_hinted_refs(struct nasc *n, struct nasc_up *u, const uint8_t *buf, uint64_t len,
    const struct nasc_range *r, size_t nr, struct nasc_refs *refs, struct nasc_fresh *fresh,
    uint64_t *ret_cut)
{
	const struct chunk_params *cp = &n->n_chunking;
	const struct nasc_base *b = &u->u_base;
	uint64_t s = 0, boff = 0, cut = 0;
	uint64_t same = b->b_len < len ? b->b_len : len; /* bytes the base may share */
	size_t k = 0, kd = 0, ri = 0;                     /* base chunk, its data ordinal, range */
	int rv = 0;

	/* About the base's count, and what grew at the average size: the rest as it comes. */
	nasc_refs_reserve(refs, b->b_nchunks + 2 * nr + (len > b->b_len ? (len - b->b_len) /
	    cp->cp_avg : 0) + 16);

	while (rv == 0 && s < len) {
		uint64_t reach = 0;
		bool reuse;

		/* The base's chunk that starts at or after s. */
		while (k < b->b_nchunks && boff < s) {
			kd += (b->b_sizes[k] & 1u) == 0;
			boff += b->b_sizes[k++] >> 1;
		}
		while (ri < nr && r[ri].nr_off + r[ri].nr_len <= s)
			ri++;
		/* What decides the base's chunk at s: its bytes and CHUNK_LOOKAHEAD more. */
		if (k < b->b_nchunks) {
			reach = (b->b_sizes[k] >> 1) + (uint64_t)CHUNK_LOOKAHEAD;
			reach = len - s < reach ? len - s : reach;
		}
		reuse = k < b->b_nchunks && boff == s &&
		    (len == b->b_len || s + cp->cp_max <= same) &&
		    (ri == nr || r[ri].nr_off >= s + reach);
		if (reuse) {
			uint32_t v = b->b_sizes[k];
			rv = nasc_refs_add(refs, v >> 1, (v & 1u) != 0);
			if (rv == 0 && (v & 1u) == 0)
				memcpy(refs->r_sha[refs->r_count - 1], b->b_sha[kd], SHA_LEN);
			s += v >> 1;
			continue;
		}
		{
			bool zero;
			size_t c = chunk_next(cp, buf + s, (size_t)(len - s), &zero);
			rv = nasc_refs_add(refs, (uint32_t)c, zero);
			if (rv == 0)
				rv = nasc_fresh_add(fresh, refs->r_count - 1, s);
			s += c;
			cut += c;
		}
	}
	*ret_cut = cut;
	return rv;
}

/*
 * The rest of a store from a list already made (refs, from a base's list):
 * the new chunks (fresh) hashed on two threads, split by bytes (fp: with
 * their fingerprints, into u_fp and u_head); then the windows' HaveChunks
 * and PutChunks as usual, which skip the base's chunks without asking.
 * *ret_hashed: bytes hashed.
 */
static int
nasc_store_fresh(struct nasc *n, struct nasc_up *u, const struct nasc_src *src,
    struct nasc_refs *refs, const struct nasc_fresh *f, bool fp, uint64_t *ret_hashed)
{
	const struct nasc_fresh fresh = *f;
	struct nasc_fresh_job ja, jb;
	struct pool_job job = { 0 };
	uint64_t hashed = 0, acc = 0;
	size_t split = 0, per_window = NASC_BATCH / n->n_chunking.cp_floor + 1;
	int rv = 0;

	for (size_t i = 0; i < fresh.f_n; i++)
		if (!refs->r_refs[fresh.f_idx[i]].zero)
			hashed += refs->r_refs[fresh.f_idx[i]].size;
	for (split = 0; split < fresh.f_n && 2 * acc < hashed; split++)
		if (!refs->r_refs[fresh.f_idx[split]].zero)
			acc += refs->r_refs[fresh.f_idx[split]].size;
	ja = (struct nasc_fresh_job){ refs, &fresh, src->s_data, src->s_len, u, fp, 0, split };
	jb = (struct nasc_fresh_job){ refs, &fresh, src->s_data, src->s_len, u, fp, split, fresh.f_n };
	if (split < fresh.f_n) {
		pool_submit(n->n_pool, &job, nasc_fresh_run, &jb);
		nasc_fresh_run(&ja);
		pool_wait(n->n_pool, &job, true);
	} else {
		ja.fj_last = fresh.f_n;
		nasc_fresh_run(&ja);
	}
	/*
	 * Windows by the chunks they ask about (not holes, not the base's): at
	 * most NASC_BATCH bytes of them and as many as a window of
	 * nasc_store_chunks() may hold. The base's chunks cost nothing, so a
	 * small change to a large state is one HaveChunks, not one per
	 * NASC_BATCH bytes of the state.
	 */
	for (size_t i = 0, first = 0, asked = 0, alen = 0, off = 0, woff = 0; rv == 0; i++) {
		bool ask = i < refs->r_count && !refs->r_refs[i].zero &&
		    !nasc_base_has(&u->u_base, refs->r_sha[i]);
		if (i == refs->r_count || (ask && i > first && (asked == per_window ||
		    alen + refs->r_refs[i].size > NASC_BATCH))) {
			rv = nasc_store_window(u, src->s_data + woff, refs, first, i);
			first = i;
			woff = off;
			asked = 0;
			alen = 0;
			if (i == refs->r_count)
				break;
		}
		if (ask) {
			asked++;
			alen += refs->r_refs[i].size;
		}
		off += refs->r_refs[i].size;
	}
	/* Held chunks that all fit stay for the Store (nasc_store_inline()). */
	if (rv == 0 && (!u->u_hold || u->u_flushed))
		rv = nasc_up_finish(u);
	*ret_hashed = hashed;
	return rv;
}

/*
 * The fingerprints of a hinted store's list (u_fp, u_head; bcache.h), when
 * the base's are known: a chunk taken from the base keeps its fingerprint
 * when the bytes it covers (its reach) are the base's, which the hints
 * promise below the shorter of the two lengths; the few others are computed
 * here, the fresh chunks' with their SHA-256 (nasc_fresh_run()). Without the
 * base's, u_fp_on goes off: fingerprinting every chunk would read the whole
 * state, which hints exist to avoid.
 */
static int
nasc_hinted_fps(struct nasc_up *u, const struct nasc_src *src, const struct nasc_refs *refs,
    const struct nasc_fresh *fresh)
{
	const struct nasc_base *b = &u->u_base;
	uint64_t s = 0, boff = 0, same = b->b_len < src->s_len ? b->b_len : src->s_len;
	size_t k = 0, fi = 0, cap = refs->r_count != 0 ? refs->r_count : 1;

	if (!u->u_fp_on)
		return 0;
	if (b->b_fp == NULL || b->b_head == NULL) {
		u->u_fp_on = false;
		return 0;
	}
	if (cap > u->u_fp_cap && nasc_fp_reserve(u, cap) != 0)
		return -ENOMEM;
	for (size_t i = 0; i < refs->r_count; s += refs->r_refs[i++].size) {
		uint32_t size = refs->r_refs[i].size;
		if (fi < fresh->f_n && fresh->f_idx[fi] == i) {
			fi++;
			continue;
		}
		while (k < b->b_nchunks && boff < s)
			boff += b->b_sizes[k++] >> 1;
		if (k < b->b_nchunks && boff == s &&
		    (src->s_len == b->b_len || s + size + CHUNK_LOOKAHEAD <= same)) {
			memcpy(u->u_fp[i], b->b_fp[k], BCACHE_FP_LEN);
			u->u_head[i] = b->b_head[k];
		} else {
			bcache_fp(src->s_data, src->s_len, s, size, u->u_fp[i], &u->u_head[i]);
		}
	}
	return 0;
}

/*
 * nasc_store_chunks() of bytes in memory from the base's list and the
 * changed ranges: the list is walked and the new chunks hashed (on two
 * threads, split by bytes); then the windows' HaveChunks and PutChunks as
 * usual, which skip the base's chunks without asking. Bytes outside the
 * re-cut stretches are not read at all. The list gets fingerprints when the
 * base had them (nasc_hinted_fps()).
 */
static int
nasc_store_hinted_chunks(struct nasc *n, struct nasc_up *u, const struct nasc_src *src,
    const struct nasc_range *r, size_t nr, struct nasc_refs *refs, uint64_t *ret_total,
    size_t *ret_reused)
{
	struct nasc_fresh fresh = { 0 };
	uint64_t cut = 0, hashed = 0;
	int rv;

	rv = nasc_hinted_refs(n, u, src->s_data, src->s_len, r, nr, refs, &fresh, &cut);
	if (rv == 0)
		rv = nasc_hinted_fps(u, src, refs, &fresh);
	if (rv == 0)
		rv = nasc_store_fresh(n, u, src, refs, &fresh, u->u_fp_on, &hashed);
	if (rv == 0) {
		atomic_fetch_add(&n->n_cut_bytes, cut);
		atomic_fetch_add(&n->n_hashed_bytes, hashed);
		atomic_fetch_add(&n->n_reused_chunks, refs->r_count - fresh.f_n);
		atomic_fetch_add(&n->n_reused_bytes, src->s_len - cut);
		atomic_fetch_add(&n->n_hinted_stores, 1);
		*ret_total = src->s_len;
		*ret_reused = refs->r_count - fresh.f_n;
	}
	free(fresh.f_idx);
	free(fresh.f_off);
	return rv;
}

/*
 * A walk over a file: read with pread() into one buffer when the file is
 * known (no page tables: on this 2-CPU VM, 14 ms of CPU for 64 MiB against
 * 40 ms through the mapping), else through the mapping, its pages mapped a
 * window ahead in one call and dropped behind.
 */
struct nasc_walk_io {
	const struct nasc_src *wi_src;
	size_t wi_released;
	uint8_t *wi_buf;
};

static const uint8_t *
nasc_walk_window(void *arg, uint64_t off, uint64_t n)
{
	struct nasc_walk_io *wi = arg;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), lo = (size_t)off - (size_t)off % page;
	uint8_t *base = (uint8_t *)wi->wi_src->s_data;

	if (wi->wi_buf != NULL) {
		size_t got = 0;
		while (got < n) {
			ssize_t k = pread(wi->wi_src->s_fd, wi->wi_buf + got, (size_t)n - got,
			    (off_t)(off + got));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				return NULL;
			got += (size_t)k;
		}
		return wi->wi_buf;
	}
	if (lo > wi->wi_released) {
		(void)madvise(base + wi->wi_released, lo - wi->wi_released, MADV_DONTNEED);
		wi->wi_released = lo;
	}
#ifdef MADV_POPULATE_READ
	/* Older kernels refuse it (EINVAL): the pages then come one fault at a time. */
	(void)madvise(base + lo, (size_t)(off + n) - lo, MADV_POPULATE_READ);
#endif
	return base + off;
}

/*
 * A store walked against the remembered list's fingerprints (bcache_walk):
 * entries found unchanged are the base's, the rest cut and hashed afresh;
 * the new list's fingerprints go to *w (for the cache).
 */
static int
nasc_store_fp_chunks(struct nasc *n, struct nasc_up *u, const struct nasc_src *src,
    struct nasc_refs *refs, struct bcache_walk *w, uint64_t *ret_total, size_t *ret_reused)
{
	const struct nasc_base *b = &u->u_base;
	struct bcache_list bl = { 0 };
	struct nasc_fresh fresh = { 0 };
	size_t *dord = NULL;
	uint64_t off = 0, hashed = 0, reused_bytes = 0;
	int rv = 0;

	/* The base as bcache sees it (borrowed arrays), and each chunk's data ordinal. */
	bl.bl_sizes = b->b_sizes;
	bl.bl_sha = b->b_sha;
	bl.bl_fp = b->b_fp;
	bl.bl_head = b->b_head;
	bl.bl_n = b->b_nchunks;
	bl.bl_ndata = b->b_n;
	bl.bl_len = b->b_len;
	dord = malloc((b->b_nchunks != 0 ? b->b_nchunks : 1) * sizeof(*dord));
	if (dord == NULL)
		return -ENOMEM;
	for (size_t i = 0, k = 0; i < b->b_nchunks; i++) {
		dord[i] = k;
		k += (b->b_sizes[i] & 1u) == 0;
	}
	{
		/* Windows of 1 MiB: they stay in the CPU's cache between pread() and XXH3. */
		struct nasc_walk_io wi = { src, 0, NULL };
		struct bcache_io io = { nasc_walk_window, &wi, src->s_has_fd ? 1u << 20 : NASC_BATCH };
		if (src->s_has_fd && (wi.wi_buf = malloc((1u << 20) + 2 * (size_t)n->n_chunking.cp_max +
		    4 * CHUNK_LOOKAHEAD)) == NULL)
			rv = -ENOMEM;
		if (rv == 0)
			rv = bcache_walk(&n->n_chunking, &bl, src->s_data, src->s_len,
			    src->s_mapped ? &io : NULL, w);
		if (rv == -EIO)
			snprintf(u->u_err->re_msg, sizeof(u->u_err->re_msg),
			    "reading checkpoint: the file is shorter than when it was opened, or unreadable");
		free(wi.wi_buf);
	}
	/* refs is empty: sized at once. */
	if (rv == 0)
		nasc_refs_reserve(refs, w->bw_n);
	for (size_t i = 0; rv == 0 && i < w->bw_n; i++) {
		uint32_t v = w->bw_sizes[i];
		rv = nasc_refs_add(refs, v >> 1, (v & 1u) != 0);
		if (rv != 0)
			break;
		if (w->bw_from[i] == BCACHE_FRESH) {
			rv = nasc_fresh_add(&fresh, i, off);
		} else {
			reused_bytes += v >> 1;
			if ((v & 1u) == 0)
				memcpy(refs->r_sha[i], b->b_sha[dord[w->bw_from[i]]], SHA_LEN);
		}
		off += v >> 1;
	}
	if (rv == 0)
		rv = nasc_store_fresh(n, u, src, refs, &fresh, false, &hashed);
	if (rv == 0) {
		atomic_fetch_add(&n->n_cut_bytes, w->bw_cut_bytes);
		atomic_fetch_add(&n->n_hashed_bytes, hashed);
		atomic_fetch_add(&n->n_fp_bytes, w->bw_fp_bytes);
		atomic_fetch_add(&n->n_reused_chunks, refs->r_count - fresh.f_n);
		atomic_fetch_add(&n->n_reused_bytes, reused_bytes);
		atomic_fetch_add(&n->n_fp_stores, 1);
		*ret_total = src->s_len;
		*ret_reused = refs->r_count - fresh.f_n;
	}
	free(dord);
	free(fresh.f_idx);
	free(fresh.f_off);
	return rv;
}

/*
 * One attempt of nasc_store_src(); *ret_cached: its base came from n_cache.
 * h (bytes in memory only): hints, used when the base is their base.
 */
/* Whether chunk i of sreq's list is one of the n inline chunks (hashes sha). */
static bool
nasc_store_is_inline(const Ckpt__V1__StoreRequest *sreq, size_t i, const uint8_t (*sha)[SHA_LEN],
    size_t n)
{
	const uint8_t *h = NULL;

	if (sreq->n_chunks != 0) {
		if (i < sreq->n_chunks && sreq->chunks[i]->sha256.len == SHA_LEN)
			h = sreq->chunks[i]->sha256.data;
	} else if (i < sreq->n_chunk_sizes && (sreq->chunk_sizes[i] & 1u) == 0) {
		size_t ord = 0;
		for (size_t k = 0; k < i; k++)
			ord += (sreq->chunk_sizes[k] & 1u) == 0;
		if ((ord + 1) * SHA_LEN <= sreq->chunk_sha256.len)
			h = sreq->chunk_sha256.data + ord * SHA_LEN;
	}
	for (size_t k = 0; h != NULL && k < n; k++)
		if (memcmp(sha[k], h, SHA_LEN) == 0)
			return true;
	return false;
}

/* What a refused inline Store says of its inline chunks (nasc_store_inline()). */
enum nasc_inline_refusal {
	NASC_INLINE_FINAL,   /* not about them: the refusal stands */
	NASC_INLINE_LIMIT,   /* too many bytes for this NAS: *ret_limit is its limit */
	NASC_INLINE_IGNORED, /* it missed an inline chunk: it ignores the field */
	NASC_INLINE_UNKNOWN, /* a NAS older than reasons, a message not known: maybe */
};

/*
 * The reason first (rpc.proto); a NAS without one is older than reasons
 * and its messages are fixed: the store's (services/nas/store_rec.c)
 * "<n> bytes of inline chunks (at most <max>)", "<m> of <n> chunks missing
 * (first: index <i>)" (nas.proto, StoreReply) and "stale epoch ...". A NAS
 * that takes inline chunks never counts one missing, so a missing chunk
 * that was sent inline is proof it ignores them; one of the base's is not
 * (deleted meanwhile, whoever put it back since).
 */
static enum nasc_inline_refusal
nasc_inline_refusal(const struct rpc_error *e, const Ckpt__V1__StoreRequest *sreq,
    const struct nasc_batch *b, uint32_t *ret_limit)
{
	static const char too_many[] = " bytes of inline chunks (at most ";
	static const char missing[] = " chunks missing (first: index ";
	unsigned long long max;
	const char *at;
	size_t first;

	/* re_msg starts with where and what was refused (rpc.h): the NAS's words are further. */
	if (e->re_code == CKPT__V1__CODE__INVALID_ARGUMENT) {
		at = strstr(e->re_msg, too_many);
		if (e->re_reason[0] == '\0' && at != NULL &&
		    sscanf(at + sizeof(too_many) - 1, "%llu", &max) == 1 && max < b->b_wire &&
		    max <= UINT32_MAX) {
			*ret_limit = (uint32_t)max;
			return NASC_INLINE_LIMIT;
		}
		return NASC_INLINE_FINAL;
	}
	if (e->re_code != CKPT__V1__CODE__FAILED_PRECONDITION ||
	    (e->re_reason[0] != '\0' && !rpc_error_is(e, ERR_REASON_MISSING_CHUNKS)))
		return NASC_INLINE_FINAL;
	at = strstr(e->re_msg, missing);
	if (at != NULL && sscanf(at + sizeof(missing) - 1, "%zu", &first) == 1)
		return nasc_store_is_inline(sreq, first, (const uint8_t (*)[SHA_LEN])b->b_sha, b->b_n) ?
		    NASC_INLINE_IGNORED : NASC_INLINE_FINAL;
	if (e->re_reason[0] == '\0' && strstr(e->re_msg, "stale epoch ") == NULL)
		return NASC_INLINE_UNKNOWN;
	return NASC_INLINE_FINAL;
}

/*
 * The Store of sreq, carrying the held chunks (u_hold) inline when they all
 * fit: at most NASC_STORE_INLINE bytes for the whole request, which a NAS
 * reads as it reads a PutChunks of NASC_BATCH, and at most n_inline_max
 * bytes of chunks when the NAS said it takes no more. W3 after W2 with
 * --changed (197 new chunks, 1.7 MB; the request 1.9 MB): one round trip
 * and one commit fewer. Otherwise they go by PutChunks and the Store follows
 * without them; so too when the inline Store is refused for its inline
 * chunks (nasc_inline_refusal()): by a NAS that takes less inline (1 MiB
 * before; its limit is remembered, n_inline_max) or none (it ignores the
 * field and misses them: remembered, n_no_inline, as the small path does).
 * Any other refusal stands, with no PutChunks: a stale epoch, a bad request,
 * chunks of the base missing (the caller redoes the store, as on the normal
 * path). From a NAS older than reasons whose message is not known, the
 * chunks go by PutChunks too, and n_no_inline is set if that Store passes.
 */
static int
nasc_store_inline(struct nasc *n, struct nasc_up *u, Ckpt__V1__StoreRequest *sreq,
    unsigned timeout_ms, Ckpt__V1__StoreReply **ret_rep, struct rpc_error *ret_err)
{
	struct nasc_batch *b = &u->u_batch[u->u_cur];
	enum nasc_inline_refusal why = NASC_INLINE_FINAL;
	uint32_t max = (uint32_t)atomic_load(&n->n_inline_max);
	size_t size;
	int rv = 0;

	if (u->u_hold && !u->u_flushed && b->b_n != 0 && !atomic_load(&n->n_no_inline) &&
	    (max == 0 || b->b_wire <= max)) {
		sreq->n_inline_chunks = b->b_n;
		sreq->inline_chunks = b->b_cptr;
		size = ckpt__v1__store_request__get_packed_size(sreq);
		if (size <= NASC_STORE_INLINE) {
			atomic_fetch_add(&n->n_sent_bytes, size);
			rv = nasc_call(n, NAS_STORE, &sreq->base, timeout_ms, (ProtobufCMessage **)ret_rep,
			    ret_err);
			if (rv == 0) {
				atomic_fetch_add(&n->n_put_bytes, b->b_wire);
				atomic_fetch_add(&n->n_put_chunks, b->b_n);
				atomic_fetch_add(&n->n_held_inline, 1);
				return 0;
			}
			why = nasc_inline_refusal(ret_err, sreq, b, &max);
			if (why == NASC_INLINE_FINAL)
				return rv;
			if (why == NASC_INLINE_LIMIT)
				atomic_store(&n->n_inline_max, max);
			if (why == NASC_INLINE_IGNORED)
				atomic_store(&n->n_no_inline, true);
		}
		sreq->n_inline_chunks = 0;
		sreq->inline_chunks = NULL;
	}
	rv = nasc_up_finish(u);
	if (rv != 0)
		return rv;
	ret_err->re_code = 0;
	ret_err->re_msg[0] = '\0';
	ret_err->re_reason[0] = '\0';
	atomic_fetch_add(&n->n_sent_bytes, ckpt__v1__store_request__get_packed_size(sreq));
	rv = nasc_call(n, NAS_STORE, &sreq->base, timeout_ms, (ProtobufCMessage **)ret_rep, ret_err);
	if (rv == 0 && why == NASC_INLINE_UNKNOWN)
		atomic_store(&n->n_no_inline, true);
	return rv;
}

int
nasc_store_once(struct nasc *n, const struct nasc_put *p, const struct nasc_src *src,
    const struct nasc_hints *h, unsigned timeout_ms, struct nasc_info *ret_info, bool *ret_cached,
    struct rpc_error *ret_err)
{
	struct nasc_range *ranges = NULL;
	size_t nranges = 0, reused = 0;
	Ckpt__V1__StoreRequest sreq = CKPT__V1__STORE_REQUEST__INIT;
	Ckpt__V1__StoreReply *srep = NULL;
	uint32_t *sizes = NULL;
	size_t ndata = 0;
	struct nasc_refs refs = { 0 };
	struct nasc_up up;
	uint8_t digest[SHA_LEN], whole[SHA_LEN];
	struct sha_ctx *plain = NULL;
	struct bcache_walk walk = { 0 };
	const uint8_t (*lfp)[BCACHE_FP_LEN] = NULL; /* the new list's fingerprints, if known */
	const uint64_t *lhead = NULL;
	uint8_t *buf;
	uint64_t total = 0;
	int rv;

	ret_err->re_code = 0;
	ret_err->re_msg[0] = '\0';
	ret_err->re_reason[0] = '\0';
	buf = src->s_data != NULL ? NULL : malloc(NASC_BATCH);
	rv = nasc_up_init(&up, n, timeout_ms, ret_err);
	up.u_in_place = src->s_data != NULL;
	/* Bytes in memory get fingerprints, for the next store of the component (bcache.h). */
	up.u_fp_on = src->s_data != NULL && !n->n_format3 && !atomic_load(&n->n_no_fp) &&
	    p->np_node != NULL && p->np_component != NULL;
	if (rv == 0 && buf == NULL && src->s_data == NULL)
		rv = -ENOMEM;
	if (rv == 0)
		rv = nasc_base_load(n, p, h != NULL && src->s_data != NULL ? h->nh_base_digest : NULL,
		    timeout_ms, &up.u_base, ret_err);
	*ret_cached = up.u_base.b_cached;
	/* Hints that cannot be used (too many, no memory) mean: read it whole. */
	/* The writer of older versions (tests only): a plain SHA-256 too, no hints. */
	if (rv == 0 && n->n_format3)
		rv = sha_new(&plain);
	up.u_hold = src->s_data != NULL && !n->n_format3;
	if (rv == 0 && !n->n_format3 && up.u_base.b_hints && h != NULL &&
	    nasc_ranges_norm(h, src->s_len, &ranges, &nranges) == 0) {
		rv = nasc_store_hinted_chunks(n, &up, src, ranges, nranges, &refs, &total, &reused);
		if (up.u_fp_on) {
			lfp = (const uint8_t(*)[BCACHE_FP_LEN])up.u_fp;
			lhead = up.u_head;
		}
	} else if (rv == 0 && up.u_fp_on && up.u_base.b_fp != NULL) {
		/* No hints, but the last list's fingerprints: what is unchanged is not cut nor hashed. */
		rv = nasc_store_fp_chunks(n, &up, src, &refs, &walk, &total, &reused);
		lfp = (const uint8_t(*)[BCACHE_FP_LEN])walk.bw_fp;
		lhead = walk.bw_head;
	} else if (rv == 0) {
		up.u_hold = false;
		rv = nasc_store_chunks(n, &up, src, buf, &refs, plain, &total, ret_err);
		if (up.u_fp_on) {
			lfp = (const uint8_t(*)[BCACHE_FP_LEN])up.u_fp;
			lhead = up.u_head;
		}
	}
	if (rv != 0)
		goto out;
	/* The chunk list in compact form: sizes (hole bit), then the data chunks' hashes. */
	sizes = malloc((refs.r_count ? refs.r_count : 1) * sizeof(*sizes));
	if (sizes == NULL) {
		rv = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < refs.r_count; i++) {
		sizes[i] = refs.r_refs[i].size << 1 | (refs.r_refs[i].zero ? 1u : 0u);
		if (!refs.r_refs[i].zero)
			memmove(refs.r_sha[ndata++], refs.r_sha[i], SHA_LEN);
	}
	rv = digest_compact(sizes, refs.r_count, (const uint8_t *)refs.r_sha, ndata, digest);
	if (rv != 0)
		goto out;
	sreq.node = (char *)p->np_node;
	sreq.component = (char *)p->np_component;
	sreq.kind = (char *)(p->np_kind != NULL ? p->np_kind : "");
	sreq.seq = p->np_seq;
	sreq.epoch = p->np_epoch;
	sreq.size = total;
	if (plain != NULL) {
		sha_final(plain, whole);
		sreq.sha256.data = whole;
		sreq.sha256.len = SHA_LEN;
	} else {
		sreq.digest.data = digest;
		sreq.digest.len = SHA_LEN;
		sreq.chunk_min = n->n_chunking.cp_min;
		sreq.chunk_avg = n->n_chunking.cp_avg;
		sreq.chunk_max = n->n_chunking.cp_max;
	}
	sreq.n_chunk_sizes = refs.r_count;
	sreq.chunk_sizes = sizes;
	sreq.chunk_sha256.data = (uint8_t *)refs.r_sha;
	sreq.chunk_sha256.len = ndata * SHA_LEN;
	rv = nasc_store_inline(n, &up, &sreq, timeout_ms, &srep, ret_err);
	if (rv == 0) {
		struct nasc_list l = { sizes, refs.r_count, total, digest, lfp, lhead };
		nasc_info_from_pb(srep->info, ret_info);
		rpc_reply_free(&srep->base);
		/* A terse reply: the digest is the one sent (hints name their base by it). */
		if (!ret_info->ni_has_digest) {
			memcpy(ret_info->ni_digest, digest, SHA_LEN);
			ret_info->ni_has_digest = true;
		}
		ret_info->ni_reused_chunks = (uint32_t)reused;
		atomic_fetch_add(&n->n_store_bytes, total);
		/* The next store of this component asks about what is new since this one. */
		if (p->np_node != NULL && p->np_component != NULL)
			nasc_cache_put(n, p->np_node, p->np_component,
			    (const uint8_t(*)[SHA_LEN])refs.r_sha, ndata, &l);
	}
out:
	/* A failed store may have lost its base (chunks deleted): the next one asks the NAS. */
	if (rv != 0 && p->np_node != NULL && p->np_component != NULL)
		nasc_cache_drop(n, p->np_node, p->np_component);
	free(sizes);
	free(ranges);
	sha_free(plain);
	bcache_walk_free(&walk);
	nasc_up_free(&up);
	nasc_refs_free(&refs);
	free(buf);
	return rv;
}

/*
 * A refusal for missing chunks can come from any store, whatever its base:
 * a remembered list names chunks deleted since (rm, retention), a chunk
 * HaveChunks answered "have" to lost its last record before the commit, or
 * the NAS restarted between PutChunks and Store and its sweep after open
 * deleted the uploads no record named yet. In every case the chunks were
 * there when asked about and are gone now, and asking again tells which:
 * the failed attempt dropped the remembered list, so the second one takes
 * its base from the NAS's record (Retrieve), asks HaveChunks about every
 * other chunk, and a chunk gone is answered missing and sent (a name in a
 * HaveChunks or PutChunks also keeps it from a sweep running now). Once
 * only: a second refusal (another delete, another restart in between) is
 * returned. Bytes from a reader are gone by then: that refusal is returned
 * with a message that says so (the caller may read them again).
 */
int
nasc_store_normal(struct nasc *n, const struct nasc_put *p, const struct nasc_src *src,
    const struct nasc_hints *h, unsigned timeout_ms, struct nasc_info *ret_info,
    struct rpc_error *ret_err)
{
	bool cached = false;
	int rv;

	rv = nasc_store_once(n, p, src, h, timeout_ms, ret_info, &cached, ret_err);
	if (rv == 0 || !rpc_error_is(ret_err, ERR_REASON_MISSING_CHUNKS))
		return rv;
	if (src->s_data == NULL) {
		char why[sizeof(ret_err->re_msg)];

		memcpy(why, ret_err->re_msg, sizeof(why));
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg),
		    "chunks the NAS had or was sent were deleted before the commit (rm, retention "
		    "or the sweep after a NAS restart), and a checkpoint read from a stream cannot "
		    "be read again to send them: nothing was stored, store it again (NAS: %.700s)",
		    why);
		return rv;
	}
	atomic_fetch_add(cached ? &n->n_stale_retries : &n->n_race_retries, 1);
	return nasc_store_once(n, p, src, h, timeout_ms, ret_info, &cached, ret_err);
}

/* nasc_store() from either source: small ones inline, the others the normal path. */
static int
nasc_store_src(struct nasc *n, const struct nasc_put *p, const struct nasc_src *src,
    const struct nasc_hints *h, unsigned timeout_ms, struct nasc_info *ret_info,
    struct rpc_error *ret_err)
{
	if (src->s_data != NULL && src->s_len <= NASC_INLINE_MAX && !n->n_format3 &&
	    !atomic_load(&n->n_no_inline))
		return nasc_store_small(n, p, src->s_data, src->s_len, timeout_ms, ret_info, ret_err);
	return nasc_store_normal(n, p, src, h, timeout_ms, ret_info, ret_err);
}

/* A reader's first bytes, read to see whether it is small, then the rest of it. */
struct nasc_prefix {
	const uint8_t *x_buf;
	size_t x_len, x_off;
	nasc_read_fn x_rd;
	void *x_arg;
};

static ssize_t
nasc_prefix_read(void *arg, void *buf, size_t len)
{
	struct nasc_prefix *x = arg;
	size_t k = x->x_len - x->x_off;

	if (k == 0)
		return x->x_rd(x->x_arg, buf, len);
	k = k < len ? k : len;
	memcpy(buf, x->x_buf + x->x_off, k);
	x->x_off += k;
	return (ssize_t)k;
}

int
nasc_store(struct nasc *n, const struct nasc_put *p, nasc_read_fn rd, void *rd_arg,
    unsigned timeout_ms, struct nasc_info *ret_info, struct rpc_error *ret_err)
{
	struct nasc_src src = { rd, rd_arg, NULL, 0, false, false, -1 };
	struct nasc_prefix x = { NULL, 0, 0, rd, rd_arg };
	uint8_t *head = NULL;
	int rv;

	/* Up to one byte past the threshold: a reader that ends within it is small. */
	if (!n->n_format3 && !atomic_load(&n->n_no_inline)) {
		head = malloc(NASC_INLINE_MAX + 1);
		if (head == NULL)
			return -ENOMEM;
		rv = nasc_read_full(rd, rd_arg, head, NASC_INLINE_MAX + 1, &x.x_len);
		if (rv != 0) {
			ret_err->re_code = 0;
			snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "reading checkpoint: %s",
			    err_str(rv));
			free(head);
			return rv;
		}
		if (x.x_len <= NASC_INLINE_MAX) {
			rv = nasc_store_small(n, p, head, x.x_len, timeout_ms, ret_info, ret_err);
			free(head);
			return rv;
		}
		x.x_buf = head;
		src.s_rd = nasc_prefix_read;
		src.s_rd_arg = &x;
	}
	rv = nasc_store_src(n, p, &src, NULL, timeout_ms, ret_info, ret_err);
	free(head);
	return rv;
}

int
nasc_store_buf(struct nasc *n, const struct nasc_put *p, const void *buf, size_t len,
    unsigned timeout_ms, struct nasc_info *ret_info, struct rpc_error *ret_err)
{
	static const uint8_t empty[1];
	struct nasc_src src = { NULL, NULL, buf != NULL ? buf : empty, len, false, false, -1 };
	return nasc_store_src(n, p, &src, NULL, timeout_ms, ret_info, ret_err);
}

int
nasc_store_mapped(struct nasc *n, const struct nasc_put *p, const void *map, size_t len,
    unsigned timeout_ms, struct nasc_info *ret_info, struct rpc_error *ret_err)
{
	struct nasc_src src = { NULL, NULL, map, len, true, false, -1 };
	return nasc_store_src(n, p, &src, NULL, timeout_ms, ret_info, ret_err);
}

int
nasc_store_file(struct nasc *n, const struct nasc_put *p, int fd, const void *map, size_t len,
    const struct nasc_hints *h, unsigned timeout_ms, struct nasc_info *ret_info,
    struct rpc_error *ret_err)
{
	struct nasc_src src = { NULL, NULL, map, len, true, true, fd };
	return nasc_store_src(n, p, &src, h, timeout_ms, ret_info, ret_err);
}

int
nasc_store_hinted(struct nasc *n, const struct nasc_put *p, const void *buf, size_t len,
    const struct nasc_hints *h, unsigned timeout_ms, struct nasc_info *ret_info,
    struct rpc_error *ret_err)
{
	static const uint8_t empty[1];
	struct nasc_src src = { NULL, NULL, buf != NULL ? buf : empty, len, false, false, -1 };
	return nasc_store_src(n, p, &src, h, timeout_ms, ret_info, ret_err);
}

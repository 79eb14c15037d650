#include "nasc_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "chunkv.h"
#include "digest.h"
#include "err.h"
#include "methods.h"
#include "pbv.h"
#include "pool.h"
#include "util.h"
#include "zchunk.h"

/* ---- retrieve ---- */

/*
 * The reader is a pipeline. The chunk list is cut into batches of at most
 * NASC_GET_BATCH raw bytes; up to r_inflight of them at a time are
 * jobs of the client's pool (pool.h), each fetching its chunks (one
 * GetChunks, more if the NAS answers a prefix), decoding and verifying every
 * chunk and zero-filling its holes, while the caller's thread takes the
 * batches in order and hands each to the writer in one call. A reader into
 * memory (nasc_retrieve_buf) has the batches decoded straight into its
 * buffer, at their offsets: no copy; a vectored writer
 * (nasc_retrieve_fallback_v) gets each batch as pieces where they lie (the
 * replies, kept until written; holes from a zero buffer): no copy either;
 * otherwise each batch slot has a buffer of its own, reused, which bounds
 * the memory. The caller waits for a batch no worker took yet by fetching it
 * itself (pool_wait).
 */
/*
 * Batches in flight into memory or a buffer of each slot's own: two (an
 * agent's restore into memory has its peak bound; three and four cost a
 * fifth more CPU on 2 cores, more buffers faulted in, and no time).
 */
#define NASC_GET_INFLIGHT 2
/*
 * Gathering (ckptctl get), four: a slot's job calls GetChunks and then
 * verifies the reply, so with two the NAS often had no request while both
 * slots verified; with four, two requests are out while two replies are
 * verified. Its memory is the replies kept until written (4 x 2 MiB).
 * Paired runs against two at load 5-9: W2 3-8% less wall time in five runs
 * of six, W1 about 2%, W3 nothing measurable (the noise: 2-5%), CPU the
 * same (docs/benchmarks.md).
 */
#define NASC_GET_INFLIGHT_GATHER 4
#define NASC_GET_INFLIGHT_MAX NASC_GET_INFLIGHT_GATHER
/* Raw bytes of a batch: 2 MiB measured faster than 1 and 4 (fewer pages touched, few calls). */
#define NASC_GET_BATCH (2u << 20)
/*
 * Gathering (ckptctl get), the first batch, each next one twice as large up
 * to NASC_GET_BATCH: the first reply comes (and both cores have work) after
 * a quarter MiB read, not 2 MiB. Not into memory (an agent's restore),
 * whose peak is tightly bound (integration_mem_1g: 1087 to 1093 MiB on main
 * for a bound of 1088) and whose several arenas could keep replies of
 * several sizes apart.
 */
#define NASC_GET_FIRST (256u << 10)
/* Allowance per chunk for the NAS's own accounting in GetChunks.max_bytes. */
#define NASC_GET_SLACK 64u

/* Batch b covers refs [rb_ref, next rb_ref), hashes [rb_hash, next rb_hash), bytes from rb_off. */
struct nasc_rbatch {
	size_t rb_ref;
	size_t rb_hash;
	uint64_t rb_off;
};

struct nasc_reader;

/* One batch in flight: a job of the pool. */
struct nasc_slot {
	struct pool_job sl_job;
	struct nasc_reader *sl_r;
	size_t sl_batch;
	bool sl_submitted;           /* sl_job is submitted and not yet waited for */
	int sl_rv;
	bool sl_mismatch;            /* sl_rv is a chunk that failed verification */
	struct rpc_error sl_err;     /* the call's error, when sl_rv came from a call */
	struct zchunk *sl_z;         /* its decompression context */
	uint8_t *sl_own;             /* its own buffer (not writing in place), or NULL */
	uint8_t *sl_buf;             /* where the batch's raw bytes go (decoded ones, gathering) */
	size_t sl_len;
	/* Gathering (r_gather): the batch as pieces where they lie, and the replies they lie in. */
	struct iovec *sl_iov;
	size_t sl_niov, sl_iov_cap;
	struct rpc_view *sl_views;
	size_t sl_nviews, sl_views_cap;
};

struct nasc_reader {
	struct nasc *r_nasc;
	unsigned r_timeout_ms;
	Ckpt__V1__ChunkRef *const *r_refs;
	ProtobufCBinaryData *r_hashes;   /* of the refs that are not holes, in order */
	struct nasc_rbatch *r_batches;    /* r_nbatch + 1 entries, the last one the end */
	size_t r_nbatch;
	size_t r_buf_cap;
	uint8_t *r_dest;                 /* non-NULL: batches are decoded into it, in place */
	struct nasc_slot r_slots[NASC_GET_INFLIGHT_MAX];
	size_t r_inflight;               /* slots used: NASC_GET_INFLIGHT(_GATHER) */
	struct pool_job r_warm;          /* nasc_reader_warm(), during the Retrieve */
	bool r_warm_submitted;
	/*
	 * Gathering (a vectored writer, nasc_retrieve_fallback_v): a batch is
	 * handed over as pieces, each verified chunk where it lies in its reply
	 * (a compressed one where it was decoded, in sl_buf), each hole as runs
	 * of r_zeros: no copy, no zeroing.
	 */
	bool r_gather;
	uint8_t *r_zeros;                /* NASC_ZEROS zero bytes, never written */
};

/* Zero bytes a hole's pieces point at (calloc: pages the kernel keeps zero). */
#define NASC_ZEROS (64u << 10)

/*
 * Checks the record's chunk list and cuts it into batches. A hole carries
 * no hash and 1 to NASC_RAW_MAX zero bytes; any other ref a 32-byte hash and
 * at most NASC_RAW_MAX bytes; the sizes add up to the checkpoint's. -EBADMSG
 * (DATA_LOSS) otherwise.
 */
static int
nasc_reader_plan(struct nasc_reader *r, Ckpt__V1__ChunkRef *const *refs, size_t n,
    uint64_t size)
{
	size_t nh = 0, nb = 0, bytes = 0, hashes = 0, largest = 1, limit = NASC_GET_FIRST / 2;
	uint64_t total = 0, off = 0;

	for (size_t i = 0; i < n; i++) {
		const Ckpt__V1__ChunkRef *c = refs[i];
		if (c->zero ? c->sha256.len != 0 || c->size == 0 || c->size > NASC_RAW_MAX
		            : c->sha256.len != SHA_LEN || c->size > NASC_RAW_MAX)
			return -EBADMSG;
		total += c->size;
	}
	if (total != size)
		return -EBADMSG;
	r->r_refs = refs;
	r->r_hashes = calloc(n ? n : 1, sizeof(*r->r_hashes));
	r->r_batches = calloc(n + 1, sizeof(*r->r_batches));
	if (r->r_hashes == NULL || r->r_batches == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const Ckpt__V1__ChunkRef *c = refs[i];
		/* At most limit bytes (or one bigger chunk), at most NASC_GET_MAX hashes. */
		if (i == 0 || (bytes + c->size > limit || hashes == NASC_GET_MAX)) {
			limit = limit < NASC_GET_BATCH && r->r_gather ? 2 * limit : NASC_GET_BATCH;
			r->r_batches[nb].rb_ref = i;
			r->r_batches[nb].rb_hash = nh;
			r->r_batches[nb].rb_off = off;
			nb++;
			bytes = 0;
			hashes = 0;
		}
		bytes += c->size;
		off += c->size;
		if (bytes > largest)
			largest = bytes;
		if (!c->zero) {
			r->r_hashes[nh++] = c->sha256;
			hashes++;
		}
	}
	r->r_batches[nb].rb_ref = n;
	r->r_batches[nb].rb_hash = nh;
	r->r_batches[nb].rb_off = off;
	r->r_nbatch = nb;
	r->r_buf_cap = largest;
	return 0;
}

/*
 * Decodes and verifies one chunk of a reply for ref into out (ref->size
 * bytes); with ret_raw, a raw chunk is not copied: *ret_raw is where its
 * verified bytes lie (in the reply, or out for a decoded one).
 */
static int
nasc_reader_chunk(struct zchunk *z, const Ckpt__V1__Chunk *ch,
    const Ckpt__V1__ChunkRef *ref, uint8_t *out, const void **ret_raw)
{
	size_t raw_size = ch->raw_size != 0 ? ch->raw_size : ch->data.len;
	const void *raw;
	int rv;

	if (raw_size != ref->size || (ch->sha256.len == SHA_LEN &&
	    memcmp(ch->sha256.data, ref->sha256.data, SHA_LEN) != 0))
		return -EBADMSG;
	rv = zchunk_verify(z, (unsigned)ch->codec, ch->data.data, ch->data.len, raw_size,
	    NASC_RAW_MAX, out, ref->sha256.data, &raw);
	if (rv == -EINVAL)
		rv = -EBADMSG;
	if (rv == 0 && ret_raw != NULL)
		*ret_raw = raw;
	/* A raw chunk is verified where it lies (while it is in the cache), then copied. */
	else if (rv == 0 && raw != out)
		memcpy(out, raw, raw_size);
	return rv;
}

/*
 * A Retrieve reply read in place: its CheckpointInfo unpacked (small), its
 * chunk list (field 2, thousands of ChunkRefs: protobuf-c made two
 * allocations of each, 7 ms for 9,000 refs here, with the reader waiting)
 * read into one array of refs and one of their hashes. The reply's message
 * is freed at once, as before: kept through the restore, its pages (2.4 MB
 * for 1 GiB) could not serve the GetChunks replies, and an agent's peak
 * grew by as much (integration_mem_1g).
 */
struct nasc_record {
	Ckpt__V1__CheckpointInfo *rc_info;
	Ckpt__V1__ChunkRef *rc_refs;           /* rc_n entries */
	Ckpt__V1__ChunkRef **rc_ptrs;          /* rc_n pointers to them, as protobuf-c lays them out */
	uint8_t (*rc_sha)[SHA_LEN];            /* the hashes the refs point to */
	size_t rc_n;
};

static void
nasc_record_free(struct nasc_record *rc)
{
	if (rc->rc_info != NULL)
		protobuf_c_message_free_unpacked(&rc->rc_info->base, NULL);
	free(rc->rc_refs);
	free(rc->rc_ptrs);
	free(rc->rc_sha);
	memset(rc, 0, sizeof(*rc));
}

/* Reads the RetrieveReply in v: -EPROTO when it is not one, -ENOMEM. */
static int
nasc_record_parse(struct nasc_record *rc, const struct rpc_view *view)
{
	const uint8_t *info = NULL;
	size_t info_len = 0, n = 0;
	struct pbv_field f;
	struct pbv v;
	int rv;

	pbv_init(&v, view->rv_body, view->rv_len);
	while ((rv = pbv_next(&v, &f)) == 1) {
		if ((f.pf_num == 1 || f.pf_num == 2) && f.pf_wire != PBV_LEN)
			return -EPROTO;
		if (f.pf_num == 1) {
			info = f.pf_data;
			info_len = f.pf_len;
		}
		n += f.pf_num == 2;
	}
	if (rv != 0)
		return -EPROTO;
	if (info != NULL && (rc->rc_info = ckpt__v1__checkpoint_info__unpack(NULL, info_len,
	    info)) == NULL)
		return -EPROTO;
	rc->rc_refs = malloc((n ? n : 1) * sizeof(*rc->rc_refs));
	rc->rc_ptrs = malloc((n ? n : 1) * sizeof(*rc->rc_ptrs));
	rc->rc_sha = malloc((n ? n : 1) * sizeof(*rc->rc_sha));
	if (rc->rc_refs == NULL || rc->rc_ptrs == NULL || rc->rc_sha == NULL)
		return -ENOMEM;
	pbv_init(&v, view->rv_body, view->rv_len);
	while (rc->rc_n < n && pbv_next(&v, &f) == 1) {
		Ckpt__V1__ChunkRef *c = &rc->rc_refs[rc->rc_n];
		if (f.pf_num != 2)
			continue;
		rv = chunkv_ref_parse(f.pf_data, f.pf_len, c);
		if (rv != 0)
			return rv;
		/* A hash of another length is for the plan to refuse (as DATA_LOSS): one byte kept. */
		if (c->sha256.len != 0 && c->sha256.len != SHA_LEN)
			c->sha256.len = 1;
		if (c->sha256.len != 0) {
			memcpy(rc->rc_sha[rc->rc_n], c->sha256.data, c->sha256.len);
			c->sha256.data = rc->rc_sha[rc->rc_n];
		}
		rc->rc_ptrs[rc->rc_n] = c;
		rc->rc_n++;
	}
	return 0;
}

/* Retrieve, its reply read in place (nasc_record_free() it, also on failure). */
static int
nasc_record_get(struct nasc *n, const Ckpt__V1__RetrieveRequest *req, unsigned timeout_ms,
    struct nasc_record *ret_rc, struct rpc_error *ret_err)
{
	struct rpc_view view;
	int rv = nasc_call_view(n, NAS_RETRIEVE, &req->base, timeout_ms, &view, ret_err);

	if (rv != 0)
		return rv;
	rv = nasc_record_parse(ret_rc, &view);
	rpc_view_free(&view);
	if (rv == -EPROTO) {
		ret_err->re_code = CKPT__V1__CODE__INTERNAL;
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg),
		    "NAS answered an undecodable Retrieve reply");
	} else if (rv != 0) {
		ret_err->re_code = CKPT__V1__CODE__RESOURCE_EXHAUSTED;
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "reading a Retrieve reply: %s",
		    err_str(rv));
	}
	return rv;
}

/* Appends len bytes at p to the slot's pieces (joined to the last one when they follow it). */
static int
nasc_slot_piece(struct nasc_slot *s, const void *p, size_t len)
{
	struct iovec *last = s->sl_niov > 0 ? &s->sl_iov[s->sl_niov - 1] : NULL;

	if (last != NULL && (const uint8_t *)last->iov_base + last->iov_len == p) {
		last->iov_len += len;
		return 0;
	}
	if (s->sl_niov == s->sl_iov_cap) {
		size_t cap = s->sl_iov_cap ? 2 * s->sl_iov_cap : 256;
		struct iovec *v = realloc(s->sl_iov, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		s->sl_iov = v;
		s->sl_iov_cap = cap;
	}
	s->sl_iov[s->sl_niov++] = (struct iovec){ (void *)p, len };
	return 0;
}

/* A hole of len bytes: at off in sl_buf, or, gathering, as pieces of r_zeros. */
static int
nasc_slot_hole(struct nasc_reader *r, struct nasc_slot *s, size_t off, size_t len)
{
	int rv = 0;

	if (!r->r_gather) {
		memset(s->sl_buf + off, 0, len);
		return 0;
	}
	while (rv == 0 && len > 0) {
		size_t k = len < NASC_ZEROS ? len : NASC_ZEROS;
		rv = nasc_slot_piece(s, r->r_zeros, k);
		len -= k;
	}
	return rv;
}

/* Keeps a reply whose bytes the slot's pieces point into, until they are written. */
static int
nasc_slot_keep(struct nasc_slot *s, struct rpc_view *v)
{
	if (s->sl_nviews == s->sl_views_cap) {
		size_t cap = s->sl_views_cap ? 2 * s->sl_views_cap : 4;
		struct rpc_view *a = realloc(s->sl_views, cap * sizeof(*a));
		if (a == NULL)
			return -ENOMEM;
		s->sl_views = a;
		s->sl_views_cap = cap;
	}
	s->sl_views[s->sl_nviews++] = *v;
	return 0;
}

/* Lets go of the slot's pieces and the replies they point into. */
static void
nasc_slot_release(struct nasc_slot *s)
{
	for (size_t i = 0; i < s->sl_nviews; i++)
		rpc_view_free(&s->sl_views[i]);
	s->sl_nviews = 0;
	s->sl_niov = 0;
}

/* Fetches, verifies and lays out batch b in s->sl_buf (or, gathering, as s->sl_iov). */
static int
nasc_reader_fetch(struct nasc_reader *r, struct zchunk *z, size_t b, struct nasc_slot *s)
{
	size_t ref = r->r_batches[b].rb_ref, end = r->r_batches[b + 1].rb_ref;
	size_t hash = r->r_batches[b].rb_hash, hash_end = r->r_batches[b + 1].rb_hash;
	size_t off = 0;
	int rv = 0;

	s->sl_mismatch = false;
	while (rv == 0 && ref < end) {
		Ckpt__V1__GetChunksRequest greq = CKPT__V1__GET_CHUNKS_REQUEST__INIT;
		struct rpc_view view;
		struct pbv_field f;
		struct pbv v;
		size_t want = hash_end - hash, got = 0;
		uint64_t budget = 0;

		/* Holes are never asked for: zero bytes where they lie. */
		while (rv == 0 && ref < end && r->r_refs[ref]->zero) {
			rv = nasc_slot_hole(r, s, off, r->r_refs[ref]->size);
			off += r->r_refs[ref++]->size;
		}
		if (rv != 0 || ref == end)
			break;
		for (size_t i = ref; i < end; i++)
			budget += r->r_refs[i]->zero ? 0 : r->r_refs[i]->size + NASC_GET_SLACK;
		greq.n_sha256 = want;
		greq.sha256 = &r->r_hashes[hash];
		greq.max_bytes = budget > UINT32_MAX ? UINT32_MAX : (uint32_t)budget;
		rv = nasc_call_view(r->r_nasc, NAS_GET_CHUNKS, &greq.base, r->r_timeout_ms, &view,
		    &s->sl_err);
		if (rv != 0)
			break;
		/* A prefix of the chunks asked (field 1), in order; holes between them. */
		pbv_init(&v, view.rv_body, view.rv_len);
		while (rv == 0 && (rv = pbv_next(&v, &f)) == 1) {
			Ckpt__V1__Chunk cv;
			rv = 0;
			if (f.pf_num != 1)
				continue;
			if (f.pf_wire != PBV_LEN || got == want ||
			    chunkv_parse(f.pf_data, f.pf_len, &cv) != 0) {
				rv = -EPROTO;
				break;
			}
			got++;
			while (rv == 0 && r->r_refs[ref]->zero) {
				rv = nasc_slot_hole(r, s, off, r->r_refs[ref]->size);
				off += r->r_refs[ref++]->size;
			}
			if (rv != 0)
				break;
			atomic_fetch_add(&r->r_nasc->n_get_bytes, cv.data.len);
			if (r->r_gather) {
				const void *raw = NULL;
				rv = nasc_reader_chunk(z, &cv, r->r_refs[ref], s->sl_buf + off, &raw);
				if (rv == 0)
					rv = nasc_slot_piece(s, raw, r->r_refs[ref]->size);
				s->sl_mismatch = rv == -EBADMSG;
			} else {
				rv = nasc_reader_chunk(z, &cv, r->r_refs[ref], s->sl_buf + off, NULL);
				s->sl_mismatch = rv == -EBADMSG;
			}
			off += r->r_refs[ref++]->size;
			hash++;
		}
		/* Gathering, the reply lives on while the pieces in it are written. */
		if (r->r_gather && rv == 0 && got > 0)
			rv = nasc_slot_keep(s, &view);
		if (!r->r_gather || rv != 0 || got == 0)
			rpc_view_free(&view);
		if (rv == -EPROTO || (rv == 0 && got == 0)) {
			rv = -EPROTO;
			s->sl_err.re_code = CKPT__V1__CODE__INTERNAL;
			snprintf(s->sl_err.re_msg, sizeof(s->sl_err.re_msg),
			    "NAS answered an undecodable GetChunks reply, or %zu chunks for %zu asked",
			    got, want);
		}
	}
	if (rv == -ENOMEM) {
		s->sl_err.re_code = CKPT__V1__CODE__RESOURCE_EXHAUSTED;
		snprintf(s->sl_err.re_msg, sizeof(s->sl_err.re_msg), "reading chunks: %s",
		    err_str(rv));
	}
	s->sl_len = off;
	return rv;
}

static void
nasc_reader_job(void *arg)
{
	struct nasc_slot *s = arg;
	s->sl_rv = nasc_reader_fetch(s->sl_r, s->sl_z, s->sl_batch, s);
}

/*
 * A job of the pool while the Retrieve is out: the first SHA-256 of a
 * process loads OpenSSL's configuration and providers (about 3 ms here),
 * which the digest of the list would otherwise wait for; and the workers
 * the batches need are started.
 */
static void
nasc_reader_warm(void *arg)
{
	uint8_t h[SHA_LEN];

	(void)arg;
	sha256("", 0, h);
}

/* Buffers and decompression contexts of the slots; dest: decode in place there, or NULL. */
static int
nasc_reader_start(struct nasc_reader *r, uint8_t *dest)
{
	r->r_dest = dest;
	for (size_t i = 0; i < r->r_inflight && i < r->r_nbatch; i++) {
		struct nasc_slot *s = &r->r_slots[i];
		int rv = zchunk_new(&s->sl_z);
		if (rv != 0)
			return rv;
		s->sl_r = r;
		if (dest == NULL && (s->sl_own = malloc(r->r_buf_cap)) == NULL)
			return -ENOMEM;
	}
	if (r->r_gather && (r->r_zeros = calloc(1, NASC_ZEROS)) == NULL)
		return -ENOMEM;
	return 0;
}

/*
 * Gathering: the replies in flight, up to NASC_GET_INFLIGHT_GATHER of
 * NASC_GET_BATCH each, are nng's messages, which it allocates (calloc) and
 * fills as they arrive, from the heap's fresh top in a process that just
 * started: at 4 KiB a page, one fault for each, in nng's receiving thread.
 * A block as large as the replies in flight is allocated and freed at once,
 * its huge pages marked for transparent huge pages (nothing is touched,
 * nothing resident): the replies then take those pages, one fault per 2 MiB.
 * `ckptctl get` of W1 (64 MiB): 2,720 page faults, 745 with this; CPU 67.0
 * ms, 63.7 (median of 31 alternated runs, load 7; W3 41.2 and 39.2). Only
 * when the checkpoint is that large (a small get has no use for it); where
 * THP is off, nothing changes.
 */
#define NASC_GET_HUGE ((NASC_GET_INFLIGHT_GATHER + 2) * NASC_GET_BATCH)

static void
nasc_reader_huge(const struct nasc_reader *r)
{
	void *w;

	if (r->r_batches[r->r_nbatch].rb_off < NASC_GET_HUGE / 2 ||
	    (w = malloc(NASC_GET_HUGE)) == NULL)
		return;
	util_hugepage(w, NASC_GET_HUGE);
	free(w);
}

/*
 * Makes the pages of the slots' buffers present in one call each
 * (util_prefault), not one fault per page as the first batch is laid out.
 * The replies' messages (nng allocates each as it arrives, from the same
 * heap in a process with one malloc arena, as ckptctl) get the same: a
 * block as large as the replies in flight is prefaulted and freed before
 * the first GetChunks, and its pages are theirs.
 */
static void
nasc_reader_prefault(struct nasc_reader *r)
{
	size_t warm = 0;
	void *w;

	/*
	 * Gathering, only compressed chunks are decoded in the slots' buffers,
	 * and the heap the replies take grows with the ramping batches: its
	 * fresh pages need no zeroing by calloc, and populating a block for
	 * them ahead saved no CPU (W3: 1,570 faults without it, 1,930 with).
	 */
	if (r->r_gather) {
		nasc_reader_huge(r);
		return;
	}
	for (size_t i = 0; i < r->r_inflight && i < r->r_nbatch; i++) {
		if (r->r_slots[i].sl_own != NULL)
			util_prefault(r->r_slots[i].sl_own, r->r_buf_cap);
		warm += r->r_buf_cap + r->r_buf_cap / 16; /* and the chunks' headers */
	}
	if (warm >= UTIL_PREFAULT_MIN && (w = malloc(warm)) != NULL) {
		util_prefault(w, warm);
		free(w);
	}
}

/* Starts fetching batch b (its slot is free). */
static void
nasc_reader_submit(struct nasc_reader *r, size_t b)
{
	struct nasc_slot *s = &r->r_slots[b % r->r_inflight];

	s->sl_batch = b;
	s->sl_rv = 0;
	s->sl_mismatch = false;
	s->sl_err.re_code = 0;
	s->sl_err.re_msg[0] = '\0';
	s->sl_buf = r->r_dest != NULL ? r->r_dest + r->r_batches[b].rb_off : s->sl_own;
	nasc_slot_release(s);
	s->sl_submitted = true;
	pool_submit(r->r_nasc->n_pool, &s->sl_job, nasc_reader_job, s);
}

/* Waits for batch b (fetching it here if no worker took it yet). */
static struct nasc_slot *
nasc_reader_wait(struct nasc_reader *r, size_t b)
{
	struct nasc_slot *s = &r->r_slots[b % r->r_inflight];

	pool_wait(r->r_nasc->n_pool, &s->sl_job, true);
	s->sl_submitted = false;
	return s;
}

/* Waits for the batches in flight (those not begun are dropped) and frees. */
static void
nasc_reader_stop(struct nasc_reader *r)
{
	if (r->r_warm_submitted)
		pool_wait(r->r_nasc->n_pool, &r->r_warm, false);
	for (size_t i = 0; i < NASC_GET_INFLIGHT_MAX; i++) {
		struct nasc_slot *s = &r->r_slots[i];
		if (s->sl_submitted)
			pool_wait(r->r_nasc->n_pool, &s->sl_job, false);
		zchunk_free(s->sl_z);
		free(s->sl_own);
		nasc_slot_release(s);
		free(s->sl_iov);
		free(s->sl_views);
	}
	free(r->r_zeros);
	free(r->r_hashes);
	free(r->r_batches);
}

/*
 * Told the size of the checkpoint about to be written, before its first
 * byte (buffers sized once); a non-zero return stops the read with it.
 */
typedef int (*nasc_expect_fn)(void *arg, uint64_t size);
/*
 * After expect: where to decode the checkpoint's bytes in place (as many as
 * expect was told), or NULL to have them handed to the write function.
 */
typedef uint8_t *(*nasc_dest_fn)(void *arg);

/* Where a reader's bytes go: wr, or in place into dest() (then wr is not called). */
struct nasc_sink {
	nasc_write_fn k_wr;
	nasc_writev_fn k_wrv;      /* instead of k_wr: pieces where they lie (gathering) */
	nasc_expect_fn k_expect;   /* may be NULL */
	nasc_dest_fn k_dest;       /* may be NULL */
	void *k_arg;
};

/* Hands a gathered batch to k's vectored writer, NASC_IOV_MAX pieces at a time. */
static int
nasc_reader_writev(struct nasc_slot *s, const struct nasc_sink *k, struct sha_ctx *whole)
{
	int rv = 0;

	if (whole != NULL)
		for (size_t i = 0; i < s->sl_niov; i++)
			sha_update(whole, s->sl_iov[i].iov_base, s->sl_iov[i].iov_len);
	for (size_t i = 0; rv == 0 && i < s->sl_niov; i += NASC_IOV_MAX) {
		size_t m = s->sl_niov - i < NASC_IOV_MAX ? s->sl_niov - i : NASC_IOV_MAX;
		rv = k->k_wrv(k->k_arg, s->sl_iov + i, (int)m);
	}
	return rv;
}

/*
 * nasc_retrieve(); *read_seq is the sequence of the record read, even on
 * failure. expect (may be NULL) is called with the record's size.
 */
static int
nasc_retrieve_seq(struct nasc *n, const char *node, const char *component, uint64_t seq,
    const struct nasc_sink *k, unsigned timeout_ms, struct nasc_info *ret_info,
    uint64_t *read_seq, struct rpc_error *ret_err)
{
	Ckpt__V1__RetrieveRequest rreq = CKPT__V1__RETRIEVE_REQUEST__INIT;
	struct nasc_record rec;
	struct nasc_reader r;
	struct sha_ctx *whole = NULL;
	struct nasc_info info;
	uint8_t digest[SHA_LEN];
	uint64_t total = 0;
	int rv;

	ret_err->re_code = 0;
	ret_err->re_msg[0] = '\0';
	ret_err->re_reason[0] = '\0';
	memset(&r, 0, sizeof(r));
	memset(&rec, 0, sizeof(rec));
	r.r_nasc = n;
	r.r_timeout_ms = timeout_ms;
	rreq.node = (char *)(node != NULL ? node : "");
	rreq.component = (char *)component;
	rreq.seq = seq;
	/* While the NAS looks the record up: the workers start, SHA-256 gets ready. */
	r.r_warm_submitted = true;
	pool_submit(n->n_pool, &r.r_warm, nasc_reader_warm, NULL);
	rv = nasc_record_get(n, &rreq, timeout_ms, &rec, ret_err);
	if (rv != 0)
		goto out;
	nasc_info_from_pb(rec.rc_info, &info);
	*read_seq = info.ni_seq;
	rv = 0;
	/* A plain SHA-256 (records of the older format) costs a pass over the bytes. */
	if (info.ni_has_sha256)
		rv = sha_new(&whole);
	if (rv != 0)
		goto out;
	r.r_gather = k->k_wrv != NULL && k->k_dest == NULL;
	r.r_inflight = r.r_gather ? NASC_GET_INFLIGHT_GATHER : NASC_GET_INFLIGHT;
	rv = nasc_reader_plan(&r, rec.rc_ptrs, rec.rc_n, info.ni_size);
	/*
	 * The digest of the list; every chunk read is verified against the
	 * list, so the bytes written are those the digest names.
	 */
	if (rv == 0)
		rv = digest_refs(rec.rc_ptrs, rec.rc_n, digest);
	if (rv == -EINVAL || rv == -EBADMSG || (rv == 0 && info.ni_has_digest &&
	    memcmp(digest, info.ni_digest, SHA_LEN) != 0)) {
		rv = -EBADMSG;
		goto out_mismatch;
	}
	if (rv == 0 && !info.ni_has_digest) {
		memcpy(info.ni_digest, digest, SHA_LEN);
		info.ni_has_digest = true;
	}
	/* The record is consistent: its size is the checkpoint's. */
	if (rv == 0 && k->k_expect != NULL && (rv = k->k_expect(k->k_arg, info.ni_size)) != 0) {
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "%s/%s@%llu (%llu bytes): %s",
		    info.ni_node, info.ni_component, (unsigned long long)info.ni_seq,
		    (unsigned long long)info.ni_size, err_str(rv));
		goto out;
	}
	if (rv == 0)
		rv = nasc_reader_start(&r, k->k_dest != NULL ? k->k_dest(k->k_arg) : NULL);
	if (rv != 0)
		goto out;
	/* Before the first reply comes: its message is to take the pages prefaulted. */
	nasc_reader_prefault(&r);
	for (size_t b = 0, next = 0; b < r.r_nbatch; b++) {
		struct nasc_slot *s;

		/* Batch next goes in the slot batch next - r_inflight left, done with. */
		for (; next < r.r_nbatch && next < b + r.r_inflight; next++)
			nasc_reader_submit(&r, next);
		s = nasc_reader_wait(&r, b);
		if (s->sl_rv != 0) {
			rv = s->sl_rv;
			if (rv == -EBADMSG && s->sl_mismatch)
				goto out_mismatch;
			*ret_err = s->sl_err;
			if (rv == -EBADMSG)
				goto out_data_loss;
			goto out;
		}
		total += s->sl_len;
		if (r.r_gather) {
			rv = nasc_reader_writev(s, k, whole);
			nasc_slot_release(s);
		} else {
			if (whole != NULL)
				sha_update(whole, s->sl_buf, s->sl_len);
			rv = r.r_dest != NULL ? 0 : k->k_wr(k->k_arg, s->sl_buf, s->sl_len);
		}
		if (rv != 0) {
			snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "writing checkpoint: %s",
			    err_str(rv));
			goto out;
		}
	}
	if (whole != NULL)
		sha_final(whole, digest);
	if (total != info.ni_size ||
	    (whole != NULL && memcmp(digest, info.ni_sha256, SHA_LEN) != 0)) {
		rv = -EBADMSG;
		goto out_mismatch;
	}
	*ret_info = info;
	goto out;

out_mismatch:
	snprintf(ret_err->re_msg, sizeof(ret_err->re_msg),
	    "%s/%s@%llu: DATA_LOSS: checkpoint bytes do not match their digest", info.ni_node,
	    info.ni_component, (unsigned long long)info.ni_seq);
out_data_loss:
	ret_err->re_code = CKPT__V1__CODE__DATA_LOSS;
out:
	nasc_reader_stop(&r);
	sha_free(whole);
	nasc_record_free(&rec);
	return rv;
}

int
nasc_retrieve(struct nasc *n, const char *node, const char *component, uint64_t seq,
    nasc_write_fn wr, void *wr_arg, unsigned timeout_ms, struct nasc_info *ret_info,
    struct rpc_error *ret_err)
{
	struct nasc_sink k = { wr, NULL, NULL, NULL, wr_arg };
	uint64_t read_seq = 0;
	return nasc_retrieve_seq(n, node, component, seq, &k, timeout_ms, ret_info, &read_seq,
	    ret_err);
}

/* The newest sequence of component older than seq (any node); -ENOENT when none. */
static int
nasc_previous(struct nasc *n, const char *component, uint64_t seq, unsigned timeout_ms,
    char *ret_node, uint64_t *ret_seq, struct rpc_error *err)
{
	Ckpt__V1__ListRequest req = CKPT__V1__LIST_REQUEST__INIT;
	Ckpt__V1__ListReply *rep = NULL;
	uint64_t best = 0;
	int rv;

	req.node = "";
	req.component = (char *)component;
	rv = nasc_call(n, NAS_LIST, &req.base, timeout_ms, (ProtobufCMessage **)&rep, err);
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < rep->n_checkpoints; i++) {
		const Ckpt__V1__CheckpointInfo *ci = rep->checkpoints[i];
		if (ci == NULL || ci->seq >= seq || ci->seq <= best || key_name_check(ci->node) != 0 ||
		    strcmp(ci->component, component) != 0)
			continue;
		best = ci->seq;
		snprintf(ret_node, KEY_NAME_MAX + 1, "%s", ci->node);
	}
	rpc_reply_free(&rep->base);
	if (best == 0)
		return -ENOENT;
	*ret_seq = best;
	return 0;
}

/* nasc_retrieve_fallback() into the sink k; reset before each new attempt. */
static int
nasc_retrieve_fallback_x(struct nasc *n, const char *node, const char *component, uint64_t seq,
    const struct nasc_sink *k, nasc_reset_fn reset, unsigned timeout_ms,
    struct nasc_info *ret_info, struct nasc_fallback *ret_fb, struct rpc_error *ret_err)
{
	struct nasc_fallback fb;
	char prev_node[KEY_NAME_MAX + 1];
	struct nasc_info info;
	struct rpc_error perr;
	uint64_t read_seq = 0;
	bool rewound = true;
	int rv;

	memset(&fb, 0, sizeof(fb));
	rv = nasc_retrieve_seq(n, node, component, seq, k, timeout_ms, &info, &read_seq, ret_err);
	while (rv == -EBADMSG && reset != NULL && fb.nf_skipped < NASC_FALLBACK_MAX &&
	    read_seq != 0) {
		uint64_t prev;
		if (fb.nf_bad_seq == 0) {
			fb.nf_bad_seq = read_seq;
			snprintf(fb.nf_bad_msg, sizeof(fb.nf_bad_msg), "%s", ret_err->re_msg);
		}
		fb.nf_skipped++;
		if (nasc_previous(n, component, read_seq, timeout_ms, prev_node, &prev, &perr) != 0)
			break;
		if (reset(k->k_arg) != 0) {
			rewound = false;
			break;
		}
		read_seq = 0;
		rv = nasc_retrieve_seq(n, prev_node, component, prev, k, timeout_ms, &info, &read_seq,
		    ret_err);
	}
	if (rv == -EBADMSG && fb.nf_bad_seq != 0 && !rewound)
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "%s (no fallback to an older "
		    "sequence: the output cannot be rewound)", fb.nf_bad_msg);
	else if (rv == -EBADMSG && fb.nf_bad_seq != 0)
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "%s (and no older sequence of %s "
		    "could be read)", fb.nf_bad_msg, component);
	if (rv != 0)
		return rv;
	*ret_info = info;
	*ret_fb = fb;
	return 0;
}

int
nasc_retrieve_fallback(struct nasc *n, const char *node, const char *component, uint64_t seq,
    nasc_write_fn wr, nasc_reset_fn reset, void *arg, unsigned timeout_ms,
    struct nasc_info *ret_info, struct nasc_fallback *ret_fb, struct rpc_error *ret_err)
{
	struct nasc_sink k = { wr, NULL, NULL, NULL, arg };
	return nasc_retrieve_fallback_x(n, node, component, seq, &k, reset, timeout_ms, ret_info,
	    ret_fb, ret_err);
}

int
nasc_retrieve_fallback_v(struct nasc *n, const char *node, const char *component, uint64_t seq,
    nasc_writev_fn wr, nasc_reset_fn reset, void *arg, unsigned timeout_ms,
    struct nasc_info *ret_info, struct nasc_fallback *ret_fb, struct rpc_error *ret_err)
{
	struct nasc_sink k = { NULL, wr, NULL, NULL, arg };
	return nasc_retrieve_fallback_x(n, node, component, seq, &k, reset, timeout_ms, ret_info,
	    ret_fb, ret_err);
}

struct nasc_growbuf {
	uint8_t *gb_data;
	size_t gb_len, gb_cap, gb_max;
	size_t gb_want;      /* the size expect was told */
};

static int
nasc_growbuf_write(void *arg, const void *buf, size_t len)
{
	struct nasc_growbuf *g = arg;
	if (len > g->gb_max - g->gb_len)
		return -EFBIG;
	if (g->gb_len + len > g->gb_cap) {
		size_t cap = g->gb_cap ? g->gb_cap : 65536;
		uint8_t *d;
		while (cap < g->gb_len + len)
			cap *= 2;
		d = realloc(g->gb_data, cap);
		if (d == NULL)
			return -ENOMEM;
		g->gb_data = d;
		g->gb_cap = cap;
	}
	memcpy(g->gb_data + g->gb_len, buf, len);
	g->gb_len += len;
	return 0;
}

/* The size is known before the bytes come: one allocation of it, no doubling. */
static int
nasc_growbuf_expect(void *arg, uint64_t size)
{
	struct nasc_growbuf *g = arg;
	uint8_t *d;

	if (size > g->gb_max)
		return -EFBIG;
	g->gb_want = (size_t)size;
	if (size == g->gb_cap || size == 0)
		return 0;
	/* Exactly size (a fallback to a smaller checkpoint shrinks it); nothing written is kept. */
	d = malloc(size);
	if (d == NULL)
		return -ENOMEM;
	free(g->gb_data);
	g->gb_data = d;
	g->gb_cap = size;
	g->gb_len = 0;
	return 0;
}

/* The bytes are decoded in place: the buffer expect made holds them all on success. */
static uint8_t *
nasc_growbuf_dest(void *arg)
{
	struct nasc_growbuf *g = arg;

	if (g->gb_want == 0)
		return NULL; /* empty: nothing to decode */
	g->gb_len = g->gb_want;
	return g->gb_data;
}

static int
nasc_growbuf_reset(void *arg)
{
	struct nasc_growbuf *g = arg;
	g->gb_len = 0;
	return 0;
}

/* The buffer of a retrieve that returned rv: handed over (never NULL) on success, else freed. */
static int
nasc_growbuf_take(struct nasc_growbuf *g, int rv, void **ret_buf, size_t *ret_len)
{
	if (rv != 0) {
		free(g->gb_data);
		return rv;
	}
	if (g->gb_data == NULL && (g->gb_data = malloc(1)) == NULL)
		return -ENOMEM;
	*ret_buf = g->gb_data;
	*ret_len = g->gb_len;
	return 0;
}

int
nasc_retrieve_buf_fallback(struct nasc *n, const char *node, const char *component,
    uint64_t seq, size_t max_size, unsigned timeout_ms, void **ret_buf, size_t *ret_len,
    struct nasc_info *ret_info, struct nasc_fallback *ret_fb, struct rpc_error *ret_err)
{
	struct nasc_growbuf g = { NULL, 0, 0, max_size, 0 };
	struct nasc_sink k = { nasc_growbuf_write, NULL, nasc_growbuf_expect, nasc_growbuf_dest, &g };
	int rv = nasc_retrieve_fallback_x(n, node, component, seq, &k, nasc_growbuf_reset,
	    timeout_ms, ret_info, ret_fb, ret_err);
	return nasc_growbuf_take(&g, rv, ret_buf, ret_len);
}

int
nasc_retrieve_buf(struct nasc *n, const char *node, const char *component, uint64_t seq,
    size_t max_size, unsigned timeout_ms, void **ret_buf, size_t *ret_len,
    struct nasc_info *ret_info, struct rpc_error *ret_err)
{
	struct nasc_growbuf g = { NULL, 0, 0, max_size, 0 };
	struct nasc_sink k = { nasc_growbuf_write, NULL, nasc_growbuf_expect, nasc_growbuf_dest, &g };
	uint64_t read_seq = 0;
	int rv = nasc_retrieve_seq(n, node, component, seq, &k, timeout_ms, ret_info, &read_seq,
	    ret_err);
	return nasc_growbuf_take(&g, rv, ret_buf, ret_len);
}

#include "nasc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

enum {
	NAS_STORE = 0,
	NAS_RETRIEVE = 1,
	NAS_HAVE_CHUNKS = 5,
	NAS_PUT_CHUNKS = 6,
	NAS_GET_CHUNKS = 7,
};

struct nasc {
	struct rpc_client *n_clients[NASC_URLS_MAX];
	size_t n_count;
};

int
nasc_open(char *const *urls, size_t n, unsigned flags, struct nasc **ret_nasc,
    struct rpc_error *ret_err)
{
	struct nasc *c;
	size_t ok = 0;
	int rv = 0, last = 0;

	if (n == 0 || n > NASC_URLS_MAX) {
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "need 1 to %d NAS addresses, got %zu",
		    NASC_URLS_MAX, n);
		ret_err->re_code = CKPT__V1__CODE__INVALID_ARGUMENT;
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		rv = rpc_client_open(urls[i], &ckpt__v1__nas__descriptor, flags, 0,
		    &c->n_clients[c->n_count], ret_err);
		if (rv == 0) {
			c->n_count++;
			ok++;
		} else {
			last = rv;
		}
	}
	if (ok == 0) {
		free(c);
		return last;
	}
	*ret_nasc = c;
	return 0;
}

void
nasc_close(struct nasc *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n_count; i++)
		rpc_client_close(n->n_clients[i]);
	free(n);
}

void
nasc_abort(struct nasc *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n_count; i++)
		rpc_client_abort(n->n_clients[i]);
}

int
nasc_call(struct nasc *n, unsigned method, const ProtobufCMessage *req, unsigned timeout_ms,
    ProtobufCMessage **ret_reply, struct rpc_error *ret_err)
{
	int rv = -ENOENT;
	for (size_t i = 0; i < n->n_count; i++) {
		rv = rpc_client_call(n->n_clients[i], method, req, timeout_ms, ret_reply, ret_err);
		if (rv != -ECONNREFUSED)
			break;
	}
	return rv;
}

void
nasc_info_from_pb(const Ckpt__V1__CheckpointInfo *pb, struct nasc_info *ret_info)
{
	struct nasc_info i;
	memset(&i, 0, sizeof(i));
	if (pb != NULL) {
		snprintf(i.ni_node, sizeof(i.ni_node), "%s", pb->node);
		snprintf(i.ni_component, sizeof(i.ni_component), "%s", pb->component);
		snprintf(i.ni_kind, sizeof(i.ni_kind), "%s", pb->kind);
		i.ni_seq = pb->seq;
		i.ni_epoch = pb->epoch;
		i.ni_size = pb->size;
		i.ni_created_unix_ms = pb->created_unix_ms;
		if (pb->sha256.len == SHA_LEN)
			memcpy(i.ni_sha256, pb->sha256.data, SHA_LEN);
	}
	*ret_info = i;
}

/* ---- store ---- */

struct nasc_refs {
	Ckpt__V1__ChunkRef *r_refs;
	Ckpt__V1__ChunkRef **r_ptrs;
	uint8_t (*r_sha)[SHA_LEN];
	size_t r_count, r_cap;
};

static int
nasc_refs_add(struct nasc_refs *r, const uint8_t *sha, uint32_t size)
{
	if (r->r_count == r->r_cap) {
		size_t cap = r->r_cap ? 2 * r->r_cap : 64;
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
	memcpy(r->r_sha[r->r_count], sha, SHA_LEN);
	ckpt__v1__chunk_ref__init(&r->r_refs[r->r_count]);
	r->r_refs[r->r_count].size = size;
	r->r_count++;
	return 0;
}

static void
nasc_refs_free(struct nasc_refs *r)
{
	free(r->r_refs);
	free(r->r_ptrs);
	free(r->r_sha);
}

/* Sends the chunks of one batch the NAS lacks. */
static int
nasc_store_batch(struct nasc *n, const uint8_t *buf, size_t len, const struct nasc_refs *r,
    size_t first, unsigned timeout_ms, struct rpc_error *err)
{
	size_t count = r->r_count - first;
	Ckpt__V1__HaveChunksRequest hreq = CKPT__V1__HAVE_CHUNKS_REQUEST__INIT;
	Ckpt__V1__HaveChunksReply *hrep = NULL;
	Ckpt__V1__PutChunksRequest preq = CKPT__V1__PUT_CHUNKS_REQUEST__INIT;
	Ckpt__V1__PutChunksReply *prep = NULL;
	ProtobufCBinaryData hashes[NASC_BATCH / 4096 + 1];
	Ckpt__V1__Chunk chunks[NASC_BATCH / 4096 + 1];
	Ckpt__V1__Chunk *cptr[NASC_BATCH / 4096 + 1];
	size_t offs[NASC_BATCH / 4096 + 1], off = 0;
	int rv;

	(void)len;
	if (count == 0)
		return 0;
	for (size_t i = 0; i < count; i++) {
		hashes[i].data = (uint8_t *)r->r_sha[first + i];
		hashes[i].len = SHA_LEN;
		offs[i] = off;
		off += r->r_refs[first + i].size;
	}
	hreq.n_sha256 = count;
	hreq.sha256 = hashes;
	rv = nasc_call(n, NAS_HAVE_CHUNKS, &hreq.base, timeout_ms, (ProtobufCMessage **)&hrep, err);
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < hrep->n_missing; i++) {
		uint32_t k = hrep->missing[i];
		if (k >= count) {
			rv = -EPROTO;
			snprintf(err->re_msg, sizeof(err->re_msg), "NAS answered a bad chunk index %u", k);
			goto out;
		}
		ckpt__v1__chunk__init(&chunks[i]);
		chunks[i].sha256 = hashes[k];
		chunks[i].data.data = (uint8_t *)buf + offs[k];
		chunks[i].data.len = r->r_refs[first + k].size;
		cptr[i] = &chunks[i];
	}
	if (hrep->n_missing > 0) {
		preq.n_chunks = hrep->n_missing;
		preq.chunks = cptr;
		rv = nasc_call(n, NAS_PUT_CHUNKS, &preq.base, timeout_ms, (ProtobufCMessage **)&prep, err);
		if (prep != NULL)
			rpc_reply_free(&prep->base);
	}
out:
	rpc_reply_free(&hrep->base);
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

int
nasc_store(struct nasc *n, const struct nasc_put *p, nasc_read_fn rd, void *rd_arg,
    unsigned timeout_ms, struct nasc_info *ret_info, struct rpc_error *ret_err)
{
	Ckpt__V1__StoreRequest sreq = CKPT__V1__STORE_REQUEST__INIT;
	Ckpt__V1__StoreReply *srep = NULL;
	struct nasc_refs refs = { 0 };
	struct sha_ctx *whole = NULL;
	uint8_t digest[SHA_LEN];
	uint8_t *buf;
	uint64_t total = 0;
	int rv;

	ret_err->re_code = 0;
	ret_err->re_msg[0] = '\0';
	buf = malloc(NASC_BATCH);
	if (buf == NULL)
		return -ENOMEM;
	rv = sha_new(&whole);
	if (rv != 0)
		goto out;
	for (;;) {
		size_t len = 0, first = refs.r_count;
		rv = nasc_read_full(rd, rd_arg, buf, NASC_BATCH, &len);
		if (rv != 0) {
			snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "reading checkpoint: %s",
			    err_str(rv));
			goto out;
		}
		if (len == 0)
			break;
		sha_update(whole, buf, len);
		total += len;
		for (size_t off = 0; off < len; off += NASC_CHUNK) {
			size_t clen = len - off < NASC_CHUNK ? len - off : NASC_CHUNK;
			uint8_t h[SHA_LEN];
			sha256(buf + off, clen, h);
			rv = nasc_refs_add(&refs, h, (uint32_t)clen);
			if (rv != 0)
				goto out;
		}
		rv = nasc_store_batch(n, buf, len, &refs, first, timeout_ms, ret_err);
		if (rv != 0)
			goto out;
		if (len < NASC_BATCH)
			break;
	}
	sha_final(whole, digest);

	refs.r_ptrs = malloc((refs.r_count ? refs.r_count : 1) * sizeof(*refs.r_ptrs));
	if (refs.r_ptrs == NULL) {
		rv = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < refs.r_count; i++) {
		refs.r_refs[i].sha256.data = refs.r_sha[i];
		refs.r_refs[i].sha256.len = SHA_LEN;
		refs.r_ptrs[i] = &refs.r_refs[i];
	}
	sreq.node = (char *)p->np_node;
	sreq.component = (char *)p->np_component;
	sreq.kind = (char *)(p->np_kind != NULL ? p->np_kind : "");
	sreq.seq = p->np_seq;
	sreq.epoch = p->np_epoch;
	sreq.size = total;
	sreq.sha256.data = digest;
	sreq.sha256.len = SHA_LEN;
	sreq.n_chunks = refs.r_count;
	sreq.chunks = refs.r_ptrs;
	rv = nasc_call(n, NAS_STORE, &sreq.base, timeout_ms, (ProtobufCMessage **)&srep, ret_err);
	if (rv == 0) {
		nasc_info_from_pb(srep->info, ret_info);
		rpc_reply_free(&srep->base);
	}
out:
	sha_free(whole);
	nasc_refs_free(&refs);
	free(buf);
	return rv;
}

struct nasc_membuf {
	const uint8_t *mb_data;
	size_t mb_len, mb_off;
};

static ssize_t
nasc_membuf_read(void *arg, void *buf, size_t len)
{
	struct nasc_membuf *m = arg;
	size_t k = m->mb_len - m->mb_off < len ? m->mb_len - m->mb_off : len;
	memcpy(buf, m->mb_data + m->mb_off, k);
	m->mb_off += k;
	return (ssize_t)k;
}

int
nasc_store_buf(struct nasc *n, const struct nasc_put *p, const void *buf, size_t len,
    unsigned timeout_ms, struct nasc_info *ret_info, struct rpc_error *ret_err)
{
	struct nasc_membuf m = { buf, len, 0 };
	return nasc_store(n, p, nasc_membuf_read, &m, timeout_ms, ret_info, ret_err);
}

/* ---- retrieve ---- */

int
nasc_retrieve(struct nasc *n, const char *node, const char *component, uint64_t seq,
    nasc_write_fn wr, void *wr_arg, unsigned timeout_ms, struct nasc_info *ret_info,
    struct rpc_error *ret_err)
{
	Ckpt__V1__RetrieveRequest rreq = CKPT__V1__RETRIEVE_REQUEST__INIT;
	Ckpt__V1__RetrieveReply *rrep = NULL;
	ProtobufCBinaryData *hashes = NULL;
	struct sha_ctx *whole = NULL;
	struct nasc_info info;
	uint8_t digest[SHA_LEN];
	size_t next = 0;
	uint64_t total = 0;
	int rv;

	ret_err->re_code = 0;
	ret_err->re_msg[0] = '\0';
	rreq.node = (char *)(node != NULL ? node : "");
	rreq.component = (char *)component;
	rreq.seq = seq;
	rv = nasc_call(n, NAS_RETRIEVE, &rreq.base, timeout_ms, (ProtobufCMessage **)&rrep, ret_err);
	if (rv != 0)
		return rv;
	nasc_info_from_pb(rrep->info, &info);
	rv = sha_new(&whole);
	if (rv != 0)
		goto out;
	hashes = calloc(rrep->n_chunks ? rrep->n_chunks : 1, sizeof(*hashes));
	if (hashes == NULL) {
		rv = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < rrep->n_chunks; i++) {
		if (rrep->chunks[i]->sha256.len != SHA_LEN) {
			rv = -EBADMSG;
			goto out_mismatch;
		}
		hashes[i] = rrep->chunks[i]->sha256;
	}
	while (next < rrep->n_chunks) {
		Ckpt__V1__GetChunksRequest greq = CKPT__V1__GET_CHUNKS_REQUEST__INIT;
		Ckpt__V1__GetChunksReply *grep = NULL;
		size_t want = 0, bytes = 0;

		/* Ask for what fits in one bounded reply. */
		while (next + want < rrep->n_chunks &&
		    (want == 0 || bytes + rrep->chunks[next + want]->size <= NASC_BATCH)) {
			bytes += rrep->chunks[next + want]->size;
			want++;
		}
		greq.n_sha256 = want;
		greq.sha256 = &hashes[next];
		greq.max_bytes = NASC_BATCH;
		rv = nasc_call(n, NAS_GET_CHUNKS, &greq.base, timeout_ms, (ProtobufCMessage **)&grep,
		    ret_err);
		if (rv != 0)
			goto out;
		if (grep->n_chunks == 0 || grep->n_chunks > want) {
			rpc_reply_free(&grep->base);
			rv = -EPROTO;
			snprintf(ret_err->re_msg, sizeof(ret_err->re_msg),
			    "NAS answered %zu chunks for %zu asked", grep->n_chunks, want);
			goto out;
		}
		for (size_t i = 0; i < grep->n_chunks && rv == 0; i++) {
			const Ckpt__V1__Chunk *ch = grep->chunks[i];
			uint8_t h[SHA_LEN];
			sha256(ch->data.data, ch->data.len, h);
			if (ch->data.len != rrep->chunks[next + i]->size ||
			    memcmp(h, hashes[next + i].data, SHA_LEN) != 0) {
				rv = -EBADMSG;
				break;
			}
			sha_update(whole, ch->data.data, ch->data.len);
			total += ch->data.len;
			rv = wr(wr_arg, ch->data.data, ch->data.len);
			if (rv != 0)
				snprintf(ret_err->re_msg, sizeof(ret_err->re_msg),
				    "writing checkpoint: %s", err_str(rv));
		}
		next += grep->n_chunks;
		rpc_reply_free(&grep->base);
		if (rv == -EBADMSG)
			goto out_mismatch;
		if (rv != 0)
			goto out;
	}
	sha_final(whole, digest);
	if (total != info.ni_size || memcmp(digest, info.ni_sha256, SHA_LEN) != 0) {
		rv = -EBADMSG;
		goto out_mismatch;
	}
	*ret_info = info;
	goto out;

out_mismatch:
	ret_err->re_code = CKPT__V1__CODE__DATA_LOSS;
	snprintf(ret_err->re_msg, sizeof(ret_err->re_msg),
	    "%s/%s@%llu: DATA_LOSS: checkpoint bytes do not match their SHA-256", info.ni_node,
	    info.ni_component, (unsigned long long)info.ni_seq);
out:
	free(hashes);
	sha_free(whole);
	rpc_reply_free(&rrep->base);
	return rv;
}

struct nasc_growbuf {
	uint8_t *gb_data;
	size_t gb_len, gb_cap, gb_max;
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

int
nasc_retrieve_buf(struct nasc *n, const char *node, const char *component, uint64_t seq,
    size_t max_size, unsigned timeout_ms, void **ret_buf, size_t *ret_len,
    struct nasc_info *ret_info, struct rpc_error *ret_err)
{
	struct nasc_growbuf g = { NULL, 0, 0, max_size };
	int rv = nasc_retrieve(n, node, component, seq, nasc_growbuf_write, &g, timeout_ms,
	    ret_info, ret_err);
	if (rv != 0) {
		free(g.gb_data);
		return rv;
	}
	if (g.gb_data == NULL)
		g.gb_data = malloc(1);
	if (g.gb_data == NULL)
		return -ENOMEM;
	*ret_buf = g.gb_data;
	*ret_len = g.gb_len;
	return 0;
}

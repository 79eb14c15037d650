#include "fakes.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/agent.pb-c.h"
#include "ckpt/v1/manager.pb-c.h"
#include "ckpt/v1/nas.pb-c.h"
#include "digest.h"
#include "err.h"
#include "chunklist.h"
#include "rpc.h"
#include "util.h"

/* ---- NAS ---- */

struct fchunk {
	uint8_t fc_sha[SHA_LEN];
	uint8_t *fc_data;
	size_t fc_len;
};

struct frec {
	struct fnas_rec r;
	size_t nchunks;
	uint8_t (*chunk_sha)[SHA_LEN];
	uint32_t *chunk_size;         /* | FNAS_HOLE for a hole */
};

#define FNAS_HOLE 0x80000000u

struct fnas {
	struct rpc_server *srv;
	pthread_mutex_t mu;
	struct fchunk *chunks;
	size_t nchunks;
	struct frec *recs;
	size_t nrecs;
	bool corrupt;
	bool down;            /* fnas_set_down() */
	unsigned refuse;      /* fnas_refuse_missing(): Stores left to refuse */
	unsigned refused;     /* Stores refused so */
};

static struct fchunk *
fnas_chunk(struct fnas *n, const uint8_t *sha)
{
	for (size_t i = 0; i < n->nchunks; i++)
		if (memcmp(n->chunks[i].fc_sha, sha, SHA_LEN) == 0)
			return &n->chunks[i];
	return NULL;
}

static Ckpt__V1__CheckpointInfo *
fnas_info(struct arena *a, const struct frec *f)
{
	Ckpt__V1__CheckpointInfo *ci = arena_alloc(a, sizeof(*ci));
	ckpt__v1__checkpoint_info__init(ci);
	ci->node = arena_strdup(a, f->r.fr_node);
	ci->component = arena_strdup(a, f->r.fr_component);
	ci->seq = f->r.fr_seq;
	ci->epoch = f->r.fr_epoch;
	ci->size = f->r.fr_size;
	ci->digest.data = arena_memdup(a, f->r.fr_sha256, SHA_LEN);
	ci->digest.len = SHA_LEN;
	ci->chunk_count = (uint32_t)f->nchunks;
	ci->kind = arena_strdup(a, f->r.fr_kind[0] != '\0' ? f->r.fr_kind : "demo");
	return ci;
}

/* Whether the NAS plays down (every call refused UNAVAILABLE, as by a NAS that left). */
static bool
fnas_down(struct fnas *n, struct rpc_call *call)
{
	bool down;

	pthread_mutex_lock(&n->mu);
	down = n->down;
	pthread_mutex_unlock(&n->mu);
	if (down)
		rpc_call_errorf(call, "NAS down (test)");
	return down;
}

static int
fnas_store(void *arg, struct rpc_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rp)
{
	struct fnas *n = arg;
	const Ckpt__V1__StoreRequest *req = (const Ckpt__V1__StoreRequest *)rq;
	Ckpt__V1__StoreReply *rep = (Ckpt__V1__StoreReply *)rp;
	struct sha_ctx *ctx;
	struct frec f;
	uint8_t whole[SHA_LEN];
	uint64_t size = 0, maxseq = 0, maxepoch = 0;
	int rv = 0;

	memset(&f, 0, sizeof(f));
	if (fnas_down(n, call))
		return -ECONNREFUSED;
	pthread_mutex_lock(&n->mu);
	if (n->refuse > 0) {
		n->refuse--;
		n->refused++;
		pthread_mutex_unlock(&n->mu);
		/* As the NAS refuses a commit whose chunks were deleted meanwhile. */
		rpc_call_reason(call, ERR_REASON_MISSING_CHUNKS);
		rpc_call_errorf(call, "1 of %zu chunks missing (first: index 0); send them with "
		    "PutChunks", req->n_chunk_sizes);
		return -ESTALE;
	}
	pthread_mutex_unlock(&n->mu);
	if (req->digest.len != SHA_LEN)
		return -EINVAL;
	{
		char err[128];
		rv = chunklist_expand(rpc_call_arena(call), req, 1u << 20, &req, err, sizeof(err));
		if (rv != 0) {
			rpc_call_errorf(call, "%s", err);
			return rv;
		}
	}
	sha_new(&ctx);
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < req->n_chunks; i++) {
		struct fchunk *c;
		if (req->chunks[i]->zero) {
			uint8_t *z = calloc(1, req->chunks[i]->size + 1u);
			sha_update(ctx, z, req->chunks[i]->size);
			size += req->chunks[i]->size;
			free(z);
			continue;
		}
		c = fnas_chunk(n, req->chunks[i]->sha256.data);
		if (c == NULL) {
			rv = -ESTALE;
			rpc_call_errorf(call, "chunk %zu missing", i);
			goto out;
		}
		sha_update(ctx, c->fc_data, c->fc_len);
		size += c->fc_len;
	}
	/* As the NAS does: the digest from the chunk list (the bytes were hashed to check them). */
	sha_final(ctx, whole);
	if (size != req->size || digest_refs(req->chunks, req->n_chunks, whole) != 0 ||
	    memcmp(whole, req->digest.data, SHA_LEN) != 0) {
		rv = -EBADMSG;
		goto out;
	}
	for (size_t i = 0; i < n->nrecs; i++) {
		if (strcmp(n->recs[i].r.fr_component, req->component) != 0)
			continue;
		if (n->recs[i].r.fr_seq > maxseq)
			maxseq = n->recs[i].r.fr_seq;
		if (n->recs[i].r.fr_epoch > maxepoch)
			maxepoch = n->recs[i].r.fr_epoch;
		if (req->seq != 0 && n->recs[i].r.fr_seq == req->seq) {
			rpc_call_errorf(call, "%s@%llu exists", req->component,
			    (unsigned long long)req->seq);
			rv = -EEXIST;
			goto out;
		}
	}
	if (req->epoch < maxepoch) {
		rpc_call_errorf(call, "stale epoch");
		rv = -ESTALE;
		goto out;
	}
	snprintf(f.r.fr_node, sizeof(f.r.fr_node), "%s", req->node);
	snprintf(f.r.fr_component, sizeof(f.r.fr_component), "%s", req->component);
	f.r.fr_seq = req->seq != 0 ? req->seq : maxseq + 1;
	f.r.fr_epoch = req->epoch;
	f.r.fr_size = size;
	memcpy(f.r.fr_sha256, whole, SHA_LEN);
	f.nchunks = req->n_chunks;
	f.chunk_sha = calloc(f.nchunks + 1, SHA_LEN);
	f.chunk_size = calloc(f.nchunks + 1, sizeof(uint32_t));
	for (size_t i = 0; i < f.nchunks; i++) {
		if (!req->chunks[i]->zero)
			memcpy(f.chunk_sha[i], req->chunks[i]->sha256.data, SHA_LEN);
		f.chunk_size[i] = req->chunks[i]->size | (req->chunks[i]->zero ? FNAS_HOLE : 0);
	}
	n->recs = realloc(n->recs, (n->nrecs + 1) * sizeof(*n->recs));
	n->recs[n->nrecs++] = f;
	rep->info = fnas_info(rpc_call_arena(call), &f);
out:
	pthread_mutex_unlock(&n->mu);
	sha_free(ctx);
	return rv;
}

static const struct frec *
fnas_find(struct fnas *n, const char *node, const char *component, uint64_t seq)
{
	const struct frec *best = NULL;
	for (size_t i = 0; i < n->nrecs; i++) {
		const struct frec *f = &n->recs[i];
		if (strcmp(f->r.fr_component, component) != 0 ||
		    (node[0] != '\0' && strcmp(f->r.fr_node, node) != 0))
			continue;
		if (seq != 0 && f->r.fr_seq == seq)
			return f;
		if (seq == 0 && (best == NULL || f->r.fr_seq > best->r.fr_seq))
			best = f;
	}
	return best;
}

static int
fnas_retrieve(void *arg, struct rpc_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rp)
{
	struct fnas *n = arg;
	const Ckpt__V1__RetrieveRequest *req = (const Ckpt__V1__RetrieveRequest *)rq;
	Ckpt__V1__RetrieveReply *rep = (Ckpt__V1__RetrieveReply *)rp;
	struct arena *a = rpc_call_arena(call);
	const struct frec *f;
	int rv = 0;

	if (fnas_down(n, call))
		return -ECONNREFUSED;
	pthread_mutex_lock(&n->mu);
	f = fnas_find(n, req->node, req->component, req->seq);
	if (f == NULL) {
		rpc_call_errorf(call, "no checkpoint of %s", req->component);
		rv = -ENOENT;
		goto out;
	}
	rep->info = fnas_info(a, f);
	rep->chunks = arena_alloc(a, (f->nchunks + 1) * sizeof(*rep->chunks));
	for (size_t i = 0; i < f->nchunks; i++) {
		Ckpt__V1__ChunkRef *cr = arena_alloc(a, sizeof(*cr));
		ckpt__v1__chunk_ref__init(cr);
		cr->size = f->chunk_size[i] & ~FNAS_HOLE;
		cr->zero = (f->chunk_size[i] & FNAS_HOLE) != 0;
		if (!cr->zero) {
			cr->sha256.data = arena_memdup(a, f->chunk_sha[i], SHA_LEN);
			cr->sha256.len = SHA_LEN;
		}
		rep->chunks[i] = cr;
	}
	rep->n_chunks = f->nchunks;
out:
	pthread_mutex_unlock(&n->mu);
	return rv;
}

static int
fnas_list(void *arg, struct rpc_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rp)
{
	struct fnas *n = arg;
	const Ckpt__V1__ListRequest *req = (const Ckpt__V1__ListRequest *)rq;
	Ckpt__V1__ListReply *rep = (Ckpt__V1__ListReply *)rp;
	struct arena *a = rpc_call_arena(call);

	if (fnas_down(n, call))
		return -ECONNREFUSED;
	pthread_mutex_lock(&n->mu);
	rep->checkpoints = arena_alloc(a, (n->nrecs + 1) * sizeof(*rep->checkpoints));
	for (size_t i = 0; i < n->nrecs; i++) {
		const struct frec *f = &n->recs[i];
		if ((req->node[0] != '\0' && strcmp(req->node, f->r.fr_node) != 0) ||
		    (req->component[0] != '\0' && strcmp(req->component, f->r.fr_component) != 0))
			continue;
		if (req->latest_only && fnas_find(n, f->r.fr_node, f->r.fr_component, 0) != f)
			continue;
		rep->checkpoints[rep->n_checkpoints++] = fnas_info(a, f);
	}
	pthread_mutex_unlock(&n->mu);
	return 0;
}

static int
fnas_have(void *arg, struct rpc_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rp)
{
	struct fnas *n = arg;
	const Ckpt__V1__HaveChunksRequest *req = (const Ckpt__V1__HaveChunksRequest *)rq;
	Ckpt__V1__HaveChunksReply *rep = (Ckpt__V1__HaveChunksReply *)rp;

	if (fnas_down(n, call))
		return -ECONNREFUSED;
	rep->missing = arena_alloc(rpc_call_arena(call), (req->n_sha256 + 1) * sizeof(uint32_t));
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < req->n_sha256; i++)
		if (fnas_chunk(n, req->sha256[i].data) == NULL)
			rep->missing[rep->n_missing++] = (uint32_t)i;
	pthread_mutex_unlock(&n->mu);
	return 0;
}

static int
fnas_put(void *arg, struct rpc_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rp)
{
	struct fnas *n = arg;
	const Ckpt__V1__PutChunksRequest *req = (const Ckpt__V1__PutChunksRequest *)rq;
	Ckpt__V1__PutChunksReply *rep = (Ckpt__V1__PutChunksReply *)rp;

	(void)call;
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < req->n_chunks; i++) {
		const Ckpt__V1__Chunk *c = req->chunks[i];
		struct fchunk fc;
		if (fnas_chunk(n, c->sha256.data) != NULL)
			continue;
		memcpy(fc.fc_sha, c->sha256.data, SHA_LEN);
		fc.fc_len = c->data.len;
		fc.fc_data = malloc(c->data.len + 1);
		memcpy(fc.fc_data, c->data.data, c->data.len);
		n->chunks = realloc(n->chunks, (n->nchunks + 1) * sizeof(*n->chunks));
		n->chunks[n->nchunks++] = fc;
		rep->stored++;
	}
	pthread_mutex_unlock(&n->mu);
	return 0;
}

static int
fnas_get(void *arg, struct rpc_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rp)
{
	struct fnas *n = arg;
	const Ckpt__V1__GetChunksRequest *req = (const Ckpt__V1__GetChunksRequest *)rq;
	Ckpt__V1__GetChunksReply *rep = (Ckpt__V1__GetChunksReply *)rp;
	struct arena *a = rpc_call_arena(call);
	int rv = 0;

	rep->chunks = arena_alloc(a, (req->n_sha256 + 1) * sizeof(*rep->chunks));
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < req->n_sha256; i++) {
		struct fchunk *c = fnas_chunk(n, req->sha256[i].data);
		Ckpt__V1__Chunk *out;
		if (c == NULL) {
			rv = -ENOENT;
			break;
		}
		out = arena_alloc(a, sizeof(*out));
		ckpt__v1__chunk__init(out);
		out->sha256.data = arena_memdup(a, c->fc_sha, SHA_LEN);
		out->sha256.len = SHA_LEN;
		out->data.data = arena_memdup(a, c->fc_data, c->fc_len + 1);
		out->data.len = c->fc_len;
		if (n->corrupt && c->fc_len > 0)
			out->data.data[c->fc_len / 2] ^= 0x01;
		rep->chunks[rep->n_chunks++] = out;
	}
	pthread_mutex_unlock(&n->mu);
	return rv;
}

/* Answers while up (the agent probes a NAS it found down with it); no store id. */
static int
fnas_stat(void *arg, struct rpc_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rp)
{
	(void)rq;
	(void)rp;
	return fnas_down(arg, call) ? -ECONNREFUSED : 0;
}

static const rpc_handler_fn fnas_handlers[] = { fnas_store, fnas_retrieve, fnas_list, NULL,
	fnas_stat, fnas_have, fnas_put, fnas_get };

int
fnas_start(const char *url, struct fnas **ret_nas)
{
	struct rpc_server_config sc = { .rs_service = &ckpt__v1__nas__descriptor,
		.rs_handlers = fnas_handlers };
	struct fnas *n = calloc(1, sizeof(*n));
	int rv;

	pthread_mutex_init(&n->mu, NULL);
	sc.rs_arg = n;
	rv = rpc_server_start(&sc, url, &n->srv);
	if (rv != 0) {
		free(n);
		return rv;
	}
	*ret_nas = n;
	return 0;
}

const char *
fnas_url(const struct fnas *n)
{
	return rpc_server_url(n->srv);
}

void
fnas_stop(struct fnas *n)
{
	if (n == NULL)
		return;
	rpc_server_stop(n->srv);
	for (size_t i = 0; i < n->nchunks; i++)
		free(n->chunks[i].fc_data);
	for (size_t i = 0; i < n->nrecs; i++) {
		free(n->recs[i].chunk_sha);
		free(n->recs[i].chunk_size);
	}
	free(n->chunks);
	free(n->recs);
	pthread_mutex_destroy(&n->mu);
	free(n);
}

unsigned
fnas_count(struct fnas *n, const char *component, struct fnas_rec *ret_latest)
{
	const struct frec *latest;
	unsigned count = 0;

	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < n->nrecs; i++)
		count += strcmp(n->recs[i].r.fr_component, component) == 0;
	latest = fnas_find(n, "", component, 0);
	if (latest != NULL && ret_latest != NULL)
		*ret_latest = latest->r;
	pthread_mutex_unlock(&n->mu);
	return count;
}

void
fnas_set_corrupt(struct fnas *n, bool on)
{
	pthread_mutex_lock(&n->mu);
	n->corrupt = on;
	pthread_mutex_unlock(&n->mu);
}

void
fnas_set_kind(struct fnas *n, const char *component, const char *kind)
{
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < n->nrecs; i++)
		if (strcmp(n->recs[i].r.fr_component, component) == 0)
			snprintf(n->recs[i].r.fr_kind, sizeof(n->recs[i].r.fr_kind), "%s", kind);
	pthread_mutex_unlock(&n->mu);
}

void
fnas_set_down(struct fnas *n, bool down)
{
	pthread_mutex_lock(&n->mu);
	n->down = down;
	pthread_mutex_unlock(&n->mu);
}

void
fnas_refuse_missing(struct fnas *n, unsigned count)
{
	pthread_mutex_lock(&n->mu);
	n->refuse = count;
	pthread_mutex_unlock(&n->mu);
}

unsigned
fnas_refused(struct fnas *n)
{
	unsigned k;

	pthread_mutex_lock(&n->mu);
	k = n->refused;
	pthread_mutex_unlock(&n->mu);
	return k;
}

void
fnas_put_record(struct fnas *n, const struct fnas_rec *r)
{
	struct frec f;

	memset(&f, 0, sizeof(f));
	f.r = *r;
	pthread_mutex_lock(&n->mu);
	n->recs = realloc(n->recs, (n->nrecs + 1) * sizeof(*n->recs));
	n->recs[n->nrecs++] = f;
	pthread_mutex_unlock(&n->mu);
}

/* ---- manager ---- */

struct fmgr {
	struct rpc_server *srv;
	char nas_url[256];
	pthread_mutex_t mu;
	struct fmgr_stats st;
	bool reattach;
	char source[256], target[256];
	bool down;           /* fmgr_set_down() */
	unsigned refuse_hb;  /* fmgr_refuse_heartbeats(): heartbeats left to refuse */
	unsigned refused_hb; /* heartbeats refused so */
};

/* Refuses the call fast (UNAVAILABLE) while down, as a manager that restarts. */
static bool
fmgr_down(struct fmgr *m, struct rpc_call *call)
{
	bool down;

	pthread_mutex_lock(&m->mu);
	down = m->down;
	pthread_mutex_unlock(&m->mu);
	if (down)
		rpc_call_errorf(call, "manager down (test)");
	return down;
}

static int
fmgr_attach(void *arg, struct rpc_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rp)
{
	struct fmgr *m = arg;
	const Ckpt__V1__AttachRequest *req = (const Ckpt__V1__AttachRequest *)rq;
	Ckpt__V1__AttachReply *rep = (Ckpt__V1__AttachReply *)rp;
	struct arena *a = rpc_call_arena(call);

	if (fmgr_down(m, call))
		return -ECONNREFUSED;
	rep->nas = arena_alloc(a, sizeof(char *));
	rep->nas[0] = arena_strdup(a, m->nas_url);
	rep->n_nas = 1;
	rep->heartbeat_ms = 50;
	rep->down_after_ms = 500;
	pthread_mutex_lock(&m->mu);
	m->st.fs_attaches++;
	snprintf(m->st.fs_last_address, sizeof(m->st.fs_last_address), "%s", req->address);
	m->st.fs_last_components = (unsigned)req->n_components;
	pthread_mutex_unlock(&m->mu);
	return 0;
}

static int
fmgr_notify(void *arg, struct rpc_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rp)
{
	struct fmgr *m = arg;
	const Ckpt__V1__NotifyRequest *req = (const Ckpt__V1__NotifyRequest *)rq;

	(void)call;
	(void)rp;
	if (req->checkpoint == NULL)
		return -EINVAL;
	pthread_mutex_lock(&m->mu);
	m->st.fs_notifies++;
	snprintf(m->st.fs_last_notified, sizeof(m->st.fs_last_notified), "%s@%llu",
	    req->checkpoint->component, (unsigned long long)req->checkpoint->seq);
	pthread_mutex_unlock(&m->mu);
	return 0;
}

static int
fmgr_heartbeat(void *arg, struct rpc_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rp)
{
	struct fmgr *m = arg;
	Ckpt__V1__HeartbeatReply *rep = (Ckpt__V1__HeartbeatReply *)rp;

	(void)rq;
	if (fmgr_down(m, call))
		return -ECONNREFUSED;
	pthread_mutex_lock(&m->mu);
	if (m->refuse_hb > 0) {
		m->refuse_hb--;
		m->refused_hb++;
		pthread_mutex_unlock(&m->mu);
		rpc_call_errorf(call, "heartbeat refused (test)");
		return -EBUSY;
	}
	m->st.fs_heartbeats++;
	rep->reattach = m->reattach;
	m->reattach = false;
	pthread_mutex_unlock(&m->mu);
	return 0;
}

/* Stop with a final checkpoint on the source, Restore on the target. */
static int
fmgr_migrate(void *arg, struct rpc_call *call, const ProtobufCMessage *rq, ProtobufCMessage *rp)
{
	struct fmgr *m = arg;
	const Ckpt__V1__MigrateRequest *req = (const Ckpt__V1__MigrateRequest *)rq;
	Ckpt__V1__MigrateReply *rep = (Ckpt__V1__MigrateReply *)rp;
	struct arena *a = rpc_call_arena(call);
	Ckpt__V1__StopRequest sreq = CKPT__V1__STOP_REQUEST__INIT;
	Ckpt__V1__StopReply *srep = NULL;
	Ckpt__V1__RestoreRequest rreq = CKPT__V1__RESTORE_REQUEST__INIT;
	Ckpt__V1__RestoreReply *rrep = NULL;
	struct rpc_client *src = NULL, *dst = NULL;
	struct rpc_error err;
	char source[256], target[256];
	int rv;

	pthread_mutex_lock(&m->mu);
	m->st.fs_migrates++;
	snprintf(source, sizeof(source), "%s", m->source);
	snprintf(target, sizeof(target), "%s", m->target);
	pthread_mutex_unlock(&m->mu);
	if (source[0] == '\0') {
		rpc_call_errorf(call, "no route");
		return -ESTALE;
	}
	rv = rpc_client_open(source, &ckpt__v1__agent__descriptor, 0, 0, &src, &err);
	if (rv == 0)
		rv = rpc_client_open(target, &ckpt__v1__agent__descriptor, 0, 0, &dst, &err);
	if (rv != 0)
		goto out;
	sreq.component = req->component;
	sreq.checkpoint = true;
	rv = rpc_client_call(src, 1, &sreq.base, 10000, (ProtobufCMessage **)&srep, &err);
	if (rv != 0)
		goto out;
	rreq.component = req->component;
	rreq.node = srep->checkpoint->node;
	rreq.seq = srep->checkpoint->seq;
	rreq.sha256 = srep->checkpoint->digest;
	rreq.epoch = srep->checkpoint->epoch + 1;
	rv = rpc_client_call(dst, 0, &rreq.base, 10000, (ProtobufCMessage **)&rrep, &err);
	if (rv != 0)
		goto out;
	rep->source = arena_strdup(a, srep->checkpoint->node);
	rep->target = arena_strdup(a, "target");
	rep->epoch = rreq.epoch;
	rep->restored_from = arena_alloc(a, sizeof(*rep->restored_from));
	ckpt__v1__checkpoint_ref__init(rep->restored_from);
	rep->restored_from->node = arena_strdup(a, rrep->status->restored_from->node);
	rep->restored_from->component = arena_strdup(a, rrep->status->restored_from->component);
	rep->restored_from->seq = rrep->status->restored_from->seq;
	rep->restored_from->sha256.data = arena_memdup(a, rrep->status->restored_from->sha256.data,
	    rrep->status->restored_from->sha256.len);
	rep->restored_from->sha256.len = rrep->status->restored_from->sha256.len;
	rep->state_sha256.data = arena_memdup(a, rrep->status->state_sha256.data,
	    rrep->status->state_sha256.len);
	rep->state_sha256.len = rrep->status->state_sha256.len;
	pthread_mutex_lock(&m->mu);
	m->st.fs_migrations_ok++;
	pthread_mutex_unlock(&m->mu);
out:
	if (rv != 0)
		rpc_call_errorf(call, "%s", err.re_msg);
	if (srep != NULL)
		rpc_reply_free(&srep->base);
	if (rrep != NULL)
		rpc_reply_free(&rrep->base);
	rpc_client_close(src);
	rpc_client_close(dst);
	return rv;
}

static const rpc_handler_fn fmgr_handlers[] = { fmgr_attach, fmgr_notify, fmgr_migrate,
	fmgr_heartbeat, NULL, NULL, NULL };

int
fmgr_start(const char *url, const char *nas_url, struct fmgr **ret_mgr)
{
	struct rpc_server_config sc = { .rs_service = &ckpt__v1__manager__descriptor,
		.rs_handlers = fmgr_handlers, .rs_workers = 8 };
	struct fmgr *m = calloc(1, sizeof(*m));
	int rv;

	pthread_mutex_init(&m->mu, NULL);
	snprintf(m->nas_url, sizeof(m->nas_url), "%s", nas_url);
	sc.rs_arg = m;
	rv = rpc_server_start(&sc, url, &m->srv);
	if (rv != 0) {
		free(m);
		return rv;
	}
	*ret_mgr = m;
	return 0;
}

const char *
fmgr_url(const struct fmgr *m)
{
	return rpc_server_url(m->srv);
}

void
fmgr_stop(struct fmgr *m)
{
	if (m == NULL)
		return;
	rpc_server_stop(m->srv);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

void
fmgr_stats(struct fmgr *m, struct fmgr_stats *ret_stats)
{
	pthread_mutex_lock(&m->mu);
	*ret_stats = m->st;
	pthread_mutex_unlock(&m->mu);
}

void
fmgr_set_down(struct fmgr *m, bool down)
{
	pthread_mutex_lock(&m->mu);
	m->down = down;
	pthread_mutex_unlock(&m->mu);
}

void
fmgr_refuse_heartbeats(struct fmgr *m, unsigned count)
{
	pthread_mutex_lock(&m->mu);
	m->refuse_hb = count;
	pthread_mutex_unlock(&m->mu);
}

unsigned
fmgr_refused_heartbeats(struct fmgr *m)
{
	unsigned k;

	pthread_mutex_lock(&m->mu);
	k = m->refused_hb;
	pthread_mutex_unlock(&m->mu);
	return k;
}

void
fmgr_request_reattach(struct fmgr *m)
{
	pthread_mutex_lock(&m->mu);
	m->reattach = true;
	pthread_mutex_unlock(&m->mu);
}

void
fmgr_set_route(struct fmgr *m, const char *source_url, const char *target_url)
{
	pthread_mutex_lock(&m->mu);
	snprintf(m->source, sizeof(m->source), "%s", source_url);
	snprintf(m->target, sizeof(m->target), "%s", target_url);
	pthread_mutex_unlock(&m->mu);
}

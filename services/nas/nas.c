#include "nas.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "chunklist.h"
#include "digest.h"
#include "chunkv.h"
#include "err.h"
#include "grant.h"
#include "health.h"
#include "methods.h"
#include "key.h"
#include "log.h"
#include "rpc.h"
#include "sha.h"
#include "util.h"

/* The store's figures, read at every scrape (nas_collect()). */
enum nas_gauge {
	NAS_G_STORE_BYTES,
	NAS_G_STORE_RAW_BYTES,
	NAS_G_CHECKPOINTS,
	NAS_G_CHUNKS,
	NAS_G_MAP_SIZE,
	NAS_G_MAP_USED,
	NAS_G_MAP_MAX,
	NAS_G_WRITES,
	NAS_G_WRITE_COMMITS,
	NAS_G_DEDUP_RATIO,
	NAS_G_COUNTING,
	NAS_G_DISK_RESERVE,
	NAS_G_DISK_RESERVE_SHORT,
	NAS_GAUGES
};

/* Room for the reply envelope and chunk headers around GetChunks data. */
#define NAS_REPLY_OVERHEAD (64u << 10)

struct nas {
	struct store *n_store;
	_Atomic(struct rpc_server *) n_server; /* NULL until rpc_server_start returned */
	size_t n_get_budget;                   /* GetChunks bytes when the caller sets none */
	uint32_t n_keep;                       /* --keep, reported by Stat */
	atomic_uint_fast64_t n_put_bytes;      /* chunk bytes received (PutChunks, inline in Store) */
	atomic_uint_fast64_t n_put_chunks;
	/* --http: the registry, the endpoint and the families counted by handlers. */
	struct metrics *n_metrics;
	struct health *n_health;
	uint64_t n_map_max;
	atomic_uint_fast64_t n_ckpt_bytes;     /* logical size of checkpoints committed */
	struct limit_log n_limit_log;
	/* PutChunks in progress per principal (nc_max_uploads), n_up_mu guards them. */
	pthread_mutex_t n_up_mu;
	struct nas_uploads *n_up;              /* n_up_cap entries, who "": free */
	size_t n_up_cap;
	unsigned n_max_uploads;
	struct metrics_fam *n_m_received, *n_m_sent, *n_m_stored, *n_m_ckpt_bytes;
	struct metrics_fam *n_m_store[NAS_GAUGES];
	struct grants *n_grants;               /* Nas.Grant: who may read whose checkpoints */
	/* Request bytes of the Stores deferred to their group commit (nas_defer_take()). */
	atomic_uint_fast64_t n_defer_bytes;
	uint64_t n_defer_max;
};

/* The calling node's id, or NULL when the caller is no node (or anyone may call). */
static const char *
nas_peer_node(struct rpc_call *call)
{
	const struct auth_id *peer = rpc_call_peer(call);
	return peer != NULL && peer->ai_role == AUTH_ROLE_NODE ? peer->ai_node : NULL;
}

/*
 * A node reads its own checkpoints, and any of the component the manager
 * last ordered it to restore (Nas.Grant); other roles are the rpc layer's
 * table's business.
 */
static int
nas_check_read(struct nas *n, struct rpc_call *call, const char *node, const char *component)
{
	const char *me = nas_peer_node(call);

	if (me == NULL || strcmp(me, node) == 0 || grant_allows(n->n_grants, component, me))
		return 0;
	return rpc_call_forbid(call, "node %s may read only its own checkpoints and those of a "
	    "component the manager ordered it to restore, not %.64s/%.64s", me, node, component);
}

/*
 * A peer's PutChunks in progress, by principal (rpc_call_principal(): its
 * identity over all its connections); at most one entry per worker is in use.
 */
struct nas_uploads {
	char nu_who[RPC_PRINCIPAL_MAX]; /* "" when free */
	unsigned nu_count;
};

/*
 * Counts one more PutChunks of the call's principal, or refuses it over
 * n_max_uploads. *ret_token is for nas_upload_end(): 0 when nothing was
 * counted (a call that came with no connection: fuzzing).
 */
static int
nas_upload_begin(struct nas *n, struct rpc_call *call, uint32_t *ret_token)
{
	char who[RPC_PRINCIPAL_MAX];
	struct nas_uploads *u = NULL, *free_slot = NULL;
	bool over = false;

	*ret_token = 0;
	if (rpc_call_principal(call, who, sizeof(who)) != 0)
		return 0;
	pthread_mutex_lock(&n->n_up_mu);
	for (size_t i = 0; i < n->n_up_cap && u == NULL; i++) {
		if (strcmp(n->n_up[i].nu_who, who) == 0)
			u = &n->n_up[i];
		else if (n->n_up[i].nu_who[0] == '\0' && free_slot == NULL)
			free_slot = &n->n_up[i];
	}
	if (u == NULL && free_slot != NULL) {
		u = free_slot;
		snprintf(u->nu_who, sizeof(u->nu_who), "%s", who);
		u->nu_count = 0;
	}
	if (u != NULL && u->nu_count >= n->n_max_uploads)
		over = true;
	else if (u != NULL)
		u->nu_count++;
	pthread_mutex_unlock(&n->n_up_mu);
	if (over)
		return rpc_call_limitf(call, LIMIT_N_UPLOADS, "%u PutChunks of %s are in progress "
		    "already, all its connections together (limit %s): wait for one to finish",
		    n->n_max_uploads, who, LIMIT_N_UPLOADS);
	/* The entry stays put while its count is above 0: its index is the token. */
	*ret_token = u != NULL ? (uint32_t)(u - n->n_up) + 1 : 0;
	return 0;
}

static void
nas_upload_end(struct nas *n, uint32_t token)
{
	struct nas_uploads *u;

	if (token == 0)
		return;
	pthread_mutex_lock(&n->n_up_mu);
	u = &n->n_up[token - 1];
	if (--u->nu_count == 0)
		u->nu_who[0] = '\0';
	pthread_mutex_unlock(&n->n_up_mu);
}

/* Passes the store's message on with the error. */
static int
nas_fail(struct rpc_call *call, int rv, const struct store_error *err)
{
	if (err->se_msg[0] != '\0')
		rpc_call_errorf(call, "%s", err->se_msg);
	return rv;
}

static const char *
nas_cause(int rv, const struct store_error *err)
{
	return err->se_msg[0] != '\0' ? err->se_msg : err_str(rv);
}

/* A name from the wire, fit for a log line. */
static const char *
nas_name(const char *s)
{
	return key_name_check(s) == 0 ? s : "(invalid)";
}

static void
nas_log_stored(const Ckpt__V1__CheckpointInfo *info, bool existed)
{
	char hex[DIGEST_STR_LEN], human[UTIL_SIZE_STR_MAX];

	if (!log_on(LOG_LEVEL_INFO))
		return;
	if (info->digest.len == SHA_LEN)
		digest_str(info->digest.data, hex);
	else
		snprintf(hex, sizeof(hex), "%s", "-");
	if (existed)
		LOG_INFO("checkpoint already stored: %s/%s@%llu size=%llu (%s) digest=%s", info->node,
		    info->component, (unsigned long long)info->seq, (unsigned long long)info->size,
		    util_fmt_size(info->size, human), hex);
	else
		LOG_INFO("checkpoint stored: %s/%s@%llu size=%llu (%s) digest=%s chunks=%u",
		    info->node, info->component, (unsigned long long)info->seq,
		    (unsigned long long)info->size, util_fmt_size(info->size, human), hex,
		    info->chunk_count);
}

/* A store's end, however it waited for its commit: the reply, counts, logs. */
static int
nas_store_end(struct nas *n, struct rpc_call *call, const Ckpt__V1__StoreRequest *req,
    Ckpt__V1__StoreReply *reply, int rv, const struct store_commit_result *res,
    const struct store_error *err)
{
	const Ckpt__V1__CheckpointInfo *info = res->cr_info;

	if (rv == -EDQUOT && err->se_reason != NULL && strcmp(err->se_reason, LIMIT_N_QUOTA) == 0)
		return rpc_call_limitf(call, LIMIT_N_QUOTA, "%s", err->se_msg); /* logged there */
	if (rv != 0 && err->se_reason != NULL)
		rpc_call_reason(call, err->se_reason);
	if (rv != 0) {
		LOG_WARN("store of %s/%s refused: %s", nas_name(req->node), nas_name(req->component),
		    nas_cause(rv, err));
		return nas_fail(call, rv, err);
	}
	reply->info = res->cr_info;
	nas_log_stored(info, res->cr_existed);
	if (!res->cr_existed) {
		atomic_fetch_add(&n->n_ckpt_bytes, info->size);
		metrics_inc(n->n_m_stored, 1, METRICS_L(info->component));
		metrics_inc(n->n_m_ckpt_bytes, (double)info->size, NULL, 0);
	}
	if (res->cr_retained != 0)
		LOG_INFO("retention: deleted %u older checkpoint%s of %s", res->cr_retained,
		    res->cr_retained == 1 ? "" : "s", info->component);
	return 0;
}

/*
 * The memory of the Stores waiting for their group commit: each deferred
 * one holds its request message and its decoded copy (twice its inline
 * chunks, up to LIMIT_STORE_INLINE_MAX), and its worker goes back to
 * receiving; without a bound, many clients sending large inline Stores at
 * once (a fleet after a NAS restart) could take all of the NAS's memory.
 * At most NAS_DEFER_PER_WORKER request bytes per worker are deferred; past
 * that a Store too large to be served directly (over NAS_DIRECT_MAX, so
 * on a worker) waits for its commit on its worker, which stops receiving:
 * back-pressure, nothing refused. Direct Stores (at most NAS_DIRECT_MAX
 * each, on nng's few threads, which must not wait) are counted, never held.
 */
#define NAS_DEFER_PER_WORKER ((uint64_t)LIMIT_STORE_INLINE_MAX)
#define NAS_DEFER_HOLD_MIN (128u << 10) /* NAS_DIRECT_MAX, defined with the direct path */

/* Whether a Store of len request bytes may be deferred (counted until nas_defer_give()). */
static bool
nas_defer_take(struct nas *n, uint64_t len)
{
	uint64_t cur = atomic_load(&n->n_defer_bytes);

	do {
		if (len > NAS_DEFER_HOLD_MIN && cur + len > n->n_defer_max && cur != 0)
			return false;
	} while (!atomic_compare_exchange_weak(&n->n_defer_bytes, &cur, cur + len));
	return true;
}

static void
nas_defer_give(struct nas *n, uint64_t len)
{
	atomic_fetch_sub(&n->n_defer_bytes, len);
}

/* A Store waiting for its group commit without a worker (rpc_call_defer()). */
struct nas_pending {
	struct nas *np_nas;
	struct rpc_deferred *np_d;
	uint64_t np_len; /* request bytes counted in n_defer_bytes */
	const Ckpt__V1__StoreRequest *np_req;
	Ckpt__V1__StoreReply *np_reply;
	struct store_error np_err;
};

/* Its commit is durable (or refused): answered from the thread that saw it. */
static void
nas_store_done(void *arg, int rv, const struct store_commit_result *res)
{
	struct nas_pending *p = arg;
	struct nas *n = p->np_nas;
	uint64_t len = p->np_len;

	rv = nas_store_end(n, rpc_deferred_call(p->np_d), p->np_req, p->np_reply, rv, res,
	    &p->np_err);
	rpc_deferred_finish(p->np_d, rv); /* p is gone with the call's arena */
	nas_defer_give(n, len);
}

/*
 * The reply of a Store is sent once its commit is durable, by the thread
 * that led the commit group: the worker that received it defers the call
 * and goes back to receiving, so as many Stores as arrive join one group
 * however few workers there are, and no worker is woken to send a reply.
 */
static int
nas_store(void *arg, struct rpc_call *call, const ProtobufCMessage *req_, ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	const Ckpt__V1__StoreRequest *req = (const Ckpt__V1__StoreRequest *)req_;
	Ckpt__V1__StoreReply *reply = (Ckpt__V1__StoreReply *)reply_;
	struct store_commit_result res = { NULL, false, 0 };
	struct rpc_deferred *d;
	struct nas_pending *p;
	struct store_error err;
	uint64_t len;
	bool held;
	int rv;

	err.se_msg[0] = '\0';
	if (nas_peer_node(call) != NULL && strcmp(nas_peer_node(call), req->node) != 0)
		return rpc_call_forbid(call, "node %s may store only its own checkpoints, not %.64s's",
		    nas_peer_node(call), req->node);
	rv = chunklist_expand(rpc_call_arena(call), req, STORE_REFS_MAX, &req, err.se_msg,
	    sizeof(err.se_msg));
	if (rv != 0) {
		LOG_WARN("store of %s/%s refused: %s", nas_name(req->node), nas_name(req->component),
		    err.se_msg);
		return nas_fail(call, rv, &err);
	}
	if (req->n_inline_chunks != 0) {
		/* A small checkpoint's chunks, received with its record: counted as PutChunks' are. */
		uint64_t bytes = 0;
		for (size_t i = 0; i < req->n_inline_chunks; i++)
			bytes += req->inline_chunks[i]->data.len;
		atomic_fetch_add(&n->n_put_bytes, bytes);
		atomic_fetch_add(&n->n_put_chunks, req->n_inline_chunks);
		metrics_inc(n->n_m_received, (double)bytes, NULL, 0);
	}
	len = protobuf_c_message_get_packed_size(req_);
	held = !nas_defer_take(n, len); /* over the budget: waits for its commit on this worker */
	if (!held && rpc_call_defer(call, &d) == 0) {
		struct arena *a = rpc_call_arena(rpc_deferred_call(d));
		p = arena_alloc(a, sizeof(*p));
		if (p == NULL) {
			rpc_deferred_finish(d, -ENOMEM);
			nas_defer_give(n, len);
			return 0;
		}
		p->np_d = d;
		p->np_nas = n;
		p->np_len = len;
		p->np_req = req;
		p->np_reply = reply;
		p->np_err.se_msg[0] = '\0';
		p->np_err.se_reason = NULL;
		rv = store_commit_async(n->n_store, req, a, &p->np_err, nas_store_done, p);
		if (rv != 0) /* (nothing done: answered here) */
			nas_store_done(p, rv, &res);
		return 0;
	}
	if (!held)
		nas_defer_give(n, len);
	/*
	 * Not deferred (over the budget, rpc_server_dispatch(), or a worker's
	 * call with no memory; never a direct call, whose deferral rpc.c set up
	 * before, and which is never over the budget): waits for the commit here.
	 */
	rv = store_commit(n->n_store, req, rpc_call_arena(call), &res.cr_info, &res.cr_existed,
	    &res.cr_retained, &err);
	return nas_store_end(n, call, req, reply, rv, &res, &err);
}

static int
nas_retrieve(void *arg, struct rpc_call *call, const ProtobufCMessage *req_,
    ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	const Ckpt__V1__RetrieveRequest *req = (const Ckpt__V1__RetrieveRequest *)req_;
	Ckpt__V1__RetrieveReply *reply = (Ckpt__V1__RetrieveReply *)reply_;
	Ckpt__V1__CheckpointRecord *rec;
	struct store_error err;
	int rv;

	rv = store_retrieve(n->n_store, req->node, req->component, req->seq, rpc_call_arena(call),
	    &rec, &err);
	if (rv != 0) {
		if (rv == -EBADMSG)
			LOG_ERROR("%s", nas_cause(rv, &err));
		return nas_fail(call, rv, &err);
	}
	rv = nas_check_read(n, call, rec->info->node, rec->info->component);
	if (rv != 0)
		return rv;
	reply->info = rec->info;
	reply->n_chunks = rec->n_chunks;
	reply->chunks = rec->chunks;
	if (req->as_base)
		LOG_DEBUG("checkpoint record read as a base: %s/%s@%llu", rec->info->node,
		    rec->info->component, (unsigned long long)rec->info->seq);
	else
		LOG_INFO("checkpoint retrieved: %s/%s@%llu size=%llu", rec->info->node,
		    rec->info->component, (unsigned long long)rec->info->seq,
		    (unsigned long long)rec->info->size);
	return 0;
}

static int
nas_list(void *arg, struct rpc_call *call, const ProtobufCMessage *req_, ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	const Ckpt__V1__ListRequest *req = (const Ckpt__V1__ListRequest *)req_;
	Ckpt__V1__ListReply *reply = (Ckpt__V1__ListReply *)reply_;
	const char *me = nas_peer_node(call);
	struct store_error err;
	bool truncated = false, own_only = false;
	int rv;

	/*
	 * A node lists its own checkpoints, and all of a component granted to
	 * it; asked for anything else, it gets its own part of the answer
	 * (the agent lists a component across nodes for its next sequence).
	 */
	if (me != NULL && strcmp(req->node, me) != 0 &&
	    (req->component[0] == '\0' || !grant_allows(n->n_grants, req->component, me))) {
		if (req->node[0] != '\0')
			return nas_check_read(n, call, req->node, req->component);
		own_only = true;
	}
	rv = store_list(n->n_store, own_only ? me : req->node, req->component, req->latest_only, 0,
	    &truncated, rpc_call_arena(call), &reply->checkpoints, &reply->n_checkpoints, &err);
	reply->truncated = rv == 0 && truncated;
	if (rv == -EBADMSG)
		LOG_ERROR("List: %s", nas_cause(rv, &err));
	return rv != 0 ? nas_fail(call, rv, &err) : 0;
}

static int
nas_delete(void *arg, struct rpc_call *call, const ProtobufCMessage *req_, ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	const Ckpt__V1__DeleteRequest *req = (const Ckpt__V1__DeleteRequest *)req_;
	Ckpt__V1__DeleteReply *reply = (Ckpt__V1__DeleteReply *)reply_;
	struct store_error err;
	uint64_t freed;
	char seq[24];
	int rv;

	rv = store_delete(n->n_store, req->node, req->component, req->seq, &reply->deleted, &freed,
	    &err);
	if (rv != 0) {
		if (rv != -ENOENT && rv != -EINVAL)
			LOG_WARN("delete of %s/%s failed: %s", nas_name(req->node), nas_name(req->component),
			    nas_cause(rv, &err));
		return nas_fail(call, rv, &err);
	}
	if (req->seq != 0)
		snprintf(seq, sizeof(seq), "%llu", (unsigned long long)req->seq);
	else
		snprintf(seq, sizeof(seq), "all");
	LOG_INFO("checkpoints deleted: %s/%s@%s count=%u chunks_freed=%llu", req->node, req->component,
	    seq, reply->deleted, (unsigned long long)freed);
	/* The last checkpoint of the component took its grant along (store_delete()). */
	if (grant_sync(n->n_grants, req->component, &err) != 0)
		LOG_WARN("grant of %s: %s", req->component, err.se_msg);
	return 0;
}

static int
nas_stat(void *arg, struct rpc_call *call, const ProtobufCMessage *req_, ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	Ckpt__V1__StatReply *reply = (Ckpt__V1__StatReply *)reply_;
	struct rpc_server *srv = atomic_load(&n->n_server);
	struct store_stats st;
	struct store_error err;
	int rv;

	(void)req_;
	rv = store_stat(n->n_store, &st, &err);
	if (rv != 0)
		return nas_fail(call, rv, &err);
	reply->checkpoints = st.ss_checkpoints;
	reply->chunks = st.ss_chunks;
	reply->chunk_bytes = st.ss_chunk_bytes;
	reply->map_size = st.ss_map_size;
	reply->map_used = st.ss_map_used;
	reply->chunk_raw_bytes = st.ss_chunk_raw_bytes;
	reply->put_bytes = atomic_load(&n->n_put_bytes);
	reply->put_chunks = atomic_load(&n->n_put_chunks);
	reply->keep = n->n_keep;
	reply->writes = st.ss_writes;
	reply->write_commits = st.ss_write_commits;
	reply->counting = st.ss_counting;
	reply->disk_reserve = st.ss_disk_reserve;
	reply->disk_reserve_short = st.ss_disk_reserve_short;
	reply->store_id = arena_strdup(rpc_call_arena(call), st.ss_store_id);
	if (reply->store_id == NULL)
		return -ENOMEM;
	if (srv != NULL) {
		struct rpc_server_stats rs;
		rpc_server_get_stats(srv, &rs);
		reply->requests = rs.rss_requests;
		reply->bad_requests = rs.rss_bad;
	}
	return 0;
}

static int
nas_have_chunks(void *arg, struct rpc_call *call, const ProtobufCMessage *req_,
    ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	const Ckpt__V1__HaveChunksRequest *req = (const Ckpt__V1__HaveChunksRequest *)req_;
	Ckpt__V1__HaveChunksReply *reply = (Ckpt__V1__HaveChunksReply *)reply_;
	struct store_error err;
	int rv;

	rv = store_have_chunks(n->n_store, req->sha256, req->n_sha256, rpc_call_arena(call),
	    &reply->missing, &reply->n_missing, &err);
	return rv != 0 ? nas_fail(call, rv, &err) : 0;
}

static int
nas_put_chunks(void *arg, struct rpc_call *call, const ProtobufCMessage *req_,
    ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	const Ckpt__V1__PutChunksRequest *req = (const Ckpt__V1__PutChunksRequest *)req_;
	Ckpt__V1__PutChunksReply *reply = (Ckpt__V1__PutChunksReply *)reply_;
	struct store_error err;
	uint64_t bytes = 0;
	uint32_t pipe;
	int rv;

	rv = nas_upload_begin(n, call, &pipe);
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < req->n_chunks; i++)
		bytes += req->chunks[i]->data.len;
	atomic_fetch_add(&n->n_put_bytes, bytes);
	atomic_fetch_add(&n->n_put_chunks, req->n_chunks);
	metrics_inc(n->n_m_received, (double)bytes, NULL, 0);
	rv = store_put_chunks(n->n_store, req->chunks, req->n_chunks, &reply->stored, &err);
	nas_upload_end(n, pipe);
	if (rv == -ENOSPC)
		LOG_WARN("PutChunks refused: %s", nas_cause(rv, &err));
	if (rv != 0)
		return nas_fail(call, rv, &err);
	LOG_DEBUG("PutChunks: %u of %zu chunks new", reply->stored, req->n_chunks);
	return 0;
}

struct nas_reply {
	struct rpc_call *nr_call;
	size_t nr_len;
};

/* Where store_get_chunks_wire() writes the reply: the message that goes on the wire. */
static int
nas_reply_body(void *arg, size_t len, uint8_t **ret_buf)
{
	struct nas_reply *r = arg;
	int rv = rpc_call_reply_body(r->nr_call, len, ret_buf);

	if (rv == 0)
		r->nr_len = len;
	return rv;
}

/* Raw: the chunks go from the LMDB map into the reply message, one copy. */
static int
nas_get_chunks(void *arg, struct rpc_call *call, const ProtobufCMessage *req_)
{
	struct nas *n = arg;
	const Ckpt__V1__GetChunksRequest *req = (const Ckpt__V1__GetChunksRequest *)req_;
	size_t budget = req->max_bytes != 0 ? req->max_bytes : n->n_get_budget;
	struct nas_reply r = { call, 0 };
	struct store_error err;
	size_t got;
	int rv;

	rv = store_get_chunks_wire(n->n_store, req->sha256, req->n_sha256, budget,
	    rpc_call_arena(call), nas_reply_body, &r, &got, &err);
	if (rv == -EBADMSG)
		LOG_ERROR("%s", nas_cause(rv, &err));
	if (rv == 0)
		metrics_inc(n->n_m_sent, (double)r.nr_len, NULL, 0);
	return rv != 0 ? nas_fail(call, rv, &err) : 0;
}

static int
nas_pin(void *arg, struct rpc_call *call, const ProtobufCMessage *req_, ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	const Ckpt__V1__PinRequest *req = (const Ckpt__V1__PinRequest *)req_;
	Ckpt__V1__PinReply *reply = (Ckpt__V1__PinReply *)reply_;
	struct store_error err;
	uint32_t deleted = 0;
	bool changed = false;
	int rv;

	rv = store_pin(n->n_store, req->node, req->component, req->seq, req->pinned, &changed,
	    &deleted, &err);
	if (rv != 0)
		return nas_fail(call, rv, &err);
	reply->changed = changed;
	LOG_INFO("checkpoint %s: %s/%s@%llu%s", req->pinned ? "pinned" : "unpinned", req->node,
	    req->component, (unsigned long long)req->seq, changed ? "" : " (already)");
	if (deleted != 0)
		LOG_INFO("retention: deleted %u older checkpoint%s of %s", deleted,
		    deleted == 1 ? "" : "s", req->component);
	return 0;
}

static int
nas_set_retention(void *arg, struct rpc_call *call, const ProtobufCMessage *req_,
    ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	const Ckpt__V1__SetRetentionRequest *req = (const Ckpt__V1__SetRetentionRequest *)req_;
	Ckpt__V1__SetRetentionReply *reply = (Ckpt__V1__SetRetentionReply *)reply_;
	struct store_error err;
	int rv;

	rv = store_set_keep(n->n_store, req->component, req->keep, &reply->keep, &reply->deleted,
	    &err);
	if (rv != 0)
		return nas_fail(call, rv, &err);
	LOG_INFO("retention of %s: keep %u%s, deleted %u", req->component, reply->keep,
	    req->keep == 0 ? " (default)" : "", reply->deleted);
	return 0;
}

static int
nas_scrub(void *arg, struct rpc_call *call, const ProtobufCMessage *req_, ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	Ckpt__V1__ScrubReply *reply = (Ckpt__V1__ScrubReply *)reply_;
	struct arena *a = rpc_call_arena(call);
	struct store_check *ck;
	struct store_error err;
	int rv;

	(void)req_;
	ck = arena_alloc(a, sizeof(*ck));
	if (ck == NULL)
		return -ENOMEM;
	rv = store_check(n->n_store, ck, &err);
	if (rv != 0) {
		LOG_ERROR("scrub: %s", nas_cause(rv, &err));
		return nas_fail(call, rv, &err);
	}
	reply->chunks = ck->sk_chunks;
	reply->records = ck->sk_records;
	reply->bad_chunks = ck->sk_bad_chunks;
	reply->missing_chunks = ck->sk_missing;
	reply->bad_refcounts = ck->sk_bad_refcounts;
	reply->orphan_chunks = ck->sk_orphans;
	reply->bad_records = ck->sk_bad_records;
	reply->problems = arena_alloc(a, (ck->sk_nproblems + 1) * sizeof(char *));
	if (reply->problems == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < ck->sk_nproblems; i++) {
		reply->problems[i] = ck->sk_problems[i];
		LOG_ERROR("scrub: %s", ck->sk_problems[i]);
	}
	reply->n_problems = ck->sk_nproblems;
	if (store_check_clean(ck))
		LOG_INFO("scrub: %llu chunks and %llu records verified, no problem",
		    (unsigned long long)ck->sk_chunks, (unsigned long long)ck->sk_records);
	else
		LOG_ERROR("scrub: %llu bad chunks, %llu missing, %llu wrong reference counts, %llu bad "
		          "records",
		    (unsigned long long)ck->sk_bad_chunks, (unsigned long long)ck->sk_missing,
		    (unsigned long long)ck->sk_bad_refcounts, (unsigned long long)ck->sk_bad_records);
	return 0;
}

/* ---- component specs: stored as sent, their form checked, never interpreted ---- */

static int
nas_put_spec(void *arg, struct rpc_call *call, const ProtobufCMessage *req_,
    ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	const Ckpt__V1__PutSpecRequest *req = (const Ckpt__V1__PutSpecRequest *)req_;
	Ckpt__V1__PutSpecReply *reply = (Ckpt__V1__PutSpecReply *)reply_;
	const Ckpt__V1__ComponentSpec *sp = req->spec;
	struct store_error err;
	uint8_t *buf;
	size_t len;
	bool replaced;
	int rv;

	if (sp == NULL || key_name_check(sp->name) != 0) {
		rpc_call_errorf(call, "PutSpec: a spec with a component name (1 to %d of "
		    "[A-Za-z0-9._-]) is required", KEY_NAME_MAX);
		return -EINVAL;
	}
	len = ckpt__v1__component_spec__get_packed_size(sp);
	if (len == 0 || len > STORE_SPEC_MAX) {
		rpc_call_errorf(call, "PutSpec: the spec of %s has %zu bytes, at most %u", sp->name,
		    len, STORE_SPEC_MAX);
		return -EINVAL;
	}
	buf = arena_alloc(rpc_call_arena(call), len);
	if (buf == NULL)
		return -ENOMEM;
	ckpt__v1__component_spec__pack(sp, buf);
	rv = store_spec_put(n->n_store, sp->name, buf, len, &replaced, &reply->epoch, &err);
	if (rv != 0) {
		LOG_WARN("spec of %s not stored: %s", sp->name, nas_cause(rv, &err));
		return nas_fail(call, rv, &err);
	}
	reply->replaced = replaced;
	LOG_INFO("spec of %s stored (driver %.32s, %zu bytes%s)", sp->name,
	    sp->driver != NULL ? sp->driver : "", len, replaced ? ", replacing the previous" : "");
	return 0;
}

static Ckpt__V1__ComponentSpec *
nas_spec_unpack(struct rpc_call *call, const struct store_spec *ss)
{
	return ckpt__v1__component_spec__unpack(arena_protobuf(rpc_call_arena(call)), ss->ss_len,
	    ss->ss_data);
}

static int
nas_get_spec(void *arg, struct rpc_call *call, const ProtobufCMessage *req_,
    ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	const Ckpt__V1__GetSpecRequest *req = (const Ckpt__V1__GetSpecRequest *)req_;
	Ckpt__V1__GetSpecReply *reply = (Ckpt__V1__GetSpecReply *)reply_;
	struct store_error err;
	struct store_spec ss;
	int rv;

	rv = store_spec_get(n->n_store, req->component, rpc_call_arena(call), &ss, &err);
	if (rv != 0)
		return nas_fail(call, rv, &err);
	reply->spec = nas_spec_unpack(call, &ss);
	reply->epoch = ss.ss_epoch;
	if (reply->spec == NULL) {
		LOG_ERROR("the stored spec of %s does not decode", req->component);
		rpc_call_errorf(call, "the stored spec of %s does not decode", req->component);
		return -EBADMSG;
	}
	return 0;
}

static int
nas_list_specs(void *arg, struct rpc_call *call, const ProtobufCMessage *req_,
    ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	Ckpt__V1__ListSpecsReply *reply = (Ckpt__V1__ListSpecsReply *)reply_;
	struct arena *a = rpc_call_arena(call);
	struct store_error err;
	struct store_spec *ss;
	size_t ns;
	int rv;

	(void)req_;
	rv = store_spec_list(n->n_store, a, &ss, &ns, &err);
	if (rv != 0)
		return nas_fail(call, rv, &err);
	reply->specs = arena_alloc(a, (ns > 0 ? ns : 1) * sizeof(*reply->specs));
	if (reply->specs == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < ns; i++) {
		Ckpt__V1__ComponentSpec *sp = nas_spec_unpack(call, &ss[i]);
		if (sp == NULL) {
			LOG_ERROR("a stored spec does not decode (%zu bytes): left out", ss[i].ss_len);
			continue;
		}
		reply->specs[reply->n_specs++] = sp;
	}
	return 0;
}

static int
nas_delete_spec(void *arg, struct rpc_call *call, const ProtobufCMessage *req_,
    ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	const Ckpt__V1__DeleteSpecRequest *req = (const Ckpt__V1__DeleteSpecRequest *)req_;
	Ckpt__V1__DeleteSpecReply *reply = (Ckpt__V1__DeleteSpecReply *)reply_;
	struct store_error err;
	bool existed;
	int rv;

	rv = store_spec_delete(n->n_store, req->component, &existed, &err);
	if (rv != 0)
		return nas_fail(call, rv, &err);
	reply->existed = existed;
	if (existed)
		LOG_INFO("spec of %s deleted", req->component);
	return 0;
}

static int
nas_grant(void *arg, struct rpc_call *call, const ProtobufCMessage *req_, ProtobufCMessage *reply_)
{
	struct nas *n = arg;
	const Ckpt__V1__GrantRequest *req = (const Ckpt__V1__GrantRequest *)req_;
	Ckpt__V1__GrantReply *reply = (Ckpt__V1__GrantReply *)reply_;
	struct store_error err = { "", NULL };
	bool replaced = false;
	int rv;

	rv = grant_set(n->n_grants, req->component, req->node, req->epoch, &replaced, &err);
	if (rv != 0)
		return nas_fail(call, rv, &err);
	reply->replaced = replaced;
	LOG_INFO("read of %s's checkpoints granted to node %s (epoch %llu)", req->component,
	    req->node, (unsigned long long)req->epoch);
	return 0;
}

/* Who may call what (with authentication on); nodes are narrowed further above. */
static const unsigned nas_roles[NAS_METHODS] = {
	[NAS_STORE] = AUTH_NODE | AUTH_OPERATOR,
	[NAS_RETRIEVE] = AUTH_NODE | AUTH_OPERATOR | AUTH_MANAGER,
	[NAS_LIST] = AUTH_NODE | AUTH_OPERATOR | AUTH_MANAGER,
	[NAS_DELETE] = AUTH_OPERATOR | AUTH_MANAGER,
	[NAS_STAT] = AUTH_ANY,
	[NAS_HAVE_CHUNKS] = AUTH_NODE | AUTH_OPERATOR,
	[NAS_PUT_CHUNKS] = AUTH_NODE | AUTH_OPERATOR,
	/* By hash: a node knows the hashes of what it may read (docs/wire.md). */
	[NAS_GET_CHUNKS] = AUTH_NODE | AUTH_OPERATOR | AUTH_MANAGER,
	[NAS_PIN] = AUTH_OPERATOR,
	[NAS_SET_RETENTION] = AUTH_OPERATOR,
	[NAS_SCRUB] = AUTH_OPERATOR,
	[NAS_PUT_SPEC] = AUTH_OPERATOR | AUTH_MANAGER,
	[NAS_GET_SPEC] = AUTH_OPERATOR | AUTH_MANAGER,
	[NAS_LIST_SPECS] = AUTH_OPERATOR | AUTH_MANAGER,
	[NAS_DELETE_SPEC] = AUTH_OPERATOR | AUTH_MANAGER,
	[NAS_GRANT] = AUTH_MANAGER,
};

static void
nas_on_refused(void *arg, const char *line)
{
	(void)arg;
	LOG_WARN("refused: %s", line);
}

static const rpc_handler_fn nas_handlers[NAS_METHODS] = {
	[NAS_STORE] = nas_store,
	[NAS_RETRIEVE] = nas_retrieve,
	[NAS_LIST] = nas_list,
	[NAS_DELETE] = nas_delete,
	[NAS_STAT] = nas_stat,
	[NAS_HAVE_CHUNKS] = nas_have_chunks,
	[NAS_PUT_CHUNKS] = nas_put_chunks,
	[NAS_GET_CHUNKS] = NULL, /* raw: nas_raw_handlers */
	[NAS_PIN] = nas_pin,
	[NAS_SET_RETENTION] = nas_set_retention,
	[NAS_SCRUB] = nas_scrub,
	[NAS_PUT_SPEC] = nas_put_spec,
	[NAS_GET_SPEC] = nas_get_spec,
	[NAS_LIST_SPECS] = nas_list_specs,
	[NAS_DELETE_SPEC] = nas_delete_spec,
	[NAS_GRANT] = nas_grant,
};

static const rpc_raw_handler_fn nas_raw_handlers[NAS_METHODS] = {
	[NAS_GET_CHUNKS] = nas_get_chunks,
};

/* PutChunks bodies are megabytes of chunk bytes: read in place, not copied twice. */
static int
nas_decode_put_chunks(struct rpc_call *call, const uint8_t *data, size_t len,
    ProtobufCMessage **ret_req)
{
	Ckpt__V1__PutChunksRequest *req;
	int rv = chunkv_put_request(rpc_call_arena(call), data, len, STORE_PUT_MAX, &req);

	if (rv == -E2BIG) {
		rpc_call_errorf(call, "too many chunks in one PutChunks (at most %u)", STORE_PUT_MAX);
		return -EINVAL;
	}
	if (rv == 0)
		*ret_req = &req->base;
	return rv;
}

/*
 * Served on the nng thread that received it (rpc.h, rs_direct): a small
 * Store does its checks there and defers its reply to its group commit,
 * with no hand-off to a worker thread; the store's commit thread commits
 * it (store_commit_async()): nng's thread never waits for the disk. Up to NAS_DIRECT_MAX bytes: a small
 * checkpoint of the clients' (NASC_INLINE_MAX, 64 KiB) and its record;
 * larger Stores (long chunk lists to check) go to the workers.
 */
#define NAS_DIRECT_MAX (128u << 10)
static const bool nas_direct[NAS_METHODS] = {
	[NAS_STORE] = true,
};

static const rpc_decode_fn nas_decoders[NAS_METHODS] = {
	[NAS_PUT_CHUNKS] = nas_decode_put_chunks,
};

static void
nas_on_bad(void *arg, const char *reason)
{
	(void)arg;
	LOG_WARN("bad request: %s", reason);
}

static void
nas_on_limit(void *arg, const char *name, const char *msg)
{
	struct nas *n = arg;
	uint64_t held;

	if (limit_log_named(&n->n_limit_log, name, util_now_mono_ms(), &held))
		LOG_WARN("limit %s hit: %s%s", name, msg,
		    held != 0 ? " (and more since the last line)" : "");
}

static void
nas_collect(void *arg, struct metrics *m)
{
	struct nas *n = arg;
	struct store_error err;
	struct store_stats st;
	uint64_t put = atomic_load(&n->n_put_bytes), logical = atomic_load(&n->n_ckpt_bytes);
	double v[NAS_GAUGES];

	(void)m;
	if (store_stat(n->n_store, &st, &err) != 0)
		return; /* the gauges keep their last values; /readyz says why */
	v[NAS_G_STORE_BYTES] = (double)st.ss_chunk_bytes;
	v[NAS_G_STORE_RAW_BYTES] = (double)st.ss_chunk_raw_bytes;
	v[NAS_G_CHECKPOINTS] = (double)st.ss_checkpoints;
	v[NAS_G_CHUNKS] = (double)st.ss_chunks;
	v[NAS_G_MAP_SIZE] = (double)st.ss_map_size;
	v[NAS_G_MAP_USED] = (double)st.ss_map_used;
	v[NAS_G_MAP_MAX] = (double)n->n_map_max;
	v[NAS_G_WRITES] = (double)st.ss_writes;
	v[NAS_G_WRITE_COMMITS] = (double)st.ss_write_commits;
	v[NAS_G_DEDUP_RATIO] = put != 0 ? (double)logical / (double)put : 0;
	v[NAS_G_COUNTING] = st.ss_counting ? 1 : 0;
	v[NAS_G_DISK_RESERVE] = (double)st.ss_disk_reserve;
	v[NAS_G_DISK_RESERVE_SHORT] = st.ss_disk_reserve_short ? 1 : 0;
	for (size_t i = 0; i < NAS_GAUGES; i++)
		metrics_set(n->n_m_store[i], v[i], NULL, 0);
}

/* /readyz: the store answers and can take writes (its map is not at --map-max). */
static int
nas_ready(void *arg, char *why, size_t len)
{
	struct nas *n = arg;
	struct store_error err;
	struct store_stats st;
	int rv;

	rv = store_stat(n->n_store, &st, &err);
	if (rv != 0) {
		snprintf(why, len, "store does not answer: %s", nas_cause(rv, &err));
		return rv;
	}
	if (n->n_map_max != 0 && st.ss_map_used >= n->n_map_max) {
		snprintf(why, len, "store full: %llu bytes used of map-max %llu",
		    (unsigned long long)st.ss_map_used, (unsigned long long)n->n_map_max);
		return -ENOSPC;
	}
	return 0;
}

/* metrics_on_full(): a family of the NAS's metrics stopped taking new series. */
static void
nas_metrics_full(void *arg, const char *family, size_t max)
{
	(void)arg;
	LOG_WARN("metrics: %s has its %zu series; new ones are not counted (counted in "
	    "ckpt_metrics_series_dropped_total; --metrics-series-max)", family, max);
}

/* series_max: of ckpt_nas_checkpoints_stored_total (a series per component); 0 for METRICS_SERIES_MAX. */
static int
nas_metrics_new(struct nas *n, size_t series_max)
{
	static const struct {
		enum metrics_type type;
		const char *name, *help;
	} gauges[NAS_GAUGES] = {
		[NAS_G_STORE_BYTES] = { METRICS_GAUGE, "ckpt_nas_store_bytes",
		    "Bytes of the unique chunks stored, as stored (compressed)" },
		[NAS_G_STORE_RAW_BYTES] = { METRICS_GAUGE, "ckpt_nas_store_raw_bytes",
		    "Bytes of the unique chunks stored, uncompressed" },
		[NAS_G_CHECKPOINTS] = { METRICS_GAUGE, "ckpt_nas_checkpoints",
		    "Checkpoints held by the store" },
		[NAS_G_CHUNKS] = { METRICS_GAUGE, "ckpt_nas_chunks", "Unique chunks held by the store" },
		[NAS_G_MAP_SIZE] = { METRICS_GAUGE, "ckpt_nas_map_size_bytes",
		    "Current LMDB map size (grows on demand up to --map-max)" },
		[NAS_G_MAP_USED] = { METRICS_GAUGE, "ckpt_nas_map_used_bytes",
		    "Bytes of the LMDB map in use; stores fail when it reaches --map-max" },
		[NAS_G_MAP_MAX] = { METRICS_GAUGE, "ckpt_nas_map_max_bytes",
		    "The --map-max setting: the most the map may grow to" },
		[NAS_G_WRITES] = { METRICS_COUNTER, "ckpt_nas_writes_total",
		    "Store writes run since start" },
		[NAS_G_WRITE_COMMITS] = { METRICS_COUNTER, "ckpt_nas_write_commits_total",
		    "LMDB transactions committed since start (group commit joins writes)" },
		[NAS_G_DEDUP_RATIO] = { METRICS_GAUGE, "ckpt_nas_dedup_ratio",
		    "Logical checkpoint bytes committed per chunk byte received since start "
		    "(deduplication and compression together; 0 before any)" },
		[NAS_G_COUNTING] = { METRICS_GAUGE, "ckpt_nas_store_counting",
		    "1 while the sweep after a restart counts the chunk bytes: "
		    "ckpt_nas_store_bytes and ckpt_nas_store_raw_bytes are below the totals" },
		[NAS_G_DISK_RESERVE] = { METRICS_GAUGE, "ckpt_nas_disk_reserve_bytes",
		    "Bytes kept allocated past the end of the data for deletes on a full disk "
		    "(--disk-reserve or more; 0: none)" },
		[NAS_G_DISK_RESERVE_SHORT] = { METRICS_GAUGE, "ckpt_nas_disk_reserve_short",
		    "1 when the disk could not give the whole reserve: the disk is full, stores are "
		    "refused unless LMDB's free pages hold them, deletes go on" },
	};
	int rv;

	rv = metrics_new(&n->n_metrics);
	if (rv == 0)
		metrics_on_full(n->n_metrics, nas_metrics_full, NULL);
	if (rv == 0)
		rv = metrics_add_family(n->n_metrics, METRICS_COUNTER, "ckpt_nas_received_bytes_total",
		    "Chunk bytes received with PutChunks (as sent: compressed)", NULL, NULL, 0,
		    &n->n_m_received);
	if (rv == 0)
		rv = metrics_add_family(n->n_metrics, METRICS_COUNTER, "ckpt_nas_sent_bytes_total",
		    "Chunk bytes sent with GetChunks (reply bytes)", NULL, NULL, 0, &n->n_m_sent);
	if (rv == 0)
		rv = metrics_add_family(n->n_metrics, METRICS_COUNTER,
		    "ckpt_nas_checkpoints_stored_total", "New checkpoints committed, by component",
		    "component", NULL, 0, &n->n_m_stored);
	if (rv == 0 && series_max != 0) /* the one family with a series per component */
		rv = metrics_set_series_max(n->n_m_stored, series_max);
	if (rv == 0)
		rv = metrics_add_family(n->n_metrics, METRICS_COUNTER,
		    "ckpt_nas_checkpoint_bytes_total",
		    "Logical (whole, uncompressed) size of the new checkpoints committed", NULL, NULL,
		    0, &n->n_m_ckpt_bytes);
	for (size_t i = 0; rv == 0 && i < NAS_GAUGES; i++)
		rv = metrics_add_family(n->n_metrics, gauges[i].type, gauges[i].name, gauges[i].help,
		    NULL, NULL, 0, &n->n_m_store[i]);
	if (rv == 0)
		rv = metrics_add_collector(n->n_metrics, nas_collect, n);
	return rv;
}

int
nas_start(const struct nas_config *cfg, struct store *st, struct nas **ret_nas)
{
	struct rpc_server_config rc = {
		.rs_service = &ckpt__v1__nas__descriptor,
		.rs_handlers = nas_handlers,
		.rs_raw_handlers = nas_raw_handlers,
		.rs_decoders = nas_decoders,
		.rs_recv_max = cfg->nc_recv_max,
		.rs_workers = cfg->nc_workers,
		.rs_direct = nas_direct,
		.rs_direct_max = NAS_DIRECT_MAX,
		.rs_on_bad = nas_on_bad,
		.rs_roles = nas_roles,
		.rs_on_refused = nas_on_refused,
		.rs_on_limit = nas_on_limit,
	};
	size_t recv_max = cfg->nc_recv_max != 0 ? cfg->nc_recv_max : RPC_RECV_MAX_DEFAULT;
	struct grant_loaded gl;
	struct store_error serr = { "", NULL };
	struct rpc_server *srv;
	struct nas *n;
	int rv;

	_Static_assert(sizeof(nas_handlers) / sizeof(nas_handlers[0]) == NAS_METHODS,
	    "one handler per Nas method");
	_Static_assert(NAS_DEFER_HOLD_MIN >= NAS_DIRECT_MAX, "a direct Store is never held");
	if (ckpt__v1__nas__descriptor.n_methods != NAS_METHODS)
		return -EPROTO;
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	n->n_store = st;
	n->n_keep = cfg->nc_keep;
	if (cfg->nc_limits != NULL)
		rpc_limits_apply(cfg->nc_limits, &rc);
	n->n_max_uploads = cfg->nc_max_uploads != 0 ? cfg->nc_max_uploads : LIMIT_UPLOADS_DEFAULT;
	/* Each PutChunks in progress holds a worker: no more connections upload at once. */
	n->n_up_cap = cfg->nc_workers != 0 ? cfg->nc_workers : 4;
	n->n_defer_max = n->n_up_cap * NAS_DEFER_PER_WORKER;
	n->n_up = calloc(n->n_up_cap, sizeof(*n->n_up));
	if (n->n_up == NULL) {
		free(n);
		return -ENOMEM;
	}
	pthread_mutex_init(&n->n_up_mu, NULL);
	rv = grant_open(st, 0, &n->n_grants, &gl, &serr);
	if (rv != 0) {
		LOG_ERROR("grants: %s", serr.se_msg[0] != '\0' ? serr.se_msg : strerror(-rv));
		goto out_free;
	}
	if (gl.gl_loaded + gl.gl_bad + gl.gl_over != 0)
		LOG_INFO("grants: %zu loaded from the store, %zu corrupt and %zu beyond %u skipped",
		    gl.gl_loaded, gl.gl_bad, gl.gl_over, GRANT_MAX);
	/* A peer configured like this server accepts what it would accept. */
	n->n_get_budget = recv_max > 2 * NAS_REPLY_OVERHEAD ? recv_max - NAS_REPLY_OVERHEAD
	                                                    : NAS_REPLY_OVERHEAD;
	n->n_map_max = cfg->nc_map_max;
	rc.rs_arg = n;
	if (cfg->nc_http != NULL) {
		rv = nas_metrics_new(n, cfg->nc_metrics_series_max);
		if (rv != 0)
			goto out_free;
		rc.rs_metrics = n->n_metrics;
	}
	rc.rs_tls = cfg->nc_tls;
	rv = rpc_server_start(&rc, cfg->nc_listen, &srv);
	if (rv != 0)
		goto out_free;
	atomic_store(&n->n_server, srv);
	if (cfg->nc_http != NULL) {
		struct health_config hc = { cfg->nc_http, n->n_metrics, nas_ready, n };
		char err[HEALTH_REASON_MAX];

		rv = health_start(&hc, &n->n_health, err, sizeof(err));
		if (rv != 0) {
			LOG_ERROR("%s", err);
			nas_stop(n);
			return rv;
		}
		LOG_INFO("health and metrics on %s (/healthz, /readyz, /metrics)",
		    health_url(n->n_health));
	}
	*ret_nas = n;
	return 0;

out_free:
	metrics_free(n->n_metrics);
	grant_free(n->n_grants);
	pthread_mutex_destroy(&n->n_up_mu);
	free(n->n_up);
	free(n);
	return rv;
}

struct rpc_server *
nas_rpc_server(struct nas *n)
{
	return atomic_load(&n->n_server);
}

const char *
nas_url(const struct nas *n)
{
	return rpc_server_url(atomic_load(&((struct nas *)n)->n_server));
}

void
nas_stop(struct nas *n)
{
	if (n == NULL)
		return;
	health_stop(n->n_health);
	rpc_server_stop(atomic_load(&n->n_server));
	metrics_free(n->n_metrics);
	grant_free(n->n_grants);
	pthread_mutex_destroy(&n->n_up_mu);
	free(n->n_up);
	free(n);
}

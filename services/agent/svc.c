/* svc: the Agent service (Restore, Stop, CheckpointNow, Status): thin handlers over comp, ckpt and the drivers. */

#include "agent_int.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>

#include "ckpt/v1/agent.pb-c.h"
#include "digest.h"
#include "drv.h"
#include "err.h"
#include "key.h"
#include "log.h"
#include "util.h"
#include "methods.h"
#include "svc_spec.h"

static int
svc_reject(struct rpc_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Refuses a malformed request: -EINVAL, the reason in the reply and the log. */
static int
svc_reject(struct rpc_call *call, const char *fmt, ...)
{
	char msg[RPC_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	LOG_WARN("bad request: %s", msg);
	rpc_call_errorf(call, "%s", msg);
	return -EINVAL;
}

/* A name from the wire must pass key_name_check(); optional ones may be "". */
static int
svc_check_name(struct rpc_call *call, const char *what, const char *s, bool optional)
{
	if (optional && s[0] == '\0')
		return 0;
	if (key_name_check(s) != 0)
		return svc_reject(call, "invalid %s '%.64s%s': want 1 to %d of [A-Za-z0-9._-]", what,
		    s, strlen(s) > 64 ? "..." : "", KEY_NAME_MAX);
	return 0;
}

/* The kind of records that name none: they were all the demo's. */
#define SVC_KIND_LEGACY "demo"

/* Largest state a restore into kind (NULL: any driver) may fetch. */
static uint64_t
svc_state_max(const char *kind)
{
	const struct drv_ops *ops = kind != NULL ? drv_find(kind) : NULL;
	uint64_t max = 0;

	if (ops != NULL)
		return ops->d_state_max;
	for (size_t i = 0; i < drv_count(); i++)
		if (drv_at(i)->d_state_max > max)
			max = drv_at(i)->d_state_max;
	return max;
}

int
svc_load(struct agent *a, const struct svc_load_req *lr, struct svc_loaded *ret,
    char *msg, size_t msglen)
{
	struct agent_nas *h = NULL;
	const struct drv_ops *ops = NULL;
	struct drv_inst *inst = NULL;
	const char *kind = lr->lr_kind;
	const char *ckind;
	char why[RPC_ERRMSG_MAX] = "";
	struct nasc_info info;
	struct rpc_error err;
	uint8_t state_sha[SHA_LEN];
	char hex_ck[SHA_HEX_LEN + 1], hex_state[SHA_HEX_LEN + 1];
	struct nasc_fallback fb = { 0 };
	struct svc_loaded out;
	struct drv_spec spec;
	struct drv_setting cset;
	char cbuf[SVC_SPEC_SETTING_MAX];
	void *buf = NULL;
	size_t len = 0;
	int rv;

	h = nasref_get(a);
	if (h == NULL) {
		snprintf(msg, msglen, "node %s has not attached to %s yet: no NAS address",
		    a->a_node, a->a_manager);
		return -ECONNREFUSED;
	}
	/* A corrupt checkpoint (DATA_LOSS): the previous sequence instead, said in the log. */
	rv = nasc_retrieve_buf_fallback(h->an_nasc, lr->lr_node, lr->lr_component, lr->lr_seq,
	    svc_state_max(kind), lr->lr_timeout_ms, &buf, &len, &info, &fb, &err);
	nasref_put(a, h);
	if (rv == 0 && fb.nf_bad_seq != 0)
		LOG_WARN("restore of %s: checkpoint %s@%" PRIu64 " is corrupt (%s); restoring %s/%s@%"
		         PRIu64 " instead",
		    lr->lr_component, lr->lr_component, fb.nf_bad_seq, fb.nf_bad_msg, info.ni_node,
		    info.ni_component, info.ni_seq);
	if (rv != 0) {
		if (rv == -EFBIG)
			snprintf(msg, msglen, "checkpoint of %s is larger than %llu bytes",
			    lr->lr_component, (unsigned long long)svc_state_max(kind));
		else
			snprintf(msg, msglen, "%s", err.re_msg[0] != '\0' ? err.re_msg : err_str(rv));
		return rv;
	}
	if (info.ni_component[0] == '\0')
		snprintf(info.ni_component, sizeof(info.ni_component), "%s", lr->lr_component);
	sha_hex(info.ni_digest, SHA_LEN, hex_ck);
	/*
	 * The expected digest is the requested checkpoint's, not a fallback's:
	 * its identity digest, or the plain SHA-256 a catalogue learnt before the
	 * record had a digest.
	 */
	if (lr->lr_sha256 != NULL && fb.nf_bad_seq == 0 &&
	    memcmp(lr->lr_sha256, info.ni_digest, SHA_LEN) != 0 &&
	    !(info.ni_has_sha256 && memcmp(lr->lr_sha256, info.ni_sha256, SHA_LEN) == 0)) {
		char want[SHA_HEX_LEN + 1];
		sha_hex(lr->lr_sha256, SHA_LEN, want);
		rv = -EBADMSG;
		snprintf(msg, msglen, "checkpoint %s/%s@%" PRIu64 " has digest %s, expected %s",
		    info.ni_node, info.ni_component, info.ni_seq, hex_ck, want);
		goto out;
	}
	/*
	 * The record's kind names the driver that made it (records without one
	 * are the demo's, from before kinds were recorded); a restore into
	 * another kind is refused.
	 */
	ckind = info.ni_kind[0] != '\0' ? info.ni_kind : SVC_KIND_LEGACY;
	if (kind != NULL && strcmp(ckind, kind) != 0) {
		rv = -EMEDIUMTYPE;
		snprintf(msg, msglen, "checkpoint %s/%s@%" PRIu64 " was made by the %.32s "
		    "driver, not %.32s: a restore into another kind is refused",
		    info.ni_node, info.ni_component, info.ni_seq, ckind, kind);
		goto out;
	}
	ops = drv_find(ckind);
	if (ops == NULL) {
		rv = -EMEDIUMTYPE;
		snprintf(msg, msglen, "checkpoint %s/%s@%" PRIu64 " was made by the %.32s "
		    "driver, which node %s does not have",
		    info.ni_node, info.ni_component, info.ni_seq, ckind, a->a_node);
		goto out;
	}
	if (len > ops->d_state_max) {
		rv = -EFBIG;
		snprintf(msg, msglen, "checkpoint of %s is larger than %llu bytes",
		    lr->lr_component, (unsigned long long)ops->d_state_max);
		goto out;
	}
	/*
	 * Without a digest of its own, the driver's state is the bytes it is
	 * given: nasc verified each chunk against the record's list and the list
	 * against the record's digest, so their digest is the record's.
	 */
	if (ops->d_digest == NULL)
		memcpy(state_sha, info.ni_digest, SHA_LEN);
	/* Drivers that run a program start it from its spec: sent along, or the node's own. */
	if (lr->lr_spec != NULL)
		svc_spec_drv(lr->lr_spec, lr->lr_component, &cset, cbuf, &spec);
	else
		agent_drv_spec(a, lr->lr_component, ckind, &spec);
	/* The driver may take the buffer over: the state is in memory once, not twice. */
	rv = ops->d_start(&spec, buf, len, &inst, why, sizeof(why));
	if (rv == 0)
		buf = NULL;
	if (rv != 0) {
		snprintf(msg, msglen, "checkpoint %s/%s@%" PRIu64 ": %.32s driver: %s",
		    info.ni_node, info.ni_component, info.ni_seq, ops->d_kind,
		    why[0] != '\0' ? why : err_str(rv));
		goto out;
	}
	/*
	 * The digest of the state as restored, before it ticks again: cut with
	 * the record's chunking. A record of the older format without its
	 * chunking is compared by its plain SHA-256; once that matches, the
	 * state's digest is the record's (the same bytes).
	 */
	rv = 0;
	if (ops->d_digest != NULL && info.ni_chunk_max == 0 && info.ni_has_sha256) {
		rv = ops->d_digest(inst, NULL, state_sha);
		if (rv == 0 && memcmp(state_sha, info.ni_sha256, SHA_LEN) == 0)
			memcpy(state_sha, info.ni_digest, SHA_LEN);
	} else if (ops->d_digest != NULL) {
		struct chunk_params cp;
		rv = digest_params(info.ni_chunk_min, info.ni_chunk_avg, info.ni_chunk_max, &cp);
		if (rv == 0)
			rv = ops->d_digest(inst, &cp, state_sha);
	}
	if (rv != 0) {
		snprintf(msg, msglen, "hashing the restored state: %s", err_str(rv));
		goto out;
	}
	sha_hex(state_sha, SHA_LEN, hex_state);
	if (memcmp(state_sha, info.ni_digest, SHA_LEN) != 0) {
		rv = -EBADMSG;
		LOG_ERROR("checkpoint %s/%s@%" PRIu64 " received (digest=%s); restored state digest=%s "
		          "differs",
		    info.ni_node, info.ni_component, info.ni_seq, hex_ck, hex_state);
		snprintf(msg, msglen, "restored state digest %s differs from checkpoint digest %s",
		    hex_state, hex_ck);
		goto out;
	}
	memset(&out, 0, sizeof(out));
	out.ld_ops = ops;
	out.ld_inst = inst;
	inst = NULL;
	snprintf(out.ld_from.cr_node, sizeof(out.ld_from.cr_node), "%s", info.ni_node);
	snprintf(out.ld_from.cr_component, sizeof(out.ld_from.cr_component), "%s",
	    info.ni_component);
	out.ld_from.cr_seq = info.ni_seq;
	out.ld_from.cr_unix_ms = info.ni_created_unix_ms;
	memcpy(out.ld_from.cr_sha256, info.ni_digest, SHA_LEN);
	memcpy(out.ld_state_sha256, state_sha, SHA_LEN);
	*ret = out;
out:
	if (inst != NULL) {
		(void)ops->d_stop(inst, 0);
		ops->d_free(inst);
	}
	free(buf);
	return rv;
}

/*
 * A component with no checkpoint, started from the spec that came with the
 * Restore; name is reserved (and released here on failure).
 */
static int
svc_restore_fresh(struct agent *a, struct rpc_call *call, const Ckpt__V1__RestoreRequest *req,
    const struct spec *cspec, const struct comp_req *reqs, size_t nreqs,
    Ckpt__V1__RestoreReply *reply)
{
	const struct drv_ops *ops = drv_find(cspec->sp_driver);
	struct drv_inst *inst = NULL;
	struct drv_setting set;
	struct drv_spec ds;
	char buf[SVC_SPEC_SETTING_MAX], why[RPC_ERRMSG_MAX] = "";
	int rv;

	svc_spec_drv(cspec, req->component, &set, buf, &ds);
	rv = ops != NULL ? ops->d_start(&ds, NULL, 0, &inst, why, sizeof(why)) : -EMEDIUMTYPE;
	comp_remove(a->a_comps, req->component, 0);
	if (rv == 0) {
		rv = comp_add(a->a_comps, req->component, ops, inst, req->epoch);
		if (rv != 0) {
			(void)ops->d_stop(inst, 0);
			ops->d_free(inst);
			snprintf(why, sizeof(why), "%s", err_str(rv));
		}
	}
	if (rv != 0) {
		LOG_WARN("start of %s from its spec failed: %s", req->component, why);
		rpc_call_errorf(call, "node %s could not start %s from its spec (driver %.32s): %s",
		    a->a_node, req->component, cspec->sp_driver, why[0] != '\0' ? why : err_str(rv));
		/* Another node may well start it: not "not found", not "invalid". */
		return rv == -ENOMEM ? rv : -ESTALE;
	}
	(void)comp_set_requires(a->a_comps, req->component, reqs, nreqs);
	decl_done(a, req->component);
	ckpt_kick(a);
	LOG_INFO("component %s started fresh from its spec (driver %s, epoch %" PRIu64 ")",
	    req->component, cspec->sp_driver, req->epoch);
	rv = comp_status_one(a->a_comps, rpc_call_arena(call), req->component, &reply->status);
	if (rv != 0)
		rpc_call_errorf(call, "status of %s: %s", req->component, err_str(rv));
	return rv;
}

static int
svc_restore_one(struct agent *a, struct rpc_call *call, const Ckpt__V1__RestoreRequest *req,
    const struct spec *cspec, Ckpt__V1__RestoreReply *reply)
{
	const char *kind = cspec != NULL ? cspec->sp_driver
	    : req->kind != NULL && req->kind[0] != '\0' ? req->kind : NULL;
	struct svc_load_req lr = {
		.lr_component = req->component,
		.lr_node = req->node,
		.lr_seq = req->seq,
		.lr_sha256 = req->sha256.len == SHA_LEN ? req->sha256.data : NULL,
		.lr_kind = kind,
		.lr_spec = cspec,
	};
	struct svc_loaded ld = { 0 };
	char hex_ck[SHA_HEX_LEN + 1], hex_state[SHA_HEX_LEN + 1];
	char msg[RPC_ERRMSG_MAX];
	struct comp_req reqs[LIMIT_REQUIRES_MAX];
	size_t nreqs = 0;
	int rv;

	rv = svc_check_name(call, "component", req->component, false);
	if (rv == 0)
		rv = svc_check_name(call, "node", req->node, true);
	if (rv != 0)
		return rv;
	if (req->sha256.len != 0 && req->sha256.len != SHA_LEN)
		return svc_reject(call, "Restore of %s: sha256 has %zu bytes, want 0 or %d",
		    req->component, req->sha256.len, SHA_LEN);
	if (req->n_requires > LIMIT_REQUIRES_MAX)
		return svc_reject(call, "Restore of %s: %zu required labels, at most %d",
		    req->component, req->n_requires, LIMIT_REQUIRES_MAX);
	for (size_t i = 0; i < req->n_requires; i++) {
		const Ckpt__V1__Label *l = req->requires[i];
		if (l == NULL || key_name_check(l->key) != 0 ||
		    strlen(l->value) > LIMIT_REQ_VALUE_MAX)
			return svc_reject(call, "Restore of %s: invalid required label",
			    req->component);
		snprintf(reqs[nreqs].cq_key, sizeof(reqs[nreqs].cq_key), "%s", l->key);
		snprintf(reqs[nreqs].cq_value, sizeof(reqs[nreqs].cq_value), "%s", l->value);
		nreqs++;
	}
	if (cspec != NULL && nreqs == 0) {
		/* The spec's labels (LIMIT_REQUIRES_MAX = LIMIT_REQUIRES_MAX). */
		for (; nreqs < cspec->sp_nrequires; nreqs++) {
			snprintf(reqs[nreqs].cq_key, sizeof(reqs[nreqs].cq_key), "%s",
			    cspec->sp_requires[nreqs].sr_key);
			snprintf(reqs[nreqs].cq_value, sizeof(reqs[nreqs].cq_value), "%s",
			    cspec->sp_requires[nreqs].sr_value);
		}
	}
	if (kind != NULL && drv_find(kind) == NULL) {
		rpc_call_errorf(call, "node %s has no driver of kind '%.32s' to restore %s into",
		    a->a_node, kind, req->component);
		LOG_WARN("restore of %s refused: no driver of kind '%.32s'", req->component, kind);
		return -EMEDIUMTYPE;
	}
	rv = comp_reserve(a->a_comps, req->component);
	if (rv != 0) {
		if (rv == -EEXIST)
			rpc_call_errorf(call, "component %s already runs on node %s", req->component,
			    a->a_node);
		else if (rv == -EUSERS)
			return rpc_call_limitf(call, LIMIT_N_COMPONENTS, "node %s cannot take %s: it "
			    "holds %zu components, its limit %s (--max-components)", a->a_node,
			    req->component, comp_table_max(a->a_comps), LIMIT_N_COMPONENTS);
		else
			rpc_call_errorf(call, "cannot take %s: %s", req->component, err_str(rv));
		return rv;
	}
	if (req->fresh)
		return svc_restore_fresh(a, call, req, cspec, reqs, nreqs, reply);
	lr.lr_timeout_ms = agent_call_budget(call);
	rv = svc_load(a, &lr, &ld, msg, sizeof(msg));
	/*
	 * The restore's buffers (replies, batches, the chunk list) were freed on
	 * several threads, whose arenas keep them resident: give them back, or
	 * the first store of the restored state peaks on top of them (as in
	 * ckpt.c; docs/data-path.md, "Memory bounds").
	 */
	malloc_trim(0);
	if (rv != 0)
		goto out_unreserve;
	rv = comp_restored(a->a_comps, req->component, ld.ld_ops, ld.ld_inst, req->epoch,
	    &ld.ld_from, ld.ld_state_sha256);
	if (rv != 0) {
		snprintf(msg, sizeof(msg), "component %s vanished during its restore", req->component);
		(void)ld.ld_ops->d_stop(ld.ld_inst, 0);
		ld.ld_ops->d_free(ld.ld_inst);
		goto out_unreserve;
	}
	(void)comp_set_requires(a->a_comps, req->component, reqs, nreqs);
	decl_done(a, req->component);
	/* Store it at once with the new epoch: the NAS then refuses the old owner's commits. */
	ckpt_kick(a);
	sha_hex(ld.ld_from.cr_sha256, SHA_LEN, hex_ck);
	sha_hex(ld.ld_state_sha256, SHA_LEN, hex_state);
	LOG_INFO("checkpoint %s/%s@%" PRIu64 " received (digest=%s); restored state digest=%s; "
	         "migration successful",
	    ld.ld_from.cr_node, ld.ld_from.cr_component, ld.ld_from.cr_seq, hex_ck, hex_state);
	rv = comp_status_one(a->a_comps, rpc_call_arena(call), req->component, &reply->status);
	if (rv != 0)
		rpc_call_errorf(call, "status of %s: %s", req->component, err_str(rv));
	return rv;

out_unreserve:
	LOG_WARN("restore of %s failed: %s", req->component, msg);
	rpc_call_errorf(call, "%s", msg);
	comp_remove(a->a_comps, req->component, 0);
	return rv;
}

static int
svc_restore(void *arg, struct rpc_call *call, const ProtobufCMessage *req_msg,
    ProtobufCMessage *reply_msg)
{
	struct agent *a = arg;
	const Ckpt__V1__RestoreRequest *req = (const Ckpt__V1__RestoreRequest *)req_msg;
	struct spec *cspec = NULL;
	char msg[RPC_ERRMSG_MAX];
	int rv;

	if (req->spec == NULL && req->fresh)
		return svc_reject(call, "Restore of %.64s: fresh without a spec", req->component);
	if (req->spec != NULL) {
		/* A cluster-wide spec: held against this node's allow list first. */
		rv = svc_spec_take(a, req->spec, req->component, &cspec, msg, sizeof(msg));
		if (rv != 0) {
			LOG_WARN("restore of %.64s refused: %s", req->component, msg);
			rpc_call_errorf(call, "%s", msg);
			return rv;
		}
		if (req->kind != NULL && req->kind[0] != '\0' &&
		    strcmp(req->kind, cspec->sp_driver) != 0) {
			rv = svc_reject(call, "Restore of %s: kind %.32s, but its spec's driver is "
			    "%.32s", req->component, req->kind, cspec->sp_driver);
			spec_free(cspec);
			return rv;
		}
	}
	rv = svc_restore_one(a, call, req, cspec, (Ckpt__V1__RestoreReply *)reply_msg);
	/* Kept while the agent lives: its supervisor and checkpoint loop go by it. */
	if (rv == 0 && cspec != NULL)
		cspec = svc_spec_keep(a, cspec);
	spec_free(cspec);
	return rv;
}

static int
svc_stop_component(void *arg, struct rpc_call *call, const ProtobufCMessage *req_msg,
    ProtobufCMessage *reply_msg)
{
	struct agent *a = arg;
	const Ckpt__V1__StopRequest *req = (const Ckpt__V1__StopRequest *)req_msg;
	Ckpt__V1__StopReply *reply = (Ckpt__V1__StopReply *)reply_msg;
	struct nasc_info info;
	struct rpc_error err;
	int rv;

	rv = svc_check_name(call, "component", req->component, false);
	if (rv != 0)
		return rv;
	rv = comp_stop(a->a_comps, req->component);
	if (rv != 0) {
		rpc_call_errorf(call, "component %s does not run on node %s", req->component,
		    a->a_node);
		return rv;
	}
	if (req->checkpoint) {
		/* Older checkpoints that wait go first, so the final one is the newest. */
		if (!queue_empty(a->a_queue))
			ckpt_queue_flush(a, agent_call_budget(call));
		rv = ckpt_take(a, req->component, true, false, agent_call_budget(call), &info,
		    NULL, &err);
		if (rv != 0) {
			comp_resume(a->a_comps, req->component);
			rpc_call_errorf(call, "final checkpoint of %s failed: %s", req->component,
			    err.re_msg);
			LOG_WARN("component %s not stopped: its final checkpoint failed", req->component);
			return rv;
		}
		reply->checkpoint = notify_info_copy(rpc_call_arena(call), &info);
		if (reply->checkpoint == NULL) {
			comp_resume(a->a_comps, req->component);
			return -ENOMEM;
		}
	}
	comp_remove(a->a_comps, req->component, DRV_STOP_GRACE_MS);
	(void)queue_drop_component(a->a_queue, req->component);
	if (req->checkpoint)
		LOG_INFO("component %s stopped (final checkpoint %" PRIu64 ")", req->component,
		    info.ni_seq);
	else
		LOG_INFO("component %s stopped (no final checkpoint)", req->component);
	return 0;
}

static int
svc_checkpoint_now(void *arg, struct rpc_call *call, const ProtobufCMessage *req_msg,
    ProtobufCMessage *reply_msg)
{
	struct agent *a = arg;
	const Ckpt__V1__CheckpointNowRequest *req = (const Ckpt__V1__CheckpointNowRequest *)req_msg;
	Ckpt__V1__CheckpointNowReply *reply = (Ckpt__V1__CheckpointNowReply *)reply_msg;
	struct arena *arena = rpc_call_arena(call);
	comp_name *names = NULL;
	size_t n = 0;
	int rv;

	rv = svc_check_name(call, "component", req->component, true);
	if (rv != 0)
		return rv;
	if (req->component[0] != '\0') {
		if (!comp_is_running(a->a_comps, req->component)) {
			rpc_call_errorf(call, "component %s does not run on node %s", req->component,
			    a->a_node);
			return -ENOENT;
		}
		names = malloc(sizeof(*names));
		if (names == NULL)
			return -ENOMEM;
		strcpy(names[0], req->component);
		n = 1;
	} else {
		rv = comp_running_names(a->a_comps, &names, &n);
		if (rv != 0)
			return rv;
	}
	reply->checkpoints = arena_alloc(arena, (n > 0 ? n : 1) * sizeof(*reply->checkpoints));
	if (reply->checkpoints == NULL) {
		rv = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct nasc_info info;
		struct rpc_error err;

		rv = ckpt_take(a, names[i], false, false, agent_call_budget(call), &info, NULL,
		    &err);
		if (rv != 0) {
			rpc_call_errorf(call, "checkpoint of %s failed: %s", names[i], err.re_msg);
			goto out;
		}
		reply->checkpoints[reply->n_checkpoints] = notify_info_copy(arena, &info);
		if (reply->checkpoints[reply->n_checkpoints] == NULL) {
			rv = -ENOMEM;
			goto out;
		}
		reply->n_checkpoints++;
	}
out:
	free(names);
	return rv;
}

static int
svc_status(void *arg, struct rpc_call *call, const ProtobufCMessage *req_msg,
    ProtobufCMessage *reply_msg)
{
	struct agent *a = arg;
	Ckpt__V1__StatusReply *reply = (Ckpt__V1__StatusReply *)reply_msg;
	struct arena *arena = rpc_call_arena(call);

	Ckpt__V1__QueueStatus *q = arena_alloc(arena, sizeof(*q));
	struct queue_stats qs;

	(void)req_msg;
	reply->node = arena_strdup(arena, a->a_node);
	reply->instance = a->a_instance;
	if (reply->node == NULL || q == NULL)
		return -ENOMEM;
	queue_get_stats(a->a_queue, &qs);
	ckpt__v1__queue_status__init(q);
	q->checkpoints = qs.qs_items;
	q->bytes = qs.qs_bytes;
	q->max_bytes = qs.qs_max_bytes;
	q->dropped = qs.qs_dropped;
	q->stored = qs.qs_stored;
	reply->queue = q;
	return comp_status_all(a->a_comps, arena, false, &reply->components, &reply->n_components);
}

const rpc_handler_fn svc_handlers[] = {
	[AGENT_RESTORE] = svc_restore,
	[AGENT_STOP] = svc_stop_component,
	[AGENT_CHECKPOINT_NOW] = svc_checkpoint_now,
	[AGENT_STATUS] = svc_status,
};

void
svc_on_bad(void *arg, const char *reason)
{
	(void)arg;
	LOG_WARN("bad request: %s", reason);
}

void
svc_on_refused(void *arg, const char *line)
{
	(void)arg;
	LOG_WARN("refused: %s", line);
}

/* With authentication on: the manager drives an agent; an operator may look. */
const unsigned svc_roles[AGENT_METHODS] = {
	[AGENT_RESTORE] = AUTH_MANAGER,
	[AGENT_STOP] = AUTH_MANAGER,
	[AGENT_CHECKPOINT_NOW] = AUTH_MANAGER,
	[AGENT_STATUS] = AUTH_MANAGER | AUTH_OPERATOR,
};

void
svc_on_limit(void *arg, const char *name, const char *msg)
{
	struct agent *a = arg;
	uint64_t held;

	if (limit_log_named(&a->a_limit_log, name, util_now_mono_ms(), &held))
		LOG_WARN("limit %s hit: %s%s", name, msg,
		    held != 0 ? " (and more since the last line)" : "");
}

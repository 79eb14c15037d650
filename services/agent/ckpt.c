/*
 * ckpt: the checkpoint pipeline. Copy a component's state out (comp.h),
 * store it on the NAS (nasc.h), keep it in the offline queue while the NAS is
 * down and store what waits in order when it answers again, notify the
 * manager; and the checkpoint thread that does it every interval.
 */

#include "agent_int.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/v1/nas.pb-c.h"
#include "err.h"
#include "log.h"
#include "methods.h"
#include "util.h"

/*
 * Stores a snapshot: with its hints when it has some (nasc re-reads only
 * around the changed ranges when it remembers their base), else whole.
 */
static int
ckpt_store(struct nasc *n, const struct nasc_put *put, const struct comp_snap *snap,
    unsigned timeout_ms, struct nasc_info *ret_info, struct rpc_error *err)
{
	struct nasc_hints hints;
	struct nasc_range *r;
	int rv;

	if (!snap->cp_hinted || snap->cp_nchanged > NASC_RANGES_MAX)
		return nasc_store_buf(n, put, snap->cp_data, snap->cp_len, timeout_ms, ret_info, err);
	r = malloc((snap->cp_nchanged != 0 ? snap->cp_nchanged : 1) * sizeof(*r));
	if (r == NULL)
		return nasc_store_buf(n, put, snap->cp_data, snap->cp_len, timeout_ms, ret_info, err);
	for (size_t i = 0; i < snap->cp_nchanged; i++) {
		r[i].nr_off = snap->cp_changed[i].rn_off;
		r[i].nr_len = snap->cp_changed[i].rn_len;
	}
	memcpy(hints.nh_base_digest, snap->cp_base_sha256, SHA_LEN);
	hints.nh_ranges = r;
	hints.nh_count = snap->cp_nchanged;
	rv = nasc_store_hinted(n, put, snap->cp_data, snap->cp_len, &hints, timeout_ms, ret_info,
	    err);
	free(r);
	return rv;
}

/*
 * Where does name's seq stand on the NAS? Its checkpoints go on at the
 * latest seq (of any node) + 1, with an epoch no older than the latest's.
 */
static int
ckpt_learn_seq(struct nasc *n, const char *name, struct comp_seq *seq,
    struct rpc_error *err)
{
	Ckpt__V1__ListRequest req = CKPT__V1__LIST_REQUEST__INIT;
	Ckpt__V1__ListReply *rep = NULL;
	uint64_t latest = 0, epoch = seq->cs_epoch;
	int rv;

	req.component = (char *)name;
	req.latest_only = true;
	rv = nasc_call(n, NAS_LIST, &req.base, AGENT_CONTROL_TIMEOUT_MS, (ProtobufCMessage **)&rep,
	    err);
	if (rv == -ENOENT) {
		rv = 0;
	} else if (rv == 0) {
		for (size_t i = 0; i < rep->n_checkpoints; i++) {
			const Ckpt__V1__CheckpointInfo *ci = rep->checkpoints[i];
			if (ci == NULL || strcmp(ci->component, name) != 0)
				continue;
			if (ci->seq > latest)
				latest = ci->seq;
			if (ci->epoch > epoch)
				epoch = ci->epoch;
		}
		rpc_reply_free(&rep->base);
	} else {
		return rv;
	}
	if (latest == UINT64_MAX) {
		agent_set_error(err, -ERANGE, "seq of %s is exhausted on the NAS", name);
		return -ERANGE;
	}
	/*
	 * A component this node already stored or restored keeps its epoch: a
	 * newer one on the NAS means another node owns it now (fencing). Only a
	 * component started here that never stored takes the NAS's epoch up.
	 */
	if (seq->cs_owned && epoch > seq->cs_epoch) {
		agent_set_error(err, -ESTALE, "stale epoch %" PRIu64 " < %" PRIu64
		    " for component %s: the NAS holds a newer owner's checkpoints",
		    seq->cs_epoch, epoch, name);
		return -ESTALE;
	}
	if (latest > 0)
		LOG_INFO("NAS holds %s up to seq %" PRIu64 " (epoch %" PRIu64 "); continuing at %" PRIu64,
		    name, latest, epoch, latest + 1);
	seq->cs_next = latest + 1;
	seq->cs_epoch = epoch;
	seq->cs_known = true;
	seq->cs_owned = true;
	return 0;
}

/*
 * The newest checkpoint of name stored on the NAS, for a driver that has
 * nothing new to checkpoint (its program made no checkpoint since): that one
 * is its latest state. -ENOENT when none is stored.
 */
static int
ckpt_latest_stored(struct agent *a, const char *name, unsigned timeout_ms,
    struct nasc_info *ret_info, struct rpc_error *err)
{
	Ckpt__V1__ListRequest req = CKPT__V1__LIST_REQUEST__INIT;
	Ckpt__V1__ListReply *rep = NULL;
	const Ckpt__V1__CheckpointInfo *best = NULL;
	struct agent_nas *h = nasref_get(a);
	int rv;

	if (h == NULL) {
		agent_set_error(err, -ECONNREFUSED, "no NAS address yet: node %s has not attached to "
		    "%s", a->a_node, a->a_manager);
		return -ECONNREFUSED;
	}
	req.component = (char *)name;
	req.latest_only = true;
	rv = nasc_call(h->an_nasc, NAS_LIST, &req.base, timeout_ms, (ProtobufCMessage **)&rep, err);
	nasref_put(a, h);
	if (rv == -ENOENT)
		goto out_none;
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < rep->n_checkpoints; i++) {
		const Ckpt__V1__CheckpointInfo *ci = rep->checkpoints[i];
		if (ci != NULL && strcmp(ci->component, name) == 0 && (best == NULL || ci->seq > best->seq))
			best = ci;
	}
	if (best != NULL)
		nasc_info_from_pb(best, ret_info);
	rpc_reply_free(&rep->base);
	if (best != NULL)
		return 0;
out_none:
	agent_set_error(err, -ENOENT, "%s has made no checkpoint yet", name);
	return -ENOENT;
}

/* Errors after which the checkpoint is kept for later: the NAS is away or overloaded. */
static bool
ckpt_transient(int rv)
{
	switch (rv) {
	case -ECONNREFUSED:
	case -ETIMEDOUT:
	case -ENOSPC:
	case -EIO:
	case -EPROTO:
	case -ECONNRESET:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -ENOTCONN:
	case -EXDEV: /* a NAS list of different stores: kept until the manager gives a good one */
		return true;
	default:
		return false;
	}
}

static void
ckpt_set_nas_down(struct agent *a, bool down, const char *why)
{
	char max[UTIL_SIZE_STR_MAX];
	bool was;

	pthread_mutex_lock(&a->a_mu);
	was = a->a_nas_down;
	a->a_nas_down = down;
	pthread_mutex_unlock(&a->a_mu);
	if (down && !was)
		LOG_WARN("NAS unavailable (%s): checkpoints wait in the local queue (at most %s)",
		    why, util_fmt_size(a->a_queue_max, max));
	else if (!down && was)
		LOG_INFO("NAS available again: storing the queued checkpoints in order");
}

static bool
ckpt_nas_down(struct agent *a)
{
	bool down;
	pthread_mutex_lock(&a->a_mu);
	down = a->a_nas_down;
	pthread_mutex_unlock(&a->a_mu);
	return down;
}

/* Keeps a snapshot for later; takes snap->cp_buf (a lent state is copied: the queue keeps it). */
static void
ckpt_enqueue(struct agent *a, const char *name, struct comp_snap *snap, struct comp_seq *seq)
{
	struct queue_item it;
	struct queue_drop drops[4];
	size_t ndropped = 0;
	struct queue_stats st;
	int rv;

	/* One larger than the whole queue is dropped (and counted) by queue_push(): not copied. */
	queue_get_stats(a->a_queue, &st);
	if (snap->cp_buf == NULL && snap->cp_data != NULL && snap->cp_len <= st.qs_max_bytes) {
		snap->cp_buf = malloc(snap->cp_len != 0 ? snap->cp_len : 1);
		if (snap->cp_buf == NULL) {
			LOG_WARN("checkpoint of %s dropped: out of memory for the queue", name);
			return;
		}
		memcpy(snap->cp_buf, snap->cp_data, snap->cp_len);
	}

	memset(&it, 0, sizeof(it));
	snprintf(it.qi_component, sizeof(it.qi_component), "%s", name);
	snprintf(it.qi_kind, sizeof(it.qi_kind), "%s", snap->cp_kind);
	it.qi_seq = seq->cs_known ? seq->cs_next : 0;
	it.qi_epoch = seq->cs_epoch;
	it.qi_buf = snap->cp_buf;
	it.qi_len = snap->cp_len;
	it.qi_queued_ms = util_now_mono_ms();
	rv = queue_push(a->a_queue, &it, drops, 4, &ndropped);
	if (rv == -ENOMEM) {
		free(snap->cp_buf);
		LOG_WARN("checkpoint of %s dropped: out of memory for the queue", name);
		snap->cp_buf = NULL;
		return;
	}
	snap->cp_buf = NULL;
	if (rv == 0 && seq->cs_known)
		seq->cs_next++;
	queue_get_stats(a->a_queue, &st);
	for (size_t i = 0; i < ndropped && i < 4; i++) {
		char max[UTIL_SIZE_STR_MAX], len[UTIL_SIZE_STR_MAX];
		LOG_WARN("checkpoint queue full (%s): dropped the oldest, %s@%" PRIu64
		         " (%s); %" PRIu64 " dropped so far",
		    util_fmt_size(st.qs_max_bytes, max), drops[i].qd_component, drops[i].qd_seq,
		    util_fmt_size(drops[i].qd_len, len), st.qs_dropped);
	}
	if (ndropped > 4)
		LOG_WARN("checkpoint queue full: %zu more dropped", ndropped - 4);
	if (rv == 0)
		LOG_DEBUG("checkpoint of %s queued (%u waiting, %" PRIu64 " bytes)", name, st.qs_items,
		    st.qs_bytes);
}

/*
 * Checkpoints name now: copies its state out, stores it on the NAS and
 * notifies the manager. final: also a STOPPED component (its last one).
 * may_queue: when the NAS is down (or checkpoints already wait), keep it in
 * the queue and return 0 with *ret_queued set. Logs the outcome; on failure
 * err says why.
 */
int
ckpt_take(struct agent *a, const char *name, bool final, bool may_queue,
    unsigned timeout_ms, struct nasc_info *ret_info, bool *ret_queued, struct rpc_error *err)
{
	struct agent_nas *h = NULL;
	struct comp_snap snap;
	struct comp_seq seq;
	struct nasc_put put;
	struct nasc_info info;
	uint64_t stored = 0;
	char hex[SHA_HEX_LEN + 1], human[UTIL_SIZE_STR_MAX];
	char why[RPC_ERRMSG_MAX] = "";
	int rv;

	err->re_code = 0;
	err->re_msg[0] = '\0';
	if (ret_queued != NULL)
		*ret_queued = false;
	rv = comp_ckpt_begin(a->a_comps, name, final, &snap, why, sizeof(why));
	if (rv == -ENOENT) {
		agent_set_error(err, rv, "component %s does not run on node %s", name, a->a_node);
		return rv;
	}
	if (rv == -EAGAIN) {
		/*
		 * Nothing new (a program that checkpoints itself made no checkpoint
		 * since the last one stored): the loop passes over it quietly; a
		 * caller that wants a checkpoint (Stop, CheckpointNow) gets the
		 * newest one stored, which is its latest state.
		 */
		agent_set_error(err, rv, "%s: %s", name, why[0] != '\0' ? why : "nothing new");
		if (ret_info == NULL)
			return rv;
		rv = ckpt_latest_stored(a, name, timeout_ms, ret_info, err);
		if (rv == 0)
			LOG_INFO("checkpoint of %s: nothing new since %s/%s@%" PRIu64 ", which stands",
			    name, ret_info->ni_node, ret_info->ni_component, ret_info->ni_seq);
		goto out_log;
	}
	if (rv != 0) {
		agent_set_error(err, rv, "copying the state of %s: %s", name,
		    why[0] != '\0' ? why : err_str(rv));
		goto out_log;
	}
	seq = snap.cp_seq;
	if (may_queue && (ckpt_nas_down(a) || !queue_empty(a->a_queue))) {
		/* Behind what already waits, in order. */
		ckpt_enqueue(a, name, &snap, &seq);
		if (ret_queued != NULL)
			*ret_queued = true;
		goto out_end;
	}
	h = nasref_get(a);
	if (h == NULL) {
		rv = -ECONNREFUSED;
		agent_set_error(err, rv, "no NAS address yet: node %s has not attached to %s",
		    a->a_node, a->a_manager);
		goto out_end;
	}
	if (!seq.cs_known) {
		rv = ckpt_learn_seq(h->an_nasc, name, &seq, err);
		if (rv == -ESTALE)
			goto out_stale;
		if (rv != 0)
			goto out_queue;
	}
	put.np_node = a->a_node;
	put.np_component = name;
	put.np_kind = snap.cp_kind;
	put.np_seq = seq.cs_next;
	put.np_epoch = seq.cs_epoch;
	rv = ckpt_store(h->an_nasc, &put, &snap, timeout_ms, &info, err);
	if (rv == -EEXIST) {
		/* Someone holds that seq: learn again where it stands. */
		seq.cs_known = false;
		seq.cs_next++;
		goto out_end;
	}
	if (rv == -ESTALE) {
out_stale:
		comp_ckpt_end(a->a_comps, name, &seq, 0);
		comp_snap_clear(&snap);
		if (fence_check(a, h->an_nasc, name, put.np_epoch, err)) {
			nasref_put(a, h);
			return rv;
		}
		nasref_put(a, h);
		goto out_log;
	}
out_queue:
	if (rv != 0 && may_queue && ckpt_transient(rv) && !agent_stopping(a)) {
		ckpt_set_nas_down(a, true, err->re_msg[0] != '\0' ? err->re_msg : err_str(rv));
		ckpt_enqueue(a, name, &snap, &seq);
		if (ret_queued != NULL)
			*ret_queued = true;
		rv = 0;
		goto out_end;
	}
	if (rv != 0)
		goto out_end;
	ckpt_set_nas_down(a, false, NULL);
	/* Fill what a terse NAS reply may leave out. */
	if (info.ni_seq == 0)
		info.ni_seq = put.np_seq;
	if (info.ni_node[0] == '\0')
		snprintf(info.ni_node, sizeof(info.ni_node), "%s", a->a_node);
	if (info.ni_component[0] == '\0')
		snprintf(info.ni_component, sizeof(info.ni_component), "%s", name);
	if (info.ni_kind[0] == '\0')
		snprintf(info.ni_kind, sizeof(info.ni_kind), "%s", snap.cp_kind);
	if (info.ni_size == 0)
		info.ni_size = snap.cp_len;
	if (info.ni_epoch == 0)
		info.ni_epoch = put.np_epoch;
	stored = info.ni_seq;
	/* The next snapshots' hints are relative to these bytes. */
	comp_ckpt_stored(a->a_comps, name, info.ni_digest);
	seq.cs_next = stored + 1;
	seq.cs_known = true;
	seq.cs_owned = true;
	sha_hex(info.ni_digest, SHA_LEN, hex);
	if (info.ni_reused_chunks != 0)
		LOG_INFO("checkpoint stored on NAS: %s/%s@%" PRIu64 " size=%" PRIu64 " (%s) digest=%s"
		    " from hints: %" PRIu32 " of %" PRIu32 " chunks reused",
		    info.ni_node, info.ni_component, info.ni_seq, info.ni_size,
		    util_fmt_size(info.ni_size, human), hex, info.ni_reused_chunks,
		    info.ni_chunk_count);
	else
		LOG_INFO("checkpoint stored on NAS: %s/%s@%" PRIu64 " size=%" PRIu64 " (%s) digest=%s",
		    info.ni_node, info.ni_component, info.ni_seq, info.ni_size,
		    util_fmt_size(info.ni_size, human), hex);
	amet_checkpoint(a->a_amet, name, 0);
	/* A final checkpoint is notified before Stop answers; others in the background. */
	if (final)
		notify_send(a, &info);
	else
		notify_later(a, &info);
	if (ret_info != NULL)
		*ret_info = info;
out_end:
	comp_ckpt_end(a->a_comps, name, &seq, stored);
	comp_snap_clear(&snap);
	nasref_put(a, h);
	/*
	 * A store's buffers (batches, messages, the chunk list: tens of MiB for
	 * a large state) were freed on several threads, whose arenas keep them
	 * resident: give them back, so the next store's peak starts from the
	 * components' states alone (docs/data-path.md, "Memory bounds").
	 */
	malloc_trim(0);
out_log:
	if (rv != 0 && err->re_msg[0] == '\0')
		agent_set_error(err, rv, "%s", err_str(rv));
	if (rv != 0 && agent_stopping(a))
		LOG_DEBUG("checkpoint of %s abandoned (stopping): %s", name, err->re_msg);
	else if (rv != 0)
		LOG_WARN("checkpoint of %s failed: %s", name, err->re_msg);
	if (rv != 0 && !agent_stopping(a))
		amet_checkpoint(a->a_amet, name, rv);
	return rv;
}

/*
 * Stores the queued checkpoints, oldest first, until the queue is empty or
 * the NAS fails again. Returns how many were stored.
 */
size_t
ckpt_queue_flush(struct agent *a, unsigned timeout_ms)
{
	struct agent_nas *h;
	struct queue_item it;
	size_t stored = 0;

	pthread_mutex_lock(&a->a_flush_mu);
	h = nasref_get(a);
	while (h != NULL && !agent_stopping(a) && queue_take(a->a_queue, &it)) {
		struct nasc_put put = { a->a_node, it.qi_component, it.qi_kind, it.qi_seq,
			it.qi_epoch };
		struct nasc_info info;
		struct rpc_error err;
		char hex[SHA_HEX_LEN + 1], human[UTIL_SIZE_STR_MAX];
		int rv;

		rv = nasc_store_buf(h->an_nasc, &put, it.qi_buf, it.qi_len, timeout_ms, &info, &err);
		if (rv == -EEXIST && put.np_seq != 0) {
			/* That seq was taken meanwhile: the next free one keeps the order. */
			put.np_seq = 0;
			rv = nasc_store_buf(h->an_nasc, &put, it.qi_buf, it.qi_len, timeout_ms, &info,
			    &err);
		}
		if (rv == -ESTALE && rpc_error_is(&err, ERR_REASON_MISSING_CHUNKS) &&
		    !fence_check(a, h->an_nasc, it.qi_component, it.qi_epoch, &err)) {
			/*
			 * Chunks were deleted (rm, retention, a NAS restart's sweep)
			 * while it was stored, twice: nasc redid it once already. The
			 * checkpoint itself is good: it stays at the head of the queue,
			 * in order, and the next round sends it again (its remembered
			 * list dropped, its base taken from the NAS, every other chunk
			 * asked about). Only a NAS that refuses it round after round
			 * costs it, or it would hold every later checkpoint back.
			 */
			if (++it.qi_missing < AGENT_QUEUE_MISSING_MAX) {
				LOG_WARN("queued checkpoint of %s kept at the head of the queue, "
				         "stored again at the next round (%u of %u tries): %s",
				    it.qi_component, it.qi_missing, AGENT_QUEUE_MISSING_MAX,
				    err.re_msg);
				queue_untake(a->a_queue, &it);
				break;
			}
			LOG_WARN("queued checkpoint of %s dropped: refused for missing chunks in "
			         "%u rounds in a row: %s",
			    it.qi_component, it.qi_missing, err.re_msg);
			queue_count_dropped(a->a_queue);
			free(it.qi_buf);
			continue;
		}
		if (rv == -ESTALE) {
			free(it.qi_buf);
			/* Fenced: fence_lost() dropped the component's others, and said so. */
			if (!rpc_error_is(&err, ERR_REASON_MISSING_CHUNKS) &&
			    !fence_check(a, h->an_nasc, it.qi_component, it.qi_epoch, &err)) {
				LOG_WARN("queued checkpoint of %s dropped: %s", it.qi_component,
				    err.re_msg);
				queue_count_dropped(a->a_queue);
			}
			continue;
		}
		if (rv != 0 && ckpt_transient(rv)) {
			queue_untake(a->a_queue, &it);
			ckpt_set_nas_down(a, true, err.re_msg);
			break;
		}
		if (rv != 0) {
			LOG_WARN("queued checkpoint of %s dropped: %s", it.qi_component, err.re_msg);
			queue_count_dropped(a->a_queue);
			free(it.qi_buf);
			continue;
		}
		ckpt_set_nas_down(a, false, NULL);
		if (info.ni_seq == 0)
			info.ni_seq = put.np_seq;
		if (info.ni_node[0] == '\0')
			snprintf(info.ni_node, sizeof(info.ni_node), "%s", a->a_node);
		if (info.ni_component[0] == '\0')
			snprintf(info.ni_component, sizeof(info.ni_component), "%s", it.qi_component);
		if (info.ni_kind[0] == '\0')
			snprintf(info.ni_kind, sizeof(info.ni_kind), "%s", it.qi_kind);
		if (info.ni_size == 0)
			info.ni_size = it.qi_len;
		if (info.ni_epoch == 0)
			info.ni_epoch = put.np_epoch;
		sha_hex(info.ni_digest, SHA_LEN, hex);
		LOG_INFO("checkpoint stored on NAS: %s/%s@%" PRIu64 " size=%" PRIu64 " (%s) digest=%s "
		         "(from the queue, taken %" PRIu64 " ms ago)",
		    info.ni_node, info.ni_component, info.ni_seq, info.ni_size,
		    util_fmt_size(info.ni_size, human), hex,
		    util_now_mono_ms() - it.qi_queued_ms);
		comp_note_stored(a->a_comps, it.qi_component, info.ni_seq);
		amet_checkpoint(a->a_amet, it.qi_component, 0);
		queue_count_stored(a->a_queue);
		notify_later(a, &info);
		free(it.qi_buf);
		stored++;
	}
	nasref_put(a, h);
	pthread_mutex_unlock(&a->a_flush_mu);
	return stored;
}

/* Whether the NAS answers now (a short Nas.Stat). */
static bool
ckpt_nas_probe(struct agent *a, unsigned timeout_ms)
{
	Ckpt__V1__StatRequest req = CKPT__V1__STAT_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	struct agent_nas *h = nasref_get(a);
	struct rpc_error err;
	int rv = -ENOTCONN;

	if (h != NULL)
		rv = nasc_call(h->an_nasc, NAS_STAT, &req.base, timeout_ms, &rep, &err);
	nasref_put(a, h);
	if (rv == 0)
		rpc_reply_free(rep);
	return rv == 0;
}

/* Sleeps until deadline_ms, stop or a kick. True when stopping. */
static bool
ckpt_sleep(struct agent *a, uint64_t deadline_ms)
{
	struct timespec ts;
	bool stopping;

	agent_deadline(&ts, deadline_ms);
	pthread_mutex_lock(&a->a_mu);
	while (!a->a_stopping && !a->a_ckpt_kick &&
	    pthread_cond_timedwait(&a->a_cv, &a->a_mu, &ts) != ETIMEDOUT) {
	}
	a->a_ckpt_kick = false;
	stopping = a->a_stopping;
	pthread_mutex_unlock(&a->a_mu);
	return stopping;
}

void
ckpt_kick(struct agent *a)
{
	pthread_mutex_lock(&a->a_mu);
	a->a_ckpt_kick = true;
	pthread_cond_broadcast(&a->a_cv);
	pthread_mutex_unlock(&a->a_mu);
}

/* When each component was last checkpointed by the loop (its own interval, spec.h). */
struct ckpt_due {
	comp_name cd_name;
	uint64_t cd_last_ms; /* monotonic */
};

/*
 * Whether name is due at now: a component whose spec gives an interval is
 * checkpointed on the first round at least that long after its previous
 * one; the others on every round. due grows by the names it meets.
 */
static bool
ckpt_is_due(struct agent *a, struct ckpt_due **due, size_t *ndue, const char *name,
    uint64_t now)
{
	const struct spec *s = agent_spec_find(a, name);
	struct ckpt_due *d = NULL, *nd;

	if (s == NULL || s->sp_interval_ms <= a->a_interval_ms)
		return true;
	for (size_t i = 0; i < *ndue && d == NULL; i++)
		if (strcmp((*due)[i].cd_name, name) == 0)
			d = &(*due)[i];
	if (d == NULL) {
		nd = realloc(*due, (*ndue + 1) * sizeof(*nd));
		if (nd == NULL)
			return true;
		*due = nd;
		d = &nd[(*ndue)++];
		snprintf(d->cd_name, sizeof(d->cd_name), "%s", name);
		d->cd_last_ms = 0;
	}
	/* Half a round early is on time: rounds drift by the time they take. */
	if (d->cd_last_ms != 0 && now + a->a_interval_ms / 2 < d->cd_last_ms + s->sp_interval_ms)
		return false;
	d->cd_last_ms = now;
	return true;
}

/*
 * Lowers this thread's CPU claim as a->a_ckpt_sched says. Linux gives each
 * thread its own policy and nice value, so the link, the service workers
 * and the components keep theirs. Failures only cost the niceness: logged.
 */
static void
ckpt_set_sched(struct agent *a)
{
	pid_t tid = (pid_t)syscall(SYS_gettid);
	struct sched_param sp = { .sched_priority = 0 };
	int policy = a->a_ckpt_sched == AGENT_SCHED_IDLE    ? SCHED_IDLE
	    : a->a_ckpt_sched == AGENT_SCHED_BATCH          ? SCHED_BATCH
	                                                    : SCHED_OTHER;

	if (policy != SCHED_OTHER && sched_setscheduler(tid, policy, &sp) != 0)
		LOG_WARN("cannot set the checkpoint thread's CPU policy to %s: %s",
		    policy == SCHED_IDLE ? "SCHED_IDLE" : "SCHED_BATCH", err_str(-errno));
	/* SCHED_IDLE ignores nice; the others run below the agent's other threads. */
	if (policy != SCHED_IDLE &&
	    setpriority(PRIO_PROCESS, (id_t)tid, AGENT_CKPT_NICE) != 0)
		LOG_DEBUG("cannot lower the checkpoint thread's priority: %s", err_str(-errno));
}

void *
ckpt_main(void *arg)
{
	struct agent *a = arg;
	unsigned probe_ms = a->a_interval_ms / 2;
	struct ckpt_due *due = NULL;
	size_t ndue = 0;
	uint64_t next;

	if (probe_ms > AGENT_PROBE_MAX_MS)
		probe_ms = AGENT_PROBE_MAX_MS;
	if (probe_ms < AGENT_PROBE_MIN_MS)
		probe_ms = AGENT_PROBE_MIN_MS;
	/*
	 * Copying and hashing large states runs below the other threads'
	 * priority, so the manager link is never starved of CPU by it.
	 */
	ckpt_set_sched(a);
	if (!agent_wait_first_attach(a, 0, NULL))
		return NULL;
	next = util_now_mono_ms();
	while (!agent_stopping(a)) {
		comp_name *names = NULL;
		size_t n = 0;
		uint64_t now;

		next += a->a_interval_ms;
		decl_start_fresh(a);
		/* What waits goes first, once the NAS answers again. */
		if (!queue_empty(a->a_queue) &&
		    (!ckpt_nas_down(a) || ckpt_nas_probe(a, probe_ms)))
			ckpt_queue_flush(a, AGENT_STORE_TIMEOUT_MS);
		/*
		 * Nothing waits (a checkpoint larger than the whole queue is
		 * dropped at once) but the NAS was down: probe it too, or every
		 * later checkpoint would be queued, and dropped, for ever.
		 */
		else if (queue_empty(a->a_queue) && ckpt_nas_down(a) && ckpt_nas_probe(a, probe_ms))
			ckpt_set_nas_down(a, false, NULL);
		if (comp_running_names(a->a_comps, &names, &n) == 0) {
			for (size_t i = 0; i < n && !agent_stopping(a); i++) {
				struct rpc_error err;
				if (!ckpt_is_due(a, &due, &ndue, names[i], util_now_mono_ms()))
					continue;
				/* -ENOENT: stopped or moved meanwhile; -EAGAIN: nothing new. */
				(void)ckpt_take(a, names[i], false, true, AGENT_STORE_TIMEOUT_MS,
				    NULL, NULL, &err);
			}
			free(names);
		}
		now = util_now_mono_ms();
		if (next < now)
			next = now;
		if (ckpt_sleep(a, next))
			break;
	}
	free(due);
	return NULL;
}

/*
 * link: the manager link. Attach (announcing the URL, labels, capacity and
 * running components), then heartbeat every heartbeat_ms; heartbeats failing
 * for down-after, or a manager that no longer knows the node, lead to attach
 * again, with exponential back-off and jitter.
 */

#include "agent_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/manager.pb-c.h"
#include "err.h"
#include "key.h"
#include "log.h"
#include "methods.h"
#include "util.h"

/* Capacity now, or as last read when /proc fails. Link thread only. */
static void
link_capacity(struct agent *a, Ckpt__V1__Capacity *cap)
{
	struct sysinfo_cap now;
	int rv = sysinfo_read(&now);

	if (rv == 0)
		a->a_cap = now;
	else
		LOG_DEBUG("cannot read capacity from /proc: %s", err_str(rv));
	ckpt__v1__capacity__init(cap);
	cap->mem_free_bytes = a->a_cap.sc_mem_free;
	cap->mem_total_bytes = a->a_cap.sc_mem_total;
	cap->cpu_count = a->a_cap.sc_cpus;
	cap->cpu_load_milli = a->a_cap.sc_load_milli;
}

static int
link_attach(struct agent *a, struct arena *arena, struct rpc_error *err)
{
	Ckpt__V1__AttachRequest req = CKPT__V1__ATTACH_REQUEST__INIT;
	Ckpt__V1__AttachReply *rep = NULL;
	Ckpt__V1__Capacity cap;
	Ckpt__V1__Label *labels, **lptrs;
	char nas_list[NASC_URLS_MAX * (LIMIT_URL_MAX + 1)];
	unsigned hb, reattach;
	size_t off = 0;
	int rv;

	req.node = a->a_node;
	req.instance = a->a_instance;
	req.address = (char *)(a->a_advertise != NULL ? a->a_advertise : rpc_server_url(a->a_server));
	link_capacity(a, &cap);
	req.capacity = &cap;
	labels = arena_alloc(arena, (a->a_nlabels + 1) * sizeof(*labels));
	lptrs = arena_alloc(arena, (a->a_nlabels + 1) * sizeof(*lptrs));
	if (labels == NULL || lptrs == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < a->a_nlabels; i++) {
		ckpt__v1__label__init(&labels[i]);
		labels[i].key = (char *)a->a_labels[i].al_key;
		labels[i].value = (char *)a->a_labels[i].al_value;
		lptrs[i] = &labels[i];
	}
	req.labels = lptrs;
	req.n_labels = a->a_nlabels;
	rv = comp_status_all(a->a_comps, arena, true, &req.components, &req.n_components);
	if (rv == 0)
		rv = decl_status(a, arena, &req.declared, &req.n_declared);
	if (rv != 0)
		return rv;
	rv = rpc_client_call(a->a_mgr, MGR_ATTACH, &req.base, AGENT_CONTROL_TIMEOUT_MS,
	    (ProtobufCMessage **)&rep, err);
	if (rv != 0)
		return rv;
	if (rep->n_nas == 0 || rep->n_nas > NASC_URLS_MAX) {
		rv = -EPROTO;
		agent_set_error(err, rv, "%s: Attach reply lists %zu NAS addresses (want 1 to %d)",
		    a->a_manager, rep->n_nas, NASC_URLS_MAX);
		goto out;
	}
	for (size_t i = 0; i < rep->n_nas; i++) {
		size_t len = strlen(rep->nas[i]);
		if (len == 0 || len >= LIMIT_URL_MAX) {
			rv = -EPROTO;
			agent_set_error(err, rv, "%s: Attach reply has a NAS address of %zu bytes",
			    a->a_manager, len);
			goto out;
		}
		off += (size_t)snprintf(nas_list + off, sizeof(nas_list) - off, "%s%s",
		    i > 0 ? "," : "", rep->nas[i]);
	}
	rv = nasref_update(a, rep->nas, rep->n_nas, err);
	if (rv != 0)
		goto out;
	hb = rep->heartbeat_ms != 0 ? rep->heartbeat_ms : AGENT_HEARTBEAT_DEFAULT_MS;
	if (hb < AGENT_INTERVAL_MIN_MS)
		hb = AGENT_INTERVAL_MIN_MS;
	if (hb > AGENT_HEARTBEAT_MAX_MS)
		hb = AGENT_HEARTBEAT_MAX_MS;
	reattach = rep->down_after_ms != 0 ? rep->down_after_ms : AGENT_REATTACH_DEFAULT_MS;
	if (reattach < 3 * hb)
		reattach = 3 * hb;
	/* Before the checkpoint loop may start: nothing revoked gets stored. */
	fence_revoked(a, rep->revoked, rep->n_revoked);
	pthread_mutex_lock(&a->a_mu);
	a->a_heartbeat_ms = hb;
	a->a_reattach_ms = reattach;
	if (a->a_attaches++ == 0)
		a->a_first_attach_ms = util_now_mono_ms();
	pthread_cond_broadcast(&a->a_cv);
	pthread_mutex_unlock(&a->a_mu);
	LOG_INFO("attached to manager %s as %s (instance %016" PRIx64 "); NAS %s", a->a_manager,
	    a->a_node, a->a_instance, nas_list);
out:
	rpc_reply_free(&rep->base);
	return rv;
}

static int
link_heartbeat(struct agent *a, struct arena *arena, bool *ret_reattach, struct rpc_error *err)
{
	Ckpt__V1__HeartbeatRequest req = CKPT__V1__HEARTBEAT_REQUEST__INIT;
	Ckpt__V1__HeartbeatReply *rep = NULL;
	Ckpt__V1__Capacity cap;
	int rv;

	struct queue_stats qs;

	req.node = a->a_node;
	req.instance = a->a_instance;
	link_capacity(a, &cap);
	req.capacity = &cap;
	queue_get_stats(a->a_queue, &qs);
	req.queued = qs.qs_items;
	req.queue_dropped = qs.qs_dropped;
	rv = comp_status_all(a->a_comps, arena, true, &req.components, &req.n_components);
	if (rv != 0)
		return rv;
	rv = rpc_client_call(a->a_mgr, MGR_HEARTBEAT, &req.base, AGENT_CONTROL_TIMEOUT_MS,
	    (ProtobufCMessage **)&rep, err);
	if (rv != 0)
		return rv;
	*ret_reattach = rep->reattach;
	if (!rep->reattach) {
		fence_revoked(a, rep->revoked, rep->n_revoked);
		decl_notes(a, rep->start_fresh, rep->n_start_fresh, rep->running_elsewhere,
		    rep->n_running_elsewhere);
	}
	rpc_reply_free(&rep->base);
	return 0;
}

/*
 * What link_up() reads: attached, when the manager last answered, and
 * whether the link went down because the manager asked for an attach.
 */
static void
link_set_linked(struct agent *a, bool linked, uint64_t last_ok_ms, bool asked)
{
	pthread_mutex_lock(&a->a_mu);
	a->a_linked = linked;
	a->a_link_ok_ms = last_ok_ms;
	a->a_link_asked = asked;
	pthread_mutex_unlock(&a->a_mu);
}

/*
 * Computed when read, not when a heartbeat returns: a manager that stopped
 * answering (SIGSTOP, a partition) leaves the heartbeat waiting for its
 * deadline (AGENT_CONTROL_TIMEOUT_MS), longer than the lease.
 */
bool
link_up_why(struct agent *a, char *why, size_t len)
{
	uint64_t now = util_now_mono_ms(), quiet;
	bool up;

	pthread_mutex_lock(&a->a_mu);
	/*
	 * The link thread may have read the clock after this thread and
	 * stored its answer before this thread took the lock: an answer
	 * after now is no time at all, not 2^64 ms ago.
	 */
	quiet = now > a->a_link_ok_ms ? now - a->a_link_ok_ms : 0;
	up = a->a_linked && quiet < a->a_reattach_ms;
	if (!up && why != NULL) {
		if (a->a_attaches == 0)
			snprintf(why, len, "not attached to the manager %s yet", a->a_manager);
		else if (a->a_link_asked)
			snprintf(why, len, "not attached to the manager %s: it no longer knew node "
			    "%s (%" PRIu64 " ms ago); attaching again", a->a_manager, a->a_node,
			    quiet);
		else
			snprintf(why, len, "not attached to the manager %s: no heartbeat answered "
			    "for %" PRIu64 " ms (the lease, its down-after: %u ms)%s", a->a_manager,
			    quiet, a->a_reattach_ms, a->a_linked ? "" : "; attaching again");
	}
	pthread_mutex_unlock(&a->a_mu);
	return up;
}

bool
link_up(struct agent *a)
{
	return link_up_why(a, NULL, 0);
}

void
link_wake(struct agent *a)
{
	pthread_mutex_lock(&a->a_mu);
	a->a_link_wake = true;
	pthread_cond_broadcast(&a->a_cv);
	pthread_mutex_unlock(&a->a_mu);
}

/* Sleeps ms, less when link_wake() is called; true when the agent stops. */
static bool
link_sleep(struct agent *a, unsigned ms)
{
	struct timespec ts;
	bool stopping;

	agent_deadline(&ts, util_now_mono_ms() + ms);
	pthread_mutex_lock(&a->a_mu);
	while (!a->a_stopping && !a->a_link_wake &&
	    pthread_cond_timedwait(&a->a_cv, &a->a_mu, &ts) != ETIMEDOUT) {
	}
	a->a_link_wake = false;
	stopping = a->a_stopping;
	pthread_mutex_unlock(&a->a_mu);
	return stopping;
}

void *
link_main(void *arg)
{
	struct agent *a = arg;
	struct arena *arena = a->a_link_arena;
	uint64_t seed = util_now_mono_ms() ^ (uint64_t)(uintptr_t)a ^ 0x9e3779b97f4a7c15ull;
	uint64_t last_ok = 0, last_warn = 0;
	unsigned backoff = AGENT_BACKOFF_MIN_MS;
	bool attached = false, failing = false;

	while (!agent_stopping(a)) {
		struct rpc_error err = { 0 };
		unsigned hb, reattach_ms;
		bool reattach = false;
		uint64_t now;
		int rv;

		if (!attached) {
			rv = link_attach(a, arena, &err);
			arena_reset(arena);
			now = util_now_mono_ms();
			if (rv == 0) {
				attached = true;
				failing = false;
				backoff = AGENT_BACKOFF_MIN_MS;
				last_ok = now;
				last_warn = 0;
				link_set_linked(a, true, last_ok, false);
				continue;
			}
			if (agent_stopping(a))
				break;
			if (rv == -EEXIST) {
				/* Another live agent holds this node id: retrying cannot help. */
				agent_fail(a, "cannot attach: %s",
				    err.re_msg[0] != '\0' ? err.re_msg : err_str(rv));
				break;
			}
			if (last_warn == 0 || now - last_warn >= AGENT_WARN_EVERY_MS) {
				LOG_WARN("cannot attach to manager %s: %s; retrying", a->a_manager,
				    err.re_msg[0] != '\0' ? err.re_msg : err_str(rv));
				last_warn = now;
			}
			if (agent_sleep(a, agent_jitter(backoff, &seed)))
				break;
			backoff = backoff * 2 < AGENT_BACKOFF_MAX_MS ? backoff * 2 : AGENT_BACKOFF_MAX_MS;
			continue;
		}
		pthread_mutex_lock(&a->a_mu);
		hb = a->a_heartbeat_ms;
		reattach_ms = a->a_reattach_ms;
		pthread_mutex_unlock(&a->a_mu);
		if (link_sleep(a, hb))
			break;
		rv = link_heartbeat(a, arena, &reattach, &err);
		arena_reset(arena);
		now = util_now_mono_ms();
		if (rv == 0 && !reattach) {
			if (failing)
				LOG_INFO("heartbeats to manager %s answered again", a->a_manager);
			failing = false;
			last_ok = now;
			link_set_linked(a, true, last_ok, false);
		} else if (rv == 0 || rv == -ENOENT || rv == -ESTALE) {
			LOG_INFO("manager %s does not know node %s: attaching again", a->a_manager,
			    a->a_node);
			attached = false;
			link_set_linked(a, false, last_ok, true);
		} else if (!agent_stopping(a)) {
			if (!failing)
				LOG_WARN("heartbeat to manager failed: %s", err.re_msg);
			failing = true;
			if (now - last_ok >= reattach_ms) {
				LOG_WARN("no heartbeat answered for %" PRIu64 " ms: attaching again",
				    now - last_ok);
				attached = false;
				link_set_linked(a, false, last_ok, false);
			}
		}
	}
	link_set_linked(a, false, last_ok, false);
	return NULL;
}

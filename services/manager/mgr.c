#include "mgr.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "ckpt/v1/agent.pb-c.h"
#include "ckpt/v1/manager.pb-c.h"
#include "ckpt/v1/nas.pb-c.h"
#include "err.h"
#include "methods.h"
#include "event.h"
#include "log.h"
#include "mevent.h"
#include "migrate.h"
#include "mmet.h"
#include "nasc.h"
#include "registry.h"
#include "rpc.h"
#include "url.h"
#include "util.h"
#include "wire.h"

#ifndef CKPT_VERSION
#define CKPT_VERSION MGR_VERSION_DEFAULT
#endif

#define MGR_DOWN_BATCH 32
#define MGR_FAILOVER_BATCH 32
#define MGR_FAILOVER_BUDGET_MS 30000u  /* one failover: NAS look-up, probe, restore */
#define MGR_FAILOVER_WAIT_MS 5000u     /* no node can take it: try again this often (default) */
#define MGR_FAILOVER_BACKOFF_MIN_MS 500u
#define MGR_FAILOVER_BACKOFF_MAX_MS 30000u
#define MGR_STORE_CHECK_MS 2000u       /* at start: each NAS's Stat (its store id) */
#define MGR_FAILOVER_IDLE_MS 1000u     /* the worker looks for due work at least this often */
#define MGR_ATTACH_PROBE_MS 500u       /* is the agent holding a claimed node id there? */
#define MGR_SEED_RETRY_MIN_MS 100u     /* the NAS did not list at start: ask again after */
#define MGR_SEED_RETRY_MAX_MS 5000u
#define MGR_SEED_WARN_EVERY_MS 30000u
#define MGR_REATTACH_GRACE_MS 3000u    /* after a start, beyond down-after, for nodes to re-attach */

struct mgr {
	struct mgr_config m_cfg;
	struct tls_conf m_tls;     /* *mc_tls with our hook; m_cfg.mc_tls points here */
	char **m_nas;              /* copies of the NAS URLs */
	struct reg *m_reg;
	struct nasc *m_nasc;
	struct event_pub *m_pub;
	/* Refused TLS handshakes on m_pub's listener, read by the monitor (tls.h). */
	struct tls_watch m_ev_watch;
	uint64_t m_ev_polled_ms;
	struct metrics_fam *m_m_ev_tls;
	struct metrics_fam *m_m_srv_refused; /* --http with TLS: ckpt_auth_server_refused_total */
	uint64_t m_over_log_last, m_over_log_held; /* heartbeats over the cap (limit_log_ok()) */
	struct rpc_server *m_server;
	pthread_t m_monitor;
	bool m_monitor_started;
	pthread_t m_failover;
	bool m_failover_started;
	pthread_mutex_t m_lock;    /* m_stopping, m_fo_kicked */
	pthread_cond_t m_cond;     /* the monitor's: stop */
	pthread_cond_t m_fo_cond;  /* the failover worker's: stop or work */
	pthread_cond_t m_seed_cond; /* the seeder's: stop */
	pthread_t m_seeder;
	bool m_seeder_started;
	bool m_stopping;
	bool m_fo_kicked;
	uint64_t m_seed;           /* jitter of failover retries, under m_lock */
	uint64_t m_started_ms;     /* monotonic */
	struct mmet *m_mmet;       /* --http: metrics and readiness; NULL without */
	struct limit_log m_limit_log;
};

static void
mgr_failover_kick(struct mgr *m)
{
	pthread_mutex_lock(&m->m_lock);
	m->m_fo_kicked = true;
	pthread_cond_signal(&m->m_fo_cond);
	pthread_mutex_unlock(&m->m_lock);
}

/* A place freed while a failover waited for room (registry.h, Room): try it now. */
static void
mgr_on_room(void *arg)
{
	mgr_failover_kick(arg);
}

/* Copies up to n names into a reply's repeated string field. */
static int
mgr_names_to_pb(struct arena *a, char (*names)[KEY_NAME_MAX + 1], size_t n, char ***ret_list,
    size_t *ret_n)
{
	char **list;

	if (n == 0)
		return 0;
	list = arena_alloc(a, n * sizeof(*list));
	if (list == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		list[i] = arena_strdup(a, names[i]);
		if (list[i] == NULL)
			return -ENOMEM;
	}
	*ret_list = list;
	*ret_n = n;
	return 0;
}

static void
mgr_log_revoked(const char *node, char (*names)[KEY_NAME_MAX + 1], size_t n)
{
	for (size_t i = 0; i < n; i++)
		LOG_WARN("node %s runs %s, which it does not own (another node owns it with a "
			 "newer epoch, or it was deleted there): told it to stop",
		    node, names[i]);
}

/* ---- checks ---- */

static int
mgr_check_name(struct rpc_call *call, const char *what, const char *s)
{
	if (key_name_check(s) == 0)
		return 0;
	rpc_call_errorf(call, "invalid %s '%.64s' (1 to %d of [A-Za-z0-9._-])", what, s,
	    KEY_NAME_MAX);
	return -EINVAL;
}

/* Empty is allowed (no filter / no target). */
static int
mgr_check_opt_name(struct rpc_call *call, const char *what, const char *s)
{
	return s[0] == '\0' ? 0 : mgr_check_name(call, what, s);
}

static int
mgr_check_address(struct rpc_call *call, const char *s)
{
	if (s[0] == '\0' || wire_text_check(s, LIMIT_URL_MAX - 1) != 0 || strstr(s, "://") == NULL) {
		rpc_call_errorf(call, "invalid address '%.64s' (a URL such as tcp://host:port, "
				      "shorter than %d characters)",
		    s, LIMIT_URL_MAX);
		return -EINVAL;
	}
	return 0;
}

/*
 * The address to dial the agent at: the one it announced, or, when that
 * says "every interface" (tcp://0.0.0.0:7431), the same with the address
 * its connection came from. *ret_addr is from the call's arena.
 */
static int
mgr_dial_address(struct rpc_call *call, const char *node, const char *announced,
    const char **ret_addr)
{
	char addr[LIMIT_URL_MAX];
	nng_sockaddr sa;
	int rv;

	if (!url_host_is_wildcard(announced)) {
		*ret_addr = announced;
		return 0;
	}
	rv = err_from_nng(nng_pipe_get_addr(rpc_call_pipe(call), NNG_OPT_REMADDR, &sa));
	if (rv == 0)
		rv = url_with_peer(announced, &sa, addr, sizeof(addr));
	if (rv != 0) {
		rpc_call_errorf(call, "node %s announces %.64s, which names no host, and the address "
				      "its connection comes from cannot stand in for it (%s): start the "
				      "agent with --advertise URL",
		    node, announced, err_str(rv));
		return -EINVAL;
	}
	*ret_addr = arena_strdup(rpc_call_arena(call), addr);
	return *ret_addr != NULL ? 0 : -ENOMEM;
}

/* A report over --max-node-components that was taken (see mgr_comps_from_pb()). */
static void
mgr_log_over(struct mgr *m, const char *node, size_t n)
{
	uint64_t held;

	if (n > m->m_cfg.mc_max_node_comps && limit_log_ok(&m->m_over_log_last,
	    &m->m_over_log_held, util_now_mono_ms(), LIMIT_LOG_INTERVAL_MS, &held))
		LOG_WARN("node %s runs %zu components, over --max-node-components %u: its reports "
			 "are taken, nothing more is placed there (%" PRIu64 " such reports not "
			 "logged since the last line)",
		    node, n, m->m_cfg.mc_max_node_comps, held);
}

/* A node's list over --max-node-components: refused RESOURCE_EXHAUSTED. */
static int
mgr_comps_over(struct rpc_call *call, const char *node, size_t n, unsigned limit)
{
	return rpc_call_limitf(call, LIMIT_N_COMPONENTS, "node %s reports %zu components, over "
	    "the limit %s of %u per node", node, n, LIMIT_N_COMPONENTS, limit);
}

/*
 * Converts a node's component list; names must be unique within it. The
 * components a node declares (declared true) are refused over
 * --max-node-components; those it runs only past LIMIT_NODE_COMPONENTS_MAX
 * here. An attach that would take a node over the cap is refused by the
 * registry (reg_attach() -EDQUOT), which knows the reports that are stale
 * and what the node was taken with before (listed for it, or, for a manager
 * started again, last stored by it). A heartbeat is never refused for
 * it: a node may still report more than the cap (placement counts the moves
 * on their way there, registry.h "Placement counts", and an attach resumes
 * only what fits, but what an agent reports is what it runs), and refusing
 * its heartbeats would mark a live node down and move everything it runs.
 * It is logged (mgr_log_over(), at most every LIMIT_LOG_INTERVAL_MS), and
 * placement puts nothing more there until it is back under.
 */
static int
mgr_comps_from_pb(struct mgr *m, struct rpc_call *call, const char *node,
    Ckpt__V1__ComponentStatus *const *pb, size_t n, bool declared, struct reg_comp **ret_comps)
{
	unsigned max = m->m_cfg.mc_max_node_comps;
	struct reg_comp *comps = NULL;
	char why[WIRE_ERR_MAX];

	if (n > (declared ? max : LIMIT_NODE_COMPONENTS_MAX))
		return mgr_comps_over(call, node, n, declared ? max : LIMIT_NODE_COMPONENTS_MAX);
	if (n > 0) {
		comps = arena_alloc(rpc_call_arena(call), n * sizeof(*comps));
		if (comps == NULL)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (pb[i] == NULL || wire_comp_from_pb(pb[i], &comps[i], why, sizeof(why)) != 0) {
			rpc_call_errorf(call, "node %s: %s", node,
			    pb[i] == NULL ? "empty component entry" : why);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(comps[j].rc_name, comps[i].rc_name) == 0) {
				rpc_call_errorf(call, "node %s: component %s listed twice", node,
				    comps[i].rc_name);
				return -EINVAL;
			}
		}
	}
	*ret_comps = comps;
	return 0;
}

/* A migration's result in a MigrateReply (Migrate's own, or one of Drain's). */
static int
mgr_result_fill(struct arena *a, const struct mig_result *res, Ckpt__V1__MigrateReply *pb)
{
	pb->source = arena_strdup(a, res->mr_source);
	pb->target = arena_strdup(a, res->mr_target);
	pb->restored_from = wire_ref_to_pb(a, &res->mr_from);
	pb->epoch = res->mr_epoch;
	if (res->mr_has_state_sha) {
		pb->state_sha256.data = arena_memdup(a, res->mr_state_sha256, SHA_LEN);
		if (pb->state_sha256.data == NULL)
			return -ENOMEM;
		pb->state_sha256.len = SHA_LEN;
	}
	return pb->source != NULL && pb->target != NULL && pb->restored_from != NULL ? 0 : -ENOMEM;
}

/*
 * A server we dialled (the NAS, an agent) did not prove the identity we
 * expect (auth.proto 1b): counted, logged once per connection; the call
 * fails. Called on the client's threads, possibly before --http's metrics
 * exist (none are counted then).
 */
static void
mgr_on_server_refused(void *arg, const char *line, bool first)
{
	struct mgr *m = arg;
	struct metrics_fam *f = __atomic_load_n(&m->m_m_srv_refused, __ATOMIC_ACQUIRE);

	if (f != NULL)
		metrics_inc(f, 1, NULL, 0);
	if (first)
		LOG_WARN("refused server: %s (further refusals on this connection are counted in "
			 "ckpt_auth_server_refused_total, not logged)",
		    line);
}

/* What a migration works with (migrate.h). */
static struct mig_env
mgr_mig_env(struct mgr *m)
{
	struct mig_env env = { .me_reg = m->m_reg, .me_nasc = m->m_nasc, .me_pub = m->m_pub,
		.me_met = m->m_mmet, .me_max_node_comps = m->m_cfg.mc_max_node_comps };
	return env;
}

/*
 * Whether an attach of node by instance may take the node from the agent
 * that holds it (see mgr.h, "Node identity"). 0 with *ret_replaces the
 * holder's instance when it may (0: nothing to replace), -EEXIST with the
 * reason set on call when a live agent holds it.
 */
static int
mgr_attach_claim(struct mgr *m, struct rpc_call *call, const char *node, uint64_t instance,
    const char *addr, uint64_t *ret_replaces)
{
	Ckpt__V1__StatusRequest sreq = CKPT__V1__STATUS_REQUEST__INIT;
	Ckpt__V1__StatusReply *srep = NULL;
	struct reg_holder h;
	struct reg_peer *peer = NULL;
	struct rpc_error rerr = { 0 };
	char why[RPC_ERRMSG_MAX];
	int rv;

	*ret_replaces = 0;
	if (reg_holder(m->m_reg, node, &h) != 0 || !h.rh_up || h.rh_instance == 0 ||
	    h.rh_instance == instance)
		return 0;
	/* Another process claims an up node: is the holder still there, as itself? */
	rv = reg_peer_get(m->m_reg, node, &peer);
	if (rv == 0)
		rv = rpc_client_call(reg_peer_client(peer), AGENT_STATUS, &sreq.base,
		    MGR_ATTACH_PROBE_MS, (ProtobufCMessage **)&srep, &rerr);
	reg_peer_put(peer);
	if (rv == 0 && srep->instance == h.rh_instance) {
		rpc_reply_free(&srep->base);
		rpc_call_errorf(call, "node %s is held by a live agent at %s (instance %016" PRIx64
				      ", answering): stop it first, or give this agent another --node",
		    node, h.rh_address, h.rh_instance);
		LOG_WARN("attach of node %s from %s (instance %016" PRIx64 ") refused: the agent at "
			 "%s (instance %016" PRIx64 ") holds it and answers",
		    node, addr, instance, h.rh_address, h.rh_instance);
		return -EEXIST;
	}
	if (rv == 0) {
		snprintf(why, sizeof(why), "instance %016" PRIx64 " answers there", srep->instance);
		rpc_reply_free(&srep->base);
	} else if (rerr.re_code == CKPT__V1__CODE__UNAVAILABLE ||
	    rerr.re_code == CKPT__V1__CODE__DEADLINE_EXCEEDED || rv == -ENOTCONN) {
		snprintf(why, sizeof(why), "it does not answer: %s",
		    rerr.re_msg[0] != '\0' ? rerr.re_msg : err_str(rv));
	} else {
		/* It answered, but not as an agent we can identify: do not take the node. */
		rpc_call_errorf(call, "node %s is held by the agent at %s (instance %016" PRIx64
				      "), which answers: %s",
		    node, h.rh_address, h.rh_instance, rerr.re_msg);
		LOG_WARN("attach of node %s from %s (instance %016" PRIx64 ") refused: the agent at "
			 "%s answers: %s",
		    node, addr, instance, h.rh_address, rerr.re_msg);
		return -EEXIST;
	}
	LOG_INFO("instance %016" PRIx64 " from %s takes over node %s: instance %016" PRIx64
		 " at %s is gone (%s)",
	    instance, addr, node, h.rh_instance, h.rh_address, why);
	*ret_replaces = h.rh_instance;
	return 0;
}

/* ---- handlers ---- */

/*
 * With authentication on, a node acts only as itself (auth.proto roles):
 * 0, or the call refused. Other roles pass (the role table decides).
 */
static int
mgr_act_as(struct rpc_call *call, const char *node, const char *what)
{
	const struct auth_id *peer = rpc_call_peer(call);

	if (peer == NULL || peer->ai_role != AUTH_ROLE_NODE || strcmp(peer->ai_node, node) == 0)
		return 0;
	return rpc_call_forbid(call, "node %s may %s only as itself, not as %.64s", peer->ai_node,
	    what, node);
}

/* A node may ask to move only a component it runs (as in the seed scenario). */
static int
mgr_may_move(struct mgr *m, struct rpc_call *call, const char *component)
{
	const struct auth_id *peer = rpc_call_peer(call);
	char (*names)[KEY_NAME_MAX + 1] = NULL;
	bool owns = false;
	size_t n = 0;

	if (peer == NULL || peer->ai_role != AUTH_ROLE_NODE)
		return 0;
	if (reg_node_owned(m->m_reg, peer->ai_node, &names, &n) == 0) {
		for (size_t i = 0; i < n && !owns; i++)
			owns = strcmp(names[i], component) == 0;
		free(names);
	}
	if (owns)
		return 0;
	return rpc_call_forbid(call, "node %s may migrate only a component it runs, not %.64s",
	    peer->ai_node, component);
}

static int
mgr_attach(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm,
    ProtobufCMessage *replym)
{
	struct mgr *m = arg;
	const Ckpt__V1__AttachRequest *req = (const Ckpt__V1__AttachRequest *)reqm;
	Ckpt__V1__AttachReply *rep = (Ckpt__V1__AttachReply *)replym;
	struct arena *a = rpc_call_arena(call);
	struct reg_attach at = { 0 };
	struct reg_label *labels = NULL;
	struct reg_comp *comps = NULL, *declared = NULL;
	struct rpc_client *client = NULL, *to_close = NULL;
	struct rpc_error rerr;
	struct reg_holder holder;
	char why[WIRE_ERR_MAX];
	char (*revoked)[KEY_NAME_MAX + 1] = NULL;
	const char *addr = NULL;
	char ident[AUTH_ID_MAX];
	size_t nrevoked = 0, nresumed = 0, nover = 0;
	int rv;

	rv = mgr_check_name(call, "node id", req->node);
	if (rv == 0)
		rv = mgr_act_as(call, req->node, "attach");
	if (rv == 0)
		rv = mgr_check_address(call, req->address);
	if (rv == 0)
		rv = mgr_dial_address(call, req->node, req->address, &addr);
	if (rv != 0)
		return rv;
	if (req->n_labels > LIMIT_LABELS_MAX) {
		rpc_call_errorf(call, "node %s has %zu labels, at most %d", req->node, req->n_labels,
		    LIMIT_LABELS_MAX);
		return -EINVAL;
	}
	if (req->n_labels > 0) {
		labels = arena_alloc(a, req->n_labels * sizeof(*labels));
		if (labels == NULL)
			return -ENOMEM;
	}
	for (size_t i = 0; i < req->n_labels; i++) {
		if (req->labels[i] == NULL ||
		    wire_label_from_pb(req->labels[i], &labels[i], why, sizeof(why)) != 0) {
			rpc_call_errorf(call, "node %s: %s", req->node,
			    req->labels[i] == NULL ? "empty label" : why);
			return -EINVAL;
		}
	}
	rv = mgr_comps_from_pb(m, call, req->node, req->components, req->n_components, false,
	    &comps);
	if (rv == 0)
		rv = mgr_attach_claim(m, call, req->node, req->instance, addr, &at.ra_replaces);
	if (rv == 0)
		rv = mgr_comps_from_pb(m, call, req->node, req->declared, req->n_declared, true,
		    &declared);
	if (rv != 0)
		return rv;

	/*
	 * A client towards the agent, unless the one we have already goes there
	 * and to this process: an agent started again (another instance) at
	 * the same address gets a new one, which dials at once, where the old
	 * one may still wait out its redial back-off (up to 2 s). It dials once
	 * the registry keeps it (reg_attach()): one it does not keep (refused,
	 * or the node already has one) is closed before it made a connection.
	 */
	if (reg_holder(m->m_reg, req->node, &holder) != 0 ||
	    strcmp(holder.rh_address, addr) != 0 || holder.rh_instance == 0 ||
	    holder.rh_instance != req->instance) {
		rv = rpc_client_open_tls(addr, &ckpt__v1__agent__descriptor, RPC_CLIENT_DIAL_LATER, 0,
		    m->m_cfg.mc_tls, &client, &rerr);
		if (rv != 0) {
			rpc_call_errorf(call, "node %s: %s", req->node, rerr.re_msg);
			return -EINVAL;
		}
		/* With authentication on, the agent at addr must answer as this node. */
		snprintf(ident, sizeof(ident), "node:%s", req->node);
		rpc_client_expect_peer(client, ident);
	}
	at.ra_node = req->node;
	at.ra_address = addr;
	wire_cap_from_pb(req->capacity, &at.ra_cap);
	at.ra_labels = labels;
	at.ra_nlabels = req->n_labels;
	at.ra_comps = comps;
	at.ra_ncomps = req->n_components;
	at.ra_unix_ms = util_now_unix_ms();
	at.ra_instance = req->instance;
	if (req->n_components > 0) {
		revoked = arena_alloc(a, req->n_components * sizeof(*revoked));
		if (revoked == NULL) {
			rpc_client_close(client);
			return -ENOMEM;
		}
	}
	at.ra_revoked = revoked;
	at.ra_nrevoked = &nrevoked;
	at.ra_declared = declared;
	at.ra_ndeclared = req->n_declared;
	at.ra_nresumed = &nresumed;
	at.ra_max_components = m->m_cfg.mc_max_node_comps;
	at.ra_nover = &nover;
	rv = reg_attach(m->m_reg, &at, client, &to_close);
	rpc_client_close(to_close);
	if (rv == -EEXIST) {
		/* Another instance took the node between the probe and now. */
		rpc_call_errorf(call, "node %s is held by a live agent (another instance attached "
				      "meanwhile)", req->node);
		LOG_WARN("attach of node %s from %s (instance %016" PRIx64 ") refused: another "
			 "instance attached meanwhile", req->node, addr, req->instance);
		return rv;
	}
	if (rv == -EDQUOT)
		return mgr_comps_over(call, req->node, req->n_components,
		    m->m_cfg.mc_max_node_comps);
	if (rv == -EUSERS)
		return rpc_call_limitf(call, LIMIT_N_NODES, "cannot register node %s: %u nodes are "
		    "known already (limit %s)", req->node, m->m_cfg.mc_max_nodes, LIMIT_N_NODES);
	if (rv != 0) {
		rpc_call_errorf(call, "cannot register node %s: %s", req->node,
		    rv == -ENOSPC ? "the catalogue is full" : err_str(rv));
		return rv;
	}

	rep->nas = arena_alloc(a, m->m_cfg.mc_nnas * sizeof(*rep->nas));
	if (rep->nas == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < m->m_cfg.mc_nnas; i++) {
		rep->nas[i] = arena_strdup(a, m->m_nas[i]);
		if (rep->nas[i] == NULL)
			return -ENOMEM;
	}
	rep->n_nas = m->m_cfg.mc_nnas;
	rep->heartbeat_ms = m->m_cfg.mc_heartbeat_ms;
	rep->down_after_ms = m->m_cfg.mc_down_after_ms;
	rep->events = arena_strdup(a, event_pub_url(m->m_pub));
	if (rep->events == NULL)
		return -ENOMEM;
	rv = mgr_names_to_pb(a, revoked, nrevoked, &rep->revoked, &rep->n_revoked);
	if (rv != 0)
		return rv;

	if (addr != req->address)
		LOG_INFO("node %s attached from %s, announced as %s (%zu component%s)", req->node,
		    addr, req->address, req->n_components, req->n_components == 1 ? "" : "s");
	else
		LOG_INFO("node %s attached from %s (%zu component%s)", req->node, addr,
		    req->n_components, req->n_components == 1 ? "" : "s");
	if (req->n_declared > 0)
		LOG_INFO("node %s declares %zu component%s it does not run yet: %zu to resume from "
			 "the latest checkpoint or start fresh, the others run elsewhere",
		    req->node, req->n_declared, req->n_declared == 1 ? "" : "s", nresumed);
	if (nover > 0)
		LOG_WARN("node %s declares %zu component%s beyond --max-node-components %u (with "
			 "what it runs): placing %s on other nodes",
		    req->node, nover, nover == 1 ? "" : "s", m->m_cfg.mc_max_node_comps,
		    nover == 1 ? "it" : "them");
	mgr_log_over(m, req->node, req->n_components - nrevoked);
	mgr_log_revoked(req->node, revoked, nrevoked);
	mev_publish(m->m_pub, &(struct mev){ .me_kind = MEV_NODE_UP, .me_node = req->node,
				  .me_message = addr });
	/* Components waiting for a node may fit here. */
	reg_failover_kick(m->m_reg);
	mgr_failover_kick(m);
	return 0;
}

static int
mgr_notify(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm,
    ProtobufCMessage *replym)
{
	struct mgr *m = arg;
	const Ckpt__V1__NotifyRequest *req = (const Ckpt__V1__NotifyRequest *)reqm;
	struct reg_ckpt c;
	char why[WIRE_ERR_MAX], hex[SHA_HEX_LEN + 1], human[UTIL_SIZE_STR_MAX];
	char owner[KEY_NAME_MAX + 1];
	uint64_t owner_epoch = 0;
	bool fenced;
	int rv;

	(void)replym;
	if (req->checkpoint == NULL) {
		rpc_call_errorf(call, "notify without a checkpoint");
		return -EINVAL;
	}
	rv = wire_ckpt_from_pb(req->checkpoint, &c, why, sizeof(why));
	if (rv != 0) {
		rpc_call_errorf(call, "%s", why);
		return rv;
	}
	rv = mgr_act_as(call, c.rk_node, "notify checkpoints");
	if (rv != 0)
		return rv;
	/* Before the catalogue takes its epoch: does it fence the component's live owner? */
	fenced = reg_fence_mark(m->m_reg, &c, owner, &owner_epoch);
	rv = reg_checkpoint(m->m_reg, &c, NULL);
	if (rv != 0) {
		rpc_call_errorf(call, "cannot record checkpoint %s/%s@%llu: %s", c.rk_node,
		    c.rk_component, (unsigned long long)c.rk_seq,
		    rv == -ENOSPC ? "the catalogue is full" : err_str(rv));
		return rv;
	}
	mmet_notified(m->m_mmet, c.rk_component);
	sha_hex(c.rk_sha256, SHA_LEN, hex);
	LOG_INFO("checkpoint stored on NAS: %s/%s@%llu size=%llu (%s) sha256=%s", c.rk_node,
	    c.rk_component, (unsigned long long)c.rk_seq, (unsigned long long)c.rk_size,
	    util_fmt_size(c.rk_size, human), hex);
	mev_publish(m->m_pub, &(struct mev){ .me_kind = MEV_STORED, .me_node = c.rk_node,
				  .me_component = c.rk_component, .me_seq = c.rk_seq,
				  .me_sha256 = c.rk_sha256 });
	if (fenced) {
		char msg[LIMIT_REASON_MAX];

		snprintf(msg, sizeof(msg), "%s on %s (epoch %llu) was fenced by %s/%s@%llu at epoch "
		    "%llu: restoring it from that checkpoint", c.rk_component, owner,
		    (unsigned long long)owner_epoch, c.rk_node, c.rk_component,
		    (unsigned long long)c.rk_seq, (unsigned long long)c.rk_epoch);
		LOG_WARN("%s", msg);
		mev_publish(m->m_pub, &(struct mev){ .me_kind = MEV_FAILOVER_PENDING,
					  .me_node = owner, .me_component = c.rk_component,
					  .me_seq = c.rk_seq, .me_sha256 = c.rk_sha256,
					  .me_message = msg });
		mgr_failover_kick(m);
	}
	return 0;
}

static int
mgr_migrate(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm,
    ProtobufCMessage *replym)
{
	struct mgr *m = arg;
	const Ckpt__V1__MigrateRequest *req = (const Ckpt__V1__MigrateRequest *)reqm;
	Ckpt__V1__MigrateReply *rep = (Ckpt__V1__MigrateReply *)replym;
	struct arena *a = rpc_call_arena(call);
	struct mig_env env = mgr_mig_env(m);
	struct mig_result res;
	char err[MIG_ERR_MAX];
	int rv;

	rv = mgr_check_name(call, "component name", req->component);
	if (rv == 0)
		rv = mgr_check_opt_name(call, "target node", req->target);
	if (rv == 0)
		rv = mgr_may_move(m, call, req->component);
	if (rv != 0)
		return rv;
	err[0] = '\0';
	rv = mig_run(&env, req->component, req->target, rpc_call_remaining_ms(call), &res, err,
	    sizeof(err));
	if (rv != 0) {
		if (err[0] != '\0')
			rpc_call_errorf(call, "%s", err);
		return rv;
	}
	return mgr_result_fill(a, &res, rep);
}

/* Supervision news of a heartbeat (registry.h): events, and a failover for the failed. */
static void
mgr_super_notes(struct mgr *m, const char *node, const struct reg_super_note *notes, size_t n)
{
	bool failed = false;

	for (size_t i = 0; i < n; i++) {
		const struct reg_super_note *sn = &notes[i];
		char msg[LIMIT_REASON_MAX + 64];

		if (sn->rs_failed) {
			LOG_WARN("component %s failed on node %s (%s): placing it on another node",
			    sn->rs_component, node, sn->rs_reason);
			snprintf(msg, sizeof(msg), "failed on node %s after %u restart%s: %s", node,
			    sn->rs_restarts, sn->rs_restarts == 1 ? "" : "s", sn->rs_reason);
			mev_publish(m->m_pub, &(struct mev){ .me_kind = MEV_COMP_FAILED, .me_node = node,
						  .me_component = sn->rs_component, .me_seq = sn->rs_restarts,
						  .me_message = msg });
			failed = true;
			continue;
		}
		LOG_INFO("component %s crashed on node %s (crash %u there, %u restart%s so far)",
		    sn->rs_component, node, sn->rs_crashes, sn->rs_restarts,
		    sn->rs_restarts == 1 ? "" : "s");
		snprintf(msg, sizeof(msg), "crashed on node %s (crash %u there, "
		    "%u restart%s so far; %u since the last heartbeat)", node, sn->rs_crashes,
		    sn->rs_restarts, sn->rs_restarts == 1 ? "" : "s", sn->rs_new);
		mev_publish(m->m_pub, &(struct mev){ .me_kind = MEV_COMP_CRASHED, .me_node = node,
					  .me_component = sn->rs_component, .me_seq = sn->rs_crashes,
					  .me_message = msg });
	}
	if (failed)
		mgr_failover_kick(m);
}

static int
mgr_heartbeat(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm,
    ProtobufCMessage *replym)
{
	struct mgr *m = arg;
	const Ckpt__V1__HeartbeatRequest *req = (const Ckpt__V1__HeartbeatRequest *)reqm;
	Ckpt__V1__HeartbeatReply *rep = (Ckpt__V1__HeartbeatReply *)replym;
	struct reg_beat b = { 0 };
	struct reg_comp *comps = NULL;
	char (*revoked)[KEY_NAME_MAX + 1] = NULL;
	char fresh[REG_BEAT_NOTES_MAX][KEY_NAME_MAX + 1];
	char elsewhere[REG_BEAT_NOTES_MAX][KEY_NAME_MAX + 1];
	struct reg_super_note *notes = NULL;
	size_t nrevoked = 0, nfresh = 0, nelsewhere = 0, nnotes = 0;
	int rv;

	rv = mgr_check_name(call, "node id", req->node);
	if (rv == 0)
		rv = mgr_act_as(call, req->node, "send heartbeats");
	if (rv == 0)
		rv = mgr_comps_from_pb(m, call, req->node, req->components, req->n_components, false,
		    &comps);
	if (rv != 0)
		return rv;
	if (req->n_components > 0) {
		revoked = arena_alloc(rpc_call_arena(call), req->n_components * sizeof(*revoked));
		notes = arena_alloc(rpc_call_arena(call), 2 * req->n_components * sizeof(*notes));
		if (revoked == NULL || notes == NULL)
			return -ENOMEM;
	}
	wire_cap_from_pb(req->capacity, &b.rb_cap);
	b.rb_comps = comps;
	b.rb_ncomps = req->n_components;
	b.rb_queued = req->queued;
	b.rb_queue_dropped = req->queue_dropped;
	b.rb_instance = req->instance;
	b.rb_revoked = revoked;
	b.rb_nrevoked = &nrevoked;
	b.rb_fresh = fresh;
	b.rb_nfresh = &nfresh;
	b.rb_elsewhere = elsewhere;
	b.rb_nelsewhere = &nelsewhere;
	b.rb_super = notes;
	b.rb_nsuper = &nnotes;
	rv = reg_beat(m->m_reg, req->node, &b);
	if (rv == -EXDEV) {
		LOG_WARN("heartbeat of node %s from instance %016" PRIx64 ", which no longer holds it: "
			 "asked it to attach again", req->node, req->instance);
		rep->reattach = 1;
		return 0;
	}
	if (rv == -ENOENT || rv == -ESTALE) {
		LOG_INFO("heartbeat from %s node %s: asked it to attach again",
		    rv == -ENOENT ? "unknown" : "down", req->node);
		rep->reattach = 1;
		return 0;
	}
	if (rv != 0) {
		rpc_call_errorf(call, "heartbeat of node %s: %s", req->node,
		    rv == -ENOSPC ? "too many components in the cluster" : err_str(rv));
		return rv;
	}
	mgr_log_over(m, req->node, req->n_components - nrevoked);
	mgr_log_revoked(req->node, revoked, nrevoked);
	mgr_super_notes(m, req->node, notes, nnotes);
	for (size_t i = 0; i < nelsewhere; i++)
		LOG_INFO("node %s declares %s, which another node runs: told it not to start it",
		    req->node, elsewhere[i]);
	rv = mgr_names_to_pb(rpc_call_arena(call), revoked, nrevoked, &rep->revoked,
	    &rep->n_revoked);
	if (rv == 0)
		rv = mgr_names_to_pb(rpc_call_arena(call), fresh, nfresh, &rep->start_fresh,
		    &rep->n_start_fresh);
	if (rv == 0)
		rv = mgr_names_to_pb(rpc_call_arena(call), elsewhere, nelsewhere,
		    &rep->running_elsewhere, &rep->n_running_elsewhere);
	return rv;
}

static Ckpt__V1__PendingComponent *
mgr_pending_to_pb(struct arena *a, const struct reg_pending *p)
{
	Ckpt__V1__PendingComponent *pb = arena_alloc(a, sizeof(*pb));

	if (pb == NULL)
		return NULL;
	ckpt__v1__pending_component__init(pb);
	pb->component = arena_strdup(a, p->rp_component);
	pb->reason = arena_strdup(a, p->rp_reason);
	pb->since_unix_ms = p->rp_since_unix_ms;
	pb->attempts = p->rp_attempts;
	return pb->component != NULL && pb->reason != NULL ? pb : NULL;
}

static Ckpt__V1__NodeInfo *
mgr_node_to_pb(struct arena *a, const struct reg_node_view *v)
{
	Ckpt__V1__NodeInfo *pb = arena_alloc(a, sizeof(*pb));

	if (pb == NULL)
		return NULL;
	ckpt__v1__node_info__init(pb);
	pb->id = arena_strdup(a, v->rn_id);
	pb->state = arena_strdup(a, v->rn_up ? "up" : "down");
	pb->address = arena_strdup(a, v->rn_address);
	pb->capacity = wire_cap_to_pb(a, &v->rn_cap);
	pb->last_seen_ms_ago = v->rn_last_seen_ms_ago;
	pb->attached_unix_ms = v->rn_attached_unix_ms;
	pb->cordoned = v->rn_cordoned;
	pb->queued = v->rn_queued;
	pb->queue_dropped = v->rn_queue_dropped;
	if (v->rn_npending > 0) {
		pb->pending = arena_alloc(a, v->rn_npending * sizeof(*pb->pending));
		if (pb->pending == NULL)
			return NULL;
		for (size_t i = 0; i < v->rn_npending; i++) {
			pb->pending[i] = mgr_pending_to_pb(a, &v->rn_pending[i]);
			if (pb->pending[i] == NULL)
				return NULL;
		}
		pb->n_pending = v->rn_npending;
	}
	if (pb->id == NULL || pb->state == NULL || pb->address == NULL || pb->capacity == NULL)
		return NULL;
	if (v->rn_nlabels > 0) {
		pb->labels = arena_alloc(a, v->rn_nlabels * sizeof(*pb->labels));
		if (pb->labels == NULL)
			return NULL;
		for (size_t i = 0; i < v->rn_nlabels; i++) {
			pb->labels[i] = wire_label_to_pb(a, &v->rn_labels[i]);
			if (pb->labels[i] == NULL)
				return NULL;
		}
		pb->n_labels = v->rn_nlabels;
	}
	if (v->rn_ncomps > 0) {
		pb->components = arena_alloc(a, v->rn_ncomps * sizeof(*pb->components));
		if (pb->components == NULL)
			return NULL;
		for (size_t i = 0; i < v->rn_ncomps; i++) {
			pb->components[i] = wire_comp_to_pb(a, &v->rn_comps[i]);
			if (pb->components[i] == NULL)
				return NULL;
		}
		pb->n_components = v->rn_ncomps;
	}
	return pb;
}

static int
mgr_list_nodes(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm,
    ProtobufCMessage *replym)
{
	struct mgr *m = arg;
	Ckpt__V1__ListNodesReply *rep = (Ckpt__V1__ListNodesReply *)replym;
	struct arena *a = rpc_call_arena(call);
	struct reg_node_view *nodes = NULL;
	size_t n = 0;
	int rv;

	(void)reqm;
	rv = reg_nodes(m->m_reg, &nodes, &n);
	if (rv != 0)
		return rv;
	if (n > 0) {
		rep->nodes = arena_alloc(a, n * sizeof(*rep->nodes));
		if (rep->nodes == NULL)
			rv = -ENOMEM;
	}
	for (size_t i = 0; i < n && rv == 0; i++) {
		rep->nodes[i] = mgr_node_to_pb(a, &nodes[i]);
		if (rep->nodes[i] == NULL)
			rv = -ENOMEM;
	}
	if (rv == 0)
		rep->n_nodes = n;
	reg_nodes_free(nodes, n);
	return rv;
}

static int
mgr_list_checkpoints(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm,
    ProtobufCMessage *replym)
{
	struct mgr *m = arg;
	const Ckpt__V1__ListCheckpointsRequest *req = (const Ckpt__V1__ListCheckpointsRequest *)reqm;
	Ckpt__V1__ListCheckpointsReply *rep = (Ckpt__V1__ListCheckpointsReply *)replym;
	struct arena *a = rpc_call_arena(call);
	struct reg_ckpt *ck = NULL;
	size_t n = 0;
	int rv;

	rv = mgr_check_opt_name(call, "node", req->node);
	if (rv == 0)
		rv = mgr_check_opt_name(call, "component", req->component);
	if (rv != 0)
		return rv;
	rv = reg_checkpoints(m->m_reg, req->node, req->component, &ck, &n);
	if (rv != 0)
		return rv;
	if (n > 0) {
		rep->checkpoints = arena_alloc(a, n * sizeof(*rep->checkpoints));
		if (rep->checkpoints == NULL)
			rv = -ENOMEM;
	}
	for (size_t i = 0; i < n && rv == 0; i++) {
		rep->checkpoints[i] = wire_ckpt_to_pb(a, &ck[i]);
		if (rep->checkpoints[i] == NULL)
			rv = -ENOMEM;
	}
	if (rv == 0)
		rep->n_checkpoints = n;
	free(ck);
	return rv;
}

static int
mgr_info(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm, ProtobufCMessage *replym)
{
	struct mgr *m = arg;
	Ckpt__V1__InfoReply *rep = (Ckpt__V1__InfoReply *)replym;
	struct arena *a = rpc_call_arena(call);

	(void)reqm;
	rep->nas = arena_alloc(a, m->m_cfg.mc_nnas * sizeof(*rep->nas));
	if (rep->nas == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < m->m_cfg.mc_nnas; i++) {
		rep->nas[i] = arena_strdup(a, m->m_nas[i]);
		if (rep->nas[i] == NULL)
			return -ENOMEM;
	}
	rep->n_nas = m->m_cfg.mc_nnas;
	rep->events = arena_strdup(a, event_pub_url(m->m_pub));
	rep->version = arena_strdup(a, CKPT_VERSION);
	return rep->events != NULL && rep->version != NULL ? 0 : -ENOMEM;
}

static Ckpt__V1__MigrateReply *
mgr_result_to_pb(struct arena *a, const struct mig_result *res)
{
	Ckpt__V1__MigrateReply *pb = arena_alloc(a, sizeof(*pb));

	if (pb == NULL)
		return NULL;
	ckpt__v1__migrate_reply__init(pb);
	return mgr_result_fill(a, res, pb) == 0 ? pb : NULL;
}

/*
 * Drain: cordon the node, then move each of its components with the usual
 * migration (final checkpoint when the node answers, its latest otherwise).
 */
static int
mgr_drain(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm,
    ProtobufCMessage *replym)
{
	struct mgr *m = arg;
	const Ckpt__V1__DrainRequest *req = (const Ckpt__V1__DrainRequest *)reqm;
	Ckpt__V1__DrainReply *rep = (Ckpt__V1__DrainReply *)replym;
	struct arena *a = rpc_call_arena(call);
	struct mig_env env = mgr_mig_env(m);
	char (*names)[KEY_NAME_MAX + 1] = NULL;
	size_t n = 0;
	bool was;
	int rv;

	rv = mgr_check_name(call, "node", req->node);
	if (rv != 0)
		return rv;
	rv = reg_cordon(m->m_reg, req->node, true, &was);
	if (rv == -ENOENT) {
		rpc_call_errorf(call, "unknown node %s", req->node);
		return rv;
	}
	if (!was) {
		LOG_INFO("node %s cordoned (drain)", req->node);
		mev_publish(m->m_pub, &(struct mev){ .me_kind = MEV_NODE_CORDONED,
					  .me_node = req->node, .me_message = "drain" });
	}
	rv = reg_node_owned(m->m_reg, req->node, &names, &n);
	if (rv != 0) {
		rpc_call_errorf(call, "drain of %s: %s", req->node, err_str(rv));
		return rv;
	}
	LOG_INFO("drain of node %s: moving %zu component(s)", req->node, n);
	if (n > 0) {
		rep->moved = arena_alloc(a, n * sizeof(*rep->moved));
		rep->failed = arena_alloc(a, n * sizeof(*rep->failed));
		if (rep->moved == NULL || rep->failed == NULL) {
			rv = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct mig_result res;
		char err[MIG_ERR_MAX] = "";
		unsigned left = rpc_call_remaining_ms(call);
		int mrv;

		mrv = mig_run_as(&env, &mig_kind_drain, names[i], NULL,
		    left > MIG_RESTORE_MIN_MS ? left : MIG_RESTORE_MIN_MS, &res, err, sizeof(err));
		if (mrv == 0) {
			rep->moved[rep->n_moved] = mgr_result_to_pb(a, &res);
			if (rep->moved[rep->n_moved] == NULL) {
				rv = -ENOMEM;
				goto out;
			}
			rep->n_moved++;
		} else {
			struct reg_pending p = { 0 };
			snprintf(p.rp_component, sizeof(p.rp_component), "%s", names[i]);
			snprintf(p.rp_reason, sizeof(p.rp_reason), "%s",
			    err[0] != '\0' ? err : err_str(mrv));
			p.rp_since_unix_ms = util_now_unix_ms();
			p.rp_attempts = 1;
			rep->failed[rep->n_failed] = mgr_pending_to_pb(a, &p);
			if (rep->failed[rep->n_failed] == NULL) {
				rv = -ENOMEM;
				goto out;
			}
			rep->n_failed++;
		}
	}
	if (rep->n_failed == 0) {
		LOG_INFO("node %s drained: %zu component(s) moved", req->node, rep->n_moved);
		mev_publish(m->m_pub, &(struct mev){ .me_kind = MEV_NODE_DRAINED, .me_node = req->node });
	} else {
		LOG_WARN("drain of node %s: %zu component(s) moved, %zu not moved (first: %s)",
		    req->node, rep->n_moved, rep->n_failed, rep->failed[0]->reason);
	}
out:
	free(names);
	return rv;
}

static int
mgr_cordon_set(struct mgr *m, struct rpc_call *call, const Ckpt__V1__CordonRequest *req,
    Ckpt__V1__CordonReply *rep, bool cordoned)
{
	bool was;
	int rv;

	rv = mgr_check_name(call, "node", req->node);
	if (rv != 0)
		return rv;
	rv = reg_cordon(m->m_reg, req->node, cordoned, &was);
	if (rv == -ENOENT) {
		rpc_call_errorf(call, "unknown node %s", req->node);
		return rv;
	}
	rep->was_cordoned = was;
	if (was != cordoned) {
		LOG_INFO("node %s %s", req->node, cordoned ? "cordoned" : "uncordoned");
		mev_publish(m->m_pub, &(struct mev){
					  .me_kind = cordoned ? MEV_NODE_CORDONED : MEV_NODE_UNCORDONED,
					  .me_node = req->node });
	}
	if (!cordoned) {
		reg_failover_kick(m->m_reg);
		mgr_failover_kick(m);
	}
	return 0;
}

static int
mgr_cordon(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm,
    ProtobufCMessage *replym)
{
	return mgr_cordon_set(arg, call, (const Ckpt__V1__CordonRequest *)reqm,
	    (Ckpt__V1__CordonReply *)replym, true);
}

static int
mgr_uncordon(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm,
    ProtobufCMessage *replym)
{
	return mgr_cordon_set(arg, call, (const Ckpt__V1__CordonRequest *)reqm,
	    (Ckpt__V1__CordonReply *)replym, false);
}

/*
 * Checkpoints of node/component were deleted from the NAS (ckptctl rm): when
 * the catalogue's entry is one of them, it becomes the newest the NAS holds
 * (or goes). One short NAS call.
 */
static int
mgr_forget(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm,
    ProtobufCMessage *replym)
{
	struct mgr *m = arg;
	const Ckpt__V1__ForgetRequest *req = (const Ckpt__V1__ForgetRequest *)reqm;
	Ckpt__V1__ForgetReply *rep = (Ckpt__V1__ForgetReply *)replym;
	struct reg_ckpt cat, newest;
	char why[MIG_ERR_MAX];
	bool has_newest = false;
	int rv;

	rv = mgr_check_name(call, "node", req->node);
	if (rv == 0)
		rv = mgr_check_name(call, "component", req->component);
	if (rv != 0)
		return rv;
	if (reg_checkpoint_latest(m->m_reg, req->component, &cat) != 0 ||
	    strcmp(cat.rk_node, req->node) != 0 || (req->seq != 0 && req->seq != cat.rk_seq))
		goto out_reply; /* the catalogue does not point at what was deleted */
	rv = mig_nas_latest(m->m_nasc, req->component, MIG_NAS_MAX_MS, &newest, why, sizeof(why));
	if (rv != 0 && rv != -ENOENT) {
		rpc_call_errorf(call, "catalogue entry %s/%s@%llu not checked: %s", cat.rk_node,
		    cat.rk_component, (unsigned long long)cat.rk_seq, why);
		return rv;
	}
	has_newest = rv == 0;
	if (has_newest && newest.rk_seq == cat.rk_seq && strcmp(newest.rk_node, cat.rk_node) == 0)
		goto out_reply; /* still there */
	rep->changed = reg_checkpoint_gone(m->m_reg, &cat, has_newest ? &newest : NULL);
	if (rep->changed && has_newest)
		LOG_INFO("catalogue: %s/%s@%llu was deleted from the NAS; the newest left is "
			 "%s/%s@%llu",
		    cat.rk_node, cat.rk_component, (unsigned long long)cat.rk_seq, newest.rk_node,
		    newest.rk_component, (unsigned long long)newest.rk_seq);
	else if (rep->changed)
		LOG_INFO("catalogue: %s/%s@%llu was deleted from the NAS, which holds no other "
			 "checkpoint of %s",
		    cat.rk_node, cat.rk_component, (unsigned long long)cat.rk_seq, cat.rk_component);
out_reply:
	if (reg_checkpoint_latest(m->m_reg, req->component, &cat) == 0) {
		rep->latest = wire_ckpt_to_pb(rpc_call_arena(call), &cat);
		if (rep->latest == NULL)
			return -ENOMEM;
	}
	return 0;
}

static int
mgr_apply(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm,
    ProtobufCMessage *replym)
{
	struct mgr *m = arg;
	struct mig_env env = mgr_mig_env(m);

	return mapply_apply(&env, call, (const Ckpt__V1__ApplyRequest *)reqm,
	    (Ckpt__V1__ApplyReply *)replym);
}

static int
mgr_delete(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm,
    ProtobufCMessage *replym)
{
	struct mgr *m = arg;
	struct mig_env env = mgr_mig_env(m);

	return mapply_delete(&env, call, (const Ckpt__V1__DeleteComponentRequest *)reqm,
	    (Ckpt__V1__DeleteComponentReply *)replym);
}

static const rpc_handler_fn mgr_handlers[MGR_METHODS] = {
	[MGR_ATTACH] = mgr_attach,
	[MGR_NOTIFY] = mgr_notify,
	[MGR_MIGRATE] = mgr_migrate,
	[MGR_HEARTBEAT] = mgr_heartbeat,
	[MGR_LIST_NODES] = mgr_list_nodes,
	[MGR_LIST_CHECKPOINTS] = mgr_list_checkpoints,
	[MGR_INFO] = mgr_info,
	[MGR_DRAIN] = mgr_drain,
	[MGR_CORDON] = mgr_cordon,
	[MGR_UNCORDON] = mgr_uncordon,
	[MGR_FORGET] = mgr_forget,
	[MGR_APPLY] = mgr_apply,
	[MGR_DELETE] = mgr_delete,
};

/*
 * Long work, off the request workers (rpc.h, "Long work"): a migration or a
 * drain waits on agents and the NAS for seconds; heartbeats must not wait
 * behind it, or nodes would be declared down by the monitor.
 */
static const bool mgr_slow[MGR_METHODS] = {
	[MGR_MIGRATE] = true,
	[MGR_DRAIN] = true,
	[MGR_APPLY] = true,
	[MGR_DELETE] = true,
};

static void
mgr_on_bad(void *arg, const char *reason)
{
	(void)arg;
	LOG_WARN("bad request: %s", reason);
}

/*
 * Who may call what, with authentication on (auth.proto roles); a node is
 * held to itself in the handlers (mgr_act_as, mgr_may_move).
 */
static const unsigned mgr_roles[MGR_METHODS] = {
	[MGR_ATTACH] = AUTH_NODE,
	[MGR_NOTIFY] = AUTH_NODE | AUTH_OPERATOR,     /* ckptctl put notifies too */
	[MGR_MIGRATE] = AUTH_NODE | AUTH_OPERATOR,    /* a node moves its own (the seed) */
	[MGR_HEARTBEAT] = AUTH_NODE,
	[MGR_LIST_NODES] = AUTH_OPERATOR,
	[MGR_LIST_CHECKPOINTS] = AUTH_OPERATOR,
	[MGR_INFO] = AUTH_ANY,
	[MGR_DRAIN] = AUTH_OPERATOR,
	[MGR_CORDON] = AUTH_OPERATOR,
	[MGR_UNCORDON] = AUTH_OPERATOR,
	[MGR_FORGET] = AUTH_OPERATOR,
	[MGR_APPLY] = AUTH_OPERATOR,
	[MGR_DELETE] = AUTH_OPERATOR,
};

static void
mgr_on_refused(void *arg, const char *line)
{
	(void)arg;
	LOG_WARN("refused: %s", line);
}

static void
mgr_on_limit(void *arg, const char *name, const char *msg)
{
	struct mgr *m = arg;
	uint64_t held;

	if (limit_log_named(&m->m_limit_log, name, util_now_mono_ms(), &held))
		LOG_WARN("limit %s hit: %s%s", name, msg,
		    held != 0 ? " (and more since the last line)" : "");
}

/* ---- node monitor ---- */

static void
mgr_sweep(struct mgr *m)
{
	struct reg_down down[MGR_DOWN_BATCH];
	size_t n, marked = 0;

	do {
		n = reg_sweep(m->m_reg, down, MGR_DOWN_BATCH);
		for (size_t i = 0; i < n; i++) {
			char msg[64], reason[LIMIT_REASON_MAX];
			size_t k;

			LOG_WARN("node %s is down (silent for %llu ms)", down[i].rd_node,
			    (unsigned long long)down[i].rd_silent_ms);
			snprintf(msg, sizeof(msg), "silent for %llu ms",
			    (unsigned long long)down[i].rd_silent_ms);
			mev_publish(m->m_pub, &(struct mev){ .me_kind = MEV_NODE_DOWN,
						  .me_node = down[i].rd_node, .me_message = msg });
			/* Failover: its components go to the worker. */
			snprintf(reason, sizeof(reason), "node %s is down (%s)", down[i].rd_node, msg);
			k = reg_failover_mark(m->m_reg, down[i].rd_node, reason);
			if (k > 0)
				LOG_INFO("failover of %zu component(s) of node %s", k, down[i].rd_node);
			marked += k;
		}
	} while (n == MGR_DOWN_BATCH);
	if (marked > 0)
		mgr_failover_kick(m);
}

/* backoff * [0.5, 1.5), under m_lock */
static uint64_t
mgr_jitter_locked(struct mgr *m, uint64_t ms)
{
	uint64_t x = m->m_seed;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	m->m_seed = x;
	return ms / 2 + x % (ms + 1);
}

/*
 * Whether resuming comp on target must wait: the manager started a moment
 * ago, and the node that stored comp's newest checkpoint, which may still
 * run it, has perhaps not attached again yet. If so, err says so and
 * *ret_wait_ms how long.
 */
static bool
mgr_resume_too_early(struct mgr *m, const char *comp, const char *target, char *err,
    size_t errlen, uint64_t *ret_wait_ms)
{
	uint64_t age = util_now_mono_ms() - m->m_started_ms;
	uint64_t grace = (uint64_t)m->m_cfg.mc_down_after_ms + MGR_REATTACH_GRACE_MS;
	struct reg_ckpt c;

	if (age >= grace || reg_checkpoint_latest(m->m_reg, comp, &c) != 0 ||
	    strcmp(c.rk_node, target) == 0)
		return false;
	snprintf(err, errlen, "resume of %s on %s waits %llu ms: the manager just started and "
	    "node %s, which stored its newest checkpoint, may still run it and attach again",
	    comp, target, (unsigned long long)(grace - age), c.rk_node);
	*ret_wait_ms = grace - age;
	return true;
}

static void
mgr_failover_one(struct mgr *m, const char *comp)
{
	struct mig_env env = mgr_mig_env(m);
	struct reg_node_view *nodes = NULL;
	struct mig_result res;
	char err[MIG_ERR_MAX] = "", target[KEY_NAME_MAX + 1];
	uint32_t attempts = 0;
	uint64_t retry;
	size_t nn = 0;
	bool resume, waits;
	int rv;

	if (!reg_failover_wanted(m->m_reg, comp))
		return;
	/* A node that started again and declares it takes it back. */
	resume = reg_resume_target(m->m_reg, comp, target) == 0;
	if (resume && mgr_resume_too_early(m, comp, target, err, sizeof(err), &retry)) {
		if (reg_failover_wait(m->m_reg, comp, err, retry))
			LOG_INFO("%s", err);
		else
			LOG_INFO("resume of %s ended: nothing waits for it any more (deleted "
			         "meanwhile)", comp);
		return;
	}
	rv = mig_run_as(&env, resume ? &mig_kind_resume : &mig_kind_failover, comp,
	    resume ? target : NULL, MGR_FAILOVER_BUDGET_MS, &res, err, sizeof(err));
	if (rv == 0 || rv == -EALREADY) {
		if (rv == -EALREADY)
			LOG_INFO("%s", err);
		reg_failover_clear(m->m_reg, comp);
		return;
	}
	if (resume && rv == -ENOENT && reg_resume_fresh(m->m_reg, comp) == 0) {
		/* The NAS answered and holds none: a new component, not a lost one. */
		LOG_INFO("resume of %s: no checkpoint of it exists; node %s starts it fresh", comp,
		    target);
		return;
	}
	if (err[0] == '\0')
		snprintf(err, sizeof(err), "failover of %s: %s", comp, err_str(rv));
	/* How many times it was tried, for the back-off. */
	if (reg_nodes(m->m_reg, &nodes, &nn) == 0) {
		for (size_t i = 0; i < nn; i++)
			for (size_t j = 0; j < nodes[i].rn_npending; j++)
				if (strcmp(nodes[i].rn_pending[j].rp_component, comp) == 0)
					attempts = nodes[i].rn_pending[j].rp_attempts;
		reg_nodes_free(nodes, nn);
	}
	if (rv == -ESTALE || rv == -ENOENT) {
		/*
		 * No node can take it (or nothing to restore): wait for an attach,
		 * an uncordon, or (no room) a place that frees (registry.h, Room).
		 */
		retry = m->m_cfg.mc_failover_retry_ms;
	} else {
		retry = MGR_FAILOVER_BACKOFF_MIN_MS << (attempts < 6 ? attempts : 6);
		if (retry > MGR_FAILOVER_BACKOFF_MAX_MS)
			retry = MGR_FAILOVER_BACKOFF_MAX_MS;
	}
	pthread_mutex_lock(&m->m_lock);
	retry = mgr_jitter_locked(m, retry);
	pthread_mutex_unlock(&m->m_lock);
	if (rv == -ESTALE)
		waits = reg_failover_wait_room(m->m_reg, comp, err, retry);
	else
		waits = reg_failover_wait(m->m_reg, comp, err, retry);
	if (!waits) {
		/*
		 * Nothing waits for it any more: ckptctl delete dropped it while it
		 * was tried (a resume whose component was deleted finds nothing to
		 * begin), or it was placed or came back meanwhile. No wait, no
		 * pending event.
		 */
		LOG_INFO("%s of %s ended: nothing waits for it any more (deleted, placed or back "
		         "on its node while it was tried); the attempt said: %s",
		    resume ? "resume" : "failover", comp, err);
		return;
	}
	LOG_WARN("failover of %s waits (attempt %u, next in %llu ms or when a node attaches%s): %s",
	    comp, attempts + 1, (unsigned long long)retry,
	    rv == -ESTALE ? " or a place frees" : "", err);
	mev_publish(m->m_pub, &(struct mev){ .me_kind = MEV_FAILOVER_PENDING, .me_component = comp,
				  .me_message = err });
}

/* The failover worker: moves the components of down nodes, one at a time. */
static void *
mgr_failover_main(void *arg)
{
	struct mgr *m = arg;
	char names[MGR_FAILOVER_BATCH][KEY_NAME_MAX + 1];

	pthread_mutex_lock(&m->m_lock);
	while (!m->m_stopping) {
		size_t n;

		if (!m->m_fo_kicked) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += MGR_FAILOVER_IDLE_MS / 1000;
			pthread_cond_timedwait(&m->m_fo_cond, &m->m_lock, &ts);
		}
		m->m_fo_kicked = false;
		if (m->m_stopping)
			break;
		pthread_mutex_unlock(&m->m_lock);
		do {
			n = reg_failover_due(m->m_reg, util_now_mono_ms(), names, MGR_FAILOVER_BATCH);
			for (size_t i = 0; i < n; i++)
				mgr_failover_one(m, names[i]);
		} while (n == MGR_FAILOVER_BATCH);
		pthread_mutex_lock(&m->m_lock);
	}
	pthread_mutex_unlock(&m->m_lock);
	return NULL;
}

/*
 * Refused TLS handshakes on the events address (subscribers: the rpc layer
 * watches the manager's own listener), once a second: counted in
 * ckpt_tls_refused_total{service="Events"} and logged once per burst.
 * From the monitor only; flush: stopping, tell what is held.
 */
static void
mgr_events_tls(struct mgr *m, bool flush)
{
	char line[LIMIT_URL_MAX + 256];
	uint64_t now = util_now_mono_ms(), fresh;
	bool say;

	if (m->m_pub == NULL || !tls_url_is_tls(event_pub_url(m->m_pub)) ||
	    (!flush && now - m->m_ev_polled_ms < 1000))
		return;
	m->m_ev_polled_ms = now;
	fresh = tls_watch_poll(&m->m_ev_watch, event_pub_listener(m->m_pub),
	    event_pub_url(m->m_pub), now, flush, line, sizeof(line), &say);
	if (fresh > 0)
		metrics_inc(m->m_m_ev_tls, (double)fresh, METRICS_L("Events"));
	if (say)
		LOG_WARN("refused: %s", line);
}

static void *
mgr_monitor_main(void *arg)
{
	struct mgr *m = arg;
	/* Often enough that a silent node is seen within 5% of down-after. */
	unsigned period = m->m_cfg.mc_heartbeat_ms / 2;

	if (period > m->m_cfg.mc_down_after_ms / 20)
		period = m->m_cfg.mc_down_after_ms / 20;
	if (period < 10)
		period = 10;
	pthread_mutex_lock(&m->m_lock);
	while (!m->m_stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += period / 1000;
		ts.tv_nsec += (long)(period % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&m->m_cond, &m->m_lock, &ts);
		if (m->m_stopping)
			break;
		pthread_mutex_unlock(&m->m_lock);
		mgr_sweep(m);
		mgr_events_tls(m, false);
		pthread_mutex_lock(&m->m_lock);
	}
	pthread_mutex_unlock(&m->m_lock);
	mgr_events_tls(m, true);
	return NULL;
}

/* ---- life cycle ---- */

/*
 * One attempt at the catalogue from the NAS (List, latest_only). On success
 * *ret_n is the number of components the catalogue then holds; on failure
 * the cause is in err.
 */
static int
mgr_seed_once(struct mgr *m, size_t *ret_n, char *err, size_t errlen)
{
	Ckpt__V1__ListRequest req = CKPT__V1__LIST_REQUEST__INIT;
	Ckpt__V1__ListReply *rep = NULL;
	struct reg_ckpt *all = NULL;
	struct rpc_error rerr;
	size_t bad = 0, n = 0;
	int rv;

	req.latest_only = 1;
	rv = nasc_call(m->m_nasc, NAS_LIST, &req.base, m->m_cfg.mc_seed_timeout_ms,
	    (ProtobufCMessage **)&rep, &rerr);
	if (rv != 0) {
		snprintf(err, errlen, "%s", rerr.re_msg);
		return rv;
	}
	if (rep->truncated)
		LOG_WARN("catalogue seeded with the first %zu checkpoints the NAS lists; it holds more "
		    "(the others are learned as their agents attach and store)", rep->n_checkpoints);
	for (size_t i = 0; i < rep->n_checkpoints; i++) {
		struct reg_ckpt c;
		char why[WIRE_ERR_MAX];
		if (rep->checkpoints[i] == NULL ||
		    wire_ckpt_from_pb(rep->checkpoints[i], &c, why, sizeof(why)) != 0 ||
		    reg_checkpoint(m->m_reg, &c, NULL) != 0)
			bad++;
	}
	rpc_reply_free(&rep->base);
	if (bad > 0)
		LOG_WARN("catalogue seeding skipped %zu unusable checkpoint record(s) of the NAS", bad);
	if (reg_checkpoints(m->m_reg, NULL, NULL, &all, &n) != 0)
		n = 0;
	free(all);
	*ret_n = n;
	return 0;
}

static bool
mgr_stopping(struct mgr *m)
{
	bool stopping;

	pthread_mutex_lock(&m->m_lock);
	stopping = m->m_stopping;
	pthread_mutex_unlock(&m->m_lock);
	return stopping;
}

/*
 * The seeder: a manager started while the NAS was down asks it again, with
 * back-off (MGR_SEED_RETRY_MIN_MS doubling to MGR_SEED_RETRY_MAX_MS, with
 * jitter), until it answers. Meanwhile the catalogue fills from Notify, and
 * failovers and migrations ask the NAS themselves (migrate.h), so nothing
 * decides on an empty catalogue alone.
 */
static void *
mgr_seed_main(void *arg)
{
	struct mgr *m = arg;
	uint64_t backoff = MGR_SEED_RETRY_MIN_MS, t0 = util_now_mono_ms(), last_warn = t0;
	unsigned attempts = 1;
	char err[RPC_ERRMSG_MAX];
	size_t n;
	int rv;

	pthread_mutex_lock(&m->m_lock);
	for (;;) {
		struct timespec ts;
		uint64_t wait = mgr_jitter_locked(m, backoff);

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(wait / 1000);
		ts.tv_nsec += (long)(wait % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!m->m_stopping &&
		    pthread_cond_timedwait(&m->m_seed_cond, &m->m_lock, &ts) != ETIMEDOUT)
			;
		if (m->m_stopping)
			break;
		pthread_mutex_unlock(&m->m_lock);
		attempts++;
		rv = mgr_seed_once(m, &n, err, sizeof(err));
		if (rv == 0) {
			LOG_INFO("catalogue seeded from the NAS: %zu components (attempt %u, %llu ms "
				 "after start)",
			    n, attempts, (unsigned long long)(util_now_mono_ms() - t0));
			pthread_mutex_lock(&m->m_lock);
			break;
		}
		if (util_now_mono_ms() - last_warn >= MGR_SEED_WARN_EVERY_MS && !mgr_stopping(m)) {
			LOG_WARN("catalogue still not seeded from the NAS (attempt %u): %s; retrying",
			    attempts, err);
			last_warn = util_now_mono_ms();
		}
		backoff = backoff * 2 < MGR_SEED_RETRY_MAX_MS ? backoff * 2 : MGR_SEED_RETRY_MAX_MS;
		pthread_mutex_lock(&m->m_lock);
	}
	pthread_mutex_unlock(&m->m_lock);
	return NULL;
}

/* The catalogue from the NAS: one attempt now, then the seeder until it answers. */
static int
mgr_seed(struct mgr *m)
{
	char err[RPC_ERRMSG_MAX];
	size_t n;
	int rv;

	rv = mgr_seed_once(m, &n, err, sizeof(err));
	if (rv == 0) {
		LOG_INFO("catalogue seeded from the NAS: %zu components", n);
		return 0;
	}
	LOG_WARN("catalogue not seeded from the NAS: %s; retrying in the background", err);
	rv = -pthread_create(&m->m_seeder, NULL, mgr_seed_main, m);
	if (rv == 0) {
		pthread_setname_np(m->m_seeder, "mgr:seed");
		m->m_seeder_started = true;
	}
	return rv;
}

static int
mgr_copy_nas(struct mgr *m, const struct mgr_config *cfg)
{
	m->m_nas = calloc(cfg->mc_nnas, sizeof(*m->m_nas));
	if (m->m_nas == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->mc_nnas; i++) {
		m->m_nas[i] = strdup(cfg->mc_nas[i]);
		if (m->m_nas[i] == NULL)
			return -ENOMEM;
	}
	return 0;
}

static int
mgr_sync_init(struct mgr *m)
{
	pthread_condattr_t ca;
	int rv;

	rv = -pthread_mutex_init(&m->m_lock, NULL);
	if (rv != 0)
		return rv;
	rv = -pthread_condattr_init(&ca);
	if (rv == 0) {
		rv = -pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (rv == 0)
			rv = -pthread_cond_init(&m->m_cond, &ca);
		if (rv == 0) {
			rv = -pthread_cond_init(&m->m_fo_cond, &ca);
			if (rv != 0)
				pthread_cond_destroy(&m->m_cond);
		}
		if (rv == 0) {
			rv = -pthread_cond_init(&m->m_seed_cond, &ca);
			if (rv != 0) {
				pthread_cond_destroy(&m->m_fo_cond);
				pthread_cond_destroy(&m->m_cond);
			}
		}
		pthread_condattr_destroy(&ca);
	}
	if (rv != 0)
		pthread_mutex_destroy(&m->m_lock);
	m->m_seed = util_now_mono_ms() ^ (uint64_t)(uintptr_t)m ^ 0x9e3779b97f4a7c15ull;
	m->m_started_ms = util_now_mono_ms();
	return rv;
}

/*
 * The NAS list names one store: nasc refuses it from now on if not (every
 * NAS call fails with the message); said once, here.
 */
static void
mgr_on_store_check(void *arg, int rv, const char *msg)
{
	(void)arg;
	if (rv == 0)
		LOG_INFO("the NAS addresses answered: they are one store");
	else
		LOG_ERROR("--nas refused: %s", msg);
}

int
mgr_start(const struct mgr_config *cfg, struct mgr **ret_mgr, char *err, size_t errlen)
{
	struct reg_config rc = { .rc_down_after_ms = cfg->mc_down_after_ms,
		.rc_nodes_max = cfg->mc_max_nodes, .rc_on_room = mgr_on_room };
	struct rpc_server_config sc = { 0 };
	struct rpc_error rerr;
	struct mgr *m;
	int rv;

	if (cfg->mc_nnas == 0 || cfg->mc_nnas > NASC_URLS_MAX) {
		snprintf(err, errlen, "need 1 to %d NAS URLs, got %zu", NASC_URLS_MAX, cfg->mc_nnas);
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->m_cfg = *cfg;
	if (cfg->mc_tls != NULL) {
		m->m_tls = *cfg->mc_tls;
		m->m_tls.tc_on_server_refused = mgr_on_server_refused;
		m->m_tls.tc_arg = m;
		m->m_cfg.mc_tls = &m->m_tls;
	}
	if (m->m_cfg.mc_max_nodes == 0)
		m->m_cfg.mc_max_nodes = LIMIT_NODES_DEFAULT;
	if (m->m_cfg.mc_max_node_comps == 0 || m->m_cfg.mc_max_node_comps > LIMIT_NODE_COMPONENTS_MAX)
		m->m_cfg.mc_max_node_comps = LIMIT_COMPONENTS_DEFAULT;
	rc.rc_nodes_max = m->m_cfg.mc_max_nodes;
	rc.rc_on_room_arg = m;
	if (m->m_cfg.mc_failover_retry_ms == 0)
		m->m_cfg.mc_failover_retry_ms = MGR_FAILOVER_WAIT_MS;
	rv = mgr_sync_init(m);
	if (rv != 0) {
		free(m);
		snprintf(err, errlen, "cannot create the monitor's lock: %s", err_str(rv));
		return rv;
	}
	m->m_cfg.mc_nas = NULL;
	rv = mgr_copy_nas(m, cfg);
	if (rv == 0)
		rv = reg_new(&rc, &m->m_reg);
	if (rv != 0) {
		snprintf(err, errlen, "out of memory");
		goto out_stop;
	}
	rv = nasc_open_tls(m->m_nas, cfg->mc_nnas, 0, m->m_cfg.mc_tls, &m->m_nasc, &rerr);
	if (rv != 0) {
		snprintf(err, errlen, "invalid NAS address: %s", rerr.re_msg);
		goto out_stop;
	}
	rv = nasc_check_store(m->m_nasc, MGR_STORE_CHECK_MS, mgr_on_store_check, m, &rerr);
	if (rv == -EXDEV) {
		snprintf(err, errlen, "--nas: %s", rerr.re_msg);
		goto out_stop;
	}
	if (rv == -EAGAIN)
		LOG_WARN("cannot check yet that the NAS addresses are one store (%s); checking again "
		         "until they answer",
		    rerr.re_msg);
	rv = 0;
	{
		char why[512];
		rv = event_pub_open(cfg->mc_events, cfg->mc_tls, &m->m_pub, why, sizeof(why));
		if (rv != 0) {
			snprintf(err, errlen, "cannot publish events on %s: %s", cfg->mc_events, why);
			goto out_stop;
		}
	}

	sc.rs_service = &ckpt__v1__manager__descriptor;
	sc.rs_handlers = mgr_handlers;
	sc.rs_arg = m;
	sc.rs_workers = cfg->mc_workers;
	sc.rs_slow = mgr_slow;
	sc.rs_slow_workers = cfg->mc_workers; /* as many migrations at once; more wait in turn */
	sc.rs_on_bad = mgr_on_bad;
	sc.rs_roles = mgr_roles;
	sc.rs_on_refused = mgr_on_refused;
	sc.rs_on_limit = mgr_on_limit;
	sc.rs_recv_max = cfg->mc_recv_max;
	if (cfg->mc_limits != NULL)
		rpc_limits_apply(cfg->mc_limits, &sc);
	if (cfg->mc_http != NULL) {
		rv = mmet_new(m->m_reg, m->m_nasc, cfg->mc_metrics_series_max, &m->m_mmet);
		if (rv != 0) {
			snprintf(err, errlen, "cannot make the metrics: %s", err_str(rv));
			goto out_stop;
		}
		sc.rs_metrics = mmet_registry(m->m_mmet);
		if (tls_url_is_tls(event_pub_url(m->m_pub))) {
			rv = metrics_add_family(sc.rs_metrics, METRICS_COUNTER, "ckpt_tls_refused_total",
			    "TLS handshakes refused on the service's listener (no client certificate, one "
			    "not signed by the CA, expired, or no TLS); read from nng's statistics every "
			    "second", "service", NULL, 0, &m->m_m_ev_tls);
			if (rv == 0)
				rv = metrics_inc(m->m_m_ev_tls, 0, METRICS_L("Events"));
			if (rv != 0) {
				snprintf(err, errlen, "cannot make the metrics: %s", err_str(rv));
				goto out_stop;
			}
		}
		if (cfg->mc_tls != NULL) {
			struct metrics_fam *f;
			rv = metrics_add_family(sc.rs_metrics, METRICS_COUNTER,
			    "ckpt_auth_server_refused_total", "Calls refused because the server dialled "
			    "(the NAS, an agent) did not prove the role expected there", NULL, NULL, 0, &f);
			if (rv == 0)
				rv = metrics_inc(f, 0, NULL, 0);
			if (rv != 0) {
				snprintf(err, errlen, "cannot make the metrics: %s", err_str(rv));
				goto out_stop;
			}
			__atomic_store_n(&m->m_m_srv_refused, f, __ATOMIC_RELEASE);
		}
	}
	tls_watch_init(&m->m_ev_watch);
	sc.rs_tls = cfg->mc_tls;
	rv = rpc_server_start(&sc, cfg->mc_listen, &m->m_server);
	if (rv != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", cfg->mc_listen, err_str(rv));
		goto out_stop;
	}
	/* After the listen, so a bad address fails at once; agents that attach
	 * meanwhile are fine: the catalogue keeps the highest seq whatever the order. */
	if (cfg->mc_seed_timeout_ms > 0) {
		rv = mgr_seed(m);
		if (rv != 0) {
			snprintf(err, errlen, "cannot start the catalogue seeder: %s", err_str(rv));
			goto out_stop;
		}
	}
	rv = -pthread_create(&m->m_monitor, NULL, mgr_monitor_main, m);
	if (rv != 0) {
		snprintf(err, errlen, "cannot start the node monitor: %s", err_str(rv));
		goto out_stop;
	}
	pthread_setname_np(m->m_monitor, "mgr:monitor");
	m->m_monitor_started = true;
	rv = -pthread_create(&m->m_failover, NULL, mgr_failover_main, m);
	if (rv != 0) {
		snprintf(err, errlen, "cannot start the failover worker: %s", err_str(rv));
		goto out_stop;
	}
	pthread_setname_np(m->m_failover, "mgr:failover");
	m->m_failover_started = true;
	if (m->m_mmet != NULL) {
		rv = mmet_serve(m->m_mmet, cfg->mc_http, err, errlen);
		if (rv != 0)
			goto out_stop;
	}
	*ret_mgr = m;
	return 0;

out_stop:
	mgr_stop(m);
	return rv;
}

const char *
mgr_url(const struct mgr *m)
{
	return rpc_server_url(m->m_server);
}

struct rpc_server *
mgr_rpc_server(struct mgr *m)
{
	return m->m_server;
}

const char *
mgr_http_url(const struct mgr *m)
{
	return m->m_mmet != NULL ? mmet_url(m->m_mmet) : NULL;
}

const char *
mgr_events_url(const struct mgr *m)
{
	return event_pub_url(m->m_pub);
}

void
mgr_stop(struct mgr *m)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->m_lock);
	m->m_stopping = true;
	pthread_cond_signal(&m->m_cond);
	pthread_cond_signal(&m->m_fo_cond);
	pthread_cond_signal(&m->m_seed_cond);
	pthread_mutex_unlock(&m->m_lock);
	if (m->m_monitor_started)
		pthread_join(m->m_monitor, NULL);
	/* Handlers and the failover worker waiting on an agent or the NAS return at once... */
	if (m->m_reg != NULL)
		reg_abort(m->m_reg);
	nasc_abort(m->m_nasc);
	if (m->m_failover_started)
		pthread_join(m->m_failover, NULL);
	if (m->m_seeder_started)
		pthread_join(m->m_seeder, NULL);
	/* ...so the server stops promptly; no handler runs once the rest is gone. */
	rpc_server_stop(m->m_server);
	/* No call is left to be refused (their threads are joined above); none counts from now. */
	__atomic_store_n(&m->m_m_srv_refused, NULL, __ATOMIC_RELEASE);
	mmet_free(m->m_mmet); /* after the server, which counts in it; before the NAS client */
	event_pub_close(m->m_pub);
	nasc_close(m->m_nasc);
	reg_free(m->m_reg);
	if (m->m_nas != NULL) {
		for (size_t i = 0; i < m->m_cfg.mc_nnas; i++)
			free(m->m_nas[i]);
		free(m->m_nas);
	}
	pthread_cond_destroy(&m->m_seed_cond);
	pthread_cond_destroy(&m->m_fo_cond);
	pthread_cond_destroy(&m->m_cond);
	pthread_mutex_destroy(&m->m_lock);
	free(m);
}

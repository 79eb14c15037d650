/*
 * The Manager service in process, over tcp://127.0.0.1: round trips, bad
 * input, and migrations between two fake agents (Agent.Stop/Restore servers).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/agent.pb-c.h"
#include "ckpt/v1/manager.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "event.h"
#include "key.h"
#include "mgr.h"
#include "rpc.h"
#include "sha.h"
#include "url.h"
#include "util.h"
#include "../testrun.h"

enum { M_ATTACH, M_NOTIFY, M_MIGRATE, M_HEARTBEAT, M_LIST_NODES, M_LIST_CHECKPOINTS, M_INFO,
	M_DRAIN, M_CORDON, M_UNCORDON };

#define CALL_MS 10000u
#define FAKE_NAS "tcp://127.0.0.1:1"
#define GIB (1024ull * 1024ull * 1024ull)

/*
 * ---- a fake agent: answers Stop and Restore ----
 *
 * It keeps the list of components it runs (Restore adds, Stop removes), and
 * heartbeats report that list as an agent's do: an empty heartbeat would
 * tell the manager that the node runs nothing.
 */

#define FAKE_COMPS_MAX 4

struct fake_agent {
	const char *fa_node;
	struct rpc_server *fa_srv;
	atomic_int fa_stops;
	atomic_int fa_restores;
	atomic_int fa_fail_restore;
	atomic_int fa_stop_hold;  /* Stop waits while set: a migration in progress */
	atomic_int fa_alive;      /* the heartbeat thread beats for it */
	pthread_mutex_t fa_lock;  /* guards the list below */
	struct fake_comp {
		char fc_name[KEY_NAME_MAX + 1];
		uint64_t fc_epoch;
		char fc_from_node[KEY_NAME_MAX + 1]; /* "": not restored */
		uint64_t fc_from_seq;
		uint8_t fc_sha256[SHA_LEN];
		/* Supervision as the agent reports it ("": running). */
		char fc_state[16];
		uint32_t fc_pid, fc_restarts;
		char fc_reason[64];
	} fa_comps[FAKE_COMPS_MAX];
	size_t fa_ncomps;
};

/* Adds (or updates) component in fa's list; from: what it was restored from, or NULL. */
static void
fake_run(struct fake_agent *fa, const char *component, uint64_t epoch,
    const Ckpt__V1__CheckpointRef *from)
{
	size_t i;

	pthread_mutex_lock(&fa->fa_lock);
	for (i = 0; i < fa->fa_ncomps && strcmp(fa->fa_comps[i].fc_name, component) != 0; i++)
		;
	if (i < FAKE_COMPS_MAX) {
		struct fake_comp *fc = &fa->fa_comps[i];

		memset(fc, 0, sizeof(*fc));
		snprintf(fc->fc_name, sizeof(fc->fc_name), "%s", component);
		fc->fc_epoch = epoch;
		if (from != NULL) {
			snprintf(fc->fc_from_node, sizeof(fc->fc_from_node), "%s", from->node);
			fc->fc_from_seq = from->seq;
			if (from->sha256.len == SHA_LEN)
				memcpy(fc->fc_sha256, from->sha256.data, SHA_LEN);
		}
		if (i == fa->fa_ncomps)
			fa->fa_ncomps++;
	}
	pthread_mutex_unlock(&fa->fa_lock);
}

/* Removes component from fa's list. */
static void
fake_drop(struct fake_agent *fa, const char *component)
{
	pthread_mutex_lock(&fa->fa_lock);
	for (size_t i = 0; i < fa->fa_ncomps; i++) {
		if (strcmp(fa->fa_comps[i].fc_name, component) == 0) {
			fa->fa_comps[i] = fa->fa_comps[--fa->fa_ncomps];
			break;
		}
	}
	pthread_mutex_unlock(&fa->fa_lock);
}

static void
fake_sha(const char *component, uint8_t out[SHA_LEN])
{
	sha256(component, strlen(component), out);
}

static int
fake_restore(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm,
    ProtobufCMessage *replym)
{
	struct fake_agent *fa = arg;
	const Ckpt__V1__RestoreRequest *req = (const Ckpt__V1__RestoreRequest *)reqm;
	Ckpt__V1__RestoreReply *rep = (Ckpt__V1__RestoreReply *)replym;
	struct arena *a = rpc_call_arena(call);
	Ckpt__V1__ComponentStatus *st = arena_alloc(a, sizeof(*st));
	Ckpt__V1__CheckpointRef *ref = arena_alloc(a, sizeof(*ref));

	atomic_fetch_add(&fa->fa_restores, 1);
	if (atomic_load(&fa->fa_fail_restore)) {
		rpc_call_errorf(call, "checkpoint %s/%s@%llu: hash mismatch", req->node,
		    req->component, (unsigned long long)req->seq);
		return -EBADMSG;
	}
	ckpt__v1__component_status__init(st);
	ckpt__v1__checkpoint_ref__init(ref);
	ref->node = arena_strdup(a, req->node);
	ref->component = arena_strdup(a, req->component);
	ref->seq = req->seq;
	ref->sha256.data = arena_memdup(a, req->sha256.data, req->sha256.len);
	ref->sha256.len = req->sha256.len;
	st->name = arena_strdup(a, req->component);
	st->state = arena_strdup(a, "running");
	st->kind = arena_strdup(a, "demo");
	st->epoch = req->epoch;
	st->last_seq = req->seq;
	st->restored_from = ref;
	st->state_sha256 = ref->sha256;
	rep->status = st;
	fake_run(fa, req->component, req->epoch, ref);
	return 0;
}

static int
fake_stop(void *arg, struct rpc_call *call, const ProtobufCMessage *reqm, ProtobufCMessage *replym)
{
	struct fake_agent *fa = arg;
	const Ckpt__V1__StopRequest *req = (const Ckpt__V1__StopRequest *)reqm;
	Ckpt__V1__StopReply *rep = (Ckpt__V1__StopReply *)replym;
	struct arena *a = rpc_call_arena(call);
	Ckpt__V1__CheckpointInfo *ci = arena_alloc(a, sizeof(*ci));
	int n = atomic_fetch_add(&fa->fa_stops, 1) + 1;

	while (atomic_load(&fa->fa_stop_hold))
		util_sleep_ms(5);
	fake_drop(fa, req->component);
	ckpt__v1__checkpoint_info__init(ci);
	ci->node = arena_strdup(a, fa->fa_node);
	ci->component = arena_strdup(a, req->component);
	ci->kind = arena_strdup(a, "demo");
	ci->seq = 10 + (uint64_t)n;
	ci->size = 64;
	ci->sha256.data = arena_alloc(a, SHA_LEN);
	ci->sha256.len = SHA_LEN;
	fake_sha(req->component, ci->sha256.data);
	rep->checkpoint = ci;
	return 0;
}

static const rpc_handler_fn fake_handlers[4] = { fake_restore, fake_stop, NULL, NULL };

static void
fake_start(struct fake_agent *fa, const char *node)
{
	struct rpc_server_config sc = {
		.rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = fake_handlers,
		.rs_arg = fa,
		.rs_workers = 2,
	};
	memset(fa, 0, sizeof(*fa));
	fa->fa_node = node;
	ck_assert_int_eq(pthread_mutex_init(&fa->fa_lock, NULL), 0);
	ck_assert_int_eq(rpc_server_start(&sc, "tcp://127.0.0.1:0", &fa->fa_srv), 0);
}

/* ---- fixture: a manager, a client, two fake agents ---- */

static struct {
	struct mgr *mgr;
	struct rpc_client *cl;
	struct fake_agent a1, a2;
	pthread_t beater;        /* heartbeats the fake agents that are fa_alive */
	bool beater_started;
	atomic_int beater_stop;
	uint64_t probe_seq;      /* subscribe()'s probes: newer each time */
} fx;

static unsigned cap_cfg; /* --max-node-components of the next manager; 0: default */

static void
start_manager(unsigned heartbeat_ms, unsigned down_after_ms)
{
	char *nas[] = { FAKE_NAS };
	struct mgr_config cfg = {
		.mc_listen = "tcp://127.0.0.1:0",
		.mc_events = "tcp://127.0.0.1:0",
		.mc_nas = nas,
		.mc_nnas = 1,
		.mc_heartbeat_ms = heartbeat_ms,
		.mc_down_after_ms = down_after_ms,
		.mc_workers = 4,
		.mc_max_node_comps = cap_cfg,
	};
	struct rpc_error err;
	char why[256];

	memset(&fx, 0, sizeof(fx));
	ck_assert_msg(mgr_start(&cfg, &fx.mgr, why, sizeof(why)) == 0, "%s", why);
	ck_assert_int_eq(rpc_client_open(mgr_url(fx.mgr), &ckpt__v1__manager__descriptor,
			     RPC_CLIENT_DIAL_NOW, 0, &fx.cl, &err), 0);
}

static void
setup(void)
{
	start_manager(200, 60000);
	fake_start(&fx.a1, "dummy_1");
	fake_start(&fx.a2, "dummy_2");
}

static void
setup_fast_down(void)
{
	start_manager(50, 200);
}

static void *beater_main(void *arg);

/*
 * Liveness with a machine that may be busy: the fake agents that must stay up
 * heartbeat from their own thread every 50 ms, as agents do, and down-after
 * is long enough (2 s) that a loaded machine does not miss it; the node that
 * falls silent is down 2 s later, which the test waits for.
 */
static void
setup_failover(void)
{
	start_manager(50, 2000);
	fake_start(&fx.a1, "dummy_1");
	fake_start(&fx.a2, "dummy_2");
	ck_assert_int_eq(pthread_create(&fx.beater, NULL, beater_main, NULL), 0);
	fx.beater_started = true;
}

/* setup_failover() with --max-node-components 2. */
static void
setup_cap(void)
{
	cap_cfg = 2;
	setup_failover();
	cap_cfg = 0;
}

static void
teardown(void)
{
	if (fx.beater_started) {
		atomic_store(&fx.beater_stop, 1);
		pthread_join(fx.beater, NULL);
	}
	rpc_client_close(fx.cl);
	mgr_stop(fx.mgr);
	rpc_server_stop(fx.a1.fa_srv);
	rpc_server_stop(fx.a2.fa_srv);
	pthread_mutex_destroy(&fx.a1.fa_lock);
	pthread_mutex_destroy(&fx.a2.fa_lock);
}

static int
call(unsigned method, const ProtobufCMessage *req, void *ret_reply, struct rpc_error *err)
{
	return rpc_client_call(fx.cl, method, req, CALL_MS, (ProtobufCMessage **)ret_reply, err);
}

/* Attaches node with one component (or none) and lots of room. */
static void
attach(const char *node, const char *address, const char *component)
{
	Ckpt__V1__AttachRequest req = CKPT__V1__ATTACH_REQUEST__INIT;
	Ckpt__V1__Capacity cap = CKPT__V1__CAPACITY__INIT;
	Ckpt__V1__ComponentStatus cs = CKPT__V1__COMPONENT_STATUS__INIT;
	Ckpt__V1__ComponentStatus *csp = &cs;
	Ckpt__V1__AttachReply *rep = NULL;
	struct rpc_error err;

	cap.mem_free_bytes = GIB;
	cap.mem_total_bytes = 2 * GIB;
	cap.cpu_count = 2;
	req.node = (char *)node;
	req.address = (char *)address;
	req.capacity = &cap;
	if (component != NULL) {
		cs.name = (char *)component;
		cs.state = "running";
		cs.kind = "demo";
		cs.state_bytes = 4096;
		req.components = &csp;
		req.n_components = 1;
	}
	ck_assert_msg(call(M_ATTACH, &req.base, &rep, &err) == 0, "%s", err.re_msg);
	ck_assert_uint_eq(rep->n_nas, 1);
	ck_assert_str_eq(rep->nas[0], FAKE_NAS);
	ck_assert_str_eq(rep->events, mgr_events_url(fx.mgr));
	ck_assert_ptr_null(strstr(rep->events, ":0")); /* the bound port */
	rpc_reply_free(&rep->base);
}

static Ckpt__V1__ListNodesReply *
list_nodes(void)
{
	Ckpt__V1__ListNodesRequest req = CKPT__V1__LIST_NODES_REQUEST__INIT;
	Ckpt__V1__ListNodesReply *rep = NULL;
	struct rpc_error err;

	ck_assert_msg(call(M_LIST_NODES, &req.base, &rep, &err) == 0, "%s", err.re_msg);
	return rep;
}

static const Ckpt__V1__NodeInfo *
node_of(const Ckpt__V1__ListNodesReply *rep, const char *id)
{
	for (size_t i = 0; i < rep->n_nodes; i++) {
		if (strcmp(rep->nodes[i]->id, id) == 0)
			return rep->nodes[i];
	}
	return NULL;
}

static const Ckpt__V1__ComponentStatus *
comp_of(const Ckpt__V1__NodeInfo *n, const char *name)
{
	for (size_t i = 0; i < n->n_components; i++) {
		if (strcmp(n->components[i]->name, name) == 0)
			return n->components[i];
	}
	return NULL;
}

struct migrate_job {
	const char *mj_component;
	const char *mj_target;
	int mj_rv;
	struct rpc_error mj_err;
	Ckpt__V1__MigrateReply *mj_rep;
};

static int
migrate(struct migrate_job *j)
{
	Ckpt__V1__MigrateRequest req = CKPT__V1__MIGRATE_REQUEST__INIT;

	req.component = (char *)j->mj_component;
	req.target = (char *)(j->mj_target != NULL ? j->mj_target : "");
	j->mj_rep = NULL;
	j->mj_rv = call(M_MIGRATE, &req.base, &j->mj_rep, &j->mj_err);
	return j->mj_rv;
}

static void *
migrate_thread(void *arg)
{
	migrate(arg);
	return NULL;
}

static void notify(const char *node, const char *component, uint64_t seq);

/*
 * A subscription to the manager's events whose topic starts with su_prefix.
 * PUB drops what it publishes before a subscriber's connection is up, and a
 * busy machine may take any time to get there: subscribe() returns once a
 * probe event (a Notify of probe/sync) came through, and sub_recv() skips
 * the probes.
 */
struct sub {
	struct event_sub *su_sub;
	char su_prefix[EVENT_TOPIC_MAX];
};

#define PROBE_TOPIC "ckpt.stored/probe/sync"

static struct sub *
subscribe(const char *prefix)
{
	struct sub *s = calloc(1, sizeof(*s));
	Ckpt__V1__Event *ev = NULL;
	char topic[EVENT_TOPIC_MAX];
	bool ready = false;

	ck_assert_ptr_nonnull(s);
	snprintf(s->su_prefix, sizeof(s->su_prefix), "%s", prefix);
	char err[256];
	ck_assert_int_eq(event_sub_open(mgr_events_url(fx.mgr), "ckpt.", EVENT_SUB_DIAL_NOW, NULL,
			     &s->su_sub, err, sizeof(err)), 0);
	for (int i = 0; i < 200 && !ready; i++) {
		notify("probe", "sync", ++fx.probe_seq);
		while (!ready && event_sub_recv(s->su_sub, 50, topic, &ev) == 0) {
			ready = strcmp(topic, PROBE_TOPIC) == 0;
			ckpt__v1__event__free_unpacked(ev, NULL);
		}
	}
	ck_assert_msg(ready, "no event came through the subscription in 10 s");
	return s;
}

/* The next event of s's prefix within timeout_ms (event_sub_recv()'s contract). */
static int
sub_recv(struct sub *s, unsigned timeout_ms, char *topic, Ckpt__V1__Event **ret_ev)
{
	uint64_t deadline = util_now_mono_ms() + timeout_ms;
	int rv;

	for (;;) {
		uint64_t now = util_now_mono_ms();
		Ckpt__V1__Event *ev = NULL;

		rv = event_sub_recv(s->su_sub, now < deadline ? (unsigned)(deadline - now) : 0,
		    topic, &ev);
		if (rv == -EBADMSG)
			continue;
		if (rv != 0)
			return rv;
		if (strncmp(topic, s->su_prefix, strlen(s->su_prefix)) == 0 &&
		    strcmp(topic, PROBE_TOPIC) != 0) {
			*ret_ev = ev;
			return 0;
		}
		ckpt__v1__event__free_unpacked(ev, NULL);
	}
}

static void
sub_close(struct sub *s)
{
	event_sub_close(s->su_sub);
	free(s);
}

/* ---- tests ---- */

START_TEST(attach_then_list_nodes_round_trip)
{
	Ckpt__V1__ListNodesReply *rep;
	const Ckpt__V1__NodeInfo *n;

	attach("dummy_2", rpc_server_url(fx.a2.fa_srv), "demo_2");
	attach("dummy_1", rpc_server_url(fx.a1.fa_srv), "demo_1");
	rep = list_nodes();
	ck_assert_uint_eq(rep->n_nodes, 2);
	ck_assert_str_eq(rep->nodes[0]->id, "dummy_1");
	n = rep->nodes[1];
	ck_assert_str_eq(n->id, "dummy_2");
	ck_assert_str_eq(n->state, "up");
	ck_assert_str_eq(n->address, rpc_server_url(fx.a2.fa_srv));
	ck_assert_uint_eq(n->capacity->mem_free_bytes, GIB);
	ck_assert_uint_eq(n->n_components, 1);
	ck_assert_str_eq(n->components[0]->name, "demo_2");
	ck_assert_str_eq(n->components[0]->state, "running");
	ck_assert_uint_ge(n->attached_unix_ms, util_now_unix_ms() - 60000);
	rpc_reply_free(&rep->base);
}
END_TEST

START_TEST(garbage_request_gets_an_error_reply_and_the_service_goes_on)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
	Ckpt__V1__Request env = CKPT__V1__REQUEST__INIT;
	Ckpt__V1__InfoRequest ireq = CKPT__V1__INFO_REQUEST__INIT;
	Ckpt__V1__InfoReply *info = NULL;
	Ckpt__V1__Reply *r;
	struct rpc_error err;
	uint8_t buf[16];
	void *raw = NULL;
	size_t len = 0;

	ck_assert_int_eq(rpc_client_call_raw(fx.cl, garbage, sizeof(garbage), CALL_MS, &raw, &len,
			     &err), 0);
	r = ckpt__v1__reply__unpack(NULL, len, raw);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->code, CKPT__V1__CODE__INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(r->message, "undecodable"));
	ckpt__v1__reply__free_unpacked(r, NULL);
	free(raw);

	/* An unknown method. */
	env.method = 99;
	len = ckpt__v1__request__pack(&env, buf);
	ck_assert_int_eq(rpc_client_call_raw(fx.cl, buf, len, CALL_MS, &raw, &len, &err), 0);
	r = ckpt__v1__reply__unpack(NULL, len, raw);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->code, CKPT__V1__CODE__UNIMPLEMENTED);
	ckpt__v1__reply__free_unpacked(r, NULL);
	free(raw);

	ck_assert_msg(call(M_INFO, &ireq.base, &info, &err) == 0, "%s", err.re_msg);
	ck_assert_str_eq(info->version, "0.1.0");
	ck_assert_str_eq(info->events, mgr_events_url(fx.mgr));
	ck_assert_uint_eq(info->n_nas, 1);
	ck_assert_str_eq(info->nas[0], FAKE_NAS);
	rpc_reply_free(&info->base);
}
END_TEST

/*
 * Agents listening on every interface announce tcp://0.0.0.0:PORT (or
 * [::]); the manager dials the address their connection came from, and a
 * migration between them goes through.
 */
START_TEST(wildcard_address_becomes_the_connection_s_address)
{
	Ckpt__V1__ListNodesReply *rep;
	struct migrate_job j = { .mj_component = "demo_1" };
	char any1[128], any2[128];

	ck_assert_int_eq(url_with_host(rpc_server_url(fx.a1.fa_srv), "0.0.0.0", any1, sizeof(any1)), 0);
	ck_assert_int_eq(url_with_host(rpc_server_url(fx.a2.fa_srv), "::", any2, sizeof(any2)), 0);
	ck_assert_ptr_nonnull(strstr(any2, "tcp://[::]:"));
	attach("dummy_1", any1, "demo_1");
	attach("dummy_2", any2, "demo_2");
	rep = list_nodes();
	ck_assert_uint_eq(rep->n_nodes, 2);
	ck_assert_str_eq(rep->nodes[0]->address, rpc_server_url(fx.a1.fa_srv));
	ck_assert_str_eq(rep->nodes[1]->address, rpc_server_url(fx.a2.fa_srv));
	rpc_reply_free(&rep->base);
	/* The same announcement again keeps the node as it is. */
	attach("dummy_1", any1, "demo_1");
	ck_assert_msg(migrate(&j) == 0, "%s", j.mj_err.re_msg);
	ck_assert_str_eq(j.mj_rep->target, "dummy_2");
	rpc_reply_free(&j.mj_rep->base);
}
END_TEST

START_TEST(attach_rejects_invalid_names_addresses_and_duplicates)
{
	Ckpt__V1__AttachRequest req = CKPT__V1__ATTACH_REQUEST__INIT;
	Ckpt__V1__ComponentStatus cs = CKPT__V1__COMPONENT_STATUS__INIT;
	Ckpt__V1__ComponentStatus *two[] = { &cs, &cs };
	Ckpt__V1__AttachReply *rep = NULL;
	struct rpc_error err;
	char longaddr[300];

	req.node = "bad/name";
	req.address = "tcp://127.0.0.1:5";
	ck_assert_int_eq(call(M_ATTACH, &req.base, &rep, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "invalid node id"));
	req.node = "n1";
	req.address = "";
	ck_assert_int_eq(call(M_ATTACH, &req.base, &rep, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "invalid address"));
	memset(longaddr, 'a', sizeof(longaddr) - 1);
	memcpy(longaddr, "tcp://", 6);
	longaddr[sizeof(longaddr) - 1] = '\0';
	req.address = longaddr;
	ck_assert_int_eq(call(M_ATTACH, &req.base, &rep, &err), -EINVAL);
	req.address = "tcp://127.0.0.1:5";
	cs.name = "c1";
	req.components = two;
	req.n_components = 2;
	ck_assert_int_eq(call(M_ATTACH, &req.base, &rep, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "listed twice"));
	cs.name = "";
	req.n_components = 1;
	ck_assert_int_eq(call(M_ATTACH, &req.base, &rep, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "invalid component name"));
	/* And a valid one still works. */
	attach("n1", "tcp://127.0.0.1:5", NULL);
}
END_TEST

START_TEST(heartbeat_from_an_unknown_node_asks_it_to_reattach)
{
	Ckpt__V1__HeartbeatRequest req = CKPT__V1__HEARTBEAT_REQUEST__INIT;
	Ckpt__V1__HeartbeatReply *rep = NULL;
	struct rpc_error err;

	req.node = "ghost";
	ck_assert_int_eq(call(M_HEARTBEAT, &req.base, &rep, &err), 0);
	ck_assert(rep->reattach);
	rpc_reply_free(&rep->base);
	attach("ghost", "tcp://127.0.0.1:5", NULL);
	ck_assert_int_eq(call(M_HEARTBEAT, &req.base, &rep, &err), 0);
	ck_assert(!rep->reattach);
	rpc_reply_free(&rep->base);
}
END_TEST

START_TEST(notify_is_catalogued_and_published)
{
	Ckpt__V1__NotifyRequest req = CKPT__V1__NOTIFY_REQUEST__INIT;
	Ckpt__V1__CheckpointInfo ci = CKPT__V1__CHECKPOINT_INFO__INIT;
	Ckpt__V1__NotifyReply *nrep = NULL;
	Ckpt__V1__ListCheckpointsRequest lreq = CKPT__V1__LIST_CHECKPOINTS_REQUEST__INIT;
	Ckpt__V1__ListCheckpointsReply *lrep = NULL;
	struct sub *sub = subscribe("ckpt.stored/");
	Ckpt__V1__Event *ev = NULL;
	char topic[EVENT_TOPIC_MAX];
	uint8_t sha[SHA_LEN];
	struct rpc_error err;

	fake_sha("x", sha);
	ci.node = "n1";
	ci.component = "c1";
	ci.seq = 7;
	ci.size = 123;
	ci.sha256.data = sha;
	ci.sha256.len = SHA_LEN;
	req.checkpoint = &ci;
	ck_assert_msg(call(M_NOTIFY, &req.base, &nrep, &err) == 0, "%s", err.re_msg);
	rpc_reply_free(&nrep->base);
	ci.seq = 3; /* older: the catalogue keeps 7 */
	ck_assert_int_eq(call(M_NOTIFY, &req.base, &nrep, &err), 0);
	rpc_reply_free(&nrep->base);

	ck_assert_int_eq(sub_recv(sub, 10000, topic, &ev), 0);
	ck_assert_str_eq(topic, "ckpt.stored/n1/c1");
	ck_assert_str_eq(ev->kind, "stored");
	ck_assert_uint_eq(ev->seq, 7);
	ck_assert_uint_eq(ev->sha256.len, SHA_LEN);
	ck_assert_uint_gt(ev->time_unix_ms, 0);
	ckpt__v1__event__free_unpacked(ev, NULL);
	sub_close(sub);

	lreq.component = "c1";
	ck_assert_int_eq(call(M_LIST_CHECKPOINTS, &lreq.base, &lrep, &err), 0);
	ck_assert_uint_eq(lrep->n_checkpoints, 1);
	ck_assert_uint_eq(lrep->checkpoints[0]->seq, 7);
	ck_assert_uint_eq(lrep->checkpoints[0]->size, 123);
	ck_assert_uint_eq(lrep->checkpoints[0]->digest.len, SHA_LEN);
	ck_assert_mem_eq(lrep->checkpoints[0]->digest.data, sha, SHA_LEN);
	rpc_reply_free(&lrep->base);
	lreq.component = "";
	lreq.node = "other";
	ck_assert_int_eq(call(M_LIST_CHECKPOINTS, &lreq.base, &lrep, &err), 0);
	ck_assert_uint_eq(lrep->n_checkpoints, 0);
	rpc_reply_free(&lrep->base);

	/* A bad digest is refused. */
	ci.sha256.len = 5;
	ck_assert_int_eq(call(M_NOTIFY, &req.base, &nrep, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "digest"));
	ci.sha256.len = 0;
	ci.digest = (ProtobufCBinaryData){ 31, sha };
	ck_assert_int_eq(call(M_NOTIFY, &req.base, &nrep, &err), -EINVAL);
}
END_TEST

START_TEST(two_nodes_swap_their_components_concurrently)
{
	struct migrate_job j1 = { .mj_component = "demo_1" }, j2 = { .mj_component = "demo_2" };
	Ckpt__V1__ListNodesReply *nodes;
	const Ckpt__V1__ComponentStatus *c;
	struct sub *sub;
	Ckpt__V1__Event *ev = NULL;
	char topic[EVENT_TOPIC_MAX];
	uint8_t sha[SHA_LEN];
	pthread_t t1, t2;
	int done = 0;

	attach("dummy_1", rpc_server_url(fx.a1.fa_srv), "demo_1");
	attach("dummy_2", rpc_server_url(fx.a2.fa_srv), "demo_2");
	sub = subscribe("ckpt.migration.");
	ck_assert_int_eq(pthread_create(&t1, NULL, migrate_thread, &j1), 0);
	ck_assert_int_eq(pthread_create(&t2, NULL, migrate_thread, &j2), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	ck_assert_msg(j1.mj_rv == 0, "%s", j1.mj_err.re_msg);
	ck_assert_msg(j2.mj_rv == 0, "%s", j2.mj_err.re_msg);

	ck_assert_str_eq(j1.mj_rep->source, "dummy_1");
	ck_assert_str_eq(j1.mj_rep->target, "dummy_2");
	ck_assert_str_eq(j1.mj_rep->restored_from->node, "dummy_1");
	ck_assert_str_eq(j1.mj_rep->restored_from->component, "demo_1");
	ck_assert_uint_eq(j1.mj_rep->restored_from->seq, 11);
	ck_assert_uint_eq(j1.mj_rep->epoch, 1);
	fake_sha("demo_1", sha);
	ck_assert_uint_eq(j1.mj_rep->state_sha256.len, SHA_LEN);
	ck_assert_mem_eq(j1.mj_rep->state_sha256.data, sha, SHA_LEN);
	ck_assert_str_eq(j2.mj_rep->source, "dummy_2");
	ck_assert_str_eq(j2.mj_rep->target, "dummy_1");
	ck_assert_int_eq(atomic_load(&fx.a1.fa_stops), 1);
	ck_assert_int_eq(atomic_load(&fx.a1.fa_restores), 1);
	rpc_reply_free(&j1.mj_rep->base);
	rpc_reply_free(&j2.mj_rep->base);

	nodes = list_nodes();
	ck_assert_ptr_null(comp_of(node_of(nodes, "dummy_1"), "demo_1"));
	c = comp_of(node_of(nodes, "dummy_1"), "demo_2");
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(c->restored_from);
	ck_assert_str_eq(c->restored_from->node, "dummy_2");
	ck_assert_uint_eq(c->epoch, 1);
	c = comp_of(node_of(nodes, "dummy_2"), "demo_1");
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->restored_from->node, "dummy_1");
	rpc_reply_free(&nodes->base);

	/* started and done for each: 4 events, 2 of them done. */
	while (done < 2 && sub_recv(sub, 10000, topic, &ev) == 0) {
		if (strcmp(ev->kind, "migration.done") == 0) {
			done++;
			ck_assert(strcmp(topic, "ckpt.migration.done/demo_1") == 0 ||
			    strcmp(topic, "ckpt.migration.done/demo_2") == 0);
			ck_assert_str_ne(ev->target, "");
		}
		ckpt__v1__event__free_unpacked(ev, NULL);
	}
	ck_assert_int_eq(done, 2);
	sub_close(sub);

	/* And back: the epoch keeps counting up. */
	j1.mj_target = "dummy_1";
	ck_assert_msg(migrate(&j1) == 0, "%s", j1.mj_err.re_msg);
	ck_assert_str_eq(j1.mj_rep->source, "dummy_2");
	ck_assert_uint_eq(j1.mj_rep->epoch, 2);
	rpc_reply_free(&j1.mj_rep->base);
}
END_TEST

START_TEST(failed_restore_is_rolled_back_to_the_source)
{
	struct migrate_job j = { .mj_component = "demo_1" };
	Ckpt__V1__ListNodesReply *nodes;

	attach("dummy_1", rpc_server_url(fx.a1.fa_srv), "demo_1");
	attach("dummy_2", rpc_server_url(fx.a2.fa_srv), NULL);
	atomic_store(&fx.a2.fa_fail_restore, 1);
	ck_assert_int_eq(migrate(&j), -EBADMSG);
	ck_assert_int_eq(j.mj_err.re_code, CKPT__V1__CODE__DATA_LOSS);
	ck_assert_ptr_nonnull(strstr(j.mj_err.re_msg, "hash mismatch"));
	ck_assert_ptr_nonnull(strstr(j.mj_err.re_msg, "restored back on dummy_1"));
	ck_assert_int_eq(atomic_load(&fx.a1.fa_restores), 1);
	nodes = list_nodes();
	ck_assert_ptr_nonnull(comp_of(node_of(nodes, "dummy_1"), "demo_1"));
	ck_assert_ptr_null(comp_of(node_of(nodes, "dummy_2"), "demo_1"));
	rpc_reply_free(&nodes->base);
	/* The migration is over: another one may start. */
	atomic_store(&fx.a2.fa_fail_restore, 0);
	ck_assert_msg(migrate(&j) == 0, "%s", j.mj_err.re_msg);
	ck_assert_uint_eq(j.mj_rep->epoch, 3); /* 1 to dummy_2 (failed), 2 back, 3 now */
	rpc_reply_free(&j.mj_rep->base);
}
END_TEST

static void
notify(const char *node, const char *component, uint64_t seq)
{
	Ckpt__V1__NotifyRequest req = CKPT__V1__NOTIFY_REQUEST__INIT;
	Ckpt__V1__CheckpointInfo ci = CKPT__V1__CHECKPOINT_INFO__INIT;
	Ckpt__V1__NotifyReply *rep = NULL;
	uint8_t sha[SHA_LEN];
	struct rpc_error err;

	fake_sha(component, sha);
	ci.node = (char *)node;
	ci.component = (char *)component;
	ci.seq = seq;
	ci.size = 64;
	ci.sha256.data = sha;
	ci.sha256.len = SHA_LEN;
	req.checkpoint = &ci;
	ck_assert_msg(call(M_NOTIFY, &req.base, &rep, &err) == 0, "%s", err.re_msg);
	rpc_reply_free(&rep->base);
}

START_TEST(dead_source_is_replaced_from_its_latest_catalogued_checkpoint)
{
	struct migrate_job j = { .mj_component = "demo_1" };
	uint64_t t0;

	attach("dummy_1", rpc_server_url(fx.a1.fa_srv), "demo_1");
	attach("dummy_2", rpc_server_url(fx.a2.fa_srv), NULL);
	notify("dummy_1", "demo_1", 5);
	rpc_server_stop(fx.a1.fa_srv); /* dies before it is marked down */
	fx.a1.fa_srv = NULL;
	t0 = util_now_mono_ms();
	ck_assert_msg(migrate(&j) == 0, "%s", j.mj_err.re_msg);
	ck_assert_uint_lt(util_now_mono_ms() - t0, 5000); /* not the whole Stop time */
	ck_assert_str_eq(j.mj_rep->source, "dummy_1");
	ck_assert_str_eq(j.mj_rep->target, "dummy_2");
	ck_assert_str_eq(j.mj_rep->restored_from->node, "dummy_1");
	ck_assert_uint_eq(j.mj_rep->restored_from->seq, 5);
	ck_assert_int_eq(atomic_load(&fx.a2.fa_restores), 1);
	rpc_reply_free(&j.mj_rep->base);
}
END_TEST

START_TEST(dead_target_fails_fast_and_the_component_goes_back)
{
	struct migrate_job j = { .mj_component = "demo_1", .mj_target = "dummy_2" };
	struct rpc_server_stats st;
	uint64_t t0;

	attach("dummy_1", rpc_server_url(fx.a1.fa_srv), "demo_1");
	attach("dummy_2", rpc_server_url(fx.a2.fa_srv), NULL);
	/*
	 * The manager dials dummy_2 as it attaches: its server stops once that
	 * connection is made, not during its handshake (nng 1.5.2 would leak
	 * it, rpc.h rss_conns).
	 */
	rpc_server_get_stats(fx.a2.fa_srv, &st);
	for (int i = 0; i < 500 && st.rss_conns == 0; i++) {
		util_sleep_ms(10);
		rpc_server_get_stats(fx.a2.fa_srv, &st);
	}
	ck_assert_uint_gt(st.rss_conns, 0); /* the manager dialed dummy_2 */
	rpc_server_stop(fx.a2.fa_srv);
	fx.a2.fa_srv = NULL;
	t0 = util_now_mono_ms();
	ck_assert_int_eq(migrate(&j), -ECONNREFUSED);
	ck_assert_uint_lt(util_now_mono_ms() - t0, 5000);
	ck_assert_int_eq(j.mj_err.re_code, CKPT__V1__CODE__UNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(j.mj_err.re_msg, "restored back on dummy_1"));
	ck_assert_int_eq(atomic_load(&fx.a1.fa_stops), 1);
	ck_assert_int_eq(atomic_load(&fx.a1.fa_restores), 1);
}
END_TEST

START_TEST(second_migration_of_a_component_is_aborted)
{
	struct migrate_job j1 = { .mj_component = "demo_1" }, j2 = { .mj_component = "demo_1" };
	pthread_t t;

	attach("dummy_1", rpc_server_url(fx.a1.fa_srv), "demo_1");
	attach("dummy_2", rpc_server_url(fx.a2.fa_srv), NULL);
	/* The first migration waits in Stop until the second one was refused. */
	atomic_store(&fx.a1.fa_stop_hold, 1);
	ck_assert_int_eq(pthread_create(&t, NULL, migrate_thread, &j1), 0);
	for (int i = 0; i < 1000 && atomic_load(&fx.a1.fa_stops) == 0; i++)
		util_sleep_ms(10);
	ck_assert_int_eq(atomic_load(&fx.a1.fa_stops), 1);
	ck_assert_int_eq(migrate(&j2), -ECANCELED);
	atomic_store(&fx.a1.fa_stop_hold, 0);
	ck_assert_int_eq(j2.mj_err.re_code, CKPT__V1__CODE__ABORTED);
	ck_assert_ptr_nonnull(strstr(j2.mj_err.re_msg, "migration of demo_1 already in progress"));
	pthread_join(t, NULL);
	ck_assert_msg(j1.mj_rv == 0, "%s", j1.mj_err.re_msg);
	rpc_reply_free(&j1.mj_rep->base);
}
END_TEST

START_TEST(migrate_checks_component_and_target)
{
	struct migrate_job j = { .mj_component = "nope" };

	attach("dummy_1", rpc_server_url(fx.a1.fa_srv), "demo_1");
	/* The fixture has no NAS: "not found" cannot be told, the NAS is unavailable. */
	ck_assert_int_eq(migrate(&j), -ECONNREFUSED);
	ck_assert_int_eq(j.mj_err.re_code, CKPT__V1__CODE__UNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(j.mj_err.re_msg, "unknown component nope"));
	ck_assert_ptr_nonnull(strstr(j.mj_err.re_msg, "the NAS could not be asked"));
	j.mj_component = "bad name";
	ck_assert_int_eq(migrate(&j), -EINVAL);
	j.mj_component = "demo_1";
	j.mj_target = "ghost";
	ck_assert_int_eq(migrate(&j), -EINVAL);
	ck_assert_ptr_nonnull(strstr(j.mj_err.re_msg, "unknown target node 'ghost'"));
	j.mj_target = "dummy_1";
	ck_assert_int_eq(migrate(&j), -EINVAL);
	j.mj_target = NULL; /* the only node is the source */
	ck_assert_int_eq(migrate(&j), -ESTALE);
	ck_assert_int_eq(j.mj_err.re_code, CKPT__V1__CODE__FAILED_PRECONDITION);
	ck_assert_ptr_nonnull(strstr(j.mj_err.re_msg, "no healthy node can take demo_1"));
	ck_assert_int_eq(atomic_load(&fx.a1.fa_stops), 0);
}
END_TEST

START_TEST(silent_node_is_marked_down_and_told_to_reattach)
{
	Ckpt__V1__HeartbeatRequest req = CKPT__V1__HEARTBEAT_REQUEST__INIT;
	Ckpt__V1__HeartbeatReply *rep = NULL;
	Ckpt__V1__ListNodesReply *nodes;
	struct sub *sub = subscribe("ckpt.node.");
	Ckpt__V1__Event *ev = NULL;
	char topic[EVENT_TOPIC_MAX];
	struct rpc_error err;
	bool up = false, down = false;

	attach("n1", "tcp://127.0.0.1:5", NULL);
	/* down-after is 200 ms: wait for it to be seen, however busy the machine. */
	for (int i = 0; i < 200; i++) {
		nodes = list_nodes();
		if (strcmp(nodes->nodes[0]->state, "down") == 0)
			break;
		rpc_reply_free(&nodes->base);
		nodes = NULL;
		util_sleep_ms(50);
	}
	ck_assert_ptr_nonnull(nodes);
	ck_assert_uint_ge(nodes->nodes[0]->last_seen_ms_ago, 200);
	rpc_reply_free(&nodes->base);
	while (!(up && down) && sub_recv(sub, 10000, topic, &ev) == 0) {
		if (strcmp(topic, "ckpt.node.up/n1") == 0)
			up = true;
		if (strcmp(topic, "ckpt.node.down/n1") == 0)
			down = strcmp(ev->kind, "node.down") == 0;
		ckpt__v1__event__free_unpacked(ev, NULL);
	}
	ck_assert(up);
	ck_assert(down);
	req.node = "n1";
	ck_assert_int_eq(call(M_HEARTBEAT, &req.base, &rep, &err), 0);
	ck_assert(rep->reattach);
	rpc_reply_free(&rep->base);
	/*
	 * Attached again, it is up (node.up); silent, it will be down again
	 * 200 ms later, so the event says it, not a ListNodes that may come late.
	 */
	attach("n1", "tcp://127.0.0.1:5", NULL);
	up = false;
	while (!up && sub_recv(sub, 10000, topic, &ev) == 0) {
		up = strcmp(topic, "ckpt.node.up/n1") == 0;
		ckpt__v1__event__free_unpacked(ev, NULL);
	}
	ck_assert(up);
	sub_close(sub);
}
END_TEST

/*
 * A heartbeat of fa's node with the components it runs, as an agent sends
 * it; *ret_reattach (may be NULL): the manager asked it to attach again.
 */
static int
fake_heartbeat(struct fake_agent *fa, bool *ret_reattach, struct rpc_error *err)
{
	Ckpt__V1__HeartbeatRequest req = CKPT__V1__HEARTBEAT_REQUEST__INIT;
	Ckpt__V1__HeartbeatReply *rep = NULL;
	Ckpt__V1__ComponentStatus cs[FAKE_COMPS_MAX], *csp[FAKE_COMPS_MAX];
	Ckpt__V1__CheckpointRef refs[FAKE_COMPS_MAX];
	struct fake_comp fc[FAKE_COMPS_MAX];
	int rv;

	pthread_mutex_lock(&fa->fa_lock);
	memcpy(fc, fa->fa_comps, sizeof(fc));
	for (size_t i = 0; i < fa->fa_ncomps; i++) {
		ckpt__v1__component_status__init(&cs[i]);
		cs[i].name = fc[i].fc_name;
		cs[i].state = fc[i].fc_state[0] != '\0' ? fc[i].fc_state : "running";
		cs[i].kind = "demo";
		cs[i].epoch = fc[i].fc_epoch;
		cs[i].pid = fc[i].fc_pid;
		cs[i].restarts = fc[i].fc_restarts;
		cs[i].reason = fc[i].fc_reason;
		if (fc[i].fc_from_node[0] != '\0') {
			ckpt__v1__checkpoint_ref__init(&refs[i]);
			refs[i].node = fc[i].fc_from_node;
			refs[i].component = fc[i].fc_name;
			refs[i].seq = fc[i].fc_from_seq;
			refs[i].sha256.data = fc[i].fc_sha256;
			refs[i].sha256.len = SHA_LEN;
			cs[i].restored_from = &refs[i];
			cs[i].state_sha256 = refs[i].sha256;
		}
		csp[i] = &cs[i];
	}
	req.n_components = fa->fa_ncomps;
	pthread_mutex_unlock(&fa->fa_lock);
	req.node = (char *)fa->fa_node;
	req.components = csp;
	rv = call(M_HEARTBEAT, &req.base, &rep, err);
	if (rv == 0 && ret_reattach != NULL)
		*ret_reattach = rep->reattach;
	if (rv == 0)
		rpc_reply_free(&rep->base);
	return rv;
}

static void *
beater_main(void *arg)
{
	struct rpc_error err;

	(void)arg;
	while (!atomic_load(&fx.beater_stop)) {
		if (atomic_load(&fx.a1.fa_alive))
			fake_heartbeat(&fx.a1, NULL, &err);
		if (atomic_load(&fx.a2.fa_alive))
			fake_heartbeat(&fx.a2, NULL, &err);
		util_sleep_ms(50);
	}
	return NULL;
}

/*
 * Waits (10 s at most) until node lists component (want) or does not (!want);
 * returns the last ListNodes reply.
 */
static Ckpt__V1__ListNodesReply *
wait_comp(const char *node, const char *component, bool want)
{
	Ckpt__V1__ListNodesReply *nodes = NULL;

	for (int i = 0; i < 200; i++) {
		const Ckpt__V1__NodeInfo *n;

		if (nodes != NULL) {
			rpc_reply_free(&nodes->base);
			util_sleep_ms(50);
		}
		nodes = list_nodes();
		n = node_of(nodes, node);
		if (n != NULL && (comp_of(n, component) != NULL) == want)
			break;
	}
	return nodes;
}

static int
cordon(unsigned method, const char *node, bool *ret_was, struct rpc_error *err)
{
	Ckpt__V1__CordonRequest req = CKPT__V1__CORDON_REQUEST__INIT;
	Ckpt__V1__CordonReply *rep = NULL;
	int rv;

	req.node = (char *)node;
	rv = call(method, &req.base, &rep, err);
	if (rv == 0) {
		if (ret_was != NULL)
			*ret_was = rep->was_cordoned;
		rpc_reply_free(&rep->base);
	}
	return rv;
}

START_TEST(silent_node_fails_over_then_is_revoked_drained_and_cordoned)
{
	Ckpt__V1__NotifyRequest nreq = CKPT__V1__NOTIFY_REQUEST__INIT;
	Ckpt__V1__CheckpointInfo ci = CKPT__V1__CHECKPOINT_INFO__INIT;
	Ckpt__V1__NotifyReply *nrep = NULL;
	Ckpt__V1__AttachRequest areq = CKPT__V1__ATTACH_REQUEST__INIT;
	Ckpt__V1__ComponentStatus cs = CKPT__V1__COMPONENT_STATUS__INIT, *csp = &cs;
	Ckpt__V1__AttachReply *arep = NULL;
	Ckpt__V1__DrainRequest dreq = CKPT__V1__DRAIN_REQUEST__INIT;
	Ckpt__V1__DrainReply *drep = NULL;
	Ckpt__V1__ListNodesReply *nodes;
	const Ckpt__V1__ComponentStatus *c;
	struct rpc_error err;
	uint8_t sha[SHA_LEN];
	bool was = true;

	attach("dummy_1", rpc_server_url(fx.a1.fa_srv), "demo_1");
	fake_run(&fx.a1, "demo_1", 0, NULL);
	attach("dummy_2", rpc_server_url(fx.a2.fa_srv), NULL);
	atomic_store(&fx.a2.fa_alive, 1);
	fake_sha("demo_1", sha);
	ci.node = "dummy_1";
	ci.component = "demo_1";
	ci.seq = 5;
	ci.size = 64;
	ci.sha256.data = sha;
	ci.sha256.len = SHA_LEN;
	nreq.checkpoint = &ci;
	ck_assert_int_eq(call(M_NOTIFY, &nreq.base, &nrep, &err), 0);
	rpc_reply_free(&nrep->base);

	/* dummy_1 falls silent; dummy_2 goes on: demo_1 is restored on dummy_2. */
	for (int i = 0; i < 300 && atomic_load(&fx.a2.fa_restores) == 0; i++)
		util_sleep_ms(50);
	ck_assert_int_eq(atomic_load(&fx.a2.fa_restores), 1);
	ck_assert_int_eq(atomic_load(&fx.a1.fa_stops), 0); /* down: not asked */
	/* Restore was called; the manager records it when the reply comes back. */
	nodes = wait_comp("dummy_2", "demo_1", true);
	ck_assert_str_eq(node_of(nodes, "dummy_1")->state, "down");
	c = comp_of(node_of(nodes, "dummy_2"), "demo_1");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_ge(c->epoch, 1);
	ck_assert_uint_eq(c->restored_from->seq, 5);
	rpc_reply_free(&nodes->base);

	/* dummy_1 comes back still running demo_1 with epoch 0: told to stop it. */
	areq.node = "dummy_1";
	areq.address = (char *)rpc_server_url(fx.a1.fa_srv);
	cs.name = "demo_1";
	cs.state = "running";
	cs.kind = "demo";
	areq.components = &csp;
	areq.n_components = 1;
	ck_assert_int_eq(call(M_ATTACH, &areq.base, &arep, &err), 0);
	ck_assert_uint_eq(arep->n_revoked, 1);
	ck_assert_str_eq(arep->revoked[0], "demo_1");
	rpc_reply_free(&arep->base);
	fake_drop(&fx.a1, "demo_1"); /* it stops it, and heartbeats from now on */
	atomic_store(&fx.a1.fa_alive, 1);

	/* Cordon: checks, and the flag in ListNodes. */
	ck_assert_int_eq(cordon(M_CORDON, "ghost", NULL, &err), -ENOENT);
	ck_assert_int_eq(cordon(M_CORDON, "bad name", NULL, &err), -EINVAL);
	ck_assert_int_eq(cordon(M_CORDON, "dummy_1", &was, &err), 0);
	ck_assert(!was);
	nodes = list_nodes();
	ck_assert(node_of(nodes, "dummy_1")->cordoned);
	rpc_reply_free(&nodes->base);
	/* Draining dummy_2 now has nowhere to go: dummy_1 is cordoned. */
	dreq.node = "dummy_2";
	ck_assert_int_eq(call(M_DRAIN, &dreq.base, &drep, &err), 0);
	ck_assert_uint_eq(drep->n_moved, 0);
	ck_assert_uint_eq(drep->n_failed, 1);
	ck_assert_ptr_nonnull(strstr(drep->failed[0]->reason, "cordoned"));
	rpc_reply_free(&drep->base);
	/* Uncordon dummy_1, drain dummy_2: demo_1 moves back. */
	ck_assert_int_eq(cordon(M_UNCORDON, "dummy_1", &was, &err), 0);
	ck_assert(was);
	ck_assert_int_eq(call(M_DRAIN, &dreq.base, &drep, &err), 0);
	ck_assert_msg(drep->n_moved == 1, "moved %zu, failed %zu: %s", drep->n_moved,
	    drep->n_failed, drep->n_failed > 0 ? drep->failed[0]->reason : "");
	ck_assert_str_eq(drep->moved[0]->target, "dummy_1");
	rpc_reply_free(&drep->base);
	nodes = wait_comp("dummy_1", "demo_1", true);
	ck_assert(node_of(nodes, "dummy_2")->cordoned);
	ck_assert_uint_eq(node_of(nodes, "dummy_2")->n_components, 0);
	ck_assert_ptr_nonnull(comp_of(node_of(nodes, "dummy_1"), "demo_1"));
	rpc_reply_free(&nodes->base);
}
END_TEST

/* Sets what fa's heartbeats report of its component 0. */
static void
fake_super(struct fake_agent *fa, const char *state, uint32_t pid, uint32_t restarts,
    const char *reason)
{
	pthread_mutex_lock(&fa->fa_lock);
	snprintf(fa->fa_comps[0].fc_state, sizeof(fa->fa_comps[0].fc_state), "%s", state);
	fa->fa_comps[0].fc_pid = pid;
	fa->fa_comps[0].fc_restarts = restarts;
	snprintf(fa->fa_comps[0].fc_reason, sizeof(fa->fa_comps[0].fc_reason), "%s", reason);
	pthread_mutex_unlock(&fa->fa_lock);
}

START_TEST(restarts_are_published_and_a_failed_component_moves_to_another_node)
{
	Ckpt__V1__NotifyRequest nreq = CKPT__V1__NOTIFY_REQUEST__INIT;
	Ckpt__V1__CheckpointInfo ci = CKPT__V1__CHECKPOINT_INFO__INIT;
	Ckpt__V1__NotifyReply *nrep = NULL;
	Ckpt__V1__ListNodesReply *nodes;
	const Ckpt__V1__ComponentStatus *c;
	struct sub *sub;
	Ckpt__V1__Event *ev = NULL;
	char topic[EVENT_TOPIC_MAX];
	struct rpc_error err;
	uint8_t sha[SHA_LEN];

	attach("dummy_1", rpc_server_url(fx.a1.fa_srv), "demo_1");
	fake_run(&fx.a1, "demo_1", 0, NULL);
	atomic_store(&fx.a1.fa_alive, 1);
	attach("dummy_2", rpc_server_url(fx.a2.fa_srv), NULL);
	atomic_store(&fx.a2.fa_alive, 1);
	fake_sha("demo_1", sha);
	ci.node = "dummy_1";
	ci.component = "demo_1";
	ci.seq = 5;
	ci.size = 64;
	ci.sha256.data = sha;
	ci.sha256.len = SHA_LEN;
	nreq.checkpoint = &ci;
	ck_assert_int_eq(call(M_NOTIFY, &nreq.base, &nrep, &err), 0);
	rpc_reply_free(&nrep->base);
	sub = subscribe("ckpt.component.");

	/* Its process crashed and dummy_1 restarted it: published once, listed. */
	fake_super(&fx.a1, "running", 4321, 1, "");
	ck_assert_int_eq(sub_recv(sub, 10000, topic, &ev), 0);
	ck_assert_str_eq(topic, "ckpt.component.crashed/demo_1");
	ck_assert_str_eq(ev->node, "dummy_1");
	ck_assert_uint_eq(ev->seq, 1);
	ckpt__v1__event__free_unpacked(ev, NULL);
	nodes = list_nodes();
	c = comp_of(node_of(nodes, "dummy_1"), "demo_1");
	ck_assert_uint_eq(c->pid, 4321);
	ck_assert_uint_eq(c->restarts, 1);
	rpc_reply_free(&nodes->base);

	/* dummy_1 gives up: published with the reason (made printable), moved to dummy_2. */
	fake_super(&fx.a1, "failed", 0, 3, "4 failures\x01 in a row");
	ck_assert_int_eq(sub_recv(sub, 10000, topic, &ev), 0);
	ck_assert_str_eq(topic, "ckpt.component.failed/demo_1");
	ck_assert_msg(strstr(ev->message,
			  "failed on node dummy_1 after 3 restarts: 4 failures? in a row") != NULL,
	    "%s", ev->message);
	ckpt__v1__event__free_unpacked(ev, NULL);
	sub_close(sub);
	nodes = wait_comp("dummy_2", "demo_1", true);
	c = comp_of(node_of(nodes, "dummy_2"), "demo_1");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->restored_from->seq, 5);
	rpc_reply_free(&nodes->base);
	ck_assert_int_eq(atomic_load(&fx.a1.fa_restores), 0); /* never back where it failed */
	ck_assert_int_eq(atomic_load(&fx.a1.fa_stops), 0);
	/* dummy_1's failed copy, at the older epoch, is no longer its. */
	nodes = wait_comp("dummy_1", "demo_1", false);
	ck_assert_ptr_null(comp_of(node_of(nodes, "dummy_1"), "demo_1"));
	rpc_reply_free(&nodes->base);
}
END_TEST

/* Attaches node running the components named (no instance); call()'s result. */
static int
attach_running(const char *node, const char *address, const char *const *names, size_t n,
    size_t *ret_nrevoked, struct rpc_error *err)
{
	Ckpt__V1__AttachRequest req = CKPT__V1__ATTACH_REQUEST__INIT;
	Ckpt__V1__Capacity cap = CKPT__V1__CAPACITY__INIT;
	Ckpt__V1__ComponentStatus cs[FAKE_COMPS_MAX], *csp[FAKE_COMPS_MAX];
	Ckpt__V1__AttachReply *rep = NULL;
	int rv;

	ck_assert_uint_le(n, FAKE_COMPS_MAX);
	cap.mem_free_bytes = GIB;
	cap.mem_total_bytes = 2 * GIB;
	cap.cpu_count = 2;
	for (size_t i = 0; i < n; i++) {
		ckpt__v1__component_status__init(&cs[i]);
		cs[i].name = (char *)names[i];
		cs[i].state = "running";
		cs[i].kind = "demo";
		cs[i].epoch = 1;
		csp[i] = &cs[i];
	}
	req.node = (char *)node;
	req.address = (char *)address;
	req.capacity = &cap;
	req.components = csp;
	req.n_components = n;
	rv = call(M_ATTACH, &req.base, &rep, err);
	if (rv == 0) {
		*ret_nrevoked = rep->n_revoked;
		rpc_reply_free(&rep->base);
	}
	return rv;
}

/* The number of components ListNodes shows node with; -1: unknown node, -2: not up. */
static int
listed_count(const char *node)
{
	Ckpt__V1__ListNodesReply *nodes = list_nodes();
	const Ckpt__V1__NodeInfo *n = node_of(nodes, node);
	int k = n == NULL ? -1 : strcmp(n->state, "up") != 0 ? -2 : (int)n->n_components;

	rpc_reply_free(&nodes->base);
	return k;
}

/*
 * --max-node-components 2. A node whose heartbeats report more than the cap
 * (as a resume could make it before c907759; here its agent just reports a
 * third) has them taken: answered, not asked to attach again,
 * listed; nothing more is placed there. When it attaches again with what it
 * runs (a blip past down-after, a manager asking), the attach is taken too:
 * refusing it would move everything it runs, and the agent, refused, would
 * keep trying, never told to stop its copies. An attach that brings a
 * component it was not taken with, or a new node over the cap, is refused
 * (limit node_components) and leaves nothing behind. Before the fix the
 * attach again was refused.
 */
START_TEST(a_node_taken_over_the_cap_keeps_its_heartbeats_and_may_attach_again)
{
	const char *three[] = { "c1", "c2", "c3" }, *four[] = { "c1", "c2", "c3", "c4" };
	const char *others[] = { "e1", "e2", "e3" };
	struct migrate_job j = { .mj_component = "d1", .mj_target = "dummy_1" };
	Ckpt__V1__ListNodesReply *nodes;
	struct rpc_error err;
	bool reattach = true;
	size_t nrev = 99;

	attach("dummy_1", rpc_server_url(fx.a1.fa_srv), "c1");
	fake_run(&fx.a1, "c1", 1, NULL);
	attach("dummy_2", rpc_server_url(fx.a2.fa_srv), "d1");
	fake_run(&fx.a2, "d1", 1, NULL);
	atomic_store(&fx.a2.fa_alive, 1);
	fake_run(&fx.a1, "c2", 1, NULL);
	fake_run(&fx.a1, "c3", 1, NULL);
	ck_assert_msg(fake_heartbeat(&fx.a1, &reattach, &err) == 0, "%s", err.re_msg);
	ck_assert(!reattach);
	ck_assert_int_eq(listed_count("dummy_1"), 3);
	atomic_store(&fx.a1.fa_alive, 1);

	ck_assert_int_eq(migrate(&j), -ESTALE);
	ck_assert_msg(strstr(j.mj_err.re_msg, "target node dummy_1 runs 3 components, the most a "
					      "node takes") != NULL, "%s", j.mj_err.re_msg);

	ck_assert_msg(attach_running("dummy_1", rpc_server_url(fx.a1.fa_srv), three, 3, &nrev,
			  &err) == 0, "%s", err.re_msg);
	ck_assert_uint_eq(nrev, 0);
	ck_assert_int_eq(listed_count("dummy_1"), 3);
	nodes = wait_comp("dummy_2", "d1", true);
	rpc_reply_free(&nodes->base);

	ck_assert_int_eq(attach_running("dummy_1", rpc_server_url(fx.a1.fa_srv), four, 4, &nrev,
			     &err), -ENOSPC);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__RESOURCE_EXHAUSTED);
	ck_assert_msg(strstr(err.re_msg, "node_components") != NULL, "%s", err.re_msg);
	ck_assert_int_eq(listed_count("dummy_1"), 3);
	ck_assert_int_ne(attach_running("dummy_3", rpc_server_url(fx.a2.fa_srv), others, 3, &nrev,
			     &err), 0);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__RESOURCE_EXHAUSTED);
	ck_assert_int_eq(listed_count("dummy_3"), -1);
}
END_TEST

static Suite *
service_suite(void)
{
	Suite *s = suite_create("manager_service");
	TCase *tc = tcase_create("rpc");
	TCase *td = tcase_create("liveness");
	TCase *tf;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, attach_then_list_nodes_round_trip);
	tcase_add_test(tc, garbage_request_gets_an_error_reply_and_the_service_goes_on);
	tcase_add_test(tc, attach_rejects_invalid_names_addresses_and_duplicates);
	tcase_add_test(tc, heartbeat_from_an_unknown_node_asks_it_to_reattach);
	tcase_add_test(tc, notify_is_catalogued_and_published);
	tcase_add_test(tc, two_nodes_swap_their_components_concurrently);
	tcase_add_test(tc, wildcard_address_becomes_the_connection_s_address);
	tcase_add_test(tc, failed_restore_is_rolled_back_to_the_source);
	tcase_add_test(tc, dead_source_is_replaced_from_its_latest_catalogued_checkpoint);
	tcase_add_test(tc, dead_target_fails_fast_and_the_component_goes_back);
	tcase_add_test(tc, second_migration_of_a_component_is_aborted);
	tcase_add_test(tc, migrate_checks_component_and_target);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(td, setup_fast_down, teardown);
	tcase_set_timeout(td, 30);
	tcase_add_test(td, silent_node_is_marked_down_and_told_to_reattach);
	suite_add_tcase(s, td);
	tf = tcase_create("failover");
	tcase_add_checked_fixture(tf, setup_failover, teardown);
	tcase_set_timeout(tf, 30);
	tcase_add_test(tf, silent_node_fails_over_then_is_revoked_drained_and_cordoned);
	tcase_add_test(tf, restarts_are_published_and_a_failed_component_moves_to_another_node);
	suite_add_tcase(s, tf);
	tf = tcase_create("cap");
	tcase_add_checked_fixture(tf, setup_cap, teardown);
	tcase_set_timeout(tf, 30);
	tcase_add_test(tf, a_node_taken_over_the_cap_keeps_its_heartbeats_and_may_attach_again);
	suite_add_tcase(s, tf);
	return s;
}

int
main(void)
{
	return test_run(service_suite());
}

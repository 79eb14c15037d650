/* fz_cluster: a NAS, a manager and an agent in one process (see fz_cluster.h). */
#define _XOPEN_SOURCE_EXTENDED 1
#include "fz_cluster.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "ckpt/v1/agent.pb-c.h"
#include "ckpt/v1/manager.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "methods.h"
#include "mgr.h"
#include "nas.h"
#include "rpc.h"
#include "store.h"

#define FZ_ATTACH_WAIT_MS 20000u

static int
fz_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
fz_die(const char *who, const char *what, const char *why)
{
	fprintf(stderr, "%s: %s: %s\n", who, what, why);
	abort();
}

/* fz_call() that also says the reply's message in msg. */
static int
fz_call_why(struct rpc_server *s, const ProtobufCServiceDescriptor *service, unsigned method,
    const uint8_t *body, size_t len, char *msg, size_t msglen)
{
	Ckpt__V1__Request env = CKPT__V1__REQUEST__INIT;
	Ckpt__V1__Reply *rep;
	nng_msg *reply = NULL;
	uint8_t *buf;
	size_t n;
	int code = -1;

	env.service = (char *)service->name;
	env.method = method;
	env.timeout_ms = FZ_CALL_TIMEOUT_MS;
	env.body.data = (uint8_t *)body;
	env.body.len = len;
	n = ckpt__v1__request__get_packed_size(&env);
	buf = malloc(n);
	if (buf == NULL)
		abort();
	ckpt__v1__request__pack(&env, buf);
	if (rpc_server_dispatch(s, buf, n, &reply) == 0 && reply != NULL) {
		rep = ckpt__v1__reply__unpack(NULL, nng_msg_len(reply), nng_msg_body(reply));
		if (rep == NULL)
			fz_die("fz_call", service->methods[method % service->n_methods].name,
			    "the reply does not decode");
		code = (int)rep->code;
		snprintf(msg, msglen, "%s", rep->message);
		ckpt__v1__reply__free_unpacked(rep, NULL);
		nng_msg_free(reply);
	}
	free(buf);
	return code;
}

int
fz_call(struct rpc_server *s, const ProtobufCServiceDescriptor *service, unsigned method,
    const uint8_t *body, size_t len)
{
	char msg[RPC_ERRMSG_MAX] = "";
	int code = fz_call_why(s, service, method, body, len, msg, sizeof(msg));

	/* CKPT_FUZZ_LOG: what each request got (checking seeds by hand). */
	if (getenv("CKPT_FUZZ_LOG") != NULL)
		fprintf(stderr, "fz_call: %s.%s: code %d %s\n", service->short_name,
		    method < service->n_methods ? service->methods[method].name : "(unknown)", code,
		    msg);
	return code;
}

int
fz_call_msg(struct rpc_server *s, const ProtobufCServiceDescriptor *service, unsigned method,
    const ProtobufCMessage *req, int want)
{
	size_t n = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = malloc(n + 1);
	char msg[RPC_ERRMSG_MAX] = "";
	int code;

	if (buf == NULL)
		abort();
	protobuf_c_message_pack(req, buf);
	code = fz_call_why(s, service, method, buf, n, msg, sizeof(msg));
	free(buf);
	if (want >= 0 && code != want) {
		char why[RPC_ERRMSG_MAX + 64];
		snprintf(why, sizeof(why), "code %d, want %d: %s", code, want, msg);
		fz_die("fz_cluster", service->methods[method].name, why);
	}
	return code;
}

/* The catalogue lists the agent's checkpoint of FZ_DEMO (its Notify is sent in the background). */
static int
fz_wait_catalogue(struct fz_cluster *c)
{
	for (unsigned i = 0; i < FZ_ATTACH_WAIT_MS / 10; i++) {
		Ckpt__V1__ListCheckpointsRequest req = CKPT__V1__LIST_CHECKPOINTS_REQUEST__INIT;
		Ckpt__V1__Request env = CKPT__V1__REQUEST__INIT;
		Ckpt__V1__Reply *rep;
		Ckpt__V1__ListCheckpointsReply *lr;
		nng_msg *reply = NULL;
		uint8_t body[64], buf[128];
		size_t n = 0;
		struct timespec ts = { 0, 10 * 1000000L };

		req.component = FZ_DEMO;
		env.method = MGR_LIST_CHECKPOINTS;
		env.body.data = body;
		env.body.len = ckpt__v1__list_checkpoints_request__pack(&req, body);
		if (rpc_server_dispatch(mgr_rpc_server(c->fc_mgr), buf,
			ckpt__v1__request__pack(&env, buf), &reply) == 0) {
			rep = ckpt__v1__reply__unpack(NULL, nng_msg_len(reply), nng_msg_body(reply));
			lr = rep != NULL && rep->code == CKPT__V1__CODE__OK ?
			    ckpt__v1__list_checkpoints_reply__unpack(NULL, rep->body.len,
				rep->body.data) : NULL;
			if (lr != NULL)
				n = lr->n_checkpoints;
			if (lr != NULL)
				ckpt__v1__list_checkpoints_reply__free_unpacked(lr, NULL);
			if (rep != NULL)
				ckpt__v1__reply__free_unpacked(rep, NULL);
			nng_msg_free(reply);
		}
		if (n > 0)
			return 0;
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* Two nodes that never answer (ipc:// files that do not exist), one running a component. */
static void
fz_ghosts(struct fz_cluster *c)
{
	static const char *const nodes[] = { "fz-ghost-a", "fz-ghost-b" };
	Ckpt__V1__Label lab = CKPT__V1__LABEL__INIT;
	Ckpt__V1__Label *labs[] = { &lab };
	Ckpt__V1__ComponentStatus cs = CKPT__V1__COMPONENT_STATUS__INIT;
	Ckpt__V1__ComponentStatus *comps[] = { &cs };

	lab.key = "zone";
	lab.value = "a";
	cs.name = "fz-ghost-comp";
	cs.state = "running";
	cs.kind = "demo";
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		Ckpt__V1__AttachRequest at = CKPT__V1__ATTACH_REQUEST__INIT;
		char addr[64];

		snprintf(addr, sizeof(addr), "ipc://%s.sock", nodes[i]);
		at.node = (char *)nodes[i];
		at.address = addr;
		at.instance = 1 + i;
		at.labels = labs;
		at.n_labels = 1;
		if (i == 0) {
			at.components = comps;
			at.n_components = 1;
		}
		fz_call_msg(mgr_rpc_server(c->fc_mgr), &ckpt__v1__manager__descriptor, MGR_ATTACH,
		    &at.base, CKPT__V1__CODE__OK);
	}
}

struct fz_cluster *
fz_cluster_new(const char *who)
{
	static const char *const labels_k[] = { "zone" };
	struct fz_cluster *c = calloc(1, sizeof(*c));
	char nas_url[96], mgr_url[96], ev_url[96], agent_url[96];
	char *nas_urls[1] = { nas_url };
	struct store_config sc = { 0 };
	struct nas_config nc = { 0 };
	struct mgr_config mc = { 0 };
	struct agent_config ac = { 0 };
	struct agent_label al = { labels_k[0], "b" };
	struct store_error serr;
	char err[512];
	char *dir;

	if (c == NULL)
		abort();
	log_init(who, NULL, getenv("CKPT_FUZZ_LOG") != NULL ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	snprintf(c->fc_dir, sizeof(c->fc_dir), "/tmp/ckpt-fuzz-%s-XXXXXX", who);
	dir = c->fc_dir;
	if (mkdtemp(dir) == NULL)
		fz_die(who, "mkdtemp", "cannot make the temporary folder");
	snprintf(nas_url, sizeof(nas_url), "ipc://%s/nas.sock", dir);
	snprintf(mgr_url, sizeof(mgr_url), "ipc://%s/mgr.sock", dir);
	snprintf(ev_url, sizeof(ev_url), "ipc://%s/events.sock", dir);
	snprintf(agent_url, sizeof(agent_url), "ipc://%s/agent.sock", dir);

	sc.sc_dir = dir;
	sc.sc_map_size = 1u << 20;
	sc.sc_map_max = 64u << 20;
	sc.sc_keep = 3;
	if (store_open(&sc, &c->fc_store, NULL, &serr) != 0)
		fz_die(who, "store_open", serr.se_msg);
	nc.nc_listen = nas_url;
	nc.nc_workers = 2;
	nc.nc_keep = 3;
	if (nas_start(&nc, c->fc_store, &c->fc_nas) != 0)
		fz_die(who, "nas_start", nas_url);

	mc.mc_listen = mgr_url;
	mc.mc_events = ev_url;
	mc.mc_nas = nas_urls;
	mc.mc_nnas = 1;
	mc.mc_heartbeat_ms = 500;
	mc.mc_down_after_ms = 600000; /* no node goes down on its own during a run */
	mc.mc_workers = 2;
	if (mgr_start(&mc, &c->fc_mgr, err, sizeof(err)) != 0)
		fz_die(who, "mgr_start", err);

	ac.ac_node = FZ_NODE;
	ac.ac_manager = mgr_url;
	ac.ac_listen = agent_url;
	ac.ac_labels = &al;
	ac.ac_nlabels = 1;
	ac.ac_interval_ms = 3600000; /* checkpoints come from requests only */
	ac.ac_workers = 2;
	ac.ac_queue_max_set = true;
	ac.ac_queue_max = 1u << 20;
	ac.ac_fresh = true;
	ac.ac_local_dir = dir;
	if (agent_new(&ac, &c->fc_agent, err, sizeof(err)) != 0)
		fz_die(who, "agent_new", err);
	if (agent_add_demo(c->fc_agent, FZ_DEMO, 8192, err, sizeof(err)) != 0)
		fz_die(who, "agent_add_demo", err);
	if (agent_start(c->fc_agent, err, sizeof(err)) != 0)
		fz_die(who, "agent_start", err);
	if (!agent_wait_attached(c->fc_agent, FZ_ATTACH_WAIT_MS))
		fz_die(who, "agent", "did not attach to the manager");
	{
		Ckpt__V1__CheckpointNowRequest req = CKPT__V1__CHECKPOINT_NOW_REQUEST__INIT;
		req.component = FZ_DEMO;
		fz_call_msg(agent_rpc_server(c->fc_agent), &ckpt__v1__agent__descriptor,
		    AGENT_CHECKPOINT_NOW, &req.base, CKPT__V1__CODE__OK);
	}
	if (fz_wait_catalogue(c) != 0)
		fz_die(who, "manager", "the agent's checkpoint did not reach the catalogue");
	fz_ghosts(c);
	return c;
}

size_t
fz_cluster_reset_every(size_t def)
{
	const char *s = getenv("CKPT_FUZZ_RESET");
	size_t n = s != NULL ? strtoul(s, NULL, 10) : 0;

	return n > 0 ? n : def;
}

void
fz_cluster_free(struct fz_cluster *c)
{
	if (c == NULL)
		return;
	agent_free(c->fc_agent); /* stops it */
	mgr_stop(c->fc_mgr);
	nas_stop(c->fc_nas);
	store_close(c->fc_store);
	nftw(c->fc_dir, fz_rm, 16, FTW_DEPTH | FTW_PHYS);
	free(c);
}

struct rpc_server *
fz_cluster_mgr_server(struct fz_cluster *c)
{
	return mgr_rpc_server(c->fc_mgr);
}

struct rpc_server *
fz_cluster_agent_server(struct fz_cluster *c)
{
	return agent_rpc_server(c->fc_agent);
}

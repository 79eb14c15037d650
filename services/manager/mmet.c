#include "mmet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "log.h"
#include "methods.h"
#include "util.h"

enum mmet_fam {
	MMET_NODES,
	MMET_CORDONED,
	MMET_PENDING,
	MMET_QUEUED,
	MMET_DROPPED,
	MMET_NOTIFIED,
	MMET_AGE,
	MMET_MIGRATIONS,
	MMET_MIG_SECONDS,
	MMET_COMPONENTS,
	MMET_RESTARTS,
	MMET_FAMS
};

struct mmet {
	struct reg *o_reg;
	struct nasc *o_nasc;
	struct metrics *o_metrics;
	struct health *o_health;
	struct metrics_fam *o_fam[MMET_FAMS];
};

static const struct {
	enum metrics_type type;
	const char *name, *help, *labels;
} mmet_fams[MMET_FAMS] = {
	[MMET_NODES] = { METRICS_GAUGE, "ckpt_manager_nodes", "Nodes known, by state (up, down)",
	    "state" },
	[MMET_CORDONED] = { METRICS_GAUGE, "ckpt_manager_nodes_cordoned",
	    "Nodes cordoned (they take no component)", NULL },
	[MMET_PENDING] = { METRICS_GAUGE, "ckpt_manager_pending_components",
	    "Components waiting for a node (failover or resume not done yet)", NULL },
	[MMET_QUEUED] = { METRICS_GAUGE, "ckpt_manager_node_queued_checkpoints",
	    "Checkpoints waiting in an agent's queue for the NAS, as of its last heartbeat", "node" },
	[MMET_DROPPED] = { METRICS_COUNTER, "ckpt_manager_node_queue_dropped_total",
	    "Checkpoints an agent's queue dropped (the NAS was away too long), as of its last "
	    "heartbeat", "node" },
	[MMET_NOTIFIED] = { METRICS_COUNTER, "ckpt_manager_checkpoints_notified_total",
	    "Checkpoints stored on the NAS and notified to the manager, by component", "component" },
	[MMET_AGE] = { METRICS_GAUGE, "ckpt_manager_checkpoint_age_seconds",
	    "Age of the newest checkpoint of each component (the work a failure would lose now)",
	    "component,node" },
	[MMET_MIGRATIONS] = { METRICS_COUNTER, "ckpt_manager_migrations_total",
	    "Moves of a component ended, by kind (migration, drain, failover, resume) and result "
	    "(ok, failed)", "kind,result" },
	[MMET_MIG_SECONDS] = { METRICS_HISTOGRAM, "ckpt_manager_migration_duration_seconds",
	    "Duration of the moves of a component, by kind", "kind" },
	[MMET_COMPONENTS] = { METRICS_GAUGE, "ckpt_manager_components",
	    "Components the nodes report, by state (running, stopped, restoring, failed...)",
	    "state" },
	[MMET_RESTARTS] = { METRICS_COUNTER, "ckpt_manager_component_restarts_total",
	    "Restarts of a component after a crash on its node (supervision), as the node "
	    "reports them", "component,node" },
};

static void
mmet_collect(void *arg, struct metrics *m)
{
	struct mmet *o = arg;
	struct reg_node_view *nodes = NULL;
	struct reg_ckpt *ck = NULL;
	size_t nn = 0, nk = 0, up = 0, cordoned = 0, pending = 0;
	uint64_t now = util_now_unix_ms();

	(void)m;
	if (reg_nodes(o->o_reg, &nodes, &nn) == 0) {
		metrics_clear(o->o_fam[MMET_QUEUED]);
		metrics_clear(o->o_fam[MMET_RESTARTS]);
		metrics_clear(o->o_fam[MMET_COMPONENTS]);
		metrics_set(o->o_fam[MMET_COMPONENTS], 0, METRICS_L("running"));
		metrics_set(o->o_fam[MMET_COMPONENTS], 0, METRICS_L(REG_STATE_FAILED));
		for (size_t i = 0; i < nn; i++) {
			for (size_t j = 0; j < nodes[i].rn_ncomps; j++) {
				const struct reg_comp *c = &nodes[i].rn_comps[j];

				metrics_inc(o->o_fam[MMET_COMPONENTS], 1, METRICS_L(c->rc_state));
				metrics_set(o->o_fam[MMET_RESTARTS], c->rc_restarts,
				    METRICS_L(c->rc_name, nodes[i].rn_id));
			}
			up += nodes[i].rn_up;
			cordoned += nodes[i].rn_cordoned;
			pending += nodes[i].rn_npending;
			metrics_set(o->o_fam[MMET_QUEUED], nodes[i].rn_queued, METRICS_L(nodes[i].rn_id));
			metrics_set(o->o_fam[MMET_DROPPED], (double)nodes[i].rn_queue_dropped,
			    METRICS_L(nodes[i].rn_id));
		}
		reg_nodes_free(nodes, nn);
		metrics_set(o->o_fam[MMET_NODES], (double)up, METRICS_L("up"));
		metrics_set(o->o_fam[MMET_NODES], (double)(nn - up), METRICS_L("down"));
		metrics_set(o->o_fam[MMET_CORDONED], (double)cordoned, NULL, 0);
		metrics_set(o->o_fam[MMET_PENDING], (double)pending, NULL, 0);
	}
	if (reg_checkpoints(o->o_reg, NULL, NULL, &ck, &nk) == 0) {
		metrics_clear(o->o_fam[MMET_AGE]);
		for (size_t i = 0; i < nk; i++) {
			uint64_t created = ck[i].rk_created_unix_ms;
			double age = created != 0 && now > created ? (double)(now - created) / 1000.0 : 0;

			metrics_set(o->o_fam[MMET_AGE], age,
			    METRICS_L(ck[i].rk_component, ck[i].rk_node));
		}
		free(ck);
	}
}

/* /readyz: at least one NAS answers. */
static int
mmet_ready(void *arg, char *why, size_t len)
{
	struct mmet *o = arg;
	Ckpt__V1__StatRequest req = CKPT__V1__STAT_REQUEST__INIT;
	ProtobufCMessage *reply = NULL;
	struct rpc_error err;
	int rv;

	rv = nasc_call(o->o_nasc, NAS_STAT, &req.base, MMET_NAS_PROBE_MS, &reply, &err);
	if (rv != 0) {
		snprintf(why, len, "no NAS answers: %s", err.re_msg);
		return rv;
	}
	rpc_reply_free(reply);
	return 0;
}

/* metrics_on_full(): a family stopped taking new series (one per component, node). */
static void
mmet_full(void *arg, const char *family, size_t max)
{
	(void)arg;
	LOG_WARN("metrics: %s has its %zu series; new ones are not counted (counted in "
	    "ckpt_metrics_series_dropped_total; --metrics-series-max)", family, max);
}

int
mmet_new(struct reg *reg, struct nasc *nasc, size_t series_max, struct mmet **ret_mmet)
{
	struct mmet *o = calloc(1, sizeof(*o));
	int rv;

	if (o == NULL)
		return -ENOMEM;
	o->o_reg = reg;
	o->o_nasc = nasc;
	rv = metrics_new(&o->o_metrics);
	if (rv == 0)
		metrics_on_full(o->o_metrics, mmet_full, NULL);
	for (size_t i = 0; rv == 0 && i < MMET_FAMS; i++)
		rv = metrics_add_family(o->o_metrics, mmet_fams[i].type, mmet_fams[i].name,
		    mmet_fams[i].help, mmet_fams[i].labels, metrics_latency_buckets,
		    metrics_latency_nbuckets, &o->o_fam[i]);
	for (size_t i = 0; rv == 0 && series_max != 0 && i < MMET_FAMS; i++) {
		const char *l = mmet_fams[i].labels;
		/* a series per component or node: as many as the fleet has */
		if (l != NULL && (strstr(l, "component") != NULL || strstr(l, "node") != NULL))
			rv = metrics_set_series_max(o->o_fam[i], series_max);
	}
	if (rv == 0)
		rv = metrics_add_collector(o->o_metrics, mmet_collect, o);
	if (rv != 0) {
		mmet_free(o);
		return rv;
	}
	*ret_mmet = o;
	return 0;
}

struct metrics *
mmet_registry(struct mmet *o)
{
	return o != NULL ? o->o_metrics : NULL;
}

int
mmet_serve(struct mmet *o, const char *url, char *err, size_t errlen)
{
	struct health_config hc = { url, o->o_metrics, mmet_ready, o };

	return health_start(&hc, &o->o_health, err, errlen);
}

const char *
mmet_url(const struct mmet *o)
{
	return health_url(o->o_health);
}

void
mmet_notified(struct mmet *o, const char *component)
{
	if (o != NULL)
		metrics_inc(o->o_fam[MMET_NOTIFIED], 1, METRICS_L(component));
}

void
mmet_migration(struct mmet *o, const char *kind, int rv, uint64_t ms)
{
	if (o == NULL)
		return;
	metrics_inc(o->o_fam[MMET_MIGRATIONS], 1, METRICS_L(kind, rv == 0 ? "ok" : "failed"));
	metrics_observe(o->o_fam[MMET_MIG_SECONDS], (double)ms / 1000.0, METRICS_L(kind));
}

void
mmet_free(struct mmet *o)
{
	if (o == NULL)
		return;
	health_stop(o->o_health);
	metrics_free(o->o_metrics);
	free(o);
}

#include "amet.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "health.h"
#include "log.h"
#include "methods.h"
#include "rate.h"
#include "util.h"

enum amet_fam {
	AMET_ATTACHED,
	AMET_RUNNING,
	AMET_STORED,
	AMET_FAILED,
	AMET_LAST,
	AMET_AGE,
	AMET_INTERVAL,
	AMET_QUEUE_ITEMS,
	AMET_QUEUE_BYTES,
	AMET_QUEUE_MAX,
	AMET_QUEUE_DROPPED,
	AMET_CKPT_BYTES,
	AMET_SENT,
	AMET_RECEIVED,
	AMET_RATE_WAIT,
	AMET_SERVER_REFUSED,
	AMET_HASHED,
	AMET_REUSED,
	AMET_STORE_RETRIES,
	AMET_FAMS
};

static const struct {
	enum metrics_type type;
	const char *name, *help, *labels;
} amet_fams[AMET_FAMS] = {
	[AMET_ATTACHED] = { METRICS_GAUGE, "ckpt_agent_attached",
	    "1 while the agent is attached to the manager (heartbeats answered), else 0", NULL },
	[AMET_RUNNING] = { METRICS_GAUGE, "ckpt_agent_components_running",
	    "Components running on this node", NULL },
	[AMET_STORED] = { METRICS_COUNTER, "ckpt_agent_checkpoints_stored_total",
	    "Checkpoints stored on the NAS, by component", "component" },
	[AMET_FAILED] = { METRICS_COUNTER, "ckpt_agent_checkpoints_failed_total",
	    "Checkpoints that failed (neither stored nor queued), by component", "component" },
	[AMET_LAST] = { METRICS_GAUGE, "ckpt_agent_checkpoint_last_success_timestamp_seconds",
	    "Unix time of the last checkpoint of each component this agent stored", "component" },
	[AMET_AGE] = { METRICS_GAUGE, "ckpt_agent_checkpoint_age_seconds",
	    "Seconds since the last checkpoint of each component this agent stored", "component" },
	[AMET_INTERVAL] = { METRICS_GAUGE, "ckpt_agent_checkpoint_interval_seconds",
	    "Configured checkpoint interval of each running component (its spec's, else the "
	    "agent's)", "component" },
	[AMET_QUEUE_ITEMS] = { METRICS_GAUGE, "ckpt_agent_queue_checkpoints",
	    "Checkpoints waiting in the local queue for the NAS", NULL },
	[AMET_QUEUE_BYTES] = { METRICS_GAUGE, "ckpt_agent_queue_bytes",
	    "Bytes waiting in the local queue for the NAS", NULL },
	[AMET_QUEUE_MAX] = { METRICS_GAUGE, "ckpt_agent_queue_max_bytes",
	    "The queue's limit (--queue-max); beyond it the oldest are dropped", NULL },
	[AMET_QUEUE_DROPPED] = { METRICS_COUNTER, "ckpt_agent_queue_dropped_total",
	    "Queued checkpoints dropped to make room (the NAS was away too long)", NULL },
	[AMET_CKPT_BYTES] = { METRICS_COUNTER, "ckpt_agent_checkpoint_bytes_total",
	    "Logical bytes of the checkpoints stored through the current NAS client", NULL },
	[AMET_SENT] = { METRICS_COUNTER, "ckpt_agent_sent_bytes_total",
	    "Chunk bytes sent to the NAS (after dedup and compression), current NAS client", NULL },
	[AMET_RECEIVED] = { METRICS_COUNTER, "ckpt_agent_received_bytes_total",
	    "Chunk bytes read from the NAS (restores), current NAS client", NULL },
	[AMET_RATE_WAIT] = { METRICS_COUNTER, "ckpt_agent_upload_rate_wait_seconds_total",
	    "Time uploads waited for the --upload-rate cap (0 without a cap)", NULL },
	[AMET_SERVER_REFUSED] = { METRICS_COUNTER, "ckpt_auth_server_refused_total",
	    "Calls refused because the NAS or manager dialled did not prove the expected identity "
	    "(auth.proto 1b)", NULL },
	[AMET_HASHED] = { METRICS_COUNTER, "ckpt_agent_hashed_bytes_total",
	    "Bytes of checkpoints hashed with SHA-256 (new or changed chunks), current NAS client",
	    NULL },
	[AMET_REUSED] = { METRICS_COUNTER, "ckpt_agent_reused_chunks_total",
	    "Chunks taken unchanged from the last stored list, by change hints or fingerprints "
	    "(neither read nor hashed), current NAS client", NULL },
	[AMET_STORE_RETRIES] = { METRICS_COUNTER, "ckpt_agent_store_retries_total",
	    "Stores made again whole once because the NAS missed chunks at the commit (a stale "
	    "remembered list, a delete or a NAS restart under way), current NAS client", NULL },
};

struct amet_last {
	comp_name al_name;
	uint64_t al_unix_ms;
};

struct amet {
	struct agent *o_agent;
	struct metrics *o_metrics;
	struct health *o_health;
	struct metrics_fam *o_fam[AMET_FAMS];
	pthread_mutex_t o_mu; /* o_last */
	struct amet_last o_last[COMP_MAX];
	size_t o_nlast;
};

static void
amet_collect(void *arg, struct metrics *m)
{
	struct amet *o = arg;
	struct agent *a = o->o_agent;
	struct agent_nas *h;
	struct queue_stats qs;
	comp_name *names = NULL;
	size_t n = 0;
	uint64_t now = util_now_unix_ms();

	(void)m;
	metrics_set(o->o_fam[AMET_ATTACHED], link_up(a) ? 1 : 0, NULL, 0);
	if (comp_running_names(a->a_comps, &names, &n) == 0) {
		metrics_set(o->o_fam[AMET_RUNNING], (double)n, NULL, 0);
		metrics_clear(o->o_fam[AMET_INTERVAL]);
		for (size_t i = 0; i < n; i++) {
			const struct spec *s = agent_spec_find(a, names[i]);
			uint64_t ms = s != NULL && s->sp_interval_ms > a->a_interval_ms
			    ? s->sp_interval_ms : a->a_interval_ms;
			metrics_set(o->o_fam[AMET_INTERVAL], (double)ms / 1000.0, METRICS_L(names[i]));
		}
		free(names);
	}
	pthread_mutex_lock(&o->o_mu);
	for (size_t i = 0; i < o->o_nlast; i++) {
		uint64_t t = o->o_last[i].al_unix_ms;
		metrics_set(o->o_fam[AMET_AGE], now > t ? (double)(now - t) / 1000.0 : 0,
		    METRICS_L(o->o_last[i].al_name));
	}
	pthread_mutex_unlock(&o->o_mu);
	queue_get_stats(a->a_queue, &qs);
	metrics_set(o->o_fam[AMET_QUEUE_ITEMS], qs.qs_items, NULL, 0);
	metrics_set(o->o_fam[AMET_QUEUE_BYTES], (double)qs.qs_bytes, NULL, 0);
	metrics_set(o->o_fam[AMET_QUEUE_MAX], (double)qs.qs_max_bytes, NULL, 0);
	metrics_set(o->o_fam[AMET_QUEUE_DROPPED], (double)qs.qs_dropped, NULL, 0);
	metrics_set(o->o_fam[AMET_SERVER_REFUSED], (double)atomic_load(&a->a_server_refused), NULL,
	    0);
	metrics_set(o->o_fam[AMET_RATE_WAIT],
	    a->a_rate != NULL ? (double)rate_waited_ns(a->a_rate) / 1e9 : 0, NULL, 0);
	h = nasref_get(a);
	if (h != NULL) {
		struct nasc_stats ns;

		nasc_get_stats(h->an_nasc, &ns);
		nasref_put(a, h);
		metrics_set(o->o_fam[AMET_CKPT_BYTES], (double)ns.ns_store_bytes, NULL, 0);
		metrics_set(o->o_fam[AMET_SENT], (double)ns.ns_put_bytes, NULL, 0);
		metrics_set(o->o_fam[AMET_RECEIVED], (double)ns.ns_get_bytes, NULL, 0);
		metrics_set(o->o_fam[AMET_HASHED], (double)ns.ns_hashed_bytes, NULL, 0);
		metrics_set(o->o_fam[AMET_REUSED], (double)ns.ns_reused_chunks, NULL, 0);
		metrics_set(o->o_fam[AMET_STORE_RETRIES],
		    (double)(ns.ns_stale_retries + ns.ns_race_retries), NULL, 0);
	}
}

/* /readyz: attached, and the NAS answers. */
static int
amet_ready(void *arg, char *why, size_t len)
{
	struct amet *o = arg;
	struct agent *a = o->o_agent;
	Ckpt__V1__StatRequest req = CKPT__V1__STAT_REQUEST__INIT;
	ProtobufCMessage *reply = NULL;
	struct agent_nas *h;
	struct rpc_error err;
	int rv;

	if (!link_up_why(a, why, len))
		return -ENOTCONN;
	h = nasref_get(a);
	if (h == NULL) {
		snprintf(why, len, "no NAS address yet");
		return -ENOTCONN;
	}
	rv = nasc_call(h->an_nasc, NAS_STAT, &req.base, AMET_NAS_PROBE_MS, &reply, &err);
	nasref_put(a, h);
	if (rv != 0) {
		snprintf(why, len, "the NAS does not answer: %s", err.re_msg);
		return rv;
	}
	rpc_reply_free(reply);
	return 0;
}

/* metrics_on_full(): a family stopped taking new series (one per component, node). */
static void
amet_full(void *arg, const char *family, size_t max)
{
	(void)arg;
	LOG_WARN("metrics: %s has its %zu series; new ones are not counted (counted in "
	    "ckpt_metrics_series_dropped_total)", family, max);
}

int
amet_new(struct agent *a, struct amet **ret_amet)
{
	struct amet *o = calloc(1, sizeof(*o));
	int rv;

	if (o == NULL)
		return -ENOMEM;
	o->o_agent = a;
	rv = -pthread_mutex_init(&o->o_mu, NULL);
	if (rv != 0) {
		free(o);
		return rv;
	}
	rv = metrics_new(&o->o_metrics);
	if (rv == 0)
		metrics_on_full(o->o_metrics, amet_full, NULL);
	for (size_t i = 0; rv == 0 && i < AMET_FAMS; i++)
		rv = metrics_add_family(o->o_metrics, amet_fams[i].type, amet_fams[i].name,
		    amet_fams[i].help, amet_fams[i].labels, NULL, 0, &o->o_fam[i]);
	if (rv == 0)
		rv = metrics_add_collector(o->o_metrics, amet_collect, o);
	if (rv != 0) {
		amet_free(o);
		return rv;
	}
	*ret_amet = o;
	return 0;
}

struct metrics *
amet_registry(struct amet *o)
{
	return o != NULL ? o->o_metrics : NULL;
}

int
amet_serve(struct amet *o, const char *url, char *err, size_t errlen)
{
	struct health_config hc = { url, o->o_metrics, amet_ready, o };

	return health_start(&hc, &o->o_health, err, errlen);
}

const char *
amet_url(const struct amet *o)
{
	return o->o_health != NULL ? health_url(o->o_health) : NULL;
}

void
amet_halt(struct amet *o)
{
	if (o == NULL)
		return;
	health_stop(o->o_health);
	o->o_health = NULL;
}

void
amet_checkpoint(struct amet *o, const char *component, int rv)
{
	uint64_t now = util_now_unix_ms();
	size_t i;

	if (o == NULL)
		return;
	if (rv != 0) {
		metrics_inc(o->o_fam[AMET_FAILED], 1, METRICS_L(component));
		return;
	}
	metrics_inc(o->o_fam[AMET_STORED], 1, METRICS_L(component));
	metrics_set(o->o_fam[AMET_LAST], (double)now / 1000.0, METRICS_L(component));
	pthread_mutex_lock(&o->o_mu);
	for (i = 0; i < o->o_nlast; i++)
		if (strcmp(o->o_last[i].al_name, component) == 0)
			break;
	if (i == o->o_nlast && o->o_nlast < COMP_MAX)
		snprintf(o->o_last[o->o_nlast++].al_name, sizeof(comp_name), "%s", component);
	if (i < o->o_nlast)
		o->o_last[i].al_unix_ms = now;
	pthread_mutex_unlock(&o->o_mu);
}

void
amet_free(struct amet *o)
{
	if (o == NULL)
		return;
	amet_halt(o);
	metrics_free(o->o_metrics);
	pthread_mutex_destroy(&o->o_mu);
	free(o);
}

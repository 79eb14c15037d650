/*
 * ckpt-manager: node registry, checkpoint catalogue, placement, migration,
 * events.
 *
 *   ckpt-manager --listen URL --events URL --nas URL[,URL...]
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "limit.h"
#include "log.h"
#include "metrics.h"
#include "mgr.h"
#include "nasc.h"
#include "tls.h"

#define MAIN_SEED_TIMEOUT_MS 1000u

struct main_conf {
	char *listen;
	char *events;
	struct cfg_list nas;
	int64_t heartbeat_ms;
	uint64_t down_after_ms;
	int64_t workers;
	char *log_level;
	char *http;
	int64_t metrics_series_max;
	struct tls_conf tls;
	struct rpc_limits_conf limits;
	int64_t max_nodes;
	int64_t max_node_comps;
	uint64_t recv_max;
	uint64_t failover_retry_ms;
};

static const struct cfg_opt main_opts[] = {
	{ "listen", CFG_STR, offsetof(struct main_conf, listen), NULL, 0, 0, CFG_REQUIRED | CFG_URL,
	    "URL",
	    "address of the Manager service (tcp://host:port, ipc:///path)" },
	{ "events", CFG_STR, offsetof(struct main_conf, events), NULL, 0, 0, CFG_REQUIRED | CFG_URL,
	    "URL",
	    "address the event stream (PUB) is published on" },
	{ "nas", CFG_LIST, offsetof(struct main_conf, nas), NULL, 0, 0, CFG_REQUIRED | CFG_URL,
	    "URL[,URL...]",
	    "NAS addresses, told to agents and clients: addresses of one store (replicas or "
	    "front-ends of the same data); different stores are refused" },
	{ "heartbeat-ms", CFG_INT, offsetof(struct main_conf, heartbeat_ms), "200", 10, 60000, 0, "N",
	    "heartbeat interval told to agents, in ms" },
	{ "down-after", CFG_DURATION, offsetof(struct main_conf, down_after_ms), "1s", 20, 3600000,
	    0, "DURATION", "a node silent this long is marked down" },
	{ "workers", CFG_INT, offsetof(struct main_conf, workers), "8", 2, 256, 0, "N",
	    "requests served at once; as many migrations and drains run at once besides, on their own workers" },
	{ "log-level", CFG_STR, offsetof(struct main_conf, log_level), "info", 0, 0, 0, "LEVEL",
	    "debug, info, warn or error" },
	{ "http", CFG_STR, offsetof(struct main_conf, http), NULL, 0, 0, CFG_URL, "URL",
	    "serve /healthz, /readyz (a NAS answers) and /metrics (Prometheus) on "
	    "http://HOST:PORT; off when not set" },
	{ "metrics-series-max", CFG_INT, offsetof(struct main_conf, metrics_series_max), "4096", 1,
	    METRICS_SERIES_LIMIT, 0, "N", "series each metric by component or node keeps with --http "
	    "(about 250 bytes each); past it new ones are counted in "
	    "ckpt_metrics_series_dropped_total{family} instead, and a warning is logged once" },
	TLS_CFG_OPTS(struct main_conf, tls),
	{ "recv-max", CFG_SIZE, offsetof(struct main_conf, recv_max), "16M", 64 << 10, 1 << 30, 0,
	    "SIZE", "largest request to the Manager service (limit message_size)" },
	RPC_CFG_LIMITS(struct main_conf, limits),
	{ "max-nodes", CFG_INT, offsetof(struct main_conf, max_nodes),
	    RPC_LIMIT_STR(LIMIT_NODES_DEFAULT), 1, LIMIT_NODES_MAX, 0, "N",
	    "nodes known at most (down ones included); the attach of one more is refused "
	    "RESOURCE_EXHAUSTED (limit nodes)" },
	{ "max-node-components", CFG_INT, offsetof(struct main_conf, max_node_comps),
	    RPC_LIMIT_STR(LIMIT_COMPONENTS_DEFAULT), 1, LIMIT_NODE_COMPONENTS_MAX, 0, "N",
	    "components one node may report or declare when it attaches (more: refused "
	    "RESOURCE_EXHAUSTED, limit node_components, unless it was taken with them); "
	    "placement moves nothing onto a node running that many" },
	{ "failover-retry", CFG_DURATION, offsetof(struct main_conf, failover_retry_ms), "5s", 100,
	    3600000, 0, "DURATION",
	    "a failover no node can take is tried again this often (with jitter), and at once "
	    "when a node attaches or is uncordoned, or a place frees on a node" },
};
#define MAIN_NOPTS (sizeof(main_opts) / sizeof(main_opts[0]))

static void
main_join(const struct cfg_list *l, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < l->cl_count && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i > 0 ? "," : "", l->cl_items[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

int
main(int argc, char **argv)
{
	struct main_conf conf;
	struct mgr_config mc;
	struct mgr *m = NULL;
	enum log_level level;
	sigset_t sigs;
	char err[512], nas[1024];
	int rv, argi, sig;

	memset(&conf, 0, sizeof(conf));
	rv = cfg_parse(main_opts, MAIN_NOPTS, &conf, argc, argv, &argi, err, sizeof(err));
	if (rv == -ECANCELED) {
		cfg_usage(stdout, "ckpt-manager", "--listen URL --events URL --nas URL[,URL...]",
		    main_opts, MAIN_NOPTS);
		cfg_free(main_opts, MAIN_NOPTS, &conf);
		return 0;
	}
	if (rv == 0 && argi < argc) {
		snprintf(err, sizeof(err), "unexpected argument '%s'", argv[argi]);
		rv = -EINVAL;
	}
	if (rv == 0 && log_level_parse(conf.log_level, &level) != 0) {
		snprintf(err, sizeof(err), "--log-level: invalid value '%s' (debug|info|warn|error)",
		    conf.log_level);
		rv = -EINVAL;
	}
	if (rv == 0 && conf.nas.cl_count > NASC_URLS_MAX) {
		snprintf(err, sizeof(err), "--nas: at most %d addresses, got %zu", NASC_URLS_MAX,
		    conf.nas.cl_count);
		rv = -EINVAL;
	}
	if (rv == 0 && conf.down_after_ms <= (uint64_t)conf.heartbeat_ms) {
		snprintf(err, sizeof(err), "--down-after (%llu ms) must be longer than --heartbeat-ms "
					   "(%lld ms)",
		    (unsigned long long)conf.down_after_ms, (long long)conf.heartbeat_ms);
		rv = -EINVAL;
	}
	if (rv == 0)
		rv = tls_conf_check(&conf.tls, err, sizeof(err));
	if (rv == 0)
		rv = tls_url_check(&conf.tls, conf.listen, err, sizeof(err));
	if (rv == 0)
		rv = tls_url_check(&conf.tls, conf.events, err, sizeof(err));
	for (size_t i = 0; rv == 0 && i < conf.nas.cl_count; i++)
		rv = tls_url_check(&conf.tls, conf.nas.cl_items[i], err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "ckpt-manager: %s (see --help)\n",
		    rv == -ENOMEM ? "out of memory" : err);
		cfg_free(main_opts, MAIN_NOPTS, &conf);
		return 2;
	}
	log_init("ckpt-manager", NULL, level);

	/* Before any thread starts, so that only sigwait() below sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	mc = (struct mgr_config){
		.mc_listen = conf.listen,
		.mc_events = conf.events,
		.mc_nas = conf.nas.cl_items,
		.mc_nnas = conf.nas.cl_count,
		.mc_heartbeat_ms = (unsigned)conf.heartbeat_ms,
		.mc_down_after_ms = (unsigned)conf.down_after_ms,
		.mc_workers = (unsigned)conf.workers,
		.mc_seed_timeout_ms = MAIN_SEED_TIMEOUT_MS,
		.mc_http = conf.http,
		.mc_metrics_series_max = (size_t)conf.metrics_series_max,
		.mc_tls = &conf.tls,
		.mc_limits = &conf.limits,
		.mc_max_nodes = (unsigned)conf.max_nodes,
		.mc_max_node_comps = (unsigned)conf.max_node_comps,
		.mc_recv_max = (size_t)conf.recv_max,
		.mc_failover_retry_ms = (unsigned)conf.failover_retry_ms,
	};
	rv = mgr_start(&mc, &m, err, sizeof(err));
	if (rv != 0) {
		LOG_ERROR("%s", err);
		cfg_free(main_opts, MAIN_NOPTS, &conf);
		return 1;
	}
	main_join(&conf.nas, nas, sizeof(nas));
	LOG_INFO("listening on %s, events on %s, NAS %s%s%s", mgr_url(m), mgr_events_url(m), nas,
	    mgr_http_url(m) != NULL ? ", health and metrics on " : "",
	    mgr_http_url(m) != NULL ? mgr_http_url(m) : "");

	do {
		rv = sigwait(&sigs, &sig);
	} while (rv != 0);
	LOG_INFO("stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
	mgr_stop(m);
	cfg_free(main_opts, MAIN_NOPTS, &conf);
	LOG_INFO("stopped");
	return 0;
}

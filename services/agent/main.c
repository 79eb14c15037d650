/*
 * ckpt-agent: the node agent. See agent.h.
 *
 *   ckpt-agent --node ID --manager URL --listen URL --demo NAME[:BYTES] [--demo ...]
 *              [--fresh] [--interval-ms N] [--migrate-after DURATION]
 *   ckpt-agent --config FILE [flags that override the file's [agent] section]
 */
#include <errno.h>
#include <malloc.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "cfg.h"
#include "demo.h"
#include "err.h"
#include "key.h"
#include "log.h"
#include "rate.h"
#include "spec.h"
#include "tls.h"
#include "util.h"

#define PROG "ckpt-agent"

struct agent_conf {
	char *config;
	char *node;
	char *manager;
	char *listen;
	char *advertise;
	struct cfg_list demo;
	struct cfg_list label;
	int64_t interval_ms;
	uint64_t migrate_after_ms;
	int64_t workers;
	uint64_t queue_max;
	uint64_t chunk_min, chunk_avg, chunk_max;
	bool fresh;
	char *log_level;
	char *local_dir;
	char *http;
	uint64_t upload_rate;
	char *ckpt_sched;
	struct tls_conf tls;
	struct rpc_limits_conf limits;
	int64_t max_comps;
	uint64_t recv_max;
};

#define OPT(name, type, field, def, min, max, flags, meta, help)                               \
	{ name, type, offsetof(struct agent_conf, field), def, min, max, flags, meta, help }

static const struct cfg_opt agent_opts[] = {
	OPT("config", CFG_STR, config, NULL, 0, 0, 0, "FILE",
	    "config file (INI): [agent] holds these settings under the same names (flags and "
	    "CKPT_* variables override it), [allow] what components may run here, one "
	    "[component NAME] per component (see README, \"Your own components\")"),
	OPT("node", CFG_STR, node, NULL, 0, 0, CFG_REQUIRED, "ID",
	    "node id, 1-63 of [A-Za-z0-9._-]"),
	OPT("manager", CFG_STR, manager, NULL, 0, 0, CFG_REQUIRED | CFG_URL, "URL",
	    "manager address"),
	OPT("listen", CFG_STR, listen, NULL, 0, 0, CFG_REQUIRED | CFG_URL, "URL",
	    "address of this agent's Agent service (tcp port 0: any free port)"),
	OPT("advertise", CFG_STR, advertise, NULL, 0, 0, CFG_URL, "URL",
	    "address announced to the manager instead of the --listen one (behind NAT, a "
	    "Kubernetes Service); a --listen on every interface (tcp://0.0.0.0:PORT) needs none: "
	    "the manager uses the address the agent connects from"),
	OPT("demo", CFG_LIST, demo, NULL, 0, 0, 0, "NAME[:BYTES][@KEY[=VALUE]...]",
	    "run a demo component with a state buffer of BYTES (64K, 16M, 1G; default 64K, "
	    "at most 1G); each @KEY=VALUE is a label a node must carry to take it over "
	    "(@KEY: any value; at most 8, VALUE at most 63 bytes)"),
	OPT("fresh", CFG_BOOL, fresh, "false", 0, 0, 0, NULL,
	    "start the --demo components with a fresh state; without it each resumes from its "
	    "latest checkpoint on the NAS (restored and verified), starts fresh only when none "
	    "exists, and does not start here when another node runs it"),
	OPT("interval-ms", CFG_INT, interval_ms, "1000", AGENT_INTERVAL_MIN_MS, 86400000, 0, "N",
	    "checkpoint every component every N ms"),
	OPT("migrate-after", CFG_DURATION, migrate_after_ms, NULL, 0, 86400000, 0, "DURATION",
	    "this long after attaching, call for the migration of the --demo components "
	    "(3s, 500ms; 0: never)"),
	OPT("label", CFG_LIST, label, NULL, 0, 0, 0, "KEY=VALUE",
	    "label announced to the manager (at most 32; KEY 1-63 of [A-Za-z0-9._-], VALUE at most "
	    "255 bytes)"),
	OPT("workers", CFG_INT, workers, "4", 1, 64, 0, "N", "requests served at once"),
	OPT("queue-max", CFG_SIZE, queue_max, "64M", 0, 1ll << 40, 0, "SIZE",
	    "checkpoints kept in memory while the NAS is down (oldest dropped first; 0: none)"),
	OPT("chunk-min", CFG_SIZE, chunk_min, "4K", 64, 4 << 20, 0, "SIZE",
	    "smallest content-defined chunk of a checkpoint (min < avg < max, 64 B to 4M)"),
	OPT("chunk-avg", CFG_SIZE, chunk_avg, "16K", 128, 4 << 20, 0, "SIZE",
	    "average chunk (rounded down to a power of two)"),
	OPT("chunk-max", CFG_SIZE, chunk_max, "64K", 256, 4 << 20, 0, "SIZE", "largest chunk"),
	OPT("log-level", CFG_STR, log_level, "info", 0, 0, 0, "LEVEL", "debug, info, warn or error"),
	OPT("local-dir", CFG_STR, local_dir, NULL, 0, 0, 0, "DIR",
	    "private folder (mode 0700, made if missing) of the local socket that lib components "
	    "(programs linked with libckpt) talk to; opened only when [allow] drivers has lib "
	    "(default: $XDG_RUNTIME_DIR/ckpt-agent-NODE, else /tmp/ckpt-agent-NODE)"),
	OPT("http", CFG_STR, http, NULL, 0, 0, CFG_URL, "URL",
	    "serve /healthz, /readyz (attached and the NAS answers) and /metrics (Prometheus) on "
	    "http://HOST:PORT; off when not set"),
	OPT("upload-rate", CFG_SIZE, upload_rate, "0", 0, RATE_MAX, 0, "BYTES",
	    "cap checkpoint uploads to BYTES per second (1M, 256K), one token bucket shared by "
	    "all components; restores are not capped (0: no cap)"),
	OPT("ckpt-sched", CFG_STR, ckpt_sched, "nice", 0, 0, 0, "POLICY",
	    "CPU policy of the checkpoint thread: nice (nice +10), batch (SCHED_BATCH at nice "
	    "+10) or idle (SCHED_IDLE: only CPU time nothing else wants)"),
	TLS_CFG_OPTS(struct agent_conf, tls),
	OPT("recv-max", CFG_SIZE, recv_max, "1M", 64 << 10, 1 << 30, 0, "SIZE",
	    "largest request to the Agent service (limit message_size)"),
	RPC_CFG_LIMITS(struct agent_conf, limits),
	OPT("max-components", CFG_INT, max_comps, RPC_LIMIT_STR(LIMIT_COMPONENTS_DEFAULT), 1,
	    LIMIT_NODE_COMPONENTS_MAX, 0, "N",
	    "components this node runs at most, its own and those restored here; a Restore of one "
	    "more is refused RESOURCE_EXHAUSTED (limit node_components)"),
};
#define AGENT_NOPTS (sizeof(agent_opts) / sizeof(agent_opts[0]))

#define SYNOPSIS                                                                                \
	"[--config FILE] --node ID --manager URL --listen URL [--demo NAME[:BYTES][@KEY=VALUE...]...] "              \
	"[--fresh] [--interval-ms N] [--migrate-after DURATION] [options]"

static int
usage_error(const char *msg)
{
	fprintf(stderr, "%s: %s (see --help)\n", PROG, msg);
	return 2;
}

#define DEMO_REQS_MAX LIMIT_REQUIRES_MAX

/*
 * "NAME[:BYTES][@KEY[=VALUE]...]" -> name (KEY_NAME_MAX + 1 bytes), bytes
 * and the required labels, which point into item (split in place).
 */
static int
parse_demo(char *item, char *ret_name, uint64_t *ret_bytes, struct agent_req *ret_reqs,
    size_t *ret_nreqs, char *err, size_t errlen)
{
	char *at = strchr(item, '@');
	const char *colon;
	size_t n, nreqs = 0;
	char name[KEY_NAME_MAX + 1];
	uint64_t bytes = DEMO_BYTES_DEFAULT;

	if (at != NULL) {
		char *p = at;
		*at = '\0';
		while (p != NULL) {
			char *key = p + 1, *next = strchr(key, '@'), *eq;
			if (next != NULL)
				*next = '\0';
			eq = strchr(key, '=');
			if (eq != NULL)
				*eq = '\0';
			if (nreqs == DEMO_REQS_MAX || key_name_check(key) != 0 ||
			    (eq != NULL && strlen(eq + 1) > LIMIT_REQ_VALUE_MAX)) {
				snprintf(err, errlen,
				    "--demo %s: invalid required label '@%s' (at most %d, KEY of "
				    "[A-Za-z0-9._-], VALUE of at most %d bytes)",
				    item, key, DEMO_REQS_MAX, LIMIT_REQ_VALUE_MAX);
				return -EINVAL;
			}
			ret_reqs[nreqs].ar_key = key;
			ret_reqs[nreqs].ar_value = eq != NULL ? eq + 1 : "";
			nreqs++;
			p = next;
		}
	}
	colon = strchr(item, ':');
	n = colon != NULL ? (size_t)(colon - item) : strlen(item);

	if (n == 0 || n > KEY_NAME_MAX) {
		snprintf(err, errlen, "--demo '%s': the name must have 1 to %d characters", item,
		    KEY_NAME_MAX);
		return -EINVAL;
	}
	memcpy(name, item, n);
	name[n] = '\0';
	if (key_name_check(name) != 0) {
		snprintf(err, errlen, "--demo '%s': the name may only hold [A-Za-z0-9._-]", item);
		return -EINVAL;
	}
	if (colon != NULL && util_parse_size(colon + 1, &bytes) != 0) {
		snprintf(err, errlen, "--demo '%s': invalid size '%s' (e.g. 4096, 64K, 16M, 1G)", item,
		    colon + 1);
		return -EINVAL;
	}
	if (bytes > DEMO_BYTES_MAX) {
		snprintf(err, errlen, "--demo '%s': size is out of range [0, 1G]", item);
		return -EINVAL;
	}
	memcpy(ret_name, name, n + 1);
	*ret_bytes = bytes;
	*ret_nreqs = nreqs;
	return 0;
}

/* The --config FILE (or CKPT_CONFIG) of argv, before the flags are parsed; NULL: none. */
static const char *
config_path(int argc, char **argv)
{
	const char *path = getenv("CKPT_CONFIG");

	if (path != NULL && path[0] == '\0')
		path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
	}
	return path;
}

/*
 * Reads the config file at path: its [agent] settings into ret_sets (pointing
 * into *ret_cfg) and its components and allow list into *ret_cfg.
 */
static int
config_load(const char *path, struct spec_config **ret_cfg, struct cfg_file_setting **ret_sets,
    char *err, size_t errlen)
{
	struct spec_config *cfg = NULL;
	struct cfg_file_setting *sets;
	int rv;

	rv = spec_config_load(path, agent_opts, AGENT_NOPTS, &cfg, err, errlen);
	if (rv != 0)
		return rv;
	sets = calloc(cfg->sc_nagent + 1, sizeof(*sets));
	if (sets == NULL) {
		spec_config_free(cfg);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->sc_nagent; i++) {
		if (strcmp(cfg->sc_agent[i].ss_key, "config") == 0) {
			snprintf(err, errlen, "%s:%d: config: a config file cannot name another", path,
			    cfg->sc_agent[i].ss_line);
			free(sets);
			spec_config_free(cfg);
			return -EINVAL;
		}
		sets[i].fs_key = cfg->sc_agent[i].ss_key;
		sets[i].fs_value = cfg->sc_agent[i].ss_value;
		sets[i].fs_line = cfg->sc_agent[i].ss_line;
	}
	*ret_cfg = cfg;
	*ret_sets = sets;
	return 0;
}

/* "KEY=VALUE" split in place into l (pointing into item). */
static int
parse_label(char *item, struct agent_label *l, char *err, size_t errlen)
{
	char *eq = strchr(item, '=');

	if (eq == NULL) {
		snprintf(err, errlen, "--label '%s': want KEY=VALUE", item);
		return -EINVAL;
	}
	*eq = '\0';
	if (key_name_check(item) != 0 || strlen(eq + 1) > LIMIT_LABEL_VALUE_MAX) {
		snprintf(err, errlen,
		    "--label '%s=%s': KEY of 1-63 [A-Za-z0-9._-], VALUE of at most %d bytes", item,
		    eq + 1, LIMIT_LABEL_VALUE_MAX);
		return -EINVAL;
	}
	l->al_key = item;
	l->al_value = eq + 1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct agent_conf conf = { 0 };
	struct agent_label labels[LIMIT_LABELS_MAX];
	struct agent_config acfg;
	struct agent *a = NULL;
	struct spec_config *file = NULL;
	struct cfg_file_setting *file_sets = NULL;
	const char *path;
	size_t ncomps;
	enum log_level level;
	char err[512];
	sigset_t sigs;
	int argi, sig, rv, status = 0;

	/*
	 * Checkpoint data moves in messages of a few MiB (nng allocates each one
	 * received): keep such buffers in the heap and the heap's free memory,
	 * instead of an mmap, page faults on every page and munmap per message.
	 */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	/*
	 * Free memory kept in the heap counts in the resident set: 16 MiB of it
	 * at most per arena (it was 128), so that a message's buffer is reused.
	 */
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	/*
	 * The bound is per arena, and malloc_trim() (after a store and a
	 * restore) gives back no arena's free top but the main one's: with
	 * glibc's default (8 per CPU), the free tops of six arenas (pool
	 * workers, nng's threads: the 4 MiB PutChunks and 2 MiB GetChunks
	 * buffers they last held) stayed resident, 57 of 62 MiB of heap free
	 * (malloc_info) in an agent that restored then checkpointed 1 GiB:
	 * integration_mem_1g's n2 peaked at 1072-1074 MiB (bound 1088). Four
	 * arenas: 1060-1062. Not two: the heartbeat thread then shared an
	 * arena with the checkpoint's data path and waited on its lock long
	 * enough to be marked down (integration_heavy_ckpt; ckptctl has one).
	 * A trim threshold of 4 MiB instead gave 1062-1063 but faulted every
	 * PutChunks buffer in again (a first store of a 256 MiB demo: 57 ->
	 * 71.5 ticks of CPU); four arenas: 56 -> 58.5, restores 66.5 -> 65.5
	 * (release, alternated pairs, load 2.2-4.6). docs/data-path.md,
	 * "Memory bounds".
	 */
	mallopt(M_ARENA_MAX, 4);
	path = config_path(argc, argv);
	if (path != NULL) {
		rv = config_load(path, &file, &file_sets, err, sizeof(err));
		if (rv != 0) {
			status = rv == -EINVAL ? usage_error(err)
			                       : (fprintf(stderr, "%s: %s\n", PROG, err), 1);
			goto out_conf;
		}
	}
	rv = cfg_parse_file(agent_opts, AGENT_NOPTS, &conf, path, file_sets,
	    file != NULL ? file->sc_nagent : 0, argc, argv, &argi, err, sizeof(err));
	if (rv == -ECANCELED) {
		cfg_usage(stdout, PROG, SYNOPSIS, agent_opts, AGENT_NOPTS);
		goto out_conf;
	}
	if (rv != 0) {
		status = usage_error(rv == -EINVAL ? err : err_str(rv));
		goto out_conf;
	}
	if (argi < argc) {
		snprintf(err, sizeof(err), "unexpected argument '%s'", argv[argi]);
		status = usage_error(err);
		goto out_conf;
	}
	if (log_level_parse(conf.log_level, &level) != 0) {
		snprintf(err, sizeof(err), "--log-level: invalid value '%s' (debug|info|warn|error)",
		    conf.log_level);
		status = usage_error(err);
		goto out_conf;
	}
	if (key_name_check(conf.node) != 0) {
		snprintf(err, sizeof(err), "--node '%s': want 1 to %d of [A-Za-z0-9._-]", conf.node,
		    KEY_NAME_MAX);
		status = usage_error(err);
		goto out_conf;
	}
	if (conf.label.cl_count > LIMIT_LABELS_MAX) {
		snprintf(err, sizeof(err), "--label given %zu times: at most %d", conf.label.cl_count,
		    LIMIT_LABELS_MAX);
		status = usage_error(err);
		goto out_conf;
	}
	for (size_t i = 0; i < conf.label.cl_count; i++) {
		if (parse_label(conf.label.cl_items[i], &labels[i], err, sizeof(err)) != 0) {
			status = usage_error(err);
			goto out_conf;
		}
	}

	if (tls_conf_check(&conf.tls, err, sizeof(err)) != 0 ||
	    tls_url_check(&conf.tls, conf.listen, err, sizeof(err)) != 0 ||
	    tls_url_check(&conf.tls, conf.manager, err, sizeof(err)) != 0) {
		status = usage_error(err);
		goto out_conf;
	}

	memset(&acfg, 0, sizeof(acfg));
	if (strcmp(conf.ckpt_sched, "nice") == 0) {
		acfg.ac_ckpt_sched = AGENT_SCHED_NICE;
	} else if (strcmp(conf.ckpt_sched, "batch") == 0) {
		acfg.ac_ckpt_sched = AGENT_SCHED_BATCH;
	} else if (strcmp(conf.ckpt_sched, "idle") == 0) {
		acfg.ac_ckpt_sched = AGENT_SCHED_IDLE;
	} else {
		snprintf(err, sizeof(err), "--ckpt-sched: invalid value '%s' (nice|batch|idle)",
		    conf.ckpt_sched);
		status = usage_error(err);
		goto out_conf;
	}
	acfg.ac_node = conf.node;
	acfg.ac_manager = conf.manager;
	acfg.ac_listen = conf.listen;
	acfg.ac_advertise = conf.advertise;
	acfg.ac_labels = labels;
	acfg.ac_nlabels = conf.label.cl_count;
	acfg.ac_interval_ms = (unsigned)conf.interval_ms;
	acfg.ac_migrate_after_ms = conf.migrate_after_ms;
	acfg.ac_workers = (unsigned)conf.workers;
	acfg.ac_queue_max = conf.queue_max;
	acfg.ac_queue_max_set = true;
	acfg.ac_chunk_min = (uint32_t)conf.chunk_min;
	acfg.ac_chunk_avg = (uint32_t)conf.chunk_avg;
	acfg.ac_chunk_max = (uint32_t)conf.chunk_max;
	acfg.ac_fresh = conf.fresh;
	acfg.ac_local_dir = conf.local_dir;
	acfg.ac_http = conf.http;
	acfg.ac_upload_rate = conf.upload_rate;
	acfg.ac_tls = &conf.tls;
	acfg.ac_limits = &conf.limits;
	acfg.ac_max_comps = (unsigned)conf.max_comps;
	acfg.ac_recv_max = (size_t)conf.recv_max;
	rv = agent_new(&acfg, &a, err, sizeof(err));
	if (rv != 0) {
		status = rv == -EINVAL ? usage_error(err) : (fprintf(stderr, "%s: %s\n", PROG, err), 1);
		goto out_conf;
	}
	for (size_t i = 0; i < conf.demo.cl_count; i++) {
		char name[KEY_NAME_MAX + 1];
		struct agent_req reqs[DEMO_REQS_MAX];
		size_t nreqs = 0;
		uint64_t bytes;

		rv = parse_demo(conf.demo.cl_items[i], name, &bytes, reqs, &nreqs, err, sizeof(err));
		if (rv == 0)
			rv = agent_add_demo_requiring(a, name, bytes, reqs, nreqs, err, sizeof(err));
		if (rv != 0) {
			status = rv == -EINVAL || rv == -EEXIST
			    ? usage_error(err)
			    : (fprintf(stderr, "%s: %s\n", PROG, err), 1);
			goto out_agent;
		}
	}

	if (file != NULL) {
		/* The agent takes the file over (its specs live as long as it does). */
		rv = agent_use_config(a, file, err, sizeof(err));
		file = NULL;
		if (rv != 0) {
			status = rv == -EINVAL || rv == -EEXIST
			    ? usage_error(err)
			    : (fprintf(stderr, "%s: %s\n", PROG, err), 1);
			goto out_agent;
		}
	}
	ncomps = agent_component_count(a);

	log_init("agent", conf.node, level);
	/* Before any thread starts, so that only sigwait() below sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	rv = agent_start(a, err, sizeof(err));
	if (rv != 0) {
		LOG_ERROR("%s", err);
		status = 1;
		goto out_agent;
	}
	LOG_INFO("listening on %s; manager %s; %zu component(s)%s%s; checkpoint every %" PRId64
	         " ms (a component's own interval, if longer, in its place)%s",
	    agent_url(a), conf.manager, ncomps, path != NULL ? "; config " : "",
	    path != NULL ? path : "", conf.interval_ms,
	    conf.migrate_after_ms > 0 ? "; will call for migration" : "");
	if (conf.upload_rate != 0 || acfg.ac_ckpt_sched != AGENT_SCHED_NICE)
		LOG_INFO("uploads capped at %" PRIu64 " B/s (0: no cap); checkpoint thread CPU "
		         "policy %s",
		    conf.upload_rate, conf.ckpt_sched);
	if (agent_http_url(a) != NULL)
		LOG_INFO("health and metrics on %s (/healthz, /readyz, /metrics)", agent_http_url(a));
	for (;;) {
		if (sigwait(&sigs, &sig) == 0 && (sig == SIGINT || sig == SIGTERM))
			break;
	}
	if (agent_failed(a, err, sizeof(err))) {
		agent_stop(a);
		fprintf(stderr, "%s: %s\n", PROG, err);
		status = 1;
		goto out_agent;
	}
	LOG_INFO("stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
	agent_stop(a);
	LOG_INFO("stopped");

out_agent:
	agent_free(a);
out_conf:
	spec_config_free(file);
	free(file_sets);
	cfg_free(agent_opts, AGENT_NOPTS, &conf);
	return status;
}

/* agent: life cycle of one node agent and the helpers its files share (agent.h, agent_int.h). */
#include "agent_int.h"
#include "svc_spec.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "ckpt/v1/agent.pb-c.h"
#include "ckpt/v1/manager.pb-c.h"
#include "drv.h"
#include "drv_lib.h"
#include "err.h"
#include "key.h"
#include "log.h"
#include "rate.h"
#include "util.h"

void
agent_hex(const uint8_t *digest, size_t len, char out[SHA_HEX_LEN + 1])
{
	if (len == SHA_LEN)
		sha_hex(digest, SHA_LEN, out);
	else
		snprintf(out, SHA_HEX_LEN + 1, "(none)");
}

void
agent_deadline(struct timespec *ts, uint64_t mono_ms)
{
	ts->tv_sec = (time_t)(mono_ms / 1000u);
	ts->tv_nsec = (long)(mono_ms % 1000u) * 1000000L;
}

/* Sleeps until the monotonic time deadline_ms or until stop. True when stopping. */
bool
agent_sleep_until(struct agent *a, uint64_t deadline_ms)
{
	struct timespec ts;
	bool stopping;

	agent_deadline(&ts, deadline_ms);
	pthread_mutex_lock(&a->a_mu);
	while (!a->a_stopping && pthread_cond_timedwait(&a->a_cv, &a->a_mu, &ts) != ETIMEDOUT) {
	}
	stopping = a->a_stopping;
	pthread_mutex_unlock(&a->a_mu);
	return stopping;
}

bool
agent_sleep(struct agent *a, unsigned ms)
{
	return agent_sleep_until(a, util_now_mono_ms() + ms);
}

bool
agent_stopping(struct agent *a)
{
	bool stopping;
	pthread_mutex_lock(&a->a_mu);
	stopping = a->a_stopping;
	pthread_mutex_unlock(&a->a_mu);
	return stopping;
}

/* Waits for the first attach; false when stopping (or timeout_ms passed, if not 0). */
bool
agent_wait_first_attach(struct agent *a, unsigned timeout_ms, uint64_t *ret_when)
{
	uint64_t until = util_now_mono_ms() + timeout_ms;
	struct timespec ts;
	bool ok;

	agent_deadline(&ts, until);
	pthread_mutex_lock(&a->a_mu);
	while (!a->a_stopping && a->a_attaches == 0) {
		if (timeout_ms == 0)
			pthread_cond_wait(&a->a_cv, &a->a_mu);
		else if (pthread_cond_timedwait(&a->a_cv, &a->a_mu, &ts) == ETIMEDOUT)
			break;
	}
	ok = !a->a_stopping && a->a_attaches > 0;
	if (ok && ret_when != NULL)
		*ret_when = a->a_first_attach_ms;
	pthread_mutex_unlock(&a->a_mu);
	return ok;
}

bool
agent_wait_attached(struct agent *a, unsigned timeout_ms)
{
	return agent_wait_first_attach(a, timeout_ms > 0 ? timeout_ms : 1, NULL);
}

bool
agent_linked(struct agent *a)
{
	return link_up(a);
}

/* backoff * [0.75, 1.25) */
unsigned
agent_jitter(unsigned ms, uint64_t *seed)
{
	uint64_t x = *seed;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*seed = x;
	return ms - ms / 4 + (unsigned)(x % (ms / 2 + 1));
}

unsigned
agent_call_budget(struct rpc_call *call)
{
	unsigned ms = rpc_call_remaining_ms(call);
	return ms > AGENT_CALL_MIN_MS ? ms : AGENT_CALL_MIN_MS;
}

void
agent_set_error(struct rpc_error *err, int rv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->re_msg, sizeof(err->re_msg), fmt, ap);
	va_end(ap);
	err->re_code = (int)err_to_code(rv);
}

void
agent_fail(struct agent *a, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&a->a_mu);
	va_start(ap, fmt);
	vsnprintf(a->a_fatal, sizeof(a->a_fatal), fmt, ap);
	va_end(ap);
	LOG_ERROR("%s", a->a_fatal);
	pthread_mutex_unlock(&a->a_mu);
	kill(getpid(), SIGTERM);
}

bool
agent_failed(struct agent *a, char *ret_why, size_t len)
{
	bool failed;

	pthread_mutex_lock(&a->a_mu);
	failed = a->a_fatal[0] != '\0';
	if (failed)
		snprintf(ret_why, len, "%s", a->a_fatal);
	pthread_mutex_unlock(&a->a_mu);
	return failed;
}

static char *
agent_strdup_bounded(const char *s, size_t max)
{
	return s != NULL && strlen(s) <= max ? strdup(s) : NULL;
}

/* The lib driver's socket folder: cfg's, else $XDG_RUNTIME_DIR/ckpt-agent-NODE, else /tmp/. */
static char *
agent_local_dir(const struct agent_config *cfg)
{
	const char *run = getenv("XDG_RUNTIME_DIR");
	char *dir = NULL;

	if (cfg->ac_local_dir != NULL)
		return strdup(cfg->ac_local_dir);
	if (run == NULL || run[0] != '/' || strlen(run) > AGENT_LOCAL_DIR_MAX - 12 - KEY_NAME_MAX)
		run = "/tmp";
	if (asprintf(&dir, "%s/ckpt-agent-%s", run, cfg->ac_node) < 0)
		return NULL;
	return dir;
}

/* Opens the local server for lib components when the config file allows the driver. */
static int
agent_lib_start(struct agent *a, char *err, size_t errlen)
{
	char why[512];
	bool allowed = false;
	int rv;

	for (char **d = a->a_config->sc_allow.sa_drivers; d != NULL && *d != NULL; d++)
		if (strcmp(*d, DRV_LIB_KIND) == 0)
			allowed = true;
	if (!allowed || a->a_lib != NULL)
		return 0;
	rv = drv_lib_host_start(a->a_local_dir, &a->a_lib, why, sizeof(why));
	if (rv != 0) {
		snprintf(err, errlen, "%s: [allow] drivers = lib: %s", a->a_config->sc_path, why);
		return rv;
	}
	return 0;
}

/*
 * A server the agent dialled (the NAS, the manager) did not prove the
 * identity expected there (auth.proto 1b): counted, logged once per
 * connection. The call fails; nothing is sent to it.
 */
static void
agent_on_server_refused(void *arg, const char *line, bool first)
{
	struct agent *a = arg;

	atomic_fetch_add(&a->a_server_refused, 1);
	if (first)
		LOG_WARN("refused server: %s (further refusals on this connection are counted in "
			 "ckpt_auth_server_refused_total, not logged)",
		    line);
}

int
agent_new(const struct agent_config *cfg, struct agent **ret_agent, char *err, size_t errlen)
{
	pthread_condattr_t ca;
	struct agent *a;
	int rv;

	rv = conf_check(cfg, err, errlen);
	if (rv != 0)
		return rv;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	pthread_mutex_init(&a->a_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->a_cv, &ca);
	pthread_condattr_destroy(&ca);
	/* Random per process: a restarted agent is told from the one it replaces. */
	if (getrandom(&a->a_instance, sizeof(a->a_instance), 0) != sizeof(a->a_instance))
		a->a_instance = util_now_unix_ms() ^ ((uint64_t)getpid() << 32) ^ util_now_mono_ms();
	if (a->a_instance == 0)
		a->a_instance = 1;
	a->a_interval_ms = cfg->ac_interval_ms;
	a->a_migrate_after_ms = cfg->ac_migrate_after_ms;
	a->a_workers = cfg->ac_workers != 0 ? cfg->ac_workers : 4;
	if (cfg->ac_limits != NULL)
		a->a_limits = *cfg->ac_limits;
	a->a_recv_max = cfg->ac_recv_max != 0 ? cfg->ac_recv_max : AGENT_RECV_MAX;
	a->a_queue_max = cfg->ac_queue_max_set ? cfg->ac_queue_max : QUEUE_MAX_DEFAULT;
	a->a_chunk_min = cfg->ac_chunk_min;
	a->a_chunk_avg = cfg->ac_chunk_avg;
	a->a_chunk_max = cfg->ac_chunk_max;
	a->a_fresh = cfg->ac_fresh;
	a->a_ckpt_sched = cfg->ac_ckpt_sched;
	if (cfg->ac_tls != NULL) {
		a->a_tls_own = *cfg->ac_tls;
		a->a_tls_own.tc_on_server_refused = agent_on_server_refused;
		a->a_tls_own.tc_arg = a;
		a->a_tls = &a->a_tls_own;
	}
	pthread_mutex_init(&a->a_flush_mu, NULL);
	a->a_heartbeat_ms = AGENT_HEARTBEAT_DEFAULT_MS;
	a->a_reattach_ms = AGENT_REATTACH_DEFAULT_MS;
	a->a_node = strdup(cfg->ac_node);
	a->a_manager = strdup(cfg->ac_manager);
	a->a_listen = strdup(cfg->ac_listen);
	a->a_advertise = cfg->ac_advertise != NULL ? strdup(cfg->ac_advertise) : NULL;
	a->a_http = cfg->ac_http != NULL ? strdup(cfg->ac_http) : NULL;
	a->a_local_dir = agent_local_dir(cfg);
	a->a_labels = calloc(cfg->ac_nlabels + 1, sizeof(*a->a_labels));
	rv = -ENOMEM;
	if (a->a_node == NULL || a->a_manager == NULL || a->a_listen == NULL || a->a_labels == NULL ||
	    a->a_local_dir == NULL ||
	    (cfg->ac_advertise != NULL && a->a_advertise == NULL) ||
	    (cfg->ac_http != NULL && a->a_http == NULL))
		goto out_free;
	for (; a->a_nlabels < cfg->ac_nlabels; a->a_nlabels++) {
		struct agent_label *l = &a->a_labels[a->a_nlabels];
		l->al_key = agent_strdup_bounded(cfg->ac_labels[a->a_nlabels].al_key, KEY_NAME_MAX);
		l->al_value = agent_strdup_bounded(cfg->ac_labels[a->a_nlabels].al_value,
		    LIMIT_LABEL_VALUE_MAX);
		if (l->al_key == NULL || l->al_value == NULL) {
			a->a_nlabels++;
			goto out_free;
		}
	}
	rv = comp_table_new(&a->a_comps);
	if (rv == 0)
		comp_table_set_max(a->a_comps,
		    cfg->ac_max_comps != 0 ? cfg->ac_max_comps : LIMIT_COMPONENTS_DEFAULT);
	if (rv == 0 && cfg->ac_upload_rate != 0)
		rv = rate_new(cfg->ac_upload_rate, 0, NULL, NULL, &a->a_rate);
	if (rv == 0)
		rv = queue_new(a->a_queue_max, &a->a_queue);
	if (rv == 0)
		rv = arena_new(&a->a_link_arena);
	if (rv != 0)
		goto out_free;
	*ret_agent = a;
	return 0;

out_free:
	snprintf(err, errlen, "%s", err_str(rv));
	agent_free(a);
	return rv;
}

int
agent_add_demo(struct agent *a, const char *name, uint64_t bytes, char *err, size_t errlen)
{
	return agent_add_demo_requiring(a, name, bytes, NULL, 0, err, errlen);
}

int
agent_add_demo_requiring(struct agent *a, const char *name, uint64_t bytes,
    const struct agent_req *reqs, size_t nreqs, char *err, size_t errlen)
{
	char bytes_s[24];
	struct drv_setting set = { "bytes", bytes_s };

	snprintf(bytes_s, sizeof(bytes_s), "%" PRIu64, bytes);
	return agent_add_component(a, "demo", name, &set, 1, reqs, nreqs, err, errlen);
}

/* agent_add_component() with the exec configuration (xc) and fresh of a spec. */
static int
agent_add_comp(struct agent *a, const char *kind, const char *name,
    const struct drv_setting *settings, size_t nsettings, const struct exec_conf *xc,
    const struct agent_req *reqs, size_t nreqs, bool fresh, char *err, size_t errlen)
{
	struct drv_spec spec = { name, settings, nsettings, xc, a->a_lib };
	const struct drv_ops *ops = drv_find(kind);
	struct comp_req creq[LIMIT_REQUIRES_MAX];
	struct drv_inst *inst = NULL;
	char why[256] = "";
	comp_name *own;
	int rv;

	if (ops == NULL) {
		snprintf(err, errlen, "component %s: unknown kind '%.32s'", name, kind);
		return -EINVAL;
	}
	if (nreqs > LIMIT_REQUIRES_MAX) {
		snprintf(err, errlen, "%s %s: %zu required labels, at most %d", kind, name, nreqs,
		    LIMIT_REQUIRES_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < nreqs; i++) {
		if (key_name_check(reqs[i].ar_key) != 0 || reqs[i].ar_value == NULL ||
		    strlen(reqs[i].ar_value) > LIMIT_REQ_VALUE_MAX) {
			snprintf(err, errlen,
			    "%s %s: required label '%s': key of [A-Za-z0-9._-], value of at most %d "
			    "bytes",
			    kind, name, reqs[i].ar_key != NULL ? reqs[i].ar_key : "", LIMIT_REQ_VALUE_MAX);
			return -EINVAL;
		}
		snprintf(creq[i].cq_key, sizeof(creq[i].cq_key), "%s", reqs[i].ar_key);
		snprintf(creq[i].cq_value, sizeof(creq[i].cq_value), "%s", reqs[i].ar_value);
	}
	if (a->a_started) {
		snprintf(err, errlen, "%s %s added after start", kind, name);
		return -EINVAL;
	}
	if (key_name_check(name) != 0) {
		snprintf(err, errlen, "invalid component name '%s': want 1 to %d of [A-Za-z0-9._-]",
		    name, KEY_NAME_MAX);
		return -EINVAL;
	}
	if (nsettings > DRV_SETTINGS_MAX) {
		snprintf(err, errlen, "%s %s: %zu settings, at most %d", kind, name, nsettings,
		    DRV_SETTINGS_MAX);
		return -EINVAL;
	}
	rv = ops->d_check(&spec, why, sizeof(why));
	if (rv != 0) {
		snprintf(err, errlen, "%s %s: %s", kind, name, why);
		return rv;
	}
	own = realloc(a->a_own, (a->a_nown + 1) * sizeof(*own));
	if (own == NULL)
		return -ENOMEM;
	a->a_own = own;
	if (!a->a_fresh && !fresh) {
		/* Resumed once the manager answers: restored, or started fresh (decl.c). */
		rv = decl_add(a, kind, name, settings, nsettings, xc, creq, nreqs, err, errlen);
		if (rv == 0)
			strcpy(a->a_own[a->a_nown++], name);
		return rv;
	}
	rv = ops->d_start(&spec, NULL, 0, &inst, why, sizeof(why));
	if (rv == 0) {
		rv = comp_add(a->a_comps, name, ops, inst, 0);
		if (rv != 0) {
			(void)ops->d_stop(inst, 0);
			ops->d_free(inst);
		}
	}
	if (rv == -EEXIST)
		snprintf(err, errlen, "component %s given twice", name);
	else if (rv != 0)
		snprintf(err, errlen, "%s %s: %s", kind, name, why[0] != '\0' ? why : err_str(rv));
	if (rv != 0)
		return rv;
	(void)comp_set_requires(a->a_comps, name, creq, nreqs);
	strcpy(a->a_own[a->a_nown++], name);
	return 0;
}

int
agent_add_component(struct agent *a, const char *kind, const char *name,
    const struct drv_setting *settings, size_t nsettings, const struct agent_req *reqs,
    size_t nreqs, char *err, size_t errlen)
{
	return agent_add_comp(a, kind, name, settings, nsettings, NULL, reqs, nreqs, false, err,
	    errlen);
}

/* Adds the component of spec s (kept in a->a_config, which outlives it). */
static int
agent_add_spec(struct agent *a, const struct spec *s, char *err, size_t errlen)
{
	struct agent_req reqs[LIMIT_REQUIRES_MAX];
	struct drv_setting set;
	char bytes_s[24];
	size_t nsets = 0;
	bool exec = strcmp(s->sp_driver, "demo") != 0;

	for (size_t i = 0; i < s->sp_nrequires; i++) {
		reqs[i].ar_key = s->sp_requires[i].sr_key;
		reqs[i].ar_value = s->sp_requires[i].sr_value;
	}
	if (!exec) {
		snprintf(bytes_s, sizeof(bytes_s), "%" PRIu64, s->sp_demo_bytes);
		set.st_key = "bytes";
		set.st_value = bytes_s;
		nsets = 1;
	}
	return agent_add_comp(a, s->sp_driver, s->sp_name, &set, nsets,
	    exec ? &s->sp_exec : NULL, reqs, s->sp_nrequires, s->sp_fresh, err, errlen);
}

int
agent_use_config(struct agent *a, struct spec_config *cfg, char *err, size_t errlen)
{
	char why[512];
	int rv;

	if (a->a_started || a->a_config != NULL) {
		snprintf(err, errlen, "%s: a config file is used once, before start", cfg->sc_path);
		spec_config_free(cfg);
		return -EINVAL;
	}
	a->a_config = cfg;
	rv = agent_lib_start(a, err, errlen);
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < cfg->sc_nspecs; i++) {
		const struct spec *s = cfg->sc_specs[i];
		rv = agent_add_spec(a, s, why, sizeof(why));
		if (rv != 0) {
			if (s->sp_line > 0)
				snprintf(err, errlen, "%s:%d: [component %s]: %s", cfg->sc_path, s->sp_line,
				    s->sp_name, why);
			else
				snprintf(err, errlen, "%s: [component %s]: %s", cfg->sc_path, s->sp_name,
				    why);
			return rv;
		}
	}
	return 0;
}

size_t
agent_component_count(const struct agent *a)
{
	return a->a_nown;
}

const struct spec *
agent_spec_find(const struct agent *a, const char *name)
{
	const struct spec *kept = svc_spec_kept_find(a, name);

	if (kept != NULL)
		return kept; /* the manager sent it with its restore: it wins */
	if (a->a_config == NULL)
		return NULL;
	for (size_t i = 0; i < a->a_config->sc_nspecs; i++)
		if (strcmp(a->a_config->sc_specs[i]->sp_name, name) == 0)
			return a->a_config->sc_specs[i];
	return NULL;
}

void
agent_drv_spec(const struct agent *a, const char *name, const char *kind,
    struct drv_spec *ret_spec)
{
	const struct spec *s = agent_spec_find(a, name);

	memset(ret_spec, 0, sizeof(*ret_spec));
	ret_spec->sp_name = name;
	if (s != NULL && strcmp(s->sp_driver, kind) == 0 && strcmp(kind, "demo") != 0)
		ret_spec->sp_exec = &s->sp_exec;
	ret_spec->sp_lib = a->a_lib;
}

static int
agent_spawn(struct agent *a, void *(*fn)(void *), const char *name)
{
	int rv = -pthread_create(&a->a_threads[a->a_nthreads], NULL, fn, a);
	if (rv == 0)
		pthread_setname_np(a->a_threads[a->a_nthreads++], name);
	return rv;
}

int
agent_start(struct agent *a, char *err, size_t errlen)
{
	struct rpc_server_config sc = {
		.rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = svc_handlers,
		.rs_arg = a,
		.rs_recv_max = a->a_recv_max,
		.rs_workers = a->a_workers,
		.rs_on_bad = svc_on_bad,
		.rs_roles = svc_roles,
		.rs_on_refused = svc_on_refused,
		.rs_on_limit = svc_on_limit,
	};
	struct rpc_error rerr;
	int rv;

	rpc_limits_apply(&a->a_limits, &sc); /* all 0: the defaults */

	if (a->a_started) {
		snprintf(err, errlen, "agent already started");
		return -EINVAL;
	}
	a->a_started = true;
	if (a->a_lib != NULL)
		LOG_INFO("lib components talk to %s", drv_lib_host_url(a->a_lib));
	if (a->a_fresh && a->a_nown > 0)
		LOG_INFO("%zu component(s) start fresh (--fresh): checkpoints of them are not restored",
		    a->a_nown);
	else if (a->a_ndecl > 0)
		LOG_INFO("%zu component(s) to resume: each is restored from its latest checkpoint, "
			 "or started fresh when none exists, once the manager answers",
		    a->a_ndecl);
	if (a->a_http != NULL) {
		rv = amet_new(a, &a->a_amet);
		if (rv != 0) {
			snprintf(err, errlen, "cannot make the metrics: %s", err_str(rv));
			return rv;
		}
		sc.rs_metrics = amet_registry(a->a_amet);
		/* Before the threads: /readyz answers 503 until the agent attaches. */
		rv = amet_serve(a->a_amet, a->a_http, err, errlen);
		if (rv != 0)
			return rv;
	}
	rv = tls_url_check(a->a_tls, a->a_listen, err, errlen);
	if (rv == 0)
		rv = tls_url_check(a->a_tls, a->a_manager, err, errlen);
	if (rv != 0)
		return rv;
	/* Listen first: the manager may call as soon as it knows the address. */
	sc.rs_tls = a->a_tls;
	rv = rpc_server_start(&sc, a->a_listen, &a->a_server);
	if (rv != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", a->a_listen, err_str(rv));
		return rv;
	}
	rv = rpc_client_open_tls(a->a_manager, &ckpt__v1__manager__descriptor, 0, 0, a->a_tls,
	    &a->a_mgr, &rerr);
	if (rv != 0) {
		snprintf(err, errlen, "manager %s: %s", a->a_manager, rerr.re_msg);
		return rv;
	}
	rpc_client_expect_peer(a->a_mgr, "manager"); /* with authentication on */
	rv = agent_spawn(a, tick_main, "agent:tick");
	if (rv == 0)
		rv = agent_spawn(a, link_main, "agent:link");
	if (rv == 0)
		rv = agent_spawn(a, ckpt_main, "agent:ckpt");
	if (rv == 0)
		rv = agent_spawn(a, notify_main, "agent:notify");
	if (rv == 0)
		rv = agent_spawn(a, super_main, "agent:super");
	if (rv == 0 && a->a_migrate_after_ms > 0 && a->a_nown > 0)
		rv = agent_spawn(a, migr_main, "agent:migrate");
	if (rv != 0)
		snprintf(err, errlen, "cannot start threads: %s", err_str(rv));
	return rv;
}

const char *
agent_url(const struct agent *a)
{
	return a->a_server != NULL ? rpc_server_url(a->a_server) : a->a_listen;
}

struct rpc_server *
agent_rpc_server(struct agent *a)
{
	return a->a_server;
}

const char *
agent_http_url(const struct agent *a)
{
	return a->a_amet != NULL ? amet_url(a->a_amet) : NULL;
}

void
agent_stop(struct agent *a)
{
	struct agent_nas *h;

	if (a == NULL || a->a_stopped)
		return;
	a->a_stopped = true;
	amet_halt(a->a_amet); /* its readiness thread calls the NAS */
	pthread_mutex_lock(&a->a_mu);
	a->a_stopping = true;
	pthread_cond_broadcast(&a->a_cv);
	h = a->a_nas;
	pthread_mutex_unlock(&a->a_mu);
	/* Calls in progress (a Migrate, a store to a dead NAS) return at once. */
	if (h != NULL)
		nasc_abort(h->an_nasc);
	rpc_client_abort(a->a_mgr);
	rpc_server_stop(a->a_server);
	a->a_server = NULL;
	for (unsigned i = 0; i < a->a_nthreads; i++)
		pthread_join(a->a_threads[i], NULL);
	a->a_nthreads = 0;
	pthread_mutex_lock(&a->a_mu);
	h = a->a_nas;
	a->a_nas = NULL;
	pthread_mutex_unlock(&a->a_mu);
	nasref_put(a, h);
	rpc_client_close(a->a_mgr);
	a->a_mgr = NULL;
}

void
agent_free(struct agent *a)
{
	if (a == NULL)
		return;
	agent_stop(a);
	amet_free(a->a_amet); /* after the server and the threads, which count in it */
	comp_table_free(a->a_comps);
	/* After the table: its lib instances are gone from the host. */
	drv_lib_host_stop(a->a_lib);
	queue_free(a->a_queue);
	rate_free(a->a_rate); /* after agent_stop(): no NAS client is left to use it */
	arena_free(a->a_link_arena);
	for (size_t i = 0; i < a->a_nlabels; i++) {
		free((char *)a->a_labels[i].al_key);
		free((char *)a->a_labels[i].al_value);
	}
	free(a->a_labels);
	free(a->a_own);
	decl_free(a);
	spec_config_free(a->a_config);
	svc_spec_kept_free(a);
	free(a->a_node);
	free(a->a_manager);
	free(a->a_listen);
	free(a->a_advertise);
	free(a->a_http);
	free(a->a_local_dir);
	pthread_cond_destroy(&a->a_cv);
	pthread_mutex_destroy(&a->a_flush_mu);
	pthread_mutex_destroy(&a->a_mu);
	free(a);
}

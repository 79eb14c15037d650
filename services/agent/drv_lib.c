/* drv_lib: the lib driver over exec.h (the process) and local.h (its checkpoints). See drv_lib.h. */
#include "drv_lib.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "key.h"

#define DRV_LIB_STATE_MAX ((1ull << 30) + LOCAL_STATE_HEAD + LOCAL_REGIONS_MAX * LOCAL_STATE_ENTRY)

struct drv_lib_host {
	struct local_server *lh_server;
	/* Guards lh_insts and each instance's dl_pending (never held across a call out). */
	pthread_mutex_t lh_mu;
	struct drv_inst *lh_insts[LIMIT_NODE_COMPONENTS_MAX];
};

struct drv_inst {
	struct drv_lib_host *dl_host;
	char dl_name[KEY_NAME_MAX + 1];
	struct exec_conf *dl_conf; /* own copy, with the CKPT_* variables; dl_x points into it */
	struct exec *dl_x;
	/* Serialises exec_status, exec_stop and exec_free (exec.h asks for it). */
	pthread_mutex_t dl_mu;
	/* What d_status reports (never blocks). */
	atomic_int dl_run; /* enum drv_run */
	atomic_int dl_wstatus;
	atomic_int dl_pid;
	atomic_ullong dl_state_bytes;
	atomic_bool dl_stopping;
	/* Under the host's lh_mu: the newest checkpoint handed over, not yet given. */
	struct local_ckpt *dl_pending;
	/* The checkpoint side (comp.c calls one op at a time): */
	void *dl_owed;             /* the state it started with, until given once */
	size_t dl_owed_len;
	bool dl_owe;
	struct local_ckpt *dl_given; /* given by d_checkpoint, until d_ckpt_done */
	struct drv_region *dl_regions;
	uint8_t *dl_header;
	uint64_t dl_last_seq;      /* the program's count of the last one given; 0: none */
};

/* ---- the host ---- */

/* The local server's callback: ck becomes its instance's pending checkpoint. */
static int
drv_lib_on_checkpoint(void *arg, struct local_ckpt *ck, const char **ret_why)
{
	struct drv_lib_host *h = arg;
	struct local_ckpt *old = NULL;
	int rv = -ESRCH;

	pthread_mutex_lock(&h->lh_mu);
	for (size_t i = 0; i < LIMIT_NODE_COMPONENTS_MAX; i++) {
		struct drv_inst *in = h->lh_insts[i];
		if (in == NULL || strcmp(in->dl_name, ck->lc_component) != 0)
			continue;
		old = in->dl_pending;
		in->dl_pending = ck;
		rv = 0;
		break;
	}
	pthread_mutex_unlock(&h->lh_mu);
	/* Superseded before the agent took it: the newer one holds all it had. */
	local_ckpt_release(old);
	if (rv != 0 && ret_why != NULL)
		*ret_why = "no lib component of that name runs on this node";
	return rv;
}

int
drv_lib_host_start(const char *dir, struct drv_lib_host **ret_host, char *err, size_t errlen)
{
	struct local_config cfg = { 0 };
	sigset_t all, old;
	struct drv_lib_host *h;
	struct stat st;
	char url[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	int rv;

	if (dir == NULL || dir[0] != '/') {
		snprintf(err, errlen, "local-dir: must be an absolute path");
		return -EINVAL;
	}
	if ((size_t)snprintf(url, sizeof(url), "ipc://%s/%s", dir, DRV_LIB_SOCKET) >=
	    sizeof(url) - 8) {
		snprintf(err, errlen, "local-dir: %s is too long for a socket path", dir);
		return -ENAMETOOLONG;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rv = -errno;
		snprintf(err, errlen, "local-dir: cannot make %s: %s", dir, strerror(errno));
		return rv;
	}
	if (lstat(dir, &st) != 0) {
		rv = -errno;
		snprintf(err, errlen, "local-dir: %s: %s", dir, strerror(errno));
		return rv;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "local-dir: %s is not a folder", dir);
		return -ENOTDIR;
	}
	/* The socket is chmod'ed after bind: the folder must be ours alone meanwhile. */
	if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "local-dir: %s must belong to uid %u and be closed to others "
		    "(mode 0700)", dir, (unsigned)geteuid());
		return -EACCES;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	pthread_mutex_init(&h->lh_mu, NULL);
	cfg.lc_url = url;
	cfg.lc_on_checkpoint = drv_lib_on_checkpoint;
	cfg.lc_arg = h;
	/*
	 * The server's threads (and nng's, which may start here) block every
	 * signal: the agent may start this before its main thread blocks
	 * SIGTERM for sigwait(), and a thread that takes SIGTERM would end it.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rv = local_start(&cfg, &h->lh_server);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rv != 0) {
		snprintf(err, errlen, "local server on %s: %s", url, strerror(-rv));
		pthread_mutex_destroy(&h->lh_mu);
		free(h);
		return rv;
	}
	*ret_host = h;
	return 0;
}

const char *
drv_lib_host_url(const struct drv_lib_host *h)
{
	return local_url(h->lh_server);
}

struct local_server *
drv_lib_host_server(struct drv_lib_host *h)
{
	return h->lh_server;
}

void
drv_lib_host_stop(struct drv_lib_host *h)
{
	if (h == NULL)
		return;
	local_stop(h->lh_server);
	pthread_mutex_destroy(&h->lh_mu);
	free(h);
}

/* Adds in to the host's table: -EEXIST (name taken), -ENOSPC. */
static int
drv_lib_host_add(struct drv_lib_host *h, struct drv_inst *in)
{
	int rv = -ENOSPC;

	pthread_mutex_lock(&h->lh_mu);
	for (size_t i = 0; i < LIMIT_NODE_COMPONENTS_MAX; i++)
		if (h->lh_insts[i] != NULL && strcmp(h->lh_insts[i]->dl_name, in->dl_name) == 0) {
			rv = -EEXIST;
			goto out;
		}
	for (size_t i = 0; i < LIMIT_NODE_COMPONENTS_MAX; i++)
		if (h->lh_insts[i] == NULL) {
			h->lh_insts[i] = in;
			rv = 0;
			break;
		}
out:
	pthread_mutex_unlock(&h->lh_mu);
	return rv;
}

/* Removes in from the table; returns its pending checkpoint (the caller releases it). */
static struct local_ckpt *
drv_lib_host_remove(struct drv_lib_host *h, struct drv_inst *in)
{
	struct local_ckpt *ck;

	pthread_mutex_lock(&h->lh_mu);
	for (size_t i = 0; i < LIMIT_NODE_COMPONENTS_MAX; i++)
		if (h->lh_insts[i] == in)
			h->lh_insts[i] = NULL;
	ck = in->dl_pending;
	in->dl_pending = NULL;
	pthread_mutex_unlock(&h->lh_mu);
	return ck;
}

/* ---- the driver ---- */

static int
drv_lib_check(const struct drv_spec *spec, char *err, size_t errlen)
{
	if (spec->sp_exec == NULL || !spec->sp_exec->xc_run_only) {
		snprintf(err, errlen, "a lib component needs its program (run, folder): declare it "
		                      "with driver = lib in the agent's config file");
		return -EINVAL;
	}
	if (spec->sp_lib == NULL) {
		snprintf(err, errlen, "this agent runs no local server for libckpt programs "
		                      "([allow] drivers = lib in its config file)");
		return -ENOTSUP;
	}
	return exec_conf_check(spec->sp_exec, err, errlen);
}

/* A copy of c whose environment ends with CKPT_LOCAL_URL and CKPT_COMPONENT. */
static struct exec_conf *
drv_lib_conf(const struct exec_conf *c, const char *url, const char *name)
{
	struct exec_conf *d = exec_conf_dup(c);
	size_t n = 0;
	char **env;

	if (d == NULL)
		return NULL;
	while (d->xc_env != NULL && d->xc_env[n] != NULL)
		n++;
	env = realloc(d->xc_env, (n + 3) * sizeof(*env));
	if (env == NULL)
		goto out_free;
	d->xc_env = env;
	env[n] = NULL;
	if (asprintf(&env[n], "CKPT_LOCAL_URL=%s", url) < 0) {
		env[n] = NULL;
		goto out_free;
	}
	env[n + 1] = NULL;
	if (asprintf(&env[n + 1], "CKPT_COMPONENT=%s", name) < 0) {
		env[n + 1] = NULL;
		goto out_free;
	}
	env[n + 2] = NULL;
	return d;
out_free:
	exec_conf_free(d);
	return NULL;
}

static void
drv_lib_free(struct drv_inst *in)
{
	if (in == NULL)
		return;
	local_ckpt_release(drv_lib_host_remove(in->dl_host, in));
	(void)local_forget(drv_lib_host_server(in->dl_host), in->dl_name);
	pthread_mutex_lock(&in->dl_mu);
	exec_free(in->dl_x);
	in->dl_x = NULL;
	pthread_mutex_unlock(&in->dl_mu);
	pthread_mutex_destroy(&in->dl_mu);
	local_ckpt_release(in->dl_given);
	free(in->dl_regions);
	free(in->dl_header);
	free(in->dl_owed);
	exec_conf_free(in->dl_conf);
	free(in);
}

static int
drv_lib_start(const struct drv_spec *spec, void *state, size_t len, struct drv_inst **ret_inst,
    char *err, size_t errlen)
{
	struct local_expect le = { 0 };
	struct local_region *regions = NULL;
	size_t nregions = 0;
	struct drv_inst *in;
	pid_t pid;
	int rv;

	rv = drv_lib_check(spec, err, errlen);
	if (rv != 0)
		return rv;
	if (state != NULL) {
		rv = local_state_decode(state, len, &regions, &nregions);
		free(regions);
		if (rv != 0) {
			snprintf(err, errlen, "the state is not a libckpt checkpoint");
			return rv;
		}
	}
	in = calloc(1, sizeof(*in));
	if (in == NULL)
		return -ENOMEM;
	in->dl_host = spec->sp_lib;
	snprintf(in->dl_name, sizeof(in->dl_name), "%s", spec->sp_name);
	pthread_mutex_init(&in->dl_mu, NULL);
	atomic_init(&in->dl_run, DRV_RUN_STARTING);
	atomic_init(&in->dl_wstatus, 0);
	atomic_init(&in->dl_pid, 0);
	atomic_init(&in->dl_state_bytes, state != NULL ? (unsigned long long)len : 0);
	atomic_init(&in->dl_stopping, false);
	in->dl_conf = drv_lib_conf(spec->sp_exec, drv_lib_host_url(spec->sp_lib), spec->sp_name);
	if (in->dl_conf == NULL) {
		pthread_mutex_destroy(&in->dl_mu);
		free(in);
		return -ENOMEM;
	}
	rv = drv_lib_host_add(in->dl_host, in);
	if (rv != 0) {
		snprintf(err, errlen, rv == -EEXIST ? "a lib component of that name runs already"
		                                    : "too many lib components on this node");
		exec_conf_free(in->dl_conf);
		pthread_mutex_destroy(&in->dl_mu);
		free(in);
		return rv;
	}
	/* Expected before it runs; its first Hello binds the pid, checked below. */
	le.le_component = in->dl_name;
	le.le_pid = 0;
	le.le_max_bytes = spec->sp_exec->xc_limit;
	if (state != NULL && nregions > 0) {
		le.le_state = state;
		le.le_state_len = len;
	}
	rv = local_expect(drv_lib_host_server(in->dl_host), &le);
	if (rv != 0) {
		snprintf(err, errlen, "expecting it on the local server: %s", strerror(-rv));
		goto out_free;
	}
	rv = exec_start(in->dl_conf, NULL, 0, &in->dl_x, err, errlen);
	if (rv != 0)
		goto out_free;
	pid = exec_pid(in->dl_x);
	atomic_store(&in->dl_pid, (int)pid);
	rv = local_bind(drv_lib_host_server(in->dl_host), in->dl_name, pid);
	if (rv != 0) {
		snprintf(err, errlen, "another process (not %d) introduced itself as the component",
		    (int)pid);
		(void)exec_stop(in->dl_x, 0, NULL);
		goto out_free;
	}
	/* Given once by d_checkpoint (drv_lib.h): the restored bytes, or no regions. */
	if (state != NULL) {
		in->dl_owed = state;
		in->dl_owed_len = len;
	} else {
		in->dl_owed_len = local_state_header_size(0);
		in->dl_owed = calloc(1, in->dl_owed_len);
		if (in->dl_owed == NULL ||
		    local_state_header(NULL, 0, in->dl_owed, in->dl_owed_len) != 0) {
			rv = -ENOMEM;
			(void)exec_stop(in->dl_x, 0, NULL);
			goto out_free;
		}
	}
	in->dl_owe = true;
	atomic_store(&in->dl_state_bytes, (unsigned long long)in->dl_owed_len);
	atomic_store(&in->dl_run, DRV_RUN_RUNNING);
	*ret_inst = in;
	return 0;
out_free:
	drv_lib_free(in);
	return rv;
}

/* Records how `run` ended (st from exec_status or exec_stop). */
static void
drv_lib_note_end(struct drv_inst *in, const struct exec_status *st)
{
	int ws;

	if (st->es_state == EXEC_RUNNING)
		return;
	ws = st->es_state == EXEC_EXITED ? W_EXITCODE(st->es_code & 0xff, 0)
	                                 : W_EXITCODE(0, st->es_code & 0x7f);
	atomic_store(&in->dl_wstatus, ws);
	if (atomic_load(&in->dl_stopping) || (st->es_state == EXEC_EXITED && st->es_code == 0))
		atomic_store(&in->dl_run, DRV_RUN_EXITED);
	else
		atomic_store(&in->dl_run, DRV_RUN_CRASHED);
}

static void
drv_lib_tick(struct drv_inst *in)
{
	struct exec_status st;

	if (atomic_load(&in->dl_run) != DRV_RUN_RUNNING)
		return;
	if (pthread_mutex_trylock(&in->dl_mu) != 0)
		return;
	if (exec_status(in->dl_x, &st) == 0)
		drv_lib_note_end(in, &st);
	pthread_mutex_unlock(&in->dl_mu);
}

/* ck as regions of its stored form (header, then its regions) and its hints. */
static int
drv_lib_give(struct drv_inst *in, struct local_ckpt *ck, struct drv_ckpt *ret_ckpt)
{
	struct drv_ckpt out = { 0 };
	struct local_range *ranges = NULL;
	size_t hlen = local_state_header_size(ck->lc_n_regions), nranges = 0;
	uint64_t total = hlen;
	int rv;

	in->dl_header = malloc(hlen);
	in->dl_regions = calloc(ck->lc_n_regions + 1, sizeof(*in->dl_regions));
	if (in->dl_header == NULL || in->dl_regions == NULL) {
		rv = -ENOMEM;
		goto out_fail;
	}
	rv = local_state_header(ck->lc_regions, ck->lc_n_regions, in->dl_header, hlen);
	if (rv != 0)
		goto out_fail;
	in->dl_regions[0] = (struct drv_region){ in->dl_header, hlen };
	for (size_t i = 0; i < ck->lc_n_regions; i++) {
		in->dl_regions[i + 1] = (struct drv_region){ ck->lc_regions[i].lr_data,
			(size_t)ck->lc_regions[i].lr_size };
		total += ck->lc_regions[i].lr_size;
	}
	/*
	 * Hints say what changed since the program's previous checkpoint: they
	 * hold for this one only when that previous one is the last given here.
	 */
	if (in->dl_last_seq != 0 && ck->lc_seq == in->dl_last_seq + 1) {
		rv = local_ckpt_changed(ck, &ranges, &nranges);
		if (rv != 0)
			goto out_fail;
		out.ck_changed = calloc(nranges > 0 ? nranges : 1, sizeof(*out.ck_changed));
		if (out.ck_changed == NULL) {
			free(ranges);
			rv = -ENOMEM;
			goto out_fail;
		}
		for (size_t i = 0; i < nranges; i++)
			out.ck_changed[i] = (struct drv_range){ ranges[i].lg_offset, ranges[i].lg_length };
		out.ck_nchanged = nranges;
		out.ck_hinted = true;
		free(ranges);
	}
	out.ck_regions = in->dl_regions;
	out.ck_nregions = ck->lc_n_regions + 1;
	in->dl_given = ck;
	in->dl_last_seq = ck->lc_seq;
	atomic_store(&in->dl_state_bytes, (unsigned long long)total);
	*ret_ckpt = out;
	return 0;
out_fail:
	free(in->dl_header);
	free(in->dl_regions);
	in->dl_header = NULL;
	in->dl_regions = NULL;
	return rv;
}

static int
drv_lib_checkpoint(struct drv_inst *in, bool final, struct drv_ckpt *ret_ckpt, char *err,
    size_t errlen)
{
	struct drv_ckpt out = { 0 };
	struct local_ckpt *ck;
	int rv;

	drv_lib_tick(in);
	pthread_mutex_lock(&in->dl_host->lh_mu);
	ck = in->dl_pending;
	in->dl_pending = NULL;
	pthread_mutex_unlock(&in->dl_host->lh_mu);
	if (ck != NULL) {
		rv = drv_lib_give(in, ck, ret_ckpt);
		if (rv != 0) {
			/* Not lost: it stays pending unless a newer one came meanwhile. */
			pthread_mutex_lock(&in->dl_host->lh_mu);
			if (in->dl_pending == NULL) {
				in->dl_pending = ck;
				ck = NULL;
			}
			pthread_mutex_unlock(&in->dl_host->lh_mu);
			local_ckpt_release(ck);
			snprintf(err, errlen, "%s", strerror(-rv));
			return rv;
		}
		/* The program's own checkpoint supersedes the state it started with. */
		free(in->dl_owed);
		in->dl_owed = NULL;
		in->dl_owe = false;
		return 0;
	}
	if (in->dl_owe) {
		out.ck_buf = in->dl_owed;
		out.ck_len = in->dl_owed_len;
		in->dl_owed = NULL;
		in->dl_owe = false;
		*ret_ckpt = out;
		return 0;
	}
	if (atomic_load(&in->dl_run) != DRV_RUN_RUNNING) {
		snprintf(err, errlen, "its process %d is no longer running; nothing new since",
		    atomic_load(&in->dl_pid));
		/* Its last checkpoint stored is its latest state: a final one moves with it. */
		return final ? -EAGAIN : -ESRCH;
	}
	snprintf(err, errlen, "nothing new: the program has not checkpointed since");
	return -EAGAIN;
}

static void
drv_lib_ckpt_done(struct drv_inst *in)
{
	local_ckpt_release(in->dl_given);
	in->dl_given = NULL;
	free(in->dl_regions);
	free(in->dl_header);
	in->dl_regions = NULL;
	in->dl_header = NULL;
}

static int
drv_lib_stop(struct drv_inst *in, unsigned grace_ms)
{
	struct exec_status st;
	int rv;

	atomic_store(&in->dl_stopping, true);
	pthread_mutex_lock(&in->dl_mu);
	rv = exec_stop(in->dl_x, grace_ms, &st);
	if (rv == 0)
		drv_lib_note_end(in, &st);
	pthread_mutex_unlock(&in->dl_mu);
	return rv;
}

static void
drv_lib_status(struct drv_inst *in, struct drv_status *ret_status)
{
	struct drv_status st = { 0 };

	st.ds_run = (enum drv_run)atomic_load(&in->dl_run);
	st.ds_pid = (pid_t)atomic_load(&in->dl_pid);
	st.ds_wstatus = atomic_load(&in->dl_wstatus);
	st.ds_state_bytes = atomic_load(&in->dl_state_bytes);
	*ret_status = st;
}

static bool
drv_lib_pending(struct drv_inst *in)
{
	bool pending;

	pthread_mutex_lock(&in->dl_host->lh_mu);
	pending = in->dl_pending != NULL;
	pthread_mutex_unlock(&in->dl_host->lh_mu);
	return pending;
}

const struct drv_ops drv_lib_ops = {
	.d_kind = DRV_LIB_KIND,
	.d_state_max = DRV_LIB_STATE_MAX,
	.d_check = drv_lib_check,
	.d_start = drv_lib_start,
	.d_checkpoint = drv_lib_checkpoint,
	.d_ckpt_done = drv_lib_ckpt_done,
	.d_stop = drv_lib_stop,
	.d_status = drv_lib_status,
	.d_tick = drv_lib_tick,
	.d_digest = NULL,
	.d_free = drv_lib_free,
	.d_pending = drv_lib_pending,
};

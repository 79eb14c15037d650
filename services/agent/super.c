/* super: supervision of crashed components (super.h), and the agent's supervisor thread. */
#include "super.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "agent_int.h"
#include "err.h"
#include "log.h"
#include "spec.h"
#include "util.h"

/* What supervision remembers of a component that crashed. */
struct super_rec {
	comp_name sr_name;
	const struct drv_ops *sr_ops;
	bool sr_waiting;       /* out of service, to be restarted at sr_due_ms */
	uint32_t sr_failures;  /* in a row: crashes and failed restarts */
	uint64_t sr_due_ms;
	uint64_t sr_started_ms; /* last restart (not waiting) */
	char sr_why[LIMIT_REASON_MAX]; /* the last failure */
};

struct super {
	struct super_env s_env;
	struct super_rec s_recs[COMP_MAX];
	size_t s_nrecs;
};

int
super_new(const struct super_env *env, struct super **ret_super)
{
	struct super *s;

	if (env->se_comps == NULL || env->se_start == NULL)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->s_env = *env;
	*ret_super = s;
	return 0;
}

void
super_free(struct super *s)
{
	free(s);
}

size_t
super_waiting(struct super *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->s_nrecs; i++)
		n += s->s_recs[i].sr_waiting;
	return n;
}

static struct super_rec *
super_rec_find(struct super *s, const char *name)
{
	for (size_t i = 0; i < s->s_nrecs; i++)
		if (strcmp(s->s_recs[i].sr_name, name) == 0)
			return &s->s_recs[i];
	return NULL;
}

static void
super_rec_drop(struct super *s, struct super_rec *r)
{
	*r = s->s_recs[--s->s_nrecs];
}

static void
super_policy_of(struct super *s, const char *name, struct super_policy *ret)
{
	struct super_policy p = { SPEC_MAX_RESTARTS_DEFAULT, SPEC_BACKOFF_DEFAULT_MS };

	if (s->s_env.se_policy != NULL)
		s->s_env.se_policy(s->s_env.se_arg, name, &p);
	*ret = p;
}

/* backoff * 2^(failures - 1), at most SUPER_BACKOFF_MAX_MS. */
static uint64_t
super_backoff(const struct super_policy *p, uint32_t failures)
{
	uint64_t ms = p->su_backoff_ms;

	for (uint32_t i = 1; i < failures && ms < SUPER_BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < SUPER_BACKOFF_MAX_MS ? ms : SUPER_BACKOFF_MAX_MS;
}

/* How a process ended, in words. */
static void
super_describe(const struct drv_status *st, char *buf, size_t len)
{
	if (WIFSIGNALED(st->ds_wstatus))
		snprintf(buf, len, "its process %d was killed by signal %d (%s)", (int)st->ds_pid,
		    WTERMSIG(st->ds_wstatus), strsignal(WTERMSIG(st->ds_wstatus)));
	else if (WIFEXITED(st->ds_wstatus))
		snprintf(buf, len, "its process %d exited with status %d", (int)st->ds_pid,
		    WEXITSTATUS(st->ds_wstatus));
	else
		snprintf(buf, len, "its process %d ended", (int)st->ds_pid);
}

/*
 * r failed once more (why): schedules its restart after the back-off, or
 * gives up on it when it failed more than the policy allows in a row.
 */
static void
super_failed(struct super *s, struct super_rec *r, uint64_t now_ms, const char *why)
{
	struct super_policy p;
	char reason[LIMIT_REASON_MAX];

	super_policy_of(s, r->sr_name, &p);
	r->sr_failures++;
	snprintf(r->sr_why, sizeof(r->sr_why), "%s", why);
	if (r->sr_failures > p.su_max_restarts) {
		snprintf(reason, sizeof(reason), "%u failure%s in a row (max-restarts %u), last: %s",
		    r->sr_failures, r->sr_failures == 1 ? "" : "s", p.su_max_restarts, why);
		if (comp_fail(s->s_env.se_comps, r->sr_name, reason) == 0)
			LOG_ERROR("component %s FAILED: %s; the manager places it on another node",
			    r->sr_name, reason);
		super_rec_drop(s, r);
		return;
	}
	r->sr_waiting = true;
	r->sr_due_ms = now_ms + super_backoff(&p, r->sr_failures);
	LOG_WARN("component %s: %s; restart %u of at most %u in a row in %" PRIu64 " ms",
	    r->sr_name, why, r->sr_failures, p.su_max_restarts, r->sr_due_ms - now_ms);
}

/* Takes name, which crashed, out of service. */
static void
super_take(struct super *s, const char *name, uint64_t now_ms)
{
	const struct drv_ops *ops = NULL;
	struct drv_inst *inst = NULL;
	struct drv_status st;
	struct super_rec *r;
	char why[LIMIT_REASON_MAX];

	if (s->s_env.se_salvage != NULL)
		s->s_env.se_salvage(s->s_env.se_arg, name);
	if (comp_crash_take(s->s_env.se_comps, name, &ops, &inst, &st) != 0)
		return; /* busy with a checkpoint (next round), or gone */
	if (s->s_env.se_crashed != NULL)
		s->s_env.se_crashed(s->s_env.se_arg, name);
	/* Reaps what is left of it (the process is gone: no grace). */
	(void)ops->d_stop(inst, 0);
	ops->d_free(inst);
	r = super_rec_find(s, name);
	if (r == NULL) {
		/* COMP_MAX components at most, each with one record. */
		r = &s->s_recs[s->s_nrecs++];
		memset(r, 0, sizeof(*r));
		snprintf(r->sr_name, sizeof(r->sr_name), "%s", name);
	} else if (now_ms - r->sr_started_ms >= SUPER_STABLE_MS) {
		r->sr_failures = 0;
	}
	r->sr_ops = ops;
	super_describe(&st, why, sizeof(why));
	LOG_WARN("component %s crashed: %s", name, why);
	super_failed(s, r, now_ms, why);
}

/* Restarts r, whose back-off has passed. */
static void
super_restart(struct super *s, struct super_rec *r, uint64_t now_ms)
{
	struct super_start ss = { 0 };
	char err[LIMIT_REASON_MAX] = "", why[LIMIT_REASON_MAX];
	int rv;

	rv = s->s_env.se_start(s->s_env.se_arg, r->sr_name, r->sr_ops, &ss, err, sizeof(err));
	if (rv == -EAGAIN) {
		struct super_policy p;
		super_policy_of(s, r->sr_name, &p);
		r->sr_due_ms = now_ms + super_backoff(&p, r->sr_failures);
		LOG_WARN("component %s: its restart waits %" PRIu64 " ms more: %s", r->sr_name,
		    r->sr_due_ms - now_ms, err[0] != '\0' ? err : err_str(rv));
		return;
	}
	if (rv != 0) {
		snprintf(why, sizeof(why), "its restart failed: %s", err[0] != '\0' ? err : err_str(rv));
		super_failed(s, r, now_ms, why);
		return;
	}
	rv = comp_restarted(s->s_env.se_comps, r->sr_name, ss.ss_inst,
	    ss.ss_restored ? &ss.ss_from : NULL, ss.ss_state_sha256);
	if (rv != 0) {
		/* Removed or revoked while it was loading: nothing to restart any more. */
		LOG_INFO("component %s left this node during its restart", r->sr_name);
		(void)r->sr_ops->d_stop(ss.ss_inst, 0);
		r->sr_ops->d_free(ss.ss_inst);
		super_rec_drop(s, r);
		return;
	}
	r->sr_waiting = false;
	r->sr_started_ms = now_ms;
	if (ss.ss_restored)
		LOG_INFO("component %s restarted from checkpoint %s/%s@%" PRIu64 " (failure %u in a row)",
		    r->sr_name, ss.ss_from.cr_node, ss.ss_from.cr_component, ss.ss_from.cr_seq,
		    r->sr_failures);
	else
		LOG_INFO("component %s restarted fresh: no checkpoint of it exists (failure %u in a row)",
		    r->sr_name, r->sr_failures);
}

uint64_t
super_step(struct super *s, uint64_t now_ms)
{
	comp_name *names = NULL;
	uint64_t wait = SUPER_PERIOD_MS;
	size_t n = 0;

	if (comp_crashed_names(s->s_env.se_comps, &names, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			super_take(s, names[i], now_ms);
		free(names);
	}
	for (size_t i = 0; i < s->s_nrecs;) {
		struct super_rec *r = &s->s_recs[i];
		size_t before = s->s_nrecs;

		if (r->sr_waiting && r->sr_due_ms <= now_ms)
			super_restart(s, r, now_ms);
		else if (!r->sr_waiting && now_ms - r->sr_started_ms >= SUPER_STABLE_MS)
			super_rec_drop(s, r); /* ran long enough: forgotten */
		if (s->s_nrecs < before)
			continue; /* i now holds another record */
		if (r->sr_waiting && r->sr_due_ms > now_ms && r->sr_due_ms - now_ms < wait)
			wait = r->sr_due_ms - now_ms;
		i++;
	}
	return wait;
}

/* ---- the agent's supervisor thread ---- */

static int
super_agent_start(void *arg, const char *name, const struct drv_ops *ops,
    struct super_start *ret, char *err, size_t errlen)
{
	struct agent *a = arg;
	struct drv_spec spec;
	struct svc_load_req lr = {
		.lr_component = name,
		.lr_node = "",
		.lr_seq = 0,
		.lr_kind = ops->d_kind,
		.lr_timeout_ms = SUPER_LOAD_TIMEOUT_MS,
	};
	struct svc_loaded ld;
	struct super_start ss = { 0 };
	int rv;

	/*
	 * Checkpoints that wait for the NAS are newer than what it holds: they
	 * go first, and while they cannot, the restart waits for the NAS.
	 */
	if (!queue_empty(a->a_queue)) {
		(void)ckpt_queue_flush(a, AGENT_STORE_TIMEOUT_MS);
		if (!queue_empty(a->a_queue)) {
			snprintf(err, errlen, "checkpoints newer than the NAS holds wait for it");
			return -EAGAIN;
		}
	}
	rv = svc_load(a, &lr, &ld, err, errlen);
	switch (rv) {
	case -ECONNREFUSED:
	case -ETIMEDOUT:
	case -EHOSTUNREACH:
	case -ENOTCONN:
	case -ECONNRESET:
	case -ECANCELED:
	case -EAGAIN:
		/* The NAS does not answer: not the component's failure. */
		return -EAGAIN;
	default:
		break;
	}
	if (rv == 0) {
		ss.ss_inst = ld.ld_inst;
		ss.ss_restored = true;
		ss.ss_from = ld.ld_from;
		memcpy(ss.ss_state_sha256, ld.ld_state_sha256, SHA_LEN);
	} else if (rv == -ENOENT) {
		/* It crashed before its first checkpoint: it starts over. */
		err[0] = '\0';
		agent_drv_spec(a, name, ops->d_kind, &spec);
		rv = ops->d_start(&spec, NULL, 0, &ss.ss_inst, err, errlen);
	}
	if (rv == 0)
		*ret = ss;
	return rv;
}

/* A crashed lib component's handed-over checkpoint: stored (or queued) before its restart. */
static void
super_agent_salvage(void *arg, const char *name)
{
	struct agent *a = arg;
	struct rpc_error err = { 0 };
	bool queued = false;

	if (!comp_crash_pending(a->a_comps, name))
		return;
	if (ckpt_take(a, name, true, true, AGENT_STORE_TIMEOUT_MS, NULL, &queued, &err) == 0)
		LOG_INFO("component %s crashed: the checkpoint its program had handed over is %s; "
			 "its restart continues from it",
		    name, queued ? "queued for the NAS" : "stored");
	/* A failure is logged by ckpt_take(): the restart takes the newest stored one. */
}

/*
 * The manager publishes a crash when a heartbeat reports it (crashes): one
 * now, not at the next period, so that the event comes before the restart.
 */
static void
super_agent_crashed(void *arg, const char *name)
{
	(void)name;
	link_wake(arg);
}

/* The node's own spec's restart policy (--config), else the defaults. */
static void
super_agent_policy(void *arg, const char *name, struct super_policy *ret)
{
	const struct spec *sp = agent_spec_find(arg, name);

	ret->su_max_restarts = sp != NULL ? sp->sp_max_restarts : SPEC_MAX_RESTARTS_DEFAULT;
	ret->su_backoff_ms = sp != NULL ? sp->sp_backoff_ms : SPEC_BACKOFF_DEFAULT_MS;
}

void *
super_main(void *arg)
{
	struct agent *a = arg;
	struct super_env env = {
		.se_comps = a->a_comps,
		.se_start = super_agent_start,
		.se_policy = super_agent_policy,
		.se_salvage = super_agent_salvage,
		.se_crashed = super_agent_crashed,
		.se_arg = a,
	};
	struct super *s = NULL;
	uint64_t wait = SUPER_PERIOD_MS;
	int rv;

	rv = super_new(&env, &s);
	if (rv != 0) {
		LOG_ERROR("supervision does not run: %s", err_str(rv));
		return NULL;
	}
	while (!agent_sleep(a, (unsigned)wait))
		wait = super_step(s, util_now_mono_ms());
	super_free(s);
	return NULL;
}

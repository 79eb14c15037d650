#include "migrate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/agent.pb-c.h"
#include "err.h"
#include "methods.h"
#include "log.h"
#include "mevent.h"
#include "placement.h"
#include "util.h"
#include "wire.h"


const struct mig_kind mig_kind_migration = { "migration", MEV_MIG_STARTED, MEV_MIG_DONE,
	MEV_MIG_FAILED, false, false, false };
const struct mig_kind mig_kind_failover = { "failover", MEV_FAILOVER_STARTED, MEV_FAILOVER_DONE,
	MEV_FAILOVER_FAILED, true, false, false };
const struct mig_kind mig_kind_drain = { "drain", MEV_MIG_STARTED, MEV_MIG_DONE, MEV_MIG_FAILED,
	false, false, false };
const struct mig_kind mig_kind_resume = { "resume", MEV_RESUME_STARTED, MEV_RESUME_DONE,
	MEV_RESUME_FAILED, true, true, false };
const struct mig_kind mig_kind_apply = { "apply", MEV_APPLY_STARTED, MEV_APPLY_DONE,
	MEV_APPLY_FAILED, true, false, true };

/* A move of a component its node is still starting: how long to wait for its report. */
#define MIG_STARTING_WAIT_MS 5000u
#define MIG_STARTING_POLL_MS 100u

/* One migration in progress. */
struct mig {
	const struct mig_env *m_env;
	const struct mig_kind *m_kind;
	const char *m_comp;
	uint64_t m_t0;       /* monotonic ms */
	unsigned m_budget;   /* caller's deadline, ms after m_t0 */
	struct reg_mig_plan m_plan;
	struct reg_peer *m_target_peer;
	char m_target[KEY_NAME_MAX + 1];
	char m_source[KEY_NAME_MAX + 16]; /* for messages: node or "(nowhere)" */
	struct reg_ckpt m_ckpt;           /* what gets restored */
	bool m_have_ckpt;
	bool m_stopped;                   /* Stop succeeded on the source */
	uint64_t m_epoch;                 /* highest epoch handed out */
	const Ckpt__V1__ComponentSpec *m_spec; /* sent with Restore; NULL: none */
	Ckpt__V1__GetSpecReply *m_spec_rep;    /* the NAS's answer m_spec points into */
	bool m_fresh;                     /* no checkpoint: started from m_spec */
	uint64_t m_nas_epoch;             /* newest epoch the NAS saw of it (spec replies) */
	size_t m_nrefused;
	struct mig_refusal m_refused[MIG_REFUSALS_MAX];
};

static unsigned
mig_left(const struct mig *m)
{
	uint64_t spent = util_now_mono_ms() - m->m_t0;
	return spent >= m->m_budget ? 0 : (unsigned)(m->m_budget - spent);
}

static unsigned
mig_clamp(unsigned v, unsigned lo, unsigned hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void
mig_hex(const uint8_t *sha, char *out)
{
	sha_hex(sha, SHA_LEN, out);
}

int
mig_nas_latest(struct nasc *nasc, const char *component, unsigned timeout_ms,
    struct reg_ckpt *ret_ckpt, char *err, size_t errlen)
{
	Ckpt__V1__ListRequest req = CKPT__V1__LIST_REQUEST__INIT;
	Ckpt__V1__ListReply *rep = NULL;
	struct rpc_error rerr;
	struct reg_ckpt best;
	bool found = false;
	int rv;

	if (nasc == NULL) {
		snprintf(err, errlen, "no NAS configured");
		return -ENOTCONN;
	}
	req.component = (char *)component;
	req.latest_only = 1;
	rv = nasc_call(nasc, NAS_LIST, &req.base, timeout_ms, (ProtobufCMessage **)&rep, &rerr);
	if (rv != 0) {
		snprintf(err, errlen, "%s", rerr.re_msg);
		return rv;
	}
	for (size_t i = 0; i < rep->n_checkpoints; i++) {
		struct reg_ckpt c;
		char why[WIRE_ERR_MAX];
		if (rep->checkpoints[i] == NULL ||
		    wire_ckpt_from_pb(rep->checkpoints[i], &c, why, sizeof(why)) != 0 ||
		    strcmp(c.rk_component, component) != 0)
			continue;
		if (!found || c.rk_seq > best.rk_seq) {
			best = c;
			found = true;
		}
	}
	rpc_reply_free(&rep->base);
	if (!found) {
		snprintf(err, errlen, "the NAS has no checkpoint of %s", component);
		return -ENOENT;
	}
	*ret_ckpt = best;
	return 0;
}

int
mig_nas_spec(struct nasc *nasc, const char *component, unsigned timeout_ms,
    Ckpt__V1__GetSpecReply **ret_rep, char *err, size_t errlen)
{
	Ckpt__V1__GetSpecRequest req = CKPT__V1__GET_SPEC_REQUEST__INIT;
	Ckpt__V1__GetSpecReply *rep = NULL;
	struct rpc_error rerr;
	int rv;

	if (nasc == NULL) {
		snprintf(err, errlen, "no NAS configured");
		return -ENOTCONN;
	}
	req.component = (char *)component;
	rv = nasc_call(nasc, NAS_GET_SPEC, &req.base, timeout_ms, (ProtobufCMessage **)&rep, &rerr);
	if (rv != 0) {
		snprintf(err, errlen, "%s", rerr.re_msg);
		return rerr.re_code == CKPT__V1__CODE__NOT_FOUND ? -ENOENT : rv;
	}
	if (rep->spec == NULL || rep->spec->name == NULL || strcmp(rep->spec->name, component) != 0) {
		rpc_reply_free(&rep->base);
		snprintf(err, errlen, "the NAS answered with another spec than %s's", component);
		return -EPROTO;
	}
	*ret_rep = rep;
	return 0;
}

/* A plan begun and not followed: its owner's reference and the mark on the component go. */
static void
mig_plan_drop(struct mig *m)
{
	reg_peer_put(m->m_plan.rm_owner_peer);
	m->m_plan.rm_owner_peer = NULL;
	reg_migrate_end(m->m_env->me_reg, m->m_comp, NULL, 0, NULL);
}

/* A reg_migrate_begin() that failed, said in err: another move of it (-ECANCELED), or rv. */
static int
mig_begin_failed(struct mig *m, int rv, char *err, size_t errlen)
{
	if (rv == -EBUSY) {
		snprintf(err, errlen, "migration of %s already in progress", m->m_comp);
		return -ECANCELED;
	}
	snprintf(err, errlen, "%s of %s: %s", m->m_kind->mk_what, m->m_comp, err_str(rv));
	return rv;
}

/* Step 1 of an apply: the component may be new; an up node that runs it keeps it. */
static int
mig_begin_apply(struct mig *m, char *err, size_t errlen)
{
	struct reg *reg = m->m_env->me_reg;
	int rv;

	rv = reg_place_begin(reg, m->m_comp, &m->m_plan);
	if (rv == -EBUSY) {
		snprintf(err, errlen, "a migration of %s is in progress", m->m_comp);
		return -ECANCELED;
	}
	if (rv != 0) {
		snprintf(err, errlen, "apply of %s: %s", m->m_comp, err_str(rv));
		return rv;
	}
	if (m->m_plan.rm_owner_up && m->m_plan.rm_owner_runs) {
		snprintf(err, errlen, "%s runs on %s", m->m_comp, m->m_plan.rm_owner);
		mig_plan_drop(m);
		return -EALREADY;
	}
	snprintf(m->m_source, sizeof(m->m_source), "%s",
	    m->m_plan.rm_owner[0] != '\0' ? m->m_plan.rm_owner : "(nowhere)");
	m->m_epoch = m->m_plan.rm_epoch;
	return 0;
}

/*
 * The spec to hand over (read from the NAS unless given), and the labels it
 * requires in the plan. A resume has none: its node runs its own config.
 */
static int
mig_spec(struct mig *m, char *err, size_t errlen)
{
	char why[MIG_ERR_MAX];
	size_t n = 0;
	int rv;

	if (m->m_spec == NULL && !m->m_kind->mk_resume && m->m_env->me_nasc != NULL) {
		rv = mig_nas_spec(m->m_env->me_nasc, m->m_comp,
		    mig_clamp(mig_left(m), 500, MIG_NAS_MAX_MS), &m->m_spec_rep, why, sizeof(why));
		if (rv != 0 && rv != -ENOENT)
			/*
			 * As for its latest checkpoint (mig_latest()): a move does not wait
			 * for the NAS; the target restores with its own config's spec, if any.
			 */
			LOG_WARN("%s of %s: its spec could not be read from the NAS (%s); moving it "
			         "without one", m->m_kind->mk_what, m->m_comp, why);
		if (rv == 0) {
			m->m_spec = m->m_spec_rep->spec;
			m->m_nas_epoch = m->m_spec_rep->epoch;
		}
	}
	if (m->m_spec == NULL || m->m_spec->n_requires == 0)
		return 0;
	rv = wire_requires_from_pb(m->m_spec->requires, m->m_spec->n_requires,
	    m->m_plan.rm_requires, &n, why, sizeof(why));
	if (rv != 0) {
		snprintf(err, errlen, "%s of %s: its spec: %s", m->m_kind->mk_what, m->m_comp, why);
		return rv;
	}
	m->m_plan.rm_nrequires = n;
	return 0;
}

/* Step 1: the plan; a component only the NAS knows is added to the catalogue first. */
static int
mig_begin(struct mig *m, char *err, size_t errlen)
{
	struct reg *reg = m->m_env->me_reg;
	struct reg_ckpt c;
	char why[MIG_ERR_MAX];
	int rv;

	rv = reg_migrate_begin(reg, m->m_comp, &m->m_plan);
	if (rv == -ENOENT) {
		unsigned to = mig_clamp(mig_left(m), 500, MIG_NAS_MAX_MS);
		int nrv = mig_nas_latest(m->m_env->me_nasc, m->m_comp, to, &c, why, sizeof(why));
		if (nrv == 0) {
			rv = reg_checkpoint(reg, &c, NULL);
			if (rv == 0)
				rv = reg_migrate_begin(reg, m->m_comp, &m->m_plan);
		} else if (nrv != -ENOENT) {
			snprintf(err, errlen,
			    "unknown component %s: no node runs it, the catalogue has no checkpoint "
			    "of it, and the NAS could not be asked: %s",
			    m->m_comp, why);
			return nrv; /* not "no checkpoint": nobody may start it fresh on that */
		} else
			snprintf(err, errlen,
			    "unknown component %s: no node runs it and no checkpoint of it exists",
			    m->m_comp);
	}
	if (rv == -ENOENT)
		return rv;
	if (rv != 0)
		return mig_begin_failed(m, rv, err, errlen);
	/*
	 * Its node is starting it (declared at attach, not listed by a heartbeat
	 * yet): moved "from nowhere", it would run twice, and the work since its
	 * last checkpoint would be lost. Wait for the node's report (a heartbeat
	 * or two), within the caller's time; refused if none comes. Failovers
	 * and resumes decide on their own.
	 */
	for (unsigned waited = 0; !m->m_kind->mk_failover && m->m_plan.rm_starting_on[0] != '\0';
	     waited += MIG_STARTING_POLL_MS) {
		bool again = waited < MIG_STARTING_WAIT_MS && mig_left(m) > 2 * MIG_STARTING_POLL_MS;

		if (!again)
			snprintf(err, errlen, "%s of %s: node %s is starting it (declared at attach, "
			    "not reported running after %u ms); try again in a moment",
			    m->m_kind->mk_what, m->m_comp, m->m_plan.rm_starting_on, waited);
		mig_plan_drop(m);
		if (!again)
			return -EAGAIN;
		util_sleep_ms(MIG_STARTING_POLL_MS);
		rv = reg_migrate_begin(reg, m->m_comp, &m->m_plan);
		if (rv != 0)
			return mig_begin_failed(m, rv, err, errlen);
	}
	if (m->m_kind->mk_resume && !m->m_plan.rm_waiting && m->m_plan.rm_owner[0] == '\0') {
		/*
		 * Its mark ended after the worker read its target: ckptctl delete
		 * dropped it (reg_migrate_release()). A restore now would run it
		 * deleted.
		 */
		snprintf(err, errlen, "resume of %s not needed: nothing waits for it any more "
		    "(deleted)", m->m_comp);
		mig_plan_drop(m);
		return -EALREADY;
	}
	if (m->m_kind->mk_failover &&
	    ((m->m_plan.rm_owner_up && m->m_plan.rm_owner_runs && !m->m_plan.rm_owner_fenced) ||
		(m->m_plan.rm_owner[0] == '\0' && !m->m_kind->mk_resume))) {
		snprintf(err, errlen, "%s of %s not needed: %s", m->m_kind->mk_what, m->m_comp,
		    m->m_plan.rm_owner[0] == '\0' ? "no node owns it"
		    : m->m_kind->mk_resume ? "a node runs it" : "its node runs it again");
		mig_plan_drop(m);
		return -EALREADY;
	}
	snprintf(m->m_source, sizeof(m->m_source), "%s",
	    m->m_plan.rm_owner[0] != '\0' ? m->m_plan.rm_owner : "(nowhere)");
	m->m_epoch = m->m_plan.rm_epoch;
	return 0;
}

/* Step 2a: the node placement chooses (or the explicit target), into m_target. */
static int
mig_choose(struct mig *m, const char *target, char *err, size_t errlen)
{
	struct place_req req = {
		.pr_component = m->m_comp,
		/*
		 * A failover's source is down or lost the component: it may take it
		 * back; but not one it reports failed (supervision gave up there).
		 */
		.pr_source = m->m_kind->mk_failover && !m->m_plan.rm_owner_failed ? NULL
		                                                                   : m->m_plan.rm_owner,
		.pr_target = target,
		.pr_need_bytes = m->m_plan.rm_need_bytes,
		.pr_max_components = m->m_env->me_max_node_comps,
	};
	struct place_label reqs[LIMIT_REQUIRES_MAX];
	const char *excl[MIG_REFUSALS_MAX];
	struct reg_cand *rc = NULL;
	struct place_cand *pc = NULL;
	struct place_label *labels = NULL;
	size_t n = 0, idx, nlabels = 0, used = 0;
	int rv;

	for (size_t i = 0; i < m->m_plan.rm_nrequires; i++) {
		reqs[i].pl_key = m->m_plan.rm_requires[i].rq_key;
		reqs[i].pl_value = m->m_plan.rm_requires[i].rq_value;
	}
	req.pr_requires = reqs;
	req.pr_nrequires = m->m_plan.rm_nrequires;
	for (size_t i = 0; i < m->m_nrefused; i++)
		excl[i] = m->m_refused[i].mf_node;
	req.pr_exclude = excl;
	req.pr_nexclude = m->m_nrefused;
	rv = reg_candidates(m->m_env->me_reg, m->m_comp, &rc, &n);
	for (size_t i = 0; rv == 0 && i < n; i++)
		nlabels += rc[i].rca_nlabels;
	if (rv == 0 && n > 0) {
		pc = calloc(n, sizeof(*pc));
		labels = calloc(nlabels > 0 ? nlabels : 1, sizeof(*labels));
		if (pc == NULL || labels == NULL)
			rv = -ENOMEM;
	}
	if (rv != 0) {
		snprintf(err, errlen, "migration of %s: %s", m->m_comp, err_str(rv));
		goto out_free;
	}
	for (size_t i = 0; i < n; i++) {
		pc[i].pc_node = rc[i].rca_node;
		pc[i].pc_up = rc[i].rca_up;
		pc[i].pc_mem_free_bytes = rc[i].rca_cap.rcap_mem_free;
		pc[i].pc_mem_total_bytes = rc[i].rca_cap.rcap_mem_total;
		pc[i].pc_cpu_count = rc[i].rca_cap.rcap_cpu_count;
		pc[i].pc_cpu_load_milli = rc[i].rca_cap.rcap_cpu_load_milli;
		pc[i].pc_components = rc[i].rca_components;
		pc[i].pc_arriving = rc[i].rca_arriving;
		pc[i].pc_cordoned = rc[i].rca_cordoned;
		pc[i].pc_labels = &labels[used];
		pc[i].pc_nlabels = rc[i].rca_nlabels;
		for (size_t j = 0; j < rc[i].rca_nlabels; j++, used++) {
			labels[used].pl_key = rc[i].rca_labels[j].rl_key;
			labels[used].pl_value = rc[i].rca_labels[j].rl_value;
		}
	}
	rv = place_choose(pc, n, &req, &idx, err, errlen);
	if (rv == 0)
		snprintf(m->m_target, sizeof(m->m_target), "%s", rc[idx].rca_node);
out_free:
	free(labels);
	free(pc);
	reg_candidates_free(rc, n);
	return rv;
}

/*
 * Step 2: the target, its place there held for the move (reg_migrate_toward():
 * the next placement counts it), and a reference to its agent client. A place
 * taken by another move between the choice and the hold: placement again.
 * On failure the move holds no place.
 */
static int
mig_place(struct mig *m, const char *target, char *err, size_t errlen)
{
	struct reg *reg = m->m_env->me_reg;
	/* A resume's node takes it back, whatever placement would say (it declared it). */
	uint32_t max = m->m_kind->mk_resume ? 0 : m->m_env->me_max_node_comps;
	unsigned tries = 0;
	int rv;

	do {
		tries++;
		if (m->m_kind->mk_resume) {
			snprintf(m->m_target, sizeof(m->m_target), "%s", target);
			rv = 0;
		} else {
			rv = mig_choose(m, target, err, errlen);
			if (rv != 0)
				goto out_release;
		}
		rv = reg_migrate_toward(reg, m->m_comp, m->m_target, max);
	} while (rv == -EDQUOT && tries < MIG_PLACE_TRIES);
	if (rv == -EDQUOT) {
		snprintf(err, errlen, "%s of %s: other moves took the place on each node chosen "
		    "(%u times); try again", m->m_kind->mk_what, m->m_comp, tries);
		rv = -EAGAIN;
		goto out_release;
	}
	if (rv != 0) {
		snprintf(err, errlen, "%s of %s: no place on node %s: %s", m->m_kind->mk_what,
		    m->m_comp, m->m_target, err_str(rv));
		goto out_release;
	}
	rv = reg_peer_get(reg, m->m_target, &m->m_target_peer);
	if (rv == 0)
		return 0;
	if (m->m_kind->mk_resume)
		snprintf(err, errlen, "node %s that resumes %s has no control connection",
		    m->m_target, m->m_comp);
	else
		snprintf(err, errlen, "target node %s has no control connection", m->m_target);
	rv = -ECONNREFUSED;
out_release:
	(void)reg_migrate_toward(reg, m->m_comp, NULL, 0); /* a place held before: given up */
	return rv;
}

/*
 * Whether an agent answers at all: a request to a peer that is not connected
 * waits in the REQ queue until its deadline, so a dead node would cost the
 * whole Stop or Restore time. Any reply, even an error, means it is there.
 */
static int
mig_probe(struct reg_peer *peer, struct rpc_error *ret_err)
{
	Ckpt__V1__StatusRequest req = CKPT__V1__STATUS_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	int rv;

	rv = rpc_client_call(reg_peer_client(peer), AGENT_STATUS, &req.base, MIG_PROBE_MS, &rep,
	    ret_err);
	if (rv == 0) {
		rpc_reply_free(rep);
		return 0;
	}
	switch (ret_err->re_code) {
	case CKPT__V1__CODE__UNAVAILABLE:
	case CKPT__V1__CODE__DEADLINE_EXCEEDED:
	case CKPT__V1__CODE__CANCELLED:
	case CKPT__V1__CODE__ABORTED:
		return rv;
	default:
		return 0;
	}
}

/*
 * A fenced source (reg_fence_mark()): stopped without a checkpoint (the NAS
 * would refuse it), so that the checkpoint that fenced it can be restored,
 * on the same node too. A failure is logged: the agent stops it anyway at
 * its next refused store.
 */
static void
mig_stop_fenced(struct mig *m)
{
	Ckpt__V1__StopRequest req = CKPT__V1__STOP_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	struct rpc_error rerr;
	int rv;

	req.component = (char *)m->m_comp;
	req.checkpoint = 0;
	rv = mig_probe(m->m_plan.rm_owner_peer, &rerr);
	if (rv == 0)
		rv = rpc_client_call(reg_peer_client(m->m_plan.rm_owner_peer), AGENT_STOP, &req.base,
		    mig_clamp(mig_left(m) / 2, MIG_STOP_MIN_MS, MIG_STOP_MAX_MS), &rep, &rerr);
	if (rv == 0) {
		m->m_stopped = true;
		rpc_reply_free(rep);
	} else {
		LOG_WARN("%s of %s: cannot stop its fenced copy on %s: %s", m->m_kind->mk_what,
		    m->m_comp, m->m_source, rerr.re_msg);
	}
}

/* Step 3a: the final checkpoint from the source. Failures are logged, not returned. */
static void
mig_stop_source(struct mig *m)
{
	Ckpt__V1__StopRequest req = CKPT__V1__STOP_REQUEST__INIT;
	Ckpt__V1__StopReply *rep = NULL;
	struct rpc_client *c = reg_peer_client(m->m_plan.rm_owner_peer);
	unsigned to = mig_clamp(mig_left(m) / 2, MIG_STOP_MIN_MS, MIG_STOP_MAX_MS);
	struct rpc_error rerr;
	char why[WIRE_ERR_MAX];
	int rv;

	req.component = (char *)m->m_comp;
	req.checkpoint = 1;
	rv = mig_probe(m->m_plan.rm_owner_peer, &rerr);
	if (rv == 0)
		rv = rpc_client_call(c, AGENT_STOP, &req.base, to, (ProtobufCMessage **)&rep, &rerr);
	if (rv != 0) {
		LOG_WARN("migration of %s: cannot stop it on %s: %s; restoring its latest known "
			 "checkpoint instead",
		    m->m_comp, m->m_source, rerr.re_msg);
		return;
	}
	m->m_stopped = true;
	if (rep->checkpoint == NULL) {
		LOG_WARN("migration of %s: %s stopped it without a final checkpoint; restoring its "
			 "latest known checkpoint instead",
		    m->m_comp, m->m_source);
	} else if (wire_ckpt_from_pb(rep->checkpoint, &m->m_ckpt, why, sizeof(why)) != 0 ||
	    strcmp(m->m_ckpt.rk_component, m->m_comp) != 0) {
		LOG_WARN("migration of %s: %s returned an unusable final checkpoint (%s); restoring "
			 "its latest known checkpoint instead",
		    m->m_comp, m->m_source, why);
	} else {
		m->m_have_ckpt = true;
		reg_checkpoint(m->m_env->me_reg, &m->m_ckpt, NULL);
	}
	rpc_reply_free(&rep->base);
}

/*
 * The catalogue's checkpoint gone is not on the NAS any more (deleted by
 * ckptctl rm, retention, or after a pin was released): the catalogue takes
 * newest (NULL: the NAS holds none of the component), said once in the log.
 */
static void
mig_ckpt_gone(struct mig *m, const struct reg_ckpt *gone, const struct reg_ckpt *newest)
{
	if (!reg_checkpoint_gone(m->m_env->me_reg, gone, newest))
		return;
	if (newest != NULL)
		LOG_WARN("%s of %s: checkpoint %s/%s@%llu of the catalogue was deleted from the NAS; "
			 "the newest left is %s/%s@%llu",
		    m->m_kind->mk_what, m->m_comp, gone->rk_node, m->m_comp,
		    (unsigned long long)gone->rk_seq, newest->rk_node, m->m_comp,
		    (unsigned long long)newest->rk_seq);
	else
		LOG_WARN("%s of %s: checkpoint %s/%s@%llu of the catalogue was deleted from the NAS, "
			 "which holds no other checkpoint of %s",
		    m->m_kind->mk_what, m->m_comp, gone->rk_node, m->m_comp,
		    (unsigned long long)gone->rk_seq, m->m_comp);
}

/*
 * Step 4, the checkpoint to restore was not found: the newest the NAS holds
 * instead. -ENOENT (err says why) when it holds none, or only the one that
 * was not found.
 */
static int
mig_refresh(struct mig *m, char *err, size_t errlen)
{
	struct reg_ckpt newest, gone = m->m_ckpt;
	char why[MIG_ERR_MAX];
	int rv;

	rv = mig_nas_latest(m->m_env->me_nasc, m->m_comp,
	    mig_clamp(mig_left(m), 500, MIG_NAS_MAX_MS), &newest, why, sizeof(why));
	if (rv == -ENOENT) {
		mig_ckpt_gone(m, &gone, NULL);
		snprintf(err, errlen, "%s of %s: no checkpoint of %s exists on the NAS (%s/%s@%llu "
		    "was deleted)", m->m_kind->mk_what, m->m_comp, m->m_comp, gone.rk_node,
		    m->m_comp, (unsigned long long)gone.rk_seq);
		return rv;
	}
	if (rv != 0) {
		snprintf(err, errlen, "%s of %s: checkpoint %s/%s@%llu is gone and the NAS could not "
		    "be asked for the newest one: %s", m->m_kind->mk_what, m->m_comp, gone.rk_node,
		    m->m_comp, (unsigned long long)gone.rk_seq, why);
		return rv;
	}
	if (newest.rk_seq == gone.rk_seq && strcmp(newest.rk_node, gone.rk_node) == 0) {
		snprintf(err, errlen, "%s of %s: the NAS lists %s/%s@%llu as its newest checkpoint "
		    "but cannot retrieve it", m->m_kind->mk_what, m->m_comp, gone.rk_node, m->m_comp,
		    (unsigned long long)gone.rk_seq);
		return -EIO; /* not "none exists": nobody may start it fresh on that */
	}
	mig_ckpt_gone(m, &gone, &newest);
	m->m_ckpt = newest;
	return 0;
}

/* Step 3b: the latest checkpoint known, from the catalogue or the NAS. */
static int
mig_latest(struct mig *m, char *err, size_t errlen)
{
	char why[MIG_ERR_MAX];
	struct reg_ckpt cat;
	bool have_cat;
	int rv;

	have_cat = reg_checkpoint_latest(m->m_env->me_reg, m->m_comp, &cat) == 0;
	if (have_cat && !m->m_kind->mk_failover) {
		/* A deleted one is found out by the restore (mig_refresh()). */
		m->m_ckpt = cat;
		m->m_have_ckpt = true;
		return 0;
	}
	rv = mig_nas_latest(m->m_env->me_nasc, m->m_comp,
	    mig_clamp(mig_left(m), 500, MIG_NAS_MAX_MS), &m->m_ckpt, why, sizeof(why));
	if (rv == 0) {
		/*
		 * The NAS knows checkpoints whose Notify never came, and it is the
		 * truth: a newer one in the catalogue was deleted since.
		 */
		if (have_cat && cat.rk_seq > m->m_ckpt.rk_seq)
			mig_ckpt_gone(m, &cat, &m->m_ckpt);
		else
			reg_checkpoint(m->m_env->me_reg, &m->m_ckpt, NULL);
		m->m_have_ckpt = true;
		return 0;
	}
	if (rv == -ENOENT && have_cat) {
		mig_ckpt_gone(m, &cat, NULL);
		snprintf(err, errlen, "%s of %s: no checkpoint of %s exists on the NAS (%s/%s@%llu "
		    "was deleted)", m->m_kind->mk_what, m->m_comp, m->m_comp, cat.rk_node,
		    m->m_comp, (unsigned long long)cat.rk_seq);
		return rv;
	}
	if (have_cat) {
		LOG_WARN("%s of %s: the NAS could not be asked for its latest checkpoint (%s); "
			 "restoring the catalogue's",
		    m->m_kind->mk_what, m->m_comp, why);
		m->m_ckpt = cat;
		m->m_have_ckpt = true;
		return 0;
	}
	if (rv == -ENOENT)
		snprintf(err, errlen, "%s of %s: no checkpoint of %s exists on the NAS",
		    m->m_kind->mk_what, m->m_comp, m->m_comp);
	else
		snprintf(err, errlen, "%s of %s: no checkpoint of it to restore (%s)",
		    m->m_kind->mk_what, m->m_comp, why);
	return rv;
}

/*
 * Before ordering node to restore m_comp: the NAS lets node read the
 * component's checkpoints that other nodes stored (nas.proto Grant; with
 * authentication on, it refuses them otherwise). Best effort: a NAS that
 * did not take it refuses the restore's reads, and that failure says why.
 */
static void
mig_grant(struct mig *m, const char *node, uint64_t epoch, unsigned timeout_ms)
{
	Ckpt__V1__GrantRequest req = CKPT__V1__GRANT_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	struct rpc_error rerr;
	int rv;

	if (m->m_env->me_nasc == NULL)
		return;
	req.node = (char *)node;
	req.component = (char *)m->m_comp;
	req.epoch = epoch;
	rv = nasc_call(m->m_env->me_nasc, NAS_GRANT, &req.base, mig_clamp(timeout_ms, 1, MIG_NAS_MAX_MS),
	    &rep, &rerr);
	if (rv != 0)
		LOG_WARN("%s of %s: the NAS did not let %s read its checkpoints: %s",
		    m->m_kind->mk_what, m->m_comp, node, rerr.re_msg);
	rpc_reply_free(rep);
}

/* Agent.Restore of m_ckpt on node (peer) with the given epoch. */
static int
mig_restore_on(struct mig *m, const char *node, struct reg_peer *peer, uint64_t epoch,
    unsigned timeout_ms, struct reg_comp *ret_status, struct rpc_error *ret_err)
{
	Ckpt__V1__RestoreRequest req = CKPT__V1__RESTORE_REQUEST__INIT;
	Ckpt__V1__RestoreReply *rep = NULL;
	Ckpt__V1__Label reqs[LIMIT_REQUIRES_MAX], *reqp[LIMIT_REQUIRES_MAX];
	struct reg_comp st;
	char why[WIRE_ERR_MAX];
	int rv;

	req.component = (char *)m->m_comp;
	req.node = m->m_ckpt.rk_node;
	req.seq = m->m_ckpt.rk_seq;
	req.sha256.data = m->m_ckpt.rk_sha256;
	req.sha256.len = SHA_LEN;
	req.epoch = epoch;
	req.spec = (Ckpt__V1__ComponentSpec *)m->m_spec;
	if (m->m_fresh) {
		req.fresh = 1;
		req.node = "";
		req.seq = 0;
		req.sha256.len = 0;
	}
	for (size_t i = 0; i < m->m_plan.rm_nrequires && i < LIMIT_REQUIRES_MAX; i++) {
		ckpt__v1__label__init(&reqs[i]);
		reqs[i].key = m->m_plan.rm_requires[i].rq_key;
		reqs[i].value = m->m_plan.rm_requires[i].rq_value;
		reqp[i] = &reqs[i];
	}
	req.requires = reqp;
	req.n_requires = m->m_plan.rm_nrequires;
	rv = mig_probe(peer, ret_err);
	if (rv == 0)
		mig_grant(m, node, epoch, timeout_ms);
	if (rv == 0)
		rv = rpc_client_call(reg_peer_client(peer), AGENT_RESTORE, &req.base, timeout_ms,
		    (ProtobufCMessage **)&rep, ret_err);
	if (rv != 0)
		return rv;
	if (rep->status == NULL || wire_comp_from_pb(rep->status, &st, why, sizeof(why)) != 0) {
		/* Restored, but the report is unusable: describe it from what was asked. */
		memset(&st, 0, sizeof(st));
		snprintf(st.rc_state, sizeof(st.rc_state), "running");
	}
	snprintf(st.rc_name, sizeof(st.rc_name), "%s", m->m_comp);
	if (st.rc_epoch < epoch)
		st.rc_epoch = epoch;
	if (!st.rc_has_restored && !m->m_fresh) {
		st.rc_has_restored = true;
		snprintf(st.rc_restored_from.rr_node, sizeof(st.rc_restored_from.rr_node), "%s",
		    m->m_ckpt.rk_node);
		snprintf(st.rc_restored_from.rr_component,
		    sizeof(st.rc_restored_from.rr_component), "%s", m->m_comp);
		st.rc_restored_from.rr_seq = m->m_ckpt.rk_seq;
		st.rc_restored_from.rr_has_sha = true;
		memcpy(st.rc_restored_from.rr_sha256, m->m_ckpt.rk_sha256, SHA_LEN);
	}
	rpc_reply_free(&rep->base);
	*ret_status = st;
	return 0;
}

/* A node's refusal of a spec sent with Restore (svc_spec_take's codes). */
static bool
mig_spec_refusal(const struct rpc_error *e)
{
	return e->re_code == CKPT__V1__CODE__INVALID_ARGUMENT ||
	    e->re_code == CKPT__V1__CODE__PERMISSION_DENIED ||
	    e->re_code == CKPT__V1__CODE__FAILED_PRECONDITION;
}

/* Step 5, failure: give the component back to the source it was stopped on. */
static void
mig_rollback(struct mig *m, char *err, size_t errlen)
{
	struct reg_comp st;
	struct rpc_error rerr;
	char first[MIG_ERR_MAX];
	uint64_t epoch = m->m_epoch + 1;
	int rv;

	snprintf(first, sizeof(first), "%s", err);
	m->m_epoch = epoch;
	rv = mig_restore_on(m, m->m_plan.rm_owner, m->m_plan.rm_owner_peer, epoch, MIG_ROLLBACK_MS, &st, &rerr);
	if (rv != 0 && m->m_spec != NULL && mig_spec_refusal(&rerr)) {
		/*
		 * The spec sent along (an Apply changed it while the component
		 * ran) is refused by the source too: without one, the source
		 * restores with the spec it ran (kept since its own restore, or
		 * its config's). The stored spec stays as applied.
		 */
		LOG_WARN("migration of %s: %s refuses its stored spec too (%s); restoring it back "
		         "with the spec it ran", m->m_comp, m->m_source, rerr.re_msg);
		m->m_spec = NULL;
		rv = mig_restore_on(m, m->m_plan.rm_owner, m->m_plan.rm_owner_peer, epoch,
		    MIG_ROLLBACK_MS, &st, &rerr);
	}
	if (rv == 0) {
		reg_migrate_end(m->m_env->me_reg, m->m_comp, m->m_plan.rm_owner, epoch, &st);
		LOG_INFO("migration of %s: restored back on %s from %s/%s@%llu", m->m_comp,
		    m->m_source, m->m_ckpt.rk_node, m->m_comp, (unsigned long long)m->m_ckpt.rk_seq);
		snprintf(err, errlen, "%s; %s restored back on %s", first, m->m_comp, m->m_source);
		return;
	}
	reg_migrate_end(m->m_env->me_reg, m->m_comp, NULL, epoch, NULL);
	LOG_ERROR("migration of %s: cannot restore it back on %s: %s; it is stopped, its latest "
		  "checkpoint is %s/%s@%llu",
	    m->m_comp, m->m_source, rerr.re_msg, m->m_ckpt.rk_node, m->m_comp,
	    (unsigned long long)m->m_ckpt.rk_seq);
	snprintf(err, errlen, "%s; restoring it back on %s failed too: %s", first, m->m_source,
	    rerr.re_msg);
}

static void
mig_publish(const struct mig *m, const char *kind, const char *msg)
{
	struct mev e = {
		.me_kind = kind,
		.me_node = m->m_plan.rm_owner,
		.me_component = m->m_comp,
		.me_seq = m->m_have_ckpt ? m->m_ckpt.rk_seq : 0,
		.me_sha256 = m->m_have_ckpt ? m->m_ckpt.rk_sha256 : NULL,
		.me_target = m->m_target,
		.me_message = msg,
	};
	mev_publish(m->m_env->me_pub, &e);
}

static int mig_run_kind(const struct mig_env *env, const struct mig_kind *kind,
    const char *component, const char *target, unsigned budget_ms, struct mig_result *ret_res,
    char *err, size_t errlen);

int
mig_run_as(const struct mig_env *env, const struct mig_kind *kind, const char *component,
    const char *target, unsigned budget_ms, struct mig_result *ret_res, char *err,
    size_t errlen)
{
	uint64_t t0 = util_now_mono_ms();
	int rv;

	rv = mig_run_kind(env, kind, component, target, budget_ms, ret_res, err, errlen);
	mmet_migration(env->me_met, kind->mk_what, rv, util_now_mono_ms() - t0);
	return rv;
}

int
mig_run(const struct mig_env *env, const char *component, const char *target,
    unsigned budget_ms, struct mig_result *ret_res, char *err, size_t errlen)
{
	return mig_run_as(env, &mig_kind_migration, component, target, budget_ms, ret_res, err,
	    errlen);
}

/*
 * The target refused the spec (its allow list, a program it lacks): record
 * why and place again without it. 0: a new target; otherwise err says why
 * no node takes it, naming every refusal.
 */
static int
mig_next_target(struct mig *m, const struct rpc_error *rerr, char *err, size_t errlen)
{
	struct mig_refusal *f = &m->m_refused[m->m_nrefused++];
	char place_err[MIG_ERR_MAX] = "";
	size_t len;
	int rv;

	const char *why = strstr(rerr->re_msg, "Agent.Restore: "), *code;
	char mention[KEY_NAME_MAX + 8];

	/* The agent's own words, without "URL: Agent.Restore: CODE: " before them. */
	if (why != NULL && (code = strstr(why, ": ")) != NULL &&
	    (why = strstr(code + 2, ": ")) != NULL)
		why += 2;
	else
		why = rerr->re_msg;
	snprintf(f->mf_node, sizeof(f->mf_node), "%s", m->m_target);
	snprintf(mention, sizeof(mention), "node %s ", m->m_target);
	if (strstr(why, mention) != NULL)
		snprintf(f->mf_reason, sizeof(f->mf_reason), "%s", why);
	else
		snprintf(f->mf_reason, sizeof(f->mf_reason), "node %s: %s", m->m_target, why);
	LOG_WARN("%s of %s: node %s refuses its spec: %s", m->m_kind->mk_what, m->m_comp,
	    f->mf_node, f->mf_reason);
	mev_publish(m->m_env->me_pub, &(struct mev){ .me_kind = MEV_SPEC_REFUSED,
				  .me_node = f->mf_node, .me_component = m->m_comp,
				  .me_message = f->mf_reason });
	reg_peer_put(m->m_target_peer);
	m->m_target_peer = NULL;
	rv = m->m_nrefused < MIG_REFUSALS_MAX ? mig_place(m, NULL, place_err, sizeof(place_err))
	                                      : -ESTALE;
	if (rv == 0)
		return 0;
	len = (size_t)snprintf(err, errlen, "%s of %s: no node takes its spec:", m->m_kind->mk_what,
	    m->m_comp);
	for (size_t i = 0; i < m->m_nrefused && len < errlen; i++)
		len += (size_t)snprintf(err + len, errlen - len, "%s %s", i > 0 ? ";" : "",
		    m->m_refused[i].mf_reason);
	if (place_err[0] != '\0' && len < errlen)
		snprintf(err + len, errlen - len, "; %s", place_err);
	return rv == -ESTALE || rv == -EINVAL ? -ESTALE : rv;
}

static int
mig_run_spec(const struct mig_env *env, const struct mig_kind *kind, const char *component,
    const char *target, const Ckpt__V1__ComponentSpec *spec, uint64_t nas_epoch,
    unsigned budget_ms, struct mig_result *ret_res, char *err, size_t errlen)
{
	struct mig m = { .m_env = env, .m_kind = kind, .m_comp = component, .m_budget = budget_ms,
		.m_spec = spec, .m_nas_epoch = nas_epoch };
	struct mig_result res;
	struct reg_comp st;
	struct rpc_error rerr;
	char hex[SHA_HEX_LEN + 1];
	const uint8_t *digest;
	bool explicit_target = target != NULL && target[0] != '\0';
	unsigned gone_tries = 0;
	int rv;

	m.m_t0 = util_now_mono_ms();
	rv = kind->mk_apply ? mig_begin_apply(&m, err, errlen) : mig_begin(&m, err, errlen);
	if (rv == -EALREADY && kind->mk_apply) {
		memset(ret_res, 0, sizeof(*ret_res));
		snprintf(ret_res->mr_target, sizeof(ret_res->mr_target), "%s", m.m_plan.rm_owner);
		ret_res->mr_epoch = m.m_plan.rm_epoch;
	}
	if (rv != 0)
		return rv;
	rv = mig_spec(&m, err, errlen);
	if (rv != 0) {
		reg_migrate_end(env->me_reg, component, NULL, 0, NULL);
		goto out_put;
	}
	if (m.m_plan.rm_has_from) {
		/* Fenced: what fenced it is restored, on its node when that one can take it. */
		m.m_ckpt = m.m_plan.rm_from;
		m.m_have_ckpt = true;
		rv = -ENOENT;
		if ((target == NULL || target[0] == '\0') && m.m_plan.rm_owner_up)
			rv = mig_place(&m, m.m_plan.rm_owner, err, errlen);
		if (rv != 0)
			rv = mig_place(&m, target, err, errlen);
	} else {
		rv = mig_place(&m, target, err, errlen);
	}
	if (rv != 0) {
		reg_migrate_end(env->me_reg, component, NULL, 0, NULL);
		if (kind->mk_apply) {
			LOG_WARN("apply of %s: %s", component, err);
			mig_publish(&m, kind->mk_ev_failed, err);
		}
		goto out_put;
	}
	LOG_INFO("%s of %s from %s to %s started", kind->mk_what, component, m.m_source,
	    m.m_target);
	mig_publish(&m, kind->mk_ev_started, NULL);

	if (m.m_plan.rm_owner_peer != NULL && m.m_plan.rm_has_from)
		mig_stop_fenced(&m);
	/* A failover's owner is down or no longer runs it: nothing to stop. */
	else if (m.m_plan.rm_owner_peer != NULL && !kind->mk_failover)
		mig_stop_source(&m);
	else if (m.m_plan.rm_owner[0] != '\0')
		LOG_WARN("%s of %s: source %s %s; restoring its latest checkpoint", kind->mk_what,
		    component, m.m_source,
		    m.m_plan.rm_owner_failed ? "reports it failed" : "is down");
	if (!m.m_have_ckpt) {
		rv = mig_latest(&m, err, errlen);
		if (rv == -ENOENT && m.m_spec != NULL) {
			/* Nothing to restore, but a spec to start from. */
			LOG_INFO("%s of %s: no checkpoint of it exists; starting it fresh from its spec",
			    kind->mk_what, component);
			m.m_fresh = true;
			err[0] = '\0';
			rv = 0;
		}
		if (rv != 0)
			goto out_failed;
	}

	m.m_epoch = (m.m_plan.rm_epoch > m.m_ckpt.rk_epoch ? m.m_plan.rm_epoch : m.m_ckpt.rk_epoch) + 1;
	if (m.m_fresh && m.m_epoch <= m.m_nas_epoch)
		m.m_epoch = m.m_nas_epoch + 1; /* checkpoints deleted: the NAS still knows its epoch */
	for (;;) {
		rv = mig_restore_on(&m, m.m_target, m.m_target_peer, m.m_epoch,
		    mig_clamp(mig_left(&m), MIG_RESTORE_MIN_MS, MIG_RESTORE_MAX_MS), &st, &rerr);
		if (rv != 0 && m.m_spec != NULL && !explicit_target && !kind->mk_resume &&
		    (rerr.re_code == CKPT__V1__CODE__FAILED_PRECONDITION ||
			rerr.re_code == CKPT__V1__CODE__PERMISSION_DENIED ||
			rerr.re_code == CKPT__V1__CODE__UNAVAILABLE ||
			rpc_error_is(&rerr, LIMIT_REASON_PREFIX LIMIT_N_COMPONENTS))) {
			/* Refused, full, or not reachable now: the next node may take it. */
			rv = mig_next_target(&m, &rerr, err, errlen);
			if (rv != 0)
				goto out_failed;
			LOG_INFO("%s of %s: offering it to %s", kind->mk_what, component, m.m_target);
			continue;
		}
		if (rv == 0 || rerr.re_code != CKPT__V1__CODE__NOT_FOUND || m.m_fresh ||
		    gone_tries++ == MIG_GONE_TRIES)
			break;
		/* Deleted since the catalogue learnt of it: the newest that exists. */
		rv = mig_refresh(&m, err, errlen);
		if (rv != 0)
			goto out_failed;
		if (m.m_ckpt.rk_epoch >= m.m_epoch)
			m.m_epoch = m.m_ckpt.rk_epoch + 1;
	}
	if (rv != 0) {
		snprintf(err, errlen, "%s of %s to %s failed: %s", kind->mk_what, component,
		    m.m_target, rerr.re_msg);
		if (rv == -ENOENT)
			rv = -EAGAIN; /* deleted again and again: not "none exists" */
		goto out_failed;
	}
	reg_migrate_end(env->me_reg, component, m.m_target, m.m_epoch, &st);

	memset(&res, 0, sizeof(res));
	snprintf(res.mr_source, sizeof(res.mr_source), "%s", m.m_plan.rm_owner);
	snprintf(res.mr_target, sizeof(res.mr_target), "%s", m.m_target);
	res.mr_from = st.rc_restored_from;
	res.mr_has_state_sha = st.rc_has_state_sha;
	memcpy(res.mr_state_sha256, st.rc_state_sha256, SHA_LEN);
	res.mr_epoch = m.m_epoch;
	res.mr_fresh = m.m_fresh;
	res.mr_nrefused = m.m_nrefused;
	memcpy(res.mr_refused, m.m_refused, m.m_nrefused * sizeof(m.m_refused[0]));
	digest = st.rc_has_state_sha ? st.rc_state_sha256 : m.m_ckpt.rk_sha256;
	mig_hex(digest, hex);
	if (m.m_fresh)
		LOG_INFO("%s of %s from %s to %s done: started fresh from its spec (driver %.32s) "
		         "epoch %llu",
		    kind->mk_what, component, m.m_source, m.m_target, m.m_spec->driver,
		    (unsigned long long)m.m_epoch);
	else
		LOG_INFO("%s of %s from %s to %s done: restored %s/%s@%llu sha256=%s epoch %llu%s",
		    kind->mk_what, component, m.m_source, m.m_target, res.mr_from.rr_node,
		    component, (unsigned long long)res.mr_from.rr_seq, hex,
		    (unsigned long long)m.m_epoch, m.m_spec != NULL ? " (with its spec)" : "");
	if (m.m_fresh) {
		/* nothing restored: no digest to compare */
	} else if (res.mr_from.rr_seq != 0 && res.mr_from.rr_seq != m.m_ckpt.rk_seq) {
		/* The agent fell back to an older sequence (the one asked for was corrupt). */
		LOG_WARN("%s of %s: %s restored %s/%s@%llu, not @%llu (DATA_LOSS there; an older "
		    "checkpoint was used)", kind->mk_what, component, m.m_target, res.mr_from.rr_node,
		    component, (unsigned long long)res.mr_from.rr_seq,
		    (unsigned long long)m.m_ckpt.rk_seq);
	} else if (st.rc_has_state_sha &&
	    memcmp(st.rc_state_sha256, m.m_ckpt.rk_sha256, SHA_LEN) != 0) {
		char want[SHA_HEX_LEN + 1];
		mig_hex(m.m_ckpt.rk_sha256, want);
		LOG_WARN("migration of %s: %s reports restored state sha256=%s, checkpoint has %s",
		    component, m.m_target, hex, want);
	}
	mig_publish(&m, kind->mk_ev_done, NULL);
	*ret_res = res;
	goto out_put;

out_failed:
	LOG_WARN("%s", err);
	mig_publish(&m, kind->mk_ev_failed, err);
	/* The target takes nothing: its place is free now, not after the rollback. */
	(void)reg_migrate_toward(env->me_reg, component, NULL, 0);
	if (m.m_stopped && m.m_have_ckpt && m.m_plan.rm_owner_peer != NULL)
		mig_rollback(&m, err, errlen);
	else
		reg_migrate_end(env->me_reg, component, NULL, m.m_epoch, NULL);
	if (!m.m_stopped && m.m_plan.rm_owner_peer != NULL) {
		/* Never stopped on a source that is up: say where it is (issue 14, defect 10). */
		size_t len = strlen(err);
		snprintf(err + len, errlen - len, "; %s stays on %s, still running", component,
		    m.m_source);
	}
out_put:
	reg_peer_put(m.m_target_peer);
	reg_peer_put(m.m_plan.rm_owner_peer);
	if (m.m_spec_rep != NULL)
		rpc_reply_free(&m.m_spec_rep->base);
	return rv;
}

static int
mig_run_kind(const struct mig_env *env, const struct mig_kind *kind, const char *component,
    const char *target, unsigned budget_ms, struct mig_result *ret_res, char *err,
    size_t errlen)
{
	return mig_run_spec(env, kind, component, target, NULL, 0, budget_ms, ret_res, err, errlen);
}

int
mig_apply(const struct mig_env *env, const Ckpt__V1__ComponentSpec *spec, uint64_t nas_epoch,
    unsigned budget_ms, struct mig_result *ret_res, char *err, size_t errlen)
{
	return mig_run_spec(env, &mig_kind_apply, spec->name, NULL, spec, nas_epoch, budget_ms,
	    ret_res, err, errlen);
}

#include "apply.h"
#include "limit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ckpt/v1/agent.pb-c.h"
#include "ckpt/v1/nas.pb-c.h"
#include "err.h"
#include "key.h"
#include "log.h"
#include "methods.h"
#include "mevent.h"
#include "util.h"
#include "wire.h"


static unsigned
mapply_nas_ms(struct rpc_call *call)
{
	unsigned left = rpc_call_remaining_ms(call);
	return left < 500 ? 500 : left > MIG_NAS_MAX_MS ? MIG_NAS_MAX_MS : left;
}

/* Nas.PutSpec; *ret_replaced and *ret_epoch may be NULL. */
static int
mapply_put(const struct mig_env *env, const Ckpt__V1__ComponentSpec *spec, unsigned timeout_ms,
    bool *ret_replaced, uint64_t *ret_epoch, struct rpc_error *ret_err)
{
	Ckpt__V1__PutSpecRequest req = CKPT__V1__PUT_SPEC_REQUEST__INIT;
	Ckpt__V1__PutSpecReply *rep = NULL;
	int rv;

	req.spec = (Ckpt__V1__ComponentSpec *)spec;
	rv = nasc_call(env->me_nasc, NAS_PUT_SPEC, &req.base, timeout_ms, (ProtobufCMessage **)&rep,
	    ret_err);
	if (rv != 0)
		return rv;
	if (ret_replaced != NULL)
		*ret_replaced = rep->replaced;
	if (ret_epoch != NULL)
		*ret_epoch = rep->epoch;
	rpc_reply_free(&rep->base);
	return 0;
}

/* Nas.DeleteSpec; *ret_existed may be NULL. */
static int
mapply_unput(const struct mig_env *env, const char *component, unsigned timeout_ms,
    bool *ret_existed, struct rpc_error *ret_err)
{
	Ckpt__V1__DeleteSpecRequest req = CKPT__V1__DELETE_SPEC_REQUEST__INIT;
	Ckpt__V1__DeleteSpecReply *rep = NULL;
	int rv;

	req.component = (char *)component;
	rv = nasc_call(env->me_nasc, NAS_DELETE_SPEC, &req.base, timeout_ms,
	    (ProtobufCMessage **)&rep, ret_err);
	if (rv != 0)
		return rv;
	if (ret_existed != NULL)
		*ret_existed = rep->existed;
	rpc_reply_free(&rep->base);
	return 0;
}

/* The form of a spec from the wire: what the manager itself relies on. */
static int
mapply_check(struct rpc_call *call, const Ckpt__V1__ComponentSpec *sp)
{
	char why[WIRE_ERR_MAX];
	struct reg_req reqs[LIMIT_REQUIRES_MAX];
	size_t n;

	if (sp == NULL) {
		rpc_call_errorf(call, "Apply: no spec");
		return -EINVAL;
	}
	if (key_name_check(sp->name) != 0) {
		rpc_call_errorf(call, "Apply: name: '%.64s' is not 1 to %d of [A-Za-z0-9._-]",
		    sp->name, KEY_NAME_MAX);
		return -EINVAL;
	}
	if (sp->driver[0] == '\0' || wire_text_check(sp->driver, LIMIT_KIND_MAX) != 0) {
		rpc_call_errorf(call, "Apply of %s: driver: want 1 to %d printable characters",
		    sp->name, LIMIT_KIND_MAX);
		return -EINVAL;
	}
	if (sp->n_requires > LIMIT_REQUIRES_MAX ||
	    wire_requires_from_pb(sp->requires, sp->n_requires, reqs, &n, why, sizeof(why)) != 0) {
		rpc_call_errorf(call, "Apply of %s: requires: %s", sp->name,
		    sp->n_requires > LIMIT_REQUIRES_MAX ? "too many labels" : why);
		return -EINVAL;
	}
	return 0;
}

static int
mapply_fill(struct arena *a, const struct mig_result *res, Ckpt__V1__ApplyReply *rep)
{
	rep->node = arena_strdup(a, res->mr_target);
	rep->fresh = res->mr_fresh;
	rep->epoch = res->mr_epoch;
	if (rep->node == NULL)
		return -ENOMEM;
	if (rep->placed && !res->mr_fresh) {
		rep->restored_from = wire_ref_to_pb(a, &res->mr_from);
		if (rep->restored_from == NULL)
			return -ENOMEM;
	}
	if (res->mr_nrefused == 0)
		return 0;
	rep->refused = arena_alloc(a, res->mr_nrefused * sizeof(*rep->refused));
	if (rep->refused == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < res->mr_nrefused; i++) {
		Ckpt__V1__NodeRefusal *f = arena_alloc(a, sizeof(*f));
		if (f == NULL)
			return -ENOMEM;
		ckpt__v1__node_refusal__init(f);
		f->node = arena_strdup(a, res->mr_refused[i].mf_node);
		f->reason = arena_strdup(a, res->mr_refused[i].mf_reason);
		if (f->node == NULL || f->reason == NULL)
			return -ENOMEM;
		rep->refused[rep->n_refused++] = f;
	}
	return 0;
}

int
mapply_apply(const struct mig_env *env, struct rpc_call *call,
    const Ckpt__V1__ApplyRequest *req, Ckpt__V1__ApplyReply *rep)
{
	const Ckpt__V1__ComponentSpec *sp = req->spec;
	Ckpt__V1__GetSpecReply *old = NULL;
	struct mig_result res;
	struct rpc_error rerr;
	char err[MIG_ERR_MAX] = "", why[MIG_ERR_MAX];
	unsigned left;
	uint64_t nas_epoch = 0;
	bool replaced = false;
	int rv;

	rv = mapply_check(call, sp);
	if (rv != 0)
		return rv;
	rv = mig_nas_spec(env->me_nasc, sp->name, mapply_nas_ms(call), &old, why, sizeof(why));
	if (rv != 0 && rv != -ENOENT) {
		rpc_call_errorf(call, "apply of %s: the NAS could not be asked for its spec: %s",
		    sp->name, why);
		return rv;
	}
	rv = mapply_put(env, sp, mapply_nas_ms(call), &replaced, &nas_epoch, &rerr);
	if (rv != 0) {
		rpc_call_errorf(call, "apply of %s: the spec could not be stored on the NAS: %s",
		    sp->name, rerr.re_msg);
		goto out;
	}
	rep->replaced = replaced;
	LOG_INFO("apply of %s: spec stored (driver %.32s%s)", sp->name, sp->driver,
	    replaced ? ", replacing the previous one" : "");
	left = rpc_call_remaining_ms(call);
	rv = mig_apply(env, sp, nas_epoch, left > MIG_RESTORE_MIN_MS ? left : MIG_RESTORE_MIN_MS,
	    &res, err, sizeof(err));
	if (rv == -EALREADY) {
		/* It runs: the new spec is handed over at its next restore. */
		LOG_INFO("apply of %s: it runs on %s, which keeps it; the new spec travels with its "
		         "next move", sp->name, res.mr_target);
		rep->placed = false;
		rv = mapply_fill(rpc_call_arena(call), &res, rep);
		goto out;
	}
	if (rv != 0) {
		/* Nothing took it: the store goes back to what it was. */
		int urv = old != NULL ? mapply_put(env, old->spec, mapply_nas_ms(call), NULL, NULL,
		                            &rerr)
		                      : mapply_unput(env, sp->name, mapply_nas_ms(call), NULL, &rerr);
		if (urv != 0)
			LOG_WARN("apply of %s failed, and its %s spec could not be put back: %s",
			    sp->name, old != NULL ? "previous" : "new", rerr.re_msg);
		rpc_call_errorf(call, "%s", err[0] != '\0' ? err : err_str(rv));
		goto out;
	}
	rep->placed = true;
	rv = mapply_fill(rpc_call_arena(call), &res, rep);
out:
	if (old != NULL)
		rpc_reply_free(&old->base);
	return rv;
}

/* Agent.Stop on the owner, with a final checkpoint, or without when that fails. */
static int
mapply_stop(const struct mig_env *env, struct rpc_call *call, const char *comp,
    const struct reg_mig_plan *plan, Ckpt__V1__DeleteComponentReply *rep)
{
	Ckpt__V1__StopRequest req = CKPT__V1__STOP_REQUEST__INIT;
	Ckpt__V1__StopReply *srep = NULL;
	struct rpc_client *c = reg_peer_client(plan->rm_owner_peer);
	struct rpc_error rerr;
	struct reg_ckpt ck;
	char why[WIRE_ERR_MAX];
	unsigned left = rpc_call_remaining_ms(call);
	unsigned to = left / 2 < MIG_STOP_MIN_MS ? MIG_STOP_MIN_MS
	    : left / 2 > MIG_STOP_MAX_MS         ? MIG_STOP_MAX_MS
	                                         : left / 2;
	int rv;

	req.component = (char *)comp;
	req.checkpoint = 1;
	rv = rpc_client_call(c, AGENT_STOP, &req.base, to, (ProtobufCMessage **)&srep, &rerr);
	if (rv != 0) {
		LOG_WARN("delete of %s: no final checkpoint on %s (%s); stopping it without one",
		    comp, plan->rm_owner, rerr.re_msg);
		req.checkpoint = 0;
		rv = rpc_client_call(c, AGENT_STOP, &req.base, to, (ProtobufCMessage **)&srep, &rerr);
	}
	if (rv != 0) {
		rpc_call_errorf(call, "delete of %s: its spec is deleted, but %s did not stop it: %s",
		    comp, plan->rm_owner, rerr.re_msg);
		return rv;
	}
	if (srep->checkpoint != NULL && wire_ckpt_from_pb(srep->checkpoint, &ck, why,
	    sizeof(why)) == 0 && strcmp(ck.rk_component, comp) == 0) {
		reg_checkpoint(env->me_reg, &ck, NULL);
		rep->checkpoint = wire_ckpt_to_pb(rpc_call_arena(call), &ck);
	}
	rpc_reply_free(&srep->base);
	return 0;
}

int
mapply_delete(const struct mig_env *env, struct rpc_call *call,
    const Ckpt__V1__DeleteComponentRequest *req, Ckpt__V1__DeleteComponentReply *rep)
{
	const char *comp = req->component;
	struct reg_mig_plan plan;
	struct rpc_error rerr;
	bool held, existed = false, runs;
	int rv;

	if (key_name_check(comp) != 0) {
		rpc_call_errorf(call, "invalid component name '%.64s' (1 to %d of [A-Za-z0-9._-])",
		    comp, KEY_NAME_MAX);
		return -EINVAL;
	}
	memset(&plan, 0, sizeof(plan));
	/* Also one a node declared and is starting, or is to: nothing restarts it after. */
	rv = reg_delete_begin(env->me_reg, comp, &plan);
	if (rv == -EBUSY) {
		rpc_call_errorf(call, "a migration of %s is in progress: delete it after", comp);
		return -ECANCELED;
	}
	held = rv == 0;
	runs = held && plan.rm_owner_peer != NULL && plan.rm_owner_up && plan.rm_owner_runs;
	rv = mapply_unput(env, comp, mapply_nas_ms(call), &existed, &rerr);
	if (rv != 0) {
		rpc_call_errorf(call, "delete of %s: the NAS could not delete its spec: %s", comp,
		    rerr.re_msg);
		goto out_end;
	}
	rep->had_spec = existed;
	if (!existed && !runs && !(held && plan.rm_waiting)) {
		rv = -ENOENT;
		rpc_call_errorf(call, "no spec of %s is stored and no node runs it", comp);
		goto out_end;
	}
	if (runs) {
		rv = mapply_stop(env, call, comp, &plan, rep);
		if (rv != 0)
			goto out_end;
		rep->node = arena_strdup(rpc_call_arena(call), plan.rm_owner);
		if (rep->node == NULL) {
			rv = -ENOMEM;
			goto out_end;
		}
	}
	if (held)
		reg_migrate_release(env->me_reg, comp);
	held = false;
	LOG_INFO("component %s deleted: %s%s%s%s", comp, existed ? "spec deleted" : "no spec",
	    runs ? ", stopped on " : "", runs ? plan.rm_owner : "",
	    !runs && plan.rm_waiting ? ", its failover, resume or fresh start dropped" : "");
	mev_publish(env->me_pub, &(struct mev){ .me_kind = MEV_SPEC_DELETED,
				  .me_node = runs ? plan.rm_owner : NULL, .me_component = comp });
out_end:
	if (held)
		reg_migrate_end(env->me_reg, comp, NULL, 0, NULL);
	reg_peer_put(plan.rm_owner_peer);
	return rv;
}

#include "cmd_spec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ckpt/v1/manager.pb-c.h"
#include "jout.h"
#include "key.h"
#include "spec.h"

static json_t *
apply_json(const char *name, const Ckpt__V1__ApplyReply *rep)
{
	json_t *o = jout_object(), *refused = jout_array();

	jout_set(o, "component", jout_str(name));
	jout_set_wire(o, "node", jout_str(rep->node));
	jout_set(o, "placed", json_boolean(rep->placed));
	jout_set(o, "fresh", json_boolean(rep->fresh));
	jout_set(o, "replaced", json_boolean(rep->replaced));
	jout_set(o, "epoch", jout_u64(rep->epoch));
	jout_set(o, "restored_from", jout_ref(rep->restored_from));
	for (size_t i = 0; i < rep->n_refused; i++) {
		json_t *f = jout_object();
		jout_set_wire(f, "node", jout_str(rep->refused[i]->node));
		jout_set_wire(f, "reason", jout_str(rep->refused[i]->reason));
		jout_append(refused, f);
	}
	jout_set(o, "refused", refused);
	return o;
}

static void
apply_text(const char *name, const Ckpt__V1__ApplyReply *rep)
{
	char node[KEY_NAME_MAX + 1], rn[KEY_NAME_MAX + 1], rc[KEY_NAME_MAX + 1], why[512];
	const Ckpt__V1__CheckpointRef *ref = rep->restored_from;

	ctl_clean(rep->node, node, sizeof(node));
	for (size_t i = 0; i < rep->n_refused; i++)
		printf("%s: refused by %s: %s\n", name,
		    ctl_clean(rep->refused[i]->node, rn, sizeof(rn)),
		    ctl_clean(rep->refused[i]->reason, why, sizeof(why)));
	if (!rep->placed)
		printf("applied %s: spec %s; it runs on %s, which keeps it (the new spec goes with "
		       "its next move)\n", name, rep->replaced ? "replaced" : "stored", node);
	else if (rep->fresh || ref == NULL)
		printf("applied %s: started fresh on %s (epoch %" PRIu64 ")\n", name, node,
		    rep->epoch);
	else
		printf("applied %s: restored on %s from %s/%s@%" PRIu64 " (epoch %" PRIu64 ")\n",
		    name, node, ctl_clean(ref->node, rn, sizeof(rn)),
		    ctl_clean(ref->component, rc, sizeof(rc)), ref->seq, rep->epoch);
}

int
cmd_apply(struct ctl *c, int argc, char **argv)
{
	const char *file = NULL;
	const struct ctl_flag flags[] = {
		{ "-f", "--file", CTL_FLAG_STR, &file, NULL },
	};
	struct spec_config *cfg = NULL;
	char err[CTL_ERR_MAX];
	json_t *out = NULL, *list = NULL;
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, flags, 1, NULL, 0, 0, &npos);
	if (rv != 0)
		return rv;
	if (file == NULL)
		return ctl_usage(c, "apply: -f FILE is required");
	rv = spec_file_load(file, &cfg, err, sizeof(err));
	if (rv != 0)
		return ctl_fail(c, rv, "%s", err);
	if (c->c_conf.cf_json) {
		out = jout_object();
		list = jout_array();
	}
	for (size_t i = 0; i < cfg->sc_nspecs && rv == 0; i++) {
		Ckpt__V1__ApplyRequest req = CKPT__V1__APPLY_REQUEST__INIT;
		Ckpt__V1__ApplyReply *rep = NULL;
		const char *name = cfg->sc_specs[i]->sp_name;

		rv = spec_to_pb(cfg->sc_specs[i], &req.spec);
		if (rv != 0) {
			rv = ctl_fail(c, rv, "apply of %s: %s", name, strerror(-rv));
			break;
		}
		rv = ctl_mgr_call(c, MGR_APPLY, &req.base,
		    ctl_timeout_at_least(c, CTL_MIGRATE_TIMEOUT_MS), (ProtobufCMessage **)&rep);
		spec_pb_free(req.spec);
		if (rv != 0)
			break;
		if (list != NULL)
			jout_append(list, apply_json(name, rep));
		else
			apply_text(name, rep);
		rpc_reply_free(&rep->base);
	}
	if (out != NULL) {
		jout_set(out, "applied", list);
		if (rv == 0)
			rv = jout_print(c, out, false);
		else
			json_decref(out);
	} else if (rv == 0) {
		rv = ctl_flush_stdout(c);
	}
	spec_config_free(cfg);
	return rv;
}

int
cmd_delete(struct ctl *c, int argc, char **argv)
{
	Ckpt__V1__DeleteComponentRequest req = CKPT__V1__DELETE_COMPONENT_REQUEST__INIT;
	Ckpt__V1__DeleteComponentReply *rep = NULL;
	char *pos[1];
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, NULL, 0, pos, 1, 1, &npos);
	if (rv == 0)
		rv = ctl_check_name(c, "component", pos[0]);
	if (rv != 0)
		return rv;
	req.component = pos[0];
	rv = ctl_mgr_call(c, MGR_DELETE, &req.base, ctl_timeout_at_least(c, CTL_MIGRATE_TIMEOUT_MS),
	    (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	if (c->c_conf.cf_json) {
		json_t *o = jout_object();
		jout_set(o, "component", jout_str(pos[0]));
		jout_set_wire(o, "node", jout_str(rep->node));
		jout_set(o, "had_spec", json_boolean(rep->had_spec));
		jout_set(o, "checkpoint", rep->checkpoint != NULL ? jout_checkpoint(rep->checkpoint)
		                                                  : json_null());
		rv = jout_print(c, o, false);
	} else {
		char node[KEY_NAME_MAX + 1];
		const Ckpt__V1__CheckpointInfo *ck = rep->checkpoint;

		ctl_clean(rep->node, node, sizeof(node));
		printf("deleted %s: %s", pos[0],
		    rep->had_spec ? "spec deleted" : "no spec was stored");
		if (node[0] != '\0')
			printf(", stopped on %s", node);
		if (ck != NULL)
			printf(" (final checkpoint @%" PRIu64 ")", ck->seq);
		printf("; its checkpoints are kept (ckptctl rm deletes them)\n");
		rv = ctl_flush_stdout(c);
	}
	rpc_reply_free(&rep->base);
	return rv;
}

#include "cmd_spec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ckpt/v1/manager.pb-c.h"
#include "ckpt/v1/nas.pb-c.h"
#include "methods.h"
#include "tab.h"
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

/* The words of a command, space-separated (argv as stored, not re-quoted). */
static void
specs_words(char *const *w, size_t n, char *out, size_t outlen)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && len < outlen; i++)
		len += (size_t)snprintf(out + len, outlen - len, "%s%s", i > 0 ? " " : "", w[i]);
}

static json_t *
specs_json_one(const Ckpt__V1__ComponentSpec *s)
{
	json_t *o = jout_object(), *reqs = jout_array(), *run = jout_array();

	jout_set(o, "component", jout_str(s->name));
	jout_set(o, "driver", jout_str(s->driver));
	jout_set(o, "interval_ms", jout_u64(s->interval_ms));
	jout_set(o, "limit_bytes", jout_u64(s->limit_bytes));
	for (size_t i = 0; i < s->n_requires; i++) {
		json_t *l = jout_object();
		jout_set_wire(l, "key", jout_str(s->requires[i]->key));
		jout_set_wire(l, "value", jout_str(s->requires[i]->value));
		jout_append(reqs, l);
	}
	jout_set(o, "requires", reqs);
	if (s->settings_case == CKPT__V1__COMPONENT_SPEC__SETTINGS_EXEC && s->exec != NULL)
		for (size_t i = 0; i < s->exec->n_run; i++)
			jout_append(run, jout_str(s->exec->run[i]));
	jout_set(o, "run", run);
	jout_set(o, "folder", jout_str(s->settings_case == CKPT__V1__COMPONENT_SPEC__SETTINGS_EXEC &&
	                                       s->exec != NULL ? s->exec->folder : ""));
	jout_set(o, "max_restarts",
	    s->restart != NULL ? jout_u64(s->restart->max_restarts) : json_null());
	jout_set(o, "backoff_ms", s->restart != NULL ? jout_u64(s->restart->backoff_ms) : json_null());
	return o;
}

int
cmd_specs(struct ctl *c, int argc, char **argv)
{
	Ckpt__V1__ListSpecsRequest req = CKPT__V1__LIST_SPECS_REQUEST__INIT;
	Ckpt__V1__ListSpecsReply *rep = NULL;
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, NULL, 0, NULL, 0, 0, &npos);
	if (rv != 0)
		return rv;
	rv = ctl_nas_call(c, NAS_LIST_SPECS, &req.base, ctl_timeout(c), (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	if (c->c_conf.cf_json) {
		json_t *arr = jout_array();
		for (size_t i = 0; i < rep->n_specs; i++)
			jout_append(arr, specs_json_one(rep->specs[i]));
		rv = jout_print(c, arr, false);
	} else {
		static const char *const head[] = { "COMPONENT", "DRIVER", "INTERVAL", "LIMIT",
			"REQUIRES", "RUN" };
		struct tab *t = NULL;

		rv = tab_new(6, head, &t);
		for (size_t i = 0; i < rep->n_specs && rv == 0; i++) {
			const Ckpt__V1__ComponentSpec *s = rep->specs[i];
			char name[KEY_NAME_MAX + 1], drv[KEY_NAME_MAX + 1], iv[32], lim[32];
			char req_s[512] = "", run[512] = "", clean[512];
			size_t len = 0;
			const char *cells[6];

			for (size_t j = 0; j < s->n_requires && len < sizeof(req_s); j++)
				len += (size_t)snprintf(req_s + len, sizeof(req_s) - len, "%s%s%s%s",
				    j > 0 ? "," : "", s->requires[j]->key,
				    s->requires[j]->value[0] != '\0' ? "=" : "", s->requires[j]->value);
			if (s->settings_case == CKPT__V1__COMPONENT_SPEC__SETTINGS_EXEC &&
			    s->exec != NULL)
				specs_words(s->exec->run, s->exec->n_run, run, sizeof(run));
			if (s->interval_ms > 0)
				snprintf(iv, sizeof(iv), "%" PRIu64 "ms", s->interval_ms);
			else
				snprintf(iv, sizeof(iv), "agent's");
			snprintf(lim, sizeof(lim), "%" PRIu64, s->limit_bytes);
			cells[0] = ctl_clean(s->name, name, sizeof(name));
			cells[1] = ctl_clean(s->driver, drv, sizeof(drv));
			cells[2] = iv;
			cells[3] = lim;
			cells[4] = req_s[0] != '\0' ? req_s : "-";
			cells[5] = run[0] != '\0' ? ctl_clean(run, clean, sizeof(clean)) : "-";
			rv = tab_add(t, cells);
		}
		if (rv == 0)
			rv = tab_print(t, stdout);
		tab_free(t);
		if (rv == 0)
			rv = ctl_flush_stdout(c);
	}
	rpc_reply_free(&rep->base);
	return rv;
}

#include "cmd_drain.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "ckpt/v1/manager.pb-c.h"
#include "jout.h"
#include "key.h"
#include "sha.h"

/* Manager methods added after those ctl.h lists (proto/ckpt/v1/manager.proto). */

int
cmd_drain(struct ctl *c, int argc, char **argv)
{
	Ckpt__V1__DrainRequest req = CKPT__V1__DRAIN_REQUEST__INIT;
	Ckpt__V1__DrainReply *rep = NULL;
	char *pos[1];
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, NULL, 0, pos, 1, 1, &npos);
	if (rv == 0)
		rv = ctl_check_name(c, "node", pos[0]);
	if (rv != 0)
		return rv;
	req.node = pos[0];
	rv = ctl_mgr_call(c, MGR_DRAIN, &req.base, ctl_timeout_at_least(c, CTL_MIGRATE_TIMEOUT_MS),
	    (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	if (c->c_conf.cf_json) {
		json_t *o = jout_object(), *moved = jout_array(), *failed = jout_array();
		jout_set(o, "node", jout_str(pos[0]));
		for (size_t i = 0; i < rep->n_moved; i++) {
			const Ckpt__V1__MigrateReply *m = rep->moved[i];
			json_t *e = jout_object();
			jout_set(e, "component",
			    jout_str(m->restored_from != NULL ? m->restored_from->component : ""));
			jout_set(e, "target", jout_str(m->target));
			jout_set(e, "epoch", jout_u64(m->epoch));
			jout_set(e, "restored_from", jout_ref(m->restored_from));
			jout_set(e, "state_sha256", jout_sha(m->state_sha256.data, m->state_sha256.len));
			jout_set(e, "state_digest", jout_digest(m->state_sha256.data, m->state_sha256.len));
			jout_append(moved, e);
		}
		for (size_t i = 0; i < rep->n_failed; i++) {
			json_t *e = jout_object();
			jout_set(e, "component", jout_str(rep->failed[i]->component));
			jout_set(e, "reason", jout_str(rep->failed[i]->reason));
			jout_append(failed, e);
		}
		jout_set(o, "moved", moved);
		jout_set(o, "failed", failed);
		rv = jout_print(c, o, false);
	} else {
		char node[KEY_NAME_MAX + 1], a[KEY_NAME_MAX + 1], b[KEY_NAME_MAX + 1];
		char why[512], hex[SHA_HEX_LEN + 1];

		ctl_clean(pos[0], node, sizeof(node));
		for (size_t i = 0; i < rep->n_moved; i++) {
			const Ckpt__V1__MigrateReply *m = rep->moved[i];
			const Ckpt__V1__CheckpointRef *r = m->restored_from;
			printf("moved %s to %s (restored seq %" PRIu64 " sha256=%s)\n",
			    ctl_clean(r != NULL ? r->component : "?", a, sizeof(a)),
			    ctl_clean(m->target, b, sizeof(b)), r != NULL ? r->seq : 0,
			    ctl_hex(m->state_sha256.data, m->state_sha256.len, hex));
		}
		for (size_t i = 0; i < rep->n_failed; i++)
			printf("not moved %s: %s\n",
			    ctl_clean(rep->failed[i]->component, a, sizeof(a)),
			    ctl_clean(rep->failed[i]->reason, why, sizeof(why)));
		printf("node %s %s and cordoned\n", node,
		    rep->n_failed == 0 ? "drained" : "partly drained");
		rv = ctl_flush_stdout(c);
	}
	if (rv == 0 && rep->n_failed > 0)
		rv = ctl_fail(c, -EAGAIN, "drain of %s: %zu component(s) not moved", pos[0],
		    rep->n_failed);
	rpc_reply_free(&rep->base);
	return rv;
}

static int
cordon_run(struct ctl *c, int argc, char **argv, unsigned method, const char *verb)
{
	Ckpt__V1__CordonRequest req = CKPT__V1__CORDON_REQUEST__INIT;
	Ckpt__V1__CordonReply *rep = NULL;
	char *pos[1];
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, NULL, 0, pos, 1, 1, &npos);
	if (rv == 0)
		rv = ctl_check_name(c, "node", pos[0]);
	if (rv != 0)
		return rv;
	req.node = pos[0];
	rv = ctl_mgr_call(c, method, &req.base, ctl_timeout(c), (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	if (c->c_conf.cf_json) {
		json_t *o = jout_object();
		jout_set(o, "node", jout_str(pos[0]));
		jout_set(o, "cordoned", json_boolean(method == MGR_CORDON));
		jout_set(o, "was_cordoned", json_boolean(rep->was_cordoned));
		rv = jout_print(c, o, false);
	} else {
		char node[KEY_NAME_MAX + 1];
		printf("node %s %s\n", ctl_clean(pos[0], node, sizeof(node)), verb);
		rv = ctl_flush_stdout(c);
	}
	rpc_reply_free(&rep->base);
	return rv;
}

int
cmd_cordon(struct ctl *c, int argc, char **argv)
{
	return cordon_run(c, argc, argv, MGR_CORDON, "cordoned");
}

int
cmd_uncordon(struct ctl *c, int argc, char **argv)
{
	return cordon_run(c, argc, argv, MGR_UNCORDON, "uncordoned");
}

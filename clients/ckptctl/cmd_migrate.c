#include "cmd_migrate.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ckpt/v1/manager.pb-c.h"
#include "jout.h"
#include "key.h"
#include "sha.h"

int
cmd_migrate(struct ctl *c, int argc, char **argv)
{
	Ckpt__V1__MigrateRequest req = CKPT__V1__MIGRATE_REQUEST__INIT;
	Ckpt__V1__MigrateReply *rep = NULL;
	const char *to = NULL;
	const struct ctl_flag flags[] = {
		{ NULL, "--to", CTL_FLAG_STR, &to, NULL },
	};
	const Ckpt__V1__CheckpointRef *ref;
	char *pos[1];
	size_t npos;
	bool match;
	int rv;

	rv = ctl_args(c, argc, argv, flags, 1, pos, 1, 1, &npos);
	if (rv == 0)
		rv = ctl_check_name(c, "component", pos[0]);
	if (rv == 0 && to != NULL)
		rv = ctl_check_name(c, "node", to);
	if (rv != 0)
		return rv;
	req.component = pos[0];
	req.target = (char *)(to != NULL ? to : "");
	rv = ctl_mgr_call(c, MGR_MIGRATE, &req.base, ctl_timeout_at_least(c, CTL_MIGRATE_TIMEOUT_MS),
	    (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	ref = rep->restored_from;
	/* The proof of the seed scenario: restored state == stored checkpoint. */
	match = ref != NULL && ref->sha256.len == SHA_LEN && rep->state_sha256.len == SHA_LEN &&
	    memcmp(ref->sha256.data, rep->state_sha256.data, SHA_LEN) == 0;
	if (c->c_conf.cf_json) {
		json_t *o = jout_object();
		jout_set(o, "component", jout_str(pos[0]));
		jout_set(o, "source", jout_str(rep->source));
		jout_set(o, "target", jout_str(rep->target));
		jout_set(o, "epoch", jout_u64(rep->epoch));
		jout_set(o, "restored_from", jout_ref(ref));
		jout_set(o, "state_sha256", jout_sha(rep->state_sha256.data, rep->state_sha256.len));
		jout_set(o, "state_digest", jout_digest(rep->state_sha256.data, rep->state_sha256.len));
		jout_set(o, "state_matches", json_boolean(match));
		rv = jout_print(c, o, false);
	} else {
		char src[KEY_NAME_MAX + 1], dst[KEY_NAME_MAX + 1], hex[SHA_HEX_LEN + 1];
		char rn[KEY_NAME_MAX + 1], rc[KEY_NAME_MAX + 1];

		ctl_clean(rep->source, src, sizeof(src));
		ctl_clean(rep->target, dst, sizeof(dst));
		if (ref != NULL)
			printf("migrated %s from %s to %s (restored %s/%s@%" PRIu64 " sha256=%s)\n", pos[0],
			    src, dst, ctl_clean(ref->node, rn, sizeof(rn)),
			    ctl_clean(ref->component, rc, sizeof(rc)), ref->seq,
			    ctl_hex(ref->sha256.data, ref->sha256.len, hex));
		else
			printf("migrated %s from %s to %s\n", pos[0], src, dst);
		rv = ctl_flush_stdout(c);
	}
	rpc_reply_free(&rep->base);
	return rv;
}

#include "cmd_store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "ckpt/v1/nas.pb-c.h"
#include "err.h"
#include "jout.h"
#include "key.h"
#include "util.h"

/* Nas methods of the storage engine (see proto/ckpt/v1/nas.proto). */

/* Scrub reads and hashes every chunk: give it time. */
#define STORE_SCRUB_TIMEOUT_MS 600000u

static int
store_pin_cmd(struct ctl *c, int argc, char **argv, bool pinned)
{
	Ckpt__V1__PinRequest req = CKPT__V1__PIN_REQUEST__INIT;
	Ckpt__V1__PinReply *rep = NULL;
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1];
	uint64_t seq = 0;
	char *pos[1];
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, NULL, 0, pos, 1, 1, &npos);
	if (rv == 0)
		rv = ctl_parse_ref(c, pos[0], node, comp, &seq);
	if (rv == 0 && seq == 0)
		rv = ctl_usage(c, "%s: want NODE/COMPONENT@SEQ, a sequence number is required",
		    pinned ? "pin" : "unpin");
	if (rv != 0)
		return rv;
	req.node = node;
	req.component = comp;
	req.seq = seq;
	req.pinned = pinned;
	rv = ctl_nas_call(c, NAS_PIN, &req.base, ctl_timeout(c), (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	if (c->c_conf.cf_json) {
		json_t *o = jout_key(node, comp, seq);
		jout_set(o, "pinned", json_boolean(pinned));
		jout_set(o, "changed", json_boolean(rep->changed));
		rv = jout_print(c, o, false);
	} else {
		printf("%s %s/%s@%" PRIu64 "%s\n", pinned ? "pinned" : "unpinned", node, comp, seq,
		    rep->changed ? "" : " (already)");
		rv = ctl_flush_stdout(c);
	}
	rpc_reply_free(&rep->base);
	return rv;
}

int
cmd_pin(struct ctl *c, int argc, char **argv)
{
	return store_pin_cmd(c, argc, argv, true);
}

int
cmd_unpin(struct ctl *c, int argc, char **argv)
{
	return store_pin_cmd(c, argc, argv, false);
}

int
cmd_keep(struct ctl *c, int argc, char **argv)
{
	Ckpt__V1__SetRetentionRequest req = CKPT__V1__SET_RETENTION_REQUEST__INIT;
	Ckpt__V1__SetRetentionReply *rep = NULL;
	int64_t keep;
	char *pos[2];
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, NULL, 0, pos, 2, 2, &npos);
	if (rv == 0)
		rv = ctl_check_name(c, "component", pos[0]);
	if (rv == 0 && util_parse_int(pos[1], 0, 1000000, &keep) != 0)
		rv = ctl_usage(c, "keep: N must be 0 (the NAS default) to 1000000, got '%s'", pos[1]);
	if (rv != 0)
		return rv;
	req.component = pos[0];
	req.keep = (uint32_t)keep;
	rv = ctl_nas_call(c, NAS_SET_RETENTION, &req.base, ctl_timeout(c),
	    (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	if (c->c_conf.cf_json) {
		json_t *o = jout_object();
		jout_set(o, "component", jout_str(pos[0]));
		jout_set(o, "keep", jout_u64(rep->keep));
		jout_set(o, "deleted", jout_u64(rep->deleted));
		rv = jout_print(c, o, false);
	} else {
		printf("%s: keeping the newest %u checkpoints%s; %u deleted\n", pos[0], rep->keep,
		    keep == 0 ? " (the NAS default)" : "", rep->deleted);
		rv = ctl_flush_stdout(c);
	}
	rpc_reply_free(&rep->base);
	return rv;
}

int
cmd_scrub(struct ctl *c, int argc, char **argv)
{
	Ckpt__V1__ScrubRequest req = CKPT__V1__SCRUB_REQUEST__INIT;
	Ckpt__V1__ScrubReply *rep = NULL;
	uint64_t bad;
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, NULL, 0, NULL, 0, 0, &npos);
	if (rv != 0)
		return rv;
	rv = ctl_nas_call(c, NAS_SCRUB, &req.base, ctl_timeout_at_least(c, STORE_SCRUB_TIMEOUT_MS),
	    (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	bad = rep->bad_chunks + rep->missing_chunks + rep->bad_refcounts + rep->bad_records;
	if (c->c_conf.cf_json) {
		json_t *o = jout_object(), *arr = jout_array();
		jout_set(o, "nas", jout_str(c->c_nas_url));
		jout_set(o, "chunks", jout_u64(rep->chunks));
		jout_set(o, "records", jout_u64(rep->records));
		jout_set(o, "bad_chunks", jout_u64(rep->bad_chunks));
		jout_set(o, "missing_chunks", jout_u64(rep->missing_chunks));
		jout_set(o, "bad_refcounts", jout_u64(rep->bad_refcounts));
		jout_set(o, "bad_records", jout_u64(rep->bad_records));
		jout_set(o, "orphan_chunks", jout_u64(rep->orphan_chunks));
		for (size_t i = 0; i < rep->n_problems; i++)
			jout_append(arr, jout_str(rep->problems[i]));
		jout_set(o, "problems", arr);
		jout_set(o, "clean", json_boolean(bad == 0));
		rv = jout_print(c, o, false);
	} else {
		for (size_t i = 0; i < rep->n_problems; i++)
			printf("problem: %s\n", rep->problems[i]);
		printf("scrubbed %s: %" PRIu64 " records, %" PRIu64 " chunks; %" PRIu64
		       " corrupt chunks, %" PRIu64 " missing, %" PRIu64 " wrong reference counts, %" PRIu64
		       " bad records, %" PRIu64 " orphans: %s\n",
		    c->c_nas_url, rep->records, rep->chunks, rep->bad_chunks, rep->missing_chunks,
		    rep->bad_refcounts, rep->bad_records, rep->orphan_chunks, bad == 0 ? "clean" : "CORRUPT");
		rv = ctl_flush_stdout(c);
	}
	rpc_reply_free(&rep->base);
	if (rv == 0 && bad != 0)
		rv = ctl_fail(c, -EBADMSG, "scrub of %s: DATA_LOSS: %" PRIu64 " problems found",
		    c->c_nas_url, bad);
	return rv;
}

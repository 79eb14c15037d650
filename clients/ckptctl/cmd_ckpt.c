#include "cmd_ckpt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "ckpt/v1/manager.pb-c.h"
#include "ckpt/v1/nas.pb-c.h"
#include "err.h"
#include "jout.h"
#include "key.h"
#include "sha.h"
#include "tab.h"

/* A list of checkpoints as a table or a JSON array. */
static int
ckpt_print_list(struct ctl *c, Ckpt__V1__CheckpointInfo *const *list, size_t n)
{
	static const char *const head[] = { "NODE", "COMPONENT", "SEQ", "SIZE", "DIGEST",
		"CREATED" };
	struct tab *t = NULL;
	int rv;

	if (c->c_conf.cf_json) {
		json_t *arr = jout_array();
		for (size_t i = 0; i < n; i++)
			jout_append(arr, jout_checkpoint(list[i]));
		return jout_print(c, arr, false);
	}
	rv = tab_new(6, head, &t);
	for (size_t i = 0; i < n && rv == 0; i++) {
		const Ckpt__V1__CheckpointInfo *ci = list[i];
		char seq[24], size[24], hex[SHA_HEX_LEN + 1], created[40];
		const char *cells[6] = { ci->node, ci->component, seq, size,
			ci->digest.len == SHA_LEN ? ctl_hex(ci->digest.data, ci->digest.len, hex) :
			    ctl_hex(ci->sha256.data, ci->sha256.len, hex),
			ctl_time_iso(ci->created_unix_ms, created, sizeof(created)) };

		snprintf(seq, sizeof(seq), "%" PRIu64, ci->seq);
		snprintf(size, sizeof(size), "%" PRIu64, ci->size);
		rv = tab_add(t, cells);
	}
	if (rv == 0)
		rv = tab_print(t, stdout);
	tab_free(t);
	if (rv != 0)
		return ctl_fail(c, rv, "printing checkpoints: %s", err_str(rv));
	return ctl_flush_stdout(c);
}

int
cmd_ls(struct ctl *c, int argc, char **argv)
{
	Ckpt__V1__ListRequest req = CKPT__V1__LIST_REQUEST__INIT;
	Ckpt__V1__ListReply *rep = NULL;
	char node[KEY_NAME_MAX + 1] = "", comp[KEY_NAME_MAX + 1] = "";
	bool latest = false;
	const struct ctl_flag flags[] = {
		{ NULL, "--latest", CTL_FLAG_BOOL, &latest, NULL },
	};
	char *pos[1];
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, flags, 1, pos, 0, 1, &npos);
	if (rv == 0 && npos == 1)
		rv = ctl_parse_scope(c, pos[0], node, comp);
	if (rv != 0)
		return rv;
	req.node = node;
	req.component = comp;
	req.latest_only = latest;
	rv = ctl_nas_call(c, NAS_LIST, &req.base, ctl_timeout(c), (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	if (rep->truncated)
		fprintf(stderr, "ckptctl: warning: the NAS lists at most %zu checkpoints at once and "
		    "holds more; name a node or a component\n", rep->n_checkpoints);
	rv = ckpt_print_list(c, rep->checkpoints, rep->n_checkpoints);
	/* `ls demo_1` names a node: when none has that name but a component does, say how. */
	if (rv == 0 && rep->n_checkpoints == 0 && npos == 1 && comp[0] == '\0' && node[0] != '\0') {
		Ckpt__V1__ListReply *other = NULL;
		req.node = "";
		req.component = node;
		req.latest_only = true;
		if (ctl_nas_call(c, NAS_LIST, &req.base, ctl_timeout(c),
		    (ProtobufCMessage **)&other) == 0) {
			if (other->n_checkpoints != 0)
				fprintf(stderr, "ckptctl: no node is named %s, but a component is: "
				    "ckptctl ls '*/%s'\n", node, node);
			rpc_reply_free(&other->base);
		}
		c->c_err[0] = '\0';
	}
	rpc_reply_free(&rep->base);
	return rv;
}

int
cmd_catalog(struct ctl *c, int argc, char **argv)
{
	Ckpt__V1__ListCheckpointsRequest req = CKPT__V1__LIST_CHECKPOINTS_REQUEST__INIT;
	Ckpt__V1__ListCheckpointsReply *rep = NULL;
	char node[KEY_NAME_MAX + 1] = "", comp[KEY_NAME_MAX + 1] = "";
	char *pos[1];
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, NULL, 0, pos, 0, 1, &npos);
	if (rv == 0 && npos == 1)
		rv = ctl_parse_scope(c, pos[0], node, comp);
	if (rv != 0)
		return rv;
	req.node = node;
	req.component = comp;
	rv = ctl_mgr_call(c, MGR_LIST_CHECKPOINTS, &req.base, ctl_timeout(c),
	    (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	rv = ckpt_print_list(c, rep->checkpoints, rep->n_checkpoints);
	rpc_reply_free(&rep->base);
	return rv;
}

int
cmd_stat(struct ctl *c, int argc, char **argv)
{
	Ckpt__V1__StatRequest req = CKPT__V1__STAT_REQUEST__INIT;
	Ckpt__V1__StatReply *rep = NULL;
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, NULL, 0, NULL, 0, 0, &npos);
	if (rv != 0)
		return rv;
	rv = ctl_nas_call(c, NAS_STAT, &req.base, ctl_timeout(c), (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	{
		const struct {
			const char *name;
			uint64_t value;
		} rows[] = {
			{ "checkpoints", rep->checkpoints },
			{ "chunks", rep->chunks },
			{ "chunk_bytes", rep->chunk_bytes },
			{ "map_size", rep->map_size },
			{ "map_used", rep->map_used },
			{ "requests", rep->requests },
			{ "bad_requests", rep->bad_requests },
			{ "chunk_raw_bytes", rep->chunk_raw_bytes },
			{ "put_bytes", rep->put_bytes },
			{ "put_chunks", rep->put_chunks },
			{ "keep", rep->keep },
			{ "writes", rep->writes },
			{ "write_commits", rep->write_commits },
			{ "disk_reserve", rep->disk_reserve },
		};
		size_t n = sizeof(rows) / sizeof(rows[0]);

		if (c->c_conf.cf_json) {
			json_t *o = jout_object();
			jout_set(o, "nas", jout_str(c->c_nas_url));
			jout_set(o, "store_id", jout_str(rep->store_id));
			for (size_t i = 0; i < n; i++)
				jout_set(o, rows[i].name, jout_u64(rows[i].value));
			jout_set(o, "counting", json_boolean(rep->counting));
			jout_set(o, "disk_reserve_short", json_boolean(rep->disk_reserve_short));
			rv = jout_print(c, o, false);
		} else {
			printf("%-15s %s\n", "nas", c->c_nas_url);
			printf("%-15s %s\n", "store_id", rep->store_id);
			for (size_t i = 0; i < n; i++)
				printf("%-15s %" PRIu64 "\n", rows[i].name, rows[i].value);
			/* The byte counts are still growing: the NAS restarted a moment ago. */
			if (rep->counting)
				printf("%-15s %s\n", "counting", "yes (chunk_bytes not final)");
			/* Ready, on purpose (deletes must reach it), but stores are refused. */
			if (rep->disk_reserve_short)
				printf("%-15s %s\n", "disk_reserve_short",
				    "yes (the disk is full: stores refused, deletes go on; ckptctl rm "
				    "makes room)");
			rv = ctl_flush_stdout(c);
		}
	}
	rpc_reply_free(&rep->base);
	return rv;
}

/*
 * Tells the manager (when one is configured) what was deleted, so that its
 * catalogue does not point at it. A manager that cannot be told is not an
 * error: the deletion happened, and its next restore finds out.
 */
static void
rm_tell_manager(struct ctl *c, const char *node, const char *comp, uint64_t seq)
{
	Ckpt__V1__ForgetRequest req = CKPT__V1__FORGET_REQUEST__INIT;
	const char *url = c->c_conf.cf_manager;
	struct rpc_client *mgr = NULL;
	ProtobufCMessage *rep = NULL;
	struct rpc_error err = { 0 };
	int rv;

	if (url == NULL || url[0] == '\0')
		return;
	req.node = (char *)node;
	req.component = (char *)comp;
	req.seq = seq;
	rv = rpc_client_open_tls(url, &ckpt__v1__manager__descriptor, RPC_CLIENT_DIAL_NOW, 0,
	    &c->c_conf.cf_tls, &mgr, &err);
	if (rv == 0)
		rpc_client_expect_peer(mgr, "manager"); /* proven with TLS on (auth.proto 1b) */
	if (rv == 0)
		rv = rpc_client_call(mgr, MGR_FORGET, &req.base, ctl_timeout(c), &rep, &err);
	if (rv == 0)
		rpc_reply_free(rep);
	else
		fprintf(stderr, "%s: warning: the manager's catalogue was not updated (%s); its next "
		    "restore of %s finds the newest checkpoint left\n", CTL_PROG,
		    err.re_msg[0] != '\0' ? err.re_msg : err_str(rv), comp);
	rpc_client_close(mgr);
}

int
cmd_rm(struct ctl *c, int argc, char **argv)
{
	Ckpt__V1__DeleteRequest req = CKPT__V1__DELETE_REQUEST__INIT;
	Ckpt__V1__DeleteReply *rep = NULL;
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1];
	uint64_t seq = 0;
	char *pos[1];
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, NULL, 0, pos, 1, 1, &npos);
	if (rv == 0)
		rv = ctl_parse_ref(c, pos[0], node, comp, &seq);
	if (rv != 0)
		return rv;
	req.node = node;
	req.component = comp;
	req.seq = seq;
	rv = ctl_nas_call(c, NAS_DELETE, &req.base, ctl_timeout(c), (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	if (rep->deleted > 0)
		rm_tell_manager(c, node, comp, seq);
	if (c->c_conf.cf_json) {
		json_t *o = jout_key(node, comp, seq);
		jout_set(o, "deleted", jout_u64(rep->deleted));
		rv = jout_print(c, o, false);
	} else {
		if (seq != 0)
			printf("deleted %s/%s@%" PRIu64 " (%u checkpoint%s)\n", node, comp, seq,
			    rep->deleted, rep->deleted == 1 ? "" : "s");
		else
			printf("deleted %s/%s (%u checkpoint%s)\n", node, comp, rep->deleted,
			    rep->deleted == 1 ? "" : "s");
		rv = ctl_flush_stdout(c);
	}
	rpc_reply_free(&rep->base);
	return rv;
}

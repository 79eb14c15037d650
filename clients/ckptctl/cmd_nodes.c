#include "cmd_nodes.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/manager.pb-c.h"
#include "err.h"
#include "jout.h"
#include "tab.h"
#include "util.h"

/* Age of a component's last checkpoint at now_ms (wall clock; 0 when in the future). */
static uint64_t
nodes_age_ms(const Ckpt__V1__ComponentStatus *cs, uint64_t now_ms)
{
	return now_ms > cs->last_unix_ms ? now_ms - cs->last_unix_ms : 0;
}

static json_t *
nodes_component_json(const Ckpt__V1__ComponentStatus *cs, uint64_t now_ms)
{
	json_t *o = jout_object();
	jout_set(o, "name", jout_str(cs->name));
	jout_set(o, "state", jout_str(cs->state));
	jout_set(o, "kind", jout_str(cs->kind));
	jout_set(o, "last_seq", jout_u64(cs->last_seq));
	jout_set(o, "epoch", jout_u64(cs->epoch));
	jout_set(o, "state_bytes", jout_u64(cs->state_bytes));
	jout_set(o, "restored_from", jout_ref(cs->restored_from));
	jout_set(o, "state_sha256", jout_sha(cs->state_sha256.data, cs->state_sha256.len));
	jout_set(o, "state_digest", jout_digest(cs->state_sha256.data, cs->state_sha256.len));
	jout_set(o, "pid", jout_u64(cs->pid));
	jout_set(o, "restarts", jout_u64(cs->restarts));
	jout_set(o, "crashes", jout_u64(cs->crashes));
	jout_set(o, "last_unix_ms", jout_u64(cs->last_unix_ms));
	jout_set(o, "last_age_ms", cs->last_unix_ms != 0 ? jout_u64(nodes_age_ms(cs, now_ms))
	                                                  : json_null());
	jout_set(o, "reason", jout_str(cs->reason));
	return o;
}

static json_t *
nodes_node_json(const Ckpt__V1__NodeInfo *ni, uint64_t now_ms)
{
	json_t *o = jout_object(), *comps = jout_array(), *labels = jout_object(), *cap, *pending;

	jout_set(o, "id", jout_str(ni->id));
	jout_set(o, "state", jout_str(ni->state));
	jout_set(o, "address", jout_str(ni->address));
	for (size_t i = 0; i < ni->n_components; i++)
		jout_append(comps, nodes_component_json(ni->components[i], now_ms));
	jout_set(o, "components", comps);
	for (size_t i = 0; i < ni->n_labels; i++)
		jout_set_wire(labels, ni->labels[i]->key, jout_str(ni->labels[i]->value));
	jout_set(o, "labels", labels);
	if (ni->capacity != NULL) {
		cap = jout_object();
		jout_set(cap, "mem_free_bytes", jout_u64(ni->capacity->mem_free_bytes));
		jout_set(cap, "mem_total_bytes", jout_u64(ni->capacity->mem_total_bytes));
		jout_set(cap, "cpu_count", jout_u64(ni->capacity->cpu_count));
		jout_set(cap, "cpu_load_milli", jout_u64(ni->capacity->cpu_load_milli));
	} else {
		cap = json_null();
	}
	jout_set(o, "capacity", cap);
	jout_set(o, "last_seen_ms_ago", jout_u64(ni->last_seen_ms_ago));
	jout_set(o, "attached_unix_ms", jout_u64(ni->attached_unix_ms));
	jout_set(o, "cordoned", json_boolean(ni->cordoned));
	jout_set(o, "queued", jout_u64(ni->queued));
	jout_set(o, "queue_dropped", jout_u64(ni->queue_dropped));
	pending = jout_array();
	for (size_t i = 0; i < ni->n_pending; i++) {
		json_t *p = jout_object();
		jout_set(p, "component", jout_str(ni->pending[i]->component));
		jout_set(p, "reason", jout_str(ni->pending[i]->reason));
		jout_set(p, "since_unix_ms", jout_u64(ni->pending[i]->since_unix_ms));
		jout_set(p, "attempts", jout_u64(ni->pending[i]->attempts));
		jout_append(pending, p);
	}
	jout_set(o, "pending", pending);
	return o;
}

/* "name(state),name(state)" into a malloc'ed string. */
static char *
nodes_components_text(const Ckpt__V1__NodeInfo *ni)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	const char *sep = "";

	/* A component waiting for failover shows once, as pending (why: below the table). */
	for (size_t i = 0; i < ni->n_components; i++) {
		bool pending = false;
		for (size_t k = 0; k < ni->n_pending && !pending; k++)
			pending = strcmp(ni->pending[k]->component, ni->components[i]->name) == 0;
		if (pending)
			continue;
		fprintf(f, "%s%s(%s)", sep, ni->components[i]->name, ni->components[i]->state);
		sep = ",";
	}
	for (size_t i = 0; i < ni->n_pending; i++) {
		fprintf(f, "%s%s(pending)", sep, ni->pending[i]->component);
		sep = ",";
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/*
 * "NODE/COMPONENT pending (N attempts): REASON", one line each, at most
 * NODES_LINE_MAX characters: a longer reason is cut, and --json has it whole.
 */
#define NODES_LINE_MAX 200

static void
nodes_print_pending(const Ckpt__V1__ListNodesReply *rep)
{
	static const char cut[] = "... (ckptctl --json nodes: in full)";

	for (size_t i = 0; i < rep->n_nodes; i++) {
		const Ckpt__V1__NodeInfo *ni = rep->nodes[i];
		for (size_t k = 0; k < ni->n_pending; k++) {
			const Ckpt__V1__PendingComponent *p = ni->pending[k];
			char head[2 * 256 + 64];
			int hl = snprintf(head, sizeof(head), "%s/%s pending (%u attempt%s): ",
			    ni->id, p->component, (unsigned)p->attempts, p->attempts == 1 ? "" : "s");
			int room = NODES_LINE_MAX - hl;
			int rl = (int)strlen(p->reason);

			if (rl <= room)
				printf("%s%s\n", head, p->reason);
			else if (room > (int)sizeof(cut) + 10)
				printf("%s%.*s%s\n", head, room - (int)(sizeof(cut) - 1), p->reason, cut);
			else
				printf("%s%s\n", head, cut + 4);
		}
	}
}

/*
 * One line per component the nodes report, below the nodes: its kind, state,
 * process, restarts and last checkpoint (seq and age). Nothing when none.
 */
static int
nodes_print_components(const Ckpt__V1__ListNodesReply *rep)
{
	static const char *const head[] = { "COMPONENT", "NODE", "KIND", "STATE", "PID",
		"RESTARTS", "SEQ", "AGE" };
	uint64_t now = util_now_unix_ms();
	struct tab *t = NULL;
	size_t rows = 0;
	int rv;

	rv = tab_new(8, head, &t);
	for (size_t i = 0; i < rep->n_nodes && rv == 0; i++) {
		const Ckpt__V1__NodeInfo *ni = rep->nodes[i];
		for (size_t k = 0; k < ni->n_components && rv == 0; k++) {
			const Ckpt__V1__ComponentStatus *cs = ni->components[k];
			char pid[16] = "", restarts[16], seq[24] = "", age[32] = "";
			const char *cells[8] = { cs->name, ni->id, cs->kind, cs->state, pid, restarts,
				seq, age };

			if (cs->pid != 0)
				snprintf(pid, sizeof(pid), "%u", (unsigned)cs->pid);
			snprintf(restarts, sizeof(restarts), "%u", (unsigned)cs->restarts);
			if (cs->last_seq != 0)
				snprintf(seq, sizeof(seq), "%" PRIu64, cs->last_seq);
			if (cs->last_unix_ms != 0)
				snprintf(age, sizeof(age), "%.1fs", (double)nodes_age_ms(cs, now) / 1000.0);
			rv = tab_add(t, cells);
			rows++;
		}
	}
	if (rv == 0 && rows > 0) {
		putchar('\n');
		rv = tab_print(t, stdout);
	}
	tab_free(t);
	return rv;
}

static int
nodes_print_text(struct ctl *c, const Ckpt__V1__ListNodesReply *rep)
{
	static const char *const head[] = { "ID", "STATE", "ADDRESS", "COMPONENTS", "LAST-SEEN" };
	struct tab *t = NULL;
	int rv;

	rv = tab_new(5, head, &t);
	for (size_t i = 0; i < rep->n_nodes && rv == 0; i++) {
		const Ckpt__V1__NodeInfo *ni = rep->nodes[i];
		char seen[32], *comps = nodes_components_text(ni);
		const char *state = ni->cordoned
		    ? (ni->state[0] == 'u' ? "up,cordoned" : "down,cordoned") : ni->state;
		const char *cells[5] = { ni->id, state, ni->address, comps, seen };

		snprintf(seen, sizeof(seen), "%.1fs ago", (double)ni->last_seen_ms_ago / 1000.0);
		rv = comps != NULL ? tab_add(t, cells) : -ENOMEM;
		free(comps);
	}
	if (rv == 0)
		rv = tab_print(t, stdout);
	tab_free(t);
	if (rv == 0)
		rv = nodes_print_components(rep);
	if (rv != 0)
		return ctl_fail(c, rv, "printing nodes: %s", err_str(rv));
	nodes_print_pending(rep);
	return ctl_flush_stdout(c);
}

int
cmd_nodes(struct ctl *c, int argc, char **argv)
{
	Ckpt__V1__ListNodesRequest req = CKPT__V1__LIST_NODES_REQUEST__INIT;
	Ckpt__V1__ListNodesReply *rep = NULL;
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, NULL, 0, NULL, 0, 0, &npos);
	if (rv != 0)
		return rv;
	rv = ctl_mgr_call(c, MGR_LIST_NODES, &req.base, ctl_timeout(c), (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	if (c->c_conf.cf_json) {
		json_t *arr = jout_array();
		for (size_t i = 0; i < rep->n_nodes; i++)
			jout_append(arr, nodes_node_json(rep->nodes[i], util_now_unix_ms()));
		rv = jout_print(c, arr, false);
	} else {
		rv = nodes_print_text(c, rep);
	}
	rpc_reply_free(&rep->base);
	return rv;
}

int
cmd_info(struct ctl *c, int argc, char **argv)
{
	Ckpt__V1__InfoRequest req = CKPT__V1__INFO_REQUEST__INIT;
	Ckpt__V1__InfoReply *rep = NULL;
	char buf[LIMIT_URL_MAX];
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, NULL, 0, NULL, 0, 0, &npos);
	if (rv != 0)
		return rv;
	rv = ctl_mgr_call(c, MGR_INFO, &req.base, ctl_timeout(c), (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	if (c->c_conf.cf_json) {
		json_t *o = jout_object(), *nas = jout_array();
		jout_set(o, "manager", jout_str(c->c_conf.cf_manager));
		jout_set(o, "version", jout_str(rep->version));
		jout_set(o, "events", jout_str(rep->events));
		for (size_t i = 0; i < rep->n_nas; i++)
			jout_append(nas, jout_str(rep->nas[i]));
		jout_set(o, "nas", nas);
		rv = jout_print(c, o, false);
	} else {
		printf("manager  %s\n", ctl_clean(c->c_conf.cf_manager, buf, sizeof(buf)));
		printf("version  %s\n", ctl_clean(rep->version, buf, sizeof(buf)));
		printf("events   %s\n", ctl_clean(rep->events, buf, sizeof(buf)));
		for (size_t i = 0; i < rep->n_nas; i++)
			printf("nas      %s\n", ctl_clean(rep->nas[i], buf, sizeof(buf)));
		rv = ctl_flush_stdout(c);
	}
	rpc_reply_free(&rep->base);
	return rv;
}

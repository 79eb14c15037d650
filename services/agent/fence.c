/*
 * fence: ownership lost to another node. A Store refused for a stale epoch,
 * or a component the manager names as revoked, is stopped at once and its
 * queued checkpoints are dropped.
 */

#include "agent_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/nas.pb-c.h"
#include "err.h"
#include "key.h"
#include "log.h"
#include "methods.h"

/*
 * Another node owns name now: stop running it, forget its queued
 * checkpoints, say so once.
 */
void
fence_lost(struct agent *a, const char *name, const char *why)
{
	size_t dropped;

	if (comp_revoke(a->a_comps, name) != 0)
		return;
	dropped = queue_drop_component(a->a_queue, name);
	LOG_WARN("component %s stopped: node %s lost its ownership (%s)%s", name, a->a_node, why,
	    dropped > 0 ? "; its queued checkpoints are dropped" : "");
}

/*
 * A Store refused with FAILED_PRECONDITION: a stale epoch means another node
 * owns the component (the NAS says so with reason "stale_epoch"; otherwise,
 * missing chunks for one, its List tells). True when the component was
 * given up.
 */
bool
fence_check(struct agent *a, struct nasc *n, const char *name, uint64_t epoch,
    const struct rpc_error *serr)
{
	Ckpt__V1__ListRequest req = CKPT__V1__LIST_REQUEST__INIT;
	Ckpt__V1__ListReply *rep = NULL;
	struct rpc_error err;
	uint64_t newest = 0;
	char why[RPC_ERRMSG_MAX + 64];

	if (rpc_error_is(serr, ERR_REASON_STALE_EPOCH)) {
		snprintf(why, sizeof(why), "the NAS refused its commit with epoch %" PRIu64 ": %s",
		    epoch, serr->re_msg);
		fence_lost(a, name, why);
		return true;
	}
	req.component = (char *)name;
	req.latest_only = true;
	if (nasc_call(n, NAS_LIST, &req.base, AGENT_CONTROL_TIMEOUT_MS, (ProtobufCMessage **)&rep,
		&err) != 0)
		return false;
	for (size_t i = 0; i < rep->n_checkpoints; i++)
		if (rep->checkpoints[i] != NULL && strcmp(rep->checkpoints[i]->component, name) == 0 &&
		    rep->checkpoints[i]->epoch > newest)
			newest = rep->checkpoints[i]->epoch;
	rpc_reply_free(&rep->base);
	if (newest <= epoch)
		return false;
	snprintf(why, sizeof(why), "the NAS holds epoch %" PRIu64 ", newer than its %" PRIu64,
	    newest, epoch);
	fence_lost(a, name, why);
	return true;
}

/* The manager says another node owns these: stop them. */
void
fence_revoked(struct agent *a, char *const *names, size_t n)
{
	for (size_t i = 0; i < n && i < COMP_MAX; i++) {
		if (key_name_check(names[i]) != 0)
			continue;
		fence_lost(a, names[i], "the manager says another node owns it with a newer epoch");
	}
}

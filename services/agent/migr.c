/* migr: with --migrate-after, calls for the migration of the components the agent was started with. */

#include "agent_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/manager.pb-c.h"
#include "log.h"
#include "methods.h"

static void
migr_one(struct agent *a, const char *name)
{
	Ckpt__V1__MigrateRequest req = CKPT__V1__MIGRATE_REQUEST__INIT;
	Ckpt__V1__MigrateReply *rep = NULL;
	const Ckpt__V1__CheckpointRef *from;
	struct rpc_error err;
	char hex_from[SHA_HEX_LEN + 1], hex_state[SHA_HEX_LEN + 1];
	int rv;

	if (!comp_is_running(a->a_comps, name)) {
		LOG_INFO("not calling for migration of %s: it no longer runs here", name);
		return;
	}
	LOG_INFO("calling for migration of %s", name);
	req.component = (char *)name;
	rv = rpc_client_call(a->a_mgr, MGR_MIGRATE, &req.base, AGENT_MIGRATE_TIMEOUT_MS,
	    (ProtobufCMessage **)&rep, &err);
	if (rv != 0) {
		if (agent_stopping(a))
			LOG_INFO("migration of %s abandoned: agent stopping", name);
		else
			LOG_ERROR("migration of %s failed: %s", name, err.re_msg);
		return;
	}
	from = rep->restored_from;
	agent_hex(rep->state_sha256.data, rep->state_sha256.len, hex_state);
	if (from == NULL) {
		LOG_INFO("migration of %s to %.64s successful (epoch %" PRIu64 ", state sha256=%s)",
		    name, rep->target, rep->epoch, hex_state);
	} else {
		bool match = from->sha256.len == SHA_LEN && rep->state_sha256.len == SHA_LEN &&
		    memcmp(from->sha256.data, rep->state_sha256.data, SHA_LEN) == 0;
		agent_hex(from->sha256.data, from->sha256.len, hex_from);
		if (match)
			LOG_INFO("migration of %s to %.64s successful: restored from %.64s/%.64s@%" PRIu64
			         " sha256=%s, state sha256=%s (equal), epoch %" PRIu64,
			    name, rep->target, from->node, from->component, from->seq, hex_from,
			    hex_state, rep->epoch);
		else
			LOG_ERROR("migration of %s to %.64s: restored state sha256=%s differs from "
			          "checkpoint %.64s/%.64s@%" PRIu64 " sha256=%s",
			    name, rep->target, hex_state, from->node, from->component, from->seq,
			    hex_from);
	}
	rpc_reply_free(&rep->base);
}

void *
migr_main(void *arg)
{
	struct agent *a = arg;
	uint64_t attached_at;

	if (!agent_wait_first_attach(a, 0, &attached_at))
		return NULL;
	if (agent_sleep_until(a, attached_at + a->a_migrate_after_ms))
		return NULL;
	for (size_t i = 0; i < a->a_nown && !agent_stopping(a); i++)
		migr_one(a, a->a_own[i]);
	return NULL;
}

/*
 * notify: tells the manager of stored checkpoints (Manager.Notify). Periodic
 * ones go through a small queue drained by the notifier thread, so a slow or
 * absent manager never holds checkpoints up; a final one is sent at once.
 */

#include "agent_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/manager.pb-c.h"
#include "err.h"
#include "log.h"
#include "methods.h"

/* A CheckpointInfo that points into info (valid as long as info). */
void
notify_info_view(const struct nasc_info *info, Ckpt__V1__CheckpointInfo *ret_pb)
{
	ckpt__v1__checkpoint_info__init(ret_pb);
	ret_pb->node = (char *)info->ni_node;
	ret_pb->component = (char *)info->ni_component;
	ret_pb->seq = info->ni_seq;
	ret_pb->epoch = info->ni_epoch;
	ret_pb->size = info->ni_size;
	ret_pb->digest.data = (uint8_t *)info->ni_digest;
	ret_pb->digest.len = SHA_LEN;
	if (info->ni_has_sha256) {
		ret_pb->sha256.data = (uint8_t *)info->ni_sha256;
		ret_pb->sha256.len = SHA_LEN;
	}
	ret_pb->created_unix_ms = info->ni_created_unix_ms;
	ret_pb->chunk_count = info->ni_chunk_count;
	ret_pb->kind = (char *)info->ni_kind;
}

/* The same, copied into arena (for a reply). */
Ckpt__V1__CheckpointInfo *
notify_info_copy(struct arena *arena, const struct nasc_info *info)
{
	Ckpt__V1__CheckpointInfo view, *pb = arena_alloc(arena, sizeof(*pb));

	if (pb == NULL)
		return NULL;
	notify_info_view(info, &view);
	*pb = view;
	pb->node = arena_strdup(arena, view.node);
	pb->component = arena_strdup(arena, view.component);
	pb->kind = arena_strdup(arena, view.kind);
	pb->digest.data = arena_memdup(arena, view.digest.data, SHA_LEN);
	if (view.sha256.len == SHA_LEN)
		pb->sha256.data = arena_memdup(arena, view.sha256.data, SHA_LEN);
	if (pb->node == NULL || pb->component == NULL || pb->kind == NULL ||
	    pb->digest.data == NULL || (pb->sha256.len != 0 && pb->sha256.data == NULL))
		return NULL;
	return pb;
}

void
notify_send(struct agent *a, const struct nasc_info *info)
{
	Ckpt__V1__NotifyRequest req = CKPT__V1__NOTIFY_REQUEST__INIT;
	Ckpt__V1__CheckpointInfo ci;
	ProtobufCMessage *rep = NULL;
	struct rpc_error err;
	int rv;

	notify_info_view(info, &ci);
	req.checkpoint = &ci;
	rv = rpc_client_call(a->a_mgr, MGR_NOTIFY, &req.base, AGENT_CONTROL_TIMEOUT_MS, &rep, &err);
	if (rv != 0) {
		if (!agent_stopping(a))
			LOG_WARN("notification of new checkpoint %s@%" PRIu64 " failed: %s",
			    info->ni_component, info->ni_seq, err.re_msg);
		return;
	}
	rpc_reply_free(rep);
	LOG_INFO("notification of new checkpoint sent: %s@%" PRIu64, info->ni_component,
	    info->ni_seq);
}

/*
 * Queues the notification of a stored checkpoint for the notifier thread, so
 * that a slow or absent manager does not hold up checkpoints. A newer
 * checkpoint of the same component replaces one still waiting (the manager
 * keeps the latest).
 */
void
notify_later(struct agent *a, const struct nasc_info *info)
{
	size_t i;

	pthread_mutex_lock(&a->a_mu);
	for (i = 0; i < a->a_nnotes; i++)
		if (strcmp(a->a_notes[i].ni_component, info->ni_component) == 0)
			break;
	if (i == a->a_nnotes && a->a_nnotes == AGENT_NOTES_MAX) {
		/* Cannot happen with at most COMP_MAX components; drop the oldest. */
		memmove(&a->a_notes[0], &a->a_notes[1], (AGENT_NOTES_MAX - 1) * sizeof(a->a_notes[0]));
		i = --a->a_nnotes;
	}
	a->a_notes[i] = *info;
	if (i == a->a_nnotes)
		a->a_nnotes++;
	pthread_cond_broadcast(&a->a_cv);
	pthread_mutex_unlock(&a->a_mu);
}

void *
notify_main(void *arg)
{
	struct agent *a = arg;

	for (;;) {
		struct nasc_info info;

		pthread_mutex_lock(&a->a_mu);
		while (!a->a_stopping && a->a_nnotes == 0)
			pthread_cond_wait(&a->a_cv, &a->a_mu);
		if (a->a_stopping) {
			pthread_mutex_unlock(&a->a_mu);
			break;
		}
		info = a->a_notes[0];
		memmove(&a->a_notes[0], &a->a_notes[1], (a->a_nnotes - 1) * sizeof(a->a_notes[0]));
		a->a_nnotes--;
		pthread_mutex_unlock(&a->a_mu);
		notify_send(a, &info);
	}
	return NULL;
}

/*
 * mevent: the manager's events, built and published in one place.
 *
 * Topic from the kind (see proto/ckpt/v1/events.proto):
 *   node.up, node.down, node.cordoned, node.uncordoned, node.drained
 *                                      -> ckpt.<kind>/<node>
 *   stored                             -> ckpt.stored/<node>/<component>
 *   migration.started/done/failed      -> ckpt.<kind>/<component>
 *   failover.started/done/failed/pending -> ckpt.<kind>/<component>
 *                                      (pending: message says why it waits)
 *   resume.started/done/failed         -> ckpt.<kind>/<component>
 *                                      (a node that started again resumes it)
 *   component.crashed/failed           -> ckpt.<kind>/<component>
 *                                      (crashed: its node took it out of
 *                                      service, to restart it after its
 *                                      back-off; node is that node, seq its
 *                                      crashes there so far; every crash,
 *                                      also the last one before failed;
 *                                      failed: its node gave up, message says
 *                                      why; a failover follows)
 *   apply.started/done/failed          -> ckpt.<kind>/<component> (ckptctl apply places it)
 *   spec.refused                       -> ckpt.<kind>/<component> (node: the node that
 *                                      refused a spec; message: its reason)
 *   spec.deleted                       -> ckpt.<kind>/<component> (ckptctl delete)
 */
#ifndef CKPT_MGR_MEVENT_H
#define CKPT_MGR_MEVENT_H

#include <stdint.h>

#include "event.h"

#define MEV_NODE_UP "node.up"
#define MEV_NODE_DOWN "node.down"
#define MEV_STORED "stored"
#define MEV_MIG_STARTED "migration.started"
#define MEV_MIG_DONE "migration.done"
#define MEV_MIG_FAILED "migration.failed"
#define MEV_NODE_CORDONED "node.cordoned"
#define MEV_NODE_UNCORDONED "node.uncordoned"
#define MEV_NODE_DRAINED "node.drained"
#define MEV_FAILOVER_STARTED "failover.started"
#define MEV_FAILOVER_DONE "failover.done"
#define MEV_FAILOVER_FAILED "failover.failed"
#define MEV_FAILOVER_PENDING "failover.pending"
#define MEV_RESUME_STARTED "resume.started"
#define MEV_RESUME_DONE "resume.done"
#define MEV_RESUME_FAILED "resume.failed"
#define MEV_COMP_CRASHED "component.crashed"
#define MEV_COMP_FAILED "component.failed"
#define MEV_APPLY_STARTED "apply.started"
#define MEV_APPLY_DONE "apply.done"
#define MEV_APPLY_FAILED "apply.failed"
#define MEV_SPEC_REFUSED "spec.refused"
#define MEV_SPEC_DELETED "spec.deleted"

struct mev {
	const char *me_kind;      /* MEV_* */
	const char *me_node;      /* NULL: "" */
	const char *me_component;
	uint64_t me_seq;
	const uint8_t *me_sha256; /* SHA_LEN bytes or NULL */
	const char *me_target;
	const char *me_message;
};

/* Writes the topic of e into buf (EVENT_TOPIC_MAX bytes). -EINVAL for an unknown kind. */
int mev_topic(const struct mev *e, char *buf);
/* Publishes e (time stamped now); logs a warning when it cannot. pub may be NULL. */
void mev_publish(struct event_pub *pub, const struct mev *e);

#endif

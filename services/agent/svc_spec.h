/*
 * svc_spec: a spec that comes with a Restore (cluster-wide, ckptctl apply).
 *
 * It is decoded (spec_from_pb: bounded, checked for form) and held against
 * this node's own allow list (spec_check with a_config's [allow]; without
 * --config only the demo is allowed) before anything runs. A refusal says
 * why, with the node's name, and maps to a code the manager takes as "try
 * another node": PERMISSION_DENIED (not allowed here) or FAILED_PRECONDITION
 * (a program or user this node lacks, an unwritable folder), never NOT_FOUND
 * (which means "checkpoint deleted" to a migration).
 */
#ifndef CKPT_AGENT_SVC_SPEC_H
#define CKPT_AGENT_SVC_SPEC_H

#include <stddef.h>

#include "agent_int.h"
#include "drv.h"
#include "spec.h"

#define SVC_SPEC_SETTING_MAX 24

/*
 * The spec pb for component, checked here: *ret_spec (spec_free() it).
 * -EINVAL (malformed, or another component's), -EACCES, -ESTALE, with the
 * reason in msg.
 */
int svc_spec_take(const struct agent *a, const Ckpt__V1__ComponentSpec *pb, const char *component,
    struct spec **ret_spec, char *msg, size_t msglen);

/*
 * Keeps s (taken) for the agent's life: agent_spec_find() then finds it
 * before the node's own file, so the supervisor restarts, and the checkpoint
 * loop times, the component by the spec it was restored with. Returns NULL,
 * or s itself (for the caller to free) when the newest kept spec of its name
 * is the same (a component moved back and forth adds nothing).
 */
struct spec *svc_spec_keep(struct agent *a, struct spec *s);
/* The newest kept spec of name, or NULL. Lock-free; valid while the agent is. */
const struct spec *svc_spec_kept_find(const struct agent *a, const char *name);
/* At agent_free(): frees every kept spec. */
void svc_spec_kept_free(struct agent *a);

/*
 * A drv_spec of s for its driver: the exec settings point into s, a demo's
 * size into set/buf (the caller's, alive as long as the drv_spec).
 */
void svc_spec_drv(const struct spec *s, const char *component, struct drv_setting *set,
    char buf[SVC_SPEC_SETTING_MAX], struct drv_spec *ret_spec);

#endif

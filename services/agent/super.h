/*
 * super: supervision of the components whose process ends unexpectedly.
 *
 * A driver reports its process CRASHED through d_status (drv.h). A round
 * (super_step()) takes each crashed component out of service
 * (comp_crash_take(): RESTORING, still reported and owned), stops and frees
 * its instance, and restarts it on this node once its back-off has passed:
 * from its latest checkpoint, or fresh when none exists (se_start). The
 * back-off doubles with each failure in a row, from the policy's
 * su_backoff_ms up to SUPER_BACKOFF_MAX_MS; a restart that fails counts as a
 * failure too. Failures in a row are forgotten once a restart ran
 * SUPER_STABLE_MS without crashing. After su_max_restarts restarts in a row
 * the next failure gives up: the component becomes FAILED (comp_fail()),
 * which the heartbeat reports and the manager answers by placing it on
 * another node (fence: this node then drops it).
 *
 * Threads: super_step() is called from one thread at a time (the agent's
 * supervisor thread, super_main); se_start may block on the network (the
 * NAS), which is why supervision has a thread of its own: heartbeats, the
 * ticker and checkpoints never wait for a restart. No lock is held across
 * se_start; the component table's locks are only taken briefly.
 */
#ifndef CKPT_AGENT_SUPER_H
#define CKPT_AGENT_SUPER_H

#include <stdbool.h>
#include <stdint.h>

#include "comp.h"
#include "drv.h"
#include "sha.h"

#define SUPER_PERIOD_MS DRV_TICK_MS      /* a round at least this often */
#define SUPER_BACKOFF_MAX_MS 60000u      /* the back-off grows no further */
#define SUPER_STABLE_MS 10000u           /* ran this long: earlier failures are forgotten */
#define SUPER_LOAD_TIMEOUT_MS 30000u     /* fetching the latest checkpoint of a restart */

struct super_policy {
	uint32_t su_max_restarts; /* restarts in a row before it is given up; 0: none */
	uint64_t su_backoff_ms;   /* wait before the first restart (doubles each time) */
};

/* A restarted instance, from se_start. */
struct super_start {
	struct drv_inst *ss_inst;  /* of the driver it crashed in */
	bool ss_restored;          /* false: started fresh (no checkpoint of it exists) */
	struct comp_ref ss_from;   /* ss_restored: the checkpoint it continues from */
	uint8_t ss_state_sha256[SHA_LEN];
};

struct super_env {
	struct comp_table *se_comps;
	/*
	 * Starts name again through ops, from its latest checkpoint or fresh.
	 * 0 with *ret filled, or a negative errno with a one-line reason.
	 * -EAGAIN: not the component's fault (the NAS cannot be reached): tried
	 * again after the same back-off, not counted as a failure.
	 */
	int (*se_start)(void *arg, const char *name, const struct drv_ops *ops,
	    struct super_start *ret, char *err, size_t errlen);
	/* The restart policy of name (NULL: the spec defaults, spec.h). */
	void (*se_policy)(void *arg, const char *name, struct super_policy *ret);
	/*
	 * Optional: before name, which crashed, is taken out of service, store
	 * what its program handed over and no checkpoint took yet (a lib
	 * component), so that the restart continues from it. May block on the
	 * network; when the NAS is down it is queued, and the restart waits for
	 * the queue (se_start).
	 */
	void (*se_salvage)(void *arg, const char *name);
	/*
	 * Optional: name was just taken out of service for a crash (its crash
	 * counted): the agent reports it to the manager at once, before the
	 * restart the back-off delays.
	 */
	void (*se_crashed)(void *arg, const char *name);
	void *se_arg;
};

struct super;

int super_new(const struct super_env *env, struct super **ret_super);
void super_free(struct super *s); /* accepts NULL */

/*
 * One round at now_ms (monotonic): takes the crashed components, restarts
 * those whose back-off has passed, gives up on those that failed too often.
 * Returns how long to wait before the next round (<= SUPER_PERIOD_MS).
 */
uint64_t super_step(struct super *s, uint64_t now_ms);

/* How many components wait for their restart now (tests, logs). */
size_t super_waiting(struct super *s);

#endif

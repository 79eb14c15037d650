/*
 * comp: the table of components one agent runs.
 *
 * Each component is a driver instance (drv.h) and its ops; the table knows
 * no driver by name. A component is RESTORING (a name reserved while its
 * checkpoint is fetched, or a crashed one waiting to be restarted on this
 * node: see Supervision below), RUNNING (ticked and checkpointed), STOPPED
 * (being stopped: no longer ticked, waiting for its final checkpoint and
 * removal; reported as "stopping") or FAILED (supervision gave up on it: its
 * instance is gone, it stays listed until the manager places it elsewhere).
 *
 * Locks: the table's mutex guards the table and each component's
 * bookkeeping (state, seq, busy flag) and is only ever held briefly: it is
 * never held across a driver's work but d_status (which must not block), so
 * statuses (heartbeats) never wait behind a checkpoint. Each component has a
 * lock of its own, held while its driver works (copying a state, ticking,
 * stopping); the ticker skips a component whose lock is busy rather than
 * wait. Nothing in here blocks on the network.
 *
 * Checkpoints of one component never overlap: comp_ckpt_begin() waits until
 * the previous one ended, marks the component busy, then copies its state out
 * without the table's lock; comp_ckpt_end() writes the sequence bookkeeping
 * back and releases it. A busy component is never freed: removal waits and a
 * revocation is deferred to comp_ckpt_end(). A state the driver gives as one
 * region is not copied: the component's own lock stays held by the thread
 * that began the checkpoint until comp_ckpt_end() (same thread), so the
 * store reads it in place while it stands still; ticks skip it meanwhile.
 */
#ifndef CKPT_AGENT_COMP_H
#define CKPT_AGENT_COMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "limit.h"
#include "ckpt/v1/common.pb-c.h"
#include "drv.h"
#include "key.h"
#include "sha.h"

#define COMP_MAX LIMIT_NODE_COMPONENTS_MAX
#define COMP_HINTS_MAX (1u << 16) /* changed ranges kept between stored checkpoints */

/* A label a component requires of the node that runs it (placement). */
struct comp_req {
	char cq_key[KEY_NAME_MAX + 1];
	char cq_value[LIMIT_REQ_VALUE_MAX + 1]; /* "": any value */
};

enum comp_state { COMP_RESTORING, COMP_RUNNING, COMP_STOPPED, COMP_FAILED };

typedef char comp_name[KEY_NAME_MAX + 1];

/* The checkpoint a component was restored from. */
struct comp_ref {
	comp_name cr_node;
	comp_name cr_component;
	uint64_t cr_seq;
	uint8_t cr_sha256[SHA_LEN];
	uint64_t cr_unix_ms; /* when that checkpoint was made, 0: unknown */
};

/* Where a component's sequence stands. */
struct comp_seq {
	uint64_t cs_next;  /* seq of its next checkpoint */
	uint64_t cs_epoch; /* ownership epoch it stores with */
	bool cs_known;     /* cs_next is known (learnt from the NAS or a restore) */
	bool cs_owned;     /* cs_epoch is this node's own (it stored or restored): kept */
};

/*
 * A copy of a component's state taken by comp_ckpt_begin(). Hints: the
 * ranges changed since the last checkpoint of it stored from this table
 * (comp_ckpt_stored()), whose digest is cp_base_sha256; the drivers' hints
 * of every copy since then, the copies that were not stored included.
 * cp_hinted is false until one was stored, and after a copy without hints.
 */
struct comp_snap {
	/*
	 * The state: cp_buf (malloc'ed, free() it), or when that is NULL the
	 * driver's own bytes, lent until comp_ckpt_end() (the component's lock
	 * stays held: it does not tick meanwhile).
	 */
	const void *cp_data;
	void *cp_buf;
	size_t cp_len;
	struct drv_range *cp_changed; /* hints (drv.h), malloc'ed: free() it; NULL: none */
	size_t cp_nchanged;
	bool cp_hinted;
	uint8_t cp_base_sha256[SHA_LEN]; /* the state the hints are relative to */
	const char *cp_kind; /* the driver's kind (static) */
	struct comp_seq cp_seq;
};

/* Releases what a snapshot holds (not the struct). Accepts a zeroed one. */
void comp_snap_clear(struct comp_snap *snap);

struct comp_table;

int comp_table_new(struct comp_table **ret_table);
/* Frees the table and every instance in it (stopped first). Accepts NULL. */
void comp_table_free(struct comp_table *t);

/*
 * Adds a RUNNING component name, instance inst of ops, and takes inst (on
 * success only). -EEXIST, -ENOSPC, -EINVAL (name).
 */
int comp_add(struct comp_table *t, const char *name, const struct drv_ops *ops,
    struct drv_inst *inst, uint64_t epoch);
/*
 * Components the table holds at most (the agent's --max-components, limit
 * node_components): comp_add() and comp_reserve() of one more fail -EUSERS.
 * 0 or more than COMP_MAX: COMP_MAX.
 */
void comp_table_set_max(struct comp_table *t, size_t max);
size_t comp_table_max(struct comp_table *t);
/* Reserves name as RESTORING. -EEXIST when the name is in the table in any state. */
int comp_reserve(struct comp_table *t, const char *name);
/*
 * Turns the reservation of name into a RUNNING component restored from
 * *from, taking inst (on success only). Its next checkpoint is from->cr_seq
 * + 1 with epoch; state_sha256 is the digest of the state restored.
 */
int comp_restored(struct comp_table *t, const char *name, const struct drv_ops *ops,
    struct drv_inst *inst, uint64_t epoch, const struct comp_ref *from,
    const uint8_t state_sha256[SHA_LEN]);
/*
 * Removes name in any state (waits for a checkpoint in progress), then
 * stops its instance (d_stop with grace_ms) and frees it. -ENOENT.
 */
int comp_remove(struct comp_table *t, const char *name, unsigned grace_ms);
/*
 * The node lost name to another owner: it stops at once (no longer ticked
 * nor checkpointed) and leaves the table now, or when the checkpoint in
 * progress ends. Never waits. -ENOENT.
 */
int comp_revoke(struct comp_table *t, const char *name);
/* Sets the labels name requires (reported in its status). -ENOENT, -EINVAL (n too big). */
int comp_set_requires(struct comp_table *t, const char *name, const struct comp_req *reqs,
    size_t n);
/* A checkpoint of name taken earlier (the queue) is now stored as seq. */
void comp_note_stored(struct comp_table *t, const char *name, uint64_t seq);
/* RUNNING -> STOPPED (no longer ticked nor checkpointed). -ENOENT when not running. */
int comp_stop(struct comp_table *t, const char *name);
/* STOPPED -> RUNNING, after a failed stop. -ENOENT when not stopped. */
int comp_resume(struct comp_table *t, const char *name);

bool comp_is_running(struct comp_table *t, const char *name);
/* Ticks every RUNNING component once (skipping those busy with a checkpoint). */
void comp_tick_all(struct comp_table *t);
/* Names of the RUNNING components, in a malloc'ed array (free() it). */
int comp_running_names(struct comp_table *t, comp_name **ret_names, size_t *ret_count);

/*
 * Starts a checkpoint of name: waits for one in progress to end, then copies
 * the state out (regions are flattened into one buffer, at most the
 * driver's d_state_max), or lends a state given as one region: then
 * snap->cp_data is the driver's own bytes, valid until comp_ckpt_end(). -ENOENT unless RUNNING (or STOPPED when final is
 * true); a driver's failure with its reason in err. Every successful begin
 * must be followed by comp_ckpt_end().
 */
int comp_ckpt_begin(struct comp_table *t, const char *name, bool final, struct comp_snap *ret_snap,
    char *err, size_t errlen);
/*
 * The checkpoint in progress (between begin and end) was stored; sha256 is
 * the digest of its bytes: the next snapshots' hints are relative to it.
 * Not called: the hints gathered so far are kept for the next snapshot.
 */
void comp_ckpt_stored(struct comp_table *t, const char *name, const uint8_t sha256[SHA_LEN]);
/* Writes seq back; stored_seq != 0 records the checkpoint just stored. */
void comp_ckpt_end(struct comp_table *t, const char *name, const struct comp_seq *seq,
    uint64_t stored_seq);

/*
 * Supervision (super.c), for components whose driver reports its process
 * CRASHED (drv.h). comp_crashed_names() lists the RUNNING ones that did.
 * comp_crash_take() turns one (not busy with a checkpoint) into RESTORING,
 * still reported to the manager and still owned at its epoch, with one
 * crash more (reported as ComponentStatus.crashes), and hands its
 * instance (and its last status) to the caller, who stops and frees it;
 * -ENOENT when name is not a crashed RUNNING component (any more), -EBUSY
 * while a checkpoint holds it. comp_restarted() installs the new instance
 * (taken on success only), RUNNING again with one restart more; from (NULL:
 * started fresh) is the checkpoint it was restarted from; -ENOENT when name
 * is no longer waiting for its restart (removed, revoked). comp_fail()
 * marks a waiting one FAILED with the reason (-ENOENT likewise).
 */
int comp_crashed_names(struct comp_table *t, comp_name **ret_names, size_t *ret_count);
/*
 * Whether name crashed holding a checkpoint its program handed over and no
 * checkpoint took yet (drv_ops d_pending): one to store before the restart.
 */
bool comp_crash_pending(struct comp_table *t, const char *name);
int comp_crash_take(struct comp_table *t, const char *name, const struct drv_ops **ret_ops,
    struct drv_inst **ret_inst, struct drv_status *ret_status);
int comp_restarted(struct comp_table *t, const char *name, struct drv_inst *inst,
    const struct comp_ref *from, const uint8_t state_sha256[SHA_LEN]);
int comp_fail(struct comp_table *t, const char *name, const char *reason);

/*
 * Statuses built in arena (for a reply or a request). running_only (the
 * heartbeat's list) leaves out components that are being restored by
 * Agent.Restore or stopped, but keeps those supervision restarts or gave up
 * on: they are still this node's.
 */
int comp_status_all(struct comp_table *t, struct arena *arena, bool running_only,
    Ckpt__V1__ComponentStatus ***ret_list, size_t *ret_count);
int comp_status_one(struct comp_table *t, struct arena *arena, const char *name,
    Ckpt__V1__ComponentStatus **ret_status);

const char *comp_state_name(enum comp_state s);

#endif

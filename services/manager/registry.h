/*
 * registry: what the manager knows about the cluster.
 *
 *  - nodes: id, control address, capacity, labels, the components they
 *    report, liveness (up/down) and the rpc_client towards their Agent service;
 *  - components: current owner node, ownership epoch (fencing), whether a
 *    migration is under way, and the latest checkpoint notified (the
 *    catalogue: highest seq per component).
 *
 * One mutex guards everything. Nothing inside is handed out: readers get
 * copies (reg_nodes(), reg_checkpoints(), ...) and the agent clients are
 * reference-counted (reg_peer_get()/reg_peer_put()), so no caller uses the
 * registry's memory unlocked and no outgoing call is ever made under the lock.
 *
 * Ownership rules. A node that attaches or heartbeats with a component becomes
 * its owner unless another node owns it with a newer epoch, or with the same
 * epoch while that node is up (first come). The reporter is then stale: the
 * component is left out of its list and named in the revoked output, so the
 * agent stops it (a node cut off by a failover or a migration, an agent
 * started twice with the same component). While a component migrates,
 * reports do not change its owner; the migration sets the owner when it ends
 * (reg_migrate_end()). The epoch only grows.
 *
 * Delete: a component released (reg_migrate_release(), ckptctl delete
 * stopped it) is owned by no node, its epoch kept; a failover or resume of
 * it that waited is dropped. A report of it by the node that owned it then
 * (none owned it: the node that declared it, which may have been told to
 * start it fresh and reports it once it did), at that epoch or below, is
 * stale and revoked: the agent may have made it before it stopped the
 * component, and taking it would make that node its owner again (listed,
 * counted, failed over when the node dies). It is taken again once something brings the component
 * back: a move that ends with an owner (ckptctl apply placing it, a
 * restore), a report at a higher epoch or by another node, the node
 * declaring it (its agent started again with it in its configuration).
 *
 * Identity: a node is held by one agent process, its instance (a random id
 * the agent sends in Attach and Heartbeat; 0: an agent that sends none).
 * reg_attach() refuses (-EEXIST) a node that is up under another instance
 * unless the caller proved that instance gone (ra_replaces, see mgr.h);
 * reg_beat() answers -EXDEV to a heartbeat of another instance.
 *
 * Failover: when a node goes down, the components it owns are marked pending
 * (reg_failover_mark()), and so are those a node that attaches again no
 * longer reports (it restarted within down-after and lost them); the
 * manager's failover worker takes the due ones
 * (reg_failover_due()), and either moves them (reg_migrate_end() clears the
 * mark) or records why they wait (reg_failover_wait()). A report of the
 * component by an up node (its old node back before the failover, or any
 * owner) clears the mark. A cordoned node takes no component.
 *
 * Resume: a node that starts again declares the components it is configured
 * to run and does not run yet (reg_attach.ra_declared). Each is marked pending
 * with the node as its resume target (reg_resume_target()) unless another up
 * node runs it or a migration of it is under way; the failover worker
 * restores it there from its latest checkpoint, or, when no checkpoint of it
 * exists, lets the node start it fresh (reg_resume_fresh()). The node learns
 * both "start fresh" and "another node runs it" from reg_beat()'s outputs.
 * The mark ends when the node reports the component, or is told that another
 * node runs it, or attaches again without declaring it.
 * Room (ra_max_components): a node resumes only as many declared components
 * as fit under the cap beside what it counts already (what it runs, the
 * moves on their way there), in the order declared; each one beyond is
 * pending like a lost component instead: placed on another node by the
 * usual rule (or waiting for room), counted nowhere until then, and the node
 * is told that another node runs it once one does; while it still waits, a
 * place that frees on the node makes it the node's to resume again (as many
 * as fit; one of which no checkpoint exists has nowhere else to go). The
 * attach is not refused for it: a declared component may turn out to run
 * elsewhere (the manager learns it from another node's report), and refusing
 * would keep the node from attaching at all.
 *
 * Supervision: a node counts a crash of a component's process when it takes
 * it out of service (its crashes count goes up; an agent that does not count
 * them: its restarts, once restarted), restarts it and, after too many
 * failures, reports it "failed"
 * (REG_STATE_FAILED). A failed component is marked pending like one of a down
 * node, its node excluded from placement (reg_mig_plan.rm_owner_failed); once
 * placed elsewhere, the failed copy's reports are stale and revoked.
 * reg_beat() names both (rb_super) for the manager's events.
 *
 * Placement counts (reg_candidates(), --max-node-components): a node counts
 * the components it lists (its reports, and the moves that ended there) and
 * those the manager knows are bound for it and it does not list yet, each
 * component once:
 *  - a move placed there (reg_migrate_toward()), until it ends; once it
 *    ended there (reg_migrate_end() with that owner), until a report of the
 *    node lists it or two reports did not (one heartbeat may have been taken
 *    before the restore), or another agent process attaches as the node;
 *  - a move away from it (its owner while o_migrating): it may come back
 *    (rollback);
 *  - a component it declared (Resume), unless another up node runs it or a
 *    move takes it elsewhere.
 * A move that fails or is given up (reg_migrate_end() without an owner,
 * reg_migrate_release(), reg_migrate_toward(NULL)) counts nowhere any more.
 *
 * Room: a failover that found no node to take it (reg_failover_wait_room())
 * becomes due again at once, and rc_on_room is called, when a place frees on
 * an up node that is not cordoned: a component deleted (reg_migrate_release()),
 * a move that ends elsewhere than a node that counted it (its source, a node
 * that listed it, the node that declared it), a place held by a move given up,
 * a report that leaves out a component the node counted (it stopped, was
 * revoked, a move that landed there did not settle), a component a node
 * declared reported by another node. A place held by a move placed after the
 * failover was told to wait frees nothing it did not see, so two failovers
 * offered the same node in turn do not wake each other forever. Memory is
 * room too: a heartbeat of such a node reporting at least the free memory
 * a waiting failover needs (its checkpoint's size, or its state's as its
 * node reported, when known), where that node had less when a failover was
 * last told to wait (each wait marks every node's free memory), makes that
 * failover due; memory that hovers about a need wakes it once per wait, and
 * a failover placed there takes the memory the next wait marks. Nothing is
 * looked at while no failover waits for room.
 *
 * Time comes from cfg->rc_clock (monotonic ms), which tests replace.
 */
#ifndef CKPT_MGR_REGISTRY_H
#define CKPT_MGR_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "key.h"
#include "limit.h"
#include "rpc.h"
#include "sha.h"

#define REG_COMPONENTS_MAX 65536   /* owner/catalogue entries */
#define REG_STATE_MAX 15
#define REG_BEAT_NOTES_MAX 32      /* start-fresh / elsewhere names per heartbeat */
#define REG_STATE_FAILED "failed"  /* a component its node gave up on (supervision) */

struct reg;
struct reg_peer;

typedef uint64_t (*reg_clock_fn)(void *arg);

struct reg_config {
	uint64_t rc_down_after_ms;  /* silent longer than this: down */
	size_t rc_nodes_max;        /* nodes known at most (limit nodes); 0: LIMIT_NODES_DEFAULT */
	reg_clock_fn rc_clock;      /* NULL: util_now_mono_ms() */
	void *rc_clock_arg;
	/*
	 * Called, without the lock, when a failover that waited for room
	 * (reg_failover_wait_room()) became due because a place freed (see
	 * "Room" above); the caller wakes its failover worker. NULL: not told.
	 */
	void (*rc_on_room)(void *arg);
	void *rc_on_room_arg;
};

struct reg_capacity {
	uint64_t rcap_mem_free;
	uint64_t rcap_mem_total;
	uint32_t rcap_cpu_count;
	uint32_t rcap_cpu_load_milli;
};

struct reg_label {
	char rl_key[LIMIT_LABEL_KEY_MAX + 1];
	char rl_value[LIMIT_LABEL_VALUE_MAX + 1];
};

/* A checkpoint reference (where a restored component came from). */
struct reg_ref {
	char rr_node[KEY_NAME_MAX + 1];
	char rr_component[KEY_NAME_MAX + 1];
	uint64_t rr_seq;
	bool rr_has_sha;
	uint8_t rr_sha256[SHA_LEN];
};

/* A label a component requires of its node (key=value, value may be ""). */
struct reg_req {
	char rq_key[LIMIT_LABEL_KEY_MAX + 1];
	char rq_value[LIMIT_REQ_VALUE_MAX + 1];
};

/* A component as a node reports it (ComponentStatus). */
struct reg_comp {
	char rc_name[KEY_NAME_MAX + 1];
	char rc_state[REG_STATE_MAX + 1];
	char rc_kind[LIMIT_KIND_MAX + 1];
	uint64_t rc_last_seq;
	uint64_t rc_epoch;
	uint64_t rc_state_bytes;
	bool rc_has_restored;
	struct reg_ref rc_restored_from;
	bool rc_has_state_sha;
	uint8_t rc_state_sha256[SHA_LEN];
	struct reg_req rc_requires[LIMIT_REQUIRES_MAX];
	size_t rc_nrequires;
	uint32_t rc_pid;          /* its process, 0: none */
	uint32_t rc_restarts;     /* restarts after a crash on its node */
	uint32_t rc_crashes;      /* crashes on its node (0: an agent that does not count them) */
	uint64_t rc_last_unix_ms; /* when rc_last_seq was stored, 0: unknown */
	char rc_reason[LIMIT_REASON_MAX]; /* failed: why */
};

/*
 * What reg_beat() saw of a node's supervision (rb_super): a crash, or a
 * failure. A report with both gives two notes, the crash first.
 */
struct reg_super_note {
	char rs_component[KEY_NAME_MAX + 1];
	bool rs_failed;           /* newly reported failed (now pending failover) */
	uint32_t rs_crashes;      /* else: crashed, this many times so far */
	uint32_t rs_new;          /* crashes since the previous report */
	uint32_t rs_restarts;     /* restarts so far */
	char rs_reason[LIMIT_REASON_MAX];
};

/* One catalogue entry (CheckpointInfo). */
struct reg_ckpt {
	char rk_node[KEY_NAME_MAX + 1];
	char rk_component[KEY_NAME_MAX + 1];
	char rk_kind[LIMIT_KIND_MAX + 1];
	uint64_t rk_seq;
	uint64_t rk_epoch;
	uint64_t rk_size;
	uint64_t rk_created_unix_ms;
	uint32_t rk_chunk_count;
	uint8_t rk_sha256[SHA_LEN];
};

/* A copy of one node, from reg_nodes(). */
struct reg_node_view {
	char rn_id[KEY_NAME_MAX + 1];
	bool rn_up;
	char rn_address[LIMIT_URL_MAX];
	struct reg_capacity rn_cap;
	struct reg_label *rn_labels;
	size_t rn_nlabels;
	struct reg_comp *rn_comps;
	size_t rn_ncomps;
	uint64_t rn_last_seen_ms_ago;
	uint64_t rn_attached_unix_ms;
	bool rn_cordoned;
	uint32_t rn_queued;          /* agent's checkpoint queue, last heartbeat */
	uint64_t rn_queue_dropped;
	struct reg_pending *rn_pending; /* components of this node waiting for a node */
	size_t rn_npending;
};

/* A component waiting for failover (its node went down; no node took it yet). */
struct reg_pending {
	char rp_component[KEY_NAME_MAX + 1];
	char rp_node[KEY_NAME_MAX + 1];    /* node it ran on */
	char rp_reason[LIMIT_REASON_MAX];
	uint64_t rp_since_unix_ms;
	uint32_t rp_attempts;
};

struct reg_attach {
	const char *ra_node;        /* valid name */
	const char *ra_address;     /* 1..LIMIT_URL_MAX-1 bytes */
	struct reg_capacity ra_cap;
	const struct reg_label *ra_labels;
	size_t ra_nlabels;          /* <= LIMIT_LABELS_MAX */
	const struct reg_comp *ra_comps;
	size_t ra_ncomps;           /* <= LIMIT_NODE_COMPONENTS_MAX */
	uint64_t ra_unix_ms;        /* wall clock of the attach */
	uint64_t ra_instance;       /* the attaching agent process; 0: not told */
	/*
	 * The instance the caller found gone (it does not answer at the node's
	 * address, or another instance answers there): it may be replaced while
	 * the node is still up. 0: none.
	 */
	uint64_t ra_replaces;
	/*
	 * Optional output: the components of ra_comps another node owns (newer
	 * epoch, or the same epoch while that node is up): the node must stop
	 * them. ra_revoked holds ra_ncomps names; NULL: not wanted.
	 */
	char (*ra_revoked)[KEY_NAME_MAX + 1];
	size_t *ra_nrevoked;
	/* Components the node declares (it started again; see Resume above). */
	const struct reg_comp *ra_declared;
	size_t ra_ndeclared;        /* <= LIMIT_NODE_COMPONENTS_MAX */
	size_t *ra_nresumed;        /* optional output: how many were marked for resume */
	/* --max-node-components (-EDQUOT below, and Resume above); 0: no cap. */
	uint32_t ra_max_components;
	size_t *ra_nover;           /* optional output: how many had no room (placed elsewhere) */
};

/* A heartbeat (reg_beat()). */
struct reg_beat {
	struct reg_capacity rb_cap;
	const struct reg_comp *rb_comps;
	size_t rb_ncomps;
	uint32_t rb_queued;
	uint64_t rb_queue_dropped;
	uint64_t rb_instance;       /* 0: not told (never refused) */
	char (*rb_revoked)[KEY_NAME_MAX + 1]; /* as ra_revoked; may be NULL */
	size_t *rb_nrevoked;
	/*
	 * Optional outputs (REG_BEAT_NOTES_MAX names each, NULL: not wanted):
	 * components the node declared that it must start fresh (no checkpoint
	 * exists), and those another node runs (told once).
	 */
	char (*rb_fresh)[KEY_NAME_MAX + 1];
	size_t *rb_nfresh;
	char (*rb_elsewhere)[KEY_NAME_MAX + 1];
	size_t *rb_nelsewhere;
	/*
	 * Optional output (2 * rb_ncomps entries, NULL: not wanted): the
	 * components whose crashes went up since the node's previous report,
	 * and those it newly reports failed (see Supervision above).
	 */
	struct reg_super_note *rb_super;
	size_t *rb_nsuper;
};

struct reg_down {
	char rd_node[KEY_NAME_MAX + 1];
	uint64_t rd_silent_ms;
};

/* What a migration starts from, copied out by reg_migrate_begin(). */
struct reg_mig_plan {
	char rm_owner[KEY_NAME_MAX + 1]; /* node that runs it; "" when none */
	bool rm_owner_up;
	bool rm_owner_runs;              /* the owner lists it among its components */
	struct reg_peer *rm_owner_peer;  /* reference, NULL when none; reg_peer_put() it */
	uint64_t rm_epoch;               /* current ownership epoch */
	uint64_t rm_need_bytes;          /* state size when known, else 0 */
	bool rm_has_ckpt;
	struct reg_ckpt rm_ckpt;         /* latest in the catalogue */
	struct reg_req rm_requires[LIMIT_REQUIRES_MAX]; /* as its node last reported */
	size_t rm_nrequires;
	bool rm_owner_fenced;            /* the owner runs it at an epoch below rm_epoch */
	bool rm_owner_failed;            /* the owner reports it failed: placed elsewhere */
	bool rm_has_from;                /* fenced (reg_fence_mark()): restore rm_from */
	struct reg_ckpt rm_from;
	/*
	 * No node lists it, but an up node declared it (Resume) and was told to
	 * restore it or start it fresh: it is starting there; "" otherwise.
	 */
	char rm_starting_on[KEY_NAME_MAX + 1];
	/*
	 * A failover or resume of it waits (pending), or a node declared it
	 * (Resume) and may be starting it: something would start it, even
	 * though no node runs it (a delete stops that too).
	 */
	bool rm_waiting;
};

int reg_new(const struct reg_config *cfg, struct reg **ret_reg);
/* Closes every agent client still referenced only by the registry. Accepts NULL. */
void reg_free(struct reg *r);
/* rpc_client_abort() on every agent client: calls in progress return at once (shutdown). */
void reg_abort(struct reg *r);

/*
 * Registers a node or replaces what is known of it (re-attach is normal):
 * address, capacity, labels and components are replaced, state is up.
 * client (may be NULL) is an rpc_client towards a->ra_address, opened with
 * RPC_CLIENT_DIAL_LATER; the registry takes it, and starts its dial
 * (rpc_client_dial()) when it keeps it, so that one closed at once never
 * dialed. Whatever client the caller must close afterwards (outside any
 * lock) is stored in *ret_close (NULL when none): the new one when the node
 * already has a client for the same address, or the old one when the address
 * changed and nobody else holds it. -EUSERS when rc_nodes_max nodes are known
 * and this is another; -ENOSPC when the catalogue (REG_COMPONENTS_MAX) is full;
 * -EEXIST when the node is up under another instance (see Identity above);
 * -EDQUOT, nothing changed, when the attach would take the node over
 * ra_max_components: it reports more than that which are not stale (those
 * are revoked), one of them not known to have run there: neither listed for
 * it nor last stored by it (the catalogue's newest checkpoint). A node taken
 * over the cap already (a heartbeat is never refused for it, see mgr.c)
 * attaches again with what it runs, and so does one that ran over the cap
 * when the manager started again (which knows no node, but the catalogue
 * seeded from the NAS): refusing it would move everything it runs, and an
 * agent refused keeps trying, never told to stop its stale copies. A
 * component that stored no checkpoint there yet counts as run there once
 * one is notified (reg_checkpoint()).
 */
int reg_attach(struct reg *r, const struct reg_attach *a, struct rpc_client *client,
    struct rpc_client **ret_close);
/* Who holds a node now (reg_holder()). */
struct reg_holder {
	bool rh_up;
	uint64_t rh_instance;
	char rh_address[LIMIT_URL_MAX];
};
/* Copies who holds node; -ENOENT when the node is unknown. */
int reg_holder(struct reg *r, const char *node, struct reg_holder *ret_holder);
/* Copies the address the node attached from (LIMIT_URL_MAX bytes); -ENOENT. */
int reg_node_address(struct reg *r, const char *node, char *ret_address);
/*
 * Records a heartbeat: last-seen, capacity and the component list (replaced).
 * -ENOENT unknown node, -ESTALE node marked down: both mean "attach again";
 * -EXDEV (reg_beat() only): the node is held by another instance.
 */
int reg_heartbeat(struct reg *r, const char *node, const struct reg_capacity *cap,
    const struct reg_comp *comps, size_t ncomps);
/* The same with the queue figures and the revoked components (struct reg_beat). */
int reg_beat(struct reg *r, const char *node, const struct reg_beat *b);
/*
 * Marks the up nodes silent longer than the down-after time as down and
 * copies up to max of them into ret_down. Returns how many were copied.
 */
size_t reg_sweep(struct reg *r, struct reg_down *ret_down, size_t max);

/* ---- failover ---- */

/*
 * Marks every component node owns (and is not migrating) as pending
 * failover, with reason. Returns how many were marked.
 */
size_t reg_failover_mark(struct reg *r, const char *node, const char *reason);
/*
 * Copies up to max pending components whose next try is due (now_ms,
 * monotonic) into ret_names. Returns how many.
 */
size_t reg_failover_due(struct reg *r, uint64_t now_ms, char (*ret_names)[KEY_NAME_MAX + 1],
    size_t max);
/*
 * Records why a failover did not happen and when to try again (retry_ms
 * from now; 0: at the next attach or uncordon only). True when it waits;
 * false when nothing waits for it any more (not pending: deleted, placed,
 * or back on its node while it was tried), and nothing is recorded.
 */
bool reg_failover_wait(struct reg *r, const char *component, const char *reason, uint64_t retry_ms);
/*
 * The same for a failover no node had room for: also due again as soon as
 * a place frees (see "Room" above).
 */
bool reg_failover_wait_room(struct reg *r, const char *component, const char *reason,
    uint64_t retry_ms);
/*
 * A checkpoint c about to be recorded (reg_checkpoint()) whose epoch is above
 * the one its live owner runs the component at (an operator's put with
 * --epoch): that owner is fenced (the NAS refuses its next store) and nothing
 * would run the component. Marks it pending failover from c (the failover
 * restores c, even though the fenced owner still lists the component) and
 * returns true with the owner and its epoch; false when c fences nobody
 * (no owner, owner down or not running it, a migration under way).
 */
bool reg_fence_mark(struct reg *r, const struct reg_ckpt *c, char *ret_owner,
    uint64_t *ret_epoch);
/* Clears the pending mark (failover done, or the node runs it again). */
void reg_failover_clear(struct reg *r, const char *component);
/* Every pending component becomes due now (a node attached or was uncordoned). */
void reg_failover_kick(struct reg *r);
/*
 * True while component is pending and its owner is down or no longer lists
 * it (a failover is still wanted); otherwise clears the mark.
 */
bool reg_failover_wanted(struct reg *r, const char *component);

/*
 * The node a pending component is to be resumed on (it declared it), when
 * that node is up and no fresh start was decided. -ENOENT otherwise.
 */
int reg_resume_target(struct reg *r, const char *component, char ret_node[KEY_NAME_MAX + 1]);
/*
 * No checkpoint of component exists: its resume target starts it fresh (told
 * by reg_beat()); the pending mark is cleared. -ENOENT when it has no target.
 */
int reg_resume_fresh(struct reg *r, const char *component);

/* ---- cordon and drain ---- */

/* Sets or clears node's cordon; *ret_was the previous value (may be NULL). -ENOENT. */
int reg_cordon(struct reg *r, const char *node, bool cordoned, bool *ret_was);
/* Names of the components node owns (malloc'ed, free()). -ENOENT unknown node. */
int reg_node_owned(struct reg *r, const char *node, char (**ret_names)[KEY_NAME_MAX + 1],
    size_t *ret_n);

/* Every node, sorted by id. Free with reg_nodes_free(). */
int reg_nodes(struct reg *r, struct reg_node_view **ret_nodes, size_t *ret_n);
void reg_nodes_free(struct reg_node_view *nodes, size_t n);

/*
 * Records a stored checkpoint. The catalogue keeps the highest seq per
 * component (*ret_latest tells whether this one is it; may be NULL); the
 * node's component last_seq and the component's epoch follow.
 * -ENOSPC when REG_COMPONENTS_MAX is reached.
 */
int reg_checkpoint(struct reg *r, const struct reg_ckpt *c, bool *ret_latest);
/*
 * The catalogue's checkpoint gone turned out deleted from the NAS (ckptctl
 * rm, retention, a pin released): the entry of its component becomes newest,
 * the newest the NAS still holds (NULL: none, the entry is dropped). Nothing
 * changes when the entry is no longer gone (a newer checkpoint was recorded
 * meanwhile). True when the entry changed.
 */
bool reg_checkpoint_gone(struct reg *r, const struct reg_ckpt *gone, const struct reg_ckpt *newest);
/* Latest checkpoint of a component; -ENOENT. */
int reg_checkpoint_latest(struct reg *r, const char *component, struct reg_ckpt *ret_ckpt);
/*
 * The catalogue filtered by node and component (NULL or "": any), sorted by
 * node then component. *ret_ckpts is malloc'ed (free()), NULL when empty.
 */
int reg_checkpoints(struct reg *r, const char *node, const char *component,
    struct reg_ckpt **ret_ckpts, size_t *ret_n);

/*
 * Starts a migration of component: -ENOENT when no node runs it and the
 * catalogue has no checkpoint of it; -EBUSY when one is already under way.
 * On success the component is marked migrating until reg_migrate_end().
 */
int reg_migrate_begin(struct reg *r, const char *component, struct reg_mig_plan *ret_plan);
/*
 * reg_migrate_begin() for a component that may be new (ckptctl apply): an
 * unknown one gets an entry (no owner, epoch 0) instead of -ENOENT.
 */
int reg_place_begin(struct reg *r, const char *component, struct reg_mig_plan *ret_plan);
/*
 * reg_migrate_begin() for ckptctl delete: a component a node declared
 * (Resume) is known too, also with no owner and no checkpoint (a node is
 * starting it fresh, or is to): -ENOENT only when nothing would run it.
 */
int reg_delete_begin(struct reg *r, const char *component, struct reg_mig_plan *ret_plan);
/*
 * Ends a migration leaving the component owned by no node (ckptctl delete
 * stopped it): not pending, in no node's list; its epoch and catalogue
 * entry stay, and the reports of the node that owned it are stale (see
 * Delete above).
 */
void reg_migrate_release(struct reg *r, const char *component);
/*
 * Ends a migration. owner NULL: ownership unchanged. Otherwise owner becomes
 * the owner, status (if not NULL) its entry in owner's component list, and
 * the component leaves every other node's list. The epoch becomes
 * max(current, epoch): pass the highest epoch handed out, even on failure.
 */
void reg_migrate_end(struct reg *r, const char *component, const char *owner, uint64_t epoch,
    const struct reg_comp *status);

/*
 * A move of component (reg_migrate_begin()) is placed on node: it counts
 * there (Placement counts above) until the move ends. max > 0: -EDQUOT,
 * nothing changed, when node counts max components besides this one
 * already (a move placed since the candidates were read took the last
 * place: place again). node NULL: the move holds no place any more.
 * -ENOENT: the component is not migrating, or node is unknown.
 */
int reg_migrate_toward(struct reg *r, const char *component, const char *node, uint32_t max);

/* Placement input: every node, copied. Free with free(). */
struct reg_cand {
	char rca_node[KEY_NAME_MAX + 1];
	bool rca_up;
	bool rca_cordoned;
	struct reg_capacity rca_cap;
	/* What it counts (Placement counts above), the component being placed left out. */
	uint32_t rca_components;
	uint32_t rca_arriving;        /* of those, not listed by the node yet */
	struct reg_label *rca_labels; /* malloc'ed; freed by reg_candidates_free() */
	size_t rca_nlabels;
};
/* component: the one being placed, counted at no node (NULL: none). */
int reg_candidates(struct reg *r, const char *component, struct reg_cand **ret_cands,
    size_t *ret_n);
void reg_candidates_free(struct reg_cand *cands, size_t n);

/* A reference to a node's agent client: -ENOENT unknown node, -ENOTCONN no client. */
int reg_peer_get(struct reg *r, const char *node, struct reg_peer **ret_peer);
struct rpc_client *reg_peer_client(const struct reg_peer *p);
/* Drops a reference; the last one closes the client. Accepts NULL. */
void reg_peer_put(struct reg_peer *p);

#endif

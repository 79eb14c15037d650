/*
 * registry_int: the registry's state, shared by its two files (registry.c:
 * nodes, ownership, catalogue, failover; registry_count.c: placement counts
 * and room). Nothing outside the registry includes it. Every function
 * declared here is called with r_lock held unless it says otherwise.
 */
#ifndef CKPT_MGR_REGISTRY_INT_H
#define CKPT_MGR_REGISTRY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "registry.h"
#include "util.h"

struct reg_peer {
	atomic_uint rp_refs;
	struct rpc_client *rp_client;
};

struct reg_node {
	char n_id[KEY_NAME_MAX + 1];
	bool n_up;
	char n_address[LIMIT_URL_MAX];
	struct reg_capacity n_cap;
	struct reg_label *n_labels;
	size_t n_nlabels;
	struct reg_comp *n_comps;
	size_t n_ncomps;
	uint64_t n_last_seen_ms; /* rc_clock */
	uint64_t n_attached_unix_ms;
	struct reg_peer *n_peer;
	uint64_t n_instance;     /* the agent process holding it; 0: unknown */
	bool n_cordoned;
	uint32_t n_queued;
	uint64_t n_queue_dropped;
	uint32_t n_max;          /* ra_max_components of its attach; 0: no cap */
	/* Its free memory when a failover last waited for room (reg_room_grew()). */
	uint64_t n_room_mem;
};

/* One per component: owner, epoch, migration flag, catalogue entry. */
struct reg_owner {
	char o_component[KEY_NAME_MAX + 1];
	char o_node[KEY_NAME_MAX + 1]; /* "" when no node runs it */
	uint64_t o_epoch;
	bool o_migrating;
	bool o_has_ckpt;
	struct reg_ckpt o_ckpt;
	struct reg_req o_requires[LIMIT_REQUIRES_MAX]; /* as last reported */
	size_t o_nrequires;
	/* Failover: pending since its node went down, until placed. */
	bool o_pending;
	bool o_pending_parked;      /* waits for an attach or an uncordon */
	bool o_pending_room;        /* waits for room (reg_failover_wait_room()) */
	uint64_t o_pending_room_seq; /* r_hold_seq when it was told to wait */
	uint64_t o_pending_room_need; /* bytes a node needs free to take it; 0: unknown */
	char o_pending_node[KEY_NAME_MAX + 1];
	char o_pending_reason[LIMIT_REASON_MAX];
	uint64_t o_pending_since_unix_ms;
	uint64_t o_pending_due_ms;  /* rc_clock */
	uint32_t o_pending_attempts;
	/*
	 * Pending because a checkpoint with a newer epoch fenced its live owner
	 * (reg_fence_mark()): restore o_pending_from, even though the owner
	 * still lists the component (at its older epoch).
	 */
	bool o_pending_fenced;
	struct reg_ckpt o_pending_from;
	/* Resume: the node that declared it and waits for it; "" when none. */
	char o_resume_node[KEY_NAME_MAX + 1];
	bool o_resume_fresh;        /* no checkpoint: that node starts it fresh */
	bool o_resume_over;         /* no room there: placed elsewhere, then the node is told */
	/*
	 * Placement (registry.h): the node a move placed it on, until the move
	 * ends; then (o_target_settling) the node it landed on, until that
	 * node's reports list it or REG_SETTLE_BEATS of them did not. "": none.
	 */
	char o_target[KEY_NAME_MAX + 1];
	bool o_target_settling;
	uint32_t o_target_beats;    /* reports of o_target since it landed there */
	uint64_t o_target_seq;      /* r_hold_seq of the place a move holds at o_target */
	uint64_t o_begin_seq;       /* r_hold_seq when the move under way began (its source) */
	/*
	 * Deleted (reg_migrate_release()) while this node owned it: the node's
	 * reports of it at o_epoch or below are stale, until something brings
	 * it back (see Delete in registry.h). "": none.
	 */
	char o_deleted_on[KEY_NAME_MAX + 1];
};

/*
 * Reports of a node after a move landed there that may still leave the
 * component out: an agent sends one heartbeat at a time, so only the first
 * one after the move may have been taken before the restore.
 */
#define REG_SETTLE_BEATS 2u

struct reg {
	struct reg_config r_cfg;
	pthread_mutex_t r_lock;
	struct reg_node **r_nodes; /* sorted by id */
	size_t r_nnodes, r_capnodes;
	struct reg_owner *r_owners; /* sorted by component */
	size_t r_nowners, r_capowners;
	size_t r_nresume;           /* owners with an o_resume_node */
	size_t r_nsettling;         /* owners with o_target_settling */
	size_t r_nroom;             /* owners with o_pending_room (some may no longer be pending) */
	size_t r_nover;             /* owners with o_resume_over */
	uint64_t r_hold_seq;        /* places held by moves so far (o_target_seq) */
};

static inline uint64_t
reg_now(const struct reg *r)
{
	return r->r_cfg.rc_clock != NULL ? r->r_cfg.rc_clock(r->r_cfg.rc_clock_arg)
					 : util_now_mono_ms();
}

static inline void
reg_copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src != NULL ? src : "");
}

/* ---- lookup (registry.c) ---- */

/* Binary search; *ret_at is where the id is or would be inserted. */
struct reg_node *reg_node_find(const struct reg *r, const char *id, size_t *ret_at);
struct reg_owner *reg_owner_find(const struct reg *r, const char *component, size_t *ret_at);
/* n's entry of component; NULL when n does not list it. */
struct reg_comp *reg_node_comp(struct reg_node *n, const char *component);

/* ---- placement counts (registry_count.c, registry.h "Placement counts") ---- */

/*
 * Sets or clears (node NULL) the node o counts at as on its way (settling
 * false: a move placed it there) or just landed (true).
 */
void reg_target_set(struct reg *r, struct reg_owner *o, const char *node, bool settling);
/* The nodes o counts at besides the reports, each once; returns how many (at most 3). */
size_t reg_owner_places(const struct reg *r, const struct reg_owner *o, const char *ret_nodes[3]);
/*
 * Adds to arriving[i] the components that count at r->r_nodes[i] and that
 * node does not list (arriving has r_nnodes entries); skip (NULL: none) is
 * counted nowhere.
 */
void reg_arriving(const struct reg *r, const char *skip, uint32_t *arriving);
/*
 * What n counts: the components it lists and those counting there that it
 * does not list yet, skip (NULL: none) left out. -ENOMEM.
 */
int reg_node_count(const struct reg *r, const struct reg_node *n, const char *skip,
    uint32_t *ret_count);
/* Whether o counts at node besides node's reports (reg_owner_places()). */
bool reg_owner_counts_at(const struct reg *r, const struct reg_owner *o, const char *node);

/* ---- room (registry_count.c, registry.h "Room") ---- */

/* A node that counted a component before a change, and by what hold (reg_room_freed()). */
struct reg_counted {
	char rcn_node[KEY_NAME_MAX + 1];
	uint64_t rcn_hold;
};

/* Whether a place that frees matters to anything. */
bool reg_room_wanted(const struct reg *r);
/*
 * A place freed on node (NULL: none); hold as reg_room_freed() in
 * registry_count.c. True when a failover became due: call reg_room_tell()
 * once r_lock is released.
 */
bool reg_room_freed(struct reg *r, const struct reg_node *node, uint64_t hold);
/* reg_room_freed() by node id. */
bool reg_room_freed_at(struct reg *r, const char *node, uint64_t hold);
/* The nodes o counts at besides reports, before a change (reg_room_after()). */
size_t reg_room_before(const struct reg *r, const struct reg_owner *o,
    struct reg_counted ret[3]);
/* After a change of o: the nodes of before that neither list nor count it have room. */
bool reg_room_after(struct reg *r, const struct reg_owner *o, const struct reg_counted *before,
    size_t k);
/* Whether n's new list, which replaced old (nold entries), frees a place. */
bool reg_report_frees(struct reg *r, struct reg_node *n, const struct reg_comp *old, size_t nold);
/*
 * n reported its free memory (rcap_mem_free) after a heartbeat: the
 * failovers waiting for room it now has the memory for, and had not when
 * the last one was told to wait, become due. True when one did.
 */
bool reg_room_grew(struct reg *r, const struct reg_node *n);
/* A failover is told to wait for room: every node's free memory now is what reg_room_grew() compares with. */
void reg_room_mem_mark(struct reg *r);
/* Tells the caller a failover waiting for room is due (rc_on_room). Without r_lock. */
void reg_room_tell(const struct reg *r, bool due);

#endif

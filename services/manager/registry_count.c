/*
 * registry_count: what each node counts for placement and when a place
 * frees there (registry.h, "Placement counts" and "Room"). Part of the
 * registry: every function here is called with r_lock held, except
 * reg_room_tell().
 */
#include "registry_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Sets or clears (node NULL) the node o counts at as on its way (settling
 * false: a move placed it there) or just landed (true). Called with r_lock held.
 */
void
reg_target_set(struct reg *r, struct reg_owner *o, const char *node, bool settling)
{
	if (o->o_target_settling)
		r->r_nsettling--;
	reg_copy(o->o_target, sizeof(o->o_target), node);
	o->o_target_settling = settling && o->o_target[0] != '\0';
	o->o_target_beats = 0;
	o->o_target_seq = o->o_target[0] != '\0' && !settling ? ++r->r_hold_seq : 0;
	if (o->o_target_settling)
		r->r_nsettling++;
}

/*
 * The nodes o counts at besides the reports (see Placement in registry.h),
 * each once, into ret_nodes; returns how many (at most 3). Called with
 * r_lock held.
 */
size_t
reg_owner_places(const struct reg *r, const struct reg_owner *o, const char *ret_nodes[3])
{
	const char *cand[3] = { NULL, NULL, NULL };
	size_t k = 0;

	if (o->o_target[0] != '\0')
		cand[0] = o->o_target;
	if (o->o_migrating && o->o_node[0] != '\0')
		cand[1] = o->o_node; /* the source: it may get it back (rollback) */
	if (o->o_resume_node[0] != '\0' && !o->o_resume_over &&
	    (!o->o_migrating || o->o_target[0] == '\0' ||
		strcmp(o->o_target, o->o_resume_node) == 0)) {
		const struct reg_node *owner =
		    o->o_node[0] != '\0' ? reg_node_find(r, o->o_node, NULL) : NULL;
		/* Declared there, unless another up node runs it (the node is told so). */
		if (owner == NULL || strcmp(owner->n_id, o->o_resume_node) == 0 || !owner->n_up ||
		    reg_node_comp((struct reg_node *)owner, o->o_component) == NULL)
			cand[2] = o->o_resume_node;
	}
	for (size_t i = 0; i < 3; i++) {
		bool dup = cand[i] == NULL;
		for (size_t j = 0; j < k && !dup; j++)
			dup = strcmp(ret_nodes[j], cand[i]) == 0;
		if (!dup)
			ret_nodes[k++] = cand[i];
	}
	return k;
}

/*
 * Adds to arriving[i] the components that count at r->r_nodes[i] and that
 * node does not list (arriving has r_nnodes entries); skip (NULL: none) is
 * counted nowhere. Called with r_lock held.
 */
void
reg_arriving(const struct reg *r, const char *skip, uint32_t *arriving)
{
	for (size_t i = 0; i < r->r_nowners; i++) {
		const struct reg_owner *o = &r->r_owners[i];
		const char *nodes[3];
		size_t k;

		if (o->o_target[0] == '\0' && !o->o_migrating && o->o_resume_node[0] == '\0')
			continue;
		if (skip != NULL && strcmp(o->o_component, skip) == 0)
			continue;
		k = reg_owner_places(r, o, nodes);
		for (size_t j = 0; j < k; j++) {
			size_t at;
			struct reg_node *n = reg_node_find(r, nodes[j], &at);
			if (n != NULL && reg_node_comp(n, o->o_component) == NULL)
				arriving[at]++;
		}
	}
}

/* What n counts (Placement counts), skip left out. Called with r_lock held. */
int
reg_node_count(const struct reg *r, const struct reg_node *n, const char *skip,
    uint32_t *ret_count)
{
	uint32_t *arriving = calloc(r->r_nnodes, sizeof(*arriving));
	size_t at = 0;
	bool lists;

	if (arriving == NULL)
		return -ENOMEM;
	reg_arriving(r, skip, arriving);
	(void)reg_node_find(r, n->n_id, &at);
	lists = skip != NULL && reg_node_comp((struct reg_node *)n, skip) != NULL;
	*ret_count = (uint32_t)n->n_ncomps - (lists ? 1u : 0u) + arriving[at];
	free(arriving);
	return 0;
}

/* Whether a place that frees matters to anything (see Room in registry.h). */
bool
reg_room_wanted(const struct reg *r)
{
	return r->r_nroom > 0 || r->r_nover > 0;
}

/*
 * A place freed on node: the pending components it declared and had no room
 * for (o_resume_over) are its to resume again, as many as fit now, in order,
 * due now. Called with r_lock held.
 */
static bool
reg_room_resume(struct reg *r, const struct reg_node *node, uint64_t now)
{
	uint32_t count;
	bool due = false;

	if (reg_node_count(r, node, NULL, &count) != 0)
		return false; /* its failover goes on; the next place that frees tries again */
	for (size_t i = 0; i < r->r_nowners && r->r_nover > 0; i++) {
		struct reg_owner *o = &r->r_owners[i];
		if (!o->o_resume_over || strcmp(o->o_resume_node, node->n_id) != 0 ||
		    !o->o_pending || o->o_migrating)
			continue;
		if (node->n_max != 0 && count >= node->n_max)
			break;
		o->o_resume_over = false;
		r->r_nover--;
		count++;
		snprintf(o->o_pending_reason, sizeof(o->o_pending_reason),
		    "node %s declares it and has room for it now: resuming it there", node->n_id);
		o->o_pending_parked = false;
		o->o_pending_due_ms = now;
		due = true;
	}
	return due;
}

/*
 * o waits for room no more; a failover still pending and not moving is due
 * now (true). Called with r_lock held.
 */
static bool
reg_room_wake(struct reg *r, struct reg_owner *o, uint64_t now)
{
	o->o_pending_room = false;
	r->r_nroom--;
	if (!o->o_pending || o->o_migrating)
		return false;
	o->o_pending_parked = false;
	o->o_pending_due_ms = now;
	return true;
}

/*
 * A place freed on node (NULL: none): when it is up and not cordoned, the
 * failovers waiting for room become due now (see Room in registry.h).
 * hold: the o_target_seq of a place a move held and gave up, which frees
 * nothing for a failover told to wait before it was held; 0: any other
 * place. Returns true when one became due (call reg_room_tell() unlocked).
 * Called with r_lock held.
 */
bool
reg_room_freed(struct reg *r, const struct reg_node *node, uint64_t hold)
{
	bool due = false;
	uint64_t now;

	if (!reg_room_wanted(r) || node == NULL || !node->n_up || node->n_cordoned)
		return false;
	now = reg_now(r);
	if (r->r_nover > 0)
		due = reg_room_resume(r, node, now);
	for (size_t i = 0; i < r->r_nowners && r->r_nroom > 0; i++) {
		struct reg_owner *o = &r->r_owners[i];
		if (!o->o_pending_room || (hold != 0 && o->o_pending_room_seq < hold))
			continue;
		due |= reg_room_wake(r, o, now);
	}
	return due;
}

/*
 * The nodes o counts at besides reports, before a change (reg_room_after()
 * tells which of them it freed): a place held by a move (its target, its
 * source, which counts it only while it moves) with that move's hold, a
 * declaration with none. Called with r_lock held.
 */
size_t
reg_room_before(const struct reg *r, const struct reg_owner *o, struct reg_counted ret[3])
{
	const char *places[3];
	size_t k = reg_room_wanted(r) ? reg_owner_places(r, o, places) : 0;

	for (size_t i = 0; i < k; i++) {
		reg_copy(ret[i].rcn_node, sizeof(ret[i].rcn_node), places[i]);
		if (strcmp(places[i], o->o_resume_node) == 0)
			ret[i].rcn_hold = 0;
		else if (strcmp(places[i], o->o_target) == 0 && !o->o_target_settling)
			ret[i].rcn_hold = o->o_target_seq;
		else if (o->o_migrating && strcmp(places[i], o->o_node) == 0)
			ret[i].rcn_hold = o->o_begin_seq;
		else
			ret[i].rcn_hold = 0;
	}
	return k;
}

/*
 * Memory that grows is room too (a component that shrank or stopped, memory
 * freed beside the agent): a failover waiting for room whose need n did not
 * have free when the last failover was told to wait (n_room_mem, set for
 * every node then) and has now is due. A node's free memory moves a little
 * at every heartbeat: measured from that mark, not from the last report,
 * memory that hovers around a need wakes a failover once per wait, not once
 * per heartbeat; and a failover placed there, which takes the memory, marks
 * it again when the next one is told to wait, so two failovers sharing a
 * node cannot wake each other without memory really freed in between. A
 * failover whose need is not known (no checkpoint, no size reported) is
 * never kept by memory (place_fits()): nothing to wake. Called with r_lock
 * held.
 */
bool
reg_room_grew(struct reg *r, const struct reg_node *n)
{
	uint64_t free_now = n->n_cap.rcap_mem_free, now;
	bool due = false;

	if (r->r_nroom == 0 || !n->n_up || n->n_cordoned || n->n_cap.rcap_mem_total == 0 ||
	    free_now <= n->n_room_mem)
		return false;
	now = reg_now(r);
	for (size_t i = 0; i < r->r_nowners && r->r_nroom > 0; i++) {
		struct reg_owner *o = &r->r_owners[i];
		if (!o->o_pending_room || o->o_pending_room_need == 0 ||
		    o->o_pending_room_need <= n->n_room_mem || o->o_pending_room_need > free_now)
			continue;
		due |= reg_room_wake(r, o, now);
	}
	return due;
}

void
reg_room_mem_mark(struct reg *r)
{
	for (size_t i = 0; i < r->r_nnodes; i++)
		r->r_nodes[i]->n_room_mem = r->r_nodes[i]->n_cap.rcap_mem_free;
}

/* reg_room_freed() by node id. Called with r_lock held. */
bool
reg_room_freed_at(struct reg *r, const char *node, uint64_t hold)
{
	if (!reg_room_wanted(r) || node == NULL || node[0] == '\0')
		return false;
	return reg_room_freed(r, reg_node_find(r, node, NULL), hold);
}

/* Tells the caller a failover waiting for room is due (rc_on_room). Without r_lock. */
void
reg_room_tell(const struct reg *r, bool due)
{
	if (due && r->r_cfg.rc_on_room != NULL)
		r->r_cfg.rc_on_room(r->r_cfg.rc_on_room_arg);
}

/* Whether o counts at node besides node's reports (reg_owner_places()). r_lock held. */
bool
reg_owner_counts_at(const struct reg *r, const struct reg_owner *o, const char *node)
{
	const char *nodes[3];
	size_t k = reg_owner_places(r, o, nodes);

	for (size_t i = 0; i < k; i++)
		if (strcmp(nodes[i], node) == 0)
			return true;
	return false;
}

/*
 * After a change of o: the nodes of before (reg_room_before()) that neither
 * list nor count it any more have a place free. Called with r_lock held.
 */
bool
reg_room_after(struct reg *r, const struct reg_owner *o, const struct reg_counted *before,
    size_t k)
{
	bool due = false;

	for (size_t i = 0; i < k && !due; i++) {
		struct reg_node *n = reg_node_find(r, before[i].rcn_node, NULL);
		if (n != NULL && reg_node_comp(n, o->o_component) == NULL &&
		    !reg_owner_counts_at(r, o, n->n_id))
			due = reg_room_freed(r, n, before[i].rcn_hold);
	}
	return due;
}

/*
 * Whether n's new list, which replaced old (nold entries), frees a place
 * (see Room in registry.h): a component old listed that n neither lists nor
 * counts any more, or one n lists now that another node declared and no
 * longer counts. Called with r_lock held, only while a failover waits for room.
 */
bool
reg_report_frees(struct reg *r, struct reg_node *n, const struct reg_comp *old, size_t nold)
{
	bool due = false;

	for (size_t i = 0; i < nold && !due; i++) {
		const struct reg_owner *o = reg_owner_find(r, old[i].rc_name, NULL);
		if (reg_node_comp(n, old[i].rc_name) == NULL &&
		    (o == NULL || !reg_owner_counts_at(r, o, n->n_id)))
			due = reg_room_freed(r, n, 0);
	}
	for (size_t i = 0; i < n->n_ncomps && !due && reg_room_wanted(r); i++) {
		const struct reg_owner *o = reg_owner_find(r, n->n_comps[i].rc_name, NULL);
		bool listed = false;
		for (size_t j = 0; j < nold && !listed; j++)
			listed = strcmp(old[j].rc_name, n->n_comps[i].rc_name) == 0;
		if (!listed && o != NULL && o->o_resume_node[0] != '\0' &&
		    strcmp(o->o_resume_node, n->n_id) != 0 &&
		    !reg_owner_counts_at(r, o, o->o_resume_node))
			due = reg_room_freed_at(r, o->o_resume_node, 0);
	}
	return due;
}

#include "registry.h"
#include "registry_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- peers ---- */

static struct reg_peer *
reg_peer_new(struct rpc_client *c)
{
	struct reg_peer *p = malloc(sizeof(*p));
	if (p == NULL)
		return NULL;
	atomic_init(&p->rp_refs, 1);
	p->rp_client = c;
	return p;
}

/* Drops a reference; returns the client to close when it was the last. */
static struct rpc_client *
reg_peer_unref(struct reg_peer *p)
{
	struct rpc_client *c;

	if (p == NULL || atomic_fetch_sub(&p->rp_refs, 1) != 1)
		return NULL;
	c = p->rp_client;
	free(p);
	return c;
}

struct rpc_client *
reg_peer_client(const struct reg_peer *p)
{
	return p->rp_client;
}

void
reg_peer_put(struct reg_peer *p)
{
	rpc_client_close(reg_peer_unref(p));
}

/* ---- lookup (locked) ---- */

/* Binary search; *ret_at is where the id is or would be inserted. */
struct reg_node *
reg_node_find(const struct reg *r, const char *id, size_t *ret_at)
{
	size_t lo = 0, hi = r->r_nnodes;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->r_nodes[mid]->n_id, id);
		if (c == 0) {
			if (ret_at != NULL)
				*ret_at = mid;
			return r->r_nodes[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (ret_at != NULL)
		*ret_at = lo;
	return NULL;
}

struct reg_owner *
reg_owner_find(const struct reg *r, const char *component, size_t *ret_at)
{
	size_t lo = 0, hi = r->r_nowners;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->r_owners[mid].o_component, component);
		if (c == 0) {
			if (ret_at != NULL)
				*ret_at = mid;
			return &r->r_owners[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (ret_at != NULL)
		*ret_at = lo;
	return NULL;
}

/* Finds or adds the entry of a component. Pointers into r_owners die here. */
static int
reg_owner_get(struct reg *r, const char *component, struct reg_owner **ret_owner)
{
	struct reg_owner *o;
	size_t at;

	o = reg_owner_find(r, component, &at);
	if (o != NULL) {
		*ret_owner = o;
		return 0;
	}
	if (r->r_nowners >= REG_COMPONENTS_MAX)
		return -ENOSPC;
	if (r->r_nowners == r->r_capowners) {
		size_t cap = r->r_capowners != 0 ? 2 * r->r_capowners : 16;
		struct reg_owner *a = realloc(r->r_owners, cap * sizeof(*a));
		if (a == NULL)
			return -ENOMEM;
		r->r_owners = a;
		r->r_capowners = cap;
	}
	memmove(&r->r_owners[at + 1], &r->r_owners[at], (r->r_nowners - at) * sizeof(*o));
	r->r_nowners++;
	o = &r->r_owners[at];
	memset(o, 0, sizeof(*o));
	reg_copy(o->o_component, sizeof(o->o_component), component);
	*ret_owner = o;
	return 0;
}

struct reg_comp *
reg_node_comp(struct reg_node *n, const char *component)
{
	for (size_t i = 0; i < n->n_ncomps; i++) {
		if (strcmp(n->n_comps[i].rc_name, component) == 0)
			return &n->n_comps[i];
	}
	return NULL;
}

static void
reg_node_drop_comp(struct reg_node *n, const char *component)
{
	struct reg_comp *c = reg_node_comp(n, component);
	size_t i;

	if (c == NULL)
		return;
	i = (size_t)(c - n->n_comps);
	memmove(c, c + 1, (n->n_ncomps - i - 1) * sizeof(*c));
	n->n_ncomps--;
}

/* Sets or clears (node NULL) the resume target of o. Called with r_lock held. */
static void
reg_resume_set(struct reg *r, struct reg_owner *o, const char *node)
{
	if (o->o_resume_node[0] != '\0')
		r->r_nresume--;
	if (o->o_resume_over)
		r->r_nover--;
	reg_copy(o->o_resume_node, sizeof(o->o_resume_node), node);
	o->o_resume_fresh = false;
	o->o_resume_over = false;
	if (o->o_resume_node[0] != '\0')
		r->r_nresume++;
}

/*
 * Whether a report of c by node n is stale (see the ownership rules in
 * registry.h). Called with r_lock held.
 */
static bool
reg_report_stale(const struct reg *r, const char *node, const struct reg_owner *o,
    const struct reg_comp *c)
{
	const struct reg_node *owner;

	if (o != NULL && o->o_node[0] == '\0' && !o->o_migrating &&
	    strcmp(o->o_deleted_on, node) == 0 && c->rc_epoch <= o->o_epoch)
		return true; /* deleted there: a report made before it stopped */
	if (o == NULL || o->o_node[0] == '\0' || strcmp(o->o_node, node) == 0)
		return false;
	if (c->rc_epoch < o->o_epoch)
		return true;
	if (c->rc_epoch > o->o_epoch || o->o_migrating)
		return false;
	owner = reg_node_find(r, o->o_node, NULL);
	return owner != NULL && owner->n_up && reg_node_comp((struct reg_node *)owner, c->rc_name) != NULL;
}

static bool
reg_comp_failed(const struct reg_comp *c)
{
	return strcmp(c->rc_state, REG_STATE_FAILED) == 0;
}

/* A note of c in ret_notes (NULL: not wanted), or NULL. */
static struct reg_super_note *
reg_super_note_add(const struct reg_comp *c, struct reg_super_note *ret_notes, size_t *nnotes)
{
	struct reg_super_note *note;

	if (ret_notes == NULL)
		return NULL;
	note = &ret_notes[(*nnotes)++];
	memset(note, 0, sizeof(*note));
	reg_copy(note->rs_component, sizeof(note->rs_component), c->rc_name);
	note->rs_crashes = c->rc_crashes;
	note->rs_restarts = c->rc_restarts;
	reg_copy(note->rs_reason, sizeof(note->rs_reason), c->rc_reason);
	return note;
}

/*
 * Supervision news of c, reported by n (previously *old, NULL: not listed):
 * crashes are noted, a failed component becomes pending failover (away from
 * n) and is noted after its last crash. An agent that does not count
 * crashes (0) has its restarts noted as crashes, unless it reports failed
 * (as before crashes were counted). Called with r_lock held.
 */
static void
reg_node_super(struct reg *r, const struct reg_node *n, struct reg_owner *o,
    const struct reg_comp *c, const struct reg_comp *old, struct reg_super_note *ret_notes,
    size_t *nnotes)
{
	struct reg_super_note *note;

	if (old != NULL && c->rc_crashes > old->rc_crashes) {
		note = reg_super_note_add(c, ret_notes, nnotes);
		if (note != NULL)
			note->rs_new = c->rc_crashes - old->rc_crashes;
	} else if (old != NULL && c->rc_crashes == 0 && c->rc_restarts > old->rc_restarts &&
	    !reg_comp_failed(c)) {
		note = reg_super_note_add(c, ret_notes, nnotes);
		if (note != NULL) {
			note->rs_crashes = c->rc_restarts;
			note->rs_new = c->rc_restarts - old->rc_restarts;
		}
	}
	if (reg_comp_failed(c)) {
		bool news = old == NULL || !reg_comp_failed(old);
		if (!o->o_pending && !o->o_migrating) {
			o->o_pending = true;
			o->o_pending_fenced = false;
			o->o_pending_parked = false;
			reg_copy(o->o_pending_node, sizeof(o->o_pending_node), n->n_id);
			snprintf(o->o_pending_reason, sizeof(o->o_pending_reason),
			    "failed on node %s: %s", n->n_id, c->rc_reason);
			o->o_pending_since_unix_ms = util_now_unix_ms();
			o->o_pending_due_ms = reg_now(r);
			o->o_pending_attempts = 0;
		}
		if (news) {
			note = reg_super_note_add(c, ret_notes, nnotes);
			if (note != NULL)
				note->rs_failed = true;
		}
	}
}

/*
 * restarted: the list comes from another agent process than the one n had
 * (an attach), which runs nothing moved to the old one. *ret_due (as
 * reg_room_freed()) is set, never cleared.
 */
static int
reg_node_set_comps(struct reg *r, struct reg_node *n, const struct reg_comp *comps,
    size_t ncomps, bool restarted, char (*ret_revoked)[KEY_NAME_MAX + 1],
    size_t *ret_nrevoked, struct reg_super_note *ret_notes, size_t *ret_nnotes, bool *ret_due)
{
	struct reg_comp *list = NULL, *old;
	size_t k = 0, nrev = 0, nnotes = 0, nlisted, nold;
	int rv = 0;

	/* Room for the report and for the moves kept while they settle (below). */
	if (ncomps + n->n_ncomps > 0) {
		list = malloc((ncomps + n->n_ncomps) * sizeof(*list));
		if (list == NULL)
			return -ENOMEM;
	}
	for (size_t i = 0; i < ncomps; i++) {
		const struct reg_comp *c = &comps[i];
		struct reg_owner *o = reg_owner_find(r, c->rc_name, NULL);
		int orv;

		if (reg_report_stale(r, n->n_id, o, c)) {
			/* The component moved on: the reporter must stop it. */
			if (ret_revoked != NULL)
				reg_copy(ret_revoked[nrev++], KEY_NAME_MAX + 1, c->rc_name);
			continue;
		}
		list[k++] = *c;
		orv = reg_owner_get(r, c->rc_name, &o);
		if (orv != 0) {
			rv = orv;
			continue;
		}
		if (!o->o_migrating) {
			reg_copy(o->o_node, sizeof(o->o_node), n->n_id);
			o->o_deleted_on[0] = '\0'; /* taken (a newer epoch, another node): it runs again */
			/* It runs on an up node: no failover, unless that copy is fenced or failed. */
			if ((!o->o_pending_fenced || c->rc_epoch >= o->o_epoch) && !reg_comp_failed(c))
				o->o_pending = false;
		}
		reg_node_super(r, n, o, c, reg_node_comp(n, c->rc_name), ret_notes, &nnotes);
		if (strcmp(o->o_resume_node, n->n_id) == 0)
			reg_resume_set(r, o, NULL); /* resumed, or started fresh, here */
		if (c->rc_epoch > o->o_epoch)
			o->o_epoch = c->rc_epoch;
		if (c->rc_nrequires > 0 || o->o_nrequires == 0) {
			memcpy(o->o_requires, c->rc_requires, sizeof(o->o_requires));
			o->o_nrequires = c->rc_nrequires;
		}
	}
	/*
	 * Moves that landed on n: settled once a report lists them or
	 * REG_SETTLE_BEATS did not. Until then n keeps listing them as
	 * reg_migrate_end() put them: a report the agent made before the
	 * restore, read after it, must not hide them (ckptctl nodes). A new
	 * agent process lists what it runs: one restored on the old one is
	 * not kept (it declares it again, or it is lost, reg_node_mark_lost()).
	 */
	nlisted = k;
	for (size_t i = 0; r->r_nsettling > 0 && i < r->r_nowners; i++) {
		struct reg_owner *o = &r->r_owners[i];
		const struct reg_comp *kept;
		bool listed = false;

		if (!o->o_target_settling || strcmp(o->o_target, n->n_id) != 0)
			continue;
		for (size_t j = 0; j < nlisted && !listed; j++)
			listed = strcmp(list[j].rc_name, o->o_component) == 0;
		if (listed || restarted || ++o->o_target_beats >= REG_SETTLE_BEATS) {
			reg_target_set(r, o, NULL, false);
			continue;
		}
		kept = reg_node_comp(n, o->o_component);
		if (kept != NULL && strcmp(o->o_node, n->n_id) == 0 && !o->o_migrating)
			list[k++] = *kept;
	}
	old = n->n_comps;
	nold = n->n_ncomps;
	n->n_comps = list;
	n->n_ncomps = k;
	if (reg_room_wanted(r) && reg_report_frees(r, n, old, nold))
		*ret_due = true;
	free(old);
	if (ret_nrevoked != NULL)
		*ret_nrevoked = nrev;
	if (ret_nnotes != NULL)
		*ret_nnotes = nnotes;
	return rv;
}

/* ---- life cycle ---- */

int
reg_new(const struct reg_config *cfg, struct reg **ret_reg)
{
	struct reg *r = calloc(1, sizeof(*r));
	int rv;

	if (r == NULL)
		return -ENOMEM;
	r->r_cfg = *cfg;
	if (r->r_cfg.rc_nodes_max == 0)
		r->r_cfg.rc_nodes_max = LIMIT_NODES_DEFAULT;
	rv = -pthread_mutex_init(&r->r_lock, NULL);
	if (rv != 0) {
		free(r);
		return rv;
	}
	*ret_reg = r;
	return 0;
}

static void
reg_node_free(struct reg_node *n)
{
	if (n == NULL)
		return;
	rpc_client_close(reg_peer_unref(n->n_peer));
	free(n->n_labels);
	free(n->n_comps);
	free(n);
}

void
reg_free(struct reg *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->r_nnodes; i++)
		reg_node_free(r->r_nodes[i]);
	free(r->r_nodes);
	free(r->r_owners);
	pthread_mutex_destroy(&r->r_lock);
	free(r);
}

void
reg_abort(struct reg *r)
{
	pthread_mutex_lock(&r->r_lock);
	for (size_t i = 0; i < r->r_nnodes; i++) {
		if (r->r_nodes[i]->n_peer != NULL)
			rpc_client_abort(r->r_nodes[i]->n_peer->rp_client);
	}
	pthread_mutex_unlock(&r->r_lock);
}

/* ---- nodes ---- */

static int
reg_node_add(struct reg *r, const char *id, size_t at, struct reg_node **ret_node)
{
	struct reg_node *n;

	if (r->r_nnodes >= r->r_cfg.rc_nodes_max)
		return -EUSERS;
	if (r->r_nnodes == r->r_capnodes) {
		size_t cap = r->r_capnodes != 0 ? 2 * r->r_capnodes : 8;
		struct reg_node **a = realloc(r->r_nodes, cap * sizeof(*a));
		if (a == NULL)
			return -ENOMEM;
		r->r_nodes = a;
		r->r_capnodes = cap;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	reg_copy(n->n_id, sizeof(n->n_id), id);
	memmove(&r->r_nodes[at + 1], &r->r_nodes[at], (r->r_nnodes - at) * sizeof(*r->r_nodes));
	r->r_nodes[at] = n;
	r->r_nnodes++;
	*ret_node = n;
	return 0;
}

/*
 * Components n owns but did not report when it attached (it restarted
 * before it was marked down): pending failover. Called with r_lock held.
 */
static void
reg_node_mark_lost(struct reg *r, const struct reg_node *n)
{
	uint64_t now = reg_now(r);

	for (size_t i = 0; i < r->r_nowners; i++) {
		struct reg_owner *o = &r->r_owners[i];
		if (o->o_migrating || o->o_pending || strcmp(o->o_node, n->n_id) != 0 ||
		    reg_node_comp((struct reg_node *)n, o->o_component) != NULL)
			continue;
		o->o_pending = true;
		o->o_pending_fenced = false;
		o->o_pending_parked = false;
		reg_copy(o->o_pending_node, sizeof(o->o_pending_node), n->n_id);
		snprintf(o->o_pending_reason, sizeof(o->o_pending_reason),
		    "node %s attached again without it", n->n_id);
		o->o_pending_since_unix_ms = util_now_unix_ms();
		o->o_pending_due_ms = now;
		o->o_pending_attempts = 0;
	}
}

/*
 * The components n declares (see Resume in registry.h): each becomes pending
 * with n as its resume target, unless n runs it, another up node runs it, or
 * it is migrating. Returns how many were marked. Called with r_lock held.
 */
static int
reg_node_declare(struct reg *r, const struct reg_node *n, const struct reg_comp *decl,
    size_t ndecl, uint32_t max, size_t *ret_nresumed, size_t *ret_nover)
{
	uint64_t now = reg_now(r);
	uint32_t used = 0;
	size_t k = 0, over = 0;

	/* What an earlier attach of n declared is superseded. */
	for (size_t i = 0; r->r_nresume > 0 && i < r->r_nowners; i++)
		if (strcmp(r->r_owners[i].o_resume_node, n->n_id) == 0)
			reg_resume_set(r, &r->r_owners[i], NULL);
	if (max > 0 && ndecl > 0) {
		/* What n counts besides: its reports, the moves on their way there. */
		int rv = reg_node_count(r, n, NULL, &used);
		if (rv != 0)
			return rv;
	}
	for (size_t i = 0; i < ndecl; i++) {
		const struct reg_comp *d = &decl[i];
		const struct reg_node *owner;
		struct reg_owner *o;

		if (reg_node_comp((struct reg_node *)n, d->rc_name) != NULL ||
		    reg_owner_get(r, d->rc_name, &o) != 0)
			continue;
		if (strcmp(o->o_deleted_on, n->n_id) == 0)
			o->o_deleted_on[0] = '\0'; /* its agent started again and runs it by config */
		if (o->o_nrequires == 0) {
			memcpy(o->o_requires, d->rc_requires, sizeof(o->o_requires));
			o->o_nrequires = d->rc_nrequires;
		}
		reg_resume_set(r, o, n->n_id);
		if (max > 0 && reg_owner_counts_at(r, o, n->n_id)) {
			if (used >= max) {
				o->o_resume_over = true; /* no room: counted nowhere, placed elsewhere */
				r->r_nover++;
			} else {
				used++;
			}
		}
		if (o->o_migrating)
			continue; /* the move decides; reg_beat() says where it went */
		owner = o->o_node[0] != '\0' ? reg_node_find(r, o->o_node, NULL) : NULL;
		if (owner != NULL && owner != n && owner->n_up &&
		    reg_node_comp((struct reg_node *)owner, d->rc_name) != NULL)
			continue; /* runs elsewhere: reg_beat() tells n */
		o->o_pending = true;
		o->o_pending_parked = false;
		reg_copy(o->o_pending_node, sizeof(o->o_pending_node), n->n_id);
		if (o->o_resume_over)
			snprintf(o->o_pending_reason, sizeof(o->o_pending_reason),
			    "node %s declares it with no room left (it counts %u components, "
			    "--max-node-components %u): placing it on another node", n->n_id, used,
			    max);
		else
			snprintf(o->o_pending_reason, sizeof(o->o_pending_reason),
			    "node %s started again and declares it: resuming it there from its "
			    "latest checkpoint", n->n_id);
		o->o_pending_since_unix_ms = util_now_unix_ms();
		o->o_pending_due_ms = now;
		o->o_pending_attempts = 0;
		if (o->o_resume_over)
			over++;
		else
			k++;
	}
	*ret_nresumed = k;
	*ret_nover = over;
	return 0;
}

/*
 * What n must learn about the components it declared: start fresh, or
 * another node runs it (told once). Called with r_lock held.
 */
static void
reg_node_resume_notes(struct reg *r, const struct reg_node *n, const struct reg_beat *b)
{
	size_t nf = 0, ne = 0;

	for (size_t i = 0; r->r_nresume > 0 && i < r->r_nowners; i++) {
		struct reg_owner *o = &r->r_owners[i];
		const struct reg_node *owner;

		if (strcmp(o->o_resume_node, n->n_id) != 0 || o->o_migrating)
			continue;
		if (o->o_resume_fresh) {
			if (b->rb_fresh != NULL && nf < REG_BEAT_NOTES_MAX)
				reg_copy(b->rb_fresh[nf++], KEY_NAME_MAX + 1, o->o_component);
			continue;
		}
		owner = o->o_node[0] != '\0' ? reg_node_find(r, o->o_node, NULL) : NULL;
		if (owner == NULL || owner == n || !owner->n_up ||
		    reg_node_comp((struct reg_node *)owner, o->o_component) == NULL)
			continue;
		if (b->rb_elsewhere == NULL || ne == REG_BEAT_NOTES_MAX)
			continue;
		reg_copy(b->rb_elsewhere[ne++], KEY_NAME_MAX + 1, o->o_component);
		reg_resume_set(r, o, NULL);
	}
	if (b->rb_nfresh != NULL)
		*b->rb_nfresh = nf;
	if (b->rb_nelsewhere != NULL)
		*b->rb_nelsewhere = ne;
}

/*
 * Whether attaching a->ra_node (n: as known, NULL: new) would take it over
 * a->ra_max_components: more reported components than that which are not
 * stale (they will be revoked), and one of them the node is not known to
 * have run. Known: n lists it (a node taken over the cap already, whose
 * heartbeats are never refused, attaches again with what it runs), or the
 * catalogue's newest checkpoint of it was stored by this node (it ran it
 * under a manager that has started again since, which knows no node: the
 * catalogue is seeded from the NAS). Called with r_lock held.
 */
static bool
reg_attach_over(const struct reg *r, struct reg_node *n, const struct reg_attach *a)
{
	size_t live = 0;
	bool unknown = false;

	if (a->ra_ncomps <= a->ra_max_components)
		return false;
	for (size_t i = 0; i < a->ra_ncomps; i++) {
		const struct reg_comp *c = &a->ra_comps[i];
		const struct reg_owner *o = reg_owner_find(r, c->rc_name, NULL);
		bool stored;

		if (reg_report_stale(r, a->ra_node, o, c))
			continue;
		live++;
		stored = o != NULL && o->o_has_ckpt && strcmp(o->o_ckpt.rk_node, a->ra_node) == 0;
		unknown = unknown || (!stored && (n == NULL || reg_node_comp(n, c->rc_name) == NULL));
	}
	return live > a->ra_max_components && unknown;
}

int
reg_attach(struct reg *r, const struct reg_attach *a, struct rpc_client *client,
    struct rpc_client **ret_close)
{
	struct reg_label *labels = NULL;
	struct reg_peer *peer = NULL;
	bool same, restarted, due = false;
	struct reg_node *n;
	size_t at, k = 0, over = 0;
	int rv = 0, drv;

	*ret_close = NULL;
	if (a->ra_nresumed != NULL)
		*a->ra_nresumed = 0;
	if (a->ra_nover != NULL)
		*a->ra_nover = 0;
	if (a->ra_nlabels > LIMIT_LABELS_MAX || a->ra_ncomps > LIMIT_NODE_COMPONENTS_MAX ||
	    a->ra_ndeclared > LIMIT_NODE_COMPONENTS_MAX) {
		*ret_close = client;
		return -EINVAL;
	}
	if (a->ra_nlabels > 0) {
		labels = malloc(a->ra_nlabels * sizeof(*labels));
		if (labels == NULL) {
			*ret_close = client;
			return -ENOMEM;
		}
		memcpy(labels, a->ra_labels, a->ra_nlabels * sizeof(*labels));
	}
	if (client != NULL) {
		peer = reg_peer_new(client);
		if (peer == NULL) {
			free(labels);
			*ret_close = client;
			return -ENOMEM;
		}
	}

	pthread_mutex_lock(&r->r_lock);
	n = reg_node_find(r, a->ra_node, &at);
	if (a->ra_max_components > 0 && reg_attach_over(r, n, a))
		rv = -EDQUOT;
	else if (n == NULL)
		rv = reg_node_add(r, a->ra_node, at, &n);
	if (rv != 0) {
		pthread_mutex_unlock(&r->r_lock);
		free(labels);
		free(peer);
		*ret_close = client;
		return rv;
	}
	if (n->n_up && n->n_instance != 0 && n->n_instance != a->ra_instance &&
	    n->n_instance != a->ra_replaces) {
		pthread_mutex_unlock(&r->r_lock);
		free(labels);
		free(peer);
		*ret_close = client;
		return -EEXIST;
	}
	/*
	 * Same address and the same process: keep the client that is (or gets)
	 * connected. Another process there (started again): the new client,
	 * which dials at once, where the old one may still wait out its redial
	 * back-off.
	 */
	same = n->n_peer != NULL && strcmp(n->n_address, a->ra_address) == 0 &&
	    (peer == NULL || n->n_instance == a->ra_instance);
	restarted = n->n_instance != 0 && a->ra_instance != 0 && n->n_instance != a->ra_instance;
	n->n_instance = a->ra_instance;
	if (same) {
		if (peer != NULL) {
			free(peer);
			*ret_close = client;
		}
	} else {
		*ret_close = reg_peer_unref(n->n_peer);
		n->n_peer = peer;
		/*
		 * Kept: its dial starts now, under the lock, before anyone else
		 * may close it; one not kept was never dialed (rpc.h
		 * RPC_CLIENT_DIAL_LATER). A start that fails (no memory) leaves
		 * calls to the node to fail at their deadline.
		 */
		if (client != NULL)
			(void)rpc_client_dial(client);
	}
	reg_copy(n->n_address, sizeof(n->n_address), a->ra_address);
	n->n_cap = a->ra_cap;
	n->n_room_mem = n->n_cap.rcap_mem_free; /* the attach itself wakes every failover */
	free(n->n_labels);
	n->n_labels = labels;
	n->n_nlabels = a->ra_nlabels;
	n->n_up = true;
	n->n_last_seen_ms = reg_now(r);
	n->n_attached_unix_ms = a->ra_unix_ms;
	n->n_max = a->ra_max_components;
	rv = reg_node_set_comps(r, n, a->ra_comps, a->ra_ncomps, restarted, a->ra_revoked,
	    a->ra_nrevoked, NULL, NULL, &due);
	/* Before reg_node_mark_lost(): what n declares it resumes itself. */
	drv = reg_node_declare(r, n, a->ra_declared, a->ra_ndeclared, a->ra_max_components, &k,
	    &over);
	if (rv == 0)
		rv = drv;
	if (a->ra_nresumed != NULL)
		*a->ra_nresumed = k;
	if (a->ra_nover != NULL)
		*a->ra_nover = over;
	reg_node_mark_lost(r, n);
	pthread_mutex_unlock(&r->r_lock);
	reg_room_tell(r, due);
	return rv;
}

int
reg_holder(struct reg *r, const char *node, struct reg_holder *ret_holder)
{
	struct reg_node *n;
	int rv = -ENOENT;

	pthread_mutex_lock(&r->r_lock);
	n = reg_node_find(r, node, NULL);
	if (n != NULL) {
		ret_holder->rh_up = n->n_up;
		ret_holder->rh_instance = n->n_instance;
		memcpy(ret_holder->rh_address, n->n_address, LIMIT_URL_MAX);
		rv = 0;
	}
	pthread_mutex_unlock(&r->r_lock);
	return rv;
}

int
reg_node_address(struct reg *r, const char *node, char *ret_address)
{
	struct reg_node *n;
	int rv = -ENOENT;

	pthread_mutex_lock(&r->r_lock);
	n = reg_node_find(r, node, NULL);
	if (n != NULL) {
		memcpy(ret_address, n->n_address, LIMIT_URL_MAX);
		rv = 0;
	}
	pthread_mutex_unlock(&r->r_lock);
	return rv;
}

int
reg_beat(struct reg *r, const char *node, const struct reg_beat *b)
{
	struct reg_node *n;
	bool due = false;
	int rv;

	if (b->rb_nrevoked != NULL)
		*b->rb_nrevoked = 0;
	if (b->rb_nfresh != NULL)
		*b->rb_nfresh = 0;
	if (b->rb_nelsewhere != NULL)
		*b->rb_nelsewhere = 0;
	if (b->rb_nsuper != NULL)
		*b->rb_nsuper = 0;
	if (b->rb_ncomps > LIMIT_NODE_COMPONENTS_MAX)
		return -EINVAL;
	pthread_mutex_lock(&r->r_lock);
	n = reg_node_find(r, node, NULL);
	if (n == NULL) {
		rv = -ENOENT;
	} else if (!n->n_up) {
		rv = -ESTALE;
	} else if (n->n_instance != 0 && b->rb_instance != 0 && b->rb_instance != n->n_instance) {
		rv = -EXDEV;
	} else {
		n->n_last_seen_ms = reg_now(r);
		n->n_cap = b->rb_cap;
		n->n_queued = b->rb_queued;
		n->n_queue_dropped = b->rb_queue_dropped;
		rv = reg_node_set_comps(r, n, b->rb_comps, b->rb_ncomps, false, b->rb_revoked,
		    b->rb_nrevoked, b->rb_super, b->rb_nsuper, &due);
		due = reg_room_grew(r, n) || due;
		reg_node_resume_notes(r, n, b);
	}
	pthread_mutex_unlock(&r->r_lock);
	reg_room_tell(r, due);
	return rv;
}

int
reg_heartbeat(struct reg *r, const char *node, const struct reg_capacity *cap,
    const struct reg_comp *comps, size_t ncomps)
{
	struct reg_beat b = { .rb_cap = *cap, .rb_comps = comps, .rb_ncomps = ncomps };
	return reg_beat(r, node, &b);
}

size_t
reg_sweep(struct reg *r, struct reg_down *ret_down, size_t max)
{
	size_t k = 0;
	uint64_t now;

	pthread_mutex_lock(&r->r_lock);
	now = reg_now(r);
	for (size_t i = 0; i < r->r_nnodes && k < max; i++) {
		struct reg_node *n = r->r_nodes[i];
		uint64_t silent = now > n->n_last_seen_ms ? now - n->n_last_seen_ms : 0;
		if (!n->n_up || silent <= r->r_cfg.rc_down_after_ms)
			continue;
		n->n_up = false;
		reg_copy(ret_down[k].rd_node, sizeof(ret_down[k].rd_node), n->n_id);
		ret_down[k].rd_silent_ms = silent;
		k++;
	}
	pthread_mutex_unlock(&r->r_lock);
	return k;
}

void
reg_nodes_free(struct reg_node_view *nodes, size_t n)
{
	if (nodes == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(nodes[i].rn_labels);
		free(nodes[i].rn_comps);
		free(nodes[i].rn_pending);
	}
	free(nodes);
}

/* The pending components of node n into v. Called with r_lock held. */
static int
reg_node_copy_pending(const struct reg *r, const struct reg_node *n, struct reg_node_view *v)
{
	size_t count = 0;

	for (size_t i = 0; i < r->r_nowners; i++)
		if (r->r_owners[i].o_pending && strcmp(r->r_owners[i].o_pending_node, n->n_id) == 0)
			count++;
	if (count == 0)
		return 0;
	v->rn_pending = calloc(count, sizeof(*v->rn_pending));
	if (v->rn_pending == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < r->r_nowners; i++) {
		const struct reg_owner *o = &r->r_owners[i];
		struct reg_pending *p;
		if (!o->o_pending || strcmp(o->o_pending_node, n->n_id) != 0)
			continue;
		p = &v->rn_pending[v->rn_npending++];
		reg_copy(p->rp_component, sizeof(p->rp_component), o->o_component);
		reg_copy(p->rp_node, sizeof(p->rp_node), o->o_pending_node);
		reg_copy(p->rp_reason, sizeof(p->rp_reason), o->o_pending_reason);
		p->rp_since_unix_ms = o->o_pending_since_unix_ms;
		p->rp_attempts = o->o_pending_attempts;
	}
	return 0;
}

static int
reg_node_copy(const struct reg_node *n, uint64_t now, struct reg_node_view *v)
{
	v->rn_cordoned = n->n_cordoned;
	v->rn_queued = n->n_queued;
	v->rn_queue_dropped = n->n_queue_dropped;
	reg_copy(v->rn_id, sizeof(v->rn_id), n->n_id);
	v->rn_up = n->n_up;
	memcpy(v->rn_address, n->n_address, sizeof(v->rn_address));
	v->rn_cap = n->n_cap;
	v->rn_last_seen_ms_ago = now > n->n_last_seen_ms ? now - n->n_last_seen_ms : 0;
	v->rn_attached_unix_ms = n->n_attached_unix_ms;
	if (n->n_nlabels > 0) {
		v->rn_labels = malloc(n->n_nlabels * sizeof(*v->rn_labels));
		if (v->rn_labels == NULL)
			return -ENOMEM;
		memcpy(v->rn_labels, n->n_labels, n->n_nlabels * sizeof(*v->rn_labels));
		v->rn_nlabels = n->n_nlabels;
	}
	if (n->n_ncomps > 0) {
		v->rn_comps = malloc(n->n_ncomps * sizeof(*v->rn_comps));
		if (v->rn_comps == NULL)
			return -ENOMEM;
		memcpy(v->rn_comps, n->n_comps, n->n_ncomps * sizeof(*v->rn_comps));
		v->rn_ncomps = n->n_ncomps;
	}
	return 0;
}

int
reg_nodes(struct reg *r, struct reg_node_view **ret_nodes, size_t *ret_n)
{
	struct reg_node_view *v = NULL;
	size_t count;
	uint64_t now;
	int rv = 0;

	pthread_mutex_lock(&r->r_lock);
	count = r->r_nnodes;
	now = reg_now(r);
	if (count > 0) {
		v = calloc(count, sizeof(*v));
		if (v == NULL)
			rv = -ENOMEM;
	}
	for (size_t i = 0; i < count && rv == 0; i++) {
		rv = reg_node_copy(r->r_nodes[i], now, &v[i]);
		if (rv == 0)
			rv = reg_node_copy_pending(r, r->r_nodes[i], &v[i]);
	}
	pthread_mutex_unlock(&r->r_lock);
	if (rv != 0) {
		reg_nodes_free(v, count);
		return rv;
	}
	*ret_nodes = v;
	*ret_n = count;
	return 0;
}

int
reg_candidates(struct reg *r, const char *component, struct reg_cand **ret_cands, size_t *ret_n)
{
	struct reg_cand *c = NULL;
	uint32_t *arriving = NULL;
	size_t count;
	int rv = 0;

	pthread_mutex_lock(&r->r_lock);
	count = r->r_nnodes;
	if (count > 0) {
		c = calloc(count, sizeof(*c));
		arriving = calloc(count, sizeof(*arriving));
		if (c == NULL || arriving == NULL)
			rv = -ENOMEM;
	}
	if (rv == 0 && count > 0)
		reg_arriving(r, component, arriving);
	for (size_t i = 0; i < count && rv == 0; i++) {
		struct reg_node *n = r->r_nodes[i];
		bool lists = component != NULL && reg_node_comp(n, component) != NULL;
		reg_copy(c[i].rca_node, sizeof(c[i].rca_node), n->n_id);
		c[i].rca_up = n->n_up;
		c[i].rca_cordoned = n->n_cordoned;
		c[i].rca_cap = n->n_cap;
		c[i].rca_arriving = arriving[i];
		c[i].rca_components = (uint32_t)n->n_ncomps - (lists ? 1u : 0u) + arriving[i];
		if (n->n_nlabels > 0) {
			c[i].rca_labels = malloc(n->n_nlabels * sizeof(*c[i].rca_labels));
			if (c[i].rca_labels == NULL) {
				rv = -ENOMEM;
				break;
			}
			memcpy(c[i].rca_labels, n->n_labels, n->n_nlabels * sizeof(*c[i].rca_labels));
			c[i].rca_nlabels = n->n_nlabels;
		}
	}
	pthread_mutex_unlock(&r->r_lock);
	free(arriving);
	if (rv != 0) {
		reg_candidates_free(c, count);
		return rv;
	}
	*ret_cands = c;
	*ret_n = count;
	return 0;
}

void
reg_candidates_free(struct reg_cand *cands, size_t n)
{
	if (cands == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(cands[i].rca_labels);
	free(cands);
}

int
reg_peer_get(struct reg *r, const char *node, struct reg_peer **ret_peer)
{
	struct reg_node *n;
	int rv = 0;

	pthread_mutex_lock(&r->r_lock);
	n = reg_node_find(r, node, NULL);
	if (n == NULL) {
		rv = -ENOENT;
	} else if (n->n_peer == NULL) {
		rv = -ENOTCONN;
	} else {
		atomic_fetch_add(&n->n_peer->rp_refs, 1);
		*ret_peer = n->n_peer;
	}
	pthread_mutex_unlock(&r->r_lock);
	return rv;
}

/* ---- catalogue ---- */

int
reg_checkpoint(struct reg *r, const struct reg_ckpt *c, bool *ret_latest)
{
	struct reg_owner *o;
	struct reg_node *n;
	bool latest = false;
	int rv;

	pthread_mutex_lock(&r->r_lock);
	rv = reg_owner_get(r, c->rk_component, &o);
	if (rv == 0) {
		if (!o->o_has_ckpt || c->rk_seq >= o->o_ckpt.rk_seq) {
			o->o_ckpt = *c;
			o->o_has_ckpt = true;
			latest = true;
		}
		if (c->rk_epoch > o->o_epoch)
			o->o_epoch = c->rk_epoch;
		n = reg_node_find(r, c->rk_node, NULL);
		if (n != NULL) {
			struct reg_comp *nc = reg_node_comp(n, c->rk_component);
			if (nc != NULL && c->rk_seq > nc->rc_last_seq)
				nc->rc_last_seq = c->rk_seq;
		}
	}
	pthread_mutex_unlock(&r->r_lock);
	if (rv == 0 && ret_latest != NULL)
		*ret_latest = latest;
	return rv;
}

bool
reg_checkpoint_gone(struct reg *r, const struct reg_ckpt *gone, const struct reg_ckpt *newest)
{
	struct reg_owner *o;
	bool changed = false;

	pthread_mutex_lock(&r->r_lock);
	o = reg_owner_find(r, gone->rk_component, NULL);
	if (o != NULL && o->o_has_ckpt && o->o_ckpt.rk_seq == gone->rk_seq &&
	    strcmp(o->o_ckpt.rk_node, gone->rk_node) == 0) {
		if (newest != NULL)
			o->o_ckpt = *newest;
		o->o_has_ckpt = newest != NULL;
		changed = true;
	}
	pthread_mutex_unlock(&r->r_lock);
	return changed;
}

int
reg_checkpoint_latest(struct reg *r, const char *component, struct reg_ckpt *ret_ckpt)
{
	struct reg_owner *o;
	int rv = -ENOENT;

	pthread_mutex_lock(&r->r_lock);
	o = reg_owner_find(r, component, NULL);
	if (o != NULL && o->o_has_ckpt) {
		*ret_ckpt = o->o_ckpt;
		rv = 0;
	}
	pthread_mutex_unlock(&r->r_lock);
	return rv;
}

static int
reg_ckpt_cmp(const void *pa, const void *pb)
{
	const struct reg_ckpt *a = pa, *b = pb;
	int c = strcmp(a->rk_node, b->rk_node);
	return c != 0 ? c : strcmp(a->rk_component, b->rk_component);
}

static bool
reg_match(const char *filter, const char *value)
{
	return filter == NULL || filter[0] == '\0' || strcmp(filter, value) == 0;
}

int
reg_checkpoints(struct reg *r, const char *node, const char *component,
    struct reg_ckpt **ret_ckpts, size_t *ret_n)
{
	struct reg_ckpt *out = NULL;
	size_t k = 0;
	int rv = 0;

	pthread_mutex_lock(&r->r_lock);
	if (r->r_nowners > 0) {
		out = malloc(r->r_nowners * sizeof(*out));
		if (out == NULL)
			rv = -ENOMEM;
	}
	for (size_t i = 0; i < r->r_nowners && rv == 0; i++) {
		const struct reg_owner *o = &r->r_owners[i];
		if (o->o_has_ckpt && reg_match(node, o->o_ckpt.rk_node) &&
		    reg_match(component, o->o_ckpt.rk_component))
			out[k++] = o->o_ckpt;
	}
	pthread_mutex_unlock(&r->r_lock);
	if (rv != 0)
		return rv;
	if (k == 0) {
		free(out);
		out = NULL;
	} else {
		qsort(out, k, sizeof(*out), reg_ckpt_cmp);
	}
	*ret_ckpts = out;
	*ret_n = k;
	return 0;
}

/* ---- migration ---- */

/* What reg_begin() starts: a move, a placement (may be new), a delete. */
enum reg_begin_kind { REG_BEGIN_MOVE, REG_BEGIN_PLACE, REG_BEGIN_DELETE };

/*
 * The free memory a node needs to take o (placement's pr_need_bytes): its
 * latest checkpoint's size, or the state its node reports when larger; 0
 * when neither is known. Called with r_lock held.
 */
static uint64_t
reg_owner_need(const struct reg *r, const struct reg_owner *o)
{
	uint64_t need = o->o_has_ckpt ? o->o_ckpt.rk_size : 0;
	struct reg_node *n = o->o_node[0] != '\0' ? reg_node_find(r, o->o_node, NULL) : NULL;
	const struct reg_comp *c = n != NULL ? reg_node_comp(n, o->o_component) : NULL;

	return c != NULL && c->rc_state_bytes > need ? c->rc_state_bytes : need;
}

static int
reg_begin(struct reg *r, const char *component, enum reg_begin_kind kind,
    struct reg_mig_plan *ret_plan)
{
	struct reg_mig_plan plan;
	struct reg_owner *o;
	int rv = 0;

	memset(&plan, 0, sizeof(plan));
	pthread_mutex_lock(&r->r_lock);
	o = reg_owner_find(r, component, NULL);
	if (o == NULL && kind == REG_BEGIN_PLACE) {
		rv = reg_owner_get(r, component, &o);
		if (rv != 0)
			o = NULL;
	}
	if (rv != 0) {
		/* no room for the entry */
	} else if (o == NULL || (o->o_node[0] == '\0' && !o->o_has_ckpt && kind == REG_BEGIN_MOVE) ||
	    (o->o_node[0] == '\0' && !o->o_has_ckpt && kind == REG_BEGIN_DELETE &&
		o->o_resume_node[0] == '\0')) {
		rv = -ENOENT;
	} else if (o->o_migrating) {
		rv = -EBUSY;
	} else {
		struct reg_node *n = o->o_node[0] != '\0' ? reg_node_find(r, o->o_node, NULL) : NULL;

		reg_copy(plan.rm_owner, sizeof(plan.rm_owner), o->o_node);
		plan.rm_epoch = o->o_epoch;
		plan.rm_has_ckpt = o->o_has_ckpt;
		if (o->o_has_ckpt)
			plan.rm_ckpt = o->o_ckpt;
		plan.rm_need_bytes = reg_owner_need(r, o);
		if (o->o_node[0] == '\0' && o->o_resume_node[0] != '\0' && !o->o_resume_over) {
			struct reg_node *rn = reg_node_find(r, o->o_resume_node, NULL);
			if (rn != NULL && rn->n_up)
				reg_copy(plan.rm_starting_on, sizeof(plan.rm_starting_on),
				    o->o_resume_node);
		}
		plan.rm_waiting = o->o_pending || o->o_resume_node[0] != '\0';
		plan.rm_has_from = o->o_pending && o->o_pending_fenced;
		if (plan.rm_has_from)
			plan.rm_from = o->o_pending_from;
		if (n != NULL) {
			const struct reg_comp *c = reg_node_comp(n, component);
			plan.rm_owner_up = n->n_up;
			plan.rm_owner_failed = c != NULL && reg_comp_failed(c);
			plan.rm_owner_runs = c != NULL && !plan.rm_owner_failed;
			plan.rm_owner_fenced = c != NULL && c->rc_epoch < o->o_epoch;
			if (n->n_up && n->n_peer != NULL) {
				atomic_fetch_add(&n->n_peer->rp_refs, 1);
				plan.rm_owner_peer = n->n_peer;
			}
		}
		memcpy(plan.rm_requires, o->o_requires, sizeof(plan.rm_requires));
		plan.rm_nrequires = o->o_nrequires;
		o->o_migrating = true;
		/*
		 * Its source's place: one held before the move (the node lists it)
		 * every failover waiting for room saw, so freeing it wakes them
		 * (hold 0), even when a report without it comes before the move
		 * ends; one counted there only while it moves (a lost component)
		 * is this move's hold.
		 */
		o->o_begin_seq = n != NULL && reg_node_comp(n, component) != NULL ? 0 : ++r->r_hold_seq;
	}
	pthread_mutex_unlock(&r->r_lock);
	if (rv == 0)
		*ret_plan = plan;
	return rv;
}

int
reg_migrate_begin(struct reg *r, const char *component, struct reg_mig_plan *ret_plan)
{
	return reg_begin(r, component, REG_BEGIN_MOVE, ret_plan);
}

int
reg_place_begin(struct reg *r, const char *component, struct reg_mig_plan *ret_plan)
{
	return reg_begin(r, component, REG_BEGIN_PLACE, ret_plan);
}

int
reg_delete_begin(struct reg *r, const char *component, struct reg_mig_plan *ret_plan)
{
	return reg_begin(r, component, REG_BEGIN_DELETE, ret_plan);
}

int
reg_migrate_toward(struct reg *r, const char *component, const char *node, uint32_t max)
{
	struct reg_owner *o;
	struct reg_node *n = NULL;
	uint32_t count;
	bool due = false;
	int rv = 0;

	pthread_mutex_lock(&r->r_lock);
	o = reg_owner_find(r, component, NULL);
	if (node != NULL)
		n = reg_node_find(r, node, NULL);
	if (o == NULL || !o->o_migrating || (node != NULL && n == NULL)) {
		rv = -ENOENT;
		goto out_unlock;
	}
	if (node == NULL) {
		if (!o->o_target_settling) {
			struct reg_counted was[3];
			size_t k = reg_room_before(r, o, was);
			reg_target_set(r, o, NULL, false);
			due = reg_room_after(r, o, was, k);
		}
		goto out_unlock;
	}
	if (max > 0) {
		/* As reg_candidates() counts: the others there (listed or arriving). */
		rv = reg_node_count(r, n, component, &count);
		if (rv == 0 && count >= max)
			rv = -EDQUOT;
		if (rv != 0)
			goto out_unlock;
	}
	{
		/* Placed again elsewhere: the place held before is given up. */
		struct reg_counted was[3];
		size_t k = reg_room_before(r, o, was);
		reg_target_set(r, o, node, false);
		due = reg_room_after(r, o, was, k);
	}
out_unlock:
	pthread_mutex_unlock(&r->r_lock);
	reg_room_tell(r, due);
	return rv;
}

void
reg_migrate_release(struct reg *r, const char *component)
{
	struct reg_owner *o;
	bool due = false;

	pthread_mutex_lock(&r->r_lock);
	o = reg_owner_find(r, component, NULL);
	if (o != NULL) {
		/* Every node that counted it (its reports, a move, a declaration) has room now. */
		struct reg_counted was[3];
		size_t k = reg_room_before(r, o, was);
		reg_target_set(r, o, NULL, false);
		o->o_migrating = false;
		o->o_pending = false;
		o->o_pending_fenced = false;
		/*
		 * Its node's reports made before it stopped must not bring it back;
		 * owned by none, the node that declared it: told to start it fresh,
		 * it reports it once it did, whenever the delete came.
		 */
		memcpy(o->o_deleted_on, o->o_node[0] != '\0' ? o->o_node : o->o_resume_node,
		    sizeof(o->o_deleted_on));
		o->o_node[0] = '\0';
		reg_resume_set(r, o, NULL);
		for (size_t i = 0; i < r->r_nnodes; i++) {
			bool listed = reg_node_comp(r->r_nodes[i], component) != NULL;
			reg_node_drop_comp(r->r_nodes[i], component);
			if (listed && o->o_deleted_on[0] == '\0')
				/* Its first report came during the delete, which kept it unowned. */
				reg_copy(o->o_deleted_on, sizeof(o->o_deleted_on), r->r_nodes[i]->n_id);
			if (listed)
				due = reg_room_freed(r, r->r_nodes[i], 0) || due;
		}
		due = reg_room_after(r, o, was, k) || due;
	}
	pthread_mutex_unlock(&r->r_lock);
	reg_room_tell(r, due);
}

void
reg_migrate_end(struct reg *r, const char *component, const char *owner, uint64_t epoch,
    const struct reg_comp *status)
{
	struct reg_owner *o;
	struct reg_counted was[3];
	size_t nwas = 0;
	bool due = false;

	pthread_mutex_lock(&r->r_lock);
	o = reg_owner_find(r, component, NULL);
	if (o == NULL)
		goto out_unlock;
	nwas = reg_room_before(r, o, was);
	o->o_migrating = false;
	if (epoch > o->o_epoch)
		o->o_epoch = epoch;
	if (owner == NULL) {
		if (!o->o_target_settling)
			reg_target_set(r, o, NULL, false); /* a place it held is given up */
		goto out_room;
	}
	reg_target_set(r, o, owner, true);
	o->o_pending = false;
	reg_copy(o->o_node, sizeof(o->o_node), owner);
	o->o_deleted_on[0] = '\0'; /* placed again (ckptctl apply), restored */
	if (strcmp(o->o_resume_node, owner) == 0)
		reg_resume_set(r, o, NULL); /* resumed there */
	for (size_t i = 0; i < r->r_nnodes; i++) {
		struct reg_node *n = r->r_nodes[i];
		struct reg_comp *c;

		if (strcmp(n->n_id, owner) != 0) {
			/* Listed there (its source, a stale copy): that place is free. */
			bool listed = reg_node_comp(n, component) != NULL;
			reg_node_drop_comp(n, component);
			if (listed && reg_room_wanted(r) && !reg_owner_counts_at(r, o, n->n_id))
				due = reg_room_freed(r, n, 0) || due;
			continue;
		}
		if (status == NULL)
			continue;
		c = reg_node_comp(n, component);
		if (c == NULL && n->n_ncomps < LIMIT_NODE_COMPONENTS_MAX) {
			struct reg_comp *a = realloc(n->n_comps, (n->n_ncomps + 1) * sizeof(*a));
			if (a != NULL) {
				n->n_comps = a;
				c = &a[n->n_ncomps++];
			}
		}
		if (c != NULL) {
			*c = *status;
			reg_copy(c->rc_name, sizeof(c->rc_name), component);
			if (c->rc_nrequires == 0) {
				memcpy(c->rc_requires, o->o_requires, sizeof(c->rc_requires));
				c->rc_nrequires = o->o_nrequires;
			}
			if (c->rc_epoch < o->o_epoch)
				c->rc_epoch = o->o_epoch;
		}
	}
out_room:
	due = reg_room_after(r, o, was, nwas) || due;
out_unlock:
	pthread_mutex_unlock(&r->r_lock);
	reg_room_tell(r, due);
}

/* ---- failover ---- */

size_t
reg_failover_mark(struct reg *r, const char *node, const char *reason)
{
	size_t k = 0;
	uint64_t now;

	pthread_mutex_lock(&r->r_lock);
	now = reg_now(r);
	for (size_t i = 0; i < r->r_nowners; i++) {
		struct reg_owner *o = &r->r_owners[i];
		/*
		 * Its owner, or the node told to start it fresh that died before a
		 * heartbeat listed it (it may have run and stored checkpoints).
		 */
		bool owned = strcmp(o->o_node, node) == 0 ||
		    (o->o_node[0] == '\0' && o->o_resume_fresh && strcmp(o->o_resume_node, node) == 0);
		if (o->o_migrating || o->o_pending || !owned)
			continue;
		reg_copy(o->o_node, sizeof(o->o_node), node);
		o->o_pending = true;
		o->o_pending_fenced = false;
		o->o_pending_parked = false;
		reg_copy(o->o_pending_node, sizeof(o->o_pending_node), node);
		reg_copy(o->o_pending_reason, sizeof(o->o_pending_reason), reason);
		o->o_pending_since_unix_ms = util_now_unix_ms();
		o->o_pending_due_ms = now;
		o->o_pending_attempts = 0;
		k++;
	}
	pthread_mutex_unlock(&r->r_lock);
	return k;
}

size_t
reg_failover_due(struct reg *r, uint64_t now_ms, char (*ret_names)[KEY_NAME_MAX + 1], size_t max)
{
	size_t k = 0;

	pthread_mutex_lock(&r->r_lock);
	for (size_t i = 0; i < r->r_nowners && k < max; i++) {
		struct reg_owner *o = &r->r_owners[i];
		if (o->o_pending_room && !o->o_pending) {
			/* Placed, or back on its node: it waits for no room (see Room). */
			o->o_pending_room = false;
			r->r_nroom--;
		}
		if (o->o_pending && !o->o_migrating && !o->o_pending_parked &&
		    o->o_pending_due_ms <= now_ms)
			reg_copy(ret_names[k++], KEY_NAME_MAX + 1, o->o_component);
	}
	pthread_mutex_unlock(&r->r_lock);
	return k;
}

static bool
reg_wait(struct reg *r, const char *component, const char *reason, uint64_t retry_ms, bool room)
{
	struct reg_owner *o;
	bool waits;

	pthread_mutex_lock(&r->r_lock);
	o = reg_owner_find(r, component, NULL);
	waits = o != NULL && o->o_pending;
	if (waits) {
		reg_copy(o->o_pending_reason, sizeof(o->o_pending_reason), reason);
		o->o_pending_attempts++;
		o->o_pending_parked = retry_ms == 0;
		o->o_pending_due_ms = reg_now(r) + retry_ms;
		if (o->o_pending_room != room)
			r->r_nroom += room ? 1 : (size_t)-1;
		o->o_pending_room = room;
		/* The moves held until now were there when it found no room. */
		o->o_pending_room_seq = r->r_hold_seq;
		/* And the memory free now: more than that wakes it (reg_room_grew()). */
		if (room) {
			o->o_pending_room_need = reg_owner_need(r, o);
			reg_room_mem_mark(r);
		}
	}
	pthread_mutex_unlock(&r->r_lock);
	return waits;
}

bool
reg_failover_wait(struct reg *r, const char *component, const char *reason, uint64_t retry_ms)
{
	return reg_wait(r, component, reason, retry_ms, false);
}

bool
reg_failover_wait_room(struct reg *r, const char *component, const char *reason,
    uint64_t retry_ms)
{
	return reg_wait(r, component, reason, retry_ms, true);
}

void
reg_failover_clear(struct reg *r, const char *component)
{
	struct reg_owner *o;

	pthread_mutex_lock(&r->r_lock);
	o = reg_owner_find(r, component, NULL);
	if (o != NULL)
		o->o_pending = false;
	pthread_mutex_unlock(&r->r_lock);
}

void
reg_failover_kick(struct reg *r)
{
	uint64_t now;

	pthread_mutex_lock(&r->r_lock);
	now = reg_now(r);
	for (size_t i = 0; i < r->r_nowners; i++) {
		struct reg_owner *o = &r->r_owners[i];
		if (o->o_pending) {
			o->o_pending_parked = false;
			o->o_pending_due_ms = now;
		}
		o->o_pending_room = false;
	}
	r->r_nroom = 0;
	pthread_mutex_unlock(&r->r_lock);
}

bool
reg_fence_mark(struct reg *r, const struct reg_ckpt *c, char *ret_owner, uint64_t *ret_epoch)
{
	const struct reg_comp *rc;
	struct reg_owner *o;
	struct reg_node *n;
	bool fenced = false;

	pthread_mutex_lock(&r->r_lock);
	o = reg_owner_find(r, c->rk_component, NULL);
	if (o == NULL || o->o_migrating || o->o_node[0] == '\0' || c->rk_epoch <= o->o_epoch)
		goto out_unlock;
	n = reg_node_find(r, o->o_node, NULL);
	rc = n != NULL && n->n_up ? reg_node_comp(n, c->rk_component) : NULL;
	if (rc == NULL || rc->rc_epoch >= c->rk_epoch)
		goto out_unlock;
	fenced = true;
	reg_copy(ret_owner, KEY_NAME_MAX + 1, o->o_node);
	*ret_epoch = o->o_epoch;
	o->o_pending = true;
	o->o_pending_fenced = true;
	o->o_pending_from = *c;
	o->o_pending_parked = false;
	reg_copy(o->o_pending_node, sizeof(o->o_pending_node), o->o_node);
	snprintf(o->o_pending_reason, sizeof(o->o_pending_reason),
	    "%s on %s (epoch %llu) was fenced by %s/%s@%llu at epoch %llu: restoring it from that "
	    "checkpoint", c->rk_component, o->o_node, (unsigned long long)o->o_epoch, c->rk_node,
	    c->rk_component, (unsigned long long)c->rk_seq, (unsigned long long)c->rk_epoch);
	o->o_pending_since_unix_ms = util_now_unix_ms();
	o->o_pending_due_ms = reg_now(r);
	o->o_pending_attempts = 0;
out_unlock:
	pthread_mutex_unlock(&r->r_lock);
	return fenced;
}

bool
reg_failover_wanted(struct reg *r, const char *component)
{
	struct reg_owner *o;
	struct reg_node *n;
	bool wanted = false;

	pthread_mutex_lock(&r->r_lock);
	o = reg_owner_find(r, component, NULL);
	if (o != NULL && o->o_pending) {
		const struct reg_comp *c;
		n = reg_node_find(r, o->o_node, NULL);
		c = n != NULL ? reg_node_comp(n, component) : NULL;
		wanted = n == NULL || !n->n_up || c == NULL || reg_comp_failed(c) ||
		    (o->o_pending_fenced && c->rc_epoch < o->o_epoch);
		if (!wanted)
			o->o_pending = false;
	}
	pthread_mutex_unlock(&r->r_lock);
	return wanted;
}

int
reg_resume_target(struct reg *r, const char *component, char ret_node[KEY_NAME_MAX + 1])
{
	struct reg_owner *o;
	struct reg_node *n;
	int rv = -ENOENT;

	pthread_mutex_lock(&r->r_lock);
	o = reg_owner_find(r, component, NULL);
	if (o != NULL && o->o_pending && o->o_resume_node[0] != '\0' && !o->o_resume_fresh &&
	    !o->o_resume_over) {
		n = reg_node_find(r, o->o_resume_node, NULL);
		if (n != NULL && n->n_up) {
			memcpy(ret_node, o->o_resume_node, KEY_NAME_MAX + 1);
			rv = 0;
		}
	}
	pthread_mutex_unlock(&r->r_lock);
	return rv;
}

int
reg_resume_fresh(struct reg *r, const char *component)
{
	struct reg_owner *o;
	int rv = -ENOENT;

	pthread_mutex_lock(&r->r_lock);
	o = reg_owner_find(r, component, NULL);
	if (o != NULL && o->o_resume_node[0] != '\0' && !o->o_resume_over) {
		o->o_resume_fresh = true;
		o->o_pending = false;
		rv = 0;
	}
	pthread_mutex_unlock(&r->r_lock);
	return rv;
}

/* ---- cordon and drain ---- */

int
reg_cordon(struct reg *r, const char *node, bool cordoned, bool *ret_was)
{
	struct reg_node *n;
	int rv = -ENOENT;

	pthread_mutex_lock(&r->r_lock);
	n = reg_node_find(r, node, NULL);
	if (n != NULL) {
		if (ret_was != NULL)
			*ret_was = n->n_cordoned;
		n->n_cordoned = cordoned;
		rv = 0;
	}
	pthread_mutex_unlock(&r->r_lock);
	return rv;
}

int
reg_node_owned(struct reg *r, const char *node, char (**ret_names)[KEY_NAME_MAX + 1],
    size_t *ret_n)
{
	char (*names)[KEY_NAME_MAX + 1] = NULL;
	size_t k = 0;
	int rv = 0;

	pthread_mutex_lock(&r->r_lock);
	if (reg_node_find(r, node, NULL) == NULL) {
		rv = -ENOENT;
		goto out_unlock;
	}
	names = malloc((r->r_nowners > 0 ? r->r_nowners : 1) * sizeof(*names));
	if (names == NULL) {
		rv = -ENOMEM;
		goto out_unlock;
	}
	for (size_t i = 0; i < r->r_nowners; i++)
		if (strcmp(r->r_owners[i].o_node, node) == 0)
			reg_copy(names[k++], KEY_NAME_MAX + 1, r->r_owners[i].o_component);
out_unlock:
	pthread_mutex_unlock(&r->r_lock);
	if (rv != 0)
		return rv;
	*ret_names = names;
	*ret_n = k;
	return 0;
}

#include "comp.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "util.h"

struct comp {
	comp_name c_name;
	enum comp_state c_state;
	const struct drv_ops *c_ops; /* NULL while RESTORING (but a restart's) */
	struct drv_inst *c_inst;     /* NULL while RESTORING or FAILED */
	pthread_mutex_t c_mu;        /* held while the driver works on c_inst */
	struct comp_seq c_seq;
	uint64_t c_last_seq; /* last checkpoint stored (or restored from), 0: none */
	uint64_t c_last_unix_ms; /* when c_last_seq was stored (made, if restored), 0: unknown */
	uint32_t c_restarts; /* restarts after a crash (supervision) */
	uint32_t c_crashes;  /* crashes taken out of service (comp_crash_take()) */
	bool c_restarting;   /* RESTORING after a crash: reported, waiting for its restart */
	char c_reason[LIMIT_REASON_MAX]; /* FAILED: why */
	bool c_busy;         /* a checkpoint is in progress */
	bool c_restored;
	bool c_revoked;      /* leaves the table when its checkpoint ends */
	/*
	 * The checkpoint in progress reads the driver's own bytes (one region):
	 * c_mu stays held, and d_ckpt_done() waits, until comp_ckpt_end().
	 */
	bool c_held;
	struct comp_ref c_from;
	uint8_t c_state_sha256[SHA_LEN];
	struct comp_req c_requires[LIMIT_REQUIRES_MAX];
	size_t c_nrequires;
	/*
	 * Hints (drv.h) gathered since the last checkpoint stored from here:
	 * c_hints covers every byte changed since the state whose digest is
	 * c_hints_base while c_hints_ok. Owned by whoever has the component busy.
	 */
	struct drv_range *c_hints;
	size_t c_nhints, c_hints_cap;
	bool c_hints_ok;
	uint8_t c_hints_base[SHA_LEN];
	size_t c_hints_len;  /* length of the last state copied out */
};

struct comp_table {
	pthread_mutex_t t_mu;
	pthread_cond_t t_idle; /* a component stopped being busy or was removed */
	struct comp *t_comps[COMP_MAX];
	size_t t_count;
	size_t t_max;          /* comp_table_set_max(), <= COMP_MAX */
};

static const char *const comp_state_names[] = {
	[COMP_RESTORING] = "restoring",
	[COMP_RUNNING] = "running",
	[COMP_STOPPED] = "stopping",
	[COMP_FAILED] = "failed",
};

const char *
comp_state_name(enum comp_state s)
{
	return comp_state_names[s];
}

int
comp_table_new(struct comp_table **ret_table)
{
	struct comp_table *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	pthread_mutex_init(&t->t_mu, NULL);
	pthread_cond_init(&t->t_idle, NULL);
	t->t_max = COMP_MAX;
	*ret_table = t;
	return 0;
}

void
comp_table_set_max(struct comp_table *t, size_t max)
{
	pthread_mutex_lock(&t->t_mu);
	t->t_max = max != 0 && max < COMP_MAX ? max : COMP_MAX;
	pthread_mutex_unlock(&t->t_mu);
}

size_t
comp_table_max(struct comp_table *t)
{
	size_t max;

	pthread_mutex_lock(&t->t_mu);
	max = t->t_max;
	pthread_mutex_unlock(&t->t_mu);
	return max;
}

void
comp_snap_clear(struct comp_snap *snap)
{
	free(snap->cp_buf);
	free(snap->cp_changed);
	snap->cp_buf = NULL;
	snap->cp_data = NULL;
	snap->cp_changed = NULL;
}

/* Stops and frees c, which is out of the table. No lock held. */
static void
comp_destroy(struct comp *c, unsigned grace_ms)
{
	if (c->c_inst != NULL) {
		pthread_mutex_lock(&c->c_mu);
		(void)c->c_ops->d_stop(c->c_inst, grace_ms);
		pthread_mutex_unlock(&c->c_mu);
		c->c_ops->d_free(c->c_inst);
	}
	pthread_mutex_destroy(&c->c_mu);
	free(c->c_hints);
	free(c);
}

void
comp_table_free(struct comp_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->t_count; i++)
		comp_destroy(t->t_comps[i], 0);
	pthread_cond_destroy(&t->t_idle);
	pthread_mutex_destroy(&t->t_mu);
	free(t);
}

/* Index of name, or -1. Called with t_mu held. */
static ssize_t
comp_find(const struct comp_table *t, const char *name)
{
	for (size_t i = 0; i < t->t_count; i++)
		if (strcmp(t->t_comps[i]->c_name, name) == 0)
			return (ssize_t)i;
	return -1;
}

/* Inserts a new entry for name. Called with t_mu held. */
static int
comp_insert(struct comp_table *t, const char *name, struct comp **ret_comp)
{
	struct comp *c;

	if (key_name_check(name) != 0)
		return -EINVAL;
	if (comp_find(t, name) >= 0)
		return -EEXIST;
	if (t->t_count >= t->t_max)
		return -EUSERS;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	strcpy(c->c_name, name);
	pthread_mutex_init(&c->c_mu, NULL);
	t->t_comps[t->t_count++] = c;
	*ret_comp = c;
	return 0;
}

int
comp_add(struct comp_table *t, const char *name, const struct drv_ops *ops,
    struct drv_inst *inst, uint64_t epoch)
{
	struct comp *c;
	int rv;

	pthread_mutex_lock(&t->t_mu);
	rv = comp_insert(t, name, &c);
	if (rv == 0) {
		c->c_state = COMP_RUNNING;
		c->c_ops = ops;
		c->c_inst = inst;
		c->c_seq.cs_next = 1;
		c->c_seq.cs_epoch = epoch;
		c->c_seq.cs_known = false;
	}
	pthread_mutex_unlock(&t->t_mu);
	return rv;
}

int
comp_reserve(struct comp_table *t, const char *name)
{
	struct comp *c;
	int rv;

	pthread_mutex_lock(&t->t_mu);
	rv = comp_insert(t, name, &c);
	if (rv == 0)
		c->c_state = COMP_RESTORING;
	pthread_mutex_unlock(&t->t_mu);
	return rv;
}

int
comp_restored(struct comp_table *t, const char *name, const struct drv_ops *ops,
    struct drv_inst *inst, uint64_t epoch, const struct comp_ref *from,
    const uint8_t state_sha256[SHA_LEN])
{
	struct comp *c;
	ssize_t i;
	int rv = 0;

	pthread_mutex_lock(&t->t_mu);
	i = comp_find(t, name);
	if (i < 0 || t->t_comps[i]->c_state != COMP_RESTORING) {
		rv = -ENOENT;
		goto out;
	}
	c = t->t_comps[i];
	c->c_ops = ops;
	c->c_inst = inst;
	c->c_state = COMP_RUNNING;
	c->c_seq.cs_next = from->cr_seq + 1;
	c->c_seq.cs_epoch = epoch;
	c->c_seq.cs_known = true;
	c->c_seq.cs_owned = true;
	c->c_last_seq = from->cr_seq;
	c->c_last_unix_ms = from->cr_unix_ms;
	c->c_restored = true;
	c->c_from = *from;
	memcpy(c->c_state_sha256, state_sha256, SHA_LEN);
out:
	pthread_mutex_unlock(&t->t_mu);
	return rv;
}

int
comp_remove(struct comp_table *t, const char *name, unsigned grace_ms)
{
	struct comp *c = NULL;
	ssize_t i;

	pthread_mutex_lock(&t->t_mu);
	while ((i = comp_find(t, name)) >= 0 && t->t_comps[i]->c_busy)
		pthread_cond_wait(&t->t_idle, &t->t_mu);
	if (i >= 0) {
		c = t->t_comps[i];
		t->t_comps[i] = t->t_comps[--t->t_count];
		t->t_comps[t->t_count] = NULL;
		pthread_cond_broadcast(&t->t_idle);
	}
	pthread_mutex_unlock(&t->t_mu);
	if (c == NULL)
		return -ENOENT;
	comp_destroy(c, grace_ms);
	return 0;
}

/* Unlinks entry i and returns it. Called with t_mu held. */
static struct comp *
comp_unlink(struct comp_table *t, size_t i)
{
	struct comp *c = t->t_comps[i];

	t->t_comps[i] = t->t_comps[--t->t_count];
	t->t_comps[t->t_count] = NULL;
	pthread_cond_broadcast(&t->t_idle);
	return c;
}

int
comp_revoke(struct comp_table *t, const char *name)
{
	struct comp *gone = NULL;
	ssize_t i;
	int rv = -ENOENT;

	pthread_mutex_lock(&t->t_mu);
	i = comp_find(t, name);
	if (i >= 0) {
		struct comp *c = t->t_comps[i];
		rv = 0;
		if (c->c_busy) {
			c->c_revoked = true;
			c->c_state = COMP_STOPPED;
		} else {
			gone = comp_unlink(t, (size_t)i);
		}
	}
	pthread_mutex_unlock(&t->t_mu);
	/* Another node runs it now: no grace. */
	if (gone != NULL)
		comp_destroy(gone, 0);
	return rv;
}

int
comp_set_requires(struct comp_table *t, const char *name, const struct comp_req *reqs, size_t n)
{
	ssize_t i;
	int rv = -ENOENT;

	if (n > LIMIT_REQUIRES_MAX)
		return -EINVAL;
	pthread_mutex_lock(&t->t_mu);
	i = comp_find(t, name);
	if (i >= 0) {
		if (n > 0)
			memcpy(t->t_comps[i]->c_requires, reqs, n * sizeof(*reqs));
		t->t_comps[i]->c_nrequires = n;
		rv = 0;
	}
	pthread_mutex_unlock(&t->t_mu);
	return rv;
}

void
comp_note_stored(struct comp_table *t, const char *name, uint64_t seq)
{
	ssize_t i;

	pthread_mutex_lock(&t->t_mu);
	i = comp_find(t, name);
	if (i >= 0) {
		struct comp *c = t->t_comps[i];
		if (seq > c->c_last_seq) {
			c->c_last_seq = seq;
			c->c_last_unix_ms = util_now_unix_ms();
		}
		if (c->c_seq.cs_known && c->c_seq.cs_next <= seq)
			c->c_seq.cs_next = seq + 1;
	}
	pthread_mutex_unlock(&t->t_mu);
}

/* from -> to for name; -ENOENT unless name is in state from. */
static int
comp_transition(struct comp_table *t, const char *name, enum comp_state from, enum comp_state to)
{
	ssize_t i;
	int rv = -ENOENT;

	pthread_mutex_lock(&t->t_mu);
	i = comp_find(t, name);
	if (i >= 0 && t->t_comps[i]->c_state == from) {
		t->t_comps[i]->c_state = to;
		rv = 0;
	}
	pthread_mutex_unlock(&t->t_mu);
	return rv;
}

int
comp_stop(struct comp_table *t, const char *name)
{
	return comp_transition(t, name, COMP_RUNNING, COMP_STOPPED);
}

int
comp_resume(struct comp_table *t, const char *name)
{
	return comp_transition(t, name, COMP_STOPPED, COMP_RUNNING);
}

bool
comp_is_running(struct comp_table *t, const char *name)
{
	ssize_t i;
	bool running;

	pthread_mutex_lock(&t->t_mu);
	i = comp_find(t, name);
	running = i >= 0 && t->t_comps[i]->c_state == COMP_RUNNING;
	pthread_mutex_unlock(&t->t_mu);
	return running;
}

void
comp_tick_all(struct comp_table *t)
{
	pthread_mutex_lock(&t->t_mu);
	for (size_t i = 0; i < t->t_count; i++) {
		struct comp *c = t->t_comps[i];
		if (c->c_state != COMP_RUNNING || c->c_ops->d_tick == NULL)
			continue;
		/* Busy (its state is being copied): this tick is skipped, never waited for. */
		if (pthread_mutex_trylock(&c->c_mu) != 0)
			continue;
		c->c_ops->d_tick(c->c_inst);
		pthread_mutex_unlock(&c->c_mu);
	}
	pthread_mutex_unlock(&t->t_mu);
}

int
comp_running_names(struct comp_table *t, comp_name **ret_names, size_t *ret_count)
{
	comp_name *names;
	size_t n = 0;

	pthread_mutex_lock(&t->t_mu);
	names = malloc((t->t_count > 0 ? t->t_count : 1) * sizeof(*names));
	if (names != NULL) {
		for (size_t i = 0; i < t->t_count; i++)
			if (t->t_comps[i]->c_state == COMP_RUNNING)
				strcpy(names[n++], t->t_comps[i]->c_name);
	}
	pthread_mutex_unlock(&t->t_mu);
	if (names == NULL)
		return -ENOMEM;
	*ret_names = names;
	*ret_count = n;
	return 0;
}

/* Copies c's state out with its own lock held; c is busy, t_mu not held. */
static int
comp_range_cmp(const void *a_, const void *b_)
{
	const struct drv_range *a = a_, *b = b_;
	return a->rn_off < b->rn_off ? -1 : a->rn_off > b->rn_off;
}

/* Appends a range to c's hints; false when they grow past COMP_HINTS_MAX. */
static bool
comp_hints_add(struct comp *c, uint64_t off, uint64_t len)
{
	if (len == 0)
		return true;
	if (c->c_nhints == c->c_hints_cap) {
		size_t m = 0, cap;
		struct drv_range *a;

		/* Sorted and merged first: ranges touched again cost nothing. */
		if (c->c_nhints != 0)
			qsort(c->c_hints, c->c_nhints, sizeof(*c->c_hints), comp_range_cmp);
		for (size_t i = 0; i < c->c_nhints; i++) {
			struct drv_range r = c->c_hints[i];
			if (m > 0 && r.rn_off <= c->c_hints[m - 1].rn_off + c->c_hints[m - 1].rn_len) {
				struct drv_range *last = &c->c_hints[m - 1];
				if (r.rn_off + r.rn_len > last->rn_off + last->rn_len)
					last->rn_len = r.rn_off + r.rn_len - last->rn_off;
				continue;
			}
			c->c_hints[m++] = r;
		}
		c->c_nhints = m;
		if (m >= COMP_HINTS_MAX)
			return false;
		cap = c->c_hints_cap != 0 ? c->c_hints_cap : 64;
		if (2 * m > cap)
			cap = 2 * cap < COMP_HINTS_MAX ? 2 * cap : COMP_HINTS_MAX;
		if (cap != c->c_hints_cap) {
			a = realloc(c->c_hints, cap * sizeof(*a));
			if (a == NULL)
				return false;
			c->c_hints = a;
			c->c_hints_cap = cap;
		}
	}
	c->c_hints[c->c_nhints].rn_off = off;
	c->c_hints[c->c_nhints++].rn_len = len;
	return true;
}

/*
 * Adds what the driver said changed (ck) to c's hints and hands a copy to
 * snap when they are usable: a driver without hints, too many ranges or no
 * memory leave the state to be read whole until a checkpoint is stored.
 */
static void
comp_hints_take(struct comp *c, const struct drv_ckpt *ck, struct comp_snap *snap)
{
	bool ok = c->c_hints_ok && ck->ck_hinted;

	/* Clipped to the state (bytes past it are new in the next one anyway). */
	for (size_t i = 0; ok && i < ck->ck_nchanged; i++) {
		const struct drv_range *r = &ck->ck_changed[i];
		if (r->rn_off < ck->ck_len)
			ok = comp_hints_add(c, r->rn_off, r->rn_len < ck->ck_len - r->rn_off ? r->rn_len
			    : ck->ck_len - r->rn_off);
	}
	/* Bytes past the end of the previous state are new. */
	if (ok && ck->ck_len > c->c_hints_len)
		ok = comp_hints_add(c, c->c_hints_len, ck->ck_len - c->c_hints_len);
	c->c_hints_len = ck->ck_len;
	c->c_hints_ok = ok;
	if (!ok) {
		c->c_nhints = 0;
		return;
	}
	snap->cp_changed = malloc((c->c_nhints != 0 ? c->c_nhints : 1) * sizeof(*snap->cp_changed));
	if (snap->cp_changed == NULL)
		return;
	if (c->c_nhints != 0)
		memcpy(snap->cp_changed, c->c_hints, c->c_nhints * sizeof(*c->c_hints));
	snap->cp_nchanged = c->c_nhints;
	snap->cp_hinted = true;
	memcpy(snap->cp_base_sha256, c->c_hints_base, SHA_LEN);
}

/*
 * Copies c's state out, or, when the driver gives it as one region, lends
 * it: the driver's bytes are read where they lie (a state is not in memory
 * twice) and c_mu stays held until comp_ckpt_end(), so they do not change
 * meanwhile (ticks are skipped, as during a copy). Several regions are
 * flattened into one buffer.
 */
static int
comp_copy_out(struct comp *c, bool final, struct comp_snap *snap, char *err, size_t errlen)
{
	struct drv_ckpt ck = { 0 };
	bool held = false;
	int rv;

	pthread_mutex_lock(&c->c_mu);
	rv = c->c_ops->d_checkpoint(c->c_inst, final, &ck, err, errlen);
	if (rv == 0 && ck.ck_buf == NULL && ck.ck_nregions == 1 &&
	    ck.ck_regions[0].rg_len > c->c_ops->d_state_max) {
		rv = -EFBIG;
		snprintf(err, errlen, "its state is larger than %llu bytes",
		    (unsigned long long)c->c_ops->d_state_max);
	} else if (rv == 0 && ck.ck_buf == NULL && ck.ck_nregions == 1) {
		held = true;
		snap->cp_data = ck.ck_regions[0].rg_base;
		ck.ck_len = ck.ck_regions[0].rg_len;
	} else if (rv == 0 && ck.ck_buf == NULL) {
		rv = drv_flatten(&ck, c->c_ops->d_state_max, &ck.ck_buf, &ck.ck_len);
		if (rv == -EFBIG)
			snprintf(err, errlen, "its state is larger than %llu bytes",
			    (unsigned long long)c->c_ops->d_state_max);
	}
	if (rv == 0 && !held && c->c_ops->d_ckpt_done != NULL)
		c->c_ops->d_ckpt_done(c->c_inst);
	c->c_held = held;
	if (!held)
		pthread_mutex_unlock(&c->c_mu);
	if (rv != 0) {
		/* The driver may have moved its baseline past changes now lost. */
		c->c_hints_ok = false;
		c->c_nhints = 0;
		free(ck.ck_buf);
		free(ck.ck_changed);
		return rv;
	}
	if (!held)
		snap->cp_data = ck.ck_buf;
	snap->cp_buf = ck.ck_buf;
	snap->cp_len = ck.ck_len;
	comp_hints_take(c, &ck, snap);
	free(ck.ck_changed);
	snap->cp_kind = c->c_ops->d_kind;
	return 0;
}

/* Ends the loan of comp_copy_out(), if any. */
static void
comp_copy_done(struct comp *c)
{
	if (!c->c_held)
		return;
	c->c_held = false;
	if (c->c_ops->d_ckpt_done != NULL)
		c->c_ops->d_ckpt_done(c->c_inst);
	pthread_mutex_unlock(&c->c_mu);
}

/* c is no longer busy (its checkpoint ended); frees it if it was revoked meanwhile. */
static void
comp_unbusy(struct comp_table *t, struct comp *c)
{
	struct comp *gone = NULL;
	ssize_t i;

	pthread_mutex_lock(&t->t_mu);
	c->c_busy = false;
	pthread_cond_broadcast(&t->t_idle);
	if (c->c_revoked) {
		i = comp_find(t, c->c_name);
		if (i >= 0 && t->t_comps[i] == c)
			gone = comp_unlink(t, (size_t)i);
	}
	pthread_mutex_unlock(&t->t_mu);
	if (gone != NULL)
		comp_destroy(gone, 0);
}

int
comp_ckpt_begin(struct comp_table *t, const char *name, bool final, struct comp_snap *ret_snap,
    char *err, size_t errlen)
{
	struct comp_snap snap = { 0 };
	struct comp *c;
	ssize_t i;
	int rv = 0;

	pthread_mutex_lock(&t->t_mu);
	while ((i = comp_find(t, name)) >= 0 && t->t_comps[i]->c_busy)
		pthread_cond_wait(&t->t_idle, &t->t_mu);
	if (i < 0) {
		pthread_mutex_unlock(&t->t_mu);
		return -ENOENT;
	}
	c = t->t_comps[i];
	if (c->c_state != COMP_RUNNING && !(final && c->c_state == COMP_STOPPED)) {
		pthread_mutex_unlock(&t->t_mu);
		return -ENOENT;
	}
	/* Busy: c stays in the table and alive until comp_ckpt_end(). */
	c->c_busy = true;
	snap.cp_seq = c->c_seq;
	pthread_mutex_unlock(&t->t_mu);

	/* The copy runs without the table's lock: statuses and heartbeats go on. */
	rv = comp_copy_out(c, final, &snap, err, errlen);
	if (rv != 0) {
		comp_unbusy(t, c);
		return rv;
	}
	*ret_snap = snap;
	return 0;
}

void
comp_ckpt_stored(struct comp_table *t, const char *name, const uint8_t sha256[SHA_LEN])
{
	ssize_t i;

	pthread_mutex_lock(&t->t_mu);
	i = comp_find(t, name);
	if (i >= 0 && t->t_comps[i]->c_busy) {
		struct comp *c = t->t_comps[i];
		c->c_hints_ok = true;
		c->c_nhints = 0;
		memcpy(c->c_hints_base, sha256, SHA_LEN);
	}
	pthread_mutex_unlock(&t->t_mu);
}

void
comp_ckpt_end(struct comp_table *t, const char *name, const struct comp_seq *seq,
    uint64_t stored_seq)
{
	struct comp *c = NULL;
	ssize_t i;

	pthread_mutex_lock(&t->t_mu);
	i = comp_find(t, name);
	if (i >= 0) {
		c = t->t_comps[i];
		c->c_seq = *seq;
		if (stored_seq != 0) {
			c->c_last_seq = stored_seq;
			c->c_last_unix_ms = util_now_unix_ms();
		}
	}
	pthread_mutex_unlock(&t->t_mu);
	if (c != NULL) {
		comp_copy_done(c);
		comp_unbusy(t, c);
	}
}

/* ---- supervision ---- */

/* Whether c runs and its driver says its process crashed. Called with t_mu held. */
static bool
comp_has_crashed(const struct comp *c)
{
	struct drv_status st;

	if (c->c_state != COMP_RUNNING || c->c_inst == NULL)
		return false;
	c->c_ops->d_status(c->c_inst, &st); /* never blocks (drv.h) */
	return st.ds_run == DRV_RUN_CRASHED;
}

int
comp_crashed_names(struct comp_table *t, comp_name **ret_names, size_t *ret_count)
{
	comp_name *names;
	size_t n = 0;

	pthread_mutex_lock(&t->t_mu);
	names = malloc((t->t_count > 0 ? t->t_count : 1) * sizeof(*names));
	if (names != NULL) {
		for (size_t i = 0; i < t->t_count; i++)
			if (comp_has_crashed(t->t_comps[i]))
				strcpy(names[n++], t->t_comps[i]->c_name);
	}
	pthread_mutex_unlock(&t->t_mu);
	if (names == NULL)
		return -ENOMEM;
	*ret_names = names;
	*ret_count = n;
	return 0;
}

bool
comp_crash_pending(struct comp_table *t, const char *name)
{
	bool pending = false;
	ssize_t i;

	pthread_mutex_lock(&t->t_mu);
	i = comp_find(t, name);
	if (i >= 0 && comp_has_crashed(t->t_comps[i]) && t->t_comps[i]->c_ops->d_pending != NULL)
		pending = t->t_comps[i]->c_ops->d_pending(t->t_comps[i]->c_inst);
	pthread_mutex_unlock(&t->t_mu);
	return pending;
}

int
comp_crash_take(struct comp_table *t, const char *name, const struct drv_ops **ret_ops,
    struct drv_inst **ret_inst, struct drv_status *ret_status)
{
	struct drv_status st = { 0 };
	struct comp *c;
	ssize_t i;
	int rv = 0;

	pthread_mutex_lock(&t->t_mu);
	i = comp_find(t, name);
	if (i < 0 || !comp_has_crashed(t->t_comps[i])) {
		rv = -ENOENT;
		goto out;
	}
	c = t->t_comps[i];
	if (c->c_busy) {
		rv = -EBUSY;
		goto out;
	}
	c->c_ops->d_status(c->c_inst, &st);
	/* c_ops stays: the restart is into the same driver. */
	*ret_ops = c->c_ops;
	*ret_inst = c->c_inst;
	*ret_status = st;
	c->c_inst = NULL;
	c->c_state = COMP_RESTORING;
	c->c_restarting = true;
	c->c_crashes++;
out:
	pthread_mutex_unlock(&t->t_mu);
	return rv;
}

/* The component name waiting for its restart, or NULL. Called with t_mu held. */
static struct comp *
comp_waiting(struct comp_table *t, const char *name)
{
	ssize_t i = comp_find(t, name);

	if (i < 0 || t->t_comps[i]->c_state != COMP_RESTORING || !t->t_comps[i]->c_restarting)
		return NULL;
	return t->t_comps[i];
}

int
comp_restarted(struct comp_table *t, const char *name, struct drv_inst *inst,
    const struct comp_ref *from, const uint8_t state_sha256[SHA_LEN])
{
	struct comp *c;
	int rv = 0;

	pthread_mutex_lock(&t->t_mu);
	c = comp_waiting(t, name);
	if (c == NULL) {
		rv = -ENOENT;
		goto out;
	}
	c->c_inst = inst;
	c->c_state = COMP_RUNNING;
	c->c_restarting = false;
	c->c_restarts++;
	if (from != NULL) {
		/* Its epoch stays: this node still owns it. */
		if (c->c_seq.cs_next <= from->cr_seq)
			c->c_seq.cs_next = from->cr_seq + 1;
		c->c_restored = true;
		c->c_from = *from;
		memcpy(c->c_state_sha256, state_sha256, SHA_LEN);
	}
out:
	pthread_mutex_unlock(&t->t_mu);
	return rv;
}

int
comp_fail(struct comp_table *t, const char *name, const char *reason)
{
	struct comp *c;
	int rv = 0;

	pthread_mutex_lock(&t->t_mu);
	c = comp_waiting(t, name);
	if (c == NULL) {
		rv = -ENOENT;
		goto out;
	}
	c->c_state = COMP_FAILED;
	c->c_restarting = false;
	snprintf(c->c_reason, sizeof(c->c_reason), "%s", reason);
out:
	pthread_mutex_unlock(&t->t_mu);
	return rv;
}

/* One status in arena. Called with t_mu held. */
static Ckpt__V1__ComponentStatus *
comp_status_make(const struct comp *c, struct arena *arena)
{
	Ckpt__V1__ComponentStatus *s = arena_alloc(arena, sizeof(*s));
	Ckpt__V1__CheckpointRef *r;

	if (s == NULL)
		return NULL;
	ckpt__v1__component_status__init(s);
	s->name = arena_strdup(arena, c->c_name);
	s->state = (char *)comp_state_name(c->c_state);
	s->kind = c->c_ops != NULL ? (char *)c->c_ops->d_kind : "";
	s->last_seq = c->c_last_seq;
	s->epoch = c->c_seq.cs_epoch;
	s->restarts = c->c_restarts;
	s->crashes = c->c_crashes;
	s->last_unix_ms = c->c_last_unix_ms;
	if (c->c_inst != NULL) {
		struct drv_status st;
		c->c_ops->d_status(c->c_inst, &st); /* never blocks (drv.h) */
		s->state_bytes = st.ds_state_bytes;
		if (st.ds_run == DRV_RUN_STARTING || st.ds_run == DRV_RUN_RUNNING)
			s->pid = st.ds_pid > 0 ? (uint32_t)st.ds_pid : 0;
	}
	if (c->c_state == COMP_FAILED)
		s->reason = arena_strdup(arena, c->c_reason);
	if (s->name == NULL || s->reason == NULL)
		return NULL;
	if (c->c_nrequires > 0) {
		s->requires = arena_alloc(arena, c->c_nrequires * sizeof(*s->requires));
		if (s->requires == NULL)
			return NULL;
		for (size_t i = 0; i < c->c_nrequires; i++) {
			Ckpt__V1__Label *l = arena_alloc(arena, sizeof(*l));
			if (l == NULL)
				return NULL;
			ckpt__v1__label__init(l);
			l->key = arena_strdup(arena, c->c_requires[i].cq_key);
			l->value = arena_strdup(arena, c->c_requires[i].cq_value);
			if (l->key == NULL || l->value == NULL)
				return NULL;
			s->requires[i] = l;
		}
		s->n_requires = c->c_nrequires;
	}
	if (c->c_restored) {
		r = arena_alloc(arena, sizeof(*r));
		if (r == NULL)
			return NULL;
		ckpt__v1__checkpoint_ref__init(r);
		r->node = arena_strdup(arena, c->c_from.cr_node);
		r->component = arena_strdup(arena, c->c_from.cr_component);
		r->seq = c->c_from.cr_seq;
		r->sha256.data = arena_memdup(arena, c->c_from.cr_sha256, SHA_LEN);
		r->sha256.len = SHA_LEN;
		s->restored_from = r;
		s->state_sha256.data = arena_memdup(arena, c->c_state_sha256, SHA_LEN);
		s->state_sha256.len = SHA_LEN;
		if (r->node == NULL || r->component == NULL || r->sha256.data == NULL ||
		    s->state_sha256.data == NULL)
			return NULL;
	}
	return s;
}

int
comp_status_all(struct comp_table *t, struct arena *arena, bool running_only,
    Ckpt__V1__ComponentStatus ***ret_list, size_t *ret_count)
{
	Ckpt__V1__ComponentStatus **list;
	size_t n = 0;
	int rv = 0;

	pthread_mutex_lock(&t->t_mu);
	list = arena_alloc(arena, (t->t_count > 0 ? t->t_count : 1) * sizeof(*list));
	if (list == NULL) {
		rv = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < t->t_count; i++) {
		const struct comp *c = t->t_comps[i];
		if (running_only && c->c_state != COMP_RUNNING && c->c_state != COMP_FAILED &&
		    !(c->c_state == COMP_RESTORING && c->c_restarting))
			continue;
		list[n] = comp_status_make(c, arena);
		if (list[n] == NULL) {
			rv = -ENOMEM;
			goto out;
		}
		n++;
	}
	*ret_list = list;
	*ret_count = n;
out:
	pthread_mutex_unlock(&t->t_mu);
	return rv;
}

int
comp_status_one(struct comp_table *t, struct arena *arena, const char *name,
    Ckpt__V1__ComponentStatus **ret_status)
{
	Ckpt__V1__ComponentStatus *s;
	ssize_t i;
	int rv = 0;

	pthread_mutex_lock(&t->t_mu);
	i = comp_find(t, name);
	if (i < 0) {
		rv = -ENOENT;
		goto out;
	}
	s = comp_status_make(t->t_comps[i], arena);
	if (s == NULL) {
		rv = -ENOMEM;
		goto out;
	}
	*ret_status = s;
out:
	pthread_mutex_unlock(&t->t_mu);
	return rv;
}

/* Resume: the components this agent was started with, declared to the manager until they run. */

#include "agent_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"

static void
decl_clear(struct agent_decl *d)
{
	for (size_t i = 0; i < d->ad_nsets; i++) {
		free((char *)d->ad_sets[i].st_key);
		free((char *)d->ad_sets[i].st_value);
	}
	free(d->ad_sets);
	d->ad_sets = NULL;
	d->ad_nsets = 0;
}

int
decl_add(struct agent *a, const char *kind, const char *name, const struct drv_setting *sets,
    size_t nsets, const struct exec_conf *xc, const struct comp_req *reqs, size_t nreqs, char *err, size_t errlen)
{
	struct agent_decl *decl, d;
	int rv = 0;

	for (size_t i = 0; i < a->a_ndecl; i++) {
		if (strcmp(a->a_decl[i].ad_name, name) == 0) {
			snprintf(err, errlen, "component %s given twice", name);
			return -EEXIST;
		}
	}
	if (a->a_ndecl >= comp_table_max(a->a_comps)) {
		snprintf(err, errlen, "%s %s: more than %zu components (limit %s, --max-components)",
		    kind, name, comp_table_max(a->a_comps), LIMIT_N_COMPONENTS);
		return -ENOSPC;
	}
	memset(&d, 0, sizeof(d));
	snprintf(d.ad_name, sizeof(d.ad_name), "%s", name);
	snprintf(d.ad_kind, sizeof(d.ad_kind), "%s", kind);
	d.ad_exec = xc;
	if (nsets > 0) {
		d.ad_sets = calloc(nsets, sizeof(*d.ad_sets));
		if (d.ad_sets == NULL)
			return -ENOMEM;
	}
	for (size_t i = 0; i < nsets && rv == 0; i++) {
		char *k = strdup(sets[i].st_key), *v = strdup(sets[i].st_value);
		d.ad_sets[i].st_key = k;
		d.ad_sets[i].st_value = v;
		d.ad_nsets = i + 1;
		if (k == NULL || v == NULL)
			rv = -ENOMEM;
		else if (strcmp(k, "bytes") == 0)
			d.ad_bytes = strtoull(v, NULL, 10);
	}
	if (rv == 0) {
		decl = realloc(a->a_decl, (a->a_ndecl + 1) * sizeof(*decl));
		if (decl == NULL)
			rv = -ENOMEM;
		else
			a->a_decl = decl;
	}
	if (rv != 0) {
		decl_clear(&d);
		return rv;
	}
	memcpy(d.ad_reqs, reqs, nreqs * sizeof(*reqs));
	d.ad_nreqs = nreqs;
	d.ad_state = AGENT_DECL_WAITING;
	a->a_decl[a->a_ndecl++] = d;
	return 0;
}

/* One that runs here already is settled. */
int
decl_status(struct agent *a, struct arena *arena, Ckpt__V1__ComponentStatus ***ret_list,
    size_t *ret_count)
{
	Ckpt__V1__ComponentStatus **list;
	size_t n = 0;
	int rv = 0;

	if (a->a_ndecl == 0)
		return 0;
	list = arena_alloc(arena, a->a_ndecl * sizeof(*list));
	if (list == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&a->a_mu);
	for (size_t i = 0; i < a->a_ndecl && rv == 0; i++) {
		struct agent_decl *d = &a->a_decl[i];
		Ckpt__V1__ComponentStatus *cs;
		Ckpt__V1__Label *labels, **lptrs;

		if (d->ad_state != AGENT_DECL_WAITING)
			continue;
		if (comp_is_running(a->a_comps, d->ad_name)) {
			d->ad_state = AGENT_DECL_DONE;
			continue;
		}
		cs = arena_alloc(arena, sizeof(*cs));
		labels = arena_alloc(arena, (d->ad_nreqs + 1) * sizeof(*labels));
		lptrs = arena_alloc(arena, (d->ad_nreqs + 1) * sizeof(*lptrs));
		if (cs == NULL || labels == NULL || lptrs == NULL) {
			rv = -ENOMEM;
			break;
		}
		ckpt__v1__component_status__init(cs);
		cs->requires = d->ad_nreqs > 0 ? lptrs : NULL;
		cs->name = d->ad_name;
		cs->state = (char *)"declared";
		cs->kind = d->ad_kind;
		cs->state_bytes = d->ad_bytes;
		for (size_t j = 0; j < d->ad_nreqs; j++) {
			ckpt__v1__label__init(&labels[j]);
			labels[j].key = d->ad_reqs[j].cq_key;
			labels[j].value = d->ad_reqs[j].cq_value;
			cs->requires[j] = &labels[j];
		}
		cs->n_requires = d->ad_nreqs;
		list[n++] = cs;
	}
	pthread_mutex_unlock(&a->a_mu);
	if (rv == 0 && n > 0) {
		*ret_list = list;
		*ret_count = n;
	}
	return rv;
}

/* The decl of name, or NULL. Called with a_mu held. */
static struct agent_decl *
decl_find(struct agent *a, const char *name)
{
	for (size_t i = 0; i < a->a_ndecl; i++)
		if (strcmp(a->a_decl[i].ad_name, name) == 0)
			return &a->a_decl[i];
	return NULL;
}

void
decl_notes(struct agent *a, char *const *fresh, size_t nfresh, char *const *elsewhere,
    size_t nelsewhere)
{
	bool kick = false;

	if (nfresh == 0 && nelsewhere == 0)
		return;
	pthread_mutex_lock(&a->a_mu);
	for (size_t i = 0; i < nfresh; i++) {
		struct agent_decl *d = decl_find(a, fresh[i]);
		if (d != NULL && d->ad_state == AGENT_DECL_WAITING) {
			d->ad_state = AGENT_DECL_FRESH;
			kick = true;
		}
	}
	for (size_t i = 0; i < nelsewhere; i++) {
		struct agent_decl *d = decl_find(a, elsewhere[i]);
		if (d != NULL && d->ad_state == AGENT_DECL_WAITING) {
			d->ad_state = AGENT_DECL_DONE;
			LOG_WARN("component %s not started on node %s: another node runs it (the "
				 "manager says so); it stays there",
			    d->ad_name, a->a_node);
		}
	}
	if (kick) {
		/* The checkpoint loop starts them (a large state takes a while to fill). */
		a->a_ckpt_kick = true;
		pthread_cond_broadcast(&a->a_cv);
	}
	pthread_mutex_unlock(&a->a_mu);
}

void
decl_done(struct agent *a, const char *name)
{
	struct agent_decl *d;

	pthread_mutex_lock(&a->a_mu);
	d = decl_find(a, name);
	if (d != NULL)
		d->ad_state = AGENT_DECL_DONE;
	pthread_mutex_unlock(&a->a_mu);
}

/* Starts one declared component fresh through its driver. */
static int
decl_start_one(struct agent *a, const struct agent_decl *d, char *why, size_t whylen)
{
	struct drv_spec spec = { d->ad_name, d->ad_sets, d->ad_nsets, d->ad_exec, a->a_lib };
	const struct drv_ops *ops = drv_find(d->ad_kind);
	struct drv_inst *inst = NULL;
	int rv;

	if (ops == NULL)
		return -EINVAL; /* checked by agent_add_component(): not reached */
	rv = ops->d_start(&spec, NULL, 0, &inst, why, whylen);
	if (rv != 0)
		return rv;
	rv = comp_add(a->a_comps, d->ad_name, ops, inst, 0);
	if (rv != 0) {
		(void)ops->d_stop(inst, 0);
		ops->d_free(inst);
		return rv;
	}
	(void)comp_set_requires(a->a_comps, d->ad_name, d->ad_reqs, d->ad_nreqs);
	return 0;
}

void
decl_start_fresh(struct agent *a)
{
	for (size_t i = 0; i < a->a_ndecl; i++) {
		struct agent_decl *d = &a->a_decl[i];
		enum agent_decl_state st;
		char why[256] = "";
		int rv;

		pthread_mutex_lock(&a->a_mu);
		st = d->ad_state;
		pthread_mutex_unlock(&a->a_mu);
		if (st != AGENT_DECL_FRESH)
			continue;
		/* Name, kind, settings and requirements are fixed after agent_start(). */
		rv = decl_start_one(a, d, why, sizeof(why));
		pthread_mutex_lock(&a->a_mu);
		/* -EEXIST: restored meanwhile, which is as good. */
		if (rv == 0 || rv == -EEXIST)
			d->ad_state = AGENT_DECL_DONE;
		pthread_mutex_unlock(&a->a_mu);
		if (rv == 0)
			LOG_INFO("component %s started fresh: no checkpoint of it exists (the manager "
				 "found none)",
			    d->ad_name);
		else if (rv != -EEXIST)
			LOG_ERROR("component %s cannot start: %s", d->ad_name,
			    why[0] != '\0' ? why : err_str(rv));
	}
}

void
decl_free(struct agent *a)
{
	for (size_t i = 0; i < a->a_ndecl; i++)
		decl_clear(&a->a_decl[i]);
	free(a->a_decl);
	a->a_decl = NULL;
	a->a_ndecl = 0;
}

#include "grant.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "key.h"
#include "util.h"

#define GRANT_BUCKETS 1024u

struct grant {
	char g_comp[KEY_NAME_MAX + 1];
	char g_node[KEY_NAME_MAX + 1];
	uint64_t g_epoch;
	struct grant *g_next;
};

struct grants {
	struct store *gs_store;      /* NULL: memory only */
	size_t gs_max;
	pthread_mutex_t gs_wmu;      /* one writer at a time, over the store's write */
	pthread_mutex_t gs_mu;       /* guards everything below */
	struct grant *gs_buckets[GRANT_BUCKETS];
	size_t gs_count;
	size_t gs_over;              /* grant_open(): skipped, beyond gs_max */
};

/* FNV-1a of a name. */
static struct grant **
grant_slot(struct grants *g, const char *component)
{
	uint32_t h = util_fnv1a(UTIL_FNV1A_INIT, component, strlen(component));
	struct grant **pp;

	pp = &g->gs_buckets[h % GRANT_BUCKETS];
	while (*pp != NULL && strcmp((*pp)->g_comp, component) != 0)
		pp = &(*pp)->g_next;
	return pp;
}

/* Under gs_mu: sets the entry, which fits (the caller checked). */
static int
grant_put_locked(struct grants *g, struct grant **pp, const char *component, const char *node,
    uint64_t epoch)
{
	struct grant *e = *pp;

	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			return -ENOMEM;
		strcpy(e->g_comp, component);
		*pp = e;
		g->gs_count++;
	}
	strcpy(e->g_node, node);
	e->g_epoch = epoch;
	return 0;
}

/* store_grant_each(): one stored grant into the table. */
static int
grant_load_one(void *arg, const char *component, const char *node, uint64_t epoch)
{
	struct grants *g = arg;
	struct grant **pp = grant_slot(g, component);

	if (*pp == NULL && g->gs_count >= g->gs_max) {
		g->gs_over++;
		return 0;
	}
	return grant_put_locked(g, pp, component, node, epoch);
}

int
grant_open(struct store *st, size_t max, struct grants **ret_g,
    struct grant_loaded *ret_loaded, struct store_error *ret_err)
{
	struct grants *g = calloc(1, sizeof(*g));
	size_t bad = 0;
	int rv = 0;

	if (g == NULL)
		return -ENOMEM;
	g->gs_store = st;
	g->gs_max = max != 0 ? max : GRANT_MAX;
	pthread_mutex_init(&g->gs_wmu, NULL);
	pthread_mutex_init(&g->gs_mu, NULL);
	if (st != NULL) {
		/* Nobody else sees g yet: the walk fills it without gs_mu. */
		rv = store_grant_each(st, grant_load_one, g, &bad, ret_err);
		if (rv != 0) {
			grant_free(g);
			return rv;
		}
	}
	if (ret_loaded != NULL) {
		ret_loaded->gl_loaded = g->gs_count;
		ret_loaded->gl_bad = bad;
		ret_loaded->gl_over = g->gs_over;
	}
	*ret_g = g;
	return 0;
}

int
grant_new(struct grants **ret_g)
{
	return grant_open(NULL, 0, ret_g, NULL, NULL);
}

void
grant_free(struct grants *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < GRANT_BUCKETS; i++) {
		while (g->gs_buckets[i] != NULL) {
			struct grant *e = g->gs_buckets[i];
			g->gs_buckets[i] = e->g_next;
			free(e);
		}
	}
	pthread_mutex_destroy(&g->gs_mu);
	pthread_mutex_destroy(&g->gs_wmu);
	free(g);
}

static void __attribute__((format(printf, 2, 3)))
grant_errorf(struct store_error *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err->se_msg, sizeof(err->se_msg), fmt, ap);
	va_end(ap);
	err->se_reason = NULL;
}

int
grant_set(struct grants *g, const char *component, const char *node, uint64_t epoch,
    bool *ret_replaced, struct store_error *ret_err)
{
	struct store_error serr;
	struct grant **pp;
	bool replaced = false, stored_replaced = false;
	int rv = 0;

	if (key_name_check(component) != 0 || key_name_check(node) != 0) {
		grant_errorf(ret_err, "invalid node or component name");
		return -EINVAL;
	}
	pthread_mutex_lock(&g->gs_wmu);
	pthread_mutex_lock(&g->gs_mu);
	pp = grant_slot(g, component);
	if (*pp == NULL && g->gs_count >= g->gs_max)
		rv = -ENOSPC;
	else if (*pp != NULL)
		replaced = strcmp((*pp)->g_node, node) != 0;
	pthread_mutex_unlock(&g->gs_mu);
	if (rv == -ENOSPC)
		grant_errorf(ret_err, "more than %zu components granted", g->gs_max);
	/* Durable first: the table never allows what a restart would forget. */
	if (rv == 0 && g->gs_store != NULL) {
		rv = store_grant_put(g->gs_store, component, node, epoch, &stored_replaced,
		    ret_err != NULL ? ret_err : &serr);
		replaced = replaced || stored_replaced;
	}
	if (rv == 0) {
		pthread_mutex_lock(&g->gs_mu);
		/* Only writers change the table, and this one holds gs_wmu: pp still holds. */
		rv = grant_put_locked(g, grant_slot(g, component), component, node, epoch);
		pthread_mutex_unlock(&g->gs_mu);
	}
	pthread_mutex_unlock(&g->gs_wmu);
	if (rv == 0)
		*ret_replaced = replaced;
	return rv;
}

int
grant_sync(struct grants *g, const char *component, struct store_error *ret_err)
{
	char node[KEY_NAME_MAX + 1];
	uint64_t epoch;
	struct grant **pp, *e;
	int rv;

	if (g->gs_store == NULL || key_name_check(component) != 0)
		return 0;
	pthread_mutex_lock(&g->gs_wmu);
	rv = store_grant_get(g->gs_store, component, node, &epoch, ret_err);
	if (rv == -ENOENT) {
		pthread_mutex_lock(&g->gs_mu);
		pp = grant_slot(g, component);
		e = *pp;
		if (e != NULL) {
			*pp = e->g_next;
			free(e);
			g->gs_count--;
		}
		pthread_mutex_unlock(&g->gs_mu);
		rv = 0;
	}
	pthread_mutex_unlock(&g->gs_wmu);
	return rv;
}

size_t
grant_count(struct grants *g)
{
	size_t n;

	pthread_mutex_lock(&g->gs_mu);
	n = g->gs_count;
	pthread_mutex_unlock(&g->gs_mu);
	return n;
}

bool
grant_allows(struct grants *g, const char *component, const char *node)
{
	struct grant *e;
	bool ok;

	if (key_name_check(component) != 0)
		return false;
	pthread_mutex_lock(&g->gs_mu);
	e = *grant_slot(g, component);
	ok = e != NULL && strcmp(e->g_node, node) == 0;
	pthread_mutex_unlock(&g->gs_mu);
	return ok;
}

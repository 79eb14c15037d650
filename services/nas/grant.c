#include "grant.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "key.h"

#define GRANT_BUCKETS 1024u

struct grant {
	char g_comp[KEY_NAME_MAX + 1];
	char g_node[KEY_NAME_MAX + 1];
	uint64_t g_epoch;
	struct grant *g_next;
};

struct grants {
	pthread_mutex_t gs_mu; /* guards everything below */
	struct grant *gs_buckets[GRANT_BUCKETS];
	size_t gs_count;
};

int
grant_new(struct grants **ret_g)
{
	struct grants *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return -ENOMEM;
	pthread_mutex_init(&g->gs_mu, NULL);
	*ret_g = g;
	return 0;
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
	free(g);
}

/* FNV-1a of a name. */
static struct grant **
grant_slot(struct grants *g, const char *component)
{
	uint32_t h = 2166136261u;
	struct grant **pp;

	for (const char *p = component; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	pp = &g->gs_buckets[h % GRANT_BUCKETS];
	while (*pp != NULL && strcmp((*pp)->g_comp, component) != 0)
		pp = &(*pp)->g_next;
	return pp;
}

int
grant_set(struct grants *g, const char *component, const char *node, uint64_t epoch,
    bool *ret_replaced)
{
	struct grant **pp, *e;
	bool replaced = false;
	int rv = 0;

	if (key_name_check(component) != 0 || key_name_check(node) != 0)
		return -EINVAL;
	pthread_mutex_lock(&g->gs_mu);
	pp = grant_slot(g, component);
	e = *pp;
	if (e == NULL) {
		if (g->gs_count >= GRANT_MAX) {
			rv = -ENOSPC;
			goto out;
		}
		e = calloc(1, sizeof(*e));
		if (e == NULL) {
			rv = -ENOMEM;
			goto out;
		}
		strcpy(e->g_comp, component);
		*pp = e;
		g->gs_count++;
	} else {
		replaced = strcmp(e->g_node, node) != 0;
	}
	strcpy(e->g_node, node);
	e->g_epoch = epoch;
out:
	pthread_mutex_unlock(&g->gs_mu);
	if (rv == 0)
		*ret_replaced = replaced;
	return rv;
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

/* nasref: the NAS client the agent uses, replaced when the manager names other addresses (agent_int.h). */

#include "agent_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct agent_nas *
nasref_get(struct agent *a)
{
	struct agent_nas *h;
	pthread_mutex_lock(&a->a_mu);
	h = a->a_nas;
	if (h != NULL)
		h->an_refs++;
	pthread_mutex_unlock(&a->a_mu);
	return h;
}

void
nasref_put(struct agent *a, struct agent_nas *h)
{
	bool last;

	if (h == NULL)
		return;
	pthread_mutex_lock(&a->a_mu);
	last = --h->an_refs == 0;
	pthread_mutex_unlock(&a->a_mu);
	if (!last)
		return;
	nasc_close(h->an_nasc);
	for (size_t i = 0; i < h->an_count; i++)
		free(h->an_urls[i]);
	free(h->an_urls);
	free(h);
}

static bool
nasref_same(const struct agent_nas *h, char *const *urls, size_t n)
{
	if (h == NULL || h->an_count != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(h->an_urls[i], urls[i]) != 0)
			return false;
	return true;
}

/* The background check of a NAS list (nasc_check_store), said once. */
static void
nasref_on_store_check(void *arg, int rv, const char *msg)
{
	(void)arg;
	if (rv == 0)
		LOG_INFO("the NAS addresses answered: they are one store");
	else
		LOG_ERROR("NAS list refused: %s", msg);
}

/*
 * Makes urls the NAS addresses in use, unless they already are. A list of
 * different stores is refused (-EXDEV): the old one stays.
 */
int
nasref_update(struct agent *a, char *const *urls, size_t n, struct rpc_error *err)
{
	struct agent_nas *h, *old;
	bool same;
	int rv;

	pthread_mutex_lock(&a->a_mu);
	same = nasref_same(a->a_nas, urls, n);
	pthread_mutex_unlock(&a->a_mu);
	if (same)
		return 0;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->an_urls = calloc(n, sizeof(*h->an_urls));
	if (h->an_urls == NULL) {
		rv = -ENOMEM;
		goto out_free;
	}
	for (h->an_count = 0; h->an_count < n; h->an_count++) {
		h->an_urls[h->an_count] = strdup(urls[h->an_count]);
		if (h->an_urls[h->an_count] == NULL) {
			rv = -ENOMEM;
			goto out_free;
		}
	}
	rv = nasc_open_tls(h->an_urls, h->an_count, 0, a->a_tls, &h->an_nasc, err);
	if (rv != 0)
		goto out_free;
	rv = nasc_check_store(h->an_nasc, AGENT_STORE_CHECK_MS, nasref_on_store_check, NULL, err);
	if (rv == -EXDEV) {
		nasc_close(h->an_nasc);
		goto out_free;
	}
	if (rv == -EAGAIN)
		LOG_WARN("cannot check yet that the NAS addresses are one store (%s); checking again "
		         "until they answer",
		    err->re_msg);
	rv = 0;
	if (a->a_chunk_max != 0 &&
	    nasc_set_chunking(h->an_nasc, a->a_chunk_min, a->a_chunk_avg, a->a_chunk_max) != 0) {
		nasc_close(h->an_nasc); /* checked by agent_new(): not reached */
		rv = -EINVAL;
		goto out_free;
	}
	nasc_set_rate(h->an_nasc, a->a_rate);
	h->an_refs = 1; /* the agent's own reference */
	pthread_mutex_lock(&a->a_mu);
	old = a->a_nas;
	a->a_nas = h;
	pthread_mutex_unlock(&a->a_mu);
	nasref_put(a, old);
	return 0;

out_free:
	for (size_t i = 0; i < h->an_count; i++)
		free(h->an_urls[i]);
	free(h->an_urls);
	free(h);
	return rv;
}

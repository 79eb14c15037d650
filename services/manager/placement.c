#include "placement.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PLACE_MIB (1024u * 1024u)

uint64_t
place_score(const struct place_cand *c)
{
	uint64_t mib = c->pc_mem_free_bytes / PLACE_MIB;
	uint64_t per_cpu = c->pc_cpu_load_milli / (c->pc_cpu_count > 0 ? c->pc_cpu_count : 1u);

	if (c->pc_mem_total_bytes == 0)
		return 0;
	/* mib < 2^44, so mib * 1000 cannot overflow. */
	return mib * 1000u / (1000u + per_cpu);
}

static bool
place_is(const char *a, const char *b)
{
	return a != NULL && b != NULL && a[0] != '\0' && strcmp(a, b) == 0;
}

static bool
place_fits(const struct place_cand *c, uint64_t need)
{
	return need == 0 || c->pc_mem_total_bytes == 0 || c->pc_mem_free_bytes >= need;
}

/* True when a is a better choice than b. */
static bool
place_better(const struct place_cand *a, const struct place_cand *b)
{
	uint64_t sa = place_score(a), sb = place_score(b);

	if (sa != sb)
		return sa > sb;
	if (a->pc_components != b->pc_components)
		return a->pc_components < b->pc_components;
	return strcmp(a->pc_node, b->pc_node) < 0;
}

static int
place_explicit(const struct place_cand *cands, size_t n, const struct place_req *req,
    size_t *ret_index, char *err, size_t errlen)
{
	const struct place_cand *c = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(cands[i].pc_node, req->pr_target) == 0) {
			c = &cands[i];
			break;
		}
	}
	if (c == NULL) {
		snprintf(err, errlen, "unknown target node '%s'", req->pr_target);
		return -EINVAL;
	}
	if (place_is(req->pr_source, req->pr_target)) {
		snprintf(err, errlen, "target node %s already runs %s", req->pr_target,
		    req->pr_component);
		return -EINVAL;
	}
	if (!c->pc_up) {
		snprintf(err, errlen, "target node %s is down", req->pr_target);
		return -ESTALE;
	}
	if (!place_fits(c, req->pr_need_bytes)) {
		snprintf(err, errlen, "target node %s has %llu bytes free, %s needs %llu",
		    req->pr_target, (unsigned long long)c->pc_mem_free_bytes, req->pr_component,
		    (unsigned long long)req->pr_need_bytes);
		return -ESTALE;
	}
	*ret_index = i;
	return 0;
}

int
place_choose(const struct place_cand *cands, size_t n, const struct place_req *req,
    size_t *ret_index, char *err, size_t errlen)
{
	const struct place_cand *best = NULL;
	size_t best_i = 0;

	if (req->pr_target != NULL && req->pr_target[0] != '\0')
		return place_explicit(cands, n, req, ret_index, err, errlen);
	for (size_t i = 0; i < n; i++) {
		const struct place_cand *c = &cands[i];
		if (!c->pc_up || place_is(req->pr_source, c->pc_node) ||
		    !place_fits(c, req->pr_need_bytes))
			continue;
		if (best == NULL || place_better(c, best)) {
			best = c;
			best_i = i;
		}
	}
	if (best == NULL) {
		snprintf(err, errlen, "no healthy node can take %s", req->pr_component);
		return -ESTALE;
	}
	*ret_index = best_i;
	return 0;
}

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

static bool
place_full(const struct place_cand *c, const struct place_req *req)
{
	return req->pr_max_components != 0 && c->pc_components >= req->pr_max_components;
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

/* The first label of req that c lacks, or NULL. */
static const struct place_label *
place_missing(const struct place_cand *c, const struct place_req *req)
{
	for (size_t i = 0; i < req->pr_nrequires; i++) {
		const struct place_label *want = &req->pr_requires[i];
		bool ok = false;
		for (size_t j = 0; j < c->pc_nlabels && !ok; j++)
			ok = strcmp(c->pc_labels[j].pl_key, want->pl_key) == 0 &&
			    (want->pl_value[0] == '\0' ||
				strcmp(c->pc_labels[j].pl_value, want->pl_value) == 0);
		if (!ok)
			return want;
	}
	return NULL;
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
	if (c->pc_cordoned) {
		snprintf(err, errlen, "target node %s is cordoned", req->pr_target);
		return -ESTALE;
	}
	if (place_missing(c, req) != NULL) {
		const struct place_label *l = place_missing(c, req);
		snprintf(err, errlen, "target node %s lacks label %s%s%s required by %s",
		    req->pr_target, l->pl_key, l->pl_value[0] != '\0' ? "=" : "", l->pl_value,
		    req->pr_component);
		return -ESTALE;
	}
	if (!place_fits(c, req->pr_need_bytes)) {
		snprintf(err, errlen, "target node %s has %llu bytes free, %s needs %llu",
		    req->pr_target, (unsigned long long)c->pc_mem_free_bytes, req->pr_component,
		    (unsigned long long)req->pr_need_bytes);
		return -ESTALE;
	}
	if (place_full(c, req) && c->pc_arriving == 0) {
		snprintf(err, errlen, "target node %s runs %u components, the most a node takes "
		    "(--max-node-components %u)", req->pr_target, c->pc_components,
		    req->pr_max_components);
		return -ESTALE;
	}
	if (place_full(c, req)) {
		snprintf(err, errlen, "target node %s runs %u components and %u more are on their way "
		    "there: %u, the most a node takes (--max-node-components %u)", req->pr_target,
		    c->pc_components > c->pc_arriving ? c->pc_components - c->pc_arriving : 0u,
		    c->pc_arriving, c->pc_components,
		    req->pr_max_components);
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
	const struct place_label *lacked = NULL;
	size_t best_i = 0, down = 0, cordoned = 0, unlabelled = 0, small = 0, refused = 0, full = 0;

	if (req->pr_target != NULL && req->pr_target[0] != '\0')
		return place_explicit(cands, n, req, ret_index, err, errlen);
	for (size_t i = 0; i < n; i++) {
		const struct place_cand *c = &cands[i];
		const struct place_label *l;
		bool excluded = false;
		if (place_is(req->pr_source, c->pc_node))
			continue;
		for (size_t j = 0; j < req->pr_nexclude && !excluded; j++)
			excluded = place_is(req->pr_exclude[j], c->pc_node);
		if (excluded) {
			refused++;
			continue;
		}
		if (!c->pc_up) {
			down++;
			continue;
		}
		if (c->pc_cordoned) {
			cordoned++;
			continue;
		}
		l = place_missing(c, req);
		if (l != NULL) {
			lacked = l;
			unlabelled++;
			continue;
		}
		if (!place_fits(c, req->pr_need_bytes)) {
			small++;
			continue;
		}
		if (place_full(c, req)) {
			full++;
			continue;
		}
		if (best == NULL || place_better(c, best)) {
			best = c;
			best_i = i;
		}
	}
	if (best == NULL) {
		char lbl[160] = "";
		if (lacked != NULL)
			snprintf(lbl, sizeof(lbl), " (%s%s%s)", lacked->pl_key,
			    lacked->pl_value[0] != '\0' ? "=" : "", lacked->pl_value);
		int len = snprintf(err, errlen,
		    "no healthy node can take %s: %zu other node(s): %zu down, %zu cordoned, %zu "
		    "without a required label%s, %zu without room",
		    req->pr_component, down + cordoned + unlabelled + small + refused + full, down,
		    cordoned,
		    unlabelled, lbl, small);
		if (full > 0 && len > 0 && (size_t)len < errlen)
			len += snprintf(err + len, errlen - (size_t)len, ", %zu full (%u components, "
			    "--max-node-components)", full, req->pr_max_components);
		if (refused > 0 && len > 0 && (size_t)len < errlen)
			snprintf(err + len, errlen - (size_t)len, ", %zu refused its spec", refused);
		return -ESTALE;
	}
	*ret_index = best_i;
	return 0;
}

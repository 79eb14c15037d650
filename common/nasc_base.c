#include "nasc_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "methods.h"

static uint64_t
nasc_base_hash(const uint8_t *sha)
{
	uint64_t h;
	memcpy(&h, sha, sizeof(h)); /* SHA-256 bytes are already uniform */
	return h;
}

/* Takes sha (n hashes, malloc'ed) and indexes it. */
int
nasc_base_index(struct nasc_base *b, uint8_t (*sha)[SHA_LEN], size_t n)
{
	size_t cap = 16;

	b->b_sha = sha;
	b->b_n = n;
	while (cap < 2 * n)
		cap *= 2;
	b->b_slots = calloc(cap, sizeof(*b->b_slots));
	if (b->b_slots == NULL)
		return -ENOMEM;
	b->b_mask = cap - 1;
	for (size_t i = 0; i < n && i < UINT32_MAX; i++) {
		size_t j;
		for (j = nasc_base_hash(sha[i]) & b->b_mask; b->b_slots[j] != 0; j = (j + 1) & b->b_mask)
			;
		b->b_slots[j] = (uint32_t)i + 1;
	}
	return 0;
}

/* The cache entry of node/component, or NULL. Under n_cache_mu. */
struct nasc_cached *
nasc_cache_find(struct nasc *n, const char *node, const char *component)
{
	for (size_t i = 0; i < NASC_CACHE_MAX; i++) {
		struct nasc_cached *c = &n->n_cache[i];
		if (c->c_sha != NULL && strcmp(c->c_node, node) == 0 &&
		    strcmp(c->c_component, component) == 0)
			return c;
	}
	return NULL;
}

/*
 * Remembers the data chunks of what was just stored for node/component (sha:
 * count hashes), and its whole list l (the list is left out if memory runs short).
 */
/* Forgets c's list (the slot stays, empty). Under n_cache_mu, or at close. */
void
nasc_cached_clear(struct nasc_cached *c)
{
	free(c->c_sha);
	free(c->c_sizes);
	free(c->c_fp);
	free(c->c_head);
	c->c_sha = NULL;
	c->c_sizes = NULL;
	c->c_fp = NULL;
	c->c_head = NULL;
}

void
nasc_cache_put(struct nasc *n, const char *node, const char *component,
    const uint8_t (*sha)[SHA_LEN], size_t count, const struct nasc_list *l)
{
	uint8_t (*copy)[SHA_LEN] = malloc((count != 0 ? count : 1) * SHA_LEN);
	uint32_t *sizes = malloc((l->l_nchunks != 0 ? l->l_nchunks : 1) * sizeof(*sizes));
	uint8_t (*fp)[BCACHE_FP_LEN] = NULL;
	uint64_t *head = NULL;
	struct nasc_cached *c;

	if (l->l_fp != NULL && l->l_head != NULL && !atomic_load(&n->n_no_fp)) {
		fp = malloc((l->l_nchunks != 0 ? l->l_nchunks : 1) * sizeof(*fp));
		head = malloc((l->l_nchunks != 0 ? l->l_nchunks : 1) * sizeof(*head));
	}
	if (fp != NULL && head != NULL && l->l_nchunks != 0) {
		memcpy(fp, l->l_fp, l->l_nchunks * sizeof(*fp));
		memcpy(head, l->l_head, l->l_nchunks * sizeof(*head));
	}

	pthread_mutex_lock(&n->n_cache_mu);
	c = nasc_cache_find(n, node, component);
	if (c == NULL) {
		c = &n->n_cache[0];
		for (size_t i = 1; i < NASC_CACHE_MAX && c->c_sha != NULL; i++)
			if (n->n_cache[i].c_sha == NULL || n->n_cache[i].c_used < c->c_used)
				c = &n->n_cache[i];
	}
	nasc_cached_clear(c);
	if (copy != NULL && strlen(node) <= KEY_NAME_MAX && strlen(component) <= KEY_NAME_MAX) {
		if (count != 0)
			memcpy(copy, sha, count * SHA_LEN);
		snprintf(c->c_node, sizeof(c->c_node), "%s", node);
		snprintf(c->c_component, sizeof(c->c_component), "%s", component);
		c->c_sha = copy;
		c->c_n = count;
		c->c_used = ++n->n_cache_clock;
		copy = NULL;
		if (sizes != NULL) {
			if (l->l_nchunks != 0)
				memcpy(sizes, l->l_sizes, l->l_nchunks * sizeof(*sizes));
			c->c_sizes = sizes;
			c->c_nchunks = l->l_nchunks;
			c->c_len = l->l_len;
			memcpy(c->c_digest, l->l_digest, SHA_LEN);
			c->c_chunking = n->n_chunking;
			sizes = NULL;
			if (fp != NULL && head != NULL) {
				c->c_fp = fp;
				c->c_head = head;
				fp = NULL;
				head = NULL;
			}
		}
	}
	pthread_mutex_unlock(&n->n_cache_mu);
	free(copy);
	free(sizes);
	free(fp);
	free(head);
}

void
nasc_cache_drop(struct nasc *n, const char *node, const char *component)
{
	struct nasc_cached *c;

	pthread_mutex_lock(&n->n_cache_mu);
	c = nasc_cache_find(n, node, component);
	if (c != NULL)
		nasc_cached_clear(c);
	pthread_mutex_unlock(&n->n_cache_mu);
}

int
nasc_cache_export(struct nasc *n, const char *node, const char *component,
    struct bcache_list *ret_list)
{
	struct bcache_list l = { 0 };
	struct nasc_cached *c;
	int rv = -ENOENT;

	pthread_mutex_lock(&n->n_cache_mu);
	c = nasc_cache_find(n, node, component);
	if (c != NULL && c->c_sizes != NULL && c->c_fp != NULL && c->c_head != NULL)
		rv = bcache_list_alloc(&l, c->c_nchunks, c->c_n);
	if (rv == 0) {
		memcpy(l.bl_sizes, c->c_sizes, c->c_nchunks * sizeof(*l.bl_sizes));
		memcpy(l.bl_sha, c->c_sha, c->c_n * SHA_LEN);
		memcpy(l.bl_fp, c->c_fp, c->c_nchunks * sizeof(*l.bl_fp));
		memcpy(l.bl_head, c->c_head, c->c_nchunks * sizeof(*l.bl_head));
		l.bl_len = c->c_len;
		memcpy(l.bl_digest, c->c_digest, SHA_LEN);
		l.bl_min = c->c_chunking.cp_min;
		l.bl_avg = c->c_chunking.cp_avg;
		l.bl_max = c->c_chunking.cp_max;
	}
	pthread_mutex_unlock(&n->n_cache_mu);
	if (rv == 0)
		*ret_list = l;
	return rv;
}

int
nasc_cache_import(struct nasc *n, const char *node, const char *component,
    const struct bcache_list *l, char *err, size_t errlen)
{
	struct nasc_list nl = { l->bl_sizes, l->bl_n, l->bl_len, l->bl_digest,
		(const uint8_t(*)[BCACHE_FP_LEN])l->bl_fp, l->bl_head };
	struct chunk_params cp;
	struct nasc_cached *c;
	int rv = bcache_list_check(l, err, errlen);

	if (rv != 0)
		return rv;
	if (chunk_params_init(l->bl_min, l->bl_avg, l->bl_max, &cp) != 0) {
		snprintf(err, errlen, "bad chunking");
		return -EBADMSG;
	}
	nasc_cache_put(n, node, component, (const uint8_t(*)[SHA_LEN])l->bl_sha, l->bl_ndata, &nl);
	/* nasc_cache_put() records the client's chunking: the list's own is what cut it. */
	pthread_mutex_lock(&n->n_cache_mu);
	c = nasc_cache_find(n, node, component);
	if (c != NULL)
		c->c_chunking = cp;
	else
		rv = -ENOMEM;
	pthread_mutex_unlock(&n->n_cache_mu);
	if (rv != 0)
		snprintf(err, errlen, "out of memory");
	return rv;
}

/* Whether two chunkings cut the same bytes the same way. */
static bool
nasc_chunking_eq(const struct chunk_params *a, const struct chunk_params *b)
{
	return a->cp_min == b->cp_min && a->cp_avg == b->cp_avg && a->cp_max == b->cp_max &&
	    a->cp_floor == b->cp_floor;
}

/* Whether c's whole list is known, consistent and cut as n cuts now. Under n_cache_mu. */
static bool
nasc_cached_whole(const struct nasc *n, const struct nasc_cached *c)
{
	uint64_t sum = 0;
	size_t ndata = 0;

	if (c->c_sizes == NULL || !nasc_chunking_eq(&c->c_chunking, &n->n_chunking))
		return false;
	for (size_t i = 0; i < c->c_nchunks; i++) {
		sum += c->c_sizes[i] >> 1;
		ndata += (c->c_sizes[i] & 1u) == 0;
	}
	return sum == c->c_len && ndata == c->c_n;
}

/*
 * The remembered list of c, copied into b (b_sizes) when it is the state
 * whose digest is base (the base of the hints given: b_hints), or when it
 * has fingerprints, for a walk (bcache_walk). Its fingerprints come along
 * when it has them and n takes them; without them (or without the memory)
 * only the base of hints is copied. Under n_cache_mu.
 */
static void
nasc_base_list(const struct nasc *n, const struct nasc_cached *c, const uint8_t *base,
    struct nasc_base *b)
{
	size_t k = c->c_nchunks != 0 ? c->c_nchunks : 1;
	bool hints = base != NULL && memcmp(c->c_digest, base, SHA_LEN) == 0;
	bool fps = c->c_fp != NULL && c->c_head != NULL && !atomic_load(&n->n_no_fp);

	if ((!hints && !fps) || !nasc_cached_whole(n, c))
		return;
	if (fps) {
		b->b_fp = malloc(k * sizeof(*b->b_fp));
		b->b_head = malloc(k * sizeof(*b->b_head));
		if (b->b_fp == NULL || b->b_head == NULL) {
			free(b->b_fp);
			free(b->b_head);
			b->b_fp = NULL;
			b->b_head = NULL;
			if (!hints)
				return;
		} else {
			memcpy(b->b_fp, c->c_fp, c->c_nchunks * sizeof(*b->b_fp));
			memcpy(b->b_head, c->c_head, c->c_nchunks * sizeof(*b->b_head));
		}
	}
	b->b_sizes = malloc(k * sizeof(*b->b_sizes));
	if (b->b_sizes == NULL) {
		free(b->b_fp);
		free(b->b_head);
		b->b_fp = NULL;
		b->b_head = NULL;
		return;
	}
	memcpy(b->b_sizes, c->c_sizes, c->c_nchunks * sizeof(*b->b_sizes));
	b->b_nchunks = c->c_nchunks;
	b->b_len = c->c_len;
	b->b_hints = hints;
}

int
nasc_base_cached(struct nasc *n, const struct nasc_put *p, const uint8_t *base, bool list,
    struct nasc_base *b)
{
	uint8_t (*sha)[SHA_LEN] = NULL;
	struct nasc_cached *c;
	size_t count = 0;
	int rv;

	memset(b, 0, sizeof(*b));
	pthread_mutex_lock(&n->n_cache_mu);
	c = nasc_cache_find(n, p->np_node, p->np_component);
	if (c != NULL && (sha = malloc((c->c_n != 0 ? c->c_n : 1) * SHA_LEN)) != NULL) {
		memcpy(sha, c->c_sha, c->c_n * SHA_LEN);
		count = c->c_n;
		c->c_used = ++n->n_cache_clock;
		b->b_cached = true;
		if (list)
			nasc_base_list(n, c, base, b);
	}
	pthread_mutex_unlock(&n->n_cache_mu);
	if (sha == NULL)
		return 0;
	rv = nasc_base_index(b, sha, count);
	return rv < 0 ? rv : 1;
}

/*
 * The base of node/component: what this client stored last, or the record of
 * the latest checkpoint the NAS holds; none (first checkpoint) is not an error.
 * base: the digest of the state hints are relative to, or NULL; when this
 * client remembers that state's list, b gets it too (b_sizes).
 */
int
nasc_base_load(struct nasc *n, const struct nasc_put *p, const uint8_t *base,
    unsigned timeout_ms, struct nasc_base *b, struct rpc_error *err)
{
	Ckpt__V1__RetrieveRequest req = CKPT__V1__RETRIEVE_REQUEST__INIT;
	Ckpt__V1__RetrieveReply *rep = NULL;
	uint8_t (*sha)[SHA_LEN] = NULL;
	size_t count = 0;
	int rv;

	rv = nasc_base_cached(n, p, base, true, b);
	if (rv != 0)
		return rv < 0 ? rv : 0;

	req.node = (char *)p->np_node;
	req.component = (char *)p->np_component;
	req.as_base = true;
	rv = nasc_call(n, NAS_RETRIEVE, &req.base, timeout_ms, (ProtobufCMessage **)&rep, err);
	if (rv != 0) {
		if (rv != -ENOENT)
			return rv;
		/* The first checkpoint: every chunk is asked about. */
		err->re_code = 0;
		err->re_msg[0] = '\0';
		return 0;
	}
	sha = malloc((rep->n_chunks != 0 ? rep->n_chunks : 1) * SHA_LEN);
	if (sha == NULL) {
		rpc_reply_free(&rep->base);
		return -ENOMEM;
	}
	for (size_t i = 0; i < rep->n_chunks; i++) {
		const Ckpt__V1__ChunkRef *r = rep->chunks[i];
		if (!r->zero && r->sha256.len == SHA_LEN)
			memcpy(sha[count++], r->sha256.data, SHA_LEN);
	}
	rpc_reply_free(&rep->base);
	return nasc_base_index(b, sha, count);
}

bool
nasc_base_has(const struct nasc_base *b, const uint8_t *sha)
{
	if (b->b_slots == NULL)
		return false;
	for (size_t j = nasc_base_hash(sha) & b->b_mask; b->b_slots[j] != 0; j = (j + 1) & b->b_mask)
		if (memcmp(b->b_sha[b->b_slots[j] - 1], sha, SHA_LEN) == 0)
			return true;
	return false;
}

void
nasc_base_free(struct nasc_base *b)
{
	free(b->b_slots);
	free(b->b_sha);
	free(b->b_sizes);
	free(b->b_fp);
	free(b->b_head);
}

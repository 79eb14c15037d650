#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int
wire_text_check(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= max || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return -EINVAL;
	}
	return 0;
}

static void
wire_copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
}

void
wire_cap_from_pb(const Ckpt__V1__Capacity *pb, struct reg_capacity *ret_cap)
{
	struct reg_capacity c = { 0 };

	if (pb != NULL) {
		c.rcap_mem_free = pb->mem_free_bytes;
		c.rcap_mem_total = pb->mem_total_bytes;
		c.rcap_cpu_count = pb->cpu_count;
		c.rcap_cpu_load_milli = pb->cpu_load_milli;
	}
	*ret_cap = c;
}

int
wire_label_from_pb(const Ckpt__V1__Label *pb, struct reg_label *ret_label, char *err,
    size_t errlen)
{
	if (pb->key[0] == '\0' || wire_text_check(pb->key, LIMIT_LABEL_KEY_MAX) != 0) {
		snprintf(err, errlen, "invalid label key (1 to %d printable characters)",
		    LIMIT_LABEL_KEY_MAX);
		return -EINVAL;
	}
	if (wire_text_check(pb->value, LIMIT_LABEL_VALUE_MAX) != 0) {
		snprintf(err, errlen, "invalid value of label '%s' (at most %d printable characters)",
		    pb->key, LIMIT_LABEL_VALUE_MAX);
		return -EINVAL;
	}
	wire_copy(ret_label->rl_key, sizeof(ret_label->rl_key), pb->key);
	wire_copy(ret_label->rl_value, sizeof(ret_label->rl_value), pb->value);
	return 0;
}

static int
wire_ref_from_pb(const Ckpt__V1__CheckpointRef *pb, struct reg_ref *ret_ref, char *err,
    size_t errlen)
{
	struct reg_ref r;

	memset(&r, 0, sizeof(r));
	if (key_name_check(pb->node) != 0 || key_name_check(pb->component) != 0) {
		snprintf(err, errlen, "invalid restored_from: node and component must be names");
		return -EINVAL;
	}
	if (pb->sha256.len != 0 && pb->sha256.len != SHA_LEN) {
		snprintf(err, errlen, "invalid restored_from: sha256 has %zu bytes, not %d",
		    pb->sha256.len, SHA_LEN);
		return -EINVAL;
	}
	wire_copy(r.rr_node, sizeof(r.rr_node), pb->node);
	wire_copy(r.rr_component, sizeof(r.rr_component), pb->component);
	r.rr_seq = pb->seq;
	if (pb->sha256.len == SHA_LEN) {
		r.rr_has_sha = true;
		memcpy(r.rr_sha256, pb->sha256.data, SHA_LEN);
	}
	*ret_ref = r;
	return 0;
}

int
wire_requires_from_pb(Ckpt__V1__Label *const *pb, size_t n, struct reg_req *ret_reqs,
    size_t *ret_n, char *err, size_t errlen)
{
	if (n > LIMIT_REQUIRES_MAX) {
		snprintf(err, errlen, "%zu required labels, at most %d", n, LIMIT_REQUIRES_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (pb[i] == NULL || pb[i]->key[0] == '\0' ||
		    wire_text_check(pb[i]->key, LIMIT_LABEL_KEY_MAX) != 0 ||
		    wire_text_check(pb[i]->value, LIMIT_REQ_VALUE_MAX) != 0) {
			snprintf(err, errlen,
			    "invalid required label: key of 1 to %d, value of at most %d printable "
			    "characters",
			    LIMIT_LABEL_KEY_MAX, LIMIT_REQ_VALUE_MAX);
			return -EINVAL;
		}
		wire_copy(ret_reqs[i].rq_key, sizeof(ret_reqs[i].rq_key), pb[i]->key);
		wire_copy(ret_reqs[i].rq_value, sizeof(ret_reqs[i].rq_value), pb[i]->value);
	}
	*ret_n = n;
	return 0;
}

int
wire_comp_from_pb(const Ckpt__V1__ComponentStatus *pb, struct reg_comp *ret_comp, char *err,
    size_t errlen)
{
	struct reg_comp c;
	int rv;

	memset(&c, 0, sizeof(c));
	if (key_name_check(pb->name) != 0) {
		snprintf(err, errlen, "invalid component name '%.64s' (1 to %d of [A-Za-z0-9._-])",
		    pb->name, KEY_NAME_MAX);
		return -EINVAL;
	}
	if (wire_text_check(pb->state, REG_STATE_MAX) != 0 ||
	    wire_text_check(pb->kind, LIMIT_KIND_MAX) != 0) {
		snprintf(err, errlen, "component %s: state or kind too long or not printable",
		    pb->name);
		return -EINVAL;
	}
	if (pb->state_sha256.len != 0 && pb->state_sha256.len != SHA_LEN) {
		snprintf(err, errlen, "component %s: state_sha256 has %zu bytes, not %d", pb->name,
		    pb->state_sha256.len, SHA_LEN);
		return -EINVAL;
	}
	wire_copy(c.rc_name, sizeof(c.rc_name), pb->name);
	wire_copy(c.rc_state, sizeof(c.rc_state), pb->state);
	wire_copy(c.rc_kind, sizeof(c.rc_kind), pb->kind);
	c.rc_last_seq = pb->last_seq;
	c.rc_epoch = pb->epoch;
	c.rc_state_bytes = pb->state_bytes;
	c.rc_pid = pb->pid;
	c.rc_restarts = pb->restarts;
	c.rc_crashes = pb->crashes;
	c.rc_last_unix_ms = pb->last_unix_ms;
	/* Free text for people: cut and made printable rather than refused. */
	for (size_t i = 0; pb->reason[i] != '\0' && i + 1 < sizeof(c.rc_reason); i++) {
		unsigned char ch = (unsigned char)pb->reason[i];
		c.rc_reason[i] = ch < 0x20 || ch > 0x7e ? '?' : (char)ch;
	}
	if (pb->restored_from != NULL && pb->restored_from->node[0] != '\0') {
		char why[WIRE_ERR_MAX];
		rv = wire_ref_from_pb(pb->restored_from, &c.rc_restored_from, why, sizeof(why));
		if (rv != 0) {
			snprintf(err, errlen, "component %s: %s", pb->name, why);
			return rv;
		}
		c.rc_has_restored = true;
	}
	if (pb->state_sha256.len == SHA_LEN) {
		c.rc_has_state_sha = true;
		memcpy(c.rc_state_sha256, pb->state_sha256.data, SHA_LEN);
	}
	rv = wire_requires_from_pb(pb->requires, pb->n_requires, c.rc_requires, &c.rc_nrequires,
	    err, errlen);
	if (rv != 0)
		return rv;
	*ret_comp = c;
	return 0;
}

int
wire_ckpt_from_pb(const Ckpt__V1__CheckpointInfo *pb, struct reg_ckpt *ret_ckpt, char *err,
    size_t errlen)
{
	struct reg_ckpt c;

	memset(&c, 0, sizeof(c));
	if (key_name_check(pb->node) != 0) {
		snprintf(err, errlen, "invalid node name '%.64s' in checkpoint", pb->node);
		return -EINVAL;
	}
	if (key_name_check(pb->component) != 0) {
		snprintf(err, errlen, "invalid component name '%.64s' in checkpoint", pb->component);
		return -EINVAL;
	}
	if (pb->seq == 0) {
		snprintf(err, errlen, "checkpoint %s/%s has seq 0", pb->node, pb->component);
		return -EINVAL;
	}
	/* Its identity: the digest, or the plain SHA-256 of a sender older than digests. */
	if (pb->digest.len != SHA_LEN && (pb->digest.len != 0 || pb->sha256.len != SHA_LEN)) {
		snprintf(err, errlen, "checkpoint %s/%s@%llu: digest has %zu bytes and sha256 %zu, "
		    "want a %d-byte digest (or sha256)", pb->node, pb->component,
		    (unsigned long long)pb->seq, pb->digest.len, pb->sha256.len, SHA_LEN);
		return -EINVAL;
	}
	if (wire_text_check(pb->kind, LIMIT_KIND_MAX) != 0) {
		snprintf(err, errlen, "checkpoint %s/%s: kind too long or not printable", pb->node,
		    pb->component);
		return -EINVAL;
	}
	wire_copy(c.rk_node, sizeof(c.rk_node), pb->node);
	wire_copy(c.rk_component, sizeof(c.rk_component), pb->component);
	wire_copy(c.rk_kind, sizeof(c.rk_kind), pb->kind);
	c.rk_seq = pb->seq;
	c.rk_epoch = pb->epoch;
	c.rk_size = pb->size;
	c.rk_created_unix_ms = pb->created_unix_ms;
	c.rk_chunk_count = pb->chunk_count;
	memcpy(c.rk_sha256, pb->digest.len == SHA_LEN ? pb->digest.data : pb->sha256.data, SHA_LEN);
	*ret_ckpt = c;
	return 0;
}

/* ---- to the wire ---- */

static ProtobufCBinaryData
wire_bytes(struct arena *a, const uint8_t *p, size_t len, int *ok)
{
	ProtobufCBinaryData b = { 0, NULL };

	b.data = arena_memdup(a, p, len);
	if (b.data == NULL)
		*ok = 0;
	else
		b.len = len;
	return b;
}

Ckpt__V1__Capacity *
wire_cap_to_pb(struct arena *a, const struct reg_capacity *c)
{
	Ckpt__V1__Capacity *pb = arena_alloc(a, sizeof(*pb));

	if (pb == NULL)
		return NULL;
	ckpt__v1__capacity__init(pb);
	pb->mem_free_bytes = c->rcap_mem_free;
	pb->mem_total_bytes = c->rcap_mem_total;
	pb->cpu_count = c->rcap_cpu_count;
	pb->cpu_load_milli = c->rcap_cpu_load_milli;
	return pb;
}

Ckpt__V1__Label *
wire_label_to_pb(struct arena *a, const struct reg_label *l)
{
	Ckpt__V1__Label *pb = arena_alloc(a, sizeof(*pb));

	if (pb == NULL)
		return NULL;
	ckpt__v1__label__init(pb);
	pb->key = arena_strdup(a, l->rl_key);
	pb->value = arena_strdup(a, l->rl_value);
	return pb->key != NULL && pb->value != NULL ? pb : NULL;
}

Ckpt__V1__CheckpointRef *
wire_ref_to_pb(struct arena *a, const struct reg_ref *r)
{
	Ckpt__V1__CheckpointRef *pb = arena_alloc(a, sizeof(*pb));
	int ok = 1;

	if (pb == NULL)
		return NULL;
	ckpt__v1__checkpoint_ref__init(pb);
	pb->node = arena_strdup(a, r->rr_node);
	pb->component = arena_strdup(a, r->rr_component);
	pb->seq = r->rr_seq;
	if (r->rr_has_sha)
		pb->sha256 = wire_bytes(a, r->rr_sha256, SHA_LEN, &ok);
	return ok && pb->node != NULL && pb->component != NULL ? pb : NULL;
}

Ckpt__V1__ComponentStatus *
wire_comp_to_pb(struct arena *a, const struct reg_comp *c)
{
	Ckpt__V1__ComponentStatus *pb = arena_alloc(a, sizeof(*pb));
	int ok = 1;

	if (pb == NULL)
		return NULL;
	ckpt__v1__component_status__init(pb);
	pb->name = arena_strdup(a, c->rc_name);
	pb->state = arena_strdup(a, c->rc_state);
	pb->kind = arena_strdup(a, c->rc_kind);
	pb->last_seq = c->rc_last_seq;
	pb->epoch = c->rc_epoch;
	pb->state_bytes = c->rc_state_bytes;
	pb->pid = c->rc_pid;
	pb->restarts = c->rc_restarts;
	pb->crashes = c->rc_crashes;
	pb->last_unix_ms = c->rc_last_unix_ms;
	pb->reason = arena_strdup(a, c->rc_reason);
	if (pb->reason == NULL)
		ok = 0;
	if (c->rc_has_restored) {
		pb->restored_from = wire_ref_to_pb(a, &c->rc_restored_from);
		if (pb->restored_from == NULL)
			ok = 0;
	}
	if (c->rc_has_state_sha)
		pb->state_sha256 = wire_bytes(a, c->rc_state_sha256, SHA_LEN, &ok);
	if (c->rc_nrequires > 0) {
		pb->requires = arena_alloc(a, c->rc_nrequires * sizeof(*pb->requires));
		if (pb->requires == NULL)
			return NULL;
		for (size_t i = 0; i < c->rc_nrequires; i++) {
			struct reg_label l;
			wire_copy(l.rl_key, sizeof(l.rl_key), c->rc_requires[i].rq_key);
			wire_copy(l.rl_value, sizeof(l.rl_value), c->rc_requires[i].rq_value);
			pb->requires[i] = wire_label_to_pb(a, &l);
			if (pb->requires[i] == NULL)
				return NULL;
		}
		pb->n_requires = c->rc_nrequires;
	}
	return ok && pb->name != NULL && pb->state != NULL && pb->kind != NULL ? pb : NULL;
}

Ckpt__V1__CheckpointInfo *
wire_ckpt_to_pb(struct arena *a, const struct reg_ckpt *c)
{
	Ckpt__V1__CheckpointInfo *pb = arena_alloc(a, sizeof(*pb));
	int ok = 1;

	if (pb == NULL)
		return NULL;
	ckpt__v1__checkpoint_info__init(pb);
	pb->node = arena_strdup(a, c->rk_node);
	pb->component = arena_strdup(a, c->rk_component);
	pb->kind = arena_strdup(a, c->rk_kind);
	pb->seq = c->rk_seq;
	pb->epoch = c->rk_epoch;
	pb->size = c->rk_size;
	pb->created_unix_ms = c->rk_created_unix_ms;
	pb->chunk_count = c->rk_chunk_count;
	pb->digest = wire_bytes(a, c->rk_sha256, SHA_LEN, &ok);
	return ok && pb->node != NULL && pb->component != NULL && pb->kind != NULL ? pb : NULL;
}

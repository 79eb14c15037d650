#include "svc_spec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct svc_kept {
	struct svc_kept *sk_next;
	struct spec *sk_spec;
	uint8_t *sk_packed; /* its message, packed: to tell an equal spec */
	size_t sk_len;
};

static struct svc_kept *
kept_find(const struct agent *a, const char *name)
{
	struct svc_kept *k = atomic_load(&((struct agent *)a)->a_kept);

	for (; k != NULL; k = k->sk_next)
		if (strcmp(k->sk_spec->sp_name, name) == 0)
			return k;
	return NULL;
}

const struct spec *
svc_spec_kept_find(const struct agent *a, const char *name)
{
	struct svc_kept *k = kept_find(a, name);
	return k != NULL ? k->sk_spec : NULL;
}

struct spec *
svc_spec_keep(struct agent *a, struct spec *s)
{
	Ckpt__V1__ComponentSpec *pb = NULL;
	struct svc_kept *k, *old;
	size_t len;

	if (spec_to_pb(s, &pb) != 0)
		return s;
	len = ckpt__v1__component_spec__get_packed_size(pb);
	old = kept_find(a, s->sp_name);
	k = calloc(1, sizeof(*k));
	if (k != NULL)
		k->sk_packed = malloc(len > 0 ? len : 1);
	if (k == NULL || k->sk_packed == NULL) {
		free(k);
		spec_pb_free(pb);
		return s;
	}
	k->sk_len = ckpt__v1__component_spec__pack(pb, k->sk_packed);
	spec_pb_free(pb);
	if (old != NULL && old->sk_len == k->sk_len &&
	    memcmp(old->sk_packed, k->sk_packed, k->sk_len) == 0) {
		free(k->sk_packed);
		free(k);
		return s;
	}
	k->sk_spec = s;
	k->sk_next = atomic_load(&a->a_kept);
	while (!atomic_compare_exchange_weak(&a->a_kept, &k->sk_next, k))
		;
	return NULL;
}

void
svc_spec_kept_free(struct agent *a)
{
	struct svc_kept *k = atomic_exchange(&a->a_kept, NULL), *next;

	for (; k != NULL; k = next) {
		next = k->sk_next;
		spec_free(k->sk_spec);
		free(k->sk_packed);
		free(k);
	}
}

int
svc_spec_take(const struct agent *a, const Ckpt__V1__ComponentSpec *pb, const char *component,
    struct spec **ret_spec, char *msg, size_t msglen)
{
	static const struct spec_allow none = { 0 };
	const struct spec_allow *allow = a->a_config != NULL ? &a->a_config->sc_allow : &none;
	struct spec *s = NULL;
	char why[RPC_ERRMSG_MAX];
	int rv;

	rv = spec_from_pb(pb, &s, why, sizeof(why));
	if (rv != 0) {
		snprintf(msg, msglen, "node %s refuses the spec of %s: %s", a->a_node, component, why);
		return rv == -ENOMEM ? rv : -EINVAL;
	}
	if (strcmp(s->sp_name, component) != 0) {
		snprintf(msg, msglen, "node %s refuses the spec of %s: it names component %s",
		    a->a_node, component, s->sp_name);
		spec_free(s);
		return -EINVAL;
	}
	rv = spec_check(s, allow, why, sizeof(why));
	if (rv != 0) {
		snprintf(msg, msglen, "node %s refuses the spec of %s: %s", a->a_node, component, why);
		spec_free(s);
		return rv == -EINVAL ? rv : rv == -EACCES || rv == -EPERM ? -EACCES : -ESTALE;
	}
	*ret_spec = s;
	return 0;
}

void
svc_spec_drv(const struct spec *s, const char *component, struct drv_setting *set,
    char buf[SVC_SPEC_SETTING_MAX], struct drv_spec *ret_spec)
{
	memset(ret_spec, 0, sizeof(*ret_spec));
	ret_spec->sp_name = component;
	if (strcmp(s->sp_driver, "demo") == 0) {
		snprintf(buf, SVC_SPEC_SETTING_MAX, "%" PRIu64, s->sp_demo_bytes);
		set->st_key = "bytes";
		set->st_value = buf;
		ret_spec->sp_settings = set;
		ret_spec->sp_nsettings = 1;
	} else {
		ret_spec->sp_exec = &s->sp_exec;
	}
}

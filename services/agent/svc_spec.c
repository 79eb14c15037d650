#include "svc_spec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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

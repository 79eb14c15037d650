/*
 * spec_pb: a spec on the wire (ckpt.v1.ComponentSpec). See spec.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "spec_impl.h"

struct pb_all {
	Ckpt__V1__ComponentSpec ps_spec;
	Ckpt__V1__ExecSettings ps_exec;
	Ckpt__V1__DemoSettings ps_demo;
	Ckpt__V1__RestartPolicy ps_restart;
	Ckpt__V1__Label ps_labels[LIMIT_REQUIRES_MAX];
	Ckpt__V1__Label *ps_label_ptrs[LIMIT_REQUIRES_MAX];
};

static char *
str_or_empty(char *s)
{
	return s != NULL ? s : (char *)"";
}

int
spec_to_pb(const struct spec *s, Ckpt__V1__ComponentSpec **ret_pb)
{
	struct pb_all *p = calloc(1, sizeof(*p));
	const struct exec_conf *c = &s->sp_exec;

	if (p == NULL)
		return -ENOMEM;
	ckpt__v1__component_spec__init(&p->ps_spec);
	ckpt__v1__exec_settings__init(&p->ps_exec);
	ckpt__v1__demo_settings__init(&p->ps_demo);
	ckpt__v1__restart_policy__init(&p->ps_restart);
	p->ps_spec.name = (char *)s->sp_name;
	p->ps_spec.driver = (char *)s->sp_driver;
	p->ps_spec.interval_ms = s->sp_interval_ms;
	p->ps_spec.limit_bytes = s->sp_limit;
	p->ps_spec.fresh = s->sp_fresh;
	p->ps_restart.max_restarts = s->sp_max_restarts;
	p->ps_restart.backoff_ms = s->sp_backoff_ms;
	p->ps_spec.restart = &p->ps_restart;
	for (size_t i = 0; i < s->sp_nrequires; i++) {
		ckpt__v1__label__init(&p->ps_labels[i]);
		p->ps_labels[i].key = (char *)s->sp_requires[i].sr_key;
		p->ps_labels[i].value = (char *)s->sp_requires[i].sr_value;
		p->ps_label_ptrs[i] = &p->ps_labels[i];
	}
	p->ps_spec.n_requires = s->sp_nrequires;
	p->ps_spec.requires = p->ps_label_ptrs;
	if (strcmp(s->sp_driver, DRIVER_EXEC) == 0 || strcmp(s->sp_driver, DRIVER_LIB) == 0) {
		p->ps_exec.n_run = spec_strv_len(c->xc_run);
		p->ps_exec.run = c->xc_run;
		p->ps_exec.n_dump = spec_strv_len(c->xc_dump);
		p->ps_exec.dump = c->xc_dump;
		p->ps_exec.n_restore = spec_strv_len(c->xc_restore);
		p->ps_exec.restore = c->xc_restore;
		p->ps_exec.n_quiesce = spec_strv_len(c->xc_quiesce);
		p->ps_exec.quiesce = c->xc_quiesce;
		p->ps_exec.n_resume = spec_strv_len(c->xc_resume);
		p->ps_exec.resume = c->xc_resume;
		p->ps_exec.n_ready = spec_strv_len(c->xc_ready);
		p->ps_exec.ready = c->xc_ready;
		p->ps_exec.n_env = spec_strv_len(c->xc_env);
		p->ps_exec.env = c->xc_env;
		p->ps_exec.folder = str_or_empty(c->xc_dir);
		p->ps_exec.dump_path = str_or_empty(c->xc_dump_path);
		p->ps_exec.restore_path = str_or_empty(c->xc_restore_path);
		p->ps_exec.log_path = str_or_empty(c->xc_log_path);
		p->ps_exec.dump_timeout_ms = c->xc_dump_timeout_ms;
		p->ps_exec.restore_timeout_ms = c->xc_restore_timeout_ms;
		p->ps_exec.shell = c->xc_shell;
		p->ps_exec.user = str_or_empty(s->sp_user);
		p->ps_spec.settings_case = CKPT__V1__COMPONENT_SPEC__SETTINGS_EXEC;
		p->ps_spec.exec = &p->ps_exec;
	} else if (strcmp(s->sp_driver, DRIVER_DEMO) == 0) {
		p->ps_demo.bytes = s->sp_demo_bytes;
		p->ps_spec.settings_case = CKPT__V1__COMPONENT_SPEC__SETTINGS_DEMO;
		p->ps_spec.demo = &p->ps_demo;
	}
	*ret_pb = &p->ps_spec;
	return 0;
}

void
spec_pb_free(Ckpt__V1__ComponentSpec *pb)
{
	/* ps_spec is the first member of the block spec_to_pb() allocated. */
	free(pb);
}

/* A received string: bounded, and "" is absent (NULL). */
static int
pb_str(const char *what, const char *v, char **ret, char *err, size_t errlen)
{
	if (v == NULL || v[0] == '\0')
		return 0;
	if (strlen(v) > SPEC_STR_MAX) {
		snprintf(err, errlen, "%s: longer than %d bytes", what, SPEC_STR_MAX);
		return -EINVAL;
	}
	*ret = strdup(v);
	return *ret == NULL ? -ENOMEM : 0;
}

static int
pb_strv(const char *what, char *const *v, size_t n, size_t max, char ***ret, char *err,
    size_t errlen)
{
	if (n == 0)
		return 0;
	if (n > max) {
		snprintf(err, errlen, "%s: more than %zu words", what, max);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if (v[i] == NULL || strlen(v[i]) > SPEC_STR_MAX) {
			snprintf(err, errlen, "%s: a word longer than %d bytes", what, SPEC_STR_MAX);
			return -EINVAL;
		}
	*ret = spec_strv_dup(v, n);
	return *ret == NULL ? -ENOMEM : 0;
}

int
spec_from_pb(const Ckpt__V1__ComponentSpec *pb, struct spec **ret_spec, char *err,
    size_t errlen)
{
	struct spec *s = spec_new();
	int rv = -EINVAL;

	if (s == NULL)
		return -ENOMEM;
	if (pb->name == NULL || key_name_check(pb->name) != 0) {
		snprintf(err, errlen, "name: not 1-%d of [A-Za-z0-9._-]", KEY_NAME_MAX);
		goto out;
	}
	snprintf(s->sp_name, sizeof(s->sp_name), "%s", pb->name);
	if (pb->driver == NULL || pb->driver[0] == '\0' || strlen(pb->driver) > LIMIT_KIND_MAX) {
		snprintf(err, errlen, "driver: missing or longer than %d bytes", LIMIT_KIND_MAX);
		goto out;
	}
	snprintf(s->sp_driver, sizeof(s->sp_driver), "%s", pb->driver);
	s->sp_interval_ms = pb->interval_ms;
	if (pb->limit_bytes != 0)
		s->sp_limit = pb->limit_bytes;
	s->sp_fresh = pb->fresh;
	if (pb->restart != NULL) {
		s->sp_max_restarts = pb->restart->max_restarts;
		s->sp_backoff_ms = pb->restart->backoff_ms;
	}
	if (pb->n_requires > LIMIT_REQUIRES_MAX) {
		snprintf(err, errlen, "requires: more than %d labels", LIMIT_REQUIRES_MAX);
		goto out;
	}
	for (size_t i = 0; i < pb->n_requires; i++) {
		const Ckpt__V1__Label *lb = pb->requires[i];
		struct spec_req *r = &s->sp_requires[i];
		if (lb == NULL || lb->key == NULL || key_name_check(lb->key) != 0 ||
		    (lb->value != NULL && strlen(lb->value) > LIMIT_REQ_VALUE_MAX)) {
			snprintf(err, errlen, "requires: invalid label");
			goto out;
		}
		snprintf(r->sr_key, sizeof(r->sr_key), "%s", lb->key);
		snprintf(r->sr_value, sizeof(r->sr_value), "%s", lb->value != NULL ? lb->value : "");
		s->sp_nrequires++;
	}
	if (strcmp(s->sp_driver, DRIVER_DEMO) == 0) {
		if (pb->settings_case != CKPT__V1__COMPONENT_SPEC__SETTINGS_DEMO || pb->demo == NULL) {
			snprintf(err, errlen, "driver: demo without demo settings");
			goto out;
		}
		s->sp_demo_bytes = pb->demo->bytes;
	} else if (strcmp(s->sp_driver, DRIVER_EXEC) == 0 || strcmp(s->sp_driver, DRIVER_LIB) == 0) {
		/* A lib component's settings are exec's, run alone (exec.h: xc_run_only). */
		const Ckpt__V1__ExecSettings *e = pb->exec;
		struct exec_conf *c = &s->sp_exec;

		if (pb->settings_case != CKPT__V1__COMPONENT_SPEC__SETTINGS_EXEC || e == NULL) {
			snprintf(err, errlen, "driver: %s without exec settings", s->sp_driver);
			goto out;
		}
		if ((rv = pb_strv("run", e->run, e->n_run, SPEC_WORDS_MAX, &c->xc_run, err,
			 errlen)) != 0 ||
		    (rv = pb_strv("dump", e->dump, e->n_dump, SPEC_WORDS_MAX, &c->xc_dump, err,
			 errlen)) != 0 ||
		    (rv = pb_strv("restore", e->restore, e->n_restore, SPEC_WORDS_MAX,
			 &c->xc_restore, err, errlen)) != 0 ||
		    (rv = pb_strv("quiesce", e->quiesce, e->n_quiesce, SPEC_WORDS_MAX,
			 &c->xc_quiesce, err, errlen)) != 0 ||
		    (rv = pb_strv("resume", e->resume, e->n_resume, SPEC_WORDS_MAX, &c->xc_resume,
			 err, errlen)) != 0 ||
		    (rv = pb_strv("ready", e->ready, e->n_ready, SPEC_WORDS_MAX, &c->xc_ready,
			 err, errlen)) != 0 ||
		    (rv = pb_strv("env", e->env, e->n_env, SPEC_ENV_MAX, &c->xc_env, err,
			 errlen)) != 0 ||
		    (rv = pb_str("folder", e->folder, &c->xc_dir, err, errlen)) != 0 ||
		    (rv = pb_str("dump-path", e->dump_path, &c->xc_dump_path, err, errlen)) != 0 ||
		    (rv = pb_str("restore-path", e->restore_path, &c->xc_restore_path, err,
			 errlen)) != 0 ||
		    (rv = pb_str("log-path", e->log_path, &c->xc_log_path, err, errlen)) != 0 ||
		    (rv = pb_str("user", e->user, &s->sp_user, err, errlen)) != 0) {
			if (rv == -ENOMEM)
				snprintf(err, errlen, "out of memory");
			goto out;
		}
		c->xc_dump_timeout_ms = e->dump_timeout_ms;
		c->xc_restore_timeout_ms = e->restore_timeout_ms;
		c->xc_shell = e->shell;
		c->xc_limit = s->sp_limit;
		c->xc_run_only = strcmp(s->sp_driver, DRIVER_LIB) == 0;
		rv = exec_conf_check(c, err, errlen);
		if (rv != 0)
			goto out;
	} else {
		/* Unknown drivers travel: spec_check() on the node refuses them. */
		if (pb->settings_case != CKPT__V1__COMPONENT_SPEC__SETTINGS__NOT_SET) {
			snprintf(err, errlen, "driver: settings of another driver");
			goto out;
		}
	}
	rv = 0;
	*ret_spec = s;
	s = NULL;
out:
	spec_free(s);
	return rv;
}

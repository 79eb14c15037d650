/*
 * spec_ini: the agent's config file. See spec.h.
 *
 * Loading is three steps, as in Mosquitto: inih reads the file into raw
 * values per section (with their line numbers), each component's raw values
 * become a typed spec through one table of fields (SPEC_FIELDS), and each
 * spec is checked against the file's [allow] section. inih is given its lines
 * by this file's reader, which counts them, knows which are continuations
 * and keeps each section header whole (inih's own section buffer is 50
 * bytes).
 */
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"
#include "spec.h"
#include "spec_impl.h"
#include "util.h"

#define SECTION_MAX (KEY_NAME_MAX + 32)
#define COMPONENT_PREFIX "component "

enum field {
	F_DRIVER,
	F_INTERVAL,
	F_LIMIT,
	F_REQUIRES,
	F_MAX_RESTARTS,
	F_BACKOFF,
	F_FRESH,
	F_BYTES,
	F_RUN,
	F_DUMP,
	F_RESTORE,
	F_QUIESCE,
	F_RESUME,
	F_READY,
	F_ENV,
	F_FOLDER,
	F_DUMP_PATH,
	F_RESTORE_PATH,
	F_LOG_PATH,
	F_DUMP_TIMEOUT,
	F_RESTORE_TIMEOUT,
	F_SHELL,
	F_USER,
	F_COUNT,
};

/*
 * The keys of a [component] section: name, the driver they belong to ("":
 * any), and whether driver lib (a program that checkpoints itself) has it too.
 */
static const struct {
	const char *f_name;
	const char *f_driver;
	bool f_lib;
} SPEC_FIELDS[F_COUNT] = {
	[F_DRIVER] = { "driver", "", false },
	[F_INTERVAL] = { "interval", "", false },
	[F_LIMIT] = { "limit", "", false },
	[F_REQUIRES] = { "requires", "", false },
	[F_MAX_RESTARTS] = { "max-restarts", "", false },
	[F_BACKOFF] = { "backoff", "", false },
	[F_FRESH] = { "fresh", "", false },
	[F_BYTES] = { "bytes", DRIVER_DEMO, false },
	[F_RUN] = { "run", DRIVER_EXEC, true },
	[F_DUMP] = { "dump", DRIVER_EXEC, false },
	[F_RESTORE] = { "restore", DRIVER_EXEC, false },
	[F_QUIESCE] = { "quiesce", DRIVER_EXEC, false },
	[F_RESUME] = { "resume", DRIVER_EXEC, false },
	[F_READY] = { "ready", DRIVER_EXEC, false },
	[F_ENV] = { "env", DRIVER_EXEC, true },
	[F_FOLDER] = { "folder", DRIVER_EXEC, true },
	[F_DUMP_PATH] = { "dump-path", DRIVER_EXEC, false },
	[F_RESTORE_PATH] = { "restore-path", DRIVER_EXEC, false },
	[F_LOG_PATH] = { "log-path", DRIVER_EXEC, true },
	[F_DUMP_TIMEOUT] = { "dump-timeout", DRIVER_EXEC, false },
	[F_RESTORE_TIMEOUT] = { "restore-timeout", DRIVER_EXEC, false },
	[F_SHELL] = { "shell", DRIVER_EXEC, false },
	[F_USER] = { "user", DRIVER_EXEC, false }, /* lib: the local socket is the agent's user's */
};

/* Fields whose value may continue on indented lines (joined with '\n'). */
static bool
field_multiline(enum field f)
{
	return f == F_RUN || f == F_DUMP || f == F_RESTORE || f == F_QUIESCE || f == F_RESUME ||
	    f == F_READY ||
	    f == F_ENV || f == F_REQUIRES;
}

static int
field_find(const char *name)
{
	for (int f = 0; f < F_COUNT; f++)
		if (strcmp(SPEC_FIELDS[f].f_name, name) == 0)
			return f;
	return -1;
}

struct raw {
	char *r_val[F_COUNT];
	int r_line[F_COUNT];
};

struct pending {
	char p_name[KEY_NAME_MAX + 1];
	int p_line;
	struct raw p_raw;
};

enum sect { S_NONE, S_AGENT, S_ALLOW, S_COMPONENT, S_UNKNOWN };

enum allow_key { A_DRIVERS, A_PROGRAMS, A_FOLDERS, A_USERS, A_SHELL, A_COUNT };
static const char *const ALLOW_KEYS[A_COUNT] = { "drivers", "programs", "folders", "users",
	"shell" };

struct load {
	const char *l_path;
	FILE *l_file;
	/* the reader's view */
	int l_line;
	bool l_cont;             /* this line continues the value above */
	int l_sect_n;            /* section headers read so far */
	int l_sect_line;
	char l_sect[SECTION_MAX + 1];
	bool l_sect_long;
	/* the handler's view */
	enum sect l_kind;
	int l_last_field;        /* field of the previous key (continuations) */
	int l_allow_line[A_COUNT];
	char *l_allow_raw[A_COUNT];
	struct pending *l_comps;
	size_t l_ncomps;
	const struct cfg_opt *l_opts;
	size_t l_nopts;
	struct spec_config *l_cfg;
	bool l_specs_only;       /* a spec file: components only, checked for form */
	/* the first error */
	int l_err_line;
	char l_err[512];
};

static void
load_fail(struct load *l, int line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
load_fail(struct load *l, int line, const char *field, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	if (l->l_err_line != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	l->l_err_line = line;
	snprintf(l->l_err, sizeof(l->l_err), "%s:%d: %s: %s", l->l_path, line, field, msg);
}

/* A new section begins: what kind, and for a component, its name. */
static int
load_section(struct load *l)
{
	const char *s = l->l_sect;

	l->l_last_field = -1;
	if (l->l_sect_long) {
		load_fail(l, l->l_sect_line, "section", "name longer than %d bytes", SECTION_MAX);
		return -EINVAL;
	}
	if (l->l_specs_only && (strcmp(s, "agent") == 0 || strcmp(s, "allow") == 0)) {
		load_fail(l, l->l_sect_line, "section", "[%s] belongs in an agent's config file; a "
		    "spec file holds [component NAME] sections only", s);
		return -EINVAL;
	}
	if (strcmp(s, "agent") == 0) {
		l->l_kind = S_AGENT;
		return 0;
	}
	if (strcmp(s, "allow") == 0) {
		l->l_kind = S_ALLOW;
		return 0;
	}
	if (strncmp(s, COMPONENT_PREFIX, strlen(COMPONENT_PREFIX)) == 0) {
		const char *name = s + strlen(COMPONENT_PREFIX);
		struct pending *np;

		while (*name == ' ')
			name++;
		if (key_name_check(name) != 0) {
			load_fail(l, l->l_sect_line, "component", "'%s' is not a name of 1-%d of "
			    "[A-Za-z0-9._-]", name, KEY_NAME_MAX);
			return -EINVAL;
		}
		for (size_t i = 0; i < l->l_ncomps; i++)
			if (strcmp(l->l_comps[i].p_name, name) == 0) {
				load_fail(l, l->l_sect_line, "component", "'%s' is declared twice "
				    "(first on line %d)", name, l->l_comps[i].p_line);
				return -EINVAL;
			}
		if (l->l_ncomps == LIMIT_NODE_COMPONENTS_MAX) {
			load_fail(l, l->l_sect_line, "component", "more than %d components",
			    LIMIT_NODE_COMPONENTS_MAX);
			return -EINVAL;
		}
		np = realloc(l->l_comps, (l->l_ncomps + 1) * sizeof(*np));
		if (np == NULL)
			return -ENOMEM;
		l->l_comps = np;
		memset(&np[l->l_ncomps], 0, sizeof(*np));
		snprintf(np[l->l_ncomps].p_name, sizeof(np->p_name), "%s", name);
		np[l->l_ncomps].p_line = l->l_sect_line;
		l->l_ncomps++;
		l->l_kind = S_COMPONENT;
		return 0;
	}
	load_fail(l, l->l_sect_line, "section", "unknown section [%s] (agent, allow, component "
	    "NAME)", s);
	return -EINVAL;
}

/*
 * inih's fgets: counts lines, marks continuations, keeps section headers
 * whole; a line too long for inih's buffer ends the parse with an error.
 */
static char *
load_reader(char *str, int num, void *stream)
{
	struct load *l = stream;
	char *s = fgets(str, num, l->l_file), *p;
	size_t n;

	if (s == NULL)
		return NULL;
	l->l_line++;
	n = strlen(s);
	if (n > 0 && s[n - 1] != '\n' && !feof(l->l_file)) {
		load_fail(l, l->l_line, "line", "longer than %d bytes (continue a command on "
		    "indented lines)", SPEC_LINE_MAX);
		return NULL;
	}
	for (p = s; *p == ' ' || *p == '\t'; p++)
		;
	l->l_cont = p > s && *p != '\0' && *p != '\n' && *p != '\r' && *p != ';' && *p != '#';
	if (p == s && *p == '[') {
		char *end = strchr(p, ']');
		size_t len = end != NULL ? (size_t)(end - p - 1) : 0;
		l->l_sect_n++;
		l->l_sect_line = l->l_line;
		l->l_sect_long = len > SECTION_MAX;
		if (end != NULL && !l->l_sect_long) {
			memcpy(l->l_sect, p + 1, len);
			l->l_sect[len] = '\0';
		} else {
			l->l_sect[0] = '\0';
		}
		/* Here, not in the handler: a section without keys is checked too. */
		if (end != NULL && l->l_err_line == 0 && load_section(l) != 0) {
			l->l_kind = S_UNKNOWN;
			if (l->l_err_line == 0)
				load_fail(l, l->l_line, "section", "out of memory");
		}
	}
	return s;
}

static int
append_raw(char **slot, const char *value)
{
	char *nv = NULL;

	if (*slot == NULL) {
		*slot = strdup(value);
		return *slot == NULL ? -ENOMEM : 0;
	}
	if (asprintf(&nv, "%s\n%s", *slot, value) < 0)
		return -ENOMEM;
	free(*slot);
	*slot = nv;
	return 0;
}

static int
load_agent_key(struct load *l, const char *name, const char *value)
{
	const struct cfg_opt *opt = NULL;
	struct spec_config *cfg = l->l_cfg;
	struct spec_setting *ns;

	for (size_t i = 0; i < l->l_nopts && opt == NULL; i++)
		if (strcmp(l->l_opts[i].co_name, name) == 0)
			opt = &l->l_opts[i];
	if (opt == NULL) {
		load_fail(l, l->l_line, name, "unknown setting in [agent]");
		return -EINVAL;
	}
	for (size_t i = 0; i < cfg->sc_nagent && opt->co_type != CFG_LIST; i++)
		if (strcmp(cfg->sc_agent[i].ss_key, name) == 0) {
			load_fail(l, l->l_line, name, "given twice (first on line %d)",
			    cfg->sc_agent[i].ss_line);
			return -EINVAL;
		}
	ns = realloc(cfg->sc_agent, (cfg->sc_nagent + 1) * sizeof(*ns));
	if (ns == NULL)
		return -ENOMEM;
	cfg->sc_agent = ns;
	ns[cfg->sc_nagent].ss_key = strdup(name);
	ns[cfg->sc_nagent].ss_value = strdup(value);
	ns[cfg->sc_nagent].ss_line = l->l_line;
	cfg->sc_nagent++;
	if (ns[cfg->sc_nagent - 1].ss_key == NULL || ns[cfg->sc_nagent - 1].ss_value == NULL)
		return -ENOMEM;
	return 0;
}

static int
load_allow_key(struct load *l, const char *name, const char *value)
{
	int k = -1;

	for (int i = 0; i < A_COUNT; i++)
		if (strcmp(ALLOW_KEYS[i], name) == 0)
			k = i;
	if (k < 0) {
		load_fail(l, l->l_line, name, "unknown key in [allow] (drivers, programs, folders, "
		    "users, shell)");
		return -EINVAL;
	}
	if (l->l_cont && l->l_last_field == k && k != A_SHELL)
		return append_raw(&l->l_allow_raw[k], value);
	if (l->l_allow_line[k] != 0) {
		load_fail(l, l->l_line, name, "given twice (first on line %d)", l->l_allow_line[k]);
		return -EINVAL;
	}
	l->l_allow_line[k] = l->l_line;
	l->l_last_field = k;
	return append_raw(&l->l_allow_raw[k], value);
}

static int
load_component_key(struct load *l, const char *name, const char *value)
{
	struct raw *r = &l->l_comps[l->l_ncomps - 1].p_raw;
	int f = field_find(name);

	if (f < 0) {
		load_fail(l, l->l_line, name, "unknown key in [component %s]",
		    l->l_comps[l->l_ncomps - 1].p_name);
		return -EINVAL;
	}
	if (l->l_cont && l->l_last_field == f) {
		if (!field_multiline((enum field)f)) {
			load_fail(l, l->l_line, name, "does not continue on another line");
			return -EINVAL;
		}
		return append_raw(&r->r_val[f], value);
	}
	if (r->r_line[f] != 0) {
		load_fail(l, l->l_line, name, "given twice (first on line %d)", r->r_line[f]);
		return -EINVAL;
	}
	r->r_line[f] = l->l_line;
	l->l_last_field = f;
	return append_raw(&r->r_val[f], value);
}

static int
load_handler(void *user, const char *section, const char *name, const char *value)
{
	struct load *l = user;
	int rv = 0;

	(void)section; /* inih's copy is cut at 50 bytes: the reader's is whole */
	if (l->l_err_line != 0)
		return 0;
	switch (l->l_kind) {
	case S_NONE:
		load_fail(l, l->l_line, name, "a key before any section");
		rv = -EINVAL;
		break;
	case S_AGENT:
		rv = load_agent_key(l, name, value);
		break;
	case S_ALLOW:
		rv = load_allow_key(l, name, value);
		break;
	case S_COMPONENT:
		rv = load_component_key(l, name, value);
		break;
	default:
		rv = -EINVAL;
		break;
	}
	if (rv == -ENOMEM)
		load_fail(l, l->l_line, name, "out of memory");
	return rv == 0;
}

static int
parse_bool(const char *v, bool *ret)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0)
		*ret = true;
	else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0)
		*ret = false;
	else
		return -EINVAL;
	return 0;
}

static int
list_of(struct load *l, int k, size_t max, char ***ret)
{
	char reason[200];
	char **w = NULL;

	if (l->l_allow_raw[k] == NULL)
		return 0;
	if (spec_words(l->l_allow_raw[k], max, &w, reason, sizeof(reason)) != 0) {
		load_fail(l, l->l_allow_line[k], ALLOW_KEYS[k], "%s", reason);
		return -EINVAL;
	}
	*ret = w;
	return 0;
}

static int
load_allow(struct load *l)
{
	struct spec_allow *a = &l->l_cfg->sc_allow;
	int rv;

	if ((rv = list_of(l, A_DRIVERS, SPEC_ALLOW_MAX, &a->sa_drivers)) != 0 ||
	    (rv = list_of(l, A_PROGRAMS, SPEC_ALLOW_MAX, &a->sa_programs)) != 0 ||
	    (rv = list_of(l, A_FOLDERS, SPEC_ALLOW_MAX, &a->sa_folders)) != 0 ||
	    (rv = list_of(l, A_USERS, SPEC_ALLOW_MAX, &a->sa_users)) != 0)
		return rv;
	for (size_t i = 0; a->sa_drivers != NULL && a->sa_drivers[i] != NULL; i++)
		if (strcmp(a->sa_drivers[i], DRIVER_DEMO) != 0 &&
		    strcmp(a->sa_drivers[i], DRIVER_EXEC) != 0 &&
		    strcmp(a->sa_drivers[i], DRIVER_LIB) != 0) {
			load_fail(l, l->l_allow_line[A_DRIVERS], "drivers", "unknown driver '%s' "
			    "(known: demo, exec, lib)", a->sa_drivers[i]);
			return -EINVAL;
		}
	for (int k = A_PROGRAMS; k <= A_FOLDERS; k++) {
		char **v = k == A_PROGRAMS ? a->sa_programs : a->sa_folders;
		for (size_t i = 0; v != NULL && v[i] != NULL; i++)
			if (v[i][0] != '/' || spec_path_has_dotdot(v[i])) {
				load_fail(l, l->l_allow_line[k], ALLOW_KEYS[k], "'%s' is not an "
				    "absolute path without '..'", v[i]);
				return -EINVAL;
			}
	}
	if (l->l_allow_raw[A_SHELL] != NULL && parse_bool(l->l_allow_raw[A_SHELL], &a->sa_shell) != 0) {
		load_fail(l, l->l_allow_line[A_SHELL], "shell", "want true or false, not '%s'",
		    l->l_allow_raw[A_SHELL]);
		return -EINVAL;
	}
	return 0;
}

/* Raw values of one component -> a spec; errors at the line of their field. */
static int
load_component(struct load *l, struct pending *p, struct spec **ret)
{
	struct raw *r = &p->p_raw;
	struct spec *s = spec_new();
	struct exec_conf *c;
	char reason[300];
	int f, rv = -EINVAL;
	int64_t iv;

	if (s == NULL)
		return -ENOMEM;
	c = &s->sp_exec;
	snprintf(s->sp_name, sizeof(s->sp_name), "%s", p->p_name);
	s->sp_line = p->p_line;
	if (r->r_val[F_DRIVER] == NULL) {
		load_fail(l, p->p_line, "driver", "missing in [component %s]", p->p_name);
		goto out;
	}
	if (strlen(r->r_val[F_DRIVER]) > LIMIT_KIND_MAX) {
		load_fail(l, r->r_line[F_DRIVER], "driver", "longer than %d bytes", LIMIT_KIND_MAX);
		goto out;
	}
	snprintf(s->sp_driver, sizeof(s->sp_driver), "%s", r->r_val[F_DRIVER]);
	for (f = 0; f < F_COUNT; f++) {
		const char *d = SPEC_FIELDS[f].f_driver;
		if (r->r_val[f] != NULL && d[0] != '\0' && strcmp(d, s->sp_driver) == 0)
			continue;
		if (r->r_val[f] != NULL && SPEC_FIELDS[f].f_lib &&
		    strcmp(s->sp_driver, DRIVER_LIB) == 0)
			continue;
		if (r->r_val[f] != NULL && d[0] != '\0' &&
		    (strcmp(s->sp_driver, DRIVER_DEMO) == 0 || strcmp(s->sp_driver, DRIVER_EXEC) == 0 ||
			strcmp(s->sp_driver, DRIVER_LIB) == 0)) {
			load_fail(l, r->r_line[f], SPEC_FIELDS[f].f_name, "not a setting of driver %s",
			    s->sp_driver);
			goto out;
		}
	}
	if (r->r_val[F_INTERVAL] != NULL &&
	    util_parse_duration_ms(r->r_val[F_INTERVAL], &s->sp_interval_ms) != 0) {
		load_fail(l, r->r_line[F_INTERVAL], "interval", "invalid duration '%s' (e.g. 500ms, "
		    "10s, 5m)", r->r_val[F_INTERVAL]);
		goto out;
	}
	if (r->r_val[F_BACKOFF] != NULL &&
	    util_parse_duration_ms(r->r_val[F_BACKOFF], &s->sp_backoff_ms) != 0) {
		load_fail(l, r->r_line[F_BACKOFF], "backoff", "invalid duration '%s'",
		    r->r_val[F_BACKOFF]);
		goto out;
	}
	if (r->r_val[F_LIMIT] != NULL &&
	    (util_parse_size(r->r_val[F_LIMIT], &s->sp_limit) != 0 || s->sp_limit == 0 ||
		s->sp_limit > SPEC_LIMIT_MAX)) {
		load_fail(l, r->r_line[F_LIMIT], "limit", "invalid size '%s' (1 to 1G, e.g. 64M)",
		    r->r_val[F_LIMIT]);
		goto out;
	}
	if (r->r_val[F_BYTES] != NULL &&
	    (util_parse_size(r->r_val[F_BYTES], &s->sp_demo_bytes) != 0 ||
		s->sp_demo_bytes > DEMO_BYTES_MAX)) {
		load_fail(l, r->r_line[F_BYTES], "bytes", "invalid size '%s' (0 to 1G)",
		    r->r_val[F_BYTES]);
		goto out;
	}
	if (r->r_val[F_MAX_RESTARTS] != NULL) {
		if (util_parse_int(r->r_val[F_MAX_RESTARTS], 0, 1000, &iv) != 0) {
			load_fail(l, r->r_line[F_MAX_RESTARTS], "max-restarts", "want 0 to 1000, not "
			    "'%s'", r->r_val[F_MAX_RESTARTS]);
			goto out;
		}
		s->sp_max_restarts = (uint32_t)iv;
	}
	if (r->r_val[F_FRESH] != NULL && parse_bool(r->r_val[F_FRESH], &s->sp_fresh) != 0) {
		load_fail(l, r->r_line[F_FRESH], "fresh", "want true or false, not '%s'",
		    r->r_val[F_FRESH]);
		goto out;
	}
	if (r->r_val[F_SHELL] != NULL && parse_bool(r->r_val[F_SHELL], &c->xc_shell) != 0) {
		load_fail(l, r->r_line[F_SHELL], "shell", "want true or false, not '%s'",
		    r->r_val[F_SHELL]);
		goto out;
	}
	if (r->r_val[F_REQUIRES] != NULL) {
		char **w = NULL;
		if (spec_words(r->r_val[F_REQUIRES], LIMIT_REQUIRES_MAX, &w, reason,
		    sizeof(reason)) != 0) {
			load_fail(l, r->r_line[F_REQUIRES], "requires", "%s", reason);
			goto out;
		}
		for (size_t i = 0; w[i] != NULL; i++) {
			if (spec_req_parse(w[i], &s->sp_requires[i]) != 0) {
				load_fail(l, r->r_line[F_REQUIRES], "requires", "invalid label '%s' "
				    "(KEY[=VALUE], KEY of [A-Za-z0-9._-], VALUE of at most %d bytes)",
				    w[i], LIMIT_REQ_VALUE_MAX);
				spec_words_free(w);
				goto out;
			}
			s->sp_nrequires++;
		}
		spec_words_free(w);
	}
	{
		static const enum field cmdf[] = { F_RUN, F_DUMP, F_RESTORE, F_QUIESCE, F_RESUME,
			F_READY, F_ENV };
		char ***slots[] = { &c->xc_run, &c->xc_dump, &c->xc_restore, &c->xc_quiesce,
			&c->xc_resume, &c->xc_ready, &c->xc_env };
		for (size_t i = 0; i < sizeof(cmdf) / sizeof(cmdf[0]); i++) {
			const char *v = r->r_val[cmdf[i]];
			const char *fname = SPEC_FIELDS[cmdf[i]].f_name;
			if (v == NULL)
				continue;
			if (c->xc_shell && cmdf[i] != F_ENV) {
				if (strlen(v) > SPEC_STR_MAX) {
					load_fail(l, r->r_line[cmdf[i]], fname, "longer than %d bytes",
					    SPEC_STR_MAX);
					goto out;
				}
				*slots[i] = calloc(2, sizeof(char *));
				if (*slots[i] == NULL || ((*slots[i])[0] = strdup(v)) == NULL) {
					rv = -ENOMEM;
					goto out;
				}
				continue;
			}
			/* Continuation lines join with '\n': in words, a blank like any other. */
			char *flat = strdup(v);
			if (flat == NULL) {
				rv = -ENOMEM;
				goto out;
			}
			for (char *q = flat; (q = strchr(q, '\n')) != NULL;)
				*q = ' ';
			rv = spec_words(flat, cmdf[i] == F_ENV ? SPEC_ENV_MAX : SPEC_WORDS_MAX,
			    slots[i], reason, sizeof(reason));
			free(flat);
			if (rv != 0) {
				rv = rv == -ENOMEM ? rv : -EINVAL;
				load_fail(l, r->r_line[cmdf[i]], fname, "%s", reason);
				goto out;
			}
			rv = -EINVAL;
			if ((*slots[i])[0] == NULL) {
				load_fail(l, r->r_line[cmdf[i]], fname, "empty");
				goto out;
			}
		}
	}
	{
		static const enum field strf[] = { F_FOLDER, F_DUMP_PATH, F_RESTORE_PATH, F_LOG_PATH,
			F_USER };
		char **slots[] = { &c->xc_dir, &c->xc_dump_path, &c->xc_restore_path,
			&c->xc_log_path, &s->sp_user };
		for (size_t i = 0; i < sizeof(strf) / sizeof(strf[0]); i++) {
			const char *v = r->r_val[strf[i]];
			if (v == NULL)
				continue;
			if (v[0] == '\0' || strlen(v) > SPEC_STR_MAX) {
				load_fail(l, r->r_line[strf[i]], SPEC_FIELDS[strf[i]].f_name,
				    "empty or longer than %d bytes", SPEC_STR_MAX);
				goto out;
			}
			*slots[i] = strdup(v);
			if (*slots[i] == NULL) {
				rv = -ENOMEM;
				goto out;
			}
		}
	}
	if ((r->r_val[F_DUMP_TIMEOUT] != NULL &&
		util_parse_duration_ms(r->r_val[F_DUMP_TIMEOUT], &c->xc_dump_timeout_ms) != 0) ||
	    (r->r_val[F_RESTORE_TIMEOUT] != NULL &&
		util_parse_duration_ms(r->r_val[F_RESTORE_TIMEOUT], &c->xc_restore_timeout_ms) != 0)) {
		f = r->r_val[F_DUMP_TIMEOUT] != NULL && c->xc_dump_timeout_ms == 0 ? F_DUMP_TIMEOUT :
		    F_RESTORE_TIMEOUT;
		load_fail(l, r->r_line[f], SPEC_FIELDS[f].f_name, "invalid duration '%s'",
		    r->r_val[f]);
		goto out;
	}
	if (strcmp(s->sp_driver, DRIVER_LIB) == 0) {
		static const enum field req[] = { F_RUN, F_FOLDER };
		for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++)
			if (r->r_val[req[i]] == NULL) {
				load_fail(l, p->p_line, SPEC_FIELDS[req[i]].f_name,
				    "missing in [component %s] (driver lib)", p->p_name);
				goto out;
			}
	}
	if (strcmp(s->sp_driver, DRIVER_EXEC) == 0) {
		static const enum field req[] = { F_RUN, F_DUMP, F_FOLDER };
		for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++)
			if (r->r_val[req[i]] == NULL) {
				load_fail(l, p->p_line, SPEC_FIELDS[req[i]].f_name,
				    "missing in [component %s] (driver exec)", p->p_name);
				goto out;
			}
	}
	/* Against the file's allow list, at the line of the field it names. */
	rv = l->l_specs_only ? spec_check_form(s, reason, sizeof(reason))
	                     : spec_check(s, &l->l_cfg->sc_allow, reason, sizeof(reason));
	if (rv != 0) {
		char field[32];
		const char *colon = strchr(reason, ':');
		size_t fl = colon != NULL ? (size_t)(colon - reason) : 0;
		int line = p->p_line;

		if (fl > 0 && fl < sizeof(field)) {
			memcpy(field, reason, fl);
			field[fl] = '\0';
			f = field_find(field);
			if (f >= 0 && r->r_line[f] != 0)
				line = r->r_line[f];
		}
		if (l->l_err_line == 0) {
			l->l_err_line = line;
			snprintf(l->l_err, sizeof(l->l_err), "%s:%d: %s", l->l_path, line, reason);
		}
		goto out;
	}
	*ret = s;
	s = NULL;
out:
	spec_free(s);
	return rv;
}

static void
allow_free(struct spec_allow *a)
{
	spec_words_free(a->sa_drivers);
	spec_words_free(a->sa_programs);
	spec_words_free(a->sa_folders);
	spec_words_free(a->sa_users);
}

void
spec_config_free(struct spec_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->sc_nagent; i++) {
		free(cfg->sc_agent[i].ss_key);
		free(cfg->sc_agent[i].ss_value);
	}
	free(cfg->sc_agent);
	for (size_t i = 0; i < cfg->sc_nspecs; i++)
		spec_free(cfg->sc_specs[i]);
	free(cfg->sc_specs);
	allow_free(&cfg->sc_allow);
	free(cfg->sc_path);
	free(cfg);
}

static int
config_load(const char *path, const struct cfg_opt *agent_opts, size_t nopts, bool specs_only,
    struct spec_config **ret_cfg, char *err, size_t errlen)
{
	struct load l;
	struct spec_config *cfg = calloc(1, sizeof(*cfg));
	int rv = 0, line;

	memset(&l, 0, sizeof(l));
	l.l_path = path;
	l.l_opts = agent_opts;
	l.l_nopts = nopts;
	l.l_cfg = cfg;
	l.l_last_field = -1;
	l.l_specs_only = specs_only;
	if (cfg == NULL || (cfg->sc_path = strdup(path)) == NULL) {
		rv = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	l.l_file = fopen(path, "re");
	if (l.l_file == NULL) {
		rv = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	line = ini_parse_stream(load_reader, &l, load_handler, &l);
	if (line != 0 && (l.l_err_line == 0 || (line > 0 && line < l.l_err_line))) {
		/* inih's own: a line that is neither a section, a key nor a comment. */
		l.l_err_line = 0;
		load_fail(&l, line > 0 ? line : l.l_line, "syntax", "want KEY = VALUE, [SECTION] or "
		    "a comment");
	}
	if (l.l_err_line == 0)
		load_allow(&l);
	if (l.l_err_line == 0 && l.l_ncomps > 0) {
		cfg->sc_specs = calloc(l.l_ncomps, sizeof(*cfg->sc_specs));
		if (cfg->sc_specs == NULL) {
			rv = -ENOMEM;
			snprintf(err, errlen, "%s: out of memory", path);
			goto out;
		}
		for (size_t i = 0; i < l.l_ncomps && l.l_err_line == 0; i++) {
			rv = load_component(&l, &l.l_comps[i], &cfg->sc_specs[i]);
			if (rv == -ENOMEM) {
				snprintf(err, errlen, "%s: out of memory", path);
				goto out;
			}
			if (rv == 0)
				cfg->sc_nspecs++;
		}
	}
	if (l.l_err_line != 0) {
		rv = -EINVAL;
		snprintf(err, errlen, "%s", l.l_err);
		goto out;
	}
	if (specs_only && cfg->sc_nspecs == 0) {
		rv = -EINVAL;
		snprintf(err, errlen, "%s: no [component NAME] section", path);
		goto out;
	}
	rv = 0;
	*ret_cfg = cfg;
	cfg = NULL;
out:
	if (l.l_file != NULL)
		fclose(l.l_file);
	for (size_t i = 0; i < l.l_ncomps; i++)
		for (int f = 0; f < F_COUNT; f++)
			free(l.l_comps[i].p_raw.r_val[f]);
	free(l.l_comps);
	for (int k = 0; k < A_COUNT; k++)
		free(l.l_allow_raw[k]);
	spec_config_free(cfg);
	return rv;
}

int
spec_config_load(const char *path, const struct cfg_opt *agent_opts, size_t nopts,
    struct spec_config **ret_cfg, char *err, size_t errlen)
{
	return config_load(path, agent_opts, nopts, false, ret_cfg, err, errlen);
}

int
spec_file_load(const char *path, struct spec_config **ret_cfg, char *err, size_t errlen)
{
	return config_load(path, NULL, 0, true, ret_cfg, err, errlen);
}

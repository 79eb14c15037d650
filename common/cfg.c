#include "cfg.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void *
cfg_field(const struct cfg_opt *o, void *conf)
{
	return (char *)conf + o->co_offset;
}

static void
cfg_list_clear(struct cfg_list *l)
{
	for (size_t i = 0; i < l->cl_count; i++)
		free(l->cl_items[i]);
	free(l->cl_items);
	l->cl_items = NULL;
	l->cl_count = 0;
}

static int
cfg_list_add(struct cfg_list *l, const char *v, size_t len)
{
	char **items = realloc(l->cl_items, (l->cl_count + 1) * sizeof(*items));
	if (items == NULL)
		return -ENOMEM;
	l->cl_items = items;
	items[l->cl_count] = strndup(v, len);
	if (items[l->cl_count] == NULL)
		return -ENOMEM;
	l->cl_count++;
	return 0;
}

static bool
cfg_in_bounds(const struct cfg_opt *o, int64_t v)
{
	if (o->co_min == 0 && o->co_max == 0)
		return true;
	return v >= o->co_min && v <= o->co_max;
}

/* A value of a CFG_URL option has a scheme; "host:port" gets a hint. */
static int
cfg_check_url(const struct cfg_opt *o, const char *v, size_t len, char *err, size_t errlen)
{
	const char *sep = memmem(v, len, "://", 3);

	if (sep != NULL && sep > v)
		return 0;
	if (memchr(v, '/', len) == NULL && memchr(v, ':', len) != NULL)
		snprintf(err, errlen, "--%s: '%.*s' is not a URL (did you mean tcp://%.*s?)",
		    o->co_name, (int)len, v, (int)len, v);
	else
		snprintf(err, errlen, "--%s: '%.*s' is not a URL (tcp://host:port or ipc:///path)",
		    o->co_name, (int)len, v);
	return -EINVAL;
}

/* A bound in the unit a user types: 1500 ms -> "1500ms", 600000 -> "10m". */
static void
cfg_fmt_bound(const struct cfg_opt *o, int64_t v, char *buf, size_t len)
{
	struct cfg_unit {
		const char *unit;
		int64_t mul;
	};
	static const struct cfg_unit ms_units[] = { { "h", 3600000 }, { "m", 60000 },
		{ "s", 1000 }, { "ms", 1 } },
				     size_units[] = { { "G", 1 << 30 }, { "M", 1 << 20 },
					     { "K", 1 << 10 }, { "", 1 } };
	const struct cfg_unit *units = o->co_type == CFG_DURATION ? ms_units : size_units;

	if (o->co_type != CFG_DURATION && o->co_type != CFG_SIZE) {
		snprintf(buf, len, "%lld", (long long)v);
		return;
	}
	for (size_t i = 0; i < 4; i++) {
		if (v != 0 && v % units[i].mul == 0) {
			snprintf(buf, len, "%lld%s", (long long)(v / units[i].mul), units[i].unit);
			return;
		}
	}
	snprintf(buf, len, "%lld%s", (long long)v, o->co_type == CFG_DURATION ? "ms" : "");
}

/* Applies one textual value. append: lists add instead of replacing. */
static int
cfg_set(const struct cfg_opt *o, void *conf, const char *v, bool append, char *err, size_t errlen)
{
	void *f = cfg_field(o, conf);
	int64_t i64;
	uint64_t u64;
	int rv = 0;

	switch (o->co_type) {
	case CFG_STR: {
		char *s;
		if ((o->co_flags & CFG_URL) && cfg_check_url(o, v, strlen(v), err, errlen) != 0)
			return -EINVAL;
		s = strdup(v);
		if (s == NULL)
			return -ENOMEM;
		free(*(char **)f);
		*(char **)f = s;
		break;
	}
	case CFG_INT:
		rv = util_parse_int(v, INT64_MIN, INT64_MAX, &i64);
		if (rv == 0 && !cfg_in_bounds(o, i64))
			rv = -ERANGE;
		if (rv == 0)
			*(int64_t *)f = i64;
		break;
	case CFG_DURATION:
		rv = util_parse_duration_ms(v, &u64);
		if (rv == 0 && (u64 > INT64_MAX || !cfg_in_bounds(o, (int64_t)u64)))
			rv = -ERANGE;
		if (rv == 0)
			*(uint64_t *)f = u64;
		break;
	case CFG_SIZE:
		rv = util_parse_size(v, &u64);
		if (rv == 0 && (u64 > INT64_MAX || !cfg_in_bounds(o, (int64_t)u64)))
			rv = -ERANGE;
		if (rv == 0)
			*(uint64_t *)f = u64;
		break;
	case CFG_BOOL:
		if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0)
			*(bool *)f = true;
		else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0)
			*(bool *)f = false;
		else
			rv = -EINVAL;
		break;
	case CFG_LIST: {
		struct cfg_list *l = f;
		const char *p = v;
		if (!append)
			cfg_list_clear(l);
		for (;;) {
			const char *comma = strchr(p, ',');
			size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
			if (len == 0) {
				rv = -EINVAL;
				break;
			}
			if ((o->co_flags & CFG_URL) && cfg_check_url(o, p, len, err, errlen) != 0)
				return -EINVAL;
			rv = cfg_list_add(l, p, len);
			if (rv != 0 || comma == NULL)
				break;
			p = comma + 1;
		}
		break;
	}
	}
	if (rv == -ERANGE && (o->co_min != 0 || o->co_max != 0)) {
		char lo[32], hi[32];
		cfg_fmt_bound(o, o->co_min, lo, sizeof(lo));
		cfg_fmt_bound(o, o->co_max, hi, sizeof(hi));
		snprintf(err, errlen, "--%s: '%s' is out of range [%s, %s]", o->co_name, v, lo, hi);
	}
	else if (rv != 0 && rv != -ENOMEM)
		snprintf(err, errlen, "--%s: invalid value '%s'", o->co_name, v);
	return rv == -ERANGE ? -EINVAL : rv;
}

static void
cfg_env_name(const char *name, char *out, size_t outlen)
{
	size_t i = 0, j;
	memcpy(out, "CKPT_", 5);
	j = 5;
	for (; name[i] != '\0' && j + 1 < outlen; i++, j++) {
		char c = name[i];
		out[j] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
	}
	out[j] = '\0';
}

int
cfg_parse(const struct cfg_opt *table, size_t n, void *conf, int argc, char **argv,
    int *ret_argi, char *err, size_t errlen)
{
	return cfg_parse_file(table, n, conf, NULL, NULL, 0, argc, argv, ret_argi, err, errlen);
}

/* The file's settings of table[k], in order: the first replaces the default. */
static int
cfg_set_file(const struct cfg_opt *o, void *conf, const char *path,
    const struct cfg_file_setting *file, size_t nfile, char *err, size_t errlen)
{
	bool seen = false;
	int rv = 0;

	for (size_t j = 0; j < nfile && rv == 0; j++) {
		if (strcmp(file[j].fs_key, o->co_name) != 0)
			continue;
		rv = cfg_set(o, conf, file[j].fs_value, seen, err, errlen);
		if (rv == -EINVAL) {
			char why[256];
			snprintf(why, sizeof(why), "%s", err);
			snprintf(err, errlen, "%s:%d: %s", path, file[j].fs_line, why);
		}
		seen = true;
	}
	return rv;
}

int
cfg_parse_file(const struct cfg_opt *table, size_t n, void *conf, const char *path,
    const struct cfg_file_setting *file, size_t nfile, int argc, char **argv, int *ret_argi,
    char *err, size_t errlen)
{
	bool *seen_flag = calloc(n > 0 ? n : 1, sizeof(bool));
	int rv = 0, i;

	if (seen_flag == NULL)
		return -ENOMEM;
	/* Defaults, then the file, then the environment. */
	for (size_t k = 0; k < n && rv == 0; k++) {
		char env[96];
		const char *v;
		if (table[k].co_default != NULL)
			rv = cfg_set(&table[k], conf, table[k].co_default, false, err, errlen);
		if (rv == 0 && nfile > 0)
			rv = cfg_set_file(&table[k], conf, path, file, nfile, err, errlen);
		cfg_env_name(table[k].co_name, env, sizeof(env));
		v = getenv(env);
		if (rv == 0 && v != NULL && *v != '\0') {
			rv = cfg_set(&table[k], conf, v, false, err, errlen);
			if (rv == -EINVAL)
				snprintf(err, errlen, "%s: invalid value '%s'", env, v);
		}
	}
	for (i = 1; i < argc && rv == 0; i++) {
		const char *a = argv[i], *eq, *val = NULL;
		const struct cfg_opt *o = NULL;
		size_t len, k;

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] != '-' || a[2] == '\0')
			break;
		if (strcmp(a, "--help") == 0) {
			rv = -ECANCELED;
			break;
		}
		a += 2;
		eq = strchr(a, '=');
		len = eq != NULL ? (size_t)(eq - a) : strlen(a);
		for (k = 0; k < n; k++) {
			if (strlen(table[k].co_name) == len && strncmp(table[k].co_name, a, len) == 0) {
				o = &table[k];
				break;
			}
		}
		if (o == NULL) {
			snprintf(err, errlen, "unknown option --%.*s", (int)len, a);
			rv = -EINVAL;
			break;
		}
		if (eq != NULL)
			val = eq + 1;
		else if (o->co_type == CFG_BOOL)
			val = "true";
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			snprintf(err, errlen, "option --%s needs a value", o->co_name);
			rv = -EINVAL;
			break;
		}
		/* A list flag given on the command line replaces default and env
		 * values the first time, and appends after that. */
		rv = cfg_set(o, conf, val, seen_flag[k], err, errlen);
		seen_flag[k] = true;
	}
	for (size_t k = 0; k < n && rv == 0; k++) {
		const struct cfg_opt *o = &table[k];
		void *f = cfg_field(o, conf);
		bool missing = (o->co_type == CFG_STR && *(char **)f == NULL) ||
		    (o->co_type == CFG_LIST && ((struct cfg_list *)f)->cl_count == 0);
		if ((o->co_flags & CFG_REQUIRED) && missing) {
			char env[96];
			cfg_env_name(o->co_name, env, sizeof(env));
			snprintf(err, errlen, "missing required option --%s (or %s)", o->co_name, env);
			rv = -EINVAL;
		}
	}
	free(seen_flag);
	if (rv == 0)
		*ret_argi = i;
	return rv;
}

void
cfg_usage(FILE *out, const char *prog, const char *synopsis, const struct cfg_opt *table,
    size_t n)
{
	fprintf(out, "usage: %s %s\n\noptions (flag, environment variable, default):\n", prog,
	    synopsis);
	for (size_t k = 0; k < n; k++) {
		const struct cfg_opt *o = &table[k];
		char env[96], flag[64];
		cfg_env_name(o->co_name, env, sizeof(env));
		snprintf(flag, sizeof(flag), "--%s%s%s", o->co_name, o->co_type == CFG_BOOL ? "" : " ",
		    o->co_type == CFG_BOOL ? "" : (o->co_metavar != NULL ? o->co_metavar : "VALUE"));
		fprintf(out, "  %-28s %s\n  %-28s env %s; %s%s%s\n", flag, o->co_help, "", env,
		    (o->co_flags & CFG_REQUIRED) ? "required" : "default ",
		    (o->co_flags & CFG_REQUIRED) ? "" : (o->co_default != NULL ? o->co_default : "none"),
		    o->co_type == CFG_LIST ? " (repeatable, or comma-separated)" : "");
	}
	fprintf(out, "  %-28s %s\n", "--help", "print this help and exit");
}

void
cfg_free(const struct cfg_opt *table, size_t n, void *conf)
{
	for (size_t k = 0; k < n; k++) {
		void *f = cfg_field(&table[k], conf);
		if (table[k].co_type == CFG_STR) {
			free(*(char **)f);
			*(char **)f = NULL;
		} else if (table[k].co_type == CFG_LIST) {
			cfg_list_clear(f);
		}
	}
}

/*
 * spec: component specs (the model, words, spec_check). See spec.h; the
 * config file is read in spec_ini.c, the wire form is in spec_pb.c.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "demo.h"
#include "spec.h"
#include "spec_impl.h"

/* ---- words ---- */

void
spec_words_free(char **words)
{
	if (words == NULL)
		return;
	for (char **w = words; *w != NULL; w++)
		free(*w);
	free(words);
}

int
spec_words(const char *value, size_t max_words, char ***ret_words, char *err, size_t errlen)
{
	size_t n = 0, vlen = strlen(value);
	char **words = calloc(max_words + 1, sizeof(char *));
	char *word = malloc(vlen + 1);
	const char *p = value;
	int rv = 0;

	if (words == NULL || word == NULL) {
		rv = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (;;) {
		size_t wl = 0;
		bool quoted = false, any = false;

		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p == '\0')
			break;
		while (*p != '\0' && (quoted || (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r'))) {
			if (*p == '"') {
				quoted = !quoted;
				any = true;
				p++;
			} else if (*p == '\\') {
				if (p[1] == '\0') {
					rv = -EINVAL;
					snprintf(err, errlen, "a backslash ends the value");
					goto out;
				}
				word[wl++] = p[1];
				p += 2;
			} else {
				word[wl++] = *p++;
			}
		}
		if (quoted) {
			rv = -EINVAL;
			snprintf(err, errlen, "unterminated double quote");
			goto out;
		}
		(void)any;
		if (n == max_words) {
			rv = -EINVAL;
			snprintf(err, errlen, "more than %zu words", max_words);
			goto out;
		}
		if (wl > SPEC_STR_MAX) {
			rv = -EINVAL;
			snprintf(err, errlen, "a word longer than %d bytes", SPEC_STR_MAX);
			goto out;
		}
		words[n] = strndup(word, wl);
		if (words[n] == NULL) {
			rv = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		n++;
	}
	*ret_words = words;
	words = NULL;
out:
	spec_words_free(words);
	free(word);
	return rv;
}

/* ---- specs ---- */

char **
spec_strv_dup(char *const *v, size_t n)
{
	char **out = calloc(n + 1, sizeof(char *));

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		out[i] = strdup(v[i]);
		if (out[i] == NULL) {
			spec_words_free(out);
			return NULL;
		}
	}
	return out;
}

size_t
spec_strv_len(char *const *v)
{
	size_t n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}

void
spec_free(struct spec *s)
{
	struct exec_conf *c;

	if (s == NULL)
		return;
	c = &s->sp_exec;
	spec_words_free(c->xc_run);
	spec_words_free(c->xc_dump);
	spec_words_free(c->xc_restore);
	spec_words_free(c->xc_quiesce);
	spec_words_free(c->xc_ready);
	spec_words_free(c->xc_resume);
	spec_words_free(c->xc_env);
	free(c->xc_dir);
	free(c->xc_dump_path);
	free(c->xc_restore_path);
	free(c->xc_log_path);
	free(s->sp_user);
	free(s);
}

struct spec *
spec_new(void)
{
	struct spec *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->sp_limit = SPEC_LIMIT_DEFAULT;
	s->sp_demo_bytes = DEMO_BYTES_DEFAULT;
	s->sp_max_restarts = SPEC_MAX_RESTARTS_DEFAULT;
	s->sp_backoff_ms = SPEC_BACKOFF_DEFAULT_MS;
	return s;
}

/* "KEY[=VALUE]" into r. */
int
spec_req_parse(const char *word, struct spec_req *r)
{
	const char *eq = strchr(word, '=');
	size_t kl = eq != NULL ? (size_t)(eq - word) : strlen(word);

	if (kl == 0 || kl > KEY_NAME_MAX || (eq != NULL && strlen(eq + 1) > LIMIT_REQ_VALUE_MAX))
		return -EINVAL;
	memcpy(r->sr_key, word, kl);
	r->sr_key[kl] = '\0';
	if (key_name_check(r->sr_key) != 0)
		return -EINVAL;
	snprintf(r->sr_value, sizeof(r->sr_value), "%s", eq != NULL ? eq + 1 : "");
	return 0;
}

bool
spec_path_has_dotdot(const char *p)
{
	for (const char *s = p; (s = strstr(s, "..")) != NULL; s += 2)
		if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
			return true;
	return false;
}

/* p is dir or under it (component-wise). */
static bool
path_under(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

static bool
in_list(char *const *list, const char *s)
{
	for (size_t i = 0; list != NULL && list[i] != NULL; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static bool
program_allowed(const struct spec_allow *a, const char *prog)
{
	for (size_t i = 0; a->sa_programs != NULL && a->sa_programs[i] != NULL; i++) {
		const char *e = a->sa_programs[i];
		size_t n = strlen(e);
		if (n > 0 && e[n - 1] == '/' ? path_under(prog, e) && strcmp(prog, e) != 0 :
		    strcmp(prog, e) == 0)
			return true;
	}
	return false;
}

static bool
folder_allowed(const struct spec_allow *a, const char *dir)
{
	for (size_t i = 0; a->sa_folders != NULL && a->sa_folders[i] != NULL; i++)
		if (path_under(dir, a->sa_folders[i]))
			return true;
	return false;
}

static int
check_program(const struct spec_allow *a, const char *what, const char *prog, char *err,
    size_t errlen)
{
	struct stat sb;

	if (prog[0] != '/' || spec_path_has_dotdot(prog)) {
		snprintf(err, errlen, "%s: the program must be an absolute path without '..', not "
		    "'%s'", what, prog);
		return -EINVAL;
	}
	if (!program_allowed(a, prog)) {
		snprintf(err, errlen, "%s: %s is not allowed on this node ([allow] programs)", what,
		    prog);
		return -EACCES;
	}
	if (stat(prog, &sb) != 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s is not installed (%s)", what, prog, strerror(e));
		return e == ENOENT ? -ENOENT : -e;
	}
	if (!S_ISREG(sb.st_mode) || access(prog, X_OK) != 0) {
		snprintf(err, errlen, "%s: %s is not an executable file", what, prog);
		return -EACCES;
	}
	return 0;
}

/* A folder that is writable, or can be made: its nearest existing parent is. */
static int
check_folder(const char *dir, char *err, size_t errlen)
{
	char p[PATH_MAX];
	struct stat sb;

	snprintf(p, sizeof(p), "%s", dir);
	for (;;) {
		if (stat(p, &sb) == 0) {
			if (!S_ISDIR(sb.st_mode)) {
				snprintf(err, errlen, "folder: %s is not a folder", p);
				return -ENOTDIR;
			}
			if (access(p, W_OK | X_OK) != 0) {
				int e = errno;
				snprintf(err, errlen, "folder: %s is not writable (%s)", p, strerror(e));
				return -EACCES;
			}
			return 0;
		}
		if (errno != ENOENT) {
			int e = errno;
			snprintf(err, errlen, "folder: %s: %s", p, strerror(e));
			return -e;
		}
		char *slash = strrchr(p, '/');
		if (slash == NULL || slash == p) {
			snprintf(p, sizeof(p), "/");
			continue;
		}
		*slash = '\0';
	}
}

static int
check_exec(struct spec *s, const struct spec_allow *a, char *err, size_t errlen)
{
	struct exec_conf *c = &s->sp_exec;
	struct {
		const char *what;
		char **argv;
	} cmds[] = {
		{ "run", c->xc_run }, { "dump", c->xc_dump }, { "restore", c->xc_restore },
		{ "quiesce", c->xc_quiesce }, { "resume", c->xc_resume }, { "ready", c->xc_ready },
	};
	const char *paths[][2] = { { "dump-path", c->xc_dump_path },
		{ "restore-path", c->xc_restore_path }, { "log-path", c->xc_log_path } };
	int rv;

	c->xc_limit = s->sp_limit;
	c->xc_user_set = false;
	c->xc_run_only = strcmp(s->sp_driver, DRIVER_LIB) == 0;
	rv = exec_conf_check(c, err, errlen);
	if (rv != 0)
		return rv;
	if (c->xc_shell && !a->sa_shell) {
		snprintf(err, errlen, "shell: shell commands are not allowed on this node ([allow] "
		    "shell)");
		return -EACCES;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (cmds[i].argv == NULL)
			continue;
		rv = check_program(a, cmds[i].what, c->xc_shell ? "/bin/sh" : cmds[i].argv[0], err,
		    errlen);
		if (rv != 0)
			return rv;
	}
	if (spec_path_has_dotdot(c->xc_dir) || !folder_allowed(a, c->xc_dir)) {
		snprintf(err, errlen, "folder: %s is not allowed on this node ([allow] folders)",
		    c->xc_dir);
		return -EACCES;
	}
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const char *p = paths[i][1];
		if (p == NULL)
			continue;
		if (p[0] == '\0' || spec_path_has_dotdot(p) || (p[0] == '/' && !folder_allowed(a, p))) {
			snprintf(err, errlen, "%s: '%s' must be a path in an allowed folder, without "
			    "'..'", paths[i][0], p);
			return -EACCES;
		}
	}
	rv = check_folder(c->xc_dir, err, errlen);
	if (rv != 0)
		return rv;
	if (s->sp_user != NULL && c->xc_run_only) {
		snprintf(err, errlen, "user: not a setting of driver lib (its program talks to the "
		    "agent's local socket, which is the agent's user's alone)");
		return -EINVAL;
	}
	if (s->sp_user != NULL) {
		struct passwd pw, *res = NULL;
		char buf[4096];

		if (!in_list(a->sa_users, s->sp_user)) {
			snprintf(err, errlen, "user: running as '%s' is not allowed on this node "
			    "([allow] users)", s->sp_user);
			return -EACCES;
		}
		if (getpwnam_r(s->sp_user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
			snprintf(err, errlen, "user: no user '%s' on this node", s->sp_user);
			return -ENOENT;
		}
		if (geteuid() != 0 && pw.pw_uid != geteuid()) {
			snprintf(err, errlen, "user: the agent must run as root to run as '%s'",
			    s->sp_user);
			return -EPERM;
		}
		c->xc_user_set = true;
		c->xc_uid = pw.pw_uid;
		c->xc_gid = pw.pw_gid;
	}
	return 0;
}

/*
 * What every spec must be, wherever it comes from: a name, labels, a limit, a
 * known driver. *ret_demo: a demo spec, which needs nothing more.
 */
static int
spec_check_base(const struct spec *s, bool *ret_demo, char *err, size_t errlen)
{
	*ret_demo = false;
	if (key_name_check(s->sp_name) != 0) {
		snprintf(err, errlen, "name: '%s' is not 1-%d of [A-Za-z0-9._-]", s->sp_name,
		    KEY_NAME_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < s->sp_nrequires; i++)
		if (key_name_check(s->sp_requires[i].sr_key) != 0) {
			snprintf(err, errlen, "requires: invalid label '%s'", s->sp_requires[i].sr_key);
			return -EINVAL;
		}
	if (s->sp_limit == 0 || s->sp_limit > SPEC_LIMIT_MAX) {
		snprintf(err, errlen, "limit: out of range [1, 1G]");
		return -EINVAL;
	}
	if (strcmp(s->sp_driver, DRIVER_DEMO) == 0) {
		if (s->sp_demo_bytes > DEMO_BYTES_MAX) {
			snprintf(err, errlen, "bytes: out of range [0, 1G]");
			return -EINVAL;
		}
		*ret_demo = true;
		return 0;
	}
	if (strcmp(s->sp_driver, DRIVER_EXEC) != 0 && strcmp(s->sp_driver, DRIVER_LIB) != 0) {
		snprintf(err, errlen, "driver: unknown driver '%s' (known: demo, exec, lib)",
		    s->sp_driver);
		return -EINVAL;
	}
	return 0;
}

int
spec_check_form(struct spec *s, char *err, size_t errlen)
{
	bool demo;
	int rv = spec_check_base(s, &demo, err, errlen);

	if (rv != 0 || demo)
		return rv;
	s->sp_exec.xc_limit = s->sp_limit;
	s->sp_exec.xc_run_only = strcmp(s->sp_driver, DRIVER_LIB) == 0;
	if (s->sp_user != NULL && s->sp_exec.xc_run_only) {
		snprintf(err, errlen, "user: not a setting of driver lib (its program talks to the "
		    "agent's local socket, which is the agent's user's alone)");
		return -EINVAL;
	}
	return exec_conf_check(&s->sp_exec, err, errlen);
}

int
spec_check(struct spec *s, const struct spec_allow *a, char *err, size_t errlen)
{
	bool demo;
	int rv = spec_check_base(s, &demo, err, errlen);

	if (rv != 0 || demo)
		return rv;
	if (!in_list(a->sa_drivers, s->sp_driver)) {
		snprintf(err, errlen, "driver: driver '%s' is not allowed on this node ([allow] "
		    "drivers)", s->sp_driver);
		return -EACCES;
	}
	return check_exec(s, a, err, errlen);
}

/*
 * spec: component specs and the agent's config file.
 *
 * A spec says what a component is (driver and its settings) and how it is
 * kept (checkpoint interval, size limit, required labels, restart policy).
 * It comes from the agent's config file (spec_config_load) or from the wire
 * (spec_from_pb: stored on the NAS, handed to the node that restores the
 * component). Either way, nothing runs before spec_check() has held it
 * against the node's own allow list: a spec is a request, never an authority.
 *
 * The config file is INI, read by inih (Debian's libinih): '#' or ';' starts
 * a comment line, ' ;' an inline comment, an indented line continues the
 * value above (commands and lists grow word by word), a line holds at most
 * SPEC_LINE_MAX bytes. Sections:
 *
 *   [agent]              the agent's own settings, under the names of its flags
 *   [allow]              what components may do on this node (default: demo only)
 *   drivers  = exec lib              drivers besides demo (always allowed)
 *   programs = /usr/bin/redis-server /opt/app/   programs (absolute), or every
 *                                    program under a folder (ends with '/')
 *   folders  = /var/lib/ckpt          working folders (and absolute paths) allowed
 *   users    = redis                 users components may run as
 *   shell    = false                 whether `shell = true` components may run
 *   [component NAME]     one per component (NAME: 1-63 of [A-Za-z0-9._-])
 *
 * Component keys (SPEC_FIELDS in spec_ini.c is the table): driver (required),
 * interval, limit, requires, max-restarts, backoff, fresh; demo: bytes;
 * exec: run, dump (required), restore, quiesce, resume, ready, env, folder
 * (required), dump-path, restore-path, log-path, dump-timeout,
 * restore-timeout, shell, user; lib (a program linked with libckpt that
 * checkpoints itself): run, folder (required), env, log-path (it runs as
 * the agent's user: its local socket is that user's alone).
 *
 * Commands are words, never a shell string: words are separated by blanks
 * (a line break between continuation lines is a blank, in quotes too);
 * "double quotes" group words with blanks (and make an empty word ""); a
 * backslash takes the next character literally (\" \\ \ ), in quotes too.
 * With `shell = true` (and [allow] shell = true) a command is the value as
 * written, run by /bin/sh -c. env and requires are words too: KEY=VALUE and
 * KEY[=VALUE].
 *
 * Errors are one line: "FILE:LINE: FIELD: reason" at load; "FIELD: reason"
 * from spec_check() and spec_from_pb().
 */
#ifndef CKPT_AGENT_SPEC_H
#define CKPT_AGENT_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "limit.h"
#include "ckpt/v1/spec.pb-c.h"
#include "exec.h"
#include "key.h"

#define SPEC_WORDS_MAX 128    /* words of one command */
#define SPEC_ENV_MAX 64
#define SPEC_STR_MAX 4096     /* one word, path or shell command */
#define SPEC_ALLOW_MAX 256    /* entries of one [allow] list */
#define SPEC_LINE_MAX 198     /* inih's line buffer (200) less "\r\n" */
#define SPEC_LIMIT_DEFAULT (64ull << 20)
#define SPEC_LIMIT_MAX (1ull << 30)
#define SPEC_MAX_RESTARTS_DEFAULT 3
#define SPEC_BACKOFF_DEFAULT_MS 1000u

struct spec_req {
	char sr_key[KEY_NAME_MAX + 1];
	char sr_value[LIMIT_REQ_VALUE_MAX + 1]; /* "": any value */
};

struct spec {
	char sp_name[KEY_NAME_MAX + 1];
	char sp_driver[LIMIT_KIND_MAX + 1];
	uint64_t sp_interval_ms; /* 0: the agent's */
	uint64_t sp_limit;       /* largest state (also sp_exec.xc_limit) */
	uint64_t sp_demo_bytes;  /* driver demo: its state size */
	struct spec_req sp_requires[LIMIT_REQUIRES_MAX];
	size_t sp_nrequires;
	uint32_t sp_max_restarts;
	uint64_t sp_backoff_ms;
	bool sp_fresh;
	char *sp_user;           /* exec: user name, NULL: the agent's */
	/*
	 * Driver exec; every pointer in it is owned by the spec. spec_check()
	 * fills xc_user_set, xc_uid, xc_gid from sp_user.
	 */
	struct exec_conf sp_exec;
	int sp_line;             /* line of its section; 0: not from a file */
};

/* What the node allows; NULL-terminated lists (NULL: empty). */
struct spec_allow {
	char **sa_drivers;  /* besides "demo", always allowed */
	char **sa_programs; /* absolute paths; ending with '/': everything under it */
	char **sa_folders;  /* absolute folders */
	char **sa_users;
	bool sa_shell;
};

/* One [agent] setting, in file order (for the agent's cfg table). */
struct spec_setting {
	char *ss_key;
	char *ss_value;
	int ss_line;
};

struct spec_config {
	char *sc_path;
	struct spec_setting *sc_agent;
	size_t sc_nagent;
	struct spec_allow sc_allow;
	struct spec **sc_specs;
	size_t sc_nspecs;
};

/*
 * Reads a config file. agent_opts (may be NULL) names the keys [agent]
 * accepts (a key repeats only for a CFG_LIST). Every component is checked
 * against the file's [allow] section (spec_check). -EINVAL with
 * "FILE:LINE: FIELD: reason", -ENOENT and others with "FILE: reason".
 */
int spec_config_load(const char *path, const struct cfg_opt *agent_opts, size_t nopts,
    struct spec_config **ret_cfg, char *err, size_t errlen);
void spec_config_free(struct spec_config *cfg);

/*
 * Reads a spec file (ckptctl apply -f): [component NAME] sections only, each
 * checked for form (spec_check_form), not against any allow list: the nodes
 * do that. Errors as spec_config_load(); a file without a component is
 * -EINVAL ("FILE: no [component NAME] section").
 */
int spec_file_load(const char *path, struct spec_config **ret_cfg, char *err, size_t errlen);

/*
 * What can be checked of s on any machine: its name, labels, limit, a known
 * driver and that driver's settings (exec_conf_check()). -EINVAL with
 * "FIELD: reason".
 */
int spec_check_form(struct spec *s, char *err, size_t errlen);

/*
 * Holds s against the allow list: a known driver that is allowed, its
 * settings well formed, every program allowed, installed and executable, the
 * folder allowed and writable, the user allowed (and resolved into
 * s->sp_exec). -EINVAL, -EACCES (not allowed), -ENOENT (missing program or
 * user), with "FIELD: reason".
 */
int spec_check(struct spec *s, const struct spec_allow *allow, char *err, size_t errlen);

/*
 * The message for s. It points into s (valid while s is and unchanged);
 * free it with spec_pb_free(), never with protobuf-c's free_unpacked.
 */
int spec_to_pb(const struct spec *s, Ckpt__V1__ComponentSpec **ret_pb);
void spec_pb_free(Ckpt__V1__ComponentSpec *pb);
/*
 * A spec from a message (received: every field bounded and checked for form;
 * then call spec_check() with the local allow list). -EINVAL with a reason.
 */
int spec_from_pb(const Ckpt__V1__ComponentSpec *pb, struct spec **ret_spec, char *err,
    size_t errlen);

/* Frees a spec and everything it owns. Accepts NULL and half-built specs. */
void spec_free(struct spec *s);

/*
 * Splits a value into words (the rules above) into a NULL-terminated,
 * malloc'ed array (free with spec_words_free). -EINVAL with a reason.
 */
int spec_words(const char *value, size_t max_words, char ***ret_words, char *err,
    size_t errlen);
void spec_words_free(char **words);

#endif

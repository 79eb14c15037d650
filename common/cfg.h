/*
 * cfg: one configuration table per service.
 *
 * Each service describes its settings once, as an array of struct cfg_opt
 * (name, type, bounds, default, help). The same table drives defaults,
 * environment variables (CKPT_<NAME>, upper case, '-' -> '_'), command-line
 * flags (--name VALUE or --name=VALUE) and the generated --help text.
 * Precedence: flag > environment > (configuration file) > default.
 */
#ifndef CKPT_CFG_H
#define CKPT_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum cfg_type {
	CFG_STR,      /* char *            */
	CFG_INT,      /* int64_t, bounds min..max */
	CFG_DURATION, /* uint64_t ms, bounds min..max ms */
	CFG_SIZE,     /* uint64_t bytes, bounds min..max */
	CFG_BOOL,     /* bool; flag without value sets true */
	CFG_LIST,     /* struct cfg_list; repeatable flag and/or comma-separated */
};

struct cfg_list {
	char **cl_items;
	size_t cl_count;
};

#define CFG_REQUIRED 0x1u
/* STR or LIST of addresses: each value must have a scheme (tcp://, ipc://...);
 * "host:port" is refused with a hint "did you mean tcp://host:port?". */
#define CFG_URL 0x2u

struct cfg_opt {
	const char *co_name;    /* "listen": --listen, CKPT_LISTEN */
	enum cfg_type co_type;
	size_t co_offset;       /* offsetof(struct conf, field) */
	const char *co_default; /* text, parsed like a flag; NULL: none */
	int64_t co_min, co_max; /* for INT, DURATION, SIZE (0, 0: unbounded) */
	unsigned co_flags;
	const char *co_metavar; /* "URL", "DIR"... */
	const char *co_help;
};

/*
 * Fills conf from defaults, the environment and argv[1..]. Stops at the first
 * argument that is not an option (or after "--") and stores its index in
 * *ret_argi. On error returns -EINVAL with a one-line message in err.
 * --help is reported as -ECANCELED (print cfg_usage() and exit 0).
 */
int cfg_parse(const struct cfg_opt *table, size_t n, void *conf, int argc, char **argv,
    int *ret_argi, char *err, size_t errlen);
/* One setting read from a configuration file: --KEY VALUE, found on line LINE. */
struct cfg_file_setting {
	const char *fs_key;
	const char *fs_value;
	int fs_line;
};
/*
 * cfg_parse() with a configuration file's settings (path names it in errors:
 * "PATH:LINE: KEY: invalid value ..."). Precedence: flag > environment >
 * file > default. A list given in the file replaces its default.
 */
int cfg_parse_file(const struct cfg_opt *table, size_t n, void *conf, const char *path,
    const struct cfg_file_setting *file, size_t nfile, int argc, char **argv, int *ret_argi,
    char *err, size_t errlen);
void cfg_usage(FILE *out, const char *prog, const char *synopsis, const struct cfg_opt *table,
    size_t n);
/* Frees strings and lists that cfg_parse allocated in conf. */
void cfg_free(const struct cfg_opt *table, size_t n, void *conf);

#endif

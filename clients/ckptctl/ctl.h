/*
 * ctl: what every ckptctl command shares.
 *
 * struct ctl holds the global options, the connections (opened lazily, at most
 * once) and the one error message the run ends with. Commands are functions
 * int cmd_X(struct ctl *c, int argc, char **argv) that return 0 or a negative
 * errno; on failure they describe it once with ctl_fail() (exit 1) or
 * ctl_usage() (exit 2), and main() prints it as "ckptctl: <message>".
 */
#ifndef CKPTCTL_CTL_H
#define CKPTCTL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "cfg.h"
#include "limit.h"
#include "methods.h"
#include "nasc.h"
#include "rpc.h"
#include "tls.h"

#define CTL_PROG "ckptctl"
#define CTL_ERR_MAX 512
/* Calls that move data (per NAS request) and migrations get at least this. */
#define CTL_DATA_TIMEOUT_MS 30000u
#define CTL_MIGRATE_TIMEOUT_MS 60000u

/* Global options, one cfg.h table (main.c). */
struct ctl_conf {
	char *cf_manager;          /* --manager URL, CKPT_MANAGER */
	struct cfg_list cf_nas;    /* --nas URL[,URL]: bypass Manager.Info */
	bool cf_json;              /* --json */
	uint64_t cf_timeout_ms;    /* --timeout, per control call */
	uint64_t cf_chunk_min;     /* --chunk-min/avg/max: the writer's chunking (nasc) */
	uint64_t cf_chunk_avg;
	uint64_t cf_chunk_max;
	bool cf_test_format3;      /* --test-format3: tests only (nasc_set_format3) */
	struct tls_conf cf_tls;    /* --tls-ca/--tls-cert/--tls-key/--allow-plain (tls.h) */
};

struct ctl;

struct ctl_cmd {
	const char *cmd_name;
	int (*cmd_run)(struct ctl *c, int argc, char **argv);
	const char *cmd_args;      /* "NODE/COMPONENT[@SEQ] [-o FILE]" */
	const char *cmd_help;      /* one line */
	const char *cmd_flags;     /* per-flag help lines, or NULL */
};

struct ctl {
	struct ctl_conf c_conf;
	const struct ctl_cmd *c_cmd;   /* the command being run */
	struct rpc_client *c_mgr;
	struct nasc *c_nas;
	char c_nas_url[LIMIT_URL_MAX];   /* first NAS address in use */
	bool c_usage;                  /* the failure is a usage error (exit 2) */
	bool c_help;                   /* COMMAND --help was asked (exit 0) */
	bool c_printed;                /* jout_print() wrote the command's JSON */
	char c_err[CTL_ERR_MAX];
	/* The failure's wire code and Reply.reason when a peer gave them (0, ""). */
	int c_err_code;
	char c_err_reason[LIMIT_REPLY_REASON_MAX];
};

/* Records a failure (exit 1); returns rv so callers can `return ctl_fail(...)`. */
int ctl_fail(struct ctl *c, int rv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*
 * ctl_fail() with a failed call's message, keeping its code and reason for
 * --json ({"error": {"message", "code", "reason"}} on stdout).
 */
int ctl_fail_rpc(struct ctl *c, int rv, const struct rpc_error *err);
/* Keeps err's code and reason with the failure ctl_fail() recorded. */
void ctl_fail_cause(struct ctl *c, const struct rpc_error *err);
/* Records a usage error (exit 2); returns -EINVAL. */
int ctl_usage(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One line "ckptctl: warning: ..." on stderr; the run goes on. */
void ctl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Per-command flags. */
enum ctl_flag_type {
	CTL_FLAG_BOOL,     /* bool */
	CTL_FLAG_STR,      /* const char * (points into argv) */
	CTL_FLAG_U64,      /* uint64_t, decimal */
	CTL_FLAG_DURATION, /* uint64_t ms, "250ms", "3s"... */
};

struct ctl_flag {
	const char *fl_short;      /* "-o", or NULL */
	const char *fl_long;       /* "--output" */
	enum ctl_flag_type fl_type;
	void *fl_out;
	bool *fl_seen;             /* set when the flag was given; may be NULL */
};

/*
 * Splits a command's arguments into flags and positionals. Flags may come
 * before or after the positionals ("--flag VALUE" or "--flag=VALUE"; "--"
 * ends them). The global --json, --timeout, --manager and --nas are accepted
 * here too. Fills pos[0..max_pos) and *ret_npos; fewer than min_pos or more
 * than max_pos positionals is a usage error. COMMAND --help sets c_help and
 * returns -ECANCELED.
 */
int ctl_args(struct ctl *c, int argc, char **argv, const struct ctl_flag *flags, size_t nflags,
    char **pos, size_t min_pos, size_t max_pos, size_t *ret_npos);

/* "NODE[/COMPONENT]" -> node, component ("" when absent); usage error otherwise. */
int ctl_parse_scope(struct ctl *c, const char *arg, char *ret_node, char *ret_component);
/* "NODE/COMPONENT[@SEQ]" (seq 0 when absent); usage error otherwise. */
int ctl_parse_ref(struct ctl *c, const char *arg, char *ret_node, char *ret_component,
    uint64_t *ret_seq);
/* A single name (component, node); usage error naming `what` otherwise. */
int ctl_check_name(struct ctl *c, const char *what, const char *name);

/* Per-call timeouts: the --timeout value, or at least floor_ms. */
unsigned ctl_timeout(const struct ctl *c);
unsigned ctl_timeout_at_least(const struct ctl *c, unsigned floor_ms);

/* Opens the manager connection (dial now: an unreachable manager fails here). */
int ctl_manager(struct ctl *c, struct rpc_client **ret_client);
/* Calls a Manager method; failures are recorded with the rpc message. */
int ctl_mgr_call(struct ctl *c, unsigned method, const ProtobufCMessage *req, unsigned timeout_ms,
    ProtobufCMessage **ret_reply);
/* Opens the NAS client from --nas or from Manager.Info (dial now). */
int ctl_nas(struct ctl *c, struct nasc **ret_nasc);
/* Calls a Nas method through the NAS client. */
int ctl_nas_call(struct ctl *c, unsigned method, const ProtobufCMessage *req, unsigned timeout_ms,
    ProtobufCMessage **ret_reply);

/*
 * A URL that a server listens on may use a wildcard host (tcp://0.0.0.0:P,
 * tcp://[::]:P, an empty host or "*"); it is dialled on the host of base
 * (the manager's URL) instead. Other URLs are copied unchanged.
 */
void ctl_url_dialable(const char *url, const char *base, char *out, size_t outlen);

/* Copy of s for terminal output: control characters become '?'. */
const char *ctl_clean(const char *s, char *buf, size_t buflen);
/* "2026-11-27T17:08:32.123Z"; "-" for 0. buf holds 32 bytes. */
const char *ctl_time_iso(uint64_t unix_ms, char *buf, size_t buflen);
/* Lower-case hex of a digest; "" unless it is SHA_LEN bytes. buf: SHA_HEX_LEN + 1. */
const char *ctl_hex(const uint8_t *data, size_t len, char *buf);

/* Writes all of buf to fd (EINTR retried). 0 or a negative errno. */
int ctl_write_all(int fd, const void *buf, size_t len);
/* Flushes stdout; a failure is recorded ("writing to stdout: ..."). */
int ctl_flush_stdout(struct ctl *c);

void ctl_close(struct ctl *c);

#endif

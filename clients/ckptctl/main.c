/*
 * ckptctl: the command-line client of ckpt.
 *
 *   ckptctl --manager URL [--json] [--timeout DURATION] COMMAND [ARGS...]
 *
 * One table of commands drives dispatch and help. Exit status: 0 on success;
 * 1 on a failure, with one line "ckptctl: <message>" on stderr; 2 on a usage
 * error, with that line and a "usage: ..." hint.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "cmd_ckpt.h"
#include "cmd_data.h"
#include "cmd_digest.h"
#include "cmd_drain.h"
#include "cmd_migrate.h"
#include "cmd_nodes.h"
#include "cmd_spec.h"
#include "cmd_store.h"
#include "cmd_watch.h"
#include "ctl.h"
#include "err.h"
#include "jout.h"

/* A sanitizer's leak check runs at exit: its builds free everything first. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CTL_EXIT_CLEAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(leak_sanitizer) || __has_feature(memory_sanitizer)
#define CTL_EXIT_CLEAN 1
#endif
#endif
#ifndef CTL_EXIT_CLEAN
#define CTL_EXIT_CLEAN 0
#endif

#define CTL_SYNOPSIS "[OPTIONS] COMMAND [ARGS...]"

static const struct cfg_opt ctl_opts[] = {
	{ "manager", CFG_STR, offsetof(struct ctl_conf, cf_manager), NULL, 0, 0, CFG_URL, "URL",
	    "manager address (tcp://host:port, ipc:///path)" },
	{ "nas", CFG_LIST, offsetof(struct ctl_conf, cf_nas), NULL, 0, 0, CFG_URL, "URL",
	    "NAS address(es) to use instead of asking the manager (Manager.Info)" },
	{ "json", CFG_BOOL, offsetof(struct ctl_conf, cf_json), "false", 0, 0, 0, NULL,
	    "print JSON instead of text" },
	{ "timeout", CFG_DURATION, offsetof(struct ctl_conf, cf_timeout_ms), "5s", 1, 86400000, 0,
	    "DURATION",
	    "deadline of each call (get/put NAS requests: at least 30s; migrate and drain: at "
	    "least 60s; scrub: at least 600s)" },
	{ "chunk-min", CFG_SIZE, offsetof(struct ctl_conf, cf_chunk_min), "4K", 64, 4 << 20, 0,
	    "SIZE", "put: smallest content-defined chunk" },
	{ "chunk-avg", CFG_SIZE, offsetof(struct ctl_conf, cf_chunk_avg), "16K", 128, 4 << 20, 0,
	    "SIZE", "put: average chunk (a power of two)" },
	{ "chunk-max", CFG_SIZE, offsetof(struct ctl_conf, cf_chunk_max), "64K", 256, 4 << 20, 0,
	    "SIZE", "put: largest chunk" },
	{ "test-format3", CFG_BOOL, offsetof(struct ctl_conf, cf_test_format3), "false", 0, 0, 0,
	    NULL, "tests only: put as versions before the digest did (a plain SHA-256, no "
	    "digest), for a ckpt-nas --test-format3" },
	TLS_CFG_OPTS(struct ctl_conf, cf_tls),
};

static int cmd_help(struct ctl *c, int argc, char **argv);

static const struct ctl_cmd ctl_cmds[] = {
	{ "nodes", cmd_nodes, "", "list the nodes, their state and components (Manager.ListNodes)",
	    NULL },
	{ "ls", cmd_ls, "[NODE[/COMPONENT] | */COMPONENT] [--latest]",
	    "list stored checkpoints, every sequence (Nas.List); */COMPONENT: on every node",
	    "  --latest             only the newest checkpoint of each component\n" },
	{ "get", cmd_get, "NODE/COMPONENT[@SEQ] [-o FILE] [--sha256]",
	    "retrieve a checkpoint (the latest without @SEQ), every chunk verified against the "
	    "record's digest",
	    "  --sha256             also print the plain SHA-256 of what was written, as\n"
	    "                       sha256sum does (on stderr when the bytes go to stdout)\n"
	    "  -o, --output FILE    write FILE.tmp.XXXXXX, renamed to FILE only once the\n"
	    "                       whole checkpoint is verified (FILE is never left bad);\n"
	    "                       without -o, or with -o -, the bytes go to stdout as\n"
	    "                       they are verified chunk by chunk: on a DATA_LOSS error\n"
	    "                       (exit 1) discard what was written\n" },
	{ "put", cmd_put, "NODE/COMPONENT [-i FILE] [--seq N] [--epoch N [--force]] [--kind KIND] "
	    "[--cache DIR [--changed RANGES [--page-size N]]]",
	    "store a checkpoint from FILE or stdin, then notify the manager",
	    "  -i, --input FILE     read FILE (default, or -: stdin)\n"
	    "  --seq N              sequence number (default 0: the NAS assigns the next)\n"
	    "  --epoch N            ownership epoch (default 0); above the epoch the\n"
	    "                       component runs at, the write fences its node: refused\n"
	    "                       unless --force, then the manager restores it from this\n"
	    "                       checkpoint (its node when healthy, else placement)\n"
	    "  --force              store even when it fences the component's live owner\n"
	    "  --kind KIND          kind recorded with the checkpoint (default raw)\n"
	    "  --cache DIR          base cache (env CKPT_CACHE_DIR): remember this put's\n"
	    "                       chunk list in DIR, and store only what changed since\n"
	    "                       the last put of NODE/COMPONENT with the same DIR\n"
	    "                       (-i FILE; a bad or stale cache file means a whole put)\n"
	    "  --changed RANGES     with --cache: the file (or -: stdin) listing what changed\n"
	    "                       in FILE since that last put: page numbers N, page\n"
	    "                       ranges N-M, byte ranges OFF+LEN; only the chunks around\n"
	    "                       them are read. A change left out is stored wrong\n"
	    "                       (ckptctl verify FILE REF checks)\n"
	    "  --page-size N        bytes per page of RANGES (default 4096)\n" },
	{ "digest", cmd_digest, "FILE [--like NODE/COMPONENT[@SEQ]]",
	    "print the digest (ckpt-chunks-sha256) of a local file, as put would record it",
	    "  --like REF           cut FILE with the chunking recorded in that checkpoint\n"
	    "                       (default: --chunk-min/--chunk-avg/--chunk-max)\n" },
	{ "verify", cmd_verify, "FILE NODE/COMPONENT[@SEQ]",
	    "exit 0 when FILE is that checkpoint (the latest without @SEQ), 1 when not", NULL },
	{ "migrate", cmd_migrate, "COMPONENT [--to NODE]",
	    "move a component to another node and restore it there (Manager.Migrate)",
	    "  --to NODE            target node (default: the manager places it)\n" },
	{ "drain", cmd_drain, "NODE",
	    "cordon NODE and move every component off it (Manager.Drain)", NULL },
	{ "cordon", cmd_cordon, "NODE", "place no component on NODE (Manager.Cordon)", NULL },
	{ "uncordon", cmd_uncordon, "NODE", "place components on NODE again (Manager.Uncordon)",
	    NULL },
	{ "watch", cmd_watch, "[PREFIX] [--count N] [--for DURATION]",
	    "print the manager's events whose topic starts with PREFIX (default ckpt.)",
	    "  --count N            exit after N events\n"
	    "  --for DURATION       exit after DURATION (250ms, 3s, 2m)\n"
	    "                       otherwise until SIGINT or SIGTERM (exit 0)\n" },
	{ "catalog", cmd_catalog, "[NODE[/COMPONENT] | */COMPONENT]",
	    "the manager's catalogue: latest checkpoint of each component (Manager.ListCheckpoints)",
	    NULL },
	{ "stat", cmd_stat, "", "NAS statistics (Nas.Stat)", NULL },
	{ "rm", cmd_rm, "NODE/COMPONENT[@SEQ]",
	    "delete one checkpoint, or every sequence without @SEQ (Nas.Delete); the manager's "
	    "catalogue follows (Manager.Forget)", NULL },
	{ "info", cmd_info, "", "manager version, NAS and events addresses (Manager.Info)", NULL },
	{ "pin", cmd_pin, "NODE/COMPONENT@SEQ",
	    "keep a checkpoint regardless of retention (Nas.Pin)", NULL },
	{ "unpin", cmd_unpin, "NODE/COMPONENT@SEQ",
	    "let retention delete a checkpoint again (Nas.Pin)", NULL },
	{ "keep", cmd_keep, "COMPONENT N",
	    "keep the newest N checkpoints of COMPONENT, 0: the NAS default (Nas.SetRetention)",
	    NULL },
	{ "scrub", cmd_scrub, "",
	    "verify every chunk's hash and reference count on the NAS; exit 1 on corruption "
	    "(Nas.Scrub; its deadline is at least 600s)",
	    NULL },
	{ "apply", cmd_apply, "-f FILE",
	    "declare the components of FILE cluster-wide: stored on the NAS, placed by the "
	    "manager (Manager.Apply)",
	    "  -f, --file FILE      [component NAME] sections, in the agent's config format;\n"
	    "                       checked here (FILE:LINE: FIELD: reason), then each node\n"
	    "                       holds a spec against its own [allow] list; a component\n"
	    "                       with no checkpoint starts fresh, one that runs keeps\n"
	    "                       running (the new spec goes with its next move)\n" },
	{ "delete", cmd_delete, "COMPONENT",
	    "stop COMPONENT after a final checkpoint and delete its spec; its checkpoints are "
	    "kept (Manager.Delete)",
	    NULL },
	{ "specs", cmd_specs, "",
	    "the component specs stored cluster-wide by apply (Nas.ListSpecs)", NULL },
	{ "help", cmd_help, "[COMMAND]", "print this help, or one command's", NULL },
};

#define CTL_NCMDS (sizeof(ctl_cmds) / sizeof(ctl_cmds[0]))
#define CTL_NOPTS (sizeof(ctl_opts) / sizeof(ctl_opts[0]))

static const struct ctl_cmd *
ctl_cmd_find(const char *name)
{
	for (size_t i = 0; i < CTL_NCMDS; i++)
		if (strcmp(ctl_cmds[i].cmd_name, name) == 0)
			return &ctl_cmds[i];
	return NULL;
}

static void
ctl_cmd_usage(FILE *out, const struct ctl_cmd *cmd)
{
	fprintf(out, "usage: %s [OPTIONS] %s%s%s\n", CTL_PROG, cmd->cmd_name,
	    cmd->cmd_args[0] != '\0' ? " " : "", cmd->cmd_args);
}

static void
ctl_cmd_help(FILE *out, const struct ctl_cmd *cmd)
{
	ctl_cmd_usage(out, cmd);
	fprintf(out, "%s\n", cmd->cmd_help);
	if (cmd->cmd_flags != NULL)
		fprintf(out, "\n%s", cmd->cmd_flags);
	fprintf(out, "\n--json, --timeout DURATION and --manager URL may also follow the command.\n");
}

static void
ctl_help(FILE *out)
{
	cfg_usage(out, CTL_PROG, CTL_SYNOPSIS, ctl_opts, CTL_NOPTS);
	fprintf(out, "\ncommands:\n");
	for (size_t i = 0; i < CTL_NCMDS; i++) {
		const struct ctl_cmd *cmd = &ctl_cmds[i];
		fprintf(out, "  %s%s%s\n      %s\n", cmd->cmd_name, cmd->cmd_args[0] != '\0' ? " " : "",
		    cmd->cmd_args, cmd->cmd_help);
	}
	fprintf(out,
	    "\n--json, --timeout and --manager may also follow the command; `%s help COMMAND`\n"
	    "or `%s COMMAND --help` describes a command's own options.\n"
	    "Exit status: 0 success; 1 failure (one line on stderr); 2 usage error.\n",
	    CTL_PROG, CTL_PROG);
}

static int
cmd_help(struct ctl *c, int argc, char **argv)
{
	const struct ctl_cmd *cmd;
	char *pos[1];
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, NULL, 0, pos, 0, 1, &npos);
	if (rv != 0)
		return rv;
	if (npos == 0) {
		ctl_help(stdout);
		return ctl_flush_stdout(c);
	}
	cmd = ctl_cmd_find(pos[0]);
	if (cmd == NULL)
		return ctl_usage(c, "help: unknown command '%s'", pos[0]);
	ctl_cmd_help(stdout, cmd);
	return ctl_flush_stdout(c);
}

/*
 * --json: a failure that printed no document prints {"error": {"message",
 * "code", "reason"}} on stdout (code: the wire code's name, the peer's or
 * the one the failure maps to; reason: Reply.reason, null when none).
 */
static void
ctl_json_error(struct ctl *c, int rv)
{
	json_t *o = jout_object(), *e = jout_object();
	err_code code = c->c_err_code != 0 ? (err_code)c->c_err_code : err_to_code(rv);

	jout_set_wire(e, "message", jout_str(c->c_err[0] != '\0' ? c->c_err : err_str(rv)));
	jout_set(e, "code", jout_str(err_code_name(code)));
	jout_set_wire(e, "reason",
	    c->c_err_reason[0] != '\0' ? jout_str(c->c_err_reason) : json_null());
	jout_set(o, "error", e);
	jout_print(c, o, true);
}

static void
ctl_usage_hint(void)
{
	fprintf(stderr, "usage: %s %s  (%s --help lists the commands)\n", CTL_PROG, CTL_SYNOPSIS,
	    CTL_PROG);
}

int
main(int argc, char **argv)
{
	struct ctl c;
	char err[CTL_ERR_MAX];
	int argi = argc, rv, status = 0;

	memset(&c, 0, sizeof(c));
	/*
	 * Checkpoint data moves in messages of a few MiB (nng allocates each one
	 * received): keep such buffers in the heap and the heap's free memory,
	 * instead of an mmap, page faults on every page and munmap per message.
	 */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	/*
	 * Free memory kept in the heap counts in the resident set: 16 MiB of it
	 * at most (it was 128), so that put and get of any size stay under
	 * 64 MiB (docs/data-path.md, test_mem) while a message's buffer is still
	 * reused.
	 */
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	/*
	 * One arena: the client's pool workers (pool.h) take turns with the
	 * messages of a few MiB, and an arena each faulted in fresh pages for
	 * every one of them (put of 64 MiB: 6,940 page faults, 4,820 with one
	 * arena; get: 6,740, 3,150 and 40% less CPU).
	 */
	mallopt(M_ARENA_MAX, 1);
	/* A closed stdout (ckptctl ... | head) is a write error, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	rv = cfg_parse(ctl_opts, CTL_NOPTS, &c.c_conf, argc, argv, &argi, err, sizeof(err));
	if (rv == -ECANCELED) {
		ctl_help(stdout);
		goto out;
	}
	if (rv != 0) {
		fprintf(stderr, "%s: %s\n", CTL_PROG, rv == -EINVAL ? err : err_str(rv));
		ctl_usage_hint();
		status = rv == -EINVAL ? 2 : 1;
		goto out;
	}
	rv = tls_conf_check(&c.c_conf.cf_tls, err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "%s: %s\n", CTL_PROG, err);
		status = rv == -EINVAL ? 2 : 1;
		goto out;
	}
	if (argi >= argc) {
		fprintf(stderr, "%s: missing command\n", CTL_PROG);
		ctl_usage_hint();
		status = 2;
		goto out;
	}
	c.c_cmd = ctl_cmd_find(argv[argi]);
	if (c.c_cmd == NULL) {
		fprintf(stderr, "%s: unknown %s '%s'\n", CTL_PROG,
		    argv[argi][0] == '-' ? "option" : "command", argv[argi]);
		ctl_usage_hint();
		status = 2;
		goto out;
	}
	rv = c.c_cmd->cmd_run(&c, argc - argi, argv + argi);
	if (rv == -ECANCELED && c.c_help) {
		ctl_cmd_help(stdout, c.c_cmd);
	} else if (rv != 0) {
		fprintf(stderr, "%s: %s\n", CTL_PROG, c.c_err[0] != '\0' ? c.c_err : err_str(rv));
		if (c.c_usage)
			ctl_cmd_usage(stderr, c.c_cmd);
		else if (c.c_conf.cf_json && !c.c_printed)
			ctl_json_error(&c, rv);
		status = c.c_usage ? 2 : 1;
	}
out:
	if (fflush(stdout) != 0 && status == 0) {
		fprintf(stderr, "%s: writing to stdout: %s\n", CTL_PROG, err_str(-errno));
		status = 1;
	}
#if !CTL_EXIT_CLEAN
	/*
	 * Everything is said and written (the data with write(2), files renamed
	 * and synced by their commands, stdout flushed, stderr unbuffered): the
	 * process ends here, and the kernel closes the connections and frees the
	 * memory. Closing them first (nng's sockets, joining nng's and the
	 * pool's 15 threads) and the exit handlers (OpenSSL's cleanup) took from
	 * the last chunk written to the exit of a W1 get a median 9.8 ms, 3.4
	 * with this (21 alternated runs, load 8; 2 to 5 ms and 1 to 1.5 at load
	 * 3), of a get of 60 to 120 ms; a put does the same. Sanitizer builds
	 * close everything, for their leak check.
	 */
	_exit(status);
#endif
	ctl_close(&c);
	cfg_free(ctl_opts, CTL_NOPTS, &c.c_conf);
	return status;
}

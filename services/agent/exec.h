/*
 * exec: a component defined by commands (the engine of the `exec` driver).
 *
 * A component is a `run` process plus the commands that save and load its
 * state: `dump` (its stdout is the state, or it writes xc_dump_path, read
 * after it exits), `restore` (takes the state on stdin, or finds it at
 * xc_restore_path, written before it runs) and optional `quiesce`/`resume`
 * around `dump`. Every command is an argv array run with execve(): never a
 * shell, unless xc_shell is set (then each command is one string run by
 * /bin/sh -c; the caller decides whether shells are allowed, see spec.h).
 *
 * Processes. Each command and the `run` process start in a process group of
 * their own, with a clean environment (EXEC_BASE_PATH, HOME = the folder,
 * then xc_env, which may override both), the folder as working directory, an
 * empty signal mask and default dispositions (the agent blocks SIGTERM for
 * sigwait(); a child must not inherit that), and no descriptor but 0, 1, 2.
 * They start with posix_spawn(); only to run as another user (xc_user_set,
 * the agent being root) fork() is used, and the child calls nothing but
 * async-signal-safe system calls before execve(). When a group's leader
 * exits, whatever is left of its group is killed (SIGKILL) before the leader
 * is reaped, so a pid (and group id) is never signalled after it could have
 * been reused.
 *
 * Bounds. A state larger than xc_limit, a command that exits non-zero, is
 * killed, or runs past its timeout (it is then killed with its group) fails
 * the step with a one-line reason in err that ends with the tail of the
 * command's stderr. A failed checkpoint never returns a partial state.
 *
 * Threads. exec_checkpoint() touches only the configuration and its own
 * children, so it may run (it blocks up to its timeouts) while another thread
 * calls exec_status(); calls that take the same struct exec * (start, status,
 * stop, free) must be serialised by the caller. exec_status() never blocks.
 * Writing a state to a restore command's stdin blocks SIGPIPE in the calling
 * thread only while it writes (and consumes a SIGPIPE it caused).
 */
#ifndef CKPT_AGENT_EXEC_H
#define CKPT_AGENT_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* PATH of every command: a clean, fixed one, not the agent's. */
#define EXEC_BASE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* Bytes of a failed command's stderr quoted in its reason. */
#define EXEC_STDERR_TAIL 200
/* Timeouts when the configuration gives 0. */
#define EXEC_DUMP_TIMEOUT_MS 60000u
#define EXEC_RESTORE_TIMEOUT_MS 300000u
#define EXEC_READY_EVERY_MS 100u

/*
 * What a component is. Lists are NULL-terminated arrays of strings; a NULL
 * list is "no such command". The caller owns every pointer (spec.h fills
 * one) and keeps it alive as long as any struct exec made from it.
 */
struct exec_conf {
	char **xc_run;      /* required: argv[0] an absolute path */
	char **xc_dump;     /* required */
	char **xc_restore;  /* optional: state on stdin, or at xc_restore_path */
	char **xc_quiesce;  /* optional: before dump */
	char **xc_resume;   /* optional: after dump, whenever quiesce ran */
	/*
	 * optional: run after `run` starts, again every EXEC_READY_EVERY_MS until
	 * it exits 0 (the program serves): exec_start() returns only then, so
	 * the first checkpoint finds it ready. Bounded by xc_restore_timeout_ms.
	 */
	char **xc_ready;
	char **xc_env;      /* optional: KEY=VALUE added to the clean environment */
	char *xc_dir;       /* required: absolute; working folder (made if missing) */
	char *xc_dump_path;    /* optional: the state is this file after dump exits */
	char *xc_restore_path; /* optional: the state is written here before restore */
	char *xc_log_path;     /* optional: run's stdout and stderr appended here;
	                        * NULL: they go where the agent's stderr goes */
	uint64_t xc_limit;             /* largest state in bytes (required, > 0) */
	uint64_t xc_dump_timeout_ms;   /* each of quiesce, dump, resume (0: default) */
	uint64_t xc_restore_timeout_ms;/* restore (0: default) */
	bool xc_shell;      /* each command is {"one shell string", NULL} */
	/*
	 * Only `run` (the lib driver: the program saves and loads its state
	 * itself, through libckpt): dump, restore, quiesce, resume and their
	 * paths must be unset; exec_start() takes no state, exec_checkpoint()
	 * refuses (-ENOTSUP).
	 */
	bool xc_run_only;
	bool xc_user_set;   /* run every command as xc_uid:xc_gid */
	uid_t xc_uid;
	gid_t xc_gid;
};

enum exec_state {
	EXEC_RUNNING,
	EXEC_EXITED, /* es_code: its exit status */
	EXEC_KILLED, /* es_code: the signal that ended it */
};

struct exec_status {
	enum exec_state es_state;
	pid_t es_pid;
	int es_code;
};

struct exec;

/*
 * Checks what can be checked without running anything: commands present and
 * absolute, folder and paths well formed, limit set, a restore step for
 * states (with xc_run_only: run alone, no other command nor path). -EINVAL
 * with a one-line reason.
 */
int exec_conf_check(const struct exec_conf *c, char *err, size_t errlen);

/*
 * Starts the component: makes the folder if missing; with a state (state !=
 * NULL, even of length 0), writes it to xc_restore_path if set, then runs
 * `restore` (state on stdin when there is no restore path) and waits for it
 * (xc_restore_timeout_ms); then starts `run`. On failure nothing is left
 * running and err says why: -EIO (a step failed: exit code, signal),
 * -ETIMEDOUT, -EINVAL (no restore step for a state), -EPERM (another user
 * while not root), or the errno of the system call (cannot run the program).
 */
int exec_start(const struct exec_conf *c, const void *state, size_t len, struct exec **ret_x,
    char *err, size_t errlen);

/* Whether `run` still runs; never blocks. The first call that sees it end reaps it. */
int exec_status(struct exec *x, struct exec_status *ret_st);

/*
 * SIGTERM (then SIGCONT, for a stopped group) to the group of `run`, SIGKILL
 * after grace_ms if it has not ended,
 * then reaps it. ret_st (may be NULL) is how it ended. Calling it again
 * after it ended is harmless.
 */
int exec_stop(struct exec *x, uint64_t grace_ms, struct exec_status *ret_st);

/*
 * Takes a checkpoint: quiesce (if any), dump, resume (if quiesce ran, even
 * when quiesce or dump failed). On success *ret_buf is a malloc'ed state of
 * *ret_len bytes (free() it; not NULL even for 0 bytes). Failures:
 * -EFBIG (larger than xc_limit), -EIO (a command failed, or the dump path is
 * missing), -ETIMEDOUT (a command ran past its timeout and was killed), or
 * the errno of a system call; err holds the reason.
 */
int exec_checkpoint(struct exec *x, void **ret_buf, size_t *ret_len, char *err, size_t errlen);

/* The pid of `run` (also after it ended). */
pid_t exec_pid(const struct exec *x);

/*
 * A deep copy of c (every list and string), for an owner that must not
 * depend on the lifetime of c. NULL when out of memory. Free it with
 * exec_conf_free(), which accepts NULL and half-built copies.
 */
struct exec_conf *exec_conf_dup(const struct exec_conf *c);
void exec_conf_free(struct exec_conf *c);

/* Kills `run`'s group (SIGKILL) if it still runs, reaps it, frees. Accepts NULL. */
void exec_free(struct exec *x);

#endif

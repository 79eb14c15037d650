/*
 * child: the processes of the exec driver (private to exec.c).
 *
 * Each process starts in a process group of its own, with a clean
 * environment (EXEC_BASE_PATH, HOME = the folder, then xc_env), the folder as
 * working directory, an empty signal mask and default dispositions, and no
 * descriptor but 0, 1, 2: posix_spawn() with file actions, or, to run as
 * another user, fork() with only async-signal-safe calls before execve().
 * A group dies with its leader: child_reap() kills what is left of it while
 * the leader, not yet reaped, still holds the group id.
 */
#ifndef CKPT_AGENT_CHILD_H
#define CKPT_AGENT_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "exec.h"

/* Monotonic clock, ms. */
uint64_t child_now_ms(void);
/* fd moved to 3 or above (a child's 0, 1, 2 are dup2()'ed from these), close-on-exec. */
int child_fd_high(int fd);
/* close(*fd) if open; *fd = -1. */
void child_close(int *fd);

/*
 * Starts argv (or, with c->xc_shell, /bin/sh -c argv[0]) with in, out, err as
 * its 0, 1, 2 in a new process group. On success *ret_pid and *ret_pidfd (a
 * pidfd, close-on-exec). -errno of the step that failed (ENOENT: no program).
 */
int child_start(const struct exec_conf *c, char *const *argv, int in, int out, int err,
    pid_t *ret_pid, int *ret_pidfd);

/*
 * Once pid has ended: kills the rest of its group, reaps it, says how it
 * ended. block: waits for the end; else -EAGAIN while it runs.
 */
int child_reap(pid_t pid, bool block, struct exec_status *ret_st);

/*
 * Runs a step of a component to its end. in (NULL: /dev/null) is written to
 * its stdin (a pipe that ends; SIGPIPE never reaches the process). With
 * ret_out, its stdout is captured (at most limit bytes; more: -EFBIG), else
 * it joins stderr, whose last EXEC_STDERR_TAIL bytes end a failure's reason.
 * Past timeout_ms its group is killed (-ETIMEDOUT). 0 only when it exited
 * with 0 (else -EIO); what names the step in err ("dump", "restore").
 */
int child_run(const struct exec_conf *c, const char *what, char *const *argv, const void *in,
    size_t in_len, uint64_t limit, uint64_t timeout_ms, void **ret_out, size_t *ret_len,
    char *err, size_t errlen);

#endif

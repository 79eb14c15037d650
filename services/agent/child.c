/*
 * child: the processes of the exec driver. See child.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"

#define READ_CHUNK 65536
#define ENV_BASE 2 /* PATH, HOME */

/* What a step's reason quotes of its stderr: the last EXEC_STDERR_TAIL bytes. */
struct tail {
	char t_buf[EXEC_STDERR_TAIL];
	size_t t_len;
};

uint64_t
child_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int
pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void
tail_add(struct tail *t, const char *p, size_t n)
{
	if (n >= sizeof(t->t_buf)) {
		memcpy(t->t_buf, p + n - sizeof(t->t_buf), sizeof(t->t_buf));
		t->t_len = sizeof(t->t_buf);
		return;
	}
	if (t->t_len + n > sizeof(t->t_buf)) {
		size_t drop = t->t_len + n - sizeof(t->t_buf);
		memmove(t->t_buf, t->t_buf + drop, t->t_len - drop);
		t->t_len -= drop;
	}
	memcpy(t->t_buf + t->t_len, p, n);
	t->t_len += n;
}

/* The tail on one line: control characters become spaces, runs of them one. */
static void
tail_line(const struct tail *t, char *out, size_t outlen)
{
	size_t j = 0;
	bool space = true;

	for (size_t i = 0; i < t->t_len && j + 1 < outlen; i++) {
		unsigned char ch = (unsigned char)t->t_buf[i];
		if (ch < 0x20 || ch == 0x7f || ch == ' ') {
			if (!space)
				out[j++] = ' ';
			space = true;
			continue;
		}
		out[j++] = (char)ch;
		space = false;
	}
	while (j > 0 && out[j - 1] == ' ')
		j--;
	out[j] = '\0';
}

static const char *
basename_(const char *path)
{
	const char *s = strrchr(path, '/');
	return s != NULL ? s + 1 : path;
}

/* Moves fd to 3 or above (the child's 0, 1, 2 are dup2()'ed from these), close-on-exec. */
int
child_fd_high(int fd)
{
	int nfd;

	if (fd < 0 || fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return nfd;
}

static int
pipe_high(int p[2])
{
	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	p[0] = child_fd_high(p[0]);
	p[1] = child_fd_high(p[1]);
	if (p[0] < 0 || p[1] < 0) {
		int e = errno;
		if (p[0] >= 0)
			close(p[0]);
		if (p[1] >= 0)
			close(p[1]);
		return -e;
	}
	return 0;
}

void
child_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * The environment of every command: xc_env first (glibc's getenv() takes the
 * first match, so it overrides), then PATH and HOME unless xc_env set them.
 * One malloc'ed block: the array, then the strings it points to.
 */
static char **
env_build(const struct exec_conf *c)
{
	size_t n = 0, nuser, bytes;
	char **env, *p;
	const char *base[ENV_BASE] = { "PATH=" EXEC_BASE_PATH, NULL };
	char home[PATH_MAX + 8];

	snprintf(home, sizeof(home), "HOME=%s", c->xc_dir);
	base[1] = home;
	for (char **e = c->xc_env; e != NULL && *e != NULL; e++)
		n++;
	bytes = (n + ENV_BASE + 1) * sizeof(char *) + sizeof(home) + sizeof("PATH=" EXEC_BASE_PATH);
	env = malloc(bytes);
	if (env == NULL)
		return NULL;
	p = (char *)(env + n + ENV_BASE + 1);
	for (size_t i = 0; i < n; i++)
		env[i] = c->xc_env[i];
	nuser = n;
	for (size_t b = 0; b < ENV_BASE; b++) {
		size_t klen = (size_t)(strchr(base[b], '=') - base[b]) + 1;
		bool set = false;
		for (size_t i = 0; i < nuser && !set; i++)
			set = strncmp(c->xc_env[i], base[b], klen) == 0;
		if (set)
			continue;
		strcpy(p, base[b]);
		env[n++] = p;
		p += strlen(p) + 1;
	}
	env[n] = NULL;
	return env;
}

/*
 * Starts argv with fds in, out, err as its 0, 1, 2 in a new process group.
 * On success *ret_pid and *ret_pidfd (a pidfd, close-on-exec).
 */
int
child_start(const struct exec_conf *c, char *const *argv, int in, int out, int errfd, pid_t *ret_pid,
    int *ret_pidfd)
{
	char *shell_argv[4] = { "/bin/sh", "-c", NULL, NULL };
	char *const *av = argv;
	char **env = env_build(c);
	pid_t pid = -1;
	int rv = 0, pidfd;

	if (env == NULL)
		return -ENOMEM;
	if (c->xc_shell) {
		shell_argv[2] = argv[0];
		av = shell_argv;
	}
	if (!c->xc_user_set) {
		posix_spawn_file_actions_t fa;
		posix_spawnattr_t at;
		sigset_t none, all;

		sigemptyset(&none);
		sigemptyset(&all);
		for (int s = 1; s < SIGRTMIN; s++)
			if (s != SIGKILL && s != SIGSTOP)
				sigaddset(&all, s);
		posix_spawn_file_actions_init(&fa);
		posix_spawnattr_init(&at);
		posix_spawn_file_actions_adddup2(&fa, in, 0);
		posix_spawn_file_actions_adddup2(&fa, out, 1);
		posix_spawn_file_actions_adddup2(&fa, errfd, 2);
		posix_spawn_file_actions_addclosefrom_np(&fa, 3);
		posix_spawn_file_actions_addchdir_np(&fa, c->xc_dir);
		posix_spawnattr_setflags(&at,
		    POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
		posix_spawnattr_setpgroup(&at, 0);
		posix_spawnattr_setsigmask(&at, &none);
		posix_spawnattr_setsigdefault(&at, &all);
		rv = -posix_spawn(&pid, av[0], &fa, &at, av, env);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&at);
	} else {
		/*
		 * Another user: posix_spawn() cannot change it, fork() can. Between
		 * fork() and execve() the child (a copy of one thread of a
		 * multithreaded process) calls only async-signal-safe system calls
		 * on memory prepared before the fork. A close-on-exec pipe carries
		 * the errno of a failed step back; EOF on it means execve() ran.
		 */
		int ep[2], e = 0, sigmax = SIGRTMIN;
		struct sigaction dfl;
		sigset_t all, none, old;
		ssize_t n;

		rv = pipe_high(ep);
		if (rv != 0)
			goto out;
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigfillset(&all);
		sigemptyset(&none);
		/* No handler of the agent's may run in the child before it is reset. */
		pthread_sigmask(SIG_SETMASK, &all, &old);
		pid = fork();
		if (pid == 0) {
			int step_errno;

			for (int s = 1; s < sigmax; s++)
				if (s != SIGKILL && s != SIGSTOP)
					sigaction(s, &dfl, NULL);
			sigprocmask(SIG_SETMASK, &none, NULL);
			close(ep[0]);
			if (setpgid(0, 0) != 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
			    dup2(errfd, 2) < 0)
				goto child_fail;
			/* Everything but 0, 1, 2 and the error pipe. */
			if (ep[1] > 3)
				syscall(SYS_close_range, 3u, (unsigned)ep[1] - 1, 0u);
			syscall(SYS_close_range, (unsigned)ep[1] + 1, ~0u, 0u);
			if (chdir(c->xc_dir) != 0 || setgroups(1, &c->xc_gid) != 0 ||
			    setgid(c->xc_gid) != 0 || setuid(c->xc_uid) != 0)
				goto child_fail;
			execve(av[0], av, env);
child_fail:
			step_errno = errno;
			(void)!write(ep[1], &step_errno, sizeof(step_errno));
			_exit(127);
		}
		if (pid < 0)
			rv = -errno;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		close(ep[1]);
		if (pid > 0) {
			setpgid(pid, pid); /* also here: no window where the group is not its own */
			do
				n = read(ep[0], &e, sizeof(e));
			while (n < 0 && errno == EINTR);
			if (n == (ssize_t)sizeof(e)) {
				while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
					;
				rv = -(e != 0 ? e : EIO);
			}
		}
		close(ep[0]);
	}
	if (rv != 0)
		goto out;
	pidfd = pidfd_open_(pid);
	if (pidfd < 0) {
		rv = -errno;
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		goto out;
	}
	fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	*ret_pid = pid;
	*ret_pidfd = pidfd;
out:
	free(env);
	return rv;
}

static void
status_from(int code, int si_code, struct exec_status *st)
{
	if (si_code == CLD_EXITED) {
		st->es_state = EXEC_EXITED;
		st->es_code = code;
	} else {
		st->es_state = EXEC_KILLED;
		st->es_code = code;
	}
}

/*
 * Reaps pid once it has ended: kills what is left of its group first (the
 * leader, not yet reaped, keeps the group id from being reused), then reaps.
 * block: wait for the end; else -EAGAIN while it runs.
 */
int
child_reap(pid_t pid, bool block, struct exec_status *ret_st)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT | (block ? 0 : WNOHANG)) != 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (si.si_pid == 0)
		return -EAGAIN;
	kill(-pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	ret_st->es_pid = pid;
	status_from(si.si_status, si.si_code, ret_st);
	return 0;
}

static void
reason_end(const char *what, const char *prog, const struct exec_status *st,
    const struct tail *t, char *err, size_t errlen)
{
	char line[EXEC_STDERR_TAIL + 1];

	tail_line(t, line, sizeof(line));
	if (st->es_state == EXEC_EXITED)
		snprintf(err, errlen, "%s (%s) exited with code %d%s%s", what, prog,
		    st->es_code, line[0] != '\0' ? ": " : "", line);
	else
		snprintf(err, errlen, "%s (%s) was killed by signal %d (%s)%s%s", what,
		    prog, st->es_code, strsignal(st->es_code),
		    line[0] != '\0' ? ": " : "", line);
}

/*
 * Writes in[0..len) to fd without raising SIGPIPE in the process: SIGPIPE is
 * blocked in this thread for the write, and one it caused is consumed.
 */
static ssize_t
write_nosigpipe(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old, pending;
	ssize_t n;
	int e;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	bool was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = write(fd, buf, len);
	e = errno;
	if (n < 0 && e == EPIPE && !was_pending) {
		struct timespec zero = { 0, 0 };
		sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return n;
}

/*
 * Runs one step to its end: in (may be NULL: /dev/null) on its stdin; its
 * stdout captured into *ret_out (at most limit bytes) when ret_out != NULL,
 * else sent with its stderr to the tail. Kills its group at the deadline or
 * past the limit. 0 only when it exited with 0.
 */
int
child_run(const struct exec_conf *c, const char *what, char *const *argv, const void *in,
    size_t in_len, uint64_t limit, uint64_t timeout_ms, void **ret_out, size_t *ret_len,
    char *err, size_t errlen)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	int devnull = -1, pidfd = -1, rv;
	pid_t pid = -1;
	struct tail tail = { .t_len = 0 };
	struct exec_status st = { 0 };
	uint8_t *out = NULL;
	size_t out_len = 0, out_cap = 0, in_off = 0;
	uint64_t deadline = child_now_ms() + timeout_ms;
	bool ended = false;
	/* Named in reasons: the program, or "sh" for a shell string. */
	const char *prog = c->xc_shell ? "sh" : basename_(argv[0]);

	devnull = child_fd_high(open("/dev/null", O_RDWR | O_CLOEXEC));
	if (devnull < 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: /dev/null: %s", what, strerror(-rv));
		goto out;
	}
	if ((in != NULL && (rv = pipe_high(pin)) != 0) ||
	    (ret_out != NULL && (rv = pipe_high(pout)) != 0) || (rv = pipe_high(perr)) != 0) {
		snprintf(err, errlen, "%s: pipe: %s", what, strerror(-rv));
		goto out;
	}
	rv = child_start(c, argv, in != NULL ? pin[0] : devnull, ret_out != NULL ? pout[1] : perr[1],
	    perr[1], &pid, &pidfd);
	if (rv != 0) {
		snprintf(err, errlen, "%s: cannot run %s: %s", what, argv[0], strerror(-rv));
		goto out;
	}
	child_close(&pin[0]);
	child_close(&pout[1]);
	child_close(&perr[1]);
	if (pin[1] >= 0)
		fcntl(pin[1], F_SETFL, O_NONBLOCK);
	if (in != NULL && in_len == 0)
		child_close(&pin[1]);

	/* Until it ended and both its outputs reached EOF. */
	while (!ended || pout[0] >= 0 || perr[0] >= 0) {
		struct pollfd pf[4];
		int npf = 0, ip = -1, io = -1, ie = -1, ix = -1;
		uint64_t now = child_now_ms();

		if (now >= deadline) {
			rv = -ETIMEDOUT;
			break;
		}
		if (pin[1] >= 0) {
			pf[npf] = (struct pollfd){ .fd = pin[1], .events = POLLOUT };
			ip = npf++;
		}
		if (pout[0] >= 0) {
			pf[npf] = (struct pollfd){ .fd = pout[0], .events = POLLIN };
			io = npf++;
		}
		if (perr[0] >= 0) {
			pf[npf] = (struct pollfd){ .fd = perr[0], .events = POLLIN };
			ie = npf++;
		}
		if (!ended) {
			pf[npf] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
			ix = npf++;
		}
		if (poll(pf, (nfds_t)npf, (int)(deadline - now)) < 0) {
			if (errno == EINTR)
				continue;
			rv = -errno;
			snprintf(err, errlen, "%s: poll: %s", what, strerror(-rv));
			break;
		}
		if (ip >= 0 && pf[ip].revents != 0) {
			ssize_t n = write_nosigpipe(pin[1], (const uint8_t *)in + in_off,
			    in_len - in_off);
			if (n > 0)
				in_off += (size_t)n;
			/* EPIPE: it stopped reading; how it ends tells the rest. */
			if ((n < 0 && errno != EAGAIN && errno != EINTR) || in_off == in_len)
				child_close(&pin[1]);
		}
		if (io >= 0 && pf[io].revents != 0) {
			ssize_t n;
			if (out_cap - out_len < READ_CHUNK) {
				size_t cap = out_cap == 0 ? READ_CHUNK * 2 : out_cap * 2;
				uint8_t *nb = realloc(out, cap);
				if (nb == NULL) {
					rv = -ENOMEM;
					snprintf(err, errlen, "%s: out of memory", what);
					break;
				}
				out = nb;
				out_cap = cap;
			}
			n = read(pout[0], out + out_len, READ_CHUNK);
			if (n > 0)
				out_len += (size_t)n;
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				child_close(&pout[0]);
			if (out_len > limit) {
				rv = -EFBIG;
				snprintf(err, errlen, "%s (%s): the state is larger than the limit of "
				    "%llu bytes", what, prog, (unsigned long long)limit);
				break;
			}
		}
		if (ie >= 0 && pf[ie].revents != 0) {
			char buf[4096];
			ssize_t n = read(perr[0], buf, sizeof(buf));
			if (n > 0)
				tail_add(&tail, buf, (size_t)n);
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				child_close(&perr[0]);
		}
		if (ix >= 0 && pf[ix].revents != 0) {
			/* Its group goes with it; then its pipes reach EOF. */
			rv = child_reap(pid, false, &st);
			if (rv == 0) {
				ended = true;
				child_close(&pin[1]);
			} else if (rv != -EAGAIN) {
				snprintf(err, errlen, "%s: waitid: %s", what, strerror(-rv));
				ended = true;
				break;
			}
			rv = 0;
		}
	}
	if (!ended) {
		/* Past its deadline, over the limit or an error: the group dies. */
		kill(-pid, SIGKILL);
		child_reap(pid, true, &st);
	}
	if (rv == -ETIMEDOUT) {
		/* Also when it ended but what it left running kept its output open. */
		char line[EXEC_STDERR_TAIL + 1];
		tail_line(&tail, line, sizeof(line));
		snprintf(err, errlen, "%s (%s) ran past its timeout of %llu ms and was killed%s%s",
		    what, prog, (unsigned long long)timeout_ms,
		    line[0] != '\0' ? ": " : "", line);
	}
	if (rv != 0)
		goto out;
	if (st.es_state != EXEC_EXITED || st.es_code != 0) {
		reason_end(what, prog, &st, &tail, err, errlen);
		rv = -EIO;
		goto out;
	}
	if (ret_out != NULL) {
		if (out == NULL && (out = malloc(1)) == NULL) {
			rv = -ENOMEM;
			goto out;
		}
		*ret_out = out;
		*ret_len = out_len;
		out = NULL;
	}
out:
	free(out);
	child_close(&pin[0]);
	child_close(&pin[1]);
	child_close(&pout[0]);
	child_close(&pout[1]);
	child_close(&perr[0]);
	child_close(&perr[1]);
	child_close(&pidfd);
	child_close(&devnull);
	return rv;
}

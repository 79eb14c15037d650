/*
 * exec: a component defined by commands. See exec.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec.h"
#include "child.h"
#include "log.h"

struct exec {
	const struct exec_conf *x_conf;
	pid_t x_pid;
	int x_pidfd;
	bool x_reaped;
	struct exec_status x_end; /* valid once x_reaped */
};

static void
strv_free(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* A NULL-terminated copy of v (NULL stays NULL); false when out of memory. */
static bool
strv_dup(char *const *v, char ***ret)
{
	size_t n = 0;
	char **out;

	*ret = NULL;
	if (v == NULL)
		return true;
	while (v[n] != NULL)
		n++;
	out = calloc(n + 1, sizeof(*out));
	if (out == NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		out[i] = strdup(v[i]);
		if (out[i] == NULL) {
			strv_free(out);
			return false;
		}
	}
	*ret = out;
	return true;
}

/* A copy of s (NULL stays NULL); false when out of memory. */
static bool
str_dup(const char *s, char **ret)
{
	*ret = s != NULL ? strdup(s) : NULL;
	return s == NULL || *ret != NULL;
}

void
exec_conf_free(struct exec_conf *c)
{
	if (c == NULL)
		return;
	strv_free(c->xc_run);
	strv_free(c->xc_dump);
	strv_free(c->xc_restore);
	strv_free(c->xc_quiesce);
	strv_free(c->xc_ready);
	strv_free(c->xc_resume);
	strv_free(c->xc_env);
	free(c->xc_dir);
	free(c->xc_dump_path);
	free(c->xc_restore_path);
	free(c->xc_log_path);
	free(c);
}

struct exec_conf *
exec_conf_dup(const struct exec_conf *c)
{
	struct exec_conf *d = calloc(1, sizeof(*d));
	bool ok;

	if (d == NULL)
		return NULL;
	/* The scalars first; every pointer is then replaced by its copy. */
	*d = *c;
	d->xc_run = d->xc_dump = d->xc_restore = d->xc_quiesce = d->xc_resume = d->xc_env = NULL;
	d->xc_ready = NULL;
	d->xc_dir = d->xc_dump_path = d->xc_restore_path = d->xc_log_path = NULL;
	ok = strv_dup(c->xc_run, &d->xc_run) && strv_dup(c->xc_dump, &d->xc_dump) &&
	    strv_dup(c->xc_restore, &d->xc_restore) && strv_dup(c->xc_quiesce, &d->xc_quiesce) &&
	    strv_dup(c->xc_ready, &d->xc_ready) &&
	    strv_dup(c->xc_resume, &d->xc_resume) && strv_dup(c->xc_env, &d->xc_env) &&
	    str_dup(c->xc_dir, &d->xc_dir) && str_dup(c->xc_dump_path, &d->xc_dump_path) &&
	    str_dup(c->xc_restore_path, &d->xc_restore_path) &&
	    str_dup(c->xc_log_path, &d->xc_log_path);
	if (!ok) {
		exec_conf_free(d);
		return NULL;
	}
	return d;
}

/* ---- a `run` process left behind by an agent that died ---- */

/* The pid file of c's `run`: beside its folder ("DIR.run.pid"), never in what a dump reads. */
static char *
pid_path(const struct exec_conf *c)
{
	size_t n = strlen(c->xc_dir);
	char *p = NULL;

	while (n > 1 && c->xc_dir[n - 1] == '/')
		n--;
	if (asprintf(&p, "%.*s.run.pid", (int)n, c->xc_dir) < 0)
		return NULL;
	return p;
}

/* pid's start time (field 22 of /proc/PID/stat); 0 when it is gone or a zombie. */
static unsigned long long
proc_start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* After the command's ")": state (field 3), then fields 4..22. */
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return 0;
	p += 2;
	for (int field = 3; field < 22 && p != NULL; field++) {
		p = strchr(p, ' ');
		if (p != NULL)
			p++;
	}
	if (p != NULL)
		start = strtoull(p, NULL, 10);
	return start;
}

/*
 * A `run` process of this folder that an earlier agent started and could not
 * stop (it was killed) still runs: it would run twice, on one folder. Its
 * group is killed before anything starts. -EBUSY when it does not end.
 */
static int
stop_leftover(const struct exec_conf *c, char *err, size_t errlen)
{
	char *path = pid_path(c);
	unsigned long long start = 0;
	int pid = 0, rv = 0;
	FILE *f;

	if (path == NULL)
		return -ENOMEM;
	f = fopen(path, "re");
	if (f == NULL)
		goto out;
	if (fscanf(f, "%d %llu", &pid, &start) != 2 || pid <= 1)
		pid = 0;
	fclose(f);
	if (pid != 0 && start != 0 && proc_start_time(pid) == start) {
		LOG_WARN("folder %s: process %d of an earlier run (its agent died) still runs: "
			 "killing its process group",
		    c->xc_dir, pid);
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		for (int i = 0; i < 500 && proc_start_time(pid) == start; i++)
			usleep(10000);
		if (proc_start_time(pid) == start) {
			snprintf(err, errlen, "folder %s is in use by process %d of an earlier run, "
			                      "which does not end",
			    c->xc_dir, pid);
			rv = -EBUSY;
		}
	}
out:
	if (rv == 0)
		(void)unlink(path);
	free(path);
	return rv;
}

/* Records the `run` process (best effort: without it, a leftover is not found). */
static void
record_run(const struct exec_conf *c, pid_t pid)
{
	char *path = pid_path(c);
	unsigned long long start = proc_start_time(pid);
	FILE *f;

	if (path == NULL || start == 0) {
		free(path);
		return;
	}
	f = fopen(path, "we");
	if (f != NULL) {
		fprintf(f, "%d %llu\n", (int)pid, start);
		fclose(f);
	}
	free(path);
}

/* `run` ended and was reaped: nothing is left to find. */
static void
forget_run(const struct exec_conf *c)
{
	char *path = pid_path(c);

	if (path != NULL)
		(void)unlink(path);
	free(path);
}

/* "DIR/PATH" unless PATH is absolute; malloc'ed. */
static char *
in_dir(const char *dir, const char *path)
{
	char *p = NULL;

	if (path[0] == '/')
		return strdup(path);
	if (asprintf(&p, "%s/%s", dir, path) < 0)
		return NULL;
	return p;
}

static uint64_t
dump_timeout(const struct exec_conf *c)
{
	return c->xc_dump_timeout_ms != 0 ? c->xc_dump_timeout_ms : EXEC_DUMP_TIMEOUT_MS;
}

/* Reads path whole, refusing more than limit bytes. */
static int
read_bounded(const char *path, uint64_t limit, void **ret_buf, size_t *ret_len, char *err,
    size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rv = 0;
	uint8_t *buf = NULL;
	size_t len = 0, cap;
	struct stat sb;

	if (fd < 0) {
		rv = errno == ENOENT ? -EIO : -errno;
		snprintf(err, errlen, "dump: cannot read %s: %s", path, strerror(errno));
		return rv;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		rv = -EIO;
		snprintf(err, errlen, "dump: %s is not a regular file", path);
		goto out;
	}
	if ((uint64_t)sb.st_size > limit) {
		rv = -EFBIG;
		snprintf(err, errlen, "dump: %s: the state is larger than the limit of %llu bytes",
		    path, (unsigned long long)limit);
		goto out;
	}
	/* One byte more than its size: a file that grows past it is seen. */
	cap = (size_t)sb.st_size + 1;
	buf = malloc(cap);
	if (buf == NULL) {
		rv = -ENOMEM;
		snprintf(err, errlen, "dump: out of memory for %s", path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rv = -errno;
			snprintf(err, errlen, "dump: reading %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			rv = -EIO;
			snprintf(err, errlen, "dump: %s grew while it was read", path);
			goto out;
		}
	}
	*ret_buf = buf;
	*ret_len = len;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rv;
}

int
exec_checkpoint(struct exec *x, void **ret_buf, size_t *ret_len, char *err, size_t errlen)
{
	const struct exec_conf *c = x->x_conf;
	char *path = NULL;
	void *buf = NULL;
	size_t len = 0;
	int rv = 0;

	if (c->xc_run_only) {
		snprintf(err, errlen, "dump: a program that checkpoints itself has no dump command");
		return -ENOTSUP;
	}
	if (c->xc_dump_path != NULL) {
		path = in_dir(c->xc_dir, c->xc_dump_path);
		if (path == NULL) {
			rv = -ENOMEM;
			snprintf(err, errlen, "dump: out of memory");
			goto out;
		}
		/* A dump that writes nothing must not hand back last time's file. */
		if (unlink(path) != 0 && errno != ENOENT) {
			rv = -errno;
			snprintf(err, errlen, "dump: cannot remove the previous %s: %s", path,
			    strerror(errno));
			goto out;
		}
	}
	if (c->xc_quiesce != NULL)
		rv = child_run(c, "quiesce", c->xc_quiesce, NULL, 0, 0, dump_timeout(c), NULL, NULL,
		    err, errlen);
	if (rv == 0) {
		if (path == NULL)
			rv = child_run(c, "dump", c->xc_dump, NULL, 0, c->xc_limit, dump_timeout(c),
			    &buf, &len, err, errlen);
		else {
			rv = child_run(c, "dump", c->xc_dump, NULL, 0, 0, dump_timeout(c), NULL, NULL,
			    err, errlen);
			if (rv == 0)
				rv = read_bounded(path, c->xc_limit, &buf, &len, err, errlen);
		}
	}
	if (c->xc_quiesce != NULL && c->xc_resume != NULL) {
		/* Always after quiesce; its failure is reported unless one came first. */
		char rerr[EXEC_STDERR_TAIL + 128];
		int rrv = child_run(c, "resume", c->xc_resume, NULL, 0, 0, dump_timeout(c), NULL,
		    NULL, rerr, sizeof(rerr));
		if (rrv != 0 && rv == 0) {
			rv = rrv;
			snprintf(err, errlen, "%s", rerr);
		}
	}
	if (rv != 0)
		goto out;
	*ret_buf = buf;
	*ret_len = len;
	buf = NULL;
out:
	free(buf);
	free(path);
	return rv;
}

/* mkdir -p of an absolute path; new folders go to the run user. */
static int
make_dir(const struct exec_conf *c, char *err, size_t errlen)
{
	char p[PATH_MAX];
	size_t n = strlen(c->xc_dir);

	if (n >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, c->xc_dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		char save = p[i];
		p[i] = '\0';
		if (mkdir(p, 0750) == 0) {
			if (c->xc_user_set && chown(p, c->xc_uid, c->xc_gid) != 0) {
				int e = errno;
				snprintf(err, errlen, "folder %s: chown: %s", p, strerror(e));
				return -e;
			}
		} else if (errno != EEXIST) {
			int e = errno;
			snprintf(err, errlen, "folder %s: %s", p, strerror(e));
			return -e;
		}
		p[i] = save;
	}
	return 0;
}

/* Writes the state to path (a new file then rename: never half a state there). */
static int
write_state(const struct exec_conf *c, const char *path, const void *state, size_t len,
    char *err, size_t errlen)
{
	char *tmp = NULL;
	int fd = -1, rv = 0;
	size_t off = 0;

	if (asprintf(&tmp, "%s.ckpt-tmp", path) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "restore: cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	while (off < len) {
		ssize_t n = write(fd, (const uint8_t *)state + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rv = -errno;
			snprintf(err, errlen, "restore: writing %s: %s", tmp, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (c->xc_user_set && fchown(fd, c->xc_uid, c->xc_gid) != 0) {
		rv = -errno;
		snprintf(err, errlen, "restore: chown %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		rv = -errno;
		snprintf(err, errlen, "restore: writing %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rv = -errno;
		snprintf(err, errlen, "restore: rename to %s: %s", path, strerror(errno));
	}
out:
	if (fd >= 0)
		close(fd);
	if (rv != 0)
		unlink(tmp);
	free(tmp);
	return rv;
}

static int
check_argv(const char *what, char **argv, bool shell, char *err, size_t errlen)
{
	if (argv == NULL || argv[0] == NULL || argv[0][0] == '\0') {
		snprintf(err, errlen, "%s: empty command", what);
		return -EINVAL;
	}
	if (shell) {
		if (argv[1] != NULL) {
			snprintf(err, errlen, "%s: a shell command is one string", what);
			return -EINVAL;
		}
		return 0;
	}
	if (argv[0][0] != '/') {
		snprintf(err, errlen, "%s: the program must be an absolute path, not '%s'", what,
		    argv[0]);
		return -EINVAL;
	}
	return 0;
}

int
exec_conf_check(const struct exec_conf *c, char *err, size_t errlen)
{
	struct {
		const char *what;
		char **argv;
		bool required;
	} cmds[] = {
		{ "run", c->xc_run, true }, { "dump", c->xc_dump, true },
		{ "restore", c->xc_restore, false }, { "quiesce", c->xc_quiesce, false },
		{ "resume", c->xc_resume, false }, { "ready", c->xc_ready, false },
	};
	const char *paths[][2] = { { "dump-path", c->xc_dump_path },
		{ "restore-path", c->xc_restore_path } };
	int rv = 0;

	/* Run-only (lib): the program keeps its own state; no command may say otherwise. */
	for (size_t i = 1; i < sizeof(cmds) / sizeof(cmds[0]) && c->xc_run_only; i++)
		if (cmds[i].argv != NULL) {
			snprintf(err, errlen, "%s: not a setting of a program that checkpoints itself "
			    "(driver lib)", cmds[i].what);
			return -EINVAL;
		}
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]) && c->xc_run_only; i++)
		if (paths[i][1] != NULL) {
			snprintf(err, errlen, "%s: not a setting of a program that checkpoints itself "
			    "(driver lib)", paths[i][0]);
			return -EINVAL;
		}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]) && rv == 0; i++)
		if ((cmds[i].required && (i == 0 || !c->xc_run_only)) || cmds[i].argv != NULL)
			rv = check_argv(cmds[i].what, cmds[i].argv, c->xc_shell, err, errlen);
	if (rv != 0)
		return rv;
	if (c->xc_dir == NULL || c->xc_dir[0] != '/') {
		snprintf(err, errlen, "folder: must be an absolute path");
		return -EINVAL;
	}
	if (strlen(c->xc_dir) >= PATH_MAX - 64) {
		snprintf(err, errlen, "folder: path too long");
		return -EINVAL;
	}
	if (c->xc_limit == 0) {
		snprintf(err, errlen, "limit: must be above 0");
		return -EINVAL;
	}
	if (!c->xc_run_only && c->xc_restore == NULL && c->xc_restore_path == NULL) {
		snprintf(err, errlen, "restore: give a restore command or a restore path");
		return -EINVAL;
	}
	for (char **e = c->xc_env; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		if (eq == NULL || eq == *e) {
			snprintf(err, errlen, "env: '%s' is not KEY=VALUE", *e);
			return -EINVAL;
		}
	}
	if (c->xc_user_set && geteuid() != 0 && c->xc_uid != geteuid()) {
		snprintf(err, errlen, "user: the agent must run as root to run as uid %u",
		    (unsigned)c->xc_uid);
		return -EPERM;
	}
	return 0;
}

/*
 * Runs `ready` until it exits 0 (the program serves), every
 * EXEC_READY_EVERY_MS, while `run` runs; within the restore timeout.
 */
static int
wait_ready(struct exec *x, char *err, size_t errlen)
{
	const struct exec_conf *c = x->x_conf;
	uint64_t tmo = c->xc_restore_timeout_ms != 0 ? c->xc_restore_timeout_ms :
	    EXEC_RESTORE_TIMEOUT_MS;
	uint64_t deadline = child_now_ms() + tmo;
	char why[256] = "";

	for (;;) {
		struct exec_status st;
		uint64_t now = child_now_ms();
		int rv;

		if (exec_status(x, &st) == 0 && st.es_state != EXEC_RUNNING) {
			snprintf(err, errlen, "run: %s %s %d before it was ready", c->xc_run[0],
			    st.es_state == EXEC_EXITED ? "exited with status" : "was killed by signal",
			    st.es_code);
			return -EIO;
		}
		if (now >= deadline) {
			snprintf(err, errlen, "ready: not ready after %llu ms%s%s",
			    (unsigned long long)tmo, why[0] != '\0' ? "; last: " : "", why);
			return -ETIMEDOUT;
		}
		rv = child_run(c, "ready", c->xc_ready, NULL, 0, 0,
		    deadline - now < dump_timeout(c) ? deadline - now : dump_timeout(c), NULL, NULL,
		    why, sizeof(why));
		if (rv == 0)
			return 0;
		usleep(EXEC_READY_EVERY_MS * 1000);
	}
}

int
exec_start(const struct exec_conf *c, const void *state, size_t len, struct exec **ret_x,
    char *err, size_t errlen)
{
	struct exec *x = NULL;
	char *rpath = NULL;
	int rv, in = -1, out = -1;

	rv = exec_conf_check(c, err, errlen);
	if (rv != 0)
		return rv;
	if (state != NULL && c->xc_run_only) {
		snprintf(err, errlen, "restore: a program that checkpoints itself takes no state here");
		return -EINVAL;
	}
	rv = make_dir(c, err, errlen);
	if (rv == 0)
		rv = stop_leftover(c, err, errlen);
	if (rv != 0)
		return rv;
	if (state != NULL) {
		uint64_t tmo = c->xc_restore_timeout_ms != 0 ? c->xc_restore_timeout_ms :
		    EXEC_RESTORE_TIMEOUT_MS;
		if (c->xc_restore_path != NULL) {
			rpath = in_dir(c->xc_dir, c->xc_restore_path);
			if (rpath == NULL) {
				rv = -ENOMEM;
				goto out;
			}
			rv = write_state(c, rpath, state, len, err, errlen);
			if (rv == 0 && c->xc_restore != NULL)
				rv = child_run(c, "restore", c->xc_restore, NULL, 0, 0, tmo, NULL, NULL,
				    err, errlen);
		} else {
			/* A non-NULL input, even empty: its stdin is a pipe that ends. */
			rv = child_run(c, "restore", c->xc_restore, len > 0 ? state : "", len, 0, tmo,
			    NULL, NULL, err, errlen);
		}
		if (rv != 0)
			goto out;
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL) {
		rv = -ENOMEM;
		goto out;
	}
	x->x_conf = c;
	x->x_pidfd = -1;
	in = child_fd_high(open("/dev/null", O_RDONLY | O_CLOEXEC));
	if (in < 0) {
		rv = -errno;
		snprintf(err, errlen, "run: /dev/null: %s", strerror(-rv));
		goto out;
	}
	if (c->xc_log_path != NULL) {
		char *lp = in_dir(c->xc_dir, c->xc_log_path);
		if (lp == NULL) {
			rv = -ENOMEM;
			snprintf(err, errlen, "log: out of memory");
			goto out;
		}
		out = child_fd_high(open(lp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
		rv = out < 0 ? -errno : 0;
		if (rv == 0 && c->xc_user_set && fchown(out, c->xc_uid, c->xc_gid) != 0)
			rv = -errno;
		if (rv != 0)
			snprintf(err, errlen, "log: cannot open %s: %s", lp, strerror(-rv));
		free(lp);
		if (rv != 0)
			goto out;
	} else {
		/* The agent's stderr, as its own descriptor (fd 2 may be any number here). */
		out = child_fd_high(fcntl(2, F_DUPFD_CLOEXEC, 3));
		if (out < 0) {
			rv = -errno;
			snprintf(err, errlen, "run: stderr: %s", strerror(-rv));
			goto out;
		}
	}
	rv = child_start(c, c->xc_run, in, out, out, &x->x_pid, &x->x_pidfd);
	if (rv != 0) {
		snprintf(err, errlen, "run: cannot run %s: %s", c->xc_run[0], strerror(-rv));
		goto out;
	}
	record_run(c, x->x_pid);
	if (c->xc_ready != NULL) {
		rv = wait_ready(x, err, errlen);
		if (rv != 0) {
			exec_stop(x, 0, NULL);
			child_close(&x->x_pidfd);
			goto out;
		}
	}
	*ret_x = x;
	x = NULL;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	free(x);
	free(rpath);
	return rv;
}

int
exec_status(struct exec *x, struct exec_status *ret_st)
{
	struct exec_status st = { .es_state = EXEC_RUNNING, .es_pid = x->x_pid };
	int rv;

	if (x->x_reaped) {
		*ret_st = x->x_end;
		return 0;
	}
	rv = child_reap(x->x_pid, false, &st);
	if (rv == -EAGAIN) {
		*ret_st = (struct exec_status){ .es_state = EXEC_RUNNING, .es_pid = x->x_pid };
		return 0;
	}
	if (rv != 0)
		return rv;
	x->x_reaped = true;
	x->x_end = st;
	child_close(&x->x_pidfd);
	forget_run(x->x_conf);
	*ret_st = st;
	return 0;
}

int
exec_stop(struct exec *x, uint64_t grace_ms, struct exec_status *ret_st)
{
	struct exec_status st;
	uint64_t deadline = child_now_ms() + grace_ms;
	int rv;

	rv = exec_status(x, &st);
	if (rv != 0 || st.es_state != EXEC_RUNNING)
		goto out;
	kill(-x->x_pid, SIGTERM);
	/* A stopped group (SIGSTOP) takes its SIGTERM only once it runs again. */
	kill(-x->x_pid, SIGCONT);
	for (;;) {
		struct pollfd pf = { .fd = x->x_pidfd, .events = POLLIN };
		uint64_t now = child_now_ms();
		if (now >= deadline)
			break;
		if (poll(&pf, 1, (int)(deadline - now)) > 0)
			break;
	}
	rv = exec_status(x, &st);
	if (rv != 0 || st.es_state != EXEC_RUNNING)
		goto out;
	kill(-x->x_pid, SIGKILL);
	rv = child_reap(x->x_pid, true, &st);
	if (rv != 0)
		goto out;
	x->x_reaped = true;
	x->x_end = st;
	child_close(&x->x_pidfd);
	forget_run(x->x_conf);
out:
	if (rv == 0 && ret_st != NULL)
		*ret_st = st;
	return rv;
}

pid_t
exec_pid(const struct exec *x)
{
	return x->x_pid;
}

void
exec_free(struct exec *x)
{
	if (x == NULL)
		return;
	exec_stop(x, 0, NULL);
	child_close(&x->x_pidfd);
	free(x);
}

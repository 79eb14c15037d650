/*
 * exec: real processes (sh scripts in a temporary folder, sleep, tar): start
 * and stop with grace and kill, crash detection, dump and restore through
 * tar, bounds (limit, exit code, timeout), quiesce/resume order, paths.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exec.h"
#include "../testrun.h"

static char tmp[256];

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	return remove(p);
}

static void
setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/ckpt_test_exec.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void
teardown(void)
{
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmp/NAME, malloc'ed (the tests leak nothing: each is freed at the end). */
static char *
path(const char *name)
{
	char *p;
	ck_assert_int_ge(asprintf(&p, "%s/%s", tmp, name), 0);
	return p;
}

static void
write_file(const char *p, const void *data, size_t len, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	chmod(p, mode);
}

/* An executable /bin/sh script tmp/NAME; returns its path. */
static char *
script(const char *name, const char *body)
{
	char *p = path(name), *text;
	ck_assert_int_ge(asprintf(&text, "#!/bin/sh\n%s\n", body), 0);
	write_file(p, text, strlen(text), 0755);
	free(text);
	return p;
}

/* Whole file, NUL-terminated; NULL when missing. */
static char *
slurp(const char *p, size_t *ret_len)
{
	FILE *f = fopen(p, "rb");
	char *buf = NULL;
	size_t len = 0;

	if (f == NULL)
		return NULL;
	buf = malloc(1 << 20);
	len = fread(buf, 1, (1 << 20) - 1, f);
	buf[len] = '\0';
	fclose(f);
	if (ret_len != NULL)
		*ret_len = len;
	return buf;
}

static bool
exists(const char *p)
{
	return access(p, F_OK) == 0;
}

/* Waits (no wall-time assertion: up to 60 s, then fails) for a file. */
static void
wait_file(const char *p)
{
	for (int i = 0; i < 6000 && !exists(p); i++)
		usleep(10000);
	ck_assert_msg(exists(p), "%s never appeared", p);
}

/* A process that is gone or a zombie (of init's, after its group was killed). */
static bool
alive(pid_t pid)
{
	char p[64], *text;
	bool live;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	text = slurp(p, NULL);
	if (text == NULL)
		return false;
	live = strstr(text, ") Z ") == NULL;
	free(text);
	return live;
}

static void
wait_end(struct exec *x, struct exec_status *st)
{
	for (int i = 0; i < 6000; i++) {
		ck_assert_int_eq(exec_status(x, st), 0);
		if (st->es_state != EXEC_RUNNING)
			return;
		usleep(10000);
	}
	ck_abort_msg("the process never ended");
}

/* A conf with a run command and a trivial restore; argv arrays are static per test. */
static void
conf_base(struct exec_conf *c, char **run, char **dump)
{
	static char *cat_restore[] = { "/bin/sh", "-c", "cat > restored", NULL };

	memset(c, 0, sizeof(*c));
	c->xc_run = run;
	c->xc_dump = dump;
	c->xc_restore = cat_restore;
	c->xc_dir = path("dir");
	c->xc_log_path = "run.log";
	c->xc_limit = 1 << 20;
}

static char *sleep_argv[] = { "/bin/sleep", "600", NULL };
static char *true_argv[] = { "/bin/true", NULL };

START_TEST(exec_stop_sends_term_to_the_group_first)
{
	char *ready = path("ready"), *done = path("term_seen"), *body, *s;
	char *run[2] = { NULL, NULL };
	struct exec_conf c;
	struct exec *x = NULL;
	struct exec_status st;
	char err[512] = "";
	sigset_t term, old;

	ck_assert_int_ge(asprintf(&body,
	    "trap 'echo term > %s; exit 0' TERM\necho > %s\nwhile :; do sleep 0.05; done", done,
	    ready), 0);
	s = script("graceful.sh", body);
	run[0] = s;
	conf_base(&c, run, true_argv);
	/* As in the agent: SIGTERM blocked in the parent must not be in the child. */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &old);
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	wait_file(ready);
	ck_assert_int_eq(exec_status(x, &st), 0);
	ck_assert_int_eq(st.es_state, EXEC_RUNNING);
	ck_assert_int_eq(st.es_pid, exec_pid(x));
	ck_assert_int_eq(exec_stop(x, 60000, &st), 0);
	ck_assert_int_eq(st.es_state, EXEC_EXITED);
	ck_assert_int_eq(st.es_code, 0);
	ck_assert(exists(done));
	/* Again: harmless, same answer. */
	ck_assert_int_eq(exec_stop(x, 0, &st), 0);
	ck_assert_int_eq(st.es_state, EXEC_EXITED);
	exec_free(x);
	free(body);
	free(s);
	free(ready);
	free(done);
	free(c.xc_dir);
}
END_TEST

START_TEST(exec_stop_kills_after_grace)
{
	char *ready = path("ready"), *body, *s;
	char *run[2] = { NULL, NULL };
	struct exec_conf c;
	struct exec *x = NULL;
	struct exec_status st;
	char err[512] = "";
	pid_t child = 0;
	char *cp = path("child"), *cs;

	ck_assert_int_ge(asprintf(&body,
	    "trap '' TERM\nsleep 600 &\necho $! > %s\necho > %s\nwhile :; do sleep 0.05; done", cp,
	    ready), 0);
	s = script("stubborn.sh", body);
	run[0] = s;
	conf_base(&c, run, true_argv);
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), 0);
	wait_file(ready);
	cs = slurp(cp, NULL);
	child = atoi(cs);
	ck_assert_int_gt(child, 0);
	ck_assert_int_eq(exec_stop(x, 200, &st), 0);
	ck_assert_int_eq(st.es_state, EXEC_KILLED);
	ck_assert_int_eq(st.es_code, SIGKILL);
	/* Its group went with it: the background sleep is gone (or a zombie of init's). */
	for (int i = 0; i < 6000 && alive(child); i++)
		usleep(10000);
	ck_assert(!alive(child));
	exec_free(x);
	free(body);
	free(s);
	free(ready);
	free(cp);
	free(cs);
	free(c.xc_dir);
}
END_TEST

START_TEST(exec_status_sees_an_exit_code)
{
	char *s = script("crash.sh", "echo 'to the log' >&2\nsleep 0.1\nexit 3"), *log, *text;
	char *run[2] = { s, NULL };
	struct exec_conf c;
	struct exec *x = NULL;
	struct exec_status st;
	char err[512] = "";

	conf_base(&c, run, true_argv);
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), 0);
	wait_end(x, &st);
	ck_assert_int_eq(st.es_state, EXEC_EXITED);
	ck_assert_int_eq(st.es_code, 3);
	/* Stable once seen. */
	ck_assert_int_eq(exec_status(x, &st), 0);
	ck_assert_int_eq(st.es_code, 3);
	/* Its stderr went to log-path, in its folder. */
	ck_assert_int_ge(asprintf(&log, "%s/run.log", c.xc_dir), 0);
	text = slurp(log, NULL);
	ck_assert_str_eq(text, "to the log\n");
	free(text);
	free(log);
	exec_free(x);
	free(s);
	free(c.xc_dir);
}
END_TEST

START_TEST(exec_status_sees_a_signal)
{
	char *s = script("segv.sh", "kill -SEGV $$");
	char *run[2] = { s, NULL };
	struct exec_conf c;
	struct exec *x = NULL;
	struct exec_status st;
	char err[512] = "";

	conf_base(&c, run, true_argv);
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), 0);
	wait_end(x, &st);
	ck_assert_int_eq(st.es_state, EXEC_KILLED);
	ck_assert_int_eq(st.es_code, SIGSEGV);
	exec_free(x);
	free(s);
	free(c.xc_dir);
}
END_TEST

START_TEST(exec_start_reports_a_missing_program)
{
	char *run[] = { "/nonexistent/prog", NULL };
	char *rel[] = { "sleep", "1", NULL };
	struct exec_conf c;
	struct exec *x = NULL;
	char err[512] = "";

	conf_base(&c, run, true_argv);
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_null(x);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/prog"));
	c.xc_run = rel;
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "absolute path"));
	free(c.xc_dir);
}
END_TEST

static void
make_tree(const char *root)
{
	char p[512];
	uint8_t buf[70000];

	ck_assert_int_eq(mkdir(root, 0755), 0);
	snprintf(p, sizeof(p), "%s/sub", root);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	snprintf(p, sizeof(p), "%s/a.bin", root);
	write_file(p, buf, sizeof(buf), 0644);
	snprintf(p, sizeof(p), "%s/sub/b.txt", root);
	write_file(p, "hello\n", 6, 0600);
}

static void
same_file(const char *a, const char *b)
{
	size_t la, lb;
	char *x = slurp(a, &la), *y = slurp(b, &lb);
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(y);
	ck_assert_uint_eq(la, lb);
	ck_assert_mem_eq(x, y, la);
	free(x);
	free(y);
}

START_TEST(exec_tar_dump_and_restore_roundtrip)
{
	char *src = path("src"), *dst = path("dst");
	char *dump[] = { "/bin/tar", "-C", "data", "--sort=name", "-cf", "-", ".", NULL };
	char *restore[] = { "/bin/sh", "-c", "mkdir -p data && exec /bin/tar -C data -xf -",
		NULL };
	struct exec_conf c;
	struct exec *x = NULL, *y = NULL;
	void *state = NULL, *again = NULL;
	size_t len = 0, len2 = 0;
	char err[512] = "", a[512], b[512];

	conf_base(&c, sleep_argv, dump);
	c.xc_restore = restore;
	free(c.xc_dir);
	c.xc_dir = src;
	ck_assert_int_eq(mkdir(src, 0755), 0);
	snprintf(a, sizeof(a), "%s/data", src);
	make_tree(a);
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), 0);
	ck_assert_msg(exec_checkpoint(x, &state, &len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_gt(len, 70000);
	exec_free(x);

	/* Another folder (made by exec_start), from the state. */
	c.xc_dir = dst;
	ck_assert_msg(exec_start(&c, state, len, &y, err, sizeof(err)) == 0, "%s", err);
	snprintf(a, sizeof(a), "%s/data/a.bin", src);
	snprintf(b, sizeof(b), "%s/data/a.bin", dst);
	same_file(a, b);
	snprintf(a, sizeof(a), "%s/data/sub/b.txt", src);
	snprintf(b, sizeof(b), "%s/data/sub/b.txt", dst);
	same_file(a, b);
	/* And its own checkpoint holds the same files. */
	ck_assert_int_eq(exec_checkpoint(y, &again, &len2, err, sizeof(err)), 0);
	ck_assert_uint_eq(len2, len);
	exec_free(y);
	free(state);
	free(again);
	free(src);
	free(dst);
}
END_TEST

START_TEST(exec_dump_over_the_limit_is_refused)
{
	char *dump[] = { "/bin/sh", "-c", "head -c 200000 /dev/zero", NULL };
	struct exec_conf c;
	struct exec *x = NULL;
	void *state = NULL;
	size_t len = 0;
	char err[512] = "";

	conf_base(&c, sleep_argv, dump);
	c.xc_limit = 100000;
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), 0);
	ck_assert_int_eq(exec_checkpoint(x, &state, &len, err, sizeof(err)), -EFBIG);
	ck_assert_ptr_null(state);
	ck_assert_ptr_nonnull(strstr(err, "limit of 100000 bytes"));
	/* Exactly the limit is fine. */
	dump[2] = "head -c 100000 /dev/zero";
	ck_assert_msg(exec_checkpoint(x, &state, &len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(len, 100000);
	free(state);
	exec_free(x);
	free(c.xc_dir);
}
END_TEST

START_TEST(exec_dump_exit_code_is_a_failure_with_its_stderr)
{
	char *dump[] = { "/bin/sh", "-c",
		"echo partial; echo 'first line' >&2; echo 'boom: disk on fire' >&2; exit 2", NULL };
	struct exec_conf c;
	struct exec *x = NULL;
	void *state = NULL;
	size_t len = 0;
	char err[512] = "";

	conf_base(&c, sleep_argv, dump);
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), 0);
	ck_assert_int_eq(exec_checkpoint(x, &state, &len, err, sizeof(err)), -EIO);
	ck_assert_ptr_null(state);
	ck_assert_str_eq(err, "dump (sh) exited with code 2: first line boom: disk on fire");
	exec_free(x);
	free(c.xc_dir);
}
END_TEST

START_TEST(exec_dump_past_its_timeout_is_killed)
{
	char *pidf = path("dump.pid"), *body, *s, *ps;
	char *dump[2] = { NULL, NULL };
	struct exec_conf c;
	struct exec *x = NULL;
	void *state = NULL;
	size_t len = 0;
	char err[512] = "";
	pid_t pid;

	ck_assert_int_ge(asprintf(&body, "echo $$ > %s\necho waiting >&2\nexec sleep 600", pidf), 0);
	s = script("slow.sh", body);
	dump[0] = s;
	conf_base(&c, sleep_argv, dump);
	c.xc_dump_timeout_ms = 5000; /* room for sh to start on a loaded machine */
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), 0);
	ck_assert_int_eq(exec_checkpoint(x, &state, &len, err, sizeof(err)), -ETIMEDOUT);
	ck_assert_ptr_null(state);
	ck_assert_str_eq(err, "dump (slow.sh) ran past its timeout of 5000 ms and was killed: waiting");
	ps = slurp(pidf, NULL);
	ck_assert_ptr_nonnull(ps);
	pid = atoi(ps);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(kill(pid, 0), -1); /* reaped: no zombie left either */
	ck_assert_int_eq(errno, ESRCH);
	exec_free(x);
	free(body);
	free(s);
	free(ps);
	free(pidf);
	free(c.xc_dir);
}
END_TEST

/* quiesce, dump, resume in that order; resume also when dump fails. */
START_TEST(exec_quiesce_dump_resume_in_order)
{
	char *log = path("order"), *q, *d, *r, *bad, *body, *text;
	char *qa[2] = { NULL, NULL }, *da[2] = { NULL, NULL }, *ra[2] = { NULL, NULL };
	struct exec_conf c;
	struct exec *x = NULL;
	void *state = NULL;
	size_t len = 0;
	char err[512] = "";

	ck_assert_int_ge(asprintf(&body, "echo quiesce >> %s", log), 0);
	q = script("q.sh", body);
	free(body);
	ck_assert_int_ge(asprintf(&body, "echo dump >> %s\nprintf STATE", log), 0);
	d = script("d.sh", body);
	free(body);
	ck_assert_int_ge(asprintf(&body, "echo dump >> %s\nexit 1", log), 0);
	bad = script("bad.sh", body);
	free(body);
	ck_assert_int_ge(asprintf(&body, "echo resume >> %s", log), 0);
	r = script("r.sh", body);
	free(body);
	qa[0] = q;
	da[0] = d;
	ra[0] = r;
	conf_base(&c, sleep_argv, da);
	c.xc_quiesce = qa;
	c.xc_resume = ra;
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), 0);
	ck_assert_msg(exec_checkpoint(x, &state, &len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(len, 5);
	ck_assert_mem_eq(state, "STATE", 5);
	free(state);
	state = NULL;
	text = slurp(log, NULL);
	ck_assert_str_eq(text, "quiesce\ndump\nresume\n");
	free(text);
	unlink(log);
	da[0] = bad;
	ck_assert_int_eq(exec_checkpoint(x, &state, &len, err, sizeof(err)), -EIO);
	ck_assert_ptr_null(state);
	ck_assert_str_eq(err, "dump (bad.sh) exited with code 1");
	text = slurp(log, NULL);
	ck_assert_str_eq(text, "quiesce\ndump\nresume\n");
	free(text);
	exec_free(x);
	free(q);
	free(d);
	free(r);
	free(bad);
	free(log);
	free(c.xc_dir);
}
END_TEST

START_TEST(exec_dump_path_and_restore_path)
{
	char *dump[] = { "/bin/sh", "-c", "cp data state.out", NULL };
	char *nodump[] = { "/bin/true", NULL };
	char *restore[] = { "/bin/sh", "-c", "test -f state.in && cp state.in data", NULL };
	struct exec_conf c;
	struct exec *x = NULL, *y = NULL;
	void *state = NULL;
	size_t len = 0;
	char err[512] = "", *p, *text;

	conf_base(&c, sleep_argv, dump);
	c.xc_dump_path = "state.out";
	c.xc_restore_path = "state.in";
	c.xc_restore = restore;
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), 0);
	ck_assert_int_ge(asprintf(&p, "%s/data", c.xc_dir), 0);
	write_file(p, "the data", 8, 0644);
	free(p);
	ck_assert_msg(exec_checkpoint(x, &state, &len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(len, 8);
	ck_assert_mem_eq(state, "the data", 8);
	/* A dump that writes no file does not return the previous one. */
	c.xc_dump = nodump;
	void *none = NULL;
	ck_assert_int_eq(exec_checkpoint(x, &none, &len, err, sizeof(err)), -EIO);
	ck_assert_ptr_null(none);
	ck_assert_ptr_nonnull(strstr(err, "state.out"));
	exec_free(x);
	free(c.xc_dir);

	c.xc_dir = path("other");
	ck_assert_msg(exec_start(&c, state, 8, &y, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_ge(asprintf(&p, "%s/data", c.xc_dir), 0);
	text = slurp(p, NULL);
	ck_assert_str_eq(text, "the data");
	free(text);
	free(p);
	exec_free(y);
	free(state);
	free(c.xc_dir);
}
END_TEST

START_TEST(exec_failed_restore_starts_nothing)
{
	char *restore[] = { "/bin/sh", "-c", "cat >/dev/null; echo 'bad archive' >&2; exit 4",
		NULL };
	char *s, *started = path("dir/started"), *body;
	char *run[2] = { NULL, NULL };
	struct exec_conf c;
	struct exec *x = NULL;
	char err[512] = "";

	ck_assert_int_ge(asprintf(&body, "echo > %s\nexec sleep 600", started), 0);
	s = script("run.sh", body);
	run[0] = s;
	conf_base(&c, run, true_argv);
	c.xc_restore = restore;
	ck_assert_int_eq(exec_start(&c, "xyz", 3, &x, err, sizeof(err)), -EIO);
	ck_assert_ptr_null(x);
	ck_assert_str_eq(err, "restore (sh) exited with code 4: bad archive");
	usleep(100000);
	ck_assert(!exists(started));
	free(s);
	free(body);
	free(started);
	free(c.xc_dir);
}
END_TEST

/* `ready`: exec_start() returns once it exits 0, fails when run ends first or it never does. */
START_TEST(exec_start_waits_until_ready)
{
	char *up = path("dir/up"), *body, *s;
	char *run[2] = { NULL, NULL };
	char *ready[] = { "/bin/test", "-f", "up", NULL };
	char *never[] = { "/bin/false", NULL };
	char *quit[] = { "/bin/sh", "-c", "exit 3", NULL };
	struct exec_conf c;
	struct exec *x = NULL;
	struct exec_status st;
	char err[512] = "";

	/* Serves (writes up) only after a while: start returns after that. */
	ck_assert_int_ge(asprintf(&body, "sleep 0.3\necho > %s\nexec sleep 600", up), 0);
	s = script("run.sh", body);
	run[0] = s;
	conf_base(&c, run, true_argv);
	c.xc_ready = ready;
	ck_assert_msg(exec_start(&c, NULL, 0, &x, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(exists(up), "exec_start returned before ready said so");
	ck_assert_int_eq(exec_status(x, &st), 0);
	ck_assert_int_eq(st.es_state, EXEC_RUNNING);
	exec_free(x);
	x = NULL;

	/* Never ready: the run process is stopped and the reason names ready. */
	c.xc_ready = never;
	c.xc_restore_timeout_ms = 400;
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), -ETIMEDOUT);
	ck_assert_ptr_null(x);
	ck_assert_msg(strstr(err, "ready: not ready after 400 ms") != NULL, "%s", err);

	/* Run ends before it is ready: said so, not a timeout. */
	run[0] = quit[0];
	c.xc_run = quit;
	c.xc_restore_timeout_ms = 60000;
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), -EIO);
	ck_assert_msg(strstr(err, "exited with status 3 before it was ready") != NULL, "%s", err);
	free(s);
	free(body);
	free(up);
	free(c.xc_dir);
}
END_TEST

START_TEST(exec_restore_that_ignores_stdin_does_not_kill_the_agent)
{
	/* A large state into a command that exits at once: EPIPE, not SIGPIPE. */
	char *restore[] = { "/bin/true", NULL };
	size_t big = 4 << 20;
	char *state = calloc(1, big);
	struct exec_conf c;
	struct exec *x = NULL;
	char err[512] = "";

	conf_base(&c, sleep_argv, true_argv);
	c.xc_restore = restore;
	ck_assert_msg(exec_start(&c, state, big, &x, err, sizeof(err)) == 0, "%s", err);
	exec_free(x);
	free(state);
	free(c.xc_dir);
}
END_TEST

START_TEST(exec_env_is_clean_and_extended)
{
	char *dump[] = { "/usr/bin/env", NULL };
	char *env[] = { "GREETING=hello world", NULL };
	struct exec_conf c;
	struct exec *x = NULL;
	void *state = NULL;
	size_t len = 0;
	char err[512] = "", *text;

	setenv("CKPT_TEST_SECRET", "leak", 1);
	conf_base(&c, sleep_argv, dump);
	c.xc_env = env;
	ck_assert_int_eq(exec_start(&c, NULL, 0, &x, err, sizeof(err)), 0);
	ck_assert_int_eq(exec_checkpoint(x, &state, &len, err, sizeof(err)), 0);
	text = strndup(state, len);
	ck_assert_ptr_nonnull(strstr(text, "GREETING=hello world\n"));
	ck_assert_ptr_nonnull(strstr(text, "PATH=" EXEC_BASE_PATH "\n"));
	ck_assert_ptr_null(strstr(text, "CKPT_TEST_SECRET"));
	free(text);
	free(state);
	exec_free(x);
	free(c.xc_dir);
}
END_TEST

START_TEST(exec_shell_mode_runs_one_string)
{
	char *dump[] = { "printf '%s' \"$((6 * 7))\"", NULL };
	char *run[] = { "exec sleep 600", NULL };
	char *restore[] = { "cat > x", NULL };
	struct exec_conf c;
	struct exec *x = NULL;
	void *state = NULL;
	size_t len = 0;
	char err[512] = "";

	conf_base(&c, run, dump);
	c.xc_restore = restore;
	c.xc_shell = true;
	ck_assert_msg(exec_start(&c, NULL, 0, &x, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(exec_checkpoint(x, &state, &len, err, sizeof(err)), 0);
	ck_assert_uint_eq(len, 2);
	ck_assert_mem_eq(state, "42", 2);
	free(state);
	state = NULL;
	dump[0] = "echo nope >&2; exit 5";
	ck_assert_int_eq(exec_checkpoint(x, &state, &len, err, sizeof(err)), -EIO);
	ck_assert_str_eq(err, "dump (sh) exited with code 5: nope");
	exec_free(x);
	free(c.xc_dir);
}
END_TEST

START_TEST(exec_runs_as_another_user)
{
	struct passwd *pw = getpwnam("nobody");
	char *dump[] = { "/bin/sh", "-c", "id -u; id -g; cat /proc/self/status | grep SigBlk",
		NULL };
	struct exec_conf c;
	struct exec *x = NULL;
	void *state = NULL;
	size_t len = 0;
	char err[512] = "", want[128], *text;
	sigset_t term, old;

	if (geteuid() != 0 || pw == NULL) {
		fprintf(stderr, "exec_runs_as_another_user: skipped (needs root and user nobody)\n");
		return;
	}
	conf_base(&c, sleep_argv, dump);
	c.xc_log_path = NULL;
	c.xc_user_set = true;
	c.xc_uid = pw->pw_uid;
	c.xc_gid = pw->pw_gid;
	chmod(tmp, 0755);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &old);
	ck_assert_msg(exec_start(&c, NULL, 0, &x, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(exec_checkpoint(x, &state, &len, err, sizeof(err)) == 0, "%s", err);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	text = strndup(state, len);
	snprintf(want, sizeof(want), "%u\n%u\nSigBlk:\t0000000000000000\n", (unsigned)pw->pw_uid,
	    (unsigned)pw->pw_gid);
	ck_assert_str_eq(text, want);
	free(text);
	free(state);
	exec_free(x);
	free(c.xc_dir);
}
END_TEST

static Suite *
exec_suite(void)
{
	Suite *s = suite_create("exec");
	TCase *tc = tcase_create("exec");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, exec_stop_sends_term_to_the_group_first);
	tcase_add_test(tc, exec_stop_kills_after_grace);
	tcase_add_test(tc, exec_status_sees_an_exit_code);
	tcase_add_test(tc, exec_status_sees_a_signal);
	tcase_add_test(tc, exec_start_reports_a_missing_program);
	tcase_add_test(tc, exec_tar_dump_and_restore_roundtrip);
	tcase_add_test(tc, exec_dump_over_the_limit_is_refused);
	tcase_add_test(tc, exec_dump_exit_code_is_a_failure_with_its_stderr);
	tcase_add_test(tc, exec_dump_past_its_timeout_is_killed);
	tcase_add_test(tc, exec_quiesce_dump_resume_in_order);
	tcase_add_test(tc, exec_dump_path_and_restore_path);
	tcase_add_test(tc, exec_failed_restore_starts_nothing);
	tcase_add_test(tc, exec_start_waits_until_ready);
	tcase_add_test(tc, exec_restore_that_ignores_stdin_does_not_kill_the_agent);
	tcase_add_test(tc, exec_env_is_clean_and_extended);
	tcase_add_test(tc, exec_shell_mode_runs_one_string);
	tcase_add_test(tc, exec_runs_as_another_user);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return test_run(exec_suite());
}

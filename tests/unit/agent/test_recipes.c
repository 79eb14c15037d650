/*
 * The example specs of deploy/examples/ on real programs, through spec and
 * exec alone (no agent): load the example (folder and ports moved into a
 * temporary folder and free ports), start the program, write data, take a
 * checkpoint, stop it, start it from the checkpoint in a fresh folder (a new
 * node), and the program serves the data. Skipped, with a message, when the
 * program is not installed.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec.h"
#include "spec.h"
#include "../testrun.h"

static char tmp[256];
/* Whatever runs when a check fails (Check exits the test's process): stopped at exit. */
static struct exec *live[2];

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	return remove(p);
}

static void
stop_live(void)
{
	for (size_t i = 0; i < 2; i++) {
		exec_free(live[i]);
		live[i] = NULL;
	}
}

static void
setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/ckpt_test_recipes.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	atexit(stop_live);
}

static void
teardown(void)
{
	stop_live();
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int
free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* s with every FROM[i] replaced by TO[i]; malloc'ed. */
static char *
subst(const char *s, const char *const *from, const char *const *to, size_t n)
{
	size_t cap = strlen(s) * 2 + 4096, j = 0;
	char *out = malloc(cap);

	while (*s != '\0') {
		size_t i;
		for (i = 0; i < n; i++)
			if (strncmp(s, from[i], strlen(from[i])) == 0)
				break;
		if (i < n) {
			j += (size_t)snprintf(out + j, cap - j, "%s", to[i]);
			s += strlen(from[i]);
		} else {
			out[j++] = *s++;
		}
		ck_assert_uint_lt(j, cap - 256);
	}
	out[j] = '\0';
	return out;
}

static char *
slurp(const char *p)
{
	FILE *f = fopen(p, "r");
	char *buf = malloc(1 << 16);
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* A shell command's stdout. */
static char *
run_out(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	char *buf = calloc(1, 1 << 16);
	size_t n;

	ck_assert_ptr_nonnull(p);
	n = fread(buf, 1, (1 << 16) - 1, p);
	buf[n] = '\0';
	pclose(p);
	return buf;
}

/* Until cmd prints want (up to 60 s: a loaded machine, no wall-time assertion). */
static bool
wait_out(const char *cmd, const char *want)
{
	for (int i = 0; i < 600; i++) {
		char *out = run_out(cmd);
		bool ok = strstr(out, want) != NULL;
		free(out);
		if (ok)
			return true;
		usleep(100000);
	}
	return false;
}

struct recipe {
	const char *example;       /* deploy/examples/NAME */
	const char *program;       /* skipped without it */
	const char *ports[2];      /* port numbers in the example, moved to free ports */
	const char *ready, *ready_want;
	const char *write;
	const char *read, *read_want;
};

/* Commands use P0 and P1 for the ports, DIR for the folder of the node. */
static const struct recipe recipes[] = {
	{ "redis.ini", "/usr/bin/redis-server", { "6390", NULL },
	    "redis-cli -p P0 ping 2>&1", "PONG",
	    "redis-cli -p P0 set greeting hello >/dev/null && "
	    "redis-cli -p P0 rpush list a b c >/dev/null && "
	    "head -c 300000 /dev/urandom | base64 -w0 | redis-cli -p P0 -x set big >/dev/null",
	    "redis-cli -p P0 get greeting; redis-cli -p P0 lrange list 0 -1; "
	    "redis-cli -p P0 strlen big",
	    "hello\na\nb\nc\n400000\n" },
	{ "agent.ini", "/usr/bin/python3", { "8580", NULL },
	    "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:P0/", "200",
	    "printf 'hello\\n' > DIR/data/greeting.txt && mkdir DIR/data/sub && "
	    "head -c 100000 /dev/urandom > DIR/data/sub/blob && cp DIR/data/sub/blob DIR/../blob",
	    "curl -s http://127.0.0.1:P0/greeting.txt && "
	    "curl -s http://127.0.0.1:P0/sub/blob | cmp - DIR/../blob && echo same",
	    "hello\nsame\n" },
	{ "etcd.ini", "/usr/bin/etcd", { "2479", "2480" },
	    "etcdctl --endpoints 127.0.0.1:P0 endpoint health 2>&1", "is healthy",
	    "etcdctl --endpoints 127.0.0.1:P0 put greeting hello >/dev/null 2>&1 && "
	    "etcdctl --endpoints 127.0.0.1:P0 put k2 v2 >/dev/null 2>&1",
	    "etcdctl --endpoints 127.0.0.1:P0 get --prefix '' 2>/dev/null",
	    "greeting\nhello\nk2\nv2\n" },
};

START_TEST(recipe_serves_its_data_after_restore_in_a_fresh_folder)
{
	const struct recipe *r = &recipes[_i];
	char path[512], ini[512], p0[16], p1[16], err[600];
	const char *from[3], *to[3];
	char *text, *conf, *cmd;
	const char *cfrom[3] = { "P0", "P1", "DIR" }, *cto[3] = { p0, p1, NULL };
	struct spec_config *cfg = NULL;
	struct spec *s;
	struct exec_status st;
	void *state = NULL;
	size_t len = 0, n = 1;

	if (access(r->program, X_OK) != 0) {
		fprintf(stderr, "recipe %s: skipped: %s is not installed\n", r->example, r->program);
		return;
	}
	snprintf(p0, sizeof(p0), "%d", free_port());
	snprintf(p1, sizeof(p1), "%d", free_port());
	from[0] = "/var/lib/ckpt";
	to[0] = tmp;
	from[n] = r->ports[0];
	to[n++] = p0;
	if (r->ports[1] != NULL) {
		from[n] = r->ports[1];
		to[n++] = p1;
	}
	snprintf(path, sizeof(path), "%s/%s", EXAMPLES_DIR, r->example);
	text = slurp(path);
	conf = subst(text, from, to, n);
	snprintf(ini, sizeof(ini), "%s/%s", tmp, r->example);
	FILE *f = fopen(ini, "w");
	fputs(conf, f);
	fclose(f);
	ck_assert_msg(spec_config_load(ini, NULL, 0, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg->sc_nspecs, 1);
	s = cfg->sc_specs[0];
	cto[2] = s->sp_exec.xc_dir;

	/* The first node. */
	ck_assert_msg(exec_start(&s->sp_exec, NULL, 0, &live[0], err, sizeof(err)) == 0, "%s",
	    err);
	cmd = subst(r->ready, cfrom, cto, 3);
	ck_assert_msg(wait_out(cmd, r->ready_want), "%s never answered", r->program);
	free(cmd);
	cmd = subst(r->write, cfrom, cto, 3);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	ck_assert_msg(exec_checkpoint(live[0], &state, &len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(exec_stop(live[0], 30000, &st), 0);
	ck_assert_int_ne(st.es_state, EXEC_RUNNING);
	exec_free(live[0]);
	live[0] = NULL;

	/* Another node: a fresh folder, from the checkpoint. */
	free(s->sp_exec.xc_dir);
	ck_assert_int_ge(asprintf(&s->sp_exec.xc_dir, "%s/node2", tmp), 0);
	cto[2] = s->sp_exec.xc_dir;
	ck_assert_msg(exec_start(&s->sp_exec, state, len, &live[1], err, sizeof(err)) == 0, "%s",
	    err);
	cmd = subst(r->read, cfrom, cto, 3);
	if (!wait_out(cmd, r->read_want)) {
		char *got = run_out(cmd);
		ck_abort_msg("%s after restore: got '%s', want '%s'", r->program, got, r->read_want);
	}
	free(cmd);
	ck_assert_int_eq(exec_status(live[1], &st), 0);
	ck_assert_int_eq(st.es_state, EXEC_RUNNING);
	ck_assert_int_eq(exec_stop(live[1], 30000, &st), 0);
	exec_free(live[1]);
	live[1] = NULL;
	free(state);
	free(text);
	free(conf);
	spec_config_free(cfg);
}
END_TEST

static Suite *
recipes_suite(void)
{
	Suite *s = suite_create("recipes");
	TCase *tc = tcase_create("recipes");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_loop_test(tc, recipe_serves_its_data_after_restore_in_a_fresh_folder, 0,
	    sizeof(recipes) / sizeof(recipes[0]));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return test_run(recipes_suite());
}

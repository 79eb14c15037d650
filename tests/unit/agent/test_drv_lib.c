/*
 * The lib driver (services/agent/drv_lib.c) with a real local server in
 * this process and the counter example (clients/libckpt/examples) as the
 * program it runs: what a fresh start owes, the newest program checkpoint
 * given once, "nothing new", hints against the bytes, a restart from a
 * given state, a crash, and the specs it refuses.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drv.h"
#include "drv_lib.h"
#include "exec.h"
#include "local.h"
#include "../testrun.h"

#define WAIT_TRIES 3000 /* of 10 ms: 30 s, for a slow machine */

static char dir[64];
static char out[128];
static struct drv_lib_host *host;

static void
nap(void)
{
	struct timespec ts = { 0, 10 * 1000000 };
	nanosleep(&ts, NULL);
}

static void
host_up(void)
{
	char sock[96], err[256] = "";

	snprintf(dir, sizeof(dir), "/tmp/ckpt-drvlib-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	snprintf(out, sizeof(out), "%s/counter.out", dir);
	ck_assert_msg(drv_lib_host_start(sock, &host, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(strncmp(drv_lib_host_url(host), "ipc:///tmp/ckpt-drvlib-", 23), 0);
}

static void
host_down(void)
{
	char sock[96];

	drv_lib_host_stop(host);
	host = NULL;
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	rmdir(sock);
	unlink(out);
	rmdir(dir);
}

/* The counter as a lib component: argv from until, every, sleep_ms. */
struct counter_conf {
	char *argv[12];
	char until[24], every[24], sleep_ms[24];
	struct exec_conf xc;
	struct drv_spec spec;
};

static void
counter_conf(struct counter_conf *cc, unsigned long long until, unsigned every, unsigned sleep_ms)
{
	const char *exe = getenv("CKPT_COUNTER");

	ck_assert_ptr_nonnull(exe);
	memset(cc, 0, sizeof(*cc));
	snprintf(cc->until, sizeof(cc->until), "%llu", until);
	snprintf(cc->every, sizeof(cc->every), "%u", every);
	snprintf(cc->sleep_ms, sizeof(cc->sleep_ms), "%u", sleep_ms);
	cc->argv[0] = (char *)exe;
	cc->argv[1] = "--until";
	cc->argv[2] = cc->until;
	cc->argv[3] = "--every";
	cc->argv[4] = cc->every;
	cc->argv[5] = "--sleep-ms";
	cc->argv[6] = cc->sleep_ms;
	cc->argv[7] = "--buffer";
	cc->argv[8] = "100000";
	cc->xc.xc_run = cc->argv;
	cc->xc.xc_dir = dir;
	cc->xc.xc_log_path = out;
	cc->xc.xc_limit = 1 << 20;
	cc->xc.xc_run_only = true;
	cc->spec.sp_name = "counter";
	cc->spec.sp_exec = &cc->xc;
	cc->spec.sp_lib = host;
}

static bool
file_has(const char *path, const char *text)
{
	static char buf[1 << 20];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

/* The counter (region 1) of a state in stored form. */
static uint64_t
state_counter(const void *buf, size_t len)
{
	struct local_region *rs;
	uint64_t c = 0;
	size_t n;

	ck_assert_int_eq(local_state_decode(buf, len, &rs, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (rs[i].lr_id == 1)
			memcpy(&c, rs[i].lr_data, sizeof(c));
	free(rs);
	return c;
}

/* d_checkpoint, flattened (and released); rv of d_checkpoint. */
static int
take(struct drv_inst *in, void **ret_buf, size_t *ret_len, struct drv_ckpt *ret_ck)
{
	struct drv_ckpt ck = { 0 };
	char err[256] = "";
	int rv;

	rv = drv_lib_ops.d_checkpoint(in, false, &ck, err, sizeof(err));
	if (rv != 0)
		return rv;
	if (ck.ck_buf == NULL) {
		ck_assert_int_eq(drv_flatten(&ck, drv_lib_ops.d_state_max, &ck.ck_buf, &ck.ck_len), 0);
		drv_lib_ops.d_ckpt_done(in);
	} else {
		ck_assert_int_eq(ck.ck_nregions, 0);
	}
	*ret_buf = ck.ck_buf;
	*ret_len = ck.ck_len;
	*ret_ck = ck;
	return 0;
}

static void
wait_ended(struct drv_inst *in, struct drv_status *ret_st)
{
	for (int i = 0; i < WAIT_TRIES; i++) {
		drv_lib_ops.d_tick(in);
		drv_lib_ops.d_status(in, ret_st);
		if (ret_st->ds_run != DRV_RUN_RUNNING)
			return;
		nap();
	}
	ck_abort_msg("the counter did not end");
}

START_TEST(lib_fresh_start_owes_no_regions_then_gives_the_newest_checkpoint)
{
	struct counter_conf cc;
	struct drv_inst *in = NULL;
	struct drv_status st;
	struct drv_ckpt ck;
	struct local_region *rs;
	char err[256] = "";
	void *buf, *state = NULL;
	size_t len, n, slen = 0;

	host_up();
	counter_conf(&cc, 200, 50, 0);
	ck_assert_msg(drv_lib_ops.d_start(&cc.spec, NULL, 0, &in, err, sizeof(err)) == 0, "%s",
	    err);
	/* First: the stored form of no regions (a restore of it starts the program fresh). */
	ck_assert_int_eq(take(in, &buf, &len, &ck), 0);
	ck_assert(!ck.ck_hinted);
	ck_assert_int_eq(local_state_decode(buf, len, &rs, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(rs);
	free(buf);
	/* It counts to 200, checkpointing at 50, 100, 150, 200, and exits 0. */
	wait_ended(in, &st);
	ck_assert_int_eq(st.ds_run, DRV_RUN_EXITED);
	ck_assert(WIFEXITED(st.ds_wstatus) && WEXITSTATUS(st.ds_wstatus) == 0);
	ck_assert_int_gt(st.ds_pid, 0);
	ck_assert(file_has(out, "done counter=200"));
	/* The newest only, once, even after its program ended. */
	ck_assert_int_eq(take(in, &buf, &len, &ck), 0);
	ck_assert_uint_eq(state_counter(buf, len), 200);
	ck_assert(!ck.ck_hinted); /* the first of the program's given: nothing to be relative to */
	free(ck.ck_changed);
	ck_assert_int_eq(take(in, &state, &slen, &ck), -ESRCH);
	/* A final one: nothing new, its newest stored checkpoint stands (ckpt.c). */
	ck_assert_int_eq(drv_lib_ops.d_checkpoint(in, true, &ck, err, sizeof(err)), -EAGAIN);
	ck_assert_ptr_nonnull(strstr(err, "nothing new"));
	ck_assert_int_eq(drv_lib_ops.d_stop(in, 0), 0);
	drv_lib_ops.d_free(in);
	in = NULL;

	/* Started from that state (the driver takes it), it goes on from 200, never from 0. */
	counter_conf(&cc, 300, 50, 0);
	ck_assert_msg(drv_lib_ops.d_start(&cc.spec, buf, len, &in, err, sizeof(err)) == 0, "%s",
	    err);
	wait_ended(in, &st);
	ck_assert_msg(st.ds_run == DRV_RUN_EXITED, "run %d status %d", st.ds_run, st.ds_wstatus);
	ck_assert(file_has(out, "restored counter=200\n"));
	ck_assert(file_has(out, "done counter=300\n"));
	/* Its own checkpoint supersedes the state it was given. */
	ck_assert_int_eq(take(in, &buf, &len, &ck), 0);
	ck_assert_uint_eq(state_counter(buf, len), 300);
	free(buf);
	free(ck.ck_changed);
	ck_assert_int_eq(take(in, &buf, &len, &ck), -ESRCH);
	ck_assert_int_eq(drv_lib_ops.d_stop(in, 0), 0);
	drv_lib_ops.d_free(in);
	host_down();
}
END_TEST

/* Every byte that differs between prev and cur lies in a hinted range. */
static void
assert_hints_cover(const uint8_t *prev, size_t plen, const uint8_t *cur, size_t clen,
    const struct drv_ckpt *ck)
{
	ck_assert_uint_eq(plen, clen);
	for (size_t b = 0; b < clen; b++) {
		bool in = false;
		if (prev[b] == cur[b])
			continue;
		for (size_t r = 0; r < ck->ck_nchanged && !in; r++)
			in = b >= ck->ck_changed[r].rn_off &&
			    b < ck->ck_changed[r].rn_off + ck->ck_changed[r].rn_len;
		ck_assert_msg(in, "byte %zu changed outside the hints", b);
	}
}

START_TEST(lib_running_program_nothing_new_then_hinted_checkpoints)
{
	struct counter_conf cc;
	struct drv_inst *in = NULL;
	struct drv_status st;
	struct drv_ckpt ck;
	char err[256] = "";
	void *buf, *prev = NULL;
	size_t len, plen = 0;
	unsigned taken = 0, hinted = 0, nothing = 0;
	uint64_t last = 0;
	int rv;

	host_up();
	/* A checkpoint every 50 counts of 2 ms: about ten a second. */
	counter_conf(&cc, 1000000000ull, 50, 2);
	ck_assert_msg(drv_lib_ops.d_start(&cc.spec, NULL, 0, &in, err, sizeof(err)) == 0, "%s",
	    err);
	drv_lib_ops.d_status(in, &st);
	ck_assert_int_eq(st.ds_run, DRV_RUN_RUNNING);
	ck_assert_int_gt(st.ds_pid, 0);
	ck_assert_int_eq(take(in, &buf, &len, &ck), 0); /* what a fresh start owes */
	free(buf);
	/* Stopped, the program makes none: what was in flight is taken, then nothing new. */
	ck_assert_int_eq(kill(st.ds_pid, SIGSTOP), 0);
	for (int i = 0; i < WAIT_TRIES && nothing == 0; i++) {
		rv = take(in, &buf, &len, &ck);
		if (rv == -EAGAIN) {
			nothing++;
			break;
		}
		ck_assert_int_eq(rv, 0);
		free(buf);
		free(ck.ck_changed);
		nap();
	}
	ck_assert_uint_eq(nothing, 1);
	ck_assert_int_eq(take(in, &buf, &len, &ck), -EAGAIN);
	ck_assert_int_eq(kill(st.ds_pid, SIGCONT), 0);
	/* Running again: each one given is newer, and hints cover what changed. */
	for (int i = 0; i < WAIT_TRIES && (taken < 6 || hinted < 2); i++) {
		rv = take(in, &buf, &len, &ck);
		if (rv == -EAGAIN) {
			nap();
			continue;
		}
		ck_assert_int_eq(rv, 0);
		ck_assert_uint_gt(state_counter(buf, len), last);
		last = state_counter(buf, len);
		if (ck.ck_hinted) {
			ck_assert_ptr_nonnull(prev);
			assert_hints_cover(prev, plen, buf, len, &ck);
			hinted++;
		}
		free(ck.ck_changed);
		free(prev);
		prev = buf;
		plen = len;
		taken++;
	}
	ck_assert_uint_ge(taken, 6);
	ck_assert_uint_ge(hinted, 2);
	free(prev);
	/* Stopped by request: EXITED, whatever its signal. */
	ck_assert_int_eq(drv_lib_ops.d_stop(in, 1000), 0);
	drv_lib_ops.d_status(in, &st);
	ck_assert_int_eq(st.ds_run, DRV_RUN_EXITED);
	drv_lib_ops.d_free(in);
	host_down();
}
END_TEST

START_TEST(lib_program_killed_is_crashed)
{
	struct counter_conf cc;
	struct drv_inst *in = NULL;
	struct drv_status st;
	char err[256] = "";

	host_up();
	counter_conf(&cc, 1000000000ull, 50, 2);
	ck_assert_msg(drv_lib_ops.d_start(&cc.spec, NULL, 0, &in, err, sizeof(err)) == 0, "%s",
	    err);
	drv_lib_ops.d_status(in, &st);
	ck_assert_int_eq(kill(st.ds_pid, SIGKILL), 0);
	wait_ended(in, &st);
	ck_assert_int_eq(st.ds_run, DRV_RUN_CRASHED);
	ck_assert(WIFSIGNALED(st.ds_wstatus) && WTERMSIG(st.ds_wstatus) == SIGKILL);
	ck_assert_int_eq(drv_lib_ops.d_stop(in, 0), 0);
	drv_lib_ops.d_free(in);
	host_down();
}
END_TEST

START_TEST(lib_refuses_specs_it_cannot_run)
{
	struct counter_conf cc;
	struct drv_inst *in = NULL;
	char *dump[] = { "/bin/cat", NULL };
	char err[256] = "";
	uint8_t junk[32] = { 0 };
	void *state;

	host_up();
	counter_conf(&cc, 10, 5, 0);
	cc.spec.sp_exec = NULL;
	ck_assert_int_eq(drv_lib_ops.d_check(&cc.spec, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "driver = lib"));
	counter_conf(&cc, 10, 5, 0);
	cc.xc.xc_run_only = false; /* an exec spec */
	ck_assert_int_eq(drv_lib_ops.d_check(&cc.spec, err, sizeof(err)), -EINVAL);
	counter_conf(&cc, 10, 5, 0);
	cc.spec.sp_lib = NULL;
	ck_assert_int_eq(drv_lib_ops.d_check(&cc.spec, err, sizeof(err)), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(err, "[allow] drivers = lib"));
	counter_conf(&cc, 10, 5, 0);
	cc.xc.xc_dump = dump;
	ck_assert_int_eq(drv_lib_ops.d_check(&cc.spec, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "dump: not a setting"));
	/* A state that is not the stored form: refused, nothing started, the state still ours. */
	counter_conf(&cc, 10, 5, 0);
	state = malloc(sizeof(junk));
	ck_assert_ptr_nonnull(state);
	memcpy(state, junk, sizeof(junk));
	ck_assert_int_eq(drv_lib_ops.d_start(&cc.spec, state, sizeof(junk), &in, err, sizeof(err)),
	    -EBADMSG);
	ck_assert_ptr_null(in);
	free(state);
	ck_assert(!file_has(out, "start fresh"));
	host_down();
}
END_TEST

START_TEST(lib_host_refuses_a_folder_open_to_others)
{
	struct drv_lib_host *h = NULL;
	char d[64], err[256] = "";

	snprintf(d, sizeof(d), "/tmp/ckpt-drvlib-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d));
	ck_assert_int_eq(chmod(d, 0755), 0);
	ck_assert_int_eq(drv_lib_host_start(d, &h, err, sizeof(err)), -EACCES);
	ck_assert_ptr_nonnull(strstr(err, "closed to others"));
	ck_assert_int_eq(drv_lib_host_start("relative", &h, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(h);
	rmdir(d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("drv_lib");
	TCase *tc = tcase_create("drv_lib");

	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, lib_fresh_start_owes_no_regions_then_gives_the_newest_checkpoint);
	tcase_add_test(tc, lib_running_program_nothing_new_then_hinted_checkpoints);
	tcase_add_test(tc, lib_program_killed_is_crashed);
	tcase_add_test(tc, lib_refuses_specs_it_cannot_run);
	tcase_add_test(tc, lib_host_refuses_a_folder_open_to_others);
	suite_add_tcase(s, tc);
	return test_run(s);
}

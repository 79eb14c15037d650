/*
 * Supervision (super.h): a component whose process dies is restarted from
 * its latest checkpoint after its back-off, counted, and given up (FAILED)
 * after too many failures in a row. The driver is the test's own: its
 * process is a real child (killed with SIGKILL), its state a counter.
 * Time is the test's: super_step() is given the clock.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "comp.h"
#include "super.h"
#include "util.h"
#include "../testrun.h"

/* ---- the test driver: a child process and a counter that counts ticks ---- */

struct drv_inst {
	pid_t tp_pid;
	atomic_int tp_run;     /* enum drv_run */
	atomic_int tp_wstatus;
	atomic_bool tp_stopping;
	uint64_t tp_counter;   /* the state */
};

static int
tp_check(const struct drv_spec *spec, char *err, size_t errlen)
{
	(void)spec;
	(void)err;
	(void)errlen;
	return 0;
}

static int
tp_start(const struct drv_spec *spec, void *state, size_t len, struct drv_inst **ret_inst,
    char *err, size_t errlen)
{
	struct drv_inst *in;

	(void)spec;
	if (state != NULL && len != sizeof(uint64_t)) {
		snprintf(err, errlen, "a state of %zu bytes, want 8", len);
		return -EINVAL;
	}
	in = calloc(1, sizeof(*in));
	if (in == NULL)
		return -ENOMEM;
	if (state != NULL)
		memcpy(&in->tp_counter, state, sizeof(uint64_t));
	in->tp_pid = fork();
	if (in->tp_pid < 0) {
		free(in);
		return -errno;
	}
	if (in->tp_pid == 0) {
		for (;;)
			pause();
	}
	atomic_init(&in->tp_run, DRV_RUN_RUNNING);
	free(state);
	*ret_inst = in;
	return 0;
}

static void
tp_tick(struct drv_inst *in)
{
	int ws;

	if (atomic_load(&in->tp_run) != DRV_RUN_RUNNING)
		return;
	in->tp_counter++;
	if (waitpid(in->tp_pid, &ws, WNOHANG) == in->tp_pid) {
		atomic_store(&in->tp_wstatus, ws);
		atomic_store(&in->tp_run,
		    atomic_load(&in->tp_stopping) ? DRV_RUN_EXITED : DRV_RUN_CRASHED);
	}
}

static int
tp_checkpoint(struct drv_inst *in, bool final, struct drv_ckpt *ret_ckpt, char *err,
    size_t errlen)
{
	struct drv_ckpt ck = { 0 };

	(void)final;
	if (atomic_load(&in->tp_run) != DRV_RUN_RUNNING) {
		snprintf(err, errlen, "not running");
		return -ESRCH;
	}
	ck.ck_buf = malloc(sizeof(uint64_t));
	if (ck.ck_buf == NULL)
		return -ENOMEM;
	memcpy(ck.ck_buf, &in->tp_counter, sizeof(uint64_t));
	ck.ck_len = sizeof(uint64_t);
	*ret_ckpt = ck;
	return 0;
}

static int
tp_stop(struct drv_inst *in, unsigned grace_ms)
{
	int ws;

	(void)grace_ms;
	atomic_store(&in->tp_stopping, true);
	if (atomic_load(&in->tp_run) == DRV_RUN_RUNNING) {
		kill(in->tp_pid, SIGKILL);
		if (waitpid(in->tp_pid, &ws, 0) == in->tp_pid)
			atomic_store(&in->tp_wstatus, ws);
		atomic_store(&in->tp_run, DRV_RUN_EXITED);
	}
	return 0;
}

static void
tp_status(struct drv_inst *in, struct drv_status *ret_status)
{
	struct drv_status st = { 0 };

	st.ds_run = (enum drv_run)atomic_load(&in->tp_run);
	st.ds_pid = in->tp_pid;
	st.ds_wstatus = atomic_load(&in->tp_wstatus);
	st.ds_state_bytes = sizeof(uint64_t);
	*ret_status = st;
}

static void
tp_free(struct drv_inst *in)
{
	free(in);
}

static const struct drv_ops tp_ops = {
	.d_kind = "tproc",
	.d_state_max = 64,
	.d_check = tp_check,
	.d_start = tp_start,
	.d_checkpoint = tp_checkpoint,
	.d_stop = tp_stop,
	.d_status = tp_status,
	.d_tick = tp_tick,
	.d_free = tp_free,
};

/* ---- the test's store of checkpoints and its supervisor ---- */

struct store {
	uint64_t st_seq;     /* latest checkpoint, 0: none */
	uint64_t st_counter; /* its state */
	unsigned st_fail;    /* the next restarts that fail */
	unsigned st_unreachable; /* the next restarts that find the store unreachable */
	unsigned st_starts;
	unsigned st_fresh;
	unsigned st_crashed; /* se_crashed calls */
	unsigned st_crashed_starts; /* st_starts at the last of them */
	struct super_policy st_policy;
};

static struct comp_table *t;
static struct super *sup;
static struct store store;
static struct arena *arena;

static int
st_start(void *arg, const char *name, const struct drv_ops *ops, struct super_start *ret,
    char *err, size_t errlen)
{
	struct store *s = arg;
	struct drv_spec spec = { name, NULL, 0, NULL, NULL };
	struct super_start ss = { 0 };
	uint64_t *state = NULL;
	int rv;

	s->st_starts++;
	if (s->st_unreachable > 0) {
		s->st_unreachable--;
		snprintf(err, errlen, "no NAS answers");
		return -EAGAIN;
	}
	if (s->st_fail > 0) {
		s->st_fail--;
		snprintf(err, errlen, "the store does not answer");
		return -ETIMEDOUT;
	}
	if (s->st_seq != 0) {
		state = malloc(sizeof(*state));
		ck_assert_ptr_nonnull(state);
		*state = s->st_counter;
		ss.ss_restored = true;
		snprintf(ss.ss_from.cr_node, sizeof(ss.ss_from.cr_node), "n1");
		snprintf(ss.ss_from.cr_component, sizeof(ss.ss_from.cr_component), "%s", name);
		ss.ss_from.cr_seq = s->st_seq;
	} else {
		s->st_fresh++;
	}
	rv = ops->d_start(&spec, state, state != NULL ? sizeof(*state) : 0, &ss.ss_inst, err,
	    errlen);
	if (rv != 0) {
		free(state);
		return rv;
	}
	*ret = ss;
	return 0;
}

static void
st_policy(void *arg, const char *name, struct super_policy *ret)
{
	(void)name;
	*ret = ((struct store *)arg)->st_policy;
}

static void
st_crashed(void *arg, const char *name)
{
	struct store *s = arg;

	(void)name;
	s->st_crashed++;
	s->st_crashed_starts = s->st_starts;
}

static void
setup(void)
{
	struct super_env env = {
		.se_start = st_start,
		.se_policy = st_policy,
		.se_crashed = st_crashed,
		.se_arg = &store,
	};

	memset(&store, 0, sizeof(store));
	store.st_policy.su_max_restarts = 3;
	store.st_policy.su_backoff_ms = 1000;
	ck_assert_int_eq(comp_table_new(&t), 0);
	env.se_comps = t;
	ck_assert_int_eq(super_new(&env, &sup), 0);
	ck_assert_int_eq(arena_new(&arena), 0);
}

static void
teardown(void)
{
	super_free(sup);
	comp_table_free(t);
	arena_free(arena);
}

static void
add(const char *name, uint64_t counter)
{
	struct drv_spec spec = { name, NULL, 0, NULL, NULL };
	struct drv_inst *in = NULL;
	uint64_t *state = malloc(sizeof(*state));
	char err[128];

	ck_assert_ptr_nonnull(state);
	*state = counter;
	ck_assert_int_eq(tp_ops.d_start(&spec, state, sizeof(*state), &in, err, sizeof(err)), 0);
	ck_assert_int_eq(comp_add(t, name, &tp_ops, in, 5), 0);
}

static const Ckpt__V1__ComponentStatus *
status(const char *name)
{
	Ckpt__V1__ComponentStatus *s = NULL;

	ck_assert_int_eq(comp_status_one(t, arena, name, &s), 0);
	return s;
}

/* Takes a checkpoint of name into the store as seq; returns its counter. */
static uint64_t
checkpoint(const char *name, uint64_t seq)
{
	struct comp_snap snap = { 0 };
	char err[128];
	uint64_t v;

	ck_assert_int_eq(comp_ckpt_begin(t, name, false, &snap, err, sizeof(err)), 0);
	ck_assert_uint_eq(snap.cp_len, sizeof(uint64_t));
	memcpy(&v, snap.cp_buf, sizeof(v));
	comp_ckpt_end(t, name, &snap.cp_seq, seq);
	comp_snap_clear(&snap);
	store.st_seq = seq;
	store.st_counter = v;
	return v;
}

/* The counter name would checkpoint now. */
static uint64_t
counter(const char *name)
{
	struct comp_snap snap = { 0 };
	char err[128];
	uint64_t v;

	ck_assert_int_eq(comp_ckpt_begin(t, name, false, &snap, err, sizeof(err)), 0);
	memcpy(&v, snap.cp_buf, sizeof(v));
	comp_ckpt_end(t, name, &snap.cp_seq, 0);
	comp_snap_clear(&snap);
	return v;
}

/* SIGKILL of name's process; returns once its driver has seen it die. */
static pid_t
crash(const char *name)
{
	pid_t pid = (pid_t)status(name)->pid;
	comp_name *names = NULL;
	size_t n = 0;

	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	for (int i = 0; i < 2000 && n == 0; i++) {
		util_sleep_ms(5);
		comp_tick_all(t);
		free(names);
		names = NULL;
		ck_assert_int_eq(comp_crashed_names(t, &names, &n), 0);
	}
	free(names);
	ck_assert_uint_eq(n, 1);
	return pid;
}

START_TEST(super_restarts_a_killed_component_from_its_checkpoint_after_its_backoff)
{
	uint64_t t0 = 1000000, saved;
	pid_t old;

	add("c1", 41);
	for (int i = 0; i < 3; i++)
		comp_tick_all(t);
	saved = checkpoint("c1", 7);
	ck_assert_uint_eq(saved, 44);
	for (int i = 0; i < 3; i++)
		comp_tick_all(t); /* work done after the checkpoint: lost with the crash */
	ck_assert_str_eq(status("c1")->state, "running");
	ck_assert_uint_eq(status("c1")->restarts, 0);
	ck_assert_uint_gt(status("c1")->last_unix_ms, 0);
	old = crash("c1");

	ck_assert_uint_eq(status("c1")->crashes, 0);
	super_step(sup, t0);
	ck_assert_str_eq(status("c1")->state, "restoring");
	ck_assert_uint_eq(status("c1")->pid, 0);
	/* The crash is counted and told (se_crashed) now, before the restart. */
	ck_assert_uint_eq(status("c1")->crashes, 1);
	ck_assert_uint_eq(status("c1")->restarts, 0);
	ck_assert_uint_eq(store.st_crashed, 1);
	ck_assert_uint_eq(store.st_crashed_starts, 0);
	ck_assert_uint_eq(super_waiting(sup), 1);
	/* Still reported in heartbeats: this node still owns it. */
	{
		Ckpt__V1__ComponentStatus **list;
		size_t n;
		ck_assert_int_eq(comp_status_all(t, arena, true, &list, &n), 0);
		ck_assert_uint_eq(n, 1);
	}
	ck_assert_uint_eq(super_step(sup, t0 + 999), 1);
	ck_assert_uint_eq(store.st_starts, 0);
	ck_assert_str_eq(status("c1")->state, "restoring");

	super_step(sup, t0 + 1000);
	ck_assert_uint_eq(store.st_starts, 1);
	ck_assert_str_eq(status("c1")->state, "running");
	ck_assert_uint_eq(status("c1")->restarts, 1);
	ck_assert_uint_eq(status("c1")->crashes, 1);
	ck_assert_uint_eq(store.st_crashed, 1);
	ck_assert_int_gt((pid_t)status("c1")->pid, 0);
	ck_assert_int_ne((pid_t)status("c1")->pid, old);
	ck_assert_ptr_nonnull(status("c1")->restored_from);
	ck_assert_uint_eq(status("c1")->restored_from->seq, 7);
	ck_assert_uint_eq(status("c1")->epoch, 5); /* still its owner at its epoch */
	ck_assert_uint_eq(counter("c1"), saved); /* the state continues from the checkpoint */
	ck_assert_uint_eq(super_waiting(sup), 0);
}
END_TEST

START_TEST(super_gives_up_after_max_restarts_in_a_row)
{
	uint64_t now = 5000;
	const Ckpt__V1__ComponentStatus *s;
	struct comp_snap snap = { 0 };
	char err[128];

	store.st_policy.su_max_restarts = 2;
	store.st_policy.su_backoff_ms = 100;
	add("c1", 1);
	checkpoint("c1", 1);
	/* Failure 1, restart after 100 ms; failure 2, after 200 ms (doubled). */
	for (uint64_t wait = 100; wait <= 200; wait *= 2) {
		crash("c1");
		super_step(sup, now);
		super_step(sup, now + wait - 1);
		ck_assert_str_eq(status("c1")->state, "restoring");
		super_step(sup, now + wait);
		ck_assert_str_eq(status("c1")->state, "running");
		now += wait + 10;
	}
	ck_assert_uint_eq(status("c1")->restarts, 2);
	crash("c1");
	super_step(sup, now);
	s = status("c1");
	ck_assert_str_eq(s->state, "failed");
	ck_assert_uint_eq(s->restarts, 2);
	ck_assert_uint_eq(s->crashes, 3); /* the last one too */
	ck_assert_uint_eq(s->pid, 0);
	ck_assert_msg(strstr(s->reason, "3 failures in a row (max-restarts 2)") != NULL &&
	        strstr(s->reason, "signal 9") != NULL,
	    "reason: %s", s->reason);
	ck_assert_uint_eq(super_waiting(sup), 0);
	ck_assert_uint_eq(store.st_starts, 2);
	/* Given up: reported (the manager moves it), never ticked, checkpointed or restarted. */
	{
		Ckpt__V1__ComponentStatus **list;
		size_t n;
		ck_assert_int_eq(comp_status_all(t, arena, true, &list, &n), 0);
		ck_assert_uint_eq(n, 1);
		ck_assert_str_eq(list[0]->state, "failed");
	}
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", false, &snap, err, sizeof(err)), -ENOENT);
	comp_tick_all(t);
	super_step(sup, now + 100000);
	ck_assert_uint_eq(store.st_starts, 2);
	/* The manager placed it elsewhere: this node lets it go. */
	ck_assert_int_eq(comp_revoke(t, "c1"), 0);
	ck_assert_int_eq(comp_status_one(t, arena, "c1", &(Ckpt__V1__ComponentStatus *){ NULL }),
	    -ENOENT);
}
END_TEST

START_TEST(super_counts_a_failed_restart_and_tries_again_later)
{
	uint64_t now = 1000;

	store.st_policy.su_max_restarts = 3;
	store.st_policy.su_backoff_ms = 100;
	add("c1", 9);
	checkpoint("c1", 3);
	crash("c1");
	store.st_fail = 1;
	super_step(sup, now);
	super_step(sup, now + 100); /* fails: failure 2, next in 200 ms */
	ck_assert_uint_eq(store.st_starts, 1);
	ck_assert_str_eq(status("c1")->state, "restoring");
	ck_assert_uint_eq(super_waiting(sup), 1);
	super_step(sup, now + 299);
	ck_assert_uint_eq(store.st_starts, 1);
	super_step(sup, now + 300);
	ck_assert_uint_eq(store.st_starts, 2);
	ck_assert_str_eq(status("c1")->state, "running");
	ck_assert_uint_eq(status("c1")->restarts, 1);
	ck_assert_uint_eq(counter("c1"), 9);
}
END_TEST

START_TEST(super_does_not_count_an_unreachable_store_as_a_failure)
{
	uint64_t now = 1000;

	store.st_policy.su_max_restarts = 1;
	store.st_policy.su_backoff_ms = 100;
	add("c1", 4);
	checkpoint("c1", 2);
	crash("c1");
	store.st_unreachable = 5;
	super_step(sup, now);
	/* Tried every 100 ms (no doubling), never given up on. */
	for (unsigned i = 1; i <= 5; i++) {
		super_step(sup, now + 100 * i - 1);
		ck_assert_uint_eq(store.st_starts, i - 1);
		super_step(sup, now + 100 * i);
		ck_assert_uint_eq(store.st_starts, i);
		ck_assert_str_eq(status("c1")->state, "restoring");
	}
	super_step(sup, now + 600);
	ck_assert_uint_eq(store.st_starts, 6);
	ck_assert_str_eq(status("c1")->state, "running");
	ck_assert_uint_eq(status("c1")->restarts, 1);
	ck_assert_uint_eq(counter("c1"), 4);
}
END_TEST

START_TEST(super_forgets_failures_after_a_stable_run)
{
	uint64_t now = 1000;

	store.st_policy.su_max_restarts = 1;
	store.st_policy.su_backoff_ms = 50;
	add("c1", 0);
	for (int round = 0; round < 3; round++) {
		crash("c1");
		super_step(sup, now);
		super_step(sup, now + 50);
		ck_assert_str_eq(status("c1")->state, "running");
		now += 50 + SUPER_STABLE_MS; /* ran long enough each time */
		super_step(sup, now);
	}
	ck_assert_uint_eq(status("c1")->restarts, 3);
	/* No checkpoint existed: each restart started it fresh. */
	ck_assert_uint_eq(store.st_fresh, 3);
	ck_assert_ptr_null(status("c1")->restored_from);
}
END_TEST

START_TEST(super_lets_go_of_a_component_removed_while_it_waits)
{
	add("c1", 2);
	crash("c1");
	super_step(sup, 100);
	ck_assert_int_eq(comp_remove(t, "c1", 0), 0);
	super_step(sup, 100 + 1000);
	ck_assert_uint_eq(store.st_starts, 1); /* started, then stopped: nobody wants it */
	ck_assert_uint_eq(super_waiting(sup), 0);
	ck_assert_int_eq(comp_status_one(t, arena, "c1", &(Ckpt__V1__ComponentStatus *){ NULL }),
	    -ENOENT);
}
END_TEST

START_TEST(super_leaves_stopped_and_running_components_alone)
{
	add("c1", 2);
	add("c2", 3);
	ck_assert_int_eq(comp_stop(t, "c2"), 0);
	comp_tick_all(t);
	super_step(sup, 100);
	super_step(sup, 100000);
	ck_assert_uint_eq(store.st_starts, 0);
	ck_assert_str_eq(status("c1")->state, "running");
	ck_assert_str_eq(status("c2")->state, "stopping");
	ck_assert_int_eq(comp_remove(t, "c2", 0), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("super");
	TCase *tc = tcase_create("super");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, super_restarts_a_killed_component_from_its_checkpoint_after_its_backoff);
	tcase_add_test(tc, super_gives_up_after_max_restarts_in_a_row);
	tcase_add_test(tc, super_counts_a_failed_restart_and_tries_again_later);
	tcase_add_test(tc, super_does_not_count_an_unreachable_store_as_a_failure);
	tcase_add_test(tc, super_forgets_failures_after_a_stable_run);
	tcase_add_test(tc, super_lets_go_of_a_component_removed_while_it_waits);
	tcase_add_test(tc, super_leaves_stopped_and_running_components_alone);
	suite_add_tcase(s, tc);
	return test_run(s);
}

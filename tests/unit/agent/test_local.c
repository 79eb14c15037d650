/*
 * libckpt against the agent's Local service (services/agent/local.c), over a
 * real ipc:// socket in this process (and, for the counter example, with
 * the example as a child process): init, protect, checkpoint, restart with
 * the restored regions, hints, a busy agent, misuse, and the stored form.
 * Each test runs in its own process (Check's fork mode): libckpt has one
 * instance per process.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sys/mman.h>

#include "ckpt.h"
#include "ckpt/v1/local.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "local.h"
#include "methods.h"
#include "rpc.h"
#include "../testrun.h"

extern char **environ;

/* What the test "agent" keeps: the last checkpoint, in stored form. */
struct store {
	pthread_mutex_t st_lock;
	uint8_t *st_state;
	size_t st_len;
	uint64_t st_seq;
	unsigned st_count;
	struct local_range *st_changed;    /* of the last checkpoint, stored-form offsets */
	size_t st_n_changed;
	bool st_hold;                      /* keep checkpoints unreleased in st_held */
	struct local_ckpt *st_held[4];
	unsigned st_nheld;
	int st_refuse;                     /* refuse with this errno */
	unsigned st_hellos, st_finalizes;  /* events */
	pid_t st_event_pid;
};

static struct store store = { .st_lock = PTHREAD_MUTEX_INITIALIZER };
static char dir[64];
static char url[128];
static struct local_server *srv;

static int
on_checkpoint(void *arg, struct local_ckpt *ck, const char **ret_why)
{
	struct store *st = arg;
	uint64_t size;
	uint8_t *buf;
	int rv;

	if (st->st_refuse != 0) {
		*ret_why = "the test says no";
		return st->st_refuse;
	}
	rv = local_state_size(ck->lc_regions, ck->lc_n_regions, &size);
	if (rv != 0)
		return rv;
	buf = malloc(size);
	if (buf == NULL)
		return -ENOMEM;
	rv = local_state_encode(ck->lc_regions, ck->lc_n_regions, buf, size);
	if (rv != 0) {
		free(buf);
		return rv;
	}
	pthread_mutex_lock(&st->st_lock);
	free(st->st_state);
	free(st->st_changed);
	st->st_state = buf;
	st->st_len = size;
	st->st_seq = ck->lc_seq;
	st->st_count++;
	rv = local_ckpt_changed(ck, &st->st_changed, &st->st_n_changed);
	if (st->st_hold && st->st_nheld < 4) {
		st->st_held[st->st_nheld++] = ck;
		ck = NULL;
	}
	pthread_mutex_unlock(&st->st_lock);
	local_ckpt_release(ck);
	return rv;
}

static void
on_event(void *arg, const char *component, pid_t pid, enum local_event ev)
{
	struct store *st = arg;

	(void)component;
	pthread_mutex_lock(&st->st_lock);
	st->st_event_pid = pid;
	if (ev == LOCAL_EV_HELLO)
		st->st_hellos++;
	else if (ev == LOCAL_EV_FINALIZE)
		st->st_finalizes++;
	pthread_mutex_unlock(&st->st_lock);
}

static void
server_up(void)
{
	struct local_config cfg = {
		.lc_on_checkpoint = on_checkpoint,
		.lc_on_event = on_event,
		.lc_arg = &store,
	};

	snprintf(dir, sizeof(dir), "/tmp/ckpt-local-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(url, sizeof(url), "ipc://%s/local.sock", dir);
	cfg.lc_url = url;
	ck_assert_int_eq(local_start(&cfg, &srv), 0);
}

static void
server_down(void)
{
	local_stop(srv);
	srv = NULL;
	rmdir(dir);
	for (unsigned i = 0; i < store.st_nheld; i++)
		local_ckpt_release(store.st_held[i]);
	store.st_nheld = 0;
	free(store.st_state);
	free(store.st_changed);
	store.st_state = NULL;
	store.st_changed = NULL;
}

static void
expect(const char *comp, pid_t pid, uint64_t max_bytes, bool restart)
{
	struct local_expect le = {
		.le_component = comp,
		.le_pid = pid,
		.le_max_bytes = max_bytes,
	};

	if (restart) {
		le.le_state = store.st_state;
		le.le_state_len = store.st_len;
		le.le_seq = store.st_seq;
	}
	ck_assert_int_eq(local_expect(srv, &le), 0);
}

/* Region id's bytes in the stored state. */
static const struct local_region *
stored_region(struct local_region *rs, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (rs[i].lr_id == id)
			return &rs[i];
	return NULL;
}

static void
fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31u + seed * 7u + (i >> 12));
}

START_TEST(local_checkpoint_then_restart_gives_the_regions_back)
{
	size_t big = (5u << 20) + 123;   /* over one GetRegion piece */
	uint8_t *buf = malloc(big), *want = malloc(big);
	uint64_t counter = 41, seen = 0;
	struct local_region *rs;
	size_t n, sz = 0;
	struct stat st;

	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(want);
	server_up();
	ck_assert_int_eq(stat(url + 6, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	expect("app", getpid(), 0, false);
	ck_assert_int_eq(ckpt_init("app", url), 0);
	ck_assert_int_eq(ckpt_restarted(), 0);
	fill(buf, big, 1);
	memcpy(want, buf, big);
	ck_assert_int_eq(ckpt_protect(1, &counter, sizeof(counter)), 0);
	ck_assert_int_eq(ckpt_protect(2, buf, big), 0);
	ck_assert_int_eq(ckpt_checkpoint(), 1);
	ck_assert_int_eq(ckpt_wait(), 0);
	/* The copy is the checkpoint: what the program writes after does not count. */
	counter = 99;
	fill(buf, big, 2);
	ck_assert_int_eq(local_state_decode(store.st_state, store.st_len, &rs, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(stored_region(rs, n, 1)->lr_size, sizeof(counter));
	memcpy(&seen, stored_region(rs, n, 1)->lr_data, sizeof(seen));
	ck_assert_uint_eq(seen, 41);
	ck_assert(memcmp(stored_region(rs, n, 2)->lr_data, want, big) == 0);
	free(rs);
	ck_assert_int_eq(ckpt_finalize(), 0);

	/* The "next process": the agent restores the stored state. */
	expect("app", getpid(), 0, true);
	memset(buf, 0, big);
	counter = 0;
	ck_assert_int_eq(ckpt_init("app", url), 0);
	ck_assert_int_eq(ckpt_restarted(), 1);
	ck_assert_int_eq(ckpt_restored_size(2, &sz), 0);
	ck_assert_uint_eq(sz, big);
	ck_assert_int_eq(ckpt_restored_size(9, &sz), CKPT_ENOREGION);
	ck_assert_int_eq(ckpt_protect(1, &counter, sizeof(counter)), 0);
	ck_assert_int_eq(ckpt_protect(2, buf, big), 0);
	ck_assert_int_eq(ckpt_restore(), 0);
	ck_assert_uint_eq(counter, 41);
	ck_assert(memcmp(buf, want, big) == 0);
	ck_assert_int_eq(ckpt_restarted(), 0);
	ck_assert_int_eq(ckpt_restore(), CKPT_ENORESTART);
	/* The sequence goes on from the restored checkpoint. */
	ck_assert_int_eq(ckpt_checkpoint(), 2);
	ck_assert_int_eq(ckpt_wait(), 0);
	ck_assert_int_eq(ckpt_finalize(), 0);
	ck_assert_uint_eq(store.st_hellos, 2);
	ck_assert_uint_eq(store.st_finalizes, 2);
	ck_assert_int_eq(store.st_event_pid, getpid());
	server_down();
	free(buf);
	free(want);
}
END_TEST

START_TEST(local_misuse_is_refused_with_a_message)
{
	uint8_t small[64], big[8192];
	size_t sz;

	/* Before init. */
	ck_assert_int_eq(ckpt_checkpoint(), CKPT_ENOTINIT);
	ck_assert_ptr_nonnull(strstr(ckpt_errmsg(), "ckpt_init"));
	ck_assert_int_eq(ckpt_protect(1, small, sizeof(small)), CKPT_ENOTINIT);
	ck_assert_int_eq(ckpt_restore(), CKPT_ENOTINIT);
	ck_assert_int_eq(ckpt_finalize(), CKPT_ENOTINIT);
	/* No agent: nothing in the environment, or nobody at the socket. */
	unsetenv("CKPT_COMPONENT");
	unsetenv("CKPT_LOCAL_URL");
	ck_assert_int_eq(ckpt_init(NULL, NULL), CKPT_ENOAGENT);
	ck_assert_ptr_nonnull(strstr(ckpt_errmsg(), "CKPT_COMPONENT"));
	ck_assert_int_eq(ckpt_init("app", "ipc:///tmp/ckpt-no-such-agent.sock"), CKPT_ENOAGENT);
	ck_assert_ptr_nonnull(strstr(ckpt_errmsg(), "cannot reach"));
	ck_assert_int_eq(ckpt_init("app", "tcp://127.0.0.1:1"), CKPT_EINVAL);

	server_up();
	/* Not a component of this agent; another process's component. */
	ck_assert_int_eq(ckpt_init("stranger", url), CKPT_EAGENT);
	ck_assert_ptr_nonnull(strstr(ckpt_errmsg(), "not run by this agent"));
	expect("other", getpid() + 100000, 0, false);
	ck_assert_int_eq(ckpt_init("other", url), CKPT_EAGENT);
	ck_assert_ptr_nonnull(strstr(ckpt_errmsg(), "pid"));

	/* Environment, as the agent sets it. */
	expect("app", getpid(), 4096, false);
	setenv("CKPT_COMPONENT", "app", 1);
	setenv("CKPT_LOCAL_URL", url, 1);
	ck_assert_int_eq(ckpt_init(NULL, NULL), 0);
	ck_assert_int_eq(ckpt_init(NULL, NULL), CKPT_EALREADY);
	ck_assert_int_eq(ckpt_checkpoint(), CKPT_EINVAL);           /* nothing protected */
	ck_assert_int_eq(ckpt_protect(1, NULL, 10), CKPT_EINVAL);
	ck_assert_int_eq(ckpt_protect(1, small, 0), CKPT_EINVAL);
	ck_assert_int_eq(ckpt_protect(1, big, sizeof(big)), CKPT_ETOOBIG);
	ck_assert_ptr_nonnull(strstr(ckpt_errmsg(), "limit of 4096"));
	ck_assert_int_eq(ckpt_protect(1, small, sizeof(small)), 0);
	ck_assert_int_eq(ckpt_protect(2, big, 4096 - sizeof(small) + 1), CKPT_ETOOBIG);
	ck_assert_int_eq(ckpt_mark_changed(7, 0, 1), CKPT_ENOREGION);
	ck_assert_ptr_nonnull(strstr(ckpt_errmsg(), "region 7"));
	ck_assert_int_eq(ckpt_mark_changed(1, 60, 5), CKPT_ERANGE);
	ck_assert_int_eq(ckpt_unprotect(7), CKPT_ENOREGION);
	ck_assert_int_eq(ckpt_restore(), CKPT_ENORESTART);
	ck_assert_int_eq(ckpt_restored_size(1, &sz), CKPT_ENORESTART);
	ck_assert_int_eq(ckpt_checkpoint(), 1);
	ck_assert_int_eq(ckpt_wait(), 0);
	/* The agent refusing a checkpoint: an error with its reason, and the next one works. */
	store.st_refuse = -EIO;
	ck_assert_int_eq(ckpt_checkpoint(), 2);
	ck_assert_int_eq(ckpt_wait(), CKPT_EAGENT);
	ck_assert_ptr_nonnull(strstr(ckpt_errmsg(), "the test says no"));
	ck_assert_int_eq(ckpt_wait(), 0);                  /* reported once */
	/* Without ckpt_wait(): the next ckpt_checkpoint() reports it, then goes on. */
	ck_assert_int_eq(ckpt_checkpoint(), 3);
	ck_assert_int_eq(ckpt_checkpoint(), CKPT_EAGENT);
	ck_assert_ptr_nonnull(strstr(ckpt_errmsg(), "the test says no"));
	store.st_refuse = 0;                               /* nothing in flight now */
	ck_assert_int_eq(ckpt_checkpoint(), 4);
	ck_assert_int_eq(ckpt_wait(), 0);
	ck_assert_int_eq(ckpt_finalize(), 0);
	ck_assert_int_eq(ckpt_finalize(), CKPT_ENOTINIT);
	server_down();

	/* Every code has its own words. */
	for (int a = CKPT_ERANGE; a <= 0; a++) {
		ck_assert_ptr_nonnull(ckpt_strerror(a));
		for (int b = CKPT_ERANGE; b < a; b++)
			ck_assert_str_ne(ckpt_strerror(a), ckpt_strerror(b));
	}
	ck_assert_str_eq(ckpt_strerror(-999), "unknown libckpt error");
}
END_TEST

START_TEST(local_restore_checks_every_region_before_writing)
{
	uint8_t a[100], b[200], c[300];

	server_up();
	expect("app", getpid(), 0, false);
	ck_assert_int_eq(ckpt_init("app", url), 0);
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	ck_assert_int_eq(ckpt_protect(1, a, sizeof(a)), 0);
	ck_assert_int_eq(ckpt_protect(2, b, sizeof(b)), 0);
	ck_assert_int_eq(ckpt_checkpoint(), 1);
	ck_assert_int_eq(ckpt_wait(), 0);
	ck_assert_int_eq(ckpt_finalize(), 0);

	expect("app", getpid(), 0, true);
	ck_assert_int_eq(ckpt_init("app", url), 0);
	memset(a, 0, sizeof(a));
	ck_assert_int_eq(ckpt_protect(1, a, sizeof(a)), 0);
	ck_assert_int_eq(ckpt_restore(), CKPT_ENOREGION);    /* region 2 not protected */
	ck_assert_int_eq(a[0], 0);
	ck_assert_int_eq(ckpt_protect(2, c, sizeof(c)), 0);
	ck_assert_int_eq(ckpt_restore(), CKPT_ESIZE);        /* 300 bytes, not 200 */
	ck_assert_int_eq(a[0], 0);
	ck_assert_int_eq(ckpt_protect(2, b, sizeof(b)), 0);
	ck_assert_int_eq(ckpt_restore(), 0);
	ck_assert_int_eq(a[99], 'a');
	ck_assert_int_eq(b[199], 'b');
	ck_assert_int_eq(ckpt_finalize(), 0);
	server_down();
}
END_TEST

START_TEST(local_hints_become_changed_ranges_of_the_stored_form)
{
	static uint8_t a[10000], b[5000];
	uint64_t ha = local_state_header_size(2);

	server_up();
	expect("app", getpid(), 0, false);
	ck_assert_int_eq(ckpt_init("app", url), 0);
	ck_assert_int_eq(ckpt_protect(1, a, sizeof(a)), 0);
	ck_assert_int_eq(ckpt_protect(2, b, sizeof(b)), 0);
	/* First checkpoint: all of it, hints or not. */
	ck_assert_int_eq(ckpt_mark_changed(1, 100, 10), 0);
	ck_assert_int_eq(ckpt_checkpoint(), 1);
	ck_assert_int_eq(ckpt_wait(), 0);
	ck_assert_uint_eq(store.st_n_changed, 1);
	ck_assert_uint_eq(store.st_changed[0].lg_offset, 0);
	ck_assert_uint_eq(store.st_changed[0].lg_length, store.st_len);
	/* Region 1 hinted (two ranges, the second two touching ones), region 2 not: whole. */
	a[100] = 1;
	ck_assert_int_eq(ckpt_mark_changed(1, 100, 10), 0);
	ck_assert_int_eq(ckpt_mark_changed(1, 5000, 10), 0);
	ck_assert_int_eq(ckpt_mark_changed(1, 5010, 10), 0);
	ck_assert_int_eq(ckpt_checkpoint(), 2);
	ck_assert_int_eq(ckpt_wait(), 0);
	ck_assert_uint_eq(store.st_n_changed, 4);
	ck_assert_uint_eq(store.st_changed[0].lg_offset, 0);
	ck_assert_uint_eq(store.st_changed[0].lg_length, ha);
	ck_assert_uint_eq(store.st_changed[1].lg_offset, ha + 100);
	ck_assert_uint_eq(store.st_changed[1].lg_length, 10);
	ck_assert_uint_eq(store.st_changed[2].lg_offset, ha + 5000);
	ck_assert_uint_eq(store.st_changed[2].lg_length, 20);
	ck_assert_uint_eq(store.st_changed[3].lg_offset, ha + sizeof(a));
	ck_assert_uint_eq(store.st_changed[3].lg_length, sizeof(b));
	/* Nothing hinted in region 1 this time: only region 2 (never hinted) and the header. */
	ck_assert_int_eq(ckpt_checkpoint(), 3);
	ck_assert_int_eq(ckpt_wait(), 0);
	ck_assert_uint_eq(store.st_n_changed, 2);
	ck_assert_uint_eq(store.st_changed[1].lg_offset, ha + sizeof(a));
	ck_assert_uint_eq(store.st_changed[1].lg_length, sizeof(b));
	/* Over CKPT_RANGES_MAX ranges: the whole region. */
	for (unsigned i = 0; i <= CKPT_RANGES_MAX; i++)
		ck_assert_int_eq(ckpt_mark_changed(1, i * 100, 1), 0);
	ck_assert_int_eq(ckpt_checkpoint(), 4);
	ck_assert_int_eq(ckpt_wait(), 0);
	ck_assert_uint_eq(store.st_n_changed, 1);
	ck_assert_uint_eq(store.st_changed[0].lg_length, store.st_len);
	/* A region gone: the layout moved, all of it counts, hints or not. */
	ck_assert_int_eq(ckpt_protect(3, b, 100), 0);
	ck_assert_int_eq(ckpt_checkpoint(), 5);
	ck_assert_int_eq(ckpt_wait(), 0);
	ck_assert_int_eq(ckpt_unprotect(3), 0);
	ck_assert_int_eq(ckpt_mark_changed(1, 0, 1), 0);
	ck_assert_int_eq(ckpt_checkpoint(), 6);
	ck_assert_int_eq(ckpt_wait(), 0);
	ck_assert_uint_eq(store.st_n_changed, 1);
	ck_assert_uint_eq(store.st_changed[0].lg_length, store.st_len);
	/* Same layout again: hints count. */
	ck_assert_int_eq(ckpt_mark_changed(1, 0, 1), 0);
	ck_assert_int_eq(ckpt_checkpoint(), 7);
	ck_assert_int_eq(ckpt_wait(), 0);
	ck_assert_uint_eq(store.st_n_changed, 2);
	ck_assert_int_eq(ckpt_finalize(), 0);
	server_down();
}
END_TEST

START_TEST(local_checkpoint_waits_for_a_free_segment_then_fails_busy)
{
	uint64_t v = 1;

	server_up();
	setenv("CKPT_TIMEOUT_MS", "300", 1);
	store.st_hold = true;
	expect("app", getpid(), 0, false);
	ck_assert_int_eq(ckpt_init("app", url), 0);
	ck_assert_int_eq(ckpt_protect(1, &v, sizeof(v)), 0);
	ck_assert_int_eq(ckpt_checkpoint(), 1);
	ck_assert_int_eq(ckpt_wait(), 0);
	v = 2;
	ck_assert_int_eq(ckpt_checkpoint(), 2);
	ck_assert_int_eq(ckpt_wait(), 0);
	/* Both segments with the agent: the third waits, then gives up. */
	v = 3;
	ck_assert_int_eq(ckpt_checkpoint(), CKPT_EBUSY);
	ck_assert_ptr_nonnull(strstr(ckpt_errmsg(), "still stores"));
	/* The agent finishes the first: the third goes through, with its own bytes. */
	pthread_mutex_lock(&store.st_lock);
	local_ckpt_release(store.st_held[0]);
	store.st_held[0] = store.st_held[--store.st_nheld];
	store.st_hold = false;
	pthread_mutex_unlock(&store.st_lock);
	ck_assert_int_eq(ckpt_checkpoint(), 3);
	ck_assert_int_eq(ckpt_wait(), 0);
	{
		struct local_region *rs;
		size_t n;
		uint64_t got;
		ck_assert_int_eq(local_state_decode(store.st_state, store.st_len, &rs, &n), 0);
		memcpy(&got, rs[0].lr_data, sizeof(got));
		ck_assert_uint_eq(got, 3);
		free(rs);
	}
	ck_assert_int_eq(ckpt_finalize(), 0);
	server_down();
	unsetenv("CKPT_TIMEOUT_MS");
}
END_TEST

START_TEST(local_state_decode_refuses_what_is_not_the_format)
{
	uint8_t one[] = "hello", two[] = "x";
	struct local_region in[2] = {
		{ .lr_id = 5, .lr_data = one, .lr_size = 5 },
		{ .lr_id = 9, .lr_data = two, .lr_size = 1 },
	};
	uint8_t good[64], bad[64];
	struct local_region *out;
	uint64_t size;
	size_t n;

	ck_assert_int_eq(local_state_size(in, 2, &size), 0);
	ck_assert_uint_eq(size, 16 + 32 + 6);
	ck_assert_int_eq(local_state_encode(in, 2, good, (size_t)size), 0);
	ck_assert_int_eq(local_state_encode(in, 2, good, (size_t)size + 1), -EINVAL);
	ck_assert_int_eq(local_state_decode(good, (size_t)size, &out, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(out[0].lr_id, 5);
	ck_assert(memcmp(out[0].lr_data, "hello", 5) == 0);
	ck_assert_uint_eq(out[1].lr_id, 9);
	ck_assert_uint_eq(out[1].lr_size, 1);
	free(out);
	/* Zero regions is a valid (empty) state. */
	ck_assert_int_eq(local_state_encode(NULL, 0, bad, 16), 0);
	ck_assert_int_eq(local_state_decode(bad, 16, &out, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(out);

	struct { const char *what; size_t at; uint8_t val; size_t len; } cases[] = {
		{ "bad magic", 0, 'X', 54 },
		{ "count too high", 8, 3, 54 },
		{ "count over the limit", 10, 1, 54 },
		{ "reserved word set", 12, 1, 54 },
		{ "entry reserved set", 16 + 4, 1, 54 },
		{ "duplicate id", 32, 5, 54 },
		{ "size past the end", 16 + 8, 200, 54 },
		{ "truncated bytes", 0, 'C', 53 },
		{ "trailing bytes", 0, 'C', 55 },
		{ "truncated header", 0, 'C', 10 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(bad, good, sizeof(good));
		bad[cases[i].at] = cases[i].val;
		ck_assert_msg(local_state_decode(bad, cases[i].len, &out, &n) == -EBADMSG,
		    "%s accepted", cases[i].what);
	}
}
END_TEST


START_TEST(local_most_regions_with_most_hints_fit_one_request)
{
	enum { SIZE = 512 };
	static uint8_t mem[CKPT_REGIONS_MAX][SIZE];
	uint8_t extra[8];

	server_up();
	expect("app", getpid(), 0, false);
	ck_assert_int_eq(ckpt_init("app", url), 0);
	for (uint32_t i = 0; i < CKPT_REGIONS_MAX; i++)
		ck_assert_int_eq(ckpt_protect(0xffff0000u + i, mem[i], SIZE), 0);
	ck_assert_int_eq(ckpt_protect(7, extra, sizeof(extra)), CKPT_ETOOBIG);
	ck_assert_int_eq(ckpt_checkpoint(), 1);
	ck_assert_int_eq(ckpt_wait(), 0);
	for (uint32_t i = 0; i < CKPT_REGIONS_MAX; i++)
		for (unsigned k = 0; k < CKPT_RANGES_MAX; k++)
			ck_assert_int_eq(ckpt_mark_changed(0xffff0000u + i, k * 8, 1), 0);
	ck_assert_int_eq(ckpt_checkpoint(), 2);
	ck_assert_int_eq(ckpt_wait(), 0);
	/* 64 ranges in each region, and the header (which the first range touches) */
	ck_assert_uint_eq(store.st_n_changed, (size_t)CKPT_REGIONS_MAX * CKPT_RANGES_MAX);
	ck_assert_int_eq(ckpt_finalize(), 0);
	server_down();
}
END_TEST

START_TEST(local_agent_gone_gives_errors_not_hangs)
{
	uint64_t v = 1;
	int rv;

	server_up();
	setenv("CKPT_TIMEOUT_MS", "300", 1);
	expect("app", getpid(), 0, false);
	ck_assert_int_eq(ckpt_init("app", url), 0);
	ck_assert_int_eq(ckpt_protect(1, &v, sizeof(v)), 0);
	ck_assert_int_eq(ckpt_checkpoint(), 1);
	ck_assert_int_eq(ckpt_wait(), 0);
	local_stop(srv);
	srv = NULL;
	/* Handed to nobody: the error comes with the answer that never comes. */
	ck_assert_int_eq(ckpt_checkpoint(), 2);
	rv = ckpt_wait();
	ck_assert_msg(rv == CKPT_ETIMEDOUT || rv == CKPT_ENOAGENT, "ckpt_wait: %d", rv);
	ck_assert_ptr_nonnull(strstr(ckpt_errmsg(), "checkpoint 2"));
	/* An agent back on the same socket that does not know the program refuses it. */
	{
		struct local_config cfg = { .lc_url = url, .lc_on_checkpoint = on_checkpoint,
			.lc_arg = &store };
		ck_assert_int_eq(local_start(&cfg, &srv), 0);
	}
	ck_assert_int_eq(ckpt_checkpoint(), 3);
	rv = ckpt_wait();
	ck_assert_msg(rv == CKPT_EAGENT || rv == CKPT_ETIMEDOUT || rv == CKPT_ENOAGENT,
	    "ckpt_wait: %d", rv);
	/* Told about it, the agent takes the next one. */
	expect("app", getpid(), 0, false);
	for (int i = 0; i < 100; i++) {       /* the dialer reconnects with back-off */
		struct timespec nap = { 0, 50 * 1000000 };
		int64_t seq = ckpt_checkpoint();
		if (seq > 0 && ckpt_wait() == 0)
			break;
		ck_assert_int_lt(i, 99);
		nanosleep(&nap, NULL);
	}
	ck_assert_int_eq(ckpt_finalize(), 0);
	server_down();
	unsetenv("CKPT_TIMEOUT_MS");
}
END_TEST

/* ---- what the server refuses ---- */

enum seg_kind { SEG_GOOD, SEG_PLAIN_FILE, SEG_UNSEALED, SEG_BAD_MAGIC, SEG_FREE_STATE };

/* A segment of 3 pages as libckpt makes it (or spoilt as kind says). */
static int
make_segment(enum seg_kind kind)
{
	char path[] = "/tmp/ckpt-seg-XXXXXX";
	uint8_t *m;
	int fd;

	if (kind == SEG_PLAIN_FILE) {
		fd = mkstemp(path);
		ck_assert_int_ge(fd, 0);
		unlink(path);
	} else {
		fd = memfd_create("t", MFD_ALLOW_SEALING);
		ck_assert_int_ge(fd, 0);
	}
	ck_assert_int_eq(ftruncate(fd, 3 * 4096), 0);
	if (kind != SEG_UNSEALED && kind != SEG_PLAIN_FILE)
		ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(m, MAP_FAILED);
	memcpy(m, kind == SEG_BAD_MAGIC ? "CKPTSEGX" : "CKPTSEG1", 8);
	m[8] = kind == SEG_FREE_STATE ? 0 : 1;      /* state, little-endian */
	munmap(m, 3 * 4096);
	return fd;
}

struct bad_case {
	const char *what;
	enum seg_kind seg;
	const char *component;
	int32_t fd_delta;          /* added to the segment's fd */
	uint64_t size;             /* announced size; 0: the real one */
	uint64_t off[2], len[2];   /* regions (len 0: absent) */
	uint32_t id2;              /* id of the second region */
	uint64_t rg_off, rg_len;   /* a changed range of the first region (rg_len 0: none) */
	int code;                  /* expected wire code */
};

START_TEST(local_server_refuses_bad_checkpoints_and_goes_on)
{
	static const struct bad_case cases[] = {
		{ "a good one", SEG_GOOD, "app", 0, 0, { 4096, 0 }, { 100, 0 }, 2, 0, 0, 0 },
		{ "not expected", SEG_GOOD, "nobody", 0, 0, { 4096, 0 }, { 100, 0 }, 2, 0, 0,
		  CKPT__V1__CODE__NOT_FOUND },
		{ "no such fd", SEG_GOOD, "app", 1000, 0, { 4096, 0 }, { 100, 0 }, 2, 0, 0,
		  CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "a plain file", SEG_PLAIN_FILE, "app", 0, 0, { 4096, 0 }, { 100, 0 }, 2, 0, 0,
		  CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "no seals", SEG_UNSEALED, "app", 0, 0, { 4096, 0 }, { 100, 0 }, 2, 0, 0,
		  CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "wrong size", SEG_GOOD, "app", 0, 4 * 4096, { 4096, 0 }, { 100, 0 }, 2, 0, 0,
		  CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "bad magic", SEG_BAD_MAGIC, "app", 0, 0, { 4096, 0 }, { 100, 0 }, 2, 0, 0,
		  CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "not handed", SEG_FREE_STATE, "app", 0, 0, { 4096, 0 }, { 100, 0 }, 2, 0, 0,
		  CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "no regions", SEG_GOOD, "app", 0, 0, { 4096, 0 }, { 0, 0 }, 2, 0, 0,
		  CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "over the header", SEG_GOOD, "app", 0, 0, { 0, 0 }, { 100, 0 }, 2, 0, 0,
		  CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "not aligned", SEG_GOOD, "app", 0, 0, { 4097, 0 }, { 100, 0 }, 2, 0, 0,
		  CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "past the end", SEG_GOOD, "app", 0, 0, { 8192, 0 }, { 4097, 0 }, 2, 0, 0,
		  CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "huge size", SEG_GOOD, "app", 0, 0, { 8192, 0 }, { UINT64_MAX, 0 }, 2, 0, 0,
		  CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "same id twice", SEG_GOOD, "app", 0, 0, { 4096, 8192 }, { 10, 10 }, 1, 0, 0,
		  CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "range outside", SEG_GOOD, "app", 0, 0, { 4096, 0 }, { 100, 0 }, 2, 90, 11,
		  CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "range wraps", SEG_GOOD, "app", 0, 0, { 4096, 0 }, { 100, 0 }, 2, 50, UINT64_MAX,
		  CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "over the limit", SEG_GOOD, "app", 0, 0, { 4096, 8192 }, { 4096, 4096 }, 2, 0, 0,
		  CKPT__V1__CODE__RESOURCE_EXHAUSTED },
		{ "good again", SEG_GOOD, "app", 0, 0, { 4096, 8192 }, { 100, 200 }, 2, 10, 5, 0 },
	};
	struct rpc_client *c;
	struct rpc_error err;
	unsigned accepted = 0;

	server_up();
	expect("app", getpid(), 5000, false);
	ck_assert_int_eq(rpc_client_open(url, &ckpt__v1__local__descriptor, RPC_CLIENT_DIAL_NOW,
	    0, &c, &err), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *bc = &cases[i];
		Ckpt__V1__LocalCheckpointRequest req = CKPT__V1__LOCAL_CHECKPOINT_REQUEST__INIT;
		Ckpt__V1__LocalRegion rg[2], *rgp[2];
		Ckpt__V1__LocalRange range = CKPT__V1__LOCAL_RANGE__INIT, *rangep = &range;
		ProtobufCMessage *reply = NULL;
		int fd = make_segment(bc->seg), rv;

		req.component = (char *)bc->component;
		req.fd = fd + bc->fd_delta;
		req.segment_size = bc->size != 0 ? bc->size : 3 * 4096;
		req.seq = i + 1;
		for (int k = 0; k < 2; k++) {
			if (bc->len[k] == 0)
				continue;
			ckpt__v1__local_region__init(&rg[k]);
			rg[k].id = k == 0 ? 1 : bc->id2;
			rg[k].offset = bc->off[k];
			rg[k].size = bc->len[k];
			rg[k].whole = true;
			rgp[req.n_regions++] = &rg[k];
		}
		if (bc->rg_len != 0) {
			range.offset = bc->rg_off;
			range.length = bc->rg_len;
			rg[0].whole = false;
			rg[0].changed = &rangep;
			rg[0].n_changed = 1;
		}
		req.regions = rgp;
		rv = rpc_client_call(c, LOCAL_CHECKPOINT, &req.base, 5000, &reply, &err);
		if (bc->code == 0) {
			ck_assert_msg(rv == 0, "%s: refused: %s", bc->what, err.re_msg);
			rpc_reply_free(reply);
			accepted++;
		} else {
			ck_assert_msg(rv != 0 && err.re_code == bc->code, "%s: code %d, want %d (%s)",
			    bc->what, rv == 0 ? 0 : err.re_code, bc->code, err.re_msg);
		}
		ck_assert_uint_eq(store.st_count, accepted);
		close(fd);
	}
	/* The last one, with its hint, in the stored form's offsets. */
	ck_assert_uint_eq(store.st_n_changed, 3);
	ck_assert_uint_eq(store.st_changed[1].lg_offset, local_state_header_size(2) + 10);
	ck_assert_uint_eq(store.st_changed[1].lg_length, 5);
	rpc_client_close(c);
	server_down();
}
END_TEST

/* ---- hints against the bytes ---- */

START_TEST(local_hinted_ranges_cover_every_changed_byte)
{
	enum { NREG = 3, ROUNDS = 40 };
	static const size_t sizes[NREG] = { 70000, 4096, 123457 };
	uint8_t *reg[NREG], *prev = NULL;
	size_t prev_len = 0;
	unsigned seed = 12345;

	server_up();
	expect("app", getpid(), 0, false);
	ck_assert_int_eq(ckpt_init("app", url), 0);
	for (int i = 0; i < NREG; i++) {
		reg[i] = calloc(1, sizes[i]);
		ck_assert_ptr_nonnull(reg[i]);
		ck_assert_int_eq(ckpt_protect((uint32_t)i + 1, reg[i], sizes[i]), 0);
	}
	for (int round = 0; round < ROUNDS; round++) {
		/* Random edits, each marked (region 3 never: it counts whole). */
		int edits = (int)(rand_r(&seed) % 20);
		for (int e = 0; e < edits; e++) {
			int r = (int)(rand_r(&seed) % NREG);
			size_t off = (size_t)rand_r(&seed) % sizes[r];
			size_t len = 1 + (size_t)rand_r(&seed) % 300;
			if (len > sizes[r] - off)
				len = sizes[r] - off;
			for (size_t k = 0; k < len; k++)
				reg[r][off + k] = (uint8_t)rand_r(&seed);
			if (r != 2)
				ck_assert_int_eq(ckpt_mark_changed((uint32_t)r + 1, off, len), 0);
		}
		ck_assert_int_eq(ckpt_checkpoint(), round + 1);
		ck_assert_int_eq(ckpt_wait(), 0);
		/* Every byte that differs from the previous stored form is in a changed range. */
		if (prev != NULL) {
			ck_assert_uint_eq(prev_len, store.st_len);
			for (size_t b = 0; b < store.st_len; b++) {
				bool in = false;
				if (prev[b] == store.st_state[b])
					continue;
				for (size_t g = 0; g < store.st_n_changed && !in; g++)
					in = b >= store.st_changed[g].lg_offset &&
					    b < store.st_changed[g].lg_offset + store.st_changed[g].lg_length;
				ck_assert_msg(in, "round %d: byte %zu changed outside the hints", round, b);
			}
		}
		free(prev);
		prev = malloc(store.st_len);
		ck_assert_ptr_nonnull(prev);
		memcpy(prev, store.st_state, store.st_len);
		prev_len = store.st_len;
	}
	ck_assert_int_eq(ckpt_finalize(), 0);
	free(prev);
	for (int i = 0; i < NREG; i++)
		free(reg[i]);
	server_down();
}
END_TEST

/* ---- the example, as a child process ---- */

static pid_t
spawn_counter(const char *out, const char *until)
{
	const char *exe = getenv("CKPT_COUNTER");
	char *argv[] = { (char *)exe, "--until", (char *)until, "--every", "50", "--sleep-ms",
		"2", "--buffer", "100000", NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;

	ck_assert_ptr_nonnull(exe);
	setenv("CKPT_COMPONENT", "counter", 1);
	setenv("CKPT_LOCAL_URL", url, 1);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_eq(posix_spawn(&pid, exe, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static uint64_t
stored_counter(void)
{
	struct local_region *rs;
	uint64_t c;
	size_t n;

	pthread_mutex_lock(&store.st_lock);
	ck_assert_int_eq(local_state_decode(store.st_state, store.st_len, &rs, &n), 0);
	memcpy(&c, stored_region(rs, n, 1)->lr_data, sizeof(c));
	free(rs);
	pthread_mutex_unlock(&store.st_lock);
	return c;
}

static bool
file_has(const char *path, const char *text)
{
	char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

START_TEST(local_counter_example_continues_from_its_checkpoint)
{
	struct timespec nap = { 0, 10 * 1000000 };
	char out[128], line[64], until[32];
	unsigned count;
	uint64_t c;
	pid_t pid;
	int status;

	server_up();
	snprintf(out, sizeof(out), "%s/counter.out", dir);
	/* The first run: killed (as its node would be) after three checkpoints. */
	expect("counter", 0, 0, false);
	pid = spawn_counter(out, "100000");
	for (;;) {
		pthread_mutex_lock(&store.st_lock);
		count = store.st_count;
		pthread_mutex_unlock(&store.st_lock);
		if (count >= 3)
			break;
		ck_assert_int_eq(waitpid(pid, &status, WNOHANG), 0);   /* still running */
		nanosleep(&nap, NULL);
	}
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(file_has(out, "start fresh"));
	c = stored_counter();
	ck_assert_uint_ge(c, 150);
	ck_assert_uint_eq(c % 50, 0);

	/* The second run, from the stored checkpoint, counts on to c + 200. */
	expect("counter", 0, 0, true);
	snprintf(until, sizeof(until), "%llu", (unsigned long long)(c + 200));
	pid = spawn_counter(out, until);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "counter exit status %d",
	    status);
	snprintf(line, sizeof(line), "restored counter=%llu\n", (unsigned long long)c);
	ck_assert_msg(file_has(out, line), "no \"%s\" in the output", line);
	snprintf(line, sizeof(line), "done counter=%llu\n", (unsigned long long)(c + 200));
	ck_assert(file_has(out, line));
	ck_assert_uint_eq(stored_counter(), c + 200);
	unlink(out);
	server_down();
}
END_TEST

START_TEST(local_bind_takes_the_pid_once)
{
	server_up();
	ck_assert_int_eq(local_bind(srv, "nobody", 1234), -ENOENT);
	expect("c1", 0, 0, false);
	ck_assert_int_eq(local_bind(srv, "c1", 0), -EINVAL);
	ck_assert_int_eq(local_bind(srv, "c1", 1234), 0);
	ck_assert_int_eq(local_bind(srv, "c1", 1234), 0);     /* the same pid again */
	ck_assert_int_eq(local_bind(srv, "c1", 4321), -EPERM); /* another one */
	/* A Hello came first: bound to its pid, which bind then confirms. */
	expect("c2", 0, 0, false);
	ck_assert_int_eq(ckpt_init("c2", url), 0);
	ck_assert_int_eq(local_bind(srv, "c2", getpid()), 0);
	ck_assert_int_eq(local_bind(srv, "c2", getpid() + 1), -EPERM);
	ck_assert_int_eq(ckpt_finalize(), 0);
	server_down();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("local");
	TCase *tc = tcase_create("local");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, local_checkpoint_then_restart_gives_the_regions_back);
	tcase_add_test(tc, local_misuse_is_refused_with_a_message);
	tcase_add_test(tc, local_restore_checks_every_region_before_writing);
	tcase_add_test(tc, local_hints_become_changed_ranges_of_the_stored_form);
	tcase_add_test(tc, local_checkpoint_waits_for_a_free_segment_then_fails_busy);
	tcase_add_test(tc, local_state_decode_refuses_what_is_not_the_format);
	tcase_add_test(tc, local_server_refuses_bad_checkpoints_and_goes_on);
	tcase_add_test(tc, local_agent_gone_gives_errors_not_hangs);
	tcase_add_test(tc, local_most_regions_with_most_hints_fit_one_request);
	tcase_add_test(tc, local_hinted_ranges_cover_every_changed_byte);
	tcase_add_test(tc, local_counter_example_continues_from_its_checkpoint);
	tcase_add_test(tc, local_bind_takes_the_pid_once);
	suite_add_tcase(s, tc);
	return test_run(s);
}

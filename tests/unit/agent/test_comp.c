/* The component table: states, checkpoint brackets, statuses. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comp.h"
#include "digest.h"
#include "drv_demo.h"
#include "util.h"
#include "../testrun.h"

static struct comp_table *t;

static void
setup(void)
{
	ck_assert_int_eq(comp_table_new(&t), 0);
}

static void
teardown(void)
{
	comp_table_free(t);
	t = NULL;
}

static char ckerr[256];

/* A fresh demo instance named name of bytes bytes. */
static struct drv_inst *
demo_inst(const char *name, uint64_t bytes)
{
	char b[24];
	struct drv_setting set = { "bytes", b };
	struct drv_spec spec = { name, &set, 1, NULL, NULL };
	struct drv_inst *in = NULL;

	snprintf(b, sizeof(b), "%llu", (unsigned long long)bytes);
	ck_assert_int_eq(drv_demo_ops.d_start(&spec, NULL, 0, &in, ckerr, sizeof(ckerr)), 0);
	return in;
}

static void
add(const char *name, uint64_t bytes)
{
	ck_assert_int_eq(comp_add(t, name, &drv_demo_ops, demo_inst(name, bytes), 0), 0);
}

START_TEST(comp_add_rejects_duplicate_names)
{
	struct drv_inst *d;

	add("c1", 16);
	d = demo_inst("c1", 16);
	ck_assert_int_eq(comp_add(t, "c1", &drv_demo_ops, d, 0), -EEXIST);
	drv_demo_ops.d_free(d);
	ck_assert_int_eq(comp_reserve(t, "c1"), -EEXIST);
	ck_assert(comp_is_running(t, "c1"));
}
END_TEST

START_TEST(comp_table_refuses_components_over_its_max)
{
	struct drv_inst *d;

	comp_table_set_max(t, 1);
	ck_assert_uint_eq(comp_table_max(t), 1);
	add("c1", 16);
	d = demo_inst("c2", 16);
	ck_assert_int_eq(comp_add(t, "c2", &drv_demo_ops, d, 0), -EUSERS);
	drv_demo_ops.d_free(d);
	ck_assert_int_eq(comp_reserve(t, "c2"), -EUSERS);
	comp_table_set_max(t, 0); /* back to COMP_MAX */
	ck_assert_int_eq(comp_reserve(t, "c2"), 0);
}
END_TEST

START_TEST(comp_fresh_component_has_unknown_seq)
{
	struct comp_snap s;

	add("c1", 100);
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", false, &s, ckerr, sizeof(ckerr)), 0);
	ck_assert(!s.cp_seq.cs_known);
	ck_assert_uint_eq(s.cp_len, 8 + 8 + 4 + 2 + 8 + 100);
	s.cp_seq.cs_next = 8;
	s.cp_seq.cs_known = true;
	comp_ckpt_end(t, "c1", &s.cp_seq, 7);
	free(s.cp_buf);
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", false, &s, ckerr, sizeof(ckerr)), 0);
	ck_assert(s.cp_seq.cs_known);
	ck_assert_uint_eq(s.cp_seq.cs_next, 8);
	comp_ckpt_end(t, "c1", &s.cp_seq, 0);
	free(s.cp_buf);
}
END_TEST

START_TEST(comp_reserved_name_is_not_checkpointed_nor_ticked)
{
	struct comp_snap s;
	comp_name *names;
	size_t n;

	ck_assert_int_eq(comp_reserve(t, "r1"), 0);
	ck_assert_int_eq(comp_reserve(t, "r1"), -EEXIST);
	ck_assert(!comp_is_running(t, "r1"));
	ck_assert_int_eq(comp_ckpt_begin(t, "r1", true, &s, ckerr, sizeof(ckerr)), -ENOENT);
	comp_tick_all(t);
	ck_assert_int_eq(comp_running_names(t, &names, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(names);
	ck_assert_int_eq(comp_remove(t, "r1", 0), 0);
	ck_assert_int_eq(comp_remove(t, "r1", 0), -ENOENT);
}
END_TEST

/* A copy of what a snapshot holds (lent bytes are the driver's until comp_ckpt_end()). */
static uint8_t *
dup_state(const struct comp_snap *s)
{
	uint8_t *p = malloc(s->cp_len != 0 ? s->cp_len : 1);
	ck_assert_ptr_nonnull(p);
	memcpy(p, s->cp_data, s->cp_len);
	return p;
}

START_TEST(comp_stopped_component_takes_only_a_final_checkpoint)
{
	struct comp_snap s1, s2;
	uint8_t *first;

	add("c1", 64);
	ck_assert_int_eq(comp_stop(t, "c1"), 0);
	ck_assert_int_eq(comp_stop(t, "c1"), -ENOENT);
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", false, &s1, ckerr, sizeof(ckerr)), -ENOENT);
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", true, &s1, ckerr, sizeof(ckerr)), 0);
	first = dup_state(&s1);
	comp_ckpt_end(t, "c1", &s1.cp_seq, 0);
	comp_snap_clear(&s1);
	/* Not ticked while stopped: the same state twice. */
	comp_tick_all(t);
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", true, &s2, ckerr, sizeof(ckerr)), 0);
	ck_assert_uint_eq(s1.cp_len, s2.cp_len);
	ck_assert_mem_eq(first, s2.cp_data, s1.cp_len);
	comp_ckpt_end(t, "c1", &s2.cp_seq, 0);
	comp_snap_clear(&s2);
	free(first);
	ck_assert_int_eq(comp_resume(t, "c1"), 0);
	ck_assert(comp_is_running(t, "c1"));
}
END_TEST

START_TEST(comp_restored_component_reports_its_origin)
{
	struct comp_ref from = { .cr_node = "n1", .cr_component = "c9", .cr_seq = 41 };
	uint8_t sha[SHA_LEN];
	Ckpt__V1__ComponentStatus **list, *one;
	struct arena *arena;
	struct comp_snap s;
	struct drv_inst *d;
	size_t n;

	memset(from.cr_sha256, 0xab, SHA_LEN);
	memset(sha, 0xcd, SHA_LEN);
	ck_assert_int_eq(arena_new(&arena), 0);
	d = demo_inst("c9", 10);
	ck_assert_int_eq(comp_restored(t, "c9", &drv_demo_ops, d, 3, &from, sha), -ENOENT);
	ck_assert_int_eq(comp_reserve(t, "c9"), 0);
	add("c1", 10);
	ck_assert_int_eq(comp_status_all(t, arena, true, &list, &n), 0);
	ck_assert_uint_eq(n, 1); /* the reservation is left out */
	ck_assert_str_eq(list[0]->name, "c1");
	ck_assert_ptr_null(list[0]->restored_from);
	ck_assert_int_eq(comp_status_all(t, arena, false, &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(comp_restored(t, "c9", &drv_demo_ops, d, 3, &from, sha), 0);
	ck_assert_int_eq(comp_status_one(t, arena, "c9", &one), 0);
	ck_assert_str_eq(one->state, "running");
	ck_assert_str_eq(one->kind, "demo");
	ck_assert_uint_eq(one->epoch, 3);
	ck_assert_uint_eq(one->last_seq, 41);
	ck_assert_uint_eq(one->state_bytes, 8 + 8 + 4 + 2 + 8 + 10);
	ck_assert_ptr_nonnull(one->restored_from);
	ck_assert_str_eq(one->restored_from->node, "n1");
	ck_assert_uint_eq(one->restored_from->seq, 41);
	ck_assert_mem_eq(one->restored_from->sha256.data, from.cr_sha256, SHA_LEN);
	ck_assert_uint_eq(one->state_sha256.len, SHA_LEN);
	ck_assert_mem_eq(one->state_sha256.data, sha, SHA_LEN);
	ck_assert_int_eq(comp_ckpt_begin(t, "c9", false, &s, ckerr, sizeof(ckerr)), 0);
	ck_assert(s.cp_seq.cs_known);
	ck_assert_uint_eq(s.cp_seq.cs_next, 42);
	ck_assert_uint_eq(s.cp_seq.cs_epoch, 3);
	comp_ckpt_end(t, "c9", &s.cp_seq, 0);
	free(s.cp_buf);
	arena_free(arena);
}
END_TEST

static atomic_int second_began;

static void *
second_begin(void *arg)
{
	struct comp_snap s;
	(void)arg;
	if (comp_ckpt_begin(t, "c1", false, &s, ckerr, sizeof(ckerr)) == 0) {
		atomic_store(&second_began, 1);
		comp_ckpt_end(t, "c1", &s.cp_seq, 0);
		free(s.cp_buf);
	}
	return NULL;
}

START_TEST(comp_checkpoints_of_one_component_do_not_overlap)
{
	struct comp_snap s;
	pthread_t th;

	add("c1", 10);
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", false, &s, ckerr, sizeof(ckerr)), 0);
	pthread_create(&th, NULL, second_begin, NULL);
	util_sleep_ms(100);
	ck_assert_int_eq(atomic_load(&second_began), 0);
	comp_ckpt_end(t, "c1", &s.cp_seq, 1);
	free(s.cp_buf);
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&second_began), 1);
}
END_TEST

START_TEST(comp_remove_wakes_a_waiting_checkpoint)
{
	struct comp_snap s;
	pthread_t th;

	add("c1", 10);
	ck_assert_int_eq(comp_stop(t, "c1"), 0);
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", true, &s, ckerr, sizeof(ckerr)), 0);
	pthread_create(&th, NULL, second_begin, NULL);
	util_sleep_ms(50);
	comp_ckpt_end(t, "c1", &s.cp_seq, 1);
	free(s.cp_buf);
	ck_assert_int_eq(comp_remove(t, "c1", 0), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&second_began), 0); /* stopped, then gone */
}
END_TEST

START_TEST(comp_revoke_never_waits_and_removes_after_the_checkpoint)
{
	struct comp_snap snap;
	comp_name *names = NULL;
	size_t n = 9;

	add("c1", 16);
	add("c2", 16);
	ck_assert_int_eq(comp_revoke(t, "c2"), 0); /* idle: gone at once */
	ck_assert(!comp_is_running(t, "c2"));
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", false, &snap, ckerr, sizeof(ckerr)), 0);
	ck_assert_int_eq(comp_revoke(t, "c1"), 0); /* busy: stops now... */
	ck_assert(!comp_is_running(t, "c1"));
	ck_assert_int_eq(comp_running_names(t, &names, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(names);
	comp_ckpt_end(t, "c1", &snap.cp_seq, 0); /* ...and leaves when it ends */
	free(snap.cp_buf);
	ck_assert_int_eq(comp_remove(t, "c1", 0), -ENOENT);
	ck_assert_int_eq(comp_revoke(t, "c1"), -ENOENT);
}
END_TEST

START_TEST(drv_table_lists_every_driver_once_with_its_ops)
{
	ck_assert_ptr_eq(drv_find("demo"), &drv_demo_ops);
	ck_assert_ptr_null(drv_find("nosuchkind"));
	ck_assert_ptr_null(drv_find(""));
	ck_assert_ptr_null(drv_find(NULL));
	ck_assert_uint_ge(drv_count(), 1);
	ck_assert_ptr_null(drv_at(drv_count()));
	for (size_t i = 0; i < drv_count(); i++) {
		const struct drv_ops *o = drv_at(i);
		ck_assert_uint_le(strlen(o->d_kind), LIMIT_KIND_MAX);
		ck_assert_ptr_eq(drv_find(o->d_kind), o); /* one driver per kind */
		ck_assert_uint_gt(o->d_state_max, 0);
		ck_assert(o->d_check != NULL && o->d_start != NULL && o->d_checkpoint != NULL &&
		    o->d_stop != NULL && o->d_status != NULL && o->d_free != NULL);
	}
}
END_TEST

START_TEST(drv_demo_checks_its_settings)
{
	struct drv_setting big = { "bytes", "1073741825" }, odd = { "colour", "red" },
			   nan = { "bytes", "12k" }, ok = { "bytes", "0" };
	struct drv_spec spec = { "c1", &big, 1, NULL, NULL };

	ck_assert_int_eq(drv_demo_ops.d_check(&spec, ckerr, sizeof(ckerr)), -EINVAL);
	ck_assert_msg(strstr(ckerr, "more than") != NULL, "%s", ckerr);
	spec.sp_settings = &odd;
	ck_assert_int_eq(drv_demo_ops.d_check(&spec, ckerr, sizeof(ckerr)), -EINVAL);
	ck_assert_msg(strstr(ckerr, "unknown setting 'colour'") != NULL, "%s", ckerr);
	spec.sp_settings = &nan;
	ck_assert_int_eq(drv_demo_ops.d_check(&spec, ckerr, sizeof(ckerr)), -EINVAL);
	spec.sp_settings = &ok;
	ck_assert_int_eq(drv_demo_ops.d_check(&spec, ckerr, sizeof(ckerr)), 0);
	spec.sp_nsettings = 0; /* the default size */
	ck_assert_int_eq(drv_demo_ops.d_check(&spec, ckerr, sizeof(ckerr)), 0);
	spec.sp_name = "bad/name";
	ck_assert_int_eq(drv_demo_ops.d_check(&spec, ckerr, sizeof(ckerr)), -EINVAL);
}
END_TEST

START_TEST(drv_demo_restore_keeps_ownership_of_a_refused_state)
{
	struct drv_spec other = { "c2", NULL, 0, NULL, NULL }, same = { "c1", NULL, 0, NULL, NULL };
	struct drv_inst *in = demo_inst("c1", 100), *back = NULL;
	struct drv_ckpt ck;
	uint8_t d1[SHA_LEN], d2[SHA_LEN];

	ck_assert_int_eq(drv_demo_ops.d_checkpoint(in, false, &ck, ckerr, sizeof(ckerr)), 0);
	/* Lent where it lies (one region), not copied. */
	ck_assert_ptr_null(ck.ck_buf);
	ck_assert_uint_eq(ck.ck_nregions, 1);
	ck.ck_len = ck.ck_regions[0].rg_len;
	ck.ck_buf = malloc(ck.ck_len);
	ck_assert_ptr_nonnull(ck.ck_buf);
	memcpy(ck.ck_buf, ck.ck_regions[0].rg_base, ck.ck_len);
	ck_assert(!ck.ck_hinted);
	struct chunk_params cp;
	uint8_t d0[SHA_LEN];
	ck_assert_int_eq(chunk_params_init(64, 128, 256, &cp), 0);
	ck_assert_int_eq(drv_demo_ops.d_digest(in, &cp, d1), 0);
	/* The driver's digest is the one of the bytes it checkpoints. */
	ck_assert_int_eq(digest_buf(&cp, ck.ck_buf, ck.ck_len, d0), 0);
	ck_assert_mem_eq(d0, d1, SHA_LEN);
	/* Another component's state: refused, the buffer still the caller's (ASan checks). */
	ck_assert_int_eq(drv_demo_ops.d_start(&other, ck.ck_buf, ck.ck_len, &back, ckerr,
	    sizeof(ckerr)), -EBADMSG);
	ck_assert_msg(strstr(ckerr, "another component") != NULL, "%s", ckerr);
	ck_assert_int_eq(drv_demo_ops.d_start(&same, ck.ck_buf, 5, &back, ckerr, sizeof(ckerr)),
	    -EBADMSG);
	/* Its own: taken over, the same digest. */
	ck_assert_int_eq(drv_demo_ops.d_start(&same, ck.ck_buf, ck.ck_len, &back, ckerr,
	    sizeof(ckerr)), 0);
	ck_assert_int_eq(drv_demo_ops.d_digest(back, &cp, d2), 0);
	ck_assert_mem_eq(d1, d2, SHA_LEN);
	drv_demo_ops.d_free(back);
	drv_demo_ops.d_free(in);
}
END_TEST

/*
 * A driver of kind "fake" that gives its state as two regions with hints,
 * and whose checkpoint can be held up (to see what waits for it).
 */
struct drv_inst {
	char fi_a[4], fi_b[3];
	struct drv_region fi_regions[2];
	pthread_mutex_t fi_mu;
	pthread_cond_t fi_cv;
	bool fi_hold, fi_in_ckpt;
	int fi_done, fi_ticks, fi_stops;
};

static struct drv_inst fake;

static int
fake_check(const struct drv_spec *spec, char *err, size_t errlen)
{
	(void)spec, (void)err, (void)errlen;
	return 0;
}

static int
fake_start(const struct drv_spec *spec, void *state, size_t len, struct drv_inst **ret_inst,
    char *err, size_t errlen)
{
	(void)spec, (void)state, (void)len, (void)err, (void)errlen;
	*ret_inst = &fake;
	return 0;
}

static int
fake_checkpoint(struct drv_inst *in, bool final, struct drv_ckpt *ret, char *err, size_t errlen)
{
	struct drv_ckpt ck = { 0 };

	(void)final, (void)err, (void)errlen;
	pthread_mutex_lock(&in->fi_mu);
	in->fi_in_ckpt = true;
	pthread_cond_broadcast(&in->fi_cv);
	while (in->fi_hold)
		pthread_cond_wait(&in->fi_cv, &in->fi_mu);
	pthread_mutex_unlock(&in->fi_mu);
	ck.ck_regions = in->fi_regions;
	ck.ck_nregions = 2;
	ck.ck_changed = calloc(1, sizeof(*ck.ck_changed));
	ck.ck_changed[0].rn_off = 4;
	ck.ck_changed[0].rn_len = 2;
	ck.ck_nchanged = 1;
	ck.ck_hinted = true;
	*ret = ck;
	return 0;
}

static void
fake_ckpt_done(struct drv_inst *in)
{
	in->fi_done++;
}

static int
fake_stop(struct drv_inst *in, unsigned grace_ms)
{
	(void)grace_ms;
	in->fi_stops++;
	return 0;
}

static void
fake_status(struct drv_inst *in, struct drv_status *ret)
{
	(void)in;
	memset(ret, 0, sizeof(*ret));
	ret->ds_run = DRV_RUN_RUNNING;
	ret->ds_state_bytes = 7;
}

static void
fake_tick(struct drv_inst *in)
{
	in->fi_ticks++;
}

static void
fake_free(struct drv_inst *in)
{
	(void)in;
}

static const struct drv_ops fake_ops = {
	.d_kind = "fake",
	.d_state_max = 100,
	.d_check = fake_check,
	.d_start = fake_start,
	.d_checkpoint = fake_checkpoint,
	.d_ckpt_done = fake_ckpt_done,
	.d_stop = fake_stop,
	.d_status = fake_status,
	.d_tick = fake_tick,
	.d_free = fake_free,
};

static void
fake_reset(void)
{
	memset(&fake, 0, sizeof(fake));
	memcpy(fake.fi_a, "abcd", 4);
	memcpy(fake.fi_b, "efg", 3);
	fake.fi_regions[0] = (struct drv_region){ fake.fi_a, 4 };
	fake.fi_regions[1] = (struct drv_region){ fake.fi_b, 3 };
	pthread_mutex_init(&fake.fi_mu, NULL);
	pthread_cond_init(&fake.fi_cv, NULL);
}

START_TEST(comp_takes_regions_and_hints_and_reports_the_drivers_kind)
{
	struct comp_snap s;
	struct arena *arena;
	Ckpt__V1__ComponentStatus *one;
	struct drv_inst *in;

	fake_reset();
	ck_assert_int_eq(arena_new(&arena), 0);
	ck_assert_int_eq(fake_ops.d_start(NULL, NULL, 0, &in, ckerr, sizeof(ckerr)), 0);
	ck_assert_int_eq(comp_add(t, "f1", &fake_ops, in, 0), 0);
	ck_assert_int_eq(comp_status_one(t, arena, "f1", &one), 0);
	ck_assert_str_eq(one->kind, "fake");
	ck_assert_uint_eq(one->state_bytes, 7);
	ck_assert_int_eq(comp_ckpt_begin(t, "f1", false, &s, ckerr, sizeof(ckerr)), 0);
	ck_assert_str_eq(s.cp_kind, "fake");
	ck_assert_uint_eq(s.cp_len, 7);
	ck_assert_mem_eq(s.cp_data, "abcdefg", 7);
	/* Hints need a base: the first copy has none, the one after a store has. */
	ck_assert(!s.cp_hinted);
	ck_assert_int_eq(fake.fi_done, 1); /* regions released once copied */
	comp_ckpt_stored(t, "f1", (const uint8_t *)"0123456789abcdef0123456789abcdef");
	comp_ckpt_end(t, "f1", &s.cp_seq, 1);
	comp_snap_clear(&s);
	ck_assert_int_eq(comp_ckpt_begin(t, "f1", false, &s, ckerr, sizeof(ckerr)), 0);
	ck_assert(s.cp_hinted);
	ck_assert_uint_eq(s.cp_nchanged, 1);
	ck_assert_uint_eq(s.cp_changed[0].rn_off, 4);
	ck_assert_mem_eq(s.cp_base_sha256, "0123456789abcdef0123456789abcdef", SHA_LEN);
	comp_ckpt_end(t, "f1", &s.cp_seq, 2);
	comp_snap_clear(&s);
	ck_assert_int_eq(comp_remove(t, "f1", 0), 0);
	ck_assert_int_eq(fake.fi_stops, 1);
	arena_free(arena);
}
END_TEST

/* Every byte of now outside the hints of s equals base's (same length). */
static void
expect_covered(const struct comp_snap *s, const uint8_t *base, size_t len, uint64_t *ret_covered)
{
	uint8_t *mark = calloc(len, 1);
	uint64_t covered = 0;

	ck_assert_ptr_nonnull(mark);
	ck_assert_uint_eq(s->cp_len, len);
	for (size_t i = 0; i < s->cp_nchanged; i++)
		for (uint64_t o = s->cp_changed[i].rn_off;
		     o < s->cp_changed[i].rn_off + s->cp_changed[i].rn_len && o < len; o++)
			mark[o] = 1;
	size_t bad = len;
	for (size_t o = 0; o < len; o++) {
		covered += mark[o];
		if (!mark[o] && ((const uint8_t *)s->cp_data)[o] != base[o] && bad == len)
			bad = o;
	}
	free(mark);
	ck_assert_msg(bad == len, "byte %zu changed outside the hints", bad);
	*ret_covered = covered;
}

START_TEST(comp_demo_hints_cover_every_change_since_the_last_stored_checkpoint)
{
	struct comp_snap s;
	uint8_t *base, sha[SHA_LEN];
	size_t len;
	uint64_t covered;

	add("d1", 4u << 20);
	ck_assert_int_eq(comp_ckpt_begin(t, "d1", false, &s, ckerr, sizeof(ckerr)), 0);
	ck_assert(!s.cp_hinted); /* nothing stored yet */
	len = s.cp_len;
	base = dup_state(&s);
	sha256(base, len, sha);
	comp_ckpt_stored(t, "d1", sha);
	comp_ckpt_end(t, "d1", &s.cp_seq, 1);
	comp_snap_clear(&s);
	for (unsigned round = 0; round < 12; round++) {
		/* Rounds 2, 5, 8...: the store fails, the next hints still cover its changes. */
		bool stored = round % 3 != 2;

		for (unsigned k = 0; k <= round % 4; k++)
			comp_tick_all(t);
		ck_assert_int_eq(comp_ckpt_begin(t, "d1", false, &s, ckerr, sizeof(ckerr)), 0);
		ck_assert_msg(s.cp_hinted, "round %u: no hints", round);
		ck_assert_mem_eq(s.cp_base_sha256, sha, SHA_LEN);
		expect_covered(&s, base, len, &covered);
		ck_assert_uint_lt(covered, len / 4); /* a few pages, not the state */
		if (stored) {
			free(base);
			base = dup_state(&s);
			sha256(base, len, sha);
			comp_ckpt_stored(t, "d1", sha);
		}
		comp_ckpt_end(t, "d1", &s.cp_seq, stored ? round + 2 : 0);
		comp_snap_clear(&s);
	}
	free(base);
}
END_TEST

/*
 * A demo's state is lent, not copied (a 256 MiB state is not in memory
 * twice): the snapshot is the demo's own bytes, which stand still until the
 * checkpoint ends (ticks are skipped meanwhile), and tick again after.
 */
START_TEST(comp_demo_state_is_lent_in_place_and_stands_still)
{
	struct comp_snap s, s2;
	uint8_t *before;

	add("d1", 1u << 20);
	ck_assert_int_eq(comp_ckpt_begin(t, "d1", false, &s, ckerr, sizeof(ckerr)), 0);
	ck_assert_ptr_null(s.cp_buf);
	ck_assert_ptr_nonnull(s.cp_data);
	ck_assert_uint_eq(s.cp_len, 8 + 8 + 4 + 2 + 8 + (1u << 20));
	before = dup_state(&s);
	for (int k = 0; k < 5; k++)
		comp_tick_all(t);
	ck_assert_mem_eq(s.cp_data, before, s.cp_len);
	comp_ckpt_end(t, "d1", &s.cp_seq, 1);
	comp_snap_clear(&s);
	comp_tick_all(t);
	ck_assert_int_eq(comp_ckpt_begin(t, "d1", false, &s2, ckerr, sizeof(ckerr)), 0);
	/* The same block, moved on by the tick (the counter at least). */
	ck_assert_uint_eq(s2.cp_len, 8 + 8 + 4 + 2 + 8 + (1u << 20));
	ck_assert(memcmp(s2.cp_data, before, s2.cp_len) != 0);
	comp_ckpt_end(t, "d1", &s2.cp_seq, 2);
	comp_snap_clear(&s2);
	free(before);
	ck_assert_int_eq(comp_remove(t, "d1", 0), 0);
}
END_TEST

static void *
fake_ckpt_thread(void *arg)
{
	struct comp_snap s;
	char e[128];

	(void)arg;
	if (comp_ckpt_begin(t, "f1", false, &s, e, sizeof(e)) == 0) {
		comp_ckpt_end(t, "f1", &s.cp_seq, 2);
		comp_snap_clear(&s);
	}
	return NULL;
}

START_TEST(comp_status_and_ticks_never_wait_for_a_state_copy)
{
	Ckpt__V1__ComponentStatus **list;
	struct arena *arena;
	struct drv_inst *in;
	comp_name *names;
	pthread_t th;
	size_t n;

	fake_reset();
	fake.fi_hold = true;
	ck_assert_int_eq(arena_new(&arena), 0);
	ck_assert_int_eq(fake_ops.d_start(NULL, NULL, 0, &in, ckerr, sizeof(ckerr)), 0);
	ck_assert_int_eq(comp_add(t, "f1", &fake_ops, in, 0), 0);
	add("c1", 16);
	pthread_create(&th, NULL, fake_ckpt_thread, NULL);
	pthread_mutex_lock(&fake.fi_mu);
	while (!fake.fi_in_ckpt)
		pthread_cond_wait(&fake.fi_cv, &fake.fi_mu);
	pthread_mutex_unlock(&fake.fi_mu);
	/* The copy is held up: statuses, names, other components go on (a wait would hang). */
	ck_assert_int_eq(comp_status_all(t, arena, true, &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(comp_running_names(t, &names, &n), 0);
	ck_assert_uint_eq(n, 2);
	free(names);
	comp_tick_all(t);
	ck_assert_int_eq(fake.fi_ticks, 0); /* skipped while its state is copied */
	ck_assert(comp_is_running(t, "c1"));
	pthread_mutex_lock(&fake.fi_mu);
	fake.fi_hold = false;
	pthread_cond_broadcast(&fake.fi_cv);
	pthread_mutex_unlock(&fake.fi_mu);
	pthread_join(th, NULL);
	comp_tick_all(t);
	ck_assert_int_eq(fake.fi_ticks, 1);
	ck_assert_int_eq(comp_status_all(t, arena, true, &list, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i]->name, "f1") == 0)
			ck_assert_uint_eq(list[i]->last_seq, 2);
	arena_free(arena);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("comp");
	TCase *tc = tcase_create("comp");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, comp_add_rejects_duplicate_names);
	tcase_add_test(tc, comp_table_refuses_components_over_its_max);
	tcase_add_test(tc, comp_fresh_component_has_unknown_seq);
	tcase_add_test(tc, comp_reserved_name_is_not_checkpointed_nor_ticked);
	tcase_add_test(tc, comp_stopped_component_takes_only_a_final_checkpoint);
	tcase_add_test(tc, comp_restored_component_reports_its_origin);
	tcase_add_test(tc, comp_checkpoints_of_one_component_do_not_overlap);
	tcase_add_test(tc, comp_remove_wakes_a_waiting_checkpoint);
	tcase_add_test(tc, comp_revoke_never_waits_and_removes_after_the_checkpoint);
	tcase_add_test(tc, drv_table_lists_every_driver_once_with_its_ops);
	tcase_add_test(tc, drv_demo_checks_its_settings);
	tcase_add_test(tc, drv_demo_restore_keeps_ownership_of_a_refused_state);
	tcase_add_test(tc, comp_takes_regions_and_hints_and_reports_the_drivers_kind);
	tcase_add_test(tc, comp_status_and_ticks_never_wait_for_a_state_copy);
	tcase_add_test(tc, comp_demo_hints_cover_every_change_since_the_last_stored_checkpoint);
	tcase_add_test(tc, comp_demo_state_is_lent_in_place_and_stands_still);
	suite_add_tcase(s, tc);
	return test_run(s);
}

/* The component table: states, checkpoint brackets, statuses. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "comp.h"
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

static void
add(const char *name, uint64_t bytes)
{
	struct demo *d;
	ck_assert_int_eq(demo_new(name, bytes, &d), 0);
	ck_assert_int_eq(comp_add(t, d, 0), 0);
}

START_TEST(comp_add_rejects_duplicate_names)
{
	struct demo *d;

	add("c1", 16);
	ck_assert_int_eq(demo_new("c1", 16, &d), 0);
	ck_assert_int_eq(comp_add(t, d, 0), -EEXIST);
	demo_free(d);
	ck_assert_int_eq(comp_reserve(t, "c1"), -EEXIST);
	ck_assert(comp_is_running(t, "c1"));
}
END_TEST

START_TEST(comp_fresh_component_has_unknown_seq)
{
	struct comp_snap s;

	add("c1", 100);
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", false, &s), 0);
	ck_assert(!s.cp_seq.cs_known);
	ck_assert_uint_eq(s.cp_len, 8 + 8 + 4 + 2 + 8 + 100);
	s.cp_seq.cs_next = 8;
	s.cp_seq.cs_known = true;
	comp_ckpt_end(t, "c1", &s.cp_seq, 7);
	free(s.cp_buf);
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", false, &s), 0);
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
	ck_assert_int_eq(comp_ckpt_begin(t, "r1", true, &s), -ENOENT);
	comp_tick_all(t);
	ck_assert_int_eq(comp_running_names(t, &names, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(names);
	ck_assert_int_eq(comp_remove(t, "r1"), 0);
	ck_assert_int_eq(comp_remove(t, "r1"), -ENOENT);
}
END_TEST

START_TEST(comp_stopped_component_takes_only_a_final_checkpoint)
{
	struct comp_snap s1, s2;

	add("c1", 64);
	ck_assert_int_eq(comp_stop(t, "c1"), 0);
	ck_assert_int_eq(comp_stop(t, "c1"), -ENOENT);
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", false, &s1), -ENOENT);
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", true, &s1), 0);
	comp_ckpt_end(t, "c1", &s1.cp_seq, 0);
	/* Not ticked while stopped: the same state twice. */
	comp_tick_all(t);
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", true, &s2), 0);
	comp_ckpt_end(t, "c1", &s2.cp_seq, 0);
	ck_assert_uint_eq(s1.cp_len, s2.cp_len);
	ck_assert_mem_eq(s1.cp_buf, s2.cp_buf, s1.cp_len);
	free(s1.cp_buf);
	free(s2.cp_buf);
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
	struct demo *d;
	size_t n;

	memset(from.cr_sha256, 0xab, SHA_LEN);
	memset(sha, 0xcd, SHA_LEN);
	ck_assert_int_eq(arena_new(&arena), 0);
	ck_assert_int_eq(demo_new("c9", 10, &d), 0);
	ck_assert_int_eq(comp_restored(t, d, 3, &from, sha), -ENOENT); /* not reserved */
	ck_assert_int_eq(comp_reserve(t, "c9"), 0);
	add("c1", 10);
	ck_assert_int_eq(comp_status_all(t, arena, true, &list, &n), 0);
	ck_assert_uint_eq(n, 1); /* the reservation is left out */
	ck_assert_str_eq(list[0]->name, "c1");
	ck_assert_ptr_null(list[0]->restored_from);
	ck_assert_int_eq(comp_status_all(t, arena, false, &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(comp_restored(t, d, 3, &from, sha), 0);
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
	ck_assert_int_eq(comp_ckpt_begin(t, "c9", false, &s), 0);
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
	if (comp_ckpt_begin(t, "c1", false, &s) == 0) {
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
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", false, &s), 0);
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
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", true, &s), 0);
	pthread_create(&th, NULL, second_begin, NULL);
	util_sleep_ms(50);
	comp_ckpt_end(t, "c1", &s.cp_seq, 1);
	free(s.cp_buf);
	ck_assert_int_eq(comp_remove(t, "c1"), 0);
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
	ck_assert_int_eq(comp_ckpt_begin(t, "c1", false, &snap), 0);
	ck_assert_int_eq(comp_revoke(t, "c1"), 0); /* busy: stops now... */
	ck_assert(!comp_is_running(t, "c1"));
	ck_assert_int_eq(comp_running_names(t, &names, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(names);
	comp_ckpt_end(t, "c1", &snap.cp_seq, 0); /* ...and leaves when it ends */
	free(snap.cp_buf);
	ck_assert_int_eq(comp_remove(t, "c1"), -ENOENT);
	ck_assert_int_eq(comp_revoke(t, "c1"), -ENOENT);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("comp");
	TCase *tc = tcase_create("comp");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, comp_add_rejects_duplicate_names);
	tcase_add_test(tc, comp_fresh_component_has_unknown_seq);
	tcase_add_test(tc, comp_reserved_name_is_not_checkpointed_nor_ticked);
	tcase_add_test(tc, comp_stopped_component_takes_only_a_final_checkpoint);
	tcase_add_test(tc, comp_restored_component_reports_its_origin);
	tcase_add_test(tc, comp_checkpoints_of_one_component_do_not_overlap);
	tcase_add_test(tc, comp_remove_wakes_a_waiting_checkpoint);
	tcase_add_test(tc, comp_revoke_never_waits_and_removes_after_the_checkpoint);
	suite_add_tcase(s, tc);
	return test_run(s);
}

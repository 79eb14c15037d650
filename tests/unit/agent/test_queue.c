/* The checkpoint queue: order, the byte bound, drop-oldest and its count. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"
#include "../testrun.h"

static struct queue_item
item(const char *comp, uint64_t seq, size_t len)
{
	struct queue_item it;

	memset(&it, 0, sizeof(it));
	snprintf(it.qi_component, sizeof(it.qi_component), "%s", comp);
	it.qi_seq = seq;
	it.qi_epoch = 3;
	it.qi_len = len;
	it.qi_buf = malloc(len > 0 ? len : 1);
	ck_assert_ptr_nonnull(it.qi_buf);
	memset(it.qi_buf, (int)seq, len);
	return it;
}

static void
push(struct queue *q, const char *comp, uint64_t seq, size_t len, size_t want_dropped)
{
	struct queue_item it = item(comp, seq, len);
	struct queue_drop drops[4];
	size_t nd = 99;

	ck_assert_int_eq(queue_push(q, &it, drops, 4, &nd), 0);
	ck_assert_uint_eq(nd, want_dropped);
}

static uint64_t
take_seq(struct queue *q)
{
	struct queue_item it;
	uint64_t seq;

	ck_assert(queue_take(q, &it));
	seq = it.qi_seq;
	ck_assert_uint_eq(((unsigned char *)it.qi_buf)[0], (unsigned char)seq);
	free(it.qi_buf);
	return seq;
}

START_TEST(queue_gives_checkpoints_back_oldest_first)
{
	struct queue *q;
	struct queue_stats st;

	ck_assert_int_eq(queue_new(1000, &q), 0);
	ck_assert(queue_empty(q));
	push(q, "a", 1, 100, 0);
	push(q, "b", 7, 100, 0);
	push(q, "a", 2, 100, 0);
	queue_get_stats(q, &st);
	ck_assert_uint_eq(st.qs_items, 3);
	ck_assert_uint_eq(st.qs_bytes, 300);
	ck_assert_uint_eq(take_seq(q), 1);
	ck_assert_uint_eq(take_seq(q), 7);
	ck_assert_uint_eq(take_seq(q), 2);
	ck_assert(queue_empty(q));
	queue_free(q);
}
END_TEST

START_TEST(queue_full_drops_the_oldest_first_and_counts)
{
	struct queue *q;
	struct queue_item it;
	struct queue_drop drops[4];
	struct queue_stats st;
	size_t nd;

	ck_assert_int_eq(queue_new(300, &q), 0);
	push(q, "a", 1, 100, 0);
	push(q, "a", 2, 100, 0);
	push(q, "a", 3, 100, 0);
	/* 250 more bytes: the two oldest go. */
	it = item("b", 4, 250);
	ck_assert_int_eq(queue_push(q, &it, drops, 4, &nd), 0);
	ck_assert_uint_eq(nd, 3);
	ck_assert_str_eq(drops[0].qd_component, "a");
	ck_assert_uint_eq(drops[0].qd_seq, 1);
	ck_assert_uint_eq(drops[1].qd_seq, 2);
	ck_assert_uint_eq(drops[2].qd_seq, 3);
	queue_get_stats(q, &st);
	ck_assert_uint_eq(st.qs_dropped, 3);
	ck_assert_uint_eq(st.qs_items, 1);
	ck_assert_uint_eq(st.qs_bytes, 250);
	ck_assert_uint_le(st.qs_bytes, st.qs_max_bytes);
	ck_assert_uint_eq(take_seq(q), 4);
	queue_free(q);
}
END_TEST

START_TEST(queue_drops_an_item_larger_than_the_bound)
{
	struct queue *q;
	struct queue_item it;
	struct queue_drop drops[1];
	struct queue_stats st;
	size_t nd;

	ck_assert_int_eq(queue_new(100, &q), 0);
	push(q, "a", 1, 50, 0);
	it = item("big", 2, 101);
	ck_assert_int_eq(queue_push(q, &it, drops, 1, &nd), -EFBIG);
	ck_assert_uint_eq(nd, 1);
	ck_assert_str_eq(drops[0].qd_component, "big");
	queue_get_stats(q, &st);
	ck_assert_uint_eq(st.qs_dropped, 1);
	ck_assert_uint_eq(st.qs_items, 1); /* what was there stays */
	/* A bound of 0 keeps nothing. */
	queue_free(q);
	ck_assert_int_eq(queue_new(0, &q), 0);
	it = item("a", 1, 1);
	ck_assert_int_eq(queue_push(q, &it, drops, 1, &nd), -EFBIG);
	ck_assert(queue_empty(q));
	queue_free(q);
}
END_TEST

START_TEST(queue_untake_puts_it_back_at_the_front)
{
	struct queue *q;
	struct queue_item it;
	struct queue_stats st;

	ck_assert_int_eq(queue_new(300, &q), 0);
	push(q, "a", 1, 100, 0);
	push(q, "a", 2, 100, 0);
	ck_assert(queue_take(q, &it));
	ck_assert_uint_eq(it.qi_seq, 1);
	it.qi_missing = 2;    /* what the flush counts of it comes back with it */
	queue_untake(q, &it); /* the store failed: it goes first next time */
	ck_assert(queue_take(q, &it));
	ck_assert_uint_eq(it.qi_seq, 1);
	ck_assert_uint_eq(it.qi_missing, 2);
	free(it.qi_buf);
	ck_assert_uint_eq(take_seq(q), 2);
	/* Taken, then the room filled meanwhile: putting it back drops it. */
	push(q, "a", 3, 100, 0);
	ck_assert(queue_take(q, &it));
	push(q, "a", 4, 100, 0);
	push(q, "a", 5, 100, 0);
	push(q, "a", 6, 100, 0);
	queue_untake(q, &it);
	queue_get_stats(q, &st);
	ck_assert_uint_eq(st.qs_dropped, 1);
	ck_assert_uint_eq(take_seq(q), 4);
	queue_free(q);
}
END_TEST

START_TEST(queue_drop_component_forgets_only_that_component)
{
	struct queue *q;
	struct queue_stats st;

	ck_assert_int_eq(queue_new(1000, &q), 0);
	push(q, "a", 1, 10, 0);
	push(q, "b", 2, 20, 0);
	push(q, "a", 3, 30, 0);
	push(q, "b", 4, 40, 0);
	ck_assert_uint_eq(queue_drop_component(q, "b"), 2);
	queue_get_stats(q, &st);
	ck_assert_uint_eq(st.qs_items, 2);
	ck_assert_uint_eq(st.qs_bytes, 40);
	ck_assert_uint_eq(st.qs_dropped, 0); /* not counted as drops for room */
	push(q, "c", 5, 10, 0);           /* the tail is still right */
	ck_assert_uint_eq(take_seq(q), 1);
	ck_assert_uint_eq(take_seq(q), 3);
	ck_assert_uint_eq(take_seq(q), 5);
	ck_assert_uint_eq(queue_drop_component(q, "a"), 0);
	queue_count_stored(q);
	queue_count_dropped(q); /* one taken and refused for good */
	queue_get_stats(q, &st);
	ck_assert_uint_eq(st.qs_stored, 1);
	ck_assert_uint_eq(st.qs_dropped, 1);
	queue_free(q);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("queue");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, queue_gives_checkpoints_back_oldest_first);
	tcase_add_test(tc, queue_full_drops_the_oldest_first_and_counts);
	tcase_add_test(tc, queue_drops_an_item_larger_than_the_bound);
	tcase_add_test(tc, queue_untake_puts_it_back_at_the_front);
	tcase_add_test(tc, queue_drop_component_forgets_only_that_component);
	suite_add_tcase(s, tc);
	return test_run(s);
}

/*
 * link_up() (services/agent/link.c): what /readyz and ckpt_agent_attached
 * read of the manager link, on an agent made by hand (no threads): only the
 * fields link_up_why() reads are set.
 */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "agent_int.h"
#include "util.h"
#include "../testrun.h"

static struct agent *
agent_linked_at(struct agent *a, uint64_t ok_ms)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->a_mu, NULL);
	a->a_node = "n1";
	a->a_manager = "tcp://127.0.0.1:1";
	a->a_attaches = 1;
	a->a_linked = true;
	a->a_reattach_ms = 10000;
	a->a_link_ok_ms = ok_ms;
	return a;
}

/*
 * A heartbeat answered after the reader read the clock: the link thread read
 * the clock later than /readyz's thread and stored its answer before that
 * thread took a_mu (a reader preempted between the two). It is up: the answer
 * is no time ago, not 2^64 - 1 ms ago.
 */
START_TEST(link_up_with_an_answer_stored_after_the_reader_read_the_clock)
{
	struct agent a;
	char why[256] = "";

	agent_linked_at(&a, util_now_mono_ms() + 1000);
	ck_assert(link_up(&a));
	ck_assert_msg(link_up_why(&a, why, sizeof(why)), "down: %s", why);
	pthread_mutex_destroy(&a.a_mu);
}
END_TEST

/* The lease itself: up inside it, down past it, and says for how long. */
START_TEST(link_up_inside_the_lease_and_down_past_it)
{
	struct agent a;
	char why[256] = "";
	uint64_t now = util_now_mono_ms();

	agent_linked_at(&a, now);
	ck_assert(link_up(&a));
	pthread_mutex_destroy(&a.a_mu);
	agent_linked_at(&a, now - 20000);
	ck_assert(!link_up_why(&a, why, sizeof(why)));
	ck_assert_msg(strstr(why, "not attached to the manager tcp://127.0.0.1:1: no heartbeat "
	    "answered for") != NULL, "%s", why);
	pthread_mutex_destroy(&a.a_mu);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("link");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, link_up_with_an_answer_stored_after_the_reader_read_the_clock);
	tcase_add_test(tc, link_up_inside_the_lease_and_down_past_it);
	suite_add_tcase(s, tc);
	return test_run(s);
}

/* PUB/SUB events over tcp on 127.0.0.1: topics, prefix filtering, framing. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "util.h"
#include "../testrun.h"

START_TEST(events_are_filtered_by_topic_prefix)
{
	struct event_pub *pub;
	struct event_sub *sub;
	Ckpt__V1__Event ev = CKPT__V1__EVENT__INIT, *got = NULL;
	char topic[EVENT_TOPIC_MAX], err[256];
	int rv = -ETIMEDOUT;

	ck_assert_int_eq(event_pub_open("tcp://127.0.0.1:0", NULL, &pub, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(event_pub_url(pub), "tcp://127.0.0.1:"));
	ck_assert_int_eq(event_sub_open(event_pub_url(pub), "ckpt.stored/", 0, NULL, &sub, err,
			     sizeof(err)), 0);
	ev.kind = "stored";
	ev.node = "dummy_1";
	ev.component = "demo_1";
	ev.seq = 7;
	/* Slow joiner: publish until the subscriber's connection is up. */
	for (int i = 0; i < 100 && rv == -ETIMEDOUT; i++) {
		Ckpt__V1__Event other = CKPT__V1__EVENT__INIT;
		other.kind = "node.up";
		ck_assert_int_eq(event_publish(pub, "ckpt.node.up/dummy_1", &other), 0);
		ck_assert_int_eq(event_publish(pub, "ckpt.stored/dummy_1/demo_1", &ev), 0);
		rv = event_sub_recv(sub, 50, topic, &got);
	}
	ck_assert_int_eq(rv, 0);
	ck_assert_str_eq(topic, "ckpt.stored/dummy_1/demo_1");
	ck_assert_str_eq(got->component, "demo_1");
	ck_assert_uint_eq(got->seq, 7);
	ckpt__v1__event__free_unpacked(got, NULL);
	/* Only matching topics arrive. */
	while (event_sub_recv(sub, 100, topic, &got) == 0) {
		ck_assert_ptr_nonnull(strstr(topic, "ckpt.stored/"));
		ckpt__v1__event__free_unpacked(got, NULL);
	}
	ck_assert_int_eq(event_publish(pub, "", &ev), -EINVAL);
	event_sub_close(sub);
	event_pub_close(pub);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("event");
	TCase *tc = tcase_create("event");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, events_are_filtered_by_topic_prefix);
	suite_add_tcase(s, tc);
	return test_run(s);
}

/* grant: which node may read a component's checkpoints of other nodes. */
#include <check.h>
#include <errno.h>
#include <stdio.h>

#include "grant.h"
#include "../testrun.h"

START_TEST(grant_allows_only_the_last_node_granted)
{
	struct grants *g;
	bool replaced = true;

	ck_assert_int_eq(grant_new(&g), 0);
	ck_assert(!grant_allows(g, "demo_1", "n2"));
	ck_assert_int_eq(grant_set(g, "demo_1", "n2", 4, &replaced, NULL), 0);
	ck_assert(!replaced);
	ck_assert(grant_allows(g, "demo_1", "n2"));
	ck_assert(!grant_allows(g, "demo_1", "n1"));
	ck_assert(!grant_allows(g, "demo_2", "n2"));
	ck_assert_int_eq(grant_set(g, "demo_1", "n2", 5, &replaced, NULL), 0);
	ck_assert(!replaced); /* the same node again */
	ck_assert_int_eq(grant_set(g, "demo_1", "n1", 6, &replaced, NULL), 0);
	ck_assert(replaced);
	ck_assert(grant_allows(g, "demo_1", "n1"));
	ck_assert(!grant_allows(g, "demo_1", "n2")); /* moved away: no longer */
	grant_free(g);
}
END_TEST

START_TEST(grant_refuses_bad_names_and_a_full_table)
{
	struct grants *g;
	char name[32];
	bool replaced;

	ck_assert_int_eq(grant_new(&g), 0);
	ck_assert_int_eq(grant_set(g, "", "n1", 1, &replaced, NULL), -EINVAL);
	ck_assert_int_eq(grant_set(g, "a/b", "n1", 1, &replaced, NULL), -EINVAL);
	ck_assert_int_eq(grant_set(g, "demo", "", 1, &replaced, NULL), -EINVAL);
	ck_assert(!grant_allows(g, "", ""));
	for (unsigned i = 0; i < GRANT_MAX; i++) {
		snprintf(name, sizeof(name), "c%u", i);
		ck_assert_int_eq(grant_set(g, name, "n1", 1, &replaced, NULL), 0);
	}
	ck_assert_int_eq(grant_set(g, "one_more", "n1", 1, &replaced, NULL), -ENOSPC);
	ck_assert_int_eq(grant_set(g, "c7", "n2", 2, &replaced, NULL), 0); /* replacing still works */
	ck_assert(grant_allows(g, "c7", "n2"));
	grant_free(g);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("grant");
	TCase *tc = tcase_create("grant");

	tcase_add_test(tc, grant_allows_only_the_last_node_granted);
	tcase_add_test(tc, grant_refuses_bad_names_and_a_full_table);
	suite_add_tcase(s, tc);
	return test_run(s);
}

/* Placement: a pure function over candidate arrays. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "placement.h"
#include "../testrun.h"

#define MIB (1024ull * 1024ull)

static struct place_cand
cand(const char *node, bool up, uint64_t free_mib, uint32_t cpus, uint32_t load_milli,
    uint32_t comps)
{
	struct place_cand c = {
		.pc_node = node,
		.pc_up = up,
		.pc_mem_free_bytes = free_mib * MIB,
		.pc_mem_total_bytes = 4096 * MIB,
		.pc_cpu_count = cpus,
		.pc_cpu_load_milli = load_milli,
		.pc_components = comps,
	};
	return c;
}

static int
choose(const struct place_cand *c, size_t n, const char *source, const char *target,
    uint64_t need, size_t *idx, char *err)
{
	struct place_req req = {
		.pr_component = "demo_1",
		.pr_source = source,
		.pr_target = target,
		.pr_need_bytes = need,
	};
	return place_choose(c, n, &req, idx, err, PLACE_ERR_MAX);
}

START_TEST(score_is_free_mib_scaled_down_by_load_per_cpu)
{
	struct place_cand idle = cand("a", true, 1000, 4, 0, 0);
	struct place_cand busy = cand("b", true, 1000, 2, 2000, 0); /* 1 task per CPU */
	struct place_cand unknown = idle;

	unknown.pc_mem_total_bytes = 0;
	ck_assert_uint_eq(place_score(&idle), 1000);
	ck_assert_uint_eq(place_score(&busy), 500);
	ck_assert_uint_eq(place_score(&unknown), 0);
}
END_TEST

START_TEST(best_score_wins)
{
	struct place_cand c[] = {
		cand("a", true, 1000, 1, 0, 0),
		cand("b", true, 3000, 1, 0, 0),
		cand("c", true, 2000, 1, 0, 0),
	};
	char err[PLACE_ERR_MAX];
	size_t idx = 99;

	ck_assert_int_eq(choose(c, 3, NULL, NULL, 0, &idx, err), 0);
	ck_assert_uint_eq(idx, 1);
}
END_TEST

START_TEST(cpu_load_can_outweigh_free_memory)
{
	struct place_cand c[] = {
		cand("a", true, 3000, 1, 4000, 0), /* 3000 * 1000 / 5000 = 600 */
		cand("b", true, 1000, 1, 0, 0),    /* 1000 */
	};
	char err[PLACE_ERR_MAX];
	size_t idx = 99;

	ck_assert_int_eq(choose(c, 2, NULL, NULL, 0, &idx, err), 0);
	ck_assert_uint_eq(idx, 1);
}
END_TEST

START_TEST(source_is_excluded)
{
	struct place_cand c[] = {
		cand("dummy_1", true, 8000, 1, 0, 0),
		cand("dummy_2", true, 1000, 1, 0, 0),
	};
	char err[PLACE_ERR_MAX];
	size_t idx = 99;

	ck_assert_int_eq(choose(c, 2, "dummy_1", NULL, 0, &idx, err), 0);
	ck_assert_uint_eq(idx, 1);
}
END_TEST

START_TEST(down_nodes_are_excluded)
{
	struct place_cand c[] = {
		cand("a", false, 8000, 1, 0, 0),
		cand("b", true, 1000, 1, 0, 0),
	};
	char err[PLACE_ERR_MAX];
	size_t idx = 99;

	ck_assert_int_eq(choose(c, 2, NULL, NULL, 0, &idx, err), 0);
	ck_assert_uint_eq(idx, 1);
}
END_TEST

START_TEST(nodes_too_small_for_the_state_are_excluded)
{
	struct place_cand c[] = {
		cand("a", true, 10, 1, 0, 0),
		cand("b", true, 64, 16, 32000, 0), /* busy, but the only one with room */
	};
	char err[PLACE_ERR_MAX];
	size_t idx = 99;

	ck_assert_int_eq(choose(c, 2, NULL, NULL, 32 * MIB, &idx, err), 0);
	ck_assert_uint_eq(idx, 1);
}
END_TEST

START_TEST(unknown_capacity_is_kept_but_loses_to_known_room)
{
	struct place_cand c[] = {
		cand("a", true, 0, 0, 0, 0),
		cand("b", true, 100, 1, 0, 0),
	};
	char err[PLACE_ERR_MAX];
	size_t idx = 99;

	c[0].pc_mem_total_bytes = 0;
	ck_assert_int_eq(choose(c, 2, NULL, NULL, 10 * MIB, &idx, err), 0);
	ck_assert_uint_eq(idx, 1);
	ck_assert_int_eq(choose(c, 1, NULL, NULL, 10 * MIB, &idx, err), 0);
	ck_assert_uint_eq(idx, 0);
}
END_TEST

START_TEST(ties_go_to_fewest_components_then_smallest_id)
{
	struct place_cand c[] = {
		cand("n3", true, 1000, 1, 0, 2),
		cand("n2", true, 1000, 1, 0, 1),
		cand("n1", true, 1000, 1, 0, 1),
	};
	char err[PLACE_ERR_MAX];
	size_t idx = 99;

	ck_assert_int_eq(choose(c, 3, NULL, NULL, 0, &idx, err), 0);
	ck_assert_str_eq(c[idx].pc_node, "n1");
	/* The order of the array does not matter. */
	struct place_cand r[] = { c[2], c[1], c[0] };
	ck_assert_int_eq(choose(r, 3, NULL, NULL, 0, &idx, err), 0);
	ck_assert_str_eq(r[idx].pc_node, "n1");
}
END_TEST

START_TEST(no_candidate_is_a_failed_precondition)
{
	struct place_cand c[] = {
		cand("dummy_1", true, 1000, 1, 0, 0),
		cand("dummy_2", false, 1000, 1, 0, 0),
	};
	char err[PLACE_ERR_MAX] = "";
	size_t idx = 99;

	ck_assert_int_eq(choose(c, 2, "dummy_1", NULL, 0, &idx, err), -ESTALE);
	ck_assert_ptr_nonnull(strstr(err, "no healthy node can take demo_1"));
	ck_assert_ptr_nonnull(strstr(err, "1 down"));
	ck_assert_uint_eq(idx, 99);
	ck_assert_int_eq(choose(NULL, 0, NULL, NULL, 0, &idx, err), -ESTALE);
}
END_TEST

START_TEST(nodes_that_refused_the_spec_are_excluded_and_counted)
{
	struct place_cand c[] = {
		cand("dummy_1", true, 8000, 1, 0, 0),
		cand("dummy_2", true, 1000, 1, 0, 0),
	};
	const char *refused[] = { "dummy_1" };
	struct place_req req = { .pr_component = "demo_1", .pr_exclude = refused, .pr_nexclude = 1 };
	char err[PLACE_ERR_MAX] = "";
	size_t idx = 99;

	ck_assert_int_eq(place_choose(c, 2, &req, &idx, err, sizeof(err)), 0);
	ck_assert_uint_eq(idx, 1);
	req.pr_nexclude = 2;
	{
		const char *both[] = { "dummy_1", "dummy_2" };
		req.pr_exclude = both;
		ck_assert_int_eq(place_choose(c, 2, &req, &idx, err, sizeof(err)), -ESTALE);
	}
	ck_assert_ptr_nonnull(strstr(err, "2 other node(s)"));
	ck_assert_ptr_nonnull(strstr(err, "2 refused its spec"));
}
END_TEST

START_TEST(explicit_target_must_exist_be_up_fit_and_not_be_the_source)
{
	struct place_cand c[] = {
		cand("src", true, 9000, 1, 0, 0),
		cand("down", false, 9000, 1, 0, 0),
		cand("small", true, 1, 1, 0, 0),
		cand("ok", true, 100, 1, 0, 0),
	};
	char err[PLACE_ERR_MAX] = "";
	size_t idx = 99;

	ck_assert_int_eq(choose(c, 4, "src", "nope", 0, &idx, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "unknown target node 'nope'"));
	ck_assert_int_eq(choose(c, 4, "src", "src", 0, &idx, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "already runs demo_1"));
	ck_assert_int_eq(choose(c, 4, "src", "down", 0, &idx, err), -ESTALE);
	ck_assert_ptr_nonnull(strstr(err, "is down"));
	ck_assert_int_eq(choose(c, 4, "src", "small", 10 * MIB, &idx, err), -ESTALE);
	ck_assert_ptr_nonnull(strstr(err, "bytes free"));
	ck_assert_uint_eq(idx, 99);
	/* An explicit target wins even over a better-scoring node. */
	ck_assert_int_eq(choose(c, 4, "src", "ok", 10 * MIB, &idx, err), 0);
	ck_assert_uint_eq(idx, 3);
}
END_TEST

START_TEST(cordoned_nodes_are_excluded_and_refused_as_target)
{
	struct place_cand c[] = {
		cand("big", true, 4000, 1, 0, 0),
		cand("small", true, 100, 1, 0, 0),
	};
	char err[PLACE_ERR_MAX] = "";
	size_t idx = 99;

	c[0].pc_cordoned = true;
	ck_assert_int_eq(choose(c, 2, NULL, NULL, 0, &idx, err), 0);
	ck_assert_uint_eq(idx, 1);
	c[1].pc_cordoned = true;
	ck_assert_int_eq(choose(c, 2, NULL, NULL, 0, &idx, err), -ESTALE);
	ck_assert_ptr_nonnull(strstr(err, "2 cordoned"));
	ck_assert_int_eq(choose(c, 2, NULL, "big", 0, &idx, err), -ESTALE);
	ck_assert_str_eq(err, "target node big is cordoned");
}
END_TEST

START_TEST(full_nodes_are_excluded_counted_and_refused_as_target)
{
	struct place_cand c[] = {
		cand("big", true, 8000, 1, 0, 2),
		cand("small", true, 100, 1, 0, 1),
	};
	struct place_req req = { .pr_component = "demo_1", .pr_max_components = 2 };
	char err[PLACE_ERR_MAX] = "";
	size_t idx = 99;

	/* big scores better but runs the most a node takes. */
	ck_assert_int_eq(place_choose(c, 2, &req, &idx, err, sizeof(err)), 0);
	ck_assert_uint_eq(idx, 1);
	c[1].pc_components = 3; /* over it (moves that landed at once): full too */
	ck_assert_int_eq(place_choose(c, 2, &req, &idx, err, sizeof(err)), -ESTALE);
	ck_assert_ptr_nonnull(strstr(err, "2 other node(s)"));
	ck_assert_ptr_nonnull(strstr(err, "2 full (2 components, --max-node-components)"));
	req.pr_target = "big";
	ck_assert_int_eq(place_choose(c, 2, &req, &idx, err, sizeof(err)), -ESTALE);
	ck_assert_str_eq(err, "target node big runs 2 components, the most a node takes "
	    "(--max-node-components 2)");
	/* Full with components on their way there (placed, not reported yet): said so. */
	c[0].pc_components = 2;
	c[0].pc_arriving = 2;
	ck_assert_int_eq(place_choose(c, 2, &req, &idx, err, sizeof(err)), -ESTALE);
	ck_assert_str_eq(err, "target node big runs 0 components and 2 more are on their way "
	    "there: 2, the most a node takes (--max-node-components 2)");
	/* No cap: both take it. */
	req.pr_target = NULL;
	req.pr_max_components = 0;
	ck_assert_int_eq(place_choose(c, 2, &req, &idx, err, sizeof(err)), 0);
	ck_assert_uint_eq(idx, 0);
}
END_TEST

START_TEST(required_labels_must_all_be_carried)
{
	const struct place_label gpu[] = { { "gpu", "yes" }, { "zone", "b" } };
	const struct place_label gpu_only[] = { { "gpu", "yes" } };
	const struct place_label want[] = { { "gpu", "yes" }, { "zone", "" } };
	struct place_cand c[] = {
		cand("plain", true, 4000, 1, 0, 0),
		cand("half", true, 3000, 1, 0, 0),
		cand("full", true, 100, 1, 0, 0),
	};
	struct place_req req = { .pr_component = "demo_1", .pr_requires = want, .pr_nrequires = 2 };
	char err[PLACE_ERR_MAX] = "";
	size_t idx = 99;

	c[1].pc_labels = gpu_only;
	c[1].pc_nlabels = 1;
	c[2].pc_labels = gpu;
	c[2].pc_nlabels = 2;
	/* Only "full" carries gpu=yes and a zone (any value): it wins despite less room. */
	ck_assert_int_eq(place_choose(c, 3, &req, &idx, err, sizeof(err)), 0);
	ck_assert_uint_eq(idx, 2);
	/* A value that differs does not count. */
	req.pr_nrequires = 1;
	req.pr_requires = (const struct place_label[]){ { "gpu", "no" } };
	ck_assert_int_eq(place_choose(c, 3, &req, &idx, err, sizeof(err)), -ESTALE);
	ck_assert_ptr_nonnull(strstr(err, "3 without a required label (gpu=no)"));
	req.pr_target = "half";
	ck_assert_int_eq(place_choose(c, 3, &req, &idx, err, sizeof(err)), -ESTALE);
	ck_assert_str_eq(err, "target node half lacks label gpu=no required by demo_1");
	/* No requirement: the best score, as before. */
	req.pr_target = NULL;
	req.pr_nrequires = 0;
	ck_assert_int_eq(place_choose(c, 3, &req, &idx, err, sizeof(err)), 0);
	ck_assert_uint_eq(idx, 0);
}
END_TEST

static Suite *
placement_suite(void)
{
	Suite *s = suite_create("placement");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, score_is_free_mib_scaled_down_by_load_per_cpu);
	tcase_add_test(tc, best_score_wins);
	tcase_add_test(tc, cpu_load_can_outweigh_free_memory);
	tcase_add_test(tc, source_is_excluded);
	tcase_add_test(tc, down_nodes_are_excluded);
	tcase_add_test(tc, nodes_too_small_for_the_state_are_excluded);
	tcase_add_test(tc, unknown_capacity_is_kept_but_loses_to_known_room);
	tcase_add_test(tc, ties_go_to_fewest_components_then_smallest_id);
	tcase_add_test(tc, no_candidate_is_a_failed_precondition);
	tcase_add_test(tc, explicit_target_must_exist_be_up_fit_and_not_be_the_source);
	tcase_add_test(tc, cordoned_nodes_are_excluded_and_refused_as_target);
	tcase_add_test(tc, required_labels_must_all_be_carried);
	tcase_add_test(tc, full_nodes_are_excluded_counted_and_refused_as_target);
	tcase_add_test(tc, nodes_that_refused_the_spec_are_excluded_and_counted);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return test_run(placement_suite());
}

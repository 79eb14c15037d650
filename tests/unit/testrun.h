/* The tail of every unit test's main(): runs a suite, exit status from its result. */
#ifndef CKPT_TESTRUN_H
#define CKPT_TESTRUN_H

#include <check.h>
#include <stdlib.h>

static inline int
test_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif

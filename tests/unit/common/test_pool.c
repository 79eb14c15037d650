#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "pool.h"
#include "util.h"
#include "../testrun.h"

static void
add_one(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

/* Every job submitted runs exactly once, on a worker or on the waiter. */
START_TEST(pool_runs_every_job_once)
{
	struct pool *p;
	struct pool_job jobs[64] = { 0 };
	atomic_int count = 0;

	ck_assert_int_eq(pool_new(3, &p), 0);
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 64; i++)
			pool_submit(p, &jobs[i], add_one, &count);
		for (int i = 0; i < 64; i++)
			pool_wait(p, &jobs[i], true);
		ck_assert_int_eq(atomic_load(&count), 64 * (round + 1));
	}
	pool_free(p);
	pool_free(NULL);
}
END_TEST

/* A job that holds every worker up: a waiter never waits for a free worker. */
struct blocker {
	pthread_mutex_t b_mu;
	pthread_cond_t b_cv;
	bool b_go;
	atomic_int b_started;
};

static void
block(void *arg)
{
	struct blocker *b = arg;
	atomic_fetch_add(&b->b_started, 1);
	pthread_mutex_lock(&b->b_mu);
	while (!b->b_go)
		pthread_cond_wait(&b->b_cv, &b->b_mu);
	pthread_mutex_unlock(&b->b_mu);
}

START_TEST(pool_wait_runs_a_job_no_worker_took)
{
	struct blocker b = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0 };
	struct pool_job busy[2] = { 0 }, mine = { 0 }, dropped = { 0 };
	atomic_int count = 0;
	struct pool *p;

	ck_assert_int_eq(pool_new(2, &p), 0);
	pool_submit(p, &busy[0], block, &b);
	pool_submit(p, &busy[1], block, &b);
	for (int i = 0; i < 200 && atomic_load(&b.b_started) < 2; i++)
		util_sleep_ms(10);
	ck_assert_int_eq(atomic_load(&b.b_started), 2);
	/* Both workers are held: this job runs on the waiter. */
	pool_submit(p, &mine, add_one, &count);
	ck_assert(!pool_done(p, &mine));
	pool_wait(p, &mine, true);
	ck_assert_int_eq(atomic_load(&count), 1);
	/* Dropped unrun. */
	pool_submit(p, &dropped, add_one, &count);
	pool_wait(p, &dropped, false);
	ck_assert_int_eq(atomic_load(&count), 1);
	pthread_mutex_lock(&b.b_mu);
	b.b_go = true;
	pthread_cond_broadcast(&b.b_cv);
	pthread_mutex_unlock(&b.b_mu);
	pool_wait(p, &busy[0], true);
	pool_wait(p, &busy[1], true);
	ck_assert(pool_done(p, &busy[0]));
	/* A job never submitted: returns at once. */
	pool_wait(p, &mine, true);
	pool_free(p);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, pool_runs_every_job_once);
	tcase_add_test(tc, pool_wait_runs_a_job_no_worker_took);
	suite_add_tcase(s, tc);
	return test_run(s);
}

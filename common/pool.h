/*
 * pool: a few worker threads, made once (by their owner, e.g. one per NAS
 * client) and given short jobs: hashing a window's chunks, verifying a
 * GetChunks batch, sending a PutChunks. Made so that a store or a restore
 * does not pay a pthread_create per window, and so that the work of one
 * call spreads over every core.
 *
 * A job is a function and its argument in a struct pool_job that the caller
 * owns and keeps alive until pool_wait() returned for it. Every submitted job
 * is waited for exactly once.
 *
 * pool_wait() never waits for a job no worker has taken: it takes it back
 * and runs it on the caller's thread (or drops it, when asked not to run
 * it). A caller thus never depends on a free worker, so jobs of several
 * callers sharing one pool cannot deadlock, and a pool whose threads could
 * not be made (none at all) still works, on the callers' threads.
 *
 * Threads: pool_submit() and pool_wait() from any thread; pool_free() once
 * nothing is submitted any more. Workers start on the first submit.
 */
#ifndef CKPT_POOL_H
#define CKPT_POOL_H

#include <stdbool.h>

#define POOL_THREADS_MAX 8

enum pool_job_state { POOL_JOB_IDLE, POOL_JOB_QUEUED, POOL_JOB_RUNNING, POOL_JOB_DONE };

struct pool_job {
	void (*pj_fn)(void *arg);
	void *pj_arg;
	/* The pool's (under its lock): */
	enum pool_job_state pj_state;
	struct pool_job *pj_next;
};

struct pool;

/* threads: 0 for one per online CPU plus one (a worker may wait on the network), at most POOL_THREADS_MAX. */
int pool_new(unsigned threads, struct pool **ret_pool);
/* Stops and joins the workers. Accepts NULL. No job may be pending. */
void pool_free(struct pool *p);
/* Queues j (fn(arg) on a worker). */
void pool_submit(struct pool *p, struct pool_job *j, void (*fn)(void *), void *arg);
/*
 * Returns once j is done: a job still queued is taken back and run here
 * (run true) or dropped without running (run false). A job never submitted
 * (POOL_JOB_IDLE) returns at once.
 */
void pool_wait(struct pool *p, struct pool_job *j, bool run);
/* Whether j is done (false while queued or running); does not wait. */
bool pool_done(struct pool *p, struct pool_job *j);

#endif

#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct pool {
	pthread_mutex_t p_mu;
	pthread_cond_t p_work;        /* a job was queued, or stop */
	pthread_cond_t p_done;        /* a job a worker ran is done */
	struct pool_job *p_head, *p_tail;
	bool p_stop;
	bool p_started;               /* the workers were made (or tried) */
	unsigned p_want;              /* workers to make */
	unsigned p_n;                 /* workers made */
	pthread_t p_threads[POOL_THREADS_MAX];
};

int
pool_new(unsigned threads, struct pool **ret_pool)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return -ENOMEM;
	if (threads == 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		threads = ncpu > 0 ? (unsigned)ncpu + 1 : 2;
	}
	p->p_want = threads < POOL_THREADS_MAX ? threads : POOL_THREADS_MAX;
	if (pthread_mutex_init(&p->p_mu, NULL) != 0) {
		free(p);
		return -ENOMEM;
	}
	pthread_cond_init(&p->p_work, NULL);
	pthread_cond_init(&p->p_done, NULL);
	*ret_pool = p;
	return 0;
}

static void *pool_main(void *arg);

/*
 * Makes the workers still wanted (under p_mu). The first is made by the
 * first pool_submit(), the others by that worker: the submitting thread
 * (a reader about to wait for a reply) pays for one pthread_create, not all.
 */
static void
pool_spawn(struct pool *p)
{
	while (!p->p_stop && p->p_n < p->p_want &&
	    pthread_create(&p->p_threads[p->p_n], NULL, pool_main, p) == 0)
		pthread_setname_np(p->p_threads[p->p_n++], "pool:worker");
	p->p_want = p->p_n; /* one that failed is not tried again */
}

static void *
pool_main(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->p_mu);
	pool_spawn(p);
	for (;;) {
		struct pool_job *j;

		while (!p->p_stop && p->p_head == NULL)
			pthread_cond_wait(&p->p_work, &p->p_mu);
		if (p->p_head == NULL)
			break; /* stopping, nothing queued */
		j = p->p_head;
		p->p_head = j->pj_next;
		if (p->p_head == NULL)
			p->p_tail = NULL;
		j->pj_state = POOL_JOB_RUNNING;
		pthread_mutex_unlock(&p->p_mu);
		j->pj_fn(j->pj_arg);
		pthread_mutex_lock(&p->p_mu);
		j->pj_state = POOL_JOB_DONE;
		pthread_cond_broadcast(&p->p_done);
	}
	pthread_mutex_unlock(&p->p_mu);
	return NULL;
}

void
pool_free(struct pool *p)
{
	unsigned n;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->p_mu);
	p->p_stop = true;
	n = p->p_n; /* none is made once p_stop is set */
	pthread_cond_broadcast(&p->p_work);
	pthread_mutex_unlock(&p->p_mu);
	for (unsigned i = 0; i < n; i++)
		pthread_join(p->p_threads[i], NULL);
	pthread_cond_destroy(&p->p_work);
	pthread_cond_destroy(&p->p_done);
	pthread_mutex_destroy(&p->p_mu);
	free(p);
}

void
pool_submit(struct pool *p, struct pool_job *j, void (*fn)(void *), void *arg)
{
	j->pj_fn = fn;
	j->pj_arg = arg;
	j->pj_next = NULL;
	pthread_mutex_lock(&p->p_mu);
	/* Fewer workers than wanted (none: callers run their jobs) is slower, not wrong. */
	if (!p->p_started && p->p_want > 0) {
		p->p_started = true;
		if (pthread_create(&p->p_threads[0], NULL, pool_main, p) == 0)
			pthread_setname_np(p->p_threads[p->p_n++], "pool:worker");
		else
			p->p_want = 0;
	}
	j->pj_state = POOL_JOB_QUEUED;
	if (p->p_tail != NULL)
		p->p_tail->pj_next = j;
	else
		p->p_head = j;
	p->p_tail = j;
	pthread_cond_signal(&p->p_work);
	pthread_mutex_unlock(&p->p_mu);
}

/* Takes j out of the queue. Under p_mu; j is queued. */
static void
pool_unqueue(struct pool *p, struct pool_job *j)
{
	struct pool_job *prev = NULL;

	for (struct pool_job *q = p->p_head; q != NULL; prev = q, q = q->pj_next) {
		if (q != j)
			continue;
		if (prev != NULL)
			prev->pj_next = j->pj_next;
		else
			p->p_head = j->pj_next;
		if (p->p_tail == j)
			p->p_tail = prev;
		break;
	}
	j->pj_next = NULL;
}

void
pool_wait(struct pool *p, struct pool_job *j, bool run)
{
	pthread_mutex_lock(&p->p_mu);
	if (j->pj_state == POOL_JOB_QUEUED) {
		pool_unqueue(p, j);
		j->pj_state = POOL_JOB_IDLE;
		pthread_mutex_unlock(&p->p_mu);
		if (run)
			j->pj_fn(j->pj_arg);
		return;
	}
	while (j->pj_state == POOL_JOB_RUNNING)
		pthread_cond_wait(&p->p_done, &p->p_mu);
	j->pj_state = POOL_JOB_IDLE;
	pthread_mutex_unlock(&p->p_mu);
}

bool
pool_done(struct pool *p, struct pool_job *j)
{
	bool done;

	pthread_mutex_lock(&p->p_mu);
	done = j->pj_state == POOL_JOB_DONE || j->pj_state == POOL_JOB_IDLE;
	pthread_mutex_unlock(&p->p_mu);
	return done;
}

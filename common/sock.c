#include "sock.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

/* The closing thread and the caller share the closer; the last one frees it. */
struct sock_closer {
	nng_socket cl_sock;
	pthread_mutex_t cl_mu;
	pthread_cond_t cl_cv;
	int cl_done;
	int cl_refs; /* the closing thread and the waiter */
};

static void
sock_closer_put(struct sock_closer *cl)
{
	int last;
	pthread_mutex_lock(&cl->cl_mu);
	last = --cl->cl_refs == 0;
	pthread_mutex_unlock(&cl->cl_mu);
	if (last) {
		pthread_mutex_destroy(&cl->cl_mu);
		pthread_cond_destroy(&cl->cl_cv);
		free(cl);
	}
}

static void *
sock_closer_main(void *arg)
{
	struct sock_closer *cl = arg;
	nng_close(cl->cl_sock);
	pthread_mutex_lock(&cl->cl_mu);
	cl->cl_done = 1;
	pthread_cond_signal(&cl->cl_cv);
	pthread_mutex_unlock(&cl->cl_mu);
	sock_closer_put(cl);
	return NULL;
}

int
sock_close(nng_socket sock)
{
	struct sock_closer *cl = calloc(1, sizeof(*cl));
	struct timespec until;
	pthread_attr_t attr;
	pthread_t t;
	int rv = 0, done;

	if (cl == NULL) {
		nng_close(sock); /* no memory for the guard: close inline */
		return 0;
	}
	cl->cl_sock = sock;
	cl->cl_refs = 2;
	pthread_mutex_init(&cl->cl_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cl->cl_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, sock_closer_main, cl) != 0) {
		pthread_attr_destroy(&attr);
		free(cl);
		nng_close(sock);
		return 0;
	}
	pthread_attr_destroy(&attr);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += SOCK_CLOSE_WAIT_MS / 1000;
	until.tv_nsec += (long)(SOCK_CLOSE_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&cl->cl_mu);
	while (!cl->cl_done && rv == 0)
		rv = pthread_cond_timedwait(&cl->cl_cv, &cl->cl_mu, &until);
	done = cl->cl_done;
	pthread_mutex_unlock(&cl->cl_mu);
	sock_closer_put(cl);
	return done ? 0 : -ETIMEDOUT;
}

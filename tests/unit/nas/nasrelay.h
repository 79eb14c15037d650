/*
 * nasrelay: a relay between a NAS client and a NAS for the tests (header
 * only). A REP socket on a free port of 127.0.0.1 takes the client's
 * requests, a REQ socket passes each one on to the NAS unchanged and its
 * reply back, one request at a time, on a thread of the relay's own.
 *
 * Before it passes on the at-th request of one method, the relay runs a
 * hook on that thread, with no request of the client in flight: what
 * another client or an operator would do between two calls of one store
 * (delete a record, restart the NAS) happens at exactly that point, with
 * real sockets and a real store on both sides. A hook that restarts the NAS
 * points the relay at its new URL (nasrelay_redial()). The relay counts the
 * requests it passed on, by method.
 *
 * An answer function (nasrelay_answer()) plays an older NAS: it sees each
 * request of one method and may refuse it in the NAS's place, with a code,
 * message and reason of its choosing; the request is then not passed on
 * (nor counted in nr_count) but in nr_answered.
 */
#ifndef CKPT_NASRELAY_H
#define CKPT_NASRELAY_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "err.h"
#include "methods.h"
#include "rpc.h"

struct nasrelay;
typedef void (*nasrelay_fn)(struct nasrelay *r, void *arg);
/*
 * A request of the method (its body, en_body): true to refuse it with
 * *ret_code, message ret_msg and reason ret_reason ("" for none).
 */
typedef bool (*nasrelay_answer_fn)(const uint8_t *body, size_t len, void *arg,
    Ckpt__V1__Code *ret_code, char *ret_msg, size_t msg_size, char *ret_reason,
    size_t reason_size);

struct nasrelay {
	nng_socket nr_front;               /* REP: the client dials it */
	nng_socket nr_back;                /* REQ: dials the NAS */
	nng_dialer nr_dialer;
	char nr_url[64];                   /* the front's URL */
	pthread_t nr_thread;
	atomic_uint nr_count[NAS_METHODS]; /* requests passed on, by method */
	/* The hook (nasrelay_hook()): runs before the nr_at-th request of nr_method. */
	unsigned nr_method, nr_at;
	bool nr_each;
	nasrelay_fn nr_fn;
	void *nr_arg;
	atomic_uint nr_fired;              /* times the hook ran */
	/* The answer function (nasrelay_answer()) and the requests it refused. */
	unsigned nr_ans_method;
	nasrelay_answer_fn nr_ans_fn;
	void *nr_ans_arg;
	atomic_uint nr_answered;
};

/* Points the relay at url (a NAS): the next request goes there. From a hook, or before a call. */
static inline int
nasrelay_redial(struct nasrelay *r, const char *url)
{
	int rv;

	if (nng_dialer_id(r->nr_dialer) > 0)
		nng_dialer_close(r->nr_dialer);
	/* Synchronous: connected when it returns. */
	rv = nng_dial(r->nr_back, url, &r->nr_dialer, 0);
	return rv != 0 ? err_from_nng(rv) : 0;
}

/*
 * Runs fn(r, arg) before the at-th request (from 1) of method counted from
 * now on, and with each before every later one of the method too. Set it
 * while no call goes through the relay.
 */
static inline void
nasrelay_hook(struct nasrelay *r, unsigned method, unsigned at, bool each, nasrelay_fn fn,
    void *arg)
{
	r->nr_method = method;
	r->nr_at = atomic_load(&r->nr_count[method]) + at;
	r->nr_each = each;
	r->nr_fn = fn;
	r->nr_arg = arg;
	atomic_store(&r->nr_fired, 0);
}

/* Sets fn (NULL: none) to answer requests of method. Set it while no call goes through. */
static inline void
nasrelay_answer(struct nasrelay *r, unsigned method, nasrelay_answer_fn fn, void *arg)
{
	r->nr_ans_method = method;
	r->nr_ans_fn = fn;
	r->nr_ans_arg = arg;
}

/* fn's refusal of env's request, as a reply message; NULL: pass it on. */
static nng_msg *
nasrelay_refusal(struct nasrelay *r, const struct rpc_envelope *env)
{
	Ckpt__V1__Reply rep = CKPT__V1__REPLY__INIT;
	Ckpt__V1__Code code = CKPT__V1__CODE__OK;
	char msg[256] = "", reason[64] = "";
	nng_msg *m;

	if (r->nr_ans_fn == NULL || env->en_method != r->nr_ans_method ||
	    !r->nr_ans_fn(env->en_body, env->en_body_len, r->nr_ans_arg, &code, msg, sizeof(msg),
	    reason, sizeof(reason)))
		return NULL;
	rep.code = code;
	rep.message = msg;
	rep.reason = reason;
	if (nng_msg_alloc(&m, ckpt__v1__reply__get_packed_size(&rep)) != 0)
		return NULL;
	ckpt__v1__reply__pack(&rep, nng_msg_body(m));
	atomic_fetch_add(&r->nr_answered, 1);
	return m;
}

static void *
nasrelay_run(void *arg)
{
	struct nasrelay *r = arg;
	nng_msg *req, *rep;

	for (;;) {
		struct rpc_envelope env;
		unsigned k = NAS_METHODS;

		if (nng_recvmsg(r->nr_front, &req, 0) != 0)
			break; /* closed: the relay stops */
		if (rpc_envelope_read(nng_msg_body(req), nng_msg_len(req), &env) == 0 &&
		    env.en_method < NAS_METHODS && (rep = nasrelay_refusal(r, &env)) != NULL) {
			nng_msg_free(req);
			if (nng_sendmsg(r->nr_front, rep, 0) != 0)
				nng_msg_free(rep);
			continue;
		}
		if (rpc_envelope_read(nng_msg_body(req), nng_msg_len(req), &env) == 0 &&
		    env.en_method < NAS_METHODS) {
			k = env.en_method;
			unsigned nth = atomic_load(&r->nr_count[k]) + 1;
			if (r->nr_fn != NULL && k == r->nr_method &&
			    (nth == r->nr_at || (r->nr_each && nth > r->nr_at))) {
				atomic_fetch_add(&r->nr_fired, 1);
				r->nr_fn(r, r->nr_arg);
			}
			atomic_fetch_add(&r->nr_count[k], 1);
		}
		/* A request lost here (the NAS stopped) times out at the client. */
		if (nng_sendmsg(r->nr_back, req, 0) != 0) {
			nng_msg_free(req);
			continue;
		}
		if (nng_recvmsg(r->nr_back, &rep, 0) != 0)
			continue;
		if (nng_sendmsg(r->nr_front, rep, 0) != 0)
			nng_msg_free(rep);
	}
	return NULL;
}

/* Starts a relay to the NAS at url. 0, or a negative errno (nothing left started). */
static inline int
nasrelay_start(struct nasrelay *r, const char *url)
{
	nng_listener l;
	int port = 0, rv;

	memset(r, 0, sizeof(*r));
	if ((rv = nng_rep0_open(&r->nr_front)) != 0)
		return err_from_nng(rv);
	if ((rv = nng_req0_open(&r->nr_back)) != 0) {
		nng_close(r->nr_front);
		return err_from_nng(rv);
	}
	/* Any size (PutChunks of megabytes); never resent; no wait past a test's. */
	nng_socket_set_size(r->nr_front, NNG_OPT_RECVMAXSZ, 0);
	nng_socket_set_size(r->nr_back, NNG_OPT_RECVMAXSZ, 0);
	nng_socket_set_ms(r->nr_back, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(r->nr_back, NNG_OPT_RECVTIMEO, 60000);
	rv = nng_listen(r->nr_front, "tcp://127.0.0.1:0", &l, 0);
	if (rv == 0)
		rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
	rv = rv != 0 ? err_from_nng(rv) : nasrelay_redial(r, url);
	if (rv == 0)
		rv = -pthread_create(&r->nr_thread, NULL, nasrelay_run, r);
	if (rv != 0) {
		nng_close(r->nr_front);
		nng_close(r->nr_back);
		return rv;
	}
	snprintf(r->nr_url, sizeof(r->nr_url), "tcp://127.0.0.1:%d", port);
	return 0;
}

/* Stops the relay's thread and closes its sockets. */
static inline void
nasrelay_stop(struct nasrelay *r)
{
	nng_close(r->nr_front);
	nng_close(r->nr_back);
	pthread_join(r->nr_thread, NULL);
}

#endif

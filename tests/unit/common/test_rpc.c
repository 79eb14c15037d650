/* RPC framing and dispatch over real nng sockets (tcp on 127.0.0.1, port 0). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/v1/agent.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "err.h"
#include "rpc.h"
#include "sock.h"
#include "util.h"
#include "../testrun.h"

enum { M_RESTORE = 0, M_STOP = 1, M_CHECKPOINT_NOW = 2, M_STATUS = 3 };

static pthread_mutex_t gate_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;
static atomic_int bad_seen;
static atomic_int stops_in; /* Stop handlers entered */

static int
h_status(void *arg, struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	Ckpt__V1__StatusReply *r = (Ckpt__V1__StatusReply *)reply;
	(void)arg;
	(void)req;
	r->node = arena_strdup(rpc_call_arena(call), "node-under-test");
	/* Opens the gate a blocked Stop waits on: proves requests run concurrently. */
	pthread_mutex_lock(&gate_mtx);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mtx);
	return 0;
}

static int
h_restore(void *arg, struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const Ckpt__V1__RestoreRequest *r = (const Ckpt__V1__RestoreRequest *)req;
	(void)arg;
	(void)reply;
	rpc_call_errorf(call, "component %s is not here", r->component);
	rpc_call_reason(call, "not_here");
	return -ENOENT;
}

static int
h_stop(void *arg, struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	struct timespec until;
	int rv = 0;
	(void)arg;
	(void)req;
	(void)reply;
	atomic_fetch_add(&stops_in, 1);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&gate_mtx);
	while (!gate_open && rv == 0)
		rv = pthread_cond_timedwait(&gate_cv, &gate_mtx, &until);
	pthread_mutex_unlock(&gate_mtx);
	(void)call;
	return rv == 0 ? 0 : -ETIMEDOUT;
}

static void
on_bad(void *arg, const char *reason)
{
	(void)arg;
	(void)reason;
	atomic_fetch_add(&bad_seen, 1);
}

static const rpc_handler_fn handlers[] = { h_restore, h_stop, NULL, h_status };

static struct rpc_server *srv;
static struct rpc_client *cli;

static void
setup(void)
{
	struct rpc_server_config cfg = {
		.rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = handlers,
		.rs_recv_max = 64 * 1024,
		.rs_workers = 4,
		.rs_on_bad = on_bad,
	};
	struct rpc_error err;
	ck_assert_int_eq(rpc_server_start(&cfg, "tcp://127.0.0.1:0", &srv), 0);
	ck_assert_int_eq(rpc_client_open(rpc_server_url(srv), &ckpt__v1__agent__descriptor,
	                     RPC_CLIENT_DIAL_NOW, 0, &cli, &err),
	    0);
	gate_open = 0;
	atomic_store(&bad_seen, 0);
}

static void
teardown(void)
{
	rpc_client_close(cli);
	rpc_server_stop(srv);
}

static int
status_ok(void)
{
	Ckpt__V1__StatusRequest req = CKPT__V1__STATUS_REQUEST__INIT;
	Ckpt__V1__StatusReply *rep = NULL;
	struct rpc_error err;
	int rv = rpc_client_call(cli, M_STATUS, &req.base, 3000, (ProtobufCMessage **)&rep, &err);
	if (rv == 0) {
		ck_assert_str_eq(rep->node, "node-under-test");
		rpc_reply_free(&rep->base);
	}
	return rv;
}

/* Sends raw bytes, returns the decoded Reply (caller frees). */
static Ckpt__V1__Reply *
raw_call(const void *data, size_t len)
{
	struct rpc_error err;
	void *buf = NULL;
	size_t blen = 0;
	Ckpt__V1__Reply *r;
	ck_assert_int_eq(rpc_client_call_raw(cli, data, len, 3000, &buf, &blen, &err), 0);
	r = ckpt__v1__reply__unpack(NULL, blen, buf);
	free(buf);
	ck_assert_ptr_nonnull(r);
	return r;
}

static Ckpt__V1__Reply *
envelope_call(uint32_t method, const char *service, const void *body, size_t blen)
{
	Ckpt__V1__Request env = CKPT__V1__REQUEST__INIT;
	uint8_t buf[1024];
	size_t n;
	env.method = method;
	env.service = (char *)service;
	env.body.data = (uint8_t *)body;
	env.body.len = blen;
	n = ckpt__v1__request__pack(&env, buf);
	return raw_call(buf, n);
}

START_TEST(rpc_round_trip_succeeds)
{
	ck_assert_int_eq(status_ok(), 0);
}
END_TEST

/* The packed hook: counts its runs and whether the server had run the call yet (gate_open). */
struct packed_seen {
	int ps_runs;
	int ps_served_before;
};

static void
on_packed(void *arg)
{
	struct packed_seen *s = arg;

	s->ps_runs++;
	pthread_mutex_lock(&gate_mtx);
	s->ps_served_before += gate_open;
	pthread_mutex_unlock(&gate_mtx);
}

/*
 * rpc_client_call_packed() tells once that the request is in its message,
 * before the server has it (h_status opens the gate), and the call then
 * succeeds as rpc_client_call() does: the caller may drop the request's
 * bytes from then on (nasc_write.c drops a file's pages).
 */
START_TEST(rpc_packed_is_told_once_before_the_request_is_served)
{
	Ckpt__V1__StatusRequest req = CKPT__V1__STATUS_REQUEST__INIT;
	Ckpt__V1__StatusReply *rep = NULL;
	struct packed_seen seen = { 0, 0 };
	struct rpc_packed packed = { on_packed, &seen };
	struct rpc_error err;

	ck_assert_int_eq(rpc_client_call_packed(cli, M_STATUS, &req.base, &packed, 3000,
	                     (ProtobufCMessage **)&rep, &err),
	    0);
	ck_assert_str_eq(rep->node, "node-under-test");
	rpc_reply_free(&rep->base);
	ck_assert_int_eq(seen.ps_runs, 1);
	ck_assert_int_eq(seen.ps_served_before, 0);
	ck_assert_int_eq(gate_open, 1);
}
END_TEST

START_TEST(rpc_handler_error_reaches_client_with_address)
{
	Ckpt__V1__RestoreRequest req = CKPT__V1__RESTORE_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	struct rpc_error err;
	req.component = "demo_9";
	ck_assert_int_eq(rpc_client_call(cli, M_RESTORE, &req.base, 2000, &rep, &err), -ENOENT);
	ck_assert_ptr_null(rep);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "component demo_9 is not here"));
	ck_assert_ptr_nonnull(strstr(err.re_msg, rpc_server_url(srv)));
	ck_assert_ptr_nonnull(strstr(err.re_msg, "Agent.Restore"));
	ck_assert_str_eq(err.re_reason, "not_here");
	ck_assert(rpc_error_is(&err, "not_here"));
	ck_assert(!rpc_error_is(&err, "stale_epoch"));
	/* A success leaves no reason behind from an earlier failure. */
	ck_assert_int_eq(status_ok(), 0);
}
END_TEST

START_TEST(rpc_unimplemented_method_answers_unimplemented)
{
	Ckpt__V1__CheckpointNowRequest req = CKPT__V1__CHECKPOINT_NOW_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	struct rpc_error err;
	ck_assert_int_eq(rpc_client_call(cli, M_CHECKPOINT_NOW, &req.base, 2000, &rep, &err), -ENOSYS);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__UNIMPLEMENTED);
}
END_TEST

START_TEST(rpc_bad_inputs_get_error_replies_and_server_goes_on)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x01 };
	static const uint8_t wrong_type[] = { 0x08, 0x05 };        /* component (string) as varint */
	static const uint8_t truncated[] = { 0x0a, 0x10, 'd', 'e' }; /* string of 16, 2 present */
	static const struct {
		const char *what;
		int kind; /* 0 raw bytes, 1 envelope */
		uint32_t method;
		const char *service;
		const uint8_t *data;
		size_t len;
		err_code code;
	} cases[] = {
		{ "garbage envelope", 0, 0, "", garbage, sizeof(garbage), CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "empty message", 0, 0, "", NULL, 0, CKPT__V1__CODE__OK /* empty Request = Restore{} */ },
		{ "unknown method", 1, 99, "", NULL, 0, CKPT__V1__CODE__UNIMPLEMENTED },
		{ "wrong service", 1, 3, "ckpt.v1.Nas", NULL, 0, CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "wrong field type", 1, M_RESTORE, "", wrong_type, sizeof(wrong_type),
		    CKPT__V1__CODE__INVALID_ARGUMENT },
		{ "truncated body", 1, M_RESTORE, "", truncated, sizeof(truncated),
		    CKPT__V1__CODE__INVALID_ARGUMENT },
	};
	int bad_expected = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Ckpt__V1__Reply *r = cases[i].kind == 0 ?
		    raw_call(cases[i].data, cases[i].len) :
		    envelope_call(cases[i].method, cases[i].service, cases[i].data, cases[i].len);
		/* An empty Request decodes as Restore{} whose handler says NOT_FOUND. */
		err_code want = i == 1 ? CKPT__V1__CODE__NOT_FOUND : cases[i].code;
		ck_assert_msg(r->code == want, "%s: got %s", cases[i].what, err_code_name(r->code));
		ck_assert_msg(r->code == CKPT__V1__CODE__OK || r->message[0] != '\0', "%s: no message",
		    cases[i].what);
		ck_assert_uint_eq(r->body.len, 0);
		ckpt__v1__reply__free_unpacked(r, NULL);
		if (i != 1)
			bad_expected++;
		ck_assert_int_eq(status_ok(), 0);
	}
	ck_assert_int_eq(atomic_load(&bad_seen), bad_expected);
	struct rpc_server_stats st;
	rpc_server_get_stats(srv, &st);
	ck_assert_uint_eq(st.rss_bad, (uint64_t)bad_expected);
}
END_TEST

START_TEST(rpc_message_over_the_limit_is_answered_with_its_reason)
{
	Ckpt__V1__RestoreRequest req = CKPT__V1__RESTORE_REQUEST__INIT;
	size_t len = 128 * 1024; /* over recv-max (64 KiB), within the slack */
	char *big = malloc(len + 1);
	ProtobufCMessage *rep = NULL;
	struct rpc_error err;

	memset(big, 'a', len);
	big[len] = '\0';
	req.component = big;
	ck_assert_int_eq(rpc_client_call(cli, M_RESTORE, &req.base, 3000, &rep, &err), -ENOSPC);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__RESOURCE_EXHAUSTED);
	ck_assert_str_eq(err.re_reason, "limit:message_size");
	ck_assert_ptr_nonnull(strstr(err.re_msg, "message_size"));
	free(big);
	ck_assert_int_eq(status_ok(), 0);
}
END_TEST

START_TEST(rpc_message_far_over_the_limit_is_dropped_and_server_goes_on)
{
	size_t len = 64 * 1024 + LIMIT_MSG_SLACK + 1024;
	uint8_t *big = calloc(1, len);
	struct rpc_error err;
	void *buf = NULL;
	size_t blen;
	ck_assert_int_eq(rpc_client_call_raw(cli, big, len, 500, &buf, &blen, &err) < 0, 1);
	free(big);
	ck_assert_int_eq(status_ok(), 0);
}
END_TEST

static atomic_int limit_hits;
static char limit_name[64];

static void
on_limit(void *arg, const char *name, const char *msg)
{
	(void)arg;
	(void)msg;
	snprintf(limit_name, sizeof(limit_name), "%s", name);
	atomic_fetch_add(&limit_hits, 1);
}

static struct rpc_server *
limited_server_lengths(unsigned conns, unsigned rps, unsigned burst, size_t max_string,
    size_t max_list)
{
	struct rpc_server_config cfg = {
		.rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = handlers,
		.rs_workers = 2,
		.rs_on_limit = on_limit,
		.rs_max_conns = conns,
		.rs_max_rps = rps,
		.rs_rps_burst = burst,
		.rs_max_string = max_string,
		.rs_max_list = max_list,
	};
	struct rpc_server *s = NULL;

	atomic_store(&limit_hits, 0);
	ck_assert_int_eq(rpc_server_start(&cfg, "tcp://127.0.0.1:0", &s), 0);
	return s;
}

static struct rpc_server *
limited_server(unsigned conns, unsigned rps, unsigned burst)
{
	return limited_server_lengths(conns, rps, burst, 0, 0);
}

static int
status_on(struct rpc_client *c, unsigned timeout_ms, struct rpc_error *err)
{
	Ckpt__V1__StatusRequest req = CKPT__V1__STATUS_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	int rv = rpc_client_call(c, M_STATUS, &req.base, timeout_ms, &rep, err);
	rpc_reply_free(rep);
	return rv;
}

START_TEST(rpc_connection_over_the_cap_is_closed_and_counted)
{
	struct rpc_server *s = limited_server(1, 0, 0);
	struct rpc_client *c1, *c2;
	struct rpc_error err;
	int rv = -1;

	ck_assert_int_eq(rpc_client_open(rpc_server_url(s), &ckpt__v1__agent__descriptor,
	                     RPC_CLIENT_DIAL_NOW, 0, &c1, &err), 0);
	ck_assert_int_eq(status_on(c1, 3000, &err), 0);
	/* The second connection is closed as it opens: its calls find no peer. */
	ck_assert_int_eq(rpc_client_open(rpc_server_url(s), &ckpt__v1__agent__descriptor, 0, 0,
	                     &c2, &err), 0);
	ck_assert_int_ne(status_on(c2, 300, &err), 0);
	for (int i = 0; i < 500 && atomic_load(&limit_hits) == 0; i++)
		util_sleep_ms(10); /* the dialer's first attempt may come later on a busy machine */
	ck_assert_int_ge(atomic_load(&limit_hits), 1);
	ck_assert_str_eq(limit_name, "connections");
	ck_assert_int_eq(status_on(c1, 3000, &err), 0);
	/* Once the first is gone, the second gets in (it redials). */
	rpc_client_close(c1);
	for (int i = 0; i < 50 && rv != 0; i++)
		rv = status_on(c2, 200, &err);
	ck_assert_int_eq(rv, 0);
	rpc_client_close(c2);
	rpc_server_stop(s);
}
END_TEST

START_TEST(rpc_strings_and_lists_over_their_limits_are_refused_at_any_depth)
{
	struct rpc_server *s = limited_server_lengths(0, 0, 0, 300, 4);
	Ckpt__V1__RestoreRequest req = CKPT__V1__RESTORE_REQUEST__INIT;
	Ckpt__V1__Label lab[5], *labp[5];
	ProtobufCMessage *rep = NULL;
	struct rpc_client *c;
	struct rpc_error err;
	char text[400];

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	for (int i = 0; i < 5; i++) {
		ckpt__v1__label__init(&lab[i]);
		lab[i].key = "k";
		lab[i].value = "v";
		labp[i] = &lab[i];
	}
	ck_assert_int_eq(rpc_client_open(rpc_server_url(s), &ckpt__v1__agent__descriptor,
	                     RPC_CLIENT_DIAL_NOW, 0, &c, &err), 0);
	/* Within both: the handler answers. */
	req.component = "c1";
	req.requires = labp;
	req.n_requires = 4;
	ck_assert_int_eq(rpc_client_call(c, M_RESTORE, &req.base, 3000, &rep, &err), -ENOENT);
	/* A string over 300 bytes at the top... */
	req.component = text;
	ck_assert_int_eq(rpc_client_call(c, M_RESTORE, &req.base, 3000, &rep, &err), -ENOSPC);
	ck_assert_str_eq(err.re_reason, "limit:string_length");
	ck_assert_ptr_nonnull(strstr(err.re_msg, "component"));
	/* ... and inside a repeated message. */
	req.component = "c1";
	lab[2].value = text;
	ck_assert_int_eq(rpc_client_call(c, M_RESTORE, &req.base, 3000, &rep, &err), -ENOSPC);
	ck_assert_str_eq(err.re_reason, "limit:string_length");
	ck_assert_ptr_nonnull(strstr(err.re_msg, "value"));
	lab[2].value = "v";
	/* Five entries where four are allowed. */
	req.n_requires = 5;
	ck_assert_int_eq(rpc_client_call(c, M_RESTORE, &req.base, 3000, &rep, &err), -ENOSPC);
	ck_assert_str_eq(err.re_reason, "limit:list_length");
	ck_assert_ptr_nonnull(strstr(err.re_msg, "requires"));
	ck_assert_int_eq(atomic_load(&limit_hits), 3);
	rpc_client_close(c);
	rpc_server_stop(s);
}
END_TEST

START_TEST(rpc_requests_over_the_rate_are_refused_with_their_reason)
{
	struct rpc_server *s = limited_server(0, 1, 1);
	struct rpc_client *c;
	struct rpc_error err;
	int refused = 0, rv;

	ck_assert_int_eq(rpc_client_open(rpc_server_url(s), &ckpt__v1__agent__descriptor,
	                     RPC_CLIENT_DIAL_NOW, 0, &c, &err), 0);
	/* One request a second, no burst: back-to-back calls are refused. */
	for (int i = 0; i < 10; i++) {
		rv = status_on(c, 3000, &err);
		if (rv != 0) {
			ck_assert_int_eq(rv, -ENOSPC);
			ck_assert_int_eq(err.re_code, CKPT__V1__CODE__RESOURCE_EXHAUSTED);
			ck_assert_str_eq(err.re_reason, "limit:requests_per_second");
			ck_assert_ptr_nonnull(strstr(err.re_msg, "requests_per_second"));
			refused++;
		}
	}
	ck_assert_int_ge(refused, 1);
	ck_assert_int_eq(atomic_load(&limit_hits), refused);
	ck_assert_str_eq(limit_name, "requests_per_second");
	rpc_client_close(c);
	rpc_server_stop(s);
}
END_TEST

static void *
stop_caller(void *arg)
{
	Ckpt__V1__StopRequest req = CKPT__V1__STOP_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	struct rpc_error err;
	int *rv = arg;
	*rv = rpc_client_call(cli, M_STOP, &req.base, 8000, &rep, &err);
	rpc_reply_free(rep);
	return NULL;
}

START_TEST(rpc_requests_are_served_concurrently)
{
	pthread_t t;
	int stop_rv = 1;
	ck_assert_int_eq(pthread_create(&t, NULL, stop_caller, &stop_rv), 0);
	util_sleep_ms(100); /* let Stop block in its handler */
	ck_assert_int_eq(status_ok(), 0); /* served while Stop waits; opens the gate */
	pthread_join(t, NULL);
	ck_assert_int_eq(stop_rv, 0);
}
END_TEST

START_TEST(rpc_deadline_is_enforced)
{
	Ckpt__V1__StopRequest req = CKPT__V1__STOP_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	struct rpc_error err;
	ck_assert_int_eq(rpc_client_call(cli, M_STOP, &req.base, 200, &rep, &err), -ETIMEDOUT);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__DEADLINE_EXCEEDED);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "no reply within 200 ms"));
	ck_assert_int_eq(status_ok(), 0); /* opens the gate for the blocked handler */
}
END_TEST

START_TEST(rpc_unreachable_peer_is_a_clear_error)
{
	struct rpc_client *c = NULL;
	struct rpc_error err;
	Ckpt__V1__StatusRequest req = CKPT__V1__STATUS_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	char url[64];

	/* A port nobody listens on: take a free one and close it again. */
	struct rpc_server *tmp;
	struct rpc_server_config cfg = { .rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = handlers };
	ck_assert_int_eq(rpc_server_start(&cfg, "tcp://127.0.0.1:0", &tmp), 0);
	snprintf(url, sizeof(url), "%s", rpc_server_url(tmp));
	rpc_server_stop(tmp);

	ck_assert_int_eq(rpc_client_open(url, &ckpt__v1__agent__descriptor, RPC_CLIENT_DIAL_NOW, 0,
	                     &c, &err),
	    -ECONNREFUSED);
	ck_assert_ptr_nonnull(strstr(err.re_msg, url));
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__UNAVAILABLE);

	ck_assert_int_eq(rpc_client_open(url, &ckpt__v1__agent__descriptor, 0, 0, &c, &err), 0);
	ck_assert_int_eq(rpc_client_call(c, M_STATUS, &req.base, 300, &rep, &err), -ECONNREFUSED);
	ck_assert_ptr_nonnull(strstr(err.re_msg, url));
	ck_assert_ptr_nonnull(strstr(err.re_msg, "UNAVAILABLE"));
	rpc_client_close(c);

	ck_assert_int_eq(rpc_client_open("bogus://x", &ckpt__v1__agent__descriptor, 0, 0, &c, &err),
	    -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "bogus://x"));
}
END_TEST

START_TEST(rpc_call_to_a_refusing_peer_fails_at_once_and_reconnects_later)
{
	struct rpc_server_config cfg = { .rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = handlers };
	Ckpt__V1__StatusRequest req = CKPT__V1__STATUS_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	struct rpc_server *tmp;
	struct rpc_client *c = NULL;
	struct rpc_error err;
	char url[64];
	int rv = -1;

	ck_assert_int_eq(rpc_server_start(&cfg, "tcp://127.0.0.1:0", &tmp), 0);
	snprintf(url, sizeof(url), "%s", rpc_server_url(tmp));
	rpc_server_stop(tmp);
	ck_assert_int_eq(sock_probe(url, 1000), -ECONNREFUSED);
	ck_assert_int_eq(sock_probe("ipc:///nonexistent/ckpt.sock", 1000), -ECONNREFUSED);
	ck_assert_int_eq(sock_probe("inproc://x", 1000), -ENOTSUP);

	/* A long deadline: refused at once (a wait would end in "not connected within"). */
	ck_assert_int_eq(rpc_client_open(url, &ckpt__v1__agent__descriptor, 0, 0, &c, &err), 0);
	ck_assert_int_eq(rpc_client_call(c, M_STATUS, &req.base, 60000, &rep, &err), -ECONNREFUSED);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__UNAVAILABLE);
	ck_assert_msg(strstr(err.re_msg, "connection refused") != NULL, "%s", err.re_msg);
	ck_assert_ptr_nonnull(strstr(err.re_msg, url));

	/* The peer comes up on that address: the same client reaches it. */
	ck_assert_int_eq(rpc_server_start(&cfg, url, &tmp), 0);
	ck_assert_int_eq(sock_probe(url, 1000), 0);
	for (int i = 0; i < 100 && rv != 0; i++) {
		rv = rpc_client_call(c, M_STATUS, &req.base, 5000, &rep, &err);
		if (rv != 0)
			util_sleep_ms(50);
	}
	ck_assert_msg(rv == 0, "%s", err.re_msg);
	rpc_reply_free(rep);
	rpc_server_stop(tmp);
	rpc_client_close(c);
}
END_TEST

START_TEST(rpc_probe_leaves_the_listener_accepting)
{
	/*
	 * nng 1.5.2 stops a listener for good when a connection closes during
	 * the SP handshake (nng issue 1518): a probe that connected and closed
	 * at once left a live server that no new client could reach.
	 */
	static const char *const urls[] = { "ipc", "tcp://127.0.0.1:0" };
	struct rpc_server_config cfg = { .rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = handlers };
	Ckpt__V1__StatusRequest req = CKPT__V1__STATUS_REQUEST__INIT;
	char dir[] = "/tmp/ckpt-test-probe-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(dir));
	for (size_t u = 0; u < sizeof(urls) / sizeof(urls[0]); u++) {
		struct rpc_server *live;
		char url[96];

		if (strcmp(urls[u], "ipc") == 0)
			snprintf(url, sizeof(url), "ipc://%s/probe.sock", dir);
		else
			snprintf(url, sizeof(url), "%s", urls[u]);
		ck_assert_int_eq(rpc_server_start(&cfg, url, &live), 0);
		snprintf(url, sizeof(url), "%s", rpc_server_url(live));
		for (int i = 0; i < 5; i++)
			ck_assert_int_eq(sock_probe(url, 1000), 0);
		/* New clients (new connections) still get in and get answers. */
		for (int i = 0; i < 3; i++) {
			struct rpc_client *c = NULL;
			ProtobufCMessage *rep = NULL;
			struct rpc_error err;

			ck_assert_int_eq(rpc_client_open(url, &ckpt__v1__agent__descriptor, 0, 0, &c,
					     &err), 0);
			ck_assert_msg(rpc_client_call(c, M_STATUS, &req.base, 5000, &rep, &err) == 0,
			    "%s after probes: %s", url, err.re_msg);
			rpc_reply_free(rep);
			rpc_client_close(c);
		}
		rpc_server_stop(live);
	}
	rmdir(dir);
}
END_TEST

START_TEST(rpc_client_refuses_mismatched_request_type)
{
	Ckpt__V1__StopRequest req = CKPT__V1__STOP_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	struct rpc_error err;
	ck_assert_int_eq(rpc_client_call(cli, M_STATUS, &req.base, 200, &rep, &err), -EINVAL);
	ck_assert_int_eq(rpc_client_call(cli, 42, &req.base, 200, &rep, &err), -EINVAL);
}
END_TEST

/* Raw handlers: Status encodes its reply by hand, Restore fails after taking room, Stop answers nothing. */
static int
raw_status(void *arg, struct rpc_call *call, const ProtobufCMessage *req)
{
	static const char node[] = "raw-node";
	uint8_t *p;
	int rv;
	(void)arg;
	(void)req;
	rv = rpc_call_reply_body(call, 2 + sizeof(node) - 1, &p);
	if (rv != 0)
		return rv;
	ck_assert_int_eq(rpc_call_reply_body(call, 1, &p), -EALREADY);
	p[0] = 0x0a; /* StatusReply.node = 1 */
	p[1] = sizeof(node) - 1;
	memcpy(p + 2, node, sizeof(node) - 1);
	return 0;
}

static int
raw_restore(void *arg, struct rpc_call *call, const ProtobufCMessage *req)
{
	uint8_t *p;
	(void)arg;
	(void)req;
	ck_assert_int_eq(rpc_call_reply_body(call, 1 << 20, &p), 0);
	rpc_call_errorf(call, "gave up after taking room");
	return -EIO;
}

static int
raw_stop(void *arg, struct rpc_call *call, const ProtobufCMessage *req)
{
	(void)arg;
	(void)call;
	(void)req;
	return 0;
}

START_TEST(rpc_raw_handler_writes_the_reply_body)
{
	static const rpc_handler_fn none[4] = { NULL };
	static const rpc_raw_handler_fn raw[4] = { raw_restore, raw_stop, NULL, raw_status };
	struct rpc_server_config cfg = {
		.rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = none,
		.rs_raw_handlers = raw,
		.rs_workers = 1,
	};
	Ckpt__V1__StatusRequest sreq = CKPT__V1__STATUS_REQUEST__INIT;
	Ckpt__V1__RestoreRequest rreq = CKPT__V1__RESTORE_REQUEST__INIT;
	Ckpt__V1__StopRequest stop = CKPT__V1__STOP_REQUEST__INIT;
	Ckpt__V1__CheckpointNowRequest now = CKPT__V1__CHECKPOINT_NOW_REQUEST__INIT;
	Ckpt__V1__StatusReply *rep = NULL;
	ProtobufCMessage *any = NULL;
	struct rpc_server *rs;
	struct rpc_client *rc;
	struct rpc_server_stats st;
	struct rpc_error err;

	ck_assert_int_eq(rpc_server_start(&cfg, "tcp://127.0.0.1:0", &rs), 0);
	ck_assert_int_eq(rpc_client_open(rpc_server_url(rs), &ckpt__v1__agent__descriptor,
	                     RPC_CLIENT_DIAL_NOW, 0, &rc, &err),
	    0);
	ck_assert_int_eq(rpc_client_call(rc, M_STATUS, &sreq.base, 3000, (ProtobufCMessage **)&rep,
	                     &err),
	    0);
	ck_assert_str_eq(rep->node, "raw-node");
	rpc_reply_free(&rep->base);
	/* An error after the body was made: the error is answered, the body dropped. */
	rreq.component = "c";
	ck_assert_int_eq(rpc_client_call(rc, M_RESTORE, &rreq.base, 3000, &any, &err), -EIO);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "gave up after taking room"));
	/* No body: an empty reply message. */
	ck_assert_int_eq(rpc_client_call(rc, M_STOP, &stop.base, 3000, &any, &err), 0);
	rpc_reply_free(any);
	/* Neither kind of handler: unimplemented. */
	ck_assert_int_eq(rpc_client_call(rc, M_CHECKPOINT_NOW, &now.base, 3000, &any, &err),
	    -ENOSYS);
	rpc_server_get_stats(rs, &st);
	ck_assert_uint_eq(st.rss_requests, 4);
	ck_assert_uint_eq(st.rss_errors, 2);
	rpc_client_close(rc);
	rpc_server_stop(rs);
}
END_TEST

struct stop_on {
	struct rpc_client *so_cli;
	int so_rv;
};

static void *
stop_caller_on(void *arg)
{
	Ckpt__V1__StopRequest req = CKPT__V1__STOP_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	struct stop_on *so = arg;
	struct rpc_error err;

	so->so_rv = rpc_client_call(so->so_cli, M_STOP, &req.base, 8000, &rep, &err);
	rpc_reply_free(rep);
	return NULL;
}

START_TEST(rpc_slow_methods_leave_the_request_workers_free)
{
	static const bool slow[4] = { [M_STOP] = true };
	struct rpc_server_config cfg = {
		.rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = handlers,
		.rs_workers = 1,
		.rs_slow = slow,
		.rs_slow_workers = 2,
		.rs_slow_queue = 1,
	};
	Ckpt__V1__StopRequest req = CKPT__V1__STOP_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	Ckpt__V1__StatusRequest sreq = CKPT__V1__STATUS_REQUEST__INIT;
	struct rpc_client *other;
	struct stop_on so[3];
	pthread_t t[3];
	struct rpc_server *rs;
	struct rpc_server_stats st;
	struct rpc_error err;
	uint64_t until;

	ck_assert_int_eq(rpc_server_start(&cfg, "tcp://127.0.0.1:0", &rs), 0);
	atomic_store(&stops_in, 0);
	for (int i = 0; i < 3; i++) {
		so[i].so_rv = 1;
		ck_assert_int_eq(rpc_client_open(rpc_server_url(rs), &ckpt__v1__agent__descriptor,
		                     RPC_CLIENT_DIAL_NOW, 0, &so[i].so_cli, &err),
		    0);
		ck_assert_int_eq(pthread_create(&t[i], NULL, stop_caller_on, &so[i]), 0);
		/* Two Stops block in the slow workers, then the third waits in the queue. */
		until = util_now_mono_ms() + 5000;
		do {
			util_sleep_ms(10);
			rpc_server_get_stats(rs, &st);
		} while ((i < 2 ? (unsigned)atomic_load(&stops_in) : st.rss_requests) < (unsigned)i + 1 &&
		    util_now_mono_ms() < until);
	}
	ck_assert_int_eq(atomic_load(&stops_in), 2);
	ck_assert_uint_eq(st.rss_requests, 3);
	/* The queue is full: a fourth is refused at once, by the one request worker. */
	ck_assert_int_eq(rpc_client_open(rpc_server_url(rs), &ckpt__v1__agent__descriptor,
	                     RPC_CLIENT_DIAL_NOW, 0, &other, &err),
	    0);
	ck_assert_int_ne(rpc_client_call(other, M_STOP, &req.base, 3000, &rep, &err), 0);
	ck_assert_int_eq(err.re_code, CKPT__V1__CODE__UNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(err.re_msg, "waiting already"));
	/* The request worker is free: Status is answered, and opens the gate. */
	ck_assert_int_eq(rpc_client_call(other, M_STATUS, &sreq.base, 3000, &rep, &err), 0);
	rpc_reply_free(rep);
	rpc_client_close(other);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(so[i].so_rv, 0);
		rpc_client_close(so[i].so_cli);
	}
	rpc_server_stop(rs);
}
END_TEST

/* ---- deferred calls ---- */

#define HELD_MAX 8
static pthread_mutex_t held_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct rpc_deferred *held[HELD_MAX];
static int held_method[HELD_MAX];
static ProtobufCMessage *held_reply[HELD_MAX];
static int nheld;

/* Status and Restore: deferred, held for the test to finish. */
static int
h_defer(struct rpc_call *call, int method, ProtobufCMessage *reply)
{
	struct rpc_deferred *d;
	int rv = rpc_call_defer(call, &d);

	if (rv != 0)
		return rv;
	pthread_mutex_lock(&held_mtx);
	held_method[nheld] = method;
	held_reply[nheld] = reply;
	held[nheld++] = d;
	pthread_mutex_unlock(&held_mtx);
	return 0;
}

static int
h_defer_status(void *arg, struct rpc_call *call, const ProtobufCMessage *req,
    ProtobufCMessage *reply)
{
	(void)arg;
	(void)req;
	return h_defer(call, M_STATUS, reply);
}

static int
h_defer_restore(void *arg, struct rpc_call *call, const ProtobufCMessage *req,
    ProtobufCMessage *reply)
{
	(void)arg;
	(void)req;
	return h_defer(call, M_RESTORE, reply);
}

static const rpc_handler_fn defer_handlers[] = { h_defer_restore, NULL, NULL, h_defer_status };

/* One worker: every call beyond the first is taken only if deferral freed it. */
static struct rpc_server *
defer_server(void)
{
	struct rpc_server_config cfg = {
		.rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = defer_handlers,
		.rs_workers = 1,
	};
	struct rpc_server *rs;

	nheld = 0;
	ck_assert_int_eq(rpc_server_start(&cfg, "tcp://127.0.0.1:0", &rs), 0);
	return rs;
}

/* Waits until n calls are held (or 5 s). */
static int
held_wait(int n)
{
	uint64_t until = util_now_mono_ms() + 5000;
	int got;

	for (;;) {
		pthread_mutex_lock(&held_mtx);
		got = nheld;
		pthread_mutex_unlock(&held_mtx);
		if (got >= n || util_now_mono_ms() >= until)
			return got;
		util_sleep_ms(5);
	}
}

/* Answers a held call: Status with a reply, Restore with an error and its reason. */
static void
held_finish(int i)
{
	struct rpc_call *call = rpc_deferred_call(held[i]);

	if (held_method[i] == M_STATUS) {
		/* The reply message the handler was given, filled from the call's arena. */
		Ckpt__V1__StatusReply *r = (Ckpt__V1__StatusReply *)held_reply[i];
		r->node = arena_strdup(rpc_call_arena(call), "node-later");
		rpc_deferred_finish(held[i], 0);
	} else {
		rpc_call_errorf(call, "component %s is not here (later)", "late_1");
		rpc_call_reason(call, "not_here");
		rpc_deferred_finish(held[i], -ENOENT);
	}
	held[i] = NULL;
}

struct defer_caller {
	struct rpc_client *dc_cli;
	int dc_method;
	unsigned dc_timeout_ms;
	int dc_rv;
	struct rpc_error dc_err;
	char dc_node[32]; /* Status's reply */
};

static void *
defer_caller_main(void *arg)
{
	struct defer_caller *dc = arg;
	Ckpt__V1__StatusRequest sreq = CKPT__V1__STATUS_REQUEST__INIT;
	Ckpt__V1__RestoreRequest rreq = CKPT__V1__RESTORE_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;

	rreq.component = "late_1";
	dc->dc_rv = rpc_client_call(dc->dc_cli, (unsigned)dc->dc_method,
	    dc->dc_method == M_STATUS ? &sreq.base : &rreq.base, dc->dc_timeout_ms, &rep, &dc->dc_err);
	if (dc->dc_rv == 0 && dc->dc_method == M_STATUS)
		snprintf(dc->dc_node, sizeof(dc->dc_node), "%s",
		    ((Ckpt__V1__StatusReply *)rep)->node);
	rpc_reply_free(rep);
	return NULL;
}

static void
defer_caller_start(struct rpc_server *rs, struct defer_caller *dc, int method, unsigned timeout_ms,
    pthread_t *ret_t)
{
	struct rpc_error err;

	memset(dc, 0, sizeof(*dc));
	dc->dc_method = method;
	dc->dc_timeout_ms = timeout_ms;
	dc->dc_rv = 1;
	ck_assert_int_eq(rpc_client_open(rpc_server_url(rs), &ckpt__v1__agent__descriptor,
	                     RPC_CLIENT_DIAL_NOW, 0, &dc->dc_cli, &err),
	    0);
	ck_assert_int_eq(pthread_create(ret_t, NULL, defer_caller_main, dc), 0);
}

START_TEST(rpc_deferred_calls_are_answered_later_and_free_the_worker)
{
	struct rpc_server *rs = defer_server();
	struct defer_caller dc[3];
	struct rpc_server_stats st;
	pthread_t t[3];

	/* Three calls held at once by a server of one worker. */
	for (int i = 0; i < 3; i++) {
		defer_caller_start(rs, &dc[i], i == 1 ? M_RESTORE : M_STATUS, 5000, &t[i]);
		ck_assert_int_eq(held_wait(i + 1), i + 1);
	}
	/* Answered in another order than they came, from this thread. */
	for (int i = 2; i >= 0; i--)
		held_finish(i);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		rpc_client_close(dc[i].dc_cli);
	}
	ck_assert_int_eq(dc[0].dc_rv, 0);
	ck_assert_int_eq(dc[2].dc_rv, 0);
	ck_assert_str_eq(dc[0].dc_node, "node-later");
	ck_assert_str_eq(dc[2].dc_node, "node-later");
	ck_assert_int_eq(dc[1].dc_rv, -ENOENT);
	ck_assert_int_eq(dc[1].dc_err.re_code, CKPT__V1__CODE__NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(dc[1].dc_err.re_msg, "component late_1 is not here (later)"));
	ck_assert_str_eq(dc[1].dc_err.re_reason, "not_here");
	rpc_server_get_stats(rs, &st);
	ck_assert_uint_eq(st.rss_requests, 3);
	ck_assert_uint_eq(st.rss_errors, 1);
	/* The traded contexts and arenas serve on: a fourth call, held and answered. */
	defer_caller_start(rs, &dc[0], M_STATUS, 5000, &t[0]);
	ck_assert_int_eq(held_wait(4), 4);
	held_finish(3);
	pthread_join(t[0], NULL);
	rpc_client_close(dc[0].dc_cli);
	ck_assert_int_eq(dc[0].dc_rv, 0);
	rpc_server_stop(rs);
}
END_TEST

START_TEST(rpc_deferred_call_whose_caller_went_away_is_dropped)
{
	struct rpc_server *rs = defer_server();
	struct defer_caller dc;
	pthread_t t;

	defer_caller_start(rs, &dc, M_STATUS, 200, &t);
	ck_assert_int_eq(held_wait(1), 1);
	pthread_join(t, NULL);
	ck_assert_int_eq(dc.dc_rv, -ETIMEDOUT);
	rpc_client_close(dc.dc_cli); /* its connection is gone too */
	held_finish(0);
	/* The server goes on: the next caller is answered. */
	defer_caller_start(rs, &dc, M_STATUS, 5000, &t);
	ck_assert_int_eq(held_wait(2), 2);
	held_finish(1);
	pthread_join(t, NULL);
	rpc_client_close(dc.dc_cli);
	ck_assert_int_eq(dc.dc_rv, 0);
	rpc_server_stop(rs);
}
END_TEST

static atomic_int late_finished;

/* Finishes every held call after a while (while the server is stopping). */
static void *
late_finisher(void *arg)
{
	(void)arg;
	util_sleep_ms(200);
	for (int i = 0; i < nheld; i++)
		if (held[i] != NULL)
			held_finish(i);
	atomic_store(&late_finished, 1);
	return NULL;
}

START_TEST(rpc_server_stop_waits_for_deferred_calls)
{
	struct rpc_server *rs = defer_server();
	struct defer_caller dc[2];
	pthread_t t[2], fin;

	for (int i = 0; i < 2; i++) {
		defer_caller_start(rs, &dc[i], i == 0 ? M_STATUS : M_RESTORE, 5000, &t[i]);
		ck_assert_int_eq(held_wait(i + 1), i + 1);
	}
	atomic_store(&late_finished, 0);
	ck_assert_int_eq(pthread_create(&fin, NULL, late_finisher, NULL), 0);
	rpc_server_stop(rs); /* returns once both are finished, and frees them */
	ck_assert_int_eq(atomic_load(&late_finished), 1);
	pthread_join(fin, NULL);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		rpc_client_close(dc[i].dc_cli);
		/* Answered before the socket closed, or cut off by its closing: never hung. */
		ck_assert_int_ne(dc[i].dc_rv, 1);
	}
}
END_TEST


/* Finishes the held calls at the lowest priority (SCHED_IDLE): preempted as soon as it wakes anyone. */
static void *
idle_finisher(void *arg)
{
	struct sched_param sp = { 0 };

	(void)arg;
	(void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	util_sleep_ms(2);
	for (int i = 0; i < nheld; i++)
		if (held[i] != NULL)
			held_finish(i);
	return NULL;
}

/*
 * rpc_deferred_finish() sends without waiting; the send's completion runs
 * on an nng thread, maybe before nng_ctx_send() has returned in the
 * finishing thread. rpc_server_stop() must not close the socket until it
 * has: nng 1.5 frees a socket whose last context a thread still releases
 * (nni_ctx_rele() wakes the closer before destroying the context), and
 * panics in pthread_mutex_lock or touches freed memory. The finishing thread
 * runs at SCHED_IDLE and every thread of the test on one CPU, so that the
 * completion and the stop run while it is still inside nng_ctx_send(); 150
 * rounds of a stop with two calls held.
 */
START_TEST(rpc_server_stop_waits_for_a_deferred_finish_to_leave_nng)
{
	cpu_set_t one;

	/* Before this process's first socket: nng's threads share the CPU too. */
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	ck_assert_int_eq(sched_setaffinity(0, sizeof(one), &one), 0);
	for (int round = 0; round < 150; round++) {
		struct rpc_server *rs = defer_server();
		struct defer_caller dc[2];
		pthread_t t[2], fin;

		for (int i = 0; i < 2; i++) {
			defer_caller_start(rs, &dc[i], i == 0 ? M_STATUS : M_RESTORE, 5000, &t[i]);
			ck_assert_int_eq(held_wait(i + 1), i + 1);
		}
		ck_assert_int_eq(pthread_create(&fin, NULL, idle_finisher, NULL), 0);
		rpc_server_stop(rs);
		pthread_join(fin, NULL);
		for (int i = 0; i < 2; i++) {
			pthread_join(t[i], NULL);
			rpc_client_close(dc[i].dc_cli);
			ck_assert_int_ne(dc[i].dc_rv, 1);
		}
	}
}
END_TEST

/* ---- direct methods (rs_direct) ---- */

static char served_on[16]; /* the name of the thread that ran the last Status */

static int
h_status_where(void *arg, struct rpc_call *call, const ProtobufCMessage *req,
    ProtobufCMessage *reply)
{
	pthread_getname_np(pthread_self(), served_on, sizeof(served_on));
	return h_status(arg, call, req, reply);
}

static const rpc_handler_fn where_handlers[] = { h_restore, h_stop, NULL, h_status_where };

/* Calls Status and Restore on a new client of rs, n times each (served_on: where Status ran). */
static void
direct_calls(struct rpc_server *rs, int n)
{
	Ckpt__V1__StatusRequest sreq = CKPT__V1__STATUS_REQUEST__INIT;
	Ckpt__V1__RestoreRequest rreq = CKPT__V1__RESTORE_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	struct rpc_client *c;
	struct rpc_error err;

	ck_assert_int_eq(rpc_client_open(rpc_server_url(rs), &ckpt__v1__agent__descriptor,
	                     RPC_CLIENT_DIAL_NOW, 0, &c, &err),
	    0);
	rreq.component = "c1";
	for (int i = 0; i < n; i++) {
		served_on[0] = '\0';
		ck_assert_int_eq(rpc_client_call(c, M_STATUS, &sreq.base, 3000, &rep, &err), 0);
		ck_assert_str_eq(((Ckpt__V1__StatusReply *)rep)->node, "node-under-test");
		rpc_reply_free(rep);
		rep = NULL;
		/* An error reply goes out the same way, and the context receives again. */
		ck_assert_int_eq(rpc_client_call(c, M_RESTORE, &rreq.base, 3000, &rep, &err), -ENOENT);
		ck_assert_str_eq(err.re_reason, "not_here");
		ck_assert_ptr_nonnull(strstr(err.re_msg, "component c1 is not here"));
	}
	rpc_client_close(c);
}

START_TEST(rpc_direct_methods_are_served_on_the_thread_that_received_them)
{
	static const bool direct[4] = { [M_RESTORE] = true, [M_STATUS] = true };
	struct rpc_server_config cfg = {
		.rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = where_handlers,
		.rs_workers = 1,
		.rs_direct = direct,
	};
	struct rpc_server_stats st;
	struct rpc_server *rs;

	ck_assert_int_eq(rpc_server_start(&cfg, "tcp://127.0.0.1:0", &rs), 0);
	direct_calls(rs, 3);
	/* nng's thread ("nng:task" in 1.5), not the worker's. */
	ck_assert_str_ne(served_on, "");
	ck_assert_str_ne(served_on, "rpc:worker");
	rpc_server_get_stats(rs, &st);
	ck_assert_uint_eq(st.rss_requests, 6);
	ck_assert_uint_eq(st.rss_errors, 3);
	rpc_server_stop(rs);

	/* Over rs_direct_max (every request is: 8 bytes), the worker serves them. */
	cfg.rs_direct_max = 8;
	ck_assert_int_eq(rpc_server_start(&cfg, "tcp://127.0.0.1:0", &rs), 0);
	direct_calls(rs, 2);
	ck_assert_str_eq(served_on, "rpc:worker");
	rpc_server_stop(rs);
}
END_TEST

START_TEST(rpc_direct_calls_deferred_are_answered_later)
{
	static const bool direct[4] = { [M_RESTORE] = true, [M_STATUS] = true };
	struct rpc_server_config cfg = {
		.rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = defer_handlers,
		.rs_workers = 1,
		.rs_direct = direct,
	};
	struct defer_caller dc[3];
	struct rpc_server *rs;
	pthread_t t[3];

	nheld = 0;
	ck_assert_int_eq(rpc_server_start(&cfg, "tcp://127.0.0.1:0", &rs), 0);
	/* Held at once on one context: each deferral hands the worker a fresh one. */
	for (int i = 0; i < 3; i++) {
		defer_caller_start(rs, &dc[i], i == 1 ? M_RESTORE : M_STATUS, 5000, &t[i]);
		ck_assert_int_eq(held_wait(i + 1), i + 1);
	}
	for (int i = 0; i < 3; i++)
		held_finish(i);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		rpc_client_close(dc[i].dc_cli);
	}
	ck_assert_int_eq(dc[0].dc_rv, 0);
	ck_assert_str_eq(dc[0].dc_node, "node-later");
	ck_assert_int_eq(dc[1].dc_rv, -ENOENT);
	ck_assert_str_eq(dc[1].dc_err.re_reason, "not_here");
	ck_assert_int_eq(dc[2].dc_rv, 0);
	/* The contexts the finished calls gave back serve the next ones. */
	for (int i = 0; i < 3; i++) {
		defer_caller_start(rs, &dc[i], M_STATUS, 5000, &t[i]);
		ck_assert_int_eq(held_wait(4 + i), 4 + i);
	}
	for (int i = 0; i < 3; i++) {
		held_finish(3 + i);
		pthread_join(t[i], NULL);
		rpc_client_close(dc[i].dc_cli);
		ck_assert_int_eq(dc[i].dc_rv, 0);
	}
	rpc_server_stop(rs);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("rpc");
	TCase *tc = tcase_create("rpc");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, rpc_round_trip_succeeds);
	tcase_add_test(tc, rpc_packed_is_told_once_before_the_request_is_served);
	tcase_add_test(tc, rpc_handler_error_reaches_client_with_address);
	tcase_add_test(tc, rpc_unimplemented_method_answers_unimplemented);
	tcase_add_test(tc, rpc_bad_inputs_get_error_replies_and_server_goes_on);
	tcase_add_test(tc, rpc_message_over_the_limit_is_answered_with_its_reason);
	tcase_add_test(tc, rpc_message_far_over_the_limit_is_dropped_and_server_goes_on);
	tcase_add_test(tc, rpc_connection_over_the_cap_is_closed_and_counted);
	tcase_add_test(tc, rpc_requests_over_the_rate_are_refused_with_their_reason);
	tcase_add_test(tc, rpc_strings_and_lists_over_their_limits_are_refused_at_any_depth);
	tcase_add_test(tc, rpc_requests_are_served_concurrently);
	tcase_add_test(tc, rpc_deadline_is_enforced);
	tcase_add_test(tc, rpc_unreachable_peer_is_a_clear_error);
	tcase_add_test(tc, rpc_call_to_a_refusing_peer_fails_at_once_and_reconnects_later);
	tcase_add_test(tc, rpc_probe_leaves_the_listener_accepting);
	tcase_add_test(tc, rpc_client_refuses_mismatched_request_type);
	tcase_add_test(tc, rpc_raw_handler_writes_the_reply_body);
	tcase_add_test(tc, rpc_slow_methods_leave_the_request_workers_free);
	tcase_add_test(tc, rpc_deferred_calls_are_answered_later_and_free_the_worker);
	tcase_add_test(tc, rpc_deferred_call_whose_caller_went_away_is_dropped);
	tcase_add_test(tc, rpc_server_stop_waits_for_deferred_calls);
	tcase_add_test(tc, rpc_server_stop_waits_for_a_deferred_finish_to_leave_nng);
	tcase_add_test(tc, rpc_direct_methods_are_served_on_the_thread_that_received_them);
	tcase_add_test(tc, rpc_direct_calls_deferred_are_answered_later);
	suite_add_tcase(s, tc);
	return test_run(s);
}

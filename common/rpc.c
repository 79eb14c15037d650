#include "rpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "ckpt/v1/auth.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "err.h"
#include "pbv.h"
#include "pbw.h"
#include "sock.h"
#include "util.h"

#define RPC_BODY_TAG 0x1a /* field 3 (body), wire type 2, in Request and Reply */
/* The handshake's methods, as rpc_server_done() names them (never a service's index). */
#define RPC_M_CHALLENGE (-2)
#define RPC_M_PROVE (-3)
#define RPC_REASON_UNAUTHENTICATED "unauthenticated"
#define RPC_REASON_FORBIDDEN "forbidden"

struct rpc_call {
	struct rpc_server *rc_srv;
	struct arena *rc_arena;
	uint64_t rc_t0;          /* monotonic, when the request was received */
	uint64_t rc_deadline_ms; /* monotonic */
	nng_pipe rc_pipe;
	nng_msg *rc_reply; /* rpc_call_reply_body(): the reply, envelope written */
	int rc_method;     /* index in the service, or RPC_M_*, or -1 (not known yet) */
	bool rc_has_peer;  /* rc_peer is the identity proven on rc_pipe */
	struct auth_id rc_peer;
	/* rpc_call_principal(): who the peer limits count against ("" for none) */
	char rc_principal[RPC_PRINCIPAL_MAX];
	/* RPC_REASON_* of a refusal, or NULL (Reply.reason once rpc.proto has it) */
	char rc_err[RPC_ERRMSG_MAX];
	char rc_reason[LIMIT_REPLY_REASON_MAX]; /* Reply.reason, "" for none */
	/*
	 * Where the serving thread keeps the request's context and arena, and
	 * the request's bytes: rpc_call_defer() takes them over (rc_ctx NULL:
	 * the call cannot be deferred, rpc_server_dispatch()).
	 */
	nng_ctx *rc_ctx;
	struct arena **rc_arena_slot;
	nng_msg *rc_req;
	ProtobufCMessage *rc_reply_msg;    /* the handler's reply message */
	struct rpc_deferred *rc_deferred;  /* set once the handler deferred the call */
	/*
	 * A direct call's deferral, set up before its handler runs (which then
	 * cannot fail to defer, and so never waits on the nng thread); NULL
	 * once taken, or for a worker's call.
	 */
	struct rpc_deferred *rc_spare;
};

/*
 * A deferred call (rpc_call_defer()). Between calls it sits on the server's
 * free list with an idle context and an empty arena, which the next
 * deferral trades for the worker's: no context is opened per call.
 */
struct rpc_deferred {
	struct rpc_call d_call;     /* a copy of the call, owning its arena */
	nng_ctx d_ctx;              /* the request's context (idle on the free list) */
	nng_aio *d_aio;
	/*
	 * While finished: 2, one for d_aio's callback and one for the finishing
	 * thread until its nng_ctx_send() has returned (rpc_deferred_put()).
	 */
	unsigned d_refs;             /* set before the send, then dropped under s_dmu */
	struct rpc_deferred *d_next; /* on s_dfree */
};

/*
 * A request worker: a context always receiving, whose requests are served
 * on the nng thread that completes the receive (rs_direct methods) or
 * handed to the worker's thread. Whoever serves a request arms the next
 * receive once the context is free again: only one of them touches w_ctx
 * and w_arena at a time.
 */
struct rpc_worker {
	struct rpc_server *w_srv;
	nng_ctx w_ctx;
	nng_aio *w_aio;       /* receives (callback rpc_worker_cb()); sends a direct reply */
	nng_aio *w_saio;      /* the thread's sends */
	bool w_sending;       /* w_aio carries a direct reply */
	pthread_t w_thread;
	struct arena *w_arena;
	int w_started;
	/* A request for the thread (w_msg received at w_t0), or w_quit; under w_mu. */
	pthread_mutex_t w_mu;
	pthread_cond_t w_cv;
	nng_msg *w_msg;
	uint64_t w_t0;
	bool w_quit;
};

/* A slow request handed over by a request worker, with the context it came on. */
struct rpc_job {
	nng_ctx j_ctx;
	nng_msg *j_msg;
	uint64_t j_t0;
	struct rpc_job *j_next;
};

/* A worker of the slow methods. */
struct rpc_slow {
	struct rpc_server *sl_srv;
	nng_aio *sl_aio;
	pthread_t sl_thread;
	struct arena *sl_arena;
	int sl_started;
};

/*
 * A connection of a server (an nng pipe). Entries are made when a pipe is
 * admitted (ADD_PRE) and dropped when it goes (REM_POST). p_key is who the
 * connection counts as while it has no proven identity (rpc_call_principal()).
 */
struct rpc_peer {
	uint32_t p_id;
	char p_key[RPC_PRINCIPAL_MAX];
	struct rpc_peer *p_next;
};

/*
 * The requests-per-second bucket (limit_bucket_take()) of one principal,
 * shared by all its connections. An entry whose tat has passed is a full
 * bucket, the same as none: such entries are swept when the table grows.
 */
struct rpc_budget {
	char b_key[RPC_PRINCIPAL_MAX];
	uint64_t b_tat; /* GCRA arrival time, ns */
	struct rpc_budget *b_next;
};

#define RPC_PEER_BUCKETS 256u

struct rpc_server {
	struct rpc_server_config s_cfg;
	nng_socket s_sock;
	nng_listener s_listener;
	char s_url[LIMIT_URL_MAX];
	struct rpc_worker *s_workers;
	unsigned s_nworkers;
	atomic_uint_fast64_t s_requests;
	atomic_uint_fast64_t s_bad;
	atomic_uint_fast64_t s_errors;
	atomic_uint_fast64_t s_conns;
	atomic_int s_stopping;
	/* Slow methods: their workers and the queue of what they have to do. */
	struct rpc_slow *s_slow;
	unsigned s_nslow;
	pthread_mutex_t s_qmu;  /* guards the queue */
	pthread_cond_t s_qcv;   /* a job queued, or stopping */
	int s_q_init;
	struct rpc_job *s_qhead, *s_qtail;
	unsigned s_qlen;
	/* rs_metrics' families (NULL without): see rpc_server_config. */
	struct metrics_fam *s_m_requests, *s_m_duration, *s_m_bad, *s_m_limit;
	/* Connections (rpc_peer), by pipe id; s_pmu guards them and s_npeers. */
	pthread_mutex_t s_pmu;
	struct rpc_peer *s_peers[RPC_PEER_BUCKETS];
	unsigned s_npeers;
	/* Request buckets by principal; under s_pmu too. */
	struct rpc_budget *s_budgets[RPC_PEER_BUCKETS];
	unsigned s_nbudgets;
	uint64_t s_rps_ns; /* ns per request token: 1e9 / rs_max_rps */
	struct metrics_fam *s_m_refused, *s_m_handshakes;
	/* With rs_auth: what each connection proved (auth.h). */
	struct auth_pipes *s_pipes;
	/* Deferred calls: s_dmu guards the free list and the count of those in flight. */
	pthread_mutex_t s_dmu;
	pthread_cond_t s_dcv; /* s_ndeferred reached 0 */
	struct rpc_deferred *s_dfree;
	unsigned s_ndeferred;
	/* Loaded from rs_tls's files when the caller gave no rs_auth: s's to free. */
	struct auth_verifier *s_own_v;
	struct auth_cred *s_own_cred;
	/*
	 * A TLS listener: its failed handshakes (tls_listener_failures()),
	 * polled every RPC_TLS_POLL_MS by s_tls_thread; s_tmu guards s_tls_stop.
	 */
	struct metrics_fam *s_m_tls;
	pthread_mutex_t s_tmu;
	pthread_cond_t s_tcv;
	bool s_tls_init;
	bool s_tls_stop;
	bool s_tls_started;
	pthread_t s_tls_thread;
};

/* How often a TLS listener's refused handshakes are read (nng tells them no other way). */
#define RPC_TLS_POLL_MS 1000u

struct rpc_client {
	nng_socket c_sock;
	nng_dialer c_dialer;
	const ProtobufCServiceDescriptor *c_svc;
	char c_url[LIMIT_URL_MAX];
	atomic_int c_pipes;
	/* rpc_client_set_auth(): credentials, and the handshakes made with them. */
	const struct auth_cred *c_cred;
	const char *c_expect;
	struct auth_cred *c_own_cred;   /* loaded from the TLS files: c's to free */
	char c_expect_buf[AUTH_ID_MAX]; /* rpc_client_expect_peer() */
	/* Non-NULL: the server must prove its identity against this CA (auth.proto 1b). */
	const struct auth_verifier *c_verifier;
	struct auth_verifier *c_own_v;  /* loaded from the TLS CA file: c's to free */
	void (*c_on_refused)(void *arg, const char *line, bool first); /* tls_conf's */
	void *c_refused_arg;
	atomic_uint c_reported;    /* c_conns when a server refusal was last reported, or ~0 */
	atomic_uint c_proved_pipe; /* with c_verifier: the connection whose server proved itself */
	pthread_mutex_t c_auth_mu; /* one handshake at a time */
	atomic_uint c_auth_gen;    /* handshakes that succeeded */
	atomic_uint c_conns;       /* connections made so far */
	atomic_uint c_proved;      /* c_conns when the last handshake ended well, or ~0 */
	/* Calls in progress, so that rpc_client_abort() can cancel them. */
	pthread_mutex_t c_mu;
	int c_aborted;
	struct rpc_inflight *c_inflight;
	/* Under c_mu: the contexts of calls that ended well, for the next calls. */
	struct rpc_exch *c_idle;
	unsigned c_nidle;
};

struct rpc_inflight {
	nng_aio *if_aio;
	struct rpc_inflight *if_next;
};

/*
 * A REQ context and its aio, for one call at a time. Kept after a call that
 * ended with its reply (the context is then back to its first state), so
 * that a call does not open and close a context and allocate and free an
 * aio each time: nng takes its global locks for both, which every thread of
 * a process with many clients contends for. A call that failed (timed out,
 * aborted) closes its context.
 */
struct rpc_exch {
	nng_ctx x_ctx;
	nng_aio *x_aio;
	struct rpc_exch *x_next;
};

/* Idle contexts a client keeps: about the calls it makes at once (two batches in flight, a pool). */
#define RPC_IDLE_MAX 8u

/*
 * Messages of RPC_MSG_ROUND and more are allocated in whole multiples of
 * it: the freed buffer of one fits the next of about the same size (a
 * PutChunks of 3.95 MiB, then one of 4.01: each took new heap, and ckptctl
 * put -i of 256 MiB held 22-26 MiB of heap for two or three 4 MiB
 * requests in flight).
 */
#define RPC_MSG_ROUND (1u << 20)

/*
 * Packs header (a Request or Reply without its body) followed by body as
 * field 3, straight into a new nng message: the body is encoded once.
 * round: a request, allocated in whole RPC_MSG_ROUND from that size on (a
 * reply is not: the NAS's GetChunks replies are freed by nng's send, and
 * rounded they made a W1 restore 7% slower than before).
 */
static int
rpc_msg_pack(const ProtobufCMessage *header, const ProtobufCMessage *body, bool round,
    nng_msg **ret_msg)
{
	size_t hlen = protobuf_c_message_get_packed_size(header);
	size_t blen = body != NULL ? protobuf_c_message_get_packed_size(body) : 0;
	size_t total = hlen + (body != NULL ? 1 + pbw_varint_len(blen) + blen : 0);
	size_t cap = !round || total < RPC_MSG_ROUND ? total :
	    (total + RPC_MSG_ROUND - 1) / RPC_MSG_ROUND * RPC_MSG_ROUND;
	nng_msg *m = NULL;
	uint8_t *p;
	int rv;

	rv = nng_msg_alloc(&m, cap);
	if (rv == 0 && cap > total)
		rv = nng_msg_chop(m, cap - total);
	if (rv != 0) {
		if (m != NULL)
			nng_msg_free(m);
		return err_from_nng(rv);
	}
	p = nng_msg_body(m);
	util_prefault(p, total); /* a PutChunks or GetChunks reply: megabytes of fresh heap */
	p += protobuf_c_message_pack(header, p);
	if (body != NULL) {
		*p++ = RPC_BODY_TAG;
		p = pbw_varint_put(p, blen);
		protobuf_c_message_pack(body, p);
	}
	*ret_msg = m;
	return 0;
}

/* Whether the TLS settings name all three files: authentication on (auth.proto). */
static bool
rpc_tls_has_files(const struct tls_conf *t)
{
	return t != NULL && t->tc_ca != NULL && t->tc_ca[0] != '\0' && t->tc_cert != NULL &&
	    t->tc_cert[0] != '\0' && t->tc_key != NULL && t->tc_key[0] != '\0';
}

/* ---- server ---- */

struct arena *
rpc_call_arena(struct rpc_call *call)
{
	return call->rc_arena;
}

unsigned
rpc_call_remaining_ms(const struct rpc_call *call)
{
	uint64_t now = util_now_mono_ms();
	if (now >= call->rc_deadline_ms)
		return 0;
	return (unsigned)(call->rc_deadline_ms - now);
}

nng_pipe
rpc_call_pipe(const struct rpc_call *call)
{
	return call->rc_pipe;
}

const struct auth_id *
rpc_call_peer(const struct rpc_call *call)
{
	return call->rc_has_peer ? &call->rc_peer : NULL;
}

/* The peer's address, for a log line: "127.0.0.1:4242", "[::1]:4242", "ipc". */
static void
rpc_peer_addr(nng_pipe p, char *buf, size_t len)
{
	nng_sockaddr sa;

	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0) {
		snprintf(buf, len, "?");
	} else if (sa.s_family == NNG_AF_INET) {
		const uint8_t *a = (const uint8_t *)&sa.s_in.sa_addr;
		const uint8_t *pt = (const uint8_t *)&sa.s_in.sa_port;
		snprintf(buf, len, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3], pt[0] << 8 | pt[1]);
	} else if (sa.s_family == NNG_AF_INET6) {
		const uint8_t *a = sa.s_in6.sa_addr;
		const uint8_t *pt = (const uint8_t *)&sa.s_in6.sa_port;
		int n = snprintf(buf, len, "[");
		for (int i = 0; i < 16 && n > 0 && (size_t)n < len; i += 2)
			n += snprintf(buf + n, len - (size_t)n, "%s%x", i ? ":" : "", a[i] << 8 | a[i + 1]);
		if (n > 0 && (size_t)n < len)
			snprintf(buf + n, len - (size_t)n, "]:%u", pt[0] << 8 | pt[1]);
	} else if (sa.s_family == NNG_AF_IPC) {
		snprintf(buf, len, "ipc");
	} else {
		snprintf(buf, len, "?");
	}
}

/* The method's name for logs and metrics ("Store", "Auth.Prove", "unknown"). */
static const char *
rpc_method_name(const struct rpc_server *s, int method)
{
	if (method == RPC_M_CHALLENGE)
		return "Auth.Challenge";
	if (method == RPC_M_PROVE)
		return "Auth.Prove";
	if (method >= 0 && (size_t)method < s->s_cfg.rs_service->n_methods)
		return s->s_cfg.rs_service->methods[method].name;
	return "unknown";
}

/*
 * A refusal (reason RPC_REASON_*, the message already in call->rc_err):
 * counted, and reported once per connection and identity.
 */
static void
rpc_refused(struct rpc_server *s, struct rpc_call *call, const char *code, const char *reason)
{
	const char *method = rpc_method_name(s, call->rc_method);
	char who[AUTH_ID_MAX], addr[80], line[RPC_ERRMSG_MAX + 256];

	snprintf(call->rc_reason, sizeof(call->rc_reason), "%s", reason);
	metrics_inc(s->s_m_refused, 1,
	    METRICS_L(s->s_cfg.rs_service->short_name, method, reason));
	if (s->s_cfg.rs_on_refused == NULL || s->s_pipes == NULL ||
	    !auth_pipes_first_refusal(s->s_pipes, nng_pipe_id(call->rc_pipe)))
		return;
	if (call->rc_has_peer)
		auth_id_str(&call->rc_peer, who, sizeof(who));
	else
		snprintf(who, sizeof(who), "(no identity)");
	rpc_peer_addr(call->rc_pipe, addr, sizeof(addr));
	snprintf(line, sizeof(line), "%s %s.%s from %s at %s: %s (further refusals on this "
	    "connection are counted, not logged)", code, s->s_cfg.rs_service->short_name, method,
	    who, addr, call->rc_err);
	s->s_cfg.rs_on_refused(s->s_cfg.rs_arg, line);
}

int
rpc_call_forbid(struct rpc_call *call, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(call->rc_err, sizeof(call->rc_err), fmt, ap);
	va_end(ap);
	rpc_refused(call->rc_srv, call, "PERMISSION_DENIED", RPC_REASON_FORBIDDEN);
	return -EACCES;
}

void
rpc_call_errorf(struct rpc_call *call, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(call->rc_err, sizeof(call->rc_err), fmt, ap);
	va_end(ap);
}

void
rpc_call_reason(struct rpc_call *call, const char *reason)
{
	snprintf(call->rc_reason, sizeof(call->rc_reason), "%s", reason);
}

/* A limit hit: counted, and told to the service (which logs). */
static void
rpc_server_limit_hit(struct rpc_server *s, const char *name, const char *msg)
{
	metrics_inc(s->s_m_limit, 1, METRICS_L(s->s_cfg.rs_service->short_name, name));
	if (s->s_cfg.rs_on_limit != NULL)
		s->s_cfg.rs_on_limit(s->s_cfg.rs_arg, name, msg);
}

int
rpc_call_limitf(struct rpc_call *call, const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(call->rc_err, sizeof(call->rc_err), fmt, ap);
	va_end(ap);
	snprintf(call->rc_reason, sizeof(call->rc_reason), LIMIT_REASON_PREFIX "%s", name);
	if (call->rc_srv != NULL)
		rpc_server_limit_hit(call->rc_srv, name, call->rc_err);
	return -ENOSPC;
}

int
rpc_call_reply_body(struct rpc_call *call, size_t len, uint8_t **ret_body)
{
	Ckpt__V1__Reply hdr = CKPT__V1__REPLY__INIT;
	size_t hlen = protobuf_c_message_get_packed_size(&hdr.base);
	nng_msg *m;
	uint8_t *p;
	int rv;

	if (call->rc_reply != NULL)
		return -EALREADY;
	/* nng 1.5 zeroes every new message: no way around it without patching nng. */
	rv = err_from_nng(nng_msg_alloc(&m, hlen + 1 + pbw_varint_len(len) + len));
	if (rv != 0)
		return rv;
	p = nng_msg_body(m);
	p += protobuf_c_message_pack(&hdr.base, p);
	*p++ = RPC_BODY_TAG;
	p = pbw_varint_put(p, len);
	call->rc_reply = m;
	*ret_body = p;
	return 0;
}

static void
rpc_server_bad(struct rpc_server *s, struct rpc_call *call, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
rpc_server_bad(struct rpc_server *s, struct rpc_call *call, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(call->rc_err, sizeof(call->rc_err), fmt, ap);
	va_end(ap);
	atomic_fetch_add(&s->s_bad, 1);
	metrics_inc(s->s_m_bad, 1, METRICS_L(s->s_cfg.rs_service->short_name));
	if (s->s_cfg.rs_on_bad != NULL)
		s->s_cfg.rs_on_bad(s->s_cfg.rs_arg, call->rc_err);
}

int
rpc_envelope_read(const void *data, size_t len, struct rpc_envelope *ret_env)
{
	struct rpc_envelope e = { 0, 0, (const uint8_t *)"", 0, NULL, 0 };
	struct pbv_field f;
	struct pbv v;
	int rv;

	pbv_init(&v, data, len);
	while ((rv = pbv_next(&v, &f)) == 1) {
		switch (f.pf_num) {
		case 1: /* method */
		case 2: /* timeout_ms */
			if (f.pf_wire != PBV_VARINT)
				return -EPROTO;
			*(f.pf_num == 1 ? &e.en_method : &e.en_timeout_ms) = (uint32_t)f.pf_u64;
			break;
		case 3: /* body */
			if (f.pf_wire != PBV_LEN)
				return -EPROTO;
			e.en_body = f.pf_data;
			e.en_body_len = f.pf_len;
			break;
		case 4: /* service */
			if (f.pf_wire != PBV_LEN)
				return -EPROTO;
			e.en_service = f.pf_data;
			e.en_service_len = f.pf_len;
			break;
		default:
			break;
		}
	}
	if (rv != 0)
		return rv;
	*ret_env = e;
	return 0;
}

/* Whether a service name of len bytes is name. */
static bool
rpc_service_is(const uint8_t *svc, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(svc, name, len) == 0;
}

/*
 * The server's own proof (auth.proto, step 1b) into rep, when the client
 * sent a nonce and the server has an identity; rep->nonce and
 * rep->audience are set.
 */
static int
rpc_auth_server_proof(struct rpc_server *s, struct rpc_call *call,
    const Ckpt__V1__ChallengeRequest *req, Ckpt__V1__ChallengeReply *rep)
{
	const struct auth_cred *cred = s->s_cfg.rs_auth_cred;
	uint8_t *sig;
	size_t n, siglen;
	int rv;

	if (req->client_nonce.len == 0 || cred == NULL || rep->audience[0] == '\0')
		return 0; /* an old client, or nothing to prove: as before */
	if (req->client_nonce.len != AUTH_NONCE_LEN) {
		rpc_call_errorf(call, "a client_nonce of %zu bytes, not %d", req->client_nonce.len,
		    AUTH_NONCE_LEN);
		return -EPERM;
	}
	sig = arena_alloc(call->rc_arena, AUTH_SIG_MAX);
	if (sig == NULL)
		return -ENOMEM;
	rv = auth_sign_server(cred, req->client_nonce.data, rep->nonce.data, rep->audience,
	    strlen(rep->audience), sig, &siglen);
	if (rv != 0) {
		rpc_call_errorf(call, "cannot sign the server's proof: %s", err_str(rv));
		return rv == -EPERM ? -EIO : rv;
	}
	rep->server_chain = (ProtobufCBinaryData *)auth_cred_chain(cred, &n);
	rep->n_server_chain = n;
	rep->server_signature.data = sig;
	rep->server_signature.len = siglen;
	return 0;
}

/* Auth.Challenge: a fresh nonce for the connection, and the server's proof if asked. */
static int
rpc_auth_challenge(struct rpc_server *s, struct rpc_call *call,
    const Ckpt__V1__ChallengeRequest *req, ProtobufCMessage **ret_reply)
{
	Ckpt__V1__ChallengeReply *rep;
	uint8_t *nonce;
	int rv;

	rep = arena_alloc(call->rc_arena, sizeof(*rep));
	nonce = arena_alloc(call->rc_arena, AUTH_NONCE_LEN);
	if (rep == NULL || nonce == NULL)
		return -ENOMEM;
	ckpt__v1__challenge_reply__init(rep);
	rv = auth_pipes_challenge(s->s_pipes, nng_pipe_id(call->rc_pipe), nonce);
	if (rv == -ENOENT) {
		rpc_call_errorf(call, "connection closing");
		return -ECONNRESET;
	}
	if (rv != 0)
		return rv;
	rep->nonce.data = nonce;
	rep->nonce.len = AUTH_NONCE_LEN;
	rep->audience = (char *)(s->s_cfg.rs_auth_cred != NULL ?
	    auth_cred_name(s->s_cfg.rs_auth_cred) : "");
	rv = rpc_auth_server_proof(s, call, req, rep);
	if (rv != 0)
		return rv;
	*ret_reply = &rep->base;
	return 0;
}

/* Auth.Prove: checks the proof against the connection's nonce and binds its identity. */
static int
rpc_auth_prove(struct rpc_server *s, struct rpc_call *call, const Ckpt__V1__ProveRequest *req,
    ProtobufCMessage **ret_reply)
{
	const char *aud = s->s_cfg.rs_auth_cred != NULL ? auth_cred_name(s->s_cfg.rs_auth_cred) : "";
	uint32_t pipe = nng_pipe_id(call->rc_pipe);
	Ckpt__V1__ProveReply *rep;
	struct auth_id id;
	char why[AUTH_ERR_MAX], *name;
	int rv;

	rep = arena_alloc(call->rc_arena, sizeof(*rep));
	name = arena_alloc(call->rc_arena, AUTH_ID_MAX);
	if (rep == NULL || name == NULL)
		return -ENOMEM;
	ckpt__v1__prove_reply__init(rep);
	/* Consumed right or wrong: one guess per challenge. */
	if (auth_pipes_take_nonce(s->s_pipes, pipe, req->nonce.data, req->nonce.len) != 0) {
		rpc_call_errorf(call, "no challenge pending with that nonce on this connection "
		    "(reconnected? ask Auth.Challenge again)");
		return -EPERM;
	}
	rv = auth_verify(s->s_cfg.rs_auth, req->chain, req->n_chain, req->nonce.data, aud,
	    strlen(aud), req->signature.data, req->signature.len, 0, &id, why, sizeof(why));
	if (rv == -EPERM)
		rpc_call_errorf(call, "%s", why);
	if (rv != 0)
		return rv;
	rv = auth_pipes_bind(s->s_pipes, pipe, &id);
	if (rv != 0) {
		rpc_call_errorf(call, "connection closing");
		return -ECONNRESET;
	}
	call->rc_peer = id;
	call->rc_has_peer = true;
	auth_id_str(&id, name, AUTH_ID_MAX);
	rep->identity = name;
	*ret_reply = &rep->base;
	return 0;
}

/* A request to the Auth service (auth.proto), answered by the layer itself. */
static int
rpc_auth_serve(struct rpc_server *s, struct rpc_call *call, const struct rpc_envelope *env,
    ProtobufCMessage **ret_reply)
{
	ProtobufCAllocator *pa = arena_protobuf(call->rc_arena);
	const ProtobufCMessageDescriptor *in;
	ProtobufCMessage *req;
	int rv;

	if (s->s_pipes == NULL) {
		rpc_call_errorf(call, "authentication is off on this server (started without TLS files)");
		return -ENOSYS;
	}
	if (env->en_method > 1) {
		rpc_server_bad(s, call, "unknown method %u of ckpt.v1.Auth", env->en_method);
		return -ENOSYS;
	}
	call->rc_method = env->en_method == 0 ? RPC_M_CHALLENGE : RPC_M_PROVE;
	in = env->en_method == 0 ? &ckpt__v1__challenge_request__descriptor :
	    &ckpt__v1__prove_request__descriptor;
	req = protobuf_c_message_unpack(in, pa, env->en_body_len, env->en_body);
	if (req == NULL) {
		rpc_server_bad(s, call, "undecodable %s request (%zu bytes)",
		    rpc_method_name(s, call->rc_method), env->en_body_len);
		return -EINVAL;
	}
	if (env->en_method == 0) {
		rv = rpc_auth_challenge(s, call, (const Ckpt__V1__ChallengeRequest *)req, ret_reply);
	} else {
		rv = rpc_auth_prove(s, call, (const Ckpt__V1__ProveRequest *)req, ret_reply);
		metrics_inc(s->s_m_handshakes, 1,
		    METRICS_L(s->s_cfg.rs_service->short_name, rv == 0 ? "ok" : "refused"));
		if (rv == -EPERM)
			rpc_refused(s, call, "UNAUTHENTICATED", RPC_REASON_UNAUTHENTICATED);
	}
	return rv;
}

/*
 * With authentication on, the identity proven on the call's connection into
 * call; -EPERM (UNAUTHENTICATED, counted and reported) when there is none.
 */
static int
rpc_auth_check(struct rpc_server *s, struct rpc_call *call)
{
	if (s->s_pipes == NULL)
		return 0;
	if (auth_pipes_get(s->s_pipes, nng_pipe_id(call->rc_pipe), &call->rc_peer) == 0) {
		call->rc_has_peer = true;
		return 0;
	}
	rpc_call_errorf(call, "no identity proven on this connection: authenticate first "
	    "(proto/ckpt/v1/auth.proto: Auth.Challenge, Auth.Prove)");
	rpc_refused(s, call, "UNAUTHENTICATED", RPC_REASON_UNAUTHENTICATED);
	return -EPERM;
}

static uint64_t
rpc_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static struct rpc_peer **
rpc_peer_slot(struct rpc_server *s, uint32_t id)
{
	struct rpc_peer **pp = &s->s_peers[(id * 2654435761u) % RPC_PEER_BUCKETS];

	while (*pp != NULL && (*pp)->p_id != id)
		pp = &(*pp)->p_next;
	return pp;
}

/* FNV-1a of a principal, for its bucket. */
static uint32_t
rpc_key_hash(const char *key)
{
	return util_fnv1a(UTIL_FNV1A_INIT, key, strlen(key));
}

/*
 * Drops the budgets whose buckets are full again (tat passed): they hold
 * nothing a fresh entry would not. Under s_pmu.
 */
static void
rpc_budgets_sweep(struct rpc_server *s, uint64_t now)
{
	for (size_t i = 0; i < RPC_PEER_BUCKETS; i++) {
		struct rpc_budget **bp = &s->s_budgets[i];
		while (*bp != NULL) {
			struct rpc_budget *b = *bp;
			if (b->b_tat <= now) {
				*bp = b->b_next;
				free(b);
				s->s_nbudgets--;
			} else {
				bp = &b->b_next;
			}
		}
	}
}

/*
 * Takes one request from key's bucket: false when it is empty. A budget
 * that cannot be made (no memory) lets the request through. Under s_pmu.
 */
static bool
rpc_budget_take(struct rpc_server *s, const char *key, uint64_t now)
{
	struct rpc_budget **bp = &s->s_budgets[rpc_key_hash(key) % RPC_PEER_BUCKETS], *b;

	while (*bp != NULL && strcmp((*bp)->b_key, key) != 0)
		bp = &(*bp)->b_next;
	b = *bp;
	if (b == NULL) {
		/* Bounded by the principals active within the last burst: sweep now and then. */
		if (s->s_nbudgets >= 2 * s->s_cfg.rs_max_conns + 64) {
			rpc_budgets_sweep(s, now);
			bp = &s->s_budgets[rpc_key_hash(key) % RPC_PEER_BUCKETS];
			while (*bp != NULL)
				bp = &(*bp)->b_next;
		}
		b = calloc(1, sizeof(*b));
		if (b == NULL)
			return true;
		snprintf(b->b_key, sizeof(b->b_key), "%s", key);
		*bp = b;
		s->s_nbudgets++;
	}
	return limit_bucket_take(&b->b_tat, now, s->s_rps_ns, s->s_cfg.rs_rps_burst);
}

/*
 * The limits on a request as it comes, before it is decoded: its size
 * (nng took up to LIMIT_MSG_SLACK more, so that the caller learns why) and
 * its principal's requests per second (rpc_call_principal(): the proven
 * identity, whatever connection it calls on). A request that came with no
 * pipe (rpc_server_dispatch()) has no principal to count.
 */
static int
rpc_server_admit(struct rpc_server *s, struct rpc_call *call, size_t len)
{
	struct rpc_peer *p;
	uint32_t id = nng_pipe_id(call->rc_pipe);
	bool ok = true;

	call->rc_principal[0] = '\0';
	if (len > s->s_cfg.rs_recv_max)
		return rpc_call_limitf(call, LIMIT_N_MESSAGE_SIZE,
		    "request of %zu bytes is over the limit %s of %zu bytes (the server's "
		    "--recv-max)", len, LIMIT_N_MESSAGE_SIZE, s->s_cfg.rs_recv_max);
	if (id == 0 || id == (uint32_t)-1)
		return 0;
	if (call->rc_has_peer)
		auth_id_str(&call->rc_peer, call->rc_principal, sizeof(call->rc_principal));
	pthread_mutex_lock(&s->s_pmu);
	p = *rpc_peer_slot(s, id);
	if (p != NULL && call->rc_principal[0] == '\0')
		snprintf(call->rc_principal, sizeof(call->rc_principal), "%s", p->p_key);
	if (p != NULL)
		ok = rpc_budget_take(s, call->rc_principal, rpc_now_ns());
	pthread_mutex_unlock(&s->s_pmu);
	if (ok)
		return 0;
	return rpc_call_limitf(call, LIMIT_N_RPS,
	    "more than %u requests per second from %s, all its connections together (limit "
	    "%s): slow down", s->s_cfg.rs_max_rps, call->rc_principal, LIMIT_N_RPS);
}

int
rpc_call_principal(const struct rpc_call *call, char *buf, size_t len)
{
	if (call->rc_principal[0] == '\0')
		return -ENOENT;
	snprintf(buf, len, "%s", call->rc_principal);
	return 0;
}

/*
 * Who an unauthenticated connection counts as: "addr:IP" for TCP from an
 * address other than loopback, else "conn:ID" (loopback and ipc:// are
 * shared by every local process: no address names one peer there).
 */
static void
rpc_peer_key(nng_pipe pipe, char *buf, size_t len)
{
	nng_sockaddr sa;
	char ip[64];

	if (nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) == 0 && sa.s_family == NNG_AF_INET &&
	    (((const uint8_t *)&sa.s_in.sa_addr)[0] != 127) &&
	    inet_ntop(AF_INET, &sa.s_in.sa_addr, ip, sizeof(ip)) != NULL) {
		snprintf(buf, len, "addr:%s", ip);
		return;
	}
	if (nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) == 0 && sa.s_family == NNG_AF_INET6 &&
	    !IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)sa.s_in6.sa_addr) &&
	    !IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)sa.s_in6.sa_addr) &&
	    inet_ntop(AF_INET6, sa.s_in6.sa_addr, ip, sizeof(ip)) != NULL) {
		snprintf(buf, len, "addr:%s", ip);
		return;
	}
	snprintf(buf, len, "conn:%u", nng_pipe_id(pipe));
}

/*
 * A connection starts: admitted into the peer table, or closed at once when
 * rs_max_conns are open (or no memory is left for its entry). false: closed.
 */
static bool
rpc_peer_admit(struct rpc_server *s, nng_pipe pipe)
{
	struct rpc_peer **pp, *p = calloc(1, sizeof(*p));
	char msg[160];
	bool full;

	if (p != NULL)
		rpc_peer_key(pipe, p->p_key, sizeof(p->p_key));
	pthread_mutex_lock(&s->s_pmu);
	full = s->s_npeers >= s->s_cfg.rs_max_conns;
	if (!full && p != NULL) {
		pp = rpc_peer_slot(s, nng_pipe_id(pipe));
		p->p_id = nng_pipe_id(pipe);
		p->p_next = *pp;
		*pp = p;
		s->s_npeers++;
		p = NULL;
	}
	pthread_mutex_unlock(&s->s_pmu);
	if (!full && p == NULL)
		return true;
	free(p);
	nng_pipe_close(pipe);
	if (full) {
		snprintf(msg, sizeof(msg), "connection closed as it opened: %u open already (limit %s)",
		    s->s_cfg.rs_max_conns, LIMIT_N_CONNECTIONS);
		rpc_server_limit_hit(s, LIMIT_N_CONNECTIONS, msg);
	}
	return false;
}

/* A connection ended (or was closed by rpc_peer_admit(), then it has no entry). */
static void
rpc_peer_forget(struct rpc_server *s, uint32_t id)
{
	struct rpc_peer **pp, *p = NULL;

	pthread_mutex_lock(&s->s_pmu);
	pp = rpc_peer_slot(s, id);
	if (*pp != NULL) {
		p = *pp;
		*pp = p->p_next;
		s->s_npeers--;
	}
	pthread_mutex_unlock(&s->s_pmu);
	free(p);
}

/*
 * Every pipe event of the server's socket: nng keeps one callback per event
 * and socket, so whatever else follows a connection's life joins here.
 * ADD_PRE runs before any request of the pipe can arrive. On nng's threads.
 */
static void
rpc_server_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct rpc_server *s = arg;

	/*
	 * With authentication on, the pipe table's entry (and with it any
	 * identity) lives exactly as long as the connection; one the table has
	 * no room for is closed: it could never prove.
	 */
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		atomic_fetch_add(&s->s_conns, 1);
		if (rpc_peer_admit(s, pipe) && s->s_pipes != NULL &&
		    auth_pipes_add(s->s_pipes, nng_pipe_id(pipe)) != 0)
			nng_pipe_close(pipe);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		rpc_peer_forget(s, nng_pipe_id(pipe));
		if (s->s_pipes != NULL)
			auth_pipes_drop(s->s_pipes, nng_pipe_id(pipe));
	}
}

/*
 * The string and list lengths of a decoded request, at every depth, against
 * the server's limits: 0, or the limit's name with *ret_field and *ret_len
 * saying where. Bytes fields are bounded by the message size alone.
 */
static const char *
rpc_lengths_check(const struct rpc_server *s, const ProtobufCMessage *m, unsigned depth,
    const char **ret_field, size_t *ret_len)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *hit = NULL;

	if (depth > 32) /* protobuf-c unpacks no deeper than its own recursion allows */
		return NULL;
	for (unsigned i = 0; i < d->n_fields && hit == NULL; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *at = (const char *)m + f->offset;
		size_t n = 1;
		const void *items = at;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)((const char *)m + f->quantifier_offset);
			items = *(void *const *)at;
			if (n > s->s_cfg.rs_max_list) {
				*ret_field = f->name;
				*ret_len = n;
				return LIMIT_N_LIST;
			}
		}
		if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		for (size_t k = 0; k < n && hit == NULL; k++) {
			const void *v = ((const void *const *)items)[k];
			size_t len;
			if (v == NULL)
				continue;
			if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				hit = rpc_lengths_check(s, v, depth + 1, ret_field, ret_len);
				continue;
			}
			len = strnlen(v, s->s_cfg.rs_max_string + 1);
			if (len > s->s_cfg.rs_max_string) {
				*ret_field = f->name;
				*ret_len = len;
				hit = LIMIT_N_STRING;
			}
		}
	}
	return hit;
}

/* Decodes, dispatches and encodes one request. Returns the reply message. */
static int
rpc_server_handle(struct rpc_server *s, struct rpc_call *call, const uint8_t *data, size_t len,
    int *ret_method, int *ret_code, nng_msg **ret_reply)
{
	const ProtobufCServiceDescriptor *svc = s->s_cfg.rs_service;
	ProtobufCAllocator *pa = arena_protobuf(call->rc_arena);
	Ckpt__V1__Reply hdr = CKPT__V1__REPLY__INIT;
	struct rpc_envelope env;
	ProtobufCMessage *req = NULL, *reply = NULL;
	const ProtobufCMethodDescriptor *md;
	rpc_raw_handler_fn raw;
	rpc_decode_fn decode;
	const char *limit, *field = NULL;
	size_t flen = 0;
	unsigned timeout;
	int rv;

	*ret_method = -1;
	call->rc_method = -1;
	if (rpc_envelope_read(data, len, &env) != 0) {
		rpc_server_bad(s, call, "undecodable request envelope (%zu bytes)", len);
		rv = -EINVAL;
		goto out_reply;
	}
	if (rpc_service_is(env.en_service, env.en_service_len,
	    ckpt__v1__auth__descriptor.name)) {
		rv = rpc_auth_serve(s, call, &env, &reply);
		*ret_method = call->rc_method;
		goto out_reply;
	}
	if (env.en_method < svc->n_methods)
		call->rc_method = (int)env.en_method; /* named in a refusal, if any */
	rv = rpc_auth_check(s, call);
	if (rv != 0)
		goto out_reply;
	if (env.en_service_len != 0 && !rpc_service_is(env.en_service, env.en_service_len,
	    svc->name)) {
		rpc_server_bad(s, call, "request for service '%.*s' sent to %s",
		    (int)(env.en_service_len < 64 ? env.en_service_len : 64), (const char *)env.en_service,
		    svc->name);
		rv = -EINVAL;
		goto out_reply;
	}
	if (env.en_method >= svc->n_methods) {
		rpc_server_bad(s, call, "unknown method %u of %s", env.en_method, svc->name);
		rv = -ENOSYS;
		goto out_reply;
	}
	*ret_method = (int)env.en_method;
	md = &svc->methods[env.en_method];
	rv = rpc_server_admit(s, call, len);
	if (rv != 0)
		goto out_reply;
	if (call->rc_has_peer && s->s_cfg.rs_roles != NULL &&
	    !(s->s_cfg.rs_roles[env.en_method] & (1u << call->rc_peer.ai_role))) {
		char who[AUTH_ID_MAX], roles[64];

		auth_id_str(&call->rc_peer, who, sizeof(who));
		auth_mask_str(s->s_cfg.rs_roles[env.en_method], roles, sizeof(roles));
		rv = rpc_call_forbid(call, "%s.%s is not for %s (only %s)", svc->short_name, md->name,
		    who, roles[0] != '\0' ? roles : "nobody");
		goto out_reply;
	}
	raw = s->s_cfg.rs_raw_handlers != NULL ? s->s_cfg.rs_raw_handlers[env.en_method] : NULL;
	if (s->s_cfg.rs_handlers[env.en_method] == NULL && raw == NULL) {
		rpc_call_errorf(call, "%s.%s is not implemented", svc->short_name, md->name);
		rv = -ENOSYS;
		goto out_reply;
	}
	decode = s->s_cfg.rs_decoders != NULL ? s->s_cfg.rs_decoders[env.en_method] : NULL;
	rv = 0;
	if (decode != NULL)
		rv = decode(call, env.en_body, env.en_body_len, &req);
	else if ((req = protobuf_c_message_unpack(md->input, pa, env.en_body_len, env.en_body)) == NULL)
		rv = -EPROTO;
	if (rv == -EPROTO) {
		rpc_server_bad(s, call, "undecodable %s.%s request (%zu bytes)", svc->short_name,
		    md->name, env.en_body_len);
		rv = -EINVAL;
	}
	if (rv != 0)
		goto out_reply;
	limit = rpc_lengths_check(s, req, 0, &field, &flen);
	if (limit != NULL) {
		bool list = strcmp(limit, LIMIT_N_LIST) == 0;
		rv = rpc_call_limitf(call, limit, "%s.%s: field %s holds %zu %s, over the limit %s of "
		    "%zu", svc->short_name, md->name, field, flen, list ? "entries" : "bytes or more",
		    limit, list ? s->s_cfg.rs_max_list : s->s_cfg.rs_max_string);
		goto out_reply;
	}
	timeout = env.en_timeout_ms != 0 ? env.en_timeout_ms : s->s_cfg.rs_default_timeout_ms;
	call->rc_deadline_ms = call->rc_t0 + timeout;
	if (raw != NULL) {
		rv = raw(s->s_cfg.rs_arg, call, req);
		if (rv == 0 && call->rc_reply == NULL) {
			uint8_t *body;
			rv = rpc_call_reply_body(call, 0, &body); /* an empty reply message */
		}
		if (rv == 0) {
			*ret_code = CKPT__V1__CODE__OK;
			*ret_reply = call->rc_reply;
			call->rc_reply = NULL;
			return 0;
		}
		goto out_reply;
	}
	reply = arena_alloc(call->rc_arena, md->output->sizeof_message);
	if (reply == NULL) {
		rv = -ENOMEM;
		goto out_reply;
	}
	protobuf_c_message_init(md->output, reply);
	call->rc_reply_msg = reply;
	rv = s->s_cfg.rs_handlers[env.en_method](s->s_cfg.rs_arg, call, req, reply);
	if (call->rc_deferred != NULL)
		return 1; /* rpc_deferred_finish() answers it */

out_reply:
	if (call->rc_reply != NULL) {
		nng_msg_free(call->rc_reply); /* a raw handler's, when it failed */
		call->rc_reply = NULL;
	}
	hdr.code = err_to_code(rv);
	if (rv != 0) {
		atomic_fetch_add(&s->s_errors, 1);
		hdr.message = call->rc_err[0] != '\0' ? call->rc_err : (char *)err_str(rv);
		if (call->rc_reason[0] != '\0')
			hdr.reason = call->rc_reason;
		reply = NULL;
	}
	*ret_code = (int)hdr.code;
	return rpc_msg_pack(&hdr.base, reply, false, ret_reply);
}

/* A request received at t0 was answered with code: callback and metrics. */
static void
rpc_server_done(struct rpc_server *s, int method, int code, uint64_t t0)
{
	const ProtobufCServiceDescriptor *svc = s->s_cfg.rs_service;
	uint64_t ms = util_now_mono_ms() - t0;
	const char *name = rpc_method_name(s, method);

	if (s->s_cfg.rs_on_done != NULL)
		s->s_cfg.rs_on_done(s->s_cfg.rs_arg, method >= 0 ? method : -1, code, ms * 1000u);
	metrics_inc(s->s_m_requests, 1,
	    METRICS_L(svc->short_name, name, err_code_name((err_code)code)));
	metrics_observe(s->s_m_duration, (double)ms / 1000.0, METRICS_L(svc->short_name, name));
}

/*
 * Handles one request received at t0 and sends the reply on *ctx; frees
 * msg. A handler that deferred the call took msg, *ctx and *arena, and left
 * an idle context and an empty arena in their place.
 */
static void
rpc_serve_one(struct rpc_server *s, struct arena **arena, nng_ctx *ctx, nng_aio *aio,
    nng_msg *msg, uint64_t t0)
{
	struct rpc_call call = { .rc_srv = s, .rc_arena = *arena, .rc_t0 = t0 };
	nng_msg *reply = NULL;
	int rv, method, code;

	call.rc_pipe = nng_msg_get_pipe(msg);
	call.rc_deadline_ms = t0 + s->s_cfg.rs_default_timeout_ms;
	call.rc_ctx = ctx;
	call.rc_arena_slot = arena;
	call.rc_req = msg;
	rv = rpc_server_handle(s, &call, nng_msg_body(msg), nng_msg_len(msg), &method, &code,
	    &reply);
	if (rv > 0)
		return; /* deferred */
	nng_msg_free(msg);
	if (rv == 0) {
		nng_aio_set_msg(aio, reply);
		nng_ctx_send(*ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0)
			nng_msg_free(reply);
	}
	rpc_server_done(s, method, code, t0);
	arena_reset(*arena);
}

/* The method of a request when it is a slow one, else -1. */
static int
rpc_slow_method(const struct rpc_server *s, nng_msg *msg)
{
	struct rpc_envelope env;

	if (s->s_nslow == 0 || rpc_envelope_read(nng_msg_body(msg), nng_msg_len(msg), &env) != 0 ||
	    env.en_method >= s->s_cfg.rs_service->n_methods || !s->s_cfg.rs_slow[env.en_method] ||
	    rpc_service_is(env.en_service, env.en_service_len, ckpt__v1__auth__descriptor.name))
		return -1; /* (the handshake's methods are quick, whatever their index) */
	return (int)env.en_method;
}

/*
 * Hands a slow request, with the worker's context, to the slow workers and
 * gives the worker a fresh context. 0: handed over (or refused with an
 * UNAVAILABLE reply: the queue is full); otherwise the worker serves it
 * itself (no context or memory to spare: slower, never lost).
 */
static int
rpc_slow_hand_off(struct rpc_worker *w, int method, nng_msg *msg, uint64_t t0)
{
	struct rpc_server *s = w->w_srv;
	struct rpc_job *job;
	nng_ctx fresh;
	bool full;
	int rv;

	pthread_mutex_lock(&s->s_qmu);
	full = s->s_qlen >= s->s_cfg.rs_slow_queue;
	pthread_mutex_unlock(&s->s_qmu);
	if (full) {
		Ckpt__V1__Reply hdr = CKPT__V1__REPLY__INIT;
		char text[RPC_ERRMSG_MAX];
		nng_msg *reply = NULL;

		snprintf(text, sizeof(text), "%u long requests are waiting already: try again later",
		    s->s_cfg.rs_slow_queue);
		hdr.code = CKPT__V1__CODE__UNAVAILABLE;
		hdr.message = text;
		atomic_fetch_add(&s->s_errors, 1);
		nng_msg_free(msg);
		if (rpc_msg_pack(&hdr.base, NULL, false, &reply) == 0) {
			nng_aio_set_msg(w->w_saio, reply);
			nng_ctx_send(w->w_ctx, w->w_saio);
			nng_aio_wait(w->w_saio);
			if (nng_aio_result(w->w_saio) != 0)
				nng_msg_free(reply);
		}
		rpc_server_done(s, method, (int)hdr.code, t0);
		return 0;
	}
	job = malloc(sizeof(*job));
	if (job == NULL)
		return -ENOMEM;
	rv = err_from_nng(nng_ctx_open(&fresh, s->s_sock));
	if (rv != 0) {
		free(job);
		return rv;
	}
	job->j_ctx = w->w_ctx;
	job->j_msg = msg;
	job->j_t0 = t0;
	job->j_next = NULL;
	w->w_ctx = fresh;
	pthread_mutex_lock(&s->s_qmu);
	if (s->s_qtail != NULL)
		s->s_qtail->j_next = job;
	else
		s->s_qhead = job;
	s->s_qtail = job;
	s->s_qlen++;
	pthread_cond_signal(&s->s_qcv);
	pthread_mutex_unlock(&s->s_qmu);
	return 0;
}

/* The worker's context receives the next request (rpc_worker_cb() gets it). */
static void
rpc_worker_recv(struct rpc_worker *w)
{
	w->w_sending = false;
	nng_ctx_recv(w->w_ctx, w->w_aio);
}

/* The method of a request to serve on the receiving thread (rs_direct), else -1. */
static int
rpc_direct_method(const struct rpc_server *s, nng_msg *msg)
{
	const bool *direct = s->s_cfg.rs_direct;
	struct rpc_envelope env;

	if (direct == NULL || nng_msg_len(msg) > s->s_cfg.rs_direct_max ||
	    rpc_envelope_read(nng_msg_body(msg), nng_msg_len(msg), &env) != 0 ||
	    env.en_method >= s->s_cfg.rs_service->n_methods || !direct[env.en_method] ||
	    rpc_service_is(env.en_service, env.en_service_len, ckpt__v1__auth__descriptor.name))
		return -1;
	return (int)env.en_method;
}

static int rpc_deferred_take(struct rpc_server *s, struct rpc_deferred **ret_d);
static void rpc_deferred_give(struct rpc_server *s, struct rpc_deferred *d);

/* Hands a received request to the worker's thread. */
static void
rpc_worker_hand(struct rpc_worker *w, nng_msg *msg, uint64_t t0)
{
	pthread_mutex_lock(&w->w_mu);
	w->w_msg = msg;
	w->w_t0 = t0;
	pthread_cond_signal(&w->w_cv);
	pthread_mutex_unlock(&w->w_mu);
}

/*
 * Serves a direct request on the thread that received it. The reply goes
 * out on w_aio, whose completion arms the next receive; a deferred call
 * left an idle context in w_ctx, which receives at once. Its deferral is
 * set up first: when it cannot be (no memory), the request goes to the
 * worker's thread instead, whose handler may wait (a handler that cannot
 * defer answers itself, as the NAS's Store does by waiting for its commit).
 */
static void
rpc_worker_direct(struct rpc_worker *w, nng_msg *msg, uint64_t t0)
{
	struct rpc_server *s = w->w_srv;
	struct rpc_call call = { .rc_srv = s, .rc_arena = w->w_arena, .rc_t0 = t0 };
	nng_msg *reply = NULL;
	int rv, method, code;

	if (rpc_deferred_take(s, &call.rc_spare) != 0) {
		rpc_worker_hand(w, msg, t0);
		return;
	}
	call.rc_pipe = nng_msg_get_pipe(msg);
	call.rc_deadline_ms = t0 + s->s_cfg.rs_default_timeout_ms;
	call.rc_ctx = &w->w_ctx;
	call.rc_arena_slot = &w->w_arena;
	call.rc_req = msg;
	rv = rpc_server_handle(s, &call, nng_msg_body(msg), nng_msg_len(msg), &method, &code,
	    &reply);
	if (call.rc_spare != NULL)
		rpc_deferred_give(s, call.rc_spare); /* not deferred: for the next */
	if (rv > 0) {
		rpc_worker_recv(w); /* deferred */
		return;
	}
	nng_msg_free(msg);
	/* Before the send: its completion may start the next request on w_arena. */
	rpc_server_done(s, method, code, t0);
	arena_reset(w->w_arena);
	if (rv != 0) {
		rpc_worker_recv(w);
		return;
	}
	if (atomic_load(&s->s_stopping)) {
		nng_msg_free(reply);
		return;
	}
	w->w_sending = true;
	nng_aio_set_msg(w->w_aio, reply);
	nng_ctx_send(w->w_ctx, w->w_aio);
}

/*
 * w_aio's callback, on an nng thread: a request received (served here or
 * handed to the worker's thread), or a direct reply sent (the context
 * receives again).
 */
static void
rpc_worker_cb(void *arg)
{
	struct rpc_worker *w = arg;
	struct rpc_server *s = w->w_srv;
	int rv = nng_aio_result(w->w_aio);
	nng_msg *msg;
	uint64_t t0;

	if (w->w_sending) {
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(w->w_aio)); /* the caller went away */
		if (!atomic_load(&s->s_stopping))
			rpc_worker_recv(w);
		return;
	}
	if (rv == NNG_ECLOSED || atomic_load(&s->s_stopping)) {
		if (rv == 0)
			nng_msg_free(nng_aio_get_msg(w->w_aio));
		return; /* rpc_server_stop() ends the thread */
	}
	if (rv != 0) {
		rpc_worker_recv(w);
		return;
	}
	t0 = util_now_mono_ms();
	msg = nng_aio_get_msg(w->w_aio);
	nng_aio_set_msg(w->w_aio, NULL);
	atomic_fetch_add(&s->s_requests, 1);
	if (rpc_direct_method(s, msg) >= 0) {
		rpc_worker_direct(w, msg, t0);
		return;
	}
	rpc_worker_hand(w, msg, t0);
}

/* A worker's thread: the requests its context received that are not served directly. */
static void *
rpc_worker_main(void *arg)
{
	struct rpc_worker *w = arg;
	struct rpc_server *s = w->w_srv;

	for (;;) {
		nng_msg *msg;
		uint64_t t0;
		int method;

		pthread_mutex_lock(&w->w_mu);
		while (w->w_msg == NULL && !w->w_quit)
			pthread_cond_wait(&w->w_cv, &w->w_mu);
		msg = w->w_msg;
		w->w_msg = NULL;
		t0 = w->w_t0;
		pthread_mutex_unlock(&w->w_mu);
		if (msg == NULL)
			break;
		if (atomic_load(&s->s_stopping)) {
			nng_msg_free(msg);
			break;
		}
		method = rpc_slow_method(s, msg);
		if (method < 0 || rpc_slow_hand_off(w, method, msg, t0) != 0)
			rpc_serve_one(s, &w->w_arena, &w->w_ctx, w->w_saio, msg, t0);
		rpc_worker_recv(w);
	}
	return NULL;
}

static void *
rpc_slow_main(void *arg)
{
	struct rpc_slow *sl = arg;
	struct rpc_server *s = sl->sl_srv;

	for (;;) {
		struct rpc_job *job;

		pthread_mutex_lock(&s->s_qmu);
		while (!atomic_load(&s->s_stopping) && s->s_qhead == NULL)
			pthread_cond_wait(&s->s_qcv, &s->s_qmu);
		if (atomic_load(&s->s_stopping)) {
			pthread_mutex_unlock(&s->s_qmu);
			break;
		}
		job = s->s_qhead;
		s->s_qhead = job->j_next;
		if (s->s_qhead == NULL)
			s->s_qtail = NULL;
		s->s_qlen--;
		pthread_mutex_unlock(&s->s_qmu);
		rpc_serve_one(s, &sl->sl_arena, &job->j_ctx, sl->sl_aio, job->j_msg, job->j_t0);
		nng_ctx_close(job->j_ctx);
		free(job);
	}
	return NULL;
}

/* The slow workers and their queue (none when no method is slow). */
static int
rpc_slow_start(struct rpc_server *s)
{
	unsigned n = 0;
	int rv;

	for (size_t i = 0; s->s_cfg.rs_slow != NULL && i < s->s_cfg.rs_service->n_methods; i++)
		n += s->s_cfg.rs_slow[i] ? 1u : 0u;
	if (n == 0)
		return 0;
	if (s->s_cfg.rs_slow_workers == 0)
		s->s_cfg.rs_slow_workers = s->s_cfg.rs_workers;
	if (s->s_cfg.rs_slow_queue == 0)
		s->s_cfg.rs_slow_queue = RPC_SLOW_QUEUE_DEFAULT;
	rv = -pthread_mutex_init(&s->s_qmu, NULL);
	if (rv != 0)
		return rv;
	rv = -pthread_cond_init(&s->s_qcv, NULL);
	if (rv != 0) {
		pthread_mutex_destroy(&s->s_qmu);
		return rv;
	}
	s->s_q_init = 1;
	s->s_slow = calloc(s->s_cfg.rs_slow_workers, sizeof(*s->s_slow));
	if (s->s_slow == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < s->s_cfg.rs_slow_workers; i++) {
		struct rpc_slow *sl = &s->s_slow[i];
		sl->sl_srv = s;
		rv = err_from_nng(nng_aio_alloc(&sl->sl_aio, NULL, NULL));
		if (rv == 0)
			rv = arena_new(&sl->sl_arena);
		if (rv == 0)
			rv = -pthread_create(&sl->sl_thread, NULL, rpc_slow_main, sl);
		s->s_nslow = i + 1;
		if (rv != 0)
			return rv;
		pthread_setname_np(sl->sl_thread, "rpc:slow");
		sl->sl_started = 1;
	}
	return 0;
}

static void
rpc_url_with_port(const char *url, int port, char *out, size_t outlen)
{
	const char *colon = strrchr(url, ':');
	const char *scheme_end = strstr(url, "://");
	if (port > 0 && colon != NULL && scheme_end != NULL && colon > scheme_end + 2)
		snprintf(out, outlen, "%.*s:%d", (int)(colon - url), url, port);
	else
		snprintf(out, outlen, "%s", url);
}

/*
 * Handshakes refused on a TLS listener: nng 1.5.2 counts them in the
 * listener's statistics and says nothing else (tls.h), so they are read
 * every RPC_TLS_POLL_MS, counted (ckpt_tls_refused_total{service}) and
 * told through rs_on_refused, one line per burst (tls_watch_poll()).
 */
static void *
rpc_tls_main(void *arg)
{
	struct rpc_server *s = arg;
	char line[LIMIT_URL_MAX + 256];
	struct tls_watch w;
	struct timespec ts;
	bool stop = false;

	tls_watch_init(&w);
	while (!stop) {
		uint64_t fresh;
		bool say;

		pthread_mutex_lock(&s->s_tmu);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += RPC_TLS_POLL_MS / 1000;
		ts.tv_nsec += (long)(RPC_TLS_POLL_MS % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!s->s_tls_stop && pthread_cond_timedwait(&s->s_tcv, &s->s_tmu, &ts) == 0)
			;
		stop = s->s_tls_stop;
		pthread_mutex_unlock(&s->s_tmu);
		/* Stopping: what is held is told now. */
		fresh = tls_watch_poll(&w, s->s_listener, s->s_url, util_now_mono_ms(), stop, line,
		    sizeof(line), &say);
		if (fresh > 0)
			metrics_inc(s->s_m_tls, (double)fresh, METRICS_L(s->s_cfg.rs_service->short_name));
		if (say && s->s_cfg.rs_on_refused != NULL)
			s->s_cfg.rs_on_refused(s->s_cfg.rs_arg, line);
	}
	return NULL;
}

static int
rpc_tls_start(struct rpc_server *s)
{
	pthread_condattr_t ca;
	int rv;

	if (s->s_cfg.rs_metrics != NULL) {
		rv = metrics_add_family(s->s_cfg.rs_metrics, METRICS_COUNTER, "ckpt_tls_refused_total",
		    "TLS handshakes refused on the service's listener (no client certificate, one "
		    "not signed by the CA, expired, or no TLS); read from nng's statistics every "
		    "second", "service", NULL, 0, &s->s_m_tls);
		if (rv == 0) /* at 0 from the start: an alert on its rate needs the series */
			rv = metrics_inc(s->s_m_tls, 0, METRICS_L(s->s_cfg.rs_service->short_name));
		if (rv != 0)
			return rv;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->s_tcv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&s->s_tmu, NULL);
	s->s_tls_init = true;
	rv = -pthread_create(&s->s_tls_thread, NULL, rpc_tls_main, s);
	if (rv != 0)
		return rv;
	pthread_setname_np(s->s_tls_thread, "rpc:tls");
	s->s_tls_started = true;
	return 0;
}

/* Stops the poller (it reports what it held). */
static void
rpc_tls_stop(struct rpc_server *s)
{
	if (!s->s_tls_init)
		return;
	pthread_mutex_lock(&s->s_tmu);
	s->s_tls_stop = true;
	pthread_cond_broadcast(&s->s_tcv);
	pthread_mutex_unlock(&s->s_tmu);
	if (s->s_tls_started)
		pthread_join(s->s_tls_thread, NULL);
	s->s_tls_started = false;
	pthread_cond_destroy(&s->s_tcv);
	pthread_mutex_destroy(&s->s_tmu);
	s->s_tls_init = false;
}

/* The families of rs_metrics (none without). Several servers may share them. */
static int
rpc_server_metrics(struct rpc_server *s)
{
	static const char *const names[] = { LIMIT_N_MESSAGE_SIZE, LIMIT_N_CONNECTIONS,
		LIMIT_N_RPS, LIMIT_N_STRING, LIMIT_N_LIST };
	struct metrics *m = s->s_cfg.rs_metrics;
	int rv;

	if (m == NULL)
		return 0;
	rv = metrics_add_family(m, METRICS_COUNTER, "ckpt_rpc_requests_total",
	    "RPC requests answered, by service, method and status code", "service,method,code", NULL,
	    0, &s->s_m_requests);
	if (rv == 0)
		rv = metrics_add_family(m, METRICS_HISTOGRAM, "ckpt_rpc_request_duration_seconds",
		    "Time from receipt of an RPC request to its reply", "service,method",
		    metrics_latency_buckets, metrics_latency_nbuckets, &s->s_m_duration);
	if (rv == 0)
		rv = metrics_add_family(m, METRICS_COUNTER, "ckpt_rpc_bad_requests_total",
		    "RPC requests refused as malformed (envelope, service, method or body)", "service",
		    NULL, 0, &s->s_m_bad);
	if (rv == 0) /* at 0 from the start: an alert on its rate needs the series */
		rv = metrics_inc(s->s_m_bad, 0, METRICS_L(s->s_cfg.rs_service->short_name));
	if (rv == 0 && s->s_cfg.rs_auth != NULL)
		rv = metrics_add_family(m, METRICS_COUNTER, "ckpt_rpc_refused_total",
		    "Requests refused for who sent them: reason unauthenticated (no identity proven "
		    "on the connection, or a proof refused) or forbidden (outside the caller's role)",
		    "service,method,reason", NULL, 0, &s->s_m_refused);
	if (rv == 0 && s->s_cfg.rs_auth != NULL)
		rv = metrics_add_family(m, METRICS_COUNTER, "ckpt_rpc_auth_handshakes_total",
		    "Identity proofs (Auth.Prove) received, by result (ok, refused)", "service,result",
		    NULL, 0, &s->s_m_handshakes);
	for (int i = 0; rv == 0 && s->s_cfg.rs_auth != NULL && i < 2; i++)
		rv = metrics_inc(s->s_m_refused, 0, METRICS_L(s->s_cfg.rs_service->short_name, "any",
		    i == 0 ? RPC_REASON_UNAUTHENTICATED : RPC_REASON_FORBIDDEN));
	if (rv == 0)
		rv = metrics_add_family(m, METRICS_COUNTER, "ckpt_rpc_limit_hits_total",
		    "Requests and connections refused by a limit on peers (Reply.reason "
		    "limit:<limit>), by service and limit", "service,limit", NULL, 0, &s->s_m_limit);
	for (size_t i = 0; rv == 0 && i < sizeof(names) / sizeof(names[0]); i++)
		rv = metrics_inc(s->s_m_limit, 0, METRICS_L(s->s_cfg.rs_service->short_name, names[i]));
	return rv;
}

int
rpc_server_start(const struct rpc_server_config *cfg, const char *url,
    struct rpc_server **ret_server)
{
	struct rpc_server *s;
	int rv, port = 0;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->s_cfg = *cfg;
	if (s->s_cfg.rs_recv_max == 0)
		s->s_cfg.rs_recv_max = RPC_RECV_MAX_DEFAULT;
	if (s->s_cfg.rs_workers == 0)
		s->s_cfg.rs_workers = 4;
	if (s->s_cfg.rs_default_timeout_ms == 0)
		s->s_cfg.rs_default_timeout_ms = RPC_TIMEOUT_DEFAULT_MS;
	if (s->s_cfg.rs_direct_max == 0)
		s->s_cfg.rs_direct_max = RPC_DIRECT_MAX_DEFAULT;
	if (s->s_cfg.rs_max_conns == 0)
		s->s_cfg.rs_max_conns = LIMIT_CONNS_DEFAULT;
	if (s->s_cfg.rs_max_rps == 0)
		s->s_cfg.rs_max_rps = LIMIT_RPS_DEFAULT;
	if (s->s_cfg.rs_rps_burst == 0)
		s->s_cfg.rs_rps_burst = s->s_cfg.rs_max_rps;
	if (s->s_cfg.rs_max_string == 0)
		s->s_cfg.rs_max_string = LIMIT_STRING_DEFAULT;
	if (s->s_cfg.rs_max_list == 0)
		s->s_cfg.rs_max_list = LIMIT_LIST_DEFAULT;
	s->s_rps_ns = 1000000000ull / s->s_cfg.rs_max_rps;
	pthread_mutex_init(&s->s_pmu, NULL);
	pthread_mutex_init(&s->s_dmu, NULL);
	pthread_cond_init(&s->s_dcv, NULL);
	/*
	 * TLS files set: authentication on, with the CA and this server's own
	 * certificate (its audience) from them.
	 */
	if (s->s_cfg.rs_auth == NULL && rpc_tls_has_files(s->s_cfg.rs_tls)) {
		char why[AUTH_ERR_MAX];
		rv = auth_verifier_new(s->s_cfg.rs_tls->tc_ca, &s->s_own_v, why, sizeof(why));
		if (rv == 0)
			rv = auth_cred_load(s->s_cfg.rs_tls->tc_cert, s->s_cfg.rs_tls->tc_key,
			    &s->s_own_cred, why, sizeof(why));
		if (rv != 0)
			goto out_free_auth;
		s->s_cfg.rs_auth = s->s_own_v;
		s->s_cfg.rs_auth_cred = s->s_own_cred;
	}
	rv = rpc_server_metrics(s);
	if (rv != 0)
		goto out_free_auth;

	rv = err_from_nng(nng_rep0_open(&s->s_sock));
	if (rv != 0)
		goto out_free_auth;
	/* Before the listener: no connection may start unseen. */
	if (s->s_cfg.rs_auth != NULL)
		rv = auth_pipes_new(&s->s_pipes);
	if (rv == 0)
		rv = err_from_nng(nng_pipe_notify(s->s_sock, NNG_PIPE_EV_ADD_PRE, rpc_server_pipe_cb, s));
	if (rv == 0)
		rv = err_from_nng(nng_pipe_notify(s->s_sock, NNG_PIPE_EV_REM_POST, rpc_server_pipe_cb,
		    s));
	/* Up to LIMIT_MSG_SLACK over the limit is read, to be answered (rpc_server_admit()). */
	if (rv == 0)
		rv = err_from_nng(nng_socket_set_size(s->s_sock, NNG_OPT_RECVMAXSZ,
		    s->s_cfg.rs_recv_max + LIMIT_MSG_SLACK));
	if (rv == 0)
		rv = err_from_nng(nng_listener_create(&s->s_listener, s->s_sock, url));
	if (rv == 0) {
		char why[256];
		rv = tls_listener_setup(s->s_cfg.rs_tls, s->s_listener, url, why, sizeof(why));
	}
	s->s_cfg.rs_tls = NULL; /* not kept: read only here */
	if (rv == 0)
		rv = err_from_nng(nng_listener_start(s->s_listener, 0));
	if (rv != 0)
		goto out_close;
	if ((strncmp(url, "tcp", 3) == 0 || strncmp(url, "tls+tcp", 7) == 0) &&
	    nng_listener_get_int(s->s_listener, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
		port = 0;
	rpc_url_with_port(url, port, s->s_url, sizeof(s->s_url));
	if (tls_url_is_tls(url)) {
		rv = rpc_tls_start(s);
		if (rv != 0)
			goto out_close;
	}

	/* Before the request workers, which hand slow requests to them. */
	rv = rpc_slow_start(s);
	if (rv != 0)
		goto out_close;
	s->s_workers = calloc(s->s_cfg.rs_workers, sizeof(*s->s_workers));
	if (s->s_workers == NULL) {
		rv = -ENOMEM;
		goto out_close;
	}
	for (unsigned i = 0; i < s->s_cfg.rs_workers; i++) {
		struct rpc_worker *w = &s->s_workers[i];
		w->w_srv = s;
		pthread_mutex_init(&w->w_mu, NULL);
		pthread_cond_init(&w->w_cv, NULL);
		s->s_nworkers = i + 1;
		rv = err_from_nng(nng_ctx_open(&w->w_ctx, s->s_sock));
		if (rv == 0)
			rv = err_from_nng(nng_aio_alloc(&w->w_aio, rpc_worker_cb, w));
		if (rv == 0)
			rv = err_from_nng(nng_aio_alloc(&w->w_saio, NULL, NULL));
		if (rv == 0)
			rv = arena_new(&w->w_arena);
		if (rv == 0)
			rv = -pthread_create(&w->w_thread, NULL, rpc_worker_main, w);
		if (rv != 0)
			goto out_close;
		pthread_setname_np(w->w_thread, "rpc:worker");
		w->w_started = 1;
		rpc_worker_recv(w);
	}
	*ret_server = s;
	return 0;

out_close:
	rpc_server_stop(s);
	return rv;

out_free_auth:
	pthread_mutex_destroy(&s->s_pmu);
	pthread_cond_destroy(&s->s_dcv);
	pthread_mutex_destroy(&s->s_dmu);
	auth_cred_free(s->s_own_cred);
	auth_verifier_free(s->s_own_v);
	free(s);
	return rv;
}

void
rpc_limits_apply(const struct rpc_limits_conf *lc, struct rpc_server_config *rc)
{
	rc->rs_max_conns = (unsigned)lc->rl_max_conns;
	rc->rs_max_rps = (unsigned)lc->rl_max_rps;
	rc->rs_max_string = (size_t)lc->rl_max_string;
	rc->rs_max_list = (size_t)lc->rl_max_list;
}

const char *
rpc_server_url(const struct rpc_server *s)
{
	return s->s_url;
}

int
rpc_server_dispatch(struct rpc_server *s, const void *data, size_t len, nng_msg **ret_reply)
{
	struct rpc_call call = { .rc_srv = s };
	int rv, method, code;

	rv = arena_new(&call.rc_arena);
	if (rv != 0)
		return rv;
	atomic_fetch_add(&s->s_requests, 1);
	call.rc_t0 = util_now_mono_ms();
	call.rc_deadline_ms = call.rc_t0 + s->s_cfg.rs_default_timeout_ms;
	rv = rpc_server_handle(s, &call, data, len, &method, &code, ret_reply);
	arena_free(call.rc_arena);
	return rv;
}

void
rpc_server_get_stats(struct rpc_server *s, struct rpc_server_stats *ret_stats)
{
	ret_stats->rss_requests = atomic_load(&s->s_requests);
	ret_stats->rss_bad = atomic_load(&s->s_bad);
	ret_stats->rss_errors = atomic_load(&s->s_errors);
	ret_stats->rss_conns = atomic_load(&s->s_conns);
}

/* ---- deferred calls ---- */

/*
 * Drops a reference to a finished d; the last one gives d and its context
 * back for the next deferral and counts it out (rpc_server_stop() waits for
 * that). Neither d nor the server may be touched after.
 */
static void
rpc_deferred_put(struct rpc_deferred *d)
{
	struct rpc_server *s = d->d_call.rc_srv;

	pthread_mutex_lock(&s->s_dmu);
	if (--d->d_refs == 0) {
		d->d_next = s->s_dfree;
		s->s_dfree = d;
		if (--s->s_ndeferred == 0)
			pthread_cond_broadcast(&s->s_dcv);
	}
	pthread_mutex_unlock(&s->s_dmu);
}

/*
 * d_aio's callback: the reply of a finished call left (or its caller went
 * away). It may run before nng_ctx_send() has returned in the thread that
 * finished the call, which holds its own reference until then: were d
 * counted out here, rpc_server_stop() could close the socket under that
 * thread, and nng 1.5 then frees the socket while the thread still releases
 * its context (a panic in pthread_mutex_lock, or freed memory touched).
 */
static void
rpc_deferred_sent(void *arg)
{
	struct rpc_deferred *d = arg;

	if (nng_aio_result(d->d_aio) != 0 && nng_aio_get_msg(d->d_aio) != NULL)
		nng_msg_free(nng_aio_get_msg(d->d_aio));
	nng_aio_set_msg(d->d_aio, NULL);
	rpc_deferred_put(d);
}

/* A deferred call to be: an idle context of s's socket, an aio, an empty arena. */
static int
rpc_deferred_new(struct rpc_server *s, struct rpc_deferred **ret_d)
{
	struct rpc_deferred *d = calloc(1, sizeof(*d));
	int rv;

	if (d == NULL)
		return -ENOMEM;
	rv = arena_new(&d->d_call.rc_arena);
	if (rv == 0)
		rv = err_from_nng(nng_aio_alloc(&d->d_aio, rpc_deferred_sent, d));
	if (rv == 0)
		rv = err_from_nng(nng_ctx_open(&d->d_ctx, s->s_sock));
	if (rv != 0) {
		if (d->d_aio != NULL)
			nng_aio_free(d->d_aio);
		arena_free(d->d_call.rc_arena);
		free(d);
		return rv;
	}
	*ret_d = d;
	return 0;
}

/* An idle deferral: from the free list, or new. -ENOMEM (or nng's error). */
static int
rpc_deferred_take(struct rpc_server *s, struct rpc_deferred **ret_d)
{
	struct rpc_deferred *d;

	pthread_mutex_lock(&s->s_dmu);
	d = s->s_dfree;
	if (d != NULL)
		s->s_dfree = d->d_next;
	pthread_mutex_unlock(&s->s_dmu);
	if (d == NULL)
		return rpc_deferred_new(s, ret_d);
	*ret_d = d;
	return 0;
}

/* An idle deferral not used, back on the free list. */
static void
rpc_deferred_give(struct rpc_server *s, struct rpc_deferred *d)
{
	pthread_mutex_lock(&s->s_dmu);
	d->d_next = s->s_dfree;
	s->s_dfree = d;
	pthread_mutex_unlock(&s->s_dmu);
}

int
rpc_call_defer(struct rpc_call *call, struct rpc_deferred **ret_d)
{
	struct rpc_server *s = call->rc_srv;
	struct rpc_deferred *d;
	struct arena *spare;
	nng_ctx idle;
	int rv;

	if (call->rc_ctx == NULL || call->rc_reply_msg == NULL || call->rc_deferred != NULL)
		return -EOPNOTSUPP;
	d = call->rc_spare;
	call->rc_spare = NULL;
	if (d == NULL) {
		rv = rpc_deferred_take(s, &d);
		if (rv != 0)
			return rv;
	}
	/* Trade: the call's context and arena for d's idle ones. */
	idle = d->d_ctx;
	spare = d->d_call.rc_arena;
	d->d_call = *call;
	d->d_ctx = *call->rc_ctx;
	*call->rc_ctx = idle;
	*call->rc_arena_slot = spare;
	d->d_call.rc_ctx = NULL;
	d->d_call.rc_arena_slot = NULL;
	d->d_call.rc_deferred = d;
	d->d_next = NULL;
	call->rc_deferred = d;
	call->rc_req = NULL; /* d's now */
	pthread_mutex_lock(&s->s_dmu);
	s->s_ndeferred++;
	pthread_mutex_unlock(&s->s_dmu);
	*ret_d = d;
	return 0;
}

struct rpc_call *
rpc_deferred_call(struct rpc_deferred *d)
{
	return &d->d_call;
}

void
rpc_deferred_finish(struct rpc_deferred *d, int rv)
{
	struct rpc_call *call = &d->d_call;
	struct rpc_server *s = call->rc_srv;
	Ckpt__V1__Reply hdr = CKPT__V1__REPLY__INIT;
	ProtobufCMessage *body = call->rc_reply_msg;
	nng_msg *reply = NULL;

	hdr.code = err_to_code(rv);
	if (rv != 0) {
		atomic_fetch_add(&s->s_errors, 1);
		hdr.message = call->rc_err[0] != '\0' ? call->rc_err : (char *)err_str(rv);
		if (call->rc_reason[0] != '\0')
			hdr.reason = call->rc_reason;
		body = NULL;
	}
	rv = rpc_msg_pack(&hdr.base, body, false, &reply);
	rpc_server_done(s, call->rc_method, (int)hdr.code, call->rc_t0);
	nng_msg_free(call->rc_req);
	call->rc_req = NULL;
	arena_reset(call->rc_arena);
	if (rv != 0) {
		d->d_refs = 1; /* (nothing sent: d is not shared) */
		rpc_deferred_put(d);
		return;
	}
	/*
	 * Sent from this thread without waiting: a REP context's send goes
	 * straight to the connection when it is idle, and d_aio's callback
	 * (rpc_deferred_sent()) runs once the reply is out; to a caller that
	 * went away it is dropped. d goes back once both that callback and
	 * nng_ctx_send() here are done with it.
	 */
	d->d_refs = 2; /* (d is this thread's alone until the send below) */
	nng_aio_set_msg(d->d_aio, reply);
	nng_ctx_send(d->d_ctx, d->d_aio);
	rpc_deferred_put(d);
}

/* rpc_server_stop(): waits for the deferred calls in flight, frees the idle ones. */
static void
rpc_deferred_drain(struct rpc_server *s)
{
	pthread_mutex_lock(&s->s_dmu);
	while (s->s_ndeferred != 0)
		pthread_cond_wait(&s->s_dcv, &s->s_dmu);
	while (s->s_dfree != NULL) {
		struct rpc_deferred *d = s->s_dfree;
		s->s_dfree = d->d_next;
		nng_ctx_close(d->d_ctx);
		nng_aio_free(d->d_aio);
		arena_free(d->d_call.rc_arena);
		free(d);
	}
	pthread_mutex_unlock(&s->s_dmu);
}

void
rpc_server_stop(struct rpc_server *s)
{
	bool closed;

	if (s == NULL)
		return;
	/*
	 * Stop the workers before closing the socket: nng 1.5 may touch a freed
	 * socket when nng_close() races with a worker inside nng_ctx_send().
	 * A stopped aio cancels the pending operation and refuses new ones.
	 */
	atomic_store(&s->s_stopping, 1);
	rpc_tls_stop(s);
	for (unsigned i = 0; i < s->s_nworkers; i++) {
		struct rpc_worker *w = &s->s_workers[i];
		if (w->w_aio != NULL)
			nng_aio_stop(w->w_aio); /* (waits for its callback) */
		if (w->w_saio != NULL)
			nng_aio_stop(w->w_saio);
		pthread_mutex_lock(&w->w_mu);
		w->w_quit = true;
		pthread_cond_signal(&w->w_cv);
		pthread_mutex_unlock(&w->w_mu);
	}
	for (unsigned i = 0; i < s->s_nslow; i++) {
		if (s->s_slow[i].sl_aio != NULL)
			nng_aio_stop(s->s_slow[i].sl_aio);
	}
	if (s->s_q_init) {
		pthread_mutex_lock(&s->s_qmu);
		pthread_cond_broadcast(&s->s_qcv);
		pthread_mutex_unlock(&s->s_qmu);
	}
	for (unsigned i = 0; i < s->s_nworkers; i++) {
		if (s->s_workers[i].w_started)
			pthread_join(s->s_workers[i].w_thread, NULL);
	}
	for (unsigned i = 0; i < s->s_nslow; i++) {
		if (s->s_slow[i].sl_started)
			pthread_join(s->s_slow[i].sl_thread, NULL);
	}
	rpc_deferred_drain(s);
	/* Slow requests nobody started: dropped (their callers time out). */
	while (s->s_qhead != NULL) {
		struct rpc_job *job = s->s_qhead;
		s->s_qhead = job->j_next;
		nng_msg_free(job->j_msg);
		nng_ctx_close(job->j_ctx);
		free(job);
	}
	/* A stuck close may still run the pipe callbacks on s: keep s, its peers and table then. */
	closed = sock_close(s->s_sock) == 0;
	if (closed)
		auth_pipes_free(s->s_pipes);
	for (unsigned i = 0; i < s->s_nworkers; i++) {
		struct rpc_worker *w = &s->s_workers[i];
		if (w->w_aio != NULL)
			nng_aio_free(w->w_aio);
		if (w->w_saio != NULL)
			nng_aio_free(w->w_saio);
		if (w->w_msg != NULL)
			nng_msg_free(w->w_msg); /* handed over as the server stopped */
		arena_free(w->w_arena);
		pthread_cond_destroy(&w->w_cv);
		pthread_mutex_destroy(&w->w_mu);
	}
	free(s->s_workers);
	for (unsigned i = 0; i < s->s_nslow; i++) {
		if (s->s_slow[i].sl_aio != NULL)
			nng_aio_free(s->s_slow[i].sl_aio);
		arena_free(s->s_slow[i].sl_arena);
	}
	free(s->s_slow);
	if (s->s_q_init) {
		pthread_cond_destroy(&s->s_qcv);
		pthread_mutex_destroy(&s->s_qmu);
	}
	if (!closed)
		return;
	for (size_t i = 0; i < RPC_PEER_BUCKETS; i++) {
		while (s->s_peers[i] != NULL) {
			struct rpc_peer *p = s->s_peers[i];
			s->s_peers[i] = p->p_next;
			free(p);
		}
		while (s->s_budgets[i] != NULL) {
			struct rpc_budget *b = s->s_budgets[i];
			s->s_budgets[i] = b->b_next;
			free(b);
		}
	}
	pthread_mutex_destroy(&s->s_pmu);
	pthread_cond_destroy(&s->s_dcv);
	pthread_mutex_destroy(&s->s_dmu);
	auth_cred_free(s->s_own_cred);
	auth_verifier_free(s->s_own_v);
	free(s);
}

/* ---- client ---- */

static void
rpc_client_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct rpc_client *c = arg;
	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_fetch_add(&c->c_conns, 1);
		atomic_fetch_add(&c->c_pipes, 1);
	}
	else if (ev == NNG_PIPE_EV_REM_POST)
		atomic_fetch_sub(&c->c_pipes, 1);
}

/* What a failed dial means to a user: nng's codes name the layer, not the cause. */
static const char *
rpc_dial_cause(const char *url, int rv)
{
	if (tls_url_is_tls(url) && (rv == -EACCES || rv == -EPROTO || rv == -ECONNABORTED ||
	    rv == -ECONNRESET || rv == -ESHUTDOWN || rv == -EPIPE))
		return "the TLS handshake failed (the peer refused our certificate, or its "
		       "certificate is not signed by our --tls-ca, or one of them expired; the "
		       "peer may not speak TLS there)";
	switch (rv) {
	case -ECONNREFUSED:
		return "connection refused (nothing listens on that port)";
	case -EHOSTUNREACH:
		return "address unreachable (no route to that host)";
	case -EDESTADDRREQ:
		return "address invalid (the host name does not resolve?)";
	case -ETIMEDOUT:
		return "no answer (the host is down, or a firewall drops the connection)";
	case -EPROTO:
	case -ECONNABORTED:
	case -ECONNRESET:
	case -ESHUTDOWN:
	case -EPIPE:
		return "the connection was closed before the handshake completed "
		       "(no ckpt service on that port, or the address is not reachable)";
	default:
		return err_str(rv);
	}
}

int
rpc_client_open(const char *url, const ProtobufCServiceDescriptor *service, unsigned flags,
    size_t recv_max, struct rpc_client **ret_client, struct rpc_error *ret_err)
{
	return rpc_client_open_tls(url, service, flags, recv_max, NULL, ret_client, ret_err);
}

int
rpc_client_open_tls(const char *url, const ProtobufCServiceDescriptor *service, unsigned flags,
    size_t recv_max, const struct tls_conf *tls, struct rpc_client **ret_client,
    struct rpc_error *ret_err)
{
	struct rpc_client *c;
	int rv;

	ret_err->re_reason[0] = '\0';
	/* Before anything is opened: a refused address is never dialed. */
	rv = tls_url_check(tls, url, ret_err->re_msg, sizeof(ret_err->re_msg));
	if (rv != 0) {
		ret_err->re_code = err_to_code(rv);
		return rv;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	pthread_mutex_init(&c->c_mu, NULL);
	pthread_mutex_init(&c->c_auth_mu, NULL);
	atomic_store(&c->c_proved, ~0u);
	atomic_store(&c->c_reported, ~0u);
	c->c_svc = service;
	snprintf(c->c_url, sizeof(c->c_url), "%s", url);
	rv = err_from_nng(nng_req0_open(&c->c_sock));
	if (rv != 0) {
		free(c);
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "%s: %s", url, err_str(rv));
		ret_err->re_code = err_to_code(rv);
		return rv;
	}
	nng_pipe_notify(c->c_sock, NNG_PIPE_EV_ADD_POST, rpc_client_pipe_cb, c);
	nng_pipe_notify(c->c_sock, NNG_PIPE_EV_REM_POST, rpc_client_pipe_cb, c);
	nng_socket_set_size(c->c_sock, NNG_OPT_RECVMAXSZ,
	    recv_max != 0 ? recv_max : RPC_RECV_MAX_DEFAULT);
	nng_socket_set_ms(c->c_sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(c->c_sock, NNG_OPT_RECONNMAXT, 2000);
	/* Never resend on a timer: a slow peer must not execute a call twice. */
	nng_socket_set_ms(c->c_sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);

	rv = err_from_nng(nng_dialer_create(&c->c_dialer, c->c_sock, url));
	if (rv != 0) {
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "invalid address '%s': %s", url,
		    err_str(rv));
		rv = -EINVAL;
		goto out_close;
	}
	rv = tls_dialer_setup(tls, c->c_dialer, url, ret_err->re_msg, sizeof(ret_err->re_msg));
	if (rv != 0)
		goto out_close;
	/* The TLS certificate also proves who we are to servers that ask (auth.proto). */
	if (rpc_tls_has_files(tls)) {
		char why[AUTH_ERR_MAX];
		rv = auth_cred_load(tls->tc_cert, tls->tc_key, &c->c_own_cred, why, sizeof(why));
		if (rv != 0) {
			snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "%s", why);
			goto out_close;
		}
		c->c_cred = c->c_own_cred;
		/* ...and with TLS on, the server must prove its own (auth.proto 1b). */
		rv = auth_verifier_new(tls->tc_ca, &c->c_own_v, why, sizeof(why));
		if (rv != 0) {
			snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "%s", why);
			goto out_close;
		}
		c->c_verifier = c->c_own_v;
		c->c_on_refused = tls->tc_on_server_refused;
		c->c_refused_arg = tls->tc_arg;
	}
	if (flags & RPC_CLIENT_DIAL_LATER) {
		*ret_client = c;
		return 0;
	}
	rv = err_from_nng(nng_dialer_start(c->c_dialer,
	    (flags & RPC_CLIENT_DIAL_NOW) ? 0 : NNG_FLAG_NONBLOCK));
	if (rv == -ECONNREFUSED) {
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg),
		    "%s: UNAVAILABLE: connection refused (nothing listens there: down?)", url);
		goto out_close;
	}
	if (rv != 0) {
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "cannot connect to %s: %s", url,
		    rpc_dial_cause(url, rv));
		goto out_close;
	}
	*ret_client = c;
	return 0;

out_close:
	ret_err->re_code = err_to_code(rv);
	nng_close(c->c_sock);
	auth_cred_free(c->c_own_cred);
	auth_verifier_free(c->c_own_v);
	free(c);
	return rv;
}

int
rpc_client_dial(struct rpc_client *c)
{
	return err_from_nng(nng_dialer_start(c->c_dialer, NNG_FLAG_NONBLOCK));
}

const char *
rpc_client_url(const struct rpc_client *c)
{
	return c->c_url;
}

/*
 * Starts a send or receive of aio unless c was aborted. Under c_mu, so an
 * abort either comes before (and the operation never starts) or after (and
 * cancels it).
 */
static int
rpc_client_start(struct rpc_client *c, nng_ctx ctx, nng_aio *aio, int send)
{
	int rv = 0;
	pthread_mutex_lock(&c->c_mu);
	if (c->c_aborted)
		rv = -ECANCELED;
	else if (send)
		nng_ctx_send(ctx, aio);
	else
		nng_ctx_recv(ctx, aio);
	pthread_mutex_unlock(&c->c_mu);
	return rv;
}

static void
rpc_exch_free(struct rpc_exch *x)
{
	nng_aio_free(x->x_aio);
	nng_ctx_close(x->x_ctx);
	free(x);
}

/* An idle context of c, or a new one; me (aio set) then counts among c's calls in progress. */
static int
rpc_exch_take(struct rpc_client *c, struct rpc_inflight *me, struct rpc_exch **ret_x)
{
	struct rpc_exch *x;
	int rv;

	pthread_mutex_lock(&c->c_mu);
	x = c->c_idle;
	if (x != NULL) {
		c->c_idle = x->x_next;
		c->c_nidle--;
		me->if_aio = x->x_aio;
		me->if_next = c->c_inflight;
		c->c_inflight = me;
	}
	pthread_mutex_unlock(&c->c_mu);
	if (x != NULL) {
		*ret_x = x;
		return 0;
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return -ENOMEM;
	rv = err_from_nng(nng_ctx_open(&x->x_ctx, c->c_sock));
	if (rv != 0) {
		free(x);
		return rv;
	}
	rv = err_from_nng(nng_aio_alloc(&x->x_aio, NULL, NULL));
	if (rv != 0) {
		nng_ctx_close(x->x_ctx);
		free(x);
		return rv;
	}
	pthread_mutex_lock(&c->c_mu);
	me->if_aio = x->x_aio;
	me->if_next = c->c_inflight;
	c->c_inflight = me;
	pthread_mutex_unlock(&c->c_mu);
	*ret_x = x;
	return 0;
}

/* Ends the call me: x goes back to c's idle ones after a reply (keep), else is closed. */
static void
rpc_exch_give(struct rpc_client *c, struct rpc_inflight *me, struct rpc_exch *x, bool keep)
{
	pthread_mutex_lock(&c->c_mu);
	for (struct rpc_inflight **p = &c->c_inflight; *p != NULL; p = &(*p)->if_next) {
		if (*p == me) {
			*p = me->if_next;
			break;
		}
	}
	if (keep && c->c_nidle < RPC_IDLE_MAX) {
		x->x_next = c->c_idle;
		c->c_idle = x;
		c->c_nidle++;
		x = NULL;
	}
	pthread_mutex_unlock(&c->c_mu);
	if (x != NULL)
		rpc_exch_free(x);
}

/* Sends msg (taken) and waits for the answer within timeout_ms. */
static int
rpc_client_roundtrip(struct rpc_client *c, nng_msg *msg, unsigned timeout_ms, nng_msg **ret_msg)
{
	uint64_t t0 = util_now_mono_ms(), spent;
	struct rpc_inflight me = { NULL, NULL };
	struct rpc_exch *x;
	nng_aio *aio;
	int rv;

	/*
	 * Not connected: the dialer keeps redialing in the background, and a
	 * send would wait for a connection until the deadline. A peer that
	 * refuses connections (down, nothing listening) is known in
	 * milliseconds: fail now. A peer that does not answer at all (a
	 * partition) or that accepts is waited for as before.
	 */
	if (atomic_load(&c->c_pipes) == 0 &&
	    sock_probe(c->c_url, timeout_ms < RPC_PROBE_MAX_MS ? timeout_ms : RPC_PROBE_MAX_MS) ==
	        -ECONNREFUSED && atomic_load(&c->c_pipes) == 0) {
		nng_msg_free(msg);
		return -ECONNREFUSED;
	}
	rv = rpc_exch_take(c, &me, &x);
	if (rv != 0) {
		nng_msg_free(msg);
		return rv;
	}
	aio = x->x_aio;
	nng_aio_set_timeout(aio, (nng_duration)timeout_ms);
	nng_aio_set_msg(aio, msg);
	rv = rpc_client_start(c, x->x_ctx, aio, 1);
	if (rv == 0) {
		nng_aio_wait(aio);
		rv = err_from_nng(nng_aio_result(aio));
	}
	if (rv != 0) {
		nng_msg_free(msg);
		goto out;
	}
	spent = util_now_mono_ms() - t0;
	nng_aio_set_timeout(aio, spent >= timeout_ms ? 1 : (nng_duration)(timeout_ms - spent));
	rv = rpc_client_start(c, x->x_ctx, aio, 0);
	if (rv == 0) {
		nng_aio_wait(aio);
		rv = err_from_nng(nng_aio_result(aio));
	}
	if (rv == 0) {
		*ret_msg = nng_aio_get_msg(aio);
		nng_aio_set_msg(aio, NULL);
	}
out:
	rpc_exch_give(c, &me, x, rv == 0);
	return rv;
}

static int
rpc_client_fail(struct rpc_client *c, const char *what, int rv, unsigned timeout_ms,
    struct rpc_error *err)
{
	uint64_t tls_failed;

	if (rv == -ETIMEDOUT && atomic_load(&c->c_pipes) == 0 && tls_url_is_tls(c->c_url) &&
	    (tls_failed = tls_dialer_failures(c->c_dialer)) > 0) {
		rv = -ECONNREFUSED;
		snprintf(err->re_msg, sizeof(err->re_msg),
		    "%s: %s: UNAVAILABLE: not connected within %u ms: %" PRIu64 " TLS handshake(s) "
		    "failed (the peer refused our certificate, or its certificate is not signed by "
		    "our --tls-ca, or one of them expired)",
		    c->c_url, what, timeout_ms, tls_failed);
	} else if (rv == -ETIMEDOUT && atomic_load(&c->c_pipes) == 0) {
		rv = -ECONNREFUSED;
		snprintf(err->re_msg, sizeof(err->re_msg),
		    "%s: %s: UNAVAILABLE: not connected within %u ms (peer down or unreachable)",
		    c->c_url, what, timeout_ms);
	} else if (rv == -ETIMEDOUT) {
		snprintf(err->re_msg, sizeof(err->re_msg),
		    "%s: %s: DEADLINE_EXCEEDED: no reply within %u ms", c->c_url, what, timeout_ms);
	} else if (rv == -ECONNREFUSED) {
		snprintf(err->re_msg, sizeof(err->re_msg),
		    "%s: %s: UNAVAILABLE: connection refused (nothing listens there: down?)",
		    c->c_url, what);
	} else {
		snprintf(err->re_msg, sizeof(err->re_msg), "%s: %s: %s", c->c_url, what, err_str(rv));
	}
	err->re_code = err_to_code(rv);
	err->re_reason[0] = '\0';
	return rv;
}

/* Finds code, message, body and reason of an encoded Reply in place; -EPROTO if it is not one. */
static int
rpc_reply_parse(const uint8_t *data, size_t len, err_code *ret_code, struct pbv_field *ret_msg,
    struct pbv_field *ret_body, struct pbv_field *ret_reason)
{
	struct pbv_field f, msg = { 0 }, body = { 0 }, reason = { 0 };
	uint64_t code = 0;
	struct pbv v;
	int rv;

	pbv_init(&v, data, len);
	while ((rv = pbv_next(&v, &f)) == 1) {
		if ((f.pf_num == 1 && f.pf_wire != PBV_VARINT) ||
		    ((f.pf_num >= 2 && f.pf_num <= 4) && f.pf_wire != PBV_LEN))
			return -EPROTO;
		if (f.pf_num == 1)
			code = f.pf_u64;
		else if (f.pf_num == 2)
			msg = f;
		else if (f.pf_num == 3)
			body = f;
		else if (f.pf_num == 4)
			reason = f;
	}
	if (rv != 0)
		return rv;
	*ret_code = (err_code)(int32_t)(uint32_t)code; /* an enum is an int32, as protobuf-c reads it */
	*ret_msg = msg;
	*ret_body = body;
	*ret_reason = reason;
	return 0;
}

/*
 * One exchange: req as method of the service named service, the reply read
 * in place. 0 with the reply's code (*ret_msg, *ret_body inside *ret_rmsg,
 * which the caller frees), or a negative errno described in *ret_err.
 */
static int
rpc_client_exchange(struct rpc_client *c, const char *service, unsigned method,
    const ProtobufCMessage *req, const struct rpc_packed *packed, unsigned timeout_ms,
    const char *what, nng_msg **ret_rmsg, err_code *ret_code, struct pbv_field *ret_msg,
    struct pbv_field *ret_body, struct pbv_field *ret_reason, struct rpc_error *ret_err)
{
	Ckpt__V1__Request env = CKPT__V1__REQUEST__INIT;
	nng_msg *m, *rmsg = NULL;
	int rv;

	env.method = method;
	env.timeout_ms = timeout_ms;
	env.service = (char *)service;
	rv = rpc_msg_pack(&env.base, req, true, &m);
	if (rv != 0)
		return rpc_client_fail(c, what, rv, timeout_ms, ret_err);
	if (packed != NULL)
		packed->rp_fn(packed->rp_arg);
	rv = rpc_client_roundtrip(c, m, timeout_ms, &rmsg);
	if (rv != 0)
		return rpc_client_fail(c, what, rv, timeout_ms, ret_err);
	rv = rpc_reply_parse(nng_msg_body(rmsg), nng_msg_len(rmsg), ret_code, ret_msg, ret_body,
	    ret_reason);
	if (rv != 0) {
		rpc_client_fail(c, what, rv, timeout_ms, ret_err);
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "%s: %s: undecodable reply",
		    c->c_url, what);
		nng_msg_free(rmsg);
		return rv;
	}
	*ret_rmsg = rmsg;
	return 0;
}

/* A non-OK code of a reply into an errno and *err. */
static int
rpc_client_refused(struct rpc_client *c, const char *what, err_code code,
    const struct pbv_field *msg, const struct pbv_field *reason, struct rpc_error *err)
{
	err->re_code = (int)code;
	snprintf(err->re_msg, sizeof(err->re_msg), "%s: %s: %s: %.*s", c->c_url, what,
	    err_code_name(code), (int)(msg->pf_len < RPC_ERRMSG_MAX ? msg->pf_len : RPC_ERRMSG_MAX),
	    (const char *)msg->pf_data);
	snprintf(err->re_reason, sizeof(err->re_reason), "%.*s",
	    (int)(reason->pf_len < LIMIT_REPLY_REASON_MAX ? reason->pf_len : LIMIT_REPLY_REASON_MAX),
	    (const char *)reason->pf_data);
	return err_from_code(code);
}

/* An Auth method (auth.proto) and its reply unpacked (protobuf-c's allocator). */
static int
rpc_client_auth_call(struct rpc_client *c, unsigned method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *out, unsigned timeout_ms, ProtobufCMessage **ret_reply,
    uint32_t *ret_pipe, struct rpc_error *ret_err)
{
	const char *what = method == 0 ? "Auth.Challenge" : "Auth.Prove";
	struct pbv_field msg, body, reason;
	ProtobufCMessage *rep;
	nng_msg *rmsg;
	err_code code;
	int rv;

	rv = rpc_client_exchange(c, ckpt__v1__auth__descriptor.name, method, req, NULL, timeout_ms,
	    what, &rmsg, &code, &msg, &body, &reason, ret_err);
	if (rv != 0)
		return rv;
	if (code != CKPT__V1__CODE__OK) {
		rv = rpc_client_refused(c, what, code, &msg, &reason, ret_err);
	} else if ((rep = protobuf_c_message_unpack(out, NULL, body.pf_len, body.pf_data)) == NULL) {
		ret_err->re_code = CKPT__V1__CODE__INTERNAL;
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "%s: %s: undecodable reply body",
		    c->c_url, what);
		rv = -EPROTO;
	} else {
		*ret_reply = rep;
		*ret_pipe = (uint32_t)nng_pipe_id(nng_msg_get_pipe(rmsg));
	}
	nng_msg_free(rmsg);
	return rv;
}

/*
 * A server that did not prove the identity we need: the call fails
 * UNAUTHENTICATED with the cause, which is reported to the TLS settings'
 * hook (every time, first true once per connection).
 */
static int
rpc_client_server_refused(struct rpc_client *c, struct rpc_error *ret_err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
rpc_client_server_refused(struct rpc_client *c, struct rpc_error *ret_err, const char *fmt, ...)
{
	unsigned conns = atomic_load(&c->c_conns);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ret_err->re_msg, sizeof(ret_err->re_msg), fmt, ap);
	va_end(ap);
	ret_err->re_code = CKPT__V1__CODE__UNAUTHENTICATED;
	snprintf(ret_err->re_reason, sizeof(ret_err->re_reason), "%s", RPC_REASON_UNAUTHENTICATED);
	if (c->c_on_refused != NULL)
		c->c_on_refused(c->c_refused_arg, ret_err->re_msg,
		    atomic_exchange(&c->c_reported, conns) != conns);
	return -EPERM;
}

/*
 * The server's proof (auth.proto, step 1b) in its Challenge reply, against
 * c's CA, the nonce we sent, and the identity we expect (if we know it).
 */
static int
rpc_client_check_server(struct rpc_client *c, const Ckpt__V1__ChallengeReply *ch,
    const uint8_t cnonce[AUTH_NONCE_LEN], struct rpc_error *ret_err)
{
	char why[AUTH_ERR_MAX], name[AUTH_ID_MAX];
	struct auth_id id;
	int rv;

	if (ch->n_server_chain == 0 || ch->server_signature.len == 0)
		return rpc_client_server_refused(c, ret_err, "server at %s sent no proof of its "
		    "identity (claims '%.80s'; an old server, or not a ckpt server): refused with "
		    "TLS on (auth.proto 1b)", c->c_url, ch->audience);
	rv = auth_verify_server(c->c_verifier, ch->server_chain, ch->n_server_chain,
	    cnonce, ch->nonce.data, ch->audience, strlen(ch->audience), ch->server_signature.data,
	    ch->server_signature.len, 0, &id, why, sizeof(why));
	if (rv == -ENOMEM)
		return rv;
	if (rv != 0)
		return rpc_client_server_refused(c, ret_err, "server at %s failed to prove identity "
		    "'%.80s': %s", c->c_url, ch->audience, why);
	auth_id_str(&id, name, sizeof(name));
	if (c->c_expect != NULL && strcmp(name, c->c_expect) != 0)
		return rpc_client_server_refused(c, ret_err, "server at %s proved identity %s, "
		    "expected %s", c->c_url, name, c->c_expect);
	return 0;
}

/* Challenge, then Prove: once, on whatever connection both travel. */
static int
rpc_client_handshake(struct rpc_client *c, unsigned timeout_ms, struct rpc_error *ret_err)
{
	Ckpt__V1__ChallengeRequest creq = CKPT__V1__CHALLENGE_REQUEST__INIT;
	Ckpt__V1__ProveRequest preq = CKPT__V1__PROVE_REQUEST__INIT;
	Ckpt__V1__ChallengeReply *ch = NULL;
	ProtobufCMessage *pr = NULL;
	uint8_t sig[AUTH_SIG_MAX], cnonce[AUTH_NONCE_LEN];
	uint64_t t0 = util_now_mono_ms(), spent;
	uint32_t pipe = 0, prove_pipe = 0;
	size_t siglen, n;
	int rv;

	if (c->c_verifier != NULL) {
		rv = auth_nonce(cnonce);
		if (rv != 0)
			return rpc_client_fail(c, "Auth.Challenge", rv, timeout_ms, ret_err);
		creq.client_nonce.data = cnonce;
		creq.client_nonce.len = sizeof(cnonce);
	}
	rv = rpc_client_auth_call(c, 0, &creq.base, &ckpt__v1__challenge_reply__descriptor,
	    timeout_ms, (ProtobufCMessage **)&ch, &pipe, ret_err);
	if (rv == -ENOSYS && c->c_verifier != NULL)
		return rpc_client_server_refused(c, ret_err, "server at %s does not authenticate "
		    "(Auth.Challenge: UNIMPLEMENTED): refused with TLS on (auth.proto 1b)", c->c_url);
	if (rv != 0)
		return rv;
	if (ch->nonce.len != AUTH_NONCE_LEN) {
		ret_err->re_code = CKPT__V1__CODE__UNAUTHENTICATED;
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg),
		    "%s: Auth.Challenge: a nonce of %zu bytes, not %d", c->c_url, ch->nonce.len,
		    AUTH_NONCE_LEN);
		rv = -EPROTO;
		goto out;
	}
	if (c->c_verifier != NULL) {
		rv = rpc_client_check_server(c, ch, cnonce, ret_err);
		if (rv != 0)
			goto out;
	} else if (c->c_expect != NULL && strcmp(ch->audience, c->c_expect) != 0) {
		ret_err->re_code = CKPT__V1__CODE__PERMISSION_DENIED;
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg),
		    "%s: answers as '%.80s', not as the expected '%s': no proof sent", c->c_url,
		    ch->audience, c->c_expect);
		rv = -EACCES;
		goto out;
	}
	rv = auth_sign(c->c_cred, ch->nonce.data, ch->audience, strlen(ch->audience), sig, &siglen);
	if (rv != 0) {
		ret_err->re_code = err_to_code(rv);
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "%s: cannot sign the challenge: %s",
		    c->c_url, err_str(rv));
		goto out;
	}
	preq.chain = (ProtobufCBinaryData *)auth_cred_chain(c->c_cred, &n);
	preq.n_chain = n;
	preq.nonce = ch->nonce;
	preq.signature.data = sig;
	preq.signature.len = siglen;
	spent = util_now_mono_ms() - t0;
	rv = rpc_client_auth_call(c, 1, &preq.base, &ckpt__v1__prove_reply__descriptor,
	    spent >= timeout_ms ? 1 : (unsigned)(timeout_ms - spent), &pr, &prove_pipe, ret_err);
	rpc_reply_free(pr);
	/*
	 * Both on the connection whose server proved itself: calls' replies
	 * must come over it (rpc_client_call_view()). Otherwise the server
	 * refuses the Prove (no challenge pending there) and we start again.
	 */
	if (rv == 0 && pipe != prove_pipe) {
		ret_err->re_code = CKPT__V1__CODE__UNAVAILABLE;
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "%s: Auth: the connection was "
		    "replaced during the handshake", c->c_url);
		rv = -EAGAIN;
	}
	if (rv == 0)
		atomic_store(&c->c_proved_pipe, pipe);
out:
	rpc_reply_free(&ch->base);
	return rv;
}

/*
 * Proves c's identity on its connection, unless another thread did: since
 * the caller saw handshake generation gen (after an UNAUTHENTICATED reply),
 * or, ahead of a call (ahead true), on the current connection. A Prove
 * refused for its nonce (the connection changed between Challenge and
 * Prove) is tried again once. Ahead of a call, a server with
 * authentication off (UNIMPLEMENTED) needs nothing: 0.
 */
static int
rpc_client_auth(struct rpc_client *c, unsigned gen, bool ahead, unsigned timeout_ms,
    struct rpc_error *ret_err)
{
	uint64_t t0 = util_now_mono_ms(), spent;
	int rv = 0;

	pthread_mutex_lock(&c->c_auth_mu);
	if (ahead ? atomic_load(&c->c_proved) == atomic_load(&c->c_conns) :
	            atomic_load(&c->c_auth_gen) != gen)
		goto out;
	for (int attempt = 0; attempt < 2; attempt++) {
		spent = util_now_mono_ms() - t0;
		if (spent >= timeout_ms) {
			rv = rpc_client_fail(c, "Auth", -ETIMEDOUT, timeout_ms, ret_err);
			break;
		}
		rv = rpc_client_handshake(c, (unsigned)(timeout_ms - spent), ret_err);
		if (rv != -EPERM || strstr(ret_err->re_msg, "no challenge pending") == NULL)
			break;
	}
	if (rv == -ENOSYS && ahead) {
		ret_err->re_code = CKPT__V1__CODE__OK;
		ret_err->re_msg[0] = '\0';
		rv = 0;
	} else if (rv == 0) {
		atomic_fetch_add(&c->c_auth_gen, 1);
	}
	/*
	 * Read after the handshake: the connection it ran on is up by now. Had
	 * it been replaced meanwhile, a call is refused once and proves again.
	 */
	if (rv == 0)
		atomic_store(&c->c_proved, atomic_load(&c->c_conns));
out:
	pthread_mutex_unlock(&c->c_auth_mu);
	return rv;
}

void
rpc_client_set_auth(struct rpc_client *c, const struct auth_cred *cred, const char *expect)
{
	c->c_cred = cred;
	c->c_expect = expect;
}

void
rpc_client_set_verifier(struct rpc_client *c, const struct auth_verifier *v)
{
	c->c_verifier = v;
}

void
rpc_client_expect_peer(struct rpc_client *c, const char *expect)
{
	snprintf(c->c_expect_buf, sizeof(c->c_expect_buf), "%s", expect);
	c->c_expect = c->c_expect_buf;
}

int
rpc_client_authenticate(struct rpc_client *c, unsigned timeout_ms, struct rpc_error *ret_err)
{
	ret_err->re_code = CKPT__V1__CODE__OK;
	ret_err->re_msg[0] = '\0';
	if (c->c_cred == NULL) {
		ret_err->re_code = CKPT__V1__CODE__INVALID_ARGUMENT;
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "%s: no credentials to prove",
		    c->c_url);
		return -EINVAL;
	}
	return rpc_client_auth(c, atomic_load(&c->c_auth_gen), false,
	    timeout_ms != 0 ? timeout_ms : RPC_TIMEOUT_DEFAULT_MS, ret_err);
}

bool
rpc_error_is(const struct rpc_error *err, const char *reason)
{
	return err->re_code != CKPT__V1__CODE__OK && strcmp(err->re_reason, reason) == 0;
}

/* rpc_client_call_view(), with packed (or NULL) told of each encoding of req. */
static int
rpc_client_call_view_packed(struct rpc_client *c, unsigned method, const ProtobufCMessage *req,
    const struct rpc_packed *packed, unsigned timeout_ms, struct rpc_view *ret_view,
    struct rpc_error *ret_err)
{
	struct pbv_field msg, body, reason;
	nng_msg *rmsg = NULL;
	uint64_t t0 = util_now_mono_ms(), spent;
	err_code code;
	char what[128];
	unsigned gen;
	int rv;

	ret_err->re_code = CKPT__V1__CODE__OK;
	ret_err->re_msg[0] = '\0';
	ret_err->re_reason[0] = '\0';
	if (method >= c->c_svc->n_methods || req->descriptor != c->c_svc->methods[method].input) {
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "bad method %u for %s", method,
		    c->c_svc->name);
		ret_err->re_code = CKPT__V1__CODE__INVALID_ARGUMENT;
		return -EINVAL;
	}
	snprintf(what, sizeof(what), "%s.%s", c->c_svc->short_name, c->c_svc->methods[method].name);
	if (timeout_ms == 0)
		timeout_ms = RPC_TIMEOUT_DEFAULT_MS;
	/*
	 * A new connection: prove who we are before the call, so that servers
	 * see no refused first call from every client (the refusal below stays
	 * for connections replaced under our feet).
	 */
	if (c->c_cred != NULL && atomic_load(&c->c_proved) != atomic_load(&c->c_conns)) {
		rv = rpc_client_auth(c, 0, true, timeout_ms, ret_err);
		if (rv != 0)
			return rv;
		spent = util_now_mono_ms() - t0; /* the call has what is left */
		timeout_ms = spent >= timeout_ms ? 1 : (unsigned)(timeout_ms - spent);
		t0 = util_now_mono_ms();
	}
	gen = atomic_load(&c->c_auth_gen);
	rv = rpc_client_exchange(c, c->c_svc->name, method, req, packed, timeout_ms, what, &rmsg,
	    &code, &msg, &body, &reason, ret_err);
	if (rv != 0)
		return rv;
	/*
	 * Not authenticated on this connection (new, or re-established since):
	 * prove who we are and send the call again, once. The server ran
	 * nothing of the refused call, so sending it again is safe.
	 */
	if (code == CKPT__V1__CODE__UNAUTHENTICATED && c->c_cred != NULL) {
		nng_msg_free(rmsg);
		spent = util_now_mono_ms() - t0;
		rv = rpc_client_auth(c, gen, false,
		    spent >= timeout_ms ? 1 : (unsigned)(timeout_ms - spent), ret_err);
		if (rv != 0)
			return rv;
		spent = util_now_mono_ms() - t0;
		rv = rpc_client_exchange(c, c->c_svc->name, method, req, packed,
		    spent >= timeout_ms ? 1 : (unsigned)(timeout_ms - spent), what, &rmsg, &code, &msg,
		    &body, &reason, ret_err);
		if (rv != 0)
			return rv;
	}
	/*
	 * A reply over another connection than the one whose server proved
	 * itself (replaced between our check and the send): whoever answered
	 * there proved nothing, so its answer is not taken. An honest server
	 * answers such a call UNAUTHENTICATED (handled above).
	 */
	if (c->c_verifier != NULL && c->c_cred != NULL &&
	    (unsigned)nng_pipe_id(nng_msg_get_pipe(rmsg)) != atomic_load(&c->c_proved_pipe)) {
		nng_msg_free(rmsg);
		return rpc_client_server_refused(c, ret_err, "server at %s answered %s over a "
		    "connection on which it has not proven its identity: reply not taken", c->c_url,
		    what);
	}
	if (code != CKPT__V1__CODE__OK) {
		rv = rpc_client_refused(c, what, code, &msg, &reason, ret_err);
		nng_msg_free(rmsg);
		return rv;
	}
	ret_view->rv_body = body.pf_data;
	ret_view->rv_len = body.pf_len;
	ret_view->rv_msg = rmsg;
	return 0;
}

int
rpc_client_call_view(struct rpc_client *c, unsigned method, const ProtobufCMessage *req,
    unsigned timeout_ms, struct rpc_view *ret_view, struct rpc_error *ret_err)
{
	return rpc_client_call_view_packed(c, method, req, NULL, timeout_ms, ret_view, ret_err);
}

void
rpc_view_free(struct rpc_view *v)
{
	if (v != NULL && v->rv_msg != NULL) {
		nng_msg_free(v->rv_msg);
		v->rv_msg = NULL;
	}
}

int
rpc_client_call(struct rpc_client *c, unsigned method, const ProtobufCMessage *req,
    unsigned timeout_ms, ProtobufCMessage **ret_reply, struct rpc_error *ret_err)
{
	return rpc_client_call_packed(c, method, req, NULL, timeout_ms, ret_reply, ret_err);
}

int
rpc_client_call_packed(struct rpc_client *c, unsigned method, const ProtobufCMessage *req,
    const struct rpc_packed *packed, unsigned timeout_ms, ProtobufCMessage **ret_reply,
    struct rpc_error *ret_err)
{
	struct rpc_view v;
	ProtobufCMessage *out;
	int rv;

	rv = rpc_client_call_view_packed(c, method, req, packed, timeout_ms, &v, ret_err);
	if (rv != 0)
		return rv;
	/* Unpacked straight from the received message. */
	out = protobuf_c_message_unpack(c->c_svc->methods[method].output, NULL, v.rv_len,
	    v.rv_body);
	rpc_view_free(&v);
	if (out == NULL) {
		ret_err->re_code = CKPT__V1__CODE__INTERNAL;
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "%s: %s.%s: undecodable reply body",
		    c->c_url, c->c_svc->short_name, c->c_svc->methods[method].name);
		return -EPROTO;
	}
	*ret_reply = out;
	return 0;
}

int
rpc_client_call_raw(struct rpc_client *c, const void *data, size_t len, unsigned timeout_ms,
    void **ret_reply, size_t *ret_len, struct rpc_error *ret_err)
{
	nng_msg *msg, *rmsg = NULL;
	void *copy;
	int rv;

	ret_err->re_code = CKPT__V1__CODE__OK;
	ret_err->re_msg[0] = '\0';
	ret_err->re_reason[0] = '\0';
	if (timeout_ms == 0)
		timeout_ms = RPC_TIMEOUT_DEFAULT_MS;
	rv = err_from_nng(nng_msg_alloc(&msg, 0));
	if (rv == 0)
		rv = err_from_nng(nng_msg_append(msg, data, len));
	if (rv != 0)
		return rpc_client_fail(c, "raw", rv, timeout_ms, ret_err);
	rv = rpc_client_roundtrip(c, msg, timeout_ms, &rmsg);
	if (rv != 0)
		return rpc_client_fail(c, "raw", rv, timeout_ms, ret_err);
	copy = malloc(nng_msg_len(rmsg) + 1);
	if (copy == NULL) {
		nng_msg_free(rmsg);
		return -ENOMEM;
	}
	memcpy(copy, nng_msg_body(rmsg), nng_msg_len(rmsg));
	*ret_len = nng_msg_len(rmsg);
	*ret_reply = copy;
	nng_msg_free(rmsg);
	return 0;
}

void
rpc_reply_free(ProtobufCMessage *reply)
{
	if (reply != NULL)
		protobuf_c_message_free_unpacked(reply, NULL);
}

void
rpc_client_close(struct rpc_client *c)
{
	if (c == NULL)
		return;
	while (c->c_idle != NULL) {
		struct rpc_exch *x = c->c_idle;
		c->c_idle = x->x_next;
		rpc_exch_free(x);
	}
	/* A stuck close may still run the pipe callbacks on c: keep c then. */
	if (sock_close(c->c_sock) != 0)
		return;
	pthread_mutex_destroy(&c->c_mu);
	pthread_mutex_destroy(&c->c_auth_mu);
	auth_cred_free(c->c_own_cred);
	auth_verifier_free(c->c_own_v);
	free(c);
}

void
rpc_client_abort(struct rpc_client *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->c_mu);
	c->c_aborted = 1;
	for (struct rpc_inflight *f = c->c_inflight; f != NULL; f = f->if_next)
		nng_aio_abort(f->if_aio, NNG_ECANCELED);
	pthread_mutex_unlock(&c->c_mu);
}

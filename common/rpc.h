/*
 * rpc: request/reply calls over nng, driven by protobuf-c service descriptors.
 *
 * Wire format: see proto/ckpt/v1/rpc.proto. A server is a REP socket with a
 * pool of worker threads, each owning one nng context, so slow requests do
 * not serialise the others. A service is a ProtobufCServiceDescriptor plus an
 * array of handlers indexed like its methods: adding a method is one proto
 * line and one handler.
 *
 * Handlers receive the unpacked request and an initialised reply message.
 * Everything they put into the reply must come from rpc_call_arena(); the
 * layer packs the reply and frees the arena afterwards. A handler returns 0
 * or a negative errno (see err.h); rpc_call_errorf() sets the message that
 * goes with the error. A method may instead have a raw handler, which
 * writes its encoded reply straight into the outgoing message (see
 * rpc_raw_handler_fn).
 *
 * Long work. Methods marked slow (rs_slow) do not run on the request
 * workers: a request worker that receives one hands it, with its nng context,
 * to a queue served by a separate pool (rs_slow_workers), opens a fresh
 * context and goes back to receiving. The slow worker runs the handler and
 * sends the reply on the handed-over context later. Quick requests (a
 * manager's heartbeats) are then never stuck behind long ones (its
 * migrations), however many of those arrive. The caller's deadline counts
 * from receipt, time spent queued included. Beyond rs_slow_queue waiting
 * requests the newcomer is answered UNAVAILABLE at once.
 *
 * Bad input (an undecodable envelope, unknown method, undecodable body) is
 * answered with an error reply, counted, and reported through the server's
 * on_bad callback; the server goes on serving.
 *
 * Identity (proto/ckpt/v1/auth.proto). A server given a verifier
 * (rs_auth) answers the Auth service's Challenge and Prove itself, keeps
 * the identity proven on each connection (auth.h's pipe table, fed by
 * nng's pipe notifications) and answers every other request on a
 * connection without one UNAUTHENTICATED. Handlers read the caller's
 * identity with rpc_call_peer() and refuse with rpc_call_forbid(). Each
 * refusal is counted; the first on each connection is reported through
 * rs_on_refused with the peer's identity and address. A client given
 * credentials (rpc_client_set_auth()) answers an UNAUTHENTICATED reply by
 * running the handshake and sending the call again, once.
 */
#ifndef CKPT_RPC_H
#define CKPT_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>

#include "arena.h"
#include "auth.h"
#include "limit.h"
#include "metrics.h"
#include "tls.h"

#define RPC_RECV_MAX_DEFAULT LIMIT_MSG_DEFAULT
#define RPC_TIMEOUT_DEFAULT_MS 5000u
#define RPC_ERRMSG_MAX 1024
#define RPC_SLOW_QUEUE_DEFAULT 256u
#define RPC_DIRECT_MAX_DEFAULT (64u << 10)

struct rpc_call;
struct rpc_server;
struct rpc_client;

typedef int (*rpc_handler_fn)(void *arg, struct rpc_call *call, const ProtobufCMessage *req,
    ProtobufCMessage *reply);
/*
 * A handler that encodes its reply message itself, straight into the
 * message that goes on the wire (for replies too big to copy twice): it
 * calls rpc_call_reply_body() once with the exact length of the encoded
 * reply and writes that many bytes where it is told. The envelope around
 * them is the layer's, as for other replies. It returns 0 or a negative
 * errno like any handler; on error the reply body is dropped and the error
 * answered instead. Returning 0 without a body answers an empty message.
 */
typedef int (*rpc_raw_handler_fn)(void *arg, struct rpc_call *call, const ProtobufCMessage *req);
/*
 * Reads a method's request in place instead of protobuf-c's unpack (for
 * requests that carry megabytes: protobuf-c copies every bytes field): the
 * message and what it holds come from rpc_call_arena(call), its bytes
 * fields may point into data, which stays valid until the reply is made.
 * Returns 0, -EPROTO when data is not the message (answered as an
 * undecodable request), or another error answered as such (with
 * rpc_call_errorf()'s message when it set one).
 */
typedef int (*rpc_decode_fn)(struct rpc_call *call, const uint8_t *data, size_t len,
    ProtobufCMessage **ret_req);

struct rpc_server_config {
	const ProtobufCServiceDescriptor *rs_service;
	const rpc_handler_fn *rs_handlers; /* rs_service->n_methods entries; NULL: UNIMPLEMENTED */
	/* NULL, or rs_service->n_methods entries: where one is set, it serves the method. */
	const rpc_raw_handler_fn *rs_raw_handlers;
	/* NULL, or rs_service->n_methods entries: where one is set, it reads the request. */
	const rpc_decode_fn *rs_decoders;
	void *rs_arg;                      /* passed to every handler */
	/*
	 * bytes; 0: RPC_RECV_MAX_DEFAULT. Larger requests, up to LIMIT_MSG_SLACK
	 * more, are answered RESOURCE_EXHAUSTED limit:message_size.
	 */
	size_t rs_recv_max;
	unsigned rs_workers;               /* concurrent requests; 0: 4 */
	/* NULL, or rs_service->n_methods entries: true marks a slow method (above). */
	const bool *rs_slow;
	unsigned rs_slow_workers;          /* concurrent slow requests; 0: rs_workers */
	unsigned rs_slow_queue;            /* slow requests waiting at most; 0: RPC_SLOW_QUEUE_DEFAULT */
	/*
	 * NULL, or rs_service->n_methods entries: true marks a method served
	 * on the nng thread that received its request, when the request is at
	 * most rs_direct_max bytes (0: RPC_DIRECT_MAX_DEFAULT), instead of being
	 * handed to a worker thread (a wake-up and a context switch per
	 * request). Its handler must answer or defer the call (rpc_call_defer())
	 * without waiting for another request, the network or the disk; it may
	 * do its own work there, as the NAS's Store does (checks, then its
	 * commit queued for the store's commit thread). nng runs its callbacks,
	 * the HTTP server's (/healthz) among them, on a few threads (twice the
	 * CPUs in 1.5), so a method that waits has no place here. Its
	 * deferral is set up before the handler runs, so rpc_call_defer()
	 * cannot fail there; when it cannot be set up (no memory), the request
	 * goes to a worker as any other. Authentication, limits and decoding
	 * are as for any request.
	 */
	const bool *rs_direct;
	size_t rs_direct_max;
	unsigned rs_default_timeout_ms;    /* when a request has none; 0: RPC_TIMEOUT_DEFAULT_MS */
	/* Called (from a worker) once per rejected request with a one-line reason. */
	void (*rs_on_bad)(void *arg, const char *reason);
	/*
	 * Called (from a worker or an nng thread) once per limit hit, with the
	 * limit's name and a one-line message; a service logs it, rate-limited
	 * (limit_log_ok()). NULL: not told.
	 */
	void (*rs_on_limit)(void *arg, const char *name, const char *msg);
	/* Open connections at most (LIMIT_N_CONNECTIONS); 0: LIMIT_CONNS_DEFAULT. */
	unsigned rs_max_conns;
	/*
	 * Requests per second of one principal (rpc_call_principal(): an
	 * identity, over all its connections), and the burst (requests at once
	 * after an idle second); 0: LIMIT_RPS_DEFAULT, and a burst of one second's.
	 */
	unsigned rs_max_rps;
	unsigned rs_rps_burst;
	/*
	 * Bytes of any string field and entries of any repeated field of a
	 * decoded request, at any depth (LIMIT_N_STRING, LIMIT_N_LIST): the
	 * backstop behind each handler's own checks of names and lists. 0:
	 * LIMIT_STRING_DEFAULT, LIMIT_LIST_DEFAULT.
	 */
	size_t rs_max_string;
	size_t rs_max_list;
	/* Called after every request: method index (-1 if unknown), code, duration. */
	void (*rs_on_done)(void *arg, int method, int code, uint64_t usec);
	/*
	 * NULL, or the service's registry (metrics.h): the server counts there
	 * every request by service, method and code, its duration, and the
	 * bad ones:
	 *   ckpt_rpc_requests_total{service,method,code}
	 *   ckpt_rpc_request_duration_seconds{service,method} (histogram)
	 *   ckpt_rpc_bad_requests_total{service}
	 *   ckpt_rpc_limit_hits_total{service,limit}
	 * Method "unknown" for requests that name none of the service's.
	 */
	struct metrics *rs_metrics;
	/*
	 * NULL, or the TLS settings (tls.h) the listener follows: a tls+tcp://
	 * url needs their files, a plain one beyond loopback their allow_plain
	 * (else rpc_server_start() fails with -EINVAL or -EPERM). Read during
	 * rpc_server_start() only.
	 */
	const struct tls_conf *rs_tls;
	/*
	 * NULL, or authentication on: proofs are checked against this CA
	 * (auth.h), and a request of rs_service on a connection with no proven
	 * identity is answered UNAUTHENTICATED. rs_auth_cred (NULL: none) is
	 * the server's own certificate, whose role is its audience
	 * (ChallengeReply.audience). Both are the caller's and must outlive the
	 * server. With rs_metrics, refusals are counted in
	 *   ckpt_rpc_refused_total{service,method,reason}
	 *   ckpt_rpc_auth_handshakes_total{service,result}   result: ok, refused
	 * (refused_total has a series of method "any" for each reason at 0 from
	 * the start, for alerts on its rate.)
	 */
	const struct auth_verifier *rs_auth;
	const struct auth_cred *rs_auth_cred;
	/* (With rs_auth NULL and rs_tls naming all three files, the server
	 * loads both from them itself: TLS on means authentication on.) */
	/*
	 * NULL, or rs_service->n_methods role masks (AUTH_NODE | ...): with
	 * authentication on, a method is refused (rpc_call_forbid()) to a
	 * caller whose role is not in its mask, before its request is decoded.
	 * Finer rules (a node acting for itself only) are the handlers'.
	 */
	const unsigned *rs_roles;
	/*
	 * Called (from a worker) on the first refusal on a connection, and on
	 * the first after its identity changed: one line with the code, the
	 * method, the peer's identity and address, and why. On a tls+tcp://
	 * listener also (from the server's "rpc:tls" thread) once per burst of
	 * refused TLS handshakes ("tls: N handshakes refused on URL since
	 * ..."), which nng 1.5.2 only counts (tls.h): read every second and
	 * counted, with rs_metrics, in ckpt_tls_refused_total{service}.
	 */
	void (*rs_on_refused)(void *arg, const char *line);
};

/*
 * The limits every server applies to its peers, as a service's config table
 * holds them: RPC_CFG_LIMITS(struct conf, field) expands to its entries
 * (--max-conns, --max-rps, --max-string, --max-list and their CKPT_*
 * variables), rpc_limits_apply() copies them into a server's config.
 */
struct rpc_limits_conf {
	int64_t rl_max_conns;
	int64_t rl_max_rps;
	uint64_t rl_max_string;
	int64_t rl_max_list;
};

#define RPC_LIMIT_STR_(x) #x
#define RPC_LIMIT_STR(x) RPC_LIMIT_STR_(x)
#define RPC_CFG_LIMITS(type, f)                                                                  \
	{ "max-conns", CFG_INT, offsetof(type, f.rl_max_conns), RPC_LIMIT_STR(LIMIT_CONNS_DEFAULT),  \
	    1, 1000000, 0, "N",                                                                      \
	    "open connections at most; one more is closed as it opens (limit connections)" },       \
	{ "max-rps", CFG_INT, offsetof(type, f.rl_max_rps), RPC_LIMIT_STR(LIMIT_RPS_DEFAULT), 1,     \
	    10000000, 0, "N",                                                                        \
	    "requests per second of one peer: its identity over all its connections (without "   \
	    "TLS: its address, or each loopback connection); bursts of one second's worth; more are "       \
	    "answered RESOURCE_EXHAUSTED (limit requests_per_second)" },                            \
	{ "max-string", CFG_SIZE, offsetof(type, f.rl_max_string),                                   \
	    RPC_LIMIT_STR(LIMIT_STRING_DEFAULT), 256, 1 << 20, 0, "SIZE",                             \
	    "bytes of any string in a request (limit string_length)" },                              \
	{ "max-list", CFG_INT, offsetof(type, f.rl_max_list), RPC_LIMIT_STR(LIMIT_LIST_DEFAULT),     \
	    LIMIT_HASHES_MAX, 16777216, 0, "N",                                                      \
	    "entries of any list in a request (limit list_length); a Store lists every chunk of "   \
	    "its checkpoint, so below 262144 it caps checkpoints at that many chunks" }

void rpc_limits_apply(const struct rpc_limits_conf *lc, struct rpc_server_config *rc);

struct rpc_server_stats {
	uint64_t rss_requests;
	uint64_t rss_bad;
	uint64_t rss_errors;
	/*
	 * Connections whose handshake ended and that joined the socket, so
	 * far. A test that stops a server right after a client started to
	 * connect waits for it first: nng 1.5.2 leaks a connection whose
	 * handshake ends while its listener closes (see RPC_CLIENT_DIAL_LATER).
	 */
	uint64_t rss_conns;
};

/* Listens on url and starts the workers. */
int rpc_server_start(const struct rpc_server_config *cfg, const char *url,
    struct rpc_server **ret_server);
/* The URL actually bound (port resolved when url asked for port 0). */
const char *rpc_server_url(const struct rpc_server *s);
void rpc_server_get_stats(struct rpc_server *s, struct rpc_server_stats *ret_stats);
/*
 * Handles the bytes of one request as a worker would, on the caller's thread
 * and without the socket (fuzzing, tests); *ret_reply is the encoded reply
 * (nng_msg_free() it).
 */
int rpc_server_dispatch(struct rpc_server *s, const void *data, size_t len, nng_msg **ret_reply);
/* Closes the socket, waits for the workers, frees. Accepts NULL. */
void rpc_server_stop(struct rpc_server *s);

/* A request envelope (rpc.proto Request), read in place. */
struct rpc_envelope {
	uint32_t en_method;
	uint32_t en_timeout_ms;
	const uint8_t *en_body;       /* the method's request, inside the bytes read */
	size_t en_body_len;
	const uint8_t *en_service;    /* not NUL-terminated; en_service_len 0: not given */
	size_t en_service_len;
};

/*
 * Reads an envelope without copying its body (megabytes for PutChunks), as
 * protobuf-c would (the last of a repeated singular field wins, unknown
 * fields are skipped, varints are cut to 32 bits), a little stricter in
 * framing (pbv.h: a 10-byte varint past 64 bits); -EPROTO otherwise. The
 * server reads every request with it.
 */
int rpc_envelope_read(const void *data, size_t len, struct rpc_envelope *ret_env);

struct arena *rpc_call_arena(struct rpc_call *call);
/* Milliseconds left before the caller's deadline (0 when past). */
unsigned rpc_call_remaining_ms(const struct rpc_call *call);
/* The pipe (connection) the request came on, for peer identity. */
nng_pipe rpc_call_pipe(const struct rpc_call *call);
/*
 * The identity proven on the call's connection; NULL when the server has
 * authentication off (rs_auth NULL): anyone may call then. With it on, a
 * handler only ever runs for a caller with an identity.
 */
const struct auth_id *rpc_call_peer(const struct rpc_call *call);
/*
 * Who the call counts as for the limits on peers (--max-rps, the NAS's
 * --max-uploads): its proven identity ("node:n1", "manager": all of its
 * connections together), or without one the peer's address ("addr:10.0.0.7")
 * for TCP beyond loopback, or else the connection ("conn:17": loopback and
 * ipc:// do not tell local processes apart). Into buf (RPC_PRINCIPAL_MAX
 * bytes); -ENOENT for a call that came on no connection
 * (rpc_server_dispatch()). Set once the request is admitted, before any
 * handler runs.
 */
#define RPC_PRINCIPAL_MAX 72
int rpc_call_principal(const struct rpc_call *call, char *buf, size_t len);
/*
 * Refuses the call as outside the caller's role: sets the message (fmt),
 * the reason "forbidden", counts and reports it (rs_on_refused, once per
 * connection). Returns -EACCES (PERMISSION_DENIED) for the handler to
 * return.
 */
int rpc_call_forbid(struct rpc_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void rpc_call_errorf(struct rpc_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * Names the case of the error the handler returns (Reply.reason, values in
 * rpc.proto: "stale_epoch", "missing_chunks", "limit:<name>", ...); cut at
 * LIMIT_REPLY_REASON_MAX - 1 bytes. Sent only with a non-OK code.
 */
void rpc_call_reason(struct rpc_call *call, const char *reason);
/*
 * A limit on peers was hit: sets reason "limit:<name>" and the message
 * (which should name the limit), counts it (ckpt_rpc_limit_hits_total
 * {service,limit} when the server has metrics), calls rs_on_limit, and
 * returns -ENOSPC (RESOURCE_EXHAUSTED) for the handler to return.
 */
int rpc_call_limitf(struct rpc_call *call, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * For a raw handler: makes the reply, with room for a body of len bytes,
 * and points *ret_body at that room, which the handler fills completely
 * before it returns. The call owns the reply. Once per call (-EALREADY).
 */
int rpc_call_reply_body(struct rpc_call *call, size_t len, uint8_t **ret_body);

/*
 * Deferred calls: a handler may answer later, from another thread, without
 * holding a worker meanwhile (the NAS's Store waits for its group commit
 * this way). rpc_call_defer() takes the call over: its request, reply
 * message and arena stay valid, the worker is given a fresh context and
 * arena and goes back to receiving as soon as the handler returns (it must
 * return 0 then; what it returns is ignored). Later, exactly once, from any
 * thread, rpc_deferred_finish(d, rv) answers it as the handler's return
 * would have (rv 0: the reply message as filled in; else the error with
 * the message and reason set on rpc_deferred_call(d)), counts it, and
 * frees d: neither d nor the call may be used after. It does not wait
 * for the reply to leave (d goes back to the server once it has). A caller that went
 * away meanwhile is not answered. rpc_server_stop() waits for every
 * deferred call to be finished (their owner must finish them; the socket
 * is still open until then).
 *
 * Returns 0 and *ret_d, or -EOPNOTSUPP (a raw handler's call, one run by
 * rpc_server_dispatch(), one deferred already) or -ENOMEM (never for a
 * direct call, rs_direct: its deferral was set up before): the handler then
 * answers the call itself as usual.
 */
struct rpc_deferred;
int rpc_call_defer(struct rpc_call *call, struct rpc_deferred **ret_d);
/* The deferred call, for rpc_call_arena(), rpc_call_errorf(), rpc_call_peer() and the like. */
struct rpc_call *rpc_deferred_call(struct rpc_deferred *d);
void rpc_deferred_finish(struct rpc_deferred *d, int rv);

/* Client. */
#define RPC_CLIENT_DIAL_NOW 0x1u /* fail at open when the peer cannot be reached */
/*
 * Dial only at rpc_client_dial(): a client that may be closed at once,
 * unused, is then closed before any connection exists. nng 1.5.2 never frees
 * a TCP connection whose SP handshake ends between the cancel of its
 * dialer's connect and the close of its endpoint (it waits, unclaimed, for a
 * connect nobody asks for any more): a client closed while its first
 * connection is being made can leak it (transport endpoint, pipe, aios).
 */
#define RPC_CLIENT_DIAL_LATER 0x2u
/*
 * A call made while the client has no connection first probes the peer
 * (sock_probe(), at most this long): one that refuses connections fails the
 * call at once with -ECONNREFUSED (UNAVAILABLE) instead of at its deadline.
 */
#define RPC_PROBE_MAX_MS 1000u

struct rpc_error {
	int re_code;                  /* wire code (ckpt.v1.Code), OK when none */
	char re_msg[RPC_ERRMSG_MAX];  /* one line, includes the peer's URL */
	/* The peer's Reply.reason ("" when none, or when the call failed here). */
	char re_reason[LIMIT_REPLY_REASON_MAX];
};

/* Whether err carries Reply.reason `reason`. */
bool rpc_error_is(const struct rpc_error *err, const char *reason);

/*
 * Opens a REQ socket towards url. Without RPC_CLIENT_DIAL_NOW the dial goes
 * on in the background (and reconnects with back-off), so open succeeds for
 * a peer that is not up yet. Safe to call from several threads at once.
 */
int rpc_client_open(const char *url, const ProtobufCServiceDescriptor *service, unsigned flags,
    size_t recv_max, struct rpc_client **ret_client, struct rpc_error *ret_err);
/*
 * rpc_client_open() that follows the TLS settings tls (tls.h; NULL: none,
 * which is what rpc_client_open() passes): a tls+tcp:// url is dialed with
 * its files, a plain tcp:// one beyond loopback is refused before any dial
 * (-EPERM, PERMISSION_DENIED) unless it allows plain.
 */
int rpc_client_open_tls(const char *url, const ProtobufCServiceDescriptor *service,
    unsigned flags, size_t recv_max, const struct tls_conf *tls, struct rpc_client **ret_client,
    struct rpc_error *ret_err);
const char *rpc_client_url(const struct rpc_client *c);
/*
 * Starts the background dial of a client opened with RPC_CLIENT_DIAL_LATER
 * (once; never blocks). Calls made before it wait for a connection.
 */
int rpc_client_dial(struct rpc_client *c);
/*
 * Calls method with req and waits at most timeout_ms (0: default). On success
 * *ret_reply is the unpacked reply (free with rpc_reply_free()). On failure
 * returns a negative errno and describes it in *ret_err; *ret_reply is untouched.
 */
int rpc_client_call(struct rpc_client *c, unsigned method, const ProtobufCMessage *req,
    unsigned timeout_ms, ProtobufCMessage **ret_reply, struct rpc_error *ret_err);
/*
 * A reply left where it arrived (no copy): rv_body and rv_len are the
 * method's reply message, encoded, valid until rpc_view_free(). For replies
 * too big to unpack (read them with pbv.h).
 */
struct rpc_view {
	const uint8_t *rv_body;
	size_t rv_len;
	nng_msg *rv_msg;  /* owns the bytes */
};

/* rpc_client_call() without the unpack: on success *ret_view holds the reply. */
int rpc_client_call_view(struct rpc_client *c, unsigned method, const ProtobufCMessage *req,
    unsigned timeout_ms, struct rpc_view *ret_view, struct rpc_error *ret_err);
/* Frees the message behind v. Accepts NULL and a view already freed. */
void rpc_view_free(struct rpc_view *v);
/*
 * Credentials for servers with authentication on (auth.proto): when a
 * call is answered UNAUTHENTICATED, the client proves cred's certificate
 * on its connection (Challenge, Prove; one thread at a time, the others
 * wait and reuse the result) and sends the call again once, within the
 * call's deadline. expect: NULL, or the identity the server must name as
 * its own ("nas", "node:n1"): another is refused (-EACCES) before the
 * client signs anything. cred and expect must outlive c. Call before the
 * first call.
 */
void rpc_client_set_auth(struct rpc_client *c, const struct auth_cred *cred, const char *expect);
/*
 * The identity a server must answer as (ChallengeReply.audience: "nas",
 * "node:n1"), checked before c proves itself to it; copied. A client opened
 * with TLS files (rpc_client_open_tls()) proves itself with their
 * certificate and key without rpc_client_set_auth().
 */
void rpc_client_expect_peer(struct rpc_client *c, const char *expect);
/*
 * The server's proof (auth.proto, step 1b). A client with a verifier asks
 * every server it authenticates to prove its own identity against that CA
 * before it proves its own: a server that sends no proof, a proof that does
 * not verify, or (with rpc_client_expect_peer()) another identity than the
 * expected one fails the call, UNAUTHENTICATED (-EPERM), reason
 * "unauthenticated", the cause in the message ("server at URL proved
 * identity node:n3, expected nas"), and is reported to the TLS settings'
 * tc_on_server_refused. rpc_client_open_tls() with TLS files sets one from
 * --tls-ca: TLS on means the server must prove who it is. Without one (no
 * TLS), only the claimed audience is compared with the expected identity.
 * v must outlive c. Call before the first call.
 */
void rpc_client_set_verifier(struct rpc_client *c, const struct auth_verifier *v);
/*
 * Runs the handshake now (rpc_client_set_auth() first). For measuring it
 * and for clients that want to fail early; calls do it when needed.
 */
int rpc_client_authenticate(struct rpc_client *c, unsigned timeout_ms, struct rpc_error *ret_err);
/* Sends raw bytes as the request message body (tests of bad input). */
int rpc_client_call_raw(struct rpc_client *c, const void *msg, size_t len, unsigned timeout_ms,
    void **ret_reply, size_t *ret_len, struct rpc_error *ret_err);
void rpc_reply_free(ProtobufCMessage *reply);
/*
 * Closes the socket and frees c. Bounded: if nng's close is stuck (a known
 * nng 1.5 deadlock), it returns after 2 s and leaves c to the closing thread.
 */
void rpc_client_close(struct rpc_client *c);
/*
 * Cancels the calls in progress on c (other threads' calls return at once
 * with -ECANCELED, ABORTED) and makes every later call fail the same way.
 * For shutting down while a thread waits in a long call; rpc_client_close()
 * still frees c once no thread uses it. Thread-safe. Accepts NULL.
 */
void rpc_client_abort(struct rpc_client *c);

#endif

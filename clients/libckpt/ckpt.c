/*
 * libckpt: the library side of the Local service (proto/ckpt/v1/local.proto
 * describes the protocol and the shared segment).
 *
 * One instance per process (the API of ckpt.h has no handle, in the manner
 * of VeloC's memory mode): `lib` below, guarded by lib.l_lock, which every
 * public function takes. The library talks to nng and protobuf-c directly
 * (no common/ code), so it is small and exports only ckpt_* (ckpt.map).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "ckpt.h"
#include "ckpt/v1/local.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "methods.h"

#define LIB_PROTO_VERSION 1u
#define LIB_TIMEOUT_MS_DEFAULT 10000u
#define LIB_NAME_MAX 255
#define LIB_URL_MAX 1024
#define LIB_ERRMSG_MAX 256
#define LIB_PIECE_MAX (4u << 20)        /* restore pieces we ask for, at most */
#define LIB_RECV_MAX (LIB_PIECE_MAX + (64u << 10))
#define LIB_SEG_HEADER 4096u            /* local.proto: regions start here */
#define LIB_SEG_ALIGN 4096u
#define LIB_SEG_FREE 0u
#define LIB_SEG_HANDED 1u
#define LIB_SEGMENTS 2                  /* one the agent reads, one to write */

/* The segment's header, as local.proto lays it out. */
struct seg_header {
	char sh_magic[8];
	_Atomic uint32_t sh_state;
	uint32_t sh_reserved;
	uint64_t sh_seq;
};

struct seg {
	int sg_fd;                 /* memfd, -1: none */
	uint8_t *sg_map;
	size_t sg_size;
};

struct region {
	uint32_t rg_id;
	uint8_t *rg_ptr;
	size_t rg_size;
	bool rg_hinted;            /* the program gave hints for this region once */
	bool rg_whole;             /* changed everywhere in this interval */
	unsigned rg_nranges;
	Ckpt__V1__LocalRange rg_ranges[CKPT_RANGES_MAX];
};

struct restored {
	uint32_t rs_id;
	uint64_t rs_size;
};

/* The checkpoint in flight to the agent (lib_settle()). */
struct handover {
	pthread_mutex_t ho_lock;
	pthread_cond_t ho_cond;
	bool ho_busy;              /* sent or being sent, no answer yet */
	enum { HO_QUEUED, HO_SENDING, HO_RECEIVING } ho_phase; /* the callback's */
	nng_msg *ho_req;           /* the request, until it is sent */
	pthread_cond_t ho_go_cond; /* the sender thread waits on it */
	bool ho_go;                /* ho_req is there to send */
	bool ho_stop;              /* the sender thread ends */
	bool ho_thread;            /* it runs */
	pthread_t ho_tid;
	bool ho_refused;           /* the agent did not keep it (or never saw it) */
	int ho_rv;                 /* result, until lib_settle() takes it */
	uint64_t ho_seq;
	struct seg *ho_seg;
	char ho_msg[LIB_ERRMSG_MAX];
};

struct lib {
	pthread_mutex_t l_lock;
	bool l_init;
	char l_component[LIB_NAME_MAX + 1];
	nng_socket l_sock;
	unsigned l_timeout_ms;
	uint64_t l_max_bytes;      /* 0: no limit */
	uint32_t l_max_regions;
	uint32_t l_piece_max;
	bool l_restart;            /* a checkpoint waits to be restored */
	uint64_t l_seq;            /* last checkpoint's sequence */
	struct restored *l_restored;
	size_t l_nrestored;
	struct region *l_regions;
	size_t l_nregions;
	uint64_t l_bytes;          /* sum of the regions' sizes */
	/*
	 * The regions' ids, order or sizes changed since the last checkpoint:
	 * the stored form's layout moved, so every byte of it counts as changed.
	 */
	bool l_layout_changed;
	struct seg l_segs[LIB_SEGMENTS];
	nng_ctx l_ctx;             /* the handovers' own request context */
	nng_aio *l_aio;
	struct handover l_ho;
};

static struct lib lib = {
	.l_lock = PTHREAD_MUTEX_INITIALIZER,
	.l_ho = { .ho_lock = PTHREAD_MUTEX_INITIALIZER, .ho_cond = PTHREAD_COND_INITIALIZER,
		.ho_go_cond = PTHREAD_COND_INITIALIZER },
};
static _Thread_local char lib_errmsg[LIB_ERRMSG_MAX];

static const char LIB_SEG_MAGIC[8] = { 'C', 'K', 'P', 'T', 'S', 'E', 'G', '1' };

static int lib_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
lib_fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(lib_errmsg, sizeof(lib_errmsg), fmt, ap);
	va_end(ap);
	return code;
}

const char *
ckpt_errmsg(void)
{
	return lib_errmsg;
}

const char *
ckpt_strerror(int code)
{
	switch (code) {
	case CKPT_OK: return "success";
	case CKPT_EINVAL: return "invalid argument";
	case CKPT_ENOTINIT: return "libckpt not initialised (ckpt_init)";
	case CKPT_EALREADY: return "libckpt already initialised";
	case CKPT_ENOAGENT: return "no ckpt agent reachable";
	case CKPT_ENOREGION: return "unknown region id";
	case CKPT_ETOOBIG: return "region over the limit";
	case CKPT_ENOMEM: return "out of memory";
	case CKPT_EAGENT: return "the agent refused the call";
	case CKPT_EBUSY: return "the agent is still storing the previous checkpoints";
	case CKPT_ENORESTART: return "not a restart: nothing to restore";
	case CKPT_ESIZE: return "restored region size differs from the protected region";
	case CKPT_ESYSTEM: return "system call failed";
	case CKPT_ETIMEDOUT: return "the agent did not answer in time";
	case CKPT_ERANGE: return "range outside the region";
	default: return "unknown libckpt error";
	}
}

static int
lib_nng_fail(int nrv, const char *what)
{
	int code = CKPT_ENOAGENT;

	if (nrv == NNG_ETIMEDOUT)
		code = CKPT_ETIMEDOUT;
	else if (nrv == NNG_ENOMEM)
		code = CKPT_ENOMEM;
	return lib_fail(code, "%s: %s", what, nng_strerror(nrv));
}

static void
lib_seg_drop(struct seg *sg)
{
	if (sg->sg_map != NULL)
		munmap(sg->sg_map, sg->sg_size);
	if (sg->sg_fd >= 0)
		close(sg->sg_fd);
	sg->sg_map = NULL;
	sg->sg_fd = -1;
	sg->sg_size = 0;
}

/* Forgets everything but the lock. */
static void
lib_reset(void)
{
	for (int i = 0; i < LIB_SEGMENTS; i++)
		lib_seg_drop(&lib.l_segs[i]);
	free(lib.l_regions);
	free(lib.l_restored);
	lib.l_regions = NULL;
	lib.l_nregions = 0;
	lib.l_bytes = 0;
	lib.l_restored = NULL;
	lib.l_nrestored = 0;
	lib.l_restart = false;
	lib.l_seq = 0;
	lib.l_init = false;
}

/* Closes the connection (nothing in flight) and forgets everything but the locks. */
static void
lib_close(void)
{
	if (lib.l_ho.ho_thread) {
		pthread_mutex_lock(&lib.l_ho.ho_lock);
		lib.l_ho.ho_stop = true;
		pthread_cond_signal(&lib.l_ho.ho_go_cond);
		pthread_mutex_unlock(&lib.l_ho.ho_lock);
		pthread_join(lib.l_ho.ho_tid, NULL);
		lib.l_ho.ho_thread = false;
		lib.l_ho.ho_stop = false;
	}
	if (lib.l_aio != NULL)
		nng_aio_free(lib.l_aio);
	lib.l_aio = NULL;
	nng_close(lib.l_sock);   /* closes l_ctx too */
	lib_reset();
}

static const char *const lib_method_names[] = { "Hello", "GetRegion", "Checkpoint", "Finalize" };

/* The request envelope around req, as one nng message. */
static int
lib_request(unsigned method, const ProtobufCMessage *req, nng_msg **ret_msg)
{
	Ckpt__V1__Request env = CKPT__V1__REQUEST__INIT;
	size_t blen = protobuf_c_message_get_packed_size(req);
	nng_msg *msg;
	uint8_t *buf;
	int nrv;

	buf = malloc(blen ? blen : 1);
	if (buf == NULL)
		return lib_fail(CKPT_ENOMEM, "out of memory for a %zu-byte request", blen);
	protobuf_c_message_pack(req, buf);
	env.method = method;
	env.timeout_ms = lib.l_timeout_ms;
	env.body.data = buf;
	env.body.len = blen;
	env.service = (char *)"ckpt.v1.Local";
	nrv = nng_msg_alloc(&msg, protobuf_c_message_get_packed_size(&env.base));
	if (nrv == 0)
		protobuf_c_message_pack(&env.base, nng_msg_body(msg));
	free(buf);
	if (nrv != 0)
		return lib_nng_fail(nrv, "message");
	*ret_msg = msg;
	return 0;
}

/*
 * The reply in msg: its body unpacked with rdesc into *ret_reply (NULL rdesc:
 * only the code is looked at). Writes the error into msgbuf (msglen bytes).
 */
static int
lib_reply(unsigned method, nng_msg *msg, const ProtobufCMessageDescriptor *rdesc,
    ProtobufCMessage **ret_reply, char *msgbuf, size_t msglen)
{
	Ckpt__V1__Reply *rep;
	ProtobufCMessage *body;
	int rv = 0;

	rep = ckpt__v1__reply__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
	if (rep == NULL) {
		snprintf(msgbuf, msglen, "%s: undecodable reply from the agent",
		    lib_method_names[method]);
		return CKPT_EAGENT;
	}
	if (rep->code != CKPT__V1__CODE__OK) {
		rv = rep->code == CKPT__V1__CODE__DEADLINE_EXCEEDED ? CKPT_ETIMEDOUT :
		    rep->code == CKPT__V1__CODE__RESOURCE_EXHAUSTED ? CKPT_ETOOBIG : CKPT_EAGENT;
		snprintf(msgbuf, msglen, "%s: agent: %s", lib_method_names[method],
		    rep->message ? rep->message : "(no message)");
	} else if (rdesc != NULL) {
		body = protobuf_c_message_unpack(rdesc, NULL, rep->body.len, rep->body.data);
		if (body == NULL) {
			snprintf(msgbuf, msglen, "%s: undecodable reply body from the agent",
			    lib_method_names[method]);
			rv = CKPT_EAGENT;
		} else {
			*ret_reply = body;
		}
	}
	ckpt__v1__reply__free_unpacked(rep, NULL);
	return rv;
}

/*
 * One call to the agent, waiting for its answer: req is the method's
 * request, *ret_reply its reply unpacked with rdesc (free with
 * protobuf_c_message_free_unpacked). Wire errors come back as CKPT_EAGENT
 * (or CKPT_ETOOBIG, CKPT_ETIMEDOUT) with the agent's one-line message.
 */
static int
lib_call(unsigned method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rdesc,
    ProtobufCMessage **ret_reply)
{
	nng_msg *msg = NULL;
	int rv, nrv;

	rv = lib_request(method, req, &msg);
	if (rv != 0)
		return rv;
	nrv = nng_sendmsg(lib.l_sock, msg, 0);
	if (nrv != 0) {
		nng_msg_free(msg);
		return lib_nng_fail(nrv, lib_method_names[method]);
	}
	nrv = nng_recvmsg(lib.l_sock, &msg, 0);
	if (nrv != 0)
		return lib_nng_fail(nrv, lib_method_names[method]);
	rv = lib_reply(method, msg, rdesc, ret_reply, lib_errmsg, sizeof(lib_errmsg));
	nng_msg_free(msg);
	return rv;
}

/*
 * The handover of a checkpoint runs on nng's threads (l_aio on l_ctx):
 * send, then receive the answer, then ho_busy goes false. Only
 * lib_settle() (with l_lock held) looks at the result and at the segment.
 */
static void
lib_handover_done(int rv, bool refused, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
lib_handover_done(int rv, bool refused, const char *fmt, ...)
{
	struct handover *ho = &lib.l_ho;
	va_list ap;

	pthread_mutex_lock(&ho->ho_lock);
	ho->ho_rv = rv;
	ho->ho_refused = refused;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(ho->ho_msg, sizeof(ho->ho_msg), fmt, ap);
		va_end(ap);
	}
	ho->ho_busy = false;
	pthread_cond_broadcast(&ho->ho_cond);
	pthread_mutex_unlock(&ho->ho_lock);
}

static void
lib_handover_cb(void *arg)
{
	struct handover *ho = arg;
	int nrv = nng_aio_result(lib.l_aio), rv;
	nng_msg *msg = nng_aio_get_msg(lib.l_aio);

	if (ho->ho_phase == HO_SENDING) {
		/*
		 * nng 1.5 may end a send with 0 yet hand the message back (its
		 * pipe closed as it was sent): then it is not sent either.
		 */
		if (nrv != 0 || msg != NULL) {
			nng_aio_set_msg(lib.l_aio, NULL);
			nng_msg_free(msg);
			if (nrv == 0)
				nrv = NNG_ECLOSED;
			/* Never sent: the agent has not seen it. */
			lib_handover_done(nrv == NNG_ETIMEDOUT ? CKPT_ETIMEDOUT : CKPT_ENOAGENT, true,
			    "checkpoint %" PRIu64 " not handed to the agent: %s", ho->ho_seq,
			    nng_strerror(nrv));
			return;
		}
		ho->ho_phase = HO_RECEIVING;
		nng_ctx_recv(lib.l_ctx, lib.l_aio);
		return;
	}
	if (nrv != 0) {
		lib_handover_done(nrv == NNG_ETIMEDOUT ? CKPT_ETIMEDOUT : CKPT_ENOAGENT, false,
		    "checkpoint %" PRIu64 ": no answer from the agent: %s", ho->ho_seq,
		    nng_strerror(nrv));
		return;
	}
	nng_aio_set_msg(lib.l_aio, NULL);   /* ours now; the aio keeps no stale pointer */
	rv = lib_reply(LOCAL_CHECKPOINT, msg, NULL, NULL, ho->ho_msg, sizeof(ho->ho_msg));
	nng_msg_free(msg);
	/* An answer with an error: the agent kept nothing of it. */
	lib_handover_done(rv, true, NULL);
}

/*
 * The sender: a thread of the library at the lowest priority (nice 19)
 * that puts the handover on the wire. Waking it does not take the CPU from
 * the application (a normal-priority thread woken here, nng's or the
 * agent's, would preempt it at the end of a long copy, on a busy machine
 * for milliseconds): the application's pause is the copy.
 */
static void *
lib_sender_main(void *arg)
{
	struct handover *ho = arg;

	setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	pthread_mutex_lock(&ho->ho_lock);
	for (;;) {
		nng_msg *msg;
		while (!ho->ho_go && !ho->ho_stop)
			pthread_cond_wait(&ho->ho_go_cond, &ho->ho_lock);
		if (ho->ho_stop)
			break;
		ho->ho_go = false;
		msg = ho->ho_req;
		ho->ho_req = NULL;
		ho->ho_phase = HO_SENDING;
		pthread_mutex_unlock(&ho->ho_lock);
		nng_aio_set_msg(lib.l_aio, msg);
		nng_ctx_send(lib.l_ctx, lib.l_aio);
		pthread_mutex_lock(&ho->ho_lock);
	}
	pthread_mutex_unlock(&ho->ho_lock);
	return NULL;
}

/*
 * Waits for the handover in flight, if any, and returns its result once:
 * 0, or the error (with ckpt_errmsg()). A refused segment is free again;
 * one the agent may hold (no answer) is left to it and dropped here. After
 * a failure the next checkpoint declares every region changed.
 */
static int
lib_settle(void)
{
	struct handover *ho = &lib.l_ho;
	int rv;

	pthread_mutex_lock(&ho->ho_lock);
	while (ho->ho_busy)
		pthread_cond_wait(&ho->ho_cond, &ho->ho_lock);
	rv = ho->ho_rv;
	if (rv != 0) {
		snprintf(lib_errmsg, sizeof(lib_errmsg), "%s", ho->ho_msg);
		if (ho->ho_refused) {
			struct seg_header *h = (struct seg_header *)ho->ho_seg->sg_map;
			atomic_store(&h->sh_state, LIB_SEG_FREE);
		} else {
			lib_seg_drop(ho->ho_seg);
		}
		for (size_t i = 0; i < lib.l_nregions; i++) {
			lib.l_regions[i].rg_whole = true;
			lib.l_regions[i].rg_nranges = 0;
		}
	}
	ho->ho_rv = 0;
	ho->ho_msg[0] = '\0';
	ho->ho_seg = NULL;
	pthread_mutex_unlock(&ho->ho_lock);
	return rv;
}

static int
lib_hello(void)
{
	Ckpt__V1__HelloRequest req = CKPT__V1__HELLO_REQUEST__INIT;
	Ckpt__V1__HelloReply *rep = NULL;
	int rv;

	req.component = lib.l_component;
	req.pid = (uint32_t)getpid();
	req.version = LIB_PROTO_VERSION;
	rv = lib_call(LOCAL_HELLO, &req.base, &ckpt__v1__hello_reply__descriptor,
	    (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	if (rep->n_regions > CKPT_REGIONS_MAX) {
		rv = lib_fail(CKPT_EAGENT, "Hello: agent restores %zu regions, over %d",
		    rep->n_regions, CKPT_REGIONS_MAX);
		goto out;
	}
	lib.l_max_bytes = rep->max_bytes;
	lib.l_max_regions = rep->max_regions == 0 || rep->max_regions > CKPT_REGIONS_MAX ?
	    CKPT_REGIONS_MAX : rep->max_regions;
	lib.l_piece_max = rep->piece_max == 0 || rep->piece_max > LIB_PIECE_MAX ?
	    LIB_PIECE_MAX : rep->piece_max;
	lib.l_restart = rep->restart;
	lib.l_seq = rep->restart ? rep->seq : 0;
	if (rep->restart && rep->n_regions > 0) {
		lib.l_restored = calloc(rep->n_regions, sizeof(*lib.l_restored));
		if (lib.l_restored == NULL) {
			rv = lib_fail(CKPT_ENOMEM, "out of memory for %zu restored regions",
			    rep->n_regions);
			goto out;
		}
		for (size_t i = 0; i < rep->n_regions; i++) {
			lib.l_restored[i].rs_id = rep->regions[i]->id;
			lib.l_restored[i].rs_size = rep->regions[i]->size;
		}
		lib.l_nrestored = rep->n_regions;
	}
out:
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	return rv;
}

static bool
lib_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= LIB_NAME_MAX;
}

int
ckpt_init(const char *component, const char *url)
{
	const char *tmo;
	int rv, nrv;

	pthread_mutex_lock(&lib.l_lock);
	if (lib.l_init) {
		rv = lib_fail(CKPT_EALREADY, "ckpt_init: already initialised as %s",
		    lib.l_component);
		goto out_unlock;
	}
	if (component == NULL)
		component = getenv("CKPT_COMPONENT");
	if (url == NULL)
		url = getenv("CKPT_LOCAL_URL");
	if (component == NULL || url == NULL) {
		rv = lib_fail(CKPT_ENOAGENT, "ckpt_init: %s not set (is the program run by a ckpt agent?)",
		    component == NULL ? "CKPT_COMPONENT" : "CKPT_LOCAL_URL");
		goto out_unlock;
	}
	if (!lib_name_ok(component)) {
		rv = lib_fail(CKPT_EINVAL, "ckpt_init: component name must have 1 to %d bytes",
		    LIB_NAME_MAX);
		goto out_unlock;
	}
	if (strncmp(url, "ipc://", 6) != 0 || strlen(url) > LIB_URL_MAX) {
		rv = lib_fail(CKPT_EINVAL, "ckpt_init: agent URL %.64s is not ipc://PATH", url);
		goto out_unlock;
	}
	lib.l_timeout_ms = LIB_TIMEOUT_MS_DEFAULT;
	tmo = getenv("CKPT_TIMEOUT_MS");
	if (tmo != NULL) {
		char *end;
		unsigned long v = strtoul(tmo, &end, 10);
		if (*end != '\0' || v == 0 || v > 3600000) {
			rv = lib_fail(CKPT_EINVAL, "ckpt_init: CKPT_TIMEOUT_MS=%.32s is not 1..3600000",
			    tmo);
			goto out_unlock;
		}
		lib.l_timeout_ms = (unsigned)v;
	}
	snprintf(lib.l_component, sizeof(lib.l_component), "%s", component);
	for (int i = 0; i < LIB_SEGMENTS; i++)
		lib.l_segs[i].sg_fd = -1;

	nrv = nng_req0_open(&lib.l_sock);
	if (nrv != 0) {
		rv = lib_nng_fail(nrv, "ckpt_init: socket");
		goto out_unlock;
	}
	nng_socket_set_ms(lib.l_sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(lib.l_sock, NNG_OPT_RECVTIMEO, (nng_duration)lib.l_timeout_ms);
	nng_socket_set_ms(lib.l_sock, NNG_OPT_SENDTIMEO, (nng_duration)lib.l_timeout_ms);
	nng_socket_set_size(lib.l_sock, NNG_OPT_RECVMAXSZ, LIB_RECV_MAX);
	/* A synchronous dial: no agent listening is an error now, not a timeout later. */
	nrv = nng_dial(lib.l_sock, url, NULL, 0);
	if (nrv != 0) {
		rv = lib_fail(CKPT_ENOAGENT, "ckpt_init: cannot reach the agent at %s: %s", url,
		    nng_strerror(nrv));
		goto out_close;
	}
	rv = lib_hello();
	if (rv != 0)
		goto out_close;
	nrv = nng_ctx_open(&lib.l_ctx, lib.l_sock);
	if (nrv == 0)
		nrv = nng_aio_alloc(&lib.l_aio, lib_handover_cb, &lib.l_ho);
	if (nrv != 0) {
		rv = lib_nng_fail(nrv, "ckpt_init: context");
		goto out_close;
	}
	nng_aio_set_timeout(lib.l_aio, (nng_duration)lib.l_timeout_ms);
	nrv = pthread_create(&lib.l_ho.ho_tid, NULL, lib_sender_main, &lib.l_ho);
	if (nrv != 0) {
		rv = lib_fail(CKPT_ESYSTEM, "ckpt_init: thread: %s", strerror(nrv));
		goto out_close;
	}
	lib.l_ho.ho_thread = true;
	lib.l_init = true;
	goto out_unlock;
out_close:
	lib_close();
out_unlock:
	pthread_mutex_unlock(&lib.l_lock);
	return rv;
}

static struct region *
lib_region(uint32_t id)
{
	for (size_t i = 0; i < lib.l_nregions; i++)
		if (lib.l_regions[i].rg_id == id)
			return &lib.l_regions[i];
	return NULL;
}

int
ckpt_protect(uint32_t id, void *ptr, size_t size)
{
	struct region *r;
	uint64_t total, size64 = size; /* a 32-bit size_t is never over the limit */
	int rv = 0;

	pthread_mutex_lock(&lib.l_lock);
	if (!lib.l_init) {
		rv = lib_fail(CKPT_ENOTINIT, "ckpt_protect: call ckpt_init first");
		goto out;
	}
	if (ptr == NULL || size == 0) {
		rv = lib_fail(CKPT_EINVAL, "ckpt_protect: region %" PRIu32 " has %s", id,
		    ptr == NULL ? "a NULL pointer" : "size 0");
		goto out;
	}
	r = lib_region(id);
	total = lib.l_bytes - (r != NULL ? r->rg_size : 0) + size;
	if (size64 > CKPT_REGION_MAX ||
	    (lib.l_max_bytes != 0 && total > lib.l_max_bytes)) {
		rv = lib_fail(CKPT_ETOOBIG, "ckpt_protect: region %" PRIu32 " of %zu bytes makes "
		    "%" PRIu64 " bytes, over the limit of %" PRIu64, id, size, total,
		    lib.l_max_bytes != 0 ? lib.l_max_bytes : CKPT_REGION_MAX);
		goto out;
	}
	if (r == NULL) {
		struct region *nr;
		if (lib.l_nregions >= lib.l_max_regions) {
			rv = lib_fail(CKPT_ETOOBIG, "ckpt_protect: region %" PRIu32 " is one over "
			    "the limit of %" PRIu32 " regions", id, lib.l_max_regions);
			goto out;
		}
		nr = realloc(lib.l_regions, (lib.l_nregions + 1) * sizeof(*nr));
		if (nr == NULL) {
			rv = lib_fail(CKPT_ENOMEM, "ckpt_protect: out of memory");
			goto out;
		}
		lib.l_regions = nr;
		r = &lib.l_regions[lib.l_nregions++];
		memset(r, 0, sizeof(*r));
		r->rg_id = id;
	}
	if (r->rg_size != size)
		lib.l_layout_changed = true;
	r->rg_ptr = ptr;
	r->rg_size = size;
	r->rg_whole = true;        /* new or moved: all of it is news */
	r->rg_nranges = 0;
	lib.l_bytes = total;
out:
	pthread_mutex_unlock(&lib.l_lock);
	return rv;
}

int
ckpt_unprotect(uint32_t id)
{
	struct region *r;
	int rv = 0;

	pthread_mutex_lock(&lib.l_lock);
	if (!lib.l_init) {
		rv = lib_fail(CKPT_ENOTINIT, "ckpt_unprotect: call ckpt_init first");
		goto out;
	}
	r = lib_region(id);
	if (r == NULL) {
		rv = lib_fail(CKPT_ENOREGION, "ckpt_unprotect: region %" PRIu32 " is not protected",
		    id);
		goto out;
	}
	lib.l_bytes -= r->rg_size;
	*r = lib.l_regions[--lib.l_nregions];
	lib.l_layout_changed = true;
out:
	pthread_mutex_unlock(&lib.l_lock);
	return rv;
}

int
ckpt_mark_changed(uint32_t id, size_t offset, size_t len)
{
	struct region *r;
	int rv = 0;

	pthread_mutex_lock(&lib.l_lock);
	if (!lib.l_init) {
		rv = lib_fail(CKPT_ENOTINIT, "ckpt_mark_changed: call ckpt_init first");
		goto out;
	}
	r = lib_region(id);
	if (r == NULL) {
		rv = lib_fail(CKPT_ENOREGION, "ckpt_mark_changed: region %" PRIu32
		    " is not protected", id);
		goto out;
	}
	if (offset > r->rg_size || len > r->rg_size - offset) {
		rv = lib_fail(CKPT_ERANGE, "ckpt_mark_changed: %zu+%zu is outside region %" PRIu32
		    " (%zu bytes)", offset, len, id, r->rg_size);
		goto out;
	}
	r->rg_hinted = true;
	if (len == 0 || r->rg_whole)
		goto out;
	if (r->rg_nranges > 0) {
		/* Extend the last range when this one touches it (sequential writers). */
		Ckpt__V1__LocalRange *last = &r->rg_ranges[r->rg_nranges - 1];
		if (offset >= last->offset && offset <= last->offset + last->length) {
			uint64_t end = offset + len;
			if (end > last->offset + last->length)
				last->length = end - last->offset;
			goto out;
		}
	}
	if (r->rg_nranges == CKPT_RANGES_MAX) {
		r->rg_whole = true;
		r->rg_nranges = 0;
		goto out;
	}
	ckpt__v1__local_range__init(&r->rg_ranges[r->rg_nranges]);
	r->rg_ranges[r->rg_nranges].offset = offset;
	r->rg_ranges[r->rg_nranges].length = len;
	r->rg_nranges++;
out:
	pthread_mutex_unlock(&lib.l_lock);
	return rv;
}

static int
lib_seg_create(struct seg *sg, size_t size)
{
	struct seg_header *h;
	int fd, rv = 0;

	fd = memfd_create("ckpt-segment", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return lib_fail(CKPT_ESYSTEM, "ckpt_checkpoint: memfd_create: %s", strerror(errno));
	if (ftruncate(fd, (off_t)size) != 0) {
		rv = lib_fail(CKPT_ESYSTEM, "ckpt_checkpoint: %zu-byte segment: %s", size,
		    strerror(errno));
		goto out_close;
	}
	/* Sealed: the agent maps it and must never fault on a shrunk file. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
		rv = lib_fail(CKPT_ESYSTEM, "ckpt_checkpoint: sealing the segment: %s",
		    strerror(errno));
		goto out_close;
	}
	/* Populated now: the copy into it then runs at memcpy speed. */
	sg->sg_map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (sg->sg_map == MAP_FAILED) {
		sg->sg_map = NULL;
		rv = lib_fail(CKPT_ESYSTEM, "ckpt_checkpoint: mapping %zu bytes: %s", size,
		    strerror(errno));
		goto out_close;
	}
	h = (struct seg_header *)sg->sg_map;
	memcpy(h->sh_magic, LIB_SEG_MAGIC, sizeof(h->sh_magic));
	atomic_store(&h->sh_state, LIB_SEG_FREE);
	sg->sg_fd = fd;
	sg->sg_size = size;
	return 0;
out_close:
	close(fd);
	return rv;
}

static bool
lib_seg_free(const struct seg *sg)
{
	struct seg_header *h = (struct seg_header *)sg->sg_map;

	return atomic_load_explicit(&h->sh_state, memory_order_acquire) == LIB_SEG_FREE;
}

/*
 * A free segment of at least size bytes: a free one that is big enough, else
 * an empty slot or a free one too small made anew; with both handed to the
 * agent, waits (1 ms steps) for one until the deadline.
 */
static int
lib_seg_get(size_t size, struct seg **ret_seg)
{
	struct timespec step = { 0, 1000000 };
	unsigned waited = 0;

	for (;;) {
		struct seg *spare = NULL;
		for (int i = 0; i < LIB_SEGMENTS; i++) {
			struct seg *sg = &lib.l_segs[i];
			if (sg->sg_map == NULL) {
				if (spare == NULL)
					spare = sg;
			} else if (lib_seg_free(sg)) {
				if (sg->sg_size >= size) {
					*ret_seg = sg;
					return 0;
				}
				spare = sg;
			}
		}
		if (spare != NULL) {
			int rv;
			lib_seg_drop(spare);
			rv = lib_seg_create(spare, size);
			if (rv == 0)
				*ret_seg = spare;
			return rv;
		}
		if (waited >= lib.l_timeout_ms)
			return lib_fail(CKPT_EBUSY, "ckpt_checkpoint: the agent still stores the "
			    "previous %d checkpoints after %u ms", LIB_SEGMENTS, waited);
		nanosleep(&step, NULL);
		waited++;
	}
}

static size_t
lib_align(size_t n)
{
	return (n + LIB_SEG_ALIGN - 1) & ~(size_t)(LIB_SEG_ALIGN - 1);
}

int64_t
ckpt_checkpoint(void)
{
	Ckpt__V1__LocalCheckpointRequest req = CKPT__V1__LOCAL_CHECKPOINT_REQUEST__INIT;
	Ckpt__V1__LocalRegion *regs = NULL, **regp = NULL;
	nng_msg *msg;
	Ckpt__V1__LocalRange **rangep = NULL;
	struct seg_header *h;
	struct seg *sg = NULL;
	size_t size, nranges = 0, off;
	int64_t rv;

	pthread_mutex_lock(&lib.l_lock);
	if (!lib.l_init) {
		rv = lib_fail(CKPT_ENOTINIT, "ckpt_checkpoint: call ckpt_init first");
		goto out;
	}
	rv = lib_settle();
	if (rv != 0)
		goto out;
	if (lib.l_nregions == 0) {
		rv = lib_fail(CKPT_EINVAL, "ckpt_checkpoint: no region protected");
		goto out;
	}
	size = LIB_SEG_HEADER;
	for (size_t i = 0; i < lib.l_nregions; i++) {
		size += lib_align(lib.l_regions[i].rg_size);
		nranges += lib.l_regions[i].rg_nranges;
	}
	regs = calloc(lib.l_nregions, sizeof(*regs));
	regp = calloc(lib.l_nregions, sizeof(*regp));
	rangep = calloc(nranges ? nranges : 1, sizeof(*rangep));
	if (regs == NULL || regp == NULL || rangep == NULL) {
		rv = lib_fail(CKPT_ENOMEM, "ckpt_checkpoint: out of memory");
		goto out;
	}
	rv = lib_seg_get(size, &sg);
	if (rv != 0)
		goto out;

	/* The pause: the program's regions into the segment. */
	off = LIB_SEG_HEADER;
	nranges = 0;
	for (size_t i = 0; i < lib.l_nregions; i++) {
		struct region *r = &lib.l_regions[i];
		Ckpt__V1__LocalRegion *lr = &regs[i];

		memcpy(sg->sg_map + off, r->rg_ptr, r->rg_size);
		ckpt__v1__local_region__init(lr);
		lr->id = r->rg_id;
		lr->offset = off;
		lr->size = r->rg_size;
		lr->whole = r->rg_whole || !r->rg_hinted || lib.l_layout_changed;
		if (!lr->whole) {
			lr->changed = &rangep[nranges];
			lr->n_changed = r->rg_nranges;
			for (unsigned k = 0; k < r->rg_nranges; k++)
				rangep[nranges++] = &r->rg_ranges[k];
		}
		regp[i] = lr;
		off += lib_align(r->rg_size);
	}
	h = (struct seg_header *)sg->sg_map;
	h->sh_seq = lib.l_seq + 1;
	atomic_store_explicit(&h->sh_state, LIB_SEG_HANDED, memory_order_release);

	req.component = lib.l_component;
	req.fd = sg->sg_fd;
	req.segment_size = sg->sg_size;
	req.seq = lib.l_seq + 1;
	req.regions = regp;
	req.n_regions = lib.l_nregions;
	rv = lib_request(LOCAL_CHECKPOINT, &req.base, &msg);
	if (rv != 0) {
		atomic_store(&h->sh_state, LIB_SEG_FREE);
		goto out;
	}
	/* Handed over without waiting for the answer (lib_settle() takes it). */
	pthread_mutex_lock(&lib.l_ho.ho_lock);
	lib.l_ho.ho_busy = true;
	lib.l_ho.ho_phase = HO_QUEUED;
	lib.l_ho.ho_req = msg;
	lib.l_ho.ho_seq = req.seq;
	lib.l_ho.ho_seg = sg;
	lib.l_ho.ho_go = true;
	/* The sender sends it (lib_sender_main): the pause ends here. */
	pthread_cond_signal(&lib.l_ho.ho_go_cond);
	pthread_mutex_unlock(&lib.l_ho.ho_lock);
	for (size_t i = 0; i < lib.l_nregions; i++) {
		lib.l_regions[i].rg_whole = false;
		lib.l_regions[i].rg_nranges = 0;
	}
	lib.l_layout_changed = false;
	rv = (int64_t)++lib.l_seq;
out:
	free(rangep);
	free(regp);
	free(regs);
	pthread_mutex_unlock(&lib.l_lock);
	return rv;
}

int
ckpt_wait(void)
{
	int rv;

	pthread_mutex_lock(&lib.l_lock);
	if (!lib.l_init)
		rv = lib_fail(CKPT_ENOTINIT, "ckpt_wait: call ckpt_init first");
	else
		rv = lib_settle();
	pthread_mutex_unlock(&lib.l_lock);
	return rv;
}

int
ckpt_restarted(void)
{
	int rv;

	pthread_mutex_lock(&lib.l_lock);
	if (!lib.l_init)
		rv = lib_fail(CKPT_ENOTINIT, "ckpt_restarted: call ckpt_init first");
	else
		rv = lib.l_restart ? 1 : 0;
	pthread_mutex_unlock(&lib.l_lock);
	return rv;
}

int
ckpt_restored_size(uint32_t id, size_t *ret_size)
{
	int rv;

	pthread_mutex_lock(&lib.l_lock);
	if (!lib.l_init) {
		rv = lib_fail(CKPT_ENOTINIT, "ckpt_restored_size: call ckpt_init first");
		goto out;
	}
	if (!lib.l_restart) {
		rv = lib_fail(CKPT_ENORESTART, "ckpt_restored_size: not a restart");
		goto out;
	}
	if (ret_size == NULL) {
		rv = lib_fail(CKPT_EINVAL, "ckpt_restored_size: ret_size is NULL");
		goto out;
	}
	for (size_t i = 0; i < lib.l_nrestored; i++) {
		if (lib.l_restored[i].rs_id == id) {
			*ret_size = (size_t)lib.l_restored[i].rs_size;
			rv = 0;
			goto out;
		}
	}
	rv = lib_fail(CKPT_ENOREGION, "ckpt_restored_size: the checkpoint has no region %"
	    PRIu32, id);
out:
	pthread_mutex_unlock(&lib.l_lock);
	return rv;
}

/* Reads restored region id into dst (size bytes) in pieces. */
static int
lib_fetch(uint32_t id, uint8_t *dst, size_t size)
{
	Ckpt__V1__GetRegionRequest req = CKPT__V1__GET_REGION_REQUEST__INIT;
	size_t off = 0;
	int rv = 0;

	req.component = lib.l_component;
	req.id = id;
	while (off < size) {
		Ckpt__V1__GetRegionReply *rep = NULL;
		size_t want = size - off < lib.l_piece_max ? size - off : lib.l_piece_max;

		req.offset = off;
		req.length = (uint32_t)want;
		rv = lib_call(LOCAL_GET_REGION, &req.base, &ckpt__v1__get_region_reply__descriptor,
		    (ProtobufCMessage **)&rep);
		if (rv != 0)
			break;
		if (rep->data.len != want) {
			rv = lib_fail(CKPT_EAGENT, "ckpt_restore: region %" PRIu32 " at %zu: agent "
			    "sent %zu bytes, not %zu", id, off, rep->data.len, want);
		} else {
			memcpy(dst + off, rep->data.data, want);
			off += want;
		}
		protobuf_c_message_free_unpacked(&rep->base, NULL);
		if (rv != 0)
			break;
	}
	return rv;
}

int
ckpt_restore(void)
{
	int rv = 0;

	pthread_mutex_lock(&lib.l_lock);
	if (!lib.l_init) {
		rv = lib_fail(CKPT_ENOTINIT, "ckpt_restore: call ckpt_init first");
		goto out;
	}
	if (!lib.l_restart) {
		rv = lib_fail(CKPT_ENORESTART, "ckpt_restore: not a restart (or restored already)");
		goto out;
	}
	/* Every region checked before a byte is written. */
	for (size_t i = 0; i < lib.l_nrestored; i++) {
		struct restored *rs = &lib.l_restored[i];
		struct region *r = lib_region(rs->rs_id);
		if (r == NULL) {
			rv = lib_fail(CKPT_ENOREGION, "ckpt_restore: the checkpoint has region %"
			    PRIu32 ", which is not protected", rs->rs_id);
			goto out;
		}
		if (r->rg_size != rs->rs_size) {
			rv = lib_fail(CKPT_ESIZE, "ckpt_restore: region %" PRIu32 " is protected "
			    "with %zu bytes, the checkpoint has %" PRIu64, rs->rs_id, r->rg_size,
			    rs->rs_size);
			goto out;
		}
	}
	for (size_t i = 0; i < lib.l_nrestored; i++) {
		struct region *r = lib_region(lib.l_restored[i].rs_id);
		rv = lib_fetch(r->rg_id, r->rg_ptr, r->rg_size);
		if (rv != 0)
			goto out;
	}
	lib.l_restart = false;
out:
	pthread_mutex_unlock(&lib.l_lock);
	return rv;
}

int
ckpt_finalize(void)
{
	Ckpt__V1__FinalizeRequest req = CKPT__V1__FINALIZE_REQUEST__INIT;
	Ckpt__V1__FinalizeReply *rep = NULL;
	char why[LIB_ERRMSG_MAX];
	int rv, settled;

	pthread_mutex_lock(&lib.l_lock);
	if (!lib.l_init) {
		rv = lib_fail(CKPT_ENOTINIT, "ckpt_finalize: call ckpt_init first");
		goto out;
	}
	settled = lib_settle();
	if (settled != 0)
		snprintf(why, sizeof(why), "%s", lib_errmsg);
	req.component = lib.l_component;
	rv = lib_call(LOCAL_FINALIZE, &req.base, &ckpt__v1__finalize_reply__descriptor,
	    (ProtobufCMessage **)&rep);
	if (rv == 0)
		protobuf_c_message_free_unpacked(&rep->base, NULL);
	if (settled != 0) {
		rv = settled;
		lib_fail(rv, "ckpt_finalize: the last checkpoint was not stored: %s", why);
	}
	/* Finalised in any case: the agent keeps its own mapping of a handed segment. */
	lib_close();
out:
	pthread_mutex_unlock(&lib.l_lock);
	return rv;
}

#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "ckpt/v1/agent.pb-c.h"
#include "ckpt/v1/manager.pb-c.h"
#include "ckpt/v1/nas.pb-c.h"
#include "chunk.h"
#include "comp.h"
#include "demo.h"
#include "err.h"
#include "methods.h"
#include "key.h"
#include "log.h"
#include "nasc.h"
#include "queue.h"
#include "rpc.h"
#include "sha.h"
#include "sysinfo.h"
#include "util.h"


#define AGENT_CONTROL_TIMEOUT_MS 3000u  /* Attach, Heartbeat, Notify, NAS List */
#define AGENT_STORE_CHECK_MS 2000u      /* a new NAS list: each NAS's Stat (its store id) */
#define AGENT_STORE_TIMEOUT_MS 3000u    /* each NAS call (<= 4 MiB) of a periodic checkpoint */
#define AGENT_PROBE_MAX_MS 1000u        /* Nas.Stat while the NAS is down */
#define AGENT_PROBE_MIN_MS 100u
#define AGENT_MIGRATE_TIMEOUT_MS 60000u /* Manager.Migrate: stop, final checkpoint, restore */
#define AGENT_CALL_MIN_MS 1000u         /* least time given to a call made for a handler */
#define AGENT_BACKOFF_MIN_MS 100u
#define AGENT_BACKOFF_MAX_MS 2000u
#define AGENT_HEARTBEAT_DEFAULT_MS 200u
#define AGENT_HEARTBEAT_MAX_MS 60000u
#define AGENT_REATTACH_DEFAULT_MS 3000u /* heartbeats failing this long: attach again */
#define AGENT_WARN_EVERY_MS 5000u       /* repeated attach failures are logged this often */
#define AGENT_RECV_MAX (1u << 20)       /* Agent requests are small */
#define AGENT_THREADS_MAX 5
#define AGENT_NOTES_MAX COMP_MAX        /* notifications waiting: one per component */

/*
 * A component this agent was started with, without --fresh: declared to the
 * manager until it runs here (restored or started fresh) or another node is
 * found to run it.
 */
enum agent_decl_state {
	AGENT_DECL_WAITING, /* declared at each attach; nothing runs here yet */
	AGENT_DECL_FRESH,   /* no checkpoint exists: the checkpoint loop starts it */
	AGENT_DECL_DONE,    /* runs here, or elsewhere */
};

struct agent_decl {
	comp_name ad_name;
	uint64_t ad_bytes;
	struct comp_req ad_reqs[COMP_REQUIRES_MAX];
	size_t ad_nreqs;
	enum agent_decl_state ad_state; /* under a_mu */
};

/* A NAS client with the addresses it was opened for; shared, reference-counted. */
struct agent_nas {
	struct nasc *an_nasc;
	char **an_urls;
	size_t an_count;
	unsigned an_refs; /* under a_mu */
};

struct agent {
	/* Configuration: fixed once agent_start() ran. */
	char *a_node;
	char *a_manager;
	char *a_listen;
	char *a_advertise;                 /* NULL: announce the listen URL */
	struct agent_label *a_labels;
	size_t a_nlabels;
	unsigned a_interval_ms;
	uint64_t a_migrate_after_ms;
	unsigned a_workers;
	uint64_t a_queue_max;
	uint32_t a_chunk_min, a_chunk_avg, a_chunk_max; /* all 0: nasc's defaults */
	comp_name *a_own; /* components this agent was started with */
	size_t a_nown;
	bool a_fresh;                 /* start them fresh instead of resuming them */
	struct agent_decl *a_decl;    /* without a_fresh: the same, to resume */
	size_t a_ndecl;

	struct comp_table *a_comps;
	struct queue *a_queue;      /* checkpoints waiting for the NAS */
	pthread_mutex_t a_flush_mu; /* one queue flush at a time */
	struct rpc_server *a_server;
	struct rpc_client *a_mgr;
	struct arena *a_link_arena; /* the link thread's, for Attach and Heartbeat requests */
	struct sysinfo_cap a_cap;   /* the link thread's, last capacity read */
	uint64_t a_instance;        /* this process, random at agent_new(), never 0 */

	pthread_mutex_t a_mu; /* guards what follows */
	pthread_cond_t a_cv;  /* signalled on stop and on attach */
	bool a_stopping;
	bool a_nas_down;            /* the last store failed for want of the NAS */
	char a_fatal[AGENT_FATAL_MAX]; /* why the agent must exit ("": it need not) */
	bool a_ckpt_kick;           /* checkpoint now (after a restore) */
	unsigned a_attaches;        /* successful attaches so far */
	uint64_t a_first_attach_ms; /* monotonic */
	unsigned a_heartbeat_ms;
	unsigned a_reattach_ms;
	struct agent_nas *a_nas; /* NULL until attached */
	/* Notifications not sent yet, oldest first, at most one per component. */
	struct nasc_info a_notes[AGENT_NOTES_MAX];
	size_t a_nnotes;

	pthread_t a_threads[AGENT_THREADS_MAX];
	unsigned a_nthreads;
	bool a_started, a_stopped;
};

/* ---- small helpers ---- */

static void
agent_hex(const uint8_t *digest, size_t len, char out[SHA_HEX_LEN + 1])
{
	if (len == SHA_LEN)
		sha_hex(digest, SHA_LEN, out);
	else
		snprintf(out, SHA_HEX_LEN + 1, "(none)");
}

static void
agent_deadline(struct timespec *ts, uint64_t mono_ms)
{
	ts->tv_sec = (time_t)(mono_ms / 1000u);
	ts->tv_nsec = (long)(mono_ms % 1000u) * 1000000L;
}

/* Sleeps until the monotonic time deadline_ms or until stop. True when stopping. */
static bool
agent_sleep_until(struct agent *a, uint64_t deadline_ms)
{
	struct timespec ts;
	bool stopping;

	agent_deadline(&ts, deadline_ms);
	pthread_mutex_lock(&a->a_mu);
	while (!a->a_stopping && pthread_cond_timedwait(&a->a_cv, &a->a_mu, &ts) != ETIMEDOUT) {
	}
	stopping = a->a_stopping;
	pthread_mutex_unlock(&a->a_mu);
	return stopping;
}

static bool
agent_sleep(struct agent *a, unsigned ms)
{
	return agent_sleep_until(a, util_now_mono_ms() + ms);
}

static bool
agent_stopping(struct agent *a)
{
	bool stopping;
	pthread_mutex_lock(&a->a_mu);
	stopping = a->a_stopping;
	pthread_mutex_unlock(&a->a_mu);
	return stopping;
}

/* Waits for the first attach; false when stopping (or timeout_ms passed, if not 0). */
static bool
agent_wait_first_attach(struct agent *a, unsigned timeout_ms, uint64_t *ret_when)
{
	uint64_t until = util_now_mono_ms() + timeout_ms;
	struct timespec ts;
	bool ok;

	agent_deadline(&ts, until);
	pthread_mutex_lock(&a->a_mu);
	while (!a->a_stopping && a->a_attaches == 0) {
		if (timeout_ms == 0)
			pthread_cond_wait(&a->a_cv, &a->a_mu);
		else if (pthread_cond_timedwait(&a->a_cv, &a->a_mu, &ts) == ETIMEDOUT)
			break;
	}
	ok = !a->a_stopping && a->a_attaches > 0;
	if (ok && ret_when != NULL)
		*ret_when = a->a_first_attach_ms;
	pthread_mutex_unlock(&a->a_mu);
	return ok;
}

bool
agent_wait_attached(struct agent *a, unsigned timeout_ms)
{
	return agent_wait_first_attach(a, timeout_ms > 0 ? timeout_ms : 1, NULL);
}

/* backoff * [0.75, 1.25) */
static unsigned
agent_jitter(unsigned ms, uint64_t *seed)
{
	uint64_t x = *seed;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*seed = x;
	return ms - ms / 4 + (unsigned)(x % (ms / 2 + 1));
}

static unsigned
agent_call_budget(struct rpc_call *call)
{
	unsigned ms = rpc_call_remaining_ms(call);
	return ms > AGENT_CALL_MIN_MS ? ms : AGENT_CALL_MIN_MS;
}

static void
agent_set_error(struct rpc_error *err, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
agent_set_error(struct rpc_error *err, int rv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->re_msg, sizeof(err->re_msg), fmt, ap);
	va_end(ap);
	err->re_code = (int)err_to_code(rv);
}

/* ---- the NAS client ---- */

static struct agent_nas *
agent_nas_get(struct agent *a)
{
	struct agent_nas *h;
	pthread_mutex_lock(&a->a_mu);
	h = a->a_nas;
	if (h != NULL)
		h->an_refs++;
	pthread_mutex_unlock(&a->a_mu);
	return h;
}

static void
agent_nas_put(struct agent *a, struct agent_nas *h)
{
	bool last;

	if (h == NULL)
		return;
	pthread_mutex_lock(&a->a_mu);
	last = --h->an_refs == 0;
	pthread_mutex_unlock(&a->a_mu);
	if (!last)
		return;
	nasc_close(h->an_nasc);
	for (size_t i = 0; i < h->an_count; i++)
		free(h->an_urls[i]);
	free(h->an_urls);
	free(h);
}

static bool
agent_nas_same(const struct agent_nas *h, char *const *urls, size_t n)
{
	if (h == NULL || h->an_count != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(h->an_urls[i], urls[i]) != 0)
			return false;
	return true;
}

/* The background check of a NAS list (nasc_check_store), said once. */
static void
agent_on_store_check(void *arg, int rv, const char *msg)
{
	(void)arg;
	if (rv == 0)
		LOG_INFO("the NAS addresses answered: they are one store");
	else
		LOG_ERROR("NAS list refused: %s", msg);
}

/*
 * Makes urls the NAS addresses in use, unless they already are. A list of
 * different stores is refused (-EXDEV): the old one stays.
 */
static int
agent_nas_update(struct agent *a, char *const *urls, size_t n, struct rpc_error *err)
{
	struct agent_nas *h, *old;
	bool same;
	int rv;

	pthread_mutex_lock(&a->a_mu);
	same = agent_nas_same(a->a_nas, urls, n);
	pthread_mutex_unlock(&a->a_mu);
	if (same)
		return 0;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->an_urls = calloc(n, sizeof(*h->an_urls));
	if (h->an_urls == NULL) {
		rv = -ENOMEM;
		goto out_free;
	}
	for (h->an_count = 0; h->an_count < n; h->an_count++) {
		h->an_urls[h->an_count] = strdup(urls[h->an_count]);
		if (h->an_urls[h->an_count] == NULL) {
			rv = -ENOMEM;
			goto out_free;
		}
	}
	rv = nasc_open(h->an_urls, h->an_count, 0, &h->an_nasc, err);
	if (rv != 0)
		goto out_free;
	rv = nasc_check_store(h->an_nasc, AGENT_STORE_CHECK_MS, agent_on_store_check, NULL, err);
	if (rv == -EXDEV) {
		nasc_close(h->an_nasc);
		goto out_free;
	}
	if (rv == -EAGAIN)
		LOG_WARN("cannot check yet that the NAS addresses are one store (%s); checking again "
		         "until they answer",
		    err->re_msg);
	rv = 0;
	if (a->a_chunk_max != 0 &&
	    nasc_set_chunking(h->an_nasc, a->a_chunk_min, a->a_chunk_avg, a->a_chunk_max) != 0) {
		nasc_close(h->an_nasc); /* checked by agent_new(): not reached */
		rv = -EINVAL;
		goto out_free;
	}
	h->an_refs = 1; /* the agent's own reference */
	pthread_mutex_lock(&a->a_mu);
	old = a->a_nas;
	a->a_nas = h;
	pthread_mutex_unlock(&a->a_mu);
	agent_nas_put(a, old);
	return 0;

out_free:
	for (size_t i = 0; i < h->an_count; i++)
		free(h->an_urls[i]);
	free(h->an_urls);
	free(h);
	return rv;
}

/* ---- checkpoints ---- */

/* A CheckpointInfo that points into info (valid as long as info). */
static void
agent_info_view(const struct nasc_info *info, Ckpt__V1__CheckpointInfo *ret_pb)
{
	ckpt__v1__checkpoint_info__init(ret_pb);
	ret_pb->node = (char *)info->ni_node;
	ret_pb->component = (char *)info->ni_component;
	ret_pb->seq = info->ni_seq;
	ret_pb->epoch = info->ni_epoch;
	ret_pb->size = info->ni_size;
	ret_pb->sha256.data = (uint8_t *)info->ni_sha256;
	ret_pb->sha256.len = SHA_LEN;
	ret_pb->created_unix_ms = info->ni_created_unix_ms;
	ret_pb->chunk_count = info->ni_chunk_count;
	ret_pb->kind = (char *)info->ni_kind;
}

/* The same, copied into arena (for a reply). */
static Ckpt__V1__CheckpointInfo *
agent_info_copy(struct arena *arena, const struct nasc_info *info)
{
	Ckpt__V1__CheckpointInfo view, *pb = arena_alloc(arena, sizeof(*pb));

	if (pb == NULL)
		return NULL;
	agent_info_view(info, &view);
	*pb = view;
	pb->node = arena_strdup(arena, view.node);
	pb->component = arena_strdup(arena, view.component);
	pb->kind = arena_strdup(arena, view.kind);
	pb->sha256.data = arena_memdup(arena, view.sha256.data, SHA_LEN);
	if (pb->node == NULL || pb->component == NULL || pb->kind == NULL || pb->sha256.data == NULL)
		return NULL;
	return pb;
}

/*
 * Where does name's seq stand on the NAS? Its checkpoints go on at the
 * latest seq (of any node) + 1, with an epoch no older than the latest's.
 */
static int
agent_learn_seq(struct nasc *n, const char *name, struct comp_seq *seq,
    struct rpc_error *err)
{
	Ckpt__V1__ListRequest req = CKPT__V1__LIST_REQUEST__INIT;
	Ckpt__V1__ListReply *rep = NULL;
	uint64_t latest = 0, epoch = seq->cs_epoch;
	int rv;

	req.component = (char *)name;
	req.latest_only = true;
	rv = nasc_call(n, NAS_LIST, &req.base, AGENT_CONTROL_TIMEOUT_MS, (ProtobufCMessage **)&rep,
	    err);
	if (rv == -ENOENT) {
		rv = 0;
	} else if (rv == 0) {
		for (size_t i = 0; i < rep->n_checkpoints; i++) {
			const Ckpt__V1__CheckpointInfo *ci = rep->checkpoints[i];
			if (ci == NULL || strcmp(ci->component, name) != 0)
				continue;
			if (ci->seq > latest)
				latest = ci->seq;
			if (ci->epoch > epoch)
				epoch = ci->epoch;
		}
		rpc_reply_free(&rep->base);
	} else {
		return rv;
	}
	if (latest == UINT64_MAX) {
		agent_set_error(err, -ERANGE, "seq of %s is exhausted on the NAS", name);
		return -ERANGE;
	}
	/*
	 * A component this node already stored or restored keeps its epoch: a
	 * newer one on the NAS means another node owns it now (fencing). Only a
	 * component started here that never stored takes the NAS's epoch up.
	 */
	if (seq->cs_owned && epoch > seq->cs_epoch) {
		agent_set_error(err, -ESTALE, "stale epoch %" PRIu64 " < %" PRIu64
		    " for component %s: the NAS holds a newer owner's checkpoints",
		    seq->cs_epoch, epoch, name);
		return -ESTALE;
	}
	if (latest > 0)
		LOG_INFO("NAS holds %s up to seq %" PRIu64 " (epoch %" PRIu64 "); continuing at %" PRIu64,
		    name, latest, epoch, latest + 1);
	seq->cs_next = latest + 1;
	seq->cs_epoch = epoch;
	seq->cs_known = true;
	seq->cs_owned = true;
	return 0;
}

static void
agent_notify(struct agent *a, const struct nasc_info *info)
{
	Ckpt__V1__NotifyRequest req = CKPT__V1__NOTIFY_REQUEST__INIT;
	Ckpt__V1__CheckpointInfo ci;
	ProtobufCMessage *rep = NULL;
	struct rpc_error err;
	int rv;

	agent_info_view(info, &ci);
	req.checkpoint = &ci;
	rv = rpc_client_call(a->a_mgr, MGR_NOTIFY, &req.base, AGENT_CONTROL_TIMEOUT_MS, &rep, &err);
	if (rv != 0) {
		if (!agent_stopping(a))
			LOG_WARN("notification of new checkpoint %s@%" PRIu64 " failed: %s",
			    info->ni_component, info->ni_seq, err.re_msg);
		return;
	}
	rpc_reply_free(rep);
	LOG_INFO("notification of new checkpoint sent: %s@%" PRIu64, info->ni_component,
	    info->ni_seq);
}

/*
 * Queues the notification of a stored checkpoint for the notifier thread, so
 * that a slow or absent manager does not hold up checkpoints. A newer
 * checkpoint of the same component replaces one still waiting (the manager
 * keeps the latest).
 */
static void
agent_notify_later(struct agent *a, const struct nasc_info *info)
{
	size_t i;

	pthread_mutex_lock(&a->a_mu);
	for (i = 0; i < a->a_nnotes; i++)
		if (strcmp(a->a_notes[i].ni_component, info->ni_component) == 0)
			break;
	if (i == a->a_nnotes && a->a_nnotes == AGENT_NOTES_MAX) {
		/* Cannot happen with at most COMP_MAX components; drop the oldest. */
		memmove(&a->a_notes[0], &a->a_notes[1], (AGENT_NOTES_MAX - 1) * sizeof(a->a_notes[0]));
		i = --a->a_nnotes;
	}
	a->a_notes[i] = *info;
	if (i == a->a_nnotes)
		a->a_nnotes++;
	pthread_cond_broadcast(&a->a_cv);
	pthread_mutex_unlock(&a->a_mu);
}

static void *
agent_notifier_main(void *arg)
{
	struct agent *a = arg;

	for (;;) {
		struct nasc_info info;

		pthread_mutex_lock(&a->a_mu);
		while (!a->a_stopping && a->a_nnotes == 0)
			pthread_cond_wait(&a->a_cv, &a->a_mu);
		if (a->a_stopping) {
			pthread_mutex_unlock(&a->a_mu);
			break;
		}
		info = a->a_notes[0];
		memmove(&a->a_notes[0], &a->a_notes[1], (a->a_nnotes - 1) * sizeof(a->a_notes[0]));
		a->a_nnotes--;
		pthread_mutex_unlock(&a->a_mu);
		agent_notify(a, &info);
	}
	return NULL;
}

/* Errors after which the checkpoint is kept for later: the NAS is away or overloaded. */
static bool
agent_transient(int rv)
{
	switch (rv) {
	case -ECONNREFUSED:
	case -ETIMEDOUT:
	case -ENOSPC:
	case -EIO:
	case -EPROTO:
	case -ECONNRESET:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -ENOTCONN:
	case -EXDEV: /* a NAS list of different stores: kept until the manager gives a good one */
		return true;
	default:
		return false;
	}
}

static void
agent_set_nas_down(struct agent *a, bool down, const char *why)
{
	char max[UTIL_SIZE_STR_MAX];
	bool was;

	pthread_mutex_lock(&a->a_mu);
	was = a->a_nas_down;
	a->a_nas_down = down;
	pthread_mutex_unlock(&a->a_mu);
	if (down && !was)
		LOG_WARN("NAS unavailable (%s): checkpoints wait in the local queue (at most %s)",
		    why, util_fmt_size(a->a_queue_max, max));
	else if (!down && was)
		LOG_INFO("NAS available again: storing the queued checkpoints in order");
}

static bool
agent_nas_down(struct agent *a)
{
	bool down;
	pthread_mutex_lock(&a->a_mu);
	down = a->a_nas_down;
	pthread_mutex_unlock(&a->a_mu);
	return down;
}

/*
 * Another node owns name now: stop running it, forget its queued
 * checkpoints, say so once.
 */
static void
agent_lost(struct agent *a, const char *name, const char *why)
{
	size_t dropped;

	if (comp_revoke(a->a_comps, name) != 0)
		return;
	dropped = queue_drop_component(a->a_queue, name);
	LOG_WARN("component %s stopped: node %s lost its ownership (%s)%s", name, a->a_node, why,
	    dropped > 0 ? "; its queued checkpoints are dropped" : "");
}

/*
 * A Store refused with FAILED_PRECONDITION: a stale epoch means another node
 * owns the component (the NAS says so in its message; otherwise its List
 * tells). True when the component was given up.
 */
static bool
agent_fence_check(struct agent *a, struct nasc *n, const char *name, uint64_t epoch,
    const struct rpc_error *serr)
{
	Ckpt__V1__ListRequest req = CKPT__V1__LIST_REQUEST__INIT;
	Ckpt__V1__ListReply *rep = NULL;
	struct rpc_error err;
	uint64_t newest = 0;
	char why[RPC_ERRMSG_MAX + 64];

	if (strstr(serr->re_msg, "stale epoch") != NULL) {
		snprintf(why, sizeof(why), "the NAS refused its commit with epoch %" PRIu64 ": %s",
		    epoch, serr->re_msg);
		agent_lost(a, name, why);
		return true;
	}
	req.component = (char *)name;
	req.latest_only = true;
	if (nasc_call(n, NAS_LIST, &req.base, AGENT_CONTROL_TIMEOUT_MS, (ProtobufCMessage **)&rep,
		&err) != 0)
		return false;
	for (size_t i = 0; i < rep->n_checkpoints; i++)
		if (rep->checkpoints[i] != NULL && strcmp(rep->checkpoints[i]->component, name) == 0 &&
		    rep->checkpoints[i]->epoch > newest)
			newest = rep->checkpoints[i]->epoch;
	rpc_reply_free(&rep->base);
	if (newest <= epoch)
		return false;
	snprintf(why, sizeof(why), "the NAS holds epoch %" PRIu64 ", newer than its %" PRIu64,
	    newest, epoch);
	agent_lost(a, name, why);
	return true;
}

/* Keeps a snapshot for later; takes snap->cp_buf. */
static void
agent_enqueue(struct agent *a, const char *name, struct comp_snap *snap, struct comp_seq *seq)
{
	struct queue_item it;
	struct queue_drop drops[4];
	size_t ndropped = 0;
	struct queue_stats st;
	int rv;

	memset(&it, 0, sizeof(it));
	snprintf(it.qi_component, sizeof(it.qi_component), "%s", name);
	it.qi_seq = seq->cs_known ? seq->cs_next : 0;
	it.qi_epoch = seq->cs_epoch;
	it.qi_buf = snap->cp_buf;
	it.qi_len = snap->cp_len;
	it.qi_queued_ms = util_now_mono_ms();
	rv = queue_push(a->a_queue, &it, drops, 4, &ndropped);
	if (rv == -ENOMEM) {
		free(snap->cp_buf);
		LOG_WARN("checkpoint of %s dropped: out of memory for the queue", name);
		snap->cp_buf = NULL;
		return;
	}
	snap->cp_buf = NULL;
	if (rv == 0 && seq->cs_known)
		seq->cs_next++;
	queue_get_stats(a->a_queue, &st);
	for (size_t i = 0; i < ndropped && i < 4; i++) {
		char max[UTIL_SIZE_STR_MAX], len[UTIL_SIZE_STR_MAX];
		LOG_WARN("checkpoint queue full (%s): dropped the oldest, %s@%" PRIu64
			 " (%s); %" PRIu64 " dropped so far",
		    util_fmt_size(st.qs_max_bytes, max), drops[i].qd_component, drops[i].qd_seq,
		    util_fmt_size(drops[i].qd_len, len), st.qs_dropped);
	}
	if (ndropped > 4)
		LOG_WARN("checkpoint queue full: %zu more dropped", ndropped - 4);
	if (rv == 0)
		LOG_DEBUG("checkpoint of %s queued (%u waiting, %" PRIu64 " bytes)", name, st.qs_items,
		    st.qs_bytes);
}

/*
 * Checkpoints name now: copies its state out, stores it on the NAS and
 * notifies the manager. final: also a STOPPED component (its last one).
 * may_queue: when the NAS is down (or checkpoints already wait), keep it in
 * the queue and return 0 with *ret_queued set. Logs the outcome; on failure
 * err says why.
 */
static int
agent_checkpoint(struct agent *a, const char *name, bool final, bool may_queue,
    unsigned timeout_ms, struct nasc_info *ret_info, bool *ret_queued, struct rpc_error *err)
{
	struct agent_nas *h = NULL;
	struct comp_snap snap;
	struct comp_seq seq;
	struct nasc_put put;
	struct nasc_info info;
	uint64_t stored = 0;
	char hex[SHA_HEX_LEN + 1], human[UTIL_SIZE_STR_MAX];
	int rv;

	err->re_code = 0;
	err->re_msg[0] = '\0';
	if (ret_queued != NULL)
		*ret_queued = false;
	rv = comp_ckpt_begin(a->a_comps, name, final, &snap);
	if (rv == -ENOENT) {
		agent_set_error(err, rv, "component %s does not run on node %s", name, a->a_node);
		return rv;
	}
	if (rv != 0) {
		agent_set_error(err, rv, "copying the state of %s: %s", name, err_str(rv));
		goto out_log;
	}
	seq = snap.cp_seq;
	if (may_queue && (agent_nas_down(a) || !queue_empty(a->a_queue))) {
		/* Behind what already waits, in order. */
		agent_enqueue(a, name, &snap, &seq);
		if (ret_queued != NULL)
			*ret_queued = true;
		goto out_end;
	}
	h = agent_nas_get(a);
	if (h == NULL) {
		rv = -ECONNREFUSED;
		agent_set_error(err, rv, "no NAS address yet: node %s has not attached to %s",
		    a->a_node, a->a_manager);
		goto out_end;
	}
	if (!seq.cs_known) {
		rv = agent_learn_seq(h->an_nasc, name, &seq, err);
		if (rv == -ESTALE)
			goto out_stale;
		if (rv != 0)
			goto out_queue;
	}
	put.np_node = a->a_node;
	put.np_component = name;
	put.np_kind = COMP_KIND;
	put.np_seq = seq.cs_next;
	put.np_epoch = seq.cs_epoch;
	rv = nasc_store_buf(h->an_nasc, &put, snap.cp_buf, snap.cp_len, timeout_ms, &info, err);
	if (rv == -EEXIST) {
		/* Someone holds that seq: learn again where it stands. */
		seq.cs_known = false;
		seq.cs_next++;
		goto out_end;
	}
	if (rv == -ESTALE) {
out_stale:
		comp_ckpt_end(a->a_comps, name, &seq, 0);
		free(snap.cp_buf);
		if (agent_fence_check(a, h->an_nasc, name, put.np_epoch, err)) {
			agent_nas_put(a, h);
			return rv;
		}
		agent_nas_put(a, h);
		goto out_log;
	}
out_queue:
	if (rv != 0 && may_queue && agent_transient(rv) && !agent_stopping(a)) {
		agent_set_nas_down(a, true, err->re_msg[0] != '\0' ? err->re_msg : err_str(rv));
		agent_enqueue(a, name, &snap, &seq);
		if (ret_queued != NULL)
			*ret_queued = true;
		rv = 0;
		goto out_end;
	}
	if (rv != 0)
		goto out_end;
	agent_set_nas_down(a, false, NULL);
	/* Fill what a terse NAS reply may leave out. */
	if (info.ni_seq == 0)
		info.ni_seq = put.np_seq;
	if (info.ni_node[0] == '\0')
		snprintf(info.ni_node, sizeof(info.ni_node), "%s", a->a_node);
	if (info.ni_component[0] == '\0')
		snprintf(info.ni_component, sizeof(info.ni_component), "%s", name);
	if (info.ni_kind[0] == '\0')
		snprintf(info.ni_kind, sizeof(info.ni_kind), "%s", COMP_KIND);
	if (info.ni_size == 0)
		info.ni_size = snap.cp_len;
	if (info.ni_epoch == 0)
		info.ni_epoch = put.np_epoch;
	stored = info.ni_seq;
	seq.cs_next = stored + 1;
	seq.cs_known = true;
	seq.cs_owned = true;
	sha_hex(info.ni_sha256, SHA_LEN, hex);
	LOG_INFO("checkpoint stored on NAS: %s/%s@%" PRIu64 " size=%" PRIu64 " (%s) sha256=%s",
	    info.ni_node, info.ni_component, info.ni_seq, info.ni_size,
	    util_fmt_size(info.ni_size, human), hex);
	/* A final checkpoint is notified before Stop answers; others in the background. */
	if (final)
		agent_notify(a, &info);
	else
		agent_notify_later(a, &info);
	if (ret_info != NULL)
		*ret_info = info;
out_end:
	comp_ckpt_end(a->a_comps, name, &seq, stored);
	free(snap.cp_buf);
	agent_nas_put(a, h);
out_log:
	if (rv != 0 && err->re_msg[0] == '\0')
		agent_set_error(err, rv, "%s", err_str(rv));
	if (rv != 0 && agent_stopping(a))
		LOG_DEBUG("checkpoint of %s abandoned (stopping): %s", name, err->re_msg);
	else if (rv != 0)
		LOG_WARN("checkpoint of %s failed: %s", name, err->re_msg);
	return rv;
}

/*
 * Stores the queued checkpoints, oldest first, until the queue is empty or
 * the NAS fails again. Returns how many were stored.
 */
static size_t
agent_queue_flush(struct agent *a, unsigned timeout_ms)
{
	struct agent_nas *h;
	struct queue_item it;
	size_t stored = 0;

	pthread_mutex_lock(&a->a_flush_mu);
	h = agent_nas_get(a);
	while (h != NULL && !agent_stopping(a) && queue_take(a->a_queue, &it)) {
		struct nasc_put put = { a->a_node, it.qi_component, COMP_KIND, it.qi_seq,
			it.qi_epoch };
		struct nasc_info info;
		struct rpc_error err;
		char hex[SHA_HEX_LEN + 1], human[UTIL_SIZE_STR_MAX];
		int rv;

		rv = nasc_store_buf(h->an_nasc, &put, it.qi_buf, it.qi_len, timeout_ms, &info, &err);
		if (rv == -EEXIST && put.np_seq != 0) {
			/* That seq was taken meanwhile: the next free one keeps the order. */
			put.np_seq = 0;
			rv = nasc_store_buf(h->an_nasc, &put, it.qi_buf, it.qi_len, timeout_ms, &info,
			    &err);
		}
		if (rv == -ESTALE) {
			free(it.qi_buf);
			if (!agent_fence_check(a, h->an_nasc, it.qi_component, it.qi_epoch, &err))
				LOG_WARN("queued checkpoint of %s dropped: %s", it.qi_component,
				    err.re_msg);
			continue;
		}
		if (rv != 0 && agent_transient(rv)) {
			queue_untake(a->a_queue, &it);
			agent_set_nas_down(a, true, err.re_msg);
			break;
		}
		if (rv != 0) {
			LOG_WARN("queued checkpoint of %s dropped: %s", it.qi_component, err.re_msg);
			free(it.qi_buf);
			continue;
		}
		agent_set_nas_down(a, false, NULL);
		if (info.ni_seq == 0)
			info.ni_seq = put.np_seq;
		if (info.ni_node[0] == '\0')
			snprintf(info.ni_node, sizeof(info.ni_node), "%s", a->a_node);
		if (info.ni_component[0] == '\0')
			snprintf(info.ni_component, sizeof(info.ni_component), "%s", it.qi_component);
		if (info.ni_kind[0] == '\0')
			snprintf(info.ni_kind, sizeof(info.ni_kind), "%s", COMP_KIND);
		if (info.ni_size == 0)
			info.ni_size = it.qi_len;
		if (info.ni_epoch == 0)
			info.ni_epoch = put.np_epoch;
		sha_hex(info.ni_sha256, SHA_LEN, hex);
		LOG_INFO("checkpoint stored on NAS: %s/%s@%" PRIu64 " size=%" PRIu64 " (%s) sha256=%s "
			 "(from the queue, taken %" PRIu64 " ms ago)",
		    info.ni_node, info.ni_component, info.ni_seq, info.ni_size,
		    util_fmt_size(info.ni_size, human), hex,
		    util_now_mono_ms() - it.qi_queued_ms);
		comp_note_stored(a->a_comps, it.qi_component, info.ni_seq);
		queue_count_stored(a->a_queue);
		agent_notify_later(a, &info);
		free(it.qi_buf);
		stored++;
	}
	agent_nas_put(a, h);
	pthread_mutex_unlock(&a->a_flush_mu);
	return stored;
}

/* Whether the NAS answers now (a short Nas.Stat). */
static bool
agent_nas_probe(struct agent *a, unsigned timeout_ms)
{
	Ckpt__V1__StatRequest req = CKPT__V1__STAT_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	struct agent_nas *h = agent_nas_get(a);
	struct rpc_error err;
	int rv = -ENOTCONN;

	if (h != NULL)
		rv = nasc_call(h->an_nasc, NAS_STAT, &req.base, timeout_ms, &rep, &err);
	agent_nas_put(a, h);
	if (rv == 0)
		rpc_reply_free(rep);
	return rv == 0;
}

/* ---- resume: the components this agent was started with ---- */

/*
 * The declared components still waiting, as ComponentStatus entries in arena
 * (AttachRequest.declared). One that runs here already is settled.
 */
static int
agent_decl_status(struct agent *a, struct arena *arena, Ckpt__V1__ComponentStatus ***ret_list,
    size_t *ret_count)
{
	Ckpt__V1__ComponentStatus **list;
	size_t n = 0;
	int rv = 0;

	if (a->a_ndecl == 0)
		return 0;
	list = arena_alloc(arena, a->a_ndecl * sizeof(*list));
	if (list == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&a->a_mu);
	for (size_t i = 0; i < a->a_ndecl && rv == 0; i++) {
		struct agent_decl *d = &a->a_decl[i];
		Ckpt__V1__ComponentStatus *cs;
		Ckpt__V1__Label *labels, **lptrs;

		if (d->ad_state != AGENT_DECL_WAITING)
			continue;
		if (comp_is_running(a->a_comps, d->ad_name)) {
			d->ad_state = AGENT_DECL_DONE;
			continue;
		}
		cs = arena_alloc(arena, sizeof(*cs));
		labels = arena_alloc(arena, (d->ad_nreqs + 1) * sizeof(*labels));
		lptrs = arena_alloc(arena, (d->ad_nreqs + 1) * sizeof(*lptrs));
		if (cs == NULL || labels == NULL || lptrs == NULL) {
			rv = -ENOMEM;
			break;
		}
		ckpt__v1__component_status__init(cs);
		cs->requires = d->ad_nreqs > 0 ? lptrs : NULL;
		cs->name = d->ad_name;
		cs->state = (char *)"declared";
		cs->kind = (char *)COMP_KIND;
		cs->state_bytes = d->ad_bytes;
		for (size_t j = 0; j < d->ad_nreqs; j++) {
			ckpt__v1__label__init(&labels[j]);
			labels[j].key = d->ad_reqs[j].cq_key;
			labels[j].value = d->ad_reqs[j].cq_value;
			cs->requires[j] = &labels[j];
		}
		cs->n_requires = d->ad_nreqs;
		list[n++] = cs;
	}
	pthread_mutex_unlock(&a->a_mu);
	if (rv == 0 && n > 0) {
		*ret_list = list;
		*ret_count = n;
	}
	return rv;
}

/* The decl of name, or NULL. Called with a_mu held. */
static struct agent_decl *
agent_decl_find(struct agent *a, const char *name)
{
	for (size_t i = 0; i < a->a_ndecl; i++)
		if (strcmp(a->a_decl[i].ad_name, name) == 0)
			return &a->a_decl[i];
	return NULL;
}

/* The manager's word on declared components (HeartbeatReply). */
static void
agent_decl_notes(struct agent *a, char *const *fresh, size_t nfresh, char *const *elsewhere,
    size_t nelsewhere)
{
	bool kick = false;

	if (nfresh == 0 && nelsewhere == 0)
		return;
	pthread_mutex_lock(&a->a_mu);
	for (size_t i = 0; i < nfresh; i++) {
		struct agent_decl *d = agent_decl_find(a, fresh[i]);
		if (d != NULL && d->ad_state == AGENT_DECL_WAITING) {
			d->ad_state = AGENT_DECL_FRESH;
			kick = true;
		}
	}
	for (size_t i = 0; i < nelsewhere; i++) {
		struct agent_decl *d = agent_decl_find(a, elsewhere[i]);
		if (d != NULL && d->ad_state == AGENT_DECL_WAITING) {
			d->ad_state = AGENT_DECL_DONE;
			LOG_WARN("component %s not started on node %s: another node runs it (the "
				 "manager says so); it stays there",
			    d->ad_name, a->a_node);
		}
	}
	if (kick) {
		/* The checkpoint loop starts them (a large state takes a while to fill). */
		a->a_ckpt_kick = true;
		pthread_cond_broadcast(&a->a_cv);
	}
	pthread_mutex_unlock(&a->a_mu);
}

/* name was restored here (Agent.Restore): no longer waiting. */
static void
agent_decl_done(struct agent *a, const char *name)
{
	struct agent_decl *d;

	pthread_mutex_lock(&a->a_mu);
	d = agent_decl_find(a, name);
	if (d != NULL)
		d->ad_state = AGENT_DECL_DONE;
	pthread_mutex_unlock(&a->a_mu);
}

/* Starts the declared components the manager found no checkpoint of. Checkpoint loop only. */
static void
agent_decl_start_fresh(struct agent *a)
{
	for (size_t i = 0; i < a->a_ndecl; i++) {
		struct agent_decl d;
		struct demo *demo = NULL;
		int rv;

		pthread_mutex_lock(&a->a_mu);
		d = a->a_decl[i];
		pthread_mutex_unlock(&a->a_mu);
		if (d.ad_state != AGENT_DECL_FRESH)
			continue;
		rv = demo_new(d.ad_name, d.ad_bytes, &demo);
		if (rv == 0) {
			rv = comp_add(a->a_comps, demo, 0);
			if (rv != 0)
				demo_free(demo);
		}
		if (rv == 0)
			(void)comp_set_requires(a->a_comps, d.ad_name, d.ad_reqs, d.ad_nreqs);
		pthread_mutex_lock(&a->a_mu);
		/* -EEXIST: restored meanwhile, which is as good. */
		if (rv == 0 || rv == -EEXIST)
			a->a_decl[i].ad_state = AGENT_DECL_DONE;
		pthread_mutex_unlock(&a->a_mu);
		if (rv == 0)
			LOG_INFO("component %s started fresh: no checkpoint of it exists (the manager "
				 "found none)", d.ad_name);
		else if (rv != -EEXIST)
			LOG_ERROR("component %s cannot start: %s", d.ad_name, err_str(rv));
	}
}

/* ---- the manager link: attach and heartbeats ---- */

/*
 * The agent cannot go on (its node id is held by another live agent): logs
 * why, keeps it for agent_failed() and asks the process to stop (SIGTERM,
 * which main() waits for).
 */
static void
agent_fail(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
agent_fail(struct agent *a, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&a->a_mu);
	va_start(ap, fmt);
	vsnprintf(a->a_fatal, sizeof(a->a_fatal), fmt, ap);
	va_end(ap);
	LOG_ERROR("%s", a->a_fatal);
	pthread_mutex_unlock(&a->a_mu);
	kill(getpid(), SIGTERM);
}

bool
agent_failed(struct agent *a, char *ret_why, size_t len)
{
	bool failed;

	pthread_mutex_lock(&a->a_mu);
	failed = a->a_fatal[0] != '\0';
	if (failed)
		snprintf(ret_why, len, "%s", a->a_fatal);
	pthread_mutex_unlock(&a->a_mu);
	return failed;
}

/* Capacity now, or as last read when /proc fails. Link thread only. */
static void
agent_capacity(struct agent *a, Ckpt__V1__Capacity *cap)
{
	struct sysinfo_cap now;
	int rv = sysinfo_read(&now);

	if (rv == 0)
		a->a_cap = now;
	else
		LOG_DEBUG("cannot read capacity from /proc: %s", err_str(rv));
	ckpt__v1__capacity__init(cap);
	cap->mem_free_bytes = a->a_cap.sc_mem_free;
	cap->mem_total_bytes = a->a_cap.sc_mem_total;
	cap->cpu_count = a->a_cap.sc_cpus;
	cap->cpu_load_milli = a->a_cap.sc_load_milli;
}

/* The manager says another node owns these: stop them. */
static void
agent_revoked(struct agent *a, char *const *names, size_t n)
{
	for (size_t i = 0; i < n && i < COMP_MAX; i++) {
		if (key_name_check(names[i]) != 0)
			continue;
		agent_lost(a, names[i], "the manager says another node owns it with a newer epoch");
	}
}

static int
agent_attach(struct agent *a, struct arena *arena, struct rpc_error *err)
{
	Ckpt__V1__AttachRequest req = CKPT__V1__ATTACH_REQUEST__INIT;
	Ckpt__V1__AttachReply *rep = NULL;
	Ckpt__V1__Capacity cap;
	Ckpt__V1__Label *labels, **lptrs;
	char nas_list[NASC_URLS_MAX * (AGENT_URL_MAX + 1)];
	unsigned hb, reattach;
	size_t off = 0;
	int rv;

	req.node = a->a_node;
	req.instance = a->a_instance;
	req.address = (char *)(a->a_advertise != NULL ? a->a_advertise : rpc_server_url(a->a_server));
	agent_capacity(a, &cap);
	req.capacity = &cap;
	labels = arena_alloc(arena, (a->a_nlabels + 1) * sizeof(*labels));
	lptrs = arena_alloc(arena, (a->a_nlabels + 1) * sizeof(*lptrs));
	if (labels == NULL || lptrs == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < a->a_nlabels; i++) {
		ckpt__v1__label__init(&labels[i]);
		labels[i].key = (char *)a->a_labels[i].al_key;
		labels[i].value = (char *)a->a_labels[i].al_value;
		lptrs[i] = &labels[i];
	}
	req.labels = lptrs;
	req.n_labels = a->a_nlabels;
	rv = comp_status_all(a->a_comps, arena, true, &req.components, &req.n_components);
	if (rv == 0)
		rv = agent_decl_status(a, arena, &req.declared, &req.n_declared);
	if (rv != 0)
		return rv;
	rv = rpc_client_call(a->a_mgr, MGR_ATTACH, &req.base, AGENT_CONTROL_TIMEOUT_MS,
	    (ProtobufCMessage **)&rep, err);
	if (rv != 0)
		return rv;
	if (rep->n_nas == 0 || rep->n_nas > NASC_URLS_MAX) {
		rv = -EPROTO;
		agent_set_error(err, rv, "%s: Attach reply lists %zu NAS addresses (want 1 to %d)",
		    a->a_manager, rep->n_nas, NASC_URLS_MAX);
		goto out;
	}
	for (size_t i = 0; i < rep->n_nas; i++) {
		size_t len = strlen(rep->nas[i]);
		if (len == 0 || len >= AGENT_URL_MAX) {
			rv = -EPROTO;
			agent_set_error(err, rv, "%s: Attach reply has a NAS address of %zu bytes",
			    a->a_manager, len);
			goto out;
		}
		off += (size_t)snprintf(nas_list + off, sizeof(nas_list) - off, "%s%s",
		    i > 0 ? "," : "", rep->nas[i]);
	}
	rv = agent_nas_update(a, rep->nas, rep->n_nas, err);
	if (rv != 0)
		goto out;
	hb = rep->heartbeat_ms != 0 ? rep->heartbeat_ms : AGENT_HEARTBEAT_DEFAULT_MS;
	if (hb < AGENT_INTERVAL_MIN_MS)
		hb = AGENT_INTERVAL_MIN_MS;
	if (hb > AGENT_HEARTBEAT_MAX_MS)
		hb = AGENT_HEARTBEAT_MAX_MS;
	reattach = rep->down_after_ms != 0 ? rep->down_after_ms : AGENT_REATTACH_DEFAULT_MS;
	if (reattach < 3 * hb)
		reattach = 3 * hb;
	/* Before the checkpoint loop may start: nothing revoked gets stored. */
	agent_revoked(a, rep->revoked, rep->n_revoked);
	pthread_mutex_lock(&a->a_mu);
	a->a_heartbeat_ms = hb;
	a->a_reattach_ms = reattach;
	if (a->a_attaches++ == 0)
		a->a_first_attach_ms = util_now_mono_ms();
	pthread_cond_broadcast(&a->a_cv);
	pthread_mutex_unlock(&a->a_mu);
	LOG_INFO("attached to manager %s as %s (instance %016" PRIx64 "); NAS %s", a->a_manager,
	    a->a_node, a->a_instance, nas_list);
out:
	rpc_reply_free(&rep->base);
	return rv;
}

static int
agent_heartbeat(struct agent *a, struct arena *arena, bool *ret_reattach, struct rpc_error *err)
{
	Ckpt__V1__HeartbeatRequest req = CKPT__V1__HEARTBEAT_REQUEST__INIT;
	Ckpt__V1__HeartbeatReply *rep = NULL;
	Ckpt__V1__Capacity cap;
	int rv;

	struct queue_stats qs;

	req.node = a->a_node;
	req.instance = a->a_instance;
	agent_capacity(a, &cap);
	req.capacity = &cap;
	queue_get_stats(a->a_queue, &qs);
	req.queued = qs.qs_items;
	req.queue_dropped = qs.qs_dropped;
	rv = comp_status_all(a->a_comps, arena, true, &req.components, &req.n_components);
	if (rv != 0)
		return rv;
	rv = rpc_client_call(a->a_mgr, MGR_HEARTBEAT, &req.base, AGENT_CONTROL_TIMEOUT_MS,
	    (ProtobufCMessage **)&rep, err);
	if (rv != 0)
		return rv;
	*ret_reattach = rep->reattach;
	if (!rep->reattach) {
		agent_revoked(a, rep->revoked, rep->n_revoked);
		agent_decl_notes(a, rep->start_fresh, rep->n_start_fresh, rep->running_elsewhere,
		    rep->n_running_elsewhere);
	}
	rpc_reply_free(&rep->base);
	return 0;
}

static void *
agent_link_main(void *arg)
{
	struct agent *a = arg;
	struct arena *arena = a->a_link_arena;
	uint64_t seed = util_now_mono_ms() ^ (uint64_t)(uintptr_t)a ^ 0x9e3779b97f4a7c15ull;
	uint64_t last_ok = 0, last_warn = 0;
	unsigned backoff = AGENT_BACKOFF_MIN_MS;
	bool attached = false, failing = false;

	while (!agent_stopping(a)) {
		struct rpc_error err = { 0 };
		unsigned hb, reattach_ms;
		bool reattach = false;
		uint64_t now;
		int rv;

		if (!attached) {
			rv = agent_attach(a, arena, &err);
			arena_reset(arena);
			now = util_now_mono_ms();
			if (rv == 0) {
				attached = true;
				failing = false;
				backoff = AGENT_BACKOFF_MIN_MS;
				last_ok = now;
				last_warn = 0;
				continue;
			}
			if (agent_stopping(a))
				break;
			if (rv == -EEXIST) {
				/* Another live agent holds this node id: retrying cannot help. */
				agent_fail(a, "cannot attach: %s",
				    err.re_msg[0] != '\0' ? err.re_msg : err_str(rv));
				break;
			}
			if (last_warn == 0 || now - last_warn >= AGENT_WARN_EVERY_MS) {
				LOG_WARN("cannot attach to manager %s: %s; retrying", a->a_manager,
				    err.re_msg[0] != '\0' ? err.re_msg : err_str(rv));
				last_warn = now;
			}
			if (agent_sleep(a, agent_jitter(backoff, &seed)))
				break;
			backoff = backoff * 2 < AGENT_BACKOFF_MAX_MS ? backoff * 2 : AGENT_BACKOFF_MAX_MS;
			continue;
		}
		pthread_mutex_lock(&a->a_mu);
		hb = a->a_heartbeat_ms;
		reattach_ms = a->a_reattach_ms;
		pthread_mutex_unlock(&a->a_mu);
		if (agent_sleep(a, hb))
			break;
		rv = agent_heartbeat(a, arena, &reattach, &err);
		arena_reset(arena);
		now = util_now_mono_ms();
		if (rv == 0 && !reattach) {
			if (failing)
				LOG_INFO("heartbeats to manager %s answered again", a->a_manager);
			failing = false;
			last_ok = now;
		} else if (rv == 0 || rv == -ENOENT || rv == -ESTALE) {
			LOG_INFO("manager %s does not know node %s: attaching again", a->a_manager,
			    a->a_node);
			attached = false;
		} else if (!agent_stopping(a)) {
			if (!failing)
				LOG_WARN("heartbeat to manager failed: %s", err.re_msg);
			failing = true;
			if (now - last_ok >= reattach_ms) {
				LOG_WARN("no heartbeat answered for %" PRIu64 " ms: attaching again",
				    now - last_ok);
				attached = false;
			}
		}
	}
	return NULL;
}

/* ---- ticker, checkpoint loop, migration caller ---- */

static void *
agent_ticker_main(void *arg)
{
	struct agent *a = arg;
	uint64_t next = util_now_mono_ms();

	for (;;) {
		uint64_t now;
		next += DEMO_TICK_MS;
		if (agent_sleep_until(a, next))
			break;
		comp_tick_all(a->a_comps);
		now = util_now_mono_ms();
		if (next + DEMO_TICK_MS < now)
			next = now; /* fell behind: do not tick in a burst */
	}
	return NULL;
}

/* Sleeps until deadline_ms, stop or a kick. True when stopping. */
static bool
agent_ckpt_sleep(struct agent *a, uint64_t deadline_ms)
{
	struct timespec ts;
	bool stopping;

	agent_deadline(&ts, deadline_ms);
	pthread_mutex_lock(&a->a_mu);
	while (!a->a_stopping && !a->a_ckpt_kick &&
	    pthread_cond_timedwait(&a->a_cv, &a->a_mu, &ts) != ETIMEDOUT) {
	}
	a->a_ckpt_kick = false;
	stopping = a->a_stopping;
	pthread_mutex_unlock(&a->a_mu);
	return stopping;
}

static void
agent_ckpt_kick(struct agent *a)
{
	pthread_mutex_lock(&a->a_mu);
	a->a_ckpt_kick = true;
	pthread_cond_broadcast(&a->a_cv);
	pthread_mutex_unlock(&a->a_mu);
}

static void *
agent_ckpt_main(void *arg)
{
	struct agent *a = arg;
	unsigned probe_ms = a->a_interval_ms / 2;
	uint64_t next;

	if (probe_ms > AGENT_PROBE_MAX_MS)
		probe_ms = AGENT_PROBE_MAX_MS;
	if (probe_ms < AGENT_PROBE_MIN_MS)
		probe_ms = AGENT_PROBE_MIN_MS;
	if (!agent_wait_first_attach(a, 0, NULL))
		return NULL;
	next = util_now_mono_ms();
	while (!agent_stopping(a)) {
		comp_name *names = NULL;
		size_t n = 0;
		uint64_t now;

		next += a->a_interval_ms;
		agent_decl_start_fresh(a);
		/* What waits goes first, once the NAS answers again. */
		if (!queue_empty(a->a_queue) &&
		    (!agent_nas_down(a) || agent_nas_probe(a, probe_ms)))
			agent_queue_flush(a, AGENT_STORE_TIMEOUT_MS);
		if (comp_running_names(a->a_comps, &names, &n) == 0) {
			for (size_t i = 0; i < n && !agent_stopping(a); i++) {
				struct rpc_error err;
				/* -ENOENT: stopped or moved meanwhile, nothing to say. */
				(void)agent_checkpoint(a, names[i], false, true, AGENT_STORE_TIMEOUT_MS,
				    NULL, NULL, &err);
			}
			free(names);
		}
		now = util_now_mono_ms();
		if (next < now)
			next = now;
		if (agent_ckpt_sleep(a, next))
			break;
	}
	return NULL;
}

static void
agent_migrate_one(struct agent *a, const char *name)
{
	Ckpt__V1__MigrateRequest req = CKPT__V1__MIGRATE_REQUEST__INIT;
	Ckpt__V1__MigrateReply *rep = NULL;
	const Ckpt__V1__CheckpointRef *from;
	struct rpc_error err;
	char hex_from[SHA_HEX_LEN + 1], hex_state[SHA_HEX_LEN + 1];
	int rv;

	if (!comp_is_running(a->a_comps, name)) {
		LOG_INFO("not calling for migration of %s: it no longer runs here", name);
		return;
	}
	LOG_INFO("calling for migration of %s", name);
	req.component = (char *)name;
	rv = rpc_client_call(a->a_mgr, MGR_MIGRATE, &req.base, AGENT_MIGRATE_TIMEOUT_MS,
	    (ProtobufCMessage **)&rep, &err);
	if (rv != 0) {
		if (agent_stopping(a))
			LOG_INFO("migration of %s abandoned: agent stopping", name);
		else
			LOG_ERROR("migration of %s failed: %s", name, err.re_msg);
		return;
	}
	from = rep->restored_from;
	agent_hex(rep->state_sha256.data, rep->state_sha256.len, hex_state);
	if (from == NULL) {
		LOG_INFO("migration of %s to %.64s successful (epoch %" PRIu64 ", state sha256=%s)",
		    name, rep->target, rep->epoch, hex_state);
	} else {
		bool match = from->sha256.len == SHA_LEN && rep->state_sha256.len == SHA_LEN &&
		    memcmp(from->sha256.data, rep->state_sha256.data, SHA_LEN) == 0;
		agent_hex(from->sha256.data, from->sha256.len, hex_from);
		if (match)
			LOG_INFO("migration of %s to %.64s successful: restored from %.64s/%.64s@%" PRIu64
			         " sha256=%s, state sha256=%s (equal), epoch %" PRIu64,
			    name, rep->target, from->node, from->component, from->seq, hex_from,
			    hex_state, rep->epoch);
		else
			LOG_ERROR("migration of %s to %.64s: restored state sha256=%s differs from "
			          "checkpoint %.64s/%.64s@%" PRIu64 " sha256=%s",
			    name, rep->target, hex_state, from->node, from->component, from->seq,
			    hex_from);
	}
	rpc_reply_free(&rep->base);
}

static void *
agent_migrate_main(void *arg)
{
	struct agent *a = arg;
	uint64_t attached_at;

	if (!agent_wait_first_attach(a, 0, &attached_at))
		return NULL;
	if (agent_sleep_until(a, attached_at + a->a_migrate_after_ms))
		return NULL;
	for (size_t i = 0; i < a->a_nown && !agent_stopping(a); i++)
		agent_migrate_one(a, a->a_own[i]);
	return NULL;
}

/* ---- the Agent service ---- */

static int
agent_reject(struct rpc_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Refuses a malformed request: -EINVAL, the reason in the reply and the log. */
static int
agent_reject(struct rpc_call *call, const char *fmt, ...)
{
	char msg[RPC_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	LOG_WARN("bad request: %s", msg);
	rpc_call_errorf(call, "%s", msg);
	return -EINVAL;
}

/* A name from the wire must pass key_name_check(); optional ones may be "". */
static int
agent_check_name(struct rpc_call *call, const char *what, const char *s, bool optional)
{
	if (optional && s[0] == '\0')
		return 0;
	if (key_name_check(s) != 0)
		return agent_reject(call, "invalid %s '%.64s%s': want 1 to %d of [A-Za-z0-9._-]", what,
		    s, strlen(s) > 64 ? "..." : "", KEY_NAME_MAX);
	return 0;
}

static int
agent_restore(void *arg, struct rpc_call *call, const ProtobufCMessage *req_msg,
    ProtobufCMessage *reply_msg)
{
	struct agent *a = arg;
	const Ckpt__V1__RestoreRequest *req = (const Ckpt__V1__RestoreRequest *)req_msg;
	Ckpt__V1__RestoreReply *reply = (Ckpt__V1__RestoreReply *)reply_msg;
	struct agent_nas *h = NULL;
	struct demo *d = NULL;
	struct nasc_info info;
	struct comp_ref from;
	struct rpc_error err;
	uint8_t state_sha[SHA_LEN];
	char hex_ck[SHA_HEX_LEN + 1], hex_state[SHA_HEX_LEN + 1];
	char msg[RPC_ERRMSG_MAX];
	const char *why = NULL;
	struct comp_req reqs[COMP_REQUIRES_MAX];
	struct nasc_fallback fb = { 0 };
	size_t nreqs = 0;
	void *buf = NULL;
	size_t len = 0;
	int rv;

	rv = agent_check_name(call, "component", req->component, false);
	if (rv == 0)
		rv = agent_check_name(call, "node", req->node, true);
	if (rv != 0)
		return rv;
	if (req->sha256.len != 0 && req->sha256.len != SHA_LEN)
		return agent_reject(call, "Restore of %s: sha256 has %zu bytes, want 0 or %d",
		    req->component, req->sha256.len, SHA_LEN);
	if (req->n_requires > COMP_REQUIRES_MAX)
		return agent_reject(call, "Restore of %s: %zu required labels, at most %d",
		    req->component, req->n_requires, COMP_REQUIRES_MAX);
	for (size_t i = 0; i < req->n_requires; i++) {
		const Ckpt__V1__Label *l = req->requires[i];
		if (l == NULL || key_name_check(l->key) != 0 ||
		    strlen(l->value) > COMP_REQ_VALUE_MAX)
			return agent_reject(call, "Restore of %s: invalid required label",
			    req->component);
		snprintf(reqs[nreqs].cq_key, sizeof(reqs[nreqs].cq_key), "%s", l->key);
		snprintf(reqs[nreqs].cq_value, sizeof(reqs[nreqs].cq_value), "%s", l->value);
		nreqs++;
	}
	rv = comp_reserve(a->a_comps, req->component);
	if (rv != 0) {
		if (rv == -EEXIST)
			rpc_call_errorf(call, "component %s already runs on node %s", req->component,
			    a->a_node);
		else
			rpc_call_errorf(call, "cannot take %s: %s", req->component, err_str(rv));
		return rv;
	}
	h = agent_nas_get(a);
	if (h == NULL) {
		rv = -ECONNREFUSED;
		snprintf(msg, sizeof(msg), "node %s has not attached to %s yet: no NAS address",
		    a->a_node, a->a_manager);
		goto out_unreserve;
	}
	/* A corrupt checkpoint (DATA_LOSS): the previous sequence instead, said in the log. */
	rv = nasc_retrieve_buf_fallback(h->an_nasc, req->node, req->component, req->seq,
	    DEMO_STATE_MAX, agent_call_budget(call), &buf, &len, &info, &fb, &err);
	agent_nas_put(a, h);
	if (rv == 0 && fb.nf_bad_seq != 0)
		LOG_WARN("restore of %s: checkpoint %s@%" PRIu64 " is corrupt (%s); restoring %s/%s@%"
		         PRIu64 " instead",
		    req->component, req->component, fb.nf_bad_seq, fb.nf_bad_msg, info.ni_node,
		    info.ni_component, info.ni_seq);
	if (rv != 0) {
		if (rv == -EFBIG)
			snprintf(msg, sizeof(msg), "checkpoint of %s is larger than %llu bytes",
			    req->component, (unsigned long long)DEMO_STATE_MAX);
		else
			snprintf(msg, sizeof(msg), "%s", err.re_msg[0] != '\0' ? err.re_msg : err_str(rv));
		goto out_unreserve;
	}
	if (info.ni_component[0] == '\0')
		snprintf(info.ni_component, sizeof(info.ni_component), "%s", req->component);
	sha_hex(info.ni_sha256, SHA_LEN, hex_ck);
	/* The expected digest is the requested checkpoint's, not a fallback's. */
	if (req->sha256.len == SHA_LEN && fb.nf_bad_seq == 0 &&
	    memcmp(req->sha256.data, info.ni_sha256, SHA_LEN) != 0) {
		char want[SHA_HEX_LEN + 1];
		sha_hex(req->sha256.data, SHA_LEN, want);
		rv = -EBADMSG;
		snprintf(msg, sizeof(msg), "checkpoint %s/%s@%" PRIu64 " has sha256 %s, expected %s",
		    info.ni_node, info.ni_component, info.ni_seq, hex_ck, want);
		goto out_unreserve;
	}
	/* The demo takes the buffer over: the state is in memory once, not twice. */
	rv = demo_restore_take(buf, len, &d, &why);
	if (rv == 0)
		buf = NULL;
	free(buf);
	buf = NULL;
	if (rv == 0 && strcmp(demo_name(d), req->component) != 0) {
		rv = -EBADMSG;
		why = "it holds another component";
	}
	if (rv != 0) {
		snprintf(msg, sizeof(msg), "checkpoint %s/%s@%" PRIu64 " is not a demo state of %s: %s",
		    info.ni_node, info.ni_component, info.ni_seq, req->component,
		    why != NULL ? why : err_str(rv));
		goto out_unreserve;
	}
	/* The digest of the state as restored, before it ticks again. */
	rv = demo_sha256(d, state_sha);
	if (rv != 0) {
		snprintf(msg, sizeof(msg), "hashing the restored state: %s", err_str(rv));
		goto out_unreserve;
	}
	sha_hex(state_sha, SHA_LEN, hex_state);
	if (memcmp(state_sha, info.ni_sha256, SHA_LEN) != 0) {
		rv = -EBADMSG;
		LOG_ERROR("checkpoint %s/%s@%" PRIu64 " received (sha256=%s); restored state sha256=%s "
		          "differs",
		    info.ni_node, info.ni_component, info.ni_seq, hex_ck, hex_state);
		snprintf(msg, sizeof(msg), "restored state sha256 %s differs from checkpoint sha256 %s",
		    hex_state, hex_ck);
		goto out_unreserve;
	}
	memset(&from, 0, sizeof(from));
	snprintf(from.cr_node, sizeof(from.cr_node), "%s", info.ni_node);
	snprintf(from.cr_component, sizeof(from.cr_component), "%s", info.ni_component);
	from.cr_seq = info.ni_seq;
	memcpy(from.cr_sha256, info.ni_sha256, SHA_LEN);
	rv = comp_restored(a->a_comps, d, req->epoch, &from, state_sha);
	if (rv != 0) {
		snprintf(msg, sizeof(msg), "component %s vanished during its restore", req->component);
		goto out_unreserve;
	}
	d = NULL;
	(void)comp_set_requires(a->a_comps, req->component, reqs, nreqs);
	agent_decl_done(a, req->component);
	/* Store it at once with the new epoch: the NAS then refuses the old owner's commits. */
	agent_ckpt_kick(a);
	LOG_INFO("checkpoint %s/%s@%" PRIu64 " received (sha256=%s); restored state sha256=%s; "
	         "migration successful",
	    info.ni_node, info.ni_component, info.ni_seq, hex_ck, hex_state);
	rv = comp_status_one(a->a_comps, rpc_call_arena(call), req->component, &reply->status);
	if (rv != 0)
		rpc_call_errorf(call, "status of %s: %s", req->component, err_str(rv));
	return rv;

out_unreserve:
	LOG_WARN("restore of %s failed: %s", req->component, msg);
	rpc_call_errorf(call, "%s", msg);
	demo_free(d);
	free(buf);
	comp_remove(a->a_comps, req->component);
	return rv;
}

static int
agent_stop_component(void *arg, struct rpc_call *call, const ProtobufCMessage *req_msg,
    ProtobufCMessage *reply_msg)
{
	struct agent *a = arg;
	const Ckpt__V1__StopRequest *req = (const Ckpt__V1__StopRequest *)req_msg;
	Ckpt__V1__StopReply *reply = (Ckpt__V1__StopReply *)reply_msg;
	struct nasc_info info;
	struct rpc_error err;
	int rv;

	rv = agent_check_name(call, "component", req->component, false);
	if (rv != 0)
		return rv;
	rv = comp_stop(a->a_comps, req->component);
	if (rv != 0) {
		rpc_call_errorf(call, "component %s does not run on node %s", req->component,
		    a->a_node);
		return rv;
	}
	if (req->checkpoint) {
		/* Older checkpoints that wait go first, so the final one is the newest. */
		if (!queue_empty(a->a_queue))
			agent_queue_flush(a, agent_call_budget(call));
		rv = agent_checkpoint(a, req->component, true, false, agent_call_budget(call), &info,
		    NULL, &err);
		if (rv != 0) {
			comp_resume(a->a_comps, req->component);
			rpc_call_errorf(call, "final checkpoint of %s failed: %s", req->component,
			    err.re_msg);
			LOG_WARN("component %s not stopped: its final checkpoint failed", req->component);
			return rv;
		}
		reply->checkpoint = agent_info_copy(rpc_call_arena(call), &info);
		if (reply->checkpoint == NULL) {
			comp_resume(a->a_comps, req->component);
			return -ENOMEM;
		}
	}
	comp_remove(a->a_comps, req->component);
	(void)queue_drop_component(a->a_queue, req->component);
	if (req->checkpoint)
		LOG_INFO("component %s stopped (final checkpoint %" PRIu64 ")", req->component,
		    info.ni_seq);
	else
		LOG_INFO("component %s stopped (no final checkpoint)", req->component);
	return 0;
}

static int
agent_checkpoint_now(void *arg, struct rpc_call *call, const ProtobufCMessage *req_msg,
    ProtobufCMessage *reply_msg)
{
	struct agent *a = arg;
	const Ckpt__V1__CheckpointNowRequest *req = (const Ckpt__V1__CheckpointNowRequest *)req_msg;
	Ckpt__V1__CheckpointNowReply *reply = (Ckpt__V1__CheckpointNowReply *)reply_msg;
	struct arena *arena = rpc_call_arena(call);
	comp_name *names = NULL;
	size_t n = 0;
	int rv;

	rv = agent_check_name(call, "component", req->component, true);
	if (rv != 0)
		return rv;
	if (req->component[0] != '\0') {
		if (!comp_is_running(a->a_comps, req->component)) {
			rpc_call_errorf(call, "component %s does not run on node %s", req->component,
			    a->a_node);
			return -ENOENT;
		}
		names = malloc(sizeof(*names));
		if (names == NULL)
			return -ENOMEM;
		strcpy(names[0], req->component);
		n = 1;
	} else {
		rv = comp_running_names(a->a_comps, &names, &n);
		if (rv != 0)
			return rv;
	}
	reply->checkpoints = arena_alloc(arena, (n > 0 ? n : 1) * sizeof(*reply->checkpoints));
	if (reply->checkpoints == NULL) {
		rv = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct nasc_info info;
		struct rpc_error err;

		rv = agent_checkpoint(a, names[i], false, false, agent_call_budget(call), &info, NULL,
		    &err);
		if (rv != 0) {
			rpc_call_errorf(call, "checkpoint of %s failed: %s", names[i], err.re_msg);
			goto out;
		}
		reply->checkpoints[reply->n_checkpoints] = agent_info_copy(arena, &info);
		if (reply->checkpoints[reply->n_checkpoints] == NULL) {
			rv = -ENOMEM;
			goto out;
		}
		reply->n_checkpoints++;
	}
out:
	free(names);
	return rv;
}

static int
agent_status(void *arg, struct rpc_call *call, const ProtobufCMessage *req_msg,
    ProtobufCMessage *reply_msg)
{
	struct agent *a = arg;
	Ckpt__V1__StatusReply *reply = (Ckpt__V1__StatusReply *)reply_msg;
	struct arena *arena = rpc_call_arena(call);

	Ckpt__V1__QueueStatus *q = arena_alloc(arena, sizeof(*q));
	struct queue_stats qs;

	(void)req_msg;
	reply->node = arena_strdup(arena, a->a_node);
	reply->instance = a->a_instance;
	if (reply->node == NULL || q == NULL)
		return -ENOMEM;
	queue_get_stats(a->a_queue, &qs);
	ckpt__v1__queue_status__init(q);
	q->checkpoints = qs.qs_items;
	q->bytes = qs.qs_bytes;
	q->max_bytes = qs.qs_max_bytes;
	q->dropped = qs.qs_dropped;
	q->stored = qs.qs_stored;
	reply->queue = q;
	return comp_status_all(a->a_comps, arena, false, &reply->components, &reply->n_components);
}

static const rpc_handler_fn agent_handlers[] = {
	[AGENT_RESTORE] = agent_restore,
	[AGENT_STOP] = agent_stop_component,
	[AGENT_CHECKPOINT_NOW] = agent_checkpoint_now,
	[AGENT_STATUS] = agent_status,
};

static void
agent_on_bad(void *arg, const char *reason)
{
	(void)arg;
	LOG_WARN("bad request: %s", reason);
}

/* ---- life cycle ---- */

static char *
agent_strdup_bounded(const char *s, size_t max)
{
	return s != NULL && strlen(s) <= max ? strdup(s) : NULL;
}

int
agent_new(const struct agent_config *cfg, struct agent **ret_agent, char *err, size_t errlen)
{
	pthread_condattr_t ca;
	struct agent *a;
	int rv;

	if (key_name_check(cfg->ac_node) != 0) {
		snprintf(err, errlen, "invalid node id '%s': want 1 to %d of [A-Za-z0-9._-]",
		    cfg->ac_node != NULL ? cfg->ac_node : "", KEY_NAME_MAX);
		return -EINVAL;
	}
	if (cfg->ac_manager == NULL || cfg->ac_manager[0] == '\0' ||
	    strlen(cfg->ac_manager) >= AGENT_URL_MAX || cfg->ac_listen == NULL ||
	    cfg->ac_listen[0] == '\0' || strlen(cfg->ac_listen) >= AGENT_URL_MAX) {
		snprintf(err, errlen, "manager and listen URLs must have 1 to %d bytes",
		    AGENT_URL_MAX - 1);
		return -EINVAL;
	}
	if (cfg->ac_advertise != NULL && (cfg->ac_advertise[0] == '\0' ||
	    strlen(cfg->ac_advertise) >= AGENT_URL_MAX || strstr(cfg->ac_advertise, "://") == NULL)) {
		snprintf(err, errlen, "advertised address '%.64s': want a URL such as tcp://host:port, "
		    "shorter than %d bytes", cfg->ac_advertise, AGENT_URL_MAX);
		return -EINVAL;
	}
	if (cfg->ac_interval_ms < AGENT_INTERVAL_MIN_MS) {
		snprintf(err, errlen, "checkpoint interval %u ms is below %u ms", cfg->ac_interval_ms,
		    AGENT_INTERVAL_MIN_MS);
		return -EINVAL;
	}
	if (cfg->ac_nlabels > AGENT_LABELS_MAX) {
		snprintf(err, errlen, "%zu labels: at most %d", cfg->ac_nlabels, AGENT_LABELS_MAX);
		return -EINVAL;
	}
	if (cfg->ac_chunk_min != 0 || cfg->ac_chunk_avg != 0 || cfg->ac_chunk_max != 0) {
		struct chunk_params cp;
		if (chunk_params_init(cfg->ac_chunk_min, cfg->ac_chunk_avg, cfg->ac_chunk_max, &cp) != 0) {
			snprintf(err, errlen, "chunk sizes %u/%u/%u: want min < avg < max, %u B to %u B",
			    cfg->ac_chunk_min, cfg->ac_chunk_avg, cfg->ac_chunk_max, CHUNK_MIN_LIMIT,
			    CHUNK_MAX_LIMIT);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < cfg->ac_nlabels; i++) {
		const struct agent_label *l = &cfg->ac_labels[i];
		if (key_name_check(l->al_key) != 0 || l->al_value == NULL ||
		    strlen(l->al_value) > AGENT_LABEL_VALUE_MAX) {
			snprintf(err, errlen,
			    "invalid label '%s': key of [A-Za-z0-9._-], value of at most %d bytes",
			    l->al_key != NULL ? l->al_key : "", AGENT_LABEL_VALUE_MAX);
			return -EINVAL;
		}
	}

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	pthread_mutex_init(&a->a_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->a_cv, &ca);
	pthread_condattr_destroy(&ca);
	/* Random per process: a restarted agent is told from the one it replaces. */
	if (getrandom(&a->a_instance, sizeof(a->a_instance), 0) != sizeof(a->a_instance))
		a->a_instance = util_now_unix_ms() ^ ((uint64_t)getpid() << 32) ^ util_now_mono_ms();
	if (a->a_instance == 0)
		a->a_instance = 1;
	a->a_interval_ms = cfg->ac_interval_ms;
	a->a_migrate_after_ms = cfg->ac_migrate_after_ms;
	a->a_workers = cfg->ac_workers != 0 ? cfg->ac_workers : 4;
	a->a_queue_max = cfg->ac_queue_max_set ? cfg->ac_queue_max : QUEUE_MAX_DEFAULT;
	a->a_chunk_min = cfg->ac_chunk_min;
	a->a_chunk_avg = cfg->ac_chunk_avg;
	a->a_chunk_max = cfg->ac_chunk_max;
	a->a_fresh = cfg->ac_fresh;
	pthread_mutex_init(&a->a_flush_mu, NULL);
	a->a_heartbeat_ms = AGENT_HEARTBEAT_DEFAULT_MS;
	a->a_reattach_ms = AGENT_REATTACH_DEFAULT_MS;
	a->a_node = strdup(cfg->ac_node);
	a->a_manager = strdup(cfg->ac_manager);
	a->a_listen = strdup(cfg->ac_listen);
	a->a_advertise = cfg->ac_advertise != NULL ? strdup(cfg->ac_advertise) : NULL;
	a->a_labels = calloc(cfg->ac_nlabels + 1, sizeof(*a->a_labels));
	rv = -ENOMEM;
	if (a->a_node == NULL || a->a_manager == NULL || a->a_listen == NULL || a->a_labels == NULL ||
	    (cfg->ac_advertise != NULL && a->a_advertise == NULL))
		goto out_free;
	for (; a->a_nlabels < cfg->ac_nlabels; a->a_nlabels++) {
		struct agent_label *l = &a->a_labels[a->a_nlabels];
		l->al_key = agent_strdup_bounded(cfg->ac_labels[a->a_nlabels].al_key, KEY_NAME_MAX);
		l->al_value = agent_strdup_bounded(cfg->ac_labels[a->a_nlabels].al_value,
		    AGENT_LABEL_VALUE_MAX);
		if (l->al_key == NULL || l->al_value == NULL) {
			a->a_nlabels++;
			goto out_free;
		}
	}
	rv = comp_table_new(&a->a_comps);
	if (rv == 0)
		rv = queue_new(a->a_queue_max, &a->a_queue);
	if (rv == 0)
		rv = arena_new(&a->a_link_arena);
	if (rv != 0)
		goto out_free;
	*ret_agent = a;
	return 0;

out_free:
	snprintf(err, errlen, "%s", err_str(rv));
	agent_free(a);
	return rv;
}

/* Declares a component to resume (see Resume in agent.h). Before agent_start() only. */
static int
agent_declare(struct agent *a, const char *name, uint64_t bytes, const struct comp_req *reqs,
    size_t nreqs, char *err, size_t errlen)
{
	struct agent_decl *decl, *d;

	for (size_t i = 0; i < a->a_ndecl; i++) {
		if (strcmp(a->a_decl[i].ad_name, name) == 0) {
			snprintf(err, errlen, "component %s given twice", name);
			return -EEXIST;
		}
	}
	if (a->a_ndecl == COMP_MAX) {
		snprintf(err, errlen, "demo %s: more than %d components", name, COMP_MAX);
		return -ENOSPC;
	}
	decl = realloc(a->a_decl, (a->a_ndecl + 1) * sizeof(*decl));
	if (decl == NULL)
		return -ENOMEM;
	a->a_decl = decl;
	d = &decl[a->a_ndecl++];
	memset(d, 0, sizeof(*d));
	snprintf(d->ad_name, sizeof(d->ad_name), "%s", name);
	d->ad_bytes = bytes;
	memcpy(d->ad_reqs, reqs, nreqs * sizeof(*reqs));
	d->ad_nreqs = nreqs;
	d->ad_state = AGENT_DECL_WAITING;
	return 0;
}

int
agent_add_demo(struct agent *a, const char *name, uint64_t bytes, char *err, size_t errlen)
{
	return agent_add_demo_requiring(a, name, bytes, NULL, 0, err, errlen);
}

int
agent_add_demo_requiring(struct agent *a, const char *name, uint64_t bytes,
    const struct agent_req *reqs, size_t nreqs, char *err, size_t errlen)
{
	struct comp_req creq[COMP_REQUIRES_MAX];
	struct demo *d;
	comp_name *own;
	int rv;

	if (nreqs > COMP_REQUIRES_MAX) {
		snprintf(err, errlen, "demo %s: %zu required labels, at most %d", name, nreqs,
		    COMP_REQUIRES_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < nreqs; i++) {
		if (key_name_check(reqs[i].ar_key) != 0 || reqs[i].ar_value == NULL ||
		    strlen(reqs[i].ar_value) > COMP_REQ_VALUE_MAX) {
			snprintf(err, errlen,
			    "demo %s: required label '%s': key of [A-Za-z0-9._-], value of at most %d "
			    "bytes",
			    name, reqs[i].ar_key != NULL ? reqs[i].ar_key : "", COMP_REQ_VALUE_MAX);
			return -EINVAL;
		}
		snprintf(creq[i].cq_key, sizeof(creq[i].cq_key), "%s", reqs[i].ar_key);
		snprintf(creq[i].cq_value, sizeof(creq[i].cq_value), "%s", reqs[i].ar_value);
	}

	if (a->a_started) {
		snprintf(err, errlen, "demo %s added after start", name);
		return -EINVAL;
	}
	if (key_name_check(name) != 0) {
		snprintf(err, errlen, "invalid component name '%s': want 1 to %d of [A-Za-z0-9._-]",
		    name, KEY_NAME_MAX);
		return -EINVAL;
	}
	if (bytes > DEMO_BYTES_MAX) {
		snprintf(err, errlen, "demo %s: %" PRIu64 " bytes is more than %llu", name, bytes,
		    (unsigned long long)DEMO_BYTES_MAX);
		return -EINVAL;
	}
	own = realloc(a->a_own, (a->a_nown + 1) * sizeof(*own));
	if (own == NULL)
		return -ENOMEM;
	a->a_own = own;
	if (!a->a_fresh) {
		rv = agent_declare(a, name, bytes, creq, nreqs, err, errlen);
		if (rv == 0)
			strcpy(a->a_own[a->a_nown++], name);
		return rv;
	}
	rv = demo_new(name, bytes, &d);
	if (rv == 0) {
		rv = comp_add(a->a_comps, d, 0);
		if (rv != 0)
			demo_free(d);
	}
	if (rv == -EEXIST)
		snprintf(err, errlen, "component %s given twice", name);
	else if (rv != 0)
		snprintf(err, errlen, "demo %s: %s", name, err_str(rv));
	if (rv != 0)
		return rv;
	(void)comp_set_requires(a->a_comps, name, creq, nreqs);
	strcpy(a->a_own[a->a_nown++], name);
	return 0;
}

static int
agent_spawn(struct agent *a, void *(*fn)(void *))
{
	int rv = -pthread_create(&a->a_threads[a->a_nthreads], NULL, fn, a);
	if (rv == 0)
		a->a_nthreads++;
	return rv;
}

int
agent_start(struct agent *a, char *err, size_t errlen)
{
	struct rpc_server_config sc = {
		.rs_service = &ckpt__v1__agent__descriptor,
		.rs_handlers = agent_handlers,
		.rs_arg = a,
		.rs_recv_max = AGENT_RECV_MAX,
		.rs_workers = a->a_workers,
		.rs_on_bad = agent_on_bad,
	};
	struct rpc_error rerr;
	int rv;

	if (a->a_started) {
		snprintf(err, errlen, "agent already started");
		return -EINVAL;
	}
	a->a_started = true;
	if (a->a_fresh && a->a_nown > 0)
		LOG_INFO("%zu component(s) start fresh (--fresh): checkpoints of them are not restored",
		    a->a_nown);
	else if (a->a_ndecl > 0)
		LOG_INFO("%zu component(s) to resume: each is restored from its latest checkpoint, "
			 "or started fresh when none exists, once the manager answers", a->a_ndecl);
	/* Listen first: the manager may call as soon as it knows the address. */
	rv = rpc_server_start(&sc, a->a_listen, &a->a_server);
	if (rv != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", a->a_listen, err_str(rv));
		return rv;
	}
	rv = rpc_client_open(a->a_manager, &ckpt__v1__manager__descriptor, 0, 0, &a->a_mgr, &rerr);
	if (rv != 0) {
		snprintf(err, errlen, "manager %s: %s", a->a_manager, rerr.re_msg);
		return rv;
	}
	rv = agent_spawn(a, agent_ticker_main);
	if (rv == 0)
		rv = agent_spawn(a, agent_link_main);
	if (rv == 0)
		rv = agent_spawn(a, agent_ckpt_main);
	if (rv == 0)
		rv = agent_spawn(a, agent_notifier_main);
	if (rv == 0 && a->a_migrate_after_ms > 0 && a->a_nown > 0)
		rv = agent_spawn(a, agent_migrate_main);
	if (rv != 0)
		snprintf(err, errlen, "cannot start threads: %s", err_str(rv));
	return rv;
}

const char *
agent_url(const struct agent *a)
{
	return a->a_server != NULL ? rpc_server_url(a->a_server) : a->a_listen;
}

void
agent_stop(struct agent *a)
{
	struct agent_nas *h;

	if (a == NULL || a->a_stopped)
		return;
	a->a_stopped = true;
	pthread_mutex_lock(&a->a_mu);
	a->a_stopping = true;
	pthread_cond_broadcast(&a->a_cv);
	h = a->a_nas;
	pthread_mutex_unlock(&a->a_mu);
	/* Calls in progress (a Migrate, a store to a dead NAS) return at once. */
	if (h != NULL)
		nasc_abort(h->an_nasc);
	rpc_client_abort(a->a_mgr);
	rpc_server_stop(a->a_server);
	a->a_server = NULL;
	for (unsigned i = 0; i < a->a_nthreads; i++)
		pthread_join(a->a_threads[i], NULL);
	a->a_nthreads = 0;
	pthread_mutex_lock(&a->a_mu);
	h = a->a_nas;
	a->a_nas = NULL;
	pthread_mutex_unlock(&a->a_mu);
	agent_nas_put(a, h);
	rpc_client_close(a->a_mgr);
	a->a_mgr = NULL;
}

void
agent_free(struct agent *a)
{
	if (a == NULL)
		return;
	agent_stop(a);
	comp_table_free(a->a_comps);
	queue_free(a->a_queue);
	arena_free(a->a_link_arena);
	for (size_t i = 0; i < a->a_nlabels; i++) {
		free((char *)a->a_labels[i].al_key);
		free((char *)a->a_labels[i].al_value);
	}
	free(a->a_labels);
	free(a->a_own);
	free(a->a_decl);
	free(a->a_node);
	free(a->a_manager);
	free(a->a_listen);
	free(a->a_advertise);
	pthread_cond_destroy(&a->a_cv);
	pthread_mutex_destroy(&a->a_flush_mu);
	pthread_mutex_destroy(&a->a_mu);
	free(a);
}

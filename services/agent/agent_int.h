/*
 * agent_int: what the agent's files share (private; agent.h is the public face).
 *
 * One file per job, each with its prefix:
 *   agent.c   life cycle (new, add components, start, stop) and small helpers (agent_)
 *   conf.c    checks of the configuration (conf_)
 *   nasref.c  the shared, reference-counted NAS client (nasref_)
 *   ckpt.c    the checkpoint pipeline: copy, store, offline queue, the loop (ckpt_)
 *   fence.c   ownership lost to another node (fence_)
 *   notify.c  Notify of stored checkpoints, in the background (notify_)
 *   link.c    the manager link: attach and heartbeats (link_)
 *   tick.c    the ticker (tick_)
 *   super.c   supervision: restarts of crashed components, FAILED (super_)
 *   migr.c    the migration caller of --migrate-after (migr_)
 *   svc.c     the Agent service's handlers (svc_)
 *   comp.c    the component table; drv.c and drv_*.c the drivers below it
 *   amet.c    the HTTP endpoint: readiness and metrics (amet_)
 *
 * Locks: a_mu guards the fields marked below (and a_cv signals stop, attach
 * and kicks); the component table and the queue have their own locks;
 * a_flush_mu serialises queue flushes. No lock is held across a network call.
 */
#ifndef CKPT_AGENT_AGENT_INT_H
#define CKPT_AGENT_AGENT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "amet.h"
#include "ckpt/v1/common.pb-c.h"
#include "arena.h"
#include "comp.h"
#include "nasc.h"
#include "queue.h"
#include "rpc.h"
#include "sha.h"
#include "spec.h"
#include "drv.h"
#include "sysinfo.h"

#define AGENT_CONTROL_TIMEOUT_MS 3000u  /* Attach, Heartbeat, Notify, NAS List */
#define AGENT_STORE_CHECK_MS 2000u      /* a new NAS list: each NAS's Stat (its store id) */
#define AGENT_STORE_TIMEOUT_MS 3000u    /* each NAS call (<= 4 MiB) of a periodic checkpoint */
#define AGENT_PROBE_MAX_MS 1000u        /* Nas.Stat while the NAS is down */
#define AGENT_PROBE_MIN_MS 100u
/*
 * Flush rounds in a row a queued checkpoint may be refused for missing chunks
 * (each after nasc's own redo) before it is dropped: a NAS that misses them
 * every time would otherwise hold every checkpoint behind it (ckpt.c).
 */
#define AGENT_QUEUE_MISSING_MAX 5u
#define AGENT_MIGRATE_TIMEOUT_MS 60000u /* Manager.Migrate: stop, final checkpoint, restore */
#define AGENT_CALL_MIN_MS 1000u         /* least time given to a call made for a handler */
#define AGENT_BACKOFF_MIN_MS 100u
#define AGENT_BACKOFF_MAX_MS 2000u
#define AGENT_HEARTBEAT_DEFAULT_MS 200u
#define AGENT_HEARTBEAT_MAX_MS 60000u
#define AGENT_REATTACH_DEFAULT_MS 3000u /* heartbeats failing this long: attach again */
#define AGENT_WARN_EVERY_MS 5000u       /* repeated attach failures are logged this often */
#define AGENT_RECV_MAX (1u << 20)       /* Agent requests are small */
#define AGENT_THREADS_MAX 6
#define AGENT_NOTES_MAX COMP_MAX        /* notifications waiting: one per component */
#define AGENT_CKPT_NICE 10              /* the checkpoint thread's nice (ckpt.c) */
#define AGENT_LOCAL_DIR_MAX 90          /* local-dir: room for "/local.sock" in a socket path */

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
	char ad_kind[LIMIT_KIND_MAX + 1];
	struct drv_setting *ad_sets; /* copies (keys and values too), owned */
	size_t ad_nsets;
	uint64_t ad_bytes;
	const struct exec_conf *ad_exec; /* exec and lib drivers: in a_config's spec */
	struct comp_req ad_reqs[LIMIT_REQUIRES_MAX];
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

struct svc_kept;

struct agent {
	/* Configuration: fixed once agent_start() ran. */
	char *a_node;
	char *a_manager;
	char *a_listen;
	char *a_advertise; /* NULL: announce the listen URL */
	const struct tls_conf *a_tls; /* &a_tls_own, or NULL: every socket but the local one */
	struct tls_conf a_tls_own;    /* *ac_tls with agent_on_server_refused() as hook */
	/* Servers that failed to prove the identity we dialled (auth.proto 1b). */
	atomic_uint_least64_t a_server_refused;
	struct agent_label *a_labels;
	size_t a_nlabels;
	unsigned a_interval_ms;
	uint64_t a_migrate_after_ms;
	unsigned a_workers;
	struct rpc_limits_conf a_limits;    /* ac_limits, or the defaults (all 0) */
	size_t a_recv_max;
	struct limit_log a_limit_log;       /* svc_on_limit() */
	uint64_t a_queue_max;
	uint32_t a_chunk_min, a_chunk_avg, a_chunk_max; /* all 0: nasc's defaults */
	struct rate *a_rate;       /* --upload-rate: every NAS client's PutChunks; or NULL */
	enum agent_sched a_ckpt_sched; /* the checkpoint thread's CPU policy */
	comp_name *a_own; /* components this agent was started with */
	size_t a_nown;
	bool a_fresh;              /* start them fresh instead of resuming them */
	struct agent_decl *a_decl; /* without a_fresh: the same, to resume */
	size_t a_ndecl;
	struct spec_config *a_config; /* --config: the node's own specs and allow list; or NULL */
	/*
	 * Specs that came with Restores (cluster-wide, svc_spec.h), newest first;
	 * pushed with a CAS, freed only by agent_free(), so a pointer into one
	 * stays valid while the agent lives.
	 */
	_Atomic(struct svc_kept *) a_kept;
	char *a_local_dir;            /* the lib driver's socket folder */
	struct drv_lib_host *a_lib;   /* its local server, once a config allows lib; or NULL */
	char *a_http;                 /* --http URL, or NULL */
	struct amet *a_amet;          /* with a_http: metrics and readiness, else NULL */

	struct comp_table *a_comps;
	struct queue *a_queue;      /* checkpoints waiting for the NAS */
	pthread_mutex_t a_flush_mu; /* one queue flush at a time */
	struct rpc_server *a_server;
	struct rpc_client *a_mgr;
	struct arena *a_link_arena; /* the link thread's, for Attach and Heartbeat requests */
	struct sysinfo_cap a_cap;   /* the link thread's, last capacity read */
	uint64_t a_instance;        /* this process, random at agent_new(), never 0 */

	pthread_mutex_t a_mu; /* guards what follows */
	pthread_cond_t a_cv;  /* signalled on stop, on attach and on a kick */
	bool a_stopping;
	bool a_linked;              /* attached (link.c) */
	uint64_t a_link_ok_ms;      /* monotonic: the last attach or heartbeat answered */
	bool a_link_asked;          /* down: the manager asked for an attach (it did not know us) */
	bool a_nas_down;            /* the last store failed for want of the NAS */
	char a_fatal[AGENT_FATAL_MAX]; /* why the agent must exit ("": it need not) */
	bool a_ckpt_kick;           /* checkpoint now (after a restore) */
	bool a_link_wake;           /* heartbeat now (link_wake()) */
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

/* agent.c: helpers */
void agent_hex(const uint8_t *digest, size_t len, char out[SHA_HEX_LEN + 1]);
void agent_deadline(struct timespec *ts, uint64_t mono_ms);
/* Sleeps until the monotonic time deadline_ms or until stop. True when stopping. */
bool agent_sleep_until(struct agent *a, uint64_t deadline_ms);
bool agent_sleep(struct agent *a, unsigned ms);
bool agent_stopping(struct agent *a);
/* Waits for the first attach; false when stopping (or timeout_ms passed, if not 0). */
bool agent_wait_first_attach(struct agent *a, unsigned timeout_ms, uint64_t *ret_when);
/* ms * [0.75, 1.25) */
unsigned agent_jitter(unsigned ms, uint64_t *seed);
/* What is left of a handler's deadline, at least AGENT_CALL_MIN_MS. */
unsigned agent_call_budget(struct rpc_call *call);
void agent_set_error(struct rpc_error *err, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * The agent cannot go on (its node id is held by another live agent): logs
 * why, keeps it for agent_failed() and asks the process to stop (SIGTERM,
 * which main() waits for).
 */
void agent_fail(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The spec of name: the newest a Restore brought (cluster-wide, svc_spec_keep()),
 * else the node's own (its config file), else NULL. Valid while the agent is.
 */
const struct spec *agent_spec_find(const struct agent *a, const char *name);
/*
 * A drv_spec for a restore of name by driver kind: the node's own spec's
 * settings when it has one of that kind, else none (the demo needs none).
 */
void agent_drv_spec(const struct agent *a, const char *name, const char *kind,
    struct drv_spec *ret_spec);

/* conf.c */
/* Checks cfg before agent_new() copies it: -EINVAL with the reason in err. */
int conf_check(const struct agent_config *cfg, char *err, size_t errlen);

/* nasref.c */
/* The NAS client in use with a reference (NULL before the first attach). */
struct agent_nas *nasref_get(struct agent *a);
/* Drops a reference; the last one closes the client. Accepts NULL. */
void nasref_put(struct agent *a, struct agent_nas *h);
/* Makes urls the NAS addresses in use, unless they already are (-EXDEV: not one store). */
int nasref_update(struct agent *a, char *const *urls, size_t n, struct rpc_error *err);

/* ckpt.c */
/*
 * Checkpoints name now: copies its state out, stores it on the NAS and
 * notifies the manager. final: also a STOPPED component (its last one).
 * may_queue: when the NAS is down (or checkpoints already wait), keep it in
 * the queue and return 0 with *ret_queued set. Logs the outcome; on failure
 * err says why.
 */
int ckpt_take(struct agent *a, const char *name, bool final, bool may_queue,
    unsigned timeout_ms, struct nasc_info *ret_info, bool *ret_queued, struct rpc_error *err);
/* Stores the queued checkpoints, oldest first; returns how many were stored. */
size_t ckpt_queue_flush(struct agent *a, unsigned timeout_ms);
/* Wakes the checkpoint loop for a round now. */
void ckpt_kick(struct agent *a);
void *ckpt_main(void *arg);

/* fence.c */
/* Another node owns name now: stop it, forget its queued checkpoints, say so once. */
void fence_lost(struct agent *a, const char *name, const char *why);
/* A Store refused with FAILED_PRECONDITION: true when name was given up. */
bool fence_check(struct agent *a, struct nasc *n, const char *name, uint64_t epoch,
    const struct rpc_error *serr);
/* The manager says another node owns these: stop them. */
void fence_revoked(struct agent *a, char *const *names, size_t n);

/* notify.c */
/* A CheckpointInfo that points into info (valid as long as info). */
void notify_info_view(const struct nasc_info *info, Ckpt__V1__CheckpointInfo *ret_pb);
/* The same, copied into arena (for a reply); NULL when out of memory. */
Ckpt__V1__CheckpointInfo *notify_info_copy(struct arena *arena, const struct nasc_info *info);
/* Sends Notify now (a final checkpoint, before Stop answers). */
void notify_send(struct agent *a, const struct nasc_info *info);
/* Queues it for the notifier thread (a newer one of the same component replaces it). */
void notify_later(struct agent *a, const struct nasc_info *info);
void *notify_main(void *arg);

/* link.c */
void *link_main(void *arg);
/*
 * Whether the manager link is up, for /readyz and ckpt_agent_attached:
 * attached, and a heartbeat answered within the lease (a_reattach_ms, the
 * manager's down-after, at least 3 heartbeats). A heartbeat or two lost or
 * refused is not a lost link: the manager still counts the node up.
 */
bool link_up(struct agent *a);
/*
 * link_up() that, when the link is down and why is not NULL, says why in one
 * line starting "not attached to the manager": never attached yet, no
 * heartbeat answered for N ms (the lease passed, attached or attaching
 * again), or the manager no longer knew the node.
 */
bool link_up_why(struct agent *a, char *why, size_t len);
/* Sends the next heartbeat now rather than after the period (news: a crash). */
void link_wake(struct agent *a);

/* decl.c: resume the components this agent was started with */
/* Declares a component to resume. Before agent_start() only. */
int decl_add(struct agent *a, const char *kind, const char *name,
    const struct drv_setting *sets, size_t nsets, const struct exec_conf *xc,
    const struct comp_req *reqs,
    size_t nreqs, char *err, size_t errlen);
/* The declared components still waiting, as ComponentStatus entries in arena. */
int decl_status(struct agent *a, struct arena *arena, Ckpt__V1__ComponentStatus ***ret_list,
    size_t *ret_count);
/* The manager's word on declared components (HeartbeatReply). */
void decl_notes(struct agent *a, char *const *fresh, size_t nfresh, char *const *elsewhere,
    size_t nelsewhere);
/* name was restored here (Agent.Restore): no longer waiting. */
void decl_done(struct agent *a, const char *name);
/* Starts the declared components the manager found no checkpoint of. Checkpoint loop only. */
void decl_start_fresh(struct agent *a);
void decl_free(struct agent *a);

/* tick.c */
void *tick_main(void *arg);

/* super.c: the supervisor thread (super.h) */
void *super_main(void *arg);

/* migr.c */
void *migr_main(void *arg);

/* svc.c */
extern const rpc_handler_fn svc_handlers[];
/* What svc_load() fetches and starts. */
struct svc_load_req {
	const char *lr_component;
	const char *lr_node;          /* "": whichever node stored it */
	uint64_t lr_seq;              /* 0: the latest */
	const uint8_t *lr_sha256;     /* SHA_LEN bytes it must have, NULL: any */
	const char *lr_kind;          /* the driver it must be for, NULL: its record's */
	unsigned lr_timeout_ms;
	const struct spec *lr_spec;   /* sent with the Restore (cluster-wide); NULL: the node's */
};
struct svc_loaded {
	const struct drv_ops *ld_ops;
	struct drv_inst *ld_inst;     /* started: the caller's */
	struct comp_ref ld_from;      /* the checkpoint read (a fallback's, if corrupt) */
	uint8_t ld_state_sha256[SHA_LEN];
};
/*
 * Fetches a checkpoint from the NAS, checks its kind and digest, and starts
 * it through its driver with the node's own spec of it (agent_drv_spec): the
 * restore of Agent.Restore and of supervision.
 * -ENOENT when no such checkpoint exists; the reason in msg on failure.
 */
int svc_load(struct agent *a, const struct svc_load_req *lr, struct svc_loaded *ret,
    char *msg, size_t msglen);
void svc_on_bad(void *arg, const char *reason);
/* Refusals of callers (rpc.h rs_on_refused), and who may call what (rs_roles). */
void svc_on_refused(void *arg, const char *line);
extern const unsigned svc_roles[];
/* A limit hit on the Agent or local service: one log line per limit per 5 s. */
void svc_on_limit(void *arg, const char *name, const char *msg);

#endif

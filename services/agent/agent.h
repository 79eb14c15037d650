/*
 * agent: one node agent (ckpt-agent).
 *
 * Serves the Agent service (Restore, Stop, CheckpointNow, Status) on its
 * listen URL, attaches to the manager (announcing the URL it bound) and
 * heartbeats, runs its components through their drivers (drv.h: the demo
 * and others), ticks them, checkpoints each of them to the NAS
 * every interval and notifies the manager, and with migrate-after calls for
 * the migration of the components it was started with, as the seed's
 * rtcr_dummy did.
 *
 * Threads: the rpc server's workers, a ticker, the manager link (attach and
 * heartbeats), the checkpoint loop (at a lower priority, nice +10, so that
 * copying and hashing large states never starves the link), the notifier (sends Notify in the
 * background, so a slow manager does not hold checkpoints up) and, with
 * migrate-after, the migration caller. No lock is held across a network
 * call, so the server keeps answering the manager while this agent's own
 * calls are pending.
 *
 * Failure handling:
 *  - NAS down: checkpoints that cannot be stored wait in a bounded local
 *    queue (queue.h, ac_queue_max bytes) and are stored in order when the
 *    NAS answers again (probed with Nas.Stat); while anything waits, new
 *    checkpoints queue behind it. The oldest are dropped first, counted,
 *    logged, and reported (Status.queue, Heartbeat.queue_dropped).
 *  - Fencing: a Store refused with FAILED_PRECONDITION for a stale epoch, or
 *    a component the manager names in AttachReply/HeartbeatReply.revoked,
 *    means another node owns it now: the agent stops running it at once,
 *    drops its queued checkpoints and logs
 *      WARN component C stopped: node N lost its ownership (...)
 *  - After a Restore the agent checkpoints at once, so the NAS learns the
 *    new epoch and refuses the old owner's commits from then on.
 *  - Resume: a component the agent is started with is not started fresh
 *    when it may have a checkpoint. The agent declares it when it attaches
 *    (AttachRequest.declared) and runs it once the manager says how: an
 *    Agent.Restore from its latest checkpoint (the manager's resume, with a
 *    new epoch), HeartbeatReply.start_fresh when no checkpoint of it exists,
 *    or HeartbeatReply.running_elsewhere when another node runs it (then it
 *    does not run here). ac_fresh starts them fresh at once instead.
 *  - Manager calls have deadlines; the attach loop retries with exponential
 *    back-off and jitter; heartbeats failing for down-after lead to attach
 *    again. nng redials every peer with its own randomised back-off.
 */
#ifndef CKPT_AGENT_AGENT_H
#define CKPT_AGENT_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drv.h"
#include "tls.h"
#include "limit.h"
#include "rpc.h"

#define AGENT_INTERVAL_MIN_MS 10u
#define AGENT_FATAL_MAX 512

struct agent;

struct agent_label {
	const char *al_key;   /* a valid key name (key.h) */
	const char *al_value; /* at most LIMIT_LABEL_VALUE_MAX bytes */
};

/*
 * How the checkpoint thread (copying, hashing, compressing, sending) yields
 * the CPU to the node's real work. Each applies to that thread only.
 */
enum agent_sched {
	AGENT_SCHED_NICE = 0, /* SCHED_OTHER at nice +AGENT_CKPT_NICE (the default) */
	AGENT_SCHED_BATCH,    /* SCHED_BATCH at that nice: never preempts on wake-up */
	AGENT_SCHED_IDLE,     /* SCHED_IDLE: runs only when nothing else wants the CPU */
};

struct agent_config {
	const char *ac_node;                /* node id, a valid key name */
	const char *ac_manager;             /* manager URL */
	const char *ac_listen;              /* URL of the Agent service; tcp port 0: any */
	/*
	 * URL announced to the manager instead (NULL: the listen URL, its port
	 * resolved; a wildcard host there is replaced by the manager with the
	 * address the agent's connection comes from).
	 */
	const char *ac_advertise;
	const struct agent_label *ac_labels;
	size_t ac_nlabels;
	unsigned ac_interval_ms;            /* checkpoint period, >= AGENT_INTERVAL_MIN_MS */
	uint64_t ac_migrate_after_ms;       /* 0: never call for migration */
	unsigned ac_workers;                /* rpc server workers; 0: 4 */
	uint64_t ac_queue_max;              /* bytes of checkpoints kept while the NAS is down */
	bool ac_queue_max_set;              /* false: QUEUE_MAX_DEFAULT (64M); 0 keeps none */
	/* Content-defined chunking of checkpoints (chunk.h); all 0: the defaults. */
	uint32_t ac_chunk_min, ac_chunk_avg, ac_chunk_max;
	/*
	 * true: the demo components start with a fresh state at once, whatever
	 * checkpoints of them exist. false: each resumes from its latest
	 * checkpoint (see Resume above), or starts fresh when none exists.
	 */
	bool ac_fresh;
	/*
	 * Folder of the local socket for lib components (drv_lib.h), opened when
	 * the config file allows driver lib. NULL: $XDG_RUNTIME_DIR/ckpt-agent-NODE,
	 * else /tmp/ckpt-agent-NODE.
	 */
	const char *ac_local_dir;
	/* NULL, or the URL of the HTTP endpoint: health, readiness and metrics (amet.h). */
	const char *ac_http;
	/*
	 * Cap on the bytes per second of checkpoint uploads (PutChunks), one
	 * token bucket for all the components (rate.h); 0: none. Restores are
	 * never capped. At most RATE_MAX.
	 */
	uint64_t ac_upload_rate;
	/* CPU policy of the checkpoint thread (ckpt.c); 0 is AGENT_SCHED_NICE. */
	enum agent_sched ac_ckpt_sched;
	/*
	 * NULL, or the TLS settings (tls.h) of the Agent service's listener and
	 * of the clients of the manager and the NAS. Not copied: must outlive
	 * the agent.
	 */
	const struct tls_conf *ac_tls;
	/* Limits on the Agent service's peers (rpc.h); NULL: the defaults. */
	const struct rpc_limits_conf *ac_limits;
	/*
	 * Components this node runs at most, its own and those restored here
	 * (limit node_components); 0: LIMIT_COMPONENTS_DEFAULT.
	 */
	unsigned ac_max_comps;
	size_t ac_recv_max;                 /* largest Agent request; 0: AGENT_RECV_MAX (1M) */
};

/* A label a demo component requires of its node (value "": any value). */
struct agent_req {
	const char *ar_key;
	const char *ar_value;
};

/* Copies cfg. -EINVAL with a reason in err for a bad setting. */
int agent_new(const struct agent_config *cfg, struct agent **ret_agent, char *err, size_t errlen);
/*
 * Adds a demo component of bytes bytes that this agent starts with (and
 * calls for the migration of, with migrate-after). Before agent_start() only.
 * Unless ac_fresh, it is declared to the manager and resumed (see Resume).
 */
int agent_add_demo(struct agent *a, const char *name, uint64_t bytes, char *err, size_t errlen);
/* The same with labels the component requires (at most 8; keys are names). */
int agent_add_demo_requiring(struct agent *a, const char *name, uint64_t bytes,
    const struct agent_req *reqs, size_t nreqs, char *err, size_t errlen);
/*
 * Adds a component of driver kind (drv.h) with its settings, which the
 * driver checks now. With ac_fresh it starts now; otherwise it is declared
 * to the manager and resumed (see Resume): restored, or started fresh
 * through its driver when no checkpoint exists. Before agent_start() only.
 * A reason in err for a bad one.
 */
int agent_add_component(struct agent *a, const char *kind, const char *name,
    const struct drv_setting *settings, size_t nsettings, const struct agent_req *reqs,
    size_t nreqs, char *err, size_t errlen);
struct spec_config;
/*
 * Takes cfg over (on success and on failure): a config file read by
 * spec_config_load() (spec.h), whose components were held against its
 * [allow] list. Adds each of its components as agent_add_component() does
 * (one whose spec says fresh starts fresh at once), and keeps the file's
 * specs and allow list: a restore of one of these components here starts
 * it from this node's own spec. Before agent_start() only, at most once.
 */
int agent_use_config(struct agent *a, struct spec_config *cfg, char *err, size_t errlen);
/* Components this agent was started with (--demo, agent_add_component, the config file). */
size_t agent_component_count(const struct agent *a);
/*
 * Listens, then starts the threads (attaching goes on in the background).
 * On failure returns -errno with a one-line cause in err.
 */
int agent_start(struct agent *a, char *err, size_t errlen);
/* The URL the Agent service is bound to (after agent_start()). */
const char *agent_url(const struct agent *a);
struct rpc_server;
/*
 * The Agent service's rpc server (after agent_start(), until agent_stop()),
 * for rpc_server_dispatch() in fuzzing and tests.
 */
struct rpc_server *agent_rpc_server(struct agent *a);
/* The URL of the HTTP endpoint (after agent_start()); NULL without ac_http. */
const char *agent_http_url(const struct agent *a);
/* True once attached to the manager; waits at most timeout_ms for it. */
bool agent_wait_attached(struct agent *a, unsigned timeout_ms);
/*
 * Whether the manager link is up now, as /readyz and ckpt_agent_attached
 * say: attached, and a heartbeat answered within the manager's down-after.
 */
bool agent_linked(struct agent *a);
/*
 * True when the agent cannot go on (the manager refused its node id:
 * another live agent holds it); why in ret_why. The agent then raised
 * SIGTERM in its own process so that main() stops it and exits non-zero.
 */
bool agent_failed(struct agent *a, char *ret_why, size_t len);
/* Stops threads and server, closes the clients. Idempotent. */
void agent_stop(struct agent *a);
/* Stops and frees. Accepts NULL. */
void agent_free(struct agent *a);

#endif

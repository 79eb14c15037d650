/*
 * mgr: the Manager service: its handlers, the node monitor, and the life
 * cycle of everything the manager owns (registry, NAS client, event
 * publisher, RPC server).
 *
 * Node identity. Each agent process has an instance id (random 64 bits at
 * its start, AttachRequest/HeartbeatRequest.instance, StatusReply.instance).
 * An Attach for a node id that is up under another instance is a claim:
 *  - the manager probes the holder at its registered address
 *    (Agent.Status, MGR_ATTACH_PROBE_MS, on the holder's client);
 *  - the holder answers with its own instance: it is alive, the attach is
 *    refused with ALREADY_EXISTS (logged; the newcomer exits saying so);
 *  - it does not answer (UNAVAILABLE, DEADLINE_EXCEEDED), or another
 *    instance answers there (an agent restarted on the same port): the
 *    holder is gone, the newcomer takes the node over at once, without
 *    waiting for down-after (an agent SIGKILLed and restarted);
 *  - any other answer: refused, the node is not taken on a guess.
 * A node that is down, unknown, or held by an agent that sends no instance
 * (0) is taken by any attach, as before. A heartbeat from an instance that
 * no longer holds the node is answered "attach again" (reattach): an agent
 * frozen (SIGSTOP) past a takeover then meets the rule above and exits.
 * A frozen holder that does not answer the probe loses the node: down-after
 * would have declared it down as well.
 *
 * Workers. Requests are served by mc_workers threads; Migrate and Drain,
 * which wait on agents and the NAS for seconds, are handed to another
 * mc_workers threads (rpc.h, "Long work") and answered from there, so
 * heartbeats are never queued behind them; failovers run on their own
 * thread. More migrations than that wait in turn (their deadline running).
 *
 * Log lines (one per event):
 *   INFO  node NODE attached from ADDRESS (N components)
 *   WARN  attach of node NODE from ADDRESS (instance I) refused: ...
 *   INFO  instance I from ADDRESS takes over node NODE: instance J at ADDRESS is gone (...)
 *   WARN  node NODE is down (silent for N ms)
 *   INFO  checkpoint stored on NAS: NODE/COMP@SEQ size=N sha256=HEX
 *   INFO  migration of COMP from SRC to DST started / done: restored ...
 *   WARN  bad request: REASON
 *   INFO  catalogue seeded from the NAS: N components
 *   WARN  catalogue not seeded from the NAS: CAUSE; retrying in the background
 *         (then retried with back-off, 100 ms doubling to 5 s, until it answers)
 */
#ifndef CKPT_MGR_MGR_H
#define CKPT_MGR_MGR_H

#include <stddef.h>

#include "tls.h"

#define MGR_VERSION_DEFAULT "0.1.0"

struct mgr;

struct mgr_config {
	const char *mc_listen;          /* RPC URL (tcp://host:0 picks a port) */
	const char *mc_events;          /* PUB URL */
	char *const *mc_nas;            /* NAS URLs, copied */
	size_t mc_nnas;                 /* 1..NASC_URLS_MAX */
	unsigned mc_heartbeat_ms;       /* told to agents */
	unsigned mc_down_after_ms;      /* silent longer: down */
	unsigned mc_workers;            /* concurrent requests, > 1 */
	unsigned mc_seed_timeout_ms;    /* catalogue from the NAS at start; 0: skip */
	const char *mc_http;            /* --http: health and metrics URL (mmet.h); NULL: none */
	/* Series of each metric by component or node (mmet_new()); 0: METRICS_SERIES_MAX. */
	size_t mc_metrics_series_max;
	/*
	 * NULL, or the TLS settings (tls.h) of every socket: the listen and
	 * events ones, the NAS clients and the clients of agents (their
	 * announced addresses too: plain beyond loopback is refused at Attach).
	 * Must outlive the manager.
	 */
	const struct tls_conf *mc_tls;
	/* Limits on peers: the RPC layer's (NULL: defaults), nodes, components per node. */
	const struct rpc_limits_conf *mc_limits;
	unsigned mc_max_nodes;          /* 0: LIMIT_NODES_DEFAULT */
	unsigned mc_max_node_comps;     /* 0: LIMIT_COMPONENTS_DEFAULT; at most the wire's 256 */
	size_t mc_recv_max;             /* largest request; 0: RPC_RECV_MAX_DEFAULT */
	/*
	 * A failover no node can take is tried again after this long (with
	 * jitter), and at once when a node attaches or is uncordoned or, when
	 * it found no room, a place frees. 0: MGR_FAILOVER_WAIT_MS (mgr.c).
	 */
	unsigned mc_failover_retry_ms;
};

/*
 * Opens everything and starts serving. On failure returns a negative errno
 * and a one-line cause in err ("cannot listen on URL: Address in use").
 */
int mgr_start(const struct mgr_config *cfg, struct mgr **ret_mgr, char *err, size_t errlen);
/* The URLs actually bound (mgr_http_url(): NULL without mc_http). */
const char *mgr_url(const struct mgr *m);
const char *mgr_http_url(const struct mgr *m);
const char *mgr_events_url(const struct mgr *m);
/* Stops the monitor and the server, closes everything. Accepts NULL. */
void mgr_stop(struct mgr *m);
struct rpc_server;
/* The service's rpc server (rpc_server_dispatch() for fuzzing and tests). */
struct rpc_server *mgr_rpc_server(struct mgr *m);

#endif

/*
 * mgr: the Manager service: its handlers, the node monitor, and the life
 * cycle of everything the manager owns (registry, NAS client, event
 * publisher, RPC server).
 *
 * Log lines (one per event):
 *   INFO  node NODE attached from ADDRESS (N components)
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
};

/*
 * Opens everything and starts serving. On failure returns a negative errno
 * and a one-line cause in err ("cannot listen on URL: Address in use").
 */
int mgr_start(const struct mgr_config *cfg, struct mgr **ret_mgr, char *err, size_t errlen);
/* The URLs actually bound. */
const char *mgr_url(const struct mgr *m);
const char *mgr_events_url(const struct mgr *m);
/* Stops the monitor and the server, closes everything. Accepts NULL. */
void mgr_stop(struct mgr *m);

#endif

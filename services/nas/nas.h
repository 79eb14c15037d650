/*
 * nas: the Nas service (proto/ckpt/v1/nas.proto) over the store.
 *
 * Each handler checks its request, calls one store function and turns the
 * result into the reply; the store owns validation of names, sizes and
 * hashes, and the messages that explain a refusal. One log line per event:
 *
 *   INFO  checkpoint stored: NODE/COMP@SEQ size=N sha256=HEX chunks=K
 *   INFO  checkpoint already stored: NODE/COMP@SEQ size=N sha256=HEX
 *   INFO  checkpoint retrieved: NODE/COMP@SEQ size=N
 *   INFO  checkpoints deleted: NODE/COMP@SEQ|all count=N chunks_freed=K
 *   INFO  retention: deleted N older checkpoints of COMP
 *   INFO  checkpoint pinned|unpinned: NODE/COMP@SEQ[ (already)]
 *   INFO  retention of COMP: keep N[ (default)], deleted N
 *   INFO  scrub: N chunks and N records verified, no problem
 *   ERROR scrub: PROBLEM                       (one line per problem, then a summary)
 *   WARN  store of NODE/COMP refused: CAUSE
 *   WARN  bad request: REASON                  (from the RPC layer)
 *   WARN  limit NAME hit: MESSAGE              (at most one line per limit per 5 s)
 *   ERROR chunk HEX is corrupt: ...            (GetChunks found a bad chunk header;
 *                                              bytes are verified by readers and scrub)
 *
 * Metrics (with nc_http), besides the RPC layer's ckpt_rpc_*:
 *   ckpt_nas_received_bytes_total      chunk bytes received (PutChunks, as sent: compressed)
 *   ckpt_nas_sent_bytes_total          chunk bytes sent (GetChunks)
 *   ckpt_nas_checkpoints_stored_total{component}  new checkpoints committed
 *   ckpt_nas_checkpoint_bytes_total    their logical (uncompressed, whole) size
 *   ckpt_nas_dedup_ratio               checkpoint bytes / received bytes since start
 *                                      (dedup and compression together; 0 before any)
 *   ckpt_nas_store_bytes, ckpt_nas_store_raw_bytes, ckpt_nas_checkpoints, ckpt_nas_chunks
 *   ckpt_nas_map_size_bytes, ckpt_nas_map_used_bytes, ckpt_nas_map_max_bytes
 *   ckpt_nas_writes_total, ckpt_nas_write_commits_total  (group commit)
 *   ckpt_nas_disk_reserve_bytes, ckpt_nas_disk_reserve_short  (store_room.c)
 */
#ifndef CKPT_NAS_NAS_H
#define CKPT_NAS_NAS_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"
#include "store.h"
#include "tls.h"

struct nas;

struct nas_config {
	const char *nc_listen;  /* URL; port 0 picks a free port */
	unsigned nc_workers;    /* requests served at once; 0: 4 */
	size_t nc_recv_max;     /* largest request, bytes; 0: RPC_RECV_MAX_DEFAULT */
	uint32_t nc_keep;       /* the store's --keep, reported by Stat */
	/*
	 * --http: NULL, or the URL of the HTTP endpoint (health.h) the service
	 * opens with its metrics; /readyz answers 200 while the store answers
	 * and its map is below nc_map_max.
	 */
	const char *nc_http;
	uint64_t nc_map_max;    /* the store's --map-max, for the metrics and /readyz */
	const struct tls_conf *nc_tls; /* NULL, or the TLS settings of nc_listen (tls.h) */
	/* Limits on peers (rpc.h); NULL: the defaults. */
	const struct rpc_limits_conf *nc_limits;
	/*
	 * PutChunks one peer may have in progress at once (limit uploads):
	 * per principal (rpc_call_principal(): an identity over all its
	 * connections); 0: LIMIT_UPLOADS_DEFAULT.
	 */
	unsigned nc_max_uploads;
	/*
	 * Series ckpt_nas_checkpoints_stored_total keeps (one per component);
	 * 0: METRICS_SERIES_MAX. Past it, Stores of new components are not
	 * counted there but in ckpt_metrics_series_dropped_total, and logged
	 * once.
	 */
	size_t nc_metrics_series_max;
};

/* Serves st (which must outlive the service) on cfg->nc_listen. */
int nas_start(const struct nas_config *cfg, struct store *st, struct nas **ret_nas);
/* The URL actually bound. */
const char *nas_url(const struct nas *n);
/* Stops serving and waits for the requests in progress. Accepts NULL. */
void nas_stop(struct nas *n);
/* The service's rpc server (rpc_server_dispatch() for fuzzing). */
struct rpc_server *nas_rpc_server(struct nas *n);

#endif

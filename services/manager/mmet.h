/*
 * mmet: the manager's HTTP endpoint (--http): readiness and metrics.
 *
 * /readyz answers 200 while at least one NAS answers Nas.Stat (within
 * MMET_NAS_PROBE_MS), 503 with the NAS client's error otherwise.
 *
 * Metrics, besides the RPC layer's ckpt_rpc_* (service "Manager"):
 *   ckpt_manager_nodes{state}                        nodes up and down
 *   ckpt_manager_nodes_cordoned                      nodes that take no component
 *   ckpt_manager_pending_components                  components waiting for a node
 *   ckpt_manager_node_queued_checkpoints{node}       each agent's queue (last heartbeat)
 *   ckpt_manager_node_queue_dropped_total{node}      checkpoints its queue dropped
 *   ckpt_manager_checkpoints_notified_total{component}
 *   ckpt_manager_checkpoint_age_seconds{component,node}
 *       age of the newest checkpoint the catalogue knows (wall clock, from its
 *       creation time): the work a failure would lose now
 *   ckpt_manager_migrations_total{kind,result}       kind migration, drain,
 *       failover or resume; result ok or failed
 *   ckpt_manager_migration_duration_seconds{kind}    (histogram)
 *   ckpt_manager_components{state}                   as the nodes report them ("failed":
 *                                                    given up by supervision)
 *   ckpt_manager_component_restarts_total{component,node}  supervision restarts
 *
 * Everything accepts a NULL mmet (no --http): nothing is counted.
 * Threads: any; the registry has its own lock, collectors take the
 * registry's lock (reg_nodes(), reg_checkpoints()) only.
 */
#ifndef CKPT_MGR_MMET_H
#define CKPT_MGR_MMET_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "nasc.h"
#include "registry.h"

#define MMET_NAS_PROBE_MS 1000u

struct mmet;

/*
 * The registry and its families; serving starts with mmet_serve().
 * series_max: the series each family labelled by component or node keeps
 * (metrics_set_series_max()); 0: METRICS_SERIES_MAX.
 */
int mmet_new(struct reg *reg, struct nasc *nasc, size_t series_max, struct mmet **ret_mmet);
/* The registry, for the RPC server (rs_metrics). NULL for a NULL mmet. */
struct metrics *mmet_registry(struct mmet *o);
/* Serves /healthz, /readyz and /metrics on url. A one-line cause in err. */
int mmet_serve(struct mmet *o, const char *url, char *err, size_t errlen);
const char *mmet_url(const struct mmet *o);
/* A checkpoint notified (Manager.Notify). */
void mmet_notified(struct mmet *o, const char *component);
/* A migration of kind ("migration", "drain", "failover", "resume") ended with rv after ms. */
void mmet_migration(struct mmet *o, const char *kind, int rv, uint64_t ms);
/* Stops serving and frees. Accepts NULL. */
void mmet_free(struct mmet *o);

#endif

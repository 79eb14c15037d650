/*
 * amet: the agent's HTTP endpoint (--http): readiness and metrics.
 *
 * /readyz answers 200 while the agent is attached to the manager (its
 * heartbeats answered) and its NAS answers Nas.Stat within AMET_NAS_PROBE_MS;
 * 503 with the reason otherwise ("not attached to the manager ...").
 *
 * Metrics, besides the RPC layer's ckpt_rpc_* (service "Agent"):
 *   ckpt_agent_attached                                1 while attached
 *   ckpt_agent_components_running
 *   ckpt_agent_checkpoints_stored_total{component}     stored on the NAS
 *   ckpt_agent_checkpoints_failed_total{component}     failed (not queued)
 *   ckpt_agent_checkpoint_last_success_timestamp_seconds{component}
 *   ckpt_agent_checkpoint_age_seconds{component}       since the last one stored
 *   ckpt_agent_checkpoint_interval_seconds{component}  configured (spec or --interval)
 *   ckpt_agent_queue_checkpoints, ckpt_agent_queue_bytes, ckpt_agent_queue_max_bytes
 *   ckpt_agent_queue_dropped_total                     dropped while the NAS was away
 *   ckpt_agent_checkpoint_bytes_total                  logical bytes of checkpoints stored
 *   ckpt_agent_sent_bytes_total                        chunk bytes sent to the NAS
 *   ckpt_agent_received_bytes_total                    chunk bytes read from the NAS
 *       (the last three count from the current NAS client: they restart at 0
 *       when the manager hands out another NAS list)
 *
 * Component restarts (supervision) are exported by the manager, which every
 * node reports them to: ckpt_manager_component_restarts_total.
 *
 * Every function accepts a NULL amet (no --http) and does nothing.
 */
#ifndef CKPT_AGENT_AMET_H
#define CKPT_AGENT_AMET_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

#define AMET_NAS_PROBE_MS 1000u

struct agent;
struct amet;

int amet_new(struct agent *a, struct amet **ret_amet);
/* The registry, for the RPC server (rs_metrics). NULL for a NULL amet. */
struct metrics *amet_registry(struct amet *o);
/* Serves on url; a one-line cause in err. */
int amet_serve(struct amet *o, const char *url, char *err, size_t errlen);
const char *amet_url(const struct amet *o);
/* Stops serving (first thing when the agent stops). */
void amet_halt(struct amet *o);
/* A checkpoint of component stored (rv 0) or failed. */
void amet_checkpoint(struct amet *o, const char *component, int rv);
/* Frees (after everything that counts stopped). Accepts NULL. */
void amet_free(struct amet *o);

#endif

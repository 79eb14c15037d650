/*
 * health: a service's HTTP endpoint (--http URL) for probes and scrapes.
 *
 *   GET /healthz   200 "ok": the process serves (liveness)
 *   GET /readyz    200 "ready", or 503 and a one-line reason (readiness,
 *                  as the service's hc_ready callback judges it)
 *   GET /metrics   the service's registry (metrics.h), Prometheus text 0.0.4
 *
 * Served by nng's own HTTP server (nng/supplemental/http): nng is already
 * linked into every service, so the endpoint adds no dependency and runs
 * on nng's threads like the rest of the I/O.
 *
 * Readiness may need a network call (is a NAS answering?), and nng's
 * handler callbacks run on nng's shared task threads, which must never
 * block on the network. So hc_ready runs on the endpoint's own thread,
 * every HEALTH_READY_EVERY_MS and at once when /readyz finds the last
 * answer older than that; /readyz answers the latest result, which is at
 * most about one period old ("starting" with 503 before the first one).
 * /metrics renders inline: collectors only read memory and the store.
 */
#ifndef CKPT_HEALTH_H
#define CKPT_HEALTH_H

#include <stddef.h>

#include "metrics.h"
#include "limit.h"

#define HEALTH_READY_EVERY_MS 1000u
#define HEALTH_REASON_MAX 256

struct health;

/*
 * 0 when ready; otherwise a negative errno with a one-line reason in why
 * ("not attached to the manager yet"). Runs on the endpoint's thread.
 */
typedef int (*health_ready_fn)(void *arg, char *why, size_t len);

struct health_config {
	const char *hc_url;          /* http://HOST:PORT; port 0 picks a free one */
	struct metrics *hc_metrics;  /* served at /metrics; must outlive the endpoint */
	health_ready_fn hc_ready;    /* NULL: ready as soon as it serves */
	void *hc_arg;
};

/* 0 when url has the form health_start() takes (http://HOST:PORT); else -EINVAL, why in err. */
int health_url_check(const char *url, char *err, size_t errlen);
/* Listens on cfg->hc_url. On failure a negative errno and a one-line cause in err. */
int health_start(const struct health_config *cfg, struct health **ret_health, char *err,
    size_t errlen);
/* The URL actually bound (port resolved). */
const char *health_url(const struct health *h);
/* Stops serving, waits for the readiness thread, frees. Accepts NULL. */
void health_stop(struct health *h);

#endif

/*
 * metrics: counters, gauges and histograms with labels, rendered in the
 * Prometheus text exposition format (version 0.0.4).
 *
 * A registry (struct metrics) belongs to one service, which creates it,
 * passes it to whatever counts (the RPC layer, its own handlers) and frees
 * it last; there is no global registry. A family is one metric name with
 * its type, help text and label names, fixed when it is added; its series
 * (one per set of label values) appear on first use; a family without
 * labels has its one series, at 0, from the start. Values are doubles
 * (counters and byte totals stay exact up to 2^53).
 *
 * Threads: any thread may update any family. A series' values are atomics:
 * an update finds its series under its family's read lock (updates do not
 * wait for each other) and adds to it without any lock; a family without
 * labels needs no look-up and takes no lock at all. A family's write lock is
 * taken only to add a series and by metrics_clear(); the registry's mutex
 * only to add families and collectors and to render. A family pointer stays
 * valid until metrics_free().
 *
 * Values that are cheaper to read than to track (a store's size, the nodes
 * by state) are set by collectors: functions the service registers, called
 * by metrics_render() before it renders (outside the lock, so they may call
 * metrics_set()). A collector that sets series which may disappear (one per
 * component) calls metrics_clear() on its family first.
 *
 * Limits: METRICS_FAMILIES_MAX families per registry, METRICS_LABELS_MAX
 * labels per family, METRICS_SERIES_MAX series per family by default
 * (metrics_set_series_max() sets a family's; label values come from the
 * wire: a family that is full ignores new series, -ENOSPC), label values
 * cut at METRICS_VALUE_MAX bytes. Never silently: each update a full family drops
 * is counted in ckpt_metrics_series_dropped_total{family} (rendered after
 * the families once any was dropped), and the registry's metrics_on_full()
 * function is called at a family's first drop, for its service to log.
 * A series costs about 100 bytes plus its label values and 8 bytes of
 * index (a histogram's 8 more per bucket).
 */
#ifndef CKPT_METRICS_H
#define CKPT_METRICS_H

#include <stddef.h>

#define METRICS_FAMILIES_MAX 128
#define METRICS_LABELS_MAX 4
#define METRICS_SERIES_MAX 4096     /* default series per family */
#define METRICS_SERIES_LIMIT 1048576 /* at most, metrics_set_series_max() */
#define METRICS_BUCKETS_MAX 24
#define METRICS_VALUE_MAX 128
#define METRICS_NAME_MAX 96
#define METRICS_COLLECTORS_MAX 8

struct metrics;
struct metrics_fam;

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

/* Bucket upper bounds (seconds) for request and operation durations. */
extern const double metrics_latency_buckets[];
extern const size_t metrics_latency_nbuckets;

typedef void (*metrics_collect_fn)(void *arg, struct metrics *m);
/* Called once per family, by the thread whose update found it full (max series). */
typedef void (*metrics_full_fn)(void *arg, const char *family, size_t max);

/* The counter of updates that full families dropped, by family. */
#define METRICS_DROPPED_NAME "ckpt_metrics_series_dropped_total"

int metrics_new(struct metrics **ret_metrics);
/* Frees the registry and its families. Accepts NULL. */
void metrics_free(struct metrics *m);

/*
 * Adds a family. labels: label names separated by commas ("service,method,code"),
 * NULL or "" for none. buckets: a histogram's upper bounds, increasing (+Inf
 * is implied); ignored for other types. Adding a name again returns the
 * family already there when type and labels match, -EEXIST otherwise.
 * -EINVAL for a name or label that is not [a-zA-Z_:][a-zA-Z0-9_:]*.
 */
int metrics_add_family(struct metrics *m, enum metrics_type type, const char *name,
    const char *help, const char *labels, const double *buckets, size_t nbuckets,
    struct metrics_fam **ret_fam);

/*
 * Updates the series of f with the label values vals (nvals must be the
 * family's label count). metrics_inc adds v (>= 0 for a counter);
 * metrics_set sets a gauge (or a counter read from elsewhere);
 * metrics_observe adds an observation to a histogram. 0, -EINVAL (wrong
 * type or count), -ENOSPC (family full), -ENOMEM. f NULL: nothing, 0 (a
 * service without metrics passes NULL families around).
 */
int metrics_inc(struct metrics_fam *f, double v, const char *const *vals, size_t nvals);
int metrics_set(struct metrics_fam *f, double v, const char *const *vals, size_t nvals);
int metrics_observe(struct metrics_fam *f, double v, const char *const *vals, size_t nvals);
/*
 * Drops every series of f (a collector about to set them all again); a
 * family without labels keeps its one series, set to 0.
 */
void metrics_clear(struct metrics_fam *f);

/* Label values in place: metrics_inc(f, 1, METRICS_L("nas", "Store", "OK")). */
#define METRICS_L(...)                                                                  \
	(const char *const[]){ __VA_ARGS__ },                                           \
	    (sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *))

/* fn(arg, ...) is called at each family's first drop (a service logs it); NULL: none. */
void metrics_on_full(struct metrics *m, metrics_full_fn fn, void *arg);
/*
 * Sets the series f may have (default METRICS_SERIES_MAX), for series made
 * from now on; -EINVAL for 0 or over METRICS_SERIES_LIMIT. f NULL: nothing.
 */
int metrics_set_series_max(struct metrics_fam *f, size_t max);

/* Registers fn, called with arg at every render. At most METRICS_COLLECTORS_MAX. */
int metrics_add_collector(struct metrics *m, metrics_collect_fn fn, void *arg);

/*
 * Runs the collectors and renders every family, in the order they were
 * added, series in the order they appeared. *ret_text is malloc'ed,
 * NUL-terminated, *ret_len bytes (free()).
 */
int metrics_render(struct metrics *m, char **ret_text, size_t *ret_len);

/* The content type of metrics_render()'s text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif

/*
 * drv: component drivers, one table of operations per kind of component
 * (as nng has one table of ops per protocol). The component table (comp.h)
 * holds an opaque instance and its ops and knows no driver by name; drv_find()
 * is the only place that lists the drivers.
 *
 * Contract:
 *  - Settings. A component is described by a drv_spec: its name and a list
 *    of key=value settings the driver defines (a key may repeat, e.g. one
 *    "arg" per argv element). d_check() refuses a bad spec with a one-line
 *    reason; d_start() may assume the spec passed d_check().
 *  - Buffers. d_start(state != NULL) is handed restored bytes (malloc'ed):
 *    on success the driver owns them (keeps them or free()s them); on failure
 *    the caller still does. d_checkpoint() fills a drv_ckpt with EITHER a
 *    malloc'ed ck_buf that the caller then owns and free()s, OR ck_regions
 *    that stay the driver's: they must stay valid and unchanged until the
 *    caller calls d_ckpt_done(), which it does exactly once after every
 *    successful d_checkpoint() (before any other op on that instance). The
 *    state is the regions concatenated in order. ck_changed (hints) is
 *    malloc'ed and owned by the caller.
 *  - Threads and locks. comp.c gives each instance its own lock and calls
 *    d_start/d_checkpoint/d_ckpt_done/d_tick/d_stop/d_digest/d_free for one
 *    instance one at a time, never while holding the table's lock; d_tick
 *    is skipped (not waited for) while a checkpoint holds the instance. The
 *    calling threads: d_check and d_start from the main thread (components
 *    given at start-up) or an RPC worker (Restore); d_checkpoint from the
 *    checkpoint thread or an RPC worker (Stop, CheckpointNow); d_tick from
 *    the ticker every DRV_TICK_MS; d_stop and d_free from whichever thread
 *    removes the component (never while a checkpoint runs).
 *    d_status is the exception: it is called under the table's lock by the
 *    manager link (heartbeats) and RPC workers at any time, concurrently with
 *    any other op of the instance but d_free. It must not block, allocate or
 *    wait for the instance's other work: report from fields the driver
 *    updates atomically (or under a lock of its own held only briefly).
 *  - Errors: 0 or a negative errno; with err (when given) a one-line reason
 *    without the component's name (the caller adds it).
 */
#ifndef CKPT_AGENT_DRV_H
#define CKPT_AGENT_DRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "chunk.h"
#include "limit.h"
#include "exec.h"
#include "sha.h"

#define DRV_SETTINGS_MAX 64     /* settings of one spec */
#define DRV_TICK_MS 100u        /* d_tick period */
#define DRV_STOP_GRACE_MS 5000u /* d_stop grace of a component stopped by request */

/* One setting of a component, as text. */
struct drv_setting {
	const char *st_key;
	const char *st_value;
};

/*
 * A component as declared: its name and its driver's settings. Drivers that
 * run a program (exec, lib) take it as a struct exec_conf that spec.h built
 * and held against the node's allow list (spec_check()); they copy what they
 * keep (exec_conf_dup()), so it need not outlive the call.
 */
struct drv_lib_host; /* drv_lib.h: the agent's local server for libckpt programs */

struct drv_spec {
	const char *sp_name; /* a valid key name (key.h) */
	const struct drv_setting *sp_settings;
	size_t sp_nsettings; /* <= DRV_SETTINGS_MAX */
	const struct exec_conf *sp_exec; /* exec and lib drivers; NULL for the others */
	struct drv_lib_host *sp_lib;     /* lib driver: the agent's, outlives the instance */
};

/* A piece of a state kept in the driver's (or its application's) memory. */
struct drv_region {
	const void *rg_base;
	size_t rg_len;
};

/* A byte range of the state (offsets in the concatenated state). */
struct drv_range {
	uint64_t rn_off;
	uint64_t rn_len;
};

/* What d_checkpoint() gives: a buffer or regions, plus optional hints. */
struct drv_ckpt {
	void *ck_buf; /* malloc'ed state, the caller's; NULL when regions are given */
	size_t ck_len;
	const struct drv_region *ck_regions; /* the driver's, until d_ckpt_done() */
	size_t ck_nregions;
	/*
	 * Hints: the ranges changed since the previous successful d_checkpoint()
	 * of this instance (malloc'ed, the caller's): every byte outside them, at
	 * an offset below the previous state's length, equals the previous
	 * state's byte at that offset (bytes past its end count as changed).
	 * ck_hinted false: no hints, the state is to be read whole; the first
	 * checkpoint of an instance gives none (comp.c could not tell a new
	 * instance's baseline from the old one's). A failed d_checkpoint() must
	 * keep what it would have reported. Whether the checkpoint gets stored
	 * is not the driver's concern: comp.c keeps the hints of copies that
	 * were not stored and adds them to the next (comp.h, comp_snap).
	 */
	struct drv_range *ck_changed;
	size_t ck_nchanged;
	bool ck_hinted;
};

enum drv_run {
	DRV_RUN_STARTING, /* started, not yet ready */
	DRV_RUN_RUNNING,
	DRV_RUN_EXITED,   /* ended on its own (exit status 0) or after d_stop() */
	DRV_RUN_CRASHED,  /* ended unexpectedly: supervision may restart it */
};

struct drv_status {
	enum drv_run ds_run;
	pid_t ds_pid;            /* its process, 0: none of its own */
	int ds_wstatus;          /* waitpid() status once EXITED or CRASHED */
	uint64_t ds_state_bytes; /* size of its state as last known, 0: unknown */
};

struct drv_inst; /* a driver's own instance: opaque to everyone else */

struct drv_ops {
	const char *d_kind;   /* the name in specs and in checkpoint records */
	uint64_t d_state_max; /* largest state it makes or takes, in bytes */
	int (*d_check)(const struct drv_spec *spec, char *err, size_t errlen);
	/* state NULL: a fresh start; else restored bytes (see Buffers above). */
	int (*d_start)(const struct drv_spec *spec, void *state, size_t len,
	    struct drv_inst **ret_inst, char *err, size_t errlen);
	/* final: the component is stopped and this is its last checkpoint. */
	int (*d_checkpoint)(struct drv_inst *inst, bool final, struct drv_ckpt *ret_ckpt,
	    char *err, size_t errlen);
	void (*d_ckpt_done)(struct drv_inst *inst); /* optional (NULL: nothing to release) */
	/* Ends it: politely, then by force once grace_ms passed. Idempotent. */
	int (*d_stop)(struct drv_inst *inst, unsigned grace_ms);
	void (*d_status)(struct drv_inst *inst, struct drv_status *ret_status);
	void (*d_tick)(struct drv_inst *inst); /* optional */
	/*
	 * Optional: the digest of the state d_checkpoint() would give now,
	 * without copying it: its ckpt-chunks-sha256 cut with cp (digest.h), or
	 * with cp NULL its plain SHA-256 (records of the older format). NULL: a
	 * restore takes the bytes it hands to d_start() for the checkpoint's,
	 * which were verified chunk by chunk against the record.
	 */
	int (*d_digest)(struct drv_inst *inst, const struct chunk_params *cp,
	    uint8_t ret_digest[SHA_LEN]);
	void (*d_free)(struct drv_inst *inst); /* after d_stop(); accepts NULL */
	/*
	 * Optional: whether the program handed over a checkpoint that
	 * d_checkpoint() has not given yet (lib). Its process crashed, the
	 * supervisor stores that checkpoint before the restart, which then
	 * continues from it. Never blocks.
	 */
	bool (*d_pending)(struct drv_inst *inst);
};

/* The driver of kind, or NULL. */
const struct drv_ops *drv_find(const char *kind);
/* The registered drivers, in order (for --help and tests). */
size_t drv_count(void);
const struct drv_ops *drv_at(size_t i);

/* Value of the last setting key in spec, or NULL. */
const char *drv_setting(const struct drv_spec *spec, const char *key);

/*
 * A state given as regions, copied into one malloc'ed buffer (at most max
 * bytes: -EFBIG beyond). The regions are not released here.
 */
int drv_flatten(const struct drv_ckpt *ck, uint64_t max, void **ret_buf, size_t *ret_len);

#endif

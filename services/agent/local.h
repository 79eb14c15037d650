/*
 * local: the agent's side of the Local service (proto/ckpt/v1/local.proto),
 * for the processes it runs that link libckpt; and the format a set of
 * regions is stored in.
 *
 * The agent starts one local server on an ipc:// URL (in a folder of its
 * own; the socket file gets mode lc_mode, 0600 by default) and gives that
 * URL and the component's name to the processes it starts (CKPT_LOCAL_URL,
 * CKPT_COMPONENT). Before a process may talk, the agent says whom to expect
 * (local_expect(): the component, its pid, its limit and, for a restart, the
 * restored state); a call from any other process, or naming a component
 * not expected, is refused (PERMISSION_DENIED, NOT_FOUND).
 *
 * Checkpoints: when the application calls ckpt_checkpoint(), its regions are
 * already copied into a sealed memfd of its own; the server opens it
 * (/proc/PID/fd/N), checks it and calls lo_checkpoint with a struct
 * local_ckpt whose regions point into the mapping. The callee then owns the
 * checkpoint: it stores it (local_state_*() give the stored form) after the
 * application resumed, and calls local_ckpt_release() once, from any thread,
 * which tells the application the memory is free again. The application
 * has two such segments: a third checkpoint before one is released waits
 * (ckpt_checkpoint() blocks, then fails with CKPT_EBUSY).
 *
 * Restart: the state given to local_expect() (the stored form) is served to
 * the process in pieces (GetRegion) until it checkpoints anew, finalises or
 * is forgotten.
 *
 * Threads: the server's workers call lo_checkpoint and lo_event; all local_
 * functions are thread-safe. One mutex guards the table of expected
 * components; it is never held across a callback.
 */
#ifndef CKPT_AGENT_LOCAL_H
#define CKPT_AGENT_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "limit.h"

#define LOCAL_REGIONS_MAX 1024      /* regions in one checkpoint (libckpt's CKPT_REGIONS_MAX) */
#define LOCAL_RANGES_MAX 64         /* changed ranges per region (libckpt's CKPT_RANGES_MAX) */
#define LOCAL_PIECE_MAX (4u << 20)  /* largest GetRegion piece */
#define LOCAL_SEG_HEADER 4096u      /* local.proto: the segment's header */

struct local_server;

/* bytes [lg_offset, lg_offset + lg_length) */
struct local_range {
	uint64_t lg_offset;
	uint64_t lg_length;
};

struct local_region {
	uint32_t lr_id;
	const uint8_t *lr_data;
	uint64_t lr_size;
	bool lr_whole;                       /* no hints: changed everywhere */
	const struct local_range *lr_changed; /* hints, from the region's start */
	size_t lr_n_changed;
};

/* A checkpoint an application handed over; read-only until released. */
struct local_ckpt {
	char lc_component[64];
	pid_t lc_pid;
	uint64_t lc_seq;                     /* the application's count */
	const struct local_region *lc_regions;
	size_t lc_n_regions;
	uint64_t lc_bytes;                   /* sum of the regions' sizes */
	/* The server's: */
	int lc_fd;
	uint8_t *lc_map;
	size_t lc_map_size;
	struct local_region *lc_own_regions;
	struct local_range *lc_own_ranges;
};

enum local_event {
	LOCAL_EV_HELLO,      /* the process introduced itself */
	LOCAL_EV_FINALIZE,   /* it said it is done */
};

struct local_config {
	const char *lc_url;          /* ipc:///path */
	unsigned lc_mode;            /* socket file mode; 0: 0600 */
	unsigned lc_workers;         /* 0: 2 */
	/*
	 * An application handed checkpoint ck over. Returning 0, the callee owns
	 * ck (local_ckpt_release() it once, from any thread, when stored or
	 * dropped); a negative errno refuses it (the server releases it; the
	 * application's ckpt_checkpoint() fails with the message, set with
	 * *ret_why when not NULL). Runs on a server worker: queue the work, do
	 * not store here. NULL: every checkpoint refused (UNIMPLEMENTED).
	 */
	int (*lc_on_checkpoint)(void *arg, struct local_ckpt *ck, const char **ret_why);
	/* Optional: what the processes do, for logs and state. */
	void (*lc_on_event)(void *arg, const char *component, pid_t pid, enum local_event ev);
	void *lc_arg;
};

/* What the agent expects of one process (local_expect()). */
struct local_expect {
	const char *le_component;
	pid_t le_pid;                /* 0: the first process to say Hello (tests) */
	uint64_t le_max_bytes;       /* the component's limit; 0: none */
	const void *le_state;        /* restored state (stored form, below) or NULL */
	size_t le_state_len;
	uint64_t le_seq;             /* the restored checkpoint's seq (0 if fresh) */
};

int local_start(const struct local_config *cfg, struct local_server **ret_server);
/* The URL for CKPT_LOCAL_URL. */
const char *local_url(const struct local_server *s);
/* Stops serving, removes the socket file. Checkpoints handed out stay valid. Accepts NULL. */
void local_stop(struct local_server *s);

/*
 * Expects le_pid as le_component (replacing what was expected of it before):
 * copies the restored state after checking it (-EBADMSG: not the stored form;
 * -EFBIG: over le_max_bytes). -ENOSPC: LIMIT_NODE_COMPONENTS_MAX expected already.
 */
int local_expect(struct local_server *s, const struct local_expect *le);
/*
 * Binds component, expected with le_pid 0, to pid once its process is known
 * (the agent expects it before it starts it, then learns its pid): 0 when
 * unbound or bound to pid already (its first Hello came first); -EPERM when
 * another process said Hello as component meanwhile; -ENOENT if unknown.
 */
int local_bind(struct local_server *s, const char *component, pid_t pid);
/* Stops expecting component (its process ended); -ENOENT if unknown. */
int local_forget(struct local_server *s, const char *component);

/*
 * Tells the application the segment is free again and unmaps it; frees ck.
 * Accepts NULL.
 */
void local_ckpt_release(struct local_ckpt *ck);

/*
 * The stored form of a set of regions, one buffer per checkpoint:
 *
 *   offset 0   magic "CKPTLIB1" (8 bytes)
 *   offset 8   count, uint32 little-endian (<= LOCAL_REGIONS_MAX)
 *   offset 12  reserved, uint32, 0
 *   offset 16  count entries of 16 bytes: id uint32 LE, reserved uint32 0,
 *              size uint64 LE; ids unique
 *   then       the regions' bytes, in the entries' order, back to back;
 *              the buffer ends with the last region's last byte.
 */
#define LOCAL_STATE_MAGIC "CKPTLIB1"
#define LOCAL_STATE_HEAD 16u
#define LOCAL_STATE_ENTRY 16u

/* Bytes of the header alone (local_state_header()). */
size_t local_state_header_size(size_t n_regions);
/* Bytes of the whole stored form; -EOVERFLOW. */
int local_state_size(const struct local_region *regions, size_t n, uint64_t *ret_size);
/* Writes the header alone into buf (len >= local_state_header_size(n)). */
int local_state_header(const struct local_region *regions, size_t n, void *buf, size_t len);
/* Writes the whole stored form into buf (len == local_state_size()). */
int local_state_encode(const struct local_region *regions, size_t n, void *buf, size_t len);
/*
 * Reads a stored form: *ret_regions (malloc'ed array, free() it) points into
 * buf, with lr_whole set. -EBADMSG for anything that is not the format.
 */
int local_state_decode(const void *buf, size_t len, struct local_region **ret_regions,
    size_t *ret_n);
/*
 * What changed in ck, as ranges of its stored form (the header always,
 * each region's hints, or all of it): sorted, not overlapping; *ret_ranges
 * malloc'ed.
 */
int local_ckpt_changed(const struct local_ckpt *ck, struct local_range **ret_ranges,
    size_t *ret_n);

#endif

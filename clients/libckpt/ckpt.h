/*
 * libckpt: application-level checkpointing through the ckpt agent.
 *
 * A program started by a ckpt agent registers the memory that is its state
 * (regions, by id), checkpoints at points it chooses, and at start learns
 * whether it is a restart and gets its regions back. The agent stores the
 * checkpoints on the NAS; after a failure or a migration it starts the
 * program again (on the same node or another) with the last checkpoint.
 *
 *   ckpt_init(NULL, NULL);                     component and agent from the environment
 *   ckpt_protect(1, &counter, sizeof(counter));
 *   ckpt_protect(2, buf, buf_size);
 *   if (ckpt_restarted())
 *           ckpt_restore();                    regions now hold the checkpoint
 *   for (;;) {
 *           work();
 *           ckpt_mark_changed(2, off, len);    optional hint
 *           if (time_to_checkpoint)
 *                   ckpt_checkpoint();
 *   }
 *   ckpt_finalize();
 *
 * Pause: ckpt_checkpoint() copies the regions into memory shared with the
 * agent, hands that over, and returns without waiting for the agent; the
 * agent stores them while the program goes on (ckpt_wait() waits for the
 * agent's answer). The
 * program must not write its regions while ckpt_checkpoint() runs (from
 * another thread); it may as soon as it returns.
 *
 * Errors: every function returns 0 (or a documented value) on success and a
 * negative CKPT_E* code on failure; nothing aborts or exits. ckpt_strerror()
 * names a code, ckpt_errmsg() gives the last error of the calling thread in
 * one line with its cause ("region 7 is not protected").
 *
 * Threads: every function is thread-safe: one lock serialises them (the
 * library has one instance per process). ckpt_strerror() and ckpt_errmsg()
 * take no lock. A call waits while another thread's call runs (for
 * ckpt_checkpoint(), the copy of the regions). Between ckpt_init() and
 * ckpt_finalize() the library runs one thread of its own, at nice 19, that
 * sends checkpoints to the agent (and nng runs its threads); a child made
 * with fork() must not call the library (it may ckpt_init() after exec).
 *
 * Environment (set by the agent for the processes it starts):
 *   CKPT_COMPONENT   the component's name
 *   CKPT_LOCAL_URL   the agent's local socket (ipc:///path)
 *   CKPT_TIMEOUT_MS  optional: deadline of each call to the agent (10000)
 *
 * Link: pkg-config --cflags --libs ckpt
 */
#ifndef CKPT_H
#define CKPT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKPT_VERSION_MAJOR 0
#define CKPT_VERSION_MINOR 1

enum ckpt_error {
	CKPT_OK = 0,
	CKPT_EINVAL = -1,         /* an argument is wrong (NULL, size 0, ...) */
	CKPT_ENOTINIT = -2,       /* ckpt_init() was not called (or ckpt_finalize() was) */
	CKPT_EALREADY = -3,       /* ckpt_init() called twice */
	CKPT_ENOAGENT = -4,       /* no agent: environment unset or socket unreachable */
	CKPT_ENOREGION = -5,      /* no region with that id */
	CKPT_ETOOBIG = -6,        /* a region or all of them over the agent's limit */
	CKPT_ENOMEM = -7,         /* out of memory */
	CKPT_EAGENT = -8,         /* the agent refused the call (ckpt_errmsg() says why) */
	CKPT_EBUSY = -9,          /* the agent still stores the previous checkpoints */
	CKPT_ENORESTART = -10,    /* not a restart: nothing to restore */
	CKPT_ESIZE = -11,         /* a restored region's size differs from the protected one */
	CKPT_ESYSTEM = -12,       /* a system call failed (ckpt_errmsg() says which) */
	CKPT_ETIMEDOUT = -13,     /* the agent did not answer in time */
	CKPT_ERANGE = -14,        /* offset/length outside the region */
};

/* Limits of the library (the agent may set lower ones, see ckpt_init()). */
#define CKPT_REGIONS_MAX 1024
#define CKPT_REGION_MAX ((uint64_t)1 << 40)     /* 1 TiB */
#define CKPT_RANGES_MAX 64                      /* hints kept per region; more: whole */

/*
 * Connects to the agent and introduces the process. component and url
 * override CKPT_COMPONENT and CKPT_LOCAL_URL when not NULL. Learns whether
 * this start is a restart (ckpt_restarted()) and the agent's limits.
 * CKPT_ENOAGENT when there is no agent to talk to.
 */
int ckpt_init(const char *component, const char *url);

/*
 * Registers (or, for a known id, re-registers) size bytes at ptr as region
 * id. The memory stays the program's; it must stay valid until the region is
 * unprotected or the library finalised. CKPT_ETOOBIG when size, or the sum of
 * all regions, exceeds the agent's limit; CKPT_EINVAL for size 0 or NULL.
 * At most CKPT_REGIONS_MAX regions.
 */
int ckpt_protect(uint32_t id, void *ptr, size_t size);
/* Forgets region id (CKPT_ENOREGION if unknown). */
int ckpt_unprotect(uint32_t id);

/*
 * Hint: bytes [offset, offset + len) of region id changed since the last
 * checkpoint. A region whose program never gave a hint counts as changed
 * everywhere at each checkpoint; once hinted, only its hinted ranges count
 * (over CKPT_RANGES_MAX ranges in one interval, the whole region). A region
 * protected anew, and every region after a region was added, resized or
 * unprotected, counts as changed everywhere once. Hints only make storing
 * cheaper: the copy is always whole.
 */
int ckpt_mark_changed(uint32_t id, size_t offset, size_t len);

/*
 * Checkpoints every protected region: copies them into memory shared with
 * the agent (the pause) and hands the copy over without waiting for the
 * agent's answer; the agent stores it while the program runs on. Returns the
 * checkpoint's sequence number (1, 2, ...), or an error.
 *
 * The agent's answer is taken by the next ckpt_checkpoint(), ckpt_wait() or
 * ckpt_finalize(): if the agent refused (or never answered) the previous
 * checkpoint, this call returns that error, takes no checkpoint, and the
 * next call takes one again (declaring every region changed). Each
 * checkpoint's failure is so reported exactly once.
 *
 * CKPT_EBUSY: the agent still stores the previous two checkpoints after the
 * deadline (the library keeps two copies, no more).
 */
int64_t ckpt_checkpoint(void);
/*
 * Waits for the agent's answer to the last checkpoint: 0 when it took it
 * (it stores it from then on), else the error (once). ckpt_checkpoint()
 * then ckpt_wait() is a checkpoint that knows its outcome.
 */
int ckpt_wait(void);

/* 1 if this start is a restart with a checkpoint to restore, 0 if not, or an error. */
int ckpt_restarted(void);
/*
 * Size of restored region id (for allocating before ckpt_protect()):
 * CKPT_ENOREGION if the checkpoint has no such region, CKPT_ENORESTART if
 * not a restart.
 */
int ckpt_restored_size(uint32_t id, size_t *ret_size);
/*
 * Copies the restored checkpoint into the protected regions. Every region of
 * the checkpoint must be protected with its size (CKPT_ENOREGION,
 * CKPT_ESIZE otherwise: checked before any byte is written). The bytes come
 * straight into the regions; if the agent fails midway (CKPT_EAGENT,
 * CKPT_ETIMEDOUT) they are partly written and ckpt_restore() may be called
 * again. Regions protected
 * but not in the checkpoint are left as they are. Restores once; the next
 * checkpoint's sequence continues from the restored one.
 */
int ckpt_restore(void);

/* Tells the agent the program is done, disconnects, forgets the regions. */
int ckpt_finalize(void);

/* A static description of code ("region over the limit"). Never NULL. */
const char *ckpt_strerror(int code);
/* The calling thread's last error, one line with its cause; "" when none. */
const char *ckpt_errmsg(void);

#ifdef __cplusplus
}
#endif

#endif

/*
 * drv_lib: the driver of kind "lib", a program linked with libckpt
 * (clients/libckpt/ckpt.h) that checkpoints itself.
 *
 * The agent owns one host (drv_lib_host_start()): the Local server
 * (local.h) on an ipc:// socket in a private folder, and the table that
 * routes each checkpoint an application hands over to its instance. A lib
 * component is an exec_conf with xc_run_only (run, folder, env, log-path,
 * user; spec.h builds it): the driver expects the component on the local
 * server (with the restored state on a restart), starts `run` with
 * CKPT_LOCAL_URL and CKPT_COMPONENT in its environment, then binds the
 * expectation to its pid.
 *
 * Checkpoints. The program decides when it checkpoints; the agent stores
 * each of them at most once, the newest first:
 *  - a checkpoint the program hands over becomes the instance's pending
 *    one; a newer one replaces it (the older is released unstored);
 *  - d_checkpoint() gives the pending one as regions (the stored form's
 *    header, then the program's regions, which point into its sealed
 *    memfd) with its changed ranges as hints when the program's count
 *    follows the previous one given without a gap (else no hints: read
 *    whole); d_ckpt_done() releases it (local_ckpt_release());
 *  - without a pending one: the state the instance started with, once (the
 *    restored bytes, or for a fresh start the stored form of no regions,
 *    which restarts the program fresh), so that a component always has a
 *    checkpoint, stored with its owner's epoch; then -EAGAIN ("nothing
 *    new"), which the agent's checkpoint loop passes over quietly and a
 *    final checkpoint answers with the newest one stored (ckpt.c).
 * A pending checkpoint survives the program's end: it is still given (the
 * program made it while it ran); with none, a checkpoint of an ended
 * program is -ESRCH, or -EAGAIN when final (its newest stored checkpoint is
 * its latest state, and moves with it).
 *
 * Supervision as drv_exec: the ticker polls `run`; an end nobody asked for
 * is CRASHED (non-zero exit or a signal) or EXITED (0).
 *
 * The local socket is mode 0600: programs run as the agent's user (spec.c
 * refuses `user` for driver lib).
 */
#ifndef CKPT_AGENT_DRV_LIB_H
#define CKPT_AGENT_DRV_LIB_H

#include <stddef.h>

#include "drv.h"
#include "local.h"

#define DRV_LIB_KIND "lib"
#define DRV_LIB_SOCKET "local.sock" /* in the host's folder */

extern const struct drv_ops drv_lib_ops;

/*
 * Starts the local server on ipc://DIR/local.sock: makes dir (mode 0700) if
 * missing and refuses one that is not a folder of this user closed to
 * others (-EACCES, -ENOTDIR). A socket left by a killed agent is replaced.
 * -ENAMETOOLONG for a path too long for a socket.
 */
int drv_lib_host_start(const char *dir, struct drv_lib_host **ret_host, char *err,
    size_t errlen);
/* Its URL (CKPT_LOCAL_URL). */
const char *drv_lib_host_url(const struct drv_lib_host *h);
/* The local server (tests). */
struct local_server *drv_lib_host_server(struct drv_lib_host *h);
/* Stops the server and removes the socket. After every instance was freed. Accepts NULL. */
void drv_lib_host_stop(struct drv_lib_host *h);

#endif

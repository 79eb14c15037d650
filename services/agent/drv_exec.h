/*
 * drv_exec: the driver of kind "exec", a component defined by commands
 * (exec.h is its engine). It takes its configuration as the drv_spec's
 * sp_exec (spec.h builds it and holds it against the node's allow list) and
 * keeps its own copy. The ticker polls the `run` process; a process that
 * ends while nobody stopped it is CRASHED (a non-zero exit or a signal) or
 * EXITED (exit status 0), which supervision acts on. A checkpoint of a
 * component whose process is no longer running is refused (-ESRCH): a dump
 * of a dead program is not its state.
 */
#ifndef CKPT_AGENT_DRV_EXEC_H
#define CKPT_AGENT_DRV_EXEC_H

#include "drv.h"

#define DRV_EXEC_KIND "exec"
#define DRV_EXEC_STATE_MAX (1ull << 30) /* = SPEC_LIMIT_MAX */

extern const struct drv_ops drv_exec_ops;

#endif

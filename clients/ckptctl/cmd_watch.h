/*
 * cmd_watch: `watch [PREFIX]`, the manager's event stream, one line per
 * event, until SIGINT/SIGTERM, --count N events or --for DURATION.
 */
#ifndef CKPTCTL_CMD_WATCH_H
#define CKPTCTL_CMD_WATCH_H

#include "ctl.h"

int cmd_watch(struct ctl *c, int argc, char **argv);

#endif

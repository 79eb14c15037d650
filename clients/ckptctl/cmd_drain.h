/*
 * cmd_drain: `drain NODE` (Manager.Drain), `cordon NODE` (Manager.Cordon),
 * `uncordon NODE` (Manager.Uncordon).
 */
#ifndef CKPTCTL_CMD_DRAIN_H
#define CKPTCTL_CMD_DRAIN_H

#include "ctl.h"

int cmd_drain(struct ctl *c, int argc, char **argv);
int cmd_cordon(struct ctl *c, int argc, char **argv);
int cmd_uncordon(struct ctl *c, int argc, char **argv);

#endif

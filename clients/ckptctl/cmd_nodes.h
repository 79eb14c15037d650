/*
 * cmd_nodes: the manager's view: `nodes` (Manager.ListNodes) and `info`
 * (Manager.Info).
 */
#ifndef CKPTCTL_CMD_NODES_H
#define CKPTCTL_CMD_NODES_H

#include "ctl.h"

int cmd_nodes(struct ctl *c, int argc, char **argv);
int cmd_info(struct ctl *c, int argc, char **argv);

#endif

/*
 * cmd_data: checkpoint bytes: `get` (verified retrieve, to a file or stdout)
 * and `put` (store from a file or stdin, then Manager.Notify).
 */
#ifndef CKPTCTL_CMD_DATA_H
#define CKPTCTL_CMD_DATA_H

#include "ctl.h"

int cmd_get(struct ctl *c, int argc, char **argv);
int cmd_put(struct ctl *c, int argc, char **argv);

#endif

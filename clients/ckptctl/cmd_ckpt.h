/*
 * cmd_ckpt: checkpoint records: `ls` (Nas.List), `catalog`
 * (Manager.ListCheckpoints), `stat` (Nas.Stat), `rm` (Nas.Delete).
 */
#ifndef CKPTCTL_CMD_CKPT_H
#define CKPTCTL_CMD_CKPT_H

#include "ctl.h"

int cmd_ls(struct ctl *c, int argc, char **argv);
int cmd_catalog(struct ctl *c, int argc, char **argv);
int cmd_stat(struct ctl *c, int argc, char **argv);
int cmd_rm(struct ctl *c, int argc, char **argv);

#endif

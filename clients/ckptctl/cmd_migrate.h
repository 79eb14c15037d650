/*
 * cmd_migrate: `migrate COMPONENT [--to NODE]` (Manager.Migrate).
 */
#ifndef CKPTCTL_CMD_MIGRATE_H
#define CKPTCTL_CMD_MIGRATE_H

#include "ctl.h"

int cmd_migrate(struct ctl *c, int argc, char **argv);

#endif

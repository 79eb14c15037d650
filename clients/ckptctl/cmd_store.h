/*
 * cmd_store: the NAS storage engine's own commands: `pin` / `unpin`
 * (Nas.Pin), `keep` (Nas.SetRetention), `scrub` (Nas.Scrub).
 */
#ifndef CKPTCTL_CMD_STORE_H
#define CKPTCTL_CMD_STORE_H

#include "ctl.h"

int cmd_pin(struct ctl *c, int argc, char **argv);
int cmd_unpin(struct ctl *c, int argc, char **argv);
int cmd_keep(struct ctl *c, int argc, char **argv);
int cmd_scrub(struct ctl *c, int argc, char **argv);

#endif

/*
 * cmd_digest: a local file against stored checkpoints, by their identity
 * digest (ckpt-chunks-sha256, digest.h): `digest` prints a file's, `verify`
 * says whether a file is a given checkpoint (exit 0) or not (exit 1).
 */
#ifndef CKPTCTL_CMD_DIGEST_H
#define CKPTCTL_CMD_DIGEST_H

#include "ctl.h"

int cmd_digest(struct ctl *c, int argc, char **argv);
int cmd_verify(struct ctl *c, int argc, char **argv);

#endif

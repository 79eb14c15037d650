/*
 * cmd_spec: cluster-wide component specs.
 *
 *   apply -f FILE        every [component NAME] section of FILE (the agent's
 *                        config format, services/agent/spec.h), checked for
 *                        form here ("FILE:LINE: FIELD: reason"), then sent one
 *                        by one in file order (Manager.Apply); stops at the
 *                        first the manager refuses
 *   delete COMPONENT     Manager.Delete
 *   specs                the specs stored on the NAS (Nas.ListSpecs)
 */
#ifndef CKPTCTL_CMD_SPEC_H
#define CKPTCTL_CMD_SPEC_H

#include "ctl.h"

int cmd_apply(struct ctl *c, int argc, char **argv);
int cmd_delete(struct ctl *c, int argc, char **argv);
int cmd_specs(struct ctl *c, int argc, char **argv);

#endif

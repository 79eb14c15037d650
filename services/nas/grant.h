/*
 * grant: which node may read a component's checkpoints of other nodes
 * (Nas.Grant, nas.proto), in the NAS's memory.
 *
 * One entry per component: the node the manager last ordered to restore
 * it. A node may always read its own checkpoints (key node == its id);
 * those of other nodes only for the component granted to it. At most
 * GRANT_MAX components; beyond, a grant is refused (-ENOSPC) until
 * components are granted again... which replaces, not adds. Thread-safe
 * (one mutex).
 */
#ifndef CKPT_NAS_GRANT_H
#define CKPT_NAS_GRANT_H

#include <stdbool.h>
#include <stdint.h>

#define GRANT_MAX 65536u

struct grants;

int grant_new(struct grants **ret_g);
/* Accepts NULL. */
void grant_free(struct grants *g);
/* Component to node; *ret_replaced: another node held it. -ENOSPC when full. */
int grant_set(struct grants *g, const char *component, const char *node, uint64_t epoch,
    bool *ret_replaced);
/* Whether component is granted to node. */
bool grant_allows(struct grants *g, const char *component, const char *node);

#endif

/*
 * grant: which node may read a component's checkpoints of other nodes
 * (Nas.Grant, nas.proto): a table in the NAS's memory, loaded from the store
 * at open and written through to it (store_grant_put(), "grant" in LMDB), so
 * a grant outlives a restart of the NAS.
 *
 * One entry per component: the node the manager last ordered to restore
 * it. A node may always read its own checkpoints (key node == its id);
 * those of other nodes only for the component granted to it. At most
 * max components (GRANT_MAX); beyond, a grant is refused (-ENOSPC) until
 * components are granted again... which replaces, not adds. A grant is
 * durable when grant_set() returns 0; on a store error neither the store
 * nor the table changed. grant_allows() reads memory only. Thread-safe:
 * writers take one mutex (held over the store's write), the table another
 * (never held over the store).
 */
#ifndef CKPT_NAS_GRANT_H
#define CKPT_NAS_GRANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define GRANT_MAX 65536u

struct grants;

/* What grant_open() found in the store. */
struct grant_loaded {
	size_t gl_loaded;
	size_t gl_bad;   /* values that do not decode: skipped */
	size_t gl_over;  /* beyond max (a store written with a larger bound): skipped */
};

/*
 * A table backed by st (NULL: memory only), loaded from it, of at most max
 * components (0: GRANT_MAX). ret_loaded may be NULL. st must outlive the
 * table.
 */
int grant_open(struct store *st, size_t max, struct grants **ret_g,
    struct grant_loaded *ret_loaded, struct store_error *ret_err);
/* Memory only, GRANT_MAX. */
int grant_new(struct grants **ret_g);
/* Accepts NULL. */
void grant_free(struct grants *g);
/*
 * Component to node; *ret_replaced: another node held it. -EINVAL for a bad
 * name, -ENOSPC when full (or the store is), with ret_err's message.
 */
int grant_set(struct grants *g, const char *component, const char *node, uint64_t epoch,
    bool *ret_replaced, struct store_error *ret_err);
/*
 * After a delete of component's checkpoints: drops the entry when the store
 * no longer holds its grant (store_delete() deleted it with the last
 * checkpoint). No-op for a table without store.
 */
int grant_sync(struct grants *g, const char *component, struct store_error *ret_err);
size_t grant_count(struct grants *g);
/* Whether component is granted to node. */
bool grant_allows(struct grants *g, const char *component, const char *node);

#endif

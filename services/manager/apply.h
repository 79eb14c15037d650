/*
 * apply: Manager.Apply and Manager.Delete, the cluster-wide specs of
 * ckptctl apply -f FILE / ckptctl delete COMPONENT.
 *
 * Apply: the spec's form is checked (name, driver, labels; what it asks for
 * is each node's business), the spec stored before it is kept aside, the
 * new one stored on the NAS (Nas.PutSpec: durable before anything runs, so
 * a failover or a manager that starts again finds it), then, unless an up
 * node runs the component already, placed (mig_apply(): each candidate in
 * placement's order is offered it until one takes it). When no node takes
 * it the previous spec is put back (or the new one deleted) and the call
 * fails with every node's reason (FAILED_PRECONDITION).
 *
 * Delete: while the component is held as migrating (no failover or
 * migration of it meanwhile), its spec leaves the NAS, then the node that
 * runs it stops it with a final checkpoint (without one when that fails:
 * the NAS may be down), and the registry forgets its owner, so nothing
 * restarts it. Its checkpoints stay (ckptctl rm deletes them); applying the
 * spec again continues from the newest. NOT_FOUND when there was no spec
 * and no node ran it.
 *
 * Both are long work (they wait on agents and the NAS): run off the request
 * workers (mgr.c, mgr_slow).
 */
#ifndef CKPT_MGR_APPLY_H
#define CKPT_MGR_APPLY_H

#include "ckpt/v1/manager.pb-c.h"
#include "migrate.h"
#include "rpc.h"

int mapply_apply(const struct mig_env *env, struct rpc_call *call,
    const Ckpt__V1__ApplyRequest *req, Ckpt__V1__ApplyReply *rep);
int mapply_delete(const struct mig_env *env, struct rpc_call *call,
    const Ckpt__V1__DeleteComponentRequest *req, Ckpt__V1__DeleteComponentReply *rep);

#endif

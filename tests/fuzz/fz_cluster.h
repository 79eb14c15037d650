/*
 * fz_cluster: a whole cluster in the fuzzer's process, for the request
 * handling targets (fuzz_manager, fuzz_agent): a NAS on a real LMDB store,
 * a manager and one agent running a demo component, every socket an ipc://
 * one in a temporary folder, no TCP. The agent has attached and stored one
 * checkpoint of its component (on the NAS, in the manager's catalogue)
 * before fz_cluster_new() returns, so requests reach the handlers' deep
 * paths (migrations, restores, deletes) and not only their checks.
 *
 * Requests go in through the services' rpc servers (rpc_server_dispatch(),
 * as a worker would hand them on), on the fuzzer's thread; the services'
 * own threads (heartbeats, the checkpoint loop, failovers) go on beside.
 */
#ifndef CKPT_FZ_CLUSTER_H
#define CKPT_FZ_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct rpc_server;

#define FZ_NODE "fz-node"          /* the agent's node id */
#define FZ_DEMO "fz-demo"          /* its demo component */
#define FZ_CALL_TIMEOUT_MS 2000u   /* each request's deadline (the envelope's) */

struct fz_cluster {
	char fc_dir[64];               /* the temporary folder, removed by fz_cluster_free() */
	struct store *fc_store;
	struct nas *fc_nas;
	struct mgr *fc_mgr;
	struct agent *fc_agent;
};

/* Builds it (aborts with the reason on failure: a fuzzer cannot go on). */
struct fz_cluster *fz_cluster_new(const char *who);
/* How many inputs a cluster serves before it is made again: def, or CKPT_FUZZ_RESET. */
size_t fz_cluster_reset_every(size_t def);
/* Stops everything, removes the folder. Accepts NULL. */
void fz_cluster_free(struct fz_cluster *c);
struct rpc_server *fz_cluster_mgr_server(struct fz_cluster *c);
struct rpc_server *fz_cluster_agent_server(struct fz_cluster *c);

/*
 * One request of service's method with body as its encoded message, through
 * rpc_server_dispatch(); returns the reply's code (ckpt.v1.Code), or -1 when
 * no reply was made.
 */
int fz_call(struct rpc_server *s, const ProtobufCServiceDescriptor *service, unsigned method,
    const uint8_t *body, size_t len);
/* The same with a message, packed here; aborts unless the reply's code is want (-1: any). */
int fz_call_msg(struct rpc_server *s, const ProtobufCServiceDescriptor *service,
    unsigned method, const ProtobufCMessage *req, int want);

#endif

/*
 * The Agent service in a whole cluster in process (fz_cluster.h: a NAS on
 * LMDB, a manager, the agent running a demo component with a checkpoint
 * stored): each input is one request, its first byte the method (one past
 * the last: the unknown-method path) and the rest the encoded request,
 * handled as a worker would (rpc_server_dispatch). Restores fetch real
 * checkpoints from the NAS, Stop and CheckpointNow store them. ASan and
 * UBSan watch; the agent must keep answering (Status OK every 256 inputs).
 * The agent has no config file, so no spec from a request may run a
 * program (its allow list is empty). State is bounded: the cluster is made
 * again every FZ_AGENT_RESET inputs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ckpt/v1/agent.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "fz_cluster.h"
#include "methods.h"

#define FZ_AGENT_RESET 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz_cluster *fz_c;
static size_t fz_runs;

static void
fz_fini(void)
{
	fz_cluster_free(fz_c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCServiceDescriptor *svc = &ckpt__v1__agent__descriptor;

	if (fz_c == NULL) {
		fz_c = fz_cluster_new("agent");
		atexit(fz_fini);
	}
	if (size == 0)
		return 0;
	fz_call(fz_cluster_agent_server(fz_c), svc, data[0] % (svc->n_methods + 1), data + 1,
	    size - 1);
	if (++fz_runs % 256 == 0) {
		Ckpt__V1__StatusRequest req = CKPT__V1__STATUS_REQUEST__INIT;
		fz_call_msg(fz_cluster_agent_server(fz_c), svc, AGENT_STATUS, &req.base,
		    CKPT__V1__CODE__OK);
	}
	if (fz_runs % fz_cluster_reset_every(FZ_AGENT_RESET) == 0) {
		fz_cluster_free(fz_c);
		fz_c = fz_cluster_new("agent");
	}
	return 0;
}

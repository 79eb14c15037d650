/*
 * The Manager service in a whole cluster in process (fz_cluster.h: a NAS on
 * LMDB, the manager, an agent running a demo component with a checkpoint
 * stored, two attached nodes that never answer): each input is one request,
 * its first byte the method (one past the last: the unknown-method path)
 * and the rest the encoded request, handled as a worker would
 * (rpc_server_dispatch). ASan and UBSan watch; the manager must keep
 * answering (ListNodes OK every 256 inputs).
 *
 * The network stays out: an Attach whose address is not "ipc://NAME" (a
 * socket file in the current folder, none of which exists) is skipped,
 * so the manager never dials a host or another process's socket; calls to
 * such nodes fail at once (the connect is refused). State is bounded: the
 * cluster is made again every FZ_MGR_RESET inputs.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/manager.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "fz_cluster.h"
#include "methods.h"

#define FZ_MGR_RESET 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz_cluster *fz_c;
static size_t fz_runs;

static void
fz_fini(void)
{
	fz_cluster_free(fz_c);
}

/* Whether the manager may dial what this Attach announces (see above). */
static bool
fz_attach_local(const uint8_t *body, size_t len)
{
	Ckpt__V1__AttachRequest *req = ckpt__v1__attach_request__unpack(NULL, len, body);
	bool ok;

	if (req == NULL)
		return true; /* refused before any dial */
	/* Not a URL (refused before any dial), or a socket file here. */
	ok = strstr(req->address, "://") == NULL ||
	    (strncmp(req->address, "ipc://", 6) == 0 && strchr(req->address + 6, '/') == NULL);
	ckpt__v1__attach_request__free_unpacked(req, NULL);
	return ok;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCServiceDescriptor *svc = &ckpt__v1__manager__descriptor;
	unsigned method;

	if (fz_c == NULL) {
		fz_c = fz_cluster_new("mgr");
		atexit(fz_fini);
	}
	if (size == 0)
		return 0;
	method = data[0] % (svc->n_methods + 1);
	if (method == MGR_ATTACH && !fz_attach_local(data + 1, size - 1))
		return -1;
	fz_call(fz_cluster_mgr_server(fz_c), svc, method, data + 1, size - 1);
	if (++fz_runs % 256 == 0) {
		Ckpt__V1__ListNodesRequest req = CKPT__V1__LIST_NODES_REQUEST__INIT;
		fz_call_msg(fz_cluster_mgr_server(fz_c), svc, MGR_LIST_NODES, &req.base,
		    CKPT__V1__CODE__OK);
	}
	if (fz_runs % fz_cluster_reset_every(FZ_MGR_RESET) == 0) {
		fz_cluster_free(fz_c);
		fz_c = fz_cluster_new("mgr");
	}
	return 0;
}

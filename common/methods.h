/*
 * methods: the opcode of every method, one place for every service and client.
 *
 * A method's opcode is its index in its service block in proto/ckpt/v1
 * (rpc.proto explains). These names must follow the .proto files; the unit
 * test common_methods checks each one against the generated descriptors, so
 * a reordered or inserted method fails the build's tests, not a deployment.
 * Methods are only ever appended.
 */
#ifndef CKPT_METHODS_H
#define CKPT_METHODS_H

enum mgr_method {
	MGR_ATTACH = 0,
	MGR_NOTIFY = 1,
	MGR_MIGRATE = 2,
	MGR_HEARTBEAT = 3,
	MGR_LIST_NODES = 4,
	MGR_LIST_CHECKPOINTS = 5,
	MGR_INFO = 6,
	MGR_DRAIN = 7,
	MGR_CORDON = 8,
	MGR_UNCORDON = 9,
	MGR_FORGET = 10,
	MGR_APPLY = 11,
	MGR_DELETE = 12,
	MGR_METHODS
};

enum nas_method {
	NAS_STORE = 0,
	NAS_RETRIEVE = 1,
	NAS_LIST = 2,
	NAS_DELETE = 3,
	NAS_STAT = 4,
	NAS_HAVE_CHUNKS = 5,
	NAS_PUT_CHUNKS = 6,
	NAS_GET_CHUNKS = 7,
	NAS_PIN = 8,
	NAS_SET_RETENTION = 9,
	NAS_SCRUB = 10,
	NAS_PUT_SPEC = 11,
	NAS_GET_SPEC = 12,
	NAS_LIST_SPECS = 13,
	NAS_DELETE_SPEC = 14,
	NAS_GRANT = 15,
	NAS_METHODS
};

enum agent_method {
	AGENT_RESTORE = 0,
	AGENT_STOP = 1,
	AGENT_CHECKPOINT_NOW = 2,
	AGENT_STATUS = 3,
	AGENT_METHODS
};

/* Local: an application's libckpt and its agent (local.proto). */
enum local_method {
	LOCAL_HELLO = 0,
	LOCAL_GET_REGION = 1,
	LOCAL_CHECKPOINT = 2,
	LOCAL_FINALIZE = 3,
	LOCAL_METHODS
};

#endif

/* The opcodes in methods.h follow the services' method order in proto/. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/agent.pb-c.h"
#include "ckpt/v1/local.pb-c.h"
#include "ckpt/v1/manager.pb-c.h"
#include "ckpt/v1/nas.pb-c.h"
#include "methods.h"
#include "../testrun.h"

struct opcode {
	unsigned index;
	const char *name;
};

static void
check_service(const ProtobufCServiceDescriptor *svc, const struct opcode *ops, size_t n,
    unsigned count)
{
	ck_assert_uint_eq(svc->n_methods, count);
	ck_assert_uint_eq(n, count);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(strcmp(svc->methods[ops[i].index].name, ops[i].name) == 0,
		    "%s method %u is %s, methods.h says %s", svc->name, ops[i].index,
		    svc->methods[ops[i].index].name, ops[i].name);
}

START_TEST(manager_opcodes_follow_the_proto)
{
	static const struct opcode ops[] = { { MGR_ATTACH, "Attach" }, { MGR_NOTIFY, "Notify" },
		{ MGR_MIGRATE, "Migrate" }, { MGR_HEARTBEAT, "Heartbeat" },
		{ MGR_LIST_NODES, "ListNodes" }, { MGR_LIST_CHECKPOINTS, "ListCheckpoints" },
		{ MGR_INFO, "Info" }, { MGR_DRAIN, "Drain" }, { MGR_CORDON, "Cordon" },
		{ MGR_UNCORDON, "Uncordon" }, { MGR_FORGET, "Forget" }, { MGR_APPLY, "Apply" },
		{ MGR_DELETE, "Delete" } };
	check_service(&ckpt__v1__manager__descriptor, ops, sizeof(ops) / sizeof(ops[0]), MGR_METHODS);
}
END_TEST

START_TEST(nas_opcodes_follow_the_proto)
{
	static const struct opcode ops[] = { { NAS_STORE, "Store" }, { NAS_RETRIEVE, "Retrieve" },
		{ NAS_LIST, "List" }, { NAS_DELETE, "Delete" }, { NAS_STAT, "Stat" },
		{ NAS_HAVE_CHUNKS, "HaveChunks" }, { NAS_PUT_CHUNKS, "PutChunks" },
		{ NAS_GET_CHUNKS, "GetChunks" }, { NAS_PIN, "Pin" },
		{ NAS_SET_RETENTION, "SetRetention" }, { NAS_SCRUB, "Scrub" },
		{ NAS_PUT_SPEC, "PutSpec" }, { NAS_GET_SPEC, "GetSpec" }, { NAS_LIST_SPECS, "ListSpecs" },
		{ NAS_DELETE_SPEC, "DeleteSpec" }, { NAS_GRANT, "Grant" } };
	check_service(&ckpt__v1__nas__descriptor, ops, sizeof(ops) / sizeof(ops[0]), NAS_METHODS);
}
END_TEST

START_TEST(agent_opcodes_follow_the_proto)
{
	static const struct opcode ops[] = { { AGENT_RESTORE, "Restore" }, { AGENT_STOP, "Stop" },
		{ AGENT_CHECKPOINT_NOW, "CheckpointNow" }, { AGENT_STATUS, "Status" } };
	check_service(&ckpt__v1__agent__descriptor, ops, sizeof(ops) / sizeof(ops[0]),
	    AGENT_METHODS);
}
END_TEST

START_TEST(local_opcodes_follow_the_proto)
{
	static const struct opcode ops[] = { { LOCAL_HELLO, "Hello" },
		{ LOCAL_GET_REGION, "GetRegion" }, { LOCAL_CHECKPOINT, "Checkpoint" },
		{ LOCAL_FINALIZE, "Finalize" } };
	check_service(&ckpt__v1__local__descriptor, ops, sizeof(ops) / sizeof(ops[0]),
	    LOCAL_METHODS);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("methods");
	TCase *tc = tcase_create("methods");

	tcase_add_test(tc, manager_opcodes_follow_the_proto);
	tcase_add_test(tc, nas_opcodes_follow_the_proto);
	tcase_add_test(tc, agent_opcodes_follow_the_proto);
	tcase_add_test(tc, local_opcodes_follow_the_proto);
	suite_add_tcase(s, tc);
	return test_run(s);
}

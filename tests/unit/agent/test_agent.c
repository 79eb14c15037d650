/*
 * The agent whole: attach, checkpoints, Restore/Stop/CheckpointNow/Status and
 * migration, against in-memory NAS and manager stand-ins (fakes.c) on real
 * tcp sockets.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "ckpt/v1/agent.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "demo.h"
#include "fakes.h"
#include "log.h"
#include "rpc.h"
#include "sha.h"
#include "util.h"
#include "../testrun.h"

enum { A_RESTORE = 0, A_STOP = 1, A_CHECKPOINT_NOW = 2, A_STATUS = 3 };

#define ANY "tcp://127.0.0.1:0"
/* A wait for a condition gives up here: far beyond what a busy machine takes. */
#define WAIT_MS 20000u

static struct fnas *nas;
static struct fmgr *mgr;

static void
setup(void)
{
	log_init("agent-test", NULL, LOG_LEVEL_INFO);
	ck_assert_int_eq(fnas_start(ANY, &nas), 0);
	ck_assert_int_eq(fmgr_start(ANY, fnas_url(nas), &mgr), 0);
}

static void
teardown(void)
{
	fmgr_stop(mgr);
	fnas_stop(nas);
}

static struct agent *
start_agent(const char *node, const char *demo, uint64_t migrate_after_ms)
{
	struct agent_label label = { "zone", "test" };
	struct agent_config cfg = {
		.ac_node = node,
		.ac_manager = fmgr_url(mgr),
		.ac_listen = ANY,
		.ac_labels = &label,
		.ac_nlabels = 1,
		.ac_interval_ms = 50,
		.ac_migrate_after_ms = migrate_after_ms,
		.ac_workers = 4,
		.ac_fresh = true, /* the fake manager does not resume declared components */
	};
	struct agent *a = NULL;
	char err[256];

	ck_assert_int_eq(agent_new(&cfg, &a, err, sizeof(err)), 0);
	if (demo != NULL)
		ck_assert_int_eq(agent_add_demo(a, demo, 4096, err, sizeof(err)), 0);
	ck_assert_msg(agent_start(a, err, sizeof(err)) == 0, "start: %s", err);
	return a;
}

static int
call(struct agent *a, unsigned method, const ProtobufCMessage *req, ProtobufCMessage **ret_rep,
    struct rpc_error *err)
{
	struct rpc_client *c = NULL;
	int rv;

	rv = rpc_client_open(agent_url(a), &ckpt__v1__agent__descriptor, 0, 0, &c, err);
	if (rv == 0)
		rv = rpc_client_call(c, method, req, 10000, ret_rep, err);
	rpc_client_close(c);
	return rv;
}

static bool
wait_count(const char *component, unsigned at_least, unsigned timeout_ms)
{
	uint64_t until = util_now_mono_ms() + timeout_ms;
	while (fnas_count(nas, component, NULL) < at_least) {
		if (util_now_mono_ms() > until)
			return false;
		util_sleep_ms(10);
	}
	return true;
}

static Ckpt__V1__StatusReply *
status(struct agent *a)
{
	Ckpt__V1__StatusRequest req = CKPT__V1__STATUS_REQUEST__INIT;
	Ckpt__V1__StatusReply *rep = NULL;
	struct rpc_error err;

	ck_assert_msg(call(a, A_STATUS, &req.base, (ProtobufCMessage **)&rep, &err) == 0, "%s",
	    err.re_msg);
	return rep;
}

static const Ckpt__V1__ComponentStatus *
find_component(const Ckpt__V1__StatusReply *s, const char *name)
{
	for (size_t i = 0; i < s->n_components; i++)
		if (strcmp(s->components[i]->name, name) == 0)
			return s->components[i];
	return NULL;
}

START_TEST(agent_attaches_with_bound_address_and_stores_checkpoints)
{
	struct agent *a = start_agent("n1", "c1", 0);
	struct fmgr_stats st;
	struct fnas_rec latest;

	ck_assert(agent_wait_attached(a, WAIT_MS));
	fmgr_stats(mgr, &st);
	ck_assert_uint_ge(st.fs_attaches, 1);
	ck_assert_str_eq(st.fs_last_address, agent_url(a));
	ck_assert_ptr_null(strstr(st.fs_last_address, ":0")); /* the port actually bound */
	ck_assert_uint_eq(st.fs_last_components, 1);
	ck_assert(wait_count("c1", 3, WAIT_MS));
	ck_assert_uint_ge(fnas_count(nas, "c1", &latest), 3);
	ck_assert_str_eq(latest.fr_node, "n1");
	ck_assert_uint_ge(latest.fr_seq, 3);
	/* Each store is notified to the manager after the NAS acknowledged it. */
	for (uint64_t until = util_now_mono_ms() + WAIT_MS; util_now_mono_ms() < until;) {
		fmgr_stats(mgr, &st);
		if (st.fs_notifies >= 3 && st.fs_heartbeats >= 1)
			break;
		util_sleep_ms(10);
	}
	ck_assert_uint_ge(st.fs_notifies, 3);
	ck_assert_uint_ge(st.fs_heartbeats, 1);
	agent_free(a);
}
END_TEST

/* --advertise: the manager is told that address, not the one listened on. */
START_TEST(agent_announces_its_advertised_address)
{
	struct agent_config cfg = { .ac_node = "n1", .ac_manager = fmgr_url(mgr), .ac_listen = ANY,
		.ac_advertise = "tcp://agent-1.ckpt.svc:7431", .ac_interval_ms = 50 };
	struct fmgr_stats st;
	struct agent *a = NULL;
	char err[256];

	ck_assert_int_eq(agent_new(&cfg, &a, err, sizeof(err)), 0);
	ck_assert_msg(agent_start(a, err, sizeof(err)) == 0, "start: %s", err);
	ck_assert(agent_wait_attached(a, WAIT_MS));
	fmgr_stats(mgr, &st);
	ck_assert_str_eq(st.fs_last_address, "tcp://agent-1.ckpt.svc:7431");
	agent_free(a);
}
END_TEST

START_TEST(agent_continues_seq_and_epoch_from_nas)
{
	struct fnas_rec old = { .fr_node = "elsewhere", .fr_component = "c1", .fr_seq = 41,
		.fr_epoch = 2 };
	struct fnas_rec latest;
	struct agent *a;

	fnas_put_record(nas, &old);
	a = start_agent("n1", "c1", 0);
	ck_assert(wait_count("c1", 2, WAIT_MS));
	agent_free(a);
	fnas_count(nas, "c1", &latest);
	ck_assert_uint_gt(latest.fr_seq, 41);
	ck_assert_str_eq(latest.fr_node, "n1");
	ck_assert_uint_eq(latest.fr_epoch, 2);
}
END_TEST

START_TEST(agent_stop_then_restore_moves_a_component_with_equal_digests)
{
	struct agent *a = start_agent("n1", "c1", 0), *b = start_agent("n2", NULL, 0);
	Ckpt__V1__StopRequest sreq = CKPT__V1__STOP_REQUEST__INIT;
	Ckpt__V1__StopReply *srep = NULL;
	Ckpt__V1__RestoreRequest rreq = CKPT__V1__RESTORE_REQUEST__INIT;
	Ckpt__V1__RestoreReply *rrep = NULL;
	Ckpt__V1__StatusReply *st;
	const Ckpt__V1__ComponentStatus *cs;
	struct fnas_rec latest;
	struct rpc_error err;
	uint64_t final_seq;

	ck_assert(agent_wait_attached(a, WAIT_MS) && agent_wait_attached(b, WAIT_MS));
	ck_assert(wait_count("c1", 2, WAIT_MS));
	sreq.component = "c1";
	sreq.checkpoint = true;
	ck_assert_msg(call(a, A_STOP, &sreq.base, (ProtobufCMessage **)&srep, &err) == 0, "%s",
	    err.re_msg);
	ck_assert_ptr_nonnull(srep->checkpoint);
	ck_assert_str_eq(srep->checkpoint->node, "n1");
	ck_assert_uint_eq(srep->checkpoint->digest.len, SHA_LEN);
	final_seq = srep->checkpoint->seq;
	fnas_count(nas, "c1", &latest);
	ck_assert_uint_eq(latest.fr_seq, final_seq); /* the final one is the latest */
	st = status(a);
	ck_assert_ptr_null(find_component(st, "c1"));
	rpc_reply_free(&st->base);

	rreq.component = "c1";
	rreq.node = "n1";
	rreq.seq = final_seq;
	rreq.sha256 = srep->checkpoint->digest;
	rreq.epoch = 5;
	ck_assert_msg(call(b, A_RESTORE, &rreq.base, (ProtobufCMessage **)&rrep, &err) == 0, "%s",
	    err.re_msg);
	cs = rrep->status;
	ck_assert_str_eq(cs->name, "c1");
	ck_assert_str_eq(cs->state, "running");
	ck_assert_str_eq(cs->kind, "demo");
	ck_assert_uint_eq(cs->epoch, 5);
	ck_assert_ptr_nonnull(cs->restored_from);
	ck_assert_str_eq(cs->restored_from->node, "n1");
	ck_assert_uint_eq(cs->restored_from->seq, final_seq);
	ck_assert_mem_eq(cs->restored_from->sha256.data, srep->checkpoint->digest.data, SHA_LEN);
	ck_assert_uint_eq(cs->state_sha256.len, SHA_LEN);
	ck_assert_mem_eq(cs->state_sha256.data, srep->checkpoint->digest.data, SHA_LEN);

	/* The restored component goes on: higher seqs, from n2, at the new epoch. */
	ck_assert(wait_count("c1", (unsigned)fnas_count(nas, "c1", NULL) + 2, WAIT_MS));
	fnas_count(nas, "c1", &latest);
	ck_assert_str_eq(latest.fr_node, "n2");
	ck_assert_uint_gt(latest.fr_seq, final_seq);
	ck_assert_uint_eq(latest.fr_epoch, 5);
	st = status(b);
	cs = find_component(st, "c1");
	ck_assert_ptr_nonnull(cs);
	ck_assert_ptr_nonnull(cs->restored_from);
	ck_assert_uint_gt(cs->last_seq, final_seq);
	rpc_reply_free(&st->base);
	rpc_reply_free(&rrep->base);
	rpc_reply_free(&srep->base);
	agent_free(a);
	agent_free(b);
}
END_TEST

static void
restore_fails(struct agent *a, const char *component, const char *node, uint64_t seq,
    const uint8_t *sha, size_t sha_len, int want_code)
{
	Ckpt__V1__RestoreRequest req = CKPT__V1__RESTORE_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	Ckpt__V1__StatusReply *st;
	struct rpc_error err;
	int rv;

	req.component = (char *)component;
	req.node = (char *)node;
	req.seq = seq;
	req.sha256.data = (uint8_t *)sha;
	req.sha256.len = sha_len;
	rv = call(a, A_RESTORE, &req.base, &rep, &err);
	ck_assert_msg(rv != 0 && err.re_code == want_code, "restore of '%s': rv %d code %d (%s)",
	    component, rv, err.re_code, err.re_msg);
	ck_assert_ptr_null(rep);
	/* Nothing is left behind by a failed restore. */
	st = status(a);
	for (size_t i = 0; i < st->n_components; i++)
		ck_assert_str_eq(st->components[i]->state, "running");
	rpc_reply_free(&st->base);
}

START_TEST(agent_restore_refuses_bad_requests_and_bad_data)
{
	struct agent *a = start_agent("n1", "c1", 0), *b = start_agent("n2", NULL, 0);
	uint8_t wrong[SHA_LEN];
	struct fnas_rec latest;

	memset(wrong, 0x5a, sizeof(wrong));
	ck_assert(agent_wait_attached(a, WAIT_MS) && agent_wait_attached(b, WAIT_MS));
	ck_assert(wait_count("c1", 1, WAIT_MS));
	fnas_count(nas, "c1", &latest);
	restore_fails(b, "bad/name", "", 0, NULL, 0, CKPT__V1__CODE__INVALID_ARGUMENT);
	restore_fails(b, "c1", "bad node", 0, NULL, 0, CKPT__V1__CODE__INVALID_ARGUMENT);
	restore_fails(b, "c1", "", 0, wrong, 5, CKPT__V1__CODE__INVALID_ARGUMENT);
	restore_fails(a, "c1", "", 0, NULL, 0, CKPT__V1__CODE__ALREADY_EXISTS);
	restore_fails(b, "nothing", "", 0, NULL, 0, CKPT__V1__CODE__NOT_FOUND);
	restore_fails(b, "c1", "n1", latest.fr_seq, wrong, SHA_LEN, CKPT__V1__CODE__DATA_LOSS);
	fnas_set_corrupt(nas, true);
	restore_fails(b, "c1", "n1", latest.fr_seq, NULL, 0, CKPT__V1__CODE__DATA_LOSS);
	fnas_set_corrupt(nas, false);
	agent_free(a);
	agent_free(b);
}
END_TEST

/* Restore of c1 with kind; its error code and message. */
static int
restore_kind(struct agent *a, const char *kind, struct rpc_error *err)
{
	Ckpt__V1__RestoreRequest req = CKPT__V1__RESTORE_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	int rv;

	req.component = "c1";
	req.kind = (char *)kind;
	rv = call(a, A_RESTORE, &req.base, &rep, err);
	if (rv == 0) {
		rpc_reply_free(rep);
		return 0;
	}
	return err->re_code;
}

START_TEST(agent_restore_refuses_a_checkpoint_of_another_kind)
{
	struct agent *a = start_agent("n1", "c1", 0), *b = start_agent("n2", NULL, 0);
	Ckpt__V1__StatusReply *st;
	struct rpc_error err;

	ck_assert(agent_wait_attached(a, 5000) && agent_wait_attached(b, 5000));
	ck_assert(wait_count("c1", 1, 5000));
	agent_free(a);
	/* A kind this node has no driver for: refused before anything is fetched. */
	ck_assert_int_eq(restore_kind(b, "nosuchkind", &err), CKPT__V1__CODE__FAILED_PRECONDITION);
	ck_assert_msg(strstr(err.re_msg, "no driver of kind 'nosuchkind'") != NULL, "%s", err.re_msg);
	/* A record another driver made: refused, into the kind asked for or into its own. */
	fnas_set_kind(nas, "c1", "exec");
	ck_assert_int_eq(restore_kind(b, "demo", &err), CKPT__V1__CODE__FAILED_PRECONDITION);
	ck_assert_msg(strstr(err.re_msg, "made by the exec driver, not demo") != NULL, "%s",
	    err.re_msg);
	/* A driver this node has, but no spec of the component to run it from. */
	ck_assert_int_ne(restore_kind(b, "", &err), 0);
	ck_assert_msg(strstr(err.re_msg, "needs its commands") != NULL, "%s", err.re_msg);
	fnas_set_kind(nas, "c1", "criu");
	ck_assert_int_eq(restore_kind(b, "", &err), CKPT__V1__CODE__FAILED_PRECONDITION);
	ck_assert_msg(strstr(err.re_msg, "which node n2 does not have") != NULL, "%s", err.re_msg);
	st = status(b);
	ck_assert_uint_eq(st->n_components, 0); /* nothing left behind */
	rpc_reply_free(&st->base);
	/* Its own kind, asked for or not: restored. */
	fnas_set_kind(nas, "c1", "demo");
	ck_assert_msg(restore_kind(b, "demo", &err) == 0, "%s", err.re_msg);
	st = status(b);
	ck_assert_uint_eq(st->n_components, 1);
	ck_assert_str_eq(st->components[0]->kind, "demo");
	rpc_reply_free(&st->base);
	agent_free(b);
}
END_TEST

START_TEST(agent_stop_and_checkpoint_now_know_only_their_components)
{
	struct agent *a = start_agent("n1", "c1", 0);
	Ckpt__V1__StopRequest sreq = CKPT__V1__STOP_REQUEST__INIT;
	Ckpt__V1__CheckpointNowRequest creq = CKPT__V1__CHECKPOINT_NOW_REQUEST__INIT;
	Ckpt__V1__CheckpointNowReply *crep = NULL;
	ProtobufCMessage *rep = NULL;
	struct rpc_error err;

	ck_assert(agent_wait_attached(a, WAIT_MS));
	sreq.component = "c2";
	ck_assert_int_eq(call(a, A_STOP, &sreq.base, &rep, &err), -ENOENT);
	creq.component = "c2";
	ck_assert_int_eq(call(a, A_CHECKPOINT_NOW, &creq.base, &rep, &err), -ENOENT);
	creq.component = "../x";
	ck_assert_int_eq(call(a, A_CHECKPOINT_NOW, &creq.base, &rep, &err), -EINVAL);
	creq.component = "";
	ck_assert_msg(call(a, A_CHECKPOINT_NOW, &creq.base, (ProtobufCMessage **)&crep, &err) == 0,
	    "%s", err.re_msg);
	ck_assert_uint_eq(crep->n_checkpoints, 1);
	ck_assert_str_eq(crep->checkpoints[0]->component, "c1");
	ck_assert_str_eq(crep->checkpoints[0]->kind, "demo");
	ck_assert_uint_ge(crep->checkpoints[0]->seq, 1);
	ck_assert_uint_eq(crep->checkpoints[0]->size, 8 + 8 + 4 + 2 + 8 + 4096);
	rpc_reply_free(&crep->base);
	/* Stop without a checkpoint. */
	sreq.component = "c1";
	ck_assert_int_eq(call(a, A_STOP, &sreq.base, &rep, &err), 0);
	rpc_reply_free(rep);
	ck_assert_int_eq(call(a, A_STOP, &sreq.base, &rep, &err), -ENOENT);
	agent_free(a);
}
END_TEST

START_TEST(agent_calls_for_migration_and_serves_the_manager_meanwhile)
{
	struct agent *a = start_agent("n1", "c1", 300), *b = start_agent("n2", NULL, 0);
	uint64_t until = util_now_mono_ms() + WAIT_MS;
	Ckpt__V1__StatusReply *st;
	const Ckpt__V1__ComponentStatus *cs;
	struct fmgr_stats fs;

	fmgr_set_route(mgr, agent_url(a), agent_url(b));
	do {
		util_sleep_ms(20);
		fmgr_stats(mgr, &fs);
	} while (fs.fs_migrations_ok == 0 && util_now_mono_ms() < until);
	ck_assert_uint_eq(fs.fs_migrates, 1);
	ck_assert_uint_eq(fs.fs_migrations_ok, 1);
	st = status(a);
	ck_assert_uint_eq(st->n_components, 0);
	rpc_reply_free(&st->base);
	st = status(b);
	cs = find_component(st, "c1");
	ck_assert_ptr_nonnull(cs);
	ck_assert_ptr_nonnull(cs->restored_from);
	ck_assert_str_eq(cs->restored_from->node, "n1");
	ck_assert_mem_eq(cs->state_sha256.data, cs->restored_from->sha256.data, SHA_LEN);
	rpc_reply_free(&st->base);
	/* Called once: b does not migrate what it received. */
	util_sleep_ms(500);
	fmgr_stats(mgr, &fs);
	ck_assert_uint_eq(fs.fs_migrates, 1);
	agent_free(a);
	agent_free(b);
}
END_TEST

START_TEST(agent_attaches_again_when_the_manager_asks)
{
	struct agent *a = start_agent("n1", "c1", 0);
	uint64_t until = util_now_mono_ms() + WAIT_MS;
	struct fmgr_stats fs;

	ck_assert(agent_wait_attached(a, WAIT_MS));
	fmgr_request_reattach(mgr);
	do {
		util_sleep_ms(20);
		fmgr_stats(mgr, &fs);
	} while (fs.fs_attaches < 2 && util_now_mono_ms() < until);
	ck_assert_uint_eq(fs.fs_attaches, 2);
	agent_free(a);
}
END_TEST

START_TEST(agent_stops_promptly_while_the_manager_is_unreachable)
{
	struct agent_config cfg = {
		.ac_node = "n1",
		.ac_manager = "tcp://127.0.0.1:1",
		.ac_listen = ANY,
		.ac_interval_ms = 50,
		.ac_migrate_after_ms = 100,
	};
	struct agent *a = NULL;
	char err[256];
	uint64_t t0;

	ck_assert_int_eq(agent_new(&cfg, &a, err, sizeof(err)), 0);
	ck_assert_int_eq(agent_add_demo(a, "c1", 16, err, sizeof(err)), 0);
	ck_assert_int_eq(agent_start(a, err, sizeof(err)), 0);
	ck_assert(!agent_wait_attached(a, 700));
	t0 = util_now_mono_ms();
	agent_free(a);
	ck_assert_uint_lt(util_now_mono_ms() - t0, 1000);
}
END_TEST

START_TEST(agent_answers_garbage_and_goes_on_serving)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0x01, 0x02 };
	struct agent *a = start_agent("n1", "c1", 0);
	Ckpt__V1__StatusReply *st;
	Ckpt__V1__Reply *r;
	struct rpc_client *c = NULL;
	struct rpc_error err;
	void *raw = NULL;
	size_t len = 0;

	ck_assert_int_eq(rpc_client_open(agent_url(a), &ckpt__v1__agent__descriptor, 0, 0, &c, &err),
	    0);
	ck_assert_int_eq(rpc_client_call_raw(c, garbage, sizeof(garbage), 5000, &raw, &len, &err), 0);
	r = ckpt__v1__reply__unpack(NULL, len, raw);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->code, CKPT__V1__CODE__INVALID_ARGUMENT);
	ckpt__v1__reply__free_unpacked(r, NULL);
	free(raw);
	rpc_client_close(c);
	st = status(a);
	ck_assert_str_eq(st->node, "n1");
	ck_assert_ptr_nonnull(find_component(st, "c1"));
	rpc_reply_free(&st->base);
	agent_free(a);
}
END_TEST

START_TEST(agent_new_rejects_bad_settings)
{
	struct agent_label bad_label = { "no spaces", "x" };
	struct agent_config cfg = { .ac_node = "n1", .ac_manager = "tcp://127.0.0.1:1",
		.ac_listen = ANY, .ac_interval_ms = 50 };
	struct agent *a = NULL;
	char err[256];

	cfg.ac_node = "bad node";
	ck_assert_int_eq(agent_new(&cfg, &a, err, sizeof(err)), -EINVAL);
	cfg.ac_node = "n1";
	cfg.ac_advertise = "agent-1:7431"; /* not a URL */
	ck_assert_int_eq(agent_new(&cfg, &a, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "advertised address"));
	cfg.ac_advertise = "";
	ck_assert_int_eq(agent_new(&cfg, &a, err, sizeof(err)), -EINVAL);
	cfg.ac_advertise = NULL;
	cfg.ac_interval_ms = 5;
	ck_assert_int_eq(agent_new(&cfg, &a, err, sizeof(err)), -EINVAL);
	cfg.ac_interval_ms = 50;
	cfg.ac_labels = &bad_label;
	cfg.ac_nlabels = 1;
	ck_assert_int_eq(agent_new(&cfg, &a, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(a);
	cfg.ac_nlabels = 0;
	cfg.ac_chunk_min = 64 * 1024; /* not below avg */
	cfg.ac_chunk_avg = 16 * 1024;
	cfg.ac_chunk_max = 128 * 1024;
	ck_assert_int_eq(agent_new(&cfg, &a, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "chunk sizes"));
	cfg.ac_chunk_min = 2 * 1024;
	ck_assert_int_eq(agent_new(&cfg, &a, err, sizeof(err)), 0);
	agent_free(a);
	a = NULL;
	cfg.ac_chunk_min = cfg.ac_chunk_avg = cfg.ac_chunk_max = 0;
	ck_assert_int_eq(agent_new(&cfg, &a, err, sizeof(err)), 0);
	ck_assert_int_eq(agent_add_demo(a, "c1", 16, err, sizeof(err)), 0);
	ck_assert_int_eq(agent_add_demo(a, "c1", 16, err, sizeof(err)), -EEXIST);
	ck_assert_int_eq(agent_add_demo(a, "c/2", 16, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(agent_add_demo(a, "c3", DEMO_BYTES_MAX + 1, err, sizeof(err)), -EINVAL);
	agent_free(a);
}
END_TEST

START_TEST(agent_stops_a_component_whose_commit_is_refused_for_a_stale_epoch)
{
	struct agent *a = start_agent("n1", "c1", 0);
	struct fnas_rec newer = { .fr_node = "n2", .fr_component = "c1", .fr_seq = 1000,
		.fr_epoch = 7 };
	Ckpt__V1__StatusReply *st;
	unsigned before;
	bool gone = false;

	ck_assert(agent_wait_attached(a, WAIT_MS));
	ck_assert(wait_count("c1", 2, WAIT_MS));
	/* Another node took c1 over with epoch 7: the NAS refuses n1's epoch 0. */
	fnas_put_record(nas, &newer);
	for (uint64_t until = util_now_mono_ms() + WAIT_MS; !gone && util_now_mono_ms() < until;) {
		st = status(a);
		gone = find_component(st, "c1") == NULL;
		rpc_reply_free(&st->base);
		if (!gone)
			util_sleep_ms(10);
	}
	ck_assert_msg(gone, "c1 still runs after a stale-epoch refusal");
	before = fnas_count(nas, "c1", NULL);
	util_sleep_ms(200);
	ck_assert_uint_eq(fnas_count(nas, "c1", NULL), before); /* no more commits */
	st = status(a);
	ck_assert_ptr_nonnull(st->queue);
	ck_assert_uint_eq(st->queue->checkpoints, 0);
	ck_assert_uint_eq(st->queue->max_bytes, 64ull << 20);
	rpc_reply_free(&st->base);
	agent_free(a);
}
END_TEST


/* The agent's queue as Status shows it. */
static void
queue_status(struct agent *a, Ckpt__V1__QueueStatus *ret_q)
{
	Ckpt__V1__StatusReply *st = status(a);

	ck_assert_ptr_nonnull(st->queue);
	*ret_q = *st->queue;
	rpc_reply_free(&st->base);
}

/*
 * A queued checkpoint whose store is refused for missing chunks, nasc's own
 * redo refused too (chunks deleted twice, or a NAS restart and a delete), is
 * not dropped: it stays at the head of the queue and the next round stores
 * it, so every seq the agent gave a checkpoint is on the NAS, in order.
 */
START_TEST(agent_keeps_a_queued_checkpoint_refused_for_missing_chunks)
{
	struct agent *a = start_agent("n1", "c1", 0);
	Ckpt__V1__QueueStatus q;
	struct fnas_rec latest;
	uint64_t until;
	unsigned count, queued;

	ck_assert(agent_wait_attached(a, WAIT_MS));
	ck_assert(wait_count("c1", 2, WAIT_MS));
	/* The NAS away: checkpoints wait in the queue, each with its seq. */
	fnas_set_down(nas, true);
	until = util_now_mono_ms() + WAIT_MS;
	do {
		util_sleep_ms(10);
		queue_status(a, &q);
	} while (q.checkpoints < 3 && util_now_mono_ms() < until);
	ck_assert_uint_ge(q.checkpoints, 3);
	queued = q.checkpoints;
	/* Back, but the first Store and nasc's redo of it are refused for missing chunks. */
	fnas_refuse_missing(nas, 2);
	fnas_set_down(nas, false);
	until = util_now_mono_ms() + WAIT_MS;
	do {
		util_sleep_ms(10);
		queue_status(a, &q);
	} while ((fnas_refused(nas) < 2 || q.checkpoints != 0 || q.stored < queued) &&
	    util_now_mono_ms() < until);
	ck_assert_uint_eq(fnas_refused(nas), 2);
	ck_assert_uint_eq(q.checkpoints, 0);
	/* Seqs from 1 with none missing: the refused one was stored after all, in its place. */
	count = fnas_count(nas, "c1", &latest);
	ck_assert_uint_eq(count, latest.fr_seq);
	ck_assert_uint_ge(q.stored, queued);
	ck_assert_uint_eq(q.dropped, 0);
	agent_free(a);
}
END_TEST


/* Polls agent_linked() until it is want; false when WAIT_MS pass first. */
static bool
wait_linked(struct agent *a, bool want)
{
	uint64_t until = util_now_mono_ms() + WAIT_MS;

	while (agent_linked(a) != want) {
		if (util_now_mono_ms() > until)
			return false;
		util_sleep_ms(1);
	}
	return true;
}

/*
 * /readyz's manager link (agent_linked(): what /readyz and
 * ckpt_agent_attached read) holds through heartbeats refused now and then
 * (two in a row, the lease 500 ms, one heartbeat every 50 ms), goes down when
 * the manager stops answering for the lease, and up again when it answers.
 */
START_TEST(agent_link_stays_up_through_lost_heartbeats_not_a_lost_manager)
{
	struct agent *a = start_agent("n1", NULL, 0);
	struct fmgr_stats st;
	unsigned answered;
	bool flapped = false;
	uint64_t until;

	ck_assert(agent_wait_attached(a, WAIT_MS));
	ck_assert(wait_linked(a, true));
	fmgr_refuse_heartbeats(mgr, 2);
	until = util_now_mono_ms() + WAIT_MS;
	while (fmgr_refused_heartbeats(mgr) < 2 && util_now_mono_ms() < until) {
		flapped |= !agent_linked(a);
		util_sleep_ms(1);
	}
	ck_assert_uint_eq(fmgr_refused_heartbeats(mgr), 2);
	/* Until two heartbeats after them are answered. */
	fmgr_stats(mgr, &st);
	answered = st.fs_heartbeats;
	do {
		flapped |= !agent_linked(a);
		util_sleep_ms(1);
		fmgr_stats(mgr, &st);
	} while (st.fs_heartbeats < answered + 2 && util_now_mono_ms() < until);
	ck_assert_uint_ge(st.fs_heartbeats, answered + 2);
	ck_assert_msg(!flapped, "the link went down for two refused heartbeats");
	/* The manager refuses everything, attaches too: down once the lease passed. */
	fmgr_set_down(mgr, true);
	ck_assert_msg(wait_linked(a, false), "the link stays up with the manager gone");
	ck_assert_uint_eq(fmgr_refused_heartbeats(mgr), 2);
	fmgr_set_down(mgr, false);
	ck_assert_msg(wait_linked(a, true), "the link stays down with the manager back");
	agent_free(a);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("agent");
	TCase *tc = tcase_create("agent");

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, agent_attaches_with_bound_address_and_stores_checkpoints);
	tcase_add_test(tc, agent_announces_its_advertised_address);
	tcase_add_test(tc, agent_continues_seq_and_epoch_from_nas);
	tcase_add_test(tc, agent_stop_then_restore_moves_a_component_with_equal_digests);
	tcase_add_test(tc, agent_restore_refuses_bad_requests_and_bad_data);
	tcase_add_test(tc, agent_restore_refuses_a_checkpoint_of_another_kind);
	tcase_add_test(tc, agent_stop_and_checkpoint_now_know_only_their_components);
	tcase_add_test(tc, agent_calls_for_migration_and_serves_the_manager_meanwhile);
	tcase_add_test(tc, agent_attaches_again_when_the_manager_asks);
	tcase_add_test(tc, agent_stops_promptly_while_the_manager_is_unreachable);
	tcase_add_test(tc, agent_answers_garbage_and_goes_on_serving);
	tcase_add_test(tc, agent_new_rejects_bad_settings);
	tcase_add_test(tc, agent_stops_a_component_whose_commit_is_refused_for_a_stale_epoch);
	tcase_add_test(tc, agent_keeps_a_queued_checkpoint_refused_for_missing_chunks);
	tcase_add_test(tc, agent_link_stays_up_through_lost_heartbeats_not_a_lost_manager);
	suite_add_tcase(s, tc);
	return test_run(s);
}

/* Registry: nodes, liveness with an injected clock, catalogue, ownership. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/agent.pb-c.h"
#include "registry.h"
#include "../testrun.h"

static uint64_t fake_now;

static uint64_t
fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static struct reg *
new_reg(uint64_t down_after_ms)
{
	struct reg_config cfg = { .rc_down_after_ms = down_after_ms, .rc_clock = fake_clock };
	struct reg *r = NULL;

	fake_now = 1000000;
	ck_assert_int_eq(reg_new(&cfg, &r), 0);
	return r;
}

static struct reg_comp
comp(const char *name, uint64_t epoch)
{
	struct reg_comp c;

	memset(&c, 0, sizeof(c));
	snprintf(c.rc_name, sizeof(c.rc_name), "%s", name);
	snprintf(c.rc_state, sizeof(c.rc_state), "running");
	snprintf(c.rc_kind, sizeof(c.rc_kind), "demo");
	c.rc_epoch = epoch;
	c.rc_state_bytes = 4096;
	return c;
}

static void
attach(struct reg *r, const char *node, const char *addr, const struct reg_comp *comps, size_t n,
    uint64_t mem_free)
{
	struct reg_attach a = {
		.ra_node = node,
		.ra_address = addr,
		.ra_cap = { .rcap_mem_free = mem_free, .rcap_mem_total = 2 * mem_free,
		    .rcap_cpu_count = 2 },
		.ra_comps = comps,
		.ra_ncomps = n,
		.ra_unix_ms = 42,
	};
	struct rpc_client *to_close = (struct rpc_client *)1;

	ck_assert_int_eq(reg_attach(r, &a, NULL, &to_close), 0);
	ck_assert_ptr_null(to_close);
}

static struct reg_ckpt
ckpt(const char *node, const char *component, uint64_t seq)
{
	struct reg_ckpt c;

	memset(&c, 0, sizeof(c));
	snprintf(c.rk_node, sizeof(c.rk_node), "%s", node);
	snprintf(c.rk_component, sizeof(c.rk_component), "%s", component);
	snprintf(c.rk_kind, sizeof(c.rk_kind), "demo");
	c.rk_seq = seq;
	c.rk_size = 100 * seq;
	c.rk_sha256[0] = (uint8_t)seq;
	return c;
}

static int
attach_as(struct reg *r, const char *node, const char *addr, uint64_t instance,
    uint64_t replaces)
{
	struct reg_attach a = { .ra_node = node, .ra_address = addr, .ra_unix_ms = 42,
		.ra_instance = instance, .ra_replaces = replaces };
	struct rpc_client *to_close = NULL;

	return reg_attach(r, &a, NULL, &to_close);
}

/* Finds node id in a snapshot. */
static const struct reg_node_view *
find_node(const struct reg_node_view *v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].rn_id, id) == 0)
			return &v[i];
	}
	return NULL;
}

static bool
node_has(const struct reg_node_view *v, const char *component)
{
	for (size_t i = 0; i < v->rn_ncomps; i++) {
		if (strcmp(v->rn_comps[i].rc_name, component) == 0)
			return true;
	}
	return false;
}

START_TEST(attach_registers_node_up_sorted_by_id)
{
	struct reg *r = new_reg(1000);
	struct reg_comp c = comp("demo_2", 0);
	struct reg_node_view *v = NULL;
	size_t n = 0;

	attach(r, "dummy_2", "tcp://127.0.0.1:7002", &c, 1, 1 << 20);
	attach(r, "dummy_1", "tcp://127.0.0.1:7001", NULL, 0, 1 << 20);
	ck_assert_int_eq(reg_nodes(r, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].rn_id, "dummy_1");
	ck_assert_str_eq(v[1].rn_id, "dummy_2");
	ck_assert(v[1].rn_up);
	ck_assert_str_eq(v[1].rn_address, "tcp://127.0.0.1:7002");
	ck_assert_uint_eq(v[1].rn_ncomps, 1);
	ck_assert_str_eq(v[1].rn_comps[0].rc_name, "demo_2");
	ck_assert_uint_eq(v[1].rn_attached_unix_ms, 42);
	reg_nodes_free(v, n);
	reg_free(r);
}
END_TEST

START_TEST(reattach_replaces_address_capacity_and_components)
{
	struct reg *r = new_reg(1000);
	struct reg_comp c1[] = { comp("a", 0), comp("b", 0) };
	struct reg_comp c2[] = { comp("c", 0) };
	struct reg_node_view *v = NULL;
	size_t n = 0;

	attach(r, "n1", "tcp://127.0.0.1:1", c1, 2, 100);
	attach(r, "n1", "tcp://127.0.0.1:2", c2, 1, 200);
	ck_assert_int_eq(reg_nodes(r, &v, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].rn_address, "tcp://127.0.0.1:2");
	ck_assert_uint_eq(v[0].rn_cap.rcap_mem_free, 200);
	ck_assert_uint_eq(v[0].rn_ncomps, 1);
	ck_assert(node_has(&v[0], "c"));
	reg_nodes_free(v, n);
	reg_free(r);
}
END_TEST

START_TEST(reattach_keeps_the_client_of_an_unchanged_address)
{
	struct reg *r = new_reg(1000);
	struct rpc_client *c1, *c2, *c3, *to_close;
	struct reg_attach a = { .ra_node = "n1", .ra_address = "tcp://127.0.0.1:1" };
	struct reg_peer *p = NULL;
	struct rpc_error err;

	ck_assert_int_eq(rpc_client_open("tcp://127.0.0.1:1", &ckpt__v1__agent__descriptor, 0, 0,
			     &c1, &err), 0);
	ck_assert_int_eq(rpc_client_open("tcp://127.0.0.1:1", &ckpt__v1__agent__descriptor, 0, 0,
			     &c2, &err), 0);
	ck_assert_int_eq(rpc_client_open("tcp://127.0.0.1:2", &ckpt__v1__agent__descriptor, 0, 0,
			     &c3, &err), 0);
	ck_assert_int_eq(reg_attach(r, &a, c1, &to_close), 0);
	ck_assert_ptr_null(to_close);
	/* Same address: the new client is handed back, the old one stays. */
	ck_assert_int_eq(reg_attach(r, &a, c2, &to_close), 0);
	ck_assert_ptr_eq(to_close, c2);
	rpc_client_close(to_close);
	ck_assert_int_eq(reg_peer_get(r, "n1", &p), 0);
	ck_assert_ptr_eq(reg_peer_client(p), c1);
	/* New address while a reference is held: the holder closes the old one. */
	a.ra_address = "tcp://127.0.0.1:2";
	ck_assert_int_eq(reg_attach(r, &a, c3, &to_close), 0);
	ck_assert_ptr_null(to_close);
	reg_peer_put(p);
	ck_assert_int_eq(reg_peer_get(r, "n1", &p), 0);
	ck_assert_ptr_eq(reg_peer_client(p), c3);
	reg_peer_put(p);
	/*
	 * Same address, another process (started again): its new client takes
	 * the place of the old one, which may still wait out a redial back-off.
	 */
	ck_assert_int_eq(rpc_client_open("tcp://127.0.0.1:2", &ckpt__v1__agent__descriptor, 0, 0,
			     &c2, &err), 0);
	a.ra_instance = 7;
	ck_assert_int_eq(reg_attach(r, &a, c2, &to_close), 0);
	ck_assert_ptr_eq(to_close, c3);
	rpc_client_close(to_close);
	ck_assert_int_eq(reg_peer_get(r, "n1", &p), 0);
	ck_assert_ptr_eq(reg_peer_client(p), c2);
	reg_peer_put(p);
	ck_assert_int_eq(reg_peer_get(r, "nope", &p), -ENOENT);
	reg_free(r);
}
END_TEST

/* A plain TCP listener on a free loopback port: it counts connections, speaks nothing. */
static int
raw_listen(char *url, size_t len)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
	snprintf(url, len, "tcp://127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
	return fd;
}

/* Connections accepted on fd within wait_ms (each kept open in conns[]), at most max. */
static size_t
raw_accept(int fd, int wait_ms, int *conns, size_t max)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t n = 0;

	while (n < max && poll(&pfd, 1, wait_ms) == 1) {
		conns[n] = accept(fd, NULL, NULL);
		ck_assert_int_ge(conns[n], 0);
		n++;
		wait_ms = 0;
	}
	return n;
}

/*
 * A client opened with RPC_CLIENT_DIAL_LATER dials once the registry keeps
 * it, and the one the registry hands back (the node has a client for that
 * address already) never dialed: closed at once, it made no connection for
 * nng 1.5.2 to leak (rpc.h).
 */
START_TEST(attach_dials_the_client_it_keeps_and_never_the_one_it_hands_back)
{
	struct reg *r = new_reg(1000);
	struct rpc_client *c1, *c2, *to_close;
	struct rpc_error err;
	char url[64];
	int lfd = raw_listen(url, sizeof(url)), conns[4];
	struct reg_attach a = { .ra_node = "n1", .ra_address = url };
	size_t n;

	ck_assert_int_eq(rpc_client_open(url, &ckpt__v1__agent__descriptor, RPC_CLIENT_DIAL_LATER,
			     0, &c1, &err), 0);
	ck_assert_uint_eq(raw_accept(lfd, 300, conns, 4), 0); /* not dialed yet */
	ck_assert_int_eq(reg_attach(r, &a, c1, &to_close), 0);
	ck_assert_ptr_null(to_close);
	n = raw_accept(lfd, 2500, conns, 4); /* within the test's 4 s */
	ck_assert_uint_eq(n, 1); /* kept: dialed */
	ck_assert_int_eq(rpc_client_open(url, &ckpt__v1__agent__descriptor, RPC_CLIENT_DIAL_LATER,
			     0, &c2, &err), 0);
	ck_assert_int_eq(reg_attach(r, &a, c2, &to_close), 0);
	ck_assert_ptr_eq(to_close, c2);
	rpc_client_close(to_close);
	ck_assert_uint_eq(raw_accept(lfd, 300, conns + 1, 3), 0); /* handed back: never dialed */
	reg_free(r);
	close(conns[0]);
	close(lfd);
}
END_TEST

START_TEST(heartbeat_from_unknown_node_asks_for_reattach)
{
	struct reg *r = new_reg(1000);
	struct reg_capacity cap = { 0 };

	ck_assert_int_eq(reg_heartbeat(r, "ghost", &cap, NULL, 0), -ENOENT);
	reg_free(r);
}
END_TEST

START_TEST(silent_node_is_marked_down_once_and_must_reattach)
{
	struct reg *r = new_reg(1000);
	struct reg_capacity cap = { .rcap_mem_free = 7 };
	struct reg_down down[4];
	struct reg_node_view *v = NULL;
	size_t n = 0;

	attach(r, "n1", "tcp://127.0.0.1:1", NULL, 0, 1);
	attach(r, "n2", "tcp://127.0.0.1:2", NULL, 0, 1);
	fake_now += 600;
	ck_assert_int_eq(reg_heartbeat(r, "n2", &cap, NULL, 0), 0);
	fake_now += 400; /* n1 silent 1000 ms: not more than down-after yet */
	ck_assert_uint_eq(reg_sweep(r, down, 4), 0);
	fake_now += 1;
	ck_assert_uint_eq(reg_sweep(r, down, 4), 1);
	ck_assert_str_eq(down[0].rd_node, "n1");
	ck_assert_uint_eq(down[0].rd_silent_ms, 1001);
	ck_assert_uint_eq(reg_sweep(r, down, 4), 0); /* reported once */
	ck_assert_int_eq(reg_heartbeat(r, "n1", &cap, NULL, 0), -ESTALE);
	ck_assert_int_eq(reg_nodes(r, &v, &n), 0);
	ck_assert(!find_node(v, n, "n1")->rn_up);
	ck_assert(find_node(v, n, "n2")->rn_up);
	ck_assert_uint_eq(find_node(v, n, "n1")->rn_last_seen_ms_ago, 1001);
	reg_nodes_free(v, n);
	attach(r, "n1", "tcp://127.0.0.1:1", NULL, 0, 1);
	ck_assert_int_eq(reg_heartbeat(r, "n1", &cap, NULL, 0), 0);
	reg_free(r);
}
END_TEST

START_TEST(catalogue_keeps_the_highest_seq_per_component)
{
	struct reg *r = new_reg(1000);
	struct reg_ckpt c, *list = NULL;
	bool latest = false;
	size_t n = 0;

	c = ckpt("n1", "a", 5);
	ck_assert_int_eq(reg_checkpoint(r, &c, &latest), 0);
	ck_assert(latest);
	c = ckpt("n1", "a", 3);
	ck_assert_int_eq(reg_checkpoint(r, &c, &latest), 0);
	ck_assert(!latest);
	c = ckpt("n2", "b", 1);
	ck_assert_int_eq(reg_checkpoint(r, &c, NULL), 0);
	ck_assert_int_eq(reg_checkpoint_latest(r, "a", &c), 0);
	ck_assert_uint_eq(c.rk_seq, 5);
	/* seq counts up across nodes: a newer one from another node replaces it. */
	c = ckpt("n2", "a", 7);
	ck_assert_int_eq(reg_checkpoint(r, &c, &latest), 0);
	ck_assert(latest);
	ck_assert_int_eq(reg_checkpoints(r, NULL, NULL, &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(list[0].rk_component, "a");
	ck_assert_uint_eq(list[0].rk_seq, 7);
	ck_assert_str_eq(list[1].rk_component, "b");
	free(list);
	ck_assert_int_eq(reg_checkpoints(r, "n2", "b", &list, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(list);
	ck_assert_int_eq(reg_checkpoints(r, "n1", NULL, &list, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(list);
	ck_assert_int_eq(reg_checkpoint_latest(r, "zzz", &c), -ENOENT);
	reg_free(r);
}
END_TEST

START_TEST(a_deleted_catalogue_entry_gives_way_to_the_newest_left)
{
	struct reg *r = new_reg(1000);
	struct reg_ckpt gone = ckpt("n1", "a", 9), left = ckpt("n1", "a", 7), c;

	ck_assert_int_eq(reg_checkpoint(r, &gone, NULL), 0);
	ck_assert(reg_checkpoint_gone(r, &gone, &left));
	ck_assert_int_eq(reg_checkpoint_latest(r, "a", &c), 0);
	ck_assert_uint_eq(c.rk_seq, 7);
	/* Not the entry any more (a newer one was recorded meanwhile): kept. */
	c = ckpt("n2", "a", 12);
	ck_assert_int_eq(reg_checkpoint(r, &c, NULL), 0);
	ck_assert(!reg_checkpoint_gone(r, &left, NULL));
	ck_assert_int_eq(reg_checkpoint_latest(r, "a", &c), 0);
	ck_assert_uint_eq(c.rk_seq, 12);
	/* Nothing left on the NAS: the entry goes. */
	ck_assert(reg_checkpoint_gone(r, &c, NULL));
	ck_assert_int_eq(reg_checkpoint_latest(r, "a", &c), -ENOENT);
	reg_free(r);
}
END_TEST

START_TEST(checkpoint_updates_the_node_component_last_seq)
{
	struct reg *r = new_reg(1000);
	struct reg_comp c = comp("a", 0);
	struct reg_ckpt k = ckpt("n1", "a", 9);
	struct reg_node_view *v = NULL;
	size_t n = 0;

	attach(r, "n1", "tcp://127.0.0.1:1", &c, 1, 1);
	ck_assert_int_eq(reg_checkpoint(r, &k, NULL), 0);
	ck_assert_int_eq(reg_nodes(r, &v, &n), 0);
	ck_assert_uint_eq(v[0].rn_comps[0].rc_last_seq, 9);
	reg_nodes_free(v, n);
	reg_free(r);
}
END_TEST

START_TEST(migration_is_exclusive_per_component)
{
	struct reg *r = new_reg(1000);
	struct reg_comp c = comp("a", 3);
	struct reg_ckpt k = ckpt("old", "orphan", 2);
	struct reg_mig_plan p;

	attach(r, "n1", "tcp://127.0.0.1:1", &c, 1, 1);
	ck_assert_int_eq(reg_migrate_begin(r, "nope", &p), -ENOENT);
	ck_assert_int_eq(reg_migrate_begin(r, "a", &p), 0);
	ck_assert_str_eq(p.rm_owner, "n1");
	ck_assert(p.rm_owner_up);
	ck_assert_ptr_null(p.rm_owner_peer); /* attached without a client */
	ck_assert_uint_eq(p.rm_epoch, 3);
	ck_assert_uint_eq(p.rm_need_bytes, 4096);
	ck_assert_int_eq(reg_migrate_begin(r, "a", &p), -EBUSY);
	reg_migrate_end(r, "a", NULL, 0, NULL);
	ck_assert_int_eq(reg_migrate_begin(r, "a", &p), 0);
	reg_migrate_end(r, "a", NULL, 0, NULL);
	/* Known only from the catalogue: no owner, but a checkpoint to restore. */
	ck_assert_int_eq(reg_checkpoint(r, &k, NULL), 0);
	ck_assert_int_eq(reg_migrate_begin(r, "orphan", &p), 0);
	ck_assert_str_eq(p.rm_owner, "");
	ck_assert(p.rm_has_ckpt);
	ck_assert_uint_eq(p.rm_ckpt.rk_seq, 2);
	reg_migrate_end(r, "orphan", NULL, 0, NULL);
	reg_free(r);
}
END_TEST

START_TEST(migration_end_moves_the_component_and_fences_the_old_owner)
{
	struct reg *r = new_reg(1000);
	struct reg_comp a = comp("demo_1", 0), st = comp("demo_1", 0);
	struct reg_capacity cap = { 0 };
	struct reg_node_view *v = NULL;
	struct reg_mig_plan p;
	size_t n = 0;

	attach(r, "dummy_1", "tcp://127.0.0.1:1", &a, 1, 1);
	attach(r, "dummy_2", "tcp://127.0.0.1:2", NULL, 0, 1);
	ck_assert_int_eq(reg_migrate_begin(r, "demo_1", &p), 0);
	/* While it migrates, reports do not move it. */
	ck_assert_int_eq(reg_heartbeat(r, "dummy_1", &cap, &a, 1), 0);
	st.rc_has_restored = true;
	snprintf(st.rc_restored_from.rr_node, sizeof(st.rc_restored_from.rr_node), "dummy_1");
	st.rc_restored_from.rr_seq = 4;
	reg_migrate_end(r, "demo_1", "dummy_2", 1, &st);

	ck_assert_int_eq(reg_nodes(r, &v, &n), 0);
	ck_assert(!node_has(find_node(v, n, "dummy_1"), "demo_1"));
	ck_assert(node_has(find_node(v, n, "dummy_2"), "demo_1"));
	ck_assert_uint_eq(find_node(v, n, "dummy_2")->rn_comps[0].rc_epoch, 1);
	ck_assert(find_node(v, n, "dummy_2")->rn_comps[0].rc_has_restored);
	reg_nodes_free(v, n);

	/* A late heartbeat of the old owner with the old epoch is stale. */
	ck_assert_int_eq(reg_heartbeat(r, "dummy_1", &cap, &a, 1), 0);
	ck_assert_int_eq(reg_nodes(r, &v, &n), 0);
	ck_assert(!node_has(find_node(v, n, "dummy_1"), "demo_1"));
	reg_nodes_free(v, n);
	ck_assert_int_eq(reg_migrate_begin(r, "demo_1", &p), 0);
	ck_assert_str_eq(p.rm_owner, "dummy_2");
	ck_assert_uint_eq(p.rm_epoch, 1);
	reg_migrate_end(r, "demo_1", NULL, 0, NULL);
	reg_free(r);
}
END_TEST

START_TEST(attach_with_a_newer_epoch_takes_ownership)
{
	struct reg *r = new_reg(1000);
	struct reg_comp old = comp("a", 1), newer = comp("a", 2);
	struct reg_mig_plan p;

	attach(r, "n1", "tcp://127.0.0.1:1", &old, 1, 1);
	attach(r, "n2", "tcp://127.0.0.1:2", &newer, 1, 1);
	ck_assert_int_eq(reg_migrate_begin(r, "a", &p), 0);
	ck_assert_str_eq(p.rm_owner, "n2");
	ck_assert_uint_eq(p.rm_epoch, 2);
	reg_migrate_end(r, "a", NULL, 0, NULL);
	reg_free(r);
}
END_TEST

START_TEST(stale_reports_are_revoked_on_heartbeat_and_attach)
{
	struct reg *r = new_reg(1000);
	struct reg_comp old = comp("demo_1", 1), cur = comp("demo_1", 2);
	char revoked[4][KEY_NAME_MAX + 1];
	size_t nrev = 99;
	struct reg_beat b = { .rb_comps = &old, .rb_ncomps = 1, .rb_revoked = revoked,
		.rb_nrevoked = &nrev };
	struct reg_attach a = { .ra_node = "n1", .ra_address = "tcp://127.0.0.1:1",
		.ra_comps = &old, .ra_ncomps = 1, .ra_revoked = revoked, .ra_nrevoked = &nrev };
	struct rpc_client *to_close;

	attach(r, "n1", "tcp://127.0.0.1:1", &old, 1, 1);
	attach(r, "n2", "tcp://127.0.0.1:2", &cur, 1, 1); /* newer epoch: n2 owns it */
	ck_assert_int_eq(reg_beat(r, "n1", &b), 0);
	ck_assert_uint_eq(nrev, 1);
	ck_assert_str_eq(revoked[0], "demo_1");
	/* The same when n1 attaches again. */
	nrev = 99;
	ck_assert_int_eq(reg_attach(r, &a, NULL, &to_close), 0);
	ck_assert_uint_eq(nrev, 1);
	/* The owner itself is never told to stop. */
	b.rb_comps = &cur;
	ck_assert_int_eq(reg_beat(r, "n2", &b), 0);
	ck_assert_uint_eq(nrev, 0);
	reg_free(r);
}
END_TEST

START_TEST(same_epoch_on_a_second_node_is_revoked_while_the_owner_is_up)
{
	struct reg *r = new_reg(1000);
	struct reg_comp c = comp("demo_1", 3);
	char revoked[2][KEY_NAME_MAX + 1];
	size_t nrev = 0;
	struct reg_beat b = { .rb_comps = &c, .rb_ncomps = 1, .rb_revoked = revoked,
		.rb_nrevoked = &nrev };
	struct reg_down down[2];
	struct reg_mig_plan p;

	attach(r, "n1", "tcp://127.0.0.1:1", &c, 1, 1);
	attach(r, "n2", "tcp://127.0.0.1:2", NULL, 0, 1);
	ck_assert_int_eq(reg_beat(r, "n2", &b), 0);
	ck_assert_uint_eq(nrev, 1); /* first come: n1 keeps it */
	/* n1 goes down: n2's report of the same epoch takes it over. */
	fake_now += 2000;
	b.rb_comps = NULL;
	b.rb_ncomps = 0;
	ck_assert_int_eq(reg_beat(r, "n2", &b), 0);
	ck_assert_uint_eq(reg_sweep(r, down, 2), 1);
	b.rb_comps = &c;
	b.rb_ncomps = 1;
	ck_assert_int_eq(reg_beat(r, "n2", &b), 0);
	ck_assert_uint_eq(nrev, 0);
	ck_assert_int_eq(reg_migrate_begin(r, "demo_1", &p), 0);
	ck_assert_str_eq(p.rm_owner, "n2");
	reg_migrate_end(r, "demo_1", NULL, 0, NULL);
	reg_free(r);
}
END_TEST

START_TEST(down_node_components_are_pending_until_placed_or_back)
{
	struct reg *r = new_reg(1000);
	struct reg_comp cs[] = { comp("a", 1), comp("b", 1) };
	struct reg_comp req = comp("c", 1);
	char names[4][KEY_NAME_MAX + 1];
	struct reg_down down[2];
	struct reg_node_view *v = NULL;
	struct reg_mig_plan p;
	size_t n = 0;

	snprintf(req.rc_requires[0].rq_key, sizeof(req.rc_requires[0].rq_key), "gpu");
	snprintf(req.rc_requires[0].rq_value, sizeof(req.rc_requires[0].rq_value), "yes");
	req.rc_nrequires = 1;
	attach(r, "n1", "tcp://127.0.0.1:1", cs, 2, 1);
	attach(r, "n3", "tcp://127.0.0.1:3", &req, 1, 1);
	fake_now += 1001;
	ck_assert_uint_eq(reg_sweep(r, down, 2), 2);
	ck_assert_uint_eq(reg_failover_mark(r, "n1", "node n1 is down"), 2);
	ck_assert_uint_eq(reg_failover_mark(r, "n1", "again"), 0); /* marked once */
	ck_assert_uint_eq(reg_failover_mark(r, "n3", "node n3 is down"), 1);
	ck_assert_uint_eq(reg_failover_due(r, fake_now, names, 4), 3);
	ck_assert(reg_failover_wanted(r, "a"));
	/* The plan carries the labels the component requires. */
	ck_assert_int_eq(reg_migrate_begin(r, "c", &p), 0);
	ck_assert_uint_eq(p.rm_nrequires, 1);
	ck_assert_str_eq(p.rm_requires[0].rq_key, "gpu");
	reg_migrate_end(r, "c", NULL, 0, NULL);
	/* No node can take b: it waits, with the reason, and is not due before its time. */
	reg_failover_wait(r, "b", "no healthy node can take b", 5000);
	ck_assert_uint_eq(reg_failover_due(r, fake_now, names, 4), 2);
	ck_assert_int_eq(reg_nodes(r, &v, &n), 0);
	ck_assert_uint_eq(find_node(v, n, "n1")->rn_npending, 2);
	for (size_t i = 0; i < 2; i++)
		if (strcmp(find_node(v, n, "n1")->rn_pending[i].rp_component, "b") == 0)
			ck_assert_str_eq(find_node(v, n, "n1")->rn_pending[i].rp_reason,
			    "no healthy node can take b");
	reg_nodes_free(v, n);
	reg_failover_kick(r); /* a node attached */
	ck_assert_uint_eq(reg_failover_due(r, fake_now, names, 4), 3);
	/* Placed: no longer pending. */
	reg_failover_clear(r, "c");
	/* n1 comes back with its components before any failover: nothing to do. */
	attach(r, "n1", "tcp://127.0.0.1:1", cs, 2, 1);
	ck_assert(!reg_failover_wanted(r, "a"));
	ck_assert_uint_eq(reg_failover_due(r, fake_now, names, 4), 0);
	reg_free(r);
}
END_TEST

START_TEST(cordon_is_seen_by_placement_and_drain_lists_owned_components)
{
	struct reg *r = new_reg(1000);
	struct reg_comp cs[] = { comp("a", 0), comp("b", 0) };
	struct reg_cand *c = NULL;
	char (*names)[KEY_NAME_MAX + 1] = NULL;
	size_t n = 0;
	bool was = true;

	attach(r, "n1", "tcp://127.0.0.1:1", cs, 2, 1);
	ck_assert_int_eq(reg_cordon(r, "n1", true, &was), 0);
	ck_assert(!was);
	ck_assert_int_eq(reg_cordon(r, "ghost", true, &was), -ENOENT);
	ck_assert_int_eq(reg_candidates(r, NULL, &c, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert(c[0].rca_cordoned);
	reg_candidates_free(c, n);
	ck_assert_int_eq(reg_node_owned(r, "n1", &names, &n), 0);
	ck_assert_uint_eq(n, 2);
	free(names);
	ck_assert_int_eq(reg_cordon(r, "n1", false, &was), 0);
	ck_assert(was);
	ck_assert_int_eq(reg_node_owned(r, "ghost", &names, &n), -ENOENT);
	reg_free(r);
}
END_TEST

START_TEST(a_node_that_attaches_again_without_a_component_gives_it_up)
{
	struct reg *r = new_reg(1000);
	struct reg_comp cs[] = { comp("a", 2), comp("b", 2) };
	char names[4][KEY_NAME_MAX + 1];
	struct reg_node_view *v = NULL;
	size_t n = 0;

	attach(r, "n1", "tcp://127.0.0.1:1", cs, 2, 1);
	/* n1 restarted before it was marked down and runs only a now. */
	attach(r, "n1", "tcp://127.0.0.1:1", cs, 1, 1);
	ck_assert_uint_eq(reg_failover_due(r, fake_now, names, 4), 1);
	ck_assert_str_eq(names[0], "b");
	ck_assert(reg_failover_wanted(r, "b"));
	ck_assert(!reg_failover_wanted(r, "a"));
	ck_assert_int_eq(reg_nodes(r, &v, &n), 0);
	ck_assert_uint_eq(v[0].rn_npending, 1);
	ck_assert_str_eq(v[0].rn_pending[0].rp_reason, "node n1 attached again without it");
	reg_nodes_free(v, n);
	reg_free(r);
}
END_TEST

START_TEST(an_up_node_is_not_taken_by_another_instance)
{
	struct reg *r = new_reg(1000);
	struct reg_holder h;
	struct reg_beat b = { .rb_instance = 7 };

	ck_assert_int_eq(attach_as(r, "n1", "tcp://h:1", 7, 0), 0);
	/* The same instance attaches again: fine. */
	ck_assert_int_eq(attach_as(r, "n1", "tcp://h:1", 7, 0), 0);
	/* Another instance while n1 is up: refused, n1 unchanged. */
	ck_assert_int_eq(attach_as(r, "n1", "tcp://h:2", 8, 0), -EEXIST);
	ck_assert_int_eq(attach_as(r, "n1", "tcp://h:2", 8, 6), -EEXIST);
	ck_assert_int_eq(reg_holder(r, "n1", &h), 0);
	ck_assert(h.rh_up);
	ck_assert_uint_eq(h.rh_instance, 7);
	ck_assert_str_eq(h.rh_address, "tcp://h:1");
	ck_assert_int_eq(reg_beat(r, "n1", &b), 0);
	/* Once the caller proved 7 gone, 8 takes n1; 7's heartbeats are refused. */
	ck_assert_int_eq(attach_as(r, "n1", "tcp://h:2", 8, 7), 0);
	ck_assert_int_eq(reg_holder(r, "n1", &h), 0);
	ck_assert_uint_eq(h.rh_instance, 8);
	ck_assert_str_eq(h.rh_address, "tcp://h:2");
	ck_assert_int_eq(reg_beat(r, "n1", &b), -EXDEV);
	/* A down node is anyone's. */
	fake_now += 2000;
	{
		struct reg_down d[4];
		ck_assert_uint_eq(reg_sweep(r, d, 4), 1);
	}
	ck_assert_int_eq(attach_as(r, "n1", "tcp://h:3", 9, 0), 0);
	ck_assert_int_eq(reg_holder(r, "n2", &h), -ENOENT);
	reg_free(r);
}
END_TEST

START_TEST(a_newer_epoch_fences_the_live_owner_and_wants_a_failover_from_it)
{
	struct reg *r = new_reg(1000);
	struct reg_comp a1 = comp("a1", 2);
	struct reg_ckpt c = ckpt("n1", "a1", 9);
	struct reg_mig_plan plan;
	char owner[KEY_NAME_MAX + 1];
	uint64_t epoch = 0;

	attach(r, "n1", "tcp://h:1", &a1, 1, 1 << 20);
	/* The owner's own epoch fences nobody. */
	c.rk_epoch = 2;
	ck_assert(!reg_fence_mark(r, &c, owner, &epoch));
	ck_assert(!reg_fence_mark(r, &(struct reg_ckpt){ .rk_component = "zz", .rk_epoch = 9 },
	    owner, &epoch));
	c.rk_epoch = 7;
	ck_assert(reg_fence_mark(r, &c, owner, &epoch));
	ck_assert_str_eq(owner, "n1");
	ck_assert_uint_eq(epoch, 2);
	ck_assert_int_eq(reg_checkpoint(r, &c, NULL), 0);
	/* n1 still lists a1 at epoch 2: its heartbeat does not clear the mark. */
	ck_assert_int_eq(reg_heartbeat(r, "n1", &(struct reg_capacity){ 0 }, &a1, 1), 0);
	ck_assert(reg_failover_wanted(r, "a1"));
	ck_assert_int_eq(reg_migrate_begin(r, "a1", &plan), 0);
	ck_assert(plan.rm_has_from);
	ck_assert(plan.rm_owner_fenced);
	ck_assert_uint_eq(plan.rm_from.rk_seq, 9);
	ck_assert_uint_eq(plan.rm_from.rk_epoch, 7);
	reg_peer_put(plan.rm_owner_peer);
	a1.rc_epoch = 8;
	reg_migrate_end(r, "a1", "n1", 8, &a1);
	ck_assert(!reg_failover_wanted(r, "a1"));
	reg_free(r);
}
END_TEST

/* n attaches again, running run[0..nrun) and declaring decl[0..ndecl); returns how many resume. */
static size_t
attach_declaring(struct reg *r, const char *node, const struct reg_comp *run, size_t nrun,
    const struct reg_comp *decl, size_t ndecl)
{
	struct reg_attach a = { .ra_node = node, .ra_address = "tcp://127.0.0.1:9",
		.ra_comps = run, .ra_ncomps = nrun, .ra_declared = decl, .ra_ndeclared = ndecl };
	struct rpc_client *to_close = NULL;
	size_t k = 99;

	a.ra_nresumed = &k;
	ck_assert_int_eq(reg_attach(r, &a, NULL, &to_close), 0);
	return k;
}

/* One heartbeat of node with its components; the resume notes it gets back. */
static void
beat(struct reg *r, const char *node, const struct reg_comp *comps, size_t n, size_t *ret_nfresh,
    size_t *ret_nelsewhere)
{
	char fresh[REG_BEAT_NOTES_MAX][KEY_NAME_MAX + 1], elsewhere[REG_BEAT_NOTES_MAX][KEY_NAME_MAX + 1];
	struct reg_beat b = { .rb_comps = comps, .rb_ncomps = n, .rb_fresh = fresh,
		.rb_nfresh = ret_nfresh, .rb_elsewhere = elsewhere, .rb_nelsewhere = ret_nelsewhere };

	ck_assert_int_eq(reg_beat(r, node, &b), 0);
}

START_TEST(a_declared_component_resumes_on_its_node_unless_another_runs_it)
{
	struct reg *r = new_reg(1000);
	struct reg_comp a = comp("a", 3), b = comp("b", 0), c = comp("c", 0);
	struct reg_comp decl[] = { comp("a", 0), comp("b", 0), comp("c", 0) };
	struct reg_ckpt k = ckpt("n1", "a", 7);
	char node[KEY_NAME_MAX + 1], names[4][KEY_NAME_MAX + 1];
	size_t nf = 9, ne = 9;

	ck_assert_int_eq(reg_checkpoint(r, &k, NULL), 0);
	attach(r, "n2", "tcp://127.0.0.1:2", &b, 1, 1); /* b runs on n2 */
	/* n1 starts again declaring a (it has a checkpoint), b and c (new). */
	ck_assert_uint_eq(attach_declaring(r, "n1", NULL, 0, decl, 3), 2);
	ck_assert_uint_eq(reg_failover_due(r, fake_now, names, 4), 2);
	ck_assert_str_eq(names[0], "a");
	ck_assert_str_eq(names[1], "c");
	ck_assert_int_eq(reg_resume_target(r, "a", node), 0);
	ck_assert_str_eq(node, "n1");
	ck_assert_int_eq(reg_resume_target(r, "b", node), -ENOENT);
	/* n1 is told once that b runs elsewhere; nothing to start fresh yet. */
	beat(r, "n1", NULL, 0, &nf, &ne);
	ck_assert_uint_eq(nf, 0);
	ck_assert_uint_eq(ne, 1);
	beat(r, "n1", NULL, 0, &nf, &ne);
	ck_assert_uint_eq(ne, 0);
	/* c has no checkpoint: n1 starts it fresh, told until it reports it. */
	ck_assert_int_eq(reg_resume_fresh(r, "c"), 0);
	ck_assert_int_eq(reg_resume_target(r, "c", node), -ENOENT);
	beat(r, "n1", NULL, 0, &nf, &ne);
	ck_assert_uint_eq(nf, 1);
	beat(r, "n1", &c, 1, &nf, &ne);
	ck_assert_uint_eq(nf, 0);
	/* a is restored on n1: the mark ends there. */
	reg_migrate_end(r, "a", "n1", 4, &a);
	ck_assert_int_eq(reg_resume_target(r, "a", node), -ENOENT);
	reg_free(r);
}
END_TEST

/*
 * A component its node declared and was told to start fresh, with a
 * checkpoint stored already but no heartbeat listing it: a migration plan
 * names that node as starting it (migrate.c refuses to move it "from
 * nowhere", which would run it twice); once a report lists it, the plan
 * has its owner instead.
 */
START_TEST(a_plan_names_the_node_starting_a_declared_component)
{
	struct reg *r = new_reg(1000);
	struct reg_comp decl[] = { comp("c", 0) }, c = comp("c", 0);
	struct reg_ckpt k = ckpt("n1", "c", 1);
	struct reg_mig_plan plan;
	size_t nf = 9, ne = 9;

	ck_assert_uint_eq(attach_declaring(r, "n1", NULL, 0, decl, 1), 1);
	ck_assert_int_eq(reg_resume_fresh(r, "c"), 0);
	ck_assert_int_eq(reg_checkpoint(r, &k, NULL), 0);
	ck_assert_int_eq(reg_migrate_begin(r, "c", &plan), 0);
	ck_assert_str_eq(plan.rm_owner, "");
	ck_assert_str_eq(plan.rm_starting_on, "n1");
	reg_peer_put(plan.rm_owner_peer);
	reg_migrate_end(r, "c", NULL, 0, NULL);
	/* n1 reports it: owned, no longer starting. */
	beat(r, "n1", &c, 1, &nf, &ne);
	ck_assert_int_eq(reg_migrate_begin(r, "c", &plan), 0);
	ck_assert_str_eq(plan.rm_owner, "n1");
	ck_assert_str_eq(plan.rm_starting_on, "");
	reg_peer_put(plan.rm_owner_peer);
	reg_migrate_end(r, "c", NULL, 0, NULL);
	reg_free(r);
}
END_TEST

/* One heartbeat of n1 with c; the supervision notes it gave. */
static size_t
beat_super(struct reg *r, const struct reg_comp *c, struct reg_super_note *notes)
{
	char revoked[1][KEY_NAME_MAX + 1];
	size_t nrevoked = 0, nnotes = 99;
	struct reg_beat b = { .rb_comps = c, .rb_ncomps = 1, .rb_revoked = revoked,
		.rb_nrevoked = &nrevoked, .rb_super = notes, .rb_nsuper = &nnotes };

	ck_assert_int_eq(reg_beat(r, "n1", &b), 0);
	ck_assert_uint_eq(nrevoked, 0);
	return nnotes;
}

/*
 * A crash is noted when the node reports it (crashes), before its restart
 * shows; the restart adds no note; a crash after which the node gives up is
 * noted, then the failure, in that order.
 */
START_TEST(a_crash_is_noted_when_reported_before_its_restart)
{
	struct reg *r = new_reg(1000);
	struct reg_comp c = comp("a", 3);
	struct reg_super_note notes[2];

	attach(r, "n1", "tcp://127.0.0.1:1", &c, 1, 1);
	ck_assert_uint_eq(beat_super(r, &c, notes), 0);
	/* Taken out of service: restoring, one crash, no restart yet. */
	snprintf(c.rc_state, sizeof(c.rc_state), "restoring");
	c.rc_crashes = 1;
	ck_assert_uint_eq(beat_super(r, &c, notes), 1);
	ck_assert_str_eq(notes[0].rs_component, "a");
	ck_assert(!notes[0].rs_failed);
	ck_assert_uint_eq(notes[0].rs_crashes, 1);
	ck_assert_uint_eq(notes[0].rs_new, 1);
	ck_assert_uint_eq(notes[0].rs_restarts, 0);
	/* Its restart: nothing new to tell. */
	snprintf(c.rc_state, sizeof(c.rc_state), "running");
	c.rc_restarts = 1;
	ck_assert_uint_eq(beat_super(r, &c, notes), 0);
	/* Crashed again and given up in one go: the crash, then the failure. */
	snprintf(c.rc_state, sizeof(c.rc_state), REG_STATE_FAILED);
	snprintf(c.rc_reason, sizeof(c.rc_reason), "2 failures in a row");
	c.rc_crashes = 2;
	ck_assert_uint_eq(beat_super(r, &c, notes), 2);
	ck_assert(!notes[0].rs_failed);
	ck_assert_uint_eq(notes[0].rs_crashes, 2);
	ck_assert_uint_eq(notes[0].rs_new, 1);
	ck_assert(notes[1].rs_failed);
	ck_assert_str_eq(notes[1].rs_reason, "2 failures in a row");
	ck_assert_uint_eq(beat_super(r, &c, notes), 0); /* told once */
	reg_free(r);
}
END_TEST

START_TEST(a_failed_component_is_pending_failover_away_from_its_live_node)
{
	struct reg *r = new_reg(1000);
	struct reg_comp c = comp("a", 3);
	struct reg_super_note notes[1];
	char names[2][KEY_NAME_MAX + 1];
	struct reg_node_view *v = NULL;
	struct reg_mig_plan p;
	size_t n = 0;

	attach(r, "n1", "tcp://127.0.0.1:1", &c, 1, 1);
	attach(r, "n2", "tcp://127.0.0.1:2", NULL, 0, 1);
	ck_assert_uint_eq(beat_super(r, &c, notes), 0);
	/* Restarted twice since the last report (an agent that does not count crashes). */
	c.rc_restarts = 2;
	ck_assert_uint_eq(beat_super(r, &c, notes), 1);
	ck_assert_str_eq(notes[0].rs_component, "a");
	ck_assert(!notes[0].rs_failed);
	ck_assert_uint_eq(notes[0].rs_restarts, 2);
	ck_assert_uint_eq(notes[0].rs_crashes, 2); /* its restarts stand for its crashes */
	ck_assert_uint_eq(notes[0].rs_new, 2);
	ck_assert_uint_eq(beat_super(r, &c, notes), 0); /* told once */
	ck_assert_uint_eq(reg_failover_due(r, fake_now, names, 2), 0);
	/* Given up: noted once, pending with the reason, wanted although n1 is up. */
	snprintf(c.rc_state, sizeof(c.rc_state), REG_STATE_FAILED);
	snprintf(c.rc_reason, sizeof(c.rc_reason), "3 failures in a row");
	ck_assert_uint_eq(beat_super(r, &c, notes), 1);
	ck_assert(notes[0].rs_failed);
	ck_assert_str_eq(notes[0].rs_reason, "3 failures in a row");
	ck_assert_uint_eq(beat_super(r, &c, notes), 0);
	ck_assert_uint_eq(reg_failover_due(r, fake_now, names, 2), 1);
	ck_assert_str_eq(names[0], "a");
	ck_assert(reg_failover_wanted(r, "a"));
	ck_assert_int_eq(reg_nodes(r, &v, &n), 0);
	ck_assert_uint_eq(find_node(v, n, "n1")->rn_npending, 1);
	ck_assert_str_eq(find_node(v, n, "n1")->rn_pending[0].rp_reason,
	    "failed on node n1: 3 failures in a row");
	reg_nodes_free(v, n);
	/* The plan: its owner is up but does not run it, and is no place for it. */
	ck_assert_int_eq(reg_migrate_begin(r, "a", &p), 0);
	ck_assert(p.rm_owner_up && p.rm_owner_failed && !p.rm_owner_runs);
	ck_assert_str_eq(p.rm_owner, "n1");
	/* Placed on n2 at a newer epoch: n1's failed copy is stale from then on. */
	reg_migrate_end(r, "a", "n2", 4, NULL);
	ck_assert(!reg_failover_wanted(r, "a"));
	{
		char revoked[1][KEY_NAME_MAX + 1];
		size_t nrevoked = 0;
		struct reg_beat b = { .rb_comps = &c, .rb_ncomps = 1, .rb_revoked = revoked,
			.rb_nrevoked = &nrevoked };
		ck_assert_int_eq(reg_beat(r, "n1", &b), 0);
		ck_assert_uint_eq(nrevoked, 1);
		ck_assert_str_eq(revoked[0], "a");
	}
	ck_assert_uint_eq(reg_failover_due(r, fake_now, names, 2), 0);
	reg_free(r);
}
END_TEST

/* What node counts for placement (reg_candidates(), skip left out); *ret_arriving: not listed. */
static uint32_t
counts(struct reg *r, const char *skip, const char *node, uint32_t *ret_arriving)
{
	struct reg_cand *c = NULL;
	uint32_t k = UINT32_MAX, arriving = UINT32_MAX;
	size_t n = 0;

	ck_assert_int_eq(reg_candidates(r, skip, &c, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(c[i].rca_node, node) == 0) {
			k = c[i].rca_components;
			arriving = c[i].rca_arriving;
		}
	}
	reg_candidates_free(c, n);
	ck_assert_uint_ne(k, UINT32_MAX);
	if (ret_arriving != NULL)
		*ret_arriving = arriving;
	return k;
}

static void
report(struct reg *r, const char *node, const struct reg_comp *comps, size_t n)
{
	struct reg_capacity cap = { 0 };

	ck_assert_int_eq(reg_heartbeat(r, node, &cap, comps, n), 0);
}

START_TEST(a_placed_move_counts_at_its_target_until_a_report_lists_it)
{
	struct reg *r = new_reg(1000);
	struct reg_comp a = comp("a", 1), b = comp("b", 1), c = comp("c", 1), st = comp("a", 2);
	struct reg_mig_plan p;
	uint32_t arriving = 99;

	attach(r, "n1", "tcp://127.0.0.1:1", &a, 1, 1);
	attach(r, "n2", "tcp://127.0.0.1:2", &b, 1, 1);
	attach(r, "n3", "tcp://127.0.0.1:3", &c, 1, 1);
	ck_assert_int_eq(reg_migrate_begin(r, "a", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "a", "n2", 2), 0);
	ck_assert_uint_eq(counts(r, NULL, "n2", &arriving), 2);
	ck_assert_uint_eq(arriving, 1);
	ck_assert_uint_eq(counts(r, NULL, "n1", &arriving), 1); /* its source, until it ends */
	ck_assert_uint_eq(arriving, 0);
	/* Placing a itself, n2 is judged without it. */
	ck_assert_uint_eq(counts(r, "a", "n2", NULL), 1);
	/* The last place on n2 is a's: another move is refused it, as long as a holds it. */
	ck_assert_int_eq(reg_migrate_begin(r, "c", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "c", "n2", 2), -EDQUOT);
	ck_assert_int_eq(reg_migrate_toward(r, "c", "n2", 3), 0);
	reg_migrate_end(r, "c", NULL, 0, NULL);
	ck_assert_uint_eq(counts(r, NULL, "n2", NULL), 2);
	/* a lands on n2: n2 lists it, n1 no longer counts it. */
	reg_migrate_end(r, "a", "n2", 2, &st);
	ck_assert_uint_eq(counts(r, NULL, "n2", &arriving), 2);
	ck_assert_uint_eq(arriving, 0);
	ck_assert_uint_eq(counts(r, NULL, "n1", NULL), 0);
	/* A heartbeat of n2 taken before the restore leaves it out: still listed and counted there. */
	report(r, "n2", &b, 1);
	ck_assert_uint_eq(counts(r, NULL, "n2", &arriving), 2);
	ck_assert_uint_eq(arriving, 0);
	ck_assert_int_eq(reg_migrate_begin(r, "c", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "c", "n2", 2), -EDQUOT);
	reg_migrate_end(r, "c", NULL, 0, NULL);
	/* The next one cannot have been: a left n2 (it is believed). */
	report(r, "n2", &b, 1);
	ck_assert_uint_eq(counts(r, NULL, "n2", &arriving), 1);
	ck_assert_uint_eq(arriving, 0);
	reg_free(r);
}
END_TEST

START_TEST(a_failed_or_given_up_move_releases_its_place)
{
	struct reg *r = new_reg(1000);
	struct reg_comp a = comp("a", 1), b = comp("b", 1);
	struct reg_mig_plan p;

	attach(r, "n1", "tcp://127.0.0.1:1", &a, 1, 1);
	attach(r, "n2", "tcp://127.0.0.1:2", &b, 1, 1);
	/* Failed: it stays on n1; n2 counts only b again. */
	ck_assert_int_eq(reg_migrate_begin(r, "a", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "a", "n2", 2), 0);
	ck_assert_uint_eq(counts(r, NULL, "n2", NULL), 2);
	reg_migrate_end(r, "a", NULL, 3, NULL);
	ck_assert_uint_eq(counts(r, NULL, "n2", NULL), 1);
	ck_assert_uint_eq(counts(r, NULL, "n1", NULL), 1);
	/* The target refused it (its spec): the place is given up while the move goes on. */
	ck_assert_int_eq(reg_migrate_begin(r, "a", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "a", "n2", 2), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "a", NULL, 0), 0);
	ck_assert_uint_eq(counts(r, NULL, "n2", NULL), 1);
	/* Placed elsewhere then: only there. */
	attach(r, "n3", "tcp://127.0.0.1:3", NULL, 0, 1);
	ck_assert_int_eq(reg_migrate_toward(r, "a", "n2", 2), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "a", "n3", 2), 0);
	ck_assert_uint_eq(counts(r, NULL, "n2", NULL), 1);
	ck_assert_uint_eq(counts(r, NULL, "n3", NULL), 1);
	reg_migrate_end(r, "a", NULL, 3, NULL);
	ck_assert_uint_eq(counts(r, NULL, "n3", NULL), 0);
	/* Deleted while it held a place (ckptctl delete): counted nowhere. */
	ck_assert_int_eq(reg_migrate_begin(r, "a", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "a", "n2", 2), 0);
	reg_migrate_release(r, "a");
	ck_assert_uint_eq(counts(r, NULL, "n2", NULL), 1);
	ck_assert_uint_eq(counts(r, NULL, "n1", NULL), 0);
	/* No move, no place; no such node. */
	ck_assert_int_eq(reg_migrate_toward(r, "a", "n2", 2), -ENOENT);
	ck_assert_int_eq(reg_migrate_begin(r, "b", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "b", "ghost", 2), -ENOENT);
	reg_migrate_end(r, "b", NULL, 0, NULL);
	reg_free(r);
}
END_TEST

START_TEST(a_component_reported_and_assigned_counts_once)
{
	struct reg *r = new_reg(1000);
	struct reg_comp a = comp("a", 1), a2 = comp("a", 2), b = comp("b", 1);
	struct reg_comp both[] = { comp("b", 1), comp("a", 2) };
	struct reg_comp decl[] = { comp("d", 0), comp("e", 0), comp("b", 0) };
	struct reg_comp d = comp("d", 0);
	struct reg_mig_plan p;
	uint32_t arriving = 99;

	attach(r, "n1", "tcp://127.0.0.1:1", &a, 1, 1);
	attach(r, "n2", "tcp://127.0.0.1:2", &b, 1, 1);
	ck_assert_int_eq(reg_migrate_begin(r, "a", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "a", "n2", 2), 0);
	/* n2's heartbeat lists a before the move ends: a counts once there. */
	report(r, "n2", both, 2);
	ck_assert_uint_eq(counts(r, NULL, "n2", &arriving), 2);
	ck_assert_uint_eq(arriving, 0);
	/* n1 stopped it and reports it no more: it keeps its place until the move ends. */
	report(r, "n1", NULL, 0);
	ck_assert_uint_eq(counts(r, NULL, "n1", &arriving), 1);
	ck_assert_uint_eq(arriving, 1);
	reg_migrate_end(r, "a", "n2", 2, &a2);
	ck_assert_uint_eq(counts(r, NULL, "n1", NULL), 0);
	ck_assert_uint_eq(counts(r, NULL, "n2", NULL), 2);
	/* Listed by a report: settled, so a later report without it is believed at once. */
	report(r, "n2", both, 2);
	report(r, "n2", &b, 1);
	ck_assert_uint_eq(counts(r, NULL, "n2", NULL), 1);
	/* n3 attaches declaring d, e and b (b runs on n2): it counts d and e before it runs them. */
	attach_declaring(r, "n3", NULL, 0, decl, 3);
	ck_assert_uint_eq(counts(r, NULL, "n3", &arriving), 2);
	ck_assert_uint_eq(arriving, 2);
	ck_assert_int_eq(reg_migrate_begin(r, "a", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "a", "n3", 2), -EDQUOT);
	reg_migrate_end(r, "a", NULL, 0, NULL);
	/* d runs: reported and declared, once. */
	report(r, "n3", &d, 1);
	ck_assert_uint_eq(counts(r, NULL, "n3", &arriving), 2);
	ck_assert_uint_eq(arriving, 1);
	reg_free(r);
}
END_TEST

/* Whether node lists component in the registry's view (ckptctl nodes). */
static bool
lists(struct reg *r, const char *node, const char *component)
{
	struct reg_node_view *v;
	size_t n;
	bool has;

	ck_assert_int_eq(reg_nodes(r, &v, &n), 0);
	ck_assert_ptr_nonnull(find_node(v, n, node));
	has = node_has(find_node(v, n, node), component);
	reg_nodes_free(v, n);
	return has;
}

static unsigned room_told;

static void
on_room(void *arg)
{
	(void)arg;
	room_told++;
}

/* Whether the failover of component is due now (and, if so, makes it wait for room again). */
static bool
due_again(struct reg *r, const char *component)
{
	char names[8][KEY_NAME_MAX + 1];
	size_t n = reg_failover_due(r, fake_now, names, 8);
	bool due = false;

	for (size_t i = 0; i < n; i++)
		due = due || strcmp(names[i], component) == 0;
	if (due)
		reg_failover_wait_room(r, component, "no room", 3600000);
	return due;
}

/*
 * A failover that found no room (every node at its cap) is due again, and
 * rc_on_room told, the moment a place frees on an up node, whatever frees
 * it; not when nothing frees, nor when a move held a place only after it was
 * told to wait and gives it up (two failovers offered one node in turn would
 * wake each other forever). Each "told" below fails without the kicks: the
 * wait is an hour.
 */
START_TEST(a_place_that_frees_wakes_the_failover_waiting_for_room)
{
	struct reg_config cfg = { .rc_down_after_ms = 1000, .rc_clock = fake_clock,
		.rc_on_room = on_room };
	struct reg *r = NULL;
	struct reg_comp a[] = { comp("a1", 1), comp("a2", 1) }, b1 = comp("b1", 1),
			d1 = comp("d1", 1), e1 = comp("e1", 0), st = comp("a2", 2);
	struct reg_mig_plan p;
	unsigned told;

	fake_now = 1000000;
	room_told = 0;
	ck_assert_int_eq(reg_new(&cfg, &r), 0);
	attach(r, "na", "tcp://127.0.0.1:1", a, 2, 1);
	attach(r, "nb", "tcp://127.0.0.1:2", &b1, 1, 1);
	attach(r, "nd", "tcp://127.0.0.1:4", &d1, 1, 1);
	/* nd dies: d1 is due, finds no room and waits an hour. */
	ck_assert_uint_eq(reg_failover_mark(r, "nd", "down"), 1);
	ck_assert(due_again(r, "d1"));
	ck_assert(!due_again(r, "d1"));

	/* Nothing frees: a heartbeat listing the same, a move held after the wait and given up. */
	report(r, "na", a, 2);
	ck_assert_int_eq(reg_migrate_begin(r, "b1", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "b1", "na", 0), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "b1", NULL, 0), 0);
	reg_migrate_end(r, "b1", NULL, 0, NULL);
	ck_assert(!due_again(r, "d1"));
	ck_assert_uint_eq(room_told, 0);

	/* A place held before the wait and given up after it: told. */
	ck_assert_int_eq(reg_migrate_begin(r, "b1", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "b1", "na", 0), 0);
	reg_failover_wait_room(r, "d1", "no room", 3600000);
	ck_assert_int_eq(reg_migrate_toward(r, "b1", NULL, 0), 0);
	reg_migrate_end(r, "b1", NULL, 0, NULL);
	ck_assert(due_again(r, "d1"));
	ck_assert_uint_eq(room_told, 1);

	/* A migration away from na ends (a2 to nb): na has room. */
	ck_assert_int_eq(reg_migrate_begin(r, "a2", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "a2", "nb", 0), 0);
	ck_assert(!due_again(r, "d1"));
	reg_migrate_end(r, "a2", "nb", 2, &st);
	ck_assert(due_again(r, "d1"));
	ck_assert_uint_eq(room_told, 2);

	/* A heartbeat lists fewer than before (a1 stopped on na). */
	report(r, "na", NULL, 0);
	ck_assert(due_again(r, "d1"));
	ck_assert_uint_eq(room_told, 3);

	/* A component deleted (ckptctl delete: begin, release). */
	ck_assert_int_eq(reg_migrate_begin(r, "b1", &p), 0);
	reg_migrate_release(r, "b1");
	ck_assert(due_again(r, "d1"));
	ck_assert_uint_eq(room_told, 4);

	/* A component ne declared runs on nb (reported there): ne no longer counts it. */
	ck_assert_uint_eq(attach_declaring(r, "ne", NULL, 0, &e1, 1), 1);
	reg_failover_kick(r); /* as the manager does after an attach */
	ck_assert(due_again(r, "d1"));
	told = room_told;
	{
		struct reg_comp nb[] = { st, e1 };
		report(r, "nb", nb, 2); /* a2 still listed: only ne frees */
	}
	ck_assert_uint_eq(counts(r, NULL, "ne", NULL), 0);
	ck_assert(due_again(r, "d1"));
	ck_assert_uint_eq(room_told, told + 1);

	/* A place that frees on a cordoned node is no room. */
	ck_assert_int_eq(reg_cordon(r, "nb", true, NULL), 0);
	report(r, "nb", NULL, 0);
	ck_assert(!due_again(r, "d1"));
	ck_assert_uint_eq(room_told, told + 1);
	reg_free(r);
}
END_TEST


/* A heartbeat of node listing comps, with mem_free bytes free of 1 MiB. */
static void
report_mem(struct reg *r, const char *node, const struct reg_comp *comps, size_t n,
    uint64_t mem_free)
{
	struct reg_capacity cap = { .rcap_mem_free = mem_free, .rcap_mem_total = 1u << 20,
		.rcap_cpu_count = 2 };

	ck_assert_int_eq(reg_heartbeat(r, node, &cap, comps, n), 0);
}

/*
 * Memory that grows on a node is room too: a failover waiting for room whose
 * state (4096 bytes, as its lost node reported) the node did not have free
 * when it was told to wait is due, and rc_on_room told, at the heartbeat
 * that reports that much free; not for growth short of its need, not again
 * while memory hovers above it (a wait marks it), not on a cordoned node,
 * and never for one whose need is not known. Two failovers waking at once,
 * one placed there (its memory taken): the other waits, and no heartbeat
 * wakes it until memory frees again. Without memory as a waking event the
 * first "told" fails: the wait is an hour.
 */
START_TEST(memory_that_grows_on_a_node_wakes_the_failover_waiting_for_room)
{
	struct reg_config cfg = { .rc_down_after_ms = 1000, .rc_clock = fake_clock,
		.rc_on_room = on_room };
	struct reg *r = NULL;
	struct reg_comp a1 = comp("a1", 1), lost[] = { comp("d1", 1), comp("d2", 1), comp("u", 1) };
	struct reg_comp d1st = comp("d1", 2), on_na[] = { comp("a1", 1), comp("d1", 2) };
	struct reg_mig_plan p;
	struct reg_down down;

	fake_now = 1000000;
	room_told = 0;
	lost[2].rc_state_bytes = 0; /* u: no checkpoint, no size: its need is not known */
	ck_assert_int_eq(reg_new(&cfg, &r), 0);
	attach(r, "na", "tcp://127.0.0.1:1", &a1, 1, 1000);
	attach(r, "nd", "tcp://127.0.0.1:4", lost, 3, 1000);
	/* nd dies (silent past down-after): each finds no node with 4096 bytes free, waits an hour. */
	fake_now += 1500;
	report_mem(r, "na", &a1, 1, 1000);
	ck_assert_uint_eq(reg_sweep(r, &down, 1), 1);
	ck_assert_str_eq(down.rd_node, "nd");
	ck_assert_uint_eq(reg_failover_mark(r, "nd", "down"), 3);
	ck_assert(due_again(r, "d1"));
	ck_assert(due_again(r, "d2"));
	ck_assert(due_again(r, "u"));
	ck_assert(!due_again(r, "d1"));

	/* More free, still short of 4096: nothing. */
	report_mem(r, "na", &a1, 1, 3000);
	ck_assert(!due_again(r, "d1"));
	ck_assert(!due_again(r, "d2"));
	ck_assert_uint_eq(room_told, 0);
	/* Enough (a1 shrank): d1 and d2 are due, told once; u (need unknown) is not. */
	report_mem(r, "na", &a1, 1, 5000);
	ck_assert_uint_eq(room_told, 1);
	ck_assert(due_again(r, "d1"));
	ck_assert(due_again(r, "d2"));
	ck_assert(!due_again(r, "u"));
	/* Memory that hovers above the need after the wait is no new room. */
	report_mem(r, "na", &a1, 1, 4500);
	report_mem(r, "na", &a1, 1, 5200);
	ck_assert(!due_again(r, "d1"));
	ck_assert(!due_again(r, "d2"));
	ck_assert_uint_eq(room_told, 1);

	/* d1 placed on na takes the memory; d2, tried again, waits. */
	ck_assert_int_eq(reg_migrate_begin(r, "d1", &p), 0);
	ck_assert_uint_eq(p.rm_need_bytes, 4096);
	ck_assert_int_eq(reg_migrate_toward(r, "d1", "na", 0), 0);
	reg_migrate_end(r, "d1", "na", 2, &d1st);
	report_mem(r, "na", on_na, 2, 900);
	reg_failover_wait_room(r, "d2", "no room", 3600000);
	report_mem(r, "na", on_na, 2, 900);
	report_mem(r, "na", on_na, 2, 1100);
	ck_assert(!due_again(r, "d2"));
	ck_assert_uint_eq(room_told, 1);
	/* d1 stops there, its memory freed: d2 is due. */
	report_mem(r, "na", &a1, 1, 5000);
	ck_assert(due_again(r, "d2"));
	ck_assert_uint_eq(room_told, 2);

	/* Memory that grows on a cordoned node is no room. */
	report_mem(r, "na", &a1, 1, 900);
	reg_failover_wait_room(r, "d2", "no room", 3600000);
	ck_assert_int_eq(reg_cordon(r, "na", true, NULL), 0);
	report_mem(r, "na", &a1, 1, 9000);
	ck_assert(!due_again(r, "d2"));
	ck_assert_uint_eq(room_told, 2);
	reg_free(r);
}
END_TEST

/*
 * --max-node-components 2: n1 attaches running x and declaring d1 and d2
 * (each list within the cap, 3 together). The attach is taken (d2 may turn
 * out to run elsewhere); n1 resumes d1 only, and d2 is failed over like a
 * lost component: not n1's to resume, counted nowhere, and n1 is told that
 * another node runs it once one does. A declaration that runs elsewhere
 * already takes no room, and one beyond the cap is the node's to resume
 * again once a place frees there. Without the check n1 resumed both (3
 * components).
 */
START_TEST(an_attach_resumes_only_the_declared_components_that_fit_under_the_cap)
{
	struct reg *r = new_reg(1000);
	struct reg_comp x = comp("x", 1), d2st = comp("d2", 2), e = comp("e", 1);
	struct reg_comp decl[] = { comp("d1", 0), comp("d2", 0) };
	struct reg_comp decl3[] = { comp("e", 0), comp("d1", 0) };
	struct reg_ckpt k1 = ckpt("n1", "d1", 3), k2 = ckpt("n1", "d2", 4);
	struct reg_attach a = { .ra_node = "n1", .ra_address = "tcp://127.0.0.1:9", .ra_comps = &x,
		.ra_ncomps = 1, .ra_declared = decl, .ra_ndeclared = 2, .ra_max_components = 2 };
	struct rpc_client *to_close = NULL;
	char node[KEY_NAME_MAX + 1], names[4][KEY_NAME_MAX + 1];
	struct reg_mig_plan p;
	size_t nres = 99, nover = 99, nf = 9, ne = 9;

	ck_assert_int_eq(reg_checkpoint(r, &k1, NULL), 0);
	ck_assert_int_eq(reg_checkpoint(r, &k2, NULL), 0);
	attach(r, "n2", "tcp://127.0.0.1:2", NULL, 0, 1);
	a.ra_nresumed = &nres;
	a.ra_nover = &nover;
	ck_assert_int_eq(reg_attach(r, &a, NULL, &to_close), 0);
	ck_assert_uint_eq(nres, 1);
	ck_assert_uint_eq(nover, 1);
	ck_assert_uint_eq(counts(r, NULL, "n1", NULL), 2);
	/* Both are due: d1 to resume on n1, d2 to place by the usual rule. */
	ck_assert_uint_eq(reg_failover_due(r, fake_now, names, 4), 2);
	ck_assert_int_eq(reg_resume_target(r, "d1", node), 0);
	ck_assert_str_eq(node, "n1");
	ck_assert_int_eq(reg_resume_target(r, "d2", node), -ENOENT);
	ck_assert_int_eq(reg_resume_fresh(r, "d2"), -ENOENT);
	ck_assert_int_eq(reg_migrate_begin(r, "d2", &p), 0);
	ck_assert_str_eq(p.rm_starting_on, ""); /* it starts nowhere by itself */
	/* d2 lands on n2: n1 is told once that another node runs it; n1 still counts 2. */
	ck_assert_int_eq(reg_migrate_toward(r, "d2", "n2", 2), 0);
	reg_migrate_end(r, "d2", "n2", 5, &d2st);
	beat(r, "n1", &x, 1, &nf, &ne);
	ck_assert_uint_eq(ne, 1);
	ck_assert_uint_eq(nf, 0);
	beat(r, "n1", &x, 1, &nf, &ne);
	ck_assert_uint_eq(ne, 0);
	ck_assert_uint_eq(counts(r, NULL, "n1", NULL), 2);
	ck_assert_uint_eq(counts(r, NULL, "n2", NULL), 1);

	/* n1 attaches again declaring e, which n2 runs, and d1: e takes no room. */
	report(r, "n2", (struct reg_comp[]){ d2st, e }, 2);
	a.ra_declared = decl3;
	ck_assert_int_eq(reg_attach(r, &a, NULL, &to_close), 0);
	ck_assert_uint_eq(nres, 1);
	ck_assert_uint_eq(nover, 0);
	ck_assert_int_eq(reg_resume_target(r, "d1", node), 0);
	ck_assert_uint_eq(counts(r, NULL, "n1", NULL), 2);

	/*
	 * n3 (cap 1) runs y and declares f, of which no checkpoint exists: no
	 * room, and nothing to place elsewhere. Once y stops there, f is n3's
	 * to resume (start fresh) after all.
	 */
	{
		struct reg_comp y = comp("y", 1), f = comp("f", 0);
		struct reg_attach a3 = { .ra_node = "n3", .ra_address = "tcp://127.0.0.1:3",
			.ra_comps = &y, .ra_ncomps = 1, .ra_declared = &f, .ra_ndeclared = 1,
			.ra_max_components = 1, .ra_nresumed = &nres, .ra_nover = &nover };
		ck_assert_int_eq(reg_attach(r, &a3, NULL, &to_close), 0);
		ck_assert_uint_eq(nres, 0);
		ck_assert_uint_eq(nover, 1);
		ck_assert_int_eq(reg_resume_target(r, "f", node), -ENOENT);
		ck_assert_uint_eq(counts(r, NULL, "n3", NULL), 1);
		report(r, "n3", &y, 1);
		ck_assert_int_eq(reg_resume_target(r, "f", node), -ENOENT);
		report(r, "n3", NULL, 0);
		ck_assert_int_eq(reg_resume_target(r, "f", node), 0);
		ck_assert_str_eq(node, "n3");
		ck_assert_uint_eq(counts(r, NULL, "n3", NULL), 1);
		ck_assert_int_eq(reg_resume_fresh(r, "f"), 0);
	}
	reg_free(r);
}
END_TEST

START_TEST(a_report_older_than_the_restore_does_not_hide_the_moved_component)
{
	struct reg *r = new_reg(1000);
	struct reg_comp a = comp("a", 1), a2 = comp("a", 2), b = comp("b", 1);
	struct reg_comp both[] = { comp("b", 1), comp("a", 2) };
	struct reg_mig_plan p;

	attach(r, "n1", "tcp://127.0.0.1:1", &a, 1, 1);
	attach(r, "n2", "tcp://127.0.0.1:2", &b, 1, 1);
	ck_assert_int_eq(reg_migrate_begin(r, "a", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "a", "n2", 2), 0);
	reg_migrate_end(r, "a", "n2", 2, &a2);
	ck_assert(lists(r, "n2", "a"));
	/* n2's report made before the restore, read after it: a stays listed, once. */
	report(r, "n2", &b, 1);
	ck_assert(lists(r, "n2", "a"));
	ck_assert(!lists(r, "n1", "a"));
	ck_assert_uint_eq(counts(r, NULL, "n2", NULL), 2);
	/* REG_SETTLE_BEATS reports without it: n2 does not run it (it failed to start). */
	report(r, "n2", &b, 1);
	ck_assert(!lists(r, "n2", "a"));
	ck_assert_uint_eq(counts(r, NULL, "n2", NULL), 1);
	/* Moved again, listed by n2's next report: settled, and a report without it is believed. */
	ck_assert_int_eq(reg_migrate_begin(r, "a", &p), 0);
	reg_migrate_end(r, "a", "n2", 3, &a2);
	report(r, "n2", both, 2);
	ck_assert(lists(r, "n2", "a"));
	report(r, "n2", &b, 1);
	ck_assert(!lists(r, "n2", "a"));
	reg_free(r);
}
END_TEST

/*
 * ckptctl delete stops a on n1 and releases it (no owner, epoch kept). A
 * heartbeat n1 made before it stopped a, read after the release, lists a:
 * it is revoked, not taken (without the check n1 owned a again: listed,
 * counted, failed over when n1 dies). What brings a component back is
 * taken: a report at a higher epoch, a placement that ends on the node
 * (ckptctl apply), the node declaring it and starting it fresh at the same
 * epoch.
 */
START_TEST(a_deleted_component_is_not_brought_back_by_a_stale_report)
{
	struct reg *r = new_reg(1000);
	struct reg_comp run[] = { comp("a", 1), comp("b", 1), comp("c", 1) };
	struct reg_comp a2 = comp("a", 2), b2 = comp("b", 2), c1 = comp("c", 1);
	char revoked[4][KEY_NAME_MAX + 1], (*owned)[KEY_NAME_MAX + 1] = NULL;
	size_t nrev = 99, nowned = 99, nf = 9, ne = 9;
	struct reg_beat b = { .rb_comps = run, .rb_ncomps = 3, .rb_revoked = revoked,
		.rb_nrevoked = &nrev };
	struct reg_attach at = { .ra_node = "n1", .ra_address = "tcp://127.0.0.1:1",
		.ra_comps = run, .ra_ncomps = 3, .ra_revoked = revoked, .ra_nrevoked = &nrev,
		.ra_max_components = 2 };
	struct rpc_client *to_close = NULL;
	struct reg_down down[2];
	struct reg_mig_plan p;
	char node[KEY_NAME_MAX + 1];

	attach(r, "n1", "tcp://127.0.0.1:1", run, 3, 1);
	attach(r, "n2", "tcp://127.0.0.1:2", NULL, 0, 1);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(reg_migrate_begin(r, run[i].rc_name, &p), 0);
		reg_migrate_release(r, run[i].rc_name);
	}
	ck_assert_uint_eq(counts(r, NULL, "n1", NULL), 0);
	/* The stale heartbeat: all three revoked, none listed, owned or counted. */
	ck_assert_int_eq(reg_beat(r, "n1", &b), 0);
	ck_assert_uint_eq(nrev, 3);
	ck_assert(!lists(r, "n1", "a"));
	ck_assert_uint_eq(counts(r, NULL, "n1", NULL), 0);
	ck_assert_int_eq(reg_node_owned(r, "n1", &owned, &nowned), 0);
	ck_assert_uint_eq(nowned, 0);
	free(owned);
	/* An attach with them too (stale, so not over the cap of 2 either). */
	nrev = 99;
	ck_assert_int_eq(reg_attach(r, &at, NULL, &to_close), 0);
	ck_assert_uint_eq(nrev, 3);
	ck_assert(!lists(r, "n1", "b"));
	/* n1 dies: nothing of it to fail over. */
	fake_now += 2000;
	report(r, "n2", NULL, 0);
	ck_assert_uint_eq(reg_sweep(r, down, 2), 1);
	ck_assert_uint_eq(reg_failover_mark(r, "n1", "down"), 0);
	attach(r, "n1", "tcp://127.0.0.1:1", NULL, 0, 1);

	/* a at a higher epoch (started again by something the registry did not see). */
	report(r, "n1", &a2, 1);
	ck_assert(lists(r, "n1", "a"));
	/* b applied again, placed on n1; n1's reports of it are taken. */
	ck_assert_int_eq(reg_place_begin(r, "b", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "b", "n1", 0), 0);
	reg_migrate_end(r, "b", "n1", 2, &b2);
	report(r, "n1", (struct reg_comp[]){ a2, b2 }, 2);
	ck_assert(lists(r, "n1", "b"));
	/* c declared by n1 (its agent started again), no checkpoint: started fresh at epoch 1. */
	ck_assert_uint_eq(attach_declaring(r, "n1", (struct reg_comp[]){ a2, b2 }, 2, &c1, 1), 1);
	ck_assert_int_eq(reg_resume_target(r, "c", node), 0);
	ck_assert_int_eq(reg_resume_fresh(r, "c"), 0);
	b.rb_comps = (struct reg_comp[]){ a2, b2, c1 };
	ck_assert_int_eq(reg_beat(r, "n1", &b), 0);
	ck_assert_uint_eq(nrev, 0);
	ck_assert(lists(r, "n1", "c"));
	beat(r, "n1", (struct reg_comp[]){ a2, b2, c1 }, 3, &nf, &ne);
	ck_assert_uint_eq(nf, 0);
	ck_assert_uint_eq(counts(r, NULL, "n1", NULL), 3);
	reg_free(r);
}
END_TEST

/*
 * A manager started again knows no node; its catalogue (seeded from the
 * NAS) says which node stored each component's newest checkpoint. Cap 2:
 * n1 attaches running a, b and c, whose newest checkpoints n1 stored: taken
 * (it ran them; refusing it would fail everything over, and its agent would
 * retry for ever). A new node over the cap with components it never stored
 * is refused, and so is n2 with two components n1 stored, until n2 stores
 * them itself. Without the catalogue check n1 was refused (-EDQUOT).
 */
START_TEST(an_attach_over_the_cap_is_taken_with_what_the_node_last_stored)
{
	struct reg *r = new_reg(1000);
	struct reg_comp run[] = { comp("a", 1), comp("b", 1), comp("c", 1) };
	struct reg_comp run2[] = { comp("d", 1), comp("e", 1), comp("f", 1) };
	struct reg_comp fresh[] = { comp("x", 1), comp("y", 1), comp("z", 1) };
	const char *mine[] = { "a", "b", "c" }, *n1s[] = { "d", "e" };
	struct reg_attach a = { .ra_node = "n1", .ra_address = "tcp://127.0.0.1:1",
		.ra_comps = run, .ra_ncomps = 3, .ra_max_components = 2 };
	struct rpc_client *to_close = NULL;
	struct reg_node_view *v = NULL;
	size_t n = 0;

	for (size_t i = 0; i < 3; i++) {
		struct reg_ckpt k = ckpt("n1", mine[i], 5);
		ck_assert_int_eq(reg_checkpoint(r, &k, NULL), 0);
	}
	for (size_t i = 0; i < 2; i++) {
		struct reg_ckpt k = ckpt("n1", n1s[i], 5);
		ck_assert_int_eq(reg_checkpoint(r, &k, NULL), 0);
	}
	ck_assert_int_eq(reg_attach(r, &a, NULL, &to_close), 0);
	ck_assert(lists(r, "n1", "a") && lists(r, "n1", "b") && lists(r, "n1", "c"));
	ck_assert_uint_eq(counts(r, NULL, "n1", NULL), 3);
	/* A new node over the cap: none of its components was stored there. */
	a.ra_node = "n9";
	a.ra_comps = fresh;
	ck_assert_int_eq(reg_attach(r, &a, NULL, &to_close), -EDQUOT);
	/* n2 runs d and e, last stored by n1, and f: refused until it stored them. */
	a.ra_node = "n2";
	a.ra_comps = run2;
	ck_assert_int_eq(reg_attach(r, &a, NULL, &to_close), -EDQUOT);
	for (size_t i = 0; i < 2; i++) {
		struct reg_ckpt k = ckpt("n2", n1s[i], 6);
		ck_assert_int_eq(reg_checkpoint(r, &k, NULL), 0);
	}
	ck_assert_int_eq(reg_attach(r, &a, NULL, &to_close), -EDQUOT); /* f still unknown */
	{
		struct reg_ckpt k = ckpt("n2", "f", 1);
		ck_assert_int_eq(reg_checkpoint(r, &k, NULL), 0);
	}
	ck_assert_int_eq(reg_attach(r, &a, NULL, &to_close), 0);
	ck_assert_int_eq(reg_nodes(r, &v, &n), 0);
	ck_assert_uint_eq(n, 2); /* n1 and n2: the refused n9 left nothing behind */
	reg_nodes_free(v, n);
	reg_free(r);
}
END_TEST

/*
 * A migration away from a full node ends after the source's heartbeat that
 * no longer lists it (it stopped it for the move) was read: the place the
 * source held before the move frees when the move ends, and wakes the
 * failover waiting for room. Before the fix the source's place was taken
 * for a hold of the move (begun after the failover was told to wait) and
 * woke nothing: integration_node_cap_room failed once in two runs here ("c2 is
 * restored on n2, in the place b1 left"), whenever n2's heartbeat came
 * between the Stop and the end of the move.
 */
START_TEST(a_move_away_frees_its_source_after_a_report_without_it)
{
	struct reg_config cfg = { .rc_down_after_ms = 1000, .rc_clock = fake_clock,
		.rc_on_room = on_room };
	struct reg *r = NULL;
	struct reg_comp a[] = { comp("a1", 1), comp("a2", 1) }, b1 = comp("b1", 1),
			d1 = comp("d1", 1), st = comp("a2", 2);
	struct reg_mig_plan p;

	fake_now = 1000000;
	room_told = 0;
	ck_assert_int_eq(reg_new(&cfg, &r), 0);
	attach(r, "na", "tcp://127.0.0.1:1", a, 2, 1);
	attach(r, "nb", "tcp://127.0.0.1:2", &b1, 1, 1);
	attach(r, "nd", "tcp://127.0.0.1:4", &d1, 1, 1);
	ck_assert_uint_eq(reg_failover_mark(r, "nd", "down"), 1);
	ck_assert(due_again(r, "d1"));
	/* a2 moves from na to nb; na's report without it comes first: it may still roll back. */
	ck_assert_int_eq(reg_migrate_begin(r, "a2", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "a2", "nb", 0), 0);
	report(r, "na", a, 1);
	ck_assert(!due_again(r, "d1"));
	ck_assert_uint_eq(counts(r, NULL, "na", NULL), 2);
	/* The move ends on nb: na has room. */
	reg_migrate_end(r, "a2", "nb", 2, &st);
	ck_assert_uint_eq(counts(r, NULL, "na", NULL), 1);
	ck_assert(due_again(r, "d1"));
	ck_assert_uint_eq(room_told, 1);
	reg_free(r);
}
END_TEST

/*
 * A component restored on n1 (settling: kept listed until a report lists
 * it) whose agent is killed right after and started again (another
 * instance) before n1 is marked down: the new process attaches running
 * nothing and declares it. It is n1's to resume, not kept listed for the
 * new process (before the fix it was: declared and not resumed, "0 to
 * resume", and ran nowhere; integration_mgr_identity 'n1 runs a1 again'
 * failed once here).
 */
START_TEST(a_new_agent_instance_does_not_inherit_a_restore_on_the_old_one)
{
	struct reg *r = new_reg(1000);
	struct reg_comp a1 = comp("a1", 1), decl = comp("a1", 0);
	struct reg_attach a = { .ra_node = "n1", .ra_address = "tcp://127.0.0.1:1",
		.ra_instance = 1, .ra_declared = &decl, .ra_ndeclared = 1 };
	struct rpc_client *to_close = NULL;
	struct reg_ckpt k = ckpt("n1", "a1", 7);
	char node[KEY_NAME_MAX + 1];
	struct reg_mig_plan p;
	size_t nres = 99;

	a.ra_nresumed = &nres;
	ck_assert_int_eq(reg_checkpoint(r, &k, NULL), 0);
	ck_assert_int_eq(reg_attach(r, &a, NULL, &to_close), 0);
	ck_assert_uint_eq(nres, 1);
	/* Resumed there: a1 is listed for n1 (settling). */
	ck_assert_int_eq(reg_migrate_begin(r, "a1", &p), 0);
	reg_migrate_end(r, "a1", "n1", 1, &a1);
	ck_assert(lists(r, "n1", "a1"));
	/* Another process (the first one killed) declares it: n1's to resume again. */
	a.ra_instance = 2;
	a.ra_replaces = 1;
	ck_assert_int_eq(reg_attach(r, &a, NULL, &to_close), 0);
	ck_assert_uint_eq(nres, 1);
	ck_assert(!lists(r, "n1", "a1"));
	ck_assert_int_eq(reg_resume_target(r, "a1", node), 0);
	ck_assert_str_eq(node, "n1");
	reg_free(r);
}
END_TEST

/*
 * n1 starts again declaring c, d, f (no checkpoint of them) and e (one
 * exists). c's and f's resumes found no checkpoint: n1 is told to start
 * them fresh, and ckptctl delete c comes before n1 reports it running (f's
 * first report comes while its delete holds it, and keeps it unowned); d
 * and e are deleted while their resume waits. Each delete holds the component
 * (reg_delete_begin(), which reg_migrate_begin() answers -ENOENT for c and
 * d: no owner, no checkpoint) and drops what waits: nothing is due, nobody
 * is told to start c fresh any more, and n1's first report of c (it started
 * it as told), and its next report of f, are revoked, not taken: without that, c ran deleted, counted
 * on n1 and failed over when n1 died. What brings them back is taken: n1
 * declaring c again at a new attach, d placed on n2 (ckptctl apply).
 */
START_TEST(a_component_deleted_while_its_node_starts_it_stays_deleted)
{
	struct reg *r = new_reg(1000);
	struct reg_comp decl[] = { comp("c", 0), comp("d", 0), comp("e", 0), comp("f", 0) };
	struct reg_comp c0 = comp("c", 0), d1 = comp("d", 1), f0 = comp("f", 0);
	struct reg_ckpt k = ckpt("n1", "e", 3);
	char revoked[2][KEY_NAME_MAX + 1], names[4][KEY_NAME_MAX + 1], node[KEY_NAME_MAX + 1];
	size_t nrev = 99, nf = 9, ne = 9;
	struct reg_beat b = { .rb_comps = &c0, .rb_ncomps = 1, .rb_revoked = revoked,
		.rb_nrevoked = &nrev };
	struct reg_down down[2];
	struct reg_mig_plan p;

	ck_assert_int_eq(reg_checkpoint(r, &k, NULL), 0);
	attach(r, "n2", "tcp://127.0.0.1:2", NULL, 0, 1);
	ck_assert_uint_eq(attach_declaring(r, "n1", NULL, 0, decl, 4), 4);
	ck_assert_int_eq(reg_resume_target(r, "c", node), 0);
	ck_assert_int_eq(reg_resume_fresh(r, "c"), 0);
	ck_assert_int_eq(reg_resume_fresh(r, "f"), 0);
	beat(r, "n1", NULL, 0, &nf, &ne);
	ck_assert_uint_eq(nf, 2); /* n1 starts c and f fresh */

	ck_assert_int_eq(reg_migrate_begin(r, "d", &p), -ENOENT); /* not known to move */
	for (size_t i = 0; i < 4; i++) {
		memset(&p, 0, sizeof(p));
		ck_assert_int_eq(reg_delete_begin(r, decl[i].rc_name, &p), 0);
		ck_assert(p.rm_waiting);
		ck_assert_str_eq(p.rm_owner, "");
		if (i == 3)
			report(r, "n1", &f0, 1); /* f's first report comes during its delete */
		reg_migrate_release(r, decl[i].rc_name);
	}
	/* Nothing waits to be resumed, nobody is told to start c fresh. */
	ck_assert_uint_eq(reg_failover_due(r, fake_now, names, 4), 0);
	ck_assert_int_eq(reg_resume_target(r, "d", node), -ENOENT);
	ck_assert_int_eq(reg_resume_target(r, "e", node), -ENOENT);
	ck_assert_int_eq(reg_resume_fresh(r, "d"), -ENOENT);
	/* A resume of e begun now (its target read before the delete) sees nothing waits. */
	ck_assert_int_eq(reg_migrate_begin(r, "e", &p), 0);
	ck_assert(!p.rm_waiting);
	ck_assert_str_eq(p.rm_owner, "");
	reg_migrate_end(r, "e", NULL, 0, NULL);
	beat(r, "n1", NULL, 0, &nf, &ne);
	ck_assert_uint_eq(nf, 0);
	ck_assert_uint_eq(counts(r, NULL, "n1", NULL), 0);
	/* n1's first report of c, made after it started c as told: revoked. */
	ck_assert_int_eq(reg_beat(r, "n1", &b), 0);
	ck_assert_uint_eq(nrev, 1);
	ck_assert_str_eq(revoked[0], "c");
	ck_assert(!lists(r, "n1", "c"));
	ck_assert_uint_eq(counts(r, NULL, "n1", NULL), 0);
	b.rb_comps = &f0;
	ck_assert_int_eq(reg_beat(r, "n1", &b), 0);
	ck_assert_uint_eq(nrev, 1);
	ck_assert_str_eq(revoked[0], "f");
	ck_assert(!lists(r, "n1", "f"));
	b.rb_comps = &c0;
	/* n1 dies: nothing of it to fail over. */
	fake_now += 2000;
	report(r, "n2", NULL, 0);
	ck_assert_uint_eq(reg_sweep(r, down, 2), 1);
	ck_assert_uint_eq(reg_failover_mark(r, "n1", "down"), 0);
	ck_assert_uint_eq(reg_failover_due(r, fake_now, names, 4), 0);

	/* n1's agent starts again with c in its configuration: resumed, fresh, taken. */
	ck_assert_uint_eq(attach_declaring(r, "n1", NULL, 0, &decl[0], 1), 1);
	ck_assert_int_eq(reg_resume_target(r, "c", node), 0);
	ck_assert_int_eq(reg_resume_fresh(r, "c"), 0);
	nrev = 99;
	ck_assert_int_eq(reg_beat(r, "n1", &b), 0);
	ck_assert_uint_eq(nrev, 0);
	ck_assert(lists(r, "n1", "c"));
	/* d applied: placed on n2, its reports taken. */
	ck_assert_int_eq(reg_place_begin(r, "d", &p), 0);
	ck_assert_int_eq(reg_migrate_toward(r, "d", "n2", 0), 0);
	reg_migrate_end(r, "d", "n2", 1, &d1);
	report(r, "n2", &d1, 1);
	ck_assert(lists(r, "n2", "d"));
	reg_free(r);
}
END_TEST


/*
 * A delete that lands while the failover worker tries a resume (between its
 * reading of the target and its begin): the begin finds nothing to move
 * (-ENOENT, d has no checkpoint) and the wait the worker then records says
 * nothing waits (false), which the manager logs as the end of the resume,
 * not as "failover of d waits". One still pending (c) does wait (true).
 * Without it the manager said "failover of d waits (attempt 1, next in ...)"
 * for a component deleted, and published a pending event for it.
 */
START_TEST(a_wait_recorded_after_a_delete_says_nothing_waits)
{
	struct reg *r = new_reg(1000);
	struct reg_comp decl[] = { comp("c", 0), comp("d", 0) };
	char node[KEY_NAME_MAX + 1], names[4][KEY_NAME_MAX + 1];
	struct reg_mig_plan p;

	attach(r, "n2", "tcp://127.0.0.1:2", NULL, 0, 1);
	ck_assert_uint_eq(attach_declaring(r, "n1", NULL, 0, decl, 2), 2);
	ck_assert_uint_eq(reg_failover_due(r, fake_now, names, 4), 2);
	/* The worker reads d's target, then ckptctl delete d runs to its end. */
	ck_assert(reg_failover_wanted(r, "d"));
	ck_assert_int_eq(reg_resume_target(r, "d", node), 0);
	ck_assert_int_eq(reg_delete_begin(r, "d", &p), 0);
	reg_migrate_release(r, "d");
	ck_assert_int_eq(reg_migrate_begin(r, "d", &p), -ENOENT);
	ck_assert(!reg_failover_wait(r, "d", "failover of d: not found", 5000));
	ck_assert(!reg_failover_wait_room(r, "d", "no room", 5000));
	ck_assert(reg_failover_wait(r, "c", "no node", 0));
	fake_now += 10000;
	ck_assert_uint_eq(reg_failover_due(r, fake_now, names, 4), 0);
	reg_free(r);
}
END_TEST

static Suite *
registry_suite(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, attach_registers_node_up_sorted_by_id);
	tcase_add_test(tc, a_report_older_than_the_restore_does_not_hide_the_moved_component);
	tcase_add_test(tc, reattach_replaces_address_capacity_and_components);
	tcase_add_test(tc, reattach_keeps_the_client_of_an_unchanged_address);
	tcase_add_test(tc, attach_dials_the_client_it_keeps_and_never_the_one_it_hands_back);
	tcase_add_test(tc, heartbeat_from_unknown_node_asks_for_reattach);
	tcase_add_test(tc, silent_node_is_marked_down_once_and_must_reattach);
	tcase_add_test(tc, catalogue_keeps_the_highest_seq_per_component);
	tcase_add_test(tc, a_deleted_catalogue_entry_gives_way_to_the_newest_left);
	tcase_add_test(tc, checkpoint_updates_the_node_component_last_seq);
	tcase_add_test(tc, migration_is_exclusive_per_component);
	tcase_add_test(tc, migration_end_moves_the_component_and_fences_the_old_owner);
	tcase_add_test(tc, attach_with_a_newer_epoch_takes_ownership);
	tcase_add_test(tc, stale_reports_are_revoked_on_heartbeat_and_attach);
	tcase_add_test(tc, same_epoch_on_a_second_node_is_revoked_while_the_owner_is_up);
	tcase_add_test(tc, down_node_components_are_pending_until_placed_or_back);
	tcase_add_test(tc, cordon_is_seen_by_placement_and_drain_lists_owned_components);
	tcase_add_test(tc, a_node_that_attaches_again_without_a_component_gives_it_up);
	tcase_add_test(tc, an_up_node_is_not_taken_by_another_instance);
	tcase_add_test(tc, a_newer_epoch_fences_the_live_owner_and_wants_a_failover_from_it);
	tcase_add_test(tc, a_declared_component_resumes_on_its_node_unless_another_runs_it);
	tcase_add_test(tc, a_plan_names_the_node_starting_a_declared_component);
	tcase_add_test(tc, a_crash_is_noted_when_reported_before_its_restart);
	tcase_add_test(tc, a_failed_component_is_pending_failover_away_from_its_live_node);
	tcase_add_test(tc, a_placed_move_counts_at_its_target_until_a_report_lists_it);
	tcase_add_test(tc, a_failed_or_given_up_move_releases_its_place);
	tcase_add_test(tc, a_component_reported_and_assigned_counts_once);
	tcase_add_test(tc, a_place_that_frees_wakes_the_failover_waiting_for_room);
	tcase_add_test(tc, memory_that_grows_on_a_node_wakes_the_failover_waiting_for_room);
	tcase_add_test(tc, an_attach_resumes_only_the_declared_components_that_fit_under_the_cap);
	tcase_add_test(tc, a_deleted_component_is_not_brought_back_by_a_stale_report);
	tcase_add_test(tc, an_attach_over_the_cap_is_taken_with_what_the_node_last_stored);
	tcase_add_test(tc, a_move_away_frees_its_source_after_a_report_without_it);
	tcase_add_test(tc, a_new_agent_instance_does_not_inherit_a_restore_on_the_old_one);
	tcase_add_test(tc, a_component_deleted_while_its_node_starts_it_stays_deleted);
	tcase_add_test(tc, a_wait_recorded_after_a_delete_says_nothing_waits);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return test_run(registry_suite());
}

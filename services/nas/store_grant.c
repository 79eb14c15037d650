#include "store_int.h"

#include <errno.h>
#include <string.h>

#include <lmdb.h>

#include "ckpt/v1/nas.pb-c.h"

/* ---- grants ---- */

/* A packed GrantRequest: two names and an epoch, with their tags and lengths. */
#define STORE_GRANT_VAL_MAX (2 * (KEY_NAME_MAX + 3) + 11)

struct store_grant_op {
	const char *gp_component;
	const char *gp_node;
	uint64_t gp_epoch;
	bool gp_replaced;
	uint64_t *gp_ret_epoch; /* get: out */
	char *gp_ret_node;      /* get: out, KEY_NAME_MAX + 1 bytes */
	store_grant_fn gp_fn;   /* each */
	void *gp_arg;
	size_t gp_bad;
};

/*
 * Decodes a "grant" value into node and epoch: -EBADMSG unless it is a
 * GrantRequest for the key's component naming a valid node.
 */
static int
store_grant_decode(const MDB_val *k, const MDB_val *v, char *ret_comp, char *ret_node,
    uint64_t *ret_epoch)
{
	Ckpt__V1__GrantRequest *g;
	int rv = -EBADMSG;

	if (k->mv_size == 0 || k->mv_size > KEY_NAME_MAX || v->mv_size > STORE_GRANT_VAL_MAX)
		return -EBADMSG;
	g = ckpt__v1__grant_request__unpack(NULL, v->mv_size, v->mv_data);
	if (g == NULL)
		return -EBADMSG;
	if (strlen(g->component) == k->mv_size &&
	    memcmp(g->component, k->mv_data, k->mv_size) == 0 &&
	    key_name_check(g->component) == 0 && key_name_check(g->node) == 0) {
		strcpy(ret_comp, g->component);
		strcpy(ret_node, g->node);
		*ret_epoch = g->epoch;
		rv = 0;
	}
	ckpt__v1__grant_request__free_unpacked(g, NULL);
	return rv;
}

static int
store_grant_put_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_grant_op *op = arg;
	Ckpt__V1__GrantRequest g = CKPT__V1__GRANT_REQUEST__INIT;
	uint8_t buf[STORE_GRANT_VAL_MAX];
	char comp[KEY_NAME_MAX + 1], node[KEY_NAME_MAX + 1];
	uint64_t epoch;
	MDB_val k = { strlen(op->gp_component), (void *)op->gp_component };
	MDB_val v, old;
	int rv;

	rv = store_rc(mdb_get(txn, s->s_dbi[DB_GRANT], &k, &old));
	if (rv != 0 && rv != -ENOENT)
		return rv;
	op->gp_replaced = rv == 0 && (store_grant_decode(&k, &old, comp, node, &epoch) != 0 ||
	    strcmp(node, op->gp_node) != 0);
	g.component = (char *)op->gp_component;
	g.node = (char *)op->gp_node;
	g.epoch = op->gp_epoch;
	v.mv_size = ckpt__v1__grant_request__pack(&g, buf);
	v.mv_data = buf;
	return store_rc(mdb_put(txn, s->s_dbi[DB_GRANT], &k, &v, 0));
}

int
store_grant_put(struct store *s, const char *component, const char *node, uint64_t epoch,
    bool *ret_replaced, struct store_error *ret_err)
{
	struct store_grant_op op = { .gp_component = component, .gp_node = node,
		.gp_epoch = epoch };
	int rv;

	ret_err->se_msg[0] = '\0';
	rv = store_check_name("component", component, ret_err);
	if (rv == 0)
		rv = store_check_name("node", node, ret_err);
	if (rv == 0 && s->s_readonly)
		rv = -EROFS;
	if (rv == 0)
		rv = store_write(s, store_grant_put_txn, &op, ret_err);
	if (rv != 0)
		return rv;
	if (ret_replaced != NULL)
		*ret_replaced = op.gp_replaced;
	return 0;
}

static int
store_grant_get_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_grant_op *op = arg;
	char comp[KEY_NAME_MAX + 1];
	MDB_val k = { strlen(op->gp_component), (void *)op->gp_component }, v;
	int rv;

	if (s->s_no_grants)
		return -ENOENT;
	rv = store_rc(mdb_get(txn, s->s_dbi[DB_GRANT], &k, &v));
	if (rv == 0)
		rv = store_grant_decode(&k, &v, comp, op->gp_ret_node, op->gp_ret_epoch);
	return rv;
}

int
store_grant_get(struct store *s, const char *component, char ret_node[KEY_NAME_MAX + 1],
    uint64_t *ret_epoch, struct store_error *ret_err)
{
	char node[KEY_NAME_MAX + 1];
	uint64_t epoch = 0;
	struct store_grant_op op = { .gp_component = component, .gp_ret_node = node,
		.gp_ret_epoch = &epoch };
	int rv;

	ret_err->se_msg[0] = '\0';
	rv = store_check_name("component", component, ret_err);
	if (rv == 0)
		rv = store_read(s, store_grant_get_txn, &op);
	if (rv == -ENOENT)
		store_errorf(ret_err, "%s is granted to no node", component);
	else if (rv == -EBADMSG)
		store_errorf(ret_err, "the grant of %s is corrupt", component);
	if (rv != 0)
		return rv;
	strcpy(ret_node, node);
	*ret_epoch = epoch;
	return 0;
}

static int
store_grant_each_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_grant_op *op = arg;
	char comp[KEY_NAME_MAX + 1], node[KEY_NAME_MAX + 1];
	uint64_t epoch;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int rv = 0, rc;

	op->gp_bad = 0;
	if (s->s_no_grants)
		return 0;
	rc = mdb_cursor_open(txn, s->s_dbi[DB_GRANT], &c);
	if (rc != 0)
		return store_rc(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && rv == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (store_grant_decode(&k, &v, comp, node, &epoch) != 0)
			op->gp_bad++;
		else
			rv = op->gp_fn(op->gp_arg, comp, node, epoch);
	}
	if (rv == 0 && rc != MDB_NOTFOUND)
		rv = store_rc(rc);
	mdb_cursor_close(c);
	return rv;
}

int
store_grant_each(struct store *s, store_grant_fn fn, void *arg, size_t *ret_bad,
    struct store_error *ret_err)
{
	struct store_grant_op op = { .gp_fn = fn, .gp_arg = arg };
	int rv;

	ret_err->se_msg[0] = '\0';
	rv = store_read(s, store_grant_each_txn, &op);
	if (rv != 0)
		return rv;
	if (ret_bad != NULL)
		*ret_bad = op.gp_bad;
	return 0;
}

/*
 * In a delete's transaction: when component has no checkpoint left on any
 * node (no "cidx" key under its prefix), its grant goes. One lookup.
 */
int
store_grant_drop_if_gone(struct store *s, MDB_txn *txn, const char *component)
{
	uint8_t prefix[STORE_CIDX_MAX], key[KEY_MAX];
	size_t plen = strlen(component) + 1, klen;
	MDB_val k = { plen - 1, (void *)component };
	int rv;

	memcpy(prefix, component, plen);
	rv = store_db_first(s, txn, DB_CIDX, prefix, plen, key, &klen);
	if (rv != -ENOENT)
		return rv;
	rv = store_rc(mdb_del(txn, s->s_dbi[DB_GRANT], &k, NULL));
	return rv == -ENOENT ? 0 : rv;
}

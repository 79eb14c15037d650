#include "store_int.h"

#include <errno.h>
#include <string.h>

#include <lmdb.h>

/* ---- specs ---- */

struct store_spec_op {
	const char *sp_component;
	const uint8_t *sp_data;   /* put: the value; NULL: delete */
	size_t sp_len;
	bool sp_existed;
	uint64_t sp_epoch;
};

static int
store_spec_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_spec_op *op = arg;
	MDB_val k = { strlen(op->sp_component), (void *)op->sp_component };
	MDB_val v = { op->sp_len, (void *)op->sp_data };
	MDB_val old;
	int rv;

	rv = store_rc(mdb_get(txn, s->s_dbi[DB_SPEC], &k, &old));
	if (rv != 0 && rv != -ENOENT)
		return rv;
	op->sp_existed = rv == 0;
	if (op->sp_data != NULL) {
		struct store_comp c;
		rv = store_comp_get(s, txn, op->sp_component, &c);
		op->sp_epoch = c.sc_epoch;
		return rv != 0 ? rv : store_rc(mdb_put(txn, s->s_dbi[DB_SPEC], &k, &v, 0));
	}
	if (!op->sp_existed)
		return 0;
	return store_rc(mdb_del(txn, s->s_dbi[DB_SPEC], &k, NULL));
}

int
store_spec_put(struct store *s, const char *component, const uint8_t *data, size_t len,
    bool *ret_replaced, uint64_t *ret_epoch, struct store_error *ret_err)
{
	struct store_spec_op op = { component, data, len, false, 0 };
	int rv;

	ret_err->se_msg[0] = '\0';
	rv = store_check_name("component", component, ret_err);
	if (rv == 0 && (len == 0 || len > STORE_SPEC_MAX)) {
		store_errorf(ret_err, "spec of %s has %zu bytes, want 1 to %u", component, len,
		    STORE_SPEC_MAX);
		rv = -EINVAL;
	}
	if (rv == 0 && s->s_readonly)
		rv = -EROFS;
	if (rv == 0)
		rv = store_write(s, store_spec_txn, &op, ret_err);
	if (rv != 0)
		return rv;
	*ret_replaced = op.sp_existed;
	if (ret_epoch != NULL)
		*ret_epoch = op.sp_epoch;
	return 0;
}

int
store_spec_delete(struct store *s, const char *component, bool *ret_existed,
    struct store_error *ret_err)
{
	struct store_spec_op op = { component, NULL, 0, false, 0 };
	int rv;

	ret_err->se_msg[0] = '\0';
	rv = store_check_name("component", component, ret_err);
	if (rv == 0 && s->s_readonly)
		rv = -EROFS;
	/*
	 * A delete: never refused up front, it may use the disk reserve
	 * (store_room.c). ckptctl delete and a failed apply's undo delete a
	 * spec on a full disk as ckptctl rm deletes a checkpoint.
	 */
	if (rv == 0)
		rv = store_write_frees(s, store_spec_txn, &op, ret_err);
	if (rv != 0)
		return rv;
	*ret_existed = op.sp_existed;
	return 0;
}

struct store_spec_read_op {
	const char *sr_component; /* NULL: every spec */
	struct arena *sr_arena;
	struct store_spec *sr_specs;
	size_t sr_n;
};

static int
store_spec_copy(struct store_spec_read_op *op, const MDB_val *v)
{
	struct store_spec *sp = &op->sr_specs[op->sr_n];

	sp->ss_data = arena_memdup(op->sr_arena, v->mv_data, v->mv_size);
	if (sp->ss_data == NULL)
		return -ENOMEM;
	sp->ss_len = v->mv_size;
	op->sr_n++;
	return 0;
}

static int
store_spec_read_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_spec_read_op *op = arg;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int rv, rc;

	op->sr_n = 0;
	if (s->s_no_specs)
		return op->sr_component != NULL ? -ENOENT : 0;
	if (op->sr_component != NULL) {
		k.mv_size = strlen(op->sr_component);
		k.mv_data = (void *)op->sr_component;
		struct store_comp comp;
		rv = store_rc(mdb_get(txn, s->s_dbi[DB_SPEC], &k, &v));
		if (rv == 0)
			rv = store_spec_copy(op, &v);
		if (rv == 0)
			rv = store_comp_get(s, txn, op->sr_component, &comp);
		if (rv == 0)
			op->sr_specs[0].ss_epoch = comp.sc_epoch;
		return rv;
	}
	rv = store_rc(mdb_cursor_open(txn, s->s_dbi[DB_SPEC], &c));
	if (rv != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && rv == 0 &&
	    op->sr_n < STORE_SPECS_MAX; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		rv = store_spec_copy(op, &v);
	if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
		rv = store_rc(rc);
	mdb_cursor_close(c);
	return rv;
}

int
store_spec_get(struct store *s, const char *component, struct arena *a,
    struct store_spec *ret_spec, struct store_error *ret_err)
{
	struct store_spec one;
	struct store_spec_read_op op = { component, a, &one, 0 };
	int rv;

	ret_err->se_msg[0] = '\0';
	rv = store_check_name("component", component, ret_err);
	if (rv == 0)
		rv = store_read(s, store_spec_read_txn, &op);
	if (rv == -ENOENT)
		store_errorf(ret_err, "no spec of %s is stored", component);
	if (rv != 0)
		return rv;
	*ret_spec = one;
	return 0;
}

int
store_spec_list(struct store *s, struct arena *a, struct store_spec **ret_specs, size_t *ret_n,
    struct store_error *ret_err)
{
	struct store_spec_read_op op = { NULL, a, NULL, 0 };
	int rv;

	ret_err->se_msg[0] = '\0';
	op.sr_specs = arena_alloc(a, STORE_SPECS_MAX * sizeof(*op.sr_specs));
	if (op.sr_specs == NULL)
		return -ENOMEM;
	rv = store_read(s, store_spec_read_txn, &op);
	if (rv != 0)
		return rv;
	*ret_specs = op.sr_specs;
	*ret_n = op.sr_n;
	return 0;
}

/* drv_exec: the exec driver over exec.h. See drv_exec.h. */
#include "drv_exec.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

struct drv_inst {
	struct exec_conf *de_conf; /* own copy; de_x points into it */
	struct exec *de_x;
	/* Serialises exec_status, exec_stop and exec_free (exec.h asks for it). */
	pthread_mutex_t de_mu;
	/* What d_status reports, written by d_tick and d_stop (never blocks). */
	atomic_int de_run;         /* enum drv_run */
	atomic_int de_wstatus;
	atomic_int de_pid;
	atomic_ullong de_state_bytes;
	atomic_bool de_stopping;   /* d_stop was called: an end is expected */
};

static int
drv_exec_check(const struct drv_spec *spec, char *err, size_t errlen)
{
	if (spec->sp_exec == NULL) {
		snprintf(err, errlen, "an exec component needs its commands (run, dump, folder): "
		                      "declare it in the agent's config file or with ckptctl apply");
		return -EINVAL;
	}
	return exec_conf_check(spec->sp_exec, err, errlen);
}

static int
drv_exec_start(const struct drv_spec *spec, void *state, size_t len, struct drv_inst **ret_inst,
    char *err, size_t errlen)
{
	struct drv_inst *in;
	int rv;

	rv = drv_exec_check(spec, err, errlen);
	if (rv != 0)
		return rv;
	in = calloc(1, sizeof(*in));
	if (in == NULL)
		return -ENOMEM;
	in->de_conf = exec_conf_dup(spec->sp_exec);
	if (in->de_conf == NULL) {
		free(in);
		return -ENOMEM;
	}
	rv = exec_start(in->de_conf, state, len, &in->de_x, err, errlen);
	if (rv != 0) {
		exec_conf_free(in->de_conf);
		free(in);
		return rv;
	}
	pthread_mutex_init(&in->de_mu, NULL);
	atomic_init(&in->de_run, DRV_RUN_RUNNING);
	atomic_init(&in->de_wstatus, 0);
	atomic_init(&in->de_pid, (int)exec_pid(in->de_x));
	atomic_init(&in->de_state_bytes, state != NULL ? (unsigned long long)len : 0);
	atomic_init(&in->de_stopping, false);
	/* The state was written to the restore step: the driver keeps no copy. */
	free(state);
	*ret_inst = in;
	return 0;
}

/* Records how `run` ended (st from exec_status or exec_stop). */
static void
drv_exec_note_end(struct drv_inst *in, const struct exec_status *st)
{
	int ws;

	if (st->es_state == EXEC_RUNNING)
		return;
	ws = st->es_state == EXEC_EXITED ? W_EXITCODE(st->es_code & 0xff, 0)
	                                 : W_EXITCODE(0, st->es_code & 0x7f);
	atomic_store(&in->de_wstatus, ws);
	if (atomic_load(&in->de_stopping) || (st->es_state == EXEC_EXITED && st->es_code == 0))
		atomic_store(&in->de_run, DRV_RUN_EXITED);
	else
		atomic_store(&in->de_run, DRV_RUN_CRASHED);
}

static void
drv_exec_tick(struct drv_inst *in)
{
	struct exec_status st;

	if (atomic_load(&in->de_run) != DRV_RUN_RUNNING)
		return;
	if (pthread_mutex_trylock(&in->de_mu) != 0)
		return;
	if (exec_status(in->de_x, &st) == 0)
		drv_exec_note_end(in, &st);
	pthread_mutex_unlock(&in->de_mu);
}

static int
drv_exec_checkpoint(struct drv_inst *in, bool final, struct drv_ckpt *ret_ckpt, char *err,
    size_t errlen)
{
	struct drv_ckpt ck = { 0 };
	int rv;

	(void)final;
	drv_exec_tick(in);
	if (atomic_load(&in->de_run) != DRV_RUN_RUNNING) {
		snprintf(err, errlen, "its process %d is no longer running: nothing to dump",
		    atomic_load(&in->de_pid));
		return -ESRCH;
	}
	rv = exec_checkpoint(in->de_x, &ck.ck_buf, &ck.ck_len, err, errlen);
	if (rv != 0)
		return rv;
	atomic_store(&in->de_state_bytes, (unsigned long long)ck.ck_len);
	*ret_ckpt = ck;
	return 0;
}

static int
drv_exec_stop(struct drv_inst *in, unsigned grace_ms)
{
	struct exec_status st;
	int rv;

	atomic_store(&in->de_stopping, true);
	pthread_mutex_lock(&in->de_mu);
	rv = exec_stop(in->de_x, grace_ms, &st);
	if (rv == 0)
		drv_exec_note_end(in, &st);
	pthread_mutex_unlock(&in->de_mu);
	return rv;
}

static void
drv_exec_status(struct drv_inst *in, struct drv_status *ret_status)
{
	struct drv_status st = { 0 };

	st.ds_run = (enum drv_run)atomic_load(&in->de_run);
	st.ds_pid = (pid_t)atomic_load(&in->de_pid);
	st.ds_wstatus = atomic_load(&in->de_wstatus);
	st.ds_state_bytes = atomic_load(&in->de_state_bytes);
	*ret_status = st;
}

static void
drv_exec_free(struct drv_inst *in)
{
	if (in == NULL)
		return;
	pthread_mutex_lock(&in->de_mu);
	exec_free(in->de_x);
	pthread_mutex_unlock(&in->de_mu);
	pthread_mutex_destroy(&in->de_mu);
	exec_conf_free(in->de_conf);
	free(in);
}

const struct drv_ops drv_exec_ops = {
	.d_kind = DRV_EXEC_KIND,
	.d_state_max = DRV_EXEC_STATE_MAX,
	.d_check = drv_exec_check,
	.d_start = drv_exec_start,
	.d_checkpoint = drv_exec_checkpoint,
	.d_ckpt_done = NULL,
	.d_stop = drv_exec_stop,
	.d_status = drv_exec_status,
	.d_tick = drv_exec_tick,
	.d_digest = NULL,
	.d_free = drv_exec_free,
};

#include "nasc_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "methods.h"
#include "pool.h"
#include "zchunk.h"

int
nasc_open(char *const *urls, size_t n, unsigned flags, struct nasc **ret_nasc,
    struct rpc_error *ret_err)
{
	return nasc_open_tls(urls, n, flags, NULL, ret_nasc, ret_err);
}

int
nasc_open_tls(char *const *urls, size_t n, unsigned flags, const struct tls_conf *tls,
    struct nasc **ret_nasc, struct rpc_error *ret_err)
{
	struct nasc *c;
	size_t ok = 0;
	int rv = 0, last = 0;

	if (n == 0 || n > NASC_URLS_MAX) {
		snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "need 1 to %d NAS addresses, got %zu",
		    NASC_URLS_MAX, n);
		ret_err->re_code = CKPT__V1__CODE__INVALID_ARGUMENT;
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->n_cache = calloc(NASC_CACHE_MAX, sizeof(*c->n_cache));
	if (c->n_cache == NULL) {
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->n_cache_mu, NULL);
	pthread_mutex_init(&c->n_small_mu, NULL);
	pthread_mutex_init(&c->n_id_mu, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->n_id_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	rv = chunk_params_init(CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT, CHUNK_MAX_DEFAULT,
	    &c->n_chunking);
	if (rv == 0)
		rv = pool_new(0, &c->n_pool);
	if (rv != 0) {
		nasc_close(c);
		return rv;
	}
	for (size_t i = 0; i < n; i++) {
		rv = rpc_client_open_tls(urls[i], &ckpt__v1__nas__descriptor, flags, 0, tls,
		    &c->n_clients[c->n_count], ret_err);
		if (rv == 0) {
			rpc_client_expect_peer(c->n_clients[c->n_count], "nas"); /* auth.proto roles */
			c->n_count++;
			ok++;
		} else {
			last = rv;
		}
	}
	if (ok == 0) {
		/* Say which service the address is (ckptctl get and put print it). */
		if (strncmp(ret_err->re_msg, "NAS ", 4) != 0) {
			char msg[sizeof(ret_err->re_msg)];
			snprintf(msg, sizeof(msg), "NAS %s", ret_err->re_msg);
			memcpy(ret_err->re_msg, msg, sizeof(msg));
		}
		nasc_close(c);
		return last;
	}
	*ret_nasc = c;
	return 0;
}

void
nasc_close(struct nasc *n)
{
	if (n == NULL)
		return;
	if (n->n_id_started) {
		pthread_mutex_lock(&n->n_id_mu);
		n->n_id_stop = true;
		pthread_cond_signal(&n->n_id_cv);
		pthread_mutex_unlock(&n->n_id_mu);
		for (size_t i = 0; i < n->n_count; i++)
			rpc_client_abort(n->n_clients[i]); /* a Stat in progress */
		pthread_join(n->n_id_thread, NULL);
	}
	for (size_t i = 0; i < n->n_count; i++)
		rpc_client_close(n->n_clients[i]);
	pool_free(n->n_pool);
	for (size_t i = 0; i < NASC_CACHE_MAX; i++)
		nasc_cached_clear(&n->n_cache[i]);
	free(n->n_cache);
	pthread_mutex_destroy(&n->n_cache_mu);
	zchunk_free(n->n_small_z);
	pthread_mutex_destroy(&n->n_small_mu);
	pthread_cond_destroy(&n->n_id_cv);
	pthread_mutex_destroy(&n->n_id_mu);
	free(n);
}

void
nasc_abort(struct nasc *n)
{
	if (n == NULL)
		return;
	atomic_store(&n->n_aborted, true);
	for (size_t i = 0; i < n->n_count; i++)
		rpc_client_abort(n->n_clients[i]);
}

void
nasc_set_rate(struct nasc *n, struct rate *r)
{
	n->n_rate = r;
}

bool
nasc_is_aborted(void *arg)
{
	struct nasc *n = arg;
	return atomic_load(&n->n_aborted);
}

int
nasc_set_chunking(struct nasc *n, uint32_t min, uint32_t avg, uint32_t max)
{
	return chunk_params_init(min, avg, max, &n->n_chunking);
}

void
nasc_set_inline(struct nasc *n, bool on)
{
	atomic_store(&n->n_no_inline, !on);
	atomic_store(&n->n_inline_max, 0);
}

void
nasc_set_format3(struct nasc *n, bool on)
{
	n->n_format3 = on;
}

void
nasc_set_fingerprints(struct nasc *n, bool on)
{
	atomic_store(&n->n_no_fp, !on);
}

void
nasc_get_stats(struct nasc *n, struct nasc_stats *ret_stats)
{
	struct nasc_stats st = {
		.ns_store_bytes = atomic_load(&n->n_store_bytes),
		.ns_put_bytes = atomic_load(&n->n_put_bytes),
		.ns_put_chunks = atomic_load(&n->n_put_chunks),
		.ns_dedup_chunks = atomic_load(&n->n_dedup_chunks),
		.ns_get_bytes = atomic_load(&n->n_get_bytes),
		.ns_sent_bytes = atomic_load(&n->n_sent_bytes),
		.ns_cut_bytes = atomic_load(&n->n_cut_bytes),
		.ns_hashed_bytes = atomic_load(&n->n_hashed_bytes),
		.ns_hinted_stores = atomic_load(&n->n_hinted_stores),
		.ns_reused_chunks = atomic_load(&n->n_reused_chunks),
		.ns_inline_stores = atomic_load(&n->n_inline_stores),
		.ns_held_inline = atomic_load(&n->n_held_inline),
		.ns_fp_stores = atomic_load(&n->n_fp_stores),
		.ns_stale_retries = atomic_load(&n->n_stale_retries),
		.ns_race_retries = atomic_load(&n->n_race_retries),
		.ns_fp_bytes = atomic_load(&n->n_fp_bytes),
		.ns_reused_bytes = atomic_load(&n->n_reused_bytes),
	};
	*ret_stats = st;
}

/* -EXDEV once the store check found the URLs naming different stores. */
static int
nasc_refused(struct nasc *n, struct rpc_error *ret_err)
{
	if (!atomic_load_explicit(&n->n_refused, memory_order_acquire))
		return 0;
	ret_err->re_code = CKPT__V1__CODE__FAILED_PRECONDITION;
	snprintf(ret_err->re_msg, sizeof(ret_err->re_msg), "%s", n->n_refusal);
	return -EXDEV;
}

/* ---- store check ---- */

/*
 * One round: asks every URL whose id is unknown, then compares. 0, -EXDEV
 * (and the list is refused from now on) or -EAGAIN; *ret_err says why.
 */
static int
nasc_check_round(struct nasc *n, struct rpc_error *ret_err)
{
	Ckpt__V1__StatRequest req = CKPT__V1__STAT_REQUEST__INIT;
	size_t first = n->n_count, unknown = n->n_count;
	struct rpc_error err;

	for (size_t i = 0; i < n->n_count; i++) {
		Ckpt__V1__StatReply *rep = NULL;
		if (n->n_ids[i][0] != '\0')
			continue;
		if (rpc_client_call(n->n_clients[i], NAS_STAT, &req.base, n->n_id_timeout_ms,
		        (ProtobufCMessage **)&rep, &err) != 0) {
			if (unknown == n->n_count)
				*ret_err = err;
			unknown = unknown < i ? unknown : i;
			continue;
		}
		/* A NAS older than store ids answers none: its own, distinct from every id. */
		snprintf(n->n_ids[i], sizeof(n->n_ids[i]), "%s",
		    rep->store_id[0] != '\0' ? rep->store_id : "(none: an older ckpt-nas)");
		rpc_reply_free(&rep->base);
	}
	for (size_t i = 0; i < n->n_count; i++) {
		if (n->n_ids[i][0] == '\0')
			continue;
		if (first == n->n_count) {
			first = i;
			continue;
		}
		if (strcmp(n->n_ids[i], n->n_ids[first]) == 0)
			continue;
		snprintf(n->n_refusal, sizeof(n->n_refusal),
		    "NAS %s is store %s but %s is store %s: a NAS list must be addresses of one "
		    "store (replicas or front-ends of the same data); different stores are refused",
		    rpc_client_url(n->n_clients[first]), n->n_ids[first],
		    rpc_client_url(n->n_clients[i]), n->n_ids[i]);
		atomic_store_explicit(&n->n_refused, true, memory_order_release);
		return nasc_refused(n, ret_err);
	}
	if (unknown == n->n_count)
		return 0;
	return -EAGAIN; /* *ret_err: the first that did not answer */
}

static void *
nasc_check_main(void *arg)
{
	struct nasc *n = arg;
	struct rpc_error err;
	struct timespec ts;
	int rv = -EAGAIN;

	pthread_mutex_lock(&n->n_id_mu);
	while (!n->n_id_stop && rv == -EAGAIN) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += NASC_STORE_RETRY_MS / 1000;
		ts.tv_nsec += (long)(NASC_STORE_RETRY_MS % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!n->n_id_stop && pthread_cond_timedwait(&n->n_id_cv, &n->n_id_mu, &ts) == 0) {
		}
		if (n->n_id_stop)
			break;
		pthread_mutex_unlock(&n->n_id_mu);
		rv = nasc_check_round(n, &err);
		pthread_mutex_lock(&n->n_id_mu);
	}
	if (!n->n_id_stop && rv != -EAGAIN && n->n_id_done != NULL)
		n->n_id_done(n->n_id_arg, rv, rv == 0 ? "" : err.re_msg);
	pthread_mutex_unlock(&n->n_id_mu);
	return NULL;
}

int
nasc_check_store(struct nasc *n, unsigned timeout_ms, nasc_store_fn done, void *done_arg,
    struct rpc_error *ret_err)
{
	int rv;

	if (n->n_count < 2 || n->n_id_started)
		return nasc_refused(n, ret_err);
	n->n_id_timeout_ms = timeout_ms;
	n->n_id_done = done;
	n->n_id_arg = done_arg;
	rv = nasc_check_round(n, ret_err);
	if (rv != -EAGAIN)
		return rv;
	if (pthread_create(&n->n_id_thread, NULL, nasc_check_main, n) == 0) {
		pthread_setname_np(n->n_id_thread, "nasc:check");
		n->n_id_started = true;
	}
	return rv;
}

int
nasc_call(struct nasc *n, unsigned method, const ProtobufCMessage *req, unsigned timeout_ms,
    ProtobufCMessage **ret_reply, struct rpc_error *ret_err)
{
	return nasc_call_packed(n, method, req, NULL, timeout_ms, ret_reply, ret_err);
}

int
nasc_call_packed(struct nasc *n, unsigned method, const ProtobufCMessage *req,
    const struct rpc_packed *packed, unsigned timeout_ms, ProtobufCMessage **ret_reply,
    struct rpc_error *ret_err)
{
	int rv = nasc_refused(n, ret_err);

	if (rv != 0)
		return rv;
	rv = -ENOENT;
	for (size_t i = 0; i < n->n_count; i++) {
		rv = rpc_client_call_packed(n->n_clients[i], method, req, packed, timeout_ms,
		    ret_reply, ret_err);
		if (rv != -ECONNREFUSED)
			break;
	}
	return rv;
}

int
nasc_call_view(struct nasc *n, unsigned method, const ProtobufCMessage *req, unsigned timeout_ms,
    struct rpc_view *ret_view, struct rpc_error *ret_err)
{
	int rv = nasc_refused(n, ret_err);

	if (rv != 0)
		return rv;
	rv = -ENOENT;
	for (size_t i = 0; i < n->n_count; i++) {
		rv = rpc_client_call_view(n->n_clients[i], method, req, timeout_ms, ret_view, ret_err);
		if (rv != -ECONNREFUSED)
			break;
	}
	return rv;
}

void
nasc_info_from_pb(const Ckpt__V1__CheckpointInfo *pb, struct nasc_info *ret_info)
{
	struct nasc_info i;
	memset(&i, 0, sizeof(i));
	if (pb != NULL) {
		snprintf(i.ni_node, sizeof(i.ni_node), "%s", pb->node);
		snprintf(i.ni_component, sizeof(i.ni_component), "%s", pb->component);
		snprintf(i.ni_kind, sizeof(i.ni_kind), "%s", pb->kind);
		i.ni_seq = pb->seq;
		i.ni_epoch = pb->epoch;
		i.ni_size = pb->size;
		i.ni_created_unix_ms = pb->created_unix_ms;
		i.ni_chunk_count = pb->chunk_count;
		i.ni_has_sha256 = pb->sha256.len == SHA_LEN;
		if (i.ni_has_sha256)
			memcpy(i.ni_sha256, pb->sha256.data, SHA_LEN);
		i.ni_has_digest = pb->digest.len == SHA_LEN;
		if (i.ni_has_digest)
			memcpy(i.ni_digest, pb->digest.data, SHA_LEN);
		i.ni_chunk_min = pb->chunk_min;
		i.ni_chunk_avg = pb->chunk_avg;
		i.ni_chunk_max = pb->chunk_max;
	}
	*ret_info = i;
}

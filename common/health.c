#include "health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "err.h"
#include "util.h"

struct health {
	nng_http_server *h_srv;
	bool h_srv_started;
	char h_url[LIMIT_URL_MAX];
	struct metrics *h_metrics;
	health_ready_fn h_ready;
	void *h_arg;
	pthread_t h_thread;
	bool h_thread_started;
	pthread_mutex_t h_mu; /* guards what follows */
	pthread_cond_t h_cv;  /* stop, or a readiness check wanted */
	bool h_stopping;
	bool h_kicked;
	bool h_checked;        /* a readiness result exists */
	uint64_t h_checked_ms; /* monotonic, of the last result */
	int h_ready_rv;
	char h_why[HEALTH_REASON_MAX];
};

/* Answers the request of aio with status and body (text/plain unless type). */
static void
health_reply(nng_aio *aio, uint16_t status, const char *type, const char *body, size_t len)
{
	nng_http_res *res;
	int rv;

	rv = nng_http_res_alloc(&res);
	if (rv != 0) {
		nng_aio_finish(aio, rv);
		return;
	}
	rv = nng_http_res_set_status(res, status);
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Content-Type",
		    type != NULL ? type : "text/plain; charset=utf-8");
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Cache-Control", "no-store");
	if (rv == 0)
		rv = nng_http_res_copy_data(res, body, len);
	if (rv != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static struct health *
health_of(nng_aio *aio)
{
	return nng_http_handler_get_data(nng_aio_get_input(aio, 1));
}

static void
health_healthz(nng_aio *aio)
{
	health_reply(aio, 200, NULL, "ok\n", 3);
}

static void
health_readyz(nng_aio *aio)
{
	struct health *h = health_of(aio);
	char line[HEALTH_REASON_MAX + 2];
	uint16_t status = 503;

	pthread_mutex_lock(&h->h_mu);
	if (!h->h_checked)
		snprintf(line, sizeof(line), "starting: readiness not checked yet\n");
	else if (h->h_ready_rv == 0)
		status = 200;
	else
		snprintf(line, sizeof(line), "%s\n", h->h_why);
	if (!h->h_checked || util_now_mono_ms() - h->h_checked_ms >= HEALTH_READY_EVERY_MS) {
		h->h_kicked = true;
		pthread_cond_signal(&h->h_cv);
	}
	pthread_mutex_unlock(&h->h_mu);
	if (status == 200)
		snprintf(line, sizeof(line), "ready\n");
	health_reply(aio, status, NULL, line, strlen(line));
}

static void
health_metrics(nng_aio *aio)
{
	struct health *h = health_of(aio);
	char *text;
	size_t len;
	int rv;

	rv = metrics_render(h->h_metrics, &text, &len);
	if (rv != 0) {
		static const char msg[] = "cannot render the metrics: out of memory\n";
		health_reply(aio, 500, NULL, msg, sizeof(msg) - 1);
		return;
	}
	health_reply(aio, 200, METRICS_CONTENT_TYPE, text, len);
	free(text);
}

/* The readiness thread: runs h_ready every period, or sooner when /readyz asks. */
static void *
health_main(void *arg)
{
	struct health *h = arg;

	pthread_mutex_lock(&h->h_mu);
	while (!h->h_stopping) {
		char why[HEALTH_REASON_MAX] = "";
		struct timespec ts;
		int rv = 0;

		pthread_mutex_unlock(&h->h_mu);
		if (h->h_ready != NULL)
			rv = h->h_ready(h->h_arg, why, sizeof(why));
		if (rv != 0 && why[0] == '\0')
			snprintf(why, sizeof(why), "not ready: %s", err_str(rv));
		pthread_mutex_lock(&h->h_mu);
		h->h_ready_rv = rv;
		memcpy(h->h_why, why, sizeof(why));
		h->h_checked = true;
		h->h_checked_ms = util_now_mono_ms();
		h->h_kicked = false;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += HEALTH_READY_EVERY_MS / 1000;
		ts.tv_nsec += (long)(HEALTH_READY_EVERY_MS % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!h->h_stopping && !h->h_kicked &&
		    pthread_cond_timedwait(&h->h_cv, &h->h_mu, &ts) != ETIMEDOUT) {
		}
	}
	pthread_mutex_unlock(&h->h_mu);
	return NULL;
}

/* Registers path with cb on h's server. */
static int
health_route(struct health *h, const char *path, void (*cb)(nng_aio *))
{
	nng_http_handler *hd;
	int rv;

	rv = nng_http_handler_alloc(&hd, path, cb);
	if (rv != 0)
		return rv;
	rv = nng_http_handler_set_data(hd, h, NULL);
	if (rv == 0)
		rv = nng_http_handler_collect_body(hd, true, 0); /* GET only: no body */
	if (rv == 0)
		rv = nng_http_server_add_handler(h->h_srv, hd);
	if (rv != 0)
		nng_http_handler_free(hd); /* the server owns it once added */
	return rv;
}

static int
health_sync_init(struct health *h)
{
	pthread_condattr_t ca;
	int rv;

	rv = pthread_mutex_init(&h->h_mu, NULL);
	if (rv != 0)
		return -rv;
	rv = pthread_condattr_init(&ca);
	if (rv == 0) {
		rv = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (rv == 0)
			rv = pthread_cond_init(&h->h_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (rv != 0) {
		pthread_mutex_destroy(&h->h_mu);
		return -rv;
	}
	return 0;
}

/* The bound URL: the configured one with the port the server got. */
static void
health_bound_url(struct health *h, const nng_url *u)
{
	nng_sockaddr sa;
	int port = 0;

	if (nng_http_server_get_addr(h->h_srv, &sa) == 0) {
		if (sa.s_family == NNG_AF_INET)
			port = ntohs(sa.s_in.sa_port);
		else if (sa.s_family == NNG_AF_INET6)
			port = ntohs(sa.s_in6.sa_port);
	}
	if (port == 0)
		port = atoi(u->u_port);
	if (strchr(u->u_hostname, ':') != NULL)
		snprintf(h->h_url, sizeof(h->h_url), "%s://[%s]:%d", u->u_scheme, u->u_hostname, port);
	else
		snprintf(h->h_url, sizeof(h->h_url), "%s://%s:%d", u->u_scheme, u->u_hostname, port);
}

int
health_url_check(const char *url, char *err, size_t errlen)
{
	nng_url *u = NULL;
	int rv;

	if (strncmp(url, "http://", 7) != 0) {
		snprintf(err, errlen, "--http %s: want http://HOST:PORT", url);
		return -EINVAL;
	}
	rv = nng_url_parse(&u, url);
	if (rv != 0) {
		snprintf(err, errlen, "--http %s: %s", url, nng_strerror(rv));
		return -EINVAL;
	}
	nng_url_free(u);
	return 0;
}

int
health_start(const struct health_config *cfg, struct health **ret_health, char *err,
    size_t errlen)
{
	struct health *h;
	nng_url *u = NULL;
	int rv;

	rv = health_url_check(cfg->hc_url, err, errlen);
	if (rv != 0)
		return rv;
	rv = nng_url_parse(&u, cfg->hc_url);
	if (rv != 0) {
		snprintf(err, errlen, "--http %s: %s", cfg->hc_url, nng_strerror(rv));
		return err_from_nng(rv);
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		nng_url_free(u);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	h->h_metrics = cfg->hc_metrics;
	h->h_ready = cfg->hc_ready;
	h->h_arg = cfg->hc_arg;
	rv = health_sync_init(h);
	if (rv != 0) {
		free(h);
		nng_url_free(u);
		snprintf(err, errlen, "cannot create a lock: %s", err_str(rv));
		return rv;
	}
	rv = nng_http_server_hold(&h->h_srv, u);
	if (rv == 0)
		rv = health_route(h, "/healthz", health_healthz);
	if (rv == 0)
		rv = health_route(h, "/readyz", health_readyz);
	if (rv == 0 && h->h_metrics != NULL)
		rv = health_route(h, "/metrics", health_metrics);
	if (rv == 0)
		rv = nng_http_server_start(h->h_srv);
	if (rv != 0) {
		snprintf(err, errlen, "cannot serve HTTP on %s: %s", cfg->hc_url, nng_strerror(rv));
		rv = err_from_nng(rv);
		goto out_stop;
	}
	h->h_srv_started = true;
	health_bound_url(h, u);
	rv = -pthread_create(&h->h_thread, NULL, health_main, h);
	if (rv != 0) {
		snprintf(err, errlen, "cannot start the readiness thread: %s", err_str(rv));
		goto out_stop;
	}
	pthread_setname_np(h->h_thread, "health");
	h->h_thread_started = true;
	nng_url_free(u);
	*ret_health = h;
	return 0;

out_stop:
	nng_url_free(u);
	health_stop(h);
	return rv;
}

const char *
health_url(const struct health *h)
{
	return h->h_url;
}

void
health_stop(struct health *h)
{
	if (h == NULL)
		return;
	/* First the server: no handler runs (or reads h) once it is released. */
	if (h->h_srv != NULL) {
		if (h->h_srv_started)
			nng_http_server_stop(h->h_srv);
		nng_http_server_release(h->h_srv);
	}
	pthread_mutex_lock(&h->h_mu);
	h->h_stopping = true;
	pthread_cond_signal(&h->h_cv);
	pthread_mutex_unlock(&h->h_mu);
	if (h->h_thread_started)
		pthread_join(h->h_thread, NULL);
	pthread_cond_destroy(&h->h_cv);
	pthread_mutex_destroy(&h->h_mu);
	free(h);
}

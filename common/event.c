#include "event.h"
#include "limit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include "err.h"
#include "sock.h"

#define EVENT_RECV_MAX (64u << 10)

struct event_pub {
	nng_socket ep_sock;
	nng_listener ep_listener;
	char ep_url[LIMIT_URL_MAX];
};

struct event_sub {
	nng_socket es_sock;
};

int
event_pub_open(const char *url, const struct tls_conf *tls, struct event_pub **ret_pub,
    char *err, size_t errlen)
{
	struct event_pub *p;
	nng_listener l;
	int rv, port = 0;

	rv = tls_url_check(tls, url, err, errlen);
	if (rv != 0)
		return rv;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	rv = err_from_nng(nng_pub0_open(&p->ep_sock));
	if (rv != 0) {
		free(p);
		snprintf(err, errlen, "%s: %s", url, err_str(rv));
		return rv;
	}
	rv = err_from_nng(nng_listener_create(&l, p->ep_sock, url));
	if (rv == 0)
		rv = tls_listener_setup(tls, l, url, err, errlen);
	else
		snprintf(err, errlen, "%s: %s", url, err_str(rv));
	if (rv == 0) {
		rv = err_from_nng(nng_listener_start(l, 0));
		if (rv != 0)
			snprintf(err, errlen, "%s: %s", url, err_str(rv));
	}
	if (rv != 0) {
		nng_close(p->ep_sock);
		free(p);
		return rv;
	}
	p->ep_listener = l;
	snprintf(p->ep_url, sizeof(p->ep_url), "%s", url);
	if ((strncmp(url, "tcp", 3) == 0 || strncmp(url, "tls+tcp", 7) == 0) &&
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
		const char *colon = strrchr(url, ':');
		if (colon != NULL)
			snprintf(p->ep_url, sizeof(p->ep_url), "%.*s:%d", (int)(colon - url), url, port);
	}
	*ret_pub = p;
	return 0;
}

nng_listener
event_pub_listener(const struct event_pub *p)
{
	return p->ep_listener;
}

const char *
event_pub_url(const struct event_pub *p)
{
	return p->ep_url;
}

int
event_publish(struct event_pub *p, const char *topic, const Ckpt__V1__Event *ev)
{
	size_t tlen = strlen(topic), elen = ckpt__v1__event__get_packed_size(ev);
	nng_msg *m;
	uint8_t *b;
	int rv;

	if (tlen == 0 || tlen >= EVENT_TOPIC_MAX || memchr(topic, 0, tlen) != NULL)
		return -EINVAL;
	rv = err_from_nng(nng_msg_alloc(&m, tlen + 1 + elen));
	if (rv != 0)
		return rv;
	b = nng_msg_body(m);
	memcpy(b, topic, tlen);
	b[tlen] = 0;
	ckpt__v1__event__pack(ev, b + tlen + 1);
	rv = err_from_nng(nng_sendmsg(p->ep_sock, m, NNG_FLAG_NONBLOCK));
	if (rv != 0)
		nng_msg_free(m);
	return rv;
}

void
event_pub_close(struct event_pub *p)
{
	if (p == NULL)
		return;
	sock_close(p->ep_sock);
	free(p);
}

int
event_sub_open(const char *url, const char *prefix, unsigned flags,
    const struct tls_conf *tls, struct event_sub **ret_sub, char *err, size_t errlen)
{
	struct event_sub *s;
	nng_dialer d;
	int rv;

	rv = tls_url_check(tls, url, err, errlen);
	if (rv != 0)
		return rv;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	rv = err_from_nng(nng_sub0_open(&s->es_sock));
	if (rv != 0) {
		free(s);
		return rv;
	}
	nng_socket_set_size(s->es_sock, NNG_OPT_RECVMAXSZ, EVENT_RECV_MAX);
	nng_socket_set_ms(s->es_sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(s->es_sock, NNG_OPT_RECONNMAXT, 2000);
	rv = err_from_nng(nng_socket_set(s->es_sock, NNG_OPT_SUB_SUBSCRIBE, prefix, strlen(prefix)));
	if (rv == 0)
		rv = err_from_nng(nng_dialer_create(&d, s->es_sock, url));
	if (rv != 0)
		snprintf(err, errlen, "%s: %s", url, err_str(rv));
	if (rv == 0)
		rv = tls_dialer_setup(tls, d, url, err, errlen);
	if (rv == 0) {
		rv = err_from_nng(nng_dialer_start(d, (flags & EVENT_SUB_DIAL_NOW) ? 0 : NNG_FLAG_NONBLOCK));
		if (rv != 0)
			snprintf(err, errlen, "%s: %s%s", url, err_str(rv),
			    tls_url_is_tls(url) && rv != -ECONNREFUSED ?
				" (TLS: is our certificate signed by the peer's CA and valid?)" : "");
	}
	if (rv != 0) {
		nng_close(s->es_sock);
		free(s);
		return rv;
	}
	*ret_sub = s;
	return 0;
}

int
event_sub_recv(struct event_sub *s, unsigned timeout_ms, char *topic_buf, Ckpt__V1__Event **ret_ev)
{
	Ckpt__V1__Event *ev;
	const uint8_t *b, *z;
	nng_msg *m;
	size_t len, tlen;
	int rv;

	nng_socket_set_ms(s->es_sock, NNG_OPT_RECVTIMEO, (nng_duration)timeout_ms);
	rv = err_from_nng(nng_recvmsg(s->es_sock, &m, 0));
	if (rv != 0)
		return rv;
	b = nng_msg_body(m);
	len = nng_msg_len(m);
	z = memchr(b, 0, len);
	tlen = z != NULL ? (size_t)(z - b) : 0;
	if (z == NULL || tlen == 0 || tlen >= EVENT_TOPIC_MAX) {
		nng_msg_free(m);
		return -EBADMSG;
	}
	ev = ckpt__v1__event__unpack(NULL, len - tlen - 1, z + 1);
	if (ev == NULL) {
		nng_msg_free(m);
		return -EBADMSG;
	}
	memcpy(topic_buf, b, tlen);
	topic_buf[tlen] = '\0';
	nng_msg_free(m);
	*ret_ev = ev;
	return 0;
}

void
event_sub_close(struct event_sub *s)
{
	if (s == NULL)
		return;
	sock_close(s->es_sock);
	free(s);
}

/*
 * event: the manager's PUB/SUB event stream.
 *
 * Message = topic text, one NUL byte, encoded ckpt.v1.Event (see
 * proto/ckpt/v1/events.proto). Subscribers filter by topic prefix.
 * PUB drops what it sends before a subscriber's connection is up.
 */
#ifndef CKPT_EVENT_H
#define CKPT_EVENT_H

#include <stddef.h>

#include "ckpt/v1/events.pb-c.h"
#include "tls.h"

#define EVENT_TOPIC_MAX 192

struct event_pub;
struct event_sub;

/*
 * Listens on url following the TLS settings tls (tls.h; NULL: none). On
 * failure a negative errno and the reason in err (-EPERM: plain tcp://
 * beyond loopback refused).
 */
int event_pub_open(const char *url, const struct tls_conf *tls, struct event_pub **ret_pub,
    char *err, size_t errlen);
/* The URL actually bound (port resolved). */
const char *event_pub_url(const struct event_pub *p);
/* The listener behind p, for tls_watch_poll() (refused TLS handshakes on the events address). */
nng_listener event_pub_listener(const struct event_pub *p);
/* Thread-safe. Never blocks: with no subscriber the event is dropped. */
int event_publish(struct event_pub *p, const char *topic, const Ckpt__V1__Event *ev);
void event_pub_close(struct event_pub *p);

#define EVENT_SUB_DIAL_NOW 0x1u

/*
 * Subscribes to url; prefix "" receives everything. Without flags the dial
 * goes on in the background. With EVENT_SUB_DIAL_NOW it fails at once
 * (-ECONNREFUSED...) when url cannot be reached, and on success the
 * connection is up, so events published from then on are not lost to the
 * slow-joiner window. Either way it redials after a disconnect. tls and err
 * as for event_pub_open(); a refused address is never dialed.
 */
int event_sub_open(const char *url, const char *prefix, unsigned flags,
    const struct tls_conf *tls, struct event_sub **ret_sub, char *err, size_t errlen);
/*
 * Waits up to timeout_ms for the next event. On success *ret_ev must be freed
 * with ckpt__v1__event__free_unpacked(ev, NULL); topic is copied into
 * topic_buf (EVENT_TOPIC_MAX). -ETIMEDOUT when nothing came, -EBADMSG for a
 * malformed message (skipped).
 */
int event_sub_recv(struct event_sub *s, unsigned timeout_ms, char *topic_buf,
    Ckpt__V1__Event **ret_ev);
void event_sub_close(struct event_sub *s);

#endif

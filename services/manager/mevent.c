#include "mevent.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "sha.h"
#include "util.h"

static const char *
mev_str(const char *s)
{
	return s != NULL ? s : "";
}

int
mev_topic(const struct mev *e, char *buf)
{
	const char *k = e->me_kind;
	int n;

	if (strncmp(k, "node.", 5) == 0)
		n = snprintf(buf, EVENT_TOPIC_MAX, "ckpt.%s/%s", k, mev_str(e->me_node));
	else if (strcmp(k, MEV_STORED) == 0)
		n = snprintf(buf, EVENT_TOPIC_MAX, "ckpt.%s/%s/%s", k, mev_str(e->me_node),
		    mev_str(e->me_component));
	else if (strncmp(k, "migration.", 10) == 0 || strncmp(k, "failover.", 9) == 0 ||
	    strncmp(k, "resume.", 7) == 0 || strncmp(k, "component.", 10) == 0 ||
	    strncmp(k, "apply.", 6) == 0 || strncmp(k, "spec.", 5) == 0)
		n = snprintf(buf, EVENT_TOPIC_MAX, "ckpt.%s/%s", k, mev_str(e->me_component));
	else
		return -EINVAL;
	return n > 0 && n < EVENT_TOPIC_MAX ? 0 : -EINVAL;
}

void
mev_publish(struct event_pub *pub, const struct mev *e)
{
	Ckpt__V1__Event ev = CKPT__V1__EVENT__INIT;
	char topic[EVENT_TOPIC_MAX];
	int rv;

	if (pub == NULL)
		return;
	rv = mev_topic(e, topic);
	if (rv != 0) {
		LOG_WARN("cannot publish %s event: no topic for it", e->me_kind);
		return;
	}
	ev.kind = (char *)e->me_kind;
	ev.node = (char *)mev_str(e->me_node);
	ev.component = (char *)mev_str(e->me_component);
	ev.seq = e->me_seq;
	if (e->me_sha256 != NULL) {
		ev.sha256.data = (uint8_t *)e->me_sha256;
		ev.sha256.len = SHA_LEN;
	}
	ev.target = (char *)mev_str(e->me_target);
	ev.message = (char *)mev_str(e->me_message);
	ev.time_unix_ms = util_now_unix_ms();
	rv = event_publish(pub, topic, &ev);
	if (rv != 0)
		LOG_WARN("cannot publish event %s: %s", topic, err_str(rv));
}

#include "cmd_watch.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ckpt/v1/manager.pb-c.h"
#include "err.h"
#include "event.h"
#include "jout.h"
#include "sha.h"
#include "util.h"

#define WATCH_PREFIX_DEFAULT "ckpt."
/* How often the loop looks for a signal or the end of --for. */
#define WATCH_POLL_MS 100u

static int
watch_print(struct ctl *c, const char *topic, const Ckpt__V1__Event *ev)
{
	char hex[SHA_HEX_LEN + 1], buf[1024];

	if (c->c_conf.cf_json) {
		json_t *o = jout_object();
		jout_set(o, "topic", jout_str(topic));
		jout_set(o, "kind", jout_str(ev->kind));
		jout_set(o, "node", jout_str(ev->node));
		jout_set(o, "component", jout_str(ev->component));
		jout_set(o, "seq", jout_u64(ev->seq));
		jout_set(o, "sha256", jout_sha(ev->sha256.data, ev->sha256.len));
		jout_set(o, "target", jout_str(ev->target));
		jout_set(o, "message", jout_str(ev->message));
		jout_set(o, "time_unix_ms", jout_u64(ev->time_unix_ms));
		return jout_print(c, o, true);
	}
	fputs(ctl_clean(topic, buf, sizeof(buf)), stdout);
	if (ev->seq != 0)
		printf(" seq=%" PRIu64, ev->seq);
	if (ev->sha256.len == SHA_LEN)
		printf(" sha256=%s", ctl_hex(ev->sha256.data, ev->sha256.len, hex));
	if (ev->target[0] != '\0')
		printf(" target=%s", ctl_clean(ev->target, buf, sizeof(buf)));
	if (ev->message[0] != '\0')
		printf(" %s", ctl_clean(ev->message, buf, sizeof(buf)));
	putchar('\n');
	return ctl_flush_stdout(c);
}

/* Opens the subscription on the events URL the manager announces. */
static int
watch_subscribe(struct ctl *c, const char *prefix, struct event_sub **ret_sub)
{
	Ckpt__V1__InfoRequest req = CKPT__V1__INFO_REQUEST__INIT;
	Ckpt__V1__InfoReply *rep = NULL;
	char url[LIMIT_URL_MAX], why[512];
	int rv;

	rv = ctl_mgr_call(c, MGR_INFO, &req.base, ctl_timeout(c), (ProtobufCMessage **)&rep);
	if (rv != 0)
		return rv;
	if (rep->events[0] == '\0' || strlen(rep->events) >= sizeof(url)) {
		rpc_reply_free(&rep->base);
		return ctl_fail(c, -ENOENT, "%s: Manager.Info: the manager announces no events address",
		    c->c_conf.cf_manager);
	}
	ctl_url_dialable(rep->events, c->c_conf.cf_manager, url, sizeof(url));
	rpc_reply_free(&rep->base);
	rv = event_sub_open(url, prefix, EVENT_SUB_DIAL_NOW, &c->c_conf.cf_tls, ret_sub, why,
	    sizeof(why));
	if (rv != 0)
		return ctl_fail(c, rv, "cannot subscribe to events at %s: %s", url, why);
	return 0;
}

int
cmd_watch(struct ctl *c, int argc, char **argv)
{
	uint64_t count = 0, for_ms = 0, seen = 0, deadline = 0;
	bool count_seen = false, for_seen = false;
	const struct ctl_flag flags[] = {
		{ NULL, "--count", CTL_FLAG_U64, &count, &count_seen },
		{ NULL, "--for", CTL_FLAG_DURATION, &for_ms, &for_seen },
	};
	const struct timespec zero = { 0, 0 };
	const char *prefix = WATCH_PREFIX_DEFAULT;
	struct event_sub *sub = NULL;
	sigset_t sigs;
	char *pos[1];
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, flags, 2, pos, 0, 1, &npos);
	if (rv != 0)
		return rv;
	if (npos == 1)
		prefix = pos[0];
	if (strlen(prefix) >= EVENT_TOPIC_MAX)
		return ctl_usage(c, "watch: PREFIX is longer than %d bytes", EVENT_TOPIC_MAX - 1);
	if (count_seen && count == 0)
		return ctl_usage(c, "watch: --count must be at least 1");
	/*
	 * SIGINT and SIGTERM end the watch with exit 0: block them before any
	 * socket (and so any nng thread) exists, and look for them between
	 * receives.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	rv = watch_subscribe(c, prefix, &sub);
	if (rv != 0)
		goto out;
	if (for_seen)
		deadline = util_now_mono_ms() + for_ms;
	while (!count_seen || seen < count) {
		Ckpt__V1__Event *ev = NULL;
		char topic[EVENT_TOPIC_MAX];
		unsigned wait = WATCH_POLL_MS;

		if (sigtimedwait(&sigs, NULL, &zero) > 0)
			break;
		if (for_seen) {
			uint64_t now = util_now_mono_ms();
			if (now >= deadline)
				break;
			if (deadline - now < wait)
				wait = (unsigned)(deadline - now);
		}
		rv = event_sub_recv(sub, wait, topic, &ev);
		if (rv == -ETIMEDOUT || rv == -EBADMSG) {
			if (rv == -EBADMSG)
				ctl_warn("skipped a malformed event");
			rv = 0;
			continue;
		}
		if (rv != 0) {
			ctl_fail(c, rv, "receiving events: %s", err_str(rv));
			break;
		}
		rv = watch_print(c, topic, ev);
		ckpt__v1__event__free_unpacked(ev, NULL);
		if (rv != 0)
			break;
		seen++;
	}
out:
	event_sub_close(sub);
	return rv;
}

/*
 * ckpt-badinput URL SERVICE: sends a table of malformed requests to a running
 * service (SERVICE: nas, manager or agent), each followed by a valid request
 * that must succeed. Prints one "ok"/"not ok" line per check and the closing
 * "N passed, N failed" line; exits 1 if anything failed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/agent.pb-c.h"
#include "ckpt/v1/manager.pb-c.h"
#include "ckpt/v1/nas.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "err.h"
#include "rpc.h"

static int passed, failed;

static void
check(int ok, const char *what, const char *detail)
{
	if (ok)
		passed++;
	else
		failed++;
	printf("%s - %s%s%s\n", ok ? "ok" : "not ok", what, detail[0] ? ": " : "", detail);
}

struct bad_case {
	const char *what;
	size_t len;
	const uint8_t *data;
	int want; /* expected wire code */
};

struct svc {
	const char *name;
	const ProtobufCServiceDescriptor *desc;
	unsigned valid_method;
	const ProtobufCMessage *valid_req;
};

static int
valid_call(struct rpc_client *c, const struct svc *s, char *msg, size_t msglen)
{
	ProtobufCMessage *rep = NULL;
	struct rpc_error err;
	int rv = rpc_client_call(c, s->valid_method, s->valid_req, 5000, &rep, &err);
	rpc_reply_free(rep);
	snprintf(msg, msglen, "%s", rv == 0 ? "" : err.re_msg);
	return rv;
}

/* Sends bytes; returns the reply's code, or -1 when no reply came. */
static int
raw(struct rpc_client *c, const void *data, size_t len, unsigned timeout_ms, char *msg, size_t msglen)
{
	struct rpc_error err;
	void *buf = NULL;
	size_t blen = 0;
	Ckpt__V1__Reply *r;
	int code;

	if (rpc_client_call_raw(c, data, len, timeout_ms, &buf, &blen, &err) != 0) {
		snprintf(msg, msglen, "no reply (%s)", err.re_msg);
		return -1;
	}
	r = ckpt__v1__reply__unpack(NULL, blen, buf);
	free(buf);
	if (r == NULL) {
		snprintf(msg, msglen, "undecodable reply");
		return -2;
	}
	code = (int)r->code;
	snprintf(msg, msglen, "%s: %s", err_code_name(r->code), r->message);
	ckpt__v1__reply__free_unpacked(r, NULL);
	return code;
}

static size_t
envelope(uint32_t method, const char *service, const void *body, size_t blen, uint8_t *out)
{
	Ckpt__V1__Request env = CKPT__V1__REQUEST__INIT;
	env.method = method;
	env.service = (char *)service;
	env.body.data = (uint8_t *)body;
	env.body.len = blen;
	return ckpt__v1__request__pack(&env, out);
}

int
main(int argc, char **argv)
{
	Ckpt__V1__StatRequest nas_stat = CKPT__V1__STAT_REQUEST__INIT;
	Ckpt__V1__InfoRequest mgr_info = CKPT__V1__INFO_REQUEST__INIT;
	Ckpt__V1__StatusRequest agent_status = CKPT__V1__STATUS_REQUEST__INIT;
	const struct svc svcs[] = {
		{ "nas", &ckpt__v1__nas__descriptor, 4, &nas_stat.base },
		{ "manager", &ckpt__v1__manager__descriptor, 6, &mgr_info.base },
		{ "agent", &ckpt__v1__agent__descriptor, 3, &agent_status.base },
	};
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x07, 0x13 };
	static const uint8_t wrong_type[] = { 0x0a, 0x01, 'x', 0x08, 0x05 };
	static const uint8_t truncated[] = { 0x0a, 0x20, 'd', 'u', 'm' };
	const struct svc *s = NULL;
	struct rpc_client *c;
	struct rpc_error err;
	uint8_t buf[256];
	char msg[600], vmsg[300], what[128];
	size_t n;
	int code;

	if (argc != 3) {
		fprintf(stderr, "usage: ckpt-badinput URL nas|manager|agent\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(svcs) / sizeof(svcs[0]); i++)
		if (strcmp(argv[2], svcs[i].name) == 0)
			s = &svcs[i];
	if (s == NULL) {
		fprintf(stderr, "ckpt-badinput: unknown service '%s'\n", argv[2]);
		return 2;
	}
	if (rpc_client_open(argv[1], s->desc, RPC_CLIENT_DIAL_NOW, 64u << 20, &c, &err) != 0) {
		fprintf(stderr, "ckpt-badinput: %s\n", err.re_msg);
		return 1;
	}
	check(valid_call(c, s, vmsg, sizeof(vmsg)) == 0, "valid request before the bad ones", vmsg);

	struct bad_case cases[8];
	size_t nc = 0;
	static uint8_t env_unknown[64], env_service[64], env_wrong[64], env_trunc[64], env_empty[64];

	cases[nc++] = (struct bad_case){ "garbage bytes", sizeof(garbage), garbage,
		CKPT__V1__CODE__INVALID_ARGUMENT };
	n = envelope(200, "", NULL, 0, env_unknown);
	cases[nc++] = (struct bad_case){ "unknown method 200", n, env_unknown,
		CKPT__V1__CODE__UNIMPLEMENTED };
	n = envelope(0, "ckpt.v1.Nope", NULL, 0, env_service);
	cases[nc++] = (struct bad_case){ "wrong service name", n, env_service,
		CKPT__V1__CODE__INVALID_ARGUMENT };
	n = envelope(0, s->desc->name, wrong_type, sizeof(wrong_type), env_wrong);
	cases[nc++] = (struct bad_case){ "wrong field type in method 0", n, env_wrong,
		CKPT__V1__CODE__INVALID_ARGUMENT };
	n = envelope(0, s->desc->name, truncated, sizeof(truncated), env_trunc);
	cases[nc++] = (struct bad_case){ "truncated protobuf in method 0", n, env_trunc,
		CKPT__V1__CODE__INVALID_ARGUMENT };
	n = envelope(0, s->desc->name, NULL, 0, env_empty);
	cases[nc++] = (struct bad_case){ "method 0 with every field missing", n, env_empty,
		CKPT__V1__CODE__INVALID_ARGUMENT };

	for (size_t i = 0; i < nc; i++) {
		code = raw(c, cases[i].data, cases[i].len, 5000, msg, sizeof(msg));
		snprintf(what, sizeof(what), "%s: %s answers %s", s->name, cases[i].what,
		    err_code_name(cases[i].want));
		check(code == cases[i].want, what, msg);
		snprintf(what, sizeof(what), "%s: valid request after %s", s->name, cases[i].what);
		check(valid_call(c, s, vmsg, sizeof(vmsg)) == 0, what, vmsg);
	}

	/* Oversized: 20 MiB, beyond the default 16 MiB receive limit: dropped. */
	{
		size_t big = 20u << 20;
		uint8_t *b = calloc(1, big);
		n = envelope(0, s->desc->name, NULL, 0, buf);
		memcpy(b, buf, n);
		code = raw(c, b, big, 1500, msg, sizeof(msg));
		free(b);
		snprintf(what, sizeof(what), "%s: 20 MiB message is dropped", s->name);
		check(code == -1, what, msg);
		/*
		 * The service drops the connection that carried it; a new one must be
		 * served. (The old REQ socket redials with back-off and may resend the
		 * oversized request on each new connection until its context closes.)
		 */
		rpc_client_close(c);
		if (rpc_client_open(argv[1], s->desc, RPC_CLIENT_DIAL_NOW, 64u << 20, &c, &err) != 0) {
			fprintf(stderr, "ckpt-badinput: %s\n", err.re_msg);
			return 1;
		}
		snprintf(what, sizeof(what), "%s: valid request after the oversized message", s->name);
		check(valid_call(c, s, vmsg, sizeof(vmsg)) == 0, what, vmsg);
	}
	rpc_client_close(c);
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}

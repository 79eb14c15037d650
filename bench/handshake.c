/*
 * bench_handshake: time of a new connection up to its first reply, against a
 * NAS: rpc_client_open_tls() dialing at once (TCP connect, TLS handshake
 * when the URL is tls+tcp://, SP header exchange) then one Nas.Stat, then
 * close. Prints one line per run, microseconds: open, first reply, total.
 * bench/tls.sh runs it against a plain and a TLS NAS and takes the medians.
 *
 *   bench_handshake URL RUNS [CA CERT KEY]
 *
 * The TLS files are read and parsed on every open (tls.h: a new
 * nng_tls_config per endpoint), as a service's new client does: that cost
 * is part of the figure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "methods.h"
#include "rpc.h"
#include "tls.h"
#include "util.h"

#include "ckpt/v1/nas.pb-c.h"

static uint64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int
main(int argc, char **argv)
{
	struct tls_conf tls = { 0 };
	int runs;

	if (argc != 3 && argc != 6) {
		fprintf(stderr, "usage: bench_handshake URL RUNS [CA CERT KEY]\n");
		return 2;
	}
	runs = atoi(argv[2]);
	if (argc == 6) {
		tls.tc_ca = argv[3];
		tls.tc_cert = argv[4];
		tls.tc_key = argv[5];
	}
	for (int i = 0; i < runs; i++) {
		Ckpt__V1__StatRequest req = CKPT__V1__STAT_REQUEST__INIT;
		ProtobufCMessage *rep = NULL;
		struct rpc_client *c = NULL;
		struct rpc_error err = { 0 };
		uint64_t t0, t1, t2;
		int rv;

		t0 = now_us();
		rv = rpc_client_open_tls(argv[1], &ckpt__v1__nas__descriptor, RPC_CLIENT_DIAL_NOW, 0,
		    &tls, &c, &err);
		t1 = now_us();
		if (rv == 0)
			rv = rpc_client_call(c, NAS_STAT, &req.base, 5000, &rep, &err);
		t2 = now_us();
		if (rv != 0) {
			fprintf(stderr, "bench_handshake: %s\n", err.re_msg);
			rpc_client_close(c);
			return 1;
		}
		rpc_reply_free(rep);
		rpc_client_close(c);
		printf("%llu %llu %llu\n", (unsigned long long)(t1 - t0),
		    (unsigned long long)(t2 - t1), (unsigned long long)(t2 - t0));
	}
	return 0;
}

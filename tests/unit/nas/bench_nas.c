/*
 * Benchmark: store and retrieve one buffer through the Nas service in-process
 * (tcp on 127.0.0.1, LMDB in a temporary folder), the way an agent does.
 *
 *   meson test -C build --benchmark nas_put_get      (256 MiB)
 *   CKPT_BENCH_SIZE=1G build/tests/unit/nas/bench_nas_put_get
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nas.h"
#include "nasc.h"
#include "store.h"
#include "util.h"

#include "nasfix.h"

#define TIMEOUT_MS 60000u

static int
bench(const char *dir, size_t len)
{
	struct store_config sc = { dir, 256u << 20, 64ull << 30, 0, false, false, NULL, false, 0 };
	struct nas_config nc = { "tcp://127.0.0.1:0", 4, 0, 0, NULL, 0, NULL, NULL, 0, 0 };
	struct nasc_put p = { "bench", "big", "raw", 0, 1 };
	struct store_error serr;
	struct rpc_error err = { 0 };
	struct nasc_info info;
	struct store *st = NULL;
	struct nas *srv = NULL;
	struct nasc *cli = NULL;
	uint8_t *buf = malloc(len ? len : 1);
	void *got = NULL;
	size_t got_len = 0;
	uint64_t t0, t1, t2;
	uint64_t x = 88172645463325252u; /* xorshift64: 64 bits on a 32-bit target too */
	char *url;
	int rv = 1;

	if (buf == NULL)
		return 1;
	/* xorshift64: no two chunks alike, so nothing is deduplicated. */
	for (size_t i = 0; i < len; i++) {
		if ((i & 7) == 0) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		buf[i] = (uint8_t)(x >> (8 * (i & 7)));
	}
	if (store_open(&sc, &st, NULL, &serr) != 0 || nas_start(&nc, st, &srv) != 0)
		goto out;
	url = (char *)nas_url(srv);
	if (nasc_open(&url, 1, RPC_CLIENT_DIAL_NOW, &cli, &err) != 0)
		goto out;
	t0 = util_now_mono_ms();
	if (nasc_store_buf(cli, &p, buf, len, TIMEOUT_MS, &info, &err) != 0)
		goto out;
	t1 = util_now_mono_ms();
	if (nasc_retrieve_buf(cli, "", "big", 0, len + 1, TIMEOUT_MS, &got, &got_len, &info, &err) !=
	    0)
		goto out;
	t2 = util_now_mono_ms();
	if (got_len != len || memcmp(got, buf, len) != 0) {
		snprintf(err.re_msg, sizeof(err.re_msg), "retrieved bytes differ");
		goto out;
	}
	printf("%zu MiB: put %llu ms (%.0f MiB/s), get %llu ms (%.0f MiB/s)\n", len >> 20,
	    (unsigned long long)(t1 - t0), (double)(len >> 20) * 1000.0 / (double)(t1 - t0 + 1),
	    (unsigned long long)(t2 - t1), (double)(len >> 20) * 1000.0 / (double)(t2 - t1 + 1));
	rv = 0;
out:
	if (rv != 0)
		fprintf(stderr, "bench failed: %s\n", err.re_msg);
	free(got);
	nasc_close(cli);
	nas_stop(srv);
	store_close(st);
	free(buf);
	return rv;
}

int
main(void)
{
	char dir[64] = "/tmp/ckpt-nas-bench-XXXXXX";
	const char *env = getenv("CKPT_BENCH_SIZE");
	uint64_t len = 256u << 20;
	int rv;

	log_init("bench-nas", NULL, LOG_LEVEL_WARN);
	if (env != NULL && util_parse_size(env, &len) != 0) {
		fprintf(stderr, "CKPT_BENCH_SIZE: invalid size '%s'\n", env);
		return 2;
	}
	if (mkdtemp(dir) == NULL)
		return 1;
	rv = bench(dir, (size_t)len);
	nasfix_rmtree(dir);
	return rv;
}

/*
 * ckpt-nas: durable checkpoint storage (LMDB) served over nng.
 *
 *   ckpt-nas --listen URL --data DIR [--workers N] [--recv-max SIZE]
 *            [--map-size SIZE] [--map-max SIZE] [--keep N] [--log-level LEVEL]
 *   ckpt-nas --check --data DIR      offline check: every chunk's hash and every
 *                                     reference count; exit 0 clean, 1 corrupt
 *   --encrypt-key FILE [--decrypt-keys FILE,...]: encryption at rest (seal.h)
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdbool.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "err.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "nas.h"
#include "rpc.h"
#include "store.h"
#include "tls.h"
#include "util.h"

#define PROG "ckpt-nas"

struct nas_conf {
	char *nc_listen;
	char *nc_data;
	int64_t nc_workers;
	int64_t nc_metrics_series_max;
	uint64_t nc_recv_max;
	uint64_t nc_map_size;
	uint64_t nc_map_max;
	uint64_t nc_disk_reserve;
	int64_t nc_keep;
	bool nc_check;
	bool nc_test_format3;
	char *nc_log_level;
	char *nc_http;
	char *nc_encrypt_key;
	char *nc_decrypt_keys;
	struct tls_conf nc_tls;
	struct rpc_limits_conf nc_limits;
	int64_t nc_max_uploads;
	uint64_t nc_node_quota;
};

/*
 * How far the map may grow by default: all a 64-bit process wants; on a 32-bit
 * build (armhf) half of STORE_MAP_LIMIT, room left in the address space for
 * the heap (workers x recv-max), the libraries and the stacks.
 */
#if SIZE_MAX > UINT32_MAX
#define NAS_MAP_MAX_DEFAULT "64G"
#else
#define NAS_MAP_MAX_DEFAULT "1G"
#endif

#define OPT(name, type, field, def, min, max, flags, metavar, help)                              \
	{ name, type, offsetof(struct nas_conf, field), def, min, max, flags, metavar, help }

static const struct cfg_opt nas_opts[] = {
	OPT("listen", CFG_STR, nc_listen, NULL, 0, 0, CFG_URL, "URL",
	    "address to serve on (tcp://HOST:PORT, ipc:///PATH); required unless --check"),
	OPT("data", CFG_STR, nc_data, NULL, 0, 0, CFG_REQUIRED, "DIR",
	    "folder of the LMDB environment (created if missing); one process at a time "
	    "(DIR/lock): a second NAS or --check on a folder in use exits 1 naming the holder's pid"),
	OPT("workers", CFG_INT, nc_workers, "4", 1, 256, 0, "N", "requests served at once"),
	OPT("recv-max", CFG_SIZE, nc_recv_max, "16M", 5 << 20, 1 << 30, 0, "SIZE",
	    "largest request accepted (clients send 4 MiB batches); memory is bounded by "
	    "workers x recv-max"),
	OPT("map-size", CFG_SIZE, nc_map_size, "256M", 1 << 20, (int64_t)1 << 50, 0, "SIZE",
	    "initial LMDB map size"),
	OPT("map-max", CFG_SIZE, nc_map_max, NAS_MAP_MAX_DEFAULT, 1 << 20, (int64_t)1 << 50, 0, "SIZE",
	    "the map grows on demand up to this size; beyond it stores fail with "
	    "RESOURCE_EXHAUSTED"),
	OPT("disk-reserve", CFG_SIZE, nc_disk_reserve, "16M", 0, (int64_t)1 << 40, 0, "SIZE",
	    "room kept allocated past the end of the data for deletes, so that checkpoints can "
	    "be deleted on a full disk; stores that would need it are refused with "
	    "RESOURCE_EXHAUSTED (the disk is full); 0: none"),
	OPT("keep", CFG_INT, nc_keep, "3", 1, 1000000, 0, "N",
	    "checkpoints kept per component (the newest N, plus pinned ones; a component's "
	    "own setting wins: Nas.SetRetention)"),
	OPT("check", CFG_BOOL, nc_check, "false", 0, 0, 0, NULL,
	    "check the data in --data offline (every chunk's hash, every reference count), "
	    "print a report, exit 0 if clean and 1 if not; no --listen"),
	OPT("log-level", CFG_STR, nc_log_level, "info", 0, 0, 0, "LEVEL",
	    "debug, info, warn or error"),
	OPT("test-format3", CFG_BOOL, nc_test_format3, "false", 0, 0, 0, NULL,
	    "tests only: write the data in store format 3 (records named by a plain SHA-256, "
	    "no digest), as versions before the chunk-list digest did; a later start without "
	    "it upgrades the data"),
	OPT("encrypt-key", CFG_STR, nc_encrypt_key, NULL, 0, 0, 0, "FILE",
	    "encryption at rest: seal chunks and records with AES-256-GCM under the key in FILE "
	    "(32 random bytes, raw or hex: openssl rand -hex 32; mode 0600 or stricter); "
	    "off when not set; a store that has keys refuses to start without its key"),
	OPT("decrypt-keys", CFG_STR, nc_decrypt_keys, NULL, 0, 0, 0, "FILE,...",
	    "older keys (key rotation): what was sealed under them stays readable; new data is "
	    "sealed under --encrypt-key"),
	OPT("http", CFG_STR, nc_http, NULL, 0, 0, CFG_URL, "URL",
	    "serve /healthz, /readyz (store answers and is not full) and /metrics (Prometheus) "
	    "on http://HOST:PORT; off when not set"),
	OPT("metrics-series-max", CFG_INT, nc_metrics_series_max, "4096", 1, METRICS_SERIES_LIMIT, 0,
	    "N", "components ckpt_nas_checkpoints_stored_total counts with --http (a series each, "
	    "about 250 bytes); the Stores of components past them are counted in "
	    "ckpt_metrics_series_dropped_total{family} instead, and a warning is logged once"),
	TLS_CFG_OPTS(struct nas_conf, nc_tls),
	RPC_CFG_LIMITS(struct nas_conf, nc_limits),
	OPT("max-uploads", CFG_INT, nc_max_uploads, RPC_LIMIT_STR(LIMIT_UPLOADS_DEFAULT), 1, 4096, 0,
	    "N", "PutChunks one peer may have in progress at once (its identity over all its "
	    "connections; without TLS its address, or each loopback connection); more are "
	    "answered RESOURCE_EXHAUSTED (limit uploads)"),
	OPT("node-quota", CFG_SIZE, nc_node_quota, RPC_LIMIT_STR(LIMIT_QUOTA_DEFAULT), 0,
	    (int64_t)1 << 50, 0, "SIZE",
	    "bytes of checkpoints one node may hold: the logical sizes of its records after a "
	    "commit and its retention (deduplication does not lower it); a Store over it is "
	    "refused RESOURCE_EXHAUSTED (limit node_bytes); 0: none"),
};

#define NAS_NOPTS (sizeof(nas_opts) / sizeof(nas_opts[0]))

static void
nas_usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, PROG ": %s%s (see --help)\n", msg, arg != NULL ? arg : "");
}

/* 0, or the exit status (0 for --help, 2 for a usage error). */
static int
nas_conf_read(int argc, char **argv, struct nas_conf *conf, enum log_level *ret_level)
{
	char err[512];
	int argi, rv;

	rv = cfg_parse(nas_opts, NAS_NOPTS, conf, argc, argv, &argi, err, sizeof(err));
	if (rv == -ECANCELED) {
		cfg_usage(stdout, PROG, "--listen URL --data DIR [options]", nas_opts, NAS_NOPTS);
		return 0;
	}
	if (rv != 0) {
		nas_usage_error(rv == -EINVAL ? err : err_str(rv), NULL);
		return 2;
	}
	if (argi < argc) {
		nas_usage_error("unexpected argument: ", argv[argi]);
		return 2;
	}
	if (log_level_parse(conf->nc_log_level, ret_level) != 0) {
		nas_usage_error("--log-level: want debug, info, warn or error, got ", conf->nc_log_level);
		return 2;
	}
	if (!conf->nc_check && (conf->nc_listen == NULL || conf->nc_listen[0] == '\0')) {
		nas_usage_error("--listen is required (or --check)", NULL);
		return 2;
	}
	if (!conf->nc_check && (tls_conf_check(&conf->nc_tls, err, sizeof(err)) != 0 ||
	    tls_url_check(&conf->nc_tls, conf->nc_listen, err, sizeof(err)) != 0)) {
		nas_usage_error(err, NULL);
		return 2;
	}
	if (conf->nc_http != NULL && health_url_check(conf->nc_http, err, sizeof(err)) != 0) {
		nas_usage_error(err, NULL);
		return 2;
	}
	if (conf->nc_map_max > STORE_MAP_LIMIT) {
		char msg[96];
		snprintf(msg, sizeof(msg), "--map-max: a %zu-bit build maps %llu MiB at most",
		    sizeof(size_t) * CHAR_BIT, (unsigned long long)(STORE_MAP_LIMIT >> 20));
		nas_usage_error(msg, NULL);
		return 2;
	}
	if (conf->nc_decrypt_keys != NULL && conf->nc_decrypt_keys[0] != '\0' &&
	    (conf->nc_encrypt_key == NULL || conf->nc_encrypt_key[0] == '\0')) {
		nas_usage_error("--decrypt-keys needs --encrypt-key", NULL);
		return 2;
	}
	if (conf->nc_test_format3 && conf->nc_encrypt_key != NULL && conf->nc_encrypt_key[0] != '\0') {
		nas_usage_error("--test-format3 writes the data as older versions did: no --encrypt-key",
		    NULL);
		return 2;
	}
	if (conf->nc_map_size > conf->nc_map_max) {
		nas_usage_error("--map-size is larger than --map-max", NULL);
		return 2;
	}
	return -1;
}

/* The keys of --encrypt-key and --decrypt-keys into ring (none: sr_n 0). */
static int
nas_keys_load(const struct nas_conf *conf, struct seal_ring *ring, char *err, size_t errlen)
{
	ring->sr_n = 0;
	if (conf->nc_encrypt_key == NULL || conf->nc_encrypt_key[0] == '\0')
		return 0;
	return seal_ring_load(conf->nc_encrypt_key, conf->nc_decrypt_keys, ring, err, errlen);
}

/* --check: a report on stdout, exit 0 when clean, 1 when corrupt or unreadable. */
static int
nas_check(const struct nas_conf *conf)
{
	struct seal_ring *ring = calloc(1, sizeof(*ring));
	struct store_config sc = { conf->nc_data, conf->nc_map_size, conf->nc_map_max,
		(uint32_t)conf->nc_keep, true, false, ring, false, 0 };
	struct store_error err;
	struct store_check *ck;
	struct store *st;
	int rv;

	if (ring == NULL)
		return 1;
	rv = nas_keys_load(conf, ring, err.se_msg, sizeof(err.se_msg));
	if (rv != 0) {
		fprintf(stderr, PROG ": %s\n", err.se_msg);
		free(ring);
		return 1;
	}
	rv = store_open(&sc, &st, NULL, &err);
	seal_ring_wipe(ring);
	free(ring);
	if (rv == -EBUSY) {
		fprintf(stderr, PROG ": %s\n", err.se_msg);
		return 1;
	}
	if (rv != 0) {
		fprintf(stderr, PROG ": cannot open LMDB in %s: %s\n", conf->nc_data,
		    err.se_msg[0] != '\0' ? err.se_msg : err_str(rv));
		return 1;
	}
	ck = calloc(1, sizeof(*ck));
	rv = ck == NULL ? -ENOMEM : store_check(st, ck, &err);
	store_close(st);
	if (rv != 0) {
		fprintf(stderr, PROG ": check of %s: %s\n", conf->nc_data,
		    err.se_msg[0] != '\0' ? err.se_msg : err_str(rv));
		free(ck);
		return 1;
	}
	for (size_t i = 0; i < ck->sk_nproblems; i++)
		printf("problem: %s\n", ck->sk_problems[i]);
	if (ck->sk_more != 0)
		printf("problem: ... and %zu more\n", ck->sk_more);
	/* Per key: one line each, after the plain ones, when the store has keys. */
	if (ck->sk_nkeys != 0)
		printf("key plain: %llu chunks, %llu records (not encrypted)\n",
		    (unsigned long long)ck->sk_plain_chunks, (unsigned long long)ck->sk_plain_records);
	for (size_t i = 0; i < ck->sk_nkeys; i++)
		printf("key %s: %llu chunks, %llu records (%s)\n", ck->sk_keys[i].kk_id,
		    (unsigned long long)ck->sk_keys[i].kk_chunks,
		    (unsigned long long)ck->sk_keys[i].kk_records,
		    ck->sk_keys[i].kk_loaded ? "key given" : "KEY NOT GIVEN: not checked");
	if (ck->sk_locked != 0)
		printf("%llu chunks and records are sealed under keys not given: give them with "
		       "--decrypt-keys FILE\n", (unsigned long long)ck->sk_locked);
	printf("checked %s: %llu records, %llu chunks; %llu corrupt chunks, %llu missing chunks, "
	       "%llu wrong reference counts, %llu bad records, %llu orphan chunks: %s\n",
	    conf->nc_data, (unsigned long long)ck->sk_records, (unsigned long long)ck->sk_chunks,
	    (unsigned long long)ck->sk_bad_chunks, (unsigned long long)ck->sk_missing,
	    (unsigned long long)ck->sk_bad_refcounts, (unsigned long long)ck->sk_bad_records,
	    (unsigned long long)ck->sk_orphans,
	    !store_check_clean(ck) && ck->sk_locked != 0 && ck->sk_bad_chunks == 0 &&
	        ck->sk_missing == 0 && ck->sk_bad_refcounts == 0 && ck->sk_bad_records == 0 ?
	        "INCOMPLETE" : store_check_clean(ck) ? "clean" : "CORRUPT");
	rv = store_check_clean(ck) ? 0 : 1;
	free(ck);
	return rv;
}

/*
 * Each PutChunks arrives in a message of about 4 MiB (NASC_BATCH) that nng
 * allocates, and LMDB copies its chunks into pages it allocates: a fresh
 * NAS faulted in each page of those on first use, one fault each (about
 * 3,900 for the first 64 MiB stored, ~10 us each on a virtual machine).
 * A block as large as a message per worker is made present in one call
 * and freed: the heap keeps it (M_TRIM_THRESHOLD, one arena) for them.
 */
static void
nas_warm_heap(unsigned workers)
{
	size_t len = (size_t)(workers < 4 ? workers : 4) * (4u << 20);
	void *p = malloc(len);

	if (p != NULL) {
		util_prefault(p, len);
		free(p);
	}
}

static int
nas_run(const struct nas_conf *conf, const sigset_t *sigs)
{
	struct seal_ring ring;
	bool sealed;
	struct store_config sc = { conf->nc_data, conf->nc_map_size, conf->nc_map_max,
		(uint32_t)conf->nc_keep, false, conf->nc_test_format3, &ring, false, conf->nc_disk_reserve };
	struct nas_config nc = { conf->nc_listen, (unsigned)conf->nc_workers,
		(size_t)conf->nc_recv_max, (uint32_t)conf->nc_keep, conf->nc_http, conf->nc_map_max,
		&conf->nc_tls, &conf->nc_limits, (unsigned)conf->nc_max_uploads,
		(size_t)conf->nc_metrics_series_max };
	struct store_error err;
	struct store *st;
	struct nas *n;
	int rv, sig;

	nas_warm_heap((unsigned)conf->nc_workers);
	rv = nas_keys_load(conf, &ring, err.se_msg, sizeof(err.se_msg));
	if (rv != 0) {
		LOG_ERROR("%s: refusing to start", err.se_msg);
		return 1;
	}
	/* The store keeps its own copy of the keys. */
	sealed = ring.sr_n != 0;
	rv = store_open(&sc, &st, NULL, &err);
	seal_ring_wipe(&ring);
	if (rv == -EBUSY) {
		LOG_ERROR("%s: refusing to start", err.se_msg);
		return 1;
	}
	if (rv != 0) {
		LOG_ERROR("cannot open LMDB in %s: %s", conf->nc_data,
		    err.se_msg[0] != '\0' ? err.se_msg : err_str(rv));
		return 1;
	}
	/* Orphan chunks go in the background, while it serves: the store logs them. */
	store_set_node_quota(st, conf->nc_node_quota);
	rv = nas_start(&nc, st, &n);
	if (rv != 0) {
		LOG_ERROR("cannot listen on %s%s%s: %s", conf->nc_listen,
		    conf->nc_http != NULL ? " or " : "", conf->nc_http != NULL ? conf->nc_http : "",
		    err_str(rv));
		store_close(st);
		return 1;
	}
	LOG_INFO("listening on %s, data in %s (store %s), keeping %lld checkpoints per component%s",
	    nas_url(n), conf->nc_data, store_id(st), (long long)conf->nc_keep,
	    sealed ? ", encrypted at rest" : "");
	while (sigwait(sigs, &sig) != 0) {
	}
	LOG_INFO("received SIG%s, stopping", sigabbrev_np(sig));
	nas_stop(n);
	store_close(st);
	LOG_INFO("stopped");
	return 0;
}

int
main(int argc, char **argv)
{
	struct nas_conf conf = { 0 };
	enum log_level level = LOG_LEVEL_INFO;
	sigset_t sigs;
	int rv;

	/*
	 * Every PutChunks and GetChunks moves megabytes through nng messages and
	 * protobuf-c buffers: keep such buffers in the heap once freed, instead of
	 * an mmap with page faults on every page and an munmap per message.
	 */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	/*
	 * One arena: every thread (nng's receivers, the workers) takes its
	 * buffers from one heap, so the pages a message freed are the next
	 * one's, whichever thread takes it. An arena per thread (glibc's
	 * default, up to 8 per CPU) grew and faulted in a heap of its own for
	 * each: a fresh NAS took 11,200 page faults and 0.40 s of CPU to store
	 * 64 MiB of random bytes, with one arena 4,700 and 0.25 s (perf stat,
	 * docs/benchmarks.md). Pages faulted in stay (M_TRIM_THRESHOLD), so this
	 * is the first stores' cost; the lock is held for short steps only (the
	 * NAS never calls malloc_trim, which held the agent's for long).
	 */
	mallopt(M_ARENA_MAX, 1);
	rv = nas_conf_read(argc, argv, &conf, &level);
	if (rv >= 0) {
		cfg_free(nas_opts, NAS_NOPTS, &conf);
		return rv;
	}
	if (conf.nc_check) {
		rv = nas_check(&conf);
		cfg_free(nas_opts, NAS_NOPTS, &conf);
		return rv;
	}
	log_init(PROG, NULL, level);
	/* Before any thread starts, so that every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	rv = nas_run(&conf, &sigs);
	cfg_free(nas_opts, NAS_NOPTS, &conf);
	return rv;
}

/*
 * The Nas service on a real LMDB store (in a temporary folder, kept for the
 * whole run): each input is one request, its first byte the method and the
 * rest the body, handled as a worker would (rpc_server_dispatch). Every
 * decoder and handler of the NAS sees arbitrary bytes; ASan and UBSan watch,
 * and the store must stay consistent: a Scrub every 4096 inputs is clean.
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/v1/nas.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "log.h"
#include "nas.h"
#include "rpc.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct store *fz_store;
static struct nas *fz_nas;
static size_t fz_runs;
static char fz_dir[64];

static int
fz_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* At exit: the service stopped, the store closed, its folder removed. */
static void
fz_fini(void)
{
	nas_stop(fz_nas);
	store_close(fz_store);
	nftw(fz_dir, fz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void
fz_init(void)
{
	static char url[96];
	char *dir = fz_dir;
	struct store_config sc = { .sc_dir = fz_dir, .sc_map_size = 1u << 20,
		.sc_map_max = 64u << 20, .sc_keep = 3 };
	struct nas_config nc = { .nc_listen = url, .nc_workers = 1, .nc_keep = 3 };
	struct store_error err;

	snprintf(fz_dir, sizeof(fz_dir), "/tmp/ckpt-fuzz-nas-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(url, sizeof(url), "ipc://%s/nas.sock", dir);
	log_init("fuzz-nas", NULL, LOG_LEVEL_ERROR);
	if (store_open(&sc, &fz_store, NULL, &err) != 0 || nas_start(&nc, fz_store, &fz_nas) != 0)
		abort();
	atexit(fz_fini);
	fprintf(stderr, "fuzz_nas: store in %s\n", dir);
}

static void
fz_call(unsigned method, const uint8_t *body, size_t len)
{
	Ckpt__V1__Request env = CKPT__V1__REQUEST__INIT;
	uint8_t *buf;
	nng_msg *reply = NULL;
	size_t n;

	env.service = "ckpt.v1.Nas";
	env.method = method;
	env.body.data = (uint8_t *)body;
	env.body.len = len;
	n = ckpt__v1__request__get_packed_size(&env);
	buf = malloc(n);
	if (buf == NULL)
		abort();
	ckpt__v1__request__pack(&env, buf);
	if (rpc_server_dispatch(nas_rpc_server(fz_nas), buf, n, &reply) == 0 && reply != NULL)
		nng_msg_free(reply);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_nas == NULL)
		fz_init();
	if (size == 0)
		return 0;
	/* One past the last method: the unknown-method path too. */
	fz_call(data[0] % (ckpt__v1__nas__descriptor.n_methods + 1), data + 1, size - 1);
	if (++fz_runs % 4096 == 0) {
		struct store_check ck;
		struct store_error err;
		if (store_check(fz_store, &ck, &err) != 0 || !store_check_clean(&ck)) {
			fprintf(stderr, "fuzz_nas: the store is not clean: %s\n",
			    ck.sk_nproblems > 0 ? ck.sk_problems[0] : err.se_msg);
			abort();
		}
	}
	return 0;
}

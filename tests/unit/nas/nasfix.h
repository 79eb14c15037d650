/*
 * nasfix: a Nas service in process for the NAS tests and benchmarks (header
 * only): a store in a new temporary folder, the service on a free port of
 * 127.0.0.1, a client dialled to it; and the folder's removal.
 */
#ifndef CKPT_NASFIX_H
#define CKPT_NASFIX_H

#define _XOPEN_SOURCE_EXTENDED 1
#include <errno.h>
#include <ftw.h>
#include <stdio.h>

#include "nas.h"
#include "nasc.h"
#include "rpc.h"
#include "store.h"

struct nasfix {
	char f_dir[64];
	struct store *f_st;
	struct nas *f_srv;
	struct nasc *f_cli;
};

static int
nasfix_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes the folder dir and what it holds. */
static inline void
nasfix_rmtree(const char *dir)
{
	nftw(dir, nasfix_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Starts f: a store of map_size bytes (growing to map_max; its sweep after
 * open ended) in a new folder /tmp/ckpt-TAG-XXXXXX, its service (taking
 * requests of at most recv_max bytes; 0: the default) and a client. 0, or
 * a negative errno (what was started is stopped again).
 */
static inline int
nasfix_start_recv(struct nasfix *f, const char *tag, uint64_t map_size, uint64_t map_max,
    size_t recv_max)
{
	struct store_config sc = { NULL, map_size, map_max, 0, false, false, NULL, false, 0 };
	struct nas_config nc = { "tcp://127.0.0.1:0", 4, recv_max, 0, NULL, 0, NULL, NULL, 0, 0 };
	struct store_error serr;
	struct rpc_error rerr;
	char *url;
	int rv;

	memset(f, 0, sizeof(*f));
	snprintf(f->f_dir, sizeof(f->f_dir), "/tmp/ckpt-%s-XXXXXX", tag);
	if (mkdtemp(f->f_dir) == NULL)
		return -errno;
	sc.sc_dir = f->f_dir;
	rv = store_open(&sc, &f->f_st, NULL, &serr);
	/* The sweep after open ended: its writes are not counted as a test's. */
	if (rv == 0)
		rv = store_sweep_wait(f->f_st, NULL);
	if (rv == 0)
		rv = nas_start(&nc, f->f_st, &f->f_srv);
	if (rv == 0) {
		url = (char *)nas_url(f->f_srv);
		rv = nasc_open(&url, 1, RPC_CLIENT_DIAL_NOW, &f->f_cli, &rerr);
	}
	if (rv != 0) {
		if (f->f_srv != NULL)
			nas_stop(f->f_srv);
		store_close(f->f_st);
		nasfix_rmtree(f->f_dir);
		memset(f, 0, sizeof(*f));
	}
	return rv;
}

/* nasfix_start_recv() with the default request limit. */
static inline int
nasfix_start(struct nasfix *f, const char *tag, uint64_t map_size, uint64_t map_max)
{
	return nasfix_start_recv(f, tag, map_size, map_max, 0);
}

/* Stops what nasfix_start() started and removes its folder. */
static inline void
nasfix_stop(struct nasfix *f)
{
	nasc_close(f->f_cli);
	if (f->f_srv != NULL)
		nas_stop(f->f_srv);
	store_close(f->f_st);
	if (f->f_dir[0] != '\0')
		nasfix_rmtree(f->f_dir);
	memset(f, 0, sizeof(*f));
}

#endif

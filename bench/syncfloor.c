/*
 * syncfloor: what one durable write costs on this disk, the floor under the
 * fleet benchmark's single writer. Not a test: it prints a table.
 *
 *   syncfloor DIR [SECONDS]     (bench/fleet.sh runs it in its work folder)
 *
 * Three loops, each for SECONDS (default 1):
 *   - append 4 KiB to a file and fdatasync() it, as Redis's append-only file
 *     does per write with `appendfsync always` (one sync);
 *   - an LMDB commit of a one-key change (8 bytes), with LMDB's default sync
 *     flags as ckpt-nas opens its store: LMDB writes and syncs the data
 *     pages, then writes and syncs the meta page (two syncs);
 *   - the same with a 4 KiB value (a small checkpoint's chunk and record).
 * The NAS cannot acknowledge a store faster than the LMDB loop, whatever the
 * wire does: one writer's checkpoints/s is bounded by it, while many writers
 * share commits (group commit).
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SYNCFLOOR_VALUE 4096

static double
syncfloor_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Appends with fdatasync() for secs; returns writes per second, or -1. */
static double
syncfloor_append(const char *dir, double secs)
{
	static char buf[SYNCFLOOR_VALUE];
	char path[4096];
	double t0, dt;
	long n = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/syncfloor.aof", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	memset(buf, 'x', sizeof(buf));
	t0 = syncfloor_now();
	do {
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fdatasync(fd) != 0) {
			close(fd);
			return -1;
		}
		n++;
		dt = syncfloor_now() - t0;
	} while (dt < secs);
	close(fd);
	unlink(path);
	return (double)n / dt;
}

/* LMDB commits of one put of vlen bytes for secs; returns commits per second, or -1. */
static double
syncfloor_lmdb(const char *dir, size_t vlen, double secs)
{
	static char val[SYNCFLOOR_VALUE];
	char path[4096];
	MDB_env *env = NULL;
	MDB_dbi dbi;
	MDB_txn *txn;
	double t0, dt, rate = -1;
	long n = 0;

	snprintf(path, sizeof(path), "%s/syncfloor.mdb", dir);
	if (mdb_env_create(&env) != 0 || mdb_env_set_mapsize(env, 256u << 20) != 0 ||
	    mdb_env_open(env, path, MDB_NOSUBDIR | MDB_NOTLS, 0600) != 0)
		goto out;
	if (mdb_txn_begin(env, NULL, 0, &txn) != 0)
		goto out;
	if (mdb_dbi_open(txn, NULL, 0, &dbi) != 0 || mdb_txn_commit(txn) != 0)
		goto out;
	t0 = syncfloor_now();
	do {
		unsigned long long key = (unsigned long long)n;
		MDB_val k = { sizeof(key), &key }, v = { vlen, val };
		if (mdb_txn_begin(env, NULL, 0, &txn) != 0)
			goto out;
		if (mdb_put(txn, dbi, &k, &v, 0) != 0) {
			mdb_txn_abort(txn);
			goto out;
		}
		if (mdb_txn_commit(txn) != 0)
			goto out;
		n++;
		dt = syncfloor_now() - t0;
	} while (dt < secs);
	rate = (double)n / dt;
out:
	if (env != NULL)
		mdb_env_close(env);
	unlink(path);
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "-lock");
	unlink(path);
	return rate;
}

int
main(int argc, char **argv)
{
	double secs = argc > 2 ? strtod(argv[2], NULL) : 1.0;
	double app, tiny, page;

	if (argc < 2 || secs <= 0) {
		fprintf(stderr, "usage: syncfloor DIR [SECONDS]\n");
		return 2;
	}
	app = syncfloor_append(argv[1], secs);
	tiny = syncfloor_lmdb(argv[1], 8, secs);
	page = syncfloor_lmdb(argv[1], SYNCFLOOR_VALUE, secs);
	if (app < 0 || tiny < 0 || page < 0) {
		fprintf(stderr, "syncfloor: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	printf("sync floor: write 4 KiB + fdatasync %.0f/s; LMDB commit of 8 bytes %.0f/s, "
	    "of 4 KiB %.0f/s (%.2f of the append)\n", app, tiny, page, page / app);
	return 0;
}

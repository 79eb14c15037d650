#include "store_int.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <lmdb.h>

#include "err.h"
#include "key.h"
#include "log.h"
#include "seal.h"
#include "sha.h"

static const char *const store_db_names[DB_COUNT] = { "ckpt", "cidx", "comp", "chunk", "tail",
	"ref", "pin", "keep", "meta", "spec", "grant" };

/* ---- small helpers ---- */

void
store_errorf(struct store_error *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->se_msg, sizeof(err->se_msg), fmt, ap);
	va_end(ap);
}

int
store_rc(int mdb_rc)
{
	return mdb_rc == MDB_MAP_FULL ? STORE_MAP_FULL : err_from_mdb(mdb_rc);
}

static void
store_be64_put(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < STORE_SEQ_LEN; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

uint64_t
store_be64_get(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < STORE_SEQ_LEN; i++)
		v = v << 8 | p[i];
	return v;
}

/* "64G", "256M", "12K" or bytes: the way sizes are written on the command line. */
void
store_size_str(uint64_t v, char *buf, size_t len)
{
	if (v != 0 && v % (1u << 30) == 0)
		snprintf(buf, len, "%lluG", (unsigned long long)(v >> 30));
	else if (v != 0 && v % (1u << 20) == 0)
		snprintf(buf, len, "%lluM", (unsigned long long)(v >> 20));
	else if (v != 0 && v % (1u << 10) == 0)
		snprintf(buf, len, "%lluK", (unsigned long long)(v >> 10));
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* Copy of untrusted text fit for a one-line message. */
const char *
store_printable(const char *s, char *buf, size_t len)
{
	size_t i = 0;
	for (; s[i] != '\0' && i + 1 < len; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

int
store_check_name(const char *what, const char *name, struct store_error *err)
{
	char safe[KEY_NAME_MAX + 2];

	if (key_name_check(name) == 0)
		return 0;
	store_errorf(err, "invalid %s name '%s': want 1 to %d characters of [A-Za-z0-9._-]", what,
	    store_printable(name, safe, sizeof(safe)), KEY_NAME_MAX);
	return -EINVAL;
}

/* name may be "" (any). */
int
store_check_filter(const char *what, const char *name, struct store_error *err)
{
	return name[0] == '\0' ? 0 : store_check_name(what, name, err);
}

int
store_check_hashes(const ProtobufCBinaryData *hashes, size_t n, struct store_error *err)
{
	if (n > STORE_HASHES_MAX) {
		store_errorf(err, "too many hashes: %zu (at most %u)", n, STORE_HASHES_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (hashes[i].len != SHA_LEN) {
			store_errorf(err, "hash %zu: %zu bytes, want %d", i, hashes[i].len, SHA_LEN);
			return -EINVAL;
		}
	}
	return 0;
}

/* "node/component@seq", "*" for any node, "latest" for seq 0. */
void
store_ref_str(const char *node, const char *component, uint64_t seq, char *buf, size_t len)
{
	if (seq != 0)
		snprintf(buf, len, "%s/%s@%llu", node[0] != '\0' ? node : "*", component,
		    (unsigned long long)seq);
	else
		snprintf(buf, len, "%s/%s@latest", node[0] != '\0' ? node : "*", component);
}

size_t
store_cidx_key(const char *component, uint64_t seq, uint8_t *buf)
{
	size_t n = strlen(component);
	memcpy(buf, component, n + 1);
	store_be64_put(buf + n + 1, seq);
	return n + 1 + STORE_SEQ_LEN;
}

static int
store_mkdir_p(const char *dir)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);
	struct stat st;

	if (len == 0 || len >= sizeof(path))
		return len == 0 ? -EINVAL : -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return -errno;
		if (c == '\0')
			break;
		*p = c;
	}
	if (stat(dir, &st) != 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/*
 * One process per data folder: an exclusive flock() on DIR/lock, held until
 * store_close(). A second NAS would collect the first one's uploaded,
 * not yet committed chunks as orphans. The kernel drops the lock when its
 * process dies, so the file a killed NAS leaves behind blocks nobody; the
 * pid written in it only names the holder in the refusal.
 */
static int
store_lock_dir(struct store *s, const char *dir, struct store_error *err)
{
	char path[PATH_MAX], pid[24];
	bool writable = true;
	ssize_t len;
	int fd, rv;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, STORE_LOCK_FILE) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 && s->s_readonly && (errno == EROFS || errno == EACCES)) {
		fd = open(path, O_RDONLY | O_CLOEXEC); /* a check of read-only media */
		writable = false;
	}
	if (fd < 0) {
		rv = -errno;
		store_errorf(err, "cannot open the lock file %s: %s", path, err_str(rv));
		return rv;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		rv = -errno;
		if (rv == -EWOULDBLOCK) {
			len = pread(fd, pid, sizeof(pid) - 1, 0);
			pid[len > 0 ? len : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			store_errorf(err, "data folder %s is in use by another process (pid %s, holding %s)",
			    dir, pid[0] != '\0' ? pid : "unknown", path);
			rv = -EBUSY;
		} else {
			store_errorf(err, "cannot lock %s: %s", path, err_str(rv));
		}
		close(fd);
		return rv;
	}
	if (writable) {
		len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
		if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
			/* The pid only names the holder: a full disk must not stop the open. */
		}
	}
	s->s_lock_fd = fd;
	return 0;
}

/* ---- transactions and map growth ---- */

/* Another process grew the map: adopt its size. */
static void
store_adopt_resize(struct store *s)
{
	MDB_envinfo info;

	pthread_rwlock_wrlock(&s->s_lock);
	if (mdb_env_set_mapsize(s->s_env, 0) == 0 && mdb_env_info(s->s_env, &info) == 0)
		s->s_map_size = info.me_mapsize;
	pthread_rwlock_unlock(&s->s_lock);
}

/*
 * Begins a transaction and returns with the read side of s_lock held;
 * *ret_map_size is the map size the transaction sees.
 */
static int
store_txn_begin(struct store *s, unsigned flags, MDB_txn **ret_txn, uint64_t *ret_map_size)
{
	bool adopted = false;

	for (;;) {
		MDB_txn *txn;
		int rc;

		pthread_rwlock_rdlock(&s->s_lock);
		rc = mdb_txn_begin(s->s_env, NULL, flags, &txn);
		if (rc == 0) {
			*ret_txn = txn;
			*ret_map_size = s->s_map_size;
			return 0;
		}
		pthread_rwlock_unlock(&s->s_lock);
		if (rc != MDB_MAP_RESIZED || adopted)
			return err_from_mdb(rc);
		store_adopt_resize(s);
		adopted = true;
	}
}

/* Runs fn in a read transaction. */
int
store_read(struct store *s, store_txn_fn fn, void *arg)
{
	uint64_t map_size;
	MDB_txn *txn = NULL;
	int rv;

	rv = store_txn_begin(s, MDB_RDONLY, &txn, &map_size);
	if (rv != 0)
		return rv;
	rv = fn(s, txn, arg);
	/* Committed, not aborted: database handles opened in it stay open (--check). */
	if (rv == 0)
		rv = store_rc(mdb_txn_commit(txn)); /* frees txn on failure too */
	else
		mdb_txn_abort(txn);
	pthread_rwlock_unlock(&s->s_lock);
	return rv;
}

bool
store_map_at_max(struct store *s)
{
	bool at;

	pthread_rwlock_rdlock(&s->s_lock);
	at = s->s_map_size >= s->s_map_max;
	pthread_rwlock_unlock(&s->s_lock);
	return at;
}

/* Doubles the map (up to s_map_max) unless another thread grew it past seen. */
static int
store_grow(struct store *s, uint64_t seen)
{
	uint64_t before, after = 0, want;
	MDB_envinfo info;
	int rv = 0;

	pthread_rwlock_wrlock(&s->s_lock);
	before = s->s_map_size;
	if (before > seen)
		goto out_unlock;
	if (before >= s->s_map_max) {
		rv = -ENOSPC;
		goto out_unlock;
	}
	want = before > s->s_map_max / 2 ? s->s_map_max : 2 * before;
	/* want <= s_map_max <= STORE_MAP_LIMIT: the size_t holds it on 32-bit too. */
	rv = err_from_mdb(mdb_env_set_mapsize(s->s_env, (size_t)want));
	if (rv == 0)
		rv = err_from_mdb(mdb_env_info(s->s_env, &info));
	if (rv == 0 && info.me_mapsize <= before)
		rv = -ENOSPC;
	if (rv == 0)
		after = s->s_map_size = info.me_mapsize;
out_unlock:
	pthread_rwlock_unlock(&s->s_lock);
	if (after != 0) {
		char b[32], a[32];
		store_size_str(before, b, sizeof(b));
		store_size_str(after, a, sizeof(a));
		LOG_INFO("LMDB map grown from %s to %s", b, a);
	}
	return rv;
}

/* A write waiting for its group (store_write_group). */
struct store_wreq {
	store_txn_fn w_fn;
	void *w_arg;
	int w_rv;
	uint64_t w_map_size;          /* the map size its transaction saw */
	bool w_grouped;               /* it ran beside others, in a nested transaction */
	bool w_solo;                  /* runs in a group of its own */
	bool w_upload;                /* store_write_upload(): its commit need not be durable alone */
	bool w_done;
	bool w_lead;                  /* handed the lead: runs the next group */
	pthread_cond_t w_cv;          /* signalled on w_done or w_lead: one wake-up per writer */
	struct store_wreq *w_next;
	/* Queued (store_write_async()): malloc'ed, freed by the leader after done. */
	store_done_fn w_done_fn;
	void *w_done_arg;
	struct store_error *w_err;
	uint64_t w_need;              /* promised at admission (store_room_admit()) */
	bool w_retry;                 /* runs again (store_write_next()) */
};

/*
 * Runs a group of writes in one transaction and commits it once. Alone, a
 * write runs in the transaction itself; in a group, each runs in a nested
 * transaction, so one that fails (a refused commit, a full map) leaves no
 * trace and does not fail the others. Sets every w_rv, w_map_size and
 * w_grouped. A write function that returns 0 must leave its transaction
 * usable: an LMDB error it swallowed (one that marks the transaction
 * failed, unlike MDB_NOTFOUND or MDB_KEYEXIST) would fail the whole group.
 */
static void
store_run_group(struct store *s, struct store_wreq *g)
{
	struct store_wreq *w;
	uint64_t map_size = 0;
	MDB_txn *txn = NULL;
	size_t ok = 0;
	bool upload = true;
	int rv;

	for (w = g; w != NULL; w = w->w_next)
		upload = upload && w->w_upload;
	/*
	 * A group of uploads only: its meta page written without a sync of
	 * its own (MDB_NOMETASYNC, changed by the only thread that commits).
	 * Its pages are synced before the meta page names them, so a crash
	 * keeps the store whole and at worst undoes these uploads (the sweep
	 * after open deletes unnamed uploads anyway); the next commit's
	 * fdatasync() makes them durable, before a Store that names them is
	 * answered. mdb_env_set_flags() cannot fail for this flag.
	 */
	if (upload)
		(void)mdb_env_set_flags(s->s_env, MDB_NOMETASYNC, 1);
	rv = store_txn_begin(s, 0, &txn, &map_size);
	if (rv == 0 && g->w_next == NULL) {
		rv = g->w_fn(s, txn, g->w_arg);
		if (rv == 0)
			rv = store_rc(mdb_txn_commit(txn)); /* frees txn on failure too */
		else
			mdb_txn_abort(txn);
		g->w_rv = rv;
	} else if (rv == 0) {
		for (w = g; w != NULL; w = w->w_next) {
			MDB_txn *child;
			w->w_grouped = true;
			w->w_rv = store_rc(mdb_txn_begin(s->s_env, txn, 0, &child));
			if (w->w_rv != 0)
				continue;
			w->w_rv = w->w_fn(s, child, w->w_arg);
			if (w->w_rv == 0)
				w->w_rv = store_rc(mdb_txn_commit(child));
			else
				mdb_txn_abort(child);
			ok += w->w_rv == 0;
		}
		if (ok == 0) {
			mdb_txn_abort(txn);
		} else if ((rv = store_rc(mdb_txn_commit(txn))) != 0) {
			for (w = g; w != NULL; w = w->w_next)
				if (w->w_rv == 0)
					w->w_rv = rv; /* nothing of the group was written */
		}
	}
	if (upload)
		(void)mdb_env_set_flags(s->s_env, MDB_NOMETASYNC, 0);
	if (txn != NULL)
		pthread_rwlock_unlock(&s->s_lock); /* held since the transaction began */
	for (w = g; w != NULL; w = w->w_next) {
		if (txn == NULL)
			w->w_rv = rv; /* the transaction did not begin */
		w->w_map_size = map_size;
	}
	ok = 0;
	for (w = g; w != NULL; w = w->w_next)
		ok += w->w_rv == 0;
	if (ok != 0) {
		atomic_fetch_add(&s->s_writes, ok);
		atomic_fetch_add(&s->s_commits, 1);
		/* Before the writers hear of it: the next write is admitted against it. */
		store_room_take(s);
	}
}

/* 1.5 MiB, 12.0 KiB: a byte count for people. */
void
store_human(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	double d = (double)v;
	size_t u = 0;

	if (v < 1024) {
		snprintf(buf, len, "%llu bytes", (unsigned long long)v);
		return;
	}
	for (d /= 1024; d >= 1024 && u + 1 < sizeof(units) / sizeof(units[0]); d /= 1024)
		u++;
	snprintf(buf, len, "%.1f %s", d, units[u]);
}

/*
 * A write the file system refused. LMDB reports a short write as EIO
 * ("short write, filesystem full?"), a failed one with its errno; either,
 * on a file system left with (almost) no room, is the disk being full:
 * -ENOSPC (RESOURCE_EXHAUSTED) and a message saying so, not "Input/output
 * error". Any other error is returned as it is.
 */
static int
store_write_error(struct store *s, int rv, struct store_error *err)
{
	char avail_s[32], total_s[32];
	uint64_t avail, total;
	struct statvfs vfs;

	/* A refusal that names its case (the node quota's -EDQUOT) is not the disk's. */
	if ((rv != -EIO && rv != -ENOSPC && rv != -EDQUOT && rv != -EFBIG) || err->se_reason != NULL)
		return rv;
	if (statvfs(s->s_dir, &vfs) != 0)
		return rv;
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	if (rv == -EIO && avail >= STORE_DISK_LOW)
		return rv;
	store_human(avail, avail_s, sizeof(avail_s));
	store_human(total, total_s, sizeof(total_s));
	store_errorf(err, "the disk holding the NAS data (%s) is full: %s free of %s%s", s->s_dir,
	    avail_s, total_s, rv == -EDQUOT ? " (quota)" : "");
	return -ENOSPC;
}

/*
 * After a write ran with result *rv: true when it must run again (the map
 * was full and has grown, or it ran in a group and now runs alone: beside
 * others it could not use the pages they free, deletions and retention,
 * until their transaction commits); otherwise *rv is final (a full disk
 * named as such, or -ENOSPC at the map's maximum).
 */
static bool
store_write_next(struct store *s, int *rv, uint64_t seen, bool grouped, bool *solo,
    struct store_error *err)
{
	int grown;

	if (*rv != STORE_MAP_FULL) {
		if (*rv != 0)
			*rv = store_write_error(s, *rv, err);
		return false;
	}
	grown = store_grow(s, seen);
	if (grown != 0 && grouped) {
		*solo = true;
		return true;
	}
	if (grown != 0) {
		char max[32];
		store_size_str(s->s_map_max, max, sizeof(max));
		store_errorf(err, "NAS storage full (map-max %s reached)", max);
		*rv = -ENOSPC;
		return false;
	}
	return true;
}

/*
 * Runs groups from the head of the queue, called by the leader with s_wq_mu
 * held (and returns with it held, the lead handed on or s_wq_busy cleared).
 * Each group is the queue from its head up to the first solo write (a solo
 * write at the head goes alone). After each commit it wakes the group's
 * waiting writers and finishes its queued writes (store_write_async(): their
 * done callbacks run here, on this thread, outside the lock; one whose map
 * was full goes back in the queue after the map grew). A waiting writer at
 * the head of the queue is then handed the lead; otherwise the lead is
 * free while the callbacks run (a writer arriving meanwhile takes it and
 * the queue with it), and this thread takes the queue up again after them
 * if nobody did. Every writer is woken once, not once per group committed
 * while it waits, and a queued write wakes nobody.
 */
static void
store_lead(struct store *s, struct store_wreq *me)
{
	for (;;) {
		struct store_wreq *g, *w, *next, **end, *done = NULL;
		bool again;

		g = s->s_wq_head;
		end = &g->w_next;
		if (!g->w_solo)
			while (*end != NULL && !(*end)->w_solo)
				end = &(*end)->w_next;
		s->s_wq_head = *end;
		if (s->s_wq_head == NULL)
			s->s_wq_tail = &s->s_wq_head;
		*end = NULL;
		pthread_mutex_unlock(&s->s_wq_mu);
		store_run_group(s, g);
		/* Queued writes whose map was full: grown (outside the lock), run again. */
		for (w = g; w != NULL; w = w->w_next)
			if (w->w_done_fn != NULL)
				w->w_retry = store_write_next(s, &w->w_rv, w->w_map_size, w->w_grouped,
				    &w->w_solo, w->w_err);
		pthread_mutex_lock(&s->s_wq_mu);
		for (w = g; w != NULL; w = next) {
			next = w->w_next; /* a waiter's entry is gone once it sees w_done */
			if (w->w_done_fn != NULL && w->w_retry) {
				w->w_next = NULL;
				w->w_grouped = false;
				*s->s_wq_tail = w;
				s->s_wq_tail = &w->w_next;
			} else if (w->w_done_fn != NULL) {
				w->w_next = done;
				done = w;
			} else {
				w->w_done = true;
				if (w != me)
					pthread_cond_signal(&w->w_cv);
			}
		}
		if (s->s_wq_head != NULL && s->s_wq_head->w_done_fn == NULL) {
			s->s_wq_head->w_lead = true;
			pthread_cond_signal(&s->s_wq_head->w_cv);
			again = false;
		} else {
			again = s->s_wq_head != NULL;
			/*
			 * The lead is free while this thread answers its group:
			 * a write arriving meanwhile leads the next group at once
			 * (its commit overlaps these replies).
			 */
			s->s_wq_busy = done == NULL && again;
		}
		if (done == NULL && again)
			continue;
		pthread_mutex_unlock(&s->s_wq_mu);
		for (w = done; w != NULL; w = next) {
			next = w->w_next;
			/* Its last run over (committed and taken, or failed): its room is used. */
			store_room_release(s, w->w_need);
			w->w_done_fn(w->w_done_arg, w->w_rv);
			free(w);
		}
		pthread_mutex_lock(&s->s_wq_mu);
		/* Queued writes nobody took up meanwhile: this thread leads them. */
		if (!again || s->s_wq_busy || s->s_wq_head == NULL)
			return;
		s->s_wq_busy = true;
	}
}

/*
 * Queues fn and waits for the group it joins to be committed, leading that
 * group when no other writer is (store_lead()). Returns fn's result (or the
 * commit's); *ret_map_size: the map size the transaction saw.
 */
static int
store_write_group(struct store *s, store_txn_fn fn, void *arg, bool solo, bool upload,
    uint64_t *ret_map_size, bool *ret_grouped)
{
	struct store_wreq me;

	memset(&me, 0, sizeof(me));
	me.w_fn = fn;
	me.w_arg = arg;
	me.w_solo = solo;
	me.w_upload = upload;
	pthread_cond_init(&me.w_cv, NULL);
	pthread_mutex_lock(&s->s_wq_mu);
	*s->s_wq_tail = &me;
	s->s_wq_tail = &me.w_next;
	if (s->s_wq_kick) {
		/* The lead was the commit thread's, not taken up yet: this writer's now. */
		s->s_wq_kick = false;
		me.w_lead = true;
	} else if (s->s_wq_busy) {
		while (!me.w_done && !me.w_lead)
			pthread_cond_wait(&me.w_cv, &s->s_wq_mu);
	} else {
		s->s_wq_busy = true;
		me.w_lead = true;
	}
	if (me.w_lead)
		store_lead(s, &me);
	pthread_mutex_unlock(&s->s_wq_mu);
	pthread_cond_destroy(&me.w_cv);
	*ret_map_size = me.w_map_size;
	*ret_grouped = me.w_grouped;
	return me.w_rv;
}

/*
 * Runs fn in a write transaction (grouped with concurrent writes: see
 * store_lead()); when the map is full, grows it and runs fn again (fn must
 * reset its outputs; store_write_next()). At the maximum: -ENOSPC, nothing
 * written.
 */
static int
store_write_loop(struct store *s, store_txn_fn fn, void *arg, bool solo, bool upload,
    struct store_error *err)
{
	err->se_reason = NULL; /* fn may name its refusal's case */
	for (;;) {
		uint64_t seen;
		bool grouped;
		int rv = store_write_group(s, fn, arg, solo, upload, &seen, &grouped);

		if (!store_write_next(s, &rv, seen, grouped, &solo, err))
			return rv;
	}
}

int
store_write_run(struct store *s, store_txn_fn fn, void *arg, struct store_error *err)
{
	return store_write_loop(s, fn, arg, false, false, err);
}

/*
 * A delete that found no room (-ENOSPC, the disk's or the map's: not a
 * refusal that names its case) may have found it in the pages the last
 * commit freed, which LMDB hands out only from the commit after next:
 * after deletes one after another on a full disk, each taking from the
 * reserve what it cannot place, that is where the room is. One settling
 * commit, then it runs once more (alone: the write next to it in a group
 * may have used the room).
 */
int
store_write_frees(struct store *s, store_txn_fn fn, void *arg, struct store_error *err)
{
	struct store_error settle_err;
	int rv = store_write_loop(s, fn, arg, false, false, err);

	if (rv != -ENOSPC || err->se_reason != NULL || store_room_settle(s, &settle_err) != 0)
		return rv;
	err->se_msg[0] = '\0';
	return store_write_loop(s, fn, arg, true, false, err);
}

/*
 * store_write_run() once the disk reserve lets it in (store_room.c); the
 * room promised it is given back after its last run (a map grown, a solo
 * run), when the commit's take has moved the end past what it wrote.
 */
static int
store_write_admitted(struct store *s, store_txn_fn fn, void *arg, uint64_t need, bool upload,
    struct store_error *err)
{
	int rv;

	err->se_reason = NULL;
	rv = store_room_admit(s, need, err);
	if (rv != 0)
		return rv;
	rv = store_write_loop(s, fn, arg, false, upload, err);
	store_room_release(s, need);
	return rv;
}

int
store_write_need(struct store *s, store_txn_fn fn, void *arg, uint64_t need,
    struct store_error *err)
{
	return store_write_admitted(s, fn, arg, need, false, err);
}

int
store_write_upload(struct store *s, store_txn_fn fn, void *arg, uint64_t need,
    struct store_error *err)
{
	return store_write_admitted(s, fn, arg, need, true, err);
}

int
store_write(struct store *s, store_txn_fn fn, void *arg, struct store_error *err)
{
	return store_write_need(s, fn, arg, STORE_NEED_MIN, err);
}

/*
 * Appends an admitted queued write, with s_wq_mu held. With no leader, the
 * lead is the commit thread's, which is woken: once per group, as the
 * writes queued before it runs find the lead taken.
 */
static void
store_wq_push(struct store *s, struct store_wreq *w)
{
	*s->s_wq_tail = w;
	s->s_wq_tail = &w->w_next;
	if (!s->s_wq_busy) {
		s->s_wq_busy = true;
		s->s_wq_kick = true;
		pthread_cond_signal(&s->s_wq_cv);
	}
}

int
store_write_async(struct store *s, store_txn_fn fn, void *arg, uint64_t need,
    struct store_error *err, store_done_fn done, void *done_arg)
{
	struct store_wreq *w;
	int rv;

	err->se_reason = NULL;
	rv = store_room_admit_now(s, need, err);
	if (rv != 0 && rv != -EAGAIN)
		return rv;
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		if (rv == 0)
			store_room_release(s, need);
		return -ENOMEM;
	}
	w->w_need = need;
	w->w_fn = fn;
	w->w_arg = arg;
	w->w_err = err;
	w->w_done_fn = done;
	w->w_done_arg = done_arg;
	pthread_mutex_lock(&s->s_wq_mu);
	if (rv == 0) {
		store_wq_push(s, w);
	} else {
		/* Its admission commits first: the commit thread's. */
		*s->s_wq_admit_tail = w;
		s->s_wq_admit_tail = &w->w_next;
		pthread_cond_signal(&s->s_wq_cv);
	}
	pthread_mutex_unlock(&s->s_wq_mu);
	return 0;
}

/*
 * The commit thread: admits the queued writes whose admission may commit
 * (a settling commit, as a synchronous writer: the lead is not this
 * thread's then), and leads when the queue is its own (s_wq_kick). Until
 * store_close(), after the last write queued.
 */
static void *
store_commit_main(void *arg)
{
	struct store *s = arg;

	pthread_mutex_lock(&s->s_wq_mu);
	for (;;) {
		struct store_wreq *w, *next;

		if (s->s_wq_admit != NULL) {
			w = s->s_wq_admit;
			s->s_wq_admit = NULL;
			s->s_wq_admit_tail = &s->s_wq_admit;
			pthread_mutex_unlock(&s->s_wq_mu);
			for (; w != NULL; w = next) {
				int rv = store_room_admit(s, w->w_need, w->w_err);
				next = w->w_next;
				w->w_next = NULL;
				if (rv != 0) {
					w->w_done_fn(w->w_done_arg, rv);
					free(w);
					continue;
				}
				pthread_mutex_lock(&s->s_wq_mu);
				store_wq_push(s, w);
				pthread_mutex_unlock(&s->s_wq_mu);
			}
			pthread_mutex_lock(&s->s_wq_mu);
		} else if (s->s_wq_kick) {
			s->s_wq_kick = false; /* s_wq_busy stays: this thread leads */
			store_lead(s, NULL);
		} else if (s->s_wq_quit) {
			break;
		} else {
			pthread_cond_wait(&s->s_wq_cv, &s->s_wq_mu);
		}
	}
	pthread_mutex_unlock(&s->s_wq_mu);
	return NULL;
}

/* ---- open, close ---- */

/*
 * Appends a key of klen (<= KEY_MAX) bytes to a growing list of keys and
 * their lengths (both malloc'ed, the caller's to free). -ENOMEM.
 */
int
store_keys_push(uint8_t (**keys)[KEY_MAX], size_t **klens, size_t *nkeys, size_t *cap,
    const void *key, size_t klen)
{
	if (*nkeys == *cap) {
		size_t ncap = *cap != 0 ? 2 * *cap : 64;
		uint8_t (*a)[KEY_MAX] = realloc(*keys, ncap * sizeof(**keys));
		size_t *b;

		if (a == NULL)
			return -ENOMEM;
		*keys = a;
		b = realloc(*klens, ncap * sizeof(**klens));
		if (b == NULL)
			return -ENOMEM;
		*klens = b;
		*cap = ncap;
	}
	memcpy((*keys)[*nkeys], key, klen);
	(*klens)[(*nkeys)++] = klen;
	return 0;
}

static bool
store_format_is(const MDB_val *v, const char *format)
{
	return v->mv_size == strlen(format) && memcmp(v->mv_data, format, v->mv_size) == 0;
}

/*
 * Opens the databases (creating them unless read-only) and checks the format
 * of the data: a store written before chunks had a header is refused; one of
 * format 2 or 3 is upgraded to 6 when opened for writing (read-only, its
 * records are read as they are: readers compute a missing digest from the
 * chunk list), one of 4 or 5 is marked 6 (readers take "ref" values of
 * either form). s_format3 (tests only) keeps or makes format 3 instead.
 */
static int
store_format_txn(struct store *s, MDB_txn *txn)
{
	const char *want = s->s_format3 ? STORE_FORMAT_PLAIN : STORE_FORMAT;
	MDB_val k = { strlen(STORE_FORMAT_KEY), STORE_FORMAT_KEY }, v;
	MDB_stat ms;
	size_t upgraded = 0;
	int rc, rv;

	for (int i = 0; i < DB_COUNT; i++) {
		rc = mdb_dbi_open(txn, store_db_names[i], s->s_readonly ? 0 : MDB_CREATE, &s->s_dbi[i]);
		/*
		 * "spec" and "grant" came later, in the same format: made at the first
		 * open for writing (an older ckpt-nas ignores them).
		 */
		if (rc == MDB_NOTFOUND && (i == DB_SPEC || i == DB_GRANT) && s->s_readonly) {
			if (i == DB_SPEC)
				s->s_no_specs = true;
			else
				s->s_no_grants = true;
			continue;
		}
		if (rc != 0)
			return store_rc(rc);
	}
	rc = mdb_get(txn, s->s_dbi[DB_META], &k, &v);
	if (rc == 0 && store_format_is(&v, want))
		return 0;
	/*
	 * 4, or 4 with keys (store_keys_txn() checks them): read as they are, and
	 * marked 6 on the first open for writing, when "ref" values of the new
	 * form may follow.
	 */
	if (rc == 0 && !s->s_format3 && (store_format_is(&v, STORE_FORMAT_DIGEST) ||
	    store_format_is(&v, STORE_FORMAT_SEALED))) {
		if (s->s_readonly)
			return 0;
		LOG_INFO("store format %c marked %s: reference counts now carry their chunk's size "
		    "(added as commits rewrite them)", *(const char *)v.mv_data, want);
		v.mv_size = strlen(want);
		v.mv_data = (void *)want;
		return store_rc(mdb_put(txn, s->s_dbi[DB_META], &k, &v, 0));
	}
	/* Format 2 is format 3 without tails; 3 is 4 without digests. */
	if (rc == 0 && (store_format_is(&v, STORE_FORMAT_NOTAIL) ||
	    (!s->s_format3 && store_format_is(&v, STORE_FORMAT_PLAIN)))) {
		if (s->s_readonly)
			return 0;
		if (!s->s_format3) {
			/* v points into the map: copied before the records are rewritten. */
			char was[2] = { *(const char *)v.mv_data, '\0' };
			rv = store_upgrade_digests(s, txn, &upgraded);
			if (rv != 0)
				return rv;
			LOG_INFO("store format %s upgraded to %s: %zu records given their digest", was,
			    want, upgraded);
		}
		v.mv_size = strlen(want);
		v.mv_data = (void *)want;
		return store_rc(mdb_put(txn, s->s_dbi[DB_META], &k, &v, 0));
	}
	if (rc == 0)
		return -EPROTO;
	if (rc != MDB_NOTFOUND)
		return store_rc(rc);
	rc = mdb_stat(txn, s->s_dbi[DB_CHUNK], &ms);
	if (rc != 0)
		return store_rc(rc);
	if (ms.ms_entries != 0)
		return -EPROTO;
	if (s->s_readonly)
		return 0;
	v.mv_size = strlen(want);
	v.mv_data = (void *)want;
	return store_rc(mdb_put(txn, s->s_dbi[DB_META], &k, &v, 0));
}

/*
 * Reads the store id into s->s_id, or writes fresh_id (STORE_ID_LEN hex
 * digits) as the id of a store that has none: a new one, or one made before
 * stores had ids.
 */
static int
store_id_txn(struct store *s, MDB_txn *txn, const char *fresh_id)
{
	MDB_val k = { strlen(STORE_ID_KEY), STORE_ID_KEY }, v;
	int rc;

	rc = mdb_get(txn, s->s_dbi[DB_META], &k, &v);
	if (rc == 0 && v.mv_size == STORE_ID_LEN) {
		memcpy(s->s_id, v.mv_data, STORE_ID_LEN);
		s->s_id[STORE_ID_LEN] = '\0';
		return 0;
	}
	if (rc == 0)
		return -EBADMSG; /* not written by this code */
	if (rc != MDB_NOTFOUND || s->s_readonly)
		return rc == MDB_NOTFOUND ? 0 : store_rc(rc);
	v.mv_size = STORE_ID_LEN;
	v.mv_data = (void *)fresh_id;
	rc = mdb_put(txn, s->s_dbi[DB_META], &k, &v, 0);
	if (rc == 0)
		memcpy(s->s_id, fresh_id, STORE_ID_LEN + 1);
	return store_rc(rc);
}

/* The ids of a list of key ids, "0123456789abcdef, ...", into buf. */
static void
store_ids_str(const uint8_t (*ids)[SEAL_ID_LEN], size_t n, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && at + SEAL_ID_HEX_LEN + 3 < len; i++) {
		if (i > 0) {
			memcpy(buf + at, ", ", 3);
			at += 2;
		}
		seal_id_hex(ids[i], buf + at);
		at += SEAL_ID_HEX_LEN;
	}
}

/*
 * The keys: "meta" holds a check value per key id the store has sealed
 * with ("key.<id>"). A key given whose id is known must match its check
 * (-EKEYREJECTED); a store with keys needs a key (-ENOKEY) and at least one
 * of the keys given must be known to it (-EKEYREJECTED: a wrong key, most
 * likely; a rotation gives the old key too, with --decrypt-keys). The
 * sealing key joins the store (and the format becomes 5) when opened for
 * writing. Key ids of the store that were not given go to s_missing: their
 * values fail to read.
 */
static int
store_keys_txn(struct store *s, MDB_txn *txn, struct store_error *err)
{
	const size_t plen = strlen(STORE_KEY_PREFIX);
	uint8_t known[SEAL_KEYS_MAX][SEAL_ID_LEN];
	char kbuf[sizeof(STORE_KEY_PREFIX) + SEAL_ID_HEX_LEN], ids[SEAL_KEYS_MAX * 18 + 1];
	size_t nknown = 0, matched = 0;
	bool has_own = false;
	MDB_cursor *c;
	MDB_val k = { plen, (void *)STORE_KEY_PREFIX }, v;
	int rc, rv = 0;

	s->s_nmissing = 0;
	rc = mdb_cursor_open(txn, s->s_dbi[DB_META], &c);
	if (rc != 0)
		return store_rc(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint8_t id[SEAL_ID_LEN];
		const struct seal_key *key;
		char hex[SEAL_ID_HEX_LEN + 1];

		if (k.mv_size < plen || memcmp(k.mv_data, STORE_KEY_PREFIX, plen) != 0)
			break;
		if (k.mv_size != plen + SEAL_ID_HEX_LEN || v.mv_size != SEAL_CHECK_LEN) {
			store_errorf(err, "the store's key list is malformed");
			rv = -EBADMSG;
			break;
		}
		for (size_t i = 0; i < SEAL_ID_LEN; i++) {
			char two[3] = { ((const char *)k.mv_data)[plen + 2 * i],
				((const char *)k.mv_data)[plen + 2 * i + 1], '\0' };
			id[i] = (uint8_t)strtoul(two, NULL, 16);
		}
		seal_id_hex(id, hex);
		key = seal_ring_find(&s->s_ring, id);
		if (key != NULL && !seal_check_equal(key->sk_check, v.mv_data)) {
			store_errorf(err, "wrong key: key id %s does not match the store's check value "
			    "for it", hex);
			rv = -EKEYREJECTED;
			break;
		}
		if (key != NULL)
			matched++;
		if (key == &s->s_ring.sr_keys[0])
			has_own = true;
		if (key == NULL && s->s_nmissing < SEAL_KEYS_MAX)
			memcpy(s->s_missing[s->s_nmissing++], id, SEAL_ID_LEN);
		if (nknown < SEAL_KEYS_MAX)
			memcpy(known[nknown], id, SEAL_ID_LEN);
		nknown++;
	}
	mdb_cursor_close(c);
	if (rv != 0)
		return rv;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_rc(rc);
	store_ids_str((const uint8_t (*)[SEAL_ID_LEN])known, nknown < SEAL_KEYS_MAX ? nknown :
	    SEAL_KEYS_MAX, ids, sizeof(ids));
	if (nknown != 0 && !s->s_seal) {
		store_errorf(err, "the store is encrypted (key id %s): give its key with "
		    "--encrypt-key FILE", ids);
		return -ENOKEY;
	}
	if (nknown != 0 && matched == 0) {
		char mine[SEAL_ID_HEX_LEN + 1];
		seal_id_hex(s->s_ring.sr_keys[0].sk_id, mine);
		store_errorf(err, "wrong key: the store is sealed under key id %s, the key given is %s "
		    "(to rotate keys, give the old one with --decrypt-keys FILE)", ids, mine);
		return -EKEYREJECTED;
	}
	if (!s->s_seal || has_own || s->s_readonly)
		return 0;
	memcpy(kbuf, STORE_KEY_PREFIX, plen);
	seal_id_hex(s->s_ring.sr_keys[0].sk_id, kbuf + plen);
	k.mv_size = plen + SEAL_ID_HEX_LEN;
	k.mv_data = kbuf;
	v.mv_size = SEAL_CHECK_LEN;
	v.mv_data = (void *)s->s_ring.sr_keys[0].sk_check;
	rc = mdb_put(txn, s->s_dbi[DB_META], &k, &v, 0);
	if (rc == 0) {
		/* 6 tells sealed stores by their keys; format 3 (tests only) goes to 5 as before. */
		const char *format = s->s_format3 ? STORE_FORMAT_SEALED : STORE_FORMAT;
		k.mv_size = strlen(STORE_FORMAT_KEY);
		k.mv_data = STORE_FORMAT_KEY;
		v.mv_size = strlen(format);
		v.mv_data = (void *)format;
		rc = mdb_put(txn, s->s_dbi[DB_META], &k, &v, 0);
	}
	if (rc == 0)
		LOG_INFO("store: new values are sealed under key id %s%s%s", kbuf + plen,
		    nknown != 0 ? "; older keys: " : " (the first key of this store)",
		    nknown != 0 ? ids : "");
	return store_rc(rc);
}

/* Which key ids not given still seal something (store_keys_forget_txn()). */
struct store_forget_op {
	uint64_t fo_count[SEAL_KEYS_MAX]; /* values under s_missing[i] */
};

/* The index in s_missing of the key id a sealed value names, or -1. */
static int
store_missing_index(const struct store *s, const uint8_t *id)
{
	for (size_t i = 0; i < s->s_nmissing; i++)
		if (memcmp(s->s_missing[i], id, SEAL_ID_LEN) == 0)
			return (int)i;
	return -1;
}

/*
 * Counts the chunks and records sealed under each key id the store was not
 * given (reading only their first bytes), and deletes the check value of
 * those that seal nothing any more.
 */
static int
store_keys_forget_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_forget_op *op = arg;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	static const enum store_db dbs[] = { DB_CKPT, DB_CHUNK };

	memset(op->fo_count, 0, sizeof(op->fo_count));
	for (size_t d = 0; d < sizeof(dbs) / sizeof(dbs[0]); d++) {
		enum store_db db = dbs[d];

		rc = mdb_cursor_open(txn, s->s_dbi[db], &c);
		if (rc != 0)
			return store_rc(rc);
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			struct store_chunk_val cv;
			const uint8_t *id = NULL;
			int i;

			if (db == DB_CHUNK && store_chunk_parse(&v, &cv) == 0 && cv.cv_sealed &&
			    cv.cv_len >= SEAL_ID_LEN)
				id = cv.cv_data;
			else if (db == DB_CKPT && v.mv_size >= SEAL_RECORD_MAGIC_LEN + SEAL_OVERHEAD &&
			    memcmp(v.mv_data, SEAL_RECORD_MAGIC, SEAL_RECORD_MAGIC_LEN) == 0)
				id = (const uint8_t *)v.mv_data + SEAL_RECORD_MAGIC_LEN;
			if (id != NULL && (i = store_missing_index(s, id)) >= 0)
				op->fo_count[i]++;
		}
		mdb_cursor_close(c);
		if (rc != MDB_NOTFOUND)
			return store_rc(rc);
	}
	for (size_t i = 0; i < s->s_nmissing; i++) {
		char kbuf[sizeof(STORE_KEY_PREFIX) + SEAL_ID_HEX_LEN];
		MDB_val mk = { strlen(STORE_KEY_PREFIX) + SEAL_ID_HEX_LEN, kbuf };

		if (op->fo_count[i] != 0)
			continue;
		memcpy(kbuf, STORE_KEY_PREFIX, strlen(STORE_KEY_PREFIX));
		seal_id_hex(s->s_missing[i], kbuf + strlen(STORE_KEY_PREFIX));
		rc = mdb_del(txn, s->s_dbi[DB_META], &mk, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return store_rc(rc);
	}
	return 0;
}

/*
 * A key that was dropped after a rotation, once nothing sealed under it is
 * left, is forgotten: the store stops warning about it (and --check stops
 * listing it). Only when some key known to the store was not given.
 */
static int
store_keys_forget(struct store *s, struct store_error *err)
{
	struct store_forget_op op;
	size_t kept = 0;
	int rv;

	rv = store_write_frees(s, store_keys_forget_txn, &op, err);
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < s->s_nmissing; i++) {
		char hex[SEAL_ID_HEX_LEN + 1];
		if (op.fo_count[i] != 0) {
			memmove(s->s_missing[kept++], s->s_missing[i], SEAL_ID_LEN);
			continue;
		}
		seal_id_hex(s->s_missing[i], hex);
		LOG_INFO("store: key id %s seals nothing any more: forgotten", hex);
	}
	s->s_nmissing = kept;
	return 0;
}

struct store_open_arg {
	const char *oa_fresh_id;      /* in case the store has none (store_id_txn) */
	struct store_error *oa_err;
};

static int
store_dbs_open_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_open_arg *oa = arg;
	int rv = store_format_txn(s, txn);

	if (rv == 0)
		rv = store_id_txn(s, txn, oa->oa_fresh_id);
	if (rv == 0)
		rv = store_keys_txn(s, txn, oa->oa_err);
	return rv;
}

/* A new store id: STORE_ID_LEN hex digits of random bytes. */
static int
store_id_new(char *ret_id)
{
	uint8_t raw[STORE_ID_LEN / 2];
	ssize_t got = getrandom(raw, sizeof(raw), 0);

	if (got != (ssize_t)sizeof(raw))
		return got < 0 ? -errno : -EIO;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(ret_id + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

static int
store_env_open(struct store *s, const struct store_config *cfg, struct store_error *err)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t size = (cfg->sc_map_size + page - 1) / page * page;
	MDB_envinfo info;
	MDB_stat st;
	int rc, dead;

	if (size > STORE_MAP_LIMIT) {
		char want[32], lim[32];
		store_size_str(size, want, sizeof(want));
		store_size_str(STORE_MAP_LIMIT, lim, sizeof(lim));
		store_errorf(err, "a map of %s is more than this %zu-bit process can map (%s at most)",
		    want, sizeof(size_t) * CHAR_BIT, lim);
		s->s_env = NULL;
		return -EFBIG;
	}
	rc = mdb_env_create(&s->s_env);
	if (rc != 0) {
		s->s_env = NULL;
		goto out_fail;
	}
	rc = mdb_env_set_maxdbs(s->s_env, STORE_MAXDBS);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(s->s_env, STORE_MAXREADERS);
	if (rc == 0)
		rc = mdb_env_set_mapsize(s->s_env, (size_t)(size > page ? size : page));
	/* Default sync flags: a commit is on disk when it returns. */
	if (rc == 0)
		rc = mdb_env_open(s->s_env, cfg->sc_dir, MDB_NOTLS | (cfg->sc_readonly ? MDB_RDONLY : 0),
		    0640);
	if (rc == 0)
		rc = mdb_env_info(s->s_env, &info);
	if (rc == 0)
		rc = mdb_env_stat(s->s_env, &st);
	if (rc != 0)
		goto out_fail;
	s->s_psize = st.ms_psize;
	/* Reader slots left by a process that died would pin old pages. */
	mdb_reader_check(s->s_env, &dead);
	s->s_map_size = info.me_mapsize;
	s->s_map_max = (cfg->sc_map_max < STORE_MAP_LIMIT ? cfg->sc_map_max : STORE_MAP_LIMIT) /
	    page * page;
	if (s->s_map_max < s->s_map_size)
		s->s_map_max = s->s_map_size;
	return 0;

out_fail:
	store_errorf(err, "%s", mdb_strerror(rc));
	return err_from_mdb(rc);
}

int
store_open(const struct store_config *cfg, struct store **ret_store, size_t *ret_orphans,
    struct store_error *ret_err)
{
	char fresh_id[STORE_ID_LEN + 1];
	struct store_open_arg oa = { fresh_id, ret_err };
	pthread_rwlockattr_t attr;
	struct store *s;
	int rv;

	ret_err->se_msg[0] = '\0';
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->s_readonly = cfg->sc_readonly;
	s->s_format3 = cfg->sc_format3;
	s->s_lock_fd = -1;
	s->s_dir = strdup(cfg->sc_dir);
	if (s->s_dir == NULL) {
		rv = -ENOMEM;
		goto out_close;
	}
	s->s_keep = cfg->sc_keep != 0 ? cfg->sc_keep : STORE_KEEP_DEFAULT;
	rv = cfg->sc_readonly ? 0 : store_mkdir_p(cfg->sc_dir);
	if (rv != 0) {
		store_errorf(ret_err, "cannot create the folder: %s", err_str(rv));
		goto out_close;
	}
	rv = store_lock_dir(s, cfg->sc_dir, ret_err);
	if (rv != 0)
		goto out_close;
	/* Writer preference: a resize must not starve behind a stream of readers. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rv = -pthread_rwlock_init(&s->s_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (rv != 0)
		goto out_close;
	s->s_lock_ready = true;
	rv = -pthread_mutex_init(&s->s_wq_mu, NULL);
	if (rv != 0)
		goto out_close;
	s->s_wq_tail = &s->s_wq_head;
	s->s_wq_admit_tail = &s->s_wq_admit;
	rv = -pthread_cond_init(&s->s_wq_cv, NULL);
	if (rv != 0) {
		pthread_mutex_destroy(&s->s_wq_mu);
		goto out_close;
	}
	s->s_wq_ready = true;
	rv = -pthread_create(&s->s_wq_thread, NULL, store_commit_main, s);
	if (rv != 0)
		goto out_close;
	s->s_wq_thread_on = true;
	if (cfg->sc_ring != NULL && cfg->sc_ring->sr_n != 0) {
		s->s_ring = *cfg->sc_ring;
		s->s_seal = true;
	}
	rv = store_id_new(fresh_id);
	if (rv == 0)
		rv = store_env_open(s, cfg, ret_err);
	/* Taken before the open's writes, which may use it: a NAS starts on a full disk. */
	if (rv == 0)
		rv = store_room_open(s, cfg->sc_disk_reserve);
	if (rv == 0 && s->s_readonly)
		rv = store_read(s, store_dbs_open_txn, &oa);
	else if (rv == 0)
		rv = store_write_frees(s, store_dbs_open_txn, &oa, ret_err);
	/* The databases open: store_room_settle() may write ("meta"). */
	s->s_room_settle = rv == 0 && !s->s_readonly;
	if (rv == -ENOKEY || rv == -EKEYREJECTED || (rv == -EBADMSG && ret_err->se_msg[0] != '\0'))
		goto out_close;
	if (rv == -EPROTO)
		store_errorf(ret_err, "the data is not in a store format this ckpt-nas reads (2 to "
		    "%s): written by a much older or a newer ckpt-nas?", STORE_FORMAT);
	if (rv == -EBADMSG)
		store_errorf(ret_err, "the store id in the data is malformed");
	if (rv == 0 && !s->s_readonly && s->s_nmissing != 0)
		rv = store_keys_forget(s, ret_err);
	if (rv != 0) {
		if (ret_err->se_msg[0] == '\0')
			store_errorf(ret_err, "%s", err_str(rv));
		goto out_close;
	}
	for (size_t i = 0; i < s->s_nmissing; i++) {
		char id[SEAL_ID_HEX_LEN + 1];
		seal_id_hex(s->s_missing[i], id);
		LOG_WARN("store: key id %s was not given: what is sealed under it cannot be read "
		    "(--decrypt-keys FILE)", id);
	}
	/* Last: the sweep's thread starts once the store is whole. */
	rv = store_sweep_start(s, cfg->sc_sweep_manual, ret_err);
	if (rv != 0) {
		if (ret_err->se_msg[0] == '\0')
			store_errorf(ret_err, "%s", err_str(rv));
		goto out_close;
	}
	if (ret_orphans != NULL)
		*ret_orphans = 0;
	*ret_store = s;
	return 0;

out_close:
	store_close(s);
	return rv;
}

const char *
store_id(const struct store *s)
{
	return s->s_id;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	store_sweep_stop(s); /* its thread writes: before the environment goes */
	if (s->s_wq_thread_on) {
		/* It runs what is queued still, then ends. */
		pthread_mutex_lock(&s->s_wq_mu);
		s->s_wq_quit = true;
		pthread_cond_signal(&s->s_wq_cv);
		pthread_mutex_unlock(&s->s_wq_mu);
		pthread_join(s->s_wq_thread, NULL);
	}
	if (s->s_env != NULL)
		mdb_env_close(s->s_env);
	store_room_close(s);
	if (s->s_lock_ready)
		pthread_rwlock_destroy(&s->s_lock);
	if (s->s_wq_ready) {
		pthread_cond_destroy(&s->s_wq_cv);
		pthread_mutex_destroy(&s->s_wq_mu);
	}
	if (s->s_lock_fd >= 0)
		close(s->s_lock_fd); /* after the environment: releases the folder */
	seal_ring_wipe(&s->s_ring);
	free(s->s_dir);
	free(s);
}

/*
 * store_room.c: the disk reserve, so that a full disk can always be emptied.
 *
 * LMDB copies every page a write transaction touches, a delete's too, and
 * writes the copies it cannot place in its free pages past the data file's
 * end (pwrite; the file grows, MDB_WRITEMAP is not used). A delete needs
 * such pages: copies of the tree pages it touches, and one record listing
 * every page it frees (8 bytes each, contiguous pages that LMDB takes from
 * the free pages it already holds in memory, else from the end). On a file
 * system with no room left that write fails (ENOSPC, or EIO for a short
 * write) and the delete with it: whether it fits in LMDB's free pages
 * depends on what the last commits freed, so it failed now and then.
 *
 * The reserve: blocks allocated past the end LMDB uses with
 * fallocate(FALLOC_FL_KEEP_SIZE) (the file's size does not change; LMDB's
 * writes past the end land in blocks the file system already gave), as many
 * as two deletes of anything in a row may write (store_room_size_txn()),
 * and at least s_reserve bytes. Two: LMDB reuses the pages a commit freed
 * only from the commit after next (the meta page before it still names
 * them), so the delete right after another cannot take what that one
 * freed; the third can. It is taken at open and again after every commit
 * (store_room_take()). A write that frees room (store_write_frees():
 * deletes) may use it, and one that finds no room all the same settles
 * (store_room_settle(): a commit of nothing new, after which what the last
 * commit freed is reusable) and runs once more: so deletes one after
 * another go on until the store is empty, each finding what the ones
 * before it freed. Any other write says how much it may need
 * (store_write_need()) and is refused before it runs (store_room_admit())
 * unless the room outside the reserve holds it: the file system's free
 * space, the blocks taken ahead past the reserve, and the LMDB free pages
 * it may take (not those the last commit freed: it would take from the
 * reserve what it cannot place in them; a settling commit first when they
 * make the difference), and, while the reserve is short (deletes used part
 * of it and the disk had nothing to give back), the reserve's size more.
 * Less what is promised: writes admitted and not yet committed (a fleet
 * storing at once, joined into one group commit) are each weighed against
 * the room the others left, not all against the same room, which together
 * they could take more than (s_room_promised).
 * LMDB's file never shrinks: the pages a delete frees are free pages
 * inside it, not room on the file system. The map is kept the same way: a
 * delete at --map-max would fail on MDB_MAP_FULL, so stores leave it the
 * bound two deletes may write.
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include <lmdb.h>

#include "err.h"
#include "log.h"

/* LMDB's free pages, in pages (store_room_free_txn()). */
struct store_room_free {
	uint64_t rf_usable;  /* freed before the last commit: the next write may take them */
	uint64_t rf_runs;    /* of those, the ones in runs of STORE_ROOM_RUN pages or more */
	uint64_t rf_pending; /* freed by the last commit: only the write after next may */
	uint64_t rf_all_runs; /* of all, usable and pending, those in runs */
};

static int
store_room_pg_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Pages in runs of STORE_ROOM_RUN or more of the sorted page numbers pg[n]
 * (each shifted left one bit, the low bit set for a pending page), of the
 * usable ones alone and of all.
 */
static void
store_room_runs(const uint64_t *pg, size_t n, uint64_t *ret_runs, uint64_t *ret_all_runs)
{
	for (int all = 0; all < 2; all++) {
		uint64_t prev = 0, run = 0, sum = 0;
		for (size_t i = 0; i <= n; i++) {
			if (i < n && !all && (pg[i] & 1) != 0)
				continue;
			if (i < n && run != 0 && pg[i] >> 1 == prev + 1) {
				run++;
			} else {
				sum += run >= STORE_ROOM_RUN ? run : 0;
				run = 1;
			}
			if (i < n)
				prev = pg[i] >> 1;
		}
		*(all ? ret_all_runs : ret_runs) = sum;
	}
}

/*
 * Counts LMDB's free pages: each record of its free-page database (key: the
 * id of the transaction that freed them) is a list of pages, its length
 * first. LMDB hands out the pages a commit freed only from the commit after
 * next (the meta page before it still names them), so those of the last
 * commit (the id this read sees) are pending. Readers holding older
 * snapshots hold back more; those are not counted. Runs are counted across
 * records (LMDB merges them as it looks for one), when there are at most
 * STORE_ROOM_SCAN_MAX free pages; beyond, every page counts as in a run
 * (as all were counted before runs were: a write's data that finds none
 * goes past the end, into the reserve).
 */
static int
store_room_free_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_room_free *rf = arg;
	size_t last = mdb_txn_id(txn), n = 0, cap = 0;
	uint64_t *pg = NULL;
	bool scan = true;
	MDB_cursor *c;
	MDB_val k, v;
	int rc, rv;

	(void)s;
	memset(rf, 0, sizeof(*rf));
	rc = mdb_cursor_open(txn, 0 /* LMDB's FREE_DBI */, &c);
	if (rc != 0)
		return store_rc(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		size_t len, id;
		bool pending;
		if (v.mv_size < sizeof(len) || k.mv_size != sizeof(id))
			continue;
		memcpy(&len, v.mv_data, sizeof(len));
		memcpy(&id, k.mv_data, sizeof(id));
		pending = id >= last;
		*(pending ? &rf->rf_pending : &rf->rf_usable) += len;
		/* Not a list LMDB wrote, too many, or no memory: no runs looked for. */
		if (len > v.mv_size / sizeof(size_t) - 1 || n + len > STORE_ROOM_SCAN_MAX)
			scan = false;
		if (scan && n + len > cap) {
			size_t ncap = 2 * (n + len);
			uint64_t *a = realloc(pg, ncap * sizeof(*pg));
			scan = a != NULL;
			pg = a != NULL ? a : pg;
			cap = a != NULL ? ncap : cap;
		}
		if (!scan)
			continue;
		for (size_t i = 1; i <= len; i++) {
			size_t p;
			memcpy(&p, (const char *)v.mv_data + i * sizeof(p), sizeof(p));
			pg[n++] = (uint64_t)p << 1 | pending;
		}
	}
	mdb_cursor_close(c);
	rv = rc == MDB_NOTFOUND ? 0 : store_rc(rc);
	if (rv == 0 && scan) {
		qsort(pg, n, sizeof(*pg), store_room_pg_cmp);
		store_room_runs(pg, n, &rf->rf_runs, &rf->rf_all_runs);
	} else if (rv == 0) {
		rf->rf_runs = rf->rf_usable;
		rf->rf_all_runs = rf->rf_usable + rf->rf_pending;
	}
	free(pg);
	return rv;
}

/*
 * What a write may place in free pages, of pages free in all and runs in
 * runs: its index pages one by one, its values' overflow pages (a chunk's
 * data) only in runs. Counted: the runs, and at most STORE_NEED_MIN of the
 * rest (the index pages a write copies; its data would go past the end).
 */
static uint64_t
store_room_usable(const struct store *s, uint64_t runs, uint64_t pages)
{
	uint64_t small = (pages - runs) * s->s_psize;

	return runs * s->s_psize + (small < STORE_NEED_MIN ? small : STORE_NEED_MIN);
}

/*
 * Rewrites the store's format value as it is: a commit of nothing new, for
 * store_room_settle().
 */
static int
store_room_settle_txn(struct store *s, MDB_txn *txn, void *arg)
{
	MDB_val k = { strlen(STORE_FORMAT_KEY), STORE_FORMAT_KEY }, v;
	char buf[16];
	int rc;

	(void)arg;
	rc = mdb_get(txn, s->s_dbi[DB_META], &k, &v);
	if (rc != 0)
		return store_rc(rc);
	if (v.mv_size > sizeof(buf))
		return -EBADMSG;
	memcpy(buf, v.mv_data, v.mv_size); /* v points into the page the put copies */
	v.mv_data = buf;
	return store_rc(mdb_put(txn, s->s_dbi[DB_META], &k, &v, 0));
}

int
store_room_settle(struct store *s, struct store_error *err)
{
	if (!s->s_room_settle || atomic_load(&s->s_reserve) == 0)
		return -EAGAIN;
	return store_write_run(s, store_room_settle_txn, NULL, err);
}

/* What the reserve must hold now: store_room_size_txn()'s answer. */
struct store_room_size {
	uint64_t rs_end;  /* the end LMDB uses: its last page's end */
	uint64_t rs_want; /* bytes */
};

/*
 * The most two deletes in a row may write past the end, whatever they
 * delete: twice the most one may write. One delete may write a copy of
 * every branch and leaf page of every database (LMDB copies a page once per
 * transaction; a delete frees overflow pages without copying them), the
 * record listing the pages it frees (8 bytes a page, at most every page of
 * the file, and the free pages LMDB holds in memory saved again likewise),
 * and STORE_ROOM_SLACK pages. Twice: the second delete cannot take what
 * the first freed (the third can), so with nothing else free both write
 * past the end.
 */
static int
store_room_size_txn(struct store *s, MDB_txn *txn, void *arg)
{
	struct store_room_size *rs = arg;
	uint64_t tree = 0, pages;
	MDB_envinfo info;
	MDB_stat st;
	int rc;

	rc = mdb_env_info(s->s_env, &info);
	for (size_t i = 0; rc == 0 && i < DB_COUNT + 2; i++) {
		/* LMDB's free-page and main databases (0 and 1), then the store's once opened. */
		MDB_dbi dbi = i < 2 ? (MDB_dbi)i : s->s_dbi[i - 2];
		if (i >= 2 && dbi < 2)
			continue;
		rc = mdb_stat(txn, dbi, &st);
		if (rc == 0)
			tree += (uint64_t)st.ms_branch_pages + st.ms_leaf_pages;
	}
	if (rc != 0)
		return store_rc(rc);
	pages = (uint64_t)info.me_last_pgno + 1;
	rs->rs_end = pages * s->s_psize;
	rs->rs_want = 2 * (tree + 2 * ((pages + 1) * sizeof(size_t) / s->s_psize + 1) +
	    STORE_ROOM_SLACK) * s->s_psize;
	return 0;
}

/*
 * Allocates the reserve past the end LMDB uses (its last page), unless the
 * blocks taken last time cover it still. Logs when it becomes short or
 * whole again.
 */
void
store_room_take(struct store *s)
{
	uint64_t min = atomic_load(&s->s_reserve), want, taken;
	struct store_room_size rs;
	bool held, was;
	char size[32];
	int fd, rv;

	if (min == 0 || mdb_env_get_fd(s->s_env, &fd) != 0)
		return;
	/*
	 * The sizes are read and saved under s_room_mu, so a take that read
	 * them before a later commit cannot save them after that commit's take
	 * (admission would count room in the map the later commit used).
	 * s_room_mu is never taken with s_lock held (store_read() takes it).
	 */
	pthread_mutex_lock(&s->s_room_mu);
	if (store_read(s, store_room_size_txn, &rs) != 0)
		goto out_unlock;
	want = rs.rs_want > min ? rs.rs_want : min;
	atomic_store(&s->s_reserve_bound, rs.rs_want);
	atomic_store(&s->s_room_end, rs.rs_end);
	was = atomic_load(&s->s_reserve_held);
	atomic_store(&s->s_reserve_want, want);
	if (was && rs.rs_end + want <= s->s_reserve_limit) {
		atomic_store(&s->s_room_ahead, s->s_reserve_limit - rs.rs_end - want);
		goto out_unlock;
	}
	/*
	 * A quarter more than the reserve, so the next commits (which move the
	 * end a few pages each) find it covered: one fallocate() per megabytes
	 * written, not one per commit. On a disk without that room, the reserve
	 * alone.
	 */
	taken = want + (want / 4 > STORE_ROOM_AHEAD_MIN ? want / 4 : STORE_ROOM_AHEAD_MIN);
	rv = fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)rs.rs_end, (off_t)taken) == 0 ? 0 : -errno;
	if (rv == -ENOSPC || rv == -EDQUOT) {
		taken = want;
		rv = fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)rs.rs_end, (off_t)taken) == 0 ? 0 : -errno;
	}
	held = rv == 0;
	s->s_reserve_limit = held ? rs.rs_end + taken : 0;
	atomic_store(&s->s_room_ahead, held ? taken - want : 0);
	atomic_store(&s->s_reserve_held, held);
	store_human(want, size, sizeof(size));
	if (rv != 0 && rv != -ENOSPC && rv != -EDQUOT && rv != -EINTR) {
		/* EOPNOTSUPP (no fallocate there), EFBIG...: no reserve rather than no stores. */
		atomic_store(&s->s_reserve, 0);
		LOG_WARN("store: cannot allocate blocks ahead in %s (fallocate: %s): no reserve for "
		    "deletes on a full disk", s->s_dir, err_str(rv));
	} else if (!held && was) {
		LOG_WARN("store: the disk holding the NAS data (%s) has no room for the %s kept for "
		    "deletes (%s): stores are refused unless LMDB's free pages hold them and the "
		    "reserve; deletes go on", s->s_dir, size, err_str(rv));
	} else if (held && !was) {
		LOG_INFO("store: %s reserved for deletes past the end of the data again", size);
	}
out_unlock:
	pthread_mutex_unlock(&s->s_room_mu);
}

int
store_room_open(struct store *s, uint64_t reserve)
{
	int rv = -pthread_mutex_init(&s->s_room_mu, NULL);

	if (rv != 0)
		return rv;
	s->s_room_ready = true;
	/* Held until the first take says otherwise: the first take logs only a shortage. */
	atomic_store(&s->s_reserve_held, true);
	atomic_store(&s->s_reserve_want, reserve);
	s->s_reserve_limit = 0;
	atomic_store(&s->s_reserve, s->s_readonly ? 0 : reserve);
	store_room_take(s);
	return 0;
}

void
store_room_close(struct store *s)
{
	if (s->s_room_ready)
		pthread_mutex_destroy(&s->s_room_mu);
	s->s_room_ready = false;
}

/*
 * Two rooms, each with what deletes need kept out of it: the disk's (its
 * free space and the blocks taken ahead past the reserve; while the
 * reserve is short, the reserve's size less) and the map's (up to
 * --map-max, less the bound two deletes may write: at --map-max a delete
 * would fail on MDB_MAP_FULL as it does on a full disk). LMDB's free pages
 * count in both, when the rest does not do, but only those the write may
 * take: not those the last commit freed (were they counted, a write right
 * after a delete would take from the reserve what it cannot place in
 * them). When those would make the room, one settling commit makes them
 * the write's to take (without it a write after a delete on a full disk
 * would be refused again and again, no commit coming to make them
 * reusable), and the write is weighed again; not when the last commit
 * freed no more than a settling one does (refused writes one after another
 * would each settle). What earlier admissions promised and their writes
 * have not yet finished counts as taken from both rooms: it is added to
 * the need (the room it is weighed against is read before those writes
 * commit; once they have, and their commit's take has moved the end, they
 * give it back: store_room_release()). The promise is made first, so two
 * admissions at the same moment each see the other's; a refused one gives
 * it back, and one at the same moment may have been refused for it
 * (refused early on a nearly full disk, never admitted beyond the room).
 * One atomic add a write when the disk has room, and one to give back.
 */
static int
store_room_admit_at(struct store *s, uint64_t need, bool may_settle, struct store_error *err)
{
	uint64_t reserve, bound, avail, end, map_room, disk_room, disk_want, map_want, promised;
	char avail_s[32], total_s[32], reserve_s[32], max_s[32], promised_s[64] = "";
	struct store_room_free rf;
	bool held, disk_ok, map_ok, settled = false, later = false;
	struct store_error settle_err;
	struct statvfs vfs;

	promised = atomic_fetch_add(&s->s_room_promised, need);
	if (atomic_load(&s->s_reserve) == 0)
		return 0;
	held = atomic_load(&s->s_reserve_held);
	if (!held) {
		store_room_take(s); /* the disk may have room again */
		held = atomic_load(&s->s_reserve_held);
	}
	reserve = atomic_load(&s->s_reserve_want);
	bound = atomic_load(&s->s_reserve_bound);
	/*
	 * The end at the last commit's take, not mdb_env_info() here: that
	 * reads the meta pages in the map, which a resize (store_grow(), under
	 * the write side of s_lock) unmaps; this runs outside the lock.
	 */
	end = atomic_load(&s->s_room_end);
	map_room = s->s_map_max > end ? s->s_map_max - end : 0;
	map_want = need + promised + bound;
	map_ok = map_room >= map_want;
	/* statvfs failing: cannot tell, LMDB's write will. */
	disk_ok = statvfs(s->s_dir, &vfs) != 0;
	avail = disk_ok ? 0 : (uint64_t)vfs.f_bavail * vfs.f_frsize;
	disk_room = avail + (held ? atomic_load(&s->s_room_ahead) : 0);
	disk_want = need + promised + (held ? 0 : reserve);
	disk_ok = disk_ok || disk_room >= disk_want;
	while ((!disk_ok || !map_ok) && store_read(s, store_room_free_txn, &rf) == 0) {
		uint64_t usable = store_room_usable(s, rf.rf_runs, rf.rf_usable);
		uint64_t settled_usable = store_room_usable(s, rf.rf_all_runs,
		    rf.rf_usable + rf.rf_pending);

		disk_ok = disk_ok || disk_room + usable >= disk_want;
		map_ok = map_ok || map_room + usable >= map_want;
		if ((disk_ok && map_ok) || settled || rf.rf_pending <= STORE_ROOM_SETTLE ||
		    disk_room + settled_usable < disk_want || map_room + settled_usable < map_want)
			break;
		later = !may_settle;
		if (later || store_room_settle(s, &settle_err) != 0)
			break;
		settled = true;
	}
	if (later) {
		store_room_release(s, need);
		return -EAGAIN;
	}
	if (!map_ok || !disk_ok)
		store_room_release(s, need);
	if (!map_ok) {
		store_size_str(s->s_map_max, max_s, sizeof(max_s));
		store_human(bound, reserve_s, sizeof(reserve_s));
		store_errorf(err, "NAS storage full (map-max %s reached, %s of it kept for deletes)",
		    max_s, reserve_s);
		return -ENOSPC;
	}
	if (disk_ok)
		return 0;
	store_human(avail, avail_s, sizeof(avail_s));
	store_human((uint64_t)vfs.f_blocks * vfs.f_frsize, total_s, sizeof(total_s));
	store_human(reserve, reserve_s, sizeof(reserve_s));
	if (promised != 0) {
		char p[32];
		store_human(promised, p, sizeof(p));
		snprintf(promised_s, sizeof(promised_s), ", %s promised to stores under way", p);
	}
	store_errorf(err, "the disk holding the NAS data (%s) is full: %s free of %s, %s kept for "
	    "deletes%s (ckptctl rm makes room)", s->s_dir, avail_s, total_s, reserve_s, promised_s);
	return -ENOSPC;
}

int
store_room_admit(struct store *s, uint64_t need, struct store_error *err)
{
	return store_room_admit_at(s, need, true, err);
}

int
store_room_admit_now(struct store *s, uint64_t need, struct store_error *err)
{
	return store_room_admit_at(s, need, false, err);
}

void
store_room_release(struct store *s, uint64_t need)
{
	atomic_fetch_sub(&s->s_room_promised, need);
}

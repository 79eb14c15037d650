#include "cmd_data.h"
#include "limit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ckpt/v1/manager.pb-c.h"
#include "bcache.h"
#include "ckpt/v1/nas.pb-c.h"
#include "digest.h"
#include "err.h"
#include "jout.h"
#include "key.h"
#include "ranges.h"
#include "sha.h"
#include "util.h"

#define DATA_KIND_DEFAULT "raw"

/* ---- get ---- */

/*
 * The temporary file of `get -o FILE`, removed by the signal handler if the
 * user interrupts the transfer: a FILE.tmp.XXXXXX must not be left behind.
 */
static char data_tmp_path[PATH_MAX];
static volatile sig_atomic_t data_tmp_live;

static void
data_on_signal(int sig)
{
	if (data_tmp_live)
		unlink(data_tmp_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

struct data_sink {
	int ds_fd;
	const char *ds_name;   /* for messages: the temporary file or "stdout" */
	int ds_err;            /* write error, 0 if none */
	struct sha_ctx *ds_sha; /* get --sha256: the plain SHA-256 of what is written */
};

/* The pieces of a restore as they lie (nasc_retrieve_fallback_v): one writev(2) for many. */
static int
data_sink_writev(void *arg, struct iovec *iov, int count)
{
	struct data_sink *s = arg;
	int rv;

	if (s->ds_sha != NULL)
		for (int i = 0; i < count; i++)
			sha_update(s->ds_sha, iov[i].iov_base, iov[i].iov_len);
	rv = util_writev_all(s->ds_fd, iov, count);
	if (rv != 0)
		s->ds_err = rv;
	return rv;
}

/* Starts the output again (fallback after DATA_LOSS): only a seekable file can. */
static int
data_sink_reset(void *arg)
{
	struct data_sink *s = arg;
	uint8_t discard[SHA_LEN];
	if (lseek(s->ds_fd, 0, SEEK_SET) != 0 || ftruncate(s->ds_fd, 0) != 0)
		return -errno;
	if (s->ds_sha != NULL)
		sha_final(s->ds_sha, discard); /* starts it again */
	return 0;
}

/* Creates FILE.tmp.XXXXXX next to path, with the mode a new file would get. */
static int
data_tmp_create(struct ctl *c, const char *path, int *ret_fd)
{
	struct sigaction sa;
	mode_t mask;
	int fd;

	if (strlen(path) + sizeof(".tmp.XXXXXX") > sizeof(data_tmp_path))
		return ctl_fail(c, -ENAMETOOLONG, "%s: %s", path, err_str(-ENAMETOOLONG));
	snprintf(data_tmp_path, sizeof(data_tmp_path), "%s.tmp.XXXXXX", path);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = data_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	fd = mkstemp(data_tmp_path);
	if (fd < 0) {
		int rv = -errno;
		return ctl_fail(c, rv, "cannot create a temporary file next to %s: %s", path,
		    err_str(rv));
	}
	data_tmp_live = 1;
	mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	*ret_fd = fd;
	return 0;
}

static void
data_tmp_discard(int fd)
{
	if (fd >= 0)
		close(fd);
	if (data_tmp_live) {
		unlink(data_tmp_path);
		data_tmp_live = 0;
	}
}

/* fsync, close, rename over path, fsync the directory: the file is whole or absent. */
static int
data_tmp_commit(struct ctl *c, int fd, const char *path)
{
	char dir[PATH_MAX];
	int rv = 0, dfd;

	if (fsync(fd) != 0) {
		rv = -errno;
		ctl_fail(c, rv, "syncing %s: %s", data_tmp_path, err_str(rv));
		data_tmp_discard(fd);
		return rv;
	}
	if (close(fd) != 0) {
		rv = -errno;
		ctl_fail(c, rv, "closing %s: %s", data_tmp_path, err_str(rv));
		data_tmp_discard(-1);
		return rv;
	}
	if (rename(data_tmp_path, path) != 0) {
		rv = -errno;
		ctl_fail(c, rv, "renaming %s to %s: %s", data_tmp_path, path, err_str(rv));
		data_tmp_discard(-1);
		return rv;
	}
	data_tmp_live = 0;
	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

int
cmd_get(struct ctl *c, int argc, char **argv)
{
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1], hex[SHA_HEX_LEN + 1];
	char dstr[DIGEST_STR_LEN];
	const char *out = NULL;
	bool want_sha = false;
	const struct ctl_flag flags[] = {
		{ "-o", "--output", CTL_FLAG_STR, &out, NULL },
		{ NULL, "--sha256", CTL_FLAG_BOOL, &want_sha, NULL },
	};
	struct data_sink sink = { STDOUT_FILENO, "stdout", 0, NULL };
	uint8_t plain[SHA_LEN];
	struct rpc_error err = { 0 };
	struct nasc_fallback fb = { 0 };
	struct nasc_info info;
	struct nasc *nas;
	uint64_t seq = 0;
	bool to_file;
	char *pos[1];
	size_t npos;
	int rv, fd = -1;

	rv = ctl_args(c, argc, argv, flags, 2, pos, 1, 1, &npos);
	if (rv == 0)
		rv = ctl_parse_ref(c, pos[0], node, comp, &seq);
	if (rv == 0 && out != NULL && out[0] == '\0')
		rv = ctl_usage(c, "get: -o needs a file name (or - for stdout)");
	/* As curl does: checkpoint bytes on a terminal garble it and help no one. */
	if (rv == 0 && out == NULL && isatty(STDOUT_FILENO))
		rv = ctl_usage(c, "get: refusing to write a binary checkpoint to a terminal: "
				  "give -o FILE, redirect stdout, or -o - to write it anyway");
	if (rv != 0)
		return rv;
	to_file = out != NULL && strcmp(out, "-") != 0;
	if (to_file) {
		struct stat st;
		if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
			return ctl_fail(c, -EISDIR, "cannot write %s: %s", out, err_str(-EISDIR));
	}
	rv = ctl_nas(c, &nas);
	if (rv == 0 && want_sha && sha_new(&sink.ds_sha) != 0)
		rv = ctl_fail(c, -ENOMEM, "%s", err_str(-ENOMEM));
	if (rv != 0)
		return rv;
	if (to_file) {
		rv = data_tmp_create(c, out, &fd);
		if (rv != 0)
			return rv;
		sink.ds_fd = fd;
		sink.ds_name = data_tmp_path;
	}
	/* Without @SEQ, a corrupt latest falls back to the previous sequence (said on stderr). */
	rv = nasc_retrieve_fallback_v(nas, node, comp, seq, data_sink_writev,
	    seq == 0 ? data_sink_reset : NULL, &sink, ctl_timeout_at_least(c, CTL_DATA_TIMEOUT_MS),
	    &info, &fb, &err);
	if (rv == 0 && fb.nf_bad_seq != 0)
		ctl_warn("%s@%" PRIu64 " is corrupt (DATA_LOSS); got %s/%s@%" PRIu64 " instead",
		    comp, fb.nf_bad_seq, info.ni_node, info.ni_component, info.ni_seq);
	if (rv != 0) {
		if (sink.ds_err != 0)
			ctl_fail(c, rv, "writing to %s: %s", sink.ds_name, err_str(sink.ds_err));
		else
			ctl_fail_rpc(c, rv, &err);
		if (to_file)
			data_tmp_discard(fd);
		sha_free(sink.ds_sha);
		return rv;
	}
	if (sink.ds_sha != NULL)
		sha_final(sink.ds_sha, plain);
	sha_free(sink.ds_sha);
	if (to_file) {
		rv = data_tmp_commit(c, fd, out);
		if (rv != 0)
			return rv;
	}
	/* The plain SHA-256: computed with --sha256, else the record's own when it has one. */
	if (want_sha)
		ctl_hex(plain, SHA_LEN, hex);
	else if (info.ni_has_sha256)
		ctl_hex(info.ni_sha256, SHA_LEN, hex);
	digest_str(info.ni_digest, dstr);
	if (to_file && c->c_conf.cf_json) {
		json_t *o = jout_key(info.ni_node, info.ni_component, info.ni_seq);
		jout_set(o, "size", jout_u64(info.ni_size));
		jout_set(o, "digest", jout_str(dstr));
		jout_set(o, "sha256", want_sha || info.ni_has_sha256 ? jout_str(hex) : json_null());
		jout_set(o, "file", jout_str(out));
		return jout_print(c, o, false);
	}
	/* As sha256sum prints it; on stderr when stdout holds the bytes. */
	if (want_sha) {
		fprintf(to_file ? stdout : stderr, "%s  %s\n", hex, to_file ? out : "-");
		return to_file ? ctl_flush_stdout(c) : 0;
	}
	/* Otherwise nothing: stdout holds the bytes, or FILE does and silence is success. */
	return 0;
}

/* ---- put ---- */

struct data_source {
	int dsr_fd;
	const char *dsr_name;
	int dsr_err;
};

static ssize_t
data_source_read(void *arg, void *buf, size_t len)
{
	struct data_source *s = arg;
	for (;;) {
		ssize_t k = read(s->dsr_fd, buf, len);
		if (k >= 0)
			return k;
		if (errno != EINTR) {
			s->dsr_err = -errno;
			return s->dsr_err;
		}
	}
}

/* Tells the manager's catalogue about the stored checkpoint; failure is a warning. */
static void
data_notify(struct ctl *c, const struct nasc_info *info)
{
	Ckpt__V1__NotifyRequest req = CKPT__V1__NOTIFY_REQUEST__INIT;
	Ckpt__V1__CheckpointInfo ci = CKPT__V1__CHECKPOINT_INFO__INIT;
	Ckpt__V1__NotifyReply *rep = NULL;
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1], kind[sizeof(info->ni_kind)];
	uint8_t sha[SHA_LEN];
	uint8_t digest[SHA_LEN];

	if (c->c_conf.cf_manager == NULL || c->c_conf.cf_manager[0] == '\0')
		return; /* NAS given with --nas and no manager: nobody to tell */
	memcpy(node, info->ni_node, sizeof(node));
	memcpy(comp, info->ni_component, sizeof(comp));
	memcpy(kind, info->ni_kind, sizeof(kind));
	memcpy(sha, info->ni_sha256, SHA_LEN);
	memcpy(digest, info->ni_digest, SHA_LEN);
	ci.node = node;
	ci.component = comp;
	ci.kind = kind;
	ci.seq = info->ni_seq;
	ci.epoch = info->ni_epoch;
	ci.size = info->ni_size;
	if (info->ni_has_sha256) {
		ci.sha256.data = sha;
		ci.sha256.len = SHA_LEN;
	}
	ci.digest.data = digest;
	ci.digest.len = SHA_LEN;
	ci.created_unix_ms = info->ni_created_unix_ms;
	ci.chunk_count = info->ni_chunk_count;
	req.checkpoint = &ci;
	if (ctl_mgr_call(c, MGR_NOTIFY, &req.base, ctl_timeout(c), (ProtobufCMessage **)&rep) != 0) {
		ctl_warn("stored, but the manager was not notified: %s", c->c_err);
		c->c_err[0] = '\0';
		c->c_usage = false;
		return;
	}
	rpc_reply_free(&rep->base);
}

/*
 * Stores what src reads. A regular file is read in place (mmap): chunking,
 * the chunk digests and the whole digest then run over it at once, on two
 * threads. -EAGAIN when its size or mtime changed meanwhile (*ret_info holds
 * what was stored).
 */
static int
data_put(struct nasc *nas, const struct nasc_put *put, struct data_source *src,
    const struct nasc_hints *h, unsigned timeout_ms, struct nasc_info *ret_info,
    struct rpc_error *err)
{
	struct stat before, after;
	void *map;
	int rv;

	if (fstat(src->dsr_fd, &before) != 0 || !S_ISREG(before.st_mode) || before.st_size <= 0 ||
	    (uint64_t)before.st_size > SIZE_MAX)
		return nasc_store(nas, put, data_source_read, src, timeout_ms, ret_info, err);
	map = mmap(NULL, (size_t)before.st_size, PROT_READ, MAP_PRIVATE, src->dsr_fd, 0);
	if (map == MAP_FAILED)
		return nasc_store(nas, put, data_source_read, src, timeout_ms, ret_info, err);
	/* Two calls: advice values are not flags to be or-ed. With hints, a few pages are read. */
	if (h == NULL) {
		(void)madvise(map, (size_t)before.st_size, MADV_SEQUENTIAL);
		(void)madvise(map, (size_t)before.st_size, MADV_WILLNEED);
	}
	/* Pages sent are dropped from the mapping: memory stays bounded for any size. */
	rv = nasc_store_file(nas, put, src->dsr_fd, map, (size_t)before.st_size, h, timeout_ms,
	    ret_info, err);
	munmap(map, (size_t)before.st_size);
	if (rv == 0 && (fstat(src->dsr_fd, &after) != 0 || after.st_size != before.st_size ||
	    after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
	    after.st_mtim.tv_nsec != before.st_mtim.tv_nsec))
		rv = -EAGAIN;
	return rv;
}

/*
 * A --seq below the component's newest is stored (a backfill is a deliberate
 * operator action and loses nothing), but it is not the checkpoint that get
 * and restores take: say so on stderr. Best effort: a failed listing is silent.
 */
static void
data_warn_if_older(struct ctl *c, const struct nasc_info *info)
{
	Ckpt__V1__ListRequest req = CKPT__V1__LIST_REQUEST__INIT;
	Ckpt__V1__ListReply *rep = NULL;
	const Ckpt__V1__CheckpointInfo *newest = NULL;

	req.node = "";
	req.component = (char *)info->ni_component;
	req.latest_only = true;
	if (ctl_nas_call(c, NAS_LIST, &req.base, ctl_timeout(c), (ProtobufCMessage **)&rep) != 0) {
		c->c_err[0] = '\0';
		return;
	}
	for (size_t i = 0; i < rep->n_checkpoints; i++)
		if (newest == NULL || rep->checkpoints[i]->seq > newest->seq)
			newest = rep->checkpoints[i];
	if (newest != NULL && newest->seq > info->ni_seq)
		ctl_warn("%s/%s@%" PRIu64 " is older than the newest checkpoint of %s, %s/%s@%" PRIu64
			 ": get without @SEQ and restores take that one (omit --seq to store after it)",
		    info->ni_node, info->ni_component, info->ni_seq, info->ni_component, newest->node,
		    newest->component, newest->seq);
	rpc_reply_free(&rep->base);
}

/*
 * A put at epoch above the one comp's live owner runs it at fences that
 * owner (the NAS refuses its next store, and it stops comp). Without force
 * that is refused here, naming the owner; with it, the manager restores comp
 * from the new checkpoint once notified. No manager to ask: nothing checked.
 */
static int
data_check_fence(struct ctl *c, const char *comp, uint64_t epoch, bool force)
{
	Ckpt__V1__ListNodesRequest req = CKPT__V1__LIST_NODES_REQUEST__INIT;
	Ckpt__V1__ListNodesReply *rep = NULL;
	char n[KEY_NAME_MAX + 1];
	int rv;

	if (epoch == 0 || c->c_conf.cf_manager == NULL || c->c_conf.cf_manager[0] == '\0')
		return 0;
	rv = ctl_mgr_call(c, MGR_LIST_NODES, &req.base, ctl_timeout(c), (ProtobufCMessage **)&rep);
	if (rv != 0) {
		if (force) {
			ctl_warn("cannot ask the manager who runs %s (%s): storing anyway (--force)",
			    comp, c->c_err);
			c->c_err[0] = '\0';
			c->c_usage = false;
			return 0;
		}
		return ctl_fail(c, rv, "put: cannot ask the manager who runs %s, which an epoch of "
		    "%" PRIu64 " may fence: %s (--force stores anyway)", comp, epoch, c->c_err);
	}
	for (size_t i = 0; rv == 0 && i < rep->n_nodes; i++) {
		const Ckpt__V1__NodeInfo *ni = rep->nodes[i];
		if (ni == NULL || ni->state == NULL || strcmp(ni->state, "up") != 0)
			continue;
		for (size_t j = 0; j < ni->n_components; j++) {
			const Ckpt__V1__ComponentStatus *cs = ni->components[j];
			if (cs == NULL || cs->name == NULL || strcmp(cs->name, comp) != 0 ||
			    cs->epoch >= epoch)
				continue;
			if (!force)
				rv = ctl_fail(c, -EBUSY,
				    "put: %s runs on %s at epoch %" PRIu64 ": a checkpoint at epoch %" PRIu64
				    " fences it (its next store is refused and it stops); add --force to "
				    "store it anyway and have the manager restore %s from it",
				    comp, ctl_clean(ni->id, n, sizeof(n)), cs->epoch, epoch, comp);
			break;
		}
	}
	rpc_reply_free(&rep->base);
	return rv;
}

/*
 * Base cache (--cache DIR): before the put, the file of node/comp, when it
 * is whole and consistent, becomes the client's remembered list (a regular
 * file only: its bytes are in memory, so a list whose chunks were deleted
 * since costs a whole put, not a failed one). *ret_state: "used", "missing"
 * or "ignored" (with why on stderr); the put's JSON says "stale" for a used
 * one that cost a whole put. Never fails the put. ret_digest: the digest of
 * the state the file lists (used only), the base of --changed.
 */
static void
data_cache_load(struct nasc *nas, const char *dir, const char *node, const char *comp,
    bool regular, const char **ret_state, uint8_t ret_digest[SHA_LEN])
{
	char path[PATH_MAX], why[PATH_MAX + 128];
	struct bcache_list l;
	int rv;

	*ret_state = "missing";
	if (!regular || bcache_path(dir, node, comp, path, sizeof(path)) != 0)
		return;
	rv = bcache_load(path, node, comp, &l, why, sizeof(why));
	if (rv == -ENOENT)
		return;
	if (rv == 0) {
		rv = nasc_cache_import(nas, node, comp, &l, why, sizeof(why));
		memcpy(ret_digest, l.bl_digest, SHA_LEN);
		bcache_list_free(&l);
	}
	if (rv != 0) {
		ctl_warn("ignoring the base cache file: %s", why);
		*ret_state = "ignored";
		return;
	}
	*ret_state = "used";
}

/* After a put: the list stored, with its fingerprints, into DIR (made if missing). */
static void
data_cache_save(struct nasc *nas, const char *dir, const char *node, const char *comp)
{
	char path[PATH_MAX], why[PATH_MAX + 128];
	struct bcache_list l;
	int rv;

	if (nasc_cache_export(nas, node, comp, &l) != 0) {
		/* Small (inline) or read from a pipe: nothing to remember; an older file would be stale. */
		if (bcache_path(dir, node, comp, path, sizeof(path)) == 0)
			(void)unlink(path);
		return;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		ctl_warn("cannot make the base cache folder %s: %s", dir, strerror(errno));
	} else if (bcache_path(dir, node, comp, path, sizeof(path)) != 0) {
		ctl_warn("base cache path too long in %s", dir);
	} else if ((rv = bcache_save(path, node, comp, &l, why, sizeof(why))) != 0) {
		ctl_warn("cannot write the base cache: %s", why);
	}
	bcache_list_free(&l);
}

int
cmd_put(struct ctl *c, int argc, char **argv)
{
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1], hex[DIGEST_STR_LEN];
	const char *in = NULL, *kind = DATA_KIND_DEFAULT, *cache = NULL, *cache_state = NULL;
	const char *changed = NULL;
	uint64_t seq = 0, ref_seq = 0, epoch = 0, page = 4096;
	bool seq_seen = false, force = false, page_seen = false;
	const struct ctl_flag flags[] = {
		{ NULL, "--force", CTL_FLAG_BOOL, &force, NULL },
		{ "-i", "--input", CTL_FLAG_STR, &in, NULL },
		{ NULL, "--seq", CTL_FLAG_U64, &seq, &seq_seen },
		{ NULL, "--epoch", CTL_FLAG_U64, &epoch, NULL },
		{ NULL, "--kind", CTL_FLAG_STR, &kind, NULL },
		{ NULL, "--cache", CTL_FLAG_STR, &cache, NULL },
		{ NULL, "--changed", CTL_FLAG_STR, &changed, NULL },
		{ NULL, "--page-size", CTL_FLAG_U64, &page, &page_seen },
	};
	struct nasc_range *ranges = NULL;
	struct nasc_hints hints = { { 0 }, NULL, 0 };
	const struct nasc_hints *hp = NULL;
	uint8_t base[SHA_LEN];
	size_t nranges = 0;
	struct data_source src = { STDIN_FILENO, "stdin", 0 };
	struct rpc_error err = { 0 };
	struct nasc_put put = { 0 };
	struct nasc_info info;
	struct nasc *nas;
	char *pos[1];
	size_t npos;
	int rv, fd = -1;

	rv = ctl_args(c, argc, argv, flags, sizeof(flags) / sizeof(flags[0]), pos, 1, 1, &npos);
	if (rv == 0)
		rv = ctl_parse_ref(c, pos[0], node, comp, &ref_seq);
	if (rv == 0 && ref_seq != 0 && seq_seen && seq != ref_seq)
		rv = ctl_usage(c, "put: %s and --seq %" PRIu64 " disagree", pos[0], seq);
	if (rv == 0 && (strlen(kind) > LIMIT_KIND_MAX || key_name_check(kind) != 0))
		rv = ctl_usage(c, "put: bad --kind '%s': 1 to %d characters of [A-Za-z0-9._-]", kind,
		    LIMIT_KIND_MAX);
	if (rv == 0 && in != NULL && in[0] == '\0')
		rv = ctl_usage(c, "put: -i needs a file name (or - for stdin)");
	if (rv == 0 && cache == NULL)
		cache = getenv("CKPT_CACHE_DIR");
	if (cache != NULL && cache[0] == '\0')
		cache = NULL;
	if (rv == 0 && page_seen && changed == NULL)
		rv = ctl_usage(c, "put: --page-size goes with --changed");
	if (rv == 0 && changed != NULL && cache == NULL)
		rv = ctl_usage(c, "put: --changed needs --cache DIR (or CKPT_CACHE_DIR): its ranges "
		    "are what changed since the put that wrote the cache");
	if (rv == 0 && changed != NULL && (in == NULL || strcmp(in, "-") == 0))
		rv = ctl_usage(c, "put: --changed needs -i FILE, a regular file");
	if (rv == 0 && changed != NULL) {
		char why[PATH_MAX + 128];
		int lrv = ranges_load(changed, page, &ranges, &nranges, why, sizeof(why));
		if (lrv == -EINVAL && strncmp(why, "page size", 9) == 0)
			rv = ctl_usage(c, "put: bad --page-size: %s", why);
		else if (lrv == -EINVAL || lrv == -E2BIG)
			rv = ctl_usage(c, "put: --changed %s: %s", changed, why);
		else if (lrv != 0)
			rv = ctl_fail(c, lrv, "put: --changed: %s", why);
	}
	if (rv != 0)
		return rv;
	if (ref_seq != 0)
		seq = ref_seq;
	rv = data_check_fence(c, comp, epoch, force);
	if (rv != 0)
		return rv;
	if (in != NULL && strcmp(in, "-") != 0) {
		fd = open(in, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rv = -errno;
			return ctl_fail(c, rv, "cannot open %s: %s", in, err_str(rv));
		}
		src.dsr_fd = fd;
		src.dsr_name = in;
	}
	if (changed != NULL) {
		struct stat sb;
		if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
			rv = ctl_usage(c, "put: --changed needs -i FILE, a regular file (%s is not)", in);
			goto out;
		}
	}
	rv = ctl_nas(c, &nas);
	if (rv != 0)
		goto out;
	put.np_node = node;
	put.np_component = comp;
	put.np_kind = kind;
	put.np_seq = seq;
	put.np_epoch = epoch;
	if (cache != NULL) {
		struct stat sb;
		data_cache_load(nas, cache, node, comp, fstat(src.dsr_fd, &sb) == 0 &&
		    S_ISREG(sb.st_mode), &cache_state, base);
	} else {
		/* Nothing will remember them: no fingerprints. */
		nasc_set_fingerprints(nas, false);
	}
	if (changed != NULL && strcmp(cache_state, "used") == 0) {
		char path[PATH_MAX];
		memcpy(hints.nh_base_digest, base, SHA_LEN);
		hints.nh_ranges = ranges;
		hints.nh_count = nranges;
		hp = &hints;
		/*
		 * The file goes until this put succeeds (and writes it again): a put
		 * that fails or is killed must not leave a base whose next --changed,
		 * written as if this one had been stored, would leave its ranges out.
		 */
		if (bcache_path(cache, node, comp, path, sizeof(path)) == 0)
			(void)unlink(path);
	} else if (changed != NULL) {
		ctl_warn("--changed not used: the base cache of %s/%s in %s is %s: a whole put", node,
		    comp, cache, cache_state);
	}
	rv = data_put(nas, &put, &src, hp, ctl_timeout_at_least(c, CTL_DATA_TIMEOUT_MS), &info, &err);
	if (rv == -EAGAIN) {
		rv = ctl_fail(c, -EIO, "%s changed while it was stored: put it again once it is "
		    "complete (the checkpoint stored, %s/%s@%" PRIu64 ", may not read back)",
		    src.dsr_name, info.ni_node, info.ni_component, info.ni_seq);
		goto out;
	}
	if (rv != 0) {
		if (src.dsr_err != 0) {
			ctl_fail(c, rv, "reading %s: %s", src.dsr_name, err_str(src.dsr_err));
		} else if (rpc_error_is(&err, ERR_REASON_MISSING_CHUNKS)) {
			/*
			 * The protocol step ("send them with PutChunks") is ours, not the
			 * user's. A file was put twice already (nasc_store_file()); from a
			 * pipe, nasc cannot read the bytes again.
			 */
			ctl_fail(c, rv, "%s/%s: chunks this checkpoint needs were deleted on the NAS "
					"while it was stored (rm, retention, or the sweep after a NAS "
					"restart): nothing was stored; run the same put again",
			    node, comp);
			ctl_fail_cause(c, &err);
		} else {
			ctl_fail_rpc(c, rv, &err);
		}
		goto out;
	}
	if (info.ni_seq == 0 || info.ni_node[0] == '\0') {
		rv = ctl_fail(c, -EPROTO, "%s: Nas.Store: the reply holds no checkpoint record",
		    c->c_nas_url);
		goto out;
	}
	if (cache != NULL)
		data_cache_save(nas, cache, node, comp);
	data_notify(c, &info);
	if (seq != 0)
		data_warn_if_older(c, &info);
	digest_str(info.ni_digest, hex);
	if (c->c_conf.cf_json) {
		json_t *o = jout_key(info.ni_node, info.ni_component, info.ni_seq);
		jout_set(o, "size", jout_u64(info.ni_size));
		jout_set(o, "digest", jout_str(hex));
		/* The writer no longer reads the bytes twice: no plain SHA-256 is known. */
		jout_set(o, "sha256", json_null());
		jout_set(o, "epoch", jout_u64(info.ni_epoch));
		jout_set(o, "kind", jout_str(info.ni_kind));
		jout_set(o, "created_unix_ms", jout_u64(info.ni_created_unix_ms));
		jout_set(o, "chunks", jout_u64(info.ni_chunk_count));
		{
			/* What this store cost on the wire (after dedup and compression). */
			struct nasc_stats ns;
			nasc_get_stats(nas, &ns);
			jout_set(o, "sent_bytes", jout_u64(ns.ns_sent_bytes));
			jout_set(o, "sent_chunks", jout_u64(ns.ns_put_chunks));
			jout_set(o, "sent_chunk_bytes", jout_u64(ns.ns_put_bytes));
			/* Bytes hashed (SHA-256) and bytes of chunk entries taken from the base cache. */
			jout_set(o, "hashed_bytes", jout_u64(ns.ns_hashed_bytes));
			jout_set(o, "reused_bytes", jout_u64(ns.ns_reused_bytes));
			/* Its new chunks went inline in the Store: no PutChunks, one commit. */
			jout_set(o, "inline", json_boolean(ns.ns_held_inline != 0 ||
			    ns.ns_inline_stores != 0));
			/* Made again whole because the NAS missed chunks at the commit (0 or 1). */
			jout_set(o, "retries", jout_u64(ns.ns_stale_retries + ns.ns_race_retries));
			/* A cache whose chunks the NAS had lost cost a whole put: say so. */
			if (cache_state != NULL && ns.ns_stale_retries != 0 &&
			    strcmp(cache_state, "used") == 0)
				cache_state = "stale";
			if (cache_state != NULL)
				jout_set(o, "cache", jout_str(cache_state));
			/*
			 * --changed: whether its ranges made the list stored ("unused": a
			 * whole put, also after a stale cache's refused first attempt).
			 */
			if (changed != NULL)
				jout_set(o, "changed", jout_str(ns.ns_hinted_stores != 0 &&
				    ns.ns_stale_retries == 0 ? "used" : "unused"));
		}
		rv = jout_print(c, o, false);
	} else {
		char n[KEY_NAME_MAX + 1], m[KEY_NAME_MAX + 1];
		printf("stored %s/%s@%" PRIu64 " size=%" PRIu64 " digest=%s\n",
		    ctl_clean(info.ni_node, n, sizeof(n)), ctl_clean(info.ni_component, m, sizeof(m)),
		    info.ni_seq, info.ni_size, hex);
		rv = ctl_flush_stdout(c);
	}
out:
	free(ranges);
	if (fd >= 0)
		close(fd);
	return rv;
}

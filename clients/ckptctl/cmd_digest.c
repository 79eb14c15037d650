#include "cmd_digest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/v1/nas.pb-c.h"
#include "digest.h"
#include "err.h"
#include "jout.h"
#include "key.h"
#include "methods.h"
#include "nasc.h"
#include "sha.h"

/* A local file, mapped whole (read-only). */
struct dg_file {
	const uint8_t *df_data;
	size_t df_len;
};

static int
dg_map(struct ctl *c, const char *path, struct dg_file *ret)
{
	struct stat st;
	void *map = NULL;
	int fd, rv = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rv = -errno;
		return ctl_fail(c, rv, "cannot open %s: %s", path, err_str(rv));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		rv = ctl_fail(c, -EINVAL, "%s: not a regular file", path);
	else if (st.st_size > 0 &&
	    (map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED)
		rv = ctl_fail(c, -errno, "cannot map %s: %s", path, err_str(-errno));
	close(fd);
	if (rv == 0) {
		ret->df_data = st.st_size > 0 ? map : (const uint8_t *)"";
		ret->df_len = (size_t)st.st_size;
	}
	return rv;
}

static void
dg_unmap(struct dg_file *f)
{
	if (f->df_len > 0)
		munmap((void *)f->df_data, f->df_len);
}

/* The record of node/comp@seq (Nas.Retrieve); *ret_info filled from it. */
static int
dg_record(struct ctl *c, const char *node, const char *comp, uint64_t seq,
    struct nasc_info *ret_info)
{
	Ckpt__V1__RetrieveRequest req = CKPT__V1__RETRIEVE_REQUEST__INIT;
	Ckpt__V1__RetrieveReply *rep = NULL;
	struct rpc_error err = { 0 };
	struct nasc *nas;
	uint8_t digest[SHA_LEN];
	int rv;

	rv = ctl_nas(c, &nas);
	if (rv != 0)
		return rv;
	req.node = (char *)node;
	req.component = (char *)comp;
	req.seq = seq;
	rv = nasc_call(nas, NAS_RETRIEVE, &req.base, ctl_timeout(c), (ProtobufCMessage **)&rep, &err);
	if (rv != 0)
		return ctl_fail_rpc(c, rv, &err);
	nasc_info_from_pb(rep->info, ret_info);
	/* A record read by a NAS that did not upgrade it: its digest from its list. */
	if (!ret_info->ni_has_digest && digest_refs(rep->chunks, rep->n_chunks, digest) == 0) {
		memcpy(ret_info->ni_digest, digest, SHA_LEN);
		ret_info->ni_has_digest = true;
	}
	rpc_reply_free(&rep->base);
	return 0;
}

int
cmd_digest(struct ctl *c, int argc, char **argv)
{
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1], str[DIGEST_STR_LEN];
	const char *like = NULL;
	const struct ctl_flag flags[] = {
		{ NULL, "--like", CTL_FLAG_STR, &like, NULL },
	};
	struct chunk_params cp;
	struct nasc_info info;
	struct dg_file f;
	uint8_t digest[SHA_LEN];
	uint64_t seq = 0;
	char *pos[1];
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, flags, 1, pos, 1, 1, &npos);
	if (rv == 0 && like != NULL)
		rv = ctl_parse_ref(c, like, node, comp, &seq);
	if (rv != 0)
		return rv;
	/* The record's chunking, or this client's (--chunk-min/avg/max, as put cuts). */
	if (like != NULL) {
		rv = dg_record(c, node, comp, seq, &info);
		if (rv != 0)
			return rv;
		rv = digest_params(info.ni_chunk_min, info.ni_chunk_avg, info.ni_chunk_max, &cp);
	} else {
		rv = chunk_params_init((uint32_t)c->c_conf.cf_chunk_min,
		    (uint32_t)c->c_conf.cf_chunk_avg, (uint32_t)c->c_conf.cf_chunk_max, &cp);
	}
	if (rv != 0)
		return ctl_fail(c, rv, "chunking parameters: %s", err_str(rv));
	rv = dg_map(c, pos[0], &f);
	if (rv != 0)
		return rv;
	rv = digest_buf(&cp, f.df_data, f.df_len, digest);
	dg_unmap(&f);
	if (rv != 0)
		return ctl_fail(c, rv, "digest of %s: %s", pos[0], err_str(rv));
	digest_str(digest, str);
	if (c->c_conf.cf_json) {
		json_t *o = jout_object();
		jout_set(o, "file", jout_str(pos[0]));
		jout_set(o, "size", jout_u64(f.df_len));
		jout_set(o, "digest", jout_str(str));
		jout_set(o, "chunk_min", jout_u64(cp.cp_min));
		jout_set(o, "chunk_avg", jout_u64(cp.cp_avg));
		jout_set(o, "chunk_max", jout_u64(cp.cp_max));
		return jout_print(c, o, false);
	}
	printf("%s  %s\n", str, pos[0]);
	return ctl_flush_stdout(c);
}

int
cmd_verify(struct ctl *c, int argc, char **argv)
{
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1];
	char got[DIGEST_STR_LEN], want[DIGEST_STR_LEN];
	struct chunk_params cp;
	struct nasc_info info;
	struct dg_file f;
	uint8_t digest[SHA_LEN];
	uint64_t seq = 0;
	bool plain, match;
	char *pos[2];
	size_t npos;
	int rv;

	rv = ctl_args(c, argc, argv, NULL, 0, pos, 2, 2, &npos);
	if (rv == 0)
		rv = ctl_parse_ref(c, pos[1], node, comp, &seq);
	if (rv == 0)
		rv = dg_record(c, node, comp, seq, &info);
	if (rv != 0)
		return rv;
	/*
	 * A record of the older format without its chunking: its plain SHA-256
	 * (the cuts of its writer are not known). Otherwise the digest, cut as
	 * the record was.
	 */
	plain = info.ni_chunk_max == 0 && info.ni_has_sha256;
	rv = digest_params(info.ni_chunk_min, info.ni_chunk_avg, info.ni_chunk_max, &cp);
	if (rv != 0)
		return ctl_fail(c, rv, "%s: its chunking parameters are invalid", pos[1]);
	rv = dg_map(c, pos[0], &f);
	if (rv != 0)
		return rv;
	if (plain)
		sha256(f.df_data, f.df_len, digest);
	else
		rv = digest_buf(&cp, f.df_data, f.df_len, digest);
	dg_unmap(&f);
	if (rv != 0)
		return ctl_fail(c, rv, "digest of %s: %s", pos[0], err_str(rv));
	if (plain) {
		char hex[SHA_HEX_LEN + 1];
		sha_hex(digest, SHA_LEN, hex);
		snprintf(got, sizeof(got), "%s:%s", DIGEST_ALG_PLAIN, hex);
		sha_hex(info.ni_sha256, SHA_LEN, hex);
		snprintf(want, sizeof(want), "%s:%s", DIGEST_ALG_PLAIN, hex);
		match = f.df_len == info.ni_size && memcmp(digest, info.ni_sha256, SHA_LEN) == 0;
	} else {
		digest_str(digest, got);
		digest_str(info.ni_digest, want);
		match = info.ni_has_digest && f.df_len == info.ni_size &&
		    memcmp(digest, info.ni_digest, SHA_LEN) == 0;
	}
	if (c->c_conf.cf_json) {
		json_t *o = jout_key(info.ni_node, info.ni_component, info.ni_seq);
		jout_set(o, "file", jout_str(pos[0]));
		jout_set(o, "match", match ? json_true() : json_false());
		jout_set(o, "digest", jout_str(want));
		jout_set(o, "file_digest", jout_str(got));
		rv = jout_print(c, o, false);
	} else if (match) {
		printf("%s is %s/%s@%" PRIu64 " (%s)\n", pos[0], info.ni_node, info.ni_component,
		    info.ni_seq, want);
		rv = ctl_flush_stdout(c);
	}
	if (rv == 0 && !match)
		rv = ctl_fail(c, -EBADMSG, "%s is not %s/%s@%" PRIu64 ": its digest is %s, the "
		    "checkpoint's %s", pos[0], info.ni_node, info.ni_component, info.ni_seq, got, want);
	return rv;
}

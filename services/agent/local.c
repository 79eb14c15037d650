/*
 * local: the Local service for libckpt applications (local.h says what and
 * how; proto/ckpt/v1/local.proto the protocol and the segment).
 *
 * Every call is checked against the process the agent expects: the peer's
 * pid comes from the ipc connection (SO_PEERCRED through nng), not from the
 * request. A segment is opened through /proc/PID/fd/N of that pid only, and
 * is used only when it is a regular file sealed against shrinking (else the
 * application could truncate it under our mapping and the agent would die
 * of SIGBUS), exactly as large as announced, with every region inside it.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/transport/ipc/ipc.h>

#include "ckpt/v1/local.pb-c.h"
#include "key.h"
#include "local.h"
#include "log.h"
#include "methods.h"
#include "rpc.h"

#define LOCAL_PROTO_VERSION 1u
/* Checkpoint requests: at most 1024 regions of 64 ranges, about 1.6 MB. */
#define LOCAL_RECV_MAX (4u << 20)
#define LOCAL_SEG_FREE 0u
#define LOCAL_SEG_HANDED 1u

static const char LOCAL_SEG_MAGIC[8] = { 'C', 'K', 'P', 'T', 'S', 'E', 'G', '1' };

/* local.proto: the segment's header. */
struct local_seg_header {
	char sh_magic[8];
	_Atomic uint32_t sh_state;
	uint32_t sh_reserved;
	uint64_t sh_seq;
};

struct local_comp {
	char cm_name[KEY_NAME_MAX + 1];
	pid_t cm_pid;                  /* 0: bound by the first Hello */
	uint64_t cm_max_bytes;
	uint64_t cm_seq;
	uint8_t *cm_state;             /* restored state (stored form), NULL: none */
	size_t cm_state_len;
	struct local_region *cm_regions; /* into cm_state */
	size_t cm_n_regions;
};

struct local_server {
	struct local_config ls_cfg;
	char ls_url[1024];
	struct rpc_server *ls_rpc;
	pthread_mutex_t ls_lock;       /* guards ls_comps */
	struct local_comp *ls_comps[LIMIT_NODE_COMPONENTS_MAX];
};

/* ---- the stored form ---- */

size_t
local_state_header_size(size_t n_regions)
{
	return LOCAL_STATE_HEAD + n_regions * LOCAL_STATE_ENTRY;
}

int
local_state_size(const struct local_region *regions, size_t n, uint64_t *ret_size)
{
	uint64_t size;

	if (n > LOCAL_REGIONS_MAX)
		return -EINVAL;
	size = local_state_header_size(n);
	for (size_t i = 0; i < n; i++) {
		if (regions[i].lr_size > UINT64_MAX - size)
			return -EOVERFLOW;
		size += regions[i].lr_size;
	}
	*ret_size = size;
	return 0;
}

static void
local_put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void
local_put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint32_t
local_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t
local_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

int
local_state_header(const struct local_region *regions, size_t n, void *buf, size_t len)
{
	uint8_t *p = buf;

	if (n > LOCAL_REGIONS_MAX || len < local_state_header_size(n))
		return -EINVAL;
	memcpy(p, LOCAL_STATE_MAGIC, 8);
	local_put32(p + 8, (uint32_t)n);
	local_put32(p + 12, 0);
	for (size_t i = 0; i < n; i++) {
		uint8_t *e = p + LOCAL_STATE_HEAD + i * LOCAL_STATE_ENTRY;
		local_put32(e, regions[i].lr_id);
		local_put32(e + 4, 0);
		local_put64(e + 8, regions[i].lr_size);
	}
	return 0;
}

int
local_state_encode(const struct local_region *regions, size_t n, void *buf, size_t len)
{
	uint64_t size;
	uint8_t *p = buf;
	int rv;

	rv = local_state_size(regions, n, &size);
	if (rv != 0)
		return rv;
	if (size != len)
		return -EINVAL;
	rv = local_state_header(regions, n, buf, len);
	if (rv != 0)
		return rv;
	p += local_state_header_size(n);
	for (size_t i = 0; i < n; i++) {
		memcpy(p, regions[i].lr_data, regions[i].lr_size);
		p += regions[i].lr_size;
	}
	return 0;
}

int
local_state_decode(const void *buf, size_t len, struct local_region **ret_regions,
    size_t *ret_n)
{
	const uint8_t *p = buf;
	struct local_region *r;
	uint64_t off;
	uint32_t n;

	if (len < LOCAL_STATE_HEAD || memcmp(p, LOCAL_STATE_MAGIC, 8) != 0 ||
	    local_get32(p + 12) != 0)
		return -EBADMSG;
	n = local_get32(p + 8);
	if (n > LOCAL_REGIONS_MAX || len < local_state_header_size(n))
		return -EBADMSG;
	r = calloc(n > 0 ? n : 1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	off = local_state_header_size(n);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = p + LOCAL_STATE_HEAD + (size_t)i * LOCAL_STATE_ENTRY;
		uint64_t size = local_get64(e + 8);

		r[i].lr_id = local_get32(e);
		if (local_get32(e + 4) != 0 || size > len - off)
			goto out_bad;
		for (uint32_t k = 0; k < i; k++)
			if (r[k].lr_id == r[i].lr_id)
				goto out_bad;
		r[i].lr_data = p + off;
		r[i].lr_size = size;
		r[i].lr_whole = true;
		off += size;
	}
	if (off != len)
		goto out_bad;
	*ret_regions = r;
	*ret_n = n;
	return 0;
out_bad:
	free(r);
	return -EBADMSG;
}

static int
local_range_cmp(const void *a, const void *b)
{
	const struct local_range *x = a, *y = b;

	return x->lg_offset < y->lg_offset ? -1 : x->lg_offset > y->lg_offset;
}

int
local_ckpt_changed(const struct local_ckpt *ck, struct local_range **ret_ranges,
    size_t *ret_n)
{
	struct local_range *g;
	size_t n = 1, k = 0, out = 0;
	uint64_t off = local_state_header_size(ck->lc_n_regions);

	for (size_t i = 0; i < ck->lc_n_regions; i++)
		n += ck->lc_regions[i].lr_whole ? 1 : ck->lc_regions[i].lr_n_changed;
	g = calloc(n, sizeof(*g));
	if (g == NULL)
		return -ENOMEM;
	g[k++] = (struct local_range){ 0, off };
	for (size_t i = 0; i < ck->lc_n_regions; i++) {
		const struct local_region *r = &ck->lc_regions[i];
		if (r->lr_whole) {
			g[k++] = (struct local_range){ off, r->lr_size };
		} else {
			for (size_t j = 0; j < r->lr_n_changed; j++)
				g[k++] = (struct local_range){ off + r->lr_changed[j].lg_offset,
					r->lr_changed[j].lg_length };
		}
		off += r->lr_size;
	}
	qsort(g, k, sizeof(*g), local_range_cmp);
	for (size_t i = 0; i < k; i++) {
		if (g[i].lg_length == 0)
			continue;
		if (out > 0 && g[i].lg_offset <= g[out - 1].lg_offset + g[out - 1].lg_length) {
			uint64_t end = g[i].lg_offset + g[i].lg_length;
			if (end > g[out - 1].lg_offset + g[out - 1].lg_length)
				g[out - 1].lg_length = end - g[out - 1].lg_offset;
			continue;
		}
		g[out++] = g[i];
	}
	*ret_ranges = g;
	*ret_n = out;
	return 0;
}

/* ---- checkpoints handed over ---- */

void
local_ckpt_release(struct local_ckpt *ck)
{
	if (ck == NULL)
		return;
	if (ck->lc_map != NULL) {
		struct local_seg_header *h = (struct local_seg_header *)ck->lc_map;
		atomic_store_explicit(&h->sh_state, LOCAL_SEG_FREE, memory_order_release);
		munmap(ck->lc_map, ck->lc_map_size);
	}
	if (ck->lc_fd >= 0)
		close(ck->lc_fd);
	free(ck->lc_own_ranges);
	free(ck->lc_own_regions);
	free(ck);
}

/* ---- the table of expected components (ls_lock held) ---- */

static void
local_comp_drop_state(struct local_comp *c)
{
	free(c->cm_regions);
	free(c->cm_state);
	c->cm_regions = NULL;
	c->cm_state = NULL;
	c->cm_state_len = 0;
	c->cm_n_regions = 0;
}

static void
local_comp_free(struct local_comp *c)
{
	if (c == NULL)
		return;
	local_comp_drop_state(c);
	free(c);
}

static int
local_comp_slot(struct local_server *s, const char *name)
{
	for (int i = 0; i < LIMIT_NODE_COMPONENTS_MAX; i++)
		if (s->ls_comps[i] != NULL && strcmp(s->ls_comps[i]->cm_name, name) == 0)
			return i;
	return -1;
}

int
local_expect(struct local_server *s, const struct local_expect *le)
{
	struct local_comp *c;
	int rv, slot;

	if (le->le_component == NULL || key_name_check(le->le_component) != 0 || le->le_pid < 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	snprintf(c->cm_name, sizeof(c->cm_name), "%s", le->le_component);
	c->cm_pid = le->le_pid;
	c->cm_max_bytes = le->le_max_bytes;
	c->cm_seq = le->le_seq;
	if (le->le_state != NULL) {
		c->cm_state = malloc(le->le_state_len ? le->le_state_len : 1);
		if (c->cm_state == NULL) {
			rv = -ENOMEM;
			goto out_free;
		}
		memcpy(c->cm_state, le->le_state, le->le_state_len);
		c->cm_state_len = le->le_state_len;
		rv = local_state_decode(c->cm_state, c->cm_state_len, &c->cm_regions,
		    &c->cm_n_regions);
		if (rv != 0)
			goto out_free;
		if (le->le_max_bytes != 0 &&
		    c->cm_state_len - local_state_header_size(c->cm_n_regions) > le->le_max_bytes) {
			rv = -EFBIG;
			goto out_free;
		}
	}
	pthread_mutex_lock(&s->ls_lock);
	slot = local_comp_slot(s, c->cm_name);
	if (slot < 0) {
		for (int i = 0; i < LIMIT_NODE_COMPONENTS_MAX && slot < 0; i++)
			if (s->ls_comps[i] == NULL)
				slot = i;
	}
	if (slot >= 0) {
		local_comp_free(s->ls_comps[slot]);
		s->ls_comps[slot] = c;
		c = NULL;
		rv = 0;
	} else {
		rv = -ENOSPC;
	}
	pthread_mutex_unlock(&s->ls_lock);
out_free:
	local_comp_free(c);
	return rv;
}

int
local_bind(struct local_server *s, const char *component, pid_t pid)
{
	int slot, rv = -ENOENT;

	if (pid <= 0)
		return -EINVAL;
	pthread_mutex_lock(&s->ls_lock);
	slot = local_comp_slot(s, component);
	if (slot >= 0) {
		struct local_comp *c = s->ls_comps[slot];
		if (c->cm_pid == 0)
			c->cm_pid = pid;
		rv = c->cm_pid == pid ? 0 : -EPERM;
	}
	pthread_mutex_unlock(&s->ls_lock);
	return rv;
}

int
local_forget(struct local_server *s, const char *component)
{
	int slot, rv = -ENOENT;

	pthread_mutex_lock(&s->ls_lock);
	slot = local_comp_slot(s, component);
	if (slot >= 0) {
		local_comp_free(s->ls_comps[slot]);
		s->ls_comps[slot] = NULL;
		rv = 0;
	}
	pthread_mutex_unlock(&s->ls_lock);
	return rv;
}

/* ---- the service ---- */

static int
local_peer_pid(struct rpc_call *call, pid_t *ret_pid)
{
	uint64_t pid;

	if (nng_pipe_get_uint64(rpc_call_pipe(call), NNG_OPT_IPC_PEER_PID, &pid) != 0 ||
	    pid == 0 || pid > INT32_MAX) {
		rpc_call_errorf(call, "the caller's pid is unknown (not an ipc connection)");
		return -EACCES;
	}
	*ret_pid = (pid_t)pid;
	return 0;
}

/*
 * Finds the component the call names and checks the caller is its process
 * (binding it when the agent expects any). Returns with ls_lock held on
 * success (*ret_comp valid until unlocked).
 */
static int
local_lookup(struct local_server *s, struct rpc_call *call, const char *name,
    struct local_comp **ret_comp, pid_t *ret_pid)
{
	struct local_comp *c;
	pid_t pid;
	int slot, rv;

	rv = local_peer_pid(call, &pid);
	if (rv != 0)
		return rv;
	if (name == NULL || key_name_check(name) != 0) {
		rpc_call_errorf(call, "component name must be 1 to %d bytes of [A-Za-z0-9._-]",
		    KEY_NAME_MAX);
		return -EINVAL;
	}
	pthread_mutex_lock(&s->ls_lock);
	slot = local_comp_slot(s, name);
	if (slot < 0) {
		pthread_mutex_unlock(&s->ls_lock);
		rpc_call_errorf(call, "component %s is not run by this agent", name);
		return -ENOENT;
	}
	c = s->ls_comps[slot];
	if (c->cm_pid == 0)
		c->cm_pid = pid;
	if (c->cm_pid != pid) {
		pid_t want = c->cm_pid;
		pthread_mutex_unlock(&s->ls_lock);
		rpc_call_errorf(call, "pid %d is not component %s (its process is %d)", (int)pid,
		    name, (int)want);
		return -EACCES;
	}
	*ret_comp = c;
	*ret_pid = pid;
	return 0;
}

static int
local_hello(void *arg, struct rpc_call *call, const ProtobufCMessage *req_msg,
    ProtobufCMessage *reply_msg)
{
	struct local_server *s = arg;
	const Ckpt__V1__HelloRequest *req = (const Ckpt__V1__HelloRequest *)req_msg;
	Ckpt__V1__HelloReply *reply = (Ckpt__V1__HelloReply *)reply_msg;
	struct arena *arena = rpc_call_arena(call);
	struct local_comp *c;
	pid_t pid;
	int rv;

	if (req->version != LOCAL_PROTO_VERSION) {
		rpc_call_errorf(call, "libckpt protocol version %" PRIu32 ", this agent speaks %u",
		    req->version, LOCAL_PROTO_VERSION);
		return -ESTALE;
	}
	rv = local_lookup(s, call, req->component, &c, &pid);
	if (rv != 0)
		return rv;
	if (req->pid != (uint32_t)pid) {
		rpc_call_errorf(call, "Hello says pid %" PRIu32 ", the connection is pid %d",
		    req->pid, (int)pid);
		rv = -EACCES;
		goto out_unlock;
	}
	reply->max_bytes = c->cm_max_bytes;
	reply->max_regions = LOCAL_REGIONS_MAX;
	reply->piece_max = LOCAL_PIECE_MAX;
	if (c->cm_state != NULL) {
		reply->restart = true;
		reply->seq = c->cm_seq;
		reply->regions = arena_alloc(arena, (c->cm_n_regions + 1) * sizeof(*reply->regions));
		if (reply->regions == NULL) {
			rv = -ENOMEM;
			goto out_unlock;
		}
		for (size_t i = 0; i < c->cm_n_regions; i++) {
			Ckpt__V1__LocalRegionInfo *ri = arena_alloc(arena, sizeof(*ri));
			if (ri == NULL) {
				rv = -ENOMEM;
				goto out_unlock;
			}
			ckpt__v1__local_region_info__init(ri);
			ri->id = c->cm_regions[i].lr_id;
			ri->size = c->cm_regions[i].lr_size;
			reply->regions[reply->n_regions++] = ri;
		}
	}
out_unlock:
	pthread_mutex_unlock(&s->ls_lock);
	if (rv == 0 && s->ls_cfg.lc_on_event != NULL)
		s->ls_cfg.lc_on_event(s->ls_cfg.lc_arg, req->component, pid, LOCAL_EV_HELLO);
	return rv;
}

static int
local_get_region(void *arg, struct rpc_call *call, const ProtobufCMessage *req_msg,
    ProtobufCMessage *reply_msg)
{
	struct local_server *s = arg;
	const Ckpt__V1__GetRegionRequest *req = (const Ckpt__V1__GetRegionRequest *)req_msg;
	Ckpt__V1__GetRegionReply *reply = (Ckpt__V1__GetRegionReply *)reply_msg;
	const struct local_region *r = NULL;
	struct local_comp *c;
	uint64_t n;
	pid_t pid;
	int rv;

	rv = local_lookup(s, call, req->component, &c, &pid);
	if (rv != 0)
		return rv;
	if (c->cm_state == NULL) {
		rpc_call_errorf(call, "component %s has no restored state (fresh start, or "
		    "checkpointed since)", c->cm_name);
		rv = -ESTALE;
		goto out_unlock;
	}
	for (size_t i = 0; i < c->cm_n_regions && r == NULL; i++)
		if (c->cm_regions[i].lr_id == req->id)
			r = &c->cm_regions[i];
	if (r == NULL) {
		rpc_call_errorf(call, "restored state of %s has no region %" PRIu32, c->cm_name,
		    req->id);
		rv = -ENOENT;
		goto out_unlock;
	}
	if (req->offset > r->lr_size || req->length > LOCAL_PIECE_MAX) {
		rpc_call_errorf(call, "region %" PRIu32 ": offset %" PRIu64 " of %" PRIu64
		    " bytes, length %" PRIu32 " (at most %u)", req->id, req->offset, r->lr_size,
		    req->length, LOCAL_PIECE_MAX);
		rv = -EINVAL;
		goto out_unlock;
	}
	n = r->lr_size - req->offset < req->length ? r->lr_size - req->offset : req->length;
	reply->data.data = arena_memdup(rpc_call_arena(call), r->lr_data + req->offset,
	    n ? (size_t)n : 1);
	reply->data.len = (size_t)n;
	if (reply->data.data == NULL)
		rv = -ENOMEM;
out_unlock:
	pthread_mutex_unlock(&s->ls_lock);
	return rv;
}

/* Opens, checks and maps the segment req names in pid's fd table. */
static int
local_map_segment(struct rpc_call *call, pid_t pid, const Ckpt__V1__LocalCheckpointRequest *req,
    struct local_ckpt *ck)
{
	const struct local_seg_header *h;
	char path[64];
	struct stat st;
	int seals, rv;

	if (req->fd < 0 || req->segment_size < LOCAL_SEG_HEADER || req->segment_size > SIZE_MAX) {
		rpc_call_errorf(call, "segment fd %" PRId32 " of %" PRIu64 " bytes is not valid",
		    req->fd, req->segment_size);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd/%" PRId32, (int)pid, req->fd);
	ck->lc_fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (ck->lc_fd < 0) {
		rv = -errno;
		rpc_call_errorf(call, "cannot open the segment %s: %s", path, strerror(errno));
		return rv == -ENOENT ? -EINVAL : rv;
	}
	if (fstat(ck->lc_fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != req->segment_size) {
		rpc_call_errorf(call, "segment %s is not a regular file of %" PRIu64 " bytes", path,
		    req->segment_size);
		return -EINVAL;
	}
	seals = fcntl(ck->lc_fd, F_GET_SEALS);
	if (seals < 0 || (seals & F_SEAL_SHRINK) == 0) {
		rpc_call_errorf(call, "segment %s is not a memfd sealed against shrinking", path);
		return -EINVAL;
	}
	ck->lc_map = mmap(NULL, (size_t)req->segment_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    ck->lc_fd, 0);
	if (ck->lc_map == MAP_FAILED) {
		ck->lc_map = NULL;
		rv = -errno;
		rpc_call_errorf(call, "cannot map the segment %s: %s", path, strerror(errno));
		return rv;
	}
	ck->lc_map_size = (size_t)req->segment_size;
	h = (const struct local_seg_header *)ck->lc_map;
	if (memcmp(h->sh_magic, LOCAL_SEG_MAGIC, sizeof(LOCAL_SEG_MAGIC)) != 0 ||
	    atomic_load(&h->sh_state) != LOCAL_SEG_HANDED) {
		rpc_call_errorf(call, "segment %s has no CKPTSEG1 header in state HANDED", path);
		/* Not ours to mark free: leave the header as it is. */
		munmap(ck->lc_map, ck->lc_map_size);
		ck->lc_map = NULL;
		return -EINVAL;
	}
	return 0;
}

/* The regions and ranges of req, checked against the mapping. */
static int
local_read_regions(struct rpc_call *call, const Ckpt__V1__LocalCheckpointRequest *req,
    uint64_t max_bytes, struct local_ckpt *ck)
{
	size_t nranges = 0, k = 0;

	if (req->n_regions == 0 || req->n_regions > LOCAL_REGIONS_MAX) {
		rpc_call_errorf(call, "%zu regions: 1 to %d allowed", req->n_regions,
		    LOCAL_REGIONS_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < req->n_regions; i++) {
		if (req->regions[i]->n_changed > LOCAL_RANGES_MAX) {
			rpc_call_errorf(call, "region %" PRIu32 ": %zu changed ranges, at most %d",
			    req->regions[i]->id, req->regions[i]->n_changed, LOCAL_RANGES_MAX);
			return -EINVAL;
		}
		nranges += req->regions[i]->n_changed;
	}
	ck->lc_own_regions = calloc(req->n_regions, sizeof(*ck->lc_own_regions));
	ck->lc_own_ranges = calloc(nranges ? nranges : 1, sizeof(*ck->lc_own_ranges));
	if (ck->lc_own_regions == NULL || ck->lc_own_ranges == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < req->n_regions; i++) {
		const Ckpt__V1__LocalRegion *q = req->regions[i];
		struct local_region *r = &ck->lc_own_regions[i];

		if (q->offset < LOCAL_SEG_HEADER || q->offset % LOCAL_SEG_HEADER != 0 ||
		    q->offset > ck->lc_map_size || q->size > ck->lc_map_size - q->offset) {
			rpc_call_errorf(call, "region %" PRIu32 " at %" PRIu64 "+%" PRIu64
			    " is outside the %zu-byte segment (or not page-aligned)", q->id,
			    q->offset, q->size, ck->lc_map_size);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (ck->lc_own_regions[j].lr_id == q->id) {
				rpc_call_errorf(call, "region %" PRIu32 " given twice", q->id);
				return -EINVAL;
			}
		}
		if (q->size > UINT64_MAX - ck->lc_bytes ||
		    (max_bytes != 0 && ck->lc_bytes + q->size > max_bytes)) {
			rpc_call_errorf(call, "regions of %s over its limit of %" PRIu64 " bytes",
			    req->component, max_bytes);
			return -ENOSPC;
		}
		ck->lc_bytes += q->size;
		r->lr_id = q->id;
		r->lr_data = ck->lc_map + q->offset;
		r->lr_size = q->size;
		r->lr_whole = q->whole;
		r->lr_changed = &ck->lc_own_ranges[k];
		for (size_t j = 0; j < q->n_changed; j++) {
			const Ckpt__V1__LocalRange *g = q->changed[j];
			if (g->offset > q->size || g->length > q->size - g->offset) {
				rpc_call_errorf(call, "region %" PRIu32 ": changed range %" PRIu64
				    "+%" PRIu64 " is outside its %" PRIu64 " bytes", q->id, g->offset,
				    g->length, q->size);
				return -EINVAL;
			}
			ck->lc_own_ranges[k].lg_offset = g->offset;
			ck->lc_own_ranges[k].lg_length = g->length;
			k++;
		}
		r->lr_n_changed = q->n_changed;
	}
	ck->lc_regions = ck->lc_own_regions;
	ck->lc_n_regions = req->n_regions;
	return 0;
}

static int
local_checkpoint(void *arg, struct rpc_call *call, const ProtobufCMessage *req_msg,
    ProtobufCMessage *reply_msg)
{
	struct local_server *s = arg;
	const Ckpt__V1__LocalCheckpointRequest *req =
	    (const Ckpt__V1__LocalCheckpointRequest *)req_msg;
	Ckpt__V1__LocalCheckpointReply *reply = (Ckpt__V1__LocalCheckpointReply *)reply_msg;
	struct local_ckpt *ck = NULL;
	struct local_comp *c;
	const char *why = NULL;
	uint64_t max_bytes;
	pid_t pid;
	int rv, slot;

	rv = local_lookup(s, call, req->component, &c, &pid);
	if (rv != 0)
		return rv;
	max_bytes = c->cm_max_bytes;
	pthread_mutex_unlock(&s->ls_lock);
	if (s->ls_cfg.lc_on_checkpoint == NULL) {
		rpc_call_errorf(call, "this agent takes no libckpt checkpoints");
		return -ENOSYS;
	}
	ck = calloc(1, sizeof(*ck));
	if (ck == NULL)
		return -ENOMEM;
	ck->lc_fd = -1;
	snprintf(ck->lc_component, sizeof(ck->lc_component), "%s", req->component);
	ck->lc_pid = pid;
	ck->lc_seq = req->seq;
	rv = local_map_segment(call, pid, req, ck);
	if (rv == 0)
		rv = local_read_regions(call, req, max_bytes, ck);
	if (rv != 0) {
		/* Refused: the application takes its segment back itself. */
		if (ck->lc_map != NULL) {
			munmap(ck->lc_map, ck->lc_map_size);
			ck->lc_map = NULL;
		}
		goto out;
	}
	rv = s->ls_cfg.lc_on_checkpoint(s->ls_cfg.lc_arg, ck, &why);
	if (rv != 0) {
		rpc_call_errorf(call, "checkpoint of %s refused: %s", req->component,
		    why != NULL ? why : strerror(-rv));
		munmap(ck->lc_map, ck->lc_map_size);
		ck->lc_map = NULL;
		goto out;
	}
	ck = NULL;
	reply->seq = req->seq;
	/* A new checkpoint supersedes the restored state: its memory goes. */
	pthread_mutex_lock(&s->ls_lock);
	slot = local_comp_slot(s, req->component);
	if (slot >= 0 && s->ls_comps[slot]->cm_pid == pid)
		local_comp_drop_state(s->ls_comps[slot]);
	pthread_mutex_unlock(&s->ls_lock);
out:
	local_ckpt_release(ck);
	return rv;
}

static int
local_finalize(void *arg, struct rpc_call *call, const ProtobufCMessage *req_msg,
    ProtobufCMessage *reply_msg)
{
	struct local_server *s = arg;
	const Ckpt__V1__FinalizeRequest *req = (const Ckpt__V1__FinalizeRequest *)req_msg;
	struct local_comp *c;
	pid_t pid;
	int rv;

	(void)reply_msg;
	rv = local_lookup(s, call, req->component, &c, &pid);
	if (rv != 0)
		return rv;
	local_comp_drop_state(c);
	pthread_mutex_unlock(&s->ls_lock);
	if (s->ls_cfg.lc_on_event != NULL)
		s->ls_cfg.lc_on_event(s->ls_cfg.lc_arg, req->component, pid, LOCAL_EV_FINALIZE);
	return 0;
}

static const rpc_handler_fn local_handlers[] = {
	[LOCAL_HELLO] = local_hello,
	[LOCAL_GET_REGION] = local_get_region,
	[LOCAL_CHECKPOINT] = local_checkpoint,
	[LOCAL_FINALIZE] = local_finalize,
};

static void
local_on_bad(void *arg, const char *reason)
{
	(void)arg;
	LOG_WARN("local: bad request: %s", reason);
}

int
local_start(const struct local_config *cfg, struct local_server **ret_server)
{
	struct rpc_server_config sc = {
		.rs_service = &ckpt__v1__local__descriptor,
		.rs_handlers = local_handlers,
		.rs_recv_max = LOCAL_RECV_MAX,
		.rs_on_bad = local_on_bad,
	};
	struct local_server *s;
	unsigned mode;
	int rv;

	if (cfg->lc_url == NULL || strncmp(cfg->lc_url, "ipc://", 6) != 0 ||
	    strlen(cfg->lc_url) >= sizeof(s->ls_url))
		return -EINVAL;
	mode = cfg->lc_mode != 0 ? cfg->lc_mode : 0600;
	if ((mode & ~0777u) != 0 || (mode & 0007u) != 0)
		return -EINVAL;        /* never open to others */
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->ls_cfg = *cfg;
	snprintf(s->ls_url, sizeof(s->ls_url), "%s", cfg->lc_url);
	pthread_mutex_init(&s->ls_lock, NULL);
	sc.rs_arg = s;
	sc.rs_workers = cfg->lc_workers != 0 ? cfg->lc_workers : 2;
	rv = rpc_server_start(&sc, s->ls_url, &s->ls_rpc);
	if (rv != 0)
		goto out_free;
	/*
	 * nng binds with the process umask; the mode is set right after. The
	 * folder the socket is in must be the agent's alone for that window.
	 */
	if (chmod(s->ls_url + 6, mode) != 0) {
		rv = -errno;
		rpc_server_stop(s->ls_rpc);
		goto out_free;
	}
	*ret_server = s;
	return 0;
out_free:
	pthread_mutex_destroy(&s->ls_lock);
	free(s);
	return rv;
}

const char *
local_url(const struct local_server *s)
{
	return s->ls_url;
}

void
local_stop(struct local_server *s)
{
	if (s == NULL)
		return;
	rpc_server_stop(s->ls_rpc);
	unlink(s->ls_url + 6);
	for (int i = 0; i < LIMIT_NODE_COMPONENTS_MAX; i++)
		local_comp_free(s->ls_comps[i]);
	pthread_mutex_destroy(&s->ls_lock);
	free(s);
}

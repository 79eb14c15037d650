#include "drv_demo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"
#include "key.h"

/* Granularity of the hints: the chunker re-reads around a change anyway. */
#define DRV_DEMO_PAGE 4096u

struct drv_inst {
	struct demo *dd_demo;
	atomic_bool dd_stopped;
	uint64_t dd_state_bytes; /* fixed for a demo's life */
	/*
	 * Pages of the buffer the ticks changed since the last checkpoint, one
	 * bit each; NULL: no hints. dd_since: a checkpoint was taken (hints are
	 * relative to it; the first checkpoint has none).
	 */
	uint64_t *dd_dirty;
	size_t dd_words;
	bool dd_since;
	struct drv_region dd_region; /* what d_checkpoint() lends: the demo's own state */
};

/* "bytes" of spec in *ret_bytes. */
static int
drv_demo_bytes(const struct drv_spec *spec, uint64_t *ret_bytes, char *err, size_t errlen)
{
	const char *v = drv_setting(spec, "bytes");
	unsigned long long n;
	char *end;

	if (v == NULL) {
		*ret_bytes = DEMO_BYTES_DEFAULT;
		return 0;
	}
	errno = 0;
	n = strtoull(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0) {
		snprintf(err, errlen, "bytes '%.32s': want a number of bytes", v);
		return -EINVAL;
	}
	if (n > DEMO_BYTES_MAX) {
		snprintf(err, errlen, "%llu bytes is more than %llu", n,
		    (unsigned long long)DEMO_BYTES_MAX);
		return -EINVAL;
	}
	*ret_bytes = n;
	return 0;
}

static int
drv_demo_check(const struct drv_spec *spec, char *err, size_t errlen)
{
	uint64_t bytes;

	if (key_name_check(spec->sp_name) != 0) {
		snprintf(err, errlen, "invalid component name");
		return -EINVAL;
	}
	for (size_t i = 0; i < spec->sp_nsettings; i++) {
		if (strcmp(spec->sp_settings[i].st_key, "bytes") != 0) {
			snprintf(err, errlen, "unknown setting '%.32s' of a demo (it has: bytes)",
			    spec->sp_settings[i].st_key);
			return -EINVAL;
		}
	}
	return drv_demo_bytes(spec, &bytes, err, errlen);
}

/*
 * Whether state is well-formed enough to name a component and names another
 * than name (checked before demo_restore_take(), which keeps state on success).
 */
static bool
drv_demo_names_other(const void *state, size_t len, const char *name)
{
	const uint8_t *p = state;
	uint32_t n;

	if (len < DEMO_MAGIC_LEN + 12 || memcmp(p, DEMO_MAGIC, DEMO_MAGIC_LEN) != 0)
		return false;
	n = (uint32_t)p[16] | (uint32_t)p[17] << 8 | (uint32_t)p[18] << 16 | (uint32_t)p[19] << 24;
	if (n == 0 || n > KEY_NAME_MAX || len < 20 + (size_t)n)
		return false;
	return strlen(name) != n || memcmp(p + 20, name, n) != 0;
}

static int
drv_demo_start(const struct drv_spec *spec, void *state, size_t len, struct drv_inst **ret_inst,
    char *err, size_t errlen)
{
	struct drv_inst *in = calloc(1, sizeof(*in));
	const char *why = NULL;
	uint64_t bytes;
	int rv;

	if (in == NULL)
		return -ENOMEM;
	if (state == NULL) {
		rv = drv_demo_bytes(spec, &bytes, err, errlen);
		if (rv == 0)
			rv = demo_new(spec->sp_name, bytes, &in->dd_demo);
		if (rv != 0)
			goto out_free;
	} else {
		/* Takes state over on success: in memory once, not twice. */
		if (drv_demo_names_other(state, len, spec->sp_name)) {
			why = "it holds another component";
			rv = -EBADMSG;
		} else {
			rv = demo_restore_take(state, len, &in->dd_demo, &why);
		}
		if (rv != 0) {
			snprintf(err, errlen, "not a demo state of %s: %s", spec->sp_name,
			    why != NULL ? why : "malformed");
			goto out_free;
		}
	}
	in->dd_state_bytes = demo_state_size(in->dd_demo);
	/* Without the bitmap the demo just gives no hints. */
	in->dd_words = (size_t)((demo_bytes(in->dd_demo) + 64ull * DRV_DEMO_PAGE - 1) /
	    (64ull * DRV_DEMO_PAGE));
	in->dd_dirty = calloc(in->dd_words != 0 ? in->dd_words : 1, sizeof(*in->dd_dirty));
	*ret_inst = in;
	return 0;

out_free:
	free(in);
	return rv;
}

/* Is page p of the buffer dirty? */
static bool
drv_demo_dirty(const struct drv_inst *in, size_t p)
{
	return (in->dd_dirty[p / 64] >> (p % 64) & 1u) != 0;
}

/*
 * The hints of a checkpoint: the header (the counter changes every tick)
 * and each run of dirty pages, as offsets in the serialised state. Leaves
 * ck unhinted when there is no bitmap, no earlier checkpoint or no memory.
 */
static void
drv_demo_hints(const struct drv_inst *in, struct drv_ckpt *ck)
{
	uint64_t len = demo_bytes(in->dd_demo);
	size_t hdr = demo_buffer_offset(in->dd_demo), pages = (size_t)((len + DRV_DEMO_PAGE - 1) /
	    DRV_DEMO_PAGE), n = 1;
	struct drv_range *r;

	if (in->dd_dirty == NULL || !in->dd_since)
		return;
	for (size_t p = 0; p < pages; p++)
		n += drv_demo_dirty(in, p) && (p == 0 || !drv_demo_dirty(in, p - 1));
	r = malloc(n * sizeof(*r));
	if (r == NULL)
		return;
	r[0].rn_off = 0;
	r[0].rn_len = hdr;
	n = 1;
	for (size_t p = 0; p < pages; p++) {
		uint64_t end;
		size_t q;
		if (!drv_demo_dirty(in, p))
			continue;
		for (q = p; q < pages && drv_demo_dirty(in, q); q++)
			;
		end = (uint64_t)q * DRV_DEMO_PAGE < len ? (uint64_t)q * DRV_DEMO_PAGE : len;
		r[n].rn_off = hdr + (uint64_t)p * DRV_DEMO_PAGE;
		r[n++].rn_len = end - (uint64_t)p * DRV_DEMO_PAGE;
		p = q;
	}
	ck->ck_changed = r;
	ck->ck_nchanged = n;
	ck->ck_hinted = true;
}

static int
drv_demo_checkpoint(struct drv_inst *in, bool final, struct drv_ckpt *ret_ckpt, char *err,
    size_t errlen)
{
	struct drv_ckpt ck = { 0 };

	(void)final;
	(void)err;
	(void)errlen;
	/* Lent, not copied: the caller reads it before the next tick (drv.h). */
	demo_state_view(in->dd_demo, &in->dd_region.rg_base, &in->dd_region.rg_len);
	ck.ck_regions = &in->dd_region;
	ck.ck_nregions = 1;
	ck.ck_len = in->dd_region.rg_len;
	drv_demo_hints(in, &ck);
	if (in->dd_dirty != NULL)
		memset(in->dd_dirty, 0, in->dd_words * sizeof(*in->dd_dirty));
	in->dd_since = true;
	*ret_ckpt = ck;
	return 0;
}

static int
drv_demo_stop(struct drv_inst *in, unsigned grace_ms)
{
	(void)grace_ms;
	atomic_store(&in->dd_stopped, true);
	return 0;
}

static void
drv_demo_status(struct drv_inst *in, struct drv_status *ret_status)
{
	struct drv_status st = { 0 };

	st.ds_run = atomic_load(&in->dd_stopped) ? DRV_RUN_EXITED : DRV_RUN_RUNNING;
	st.ds_state_bytes = in->dd_state_bytes;
	*ret_status = st;
}

static void
drv_demo_tick(struct drv_inst *in)
{
	uint64_t pos[DEMO_TICK_BYTES];
	unsigned n = demo_tick_at(in->dd_demo, pos);

	for (unsigned k = 0; in->dd_dirty != NULL && k < n; k++) {
		uint64_t p = pos[k] / DRV_DEMO_PAGE;
		in->dd_dirty[p / 64] |= 1ull << (p % 64);
	}
}

static int
drv_demo_digest(struct drv_inst *in, const struct chunk_params *cp, uint8_t ret_digest[SHA_LEN])
{
	return cp != NULL ? demo_digest(in->dd_demo, cp, ret_digest) :
	    demo_sha256(in->dd_demo, ret_digest);
}

static void
drv_demo_free(struct drv_inst *in)
{
	if (in == NULL)
		return;
	demo_free(in->dd_demo);
	free(in->dd_dirty);
	free(in);
}

const struct drv_ops drv_demo_ops = {
	.d_kind = DRV_DEMO_KIND,
	.d_state_max = DEMO_STATE_MAX,
	.d_check = drv_demo_check,
	.d_start = drv_demo_start,
	.d_checkpoint = drv_demo_checkpoint,
	.d_ckpt_done = NULL,
	.d_stop = drv_demo_stop,
	.d_status = drv_demo_status,
	.d_tick = drv_demo_tick,
	.d_digest = drv_demo_digest,
	.d_free = drv_demo_free,
};

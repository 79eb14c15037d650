#include "drv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drv_demo.h"
#include "drv_exec.h"
#include "drv_lib.h"

/* Every driver this agent can run; the only list of them. */
static const struct drv_ops *const drv_table[] = {
	&drv_demo_ops,
	&drv_exec_ops,
	&drv_lib_ops,
};

#define DRV_TABLE_LEN (sizeof(drv_table) / sizeof(drv_table[0]))

const struct drv_ops *
drv_find(const char *kind)
{
	if (kind == NULL)
		return NULL;
	for (size_t i = 0; i < DRV_TABLE_LEN; i++)
		if (strcmp(drv_table[i]->d_kind, kind) == 0)
			return drv_table[i];
	return NULL;
}

size_t
drv_count(void)
{
	return DRV_TABLE_LEN;
}

const struct drv_ops *
drv_at(size_t i)
{
	return i < DRV_TABLE_LEN ? drv_table[i] : NULL;
}

const char *
drv_setting(const struct drv_spec *spec, const char *key)
{
	const char *v = NULL;

	for (size_t i = 0; i < spec->sp_nsettings; i++)
		if (strcmp(spec->sp_settings[i].st_key, key) == 0)
			v = spec->sp_settings[i].st_value;
	return v;
}

int
drv_flatten(const struct drv_ckpt *ck, uint64_t max, void **ret_buf, size_t *ret_len)
{
	uint64_t total = 0;
	uint8_t *buf, *p;

	for (size_t i = 0; i < ck->ck_nregions; i++) {
		total += ck->ck_regions[i].rg_len;
		if (total > max)
			return -EFBIG;
	}
	buf = malloc(total > 0 ? (size_t)total : 1);
	if (buf == NULL)
		return -ENOMEM;
	p = buf;
	for (size_t i = 0; i < ck->ck_nregions; i++) {
		if (ck->ck_regions[i].rg_len > 0)
			memcpy(p, ck->ck_regions[i].rg_base, ck->ck_regions[i].rg_len);
		p += ck->ck_regions[i].rg_len;
	}
	*ret_buf = buf;
	*ret_len = (size_t)total;
	return 0;
}

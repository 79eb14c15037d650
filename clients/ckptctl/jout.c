#include "jout.h"

#include "digest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "sha.h"

/* Set by any builder that could not allocate; reported by jout_print(). */
static bool jout_oom;

static json_t *
jout_check(json_t *v)
{
	if (v == NULL)
		jout_oom = true;
	return v;
}

json_t *
jout_object(void)
{
	return jout_check(json_object());
}

json_t *
jout_array(void)
{
	return jout_check(json_array());
}

/* Copy of s with every non-ASCII byte replaced by '?': always valid UTF-8. */
static char *
jout_ascii_dup(const char *s)
{
	char *copy = strdup(s);
	if (copy == NULL)
		return NULL;
	for (char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	return copy;
}

json_t *
jout_str(const char *s)
{
	json_t *v;
	char *copy;

	if (s == NULL)
		s = "";
	v = json_string(s);
	if (v != NULL)
		return v;
	/* Not valid UTF-8: keep the ASCII, mark the rest. */
	copy = jout_ascii_dup(s);
	if (copy == NULL)
		return jout_check(NULL);
	v = json_string(copy);
	free(copy);
	return jout_check(v);
}

json_t *
jout_u64(uint64_t v)
{
	if (v > (uint64_t)INT64_MAX)
		return jout_check(json_real((double)v));
	return jout_check(json_integer((json_int_t)v));
}

json_t *
jout_sha(const uint8_t *data, size_t len)
{
	char hex[SHA_HEX_LEN + 1];
	if (data == NULL || len != SHA_LEN)
		return json_null();
	sha_hex(data, len, hex);
	return jout_check(json_string(hex));
}

void
jout_set(json_t *obj, const char *key, json_t *v)
{
	if (obj == NULL || v == NULL || json_object_set_new(obj, key, v) != 0)
		jout_oom = true;
}

void
jout_set_wire(json_t *obj, const char *key, json_t *v)
{
	json_t *probe = json_string(key);
	char *copy;

	if (probe != NULL) {
		json_decref(probe);
		jout_set(obj, key, v);
		return;
	}
	copy = jout_ascii_dup(key);
	if (copy == NULL) {
		json_decref(v);
		jout_oom = true;
		return;
	}
	jout_set(obj, copy, v);
	free(copy);
}

void
jout_append(json_t *arr, json_t *v)
{
	if (arr == NULL || v == NULL || json_array_append_new(arr, v) != 0)
		jout_oom = true;
}

json_t *
jout_key(const char *node, const char *component, uint64_t seq)
{
	json_t *o = jout_object();
	jout_set(o, "node", jout_str(node));
	jout_set(o, "component", jout_str(component));
	jout_set(o, "seq", jout_u64(seq));
	return o;
}

json_t *
jout_checkpoint(const Ckpt__V1__CheckpointInfo *ci)
{
	json_t *o = jout_key(ci->node, ci->component, ci->seq);
	jout_set(o, "size", jout_u64(ci->size));
	jout_set(o, "digest", jout_digest(ci->digest.data, ci->digest.len));
	jout_set(o, "sha256", jout_sha(ci->sha256.data, ci->sha256.len));
	jout_set(o, "epoch", jout_u64(ci->epoch));
	jout_set(o, "kind", jout_str(ci->kind));
	jout_set(o, "created_unix_ms", jout_u64(ci->created_unix_ms));
	jout_set(o, "chunk_count", jout_u64(ci->chunk_count));
	return o;
}

json_t *
jout_ref(const Ckpt__V1__CheckpointRef *r)
{
	json_t *o;
	if (r == NULL)
		return json_null();
	o = jout_key(r->node, r->component, r->seq);
	jout_set(o, "sha256", jout_sha(r->sha256.data, r->sha256.len));
	jout_set(o, "digest", jout_digest(r->sha256.data, r->sha256.len));
	return o;
}

json_t *
jout_digest(const uint8_t *data, size_t len)
{
	char s[DIGEST_STR_LEN];

	if (data == NULL || len != SHA_LEN)
		return json_null();
	digest_str(data, s);
	return jout_str(s);
}

int
jout_print(struct ctl *c, json_t *root, bool compact)
{
	size_t flags = compact ? JSON_COMPACT : JSON_INDENT(2);
	int rv = 0;

	if (jout_oom || root == NULL) {
		jout_oom = false;
		rv = ctl_fail(c, -ENOMEM, "building JSON output: %s", err_str(-ENOMEM));
		goto out;
	}
	if (json_dumpf(root, stdout, flags) != 0 || fputc('\n', stdout) == EOF) {
		rv = ctl_fail(c, -EIO, "writing to stdout: %s", err_str(errno != 0 ? -errno : -EIO));
		goto out;
	}
	rv = ctl_flush_stdout(c);
	c->c_printed = true;
out:
	json_decref(root);
	return rv;
}

/*
 * jout: JSON output of ckptctl, through jansson.
 *
 * Builders never return NULL to the caller's tree silently: an allocation
 * failure anywhere is remembered and jout_print() reports it, so callers can
 * build a whole document without checking every call. Strings from the wire
 * that are not valid UTF-8 are printed with '?' for their non-ASCII bytes.
 * Digests are lower-case hex (as sha256sum prints them), or null when absent.
 */
#ifndef CKPTCTL_JOUT_H
#define CKPTCTL_JOUT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "ckpt/v1/common.pb-c.h"
#include "ctl.h"

json_t *jout_object(void);
json_t *jout_array(void);
json_t *jout_str(const char *s);
json_t *jout_u64(uint64_t v);
/* "ckpt-chunks-sha256:HEX" of a 32-byte digest, null otherwise. */
json_t *jout_digest(const uint8_t *data, size_t len);
/* Hex of a SHA-256 (32 bytes), null otherwise. */
json_t *jout_sha(const uint8_t *data, size_t len);
/* Adds v (reference stolen) under key / at the end. */
void jout_set(json_t *obj, const char *key, json_t *v);
/* Same for a key that comes from the wire (made valid UTF-8 first). */
void jout_set_wire(json_t *obj, const char *key, json_t *v);
void jout_append(json_t *arr, json_t *v);

/*
 * {node, component, seq, size, digest, sha256, epoch, kind, created_unix_ms,
 * chunk_count}: digest "ckpt-chunks-sha256:HEX" (the identity), sha256 the
 * plain SHA-256 of the bytes where the record has one (older format), else null.
 */
/* An object that starts {"node", "component", "seq"}: one checkpoint named. */
json_t *jout_key(const char *node, const char *component, uint64_t seq);
json_t *jout_checkpoint(const Ckpt__V1__CheckpointInfo *ci);
/*
 * {node, component, seq, sha256, digest}, or null when r is NULL: sha256 is
 * the hex of the checkpoint's identity digest, digest the same named.
 */
json_t *jout_ref(const Ckpt__V1__CheckpointRef *r);

/*
 * Prints root to stdout (indent 2, or one compact line), a newline, flushes,
 * and drops root. Reports a build or write failure through c.
 */
int jout_print(struct ctl *c, json_t *root, bool compact);

#endif

/*
 * demo: the built-in synthetic component (the seed's rtcr_dummy).
 *
 * State: a counter and a buffer of bytes, both deterministic from the
 * component's name. The buffer starts as a xorshift64* stream seeded with
 * the FNV-1a hash of the name; every tick increments the counter and changes
 * DEMO_TICK_BYTES bytes at positions derived from the new counter value.
 * Two demos with the same name, size and number of ticks hold identical
 * state; demos with different names differ.
 *
 * Serialised state (integers little-endian), exactly these bytes:
 *
 *   offset   size  field
 *   0        8     magic "CKDEMO1\0"
 *   8        8     counter (u64)
 *   16       4     name length n (u32), 1..KEY_NAME_MAX
 *   20       n     name (no NUL), a valid key name (key.h)
 *   20+n     8     buffer length m (u64), 0..DEMO_BYTES_MAX
 *   28+n     m     buffer
 *
 * Nothing may follow the buffer. demo_serialize() of a demo that
 * demo_restore() just built gives back the bytes it was built from.
 *
 * A demo is not locked: its owner (comp.c) serialises access.
 */
#ifndef CKPT_AGENT_DEMO_H
#define CKPT_AGENT_DEMO_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "key.h"
#include "sha.h"

#define DEMO_MAGIC "CKDEMO1"           /* 7 characters + NUL = 8 bytes */
#define DEMO_MAGIC_LEN 8
#define DEMO_BYTES_DEFAULT (64u << 10) /* 64 KiB */
#define DEMO_BYTES_MAX (1ull << 30)    /* 1 GiB */
#define DEMO_HEADER_MAX (DEMO_MAGIC_LEN + 8 + 4 + KEY_NAME_MAX + 8)
#define DEMO_STATE_MAX (DEMO_BYTES_MAX + DEMO_HEADER_MAX)
#define DEMO_TICK_MS 100u
#define DEMO_TICK_BYTES 4u

struct demo;

/* -EINVAL for a name that fails key_name_check() or bytes > DEMO_BYTES_MAX. */
int demo_new(const char *name, uint64_t bytes, struct demo **ret_demo);
void demo_free(struct demo *d);

/* One step of the component's life: counter + 1, a few bytes change. */
void demo_tick(struct demo *d);
/*
 * demo_tick(), telling which bytes of the buffer it changed: their offsets
 * in the buffer, in ret_pos; returns how many (0 for an empty buffer).
 */
unsigned demo_tick_at(struct demo *d, uint64_t ret_pos[DEMO_TICK_BYTES]);
/* Offset of the buffer in the serialised state (the header's length). */
size_t demo_buffer_offset(const struct demo *d);

/* Valid as long as d. */
const char *demo_name(const struct demo *d);
uint64_t demo_counter(const struct demo *d);
/* Length of the buffer (the BYTES of --demo NAME:BYTES). */
uint64_t demo_bytes(const struct demo *d);
/* Length of the serialised state. */
size_t demo_state_size(const struct demo *d);

/* The serialised state in a malloc'ed buffer (free() it). */
int demo_serialize(const struct demo *d, void **ret_buf, size_t *ret_len);
/*
 * The serialised state where it lies: a demo keeps it in one block, header
 * then buffer, and this brings the header up to date. Valid, and the same
 * bytes, until the next demo_tick() or demo_free().
 */
void demo_state_view(struct demo *d, const void **ret_state, size_t *ret_len);
/* SHA-256 of the serialised state, without building it. */
int demo_sha256(const struct demo *d, uint8_t ret_digest[SHA_LEN]);
/* The ckpt-chunks-sha256 (digest.h) of the same bytes cut with cp, header and buffer unjoined. */
int demo_digest(const struct demo *d, const struct chunk_params *cp, uint8_t ret_digest[SHA_LEN]);

/*
 * Rebuilds a demo from serialised state. -EBADMSG for anything malformed
 * (truncated, bad magic, bad name, lengths out of bounds or not matching
 * len); then *why, if not NULL, points to a static one-line reason.
 */
int demo_restore(const void *buf, size_t len, struct demo **ret_demo, const char **why);
/*
 * The same, taking over buf (malloc'ed) instead of copying it: a restored
 * state costs its size once, not twice. On success the demo owns buf; on
 * failure the caller still does.
 */
int demo_restore_take(void *buf, size_t len, struct demo **ret_demo, const char **why);

#endif

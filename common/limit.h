/*
 * limit: the wire limits of ckpt, written once.
 *
 * Two kinds:
 *
 *  - Protocol facts (LIMIT_*_MAX): how long a name, a kind, an address, a
 *    label may be, how many chunks or hashes one request may carry. Every
 *    service and client checks against these; the .proto files in
 *    proto/ckpt/v1/ state them to foreign clients. Changing one changes the
 *    protocol.
 *
 *  - Defaults of the limits a service applies to its peers (LIMIT_*_DEFAULT):
 *    each has a setting (flag and CKPT_* variable in the service's config
 *    table) and a counter when hit. A hit is answered RESOURCE_EXHAUSTED with
 *    Reply.reason "limit:<name>" (LIMIT_REASON_PREFIX + one of the LIMIT_N_*
 *    names below) and the name in the message.
 *
 * Buffer sizes are named *_MAX for the longest text (without the NUL) unless
 * they say "bytes, NUL included" (LIMIT_URL_MAX, LIMIT_REASON_MAX).
 */
#ifndef CKPT_LIMIT_H
#define CKPT_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* ---- names and strings ---- */

/* Node ids, component names, label keys, kinds: 1..63 of [A-Za-z0-9._-]. */
#define LIMIT_NAME_MAX 63
/* A checkpoint's kind and a component's driver name: a name of at most 31. */
#define LIMIT_KIND_MAX 31
/* Addresses (nng URLs): shorter than this, NUL included. */
#define LIMIT_URL_MAX 256
/* Labels a node announces, and their key and value lengths. */
#define LIMIT_LABELS_MAX 32
#define LIMIT_LABEL_KEY_MAX LIMIT_NAME_MAX
#define LIMIT_LABEL_VALUE_MAX 255
/* Labels one component may require of its node, and a required value's length. */
#define LIMIT_REQUIRES_MAX 8
#define LIMIT_REQ_VALUE_MAX 63
/* Why a component failed, as nodes report it: bytes, NUL included. */
#define LIMIT_REASON_MAX 192
/* Reply.reason: bytes, NUL included. */
#define LIMIT_REPLY_REASON_MAX 64

/* ---- lists ---- */

/* Components one node reports in Attach or Heartbeat (the wire's ceiling). */
#define LIMIT_NODE_COMPONENTS_MAX 256

/* ---- the NAS's batches ---- */

#define LIMIT_CHUNK_MAX (8u << 20)       /* bytes of one chunk (raw), holes included */
#define LIMIT_PUT_CHUNKS_MAX 4096u       /* chunks in one PutChunks */
#define LIMIT_HASHES_MAX 65536u          /* hashes in one HaveChunks or GetChunks */
#define LIMIT_GET_BYTES_MAX (8u << 20)   /* chunk bytes in one GetChunks answer */
/* Chunk bytes inline in one Store (1 MiB before: a NAS of then refuses more, INVALID_ARGUMENT). */
#define LIMIT_STORE_INLINE_MAX (4u << 20)
#define LIMIT_REFS_MAX 262144u           /* chunks in one checkpoint */
#define LIMIT_LIST_MAX 10000u            /* entries in one List answer */
#define LIMIT_SPEC_MAX (256u << 10)      /* bytes of one packed ComponentSpec */

/* ---- messages ---- */

/* Largest request a server reads by default (--recv-max). */
#define LIMIT_MSG_DEFAULT (16u << 20)
/*
 * A request larger than the server's recv-max, up to this much more, is
 * read and answered RESOURCE_EXHAUSTED "limit:message_size"; a larger one
 * is dropped by nng with its connection (nng 1.5 counts that nowhere we can
 * tell from an ordinary disconnect).
 */
#define LIMIT_MSG_SLACK (1u << 20)

/* ---- limits on peers: defaults of the settings ---- */

/* (Plain numbers where a config table prints them as its default text.) */
#define LIMIT_CONNS_DEFAULT 1024         /* --max-conns: open connections per server */
#define LIMIT_RPS_DEFAULT 10000          /* --max-rps: requests per second per peer (rpc_call_principal()) */
/* --max-string: bytes of any string field of a request (a spec's command is at most 4096). */
#define LIMIT_STRING_DEFAULT 8192
/* --max-list: entries of any repeated field of a request (a checkpoint's chunk list). */
#define LIMIT_LIST_DEFAULT 262144 /* = LIMIT_REFS_MAX */
#define LIMIT_NODES_DEFAULT 1024         /* manager --max-nodes */
#define LIMIT_NODES_MAX 65536            /* ... its upper bound */
#define LIMIT_COMPONENTS_DEFAULT 256     /* manager --max-node-components, agent --max-components */
#define LIMIT_UPLOADS_DEFAULT 16         /* NAS --max-uploads: PutChunks at once per peer */
#define LIMIT_QUOTA_DEFAULT 0            /* NAS --node-quota: 0 = none */

/* ---- names of the limits (Reply.reason "limit:<name>", metrics label) ---- */

#define LIMIT_REASON_PREFIX "limit:"
#define LIMIT_N_MESSAGE_SIZE "message_size"
#define LIMIT_N_CONNECTIONS "connections"
#define LIMIT_N_RPS "requests_per_second"
#define LIMIT_N_STRING "string_length"
#define LIMIT_N_LIST "list_length"
#define LIMIT_N_NODES "nodes"
#define LIMIT_N_COMPONENTS "node_components"
#define LIMIT_N_UPLOADS "uploads"
#define LIMIT_N_QUOTA "node_bytes"
#define LIMIT_NAMES 9 /* the names above */

/* The names above, in that order (metrics series, log state). */
extern const char *const limit_names[LIMIT_NAMES];
/* Index of name in limit_names, or -1. */
int limit_index(const char *name);

/*
 * A token bucket as a GCRA "theoretical arrival time" (ns): one request
 * costs ns_per_token; a full bucket holds burst tokens. Pure: the caller
 * keeps *tat (0 at start) and passes the time. true when the request fits,
 * and then *tat has moved on; false leaves *tat as it was.
 */
bool limit_bucket_take(uint64_t *tat, uint64_t now_ns, uint64_t ns_per_token, uint32_t burst);

/*
 * Whether a rate-limited log line may go now: at most one per interval_ms
 * per *last (monotonic ms, 0 at start); *suppressed counts the lines held
 * back since the last one that went, and is reset when one goes (the caller
 * prints it). Thread-safe on atomics.
 */
bool limit_log_ok(uint64_t *last, uint64_t *suppressed, uint64_t now_ms, uint64_t interval_ms,
    uint64_t *ret_suppressed);

/* One rate-limited log line per limit (a flood of one hides no other), for a service to own. */
#define LIMIT_LOG_INTERVAL_MS 5000u
struct limit_log {
	uint64_t ll_last[LIMIT_NAMES + 1];   /* + 1: names not in the table */
	uint64_t ll_held[LIMIT_NAMES + 1];
};
/* limit_log_ok() for name, every LIMIT_LOG_INTERVAL_MS. */
bool limit_log_named(struct limit_log *l, const char *name, uint64_t now_ms,
    uint64_t *ret_suppressed);

#endif

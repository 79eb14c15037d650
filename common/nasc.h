/*
 * nasc: the client side of the NAS data path, shared by the agent, the
 * manager and ckptctl.
 *
 * A checkpoint moves in bounded pieces: the writer splits it into chunks
 * (NASC_CHUNK bytes), hashes each, asks the NAS which it lacks (HaveChunks),
 * sends those in messages of at most NASC_BATCH bytes (PutChunks), then
 * commits the record (Store). The reader gets the record (Retrieve), fetches
 * chunks in bounded batches (GetChunks), verifies every chunk's hash and the
 * whole checkpoint's hash. Memory is bounded by NASC_BATCH, not by the
 * checkpoint size.
 *
 * With several NAS URLs, a call that finds a NAS unavailable goes to the next.
 */
#ifndef CKPT_NASC_H
#define CKPT_NASC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ckpt/v1/nas.pb-c.h"
#include "key.h"
#include "rpc.h"
#include "sha.h"

#define NASC_CHUNK (1u << 20)
#define NASC_BATCH (4u << 20)
#define NASC_URLS_MAX 8

struct nasc;

struct nasc_info {
	char ni_node[KEY_NAME_MAX + 1];
	char ni_component[KEY_NAME_MAX + 1];
	char ni_kind[32];
	uint64_t ni_seq;
	uint64_t ni_epoch;
	uint64_t ni_size;
	uint64_t ni_created_unix_ms;
	uint8_t ni_sha256[SHA_LEN];
};

struct nasc_put {
	const char *np_node;
	const char *np_component;
	const char *np_kind;  /* "demo", "raw"... */
	uint64_t np_seq;      /* 0: the NAS assigns latest + 1 */
	uint64_t np_epoch;
};

/* Reads up to len bytes; returns the count, 0 at the end, or a negative errno. */
typedef ssize_t (*nasc_read_fn)(void *arg, void *buf, size_t len);
/* Consumes len bytes; returns 0 or a negative errno. */
typedef int (*nasc_write_fn)(void *arg, const void *buf, size_t len);

/* flags: RPC_CLIENT_DIAL_NOW to fail at once when no NAS can be reached. */
int nasc_open(char *const *urls, size_t n, unsigned flags, struct nasc **ret_nasc,
    struct rpc_error *ret_err);
void nasc_close(struct nasc *n);
/* rpc_client_abort() on every NAS: pending calls return at once. Accepts NULL. */
void nasc_abort(struct nasc *n);

int nasc_store(struct nasc *n, const struct nasc_put *p, nasc_read_fn rd, void *rd_arg,
    unsigned timeout_ms, struct nasc_info *ret_info, struct rpc_error *ret_err);
int nasc_store_buf(struct nasc *n, const struct nasc_put *p, const void *buf, size_t len,
    unsigned timeout_ms, struct nasc_info *ret_info, struct rpc_error *ret_err);

/*
 * node "" (or NULL): whichever node stored it; seq 0: the latest. Verifies each
 * chunk and the whole digest; a mismatch is -EBADMSG (DATA_LOSS). Bytes are
 * handed to wr as they arrive and verified: on -EBADMSG the writer has
 * already seen bytes of a bad checkpoint and must discard them.
 */
int nasc_retrieve(struct nasc *n, const char *node, const char *component, uint64_t seq,
    nasc_write_fn wr, void *wr_arg, unsigned timeout_ms, struct nasc_info *ret_info,
    struct rpc_error *ret_err);
/* Same into a malloc'ed buffer (free() it); bounded by max_size (-EFBIG beyond). */
int nasc_retrieve_buf(struct nasc *n, const char *node, const char *component, uint64_t seq,
    size_t max_size, unsigned timeout_ms, void **ret_buf, size_t *ret_len,
    struct nasc_info *ret_info, struct rpc_error *ret_err);

/* Any Nas method (List, Delete, Stat...), with fail-over between NAS URLs. */
int nasc_call(struct nasc *n, unsigned method, const ProtobufCMessage *req, unsigned timeout_ms,
    ProtobufCMessage **ret_reply, struct rpc_error *ret_err);

void nasc_info_from_pb(const Ckpt__V1__CheckpointInfo *pb, struct nasc_info *ret_info);

#endif

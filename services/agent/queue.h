/*
 * queue: the checkpoints an agent could not store (NAS down), oldest first,
 * bounded in bytes.
 *
 * The agent keeps taking checkpoints while the NAS is away; they wait here
 * and are stored in order when it returns. When a new one does not fit, the
 * oldest are dropped first (and counted); one larger than the whole bound is
 * dropped itself. Nothing here touches the network: the caller takes the
 * oldest out (queue_take()), tries to store it, and either frees it or puts
 * it back at the front (queue_untake()). Thread-safe (one mutex inside).
 */
#ifndef CKPT_AGENT_QUEUE_H
#define CKPT_AGENT_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "key.h"

#define QUEUE_MAX_DEFAULT (64ull << 20) /* --queue-max */

struct queue;

/* One waiting checkpoint; the queue owns qi_buf (malloc'ed) while it holds the item. */
struct queue_item {
	char qi_component[KEY_NAME_MAX + 1];
	char qi_kind[32];  /* the driver that made it (drv.h) */
	uint64_t qi_seq;   /* 0: the NAS assigns the next */
	uint64_t qi_epoch;
	void *qi_buf;
	size_t qi_len;
	uint64_t qi_queued_ms; /* monotonic, when it was taken */
	unsigned qi_missing;   /* flush rounds in a row whose store was refused for missing chunks */
};

struct queue_stats {
	uint32_t qs_items;
	uint64_t qs_bytes;
	uint64_t qs_max_bytes;
	uint64_t qs_dropped; /* since queue_new() */
	uint64_t qs_stored;  /* queue_count_stored() calls */
};

/* What queue_push() dropped to make room (the caller logs it). */
struct queue_drop {
	char qd_component[KEY_NAME_MAX + 1];
	uint64_t qd_seq;
	size_t qd_len;
};

int queue_new(uint64_t max_bytes, struct queue **ret_queue);
/* Frees every item. Accepts NULL. */
void queue_free(struct queue *q);

/*
 * Appends a copy of *item's header and takes item->qi_buf (always: on
 * -EFBIG it is freed, as the item is dropped). Older items are dropped until
 * it fits; up to max_report of them are described in ret_drops and their
 * count goes to *ret_ndropped. -EFBIG: the item alone exceeds the bound
 * (counted as dropped, described in ret_drops[0] when max_report > 0).
 * -ENOMEM leaves item->qi_buf to the caller.
 */
int queue_push(struct queue *q, const struct queue_item *item, struct queue_drop *ret_drops,
    size_t max_report, size_t *ret_ndropped);
/* Takes the oldest item out (the caller owns its buffer). False when empty. */
bool queue_take(struct queue *q, struct queue_item *ret_item);
/* Puts an item taken back at the front (takes its buffer), unless it no longer fits. */
void queue_untake(struct queue *q, const struct queue_item *item);
/* Drops every item of component (it is not ours any more). Returns how many. */
size_t queue_drop_component(struct queue *q, const char *component);
bool queue_empty(struct queue *q);
void queue_count_stored(struct queue *q);
/* An item taken and not put back was dropped (the store refused it for good): counted. */
void queue_count_dropped(struct queue *q);
void queue_get_stats(struct queue *q, struct queue_stats *ret_stats);

#endif

/*
 * arena: a bump allocator for the lifetime of one RPC call.
 *
 * Handlers build their reply messages with memory from the call's arena; the
 * RPC layer packs the reply and then frees the whole arena at once, so a
 * handler never frees what it put in a reply. arena_protobuf() adapts it to a
 * ProtobufCAllocator (its free is a no-op).
 */
#ifndef CKPT_ARENA_H
#define CKPT_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct arena;

int arena_new(struct arena **ret_arena);
/* Frees every allocation, keeps the first block for reuse. */
void arena_reset(struct arena *a);
void arena_free(struct arena *a);
/* NULL when out of memory. Memory is zeroed and aligned for any type. */
void *arena_alloc(struct arena *a, size_t size);
char *arena_strdup(struct arena *a, const char *s);
void *arena_memdup(struct arena *a, const void *p, size_t size);
/* Allocator view; valid as long as the arena. */
ProtobufCAllocator *arena_protobuf(struct arena *a);

#endif

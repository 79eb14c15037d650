#include "arena.h"

#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK 16384

struct arena_block {
	struct arena_block *ab_next;
	size_t ab_size;
	size_t ab_used;
	alignas(max_align_t) unsigned char ab_data[];
};

struct arena {
	struct arena_block *a_head;
	ProtobufCAllocator a_pb;
};

static void *
arena_pb_alloc(void *data, size_t size)
{
	return arena_alloc(data, size);
}

static void
arena_pb_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

int
arena_new(struct arena **ret_arena)
{
	struct arena *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	a->a_pb.alloc = arena_pb_alloc;
	a->a_pb.free = arena_pb_free;
	a->a_pb.allocator_data = a;
	*ret_arena = a;
	return 0;
}

void
arena_reset(struct arena *a)
{
	struct arena_block *b, *next;

	if (a == NULL || a->a_head == NULL)
		return;
	/* Keep the oldest block (the last in the list) if it is a standard one. */
	for (b = a->a_head; b->ab_next != NULL; b = next) {
		next = b->ab_next;
		free(b);
	}
	if (b->ab_size == ARENA_BLOCK) {
		b->ab_used = 0;
		a->a_head = b;
	} else {
		free(b);
		a->a_head = NULL;
	}
}

void
arena_free(struct arena *a)
{
	struct arena_block *b, *next;

	if (a == NULL)
		return;
	for (b = a->a_head; b != NULL; b = next) {
		next = b->ab_next;
		free(b);
	}
	free(a);
}

/* size bytes, not zeroed. */
static void *
arena_take(struct arena *a, size_t size)
{
	const size_t align = alignof(max_align_t);
	struct arena_block *b = a->a_head;
	size_t need = (size + align - 1) & ~(align - 1);
	void *p;

	if (need < size)
		return NULL;
	if (b == NULL || b->ab_size - b->ab_used < need) {
		size_t bsize = need > ARENA_BLOCK ? need : ARENA_BLOCK;
		b = malloc(sizeof(*b) + bsize);
		if (b == NULL)
			return NULL;
		b->ab_size = bsize;
		b->ab_used = 0;
		/* Big blocks go behind the head so the head keeps its free space. */
		if (bsize > ARENA_BLOCK && a->a_head != NULL) {
			b->ab_next = a->a_head->ab_next;
			a->a_head->ab_next = b;
		} else {
			b->ab_next = a->a_head;
			a->a_head = b;
		}
	}
	p = b->ab_data + b->ab_used;
	b->ab_used += need;
	return p;
}

void *
arena_alloc(struct arena *a, size_t size)
{
	void *p = arena_take(a, size);
	if (p != NULL)
		memset(p, 0, size);
	return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
	return arena_memdup(a, s, strlen(s) + 1);
}

void *
arena_memdup(struct arena *a, const void *p, size_t size)
{
	/* Not zeroed first: chunk data copied here are megabytes per GetChunks. */
	void *q = arena_take(a, size == 0 ? 1 : size);
	if (q == NULL)
		return NULL;
	if (size > 0)
		memcpy(q, p, size);
	else
		*(char *)q = '\0';
	return q;
}

ProtobufCAllocator *
arena_protobuf(struct arena *a)
{
	return &a->a_pb;
}

#include "queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct queue_node {
	struct queue_item qn_item;
	struct queue_node *qn_next;
};

struct queue {
	pthread_mutex_t q_mu;
	struct queue_node *q_head, *q_tail; /* oldest first */
	struct queue_stats q_stats;
};

int
queue_new(uint64_t max_bytes, struct queue **ret_queue)
{
	struct queue *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return -ENOMEM;
	pthread_mutex_init(&q->q_mu, NULL);
	q->q_stats.qs_max_bytes = max_bytes;
	*ret_queue = q;
	return 0;
}

static void
queue_node_free(struct queue_node *n)
{
	free(n->qn_item.qi_buf);
	free(n);
}

void
queue_free(struct queue *q)
{
	if (q == NULL)
		return;
	while (q->q_head != NULL) {
		struct queue_node *n = q->q_head;
		q->q_head = n->qn_next;
		queue_node_free(n);
	}
	pthread_mutex_destroy(&q->q_mu);
	free(q);
}

/* Unlinks and returns the oldest node. Called with q_mu held; the queue is not empty. */
static struct queue_node *
queue_pop_locked(struct queue *q)
{
	struct queue_node *n = q->q_head;

	q->q_head = n->qn_next;
	if (q->q_head == NULL)
		q->q_tail = NULL;
	q->q_stats.qs_items--;
	q->q_stats.qs_bytes -= n->qn_item.qi_len;
	n->qn_next = NULL;
	return n;
}

static void
queue_report(const struct queue_item *it, struct queue_drop *drops, size_t max, size_t *k)
{
	if (*k < max) {
		memcpy(drops[*k].qd_component, it->qi_component, sizeof(drops[*k].qd_component));
		drops[*k].qd_seq = it->qi_seq;
		drops[*k].qd_len = it->qi_len;
	}
	(*k)++;
}

int
queue_push(struct queue *q, const struct queue_item *item, struct queue_drop *ret_drops,
    size_t max_report, size_t *ret_ndropped)
{
	struct queue_node *n;
	size_t k = 0;
	int rv = 0;

	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	n->qn_item = *item;
	pthread_mutex_lock(&q->q_mu);
	if (item->qi_len > q->q_stats.qs_max_bytes) {
		queue_report(item, ret_drops, max_report, &k);
		q->q_stats.qs_dropped++;
		rv = -EFBIG;
		goto out_unlock;
	}
	while (q->q_stats.qs_bytes + item->qi_len > q->q_stats.qs_max_bytes) {
		struct queue_node *old = queue_pop_locked(q);
		queue_report(&old->qn_item, ret_drops, max_report, &k);
		q->q_stats.qs_dropped++;
		queue_node_free(old);
	}
	if (q->q_tail != NULL)
		q->q_tail->qn_next = n;
	else
		q->q_head = n;
	q->q_tail = n;
	q->q_stats.qs_items++;
	q->q_stats.qs_bytes += item->qi_len;
	n = NULL;
out_unlock:
	pthread_mutex_unlock(&q->q_mu);
	if (n != NULL)
		queue_node_free(n);
	*ret_ndropped = k;
	return rv;
}

bool
queue_take(struct queue *q, struct queue_item *ret_item)
{
	struct queue_node *n = NULL;

	pthread_mutex_lock(&q->q_mu);
	if (q->q_head != NULL)
		n = queue_pop_locked(q);
	pthread_mutex_unlock(&q->q_mu);
	if (n == NULL)
		return false;
	*ret_item = n->qn_item;
	free(n);
	return true;
}

void
queue_untake(struct queue *q, const struct queue_item *item)
{
	struct queue_node *n = calloc(1, sizeof(*n));

	pthread_mutex_lock(&q->q_mu);
	if (n == NULL || q->q_stats.qs_bytes + item->qi_len > q->q_stats.qs_max_bytes) {
		/* Newer checkpoints took its room meanwhile: it is the oldest, it goes. */
		q->q_stats.qs_dropped++;
		pthread_mutex_unlock(&q->q_mu);
		free(n);
		free(item->qi_buf);
		return;
	}
	n->qn_item = *item;
	n->qn_next = q->q_head;
	q->q_head = n;
	if (q->q_tail == NULL)
		q->q_tail = n;
	q->q_stats.qs_items++;
	q->q_stats.qs_bytes += item->qi_len;
	pthread_mutex_unlock(&q->q_mu);
}

size_t
queue_drop_component(struct queue *q, const char *component)
{
	struct queue_node **p, *dead = NULL;
	size_t k = 0;

	pthread_mutex_lock(&q->q_mu);
	q->q_tail = NULL;
	for (p = &q->q_head; *p != NULL;) {
		struct queue_node *n = *p;
		if (strcmp(n->qn_item.qi_component, component) == 0) {
			*p = n->qn_next;
			q->q_stats.qs_items--;
			q->q_stats.qs_bytes -= n->qn_item.qi_len;
			n->qn_next = dead;
			dead = n;
			k++;
		} else {
			q->q_tail = n;
			p = &n->qn_next;
		}
	}
	pthread_mutex_unlock(&q->q_mu);
	while (dead != NULL) {
		struct queue_node *n = dead;
		dead = n->qn_next;
		queue_node_free(n);
	}
	return k;
}

bool
queue_empty(struct queue *q)
{
	bool empty;

	pthread_mutex_lock(&q->q_mu);
	empty = q->q_head == NULL;
	pthread_mutex_unlock(&q->q_mu);
	return empty;
}

void
queue_count_stored(struct queue *q)
{
	pthread_mutex_lock(&q->q_mu);
	q->q_stats.qs_stored++;
	pthread_mutex_unlock(&q->q_mu);
}

void
queue_count_dropped(struct queue *q)
{
	pthread_mutex_lock(&q->q_mu);
	q->q_stats.qs_dropped++;
	pthread_mutex_unlock(&q->q_mu);
}

void
queue_get_stats(struct queue *q, struct queue_stats *ret_stats)
{
	pthread_mutex_lock(&q->q_mu);
	*ret_stats = q->q_stats;
	pthread_mutex_unlock(&q->q_mu);
}

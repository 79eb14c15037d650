#include "limit.h"

#include <string.h>

const char *const limit_names[LIMIT_NAMES] = {
	LIMIT_N_MESSAGE_SIZE, LIMIT_N_CONNECTIONS, LIMIT_N_RPS, LIMIT_N_STRING, LIMIT_N_LIST,
	LIMIT_N_NODES, LIMIT_N_COMPONENTS, LIMIT_N_UPLOADS, LIMIT_N_QUOTA,
};

_Static_assert(LIMIT_LIST_DEFAULT == LIMIT_REFS_MAX, "a checkpoint's chunk list fits the list limit");
_Static_assert(LIMIT_COMPONENTS_DEFAULT <= LIMIT_NODE_COMPONENTS_MAX, "within the wire's ceiling");

int
limit_index(const char *name)
{
	for (int i = 0; i < LIMIT_NAMES; i++)
		if (strcmp(limit_names[i], name) == 0)
			return i;
	return -1;
}

bool
limit_bucket_take(uint64_t *tat, uint64_t now_ns, uint64_t ns_per_token, uint32_t burst)
{
	uint64_t window = ns_per_token * (burst != 0 ? burst : 1);
	/* A bucket idle for longer than it takes to fill is full, no fuller. */
	uint64_t t = *tat > now_ns ? *tat : now_ns;

	if (t + ns_per_token > now_ns + window)
		return false;
	*tat = t + ns_per_token;
	return true;
}

bool
limit_log_ok(uint64_t *last, uint64_t *suppressed, uint64_t now_ms, uint64_t interval_ms,
    uint64_t *ret_suppressed)
{
	uint64_t seen = __atomic_load_n(last, __ATOMIC_RELAXED);

	if ((seen == 0 || now_ms >= seen + interval_ms) &&
	    __atomic_compare_exchange_n(last, &seen, now_ms != 0 ? now_ms : 1, false,
	        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		*ret_suppressed = __atomic_exchange_n(suppressed, 0, __ATOMIC_RELAXED);
		return true;
	}
	__atomic_fetch_add(suppressed, 1, __ATOMIC_RELAXED);
	return false;
}

bool
limit_log_named(struct limit_log *l, const char *name, uint64_t now_ms, uint64_t *ret_suppressed)
{
	int i = limit_index(name);

	if (i < 0)
		i = LIMIT_NAMES;
	return limit_log_ok(&l->ll_last[i], &l->ll_held[i], now_ms, LIMIT_LOG_INTERVAL_MS,
	    ret_suppressed);
}

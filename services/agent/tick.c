/* tick: the ticker thread, one d_tick of every running component every DRV_TICK_MS. */

#include "agent_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void *
tick_main(void *arg)
{
	struct agent *a = arg;
	uint64_t next = util_now_mono_ms();

	for (;;) {
		uint64_t now;
		next += DRV_TICK_MS;
		if (agent_sleep_until(a, next))
			break;
		comp_tick_all(a->a_comps);
		now = util_now_mono_ms();
		if (next + DRV_TICK_MS < now)
			next = now; /* fell behind: do not tick in a burst */
	}
	return NULL;
}

/*
 * counter: a libckpt example. It counts, writes into a buffer as it counts,
 * and checkpoints every N counts; started again after a failure or a
 * migration it goes on from the checkpointed count.
 *
 *   ckpt-counter [--until N] [--every K] [--sleep-ms MS] [--buffer BYTES]
 *
 * Run by a ckpt agent (CKPT_COMPONENT, CKPT_LOCAL_URL in its environment).
 * It prints one line per event: "start fresh", "restored counter=C",
 * "checkpoint seq=S counter=C", "done counter=C". The buffer is a function
 * of the count (byte (c * 7919) % size holds c's low byte), so after a
 * restore it checks the buffer it got back against the count it got back
 * and exits 2 if they disagree.
 *
 * Build against an installed libckpt:
 *   cc counter.c $(pkg-config --cflags --libs ckpt)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt.h"

#define REGION_STATE 1u
#define REGION_BUFFER 2u

struct state {
	uint64_t st_counter;
	uint64_t st_buffer_size;
};

static void
step(uint8_t *buf, size_t size, uint64_t c)
{
	buf[(c * 7919u) % size] = (uint8_t)c;
}

static int
fail(const char *what, int rv)
{
	fprintf(stderr, "counter: %s: %s (%s)\n", what, ckpt_strerror(rv), ckpt_errmsg());
	return 1;
}

static unsigned long long
arg(int argc, char **argv, const char *name, unsigned long long def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return strtoull(argv[i + 1], NULL, 10);
	return def;
}

int
main(int argc, char **argv)
{
	unsigned long long until = arg(argc, argv, "--until", 1000);
	unsigned long long every = arg(argc, argv, "--every", 100);
	unsigned long long sleep_ms = arg(argc, argv, "--sleep-ms", 0);
	struct state st = { 0, arg(argc, argv, "--buffer", 65536) };
	struct timespec nap = { (time_t)(sleep_ms / 1000), (long)(sleep_ms % 1000) * 1000000L };
	uint8_t *buf, *check;
	int rv;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (st.st_buffer_size == 0 || every == 0) {
		fprintf(stderr, "counter: --buffer and --every must be > 0\n");
		return 1;
	}
	buf = calloc(1, st.st_buffer_size);
	check = calloc(1, st.st_buffer_size);
	if (buf == NULL || check == NULL) {
		fprintf(stderr, "counter: out of memory\n");
		return 1;
	}
	rv = ckpt_init(NULL, NULL);
	if (rv != 0)
		return fail("init", rv);
	if ((rv = ckpt_protect(REGION_STATE, &st, sizeof(st))) != 0 ||
	    (rv = ckpt_protect(REGION_BUFFER, buf, st.st_buffer_size)) != 0)
		return fail("protect", rv);
	rv = ckpt_restarted();
	if (rv < 0)
		return fail("restarted", rv);
	if (rv == 1) {
		rv = ckpt_restore();
		if (rv != 0)
			return fail("restore", rv);
		for (uint64_t c = 1; c <= st.st_counter; c++)
			step(check, st.st_buffer_size, c);
		if (memcmp(check, buf, st.st_buffer_size) != 0) {
			fprintf(stderr, "counter: restored buffer does not match counter %llu\n",
			    (unsigned long long)st.st_counter);
			return 2;
		}
		printf("restored counter=%llu\n", (unsigned long long)st.st_counter);
	} else {
		printf("start fresh\n");
	}
	while (st.st_counter < until) {
		uint64_t c = ++st.st_counter;
		step(buf, st.st_buffer_size, c);
		ckpt_mark_changed(REGION_BUFFER, (c * 7919u) % st.st_buffer_size, 1);
		if (c % every == 0) {
			int64_t seq = ckpt_checkpoint();
			if (seq < 0)
				return fail("checkpoint", (int)seq);
			printf("checkpoint seq=%lld counter=%llu\n", (long long)seq,
			    (unsigned long long)c);
		}
		if (sleep_ms > 0)
			nanosleep(&nap, NULL);
	}
	printf("done counter=%llu\n", (unsigned long long)st.st_counter);
	rv = ckpt_finalize();
	if (rv != 0)
		return fail("finalize", rv);
	free(check);
	free(buf);
	return 0;
}

/*
 * rate: a token bucket that caps the bytes per second some senders share
 * (the agent's uploads, ckpt-agent --upload-rate).
 *
 * It is kept as the time at which the debt taken so far is paid ("tat", the
 * theoretical arrival time of GCRA): taking n bytes moves it n/rate seconds
 * on, from no earlier than now - burst/rate (a full bucket), and the taker
 * waits until then. Takers are served in the
 * order they take, each pays for its own bytes, and the average over any
 * stretch is at most rate bytes/s plus one burst. A taker may take more than
 * the burst at once (a message is sent whole): it waits for the whole debt
 * before it sends, so the cap holds on average, not within one message.
 *
 * Thread-safe: one mutex around the arithmetic, never held while sleeping.
 * The clock is CLOCK_MONOTONIC unless a test passes its own.
 */
#ifndef CKPT_RATE_H
#define CKPT_RATE_H

#include <stdbool.h>
#include <stdint.h>

/* Bounds of a rate in bytes/s (0 is "no cap", which needs no rate at all). */
#define RATE_MIN 1ull
#define RATE_MAX (4ull << 30)
/* The longest single sleep of rate_wait(): how long a stop may go unseen. */
#define RATE_STEP_MS 50u

struct rate;

/* Now, in nanoseconds of a monotonic clock. */
typedef uint64_t (*rate_clock_fn)(void *arg);
/* true: give up waiting (rate_wait() returns -ECANCELED). */
typedef bool (*rate_stop_fn)(void *arg);

/*
 * bytes_per_s in [RATE_MIN, RATE_MAX]; burst: bytes that may go at once after
 * an idle stretch, 1 to bytes_per_s (0: bytes_per_s / 10, at least 1).
 * clock NULL: CLOCK_MONOTONIC. -EINVAL out of bounds, -ENOMEM.
 */
int rate_new(uint64_t bytes_per_s, uint64_t burst, rate_clock_fn clock, void *clock_arg,
    struct rate **ret_rate);
/* Accepts NULL. No taker may be inside rate_take() or rate_wait(). */
void rate_free(struct rate *r);
uint64_t rate_bytes_per_s(const struct rate *r);
/* The sum of the waits rate_take() returned so far (ns): how much the cap held senders back. */
uint64_t rate_waited_ns(struct rate *r);

/*
 * Takes n bytes from the bucket at once (the debt is recorded even when the
 * caller then gives up) and returns how many nanoseconds the caller must
 * wait before it sends them: 0 when the bucket held them.
 */
uint64_t rate_take(struct rate *r, uint64_t n);

/*
 * rate_take(), then sleeps the wait in steps of at most RATE_STEP_MS,
 * asking stop(stop_arg) (may be NULL) before each. 0 once the bytes may go;
 * -ECANCELED when stop said so. With a test clock it does not sleep.
 */
int rate_wait(struct rate *r, uint64_t n, rate_stop_fn stop, void *stop_arg);

#endif

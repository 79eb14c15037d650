/*
 * util: time, duration and size parsing.
 */
#ifndef CKPT_UTIL_H
#define CKPT_UTIL_H

#include <stdint.h>

/* Wall clock, milliseconds since the epoch. */
uint64_t util_now_unix_ms(void);
/* Monotonic clock, milliseconds. */
uint64_t util_now_mono_ms(void);
void util_sleep_ms(unsigned ms);

/* "250ms", "3s", "1.5s", "2m", "1h"; a bare number is seconds. */
int util_parse_duration_ms(const char *s, uint64_t *ret_ms);
/* "4096", "64K", "64KiB", "16M", "1G" (powers of 1024). */
int util_parse_size(const char *s, uint64_t *ret_bytes);
/* Bytes for a log or a person: "512 B", "64 KiB", "1.5 MiB" (one decimal unless whole). */
#define UTIL_SIZE_STR_MAX 16
const char *util_fmt_size(uint64_t bytes, char buf[UTIL_SIZE_STR_MAX]);
/* Strict decimal integer in [min, max]. */
int util_parse_int(const char *s, int64_t min, int64_t max, int64_t *ret_val);

#endif

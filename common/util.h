/*
 * util: time, duration and size parsing.
 */
#ifndef CKPT_UTIL_H
#define CKPT_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Wall clock, milliseconds since the epoch. */
uint64_t util_now_unix_ms(void);
/* Monotonic clock, milliseconds. */
uint64_t util_now_mono_ms(void);
void util_sleep_ms(unsigned ms);

/*
 * FNV-1a, 32 bits, for hash tables: h = UTIL_FNV1A_INIT, then
 * util_fnv1a(h, p, n) over each piece in order.
 */
#define UTIL_FNV1A_INIT 2166136261u
static inline uint32_t
util_fnv1a(uint32_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

/* "250ms", "3s", "1.5s", "2m", "1h"; a bare number is seconds. */
int util_parse_duration_ms(const char *s, uint64_t *ret_ms);
/* "4096", "64K", "64KiB", "16M", "1G" (powers of 1024). */
int util_parse_size(const char *s, uint64_t *ret_bytes);
/* Bytes for a log or a person: "512 B", "64 KiB", "1.5 MiB" (one decimal unless whole). */
#define UTIL_SIZE_STR_MAX 16
const char *util_fmt_size(uint64_t bytes, char buf[UTIL_SIZE_STR_MAX]);
/* Strict decimal integer in [min, max]. */
int util_parse_int(const char *s, int64_t min, int64_t max, int64_t *ret_val);

/* Buffers at least this long are worth util_prefault(). */
#define UTIL_PREFAULT_MIN (256u << 10)
/*
 * Makes the whole pages of [p, p + len) present and writable in one system
 * call (MADV_POPULATE_WRITE) before they are written, instead of one page
 * fault each: a fresh 4 MiB buffer is 1,024 faults, and on a virtual
 * machine a fault is an exit to the hypervisor. Pages already present are
 * left as they are; a kernel without it (before 5.14) or a short buffer:
 * nothing is done. Contents unchanged; never fails.
 */
void util_prefault(void *p, size_t len);
/* The same for reading (MADV_POPULATE_READ): a file mapping's pages mapped in one call. */
void util_prefault_read(const void *p, size_t len);
/* The size of a transparent huge page on x86-64 and arm64 (4 KiB base pages). */
#define UTIL_HUGE_PAGE (2u << 20)
/*
 * Asks for transparent huge pages (MADV_HUGEPAGE) on the whole huge pages of
 * [p, p + len): each is then faulted in at once when first written, one
 * fault instead of 512. Nothing is touched; where THP is off or the kernel
 * cannot, nothing changes. Never fails.
 */
void util_hugepage(void *p, size_t len);

/*
 * writev(2) of all of iov[0..count) to fd, again after a short write or
 * EINTR (iov is advanced past what was written). 0 or a negative errno.
 */
struct iovec;
int util_writev_all(int fd, struct iovec *iov, int count);

#endif

#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

uint64_t
util_now_unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
util_now_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
util_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

int
util_parse_duration_ms(const char *s, uint64_t *ret_ms)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 }, { "min", 60000 },
		{ "h", 3600000 } };
	char *end;
	double v;

	if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || !isfinite(v) || v < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			double ms = v * units[i].ms;
			if (ms > 1e15)
				return -ERANGE;
			*ret_ms = (uint64_t)llround(ms);
			return 0;
		}
	}
	return -EINVAL;
}

int
util_parse_size(const char *s, uint64_t *ret_bytes)
{
	static const struct {
		const char *unit;
		int shift;
	} units[] = { { "", 0 }, { "B", 0 }, { "K", 10 }, { "KiB", 10 }, { "k", 10 }, { "M", 20 },
		{ "MiB", 20 }, { "G", 30 }, { "GiB", 30 }, { "T", 40 }, { "TiB", 40 } };
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -ERANGE;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			if (units[i].shift > 0 && v > (UINT64_MAX >> units[i].shift))
				return -ERANGE;
			*ret_bytes = (uint64_t)v << units[i].shift;
			return 0;
		}
	}
	return -EINVAL;
}

int
util_parse_int(const char *s, int64_t min, int64_t max, int64_t *ret_val)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return errno == ERANGE ? -ERANGE : -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret_val = v;
	return 0;
}

const char *
util_fmt_size(uint64_t bytes, char buf[UTIL_SIZE_STR_MAX])
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	size_t u = 0;
	uint64_t whole = bytes;

	while (whole >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		whole /= 1024;
		u++;
	}
	if (u == 0 || bytes % ((uint64_t)1 << (10 * u)) == 0)
		snprintf(buf, UTIL_SIZE_STR_MAX, "%llu %s", (unsigned long long)whole, units[u]);
	else
		snprintf(buf, UTIL_SIZE_STR_MAX, "%.1f %s",
		    (double)bytes / (double)((uint64_t)1 << (10 * u)), units[u]);
	return buf;
}

/* madvise(advice) on the whole pages of [p, p + len), when len is worth it. */
static void
util_populate(const void *p, size_t len, int advice)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t lo, hi;

	if (len < UTIL_PREFAULT_MIN || page <= 0)
		return;
	lo = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
	hi = ((uintptr_t)p + len) & ~((uintptr_t)page - 1);
	if (hi > lo)
		(void)madvise((void *)lo, hi - lo, advice);
}

void
util_prefault(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
	util_populate(p, len, MADV_POPULATE_WRITE);
#else
	(void)p;
	(void)len;
#endif
}

void
util_hugepage(void *p, size_t len)
{
#ifdef MADV_HUGEPAGE
	uintptr_t lo = ((uintptr_t)p + UTIL_HUGE_PAGE - 1) & ~(uintptr_t)(UTIL_HUGE_PAGE - 1);
	uintptr_t hi = ((uintptr_t)p + len) & ~(uintptr_t)(UTIL_HUGE_PAGE - 1);

	if (hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
	(void)p;
	(void)len;
#endif
}

void
util_prefault_read(const void *p, size_t len)
{
#ifdef MADV_POPULATE_READ
	util_populate(p, len, MADV_POPULATE_READ);
#else
	(void)p;
	(void)len;
#endif
}

int
util_writev_all(int fd, struct iovec *iov, int count)
{
	while (count > 0) {
		ssize_t k = writev(fd, iov, count);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		while (count > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			count--;
		}
		if (count > 0) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

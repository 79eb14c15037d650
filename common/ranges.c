#include "ranges.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One number at *p (decimal or 0x hex); false when there is none or it overflows. */
static bool
ranges_num(const char **p, const char *end, uint64_t *ret)
{
	const char *s = *p;
	unsigned base = 10;
	uint64_t v = 0;
	bool any = false;

	if (end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (; s < end; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a') + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A') + 10;
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
		any = true;
	}
	*p = s;
	*ret = v;
	return any;
}

/* One token [s, end): its range, or a reason. */
static const char *
ranges_token(const char *s, const char *end, uint64_t page, struct nasc_range *ret)
{
	uint64_t a, b;

	if (!ranges_num(&s, end, &a))
		return "not a number";
	if (s == end) {
		if (a > UINT64_MAX / page - 1)
			return "page number too large";
		ret->nr_off = a * page;
		ret->nr_len = page;
		return NULL;
	}
	if (*s != '-' && *s != '+')
		return "expected N, N-M or OFF+LEN";
	{
		char op = *s++;
		if (!ranges_num(&s, end, &b) || s != end)
			return "expected N, N-M or OFF+LEN";
		if (op == '+') {
			if (b == 0)
				return "empty range (LEN 0)";
			if (b > UINT64_MAX - a)
				return "range past 2^64";
			ret->nr_off = a;
			ret->nr_len = b;
			return NULL;
		}
		if (b < a)
			return "page range N-M with M below N";
		if (b > UINT64_MAX / page - 1)
			return "page number too large";
		ret->nr_off = a * page;
		ret->nr_len = (b - a + 1) * page;
		return NULL;
	}
}

int
ranges_parse(const char *text, size_t len, uint64_t page, struct nasc_range **ret,
    size_t *ret_n, char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	struct nasc_range *r = NULL;
	size_t n = 0, cap = 0, line = 1;

	*ret = NULL;
	*ret_n = 0;
	if (page < 512 || page > RANGES_PAGE_MAX || (page & (page - 1)) != 0) {
		snprintf(err, errlen, "page size %" PRIu64 ": a power of two from 512 to %llu", page,
		    RANGES_PAGE_MAX);
		return -EINVAL;
	}
	while (p < end) {
		const char *t, *why;
		if (*p == '\n') {
			line++;
			p++;
			continue;
		}
		if (isspace((unsigned char)*p) || *p == ',') {
			p++;
			continue;
		}
		if (*p == '#') {
			while (p < end && *p != '\n')
				p++;
			continue;
		}
		for (t = p; t < end && !isspace((unsigned char)*t) && *t != ',' && *t != '#'; t++)
			;
		if (n == cap) {
			size_t c = cap != 0 ? 2 * cap : 64;
			void *x;
			if (n == NASC_RANGES_MAX) {
				free(r);
				snprintf(err, errlen, "line %zu: more than %u ranges", line, NASC_RANGES_MAX);
				return -E2BIG;
			}
			c = c < NASC_RANGES_MAX ? c : NASC_RANGES_MAX;
			if ((x = realloc(r, c * sizeof(*r))) == NULL) {
				free(r);
				snprintf(err, errlen, "out of memory");
				return -ENOMEM;
			}
			r = x;
			cap = c;
		}
		why = ranges_token(p, t, page, &r[n]);
		if (why != NULL) {
			snprintf(err, errlen, "line %zu: '%.*s': %s", line, (int)(t - p < 40 ? t - p : 40),
			    p, why);
			free(r);
			return -EINVAL;
		}
		n++;
		p = t;
	}
	*ret = r;
	*ret_n = n;
	return 0;
}

int
ranges_load(const char *path, uint64_t page, struct nasc_range **ret, size_t *ret_n, char *err,
    size_t errlen)
{
	bool in = strcmp(path, "-") == 0;
	int fd = in ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0, cap = 0;
	char *buf = NULL;
	int rv = 0;

	*ret = NULL;
	*ret_n = 0;
	if (fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(-rv));
		return rv;
	}
	for (;;) {
		ssize_t got;
		if (len == cap) {
			size_t c = cap != 0 ? 2 * cap : 4096;
			void *x;
			if (cap >= RANGES_FILE_MAX) {
				snprintf(err, errlen, "%s: larger than %u MiB", path, RANGES_FILE_MAX >> 20);
				rv = -E2BIG;
				break;
			}
			if ((x = realloc(buf, c)) == NULL) {
				snprintf(err, errlen, "out of memory");
				rv = -ENOMEM;
				break;
			}
			buf = x;
			cap = c;
		}
		got = read(fd, buf + len, cap - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rv = -errno;
			snprintf(err, errlen, "reading %s: %s", path, strerror(-rv));
			break;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	if (!in)
		close(fd);
	if (rv == 0)
		rv = ranges_parse(buf != NULL ? buf : "", len, page, ret, ret_n, err, errlen);
	free(buf);
	return rv;
}

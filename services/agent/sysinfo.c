#include "sysinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SYSINFO_TEXT_MAX 8192

/* Value of "Key:   123 kB" in bytes; -ENOENT when the key is absent. */
static int
sysinfo_meminfo_field(const char *text, const char *key, uint64_t *ret_bytes)
{
	size_t klen = strlen(key);
	const char *line = text;

	while (line != NULL && *line != '\0') {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			const char *p = line + klen + 1;
			unsigned long long v;
			char *end;

			while (*p == ' ' || *p == '\t')
				p++;
			if (*p < '0' || *p > '9')
				return -EINVAL;
			errno = 0;
			v = strtoull(p, &end, 10);
			if (errno != 0 || v > UINT64_MAX / 1024)
				return -EINVAL;
			while (*end == ' ' || *end == '\t')
				end++;
			*ret_bytes = strncmp(end, "kB", 2) == 0 ? (uint64_t)v * 1024u : (uint64_t)v;
			return 0;
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return -ENOENT;
}

int
sysinfo_parse_meminfo(const char *text, uint64_t *ret_free, uint64_t *ret_total)
{
	uint64_t avail, total;
	int rv;

	rv = sysinfo_meminfo_field(text, "MemTotal", &total);
	if (rv != 0)
		return -EINVAL;
	rv = sysinfo_meminfo_field(text, "MemAvailable", &avail);
	if (rv == -ENOENT)
		rv = sysinfo_meminfo_field(text, "MemFree", &avail);
	if (rv != 0)
		return -EINVAL;
	*ret_free = avail;
	*ret_total = total;
	return 0;
}

int
sysinfo_parse_loadavg(const char *text, uint32_t *ret_load_milli)
{
	char *end;
	double v;

	if (text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtod(text, &end);
	if (errno != 0 || end == text || !isfinite(v) || v < 0 || (*end != ' ' && *end != '\0'))
		return -EINVAL;
	v *= 1000.0;
	*ret_load_milli = v >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)lround(v);
	return 0;
}

static int
sysinfo_slurp(const char *path, char *buf, size_t cap)
{
	size_t got = 0;
	int fd, rv = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (got < cap - 1) {
		ssize_t k = read(fd, buf + got, cap - 1 - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rv = -errno;
			break;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	buf[got] = '\0';
	return rv;
}

int
sysinfo_read(struct sysinfo_cap *ret_cap)
{
	struct sysinfo_cap cap = { 0 };
	char text[SYSINFO_TEXT_MAX];
	long cpus;
	int rv;

	rv = sysinfo_slurp("/proc/meminfo", text, sizeof(text));
	if (rv == 0)
		rv = sysinfo_parse_meminfo(text, &cap.sc_mem_free, &cap.sc_mem_total);
	if (rv != 0)
		return rv;
	rv = sysinfo_slurp("/proc/loadavg", text, sizeof(text));
	if (rv == 0)
		rv = sysinfo_parse_loadavg(text, &cap.sc_load_milli);
	if (rv != 0)
		return rv;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cap.sc_cpus = cpus > 0 ? (uint32_t)cpus : 1u;
	*ret_cap = cap;
	return 0;
}

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set once by log_init() before threads start; read-only afterwards. */
static struct {
	char prefix[96];
	enum log_level min;
} log_cfg = { "ckpt", LOG_LEVEL_INFO };

static const char *const log_level_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

void
log_init(const char *prog, const char *instance, enum log_level min)
{
	if (instance != NULL && instance[0] != '\0')
		snprintf(log_cfg.prefix, sizeof(log_cfg.prefix), "%s[%s]", prog, instance);
	else
		snprintf(log_cfg.prefix, sizeof(log_cfg.prefix), "%s", prog);
	log_cfg.min = min;
}

int
log_level_parse(const char *s, enum log_level *ret_level)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*ret_level = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool
log_on(enum log_level level)
{
	return level >= log_cfg.min;
}

void
log_write(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int k;
	va_list ap;

	if (level < log_cfg.min)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	k = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s ", ts.tv_nsec / 1000000L,
	    log_cfg.prefix, log_level_names[level]);
	if (k > 0)
		n += (size_t)k;
	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (k > 0)
		n += (size_t)k;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line: lines from different threads never interleave. */
	if (write(STDERR_FILENO, line, n) < 0) {
		/* Nowhere left to report it. */
	}
}

/*
 * log: one line per event on stderr.
 *
 *   2026-11-27T17:08:32.123Z nas[dummy_1] INFO checkpoint stored ...
 *
 * The process name and instance are set once at start-up by log_init() and
 * never change; lines are written with one write(2) so lines from threads do
 * not interleave. Library code in common/ does not log: it returns an error
 * and its caller logs.
 */
#ifndef CKPT_LOG_H
#define CKPT_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Call once from main() before any thread starts. */
void log_init(const char *prog, const char *instance, enum log_level min);
/* "debug", "info", "warn", "error" -> level; -EINVAL otherwise. */
int log_level_parse(const char *s, enum log_level *ret_level);
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether a line of this level is written: to skip formatting its arguments when not. */
bool log_on(enum log_level level);

#define LOG_DEBUG(...) log_write(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define LOG_INFO(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_WARN(...) log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define LOG_ERROR(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif

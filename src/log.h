/*
 * log: one line per event, `key=value` pairs, to stderr or syslog.
 *
 * Every line starts with the level and, when it concerns a session or a
 * message, `id=`. Values that may hold spaces are quoted by log_quote().
 * Secrets never reach this module: callers pass redacted text, and the
 * one place that could see an AUTH payload (upstream.c) logs only
 * `auth=<mechanism>`.
 */
#ifndef SUBRELAY_LOG_H
#define SUBRELAY_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
/* relay.log_format: the key=value line as is, or one JSON object per line. */
enum log_format { LOG_FMT_LOGFMT, LOG_FMT_JSON };

/* Configures where lines go and how; callable again on reload. */
void log_setup(bool use_syslog, enum log_level level, enum log_format format);
/* relay.workers > 1: every line of worker k ends with ` worker=k`
 * (k < 0: none, the master and a single process). */
void log_set_worker(int k);
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_LVL_DEBUG)) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

/*
 * Formats s as a log value into out (size n): bare when it holds only
 * safe characters, else in double quotes with `"`, `\` and control bytes
 * escaped. Truncates long values with "...". Returns out.
 */
const char *log_quote(char *out, size_t n, const char *s);

#endif

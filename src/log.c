#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <sys/time.h>

static bool log_to_syslog;
static enum log_level log_threshold = LOG_LVL_INFO;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_setup(bool use_syslog, enum log_level level)
{
	if (use_syslog && !log_to_syslog)
		openlog("subrelayd", LOG_PID | LOG_NDELAY, LOG_MAIL);
	else if (!use_syslog && log_to_syslog)
		closelog();
	log_to_syslog = use_syslog;
	log_threshold = level;
}

bool log_enabled(enum log_level level)
{
	return level <= log_threshold;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[2048];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_to_syslog) {
		syslog(syslog_prio[level], "level=%s %s", level_names[level], line);
		return;
	}
	struct timeval tv;
	struct tm tm;
	char stamp[32];
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ level=%s %s\n", stamp, (long)(tv.tv_usec / 1000),
	    level_names[level], line);
}

static bool is_bare(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c == '"' || c == '\\' || c == '=' || c >= 0x7f)
			return false;
	}
	return true;
}

const char *log_quote(char *out, size_t n, const char *s)
{
	size_t o = 0;

	if (s == NULL)
		s = "";
	if (is_bare(s) && strlen(s) < n) {
		memcpy(out, s, strlen(s) + 1);
		return out;
	}
	out[o++] = '"';
	for (; *s && o + 10 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < ' ' || c == 0x7f) {
			o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	if (*s)
		o += (size_t)snprintf(out + o, n - o, "...");
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

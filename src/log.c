#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>

static bool log_to_syslog;
static char log_suffix[32];
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

void log_set_worker(int k)
{
	if (k < 0)
		log_suffix[0] = '\0';
	else
		snprintf(log_suffix, sizeof(log_suffix), " worker=%d", k);
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
	/* Text quoted from elsewhere (a configuration error) may end in a newline. */
	size_t len = strlen(line);
	while (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	if (log_to_syslog) {
		syslog(syslog_prio[level], "level=%s %s%s", level_names[level], line, log_suffix);
		return;
	}
	struct timeval tv;
	struct tm tm;
	char stamp[32];
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One write per line: workers share stderr and must not interleave. */
	char out[sizeof(line) + 128];
	int n = snprintf(out, sizeof(out), "%s.%03ldZ level=%s %s%s\n", stamp, (long)(tv.tv_usec / 1000),
	    level_names[level], line, log_suffix);
	if (n >= (int)sizeof(out)) {
		n = (int)sizeof(out) - 1;
		out[n - 1] = '\n';
	}
	if (n > 0 && write(STDERR_FILENO, out, (size_t)n) < 0)
		return; /* nowhere left to say it */
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

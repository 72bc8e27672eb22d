#include "log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>

/* The text of a line (after the formatting); its encoded form may be
 * up to six times longer in JSON (\u00XX), plus the keys' quotes. */
#define LINE_MAX_TEXT 2048
#define LINE_MAX_OUT (LINE_MAX_TEXT * 7 + 256)

static bool log_to_syslog;
static char log_suffix[32];
static enum log_level log_threshold = LOG_LVL_INFO;
static enum log_format log_fmt = LOG_FMT_LOGFMT;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_setup(bool use_syslog, enum log_level level, enum log_format format)
{
	if (use_syslog && !log_to_syslog)
		openlog("subrelayd", LOG_PID | LOG_NDELAY, LOG_MAIL);
	else if (!use_syslog && log_to_syslog)
		closelog();
	log_to_syslog = use_syslog;
	log_threshold = level;
	log_fmt = format;
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

/* ---- JSON: the same line, parsed back into its words and pairs ---- */

/* An output buffer that never overflows: put() drops what does not fit
 * before `end`, which leaves room for closing what is open. */
struct out {
	char *p, *end;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (n > (size_t)(o->end - o->p))
		n = (size_t)(o->end - o->p);
	memcpy(o->p, s, n);
	o->p += n;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
	uint32_t min = len == 4 ? 0x10000 : len == 3 ? 0x800 : 0x80;
	uint32_t cp = s[0] & (0x3f >> (len - 1));

	if (s[0] < 0xc2 || s[0] > 0xf4 || len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : len;
}

/* A JSON string of s's n bytes: quotes and control bytes escaped, and a
 * byte that is not valid UTF-8 written as the code point of its value
 * (\u00XX, as Latin-1 reads it) so the output is always valid JSON. */
static void put_json_string(struct out *o, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	char esc[8];

	put(o, "\"", 1);
	for (size_t i = 0; i < n;) {
		size_t len = u[i] < 0x80 ? 1 : utf8_len(u + i, n - i);
		if (u[i] == '"' || u[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)u[i];
			put(o, esc, 2);
		} else if (u[i] < 0x20 || u[i] == 0x7f || len == 0) {
			put(o, esc, (size_t)snprintf(esc, sizeof(esc), "\\u%04x", u[i]));
			len = 1;
		} else {
			put(o, s + i, len);
		}
		i += len;
	}
	put(o, "\"", 1);
}

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	    c == '.';
}

/* The value at *p, undoing log_quote() into val (size LINE_MAX_TEXT);
 * *p moves past it. Returns its length. */
static size_t take_value(const char **p, char *val)
{
	const char *s = *p;
	size_t n = 0;

	if (*s != '"') {
		while (*s && *s != ' ')
			val[n++] = *s++;
		*p = s;
		return n;
	}
	for (s++; *s && *s != '"'; s++) {
		unsigned hex;
		if (s[0] == '\\' && s[1] == 'x' && sscanf(s + 2, "%2x", &hex) == 1) {
			val[n++] = (char)hex;
			s += 3;
		} else if (s[0] == '\\' && s[1] != '\0') {
			val[n++] = *++s;
		} else {
			val[n++] = *s;
		}
	}
	*p = *s == '"' ? s + 1 : s;
	return n;
}

/*
 * Encodes a logfmt line as one JSON object: "ts" (when given), "level",
 * "msg" (the words that are not key=value, in order: the event) and
 * every key=value pair as a string, as written (values stay strings so
 * a field's type never changes with its value).
 */
static size_t encode_json(char *buf, size_t size, const char *stamp, enum log_level level, const char *line)
{
	struct out o = { buf, buf + size - 4 }; /* room for "}\n" */
	char msg[LINE_MAX_TEXT], val[LINE_MAX_TEXT];
	size_t msg_len = 0;
	const char *p = line;

	if (stamp != NULL) {
		put(&o, "{\"ts\":", 6);
		put_json_string(&o, stamp, strlen(stamp));
		put(&o, ",", 1);
	} else {
		put(&o, "{", 1);
	}
	put(&o, "\"level\":", 8);
	put_json_string(&o, level_names[level], strlen(level_names[level]));
	/* The pairs go to their own buffer: msg, written before them, is
	 * complete only at the end of the line. */
	char pairs[LINE_MAX_OUT];
	struct out po = { pairs, pairs + sizeof(pairs) };
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		const char *k = p;
		while (is_key_char(*p))
			p++;
		if (p > k && *p == '=') {
			size_t klen = (size_t)(p - k);
			p++;
			size_t vlen = take_value(&p, val);
			put(&po, ",", 1);
			put_json_string(&po, k, klen);
			put(&po, ":", 1);
			put_json_string(&po, val, vlen);
			continue;
		}
		/* A word of the event, or of free text: joined by single spaces. */
		p = k;
		if (msg_len > 0 && msg_len + 1 < sizeof(msg))
			msg[msg_len++] = ' ';
		for (; *p && *p != ' '; p++)
			if (msg_len + 1 < sizeof(msg))
				msg[msg_len++] = *p;
	}
	while (msg_len > 0 && msg[msg_len - 1] == ' ')
		msg_len--;
	put(&o, ",\"msg\":", 7);
	put_json_string(&o, msg, msg_len);
	put(&o, pairs, (size_t)(po.p - pairs));
	o.end = buf + size;
	put(&o, "}\n", 2);
	return (size_t)(o.p - buf);
}

/* ---- lines ---- */

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[LINE_MAX_TEXT];
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
	char stamp[40];
	if (!log_to_syslog) {
		struct timeval tv;
		struct tm tm;
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
	}
	/* One write per line: workers share stderr and must not interleave. */
	char out[LINE_MAX_OUT];
	int n;
	if (log_fmt == LOG_FMT_JSON) {
		snprintf(line + len, sizeof(line) - len, "%s", log_suffix);
		n = (int)encode_json(out, sizeof(out), log_to_syslog ? NULL : stamp, level, line);
	} else if (log_to_syslog) {
		n = snprintf(out, sizeof(out), "level=%s %s%s\n", level_names[level], line, log_suffix);
	} else {
		n = snprintf(out, sizeof(out), "%s level=%s %s%s\n", stamp, level_names[level], line, log_suffix);
	}
	if (n >= (int)sizeof(out)) {
		n = (int)sizeof(out) - 1;
		out[n - 1] = '\n';
	}
	if (log_to_syslog) {
		syslog(syslog_prio[level], "%.*s", n > 0 ? n - 1 : 0, out);
		return;
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

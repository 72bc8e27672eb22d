/*
 * cfgval: value parsers for the configuration file. See cfgval.h.
 *
 * Every parser is strict: the whole string must be consumed, and the
 * error text quotes what was given and says what would be accepted, so
 * `subrelayd -t` output is enough to fix the file without the manual.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* strndup, strcasecmp; autotools' config.h is shadowed by src/config.h */
#endif
#include "cfgval.h"
#include "failf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <strings.h>
#include <netinet/in.h>

/* Longest user text quoted back in a message; values are single INI lines. */
#define QUOTE_MAX 64
/* Upper bound of any duration (about 31 years): keeps ev_timer arithmetic sane. */
#define DURATION_MAX 1e9

const char *tls_mode_name(enum tls_mode mode)
{
	static const char *const names[] = { "starttls", "implicit", "plain" };

	if ((unsigned)mode >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[mode];
}

/* Skips decimal digits, returning the end; *v saturates at UINT64_MAX. */
static const char *scan_digits(const char *s, uint64_t *v)
{
	*v = 0;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		*v = *v > (UINT64_MAX - d) / 10 ? UINT64_MAX : *v * 10 + d;
	}
	return s;
}

bool cfg_parse_size(const char *s, uint64_t *out, char *err, size_t errlen)
{
	static const char suffixes[] = "kmg";
	uint64_t v;
	const char *p = scan_digits(s, &v);
	const char *suffix = *p ? strchr(suffixes, tolower((unsigned char)*p)) : NULL;
	unsigned shift = suffix ? 10 * (unsigned)(suffix - suffixes + 1) : 0;

	if (p == s || (*p != '\0' && (suffix == NULL || p[1] != '\0')))
		return failf(err, errlen, "bad size \"%.*s\" (use a number with k, M or G)", QUOTE_MAX, s);
	if (v == UINT64_MAX || v > (UINT64_MAX >> shift))
		return failf(err, errlen, "size \"%.*s\" is too large", QUOTE_MAX, s);
	*out = v << shift;
	return true;
}

/* The number part of a duration: digits with an optional decimal fraction. */
static bool scan_decimal(const char **p, double *v)
{
	const char *s = *p;
	double scale = 1;

	if (!isdigit((unsigned char)*s))
		return false;
	*v = 0;
	for (; isdigit((unsigned char)*s); s++)
		*v = *v * 10 + (*s - '0');
	if (*s == '.') {
		if (!isdigit((unsigned char)s[1]))
			return false;
		for (s++; isdigit((unsigned char)*s); s++) {
			scale /= 10;
			*v += (*s - '0') * scale;
		}
	}
	*p = s;
	return true;
}

static bool duration_unit(const char *unit, double *secs)
{
	static const struct { const char *unit; double secs; } units[] = {
		{ "ms", 0.001 }, { "s", 1 }, { "m", 60 }, { "h", 3600 }, { "d", 86400 }, { "", 1 },
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(unit, units[i].unit) == 0) {
			*secs = units[i].secs;
			return true;
		}
	}
	return false;
}

bool cfg_parse_duration(const char *s, double *out, char *err, size_t errlen)
{
	const char *p = s;
	double v, scale;

	if (!scan_decimal(&p, &v) || !duration_unit(p, &scale))
		return failf(err, errlen, "bad duration \"%.*s\" (use a number with ms, s, m, h or d)",
		    QUOTE_MAX, s);
	v *= scale;
	if (v > DURATION_MAX)
		return failf(err, errlen, "duration \"%.*s\" is too long", QUOTE_MAX, s);
	*out = v;
	return true;
}

const char *cfg_format_duration(char *out, size_t n, double seconds)
{
	static const struct { char unit; unsigned long size; } units[] = {
		{ 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 },
	};
	const size_t nunits = sizeof(units) / sizeof(units[0]);
	unsigned long left = seconds > 0 ? (unsigned long)(seconds + 0.5) : 0;
	size_t i = 0;

	while (i + 1 < nunits && left < units[i].size)
		i++;
	unsigned long big = left / units[i].size, small = i + 1 < nunits ? left % units[i].size / units[i + 1].size : 0;
	if (small > 0)
		snprintf(out, n, "%lu%c%lu%c", big, units[i].unit, small, units[i + 1].unit);
	else
		snprintf(out, n, "%lu%c", big, units[i].unit);
	return out;
}

const char *cfg_format_utc(char *out, size_t n, double t)
{
	time_t secs = (time_t)t;
	struct tm tm;

	if (gmtime_r(&secs, &tm) == NULL || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, n, "%.0f", t);
	return out;
}

bool cfg_parse_bool(const char *s, bool *out, char *err, size_t errlen)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
			*out = strcasecmp(s, yes[i]) == 0;
			return true;
		}
	}
	return failf(err, errlen, "bad boolean \"%.*s\" (use yes or no)", QUOTE_MAX, s);
}

bool cfg_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out,
    char *err, size_t errlen)
{
	uint64_t v;
	const char *p = scan_digits(s, &v);

	if (p == s || *p != '\0')
		return failf(err, errlen, "bad number \"%.*s\"", QUOTE_MAX, s);
	if (v < min || v > max)
		return failf(err, errlen, "%.*s is out of range (%lu to %lu)", QUOTE_MAX, s, min, max);
	*out = (unsigned long)v;
	return true;
}

/* Port number in [min, 65535]. */
static bool parse_port(const char *s, unsigned min, uint16_t *out, char *err, size_t errlen)
{
	unsigned long v;

	if (!cfg_parse_uint(s, min, 65535, &v, NULL, 0))
		return failf(err, errlen, "bad port \"%.*s\" (use %u to 65535)", QUOTE_MAX, s, min);
	*out = (uint16_t)v;
	return true;
}

/* inet_pton for a host part that is not NUL-terminated; family AF_INET or AF_INET6. */
static bool parse_ip(const char *s, size_t len, int family, void *addr)
{
	char buf[INET6_ADDRSTRLEN];

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(family, buf, addr) == 1;
}

bool cfg_parse_listen(const char *s, struct sockaddr_any *out, char *err, size_t errlen)
{
	const char *host = s, *port, *end;
	int family = AF_INET;
	uint16_t portnum;

	if (*s == '[') {
		host = s + 1;
		end = strchr(host, ']');
		if (end == NULL || end[1] != ':')
			return failf(err, errlen, "bad address \"%.*s\" (use [IPv6]:PORT)", QUOTE_MAX, s);
		port = end + 2;
		family = AF_INET6;
	} else {
		end = strrchr(s, ':');
		if (end == NULL)
			return failf(err, errlen, "missing port in \"%.*s\" (use ADDRESS:PORT, e.g. 127.0.0.1:25)",
			    QUOTE_MAX, s);
		if (memchr(s, ':', (size_t)(end - s)) != NULL)
			return failf(err, errlen, "IPv6 address needs brackets: \"%.*s\" (use [IPv6]:PORT)",
			    QUOTE_MAX, s);
		port = end + 1;
	}
	if (!parse_port(port, 0, &portnum, err, errlen))
		return false;
	memset(out, 0, sizeof(*out));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(portnum);
		out->len = sizeof(*sin);
		if (parse_ip(host, (size_t)(end - host), AF_INET, &sin->sin_addr))
			return true;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(portnum);
		out->len = sizeof(*sin6);
		if (parse_ip(host, (size_t)(end - host), AF_INET6, &sin6->sin6_addr))
			return true;
	}
	return failf(err, errlen, "bad address \"%.*s\" (use an IP address, not a host name)",
	    (int)(end - host), host);
}

/* The options a listen address may carry after a slash. */
static const struct {
	const char *word;
	unsigned flag;
} listen_options[] = {
	{ "proxy", LISTEN_PROXY },
	{ "implicit", LISTEN_IMPLICIT },
};

static bool listen_option(const char *word, size_t n, unsigned *flags, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(listen_options) / sizeof(listen_options[0]); i++) {
		if (strlen(listen_options[i].word) != n || strncmp(word, listen_options[i].word, n) != 0)
			continue;
		if (*flags & listen_options[i].flag)
			return failf(err, errlen, "/%s given twice", listen_options[i].word);
		*flags |= listen_options[i].flag;
		return true;
	}
	return failf(err, errlen, "unknown listener option \"/%.*s\" (known: /proxy, /implicit)",
	    n > QUOTE_MAX ? QUOTE_MAX : (int)n, word);
}

bool cfg_parse_listen_addr(const char *s, struct listen_addr *out, char *err, size_t errlen)
{
	char addr[80]; /* the longest [IPv6]:PORT is 53 bytes */
	size_t n = strcspn(s, "/");
	unsigned flags = 0;

	if (n >= sizeof(addr))
		return failf(err, errlen, "bad address \"%.*s\"", QUOTE_MAX, s);
	memcpy(addr, s, n);
	addr[n] = '\0';
	for (const char *opt = s + n; *opt == '/'; opt += 1 + strcspn(opt + 1, "/"))
		if (!listen_option(opt + 1, strcspn(opt + 1, "/"), &flags, err, errlen))
			return false;
	memset(out, 0, sizeof(*out));
	if (!cfg_parse_listen(addr, &out->sa, err, errlen))
		return false;
	out->flags = flags;
	return true;
}

void sockaddr_format(char *out, size_t len, const struct sockaddr *sa)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (len == 0)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, (unsigned)ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, (unsigned)ntohs(sin6->sin6_port));
	} else {
		snprintf(out, len, "%s", sa->sa_family == AF_UNIX ? "unix" : "unknown");
	}
}

/* True if any bit after the first `prefix` bits of addr (n bytes) is set. */
static bool host_bits_set(const unsigned char *addr, size_t n, unsigned prefix)
{
	for (size_t i = prefix / 8; i < n; i++) {
		unsigned keep = i == prefix / 8 ? prefix % 8 : 0;
		if (addr[i] & (0xffu >> keep))
			return true;
	}
	return false;
}

static void clear_host_bits(unsigned char *addr, size_t n, unsigned prefix)
{
	for (size_t i = prefix / 8; i < n; i++)
		addr[i] &= i == prefix / 8 ? (unsigned char)(0xff00u >> (prefix % 8)) : 0;
}

bool cfg_parse_cidr(const char *s, struct cidr *out, char *err, size_t errlen)
{
	const char *slash = strchr(s, '/');
	size_t hostlen = slash ? (size_t)(slash - s) : strlen(s);
	struct cidr c = { .family = memchr(s, ':', hostlen) ? AF_INET6 : AF_INET };
	unsigned maxbits = c.family == AF_INET ? 32 : 128;
	unsigned long prefix = maxbits;
	char net[INET6_ADDRSTRLEN];

	if (!parse_ip(s, hostlen, c.family, c.addr))
		return failf(err, errlen, "bad network \"%.*s\" (use ADDRESS/PREFIX, e.g. 10.0.0.0/8)",
		    QUOTE_MAX, s);
	if (slash != NULL && !cfg_parse_uint(slash + 1, 0, maxbits, &prefix, NULL, 0))
		return failf(err, errlen, "bad prefix length in \"%.*s\" (use 0 to %u)", QUOTE_MAX, s,
		    maxbits);
	c.prefix = (unsigned)prefix;
	if (host_bits_set(c.addr, maxbits / 8, c.prefix)) {
		clear_host_bits(c.addr, maxbits / 8, c.prefix);
		inet_ntop(c.family, c.addr, net, sizeof(net));
		return failf(err, errlen, "host bits set in \"%.*s\" (the network is %s/%u)", QUOTE_MAX,
		    s, net, c.prefix);
	}
	*out = c;
	return true;
}

bool cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	const unsigned char *a;
	int family = sa->sa_family;
	unsigned full = c->prefix / 8, rest = c->prefix % 8;

	if (family == AF_INET) {
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		a = a6->s6_addr;
		/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d. */
		if (c->family == AF_INET && IN6_IS_ADDR_V4MAPPED(a6)) {
			a += 12;
			family = AF_INET;
		}
	} else {
		return false;
	}
	if (family != c->family || memcmp(a, c->addr, full) != 0)
		return false;
	return rest == 0 || ((a[full] ^ c->addr[full]) & (0xff00u >> rest) & 0xff) == 0;
}

bool cidr_list_match(const struct cidr *list, unsigned n, const struct sockaddr *sa)
{
	for (unsigned i = 0; i < n; i++)
		if (cidr_match(&list[i], sa))
			return true;
	return false;
}

bool cfg_parse_port_mode(const char *s, struct port_mode *out, char *err, size_t errlen)
{
	const char *slash = strchr(s, '/');
	char port[8];
	size_t plen = slash ? (size_t)(slash - s) : strlen(s);
	struct port_mode pm;

	if (plen >= sizeof(port))
		return failf(err, errlen, "bad port \"%.*s\" (use 1 to 65535)", QUOTE_MAX, s);
	memcpy(port, s, plen);
	port[plen] = '\0';
	if (!parse_port(port, 1, &pm.port, err, errlen))
		return false;
	/* 465 is the registered SMTPS port (RFC 8314); everything else upgrades. */
	pm.mode = pm.port == 465 ? TLS_MODE_IMPLICIT : TLS_MODE_STARTTLS;
	if (slash != NULL) {
		enum tls_mode m;
		for (m = TLS_MODE_STARTTLS; m <= TLS_MODE_PLAIN; m++)
			if (strcasecmp(slash + 1, tls_mode_name(m)) == 0)
				break;
		if (m > TLS_MODE_PLAIN)
			return failf(err, errlen, "unknown TLS mode \"%.*s\" (use starttls, implicit or plain)",
			    QUOTE_MAX, slash + 1);
		pm.mode = m;
	}
	*out = pm;
	return true;
}

char *cfg_trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

/* A blank string is an empty list (no items), not one empty item. */
bool cfg_split_list(char *s, bool (*fn)(const char *item, void *arg, char *err, size_t errlen),
    void *arg, char *err, size_t errlen)
{
	char *p = s;

	if (*cfg_trim(s) == '\0')
		return true;
	for (;;) {
		char *comma = strchr(p, ',');
		if (comma != NULL)
			*comma = '\0';
		char *item = cfg_trim(p);
		if (*item == '\0')
			return failf(err, errlen, "empty item in list (a stray comma?)");
		if (!fn(item, arg, err, errlen))
			return false;
		if (comma == NULL)
			return true;
		p = comma + 1;
	}
}

/* A growable string for cfg_expand_env(). */
struct strbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct strbuf *sb, const char *s, size_t n)
{
	if (sb->oom)
		return;
	if (sb->len + n + 1 > sb->cap) {
		size_t cap = (sb->len + n + 1) * 2;
		char *p = realloc(sb->p, cap);
		if (p == NULL) {
			sb->oom = true;
			return;
		}
		sb->p = p;
		sb->cap = cap;
	}
	memcpy(sb->p + sb->len, s, n);
	sb->len += n;
	sb->p[sb->len] = '\0';
}

static bool env_name_ok(const char *s, size_t n)
{
	if (n == 0 || isdigit((unsigned char)*s))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

/* Appends the value of the variable named by s[0..n) to sb. */
static bool expand_var(struct strbuf *sb, const char *s, size_t n, char *err, size_t errlen)
{
	char *name;
	const char *val;

	if (!env_name_ok(s, n))
		return failf(err, errlen, "bad variable name \"${%.*s}\"", (int)(n < QUOTE_MAX ? n : QUOTE_MAX), s);
	name = strndup(s, n);
	if (name == NULL)
		return failf(err, errlen, "out of memory");
	val = getenv(name);
	if (val == NULL) {
		failf(err, errlen, "environment variable ${%s} is not set", name);
		free(name);
		return false;
	}
	free(name);
	sb_add(sb, val, strlen(val));
	return true;
}

/*
 * A '$' not followed by '{' or '$' stays as it is, so a literal password
 * like "pa$word" needs no escaping; only "${" and "$$" are special.
 */
static bool expand_into(struct strbuf *sb, const char *s, char *err, size_t errlen)
{
	while (*s != '\0') {
		const char *dollar = strchr(s, '$'), *close;
		if (dollar == NULL || (dollar[1] != '{' && dollar[1] != '$')) {
			size_t n = dollar ? (size_t)(dollar - s) + 1 : strlen(s);
			sb_add(sb, s, n);
			s += n;
			continue;
		}
		sb_add(sb, s, (size_t)(dollar - s));
		if (dollar[1] == '$') {
			sb_add(sb, "$", 1);
			s = dollar + 2;
			continue;
		}
		close = strchr(dollar + 2, '}');
		if (close == NULL)
			return failf(err, errlen, "unterminated \"${\" (use ${NAME}, or $$ for a literal $)");
		if (!expand_var(sb, dollar + 2, (size_t)(close - dollar - 2), err, errlen))
			return false;
		s = close + 1;
	}
	return true;
}

char *cfg_expand_env(const char *s, char *err, size_t errlen)
{
	struct strbuf sb = { 0 };

	sb_add(&sb, "", 0);
	if (expand_into(&sb, s, err, errlen) && !sb.oom)
		return sb.p;
	if (sb.oom)
		failf(err, errlen, "out of memory");
	free(sb.p);
	return NULL;
}

/* Classic '*' glob with one backtrack point: linear enough for addresses. */
bool cfg_sender_match(const char *pattern, const char *sender)
{
	const char *star = NULL, *resume = NULL;

	while (*sender != '\0') {
		if (*pattern == '*') {
			star = ++pattern;
			resume = sender;
		} else if (tolower((unsigned char)*pattern) == tolower((unsigned char)*sender)) {
			pattern++;
			sender++;
		} else if (star != NULL) {
			pattern = star;
			sender = ++resume;
		} else {
			return false;
		}
	}
	while (*pattern == '*')
		pattern++;
	return *pattern == '\0';
}

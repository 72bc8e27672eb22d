/*
 * Unit tests for cfgval (value parsers) and config (config_load with its
 * FILE:LINE: messages). Config files are written to a mkdtemp directory
 * that is the working directory during the test, so messages read
 * "conf.ini:LINE: ..." as a user would see them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* mkdtemp, open_memstream, setenv */
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <openssl/ssl.h>

#include "cfgval.h"
#include "check.h"
#include "config.h"

static char err[512];

/* ---- cfgval ---- */

static void test_size(void)
{
	uint64_t v = 7;

	CHECK(cfg_parse_size("0", &v, err, sizeof(err)) && v == 0);
	CHECK(cfg_parse_size("1000", &v, err, sizeof(err)) && v == 1000);
	CHECK(cfg_parse_size("512k", &v, err, sizeof(err)) && v == 512 * 1024);
	CHECK(cfg_parse_size("25M", &v, err, sizeof(err)) && v == 25u << 20);
	CHECK(cfg_parse_size("1G", &v, err, sizeof(err)) && v == 1u << 30);
	CHECK(cfg_parse_size("2g", &v, err, sizeof(err)) && v == 2ull << 30);
	CHECK(!cfg_parse_size("25X", &v, err, sizeof(err)));
	CHECK_STR(err, "bad size \"25X\" (use a number with k, M or G)");
	CHECK(!cfg_parse_size("", &v, err, sizeof(err)));
	CHECK(!cfg_parse_size("M", &v, err, sizeof(err)));
	CHECK(!cfg_parse_size("-1", &v, err, sizeof(err)));
	CHECK(!cfg_parse_size("1.5M", &v, err, sizeof(err)));
	CHECK(!cfg_parse_size("25MB", &v, err, sizeof(err)));
	CHECK(!cfg_parse_size(" 25M", &v, err, sizeof(err)));
	CHECK(cfg_parse_size("18446744073709551614", &v, err, sizeof(err)) && v == UINT64_MAX - 1);
	CHECK(!cfg_parse_size("18446744073709551616", &v, err, sizeof(err)));
	CHECK_STR(err, "size \"18446744073709551616\" is too large");
	CHECK(!cfg_parse_size("17179869184G", &v, err, sizeof(err)));
	CHECK(cfg_parse_size("17179869183G", &v, err, sizeof(err)));
}

static void test_duration(void)
{
	double d = -1;

	CHECK(cfg_parse_duration("300ms", &d, err, sizeof(err)) && d > 0.2999 && d < 0.3001);
	CHECK(cfg_parse_duration("5s", &d, err, sizeof(err)) && d == 5);
	CHECK(cfg_parse_duration("5m", &d, err, sizeof(err)) && d == 300);
	CHECK(cfg_parse_duration("1h", &d, err, sizeof(err)) && d == 3600);
	CHECK(cfg_parse_duration("5d", &d, err, sizeof(err)) && d == 5 * 86400);
	CHECK(cfg_parse_duration("10", &d, err, sizeof(err)) && d == 10);
	CHECK(cfg_parse_duration("1.5s", &d, err, sizeof(err)) && d == 1.5);
	CHECK(cfg_parse_duration("0", &d, err, sizeof(err)) && d == 0);
	CHECK(!cfg_parse_duration("5x", &d, err, sizeof(err)));
	CHECK_STR(err, "bad duration \"5x\" (use a number with ms, s, m, h or d)");
	CHECK(!cfg_parse_duration("", &d, err, sizeof(err)));
	CHECK(!cfg_parse_duration("s", &d, err, sizeof(err)));
	CHECK(!cfg_parse_duration(".5s", &d, err, sizeof(err)));
	CHECK(!cfg_parse_duration("5.s", &d, err, sizeof(err)));
	CHECK(!cfg_parse_duration("-1s", &d, err, sizeof(err)));

	/* And back, for people (health answers). */
	char out[32];
	CHECK_STR(cfg_format_duration(out, sizeof(out), 2 * 3600 + 13 * 60 + 9), "2h13m");
	CHECK_STR(cfg_format_duration(out, sizeof(out), 3600), "1h");
	CHECK_STR(cfg_format_duration(out, sizeof(out), 45.4), "45s");
	CHECK_STR(cfg_format_duration(out, sizeof(out), 86400 + 7200), "1d2h");
	CHECK_STR(cfg_format_duration(out, sizeof(out), 0), "0s");
	CHECK_STR(cfg_format_duration(out, sizeof(out), -5), "0s");
	CHECK_STR(cfg_format_utc(out, sizeof(out), 1796469600), "2026-12-05T11:20:00Z");
	CHECK(!cfg_parse_duration("5 s", &d, err, sizeof(err)));
	CHECK(!cfg_parse_duration("5S", &d, err, sizeof(err)));
	CHECK(!cfg_parse_duration("1e3", &d, err, sizeof(err)));
	CHECK(!cfg_parse_duration("99999999999d", &d, err, sizeof(err)));
	CHECK_STR(err, "duration \"99999999999d\" is too long");
}

static void test_bool_uint(void)
{
	bool b = false;
	unsigned long n = 0;

	CHECK(cfg_parse_bool("yes", &b, err, sizeof(err)) && b);
	CHECK(cfg_parse_bool("TRUE", &b, err, sizeof(err)) && b);
	CHECK(cfg_parse_bool("on", &b, err, sizeof(err)) && b);
	CHECK(cfg_parse_bool("1", &b, err, sizeof(err)) && b);
	CHECK(cfg_parse_bool("no", &b, err, sizeof(err)) && !b);
	CHECK(cfg_parse_bool("False", &b, err, sizeof(err)) && !b);
	CHECK(cfg_parse_bool("off", &b, err, sizeof(err)) && !b);
	CHECK(cfg_parse_bool("0", &b, err, sizeof(err)) && !b);
	CHECK(!cfg_parse_bool("maybe", &b, err, sizeof(err)));
	CHECK_STR(err, "bad boolean \"maybe\" (use yes or no)");
	CHECK(!cfg_parse_bool("", &b, err, sizeof(err)));

	CHECK(cfg_parse_uint("5", 1, 10, &n, err, sizeof(err)) && n == 5);
	CHECK(cfg_parse_uint("10", 1, 10, &n, err, sizeof(err)) && n == 10);
	CHECK(!cfg_parse_uint("0", 1, 10, &n, err, sizeof(err)));
	CHECK_STR(err, "0 is out of range (1 to 10)");
	CHECK(!cfg_parse_uint("11", 1, 10, &n, err, sizeof(err)));
	CHECK(!cfg_parse_uint("abc", 1, 10, &n, err, sizeof(err)));
	CHECK_STR(err, "bad number \"abc\"");
	CHECK(!cfg_parse_uint("", 0, 10, &n, err, sizeof(err)));
	CHECK(!cfg_parse_uint("-1", 0, 10, &n, err, sizeof(err)));
	CHECK(!cfg_parse_uint("+1", 0, 10, &n, err, sizeof(err)));
	CHECK(!cfg_parse_uint("5 ", 0, 10, &n, err, sizeof(err)));
	CHECK(!cfg_parse_uint("99999999999999999999999", 0, 10, &n, err, sizeof(err)));
}

static unsigned port_of(const struct sockaddr_any *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

static void test_listen(void)
{
	struct sockaddr_any a;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;

	CHECK(cfg_parse_listen("127.0.0.1:25", &a, err, sizeof(err)));
	CHECK(a.ss.ss_family == AF_INET && a.len == sizeof(*s4) && port_of(&a) == 25);
	CHECK(s4->sin_addr.s_addr == htonl(0x7f000001));
	CHECK(cfg_parse_listen("0.0.0.0:0", &a, err, sizeof(err)) && port_of(&a) == 0);
	CHECK(cfg_parse_listen("[::1]:2525", &a, err, sizeof(err)));
	CHECK(a.ss.ss_family == AF_INET6 && a.len == sizeof(*s6) && port_of(&a) == 2525);
	CHECK(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
	CHECK(cfg_parse_listen("[::]:65535", &a, err, sizeof(err)) && port_of(&a) == 65535);
	CHECK(!cfg_parse_listen("127.0.0.1", &a, err, sizeof(err)));
	CHECK_STR(err, "missing port in \"127.0.0.1\" (use ADDRESS:PORT, e.g. 127.0.0.1:25)");
	CHECK(!cfg_parse_listen("::1:25", &a, err, sizeof(err)));
	CHECK_STR(err, "IPv6 address needs brackets: \"::1:25\" (use [IPv6]:PORT)");
	CHECK(!cfg_parse_listen("[::1]", &a, err, sizeof(err)));
	CHECK(!cfg_parse_listen("[::1]25", &a, err, sizeof(err)));
	CHECK(!cfg_parse_listen("localhost:25", &a, err, sizeof(err)));
	CHECK_STR(err, "bad address \"localhost\" (use an IP address, not a host name)");
	CHECK(!cfg_parse_listen("1.2.3.4:65536", &a, err, sizeof(err)));
	CHECK_STR(err, "bad port \"65536\" (use 0 to 65535)");
	CHECK(!cfg_parse_listen("1.2.3.4:", &a, err, sizeof(err)));
	CHECK(!cfg_parse_listen("1.2.3.4:x", &a, err, sizeof(err)));
	CHECK(!cfg_parse_listen(":25", &a, err, sizeof(err)));
	CHECK(!cfg_parse_listen("[1.2.3.4]:25", &a, err, sizeof(err)));
	CHECK(!cfg_parse_listen("", &a, err, sizeof(err)));
}

static void test_listen_options(void)
{
	struct listen_addr la;

	CHECK(cfg_parse_listen_addr("127.0.0.1:25", &la, err, sizeof(err)) && la.flags == 0 && port_of(&la.sa) == 25);
	CHECK(cfg_parse_listen_addr("[::1]:2525/proxy", &la, err, sizeof(err)) && la.flags == LISTEN_PROXY);
	CHECK(la.sa.ss.ss_family == AF_INET6 && port_of(&la.sa) == 2525);
	CHECK(cfg_parse_listen_addr("0.0.0.0:465/implicit", &la, err, sizeof(err)) && la.flags == LISTEN_IMPLICIT);
	CHECK(port_of(&la.sa) == 465);
	CHECK(!cfg_parse_listen_addr("127.0.0.1:25/", &la, err, sizeof(err)));
	CHECK_STR(err, "unknown listener option \"/\" (known: /proxy, /implicit)");
	CHECK(!cfg_parse_listen_addr("127.0.0.1:25/proxi", &la, err, sizeof(err)));
	CHECK_STR(err, "unknown listener option \"/proxi\" (known: /proxy, /implicit)");
	CHECK(!cfg_parse_listen_addr("127.0.0.1:25/proxy/proxy", &la, err, sizeof(err)));
	CHECK_STR(err, "/proxy given twice");
	CHECK(!cfg_parse_listen_addr("127.0.0.1/proxy", &la, err, sizeof(err)));
	CHECK_STR(err, "missing port in \"127.0.0.1\" (use ADDRESS:PORT, e.g. 127.0.0.1:25)");
	CHECK(!cfg_parse_listen_addr("[1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc]:25/proxy", &la,
	    err, sizeof(err)));
}

static void check_format(const char *in)
{
	struct sockaddr_any a;
	char out[64];

	CHECK(cfg_parse_listen(in, &a, err, sizeof(err)));
	sockaddr_format(out, sizeof(out), (struct sockaddr *)&a.ss);
	CHECK_STR(out, in);
}

static void test_sockaddr_format(void)
{
	struct sockaddr sa = { .sa_family = AF_UNIX };
	struct sockaddr_any a;
	char out[64], small[8];

	check_format("127.0.0.1:25");
	check_format("0.0.0.0:0");
	check_format("[::1]:2525");
	check_format("[2001:db8::1]:65535");
	check_format("[::ffff:10.0.0.1]:1");
	sockaddr_format(out, sizeof(out), &sa);
	CHECK_STR(out, "unix");
	CHECK(cfg_parse_listen("[2001:db8::1]:65535", &a, err, sizeof(err)));
	sockaddr_format(small, sizeof(small), (struct sockaddr *)&a.ss);
	CHECK_STR(small, "[2001:d"); /* truncated, still terminated */
}

static bool match4(const struct cidr *c, const char *ip)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	inet_pton(AF_INET, ip, &sin.sin_addr);
	return cidr_match(c, (struct sockaddr *)&sin);
}

static bool match6(const struct cidr *c, const char *ip)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

	inet_pton(AF_INET6, ip, &sin6.sin6_addr);
	return cidr_match(c, (struct sockaddr *)&sin6);
}

static void test_cidr(void)
{
	struct cidr c;

	CHECK(cfg_parse_cidr("127.0.0.0/8", &c, err, sizeof(err)) && c.family == AF_INET && c.prefix == 8);
	CHECK(match4(&c, "127.1.2.3") && !match4(&c, "128.0.0.1") && !match6(&c, "::1"));
	CHECK(match6(&c, "::ffff:127.0.0.1")); /* IPv4 client on a dual-stack socket */
	CHECK(!match6(&c, "::ffff:10.0.0.1"));
	CHECK(cfg_parse_cidr("::1/128", &c, err, sizeof(err)) && c.family == AF_INET6 && c.prefix == 128);
	CHECK(match6(&c, "::1") && !match6(&c, "::2") && !match4(&c, "127.0.0.1"));
	CHECK(cfg_parse_cidr("10.0.0.1", &c, err, sizeof(err)) && c.prefix == 32);
	CHECK(match4(&c, "10.0.0.1") && !match4(&c, "10.0.0.2"));
	CHECK(cfg_parse_cidr("172.16.0.0/12", &c, err, sizeof(err)));
	CHECK(match4(&c, "172.31.255.255") && match4(&c, "172.16.0.0") && !match4(&c, "172.32.0.0"));
	CHECK(!match4(&c, "172.15.255.255"));
	CHECK(cfg_parse_cidr("0.0.0.0/0", &c, err, sizeof(err)) && match4(&c, "1.2.3.4") && !match6(&c, "2001:db8::1"));
	CHECK(cfg_parse_cidr("::/0", &c, err, sizeof(err)) && match6(&c, "2001:db8::1"));
	CHECK(cfg_parse_cidr("fe80::/10", &c, err, sizeof(err)) && match6(&c, "febf::1") && !match6(&c, "fec0::1"));
	CHECK(!cfg_parse_cidr("10.0.0.1/8", &c, err, sizeof(err)));
	CHECK_STR(err, "host bits set in \"10.0.0.1/8\" (the network is 10.0.0.0/8)");
	CHECK(!cfg_parse_cidr("fe80::1/10", &c, err, sizeof(err)));
	CHECK_STR(err, "host bits set in \"fe80::1/10\" (the network is fe80::/10)");
	CHECK(!cfg_parse_cidr("192.168.1.0/23", &c, err, sizeof(err)));
	CHECK(!cfg_parse_cidr("10.0.0.0/33", &c, err, sizeof(err)));
	CHECK_STR(err, "bad prefix length in \"10.0.0.0/33\" (use 0 to 32)");
	CHECK(!cfg_parse_cidr("::/129", &c, err, sizeof(err)));
	CHECK(!cfg_parse_cidr("10.0.0.0/", &c, err, sizeof(err)));
	CHECK(!cfg_parse_cidr("10.0.0/8", &c, err, sizeof(err)));
	CHECK_STR(err, "bad network \"10.0.0/8\" (use ADDRESS/PREFIX, e.g. 10.0.0.0/8)");
	CHECK(!cfg_parse_cidr("", &c, err, sizeof(err)));
}

static void test_port_mode(void)
{
	struct port_mode pm;

	CHECK_STR(tls_mode_name(TLS_MODE_STARTTLS), "starttls");
	CHECK_STR(tls_mode_name(TLS_MODE_IMPLICIT), "implicit");
	CHECK_STR(tls_mode_name(TLS_MODE_PLAIN), "plain");
	CHECK(cfg_parse_port_mode("587", &pm, err, sizeof(err)) && pm.port == 587 && pm.mode == TLS_MODE_STARTTLS);
	CHECK(cfg_parse_port_mode("465", &pm, err, sizeof(err)) && pm.port == 465 && pm.mode == TLS_MODE_IMPLICIT);
	CHECK(cfg_parse_port_mode("2525", &pm, err, sizeof(err)) && pm.mode == TLS_MODE_STARTTLS);
	CHECK(cfg_parse_port_mode("25", &pm, err, sizeof(err)) && pm.mode == TLS_MODE_STARTTLS);
	CHECK(cfg_parse_port_mode("587/implicit", &pm, err, sizeof(err)) && pm.mode == TLS_MODE_IMPLICIT);
	CHECK(cfg_parse_port_mode("465/starttls", &pm, err, sizeof(err)) && pm.mode == TLS_MODE_STARTTLS);
	CHECK(cfg_parse_port_mode("1025/plain", &pm, err, sizeof(err)) && pm.port == 1025 && pm.mode == TLS_MODE_PLAIN);
	CHECK(cfg_parse_port_mode("1025/PLAIN", &pm, err, sizeof(err)) && pm.mode == TLS_MODE_PLAIN);
	CHECK(!cfg_parse_port_mode("587/ssl", &pm, err, sizeof(err)));
	CHECK_STR(err, "unknown TLS mode \"ssl\" (use starttls, implicit or plain)");
	CHECK(!cfg_parse_port_mode("0", &pm, err, sizeof(err)));
	CHECK_STR(err, "bad port \"0\" (use 1 to 65535)");
	CHECK(!cfg_parse_port_mode("70000", &pm, err, sizeof(err)));
	CHECK(!cfg_parse_port_mode("587/", &pm, err, sizeof(err)));
	CHECK(!cfg_parse_port_mode("/plain", &pm, err, sizeof(err)));
	CHECK(!cfg_parse_port_mode("smtp", &pm, err, sizeof(err)));
	CHECK(!cfg_parse_port_mode("123456789/plain", &pm, err, sizeof(err)));
}

struct collect {
	char got[256];
	unsigned calls, stop_at;
};

static bool collect_item(const char *item, void *arg, char *e, size_t elen)
{
	struct collect *c = arg;

	if (++c->calls == c->stop_at) {
		snprintf(e, elen, "stop at %s", item);
		return false;
	}
	strncat(c->got, "|", sizeof(c->got) - strlen(c->got) - 1);
	strncat(c->got, item, sizeof(c->got) - strlen(c->got) - 1);
	return true;
}

static bool split(const char *s, struct collect *c, unsigned stop_at)
{
	char buf[256];

	memset(c, 0, sizeof(*c));
	c->stop_at = stop_at;
	snprintf(buf, sizeof(buf), "%s", s);
	return cfg_split_list(buf, collect_item, c, err, sizeof(err));
}

static void test_split_list(void)
{
	struct collect c;

	CHECK(split("a", &c, 0) && c.calls == 1);
	CHECK_STR(c.got, "|a");
	CHECK(split(" a , b ,\tc d ", &c, 0) && c.calls == 3);
	CHECK_STR(c.got, "|a|b|c d");
	CHECK(split("", &c, 0) && c.calls == 0);
	CHECK(split("  \t ", &c, 0) && c.calls == 0);
	CHECK(!split("a,,b", &c, 0));
	CHECK_STR(err, "empty item in list (a stray comma?)");
	CHECK(!split("a,", &c, 0));
	CHECK(!split(",a", &c, 0) && c.calls == 0);
	CHECK(!split("a, b, c", &c, 2) && c.calls == 2);
	CHECK_STR(err, "stop at b");
	CHECK_STR(c.got, "|a");
}

static void check_expand(const char *in, const char *want)
{
	char *out = cfg_expand_env(in, err, sizeof(err));

	CHECK_STR(out, want);
	free(out);
}

static void check_expand_fails(const char *in, const char *want_err)
{
	char *out = cfg_expand_env(in, err, sizeof(err));

	CHECK(out == NULL);
	CHECK_STR(err, want_err);
	free(out);
}

static void test_expand_env(void)
{
	setenv("SUBRELAY_T_KEY", "s3cret", 1);
	setenv("SUBRELAY_T_EMPTY", "", 1);
	unsetenv("SUBRELAY_T_UNSET");
	check_expand("", "");
	check_expand("plain", "plain");
	check_expand("${SUBRELAY_T_KEY}", "s3cret");
	check_expand("a${SUBRELAY_T_KEY}b${SUBRELAY_T_KEY}", "as3cretbs3cret");
	check_expand("x${SUBRELAY_T_EMPTY}y", "xy");
	check_expand("$$", "$");
	check_expand("a$$b$${X}", "a$b${X}");
	check_expand("pa$word$", "pa$word$");
	check_expand_fails("${SUBRELAY_T_UNSET}", "environment variable ${SUBRELAY_T_UNSET} is not set");
	check_expand_fails("a${SUBRELAY_T_KEY", "unterminated \"${\" (use ${NAME}, or $$ for a literal $)");
	check_expand_fails("${}", "bad variable name \"${}\"");
	check_expand_fails("${1X}", "bad variable name \"${1X}\"");
	check_expand_fails("${A-B}", "bad variable name \"${A-B}\"");
}

static void test_sender_match(void)
{
	CHECK(cfg_sender_match("*@billing.example.com", "bob@billing.example.com"));
	CHECK(cfg_sender_match("*@billing.example.com", "Bob@Billing.Example.COM"));
	CHECK(!cfg_sender_match("*@billing.example.com", "bob@example.com"));
	CHECK(!cfg_sender_match("*@billing.example.com", "bob@billing.example.com.evil"));
	CHECK(cfg_sender_match("invoices@example.com", "INVOICES@example.com"));
	CHECK(!cfg_sender_match("invoices@example.com", "invoices@example.co"));
	CHECK(!cfg_sender_match("invoices@example.com", "xinvoices@example.com"));
	CHECK(cfg_sender_match("*", ""));
	CHECK(cfg_sender_match("*", "anyone@anywhere"));
	CHECK(!cfg_sender_match("*@*", ""));
	CHECK(cfg_sender_match("*@*.example.com", "a@b.c.example.com"));
	CHECK(!cfg_sender_match("*@*.example.com", "a@example.com"));
	CHECK(cfg_sender_match("a*b*c", "aXXbYYbZZc"));
	CHECK(!cfg_sender_match("a*b*c", "aXXbYYbZZ"));
	CHECK(cfg_sender_match("**a", "a"));
	CHECK(cfg_sender_match("", ""));
	CHECK(!cfg_sender_match("", "a"));
}

/* ---- config_load ---- */

static void write_bytes(const char *name, const char *data, size_t len)
{
	FILE *f = fopen(name, "w");

	CHECK(f != NULL);
	if (f == NULL)
		return;
	CHECK(fwrite(data, 1, len, f) == len);
	fclose(f);
	CHECK(chmod(name, 0600) == 0); /* secret files readable by others are refused */
}

static void write_file(const char *name, const char *text)
{
	write_bytes(name, text, strlen(text));
}

/* Loads `file` as it is; returns what config_load printed (malloc'd). */
static char *load_errors(const char *file)
{
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	struct config *cfg = config_load(file, NULL, 0, f);

	fclose(f);
	CHECK(cfg == NULL);
	config_free(cfg);
	return buf;
}

/* Loads text as conf.ini; *errs gets what config_load printed (malloc'd). */
static struct config *load(const char *text, const char *const *ov, unsigned nov, char **errs)
{
	struct config *cfg;
	size_t len;
	FILE *f;

	write_file("conf.ini", text);
	f = open_memstream(errs, &len);
	cfg = config_load("conf.ini", (char *const *)ov, nov, f);
	fclose(f);
	return cfg;
}

#define EXPECT_ERRORS(text, ov, nov, want) do { \
	char *e_; \
	struct config *c_ = load((text), (ov), (nov), &e_); \
	CHECK(c_ == NULL); \
	CHECK_STR(e_, (want)); \
	config_free(c_); \
	free(e_); \
} while (0)

#define EXPECT_OK(cfg, text, ov, nov) do { \
	char *e_; \
	(cfg) = load((text), (ov), (nov), &e_); \
	CHECK((cfg) != NULL); \
	CHECK_STR(e_, ""); \
	free(e_); \
} while (0)

static void test_defaults(void)
{
	struct config *cfg;
	char host[256] = "";

	EXPECT_OK(cfg, "", NULL, 0);
	if (cfg == NULL)
		return;
	gethostname(host, sizeof(host) - 1);
	CHECK_STR(cfg->file, "conf.ini");
	CHECK(cfg->relay.nlisten == 1 && port_of(&cfg->relay.listen[0].sa) == 25);
	CHECK(((struct sockaddr_in *)&cfg->relay.listen[0].sa.ss)->sin_addr.s_addr == htonl(0x7f000001));
	CHECK_STR(cfg->relay.hostname, host[0] ? host : "localhost");
	CHECK(cfg->relay.nallow == 2 && cfg->relay.allow[0].family == AF_INET && cfg->relay.allow[0].prefix == 8);
	CHECK(cfg->relay.allow[1].family == AF_INET6 && cfg->relay.allow[1].prefix == 128);
	CHECK(cfg->relay.max_clients == 1024);
	CHECK(cfg->relay.workers == 1);
	CHECK(cfg->relay.drain_timeout == 10);
	CHECK(cfg->relay.max_message_size == 25u << 20);
	CHECK(cfg->relay.max_recipients == 100);
	CHECK(cfg->relay.timeout == 300);
	CHECK(cfg->relay.delivery == DELIVERY_QUEUE);
	CHECK_STR(cfg->relay.spool, DEFAULT_SPOOL);
	CHECK(cfg->relay.providers == NULL && cfg->relay.nproviders == 0);
	CHECK(cfg->relay.user == NULL);
	CHECK_STR(cfg->relay.control, DEFAULT_CONTROL);
	CHECK(!cfg->relay.metrics_on);
	CHECK(!cfg->relay.log_syslog);
	CHECK(cfg->relay.log_level == LOG_LVL_INFO);
	CHECK(cfg->nproviders == 0 && cfg->nroutes == 0);
	CHECK(cfg->queue.retry_initial == 60 && cfg->queue.retry_max == 3600);
	CHECK(cfg->queue.max_age == 5 * 86400 && cfg->queue.bounce == BOUNCE_NONE);
	config_free(cfg);
	config_free(NULL);
}

static const char full_ini[] =
	"; a complete configuration\n"
	"[relay]\n"
	"listen = 127.0.0.1:0,\n"
	"    [::1]:2526   ; continued list\n"
	"\n"
	"    0.0.0.0:2527\n"
	"hostname = relay1.example.com\n"
	"allow = 10.0.0.0/8\n"
	"  ::1\n"
	"max_clients = 50\n"
	"workers = auto\n"
	"drain_timeout = 0\n"
	"max_message_size = 10M\n"
	"max_recipients = 5\n"
	"timeout = 90s\n"
	"delivery = passthrough\n"
	"spool = ${SUBRELAY_T_SPOOL}/spool\n"
	"providers = primary, backup\n"
	"user = root\n"
	"control =\n"
	"metrics = [::1]:9325\n"
	"log = syslog\n"
	"log_level = debug\n"
	"\n"
	"[provider primary]\n"
	"host = smtp.sendgrid.net\n"
	"ports = 587, 2525, 465, 1025/plain\n"
	"username = apikey\n"
	"password = ${SUBRELAY_T_KEY}\n"
	"auth = login\n"
	"tls_verify = no\n"
	"tls_ca_file = ca.pem\n"
	"tls_min_version = 1.3\n"
	"allow_plaintext = yes\n"
	"connect_timeout = 2s\n"
	"greeting_timeout = 3s\n"
	"attempt_delay = 250ms\n"
	"max_connections = 2\n"
	"\n"
	"[provider backup]\n"
	"host = smtp.example.net\n"
	"username = u\n"
	"password_file = secret.txt\n"
	"\n"
	"[route billing]\n"
	"from = *@billing.example.com, invoices@example.com\n"
	"providers = backup\n"
	"[route all]\n"
	"from = *\n"
	"providers = primary,backup\n"
	"\n"
	"[queue]\n"
	"retry_initial = 30s\n"
	"retry_max = 2h\n"
	"max_age = 2d\n"
	"bounce = sender\n";

static void check_full_relay(const struct relay_cfg *r)
{
	CHECK(r->nlisten == 3 && port_of(&r->listen[0].sa) == 0 && port_of(&r->listen[1].sa) == 2526);
	CHECK(r->listen[1].sa.ss.ss_family == AF_INET6 && port_of(&r->listen[2].sa) == 2527);
	CHECK_STR(r->hostname, "relay1.example.com");
	CHECK(r->nallow == 2 && r->allow[1].family == AF_INET6 && r->allow[1].prefix == 128);
	CHECK(r->max_clients == 50 && r->workers == 0 && r->drain_timeout == 0);
	CHECK(r->max_message_size == 10u << 20 && r->max_recipients == 5 && r->timeout == 90);
	CHECK(r->delivery == DELIVERY_PASSTHROUGH);
	CHECK_STR(r->spool, "/tmp/x/spool");
	CHECK_STR(r->user, "root");
	CHECK(r->control == NULL);
	CHECK(r->metrics_on && r->metrics.ss.ss_family == AF_INET6 && port_of(&r->metrics) == 9325);
	CHECK(r->log_syslog && r->log_level == LOG_LVL_DEBUG);
}

static void test_full(void)
{
	struct config *cfg;
	struct provider_cfg *const *list;
	const struct provider_cfg *p, *b;
	const char *route;
	unsigned n;

	setenv("SUBRELAY_T_SPOOL", "/tmp/x", 1);
	write_file("ca.pem", "not really a certificate\n");
	write_file("secret.txt", "pass word\r\n");
	EXPECT_OK(cfg, full_ini, NULL, 0);
	if (cfg == NULL)
		return;
	check_full_relay(&cfg->relay);
	CHECK(cfg->nproviders == 2 && cfg->nroutes == 2);
	p = config_provider(cfg, "primary");
	b = config_provider(cfg, "backup");
	CHECK(p == &cfg->providers[0] && b == &cfg->providers[1] && config_provider(cfg, "x") == NULL);
	CHECK(cfg->relay.nproviders == 2 && cfg->relay.providers[0] == p && cfg->relay.providers[1] == b);
	CHECK_STR(p->name, "primary");
	CHECK(p->line == 25 && b->line == 40);
	CHECK_STR(p->host, "smtp.sendgrid.net");
	CHECK(p->nports == 4 && p->ports[0].port == 587 && p->ports[0].mode == TLS_MODE_STARTTLS);
	CHECK(p->ports[1].port == 2525 && p->ports[2].mode == TLS_MODE_IMPLICIT && p->ports[3].mode == TLS_MODE_PLAIN);
	CHECK_STR(p->username, "apikey");
	CHECK_STR(p->password, "s3cret");
	CHECK(p->auth == AUTH_CHOICE_LOGIN && !p->tls_verify && p->allow_plaintext);
	CHECK_STR(p->tls_ca_file, "ca.pem");
	CHECK(p->tls_min_version == TLS1_3_VERSION);
	CHECK(p->connect_timeout == 2 && p->greeting_timeout == 3 && p->attempt_delay == 0.25);
	CHECK(p->max_connections == 2);
	/* provider defaults */
	CHECK(b->nports == 1 && b->ports[0].port == 587 && b->ports[0].mode == TLS_MODE_STARTTLS);
	CHECK_STR(b->password, "pass word");
	CHECK(b->auth == AUTH_CHOICE_AUTO && b->tls_verify && !b->allow_plaintext && b->tls_ca_file == NULL);
	CHECK(b->tls_min_version == TLS1_2_VERSION);
	CHECK(b->connect_timeout == 5 && b->greeting_timeout == 10 && b->attempt_delay > 0.2999 &&
	    b->attempt_delay < 0.3001 && b->max_connections == 8);
	CHECK_STR(cfg->routes[0].name, "billing");
	CHECK(cfg->routes[0].nfrom == 2 && cfg->routes[0].nproviders == 1 && cfg->routes[0].providers[0] == b);
	CHECK_STR(cfg->routes[0].from[1], "invoices@example.com");
	CHECK(cfg->queue.retry_initial == 30 && cfg->queue.retry_max == 7200 && cfg->queue.max_age == 2 * 86400);
	CHECK(cfg->queue.bounce == BOUNCE_SENDER);

	list = config_route_for(cfg, "Invoices@Example.com", &n, &route);
	CHECK(n == 1 && list[0] == b);
	CHECK_STR(route, "billing");
	list = config_route_for(cfg, "", &n, &route);
	CHECK(n == 2 && list[0] == p && list[1] == b);
	CHECK_STR(route, "all");
	list = config_route_for(cfg, NULL, &n, &route);
	CHECK(n == 2 && list[0] == p);
	CHECK_STR(route, "all");
	config_free(cfg);

	/* Without the catch-all route, other senders use relay.providers. */
	{
		const char *ov[] = { "route all.from = nobody@example.com" };
		EXPECT_OK(cfg, full_ini, ov, 1);
		if (cfg == NULL)
			return;
		list = config_route_for(cfg, "someone@example.org", &n, &route);
		CHECK(n == 2 && list == cfg->relay.providers);
		CHECK_STR(route, "default");
		config_free(cfg);
	}
}

static void test_continuations(void)
{
	struct config *cfg;

	/* CRLF line ends, a byte order mark, '#' comments, a blank line inside a list. */
	EXPECT_OK(cfg, "\xEF\xBB\xBF[relay]\r\n# comment\r\nallow = 10.0.0.0/8 ,\r\n\r\n\t192.168.0.0/16\r\n"
	    "  , 172.16.0.0/12\r\nlisten=127.0.0.1:1\r\n", NULL, 0);
	if (cfg != NULL) {
		CHECK(cfg->relay.nallow == 3 && cfg->relay.allow[2].prefix == 12);
		CHECK(cfg->relay.nlisten == 1 && port_of(&cfg->relay.listen[0].sa) == 1);
	}
	config_free(cfg);
	/* A list may start on the line after its key. */
	EXPECT_OK(cfg, "[relay]\nallow =\n  10.0.0.0/8\n  192.168.0.0/16\n", NULL, 0);
	CHECK(cfg != NULL && cfg->relay.nallow == 2);
	config_free(cfg);
	EXPECT_OK(cfg, "[relay]\nlisten = 127.0.0.1:25, [::1]:2525/proxy\nproxy_from = 10.0.0.0/8,\n  ::1\n", NULL, 0);
	CHECK(cfg != NULL && cfg->relay.nlisten == 2 && cfg->relay.listen[0].flags == 0);
	CHECK(cfg != NULL && cfg->relay.listen[1].flags == LISTEN_PROXY && cfg->relay.nproxy_from == 2);
	config_free(cfg);
	EXPECT_ERRORS("[relay]\nhostname = a\n  b\n", NULL, 0,
	    "conf.ini:3: hostname: only lists (listen, allow, ports, from, providers) continue on indented lines\n");
	EXPECT_ERRORS("[relay]\nallow = 10.0.0.0/8\n  10.0.0.0/8\n", NULL, 0,
	    "conf.ini:2: allow: \"10.0.0.0/8\" is listed twice\n");
}

static void test_long_lines(void)
{
	static const char nul_ini[] = "[relay]\nhost\0name = x\nnokey = 1\n";
	char ini[1024], line[300], *e;
	struct config *cfg;

	/* 199 bytes fit inih's 200-byte buffer; 200 do not. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "max_clients = 7 ;", 17);
	line[199] = '\0';
	snprintf(ini, sizeof(ini), "[relay]\n%s\n", line);
	EXPECT_OK(cfg, ini, NULL, 0);
	CHECK(cfg != NULL && cfg->relay.max_clients == 7);
	config_free(cfg);
	line[199] = 'x';
	line[200] = '\0';
	/* The too-long key line is dropped, and so are its continuations. */
	snprintf(ini, sizeof(ini), "[relay]\nallow = 10.0.0.0/8\n%s\n  999\nmax_clients = 0\n", line);
	EXPECT_ERRORS(ini, NULL, 0,
	    "conf.ini:3: line too long (max 199 bytes; continue long lists on indented lines)\n"
	    "conf.ini:5: max_clients: 0 is out of range (1 to 1000000)\n");
	/* The keys of a section whose header was too long are not reported one by one. */
	memcpy(line, "[provider ", 10);
	snprintf(ini, sizeof(ini), "%s]\nhost = h\n[relay]\nnokey = 1\n", line);
	EXPECT_ERRORS(ini, NULL, 0,
	    "conf.ini:1: line too long (max 199 bytes; continue long lists on indented lines)\n"
	    "conf.ini:4: unknown key \"nokey\" in [relay]\n");
	write_bytes("nul.ini", nul_ini, sizeof(nul_ini) - 1);
	e = load_errors("nul.ini");
	CHECK_STR(e, "nul.ini:2: NUL byte in line\nnul.ini:3: unknown key \"nokey\" in [relay]\n");
	free(e);
	unlink("nul.ini");
}

static void test_value_errors(void)
{
	EXPECT_ERRORS(
	    "[relay]\n"
	    "max_message_size = 25X\n"
	    "listen = 127.0.0.1\n"
	    "allow = 10.0.0.1/8\n"
	    "max_clients = 0\n"
	    "workers = many\n"
	    "timeout = 0\n"
	    "delivery = store\n"
	    "log_level = verbose\n"
	    "log = file\n"
	    "metrics = localhost:9325\n"
	    "spool =\n"
	    "listen2 = x\n"
	    "hostname = bad host\n"
	    "max_recipients = 100001\n"
	    "providers = nope\n"
	    "control = /" "0123456789012345678901234567890123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789\n",
	    NULL, 0,
	    "conf.ini:2: max_message_size: bad size \"25X\" (use a number with k, M or G)\n"
	    "conf.ini:3: listen: missing port in \"127.0.0.1\" (use ADDRESS:PORT, e.g. 127.0.0.1:25)\n"
	    "conf.ini:4: allow: host bits set in \"10.0.0.1/8\" (the network is 10.0.0.0/8)\n"
	    "conf.ini:5: max_clients: 0 is out of range (1 to 1000000)\n"
	    "conf.ini:6: workers: bad value \"many\" (use a number or auto)\n"
	    "conf.ini:7: timeout: must be more than 0\n"
	    "conf.ini:8: delivery: bad value \"store\" (use queue, passthrough or hybrid)\n"
	    "conf.ini:9: log_level: bad value \"verbose\" (use error, warn, info or debug)\n"
	    "conf.ini:10: log: bad value \"file\" (use stderr or syslog)\n"
	    "conf.ini:11: metrics: bad address \"localhost\" (use an IP address, not a host name)\n"
	    "conf.ini:12: spool: empty path\n"
	    "conf.ini:13: unknown key \"listen2\" in [relay]\n"
	    "conf.ini:14: hostname: bad host name \"bad host\" (use a domain like mail.example.com)\n"
	    "conf.ini:15: max_recipients: 100001 is out of range (1 to 100000)\n"
	    "conf.ini:16: providers: unknown provider \"nope\" (no [provider nope] section)\n"
	    "conf.ini:17: control: path too long for a Unix socket (max 107 bytes)\n");
	EXPECT_ERRORS(
	    "[provider p]\n"
	    "host = h\n"
	    "ports = 587, 587/implicit\n"
	    "auth = cram-md5\n"
	    "tls_verify = sometimes\n"
	    "tls_min_version = 1.4\n"
	    "connect_timeout = 5parsecs\n"
	    "max_connections = 0\n"
	    "tls_ca_file = /nonexistent/ca.pem\n"
	    "[queue]\n"
	    "bounce = postmaster\n"
	    "max_age = 0\n"
	    "retry_max = 30s\n",
	    NULL, 0,
	    "conf.ini:3: ports: \"587/implicit\" is listed twice\n"
	    "conf.ini:4: auth: bad value \"cram-md5\" (use auto, plain, login, none or xoauth2)\n"
	    "conf.ini:5: tls_verify: bad boolean \"sometimes\" (use yes or no)\n"
	    "conf.ini:6: tls_min_version: bad value \"1.4\" (use 1.0, 1.1, 1.2 or 1.3)\n"
	    "conf.ini:7: connect_timeout: bad duration \"5parsecs\" (use a number with ms, s, m, h or d)\n"
	    "conf.ini:8: max_connections: 0 is out of range (1 to 1000)\n"
	    "conf.ini:9: tls_ca_file: cannot read \"/nonexistent/ca.pem\": No such file or directory\n"
	    "conf.ini:11: bounce: bad value \"postmaster\" (use none, sender or an address, user@example.com)\n"
	    "conf.ini:12: max_age: must be more than 0\n"
	    "conf.ini:13: retry_max: retry_max (30s) is shorter than retry_initial (60s)\n");
}

static void test_structure_errors(void)
{
	EXPECT_ERRORS(
	    "listen = 127.0.0.1:25\n"
	    "[relay]\n"
	    "max_clients = 5\n"
	    "max_clients = 6\n"
	    "this line has no equals sign\n"
	    "[relay]\n"
	    "ignored = yes\n"
	    "[mystery]\n"
	    "also_ignored = 1\n"
	    "[provider]\n"
	    "[queue extra]\n"
	    "[provider bad name]\n"
	    "[route default]\n"
	    "[provider a\n"
	    "[provider ok]\n"
	    "host = h\n"
	    "[provider ok]\n",
	    NULL, 0,
	    "conf.ini:1: listen: key outside any section (start with [relay], [provider NAME], ...)\n"
	    "conf.ini:4: max_clients: duplicate key (first on line 3)\n"
	    "conf.ini:5: syntax error (expected KEY = VALUE)\n"
	    "conf.ini:6: duplicate section [relay] (first on line 2)\n"
	    "conf.ini:8: unknown section [mystery] (use relay, provider NAME, route NAME or queue)\n"
	    "conf.ini:10: [provider] needs a name: [provider NAME]\n"
	    "conf.ini:11: [queue extra]: [queue] takes no name\n"
	    "conf.ini:12: [provider bad name]: a name is up to 64 letters, digits, '.', '-' or '_'\n"
	    "conf.ini:13: [route default]: the name \"default\" means relay.providers\n"
	    "conf.ini:14: syntax error (missing \"]\")\n"
	    "conf.ini:17: duplicate section [provider ok] (first on line 15)\n");
}

static void test_cross_checks(void)
{
	write_file("secret.txt", "pw\n");
	write_file("empty.txt", "\n");
	write_file("two.txt", "a\nb\n");
	EXPECT_ERRORS(
	    "[provider a]\n"
	    "ports = 587, 1025/plain\n"
	    "username = u\n"
	    "[provider b]\n"
	    "host = b\n"
	    "password = p\n"
	    "password_file = secret.txt\n"
	    "username = u\n"
	    "[provider c]\n"
	    "host = c\n"
	    "password = ${SUBRELAY_T_UNSET}\n"
	    "[provider d]\n"
	    "host = d\n"
	    "auth = plain\n"
	    "[provider e]\n"
	    "host = e\n"
	    "username = u\n"
	    "password_file = missing.txt\n"
	    "[provider f]\n"
	    "host = f\n"
	    "username = u\n"
	    "password_file = empty.txt\n"
	    "[provider g]\n"
	    "host = g\n"
	    "username = u\n"
	    "password_file = two.txt\n"
	    "[route r]\n",
	    NULL, 0,
	    "conf.ini:1: [provider a]: host is required (or a preset)\n"
	    "conf.ini:2: ports: 1025/plain sends mail in clear text; set allow_plaintext = yes to permit it\n"
	    "conf.ini:3: username: no password or password_file for it\n"
	    "conf.ini:7: password_file: password is set too (use one of them)\n"
	    "conf.ini:11: password: environment variable ${SUBRELAY_T_UNSET} is not set\n"
	    "conf.ini:11: password: no username for it\n"
	    "conf.ini:14: auth: plain needs username and password\n"
	    "conf.ini:18: password_file: cannot read \"missing.txt\": No such file or directory\n"
	    "conf.ini:22: password_file: \"empty.txt\" is empty\n"
	    "conf.ini:26: password_file: \"two.txt\" must hold the password alone on one line\n"
	    "conf.ini:27: [route r]: from is required\n"
	    "conf.ini:27: [route r]: providers is required\n");
	/* A /proxy listener trusts only proxy_from, which is empty by default. */
	EXPECT_ERRORS("[relay]\nlisten = 127.0.0.1:25,\n  127.0.0.1:2525/proxy\n", NULL, 0,
	    "conf.ini:2: listen: 127.0.0.1:2525/proxy needs proxy_from (the networks of the proxies or load "
	    "balancers allowed to send the PROXY header)\n");
	EXPECT_ERRORS("[relay]\nproxy_from = 10.0.0.0/33\n", NULL, 0,
	    "conf.ini:2: proxy_from: bad prefix length in \"10.0.0.0/33\" (use 0 to 32)\n");
	EXPECT_ERRORS("[relay]\nlisten = 127.0.0.1:25/haproxy\n", NULL, 0,
	    "conf.ini:2: listen: unknown listener option \"/haproxy\" (known: /proxy, /implicit)\n");
	EXPECT_ERRORS("[route r]\nfrom = billing.example.com, *@x\nproviders =\n", NULL, 0,
	    "conf.ini:2: from: sender pattern \"billing.example.com\" has no @ (for a domain use "
	    "*@billing.example.com)\n"
	    "conf.ini:3: providers: at least one provider is required\n");
}

static void test_plaintext_later(void)
{
	struct config *cfg;

	/* allow_plaintext after ports, and auth = none without credentials. */
	EXPECT_OK(cfg, "[provider lab]\nhost = 10.0.0.5\nports = 1025/plain\nauth = none\nallow_plaintext = yes\n",
	    NULL, 0);
	CHECK(cfg != NULL && cfg->providers[0].ports[0].mode == TLS_MODE_PLAIN);
	CHECK(cfg != NULL && cfg->providers[0].auth == AUTH_CHOICE_NONE);
	config_free(cfg);
	EXPECT_OK(cfg, "[provider v6]\nhost = 2001:db8::25\n", NULL, 0);
	config_free(cfg);
	EXPECT_ERRORS("[provider a]\nhost = smtp.example.com:587\n[provider b]\nhost = smtp/x\n", NULL, 0,
	    "conf.ini:2: host: bad host \"smtp.example.com:587\" (the port goes in ports)\n"
	    "conf.ini:4: host: bad host \"smtp/x\" (use a host name or an IP address)\n");
}

static void test_overrides(void)
{
	struct config *cfg;
	const char *ini = "[relay]\nlisten = 127.0.0.1:25\nmax_clients = 5\n[provider p]\nports = 1025/plain\n";
	const char *fix[] = {
		"relay.listen=127.0.0.1:2600, [::1]:0",
		" relay . max_clients = 7 ",
		"provider p.host=smtp.example.com",
		"provider p.allow_plaintext=yes",
		"provider smtp.example.org.host = h2",   /* the key is after the last dot */
		"relay.providers=p,smtp.example.org",
		"relay.hostname=a=b.example",            /* the value is after the first '=' */
	};
	const char *bad[] = {
		"relay.listen",
		"relaylisten=1",
		"relay.nosuchkey=1",
		"nosuchsection.key=1",
		"relay.max_clients=lots",
		"provider q.ports=25",
		"relay.timeout=${SUBRELAY_T_UNSET}",
	};

	EXPECT_ERRORS(ini, NULL, 0, "conf.ini:4: [provider p]: host is required (or a preset)\n"
	    "conf.ini:5: ports: 1025/plain sends mail in clear text; set allow_plaintext = yes to permit it\n");
	EXPECT_OK(cfg, ini, fix, 6);
	if (cfg != NULL) {
		CHECK(cfg->relay.nlisten == 2 && port_of(&cfg->relay.listen[0].sa) == 2600);
		CHECK(cfg->relay.max_clients == 7);
		CHECK(cfg->nproviders == 2 && cfg->relay.nproviders == 2);
		CHECK_STR(cfg->providers[1].name, "smtp.example.org");
		CHECK_STR(cfg->providers[1].host, "h2");
		CHECK(cfg->providers[1].line == 0);
	}
	config_free(cfg);
	EXPECT_ERRORS(ini, fix, 7, "-o:7: hostname: bad host name \"a=b.example\" (use a domain like mail.example.com)\n");
	EXPECT_ERRORS("[relay]\nmax_recipients = 0\nmax_clients = 0\n", bad, 7,
	    "conf.ini:2: max_recipients: 0 is out of range (1 to 100000)\n"
	    "-o:1: expected SECTION.KEY=VALUE, not \"relay.listen\"\n"
	    "-o:2: expected SECTION.KEY=VALUE, not \"relaylisten=...\"\n"
	    "-o:3: unknown key \"nosuchkey\" in [relay]\n"
	    "-o:4: unknown section [nosuchsection] (use relay, provider NAME, route NAME or queue)\n"
	    "-o:5: max_clients: bad number \"lots\"\n"
	    "-o:6: [provider q]: host is required (or a preset)\n"
	    "-o:7: timeout: environment variable ${SUBRELAY_T_UNSET} is not set\n");
}

static void test_missing_file(void)
{
	char *e = load_errors("no-such.ini");

	CHECK_STR(e, "no-such.ini: cannot open: No such file or directory\n");
	free(e);
	CHECK(config_load("no-such.ini", NULL, 0, NULL) == NULL);
	CHECK(mkdir("dir.ini", 0700) == 0);
	e = load_errors("dir.ini");
	CHECK_STR(e, "dir.ini: read error: Is a directory\n");
	free(e);
	rmdir("dir.ini");
}

int main(void)
{
	char dir[] = "/tmp/test_cfgval.XXXXXX";
	char cwd[4096];

	test_size();
	test_duration();
	test_bool_uint();
	test_listen();
	test_listen_options();
	test_sockaddr_format();
	test_cidr();
	test_port_mode();
	test_split_list();
	test_expand_env();
	test_sender_match();

	if (getcwd(cwd, sizeof(cwd)) == NULL || mkdtemp(dir) == NULL || chdir(dir) != 0) {
		perror("test_cfgval: temp directory");
		return 99;
	}
	test_defaults();
	test_full();
	test_continuations();
	test_long_lines();
	test_value_errors();
	test_structure_errors();
	test_cross_checks();
	test_plaintext_later();
	test_overrides();
	test_missing_file();
	for (const char *const *f = (const char *const[]){ "conf.ini", "ca.pem", "secret.txt", "empty.txt",
	    "two.txt", NULL }; *f != NULL; f++)
		unlink(*f);
	if (chdir(cwd) != 0 || rmdir(dir) != 0)
		perror("test_cfgval: cleanup");
	return check_summary("test_cfgval");
}

/*
 * test_proxy_proto: the PROXY protocol v1/v2 parser (src/proxy_proto.c).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "check.h"
#include "proxy_proto.h"

static struct proxy_header h;

/* The client address of h as "IP port". */
static const char *client_text(void)
{
	static char out[INET6_ADDRSTRLEN + 8];
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (h.client.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&h.client;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		port = ntohs(sin->sin_port);
	} else if (h.client.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&h.client;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		port = ntohs(sin6->sin6_port);
	}
	snprintf(out, sizeof(out), "%s %u", ip, port);
	return out;
}

static enum proxy_status parse(const void *buf, size_t len)
{
	return proxy_parse(buf, len, &h);
}

/* Every proper prefix of a whole header asks for more; the whole parses. */
static enum proxy_status parse_in_pieces(const void *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (parse(buf, i) != PROXY_MORE) {
			fprintf(stderr, "prefix of %zu bytes: not PROXY_MORE\n", i);
			check_failed++;
			return PROXY_BAD;
		}
	return parse(buf, len);
}

static void expect_bad(const char *text, const char *why)
{
	CHECK(parse(text, strlen(text)) == PROXY_BAD);
	CHECK_STR(h.error, why);
}

static void test_v1(void)
{
	const char *line = "PROXY TCP4 10.1.2.3 192.0.2.9 40000 25\r\n";
	const char *v6 = "PROXY TCP6 2001:db8::7 2001:db8::1 65535 2525\r\nEHLO x\r\n";

	CHECK(parse_in_pieces(line, strlen(line)) == PROXY_DONE);
	CHECK(h.version == 1 && h.has_client && h.len == strlen(line) && h.client_len == sizeof(struct sockaddr_in));
	CHECK_STR(client_text(), "10.1.2.3 40000");
	/* What follows the header is not part of it. */
	CHECK(parse(v6, strlen(v6)) == PROXY_DONE);
	CHECK(h.len == strlen(v6) - strlen("EHLO x\r\n") && h.client_len == sizeof(struct sockaddr_in6));
	CHECK_STR(client_text(), "2001:db8::7 65535");
	CHECK(parse("PROXY TCP4 1.2.3.4 5.6.7.8 0 0\r\n", 32) == PROXY_DONE);
	CHECK_STR(client_text(), "1.2.3.4 0");
}

static void test_v1_unknown(void)
{
	CHECK(parse("PROXY UNKNOWN\r\n", 15) == PROXY_DONE && !h.has_client && h.len == 15);
	CHECK(parse("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", 35) == PROXY_DONE && !h.has_client && h.len == 35);
	expect_bad("PROXY UNKNOWNX\r\n", "PROXY v1: protocol is not TCP4, TCP6 or UNKNOWN");
}

static void test_v1_bad(void)
{
	expect_bad("PROXY TCP4 10.1.2.3 192.0.2.9 40000\r\n", "PROXY v1: too few fields");
	expect_bad("PROXY TCP4 10.1.2.3 192.0.2.9 40000 25 x\r\n", "PROXY v1: too many fields");
	expect_bad("PROXY TCP4 10.1.2.3  192.0.2.9 40000 25\r\n", "PROXY v1: too many fields");
	expect_bad("PROXY TCP5 10.1.2.3 192.0.2.9 40000 25\r\n", "PROXY v1: protocol is not TCP4, TCP6 or UNKNOWN");
	expect_bad("PROXY TCP4 ::1 ::1 40000 25\r\n", "PROXY v1: bad address");
	expect_bad("PROXY TCP6 10.1.2.3 192.0.2.9 40000 25\r\n", "PROXY v1: bad address");
	expect_bad("PROXY TCP4 10.1.2.300 192.0.2.9 40000 25\r\n", "PROXY v1: bad address");
	expect_bad("PROXY TCP4 10.1.2.3 192.0.2.9 65536 25\r\n", "PROXY v1: bad port");
	expect_bad("PROXY TCP4 10.1.2.3 192.0.2.9 040 25\r\n", "PROXY v1: bad port");
	expect_bad("PROXY TCP4 10.1.2.3 192.0.2.9 -1 25\r\n", "PROXY v1: bad port");
	expect_bad("PROXY TCP4 10.1.2.3 192.0.2.9 40000 \r\n", "PROXY v1: bad port");
	expect_bad("PROXY TCP4 10.1.2.3 192.0.2.9 40000 25\n", "PROXY v1: not a line of text");
	expect_bad("PROXY TCP4 10.1.2.3\rX", "PROXY v1: CR without LF");
	expect_bad("PROXY TCP4 10.1.2.3\t", "PROXY v1: not a line of text");
	expect_bad("PROXY TCP4 \xc3\xa9", "PROXY v1: not a line of text");
}

/* The specification's limit is 107 bytes with the CRLF. */
static void test_v1_max(void)
{
	char line[200];

	/* "PROXY UNKNOWN " + padding + CRLF = exactly 107 bytes. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + 105, "\r\n", 2);
	CHECK(parse_in_pieces(line, 107) == PROXY_DONE && h.len == 107);
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + 106, "\r\n", 2);
	CHECK(parse(line, 106) == PROXY_BAD);
	CHECK_STR(h.error, "PROXY v1: no CRLF within 107 bytes");
	CHECK(parse(line, 108) == PROXY_BAD);
	/* No end in sight: refused as soon as the limit is reached, not later. */
	CHECK(parse(line, 105) == PROXY_MORE);
	CHECK(parse(line, sizeof(line)) == PROXY_BAD);
}

static const unsigned char sig[12] = { '\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n' };

/* A v2 header: version/command byte, family/transport byte, addrs bytes of addresses + TLVs. */
static size_t v2(unsigned char *out, unsigned char ver_cmd, unsigned char fam, const void *addrs, size_t n)
{
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (unsigned char)(n >> 8);
	out[15] = (unsigned char)n;
	memcpy(out + 16, addrs, n);
	return 16 + n;
}

static void test_v2(void)
{
	unsigned char buf[PROXY_V2_MAX + 64];
	/* 10.1.2.3:40000 -> 192.0.2.9:25, then a TLV (PP2_TYPE_AUTHORITY "mx") that is skipped. */
	const unsigned char in4[] = { 10, 1, 2, 3, 192, 0, 2, 9, 0x9c, 0x40, 0, 25, 0x02, 0, 2, 'm', 'x' };
	unsigned char in6[36] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 7, [16] = 0x20, 0x01, 0x0d, 0xb8, [31] = 1,
		[32] = 0xff, 0xff, 0, 25 };
	size_t n = v2(buf, 0x21, 0x11, in4, sizeof(in4));

	CHECK(parse_in_pieces(buf, n) == PROXY_DONE);
	CHECK(h.version == 2 && h.has_client && h.len == n && h.len == 33);
	CHECK_STR(client_text(), "10.1.2.3 40000");
	memcpy(buf + n, "EHLO x\r\n", 8);
	CHECK(parse(buf, n + 8) == PROXY_DONE && h.len == n);
	n = v2(buf, 0x21, 0x21, in6, sizeof(in6));
	CHECK(parse_in_pieces(buf, n) == PROXY_DONE && h.has_client && h.client_len == sizeof(struct sockaddr_in6));
	CHECK_STR(client_text(), "2001:db8::7 65535");
}

static void test_v2_local_unspec(void)
{
	unsigned char buf[128];
	const unsigned char junk[4] = { 1, 2, 3, 4 };
	unsigned char unix_addrs[216] = { '/', 't', 'm', 'p' };
	size_t n;

	/* LOCAL: the proxy's own connection (health check); addresses ignored. */
	n = v2(buf, 0x20, 0x00, junk, 0);
	CHECK(parse_in_pieces(buf, n) == PROXY_DONE && !h.has_client && h.len == 16);
	n = v2(buf, 0x20, 0x11, junk, sizeof(junk)); /* too short for TCP4: LOCAL ignores it */
	CHECK(parse(buf, n) == PROXY_DONE && !h.has_client && h.len == 20);
	n = v2(buf, 0x21, 0x00, junk, sizeof(junk));
	CHECK(parse(buf, n) == PROXY_DONE && !h.has_client);
	unsigned char big[300];
	n = v2(big, 0x21, 0x31, unix_addrs, sizeof(unix_addrs));
	CHECK(parse(big, n) == PROXY_DONE && !h.has_client && h.len == 16 + 216);
}

static void expect_v2_bad(unsigned char ver_cmd, unsigned char fam, size_t n, const char *why)
{
	static const unsigned char addrs[64];
	unsigned char buf[128];

	/* Refused from the fixed part alone: no need to wait for the rest. */
	v2(buf, ver_cmd, fam, addrs, n);
	CHECK(parse(buf, 16) == PROXY_BAD);
	CHECK_STR(h.error, why);
}

static void test_v2_bad(void)
{
	unsigned char buf[PROXY_V2_MAX + 64];
	static const unsigned char zeros[PROXY_V2_MAX];

	expect_v2_bad(0x11, 0x11, 12, "PROXY v2: unsupported version");
	expect_v2_bad(0x22, 0x11, 12, "PROXY v2: unknown command");
	expect_v2_bad(0x21, 0x12, 12, "PROXY v2: not a TCP connection");
	expect_v2_bad(0x21, 0x10, 12, "PROXY v2: not a TCP connection");
	expect_v2_bad(0x21, 0x11, 11, "PROXY v2: address block too short");
	expect_v2_bad(0x21, 0x21, 35, "PROXY v2: address block too short");
	expect_v2_bad(0x21, 0x41, 12, "PROXY v2: unknown address family");
	/* The longest accepted, and one byte more. */
	size_t n = v2(buf, 0x21, 0x11, zeros, PROXY_V2_MAX - 16);
	CHECK(parse(buf, n - 1) == PROXY_MORE);
	CHECK(parse(buf, n) == PROXY_DONE && h.len == PROXY_V2_MAX);
	n = v2(buf, 0x21, 0x11, zeros, PROXY_V2_MAX - 15);
	CHECK(parse(buf, 16) == PROXY_BAD);
	CHECK_STR(h.error, "PROXY v2: longer than 2048 bytes");
	buf[0] = 0xff;
	buf[14] = buf[15] = 0xff;
	CHECK(parse(buf, 16) == PROXY_BAD);
	CHECK_STR(h.error, "no PROXY protocol header");
	/* The signature wrong in its last byte. */
	memcpy(buf, sig, 12);
	buf[11] = 'X';
	CHECK(parse(buf, 11) == PROXY_MORE);
	CHECK(parse(buf, 12) == PROXY_BAD);
}

static void test_garbage(void)
{
	unsigned char bytes[256];

	expect_bad("EHLO client.example\r\n", "no PROXY protocol header");
	expect_bad("proxy TCP4 10.1.2.3 192.0.2.9 40000 25\r\n", "no PROXY protocol header");
	expect_bad("PROXYTCP4", "no PROXY protocol header");
	CHECK(parse("PROX", 4) == PROXY_MORE);
	CHECK(parse("\r\n\r\n", 4) == PROXY_MORE);
	CHECK(parse("", 0) == PROXY_MORE);
	/* Random bytes: always a verdict, never a read outside the buffer (ASan). */
	srand(7);
	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)rand() % sizeof(bytes);
		for (size_t i = 0; i < n; i++)
			bytes[i] = (unsigned char)rand();
		if (round % 3 == 0 && n >= 12)
			memcpy(bytes, sig, 12);
		else if (round % 3 == 1 && n >= 6)
			memcpy(bytes, "PROXY ", 6);
		enum proxy_status st = parse(bytes, n);
		CHECK(st != PROXY_DONE || (h.len > 0 && h.len <= n));
	}
}

int main(void)
{
	test_v1();
	test_v1_unknown();
	test_v1_bad();
	test_v1_max();
	test_v2();
	test_v2_local_unspec();
	test_v2_bad();
	test_garbage();
	return check_summary("test_proxy_proto");
}

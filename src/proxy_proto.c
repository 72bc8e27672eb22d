/*
 * proxy_proto.c: see proxy_proto.h.
 */
#include "proxy_proto.h"

#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#define V1_PREFIX "PROXY "
#define V1_PREFIX_LEN 6
#define V1_FIELDS 5 /* TCP4|TCP6 SRC DST SPORT DPORT */
#define V2_FIXED 16

static const unsigned char v2_signature[12] = { '\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n' };

enum v2_command { V2_LOCAL = 0, V2_PROXY = 1 };
enum v2_family { V2_UNSPEC = 0, V2_INET = 1, V2_INET6 = 2, V2_UNIX = 3 };
#define V2_STREAM 1

static enum proxy_status bad(struct proxy_header *h, const char *why)
{
	h->error = why;
	return PROXY_BAD;
}

/* Whether the len bytes received so far agree with sig on their common length. */
static bool starts_like(const unsigned char *buf, size_t len, const void *sig, size_t n)
{
	return memcmp(buf, sig, len < n ? len : n) == 0;
}

static void set_client(struct proxy_header *h, int family, const void *addr, unsigned port)
{
	h->has_client = true;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&h->client;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
		h->client_len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&h->client;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
		h->client_len = sizeof(*sin6);
	}
}

/* A v1 port: 0 to 65535 in decimal, no sign, no leading zero. */
static bool v1_port(const char *s, unsigned *out)
{
	unsigned long v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0') || s[strspn(s, "0123456789")] != '\0')
		return false;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	*out = (unsigned)v;
	return v <= 65535;
}

/* The fields after "PROXY ": n bytes, without the CRLF; already checked to be printable. */
static enum proxy_status v1_fields(const unsigned char *p, size_t n, struct proxy_header *h)
{
	char line[PROXY_V1_MAX], *field[V1_FIELDS], *s = line;
	unsigned char src[sizeof(struct in6_addr)], dst[sizeof(struct in6_addr)];
	unsigned nfields = 0, sport, dport;
	int family;

	memcpy(line, p, n);
	line[n] = '\0';
	/* The sender could not tell who the client is: the connection's peer stands for it. */
	if (strncmp(line, "UNKNOWN", 7) == 0 && (line[7] == '\0' || line[7] == ' '))
		return PROXY_DONE;
	/* Fields are separated by exactly one space: split by hand (strtok
	 * would merge them). Counting stops at one field too many. */
	while (nfields <= V1_FIELDS) {
		char *sp = strchr(s, ' ');
		if (nfields < V1_FIELDS)
			field[nfields] = s;
		nfields++;
		if (sp == NULL)
			break;
		*sp = '\0';
		s = sp + 1;
	}
	if (strcmp(field[0], "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(field[0], "TCP6") == 0)
		family = AF_INET6;
	else
		return bad(h, "PROXY v1: protocol is not TCP4, TCP6 or UNKNOWN");
	if (nfields != V1_FIELDS)
		return bad(h, nfields < V1_FIELDS ? "PROXY v1: too few fields" : "PROXY v1: too many fields");
	if (inet_pton(family, field[1], src) != 1 || inet_pton(family, field[2], dst) != 1)
		return bad(h, "PROXY v1: bad address");
	if (!v1_port(field[3], &sport) || !v1_port(field[4], &dport))
		return bad(h, "PROXY v1: bad port");
	set_client(h, family, src, sport);
	return PROXY_DONE;
}

/* "PROXY " seen: the rest of the line up to CRLF, PROXY_V1_MAX bytes in all. */
static enum proxy_status parse_v1(const unsigned char *buf, size_t len, struct proxy_header *h)
{
	/* The CR can be at most the next-to-last byte of PROXY_V1_MAX. */
	size_t last_cr = PROXY_V1_MAX - 2;

	for (size_t i = V1_PREFIX_LEN; i < len && i <= last_cr; i++) {
		if (buf[i] == '\r') {
			if (i + 1 == len)
				return PROXY_MORE;
			if (buf[i + 1] != '\n')
				return bad(h, "PROXY v1: CR without LF");
			h->len = i + 2;
			return v1_fields(buf + V1_PREFIX_LEN, i - V1_PREFIX_LEN, h);
		}
		if (buf[i] < ' ' || buf[i] > '~')
			return bad(h, "PROXY v1: not a line of text");
	}
	if (len > last_cr)
		return bad(h, "PROXY v1: no CRLF within 107 bytes");
	return PROXY_MORE;
}

/* The signature seen, and the fixed part (16 bytes): checked before the rest arrives. */
static enum proxy_status parse_v2(const unsigned char *buf, size_t len, struct proxy_header *h)
{
	unsigned command = buf[12] & 0x0f, family = buf[13] >> 4, transport = buf[13] & 0x0f;
	size_t addrs = (size_t)buf[14] << 8 | buf[15], total = V2_FIXED + addrs;
	const unsigned char *a = buf + V2_FIXED;

	if (buf[12] >> 4 != 2)
		return bad(h, "PROXY v2: unsupported version");
	if (command != V2_LOCAL && command != V2_PROXY)
		return bad(h, "PROXY v2: unknown command");
	if (total > PROXY_V2_MAX)
		return bad(h, "PROXY v2: longer than 2048 bytes");
	if (command == V2_PROXY && (family == V2_INET || family == V2_INET6)) {
		if (transport != V2_STREAM)
			return bad(h, "PROXY v2: not a TCP connection");
		if (addrs < (family == V2_INET ? 12u : 36u))
			return bad(h, "PROXY v2: address block too short");
	} else if (command == V2_PROXY && family != V2_UNSPEC && family != V2_UNIX) {
		return bad(h, "PROXY v2: unknown address family");
	}
	if (len < total)
		return PROXY_MORE;
	h->len = total;
	/* LOCAL (the proxy's own health check), UNSPEC and UNIX: no client address.
	 * TLVs after the addresses carry nothing we use and are skipped. */
	if (command == V2_PROXY && family == V2_INET)
		set_client(h, AF_INET, a, (unsigned)a[8] << 8 | a[9]);
	else if (command == V2_PROXY && family == V2_INET6)
		set_client(h, AF_INET6, a, (unsigned)a[32] << 8 | a[33]);
	return PROXY_DONE;
}

enum proxy_status proxy_parse(const unsigned char *buf, size_t len, struct proxy_header *h)
{
	memset(h, 0, sizeof(*h));
	if (len == 0)
		return PROXY_MORE;
	if (starts_like(buf, len, V1_PREFIX, V1_PREFIX_LEN)) {
		h->version = 1;
		return len < V1_PREFIX_LEN ? PROXY_MORE : parse_v1(buf, len, h);
	}
	if (starts_like(buf, len, v2_signature, sizeof(v2_signature))) {
		h->version = 2;
		return len < V2_FIXED ? PROXY_MORE : parse_v2(buf, len, h);
	}
	return bad(h, "no PROXY protocol header");
}

/*
 * smtp_client.c: see smtp_client.h. Non-blocking socket and poll(), so
 * that connect, each write and each reply wait at most the timeout.
 */
#include "smtp_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define LINE_MAX_BYTES 1024        /* a reply line (RFC 5321: 512) with room to spare */

struct smtp_client {
	int fd;
	int timeout_ms;
	char in[LINE_MAX_BYTES * 4];
	size_t inlen;
	bool broken;               /* a failure: no QUIT at close */
};

/* Waits for fd to be ready for events; false with errno ETIMEDOUT. */
static bool wait_fd(const struct smtp_client *c, short events)
{
	struct pollfd p = { .fd = c->fd, .events = events };
	int n;

	while ((n = poll(&p, 1, c->timeout_ms)) < 0 && errno == EINTR)
		;
	if (n == 0)
		errno = ETIMEDOUT;
	return n > 0;
}

static bool send_all(struct smtp_client *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (!wait_fd(c, POLLOUT))
				return false;
			continue;
		}
		if (w < 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* The wildcard addresses of a listener are reached on the loopback. */
static struct sockaddr_any local_target(const struct sockaddr_any *addr)
{
	struct sockaddr_any a = *addr;

	if (a.ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&a.ss;
		if (in->sin_addr.s_addr == htonl(INADDR_ANY))
			in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (a.ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.ss;
		if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			in6->sin6_addr = in6addr_loopback;
	}
	return a;
}

static bool connect_within(struct smtp_client *c, const struct sockaddr_any *addr)
{
	struct sockaddr_any to = local_target(addr);
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (connect(c->fd, (struct sockaddr *)&to.ss, to.len) == 0)
		return true;
	if (errno != EINPROGRESS || !wait_fd(c, POLLOUT))
		return false;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return false;
	errno = soerr;
	return soerr == 0;
}

/* Reads one reply (all its lines); false with errno on failure, EPROTO
 * for something that is not a reply. */
static bool read_reply(struct smtp_client *c, struct smtp_reply *r)
{
	smtp_reply_reset(r);
	while (!r->complete) {
		char *nl = memchr(c->in, '\n', c->inlen);
		if (nl != NULL) {
			size_t n = (size_t)(nl - c->in);
			if (!smtp_reply_feed(r, c->in, n > 0 && c->in[n - 1] == '\r' ? n - 1 : n)) {
				errno = EPROTO;
				return false;
			}
			c->inlen -= n + 1;
			memmove(c->in, nl + 1, c->inlen);
			continue;
		}
		if (c->inlen == sizeof(c->in)) {
			errno = EPROTO;
			return false;
		}
		ssize_t got = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
		if (got > 0) {
			c->inlen += (size_t)got;
		} else if (got == 0) {
			errno = ECONNRESET;
			return false;
		} else if (errno == EAGAIN || errno == EINTR) {
			if (!wait_fd(c, POLLIN))
				return false;
		} else {
			return false;
		}
	}
	return true;
}

static bool failed(struct smtp_client *c, char *err, size_t errlen, const char *what)
{
	c->broken = true;
	snprintf(err, errlen, "%s: %s", what,
	    errno == EPROTO ? "not an SMTP reply" : errno == ECONNRESET ? "connection closed" : strerror(errno));
	return false;
}

struct smtp_client *smtp_client_connect(const struct sockaddr_any *addr, double connect_timeout,
    double reply_timeout, struct smtp_reply *greeting, char *err, size_t errlen)
{
	struct smtp_client *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->timeout_ms = (int)(connect_timeout * 1000);
	c->fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || !connect_within(c, addr)) {
		failed(c, err, errlen, "connect");
		smtp_client_close(c);
		return NULL;
	}
	if (!read_reply(c, greeting)) {
		failed(c, err, errlen, "greeting");
		smtp_client_close(c);
		return NULL;
	}
	c->timeout_ms = (int)(reply_timeout * 1000);
	return c;
}

bool smtp_client_command(struct smtp_client *c, const char *line, struct smtp_reply *reply, char *err,
    size_t errlen)
{
	if (!send_all(c, line, strlen(line)) || !send_all(c, "\r\n", 2))
		return failed(c, err, errlen, "sending");
	return read_reply(c, reply) || failed(c, err, errlen, "reading the reply");
}

bool smtp_client_data(struct smtp_client *c, const char *data, size_t len, struct smtp_reply *reply, char *err,
    size_t errlen)
{
	if (!send_all(c, data, len) || !send_all(c, ".\r\n", 3))
		return failed(c, err, errlen, "sending the message");
	return read_reply(c, reply) || failed(c, err, errlen, "reading the reply to the message");
}

void smtp_client_close(struct smtp_client *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0) {
		struct smtp_reply r;
		char err[80];
		if (!c->broken)
			smtp_client_command(c, "QUIT", &r, err, sizeof(err));
		close(c->fd);
	}
	free(c);
}

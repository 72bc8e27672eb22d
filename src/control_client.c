/*
 * control_client.c: see control_client.h.
 */
#include "control_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

static enum control_result failf(enum control_result res, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum control_result failf(enum control_result res, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return res;
}

static bool send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Reads until the daemon closes; NULL with errno on failure. */
static char *read_all(int fd, size_t *lenp)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1);

	if (buf == NULL)
		return NULL;
	for (;;) {
		if (len == cap) {
			char *nb = realloc(buf, cap * 2 + 1);
			if (nb == NULL) {
				free(buf);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = recv(fd, buf + len, cap - len, 0);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		/* The reply is complete when the daemon closes; a reset after
		 * it (it dropped input we sent) changes nothing. */
		if (errno == ECONNRESET && len > 0)
			break;
		int e = errno;
		free(buf);
		errno = e;
		return NULL;
	}
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

static int connect_to(const struct sockaddr_un *sun, const char *path, char *err, size_t errlen)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) < 0) {
		snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	struct timeval tv = { .tv_sec = CONTROL_CLIENT_TIMEOUT, .tv_usec = 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Splits the reply at its status line. */
static enum control_result parse_reply(const char *path, struct control_reply *r, size_t len, char *err,
    size_t errlen)
{
	char *nl = memchr(r->text, '\n', len);
	size_t first = nl != NULL ? (size_t)(nl - r->text) : len;
	size_t rest = nl != NULL ? first + 1 : len;

	if (len == 0)
		return failf(CONTROL_REPLY_BROKEN, err, errlen, "%s closed the connection without a reply", path);
	r->output = r->text + rest;
	r->output_len = len - rest;
	if (first == 2 && memcmp(r->text, "ok", 2) == 0)
		return CONTROL_REPLY_OK;
	if (first >= 7 && memcmp(r->text, "error: ", 7) == 0)
		return failf(CONTROL_REPLY_ERROR, err, errlen, "%.*s", (int)(first - 7), r->text + 7);
	return failf(CONTROL_REPLY_BROKEN, err, errlen, "unexpected reply from %s: %.*s", path, (int)(first > 200 ? 200 : first),
	    r->text);
}

enum control_result control_client_request(const char *path, const char *request, struct control_reply *r,
    char *err, size_t errlen)
{
	struct sockaddr_un sun;
	size_t len = 0;

	memset(r, 0, sizeof(*r));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (path[0] == '\0' || strlen(path) >= sizeof(sun.sun_path))
		return failf(CONTROL_REPLY_BAD_PATH, err, errlen, "socket path %s is empty or too long (at most %zu bytes)", path,
		    sizeof(sun.sun_path) - 1);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = connect_to(&sun, path, err, errlen);
	if (fd < 0)
		return CONTROL_REPLY_UNREACHABLE;
	if (!send_all(fd, request, strlen(request))) {
		int e = errno;
		close(fd);
		return failf(CONTROL_REPLY_BROKEN, err, errlen, "cannot send to %s: %s", path, strerror(e));
	}
	r->text = read_all(fd, &len);
	int e = errno;
	close(fd);
	if (r->text == NULL)
		return failf(CONTROL_REPLY_BROKEN, err, errlen, "no reply from %s: %s", path,
		    e == EAGAIN || e == EWOULDBLOCK ? "timed out" : strerror(e));
	return parse_reply(path, r, len, err, errlen);
}

void control_reply_free(struct control_reply *r)
{
	free(r->text);
	memset(r, 0, sizeof(*r));
}

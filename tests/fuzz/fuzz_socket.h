/*
 * fuzz_socket.h: a request to one of the daemon's small services
 * (control socket, /metrics) served in this process's own libev loop,
 * as a client would send it: over a Unix socket (abstract name, nothing
 * on disk), in pieces with the loop run between them, then the write
 * side shut; the reply is read until the service closes.
 */
#ifndef SUBRELAY_FUZZ_SOCKET_H
#define SUBRELAY_FUZZ_SOCKET_H

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <ev.h>

#include "fuzz.h"

struct fuzz_socket {
	struct ev_loop *loop;
	struct sockaddr_un addr;
	socklen_t addrlen;
};

/* A listening socket for the service under test; its descriptor. */
static inline int fuzz_socket_listen(struct fuzz_socket *fs, const char *name)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	FUZZ_CHECK(fd >= 0);
	memset(&fs->addr, 0, sizeof(fs->addr));
	fs->addr.sun_family = AF_UNIX;
	int n = snprintf(fs->addr.sun_path + 1, sizeof(fs->addr.sun_path) - 1, "subrelay-fuzz-%s-%d", name,
	    (int)getpid());
	fs->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	FUZZ_CHECK(bind(fd, (struct sockaddr *)&fs->addr, fs->addrlen) == 0 && listen(fd, 16) == 0);
	fs->loop = ev_default_loop(0);
	return fd;
}

struct fuzz_reply {
	char *buf;
	size_t len, cap;
	ev_io w;
};

static inline void fuzz_on_reply(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fuzz_reply *r = w->data;
	char scratch[4096];
	(void)revents;

	ssize_t n = read(w->fd, scratch, sizeof(scratch));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		ev_io_stop(loop, w);
		ev_break(loop, EVBREAK_ONE);
		return;
	}
	size_t take = (size_t)n < r->cap - r->len ? (size_t)n : r->cap - r->len;
	memcpy(r->buf + r->len, scratch, take);
	r->len += take;
}

/* Sends req[0..len) in pieces and returns the reply's length in
 * reply[0..cap) (cut at cap). */
static inline size_t fuzz_socket_request(struct fuzz_socket *fs, const char *req, size_t len,
    struct fuzz_chunks *chunks, char *reply, size_t cap)
{
	struct fuzz_reply r = { .buf = reply, .cap = cap };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	FUZZ_CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&fs->addr, fs->addrlen) == 0);
	FUZZ_CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	while (len > 0) {
		size_t n = fuzz_chunk(chunks, len);
		ssize_t sent = send(fd, req, n, MSG_NOSIGNAL);
		if (sent < 0 && (errno == EPIPE || errno == ECONNRESET))
			break; /* the service answered early and closed */
		FUZZ_CHECK(sent > 0);
		req += sent;
		len -= (size_t)sent;
		ev_run(fs->loop, EVRUN_NOWAIT);
	}
	shutdown(fd, SHUT_WR);
	ev_io_init(&r.w, fuzz_on_reply, fd, EV_READ);
	r.w.data = &r;
	ev_io_start(fs->loop, &r.w);
	ev_run(fs->loop, 0);
	close(fd);
	return r.len;
}

#endif

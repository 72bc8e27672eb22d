/*
 * io.c: see io.h. Every path ends in io_rearm(), which computes the
 * watcher's events from the connection's state; callbacks to the owner
 * go through io_emit(), which notices an io_free() made from inside.
 */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>

#include "tls.h"

enum io_state {
	IO_ST_CONNECTING,
	IO_ST_HANDSHAKE,
	IO_ST_OPEN,
	IO_ST_FAILED,
};

#define IO_MAGIC 0x10c0ffeeu

struct io {
	unsigned magic;
	int fd;
	enum io_state state;
	struct ev_loop *loop;
	ev_io watcher;
	ev_timer timer;
	SSL *ssl;
	struct buf in, out;
	io_cb cb;
	void *arg;
	bool read_paused;
	bool eof;
	bool eof_reported;
	bool close_after_flush;
	bool tls_failed;
	SSL *accept_ssl; /* io_accept_tls(): the server handshake starts once the output is flushed */
	/* What OpenSSL asked for in the last read/write/handshake call. */
	bool read_wants_write;
	bool write_wants_read;
	bool handshake_wants_write;
	bool write_blocked; /* the last write hit EAGAIN: wait for EV_WRITE */
	bool read_starved;  /* the last SSL_read wanted more bytes than OpenSSL holds */
	int depth;  /* >0 while inside the owner's callback */
	bool freed; /* io_free() called while depth > 0 */
	int err;
	int connect_err; /* a connect() that failed at once, reported from the loop */
	char errtext[256];
};

static void io_rearm(struct io *io);

static void io_set_error(struct io *io, int err, const char *what)
{
	io->err = err;
	io->state = IO_ST_FAILED;
	if (err != 0)
		snprintf(io->errtext, sizeof(io->errtext), "%s: %s", what, strerror(err));
	else
		snprintf(io->errtext, sizeof(io->errtext), "%s", what);
}

static void io_set_tls_error(struct io *io, const char *what, int sslerr)
{
	char queue[200];
	long verify = X509_V_OK;

	tls_error_string(queue, sizeof(queue));
	if (io->state == IO_ST_HANDSHAKE) {
		io->tls_failed = true;
		verify = SSL_get_verify_result(io->ssl);
	}
	if (verify != X509_V_OK)
		snprintf(io->errtext, sizeof(io->errtext), "%s: certificate verification failed: %s",
		    what, X509_verify_cert_error_string(verify));
	else if (sslerr == SSL_ERROR_SYSCALL && errno != 0)
		snprintf(io->errtext, sizeof(io->errtext), "%s: %s", what, strerror(errno));
	else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN)
		snprintf(io->errtext, sizeof(io->errtext), "%s: connection closed by peer", what);
	else
		snprintf(io->errtext, sizeof(io->errtext), "%s: %s", what, queue[0] ? queue : "TLS error");
	io->err = 0;
	io->state = IO_ST_FAILED;
}

/* Returns false if the owner freed the io inside the callback. */
static bool io_emit(struct io *io, enum io_event ev)
{
	io->depth++;
	io->cb(io, ev, io->arg);
	io->depth--;
	if (io->freed && io->depth == 0) {
		io->freed = false;
		io_free(io);
		return false;
	}
	return !io->freed;
}

static void io_tune_socket(int fd)
{
	int one = 1;

	/* Both callers' fds are already O_NONBLOCK | O_CLOEXEC (accept4 and
	 * socket flags): no fcntl calls per connection. */
	/* SMTP is a dialogue of small writes: Nagle plus delayed ACK stalls it. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- plain and TLS transfer ---- */

static ssize_t io_recv(struct io *io, char *p, size_t n)
{
	if (io->ssl == NULL)
		return read(io->fd, p, n);
	ERR_clear_error();
	int r = SSL_read(io->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
	io->read_wants_write = false;
	io->read_starved = false;
	if (r > 0)
		return r;
	switch (SSL_get_error(io->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		/* What OpenSSL holds (read ahead) is a partial record at most. */
		io->read_starved = true;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		io->read_wants_write = true;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			return 0; /* EOF without close_notify: treat as a close */
		return -1;
	default:
		errno = EPROTO;
		return -1;
	}
}

static ssize_t io_send(struct io *io, const char *p, size_t n)
{
	if (io->ssl == NULL)
		return send(io->fd, p, n, MSG_NOSIGNAL);
	ERR_clear_error();
	int r = SSL_write(io->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
	io->write_wants_read = false;
	if (r > 0)
		return r;
	switch (SSL_get_error(io->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		io->write_wants_read = true;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			errno = EPIPE;
		return -1;
	default:
		errno = EPROTO;
		return -1;
	}
}

/* Reads until the input buffer is full or the socket would block. */
static bool io_do_read(struct io *io)
{
	bool got = false;

	while (!io->eof && !io->read_paused) {
		size_t room = buf_room(&io->in);
		if (room == 0)
			break;
		ssize_t n = io_recv(io, buf_tail(&io->in), room);
		if (n > 0) {
			buf_commit(&io->in, (size_t)n);
			got = true;
			/* A short read drained the socket (or OpenSSL's buffer):
			 * the watcher is level-triggered, so anything arriving
			 * later is reported again; skip the read that would
			 * only say EAGAIN. */
			if ((size_t)n < room && (io->ssl == NULL || !SSL_has_pending(io->ssl)))
				break;
			continue;
		}
		if (n == 0) {
			io->eof = true;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		if (io->ssl != NULL && errno == EPROTO)
			io_set_tls_error(io, "TLS read", SSL_ERROR_SSL);
		else
			io_set_error(io, errno, "read");
		break;
	}
	return got;
}

/* Writes what it can; returns true if the buffer became empty. */
static bool io_do_write(struct io *io)
{
	while (!buf_empty(&io->out)) {
		ssize_t n = io_send(io, buf_peek(&io->out), buf_len(&io->out));
		if (n > 0) {
			buf_consume(&io->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			io->write_blocked = true;
			return false;
		}
		if (io->ssl != NULL && errno == EPROTO)
			io_set_tls_error(io, "TLS write", SSL_ERROR_SSL);
		else
			io_set_error(io, n < 0 ? errno : EPIPE, "write");
		return false;
	}
	io->write_blocked = false;
	return true;
}

/* ---- state steps ---- */

static void io_finish_connect(struct io *io)
{
	int err = io->connect_err;
	socklen_t len = sizeof(err);

	if (err == 0 && getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		io_set_error(io, err, "connect");
		return;
	}
	io->state = IO_ST_OPEN;
}

static void io_step_handshake(struct io *io)
{
	ERR_clear_error();
	int r = SSL_do_handshake(io->ssl);
	if (r == 1) {
		io->state = IO_ST_OPEN;
		return;
	}
	int e = SSL_get_error(io->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		io->handshake_wants_write = (e == SSL_ERROR_WANT_WRITE);
		return;
	}
	io_set_tls_error(io, "TLS handshake", e);
}

/* The STARTTLS reply has gone out in clear: the server handshake starts. */
static void io_begin_accept(struct io *io)
{
	io->ssl = io->accept_ssl;
	io->accept_ssl = NULL;
	SSL_set_fd(io->ssl, io->fd);
	SSL_set_accept_state(io->ssl);
	io->state = IO_ST_HANDSHAKE;
	io->handshake_wants_write = false; /* the client speaks first */
}

static void io_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct io *io = w->data;
	(void)revents;
	ev_timer_stop(loop, w);
	if (io_emit(io, IO_EV_TIMEOUT))
		io_rearm(io);
}

/* Emits the event for a state change; false if the owner freed io. */
static bool io_report(struct io *io, enum io_state before)
{
	if (io->state == IO_ST_FAILED) {
		io_emit(io, IO_EV_ERROR);
		return false;
	}
	if (before == IO_ST_CONNECTING && io->state == IO_ST_OPEN)
		return io_emit(io, IO_EV_CONNECTED);
	if (before == IO_ST_HANDSHAKE && io->state == IO_ST_OPEN)
		return io_emit(io, IO_EV_TLS_UP);
	return true;
}

static void io_on_ready(struct io *io, int revents)
{
	enum io_state before = io->state;
	bool drained = false;

	if (io->state == IO_ST_CONNECTING) {
		io_finish_connect(io);
		io_report(io, before);
		return;
	}
	if (io->state == IO_ST_HANDSHAKE) {
		io_step_handshake(io);
		io_report(io, before);
		return;
	}
	if (io->state != IO_ST_OPEN)
		return;
	if (!buf_empty(&io->out))
		drained = io_do_write(io);
	if (!io_report(io, before))
		return;
	if (io->accept_ssl != NULL) {
		if (buf_empty(&io->out))
			io_begin_accept(io);
		return;
	}
	if (drained || (io->close_after_flush && buf_empty(&io->out))) {
		if (!io_emit(io, IO_EV_DRAINED))
			return;
	}
	if (io->close_after_flush)
		return;
	/* A fed EV_WRITE (see io_rearm) does not mean there is input. */
	if (((revents & EV_READ) || io->read_wants_write) && io_do_read(io) && !io_emit(io, IO_EV_READ))
		return;
	if (!io_report(io, before))
		return;
	if (io->eof && !io->read_paused && !io->eof_reported) {
		io->eof_reported = true;
		io_emit(io, IO_EV_EOF);
	}
}

static void io_on_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct io *io = w->data;
	(void)loop;

	if (io->magic != IO_MAGIC)
		abort();
	io->depth++;
	io_on_ready(io, revents);
	io->depth--;
	if (io->freed && io->depth == 0) {
		io->freed = false;
		io_free(io);
		return;
	}
	if (!io->freed)
		io_rearm(io);
}

/* Derives the watcher's events from the state; the heart of this module. */
static void io_rearm(struct io *io)
{
	int events = 0;
	bool feed_read = false, feed_write = false;

	switch (io->state) {
	case IO_ST_CONNECTING:
		events = EV_WRITE;
		break;
	case IO_ST_HANDSHAKE:
		events = io->handshake_wants_write ? EV_WRITE : EV_READ;
		break;
	case IO_ST_OPEN: {
		bool want_read = !io->read_paused && !io->eof && !io->close_after_flush && io->accept_ssl == NULL &&
		    buf_len(&io->in) < io->in.limit;
		if (want_read)
			events |= io->read_wants_write ? EV_WRITE : EV_READ;
		/* Output is written from the loop in this iteration (a fed
		 * EV_WRITE, so many appends make one write), and EV_WRITE is
		 * polled for only after a write would block: no epoll_ctl pair
		 * per reply. */
		if (!buf_empty(&io->out)) {
			if (io->write_wants_read)
				events |= EV_READ;
			else if (io->write_blocked)
				events |= EV_WRITE;
			else
				feed_write = true;
		}
		/* Decrypted bytes OpenSSL holds will not make the socket readable,
		 * and a paused reader still has to hear about an EOF it saw. */
		feed_read = (want_read && io->ssl != NULL && !io->read_starved && SSL_has_pending(io->ssl)) ||
		    (io->eof && !io->read_paused && !io->eof_reported && !io->close_after_flush);
		break;
	}
	case IO_ST_FAILED:
		break;
	}
	/* ev_io_stop() also drops events fed to the watcher: only stop one that
	 * runs, so a DRAINED fed by io_close_after_flush() survives. */
	bool active = ev_is_active(&io->watcher);
	if (active && events == (io->watcher.events & (EV_READ | EV_WRITE))) {
		/* unchanged */
	} else if (events == 0) {
		if (active)
			ev_io_stop(io->loop, &io->watcher);
	} else {
		ev_io_stop(io->loop, &io->watcher);
		ev_io_set(&io->watcher, io->fd, events);
		ev_io_start(io->loop, &io->watcher);
	}
	/* Fed last: stopping a watcher drops the events pending on it. */
	if (feed_read || feed_write)
		ev_feed_event(io->loop, &io->watcher, (feed_read ? EV_READ : 0) | (feed_write ? EV_WRITE : 0));
}

/* ---- public ---- */

struct io *io_new(struct ev_loop *loop, int fd, size_t in_limit, size_t out_limit, io_cb cb, void *arg)
{
	struct io *io = calloc(1, sizeof(*io));
	if (io == NULL)
		return NULL;
	io->magic = IO_MAGIC;
	io->fd = fd;
	io->loop = loop;
	io->cb = cb;
	io->arg = arg;
	io->state = IO_ST_OPEN;
	buf_init(&io->in, in_limit);
	buf_init(&io->out, out_limit);
	io_tune_socket(fd);
	ev_io_init(&io->watcher, io_on_event, fd, 0);
	io->watcher.data = io;
	ev_init(&io->timer, io_on_timer);
	io->timer.data = io;
	io_rearm(io);
	return io;
}

struct io *io_connect(struct ev_loop *loop, const struct sockaddr *sa, socklen_t salen,
    size_t in_limit, size_t out_limit, io_cb cb, void *arg)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	struct io *io = io_new(loop, fd, in_limit, out_limit, cb, arg);
	if (io == NULL) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	io->state = IO_ST_CONNECTING;
	/* Refusals can be immediate (e.g. a local REJECT rule): report from the loop. */
	if (connect(fd, sa, salen) < 0 && errno != EINPROGRESS)
		io->connect_err = errno;
	io_rearm(io);
	if (io->connect_err != 0)
		ev_feed_event(loop, &io->watcher, EV_WRITE);
	return io;
}

void io_free(struct io *io)
{
	if (io == NULL)
		return;
	if (io->depth > 0) {
		io->freed = true;
		ev_io_stop(io->loop, &io->watcher);
		ev_timer_stop(io->loop, &io->timer);
		return;
	}
	ev_io_stop(io->loop, &io->watcher);
	ev_timer_stop(io->loop, &io->timer);
	SSL_free(io->accept_ssl);
	if (io->ssl != NULL) {
		if (io->state == IO_ST_OPEN) {
			ERR_clear_error();
			SSL_shutdown(io->ssl);
		}
		SSL_free(io->ssl);
		ERR_clear_error();
	}
	close(io->fd);
	buf_release(&io->in);
	buf_release(&io->out);
	io->magic = 0;
	free(io);
}

void io_start_tls(struct io *io, SSL *ssl)
{
	io->ssl = ssl;
	SSL_set_fd(ssl, io->fd);
	SSL_set_connect_state(ssl);
	io->state = IO_ST_HANDSHAKE;
	io->handshake_wants_write = true;
	io_rearm(io);
}

void io_accept_tls(struct io *io, SSL *ssl)
{
	io->accept_ssl = ssl;
	if (buf_empty(&io->out))
		io_begin_accept(io);
	io_rearm(io);
}

SSL *io_ssl(const struct io *io) { return io->ssl; }
struct buf *io_in(struct io *io) { return &io->in; }
struct buf *io_out(struct io *io) { return &io->out; }
const char *io_error(const struct io *io) { return io->errtext; }
int io_errno(const struct io *io) { return io->err; }
bool io_tls_failed(const struct io *io) { return io->tls_failed; }

void io_update(struct io *io)
{
	if (!io->freed)
		io_rearm(io);
}

void io_pause_read(struct io *io, bool paused)
{
	io->read_paused = paused;
	io_update(io);
}

void io_timeout(struct io *io, double seconds)
{
	if (seconds <= 0) {
		ev_timer_stop(io->loop, &io->timer);
		return;
	}
	io->timer.repeat = seconds;
	ev_timer_again(io->loop, &io->timer);
}

void io_close_after_flush(struct io *io)
{
	io->close_after_flush = true;
	io_update(io);
	/* Nothing left to write: report DRAINED from the loop all the same. */
	if (buf_empty(&io->out))
		ev_feed_event(io->loop, &io->watcher, EV_WRITE);
}

void io_release_idle(struct io *io)
{
	/* OpenSSL may hold decrypted bytes: the input buffer is needed then. */
	if (buf_empty(&io->in) && (io->ssl == NULL || !SSL_has_pending(io->ssl))) {
		buf_release(&io->in);
		if (io->ssl != NULL && io->state == IO_ST_OPEN)
			SSL_free_buffers(io->ssl); /* refuses (harmlessly) if it holds data */
	}
	if (buf_empty(&io->out))
		buf_release(&io->out);
}

/*
 * io: one non-blocking connection, plain or TLS, driven by libev.
 *
 * The only module that sees sockets' EAGAIN and OpenSSL's
 * SSL_ERROR_WANT_READ/WRITE. Owners see bounded input and output
 * buffers and a few events: bytes arrived, output drained, peer closed,
 * error, connect or handshake done, phase timer expired. The watcher is
 * derived from state after every change (reading paused, buffers full or
 * empty, what TLS waits for), so there is no event flag to forget.
 *
 * Events are only delivered from the loop, never from inside an io_*
 * call, and an owner may io_free() from inside its callback.
 */
#ifndef SUBRELAY_IO_H
#define SUBRELAY_IO_H

#include <stdbool.h>
#include <sys/socket.h>
#include <ev.h>
#include <openssl/ssl.h>

#include "buf.h"

enum io_event {
	IO_EV_READ,      /* new bytes in io_in() */
	IO_EV_DRAINED,   /* the output buffer became empty */
	IO_EV_CONNECTED, /* io_connect() finished */
	IO_EV_TLS_UP,    /* handshake finished */
	IO_EV_TIMEOUT,   /* the phase timer expired (the timer is then off) */
	IO_EV_EOF,       /* peer closed its side; io_in() may still hold bytes */
	IO_EV_ERROR,     /* io_error() says why; the connection is unusable */
};

struct io;
typedef void (*io_cb)(struct io *io, enum io_event ev, void *arg);

/* Wraps a connected socket (accepted, or to be connected). */
struct io *io_new(struct ev_loop *loop, int fd, size_t in_limit, size_t out_limit, io_cb cb, void *arg);
/* Non-blocking connect to sa; IO_EV_CONNECTED or IO_EV_ERROR follow. NULL
 * with errno set if the socket cannot even be created. */
struct io *io_connect(struct ev_loop *loop, const struct sockaddr *sa, socklen_t salen,
    size_t in_limit, size_t out_limit, io_cb cb, void *arg);
/* Closes at once (TLS close_notify attempted, never waited for). */
void io_free(struct io *io);

/* Starts a TLS client handshake over the connection (takes ownership of ssl). */
void io_start_tls(struct io *io, SSL *ssl);
/* Starts a TLS server handshake (takes ownership of ssl) once the output
 * buffer is flushed: the STARTTLS reply goes out in clear first. Nothing
 * is read meanwhile; IO_EV_TLS_UP or IO_EV_ERROR follow. Bytes already
 * in io_in() are the owner's to discard. */
void io_accept_tls(struct io *io, SSL *ssl);
SSL *io_ssl(const struct io *io);

struct buf *io_in(struct io *io);
struct buf *io_out(struct io *io);
/* Call after appending to io_out() or consuming io_in(). */
void io_update(struct io *io);
void io_pause_read(struct io *io, bool paused);
/* Phase timer: (re)starts it for `seconds`; 0 stops it. */
void io_timeout(struct io *io, double seconds);
/* Frees the input and output buffers if they are empty (an idle peer costs
 * no buffer memory; they come back on the next read or write). */
void io_release_idle(struct io *io);
/* Close once the output is flushed; the owner gets IO_EV_DRAINED then frees. */
void io_close_after_flush(struct io *io);

/* Why the last IO_EV_ERROR happened, and the errno behind it (0 for TLS). */
const char *io_error(const struct io *io);
int io_errno(const struct io *io);
/* True if the error happened during a TLS handshake. */
bool io_tls_failed(const struct io *io);

#endif

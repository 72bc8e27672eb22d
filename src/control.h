/*
 * control: the daemon's Unix control socket (relay.control), spoken to by
 * subrelayctl. The socket is created mode 0600 (its directory 0700 if the
 * daemon creates it); a stale socket file is replaced, a live one (another
 * daemon answering) is an error.
 *
 * Protocol: one request line per connection, "COMMAND [ARG]\n" (at most
 * 512 bytes). The daemon answers with text lines: the first is "ok" or
 * "error: REASON", the rest is the command's output; then it closes the
 * connection. Commands: status, queue, show ID, flush [ID], delete ID,
 * reload, stats, failed, requeue ID|all, health. The module only parses requests and frames replies; the
 * daemon's callbacks do the work and write their output to a FILE.
 */
#ifndef SUBRELAY_CONTROL_H
#define SUBRELAY_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <ev.h>

/* Every operation is set: the daemon answers each command in every
 * delivery mode (passthrough has an empty queue). */
struct control_ops {
	void (*status)(FILE *out, void *arg);
	void (*queue_list)(FILE *out, void *arg);
	/* false: no such message (the reply becomes "error: no message ID") */
	bool (*show)(const char *id, FILE *out, void *arg);
	/* id NULL: everything. Returns how many messages were rescheduled, -1: no such message */
	int (*flush)(const char *id, void *arg);
	/* a queued message, or else a failed one */
	bool (*remove)(const char *id, void *arg);
	/* false with the reason in err: the old configuration stays */
	bool (*reload)(char *err, size_t errlen, void *arg);
	void (*stats)(FILE *out, void *arg);
	void (*failed_list)(FILE *out, void *arg);
	/* id NULL: all. Returns how many were requeued, -1: no failed message
	 * id; *left: failed messages not requeued (a bounded batch) */
	int (*requeue)(const char *id, unsigned *left, void *arg);
	/* "ready", or "not ready" and the reasons (health.h); true when ready */
	bool (*health)(FILE *out, void *arg);
};

struct control;

/*
 * Two steps, like every socket of the daemon: the startup binds before
 * privileges are dropped and removes the file at exit; the worker that
 * owns the control socket (worker 0) serves it.
 */
struct control_socket {
	int fd;     /* -1: none, or handed to control_serve() */
	dev_t dev;  /* the socket file we made, so we never unlink another's */
	ino_t ino;
};
/* Creates the socket file (mode 0600, its directory 0700 if missing),
 * replacing a stale one; false with the reason in err. */
bool control_bind(const char *path, struct control_socket *cs, char *err, size_t errlen);
/* Serves cs's socket and takes its descriptor (cs->fd becomes -1).
 * NULL when out of memory (cs is left as it was). */
struct control *control_serve(struct ev_loop *loop, struct control_socket *cs, const struct control_ops *ops,
    void *arg);
/* Stops serving and closes the socket; the file stays for whoever bound it. */
void control_close(struct control *c);
/* Closes cs's descriptor if it still holds one and removes the file if
 * it is still the one control_bind() made. */
void control_socket_remove(const char *path, struct control_socket *cs);

#endif

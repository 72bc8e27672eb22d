/*
 * gate: the accept loop of a small service socket (control, /metrics):
 * at most `max` connections at once (more wait in the listen backlog),
 * and after EMFILE, ENFILE, ENOBUFS or ENOMEM a pause before accepting
 * again, so that a full descriptor table never makes the loop spin.
 * The client listeners (listener.c) pause all their sockets together.
 */
#ifndef SUBRELAY_GATE_H
#define SUBRELAY_GATE_H

#include <ev.h>

typedef void (*gate_conn_fn)(int fd, void *arg);

struct gate {
	struct ev_loop *loop;
	int fd;
	unsigned max, nconns;
	const char *what;          /* for the log line */
	gate_conn_fn conn;
	void *arg;
	ev_io w;
	ev_timer resume;
};

/* Starts accepting on fd; conn(fd) gets each new connection, counted
 * until gate_closed(). */
void gate_start(struct gate *g, struct ev_loop *loop, int fd, unsigned max, const char *what, gate_conn_fn conn,
    void *arg);
/* A connection of the gate's is gone: room for the next. */
void gate_closed(struct gate *g);
void gate_stop(struct gate *g);

#endif

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
 * reload, stats. The module only parses requests and frames replies; the
 * daemon's callbacks do the work and write their output to a FILE.
 */
#ifndef SUBRELAY_CONTROL_H
#define SUBRELAY_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <ev.h>

struct control_ops {
	void (*status)(FILE *out, void *arg);
	void (*queue_list)(FILE *out, void *arg);
	/* false: no such message (the reply becomes "error: no message ID") */
	bool (*show)(const char *id, FILE *out, void *arg);
	/* id NULL: everything. Returns how many messages were rescheduled, -1: no such message */
	int (*flush)(const char *id, void *arg);
	bool (*remove)(const char *id, void *arg);
	/* false with the reason in err: the old configuration stays */
	bool (*reload)(char *err, size_t errlen, void *arg);
	void (*stats)(FILE *out, void *arg);
};

struct control;

struct control *control_open(struct ev_loop *loop, const char *path, const struct control_ops *ops, void *arg,
    char *err, size_t errlen);
/* Stops listening and removes the socket file. */
void control_close(struct control *c);

#endif

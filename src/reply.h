/*
 * reply: the reply lines a client session writes, and the room they need.
 *
 * A reply is one line of at most REPLY_LINE_MAX bytes with its CRLF
 * (longer text is cut), appended to the client's output buffer, which
 * never refuses it: the session takes a command only while
 * reply_has_room() says that its replies, and one line for each answer
 * still owed, fit. Nothing here knows the session; smtp_server.c decides
 * what to say and when.
 */
#ifndef SUBRELAY_REPLY_H
#define SUBRELAY_REPLY_H

#include <stdarg.h>
#include <stdbool.h>

#include "io.h"
#include "smtp_parse.h"

#define REPLY_LINE_MAX 600

void reply(struct io *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void reply_v(struct io *io, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* A backend's answer, with `class.default_detail` as its enhanced code
 * when it has none (ENHANCEDSTATUSCODES); a 3xx gets none (RFC 2034). */
void reply_answer(struct io *io, const struct smtp_reply *r, const char *default_detail);
/* Whether the replies of one more command fit, behind a line for each of
 * the `owed` answers still to come. */
bool reply_has_room(struct io *io, unsigned owed);

#endif

/*
 * smtp_line: the client's command lines, cut from its input buffer.
 *
 * A line ends at LF; a CR before the LF is not part of it. A line of
 * COMMAND_LINE_MAX bytes or more is no command: it is dropped, and when
 * its end has not arrived yet, what arrives is dropped up to that end,
 * so a client can never make the session hold more than the input
 * buffer. The session says "500 Line too long" once for each such line;
 * nothing here writes replies.
 */
#ifndef SUBRELAY_SMTP_LINE_H
#define SUBRELAY_SMTP_LINE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define COMMAND_LINE_MAX 2048

struct smtp_line {
	bool skipping;             /* dropping the rest of an over-long line */
	size_t used;               /* the READY line's bytes in the input, its end included */
};

enum smtp_line_status {
	SMTP_LINE_WAIT,      /* no complete line: wait for input */
	SMTP_LINE_READY,     /* a command line, left in the input until smtp_line_consume() */
	SMTP_LINE_LONG,      /* an over-long line, dropped */
	SMTP_LINE_LONG_WAIT, /* the start of an over-long line, dropped; wait for its end */
	SMTP_LINE_SKIPPED,   /* the end of an over-long line, dropped */
};

/* The next line in `in`. READY: `line` holds it NUL-terminated (handlers
 * use the argument as a string) and *len its length without the line end. */
enum smtp_line_status smtp_line_next(struct smtp_line *l, struct buf *in, char line[COMMAND_LINE_MAX + 1],
    size_t *len);
/* Takes the READY line out of the input. */
void smtp_line_consume(struct smtp_line *l, struct buf *in);

#endif

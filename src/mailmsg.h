/*
 * mailmsg: the message a local program pipes to subrelay-sendmail, read
 * from a stream and turned into canonical SMTP data (CRLF lines,
 * dot-stuffed, without the terminating ".\r\n"), ready for DATA or for a
 * maildrop file. Blocking reads; no sockets.
 *
 * The header section is read field by field (a field and its folded
 * continuation lines): Bcc: fields are removed (their recipients must not
 * be shown to the others); with `extract` (-t) the addresses of To:, Cc:
 * and Bcc: become recipients; a From: field is added at the end of the
 * section when the message has none. A line that is not a header field
 * ends the section (a blank line is inserted before it). Lines end at LF,
 * a CR before it is dropped. Unless `dot_ends` is off (-i, -oi), a line
 * that is "." alone ends the input, as sendmail does.
 */
#ifndef SUBRELAY_MAILMSG_H
#define SUBRELAY_MAILMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct mailmsg_opts {
	bool dot_ends;             /* a "." line ends the input (no -i) */
	bool extract;              /* -t: recipients from To:, Cc:, Bcc: */
	const char *from_field;    /* whole "From: ...\r\n" added when there is none */
	uint64_t max_size;         /* canonical bytes at most; 0: no limit */
};

struct mailmsg {
	char *data;                /* canonical SMTP data */
	size_t len, cap;
	char **rcpts;              /* extracted recipients (-t) */
	unsigned nrcpts;
	bool eight_bit;            /* a byte above 127 somewhere */
};

enum mailmsg_status {
	MAILMSG_OK,
	MAILMSG_BAD_HEADER,        /* an address field -t cannot read (err) */
	MAILMSG_TOO_BIG,
	MAILMSG_READ_ERROR,        /* reading the input, or out of memory (err) */
};

enum mailmsg_status mailmsg_read(FILE *in, const struct mailmsg_opts *o, struct mailmsg *m, char *err, size_t errlen);
void mailmsg_free(struct mailmsg *m);

#endif

/*
 * smtp_data: the DATA canonicaliser (smuggling-safe re-emission).
 *
 * Turns the bytes a client sends after 354 into canonical SMTP data for
 * the provider, streaming, in bounded memory (a few bytes of state):
 *
 *  - Only <CR><LF>.<CR><LF> ends the data (the CRLF before the dot may
 *    be the one that ended the DATA command: the stream starts "at a
 *    line start after a real CRLF"). A lone "." line with a bare LF at
 *    either end (<LF>.<LF>, <CR><LF>.<LF>, <LF>.<CR><LF>), what LF-only
 *    clients send as the end, ends it too with accept_lf_dot
 *    (relay.accept_lf_dot); without, it is content "." and lf_dot_seen
 *    names it, so that a client then waiting can be told why. A "." line
 *    after or before a bare CR is content either way.
 *  - A bare LF, or a bare CR not followed by LF, is emitted as CRLF.
 *  - Transparency (RFC 5321 4.5.2): a line that began after a real CRLF
 *    and starts with "." loses that dot (the client stuffed it). A line
 *    that began after a bare LF/CR is taken literally (the client did not
 *    consider it a line), except after a bare LF with accept_lf_dot (an
 *    LF-only client stuffs its dots too). A real-start line that is "." followed by a bare
 *    LF or bare CR is content "." (it cannot be the terminator).
 *  - Every output line that starts with "." gets one more ".".
 *  - The output never contains the terminator; the caller appends
 *    ".\r\n" itself (the output always ends at a line start once the
 *    terminator was seen: a final CRLF is added if the content lacks one).
 *
 * Example: client "a\n.\nMAIL FROM:<x>\r\n.\r\n" is emitted as
 * "a\r\n..\r\nMAIL FROM:<x>\r\n", one message (with accept_lf_dot: "a\r\n",
 * then "MAIL FROM:<x>" is the client's next command).
 */
#ifndef SUBRELAY_SMTP_DATA_H
#define SUBRELAY_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_data {
	int state;                 /* private */
	bool accept_lf_dot;        /* a bare-LF dot line ends the data too */
	const char *lf_dot_seen;   /* the first bare-LF dot line taken as content,
	                            * "<LF>.<LF>", "<CR><LF>.<LF>" or "<LF>.<CR><LF>"; NULL: none */
	bool done;                 /* terminator seen */
	uint64_t in_bytes;         /* client bytes consumed, terminator excluded */
	uint64_t out_bytes;        /* canonical bytes produced */
};

void smtp_data_init(struct smtp_data *d, bool accept_lf_dot);

/*
 * Consumes client bytes from in[0..inlen) and writes canonical bytes to
 * out[0..outcap). Stops when the terminator has been consumed (d->done
 * set, bytes after it are left unconsumed: they are the next pipelined
 * command) or when out has fewer than SMTP_DATA_MAX_EXPANSION bytes
 * left. Returns the number of input bytes consumed; *outlen gets the
 * bytes written.
 */
#define SMTP_DATA_MAX_EXPANSION 8
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t inlen, char *out, size_t outcap,
    size_t *outlen);

#endif

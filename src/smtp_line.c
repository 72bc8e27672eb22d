/*
 * smtp_line.c: see smtp_line.h.
 */
#include "smtp_line.h"

#include <string.h>

/* Without a complete line, only a full line's worth of bytes says it is
 * too long: drop them, and the rest up to its end when it comes. */
static enum smtp_line_status no_line_end(struct smtp_line *l, struct buf *in)
{
	bool reported = l->skipping;

	if (buf_len(in) < COMMAND_LINE_MAX)
		return SMTP_LINE_WAIT;
	buf_consume(in, buf_len(in));
	l->skipping = true;
	return reported ? SMTP_LINE_WAIT : SMTP_LINE_LONG_WAIT;
}

enum smtp_line_status smtp_line_next(struct smtp_line *l, struct buf *in, char line[COMMAND_LINE_MAX + 1],
    size_t *len)
{
	const char *p = buf_peek(in);
	const char *nl = buf_empty(in) ? NULL : memchr(p, '\n', buf_len(in));

	if (nl == NULL)
		return no_line_end(l, in);
	l->used = (size_t)(nl - p) + 1;
	*len = l->used - 1;
	if (*len > 0 && p[*len - 1] == '\r')
		(*len)--;
	if (l->skipping || *len >= COMMAND_LINE_MAX) {
		enum smtp_line_status st = l->skipping ? SMTP_LINE_SKIPPED : SMTP_LINE_LONG;
		l->skipping = false;
		buf_consume(in, l->used);
		return st;
	}
	memcpy(line, p, *len);
	line[*len] = '\0';
	return SMTP_LINE_READY;
}

void smtp_line_consume(struct smtp_line *l, struct buf *in)
{
	buf_consume(in, l->used);
	l->used = 0;
}

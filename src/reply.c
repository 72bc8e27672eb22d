/*
 * reply.c: see reply.h.
 */
#include "reply.h"

#include <stdio.h>
#include <string.h>

/* Commands stop while less than this is free for their own replies. */
#define REPLY_RESERVE 1200

void reply_v(struct io *io, const char *fmt, va_list ap)
{
	char line[REPLY_LINE_MAX];
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);

	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = sizeof(line) - 3;
	memcpy(line + n, "\r\n", 2);
	/* reply_has_room() guarantees the room: commands stop before it runs out. */
	buf_append(io_out(io), line, (size_t)n + 2);
	io_update(io);
}

void reply(struct io *io, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_v(io, fmt, ap);
	va_end(ap);
}

void reply_answer(struct io *io, const struct smtp_reply *r, const char *default_detail)
{
	char enh[16];

	if (r->code / 100 == 3) {
		reply(io, "%d %s", r->code, r->text);
		return;
	}
	if (r->enhanced[0])
		snprintf(enh, sizeof(enh), "%s", r->enhanced);
	else
		snprintf(enh, sizeof(enh), "%d.%s", r->code / 100, default_detail);
	reply(io, "%d %s %s", r->code, enh, r->text);
}

bool reply_has_room(struct io *io, unsigned owed)
{
	return buf_room(io_out(io)) >= REPLY_RESERVE + REPLY_LINE_MAX * owed;
}

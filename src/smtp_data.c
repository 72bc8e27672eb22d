#include "smtp_data.h"

#include <stdlib.h>
#include <string.h>

/*
 * Where we are in the client's byte stream. Only the *_DOT and *_DOT_CR
 * states hold bytes back (they may be a terminator); every other state
 * has emitted everything it consumed except a pending CR. A byte that
 * only decides the fate of the previous ones (the byte after a bare CR)
 * is not consumed: the loop sees it again in the new state, so each step
 * writes at most 4 bytes.
 *
 * The terminator is only recognised from DS_REAL_BOL (and, for a bare-LF
 * dot line, DS_LF_BOL), i.e. right after a line end that was already
 * emitted, so the output always ends at a line start and never needs a
 * final CRLF added.
 */
enum data_state {
	DS_REAL_BOL = 0, /* line start after a real CRLF (or the DATA command's) */
	DS_LF_BOL,       /* line start after a bare LF: taken literally */
	DS_CR_BOL,       /* line start after a bare CR: taken literally */
	DS_REAL_DOT,     /* "." at a real line start: a stuffed dot, or the terminator */
	DS_REAL_DOT_CR,  /* ".\r" at a real line start: the terminator if LF follows */
	DS_LF_DOT,       /* "." after a bare LF: content, or a bare-LF dot line */
	DS_LF_DOT_CR,    /* ".\r" after a bare LF: "<LF>.<CR><LF>" if LF follows */
	DS_MID,          /* inside a line whose start is settled */
	DS_CR,           /* CR seen: CRLF if LF follows, else a bare CR */
};

#define TERMINATOR_TAIL 3 /* ".\r\n"; the CRLF before it ends the last content line */

void smtp_data_init(struct smtp_data *d, bool accept_lf_dot)
{
	memset(d, 0, sizeof(*d));
	d->state = DS_REAL_BOL;
	d->accept_lf_dot = accept_lf_dot;
}

static void emit(char *out, size_t *o, const char *s, size_t n)
{
	memcpy(out + *o, s, n);
	*o += n;
}

/* A byte inside a line, or one that starts a line with anything but a dot. */
static enum data_state data_plain(char c, char *out, size_t *o)
{
	if (c == '\r')
		return DS_CR;
	if (c == '\n') {
		/* Bare LF: the client ended a line without CR; say it properly. */
		emit(out, o, "\r\n", 2);
		return DS_LF_BOL;
	}
	out[(*o)++] = c;
	return DS_MID;
}

/* Length of the run of ordinary line bytes at in[0..n), at most max.
 * Two memchr() calls (vectorised by libc) instead of a byte loop: the run
 * ends at the line's LF, or at a CR before it. */
static size_t plain_run(const char *in, size_t n, size_t max)
{
	if (n > max)
		n = max;
	const char *lf = memchr(in, '\n', n);
	size_t end = lf != NULL ? (size_t)(lf - in) : n;
	const char *cr = memchr(in, '\r', end);
	return cr != NULL ? (size_t)(cr - in) : end;
}

/* The held dot was stuffing: drop it. The line now starts with c (not
 * CR or LF), which needs stuffing if a dot. */
static enum data_state line_after_stuffing(char c, char *out, size_t *o)
{
	if (c == '.')
		out[(*o)++] = '.';
	out[(*o)++] = c;
	return DS_MID;
}

/* The "." lines with a bare LF at one end, as the log names them, and how
 * many of their bytes are the terminator's when accepted. */
struct lf_dot {
	const char *name;
	size_t tail;
};
static const struct lf_dot LF_DOT_LF = { "<LF>.<LF>", 2 };
static const struct lf_dot CRLF_DOT_LF = { "<CR><LF>.<LF>", 2 };
static const struct lf_dot LF_DOT_CRLF = { "<LF>.<CR><LF>", 3 };

/* Such a line is the end of the data when the setting says so (*tail set
 * to its length), else content "." that the session remembers, to explain
 * a client that then waits. */
static enum data_state lf_dot_line(struct smtp_data *d, const struct lf_dot *how, size_t *tail,
    enum data_state next, char *out, size_t *o)
{
	if (d->accept_lf_dot) {
		d->done = true;
		*tail = how->tail;
		return next;
	}
	if (d->lf_dot_seen == NULL)
		d->lf_dot_seen = how->name;
	emit(out, o, "..\r\n", 4);
	return next;
}

size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t inlen, char *out, size_t outcap,
    size_t *outlen)
{
	enum data_state st = (enum data_state)d->state;
	size_t i = 0, o = 0, tail = TERMINATOR_TAIL;

	*outlen = 0;
	if (d->done)
		return 0;
	while (i < inlen && !d->done && outcap - o >= SMTP_DATA_MAX_EXPANSION) {
		char c = in[i];

		switch (st) {
		case DS_MID:
			if (c != '\r' && c != '\n') {
				/* The bulk of any message: copy the whole run of
				 * ordinary bytes (as far as out has room) at once. */
				size_t k = plain_run(in + i, inlen - i, outcap - o);
				emit(out, &o, in + i, k);
				i += k;
				break;
			}
			st = data_plain(c, out, &o);
			i++;
			break;
		case DS_REAL_BOL:
			/* Hold a leading dot back until we know what it is. */
			st = c == '.' ? DS_REAL_DOT : data_plain(c, out, &o);
			i++;
			break;
		case DS_CR_BOL:
			/* The client did not see a line start here, so a dot is
			 * content; it starts an output line, so it is stuffed. */
			if (c == '.') {
				emit(out, &o, "..", 2);
				st = DS_MID;
			} else {
				st = data_plain(c, out, &o);
			}
			i++;
			break;
		case DS_LF_BOL:
			/* The same, but a lone dot here is what LF-only clients
			 * mean as the end: hold it back. */
			st = c == '.' ? DS_LF_DOT : data_plain(c, out, &o);
			i++;
			break;
		case DS_LF_DOT:
			if (c == '\n') {
				i++;
				st = lf_dot_line(d, &LF_DOT_LF, &tail, DS_LF_BOL, out, &o);
			} else if (c == '\r') {
				i++;
				st = DS_LF_DOT_CR;
			} else if (d->accept_lf_dot) {
				/* An LF-only client stuffs dots too: the held one was
				 * stuffing, as at a real line start. */
				st = line_after_stuffing(c, out, &o);
				i++;
			} else {
				/* Content starting with a dot; c (not consumed) follows it. */
				emit(out, &o, "..", 2);
				st = DS_MID;
			}
			break;
		case DS_LF_DOT_CR:
			if (c == '\n') {
				i++;
				st = lf_dot_line(d, &LF_DOT_CRLF, &tail, DS_REAL_BOL, out, &o);
			} else {
				/* Content "." ended by a bare CR; c (not consumed) starts the next line. */
				emit(out, &o, "..\r\n", 4);
				st = DS_CR_BOL;
			}
			break;
		case DS_REAL_DOT:
			i++;
			if (c == '\r') {
				st = DS_REAL_DOT_CR;
			} else if (c == '\n') {
				/* Never the standard end. */
				st = lf_dot_line(d, &CRLF_DOT_LF, &tail, DS_LF_BOL, out, &o);
			} else {
				st = line_after_stuffing(c, out, &o);
			}
			break;
		case DS_REAL_DOT_CR:
			if (c == '\n') {
				i++;
				d->done = true;
				break;
			}
			/* ".\r" then not LF: content "." ended by a bare CR;
			 * c (not consumed) starts the next line. */
			emit(out, &o, "..\r\n", 4);
			st = DS_CR_BOL;
			break;
		case DS_CR:
			emit(out, &o, "\r\n", 2);
			if (c == '\n') {
				i++;
				st = DS_REAL_BOL;
			} else {
				/* Bare CR; c (not consumed) starts the next line. */
				st = DS_CR_BOL;
			}
			break;
		default:
			abort(); /* cannot happen: state is private */
		}
	}
	d->state = st;
	d->in_bytes += i;
	if (d->done)
		d->in_bytes -= tail;
	d->out_bytes += o;
	*outlen = o;
	return i;
}

/*
 * headers.c: see headers.h.
 *
 * in[] holds the field being read, and the lines after it that are read
 * already; `scanned` is where the next unsplit line starts. A field is
 * complete when a line that is not a continuation (SP or HT first)
 * starts. What is written waits in out[] until the sink has room; the
 * filter takes more bytes only once out[] is empty, so out[] never holds
 * more than one buffer of input plus what the rules add.
 */
#include "headers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A buffer of input, the From: replacement, and Reply-To: and
 * X-Original-From: copies of a From: value (at most a buffer each). */
#define OUT_CAP (3 * HEADERS_FIELD_MAX + 1024 + HEADERS_ADDED_MAX)

enum overlong { OVERLONG_NONE, OVERLONG_PASS, OVERLONG_DROP };

struct header_filter {
	const struct header_rules *rules;
	const struct header_sink *sink;
	bool in_body;
	char *in;                  /* HEADERS_FIELD_MAX; freed once in the body */
	size_t inlen, scanned;
	enum overlong overlong;    /* the rest of a field longer than in[] */
	bool mid_line;             /* ... which was cut inside a line */
	char *out;                 /* OUT_CAP; freed once in the body */
	size_t outlen, outoff;
	char *from_value;          /* the original From: value, from after the colon to its CRLF */
	size_t from_len;
	bool from_done, reply_to_seen, date_seen, message_id_seen;
};

bool header_rules_active(const struct header_rules *rules)
{
	return rules->from != NULL || rules->nstrip > 0 || rules->prepend != NULL || rules->date != NULL ||
	    rules->message_id != NULL;
}

static void emit(struct header_filter *f, const char *p, size_t n)
{
	/* Cannot overflow: see OUT_CAP and header_filter_space(). */
	memcpy(f->out + f->outlen, p, n);
	f->outlen += n;
}

static void emit_str(struct header_filter *f, const char *s)
{
	emit(f, s, strlen(s));
}

/* The field's name: the bytes before the colon, without trailing blanks. */
static bool field_is(const char *field, size_t len, const char *name)
{
	const char *colon = memchr(field, ':', len);
	size_t n;

	if (colon == NULL)
		return false;
	n = (size_t)(colon - field);
	while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\t'))
		n--;
	return n == strlen(name) && strncasecmp(field, name, n) == 0;
}

static bool stripped(const struct header_filter *f, const char *field, size_t len)
{
	for (unsigned i = 0; i < f->rules->nstrip; i++)
		if (field_is(field, len, f->rules->strip[i]))
			return true;
	return false;
}

/* field NULL: there is no original value to keep (none, or too long). */
static void replace_from(struct header_filter *f, const char *field, size_t len)
{
	const char *colon = field != NULL ? memchr(field, ':', len) : NULL;

	f->from_done = true;
	if (colon != NULL && (f->from_value = malloc(len)) != NULL) {
		f->from_len = len - (size_t)(colon + 1 - field);
		memcpy(f->from_value, colon + 1, f->from_len);
	}
	emit_str(f, "From: <");
	emit_str(f, f->rules->from);
	emit_str(f, ">\r\n");
}

/* A complete field (with its CRLF). */
static void on_field(struct header_filter *f, const char *field, size_t len)
{
	if (stripped(f, field, len))
		return;
	if (f->rules->from != NULL && !f->from_done && field_is(field, len, "From")) {
		replace_from(f, field, len);
		return;
	}
	f->reply_to_seen |= field_is(field, len, "Reply-To");
	f->date_seen |= field_is(field, len, "Date");
	f->message_id_seen |= field_is(field, len, "Message-ID");
	emit(f, field, len);
}

/* A field that does not fit in[]: its start is written now (or dropped),
 * and the rest of it (the line it was cut in, its continuation lines)
 * follows the same way. */
static void on_overlong(struct header_filter *f)
{
	bool more = f->overlong != OVERLONG_NONE && (f->mid_line || f->in[0] == ' ' || f->in[0] == '\t');

	f->mid_line = f->in[f->inlen - 1] != '\n';
	if (more) {
		if (f->overlong == OVERLONG_PASS)
			emit(f, f->in, f->inlen); /* more of the same field */
	} else if (stripped(f, f->in, f->inlen)) {
		f->overlong = OVERLONG_DROP;
	} else if (f->rules->from != NULL && !f->from_done && field_is(f->in, f->inlen, "From")) {
		replace_from(f, NULL, 0); /* too long to keep as Reply-To: */
		f->overlong = OVERLONG_DROP;
	} else {
		emit(f, f->in, f->inlen);
		f->overlong = OVERLONG_PASS;
	}
	f->inlen = f->scanned = 0;
}

/* The end of the section: what the rules add goes before the line that
 * ends it (the empty line, or the first line that is not a field). */
static void end_section(struct header_filter *f)
{
	if (f->rules->from != NULL && !f->from_done)
		replace_from(f, NULL, 0);
	if (f->from_value != NULL) {
		if (!f->reply_to_seen) {
			emit_str(f, "Reply-To:");
			emit(f, f->from_value, f->from_len);
		}
		emit_str(f, "X-Original-From:");
		emit(f, f->from_value, f->from_len);
	}
	if (f->rules->date != NULL && !f->date_seen)
		emit_str(f, f->rules->date);
	if (f->rules->message_id != NULL && !f->message_id_seen)
		emit_str(f, f->rules->message_id);
	emit(f, f->in, f->inlen); /* the ending line and the body read so far */
	f->inlen = f->scanned = 0;
	f->in_body = true;
}

static bool starts_field(const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);

	if (colon == NULL || colon == line)
		return false;
	for (const char *p = line; p < colon; p++)
		if (*p <= ' ' || *p == 127)
			return p > line && (*p == ' ' || *p == '\t') && strspn(p, " \t") == (size_t)(colon - p);
	return true;
}

/* Splits what in[] holds into lines and acts on each complete field. */
static void scan(struct header_filter *f)
{
	while (!f->in_body) {
		char *line = f->in + f->scanned;
		char *lf = memchr(line, '\n', f->inlen - f->scanned);
		if (lf == NULL)
			return;
		size_t len = (size_t)(lf + 1 - line);
		bool continuation = line[0] == ' ' || line[0] == '\t' || f->mid_line;
		if (f->scanned == 0 && f->overlong != OVERLONG_NONE) {
			f->mid_line = false;
			if (continuation) {
				if (f->overlong == OVERLONG_PASS)
					emit(f, line, len);
				memmove(f->in, f->in + len, f->inlen - len);
				f->inlen -= len;
				continue;
			}
			f->overlong = OVERLONG_NONE;
		}
		if (f->scanned > 0 && continuation) {
			f->scanned += len;
			continue;
		}
		if (f->scanned > 0) {
			/* The next field starts: the one before it is complete. */
			on_field(f, f->in, f->scanned);
			memmove(f->in, f->in + f->scanned, f->inlen - f->scanned);
			f->inlen -= f->scanned;
			f->scanned = 0;
			continue;
		}
		if (!starts_field(line, len)) {
			end_section(f);
			return;
		}
		f->scanned = len;
	}
}

static void flush(struct header_filter *f)
{
	size_t room, left = f->outlen - f->outoff;

	while (left > 0) {
		char *space = f->sink->space(f->sink->ctx, 1, &room);
		if (room == 0)
			return; /* the sink calls its writable event */
		size_t n = room < left ? room : left;
		memcpy(space, f->out + f->outoff, n);
		f->sink->commit(f->sink->ctx, n);
		f->outoff += n;
		left -= n;
	}
	f->outlen = f->outoff = 0;
}

struct header_filter *header_filter_new(const struct header_rules *rules, const struct header_sink *sink)
{
	struct header_filter *f = calloc(1, sizeof(*f));

	if (f == NULL || (f->in = malloc(HEADERS_FIELD_MAX)) == NULL || (f->out = malloc(OUT_CAP)) == NULL) {
		header_filter_free(f);
		return NULL;
	}
	f->rules = rules;
	f->sink = sink;
	if (rules->prepend != NULL)
		emit_str(f, rules->prepend); /* goes out with the first bytes */
	return f;
}

char *header_filter_space(struct header_filter *f, size_t need, size_t *room)
{
	if (f->outlen > 0)
		flush(f);
	if (f->outlen > 0) {
		*room = 0;
		return f->out;
	}
	if (f->in_body) {
		free(f->in);
		free(f->out);
		f->in = f->out = NULL;
		return f->sink->space(f->sink->ctx, need, room);
	}
	if (HEADERS_FIELD_MAX - f->inlen < need) {
		on_overlong(f); /* in[] holds one unfinished field */
		flush(f);
		return header_filter_space(f, need, room);
	}
	*room = HEADERS_FIELD_MAX - f->inlen;
	return f->in + f->inlen;
}

void header_filter_commit(struct header_filter *f, size_t n)
{
	if (f->in_body && f->in == NULL) {
		f->sink->commit(f->sink->ctx, n);
		return;
	}
	f->inlen += n;
	scan(f);
	if (!f->in_body && f->inlen == HEADERS_FIELD_MAX)
		on_overlong(f);
	flush(f);
}

bool header_filter_end(struct header_filter *f)
{
	flush(f);
	if (f->outlen > 0)
		return false; /* out[] must be empty before the last of in[] goes in */
	if (!f->in_body) {
		/* A message that is all header: its last field is complete. */
		if (f->scanned > 0 && f->overlong == OVERLONG_NONE)
			on_field(f, f->in, f->scanned);
		else if (f->overlong == OVERLONG_PASS)
			emit(f, f->in, f->scanned);
		memmove(f->in, f->in + f->scanned, f->inlen - f->scanned);
		f->inlen -= f->scanned;
		f->scanned = 0;
		end_section(f);
	}
	flush(f);
	return f->outlen == 0;
}

void header_filter_free(struct header_filter *f)
{
	if (f == NULL)
		return;
	free(f->in);
	free(f->out);
	free(f->from_value);
	free(f);
}

/*
 * mailmsg.c: see mailmsg.h. The input is read one line at a time; header
 * fields are held until their last continuation line, the body is
 * written out line by line.
 */
#include "mailmsg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addrlist.h"

/* A line or a held field: a growable buffer. */
struct text {
	char *p;
	size_t len, cap;
};

struct reader {
	FILE *in;
	const struct mailmsg_opts *o;
	struct mailmsg *m;
	struct text line;          /* the current input line, without its LF (and CR) */
	struct text field;         /* the header field held, canonical (CRLF lines) */
	bool has_from;
	enum mailmsg_status status;
	char *err;
	size_t errlen;
};

static bool text_add(struct text *t, const char *p, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;
		while (cap < t->len + n + 1)
			cap *= 2;
		char *bigger = realloc(t->p, cap);
		if (bigger == NULL)
			return false;
		t->p = bigger;
		t->cap = cap;
	}
	memcpy(t->p + t->len, p, n);
	t->len += n;
	t->p[t->len] = '\0';
	return true;
}

static bool fail(struct reader *r, enum mailmsg_status st, const char *why)
{
	r->status = st;
	snprintf(r->err, r->errlen, "%s", why);
	return false;
}

static bool too_big(const struct reader *r, size_t more)
{
	return r->o->max_size > 0 && r->m->len + more > r->o->max_size;
}

/* Appends canonical bytes to the message. */
static bool emit(struct reader *r, const char *p, size_t n)
{
	struct text t = { r->m->data, r->m->len, r->m->cap };

	if (too_big(r, n))
		return fail(r, MAILMSG_TOO_BIG, "message too big");
	if (!text_add(&t, p, n))
		return fail(r, MAILMSG_READ_ERROR, "out of memory");
	r->m->data = t.p;
	r->m->len = t.len;
	r->m->cap = t.cap;
	return true;
}

/* One line, dot-stuffed, CRLF added, into t. */
static bool add_line(struct text *t, const char *p, size_t n)
{
	return (n == 0 || p[0] != '.' || text_add(t, ".", 1)) && text_add(t, p, n) && text_add(t, "\r\n", 2);
}

/* Reads the next line into r->line; false at the end of input (or on
 * an error, with r->status set). */
static bool read_line(struct reader *r)
{
	int c;

	r->line.len = 0;
	if (r->line.p != NULL)
		r->line.p[0] = '\0';
	while ((c = getc(r->in)) != EOF && c != '\n') {
		char ch = (char)c;
		if (too_big(r, r->line.len))
			return fail(r, MAILMSG_TOO_BIG, "message too big");
		if (!text_add(&r->line, &ch, 1))
			return fail(r, MAILMSG_READ_ERROR, "out of memory");
		r->m->eight_bit |= c >= 0x80;
	}
	if (c == EOF && ferror(r->in))
		return fail(r, MAILMSG_READ_ERROR, strerror(errno));
	if (c == EOF && r->line.len == 0)
		return false;
	if (r->line.len > 0 && r->line.p[r->line.len - 1] == '\r')
		r->line.p[--r->line.len] = '\0';
	/* Without -i, a "." line alone ends the message, as for sendmail. */
	return !(r->o->dot_ends && r->line.len == 1 && r->line.p[0] == '.');
}

static bool add_rcpt(const char *addr, void *arg)
{
	struct mailmsg *m = arg;
	char **bigger = realloc(m->rcpts, (m->nrcpts + 1) * sizeof(*bigger));

	if (bigger == NULL)
		return false;
	m->rcpts = bigger;
	if ((m->rcpts[m->nrcpts] = strdup(addr)) == NULL)
		return false;
	m->nrcpts++;
	return true;
}

/* The held field's name is `name` (any case). */
static bool field_is(const struct text *f, const char *name)
{
	size_t n = strlen(name);
	return f->len > n && f->p[n] == ':' && strncasecmp(f->p, name, n) == 0;
}

/* The held field is complete: take its recipients, drop it or keep it. */
static bool end_field(struct reader *r)
{
	struct text *f = &r->field;
	bool bcc = field_is(f, "Bcc");

	if (f->len == 0)
		return true;
	r->has_from |= field_is(f, "From");
	if (r->o->extract && (bcc || field_is(f, "To") || field_is(f, "Cc"))) {
		const char *value = (const char *)memchr(f->p, ':', f->len) + 1;
		char why[300];
		if (!addrlist_parse(value, f->len - (size_t)(value - f->p), add_rcpt, r->m, why, sizeof(why)))
			return fail(r, why[0] ? MAILMSG_BAD_HEADER : MAILMSG_READ_ERROR, why[0] ? why : "out of memory");
	}
	bool ok = bcc || emit(r, f->p, f->len);
	f->len = 0;
	return ok;
}

/* "Name:" starts a field: printable characters other than ':' and a colon. */
static bool starts_field(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] > ' ' && p[i] < 0x7f && p[i] != ':')
		i++;
	return i > 0 && i < n && p[i] == ':';
}

/* The header section; true when a body follows (r->line holds its first
 * line, or "" after the blank line). */
static bool read_headers(struct reader *r, bool *body)
{
	*body = false;
	while (read_line(r)) {
		const char *p = r->line.p;
		size_t n = r->line.len;
		if (n > 0 && (p[0] == ' ' || p[0] == '\t') && r->field.len > 0) {
			if (!add_line(&r->field, p, n))
				return fail(r, MAILMSG_READ_ERROR, "out of memory");
			continue;
		}
		if (!end_field(r))
			return false;
		if (n > 0 && starts_field(p, n)) {
			if (!add_line(&r->field, p, n))
				return fail(r, MAILMSG_READ_ERROR, "out of memory");
			continue;
		}
		*body = true;
		break;
	}
	if (r->status != MAILMSG_OK || !end_field(r))
		return false;
	if (!r->has_from && r->o->from_field != NULL && !emit(r, r->o->from_field, strlen(r->o->from_field)))
		return false;
	return true;
}

static bool read_body(struct reader *r)
{
	struct text out = { 0 };
	bool ok = true;

	/* The line that ended the headers: "" (the blank line) or the first
	 * body line, after which a blank line is owed. */
	if (r->line.len > 0)
		ok = emit(r, "\r\n", 2);
	do {
		out.len = 0;
		ok = ok && (add_line(&out, r->line.p != NULL ? r->line.p : "", r->line.len) ||
		    fail(r, MAILMSG_READ_ERROR, "out of memory"));
		ok = ok && emit(r, out.p, out.len);
	} while (ok && read_line(r));
	free(out.p);
	return ok && r->status == MAILMSG_OK;
}

enum mailmsg_status mailmsg_read(FILE *in, const struct mailmsg_opts *o, struct mailmsg *m, char *err, size_t errlen)
{
	struct reader r = { .in = in, .o = o, .m = m, .status = MAILMSG_OK, .err = err, .errlen = errlen };
	bool body;

	memset(m, 0, sizeof(*m));
	if (read_headers(&r, &body) && body)
		read_body(&r);
	free(r.line.p);
	free(r.field.p);
	/* An empty message is still data: DATA needs something before "." */
	if (r.status == MAILMSG_OK && m->data == NULL)
		emit(&r, "", 0);
	return r.status;
}

void mailmsg_free(struct mailmsg *m)
{
	for (unsigned i = 0; i < m->nrcpts; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	free(m->data);
	memset(m, 0, sizeof(*m));
}

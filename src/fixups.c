/*
 * fixups.c: see fixups.h.
 */
#include "fixups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "headers.h"

struct fixups {
	const struct backend *to;
	struct tx *tx;
	struct header_rules rules;
	struct header_sink sink;
	struct header_filter *filter;
	struct backend as_backend;
	struct fixup_fields fields;
};

static char *sink_space(void *ctx, size_t need, size_t *room)
{
	struct fixups *f = ctx;

	return f->to->ops->body_space(f->to->impl, need, room);
}

static void sink_commit(void *ctx, size_t n)
{
	struct fixups *f = ctx;

	f->to->ops->body_commit(f->to->impl, f->tx, n);
}

static char *fixed_space(void *b, size_t need, size_t *room)
{
	struct fixups *f = b;

	return header_filter_space(f->filter, need, room);
}

static void fixed_commit(void *b, struct tx *tx, size_t n)
{
	struct fixups *f = b;

	(void)tx;
	header_filter_commit(f->filter, n);
}

/* The body pump uses nothing else. */
static const struct backend_ops fixed_ops = {
	.body_space = fixed_space,
	.body_commit = fixed_commit,
};

/* "[IP]" from "IP:PORT" or "[IP]:PORT". */
static void peer_ip(const char *peer, char *out, size_t len)
{
	const char *end = peer[0] == '[' ? strchr(peer, ']') : strrchr(peer, ':');
	const char *start = peer[0] == '[' ? peer + 1 : peer;
	int n = end != NULL ? (int)(end - start) : (int)strlen(start);

	snprintf(out, len, "[%.*s]", n, start);
}

void fixups_compose(struct fixup_fields *out, const struct fixup_facts *facts, const char *id, const char *rcpt)
{
	char now[64], ip[80], for_rcpt[SMTP_PATH_MAX + 16] = "";
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(now, sizeof(now), "%a, %d %b %Y %H:%M:%S %z", &tm);
	/* "for" names the recipient only when there is one (RFC 5321 4.4: it
	 * would disclose the others). */
	if (rcpt != NULL)
		snprintf(for_rcpt, sizeof(for_rcpt), "\r\n\tfor <%s>", rcpt);
	if (facts->peer != NULL) {
		peer_ip(facts->peer, ip, sizeof(ip));
		snprintf(out->received, sizeof(out->received),
		    "Received: from %.255s (%s)\r\n\tby %.255s (subrelay) with %s id %s%s;\r\n\t%s\r\n",
		    facts->helo, ip, facts->hostname, facts->with, id, for_rcpt, now);
	} else {
		/* No client host: the form local MTAs use for a local user. */
		snprintf(out->received, sizeof(out->received),
		    "Received: by %.255s (subrelay, from userid %lu)\r\n\tid %s%s;\r\n\t%s\r\n", facts->hostname,
		    facts->uid, id, for_rcpt, now);
	}
	snprintf(out->date, sizeof(out->date), "Date: %s\r\n", now);
	snprintf(out->message_id, sizeof(out->message_id), "Message-ID: <%s@%.255s>\r\n", id, facts->hostname);
}

struct fixups *fixups_start(const struct backend *to, struct tx *tx, const struct fixup_facts *facts)
{
	struct fixups *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->to = to;
	f->tx = tx;
	fixups_compose(&f->fields, facts, tx->id, tx->nrcpts == 1 ? tx->rcpts[0].addr : NULL);
	f->rules = (struct header_rules){ .prepend = f->fields.received, .date = f->fields.date,
		.message_id = f->fields.message_id };
	f->sink = (struct header_sink){ .space = sink_space, .commit = sink_commit, .ctx = f };
	f->as_backend = (struct backend){ .ops = &fixed_ops, .impl = f };
	if ((f->filter = header_filter_new(&f->rules, &f->sink)) == NULL) {
		free(f);
		return NULL;
	}
	return f;
}

const struct backend *fixups_backend(const struct fixups *f)
{
	return &f->as_backend;
}

bool fixups_end(struct fixups *f)
{
	return header_filter_end(f->filter);
}

void fixups_free(struct fixups *f)
{
	if (f == NULL)
		return;
	header_filter_free(f->filter);
	free(f);
}

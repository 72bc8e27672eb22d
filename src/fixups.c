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
	char received[SMTP_PATH_MAX + 1200]; /* every part at its longest */
	char date[80];
	char message_id[ID_LEN + 300];
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

static void compose(struct fixups *f, const struct fixup_facts *facts)
{
	char now[64], ip[80], rcpt[SMTP_PATH_MAX + 16] = "";
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(now, sizeof(now), "%a, %d %b %Y %H:%M:%S %z", &tm);
	peer_ip(facts->peer, ip, sizeof(ip));
	/* "for" names the recipient only when there is one (RFC 5321 4.4: it
	 * would disclose the others). */
	if (f->tx->nrcpts == 1)
		snprintf(rcpt, sizeof(rcpt), "\r\n\tfor <%s>", f->tx->rcpts[0].addr);
	snprintf(f->received, sizeof(f->received), "Received: from %.255s (%s)\r\n\tby %.255s (subrelay) with %s id %s%s;\r\n\t%s\r\n",
	    facts->helo, ip, facts->hostname, facts->with, f->tx->id, rcpt, now);
	snprintf(f->date, sizeof(f->date), "Date: %s\r\n", now);
	snprintf(f->message_id, sizeof(f->message_id), "Message-ID: <%s@%.255s>\r\n", f->tx->id, facts->hostname);
}

struct fixups *fixups_start(const struct backend *to, struct tx *tx, const struct fixup_facts *facts)
{
	struct fixups *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->to = to;
	f->tx = tx;
	compose(f, facts);
	f->rules = (struct header_rules){ .prepend = f->received, .date = f->date, .message_id = f->message_id };
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

/*
 * headers: a message's header section rewritten on its way out, in a
 * stream (the provider's verified sender in From:, fields it would
 * refuse removed). The body is never touched and never held.
 *
 * The filter sits in front of a sink (the upstream session's output):
 * the caller asks it for room and commits canonical message bytes
 * (smtp_data.h: CRLF lines, dot-stuffed) exactly as it would to the sink.
 * In the header section each field, with its folded continuation lines,
 * is held until it is complete (at most HEADERS_FIELD_MAX bytes; a longer
 * one passes through as it is, or is cut when it is to be removed), then
 * written out changed or not. After the section the caller writes
 * straight into the sink. Memory is bounded whatever the message.
 *
 * With `from` set, the From: field becomes "From: <from>"; the original
 * value is kept as Reply-To: (unless the message has one) and as
 * X-Original-From:, both added at the end of the section. `prepend`
 * goes before the section (a Received: trace field); `date` and
 * `message_id` are added at its end when it has no such field.
 */
#ifndef SUBRELAY_HEADERS_H
#define SUBRELAY_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

#define HEADERS_FIELD_MAX 8192

/* Added lines are complete fields, CRLF included, at most
 * HEADERS_ADDED_MAX bytes in all. */
#define HEADERS_ADDED_MAX 2048

struct header_rules {
	const char *from;           /* the From: address; NULL: From: unchanged */
	char *const *strip;         /* field names removed (any case) */
	unsigned nstrip;
	const char *prepend;        /* put before the section; NULL: nothing */
	const char *date;           /* "Date: ...\r\n" when the section has none; NULL: never */
	const char *message_id;     /* "Message-ID: ...\r\n" likewise */
};

struct header_sink {
	/* As upstream_body_space(): room below `need` means wait. */
	char *(*space)(void *ctx, size_t need, size_t *room);
	void (*commit)(void *ctx, size_t n);
	void *ctx;
};

struct header_filter;

/* Whether rules change anything (no filter is needed otherwise). */
bool header_rules_active(const struct header_rules *rules);
/* rules and sink must outlive the filter; NULL when out of memory. */
struct header_filter *header_filter_new(const struct header_rules *rules, const struct header_sink *sink);
/* Room for message bytes; *room below `need`: wait until the sink has
 * room (its writable event), then ask again. */
char *header_filter_space(struct header_filter *f, size_t need, size_t *room);
void header_filter_commit(struct header_filter *f, size_t n);
/* The message ends: what is held goes out. False while the sink has no
 * room for it: ask again after its writable event. */
bool header_filter_end(struct header_filter *f);
void header_filter_free(struct header_filter *f);

#endif

/*
 * test_headers: the header filter (headers.h) on whole messages, fed in
 * every chunking from one byte at a time to all at once, into a sink that
 * takes few bytes per call (a slow provider): the output is the same,
 * the header section rewritten as the rules say, the body untouched.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "headers.h"

struct sink_state {
	char buf[1 << 20];
	size_t len;
	size_t per_call;           /* room the sink offers per call, at least `need` (0: all) */
	bool blocked;              /* offers no room until unblocked (a full socket) */
};

static char *sink_space(void *ctx, size_t need, size_t *room)
{
	struct sink_state *s = ctx;
	size_t free_room = sizeof(s->buf) - s->len;

	size_t offer = s->per_call > need ? s->per_call : need;

	*room = s->blocked ? 0 : s->per_call && offer < free_room ? offer : free_room;
	return s->buf + s->len;
}

static void sink_commit(void *ctx, size_t n)
{
	struct sink_state *s = ctx;
	s->len += n;
}

static struct sink_state sink_state;

/* Runs msg through a filter in chunks of `chunk` bytes (0: one go), with
 * the sink offering `per_call` bytes a call and blocking every other
 * call when `stall`; returns the output (static). */
static const char *run(const struct header_rules *rules, const char *msg, size_t chunk, size_t per_call, bool stall,
    size_t *outlen)
{
	struct header_sink sink = { sink_space, sink_commit, &sink_state };
	struct header_filter *f;
	size_t len = strlen(msg), off = 0, room;
	unsigned calls = 0;

	sink_state.len = 0;
	sink_state.per_call = per_call;
	sink_state.blocked = false;
	f = header_filter_new(rules, &sink);
	CHECK(f != NULL);
	while (off < len) {
		sink_state.blocked = stall && (calls++ % 2 == 1);
		size_t want = chunk ? chunk : len - off;
		if (want > len - off)
			want = len - off;
		char *space = header_filter_space(f, want < 8 ? want : 8, &room);
		if (room < (want < 8 ? want : 8))
			continue; /* the sink was blocked: "writable" comes on the next turn */
		size_t n = want < room ? want : room;
		memcpy(space, msg + off, n);
		header_filter_commit(f, n);
		off += n;
	}
	for (unsigned i = 0; i < 100000; i++) {
		sink_state.blocked = stall && (calls++ % 2 == 1);
		if (header_filter_end(f))
			break;
	}
	header_filter_free(f);
	*outlen = sink_state.len;
	sink_state.buf[sink_state.len] = '\0';
	return sink_state.buf;
}

/* The same output for every chunking and sink. */
static void check_filter(const struct header_rules *rules, const char *msg, const char *want, int line)
{
	static const size_t chunks[] = { 1, 2, 3, 7, 64, 1000, 0 };
	static const size_t rooms[] = { 1, 5, 0 };
	size_t len;

	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++)
		for (size_t r = 0; r < sizeof(rooms) / sizeof(rooms[0]); r++)
			for (int stall = 0; stall < 2; stall++) {
				const char *got = run(rules, msg, chunks[c], rooms[r], stall, &len);
				if (len != strlen(want) || memcmp(got, want, len) != 0) {
					fprintf(stderr, "line %d (chunk %zu, room %zu, stall %d):\n", line, chunks[c], rooms[r],
					    stall);
					CHECK_MEM(got, len, want, strlen(want));
					return;
				}
				check_passed++;
			}
}

#define FILTER(rules, msg, want) check_filter(rules, msg, want, __LINE__)

static char *strip_dkim[] = { "DKIM-Signature", "received" };

static void test_from(void)
{
	struct header_rules r = { .from = "relay@example.com" };

	FILTER(&r, "From: Cron Daemon <root@host.local>\r\nSubject: s\r\n\r\nbody\r\n",
	    "From: <relay@example.com>\r\nSubject: s\r\n"
	    "Reply-To: Cron Daemon <root@host.local>\r\nX-Original-From: Cron Daemon <root@host.local>\r\n"
	    "\r\nbody\r\n");
	/* Folded From:, and a Reply-To: already there (kept, not added). */
	FILTER(&r, "Reply-To: a@x.example\r\nfrom: A\r\n <a@x.example>\r\n\r\nFrom: in the body\r\n",
	    "Reply-To: a@x.example\r\nFrom: <relay@example.com>\r\nX-Original-From: A\r\n <a@x.example>\r\n"
	    "\r\nFrom: in the body\r\n");
	/* No From: at all: one is added. */
	FILTER(&r, "Subject: none\r\n\r\nx\r\n", "Subject: none\r\nFrom: <relay@example.com>\r\n\r\nx\r\n");
	/* All header, no body. */
	FILTER(&r, "From: a@x.example\r\n", "From: <relay@example.com>\r\nReply-To: a@x.example\r\n"
	    "X-Original-From: a@x.example\r\n");
	/* Only the first From: (a second one is passed on as it is). */
	FILTER(&r, "From: a@x.example\r\nFrom: b@x.example\r\n\r\n",
	    "From: <relay@example.com>\r\nFrom: b@x.example\r\nReply-To: a@x.example\r\n"
	    "X-Original-From: a@x.example\r\n\r\n");
	/* "From :" (obsolete blank before the colon) is From: too. */
	FILTER(&r, "From : a@x.example\r\n\r\n", "From: <relay@example.com>\r\nReply-To: a@x.example\r\n"
	    "X-Original-From: a@x.example\r\n\r\n");
}

static void test_strip(void)
{
	struct header_rules r = { .strip = strip_dkim, .nstrip = 2 };

	FILTER(&r,
	    "Received: from a\r\n\tby b; Mon, 1 Jan 2024\r\nDKIM-Signature: v=1; a=rsa-sha256;\r\n b=abc\r\n"
	    " def\r\nSubject: kept\r\ndkim-signature: v=1\r\n\r\nDKIM-Signature: in the body stays\r\n",
	    "Subject: kept\r\n\r\nDKIM-Signature: in the body stays\r\n");
	/* A field whose name only starts the same is kept. */
	FILTER(&r, "DKIM-Signature-X: 1\r\nReceivedx: 2\r\n\r\n", "DKIM-Signature-X: 1\r\nReceivedx: 2\r\n\r\n");
}

static void test_section_end(void)
{
	struct header_rules r = { .from = "v@example.com" };

	/* A line that is not a field ends the section: what is added goes before it. */
	FILTER(&r, "Subject: s\r\nnot a header line\r\nFrom: body\r\n",
	    "Subject: s\r\nFrom: <v@example.com>\r\nnot a header line\r\nFrom: body\r\n");
	/* Dot-stuffed lines pass untouched, in the body and as the line that ends the section. */
	FILTER(&r, "From: a@x\r\n\r\n..\r\n...x\r\n", "From: <v@example.com>\r\nReply-To: a@x\r\n"
	    "X-Original-From: a@x\r\n\r\n..\r\n...x\r\n");
}

/* Fields longer than the filter holds: passed on as they are (or cut when
 * stripped); From: is still replaced, without a copy of its value. */
static void test_overlong(void)
{
	static char msg[6 * HEADERS_FIELD_MAX], want[6 * HEADERS_FIELD_MAX];
	struct header_rules strip = { .strip = strip_dkim, .nstrip = 2 };
	struct header_rules from = { .from = "v@example.com" };
	char big[HEADERS_FIELD_MAX + 100];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(msg, sizeof(msg), "X-Long: %s\r\n %s\r\nDKIM-Signature: %s\r\n %s\r\nSubject: s\r\n\r\nb\r\n", big,
	    big, big, big);
	snprintf(want, sizeof(want), "X-Long: %s\r\n %s\r\nSubject: s\r\n\r\nb\r\n", big, big);
	FILTER(&strip, msg, want);
	snprintf(msg, sizeof(msg), "From: %s\r\n %s\r\nSubject: s\r\n\r\nb\r\n", big, big);
	FILTER(&from, msg, "From: <v@example.com>\r\nSubject: s\r\n\r\nb\r\n");
}

/* The body streams untouched whatever it holds, and nothing is held back. */
static void test_body_untouched(void)
{
	static char msg[300000], want[300000];
	struct header_rules r = { .strip = strip_dkim, .nstrip = 2 };
	size_t n = 0, w = 0;

	n += (size_t)snprintf(msg + n, sizeof(msg) - n, "Received: x\r\nSubject: big\r\n\r\n");
	w += (size_t)snprintf(want + w, sizeof(want) - w, "Subject: big\r\n\r\n");
	for (unsigned i = 0; i < 3000; i++) {
		int k = snprintf(msg + n, sizeof(msg) - n, "Received: line %u of the body, From: x\r\n", i);
		memcpy(want + w, msg + n, (size_t)k);
		n += (size_t)k;
		w += (size_t)k;
	}
	want[w] = '\0';
	FILTER(&r, msg, want);
}

static void test_added_fields(void)
{
	struct header_rules r = { .prepend = "Received: x\r\n", .date = "Date: D\r\n", .message_id = "Message-ID: <i>\r\n" };

	FILTER(&r, "Subject: s\r\n\r\nb\r\n", "Received: x\r\nSubject: s\r\nDate: D\r\nMessage-ID: <i>\r\n\r\nb\r\n");
	/* Present (any case, folded): not added again. */
	FILTER(&r, "DATE: Mon,\r\n 1 Jan\r\nmessage-id: <m>\r\n\r\nb\r\n",
	    "Received: x\r\nDATE: Mon,\r\n 1 Jan\r\nmessage-id: <m>\r\n\r\nb\r\n");
	/* An empty message still gets them. */
	FILTER(&r, "", "Received: x\r\nDate: D\r\nMessage-ID: <i>\r\n");
}

static void test_rules_active(void)
{
	struct header_rules none = { 0 }, from = { .from = "a@b" }, strip = { .strip = strip_dkim, .nstrip = 1 };

	CHECK(!header_rules_active(&none));
	CHECK(header_rules_active(&from));
	CHECK(header_rules_active(&strip));
}

int main(void)
{
	test_from();
	test_strip();
	test_section_end();
	test_overlong();
	test_body_untouched();
	test_added_fields();
	test_rules_active();
	return check_summary("test_headers");
}

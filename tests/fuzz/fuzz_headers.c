/*
 * fuzz_headers: the header filter (headers.h) on a message as the
 * upstream session gives it: the input after its first three bytes is
 * canonicalised by smtp_data (as every message is), then committed in
 * pieces (byte 0: the split) into a filter whose sink offers little room
 * and sometimes none (byte 1: how little, how often), with the rules
 * chosen by byte 2. Invariants:
 *
 *  - the filter terminates: every commit is taken, and the end is
 *    accepted within a bounded number of writable events;
 *  - the output is bounded: the input plus what the rules may add;
 *  - the body is untouched: the output ends with the input from its
 *    first empty line on (the section ended there at the latest);
 *  - the output is the same for any split and any sink.
 */
#include <string.h>

#include "fuzz.h"
#include "headers.h"
#include "smtp_data.h"

#define ADDED_MAX (3 * HEADERS_FIELD_MAX + 1024 + HEADERS_ADDED_MAX)

struct sink {
	char *buf;
	size_t len, cap;
	size_t per_call;           /* room offered per call, at least `need` */
	unsigned stall_every;      /* every Nth call offers nothing (0: never) */
	unsigned calls;
};

static char *sink_space(void *ctx, size_t need, size_t *room)
{
	struct sink *s = ctx;
	size_t offer = s->per_call > need ? s->per_call : need;

	s->calls++;
	if (s->stall_every > 0 && s->calls % s->stall_every == 0)
		offer = 0;
	FUZZ_CHECK(s->len <= s->cap);
	*room = offer < s->cap - s->len ? offer : s->cap - s->len;
	return s->buf + s->len;
}

static void sink_commit(void *ctx, size_t n)
{
	struct sink *s = ctx;
	FUZZ_CHECK(n <= s->cap - s->len);
	s->len += n;
}

/* Runs msg through a filter; the output is left in s. */
static void run(const struct header_rules *rules, const char *msg, size_t len, struct fuzz_chunks *chunks,
    struct sink *s)
{
	struct header_sink hs = { sink_space, sink_commit, s };
	struct header_filter *f = header_filter_new(rules, &hs);
	size_t off = 0, room, waits = 0;

	FUZZ_CHECK(f != NULL);
	while (off < len) {
		size_t want = fuzz_chunk(chunks, len - off), need = want < 8 ? want : 8;
		char *space = header_filter_space(f, need, &room);
		if (room < need) {
			FUZZ_CHECK(++waits < 1000000); /* the sink's writable event, again */
			continue;
		}
		size_t n = want < room ? want : room;
		memcpy(space, msg + off, n);
		header_filter_commit(f, n);
		off += n;
	}
	unsigned tries = 0;
	while (!header_filter_end(f))
		FUZZ_CHECK(++tries < 100000);
	header_filter_free(f);
}

/* Where the body surely starts: the first empty line (or 0 when the
 * message starts with one); len when there is none. */
static size_t first_empty_line(const char *msg, size_t len)
{
	if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
		return 0;
	for (size_t i = 0; i + 4 <= len; i++)
		if (memcmp(msg + i, "\r\n\r\n", 4) == 0)
			return i + 2;
	return len;
}

/* The message as the provider gets it: canonical, dot-stuffed. */
static size_t canonical(const char *in, size_t len, char *out)
{
	struct smtp_data d;
	size_t outlen = 0, pos = 0;

	smtp_data_init(&d, false);
	while (pos < len && !d.done) {
		size_t o = 0;
		pos += smtp_data_feed(&d, in + pos, len - pos, out + outlen, 2 * len + 16 - outlen, &o);
		outlen += o;
	}
	return outlen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *const strip[] = { "X-Secret", "Bcc", "Received" };
	if (size < 3)
		return 0;
	uint8_t split_seed = data[0], sink_seed = data[1], rule_bits = data[2];
	struct header_rules rules = {
		.from = rule_bits & 1 ? "relay@example.com" : NULL,
		.strip = strip,
		.nstrip = rule_bits & 2 ? 3 : 0,
		.prepend = rule_bits & 4 ? "Received: from client by relay; Sat, 5 Dec 2026 11:00:00 +0000\r\n" : NULL,
		.date = rule_bits & 8 ? "Date: Sat, 5 Dec 2026 11:00:00 +0000\r\n" : NULL,
		.message_id = rule_bits & 16 ? "Message-ID: <fuzz@relay.example.com>\r\n" : NULL,
	};
	size_t rawlen = size - 3;
	char *msg = malloc(2 * rawlen + 16);
	FUZZ_CHECK(msg != NULL);
	size_t len = canonical((const char *)data + 3, rawlen, msg);
	size_t bound = len + ADDED_MAX;
	struct sink a = { .buf = malloc(bound), .cap = bound, .per_call = 1 << 20 };
	struct sink b = { .buf = malloc(bound), .cap = bound, .per_call = 1 + sink_seed % 64,
		.stall_every = (sink_seed >> 6) + 2 };
	FUZZ_CHECK(a.buf != NULL && b.buf != NULL);
	struct fuzz_chunks whole, split;
	fuzz_chunks_init(&whole, 0);
	fuzz_chunks_init(&split, split_seed);

	run(&rules, msg, len, &whole, &a);
	run(&rules, msg, len, &split, &b);

	size_t body = first_empty_line(msg, len);
	if (body < len)
		FUZZ_CHECK(a.len >= len - body && memcmp(a.buf + a.len - (len - body), msg + body, len - body) == 0);
	FUZZ_CHECK(b.len == a.len && memcmp(a.buf, b.buf, a.len) == 0);
	free(msg);
	free(a.buf);
	free(b.buf);
	return 0;
}

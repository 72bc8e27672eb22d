/*
 * Unit tests for the DATA canonicaliser: the smuggling vectors, every
 * split of the input across calls, small output buffers, and a fuzz loop
 * checked against the invariants and a line-by-line reference model.
 */
#include "smtp_data.h"

#include <stdint.h>
#include <stdlib.h>

#include "check.h"

#define BIG 16384

struct run {
	char out[BIG];
	size_t outlen;
	size_t consumed;
	bool done;
	bool stalled;          /* a call made no progress */
	uint64_t in_bytes, out_bytes;
	const char *lf_dot_seen;
};

static uint32_t rng_state = 20240611;

static uint32_t rng(void)
{
	/* xorshift32: the same sequence on every libc */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

enum split { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM };

static size_t chunk_len(enum split how, size_t left)
{
	size_t n = left;

	if (how == SPLIT_BYTES)
		n = 1;
	else if (how == SPLIT_RANDOM)
		n = 1 + rng() % 7;
	return n < left ? n : left;
}

/* Feeds in[0..len) in chunks as a session would: a chunk is offered until
 * it is consumed or the data ends, through an output buffer of outcap. */
static void feed_mode(const char *in, size_t len, enum split how, size_t outcap, bool accept_lf_dot,
    struct run *r)
{
	struct smtp_data d;
	char tmp[BIG];
	size_t pos = 0;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&d, accept_lf_dot);
	while (pos < len && !d.done) {
		size_t end = pos + chunk_len(how, len - pos);
		while (pos < end && !d.done) {
			size_t o, n = smtp_data_feed(&d, in + pos, end - pos, tmp, outcap, &o);
			if ((n == 0 && o == 0) || r->outlen + o > sizeof(r->out)) {
				r->stalled = true;
				return;
			}
			memcpy(r->out + r->outlen, tmp, o);
			r->outlen += o;
			pos += n;
		}
	}
	r->consumed = pos;
	r->done = d.done;
	r->in_bytes = d.in_bytes;
	r->out_bytes = d.out_bytes;
	r->lf_dot_seen = d.lf_dot_seen;
}

static void feed(const char *in, size_t len, enum split how, size_t outcap, struct run *r)
{
	feed_mode(in, len, how, outcap, false, r);
}

/* Runs one input through every split and several output sizes and
 * checks each against the expectation. */
static void check_canon_mode(const char *in, size_t inlen, bool accept_lf_dot, const char *want, size_t wantlen,
    size_t want_consumed, size_t want_tail)
{
	static const size_t caps[] = { SMTP_DATA_MAX_EXPANSION, SMTP_DATA_MAX_EXPANSION + 1, 13, BIG };
	static struct run r;
	size_t c;
	int how;

	for (how = SPLIT_WHOLE; how <= SPLIT_RANDOM; how++) {
		for (c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
			feed_mode(in, inlen, (enum split)how, caps[c], accept_lf_dot, &r);
			CHECK(!r.stalled);
			CHECK_MEM(r.out, r.outlen, want, wantlen);
			CHECK(r.done);
			CHECK(r.consumed == want_consumed);
			CHECK(r.in_bytes == want_consumed - want_tail);
			CHECK(r.out_bytes == r.outlen);
		}
	}
}

static void check_canon(const char *in, size_t inlen, const char *want, size_t wantlen,
    size_t want_consumed)
{
	check_canon_mode(in, inlen, false, want, wantlen, want_consumed, 3);
}

#define HIDDEN "MAIL FROM:<evil@x>\r\n"
#define TERM "\r\n.\r\n"
#define NEXT "QUIT\r\n"

/*
 * A smuggling vector: the client's bytes, then a hidden command, then
 * the real terminator and a pipelined command that must stay unconsumed.
 * Tried at the start of the data and after a first line.
 */
static void check_vector(const char *vec, const char *vec_out)
{
	static const char *const prefixes[][2] = { { "", "" }, { "hello\r\n", "hello\r\n" } };
	char in[512], want[512];
	size_t p;

	for (p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
		int inlen = snprintf(in, sizeof(in), "%s%s%s%s%s", prefixes[p][0], vec, HIDDEN, TERM, NEXT);
		int wantlen = snprintf(want, sizeof(want), "%s%s%s\r\n", prefixes[p][1], vec_out, HIDDEN);
		check_canon(in, (size_t)inlen, want, (size_t)wantlen, (size_t)inlen - strlen(NEXT));
	}
}

static void test_vectors(void)
{
	check_vector("..leading\r\n", "..leading\r\n");
	check_vector(".x\r\n", "x\r\n");
	check_vector("a\nb", "a\r\nb");
	check_vector("a\rb", "a\r\nb");
	check_vector("\n.\n", "\r\n..\r\n");
	check_vector("\r\n.\n", "\r\n..\r\n");
	check_vector("\n.\r\n", "\r\n..\r\n");
	check_vector("\r.\r\n", "\r\n..\r\n");
	/* More ways to fake an end. */
	check_vector("a\n.\n", "a\r\n..\r\n");
	check_vector("a\r.\r", "a\r\n..\r\n");
	check_vector("a\r\n.\rb\r\n", "a\r\n..\r\nb\r\n");
	check_vector("a\r\n.\r\r\n", "a\r\n..\r\n\r\n");
	check_vector("a\r\r\n", "a\r\n\r\n");
	check_vector("a\r\n..\r\n", "a\r\n..\r\n");
	check_vector("a\r\n...\r\n", "a\r\n...\r\n");
	check_vector("a\r.b\r\n", "a\r\n..b\r\n");
	check_vector("a\n\n", "a\r\n\r\n");
	check_vector(".\n", "..\r\n");
	check_vector(".\r.\r\n", "..\r\n..\r\n");
	check_vector("\r\n", "\r\n");
	/* After a bare LF a dot is literal content, stuffed on the way out. */
	check_vector("a\n.x\r\n", "a\r\n..x\r\n");
	check_vector("a\n..\r\n", "a\r\n...\r\n");
}

static void test_simple(void)
{
	static const char hdr_in[] = "a\n.\nMAIL FROM:<x>\r\n.\r\n";
	static const char hdr_out[] = "a\r\n..\r\nMAIL FROM:<x>\r\n";
	static const char empty[] = ".\r\n" NEXT;
	static const char abc[] = "abc\r\n.\r\n";
	static const char bin[] = "a\0b\xff\x80\r\n.\r\n";

	/* The example of smtp_data.h. */
	check_canon(hdr_in, sizeof(hdr_in) - 1, hdr_out, sizeof(hdr_out) - 1, sizeof(hdr_in) - 1);
	/* The empty message: the DATA command's CRLF starts the terminator. */
	check_canon(empty, sizeof(empty) - 1, "", 0, 3);
	check_canon(abc, sizeof(abc) - 1, "abc\r\n", 5, sizeof(abc) - 1);
	/* NUL and 8-bit bytes are content. */
	check_canon(bin, sizeof(bin) - 1, "a\0b\xff\x80\r\n", 7, sizeof(bin) - 1);
}

static void test_api_edges(void)
{
	struct smtp_data d;
	char out[64];
	size_t o = 99, n;

	smtp_data_init(&d, false);
	/* Too little room: nothing consumed, nothing written. */
	n = smtp_data_feed(&d, "abc", 3, out, SMTP_DATA_MAX_EXPANSION - 1, &o);
	CHECK(n == 0 && o == 0);
	/* Nothing to feed. */
	n = smtp_data_feed(&d, "", 0, out, sizeof(out), &o);
	CHECK(n == 0 && o == 0 && !d.done);
	/* A pending CR at the end of a chunk produces nothing yet. */
	n = smtp_data_feed(&d, "ab\r", 3, out, sizeof(out), &o);
	CHECK(n == 3);
	CHECK_MEM(out, o, "ab", 2);
	n = smtp_data_feed(&d, "\n.", 2, out, sizeof(out), &o);
	CHECK(n == 2);
	CHECK_MEM(out, o, "\r\n", 2);
	n = smtp_data_feed(&d, "\r", 1, out, sizeof(out), &o);
	CHECK(n == 1 && o == 0 && !d.done);
	n = smtp_data_feed(&d, "\nRSET\r\n", 7, out, sizeof(out), &o);
	CHECK(n == 1 && o == 0 && d.done);
	CHECK(d.in_bytes == 4 && d.out_bytes == 4);
	/* After the end nothing more is taken. */
	n = smtp_data_feed(&d, "RSET\r\n", 6, out, sizeof(out), &o);
	CHECK(n == 0 && o == 0 && d.in_bytes == 4);
}

/*
 * Reference model, written from the header comment line by line rather
 * than byte by byte. Returns false when the input ends inside a line.
 * *seen: the first bare-LF dot line taken as content (NULL: none).
 */
enum line_end { END_CRLF, END_LF, END_CR };

static const char *lf_dot_name(enum line_end before, enum line_end after)
{
	if (before == END_CRLF && after == END_LF)
		return "<CR><LF>.<LF>";
	if (before == END_LF && after == END_LF)
		return "<LF>.<LF>";
	if (before == END_LF && after == END_CRLF)
		return "<LF>.<CR><LF>";
	return NULL;
}

static bool ref_canon(const char *in, size_t n, bool accept, char *out, size_t *outlen, size_t *consumed,
    const char **seen)
{
	size_t pos = 0, o = 0, e, len;
	enum line_end before = END_CRLF, after;
	const char *line;

	*seen = NULL;
	for (;;) {
		for (e = pos; e < n && in[e] != '\r' && in[e] != '\n'; e++)
			;
		if (e == n || (in[e] == '\r' && e + 1 == n))
			return false;
		after = in[e] == '\n' ? END_LF : in[e + 1] == '\n' ? END_CRLF : END_CR;
		line = in + pos;
		len = e - pos;
		bool lone_dot = len == 1 && line[0] == '.';
		if (lone_dot && ((before == END_CRLF && after == END_CRLF) ||
		    (accept && lf_dot_name(before, after) != NULL))) {
			*outlen = o;
			*consumed = e + (after == END_CRLF ? 2 : 1);
			return true;
		}
		if (lone_dot && *seen == NULL)
			*seen = lf_dot_name(before, after);
		/* A dot at a line start the client saw is stuffing, unless the
		 * line is a "." that did not end the data: then it is content. */
		bool client_bol = before == END_CRLF || (accept && before == END_LF);
		if (client_bol && len > 1 && line[0] == '.') {
			line++;
			len--;
		}
		if (len > 0 && line[0] == '.')
			out[o++] = '.';
		memcpy(out + o, line, len);
		o += len;
		out[o++] = '\r';
		out[o++] = '\n';
		pos = e + (after == END_CRLF ? 2 : 1);
		before = after;
	}
}

static bool has_bare_cr_lf(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'))
			return true;
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			return true;
	}
	return false;
}

static bool contains(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle), i;

	for (i = 0; i + k <= n; i++)
		if (memcmp(s + i, needle, k) == 0)
			return true;
	return false;
}

static bool same_name(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Without accept_lf_dot a "." line with a bare LF at one end is content,
 * remembered (the first one) to explain a client that then waits. */
static void test_lf_dot_remembered(void)
{
	static const char *const cases[][2] = {
		{ "a\n.\nb", "<LF>.<LF>" },
		{ "a\r\n.\nb", "<CR><LF>.<LF>" },
		{ ".\nb", "<CR><LF>.<LF>" },   /* the DATA command's CRLF before it */
		{ "a\n.\r\nb", "<LF>.<CR><LF>" },
		{ "a\n.\n.\r\nb", "<LF>.<LF>" }, /* the first one */
		{ "a\r.\nb", NULL },           /* a bare CR is no LF-only client */
		{ "a\r.\r\nb", NULL },
		{ "a\n.x\nb", NULL },
		{ "a\n..\nb", NULL },
		{ "a\r\n.b\nc", NULL },
	};
	static struct run r;
	char in[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int len = snprintf(in, sizeof(in), "%s%s%s", cases[i][0], TERM, NEXT);
		feed(in, (size_t)len, SPLIT_BYTES, BIG, &r);
		CHECK(r.done);
		CHECK(same_name(cases[i][1], r.lf_dot_seen));
		if (!same_name(cases[i][1], r.lf_dot_seen))
			fprintf(stderr, "case %zu: lf_dot_seen %s\n", i, r.lf_dot_seen ? r.lf_dot_seen : "NULL");
	}
}

/* With accept_lf_dot each of them ends the data; the rest stays canonical
 * and what follows is the next command. */
static void test_lf_dot_accepted(void)
{
	static const struct {
		const char *in, *out;
		size_t tail; /* terminator bytes: not counted in in_bytes */
	} cases[] = {
		{ "a\n.\n", "a\r\n", 2 },
		{ "a\r\n.\n", "a\r\n", 2 },
		{ ".\n", "", 2 },
		{ "a\n.\r\n", "a\r\n", 3 },
		{ "a\r\n.\r\n", "a\r\n", 3 },
		/* An LF-only client stuffs dots: unstuffed, then stuffed again. */
		{ "..x\n..\ny\n.\n", "..x\r\n..\r\ny\r\n", 2 },
		{ "a\n..\n.\n", "a\r\n..\r\n", 2 },
		{ "a\n.x\n.\n", "a\r\nx\r\n", 2 },
		/* Bare CRs still never end anything. */
		{ "a\r.\r\n.\n", "a\r\n..\r\n", 2 },
		{ "a\n.\rb\n.\n", "a\r\n..\r\nb\r\n", 2 },
	};
	char in[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int len = snprintf(in, sizeof(in), "%s%s", cases[i].in, NEXT);
		check_canon_mode(in, (size_t)len, true, cases[i].out, strlen(cases[i].out), strlen(cases[i].in),
		    cases[i].tail);
	}
	/* The header's example: the hidden command becomes the next one. */
	check_canon_mode("a\n.\nMAIL FROM:<x>\r\n.\r\n", 23, true, "a\r\n", 3, 4, 2);
}

static void test_fuzz(void)
{
	static const char alphabet[] = { '.', '\r', '\n', 'a' };
	static struct run whole, split;
	static char in[256], ref[1024], framed[BIG + 2];
	size_t len, i, reflen, refconsumed;
	int iter, bad = 0;

	for (iter = 0; iter < 20000 && bad < 5; iter++) {
		len = rng() % 48;
		for (i = 0; i < len; i++)
			in[i] = alphabet[rng() % sizeof(alphabet)];
		memcpy(in + len, TERM NEXT, strlen(TERM NEXT));
		len += strlen(TERM NEXT);

		bool accept = iter % 3 == 0;
		const char *seen;
		feed_mode(in, len, SPLIT_WHOLE, BIG, accept, &whole);
		feed_mode(in, len, (enum split)(iter % 2 ? SPLIT_BYTES : SPLIT_RANDOM),
		    SMTP_DATA_MAX_EXPANSION + iter % 5, accept, &split);
		memcpy(framed, "\r\n", 2);
		memcpy(framed + 2, whole.out, whole.outlen);

		bool ok = !whole.stalled && whole.done && !split.stalled &&
		    ref_canon(in, len, accept, ref, &reflen, &refconsumed, &seen) &&
		    whole.outlen == reflen && memcmp(whole.out, ref, reflen) == 0 &&
		    (accept ? whole.lf_dot_seen == NULL : same_name(whole.lf_dot_seen, seen)) &&
		    split.lf_dot_seen == whole.lf_dot_seen &&
		    whole.consumed == refconsumed && whole.consumed <= len - strlen(NEXT) &&
		    split.outlen == whole.outlen && memcmp(split.out, whole.out, whole.outlen) == 0 &&
		    split.consumed == whole.consumed &&
		    !contains(framed, whole.outlen + 2, "\r\n.\r\n") &&
		    !has_bare_cr_lf(whole.out, whole.outlen);
		CHECK(ok);
		if (!ok) {
			bad++;
			fprintf(stderr, "fuzz input (accept_lf_dot=%d):", accept);
			for (i = 0; i < len; i++)
				fprintf(stderr, " %02x", (unsigned char)in[i]);
			fprintf(stderr, "\n");
		}
	}
}

int main(void)
{
	test_vectors();
	test_simple();
	test_api_edges();
	test_lf_dot_remembered();
	test_lf_dot_accepted();
	test_fuzz();
	return check_summary("test_smtp_data");
}

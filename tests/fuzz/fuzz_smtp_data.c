/*
 * fuzz_smtp_data: the DATA canonicaliser (smtp_data.h) on what a client
 * sends after 354, in pieces as the network cuts it (first input byte:
 * the split) and through an output buffer as small as the session's
 * worst case (second byte; its top bit turns relay.accept_lf_dot on).
 * Invariants, checked on every input:
 *
 *  - the output has no bare CR and no bare LF;
 *  - every output line that starts with "." starts with ".." (dot
 *    stuffed), so no line is a lone "." (a terminator);
 *  - the end is found exactly at the first CRLF.CRLF of the stream
 *    (which starts after the DATA command's CRLF), and the bytes after
 *    it are left unconsumed; with none, everything is consumed; with
 *    accept_lf_dot, the end is a "." line (after a line end, before LF
 *    or CRLF) found no later than that;
 *  - once done, the output ends at a line start;
 *  - the output is the same for any split and any output buffer;
 *  - every call makes progress; out_bytes counts the output.
 */
#include <string.h>

#include "fuzz.h"
#include "smtp_data.h"

struct result {
	char *out;
	size_t outlen;
	size_t consumed;
	bool done;
};

/* Feeds in[0..len) as a session does: each piece offered until it is
 * consumed or the data ends, through an output buffer of outcap bytes. */
static void feed(const char *in, size_t len, struct fuzz_chunks *chunks, size_t outcap, bool lf_dot,
    struct result *r)
{
	struct smtp_data d;
	char tmp[256];
	size_t pos = 0;

	smtp_data_init(&d, lf_dot);
	r->outlen = 0;
	while (pos < len && !d.done) {
		size_t end = pos + fuzz_chunk(chunks, len - pos);
		while (pos < end && !d.done) {
			size_t o = 0, n = smtp_data_feed(&d, in + pos, end - pos, tmp, outcap, &o);
			FUZZ_CHECK(n > 0 || o > 0 || d.done);
			FUZZ_CHECK(o <= outcap);
			memcpy(r->out + r->outlen, tmp, o);
			r->outlen += o;
			pos += n;
		}
	}
	r->consumed = pos;
	r->done = d.done;
	FUZZ_CHECK(d.out_bytes == r->outlen);
}

static void check_canonical(const char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (out[i] == '\r')
			FUZZ_CHECK(i + 1 < n && out[i + 1] == '\n');
		if (out[i] == '\n')
			FUZZ_CHECK(i > 0 && out[i - 1] == '\r');
		bool line_start = i == 0 || out[i - 1] == '\n';
		if (line_start && out[i] == '.')
			FUZZ_CHECK(i + 1 < n && out[i + 1] == '.');
	}
}

/* Where the terminator ends in the input: the first CRLF.CRLF of
 * "\r\n" + input, or 0 when there is none. */
static size_t terminator_end(const char *in, size_t len)
{
	for (size_t i = 0; i + 3 <= len; i++) {
		/* i is the dot's position; the CRLF before it may be the DATA command's. */
		bool after_crlf = i == 0 || (i >= 2 && in[i - 2] == '\r' && in[i - 1] == '\n');
		if (after_crlf && in[i] == '.' && in[i + 1] == '\r' && in[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* accept_lf_dot: the consumed bytes end with a "." line, at the start or
 * after a line end, ended by LF or CRLF. */
static bool ends_with_dot_line(const char *in, size_t consumed)
{
	size_t dot;

	if (consumed >= 2 && in[consumed - 1] == '\n' && in[consumed - 2] == '.')
		dot = consumed - 2;
	else if (consumed >= 3 && in[consumed - 1] == '\n' && in[consumed - 2] == '\r' && in[consumed - 3] == '.')
		dot = consumed - 3;
	else
		return false;
	return dot == 0 || in[dot - 1] == '\n';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct fuzz_chunks whole, split;
	uint8_t cap_seed = data[1];
	bool lf_dot = (cap_seed & 0x80) != 0;
	fuzz_chunks_init(&whole, 0);
	fuzz_chunks_init(&split, data[0]);
	const char *in = (const char *)data + 2;
	size_t len = size - 2;
	size_t outmax = 2 * len + 4;   /* every byte doubled at worst (bare LF, stuffed dot), and a final CRLF */
	struct result a = { .out = malloc(outmax) }, b = { .out = malloc(outmax) };
	if (a.out == NULL || b.out == NULL)
		abort();

	feed(in, len, &whole, 256, lf_dot, &a);
	feed(in, len, &split, SMTP_DATA_MAX_EXPANSION + cap_seed % 32, lf_dot, &b);

	FUZZ_CHECK(a.outlen <= outmax);
	check_canonical(a.out, a.outlen);
	size_t end = terminator_end(in, len);
	if (!lf_dot) {
		FUZZ_CHECK(a.done == (end > 0));
		FUZZ_CHECK(a.consumed == (end > 0 ? end : len));
	} else {
		FUZZ_CHECK(a.done || (end == 0 && a.consumed == len));
		FUZZ_CHECK(!a.done || (ends_with_dot_line(in, a.consumed) && (end == 0 || a.consumed <= end)));
	}
	if (a.done)
		FUZZ_CHECK(a.outlen == 0 || (a.outlen >= 2 && a.out[a.outlen - 1] == '\n'));

	FUZZ_CHECK(b.done == a.done && b.consumed == a.consumed);
	FUZZ_CHECK(b.outlen == a.outlen && memcmp(a.out, b.out, a.outlen) == 0);
	free(a.out);
	free(b.out);
	return 0;
}

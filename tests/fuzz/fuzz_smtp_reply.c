/*
 * fuzz_smtp_reply: a provider's replies as upstream.c reads them: bytes
 * arrive in pieces (first input byte: the split) into the session's
 * bounded input buffer, smtp_reply_read() cuts lines and feeds them into
 * a struct smtp_reply, a complete reply is taken and the next begins; a
 * malformed line or an over-long one ends the session. Invariants:
 *
 *  - a complete reply has a 2yz..5yz code, its text and enhanced code
 *    are NUL-terminated in their arrays and hold no control byte (the
 *    text reaches logs and clients), nor do its EHLO keywords (one line
 *    each); log_quote() of the text holds no control byte either;
 *  - the replies read, and where reading ends, are the same for any split.
 */
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "log.h"
#include "smtp_parse.h"

#define INPUT_LIMIT (16 * 1024)    /* the upstream session's input buffer (upstream.c) */

static void check_no_ctl(const char *s, size_t cap, bool newlines_ok)
{
	size_t n = strnlen(s, cap);
	FUZZ_CHECK(n < cap);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(!fuzz_is_ctl((unsigned char)s[i]) || (newlines_ok && s[i] == '\n'));
}

static void check_reply(const struct smtp_reply *r)
{
	char quoted[2 * SMTP_REPLY_TEXT_MAX], params[128];

	FUZZ_CHECK(r->code >= 200 && r->code <= 599 && r->lines > 0);
	check_no_ctl(r->text, sizeof(r->text), false);
	check_no_ctl(r->enhanced, sizeof(r->enhanced), false);
	FUZZ_CHECK(r->enhanced[0] == '\0' || r->enhanced[0] == '0' + r->code / 100);
	check_no_ctl(r->ehlo, sizeof(r->ehlo), true);
	check_no_ctl(log_quote(quoted, sizeof(quoted), r->text), sizeof(quoted), false);
	if (smtp_ehlo_has(r, "AUTH", params, sizeof(params)))
		check_no_ctl(params, sizeof(params), false);
}

/* A digest of everything read, to compare splits: FNV-1a. */
static uint64_t mix(uint64_t h, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ull;
	return h;
}

/* Reads like upstream.c's read_replies(); returns the digest. */
static uint64_t read_all(const char *p, size_t left, struct fuzz_chunks *chunks)
{
	struct smtp_reply r;
	struct buf in;
	uint64_t h = 0xcbf29ce484222325ull;
	bool dead = false;

	smtp_reply_reset(&r);
	buf_init(&in, INPUT_LIMIT);
	while (left > 0 && !dead) {
		size_t n = fuzz_chunk(chunks, left);
		if (n > buf_room(&in))
			n = buf_room(&in);
		memcpy(buf_tail(&in), p, n);
		buf_commit(&in, n);
		p += n;
		left -= n;
		while (!dead && !buf_empty(&in)) {
			size_t used = 0;
			enum smtp_reply_step st = smtp_reply_read(&r, buf_peek(&in), buf_len(&in), &used);
			if (st == SMTP_REPLY_MORE) {
				dead = buf_len(&in) >= in.limit;  /* "reply line too long" */
				break;
			}
			FUZZ_CHECK(used > 0 && used <= buf_len(&in));
			buf_consume(&in, used);
			dead = st == SMTP_REPLY_BAD;        /* "malformed reply" */
			if (!dead && r.complete) {
				check_reply(&r);
				h = mix(h, &r.code, sizeof(r.code));
				h = mix(h, r.text, strlen(r.text) + 1);
				h = mix(h, r.enhanced, strlen(r.enhanced) + 1);
				h = mix(h, r.ehlo, strlen(r.ehlo) + 1);
				smtp_reply_reset(&r);
			}
		}
	}
	h = mix(h, &dead, sizeof(dead));
	buf_release(&in);
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct fuzz_chunks whole, split;
	fuzz_chunks_init(&whole, 0);
	fuzz_chunks_init(&split, data[0]);
	const char *in = (const char *)data + 1;

	FUZZ_CHECK(read_all(in, size - 1, &whole) == read_all(in, size - 1, &split));
	return 0;
}

/*
 * fuzz_smtp_parse: a client's command stream as the session reads it:
 * bytes arrive in pieces (first input byte: the split) into a bounded
 * input buffer, smtp_line cuts lines, smtp_parse_command parses each.
 * Invariants:
 *
 *  - a line handed out is shorter than COMMAND_LINE_MAX, NUL-terminated
 *    and holds no LF; the input never holds a whole line's worth of bytes
 *    without its end (the session cannot be made to hold more);
 *  - a parsed command's verb is the line's first word; its argument lies
 *    inside the line without trailing blanks;
 *  - a MAIL or RCPT path fits SMTP_PATH_MAX and holds no control byte
 *    (it reaches the provider and the logs); RCPT's is never empty;
 *  - a refusal always says why.
 */
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "smtp_line.h"
#include "smtp_parse.h"

#define INPUT_LIMIT (16 * 1024)    /* the session's input buffer (smtp_server.c) */

static void check_command(const char *line, size_t len)
{
	struct smtp_cmd cmd;
	const char *why = NULL;
	enum smtp_parse_result r = smtp_parse_command(line, len, &cmd, &why);

	FUZZ_CHECK(why != NULL);
	if (r != SMTP_PARSE_OK) {
		FUZZ_CHECK(why[0] != '\0');
		return;
	}
	const char *name = smtp_verb_name(cmd.verb);
	size_t vlen = strlen(name);
	FUZZ_CHECK(cmd.verb != SMTP_VERB_UNKNOWN);
	FUZZ_CHECK(vlen <= len && strncasecmp(line, name, vlen) == 0 && (vlen == len || line[vlen] == ' '));
	FUZZ_CHECK(cmd.arglen == 0 || (cmd.arg >= line && cmd.arg + cmd.arglen <= line + len));
	FUZZ_CHECK(cmd.arglen == 0 || (cmd.arg[cmd.arglen - 1] != ' ' && cmd.arg[cmd.arglen - 1] != '\t'));
	if (cmd.verb == SMTP_VERB_MAIL || cmd.verb == SMTP_VERB_RCPT) {
		size_t plen = strnlen(cmd.path, sizeof(cmd.path));
		FUZZ_CHECK(plen <= SMTP_PATH_MAX);
		for (size_t i = 0; i < plen; i++)
			FUZZ_CHECK(!fuzz_is_ctl((unsigned char)cmd.path[i]));
		FUZZ_CHECK(cmd.verb == SMTP_VERB_MAIL || plen > 0);
		(void)smtp_path_is_ascii(cmd.path);
	}
}

/* Takes every complete line out of the input. */
static void read_lines(struct smtp_line *l, struct buf *in)
{
	static char line[COMMAND_LINE_MAX + 1];
	size_t len;
	enum smtp_line_status st;

	while ((st = smtp_line_next(l, in, line, &len)) != SMTP_LINE_WAIT && st != SMTP_LINE_LONG_WAIT) {
		if (st != SMTP_LINE_READY)
			continue;
		FUZZ_CHECK(len < COMMAND_LINE_MAX && line[len] == '\0' && memchr(line, '\n', len) == NULL);
		check_command(line, len);
		smtp_line_consume(l, in);
	}
	FUZZ_CHECK(buf_len(in) < COMMAND_LINE_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct fuzz_chunks chunks;
	struct smtp_line l = { 0 };
	struct buf in;
	const char *p = (const char *)data + 1;
	size_t left = size - 1;

	fuzz_chunks_init(&chunks, data[0]);
	buf_init(&in, INPUT_LIMIT);
	while (left > 0) {
		size_t n = fuzz_chunk(&chunks, left);
		if (n > buf_room(&in))
			n = buf_room(&in);
		FUZZ_CHECK(n > 0);
		memcpy(buf_tail(&in), p, n);
		buf_commit(&in, n);
		p += n;
		left -= n;
		read_lines(&l, &in);
	}
	buf_release(&in);
	return 0;
}

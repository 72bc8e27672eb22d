/*
 * smtp_parse: SMTP command and reply parsing. Pure functions, no sockets.
 *
 * Commands (RFC 5321 section 4.1, with ESMTP parameters of RFC 1870
 * SIZE, RFC 6152 BODY=8BITMIME, RFC 6531 SMTPUTF8) are parsed from one
 * line without its CRLF. Replies from a provider are accumulated line by
 * line (multi-line `250-...` continuations) into struct smtp_reply.
 */
#ifndef SUBRELAY_SMTP_PARSE_H
#define SUBRELAY_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_PATH_MAX 256      /* RFC 5321 4.5.3.1.3 reverse/forward path */
#define SMTP_LINE_MAX 1000     /* command line incl. CRLF, 4.5.3.1.4 (we allow 2048 with SMTPUTF8) */
#define SMTP_REPLY_TEXT_MAX 512
/* Bounds on one reply: a provider that keeps sending "250-" lines must not
 * hold a transaction until the command timeout. Real replies (EHLO lists,
 * banners) stay well under them. */
#define SMTP_REPLY_LINES_MAX 100
#define SMTP_REPLY_BYTES_MAX 65536

#define SMTP_VERBS(X) \
	X(HELO) X(EHLO) X(MAIL) X(RCPT) X(DATA) X(RSET) X(NOOP) X(QUIT) X(VRFY) X(HELP) X(STARTTLS) X(AUTH) X(EXPN)

enum smtp_verb {
	SMTP_VERB_UNKNOWN,
#define X(v) SMTP_VERB_##v,
	SMTP_VERBS(X)
#undef X
};

const char *smtp_verb_name(enum smtp_verb v);

enum smtp_body { SMTP_BODY_DEFAULT, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

struct smtp_cmd {
	enum smtp_verb verb;
	const char *arg;           /* points into the line: text after the verb and one space, "" if none */
	size_t arglen;             /* bytes of arg, trailing spaces and tabs excluded (arg need not be NUL-terminated) */
	/* MAIL / RCPT only: */
	char path[SMTP_PATH_MAX + 1]; /* address without <>, "" for the null sender <> */
	bool unqualified;          /* path is a local part alone ("root"): the caller adds a domain */
	uint64_t size;             /* SIZE= value, 0 if absent */
	bool has_size;
	enum smtp_body body;
	bool smtputf8;
};

enum smtp_parse_result {
	SMTP_PARSE_OK,
	SMTP_PARSE_UNKNOWN,        /* 500 5.5.1: verb not recognised */
	SMTP_PARSE_SYNTAX,         /* 501 5.5.4 / 5.5.2: arguments wrong; *why says how */
	SMTP_PARSE_PARAM,          /* 555 5.5.4: unknown or bad MAIL/RCPT parameter */
};

/*
 * Parses one command line (no CRLF). `line` must stay alive while cmd->arg
 * is used. Verbs are case-insensitive. MAIL needs "FROM:<path>" (a space
 * after the colon is tolerated), RCPT "TO:<path>" with a non-empty path
 * (a local part alone is accepted and flagged `unqualified`). Paths: no control characters, no
 * spaces outside a quoted local part, length <= SMTP_PATH_MAX; source
 * routes (@a,@b:user@c) are accepted and stripped. Non-ASCII (valid UTF-8) in a path is
 * accepted here; the caller checks it against SMTPUTF8 with
 * smtp_path_is_ascii() and answers 553 5.6.7. On failure *why is a static human-readable reason.
 */
enum smtp_parse_result smtp_parse_command(const char *line, size_t len, struct smtp_cmd *cmd,
    const char **why);

bool smtp_path_is_ascii(const char *path);

/* A provider's reply, possibly multi-line. */
struct smtp_reply {
	int code;                  /* 3 digits, 0 until the first line is seen */
	char enhanced[16];         /* "2.1.0" if the first line carries one, else "" */
	char text[SMTP_REPLY_TEXT_MAX]; /* text of the lines after code (and enhanced code), joined by "; " (truncated) */
	unsigned lines;
	size_t bytes;              /* of the lines so far, without their line ends */
	bool too_long;             /* refused for passing SMTP_REPLY_LINES_MAX or SMTP_REPLY_BYTES_MAX */
	bool complete;             /* the last line ("250 ...", not "250-...") arrived */
	/* EHLO keywords gathered from every line after the first, upper-cased, space-separated, e.g.
	 * "PIPELINING SIZE 10240000 STARTTLS AUTH PLAIN LOGIN" lines joined by '\n'. */
	char ehlo[1024];
};

void smtp_reply_reset(struct smtp_reply *r);
/*
 * Feeds one reply line (no CRLF). Returns false if the line is not a
 * valid reply line (no 3-digit code, or a code that differs from the
 * first line's, or a separator other than ' ' or '-'), or if the reply
 * grows past SMTP_REPLY_LINES_MAX lines or SMTP_REPLY_BYTES_MAX bytes.
 */
bool smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len);

enum smtp_reply_step {
	SMTP_REPLY_MORE,           /* no complete line yet: nothing used */
	SMTP_REPLY_LINE,           /* a line fed to r (r->complete: the reply is whole) */
	SMTP_REPLY_BAD,            /* a line that smtp_reply_feed() refused */
};
/*
 * The provider's input as upstream.c reads it: takes the next line from
 * in[0..n) (it ends at LF; a CR before the LF is dropped) and feeds it to
 * r. For LINE and BAD, *used is the line's bytes with its end, to consume.
 */
enum smtp_reply_step smtp_reply_read(struct smtp_reply *r, const char *in, size_t n, size_t *used);

/* True if the EHLO reply lists `keyword` (case-insensitive); its parameters
 * ("" if none, e.g. "PLAIN LOGIN" for AUTH) are copied to params[paramslen]. */
bool smtp_ehlo_has(const struct smtp_reply *r, const char *keyword, char *params, size_t paramslen);

#endif

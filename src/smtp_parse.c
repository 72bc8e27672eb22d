#include "smtp_parse.h"

#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *const verb_names[] = {
	[SMTP_VERB_UNKNOWN] = "UNKNOWN",
#define X(v) [SMTP_VERB_##v] = #v,
	SMTP_VERBS(X)
#undef X
};

/*
 * What each verb takes as argument, and what to say when it is wrong.
 * Checking lives here; doing is the session's business.
 */
enum arg_rule {
	ARG_NONE,       /* nothing but trailing blanks */
	ARG_ANY,        /* optional free text */
	ARG_REQUIRED,   /* free text, not empty */
	ARG_DOMAIN,     /* HELO/EHLO: a domain or an address literal */
	ARG_MAIL,       /* FROM:<path> [params] */
	ARG_RCPT,       /* TO:<path> */
};

static const struct verb_rule {
	enum arg_rule rule;
	const char *why;
} verb_rules[] = {
	[SMTP_VERB_UNKNOWN]  = { ARG_ANY, NULL },
	[SMTP_VERB_HELO]     = { ARG_DOMAIN, "HELO needs a domain or address literal" },
	[SMTP_VERB_EHLO]     = { ARG_DOMAIN, "EHLO needs a domain or address literal" },
	[SMTP_VERB_MAIL]     = { ARG_MAIL, "syntax: MAIL FROM:<address>" },
	[SMTP_VERB_RCPT]     = { ARG_RCPT, "syntax: RCPT TO:<address>" },
	[SMTP_VERB_DATA]     = { ARG_NONE, "DATA takes no argument" },
	[SMTP_VERB_RSET]     = { ARG_NONE, "RSET takes no argument" },
	[SMTP_VERB_NOOP]     = { ARG_ANY, NULL },
	[SMTP_VERB_QUIT]     = { ARG_NONE, "QUIT takes no argument" },
	[SMTP_VERB_VRFY]     = { ARG_REQUIRED, "VRFY needs an argument" },
	[SMTP_VERB_HELP]     = { ARG_ANY, NULL },
	[SMTP_VERB_STARTTLS] = { ARG_NONE, "STARTTLS takes no argument" },
	[SMTP_VERB_AUTH]     = { ARG_REQUIRED, "AUTH needs a mechanism" },
	[SMTP_VERB_EXPN]     = { ARG_REQUIRED, "EXPN needs an argument" },
};

_Static_assert(ARRAY_LEN(verb_rules) == ARRAY_LEN(verb_names), "every verb needs an argument rule");

const char *smtp_verb_name(enum smtp_verb v)
{
	if ((size_t)v >= ARRAY_LEN(verb_names))
		return "UNKNOWN";
	return verb_names[v];
}

/* Character classes, ASCII only: the protocol is, and the locale must not matter. */

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 5322 atext; bytes >= 0x80 are UTF-8 (RFC 6531), checked separately. */
static bool is_atext(unsigned char c)
{
	return is_alnum(c) || c >= 0x80 || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static char ascii_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* s[0..n) starts with the C string prefix, ignoring ASCII case. */
static bool ascii_iprefix(const char *s, size_t n, const char *prefix)
{
	size_t i;

	for (i = 0; prefix[i] != '\0'; i++)
		if (i >= n || ascii_upper(s[i]) != ascii_upper(prefix[i]))
			return false;
	return true;
}

static bool ascii_ieq(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && ascii_iprefix(s, n, word);
}

bool smtp_path_is_ascii(const char *path)
{
	for (; *path != '\0'; path++)
		if ((unsigned char)*path >= 0x80)
			return false;
	return true;
}

/* Length of the well-formed UTF-8 sequence at s[0..n), 0 if malformed
 * (truncated, overlong, surrogate, beyond U+10FFFF). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	size_t len, k;
	unsigned long cp, min;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k;

	while (i < n) {
		k = utf8_seq_len(u + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

/* ---- domains ---- */

#define DOM_UNDERSCORE 1 /* HELO names: Windows host names often have one */
#define DOM_UTF8       2 /* envelope domains may be U-labels (RFC 6531) */

/* RFC 5321 address-literal: "[" 1*dtext "]"; "[IPv6:...]" is dtext too. */
static bool valid_literal(const char *s, size_t n)
{
	size_t i;

	if (n < 3 || s[0] != '[' || s[n - 1] != ']')
		return false;
	for (i = 1; i < n - 1; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']')
			return false;
	}
	return true;
}

/* Dot-separated labels of letters, digits and hyphens, 1..63 bytes each,
 * 255 in all, or an address literal. */
static bool valid_domain(const char *s, size_t n, int flags)
{
	size_t i, label = 0;

	if (n == 0 || n > 255)
		return false;
	if (s[0] == '[')
		return valid_literal(s, n);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!is_alnum(c) && c != '-' && !(c == '_' && (flags & DOM_UNDERSCORE)) &&
		    !(c >= 0x80 && (flags & DOM_UTF8)))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

/* ---- paths ---- */

/*
 * Length of the local part at the start of s[0..n): a quoted string, or
 * atext and dots. Dots are not checked for placement ("a..b" exists in
 * the wild and the provider is the judge). 0 if there is none.
 */
static size_t local_part_len(const char *s, size_t n)
{
	size_t i = 0;

	if (n > 0 && s[0] == '"') {
		for (i = 1; i < n; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '"')
				return i + 1;
			if (c == '\\')
				i++;       /* quoted-pair; its byte was checked by find_close() */
			else if (c < 32 || c == 127)
				return 0;
		}
		return 0;          /* unterminated quote */
	}
	while (i < n && (is_atext((unsigned char)s[i]) || s[i] == '.'))
		i++;
	return i;
}

/* Mailbox = Local-part "@" (Domain / address-literal). A local part
 * alone (RCPT TO:<postmaster>, RFC 5321 4.5.1, and what legacy senders
 * write: MAIL FROM:<root>) is accepted as unqualified: the caller adds
 * its domain. */
static bool check_mailbox(const char *s, size_t n, bool *unqualified, const char **why)
{
	size_t i = local_part_len(s, n);

	if (i == 0 || (i < n && s[i] != '@')) {
		*why = "invalid local part in address";
		return false;
	}
	*unqualified = i == n;
	if (!*unqualified && !valid_domain(s + i + 1, n - i - 1, DOM_UTF8)) {
		*why = "invalid domain in address";
		return false;
	}
	if (!utf8_valid(s, n)) {
		*why = "address is not valid UTF-8";
		return false;
	}
	return true;
}

/* A-d-l = At-domain *( "," At-domain ), At-domain = "@" Domain. */
static bool valid_route(const char *s, size_t n)
{
	size_t i = 0, end;

	for (;;) {
		if (i >= n || s[i] != '@')
			return false;
		for (end = i + 1; end < n && s[end] != ','; end++)
			;
		if (!valid_domain(s + i + 1, end - i - 1, DOM_UTF8))
			return false;
		if (end == n)
			return true;
		i = end + 1;
	}
}

/* Finds the '>' closing the path that starts with '<' at s[0], skipping
 * quoted strings (a quoted local part may hold '>'), and rejects control
 * bytes on the way. */
static bool find_close(const char *s, size_t n, size_t *close, const char **why)
{
	bool quoted = false;
	size_t i;

	for (i = 1; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (quoted && c == '\\' && i + 1 < n)
			c = (unsigned char)s[++i];
		else if (c == '"')
			quoted = !quoted;
		else if (c == '>' && !quoted) {
			*close = i;
			return true;
		}
		if (is_ctl(c)) {
			*why = "control character in address";
			return false;
		}
	}
	*why = "address must be enclosed in <>";
	return false;
}

/*
 * Parses "<path>" at s[0..n) into cmd->path; *used gets the bytes up to
 * and including '>'. The null path "<>" is for MAIL only. Source routes
 * are obsolete (RFC 5321 4.1.1.3) but must be accepted: we drop them.
 */
static enum smtp_parse_result parse_path(const char *s, size_t n, bool rcpt, struct smtp_cmd *cmd,
    size_t *used, const char **why)
{
	const char *box, *colon;
	size_t close, len;

	if (n == 0 || s[0] != '<') {
		*why = "address must be enclosed in <>";
		return SMTP_PARSE_SYNTAX;
	}
	if (!find_close(s, n, &close, why))
		return SMTP_PARSE_SYNTAX;
	*used = close + 1;
	box = s + 1;
	len = close - 1;
	if (len == 0) {
		if (!rcpt)
			return SMTP_PARSE_OK;   /* null reverse-path: bounces and notifications */
		*why = "empty recipient address";
		return SMTP_PARSE_SYNTAX;
	}
	if (box[0] == '@') {
		colon = memchr(box, ':', len);
		if (colon == NULL || !valid_route(box, (size_t)(colon - box))) {
			*why = "invalid source route in address";
			return SMTP_PARSE_SYNTAX;
		}
		len -= (size_t)(colon + 1 - box);
		box = colon + 1;
		if (len == 0) {
			*why = "invalid source route in address";
			return SMTP_PARSE_SYNTAX;
		}
	}
	if (len > SMTP_PATH_MAX) {
		*why = "address too long";
		return SMTP_PARSE_SYNTAX;
	}
	if (!check_mailbox(box, len, &cmd->unqualified, why))
		return SMTP_PARSE_SYNTAX;
	memcpy(cmd->path, box, len);
	cmd->path[len] = '\0';
	return SMTP_PARSE_OK;
}

/* Skips "FROM:" / "TO:" and the blanks some clients put after the colon. */
static bool skip_keyword(const char **s, size_t *n, const char *keyword)
{
	size_t k = strlen(keyword);

	if (!ascii_iprefix(*s, *n, keyword))
		return false;
	while (k < *n && (*s)[k] == ' ')
		k++;
	*s += k;
	*n -= k;
	return true;
}

/* After the path: nothing, or a space and parameters (leading blanks skipped). */
static bool params_after_path(const char **s, size_t *n, const char **why)
{
	if (*n > 0 && (*s)[0] != ' ') {
		*why = "unexpected text after address";
		return false;
	}
	while (*n > 0 && (*s)[0] == ' ') {
		(*s)++;
		(*n)--;
	}
	return true;
}

/* ---- MAIL parameters ---- */

static enum smtp_parse_result param_fail(const char **why, const char *reason)
{
	*why = reason;
	return SMTP_PARSE_PARAM;
}

static enum smtp_parse_result param_size(struct smtp_cmd *cmd, const char *v, size_t n,
    const char **why)
{
	uint64_t size = 0;
	size_t i;

	if (cmd->has_size)
		return param_fail(why, "SIZE given twice");
	if (v == NULL || n == 0)
		return param_fail(why, "SIZE needs a number");
	for (i = 0; i < n; i++) {
		unsigned d = (unsigned)(v[i] - '0');
		if (!is_digit((unsigned char)v[i]))
			return param_fail(why, "SIZE needs a number");
		if (size > (UINT64_MAX - d) / 10)
			return param_fail(why, "SIZE value too large");
		size = size * 10 + d;
	}
	cmd->size = size;
	cmd->has_size = true;
	return SMTP_PARSE_OK;
}

static enum smtp_parse_result param_body(struct smtp_cmd *cmd, const char *v, size_t n,
    const char **why)
{
	if (cmd->body != SMTP_BODY_DEFAULT)
		return param_fail(why, "BODY given twice");
	if (v != NULL && ascii_ieq(v, n, "7BIT"))
		cmd->body = SMTP_BODY_7BIT;
	else if (v != NULL && ascii_ieq(v, n, "8BITMIME"))
		cmd->body = SMTP_BODY_8BITMIME;
	else
		return param_fail(why, "BODY must be 7BIT or 8BITMIME");
	return SMTP_PARSE_OK;
}

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool valid_param_keyword(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || !is_alnum((unsigned char)s[0]))
		return false;
	for (i = 1; i < n; i++)
		if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* esmtp-value = 1*(%d33-60 / %d62-126); UTF-8 allowed by RFC 6531. */
static bool valid_param_value(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == '=' || c == 0x7f)
			return false;
	}
	return true;
}

/* One "KEYWORD[=value]" token of a MAIL command. */
static enum smtp_parse_result mail_param(struct smtp_cmd *cmd, const char *s, size_t n,
    const char **why)
{
	const char *eq = memchr(s, '=', n);
	size_t klen = eq ? (size_t)(eq - s) : n;
	const char *v = eq ? eq + 1 : NULL;
	size_t vlen = eq ? n - klen - 1 : 0;

	if (!valid_param_keyword(s, klen))
		return param_fail(why, "malformed MAIL parameter");
	if (v != NULL && !valid_param_value(v, vlen))
		return param_fail(why, "malformed MAIL parameter value");
	if (ascii_ieq(s, klen, "SIZE"))
		return param_size(cmd, v, vlen, why);
	if (ascii_ieq(s, klen, "BODY"))
		return param_body(cmd, v, vlen, why);
	if (ascii_ieq(s, klen, "SMTPUTF8")) {
		if (v != NULL)
			return param_fail(why, "SMTPUTF8 takes no value");
		cmd->smtputf8 = true;
		return SMTP_PARSE_OK;
	}
	/* RFC 4954 5: a server offering AUTH must accept AUTH=<mailbox> on
	 * MAIL. We authenticate upstream as ourselves, so it is dropped. */
	if (ascii_ieq(s, klen, "AUTH") && v != NULL)
		return SMTP_PARSE_OK;
	return param_fail(why, "unknown MAIL parameter");
}

static enum smtp_parse_result mail_params(struct smtp_cmd *cmd, const char *s, size_t n,
    const char **why)
{
	enum smtp_parse_result r;
	size_t i = 0, end;

	while (i < n) {
		if (s[i] == ' ') {
			i++;
			continue;
		}
		for (end = i; end < n && s[end] != ' '; end++)
			;
		r = mail_param(cmd, s + i, end - i, why);
		if (r != SMTP_PARSE_OK)
			return r;
		i = end;
	}
	return SMTP_PARSE_OK;
}

/* ---- commands ---- */

static enum smtp_parse_result parse_mail(struct smtp_cmd *cmd, const char **why)
{
	const char *s = cmd->arg;
	size_t n = cmd->arglen, used;
	enum smtp_parse_result r;

	if (!skip_keyword(&s, &n, "FROM:")) {
		*why = verb_rules[SMTP_VERB_MAIL].why;
		return SMTP_PARSE_SYNTAX;
	}
	r = parse_path(s, n, false, cmd, &used, why);
	if (r != SMTP_PARSE_OK)
		return r;
	s += used;
	n -= used;
	if (!params_after_path(&s, &n, why))
		return SMTP_PARSE_SYNTAX;
	r = mail_params(cmd, s, n, why);
	if (r != SMTP_PARSE_OK)
		return r;
	/* Non-ASCII without SMTPUTF8 is the caller's 553 5.6.7, not a syntax error. */
	return SMTP_PARSE_OK;
}

/*
 * RCPT takes no parameters: the only standard ones are NOTIFY and ORCPT
 * of DSN (RFC 3461), which we do not offer in EHLO, so any is unknown.
 * Non-ASCII is left to the caller, who knows whether MAIL had SMTPUTF8.
 */
static enum smtp_parse_result parse_rcpt(struct smtp_cmd *cmd, const char **why)
{
	const char *s = cmd->arg;
	size_t n = cmd->arglen, used;
	enum smtp_parse_result r;

	if (!skip_keyword(&s, &n, "TO:")) {
		*why = verb_rules[SMTP_VERB_RCPT].why;
		return SMTP_PARSE_SYNTAX;
	}
	r = parse_path(s, n, true, cmd, &used, why);
	if (r != SMTP_PARSE_OK)
		return r;
	s += used;
	n -= used;
	if (!params_after_path(&s, &n, why))
		return SMTP_PARSE_SYNTAX;
	if (n > 0) {
		*why = "RCPT parameters are not supported";
		return SMTP_PARSE_PARAM;
	}
	return SMTP_PARSE_OK;
}

static enum smtp_verb verb_lookup(const char *s, size_t n)
{
	size_t v;

	for (v = SMTP_VERB_UNKNOWN + 1; v < ARRAY_LEN(verb_names); v++)
		if (ascii_ieq(s, n, verb_names[v]))
			return (enum smtp_verb)v;
	return SMTP_VERB_UNKNOWN;
}

static enum smtp_parse_result check_arg(struct smtp_cmd *cmd, const char **why)
{
	const struct verb_rule *rule = &verb_rules[cmd->verb];
	bool ok = true;

	switch (rule->rule) {
	case ARG_NONE:
		ok = cmd->arglen == 0;
		break;
	case ARG_ANY:
		break;
	case ARG_REQUIRED:
		ok = cmd->arglen > 0;
		break;
	case ARG_DOMAIN:
		ok = valid_domain(cmd->arg, cmd->arglen, DOM_UNDERSCORE);
		break;
	case ARG_MAIL:
		return parse_mail(cmd, why);
	case ARG_RCPT:
		return parse_rcpt(cmd, why);
	}
	if (ok)
		return SMTP_PARSE_OK;
	*why = rule->why;
	return SMTP_PARSE_SYNTAX;
}

enum smtp_parse_result smtp_parse_command(const char *line, size_t len, struct smtp_cmd *cmd,
    const char **why)
{
	size_t vlen = 0;

	memset(cmd, 0, sizeof(*cmd));
	cmd->arg = "";
	*why = "";
	while (vlen < len && line[vlen] != ' ')
		vlen++;
	cmd->verb = verb_lookup(line, vlen);
	if (cmd->verb == SMTP_VERB_UNKNOWN) {
		*why = "command not recognised";
		return SMTP_PARSE_UNKNOWN;
	}
	/* The session splits lines at LF; anything left is an attempt to
	 * hide a second command or to cut a C string short. */
	if (memchr(line, '\0', len) || memchr(line, '\r', len) || memchr(line, '\n', len)) {
		*why = "line contains CR, LF or NUL";
		return SMTP_PARSE_SYNTAX;
	}
	if (vlen < len) {
		cmd->arg = line + vlen + 1;
		cmd->arglen = len - vlen - 1;
		/* Old clients send "QUIT " and the like: trailing blanks are not an argument. */
		while (cmd->arglen > 0 && is_blank(cmd->arg[cmd->arglen - 1]))
			cmd->arglen--;
	}
	return check_arg(cmd, why);
}

/* ---- replies ---- */

void smtp_reply_reset(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
}

/* Reply codes are 2yz..5yz (RFC 5321 4.2); 1yz is not used in SMTP. */
static bool reply_code(const char *s, size_t n, int *code)
{
	if (n < 3 || s[0] < '2' || s[0] > '5' || !is_digit((unsigned char)s[1]) ||
	    !is_digit((unsigned char)s[2]))
		return false;
	*code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	return true;
}

/* Length of an RFC 3463 code "class.subject.detail" (1-3 digits each)
 * of class cls at the start of s[0..n), followed by a space or the end;
 * 0 if there is none. */
static size_t enhanced_len(const char *s, size_t n, char cls)
{
	size_t i = 2, start;
	int part;

	if ((cls != '2' && cls != '4' && cls != '5') || n < 5 || s[0] != cls || s[1] != '.')
		return 0;
	for (part = 0; part < 2; part++) {
		for (start = i; i < n && i - start < 3 && is_digit((unsigned char)s[i]); i++)
			;
		if (i == start)
			return 0;
		if (part == 0) {
			if (i >= n || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < n && s[i] != ' ')
		return 0;
	return i;
}

/* Appends s[0..n) to the C string dst of capacity cap, control bytes as
 * '?' (the text reaches logs and, in passthrough, clients). What does
 * not fit is cut, and the cut marked with "...". */
static void text_append(char *dst, size_t cap, const char *s, size_t n)
{
	size_t len = strlen(dst), k;

	for (k = 0; k < n && len + 1 < cap; k++)
		dst[len++] = is_ctl((unsigned char)s[k]) ? '?' : s[k];
	dst[len] = '\0';
	if (k < n && cap > 4)
		memcpy(dst + cap - 4, "...", 3);
}

/*
 * Adds one EHLO keyword line to r->ehlo: upper-cased, blanks collapsed
 * to one space. A line that does not fit is dropped whole: half a
 * keyword line ("AUTH PL") would be worse than none.
 */
static void ehlo_add(struct smtp_reply *r, const char *s, size_t n)
{
	size_t start = strlen(r->ehlo), len = start, first, i;
	const size_t cap = sizeof(r->ehlo);
	bool gap = false;

	if (start > 0) {
		if (start + 1 >= cap)
			return;
		r->ehlo[len++] = '\n';
	}
	first = len;
	for (i = 0; i < n; i++) {
		if (s[i] == ' ' || is_ctl((unsigned char)s[i])) {
			gap = len > first;
			continue;
		}
		if (len + (gap ? 2 : 1) >= cap) {
			r->ehlo[start] = '\0';
			return;
		}
		if (gap)
			r->ehlo[len++] = ' ';
		gap = false;
		r->ehlo[len++] = ascii_upper(s[i]);
	}
	r->ehlo[len == first ? start : len] = '\0';
}

bool smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len)
{
	const char *text = line + 3;
	size_t tlen = 0, elen;
	int code;

	if (r->complete || !reply_code(line, len, &code))
		return false;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return false;
	if (r->lines > 0 && code != r->code)
		return false;
	if (r->lines >= SMTP_REPLY_LINES_MAX || r->bytes + len > SMTP_REPLY_BYTES_MAX) {
		r->too_long = true;
		return false;
	}
	r->bytes += len;
	if (len > 3) {
		text = line + 4;
		tlen = len - 4;
	}
	/* Continuation lines often repeat the enhanced code: strip it too. */
	elen = enhanced_len(text, tlen, line[0]);
	if (elen > 0) {
		if (r->lines == 0) {
			memcpy(r->enhanced, text, elen);
			r->enhanced[elen] = '\0';
		}
		text += elen;
		tlen -= elen;
		if (tlen > 0) {
			text++;
			tlen--;
		}
	}
	if (r->lines > 0) {
		text_append(r->text, sizeof(r->text), "; ", 2);
		ehlo_add(r, text, tlen);
	}
	text_append(r->text, sizeof(r->text), text, tlen);
	r->code = code;
	r->lines++;
	r->complete = len == 3 || line[3] == ' ';
	return true;
}

enum smtp_reply_step smtp_reply_read(struct smtp_reply *r, const char *in, size_t n, size_t *used)
{
	const char *nl = memchr(in, '\n', n);
	size_t len;

	if (nl == NULL)
		return SMTP_REPLY_MORE;
	len = (size_t)(nl - in);
	*used = len + 1;
	if (len > 0 && in[len - 1] == '\r')
		len--;
	return smtp_reply_feed(r, in, len) ? SMTP_REPLY_LINE : SMTP_REPLY_BAD;
}

/*
 * Looks for `keyword` at the start of an EHLO line, followed by a space
 * or the end. Some servers also (or only) send the pre-RFC 2554 form
 * "AUTH=LOGIN PLAIN"; it is used when the standard form is absent.
 */
bool smtp_ehlo_has(const struct smtp_reply *r, const char *keyword, char *params, size_t paramslen)
{
	const char *p = r->ehlo, *eol, *found = NULL, *fend = NULL;
	size_t klen = strlen(keyword), n;

	if (klen == 0)
		return false;
	for (; *p != '\0'; p = *eol ? eol + 1 : eol) {
		eol = strchr(p, '\n');
		if (eol == NULL)
			eol = p + strlen(p);
		n = (size_t)(eol - p);
		if (!ascii_iprefix(p, n, keyword))
			continue;
		if (n == klen || p[klen] == ' ') {
			found = p + klen + (n > klen);
			fend = eol;
			break;
		}
		if (p[klen] == '=' && found == NULL) {
			found = p + klen + 1;
			fend = eol;
		}
	}
	if (found == NULL)
		return false;
	if (params != NULL && paramslen > 0) {
		n = (size_t)(fend - found);
		if (n >= paramslen)
			n = paramslen - 1;
		memcpy(params, found, n);
		params[n] = '\0';
	}
	return true;
}

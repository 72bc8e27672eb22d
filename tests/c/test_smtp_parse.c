/*
 * Unit tests for smtp_parse: commands, paths, MAIL/RCPT parameters,
 * replies and EHLO keywords, and garbage that must not break anything.
 */
#include "smtp_parse.h"

#include <stdint.h>
#include <stdlib.h>

#include "check.h"

static struct smtp_cmd cmd;
static const char *why;

/* Parses a C string as one command line; a failure must give a reason. */
static enum smtp_parse_result parse(const char *line)
{
	enum smtp_parse_result r = smtp_parse_command(line, strlen(line), &cmd, &why);

	CHECK(why != NULL);
	if (r != SMTP_PARSE_OK)
		CHECK(why != NULL && why[0] != '\0');
	return r;
}

#define OK(line) CHECK(parse(line) == SMTP_PARSE_OK)
#define SYNTAX(line) CHECK(parse(line) == SMTP_PARSE_SYNTAX)
#define PARAM(line) CHECK(parse(line) == SMTP_PARSE_PARAM)
#define PATH(line, want) do { OK(line); CHECK_STR(cmd.path, want); } while (0)

static void test_verbs(void)
{
	CHECK_STR(smtp_verb_name(SMTP_VERB_HELO), "HELO");
	CHECK_STR(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
	CHECK_STR(smtp_verb_name(SMTP_VERB_EXPN), "EXPN");
	CHECK_STR(smtp_verb_name(SMTP_VERB_UNKNOWN), "UNKNOWN");
	CHECK_STR(smtp_verb_name((enum smtp_verb)999), "UNKNOWN");

	OK("QUIT");
	CHECK(cmd.verb == SMTP_VERB_QUIT);
	OK("quit");
	CHECK(cmd.verb == SMTP_VERB_QUIT);
	OK("StartTLS");
	CHECK(cmd.verb == SMTP_VERB_STARTTLS);
	CHECK(parse("FOO") == SMTP_PARSE_UNKNOWN);
	CHECK(cmd.verb == SMTP_VERB_UNKNOWN);
	CHECK(parse("") == SMTP_PARSE_UNKNOWN);
	CHECK(parse(" QUIT") == SMTP_PARSE_UNKNOWN);
	CHECK(parse("QUITX") == SMTP_PARSE_UNKNOWN);
	CHECK(parse("QUI") == SMTP_PARSE_UNKNOWN);
	CHECK(parse("MAILFROM:<a@b.c>") == SMTP_PARSE_UNKNOWN);
	CHECK(parse("\xff\xfe") == SMTP_PARSE_UNKNOWN);
}

static void test_arguments(void)
{
	/* No argument allowed; trailing blanks are not one. */
	OK("DATA");
	CHECK_STR(cmd.arg, "");
	CHECK(cmd.arglen == 0);
	OK("DATA ");
	OK("RSET \t ");
	SYNTAX("DATA x");
	CHECK_STR(why, "DATA takes no argument");
	SYNTAX("RSET now");
	SYNTAX("QUIT please");
	SYNTAX("STARTTLS x");
	/* Optional argument. */
	OK("NOOP");
	OK("NOOP anything at all");
	OK("HELP DATA");
	CHECK(cmd.verb == SMTP_VERB_HELP);
	CHECK_STR(cmd.arg, "DATA");
	CHECK(cmd.arglen == 4);
	/* Required argument. */
	SYNTAX("VRFY");
	SYNTAX("VRFY ");
	OK("VRFY postmaster");
	SYNTAX("EXPN");
	OK("EXPN list");
	SYNTAX("AUTH");
	OK("AUTH PLAIN AGZvbwBiYXI=");
	CHECK_STR(cmd.arg, "PLAIN AGZvbwBiYXI=");
	/* CR, LF and NUL cannot hide in a line. */
	SYNTAX("NOOP a\rb");
	SYNTAX("NOOP a\nRSET");
	CHECK_STR(why, "line contains CR, LF or NUL");
	CHECK(smtp_parse_command("NOOP a\0b", 8, &cmd, &why) == SMTP_PARSE_SYNTAX);
	/* The line need not be NUL-terminated: only len bytes count. */
	CHECK(smtp_parse_command("QUITjunk", 4, &cmd, &why) == SMTP_PARSE_OK);
	CHECK(smtp_parse_command("HELO a.example junk", 14, &cmd, &why) == SMTP_PARSE_OK);
	CHECK(cmd.arglen == 9 && memcmp(cmd.arg, "a.example", 9) == 0);
}

static void test_helo(void)
{
	OK("EHLO mail.example.com");
	CHECK(cmd.verb == SMTP_VERB_EHLO);
	CHECK_STR(cmd.arg, "mail.example.com");
	OK("HELO localhost");
	CHECK(cmd.verb == SMTP_VERB_HELO);
	OK("ehlo localhost.localdomain ");
	CHECK(cmd.arglen == strlen("localhost.localdomain"));
	OK("EHLO [192.0.2.1]");
	OK("EHLO [IPv6:2001:db8::1]");
	OK("EHLO 192.0.2.1");
	OK("EHLO OFFICE_PC");   /* Windows host names */
	SYNTAX("EHLO");
	CHECK_STR(why, "EHLO needs a domain or address literal");
	SYNTAX("HELO");
	CHECK_STR(why, "HELO needs a domain or address literal");
	SYNTAX("EHLO ");
	SYNTAX("EHLO  two.spaces");
	SYNTAX("EHLO foo bar");
	SYNTAX("EHLO a..b");
	SYNTAX("EHLO .a");
	SYNTAX("EHLO a.");
	SYNTAX("EHLO [192.0.2.1");
	SYNTAX("EHLO []");
	SYNTAX("EHLO [a]b]");
	SYNTAX("EHLO <x@y>");
	SYNTAX("EHLO h\xc3\xa9llo");
}

static void test_mail(void)
{
	PATH("MAIL FROM:<a@b.example>", "a@b.example");
	CHECK(cmd.verb == SMTP_VERB_MAIL);
	CHECK(!cmd.has_size && cmd.size == 0 && cmd.body == SMTP_BODY_DEFAULT && !cmd.smtputf8);
	PATH("mail from:<John.Doe@Example.COM>", "John.Doe@Example.COM");
	PATH("MAIL FROM: <a@b.example>", "a@b.example");
	PATH("MAIL FROM:<a@b.example>  ", "a@b.example");
	PATH("MAIL FROM:<>", "");
	PATH("MAIL FROM:<a@[192.0.2.1]>", "a@[192.0.2.1]");
	PATH("MAIL FROM:<a+tag@b.example>", "a+tag@b.example");
	PATH("MAIL FROM:<a..b@b.example>", "a..b@b.example");

	SYNTAX("MAIL");
	CHECK_STR(why, "syntax: MAIL FROM:<address>");
	SYNTAX("MAIL FROM");
	SYNTAX("MAIL TO:<a@b.example>");
	SYNTAX("MAIL FROM <a@b.example>");
	SYNTAX("MAIL  FROM:<a@b.example>");
	SYNTAX("MAIL FROM:");
	SYNTAX("MAIL FROM:a@b.example");
	CHECK_STR(why, "address must be enclosed in <>");
	SYNTAX("MAIL FROM:<a@b.example");
	SYNTAX("MAIL FROM:<a@b.example>x");
	CHECK_STR(why, "unexpected text after address");
	SYNTAX("MAIL FROM:<a@b.example><c@d.example>");
	/* A local part alone is taken, flagged for the caller to qualify. */
	PATH("MAIL FROM:<root>", "root");
	CHECK(cmd.unqualified);
	PATH("MAIL FROM:<\"a b\">", "\"a b\"");
	CHECK(cmd.unqualified);
	PATH("MAIL FROM:<a@b.example>", "a@b.example");
	CHECK(!cmd.unqualified);
	PATH("MAIL FROM:<>", "");
	CHECK(!cmd.unqualified);
	SYNTAX("MAIL FROM:<root@>");
	SYNTAX("MAIL FROM:<a b@c.example>");
	SYNTAX("MAIL FROM:<a@b c.example>");
	SYNTAX("MAIL FROM:<@b.example>");
	SYNTAX("MAIL FROM:<a@>");
	SYNTAX("MAIL FROM:<a@b..example>");
	SYNTAX("MAIL FROM:<a@b.example.>");
	SYNTAX("MAIL FROM:<a@b_c.example>");
	SYNTAX("MAIL FROM:<a@@b.example>");
	SYNTAX("MAIL FROM:<a@b@c.example>");
	SYNTAX("MAIL FROM:<a@[1.2.3.4>");
	SYNTAX("MAIL FROM:<a\x01@b.example>");
	CHECK_STR(why, "control character in address");
	SYNTAX("MAIL FROM:<a\t@b.example>");
	SYNTAX("MAIL FROM:<a\x7f@b.example>");
}

static void test_mail_params(void)
{
	OK("MAIL FROM:<> SIZE=100 BODY=8BITMIME SMTPUTF8");
	CHECK(cmd.has_size && cmd.size == 100);
	CHECK(cmd.body == SMTP_BODY_8BITMIME && cmd.smtputf8);
	OK("MAIL FROM:<a@b.example>  size=0   body=7bit ");
	CHECK(cmd.has_size && cmd.size == 0 && cmd.body == SMTP_BODY_7BIT);
	OK("MAIL FROM:<a@b.example> SIZE=18446744073709551615");
	CHECK(cmd.size == UINT64_MAX);
	OK("MAIL FROM:<a@b.example> AUTH=<>");
	OK("MAIL FROM:<a@b.example> AUTH=a+2Bb@b.example");

	PARAM("MAIL FROM:<a@b.example> SIZE=18446744073709551616");
	CHECK_STR(why, "SIZE value too large");
	PARAM("MAIL FROM:<a@b.example> SIZE=99999999999999999999999999");
	PARAM("MAIL FROM:<a@b.example> SIZE=12k");
	CHECK_STR(why, "SIZE needs a number");
	PARAM("MAIL FROM:<a@b.example> SIZE=-1");
	PARAM("MAIL FROM:<a@b.example> SIZE=");
	PARAM("MAIL FROM:<a@b.example> SIZE");
	PARAM("MAIL FROM:<a@b.example> SIZE=1 SIZE=2");
	CHECK_STR(why, "SIZE given twice");
	PARAM("MAIL FROM:<a@b.example> BODY=BINARYMIME");
	CHECK_STR(why, "BODY must be 7BIT or 8BITMIME");
	PARAM("MAIL FROM:<a@b.example> BODY");
	PARAM("MAIL FROM:<a@b.example> BODY=7BIT BODY=8BITMIME");
	PARAM("MAIL FROM:<a@b.example> SMTPUTF8=yes");
	CHECK_STR(why, "SMTPUTF8 takes no value");
	PARAM("MAIL FROM:<a@b.example> RET=HDRS");
	CHECK_STR(why, "unknown MAIL parameter");
	PARAM("MAIL FROM:<a@b.example> AUTH");
	PARAM("MAIL FROM:<a@b.example> =1");
	PARAM("MAIL FROM:<a@b.example> -X=1");
	PARAM("MAIL FROM:<a@b.example> SIZE==1");
	PARAM("MAIL FROM:<a@b.example> SIZE=1\tBODY=7BIT");
}

static void test_rcpt(void)
{
	PATH("RCPT TO:<c@d.example>", "c@d.example");
	CHECK(cmd.verb == SMTP_VERB_RCPT);
	PATH("rcpt to: <c@d.example> ", "c@d.example");
	PATH("RCPT TO:<Postmaster>", "Postmaster");
	PATH("RCPT TO:<postmaster>", "postmaster");
	CHECK(cmd.unqualified);
	PATH("RCPT TO:<u@[IPv6:2001:db8::1]>", "u@[IPv6:2001:db8::1]");
	SYNTAX("RCPT TO:<>");
	CHECK_STR(why, "empty recipient address");
	PATH("RCPT TO:<bob>", "bob");
	CHECK(cmd.unqualified);
	SYNTAX("RCPT TO:<bob@@x.example>");
	SYNTAX("RCPT TO:c@d.example");
	SYNTAX("RCPT FROM:<c@d.example>");
	SYNTAX("RCPT");
	CHECK_STR(why, "syntax: RCPT TO:<address>");
	PARAM("RCPT TO:<c@d.example> NOTIFY=NEVER");
	CHECK_STR(why, "RCPT parameters are not supported");
	PARAM("RCPT TO:<c@d.example> ORCPT=rfc822;c@d.example");
}

static void test_paths(void)
{
	char line[600], box[300];

	/* Source routes are accepted and dropped. */
	PATH("MAIL FROM:<@a.example,@b.example:user@c.example>", "user@c.example");
	PATH("RCPT TO:<@a.example:user@c.example>", "user@c.example");
	SYNTAX("RCPT TO:<@a.example,:user@c.example>");
	SYNTAX("RCPT TO:<@:user@c.example>");
	SYNTAX("RCPT TO:<@a.example:>");
	SYNTAX("RCPT TO:<@a.example user@c.example>");
	SYNTAX("RCPT TO:<@a.example,b.example:user@c.example>");
	SYNTAX("RCPT TO:<@>");

	/* Quoted local parts, which may hold spaces, '>' and escapes. */
	PATH("MAIL FROM:<\"john doe\"@b.example>", "\"john doe\"@b.example");
	PATH("RCPT TO:<\"a>b\"@c.example>", "\"a>b\"@c.example");
	PATH("RCPT TO:<\"a\\\"b\"@c.example> ", "\"a\\\"b\"@c.example");
	PATH("RCPT TO:<\"\"@c.example>", "\"\"@c.example");
	SYNTAX("RCPT TO:<\"abc@c.example>");
	SYNTAX("RCPT TO:<\"a\"b@c.example>");
	SYNTAX("RCPT TO:<\"a\x01\"@c.example>");
	SYNTAX("RCPT TO:<\"a\\\x01\"@c.example>");
	SYNTAX("RCPT TO:<a\"b\"@c.example>");

	/* Length: SMTP_PATH_MAX bytes fit, one more does not. */
	memset(box, 'x', sizeof(box));
	memcpy(box + SMTP_PATH_MAX - strlen("@c.example"), "@c.example", strlen("@c.example") + 1);
	CHECK(strlen(box) == SMTP_PATH_MAX);
	snprintf(line, sizeof(line), "RCPT TO:<%s>", box);
	PATH(line, box);
	snprintf(line, sizeof(line), "RCPT TO:<x%s>", box);
	SYNTAX(line);
	CHECK_STR(why, "address too long");
	/* ... counted after the source route is stripped. */
	snprintf(line, sizeof(line), "RCPT TO:<@r.example:%s>", box);
	PATH(line, box);

	/* Non-ASCII (valid UTF-8) parses with or without SMTPUTF8; the server
	 * checks smtp_path_is_ascii() against cmd.smtputf8 (553 5.6.7). */
	PATH("MAIL FROM:<j\xc3\xb6rg@b.example>", "j\xc3\xb6rg@b.example");
	CHECK(!cmd.smtputf8);
	CHECK(!smtp_path_is_ascii(cmd.path));
	PATH("MAIL FROM:<j\xc3\xb6rg@b\xc3\xa4.example> SMTPUTF8", "j\xc3\xb6rg@b\xc3\xa4.example");
	CHECK(cmd.smtputf8);
	CHECK(!smtp_path_is_ascii(cmd.path));
	PATH("RCPT TO:<\xe7\x94\xb0\xe4\xb8\xad@\xe4\xbe\x8b.jp>", "\xe7\x94\xb0\xe4\xb8\xad@\xe4\xbe\x8b.jp");
	CHECK(!smtp_path_is_ascii(cmd.path));
	CHECK(smtp_path_is_ascii("a@b.example"));
	CHECK(smtp_path_is_ascii(""));
	SYNTAX("RCPT TO:<\xff@b.example>");
	CHECK_STR(why, "address is not valid UTF-8");
	SYNTAX("MAIL FROM:<\xc0\xaf@b.example> SMTPUTF8");   /* overlong */
	SYNTAX("MAIL FROM:<\xed\xa0\x80@b.example> SMTPUTF8"); /* surrogate */
	SYNTAX("MAIL FROM:<\xc3@b.example> SMTPUTF8");         /* truncated */
}

/* ---- replies ---- */

static struct smtp_reply reply;

static bool feed(const char *line)
{
	return smtp_reply_feed(&reply, line, strlen(line));
}

static void test_reply_single(void)
{
	smtp_reply_reset(&reply);
	CHECK(reply.code == 0 && !reply.complete && reply.lines == 0);
	CHECK(feed("250 2.1.0 Sender ok"));
	CHECK(reply.code == 250 && reply.complete && reply.lines == 1);
	CHECK_STR(reply.enhanced, "2.1.0");
	CHECK_STR(reply.text, "Sender ok");
	CHECK_STR(reply.ehlo, "");
	CHECK(!feed("250 again"));   /* complete: the caller resets first */

	smtp_reply_reset(&reply);
	CHECK(feed("220 smtp.example.com ESMTP ready"));
	CHECK_STR(reply.enhanced, "");
	CHECK_STR(reply.text, "smtp.example.com ESMTP ready");

	smtp_reply_reset(&reply);
	CHECK(feed("354"));
	CHECK(reply.code == 354 && reply.complete);
	CHECK_STR(reply.text, "");

	smtp_reply_reset(&reply);
	CHECK(feed("451 4.7.0"));
	CHECK_STR(reply.enhanced, "4.7.0");
	CHECK_STR(reply.text, "");

	/* Not an enhanced code: wrong class, too many digits, no space. */
	smtp_reply_reset(&reply);
	CHECK(feed("550 2.1.0 odd"));
	CHECK_STR(reply.enhanced, "");
	CHECK_STR(reply.text, "2.1.0 odd");
	smtp_reply_reset(&reply);
	CHECK(feed("550 5.1.1000 x"));
	CHECK_STR(reply.enhanced, "");
	smtp_reply_reset(&reply);
	CHECK(feed("550 5.1.1: x"));
	CHECK_STR(reply.enhanced, "");
	smtp_reply_reset(&reply);
	CHECK(feed("354 3.0.0 go"));
	CHECK_STR(reply.enhanced, "");
	smtp_reply_reset(&reply);
	CHECK(feed("552 5.3.4 "));
	CHECK_STR(reply.enhanced, "5.3.4");
	CHECK_STR(reply.text, "");
	smtp_reply_reset(&reply);
	CHECK(feed("554 5.999.999 max"));
	CHECK_STR(reply.enhanced, "5.999.999");
	CHECK_STR(reply.text, "max");
}

static void test_reply_invalid(void)
{
	static const char *const bad[] = { "", "2", "25", "abc", "25x ok", "150 x", "650 x", "050 x",
		"250x", "250_ok", "250\tok", " 250 ok" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		smtp_reply_reset(&reply);
		CHECK(!feed(bad[i]));
		CHECK(reply.code == 0 && reply.lines == 0);
	}
	/* A continuation must keep the first line's code. */
	smtp_reply_reset(&reply);
	CHECK(feed("250-first"));
	CHECK(!feed("251 second"));
	CHECK(!reply.complete);
	CHECK(feed("250 second"));
	CHECK(reply.complete && reply.lines == 2);
}

static void test_reply_multi(void)
{
	char params[64];

	smtp_reply_reset(&reply);
	CHECK(feed("550-5.7.1 Message rejected"));
	CHECK(!reply.complete);
	CHECK(feed("550-5.7.1 see https://example.com/why"));
	CHECK(feed("550 because"));
	CHECK(reply.complete && reply.lines == 3 && reply.code == 550);
	CHECK_STR(reply.enhanced, "5.7.1");
	CHECK_STR(reply.text, "Message rejected; see https://example.com/why; because");

	smtp_reply_reset(&reply);
	CHECK(feed("250-smtp.example.com at your service, [192.0.2.7]"));
	CHECK(feed("250-PIPELINING"));
	CHECK(feed("250-SIZE 35882577"));
	CHECK(feed("250-starttls"));
	CHECK(feed("250-AUTH   LOGIN  PLAIN XOAUTH2 "));
	CHECK(feed("250-AUTH=LOGIN"));
	CHECK(feed("250-ENHANCEDSTATUSCODES"));
	CHECK(feed("250 8BITMIME"));
	CHECK(reply.complete && reply.lines == 8);
	CHECK_STR(reply.ehlo, "PIPELINING\nSIZE 35882577\nSTARTTLS\nAUTH LOGIN PLAIN XOAUTH2\n"
	    "AUTH=LOGIN\nENHANCEDSTATUSCODES\n8BITMIME");

	CHECK(smtp_ehlo_has(&reply, "PIPELINING", params, sizeof(params)));
	CHECK_STR(params, "");
	CHECK(smtp_ehlo_has(&reply, "size", params, sizeof(params)));
	CHECK_STR(params, "35882577");
	CHECK(smtp_ehlo_has(&reply, "StartTLS", params, sizeof(params)));
	CHECK_STR(params, "");
	/* The standard form wins over the old one. */
	CHECK(smtp_ehlo_has(&reply, "AUTH", params, sizeof(params)));
	CHECK_STR(params, "LOGIN PLAIN XOAUTH2");
	CHECK(smtp_ehlo_has(&reply, "8bitmime", NULL, 0));
	CHECK(!smtp_ehlo_has(&reply, "CHUNKING", params, sizeof(params)));
	CHECK(!smtp_ehlo_has(&reply, "PIPE", params, sizeof(params)));
	CHECK(!smtp_ehlo_has(&reply, "SMTP.EXAMPLE.COM", params, sizeof(params)));
	CHECK(!smtp_ehlo_has(&reply, "", params, sizeof(params)));
	/* Parameters are cut to the caller's buffer. */
	CHECK(smtp_ehlo_has(&reply, "AUTH", params, 6));
	CHECK_STR(params, "LOGIN");
}

static void test_ehlo_forms(void)
{
	char params[64];

	/* Only the old form. */
	smtp_reply_reset(&reply);
	CHECK(feed("250-old.example.com"));
	CHECK(feed("250-AUTH=LOGIN PLAIN"));
	CHECK(feed("250 HELP"));
	CHECK(smtp_ehlo_has(&reply, "auth", params, sizeof(params)));
	CHECK_STR(params, "LOGIN PLAIN");

	/* The old form listed first, the standard one after. */
	smtp_reply_reset(&reply);
	CHECK(feed("250-old.example.com"));
	CHECK(feed("250-AUTH=LOGIN"));
	CHECK(feed("250 AUTH PLAIN LOGIN CRAM-MD5"));
	CHECK(smtp_ehlo_has(&reply, "AUTH", params, sizeof(params)));
	CHECK_STR(params, "PLAIN LOGIN CRAM-MD5");

	/* A single-line EHLO reply offers nothing. */
	smtp_reply_reset(&reply);
	CHECK(feed("250 tiny.example.com"));
	CHECK(!smtp_ehlo_has(&reply, "TINY.EXAMPLE.COM", params, sizeof(params)));
	CHECK_STR(reply.ehlo, "");

	/* Enhanced codes on keyword lines are not keywords. */
	smtp_reply_reset(&reply);
	CHECK(feed("250-2.0.0 odd.example.com"));
	CHECK(feed("250 2.0.0 PIPELINING"));
	CHECK(smtp_ehlo_has(&reply, "PIPELINING", NULL, 0));
	CHECK_STR(reply.ehlo, "PIPELINING");
}

static void test_reply_limits(void)
{
	char line[3000];
	size_t len, i;

	/* An over-long line is cut, NUL-terminated, and the cut marked. */
	smtp_reply_reset(&reply);
	memset(line, 'x', sizeof(line));
	memcpy(line, "250 ", 4);
	CHECK(smtp_reply_feed(&reply, line, sizeof(line)));
	len = strlen(reply.text);
	CHECK(len == SMTP_REPLY_TEXT_MAX - 1);
	CHECK(memcmp(reply.text + len - 3, "...", 3) == 0);

	/* Control bytes never reach the text or the keyword list. */
	smtp_reply_reset(&reply);
	CHECK(smtp_reply_feed(&reply, "250-a\r\nb\0c", 10));
	CHECK(smtp_reply_feed(&reply, "250 X\nY\x1b", 8));
	CHECK_STR(reply.text, "a??b?c; X?Y?");
	CHECK_STR(reply.ehlo, "X Y");

	/* Many keyword lines: whole lines only, never past the array. */
	smtp_reply_reset(&reply);
	CHECK(feed("250-many.example.com"));
	for (i = 0; i < SMTP_REPLY_LINES_MAX - 2; i++) {
		snprintf(line, sizeof(line), "250-KEYWORD%03zu PARAM", i);
		CHECK(feed(line));
	}
	CHECK(feed("250 LAST"));
	len = strlen(reply.ehlo);
	CHECK(len < sizeof(reply.ehlo));
	CHECK(len > sizeof(reply.ehlo) - 40);
	CHECK(smtp_ehlo_has(&reply, "KEYWORD000", NULL, 0));
	CHECK(!smtp_ehlo_has(&reply, "KEYWORD097", NULL, 0));
	CHECK(!smtp_ehlo_has(&reply, "LAST", NULL, 0));   /* full: later lines dropped */
	CHECK(reply.ehlo[len - 1] != '\n');
	for (i = 0; i < len; i++)
		CHECK(reply.ehlo[i] != '\n' || reply.ehlo[i + 1] == 'K');
	CHECK(strlen(reply.text) == SMTP_REPLY_TEXT_MAX - 1);

	/* An endless "250-" reply is refused at its 101st line... */
	smtp_reply_reset(&reply);
	for (i = 0; i < SMTP_REPLY_LINES_MAX; i++)
		CHECK(feed("250-2.1.0 more"));
	CHECK(!feed("250-2.1.0 more"));
	CHECK(!reply.complete);

	/* ...or once its lines pass 64 KiB. */
	smtp_reply_reset(&reply);
	memset(line, 'x', sizeof(line));
	memcpy(line, "250-", 4);
	for (len = 0; len + sizeof(line) <= SMTP_REPLY_BYTES_MAX; len += sizeof(line))
		CHECK(smtp_reply_feed(&reply, line, sizeof(line)));
	CHECK(!smtp_reply_feed(&reply, line, sizeof(line)));
}

/* Random lines, some valid, must never overrun or leave a string open. */
static void test_garbage(void)
{
	static const char alphabet[] = "0123455-  .=\r\n\tA\x00\xff";
	char line[1500];
	uint32_t seed = 7;
	size_t len, i;
	int iter;

	for (iter = 0; iter < 20000; iter++) {
		if (iter % 50 == 0)
			smtp_reply_reset(&reply);
		seed = seed * 1103515245 + 12345;
		len = (seed >> 8) % sizeof(line);
		if (iter % 3)
			len %= 40;
		for (i = 0; i < len; i++) {
			seed = seed * 1103515245 + 12345;
			line[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		if (len > 4 && iter % 2)
			memcpy(line, iter % 4 == 1 ? "250-" : "250 ", 4);
		if (smtp_reply_feed(&reply, line, len) && reply.complete)
			smtp_reply_reset(&reply);
		smtp_parse_command(line, len, &cmd, &why);
		CHECK(memchr(reply.text, '\0', sizeof(reply.text)) != NULL);
		CHECK(memchr(reply.ehlo, '\0', sizeof(reply.ehlo)) != NULL);
		CHECK(memchr(reply.enhanced, '\0', sizeof(reply.enhanced)) != NULL);
		CHECK(memchr(cmd.path, '\0', sizeof(cmd.path)) != NULL);
		CHECK(why != NULL);
		smtp_ehlo_has(&reply, "A", line, 8);
	}
}

int main(void)
{
	test_verbs();
	test_arguments();
	test_helo();
	test_mail();
	test_mail_params();
	test_rcpt();
	test_paths();
	test_reply_single();
	test_reply_invalid();
	test_reply_multi();
	test_ehlo_forms();
	test_reply_limits();
	test_garbage();
	return check_summary("test_smtp_parse");
}

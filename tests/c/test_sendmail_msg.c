/*
 * test_sendmail_msg: what subrelay-sendmail makes of a piped message
 * (mailmsg.h) and of address-list fields (addrlist.h): recipients from
 * To/Cc/Bcc with folding, comments, quotes and groups; Bcc removed; a
 * From: added only when missing; CRLF, dot-stuffing and the "." line.
 */
#define _GNU_SOURCE 1 /* fmemopen */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "addrlist.h"
#include "mailmsg.h"

static char got[2048];

static bool collect(const char *addr, void *arg)
{
	(void)arg;
	strcat(got, got[0] ? " " : "");
	strcat(got, addr);
	return true;
}

/* The addresses of value joined by spaces, or "ERR: reason". */
static const char *addrs(const char *value)
{
	char err[300];

	got[0] = '\0';
	if (!addrlist_parse(value, strlen(value), collect, NULL, err, sizeof(err)))
		snprintf(got, sizeof(got), "ERR: %s", err);
	return got;
}

static void test_addrlist(void)
{
	CHECK_STR(addrs(" a@example.com"), "a@example.com");
	CHECK_STR(addrs("a@x.org, b@y.org,c@z.org"), "a@x.org b@y.org c@z.org");
	CHECK_STR(addrs("Ann <a@x.org>, \"Doe, John\" <j@y.org>"), "a@x.org j@y.org");
	CHECK_STR(addrs("a@x.org (Ann, the boss), (c) b@y.org"), "a@x.org b@y.org");
	CHECK_STR(addrs("team: a@x.org, Bob <b@y.org>; c@z.org"), "a@x.org b@y.org c@z.org");
	CHECK_STR(addrs("undisclosed-recipients:;"), "");
	CHECK_STR(addrs("Ann\r\n <a@x.org>,\r\n\tb@y.org"), "a@x.org b@y.org");
	CHECK_STR(addrs("<@relay.example:a@x.org>"), "a@x.org");
	CHECK_STR(addrs("\"a b\"@x.org"), "\"a b\"@x.org");
	CHECK_STR(addrs("root"), "root");
	CHECK_STR(addrs("\"Q \\\" (x)\" <q@x.org>"), "q@x.org");
	CHECK_STR(addrs("Ann a@x.org"), "ERR: not an address: Ann a@x.org");
	CHECK_STR(addrs("Ann <a@x.org"), "ERR: not an address: Ann <a@x.org");
	CHECK_STR(addrs("a@x.org (open"), "ERR: unterminated comment or quoted string");
}

static enum mailmsg_status run(const char *in, const struct mailmsg_opts *o, struct mailmsg *m)
{
	char err[300];
	FILE *f = fmemopen((void *)in, strlen(in), "r");
	enum mailmsg_status st = mailmsg_read(f, o, m, err, sizeof(err));

	fclose(f);
	return st;
}

#define CHECK_DATA(m, want) CHECK_MEM((m).data, (m).len, want, strlen(want))

static void test_message(void)
{
	struct mailmsg_opts o = { .dot_ends = true, .extract = true, .from_field = "From: me@x.org\r\n" };
	struct mailmsg m;

	/* -t: To, Cc (folded) and Bcc; Bcc gone; From added; bare LF; dots. */
	CHECK(run("To: A <a@x.org>\nCc: b@x.org,\n  c@x.org\nBcc: hidden@x.org\nSubject: s\n\n.dot\nline\r\n",
	    &o, &m) == MAILMSG_OK);
	CHECK_DATA(m, "To: A <a@x.org>\r\nCc: b@x.org,\r\n  c@x.org\r\nSubject: s\r\nFrom: me@x.org\r\n\r\n..dot\r\nline\r\n");
	CHECK(m.nrcpts == 4);
	if (m.nrcpts == 4) {
		CHECK_STR(m.rcpts[0], "a@x.org");
		CHECK_STR(m.rcpts[2], "c@x.org");
		CHECK_STR(m.rcpts[3], "hidden@x.org");
	}
	mailmsg_free(&m);

	/* A From: of its own is kept; a folded Bcc goes whole. */
	CHECK(run("From: x@y.org\nBcc: a@x.org,\n b@x.org\nTo: c@x.org\n\nbody", &o, &m) == MAILMSG_OK);
	CHECK_DATA(m, "From: x@y.org\r\nTo: c@x.org\r\n\r\nbody\r\n");
	CHECK(m.nrcpts == 3);
	mailmsg_free(&m);

	/* Without -i a "." line ends the input; with it, it is content. */
	CHECK(run("Subject: a\n\none\n.\nafter\n", &o, &m) == MAILMSG_OK);
	CHECK_DATA(m, "Subject: a\r\nFrom: me@x.org\r\n\r\none\r\n");
	mailmsg_free(&m);
	o.dot_ends = false;
	CHECK(run("Subject: a\n\none\n.\nafter\n", &o, &m) == MAILMSG_OK);
	CHECK_DATA(m, "Subject: a\r\nFrom: me@x.org\r\n\r\none\r\n..\r\nafter\r\n");
	mailmsg_free(&m);

	/* A line that is no header field starts the body after a blank line. */
	o.extract = false;
	CHECK(run("Subject: a\nthis is text\n", &o, &m) == MAILMSG_OK);
	CHECK_DATA(m, "Subject: a\r\nFrom: me@x.org\r\n\r\nthis is text\r\n");
	CHECK(m.nrcpts == 0);
	mailmsg_free(&m);

	/* Bcc is removed without -t too; its addresses are not taken. */
	CHECK(run("Bcc: a@x.org\nTo: b@x.org\n\nhi\n", &o, &m) == MAILMSG_OK);
	CHECK_DATA(m, "To: b@x.org\r\nFrom: me@x.org\r\n\r\nhi\r\n");
	CHECK(m.nrcpts == 0);
	mailmsg_free(&m);

	/* Limits and errors. */
	o.max_size = 20;
	CHECK(run("Subject: a\n\n0123456789012345678901234567890\n", &o, &m) == MAILMSG_TOO_BIG);
	mailmsg_free(&m);
	o.max_size = 0;
	o.extract = true;
	CHECK(run("To: Ann a@x.org\n\nhi\n", &o, &m) == MAILMSG_BAD_HEADER);
	mailmsg_free(&m);
	CHECK(run("Subject: \xc3\xa9t\xc3\xa9\n\n", &o, &m) == MAILMSG_OK);
	CHECK(m.eight_bit);
	mailmsg_free(&m);
}

int main(void)
{
	test_addrlist();
	test_message();
	return check_summary("test_sendmail_msg");
}

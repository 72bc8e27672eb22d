/*
 * test_smtp_line.c: cutting the client's command lines. An over-long
 * line must be reported once however it arrives, never buffered whole,
 * and must not swallow the command after it.
 */
#include <string.h>

#include "buf.h"
#include "check.h"
#include "smtp_line.h"

static struct buf in;
static struct smtp_line l;
static char line[COMMAND_LINE_MAX + 1];
static size_t len;

static void feed(const char *s)
{
	CHECK(buf_append(&in, s, strlen(s)));
}

static void feed_n(char c, size_t n)
{
	char chunk[COMMAND_LINE_MAX];

	memset(chunk, c, sizeof(chunk));
	for (size_t k; n > 0; n -= k) {
		k = n < sizeof(chunk) ? n : sizeof(chunk);
		CHECK(buf_append(&in, chunk, k));
	}
}

static enum smtp_line_status next(void)
{
	return smtp_line_next(&l, &in, line, &len);
}

/* The next line must be the command `want`; it is taken out. */
static void expect_command(const char *want)
{
	CHECK(next() == SMTP_LINE_READY);
	CHECK_STR(line, want);
	CHECK(len == strlen(want));
	smtp_line_consume(&l, &in);
}

static void test_line_ends(void)
{
	feed("EHLO x\r\nNOOP\nRSET\r");
	expect_command("EHLO x");
	expect_command("NOOP");
	CHECK(next() == SMTP_LINE_WAIT);
	CHECK(buf_len(&in) == 5); /* an incomplete line stays */
	feed("\n");
	expect_command("RSET");
	CHECK(next() == SMTP_LINE_WAIT);
}

static void test_ready_line_stays_until_consumed(void)
{
	feed("RCPT TO:<a@b>\r\n");
	CHECK(next() == SMTP_LINE_READY);
	CHECK(next() == SMTP_LINE_READY); /* not taken: a command waiting for answers owed */
	expect_command("RCPT TO:<a@b>");
}

static void test_longest_command(void)
{
	feed_n('a', COMMAND_LINE_MAX - 1);
	feed("\r\n");
	CHECK(next() == SMTP_LINE_READY);
	CHECK(len == COMMAND_LINE_MAX - 1);
	smtp_line_consume(&l, &in);
}

static void test_long_line_whole(void)
{
	feed_n('a', COMMAND_LINE_MAX);
	feed("\r\nNOOP\r\n");
	CHECK(next() == SMTP_LINE_LONG);
	expect_command("NOOP");
}

static void test_long_line_in_pieces(void)
{
	feed_n('a', COMMAND_LINE_MAX);
	CHECK(next() == SMTP_LINE_LONG_WAIT);
	CHECK(buf_empty(&in)); /* dropped, not kept */
	feed_n('a', COMMAND_LINE_MAX + 10);
	CHECK(next() == SMTP_LINE_WAIT); /* reported once */
	CHECK(buf_empty(&in));
	feed("aaa\r\nQUIT\r\n");
	CHECK(next() == SMTP_LINE_SKIPPED);
	expect_command("QUIT");
	CHECK(next() == SMTP_LINE_WAIT);
}

int main(void)
{
	buf_init(&in, 16 * 1024);
	test_line_ends();
	test_ready_line_stays_until_consumed();
	test_longest_command();
	test_long_line_whole();
	test_long_line_in_pieces();
	buf_release(&in);
	return check_summary("test_smtp_line");
}

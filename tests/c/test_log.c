/*
 * test_log: the two encoders of a log line (relay.log_format). The line
 * goes to stderr, which the test points at a file and reads back; the
 * timestamp, which changes, is cut off before comparing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

static FILE *captured;

/* What was logged since the last call, from the first `from` on. */
static const char *logged(const char *from)
{
	static char buf[8192];
	size_t n;

	fflush(captured);
	n = fread(buf, 1, sizeof(buf) - 1, captured);
	buf[n] = '\0';
	const char *p = strstr(buf, from);
	return p != NULL ? p : buf;
}

static void test_json(void)
{
	char q[256];

	log_setup(false, LOG_LVL_DEBUG, LOG_FMT_JSON);
	log_info("upstream failed id=%s reason=%s", "ABC", log_quote(q, sizeof(q), "a \"b\"\\ \x01\xff\xc3\xa9"));
	CHECK_STR(logged("\"level\""),
	    "\"level\":\"info\",\"msg\":\"upstream failed\",\"id\":\"ABC\",\"reason\":\"a \\\"b\\\"\\\\ \\u0001\\u00ff\xc3\xa9\"}\n");
	/* Free text stays the message; a colon is not a pair. */
	log_error("reload failed, keeping the running configuration: x.ini:3: unknown key");
	CHECK_STR(logged("\"level\""),
	    "\"level\":\"error\",\"msg\":\"reload failed, keeping the running configuration: x.ini:3: unknown key\"}\n");
	/* Control bytes and broken UTF-8 in text that was not quoted. */
	log_warn("odd\ttext \xe2\x82 end k=v");
	CHECK_STR(logged("\"level\""), "\"level\":\"warn\",\"msg\":\"odd\\u0009text \\u00e2\\u0082 end\",\"k\":\"v\"}\n");
	/* An empty quoted value, and the worker suffix. */
	log_set_worker(2);
	log_info("x empty=%s", log_quote(q, sizeof(q), ""));
	CHECK_STR(logged("\"level\""), "\"level\":\"info\",\"msg\":\"x\",\"empty\":\"\",\"worker\":\"2\"}\n");
	log_set_worker(-1);
	/* The timestamp leads. */
	log_info("t");
	const char *line = logged("{");
	CHECK(strncmp(line, "{\"ts\":\"20", 9) == 0 && strstr(line, "Z\",\"level\":\"info\",\"msg\":\"t\"}\n") != NULL);
}

static void test_logfmt(void)
{
	log_setup(false, LOG_LVL_INFO, LOG_FMT_LOGFMT);
	log_info("message id=%s result=%s", "ABC", "delivered");
	CHECK_STR(logged("level="), "level=info message id=ABC result=delivered\n");
	log_debug("not shown");
	CHECK_STR(logged("level="), "");
}

int main(void)
{
	char path[] = "/tmp/test_log.XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0 || dup2(fd, STDERR_FILENO) < 0 || (captured = fopen(path, "r")) == NULL) {
		perror("test_log: capturing stderr");
		return 99;
	}
	unlink(path);
	test_json();
	test_logfmt();
	return check_summary("test_log");
}

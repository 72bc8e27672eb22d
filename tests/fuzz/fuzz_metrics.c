/*
 * fuzz_metrics: the /metrics HTTP server (metrics.h) on any request a
 * client can send: the input after byte 0 (the split) is sent as it is,
 * in pieces, to metrics.c serving in this process. Invariants:
 *
 *  - a request whose head ends (a blank line) within the request limit
 *    gets a reply; its status is the one its request line asks for
 *    (GET /metrics and /healthz: 200, /readyz: 503 here, another method
 *    on them: 405, any other path: 404), and its Content-Length is the
 *    length of its body.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "fuzz_socket.h"
#include "metrics.h"

#define REQUEST_MAX 8192
#define SERVER_REQUEST_MAX 4096    /* metrics.c's request buffer */

static struct fuzz_socket fs;

static void gauges(FILE *out, void *arg)
{
	(void)arg;
	fputs("subrelay_queue_messages 0\n", out);
}

static bool live(FILE *out, void *arg)
{
	(void)arg;
	fputs("ok\n", out);
	return true;
}

static bool ready(FILE *out, void *arg)
{
	(void)arg;
	fputs("not ready\nprovider primary: not checked yet\n", out);
	return false;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const struct metrics_handlers h = { .gauges = gauges, .live = live, .ready = ready };
	(void)argc;
	(void)argv;
	int fd = fuzz_socket_listen(&fs, "metrics");
	FUZZ_CHECK(metrics_serve(fs.loop, fd, &h) != NULL);
	metrics_message("accepted");
	metrics_attempt("primary", 587, "starttls", "ok");
	return 0;
}

/* Whether the server has the whole head: it reads up to its buffer and
 * looks at it as a C string. */
static bool head_complete(const char *req, size_t len)
{
	char head[SERVER_REQUEST_MAX];
	size_t n = len < sizeof(head) - 1 ? len : sizeof(head) - 1;

	if (len >= sizeof(head) - 1)
		return true;
	memcpy(head, req, n);
	head[n] = '\0';
	return strstr(head, "\r\n\r\n") != NULL || strstr(head, "\n\n") != NULL;
}

/* The status line the request line asks for, worked out on its own:
 * "METHOD PATH[?QUERY] ..." as far as the server's buffer holds it. */
static const char *expected_status(const char *req, size_t len)
{
	static const char *const paths[] = { "/metrics", "/healthz", "/readyz" };
	static const char *const ok[] = { "HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\n",
		"HTTP/1.1 503 Service Unavailable\r\n" };
	char line[SERVER_REQUEST_MAX];
	size_t n = len < sizeof(line) - 1 ? len : sizeof(line) - 1;

	memcpy(line, req, n);
	line[n] = '\0';
	size_t mlen = strcspn(line, " \r\n");
	const char *path = line + mlen + (line[mlen] == ' ');
	size_t plen = strcspn(path, " ?\r\n");
	for (size_t i = 0; i < 3; i++) {
		if (strlen(paths[i]) != plen || memcmp(path, paths[i], plen) != 0)
			continue;
		return mlen == 3 && memcmp(line, "GET", 3) == 0 ? ok[i] : "HTTP/1.1 405 Method Not Allowed\r\n";
	}
	return "HTTP/1.1 404 Not Found\r\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char reply[1 << 16];
	struct fuzz_chunks chunks;

	if (size < 1 || size - 1 > REQUEST_MAX)
		return 0;
	fuzz_chunks_init(&chunks, data[0]);
	const char *req = (const char *)data + 1;
	size_t len = size - 1;
	size_t n = fuzz_socket_request(&fs, req, len, &chunks, reply, sizeof(reply) - 1);
	reply[n] = '\0';

	if (head_complete(req, len))
		FUZZ_CHECK(n > 0);
	if (n == 0)
		return 0;
	const char *status = expected_status(req, len);
	FUZZ_CHECK(strncmp(reply, status, strlen(status)) == 0);
	const char *cl = strstr(reply, "\r\nContent-Length: ");
	const char *body = strstr(reply, "\r\n\r\n");
	FUZZ_CHECK(cl != NULL && body != NULL && cl < body);
	FUZZ_CHECK(strtoul(cl + 18, NULL, 10) == n - (size_t)(body + 4 - reply));
	return 0;
}

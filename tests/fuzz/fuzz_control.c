/*
 * fuzz_control: the control socket (control.h) on any request a local
 * client can send: the input after byte 0 (the split) is sent as it is,
 * in pieces, to control.c serving in this process with stub callbacks
 * (subrelayd's do the work; here every command has something to say).
 * Invariants:
 *
 *  - a non-empty request gets a reply; every reply's first line is "ok"
 *    or "error: REASON", holds no control byte, and the reply ends with
 *    a newline;
 *  - a request over 512 bytes, or with control bytes in its line, is
 *    refused; so is an unknown command.
 */
#include "control.h"
#include "control_commands.h"
#include "fuzz.h"
#include "fuzz_socket.h"

#define REQUEST_MAX 8192

static void st_text(FILE *out, void *arg)
{
	(void)arg;
	fputs("state=running\nsessions=0\n", out);
}

static bool st_show(const char *id, FILE *out, void *arg)
{
	(void)arg;
	fprintf(out, "id=%s\n", id);
	return strcmp(id, "AAAA") == 0;
}

static int st_flush(const char *id, void *arg)
{
	(void)arg;
	return id == NULL || strcmp(id, "AAAA") == 0 ? 1 : -1;
}

static bool st_remove(const char *id, void *arg)
{
	(void)arg;
	return strcmp(id, "AAAA") == 0;
}

static bool st_reload(char *err, size_t errlen, void *arg)
{
	(void)arg;
	snprintf(err, errlen, "/etc/subrelay.ini:3: unknown key\n-o:1: bad value\n");
	return false;
}

static int st_requeue(const char *id, unsigned *left, void *arg)
{
	(void)arg;
	*left = 0;
	return id == NULL || strcmp(id, "AAAA") == 0 ? 1 : -1;
}

static bool st_health(FILE *out, void *arg)
{
	(void)arg;
	fputs("not ready\nprovider primary: not checked yet\n", out);
	return false;
}

static const struct control_ops ops = {
	.status = st_text, .queue_list = st_text, .show = st_show, .flush = st_flush, .remove = st_remove,
	.reload = st_reload, .stats = st_text, .failed_list = st_text, .requeue = st_requeue, .health = st_health,
};

static struct fuzz_socket fs;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct control_socket cs = { .fd = -1 };
	(void)argc;
	(void)argv;
	cs.fd = fuzz_socket_listen(&fs, "control");
	FUZZ_CHECK(control_serve(fs.loop, &cs, &ops, NULL) != NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char reply[65536];
	struct fuzz_chunks chunks;

	if (size < 1 || size - 1 > REQUEST_MAX)
		return 0;
	fuzz_chunks_init(&chunks, data[0]);
	const char *req = (const char *)data + 1;
	size_t len = size - 1;
	size_t n = fuzz_socket_request(&fs, req, len, &chunks, reply, sizeof(reply));

	if (len == 0) {
		FUZZ_CHECK(n == 0);
		return 0;
	}
	FUZZ_CHECK(n > 0 && reply[n - 1] == '\n');
	const char *nl = memchr(reply, '\n', n);
	size_t first = (size_t)(nl - reply);
	FUZZ_CHECK((first == 2 && memcmp(reply, "ok", 2) == 0) || (first > 7 && memcmp(reply, "error: ", 7) == 0));
	for (size_t i = 0; i < first; i++)
		FUZZ_CHECK(!fuzz_is_ctl((unsigned char)reply[i]));

	/* The request line as control.c cuts it: up to LF, a CR before it dropped. */
	const char *lf = memchr(req, '\n', len);
	size_t linelen = lf != NULL ? (size_t)(lf - req) : len;
	if (linelen >= CONTROL_LINE_MAX)
		FUZZ_CHECK(memcmp(reply, "error: request too long", 23) == 0);
	if (linelen > 0 && req[linelen - 1] == '\r')
		linelen--;
	bool ctl = false;
	for (size_t i = 0; i < linelen && linelen < CONTROL_LINE_MAX; i++)
		ctl |= fuzz_is_ctl((unsigned char)req[i]) && req[i] != '\t';
	if (ctl)
		FUZZ_CHECK(memcmp(reply, "error: ", 7) == 0);
	return 0;
}

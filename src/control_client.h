/*
 * control_client: one request to the daemon's control socket, blocking,
 * for the command-line tools (subrelayctl, subrelay-sendmail -bp). Sends
 * the request line, reads the reply until the daemon closes, and splits
 * it into its status line ("ok" or "error: REASON") and its output.
 * Never used inside the daemon (it blocks).
 */
#ifndef SUBRELAY_CONTROL_CLIENT_H
#define SUBRELAY_CONTROL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#define CONTROL_CLIENT_TIMEOUT 60  /* seconds without a byte from the daemon */

enum control_result {
	CONTROL_REPLY_OK,                /* "ok": output follows */
	CONTROL_REPLY_ERROR,           /* "error: ...": the reason is in err */
	CONTROL_REPLY_BAD_PATH,          /* the path cannot be a Unix socket address */
	CONTROL_REPLY_UNREACHABLE,       /* no daemon answers at that path (err says why) */
	CONTROL_REPLY_BROKEN,      /* it answered, then broke or said nonsense (err) */
};

struct control_reply {
	char *text;                /* the whole reply (malloc'd), NULL before */
	const char *output;        /* the lines after the status line */
	size_t output_len;
};

/* Sends `request` (one line, newline included) to the socket at path.
 * The reply is kept in r (control_reply_free) whatever the result. */
enum control_result control_client_request(const char *path, const char *request, struct control_reply *r,
    char *err, size_t errlen);
void control_reply_free(struct control_reply *r);

#endif

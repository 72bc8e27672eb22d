/*
 * fixups: what a submission server adds to a message it accepts (RFC 6409
 * section 8; RFC 5321 4.4): a Received: trace field first, and Date: and
 * Message-ID: when the message has none (legacy senders often omit them,
 * and spam filters punish that). relay.add_missing_headers turns it on.
 *
 * It stands between the session's body pump and the delivery backend, so
 * the spool, the provider and a hybrid tee all see the same message. The
 * header section goes through a header filter (headers.h); the body
 * passes straight on.
 */
#ifndef SUBRELAY_FIXUPS_H
#define SUBRELAY_FIXUPS_H

#include <stdbool.h>

#include "tx.h"

struct fixup_facts {
	const char *helo;          /* the client's EHLO or HELO name */
	const char *peer;          /* its address, "IP:PORT" or "[IP]:PORT"; NULL: a local submission */
	unsigned long uid;         /* peer NULL: the local user who submitted it (maildrop.h) */
	const char *hostname;      /* relay.hostname */
	const char *with;          /* RFC 3848: ESMTP, ESMTPS (over TLS) or ESMTPSA (and authenticated) */
};

/* The fields themselves, complete with their CRLF. */
struct fixup_fields {
	char received[SMTP_PATH_MAX + 1200]; /* every part at its longest */
	char date[80];
	char message_id[ID_LEN + 300];
};

/* Composes them for message id; rcpt is its recipient when it has only
 * one (named in Received:), else NULL. */
void fixups_compose(struct fixup_fields *out, const struct fixup_facts *facts, const char *id, const char *rcpt);

struct fixups;

/* For the body of tx, going to `to`; NULL when out of memory. */
struct fixups *fixups_start(const struct backend *to, struct tx *tx, const struct fixup_facts *facts);
/* Where the body pump writes: a backend whose body goes through the
 * fix-ups (only its body_space and body_commit exist). */
const struct backend *fixups_backend(const struct fixups *f);
/* The body ended: what is held goes on. False while the backend has no
 * room for it: call again after its resume event. */
bool fixups_end(struct fixups *f);
void fixups_free(struct fixups *f);

#endif

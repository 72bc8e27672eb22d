/*
 * hybrid: live first, durable when it must be (relay.delivery = hybrid).
 *
 * A delivery backend (tx.h) made of the two others: the transaction goes
 * live through relay.c while the body is also written, unsynced, to a
 * spool file through spooler.c. The provider's 250 to the end of data is
 * passed on and the file dropped without an fsync. A temporary failure
 * anywhere (no path, a 4xx to MAIL, RCPT, DATA or the end of data, the
 * session lost) switches to the spool: the message is made durable and
 * the client gets `250 2.0.0 Ok: queued as ID`; the queue then delivers
 * it to exactly the recipients the provider did not accept (a 4xx to one
 * RCPT spools that recipient and answers it 250). A 5xx is passed on; a
 * full disk is 452 4.3.1. One log line per message says
 * `delivery=live`, or `delivery=spooled reason=CLASS live=N spooled=M`.
 */
#ifndef SUBRELAY_HYBRID_H
#define SUBRELAY_HYBRID_H

#include <stdbool.h>

#include "queue.h"
#include "runtime.h"
#include "tx.h"

/* Fills b; false when out of memory. session_id (kept) names the client
 * session in log lines. */
bool hybrid_open(struct backend *b, struct runtime *rt, struct queue *q, struct spool *sp, const char *session_id,
    const struct tx_events *events, void *session);

#endif

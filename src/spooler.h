/*
 * spooler: the queue-mode delivery backend (tx.h). The envelope is kept
 * in the transaction; DATA opens a spool file, the body is written to it
 * as it comes, and the end of data hands it to the queue, which makes it
 * durable (fsync of file and directory, commit.c) before the answer
 * `250 2.0.0 Ok: queued as ID`. A full disk is 452 4.3.1, any other
 * spool error 451 4.3.0. Delivery is the queue's, later.
 */
#ifndef SUBRELAY_SPOOLER_H
#define SUBRELAY_SPOOLER_H

#include <stdbool.h>
#include <ev.h>

#include "queue.h"
#include "tx.h"

/* Fills b; false when out of memory. session_id (kept) names the client
 * session in log lines. */
bool spooler_open(struct backend *b, struct ev_loop *loop, struct queue *q, struct spool *sp,
    const char *session_id, const struct tx_events *events, void *session);

#endif

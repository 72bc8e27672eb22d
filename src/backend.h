/*
 * backend: which delivery backend (tx.h) a client session gets.
 *
 * relay.delivery decides: relay.c (passthrough), spooler.c (queue) or
 * hybrid.c (both). This is the one place that knows all three, so the
 * session that drives the ops table knows none of them.
 */
#ifndef SUBRELAY_BACKEND_H
#define SUBRELAY_BACKEND_H

#include <stdbool.h>

#include "runtime.h"
#include "tx.h"

struct queue;
struct spool;

/* Fills b for rt's relay.delivery (q and sp: queue and hybrid only);
 * false when out of memory. session_id (kept) names the client session
 * in log lines; events go to `session`. */
bool backend_open(struct backend *b, struct runtime *rt, struct queue *q, struct spool *sp, const char *session_id,
    const struct tx_events *events, void *session);

#endif

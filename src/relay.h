/*
 * relay: the passthrough delivery backend (tx.h). Nothing touches the
 * disk: MAIL starts the transaction with the provider (utx.h) along the
 * sender's route, and each command is relayed live; the client gets the
 * provider's own answers, or 451 4.4.1 when no path works. A failure
 * before the provider accepted MAIL fails over invisibly (utx.c, path.c);
 * after that a lost provider is 451 4.4.2. The body goes straight into the upstream output
 * buffer, so a slow provider back-pressures the client.
 *
 * Between transactions the upstream session goes to the pool (pool.h),
 * where this client's next MAIL finds it, unless a client waiting for one
 * (max_connections are open) takes it first. On a pooled session MAIL is
 * written at once, and the client's pipelined RCPTs and DATA follow it in
 * the same flight; if that session turns out stale they are sent again on
 * the next.
 */
#ifndef SUBRELAY_RELAY_H
#define SUBRELAY_RELAY_H

#include <stdbool.h>

#include "runtime.h"
#include "tx.h"

/* Fills b; false when out of memory. session_id (kept) names the client
 * session in log lines. owns_outcome: the relay's answers are the
 * client's, so it logs each message's line and counts it in the message
 * metrics; false inside hybrid delivery, which decides the outcome and
 * reports it (with relay_log_message() for a live one). */
bool relay_open(struct backend *b, struct runtime *rt, const char *session_id, const struct tx_events *events,
    void *session, bool owns_outcome);
/* The message line of b's last transaction (a relay backend), with the
 * provider's reply and `suffix` (" key=value ...", may be ""). */
void relay_log_message(const struct backend *b, const char *result, const struct smtp_reply *reply,
    const char *suffix);

#endif

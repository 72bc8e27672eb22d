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

/* How the relay is used: alone (passthrough), or inside hybrid delivery,
 * which decides each message's outcome and has the spool to fall back on. */
struct relay_role {
	/* The relay's answers are the client's: it logs each message's line
	 * and counts it in the message metrics. Hybrid reports them itself
	 * (with relay_log_message() for a live message). */
	bool owns_outcome;
	/* > 0: the longest wait in line for a provider session or for a
	 * paced provider's turn (see path_search_start()), for a caller
	 * with a better fallback. */
	double max_session_wait;
};

/* Fills b; false when out of memory. session_id (kept) names the client
 * session in log lines. */
bool relay_open(struct backend *b, struct runtime *rt, const char *session_id, const struct tx_events *events,
    void *session, struct relay_role role);
/* The message line of b's last transaction (a relay backend), with the
 * provider's reply and `suffix` (" key=value ...", may be ""). */
void relay_log_message(const struct backend *b, const char *result, const struct smtp_reply *reply,
    const char *suffix);

#endif

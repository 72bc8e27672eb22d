/*
 * delivery: one attempt at delivering one spooled message.
 *
 * PATH (a session whose MAIL the provider accepted, through the path
 * chooser and pool) -> ENVELOPE (a RCPT for each pending recipient, DATA
 * behind them: one flight when the provider pipelines) -> BODY (the
 * spooled data) -> DOT (the verdict) -> DONE. Each step is logged at
 * debug level as old -> new. Recipient states in the message are updated
 * as replies come: a 5xx fails a recipient for good, a 2xx to the end of
 * data delivers the recipients accepted in this attempt; what is left
 * pending is the queue's to retry. Past the provider's max_recipients the
 * envelope goes in several transactions (rounds) on the same attempt, a
 * round whose recipients were all refused included. `done` is called exactly once, from
 * the loop; the queue then settles the message and frees the delivery.
 */
#ifndef SUBRELAY_DELIVERY_H
#define SUBRELAY_DELIVERY_H

#include "runtime.h"
#include "spool.h"

struct delivery;

typedef void (*delivery_done_fn)(struct delivery *d, void *arg);

/* Starts an attempt at m (which must outlive it) along its route's
 * providers; NULL when out of memory. */
struct delivery *delivery_start(struct runtime *rt, struct spool *sp, struct spool_msg *m,
    struct provider_cfg *const *providers, unsigned nproviders, delivery_done_fn done, void *arg);
/* Why the attempt did not deliver everything ("" when it did). */
const char *delivery_error(const struct delivery *d);
/* The reply that failed the first recipient failed for good in this
 * attempt ("" when none did): never the 2xx other recipients got. */
const char *delivery_failure(const struct delivery *d);
/* Overrides the error (e.g. max_age reached), for the log line. */
void delivery_set_error(struct delivery *d, const char *error);
/* The message expired: each recipient still pending fails for good with
 * reason, and has its line saying so. */
void delivery_expire(struct delivery *d, const char *reason);
/* The lines of the recipients still pending (deferred, with the error),
 * then the message's line with this attempt's provider, port and mode. */
void delivery_log(struct delivery *d, const char *result);
/* Stops the attempt if it still runs (the message stays as last saved)
 * and frees it; a session between transactions goes back to the pool. */
void delivery_free(struct delivery *d);

#endif

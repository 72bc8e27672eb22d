/*
 * pace: when the next transaction to a provider may start (DESIGN.md
 * "Provider limits"): its `rate`, its `daily_quota`, and the back-off
 * after a throttling reply. One table per process, shared by every
 * configuration generation (a reload keeps the counts and back-offs),
 * keyed by provider name; the limits themselves are read from the
 * provider_cfg given at each call, so a reload changes them at once.
 *
 * - rate N/P: transactions start evenly spaced, one every P/N seconds
 *   (30/m: one every 2 s), with no burst; a start reserves its turn, so
 *   waiting transactions go in the order they asked.
 * - daily_quota N: at most N transactions whose MAIL the provider
 *   accepted in any rolling 24 hours (counted in one-minute buckets,
 *   each leaving the window at the end of its minute), plus those
 *   started and not yet answered.
 * - back-off: a throttling reply (pace_is_throttling()) stops new
 *   transactions for `initial` seconds, doubling at each throttling
 *   reply after a back-off ended, up to `max`; the first message the
 *   provider accepts resets it.
 *
 * Pure bookkeeping: no timers, no I/O, no log. path.c takes and releases
 * turns, utx.c reports replies, queue.c looks before starting deliveries.
 * With relay.workers > 1 each worker paces on its own.
 */
#ifndef SUBRELAY_PACE_H
#define SUBRELAY_PACE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "smtp_parse.h"

/* What holds a transaction back, and its name in log lines. */
#define PACE_BLOCKS(X) \
	X(GO, "none") \
	X(RATE, "rate") \
	X(QUOTA, "daily_quota") \
	X(BACKOFF, "backoff")

enum pace_block {
#define X(sym, name) PACE_##sym,
	PACE_BLOCKS(X)
#undef X
};

const char *pace_block_name(enum pace_block b);

struct pace_table;

struct pace_table *pace_table_new(void);
struct pace_table *pace_table_ref(struct pace_table *t);
void pace_table_unref(struct pace_table *t);

/* Seconds until a transaction to p may start (0: now) and why. */
double pace_delay(struct pace_table *t, const struct provider_cfg *p, double now, enum pace_block *why);
/* A transaction to p takes the next turn (pace_delay() said PACE_GO or
 * PACE_RATE): the one after it is a rate interval later. It counts
 * against the quota until pace_release(). False when out of memory. */
bool pace_take(struct pace_table *t, const struct provider_cfg *p, double now);
/* The transaction is over with p: `accepted` (its MAIL was) counts it
 * in the quota's window. */
void pace_release(struct pace_table *t, const struct provider_cfg *p, double now, bool accepted);

/* A 421, 450, 451 or 454 whose text says rate, throttl, too many or
 * quota (any case), unless it says the limit is this session's alone
 * ("this connection", "per connection", "this session", "per session"). */
bool pace_is_throttling(const struct smtp_reply *r);
/* Backs p off after the throttling reply r; returns the back-off left. */
double pace_throttled(struct pace_table *t, const struct provider_cfg *p, const struct smtp_reply *r, double now,
    double initial, double max);
/* The provider accepted a message: the next back-off starts at `initial`. */
void pace_accepted(struct pace_table *t, const struct provider_cfg *p);
/* The reply that started p's back-off (valid while pace_delay() says PACE_BACKOFF). */
const struct smtp_reply *pace_backoff_reply(struct pace_table *t, const struct provider_cfg *p);

/* p's rate as written ("30/m"), "none" without one. */
const char *pace_rate_text(const struct provider_cfg *p, char *buf, size_t len);

#endif

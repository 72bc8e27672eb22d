/*
 * pool: idle upstream sessions kept for the next message.
 *
 * After a transaction the delivering side (a passthrough session or a
 * queue delivery) hands its ready, authenticated session to the pool
 * instead of saying QUIT; the next path search for that provider takes it
 * and sends MAIL on it at once, skipping connect, TLS and AUTH. At most
 * max_connections idle sessions per provider, each for POOL_IDLE seconds
 * (then QUIT). A pooled session the provider closed is dropped when that
 * is noticed; one that went stale unnoticed fails its MAIL, and the path
 * search then goes on as if the pool were empty, so no message is lost
 * to a stale session. One pool per runtime: sessions never outlive the
 * provider configuration they were opened for.
 */
#ifndef SUBRELAY_POOL_H
#define SUBRELAY_POOL_H

#include <ev.h>

#include "config.h"
#include "upstream.h"

#define POOL_IDLE 30.0
/* Idle sessions beyond max_connections: kept this long, for a burst. */
#define POOL_OVERFLOW_IDLE 2.0

struct pool;

struct pool *pool_new(struct ev_loop *loop);
/* Closes every idle session (no QUIT: the loop may be over). */
void pool_free(struct pool *p);
/* Takes a session that just finished a transaction; closes it instead if
 * it is not idle or the provider already has enough idle sessions. */
void pool_put(struct pool *p, struct upstream *up);
/* An idle session to `provider`, or NULL; *pair is its (port, mode) index. */
struct upstream *pool_take(struct pool *p, const struct provider_cfg *provider, unsigned *pair);
unsigned pool_idle_count(const struct pool *p);
/* The index of up's (port, mode) among provider's pairs. */
unsigned pool_pair_of(const struct provider_cfg *provider, const struct upstream *up);

#endif

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

/*
 * The pool also counts every session open to each provider (being set
 * up, in a transaction, kept by a client or idle here): path.c opens a
 * new one only while the count is below the provider's max_connections,
 * else it waits in line (pool_wait) for one to be given up or pooled.
 */
/* Idle sessions beyond max_connections: kept this long, for a burst. */
#define POOL_OVERFLOW_IDLE 2.0

struct pool;
struct pool_waiter;

/* woken: a session was given up or pooled; false: the wait timed out. */
typedef void (*pool_wake_fn)(void *arg, bool woken);

struct pool *pool_new(struct ev_loop *loop);
/* Closes every idle session (no QUIT: the loop may be over). */
void pool_free(struct pool *p);
/* Takes a session that just finished a transaction; closes it instead if
 * it is not idle or the provider already has enough idle sessions. */
void pool_put(struct pool *p, struct upstream *up);
/* An idle session to `provider`, or NULL; *pair is its (port, mode) index. */
struct upstream *pool_take(struct pool *p, const struct provider_cfg *provider, unsigned *pair);
unsigned pool_idle_count(const struct pool *p);

/* A session to `provider` was opened; upstream_params.given_up is
 * pool_given_up with the pool as context, so the count goes down again. */
void pool_opened(struct pool *p, const struct provider_cfg *provider);
void pool_given_up(void *pool, const struct provider_cfg *provider);
/* Whether another session to `provider` may be opened. */
bool pool_has_room(const struct pool *p, const struct provider_cfg *provider);
/* Whether searches are waiting for a session to `provider`. */
bool pool_wanted(const struct pool *p, const struct provider_cfg *provider);
/* Waits in line (first come, first served) at most `timeout` seconds;
 * cb runs once, from the loop. NULL when out of memory. */
struct pool_waiter *pool_wait(struct pool *p, const struct provider_cfg *provider, double timeout, pool_wake_fn cb,
    void *arg);
void pool_wait_cancel(struct pool_waiter *w);
/* The index of up's (port, mode) among provider's pairs. */
unsigned pool_pair_of(const struct provider_cfg *provider, const struct upstream *up);

#endif

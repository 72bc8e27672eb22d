/*
 * proxy_accept: the phase of a connection on a `listen = ADDR:PORT/proxy`
 * listener before its SMTP session: who the client really is.
 *
 * listener.c hands over each accepted socket. The peer must be in
 * relay.proxy_from (the proxies and load balancers); any other is closed
 * at once. Then the PROXY header (proxy_proto.h) is read, without
 * blocking and without taking a byte past it: each read peeks first and
 * consumes only bytes that belong to the header, so the session that
 * follows starts on a clean socket. (This is the one reader of a client
 * socket outside io.c: the bytes must stay in the kernel, and no TLS or
 * buffering is involved yet.) The header must be complete within
 * PROXY_HEADER_TIMEOUT, or relay.timeout if that is shorter. A refused
 * peer, a malformed header, a timeout or an early close end the
 * connection with a `proxy closed peer=... reason=...` line. At most
 * relay.max_clients connections per process wait for their header; more
 * are closed.
 *
 * Then done() gets the socket with the client's address (the header's;
 * the peer's for a LOCAL or UNKNOWN header, a health check of the
 * proxy's own) and the proxy's, and owns the socket from then on.
 */
#ifndef SUBRELAY_PROXY_ACCEPT_H
#define SUBRELAY_PROXY_ACCEPT_H

#include <sys/socket.h>
#include <ev.h>

#include "config.h"

#define PROXY_HEADER_TIMEOUT 5.0 /* seconds: a proxy sends the header at once */

struct proxy_waits;
typedef void (*proxy_done_fn)(void *arg, int fd, const struct sockaddr *client, const struct sockaddr *proxy);

/* NULL when out of memory (logged). */
struct proxy_waits *proxy_waits_new(struct ev_loop *loop, proxy_done_fn done, void *arg);
/* Takes fd (accepted, non-blocking) from peer, under the settings r. */
void proxy_accept(struct proxy_waits *pw, int fd, const struct sockaddr *peer, const struct relay_cfg *r);
/* Closes the connections still waiting for their header, and frees pw. */
void proxy_waits_free(struct proxy_waits *pw);

#endif

/*
 * dns: non-blocking name resolution on the event loop (c-ares).
 *
 * One resolver per loop. A lookup reports every address of the host,
 * IPv6 and IPv4 interleaved (RFC 8305 order: first family first, then
 * alternating), with the port filled in. Numeric hosts ("127.0.0.1",
 * "::1") are answered without a query (but still through the callback,
 * never re-entrantly from dns_lookup()). Never blocks; times out by
 * c-ares' own timers.
 *
 * Callbacks always run from the loop, never inside dns_lookup() or
 * c-ares; a callback may call dns_lookup(), dns_cancel() on another
 * query, or dns_free(). A lookup gives up after about 6 s with one
 * server (tries of 2 s, then 4 s). The hosts file is /etc/hosts, or
 * $CARES_HOSTS when set (tests use it to give a name several addresses).
 */
#ifndef SUBRELAY_DNS_H
#define SUBRELAY_DNS_H

#include <stdint.h>
#include <sys/socket.h>
#include <ev.h>

struct dns;
struct dns_query;

struct dns_result {
	struct sockaddr_storage *addrs;
	unsigned naddrs;
	const char *error;         /* NULL on success, else a short reason ("host not found", ...) */
};

/* res and its addrs are valid only during the call. */
typedef void (*dns_cb)(const struct dns_result *res, void *arg);

/* NULL (reason logged) when c-ares cannot start, e.g. out of memory. */
struct dns *dns_new(struct ev_loop *loop);
void dns_free(struct dns *dns);
/* Starts a lookup; cb is called exactly once unless dns_cancel() is called first.
 * NULL only when out of memory (cb will not be called). */
struct dns_query *dns_lookup(struct dns *dns, const char *host, uint16_t port, dns_cb cb, void *arg);
/* Valid until cb has run; NULL is ignored. dns_free() cancels every query. */
void dns_cancel(struct dns_query *q);

#endif

/*
 * path: choosing the way upstream for one message. Given the providers
 * of a route, it resolves each provider's host (without blocking) and
 * tries its (port, mode) pairs at every address until one upstream
 * session is ready, logging every attempt with its failure class. It
 * hands the ready session to the caller, who owns it from then on.
 *
 * Failover here is sequential; it never falls back to clear text (a pair
 * is only ever tried in its configured mode).
 */
#ifndef SUBRELAY_PATH_H
#define SUBRELAY_PATH_H

#include <ev.h>
#include <openssl/ssl.h>

#include "config.h"
#include "dns.h"
#include "upstream.h"

/* What sessions share: the loop, the resolver, the configuration and one
 * TLS client context per provider (same index as cfg->providers). */
struct path_env {
	struct ev_loop *loop;
	struct dns *dns;
	const struct config *cfg;
	SSL_CTX **tls_ctx;
};

/* up is NULL when no path worked; error then says why (for the 451 text). */
typedef void (*path_done_cb)(struct upstream *up, const char *error, void *arg);

struct path_search;

/* nproviders must be at least 1. cb is never called from inside
 * path_search_start(); NULL means out of memory. */
struct path_search *path_search_start(const struct path_env *env, struct provider_cfg *const *providers,
    unsigned nproviders, const char *log_id, path_done_cb cb, void *arg);
void path_search_cancel(struct path_search *ps);

#endif

/*
 * path: choosing the way upstream for one message.
 *
 * The route gives providers in order; each provider gives (port, mode)
 * pairs in order, the pair that last worked first; each pair is tried at
 * every resolved address (IPv6 and IPv4 interleaved). Attempts are
 * staggered like Happy Eyeballs (RFC 8305): when the current attempt is
 * not ready after the provider's attempt_delay, the next one starts in
 * parallel, and a failure starts the next one at once. An attempt is
 * ready once the provider has accepted MAIL FROM (connect, greeting,
 * TLS, AUTH and MAIL done); the first ready wins and the others are
 * closed politely. A 4xx before that fails over to the next candidate; a
 * 5xx reply to MAIL is final. It never falls back to clear text: a pair
 * is only ever tried in its configured mode.
 *
 * An idle session from the pool (pool.h) is tried first, for the first
 * provider of the route that has one; if its MAIL fails (it went stale)
 * the search goes on as if the pool were empty.
 *
 * Every attempt, failure (with its class and a hint for mode mistakes)
 * and decision is logged. The winning pair is remembered per provider;
 * while the remembered pair is not the preferred one, a background
 * re-check every recheck_interval tries the preferred pairs and switches
 * back once one works.
 */
#ifndef SUBRELAY_PATH_H
#define SUBRELAY_PATH_H

#include <ev.h>
#include <openssl/ssl.h>

#include "config.h"
#include "dns.h"
#include "upstream.h"

struct path_memory;
struct pool;

/* What sessions share: the loop, the resolver, the configuration, one TLS
 * client context and one memory slot per provider (same index as
 * cfg->providers). */
struct path_env {
	struct ev_loop *loop;
	struct dns *dns;
	const struct config *cfg;
	SSL_CTX **tls_ctx;
	struct path_memory *memory;
	struct pool *pool;         /* idle sessions, tried before any new connection */
	/* Called when a remembered pair changes (queue mode persists it). */
	void (*memory_changed)(const struct path_env *env, void *arg);
	void *memory_arg;
};

struct path_memory *path_memory_new(const struct path_env *env);
void path_memory_free(struct path_memory *m, unsigned nproviders);
/* The memory as text, "PROVIDER PORT MODE" per line (malloc'd), and back
 * (unknown providers or pairs are ignored: the configuration may have
 * changed). */
char *path_memory_export(const struct path_env *env);
void path_memory_import(const struct path_env *env, const char *text);

/*
 * The outcome. up != NULL: MAIL accepted, reply is the provider's answer
 * to it, the caller owns up. up == NULL: reply is the last MAIL reply if
 * one ended the search (a 5xx, or the 4xx of the last candidate), else
 * NULL and error says why no path worked.
 */
typedef void (*path_done_cb)(struct upstream *up, const struct smtp_reply *reply, const char *error, void *arg);
/* MAIL was just written on an idle (kept or pooled) session, which wins
 * unless that MAIL fails: a caller that knows its whole envelope may write
 * its RCPTs and DATA behind it in the same flight (upstream_can_send()).
 * Called with NULL when that session failed, and with it what was piped:
 * the search goes on and the winner, if any, starts with MAIL answered and
 * nothing else in flight. */
typedef void (*path_mail_sent_cb)(struct upstream *up, void *arg);

struct path_search;

/* nproviders must be at least 1. An idle pooled session is tried first.
 * cb is never called from inside path_search_start() (sent, optional,
 * may be); NULL means out of memory. */
struct path_search *path_search_start(const struct path_env *env, struct provider_cfg *const *providers,
    unsigned nproviders, const struct upstream_mail_params *mail, const char *log_id, path_mail_sent_cb sent,
    path_done_cb cb, void *arg);
void path_search_cancel(struct path_search *ps);

#endif

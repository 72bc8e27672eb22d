/*
 * path: choosing the way upstream for one message.
 *
 * The route gives providers in order; each provider gives (port, mode)
 * pairs in order, the pair that last worked first; each pair is tried at
 * every resolved address (IPv6 and IPv4 interleaved). Attempts are
 * staggered like Happy Eyeballs (RFC 8305): when the current attempt is
 * not ready after the provider's attempt_delay, the next one starts in
 * parallel, and a failure starts the next one at once. A ready session
 * (connect, greeting, TLS, AUTH done) is handed to the caller, whose
 * transaction (utx.h) sends MAIL on it; the first whose MAIL the provider
 * accepts wins and the others are closed politely. A 4xx to MAIL fails
 * over to the next candidate; a 5xx is final. It never falls back to
 * clear text: a pair is only ever tried in its configured mode. The
 * search never sends a transaction command itself.
 *
 * An idle session from the pool (pool.h) is tried first, for the first
 * provider of the route that has one; if its MAIL fails (it went stale)
 * the search goes on as if the pool were empty.
 *
 * Pacing (pace.h): before a provider is tried the search takes its turn.
 * A rate turn due within the provider's rate_wait (capped by the
 * caller's max_wait) is waited for; a provider backing off after a
 * throttling reply, out of its daily_quota, or whose turn is further
 * away is passed over for the next provider of the route, and when none
 * is left the caller gets a 451 4.7.0 saying why (or, for a back-off,
 * the provider's own throttling reply). A throttling reply to MAIL backs
 * the provider off and moves on to the next provider at once.
 *
 * Every attempt, failure (with its class and a hint for mode mistakes)
 * and decision is logged. The winning pair is remembered per provider;
 * while the remembered pair is not the preferred one, a background
 * re-check every recheck_interval tries the preferred pairs and switches
 * back once one works.
 *
 * Each provider's outcome is recorded for health.h (metrics.h shares it
 * across workers): a ready session is a success; every candidate failing,
 * or its name not resolving, a failure. Pacing and throttling are neither.
 */
#ifndef SUBRELAY_PATH_H
#define SUBRELAY_PATH_H

#include <ev.h>
#include <openssl/ssl.h>

#include "config.h"
#include "dns.h"
#include "upstream.h"

struct oauth2;
struct pace_table;
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
	struct oauth2 **oauth2;    /* per provider: its token cache (auth = xoauth2), else NULL */
	struct pace_table *pace;   /* per-provider rate, quota and back-off, shared across reloads */
	/* Called when a remembered pair changes (queue mode persists it). */
	void (*memory_changed)(const struct path_env *env, void *arg);
	void *memory_arg;
};

/* The size limit of a message from `sender`: relay.max_message_size, or
 * less when the first provider of its route has a smaller limit (its
 * max_message_size, or the SIZE it announced in EHLO once seen). */
struct path_limits {
	uint64_t size;
	const char *size_by;       /* the provider whose limit it is; NULL: the relay's */
};
void path_limits(const struct path_env *env, const char *sender, struct path_limits *out);

struct path_memory *path_memory_new(const struct path_env *env);
void path_memory_free(struct path_memory *m, unsigned nproviders);
/* The memory as text, "PROVIDER PORT MODE" per line (malloc'd), and back
 * (unknown providers or pairs are ignored: the configuration may have
 * changed). */
char *path_memory_export(const struct path_env *env);
void path_memory_import(const struct path_env *env, const char *text);

struct path_search;

/*
 * A ready session (connected, TLS and AUTH done) for the caller to send
 * MAIL on. The search still owns it and goes on until the caller reports
 * MAIL's fate: path_search_accepted() ends the search and gives the
 * session to the caller; path_search_refused() and path_search_lost()
 * give it back, and the search tries the next candidate (so a failover
 * before MAIL is accepted is invisible to the caller) or ends. While a
 * session is handed over, another that becomes ready waits its turn.
 */
typedef void (*path_ready_cb)(struct path_search *ps, struct upstream *up, void *arg);
/* No path: reply is the MAIL refusal that ended the search (a 5xx, or
 * the 4xx of the last candidate), else NULL and error says why. The
 * search is over and freed. */
typedef void (*path_failed_cb)(const struct smtp_reply *reply, const char *error, void *arg);

/* nproviders must be at least 1. An idle pooled session is tried first
 * and may be handed over from inside path_search_start(); `failed` is
 * only ever called from the loop. max_wait > 0 shortens the wait in line
 * for a session (the provider's max_connections_wait) and for a paced
 * provider's turn (its rate_wait). NULL means out of memory. */
struct path_search *path_search_start(const struct path_env *env, struct provider_cfg *const *providers,
    unsigned nproviders, double max_wait, const char *log_id, path_ready_cb ready, path_failed_cb failed, void *arg);
/* MAIL was accepted on the session handed over: it is the caller's, the
 * pair is remembered, the other attempts are closed and ps is freed. */
void path_search_accepted(struct path_search *ps);
/* The session handed over refused MAIL: a 5xx ends the search, a 4xx
 * moves on to the next candidate. Either way the search closes it. */
void path_search_refused(struct path_search *ps, const struct smtp_reply *reply);
/* The session handed over failed before MAIL was answered. */
void path_search_lost(struct path_search *ps, enum upstream_fail cls, const char *reason);
/* Ends the search, closing every session it owns (the one handed over too). */
void path_search_cancel(struct path_search *ps);

/* A health check of provider i (index in cfg->providers, health.h): the
 * search of a recheck over all its pairs, ending at setup (no MAIL, no
 * pacing turn), its outcome recorded and a working pair remembered.
 * Nothing when a check or recheck of it is running. */
void path_check(const struct path_env *env, unsigned provider);

/* The provider of up answered `command` with a throttling reply
 * (pace_is_throttling()): the whole provider backs off (from the queue's
 * retry_initial, doubling up to its retry_max), logged and counted as
 * result="throttled". */
void path_throttled(const struct path_env *env, struct upstream *up, const char *log_id, const char *command,
    const struct smtp_reply *r);

#endif

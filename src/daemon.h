/*
 * daemon: the running daemon's life, after the command line is parsed
 * and the configuration loaded. Startup order: resolver, runtime, spool
 * and queue (queue mode), listeners, control socket, privilege drop,
 * signals, run. SIGHUP and `subrelayctl reload` build a complete new
 * configuration before swapping it in (a broken file is reported and
 * the running one kept). SIGTERM/SIGINT close the listeners and give
 * sessions in flight relay.drain_timeout to finish; every acknowledged
 * message is already durable in the spool.
 *
 * With relay.workers > 1 the same code runs in each worker (see
 * workers.h); worker 0 owns the queue, the control socket and /metrics.
 */
#ifndef SUBRELAY_DAEMON_H
#define SUBRELAY_DAEMON_H

#include <openssl/ssl.h>

#include "config.h"

struct daemon_args {
	const char *config_file;
	char *const *overrides;
	unsigned noverrides;
};

/* Takes ownership of cfg and tls_ctx. Returns the exit status. With
 * relay.workers > 1 this process becomes the master (workers.h). */
int daemon_run(const struct daemon_args *args, struct config *cfg, SSL_CTX **tls_ctx);

/* ---- for the master (workers.c) ---- */
struct worker_env;
/* One worker's life, in the forked child: like daemon_run, on what the
 * master prepared. Takes ownership of cfg and tls_ctx. */
int daemon_worker(const struct daemon_args *args, struct config *cfg, SSL_CTX **tls_ctx, struct worker_env *we);
/* Loads args' file as a reload would, checked against the running `old`
 * (settings that need a restart); NULL with the reason in *errtext
 * (malloc'd, may be NULL when out of memory). */
struct config *daemon_load_config(const struct daemon_args *args, const struct config *old, SSL_CTX ***ctx,
    char **errtext);

#endif

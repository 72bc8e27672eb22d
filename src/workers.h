/*
 * workers: relay.workers = N > 1. The process that bound everything and
 * dropped privileges (daemon.c) becomes the master: it forks N workers,
 * each running worker_run() (worker.h) on its own copy of the bound
 * env, and only supervises:
 *
 *   - each listener address was bound N times with SO_REUSEPORT, worker
 *     k accepts on socket k (socket-activated sockets are shared);
 *   - queue mode: the master makes the hand-off pipe through which
 *     workers 1..N-1 pass committed ids to worker 0, the only one that
 *     delivers;
 *   - SIGTERM/SIGINT and SIGHUP are forwarded to every worker; after a
 *     `subrelayctl reload` went through in worker 0, worker 0 sends the
 *     master SIGUSR1 and the master reloads the others; a worker that
 *     dies is logged and restarted after 1 s;
 *   - sd_notify READY=1 once every worker has started (MAINPID = master).
 * The master has no event loop and does no SMTP work. Counters are
 * shared (metrics_init_shared()), so /metrics covers every worker.
 */
#ifndef SUBRELAY_WORKERS_H
#define SUBRELAY_WORKERS_H

#include <openssl/ssl.h>

#include "config.h"
#include "daemon.h"
#include "worker.h"

/* The worker count relay.workers asks for (auto: online processors). */
unsigned workers_wanted(const struct config *cfg);
/* Runs the master for we->nworkers workers on we; takes ownership of cfg
 * and tls_ctx (we stays the caller's). Returns the exit status. */
int workers_run(const struct daemon_args *args, struct config *cfg, SSL_CTX **tls_ctx, struct worker_env *we);

#endif

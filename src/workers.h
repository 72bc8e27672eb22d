/*
 * workers: relay.workers > 1. The master process does what needs
 * privileges or must happen once (spool, listeners, control and metrics
 * sockets, privilege drop), then forks N workers and only supervises:
 *
 *   - each listener address is bound N times with SO_REUSEPORT, worker k
 *     accepts on socket k (socket-activated sockets are shared);
 *   - each worker runs daemon_worker(): its own loop, runtime, sessions;
 *   - queue mode: worker 0 owns the queue (scheduler, deliveries, control
 *     socket, /metrics, SPOOL/egress); workers 1..N-1 spool and commit as
 *     usual, then write "ID\n" to a pipe that worker 0 reads (worker 0
 *     also rescans queue/ at start and every minute, so a lost hand-off
 *     only delays a message). Only worker 0 ever delivers;
 *   - passthrough: every worker relays its own sessions; worker 0 serves
 *     the control socket and /metrics;
 *   - SIGTERM/SIGINT and SIGHUP are forwarded to every worker; SIGUSR1
 *     from worker 0 (after `subrelayctl reload` reloaded it) reloads the
 *     others; a worker that dies is logged and restarted after 1 s;
 *   - sd_notify READY=1 once every worker has started (MAINPID = master).
 * Counters are shared (metrics_init_shared()), so /metrics covers all.
 */
#ifndef SUBRELAY_WORKERS_H
#define SUBRELAY_WORKERS_H

#include <stdint.h>
#include <openssl/ssl.h>
#include <sys/types.h>

#include "config.h"
#include "control.h"
#include "daemon.h"
#include "listener.h"
#include "spool.h"

/* What the master prepared for one worker. */
struct worker_env {
	unsigned worker, nworkers;
	pid_t master;
	struct listen_fds listen;          /* every worker's sockets: the worker keeps its own */
	struct control_socket control;     /* fd -1: none */
	int metrics_fd;                    /* -1: none */
	struct spool *spool;               /* queue mode */
	int handoff_rd, handoff_wr;        /* queue mode: ids from the acceptors to worker 0 */
	int ready_fd;                      /* the worker writes a struct worker_ready once it serves */
};

/* The worker count relay.workers asks for (auto: online processors). */
unsigned workers_wanted(const struct config *cfg);
/* Runs the master; takes ownership of cfg and tls_ctx. Returns the exit status. */
int workers_run(const struct daemon_args *args, struct config *cfg, SSL_CTX **tls_ctx, unsigned n);

/* Said once by a worker that serves; the pid tells a replacement from
 * the one that died after writing. */
struct worker_ready {
	uint32_t worker;
	int32_t pid;
};

#endif

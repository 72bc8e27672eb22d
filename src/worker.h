/*
 * worker: one worker's life, the same code whether it runs alone in the
 * process that started (relay.workers = 1) or as one of N forked ones
 * (workers.h). It serves on what the startup bound (struct worker_env):
 * its own loop, resolver, runtime, sessions, then, in that order, queue
 * (queue mode), listeners, control socket and /metrics, signals; then it
 * tells its parent it serves and runs until it stops.
 *
 * Worker 0 owns the queue (scheduler, deliveries, egress memory), the
 * control socket and /metrics. Workers 1..N-1 spool and commit as usual,
 * then write "ID\n" to the hand-off pipe that worker 0 reads (worker 0
 * also rescans queue/ every minute, so a lost hand-off only delays a
 * message). Only worker 0 ever delivers.
 *
 * Reload: SIGHUP or `subrelayctl reload` make a worker build a complete
 * new configuration before swapping it in (a broken file is reported and
 * the running one kept). The parent brackets each reload (systemd's
 * RELOADING=1 / READY=1 when the worker is alone) and, after a control
 * reload went through in worker 0, has the other workers follow.
 *
 * SIGTERM/SIGINT close the listeners and give sessions in flight
 * relay.drain_timeout to finish (every acknowledged message is already
 * durable in the spool); SIGQUIT stops at once.
 */
#ifndef SUBRELAY_WORKER_H
#define SUBRELAY_WORKER_H

#include <stdbool.h>
#include <sys/types.h>
#include <openssl/ssl.h>

#include "config.h"
#include "control.h"
#include "daemon.h"
#include "listener.h"
#include "spool.h"

struct worker_env;

/* The parent's half, called by the worker; a NULL hook has nothing to do. */
struct worker_parent {
	/* Once, when the worker's loop is about to run. */
	void (*serving)(struct worker_env *we, const struct config *cfg);
	/* Around each reload of the worker's configuration; others: it was a
	 * control reload that went through, the other workers should follow. */
	void (*reload_begin)(struct worker_env *we);
	void (*reload_end)(struct worker_env *we, bool others);
};

/* What the startup bound, for worker `worker` of `nworkers`. */
struct worker_env {
	unsigned worker, nworkers;
	pid_t mainpid;                     /* the process systemd knows: the one that bound all this */
	struct listen_fds listen;          /* every worker's sockets: the worker keeps its own */
	struct control_socket control;     /* fd -1: none */
	int metrics_fd;                    /* -1: none */
	struct spool *spool;               /* queue mode */
	int handoff_rd, handoff_wr;        /* -1: none (a worker alone has nobody to hand off to) */
	const struct worker_parent *parent;
	void *parent_arg;
};

/* Runs worker we->worker in this process until it stops. Takes ownership
 * of cfg and tls_ctx, and of the descriptors in we: it serves its own and
 * closes the others' (setting them to -1). Returns the exit status. */
int worker_run(const struct daemon_args *args, struct config *cfg, SSL_CTX **tls_ctx, struct worker_env *we);

/* Loads args' file as a reload would, checked against the running `old`
 * (settings that need a restart); NULL with the reason in *errtext
 * (malloc'd, may be NULL when out of memory). */
struct config *worker_load_config(const struct daemon_args *args, const struct config *old, SSL_CTX ***ctx,
    char **errtext);

#endif

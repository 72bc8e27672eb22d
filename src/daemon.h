/*
 * daemon: the running daemon, after the command line is parsed and the
 * configuration loaded. One startup whatever relay.workers says:
 *
 *   1. bind: spool (queue mode), listeners, control socket, /metrics,
 *      into one struct worker_env (worker.h);
 *   2. drop privileges (privdrop.h);
 *   3. run: relay.workers = 1: worker 0 of 1 in this process, with no
 *      fork and no supervision; N > 1: this process becomes the master
 *      and forks N workers on the same env (workers.h);
 *   4. once they have stopped, close what it bound and remove the
 *      control socket file.
 *
 * Calls go one way: daemon -> workers -> worker, daemon -> worker.
 * Either way the process started is systemd's MAINPID and says READY=1
 * once every worker serves.
 */
#ifndef SUBRELAY_DAEMON_H
#define SUBRELAY_DAEMON_H

#include <openssl/ssl.h>

#include "config.h"

/* What a reload loads again: the command line's file and -o overrides. */
struct daemon_args {
	const char *config_file;
	char *const *overrides;
	unsigned noverrides;
};

/* Takes ownership of cfg and tls_ctx. Returns the exit status. */
int daemon_run(const struct daemon_args *args, struct config *cfg, SSL_CTX **tls_ctx);

#endif

/*
 * daemon: the running daemon's life, after the command line is parsed
 * and the configuration loaded. Startup order: resolver, runtime, spool
 * and queue (queue mode), listeners, control socket, privilege drop,
 * signals, run. SIGHUP and `subrelayctl reload` build a complete new
 * configuration before swapping it in (a broken file is reported and
 * the running one kept). SIGTERM/SIGINT close the listeners and give
 * sessions in flight relay.drain_timeout to finish; every acknowledged
 * message is already durable in the spool.
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

/* Takes ownership of cfg and tls_ctx. Returns the exit status. */
int daemon_run(const struct daemon_args *args, struct config *cfg, SSL_CTX **tls_ctx);

#endif

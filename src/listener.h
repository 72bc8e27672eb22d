/*
 * listener: the listening sockets. Binds every relay.listen address
 * (IPv4 and IPv6, port 0 for an ephemeral port), logs each bound
 * address as `listening address=IP:PORT`, accepts in a loop and applies
 * the allow list (others get 554 5.7.1, unless relay.users_file lets
 * them authenticate) and max_clients (421 4.7.0) before a session starts. Under systemd socket activation the passed
 * sockets replace relay.listen.
 *
 * Two steps: the startup binds every address before privileges are
 * dropped (listen_fds_bind), then each worker serves its own socket of
 * each address (listeners_serve). With relay.workers = N > 1 an address
 * is bound N times with SO_REUSEPORT (the kernel spreads connections
 * over them), one socket per worker; `listening address=` is still
 * logged once per address. Passed (socket-activated) sockets cannot be
 * multiplied: every worker shares them.
 *
 * An address with /proxy (listen = ADDR:PORT/proxy; a passed socket bound
 * to such an address too) hands each connection to proxy_accept.c first,
 * and the allow list applies to the client address its PROXY header
 * carries; its `listening` line ends with `proxy=yes`.
 */
#ifndef SUBRELAY_LISTENER_H
#define SUBRELAY_LISTENER_H

#include "smtp_server.h"

struct listeners;

/* The bound sockets: fd[addr * per + worker] (per = 1: shared), and
 * whether each address speaks implicit TLS (never for passed sockets). */
struct listen_fds {
	unsigned naddr, per;
	int *fd;
	unsigned *flags; /* flags[addr]: LISTEN_* (cfgval.h) of each address */
};
/* False (with the reason logged, nothing left open) if an address cannot be bound. */
bool listen_fds_bind(const struct relay_cfg *r, unsigned nworkers, struct listen_fds *out);
void listen_fds_close(struct listen_fds *lf);
/* Accepts on worker's sockets (duplicated: lf stays the caller's); NULL
 * with the reason logged. */
struct listeners *listeners_serve(struct server_env *env, const struct listen_fds *lf, unsigned worker);
/* Stops accepting and closes the sockets (on shutdown). */
void listeners_close(struct listeners *ls);

#endif

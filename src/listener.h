/*
 * listener: the listening sockets. Binds every relay.listen address
 * (IPv4 and IPv6, port 0 for an ephemeral port), logs each bound
 * address as `listening address=IP:PORT`, accepts in a loop and applies
 * the allow list (others get 554 5.7.1) and max_clients (421 4.7.0)
 * before a session starts. Under systemd socket activation the passed
 * sockets replace relay.listen.
 *
 * With relay.workers > 1 the master binds before forking: N sockets per
 * address with SO_REUSEPORT (the kernel spreads connections over them),
 * one per worker, and logs `listening address=` once per address; each
 * worker adopts its own socket of each address. Passed (socket-activated)
 * sockets cannot be multiplied: every worker shares them.
 */
#ifndef SUBRELAY_LISTENER_H
#define SUBRELAY_LISTENER_H

#include "smtp_server.h"

struct listeners;

/* NULL (with the reason logged) if any address cannot be bound. */
struct listeners *listeners_open(struct server_env *env);
/* Stops accepting and closes the sockets (on shutdown). */
void listeners_close(struct listeners *ls);

/* Sockets bound before fork: fd[addr * per + worker] (per = 1: shared). */
struct listen_fds {
	unsigned naddr, per;
	int *fd;
};
/* False (with the reason logged, nothing left open) if an address cannot be bound. */
bool listen_fds_bind(const struct relay_cfg *r, unsigned nworkers, struct listen_fds *out);
int listen_fds_get(const struct listen_fds *lf, unsigned addr, unsigned worker);
void listen_fds_close(struct listen_fds *lf);
/* Accepts on worker's sockets (duplicated: lf stays the caller's). */
struct listeners *listeners_adopt(struct server_env *env, const struct listen_fds *lf, unsigned worker);

#endif

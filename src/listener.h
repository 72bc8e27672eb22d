/*
 * listener: the listening sockets. Binds every relay.listen address
 * (IPv4 and IPv6, port 0 for an ephemeral port), logs each bound
 * address as `listening address=IP:PORT`, accepts in a loop and applies
 * the allow list (others get 554 5.7.1) and max_clients (421 4.7.0)
 * before a session starts. Under systemd socket activation the passed
 * sockets replace relay.listen.
 */
#ifndef SUBRELAY_LISTENER_H
#define SUBRELAY_LISTENER_H

#include "smtp_server.h"

struct listeners;

/* NULL (with the reason logged) if any address cannot be bound. */
struct listeners *listeners_open(struct server_env *env);
/* Stops accepting and closes the sockets (on shutdown). */
void listeners_close(struct listeners *ls);

#endif

/*
 * peer_count: sessions alive per client address, so that one source can
 * be capped (relay.max_clients_per_ip) without scanning every session.
 * IPv4 and IPv6 addresses are counted as 16-byte keys (IPv4 mapped); the
 * port is ignored. Memory is one small node per distinct address with a
 * session alive.
 */
#ifndef SUBRELAY_PEER_COUNT_H
#define SUBRELAY_PEER_COUNT_H

#include <stdbool.h>
#include <sys/socket.h>

struct peer_count;

/* The key of an address (IPv4 mapped into IPv6); false for other families
 * (a UNIX socket under socket activation), which are not counted. */
struct peer_key {
	unsigned char addr[16];
};
bool peer_key_of(const struct sockaddr *sa, struct peer_key *key);
/* True for 127.0.0.0/8 and ::1: the applications beside the daemon. */
bool peer_key_is_loopback(const struct peer_key *key);

struct peer_count *peer_count_new(void);
void peer_count_free(struct peer_count *pc);
/* Sessions alive from that address. */
unsigned peer_count_get(const struct peer_count *pc, const struct peer_key *key);
/* One more (false when out of memory: then it is not counted). */
bool peer_count_add(struct peer_count *pc, const struct peer_key *key);
/* One less; the address's node goes with its last session. */
void peer_count_remove(struct peer_count *pc, const struct peer_key *key);

#endif

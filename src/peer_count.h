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

/*
 * With relay.workers, the cap is for the whole daemon: every worker also
 * publishes its sessions per bucket of addresses (the hash buckets above)
 * in a block the workers share, and adds the other workers' count of the
 * client's bucket to its own exact count. Addresses that share a bucket
 * are counted together there, so the cap can only come early, and only
 * when other workers hold many sessions from addresses of one bucket in
 * 4096: a source able to arrange that could as well fill max_clients.
 * Connections that two workers admit at the same moment may each pass:
 * the cap can be overshot by at most one per other worker, briefly.
 */
/* The master, before the first fork; false (errno set) without memory. */
bool peer_count_share(unsigned nworkers);
/* In worker k, before its first session: its row of the block. */
void peer_count_set_worker(unsigned k);
/* The master, once worker k is gone: its sessions no longer count. */
void peer_count_worker_gone(unsigned k);
/* Sessions the other workers have in key's bucket (0 without sharing). */
unsigned peer_count_others(const struct peer_key *key);

#endif

/* peer_count: sessions alive per client address (see peer_count.h). */
#include "peer_count.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PEER_BUCKETS 4096 /* a power of two; chains stay short for thousands of addresses */

struct peer_node {
	struct peer_key key;
	unsigned sessions;
	struct peer_node *next;
};

struct peer_count {
	struct peer_node *buckets[PEER_BUCKETS];
};

/* The workers' shared block (peer_count.h): row k, PEER_BUCKETS counters,
 * is written by worker k alone (relaxed atomics: a count read a moment
 * late is as good as one read a moment early) and cleared by the master
 * once that worker is gone. NULL: one process, nothing shared. */
static uint32_t *shared_rows;
static unsigned shared_nrows, my_row;

bool peer_key_of(const struct sockaddr *sa, struct peer_key *key)
{
	memset(key, 0, sizeof(*key));
	if (sa->sa_family == AF_INET6) {
		memcpy(key->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return true;
	}
	if (sa->sa_family == AF_INET) {
		key->addr[10] = key->addr[11] = 0xff;
		memcpy(key->addr + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	return false;
}

bool peer_key_is_loopback(const struct peer_key *key)
{
	static const unsigned char v4_mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const unsigned char v6_loopback[16] = { [15] = 1 };

	if (memcmp(key->addr, v4_mapped, sizeof(v4_mapped)) == 0)
		return key->addr[12] == 127;
	return memcmp(key->addr, v6_loopback, sizeof(v6_loopback)) == 0;
}

/* FNV-1a over the 16 bytes. */
static unsigned bucket_of(const struct peer_key *key)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < sizeof(key->addr); i++)
		h = (h ^ key->addr[i]) * 16777619u;
	return h & (PEER_BUCKETS - 1);
}

struct peer_count *peer_count_new(void)
{
	return calloc(1, sizeof(struct peer_count));
}

void peer_count_free(struct peer_count *pc)
{
	if (pc == NULL)
		return;
	for (unsigned i = 0; i < PEER_BUCKETS; i++) {
		for (struct peer_node *n = pc->buckets[i], *next; n != NULL; n = next) {
			next = n->next;
			free(n);
		}
	}
	free(pc);
}

static struct peer_node **find(struct peer_count *pc, const struct peer_key *key)
{
	struct peer_node **at = &pc->buckets[bucket_of(key)];
	while (*at != NULL && memcmp(&(*at)->key, key, sizeof(*key)) != 0)
		at = &(*at)->next;
	return at;
}

unsigned peer_count_get(const struct peer_count *pc, const struct peer_key *key)
{
	for (const struct peer_node *n = pc->buckets[bucket_of(key)]; n != NULL; n = n->next)
		if (memcmp(&n->key, key, sizeof(*key)) == 0)
			return n->sessions;
	return 0;
}

bool peer_count_add(struct peer_count *pc, const struct peer_key *key)
{
	struct peer_node **at = find(pc, key);
	if (*at == NULL) {
		*at = calloc(1, sizeof(**at));
		if (*at == NULL)
			return false;
		(*at)->key = *key;
	}
	(*at)->sessions++;
	if (shared_rows != NULL)
		__atomic_fetch_add(&shared_rows[my_row * PEER_BUCKETS + bucket_of(key)], 1, __ATOMIC_RELAXED);
	return true;
}

void peer_count_remove(struct peer_count *pc, const struct peer_key *key)
{
	struct peer_node **at = find(pc, key);
	struct peer_node *n = *at;
	if (n == NULL)
		return;
	if (shared_rows != NULL)
		__atomic_fetch_sub(&shared_rows[my_row * PEER_BUCKETS + bucket_of(key)], 1, __ATOMIC_RELAXED);
	if (--n->sessions == 0) {
		*at = n->next;
		free(n);
	}
}

bool peer_count_share(unsigned nworkers)
{
	void *p = mmap(NULL, (size_t)nworkers * PEER_BUCKETS * sizeof(uint32_t), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return false;
	shared_rows = p;
	shared_nrows = nworkers;
	return true;
}

void peer_count_set_worker(unsigned k)
{
	my_row = k < shared_nrows ? k : 0;
}

void peer_count_worker_gone(unsigned k)
{
	for (unsigned i = 0; shared_rows != NULL && k < shared_nrows && i < PEER_BUCKETS; i++)
		__atomic_store_n(&shared_rows[k * PEER_BUCKETS + i], 0, __ATOMIC_RELAXED);
}

unsigned peer_count_others(const struct peer_key *key)
{
	unsigned b = bucket_of(key), n = 0;

	for (unsigned k = 0; shared_rows != NULL && k < shared_nrows; k++)
		if (k != my_row)
			n += __atomic_load_n(&shared_rows[k * PEER_BUCKETS + b], __ATOMIC_RELAXED);
	return n;
}

/* peer_count: sessions alive per client address (see peer_count.h). */
#include "peer_count.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PEER_BUCKETS 4096 /* a power of two; chains stay short for thousands of addresses */

struct peer_node {
	struct peer_key key;
	unsigned sessions;
	struct peer_node *next;
};

struct peer_count {
	struct peer_node *buckets[PEER_BUCKETS];
};

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
	return true;
}

void peer_count_remove(struct peer_count *pc, const struct peer_key *key)
{
	struct peer_node **at = find(pc, key);
	struct peer_node *n = *at;
	if (n == NULL)
		return;
	if (--n->sessions == 0) {
		*at = n->next;
		free(n);
	}
}

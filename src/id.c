#include "id.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

/* Crockford's base32: no I, L, O, U, so an ID read aloud stays unambiguous. */
static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static uint64_t state;
static bool seeded;

/* A forked worker must not replay its parent's sequence: it seeds anew. */
static void forget_seed(void)
{
	seeded = false;
}

void id_new(char out[ID_LEN + 1])
{
	static bool atfork_set;
	uint64_t secs = (uint64_t)time(NULL) - 1577836800u;

	/* Seeded once per process; then splitmix64: unique and well spread,
	 * no syscall per ID. */
	if (!seeded) {
		if (getrandom(&state, sizeof(state), GRND_NONBLOCK) != (ssize_t)sizeof(state))
			state = (uint64_t)clock() ^ (secs << 20);
		seeded = true;
		if (!atfork_set)
			atfork_set = pthread_atfork(NULL, NULL, forget_seed) == 0;
	}
	uint64_t rnd = (state += 0x9e3779b97f4a7c15u);
	rnd = (rnd ^ (rnd >> 30)) * 0xbf58476d1ce4e5b9u;
	rnd = (rnd ^ (rnd >> 27)) * 0x94d049bb133111ebu;
	rnd ^= rnd >> 31;
	/* 6 symbols of time (30 bits: until 2054), 6 of randomness. */
	for (int i = 5; i >= 0; i--, secs >>= 5)
		out[i] = alphabet[secs & 31];
	for (int i = 11; i >= 6; i--, rnd >>= 5)
		out[i] = alphabet[rnd & 31];
	out[ID_LEN] = '\0';
}

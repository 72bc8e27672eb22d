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

	/* Seeded once per process, then a counter through a bijection of the
	 * 30-bit space (odd multipliers and xor-shifts): no two IDs of one
	 * process collide within 2^30, they still look random, and no syscall
	 * per ID. Other processes have their own seeds; the spool never
	 * replaces a file in any case (spool_finish). */
	if (!seeded) {
		if (getrandom(&state, sizeof(state), GRND_NONBLOCK) != (ssize_t)sizeof(state))
			state = (uint64_t)clock() ^ (secs << 20);
		seeded = true;
		if (!atfork_set)
			atfork_set = pthread_atfork(NULL, NULL, forget_seed) == 0;
	}
	const uint32_t mask = (1u << 30) - 1;
	uint32_t rnd = (uint32_t)(state++) & mask;
	rnd = (rnd * 0x2545f491u) & mask;
	rnd ^= rnd >> 15;
	rnd = (rnd * 0x1b873593u) & mask;
	rnd ^= rnd >> 13;
	/* 6 symbols of time (30 bits: until 2054), 6 of randomness. */
	for (int i = 5; i >= 0; i--, secs >>= 5)
		out[i] = alphabet[secs & 31];
	for (int i = 11; i >= 6; i--, rnd >>= 5)
		out[i] = alphabet[rnd & 31];
	out[ID_LEN] = '\0';
}

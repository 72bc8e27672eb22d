#include "id.h"

#include <stdint.h>
#include <sys/random.h>
#include <time.h>

/* Crockford's base32: no I, L, O, U, so an ID read aloud stays unambiguous. */
static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void id_new(char out[ID_LEN + 1])
{
	static uint64_t counter;
	uint64_t rnd = 0;
	uint64_t secs = (uint64_t)time(NULL) - 1577836800u;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (uint64_t)clock() ^ (secs << 20);
	rnd += counter++;
	/* 6 symbols of time (30 bits: until 2054), 6 of randomness. */
	for (int i = 5; i >= 0; i--, secs >>= 5)
		out[i] = alphabet[secs & 31];
	for (int i = 11; i >= 6; i--, rnd >>= 5)
		out[i] = alphabet[rnd & 31];
	out[ID_LEN] = '\0';
}

/*
 * fuzz.h: what the libFuzzer targets of tests/fuzz share (README
 * "Fuzzing"). Each target is one fuzz_NAME.c defining
 * LLVMFuzzerTestOneInput(); a broken invariant is reported with
 * FUZZ_CHECK, which aborts so that libFuzzer keeps the input.
 *
 * Chunking: a target that feeds a stream in pieces (as the network
 * delivers it) takes the input's first byte as the seed of the piece
 * sizes, so the fuzzer varies the split as it varies the bytes, and a
 * crash file replays the same split.
 */
#ifndef SUBRELAY_FUZZ_H
#define SUBRELAY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

struct fuzz_chunks {
	uint32_t state;            /* xorshift32 */
	unsigned max;              /* largest piece; 0: everything at once */
};

/* Seed 0 means one piece, 1 one byte at a time, others random pieces of
 * up to 2..64 bytes. */
static inline void fuzz_chunks_init(struct fuzz_chunks *c, uint8_t seed)
{
	c->state = 0x9e3779b9u ^ ((uint32_t)seed * 2654435761u);
	c->max = seed == 0 ? 0 : seed == 1 ? 1 : 2u + (seed & 63u);
}

/* The size of the next piece, at most `left` (and at least 1 when left > 0). */
static inline size_t fuzz_chunk(struct fuzz_chunks *c, size_t left)
{
	if (c->max == 0)
		return left;
	c->state ^= c->state << 13;
	c->state ^= c->state >> 17;
	c->state ^= c->state << 5;
	size_t n = 1 + c->state % c->max;
	return n < left ? n : left;
}

/* A control byte as the log must never show it (log.c quotes them). */
static inline int fuzz_is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

#endif

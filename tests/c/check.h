/*
 * check.h: the smallest unit-test kit. CHECK() records a failure with
 * file and line and goes on; check_summary() prints "N passed, N failed"
 * for this program and returns the exit status (0 or 1) for main().
 */
#ifndef SUBRELAY_CHECK_H
#define SUBRELAY_CHECK_H

#include <stdio.h>
#include <string.h>

static unsigned check_passed, check_failed;

#define CHECK(cond) do { \
	if (cond) { check_passed++; } else { check_failed++; \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_STR(got, want) do { \
	const char *check_g_ = (got), *check_w_ = (want); \
	if (check_g_ != NULL && strcmp(check_g_, check_w_) == 0) { check_passed++; } else { check_failed++; \
		fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, \
		    check_g_ ? check_g_ : "(null)", check_w_); } \
} while (0)

#define CHECK_MEM(got, gotlen, want, wantlen) do { \
	if ((gotlen) == (wantlen) && memcmp((got), (want), (gotlen)) == 0) { check_passed++; } else { check_failed++; \
		fprintf(stderr, "%s:%d: bytes differ: got %zu bytes \"%.*s\", want %zu bytes \"%.*s\"\n", \
		    __FILE__, __LINE__, (size_t)(gotlen), (int)(gotlen), (const char *)(got), \
		    (size_t)(wantlen), (int)(wantlen), (const char *)(want)); } \
} while (0)

static inline int check_summary(const char *name)
{
	printf("%s: %u passed, %u failed\n", name, check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif

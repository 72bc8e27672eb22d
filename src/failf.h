/*
 * failf: the one way a parser or loader reports why it failed: a
 * printf-style reason into the caller's buffer, and false to return.
 */
#ifndef SUBRELAY_FAILF_H
#define SUBRELAY_FAILF_H

#include <stdbool.h>
#include <stddef.h>

bool failf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

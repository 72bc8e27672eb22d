/*
 * users: the relay.users_file table of clients that may authenticate.
 *
 * Lines `user:HASH` (a crypt(3) hash: yescrypt `$y$`, SHA-512 `$6$`, or
 * any other prefix libcrypt knows), `#` comments and blank lines. Read
 * once per configuration load (so a reload re-reads it); a bad line makes
 * the whole file invalid. Pure lookup afterwards: the verification itself
 * is authpool.c's, off the event loop.
 */
#ifndef SUBRELAY_USERS_H
#define SUBRELAY_USERS_H

#include <stddef.h>

#define USER_NAME_MAX 128

struct users;

/* Parses the file's text; on failure err is "PATH:LINE: reason" and NULL is returned. */
struct users *users_parse(const char *text, const char *path, char *err, size_t errlen);
/* Reads and parses the file at path (err as above, or "PATH: reason"). */
struct users *users_load(const char *path, char *err, size_t errlen);
/* The hash of name, or NULL when there is no such user. */
const char *users_hash(const struct users *u, const char *name);
/* A hash of the file's kind that matches no password: an unknown user
 * costs the same time as a known one (no user enumeration by timing). */
const char *users_decoy_hash(const struct users *u);
unsigned users_count(const struct users *u);
void users_free(struct users *u);

#endif

/*
 * users.c: see users.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* explicit_bzero */
#endif
#include "users.h"
#include "failf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Larger than any sane list of clients: the wrong file, surely. */
#define USERS_FILE_MAX (1024 * 1024)
#define HASH_MAX 512

struct user {
	char *name;
	char *hash;
};

struct users {
	struct user *v;
	unsigned n;
};

/* What crypt(3) can verify: "$id$..." with a known shape, no blanks. */
static bool hash_ok(const char *h, size_t len)
{
	if (len < 4 || len > HASH_MAX || h[0] != '$' || memchr(h + 1, '$', len - 1) == NULL)
		return false;
	for (size_t i = 0; i < len; i++)
		if (h[i] <= ' ' || h[i] == ':' || (unsigned char)h[i] >= 0x7f)
			return false;
	return true;
}

static bool name_ok(const char *s, size_t len)
{
	if (len == 0 || len > USER_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] == 0x7f)
			return false;
	return true;
}

static bool add_user(struct users *u, const char *name, size_t nlen, const char *hash, size_t hlen)
{
	struct user *v = realloc(u->v, (u->n + 1) * sizeof(*v));

	if (v == NULL)
		return false;
	u->v = v;
	v[u->n].name = strndup(name, nlen);
	v[u->n].hash = strndup(hash, hlen);
	if (v[u->n].name == NULL || v[u->n].hash == NULL) {
		free(v[u->n].name);
		free(v[u->n].hash);
		return false;
	}
	u->n++;
	return true;
}

/* One line (without its end); false with err set when it is bad. */
static bool parse_line(struct users *u, const char *s, size_t len, char *err, size_t errlen)
{
	while (len > 0 && (s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	if (len == 0 || *s == '#')
		return true;
	const char *colon = memchr(s, ':', len);
	if (colon == NULL)
		return failf(err, errlen, "expected user:HASH");
	size_t nlen = (size_t)(colon - s), hlen = len - nlen - 1;
	if (!name_ok(s, nlen))
		return failf(err, errlen, "bad user name (1 to %d characters, no blanks)", USER_NAME_MAX);
	if (!hash_ok(colon + 1, hlen))
		return failf(err, errlen, "user %.*s: not a crypt(3) hash (e.g. $y$... from mkpasswd, $6$... from "
		    "openssl passwd -6)", (int)nlen, s);
	for (unsigned i = 0; i < u->n; i++)
		if (strlen(u->v[i].name) == nlen && memcmp(u->v[i].name, s, nlen) == 0)
			return failf(err, errlen, "user %.*s: listed twice", (int)nlen, s);
	if (!add_user(u, s, nlen, colon + 1, hlen))
		return failf(err, errlen, "out of memory");
	return true;
}

struct users *users_parse(const char *text, const char *path, char *err, size_t errlen)
{
	struct users *u = calloc(1, sizeof(*u));
	unsigned line = 0;
	char why[256];

	if (u == NULL) {
		failf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	for (const char *p = text; *p != '\0';) {
		const char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		line++;
		if (!parse_line(u, p, len, why, sizeof(why))) {
			failf(err, errlen, "%s:%u: %s", path, line, why);
			users_free(u);
			return NULL;
		}
		p += len + (end != NULL);
	}
	if (u->n == 0) {
		failf(err, errlen, "%s: no users in it", path);
		users_free(u);
		return NULL;
	}
	return u;
}

struct users *users_load(const char *path, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "r");
	char *text;
	size_t n;
	bool bad;

	if (fp == NULL) {
		failf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	if ((text = malloc(USERS_FILE_MAX + 1)) == NULL) {
		fclose(fp);
		failf(err, errlen, "out of memory");
		return NULL;
	}
	setvbuf(fp, NULL, _IONBF, 0); /* no copy of the hashes in a stdio buffer */
	n = fread(text, 1, USERS_FILE_MAX + 1, fp);
	bad = ferror(fp);
	fclose(fp);
	struct users *u = NULL;
	if (bad)
		failf(err, errlen, "cannot read \"%s\"", path);
	else if (n > USERS_FILE_MAX)
		failf(err, errlen, "\"%s\" is larger than %d bytes (the wrong file?)", path, USERS_FILE_MAX);
	else if (memchr(text, '\0', n) != NULL)
		failf(err, errlen, "\"%s\" holds a NUL byte (the wrong file?)", path);
	else {
		text[n] = '\0';
		u = users_parse(text, path, err, errlen);
	}
	explicit_bzero(text, n < USERS_FILE_MAX ? n : USERS_FILE_MAX);
	free(text);
	return u;
}

const char *users_hash(const struct users *u, const char *name)
{
	for (unsigned i = 0; i < u->n; i++)
		if (strcmp(u->v[i].name, name) == 0)
			return u->v[i].hash;
	return NULL;
}

const char *users_decoy_hash(const struct users *u)
{
	/* The first user's hash: same algorithm and cost; a password that
	 * verifies against it is still refused (the caller knows the user
	 * is unknown). */
	return u->v[0].hash;
}

unsigned users_count(const struct users *u)
{
	return u->n;
}

void users_free(struct users *u)
{
	if (u == NULL)
		return;
	for (unsigned i = 0; i < u->n; i++) {
		free(u->v[i].name);
		explicit_bzero(u->v[i].hash, strlen(u->v[i].hash));
		free(u->v[i].hash);
	}
	free(u->v);
	free(u);
}

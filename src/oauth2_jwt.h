/*
 * oauth2_jwt: the jwt_bearer grant's assertion (RFC 7523), from a Google
 * service account's JSON key file.
 *
 * Pure functions, no I/O: the configuration reads the key file and checks
 * it with oauth2_key_load() (so `-t` catches a bad key); the token cache
 * (oauth2.h) loads it again and signs one JWT per fetch: header
 * {"alg":"RS256","typ":"JWT"}, claims iss, scope, aud, iat, exp = iat +
 * 3600 and sub (the mailbox), RS256-signed, base64url. The private key
 * never leaves this module and the struct that holds it.
 */
#ifndef SUBRELAY_OAUTH2_JWT_H
#define SUBRELAY_OAUTH2_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <openssl/evp.h>

struct oauth2_key {
	char *client_email;
	char *token_uri;           /* NULL when the file has none */
	EVP_PKEY *pkey;            /* RSA */
};

/* Parses the key file's text: client_email, private_key (PEM, RSA) and
 * token_uri. False with the reason in err (never quoting the key). */
bool oauth2_key_load(const char *json, struct oauth2_key *key, char *err, size_t errlen);
void oauth2_key_free(struct oauth2_key *key);

/* The signed assertion (malloc'd; the caller wipes and frees it), or NULL
 * with the reason in err. sub may be NULL (no sub claim). */
char *oauth2_jwt(const struct oauth2_key *key, const char *scope, const char *aud, const char *sub, time_t now,
    char *err, size_t errlen);

#endif

/*
 * sasl: the server side of SASL PLAIN (RFC 4616) and LOGIN as an SMTP
 * server sees them (RFC 4954): base64 decoding of a client response and
 * splitting the PLAIN message. Pure functions, no sockets, unit-tested.
 * The caller wipes the credentials (sasl_creds_wipe) once verified.
 */
#ifndef SUBRELAY_SASL_H
#define SUBRELAY_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "users.h"

#define SASL_PASS_MAX 256

struct sasl_creds {
	char user[USER_NAME_MAX + 1];
	char pass[SASL_PASS_MAX + 1];
};

enum sasl_status {
	SASL_OK,
	SASL_CANCELLED, /* the client answered "*" */
	SASL_BAD_BASE64,
	SASL_BAD_MESSAGE, /* decodes, but is no valid PLAIN message / field */
};

/* Strict base64 (RFC 4648, padding required, no blanks); the output is
 * NUL-terminated (out holds at most outsize - 1 bytes). */
bool sasl_base64_decode(const char *in, size_t len, char *out, size_t outsize, size_t *outlen);
/* A PLAIN response (authzid NUL authcid NUL passwd, base64): authzid must
 * be empty or the authcid (no acting as another user). */
enum sasl_status sasl_plain(const char *resp, size_t len, struct sasl_creds *out);
/* One LOGIN step: the user name or the password, base64 (no NUL in it). */
enum sasl_status sasl_login_field(const char *resp, size_t len, char *out, size_t outsize);
void sasl_creds_wipe(struct sasl_creds *c);

#endif

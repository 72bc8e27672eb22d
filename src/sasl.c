/*
 * sasl.c: see sasl.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* explicit_bzero */
#endif
#include "sasl.h"

#include <string.h>

static int b64_value(char c)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c != '\0' ? strchr(alphabet, c) : NULL;

	return p != NULL ? (int)(p - alphabet) : -1;
}

bool sasl_base64_decode(const char *in, size_t len, char *out, size_t outsize, size_t *outlen)
{
	size_t n = 0;

	if (len % 4 != 0 || outsize == 0)
		return false;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		size_t pad = last ? (in[i + 3] == '=') + (in[i + 2] == '=' && in[i + 3] == '=') : 0;
		unsigned v = 0;
		for (size_t j = 0; j < 4 - pad; j++) {
			int d = b64_value(in[i + j]);
			if (d < 0)
				return false;
			v |= (unsigned)d << (18 - 6 * j);
		}
		size_t bytes = 3 - pad;
		if (n + bytes >= outsize)
			return false;
		for (size_t j = 0; j < bytes; j++)
			out[n++] = (char)(v >> (16 - 8 * j));
	}
	out[n] = '\0';
	*outlen = n;
	return true;
}

static bool is_cancel(const char *resp, size_t len)
{
	return len == 1 && resp[0] == '*';
}

enum sasl_status sasl_plain(const char *resp, size_t len, struct sasl_creds *out)
{
	char msg[USER_NAME_MAX * 2 + SASL_PASS_MAX + 4];
	size_t n;
	enum sasl_status st = SASL_BAD_MESSAGE;

	memset(out, 0, sizeof(*out));
	if (is_cancel(resp, len))
		return SASL_CANCELLED;
	if (!sasl_base64_decode(resp, len, msg, sizeof(msg), &n))
		return SASL_BAD_BASE64;
	const char *authz = msg, *nul1 = memchr(msg, '\0', n);
	const char *authc = nul1 ? nul1 + 1 : NULL;
	const char *nul2 = authc ? memchr(authc, '\0', n - (size_t)(authc - msg)) : NULL;
	const char *pass = nul2 ? nul2 + 1 : NULL;
	if (pass != NULL) {
		size_t ulen = (size_t)(nul2 - authc), plen = n - (size_t)(pass - msg);
		bool same = *authz == '\0' || strcmp(authz, authc) == 0;
		if (same && ulen > 0 && ulen <= USER_NAME_MAX && plen > 0 && plen <= SASL_PASS_MAX) {
			memcpy(out->user, authc, ulen + 1);
			memcpy(out->pass, pass, plen + 1);
			st = SASL_OK;
		}
	}
	explicit_bzero(msg, sizeof(msg));
	return st;
}

enum sasl_status sasl_login_field(const char *resp, size_t len, char *out, size_t outsize)
{
	size_t n;

	out[0] = '\0';
	if (is_cancel(resp, len))
		return SASL_CANCELLED;
	if (!sasl_base64_decode(resp, len, out, outsize, &n)) {
		explicit_bzero(out, outsize);
		return SASL_BAD_BASE64;
	}
	if (n == 0 || strlen(out) != n) {
		explicit_bzero(out, outsize);
		return SASL_BAD_MESSAGE;
	}
	return SASL_OK;
}

void sasl_creds_wipe(struct sasl_creds *c)
{
	explicit_bzero(c, sizeof(*c));
}

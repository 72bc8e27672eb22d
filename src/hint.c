#include "hint.h"

#include <stdio.h>
#include <string.h>

/* What OpenSSL says when the first bytes back are text, not a TLS record. */
static bool looks_like_plaintext_answer(const char *reason)
{
	return reason != NULL && (strstr(reason, "wrong version number") != NULL ||
	    strstr(reason, "packet length too long") != NULL || strstr(reason, "http request") != NULL);
}

static bool blocked(enum upstream_fail cls)
{
	return cls == UPSTREAM_FAIL_CONNECT_TIMEOUT || cls == UPSTREAM_FAIL_CONNECT_REFUSED ||
	    cls == UPSTREAM_FAIL_CONNECT_UNREACHABLE || cls == UPSTREAM_FAIL_CONNECT_DENIED;
}

const char *hint_for_failure(uint16_t port, enum tls_mode mode, enum upstream_fail cls, const char *reason,
    char *buf, size_t len)
{
	if (mode == TLS_MODE_STARTTLS && cls == UPSTREAM_FAIL_GREETING_TIMEOUT) {
		if (port == 465)
			snprintf(buf, len, "port 465 expects implicit TLS; configure 465/implicit");
		else
			snprintf(buf, len, "no greeting on port %u: if it expects implicit TLS, configure %u/implicit",
			    port, port);
		return buf;
	}
	if (mode == TLS_MODE_IMPLICIT && cls == UPSTREAM_FAIL_TLS_HANDSHAKE && looks_like_plaintext_answer(reason)) {
		snprintf(buf, len, "port %u answered in plain text: it expects STARTTLS; configure %u/starttls", port,
		    port);
		return buf;
	}
	if (port == 25 && blocked(cls)) {
		snprintf(buf, len, "port 25 is blocked on most cloud hosts; use 587 (STARTTLS), 2525 or 465");
		return buf;
	}
	if (cls == UPSTREAM_FAIL_STARTTLS_MISSING) {
		snprintf(buf, len, "STARTTLS was not offered: a middlebox may be stripping it; nothing is sent in clear text");
		return buf;
	}
	return NULL;
}

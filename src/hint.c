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

/* Known refusals of OAuth2 providers (Microsoft 365, Google) and of
 * their token endpoints. */
static const char *oauth2_hint(enum upstream_fail cls, const char *reason)
{
	if (reason == NULL)
		return NULL;
	if (cls == UPSTREAM_FAIL_AUTH_REJECTED && strstr(reason, "5.7.139") != NULL)
		return "Microsoft 365: SMTP AUTH is disabled for the tenant or the mailbox; enable it for the mailbox "
		       "(Set-CASMailbox -SmtpClientAuthenticationDisabled $false)";
	if (cls == UPSTREAM_FAIL_AUTH_REJECTED && strstr(reason, "XOAUTH2") != NULL)
		return "the token endpoint gave a token but the provider refused it: Microsoft 365 needs the app's "
		       "service principal registered in Exchange (New-ServicePrincipal) with FullAccess or SendAs on "
		       "the mailbox (Add-MailboxPermission); Gmail needs the scope https://mail.google.com/ and, for a "
		       "service account, domain-wide delegation for the username";
	if (cls == UPSTREAM_FAIL_REPLY_PERMFAIL && strstr(reason, "SendAsDenied") != NULL)
		return "the sender is not the authenticated mailbox: send as the username, or grant SendAs on that address";
	if (cls != UPSTREAM_FAIL_OAUTH2)
		return NULL;
	if (strstr(reason, "invalid_client") != NULL || strstr(reason, "unauthorized_client") != NULL)
		return "the token endpoint refused the client: check oauth2_client_id and the client secret (expired?) "
		       "or, for jwt_bearer, the key file";
	if (strstr(reason, "invalid_grant") != NULL)
		return "the grant was refused: the refresh token expired or was revoked (obtain a new one), or the "
		       "service account is not delegated for the username";
	if (strstr(reason, "invalid_scope") != NULL)
		return "check oauth2_scope: https://outlook.office365.com/.default (Microsoft 365), "
		       "https://mail.google.com/ (Gmail)";
	return "no access token: check that the token endpoint (oauth2_token_url) is reachable from this host";
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
	const char *oauth2 = oauth2_hint(cls, reason);
	if (oauth2 != NULL) {
		snprintf(buf, len, "%s", oauth2);
		return buf;
	}
	if (cls == UPSTREAM_FAIL_STARTTLS_MISSING) {
		snprintf(buf, len, "STARTTLS was not offered: a middlebox may be stripping it; nothing is sent in clear text");
		return buf;
	}
	return NULL;
}

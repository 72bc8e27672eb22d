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

#define TEST_SETUP_ONLY "; tls_verify = no only for a test setup, never in production"

/* The certificate did not verify: the setting that fixes it. */
static const char *tls_verify_hint(const char *reason, const char *host, char *buf, size_t len)
{
	if (reason != NULL && strstr(reason, "mismatch") != NULL)
		snprintf(buf, len, "the certificate does not name the host \"%s\": check host (the provider's "
		    "documented SMTP host name, not an address or an alias)" TEST_SETUP_ONLY, host ? host : "");
	else if (reason != NULL && strstr(reason, "expired") != NULL)
		snprintf(buf, len, "the provider's certificate has expired, or this host's clock is wrong: check the "
		    "date here" TEST_SETUP_ONLY);
	else
		snprintf(buf, len, "the provider's certificate chain is not trusted here: for a private CA set "
		    "tls_ca_file = /path/to/ca.pem in the provider's section, else install the system CA bundle "
		    "(ca-certificates)" TEST_SETUP_ONLY);
	return buf;
}

static bool host_has(const char *host, const char *part)
{
	return host != NULL && strstr(host, part) != NULL;
}

/* A username and password refused (XOAUTH2 refusals and 5.7.139 are oauth2_hint's). */
static const char *password_hint(const char *reason, const char *host)
{
	if (reason != NULL && strstr(reason, "XOAUTH2") != NULL)
		return NULL;
	if (reason != NULL && strstr(reason, "basic authentication is disabled") != NULL)
		return "Microsoft 365 has basic authentication disabled: use auth = xoauth2 (oauth2_* settings)";
	if (reason != NULL && strstr(reason, "5.7.139") != NULL)
		return NULL; /* SMTP AUTH disabled altogether: oauth2_hint() */
	if (host_has(host, "amazonaws.com"))
		return "Amazon SES refused the credentials: username and password are the SMTP credentials made in "
		       "the SES console for this region, not the IAM access key ID and secret key";
	if (host_has(host, "gmail.com") || host_has(host, "googlemail.com"))
		return "Gmail refused the password: use an app password (2-Step Verification on), not the account's "
		       "password, or auth = xoauth2";
	if (host_has(host, "office365.com") || host_has(host, "outlook.com"))
		return "Microsoft 365 refused the password: check username and password; with basic authentication "
		       "disabled for the tenant use auth = xoauth2";
	return "the provider refused the username or password: check username and password (Amazon SES: the "
	       "SMTP credentials, not the IAM access keys; Gmail: an app password; Microsoft 365 with basic "
	       "authentication disabled: auth = xoauth2)";
}

const char *hint_for_failure(const char *host, uint16_t port, enum tls_mode mode, enum upstream_fail cls,
    const char *reason, char *buf, size_t len)
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
	if (cls == UPSTREAM_FAIL_TLS_VERIFY)
		return tls_verify_hint(reason, host, buf, len);
	const char *canned = cls == UPSTREAM_FAIL_AUTH_REJECTED ? password_hint(reason, host) : NULL;
	if (canned == NULL)
		canned = oauth2_hint(cls, reason);
	if (canned != NULL) {
		snprintf(buf, len, "%s", canned);
		return buf;
	}
	if (cls == UPSTREAM_FAIL_STARTTLS_MISSING) {
		snprintf(buf, len, "STARTTLS was not offered: a middlebox may be stripping it; nothing is sent in clear text");
		return buf;
	}
	return NULL;
}

/*
 * envelope.c: see envelope.h.
 */
#include "envelope.h"

#include <stdio.h>

bool envelope_address(const struct smtp_cmd *c, bool smtputf8, const struct config *cfg, char *out, char *refusal,
    size_t len)
{
	const char *domain = cfg->relay.qualify_domain;
	int n = snprintf(out, SMTP_PATH_MAX + 1, "%s%s%s", c->path, c->unqualified ? "@" : "",
	    c->unqualified ? domain : "");

	if (n < 0 || n > SMTP_PATH_MAX) {
		snprintf(refusal, len, "501 5.1.3 Address too long once qualified with %s", domain);
		return false;
	}
	if (!smtputf8 && !smtp_path_is_ascii(out)) {
		snprintf(refusal, len, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		return false;
	}
	return true;
}

void envelope_too_big(const struct path_limits *lim, char *refusal, size_t len)
{
	if (lim->size_by != NULL)
		snprintf(refusal, len, "552 5.3.4 Message too big for provider %s (limit %llu bytes)", lim->size_by,
		    (unsigned long long)lim->size);
	else
		snprintf(refusal, len, "552 5.3.4 Message size exceeds fixed maximum message size (%llu)",
		    (unsigned long long)lim->size);
}

bool envelope_mail_size(const struct smtp_cmd *c, const struct path_env *env, const char *from,
    struct path_limits *lim, char *refusal, size_t len)
{
	path_limits(env, from, lim);
	if (!c->has_size || c->size <= lim->size)
		return true;
	envelope_too_big(lim, refusal, len);
	return false;
}

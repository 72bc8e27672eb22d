/*
 * tx.c: see tx.h.
 */
#include "tx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void tx_vreply(struct smtp_reply *r, int code, const char *enhanced, const char *fmt, va_list ap)
{
	*r = (struct smtp_reply){ .code = code, .complete = true };
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
}

void tx_reply(struct smtp_reply *r, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tx_vreply(r, code, enhanced, fmt, ap);
	va_end(ap);
}

const char *tx_log_auth(const struct tx *tx, char *buf, size_t len)
{
	char user[USER_NAME_MAX + 8];

	if (tx->auth_user[0] == '\0')
		buf[0] = '\0';
	else
		snprintf(buf, len, " auth_user=%s", log_quote(user, sizeof(user), tx->auth_user));
	return buf;
}

void tx_clear(struct tx *tx)
{
	for (unsigned i = 0; i < tx->nrcpts; i++)
		free(tx->rcpts[i].addr);
	free(tx->rcpts);
	memset(tx, 0, sizeof(*tx));
}

bool tx_add_rcpt(struct tx *tx, const char *addr)
{
	if (tx->nrcpts == tx->cap) {
		unsigned cap = tx->cap ? tx->cap * 2 : 8;
		struct tx_rcpt *bigger = realloc(tx->rcpts, cap * sizeof(*bigger));
		if (bigger == NULL)
			return false;
		tx->rcpts = bigger;
		tx->cap = cap;
	}
	char *copy = strdup(addr);
	if (copy == NULL)
		return false;
	tx->rcpts[tx->nrcpts++] = (struct tx_rcpt){ .addr = copy, .state = TX_RCPT_SENT };
	return true;
}

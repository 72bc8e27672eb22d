/*
 * tx.c: see tx.h.
 */
#include "tx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

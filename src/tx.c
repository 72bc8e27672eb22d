/*
 * tx.c: see tx.h.
 */
#include "tx.h"

#include <stdlib.h>
#include <string.h>

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

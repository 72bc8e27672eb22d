/*
 * backend.c: see backend.h.
 */
#include "backend.h"

#include "hybrid.h"
#include "relay.h"
#include "spooler.h"

bool backend_open(struct backend *b, struct runtime *rt, struct queue *q, struct spool *sp, const char *session_id,
    const struct tx_events *events, void *session)
{
	switch (rt->path.cfg->relay.delivery) {
	case DELIVERY_QUEUE:
		return spooler_open(b, rt->path.loop, q, sp, session_id, events, session);
	case DELIVERY_HYBRID:
		return hybrid_open(b, rt, q, sp, session_id, events, session);
	case DELIVERY_PASSTHROUGH:
		break;
	}
	return relay_open(b, rt, session_id, events, session, (struct relay_role){ .owns_outcome = true });
}

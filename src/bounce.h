/*
 * bounce: the notice of a failed message, to its sender (queue.bounce =
 * sender) or to one address (queue.bounce = ADDRESS: the postmaster of a
 * relay whose senders are programs). Plain text from bounce_from or the
 * null sender, never bounced itself, queued and delivered like any other
 * mail.
 */
#ifndef SUBRELAY_BOUNCE_H
#define SUBRELAY_BOUNCE_H

#include <stdbool.h>

#include "commit.h"
#include "config.h"
#include "spool.h"

/* Writes the notice for m's failed recipients and submits it to c; false
 * (logged) when it could not be queued. Nothing when bounces are off or
 * m has the null sender. */
bool bounce_queue(struct spool *sp, struct committer *c, const struct spool_msg *m, const struct config *cfg,
    double now);

#endif

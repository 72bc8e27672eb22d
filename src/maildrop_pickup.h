/*
 * maildrop_pickup: the daemon's side of the drop directory (maildrop.h).
 * The queue owner takes each file into its spool as a client's message
 * (envelope checked and qualified as for MAIL and RCPT, data through the
 * DATA canonicaliser and the message fix-ups), then removes it.
 *
 * A file a user dropped is not trusted: it is opened without following
 * symlinks, must be a regular file with one link, at most
 * relay.max_message_size of data; a file that is damaged or breaks a
 * rule is moved to SPOOL/corrupt with a warning, never read twice. A
 * spool that cannot be written (disk full) leaves it for the next
 * pickup. Blocking file I/O: run at start and every MAILDROP_INTERVAL
 * (files exist only when sendmail found no daemon, so this is rare).
 */
#ifndef SUBRELAY_MAILDROP_PICKUP_H
#define SUBRELAY_MAILDROP_PICKUP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "spool.h"

#define MAILDROP_INTERVAL 30.      /* seconds between pickups */

/* Makes SPOOL/maildrop (maildrop.h: mode 1730, group `subrelay` when it
 * exists) and lets every user reach it (the spool directory becomes
 * 0711: its other entries stay 0700). False with the reason in err. */
bool maildrop_prepare(const char *spool, char *err, size_t errlen);

/* Called with each message taken into queue/ (durable). */
typedef void (*maildrop_taken_fn)(const char *id, void *arg);

/* Takes every file now in SPOOL/maildrop; returns how many. */
unsigned maildrop_pickup(struct spool *sp, const struct config *cfg, maildrop_taken_fn taken, void *arg);

#endif

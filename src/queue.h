/*
 * queue: queue-mode delivery. Owns the scheduler and the deliveries of
 * spooled messages; spool.c owns the files, commit.c their durability.
 *
 * A message becomes the queue's once committed (fsync'd file, renamed,
 * directory fsync'd). The scheduler starts deliveries when they are due,
 * at most max_connections at a time per provider (the first of the
 * route), through the same path chooser and upstream session as
 * passthrough. Recipients the provider accepted are never sent again;
 * temporary failures are retried with exponential backoff from
 * queue.retry_initial to queue.retry_max with jitter; a 5xx or
 * queue.max_age moves the message to failed/ with the reason. With no
 * provider configured, delivery is held (mail is still accepted). No
 * delivery starts before its provider's turn (pace.h: rate, daily_quota,
 * back-off after a throttling reply).
 */
#ifndef SUBRELAY_QUEUE_H
#define SUBRELAY_QUEUE_H

#include <stdbool.h>
#include <stdio.h>

#include "runtime.h"
#include "spool.h"

struct queue;

/* Scans the spool and schedules every pending message. *current is read
 * at each delivery start, so a reload takes effect for the next ones. */
struct queue *queue_new(struct runtime **current, struct spool *sp, char *err, size_t errlen);
/*
 * relay.workers > 1: one worker owns the queue (queue_new: it alone
 * delivers); the others are acceptors. An acceptor commits messages
 * exactly like the owner (durable before the callback) and then hands
 * each id to `handoff` (worker 0 gets it through a pipe) instead of
 * scheduling it. It never loads the spool and never delivers.
 */
typedef void (*queue_handoff_fn)(const char *id, void *arg);
struct queue *queue_new_acceptor(struct runtime **current, struct spool *sp, queue_handoff_fn handoff, void *arg,
    char *err, size_t errlen);
/* The owner takes queue/ID, committed by another worker (false: already
 * known, or gone: delivered after a rescan found it first). */
bool queue_adopt(struct queue *q, const char *id);
/* The owner takes every message in queue/ it does not know (a hand-off
 * lost to a full pipe or a restart); returns how many. */
unsigned queue_rescan(struct queue *q);
/* Stops deliveries in flight (their messages stay queued) and frees. */
void queue_free(struct queue *q);

/* ---- accepting ---- */

struct queue_waiter;
/* ok: the message is durable and queued; else errno in err. */
typedef void (*queue_accepted_cb)(bool ok, int err, void *arg);
/* Hands a fully written message over; cb runs once it is durable. */
struct queue_waiter *queue_commit(struct queue *q, struct spool_writer *w, queue_accepted_cb cb, void *arg);
/* The client went away: the message is still queued, nobody is told. */
void queue_waiter_cancel(struct queue_waiter *w);
unsigned queue_commits_pending(const struct queue *q);

/* After a reload: re-evaluates hold mode and starts what is due. */
void queue_reconfigured(struct queue *q);

/* ---- control ---- */
void queue_list(struct queue *q, FILE *out);
bool queue_show(struct queue *q, const char *id, FILE *out);
int queue_flush(struct queue *q, const char *id);
/* A queued message, or else a failed one. */
bool queue_delete(struct queue *q, const char *id);
/* The queue's own `stats` lines: depth, oldest age, held, failed messages
 * (the message counters are metrics.h's). */
void queue_stats(struct queue *q, FILE *out);
unsigned queue_depth(const struct queue *q);
/* Failed messages (failed/, read from the spool: they are not in the
 * queue). The list and requeue all read at most 1000 per call. */
void queue_failed_list(struct queue *q, FILE *out);
/* id NULL: every failed message. Returns how many went back to the
 * queue (due now), -1: no failed message id; *left: how many stay. */
int queue_requeue(struct queue *q, const char *id, unsigned *left);
/* Messages in failed/ (delete, as queue_delete, removes them too). */
unsigned queue_failed_count(const struct queue *q);
/* Seconds since the oldest queued message was received (0 when empty). */
double queue_oldest_age(const struct queue *q);

#endif

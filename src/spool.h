/*
 * spool: the queue's files. Owns the on-disk format and the order of
 * durable operations; never decides when to deliver (queue.c does).
 *
 * Layout under relay.spool (directories 0700, files 0600):
 *   tmp/ID       a message being received; removed at start (crash debris)
 *   queue/ID     a committed message: envelope header, blank line, data
 *   queue/ID.st  its delivery state (attempts, next try, last error,
 *                recipients done), replaced atomically after each attempt
 *   failed/ID, failed/ID.st   messages given up on, with the reason;
 *                the operator may requeue them (back to queue/) or delete them
 *   egress       the path chooser's memory (pair that last worked)
 *   maildrop/    where subrelay-sendmail leaves mail while the daemon is
 *                down (maildrop.h, maildrop_pickup.h: mode 1730, and the
 *                spool directory 0711 so that it can be reached)
 *   corrupt/     drop files the pickup refused, for the operator
 *
 * A message file is written in tmp/, fsync'd, renamed into queue/ and
 * the directory fsync'd before anyone is told it is queued: a crash at
 * any instant leaves either nothing in queue/ or a complete message.
 * The data part is canonical SMTP data (CRLF, dot-stuffed), ready to be
 * streamed to a provider followed by ".\r\n".
 */
#ifndef SUBRELAY_SPOOL_H
#define SUBRELAY_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "id.h"
#include "smtp_parse.h"

struct spool;

/* Creates the directories if needed, removes what a crash left (tmp/,
 * state files without their message). NULL with the reason in err on
 * failure. */
struct spool *spool_open(const char *dir, char *err, size_t errlen);
void spool_close(struct spool *sp);
const char *spool_dir(const struct spool *sp);

/* The envelope and delivery state of one message. */
struct spool_rcpt {
	char addr[SMTP_PATH_MAX + 1];
	enum { RCPT_PENDING, RCPT_DONE, RCPT_FAILED } state;
};

struct spool_msg {
	char id[ID_LEN + 1];
	char from[SMTP_PATH_MAX + 1];
	struct spool_rcpt *rcpts;
	unsigned nrcpts;
	bool body_8bit, smtputf8;
	double received;           /* unix time */
	uint64_t size;             /* data bytes */
	long data_offset;          /* where the data starts in queue/ID */
	unsigned attempts;
	double next_try;
	char last_error[300];
	char fail_reason[300];     /* the reply that failed a recipient for good, kept across attempts */
};

void spool_msg_free(struct spool_msg *m);

/* ---- writing a new message ---- */

struct spool_writer;

/* Starts tmp/ID with the envelope; NULL with errno set on failure. */
struct spool_writer *spool_create(struct spool *sp, const struct spool_msg *envelope);
/* Appends data (buffered); false with errno set on a write error. */
bool spool_write(struct spool_writer *w, const char *p, size_t n);
/* Flushes and fsyncs the file (blocking: called off the loop, see
 * commit.c), renames it into queue/. The directory fsync is separate so
 * that a batch of commits shares it. False with errno on failure. */
bool spool_finish(struct spool_writer *w);
bool spool_sync_queue_dir(struct spool *sp);
/* Removes the temporary file (aborted or failed message). */
void spool_discard(struct spool_writer *w);
void spool_writer_free(struct spool_writer *w);
const char *spool_writer_id(const struct spool_writer *w);

/* ---- reading and updating ---- */

/* Lists the ids in queue/ (malloc'd array of malloc'd strings). */
char **spool_list(struct spool *sp, unsigned *n);
/* The same for failed/. */
char **spool_list_failed(struct spool *sp, unsigned *n);
void spool_list_free(char **ids, unsigned n);
/* Loads queue/ID (or failed/ID when failed) and its state file. */
bool spool_load(struct spool *sp, const char *id, bool failed, struct spool_msg *m);
/* Opens the data part for reading, positioned at its start. */
FILE *spool_open_data(struct spool *sp, const struct spool_msg *m);
/* Replaces queue/ID.st with m's state (write, rename). */
bool spool_save_state(struct spool *sp, const struct spool_msg *m);
/* Moves the message to failed/ with its state (reason in last_error). */
bool spool_move_failed(struct spool *sp, const struct spool_msg *m);
/* True when queue/ID exists (a well-formed ID only). */
bool spool_exists(struct spool *sp, const char *id);
/* Removes queue/ID and queue/ID.st. */
bool spool_remove(struct spool *sp, const char *id);
/* Removes failed/ID and failed/ID.st. */
bool spool_remove_failed(struct spool *sp, const char *id);
/* Moves failed/ID back to queue/ with m's state (loaded from failed/,
 * reset by the caller), crash-safe: see the order in spool.c. False with
 * errno (EEXIST: queue/ID exists; ENOENT: no failed/ID). */
bool spool_requeue(struct spool *sp, const struct spool_msg *m);

/* The egress memory: lines "PROVIDER PORT MODE". */
bool spool_save_egress(struct spool *sp, const char *text);
char *spool_load_egress(struct spool *sp);

#endif

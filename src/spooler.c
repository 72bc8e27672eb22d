/*
 * spooler.c: see spooler.h.
 */
#include "spooler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The session fills it and commits at once (body_space, then body_commit
 * in the same call): one buffer serves every session of this
 * single-threaded process. */
static char body_scratch[16384];

struct spooler {
	struct ev_loop *loop;
	struct queue *q;
	struct spool *sp;
	const struct tx_events *events;
	void *session;
	const char *session_id;
	struct spool_writer *writer; /* the message being received */
	struct queue_waiter *commit; /* the message being made durable */
	struct tx *committing;
};

/* Answers the oldest command with a reply made here. */
static void answer(struct spooler *sp, int code, const char *enhanced, const char *text)
{
	struct smtp_reply r;

	tx_reply(&r, code, enhanced, "%s", text);
	sp->events->answer(sp->session, &r);
}

/* A spool failure as the client should hear it: out of space is 452. */
static void spool_error(struct smtp_reply *r, int err)
{
	bool full = err == ENOSPC || err == EDQUOT || err == EFBIG;

	tx_reply(r, full ? 452 : 451, full ? "4.3.1" : "4.3.0", "%s (%s); try again later",
	    full ? "Insufficient system storage" : "Local error while queueing", strerror(err));
}

static void discard(struct spooler *sp)
{
	if (sp->writer == NULL)
		return;
	spool_discard(sp->writer);
	spool_writer_free(sp->writer);
	sp->writer = NULL;
}

static void sp_mail(void *b, struct tx *tx)
{
	(void)tx;
	/* The queue owns delivery: the sender is the queue's to route later. */
	answer(b, 250, "2.1.0", "Ok");
}

static bool sp_can_pipe(void *b)
{
	(void)b;
	return true; /* every answer is immediate */
}

static void sp_rcpt(void *b, struct tx *tx)
{
	(void)tx;
	answer(b, 250, "2.1.5", "Ok");
}

/* Opens the spool file with the envelope, and asks for the data. */
static void sp_data(void *b, struct tx *tx)
{
	struct spooler *sp = b;
	struct spool_rcpt *rcpts = calloc(tx->accepted + 1, sizeof(*rcpts));
	struct spool_msg env = {
		.rcpts = rcpts,
		.body_8bit = tx->body_8bit,
		.smtputf8 = tx->smtputf8,
		.received = ev_now(sp->loop),
	};
	struct smtp_reply r;

	for (unsigned i = 0; rcpts != NULL && i < tx->nrcpts; i++)
		if (tx->rcpts[i].state == TX_RCPT_ACCEPTED)
			snprintf(rcpts[env.nrcpts++].addr, sizeof(rcpts->addr), "%s", tx->rcpts[i].addr);
	snprintf(env.id, sizeof(env.id), "%s", tx->id);
	snprintf(env.from, sizeof(env.from), "%s", tx->from);
	sp->writer = rcpts != NULL ? spool_create(sp->sp, &env) : NULL;
	int err = rcpts != NULL ? errno : ENOMEM;
	free(rcpts);
	if (sp->writer == NULL) {
		spool_error(&r, err);
		log_error("id=%s cannot create the spool file: %s", tx->id, strerror(err));
		sp->events->answer(sp->session, &r);
		return;
	}
	answer(sp, 354, "", "End data with <CR><LF>.<CR><LF>");
}

static char *sp_body_space(void *b, size_t need, size_t *room)
{
	(void)b;
	(void)need;
	*room = sizeof(body_scratch);
	return body_scratch;
}

/* Appends canonical bytes; on a write error (a full disk) the rest of
 * the message is read and refused. */
static void sp_body_commit(void *b, struct tx *tx, size_t n)
{
	struct spooler *sp = b;
	struct smtp_reply r;

	if (sp->writer == NULL || spool_write(sp->writer, body_scratch, n))
		return;
	int err = errno;
	log_error("message id=%s session=%s result=not_queued reason=\"%s\"", tx->id, sp->session_id, strerror(err));
	discard(sp);
	spool_error(&r, err);
	sp->events->failure(sp->session, &r);
}

static void on_committed(bool ok, int err, void *arg)
{
	struct spooler *sp = arg;
	struct tx *tx = sp->committing;
	char text[100], from[SMTP_PATH_MAX + 8], auth[USER_NAME_MAX + 16];
	struct smtp_reply r;

	sp->commit = NULL;
	sp->committing = NULL;
	if (!ok) {
		spool_error(&r, err);
		log_error("message id=%s session=%s result=not_queued reason=\"%s\"", tx->id, sp->session_id, strerror(err));
		sp->events->answer(sp->session, &r);
		return;
	}
	log_info("message id=%s session=%s from=%s rcpts=%u size=%llu result=queued duration=%.3fs%s", tx->id,
	    sp->session_id, log_quote(from, sizeof(from), tx->from), tx->accepted, (unsigned long long)tx->bytes,
	    ev_now(sp->loop) - tx->started, tx_log_auth(tx, auth, sizeof(auth)));
	snprintf(text, sizeof(text), "Ok: queued as %s", tx->id);
	answer(sp, 250, "2.0.0", text);
}

static void sp_end(void *b, struct tx *tx)
{
	struct spooler *sp = b;
	struct spool_writer *w = sp->writer;

	sp->writer = NULL;
	sp->committing = tx;
	sp->commit = queue_commit(sp->q, w, on_committed, sp);
	if (sp->commit == NULL) {
		sp->committing = NULL;
		answer(sp, 451, "4.3.0", "Out of memory; try again later");
	}
}

static void sp_reset(void *b, struct tx *tx)
{
	(void)tx;
	discard(b);
	answer(b, 250, "2.0.0", "Ok");
}

static void sp_abort(void *b, struct tx *tx)
{
	struct spooler *sp = b;

	(void)tx;
	discard(sp);
	/* A message being committed stays queued; nobody is told. */
	queue_waiter_cancel(sp->commit);
	sp->commit = NULL;
	sp->committing = NULL;
}

static void sp_free(void *b)
{
	sp_abort(b, NULL);
	free(b);
}

static const struct backend_ops spooler_ops = {
	.mail = sp_mail,
	.can_pipe = sp_can_pipe,
	.rcpt = sp_rcpt,
	.data = sp_data,
	.body_space = sp_body_space,
	.body_commit = sp_body_commit,
	.end = sp_end,
	.reset = sp_reset,
	.abort = sp_abort,
	.free = sp_free,
};

bool spooler_open(struct backend *b, struct ev_loop *loop, struct queue *q, struct spool *sp,
    const char *session_id, const struct tx_events *events, void *session)
{
	struct spooler *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return false;
	s->loop = loop;
	s->q = q;
	s->sp = sp;
	s->events = events;
	s->session = session;
	s->session_id = session_id;
	b->ops = &spooler_ops;
	b->impl = s;
	return true;
}

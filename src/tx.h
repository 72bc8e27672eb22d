/*
 * tx: one message's transaction as the client gave it, and the delivery
 * backend behind an ops table that carries it.
 *
 * The client session (smtp_server.c) owns the transaction: it parses the
 * dialogue, keeps the envelope here and hands each command to its
 * backend in order: MAIL, each RCPT, DATA, the body bytes, the end of
 * data, RSET. The backend answers every command it was handed exactly
 * once and in order, through the session's tx_events (now, or later from
 * the loop); the session writes the answers to the client in order.
 *
 * Backends: relay.c (passthrough: live to the provider), spooler.c
 * (queue: durable in the spool before the 250). The session knows
 * nothing of what is behind the table.
 */
#ifndef SUBRELAY_TX_H
#define SUBRELAY_TX_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ev.h>

#include "id.h"
#include "smtp_parse.h"
#include "users.h"

enum tx_rcpt_state { TX_RCPT_SENT, TX_RCPT_ACCEPTED, TX_RCPT_REFUSED };

struct tx_rcpt {
	char *addr;
	enum tx_rcpt_state state;
	bool deferred;             /* accepted for the queue to deliver later (hybrid) */
};

struct tx {
	char id[ID_LEN + 1];       /* the queue id the client is told */
	char from[SMTP_PATH_MAX + 1];
	uint64_t size;             /* MAIL SIZE=, 0 when not given */
	bool body_8bit;
	bool smtputf8;
	struct tx_rcpt *rcpts;     /* every RCPT handed to the backend, in order */
	unsigned nrcpts, cap;
	unsigned accepted;         /* RCPTs the backend accepted */
	uint64_t bytes;            /* canonical message bytes so far */
	ev_tstamp started;
	char auth_user[USER_NAME_MAX + 1]; /* the client's AUTH identity; "" when none */
};

/* The commands a backend answers. */
enum tx_cmd { TX_CMD_MAIL, TX_CMD_RCPT, TX_CMD_DATA, TX_CMD_END, TX_CMD_RSET };

/* Commands handed over and not answered yet, oldest first. The reply
 * room of a client session keeps it far below TX_OWED_MAX. */
#define TX_OWED_MAX 32
struct tx_owed {
	unsigned char kinds[TX_OWED_MAX];
	unsigned head, n;
	unsigned rcpts;            /* RCPTs among them */
};

static inline void tx_owe(struct tx_owed *o, enum tx_cmd kind)
{
	o->kinds[(o->head + o->n++) % TX_OWED_MAX] = (unsigned char)kind;
	o->rcpts += kind == TX_CMD_RCPT;
}

static inline enum tx_cmd tx_pay(struct tx_owed *o)
{
	enum tx_cmd kind = (enum tx_cmd)o->kinds[o->head];

	o->head = (o->head + 1) % TX_OWED_MAX;
	o->n--;
	o->rcpts -= kind == TX_CMD_RCPT;
	return kind;
}

/* " auth_user=NAME" for a message's log line, "" without AUTH. */
const char *tx_log_auth(const struct tx *tx, char *buf, size_t len);

/* A reply a backend makes itself (not one from the provider). */
void tx_reply(struct smtp_reply *r, int code, const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void tx_vreply(struct smtp_reply *r, int code, const char *enhanced, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Empties the transaction (frees the recipients). */
void tx_clear(struct tx *tx);
/* Adds a recipient (state SENT); false when out of memory. */
bool tx_add_rcpt(struct tx *tx, const char *addr);

/* What the session hears from its backend. */
struct tx_events {
	/* The answer to the oldest command handed over and not yet answered. */
	void (*answer)(void *session, const struct smtp_reply *r);
	/* The backend cannot carry the transaction any more (the provider
	 * went away, the disk is full): every command not yet answered gets
	 * r, or the end of data does when the body is running (its rest is
	 * read and dropped), and the transaction ends. A backend that has no
	 * command to answer keeps the failure for the next one. */
	void (*failure)(void *session, const struct smtp_reply *r);
	/* Room again for body bytes, or for a command to go out behind
	 * others (see backend_ops.can_pipe). */
	void (*resume)(void *session);
};

struct backend_ops {
	/* MAIL (tx->from and the parameters set, tx->id new). */
	void (*mail)(void *b, struct tx *tx);
	/* Whether a RCPT or DATA may be handed over now although earlier
	 * commands are still unanswered. */
	bool (*can_pipe)(void *b);
	/* RCPT tx->rcpts[tx->nrcpts - 1]. */
	void (*rcpt)(void *b, struct tx *tx);
	/* DATA; a 354 answer opens the body. */
	void (*data)(void *b, struct tx *tx);
	/* Where `need` bytes of canonical body may go; *room below `need`
	 * means wait for resume(). */
	char *(*body_space)(void *b, size_t need, size_t *room);
	void (*body_commit)(void *b, struct tx *tx, size_t n);
	/* The end of data: the answer is the verdict on the message. */
	void (*end)(void *b, struct tx *tx);
	/* RSET inside a transaction. */
	void (*reset)(void *b, struct tx *tx);
	/* The transaction is dropped unanswered (the client left, or the
	 * message is refused as too large): nothing of it may be delivered. */
	void (*abort)(void *b, struct tx *tx);
	/* The client session ends. */
	void (*free)(void *b);
};

struct backend {
	const struct backend_ops *ops;
	void *impl;
};

#endif

/*
 * utx: one message's transaction with the provider, for whoever delivers
 * it: a passthrough session (relay.c), a queue delivery (delivery.c) or
 * the probe's test message (probe.c).
 *
 * The caller gives the envelope as it learns it (MAIL's parameters at the
 * start, then each recipient, then DATA), then the body and the end of
 * data. utx sends each command as soon as the provider lets it: the whole
 * envelope in one flight when the provider offers PIPELINING, one command
 * per reply otherwise. Each reply reaches the caller exactly once, in
 * order, through the one set of events given at the start.
 *
 * The caller may free the utx from inside an event, except from `rcpt`
 * and from `mail` with a 2xx.
 *
 * Where the session comes from:
 *   utx_start(): a path search (path.h) hands over ready sessions; one
 *     that fails before MAIL is accepted, or answers MAIL with a 4xx, is
 *     given back and the next is tried with the same envelope. The caller
 *     hears of MAIL once: accepted, or refused for good, or no path.
 *   utx_start_on(): one given ready session (the probe), no failover.
 *
 *   SEARCH -> MAIL -> ENVELOPE -> BODY -> DOT -> DONE
 *                        |  ^ (DATA refused)
 *                        v  |
 *                       RSET -> DONE
 */
#ifndef SUBRELAY_UTX_H
#define SUBRELAY_UTX_H

#include "path.h"
#include "upstream.h"

struct utx_events {
	/* MAIL's fate. A 2xx: the transaction is open (utx_info() says
	 * where). Otherwise it is over: r is the provider's final refusal, or
	 * NULL and `error` says why no path worked. */
	void (*mail)(void *arg, const struct smtp_reply *r, const char *error);
	/* The reply to the i-th recipient given (from 0, in order). */
	void (*rcpt)(void *arg, unsigned i, const struct smtp_reply *r);
	/* DATA's reply: 354 opens the body; a refusal leaves the envelope
	 * open. With no recipient accepted DATA is refused as 554 5.5.1. */
	void (*data)(void *arg, const struct smtp_reply *r);
	/* Room again after utx_body_space() gave less than asked. */
	void (*writable)(void *arg);
	/* The verdict on the message: the reply to the end of data. */
	void (*end)(void *arg, const struct smtp_reply *r);
	/* The RSET is answered: the transaction is over. */
	void (*reset)(void *arg);
	/* The session was lost after MAIL was accepted (counted in the
	 * attempt metrics here; the caller logs it): the transaction is over. */
	void (*failed)(void *arg, enum upstream_fail cls, const char *reason);
};

struct utx;

/* Starts the search for a session along providers (nproviders >= 1);
 * max_wait as in path_search_start(). Events come from the loop only.
 * NULL when out of memory. */
struct utx *utx_start(const struct path_env *env, struct provider_cfg *const *providers, unsigned nproviders,
    double max_wait, const struct upstream_mail_params *mail, const char *log_id, const struct utx_events *events,
    void *arg);
/* Sends MAIL on up, a ready session the caller hands over. */
struct utx *utx_start_on(struct upstream *up, const struct upstream_mail_params *mail, const char *log_id,
    const struct utx_events *events, void *arg);

/* One more recipient; to must stay valid until the utx is freed. */
bool utx_rcpt(struct utx *t, const char *to);
/* DATA, once the recipients so far are sent. */
void utx_data(struct utx *t);
/* Whether a command given now goes out at once, behind others in flight. */
bool utx_can_pipe(const struct utx *t);
/* The body, after data's 354: canonical bytes (smtp_data.h). When *room
 * is below `need`, wait for `writable`. */
char *utx_body_space(struct utx *t, size_t need, size_t *room);
void utx_body_commit(struct utx *t, size_t n);
void utx_end(struct utx *t);
/* Ends an open envelope with RSET, keeping the session; `reset` follows. */
void utx_reset(struct utx *t);

/* The session of the transaction, for log lines; false before one. */
bool utx_info(const struct utx *t, struct upstream_info *info);

/* Ends the transaction and frees it. A session between transactions
 * (after the verdict or RSET) goes to `pool` when given, else it says
 * QUIT; one with a body started is cut, so that a partial message can
 * never be completed. */
void utx_free(struct utx *t, struct pool *pool);

#endif

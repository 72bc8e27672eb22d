/*
 * hybrid.c: see hybrid.h. The relay and the spooler are this backend's
 * own backends: it is the "session" their answers go to, and it decides
 * which answer the client hears.
 */
#include "hybrid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "relay.h"
#include "spooler.h"

#define HYBRID_SESSION_WAIT 1.0

#define HYBRID_STATES(X) \
	X(IDLE)     /* no transaction */ \
	X(LIVE)     /* the relay carries it (the body also goes to the spool file) */ \
	X(SPOOLED)  /* the spooler carries it: the queue delivers what is left */

enum hybrid_state {
#define X(s) H_##s,
	HYBRID_STATES(X)
#undef X
};

static const char *const state_names[] = {
#define X(s) #s,
	HYBRID_STATES(X)
#undef X
};

struct hybrid {
	enum hybrid_state state;
	struct backend relay, spool;
	const struct tx_events *events;
	void *session;
	const char *session_id;
	struct runtime *rt;
	struct spool *sp;
	struct tx *tx;
	struct tx_owed at_relay;   /* commands handed to the relay, not answered */
	struct tx_owed at_spool;   /* and to the spooler */
	unsigned rcpt_answers;     /* index of the next RCPT to be answered */
	bool delivered_live;       /* the provider accepted the message (for the recipients not deferred) */
	bool tee;                  /* the provider said 354: the body goes both ways */
	char *relay_space, *spool_space; /* the body_space of each, for the tee */
	char reason[32];           /* why (some of) the message is spooled */
};

static void enter_state(struct hybrid *h, enum hybrid_state next)
{
	log_debug("id=%s hybrid=%s->%s", h->tx && h->tx->id[0] ? h->tx->id : h->session_id, state_names[h->state],
	    state_names[next]);
	h->state = next;
}

static void pass(struct hybrid *h, const struct smtp_reply *r)
{
	h->events->answer(h->session, r);
}

static void pass_text(struct hybrid *h, int code, const char *enhanced, const char *text)
{
	struct smtp_reply r;

	tx_reply(&r, code, enhanced, "%s", text);
	pass(h, &r);
}

#define FIT_ONLY "max_recipients"  /* recipients that only did not fit in the live transaction */

/* Why (some of) the message is spooled: the first reason, except that a
 * deferral by the provider (or a lost session) outweighs FIT_ONLY, which
 * alone lets the queue send at once (save_state). */
static void set_reason(struct hybrid *h, const char *reason)
{
	if (h->reason[0] == '\0' || (strcmp(h->reason, FIT_ONLY) == 0 && strcmp(reason, FIT_ONLY) != 0))
		snprintf(h->reason, sizeof(h->reason), "%s", reason);
}

static void reset(struct hybrid *h)
{
	memset(&h->at_relay, 0, sizeof(h->at_relay));
	memset(&h->at_spool, 0, sizeof(h->at_spool));
	h->rcpt_answers = 0;
	h->delivered_live = h->tee = false;
	h->reason[0] = '\0';
	enter_state(h, H_IDLE);
}

/* Recipients accepted and going live (so far). */
static unsigned count_live(const struct hybrid *h)
{
	unsigned n = 0;

	for (unsigned i = 0; i < h->tx->nrcpts; i++)
		n += h->tx->rcpts[i].state == TX_RCPT_ACCEPTED && !h->tx->rcpts[i].deferred;
	return n;
}

/* Every accepted recipient is the queue's from now on. */
static void defer_all(struct hybrid *h)
{
	for (unsigned i = 0; i < h->tx->nrcpts; i++)
		h->tx->rcpts[i].deferred = true;
}

/* ---- the spool side ---- */

static void spool_data(struct hybrid *h)
{
	tx_owe(&h->at_spool, TX_CMD_DATA);
	h->spool.ops->data(h->spool.impl, h->tx);
}

/* What the queue is to know before it sees the message: the recipients
 * the provider accepted live are done; the rest wait for the first retry,
 * or go at once when they only did not fit in the live transaction (the
 * queue splits the envelope further). */
static void save_state(struct hybrid *h)
{
	const struct tx *tx = h->tx;
	struct spool_rcpt *rcpts = calloc(tx->accepted + 1, sizeof(*rcpts));
	struct spool_msg m = { .rcpts = rcpts, .attempts = 1 };

	if (rcpts == NULL)
		return; /* the queue tries every recipient: some twice */
	snprintf(m.id, sizeof(m.id), "%s", tx->id);
	snprintf(m.last_error, sizeof(m.last_error), "%s", h->reason);
	bool fit_only = strcmp(h->reason, FIT_ONLY) == 0;
	m.next_try = ev_now(h->rt->path.loop) + (fit_only ? 0 : h->rt->path.cfg->queue.retry_initial);
	for (unsigned i = 0; i < tx->nrcpts; i++)
		if (tx->rcpts[i].state == TX_RCPT_ACCEPTED)
			rcpts[m.nrcpts++].state =
			    h->delivered_live && !tx->rcpts[i].deferred ? RCPT_DONE : RCPT_PENDING;
	if (!spool_save_state(h->sp, &m))
		log_warn("id=%s cannot save the state of the spooled message: some recipients may get it twice", tx->id);
	free(rcpts);
}

static void spool_end(struct hybrid *h)
{
	save_state(h);
	tx_owe(&h->at_spool, TX_CMD_END);
	h->spool.ops->end(h->spool.impl, h->tx);
}

/* From now on the spooler carries the transaction: the provider session
 * goes, and what the relay still owed is answered as spooled. */
static void to_spool(struct hybrid *h, const char *reason)
{
	set_reason(h, reason);
	if (h->state != H_LIVE)
		return;
	enter_state(h, H_SPOOLED);
	h->tee = false;
	h->relay.ops->abort(h->relay.impl, h->tx);
	defer_all(h);
	while (h->at_relay.n > 0) {
		switch (tx_pay(&h->at_relay)) {
		case TX_CMD_RCPT:
			h->tx->rcpts[h->rcpt_answers++].deferred = true;
			pass_text(h, 250, "2.1.5", "Ok");
			break;
		case TX_CMD_DATA:
			spool_data(h);
			break;
		case TX_CMD_END:
			spool_end(h);
			break;
		case TX_CMD_MAIL:
		case TX_CMD_RSET:
			pass_text(h, 250, "2.0.0", "Ok");
			break;
		}
	}
}

/* ---- what the relay answers ---- */

/* The class of a failed MAIL, for the log. */
static const char *mail_reason(const struct smtp_reply *r)
{
	if (strcmp(r->enhanced, "4.4.1") == 0)
		return "no_path";
	if (strcmp(r->enhanced, "4.3.5") == 0)
		return "no_provider";
	if (strcmp(r->enhanced, "4.4.5") == 0)
		return "busy";
	if (strcmp(r->enhanced, "4.7.0") == 0)
		return "paced"; /* the provider's rate, daily_quota or back-off (pace.h) */
	return "reply_4xx";
}

static void on_relay_mail(struct hybrid *h, const struct smtp_reply *r)
{
	if (r->code / 100 == 4) {
		/* Accepted for the queue; what was pipelined behind it too. */
		pass_text(h, 250, "2.1.0", "Ok");
		to_spool(h, mail_reason(r));
		return;
	}
	if (r->code / 100 != 2)
		reset(h); /* the session answers what was pipelined behind MAIL */
	pass(h, r);
}

static void on_relay_rcpt(struct hybrid *h, const struct smtp_reply *r)
{
	struct tx_rcpt *rc = &h->tx->rcpts[h->rcpt_answers++];

	if (r->code / 100 == 4) {
		/* This recipient is the queue's; the others may still go live.
		 * 4.5.3 (too many recipients, ours or the provider's): another
		 * transaction takes it, without waiting (RFC 5321 4.5.3.1.10). */
		set_reason(h, strcmp(r->enhanced, "4.5.3") == 0 ? FIT_ONLY : "reply_4xx");
		rc->deferred = true;
		pass_text(h, 250, "2.1.5", "Ok");
		return;
	}
	pass(h, r);
}

static void on_relay_data(struct hybrid *h, const struct smtp_reply *r)
{
	if (r->code == 354) {
		h->tee = true;
		spool_data(h); /* its answer, 354 or why not, is the client's */
		return;
	}
	/* A 4xx, or the provider refusing DATA because every recipient
	 * went to the spool: the spool takes the message. */
	if (r->code / 100 == 4 || (count_live(h) == 0 && h->tx->accepted > 0)) {
		to_spool(h, "reply_4xx");
		spool_data(h);
		return;
	}
	pass(h, r);
}

static void on_relay_verdict(struct hybrid *h, const struct smtp_reply *r)
{
	bool all_live = count_live(h) == h->tx->accepted;

	if (r->code / 100 == 2 && all_live) {
		h->spool.ops->abort(h->spool.impl, h->tx); /* dropped unsynced: no fsync paid */
		relay_log_message(&h->relay, "delivered", r, " delivery=live");
		metrics_message("accepted");
		metrics_message("delivered");
		metrics_message("delivered_live");
		metrics_delivery_seconds(ev_now(h->rt->path.loop) - h->tx->started);
		reset(h);
		pass(h, r);
		return;
	}
	if (r->code / 100 == 2) {
		h->delivered_live = true; /* the live recipients are done */
		enter_state(h, H_SPOOLED);
		spool_end(h);
		return;
	}
	if (r->code / 100 == 4) {
		/* Nobody has it: every recipient is the queue's. */
		defer_all(h);
		set_reason(h, "reply_4xx");
		enter_state(h, H_SPOOLED);
		h->tee = false;
		spool_end(h);
		return;
	}
	/* A 5xx: the provider's refusal is the client's. */
	relay_log_message(&h->relay, "rejected", r, "");
	metrics_message("failed");
	h->spool.ops->abort(h->spool.impl, h->tx);
	reset(h);
	pass(h, r);
}

static void on_relay_answer(void *arg, const struct smtp_reply *r)
{
	struct hybrid *h = arg;

	switch (tx_pay(&h->at_relay)) {
	case TX_CMD_MAIL:
		on_relay_mail(h, r);
		return;
	case TX_CMD_RCPT:
		on_relay_rcpt(h, r);
		return;
	case TX_CMD_DATA:
		on_relay_data(h, r);
		return;
	case TX_CMD_END:
		on_relay_verdict(h, r);
		return;
	case TX_CMD_RSET:
		reset(h);
		pass(h, r);
		return;
	}
}

/* The provider went away: the spool takes over, the body too if it runs. */
static void on_relay_failure(void *arg, const struct smtp_reply *r)
{
	struct hybrid *h = arg;

	(void)r;
	to_spool(h, "upstream_lost");
}

static void on_relay_resume(void *arg)
{
	struct hybrid *h = arg;

	h->events->resume(h->session);
}

static const struct tx_events relay_events = {
	.answer = on_relay_answer,
	.failure = on_relay_failure,
	.resume = on_relay_resume,
};

/* ---- what the spooler answers ---- */

static void on_spool_answer(void *arg, const struct smtp_reply *r)
{
	struct hybrid *h = arg;
	bool ok = r->code / 100 == 2;

	switch (tx_pay(&h->at_spool)) {
	case TX_CMD_RCPT:
		h->tx->rcpts[h->rcpt_answers++].deferred = true;
		break;
	case TX_CMD_DATA:
		if (r->code != 354 && h->state == H_LIVE) {
			/* The provider said 354, but the message cannot be kept. */
			h->relay.ops->abort(h->relay.impl, h->tx);
			reset(h);
		}
		break;
	case TX_CMD_END:
		if (ok) {
			unsigned live = h->delivered_live ? count_live(h) : 0;
			log_info("message id=%s session=%s delivery=spooled reason=%s live=%u spooled=%u", h->tx->id,
			    h->session_id, h->reason, live, h->tx->accepted - live);
		}
		else
			spool_remove(h->sp, h->tx->id); /* the state saved for it */
		reset(h);
		break;
	case TX_CMD_MAIL:
	case TX_CMD_RSET:
		break;
	}
	pass(h, r);
}

/* The spool cannot take the body (a full disk): nothing of it goes. */
static void on_spool_failure(void *arg, const struct smtp_reply *r)
{
	struct hybrid *h = arg;

	h->relay.ops->abort(h->relay.impl, h->tx);
	reset(h);
	h->events->failure(h->session, r);
}

static void on_spool_resume(void *arg)
{
	(void)arg; /* the spool never makes anyone wait */
}

static const struct tx_events spool_events = {
	.answer = on_spool_answer,
	.failure = on_spool_failure,
	.resume = on_spool_resume,
};

/* ---- backend ops ---- */

static void h_mail(void *b, struct tx *tx)
{
	struct hybrid *h = b;

	h->tx = tx;
	reset(h);
	enter_state(h, H_LIVE);
	tx_owe(&h->at_relay, TX_CMD_MAIL);
	h->relay.ops->mail(h->relay.impl, tx);
}

static bool h_can_pipe(void *b)
{
	struct hybrid *h = b;

	return h->state == H_SPOOLED || h->relay.ops->can_pipe(h->relay.impl);
}

static void h_rcpt(void *b, struct tx *tx)
{
	struct hybrid *h = b;

	if (h->state == H_LIVE) {
		tx_owe(&h->at_relay, TX_CMD_RCPT);
		h->relay.ops->rcpt(h->relay.impl, tx);
		return;
	}
	tx_owe(&h->at_spool, TX_CMD_RCPT);
	h->spool.ops->rcpt(h->spool.impl, tx);
}

static void h_data(void *b, struct tx *tx)
{
	struct hybrid *h = b;

	/* Every recipient answered and none went live: no DATA upstream. */
	if (h->state == H_LIVE && count_live(h) == 0 && h->at_relay.rcpts == 0)
		to_spool(h, "reply_4xx");
	if (h->state == H_LIVE) {
		tx_owe(&h->at_relay, TX_CMD_DATA);
		h->relay.ops->data(h->relay.impl, tx);
		return;
	}
	spool_data(h);
}

static char *h_body_space(void *b, size_t need, size_t *room)
{
	struct hybrid *h = b;
	size_t relay_room, spool_room;

	if (!h->tee)
		return h->spool.ops->body_space(h->spool.impl, need, room);
	h->relay_space = h->relay.ops->body_space(h->relay.impl, need, &relay_room);
	if (relay_room < need) {
		*room = relay_room; /* the provider is slower: wait for resume */
		return h->relay_space;
	}
	h->spool_space = h->spool.ops->body_space(h->spool.impl, need, &spool_room);
	*room = relay_room < spool_room ? relay_room : spool_room;
	return h->spool_space;
}

static void h_body_commit(void *b, struct tx *tx, size_t n)
{
	struct hybrid *h = b;

	if (h->tee) {
		memcpy(h->relay_space, h->spool_space, n);
		h->relay.ops->body_commit(h->relay.impl, tx, n);
	}
	h->spool.ops->body_commit(h->spool.impl, tx, n);
}

static void h_end(void *b, struct tx *tx)
{
	struct hybrid *h = b;

	if (h->state == H_LIVE && h->tee) {
		tx_owe(&h->at_relay, TX_CMD_END);
		h->relay.ops->end(h->relay.impl, tx);
		return;
	}
	spool_end(h);
}

static void h_reset(void *b, struct tx *tx)
{
	struct hybrid *h = b;

	h->spool.ops->abort(h->spool.impl, tx);
	if (h->state == H_LIVE) {
		tx_owe(&h->at_relay, TX_CMD_RSET);
		h->relay.ops->reset(h->relay.impl, tx);
		return;
	}
	reset(h);
	pass_text(h, 250, "2.0.0", "Ok");
}

static void h_abort(void *b, struct tx *tx)
{
	struct hybrid *h = b;

	h->relay.ops->abort(h->relay.impl, tx);
	h->spool.ops->abort(h->spool.impl, tx);
	reset(h);
}

static void h_free(void *b)
{
	struct hybrid *h = b;

	h->relay.ops->free(h->relay.impl);
	h->spool.ops->free(h->spool.impl);
	runtime_unref(h->rt);
	free(h);
}

static const struct backend_ops hybrid_ops = {
	.mail = h_mail,
	.can_pipe = h_can_pipe,
	.rcpt = h_rcpt,
	.data = h_data,
	.body_space = h_body_space,
	.body_commit = h_body_commit,
	.end = h_end,
	.reset = h_reset,
	.abort = h_abort,
	.free = h_free,
};

bool hybrid_open(struct backend *b, struct runtime *rt, struct queue *q, struct spool *sp, const char *session_id,
    const struct tx_events *events, void *session)
{
	struct hybrid *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return false;
	/* A client waits at most HYBRID_SESSION_WAIT in line for a provider
	 * session (a burst holds them all), or for a paced provider's turn:
	 * then the spool takes it (reason=busy or paced). */
	struct relay_role role = { .owns_outcome = false, .max_session_wait = HYBRID_SESSION_WAIT };
	if (!relay_open(&h->relay, rt, session_id, &relay_events, h, role)) {
		free(h);
		return false;
	}
	if (!spooler_open(&h->spool, rt->path.loop, q, sp, session_id, &spool_events, h)) {
		h->relay.ops->free(h->relay.impl);
		free(h);
		return false;
	}
	h->rt = runtime_ref(rt);
	h->sp = sp;
	h->events = events;
	h->session = session;
	h->session_id = session_id;
	b->ops = &hybrid_ops;
	b->impl = h;
	return true;
}

/*
 * relay.c: see relay.h.
 */
#include "relay.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "pool.h"

#define RELAY_STATES(X) \
	X(IDLE)   /* no transaction, no upstream session */ \
	X(PATH)   /* MAIL given to the path search */ \
	X(TX)     /* MAIL accepted: RCPTs and DATA go to the provider */ \
	X(BODY)   /* the provider said 354: the body flows */ \
	X(DOT_WAIT)   /* end of data sent, waiting for the verdict */ \
	X(RSET_WAIT)  /* RSET sent */

enum relay_state {
#define X(s) R_##s,
	RELAY_STATES(X)
#undef X
};

static const char *const state_names[] = {
#define X(s) #s,
	RELAY_STATES(X)
#undef X
};

struct relay {
	enum relay_state state;
	struct runtime *rt;
	const struct tx_events *events;
	void *session;
	const char *session_id;
	struct tx *tx;
	struct path_search *search;
	struct upstream *up;       /* MAIL accepted on it */
	struct upstream *piping;   /* PATH: an idle session whose MAIL is out */
	unsigned sent;             /* RCPTs written on the current upstream session */
	unsigned answered;         /* RCPT replies received */
	bool data_asked;           /* the client sent DATA */
	bool data_sent;
	unsigned owed;             /* commands handed to us and not answered */
	struct upstream_info info; /* the session of this transaction, kept for log lines */
	bool have_info;
	char lost[200];            /* a provider lost between commands: the next one's answer */
};

static const struct upstream_callbacks relay_callbacks;

/* The message's id in a transaction, else the session's. */
static const char *log_id(const struct relay *r)
{
	return r->tx != NULL && r->tx->id[0] ? r->tx->id : r->session_id;
}

static void enter_state(struct relay *r, enum relay_state next)
{
	log_debug("id=%s relay=%s->%s", log_id(r), state_names[r->state], state_names[next]);
	r->state = next;
}

/* ---- answers ---- */

static void answer(struct relay *r, const struct smtp_reply *reply)
{
	r->owed--;
	r->events->answer(r->session, reply);
}

static void answer_text(struct relay *r, int code, const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void answer_text(struct relay *r, int code, const char *enhanced, const char *fmt, ...)
{
	struct smtp_reply reply;
	va_list ap;

	va_start(ap, fmt);
	tx_vreply(&reply, code, enhanced, fmt, ap);
	va_end(ap);
	answer(r, &reply);
}

/* Every command owed gets the failure; the transaction is over. */
static void fail_all(struct relay *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_all(struct relay *r, const char *fmt, ...)
{
	struct smtp_reply reply;
	va_list ap;

	va_start(ap, fmt);
	tx_vreply(&reply, 451, "4.4.2", fmt, ap);
	va_end(ap);
	r->owed = 0;
	r->lost[0] = '\0';
	enter_state(r, R_IDLE);
	r->events->failure(r->session, &reply);
}

static void log_message(struct relay *r, const char *result, const struct smtp_reply *reply)
{
	char from[SMTP_PATH_MAX + 8], text[300], where[300];
	const struct tx *tx = r->tx;

	upstream_info_format(r->have_info ? &r->info : NULL, where, sizeof(where));
	log_info("message id=%s session=%s from=%s rcpts=%u size=%llu %s result=%s reply=%s duration=%.3fs", tx->id,
	    r->session_id, log_quote(from, sizeof(from), tx->from), tx->accepted, (unsigned long long)tx->bytes, where,
	    result, log_quote(text, sizeof(text), reply ? reply->text : ""), ev_now(r->rt->path.loop) - tx->started);
}

/* One line per recipient: the provider's answer to its RCPT. */
static void log_rcpt(struct relay *r, unsigned i, const struct smtp_reply *reply)
{
	char to[SMTP_PATH_MAX + 8], raw[SMTP_REPLY_TEXT_MAX + 32], text[SMTP_REPLY_TEXT_MAX + 40], where[300];
	const char *result = reply->code / 100 == 2 ? "accepted" : reply->code >= 500 ? "rejected" : "deferred";

	upstream_info_format(r->have_info ? &r->info : NULL, where, sizeof(where));
	snprintf(raw, sizeof(raw), "%d %s%s%s", reply->code, reply->enhanced, reply->enhanced[0] ? " " : "",
	    reply->text);
	log_info("rcpt id=%s to=%s %s result=%s reply=%s", r->tx->id, log_quote(to, sizeof(to), r->tx->rcpts[i].addr),
	    where, result, log_quote(text, sizeof(text), raw));
}

/* ---- the envelope ---- */

static void reset_envelope(struct relay *r)
{
	r->sent = r->answered = 0;
	r->data_asked = r->data_sent = false;
}

/* Writes the RCPTs handed over and not written yet, then DATA behind
 * them, as far as the provider lets commands go before their replies. */
static void pump_envelope(struct relay *r)
{
	struct upstream *up = r->state == R_PATH ? r->piping : r->up;

	if (up == NULL)
		return;
	while (r->sent < r->tx->nrcpts && upstream_can_send(up))
		upstream_rcpt(up, r->tx->rcpts[r->sent++].addr);
	if (r->data_asked && !r->data_sent && r->sent == r->tx->nrcpts && upstream_can_send(up)) {
		r->data_sent = true;
		upstream_data(up);
	}
}

/* Drops the provider session (it may be mid-transaction). */
static void drop_upstream(struct relay *r)
{
	upstream_abort(r->up);
	r->up = NULL;
}

/* The session is between transactions: the pool has it from now on. */
static void release_upstream(struct relay *r)
{
	if (r->up != NULL)
		pool_put(r->rt->path.pool, r->up);
	r->up = NULL;
}

/* ---- upstream callbacks ---- */

static void on_verdict(struct relay *r, const struct smtp_reply *reply)
{
	/* The provider session is between transactions: to the pool, where
	 * this client's next MAIL finds it (with its envelope piped behind),
	 * unless another client waiting for a session (max_connections are
	 * open) takes it first. An idle client holds no session. */
	enter_state(r, R_IDLE);
	release_upstream(r);
	if (reply->code / 100 == 2) {
		log_message(r, "delivered", reply);
		metrics_message("accepted");
		metrics_message("delivered");
		metrics_delivery_seconds(ev_now(r->rt->path.loop) - r->tx->started);
		answer_text(r, reply->code, reply->enhanced[0] ? reply->enhanced : "2.0.0", "Ok: queued as %s (provider: %s)",
		    r->tx->id, reply->text);
		return;
	}
	log_message(r, reply->code >= 500 ? "rejected" : "deferred", reply);
	metrics_message(reply->code >= 500 ? "failed" : "deferred");
	answer(r, reply);
}

static void on_upstream_reply(struct upstream *up, void *arg, const struct smtp_reply *reply)
{
	struct relay *r = arg;
	(void)up;

	/* Replies come back in the order the commands went: RCPTs, DATA. */
	if (r->state == R_TX && r->answered < r->sent) {
		log_rcpt(r, r->answered++, reply);
		answer(r, reply);
		pump_envelope(r);
		return;
	}
	switch (r->state) {
	case R_TX:
		r->data_asked = r->data_sent = false;
		if (reply->code == 354) {
			enter_state(r, R_BODY);
			answer_text(r, 354, "", "End data with <CR><LF>.<CR><LF>");
		} else {
			answer(r, reply);
		}
		return;
	case R_DOT_WAIT:
		on_verdict(r, reply);
		return;
	case R_RSET_WAIT:
		if (reply->code / 100 != 2)
			drop_upstream(r);
		enter_state(r, R_IDLE);
		release_upstream(r);
		answer_text(r, 250, "2.0.0", "Ok");
		return;
	default:
		log_error("id=%s unexpected provider reply %d in state %s", log_id(r), reply->code,
		    state_names[r->state]);
		drop_upstream(r);
		return;
	}
}

static void on_upstream_writable(struct upstream *up, void *arg)
{
	struct relay *r = arg;
	(void)up;

	r->events->resume(r->session);
}

static void on_upstream_failed(struct upstream *up, void *arg, enum upstream_fail cls, const char *reason)
{
	struct relay *r = arg;
	char quoted[400];
	struct upstream_info info;
	const char *name = upstream_fail_name(cls);

	upstream_get_info(up, &info);
	metrics_attempt(info.provider, info.port, info.mode, name);
	log_warn("upstream failed id=%s session=%s provider=%s address=%s port=%u mode=%s class=%s state=%s reason=%s",
	    log_id(r), r->session_id, info.provider, info.address,
	    info.port, info.mode, name, state_names[r->state], log_quote(quoted, sizeof(quoted), reason));
	if (r->state == R_BODY) {
		log_message(r, "deferred", NULL);
		drop_upstream(r);
		fail_all(r, "Connection to provider lost during data (%s); try again later", name);
	} else if (r->owed > 0) {
		/* Every command handed over is owed its answer, in order. */
		if (r->state == R_DOT_WAIT)
			log_message(r, "deferred", NULL);
		drop_upstream(r);
		fail_all(r, "Connection to provider lost (%s); try again later", name);
	} else {
		/* Between commands: the client hears of it in the answer to its
		 * next command (SMTP has no unsolicited replies). */
		drop_upstream(r);
		if (r->state == R_TX)
			snprintf(r->lost, sizeof(r->lost), "Connection to provider lost (%s); transaction aborted, start again",
			    name);
		else
			enter_state(r, R_IDLE);
	}
}

static const struct upstream_callbacks relay_callbacks = {
	.ready = NULL,
	.reply = on_upstream_reply,
	.writable = on_upstream_writable,
	.failed = on_upstream_failed,
};

/* ---- the path ---- */

/* The path search wrote MAIL on a pooled session: what the client
 * pipelined goes behind it in the same flight. NULL: that session failed,
 * with what was piped; it goes again on the next. */
static void on_mail_sent(struct upstream *up, void *arg)
{
	struct relay *r = arg;

	r->piping = up;
	r->sent = 0;
	r->data_sent = false;
	pump_envelope(r);
}

static void on_path_done(struct upstream *up, const struct smtp_reply *reply, const char *error, void *arg)
{
	struct relay *r = arg;

	r->search = NULL;
	r->piping = NULL;
	if (up != NULL) {
		r->up = up;
		upstream_get_info(up, &r->info);
		r->have_info = true;
		upstream_set_callbacks(up, &relay_callbacks, r);
		enter_state(r, R_TX);
		pump_envelope(r);
		answer(r, reply);
		return;
	}
	log_warn("message id=%s session=%s result=%s reason=%s", r->tx->id, r->session_id,
	    reply != NULL && reply->code >= 500 ? "rejected" : "deferred", reply != NULL ? "mail_refused" : "no_path");
	enter_state(r, R_IDLE);
	reset_envelope(r);
	r->owed = 1; /* MAIL's answer; the session answers what was piped behind it */
	if (reply != NULL)
		answer(r, reply);
	else
		answer_text(r, 451, "4.4.1", "No way to the provider right now (%s); try again later", error);
}

/* ---- backend ops ---- */

static void relay_mail(void *b, struct tx *tx)
{
	struct relay *r = b;
	unsigned nproviders;
	const char *route;
	struct provider_cfg *const *providers = config_route_for(r->rt->path.cfg, tx->from, &nproviders, &route);

	r->tx = tx;
	r->have_info = false;
	r->owed = 1;
	r->lost[0] = '\0';
	reset_envelope(r);
	if (nproviders == 0) {
		answer_text(r, 451, "4.3.5", "No provider configured; mail cannot be relayed yet");
		return;
	}
	log_debug("id=%s message=%s route=%s", r->session_id, tx->id, route);
	struct upstream_mail_params mp = {
		.from = tx->from,
		.size = tx->size,
		.body_8bitmime = tx->body_8bit,
		.smtputf8 = tx->smtputf8,
	};
	release_upstream(r); /* a session left mid-transaction is closed by the pool */
	enter_state(r, R_PATH);
	r->search = path_search_start(&r->rt->path, providers, nproviders, &mp, tx->id, on_mail_sent, on_path_done, r);
	if (r->search == NULL) {
		r->piping = NULL;
		enter_state(r, R_IDLE);
		answer_text(r, 451, "4.3.0", "Out of memory; try again later");
	}
}

static bool relay_can_pipe(void *b)
{
	struct relay *r = b;
	struct upstream *up = r->state == R_PATH ? r->piping : r->state == R_TX ? r->up : NULL;

	return up != NULL && upstream_can_send(up);
}

/* A command after the provider went away between commands. */
static bool answer_lost(struct relay *r)
{
	if (r->lost[0] == '\0')
		return false;
	fail_all(r, "%s", r->lost);
	return true;
}

static void relay_rcpt(void *b, struct tx *tx)
{
	struct relay *r = b;

	(void)tx;
	r->owed++;
	if (!answer_lost(r))
		pump_envelope(r);
}

static void relay_data(void *b, struct tx *tx)
{
	struct relay *r = b;

	(void)tx;
	r->owed++;
	if (answer_lost(r))
		return;
	r->data_asked = true;
	pump_envelope(r);
}

static char *relay_body_space(void *b, size_t need, size_t *room)
{
	struct relay *r = b;

	return upstream_body_space(r->up, need, room);
}

static void relay_body_commit(void *b, struct tx *tx, size_t n)
{
	struct relay *r = b;

	(void)tx;
	upstream_body_commit(r->up, n);
}

static void relay_end(void *b, struct tx *tx)
{
	struct relay *r = b;

	(void)tx;
	r->owed++;
	enter_state(r, R_DOT_WAIT);
	upstream_body_end(r->up);
}

static void relay_reset(void *b, struct tx *tx)
{
	struct relay *r = b;

	(void)tx;
	r->owed++;
	r->lost[0] = '\0';
	reset_envelope(r);
	if (r->up == NULL) {
		enter_state(r, R_IDLE);
		answer_text(r, 250, "2.0.0", "Ok");
		return;
	}
	enter_state(r, R_RSET_WAIT);
	upstream_rset(r->up);
}

static void relay_abort(void *b, struct tx *tx)
{
	struct relay *r = b;

	(void)tx;
	path_search_cancel(r->search);
	r->search = NULL;
	r->piping = NULL;
	if (r->state == R_BODY || r->state == R_DOT_WAIT)
		drop_upstream(r); /* never let a partial message be completed */
	else if (r->state != R_IDLE) {
		upstream_close(r->up); /* a transaction is open on it */
		r->up = NULL;
	}
	r->owed = 0;
	r->lost[0] = '\0';
	reset_envelope(r);
	enter_state(r, R_IDLE);
}

static void relay_free(void *b)
{
	struct relay *r = b;

	relay_abort(r, NULL); /* between transactions the session is in the pool already */
	runtime_unref(r->rt);
	free(r);
}

static const struct backend_ops relay_ops = {
	.mail = relay_mail,
	.can_pipe = relay_can_pipe,
	.rcpt = relay_rcpt,
	.data = relay_data,
	.body_space = relay_body_space,
	.body_commit = relay_body_commit,
	.end = relay_end,
	.reset = relay_reset,
	.abort = relay_abort,
	.free = relay_free,
};

bool relay_open(struct backend *b, struct runtime *rt, const char *session_id, const struct tx_events *events,
    void *session)
{
	struct relay *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return false;
	r->rt = runtime_ref(rt);
	r->events = events;
	r->session = session;
	r->session_id = session_id;
	b->ops = &relay_ops;
	b->impl = r;
	return true;
}

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
#include "utx.h"

#define RELAY_STATES(X) \
	X(IDLE)   /* no transaction, no upstream session */ \
	X(PATH)   /* MAIL given: a session is sought, MAIL sent on it */ \
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
	struct utx *utx;           /* the transaction with the provider */
	unsigned owed;             /* commands handed to us and not answered */
	struct upstream_info info; /* the session of this transaction, kept for log lines */
	bool have_info;
	struct relay_role role;
	char lost[200];            /* a provider lost between commands: the next one's answer */
};

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

static void write_message_line(const struct relay *r, const char *result, const struct smtp_reply *reply,
    const char *suffix)
{
	char from[SMTP_PATH_MAX + 8], text[300], where[300], auth[USER_NAME_MAX + 16];
	const struct tx *tx = r->tx;

	upstream_info_format(r->have_info ? &r->info : NULL, where, sizeof(where));
	log_info("message id=%s session=%s from=%s rcpts=%u size=%llu %s result=%s reply=%s duration=%.3fs%s%s", tx->id,
	    r->session_id, log_quote(from, sizeof(from), tx->from), tx->accepted, (unsigned long long)tx->bytes, where,
	    result, log_quote(text, sizeof(text), reply ? reply->text : ""), ev_now(r->rt->path.loop) - tx->started,
	    tx_log_auth(tx, auth, sizeof(auth)), suffix);
}

/* The message's outcome, when it is the relay's to tell: its line and
 * its metric ("deferred" and "failed" are the client's to retry or not). */
static void message_outcome(struct relay *r, const char *result, const char *metric, const struct smtp_reply *reply)
{
	if (!r->role.owns_outcome)
		return;
	write_message_line(r, result, reply, "");
	if (strcmp(metric, "delivered") == 0) {
		metrics_message("accepted");
		metrics_delivery_seconds(ev_now(r->rt->path.loop) - r->tx->started);
	}
	if (metric[0] != '\0')
		metrics_message(metric);
}

void relay_log_message(const struct backend *b, const char *result, const struct smtp_reply *reply,
    const char *suffix)
{
	write_message_line(b->impl, result, reply, suffix);
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

/* The transaction with the provider is over; a session between
 * transactions goes to the pool, where this client's next MAIL finds it
 * (with its envelope piped behind), unless another client waiting for a
 * session (max_connections are open) takes it first. An idle client
 * holds no session. */
static void end_utx(struct relay *r)
{
	utx_free(r->utx, r->rt->path.pool);
	r->utx = NULL;
}

/* ---- the transaction's events ---- */

static void on_mail(void *arg, const struct smtp_reply *reply, const char *error)
{
	struct relay *r = arg;

	if (reply != NULL && reply->code / 100 == 2) {
		r->have_info = utx_info(r->utx, &r->info);
		enter_state(r, R_TX);
		answer(r, reply);
		return;
	}
	if (r->role.owns_outcome || (reply != NULL && reply->code >= 500))
		log_warn("message id=%s session=%s result=%s reason=%s", r->tx->id, r->session_id,
		    reply != NULL && reply->code >= 500 ? "rejected" : "deferred", reply != NULL ? "mail_refused" : "no_path");
	end_utx(r);
	enter_state(r, R_IDLE);
	r->owed = 1; /* MAIL's answer; the session answers what was piped behind it */
	if (reply != NULL)
		answer(r, reply);
	else
		answer_text(r, 451, "4.4.1", "No way to the provider right now (%s); try again later", error);
}

static void on_rcpt(void *arg, unsigned i, const struct smtp_reply *reply)
{
	struct relay *r = arg;

	log_rcpt(r, i, reply);
	answer(r, reply);
}

static void on_data(void *arg, const struct smtp_reply *reply)
{
	struct relay *r = arg;

	if (reply->code != 354) {
		answer(r, reply);
		return;
	}
	enter_state(r, R_BODY);
	answer_text(r, 354, "", "End data with <CR><LF>.<CR><LF>");
}

static void on_writable(void *arg)
{
	struct relay *r = arg;

	r->events->resume(r->session);
}

static void on_end(void *arg, const struct smtp_reply *reply)
{
	struct relay *r = arg;

	enter_state(r, R_IDLE);
	end_utx(r);
	if (reply->code / 100 == 2) {
		message_outcome(r, "delivered", "delivered", reply);
		answer_text(r, reply->code, reply->enhanced[0] ? reply->enhanced : "2.0.0", "Ok: queued as %s (provider: %s)",
		    r->tx->id, reply->text);
		return;
	}
	if (reply->code >= 500)
		message_outcome(r, "rejected", "failed", reply);
	else
		message_outcome(r, "deferred", "deferred", reply);
	answer(r, reply);
}

static void on_reset(void *arg)
{
	struct relay *r = arg;

	enter_state(r, R_IDLE);
	end_utx(r);
	answer_text(r, 250, "2.0.0", "Ok");
}

static void on_failed(void *arg, enum upstream_fail cls, const char *reason)
{
	struct relay *r = arg;
	char quoted[400];
	const char *name = upstream_fail_name(cls);
	const struct upstream_info *info = &r->info; /* MAIL was accepted there */

	log_warn("upstream failed id=%s session=%s provider=%s address=%s port=%u mode=%s class=%s state=%s reason=%s",
	    log_id(r), r->session_id, info->provider, info->address, info->port, info->mode, name,
	    state_names[r->state], log_quote(quoted, sizeof(quoted), reason));
	end_utx(r);
	if (r->state == R_BODY) {
		message_outcome(r, "deferred", "", NULL);
		fail_all(r, "Connection to provider lost during data (%s); try again later", name);
	} else if (r->owed > 0) {
		/* Every command handed over is owed its answer, in order. */
		if (r->state == R_DOT_WAIT)
			message_outcome(r, "deferred", "", NULL);
		fail_all(r, "Connection to provider lost (%s); try again later", name);
	} else if (r->state == R_TX) {
		/* Between commands: the client hears of it in the answer to its
		 * next command (SMTP has no unsolicited replies). */
		snprintf(r->lost, sizeof(r->lost), "Connection to provider lost (%s); transaction aborted, start again", name);
	} else {
		enter_state(r, R_IDLE);
	}
}

static const struct utx_events relay_events = {
	.mail = on_mail,
	.rcpt = on_rcpt,
	.data = on_data,
	.writable = on_writable,
	.end = on_end,
	.reset = on_reset,
	.failed = on_failed,
};

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
	end_utx(r); /* a transaction left open is closed there */
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
	enter_state(r, R_PATH);
	r->utx = utx_start(&r->rt->path, providers, nproviders, r->role.max_session_wait, &mp, tx->id, &relay_events,
	    r);
	if (r->utx == NULL) {
		enter_state(r, R_IDLE);
		answer_text(r, 451, "4.3.0", "Out of memory; try again later");
	}
}

static bool relay_can_pipe(void *b)
{
	struct relay *r = b;

	return r->utx != NULL && utx_can_pipe(r->utx);
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

	r->owed++;
	if (answer_lost(r))
		return;
	if (!utx_rcpt(r->utx, tx->rcpts[tx->nrcpts - 1].addr))
		fail_all(r, "Out of memory; try again later");
}

static void relay_data(void *b, struct tx *tx)
{
	struct relay *r = b;

	(void)tx;
	r->owed++;
	if (!answer_lost(r))
		utx_data(r->utx);
}

static char *relay_body_space(void *b, size_t need, size_t *room)
{
	struct relay *r = b;

	return utx_body_space(r->utx, need, room);
}

static void relay_body_commit(void *b, struct tx *tx, size_t n)
{
	struct relay *r = b;

	(void)tx;
	utx_body_commit(r->utx, n);
}

static void relay_end(void *b, struct tx *tx)
{
	struct relay *r = b;

	(void)tx;
	r->owed++;
	enter_state(r, R_DOT_WAIT);
	utx_end(r->utx);
}

static void relay_reset(void *b, struct tx *tx)
{
	struct relay *r = b;

	(void)tx;
	r->owed++;
	r->lost[0] = '\0';
	if (r->state != R_TX || r->utx == NULL) {
		end_utx(r);
		enter_state(r, R_IDLE);
		answer_text(r, 250, "2.0.0", "Ok");
		return;
	}
	enter_state(r, R_RSET_WAIT);
	utx_reset(r->utx);
}

static void relay_abort(void *b, struct tx *tx)
{
	struct relay *r = b;

	(void)tx;
	end_utx(r); /* a partial body is cut, never completed */
	r->owed = 0;
	r->lost[0] = '\0';
	enter_state(r, R_IDLE);
}

static void relay_free(void *b)
{
	struct relay *r = b;

	relay_abort(r, NULL);
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
    void *session, struct relay_role role)
{
	struct relay *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return false;
	r->rt = runtime_ref(rt);
	r->events = events;
	r->session = session;
	r->session_id = session_id;
	r->role = role;
	b->ops = &relay_ops;
	b->impl = r;
	return true;
}

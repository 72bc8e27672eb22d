/*
 * smtp_server.c: see smtp_server.h.
 *
 * One enum holds where a session is. Commands are checked against a
 * table (which states accept them) before a handler runs. Every entry
 * point (client I/O, upstream callbacks, path result) runs under
 * session_enter()/session_leave(), so a handler may close the session
 * and the memory goes only when the outermost call returns.
 */
#include "smtp_server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "id.h"
#include "io.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "queue.h"
#include "smtp_data.h"
#include "smtp_parse.h"

#define CLIENT_IN_LIMIT (16 * 1024)
#define CLIENT_OUT_LIMIT (8 * 1024)
/* Stop taking commands while less than this is free for their replies. */
#define REPLY_RESERVE 1200
/* The longest reply line reply() writes: room kept for each one owed. */
#define REPLY_LINE_MAX 600
#define MAX_ERRORS 10
#define COMMAND_LINE_MAX 2048

#define SESSION_STATES(X) \
	X(GREET)      /* no HELO/EHLO yet */ \
	X(IDLE)       /* greeted, no transaction */ \
	X(PATH)       /* MAIL received, looking for a way upstream */ \
	X(TX)         /* MAIL accepted: RCPT, DATA, RSET (RCPTs may be in flight) */ \
	X(DATA_WAIT)  /* DATA sent, behind any RCPTs in flight */ \
	X(BODY)       /* streaming the message upstream */ \
	X(DISCARD)    /* reading the rest of a message that will not be delivered */ \
	X(DOT_WAIT)   /* end of data sent, waiting for the provider's verdict */ \
	X(RSET_WAIT) \
	X(COMMIT_WAIT) /* queue mode: the message is being made durable */ \
	X(CLOSING)

enum session_state {
#define X(s) S_##s,
	SESSION_STATES(X)
#undef X
};

static const char *const session_state_names[] = {
#define X(s) #s,
	SESSION_STATES(X)
#undef X
};

#define SESSION_MAGIC 0x5e55c0deu

struct session {
	unsigned magic;
	enum session_state state;
	struct server_env *env;
	struct runtime *rt;        /* the configuration this session started with */
	const struct config *cfg;
	bool queue_mode;
	struct session *prev, *next; /* env->sessions */
	struct io *io;
	char id[ID_LEN + 1];
	char peer[64];
	char helo[128];
	bool esmtp;
	bool skipping_line;        /* discarding the rest of an over-long line */
	bool peer_eof;             /* the client shut its side: answer what it sent, then close */
	unsigned errors;
	int depth;
	bool dead;
	char close_reason[160];    /* why the session ends, for the disconnect line */

	/* the transaction */
	char msg_id[ID_LEN + 1];
	char from[SMTP_PATH_MAX + 1];
	uint64_t size;
	bool body_8bit;
	bool smtputf8;
	unsigned rcpts_tried;
	unsigned rcpts_accepted;
	unsigned rcpts_in_flight;  /* RCPTs relayed whose replies have not come back */
	/* Piped behind a MAIL still unanswered (on_mail_sent): still in the input. */
	unsigned piped_rcpts;
	size_t piped_bytes;
	bool piped_data;
	ev_tstamp tx_started;
	struct smtp_data data;
	char discard_reply[200];   /* the answer once a discarded body ends */

	/* queue mode: the envelope kept here, the data in the spool */
	struct spool_rcpt *rcpts;
	struct spool_writer *spool;
	struct queue_waiter *commit;

	/* the provider side */
	struct path_search *search;
	struct upstream *up;
};

static void session_process(struct session *s);
static const struct upstream_callbacks session_upstream_callbacks;
static void start_search(struct session *s);

/* ---- lifecycle ---- */

static void enter_state(struct session *s, enum session_state next)
{
	log_debug("id=%s state=%s->%s", s->id, session_state_names[s->state], session_state_names[next]);
	s->state = next;
}

static void session_enter(struct session *s)
{
	if (s->magic != SESSION_MAGIC)
		abort();
	s->depth++;
}

static void session_free(struct session *s)
{
	if (s->spool != NULL) {
		spool_discard(s->spool); /* a message the client never finished */
		spool_writer_free(s->spool);
	}
	queue_waiter_cancel(s->commit);
	free(s->rcpts);
	path_search_cancel(s->search);
	if (s->state == S_BODY || s->state == S_DOT_WAIT)
		upstream_abort(s->up); /* never let a partial message be completed */
	else if (s->up != NULL && upstream_idle(s->up))
		pool_put(s->rt->path.pool, s->up); /* for the next client */
	else
		upstream_close(s->up);
	io_free(s->io);
	s->env->nclients--;
	metrics_worker_sessions(s->env->nclients);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		s->env->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	runtime_unref(s->rt);
	log_info("disconnect id=%s client=%s reason=%s", s->id, s->peer,
	    s->close_reason[0] ? s->close_reason : "shutdown");
	s->magic = 0;
	free(s);
}

static void session_leave(struct session *s)
{
	if (--s->depth == 0 && s->dead)
		session_free(s);
}

/* Every way a session ends says why, in its disconnect line. */
static void set_close_reason(struct session *s, const char *reason)
{
	if (s->close_reason[0] == '\0')
		log_quote(s->close_reason, sizeof(s->close_reason), reason);
}

/* Ends the session now: its client is gone or broken. */
static void session_close(struct session *s, const char *reason)
{
	set_close_reason(s, reason);
	enter_state(s, S_CLOSING);
	s->dead = true;
}

/* Ends the session once the replies written so far have gone out. */
static void close_after_replies(struct session *s, const char *reason)
{
	set_close_reason(s, reason);
	enter_state(s, S_CLOSING);
	io_close_after_flush(s->io);
}

/* ---- replies ---- */

static void reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct session *s, const char *fmt, ...)
{
	char line[REPLY_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = sizeof(line) - 3;
	memcpy(line + n, "\r\n", 2);
	/* REPLY_RESERVE guarantees the room: commands stop before it runs out. */
	buf_append(io_out(s->io), line, (size_t)n + 2);
	io_update(s->io);
}

/* A locally generated error; too many of them end the session. */
static void reply_error(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_error(struct session *s, const char *fmt, ...)
{
	char line[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	reply(s, "%s", line);
	if (++s->errors >= MAX_ERRORS) {
		reply(s, "421 4.7.0 %s Too many errors, closing connection", s->cfg->relay.hostname);
		close_after_replies(s, "too_many_errors");
	}
}

/* Relays a provider's reply, adding an enhanced code when it has none. */
static void relay_reply(struct session *s, const struct smtp_reply *r, const char *default_detail)
{
	char enh[16];

	if (r->enhanced[0])
		snprintf(enh, sizeof(enh), "%s", r->enhanced);
	else
		snprintf(enh, sizeof(enh), "%d.%s", r->code / 100, default_detail);
	reply(s, "%d %s %s", r->code, enh, r->text);
}

/* ---- transaction bookkeeping ---- */

/* Commands piped behind a MAIL (on_mail_sent) go back to being input. */
static void forget_piped(struct session *s)
{
	s->piped_rcpts = 0;
	s->piped_bytes = 0;
	s->piped_data = false;
}

static void tx_clear(struct session *s)
{
	s->msg_id[0] = '\0';
	s->from[0] = '\0';
	s->size = 0;
	s->body_8bit = false;
	s->smtputf8 = false;
	s->rcpts_tried = 0;
	s->rcpts_accepted = 0;
	s->rcpts_in_flight = 0;
	forget_piped(s);
	free(s->rcpts);
	s->rcpts = NULL;
}

static void log_message(struct session *s, const char *result, const struct smtp_reply *r)
{
	struct upstream_info info = { 0 };
	char from[SMTP_PATH_MAX + 8], text[300];

	if (s->up != NULL)
		upstream_get_info(s->up, &info);
	log_info("message id=%s session=%s from=%s rcpts=%u size=%llu provider=%s address=%s port=%u mode=%s "
	    "tls=%s cipher=%s result=%s reply=%s duration=%.3fs",
	    s->msg_id, s->id, log_quote(from, sizeof(from), s->from), s->rcpts_accepted,
	    (unsigned long long)s->data.out_bytes, info.provider ? info.provider : "none",
	    info.address[0] ? info.address : "none", info.port, info.mode ? info.mode : "none",
	    info.tls_version ? info.tls_version : "none", info.tls_cipher ? info.tls_cipher : "none", result,
	    log_quote(text, sizeof(text), r ? r->text : ""), ev_now(s->env->loop) - s->tx_started);
}

/* Drops the provider session (it may be mid-transaction) after a failure. */
static void drop_upstream(struct session *s)
{
	upstream_abort(s->up);
	s->up = NULL;
}

/* ---- upstream callbacks ---- */

static void on_upstream_reply(struct upstream *up, void *arg, const struct smtp_reply *r)
{
	struct session *s = arg;
	(void)up;

	session_enter(s);
	/* Replies come back in the order the commands went: RCPTs first. */
	if (s->rcpts_in_flight > 0 && (s->state == S_TX || s->state == S_DATA_WAIT)) {
		s->rcpts_in_flight--;
		if (r->code / 100 == 2)
			s->rcpts_accepted++;
		relay_reply(s, r, "1.5");
		session_process(s);
		session_leave(s);
		return;
	}
	switch (s->state) {
	case S_DATA_WAIT:
		if (r->code == 354) {
			reply(s, "354 End data with <CR><LF>.<CR><LF>");
			smtp_data_init(&s->data);
			enter_state(s, S_BODY);
		} else {
			relay_reply(s, r, "0.0");
			enter_state(s, S_TX);
		}
		break;
	case S_DOT_WAIT:
		if (r->code / 100 == 2) {
			reply(s, "%d %s Ok: queued as %s (provider: %s)", r->code, r->enhanced[0] ? r->enhanced : "2.0.0",
			    s->msg_id, r->text);
			log_message(s, "delivered", r);
			metrics_message("accepted");
			metrics_message("delivered");
			metrics_delivery_seconds(ev_now(s->env->loop) - s->tx_started);
		} else {
			relay_reply(s, r, "0.0");
			log_message(s, r->code >= 500 ? "rejected" : "deferred", r);
			metrics_message(r->code >= 500 ? "failed" : "deferred");
		}
		/* The provider session is between transactions: kept for this
		 * client's next message, pooled for others when it leaves. */
		tx_clear(s);
		enter_state(s, S_IDLE);
		break;
	case S_RSET_WAIT:
		if (r->code / 100 != 2)
			drop_upstream(s);
		reply(s, "250 2.0.0 Ok");
		tx_clear(s);
		enter_state(s, S_IDLE);
		break;
	default:
		log_error("id=%s unexpected provider reply %d in state %s", s->id, r->code,
		    session_state_names[s->state]);
		drop_upstream(s);
		break;
	}
	session_process(s);
	session_leave(s);
}

static void on_upstream_writable(struct upstream *up, void *arg)
{
	struct session *s = arg;
	(void)up;

	session_enter(s);
	session_process(s);
	session_leave(s);
}

/* Replies the client waits for from the provider: RCPTs in flight, then
 * the DATA, end of data or RSET being answered. */
static unsigned replies_owed(const struct session *s)
{
	bool command = s->state == S_DATA_WAIT || s->state == S_DOT_WAIT || s->state == S_RSET_WAIT;
	return s->rcpts_in_flight + (command ? 1 : 0);
}

static void on_upstream_failed(struct upstream *up, void *arg, enum upstream_fail cls, const char *reason)
{
	struct session *s = arg;
	char quoted[400];
	struct upstream_info info;

	session_enter(s);
	upstream_get_info(up, &info);
	log_warn("upstream failed id=%s session=%s provider=%s address=%s port=%u mode=%s class=%s state=%s reason=%s",
	    s->msg_id[0] ? s->msg_id : s->id, s->id, info.provider, info.address, info.port, info.mode,
	    upstream_fail_name(cls), session_state_names[s->state], log_quote(quoted, sizeof(quoted), reason));
	if (s->state == S_BODY) {
		snprintf(s->discard_reply, sizeof(s->discard_reply),
		    "451 4.4.2 Connection to provider lost during data (%s); try again later", upstream_fail_name(cls));
		log_message(s, "deferred", NULL);
		enter_state(s, S_DISCARD);
	} else if (replies_owed(s) > 0) {
		/* Every command relayed is owed its reply, in order. */
		unsigned owed = replies_owed(s);
		if (s->state == S_DOT_WAIT)
			log_message(s, "deferred", NULL);
		while (owed-- > 0)
			reply(s, "451 4.4.2 Connection to provider lost (%s); try again later", upstream_fail_name(cls));
		tx_clear(s);
		enter_state(s, S_IDLE);
	}
	/* Else the provider went away between commands: the client hears of
	 * it in the reply to its next command (see need_upstream()). */
	drop_upstream(s);
	session_process(s);
	session_leave(s);
}

static const struct upstream_callbacks session_upstream_callbacks = {
	.ready = NULL,
	.reply = on_upstream_reply,
	.writable = on_upstream_writable,
	.failed = on_upstream_failed,
};

static void mail_params(const struct session *s, struct upstream_mail_params *mp)
{
	mp->from = s->from;
	mp->size = s->size;
	mp->body_8bitmime = s->body_8bit;
	mp->smtputf8 = s->smtputf8;
}

/* ---- pipelining towards the provider ---- */

enum flight { FLIGHT_NONE, FLIGHT_RCPT, FLIGHT_DATA };

/* Whether a client line may go to the provider behind commands still
 * unanswered: a RCPT subrelay would not refuse itself (the recipient
 * limit with `tried` counted, SMTPUTF8), or DATA behind RCPTs in flight.
 * Anything else is answered in turn, once the replies before it are in. */
static enum flight flight_command(const struct session *s, const char *line, size_t len, unsigned tried,
    unsigned in_flight, struct smtp_cmd *c)
{
	const char *why;

	if (smtp_parse_command(line, len, c, &why) != SMTP_PARSE_OK)
		return FLIGHT_NONE;
	if (c->verb == SMTP_VERB_DATA && in_flight > 0)
		return FLIGHT_DATA;
	if (c->verb == SMTP_VERB_RCPT && tried < s->cfg->relay.max_recipients &&
	    (s->smtputf8 || smtp_path_is_ascii(c->path)))
		return FLIGHT_RCPT;
	return FLIGHT_NONE;
}

static bool joins_flight(struct session *s, const char *line, size_t len)
{
	struct smtp_cmd c;

	return s->state == S_TX && s->up != NULL && upstream_can_send(s->up) &&
	    flight_command(s, line, len, s->rcpts_tried, s->rcpts_in_flight, &c) != FLIGHT_NONE;
}

/* The next complete line at offset off of the input: its length in *len
 * (without the line end), with it in *used, and a NUL-terminated copy in
 * line unless it is too long (*len >= COMMAND_LINE_MAX; handlers may use
 * the argument as a string). False if no line is complete. */
static bool peek_line(struct session *s, size_t off, char line[COMMAND_LINE_MAX + 1], size_t *len, size_t *used)
{
	struct buf *in = io_in(s->io);
	const char *p = buf_peek(in) + off;
	const char *nl = memchr(p, '\n', buf_len(in) - off);

	if (nl == NULL)
		return false;
	*used = (size_t)(nl - p) + 1;
	*len = *used - 1;
	if (*len > 0 && p[*len - 1] == '\r')
		(*len)--;
	if (*len < COMMAND_LINE_MAX) {
		memcpy(line, p, *len);
		line[*len] = '\0';
	}
	return true;
}

/*
 * The path search wrote MAIL on a kept or pooled session: the client's
 * pipelined RCPTs and DATA already read go behind it in the same flight.
 * They stay in the input until that MAIL is accepted (on_path_done); NULL
 * (the session failed) forgets them, and they go out again on the next.
 */
static void on_mail_sent(struct upstream *up, void *arg)
{
	struct session *s = arg;
	char line[COMMAND_LINE_MAX + 1];
	size_t len, used, room = buf_room(io_out(s->io));
	/* Room for the MAIL reply and one per command piped. */
	size_t replies = room > REPLY_RESERVE ? (room - REPLY_RESERVE) / REPLY_LINE_MAX : 0;
	struct smtp_cmd c;

	forget_piped(s);
	while (up != NULL && !s->skipping_line && !s->piped_data && s->piped_rcpts + 2 <= replies &&
	    upstream_can_send(up) && peek_line(s, s->piped_bytes, line, &len, &used) && len < COMMAND_LINE_MAX) {
		switch (flight_command(s, line, len, s->rcpts_tried + s->piped_rcpts, s->piped_rcpts, &c)) {
		case FLIGHT_RCPT:
			upstream_rcpt(up, c.path);
			s->piped_rcpts++;
			break;
		case FLIGHT_DATA:
			upstream_data(up);
			s->piped_data = true;
			break;
		case FLIGHT_NONE:
			return;
		}
		s->piped_bytes += used;
	}
}

/* MAIL was accepted on the session the piped commands went to: they are
 * in flight now, and leave the input. */
static void take_piped(struct session *s)
{
	buf_consume(io_in(s->io), s->piped_bytes);
	s->rcpts_tried += s->piped_rcpts;
	s->rcpts_in_flight += s->piped_rcpts;
	if (s->piped_data)
		enter_state(s, S_DATA_WAIT);
	forget_piped(s);
}

static void on_path_done(struct upstream *up, const struct smtp_reply *r, const char *error, void *arg)
{
	struct session *s = arg;

	session_enter(s);
	s->search = NULL;
	if (up != NULL) {
		s->up = up;
		upstream_set_callbacks(up, &session_upstream_callbacks, s);
		relay_reply(s, r, "1.0");
		enter_state(s, S_TX);
		take_piped(s);
	} else {
		forget_piped(s); /* still in the input: answered in turn */
		if (r != NULL)
			relay_reply(s, r, "1.0");
		else
			reply(s, "451 4.4.1 No way to the provider right now (%s); try again later", error);
		log_warn("message id=%s session=%s result=%s reason=%s", s->msg_id, s->id,
		    r != NULL && r->code >= 500 ? "rejected" : "deferred", r != NULL ? "mail_refused" : "no_path");
		tx_clear(s);
		enter_state(s, S_IDLE);
	}
	session_process(s);
	session_leave(s);
}

/* Finds a path for the transaction's route; the provider answers MAIL on it. */
static void start_search(struct session *s)
{
	struct upstream_mail_params mp;
	unsigned nproviders;
	const char *route;
	struct provider_cfg *const *providers = config_route_for(s->cfg, s->from, &nproviders, &route);

	log_debug("id=%s message=%s route=%s", s->id, s->msg_id, route);
	mail_params(s, &mp);
	enter_state(s, S_PATH);
	struct upstream *kept = s->up;
	s->up = NULL;
	s->search = path_search_start(&s->rt->path, providers, nproviders, &mp, kept, s->msg_id, on_mail_sent,
	    on_path_done, s);
	if (s->search == NULL) {
		reply(s, "451 4.3.0 Out of memory; try again later");
		tx_clear(s);
		enter_state(s, S_IDLE);
	}
}

/* ---- commands ---- */

static void cmd_helo(struct session *s, const struct smtp_cmd *c)
{
	const struct relay_cfg *r = &s->cfg->relay;

	snprintf(s->helo, sizeof(s->helo), "%.*s", (int)c->arglen, c->arg);
	tx_clear(s);
	enter_state(s, S_IDLE);
	if (c->verb == SMTP_VERB_HELO) {
		s->esmtp = false;
		reply(s, "250 %s", r->hostname);
		return;
	}
	s->esmtp = true;
	reply(s, "250-%s Hello %s", r->hostname, s->helo);
	reply(s, "250-PIPELINING");
	reply(s, "250-SIZE %llu", (unsigned long long)r->max_message_size);
	reply(s, "250-8BITMIME");
	reply(s, "250-ENHANCEDSTATUSCODES");
	reply(s, "250 SMTPUTF8");
}

static void cmd_mail(struct session *s, const struct smtp_cmd *c)
{
	const struct relay_cfg *r = &s->cfg->relay;
	unsigned nproviders;
	const char *route;

	if (c->has_size && c->size > r->max_message_size) {
		reply_error(s, "552 5.3.4 Message size exceeds fixed maximum message size (%llu)",
		    (unsigned long long)r->max_message_size);
		return;
	}
	if (!c->smtputf8 && !smtp_path_is_ascii(c->path)) {
		reply_error(s, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		return;
	}
	config_route_for(s->cfg, c->path, &nproviders, &route);
	if (nproviders == 0 && !s->queue_mode) {
		reply(s, "451 4.3.5 No provider configured; mail cannot be relayed yet");
		return;
	}
	tx_clear(s);
	id_new(s->msg_id);
	snprintf(s->from, sizeof(s->from), "%s", c->path);
	s->size = c->size;
	s->body_8bit = c->body == SMTP_BODY_8BITMIME;
	s->smtputf8 = c->smtputf8;
	s->tx_started = ev_now(s->env->loop);
	smtp_data_init(&s->data);
	if (s->queue_mode) {
		/* The queue owns delivery: the sender is the queue's to route later. */
		reply(s, "250 2.1.0 Ok");
		enter_state(s, S_TX);
		return;
	}
	start_search(s);
}

/* In a transaction whose provider session was lost: ends it with a 451. */
static bool need_upstream(struct session *s)
{
	if (s->up != NULL)
		return true;
	reply(s, "451 4.4.2 Connection to provider lost; transaction aborted, start again");
	tx_clear(s);
	enter_state(s, S_IDLE);
	return false;
}

/* Queue mode: the recipient is kept for the spool's envelope. */
static void queue_rcpt(struct session *s, const char *addr)
{
	struct spool_rcpt *bigger = realloc(s->rcpts, (s->rcpts_accepted + 1) * sizeof(*bigger));
	if (bigger == NULL) {
		reply(s, "452 4.3.1 Out of memory; try again later");
		return;
	}
	s->rcpts = bigger;
	snprintf(s->rcpts[s->rcpts_accepted].addr, sizeof(bigger->addr), "%s", addr);
	s->rcpts[s->rcpts_accepted++].state = RCPT_PENDING;
	reply(s, "250 2.1.5 Ok");
}

static void cmd_rcpt(struct session *s, const struct smtp_cmd *c)
{
	if (!s->queue_mode && !need_upstream(s))
		return;
	if (s->rcpts_tried >= s->cfg->relay.max_recipients) {
		reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	if (!s->smtputf8 && !smtp_path_is_ascii(c->path)) {
		reply_error(s, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		return;
	}
	s->rcpts_tried++;
	if (s->queue_mode) {
		queue_rcpt(s, c->path);
		return;
	}
	s->rcpts_in_flight++;
	upstream_rcpt(s->up, c->path);
}

/* A spool failure as the client should hear it: out of space is 452. */
static void spool_error_reply(char *out, size_t len, int err)
{
	if (err == ENOSPC || err == EDQUOT || err == EFBIG)
		snprintf(out, len, "452 4.3.1 Insufficient system storage (%s); try again later", strerror(err));
	else
		snprintf(out, len, "451 4.3.0 Local error while queueing (%s); try again later", strerror(err));
}

/* Queue mode: opens the spool file and asks for the data. */
static void queue_data(struct session *s)
{
	struct spool_msg env = {
		.rcpts = s->rcpts,
		.nrcpts = s->rcpts_accepted,
		.body_8bit = s->body_8bit,
		.smtputf8 = s->smtputf8,
		.received = ev_now(s->env->loop),
	};
	char line[200];

	snprintf(env.id, sizeof(env.id), "%s", s->msg_id);
	snprintf(env.from, sizeof(env.from), "%s", s->from);
	s->spool = spool_create(s->env->spool, &env);
	if (s->spool == NULL) {
		spool_error_reply(line, sizeof(line), errno);
		log_error("id=%s cannot create the spool file: %s", s->msg_id, strerror(errno));
		reply(s, "%s", line);
		return;
	}
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtp_data_init(&s->data);
	enter_state(s, S_BODY);
}

static void cmd_data(struct session *s, const struct smtp_cmd *c)
{
	(void)c;
	if (!s->queue_mode && !need_upstream(s))
		return;
	if (s->rcpts_accepted == 0 && s->rcpts_in_flight == 0) {
		reply_error(s, "554 5.5.1 No valid recipients");
		return;
	}
	if (s->queue_mode) {
		queue_data(s);
		return;
	}
	enter_state(s, S_DATA_WAIT);
	upstream_data(s->up);
}

static void cmd_rset(struct session *s, const struct smtp_cmd *c)
{
	(void)c;
	if (s->state == S_TX && s->up != NULL) {
		enter_state(s, S_RSET_WAIT);
		upstream_rset(s->up);
		return;
	}
	tx_clear(s);
	if (s->state != S_GREET)
		enter_state(s, S_IDLE);
	reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(struct session *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s, "250 2.0.0 Ok");
}

static void cmd_vrfy(struct session *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_help(struct session *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s, "214-2.0.0 subrelay: commands HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
	reply(s, "214 2.0.0 See RFC 5321");
}

static void cmd_quit(struct session *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s, "221 2.0.0 %s Bye", s->cfg->relay.hostname);
	close_after_replies(s, "quit");
}

static void cmd_not_offered(struct session *s, const struct smtp_cmd *c)
{
	reply_error(s, "502 5.5.1 %s not implemented", smtp_verb_name(c->verb));
}

/* Which states accept a command: bits of enum session_state. */
#define IN(st) (1u << S_##st)
#define READY_STATES (IN(GREET) | IN(IDLE) | IN(TX))

struct command {
	enum smtp_verb verb;
	unsigned states;
	const char *out_of_order; /* the 503 text when the state does not allow it */
	void (*handler)(struct session *s, const struct smtp_cmd *c);
};

static const struct command commands[] = {
	{ SMTP_VERB_HELO, READY_STATES, NULL, cmd_helo },
	{ SMTP_VERB_EHLO, READY_STATES, NULL, cmd_helo },
	{ SMTP_VERB_MAIL, IN(IDLE), "503 5.5.1 Send EHLO/HELO first, or end the current transaction", cmd_mail },
	{ SMTP_VERB_RCPT, IN(TX), "503 5.5.1 Need MAIL before RCPT", cmd_rcpt },
	{ SMTP_VERB_DATA, IN(TX), "503 5.5.1 Need MAIL and RCPT before DATA", cmd_data },
	{ SMTP_VERB_RSET, READY_STATES, NULL, cmd_rset },
	{ SMTP_VERB_NOOP, READY_STATES, NULL, cmd_noop },
	{ SMTP_VERB_QUIT, READY_STATES, NULL, cmd_quit },
	{ SMTP_VERB_VRFY, READY_STATES, NULL, cmd_vrfy },
	{ SMTP_VERB_HELP, READY_STATES, NULL, cmd_help },
	{ SMTP_VERB_EXPN, READY_STATES, NULL, cmd_not_offered },
	{ SMTP_VERB_STARTTLS, READY_STATES, NULL, cmd_not_offered },
	{ SMTP_VERB_AUTH, READY_STATES, NULL, cmd_not_offered },
};

static void run_command(struct session *s, const char *line, size_t len)
{
	struct smtp_cmd c;
	const char *why = "";

	switch (smtp_parse_command(line, len, &c, &why)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_UNKNOWN:
		reply_error(s, "500 5.5.2 Command not recognized");
		return;
	case SMTP_PARSE_SYNTAX:
		reply_error(s, "501 5.5.4 Syntax error: %s", why);
		return;
	case SMTP_PARSE_PARAM:
		reply_error(s, "555 5.5.4 %s", why);
		return;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *cmd = &commands[i];
		if (cmd->verb != c.verb)
			continue;
		if (!(cmd->states & (1u << s->state))) {
			reply_error(s, "%s", cmd->out_of_order ? cmd->out_of_order : "503 5.5.1 Bad sequence of commands");
			return;
		}
		cmd->handler(s, &c);
		return;
	}
	reply_error(s, "500 5.5.2 Command not recognized");
}

/* ---- input ---- */

static bool waiting_for_provider(const struct session *s)
{
	switch (s->state) {
	case S_PATH:
	case S_DATA_WAIT:
	case S_DOT_WAIT:
	case S_RSET_WAIT:
	case S_COMMIT_WAIT:
		return true;
	default:
		return false;
	}
}

/* Ends the message: the provider gets the terminator, or the client its answer. */
static void on_committed(bool ok, int err, void *arg)
{
	struct session *s = arg;
	char line[200], from[SMTP_PATH_MAX + 8];

	session_enter(s);
	s->commit = NULL;
	if (ok) {
		metrics_message("accepted");
		reply(s, "250 2.0.0 Ok: queued as %s", s->msg_id);
		log_info("message id=%s session=%s from=%s rcpts=%u size=%llu result=queued duration=%.3fs", s->msg_id,
		    s->id, log_quote(from, sizeof(from), s->from), s->rcpts_accepted, (unsigned long long)s->data.out_bytes,
		    ev_now(s->env->loop) - s->tx_started);
	} else {
		spool_error_reply(line, sizeof(line), err);
		log_error("message id=%s session=%s result=not_queued reason=\"%s\"", s->msg_id, s->id, strerror(err));
		reply(s, "%s", line);
	}
	tx_clear(s);
	enter_state(s, S_IDLE);
	session_process(s);
	session_leave(s);
}

static void body_done(struct session *s)
{
	if (s->state == S_BODY && s->queue_mode) {
		struct spool_writer *w = s->spool;
		s->spool = NULL;
		enter_state(s, S_COMMIT_WAIT);
		s->commit = queue_commit(s->env->queue, w, on_committed, s);
		if (s->commit == NULL) {
			reply(s, "451 4.3.0 Out of memory; try again later");
			tx_clear(s);
			enter_state(s, S_IDLE);
		}
		return;
	}
	if (s->state == S_BODY) {
		upstream_body_end(s->up);
		enter_state(s, S_DOT_WAIT);
		return;
	}
	reply(s, "%s", s->discard_reply);
	tx_clear(s);
	enter_state(s, S_IDLE);
}

static void discard_spool(struct session *s)
{
	if (s->spool == NULL)
		return;
	spool_discard(s->spool);
	spool_writer_free(s->spool);
	s->spool = NULL;
}

/* The size limit counts the client's bytes; past it the message is dropped. */
static bool body_too_large(struct session *s)
{
	if (s->data.in_bytes <= s->cfg->relay.max_message_size)
		return false;
	snprintf(s->discard_reply, sizeof(s->discard_reply),
	    "552 5.3.4 Message size exceeds fixed maximum message size (%llu)",
	    (unsigned long long)s->cfg->relay.max_message_size);
	log_message(s, "rejected", NULL);
	drop_upstream(s);
	discard_spool(s);
	enter_state(s, S_DISCARD);
	return true;
}

/* Queue mode: appends canonical bytes to the spool file; on a write error
 * (a full disk) the rest of the message is read and refused. */
static void spool_bytes(struct session *s, const char *p, size_t n)
{
	if (spool_write(s->spool, p, n))
		return;
	int err = errno;
	spool_error_reply(s->discard_reply, sizeof(s->discard_reply), err);
	log_error("message id=%s session=%s result=not_queued reason=\"%s\"", s->msg_id, s->id, strerror(err));
	discard_spool(s);
	enter_state(s, S_DISCARD);
}

/* Moves message bytes from the client to the provider (or to nowhere).
 * Returns false when it has to wait for room upstream or for input. */
static bool pump_body(struct session *s)
{
	struct buf *in = io_in(s->io);
	char scratch[16384];

	while (!buf_empty(in) && !s->data.done) {
		size_t room, produced;
		char *out;
		if (s->state == S_BODY && !s->queue_mode) {
			out = upstream_body_space(s->up, SMTP_DATA_MAX_EXPANSION, &room);
			if (room < SMTP_DATA_MAX_EXPANSION)
				return false; /* the provider is slower: wait for `writable` */
		} else {
			out = scratch;
			room = sizeof(scratch);
		}
		size_t used = smtp_data_feed(&s->data, buf_peek(in), buf_len(in), out, room, &produced);
		buf_consume(in, used);
		if (s->state == S_BODY && s->queue_mode)
			spool_bytes(s, out, produced);
		else if (s->state == S_BODY)
			upstream_body_commit(s->up, produced);
		if (s->state == S_BODY)
			body_too_large(s);
	}
	if (!s->data.done)
		return false;
	body_done(s);
	return true;
}

/* Handles one command line from the input; false when none is complete
 * or the line has to wait for replies still to come. */
static bool take_command(struct session *s)
{
	struct buf *in = io_in(s->io);
	char line[COMMAND_LINE_MAX + 1];
	size_t len, used;

	if (!peek_line(s, 0, line, &len, &used)) {
		if (buf_len(in) >= COMMAND_LINE_MAX) {
			buf_consume(in, buf_len(in));
			if (!s->skipping_line)
				reply_error(s, "500 5.5.2 Line too long");
			s->skipping_line = true;
		}
		return false;
	}
	if (s->skipping_line) {
		s->skipping_line = false;
	} else if (len >= COMMAND_LINE_MAX) {
		reply_error(s, "500 5.5.2 Line too long");
	} else {
		if (s->rcpts_in_flight > 0 && !joins_flight(s, line, len))
			return false; /* resumed by the provider's replies */
		buf_consume(in, used);
		run_command(s, line, len);
		return true;
	}
	buf_consume(in, used);
	return true;
}

/* Works through buffered input until it must wait (for the client, the
 * provider, or room for replies). The client timer runs only while the
 * session waits for the client. */
static void session_process(struct session *s)
{
	for (;;) {
		if (s->dead || s->state == S_CLOSING)
			return;
		if (waiting_for_provider(s)) {
			io_timeout(s->io, 0);
			return;
		}
		if (s->state == S_BODY || s->state == S_DISCARD) {
			if (!pump_body(s))
				break;
			continue;
		}
		if (buf_room(io_out(s->io)) < REPLY_RESERVE + REPLY_LINE_MAX * s->rcpts_in_flight)
			return; /* resumed on IO_EV_DRAINED */
		if (buf_empty(io_in(s->io)) || !take_command(s))
			break;
	}
	if (s->peer_eof && s->rcpts_in_flight == 0) {
		/* Everything the client sent is answered; it will send no more. */
		close_after_replies(s, "client_closed");
		return;
	}
	/* The client's timer runs only while we wait for it, not while
	 * replies to its RCPTs are still to come from the provider (the
	 * provider's own command timeout covers that wait). */
	io_timeout(s->io, s->rcpts_in_flight > 0 ? 0 : s->cfg->relay.timeout);
	/* Waiting for the client: an idle session keeps no buffers. */
	io_release_idle(s->io);
	io_update(s->io);
}

static void on_client_io(struct io *io, enum io_event ev, void *arg)
{
	struct session *s = arg;
	(void)io;

	session_enter(s);
	switch (ev) {
	case IO_EV_READ:
	case IO_EV_DRAINED:
		if (s->state == S_CLOSING && buf_empty(io_out(s->io)))
			session_close(s, "closed");
		else
			session_process(s);
		break;
	case IO_EV_TIMEOUT:
		reply(s, "421 4.4.2 %s Timeout waiting for the client, closing connection", s->cfg->relay.hostname);
		log_info("timeout id=%s client=%s state=%s", s->id, s->peer, session_state_names[s->state]);
		close_after_replies(s, "timeout");
		break;
	case IO_EV_EOF:
		/* A client may send its last commands and shut its side at once
		 * (QUIT then EOF): it is owed the replies, and in queue mode its
		 * message is being made durable. Only a message cut off is lost. */
		if (s->state != S_BODY && s->state != S_DISCARD) {
			s->peer_eof = true;
			session_process(s);
			break;
		}
		log_message(s, "aborted", NULL);
		session_close(s, "client_closed_during_data");
		break;
	case IO_EV_ERROR:
		if (s->state == S_BODY || s->state == S_DISCARD)
			log_message(s, "aborted", NULL);
		session_close(s, io_error(s->io)[0] ? io_error(s->io) : "io_error");
		break;
	case IO_EV_CONNECTED:
	case IO_EV_TLS_UP:
		break;
	}
	session_leave(s);
}

void server_session_start(struct server_env *env, int fd, const struct sockaddr *peer, const char *reject)
{
	struct session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return;
	}
	s->magic = SESSION_MAGIC;
	s->env = env;
	s->rt = runtime_ref(env->rt);
	s->cfg = s->rt->path.cfg;
	s->queue_mode = env->queue != NULL;
	s->state = S_GREET;
	id_new(s->id);
	sockaddr_format(s->peer, sizeof(s->peer), peer);
	s->io = io_new(env->loop, fd, CLIENT_IN_LIMIT, CLIENT_OUT_LIMIT, on_client_io, s);
	if (s->io == NULL) {
		close(fd);
		runtime_unref(s->rt);
		free(s);
		return;
	}
	env->nclients++;
	metrics_worker_sessions(env->nclients);
	metrics_session_opened();
	s->next = env->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	env->sessions = s;
	log_info("connect id=%s client=%s%s", s->id, s->peer, reject ? " rejected=yes" : "");
	if (reject != NULL) {
		reply(s, "%s", reject);
		close_after_replies(s, "rejected");
		return;
	}
	reply(s, "220 %s ESMTP subrelay", s->cfg->relay.hostname);
	io_timeout(s->io, s->cfg->relay.timeout);
}

void server_close_all(struct server_env *env)
{
	while (env->sessions != NULL) {
		struct session *s = env->sessions;
		if (s->depth > 0) {
			/* Cannot happen from the loop's top level; do not free under a caller. */
			s->dead = true;
			return;
		}
		session_free(s);
	}
}

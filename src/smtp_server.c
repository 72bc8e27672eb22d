/*
 * smtp_server.c: see smtp_server.h.
 *
 * One enum holds where a session is. Commands are checked against a
 * table (which states accept them) before a handler runs. Every command
 * that concerns the message goes to the delivery backend (tx.h), which
 * answers each exactly once and in order; `owed` holds the kinds of the
 * commands still unanswered, oldest first. Every entry point (client I/O,
 * backend events) runs under session_enter()/session_leave(), so a
 * handler may close the session and the memory goes only when the
 * outermost call returns.
 *
 * What needs no session lives beside it: smtp_line.c cuts the command
 * lines, reply.c writes the replies, body_pump.c moves the body and
 * backend.c picks the backend; this file decides what happens when.
 */
#include "smtp_server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "authpool.h"
#include "backend.h"
#include "body_pump.h"
#include "envelope.h"
#include "fixups.h"
#include "io.h"
#include "log.h"
#include "metrics.h"
#include "peer_count.h"
#include "reply.h"
#include "sasl.h"
#include "smtp_data.h"
#include "smtp_line.h"
#include "smtp_parse.h"
#include "tls.h"
#include "tx.h"
#include "users.h"

#define CLIENT_IN_LIMIT (16 * 1024)
#define CLIENT_OUT_LIMIT (8 * 1024)
#define MAX_ERRORS 10

#define SESSION_STATES(X) \
	X(GREET)    /* no HELO/EHLO yet */ \
	X(IDLE)     /* greeted, no transaction */ \
	X(TX)       /* MAIL handed to the backend: RCPT, DATA, RSET (answers may be owed) */ \
	X(WAIT)     /* the oldest owed answer decides how input is read next (DATA, end of data, RSET) */ \
	X(BODY)     /* message bytes go to the backend */ \
	X(DISCARD)  /* reading the rest of a message that will not be delivered */ \
	X(TLS)      /* TLS handshake (STARTTLS or /implicit): nothing read or answered */ \
	X(SASL)     /* AUTH: the next line is a SASL response, not a command */ \
	X(VERIFY)   /* AUTH: the password is being checked (authpool.h); nothing read */ \
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
	struct session *prev, *next; /* env->sessions */
	struct io *io;
	char id[ID_LEN + 1];
	char peer[64];
	struct smtp_line line;     /* the command line being read */
	bool peer_eof;             /* the client shut its side: answer what it sent, then close */
	unsigned errors;
	int depth;
	bool dead;
	char close_reason[160];    /* why the session ends, for the disconnect line */

	struct tx tx;
	struct smtp_data data;
	unsigned rcpts_tried;      /* RCPTs counted against max_recipients */
	struct tx_owed owed;       /* commands handed to the backend, not answered yet */
	char discard_reply[REPLY_LINE_MAX]; /* the answer once a discarded body ends */
	struct path_limits limits; /* of the current transaction's route */
	struct backend backend;
	struct fixups *fixups;     /* the body's Received:, Date:, Message-ID: (fixups.h) */
	char helo[128];            /* the client's EHLO or HELO name */
	ev_tstamp wait_start;      /* when the wait for the next command began; 0: not waiting */
	ev_tstamp body_start;      /* when the message body began (S_BODY, S_DISCARD) */
	struct peer_key peer_key;  /* the client's address, counted in env->per_ip when `counted` */
	bool counted;

	bool trusted;              /* inside relay.allow: may submit without AUTH */
	bool tls;                  /* TLS is up: STARTTLS done, or an /implicit listener */
	bool implicit_tls;         /* the greeting waits for the handshake */
	enum sasl_step { SASL_PLAIN, SASL_LOGIN_USER, SASL_LOGIN_PASS } sasl; /* what S_SASL reads */
	struct sasl_creds creds;   /* being verified; wiped as soon as the check has its copy */
	struct auth_job *auth_job; /* the check in flight, cancelled if the client leaves */
	char auth_user[USER_NAME_MAX + 1]; /* "" until AUTH succeeds */
};

static void session_process(struct session *s);

/* ---- lifecycle ---- */

static bool in_body(enum session_state state)
{
	return state == S_BODY || state == S_DISCARD;
}

static void enter_state(struct session *s, enum session_state next)
{
	log_debug("id=%s state=%s->%s", s->id, session_state_names[s->state], session_state_names[next]);
	if (in_body(next) && !in_body(s->state))
		s->body_start = ev_now(s->env->loop);
	s->state = next;
}

static void session_enter(struct session *s)
{
	if (s->magic != SESSION_MAGIC)
		abort();
	s->depth++;
}

static bool in_transaction(const struct session *s)
{
	return s->state == S_TX || s->state == S_WAIT || s->state == S_BODY;
}

static void session_free(struct session *s)
{
	if (in_transaction(s))
		s->backend.ops->abort(s->backend.impl, &s->tx); /* never let a partial message be completed */
	s->backend.ops->free(s->backend.impl);
	authpool_cancel(s->auth_job);
	sasl_creds_wipe(&s->creds);
	fixups_free(s->fixups);
	tx_clear(&s->tx);
	io_free(s->io);
	s->env->nclients--;
	if (s->counted)
		peer_count_remove(s->env->per_ip, &s->peer_key);
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

/* A locally generated error; too many of them end the session. */
static void reply_error(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_error(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_v(s->io, fmt, ap);
	va_end(ap);
	if (++s->errors >= MAX_ERRORS) {
		reply(s->io, "421 4.7.0 %s Too many errors, closing connection", s->cfg->relay.hostname);
		close_after_replies(s, "too_many_errors");
	}
}

/* ---- the transaction ---- */

static void tx_end(struct session *s)
{
	fixups_free(s->fixups);
	s->fixups = NULL;
	tx_clear(&s->tx);
	s->rcpts_tried = 0;
	enter_state(s, S_IDLE);
}

/* relay.add_missing_headers: the body goes through the fix-ups (a message
 * without them is still delivered when there is no memory for them). */
static void start_fixups(struct session *s)
{
	struct fixup_facts facts = { .helo = s->helo, .peer = s->peer, .hostname = s->cfg->relay.hostname,
		.with = !s->tls ? "ESMTP" : s->auth_user[0] ? "ESMTPSA" : "ESMTPS" };

	if (s->cfg->relay.add_missing_headers && (s->fixups = fixups_start(&s->backend, &s->tx, &facts)) == NULL)
		log_warn("id=%s out of memory for the message fix-ups", s->tx.id);
}

static void log_message(struct session *s, const char *result)
{
	char from[SMTP_PATH_MAX + 8];

	log_info("message id=%s session=%s from=%s rcpts=%u size=%llu result=%s duration=%.3fs", s->tx.id, s->id,
	    log_quote(from, sizeof(from), s->tx.from), s->tx.accepted, (unsigned long long)s->data.out_bytes, result,
	    ev_now(s->env->loop) - s->tx.started);
}

/* After a refused MAIL, what was pipelined behind it is out of order. */
static void refuse_piped(struct session *s)
{
	while (s->owed.n > 0) {
		if (tx_pay(&s->owed) == TX_CMD_RCPT)
			reply(s->io, "503 5.5.1 Need MAIL before RCPT");
		else
			reply(s->io, "503 5.5.1 Need MAIL and RCPT before DATA");
	}
}

/* After a backend event: go on reading input, unless the event came from
 * inside a call of this session's, which goes on by itself. */
static void session_continue(struct session *s)
{
	if (s->depth == 1)
		session_process(s);
}

static void on_answer(void *arg, const struct smtp_reply *r)
{
	struct session *s = arg;
	bool ok = r->code / 100 == 2;

	session_enter(s);
	switch (tx_pay(&s->owed)) {
	case TX_CMD_MAIL:
		reply_answer(s->io, r, "1.0");
		if (!ok) {
			refuse_piped(s);
			tx_end(s);
		}
		break;
	case TX_CMD_RCPT:
		s->tx.rcpts[s->tx.nrcpts - s->owed.rcpts - 1].state = ok ? TX_RCPT_ACCEPTED : TX_RCPT_REFUSED;
		s->tx.accepted += ok;
		reply_answer(s->io, r, "1.5");
		break;
	case TX_CMD_DATA:
		reply_answer(s->io, r, "0.0");
		if (r->code == 354) {
			smtp_data_init(&s->data, s->cfg->relay.accept_lf_dot);
			start_fixups(s);
			enter_state(s, S_BODY);
		} else {
			enter_state(s, S_TX);
		}
		break;
	case TX_CMD_END:
	case TX_CMD_RSET:
		reply_answer(s->io, r, "0.0");
		tx_end(s);
		break;
	}
	session_continue(s);
	session_leave(s);
}

static void on_failure(void *arg, const struct smtp_reply *r)
{
	struct session *s = arg;
	char line[REPLY_LINE_MAX];

	session_enter(s);
	snprintf(line, sizeof(line), "%d %s %s", r->code, r->enhanced, r->text);
	if (s->state == S_BODY) {
		snprintf(s->discard_reply, sizeof(s->discard_reply), "%s", line);
		enter_state(s, S_DISCARD);
	} else if (in_transaction(s)) {
		/* Every command handed over is owed its answer, in order. */
		while (s->owed.n > 0) {
			tx_pay(&s->owed);
			reply(s->io, "%s", line);
		}
		tx_end(s);
	}
	session_continue(s);
	session_leave(s);
}

static void on_resume(void *arg)
{
	struct session *s = arg;

	session_enter(s);
	session_continue(s);
	session_leave(s);
}

static const struct tx_events session_events = {
	.answer = on_answer,
	.failure = on_failure,
	.resume = on_resume,
};

/* Whether a client line may be handed to the backend behind commands
 * still unanswered: a RCPT the session would not refuse itself (the
 * recipient limit, SMTPUTF8), or DATA behind RCPTs whose answers are owed.
 * Anything else is answered in turn, once the answers before it are in. */
static bool joins_flight(struct session *s, const char *line, size_t len)
{
	struct smtp_cmd c;
	const char *why;

	if (s->state != S_TX || !s->backend.ops->can_pipe(s->backend.impl) ||
	    smtp_parse_command(line, len, &c, &why) != SMTP_PARSE_OK)
		return false;
	if (c.verb == SMTP_VERB_DATA)
		return s->owed.rcpts > 0;
	return c.verb == SMTP_VERB_RCPT && s->rcpts_tried < s->cfg->relay.max_recipients &&
	    (s->tx.smtputf8 || smtp_path_is_ascii(c.path));
}

/* ---- commands ---- */

static void cmd_helo(struct session *s, const struct smtp_cmd *c)
{
	const struct relay_cfg *r = &s->cfg->relay;

	if (s->state == S_TX)
		s->backend.ops->abort(s->backend.impl, &s->tx); /* EHLO resets the transaction */
	tx_end(s);
	snprintf(s->helo, sizeof(s->helo), "%.*s", (int)c->arglen, c->arg);
	if (c->verb == SMTP_VERB_HELO) {
		reply(s->io, "250 %s", r->hostname);
		return;
	}
	reply(s->io, "250-%s Hello %s", r->hostname, s->helo);
	reply(s->io, "250-PIPELINING");
	reply(s->io, "250-SIZE %llu", (unsigned long long)r->max_message_size);
	reply(s->io, "250-8BITMIME");
	reply(s->io, "250-ENHANCEDSTATUSCODES");
	/* STARTTLS until TLS is up; AUTH only over TLS (RFC 4954 section 4). */
	if (runtime_server_tls(s->rt) != NULL && !s->tls)
		reply(s->io, "250-STARTTLS");
	if (s->tls && r->users != NULL)
		reply(s->io, "250-AUTH PLAIN LOGIN");
	reply(s->io, "250 SMTPUTF8");
}

static void cmd_mail(struct session *s, const struct smtp_cmd *c)
{
	char from[SMTP_PATH_MAX + 1], refusal[REPLY_LINE_MAX];
	struct path_limits lim;

	if (!s->trusted && s->auth_user[0] == '\0') {
		reply_error(s, "530 5.7.0 Authentication required");
		return;
	}
	if (!envelope_address(c, c->smtputf8, s->cfg, from, refusal, sizeof(refusal)) ||
	    !envelope_mail_size(c, &s->rt->path, from, &lim, refusal, sizeof(refusal))) {
		reply_error(s, "%s", refusal);
		return;
	}
	tx_end(s);
	id_new(s->tx.id);
	snprintf(s->tx.from, sizeof(s->tx.from), "%s", from);
	s->tx.size = c->size;
	s->tx.body_8bit = c->body == SMTP_BODY_8BITMIME;
	s->tx.smtputf8 = c->smtputf8;
	s->tx.started = ev_now(s->env->loop);
	snprintf(s->tx.auth_user, sizeof(s->tx.auth_user), "%s", s->auth_user);
	s->limits = lim;
	smtp_data_init(&s->data, s->cfg->relay.accept_lf_dot);
	enter_state(s, S_TX);
	tx_owe(&s->owed, TX_CMD_MAIL);
	s->backend.ops->mail(s->backend.impl, &s->tx);
}

static void cmd_rcpt(struct session *s, const struct smtp_cmd *c)
{
	char to[SMTP_PATH_MAX + 1], refusal[REPLY_LINE_MAX];

	if (s->rcpts_tried >= s->cfg->relay.max_recipients) {
		reply(s->io, "452 4.5.3 Too many recipients");
		return;
	}
	if (!envelope_address(c, s->tx.smtputf8, s->cfg, to, refusal, sizeof(refusal))) {
		reply_error(s, "%s", refusal);
		return;
	}
	if (!tx_add_rcpt(&s->tx, to)) {
		reply(s->io, "452 4.3.1 Out of memory; try again later");
		return;
	}
	s->rcpts_tried++;
	tx_owe(&s->owed, TX_CMD_RCPT);
	s->backend.ops->rcpt(s->backend.impl, &s->tx);
}

static void cmd_data(struct session *s, const struct smtp_cmd *c)
{
	(void)c;
	if (s->tx.accepted == 0 && s->owed.rcpts == 0) {
		reply_error(s, "554 5.5.1 No valid recipients");
		return;
	}
	enter_state(s, S_WAIT);
	tx_owe(&s->owed, TX_CMD_DATA);
	s->backend.ops->data(s->backend.impl, &s->tx);
}

static void cmd_rset(struct session *s, const struct smtp_cmd *c)
{
	(void)c;
	if (s->state == S_TX) {
		enter_state(s, S_WAIT);
		tx_owe(&s->owed, TX_CMD_RSET);
		s->backend.ops->reset(s->backend.impl, &s->tx);
		return;
	}
	if (s->state != S_GREET) /* RSET never stands in for the greeting */
		tx_end(s);
	reply(s->io, "250 2.0.0 Ok");
}

static void cmd_noop(struct session *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s->io, "250 2.0.0 Ok");
}

static void cmd_vrfy(struct session *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s->io, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_help(struct session *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s->io, "214-2.0.0 subrelay: commands HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
	reply(s->io, "214 2.0.0 See RFC 5321");
}

static void cmd_quit(struct session *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s->io, "221 2.0.0 %s Bye", s->cfg->relay.hostname);
	close_after_replies(s, "quit");
}

static void cmd_not_offered(struct session *s, const struct smtp_cmd *c)
{
	reply_error(s, "502 5.5.1 %s not implemented", smtp_verb_name(c->verb));
}

/* ---- STARTTLS and AUTH ---- */

static void cmd_starttls(struct session *s, const struct smtp_cmd *c)
{
	SSL_CTX *ctx = runtime_server_tls(s->rt);
	SSL *ssl;
	struct buf *in = io_in(s->io);

	if (ctx == NULL) {
		cmd_not_offered(s, c);
		return;
	}
	if (s->tls) {
		reply_error(s, "503 5.5.1 TLS already active");
		return;
	}
	if (s->state != S_IDLE) {
		reply_error(s, "503 5.5.1 Send EHLO first, and STARTTLS outside a mail transaction");
		return;
	}
	if ((ssl = SSL_new(ctx)) == NULL) {
		reply(s->io, "454 4.7.0 TLS not available due to temporary reason");
		return;
	}
	reply(s->io, "220 2.0.0 Ready to start TLS");
	/* Whatever came in clear behind STARTTLS must not be taken as if it
	 * came over TLS (the CVE-2011-0411 command injection): dropped. */
	if (!buf_empty(in)) {
		log_info("starttls id=%s client=%s discarded=%zu", s->id, s->peer, buf_len(in));
		buf_consume(in, buf_len(in));
	}
	s->line = (struct smtp_line){ 0 };
	enter_state(s, S_TLS);
	io_accept_tls(s->io, ssl);
	io_timeout(s->io, s->cfg->relay.timeout);
}

/* RFC 3207 section 4.2: after the handshake the client starts afresh. */
static void tls_up(struct session *s)
{
	struct tls_peer_info info;

	tls_peer_info(io_ssl(s->io), &info);
	log_info("tls id=%s client=%s version=%s cipher=%s", s->id, s->peer, info.version, info.cipher);
	s->tls = true;
	s->helo[0] = '\0';
	enter_state(s, S_GREET);
	if (s->implicit_tls)
		reply(s->io, "220 %s ESMTP subrelay", s->cfg->relay.hostname);
}

static void auth_result(void *arg, bool ok)
{
	struct session *s = arg;
	char user[USER_NAME_MAX + 8];

	session_enter(s);
	s->auth_job = NULL;
	enter_state(s, S_IDLE);
	log_info("auth id=%s client=%s user=%s result=%s", s->id, s->peer,
	    log_quote(user, sizeof(user), s->creds.user), ok ? "ok" : "failed");
	metrics_client_auth(ok);
	if (ok) {
		snprintf(s->auth_user, sizeof(s->auth_user), "%s", s->creds.user);
		reply(s->io, "235 2.7.0 Authentication successful");
	} else {
		reply_error(s, "535 5.7.8 Authentication credentials invalid");
	}
	sasl_creds_wipe(&s->creds);
	session_continue(s);
	session_leave(s);
}

/* The credentials are complete: checked off the loop, the session waits. */
static void auth_verify(struct session *s)
{
	const struct users *u = s->cfg->relay.users;
	const char *hash = users_hash(u, s->creds.user);

	s->auth_job = authpool_verify(s->env->loop, hash ? hash : users_decoy_hash(u), hash == NULL, s->creds.pass,
	    auth_result, s);
	explicit_bzero(s->creds.pass, sizeof(s->creds.pass));
	if (s->auth_job == NULL) {
		sasl_creds_wipe(&s->creds);
		enter_state(s, S_IDLE);
		reply(s->io, "454 4.7.0 Temporary authentication failure, try again later");
		return;
	}
	enter_state(s, S_VERIFY);
}

/* A SASL response (the initial one, or a line read in S_SASL). */
static void auth_step(struct session *s, const char *resp, size_t len)
{
	enum sasl_status st;

	switch (s->sasl) {
	case SASL_PLAIN:
		st = sasl_plain(resp, len, &s->creds);
		break;
	case SASL_LOGIN_USER:
		st = sasl_login_field(resp, len, s->creds.user, sizeof(s->creds.user));
		break;
	default:
		st = sasl_login_field(resp, len, s->creds.pass, sizeof(s->creds.pass));
		break;
	}
	enter_state(s, S_IDLE);
	if (st != SASL_OK) {
		sasl_creds_wipe(&s->creds);
		if (st == SASL_CANCELLED)
			reply_error(s, "501 5.0.0 Authentication cancelled");
		else
			reply_error(s, "501 5.5.2 Cannot decode the response");
	} else if (s->sasl == SASL_LOGIN_USER) {
		s->sasl = SASL_LOGIN_PASS;
		enter_state(s, S_SASL);
		reply(s->io, "334 UGFzc3dvcmQ6"); /* "Password:" */
	} else {
		auth_verify(s);
	}
}

static void cmd_auth(struct session *s, const struct smtp_cmd *c)
{
	char mech[16];
	const char *sp = memchr(c->arg, ' ', c->arglen);
	size_t mlen = sp ? (size_t)(sp - c->arg) : c->arglen;
	const char *resp = sp ? sp + 1 : NULL;

	if (s->cfg->relay.users == NULL) {
		cmd_not_offered(s, c);
		return;
	}
	if (!s->tls) {
		reply_error(s, "538 5.7.11 Encryption required for requested authentication mechanism");
		return;
	}
	if (s->auth_user[0] != '\0') {
		reply_error(s, "503 5.5.1 Already authenticated");
		return;
	}
	if (s->state != S_IDLE) {
		reply_error(s, "503 5.5.1 Send EHLO first, and AUTH outside a mail transaction");
		return;
	}
	snprintf(mech, sizeof(mech), "%.*s", (int)(mlen < sizeof(mech) ? mlen : sizeof(mech) - 1), c->arg);
	if (mlen < sizeof(mech) && strcasecmp(mech, "PLAIN") == 0) {
		s->sasl = SASL_PLAIN;
	} else if (mlen < sizeof(mech) && strcasecmp(mech, "LOGIN") == 0) {
		s->sasl = SASL_LOGIN_USER;
	} else {
		reply_error(s, "504 5.5.4 Unrecognized authentication type (use PLAIN or LOGIN)");
		return;
	}
	if (resp != NULL) {
		auth_step(s, resp, c->arglen - mlen - 1);
		return;
	}
	enter_state(s, S_SASL);
	reply(s->io, s->sasl == SASL_PLAIN ? "334 " : "334 VXNlcm5hbWU6"); /* "Username:" */
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
	{ SMTP_VERB_STARTTLS, READY_STATES, NULL, cmd_starttls },
	{ SMTP_VERB_AUTH, READY_STATES, NULL, cmd_auth },
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

/* False while the fix-ups still hold bytes the backend has no room for. */
static bool body_done(struct session *s)
{
	if (s->state == S_BODY && s->fixups != NULL && !fixups_end(s->fixups))
		return false; /* resumed by the backend */
	if (s->state == S_BODY) {
		enter_state(s, S_WAIT);
		tx_owe(&s->owed, TX_CMD_END);
		s->backend.ops->end(s->backend.impl, &s->tx);
		return true;
	}
	reply(s->io, "%s", s->discard_reply);
	tx_end(s);
	return true;
}

/* The size limit counts the client's bytes; past it the message is
 * dropped. Only a body still going to the backend is checked: the
 * backend may have failed inside body_commit. */
static void check_body_size(struct session *s)
{
	if (s->state != S_BODY || s->data.in_bytes <= s->limits.size)
		return;
	envelope_too_big(&s->limits, s->discard_reply, sizeof(s->discard_reply));
	log_message(s, "rejected");
	s->backend.ops->abort(s->backend.impl, &s->tx);
	enter_state(s, S_DISCARD);
}

/* Moves message bytes from the client to the backend (or to nowhere).
 * Returns false when it has to wait for room in the backend or for input. */
static bool pump_body(struct session *s)
{
	const struct backend *to = s->state != S_BODY ? NULL : s->fixups ? fixups_backend(s->fixups) : &s->backend;

	switch (body_pump(&s->data, io_in(s->io), to, &s->tx)) {
	case BODY_PUMP_WAIT:
		break;
	case BODY_PUMP_MOVED:
		check_body_size(s);
		return true;
	case BODY_PUMP_END:
		return body_done(s);
	}
	return false;
}

/* Handles one command line from the input; false when none is complete
 * or the line has to wait for answers still owed. */
static bool take_command(struct session *s)
{
	struct buf *in = io_in(s->io);
	char line[COMMAND_LINE_MAX + 1];
	size_t len;
	enum smtp_line_status st = smtp_line_next(&s->line, in, line, &len);

	switch (st) {
	case SMTP_LINE_WAIT:
		return false;
	case SMTP_LINE_LONG:
	case SMTP_LINE_LONG_WAIT:
		reply_error(s, "500 5.5.2 Line too long");
		return st == SMTP_LINE_LONG; /* a line after it may be complete */
	case SMTP_LINE_SKIPPED:
		return true;
	case SMTP_LINE_READY:
		break;
	}
	if (s->owed.n > 0 && !joins_flight(s, line, len))
		return false; /* resumed by the backend's answers */
	smtp_line_consume(&s->line, in);
	s->wait_start = 0; /* the next command gets its own time */
	if (s->state == S_SASL)
		auth_step(s, line, len);
	else
		run_command(s, line, len);
	explicit_bzero(line, len); /* it may have held a password */
	return true;
}

/*
 * How long the session may still wait for the client. The timer is not
 * restarted by every byte: a client trickling one byte a second must not
 * hold a session for ever. A command line must be complete within
 * `timeout` of the moment the session began waiting for it; a message
 * body may pause at most `timeout`, and after a first `timeout` it must
 * keep data_min_rate bytes a second on average.
 */
static double client_time_left(struct session *s)
{
	const struct relay_cfg *r = &s->cfg->relay;
	ev_tstamp now = ev_now(s->env->loop);

	if (in_body(s->state)) {
		if (r->data_min_rate == 0)
			return r->timeout;
		double rate_left = s->body_start + r->timeout + (double)s->data.in_bytes / r->data_min_rate - now;
		return rate_left < r->timeout ? rate_left : r->timeout;
	}
	if (s->wait_start == 0)
		s->wait_start = now;
	return s->wait_start + r->timeout - now;
}

/* Which bound the client missed, for the log line. */
static const char *timeout_kind(const struct session *s)
{
	const struct relay_cfg *r = &s->cfg->relay;
	ev_tstamp now = ev_now(s->env->loop);

	if (in_body(s->state))
		return r->data_min_rate > 0 &&
			s->body_start + r->timeout + (double)s->data.in_bytes / r->data_min_rate <= now + 0.001
		    ? "data_too_slow" : "idle";
	return s->wait_start > 0 && buf_len(io_in(s->io)) > 0 ? "command_too_slow" : "idle";
}

/* Works through buffered input until it must wait (for the client, the
 * backend, or room for replies). The client timer runs only while the
 * session waits for the client. */
static void session_process(struct session *s)
{
	for (;;) {
		if (s->dead || s->state == S_CLOSING)
			return;
		if (s->state == S_WAIT || s->state == S_VERIFY) {
			io_timeout(s->io, 0);
			s->wait_start = 0;
			return;
		}
		if (s->state == S_TLS)
			return; /* the handshake's own time runs on the client timer */
		if (in_body(s->state)) {
			if (!pump_body(s))
				break;
			continue;
		}
		if (!reply_has_room(s->io, s->owed.n))
			return; /* resumed on IO_EV_DRAINED */
		if (buf_empty(io_in(s->io)) || !take_command(s))
			break;
	}
	if (s->peer_eof && s->owed.n == 0) {
		/* Everything the client sent is answered; it will send no more. */
		close_after_replies(s, "client_closed");
		return;
	}
	/* The client's timer runs only while we wait for it, not while
	 * answers to its commands are still to come from the backend (the
	 * provider's own command timeout covers that wait). */
	if (s->owed.n > 0) {
		io_timeout(s->io, 0);
		s->wait_start = 0;
	} else {
		double left = client_time_left(s);
		io_timeout(s->io, left > 0.001 ? left : 0.001);
	}
	/* Waiting for the client: an idle session keeps no buffers. */
	io_release_idle(s->io);
	io_update(s->io);
}

/* A legacy client that ended its data LF-only waits for an answer that
 * cannot come (only CRLF.CRLF ends data): say what it sent and what accepts it. */
static void explain_lf_dot(const struct session *s)
{
	if ((s->state == S_BODY || s->state == S_DISCARD) && s->data.lf_dot_seen != NULL)
		log_warn("client ended data with %s, which is not the end of data; set relay.accept_lf_dot = yes "
		    "if this client needs it id=%s client=%s", s->data.lf_dot_seen, s->id, s->peer);
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
		if (s->state == S_TLS) { /* nothing can be said in clear now */
			log_info("timeout id=%s client=%s state=TLS", s->id, s->peer);
			session_close(s, "tls_timeout");
			break;
		}
		reply(s->io, "421 4.4.2 %s Timeout waiting for the client, closing connection", s->cfg->relay.hostname);
		log_info("timeout id=%s client=%s state=%s kind=%s", s->id, s->peer, session_state_names[s->state],
		    timeout_kind(s));
		explain_lf_dot(s);
		close_after_replies(s, "timeout");
		break;
	case IO_EV_EOF:
		/* A client may send its last commands and shut its side at once
		 * (QUIT then EOF): it is owed the answers, and in queue mode its
		 * message is being made durable. Only a message cut off is lost. */
		if (s->state != S_BODY && s->state != S_DISCARD) {
			s->peer_eof = true;
			session_process(s);
			break;
		}
		log_message(s, "aborted");
		session_close(s, "client_closed_during_data");
		break;
	case IO_EV_ERROR:
		if (s->state == S_BODY || s->state == S_DISCARD)
			log_message(s, "aborted");
		session_close(s, io_error(s->io)[0] ? io_error(s->io) : "io_error");
		break;
	case IO_EV_TLS_UP:
		tls_up(s);
		session_process(s);
		break;
	case IO_EV_CONNECTED:
		break;
	}
	session_leave(s);
}

void server_session_start(struct server_env *env, int fd, const struct sockaddr *peer,
    const struct session_opts *o)
{
	const char *reject = o->reject;
	const struct sockaddr *proxy = o->proxy;
	char via[72] = "";

	struct session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return;
	}
	s->magic = SESSION_MAGIC;
	s->env = env;
	s->rt = runtime_ref(env->rt);
	s->cfg = s->rt->path.cfg;
	s->state = S_GREET;
	s->trusted = o->trusted;
	id_new(s->id);
	sockaddr_format(s->peer, sizeof(s->peer), peer);
	s->io = io_new(env->loop, fd, CLIENT_IN_LIMIT, CLIENT_OUT_LIMIT, on_client_io, s);
	if (s->io == NULL ||
	    !backend_open(&s->backend, s->rt, env->queue, env->spool, s->id, &session_events, s)) {
		io_free(s->io);
		if (s->io == NULL)
			close(fd);
		runtime_unref(s->rt);
		free(s);
		return;
	}
	env->nclients++;
	if (peer_key_of(peer, &s->peer_key))
		s->counted = peer_count_add(env->per_ip, &s->peer_key);
	if (env->nclients > env->clients_peak)
		env->clients_peak = env->nclients;
	metrics_worker_sessions(env->nclients);
	metrics_session_opened();
	s->next = env->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	env->sessions = s;
	if (proxy != NULL) {
		memcpy(via, " proxy=", 7);
		sockaddr_format(via + 7, sizeof(via) - 7, proxy);
	}
	log_info("connect id=%s client=%s%s%s%s", s->id, s->peer, via, reject ? " rejected=yes" : "",
	    !o->trusted && !reject ? " needs_auth=yes" : "");
	SSL *ssl = o->implicit_tls && runtime_server_tls(s->rt) ? SSL_new(runtime_server_tls(s->rt)) : NULL;
	if (o->implicit_tls && reject == NULL && ssl == NULL)
		reject = "421 4.7.0 TLS not available, try again later"; /* said in clear: nothing else is possible */
	io_timeout(s->io, s->cfg->relay.timeout);
	if (reject != NULL) {
		SSL_free(ssl);
		reply(s->io, "%s", reject);
		close_after_replies(s, "rejected");
		return;
	}
	if (ssl != NULL) {
		/* /implicit: the greeting is the first thing said over TLS. */
		s->implicit_tls = true;
		enter_state(s, S_TLS);
		io_accept_tls(s->io, ssl);
		return;
	}
	reply(s->io, "220 %s ESMTP subrelay", s->cfg->relay.hostname);
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

/*
 * upstream.c: see upstream.h. An explicit state machine; replies are
 * parsed line by line into one struct smtp_reply and dispatched on the
 * state that sent the command.
 */
#include "upstream.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "io.h"
#include "log.h"
#include "oauth2.h"
#include "tls.h"

#define UPSTREAM_IN_LIMIT (16 * 1024)
#define UPSTREAM_OUT_LIMIT (64 * 1024)
/* RFC 5321 4.5.3.2 minimum timeouts for the transaction phase. */
#define COMMAND_TIMEOUT 300.0
#define BODY_TIMEOUT 180.0
#define DOT_TIMEOUT 600.0
/* An AUTH line: RFC 4954 lets it exceed the command line limit (a XOAUTH2
 * response carries an access token of a few kilobytes). */
#define AUTH_LINE_MAX 12288

#define UPSTREAM_STATES(X) \
	X(CONNECTING) X(TLS_IMPLICIT) X(GREETING) X(EHLO) X(STARTTLS) X(TLS_STARTTLS) X(EHLO_TLS) \
	X(AUTH_PLAIN) X(AUTH_LOGIN) X(AUTH_LOGIN_USER) X(AUTH_LOGIN_PASS) \
	X(AUTH_TOKEN) X(AUTH_XOAUTH2) X(AUTH_XOAUTH2_ERROR) \
	X(READY) X(BODY) X(DOT) X(QUIT) X(DEAD)

enum upstream_state {
#define X(s) UP_##s,
	UPSTREAM_STATES(X)
#undef X
};

static const char *const state_names[] = {
#define X(s) #s,
	UPSTREAM_STATES(X)
#undef X
};

static const char *const fail_names[] = {
#define X(sym, name) name,
	UPSTREAM_FAILS(X)
#undef X
};

/* Transaction commands awaiting their replies, oldest first. A silent
 * dot ends a DATA the provider accepted after refusing every recipient
 * (RFC 2920 3.1): its reply concerns nobody. */
enum pending_cmd { PENDING_MAIL, PENDING_RCPT, PENDING_DATA, PENDING_RSET, PENDING_SILENT_DOT };
static const char *const pending_names[] = { "MAIL", "RCPT", "DATA", "RSET", "end of data" };
/* Enough for a full envelope in one flight; more waits for replies. */
#define PENDING_MAX 128
/* Room a command needs in the output buffer (a path is at most 256). */
#define COMMAND_ROOM 600

#define UPSTREAM_MAGIC 0x5e551017u

struct upstream {
	unsigned magic;
	enum upstream_state state;
	struct io *io;
	struct ev_loop *loop;
	const struct provider_cfg *provider;
	SSL_CTX *tls_ctx;
	struct port_mode pm;
	char address[64];
	char helo[256];
	char log_id[32];
	const struct upstream_callbacks *cbs;
	void *arg;
	struct smtp_reply reply;   /* the reply being read */
	struct smtp_reply ehlo;    /* the last EHLO reply: the provider's extensions */
	bool ehlo_seen;
	bool pipelining;           /* the provider offers PIPELINING (RFC 2920) */
	unsigned char pending[PENDING_MAX]; /* ring of enum pending_cmd */
	unsigned pending_head, npending;
	unsigned rcpts_ok;         /* RCPTs accepted since the last MAIL */
	struct upstream_facts facts;
	const char *auth_used;
	struct oauth2 *oauth2;     /* the provider's token cache (xoauth2) */
	struct oauth2_wait *token_wait; /* waiting for a token (AUTH_TOKEN) */
	unsigned token_generation; /* of the token sent */
	bool token_retried;        /* a refused token was fetched again once */
	char challenge[200];       /* the last XOAUTH2 error challenge in words, "" if none */
	bool in_tx;                /* MAIL accepted, transaction not ended yet */
	int depth;                 /* >0 while dispatching an io event */
	bool freed;                /* upstream_abort() called during dispatch */
	bool want_writable;
	bool dot_pending;
	ev_tstamp started;
	void (*given_up)(void *ctx, const struct provider_cfg *provider);
	void *given_up_ctx;
};

static void release(struct upstream *up);

const char *upstream_fail_name(enum upstream_fail f)
{
	return fail_names[f];
}

static void enter_state(struct upstream *up, enum upstream_state next)
{
	log_debug("id=%s upstream=%s state=%s->%s", up->log_id, up->address, state_names[up->state],
	    state_names[next]);
	up->state = next;
}

/* Reports a failure once; the owner frees the session from the callback. */
static void upstream_fail(struct upstream *up, enum upstream_fail cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void upstream_fail(struct upstream *up, enum upstream_fail cls, const char *fmt, ...)
{
	char reason[300];
	va_list ap;

	/* A session saying QUIT has no owner left to tell: just close it. */
	if (up->state == UP_QUIT) {
		release(up);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	enter_state(up, UP_DEAD);
	io_timeout(up->io, 0);
	io_pause_read(up->io, true);
	up->cbs->failed(up, up->arg, cls, reason);
}

/* Formats one command line into the output buffer; when it does not fit
 * the session fails (false). The copy on the stack is wiped: it may hold
 * credentials. */
static bool __attribute__((format(printf, 2, 0))) append_line(struct upstream *up, const char *fmt, va_list ap)
{
	char line[AUTH_LINE_MAX];
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);

	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		n = (int)sizeof(line) - 3;
	memcpy(line + n, "\r\n", 2);
	bool ok = buf_append(io_out(up->io), line, (size_t)n + 2);
	OPENSSL_cleanse(line, (size_t)n + 2);
	if (!ok)
		upstream_fail(up, UPSTREAM_FAIL_PROTOCOL, "output buffer full");
	return ok;
}

/* Setup commands (and QUIT): a dialogue, one command at a time. */
static void send_line(struct upstream *up, enum upstream_state next, double timeout, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void send_line(struct upstream *up, enum upstream_state next, double timeout, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	bool ok = append_line(up, fmt, ap);
	va_end(ap);
	if (!ok)
		return;
	enter_state(up, next);
	io_timeout(up->io, timeout);
	io_update(up->io);
}

static void push_pending(struct upstream *up, enum pending_cmd kind)
{
	up->pending[(up->pending_head + up->npending++) % PENDING_MAX] = (unsigned char)kind;
	if (up->npending == 1)
		io_timeout(up->io, COMMAND_TIMEOUT);
}

static enum pending_cmd pop_pending(struct upstream *up)
{
	enum pending_cmd kind = up->pending[up->pending_head];

	up->pending_head = (up->pending_head + 1) % PENDING_MAX;
	up->npending--;
	/* The command timer covers the oldest command still unanswered. */
	io_timeout(up->io, up->npending > 0 ? COMMAND_TIMEOUT : 0);
	return kind;
}

/* Transaction commands: written at once, several in one flight when the
 * provider pipelines (callers ask upstream_can_send() first). */
static void send_command(struct upstream *up, enum pending_cmd kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_command(struct upstream *up, enum pending_cmd kind, const char *fmt, ...)
{
	va_list ap;

	if (up->state == UP_DEAD || up->freed)
		return; /* failed already; the owner is told */
	if (!upstream_can_send(up)) {
		upstream_fail(up, UPSTREAM_FAIL_PROTOCOL, "%s sent out of turn", pending_names[kind]);
		return;
	}
	va_start(ap, fmt);
	bool ok = append_line(up, fmt, ap);
	va_end(ap);
	if (!ok)
		return;
	push_pending(up, kind);
	io_update(up->io);
}

/* ---- setup steps ---- */

static void send_ehlo(struct upstream *up, enum upstream_state next)
{
	send_line(up, next, up->provider->greeting_timeout, "EHLO %s", up->helo);
}

static bool ehlo_has(const struct upstream *up, const char *kw, char *params, size_t len)
{
	return smtp_ehlo_has(&up->ehlo, kw, params, len);
}

static void become_ready(struct upstream *up)
{
	enter_state(up, UP_READY);
	io_timeout(up->io, 0);
	up->cbs->ready(up, up->arg);
}

/* Encodes src as base64 into dst (size len); false when it does not fit. */
static bool base64(char *dst, size_t len, const unsigned char *src, size_t n)
{
	if (len < 4 * ((n + 2) / 3) + 1)
		return false;
	EVP_EncodeBlock((unsigned char *)dst, src, (int)n);
	return true;
}

static void send_secret_base64(struct upstream *up, enum upstream_state next, const char *prefix,
    const unsigned char *raw, size_t n)
{
	char b64[AUTH_LINE_MAX - 32];

	if (!base64(b64, sizeof(b64), raw, n)) {
		upstream_fail(up, UPSTREAM_FAIL_AUTH_UNAVAILABLE, "credentials too long");
		return;
	}
	send_line(up, next, up->provider->greeting_timeout, "%s%s", prefix, b64);
	OPENSSL_cleanse(b64, sizeof(b64));
}

/* ---- XOAUTH2 ---- */

static void send_xoauth2(struct upstream *up, const char *token)
{
	char raw[AUTH_LINE_MAX / 2];
	size_t n = oauth2_sasl_response(raw, sizeof(raw), up->provider->username, token);

	if (n == 0) {
		upstream_fail(up, UPSTREAM_FAIL_AUTH_UNAVAILABLE, "access token too long");
		return;
	}
	up->auth_used = "XOAUTH2";
	up->challenge[0] = '\0';
	send_secret_base64(up, UP_AUTH_XOAUTH2, "AUTH XOAUTH2 ", (const unsigned char *)raw, n);
	OPENSSL_cleanse(raw, n);
}

static void dispatch_end(struct upstream *up);
static void start_auth_xoauth2(struct upstream *up);

static void on_token(void *arg, const char *token, const char *error)
{
	struct upstream *up = arg;

	if (up->magic != UPSTREAM_MAGIC)
		abort();
	up->token_wait = NULL;
	up->depth++;
	if (token == NULL) {
		upstream_fail(up, UPSTREAM_FAIL_OAUTH2, "%s", error);
	} else {
		/* Another session may have had it refused meanwhile: then wait again. */
		start_auth_xoauth2(up);
	}
	dispatch_end(up);
}

/* The cached token at once, else a wait (the io timer is off meanwhile:
 * the fetch has its own timeout). */
static void start_auth_xoauth2(struct upstream *up)
{
	const char *token = oauth2_token(up->oauth2, &up->token_generation);

	if (token != NULL) {
		send_xoauth2(up, token);
		return;
	}
	enter_state(up, UP_AUTH_TOKEN);
	io_timeout(up->io, 0);
	if ((up->token_wait = oauth2_wait(up->oauth2, on_token, up)) == NULL)
		upstream_fail(up, UPSTREAM_FAIL_OAUTH2, "out of memory");
}

/* The final reply to AUTH XOAUTH2 (after the error challenge, if any). */
static void xoauth2_reply(struct upstream *up, const struct smtp_reply *r)
{
	up->facts.auth = r->code == 235 ? UPSTREAM_AUTH_ACCEPTED : UPSTREAM_AUTH_REJECTED;
	if (r->code == 235) {
		become_ready(up);
		return;
	}
	bool refused = r->code == 535 || r->code == 454 || up->state == UP_AUTH_XOAUTH2_ERROR;
	if (refused && !up->token_retried) {
		up->token_retried = true;
		char quoted[sizeof(up->challenge) * 2];
		log_info("upstream token refused id=%s upstream=%s provider=%s reply=\"%d %s\"%s%s action=refetch",
		    up->log_id, up->address, up->provider->name, r->code, r->enhanced,
		    up->challenge[0] ? " challenge=" : "",
		    up->challenge[0] ? log_quote(quoted, sizeof(quoted), up->challenge) : "");
		oauth2_invalidate(up->oauth2, up->token_generation);
		start_auth_xoauth2(up);
		return;
	}
	upstream_fail(up, refused || r->code >= 500 ? UPSTREAM_FAIL_AUTH_REJECTED : UPSTREAM_FAIL_REPLY_TEMPFAIL,
	    "AUTH XOAUTH2: %d %s%s%s%s%s%s", r->code, r->enhanced, r->enhanced[0] ? " " : "", r->text,
	    up->challenge[0] ? " (challenge: " : "", up->challenge, up->challenge[0] ? ")" : "");
}

static void start_auth_plain(struct upstream *up)
{
	const char *user = up->provider->username, *pass = up->provider->password;
	size_t ul = strlen(user), pl = strlen(pass);
	unsigned char raw[1024];

	if (ul + pl + 2 > sizeof(raw)) {
		upstream_fail(up, UPSTREAM_FAIL_AUTH_UNAVAILABLE, "credentials too long");
		return;
	}
	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, pass, pl);
	up->auth_used = "PLAIN";
	send_secret_base64(up, UP_AUTH_PLAIN, "AUTH PLAIN ", raw, ul + pl + 2);
	OPENSSL_cleanse(raw, sizeof(raw));
}

static bool mech_listed(const char *mechs, const char *mech)
{
	char copy[256], *save = NULL;

	snprintf(copy, sizeof(copy), "%s", mechs);
	for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
		if (strcasecmp(t, mech) == 0)
			return true;
	return false;
}

/* After the (last) EHLO: authenticate if configured, else ready. */
static void after_ehlo(struct upstream *up)
{
	const struct provider_cfg *p = up->provider;
	char mechs[256] = "";

	if (p->auth == AUTH_CHOICE_NONE || p->username == NULL) {
		become_ready(up);
		return;
	}
	if (!ehlo_has(up, "AUTH", mechs, sizeof(mechs))) {
		upstream_fail(up, UPSTREAM_FAIL_AUTH_UNAVAILABLE, "provider offers no AUTH");
		return;
	}
	if (p->auth == AUTH_CHOICE_XOAUTH2) {
		if (!mech_listed(mechs, "XOAUTH2") || up->oauth2 == NULL)
			upstream_fail(up, UPSTREAM_FAIL_AUTH_UNAVAILABLE, "XOAUTH2 not offered (offered: %s)", mechs);
		else
			start_auth_xoauth2(up);
		return;
	}
	bool plain = mech_listed(mechs, "PLAIN"), login = mech_listed(mechs, "LOGIN");
	if ((p->auth == AUTH_CHOICE_AUTO || p->auth == AUTH_CHOICE_PLAIN) && plain) {
		start_auth_plain(up);
	} else if ((p->auth == AUTH_CHOICE_AUTO || p->auth == AUTH_CHOICE_LOGIN) && login) {
		up->auth_used = "LOGIN";
		send_line(up, UP_AUTH_LOGIN, p->greeting_timeout, "AUTH LOGIN");
	} else {
		upstream_fail(up, UPSTREAM_FAIL_AUTH_UNAVAILABLE, "no usable AUTH mechanism (offered: %s)", mechs);
	}
}

static void start_tls(struct upstream *up, enum upstream_state next)
{
	SSL *ssl = tls_client_new(up->tls_ctx, up->provider->host, up->provider->tls_verify);
	if (ssl == NULL) {
		upstream_fail(up, UPSTREAM_FAIL_TLS_HANDSHAKE, "cannot create TLS session");
		return;
	}
	enter_state(up, next);
	io_timeout(up->io, up->provider->greeting_timeout);
	io_start_tls(up->io, ssl);
}

/* ---- reply dispatch ---- */

static enum upstream_fail reply_class(const struct smtp_reply *r)
{
	return r->code >= 500 ? UPSTREAM_FAIL_REPLY_PERMFAIL : UPSTREAM_FAIL_REPLY_TEMPFAIL;
}

static void fail_reply(struct upstream *up, const char *what)
{
	upstream_fail(up, reply_class(&up->reply), "%s: %d %s%s%s", what, up->reply.code, up->reply.enhanced,
	    up->reply.enhanced[0] ? " " : "", up->reply.text);
}

static void remember_ehlo(struct upstream *up, const struct smtp_reply *r)
{
	up->ehlo = *r;
	up->ehlo_seen = true;
	up->pipelining = smtp_ehlo_has(r, "PIPELINING", NULL, 0);
	if (!smtp_ehlo_has(r, "AUTH", up->facts.auth_mechs, sizeof(up->facts.auth_mechs)))
		up->facts.auth_mechs[0] = '\0';
}

static void on_setup_reply(struct upstream *up)
{
	const struct smtp_reply *r = &up->reply;
	const struct provider_cfg *p = up->provider;

	switch (up->state) {
	case UP_GREETING:
		snprintf(up->facts.greeting, sizeof(up->facts.greeting), "%d %s", r->code, r->text);
		if (r->code != 220)
			return fail_reply(up, "greeting");
		send_ehlo(up, UP_EHLO);
		return;
	case UP_EHLO:
		if (r->code != 250)
			return fail_reply(up, "EHLO");
		remember_ehlo(up, r);
		up->facts.starttls_offered = ehlo_has(up, "STARTTLS", NULL, 0);
		if (up->pm.mode != TLS_MODE_STARTTLS)
			return after_ehlo(up);
		if (!ehlo_has(up, "STARTTLS", NULL, 0))
			return upstream_fail(up, UPSTREAM_FAIL_STARTTLS_MISSING,
			    "STARTTLS not offered (stripped by a middlebox, or not a STARTTLS port)");
		send_line(up, UP_STARTTLS, p->greeting_timeout, "STARTTLS");
		return;
	case UP_STARTTLS:
		if (r->code != 220)
			return upstream_fail(up, UPSTREAM_FAIL_STARTTLS_MISSING, "STARTTLS refused: %d %s",
			    r->code, r->text);
		/* Bytes after the 220 would be injected plaintext (CVE-2011-0411 style). */
		if (!buf_empty(io_in(up->io)))
			return upstream_fail(up, UPSTREAM_FAIL_PROTOCOL, "data pipelined after STARTTLS reply");
		start_tls(up, UP_TLS_STARTTLS);
		return;
	case UP_EHLO_TLS:
		if (r->code != 250)
			return fail_reply(up, "EHLO after STARTTLS");
		remember_ehlo(up, r);
		after_ehlo(up);
		return;
	case UP_AUTH_PLAIN:
	case UP_AUTH_LOGIN_PASS:
		up->facts.auth = r->code == 235 ? UPSTREAM_AUTH_ACCEPTED : UPSTREAM_AUTH_REJECTED;
		if (r->code != 235)
			return upstream_fail(up, r->code >= 500 ? UPSTREAM_FAIL_AUTH_REJECTED : UPSTREAM_FAIL_REPLY_TEMPFAIL,
			    "AUTH %s: %d %s", up->auth_used, r->code, r->text);
		become_ready(up);
		return;
	case UP_AUTH_XOAUTH2:
		if (r->code == 334) { /* the error challenge (JSON): an empty line gets the final reply */
			oauth2_describe_challenge(r->text, up->challenge, sizeof(up->challenge));
			return send_line(up, UP_AUTH_XOAUTH2_ERROR, p->greeting_timeout, "%s", "");
		}
		/* fall through */
	case UP_AUTH_XOAUTH2_ERROR:
		return xoauth2_reply(up, r);
	case UP_AUTH_LOGIN:
		if (r->code != 334)
			return fail_reply(up, "AUTH LOGIN");
		send_secret_base64(up, UP_AUTH_LOGIN_USER, "", (const unsigned char *)p->username,
		    strlen(p->username));
		return;
	case UP_AUTH_LOGIN_USER:
		if (r->code != 334) {
			up->facts.auth = UPSTREAM_AUTH_REJECTED;
			return upstream_fail(up, r->code >= 500 ? UPSTREAM_FAIL_AUTH_REJECTED : UPSTREAM_FAIL_REPLY_TEMPFAIL,
			    "AUTH LOGIN: %d %s", r->code, r->text);
		}
		send_secret_base64(up, UP_AUTH_LOGIN_PASS, "", (const unsigned char *)p->password,
		    strlen(p->password));
		return;
	default:
		upstream_fail(up, UPSTREAM_FAIL_PROTOCOL, "unexpected reply %d in state %s", r->code,
		    state_names[up->state]);
	}
}

/* DATA accepted although every recipient was refused: possible only when
 * pipelined. RFC 2920 3.1: end it with a lone dot, tell the owner DATA failed. */
static void end_empty_data(struct upstream *up)
{
	static const struct smtp_reply no_rcpts = {
		.code = 554, .enhanced = "5.5.1", .text = "No valid recipients", .complete = true,
	};

	if (!buf_append(io_out(up->io), ".\r\n", 3)) {
		upstream_fail(up, UPSTREAM_FAIL_PROTOCOL, "output buffer full");
		return;
	}
	push_pending(up, PENDING_SILENT_DOT);
	io_update(up->io);
	up->cbs->reply(up, up->arg, &no_rcpts);
}

/* Whether RFC 5321 (4.3.2) allows the reply to that command: a 354 only to
 * DATA, which may not be answered 2xx; never a 1xx or 3xx elsewhere. A
 * reply outside these is a protocol error, never passed on as a verdict. */
static bool reply_allowed(enum pending_cmd kind, int code)
{
	int cls = code / 100;

	if (kind == PENDING_DATA)
		return code == 354 || cls == 4 || cls == 5;
	return cls == 2 || cls == 4 || cls == 5;
}

static void on_transaction_reply(struct upstream *up)
{
	const struct smtp_reply *r = &up->reply;
	bool ok = r->code / 100 == 2;

	if (up->npending == 0) {
		upstream_fail(up, UPSTREAM_FAIL_PROTOCOL, "unsolicited reply %d", r->code);
		return;
	}
	enum pending_cmd kind = (enum pending_cmd)up->pending[up->pending_head];
	if (!reply_allowed(kind, r->code)) {
		upstream_fail(up, UPSTREAM_FAIL_PROTOCOL, "reply %d to %s is not allowed", r->code, pending_names[kind]);
		return;
	}
	switch (pop_pending(up)) {
	case PENDING_MAIL:
		up->in_tx = ok;
		up->rcpts_ok = 0;
		break;
	case PENDING_RCPT:
		up->rcpts_ok += ok;
		break;
	case PENDING_RSET:
		up->in_tx = false;
		break;
	case PENDING_SILENT_DOT:
		up->in_tx = false;
		return;
	case PENDING_DATA:
		if (r->code == 354 && up->rcpts_ok == 0)
			return end_empty_data(up);
		if (r->code == 354) {
			enter_state(up, UP_BODY);
			io_timeout(up->io, BODY_TIMEOUT);
		}
		break;
	}
	up->cbs->reply(up, up->arg, r);
}

static void on_reply(struct upstream *up)
{
	switch (up->state) {
	case UP_READY:
		on_transaction_reply(up);
		return;
	case UP_DOT:
		if (!reply_allowed(PENDING_SILENT_DOT, up->reply.code)) {
			upstream_fail(up, UPSTREAM_FAIL_PROTOCOL, "reply %d to the end of data is not allowed", up->reply.code);
			return;
		}
		up->in_tx = false;
		enter_state(up, UP_READY);
		io_timeout(up->io, 0);
		up->cbs->reply(up, up->arg, &up->reply);
		return;
	case UP_QUIT:
		release(up);
		return;
	case UP_BODY:
		upstream_fail(up, UPSTREAM_FAIL_PROTOCOL, "unsolicited reply %d", up->reply.code);
		return;
	default:
		on_setup_reply(up);
	}
}

/* Splits input into lines and feeds complete replies to on_reply(). */
static void read_replies(struct upstream *up)
{
	struct buf *in = io_in(up->io);

	while (up->state != UP_DEAD && !buf_empty(in)) {
		size_t used = 0;
		enum smtp_reply_step st = smtp_reply_read(&up->reply, buf_peek(in), buf_len(in), &used);
		if (st == SMTP_REPLY_MORE) {
			if (buf_len(in) >= in->limit)
				upstream_fail(up, UPSTREAM_FAIL_PROTOCOL, "reply line too long");
			return;
		}
		buf_consume(in, used);
		if (st == SMTP_REPLY_BAD) {
			if (up->reply.too_long)
				upstream_fail(up, UPSTREAM_FAIL_PROTOCOL, "malformed reply: longer than %d lines or %d bytes",
				    SMTP_REPLY_LINES_MAX, SMTP_REPLY_BYTES_MAX);
			else
				upstream_fail(up, UPSTREAM_FAIL_PROTOCOL, "malformed reply");
			return;
		}
		if (up->reply.complete) {
			on_reply(up);
			if (up->freed)
				return;
			smtp_reply_reset(&up->reply);
		}
	}
}

/* ---- io events ---- */

static enum upstream_fail connect_class(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return UPSTREAM_FAIL_CONNECT_REFUSED;
	case ENETUNREACH:
	case EHOSTUNREACH:
	case ENETDOWN:
	case EHOSTDOWN:
		return UPSTREAM_FAIL_CONNECT_UNREACHABLE;
	case EACCES:
	case EPERM:
		return UPSTREAM_FAIL_CONNECT_DENIED;
	case ETIMEDOUT:
		return UPSTREAM_FAIL_CONNECT_TIMEOUT;
	default:
		return UPSTREAM_FAIL_CONNECT_ERROR;
	}
}

static void on_io_error(struct upstream *up)
{
	if (up->state == UP_CONNECTING)
		return upstream_fail(up, connect_class(io_errno(up->io)), "%s", io_error(up->io));
	if (io_tls_failed(up->io)) {
		SSL *ssl = io_ssl(up->io);
		if (ssl != NULL && tls_peer_sent_certificate(ssl)) {
			tls_peer_info(ssl, &up->facts.tls);
			up->facts.tls_seen = true;
		}
		bool verify = ssl != NULL && SSL_get_verify_result(ssl) != X509_V_OK;
		return upstream_fail(up, verify ? UPSTREAM_FAIL_TLS_VERIFY : UPSTREAM_FAIL_TLS_HANDSHAKE, "%s",
		    io_error(up->io));
	}
	if (up->state == UP_QUIT)
		return release(up);
	upstream_fail(up, UPSTREAM_FAIL_CLOSED, "%s", io_error(up->io));
}

static void on_timeout(struct upstream *up)
{
	switch (up->state) {
	case UP_CONNECTING:
		return upstream_fail(up, UPSTREAM_FAIL_CONNECT_TIMEOUT, "no connection within %gs",
		    up->provider->connect_timeout);
	case UP_TLS_IMPLICIT:
		return upstream_fail(up, UPSTREAM_FAIL_GREETING_TIMEOUT, "no TLS handshake within %gs",
		    up->provider->greeting_timeout);
	case UP_GREETING:
		return upstream_fail(up, UPSTREAM_FAIL_GREETING_TIMEOUT, "no greeting within %gs",
		    up->provider->greeting_timeout);
	case UP_QUIT:
		return release(up);
	case UP_READY:
		return upstream_fail(up, UPSTREAM_FAIL_TIMEOUT, "no reply to %s",
		    pending_names[up->pending[up->pending_head]]);
	default:
		return upstream_fail(up, UPSTREAM_FAIL_TIMEOUT, "no reply in state %s", state_names[up->state]);
	}
}

static void dispatch(struct upstream *up, enum io_event ev);

/* Callbacks may abort the session; the memory goes once dispatch is over. */
static void on_io(struct io *io, enum io_event ev, void *arg)
{
	struct upstream *up = arg;
	(void)io;

	if (up->magic != UPSTREAM_MAGIC)
		abort();
	up->depth++;
	dispatch(up, ev);
	dispatch_end(up);
}

static void dispatch_end(struct upstream *up)
{
	if (--up->depth == 0 && up->freed) {
		up->magic = 0;
		free(up);
	}
}

static void dispatch(struct upstream *up, enum io_event ev)
{
	switch (ev) {
	case IO_EV_CONNECTED:
		up->facts.connect_seconds = ev_now(up->loop) - up->started;
		if (up->pm.mode == TLS_MODE_IMPLICIT) {
			start_tls(up, UP_TLS_IMPLICIT);
		} else {
			enter_state(up, UP_GREETING);
			io_timeout(up->io, up->provider->greeting_timeout);
		}
		return;
	case IO_EV_TLS_UP:
		tls_peer_info(io_ssl(up->io), &up->facts.tls);
		up->facts.tls_seen = true;
		if (up->state == UP_TLS_IMPLICIT) {
			enter_state(up, UP_GREETING);
			io_timeout(up->io, up->provider->greeting_timeout);
		} else {
			send_ehlo(up, UP_EHLO_TLS);
		}
		return;
	case IO_EV_READ:
		read_replies(up);
		return;
	case IO_EV_DRAINED:
		if (up->dot_pending) {
			up->dot_pending = false;
			upstream_body_end(up);
			return;
		}
		if (up->state == UP_BODY)
			io_timeout(up->io, BODY_TIMEOUT);
		if (up->want_writable) {
			up->want_writable = false;
			up->cbs->writable(up, up->arg);
		}
		return;
	case IO_EV_TIMEOUT:
		on_timeout(up);
		return;
	case IO_EV_EOF:
		if (up->state == UP_QUIT)
			return release(up);
		upstream_fail(up, up->state == UP_GREETING ? UPSTREAM_FAIL_GREETING_TIMEOUT : UPSTREAM_FAIL_CLOSED,
		    "connection closed by provider in state %s", state_names[up->state]);
		return;
	case IO_EV_ERROR:
		on_io_error(up);
		return;
	}
}

/* ---- public ---- */

struct upstream *upstream_open(const struct upstream_params *params, const struct upstream_callbacks *cbs,
    void *arg)
{
	struct upstream *up = calloc(1, sizeof(*up));
	if (up == NULL)
		return NULL;
	up->magic = UPSTREAM_MAGIC;
	up->loop = params->loop;
	up->provider = params->provider;
	up->oauth2 = params->oauth2;
	up->tls_ctx = params->tls_ctx;
	up->pm = params->port_mode;
	up->cbs = cbs;
	up->arg = arg;
	up->auth_used = "none";
	up->given_up = params->given_up;
	up->given_up_ctx = params->given_up_ctx;
	up->started = ev_now(params->loop);
	up->facts.connect_seconds = -1;
	smtp_reply_reset(&up->reply);
	snprintf(up->helo, sizeof(up->helo), "%s", params->helo_name);
	snprintf(up->log_id, sizeof(up->log_id), "%s", params->log_id);
	sockaddr_format(up->address, sizeof(up->address), params->addr);
	up->io = io_connect(params->loop, params->addr, params->addrlen, UPSTREAM_IN_LIMIT, UPSTREAM_OUT_LIMIT,
	    on_io, up);
	if (up->io == NULL) {
		free(up);
		return NULL;
	}
	io_timeout(up->io, up->provider->connect_timeout);
	return up;
}

void upstream_set_callbacks(struct upstream *up, const struct upstream_callbacks *cbs, void *arg)
{
	up->cbs = cbs;
	up->arg = arg;
}

/* Closes the connection; the memory goes when the current dispatch ends. */
static void release(struct upstream *up)
{
	if (up->freed)
		return;
	oauth2_cancel(up->token_wait);
	up->token_wait = NULL;
	io_free(up->io);
	up->freed = true;
}

/* The owner lets go: it stops counting, whatever the connection does next. */
static void give_up(struct upstream *up)
{
	if (up->given_up == NULL)
		return;
	void (*given_up)(void *, const struct provider_cfg *) = up->given_up;
	up->given_up = NULL;
	given_up(up->given_up_ctx, up->provider);
}

void upstream_abort(struct upstream *up)
{
	if (up == NULL || up->freed)
		return;
	give_up(up);
	if (up->depth > 0) {
		release(up);
		return;
	}
	oauth2_cancel(up->token_wait);
	io_free(up->io);
	up->magic = 0;
	free(up);
}

void upstream_close(struct upstream *up)
{
	if (up == NULL)
		return;
	if (up->state != UP_READY || up->npending > 0) {
		upstream_abort(up);
		return;
	}
	give_up(up);
	static const struct upstream_callbacks none;
	up->cbs = &none;
	send_line(up, UP_QUIT, 10.0, "QUIT");
}

void upstream_mail(struct upstream *up, const struct upstream_mail_params *mp)
{
	char params[128] = "";
	size_t n = 0;

	if (mp->size > 0 && ehlo_has(up, "SIZE", NULL, 0))
		n += (size_t)snprintf(params + n, sizeof(params) - n, " SIZE=%llu", (unsigned long long)mp->size);
	if (mp->body_8bitmime && ehlo_has(up, "8BITMIME", NULL, 0))
		n += (size_t)snprintf(params + n, sizeof(params) - n, " BODY=8BITMIME");
	if (mp->smtputf8 && ehlo_has(up, "SMTPUTF8", NULL, 0))
		snprintf(params + n, sizeof(params) - n, " SMTPUTF8");
	send_command(up, PENDING_MAIL, "MAIL FROM:<%s>%s", mp->from, params);
}

void upstream_rcpt(struct upstream *up, const char *to)
{
	send_command(up, PENDING_RCPT, "RCPT TO:<%s>", to);
}

void upstream_data(struct upstream *up)
{
	send_command(up, PENDING_DATA, "DATA");
}

void upstream_rset(struct upstream *up)
{
	send_command(up, PENDING_RSET, "RSET");
}

bool upstream_can_send(struct upstream *up)
{
	if (up->state != UP_READY || up->freed)
		return false;
	if (up->npending == 0)
		return true;
	if (!up->pipelining || up->npending == PENDING_MAX)
		return false;
	/* DATA ends a group (RFC 2920 3.1): nothing follows until its 354. */
	enum pending_cmd last = up->pending[(up->pending_head + up->npending - 1) % PENDING_MAX];
	return last != PENDING_DATA && buf_room(io_out(up->io)) >= COMMAND_ROOM;
}

char *upstream_body_space(struct upstream *up, size_t need, size_t *room)
{
	struct buf *out = io_out(up->io);

	*room = buf_room(out);
	if (*room < need)
		up->want_writable = true;
	return buf_tail(out);
}

void upstream_body_commit(struct upstream *up, size_t n)
{
	buf_commit(io_out(up->io), n);
	io_update(up->io);
}

void upstream_body_end(struct upstream *up)
{
	if (!buf_append(io_out(up->io), ".\r\n", 3)) {
		up->dot_pending = true;
		return;
	}
	enter_state(up, UP_DOT);
	io_timeout(up->io, DOT_TIMEOUT);
	io_update(up->io);
}

void upstream_get_info(const struct upstream *up, struct upstream_info *info)
{
	SSL *ssl = io_ssl(up->io);

	info->provider = up->provider->name;
	info->host = up->provider->host;
	snprintf(info->address, sizeof(info->address), "%s", up->address);
	info->port = up->pm.port;
	info->mode = tls_mode_name(up->pm.mode);
	info->tls_version = ssl ? SSL_get_version(ssl) : "none";
	info->tls_cipher = ssl ? SSL_get_cipher_name(ssl) : "none";
	info->auth = up->auth_used;
	info->tls_resumed = ssl != NULL && SSL_session_reused(ssl);
	info->pipelining = up->pipelining;
}

void upstream_info_format(const struct upstream_info *info, char *out, size_t len)
{
	if (info == NULL) {
		snprintf(out, len, "provider=none address=none port=0 mode=none tls=none cipher=none");
		return;
	}
	snprintf(out, len, "provider=%s address=%s port=%u mode=%s tls=%s cipher=%s", info->provider, info->address,
	    info->port, info->mode, info->tls_version, info->tls_cipher);
}

const struct upstream_facts *upstream_get_facts(const struct upstream *up)
{
	return &up->facts;
}

const struct smtp_reply *upstream_ehlo_reply(const struct upstream *up)
{
	return up->ehlo_seen ? &up->ehlo : NULL;
}

uint64_t upstream_size_limit(const struct upstream *up)
{
	char params[64];

	if (!up->ehlo_seen || !ehlo_has(up, "SIZE", params, sizeof(params)))
		return 0;
	return strtoull(params, NULL, 10); /* "SIZE" alone or "SIZE 0": no limit */
}

bool upstream_idle(const struct upstream *up)
{
	return up->state == UP_READY && !up->in_tx && up->npending == 0 && !up->freed;
}

void upstream_release_buffers(struct upstream *up)
{
	io_release_idle(up->io);
}

const struct provider_cfg *upstream_provider(const struct upstream *up)
{
	return up->provider;
}


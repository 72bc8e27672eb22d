/*
 * upstream: one SMTP client session to a provider, at one address, port
 * and TLS mode. The path chooser (or the probe) opens it and sets it up;
 * a transaction (utx.h) runs on it; between transactions the pool keeps
 * it. It never decides where to connect and never retries: a failure is
 * reported with its class and the owner chooses what is next.
 *
 * Setup: connect, TLS first for implicit mode, greeting, EHLO,
 * STARTTLS + handshake + EHLO again for starttls mode (never continuing
 * in clear text when STARTTLS is missing), AUTH PLAIN, LOGIN or XOAUTH2
 * only over TLS (or on an explicitly allowed plain port). Then `ready`.
 * XOAUTH2 takes the provider's access token from its cache (oauth2.h),
 * waiting for a fetch when needed; a refused token (535, 454, or the 334
 * error challenge) is dropped from the cache and the AUTH retried once
 * with a fresh one before the session fails with auth_rejected.
 *
 * Transactions: MAIL, RCPT, DATA, body, end of data, RSET; each command
 * gets exactly one `reply` callback, in the order sent. When the provider
 * offers PIPELINING (RFC 2920) several commands may be in flight: MAIL,
 * the RCPTs and DATA go out in one write, and a DATA the provider accepts
 * although it refused every recipient is closed with a lone dot and
 * reported as refused. Credentials and AUTH payloads never reach the log.
 */
#ifndef SUBRELAY_UPSTREAM_H
#define SUBRELAY_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <ev.h>
#include <openssl/ssl.h>

#include "config.h"
#include "smtp_parse.h"
#include "tls.h"

/* Failure classes: what went wrong, so the path chooser can fail over. */
#define UPSTREAM_FAILS(X) \
	X(CONNECT_REFUSED, "connect_refused") \
	X(CONNECT_UNREACHABLE, "connect_unreachable") \
	X(CONNECT_DENIED, "connect_denied") \
	X(CONNECT_TIMEOUT, "connect_timeout") \
	X(CONNECT_ERROR, "connect_error") \
	X(GREETING_TIMEOUT, "greeting_timeout") \
	X(TLS_HANDSHAKE, "tls_handshake") \
	X(TLS_VERIFY, "tls_verify") \
	X(STARTTLS_MISSING, "starttls_missing") \
	X(AUTH_UNAVAILABLE, "auth_unavailable") \
	X(AUTH_REJECTED, "auth_rejected") \
	X(OAUTH2, "oauth2")  /* no access token: the token endpoint is down, slow or said no */ \
	X(REPLY_TEMPFAIL, "reply_4xx") \
	X(REPLY_PERMFAIL, "reply_5xx") \
	X(PROTOCOL, "protocol") \
	X(CLOSED, "closed") \
	X(TIMEOUT, "timeout")

enum upstream_fail {
#define X(sym, name) UPSTREAM_FAIL_##sym,
	UPSTREAM_FAILS(X)
#undef X
};

const char *upstream_fail_name(enum upstream_fail f);

struct upstream;

/* The owner's events; an owner that sends no transaction command may
 * leave reply and writable NULL (a reply nobody asked for is a protocol
 * failure before it gets here). */
struct upstream_callbacks {
	/* Setup finished: the session can take a transaction. */
	void (*ready)(struct upstream *up, void *arg);
	/* The reply to the last MAIL, RCPT, DATA, end of data or RSET. */
	void (*reply)(struct upstream *up, void *arg, const struct smtp_reply *reply);
	/* Room again in the body buffer after upstream_body_room() was 0. */
	void (*writable)(struct upstream *up, void *arg);
	/* The session is unusable (setup or later); the owner frees it. */
	void (*failed)(struct upstream *up, void *arg, enum upstream_fail cls, const char *reason);
};

struct oauth2;

struct upstream_params {
	struct ev_loop *loop;
	const struct provider_cfg *provider;
	struct oauth2 *oauth2;     /* the provider's token cache (auth = xoauth2), else NULL */
	SSL_CTX *tls_ctx;
	const struct sockaddr *addr;
	socklen_t addrlen;
	struct port_mode port_mode;
	const char *helo_name;
	const char *log_id;        /* session or message id for log lines */
	/* Called once when the owner gives the session up (upstream_close or
	 * upstream_abort): the per-provider session count (pool.h). */
	void (*given_up)(void *ctx, const struct provider_cfg *provider);
	void *given_up_ctx;
};

struct upstream *upstream_open(const struct upstream_params *params, const struct upstream_callbacks *cbs,
    void *arg);
/* A new owner: only at a hand-over, when nothing is in flight (setup done
 * -> transaction, transaction over -> pool, pool -> search), so that no
 * reply ever reaches an owner that did not send its command. */
void upstream_set_callbacks(struct upstream *up, const struct upstream_callbacks *cbs, void *arg);
/* QUIT politely if the session is idle, then free; closes at once otherwise.
 * Either way the session no longer counts against max_connections. */
void upstream_close(struct upstream *up);
/* Closes at once without QUIT (e.g. a body that must not be completed). */
void upstream_abort(struct upstream *up);

struct upstream_mail_params {
	const char *from;
	uint64_t size;             /* 0: unknown */
	bool body_8bitmime;
	bool smtputf8;
};

/* True when a transaction command may be sent now: nothing in flight, or
 * the provider pipelines and the last command in flight is not DATA. */
bool upstream_can_send(struct upstream *up);
void upstream_mail(struct upstream *up, const struct upstream_mail_params *mp);
void upstream_rcpt(struct upstream *up, const char *to);
void upstream_data(struct upstream *up);
/* Body streaming after the 354: canonical bytes (see smtp_data.h) go
 * straight into the output buffer. When *room is below `need` the
 * provider is slower than the client: wait for the `writable` callback. */
char *upstream_body_space(struct upstream *up, size_t need, size_t *room);
void upstream_body_commit(struct upstream *up, size_t n);
/* Appends the terminator; the reply to it follows. */
void upstream_body_end(struct upstream *up);
void upstream_rset(struct upstream *up);

/* Facts for log lines. */
struct upstream_info {
	const char *provider;
	const char *host;
	char address[64];          /* "IP:PORT" or "[IP]:PORT" */
	uint16_t port;
	const char *mode;
	const char *tls_version;   /* "none" without TLS */
	const char *tls_cipher;
	const char *auth;          /* mechanism used, "none" */
	bool tls_resumed;          /* the TLS session was resumed (no full handshake) */
	bool pipelining;
};
void upstream_get_info(const struct upstream *up, struct upstream_info *info);
/* "provider=P address=A port=N mode=M tls=V cipher=C" for log lines; the
 * fields read "none" for a NULL info (no session was ever had). */
void upstream_info_format(const struct upstream_info *info, char *out, size_t len);
/* What the session learnt on the way, for the probe report. */
enum upstream_auth_result { UPSTREAM_AUTH_NOT_TRIED, UPSTREAM_AUTH_ACCEPTED, UPSTREAM_AUTH_REJECTED };

struct upstream_facts {
	double connect_seconds;    /* < 0 until connected */
	char greeting[SMTP_REPLY_TEXT_MAX + 8];
	bool starttls_offered;     /* in the EHLO before TLS (starttls mode) */
	bool tls_seen;             /* tls holds facts (a handshake ran, or failed after the certificate) */
	struct tls_peer_info tls;
	char auth_mechs[128];      /* from the last EHLO, "" if none */
	enum upstream_auth_result auth;
};
const struct upstream_facts *upstream_get_facts(const struct upstream *up);
/* The last EHLO reply (extensions in ->ehlo), or NULL before one. */
const struct smtp_reply *upstream_ehlo_reply(const struct upstream *up);

/* The message size limit the provider announced (EHLO SIZE), 0 when none. */
uint64_t upstream_size_limit(const struct upstream *up);
/* True between transactions: setup done, no command outstanding, no
 * transaction open (a MAIL accepted and not yet ended by the final dot or RSET). */
bool upstream_idle(const struct upstream *up);
/* Frees the session's empty buffers while it waits in the pool. */
void upstream_release_buffers(struct upstream *up);
const struct provider_cfg *upstream_provider(const struct upstream *up);


#endif

/*
 * smtp_server: the client-facing SMTP session (RFC 5321 with PIPELINING,
 * SIZE, 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8), with STARTTLS (RFC 3207)
 * when relay.tls_cert_file is set and AUTH PLAIN / LOGIN (RFC 4954) over
 * TLS when relay.users_file is.
 *
 * It knows the dialogue with its client and nothing of what carries the
 * message: each command that concerns the message goes to the delivery
 * backend of relay.delivery (tx.h, chosen by backend.c: relay.c for
 * passthrough, spooler.c for queue, hybrid.c for both), which answers
 * it. Commands are taken from the client's input one at a time and
 * answered in order; while an answer is owed, later pipelined commands
 * stay in the (bounded) input buffer, except RCPTs and DATA the backend
 * can send on at once. The body is canonicalised by smtp_data.c straight
 * into the backend's buffer (body_pump.c): when the provider (or disk)
 * is slow, the client's input buffer fills and reading from the client
 * stops. A session never holds a whole message.
 */
#ifndef SUBRELAY_SMTP_SERVER_H
#define SUBRELAY_SMTP_SERVER_H

#include <sys/socket.h>

#include "runtime.h"

struct queue;
struct session;
struct spool;

struct server_env {
	struct ev_loop *loop;
	struct runtime *rt;        /* the current configuration; a session keeps the one it started with */
	struct queue *queue;       /* queue mode; NULL in passthrough */
	struct spool *spool;
	unsigned nclients;         /* sessions alive in this process */
	unsigned clients_peak;     /* the most since the last memory trim (worker.c) */
	unsigned nworkers;         /* relay.workers: max_clients counts every worker's sessions */
	struct session *sessions;  /* every session alive */
	struct peer_count *per_ip; /* sessions alive per client address (max_clients_per_ip) */
};

/* What the listener decided about a new client. */
struct session_opts {
	const char *reject;  /* a full reply line without CRLF (e.g. "554 5.7.1 ..."): said, then closed */
	bool trusted;        /* inside relay.allow: may submit without AUTH */
	bool implicit_tls;   /* an /implicit listener: TLS before the greeting */
	const struct sockaddr *proxy; /* the load balancer of a /proxy listener; NULL if none */
};

/*
 * Starts a session on an accepted socket. The session counts itself in
 * env->nclients while alive. A client that is not trusted must
 * authenticate (STARTTLS, AUTH) before MAIL: 530 5.7.0 until then. peer
 * is the client; o->proxy (NULL if none) the load balancer that connected
 * for it on a /proxy listener, logged as `proxy=`.
 */
void server_session_start(struct server_env *env, int fd, const struct sockaddr *peer,
    const struct session_opts *o);
/* Closes every session at once (exit after the drain deadline). */
void server_close_all(struct server_env *env);

#endif

/*
 * utx.c: see utx.h.
 *
 * The recipients are kept as the caller gave them; `sent` of them are
 * written on the current session and `answered` of those have their
 * reply. A failover before MAIL is accepted starts both at 0 again on
 * the next session, so the provider that accepts MAIL sees the whole
 * envelope and the caller sees each reply once.
 */
#include "utx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headers.h"
#include "log.h"
#include "metrics.h"
#include "pace.h"
#include "pool.h"

#define UTX_STATES(X) \
	X(SEARCH)    /* the path search looks for a session */ \
	X(MAIL)      /* MAIL sent, the envelope piped behind it if it can be */ \
	X(ENVELOPE)  /* MAIL accepted: RCPTs, then DATA */ \
	X(BODY)      /* DATA answered 354: the body flows */ \
	X(DOT)       /* end of data sent, waiting for the verdict */ \
	X(RSET)      /* RSET sent */ \
	X(DONE)      /* between transactions: the session is reusable */ \
	X(OVER)      /* no session: MAIL refused, no path, or the session lost */

enum utx_state {
#define X(s) UTX_##s,
	UTX_STATES(X)
#undef X
};

static const char *const state_names[] = {
#define X(s) #s,
	UTX_STATES(X)
#undef X
};

struct utx {
	enum utx_state state;
	const struct utx_events *ev;
	void *arg;
	const struct path_env *env; /* utx_start: pacing (pace.h); NULL for the probe */
	struct path_search *search; /* until MAIL is accepted (utx_start) */
	struct upstream *up;
	struct upstream_mail_params mail;
	char from[SMTP_PATH_MAX + 1];
	const char **rcpts;
	unsigned nrcpts, cap;
	unsigned sent, answered, accepted; /* on the current session */
	bool data_asked, data_sent;
	struct upstream_info info;  /* where MAIL was accepted */
	bool have_info;
	char log_id[32];
	/* The provider's sender identity (headers.h): From: and fields to strip. */
	struct header_rules rules;
	struct header_sink sink;
	struct header_filter *headers; /* NULL: the body goes straight out */
	bool end_waiting;           /* the end of data waits for the filter's last bytes */
};

static const struct upstream_callbacks utx_callbacks;

static void enter_state(struct utx *t, enum utx_state next)
{
	log_debug("id=%s utx=%s->%s", t->log_id, state_names[t->state], state_names[next]);
	t->state = next;
}

static struct utx *utx_new(const struct upstream_mail_params *mail, const char *log_id,
    const struct utx_events *events, void *arg)
{
	struct utx *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->ev = events;
	t->arg = arg;
	t->mail = *mail;
	snprintf(t->from, sizeof(t->from), "%s", mail->from);
	t->mail.from = t->from;
	snprintf(t->log_id, sizeof(t->log_id), "%s", log_id);
	return t;
}

/* With every recipient refused, DATA is not worth a round trip: the
 * same answer the provider would give. */
static void refuse_data(struct utx *t)
{
	struct smtp_reply r = { .code = 554, .enhanced = "5.5.1", .text = "No valid recipients", .complete = true };

	t->data_asked = false;
	t->ev->data(t->arg, &r);
}

/* A recipient past the provider's max_recipients is answered in its turn
 * (after the replies in flight) as a provider would (RFC 5321 4.5.3.1.10):
 * the sender sends it again in another transaction. */
static bool refuse_over_limit(struct utx *t)
{
	const struct provider_cfg *p = upstream_provider(t->up);
	struct smtp_reply r = { .code = 452, .enhanced = "4.5.3", .complete = true };

	if (t->state != UTX_ENVELOPE || t->answered < t->sent)
		return false;
	snprintf(r.text, sizeof(r.text), "Too many recipients for provider %s (max_recipients %u)", p->name,
	    p->max_recipients);
	unsigned i = t->sent++;
	t->answered++;
	t->ev->rcpt(t->arg, i, &r);
	return true;
}

/* Writes the recipients given and not written yet, then DATA behind them,
 * as far as the provider lets commands go before their replies. */
static void pump(struct utx *t)
{
	struct upstream *up = t->up;

	if (up == NULL || (t->state != UTX_MAIL && t->state != UTX_ENVELOPE))
		return;
	unsigned limit = upstream_provider(up)->max_recipients;
	while (t->sent < t->nrcpts) {
		if (limit > 0 && t->sent >= limit) {
			if (!refuse_over_limit(t))
				break;
		} else if (upstream_can_send(up)) {
			upstream_rcpt(up, t->rcpts[t->sent++]);
		} else {
			break;
		}
	}
	if (!t->data_asked || t->data_sent || t->sent < t->nrcpts)
		return;
	if (t->state == UTX_ENVELOPE && t->answered == t->sent && t->accepted == 0) {
		refuse_data(t);
		return;
	}
	if (upstream_can_send(up)) {
		t->data_sent = true;
		upstream_data(up);
	}
}

/* MAIL on a session: from here on its replies are ours. A provider that
 * accepts only its verified sender gets it in MAIL (the null sender of a
 * bounce too: such providers refuse it) and, with sender_header, in From:. */
static void begin(struct utx *t, struct upstream *up)
{
	const struct provider_cfg *p = upstream_provider(up);

	t->up = up;
	t->sent = t->answered = t->accepted = 0;
	t->data_sent = false;
	t->mail.from = p->sender != NULL ? p->sender : t->from;
	t->rules = (struct header_rules){
		.from = p->sender_header ? p->sender : NULL,
		.strip = p->strip_headers,
		.nstrip = p->nstrip_headers,
	};
	upstream_set_callbacks(up, &utx_callbacks, t);
	enter_state(t, UTX_MAIL);
	upstream_mail(up, &t->mail);
	pump(t);
}

/* ---- the path search ---- */

static void on_path_ready(struct path_search *ps, struct upstream *up, void *arg)
{
	struct utx *t = arg;

	t->search = ps;
	begin(t, up);
}

static void on_no_path(const struct smtp_reply *r, const char *error, void *arg)
{
	struct utx *t = arg;

	t->search = NULL;
	t->up = NULL;
	enter_state(t, UTX_OVER);
	t->ev->mail(t->arg, r, error);
}

/* ---- upstream events ---- */

/* A throttling reply backs off the whole provider (path.c says so). */
static void check_throttling(struct utx *t, const char *command, const struct smtp_reply *r)
{
	if (t->env != NULL && pace_is_throttling(r))
		path_throttled(t->env, t->up, t->log_id, command, r);
}

static void on_mail_reply(struct utx *t, const struct smtp_reply *r)
{
	struct path_search *ps = t->search;

	if (r->code / 100 == 2) {
		t->search = NULL;
		if (ps != NULL)
			path_search_accepted(ps);
		upstream_get_info(t->up, &t->info);
		t->have_info = true;
		enter_state(t, UTX_ENVELOPE);
		t->ev->mail(t->arg, r, NULL);
		pump(t);
		return;
	}
	if (ps == NULL) {
		enter_state(t, UTX_OVER);
		upstream_abort(t->up); /* what was piped behind MAIL is moot */
		t->up = NULL;
		t->ev->mail(t->arg, r, NULL);
		return;
	}
	/* The search decides: the next candidate, or the end. */
	t->up = NULL;
	enter_state(t, UTX_SEARCH);
	path_search_refused(ps, r);
}

static void on_failed(struct upstream *up, void *arg, enum upstream_fail cls, const char *reason);

static char *sink_space(void *up, size_t need, size_t *room)
{
	return upstream_body_space(up, need, room);
}

static void sink_commit(void *up, size_t n)
{
	upstream_body_commit(up, n);
}

/* The body is about to flow: through the header filter when the
 * provider's rules change anything. False when the session is lost. */
static bool start_headers(struct utx *t)
{
	if (!header_rules_active(&t->rules))
		return true;
	t->sink = (struct header_sink){ .space = sink_space, .commit = sink_commit, .ctx = t->up };
	if ((t->headers = header_filter_new(&t->rules, &t->sink)) != NULL)
		return true;
	on_failed(t->up, t, UPSTREAM_FAIL_PROTOCOL, "out of memory for the header filter");
	return false;
}

static void on_envelope_reply(struct utx *t, const struct smtp_reply *r)
{
	/* Replies come back in the order the commands went: RCPTs, DATA. */
	if (t->answered < t->sent) {
		check_throttling(t, "RCPT", r);
		unsigned i = t->answered++;
		t->accepted += r->code / 100 == 2;
		t->ev->rcpt(t->arg, i, r);
		pump(t);
		return;
	}
	check_throttling(t, "DATA", r);
	t->data_asked = t->data_sent = false;
	if (r->code == 354) {
		if (!start_headers(t))
			return;
		enter_state(t, UTX_BODY);
	}
	t->ev->data(t->arg, r);
}

static void on_reply(struct upstream *up, void *arg, const struct smtp_reply *r)
{
	struct utx *t = arg;
	(void)up;

	switch (t->state) {
	case UTX_MAIL:
		on_mail_reply(t, r);
		return;
	case UTX_ENVELOPE:
		on_envelope_reply(t, r);
		return;
	case UTX_DOT:
		enter_state(t, UTX_DONE);
		check_throttling(t, "end_of_data", r);
		if (t->env != NULL && r->code / 100 == 2)
			pace_accepted(t->env->pace, upstream_provider(t->up));
		t->ev->end(t->arg, r);
		return;
	case UTX_RSET:
		enter_state(t, UTX_DONE);
		if (r->code / 100 != 2) {
			upstream_abort(t->up); /* a session that cannot reset is not reused */
			t->up = NULL;
		}
		t->ev->reset(t->arg);
		return;
	default:
		/* upstream.c answers only commands in flight: none is in these states. */
		log_error("id=%s provider reply %d in state %s", t->log_id, r->code, state_names[t->state]);
		return;
	}
}

static void on_writable(struct upstream *up, void *arg)
{
	struct utx *t = arg;

	if (t->end_waiting) {
		if (header_filter_end(t->headers)) {
			t->end_waiting = false;
			upstream_body_end(up);
		}
		return;
	}
	t->ev->writable(t->arg);
}

static void on_failed(struct upstream *up, void *arg, enum upstream_fail cls, const char *reason)
{
	struct utx *t = arg;
	struct upstream_info info;

	t->up = NULL;
	if (t->state == UTX_MAIL && t->search != NULL) {
		enter_state(t, UTX_SEARCH);
		path_search_lost(t->search, cls, reason); /* it logs and counts the attempt */
		return;
	}
	upstream_get_info(up, &info);
	metrics_attempt(info.provider, info.port, info.mode, upstream_fail_name(cls));
	upstream_abort(up);
	enter_state(t, UTX_OVER);
	t->ev->failed(t->arg, cls, reason);
}

static const struct upstream_callbacks utx_callbacks = {
	.reply = on_reply,
	.writable = on_writable,
	.failed = on_failed,
};

/* ---- public ---- */

struct utx *utx_start(const struct path_env *env, struct provider_cfg *const *providers, unsigned nproviders,
    double max_wait, const struct upstream_mail_params *mail, const char *log_id, const struct utx_events *events,
    void *arg)
{
	struct utx *t = utx_new(mail, log_id, events, arg);

	if (t == NULL)
		return NULL;
	t->env = env;
	/* A pooled session may be handed over (and MAIL sent) right here. */
	struct path_search *ps = path_search_start(env, providers, nproviders, max_wait, log_id, on_path_ready, on_no_path, t);
	if (ps == NULL) {
		free(t);
		return NULL;
	}
	t->search = ps;
	return t;
}

struct utx *utx_start_on(struct upstream *up, const struct upstream_mail_params *mail, const char *log_id,
    const struct utx_events *events, void *arg)
{
	struct utx *t = utx_new(mail, log_id, events, arg);

	if (t != NULL)
		begin(t, up);
	return t;
}

bool utx_rcpt(struct utx *t, const char *to)
{
	if (t->nrcpts == t->cap) {
		unsigned cap = t->cap ? t->cap * 2 : 8;
		const char **grown = realloc(t->rcpts, cap * sizeof(*grown));
		if (grown == NULL)
			return false;
		t->rcpts = grown;
		t->cap = cap;
	}
	t->rcpts[t->nrcpts++] = to;
	pump(t);
	return true;
}

void utx_data(struct utx *t)
{
	t->data_asked = true;
	pump(t);
}

bool utx_can_pipe(const struct utx *t)
{
	return t->up != NULL && (t->state == UTX_MAIL || t->state == UTX_ENVELOPE) && upstream_can_send(t->up);
}

char *utx_body_space(struct utx *t, size_t need, size_t *room)
{
	if (t->headers != NULL)
		return header_filter_space(t->headers, need, room);
	return upstream_body_space(t->up, need, room);
}

void utx_body_commit(struct utx *t, size_t n)
{
	if (t->headers != NULL)
		header_filter_commit(t->headers, n);
	else
		upstream_body_commit(t->up, n);
}

void utx_end(struct utx *t)
{
	enter_state(t, UTX_DOT);
	if (t->headers != NULL && !header_filter_end(t->headers)) {
		t->end_waiting = true; /* on_writable ends it */
		return;
	}
	upstream_body_end(t->up);
}

void utx_reset(struct utx *t)
{
	enter_state(t, UTX_RSET);
	upstream_rset(t->up);
}

bool utx_info(const struct utx *t, struct upstream_info *info)
{
	if (t == NULL || !t->have_info)
		return false;
	*info = t->info;
	return true;
}

void utx_free(struct utx *t, struct pool *pool)
{
	if (t == NULL)
		return;
	if (t->search != NULL)
		path_search_cancel(t->search); /* the session handed over is still the search's */
	else if (t->state == UTX_BODY || t->state == UTX_DOT)
		upstream_abort(t->up);
	else if (t->up != NULL && pool != NULL)
		pool_put(pool, t->up); /* closed there unless between transactions */
	else
		upstream_close(t->up);
	header_filter_free(t->headers);
	free(t->rcpts);
	free(t);
}

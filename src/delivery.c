/*
 * delivery.c: see delivery.h.
 */
#include "delivery.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "pool.h"

#define DELIVERY_STATES(X) \
	X(PATH)      /* looking for a session whose MAIL the provider accepts */ \
	X(ENVELOPE)  /* RCPTs and DATA going out, their replies coming back */ \
	X(BODY)      /* the spooled data streaming to the provider */ \
	X(DOT)       /* end of data sent, waiting for the verdict */ \
	X(DONE)      /* the transaction is over: the session is reusable */

enum delivery_state {
#define X(s) D_##s,
	DELIVERY_STATES(X)
#undef X
};

static const char *const state_names[] = {
#define X(s) #s,
	DELIVERY_STATES(X)
#undef X
};

struct delivery {
	enum delivery_state state;
	struct runtime *rt;
	struct spool *sp;
	struct spool_msg *m;
	struct path_search *search;
	struct upstream *up;
	bool *accepted;            /* per recipient, this attempt */
	bool *logged;              /* per recipient: its line for this attempt is written */
	struct upstream_info info; /* the session of this attempt, kept for log lines */
	bool have_info;
	unsigned *sent;            /* recipient indices in the order their RCPTs went out */
	unsigned next;             /* next recipient index to consider sending */
	unsigned nsent, nreplied;
	bool data_sent;
	bool finished;             /* done() was called */
	FILE *data;
	ev_tstamp started;
	char error[300];
	delivery_done_fn done;
	void *done_arg;
};

static void enter_state(struct delivery *d, enum delivery_state next)
{
	log_debug("id=%s delivery=%s->%s", d->m->id, state_names[d->state], state_names[next]);
	d->state = next;
}

/* One line per recipient and attempt: what became of it, and where. */
static void log_rcpt(struct delivery *d, unsigned i, const char *result, const char *reply)
{
	char to[SMTP_PATH_MAX + 8], text[400], where[300];

	if (d->logged[i])
		return;
	d->logged[i] = true;
	upstream_info_format(d->have_info ? &d->info : NULL, where, sizeof(where));
	log_info("rcpt id=%s to=%s %s result=%s attempt=%u reply=%s", d->m->id,
	    log_quote(to, sizeof(to), d->m->rcpts[i].addr), where, result, d->m->attempts + 1,
	    log_quote(text, sizeof(text), reply));
}

static const char *rcpt_result(int state)
{
	return state == RCPT_DONE ? "delivered" : state == RCPT_FAILED ? "failed" : "deferred";
}

/* The attempt is over: every recipient still waiting has its line (why
 * it waits), and the queue settles the message. */
static void finish(struct delivery *d)
{
	if (d->finished)
		return;
	d->finished = true;
	for (unsigned i = 0; i < d->m->nrcpts; i++)
		if (d->m->rcpts[i].state == RCPT_PENDING)
			log_rcpt(d, i, "deferred", d->error);
	d->done(d, d->done_arg);
}

/* The recipients accepted in this attempt get the verdict's line. */
static void log_accepted(struct delivery *d, const char *reply)
{
	for (unsigned i = 0; i < d->m->nrcpts; i++)
		if (d->accepted[i])
			log_rcpt(d, i, rcpt_result(d->m->rcpts[i].state), reply);
}

static void set_error_from_reply(struct delivery *d, const char *what, const struct smtp_reply *r)
{
	snprintf(d->error, sizeof(d->error), "%.60s: %d %s%s%.200s", what, r->code, r->enhanced,
	    r->enhanced[0] ? " " : "", r->text);
}

/* Marks the recipients accepted in this attempt with the verdict. */
static void settle_accepted(struct delivery *d, int state)
{
	for (unsigned i = 0; i < d->m->nrcpts; i++)
		if (d->accepted[i])
			d->m->rcpts[i].state = state;
}

static bool any_accepted(const struct delivery *d)
{
	for (unsigned i = 0; i < d->m->nrcpts; i++)
		if (d->accepted[i])
			return true;
	return false;
}

/* ---- the body ---- */

static void pump_data(struct delivery *d)
{
	for (;;) {
		size_t room;
		char *space = upstream_body_space(d->up, 1, &room);
		if (room == 0)
			return; /* resumed by `writable` */
		size_t n = fread(space, 1, room, d->data);
		upstream_body_commit(d->up, n);
		if (n < room) {
			if (ferror(d->data)) {
				snprintf(d->error, sizeof(d->error), "cannot read the spooled message: %s", strerror(errno));
				finish(d);
				return;
			}
			enter_state(d, D_DOT);
			upstream_body_end(d->up);
			return;
		}
	}
}

/* ---- the envelope ---- */

/* Writes the pending recipients, then DATA behind them, as far as the
 * provider lets commands go before their replies: all in one flight when
 * it pipelines, one at a time otherwise. */
static void write_envelope(struct delivery *d, struct upstream *up)
{
	struct spool_msg *m = d->m;

	while (d->next < m->nrcpts && upstream_can_send(up)) {
		if (m->rcpts[d->next].state == RCPT_PENDING) {
			d->sent[d->nsent++] = d->next;
			upstream_rcpt(up, m->rcpts[d->next].addr);
		}
		d->next++;
	}
	if (d->next == m->nrcpts && !d->data_sent && d->nreplied < d->nsent && upstream_can_send(up)) {
		d->data_sent = true;
		upstream_data(up);
	}
}

/* Goes on with the envelope after a reply: more to write, or (every
 * recipient answered, DATA not sent yet) DATA or the end of the attempt. */
static void send_envelope(struct delivery *d)
{
	write_envelope(d, d->up);
	if (d->data_sent || d->next < d->m->nrcpts || d->nreplied < d->nsent)
		return;
	if (!any_accepted(d)) {
		finish(d); /* no recipient accepted this time */
		return;
	}
	d->data_sent = true;
	upstream_data(d->up);
}

static void on_rcpt_reply(struct delivery *d, const struct smtp_reply *r)
{
	unsigned i = d->sent[d->nreplied++];
	struct spool_rcpt *rc = &d->m->rcpts[i];

	if (r->code / 100 == 2) {
		d->accepted[i] = true;
	} else {
		set_error_from_reply(d, rc->addr, r);
		if (r->code >= 500)
			rc->state = RCPT_FAILED;
		log_rcpt(d, i, rcpt_result(rc->state), d->error);
	}
	send_envelope(d);
}

static void on_data_reply(struct delivery *d, const struct smtp_reply *r)
{
	if (r->code == 354) {
		d->data = spool_open_data(d->sp, d->m);
		if (d->data == NULL) {
			snprintf(d->error, sizeof(d->error), "cannot open the spooled message: %s", strerror(errno));
			finish(d);
			return;
		}
		enter_state(d, D_BODY);
		pump_data(d);
		return;
	}
	/* With every recipient refused, their replies say why, not DATA's. */
	if (any_accepted(d))
		set_error_from_reply(d, "DATA", r);
	if (r->code >= 500)
		settle_accepted(d, RCPT_FAILED);
	log_accepted(d, d->error);
	finish(d);
}

static void on_verdict(struct delivery *d, const struct smtp_reply *r)
{
	enter_state(d, D_DONE);
	/* A 250 here must not hide why other recipients failed or wait. */
	if (r->code / 100 != 2 || d->error[0] == '\0')
		set_error_from_reply(d, "end of data", r);
	if (r->code / 100 == 2)
		settle_accepted(d, RCPT_DONE);
	else if (r->code >= 500)
		settle_accepted(d, RCPT_FAILED);
	char verdict[SMTP_REPLY_TEXT_MAX + 8];
	snprintf(verdict, sizeof(verdict), "%d %s", r->code, r->text);
	log_accepted(d, verdict);
	finish(d);
}

/* ---- upstream callbacks ---- */

static void on_reply(struct upstream *up, void *arg, const struct smtp_reply *r)
{
	struct delivery *d = arg;
	(void)up;

	switch (d->state) {
	case D_ENVELOPE:
		if (d->nreplied < d->nsent)
			on_rcpt_reply(d, r);
		else
			on_data_reply(d, r);
		return;
	case D_DOT:
		on_verdict(d, r);
		return;
	default:
		finish(d);
		return;
	}
}

static void on_writable(struct upstream *up, void *arg)
{
	(void)up;
	pump_data(arg);
}

static void on_failed(struct upstream *up, void *arg, enum upstream_fail cls, const char *reason)
{
	struct delivery *d = arg;
	struct upstream_info info;

	upstream_get_info(up, &info);
	metrics_attempt(info.provider, info.port, info.mode, upstream_fail_name(cls));
	snprintf(d->error, sizeof(d->error), "%s: %s", upstream_fail_name(cls), reason);
	upstream_abort(up);
	d->up = NULL;
	finish(d);
}

static const struct upstream_callbacks delivery_callbacks = {
	.ready = NULL,
	.reply = on_reply,
	.writable = on_writable,
	.failed = on_failed,
};

/* ---- the path ---- */

/* The path search wrote MAIL on an idle session: the envelope follows in
 * the same flight. NULL: that session failed, and what was piped with it. */
static void on_mail_sent(struct upstream *up, void *arg)
{
	struct delivery *d = arg;

	memset(d->accepted, 0, d->m->nrcpts * sizeof(*d->accepted));
	d->next = d->nsent = d->nreplied = 0;
	d->data_sent = false;
	if (up != NULL)
		write_envelope(d, up);
}

static void on_path(struct upstream *up, const struct smtp_reply *r, const char *error, void *arg)
{
	struct delivery *d = arg;
	struct spool_msg *m = d->m;

	d->search = NULL;
	if (up == NULL) {
		if (r != NULL) {
			set_error_from_reply(d, "MAIL", r);
			if (r->code >= 500)
				for (unsigned i = 0; i < m->nrcpts; i++)
					if (m->rcpts[i].state == RCPT_PENDING)
						m->rcpts[i].state = RCPT_FAILED;
		} else {
			snprintf(d->error, sizeof(d->error), "no path: %s", error);
		}
		finish(d);
		return;
	}
	d->up = up;
	upstream_get_info(up, &d->info);
	d->have_info = true;
	upstream_set_callbacks(up, &delivery_callbacks, d);
	enter_state(d, D_ENVELOPE);
	send_envelope(d); /* what was piped behind MAIL is in flight already */
}

/* ---- public ---- */

struct delivery *delivery_start(struct runtime *rt, struct spool *sp, struct spool_msg *m,
    struct provider_cfg *const *providers, unsigned nproviders, delivery_done_fn done, void *arg)
{
	struct delivery *d = calloc(1, sizeof(*d));

	if (d == NULL || (d->accepted = calloc(m->nrcpts + 1, sizeof(bool))) == NULL ||
	    (d->logged = calloc(m->nrcpts + 1, sizeof(bool))) == NULL ||
	    (d->sent = calloc(m->nrcpts + 1, sizeof(unsigned))) == NULL) {
		if (d != NULL) {
			free(d->accepted);
			free(d->logged);
		}
		free(d);
		return NULL;
	}
	d->rt = runtime_ref(rt);
	d->sp = sp;
	d->m = m;
	d->done = done;
	d->done_arg = arg;
	d->started = ev_now(rt->path.loop);
	struct upstream_mail_params mp = {
		.from = m->from,
		.size = m->size,
		.body_8bitmime = m->body_8bit,
		.smtputf8 = m->smtputf8,
	};
	d->search = path_search_start(&rt->path, providers, nproviders, &mp, m->id, on_mail_sent, on_path, d);
	if (d->search == NULL) {
		d->finished = true;
		delivery_free(d);
		return NULL;
	}
	return d;
}

const char *delivery_error(const struct delivery *d)
{
	return d->error;
}

void delivery_set_error(struct delivery *d, const char *error)
{
	snprintf(d->error, sizeof(d->error), "%s", error);
}

void delivery_log(const struct delivery *d, const char *result)
{
	const struct spool_msg *m = d->m;
	char from[SMTP_PATH_MAX + 8], text[400], where[300];

	upstream_info_format(d->have_info ? &d->info : NULL, where, sizeof(where));
	log_info("message id=%s from=%s rcpts=%u size=%llu %s result=%s attempts=%u reply=%s duration=%.3fs", m->id,
	    log_quote(from, sizeof(from), m->from), m->nrcpts, (unsigned long long)m->size, where, result, m->attempts,
	    log_quote(text, sizeof(text), d->error), ev_now(d->rt->path.loop) - d->started);
}

void delivery_free(struct delivery *d)
{
	path_search_cancel(d->search);
	if (d->up != NULL) {
		if (d->state == D_DONE)
			pool_put(d->rt->path.pool, d->up); /* between transactions: reusable */
		else if (d->state == D_BODY || d->state == D_DOT)
			upstream_abort(d->up); /* never complete a message we stopped sending */
		else
			upstream_close(d->up);
	}
	if (d->data != NULL)
		fclose(d->data);
	runtime_unref(d->rt);
	free(d->accepted);
	free(d->logged);
	free(d->sent);
	free(d);
}

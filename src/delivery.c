/*
 * delivery.c: see delivery.h.
 */
#include "delivery.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "utx.h"

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
	unsigned attempt;          /* this attempt's number (m->attempts grows when it is settled) */
	struct utx *utx;           /* this attempt's transaction with the provider */
	bool *accepted;            /* per recipient, this round */
	bool *again;               /* per recipient: "452 4.5.3", for the next round */
	bool *logged;              /* per recipient: its line for this attempt is written */
	struct upstream_info info; /* the session of this attempt, kept for log lines */
	bool have_info;
	unsigned *sent;            /* recipient indices in the order their RCPTs were given */
	unsigned nsent;            /* RCPTs given in this round */
	struct provider_cfg *const *providers;
	unsigned nproviders;
	bool finished;             /* done() was called */
	FILE *data;
	ev_tstamp started;
	char error[300];
	char failure[300];         /* the reply that failed the first recipient to fail in this attempt */
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
	    log_quote(to, sizeof(to), d->m->rcpts[i].addr), where, result, d->attempt,
	    log_quote(text, sizeof(text), reply));
}

static const char *rcpt_result(int state)
{
	return state == RCPT_DONE ? "delivered" : state == RCPT_FAILED ? "failed" : "deferred";
}

/* The attempt is over: the queue settles the message (and, through
 * delivery_log(), writes the lines of the recipients still waiting, once
 * it knows whether they wait or expire). */
static void finish(struct delivery *d)
{
	if (d->finished)
		return;
	d->finished = true;
	d->done(d, d->done_arg);
}

/* Recipient i failed for good because of the reply in d->error; the
 * first such reply is the attempt's failure, which a later 250 to other
 * recipients must not replace. */
static void fail_rcpt(struct delivery *d, unsigned i)
{
	d->m->rcpts[i].state = RCPT_FAILED;
	if (d->failure[0] == '\0')
		snprintf(d->failure, sizeof(d->failure), "%s", d->error);
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

/* The recipients accepted in this round have the verdict of the end of
 * data (or of a refused DATA): delivered, failed for good, or still
 * pending (a 4xx). */
static void settle_accepted(struct delivery *d, const struct smtp_reply *r)
{
	for (unsigned i = 0; i < d->m->nrcpts; i++) {
		if (!d->accepted[i])
			continue;
		if (r->code / 100 == 2)
			d->m->rcpts[i].state = RCPT_DONE;
		else if (r->code >= 500)
			fail_rcpt(d, i);
	}
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
		char *space = utx_body_space(d->utx, 1, &room);
		if (room == 0)
			return; /* resumed by `writable` */
		size_t n = fread(space, 1, room, d->data);
		utx_body_commit(d->utx, n);
		if (n < room) {
			if (ferror(d->data)) {
				snprintf(d->error, sizeof(d->error), "cannot read the spooled message: %s", strerror(errno));
				finish(d);
				return;
			}
			enter_state(d, D_DOT);
			utx_end(d->utx);
			return;
		}
	}
}

/* ---- the transaction's events ---- */

static bool any_again(const struct delivery *d);
static bool round_progressed(const struct delivery *d);
static void next_round(struct delivery *d);

static void on_mail(void *arg, const struct smtp_reply *r, const char *error)
{
	struct delivery *d = arg;
	struct spool_msg *m = d->m;

	if (r != NULL && r->code / 100 == 2) {
		d->have_info = utx_info(d->utx, &d->info);
		enter_state(d, D_ENVELOPE); /* what was piped behind MAIL is in flight already */
		return;
	}
	if (r != NULL) {
		set_error_from_reply(d, "MAIL", r);
		if (r->code >= 500)
			for (unsigned i = 0; i < m->nrcpts; i++)
				if (m->rcpts[i].state == RCPT_PENDING)
					fail_rcpt(d, i);
	} else {
		snprintf(d->error, sizeof(d->error), "no path: %s", error);
	}
	finish(d);
}

static void on_rcpt(void *arg, unsigned n, const struct smtp_reply *r)
{
	struct delivery *d = arg;
	unsigned i = d->sent[n];
	struct spool_rcpt *rc = &d->m->rcpts[i];

	if (r->code / 100 == 2) {
		d->accepted[i] = true;
		return;
	}
	if (r->code == 452 && strcmp(r->enhanced, "4.5.3") == 0) {
		d->again[i] = true; /* too many for one transaction: the next round */
		return;
	}
	set_error_from_reply(d, rc->addr, r);
	if (r->code >= 500)
		fail_rcpt(d, i);
	log_rcpt(d, i, rcpt_result(rc->state), d->error);
}

static void on_data(void *arg, const struct smtp_reply *r)
{
	struct delivery *d = arg;

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
	/* With every recipient of this round refused, their replies say why,
	 * not DATA's; and the recipients past max_recipients still have their
	 * own round, after an RSET that keeps the session. */
	if (!any_accepted(d)) {
		if (any_again(d) && round_progressed(d)) {
			enter_state(d, D_DONE);
			utx_reset(d->utx);
			return;
		}
		finish(d);
		return;
	}
	set_error_from_reply(d, "DATA", r);
	settle_accepted(d, r);
	log_accepted(d, d->error);
	finish(d);
}

static void on_reset(void *arg)
{
	next_round(arg);
}

static void on_end(void *arg, const struct smtp_reply *r)
{
	struct delivery *d = arg;

	enter_state(d, D_DONE);
	/* A 250 here must not hide why other recipients failed or wait. */
	if (r->code / 100 != 2 || d->error[0] == '\0')
		set_error_from_reply(d, "end of data", r);
	settle_accepted(d, r);
	char verdict[SMTP_REPLY_TEXT_MAX + 8];
	snprintf(verdict, sizeof(verdict), "%d %s", r->code, r->text);
	log_accepted(d, verdict);
	if (r->code / 100 == 2 && any_again(d)) {
		next_round(d);
		return;
	}
	finish(d);
}

static void on_writable(void *arg)
{
	pump_data(arg);
}

static void on_failed(void *arg, enum upstream_fail cls, const char *reason)
{
	struct delivery *d = arg;

	snprintf(d->error, sizeof(d->error), "%s: %s", upstream_fail_name(cls), reason);
	finish(d);
}

static const struct utx_events delivery_events = {
	.mail = on_mail,
	.rcpt = on_rcpt,
	.data = on_data,
	.writable = on_writable,
	.end = on_end,
	.reset = on_reset,
	.failed = on_failed,
};

/* ---- rounds: one transaction each ---- */

/* A transaction for the pending recipients (the first round) or for those
 * the provider could not take in the last one; false when out of memory. */
static bool start_round(struct delivery *d, bool first)
{
	struct spool_msg *m = d->m;
	struct upstream_mail_params mp = {
		.from = m->from,
		.size = m->size,
		.body_8bitmime = m->body_8bit,
		.smtputf8 = m->smtputf8,
	};

	/* The whole envelope at once: it goes in one flight when the provider
	 * pipelines (behind MAIL on a pooled session too). */
	d->utx = utx_start(&d->rt->path, d->providers, d->nproviders, 0, &mp, m->id, &delivery_events, d);
	bool ok = d->utx != NULL;
	unsigned n = 0;
	d->nsent = 0;
	for (unsigned i = 0; ok && i < m->nrcpts; i++) {
		bool wanted = m->rcpts[i].state == RCPT_PENDING && (first || d->again[i]);
		d->accepted[i] = d->again[i] = false;
		if (wanted && (ok = utx_rcpt(d->utx, m->rcpts[i].addr)))
			d->sent[n++] = i;
	}
	d->nsent = n;
	if (ok)
		utx_data(d->utx);
	return ok;
}

static bool any_again(const struct delivery *d)
{
	for (unsigned i = 0; i < d->m->nrcpts; i++)
		if (d->again[i] && d->m->rcpts[i].state == RCPT_PENDING)
			return true;
	return false;
}

/* Whether some recipient of this round had its answer (accepted or
 * refused) rather than "too many": without it another round would be
 * the same, forever (a provider whose own limit is below ours). */
static bool round_progressed(const struct delivery *d)
{
	for (unsigned n = 0; n < d->nsent; n++)
		if (!d->again[d->sent[n]])
			return true;
	return false;
}

/* The provider took part of the envelope: the rest goes in another
 * transaction at once, on the session just given back to the pool. */
static void next_round(struct delivery *d)
{
	utx_free(d->utx, d->rt->path.pool);
	d->utx = NULL;
	if (d->data != NULL) {
		fclose(d->data);
		d->data = NULL;
	}
	enter_state(d, D_PATH);
	if (!start_round(d, false)) {
		snprintf(d->error, sizeof(d->error), "out of memory");
		finish(d);
	}
}

/* ---- public ---- */

struct delivery *delivery_start(struct runtime *rt, struct spool *sp, struct spool_msg *m,
    struct provider_cfg *const *providers, unsigned nproviders, delivery_done_fn done, void *arg)
{
	struct delivery *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->rt = runtime_ref(rt);
	d->sp = sp;
	d->m = m;
	d->attempt = m->attempts + 1;
	d->providers = providers;
	d->nproviders = nproviders;
	d->done = done;
	d->done_arg = arg;
	d->started = ev_now(rt->path.loop);
	if ((d->accepted = calloc(m->nrcpts + 1, sizeof(bool))) == NULL ||
	    (d->again = calloc(m->nrcpts + 1, sizeof(bool))) == NULL ||
	    (d->logged = calloc(m->nrcpts + 1, sizeof(bool))) == NULL ||
	    (d->sent = calloc(m->nrcpts + 1, sizeof(unsigned))) == NULL || !start_round(d, true)) {
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

const char *delivery_failure(const struct delivery *d)
{
	return d->failure;
}

void delivery_expire(struct delivery *d, const char *reason)
{
	delivery_set_error(d, reason);
	for (unsigned i = 0; i < d->m->nrcpts; i++) {
		if (d->m->rcpts[i].state != RCPT_PENDING)
			continue;
		fail_rcpt(d, i);
		log_rcpt(d, i, "failed", reason);
	}
}

void delivery_set_error(struct delivery *d, const char *error)
{
	snprintf(d->error, sizeof(d->error), "%s", error);
}

void delivery_log(struct delivery *d, const char *result)
{
	const struct spool_msg *m = d->m;
	char from[SMTP_PATH_MAX + 8], text[400], where[300];

	/* Each recipient still waiting has its line (why it waits) first. */
	for (unsigned i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == RCPT_PENDING)
			log_rcpt(d, i, "deferred", d->error);
	upstream_info_format(d->have_info ? &d->info : NULL, where, sizeof(where));
	log_info("message id=%s from=%s rcpts=%u size=%llu %s result=%s attempts=%u reply=%s duration=%.3fs", m->id,
	    log_quote(from, sizeof(from), m->from), m->nrcpts, (unsigned long long)m->size, where, result, m->attempts,
	    log_quote(text, sizeof(text), d->error), ev_now(d->rt->path.loop) - d->started);
}

void delivery_free(struct delivery *d)
{
	utx_free(d->utx, d->rt->path.pool); /* reusable between transactions; a cut body is never completed */
	if (d->data != NULL)
		fclose(d->data);
	runtime_unref(d->rt);
	free(d->accepted);
	free(d->again);
	free(d->logged);
	free(d->sent);
	free(d);
}

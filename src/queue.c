/*
 * queue.c: see queue.h. Entries live in an array; one timer wakes the
 * scheduler at the earliest due time. A delivery is one attempt at one
 * message: path (MAIL accepted) -> RCPT for each pending recipient ->
 * DATA -> the spooled data -> the verdict, then the entry's state is
 * saved and the next try computed.
 */
#include "queue.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "commit.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"

struct delivery;

struct qentry {
	struct spool_msg m;
	struct delivery *busy;
	int slot;                  /* the route's first provider (index), -1: none (held) */
	unsigned slot_gen;         /* the configuration generation slot was computed for */
};

struct queue_waiter {
	struct queue *q;
	char id[ID_LEN + 1];
	queue_accepted_cb cb;
	void *arg;
	struct queue_waiter *next;
};

struct queue {
	struct runtime **current;
	struct spool *sp;
	struct committer *committer;
	struct qentry **entries;
	unsigned n, cap;
	struct queue_waiter *waiters;
	unsigned pending_commits;
	ev_timer wake;
	queue_handoff_fn handoff;  /* an acceptor: committed ids go to the queue owner */
	void *handoff_arg;
	bool held_logged;
	bool stopping;             /* queue_free() is running: start nothing */
	unsigned gen;              /* configuration generation, bumped on reload */
	unsigned *active;          /* deliveries running per provider slot */
	unsigned nactive;
	unsigned long delivered, failed, deferred, accepted;
};

struct delivery {
	struct queue *q;
	struct qentry *e;
	struct runtime *rt;
	unsigned slot;             /* index of the route's first provider, for the concurrency limit */
	struct path_search *search;
	struct upstream *up;
	bool *accepted;            /* per recipient, this attempt */
	unsigned *sent;            /* recipient indices in the order their RCPTs went out */
	unsigned next;             /* next recipient index to consider sending */
	unsigned nsent, nreplied;
	bool data_sent;
	enum { D_PATH, D_ENVELOPE, D_BODY, D_DOT, D_DONE } step;
	FILE *data;
	ev_tstamp started;
	struct smtp_reply final;
	bool have_final;
	char error[300];
};

static void schedule(struct queue *q);
static void finish_attempt(struct delivery *d);

static struct ev_loop *loop_of(const struct queue *q)
{
	return (*q->current)->path.loop;
}

/* ---- entries ---- */

static bool add_entry(struct queue *q, struct spool_msg *m)
{
	if (q->n == q->cap) {
		unsigned cap = q->cap ? q->cap * 2 : 64;
		struct qentry **bigger = realloc(q->entries, cap * sizeof(*bigger));
		if (bigger == NULL)
			return false;
		q->entries = bigger;
		q->cap = cap;
	}
	struct qentry *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return false;
	e->m = *m;
	q->entries[q->n++] = e;
	return true;
}

static struct qentry *find_entry(const struct queue *q, const char *id)
{
	for (unsigned i = 0; i < q->n; i++)
		if (strcmp(q->entries[i]->m.id, id) == 0)
			return q->entries[i];
	return NULL;
}

static void drop_entry(struct queue *q, struct qentry *e)
{
	for (unsigned i = 0; i < q->n; i++) {
		if (q->entries[i] == e) {
			q->entries[i] = q->entries[--q->n];
			break;
		}
	}
	spool_msg_free(&e->m);
	free(e);
}

static unsigned pending_rcpts(const struct spool_msg *m)
{
	unsigned n = 0;
	for (unsigned i = 0; i < m->nrcpts; i++)
		n += m->rcpts[i].state == RCPT_PENDING;
	return n;
}

/* ---- committing received messages ---- */

/* Renamed into queue/ and the directory synced: the message is the
 * queue's now, whatever happens to it next. False only when the file is
 * there but unreadable: nobody was told it is queued, so it goes. */
static bool take_committed(struct queue *q, const char *id)
{
	struct spool_msg m;

	if (q->handoff != NULL) {
		q->handoff(id, q->handoff_arg); /* worker 0 delivers it */
		return true;
	}
	if (find_entry(q, id) != NULL)
		return true; /* a rescan took it first */
	if (spool_load(q->sp, id, false, &m)) {
		m.next_try = ev_now(loop_of(q));
		if (!add_entry(q, &m))
			spool_msg_free(&m); /* still on disk for the next start to pick up */
		return true;
	}
	if (!spool_exists(q->sp, id))
		return true; /* taken by a rescan and delivered already */
	spool_remove(q->sp, id);
	return false;
}

static void on_committed(const char *id, bool ok, int err, void *arg)
{
	struct queue *q = arg;

	q->pending_commits--;
	if (ok && !take_committed(q, id)) {
		ok = false;
		err = EIO;
	}
	if (ok)
		q->accepted++;
	for (struct queue_waiter **w = &q->waiters; *w != NULL; w = &(*w)->next) {
		if (strcmp((*w)->id, id) != 0)
			continue;
		struct queue_waiter *found = *w;
		*w = found->next;
		if (found->cb != NULL)
			found->cb(ok, err, found->arg);
		free(found);
		break;
	}
	schedule(q);
}

struct queue_waiter *queue_commit(struct queue *q, struct spool_writer *w, queue_accepted_cb cb, void *arg)
{
	struct queue_waiter *qw = calloc(1, sizeof(*qw));

	if (qw == NULL) {
		spool_discard(w);
		spool_writer_free(w);
		return NULL;
	}
	qw->q = q;
	qw->cb = cb;
	qw->arg = arg;
	snprintf(qw->id, sizeof(qw->id), "%s", spool_writer_id(w));
	if (!committer_submit(q->committer, w)) {
		spool_discard(w);
		spool_writer_free(w);
		free(qw);
		return NULL;
	}
	qw->next = q->waiters;
	q->waiters = qw;
	q->pending_commits++;
	return qw;
}

void queue_waiter_cancel(struct queue_waiter *w)
{
	if (w != NULL)
		w->cb = NULL;
}

unsigned queue_commits_pending(const struct queue *q)
{
	return q->pending_commits;
}

/* ---- ending an attempt ---- */

static double backoff(const struct queue_cfg *qc, unsigned attempts)
{
	double delay = qc->retry_initial * pow(2.0, attempts > 0 ? attempts - 1 : 0);
	uint32_t r = 0;

	if (delay > qc->retry_max)
		delay = qc->retry_max;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = attempts * 2654435761u;
	/* Jitter: 80 % to 100 % of the delay, so retries of a burst spread out. */
	return delay * (0.8 + 0.2 * ((double)r / 4294967296.0));
}

static void log_delivery(const struct delivery *d, const char *result)
{
	const struct spool_msg *m = &d->e->m;
	char from[SMTP_PATH_MAX + 8], text[400];
	struct upstream_info info = { 0 };

	if (d->up != NULL)
		upstream_get_info(d->up, &info);
	log_info("message id=%s from=%s rcpts=%u size=%llu provider=%s address=%s port=%u mode=%s tls=%s cipher=%s "
	    "result=%s attempts=%u reply=%s duration=%.3fs",
	    m->id, log_quote(from, sizeof(from), m->from), m->nrcpts, (unsigned long long)m->size,
	    info.provider ? info.provider : "none", info.address[0] ? info.address : "none", info.port,
	    info.mode ? info.mode : "none", info.tls_version ? info.tls_version : "none",
	    info.tls_cipher ? info.tls_cipher : "none", result, m->attempts,
	    log_quote(text, sizeof(text), d->error), ev_now(loop_of(d->q)) - d->started);
}

/* queue.bounce = sender: a plain-text notice to the envelope sender, from
 * the null sender (so it can never bounce itself), queued like any mail. */
static void bounce(struct queue *q, const struct spool_msg *m, const struct config *cfg)
{
	char text[2048], date[64], msgid[ID_LEN + 1];
	size_t n = 0;
	time_t now = time(NULL);
	struct tm tm;
	struct spool_rcpt to = { .state = RCPT_PENDING };
	struct spool_msg env = { .rcpts = &to, .nrcpts = 1, .received = ev_now(loop_of(q)) };

	if (cfg->queue.bounce != BOUNCE_SENDER || m->from[0] == '\0')
		return;
	id_new(env.id);
	id_new(msgid);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(to.addr, sizeof(to.addr), "%s", m->from);
	n += (size_t)snprintf(text + n, sizeof(text) - n,
	    "From: Mail Delivery System <MAILER-DAEMON@%s>\r\nTo: <%s>\r\nDate: %s\r\n"
	    "Message-ID: <%s@%s>\r\nSubject: Undelivered Mail Returned to Sender\r\n"
	    "Auto-Submitted: auto-replied\r\n\r\n"
	    "Your message %s could not be delivered to these recipients:\r\n\r\n",
	    cfg->relay.hostname, m->from, date, msgid, cfg->relay.hostname, m->id);
	/* Room is kept for the reason line: the text must end in CRLF. */
	for (unsigned i = 0; i < m->nrcpts && n + SMTP_PATH_MAX + 6 < sizeof(text) - 330; i++)
		if (m->rcpts[i].state == RCPT_FAILED)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "  <%s>\r\n", m->rcpts[i].addr);
	snprintf(text + n, sizeof(text) - n, "\r\nReason: %.300s\r\n", m->last_error);
	struct spool_writer *w = spool_create(q->sp, &env);
	if (w == NULL || !spool_write(w, text, strlen(text))) {
		log_error("id=%s cannot queue the bounce: %s", m->id, strerror(errno));
		if (w != NULL) {
			spool_discard(w);
			spool_writer_free(w);
		}
		return;
	}
	if (!committer_submit(q->committer, w)) {
		spool_discard(w);
		spool_writer_free(w);
		return;
	}
	char quoted[SMTP_PATH_MAX + 8];
	log_info("message id=%s bounce=%s to=%s", m->id, env.id, log_quote(quoted, sizeof(quoted), m->from));
	q->pending_commits++;
}

static void settle(struct delivery *d)
{
	struct queue *q = d->q;
	struct spool_msg *m = &d->e->m;
	const struct queue_cfg *qc = &d->rt->path.cfg->queue;
	double now = ev_now(loop_of(q));
	bool any_failed = false;

	for (unsigned i = 0; i < m->nrcpts; i++)
		any_failed |= m->rcpts[i].state == RCPT_FAILED;
	m->attempts++;
	snprintf(m->last_error, sizeof(m->last_error), "%s", d->error);
	if (pending_rcpts(m) > 0 && now - m->received >= qc->max_age) {
		for (unsigned i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].state == RCPT_PENDING)
				m->rcpts[i].state = RCPT_FAILED;
		snprintf(m->last_error, sizeof(m->last_error), "max_age reached (%gs) after %u attempts; last error: %.200s",
		    qc->max_age, m->attempts, d->error);
		snprintf(d->error, sizeof(d->error), "%s", m->last_error);
		any_failed = true;
	}
	if (pending_rcpts(m) == 0) {
		log_delivery(d, any_failed ? "failed" : "delivered");
		metrics_message(any_failed ? "failed" : "delivered");
		metrics_delivery_seconds(now - m->received);
		if (any_failed) {
			q->failed++;
			bounce(q, m, d->rt->path.cfg);
			if (!spool_move_failed(q->sp, m))
				log_error("id=%s cannot move to %s/failed: %s", m->id, spool_dir(q->sp), strerror(errno));
		} else {
			q->delivered++;
			spool_remove(q->sp, m->id);
		}
		drop_entry(q, d->e);
		return;
	}
	m->next_try = now + backoff(qc, m->attempts);
	q->deferred++;
	metrics_message("deferred");
	log_delivery(d, "deferred");
	log_info("message id=%s next_try_in=%.0fs", m->id, m->next_try - now);
	if (!spool_save_state(q->sp, m))
		log_warn("id=%s cannot save the delivery state: %s", m->id, strerror(errno));
	d->e->busy = NULL;
}

static void delivery_free(struct delivery *d)
{
	d->q->active[d->slot]--;
	path_search_cancel(d->search);
	if (d->up != NULL) {
		if (d->step == D_DONE)
			pool_put(d->rt->path.pool, d->up); /* between transactions: reusable */
		else if (d->step == D_BODY || d->step == D_DOT)
			upstream_abort(d->up); /* never complete a message we stopped sending */
		else
			upstream_close(d->up);
	}
	if (d->data != NULL)
		fclose(d->data);
	runtime_unref(d->rt);
	free(d->accepted);
	free(d->sent);
	free(d);
}

static void finish_attempt(struct delivery *d)
{
	struct queue *q = d->q;

	settle(d);
	delivery_free(d);
	schedule(q);
}

static void set_error_from_reply(struct delivery *d, const char *what, const struct smtp_reply *r)
{
	snprintf(d->error, sizeof(d->error), "%.60s: %d %s%s%.200s", what, r->code, r->enhanced, r->enhanced[0] ? " " : "",
	    r->text);
}

/* Marks the recipients accepted in this attempt with the verdict. */
static void settle_accepted(struct delivery *d, int state)
{
	struct spool_msg *m = &d->e->m;
	for (unsigned i = 0; i < m->nrcpts; i++)
		if (d->accepted[i])
			m->rcpts[i].state = state;
}

/* ---- the transaction ---- */

static void send_envelope(struct delivery *d);

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
				finish_attempt(d);
				return;
			}
			d->step = D_DOT;
			upstream_body_end(d->up);
			return;
		}
	}
}

static bool any_accepted(const struct delivery *d)
{
	for (unsigned i = 0; i < d->e->m.nrcpts; i++)
		if (d->accepted[i])
			return true;
	return false;
}

static void on_rcpt_reply(struct delivery *d, const struct smtp_reply *r)
{
	struct spool_rcpt *rc = &d->e->m.rcpts[d->sent[d->nreplied]];

	if (r->code / 100 == 2) {
		d->accepted[d->sent[d->nreplied]] = true;
	} else {
		set_error_from_reply(d, rc->addr, r);
		if (r->code >= 500)
			rc->state = RCPT_FAILED;
	}
	d->nreplied++;
	send_envelope(d);
}

static void on_data_reply(struct delivery *d, const struct smtp_reply *r)
{
	struct spool_msg *m = &d->e->m;

	if (r->code == 354) {
		d->data = spool_open_data(d->q->sp, m);
		if (d->data == NULL) {
			snprintf(d->error, sizeof(d->error), "cannot open the spooled message: %s", strerror(errno));
			finish_attempt(d);
			return;
		}
		d->step = D_BODY;
		pump_data(d);
		return;
	}
	/* With every recipient refused, their replies say why, not DATA's. */
	if (any_accepted(d))
		set_error_from_reply(d, "DATA", r);
	if (r->code >= 500)
		settle_accepted(d, RCPT_FAILED);
	finish_attempt(d);
}

static void on_reply(struct upstream *up, void *arg, const struct smtp_reply *r)
{
	struct delivery *d = arg;
	(void)up;

	switch (d->step) {
	case D_ENVELOPE:
		if (d->nreplied < d->nsent)
			on_rcpt_reply(d, r);
		else
			on_data_reply(d, r);
		return;
	case D_DOT:
		d->step = D_DONE;
		/* A 250 here must not hide why other recipients failed or wait. */
		if (r->code / 100 != 2 || d->error[0] == '\0')
			set_error_from_reply(d, "end of data", r);
		if (r->code / 100 == 2)
			settle_accepted(d, RCPT_DONE);
		else if (r->code >= 500)
			settle_accepted(d, RCPT_FAILED);
		finish_attempt(d);
		return;
	default:
		finish_attempt(d);
		return;
	}
}

/* Writes the pending recipients, then DATA behind them, as far as the
 * provider lets commands go before their replies: all in one flight when
 * it pipelines, one at a time otherwise. */
static void write_envelope(struct delivery *d, struct upstream *up)
{
	struct spool_msg *m = &d->e->m;

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
	if (d->data_sent || d->next < d->e->m.nrcpts || d->nreplied < d->nsent)
		return;
	if (!any_accepted(d)) {
		finish_attempt(d); /* no recipient accepted this time */
		return;
	}
	d->data_sent = true;
	upstream_data(d->up);
}

static void reset_envelope(struct delivery *d)
{
	memset(d->accepted, 0, d->e->m.nrcpts * sizeof(*d->accepted));
	d->next = d->nsent = d->nreplied = 0;
	d->data_sent = false;
}

/* The path search wrote MAIL on an idle session: the envelope follows in
 * the same flight. NULL: that session failed, and what was piped with it. */
static void on_mail_sent(struct upstream *up, void *arg)
{
	struct delivery *d = arg;

	reset_envelope(d);
	if (up != NULL)
		write_envelope(d, up);
}

static void on_writable(struct upstream *up, void *arg)
{
	(void)up;
	pump_data(arg);
}

static void on_failed(struct upstream *up, void *arg, enum upstream_fail cls, const char *reason)
{
	struct delivery *d = arg;

	snprintf(d->error, sizeof(d->error), "%s: %s", upstream_fail_name(cls), reason);
	upstream_abort(up);
	d->up = NULL;
	finish_attempt(d);
}

static const struct upstream_callbacks delivery_callbacks = {
	.ready = NULL,
	.reply = on_reply,
	.writable = on_writable,
	.failed = on_failed,
};

static void on_path(struct upstream *up, const struct smtp_reply *r, const char *error, void *arg)
{
	struct delivery *d = arg;
	struct spool_msg *m = &d->e->m;

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
		finish_attempt(d);
		return;
	}
	d->up = up;
	upstream_set_callbacks(up, &delivery_callbacks, d);
	d->step = D_ENVELOPE;
	send_envelope(d); /* what was piped behind MAIL is in flight already */
}

/* ---- the scheduler ---- */

/* The entry's route, cached per configuration generation: the scheduler
 * looks at every entry on each wake-up, so that look must stay cheap. */
static int entry_slot(struct queue *q, struct qentry *e)
{
	if (e->slot_gen != q->gen) {
		const struct config *cfg = (*q->current)->path.cfg;
		unsigned n;
		const char *route;
		struct provider_cfg *const *providers = config_route_for(cfg, e->m.from, &n, &route);
		e->slot = n == 0 ? -1 : (int)(providers[0] - cfg->providers);
		e->slot_gen = q->gen;
	}
	return e->slot;
}

static bool slot_full(const struct queue *q, int slot)
{
	const struct provider_cfg *p = &(*q->current)->path.cfg->providers[slot];
	return (unsigned)slot < q->nactive && q->active[slot] >= p->max_connections;
}

/* The running-deliveries counter of a slot (NULL when out of memory). */
static unsigned *active_for(struct queue *q, unsigned slot)
{
	if (slot >= q->nactive) {
		unsigned *bigger = realloc(q->active, (slot + 1) * sizeof(*bigger));
		if (bigger == NULL)
			return NULL;
		memset(bigger + q->nactive, 0, (slot + 1 - q->nactive) * sizeof(*bigger));
		q->active = bigger;
		q->nactive = slot + 1;
	}
	return &q->active[slot];
}

static bool start_delivery(struct queue *q, struct qentry *e)
{
	struct runtime *rt = *q->current;
	const struct config *cfg = rt->path.cfg;
	unsigned nproviders;
	const char *route;
	struct provider_cfg *const *providers = config_route_for(cfg, e->m.from, &nproviders, &route);

	if (nproviders == 0)
		return false;
	unsigned slot = (unsigned)(providers[0] - cfg->providers);
	unsigned *active = active_for(q, slot);
	if (active == NULL || *active >= providers[0]->max_connections)
		return false;
	struct delivery *d = calloc(1, sizeof(*d));
	if (d == NULL || (d->accepted = calloc(e->m.nrcpts, sizeof(bool))) == NULL ||
	    (d->sent = calloc(e->m.nrcpts, sizeof(unsigned))) == NULL) {
		if (d != NULL)
			free(d->accepted);
		free(d);
		return false;
	}
	d->q = q;
	d->e = e;
	d->rt = runtime_ref(rt);
	d->slot = slot;
	d->started = ev_now(rt->path.loop);
	struct upstream_mail_params mp = {
		.from = e->m.from,
		.size = e->m.size,
		.body_8bitmime = e->m.body_8bit,
		.smtputf8 = e->m.smtputf8,
	};
	e->busy = d;
	d->search = path_search_start(&rt->path, providers, nproviders, &mp, NULL, e->m.id, on_mail_sent, on_path,
	    d);
	if (d->search == NULL) {
		e->busy = NULL;
		runtime_unref(d->rt);
		free(d->accepted);
		free(d->sent);
		free(d);
		return false;
	}
	(*active)++;
	return true;
}

/* A message is held when its route has no provider (none configured yet). */
static unsigned count_held(struct queue *q)
{
	unsigned n = 0;
	for (unsigned i = 0; i < q->n; i++)
		n += entry_slot(q, q->entries[i]) < 0;
	return n;
}

/* Providers with a free delivery slot. */
static unsigned slots_with_room(const struct queue *q)
{
	unsigned n = 0;
	for (unsigned i = 0; i < (*q->current)->path.cfg->nproviders; i++)
		n += !slot_full(q, (int)i);
	return n;
}

static void schedule(struct queue *q)
{
	struct ev_loop *loop = loop_of(q);
	double now = ev_now(loop), earliest = -1;
	unsigned held = 0, room = slots_with_room(q);
	bool whole_queue = true;

	ev_timer_stop(loop, &q->wake);
	if (q->stopping)
		return;
	for (unsigned i = 0; i < q->n; i++) {
		/* Every provider busy: nothing more can start now, and the end of
		 * a delivery schedules again. A large backlog costs no scan. */
		if (room == 0 && (*q->current)->path.cfg->nproviders > 0) {
			whole_queue = false;
			earliest = now + 1.0;
			break;
		}
		struct qentry *e = q->entries[i];
		if (e->busy != NULL)
			continue;
		int slot = entry_slot(q, e);
		if (slot < 0) {
			held++;
			continue;
		}
		if (e->m.next_try <= now && !slot_full(q, slot) && start_delivery(q, e)) {
			room -= slot_full(q, slot);
			continue;
		}
		/* Not due, or no free connection: look again later. */
		double at = e->m.next_try <= now ? now + 1.0 : e->m.next_try;
		if (earliest < 0 || at < earliest)
			earliest = at;
	}
	if (whole_queue) {
		if (held > 0 && !q->held_logged)
			log_warn("delivery held until a provider is configured: %u messages queued", held);
		q->held_logged = held > 0;
	}
	if (earliest >= 0) {
		ev_timer_set(&q->wake, earliest - now, 0.);
		ev_timer_start(loop, &q->wake);
	}
}

static void on_wake(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	schedule(w->data);
}

/* ---- lifecycle ---- */

/* Takes queue/ID into the queue (at start, or from another worker). */
static bool load_one(struct queue *q, const char *id)
{
	struct spool_msg m;

	if (!spool_load(q->sp, id, false, &m)) {
		log_warn("spool: cannot read %s/queue/%s; left in place", spool_dir(q->sp), id);
		return false;
	}
	if (!add_entry(q, &m)) {
		spool_msg_free(&m);
		return false;
	}
	return true;
}

static void load_spool(struct queue *q)
{
	unsigned n;
	char **ids = spool_list(q->sp, &n);

	for (unsigned i = 0; i < n; i++)
		load_one(q, ids[i]);
	spool_list_free(ids, n);
	log_info("queue loaded spool=%s messages=%u", spool_dir(q->sp), q->n);
}

bool queue_adopt(struct queue *q, const char *id)
{
	if (q->handoff != NULL || find_entry(q, id) != NULL)
		return false;
	/* Gone already: a rescan found it first and it has been delivered. */
	if (!spool_exists(q->sp, id) || !load_one(q, id))
		return false;
	q->accepted++;
	schedule(q);
	return true;
}

static bool committing(const struct queue *q, const char *id)
{
	for (const struct queue_waiter *w = q->waiters; w != NULL; w = w->next)
		if (strcmp(w->id, id) == 0)
			return true;
	return false;
}

static int compare_ids(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

unsigned queue_rescan(struct queue *q)
{
	unsigned n, added = 0;
	char **ids = spool_list(q->sp, &n);
	const char **known = malloc((q->n + 1) * sizeof(*known));

	if (q->handoff != NULL || ids == NULL || known == NULL) {
		free(known);
		spool_list_free(ids, n);
		return 0;
	}
	unsigned nknown = q->n;
	for (unsigned i = 0; i < nknown; i++)
		known[i] = q->entries[i]->m.id;
	qsort(known, nknown, sizeof(*known), compare_ids);
	for (unsigned i = 0; i < n; i++) {
		const char *id = ids[i];
		/* A commit of our own still in progress is not lost: it comes in
		 * through on_committed(). */
		if (bsearch(&id, known, nknown, sizeof(*known), compare_ids) == NULL && !committing(q, id) &&
		    load_one(q, id))
			added++;
	}
	free(known);
	spool_list_free(ids, n);
	if (added > 0) {
		log_info("queue rescan spool=%s adopted=%u messages=%u", spool_dir(q->sp), added, q->n);
		schedule(q);
	}
	return added;
}

static struct queue *queue_create(struct runtime **current, struct spool *sp, queue_handoff_fn handoff, void *arg,
    char *err, size_t errlen)
{
	struct queue *q = calloc(1, sizeof(*q));

	if (q == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	q->current = current;
	q->gen = 1;
	q->sp = sp;
	q->handoff = handoff;
	q->handoff_arg = arg;
	q->committer = committer_new((*current)->path.loop, sp, on_committed, q);
	if (q->committer == NULL) {
		snprintf(err, errlen, "cannot start the commit thread");
		free(q);
		return NULL;
	}
	ev_init(&q->wake, on_wake);
	q->wake.data = q;
	if (handoff != NULL)
		return q; /* an acceptor: the owner loads and delivers */
	load_spool(q);
	if ((*current)->path.cfg->relay.nproviders == 0 && (*current)->path.cfg->nroutes == 0)
		log_warn("no provider configured: mail is accepted and queued; delivery is held until a provider is "
		    "configured and the daemon reloaded");
	schedule(q);
	return q;
}

struct queue *queue_new(struct runtime **current, struct spool *sp, char *err, size_t errlen)
{
	return queue_create(current, sp, NULL, NULL, err, errlen);
}

struct queue *queue_new_acceptor(struct runtime **current, struct spool *sp, queue_handoff_fn handoff, void *arg,
    char *err, size_t errlen)
{
	return queue_create(current, sp, handoff, arg, err, errlen);
}

void queue_free(struct queue *q)
{
	if (q == NULL)
		return;
	q->stopping = true;
	committer_free(q->committer);
	while (q->waiters != NULL) {
		struct queue_waiter *w = q->waiters;
		q->waiters = w->next;
		free(w);
	}
	for (unsigned i = 0; i < q->n; i++) {
		struct qentry *e = q->entries[i];
		if (e->busy != NULL)
			delivery_free(e->busy); /* the message stays queued, its state as last saved */
		spool_msg_free(&e->m);
		free(e);
	}
	ev_timer_stop(loop_of(q), &q->wake);
	free(q->entries);
	free(q->active);
	free(q);
}

void queue_reconfigured(struct queue *q)
{
	q->gen++;
	q->held_logged = false;
	schedule(q);
}

/* ---- control ---- */

unsigned queue_depth(const struct queue *q)
{
	return q->n;
}

static int compare_entries(const void *a, const void *b)
{
	const struct qentry *x = *(struct qentry *const *)a, *y = *(struct qentry *const *)b;
	return x->m.received < y->m.received ? -1 : x->m.received > y->m.received;
}

void queue_list(struct queue *q, FILE *out)
{
	double now = ev_now(loop_of(q));

	qsort(q->entries, q->n, sizeof(*q->entries), compare_entries);
	fprintf(out, "%-12s %8s %-30s %5s %8s %9s %s\n", "ID", "AGE", "SENDER", "RCPTS", "ATTEMPTS", "NEXT_TRY",
	    "LAST_ERROR");
	for (unsigned i = 0; i < q->n; i++) {
		const struct spool_msg *m = &q->entries[i]->m;
		char next[32];
		if (q->entries[i]->busy != NULL)
			snprintf(next, sizeof(next), "now");
		else
			snprintf(next, sizeof(next), "%.0fs", m->next_try > now ? m->next_try - now : 0.0);
		fprintf(out, "%-12s %7.0fs %-30s %2u/%-2u %8u %9s %s\n", m->id, now - m->received,
		    m->from[0] ? m->from : "<>", pending_rcpts(m), m->nrcpts, m->attempts, next,
		    m->last_error[0] ? m->last_error : "-");
	}
}

bool queue_show(struct queue *q, const char *id, FILE *out)
{
	struct qentry *e = find_entry(q, id);
	if (e == NULL)
		return false;
	const struct spool_msg *m = &e->m;
	static const char *const states[] = { "pending", "delivered", "failed" };
	fprintf(out, "id: %s\nfrom: <%s>\nsize: %llu\nreceived: %.0f\nattempts: %u\nnext_try: %.0f\nlast_error: %s\n",
	    m->id, m->from, (unsigned long long)m->size, m->received, m->attempts, m->next_try,
	    m->last_error[0] ? m->last_error : "-");
	for (unsigned i = 0; i < m->nrcpts; i++)
		fprintf(out, "rcpt: <%s> %s\n", m->rcpts[i].addr, states[m->rcpts[i].state]);
	return true;
}

int queue_flush(struct queue *q, const char *id)
{
	int n = 0;
	double now = ev_now(loop_of(q));

	for (unsigned i = 0; i < q->n; i++) {
		struct spool_msg *m = &q->entries[i]->m;
		if (id != NULL && strcmp(m->id, id) != 0)
			continue;
		m->next_try = now;
		n++;
	}
	if (id != NULL && n == 0)
		return -1;
	schedule(q);
	return n;
}

bool queue_delete(struct queue *q, const char *id)
{
	struct qentry *e = find_entry(q, id);
	if (e == NULL)
		return false;
	if (e->busy != NULL) {
		struct delivery *d = e->busy;
		e->busy = NULL;
		delivery_free(d);
	}
	spool_remove(q->sp, id);
	log_info("message id=%s result=deleted by=control", id);
	drop_entry(q, e);
	return true;
}

double queue_oldest_age(const struct queue *q)
{
	double now = ev_now(loop_of(q)), oldest = 0;

	for (unsigned i = 0; i < q->n; i++)
		if (now - q->entries[i]->m.received > oldest)
			oldest = now - q->entries[i]->m.received;
	return oldest;
}

void queue_stats(struct queue *q, FILE *out)
{
	double oldest = queue_oldest_age(q);
	fprintf(out, "queue_depth %u\noldest_age_seconds %.0f\naccepted %lu\ndelivered %lu\ndeferred %lu\nfailed %lu\n"
	    "held %u\n", q->n, oldest, q->accepted, q->delivered, q->deferred, q->failed, count_held(q));
}

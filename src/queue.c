/*
 * queue.c: see queue.h. Entries live in an array; one timer wakes the
 * scheduler at the earliest due time. A delivery (delivery.h) is one
 * attempt at one message; when it ends the entry is settled here: done,
 * failed (moved aside, maybe bounced) or saved with its next try.
 */
#include "queue.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "bounce.h"
#include "commit.h"
#include "delivery.h"
#include "log.h"
#include "metrics.h"
#include "pace.h"

struct qentry {
	struct spool_msg m;
	struct delivery *busy;
	unsigned busy_slot;        /* the provider slot busy counts against */
	struct queue *q;
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
	unsigned char *paced;      /* per slot: what last held it back (enum pace_block), for the log */
	unsigned nactive;
	unsigned kept_failed;      /* messages in failed/ (the gauge) */
};

/* At most this many failed messages are read per control command: the
 * loop waits while they are. */
#define FAILED_BATCH 1000

static void schedule(struct queue *q);

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
	e->q = q;
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
		/* Due now, unless a live attempt (hybrid) saved a later try. */
		if (m.next_try < ev_now(loop_of(q)))
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
	/* Every message the queue takes counts here, once: a client's, and
	 * a bounce notice the queue made itself. */
	if (ok)
		metrics_message("accepted");
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

/* The attempt is over: the message is delivered, failed or waits. */
static void settle(struct qentry *e, struct delivery *d)
{
	struct queue *q = e->q;
	struct spool_msg *m = &e->m;
	const struct config *cfg = (*q->current)->path.cfg;
	double now = ev_now(loop_of(q));
	bool any_failed = false;

	for (unsigned i = 0; i < m->nrcpts; i++)
		any_failed |= m->rcpts[i].state == RCPT_FAILED;
	m->attempts++;
	snprintf(m->last_error, sizeof(m->last_error), "%s", delivery_error(d));
	if (delivery_failure(d)[0] != '\0')
		snprintf(m->fail_reason, sizeof(m->fail_reason), "%s", delivery_failure(d));
	if (pending_rcpts(m) > 0 && now - m->received >= cfg->queue.max_age) {
		char last[sizeof(m->last_error)];
		snprintf(last, sizeof(last), "max_age reached (%gs) after %u attempts; last error: %.200s",
		    cfg->queue.max_age, m->attempts, delivery_error(d));
		delivery_expire(d, last);
		snprintf(m->fail_reason, sizeof(m->fail_reason), "%s", last);
		any_failed = true;
	}
	if (pending_rcpts(m) == 0) {
		/* What failed them, not the last reply (maybe another's 250). */
		if (any_failed && m->fail_reason[0] != '\0')
			snprintf(m->last_error, sizeof(m->last_error), "%s", m->fail_reason);
		bool any_done = false;
		for (unsigned i = 0; i < m->nrcpts; i++)
			any_done |= m->rcpts[i].state == RCPT_DONE;
		delivery_log(d, !any_failed ? "delivered" : any_done ? "partial" : "failed");
		metrics_message(any_failed ? "failed" : "delivered");
		metrics_delivery_seconds(now - m->received);
		if (any_failed) {
			if (bounce_queue(q->sp, q->committer, m, cfg, now))
				q->pending_commits++;
			if (!spool_move_failed(q->sp, m))
				log_error("id=%s cannot move to %s/failed: %s", m->id, spool_dir(q->sp), strerror(errno));
			else
				q->kept_failed++;
		} else {
			spool_remove(q->sp, m->id);
		}
		drop_entry(q, e);
		return;
	}
	m->next_try = now + backoff(&cfg->queue, m->attempts);
	metrics_message("deferred");
	delivery_log(d, "deferred");
	log_info("message id=%s next_try_in=%.0fs", m->id, m->next_try - now);
	if (!spool_save_state(q->sp, m))
		log_warn("id=%s cannot save the delivery state: %s", m->id, strerror(errno));
}

/* Frees the entry's delivery (the message stays as last saved). */
static void end_delivery(struct qentry *e)
{
	struct delivery *d = e->busy;

	e->busy = NULL;
	e->q->active[e->busy_slot]--;
	delivery_free(d);
}

static void on_delivery_done(struct delivery *d, void *arg)
{
	struct qentry *e = arg;
	struct queue *q = e->q;

	e->busy = NULL; /* settle may free the entry */
	q->active[e->busy_slot]--;
	settle(e, d);
	delivery_free(d);
	schedule(q);
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
		unsigned char *paced = realloc(q->paced, slot + 1);
		if (paced == NULL)
			return NULL;
		memset(paced + q->nactive, PACE_GO, slot + 1 - q->nactive);
		q->paced = paced;
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
	e->busy_slot = slot;
	e->busy = delivery_start(rt, q->sp, &e->m, providers, nproviders, on_delivery_done, e);
	if (e->busy == NULL)
		return false;
	(*active)++;
	return true;
}

/* How long the slot's provider is paced (pace.h): its rate, daily_quota
 * or a back-off after a throttling reply. Logged when it begins. */
static double paced_for(struct queue *q, unsigned slot, double now)
{
	const struct path_env *env = &(*q->current)->path;
	const struct provider_cfg *p = &env->cfg->providers[slot];
	enum pace_block why;
	double wait = pace_delay(env->pace, p, now, &why);

	if (active_for(q, slot) == NULL || q->paced[slot] == why)
		return wait;
	q->paced[slot] = (unsigned char)why;
	if (why != PACE_GO)
		log_msg(why == PACE_RATE ? LOG_LVL_DEBUG : LOG_LVL_INFO, "queue paced provider=%s reason=%s wait=%.1fs",
		    p->name, pace_block_name(why), wait);
	return wait;
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
		bool due = e->m.next_try <= now;
		double paced = due ? paced_for(q, (unsigned)slot, now) : 0;
		if (due && paced == 0 && !slot_full(q, slot) && start_delivery(q, e)) {
			room -= slot_full(q, slot);
			continue;
		}
		/* Not due, paced, or no free connection: look again later. */
		double at = !due ? e->m.next_try : now + (paced > 0 ? paced : 1.0);
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
	ids = spool_list_failed(q->sp, &n);
	spool_list_free(ids, n);
	q->kept_failed = n;
	log_info("queue loaded spool=%s messages=%u", spool_dir(q->sp), q->n);
	if (q->kept_failed > 0)
		log_warn("queue failed messages=%u in %s/failed (subrelayctl failed lists them)", q->kept_failed,
		    spool_dir(q->sp));
}

bool queue_adopt(struct queue *q, const char *id)
{
	if (q->handoff != NULL || find_entry(q, id) != NULL)
		return false;
	/* Gone already: a rescan found it first and it has been delivered. */
	if (!spool_exists(q->sp, id) || !load_one(q, id))
		return false;
	schedule(q); /* counted as accepted by the worker that committed it */
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
			end_delivery(e); /* the message stays queued, its state as last saved */
		spool_msg_free(&e->m);
		free(e);
	}
	ev_timer_stop(loop_of(q), &q->wake);
	free(q->entries);
	free(q->active);
	free(q->paced);
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
	char received[32], next_try[32];
	/* Times for people (ISO 8601 UTC); queue and failed show ages instead. */
	fprintf(out, "id: %s\nfrom: <%s>\nsize: %llu\nreceived: %s\nattempts: %u\nnext_try: %s\nlast_error: %s\n",
	    m->id, m->from, (unsigned long long)m->size, cfg_format_utc(received, sizeof(received), m->received),
	    m->attempts, cfg_format_utc(next_try, sizeof(next_try), m->next_try), m->last_error[0] ? m->last_error : "-");
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
	if (e == NULL && spool_remove_failed(q->sp, id)) {
		if (q->kept_failed > 0)
			q->kept_failed--;
		log_info("message id=%s result=deleted from=failed by=control", id);
		return true;
	}
	if (e == NULL)
		return false;
	if (e->busy != NULL)
		end_delivery(e);
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
	fprintf(out, "queue_depth %u\noldest_age_seconds %.0f\nheld %u\nfailed_messages %u\n", q->n, oldest,
	    count_held(q), q->kept_failed);
}

/* ---- failed messages ---- */

unsigned queue_failed_count(const struct queue *q)
{
	return q->kept_failed;
}

/* The failed/ ids, oldest first (ids sort by age). */
static char **failed_ids(struct queue *q, unsigned *n)
{
	char **ids = spool_list_failed(q->sp, n);

	if (ids != NULL)
		qsort(ids, *n, sizeof(*ids), compare_ids);
	q->kept_failed = *n; /* the directory is the truth: resync the gauge */
	return ids;
}

static void failed_row(struct queue *q, const char *id, double now, FILE *out)
{
	struct spool_msg m;

	if (!spool_load(q->sp, id, true, &m)) {
		fprintf(out, "%-12s %8s %-30s %8s %s %s\n", id, "-", "-", "-", "-", "unreadable message file");
		return;
	}
	fprintf(out, "%-12s %7.0fs %-30s %8u ", m.id, now - m.received, m.from[0] ? m.from : "<>", m.attempts);
	unsigned listed = 0;
	for (unsigned i = 0; i < m.nrcpts; i++)
		if (m.rcpts[i].state != RCPT_DONE)
			fprintf(out, "%s%s", listed++ ? "," : "", m.rcpts[i].addr);
	fprintf(out, "%s %s\n", listed ? "" : "-", m.last_error[0] ? m.last_error : "-");
	spool_msg_free(&m);
}

void queue_failed_list(struct queue *q, FILE *out)
{
	unsigned n;
	char **ids = failed_ids(q, &n);
	double now = ev_now(loop_of(q));

	if (n == 0) {
		fprintf(out, "no failed messages\n");
		spool_list_free(ids, n);
		return;
	}
	fprintf(out, "%-12s %8s %-30s %8s %s %s\n", "ID", "AGE", "SENDER", "ATTEMPTS", "FAILED_RCPTS", "REASON");
	for (unsigned i = 0; i < n && i < FAILED_BATCH; i++)
		failed_row(q, ids[i], now, out);
	if (n > FAILED_BATCH)
		fprintf(out, "... and %u more (the oldest %u are listed)\n", n - FAILED_BATCH, FAILED_BATCH);
	spool_list_free(ids, n);
}

/* failed/ID back to queue/, its failed recipients pending again, due now. */
static bool requeue_one(struct queue *q, const char *id, double now)
{
	struct spool_msg m;

	if (!spool_load(q->sp, id, true, &m))
		return false;
	for (unsigned i = 0; i < m.nrcpts; i++)
		if (m.rcpts[i].state == RCPT_FAILED)
			m.rcpts[i].state = RCPT_PENDING;
	m.attempts = 0;
	m.fail_reason[0] = '\0';
	m.next_try = now;
	if (!spool_requeue(q->sp, &m)) {
		log_error("id=%s cannot requeue from %s/failed: %s", id, spool_dir(q->sp), strerror(errno));
		spool_msg_free(&m);
		return false;
	}
	if (q->kept_failed > 0)
		q->kept_failed--;
	log_info("message id=%s result=requeued by=control", id);
	if (!add_entry(q, &m)) {
		log_warn("id=%s requeued but out of memory: delivered after the next start", id);
		spool_msg_free(&m);
	}
	return true;
}

int queue_requeue(struct queue *q, const char *id, unsigned *left)
{
	double now = ev_now(loop_of(q));
	int done = 0;

	*left = 0;
	if (q->handoff != NULL)
		return id != NULL ? -1 : 0;
	if (id != NULL) {
		done = requeue_one(q, id, now) ? 1 : -1;
	} else {
		unsigned n;
		char **ids = failed_ids(q, &n);
		for (unsigned i = 0; i < n; i++) {
			if (done < FAILED_BATCH && requeue_one(q, ids[i], now))
				done++;
			else
				(*left)++;
		}
		spool_list_free(ids, n);
	}
	if (done > 0)
		schedule(q);
	return done;
}

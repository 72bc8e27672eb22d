/*
 * path.c: see path.h.
 *
 * A search walks the route's providers one at a time. For a provider it
 * resolves the host, builds the candidate list (pair-major: every address
 * of the remembered pair, then of the other pairs in configured order)
 * and races attempts through it, one more every attempt_delay or at
 * once after a failure. A ready session is handed to the caller, one at
 * a time; the caller's MAIL decides whether it wins. A recheck is the
 * same search over the pairs preferred to the remembered one, ending at
 * setup.
 */
#include "path.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hint.h"
#include "log.h"
#include "metrics.h"
#include "pace.h"
#include "pool.h"

struct path_memory {
	const struct path_env *env;
	unsigned provider;
	int pair;                  /* the pair that last worked, -1 = none yet */
	uint64_t announced_size;   /* the provider's EHLO SIZE, once seen (0: none) */
	ev_timer recheck;
	struct path_search *rechecking;
};

#define SEARCH_STATES(X) \
	X(NEW) \
	X(PACED)       /* waiting for the current provider's turn (pace.h), or moving past it */ \
	X(RESOLVING)   /* looking up the current provider's host */ \
	X(ATTEMPTING)  /* attempts racing through the provider's candidates */ \
	X(HANDED)      /* a ready session is with the caller for its MAIL */ \
	X(WAITING)     /* max_connections sessions are open: in line for one */ \
	X(DONE)        /* the outcome was handed over (or the search cancelled) */

enum search_state {
#define X(s) PS_##s,
	SEARCH_STATES(X)
#undef X
};

static const char *const search_state_names[] = {
#define X(s) #s,
	SEARCH_STATES(X)
#undef X
};

struct candidate {
	unsigned pair;
	unsigned addr;
};

struct attempt {
	struct path_search *ps;
	struct upstream *up;       /* NULL once finished */
	unsigned pair;
	ev_tstamp started;
	bool ready;                /* setup done: it can be handed over */
};

struct path_search {
	enum search_state state;
	const struct path_env *env;
	struct provider_cfg *const *providers;
	unsigned nproviders;
	unsigned provider;         /* index into providers */
	struct provider_cfg *own[1]; /* the provider list of a recheck */
	bool recheck;              /* a background re-check: ends at setup, no MAIL */
	unsigned pair_limit;       /* recheck: only pairs below this index */

	struct sockaddr_storage *addrs;
	unsigned naddrs;
	struct candidate *cands;
	unsigned ncands, next;
	struct attempt *attempts;  /* one per candidate started */
	struct attempt pooled;     /* a session taken from the pool */
	struct attempt *handed;    /* the one with the caller, or NULL */
	unsigned running;
	double max_wait;           /* > 0: caps max_connections_wait */
	struct dns_query *query;
	struct pool_waiter *waiter;
	ev_timer stagger;
	ev_timer pace_timer;       /* PACED: the turn comes, or (pace_skip) the next provider */
	bool pace_skip;
	int held;                  /* the provider (index) whose turn the search holds; -1: none */

	char log_id[32];
	char last_error[300];
	struct smtp_reply last_reply;
	bool have_last_reply;      /* the last failure was a MAIL 4xx */
	path_ready_cb ready;
	path_failed_cb failed;
	void *arg;
};

static void next_provider(struct path_search *ps);
static void log_attempt(const char *what, struct attempt *a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void start_next(struct path_search *ps);
static void provider_exhausted(struct path_search *ps);
static void provider_broken(struct path_search *ps);
static void resolve(struct path_search *ps);
static bool reuse_idle(struct path_search *ps);

static void enter_state(struct path_search *ps, enum search_state next)
{
	log_debug("id=%s path=%s->%s", ps->log_id, search_state_names[ps->state], search_state_names[next]);
	ps->state = next;
}

static struct provider_cfg *cur_provider(const struct path_search *ps)
{
	return ps->providers[ps->provider];
}

static unsigned provider_index(const struct path_search *ps)
{
	return (unsigned)(cur_provider(ps) - ps->env->cfg->providers);
}

static struct path_memory *cur_memory(const struct path_search *ps)
{
	return &ps->env->memory[provider_index(ps)];
}

/* ---- memory ---- */

static void on_recheck_done(struct path_search *ps, struct upstream *up);

static void on_recheck_timer(struct ev_loop *loop, ev_timer *w, int revents);

struct path_memory *path_memory_new(const struct path_env *env)
{
	unsigned n = env->cfg->nproviders;
	struct path_memory *m = calloc(n + 1, sizeof(*m));

	for (unsigned i = 0; m != NULL && i < n; i++) {
		m[i].env = env;
		m[i].provider = i;
		m[i].pair = -1;
		ev_init(&m[i].recheck, on_recheck_timer);
		m[i].recheck.data = &m[i];
	}
	return m;
}

void path_memory_free(struct path_memory *m, unsigned nproviders)
{
	if (m == NULL)
		return;
	for (unsigned i = 0; i < nproviders; i++) {
		ev_timer_stop(m[i].env->loop, &m[i].recheck);
		path_search_cancel(m[i].rechecking);
	}
	free(m);
}


char *path_memory_export(const struct path_env *env)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (out == NULL)
		return NULL;
	for (unsigned i = 0; i < env->cfg->nproviders; i++) {
		const struct provider_cfg *p = &env->cfg->providers[i];
		int pair = env->memory[i].pair;
		if (pair >= 0)
			fprintf(out, "%s %u %s\n", p->name, p->ports[pair].port, tls_mode_name(p->ports[pair].mode));
	}
	fclose(out);
	return text;
}

static void arm_recheck(struct path_memory *m, const struct provider_cfg *p)
{
	if (!ev_is_active(&m->recheck) && m->rechecking == NULL) {
		ev_timer_set(&m->recheck, p->recheck_interval, 0.);
		ev_timer_start(m->env->loop, &m->recheck);
	}
}

void path_memory_import(const struct path_env *env, const char *text)
{
	char name[128], mode[16];
	unsigned port;
	int used;

	while (sscanf(text, "%127s %u %15s%n", name, &port, mode, &used) == 3) {
		text += used;
		const struct provider_cfg *p = config_provider(env->cfg, name);
		for (unsigned j = 0; p != NULL && j < p->nports; j++) {
			if (p->ports[j].port != port || strcmp(tls_mode_name(p->ports[j].mode), mode) != 0 || j == 0)
				continue;
			struct path_memory *m = &env->memory[p - env->cfg->providers];
			m->pair = (int)j;
			arm_recheck(m, p);
			log_info("path remember provider=%s port=%u mode=%s preferred=no source=saved", p->name, port, mode);
		}
	}
}

static void remember(struct path_search *ps, unsigned pair)
{
	struct path_memory *m = cur_memory(ps);
	struct provider_cfg *p = cur_provider(ps);
	int next = pair == 0 ? -1 : (int)pair;

	if (m->pair == next)
		return;
	m->pair = next;
	log_info("path remember provider=%s port=%u mode=%s preferred=%s", p->name, p->ports[pair].port,
	    tls_mode_name(p->ports[pair].mode), pair == 0 ? "yes" : "no");
	if (next < 0)
		ev_timer_stop(ps->env->loop, &m->recheck);
	else
		arm_recheck(m, p);
	if (ps->env->memory_changed != NULL)
		ps->env->memory_changed(ps->env, ps->env->memory_arg);
}

/* ---- ending a search ---- */

static void close_attempts(struct path_search *ps, bool won)
{
	if (ps->pooled.up != NULL)
		upstream_close(ps->pooled.up);
	ps->pooled.up = NULL;
	for (unsigned i = 0; i < ps->next; i++) {
		struct attempt *a = &ps->attempts[i];
		if (a->up != NULL) {
			log_attempt("abandoned", a, "reason=%s", won ? "another_attempt_won" : "search_ended");
			upstream_close(a->up);
		}
		a->up = NULL;
	}
	ps->running = 0;
	ps->handed = NULL;
}

/* No path: the caller hears why, and the search is over. */
static void fail_search(struct path_search *ps, const struct smtp_reply *reply)
{
	path_failed_cb failed = ps->failed;
	void *arg = ps->arg;
	char error[sizeof(ps->last_error)];
	struct smtp_reply copy;
	const struct smtp_reply *r = NULL;

	if (reply != NULL || ps->have_last_reply) {
		copy = reply != NULL ? *reply : ps->last_reply;
		r = &copy;
	}
	snprintf(error, sizeof(error), "%s", ps->last_error);
	enter_state(ps, PS_DONE);
	path_search_cancel(ps);
	failed(r, r != NULL ? NULL : error, arg);
}

/* ---- attempts ---- */

static void log_attempt(const char *what, struct attempt *a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_attempt(const char *what, struct attempt *a, const char *fmt, ...)
{
	struct path_search *ps = a->ps;
	struct upstream_info info;
	char extra[1200];
	va_list ap;

	upstream_get_info(a->up, &info);
	va_start(ap, fmt);
	vsnprintf(extra, sizeof(extra), fmt, ap);
	va_end(ap);
	log_msg(strcmp(what, "failed") == 0 ? LOG_LVL_WARN : LOG_LVL_INFO,
	    "upstream %s id=%s provider=%s address=%s port=%u mode=%s elapsed=%.3fs%s%s", what, ps->log_id,
	    info.provider, info.address, info.port, info.mode, ev_now(ps->env->loop) - a->started,
	    extra[0] ? " " : "", extra);
}

static void attempt_done(struct attempt *a)
{
	a->up = NULL;
	a->ps->running--;
}

/* Hands a ready session to the caller unless one is with it already;
 * false when none is ready. */
static bool hand_over(struct path_search *ps)
{
	struct attempt *a = ps->pooled.ready && ps->pooled.up != NULL ? &ps->pooled : NULL;

	if (ps->handed != NULL)
		return true;
	for (unsigned i = 0; a == NULL && i < ps->next; i++)
		if (ps->attempts[i].ready && ps->attempts[i].up != NULL)
			a = &ps->attempts[i];
	if (a == NULL)
		return false;
	ps->handed = a;
	ev_timer_stop(ps->env->loop, &ps->stagger); /* a ready session stops the race until its MAIL fails */
	enter_state(ps, PS_HANDED);
	ps->ready(ps, a->up, ps->arg);
	return true;
}

/* One attempt is over without a path; mail_reply is set when it was a 4xx to MAIL. */
static void attempt_failed(struct attempt *a, struct upstream *up, enum upstream_fail cls, const char *reason,
    const struct smtp_reply *mail_reply)
{
	struct path_search *ps = a->ps;
	struct provider_cfg *p = cur_provider(ps);
	char quoted[520], hint[480], qhint[540] = "";
	const struct port_mode *pm = &p->ports[a->pair];

	if (hint_for_failure(p->host, pm->port, pm->mode, cls, reason, hint, sizeof(hint)) != NULL)
		snprintf(qhint, sizeof(qhint), " hint=%s", log_quote(quoted, sizeof(quoted), hint));
	log_attempt("failed", a, "class=%s reason=%s%s", upstream_fail_name(cls),
	    log_quote(quoted, sizeof(quoted), reason), qhint);
	metrics_attempt(p->name, pm->port, tls_mode_name(pm->mode), upstream_fail_name(cls));
	snprintf(ps->last_error, sizeof(ps->last_error), "%s port %u: %s", p->name, pm->port,
	    upstream_fail_name(cls));
	/* Only a MAIL reply may be relayed to the client, and only the last failure's. */
	ps->have_last_reply = mail_reply != NULL;
	if (mail_reply != NULL)
		ps->last_reply = *mail_reply;
	upstream_abort(up);
	attempt_done(a);
	a->ready = false;
	/* No token for this provider: its other pairs would fail the same way. */
	if (cls == UPSTREAM_FAIL_OAUTH2)
		ps->next = ps->ncands;
	if (a == ps->handed) {
		ps->handed = NULL;
		enter_state(ps, PS_ATTEMPTING);
	}
	if (a == &ps->pooled) {
		/* A stale pooled session: search as if the pool had been empty. */
		ps->provider = 0;
		next_provider(ps);
		return;
	}
	if (!hand_over(ps))
		start_next(ps);
}

static void on_attempt_failed(struct upstream *up, void *arg, enum upstream_fail cls, const char *reason)
{
	attempt_failed(arg, up, cls, reason, NULL);
}

static void on_attempt_ready(struct upstream *up, void *arg)
{
	struct attempt *a = arg;
	struct path_search *ps = a->ps;
	struct upstream_info info;

	upstream_get_info(up, &info);
	log_attempt("ready", a, "tls=%s cipher=%s auth=%s resumed=%s", info.tls_version, info.tls_cipher, info.auth,
	    info.tls_resumed ? "yes" : "no");
	metrics_attempt(info.provider, info.port, info.mode, "ok");
	metrics_provider_outcome(info.provider, true, NULL, ev_now(ps->env->loop));
	cur_memory(ps)->announced_size = upstream_size_limit(up);
	if (ps->recheck) {
		on_recheck_done(ps, up);
		return;
	}
	a->ready = true;
	hand_over(ps);
}

/* A session the search owns is never sent a transaction command, so the
 * only events before the hand-over are these two. */
static const struct upstream_callbacks attempt_callbacks = {
	.ready = on_attempt_ready,
	.failed = on_attempt_failed,
};

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static bool open_attempt(struct path_search *ps, const struct candidate *c)
{
	struct provider_cfg *p = cur_provider(ps);
	struct sockaddr_storage ss = ps->addrs[c->addr];
	struct attempt *a = &ps->attempts[ps->next - 1];

	set_port(&ss, p->ports[c->pair].port);
	struct upstream_params params = {
		.loop = ps->env->loop,
		.provider = p,
		.oauth2 = ps->env->oauth2 ? ps->env->oauth2[provider_index(ps)] : NULL,
		.tls_ctx = ps->env->tls_ctx[provider_index(ps)],
		.addr = (struct sockaddr *)&ss,
		.addrlen = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
		.port_mode = p->ports[c->pair],
		.helo_name = ps->env->cfg->relay.hostname,
		.log_id = ps->log_id,
		.given_up = pool_given_up,
		.given_up_ctx = ps->env->pool,
	};
	a->ps = ps;
	a->pair = c->pair;
	a->started = ev_now(ps->env->loop);
	a->up = upstream_open(&params, &attempt_callbacks, a);
	if (a->up == NULL) {
		snprintf(ps->last_error, sizeof(ps->last_error), "%s: cannot create socket", p->name);
		return false;
	}
	pool_opened(ps->env->pool, p);
	ps->running++;
	log_attempt("attempt", a, "%s", "");
	return true;
}

static void on_stagger(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct path_search *ps = w->data;
	(void)loop;
	(void)revents;

	if (ps->next < ps->ncands)
		log_info("path stagger id=%s provider=%s after=%gs running=%u", ps->log_id, cur_provider(ps)->name,
		    cur_provider(ps)->attempt_delay, ps->running);
	start_next(ps);
}

/* Starts the next candidate; when none is left and none runs, moves on. */
static void wait_for_session(struct path_search *ps);

static void start_next(struct path_search *ps)
{
	while (ps->next < ps->ncands) {
		if (!ps->recheck && !pool_has_room(ps->env->pool, cur_provider(ps))) {
			if (ps->running == 0)
				wait_for_session(ps);
			return; /* a running attempt may still win, or fail and free a place */
		}
		const struct candidate *c = &ps->cands[ps->next++];
		if (open_attempt(ps, c)) {
			ev_timer_stop(ps->env->loop, &ps->stagger);
			ev_timer_set(&ps->stagger, cur_provider(ps)->attempt_delay, 0.);
			ev_timer_start(ps->env->loop, &ps->stagger);
			return;
		}
	}
	if (ps->running == 0) {
		provider_broken(ps);
		provider_exhausted(ps);
	}
}

/* ---- pacing (pace.h) ---- */

/* A provider's own wait, capped by the caller's max_wait when it has one. */
static double capped_wait(const struct path_search *ps, double wait)
{
	return ps->max_wait > 0 && ps->max_wait < wait ? ps->max_wait : wait;
}

static void release_turn(struct path_search *ps, bool accepted)
{
	if (ps->held < 0)
		return;
	pace_release(ps->env->pace, ps->providers[ps->held], ev_now(ps->env->loop), accepted);
	ps->held = -1;
}

static void hold_turn(struct path_search *ps, unsigned i)
{
	release_turn(ps, false);
	if (pace_take(ps->env->pace, ps->providers[i], ev_now(ps->env->loop)))
		ps->held = (int)i;
}

static void log_paced(const struct path_search *ps, const struct provider_cfg *p, enum pace_block why, double delay)
{
	log_info("path paced id=%s provider=%s reason=%s free_in=%.1fs", ps->log_id, p->name, pace_block_name(why), delay);
}

/* A throttling reply kept for the caller; a provider's 421 becomes 451,
 * since to a client 421 means that the relay closes its session. */
static void keep_throttling_reply(struct path_search *ps, const struct smtp_reply *r)
{
	ps->have_last_reply = true;
	ps->last_reply = *r;
	if (r->code == 421)
		ps->last_reply.code = 451;
}

/* The current provider takes no transaction now: the search moves on
 * (from the loop), keeping a MAIL reply that says why for the caller. */
static void paced_out(struct path_search *ps, enum pace_block why, double delay)
{
	struct provider_cfg *p = cur_provider(ps);
	struct smtp_reply *r = &ps->last_reply;
	char rate[32];

	log_paced(ps, p, why, delay);
	snprintf(ps->last_error, sizeof(ps->last_error), "%s: paced (%s)", p->name, pace_block_name(why));
	ps->have_last_reply = true;
	if (why == PACE_BACKOFF) {
		keep_throttling_reply(ps, pace_backoff_reply(ps->env->pace, p)); /* the provider's own */
	} else {
		*r = (struct smtp_reply){ .code = 451, .enhanced = "4.7.0", .complete = true };
		if (why == PACE_RATE)
			snprintf(r->text, sizeof(r->text), "Provider %s is paced to rate %s: no turn within %gs; try again later",
			    p->name, pace_rate_text(p, rate, sizeof(rate)), capped_wait(ps, p->rate_wait));
		else
			snprintf(r->text, sizeof(r->text), "Provider %s has reached its daily_quota of %u messages in 24 hours; "
			    "try again later", p->name, p->daily_quota);
	}
	ps->pace_skip = true;
	enter_state(ps, PS_PACED);
	ev_timer_set(&ps->pace_timer, 0., 0.);
	ev_timer_start(ps->env->loop, &ps->pace_timer);
}

/* Whether provider i's turn is now (PACE_GO), else what holds it back
 * for *delay; *soon: a rate turn within the wait the search allows. */
static enum pace_block turn_of(const struct path_search *ps, unsigned i, double *delay, bool *soon)
{
	const struct provider_cfg *p = ps->providers[i];
	enum pace_block why;

	*delay = pace_delay(ps->env->pace, p, ev_now(ps->env->loop), &why);
	*soon = why == PACE_RATE && *delay <= capped_wait(ps, p->rate_wait);
	return why;
}

/* The current provider's turn: true to go on now; else the pace timer
 * goes on once the turn comes (a rate wait within rate_wait) or moves
 * past the provider (throttled, out of quota, or too long a wait). */
static bool take_turn(struct path_search *ps)
{
	struct provider_cfg *p = cur_provider(ps);
	double delay;
	bool soon;

	if (ps->recheck || ps->held == (int)ps->provider)
		return true;
	enum pace_block why = turn_of(ps, ps->provider, &delay, &soon);
	if (why != PACE_GO && !soon) {
		paced_out(ps, why, delay);
		return false;
	}
	hold_turn(ps, ps->provider);
	if (why == PACE_GO)
		return true;
	log_debug("path pace id=%s provider=%s wait=%.3fs", ps->log_id, p->name, delay);
	enter_state(ps, PS_PACED);
	ev_timer_set(&ps->pace_timer, delay, 0.);
	ev_timer_start(ps->env->loop, &ps->pace_timer);
	return false;
}

static void on_pace_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct path_search *ps = w->data;
	(void)loop;
	(void)revents;

	if (ps->pace_skip) {
		ps->pace_skip = false;
		provider_exhausted(ps);
	} else if (!reuse_idle(ps)) {
		resolve(ps);
	}
}

void path_throttled(const struct path_env *env, struct upstream *up, const char *log_id, const char *command,
    const struct smtp_reply *r)
{
	const struct queue_cfg *qc = &env->cfg->queue;
	struct upstream_info info;
	char raw[SMTP_REPLY_TEXT_MAX + 32], quoted[SMTP_REPLY_TEXT_MAX + 48];
	double backoff = pace_throttled(env->pace, upstream_provider(up), r, ev_now(env->loop), qc->retry_initial,
	    qc->retry_max);

	upstream_get_info(up, &info);
	snprintf(raw, sizeof(raw), "%d %s%s%.*s", r->code, r->enhanced, r->enhanced[0] ? " " : "",
	    SMTP_REPLY_TEXT_MAX - 1, r->text);
	log_warn("upstream throttled id=%s provider=%s address=%s port=%u mode=%s command=%s reply=%s backoff=%gs",
	    log_id, info.provider, info.address, info.port, info.mode, command, log_quote(quoted, sizeof(quoted), raw),
	    backoff);
	metrics_attempt(info.provider, info.port, info.mode, "throttled");
}

/* The provider throttles (MAIL refused): none of its candidates is tried
 * again now; the next provider of the route may take the message. */
static void leave_throttled(struct path_search *ps, struct attempt *a, const struct smtp_reply *r)
{
	struct upstream *up = a->up;
	bool pooled = a == &ps->pooled;

	path_throttled(ps->env, up, ps->log_id, "MAIL", r);
	snprintf(ps->last_error, sizeof(ps->last_error), "%s: throttled", cur_provider(ps)->name);
	keep_throttling_reply(ps, r);
	attempt_done(a);
	a->ready = false;
	upstream_abort(up);
	close_attempts(ps, false);
	if (!pooled) {
		provider_exhausted(ps);
		return;
	}
	/* A pooled session of a later provider: the earlier ones still may. */
	release_turn(ps, false);
	ev_timer_stop(ps->env->loop, &ps->stagger);
	ps->provider = 0;
	next_provider(ps);
}

/* ---- providers ---- */

/* Candidates in order: the remembered pair first, then the configured order. */
static bool build_candidates(struct path_search *ps)
{
	struct provider_cfg *p = cur_provider(ps);
	unsigned npairs = ps->recheck ? ps->pair_limit : p->nports;
	int first = ps->recheck ? -1 : cur_memory(ps)->pair;

	free(ps->cands);
	free(ps->attempts);
	ps->ncands = npairs * ps->naddrs;
	ps->next = 0;
	ps->cands = calloc(ps->ncands + 1, sizeof(*ps->cands));
	ps->attempts = calloc(ps->ncands + 1, sizeof(*ps->attempts));
	if (ps->cands == NULL || ps->attempts == NULL)
		return false;
	unsigned n = 0;
	for (int round = 0; round < 2; round++) {
		for (unsigned pair = 0; pair < npairs; pair++) {
			bool remembered = (int)pair == first;
			if ((round == 0) != remembered)
				continue;
			for (unsigned addr = 0; addr < ps->naddrs; addr++)
				ps->cands[n++] = (struct candidate){ .pair = pair, .addr = addr };
		}
	}
	return true;
}

static void on_resolved(const struct dns_result *res, void *arg)
{
	struct path_search *ps = arg;
	struct provider_cfg *p = cur_provider(ps);

	ps->query = NULL;
	if (res->error != NULL || res->naddrs == 0) {
		log_warn("upstream failed id=%s provider=%s host=%s class=dns reason=\"%s\"", ps->log_id, p->name,
		    p->host, res->error ? res->error : "no address");
		snprintf(ps->last_error, sizeof(ps->last_error), "%s: cannot resolve %s", p->name, p->host);
		provider_broken(ps);
		provider_exhausted(ps);
		return;
	}
	free(ps->addrs);
	ps->addrs = calloc(res->naddrs, sizeof(*ps->addrs));
	if (ps->addrs != NULL) {
		memcpy(ps->addrs, res->addrs, res->naddrs * sizeof(*ps->addrs));
		ps->naddrs = res->naddrs;
	}
	if (ps->addrs == NULL || !build_candidates(ps)) {
		snprintf(ps->last_error, sizeof(ps->last_error), "out of memory");
		fail_search(ps, NULL);
		return;
	}
	enter_state(ps, PS_ATTEMPTING);
	start_next(ps);
}

/* No working path to the current provider: every candidate failed, or
 * its name did not resolve (being paced or throttled is not that).
 * health.h counts it down. A recheck of the preferred pairs alone says
 * nothing of the remembered one. */
static void provider_broken(struct path_search *ps)
{
	if (ps->recheck && ps->pair_limit < cur_provider(ps)->nports)
		return;
	metrics_provider_outcome(cur_provider(ps)->name, false, ps->last_error, ev_now(ps->env->loop));
}

static void provider_exhausted(struct path_search *ps)
{
	ev_timer_stop(ps->env->loop, &ps->stagger);
	release_turn(ps, false);
	ps->provider++;
	if (ps->provider < ps->nproviders)
		log_warn("path next_provider id=%s failed=%s next=%s", ps->log_id, ps->providers[ps->provider - 1]->name,
		    cur_provider(ps)->name);
	next_provider(ps);
}

static void next_provider(struct path_search *ps)
{
	if (ps->provider >= ps->nproviders) {
		if (ps->recheck)
			on_recheck_done(ps, NULL);
		else
			fail_search(ps, NULL);
		return;
	}
	if (take_turn(ps))
		resolve(ps);
}

static void resolve(struct path_search *ps)
{
	enter_state(ps, PS_RESOLVING);
	ps->query = dns_lookup(ps->env->dns, cur_provider(ps)->host, 0, on_resolved, ps);
	if (ps->query == NULL) {
		snprintf(ps->last_error, sizeof(ps->last_error), "%s: resolver error", cur_provider(ps)->name);
		provider_exhausted(ps);
	}
}

static struct path_search *search_new(const struct path_env *env, struct provider_cfg *const *providers,
    unsigned nproviders, const char *log_id)
{
	struct path_search *ps = calloc(1, sizeof(*ps));
	if (ps == NULL)
		return NULL;
	ps->env = env;
	ps->providers = providers;
	ps->nproviders = nproviders;
	if (providers == NULL)
		ps->providers = ps->own; /* a recheck: the caller fills own[0] */
	ev_init(&ps->stagger, on_stagger);
	ps->stagger.data = ps;
	ev_init(&ps->pace_timer, on_pace_timer);
	ps->pace_timer.data = ps;
	ps->held = -1;
	snprintf(ps->log_id, sizeof(ps->log_id), "%s", log_id);
	return ps;
}

/* Starts with the first provider (once its turn comes); false (ps
 * freed) when out of memory. */
static bool search_begin(struct path_search *ps)
{
	ps->provider = 0;
	if (!take_turn(ps))
		return true; /* the pace timer goes on, from the loop */
	enter_state(ps, PS_RESOLVING);
	ps->query = dns_lookup(ps->env->dns, ps->providers[0]->host, 0, on_resolved, ps);
	if (ps->query != NULL)
		return true;
	release_turn(ps, false);
	free(ps);
	return false;
}

/* The pair a fresh search would try first for provider i. */
static unsigned first_pair(const struct path_search *ps, unsigned i)
{
	int remembered = ps->env->memory[ps->providers[i] - ps->env->cfg->providers].pair;
	return remembered < 0 ? 0 : (unsigned)remembered;
}

/*
 * An idle pooled session of the first provider of the route that has one,
 * only on the pair a fresh search would try first, so that a session
 * opened on a fallback pair never outlives a switch back to the preferred
 * one.
 */
static struct upstream *take_idle(struct path_search *ps, unsigned *pair)
{
	int passed = -1; /* the first provider passed over, for the log */
	enum pace_block passed_why = PACE_GO;
	double passed_delay = 0;

	for (unsigned i = 0; i < ps->nproviders; i++) {
		struct upstream *up;
		double delay;
		bool soon;
		enum pace_block why = turn_of(ps, i, &delay, &soon);
		if (soon)
			return NULL; /* its turn comes soon: the search waits for it */
		if (why != PACE_GO) {
			/* Throttled, out of quota, its turn far: another provider's session may go. */
			if (passed < 0) {
				passed = (int)i;
				passed_why = why;
				passed_delay = delay;
			}
			continue;
		}
		while ((up = pool_take(ps->env->pool, ps->providers[i], pair)) != NULL) {
			if (*pair == first_pair(ps, i)) {
				if (passed >= 0)
					log_paced(ps, ps->providers[passed], passed_why, passed_delay);
				ps->provider = i;
				hold_turn(ps, i);
				return up;
			}
			upstream_close(up); /* opened on a pair no longer preferred */
		}
	}
	return NULL;
}

/* Hands over an idle session: no connect, TLS or AUTH. */
static void use_idle(struct path_search *ps, struct upstream *up, unsigned pair)
{
	struct attempt *a = &ps->pooled;

	a->ps = ps;
	a->up = up;
	a->pair = pair;
	a->started = ev_now(ps->env->loop);
	a->ready = true;
	ps->running++;
	upstream_set_callbacks(up, &attempt_callbacks, a);
	log_attempt("reuse", a, "%s", "");
	hand_over(ps);
}

static bool try_idle(struct path_search *ps)
{
	unsigned pair;
	struct upstream *up = take_idle(ps, &pair);

	if (up == NULL)
		return false;
	use_idle(ps, up, pair);
	return true;
}

static double session_wait(const struct path_search *ps)
{
	return capped_wait(ps, cur_provider(ps)->max_connections_wait);
}

/* An idle session of the current provider on the pair it would try
 * first, handed over; false when there is none. */
static bool reuse_idle(struct path_search *ps)
{
	unsigned pair;
	struct upstream *up = pool_take(ps->env->pool, cur_provider(ps), &pair);

	if (up != NULL && pair == first_pair(ps, ps->provider)) {
		use_idle(ps, up, pair);
		return true;
	}
	upstream_close(up);
	return false;
}

/* max_connections sessions to this provider are open: wait in line for
 * one to be given up or pooled, at most max_connections_wait. */
static void on_session_free(void *arg, bool woken)
{
	struct path_search *ps = arg;
	struct provider_cfg *p = cur_provider(ps);

	ps->waiter = NULL;
	if (woken) {
		enter_state(ps, PS_ATTEMPTING);
		if (!reuse_idle(ps))
			start_next(ps);
		return;
	}
	log_warn("upstream failed id=%s provider=%s class=busy reason=\"max_connections (%u) sessions open for %gs\"",
	    ps->log_id, p->name, p->max_connections, session_wait(ps));
	snprintf(ps->last_error, sizeof(ps->last_error), "%s: busy", p->name);
	ps->have_last_reply = true;
	ps->last_reply = (struct smtp_reply){ .code = 451, .enhanced = "4.4.5", .complete = true };
	snprintf(ps->last_reply.text, sizeof(ps->last_reply.text),
	    "Too many sessions to provider %s (max_connections %u); try again later", p->name, p->max_connections);
	provider_exhausted(ps);
}

static void wait_for_session(struct path_search *ps)
{
	struct provider_cfg *p = cur_provider(ps);

	enter_state(ps, PS_WAITING);
	log_info("path wait id=%s provider=%s max_connections=%u", ps->log_id, p->name, p->max_connections);
	ps->waiter = pool_wait(ps->env->pool, p, session_wait(ps), on_session_free, ps);
	if (ps->waiter == NULL)
		on_session_free(ps, false);
}

struct path_search *path_search_start(const struct path_env *env, struct provider_cfg *const *providers,
    unsigned nproviders, double max_wait, const char *log_id, path_ready_cb ready, path_failed_cb failed, void *arg)
{
	struct path_search *ps = search_new(env, providers, nproviders, log_id);
	if (ps == NULL)
		return NULL;
	ps->max_wait = max_wait;
	ps->ready = ready;
	ps->failed = failed;
	ps->arg = arg;
	if (try_idle(ps))
		return ps;
	return search_begin(ps) ? ps : NULL;
}

void path_search_accepted(struct path_search *ps)
{
	struct attempt *a = ps->handed;
	struct provider_cfg *p = cur_provider(ps);

	log_info("path chosen id=%s provider=%s port=%u mode=%s", ps->log_id, p->name, p->ports[a->pair].port,
	    tls_mode_name(p->ports[a->pair].mode));
	/* A pooled session's MAIL is its only sign of life. */
	metrics_provider_outcome(p->name, true, NULL, ev_now(ps->env->loop));
	remember(ps, a->pair);
	release_turn(ps, true); /* counted in the provider's daily_quota */
	attempt_done(a); /* the caller's now */
	enter_state(ps, PS_DONE);
	close_attempts(ps, true);
	path_search_cancel(ps);
}

void path_search_refused(struct path_search *ps, const struct smtp_reply *r)
{
	struct attempt *a = ps->handed;
	struct upstream *up = a->up;
	char quoted[SMTP_REPLY_TEXT_MAX + 8];

	if (r->code / 100 == 5) {
		log_attempt("rejected", a, "mail_reply=%d text=%s", r->code, log_quote(quoted, sizeof(quoted), r->text));
		attempt_done(a);
		upstream_close(up);
		fail_search(ps, r);
		return;
	}
	if (pace_is_throttling(r)) {
		leave_throttled(ps, a, r);
		return;
	}
	/* A 4xx to MAIL: this path is unwell right now; another may not be. */
	char reason[SMTP_REPLY_TEXT_MAX + 32];
	snprintf(reason, sizeof(reason), "MAIL: %d %s%s%.*s", r->code, r->enhanced, r->enhanced[0] ? " " : "",
	    SMTP_REPLY_TEXT_MAX - 1, r->text);
	attempt_failed(a, up, UPSTREAM_FAIL_REPLY_TEMPFAIL, reason, r);
}

void path_search_lost(struct path_search *ps, enum upstream_fail cls, const char *reason)
{
	attempt_failed(ps->handed, ps->handed->up, cls, reason, NULL);
}

void path_search_cancel(struct path_search *ps)
{
	if (ps == NULL)
		return;
	pool_wait_cancel(ps->waiter);
	if (ps->query != NULL)
		dns_cancel(ps->query);
	close_attempts(ps, false);
	ev_timer_stop(ps->env->loop, &ps->stagger);
	ev_timer_stop(ps->env->loop, &ps->pace_timer);
	release_turn(ps, false);
	free(ps->addrs);
	free(ps->cands);
	free(ps->attempts);
	free(ps);
}

/* ---- limits ---- */

void path_limits(const struct path_env *env, const char *sender, struct path_limits *out)
{
	unsigned n;
	const char *route;
	struct provider_cfg *const *providers = config_route_for(env->cfg, sender, &n, &route);
	const struct provider_cfg *p = n > 0 ? providers[0] : NULL;
	uint64_t announced = p != NULL ? env->memory[p - env->cfg->providers].announced_size : 0;

	*out = (struct path_limits){ .size = env->cfg->relay.max_message_size };
	if (p == NULL)
		return;
	if (p->max_message_size > 0 && p->max_message_size < out->size)
		*out = (struct path_limits){ .size = p->max_message_size, .size_by = p->name };
	if (announced > 0 && announced < out->size)
		*out = (struct path_limits){ .size = announced, .size_by = p->name };
}

/* ---- background re-check of preferred pairs ---- */

/* A setup-only search of m's provider over its first pair_limit pairs
 * (all of them: a health check), unless one is running. */
static void start_recheck(struct path_memory *m, unsigned pair_limit)
{
	const struct path_env *env = m->env;
	struct provider_cfg *p = &env->cfg->providers[m->provider];
	struct path_search *ps;

	if (m->rechecking != NULL || (ps = search_new(env, NULL, 1, pair_limit < p->nports ? "recheck" : "check")) == NULL)
		return;
	ps->own[0] = p;
	ps->recheck = true;
	ps->pair_limit = pair_limit;
	if (search_begin(ps))
		m->rechecking = ps;
}

static void on_recheck_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct path_memory *m = w->data;
	const struct path_env *env = m->env;
	struct provider_cfg *p = &env->cfg->providers[m->provider];
	(void)loop;
	(void)revents;

	if (m->pair <= 0 || m->rechecking != NULL)
		return;
	log_info("path recheck provider=%s remembered_port=%u", p->name, p->ports[m->pair].port);
	start_recheck(m, (unsigned)m->pair);
}

void path_check(const struct path_env *env, unsigned provider)
{
	struct path_memory *m = &env->memory[provider];

	if (m->rechecking != NULL)
		return;
	log_info("path check provider=%s", env->cfg->providers[provider].name);
	start_recheck(m, env->cfg->providers[provider].nports);
}

/* up: a preferred pair works again (switch back), or a check found a
 * working pair; NULL: none does yet. */
static void on_recheck_done(struct path_search *ps, struct upstream *up)
{
	/* The cursor may be past the end: a recheck has exactly one provider. */
	ps->provider = 0;
	struct path_memory *m = cur_memory(ps);
	struct provider_cfg *p = cur_provider(ps);
	const char *what = ps->pair_limit < p->nports ? "recheck" : "check";
	unsigned pair = 0;

	for (unsigned i = 0; up != NULL && i < ps->next; i++)
		if (ps->attempts[i].up == up)
			pair = ps->attempts[i].pair;
	m->rechecking = NULL;
	if (up != NULL) {
		log_info("path %s provider=%s result=ok port=%u", what, p->name, p->ports[pair].port);
		remember(ps, pair);
	} else if (m->pair > 0) {
		log_info("path %s provider=%s result=still_failing next_in=%gs", what, p->name, p->recheck_interval);
		ev_timer_set(&m->recheck, p->recheck_interval, 0.);
		ev_timer_start(ps->env->loop, &m->recheck);
	} else {
		char quoted[sizeof(ps->last_error) + 16];
		log_info("path %s provider=%s result=failed reason=%s", what, p->name,
		    log_quote(quoted, sizeof(quoted), ps->last_error));
	}
	path_search_cancel(ps);
}

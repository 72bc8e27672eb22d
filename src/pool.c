/*
 * pool.c: see pool.h. A short list per pool; each entry has its own idle
 * timer and watches its session for a close by the provider.
 */
#include "pool.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

struct pooled {
	struct pool *pool;
	struct upstream *up;
	const struct provider_cfg *provider;
	ev_timer idle;
	double idle_left;          /* after the settle timer: how long it stays */
	bool settled;              /* its buffers are released */
	struct pooled *next;
};

/* A session pooled between a client's messages is usually taken again
 * within milliseconds: its buffers are released only once it has sat
 * idle this long, not at every transaction. */
#define POOL_SETTLE 1.0

struct pool_waiter {
	struct pool *pool;
	const struct provider_cfg *provider;
	pool_wake_fn cb;
	void *arg;
	bool woken;
	ev_timer timer;            /* the deadline, then (0 s) the wake-up from the loop */
	struct pool_waiter *next;
};

/* Sessions open to one provider. */
struct open_count {
	const struct provider_cfg *provider;
	unsigned n;
};

struct pool {
	struct ev_loop *loop;
	struct pooled *idle;
	unsigned count;
	struct open_count *open;
	unsigned nopen;
	struct pool_waiter *waiters; /* oldest first */
	bool freeing;
};

static void unlink_entry(struct pool *p, struct pooled *e)
{
	for (struct pooled **pp = &p->idle; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			p->count--;
			break;
		}
	}
	ev_timer_stop(p->loop, &e->idle);
}

static void on_idle_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pooled *e = w->data;
	(void)revents;

	if (!e->settled) {
		e->settled = true;
		upstream_release_buffers(e->up);
		ev_timer_set(&e->idle, e->idle_left, 0.);
		ev_timer_start(loop, &e->idle);
		return;
	}
	unlink_entry(e->pool, e);
	upstream_close(e->up);
	free(e);
}

/* The provider closed (or broke) an idle session: forget it. */
static void on_failed(struct upstream *up, void *arg, enum upstream_fail cls, const char *reason)
{
	struct pooled *e = arg;
	(void)cls;

	log_debug("pool drop provider=%s reason=\"%s\"", e->provider->name, reason);
	unlink_entry(e->pool, e);
	upstream_abort(up);
	free(e);
}

/* An idle session has nothing in flight: only its loss can happen. */
static const struct upstream_callbacks idle_callbacks = {
	.failed = on_failed,
};

struct pool *pool_new(struct ev_loop *loop)
{
	struct pool *p = calloc(1, sizeof(*p));
	if (p != NULL)
		p->loop = loop;
	return p;
}

static void wake_one(struct pool *p, const struct provider_cfg *provider);

void pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	p->freeing = true;
	while (p->waiters != NULL)
		pool_wait_cancel(p->waiters);
	/* At exit or after a reload: the loop may not run again to hear a QUIT. */
	while (p->idle != NULL) {
		struct pooled *e = p->idle;
		unlink_entry(p, e);
		upstream_abort(e->up);
		free(e);
	}
	free(p->open);
	free(p);
}

static unsigned idle_for(const struct pool *p, const struct provider_cfg *provider)
{
	unsigned n = 0;
	for (const struct pooled *e = p->idle; e != NULL; e = e->next)
		n += e->provider == provider;
	return n;
}

void pool_put(struct pool *p, struct upstream *up)
{
	const struct provider_cfg *provider = upstream_provider(up);
	struct pooled *e;

	/* Past max_connections a session is kept only briefly: bursts of
	 * concurrent clients (more than max_connections) hand their sessions
	 * to the next clients instead of closing them and opening new ones
	 * (TCP + STARTTLS + TLS handshake + AUTH, then QUIT) a moment later.
	 * It never raises the number of connections to the provider: each
	 * was in use a moment ago. */
	double idle = POOL_IDLE;
	if (!upstream_idle(up) || (e = calloc(1, sizeof(*e))) == NULL) {
		upstream_close(up);
		return;
	}
	if (idle_for(p, provider) >= provider->max_connections)
		idle = POOL_OVERFLOW_IDLE;
	e->pool = p;
	e->up = up;
	e->provider = provider;
	upstream_set_callbacks(up, &idle_callbacks, e);
	e->idle_left = idle > POOL_SETTLE ? idle - POOL_SETTLE : 0.;
	ev_timer_init(&e->idle, on_idle_timeout, idle > POOL_SETTLE ? POOL_SETTLE : idle, 0.);
	e->idle.data = e;
	ev_timer_start(p->loop, &e->idle);
	e->next = p->idle;
	p->idle = e;
	p->count++;
	wake_one(p, provider);
}

struct upstream *pool_take(struct pool *p, const struct provider_cfg *provider, unsigned *pair)
{
	for (struct pooled *e = p->idle; e != NULL; e = e->next) {
		if (e->provider != provider)
			continue;
		struct upstream *up = e->up;
		unlink_entry(p, e);
		free(e);
		*pair = pool_pair_of(provider, up);
		return up;
	}
	return NULL;
}

unsigned pool_idle_count(const struct pool *p)
{
	return p->count;
}

unsigned pool_pair_of(const struct provider_cfg *provider, const struct upstream *up)
{
	struct upstream_info info;

	upstream_get_info(up, &info);
	for (unsigned i = 0; i < provider->nports; i++)
		if (provider->ports[i].port == info.port && strcmp(tls_mode_name(provider->ports[i].mode), info.mode) == 0)
			return i;
	return 0;
}

/* ---- sessions per provider ---- */

static struct open_count *count_of(const struct pool *p, const struct provider_cfg *provider)
{
	for (unsigned i = 0; i < p->nopen; i++)
		if (p->open[i].provider == provider)
			return &p->open[i];
	return NULL;
}

void pool_opened(struct pool *p, const struct provider_cfg *provider)
{
	struct open_count *c = count_of(p, provider);

	if (c == NULL) {
		struct open_count *bigger = realloc(p->open, (p->nopen + 1) * sizeof(*bigger));
		if (bigger == NULL)
			return; /* not counted: the cap is a little loose, nothing breaks */
		p->open = bigger;
		c = &p->open[p->nopen++];
		*c = (struct open_count){ .provider = provider };
	}
	c->n++;
}

void pool_given_up(void *pool, const struct provider_cfg *provider)
{
	struct pool *p = pool;
	struct open_count *c = count_of(p, provider);

	if (c != NULL && c->n > 0)
		c->n--;
	if (!p->freeing)
		wake_one(p, provider);
}

bool pool_has_room(const struct pool *p, const struct provider_cfg *provider)
{
	const struct open_count *c = count_of(p, provider);

	return c == NULL || c->n < provider->max_connections;
}

bool pool_wanted(const struct pool *p, const struct provider_cfg *provider)
{
	for (const struct pool_waiter *w = p->waiters; w != NULL; w = w->next)
		if (w->provider == provider && !w->woken)
			return true;
	return false;
}

static void unlink_waiter(struct pool_waiter *w)
{
	for (struct pool_waiter **pp = &w->pool->waiters; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	ev_timer_stop(w->pool->loop, &w->timer);
}

static void on_waiter_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pool_waiter *pw = w->data;
	pool_wake_fn cb = pw->cb;
	void *arg = pw->arg;
	bool woken = pw->woken;
	(void)loop;
	(void)revents;

	unlink_waiter(pw);
	free(pw);
	cb(arg, woken);
}

/* The oldest waiter for the provider goes next, from the loop (the
 * caller may be deep inside a session's callbacks). */
static void wake_one(struct pool *p, const struct provider_cfg *provider)
{
	for (struct pool_waiter *w = p->waiters; w != NULL; w = w->next) {
		if (w->provider != provider || w->woken)
			continue;
		w->woken = true;
		ev_timer_stop(p->loop, &w->timer);
		ev_timer_set(&w->timer, 0., 0.);
		ev_timer_start(p->loop, &w->timer);
		return;
	}
}

struct pool_waiter *pool_wait(struct pool *p, const struct provider_cfg *provider, double timeout, pool_wake_fn cb,
    void *arg)
{
	struct pool_waiter *w = calloc(1, sizeof(*w));
	struct pool_waiter **tail = &p->waiters;

	if (w == NULL)
		return NULL;
	*w = (struct pool_waiter){ .pool = p, .provider = provider, .cb = cb, .arg = arg };
	ev_timer_init(&w->timer, on_waiter_timer, timeout, 0.);
	w->timer.data = w;
	ev_timer_start(p->loop, &w->timer);
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = w;
	return w;
}

void pool_wait_cancel(struct pool_waiter *w)
{
	if (w == NULL)
		return;
	struct pool *p = w->pool;
	bool woken = w->woken;
	const struct provider_cfg *provider = w->provider;
	unlink_waiter(w);
	free(w);
	/* A wake-up it did not use goes to the next in line. */
	if (woken && !p->freeing)
		wake_one(p, provider);
}

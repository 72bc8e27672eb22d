/*
 * pace.c: see pace.h. A short list of per-provider states; the quota's
 * window is a ring of 1440 one-minute buckets with their running sum.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* strcasestr; autotools' config.h is shadowed by src/config.h */
#endif
#include "pace.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MINUTES (24 * 60)

struct pace_state {
	char *name;
	double next;               /* rate: the next turn starts no earlier */
	double backoff_until;
	double backoff;            /* the last back-off; 0: none since the last accepted message */
	struct smtp_reply reply;   /* the throttling reply of the back-off */
	unsigned inflight;         /* turns taken, not released */
	uint32_t *minutes;         /* quota: MAILs accepted per minute, ring; NULL until the first */
	int64_t newest;            /* the minute of the newest bucket */
	unsigned used;             /* the sum of the ring */
	struct pace_state *next_state;
};

struct pace_table {
	struct pace_state *states;
	unsigned refs;
};

const char *pace_block_name(enum pace_block b)
{
	static const char *const names[] = {
#define X(sym, name) name,
		PACE_BLOCKS(X)
#undef X
	};
	return names[b];
}

struct pace_table *pace_table_new(void)
{
	struct pace_table *t = calloc(1, sizeof(*t));

	if (t != NULL)
		t->refs = 1;
	return t;
}

struct pace_table *pace_table_ref(struct pace_table *t)
{
	t->refs++;
	return t;
}

void pace_table_unref(struct pace_table *t)
{
	if (t == NULL || --t->refs > 0)
		return;
	while (t->states != NULL) {
		struct pace_state *s = t->states;
		t->states = s->next_state;
		free(s->name);
		free(s->minutes);
		free(s);
	}
	free(t);
}

static struct pace_state *find(const struct pace_table *t, const struct provider_cfg *p)
{
	for (struct pace_state *s = t->states; s != NULL; s = s->next_state)
		if (strcmp(s->name, p->name) == 0)
			return s;
	return NULL;
}

static struct pace_state *get(struct pace_table *t, const struct provider_cfg *p)
{
	struct pace_state *s = find(t, p);

	if (s != NULL)
		return s;
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->name = strdup(p->name)) == NULL) {
		free(s);
		return NULL;
	}
	s->next_state = t->states;
	t->states = s;
	return s;
}

/* ---- the quota's window ---- */

/* Moves the window to `now`: buckets older than 24 hours are emptied. */
static void slide(struct pace_state *s, double now)
{
	int64_t minute = (int64_t)floor(now / 60.0);

	if (s->minutes == NULL || minute <= s->newest)
		return;
	if (minute - s->newest >= MINUTES) {
		memset(s->minutes, 0, MINUTES * sizeof(*s->minutes));
		s->used = 0;
	} else {
		for (int64_t m = s->newest + 1; m <= minute; m++) {
			s->used -= s->minutes[m % MINUTES];
			s->minutes[m % MINUTES] = 0;
		}
	}
	s->newest = minute;
}

/* When enough accepted messages leave the window for one more to start. */
static double quota_delay(const struct pace_state *s, unsigned quota, double now)
{
	unsigned excess = s->used + s->inflight - quota + 1, gone = 0;

	if (s->minutes != NULL && excess <= s->used) {
		for (int64_t m = s->newest - MINUTES + 1; m <= s->newest; m++) {
			gone += s->minutes[m % MINUTES];
			if (gone >= excess)
				return (double)(m + MINUTES + 1) * 60.0 - now;
		}
	}
	return 1.0; /* held by transactions in flight: look again soon */
}

/* ---- turns ---- */

double pace_delay(struct pace_table *t, const struct provider_cfg *p, double now, enum pace_block *why)
{
	struct pace_state *s = find(t, p);

	*why = PACE_GO;
	if (s == NULL)
		return 0;
	if (s->backoff_until > now) {
		*why = PACE_BACKOFF;
		return s->backoff_until - now;
	}
	slide(s, now);
	if (p->daily_quota > 0 && s->used + s->inflight >= p->daily_quota) {
		*why = PACE_QUOTA;
		return quota_delay(s, p->daily_quota, now);
	}
	if (p->rate_count > 0 && s->next > now) {
		*why = PACE_RATE;
		return s->next - now;
	}
	return 0;
}

bool pace_take(struct pace_table *t, const struct provider_cfg *p, double now)
{
	struct pace_state *s;

	if (p->rate_count == 0 && p->daily_quota == 0)
		return true; /* nothing to count */
	if ((s = get(t, p)) == NULL)
		return false;
	if (p->rate_count > 0)
		s->next = (s->next > now ? s->next : now) + p->rate_period / p->rate_count;
	s->inflight++;
	return true;
}

void pace_release(struct pace_table *t, const struct provider_cfg *p, double now, bool accepted)
{
	struct pace_state *s = find(t, p);

	if (s == NULL || s->inflight == 0)
		return; /* taken before a reload that added the limit: not counted */
	s->inflight--;
	if (!accepted || p->daily_quota == 0)
		return;
	if (s->minutes == NULL) {
		if ((s->minutes = calloc(MINUTES, sizeof(*s->minutes))) == NULL)
			return;
		s->newest = (int64_t)floor(now / 60.0);
	}
	slide(s, now);
	s->minutes[s->newest % MINUTES]++;
	s->used++;
}

/* ---- throttling ---- */

static bool says_any(const char *text, const char *const *words, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcasestr(text, words[i]) != NULL)
			return true;
	return false;
}

bool pace_is_throttling(const struct smtp_reply *r)
{
	static const char *const words[] = { "rate", "throttl", "too many", "quota" };
	/* A limit of this session alone ("421 Too many messages on this
	 * connection"): a new session is the answer, not a back-off. */
	static const char *const session_only[] = { "this connection", "per connection", "this session", "per session" };

	if (r->code != 421 && r->code != 450 && r->code != 451 && r->code != 454)
		return false;
	return says_any(r->text, words, sizeof(words) / sizeof(words[0])) &&
	    !says_any(r->text, session_only, sizeof(session_only) / sizeof(session_only[0]));
}

double pace_throttled(struct pace_table *t, const struct provider_cfg *p, const struct smtp_reply *r, double now,
    double initial, double max)
{
	struct pace_state *s = get(t, p);

	if (s == NULL)
		return 0;
	if (s->backoff_until > now)
		return s->backoff_until - now; /* the same episode: several replies of one transaction */
	s->backoff = s->backoff > 0 ? s->backoff * 2 : initial;
	if (s->backoff > max)
		s->backoff = max;
	s->backoff_until = now + s->backoff;
	s->reply = *r;
	return s->backoff;
}

void pace_accepted(struct pace_table *t, const struct provider_cfg *p)
{
	struct pace_state *s = find(t, p);

	if (s != NULL)
		s->backoff = 0;
}

const struct smtp_reply *pace_backoff_reply(struct pace_table *t, const struct provider_cfg *p)
{
	struct pace_state *s = find(t, p);

	return s != NULL ? &s->reply : NULL;
}

const char *pace_rate_text(const struct provider_cfg *p, char *buf, size_t len)
{
	char unit = p->rate_period >= 3600 ? 'h' : p->rate_period >= 60 ? 'm' : 's';

	if (p->rate_count == 0)
		snprintf(buf, len, "none");
	else
		snprintf(buf, len, "%u/%c", p->rate_count, unit);
	return buf;
}

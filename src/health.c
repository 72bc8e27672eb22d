/*
 * health.c: see health.h.
 */
#include "health.h"

#include <stdlib.h>

#include "cfgval.h"
#include "metrics.h"

/* A worker whose heartbeat (once a second) is this old is stalled. */
#define LIVE_STALL 10.0

bool health_live(const struct health_view *v, FILE *out)
{
	bool alive = true;

	/* Worker 0 answers, so its loop turns; the others publish a beat. */
	for (unsigned k = 1; k < v->nworkers; k++) {
		double beat = metrics_worker_beat(k);
		if (beat > 0 && v->now - beat > LIVE_STALL) {
			char age[32];
			fprintf(out, "worker %u: loop stalled for %s\n", k, cfg_format_duration(age, sizeof(age), v->now - beat));
			alive = false;
		}
	}
	if (alive)
		fputs("ok\n", out);
	return alive;
}

/* Up, or false with why in st (the caller words it). */
static bool provider_up(const struct provider_cfg *p, struct metrics_provider_state *st)
{
	metrics_provider_get(p->name, st);
	return st->last_ok > 0 && st->last_ok >= st->last_fail;
}

static void provider_reason(const struct provider_cfg *p, const struct metrics_provider_state *st, FILE *out)
{
	char since[32];

	if (st->last_fail == 0)
		fprintf(out, "provider %s: not checked yet (a check has started)\n", p->name);
	else
		fprintf(out, "provider %s: no working path since %s (%s)\n", p->name,
		    cfg_format_utc(since, sizeof(since), st->failing_since), st->reason);
}

bool health_ready(const struct health_view *v, FILE *out)
{
	const struct config *cfg = v->cfg;
	char *text = NULL;
	size_t len = 0;
	FILE *why = open_memstream(&text, &len);
	bool ready = why != NULL;

	for (unsigned i = 0; why != NULL && i < cfg->relay.nproviders; i++) {
		struct metrics_provider_state st;
		if (!provider_up(cfg->relay.providers[i], &st)) {
			provider_reason(cfg->relay.providers[i], &st, why);
			ready = false;
		}
	}
	if (why != NULL && v->queue && v->oldest_age >= cfg->queue.alert_age) {
		char age[32], limit[32];
		fprintf(why, "queue: oldest message %s old (alert_age %s)\n",
		    cfg_format_duration(age, sizeof(age), v->oldest_age),
		    cfg_format_duration(limit, sizeof(limit), cfg->queue.alert_age));
		ready = false;
	}
	if (why == NULL || fclose(why) != 0) {
		fputs("not ready\nout of memory\n", out);
		free(text);
		return false;
	}
	fputs(ready ? "ready\n" : "not ready\n", out);
	fwrite(text, 1, len, out);
	free(text);
	return ready;
}

void health_stale(const struct health_view *v, void (*check)(unsigned provider, void *arg), void *arg)
{
	const struct config *cfg = v->cfg;

	for (unsigned i = 0; i < cfg->relay.nproviders; i++) {
		const struct provider_cfg *p = cfg->relay.providers[i];
		struct metrics_provider_state st;
		metrics_provider_get(p->name, &st);
		double last = st.last_ok > st.last_fail ? st.last_ok : st.last_fail;
		if (last == 0 || v->now - last >= p->recheck_interval)
			check((unsigned)(p - cfg->providers), arg);
	}
}

void health_write_gauges(const struct health_view *v, FILE *out)
{
	const struct config *cfg = v->cfg;

	if (cfg->nproviders == 0)
		return;
	fputs("# HELP subrelay_provider_up 1 when the provider's last try worked (as /readyz says), else 0.\n"
	      "# TYPE subrelay_provider_up gauge\n", out);
	for (unsigned i = 0; i < cfg->nproviders; i++) {
		struct metrics_provider_state st;
		fprintf(out, "subrelay_provider_up{provider=\"%s\"} %d\n", cfg->providers[i].name,
		    provider_up(&cfg->providers[i], &st) ? 1 : 0);
	}
}

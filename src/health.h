/*
 * health: the answers to "is the relay alive?" (GET /healthz) and "can
 * it do its job?" (GET /readyz, `subrelayctl health`), and the
 * subrelay_provider_up gauges, all from one definition.
 *
 * A provider is up when its last outcome, in any worker, was a success:
 * a ready session (connected, TLS, EHLO and AUTH done) for a message or
 * a check. A provider whose every candidate failed is down from then
 * until one works again. A provider never tried since the start is
 * down ("not checked yet"): asking for readiness starts a check of every
 * provider of the default route whose last outcome is older than its
 * recheck_interval (or that has none), so the answer turns within
 * seconds on a fresh daemon and stays fresh on a quiet one, without
 * sending any mail.
 *
 * Ready: every provider of the default route (relay.providers) is up
 * (none configured is fine), and in queue mode the oldest queued
 * message is younger than queue.alert_age. Alive: the loop answering
 * turns (it answers), and every other worker published its heartbeat
 * lately.
 *
 * Callers own the loop and the checks; this module only reads
 * metrics.h's shared state and writes text.
 */
#ifndef SUBRELAY_HEALTH_H
#define SUBRELAY_HEALTH_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

struct health_view {
	const struct config *cfg;
	double now;                /* Unix time (ev_now) */
	unsigned nworkers;
	bool queue;                /* queue mode: the age clause applies */
	double oldest_age;         /* seconds; 0 when the queue is empty */
};

/* "ok", or one line per stalled worker; true when alive. */
bool health_live(const struct health_view *v, FILE *out);
/* "ready", or "not ready" then one line per reason; true when ready. */
bool health_ready(const struct health_view *v, FILE *out);
/* Calls check(i) for each provider i (index in cfg->providers) of the
 * default route that needs a fresh outcome. */
void health_stale(const struct health_view *v, void (*check)(unsigned provider, void *arg), void *arg);
/* subrelay_provider_up{provider} for every configured provider. */
void health_write_gauges(const struct health_view *v, FILE *out);

#endif

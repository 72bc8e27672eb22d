/*
 * metrics: counters and gauges, served in the Prometheus text format at
 * http://relay.metrics/metrics (off when relay.metrics is empty).
 *
 * Modules count events with the metrics_* calls (cheap: an array update,
 * no I/O); gauges that belong to another module (queue depth, sessions)
 * are read through a callback when /metrics is asked for. The HTTP side
 * answers GET /metrics, /healthz and /readyz (404 for other paths, 405
 * for other methods), one request per connection, never blocking the
 * loop.
 *
 * With relay.workers > 1 every process counts into one block shared
 * across fork (metrics_init_shared(), called before the first fork), so
 * /metrics, served by worker 0, covers all of them; each worker
 * publishes its own gauges (sessions, idle upstream sessions) in its
 * slot and worker 0 adds them up.
 */
#ifndef SUBRELAY_METRICS_H
#define SUBRELAY_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <ev.h>

#include "cfgval.h"

/* Message outcomes: accepted (queued or relayed in), delivered, deferred, failed. */
void metrics_message(const char *result);
/* A delivery's duration, from acceptance (or MAIL in passthrough) to the provider's verdict. */
void metrics_delivery_seconds(double seconds);
/* One upstream attempt's outcome: "ok" or a failure class. */
void metrics_attempt(const char *provider, uint16_t port, const char *mode, const char *result);
void metrics_session_opened(void);
/* A client's AUTH was checked (relay.users_file). */
void metrics_client_auth(bool ok);
/* One fsync of a spool file or directory (safe from the commit thread). */
void metrics_spool_fsync(void);
/* auth = xoauth2: when the provider's current access token expires (Unix time). */
void metrics_oauth2_expiry(const char *provider, double timestamp);

/* The message counters (every worker's) as "RESULT N" lines, for
 * `subrelayctl stats`: the very numbers /metrics shows. */
void metrics_write_messages(FILE *out);

/*
 * What became of the last tries of each provider, from every worker
 * (health.h decides from it whether the provider is up). A success is a
 * ready session (connected, TLS and AUTH done); a failure is a provider
 * whose every candidate failed. Times are Unix times (ev_now()).
 */
struct metrics_provider_state {
	double last_ok;            /* 0: never */
	double last_fail;          /* 0: never */
	double failing_since;      /* the first failure since the last success; 0: none */
	char reason[160];          /* the last failure's */
};
void metrics_provider_outcome(const char *provider, bool ok, const char *reason, double now);
/* A copy of provider's state; all zero when nothing was recorded yet. */
void metrics_provider_get(const char *provider, struct metrics_provider_state *out);

/* Moves the counters into memory that survives fork as shared (before
 * forking workers). False when the mapping fails: counting stays local. */
bool metrics_init_shared(void);

#define METRICS_WORKERS_MAX 1024
struct metrics_worker_gauges {
	uint32_t sessions;         /* client sessions alive */
	uint32_t idle;             /* idle pooled upstream sessions */
	double beat;               /* when the worker's loop last published them (0: not yet) */
};
/* This process is worker k: metrics_worker_set() writes slot k. */
void metrics_set_worker(unsigned k);
/* now: the loop's time, the heartbeat /healthz checks. */
void metrics_worker_set(unsigned sessions, unsigned idle, double now);
/* Worker k's last heartbeat (0: none yet, or gone). */
double metrics_worker_beat(unsigned k);
/* Sessions alone, written as they open and close (max_clients reads them). */
void metrics_worker_sessions(unsigned sessions);
/* A worker is gone: its gauges no longer count. */
void metrics_worker_clear(unsigned k);
struct metrics_worker_gauges metrics_workers_sum(unsigned nworkers);

/* What the owner of the listener answers: gauges written in Prometheus
 * format, and the health answers (health.h), true when healthy. */
struct metrics_handlers {
	void (*gauges)(FILE *out, void *arg);
	bool (*live)(FILE *out, void *arg);       /* GET /healthz */
	bool (*ready)(FILE *out, void *arg);      /* GET /readyz */
	void *arg;
};

struct metrics_server;

/* Two steps: the startup binds (and logs `metrics address=`) before
 * privileges are dropped; -1 with the reason in err. The worker that
 * owns /metrics (worker 0) serves the socket and, from then on, owns
 * the descriptor: metrics_close() closes it. NULL when out of memory. */
int metrics_bind(const struct sockaddr_any *addr, char *err, size_t errlen);
struct metrics_server *metrics_serve(struct ev_loop *loop, int fd, const struct metrics_handlers *h);
void metrics_close(struct metrics_server *m);
/* The whole text, as served (for tests and the control socket). */
void metrics_write(FILE *out, const struct metrics_handlers *h);

#endif

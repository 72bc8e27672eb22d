/*
 * metrics: counters and gauges, served in the Prometheus text format at
 * http://relay.metrics/metrics (off when relay.metrics is empty).
 *
 * Modules count events with the metrics_* calls (cheap: an array update,
 * no I/O); gauges that belong to another module (queue depth, sessions)
 * are read through a callback when /metrics is asked for. The HTTP side
 * answers GET /metrics and nothing else, one request per connection,
 * never blocking the loop.
 */
#ifndef SUBRELAY_METRICS_H
#define SUBRELAY_METRICS_H

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

/* Gauges owned elsewhere, written by the callback in Prometheus format. */
typedef void (*metrics_gauges_fn)(FILE *out, void *arg);

struct metrics_server;

/* NULL with the reason in err when the address cannot be bound. */
struct metrics_server *metrics_listen(struct ev_loop *loop, const struct sockaddr_any *addr,
    metrics_gauges_fn gauges, void *arg, char *err, size_t errlen);
void metrics_close(struct metrics_server *m);
/* The whole text, as served (for tests and the control socket). */
void metrics_write(FILE *out, metrics_gauges_fn gauges, void *arg);

#endif

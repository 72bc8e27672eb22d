/*
 * path.c: see path.h. A cursor walks providers, then (port, mode) pairs,
 * then resolved addresses; each step is one upstream attempt.
 */
#include "path.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct path_search {
	const struct path_env *env;
	struct provider_cfg *const *providers;
	unsigned nproviders;
	unsigned provider;         /* cursor: provider index */
	unsigned pair;             /* cursor: (port, mode) index */
	unsigned addr;             /* cursor: address index */
	struct sockaddr_storage *addrs;
	unsigned naddrs;
	struct dns_query *query;
	struct upstream *up;
	ev_tstamp attempt_started;
	char log_id[32];
	char last_error[300];
	path_done_cb cb;
	void *arg;
};

static void next_provider(struct path_search *ps);
static void try_current(struct path_search *ps);

static struct provider_cfg *current_provider(const struct path_search *ps)
{
	return ps->providers[ps->provider];
}

static void finish(struct path_search *ps, struct upstream *up)
{
	path_done_cb cb = ps->cb;
	void *arg = ps->arg;
	char error[sizeof(ps->last_error)];

	snprintf(error, sizeof(error), "%s", ps->last_error);
	ps->up = NULL;
	path_search_cancel(ps);
	cb(up, up ? NULL : error, arg);
}

static SSL_CTX *provider_ctx(const struct path_search *ps)
{
	const struct config *cfg = ps->env->cfg;
	return ps->env->tls_ctx[current_provider(ps) - cfg->providers];
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static void on_ready(struct upstream *up, void *arg)
{
	struct path_search *ps = arg;
	struct upstream_info info;

	upstream_get_info(up, &info);
	log_info("upstream ready id=%s provider=%s address=%s port=%u mode=%s tls=%s cipher=%s auth=%s elapsed=%.3fs",
	    ps->log_id, info.provider, info.address, info.port, info.mode, info.tls_version, info.tls_cipher,
	    info.auth, ev_now(ps->env->loop) - ps->attempt_started);
	finish(ps, up);
}

static void on_failed(struct upstream *up, void *arg, enum upstream_fail cls, const char *reason)
{
	struct path_search *ps = arg;
	struct upstream_info info;
	char quoted[400];

	upstream_get_info(up, &info);
	log_warn("upstream failed id=%s provider=%s address=%s port=%u mode=%s class=%s elapsed=%.3fs reason=%s",
	    ps->log_id, info.provider, info.address, info.port, info.mode, upstream_fail_name(cls),
	    ev_now(ps->env->loop) - ps->attempt_started, log_quote(quoted, sizeof(quoted), reason));
	snprintf(ps->last_error, sizeof(ps->last_error), "%s port %u: %s", info.provider, info.port,
	    upstream_fail_name(cls));
	upstream_abort(up);
	ps->up = NULL;
	ps->addr++;
	try_current(ps);
}

static void on_unexpected_reply(struct upstream *up, void *arg, const struct smtp_reply *reply)
{
	(void)up;
	(void)arg;
	(void)reply;
}

static void on_unexpected_writable(struct upstream *up, void *arg)
{
	(void)up;
	(void)arg;
}

static const struct upstream_callbacks attempt_callbacks = {
	.ready = on_ready,
	.reply = on_unexpected_reply,
	.writable = on_unexpected_writable,
	.failed = on_failed,
};

/* Starts the attempt under the cursor, moving it past exhausted levels. */
static void try_current(struct path_search *ps)
{
	for (;;) {
		struct provider_cfg *p = current_provider(ps);
		if (ps->addr >= ps->naddrs) {
			ps->addr = 0;
			ps->pair++;
		}
		if (ps->pair >= p->nports) {
			ps->provider++;
			next_provider(ps);
			return;
		}
		struct sockaddr_storage *ss = &ps->addrs[ps->addr];
		set_port(ss, p->ports[ps->pair].port);
		struct upstream_params params = {
			.loop = ps->env->loop,
			.provider = p,
			.tls_ctx = provider_ctx(ps),
			.addr = (struct sockaddr *)ss,
			.addrlen = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
			.port_mode = p->ports[ps->pair],
			.helo_name = ps->env->cfg->relay.hostname,
			.log_id = ps->log_id,
		};
		ps->attempt_started = ev_now(ps->env->loop);
		ps->up = upstream_open(&params, &attempt_callbacks, ps);
		if (ps->up != NULL)
			return;
		snprintf(ps->last_error, sizeof(ps->last_error), "%s: cannot create socket", p->name);
		ps->addr++;
	}
}

static void on_resolved(const struct dns_result *res, void *arg)
{
	struct path_search *ps = arg;
	struct provider_cfg *p = current_provider(ps);

	ps->query = NULL;
	if (res->error != NULL || res->naddrs == 0) {
		log_warn("upstream failed id=%s provider=%s host=%s class=dns reason=%s", ps->log_id, p->name, p->host,
		    res->error ? res->error : "no address");
		snprintf(ps->last_error, sizeof(ps->last_error), "%s: cannot resolve %s", p->name, p->host);
		ps->provider++;
		next_provider(ps);
		return;
	}
	free(ps->addrs);
	ps->addrs = calloc(res->naddrs, sizeof(*ps->addrs));
	if (ps->addrs == NULL) {
		snprintf(ps->last_error, sizeof(ps->last_error), "out of memory");
		finish(ps, NULL);
		return;
	}
	memcpy(ps->addrs, res->addrs, res->naddrs * sizeof(*ps->addrs));
	ps->naddrs = res->naddrs;
	ps->pair = 0;
	ps->addr = 0;
	try_current(ps);
}

static void next_provider(struct path_search *ps)
{
	if (ps->provider >= ps->nproviders) {
		finish(ps, NULL);
		return;
	}
	struct provider_cfg *p = current_provider(ps);
	ps->query = dns_lookup(ps->env->dns, p->host, 0, on_resolved, ps);
	if (ps->query == NULL) {
		snprintf(ps->last_error, sizeof(ps->last_error), "%s: resolver error", p->name);
		ps->provider++;
		next_provider(ps);
	}
}

struct path_search *path_search_start(const struct path_env *env, struct provider_cfg *const *providers,
    unsigned nproviders, const char *log_id, path_done_cb cb, void *arg)
{
	struct path_search *ps = calloc(1, sizeof(*ps));
	if (ps == NULL)
		return NULL;
	ps->env = env;
	ps->providers = providers;
	ps->nproviders = nproviders;
	ps->cb = cb;
	ps->arg = arg;
	snprintf(ps->log_id, sizeof(ps->log_id), "%s", log_id);
	ps->query = dns_lookup(env->dns, providers[0]->host, 0, on_resolved, ps);
	if (ps->query == NULL) {
		free(ps);
		return NULL;
	}
	return ps;
}

void path_search_cancel(struct path_search *ps)
{
	if (ps == NULL)
		return;
	if (ps->query != NULL)
		dns_cancel(ps->query);
	upstream_abort(ps->up);
	free(ps->addrs);
	free(ps);
}

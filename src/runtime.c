#include "runtime.h"

#include <stdio.h>
#include <stdlib.h>

#include "oauth2.h"
#include "pace.h"
#include "pool.h"
#include "tls.h"

static bool server_context(const struct config *cfg, SSL_CTX **ctx, FILE *errs)
{
	const struct relay_cfg *r = &cfg->relay;
	char err[512];

	if (r->tls_cert_file == NULL || r->tls_key_file == NULL)
		return true;
	if ((ctx[cfg->nproviders] = tls_server_ctx(r->tls_cert_file, r->tls_key_file, err, sizeof(err))) != NULL)
		return true;
	if (r->tls_line == 0)
		fprintf(errs, "-o: relay.tls_cert_file: %s\n", err);
	else
		fprintf(errs, "%s:%u: tls_cert_file: %s\n", cfg->file, r->tls_line, err);
	return false;
}

SSL_CTX **runtime_tls_contexts(const struct config *cfg, FILE *errs)
{
	SSL_CTX **ctx = calloc(cfg->nproviders + 1, sizeof(*ctx));
	bool ok = ctx != NULL;

	for (unsigned i = 0; ctx != NULL && i < cfg->nproviders; i++) {
		char err[512];
		ctx[i] = tls_client_ctx(&cfg->providers[i], err, sizeof(err));
		if (ctx[i] != NULL)
			continue;
		ok = false;
		if (cfg->providers[i].line == 0)
			fprintf(errs, "-o: provider %s: %s\n", cfg->providers[i].name, err);
		else
			fprintf(errs, "%s:%u: provider %s: %s\n", cfg->file, cfg->providers[i].line,
			    cfg->providers[i].name, err);
	}
	if (ok && !server_context(cfg, ctx, errs))
		ok = false;
	if (ok)
		return ctx;
	runtime_free_tls_contexts(cfg, ctx);
	return NULL;
}

void runtime_free_tls_contexts(const struct config *cfg, SSL_CTX **ctx)
{
	for (unsigned i = 0; ctx != NULL && i <= cfg->nproviders; i++)
		SSL_CTX_free(ctx[i]);
	free(ctx);
}

SSL_CTX *runtime_server_tls(const struct runtime *rt)
{
	return rt->path.tls_ctx[rt->path.cfg->nproviders];
}

struct runtime *runtime_new(struct ev_loop *loop, struct dns *dns, struct config *cfg, SSL_CTX **tls_ctx,
    const struct runtime *previous)
{
	struct runtime *rt = calloc(1, sizeof(*rt));

	if (rt == NULL)
		return NULL;
	rt->refs = 1;
	rt->path.loop = loop;
	rt->path.dns = dns;
	rt->path.cfg = cfg;
	rt->path.tls_ctx = tls_ctx;
	rt->path.memory = path_memory_new(&rt->path);
	rt->path.pool = pool_new(loop);
	rt->path.oauth2 = oauth2_caches_new(loop, cfg);
	/* Pacing outlives reloads: counts and back-offs are the provider's. */
	rt->path.pace = previous != NULL ? pace_table_ref(previous->path.pace) : pace_table_new();
	if (rt->path.memory == NULL || rt->path.pool == NULL || rt->path.oauth2 == NULL || rt->path.pace == NULL) {
		path_memory_free(rt->path.memory, cfg->nproviders);
		pool_free(rt->path.pool);
		oauth2_caches_free(rt->path.oauth2, cfg->nproviders);
		pace_table_unref(rt->path.pace);
		free(rt);
		return NULL;
	}
	if (previous != NULL) {
		char *text = path_memory_export(&previous->path);
		if (text != NULL)
			path_memory_import(&rt->path, text);
		free(text);
		rt->path.memory_changed = previous->path.memory_changed;
		rt->path.memory_arg = previous->path.memory_arg;
	}
	return rt;
}

struct runtime *runtime_ref(struct runtime *rt)
{
	rt->refs++;
	return rt;
}

void runtime_unref(struct runtime *rt)
{
	if (rt == NULL || --rt->refs > 0)
		return;
	struct config *cfg = (struct config *)rt->path.cfg;
	pool_free(rt->path.pool);
	path_memory_free(rt->path.memory, cfg->nproviders);
	oauth2_caches_free(rt->path.oauth2, cfg->nproviders);
	pace_table_unref(rt->path.pace);
	runtime_free_tls_contexts(cfg, rt->path.tls_ctx);
	config_free(cfg);
	free(rt);
}

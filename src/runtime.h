/*
 * runtime: one generation of the configuration with what is built from
 * it (TLS contexts, the path chooser's memory). Sessions and deliveries
 * hold a reference for their whole life, so a reload can swap in a new
 * generation while the old one stays valid for whoever still uses it; it
 * is freed with its last reference.
 */
#ifndef SUBRELAY_RUNTIME_H
#define SUBRELAY_RUNTIME_H

#include "path.h"

struct runtime {
	struct path_env path;      /* loop, resolver, cfg, TLS contexts, memory */
	unsigned refs;
};

/* Takes ownership of cfg and tls_ctx. `previous` (may be NULL) lends its
 * remembered pairs, matched by provider name. NULL when out of memory. */
struct runtime *runtime_new(struct ev_loop *loop, struct dns *dns, struct config *cfg, SSL_CTX **tls_ctx,
    const struct runtime *previous);
struct runtime *runtime_ref(struct runtime *rt);
void runtime_unref(struct runtime *rt);

/* One client context per provider, index-aligned with cfg->providers,
 * then (at index nproviders) the server context of the listeners, NULL
 * without relay.tls_cert_file; problems printed to errs as FILE:LINE
 * (NULL if any). A reload builds new ones: a rotated certificate serves
 * new sessions, a bad one keeps the running configuration. */
SSL_CTX **runtime_tls_contexts(const struct config *cfg, FILE *errs);
void runtime_free_tls_contexts(const struct config *cfg, SSL_CTX **ctx);
/* The listeners' server context, NULL when TLS is not configured. */
SSL_CTX *runtime_server_tls(const struct runtime *rt);

#endif

/*
 * oauth2: one provider's access token for SASL XOAUTH2 (auth = xoauth2),
 * fetched from its token endpoint and cached.
 *
 * Owned by the runtime (runtime.h), one per provider with auth = xoauth2,
 * so every session of that provider in the process shares it and a reload
 * starts a fresh one. A session asks oauth2_token(); when there is no
 * token valid for a while yet (expires_in minus a tenth of it, at most
 * 5 minutes) it waits with oauth2_wait(): one fetch serves every waiter.
 * The fetch is an HTTPS POST (curl_ev.h, certificate verified, never
 * blocking the loop) with the configured grant: client_credentials,
 * refresh_token (a rotated refresh token is written back to its file,
 * 0600, atomically, off the loop) or jwt_bearer (oauth2_jwt.h). The
 * answer is parsed with jansson. A failure (down, slow, an error answer)
 * reaches every waiter with the endpoint's error and error_description.
 *
 * Tokens, secrets, refresh tokens and keys never reach a log line.
 */
#ifndef SUBRELAY_OAUTH2_H
#define SUBRELAY_OAUTH2_H

#include <stdbool.h>
#include <stddef.h>
#include <ev.h>

#include "config.h"

struct oauth2;
struct oauth2_wait;

/* token: valid, borrowed for the call; NULL with error set on failure. */
typedef void (*oauth2_cb)(void *arg, const char *token, const char *error);

/* NULL when out of memory or the key cannot be loaded (checked at config
 * load already). */
struct oauth2 *oauth2_new(struct ev_loop *loop, const struct provider_cfg *p);
/* Waiters are dropped without a call. */
void oauth2_free(struct oauth2 *o);

/* One per provider, index-aligned with cfg->providers, NULL where auth is
 * not xoauth2; NULL when out of memory. */
struct oauth2 **oauth2_caches_new(struct ev_loop *loop, const struct config *cfg);
void oauth2_caches_free(struct oauth2 **caches, unsigned nproviders);

/* The cached token if it is valid for a while yet, else NULL; *generation
 * names it for oauth2_invalidate(). */
const char *oauth2_token(struct oauth2 *o, unsigned *generation);
/* Starts a fetch unless one runs, and calls cb (never from inside) when it
 * ends. NULL when out of memory. */
struct oauth2_wait *oauth2_wait(struct oauth2 *o, oauth2_cb cb, void *arg);
void oauth2_cancel(struct oauth2_wait *w);
/* The provider refused the token of that generation: it is forgotten,
 * unless a newer one replaced it already. */
void oauth2_invalidate(struct oauth2 *o, unsigned generation);
/* The last fetch: "ok", the error, or NULL before any. */
const char *oauth2_last_result(const struct oauth2 *o);

/* A token endpoint's answer, parsed: the access token and a rotated
 * refresh token, both malloc'd (wiped by oauth2_answer_clear()). */
struct oauth2_answer {
	char *token;
	char *refresh_token;       /* NULL when the answer has none */
	double lifetime;           /* seconds: expires_in, else a default; at most OAUTH2_LIFETIME_MAX */
};
/* A longer expires_in is taken as this: the token is fetched again at
 * least daily, and the expiry stays a sane timestamp. */
#define OAUTH2_LIFETIME_MAX (24 * 3600.0)
/* Parses the endpoint's HTTP status and body (JSON; body may be NULL):
 * true with the answer in a, else false with the reason, for a log line
 * and the waiters, in result (a is then empty). Pure: no I/O. */
bool oauth2_parse_answer(long status, const char *body, size_t len, struct oauth2_answer *a, char *result,
    size_t resultlen);
void oauth2_answer_clear(struct oauth2_answer *a);

/* The XOAUTH2 initial client response before base64:
 * "user=" USER "\x01auth=Bearer " TOKEN "\x01\x01"; its length, or 0 when
 * it does not fit in len. */
size_t oauth2_sasl_response(char *out, size_t len, const char *user, const char *token);

/* The provider's XOAUTH2 error challenge, the text of its 334 reply: base64
 * of a JSON object such as Gmail's
 * {"status":"401","schemes":"bearer","scope":"https://mail.google.com/"},
 * in words into out: "status 401, scope https://mail.google.com/" ("-" for
 * a member missing). False (out "") when it is not base64 JSON. It holds no
 * secret: the token is never in it. */
bool oauth2_describe_challenge(const char *b64, char *out, size_t len);

#endif

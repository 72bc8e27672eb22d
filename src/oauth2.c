/*
 * oauth2.c: see oauth2.h. At most one fetch at a time per provider; its
 * waiters are moved aside when it ends, so a waiter that starts another
 * fetch from its callback (a refused token) never hears the old result.
 */
#include "oauth2.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "curl_ev.h"
#include "log.h"
#include "metrics.h"
#include "oauth2_jwt.h"

#define TOKEN_MAX 8192             /* a bigger access token is not one */
#define RESPONSE_MAX (64 * 1024)
#define MARGIN_MAX 300.0           /* refresh at most this long before expiry */
#define DEFAULT_LIFETIME 3600      /* when the answer has no expires_in */
#define DESCRIPTION_MAX 200        /* of error_description, in a log line */
#define CHALLENGE_MAX 768          /* the XOAUTH2 error challenge, decoded */

static const char *const grant_names[] = { "client_credentials", "refresh_token", "jwt_bearer" };

struct oauth2_wait {
	struct oauth2 *o;
	oauth2_cb cb;
	void *arg;
	LIST_ENTRY(oauth2_wait) link;
};
LIST_HEAD(wait_list, oauth2_wait);

struct oauth2 {
	struct ev_loop *loop;
	const struct provider_cfg *p;
	const char *url;           /* oauth2_token_url, else the key's token_uri */
	struct oauth2_key key;     /* jwt_bearer */
	char *refresh_token;       /* the current one: rotated ones replace it */
	char *token;               /* the access token, or NULL */
	ev_tstamp valid_until;     /* loop time: refresh from then on */
	unsigned generation;
	struct curl_ev *curl;
	CURL *easy;                /* the fetch in flight, or NULL */
	char *form;                /* its body: holds secrets, wiped */
	struct curl_slist *headers;
	char *response;
	size_t response_len;
	char curl_error[CURL_ERROR_SIZE];
	ev_tstamp fetch_started;
	ev_timer failed_later;     /* a fetch that could not start is reported from the loop */
	struct wait_list waiters;  /* for the fetch in flight */
	struct wait_list dispatching; /* being told the result */
	char last_result[400];
	int depth;
	bool dying;
};

/* ---- small helpers ---- */

static void wipe_free(char *s, size_t n)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, n);
	free(s);
}

static void wipe_str(char **s)
{
	if (*s != NULL)
		wipe_free(*s, strlen(*s));
	*s = NULL;
}

size_t oauth2_sasl_response(char *out, size_t len, const char *user, const char *token)
{
	int n = snprintf(out, len, "user=%s\001auth=Bearer %s\001\001", user, token);

	return n < 0 || (size_t)n >= len ? 0 : (size_t)n;
}

/* ---- the request ---- */

struct form_field {
	const char *name, *value;
};

/* name=value&... with the values escaped, in one allocation (no copy of a
 * secret is left behind by a realloc). */
static char *build_form(CURL *easy, const struct form_field *f, size_t n)
{
	char *esc[8] = { NULL };
	size_t len = 1;
	char *form = NULL;
	bool ok = n <= 8;

	for (size_t i = 0; ok && i < n; i++) {
		ok = (esc[i] = curl_easy_escape(easy, f[i].value, 0)) != NULL;
		len += ok ? strlen(f[i].name) + strlen(esc[i]) + 2 : 0;
	}
	if (ok && (form = malloc(len)) != NULL) {
		size_t at = 0;
		for (size_t i = 0; i < n; i++)
			at += (size_t)snprintf(form + at, len - at, "%s%s=%s", i ? "&" : "", f[i].name, esc[i]);
	}
	for (size_t i = 0; i < n && i < 8; i++) {
		if (esc[i] != NULL) {
			OPENSSL_cleanse(esc[i], strlen(esc[i]));
			curl_free(esc[i]);
		}
	}
	return form;
}

/* The grant's form fields; false with the reason in err. */
static char *grant_form(struct oauth2 *o, CURL *easy, char *err, size_t errlen)
{
	const struct oauth2_cfg *c = &o->p->oauth2;
	struct form_field f[8];
	size_t n = 0;
	char *jwt = NULL, *form;

	switch (c->grant) {
	case OAUTH2_GRANT_CLIENT_CREDENTIALS:
		f[n++] = (struct form_field){ "grant_type", "client_credentials" };
		break;
	case OAUTH2_GRANT_REFRESH_TOKEN:
		f[n++] = (struct form_field){ "grant_type", "refresh_token" };
		f[n++] = (struct form_field){ "refresh_token", o->refresh_token };
		break;
	case OAUTH2_GRANT_JWT_BEARER:
		jwt = oauth2_jwt(&o->key, c->scope, o->url, o->p->username, time(NULL), err, errlen);
		if (jwt == NULL)
			return NULL;
		f[n++] = (struct form_field){ "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer" };
		f[n++] = (struct form_field){ "assertion", jwt };
		break;
	}
	if (c->grant != OAUTH2_GRANT_JWT_BEARER) {
		f[n++] = (struct form_field){ "client_id", c->client_id };
		if (c->client_secret != NULL)
			f[n++] = (struct form_field){ "client_secret", c->client_secret };
		if (c->scope != NULL)
			f[n++] = (struct form_field){ "scope", c->scope };
	}
	form = build_form(easy, f, n);
	wipe_str(&jwt);
	if (form == NULL)
		snprintf(err, errlen, "out of memory");
	return form;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct oauth2 *o = arg;
	size_t n = size * nmemb;

	if (o->response_len + n > RESPONSE_MAX)
		return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
	char *bigger = malloc(o->response_len + n + 1);
	if (bigger == NULL)
		return 0;
	if (o->response != NULL)
		memcpy(bigger, o->response, o->response_len);
	memcpy(bigger + o->response_len, data, n);
	wipe_free(o->response, o->response_len);
	o->response = bigger;
	o->response_len += n;
	o->response[o->response_len] = '\0';
	return n;
}

/* oauth2_ca_file: extra trust anchors beside the system's. */
static CURLcode add_ca_file(CURL *easy, void *ssl_ctx, void *arg)
{
	const char *file = arg;
	(void)easy;

	return X509_STORE_load_locations(SSL_CTX_get_cert_store(ssl_ctx), file, NULL) == 1 ? CURLE_OK
	                                                                                    : CURLE_SSL_CACERT_BADFILE;
}

static CURL *new_request(struct oauth2 *o, char *err, size_t errlen)
{
	const struct provider_cfg *p = o->p;
	CURL *easy = curl_easy_init();

	if (easy == NULL || (o->form = grant_form(o, easy, err, errlen)) == NULL) {
		if (easy == NULL)
			snprintf(err, errlen, "out of memory");
		curl_easy_cleanup(easy);
		return NULL;
	}
	curl_easy_setopt(easy, CURLOPT_URL, o->url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (p->oauth2.ca_file != NULL) {
		curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION, add_ca_file);
		curl_easy_setopt(easy, CURLOPT_SSL_CTX_DATA, p->oauth2.ca_file);
	}
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(p->connect_timeout * 1000));
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)((p->connect_timeout + p->greeting_timeout) * 1000));
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, o->form);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(o->form));
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, o->headers);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "subrelay/" PACKAGE_VERSION);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, o);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, o->curl_error);
	return easy;
}

/* ---- writing a rotated refresh token back, off the loop ---- */

struct save_job {
	char *path;
	char *token;
	unsigned long seq;
};

static pthread_mutex_t save_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long save_seq, saved_seq; /* save_seq: the loop's; saved_seq: under save_lock */

/* tmp + fsync + rename + fsync of the directory; errno on failure. */
static int save_file(const char *path, const char *token)
{
	char tmp[4096], dir[4096];
	int fd, err = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return errno;
	size_t n = strlen(token);
	if (fchmod(fd, 0600) != 0 || write(fd, token, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
		err = errno ? errno : EIO;
	if (close(fd) != 0 && err == 0)
		err = errno;
	if (err == 0 && rename(tmp, path) != 0)
		err = errno;
	if (err != 0) {
		unlink(tmp);
		return err;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		slash[slash == dir] = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;
}

static void *save_thread(void *arg)
{
	struct save_job *job = arg;

	pthread_mutex_lock(&save_lock);
	if (job->seq > saved_seq) { /* an older rotation never overwrites a newer one */
		int err = save_file(job->path, job->token);
		if (err == 0) {
			saved_seq = job->seq;
			log_info("oauth2 refresh_token saved file=%s", job->path);
		} else {
			log_warn("oauth2 refresh_token not saved file=%s error=\"%s\"", job->path, strerror(err));
		}
	}
	pthread_mutex_unlock(&save_lock);
	wipe_str(&job->token);
	free(job->path);
	free(job);
	return NULL;
}

static void save_refresh_token(const char *path, const char *token)
{
	struct save_job *job = calloc(1, sizeof(*job));
	pthread_attr_t attr;
	pthread_t tid;

	if (job == NULL || (job->path = strdup(path)) == NULL || (job->token = strdup(token)) == NULL) {
		log_warn("oauth2 refresh_token not saved file=%s error=\"out of memory\"", path);
		if (job != NULL) {
			free(job->path);
			free(job);
		}
		return;
	}
	job->seq = ++save_seq;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, save_thread, job) != 0) {
		log_warn("oauth2 refresh_token not saved file=%s error=\"cannot start a thread\"", path);
		wipe_str(&job->token);
		free(job->path);
		free(job);
	}
	pthread_attr_destroy(&attr);
}

/* ---- the answer ---- */

static bool token_ok(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > TOKEN_MAX)
		return false;
	for (; *t; t++)
		if (!isgraph((unsigned char)*t))
			return false; /* no space, CR, LF or \x01 inside the SASL response */
	return true;
}

static double expires_in(json_t *v)
{
	double d = json_is_number(v) ? json_number_value(v) : json_is_string(v) ? atof(json_string_value(v)) : 0;

	/* Not a positive number (NaN too): the default. A huge one is cut:
	 * it arms a timer and becomes an integer timestamp (metrics), where
	 * 1e30 would overflow. */
	if (!(d > 0))
		return DEFAULT_LIFETIME;
	return d < OAUTH2_LIFETIME_MAX ? d : OAUTH2_LIFETIME_MAX;
}

static void wipe_member(json_t *root, const char *name)
{
	json_t *v = json_object_get(root, name);

	if (json_is_string(v))
		OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

bool oauth2_parse_answer(long status, const char *body, size_t len, struct oauth2_answer *a, char *result,
    size_t resultlen)
{
	json_error_t jerr;
	json_t *root = body != NULL ? json_loadb(body, len, 0, &jerr) : NULL;
	const char *error = json_string_value(json_object_get(root, "error"));
	const char *desc = json_string_value(json_object_get(root, "error_description"));
	const char *token = json_string_value(json_object_get(root, "access_token"));
	const char *refresh = json_string_value(json_object_get(root, "refresh_token"));
	bool ok = false;

	memset(a, 0, sizeof(*a));
	if (error != NULL)
		snprintf(result, resultlen, "token endpoint (HTTP %ld): %s%s%.*s", status, error,
		    desc ? ": " : "", DESCRIPTION_MAX, desc ? desc : "");
	else if (status != 200)
		snprintf(result, resultlen, "token endpoint: HTTP %ld%s", status,
		    root == NULL ? " (not a JSON answer)" : "");
	else if (root == NULL)
		snprintf(result, resultlen, "token endpoint: the answer is not JSON");
	else if (token == NULL || !token_ok(token))
		snprintf(result, resultlen, "token endpoint: %s access_token in the answer",
		    token == NULL ? "no" : "an unusable");
	else if ((a->token = strdup(token)) == NULL || (refresh != NULL && (a->refresh_token = strdup(refresh)) == NULL))
		snprintf(result, resultlen, "out of memory");
	else {
		a->lifetime = expires_in(json_object_get(root, "expires_in"));
		ok = true;
	}
	if (root != NULL) {
		wipe_member(root, "access_token");
		wipe_member(root, "refresh_token");
		wipe_member(root, "id_token");
		json_decref(root);
	}
	if (!ok)
		oauth2_answer_clear(a);
	return ok;
}

void oauth2_answer_clear(struct oauth2_answer *a)
{
	wipe_str(&a->token);
	wipe_str(&a->refresh_token);
	a->lifetime = 0;
}

/* Takes the token (and a rotated refresh token) from a 200 answer; else
 * the endpoint's error into o->last_result. */
static bool take_answer(struct oauth2 *o, long status, double *lifetime)
{
	struct oauth2_answer a;

	if (!oauth2_parse_answer(status, o->response, o->response_len, &a, o->last_result, sizeof(o->last_result)))
		return false;
	o->token = a.token;
	a.token = NULL;
	*lifetime = a.lifetime;
	if (a.refresh_token != NULL && o->refresh_token != NULL && strcmp(a.refresh_token, o->refresh_token) != 0) {
		wipe_str(&o->refresh_token);
		o->refresh_token = a.refresh_token;
		a.refresh_token = NULL;
		save_refresh_token(o->p->oauth2.refresh_token.path, o->refresh_token);
	}
	oauth2_answer_clear(&a);
	return true;
}

/* ---- fetching and telling the waiters ---- */

static void destroy(struct oauth2 *o);

static void leave(struct oauth2 *o)
{
	if (--o->depth == 0 && o->dying)
		destroy(o);
}

static void tell_waiters(struct oauth2 *o, const char *token, const char *error)
{
	struct oauth2_wait *w = LIST_FIRST(&o->waiters);
	char *copy = token ? strdup(token) : NULL; /* a waiter may invalidate o->token */

	if (token != NULL && copy == NULL)
		error = "out of memory";
	LIST_INIT(&o->waiters);
	LIST_INIT(&o->dispatching);
	if (w != NULL) {
		LIST_FIRST(&o->dispatching) = w;
		w->link.le_prev = &LIST_FIRST(&o->dispatching);
	}
	o->depth++;
	while (!o->dying && (w = LIST_FIRST(&o->dispatching)) != NULL) {
		oauth2_cb cb = w->cb;
		void *arg = w->arg;
		LIST_REMOVE(w, link);
		free(w);
		cb(arg, copy, copy ? NULL : error);
	}
	wipe_str(&copy);
	leave(o);
}

static void end_fetch(struct oauth2 *o)
{
	curl_easy_cleanup(o->easy);
	o->easy = NULL;
	wipe_str(&o->form);
	wipe_free(o->response, o->response_len);
	o->response = NULL;
	o->response_len = 0;
}

static void on_done(CURL *easy, CURLcode result, void *arg)
{
	struct oauth2 *o = arg;
	const char *grant = grant_names[o->p->oauth2.grant];
	double elapsed = ev_now(o->loop) - o->fetch_started, lifetime = 0;
	long status = 0;
	char quoted[480];

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (result != CURLE_OK)
		snprintf(o->last_result, sizeof(o->last_result), "token endpoint: %s",
		    o->curl_error[0] ? o->curl_error : curl_easy_strerror(result));
	bool ok = result == CURLE_OK && take_answer(o, status, &lifetime);
	end_fetch(o);
	if (!ok) {
		log_warn("oauth2 token provider=%s grant=%s result=failed elapsed=%.3fs reason=%s", o->p->name, grant,
		    elapsed, log_quote(quoted, sizeof(quoted), o->last_result));
		tell_waiters(o, NULL, o->last_result);
		return;
	}
	double margin = lifetime / 10 < MARGIN_MAX ? lifetime / 10 : MARGIN_MAX;
	o->valid_until = ev_now(o->loop) + lifetime - margin;
	o->generation++;
	snprintf(o->last_result, sizeof(o->last_result), "ok");
	metrics_oauth2_expiry(o->p->name, (double)time(NULL) + lifetime);
	log_info("oauth2 token provider=%s grant=%s result=ok expires_in=%.0f elapsed=%.3fs", o->p->name, grant,
	    lifetime, elapsed);
	tell_waiters(o, o->token, NULL);
}

static void on_failed_later(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct oauth2 *o = w->data;
	(void)loop;
	(void)revents;

	tell_waiters(o, NULL, o->last_result);
}

static void start_fetch(struct oauth2 *o)
{
	char err[200] = "out of memory";

	wipe_str(&o->token);
	o->curl_error[0] = '\0';
	if (o->curl == NULL)
		o->curl = curl_ev_new(o->loop, on_done);
	if (o->curl != NULL && (o->easy = new_request(o, err, sizeof(err))) != NULL &&
	    curl_ev_add(o->curl, o->easy, o)) {
		o->fetch_started = ev_now(o->loop);
		log_debug("oauth2 fetch provider=%s grant=%s url=%s", o->p->name, grant_names[o->p->oauth2.grant], o->url);
		return;
	}
	if (o->easy != NULL)
		end_fetch(o);
	snprintf(o->last_result, sizeof(o->last_result), "token request: %s", err);
	log_warn("oauth2 token provider=%s result=failed reason=\"%s\"", o->p->name, o->last_result);
	ev_timer_set(&o->failed_later, 0., 0.);
	ev_timer_start(o->loop, &o->failed_later);
}

/* ---- public ---- */

struct oauth2 *oauth2_new(struct ev_loop *loop, const struct provider_cfg *p)
{
	struct oauth2 *o = calloc(1, sizeof(*o));
	char err[200];

	if (o == NULL)
		return NULL;
	o->loop = loop;
	o->p = p;
	LIST_INIT(&o->waiters);
	LIST_INIT(&o->dispatching);
	ev_init(&o->failed_later, on_failed_later);
	o->failed_later.data = o;
	bool ok = (o->headers = curl_slist_append(NULL, "Accept: application/json")) != NULL &&
	    curl_slist_append(o->headers, "Expect:") != NULL;
	if (ok && p->oauth2.grant == OAUTH2_GRANT_JWT_BEARER)
		ok = p->oauth2.key.text != NULL && oauth2_key_load(p->oauth2.key.text, &o->key, err, sizeof(err));
	if (ok && p->oauth2.refresh_token.text != NULL)
		ok = (o->refresh_token = strdup(p->oauth2.refresh_token.text)) != NULL;
	o->url = p->oauth2.token_url != NULL ? p->oauth2.token_url : o->key.token_uri;
	if (!ok || o->url == NULL) {
		destroy(o);
		return NULL;
	}
	return o;
}

static void destroy(struct oauth2 *o)
{
	struct oauth2_wait *w;

	if (o->easy != NULL)
		curl_ev_remove(o->curl, o->easy);
	end_fetch(o);
	curl_ev_free(o->curl);
	ev_timer_stop(o->loop, &o->failed_later);
	while ((w = LIST_FIRST(&o->waiters)) != NULL || (w = LIST_FIRST(&o->dispatching)) != NULL) {
		LIST_REMOVE(w, link);
		free(w);
	}
	curl_slist_free_all(o->headers);
	oauth2_key_free(&o->key);
	wipe_str(&o->refresh_token);
	wipe_str(&o->token);
	free(o);
}

void oauth2_free(struct oauth2 *o)
{
	if (o == NULL || o->dying)
		return;
	o->dying = true;
	if (o->depth == 0)
		destroy(o);
}

struct oauth2 **oauth2_caches_new(struct ev_loop *loop, const struct config *cfg)
{
	struct oauth2 **caches = calloc(cfg->nproviders + 1, sizeof(*caches));

	for (unsigned i = 0; caches != NULL && i < cfg->nproviders; i++) {
		if (cfg->providers[i].auth != AUTH_CHOICE_XOAUTH2)
			continue;
		if ((caches[i] = oauth2_new(loop, &cfg->providers[i])) == NULL) {
			oauth2_caches_free(caches, i);
			return NULL;
		}
	}
	return caches;
}

void oauth2_caches_free(struct oauth2 **caches, unsigned nproviders)
{
	for (unsigned i = 0; caches != NULL && i < nproviders; i++)
		oauth2_free(caches[i]);
	free(caches);
}

const char *oauth2_token(struct oauth2 *o, unsigned *generation)
{
	if (o->token == NULL || ev_now(o->loop) >= o->valid_until)
		return NULL;
	*generation = o->generation;
	return o->token;
}

struct oauth2_wait *oauth2_wait(struct oauth2 *o, oauth2_cb cb, void *arg)
{
	struct oauth2_wait *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->o = o;
	w->cb = cb;
	w->arg = arg;
	LIST_INSERT_HEAD(&o->waiters, w, link);
	if (o->easy == NULL && !ev_is_active(&o->failed_later))
		start_fetch(o);
	return w;
}

void oauth2_cancel(struct oauth2_wait *w)
{
	if (w == NULL)
		return;
	LIST_REMOVE(w, link);
	free(w);
}

void oauth2_invalidate(struct oauth2 *o, unsigned generation)
{
	if (o->token != NULL && o->generation == generation)
		wipe_str(&o->token);
}

const char *oauth2_last_result(const struct oauth2 *o)
{
	return o->last_result[0] ? o->last_result : NULL;
}

/* A JSON member as text: a string as is, a number written out. */
static void member_text(json_t *root, const char *name, char *out, size_t len)
{
	json_t *v = json_object_get(root, name);

	if (json_is_string(v))
		snprintf(out, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, len, "%lld", (long long)json_integer_value(v));
	else
		snprintf(out, len, "-");
}

bool oauth2_describe_challenge(const char *b64, char *out, size_t len)
{
	unsigned char raw[CHALLENGE_MAX];
	size_t n = strlen(b64);

	if (len > 0)
		out[0] = '\0';
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof(raw))
		return false;
	int got = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	if (got < 0)
		return false;
	for (const char *p = b64 + n; p > b64 && p[-1] == '='; p--)
		got--; /* EVP_DecodeBlock counts the padding as bytes */
	json_t *root = json_loadb((const char *)raw, (size_t)got, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return false;
	}
	char status[16], scope[160];
	member_text(root, "status", status, sizeof(status));
	member_text(root, "scope", scope, sizeof(scope));
	json_decref(root);
	snprintf(out, len, "status %s, scope %s", status, scope);
	for (char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?'; /* the provider's words, for one log line */
	return true;
}

/*
 * config_keys: what each configuration key means. See config_keys.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* explicit_bzero, strcasecmp; autotools' config.h is shadowed by src/config.h */
#endif
#include "config_keys.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <openssl/ssl.h>

#include "secret_file.h"
#include "smtp_parse.h"
#include "users.h"
#include "failf.h"

#define SECRET_MAX 4096    /* a bigger password_file is surely the wrong file */
#define HOSTNAME_MAX 253
#define HOSTNAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"

const char *const config_sect_names[SECT_NKINDS] = { "relay", "provider", "route", "queue" };

#define FIELD(obj, k, type) (*(type *)(void *)((char *)(obj) + (k)->off))

/* Replaces a string field; an empty value leaves it NULL when empty_null. */
static bool set_str(char **field, const char *v, bool empty_null, char *err, size_t errlen)
{
	char *copy = NULL;

	if (!(empty_null && *v == '\0') && (copy = strdup(v)) == NULL)
		return failf(err, errlen, "out of memory");
	config_wipe_free(*field);
	*field = copy;
	return true;
}

/* ---- value parsers: one per kind of key, selected by the table ---- */

static bool p_uint(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	unsigned long n;

	(void)cfg;
	if (!cfg_parse_uint(v, k->min, k->max, &n, err, errlen))
		return false;
	FIELD(obj, k, unsigned) = (unsigned)n;
	return true;
}

static bool p_workers(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	if (strcasecmp(v, "auto") == 0) {
		FIELD(obj, k, unsigned) = 0; /* one per core, decided at startup */
		return true;
	}
	if (*v == '\0' || v[strspn(v, "0123456789")] != '\0')
		return failf(err, errlen, "bad value \"%.64s\" (use a number or auto)", v);
	return p_uint(cfg, k, obj, v, err, errlen);
}

static bool p_size(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	uint64_t n;

	(void)cfg;
	if (!cfg_parse_size(v, &n, err, errlen))
		return false;
	if (n == 0 && !k->zero_ok)
		return failf(err, errlen, "must be more than 0");
	FIELD(obj, k, uint64_t) = n;
	return true;
}

static bool p_duration(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	double d;

	(void)cfg;
	if (!cfg_parse_duration(v, &d, err, errlen))
		return false;
	if (d == 0 && !k->zero_ok)
		return failf(err, errlen, "must be more than 0");
	FIELD(obj, k, double) = d;
	return true;
}

static bool p_bool(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	(void)cfg;
	return cfg_parse_bool(v, &FIELD(obj, k, bool), err, errlen);
}

/* Index of s in the NULL-terminated words, or -1 with a message listing them. */
static int pick(const char *s, const char *const *words, char *err, size_t errlen)
{
	size_t n, len;

	for (n = 0; words[n] != NULL; n++)
		if (strcasecmp(s, words[n]) == 0)
			return (int)n;
	len = (size_t)snprintf(err, errlen, "bad value \"%.64s\" (use", s);
	for (size_t i = 0; i < n && len < errlen; i++)
		len += (size_t)snprintf(err + len, errlen - len, "%s %s",
		    i == 0 ? "" : i + 1 == n ? " or" : ",", words[i]);
	if (len < errlen)
		snprintf(err + len, errlen - len, ")");
	return -1;
}

/* The enums are stored as int: the word's index is the enum value. */
_Static_assert(sizeof(enum delivery_mode) == sizeof(int) && sizeof(enum auth_choice) == sizeof(int) &&
    sizeof(enum oauth2_grant) == sizeof(int) &&
    sizeof(enum bounce_mode) == sizeof(int) && sizeof(enum log_level) == sizeof(int) &&
    sizeof(enum log_format) == sizeof(int),
    "p_enum stores an int");

static bool p_enum(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	int i = pick(v, k->words, err, errlen);

	(void)cfg;
	if (i < 0)
		return false;
	memcpy((char *)obj + k->off, &i, sizeof(i));
	return true;
}

static bool p_log(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	static const char *const words[] = { "stderr", "syslog", NULL };
	int i = pick(v, words, err, errlen);

	(void)cfg;
	if (i >= 0)
		FIELD(obj, k, bool) = i == 1;
	return i >= 0;
}

static bool p_tls_version(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	static const char *const words[] = { "1.0", "1.1", "1.2", "1.3", NULL };
	static const int versions[] = { TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION };
	int i = pick(v, words, err, errlen);

	(void)cfg;
	if (i >= 0)
		FIELD(obj, k, int) = versions[i];
	return i >= 0;
}

/* Optional strings (username, password, user): empty means unset. */
static bool p_string(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	(void)cfg;
	return set_str(&FIELD(obj, k, char *), v, true, err, errlen);
}

/* An empty password is a mistake (often an empty ${VAR}), not "no password". */
static bool p_password(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	(void)cfg;
	if (*v == '\0')
		return failf(err, errlen, "empty password");
	return set_str(&FIELD(obj, k, char *), v, false, err, errlen);
}

static bool p_path(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	(void)cfg;
	if (*v == '\0')
		return failf(err, errlen, "empty path");
	return set_str(&FIELD(obj, k, char *), v, false, err, errlen);
}

static bool p_control(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	(void)cfg;
	if (strlen(v) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
		return failf(err, errlen, "path too long for a Unix socket (max %zu bytes)",
		    sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
	return set_str(&FIELD(obj, k, char *), v, true, err, errlen); /* empty: no control socket */
}

static bool p_metrics(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	struct relay_cfg *r = obj;

	(void)cfg;
	(void)k;
	memset(&r->metrics, 0, sizeof(r->metrics));
	r->metrics_on = *v != '\0';
	return !r->metrics_on || cfg_parse_listen(v, &r->metrics, err, errlen);
}

/* Our own EHLO name: a domain (RFC 5321 4.1.2) or an address literal. */
static bool p_hostname(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	size_t n = strlen(v);
	bool literal = n > 2 && v[0] == '[' && v[n - 1] == ']';

	(void)cfg;
	if (n == 0 || n > HOSTNAME_MAX ||
	    (!literal && v[strspn(v, HOSTNAME_CHARS)] != '\0'))
		return failf(err, errlen, "bad host name \"%.64s\" (use a domain like mail.example.com)", v);
	return set_str(&FIELD(obj, k, char *), v, false, err, errlen);
}

/* A plain mailbox, user@domain: what a provider takes as a sender. */
static bool plain_address(const char *v)
{
	const char *at = strrchr(v, '@');

	return at != NULL && at != v && at[1] != '\0' && strlen(v) <= SMTP_PATH_MAX &&
	    v[strcspn(v, " \t<>\"(),;:\\")] == '\0';
}

/* The verified sender a provider wants: one plain address, as it goes in
 * MAIL FROM:<...> and in From:. */
static bool p_sender(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	(void)cfg;
	if (!plain_address(v))
		return failf(err, errlen, "bad address \"%.64s\" (use user@example.com)", v);
	return set_str(&FIELD(obj, k, char *), v, false, err, errlen);
}

/* [queue] bounce = none | sender | ADDRESS (the notices go there). */
static bool p_bounce(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	struct queue_cfg *q = obj;

	(void)cfg;
	(void)k;
	if (strcasecmp(v, "none") == 0 || strcasecmp(v, "sender") == 0) {
		q->bounce = strcasecmp(v, "none") == 0 ? BOUNCE_NONE : BOUNCE_SENDER;
		return set_str(&q->bounce_to, "", true, err, errlen);
	}
	if (!plain_address(v))
		return failf(err, errlen, "bad value \"%.64s\" (use none, sender or an address, user@example.com)", v);
	q->bounce = BOUNCE_ADDRESS;
	return set_str(&q->bounce_to, v, false, err, errlen);
}

/* A provider's host: a name or an address, resolved later. */
static bool p_host(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	size_t n = strlen(v);
	const char *p = v;

	(void)cfg;
	while (isgraph((unsigned char)*p) && *p != '/')
		p++;
	if (n == 0 || n > HOSTNAME_MAX || *p != '\0')
		return failf(err, errlen, "bad host \"%.64s\" (use a host name or an IP address)", v);
	/* One colon is "name:port"; an IPv6 address has at least two. */
	if (strchr(v, ':') != NULL && strchr(v, ':') == strrchr(v, ':'))
		return failf(err, errlen, "bad host \"%.64s\" (the port goes in ports)", v);
	return set_str(&FIELD(obj, k, char *), v, false, err, errlen);
}

/* -t should catch a CA file the daemon cannot read, not the first TLS attempt. */
static bool p_ca_file(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	if (*v != '\0' && !reload_can_read(&cfg->relay.id, v, err, errlen))
		return false;
	return set_str(&FIELD(obj, k, char *), v, true, err, errlen);
}

/* relay.user, resolved now: config.c parses it before any other key, so
 * that every file the configuration names is checked against it. */
static bool p_user(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	struct relay_cfg *r = obj;
	struct daemon_id id;

	(void)cfg;
	/* An unknown user keeps the previous reader (the process itself), for the checks that follow. */
	if (!daemon_id_resolve(v, &id, err, errlen) || !set_str(&FIELD(obj, k, char *), v, true, err, errlen))
		return false;
	r->id = id;
	return true;
}

/* A secret file's checks (secret_file.h) without reading it here. */
static bool secret_file_ok(const struct config *cfg, const char *path, char *err, size_t errlen)
{
	FILE *fp = secret_file_open(&cfg->relay.id, path, err, errlen);

	if (fp == NULL)
		return false;
	fclose(fp);
	return true;
}

/* tls_key_file: a secret, loaded with the certificate by tls.c. */
static bool p_key_file(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	if (*v != '\0' && !secret_file_ok(cfg, v, err, errlen))
		return false;
	return p_ca_file(cfg, k, obj, v, err, errlen);
}

static bool p_users(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	struct users *u = NULL;

	if (*v != '\0' && (!secret_file_ok(cfg, v, err, errlen) || (u = users_load(v, err, errlen)) == NULL))
		return false;
	users_free(FIELD(obj, k, struct users *));
	FIELD(obj, k, struct users *) = u;
	return true;
}

/* Reads a one-line secret into buf (size SECRET_MAX + 2), one trailing newline removed. */
static bool read_secret(const struct config *cfg, const char *path, char *buf, char *err, size_t errlen)
{
	FILE *fp = secret_file_open(&cfg->relay.id, path, err, errlen);
	size_t n;
	bool bad;

	if (fp == NULL)
		return false;
	n = fread(buf, 1, SECRET_MAX + 1, fp);
	bad = ferror(fp);
	fclose(fp);
	if (bad)
		return failf(err, errlen, "cannot read \"%s\"", path);
	if (n > SECRET_MAX)
		return failf(err, errlen, "\"%s\" is larger than %d bytes (the wrong file?)", path, SECRET_MAX);
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n') {
		buf[--n] = '\0';
		if (n > 0 && buf[n - 1] == '\r')
			buf[--n] = '\0';
	}
	if (n == 0)
		return failf(err, errlen, "\"%s\" is empty", path);
	if (strlen(buf) != n || strchr(buf, '\n') != NULL)
		return failf(err, errlen, "\"%s\" must hold the password alone on one line", path);
	return true;
}

static bool p_secret_file(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	char buf[SECRET_MAX + 2];
	bool ok;

	if (*v == '\0')
		return failf(err, errlen, "empty path");
	ok = read_secret(cfg, v, buf, err, errlen) &&
	    set_str(&FIELD(obj, k, char *), buf, false, err, errlen);
	explicit_bzero(buf, sizeof(buf));
	return ok;
}

/* A file kept with its path (written back, or parsed later): a one-line
 * secret (oauth2_refresh_token_file), read as password_file is. */
static bool p_secret_path(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	struct cfg_file *f = &FIELD(obj, k, struct cfg_file);
	struct key_def text = *k;

	text.off += offsetof(struct cfg_file, text);
	return p_secret_file(cfg, &text, obj, v, err, errlen) && set_str(&f->path, v, false, err, errlen);
}

#define TEXT_FILE_MAX (64 * 1024)

/* The same for a whole text file (oauth2_key_file, JSON). */
static bool p_text_path(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	char *buf = calloc(1, TEXT_FILE_MAX + 1);
	FILE *fp = NULL;
	size_t n = 0;
	bool ok = false;

	if (*v == '\0')
		failf(err, errlen, "empty path");
	else if (buf == NULL)
		failf(err, errlen, "out of memory");
	else
		fp = secret_file_open(&cfg->relay.id, v, err, errlen);
	if (fp != NULL) {
		n = fread(buf, 1, TEXT_FILE_MAX + 1, fp);
		if (ferror(fp))
			failf(err, errlen, "cannot read \"%s\"", v);
		else if (n > TEXT_FILE_MAX)
			failf(err, errlen, "\"%s\" is larger than %d bytes (the wrong file?)", v, TEXT_FILE_MAX);
		else if (n == 0 || strlen(buf) != n)
			failf(err, errlen, "\"%s\" is empty or not text", v);
		else
			ok = set_str(&FIELD(obj, k, struct cfg_file).text, buf, false, err, errlen) &&
			    set_str(&FIELD(obj, k, struct cfg_file).path, v, false, err, errlen);
		fclose(fp);
	}
	if (buf != NULL)
		explicit_bzero(buf, TEXT_FILE_MAX + 1);
	free(buf);
	return ok;
}

/* A provider's pace (pace.h): "none", or N/s, N/m, N/h. */
static bool p_rate(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	struct provider_cfg *p = obj;
	char *slash = strchr(v, '/');
	unsigned long n;

	(void)cfg;
	if (strcasecmp(v, "none") == 0) {
		p->rate_count = 0;
		return true;
	}
	if (slash == NULL || slash[1] == '\0' || slash[2] != '\0' || strchr("smh", slash[1]) == NULL)
		return failf(err, errlen, "bad rate \"%.64s\" (use N/s, N/m, N/h or none)", v);
	*slash = '\0';
	if (!cfg_parse_uint(v, k->min, k->max, &n, err, errlen))
		return false;
	p->rate_count = (unsigned)n;
	p->rate_period = slash[1] == 's' ? 1.0 : slash[1] == 'm' ? 60.0 : 3600.0;
	return true;
}

/* A count where "none" (stored as 0) means no limit. */
static bool p_uint_none(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	if (strcasecmp(v, "none") == 0) {
		FIELD(obj, k, unsigned) = 0;
		return true;
	}
	return p_uint(cfg, k, obj, v, err, errlen);
}

/* ---- lists: one generic parser, element types below ---- */

/* The element type of a list key. */
struct item_kind {
	const char *what;  /* "address": "at least one address is required" */
	size_t size;
	bool (*parse)(const struct config *cfg, const char *s, void *out, char *err, size_t errlen);
	bool (*same)(const void *a, const void *b);
	void (*drop)(void *item);
};

static bool item_listen(const struct config *cfg, const char *s, void *out,
    char *err, size_t errlen)
{
	(void)cfg;
	return cfg_parse_listen_addr(s, out, err, errlen);
}

/* Port 0 asks for an ephemeral port: on one address, a plain, an
 * /implicit and a /proxy one are three listeners (each logs its own
 * port), not one listed twice. */
static bool ephemeral(const struct sockaddr_any *sa)
{
	const struct sockaddr *s = (const struct sockaddr *)&sa->ss;

	if (s->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)s)->sin_port == 0;
	return s->sa_family == AF_INET6 && ((const struct sockaddr_in6 *)(const void *)s)->sin6_port == 0;
}

/* One fixed address twice is a mistake whatever its options. */
static bool same_listen(const void *a, const void *b)
{
	const struct listen_addr *la = a, *lb = b;
	const struct sockaddr_any *x = &la->sa, *y = &lb->sa;

	return x->len == y->len && memcmp(&x->ss, &y->ss, x->len) == 0 && (!ephemeral(x) || la->flags == lb->flags);
}

static bool item_cidr(const struct config *cfg, const char *s, void *out,
    char *err, size_t errlen)
{
	(void)cfg;
	return cfg_parse_cidr(s, out, err, errlen);
}

static bool same_cidr(const void *a, const void *b)
{
	const struct cidr *x = a, *y = b;

	return x->family == y->family && x->prefix == y->prefix && memcmp(x->addr, y->addr, 16) == 0;
}

static bool item_port(const struct config *cfg, const char *s, void *out,
    char *err, size_t errlen)
{
	(void)cfg;
	return cfg_parse_port_mode(s, out, err, errlen);
}

static bool same_port(const void *a, const void *b)
{
	return ((const struct port_mode *)a)->port == ((const struct port_mode *)b)->port;
}

/* Sender patterns must name an address or domain: "billing.example.com" would never match. */
static bool item_pattern(const struct config *cfg, const char *s, void *out,
    char *err, size_t errlen)
{
	(void)cfg;
	if (s[strcspn(s, " \t<>")] != '\0')
		return failf(err, errlen, "bad sender pattern \"%.64s\"", s);
	if (strchr(s, '@') == NULL && s[strspn(s, "*")] != '\0')
		return failf(err, errlen, "sender pattern \"%.64s\" has no @ (for a domain use *@%.64s)", s, s);
	if ((*(char **)out = strdup(s)) == NULL)
		return failf(err, errlen, "out of memory");
	return true;
}

static bool same_pattern(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b) == 0;
}

static void drop_pattern(void *item)
{
	free(*(char **)item);
}

/* A header field name (RFC 5322 2.2: printable ASCII but the colon). */
static bool item_header(const struct config *cfg, const char *s, void *out,
    char *err, size_t errlen)
{
	(void)cfg;
	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p >= 127 || *p == ':')
			return failf(err, errlen, "bad header field name \"%.64s\"", s);
	if ((*(char **)out = strdup(s)) == NULL)
		return failf(err, errlen, "out of memory");
	return true;
}

/* Provider names resolve at once: every [provider] exists before values are parsed. */
static bool item_provider(const struct config *cfg, const char *s, void *out,
    char *err, size_t errlen)
{
	struct provider_cfg *p = config_provider(cfg, s);

	if (p == NULL)
		return failf(err, errlen, "unknown provider \"%.64s\" (no [provider %.64s] section)", s, s);
	*(struct provider_cfg **)out = p;
	return true;
}

static bool same_pointer(const void *a, const void *b)
{
	return *(void *const *)a == *(void *const *)b;
}

#define ITEMS(what, type, parse, same, drop) { what, sizeof(type), parse, same, drop }
static const struct item_kind listen_items = ITEMS("address", struct listen_addr, item_listen, same_listen, NULL);
static const struct item_kind cidr_items = ITEMS("network", struct cidr, item_cidr, same_cidr, NULL);
static const struct item_kind port_items = ITEMS("port", struct port_mode, item_port, same_port, NULL);
static const struct item_kind pattern_items =
    ITEMS("sender pattern", char *, item_pattern, same_pattern, drop_pattern);
static const struct item_kind header_items =
    ITEMS("header field name", char *, item_header, same_pattern, drop_pattern);
static const struct item_kind provider_items =
    ITEMS("provider", struct provider_cfg *, item_provider, same_pointer, NULL);

struct list_build {
	const struct config *cfg;
	const struct item_kind *ik;
	char *items;
	unsigned n;
};

static void drop_items(const struct item_kind *ik, char *items, unsigned n)
{
	for (unsigned i = 0; ik->drop != NULL && i < n; i++)
		ik->drop(items + i * ik->size);
	free(items);
}

static bool add_item(const char *s, void *arg, char *err, size_t errlen)
{
	struct list_build *lb = arg;
	const struct item_kind *ik = lb->ik;
	union {
		struct listen_addr la;
		struct cidr c;
		struct port_mode pm;
		void *p;
	} tmp;
	char *items;

	memset(&tmp, 0, sizeof(tmp));
	if (!ik->parse(lb->cfg, s, &tmp, err, errlen))
		return false;
	for (unsigned i = 0; i < lb->n; i++) {
		if (ik->same(lb->items + i * ik->size, &tmp)) {
			if (ik->drop != NULL)
				ik->drop(&tmp);
			return failf(err, errlen, "\"%.64s\" is listed twice", s);
		}
	}
	items = realloc(lb->items, (lb->n + 1) * ik->size);
	if (items == NULL) {
		if (ik->drop != NULL)
			ik->drop(&tmp);
		return failf(err, errlen, "out of memory");
	}
	memcpy(items + lb->n * ik->size, &tmp, ik->size);
	lb->items = items;
	lb->n++;
	return true;
}

static bool p_list(const struct config *cfg, const struct key_def *k, void *obj, char *v,
    char *err, size_t errlen)
{
	struct list_build lb = { cfg, k->item, NULL, 0 };
	char *field = (char *)obj + k->off, *old;
	unsigned *count = (unsigned *)(void *)((char *)obj + k->count_off);
	bool ok;

	ok = cfg_split_list(v, add_item, &lb, err, errlen);
	if (ok && lb.n == 0 && !k->empty_ok)
		ok = failf(err, errlen, "at least one %s is required", lb.ik->what);
	if (!ok) {
		drop_items(lb.ik, lb.items, lb.n);
		return false;
	}
	/* The array field has the element's pointer type: copy the pointer as bytes. */
	memcpy(&old, field, sizeof(old));
	drop_items(lb.ik, old, *count);
	memcpy(field, &lb.items, sizeof(lb.items));
	*count = lb.n;
	return true;
}

/* ---- the key table: one row per key, for the file and for -o ---- */

const char *const config_delivery_words[] = { "queue", "passthrough", "hybrid", NULL };
static const char *const level_words[] = { "error", "warn", "info", "debug", NULL };
static const char *const log_format_words[] = { "logfmt", "json", NULL };
static const char *const auth_words[] = { "auto", "plain", "login", "none", "xoauth2", NULL };
static const char *const grant_words[] = { "client_credentials", "refresh_token", "jwt_bearer", NULL };

#define KEY(sect, type, n, fn, f, d) \
	.name = n, .parse = fn, .kind = sect, .off = offsetof(struct type, f), .def = d
#define RELAY(n, fn, f, d) KEY(SECT_RELAY, relay_cfg, n, fn, f, d)
#define PROV(n, fn, f, d) KEY(SECT_PROVIDER, provider_cfg, n, fn, f, d)
#define ROUTE(n, fn, f, d) KEY(SECT_ROUTE, route_cfg, n, fn, f, d)
#define QUEUE(n, fn, f, d) KEY(SECT_QUEUE, queue_cfg, n, fn, f, d)
#define LIST(type, items, n) .item = &(items), .count_off = offsetof(struct type, n)

const struct key_def config_keys[] = {
	{ RELAY("listen", p_list, listen, "127.0.0.1:25"), LIST(relay_cfg, listen_items, nlisten) },
	{ RELAY("hostname", p_hostname, hostname, NULL) },
	{ RELAY("qualify_domain", p_hostname, qualify_domain, NULL) },
	{ RELAY("add_missing_headers", p_bool, add_missing_headers, "yes") },
	{ RELAY("allow", p_list, allow, "127.0.0.0/8, ::1/128"), LIST(relay_cfg, cidr_items, nallow) },
	{ RELAY("proxy_from", p_list, proxy_from, ""), LIST(relay_cfg, cidr_items, nproxy_from), .empty_ok = true },
	{ RELAY("max_clients", p_uint, max_clients, "1024"), .min = 1, .max = 1000000 },
	{ RELAY("max_clients_per_ip", p_uint, max_clients_per_ip, "50"), .min = 0, .max = 1000000 },
	{ RELAY("workers", p_workers, workers, "1"), .min = 1, .max = 1024 },
	{ RELAY("drain_timeout", p_duration, drain_timeout, "10s"), .zero_ok = true },
	{ RELAY("max_message_size", p_size, max_message_size, "25M") },
	{ RELAY("max_recipients", p_uint, max_recipients, "100"), .min = 1, .max = 100000 },
	{ RELAY("timeout", p_duration, timeout, "5m") },
	{ RELAY("data_min_rate", p_size, data_min_rate, "500"), .zero_ok = true },
	{ RELAY("accept_lf_dot", p_bool, accept_lf_dot, "no") },
	{ RELAY("delivery", p_enum, delivery, "queue"), .words = config_delivery_words },
	{ RELAY("spool", p_path, spool, DEFAULT_SPOOL) },
	{ RELAY("providers", p_list, providers, ""), LIST(relay_cfg, provider_items, nproviders),
	  .empty_ok = true },
	{ RELAY("user", p_user, user, ""), .first = true },
	{ RELAY("control", p_control, control, DEFAULT_CONTROL) },
	{ RELAY("metrics", p_metrics, metrics, "") },
	{ RELAY("log", p_log, log_syslog, "stderr") },
	{ RELAY("log_level", p_enum, log_level, "info"), .words = level_words },
	{ RELAY("log_format", p_enum, log_format, "logfmt"), .words = log_format_words },
	{ RELAY("tls_cert_file", p_ca_file, tls_cert_file, NULL), .daemon_only = true },
	{ RELAY("tls_key_file", p_key_file, tls_key_file, NULL), .daemon_only = true },
	{ RELAY("users_file", p_users, users, NULL), .daemon_only = true },

	{ PROV("preset", p_string, preset, NULL) },
	{ PROV("host", p_host, host, NULL) },
	{ PROV("ports", p_list, ports, "587"), LIST(provider_cfg, port_items, nports) },
	{ PROV("username", p_string, username, NULL) },
	{ PROV("password", p_password, password, NULL), .secret = true },
	{ PROV("password_file", p_secret_file, password, NULL) },
	{ PROV("auth", p_enum, auth, "auto"), .words = auth_words },
	{ PROV("tls_verify", p_bool, tls_verify, "yes") },
	{ PROV("tls_ca_file", p_ca_file, tls_ca_file, NULL) },
	{ PROV("tls_min_version", p_tls_version, tls_min_version, "1.2") },
	{ PROV("allow_plaintext", p_bool, allow_plaintext, "no") },
	{ PROV("connect_timeout", p_duration, connect_timeout, "5s") },
	{ PROV("greeting_timeout", p_duration, greeting_timeout, "10s") },
	{ PROV("attempt_delay", p_duration, attempt_delay, "300ms") },
	{ PROV("recheck_interval", p_duration, recheck_interval, "10m") },
	{ PROV("max_connections", p_uint, max_connections, "8"), .min = 1, .max = 1000 },
	{ PROV("max_connections_wait", p_duration, max_connections_wait, "30s") },
	{ PROV("max_message_size", p_size, max_message_size, "0"), .zero_ok = true },
	{ PROV("max_recipients", p_uint, max_recipients, "0"), .min = 0, .max = 100000 },
	{ PROV("sender", p_sender, sender, NULL) },
	{ PROV("sender_header", p_bool, sender_header, "yes") },
	{ PROV("strip_headers", p_list, strip_headers, ""), LIST(provider_cfg, header_items, nstrip_headers),
	  .empty_ok = true },
	{ PROV("oauth2_grant", p_enum, oauth2.grant, "client_credentials"), .words = grant_words },
	{ PROV("oauth2_token_url", p_string, oauth2.token_url, NULL) },
	{ PROV("oauth2_client_id", p_string, oauth2.client_id, NULL) },
	{ PROV("oauth2_client_secret", p_password, oauth2.client_secret, NULL), .secret = true },
	{ PROV("oauth2_client_secret_file", p_secret_file, oauth2.client_secret, NULL) },
	{ PROV("oauth2_scope", p_string, oauth2.scope, NULL) },
	{ PROV("oauth2_refresh_token_file", p_secret_path, oauth2.refresh_token, NULL) },
	{ PROV("oauth2_key_file", p_text_path, oauth2.key, NULL) },
	{ PROV("oauth2_ca_file", p_ca_file, oauth2.ca_file, NULL) },
	{ PROV("rate", p_rate, rate_count, "none"), .min = 1, .max = 1000000 },
	{ PROV("rate_wait", p_duration, rate_wait, "5s"), .zero_ok = true },
	{ PROV("daily_quota", p_uint_none, daily_quota, "none"), .min = 1, .max = 100000000 },

	{ ROUTE("from", p_list, from, NULL), LIST(route_cfg, pattern_items, nfrom) },
	{ ROUTE("providers", p_list, providers, NULL), LIST(route_cfg, provider_items, nproviders) },

	{ QUEUE("retry_initial", p_duration, retry_initial, "1m") },
	{ QUEUE("retry_max", p_duration, retry_max, "1h") },
	{ QUEUE("max_age", p_duration, max_age, "5d") },
	{ QUEUE("alert_age", p_duration, alert_age, "1h") },
	{ QUEUE("bounce", p_bounce, bounce, "none") },
	{ QUEUE("bounce_from", p_sender, bounce_from, NULL) },
};

const size_t config_nkeys = sizeof(config_keys) / sizeof(config_keys[0]);

int config_key_find(enum sect_kind kind, const char *name)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (config_keys[i].kind == kind && strcmp(config_keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

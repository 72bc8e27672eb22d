/*
 * config: loading and validating subrelay.ini. See config.h.
 *
 * Three phases, so that one run finds every problem and `-o` can fix
 * what the file gets wrong:
 *   1. read: inih calls on_key() for each KEY = VALUE; our line reader
 *      counts lines, rejects over-long ones and sees section headers
 *      (inih reports neither). The raw text of each key is kept per
 *      section, indented continuation lines appended to lists;
 *   2. override: each -o replaces (or adds) a raw value, creating its
 *      section if the file has none;
 *   3. build: table defaults, then every raw value (after ${ENV}) through
 *      the parser of its row in config_keys[] (config_keys.c), then checks across keys.
 * Errors are collected with their location and printed sorted by it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf, explicit_bzero; autotools' config.h is shadowed by this one */
#endif
#include "config.h"
#include "config_keys.h"
#include "presets.h"
#include "users.h"
#include "oauth2_jwt.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define ERR_MAX 512        /* one message from a parser */
#define NAME_MAX_LEN 64    /* provider and route names: log and metric labels */
#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
#define HOSTNAME_MAX 253

/* Where a problem is: a line of the file (0 = the file itself) or the Nth -o. */
struct loc {
	enum { FROM_FILE, FROM_OVERRIDE } from;
	unsigned line;
};

/* One key's text as written, before ${ENV} and parsing. */
struct raw {
	char *text;  /* NULL = not set */
	struct loc at;
};

struct section {
	enum sect_kind kind;
	char *name;        /* provider or route name; NULL for relay and queue */
	struct loc at;     /* the header, or the -o that created it */
	struct raw *vals;  /* one per row of config_keys[] */
	void *obj;         /* what phase 3 builds from it */
};

struct cfg_err {
	struct loc at;
	unsigned seq;      /* keeps messages of one line in the order found */
	char *msg;
};

/* What inih did with the current line, as far as the reader can tell. */
enum line_kind { LINE_BLANK, LINE_HEADER, LINE_KEY, LINE_CONT };

struct loader {
	const char *file;
	FILE *fp;
	unsigned line;          /* current line number */
	enum line_kind kind;    /* of the current line */
	bool handled;           /* on_key() ran for the current line */
	bool key_seen;          /* mirrors inih's prev_name: indented lines continue a key */
	bool skip;              /* in a rejected section: its keys are not reported */
	unsigned first_syntax;  /* first syntax error we reported, to match inih's own */
	int read_errno;         /* why getc() failed, if it did */
	struct section *sect;   /* current section; NULL before any or in a rejected one */
	struct raw *last;       /* what the last key line set, for continuations; NULL if rejected */
	struct section **sects;
	unsigned nsects;
	struct cfg_err *errs;
	unsigned nerrs;
	bool oom;
	bool local;             /* config_load_local(): providers and routes are not built */
	struct config *cfg;
};

static void add_error(struct loader *ld, struct loc at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_error(struct loader *ld, struct loc at, const char *fmt, ...)
{
	struct cfg_err *e;
	va_list ap;
	char *msg;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (rc < 0) {
		ld->oom = true;
		return;
	}
	e = realloc(ld->errs, (ld->nerrs + 1) * sizeof(*e));
	if (e == NULL) {
		free(msg);
		ld->oom = true;
		return;
	}
	ld->errs = e;
	e[ld->nerrs] = (struct cfg_err){ at, ld->nerrs, msg };
	ld->nerrs++;
}

static const struct raw *raw_of(const struct section *s, const char *name)
{
	int i = config_key_find(s->kind, name);

	assert(i >= 0);
	return &s->vals[i];
}

/* Where to report a problem with a key: its line if set, else the section's. */
static struct loc loc_of(const struct section *s, const char *name)
{
	const struct raw *r = raw_of(s, name);

	return r->text != NULL ? r->at : s->at;
}

/* ---- sections ---- */

static const char *sect_title(enum sect_kind kind, const char *name, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s%s", config_sect_names[kind], name ? " " : "", name ? name : "");
	return buf;
}

static struct section *find_section(struct loader *ld, enum sect_kind kind, const char *name)
{
	for (unsigned i = 0; i < ld->nsects; i++) {
		struct section *s = ld->sects[i];
		if (s->kind != kind)
			continue;
		if (name == NULL ? s->name == NULL : s->name != NULL && strcmp(s->name, name) == 0)
			return s;
	}
	return NULL;
}

/* Checks "KIND [NAME]" and sets *kind; *name is NULL for relay and queue. */
static bool check_title(struct loader *ld, char *title, struct loc at, enum sect_kind *kind, char **name)
{
	size_t klen = strcspn(title, " \t");
	char *rest = cfg_trim(title + klen);
	unsigned k;

	title[klen] = '\0';
	for (k = 0; k < SECT_NKINDS && strcmp(title, config_sect_names[k]) != 0; k++)
		;
	*kind = (enum sect_kind)k;
	*name = *rest ? rest : NULL;
	if (k == SECT_NKINDS)
		add_error(ld, at, "unknown section [%s%s%s] (use relay, provider NAME, route NAME or queue)",
		    title, *rest ? " " : "", rest);
	else if ((k == SECT_RELAY || k == SECT_QUEUE) && *rest)
		add_error(ld, at, "[%s %s]: [%s] takes no name", title, rest, title);
	else if ((k == SECT_PROVIDER || k == SECT_ROUTE) && !*rest)
		add_error(ld, at, "[%s] needs a name: [%s NAME]", title, title);
	else if (*rest && (strlen(rest) > NAME_MAX_LEN || rest[strspn(rest, NAME_CHARS)] != '\0'))
		add_error(ld, at, "[%s %s]: a name is up to %d letters, digits, '.', '-' or '_'", title,
		    rest, NAME_MAX_LEN);
	else if (k == SECT_ROUTE && strcmp(rest, "default") == 0)
		add_error(ld, at, "[route default]: the name \"default\" means relay.providers");
	else
		return true;
	return false;
}

/*
 * The section titled `title` (modified); from the file a repeated one is
 * an error, an -o (reuse) adds to it. NULL if the title is rejected.
 */
static struct section *open_section(struct loader *ld, char *title, struct loc at, bool reuse)
{
	struct section *s, **sects;
	enum sect_kind kind;
	char *name, buf[NAME_MAX_LEN + 16];

	if (!check_title(ld, cfg_trim(title), at, &kind, &name))
		return NULL;
	if ((s = find_section(ld, kind, name)) != NULL) {
		if (reuse)
			return s;
		add_error(ld, at, "duplicate section [%s] (first on line %u)",
		    sect_title(kind, name, buf, sizeof(buf)), s->at.line);
		return NULL;
	}
	sects = realloc(ld->sects, (ld->nsects + 1) * sizeof(*sects));
	s = calloc(1, sizeof(*s));
	if (sects != NULL)
		ld->sects = sects;
	if (s == NULL || sects == NULL || (s->vals = calloc(config_nkeys, sizeof(*s->vals))) == NULL ||
	    (name != NULL && (s->name = strdup(name)) == NULL)) {
		ld->oom = true;
		if (s != NULL)
			free(s->vals);
		free(s);
		return NULL;
	}
	s->kind = kind;
	s->at = at;
	ld->sects[ld->nsects++] = s;
	return s;
}

/* Stores the raw text of a key; from the file a repeated key is an error, -o replaces. */
static struct raw *set_value(struct loader *ld, struct section *s, const char *name, const char *value,
    struct loc at, bool replace)
{
	int i = config_key_find(s->kind, name);
	char buf[NAME_MAX_LEN + 16], *text;
	struct raw *r;

	if (i < 0) {
		add_error(ld, at, "unknown key \"%s\" in [%s]", name,
		    sect_title(s->kind, s->name, buf, sizeof(buf)));
		return NULL;
	}
	r = &s->vals[i];
	if (r->text != NULL && !replace) {
		add_error(ld, at, "%s: duplicate key (first on line %u)", name, r->at.line);
		return NULL;
	}
	if ((text = strdup(value)) == NULL) {
		ld->oom = true;
		return NULL;
	}
	config_wipe_free(r->text);
	r->text = text;
	r->at = at;
	return r;
}

/* ---- reading the file: the reader and handler given to inih ---- */

static void syntax_error(struct loader *ld, const char *what)
{
	add_error(ld, (struct loc){ FROM_FILE, ld->line }, "syntax error (%s)", what);
	if (ld->first_syntax == 0)
		ld->first_syntax = ld->line;
}

/* inih skips a line with neither '=' nor ':' without telling the handler. */
static void end_line(struct loader *ld)
{
	if (ld->kind == LINE_KEY && !ld->handled)
		syntax_error(ld, "expected KEY = VALUE");
	ld->kind = LINE_BLANK;
}

/* Where s ends at `stop` or at an inline comment (" ;"), as inih scans it. */
static const char *scan_to(const char *s, char stop)
{
	bool was_space = false;

	for (; *s != '\0' && *s != stop && !(was_space && *s == ';'); s++)
		was_space = isspace((unsigned char)*s);
	return s;
}

static void header_line(struct loader *ld, const char *s)
{
	const char *p = scan_to(s, ']');
	char *title;

	ld->sect = NULL;
	ld->last = NULL;
	ld->skip = true;
	if (*p != ']') {
		syntax_error(ld, "missing \"]\"");
		return;
	}
	ld->key_seen = false;
	if ((title = strndup(s, (size_t)(p - s))) == NULL) {
		ld->oom = true;
		return;
	}
	ld->sect = open_section(ld, title, (struct loc){ FROM_FILE, ld->line }, false);
	ld->skip = ld->sect == NULL;
	free(title);
}

/* Tells what inih will make of the line, with the tests of inih's ini_parse_stream(). */
static void classify_line(struct loader *ld, char *str)
{
	char *s = str;

	if (ld->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3; /* UTF-8 byte order mark */
	while (isspace((unsigned char)*s))
		s++;
	ld->handled = false;
	if (*s == '\0' || *s == ';' || *s == '#') {
		ld->kind = LINE_BLANK;
	} else if (s > str && ld->key_seen) {
		ld->kind = LINE_CONT;
	} else if (*s == '[') {
		ld->kind = LINE_HEADER;
		header_line(ld, s + 1);
	} else {
		ld->kind = LINE_KEY;
	}
}

/*
 * Reads one line, without its '\n', into str. A line that does not fit
 * is reported, consumed to its end and handed to inih as a blank line,
 * so inih never sees (and splits) its tail as a line of its own.
 */
static bool fetch_line(struct loader *ld, char *str, size_t num)
{
	struct loc at;
	size_t n = 0;
	bool too_long = false, nul = false;
	int c;

	while ((c = getc(ld->fp)) != EOF && c != '\n') {
		/* A CRLF ends the line like LF: the CR must not count against the limit. */
		if (c == '\r') {
			int next = getc(ld->fp);
			if (next == '\n') {
				c = next;
				break;
			}
			if (next != EOF)
				ungetc(next, ld->fp);
		}
		if (n + 1 < num)
			str[n++] = (char)c;
		else
			too_long = true;
		nul |= c == '\0';
	}
	if (c == EOF && ferror(ld->fp))
		ld->read_errno = errno;
	if (c == EOF && n == 0)
		return false;
	str[n] = '\0';
	at = (struct loc){ FROM_FILE, ++ld->line };
	if (too_long)
		add_error(ld, at, "line too long (max %zu bytes; continue long lists on indented lines)", num - 1);
	else if (nul)
		add_error(ld, at, "NUL byte in line");
	if (too_long || nul) {
		ld->last = NULL; /* its continuation lines must not land on the key before */
		if (str[strspn(str, " \t")] == '[') {
			ld->sect = NULL; /* a section we cannot read: skip its keys */
			ld->skip = true;
		}
		str[0] = '\0';
	}
	return true;
}

static char *next_line(char *str, int num, void *stream)
{
	struct loader *ld = stream;

	end_line(ld);
	if (num < 2 || !fetch_line(ld, str, (size_t)num))
		return NULL;
	classify_line(ld, str);
	return str;
}

/*
 * How an indented line joins a list: "a, b," + "c" and "a, b" + "c" both
 * give "a, b, c", so a trailing comma before the line break is optional.
 */
static const char *list_joint(const char *text, const char *more)
{
	size_t n = strlen(text);

	while (n > 0 && isspace((unsigned char)text[n - 1]))
		n--;
	if (n == 0 || *more == ',')
		return "";
	return text[n - 1] == ',' ? " " : ", ";
}

static void continue_value(struct loader *ld, const char *more)
{
	struct raw *r = ld->last;
	const struct key_def *k;
	char *text;
	size_t len;

	if (r == NULL)
		return; /* the key was rejected; that was reported */
	k = &config_keys[r - ld->sect->vals];
	if (k->item == NULL) {
		add_error(ld, (struct loc){ FROM_FILE, ld->line },
		    "%s: only lists (listen, allow, ports, from, providers) continue on indented lines", k->name);
		ld->last = NULL;
		return;
	}
	/* Debian's inih 55 leaves inline comments on continuation lines. */
	len = (size_t)(scan_to(more, '\0') - more);
	while (len > 0 && isspace((unsigned char)more[len - 1]))
		len--;
	if (asprintf(&text, "%s%s%.*s", r->text, list_joint(r->text, more), (int)len, more) < 0) {
		ld->oom = true;
		return;
	}
	config_wipe_free(r->text);
	r->text = text;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;
	struct loc at = { FROM_FILE, ld->line };

	(void)section; /* ours, from header_line(): inih cuts names at 50 bytes */
	ld->handled = true;
	if (ld->kind == LINE_CONT) {
		continue_value(ld, value);
		return 1;
	}
	ld->key_seen = *name != '\0';
	ld->last = NULL;
	if (ld->sect != NULL)
		ld->last = set_value(ld, ld->sect, name, value, at, false);
	else if (!ld->skip)
		add_error(ld, at, "%s: key outside any section (start with [relay], [provider NAME], ...)", name);
	return 1; /* we report errors ourselves; inih's return value is for syntax errors only */
}

static bool read_file(struct loader *ld)
{
	int rc;

	if ((ld->fp = fopen(ld->file, "r")) == NULL) {
		add_error(ld, (struct loc){ FROM_FILE, 0 }, "cannot open: %s", strerror(errno));
		return false;
	}
	rc = ini_parse_stream(next_line, ld, on_key, ld);
	end_line(ld);
	if (rc > 0 && (unsigned)rc != ld->first_syntax)
		add_error(ld, (struct loc){ FROM_FILE, (unsigned)rc }, "syntax error");
	if (ferror(ld->fp))
		add_error(ld, (struct loc){ FROM_FILE, 0 }, "read error: %s", strerror(ld->read_errno));
	fclose(ld->fp);
	ld->fp = NULL;
	return true;
}

/* "SECTION.KEY=VALUE": the first '=' ends the key, the last '.' before it starts it. */
static void apply_override(struct loader *ld, const char *o, unsigned pos)
{
	struct loc at = { FROM_OVERRIDE, pos };
	const char *eq = strchr(o, '=');
	char *left = eq ? strndup(o, (size_t)(eq - o)) : NULL, *value = eq ? strdup(eq + 1) : NULL;
	char *dot = left ? strrchr(left, '.') : NULL;
	struct section *s;

	if (eq != NULL && (left == NULL || value == NULL)) {
		ld->oom = true;
	} else if (dot == NULL) {
		/* Not the value: it may be a password. */
		add_error(ld, at, "expected SECTION.KEY=VALUE, not \"%.*s%s\"",
		    (int)(eq ? (size_t)(eq - o) : strlen(o)), o, eq ? "=..." : "");
	} else {
		*dot = '\0';
		if ((s = open_section(ld, left, at, true)) != NULL)
			set_value(ld, s, cfg_trim(dot + 1), cfg_trim(value), at, true);
	}
	free(left);
	config_wipe_free(value);
}

/* ---- building: defaults, values, then checks across keys ---- */

/* Defaults are not expanded: they are ours, and "$" means nothing in them. */
static void parse_value(struct loader *ld, const struct key_def *k, void *obj, const char *text,
    struct loc at, bool expand)
{
	char err[ERR_MAX] = "out of memory";
	char *v = expand ? cfg_expand_env(text, err, sizeof(err)) : strdup(text);

	if (v == NULL || !k->parse(ld->cfg, k, obj, v, err, sizeof(err)))
		add_error(ld, at, "%s: %s", k->name, err);
	config_wipe_free(v);
}

static void apply_defaults(struct loader *ld, enum sect_kind kind, void *obj)
{
	for (const struct key_def *k = config_keys; k < config_keys + config_nkeys; k++)
		if (k->kind == kind && k->def != NULL)
			parse_value(ld, k, obj, k->def, (struct loc){ FROM_FILE, 0 }, false);
}

/* The settings of a provider's preset, or false (reported) when it has
 * none that resolves. */
static bool section_preset(struct loader *ld, const struct section *s, struct preset_values *pv, bool report)
{
	const struct raw *r = s->kind == SECT_PROVIDER ? raw_of(s, "preset") : NULL;
	char err[ERR_MAX] = "out of memory", *spec;
	bool ok;

	if (r == NULL || r->text == NULL)
		return false;
	/* A bad ${VAR} is reported when the key itself is parsed. */
	if ((spec = cfg_expand_env(r->text, err, sizeof(err))) == NULL)
		return false;
	ok = preset_resolve(cfg_trim(spec), pv, err, sizeof(err));
	if (!ok && report)
		add_error(ld, r->at, "preset: %s", err);
	free(spec);
	return ok;
}

static const struct key_def *provider_key(const char *name)
{
	return &config_keys[config_key_find(SECT_PROVIDER, name)];
}

/* Defaults, then the preset's settings, then what is written; the keys
 * marked `first` (in every section) before the others. */
static void apply_values(struct loader *ld, const struct section *s, bool first)
{
	struct preset_values pv;

	if (!first && section_preset(ld, s, &pv, true))
		for (unsigned i = 0; i < pv.n; i++)
			parse_value(ld, provider_key(pv.settings[i].key), s->obj, pv.settings[i].value,
			    raw_of(s, "preset")->at, false);
	for (size_t i = 0; i < config_nkeys; i++)
		if (s->vals[i].text != NULL && config_keys[i].first == first && !(ld->local && config_keys[i].daemon_only))
			parse_value(ld, &config_keys[i], s->obj, s->vals[i].text, s->vals[i].at, true);
}

/* relay.user reads this file at every reload. */
static void check_config_file(struct loader *ld)
{
	char err[ERR_MAX];

	if (!reload_can_read(&ld->cfg->relay.id, ld->file, err, sizeof(err)))
		add_error(ld, (struct loc){ FROM_FILE, 0 }, "%s", err);
}

static void default_hostname(struct loader *ld, struct relay_cfg *r)
{
	char name[HOSTNAME_MAX + 2] = "";

	if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0')
		snprintf(name, sizeof(name), "localhost");
	if ((r->hostname = strdup(name)) == NULL)
		ld->oom = true;
}

static bool is_set(const struct section *s, const char *name)
{
	return raw_of(s, name)->text != NULL;
}

/* A token endpoint is HTTPS: the client secret and the tokens cross it. */
static void check_token_url(struct loader *ld, struct loc at, const char *key, const char *url)
{
	if (strncasecmp(url, "https://", 8) != 0 || url[8] == '\0')
		add_error(ld, at, "%s: \"%.80s\" is not an https:// URL (token endpoints must use HTTPS)", key, url);
}

/* The jwt_bearer key file: valid JSON key, and the token URL it may give. */
static void check_oauth2_key(struct loader *ld, const struct section *s, const struct provider_cfg *p)
{
	struct oauth2_key key;
	char err[200];

	if (p->oauth2.key.text == NULL)
		return; /* unset (reported by the caller) or unreadable (reported) */
	if (!oauth2_key_load(p->oauth2.key.text, &key, err, sizeof(err))) {
		add_error(ld, loc_of(s, "oauth2_key_file"), "oauth2_key_file: \"%s\": %s", p->oauth2.key.path, err);
		return;
	}
	if (p->oauth2.token_url == NULL && key.token_uri == NULL)
		add_error(ld, loc_of(s, "oauth2_key_file"), "oauth2_key_file: no \"token_uri\" in it; set oauth2_token_url");
	else if (p->oauth2.token_url == NULL)
		check_token_url(ld, loc_of(s, "oauth2_key_file"), "oauth2_key_file: token_uri", key.token_uri);
	oauth2_key_free(&key);
}

/* auth = xoauth2: what each grant needs; oauth2_* keys without it. */
static void check_oauth2(struct loader *ld, const struct section *s, const struct provider_cfg *p)
{
	static const char *const keys[] = { "oauth2_token_url", "oauth2_client_id", "oauth2_client_secret",
		"oauth2_client_secret_file", "oauth2_scope", "oauth2_refresh_token_file", "oauth2_key_file",
		"oauth2_ca_file", "oauth2_grant" };
	const struct oauth2_cfg *o = &p->oauth2;
	enum oauth2_grant g = o->grant;

	if (p->auth != AUTH_CHOICE_XOAUTH2) {
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (is_set(s, keys[i]))
				add_error(ld, loc_of(s, keys[i]), "%s: only used with auth = xoauth2", keys[i]);
		return;
	}
	if (p->username == NULL)
		add_error(ld, loc_of(s, "auth"), "auth: xoauth2 needs username (the mailbox to send as)");
	if (is_set(s, "password") || is_set(s, "password_file"))
		add_error(ld, loc_of(s, is_set(s, "password") ? "password" : "password_file"),
		    "%s: not used with auth = xoauth2 (the token is)", is_set(s, "password") ? "password" : "password_file");
	if (o->token_url != NULL)
		check_token_url(ld, loc_of(s, "oauth2_token_url"), "oauth2_token_url", o->token_url);
	else if (g != OAUTH2_GRANT_JWT_BEARER)
		add_error(ld, loc_of(s, "auth"), "auth: xoauth2 needs oauth2_token_url");
	if (g != OAUTH2_GRANT_JWT_BEARER && !is_set(s, "oauth2_client_id"))
		add_error(ld, loc_of(s, "auth"), "auth: xoauth2 needs oauth2_client_id");
	if (is_set(s, "oauth2_client_secret") && is_set(s, "oauth2_client_secret_file"))
		add_error(ld, loc_of(s, "oauth2_client_secret_file"),
		    "oauth2_client_secret_file: oauth2_client_secret is set too (use one of them)");
	if (g == OAUTH2_GRANT_CLIENT_CREDENTIALS && !is_set(s, "oauth2_client_secret") &&
	    !is_set(s, "oauth2_client_secret_file"))
		add_error(ld, loc_of(s, "oauth2_grant"),
		    "oauth2_grant: client_credentials needs oauth2_client_secret or oauth2_client_secret_file");
	if (g == OAUTH2_GRANT_REFRESH_TOKEN && !is_set(s, "oauth2_refresh_token_file"))
		add_error(ld, loc_of(s, "oauth2_grant"), "oauth2_grant: refresh_token needs oauth2_refresh_token_file");
	if (g == OAUTH2_GRANT_JWT_BEARER && !is_set(s, "oauth2_key_file"))
		add_error(ld, loc_of(s, "oauth2_grant"), "oauth2_grant: jwt_bearer needs oauth2_key_file");
	if (g == OAUTH2_GRANT_JWT_BEARER)
		check_oauth2_key(ld, s, p);
}

static void check_provider(struct loader *ld, const struct section *s, const struct provider_cfg *p)
{
	/* Whether set, not whether it worked: a bad password_file was reported already. */
	bool has_file = raw_of(s, "password_file")->text != NULL;
	bool has_pw = raw_of(s, "password")->text != NULL;
	const char *pw_key = has_file ? "password_file" : "password";

	if (raw_of(s, "host")->text == NULL && raw_of(s, "preset")->text == NULL)
		add_error(ld, s->at, "[provider %s]: host is required (or a preset)", p->name);
	/* Checked here, not in the parser: allow_plaintext may come after ports. */
	for (unsigned i = 0; i < p->nports; i++)
		if (p->ports[i].mode == TLS_MODE_PLAIN && !p->allow_plaintext)
			add_error(ld, loc_of(s, "ports"), "ports: %u/plain sends mail in clear text; "
			    "set allow_plaintext = yes to permit it", p->ports[i].port);
	if (has_file && has_pw)
		add_error(ld, loc_of(s, "password_file"), "password_file: password is set too (use one of them)");
	check_oauth2(ld, s, p);
	if (p->auth == AUTH_CHOICE_NONE || p->auth == AUTH_CHOICE_XOAUTH2)
		return;
	if (p->username != NULL && !has_file && !has_pw)
		add_error(ld, loc_of(s, "username"), "username: no password or password_file for it");
	if (p->username == NULL && (has_file || has_pw))
		add_error(ld, loc_of(s, pw_key), "%s: no username for it", pw_key);
	if (p->username == NULL && p->auth != AUTH_CHOICE_AUTO)
		add_error(ld, loc_of(s, "auth"), "auth: %s needs username and password",
		    p->auth == AUTH_CHOICE_PLAIN ? "plain" : "login");
}

/* A /proxy listener trusts nobody by default: refusing every connection
 * would look like an outage, so the missing proxy_from is an error here. */
static void check_proxy_listeners(struct loader *ld, const struct section *s, const struct relay_cfg *r)
{
	for (unsigned i = 0; i < r->nlisten; i++) {
		char addr[64];
		if (!(r->listen[i].flags & LISTEN_PROXY))
			continue;
		sockaddr_format(addr, sizeof(addr), (const struct sockaddr *)&r->listen[i].sa.ss);
		if (r->listen[i].flags & LISTEN_IMPLICIT)
			add_error(ld, loc_of(s, "listen"), "listen: %s/proxy/implicit: a PROXY header before TLS is not "
			    "supported yet (use /proxy with STARTTLS)", addr);
		if (r->nproxy_from > 0)
			continue;
		add_error(ld, loc_of(s, "listen"), "listen: %s/proxy needs proxy_from "
		    "(the networks of the proxies or load balancers allowed to send the PROXY header)", addr);
	}
}

/* The server side of TLS: a certificate needs its key, /implicit needs both. */
static void check_relay(struct loader *ld, const struct section *s, struct relay_cfg *r)
{
	/* Whether written (empty is unset), not whether it worked: a bad file was reported already. */
	bool cert = r->tls_cert_file != NULL || (is_set(s, "tls_cert_file") && raw_of(s, "tls_cert_file")->text[0]);
	bool key = r->tls_key_file != NULL || (is_set(s, "tls_key_file") && raw_of(s, "tls_key_file")->text[0]);

	check_proxy_listeners(ld, s, r);
	if (cert && !key)
		add_error(ld, loc_of(s, "tls_cert_file"), "tls_cert_file: no tls_key_file for it");
	if (key && !cert)
		add_error(ld, loc_of(s, "tls_key_file"), "tls_key_file: no tls_cert_file for it");
	/* AUTH is offered over TLS only: without it nobody could log in. */
	if (is_set(s, "users_file") && raw_of(s, "users_file")->text[0] && !cert)
		add_error(ld, loc_of(s, "users_file"), "users_file: needs tls_cert_file and tls_key_file "
		    "(AUTH is offered over TLS only)");
	for (unsigned i = 0; !cert && i < r->nlisten; i++)
		if (r->listen[i].flags & LISTEN_IMPLICIT) {
			add_error(ld, loc_of(s, "listen"), "listen: /implicit needs tls_cert_file and tls_key_file");
			break;
		}
	r->tls_line = raw_of(s, "tls_cert_file")->at.from == FROM_FILE ? loc_of(s, "tls_cert_file").line : 0;
}

static void check_section(struct loader *ld, const struct section *s)
{
	const struct queue_cfg *q = s->obj;

	if (s->kind == SECT_RELAY) {
		check_relay(ld, s, s->obj);
	} else if (s->kind == SECT_PROVIDER) {
		check_provider(ld, s, s->obj);
	} else if (s->kind == SECT_ROUTE) {
		if (raw_of(s, "from")->text == NULL)
			add_error(ld, s->at, "[route %s]: from is required", s->name);
		if (raw_of(s, "providers")->text == NULL)
			add_error(ld, s->at, "[route %s]: providers is required", s->name);
	} else if (s->kind == SECT_QUEUE && q->retry_max < q->retry_initial) {
		bool max_set = raw_of(s, "retry_max")->text != NULL;
		add_error(ld, loc_of(s, max_set ? "retry_max" : "retry_initial"),
		    "%s: retry_max (%gs) is shorter than retry_initial (%gs)",
		    max_set ? "retry_max" : "retry_initial", q->retry_max, q->retry_initial);
	}
}

/* Gives each section its object: all providers exist before any list names one. */
static void place_section(struct loader *ld, struct section *s)
{
	struct config *cfg = ld->cfg;

	if (s->kind == SECT_RELAY) {
		s->obj = &cfg->relay;
	} else if (s->kind == SECT_QUEUE) {
		s->obj = &cfg->queue;
	} else if (s->kind == SECT_PROVIDER) {
		struct provider_cfg *p = &cfg->providers[cfg->nproviders++];
		s->obj = p;
		p->line = s->at.from == FROM_FILE ? s->at.line : 0;
		if ((p->name = strdup(s->name)) == NULL)
			ld->oom = true;
		apply_defaults(ld, SECT_PROVIDER, p);
	} else {
		struct route_cfg *r = &cfg->routes[cfg->nroutes++];
		s->obj = r;
		if ((r->name = strdup(s->name)) == NULL)
			ld->oom = true;
	}
}

static bool provider_or_route(const struct section *s)
{
	return s->kind == SECT_PROVIDER || s->kind == SECT_ROUTE;
}

static struct config *build(struct loader *ld)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	unsigned n[SECT_NKINDS] = { 0 };

	if (cfg == NULL || (cfg->file = strdup(ld->file)) == NULL) {
		free(cfg);
		ld->oom = true;
		return NULL;
	}
	ld->cfg = cfg;
	for (unsigned i = 0; i < ld->nsects; i++)
		n[ld->sects[i]->kind]++;
	cfg->providers = calloc(n[SECT_PROVIDER] + 1, sizeof(*cfg->providers));
	cfg->routes = calloc(n[SECT_ROUTE] + 1, sizeof(*cfg->routes));
	if (cfg->providers == NULL || cfg->routes == NULL) {
		ld->oom = true;
		return cfg;
	}
	apply_defaults(ld, SECT_RELAY, &cfg->relay);
	apply_defaults(ld, SECT_QUEUE, &cfg->queue);
	default_hostname(ld, &cfg->relay);
	for (unsigned i = 0; i < ld->nsects; i++)
		place_section(ld, ld->sects[i]);
	for (unsigned i = 0; i < ld->nsects; i++)
		if (!ld->local || !provider_or_route(ld->sects[i]))
			apply_values(ld, ld->sects[i], true);
	for (unsigned i = 0; i < ld->nsects; i++)
		if (!ld->local || !provider_or_route(ld->sects[i]))
			apply_values(ld, ld->sects[i], false);
	if (!ld->local)
		check_config_file(ld); /* the daemon's concern, not a sendmail caller's */
	if (cfg->relay.qualify_domain == NULL && (cfg->relay.qualify_domain = strdup(cfg->relay.hostname)) == NULL)
		ld->oom = true;
	for (unsigned i = 0; i < ld->nsects; i++)
		if (!ld->local || !provider_or_route(ld->sects[i]))
			check_section(ld, ld->sects[i]);
	return cfg;
}

/* ---- results ---- */

static int cmp_err(const void *a, const void *b)
{
	const struct cfg_err *x = a, *y = b;

	if (x->at.from != y->at.from)
		return x->at.from < y->at.from ? -1 : 1;
	if (x->at.line != y->at.line)
		return x->at.line < y->at.line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void print_errors(struct loader *ld, FILE *out)
{
	if (ld->errs != NULL)
		qsort(ld->errs, ld->nerrs, sizeof(*ld->errs), cmp_err);
	for (unsigned i = 0; out != NULL && i < ld->nerrs; i++) {
		const struct cfg_err *e = &ld->errs[i];
		if (e->at.from == FROM_OVERRIDE)
			fprintf(out, "-o:%u: %s\n", e->at.line, e->msg);
		else if (e->at.line > 0)
			fprintf(out, "%s:%u: %s\n", ld->file, e->at.line, e->msg);
		else
			fprintf(out, "%s: %s\n", ld->file, e->msg);
	}
	if (out != NULL && ld->oom)
		fprintf(out, "%s: out of memory\n", ld->file);
}

static void free_loader(struct loader *ld)
{
	for (unsigned i = 0; i < ld->nsects; i++) {
		struct section *s = ld->sects[i];
		for (size_t k = 0; k < config_nkeys; k++)
			config_wipe_free(s->vals[k].text);
		free(s->vals);
		free(s->name);
		free(s);
	}
	free(ld->sects);
	for (unsigned i = 0; i < ld->nerrs; i++)
		free(ld->errs[i].msg);
	free(ld->errs);
}

/* ---- the effective configuration as text (--print-config) ---- */

/* Defaults found at load: the machine's name, and what follows from it. */
static const char *computed_default(const struct relay_cfg *r, const char *key)
{
	if (strcmp(key, "hostname") == 0)
		return r->hostname;
	if (strcmp(key, "qualify_domain") == 0)
		return r->qualify_domain;
	return NULL;
}

/* A username that is also the password in effect (Postmark's server
 * token is both, however each is written: a value, ${ENV} or
 * password_file): printed as the secret it is. */
static bool username_is_password(const struct loader *ld, const struct section *s, const struct key_def *k)
{
	if (s == NULL || s->kind != SECT_PROVIDER || strcmp(k->name, "username") != 0)
		return false;
	for (unsigned i = 0; i < ld->cfg->nproviders; i++) {
		const struct provider_cfg *p = &ld->cfg->providers[i];
		if (strcmp(p->name, s->name) == 0)
			return p->username != NULL && p->password != NULL && strcmp(p->username, p->password) == 0;
	}
	return false;
}

/* One "SECTION.KEY = VALUE" line: the written value (${ENV} expanded),
 * else the preset's, else the default; "SECTION.KEY =" when there is
 * none (every setting has its line). */
static void print_key(struct loader *ld, FILE *out, const struct section *s, const char *title, size_t i,
    const struct preset_values *pv)
{
	const struct key_def *k = &config_keys[i];
	const char *text = k->def;
	char err[ERR_MAX], *expanded = NULL;

	for (unsigned j = 0; pv != NULL && j < pv->n; j++)
		if (strcmp(pv->settings[j].key, k->name) == 0)
			text = pv->settings[j].value;
	if (s != NULL && s->vals[i].text != NULL)
		text = expanded = cfg_expand_env(s->vals[i].text, err, sizeof(err));
	if (text == NULL && k->kind == SECT_RELAY)
		text = computed_default(&ld->cfg->relay, k->name);
	if (text != NULL && text[0] != '\0' && (k->secret || username_is_password(ld, s, k)))
		text = "<secret>";
	if (text == NULL)
		text = "";
	fprintf(out, "%s.%s =%s%s\n", title, k->name, text[0] ? " " : "", text);
	config_wipe_free(expanded);
}

static void print_section(struct loader *ld, FILE *out, enum sect_kind kind, const struct section *s)
{
	char title[NAME_MAX_LEN + 16];
	struct preset_values pv;
	bool preset = s != NULL && section_preset(ld, s, &pv, false);

	sect_title(kind, s != NULL ? s->name : NULL, title, sizeof(title));
	for (size_t i = 0; i < config_nkeys; i++)
		if (config_keys[i].kind == kind)
			print_key(ld, out, s, title, i, preset ? &pv : NULL);
}

static void print_config(struct loader *ld, FILE *out)
{
	print_section(ld, out, SECT_RELAY, find_section(ld, SECT_RELAY, NULL));
	for (unsigned i = 0; i < ld->nsects; i++)
		if (ld->sects[i]->kind == SECT_PROVIDER)
			print_section(ld, out, SECT_PROVIDER, ld->sects[i]);
	for (unsigned i = 0; i < ld->nsects; i++)
		if (ld->sects[i]->kind == SECT_ROUTE)
			print_section(ld, out, SECT_ROUTE, ld->sects[i]);
	print_section(ld, out, SECT_QUEUE, find_section(ld, SECT_QUEUE, NULL));
}

static struct config *load(const char *file, char *const *overrides, unsigned noverrides, FILE *errs, FILE *print,
    bool local)
{
	struct loader ld = { .file = file, .local = local };
	struct config *cfg = NULL;

	if (read_file(&ld)) {
		for (unsigned i = 0; i < noverrides; i++)
			apply_override(&ld, overrides[i], i + 1);
		cfg = build(&ld);
	}
	print_errors(&ld, errs);
	if (ld.nerrs > 0 || ld.oom) {
		config_free(cfg);
		cfg = NULL;
	}
	if (cfg != NULL && print != NULL)
		print_config(&ld, print);
	free_loader(&ld);
	return cfg;
}

struct config *config_load(const char *file, char *const *overrides, unsigned noverrides, FILE *errs)
{
	return load(file, overrides, noverrides, errs, NULL, false);
}

struct config *config_load_local(const char *file, FILE *errs)
{
	return load(file, NULL, 0, errs, NULL, true);
}

bool config_print(const char *file, char *const *overrides, unsigned noverrides, FILE *out, FILE *errs)
{
	struct config *cfg = load(file, overrides, noverrides, errs, out, false);

	config_free(cfg);
	return cfg != NULL;
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (unsigned i = 0; cfg->providers != NULL && i < cfg->nproviders; i++) {
		struct provider_cfg *p = &cfg->providers[i];
		free(p->name);
		free(p->preset);
		free(p->host);
		free(p->ports);
		free(p->username);
		config_wipe_free(p->password);
		free(p->tls_ca_file);
		free(p->sender);
		for (unsigned j = 0; j < p->nstrip_headers; j++)
			free(p->strip_headers[j]);
		free(p->strip_headers);
		free(p->oauth2.token_url);
		free(p->oauth2.client_id);
		config_wipe_free(p->oauth2.client_secret);
		free(p->oauth2.scope);
		free(p->oauth2.refresh_token.path);
		config_wipe_free(p->oauth2.refresh_token.text);
		free(p->oauth2.key.path);
		config_wipe_free(p->oauth2.key.text);
		free(p->oauth2.ca_file);
	}
	for (unsigned i = 0; cfg->routes != NULL && i < cfg->nroutes; i++) {
		struct route_cfg *r = &cfg->routes[i];
		for (unsigned j = 0; j < r->nfrom; j++)
			free(r->from[j]);
		free(r->from);
		free(r->providers);
		free(r->name);
	}
	free(cfg->relay.listen);
	free(cfg->relay.hostname);
	free(cfg->relay.qualify_domain);
	free(cfg->queue.bounce_from);
	free(cfg->queue.bounce_to);
	free(cfg->relay.allow);
	free(cfg->relay.proxy_from);
	free(cfg->relay.spool);
	free(cfg->relay.providers);
	free(cfg->relay.user);
	free(cfg->relay.control);
	free(cfg->relay.tls_cert_file);
	free(cfg->relay.tls_key_file);
	users_free(cfg->relay.users);
	free(cfg->providers);
	free(cfg->routes);
	free(cfg->file);
	free(cfg);
}

struct provider_cfg *config_provider(const struct config *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->nproviders; i++)
		if (strcmp(cfg->providers[i].name, name) == 0)
			return &cfg->providers[i];
	return NULL;
}

const char *config_delivery_name(const struct config *cfg)
{
	return config_delivery_words[cfg->relay.delivery];
}

bool config_uses_spool(const struct config *cfg)
{
	return cfg->relay.delivery == DELIVERY_QUEUE || cfg->relay.delivery == DELIVERY_HYBRID;
}

struct provider_cfg *const *config_route_for(const struct config *cfg, const char *sender,
    unsigned *nproviders, const char **route_name)
{
	for (unsigned i = 0; i < cfg->nroutes; i++) {
		const struct route_cfg *r = &cfg->routes[i];
		for (unsigned j = 0; j < r->nfrom; j++) {
			if (cfg_sender_match(r->from[j], sender ? sender : "")) {
				*nproviders = r->nproviders;
				*route_name = r->name;
				return r->providers;
			}
		}
	}
	*nproviders = cfg->relay.nproviders;
	*route_name = "default";
	return cfg->relay.providers;
}

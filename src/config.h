/*
 * config: the INI configuration, loaded and validated in one pass.
 *
 * One key table serves the file and `-o SECTION.KEY=VALUE`. Reads the
 * file through ini_parse_stream() with a line-counting reader (Debian's
 * libinih gives the handler no line number and cuts lines at 200 bytes),
 * so every problem is reported as `FILE:LINE: message`; overrides are
 * reported as `-o:N: message` (N = the override's position). Indented
 * lines continue the previous value (long lists). ${ENV} is expanded in
 * every value; password_file is read at load time, so `-t` checks it.
 *
 * A loaded configuration is immutable; reload builds a new one and swaps.
 */
#ifndef SUBRELAY_CONFIG_H
#define SUBRELAY_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cfgval.h"
#include "log.h"
#include "secret_file.h"

enum delivery_mode { DELIVERY_QUEUE, DELIVERY_PASSTHROUGH, DELIVERY_HYBRID };
enum auth_choice { AUTH_CHOICE_AUTO, AUTH_CHOICE_PLAIN, AUTH_CHOICE_LOGIN, AUTH_CHOICE_NONE, AUTH_CHOICE_XOAUTH2 };
enum bounce_mode { BOUNCE_NONE, BOUNCE_SENDER, BOUNCE_ADDRESS };

enum oauth2_grant { OAUTH2_GRANT_CLIENT_CREDENTIALS, OAUTH2_GRANT_REFRESH_TOKEN, OAUTH2_GRANT_JWT_BEARER };

/* A file named in the configuration and its text, read at load. */
struct cfg_file {
	char *path;
	char *text;
};

/* auth = xoauth2: how the access token is fetched (oauth2.h). */
struct oauth2_cfg {
	enum oauth2_grant grant;
	char *token_url;           /* NULL: the key file's token_uri (jwt_bearer) */
	char *client_id;
	char *client_secret;       /* oauth2_client_secret or _file; NULL when unset */
	char *scope;
	struct cfg_file refresh_token; /* refresh_token grant; written back when rotated */
	struct cfg_file key;       /* jwt_bearer: the service account's JSON key */
	char *ca_file;             /* extra trust anchors for the token endpoint */
};

struct users;

struct provider_cfg {
	char *name;
	char *preset;             /* NAME[:REGION] as written; NULL when none */
	char *host;
	struct port_mode *ports;
	unsigned nports;
	char *username;           /* NULL when unset */
	char *password;           /* from password or password_file; NULL when unset */
	enum auth_choice auth;
	bool tls_verify;
	char *tls_ca_file;        /* NULL when unset */
	int tls_min_version;      /* TLS1_VERSION .. TLS1_3_VERSION (OpenSSL constants) */
	bool allow_plaintext;
	double connect_timeout;   /* seconds */
	double greeting_timeout;
	double attempt_delay;
	double recheck_interval;  /* how soon a remembered fallback pair is re-checked against the preferred ones */
	unsigned max_connections;  /* sessions open at once to this provider */
	double max_connections_wait; /* how long a transaction waits for one of them */
	uint64_t max_message_size; /* 0: none of its own (its EHLO SIZE still counts) */
	unsigned max_recipients;   /* per transaction; 0: no limit */
	char *sender;             /* the verified envelope sender; NULL: the client's */
	bool sender_header;       /* From: becomes `sender` too */
	char **strip_headers;     /* header fields removed on the way out */
	unsigned nstrip_headers;
	struct oauth2_cfg oauth2;
	unsigned rate_count;       /* rate: transactions per rate_period (pace.h); 0: none */
	double rate_period;        /* seconds: 1, 60 or 3600 */
	double rate_wait;          /* passthrough: the longest wait for a turn */
	unsigned daily_quota;      /* transactions per rolling 24 hours; 0: none */
	unsigned line;            /* line of the section header, for messages */
};

struct route_cfg {
	char *name;
	char **from;              /* sender patterns, see cfg_sender_match() */
	unsigned nfrom;
	struct provider_cfg **providers; /* resolved, in failover order */
	unsigned nproviders;
};

struct relay_cfg {
	struct listen_addr *listen;
	unsigned nlisten;
	char *hostname;
	char *qualify_domain;     /* for addresses without one; default: hostname */
	bool add_missing_headers; /* Received:, and Date: / Message-ID: when missing (fixups.h) */
	struct cidr *allow;
	unsigned nallow;
	struct cidr *proxy_from;  /* peers trusted to send a PROXY header on /proxy listeners */
	unsigned nproxy_from;
	unsigned max_clients;
	unsigned max_clients_per_ip; /* 0: no cap; loopback clients are never capped */
	unsigned workers;         /* 0 = auto */
	double drain_timeout;
	uint64_t max_message_size;
	unsigned max_recipients;
	double timeout;
	uint64_t data_min_rate;   /* bytes a second a message body keeps on average after `timeout`; 0: off */
	bool accept_lf_dot;       /* a "." line with a bare LF at one end ends DATA (smtp_data.h) */
	enum delivery_mode delivery;
	char *spool;
	struct provider_cfg **providers; /* the default route, resolved */
	unsigned nproviders;
	char *user;               /* NULL/empty = no privilege drop */
	struct daemon_id id;      /* who reads the files at reload (from user) */
	char *control;            /* control socket path; NULL = off */
	struct sockaddr_any metrics;
	bool metrics_on;
	bool log_syslog;
	enum log_level log_level;
	enum log_format log_format;
	char *tls_cert_file;      /* server certificate chain (PEM); NULL: no STARTTLS, no /implicit */
	char *tls_key_file;
	unsigned tls_line;        /* of tls_cert_file, for messages; 0 when set with -o */
	struct users *users;      /* users_file: who may AUTH (users.h); NULL when unset */
};

struct queue_cfg {
	double retry_initial;
	double retry_max;
	double max_age;
	double alert_age;         /* /readyz: the oldest queued message must be younger */
	enum bounce_mode bounce;
	char *bounce_to;          /* bounce = ADDRESS: who gets the notices (else NULL) */
	char *bounce_from;        /* the bounce's sender; NULL: <> (the route's sender then replaces it) */
};

struct config {
	char *file;
	struct relay_cfg relay;
	struct provider_cfg *providers;
	unsigned nproviders;
	struct route_cfg *routes;
	unsigned nroutes;
	struct queue_cfg queue;
};

/*
 * Loads `file` and applies the `-o` overrides (strings "SECTION.KEY=VALUE";
 * the key is after the last dot). Every problem is printed to errs as
 * `FILE:LINE: message` (all of them, not just the first); returns NULL if
 * there was any. Defaults are those of DESIGN.md.
 */
struct config *config_load(const char *file, char *const *overrides, unsigned noverrides, FILE *errs);
/* For local clients (subrelay-sendmail), run by any user: loads and
 * checks the file like config_load(), except that [provider] and
 * [route] sections are not built (their secret files are the daemon's,
 * unreadable to the client) and have only defaults. */
struct config *config_load_local(const char *file, FILE *errs);
/* Loads like config_load() and prints the effective configuration to
 * out: one "SECTION.KEY = VALUE" line per setting (written, else from
 * the preset, else the default), secrets as <secret>. */
bool config_print(const char *file, char *const *overrides, unsigned noverrides, FILE *out, FILE *errs);
void config_free(struct config *cfg);

struct provider_cfg *config_provider(const struct config *cfg, const char *name);

/*
 * The providers for a message from `sender` (may be "" for the null
 * sender): the first route whose `from` matches, else relay.providers.
 * *route_name is set to the route's name or "default".
 */
/* "queue", "passthrough" or "hybrid". */
const char *config_delivery_name(const struct config *cfg);
/* Queue and hybrid delivery keep a spool (and a queue that delivers it). */
bool config_uses_spool(const struct config *cfg);

struct provider_cfg *const *config_route_for(const struct config *cfg, const char *sender,
    unsigned *nproviders, const char **route_name);

#endif

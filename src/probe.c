/*
 * probe.c: see probe.h. One row per (provider, port, mode); each row
 * resolves the host, then tries its addresses in order until one
 * connects, and records what the upstream session learnt.
 */
#include "probe.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns.h"
#include "hint.h"
#include "id.h"
#include "oauth2.h"
#include "upstream.h"
#include "utx.h"

#define SAFETY_MARGIN 5.0
/* After the last row, how long polite QUITs may take before we exit. */
#define LINGER 2.0

static const struct port_mode well_known[] = {
	{ 587, TLS_MODE_STARTTLS },
	{ 465, TLS_MODE_IMPLICIT },
	{ 2525, TLS_MODE_STARTTLS },
	{ 25, TLS_MODE_STARTTLS },
};

struct probe_run;

struct probe_row {
	struct probe_run *run;
	const struct provider_cfg *provider;
	unsigned provider_index;
	struct port_mode pm;
	struct sockaddr_storage *addrs;
	unsigned naddrs, addr;
	char address[64];
	struct dns_query *query;
	struct upstream *up;       /* until setup is done */
	struct utx *test;          /* --send-test: the test message's transaction */
	bool done, ok;
	const char *cls;           /* failure class name, NULL when ok */
	char error[300];
	struct upstream_facts facts;
	struct smtp_reply ehlo;
	bool have_ehlo;
	uint64_t ehlo_size;        /* EHLO SIZE, 0: none announced */
	char test_result[SMTP_REPLY_TEXT_MAX + 48];
	const char *token_result;  /* "ok" once a token was had (xoauth2), else NULL */
};

struct probe_run {
	struct ev_loop *loop;
	struct dns *dns;
	const struct config *cfg;
	SSL_CTX **tls_ctx;
	struct oauth2 **oauth2;    /* per provider, auth = xoauth2 */
	const struct probe_options *opts;
	struct probe_row *rows;
	unsigned nrows, pending;
	bool *test_sent;           /* per provider index */
	ev_timer deadline;
	bool lingering;            /* deadline is the linger timer, unref'd */
};

static void row_next_address(struct probe_row *row);

/* ---- row lifecycle ---- */

static void row_keep_facts(struct probe_row *row)
{
	struct oauth2 *o = row->run->oauth2[row->provider_index];
	if (o != NULL && oauth2_last_result(o) != NULL && strcmp(oauth2_last_result(o), "ok") == 0)
		row->token_result = "ok";
	const struct smtp_reply *ehlo = upstream_ehlo_reply(row->up);
	row->facts = *upstream_get_facts(row->up);
	row->ehlo_size = upstream_size_limit(row->up);
	if (ehlo != NULL) {
		row->ehlo = *ehlo;
		row->have_ehlo = true;
	}
}

static void row_finish(struct probe_row *row)
{
	struct probe_run *run = row->run;

	if (row->done)
		return;
	row->done = true;
	if (--run->pending == 0) {
		/* Let closing sessions say QUIT; ev_run returns once they are gone. */
		ev_timer_stop(run->loop, &run->deadline);
		ev_timer_set(&run->deadline, LINGER, 0.);
		ev_timer_start(run->loop, &run->deadline);
		ev_unref(run->loop);
		run->lingering = true;
	}
}

static void on_failed(struct upstream *up, void *arg, enum upstream_fail cls, const char *reason)
{
	struct probe_row *row = arg;

	row_keep_facts(row);
	upstream_abort(up);
	row->up = NULL;
	bool connect_failure = cls <= UPSTREAM_FAIL_CONNECT_ERROR;
	row->cls = upstream_fail_name(cls);
	snprintf(row->error, sizeof(row->error), "%s", reason);
	if (connect_failure && row->addr + 1 < row->naddrs) {
		row->addr++;
		row_next_address(row);
		return;
	}
	row_finish(row);
}

/* ---- --send-test ---- */

/* Where the test message's sender and From: come from. */
struct test_sender {
	const char *address;
	const char *source;        /* for the JSON */
	const char *words;         /* for the table */
};

/* The sender a client would give: --from, else the provider's sender, else
 * the recipient. The provider's sender replaces it in MAIL as for any
 * message (utx.h), and in From: with sender_header. */
static struct test_sender test_client_sender(const struct probe_row *row)
{
	const struct probe_options *o = row->run->opts;

	if (o->from != NULL)
		return (struct test_sender){ o->from, "--from", "from --from" };
	if (row->provider->sender != NULL)
		return (struct test_sender){ row->provider->sender, "sender", "from [provider] sender" };
	return (struct test_sender){ o->send_test, "recipient", "the recipient, no --from or [provider] sender" };
}

static struct test_sender test_envelope_sender(const struct probe_row *row)
{
	const struct provider_cfg *p = row->provider;

	if (p->sender != NULL)
		return (struct test_sender){ p->sender, "sender", "from [provider] sender" };
	return test_client_sender(row);
}

static struct test_sender test_header_from(const struct probe_row *row)
{
	const struct provider_cfg *p = row->provider;

	if (p->sender != NULL && p->sender_header)
		return (struct test_sender){ p->sender, "sender_header", "from [provider] sender_header" };
	return test_client_sender(row);
}

static void test_over(struct probe_row *row, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void test_over(struct probe_row *row, const char *fmt, ...)
{
	va_list ap;

	if (row->test_result[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(row->test_result, sizeof(row->test_result), fmt, ap);
		va_end(ap);
	}
	utx_free(row->test, NULL);
	row->test = NULL;
	row_finish(row);
}

/* The first refusal is the one to report; the transaction ends at the
 * next event that may end it. */
static void note_refusal(struct probe_row *row, const struct smtp_reply *r)
{
	if (row->test_result[0] == '\0')
		snprintf(row->test_result, sizeof(row->test_result), "refused: %d %s%s%s", r->code, r->enhanced,
		    r->enhanced[0] ? " " : "", r->text);
}

static void send_test_body(struct probe_row *row)
{
	const char *to = row->run->opts->send_test, *from = test_client_sender(row).address;
	char msgid[ID_LEN + 1], date[64], body[1024];
	size_t room;
	time_t now = time(NULL);
	struct tm tm;

	id_new(msgid);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	int n = snprintf(body, sizeof(body),
	    "From: <%s>\r\nTo: <%s>\r\nSubject: subrelay probe test via %s port %u\r\nDate: %s\r\n"
	    "Message-ID: <%s@%s>\r\n\r\n"
	    "This test message was sent by subrelayd --probe on %s\r\nthrough provider %s (%s), port %u, %s.\r\n",
	    from, to, row->provider->name, row->pm.port, date, msgid, row->run->cfg->relay.hostname,
	    row->run->cfg->relay.hostname, row->provider->name, row->provider->host, row->pm.port,
	    tls_mode_name(row->pm.mode));
	char *space = utx_body_space(row->test, (size_t)n + 1, &room);
	if (n < 0 || (size_t)n > room) {
		test_over(row, "failed: message does not fit");
		return;
	}
	memcpy(space, body, (size_t)n);
	utx_body_commit(row->test, (size_t)n);
	utx_end(row->test);
}

static void on_test_mail(void *arg, const struct smtp_reply *r, const char *error)
{
	struct probe_row *row = arg;

	(void)error; /* a given session: there is always a reply */
	if (r->code / 100 != 2) {
		note_refusal(row, r);
		test_over(row, "refused");
	}
}

static void on_test_rcpt(void *arg, unsigned i, const struct smtp_reply *r)
{
	(void)i;
	if (r->code / 100 != 2)
		note_refusal(arg, r); /* DATA is refused next */
}

static void on_test_data(void *arg, const struct smtp_reply *r)
{
	struct probe_row *row = arg;

	if (r->code == 354) {
		send_test_body(row);
		return;
	}
	note_refusal(row, r);
	test_over(row, "refused");
}

static void on_test_end(void *arg, const struct smtp_reply *r)
{
	struct probe_row *row = arg;

	test_over(row, "%s: %d %s%s%s", r->code / 100 == 2 ? "sent" : "refused", r->code, r->enhanced,
	    r->enhanced[0] ? " " : "", r->text);
}

static void on_test_failed(void *arg, enum upstream_fail cls, const char *reason)
{
	(void)cls;
	test_over(arg, "failed: %s", reason);
}

static void on_test_writable(void *arg)
{
	(void)arg; /* the test body always fits at once */
}

static const struct utx_events test_events = {
	.mail = on_test_mail,
	.rcpt = on_test_rcpt,
	.data = on_test_data,
	.writable = on_test_writable,
	.end = on_test_end,
	.failed = on_test_failed,
};

/* Sends the test message on a session that just became ready. */
static void start_test(struct probe_row *row, struct upstream *up)
{
	const char *to = row->run->opts->send_test;
	struct upstream_mail_params mp = { .from = test_client_sender(row).address };

	row->test = utx_start_on(up, &mp, "probe", &test_events, row);
	if (row->test == NULL || !utx_rcpt(row->test, to)) {
		upstream_abort(up);
		test_over(row, "failed: out of memory");
		return;
	}
	utx_data(row->test);
}

/* ---- the session ---- */

static void on_ready(struct upstream *up, void *arg)
{
	struct probe_row *row = arg;
	struct probe_run *run = row->run;

	row_keep_facts(row);
	row->ok = true;
	row->up = NULL;
	if (run->opts->send_test != NULL && !run->test_sent[row->provider_index]) {
		run->test_sent[row->provider_index] = true;
		start_test(row, up);
		return;
	}
	upstream_close(up);
	row_finish(row);
}

/* Until setup is done: no transaction command is sent before. */
static const struct upstream_callbacks probe_callbacks = {
	.ready = on_ready,
	.failed = on_failed,
};

static void row_next_address(struct probe_row *row)
{
	struct probe_run *run = row->run;
	struct sockaddr_storage ss = row->addrs[row->addr];

	if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(row->pm.port);
	else
		((struct sockaddr_in *)&ss)->sin_port = htons(row->pm.port);
	sockaddr_format(row->address, sizeof(row->address), (struct sockaddr *)&ss);
	struct upstream_params params = {
		.loop = run->loop,
		.provider = row->provider,
		.oauth2 = run->oauth2[row->provider_index],
		.tls_ctx = run->tls_ctx[row->provider_index],
		.addr = (struct sockaddr *)&ss,
		.addrlen = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
		.port_mode = row->pm,
		.helo_name = run->cfg->relay.hostname,
		.log_id = "probe",
	};
	row->up = upstream_open(&params, &probe_callbacks, row);
	if (row->up == NULL) {
		row->cls = "connect_error";
		snprintf(row->error, sizeof(row->error), "cannot create a socket");
		row_finish(row);
	}
}

static void on_resolved(const struct dns_result *res, void *arg)
{
	struct probe_row *row = arg;

	row->query = NULL;
	if (res->error != NULL || res->naddrs == 0) {
		row->cls = "dns";
		snprintf(row->error, sizeof(row->error), "cannot resolve %s: %s", row->provider->host,
		    res->error ? res->error : "no address");
		row_finish(row);
		return;
	}
	row->addrs = calloc(res->naddrs, sizeof(*row->addrs));
	if (row->addrs == NULL) {
		row->cls = "dns";
		snprintf(row->error, sizeof(row->error), "out of memory");
		row_finish(row);
		return;
	}
	memcpy(row->addrs, res->addrs, res->naddrs * sizeof(*row->addrs));
	row->naddrs = res->naddrs;
	row_next_address(row);
}

/* ---- building the rows ---- */

static bool has_port(const struct provider_cfg *p, uint16_t port)
{
	for (unsigned i = 0; i < p->nports; i++)
		if (p->ports[i].port == port)
			return true;
	return false;
}

static void add_row(struct probe_run *run, unsigned provider, struct port_mode pm)
{
	struct probe_row *row = &run->rows[run->nrows++];

	row->run = run;
	row->provider = &run->cfg->providers[provider];
	row->provider_index = provider;
	row->pm = pm;
}

static bool build_rows(struct probe_run *run)
{
	const struct config *cfg = run->cfg;
	size_t max = 0;

	for (unsigned i = 0; i < cfg->nproviders; i++)
		max += cfg->providers[i].nports + sizeof(well_known) / sizeof(well_known[0]);
	run->rows = calloc(max + 1, sizeof(*run->rows));
	run->test_sent = calloc(cfg->nproviders + 1, sizeof(*run->test_sent));
	if (run->rows == NULL || run->test_sent == NULL)
		return false;
	for (unsigned i = 0; i < cfg->nproviders; i++) {
		const struct provider_cfg *p = &cfg->providers[i];
		if (run->opts->provider != NULL && strcmp(p->name, run->opts->provider) != 0)
			continue;
		for (unsigned j = 0; j < p->nports; j++)
			add_row(run, i, p->ports[j]);
		for (size_t j = 0; run->opts->all_ports && j < sizeof(well_known) / sizeof(well_known[0]); j++)
			if (!has_port(p, well_known[j].port))
				add_row(run, i, well_known[j]);
	}
	return true;
}

/* The longest a row can take: every step's timeout, for every address. */
static double deadline_for(const struct config *cfg)
{
	double worst = 0;

	for (unsigned i = 0; i < cfg->nproviders; i++) {
		const struct provider_cfg *p = &cfg->providers[i];
		double t = p->connect_timeout * 2 + p->greeting_timeout * 6;
		if (p->auth == AUTH_CHOICE_XOAUTH2) /* a token fetch, and one more after a refusal */
			t += 2 * (p->connect_timeout + p->greeting_timeout);
		if (t > worst)
			worst = t;
	}
	return worst + SAFETY_MARGIN;
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct probe_run *run = w->data;
	(void)revents;

	if (run->lingering) {
		ev_ref(loop); /* balances ev_unref() before libev stops the timer */
		run->lingering = false;
		ev_break(loop, EVBREAK_ONE);
		return;
	}
	for (unsigned i = 0; i < run->nrows; i++) {
		struct probe_row *row = &run->rows[i];
		if (row->done)
			continue;
		if (row->up != NULL) {
			row_keep_facts(row);
			upstream_abort(row->up);
			row->up = NULL;
		}
		if (row->test != NULL) {
			utx_free(row->test, NULL);
			row->test = NULL;
			snprintf(row->test_result, sizeof(row->test_result), "failed: the probe's overall deadline passed");
		}
		if (!row->ok) {
			row->cls = "timeout";
			snprintf(row->error, sizeof(row->error), "the probe's overall deadline passed");
		}
		row->done = true;
	}
	ev_break(loop, EVBREAK_ONE);
}

/* ---- the report ---- */

static const char *auth_word(const struct probe_row *row)
{
	if (row->provider->username == NULL || row->provider->auth == AUTH_CHOICE_NONE)
		return "none";
	switch (row->facts.auth) {
	case UPSTREAM_AUTH_ACCEPTED:
		return "accepted";
	case UPSTREAM_AUTH_REJECTED:
		return "rejected";
	default:
		return "not_tried";
	}
}

static const char *auth_method(const struct provider_cfg *p)
{
	static const char *const names[] = { "auto", "plain", "login", "none", "xoauth2" };

	return p->username == NULL ? "none" : names[p->auth];
}

/* The token fetch as this row saw it: "ok", the endpoint's error, or NULL. */
static const char *oauth2_word(const struct probe_row *row)
{
	if (row->provider->auth != AUTH_CHOICE_XOAUTH2)
		return NULL;
	if (row->cls != NULL && strcmp(row->cls, "oauth2") == 0)
		return row->error;
	return row->token_result;
}

static const char *tcp_word(const struct probe_row *row, char *buf, size_t len)
{
	if (row->facts.connect_seconds >= 0) {
		snprintf(buf, len, "%.1fms", row->facts.connect_seconds * 1000);
		return buf;
	}
	if (row->cls == NULL)
		return "-";
	if (strcmp(row->cls, "connect_refused") == 0)
		return "refused";
	if (strcmp(row->cls, "connect_timeout") == 0)
		return "timeout";
	if (strcmp(row->cls, "connect_unreachable") == 0)
		return "unreachable";
	if (strcmp(row->cls, "connect_denied") == 0)
		return "denied";
	return row->cls;
}

static const char *row_hint(const struct probe_row *row, char *buf, size_t len)
{
	for (int f = 0; row->cls != NULL && f <= UPSTREAM_FAIL_TIMEOUT; f++) /* TIMEOUT: the last class */
		if (strcmp(upstream_fail_name((enum upstream_fail)f), row->cls) == 0)
			return hint_for_failure(row->provider->host, row->pm.port, row->pm.mode, (enum upstream_fail)f,
			    row->error, buf, len);
	/* A path that works but refused the test message: the provider's
	 * known refusals of a sender (Microsoft 365's SendAsDenied). */
	if (strncmp(row->test_result, "refused: 5", 10) == 0)
		return hint_for_failure(row->provider->host, row->pm.port, row->pm.mode, UPSTREAM_FAIL_REPLY_PERMFAIL,
		    row->test_result, buf, len);
	return NULL;
}

static void json_stringn(FILE *out, const char *s, size_t n)
{
	fputc('"', out);
	for (const char *end = s + n; s < end; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void json_string(FILE *out, const char *s)
{
	json_stringn(out, s, s != NULL ? strlen(s) : 0);
}

static void json_field(FILE *out, const char *key, const char *value, bool more)
{
	json_string(out, key);
	fputs(": ", out);
	if (value == NULL)
		fputs("null", out);
	else
		json_string(out, value);
	fputs(more ? ", " : "", out);
}

/* "key": [...], one string per part of text between separators (empty
 * parts skipped): the EHLO lines, the AUTH mechanisms. */
static void json_list(FILE *out, const char *key, const char *text, const char *seps)
{
	bool first = true;

	json_string(out, key);
	fputs(": [", out);
	while (text != NULL && *text) {
		size_t n = strcspn(text, seps);
		if (n > 0) {
			fputs(first ? "" : ", ", out);
			json_stringn(out, text, n);
			first = false;
		}
		text += n + (text[n] != '\0');
	}
	fputs("], ", out);
}

/* ---- warnings: the path works, but not for every message ---- */

#define WARNINGS_MAX 1

struct warnings {
	char text[WARNINGS_MAX][240];
	unsigned n;
};

/* The provider announced a smaller SIZE than the relay takes for it: a
 * client's larger message is accepted, then refused at MAIL. */
static void warn_size(const struct probe_row *row, struct warnings *w)
{
	uint64_t limit = row->run->cfg->relay.max_message_size;
	const char *by = "[relay] max_message_size";

	if (row->provider->max_message_size > 0 && row->provider->max_message_size < limit) {
		limit = row->provider->max_message_size;
		by = "[provider] max_message_size";
	}
	if (row->ehlo_size == 0 || row->ehlo_size >= limit)
		return;
	snprintf(w->text[w->n++], sizeof(w->text[0]),
	    "the provider takes messages up to %llu bytes (EHLO SIZE), below max_message_size %llu (%s): "
	    "larger messages are refused at MAIL", (unsigned long long)row->ehlo_size, (unsigned long long)limit, by);
}

static void row_warnings(const struct probe_row *row, struct warnings *w)
{
	w->n = 0;
	warn_size(row, w);
}

static void print_json_row(FILE *out, const struct probe_row *row, bool last)
{
	char tcp[32], hint[480];
	const struct upstream_facts *f = &row->facts;
	const bool tls = f->tls_seen;

	fputs("  {", out);
	json_field(out, "provider", row->provider->name, true);
	json_field(out, "host", row->provider->host, true);
	fprintf(out, "\"port\": %u, ", row->pm.port);
	json_field(out, "mode", tls_mode_name(row->pm.mode), true);
	json_field(out, "address", row->address[0] ? row->address : NULL, true);
	json_field(out, "tcp", f->connect_seconds >= 0 ? "ok" : tcp_word(row, tcp, sizeof(tcp)), true);
	if (f->connect_seconds >= 0)
		fprintf(out, "\"tcp_ms\": %.1f, ", f->connect_seconds * 1000);
	else
		fputs("\"tcp_ms\": null, ", out);
	json_field(out, "greeting", f->greeting[0] ? f->greeting : NULL, true);
	json_list(out, "extensions", row->have_ehlo ? row->ehlo.ehlo : NULL, "\n");
	fprintf(out, "\"starttls\": %s, ", f->starttls_offered ? "true" : "false");
	json_field(out, "tls_version", tls ? f->tls.version : NULL, true);
	json_field(out, "cipher", tls ? f->tls.cipher : NULL, true);
	json_field(out, "cert_subject", tls ? f->tls.subject : NULL, true);
	json_field(out, "cert_issuer", tls ? f->tls.issuer : NULL, true);
	json_field(out, "cert_expiry", tls ? f->tls.not_after : NULL, true);
	json_field(out, "cert_verify", tls ? f->tls.verify : NULL, true);
	json_list(out, "auth_mechanisms", f->auth_mechs, " ");
	json_field(out, "auth", auth_word(row), true);
	json_field(out, "auth_method", auth_method(row->provider), true);
	json_field(out, "oauth2_token", oauth2_word(row), true);
	fprintf(out, "\"ok\": %s, ", row->ok ? "true" : "false");
	json_field(out, "class", row->cls, true);
	json_field(out, "error", row->cls ? row->error : NULL, true);
	json_field(out, "hint", row_hint(row, hint, sizeof(hint)), true);
	struct warnings w;
	row_warnings(row, &w);
	fputs("\"warnings\": [", out);
	for (unsigned i = 0; i < w.n; i++) {
		fputs(i > 0 ? ", " : "", out);
		json_string(out, w.text[i]);
	}
	fputs(row->run->opts->send_test != NULL ? "], " : "]", out);
	if (row->run->opts->send_test != NULL) {
		bool sent = row->test_result[0] != '\0';
		struct test_sender env = test_envelope_sender(row), hdr = test_header_from(row);
		json_field(out, "test", sent ? row->test_result : NULL, true);
		json_field(out, "test_sender", sent ? env.address : NULL, true);
		json_field(out, "test_sender_source", sent ? env.source : NULL, true);
		json_field(out, "test_from", sent ? hdr.address : NULL, true);
		json_field(out, "test_from_source", sent ? hdr.source : NULL, false);
	}
	fputs(last ? "}\n" : "},\n", out);
}

static void print_table(FILE *out, const struct probe_run *run)
{
	char tcp[32], hint[480];

	fprintf(out, "%-12s %-5s %-8s %-10s %-9s %-8s %-4s %-7s %-10s %s\n", "PROVIDER", "PORT", "MODE", "TCP",
	    "GREETING", "STARTTLS", "TLS", "CERT", "AUTH", "RESULT");
	for (unsigned i = 0; i < run->nrows; i++) {
		const struct probe_row *row = &run->rows[i];
		const struct upstream_facts *f = &row->facts;
		char result[64];
		snprintf(result, sizeof(result), "%s%s%s", row->ok ? "ok" : "FAIL", row->cls ? " " : "",
		    row->cls ? row->cls : "");
		fprintf(out, "%-12s %-5u %-8s %-10s %-9s %-8s %-4s %-7s %-10s %s\n", row->provider->name, row->pm.port,
		    tls_mode_name(row->pm.mode), tcp_word(row, tcp, sizeof(tcp)),
		    f->greeting[0] ? (strncmp(f->greeting, "220", 3) == 0 ? "220" : "bad") : "-",
		    row->pm.mode == TLS_MODE_STARTTLS ? (f->starttls_offered ? "offered" : "no") : "-",
		    f->tls_seen ? f->tls.version + (strncmp(f->tls.version, "TLSv", 4) == 0 ? 4 : 0) : "-",
		    f->tls_seen ? (strcmp(f->tls.verify, "ok") == 0 ? "ok" : "BAD") : "-", auth_word(row), result);
	}
	for (unsigned i = 0; i < run->nrows; i++) {
		const struct probe_row *row = &run->rows[i];
		const struct upstream_facts *f = &row->facts;
		fprintf(out, "\n%s %u/%s (%s%s%s):\n", row->provider->name, row->pm.port, tls_mode_name(row->pm.mode),
		    row->provider->host, row->address[0] ? " at " : "", row->address);
		if (f->greeting[0])
			fprintf(out, "  greeting: %s\n", f->greeting);
		if (row->have_ehlo) {
			char copy[sizeof(row->ehlo.ehlo)];
			snprintf(copy, sizeof(copy), "%s", row->ehlo.ehlo);
			for (char *p = copy; (p = strchr(p, '\n')) != NULL;)
				*p = ',';
			fprintf(out, "  extensions: %s\n", copy);
		}
		if (f->tls_seen) {
			fprintf(out, "  tls: %s %s\n", f->tls.version, f->tls.cipher);
			fprintf(out, "  certificate: subject \"%s\", issuer \"%s\", expires %s, verification %s\n",
			    f->tls.subject, f->tls.issuer, f->tls.not_after, f->tls.verify);
		}
		if (f->auth_mechs[0])
			fprintf(out, "  auth: %s (credentials %s)\n", f->auth_mechs, auth_word(row));
		if (row->provider->auth == AUTH_CHOICE_XOAUTH2)
			fprintf(out, "  auth = xoauth2, token: %s\n", oauth2_word(row) ? oauth2_word(row) : "not fetched");
		if (row->cls)
			fprintf(out, "  error: %s: %s\n", row->cls, row->error);
		if (row_hint(row, hint, sizeof(hint)) != NULL)
			fprintf(out, "  hint: %s\n", hint);
		struct warnings w;
		row_warnings(row, &w);
		for (unsigned j = 0; j < w.n; j++)
			fprintf(out, "  warning: %s\n", w.text[j]);
		if (row->test_result[0]) {
			struct test_sender env = test_envelope_sender(row), hdr = test_header_from(row);
			fprintf(out, "  test sender: %s (%s), From: %s (%s)\n", env.address, env.words, hdr.address,
			    hdr.words);
			fprintf(out, "  test message to %s: %s\n", run->opts->send_test, row->test_result);
		}
	}
}

/* Exit status: 0 when each probed provider has at least one working row. */
static int verdict(const struct probe_run *run)
{
	for (unsigned i = 0; i < run->nrows; i++) {
		bool any = false;
		for (unsigned j = 0; j < run->nrows; j++)
			if (run->rows[j].provider == run->rows[i].provider && run->rows[j].ok)
				any = true;
		if (!any)
			return 1;
	}
	return run->nrows > 0 ? 0 : 1;
}

static void run_free(struct probe_run *run)
{
	for (unsigned i = 0; run->rows != NULL && i < run->nrows; i++) {
		struct probe_row *row = &run->rows[i];
		if (row->query != NULL)
			dns_cancel(row->query);
		upstream_abort(row->up);
		utx_free(row->test, NULL);
		free(row->addrs);
	}
	free(run->rows);
	free(run->test_sent);
	if (run->cfg != NULL)
		oauth2_caches_free(run->oauth2, run->cfg->nproviders);
	if (run->lingering)
		ev_ref(run->loop);
	ev_timer_stop(run->loop, &run->deadline);
	dns_free(run->dns);
}

int probe_run(const struct config *cfg, SSL_CTX **tls_ctx, const struct probe_options *o, FILE *out)
{
	struct probe_run run = { .cfg = cfg, .tls_ctx = tls_ctx, .opts = o };

	if (o->provider != NULL && config_provider(cfg, o->provider) == NULL) {
		fprintf(stderr, "subrelayd: --probe: no provider \"%s\" in %s\n", o->provider, cfg->file);
		return 2;
	}
	run.loop = ev_default_loop(EVFLAG_AUTO);
	run.dns = dns_new(run.loop);
	run.oauth2 = oauth2_caches_new(run.loop, cfg);
	if (run.dns == NULL || run.oauth2 == NULL || !build_rows(&run)) {
		fprintf(stderr, "subrelayd: --probe: out of memory\n");
		run_free(&run);
		return 1;
	}
	run.pending = run.nrows;
	for (unsigned i = 0; i < run.nrows; i++) {
		struct probe_row *row = &run.rows[i];
		row->facts.connect_seconds = -1;
		row->query = dns_lookup(run.dns, row->provider->host, 0, on_resolved, row);
		if (row->query == NULL) {
			row->cls = "dns";
			snprintf(row->error, sizeof(row->error), "out of memory");
			row_finish(row);
		}
	}
	ev_timer_init(&run.deadline, on_deadline, deadline_for(cfg), 0.);
	run.deadline.data = &run;
	if (run.pending > 0) {
		ev_timer_start(run.loop, &run.deadline);
		ev_run(run.loop, 0);
	}
	if (o->json) {
		fputs("[\n", out);
		for (unsigned i = 0; i < run.nrows; i++)
			print_json_row(out, &run.rows[i], i + 1 == run.nrows);
		fputs("]\n", out);
	} else {
		print_table(out, &run);
	}
	int status = verdict(&run);
	run_free(&run);
	return status;
}

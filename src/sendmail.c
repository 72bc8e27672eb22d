/*
 * subrelay-sendmail: the sendmail command-line interface for programs
 * that pipe mail to /usr/sbin/sendmail (PHP mail(), cron, logwatch).
 * Reads the message from stdin (mailmsg.h), submits it over SMTP to the
 * local daemon (smtp_client.h) at the first relay.listen address of the
 * configuration, or leaves it in the spool's drop directory when no
 * daemon answers (maildrop.h). Called as `mailq` (or with -bp) it lists
 * the queue through the control socket (control_client.h).
 *
 * Exit codes are sysexits.h's, as every sendmail's: 0 accepted; 64 bad
 * usage; 65 bad message or refused sender; 67 a recipient refused; 68
 * an -S host name that does not exist; 69 (mailq) no daemon; 75 try
 * again later (daemon down and no drop possible, or a 4xx); 78 bad
 * configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "addrlist.h"
#include "cfgval.h"
#include "config.h"
#include "control_client.h"
#include "maildrop.h"
#include "mailmsg.h"
#include "smtp_client.h"
#include "smtp_parse.h"

#define PROG "subrelay-sendmail"
#define CONNECT_TIMEOUT 30.        /* seconds for the connection and the greeting */
#define REPLY_TIMEOUT 600.         /* each later reply: RFC 5321 4.5.3.2's longest */
#define FROM_FIELD_MAX (SMTP_PATH_MAX * 4 + 32)
#define TARGETS_MAX 4              /* addresses of an -S host name tried in turn */

struct options {
	bool list_queue;           /* -bp, or called as mailq */
	bool extract;              /* -t */
	bool dot_ends;             /* no -i / -oi */
	bool verbose;              /* -v */
	const char *from;          /* -f / -r */
	const char *full_name;     /* -F */
	const char *config;        /* -C */
	bool config_given;         /* -C was given (else the default file) */
	const char *server;        /* -S */
};

/* Where to submit: the daemon's listener, or -S's addresses. */
struct targets {
	struct sockaddr_any addr[TARGETS_MAX];
	unsigned n;
};

/* The submission being made. */
struct submit {
	const struct options *o;
	const struct config *cfg;
	char sender[SMTP_PATH_MAX + 1];  /* MAIL FROM, as given or the login name */
	char **rcpts;
	unsigned nrcpts;
	struct mailmsg msg;
};

static void vsay(const char *fmt, va_list ap)
{
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

static void __attribute__((noreturn, format(printf, 2, 3))) die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	exit(code);
}

static void usage(void)
{
	printf("usage: " PROG " [-t] [-i] [-f SENDER] [-F NAME] [-C FILE] [-S HOST:PORT] [-v] [RECIPIENT...]\n"
	       "       " PROG " -bp [-C FILE]     (or: mailq)\n"
	       "\n"
	       "  -t         recipients from the To:, Cc: and Bcc: fields too (Bcc: is removed)\n"
	       "  -i, -oi    a line with a single dot does not end the message\n"
	       "  -f SENDER  envelope sender (default: your login name, qualified by the daemon)\n"
	       "  -F NAME    full name for the From: field added when the message has none\n"
	       "  -C FILE    the daemon's configuration (default %s/subrelay/subrelay.ini)\n"
	       "  -S HOST:PORT submit there instead of the first relay.listen address\n"
	       "  -bp        list the queue; -bm (default) deliver; other -o options, -B, -G, -n, -N, -R, -U are ignored\n"
	       "  -v         say what happened on stderr\n"
	       "\n"
	       "Exit status (sysexits.h): 0 accepted, 64 usage, 65 bad message, 67 recipient refused,\n"
	       "68 unknown -S host, 69 no daemon (-bp), 75 try again later, 78 bad configuration.\n",
	    SYSCONFDIR);
}

/* -o: only -oi means something; the rest is sendmail tuning (-oem, -odb...). */
static void option_o(struct options *o, const char *arg)
{
	if (strcmp(arg, "i") == 0)
		o->dot_ends = false;
}

static void option_b(struct options *o, const char *arg)
{
	if (strcmp(arg, "p") == 0)
		o->list_queue = true;
	else if (strcmp(arg, "m") != 0)
		die(EX_USAGE, "-b%s is not supported (only -bm and -bp)", arg);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	int c;

	/* -B, -N, -R: body type, DSN and return options; -G, -U: gateway and
	 * initial submission; -n: no aliases. Accepted and ignored (the daemon
	 * decides). -h: usage. */
	while ((c = getopt(argc, argv, "+:b:B:C:f:F:GhinN:o:r:R:S:tUv")) != -1) {
		switch (c) {
		case 'b': option_b(o, optarg); break;
		case 'C': o->config = optarg; o->config_given = true; break;
		case 'f':
		case 'r': o->from = optarg; break;
		case 'F': o->full_name = optarg; break;
		case 'i': o->dot_ends = false; break;
		case 'o': option_o(o, optarg); break;
		case 'S': o->server = optarg; break;
		case 't': o->extract = true; break;
		case 'v': o->verbose = true; break;
		case 'B':
		case 'G':
		case 'n':
		case 'N':
		case 'R':
		case 'U': break;
		case 'h': usage(); exit(0);
		case ':': die(EX_USAGE, "option -%c needs a value (see -h)", optopt);
		default: die(EX_USAGE, "unknown option -%c (see -h)", optopt);
		}
	}
}

/* An address as MAIL or RCPT would carry it, checked by the daemon's own parser. */
static bool address_ok(const char *verb, const char *addr)
{
	char line[SMTP_PATH_MAX + 32];
	struct smtp_cmd cmd;
	const char *why;
	int n = snprintf(line, sizeof(line), "%s:<%s>", verb, addr);

	return n > 0 && (size_t)n < sizeof(line) && strpbrk(addr, "<>\r\n") == NULL &&
	    smtp_parse_command(line, (size_t)n, &cmd, &why) == SMTP_PARSE_OK;
}

static bool add_rcpt(const char *addr, void *arg)
{
	struct submit *s = arg;
	char **bigger = realloc(s->rcpts, (s->nrcpts + 1) * sizeof(*bigger));

	if (bigger == NULL)
		die(EX_OSERR, "out of memory");
	s->rcpts = bigger;
	if (!address_ok("RCPT TO", addr) || (s->rcpts[s->nrcpts] = strdup(addr)) == NULL)
		die(EX_DATAERR, "invalid recipient address: %s", addr);
	s->nrcpts++;
	return true;
}

/* The envelope sender: -f as given ("<>" is the null sender), else the
 * login name, which the daemon qualifies with relay.qualify_domain. */
static void choose_sender(struct submit *s)
{
	const char *from = s->o->from;
	struct passwd *pw;

	if (from == NULL) {
		if ((pw = getpwuid(getuid())) == NULL)
			die(EX_NOUSER, "who are you? (uid %lu has no name; use -f)", (unsigned long)getuid());
		from = pw->pw_name;
	}
	size_t n = strlen(from);
	if (n >= 2 && from[0] == '<' && from[n - 1] == '>')
		snprintf(s->sender, sizeof(s->sender), "%.*s", (int)(n - 2), from + 1);
	else if (n < sizeof(s->sender))
		memcpy(s->sender, from, n + 1);
	if (n >= sizeof(s->sender) || (s->sender[0] != '\0' && !address_ok("MAIL FROM", s->sender)))
		die(EX_USAGE, "invalid sender address: %s", from);
}

/* "From: "Name" <addr>\r\n" for a message without one; addr is the
 * sender, qualified as the daemon would. */
static void from_field(const struct submit *s, char *out, size_t len)
{
	char addr[SMTP_PATH_MAX * 2], quoted[SMTP_PATH_MAX * 2];
	const char *name = s->o->full_name;
	const char *domain = s->cfg->relay.qualify_domain;
	size_t q = 0;

	if (s->sender[0] == '\0')
		snprintf(addr, sizeof(addr), "MAILER-DAEMON@%s", domain);
	else if (strchr(s->sender, '@') == NULL)
		snprintf(addr, sizeof(addr), "%s@%s", s->sender, domain);
	else
		snprintf(addr, sizeof(addr), "%s", s->sender);
	/* The name as a quoted-string: \ before " and \, no line breaks. */
	for (const char *p = name ? name : ""; *p && q + 3 < sizeof(quoted); p++) {
		if (*p == '\r' || *p == '\n')
			continue;
		if (*p == '"' || *p == '\\')
			quoted[q++] = '\\';
		quoted[q++] = *p;
	}
	quoted[q] = '\0';
	if (q == 0)
		snprintf(out, len, "From: %s\r\n", addr);
	else
		snprintf(out, len, "From: \"%s\" <%s>\r\n", quoted, addr);
}

static void read_message(struct submit *s)
{
	char field[FROM_FIELD_MAX], err[300];
	struct mailmsg_opts mo = {
		.dot_ends = s->o->dot_ends,
		.extract = s->o->extract,
		.from_field = field,
		.max_size = s->cfg->relay.max_message_size,
	};

	from_field(s, field, sizeof(field));
	switch (mailmsg_read(stdin, &mo, &s->msg, err, sizeof(err))) {
	case MAILMSG_OK:
		break;
	case MAILMSG_BAD_HEADER:
		die(EX_DATAERR, "bad address in the message header: %s", err);
	case MAILMSG_TOO_BIG:
		die(EX_DATAERR, "message larger than relay.max_message_size (%llu bytes)",
		    (unsigned long long)s->cfg->relay.max_message_size);
	case MAILMSG_READ_ERROR:
		die(EX_IOERR, "reading the message: %s", err);
	}
	for (unsigned i = 0; i < s->msg.nrcpts; i++)
		add_rcpt(s->msg.rcpts[i], s);
}

/* ---- the SMTP submission ---- */

enum outcome { SENT, UNREACHABLE, DONE };

/* Exit code for a reply that is not the one wanted. */
static int reply_code(const struct smtp_reply *r, int permanent)
{
	return r->code >= 400 && r->code < 500 ? EX_TEMPFAIL : permanent;
}

static void __attribute__((noreturn)) refused(struct smtp_client *c, const char *what, const struct smtp_reply *r,
    int permanent)
{
	say("%s: %d %s%s%s", what, r->code, r->enhanced, r->enhanced[0] ? " " : "", r->text);
	smtp_client_close(c);
	exit(reply_code(r, permanent));
}

static void command(struct smtp_client *c, const char *line, struct smtp_reply *r)
{
	char err[300];

	if (!smtp_client_command(c, line, r, err, sizeof(err))) {
		say("the daemon broke the session: %s", err);
		smtp_client_close(c);
		exit(EX_TEMPFAIL);
	}
}

/* RCPT for each; the refused ones are reported. Returns how many were refused. */
static unsigned recipients(struct smtp_client *c, const struct submit *s, unsigned *accepted)
{
	char line[SMTP_PATH_MAX + 16];
	struct smtp_reply r;
	unsigned bad = 0;

	for (unsigned i = 0; i < s->nrcpts; i++) {
		snprintf(line, sizeof(line), "RCPT TO:<%s>", s->rcpts[i]);
		command(c, line, &r);
		if (r.code / 100 == 2) {
			(*accepted)++;
			continue;
		}
		if (r.code / 100 == 4)
			refused(c, s->rcpts[i], &r, EX_TEMPFAIL);
		say("%s: %d %s%s%s", s->rcpts[i], r.code, r.enhanced, r.enhanced[0] ? " " : "", r.text);
		bad++;
	}
	return bad;
}

static void transaction(struct smtp_client *c, const struct submit *s, const struct smtp_reply *ehlo)
{
	char line[SMTP_PATH_MAX + 64], err[300];
	struct smtp_reply r;
	unsigned accepted = 0;

	snprintf(line, sizeof(line), "MAIL FROM:<%s>%s", s->sender,
	    s->msg.eight_bit && smtp_ehlo_has(ehlo, "8BITMIME", NULL, 0) ? " BODY=8BITMIME" : "");
	command(c, line, &r);
	if (r.code / 100 != 2)
		refused(c, "sender refused", &r, EX_DATAERR);
	unsigned bad = recipients(c, s, &accepted);
	if (accepted == 0) {
		smtp_client_close(c);
		exit(EX_NOUSER);
	}
	command(c, "DATA", &r);
	if (r.code != 354)
		refused(c, "DATA refused", &r, EX_DATAERR);
	if (!smtp_client_data(c, s->msg.data, s->msg.len, &r, err, sizeof(err))) {
		say("the daemon broke the session: %s", err);
		smtp_client_close(c);
		exit(EX_TEMPFAIL);
	}
	if (r.code / 100 != 2)
		refused(c, "message refused", &r, EX_DATAERR);
	if (s->o->verbose)
		say("accepted: %d %s%s%s", r.code, r.enhanced, r.enhanced[0] ? " " : "", r.text);
	smtp_client_close(c);
	exit(bad > 0 ? EX_NOUSER : 0);
}

/* Submits over SMTP; returns only when no daemon answered (why in err). */
static void submit_smtp(const struct submit *s, const struct sockaddr_any *to, char *err, size_t errlen)
{
	char name[256] = "localhost";
	char line[300];
	struct smtp_reply r;
	struct smtp_client *c = smtp_client_connect(to, CONNECT_TIMEOUT, REPLY_TIMEOUT, &r, err, errlen);

	if (c == NULL)
		return;
	if (r.code != 220)
		refused(c, "the daemon's greeting", &r, EX_TEMPFAIL);
	gethostname(name, sizeof(name) - 1);
	snprintf(line, sizeof(line), "EHLO %s", name);
	command(c, line, &r);
	if (r.code != 250)
		refused(c, "EHLO refused", &r, EX_TEMPFAIL);
	struct smtp_reply ehlo = r;
	transaction(c, s, &ehlo);
}

/* The daemon is down: leave the message in the spool when it lets us. */
static void __attribute__((noreturn)) drop(const struct submit *s, const char *why)
{
	const struct config *cfg = s->cfg;
	char name[ID_LEN + 1], err[600];
	struct maildrop_submission sub = {
		.uid = (unsigned long)getuid(),
		.from = s->sender,
		.rcpts = s->rcpts,
		.nrcpts = s->nrcpts,
		.eight_bit = s->msg.eight_bit,
	};

	if (!config_uses_spool(cfg))
		die(EX_TEMPFAIL, "%s; no spool to leave the message in (delivery = passthrough)", why);
	if (!maildrop_write(cfg->relay.spool, &sub, s->msg.data, s->msg.len, name, err, sizeof(err)))
		die(EX_TEMPFAIL, "%s; cannot leave the message in the spool: %s", why, err);
	if (s->o->verbose)
		say("%s; message left in %s/%s/%s for the daemon", why, cfg->relay.spool, MAILDROP_DIR, name);
	exit(0);
}

/* A name that does not exist (exit 68), not a resolver that failed for
 * now (the message is kept: dropped, or 75). */
static bool unknown_host(int rc)
{
#ifdef EAI_NODATA
	if (rc == EAI_NODATA)
		return true;
#endif
	return rc == EAI_NONAME;
}

/* -S HOST:PORT: an IP address, or a name whose addresses are tried in
 * turn (localhost may be ::1 first while the daemon listens on
 * 127.0.0.1). A command may block on the lookup; the daemon never does.
 * False, with why in why, when the lookup failed for now. */
static bool server_targets(const char *server, struct targets *t, char *why, size_t whylen)
{
	char err[200], host[256];
	const char *colon = strrchr(server, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *res;

	t->n = 0;
	if (cfg_parse_listen(server, &t->addr[0], err, sizeof(err))) {
		t->n = 1;
		return true;
	}
	if (server[0] == '[' || colon == NULL || colon == server || (size_t)(colon - server) >= sizeof(host) ||
	    colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) || atol(colon + 1) < 1 ||
	    atol(colon + 1) > 65535)
		die(EX_USAGE, "-S %s: %s", server, err);
	memcpy(host, server, (size_t)(colon - server));
	host[colon - server] = '\0';
	int rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0 && unknown_host(rc))
		die(EX_NOHOST, "-S %s: %s", server, gai_strerror(rc));
	if (rc != 0) {
		snprintf(why, whylen, "cannot look up %s (%s)", host, rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return false;
	}
	for (const struct addrinfo *ai = res; ai != NULL && t->n < TARGETS_MAX; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(t->addr[0].ss))
			continue;
		memset(&t->addr[t->n], 0, sizeof(t->addr[0]));
		memcpy(&t->addr[t->n].ss, ai->ai_addr, ai->ai_addrlen);
		t->addr[t->n++].len = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	if (t->n == 0)
		die(EX_NOHOST, "-S %s: no address", server);
	return true;
}

/* False, with why, when -S's name could not be looked up for now. */
static bool target(const struct options *o, const struct config *cfg, struct targets *t, char *why, size_t whylen)
{
	if (o->server != NULL)
		return server_targets(o->server, t, why, whylen);
	/* The first plain listener: a /proxy one expects a load balancer's
	 * header first, which a local submission does not send. */
	for (unsigned i = 0; i < cfg->relay.nlisten; i++) {
		if (cfg->relay.listen[i].flags == 0) {
			t->addr[0] = cfg->relay.listen[i].sa;
			t->n = 1;
			return true;
		}
	}
	die(EX_CONFIG, "%s: relay.listen has no plain listener to submit to (use -S HOST:PORT)", cfg->file);
}

static void send_message(const struct options *o, const struct config *cfg, int nargs, char **args)
{
	struct submit s = { .o = o, .cfg = cfg };
	struct targets t;
	char err[300], why[1200] = "no daemon at ", where[80], lookup[400];
	bool found = target(o, cfg, &t, lookup, sizeof(lookup));

	choose_sender(&s);
	for (int i = 0; i < nargs; i++)
		if (!addrlist_parse(args[i], strlen(args[i]), add_rcpt, &s, err, sizeof(err)))
			die(EX_USAGE, "recipient %s: %s", args[i], err);
	if (s.nrcpts == 0 && !o->extract)
		die(EX_USAGE, "no recipient given (name them, or use -t)");
	read_message(&s);
	if (s.nrcpts == 0)
		die(EX_DATAERR, "no recipient in the To:, Cc: or Bcc: fields");
	if (!found)
		drop(&s, lookup); /* the resolver failed for now: kept like with the daemon down */
	for (unsigned i = 0; i < t.n; i++) {
		submit_smtp(&s, &t.addr[i], err, sizeof(err));
		sockaddr_format(where, sizeof(where), (const struct sockaddr *)&t.addr[i].ss);
		snprintf(why + strlen(why), sizeof(why) - strlen(why), "%s%s (%s)", i > 0 ? ", " : "", where, err);
	}
	drop(&s, why);
}

/* ---- mailq ---- */

static void __attribute__((noreturn)) list_queue(const struct config *cfg)
{
	const char *sock = cfg->relay.control;
	struct control_reply reply;
	char err[600];
	enum control_result res = CONTROL_REPLY_UNREACHABLE;

	if (sock == NULL || sock[0] == '\0')
		snprintf(err, sizeof(err), "relay.control is not set in %s", cfg->file);
	else
		res = control_client_request(sock, "queue\n", &reply, err, sizeof(err));
	if (res == CONTROL_REPLY_OK)
		fwrite(reply.output, 1, reply.output_len, stdout);
	else
		say("cannot list the daemon's queue: %s", err);
	if (sock != NULL && sock[0] != '\0')
		control_reply_free(&reply);
	if (config_uses_spool(cfg)) {
		printf("%sleft in %s/%s for the daemon:\n", res == CONTROL_REPLY_OK ? "\n" : "", cfg->relay.spool, MAILDROP_DIR);
		int n = maildrop_list(cfg->relay.spool, stdout);
		if (n < 0)
			printf("(cannot list it: %s)\n", strerror(errno));
		else if (n == 0)
			printf("(none)\n");
	}
	exit(fflush(stdout) != 0 ? EX_IOERR : res == CONTROL_REPLY_OK ? 0 : EX_UNAVAILABLE);
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	struct options o = { .dot_ends = true, .config = SYSCONFDIR "/subrelay/subrelay.ini" };

	o.list_queue = strcmp(base, "mailq") == 0;
	parse_options(argc, argv, &o);
	/* -S names the daemon: a host without the configuration (an app's
	 * container) submits with the defaults, and has no drop directory. */
	if (o.server != NULL && !o.config_given && !o.list_queue && access(o.config, F_OK) != 0 && errno == ENOENT)
		o.config = "/dev/null";
	struct config *cfg = config_load_local(o.config, stderr);
	if (cfg == NULL)
		die(EX_CONFIG, "the configuration %s is not usable (see above)", o.config);
	if (o.list_queue)
		list_queue(cfg);
	send_message(&o, cfg, argc - optind, argv + optind);
	config_free(cfg);
	return 0;
}

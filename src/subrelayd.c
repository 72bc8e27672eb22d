/*
 * subrelayd: the daemon's entry point. Startup order: parse the command
 * line, load and validate the configuration (TLS contexts included, so
 * `-t` checks CA files too), open the log, bind, drop privileges,
 * install signal watchers, run. SIGTERM/SIGINT stop accepting and give
 * sessions in flight relay.drain_timeout to finish.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ev.h>

#include "config.h"
#include "dns.h"
#include "listener.h"
#include "log.h"
#include "probe.h"
#include "smtp_server.h"
#include "tls.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/subrelay/subrelay.ini"

struct options {
	const char *config_file;
	bool test_only;
	char **overrides;
	unsigned noverrides;
	bool probe;
	struct probe_options probe_opts;
};

static void usage(FILE *out)
{
	fprintf(out,
	    "usage: subrelayd [-c FILE] [-o SECTION.KEY=VALUE]... [-t]\n"
	    "       subrelayd [-c FILE] [-o ...] --probe [PROVIDER] [--all-ports] [--json] [--send-test ADDRESS]\n"
	    "       subrelayd -V | -h\n"
	    "\n"
	    "  -c FILE   configuration file (default %s)\n"
	    "  -o S.K=V  override one setting, e.g. -o relay.listen=127.0.0.1:2600 (repeatable)\n"
	    "  -t        check the configuration and exit (0 valid, 1 invalid)\n"
	    "  --probe [PROVIDER]  test every path to the providers from this host and exit\n"
	    "            (0 every provider has a working path, 1 not, 2 configuration error)\n"
	    "  --all-ports         also probe 587, 465, 2525 and 25\n"
	    "  --json              print the probe report as JSON\n"
	    "  --send-test ADDRESS send one test message to ADDRESS per provider\n"
	    "  -V        print the version and exit\n"
	    "  -h        print this help and exit\n",
	    DEFAULT_CONFIG);
}

/* Exits on misuse with a one-line reason and status 2. */
static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "probe", no_argument, NULL, 'P' },
		{ "all-ports", no_argument, NULL, 'A' },
		{ "json", no_argument, NULL, 'J' },
		{ "send-test", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->config_file = DEFAULT_CONFIG;
	o->overrides = calloc((size_t)argc, sizeof(char *));
	if (o->overrides == NULL)
		exit(2);
	while ((c = getopt_long(argc, argv, ":c:o:tVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config_file = optarg;
			break;
		case 'o':
			o->overrides[o->noverrides++] = optarg;
			break;
		case 't':
			o->test_only = true;
			break;
		case 'P':
			o->probe = true;
			break;
		case 'A':
			o->probe_opts.all_ports = true;
			break;
		case 'J':
			o->probe_opts.json = true;
			break;
		case 'S':
			o->probe_opts.send_test = optarg;
			break;
		case 'V':
			printf("subrelayd %s\n", PACKAGE_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			fprintf(stderr, "subrelayd: option -%c needs a value (see -h)\n", optopt);
			exit(2);
		default:
			if (optopt != 0)
				fprintf(stderr, "subrelayd: unknown option -%c (see -h)\n", optopt);
			else
				fprintf(stderr, "subrelayd: unknown option %s (see -h)\n", argv[optind - 1]);
			exit(2);
		}
	}
	/* --probe takes an optional provider name as the next word. */
	if (o->probe && optind < argc)
		o->probe_opts.provider = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "subrelayd: unexpected argument \"%s\" (see -h)\n", argv[optind]);
		exit(2);
	}
	if (!o->probe && (o->probe_opts.all_ports || o->probe_opts.json || o->probe_opts.send_test)) {
		fprintf(stderr, "subrelayd: --all-ports, --json and --send-test go with --probe (see -h)\n");
		exit(2);
	}
	if (o->probe && o->test_only) {
		fprintf(stderr, "subrelayd: -t and --probe do not go together (see -h)\n");
		exit(2);
	}
}

/* One client context per provider, index-aligned with cfg->providers. */
static SSL_CTX **build_tls_contexts(const struct config *cfg, FILE *errs)
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
	if (ok)
		return ctx;
	for (unsigned i = 0; ctx != NULL && i < cfg->nproviders; i++)
		SSL_CTX_free(ctx[i]);
	free(ctx);
	return NULL;
}

static void free_tls_contexts(const struct config *cfg, SSL_CTX **ctx)
{
	for (unsigned i = 0; i < cfg->nproviders; i++)
		SSL_CTX_free(ctx[i]);
	free(ctx);
}

static bool drop_privileges(const char *user)
{
	if (user == NULL || user[0] == '\0') {
		if (geteuid() == 0)
			log_warn("running as root: set relay.user to drop privileges after binding");
		return true;
	}
	if (geteuid() != 0) {
		log_warn("relay.user=%s ignored: not started as root", user);
		return true;
	}
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		log_error("relay.user: no such user \"%s\"", user);
		return false;
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_error("cannot drop privileges to %s: %s", user, strerror(errno));
		return false;
	}
	log_info("privileges dropped user=%s uid=%u", user, (unsigned)pw->pw_uid);
	return true;
}

/* ---- shutdown ---- */

struct daemon_state {
	struct server_env env;
	struct listeners *listeners;
	ev_signal sigterm, sigint, sighup;
	ev_timer drain_check;
	ev_tstamp drain_deadline;
};

static void on_drain_check(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon_state *d = w->data;
	(void)revents;

	if (d->env.nclients == 0) {
		log_info("stopped: all sessions finished");
		ev_break(loop, EVBREAK_ALL);
	} else if (ev_now(loop) >= d->drain_deadline) {
		log_warn("stopped: drain_timeout reached with %u sessions still open", d->env.nclients);
		ev_break(loop, EVBREAK_ALL);
	}
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon_state *d = w->data;
	(void)revents;

	if (ev_is_active(&d->drain_check)) {
		log_warn("second stop signal: exiting now");
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	log_info("stopping signal=%s sessions=%u drain_timeout=%gs", w->signum == SIGTERM ? "TERM" : "INT",
	    d->env.nclients, d->env.path.cfg->relay.drain_timeout);
	/* Closed, not just unwatched: new clients get a refusal, not silence. */
	listeners_close(d->listeners);
	d->listeners = NULL;
	d->drain_deadline = ev_now(loop) + d->env.path.cfg->relay.drain_timeout;
	ev_timer_set(&d->drain_check, 0., 0.1);
	ev_timer_start(loop, &d->drain_check);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	log_warn("SIGHUP: configuration reload is not supported yet; restart subrelayd to apply changes");
}

static void install_signals(struct ev_loop *loop, struct daemon_state *d)
{
	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&d->sigterm, on_stop_signal, SIGTERM);
	ev_signal_init(&d->sigint, on_stop_signal, SIGINT);
	ev_signal_init(&d->sighup, on_hup, SIGHUP);
	d->sigterm.data = d->sigint.data = d->sighup.data = d;
	ev_signal_start(loop, &d->sigterm);
	ev_signal_start(loop, &d->sigint);
	ev_signal_start(loop, &d->sighup);
	ev_init(&d->drain_check, on_drain_check);
	d->drain_check.data = d;
}

static int run(struct config *cfg, SSL_CTX **ctx)
{
	struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
	struct daemon_state d = { 0 };
	int status = 1;

	d.env.path.loop = loop;
	d.env.path.cfg = cfg;
	d.env.path.tls_ctx = ctx;
	d.env.path.dns = dns_new(loop);
	d.env.path.memory = path_memory_new(&d.env.path);
	if (d.env.path.dns == NULL || d.env.path.memory == NULL)
		return 1;
	if (cfg->relay.nproviders == 0)
		log_warn("no provider configured (relay.providers is empty): mail is refused with 451 until one is");
	d.listeners = listeners_open(&d.env);
	if (d.listeners != NULL && drop_privileges(cfg->relay.user)) {
		install_signals(loop, &d);
		log_info("started version=%s delivery=%s providers=%u", PACKAGE_VERSION,
		    cfg->relay.delivery == DELIVERY_PASSTHROUGH ? "passthrough" : "queue", cfg->nproviders);
		ev_run(loop, 0);
		status = 0;
	}
	listeners_close(d.listeners);
	path_memory_free(d.env.path.memory, cfg->nproviders);
	dns_free(d.env.path.dns);
	return status;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };

	parse_args(argc, argv, &o);
	tls_init();
	struct config *cfg = config_load(o.config_file, o.overrides, o.noverrides, stderr);
	SSL_CTX **ctx = cfg ? build_tls_contexts(cfg, stderr) : NULL;
	if (ctx == NULL) {
		config_free(cfg);
		free(o.overrides);
		return o.probe ? 2 : 1;
	}
	int status = 0;
	if (o.probe) {
		log_setup(false, LOG_LVL_ERROR);
		status = probe_run(cfg, ctx, &o.probe_opts, stdout);
	} else if (cfg->relay.delivery == DELIVERY_QUEUE) {
		fprintf(stderr, "%s: delivery = queue is not available in this version yet; set delivery = passthrough\n",
		    cfg->file);
		status = 1;
	} else if (o.test_only) {
		printf("%s: configuration ok\n", cfg->file);
	} else {
		log_setup(cfg->relay.log_syslog, cfg->relay.log_level);
		status = run(cfg, ctx);
	}
	free_tls_contexts(cfg, ctx);
	config_free(cfg);
	free(o.overrides);
	return status;
}

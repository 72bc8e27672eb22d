/*
 * subrelayd: the daemon's entry point. Parses the command line, loads and
 * validates the configuration (TLS contexts included, so `-t` checks CA
 * files too), then checks it (-t), probes (--probe) or runs the daemon
 * (daemon.c).
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
#include "ctl_config.h"
#include "daemon.h"
#include "log.h"
#include "probe.h"
#include "runtime.h"
#include "tls.h"


struct options {
	const char *config_file;
	bool test_only;
	bool print_config;
	char **overrides;
	unsigned noverrides;
	bool probe;
	struct probe_options probe_opts;
};

static void usage(FILE *out)
{
	fprintf(out,
	    "usage: subrelayd [-c FILE] [-o SECTION.KEY=VALUE]... [-t | --print-config]\n"
	    "       subrelayd [-c FILE] [-o ...] --probe [PROVIDER] [--all-ports] [--json]\n"
	    "                 [--send-test ADDRESS [--from ADDRESS]]\n"
	    "       subrelayd -V | -h\n"
	    "\n"
	    "  -c FILE   configuration file (default %s)\n"
	    "  -o S.K=V  override one setting, e.g. -o relay.listen=127.0.0.1:2600 (repeatable)\n"
	    "  -t        check the configuration and exit (0 valid, 1 invalid)\n"
	    "  --print-config      print the effective configuration (presets and defaults\n"
	    "            filled in, secrets as <secret>) and exit (0 valid, 1 invalid)\n"
	    "  --probe [PROVIDER]  test every path to the providers from this host and exit\n"
	    "            (0 every provider has a working path, 1 not, 2 configuration error)\n"
	    "  --all-ports         also probe 587, 465, 2525 and 25\n"
	    "  --json              print the probe report as JSON\n"
	    "  --send-test ADDRESS send one test message to ADDRESS per provider\n"
	    "  --from ADDRESS      with --send-test: the test message's sender (default: the\n"
	    "            provider's sender, else the recipient)\n"
	    "  -V        print the version and exit\n"
	    "  -h        print this help and exit\n",
	    SUBRELAY_DEFAULT_CONFIG);
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
		{ "from", required_argument, NULL, 'F' },
		{ "print-config", no_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->config_file = SUBRELAY_DEFAULT_CONFIG;
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
		case 'C':
			o->print_config = true;
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
		case 'F':
			o->probe_opts.from = optarg;
			break;
		case 'V':
			printf("subrelayd %s\n", PACKAGE_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		case ':': /* optopt is a long option's val: name it as written */
			if (strchr("co", optopt) != NULL)
				fprintf(stderr, "subrelayd: option -%c needs a value (see -h)\n", optopt);
			else
				fprintf(stderr, "subrelayd: option %s needs a value (see -h)\n", argv[optind - 1]);
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
	if (o->probe_opts.from != NULL && o->probe_opts.send_test == NULL) {
		fprintf(stderr, "subrelayd: --from goes with --send-test (see -h)\n");
		exit(2);
	}
	if (o->probe + o->test_only + o->print_config > 1) {
		fprintf(stderr, "subrelayd: -t, --probe and --print-config do not go together (see -h)\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct options o = { 0 };

	parse_args(argc, argv, &o);
	if (o.print_config) {
		bool ok = config_print(o.config_file, o.overrides, o.noverrides, stdout, stderr);
		free(o.overrides);
		return ok ? 0 : 1;
	}
	tls_init();
	struct config *cfg = config_load(o.config_file, o.overrides, o.noverrides, stderr);
	SSL_CTX **ctx = cfg ? runtime_tls_contexts(cfg, stderr) : NULL;
	if (ctx == NULL) {
		runtime_free_tls_contexts(cfg, ctx);
		config_free(cfg);
		free(o.overrides);
		return o.probe ? 2 : 1;
	}
	int status = 0;
	if (o.probe) {
		log_setup(false, LOG_LVL_ERROR, LOG_FMT_LOGFMT);
		status = probe_run(cfg, ctx, &o.probe_opts, stdout);
	} else if (o.test_only) {
		printf("%s: configuration ok\n", cfg->file);
	} else {
		struct daemon_args args = {
			.config_file = o.config_file,
			.overrides = o.overrides,
			.noverrides = o.noverrides,
		};
		log_setup(cfg->relay.log_syslog, cfg->relay.log_level, cfg->relay.log_format);
		status = daemon_run(&args, cfg, ctx);
		free(o.overrides);
		return status;
	}
	runtime_free_tls_contexts(cfg, ctx);
	config_free(cfg);
	free(o.overrides);
	return status;
}

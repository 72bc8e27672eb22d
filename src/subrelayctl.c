/*
 * subrelayctl: the control client. Sends one request line to the
 * daemon's control socket (see control.h), prints the reply's output to
 * stdout and turns its status line into the exit status: 0 "ok",
 * 1 "error: ..." or no daemon, 2 misuse. `health` exits 1 when the
 * answer is "not ready". Without -s the socket is the configuration's
 * relay.control (-c FILE, default the daemon's file), else the built-in
 * default.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_client.h"
#include "control_commands.h"
#include "ctl_config.h"

static void print_commands(FILE *out)
{
	for (size_t i = 0; i < CONTROL_NCOMMANDS; i++)
		fprintf(out, "%s%s", i ? ", " : "", control_commands[i].usage);
}

static void usage(FILE *out)
{
	fprintf(out,
	    "usage: subrelayctl [-c FILE | -s SOCKET] COMMAND [ARG]\n"
	    "       subrelayctl -V | -h\n"
	    "\n"
	    "  -c FILE    find the control socket in the daemon's configuration (default %s)\n"
	    "  -s SOCKET  the daemon's control socket (default: relay.control of the configuration, else %s)\n"
	    "  -V         print the version and exit\n"
	    "  -h         print this help and exit\n"
	    "\n"
	    "commands:\n",
	    SUBRELAY_DEFAULT_CONFIG, DEFAULT_CONTROL);
	for (size_t i = 0; i < CONTROL_NCOMMANDS; i++)
		fprintf(out, "  %-15s %s\n", control_commands[i].usage, control_commands[i].help);
	fprintf(out, "\nExit status: 0 ok, 1 the daemon reported an error, is not ready (health) or cannot be\n"
	    "reached, 2 misuse.\n");
}

static void __attribute__((noreturn, format(printf, 1, 2))) die_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("subrelayctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	exit(2);
}

/* Checks the command and its argument; exits 2 with the reason. */
static void check_request(int nargs, char **args)
{
	const char *name = args[0];
	int id = control_command_find(name);

	if (id < 0) {
		fprintf(stderr, "subrelayctl: unknown command %s (try: ", name);
		print_commands(stderr);
		fputs(")\n", stderr);
		exit(2);
	}
	const struct control_command *cmd = &control_commands[id];
	if (cmd->arg == CONTROL_ARG_REQUIRED && nargs < 2)
		die_usage("missing ID (usage: %s)", cmd->usage);
	if (cmd->arg == CONTROL_ARG_NONE && nargs > 1)
		die_usage("unexpected argument %s (usage: %s)", args[1], cmd->usage);
	if (nargs > 2)
		die_usage("unexpected argument %s (usage: %s)", args[2], cmd->usage);
	if (nargs > 1) {
		if (args[1][0] == '\0')
			die_usage("empty ID (usage: %s)", cmd->usage);
		for (const char *p = args[1]; *p; p++)
			if ((unsigned char)*p <= ' ' || *p == 0x7f)
				die_usage("invalid ID %s: blanks or control characters", args[1]);
		if (strlen(name) + 1 + strlen(args[1]) + 1 > CONTROL_LINE_MAX)
			die_usage("ID too long");
	}
}

/* The socket of the configuration in file (given: -c, else the default
 * file, which may be missing), into path. Exits on a problem. */
static void socket_from_config(const char *file, bool given, char *path, size_t n)
{
	char err[512];

	switch (ctl_config_control(file, path, n, err, sizeof(err))) {
	case CTL_CONFIG_FOUND:
		if (path[0] == '\0') {
			fprintf(stderr, "subrelayctl: the control socket is off in %s (relay.control is empty)\n", file);
			exit(1);
		}
		return;
	case CTL_CONFIG_UNREADABLE:
		if (given)
			die_usage("%s", err);
		break; /* no default file: the default socket */
	case CTL_CONFIG_NO_KEY:
		break;
	}
	snprintf(path, n, "%s", DEFAULT_CONTROL);
}

int main(int argc, char **argv)
{
	const char *socket_path = NULL, *config_file = NULL;
	char from_config[4096];
	int c;

	while ((c = getopt(argc, argv, "+:c:s:hV")) != -1) {
		switch (c) {
		case 'c':
			config_file = optarg;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'V':
			printf("subrelayctl %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			die_usage("option -%c needs a value (see -h)", optopt);
		default:
			die_usage("unknown option -%c (see -h)", optopt);
		}
	}
	if (optind >= argc)
		die_usage("no command given (see -h)");
	check_request(argc - optind, argv + optind);
	if (socket_path != NULL && config_file != NULL)
		die_usage("-c and -s both say where the socket is: give one");
	if (socket_path == NULL) {
		socket_from_config(config_file ? config_file : SUBRELAY_DEFAULT_CONFIG, config_file != NULL, from_config,
		    sizeof(from_config));
		socket_path = from_config;
	}

	char request[CONTROL_LINE_MAX + 1];
	if (argc - optind > 1)
		snprintf(request, sizeof(request), "%s %s\n", argv[optind], argv[optind + 1]);
	else
		snprintf(request, sizeof(request), "%s\n", argv[optind]);

	struct control_reply reply;
	char err[600];
	enum control_result res = control_client_request(socket_path, request, &reply, err, sizeof(err));
	if (res == CONTROL_REPLY_BAD_PATH)
		die_usage("%s", err);
	if (res == CONTROL_REPLY_UNREACHABLE)
		fprintf(stderr, "subrelayctl: %s (is subrelayd running with relay.control set?)\n", err);
	else if (res != CONTROL_REPLY_OK)
		fprintf(stderr, "subrelayctl: %s\n", err);
	if (res == CONTROL_REPLY_OK || res == CONTROL_REPLY_ERROR)
		fwrite(reply.output, 1, reply.output_len, stdout);
	/* A verdict command (health) succeeds only with the verdict "ready". */
	const struct control_command *cmd = &control_commands[control_command_find(argv[optind])];
	bool verdict_no = res == CONTROL_REPLY_OK && cmd->verdict &&
	    !(reply.output_len >= 6 && memcmp(reply.output, "ready\n", 6) == 0);
	control_reply_free(&reply);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "subrelayctl: writing the output: %s\n", strerror(errno));
		return 1;
	}
	return res == CONTROL_REPLY_OK && !verdict_no ? 0 : 1;
}

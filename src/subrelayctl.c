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
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "control_commands.h"
#include "ctl_config.h"

#define REPLY_TIMEOUT 60     /* seconds without a byte from the daemon */

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

static bool send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Reads until the daemon closes; NULL with errno on failure. */
static char *read_all(int fd, size_t *lenp)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (buf == NULL)
		return NULL;
	for (;;) {
		if (len == cap) {
			char *nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				free(buf);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = recv(fd, buf + len, cap - len, 0);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		/* The reply is complete when the daemon closes; a reset after
		 * it (it dropped input we sent) changes nothing. */
		if (errno == ECONNRESET && len > 0)
			break;
		int e = errno;
		free(buf);
		errno = e;
		return NULL;
	}
	*lenp = len;
	return buf;
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

	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (socket_path[0] == '\0' || strlen(socket_path) >= sizeof(sun.sun_path))
		die_usage("socket path %s is empty or too long (at most %zu bytes)", socket_path,
		    sizeof(sun.sun_path) - 1);
	memcpy(sun.sun_path, socket_path, strlen(socket_path) + 1);

	char request[CONTROL_LINE_MAX + 1];
	if (argc - optind > 1)
		snprintf(request, sizeof(request), "%s %s\n", argv[optind], argv[optind + 1]);
	else
		snprintf(request, sizeof(request), "%s\n", argv[optind]);

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "subrelayctl: socket: %s\n", strerror(errno));
		return 1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "subrelayctl: cannot connect to %s: %s (is subrelayd running with relay.control set?)\n",
		    socket_path, strerror(errno));
		return 1;
	}
	struct timeval tv = { .tv_sec = REPLY_TIMEOUT, .tv_usec = 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

	if (!send_all(fd, request, strlen(request))) {
		fprintf(stderr, "subrelayctl: cannot send to %s: %s\n", socket_path, strerror(errno));
		return 1;
	}
	size_t len = 0;
	char *reply = read_all(fd, &len);
	if (reply == NULL) {
		fprintf(stderr, "subrelayctl: no reply from %s: %s\n", socket_path,
		    errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : strerror(errno));
		return 1;
	}
	close(fd);
	if (len == 0) {
		fprintf(stderr, "subrelayctl: %s closed the connection without a reply\n", socket_path);
		free(reply);
		return 1;
	}

	char *nl = memchr(reply, '\n', len);
	size_t first = nl != NULL ? (size_t)(nl - reply) : len;
	size_t rest = nl != NULL ? (size_t)(nl + 1 - reply) : len;
	int status;
	if (first == 2 && memcmp(reply, "ok", 2) == 0) {
		status = 0;
	} else if (first >= 7 && memcmp(reply, "error: ", 7) == 0) {
		fprintf(stderr, "subrelayctl: %.*s\n", (int)(first - 7), reply + 7);
		status = 1;
	} else {
		fprintf(stderr, "subrelayctl: unexpected reply from %s: %.*s\n", socket_path,
		    (int)(first > 200 ? 200 : first), reply);
		status = 1;
	}
	fwrite(reply + rest, 1, len - rest, stdout);
	const struct control_command *cmd = &control_commands[control_command_find(argv[optind])];
	if (status == 0 && cmd->verdict && !(len - rest >= 6 && memcmp(reply + rest, "ready\n", 6) == 0))
		status = 1;
	free(reply);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "subrelayctl: writing the output: %s\n", strerror(errno));
		return 1;
	}
	return status;
}

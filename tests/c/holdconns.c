/*
 * holdconns HOST PORT N [ehlo]: a test helper that holds N SMTP client
 * connections open, which the Tcl harness cannot do itself (its event loop
 * uses select(), limited to 1,024 descriptors).
 *
 * It connects N times (a few hundred at a time, so the listen backlog is
 * never the limit), reads each greeting and, with "ehlo", says EHLO and
 * reads the reply. Then it prints one line, "held N greeted G ehlo E", and
 * keeps the connections until its standard input closes, then closes them
 * and exits 0. Exit 1 with a message on a setup error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BATCH = 250, WAIT_MS = 30000 };

struct conn {
	int fd;
	int replies; /* complete reply lines seen: greeting, then EHLO's last line */
	char line[512];
	size_t len;
};

static void raise_file_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int dial(const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0) {
		fprintf(stderr, "holdconns: connect: %s\n", strerror(errno));
		exit(1);
	}
	return fd;
}

/* Reads what is there; counts final reply lines ("250 ..." not "250-..."). */
static void on_readable(struct conn *c)
{
	char buf[1024];
	ssize_t n = read(c->fd, buf, sizeof(buf));
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] != '\n') {
			if (c->len < sizeof(c->line))
				c->line[c->len++] = buf[i];
			continue;
		}
		if (c->len >= 4 && c->line[3] == ' ')
			c->replies++;
		c->len = 0;
	}
}

/* Waits until every connection in [from, to) has seen `want` replies. */
static int wait_replies(struct conn *conns, struct pollfd *pfds, int from, int to, int want)
{
	int done = 0;
	while (done < to - from) {
		int n = 0;
		for (int i = from; i < to; i++) {
			if (conns[i].replies < want) {
				pfds[n].fd = conns[i].fd;
				pfds[n].events = POLLIN;
				n++;
			}
		}
		if (n == 0 || poll(pfds, (nfds_t)n, WAIT_MS) <= 0)
			break;
		for (int i = from, k = 0; i < to; i++) {
			if (conns[i].replies >= want)
				continue;
			if (pfds[k++].revents)
				on_readable(&conns[i]);
		}
		done = 0;
		for (int i = from; i < to; i++)
			done += conns[i].replies >= want;
	}
	return done;
}

int main(int argc, char **argv)
{
	if (argc < 4 || (argc == 5 && strcmp(argv[4], "ehlo") != 0) || argc > 5) {
		fprintf(stderr, "usage: holdconns HOST PORT N [ehlo]\n");
		return 2;
	}
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])) };
	int n = atoi(argv[3]);
	bool ehlo = argc == 5;
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1 || n <= 0) {
		fprintf(stderr, "holdconns: bad address or count\n");
		return 2;
	}
	raise_file_limit();
	struct conn *conns = calloc((size_t)n, sizeof(*conns));
	struct pollfd *pfds = calloc((size_t)n, sizeof(*pfds));
	if (!conns || !pfds)
		return 1;
	int greeted = 0, ehloed = 0;
	for (int from = 0; from < n; from += BATCH) {
		int to = from + BATCH < n ? from + BATCH : n;
		for (int i = from; i < to; i++)
			conns[i].fd = dial(&addr);
		greeted += wait_replies(conns, pfds, from, to, 1);
		if (!ehlo)
			continue;
		for (int i = from; i < to; i++)
			if (write(conns[i].fd, "EHLO hold.test\r\n", 16) != 16)
				conns[i].replies = 2; /* gone: do not wait for it */
		ehloed += wait_replies(conns, pfds, from, to, 2);
	}
	printf("held %d greeted %d ehlo %d\n", n, greeted, ehloed);
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0)
		;
	for (int i = 0; i < n; i++)
		close(conns[i].fd);
	free(conns);
	free(pfds);
	return 0;
}

/*
 * oauth-sink.c: a fake provider for the benchmark rig that also takes
 * AUTH XOAUTH2, so that auth = xoauth2 and auth = plain can be measured
 * against the same sink, side by side, with the rig's run.py unchanged.
 *
 * It stands in for the rig's sink: same ports (the 587-like STARTTLS port
 * with AUTH required, the 2525-like plain port open for the plain
 * baseline), same stats file format (msgs=, last=, sessions=, ...), and
 * the rig's run.sh finds it through the pid file. One process, epoll,
 * non-blocking OpenSSL; messages are counted and discarded.
 *
 *   oauth-sink -s PORT -p PORT -c CERT -k KEY -u USER -P PASS -B TOKEN -S STATS
 *
 * AUTH PLAIN takes USER/PASS; AUTH XOAUTH2 takes "user=USER^Aauth=Bearer
 * TOKEN^A^A" (RFC-less, as Google and Microsoft define it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

enum { LINE_MAX_BYTES = 1024, IN_SIZE = 16384, OUT_SIZE = 4096 };
enum kind { KIND_STARTTLS, KIND_PLAIN };
enum state { IN_COMMANDS, IN_DATA, IN_AUTH_PLAIN };

struct conn {
	int fd;
	enum kind kind;
	enum state state;
	SSL *ssl;
	bool handshaking, authed, closing;
	bool watching_writes;
	int end_match; /* how much of "\r\n.\r\n" the data has matched */
	size_t in_len, out_len, out_off;
	char in[IN_SIZE];
	char out[OUT_SIZE];
};

static struct {
	unsigned long long msgs, bytes, sessions, active, auth_ok, auth_fail, tls_handshakes;
	double last;
	bool changed;
} stats;

static struct {
	const char *user, *pass, *token, *stats_file;
	SSL_CTX *tls;
	int epoll;
} sink;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void write_stats(void)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", sink.stats_file);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "msgs=%llu bytes=%llu last=%.6f sessions=%llu active=%llu auth_ok=%llu auth_fail=%llu "
		   "tls_handshakes=%llu rejected=0\n",
		stats.msgs, stats.bytes, stats.last, stats.sessions, stats.active, stats.auth_ok, stats.auth_fail,
		stats.tls_handshakes);
	fclose(f);
	rename(tmp, sink.stats_file);
	stats.changed = false;
}

static void reply(struct conn *c, const char *text)
{
	size_t n = strlen(text);
	if (c->out_len + n > sizeof c->out) { /* a client that never reads: drop it */
		c->closing = true;
		return;
	}
	memcpy(c->out + c->out_len, text, n);
	c->out_len += n;
}

static void watch(struct conn *c, bool want_write)
{
	if (c->watching_writes == want_write)
		return;
	c->watching_writes = want_write;
	struct epoll_event ev = { .events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = c };
	epoll_ctl(sink.epoll, EPOLL_CTL_MOD, c->fd, &ev);
}

static void drop(struct conn *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	close(c->fd);
	stats.active--;
	stats.changed = true;
	free(c);
}

/* Decodes base64 TEXT into OUT (NUL-terminated); -1 when it is not base64. */
static int unbase64(const char *text, char *out, size_t size)
{
	size_t len = strlen(text);
	if (len == 0 || len % 4 || len / 4 * 3 >= size)
		return -1;
	int n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)text, (int)len);
	if (n < 0)
		return -1;
	n -= (len >= 1 && text[len - 1] == '=') + (len >= 2 && text[len - 2] == '=');
	out[n] = '\0';
	return n;
}

static bool plain_ok(const char *b64)
{
	char raw[LINE_MAX_BYTES];
	int n = unbase64(b64, raw, sizeof raw);
	if (n < 0)
		return false;
	const char *user = memchr(raw, '\0', (size_t)n);
	if (!user)
		return false;
	user++;
	const char *pass = user + strlen(user) + 1;
	return pass < raw + n && !strcmp(user, sink.user) && !strcmp(pass, sink.pass);
}

static bool xoauth2_ok(const char *b64)
{
	char raw[LINE_MAX_BYTES], want[LINE_MAX_BYTES];
	int n = unbase64(b64, raw, sizeof raw);
	snprintf(want, sizeof want, "auth=Bearer %s\001\001", sink.token);
	const char *auth = n > 0 && !strncmp(raw, "user=", 5) ? strchr(raw, '\001') : NULL;
	return auth && !strcmp(auth + 1, want);
}

static void authenticated(struct conn *c, bool ok)
{
	c->authed = ok;
	ok ? stats.auth_ok++ : stats.auth_fail++;
	stats.changed = true;
	reply(c, ok ? "235 2.7.0 Authentication successful\r\n" : "535 5.7.8 Authentication credentials invalid\r\n");
}

static void auth_command(struct conn *c, const char *args)
{
	if (c->kind == KIND_STARTTLS && !c->ssl)
		return reply(c, "530 5.7.0 Must issue a STARTTLS command first\r\n");
	if (!strncasecmp(args, "PLAIN ", 6))
		return authenticated(c, plain_ok(args + 6));
	if (!strcasecmp(args, "PLAIN")) {
		c->state = IN_AUTH_PLAIN;
		return reply(c, "334 \r\n");
	}
	if (!strncasecmp(args, "XOAUTH2 ", 8))
		return authenticated(c, xoauth2_ok(args + 8));
	reply(c, "504 5.5.4 Unrecognized authentication type\r\n");
}

static void ehlo(struct conn *c)
{
	reply(c, "250-sink\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n");
	if (c->kind == KIND_STARTTLS && !c->ssl)
		reply(c, "250-STARTTLS\r\n");
	if (c->ssl)
		reply(c, "250-AUTH PLAIN XOAUTH2\r\n");
	reply(c, "250 SMTPUTF8\r\n");
}

static void command(struct conn *c, char *line)
{
	bool may_send = c->authed || c->kind == KIND_PLAIN;
	if (c->state == IN_AUTH_PLAIN) {
		c->state = IN_COMMANDS;
		return authenticated(c, plain_ok(line));
	}
	if (!strncasecmp(line, "EHLO", 4))
		return ehlo(c);
	if (!strncasecmp(line, "STARTTLS", 8) && c->kind == KIND_STARTTLS && !c->ssl) {
		reply(c, "220 2.0.0 Ready to start TLS\r\n");
		c->handshaking = true; /* once the reply is out */
		return;
	}
	if (!strncasecmp(line, "AUTH ", 5))
		return auth_command(c, line + 5);
	if (!strncasecmp(line, "MAIL", 4))
		return reply(c, may_send ? "250 2.1.0 Ok\r\n" : "530 5.7.0 Authentication required\r\n");
	if (!strncasecmp(line, "RCPT", 4))
		return reply(c, may_send ? "250 2.1.5 Ok\r\n" : "530 5.7.0 Authentication required\r\n");
	if (!strncasecmp(line, "DATA", 4) && may_send) {
		c->state = IN_DATA;
		c->end_match = 2; /* the data starts just after a line end */
		return reply(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
	}
	if (!strncasecmp(line, "RSET", 4) || !strncasecmp(line, "NOOP", 4))
		return reply(c, "250 2.0.0 Ok\r\n");
	if (!strncasecmp(line, "QUIT", 4)) {
		reply(c, "221 2.0.0 Bye\r\n");
		c->closing = true;
		return;
	}
	reply(c, "502 5.5.2 Command not recognized\r\n");
}

/* Consumes message bytes; returns how many belong to the message (up to and
 * including the final CRLF.CRLF), so the rest are the next commands. */
static size_t data_bytes(struct conn *c, const char *p, size_t n)
{
	static const char end[] = "\r\n.\r\n";
	for (size_t i = 0; i < n; i++) {
		if (p[i] == end[c->end_match])
			c->end_match++;
		else
			c->end_match = p[i] == '\r' ? 1 : 0;
		if (c->end_match == 5) {
			c->state = IN_COMMANDS;
			stats.msgs++;
			stats.bytes += i + 1;
			stats.last = now();
			stats.changed = true;
			reply(c, "250 2.0.0 Ok: queued\r\n");
			return i + 1;
		}
	}
	stats.bytes += n;
	return n;
}

static void process_input(struct conn *c)
{
	size_t off = 0;
	while (off < c->in_len && !c->handshaking && !c->closing) {
		if (c->state == IN_DATA) {
			off += data_bytes(c, c->in + off, c->in_len - off);
			continue;
		}
		char *eol = memchr(c->in + off, '\n', c->in_len - off);
		if (!eol)
			break;
		*eol = '\0';
		if (eol > c->in + off && eol[-1] == '\r')
			eol[-1] = '\0';
		command(c, c->in + off);
		off = (size_t)(eol - c->in) + 1;
	}
	if (c->in_len - off >= LINE_MAX_BYTES && c->state != IN_DATA)
		c->closing = true; /* an endless line */
	if (c->handshaking)
		off = c->in_len; /* what was sent behind STARTTLS in clear is dropped (RFC 3207) */
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

/* Returns false when the connection is to go. */
static bool flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		size_t left = c->out_len - c->out_off;
		ssize_t n = c->ssl ? SSL_write(c->ssl, c->out + c->out_off, (int)left)
				   : write(c->fd, c->out + c->out_off, left);
		if (n <= 0) {
			bool again = c->ssl ? SSL_get_error(c->ssl, (int)n) == SSL_ERROR_WANT_WRITE : errno == EAGAIN;
			if (!again)
				return false;
			watch(c, true);
			return true;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	watch(c, false);
	if (c->handshaking && !c->ssl) {
		c->ssl = SSL_new(sink.tls);
		SSL_set_fd(c->ssl, c->fd);
		SSL_set_accept_state(c->ssl);
	}
	return !c->closing;
}

static bool handshake(struct conn *c)
{
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->handshaking = false;
		c->authed = false;
		stats.tls_handshakes++;
		stats.changed = true;
		return true;
	}
	int err = SSL_get_error(c->ssl, r);
	if (err == SSL_ERROR_WANT_WRITE)
		watch(c, true);
	return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
}

static bool readable(struct conn *c)
{
	for (;;) {
		if (c->handshaking && c->ssl) {
			if (!handshake(c))
				return false;
			if (c->handshaking)
				return true;
		}
		size_t room = sizeof c->in - c->in_len;
		ssize_t n = c->ssl ? SSL_read(c->ssl, c->in + c->in_len, (int)room) : read(c->fd, c->in + c->in_len, room);
		if (n <= 0) {
			bool again = c->ssl ? SSL_get_error(c->ssl, (int)n) == SSL_ERROR_WANT_READ : n < 0 && errno == EAGAIN;
			return again;
		}
		c->in_len += (size_t)n;
		process_input(c);
		if (!flush(c))
			return false;
	}
}

static void accept_all(int listener, enum kind kind)
{
	int fd;
	while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->fd = fd;
		c->kind = kind;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		epoll_ctl(sink.epoll, EPOLL_CTL_ADD, fd, &ev);
		stats.sessions++;
		stats.active++;
		stats.changed = true;
		reply(c, "220 sink ESMTP\r\n");
		if (!flush(c))
			drop(c);
	}
}

static int listen_on(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4096)) {
		fprintf(stderr, "oauth-sink: port %d: %s\n", port, strerror(errno));
		exit(1);
	}
	return fd;
}

/* Listeners are told apart from connections by these two addresses. */
static char starttls_tag, plain_tag;

static void serve(int starttls_fd, int plain_fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &starttls_tag }, events[256];
	epoll_ctl(sink.epoll, EPOLL_CTL_ADD, starttls_fd, &ev);
	ev.data.ptr = &plain_tag;
	epoll_ctl(sink.epoll, EPOLL_CTL_ADD, plain_fd, &ev);
	write_stats();
	while (!stopping) {
		int n = epoll_wait(sink.epoll, events, 256, 20);
		for (int i = 0; i < n; i++) {
			void *p = events[i].data.ptr;
			if (p == &starttls_tag || p == &plain_tag) {
				accept_all(p == &starttls_tag ? starttls_fd : plain_fd,
					   p == &starttls_tag ? KIND_STARTTLS : KIND_PLAIN);
				continue;
			}
			struct conn *c = p;
			bool alive = events[i].events & EPOLLOUT ? flush(c) : true;
			if (alive && events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				alive = readable(c);
			if (!alive)
				drop(c);
		}
		if (stats.changed)
			write_stats();
	}
}

int main(int argc, char **argv)
{
	int starttls_port = 0, plain_port = 0, opt;
	const char *cert = NULL, *key = NULL;
	while ((opt = getopt(argc, argv, "s:p:c:k:u:P:B:S:")) != -1) {
		switch (opt) {
		case 's': starttls_port = atoi(optarg); break;
		case 'p': plain_port = atoi(optarg); break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'u': sink.user = optarg; break;
		case 'P': sink.pass = optarg; break;
		case 'B': sink.token = optarg; break;
		case 'S': sink.stats_file = optarg; break;
		default: return 2;
		}
	}
	if (!starttls_port || !plain_port || !cert || !key || !sink.user || !sink.pass || !sink.token ||
	    !sink.stats_file) {
		fprintf(stderr, "usage: oauth-sink -s PORT -p PORT -c CERT -k KEY -u USER -P PASS -B TOKEN -S STATS\n");
		return 2;
	}
	sink.tls = SSL_CTX_new(TLS_server_method());
	if (SSL_CTX_use_certificate_chain_file(sink.tls, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sink.tls, key, SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	sink.epoll = epoll_create1(EPOLL_CLOEXEC);
	serve(listen_on(starttls_port), listen_on(plain_port));
	write_stats();
	return 0;
}

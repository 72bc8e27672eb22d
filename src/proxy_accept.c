/*
 * proxy_accept.c: see proxy_accept.h.
 */
#include "proxy_accept.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include "cfgval.h"
#include "log.h"
#include "proxy_proto.h"

/* One connection waiting for its header. */
struct pending {
	ev_io io;
	ev_timer timer;
	int fd;
	struct sockaddr_storage peer;
	char peer_text[64];
	size_t have;                          /* header bytes consumed so far */
	unsigned char buf[PROXY_HEADER_MAX];
	struct proxy_waits *pw;
	struct pending *prev, *next;
};

struct proxy_waits {
	struct ev_loop *loop;
	proxy_done_fn done;
	void *arg;
	struct pending *list;
	unsigned n;
};

static void log_closed(const char *peer, const char *reason)
{
	char quoted[160];

	log_warn("proxy closed peer=%s reason=%s", peer, log_quote(quoted, sizeof(quoted), reason));
}

/* Takes p out of the set and frees it; the socket is closed unless keep_fd. */
static void pending_end(struct pending *p, bool keep_fd)
{
	struct proxy_waits *pw = p->pw;

	ev_io_stop(pw->loop, &p->io);
	ev_timer_stop(pw->loop, &p->timer);
	if (!keep_fd)
		close(p->fd);
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		pw->list = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	pw->n--;
	free(p);
}

static void pending_fail(struct pending *p, const char *reason)
{
	log_closed(p->peer_text, reason);
	pending_end(p, false);
}

static void pending_done(struct pending *p, const struct proxy_header *h)
{
	struct proxy_waits *pw = p->pw;
	struct sockaddr_storage peer = p->peer;
	int fd = p->fd;

	pending_end(p, true);
	pw->done(pw->arg, fd, h->has_client ? (const struct sockaddr *)&h->client : (const struct sockaddr *)&peer,
	    (const struct sockaddr *)&peer);
}

/*
 * Peeks at what arrived and consumes only header bytes: all of them while
 * the header is incomplete (proxy_parse() says they belong to it), else
 * exactly up to its end.
 */
static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pending *p = w->data;
	struct proxy_header h;
	char reason[96];
	(void)loop;
	(void)revents;

	ssize_t n = recv(p->fd, p->buf + p->have, sizeof(p->buf) - p->have, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		snprintf(reason, sizeof(reason), "%s before the PROXY header", n == 0 ? "closed" : strerror(errno));
		pending_fail(p, reason);
		return;
	}
	enum proxy_status st = proxy_parse(p->buf, p->have + (size_t)n, &h);
	if (st == PROXY_BAD) {
		pending_fail(p, h.error);
		return;
	}
	size_t take = (st == PROXY_DONE ? h.len : p->have + (size_t)n) - p->have;
	if (recv(p->fd, p->buf + p->have, take, 0) != (ssize_t)take) {
		pending_fail(p, "short read of peeked bytes");
		return;
	}
	p->have += take;
	/* The parser refuses a header before it outgrows the buffer. */
	assert(st == PROXY_DONE || p->have < sizeof(p->buf));
	if (st == PROXY_DONE)
		pending_done(p, &h);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pending *p = w->data;
	char reason[64];
	(void)loop;
	(void)revents;

	snprintf(reason, sizeof(reason), "no PROXY header within %gs", p->timer.repeat);
	pending_fail(p, reason);
}

struct proxy_waits *proxy_waits_new(struct ev_loop *loop, proxy_done_fn done, void *arg)
{
	struct proxy_waits *pw = calloc(1, sizeof(*pw));

	if (pw == NULL) {
		log_error("out of memory");
		return NULL;
	}
	pw->loop = loop;
	pw->done = done;
	pw->arg = arg;
	return pw;
}

void proxy_accept(struct proxy_waits *pw, int fd, const struct sockaddr *peer, const struct relay_cfg *r)
{
	char peer_text[64];
	struct pending *p;

	sockaddr_format(peer_text, sizeof(peer_text), peer);
	if (!cidr_list_match(r->proxy_from, r->nproxy_from, peer)) {
		log_closed(peer_text, "not in proxy_from");
		close(fd);
		return;
	}
	if (pw->n >= r->max_clients || (p = calloc(1, sizeof(*p))) == NULL) {
		log_closed(peer_text, pw->n >= r->max_clients ? "too many connections waiting for a PROXY header"
		    : "out of memory");
		close(fd);
		return;
	}
	p->fd = fd;
	p->pw = pw;
	memcpy(&p->peer, peer, peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	memcpy(p->peer_text, peer_text, sizeof(peer_text));
	p->next = pw->list;
	if (p->next != NULL)
		p->next->prev = p;
	pw->list = p;
	pw->n++;
	ev_io_init(&p->io, on_readable, fd, EV_READ);
	p->io.data = p;
	ev_io_start(pw->loop, &p->io);
	ev_timer_init(&p->timer, on_timeout, 0, r->timeout < PROXY_HEADER_TIMEOUT ? r->timeout : PROXY_HEADER_TIMEOUT);
	p->timer.data = p;
	ev_timer_again(pw->loop, &p->timer);
}

void proxy_waits_free(struct proxy_waits *pw)
{
	if (pw == NULL)
		return;
	while (pw->list != NULL)
		pending_end(pw->list, false);
	free(pw);
}

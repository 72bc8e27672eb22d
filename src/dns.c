/*
 * dns: c-ares on the libev loop.
 *
 * c-ares owns the sockets and tells us, through the sock-state callback,
 * which fds it wants watched and for what; we keep one ev_io per such fd
 * and one ev_timer set from ares_timeout(). Every finished lookup (c-ares
 * answer, numeric host, error) is put on a "done" list and handed to the
 * caller from a zero-delay timer, so user callbacks never run inside
 * dns_lookup() nor inside c-ares (a callback may then call dns_lookup(),
 * dns_cancel() on another query, or even dns_free()).
 *
 * Ownership of a query: while c-ares holds it, the c-ares callback frees
 * it; once on the done list, deliver_cb() frees it. dns_cancel() only
 * marks it, because c-ares cannot cancel one query of a channel.
 */
#include "dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/*
 * Short on purpose: a relay with connect_timeout=5s gains nothing from
 * c-ares' defaults (5s, 4 tries, doubling: over a minute with one server).
 * With one server this gives up after about 2s + 4s.
 */
#define DNS_TIMEOUT_MS 2000
#define DNS_TRIES 2

struct dns_io {
	ev_io w;
	struct dns *dns;
	struct dns_io *next;
};

struct dns_query {
	struct dns *dns;
	dns_cb cb;
	void *arg;
	uint16_t port;
	bool cancelled;
	struct dns_result res;
	struct dns_query *next;   /* on the done list */
};

struct dns {
	struct ev_loop *loop;
	ares_channel channel;
	ev_timer timer;           /* c-ares timeouts */
	ev_timer deliver;         /* zero-delay: hands done queries to callers */
	struct dns_io *ios;
	struct dns_query *done_head, **done_tail;
	bool *freed;              /* set while deliver_cb() runs user callbacks */
};

static void query_free(struct dns_query *q)
{
	free(q->res.addrs);
	free(q);
}

/* Queues a finished query for delivery on the next loop iteration. */
static void query_done(struct dns_query *q)
{
	struct dns *dns = q->dns;

	q->next = NULL;
	*dns->done_tail = q;
	dns->done_tail = &q->next;
	if (!ev_is_active(&dns->deliver)) {
		ev_timer_set(&dns->deliver, 0., 0.);
		ev_timer_start(dns->loop, &dns->deliver);
	}
}

static void query_fail(struct dns_query *q, const char *error)
{
	q->res.error = error;
	query_done(q);
}

static void deliver_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dns *dns = w->data;
	struct dns_query *q, *list = dns->done_head;
	bool freed = false;

	(void)loop;
	(void)revents;
	/* Take the whole list: what callbacks queue now waits for next time. */
	dns->done_head = NULL;
	dns->done_tail = &dns->done_head;
	dns->freed = &freed;
	while ((q = list) != NULL) {
		list = q->next;
		if (!q->cancelled && !freed)
			q->cb(&q->res, q->arg);
		query_free(q);
	}
	if (!freed)
		dns->freed = NULL;
}

/* Re-arms the timeout timer from c-ares' idea of the next deadline. */
static void timer_update(struct dns *dns)
{
	struct timeval tv;

	ev_timer_stop(dns->loop, &dns->timer);
	if (ares_timeout(dns->channel, NULL, &tv) == NULL)
		return;
	ev_timer_set(&dns->timer, (double)tv.tv_sec + tv.tv_usec / 1e6, 0.);
	ev_timer_start(dns->loop, &dns->timer);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dns *dns = w->data;

	(void)loop;
	(void)revents;
	ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	timer_update(dns);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dns_io *io = (struct dns_io *)w;
	struct dns *dns = io->dns;
	int fd = w->fd;

	(void)loop;
	/* io may be freed by sock_state_cb() inside ares_process_fd(). */
	ares_process_fd(dns->channel, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	timer_update(dns);
}

static struct dns_io **io_find(struct dns *dns, int fd)
{
	struct dns_io **pp;

	for (pp = &dns->ios; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->w.fd == fd)
			break;
	return pp;
}

static void io_close(struct dns *dns, struct dns_io **pp)
{
	struct dns_io *io = *pp;

	ev_io_stop(dns->loop, &io->w);
	*pp = io->next;
	free(io);
}

static struct dns_io *io_open(struct dns *dns, int fd, int events)
{
	struct dns_io *io = calloc(1, sizeof(*io));

	if (io == NULL)
		return NULL;
	io->dns = dns;
	ev_io_init(&io->w, io_cb, fd, events);
	io->next = dns->ios;
	dns->ios = io;
	return io;
}

/* c-ares: "watch fd for these events", or "forget fd" when both are 0. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *dns = data;
	struct dns_io **pp = io_find(dns, fd);
	struct dns_io *io = *pp;
	int events = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);

	if (events == 0) {
		if (io != NULL)
			io_close(dns, pp);
		return;
	}
	if (io != NULL) {
		ev_io_stop(dns->loop, &io->w);
		ev_io_set(&io->w, fd, events);
	} else if ((io = io_open(dns, fd, events)) == NULL) {
		/* The query on this socket will time out through the timer. */
		log_error("dns: out of memory watching fd=%d", (int)fd);
		return;
	}
	ev_io_start(dns->loop, &io->w);
}

static const char *ares_reason(int status)
{
	switch (status) {
	case ARES_ENOTFOUND:
	case ARES_ENONAME:
		return "host not found";
	case ARES_ENODATA:
		return "no address for host";
	case ARES_ETIMEOUT:
		return "DNS timeout";
	case ARES_ECONNREFUSED:
		return "DNS server unreachable";
	case ARES_ESERVFAIL:
		return "DNS server failure";
	case ARES_EREFUSED:
		return "DNS query refused";
	case ARES_ENOMEM:
		return "out of memory";
	default:
		return ares_strerror(status);
	}
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* Appends addr with the query's port, unless it is already there. */
static void add_addr(struct dns_result *res, const struct sockaddr *sa, uint16_t port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (sa->sa_family == AF_INET) {
		memcpy(&ss, sa, sizeof(struct sockaddr_in));
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	} else {
		memcpy(&ss, sa, sizeof(struct sockaddr_in6));
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	}
	for (unsigned i = 0; i < res->naddrs; i++)
		if (same_addr(&res->addrs[i], &ss))
			return;
	res->addrs[res->naddrs++] = ss;
}

static const struct ares_addrinfo_node *next_of_family(const struct ares_addrinfo_node *n, int family)
{
	for (; n != NULL; n = n->ai_next)
		if (n->ai_family == family)
			return n;
	return NULL;
}

/*
 * RFC 8305 section 4: keep c-ares' (RFC 6724) order within each family,
 * start with the family of the first answer and alternate.
 */
static bool fill_interleaved(struct dns_query *q, const struct ares_addrinfo_node *nodes)
{
	const struct ares_addrinfo_node *n, *cur[2];
	unsigned count = 0, turn = 0;

	for (n = nodes; n != NULL; n = n->ai_next)
		if (n->ai_family == AF_INET || n->ai_family == AF_INET6)
			count++;
	if (count == 0)
		return true;
	q->res.addrs = calloc(count, sizeof(*q->res.addrs));
	if (q->res.addrs == NULL)
		return false;
	cur[0] = next_of_family(nodes, AF_INET6);
	cur[1] = next_of_family(nodes, AF_INET);
	if (cur[1] == nodes)
		turn = 1;
	while (cur[0] != NULL || cur[1] != NULL) {
		if (cur[turn] != NULL) {
			n = cur[turn];
			add_addr(&q->res, n->ai_addr, q->port);
			cur[turn] = next_of_family(n->ai_next, n->ai_family);
		}
		turn ^= 1;
	}
	return true;
}

static void ares_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct dns_query *q = arg;

	(void)timeouts;
	/* Cancelled, or dns_free() tearing the channel down: nobody to tell. */
	if (q->cancelled || status == ARES_EDESTRUCTION) {
		ares_freeaddrinfo(ai);
		query_free(q);
		return;
	}
	if (status != ARES_SUCCESS)
		q->res.error = ares_reason(status);
	else if (ai == NULL || !fill_interleaved(q, ai->nodes))
		q->res.error = ai == NULL ? "no address for host" : "out of memory";
	else if (q->res.naddrs == 0)
		q->res.error = "no address for host";
	ares_freeaddrinfo(ai);
	query_done(q);
}

/* Answers "192.0.2.1" or "2001:db8::1" without a query. */
static bool lookup_numeric(struct dns_query *q, const char *host)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	const struct sockaddr *sa;

	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sa = (const struct sockaddr *)&sin;
	} else if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sa = (const struct sockaddr *)&sin6;
	} else {
		return false;
	}
	q->res.addrs = calloc(1, sizeof(*q->res.addrs));
	if (q->res.addrs == NULL) {
		query_fail(q, "out of memory");
		return true;
	}
	add_addr(&q->res, sa, q->port);
	query_done(q);
	return true;
}

struct dns_query *dns_lookup(struct dns *dns, const char *host, uint16_t port, dns_cb cb, void *arg)
{
	struct ares_addrinfo_hints hints;
	struct dns_query *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->dns = dns;
	q->cb = cb;
	q->arg = arg;
	q->port = port;
	if (host == NULL || *host == '\0') {
		query_fail(q, "empty host name");
		return q;
	}
	if (lookup_numeric(q, host))
		return q;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/* CARES_HOSTS=FILE replaces /etc/hosts: lets tests give a name
	 * several v4 and v6 addresses without a DNS server. */
	hints.ai_flags = ARES_AI_ENVHOSTS;
	/* May call ares_cb() before returning (hosts file): it only queues. */
	ares_getaddrinfo(dns->channel, host, NULL, &hints, ares_cb, q);
	timer_update(dns);
	return q;
}

void dns_cancel(struct dns_query *q)
{
	if (q != NULL)
		q->cancelled = true;
}

struct dns *dns_new(struct ev_loop *loop)
{
	struct ares_options opts;
	struct dns *dns;
	int rc;

	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		log_error("dns: c-ares init failed: %s", ares_strerror(rc));
		return NULL;
	}
	dns = calloc(1, sizeof(*dns));
	if (dns == NULL) {
		ares_library_cleanup();
		return NULL;
	}
	dns->loop = loop;
	dns->done_tail = &dns->done_head;
	ev_timer_init(&dns->timer, timer_cb, 0., 0.);
	dns->timer.data = dns;
	ev_timer_init(&dns->deliver, deliver_cb, 0., 0.);
	dns->deliver.data = dns;

	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = sock_state_cb;
	opts.sock_state_cb_data = dns;
	opts.timeout = DNS_TIMEOUT_MS;
	opts.tries = DNS_TRIES;
	rc = ares_init_options(&dns->channel, &opts,
	    ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		log_error("dns: c-ares channel failed: %s", ares_strerror(rc));
		free(dns);
		ares_library_cleanup();
		return NULL;
	}
	return dns;
}

void dns_free(struct dns *dns)
{
	struct dns_query *q;

	if (dns == NULL)
		return;
	/* Fails pending queries with ARES_EDESTRUCTION (ares_cb frees them)
	 * and closes sockets through sock_state_cb. */
	ares_destroy(dns->channel);
	while (dns->ios != NULL)
		io_close(dns, &dns->ios);
	while ((q = dns->done_head) != NULL) {
		dns->done_head = q->next;
		query_free(q);
	}
	ev_timer_stop(dns->loop, &dns->timer);
	ev_timer_stop(dns->loop, &dns->deliver);
	/* Called from a callback: deliver_cb() must stop touching dns. */
	if (dns->freed != NULL)
		*dns->freed = true;
	free(dns);
	ares_library_cleanup();
}

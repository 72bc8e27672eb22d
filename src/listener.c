/*
 * listener.c: see listener.h.
 */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "metrics.h"
#include "peer_count.h"
#include "proxy_accept.h"

/* Large enough that a burst of clients never sees dropped SYNs. */
#define LISTEN_BACKLOG 511
/* After EMFILE, wait this long before accepting again. */
#define ACCEPT_PAUSE 0.5

struct listener {
	ev_io watcher;
	int fd;
	bool proxy;                  /* LISTEN_PROXY: a PROXY header comes first */
	bool implicit_tls;           /* LISTEN_IMPLICIT: TLS from the first byte */
	struct listeners *set;
};

struct listeners {
	struct server_env *env;
	struct listener *items;
	unsigned n;
	ev_timer resume;
	struct proxy_waits *proxies; /* connections of /proxy listeners before their session */
};

/* max_clients is for the whole daemon: with workers, every worker's
 * sessions (each publishes its count in shared memory as it changes). */
static unsigned clients_alive(const struct server_env *env)
{
	return env->nworkers > 1 ? metrics_workers_sum(env->nworkers).sessions : env->nclients;
}

/* max_clients_per_ip: sessions from one address in the whole daemon
 * (this worker's, exact, and the others', peer_count.h); loopback
 * clients, the applications beside the daemon, are not capped. */
static bool peer_over_cap(const struct server_env *env, const struct relay_cfg *r, const struct sockaddr *sa)
{
	struct peer_key key;
	return r->max_clients_per_ip > 0 && peer_key_of(sa, &key) && !peer_key_is_loopback(&key) &&
	    peer_count_get(env->per_ip, &key) + peer_count_others(&key) >= r->max_clients_per_ip;
}

static void pause_accepting(struct listeners *ls)
{
	for (unsigned i = 0; i < ls->n; i++)
		ev_io_stop(ls->env->loop, &ls->items[i].watcher);
	ev_timer_set(&ls->resume, ACCEPT_PAUSE, 0);
	ev_timer_start(ls->env->loop, &ls->resume);
}

static void on_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct listeners *ls = w->data;
	(void)revents;
	for (unsigned i = 0; i < ls->n; i++)
		ev_io_start(loop, &ls->items[i].watcher);
}

/* Starts the session of client (proxy: the /proxy listener's peer, or
 * NULL); the allow list and max_clients may make it only a refusal. */
static void admit(struct server_env *env, int fd, const struct sockaddr *client, const struct sockaddr *proxy,
    bool implicit_tls)
{
	const struct relay_cfg *r = &env->rt->path.cfg->relay;
	/* Outside allow, a client may still authenticate when there are users. */
	struct session_opts o = { .trusted = cidr_list_match(r->allow, r->nallow, client),
		.implicit_tls = implicit_tls, .proxy = proxy };

	if (!o.trusted && r->users == NULL)
		o.reject = "554 5.7.1 Relaying from your address is not allowed";
	else if (clients_alive(env) >= r->max_clients)
		o.reject = "421 4.7.0 Too many connections, try again later";
	else if (peer_over_cap(env, r, client))
		o.reject = "421 4.7.0 Too many connections from your address, try again later";
	server_session_start(env, fd, client, &o);
}

static void on_proxy_header(void *arg, int fd, const struct sockaddr *client, const struct sockaddr *proxy)
{
	struct listeners *ls = arg;

	admit(ls->env, fd, client, proxy, false); /* /proxy with /implicit is refused by config.c */
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;
	struct server_env *env = l->set->env;
	const struct relay_cfg *r = &env->rt->path.cfg->relay;
	(void)loop;
	(void)revents;

	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				log_error("accept: %s; pausing new connections for %gs", strerror(errno), ACCEPT_PAUSE);
				pause_accepting(l->set);
			}
			return;
		}
		if (l->proxy)
			proxy_accept(l->set->proxies, fd, (struct sockaddr *)&ss, r);
		else
			admit(env, fd, (struct sockaddr *)&ss, NULL, l->implicit_tls);
	}
}

/* reuseport: one of several sockets on the same address, one per worker. */
static int bind_one(const struct sockaddr_any *a, bool reuseport, struct sockaddr_any *bound)
{
	int one = 1;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if ((reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	bound->len = sizeof(bound->ss);
	getsockname(fd, (struct sockaddr *)&bound->ss, &bound->len);
	return fd;
}

/* False (fd not taken) when out of memory. */
static bool add_listener(struct listeners *ls, int fd, unsigned flags)
{
	bool proxy = (flags & LISTEN_PROXY) != 0;

	if (proxy && ls->proxies == NULL && (ls->proxies = proxy_waits_new(ls->env->loop, on_proxy_header, ls)) == NULL)
		return false;
	struct listener *l = &ls->items[ls->n++];
	l->fd = fd;
	l->implicit_tls = (flags & LISTEN_IMPLICIT) != 0;
	l->set = ls;
	l->proxy = proxy;
	ev_io_init(&l->watcher, on_accept, fd, EV_READ);
	l->watcher.data = l;
	ev_io_start(ls->env->loop, &l->watcher);
	return true;
}

/* systemd socket activation: the passed sockets replace relay.listen. */
static int activated_sockets(void)
{
	int n = sd_listen_fds(1);
	if (n < 0)
		log_error("socket activation: %s", strerror(-n));
	return n > 0 ? n : 0;
}

static struct listeners *listeners_new(struct server_env *env, unsigned n)
{
	struct listeners *ls = calloc(1, sizeof(*ls));

	if (ls == NULL || (ls->items = calloc(n ? n : 1, sizeof(*ls->items))) == NULL) {
		free(ls);
		log_error("out of memory");
		return NULL;
	}
	ls->env = env;
	ev_init(&ls->resume, on_resume);
	ls->resume.data = ls;
	return ls;
}

/* A passed socket takes the options of the relay.listen address it is bound to. */
static unsigned activated_flags(const struct relay_cfg *r, const struct sockaddr_any *bound)
{
	for (unsigned i = 0; i < r->nlisten; i++)
		if (r->listen[i].sa.len == bound->len && memcmp(&r->listen[i].sa.ss, &bound->ss, bound->len) == 0)
			return r->listen[i].flags;
	return 0;
}

static void log_listening(const char *addr, unsigned flags)
{
	log_info("listening address=%s%s%s", addr, flags & LISTEN_PROXY ? " proxy=yes" : "",
	    flags & LISTEN_IMPLICIT ? " tls=implicit" : "");
}

bool listen_fds_bind(const struct relay_cfg *r, unsigned nworkers, struct listen_fds *out)
{
	int activated = activated_sockets();

	out->naddr = activated > 0 ? (unsigned)activated : r->nlisten;
	out->per = activated > 0 ? 1 : nworkers;
	out->fd = malloc((size_t)out->naddr * out->per * sizeof(*out->fd) + 1);
	out->flags = calloc(out->naddr + 1, sizeof(*out->flags));
	if (out->fd == NULL || out->flags == NULL) {
		log_error("out of memory");
		free(out->fd);
		free(out->flags);
		out->fd = NULL;
		out->flags = NULL;
		return false;
	}
	for (unsigned i = 0; i < out->naddr * out->per; i++)
		out->fd[i] = -1;
	for (int i = 0; i < activated; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		struct sockaddr_any bound = { .len = sizeof(bound.ss) };
		char text[64] = "?";
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		out->fd[i] = fd;
		if (getsockname(fd, (struct sockaddr *)&bound.ss, &bound.len) == 0) {
			sockaddr_format(text, sizeof(text), (struct sockaddr *)&bound.ss);
			out->flags[i] = activated_flags(r, &bound);
		}
		log_listening(text, out->flags[i]);
	}
	for (unsigned i = 0; activated == 0 && i < r->nlisten; i++) {
		struct sockaddr_any first, bound;
		char want[64];
		sockaddr_format(want, sizeof(want), (const struct sockaddr *)&r->listen[i].sa.ss);
		/* The first socket turns port 0 into a real port; the others join
		 * it. A single one takes no SO_REUSEPORT: a second daemon on the
		 * same address must fail, not share it. */
		for (unsigned k = 0; k < nworkers; k++) {
			int fd = bind_one(k == 0 ? &r->listen[i].sa : &first, nworkers > 1, &bound);
			if (fd < 0) {
				log_error("cannot listen on %s: %s", want, strerror(errno));
				listen_fds_close(out);
				return false;
			}
			if (k == 0)
				first = bound;
			out->fd[i * nworkers + k] = fd;
		}
		char text[64];
		sockaddr_format(text, sizeof(text), (const struct sockaddr *)&first.ss);
		out->flags[i] = r->listen[i].flags;
		log_listening(text, out->flags[i]);
	}
	return true;
}

static int listen_fds_get(const struct listen_fds *lf, unsigned addr, unsigned worker)
{
	return lf->fd[addr * lf->per + (lf->per > 1 ? worker : 0)];
}

void listen_fds_close(struct listen_fds *lf)
{
	for (unsigned i = 0; lf->fd != NULL && i < lf->naddr * lf->per; i++)
		if (lf->fd[i] >= 0)
			close(lf->fd[i]);
	free(lf->fd);
	free(lf->flags);
	lf->fd = NULL;
	lf->flags = NULL;
	lf->naddr = lf->per = 0;
}

struct listeners *listeners_serve(struct server_env *env, const struct listen_fds *lf, unsigned worker)
{
	struct listeners *ls = listeners_new(env, lf->naddr);

	if (ls == NULL)
		return NULL;
	for (unsigned i = 0; i < lf->naddr; i++) {
		int fd = fcntl(listen_fds_get(lf, i, worker), F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			log_error("listener: %s", strerror(errno));
			listeners_close(ls);
			return NULL;
		}
		if (!add_listener(ls, fd, lf->flags[i])) {
			close(fd);
			listeners_close(ls);
			return NULL;
		}
	}
	return ls;
}

static void listeners_stop(struct listeners *ls)
{
	ev_timer_stop(ls->env->loop, &ls->resume);
	for (unsigned i = 0; i < ls->n; i++)
		ev_io_stop(ls->env->loop, &ls->items[i].watcher);
}

void listeners_close(struct listeners *ls)
{
	if (ls == NULL)
		return;
	listeners_stop(ls);
	for (unsigned i = 0; i < ls->n; i++)
		close(ls->items[i].fd);
	proxy_waits_free(ls->proxies);
	free(ls->items);
	free(ls);
}

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

/* Large enough that a burst of clients never sees dropped SYNs. */
#define LISTEN_BACKLOG 511
/* After EMFILE, wait this long before accepting again. */
#define ACCEPT_PAUSE 0.5

struct listener {
	ev_io watcher;
	int fd;
	bool implicit_tls;
	struct listeners *set;
};

struct listeners {
	struct server_env *env;
	struct listener *items;
	unsigned n;
	ev_timer resume;
};

static bool peer_allowed(const struct relay_cfg *r, const struct sockaddr *sa)
{
	for (unsigned i = 0; i < r->nallow; i++)
		if (cidr_match(&r->allow[i], sa))
			return true;
	return false;
}

/* max_clients is for the whole daemon: with workers, every worker's
 * sessions (each publishes its count in shared memory as it changes). */
static unsigned clients_alive(const struct server_env *env)
{
	return env->nworkers > 1 ? metrics_workers_sum(env->nworkers).sessions : env->nclients;
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
		/* Outside allow, a client may still authenticate when there are users. */
		struct session_opts o = { .trusted = peer_allowed(r, (struct sockaddr *)&ss),
			.implicit_tls = l->implicit_tls };
		if (!o.trusted && r->users == NULL)
			o.reject = "554 5.7.1 Relaying from your address is not allowed";
		else if (clients_alive(env) >= r->max_clients)
			o.reject = "421 4.7.0 Too many connections, try again later";
		server_session_start(env, fd, (struct sockaddr *)&ss, &o);
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

static void add_listener(struct listeners *ls, int fd, bool implicit_tls)
{
	struct listener *l = &ls->items[ls->n++];

	l->fd = fd;
	l->implicit_tls = implicit_tls;
	l->set = ls;
	ev_io_init(&l->watcher, on_accept, fd, EV_READ);
	l->watcher.data = l;
	ev_io_start(ls->env->loop, &l->watcher);
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

bool listen_fds_bind(const struct relay_cfg *r, unsigned nworkers, struct listen_fds *out)
{
	int activated = activated_sockets();

	out->naddr = activated > 0 ? (unsigned)activated : r->nlisten;
	out->per = activated > 0 ? 1 : nworkers;
	out->fd = malloc((size_t)out->naddr * out->per * sizeof(*out->fd) + 1);
	out->implicit_tls = calloc(out->naddr + 1, sizeof(*out->implicit_tls));
	if (out->fd == NULL || out->implicit_tls == NULL) {
		log_error("out of memory");
		free(out->fd);
		free(out->implicit_tls);
		out->fd = NULL;
		out->implicit_tls = NULL;
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
		if (getsockname(fd, (struct sockaddr *)&bound.ss, &bound.len) == 0)
			sockaddr_format(text, sizeof(text), (struct sockaddr *)&bound.ss);
		log_info("listening address=%s", text);
	}
	for (unsigned i = 0; activated == 0 && i < r->nlisten; i++) {
		struct sockaddr_any first, bound;
		char want[64];
		sockaddr_format(want, sizeof(want), (const struct sockaddr *)&r->listen[i].addr.ss);
		out->implicit_tls[i] = r->listen[i].implicit_tls;
		/* The first socket turns port 0 into a real port; the others join
		 * it. A single one takes no SO_REUSEPORT: a second daemon on the
		 * same address must fail, not share it. */
		for (unsigned k = 0; k < nworkers; k++) {
			int fd = bind_one(k == 0 ? &r->listen[i].addr : &first, nworkers > 1, &bound);
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
		log_info("listening address=%s%s", text, r->listen[i].implicit_tls ? " tls=implicit" : "");
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
	free(lf->implicit_tls);
	lf->fd = NULL;
	lf->implicit_tls = NULL;
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
		add_listener(ls, fd, lf->implicit_tls[i]);
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
	free(ls->items);
	free(ls);
}

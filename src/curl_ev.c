/*
 * curl_ev.c: see curl_ev.h. The pattern of curl's hiperfifo example, on
 * libev.
 */
#include "curl_ev.h"

#include <stdlib.h>

struct curl_ev {
	struct ev_loop *loop;
	CURLM *multi;
	ev_timer timer;
	curl_ev_done_fn done;
	struct curl_sock *socks;   /* watched sockets, freed at the latest with us */
	int depth;                 /* >0 while inside curl or `done` */
	bool dying;                /* curl_ev_free() called meanwhile */
};

/* One socket curl wants watched. */
struct curl_sock {
	ev_io io;
	struct curl_ev *c;
	struct curl_sock *next, **pprev;
};

static void sock_free(struct curl_sock *s)
{
	ev_io_stop(s->c->loop, &s->io);
	*s->pprev = s->next;
	if (s->next != NULL)
		s->next->pprev = s->pprev;
	free(s);
}

static void destroy(struct curl_ev *c)
{
	curl_multi_cleanup(c->multi);
	while (c->socks != NULL)
		sock_free(c->socks);
	ev_timer_stop(c->loop, &c->timer);
	free(c);
}

static void leave(struct curl_ev *c)
{
	if (--c->depth == 0 && c->dying)
		destroy(c);
}

/* Reports finished transfers; stops early when `done` freed us. */
static void report_done(struct curl_ev *c)
{
	CURLMsg *msg;
	int left;

	while (!c->dying && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *easy = msg->easy_handle;
		CURLcode result = msg->data.result;
		void *arg = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&arg);
		curl_multi_remove_handle(c->multi, easy);
		c->done(easy, result, arg);
	}
}

static void action(struct curl_ev *c, curl_socket_t fd, int flags)
{
	int running;

	c->depth++;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	report_done(c);
	leave(c);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct curl_sock *s = w->data;
	(void)loop;

	action(s->c, w->fd, (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0));
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	action(w->data, CURL_SOCKET_TIMEOUT, 0);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct curl_ev *c = userp;
	struct curl_sock *s = socketp;
	(void)easy;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			sock_free(s);
		return 0;
	}
	int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return -1; /* curl fails the transfer */
		s->c = c;
		ev_io_init(&s->io, on_io, fd, events);
		s->io.data = s;
		s->next = c->socks;
		s->pprev = &c->socks;
		if (c->socks != NULL)
			c->socks->pprev = &s->next;
		c->socks = s;
		curl_multi_assign(c->multi, fd, s);
	} else {
		ev_io_stop(c->loop, &s->io);
		ev_io_set(&s->io, fd, events);
	}
	ev_io_start(c->loop, &s->io);
	return 0;
}

/* curl asks to be called back after ms (-1: never); 0 runs at the next
 * loop iteration, never from inside this callback. */
static int on_timer_set(CURLM *multi, long ms, void *userp)
{
	struct curl_ev *c = userp;
	(void)multi;

	ev_timer_stop(c->loop, &c->timer);
	if (ms >= 0) {
		ev_timer_set(&c->timer, (double)ms / 1000.0, 0.);
		ev_timer_start(c->loop, &c->timer);
	}
	return 0;
}

struct curl_ev *curl_ev_new(struct ev_loop *loop, curl_ev_done_fn done)
{
	static bool global_done;
	struct curl_ev *c;

	/* Once per process, on the loop's thread, before any handle. */
	if (!global_done && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	global_done = true;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->multi = curl_multi_init()) == NULL) {
		free(c);
		return NULL;
	}
	c->loop = loop;
	c->done = done;
	ev_init(&c->timer, on_timer);
	c->timer.data = c;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
}

void curl_ev_free(struct curl_ev *c)
{
	if (c == NULL || c->dying)
		return;
	c->dying = true;
	if (c->depth == 0)
		destroy(c);
}

bool curl_ev_add(struct curl_ev *c, CURL *easy, void *arg)
{
	curl_easy_setopt(easy, CURLOPT_PRIVATE, arg);
	return curl_multi_add_handle(c->multi, easy) == CURLM_OK;
}

void curl_ev_remove(struct curl_ev *c, CURL *easy)
{
	curl_multi_remove_handle(c->multi, easy);
}

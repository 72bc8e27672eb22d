/*
 * gate.c: see gate.h.
 */
#include "gate.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

#define GATE_PAUSE 0.5 /* seconds after EMFILE and friends */

static void resume_if_room(struct gate *g)
{
	if (g->fd >= 0 && g->nconns < g->max && !ev_is_active(&g->resume))
		ev_io_start(g->loop, &g->w);
}

static void on_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	resume_if_room(w->data);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gate *g = w->data;
	(void)revents;

	for (;;) {
		if (g->nconns >= g->max) {
			ev_io_stop(loop, &g->w);
			return;
		}
		int fd = accept4(g->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				log_error("%s accept: %s; pausing for %gs", g->what, strerror(errno), GATE_PAUSE);
				ev_io_stop(loop, &g->w);
				ev_timer_set(&g->resume, GATE_PAUSE, 0);
				ev_timer_start(loop, &g->resume);
			}
			return;
		}
		g->nconns++;
		g->conn(fd, g->arg);
	}
}

void gate_start(struct gate *g, struct ev_loop *loop, int fd, unsigned max, const char *what, gate_conn_fn conn,
    void *arg)
{
	*g = (struct gate){ .loop = loop, .fd = fd, .max = max, .what = what, .conn = conn, .arg = arg };
	ev_io_init(&g->w, on_accept, fd, EV_READ);
	g->w.data = g;
	ev_timer_init(&g->resume, on_resume, GATE_PAUSE, 0);
	g->resume.data = g;
	ev_io_start(loop, &g->w);
}

void gate_closed(struct gate *g)
{
	if (g->nconns > 0)
		g->nconns--;
	resume_if_room(g);
}

void gate_stop(struct gate *g)
{
	ev_io_stop(g->loop, &g->w);
	ev_timer_stop(g->loop, &g->resume);
	g->fd = -1;
}

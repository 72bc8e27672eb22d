/*
 * test_control: control.c on a real libev loop with stub callbacks. The
 * client runs in the same loop (non-blocking connect, ev watchers), so
 * every check stays in this process; the built subrelayctl is run too
 * when it can be found ($SUBRELAYCTL, else next to the test binary's
 * build tree, else ./subrelayctl).
 *
 * Takes about 5 s: one check waits for the request timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <ev.h>

#include "check.h"
#include "control.h"

/* ---- stub callbacks ---- */

static char last_id[600];
static bool flush_called, flush_null;
static bool reload_fails;
static struct control *close_on_reload;

static void st_status(FILE *out, void *arg)
{
	(void)arg;
	fputs("state=running\nsessions=2\n", out);
}

static void st_queue(FILE *out, void *arg)
{
	(void)arg;
	fputs("AAAA a@example.com 1 attempt\nBBBB b@example.com 3 attempts\n", out);
}

static bool st_show(const char *id, FILE *out, void *arg)
{
	(void)arg;
	snprintf(last_id, sizeof(last_id), "%s", id);
	if (strcmp(id, "AAAA") != 0) {
		fputs("partial output that must not be sent\n", out);
		return false;
	}
	fputs("id=AAAA\nfrom=a@example.com", out); /* no final newline: the module adds it */
	return true;
}

static int st_flush(const char *id, void *arg)
{
	(void)arg;
	flush_called = true;
	flush_null = id == NULL;
	if (id == NULL)
		return 3;
	return strcmp(id, "AAAA") == 0 ? 1 : -1;
}

static bool st_remove(const char *id, void *arg)
{
	(void)arg;
	snprintf(last_id, sizeof(last_id), "%s", id);
	return strcmp(id, "AAAA") == 0;
}

static bool st_reload(char *err, size_t errlen, void *arg)
{
	(void)arg;
	if (close_on_reload != NULL) {
		control_close(close_on_reload);
		close_on_reload = NULL;
	}
	if (reload_fails) {
		snprintf(err, errlen, "x.ini:3: unknown key foo\nx.ini:4: bad size\n");
		return false;
	}
	return true;
}

static void st_stats(FILE *out, void *arg)
{
	(void)arg;
	fputs("messages_total 5", out);
}

static void st_failed(FILE *out, void *arg)
{
	(void)arg;
	fputs("CCCC c@example.com 550 no such user\n", out);
}

static int st_requeue(const char *id, unsigned *left, void *arg)
{
	(void)arg;
	snprintf(last_id, sizeof(last_id), "%s", id != NULL ? id : "(all)");
	*left = id == NULL ? 2 : 0;
	if (id == NULL)
		return 1000;
	return strcmp(id, "CCCC") == 0 ? 1 : -1;
}

static bool health_ready;

static bool st_health(FILE *out, void *arg)
{
	(void)arg;
	fputs(health_ready ? "ready\n" : "not ready\nprovider p: not checked yet\n", out);
	return health_ready;
}

static const struct control_ops ops = {
	.status = st_status, .queue_list = st_queue, .show = st_show, .flush = st_flush,
	.remove = st_remove, .reload = st_reload, .stats = st_stats, .failed_list = st_failed,
	.requeue = st_requeue, .health = st_health,
};

/* The daemon's two steps: the startup binds, a worker serves. NULL with
 * the reason in err. */
static struct control *open_ctl(struct ev_loop *loop, const char *path, const struct control_ops *o,
    struct control_socket *cs, char *err, size_t errlen)
{
	if (!control_bind(path, cs, err, errlen))
		return NULL;
	struct control *c = control_serve(loop, cs, o, NULL);
	CHECK(c == NULL || cs->fd == -1); /* the descriptor is the control's now */
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		control_socket_remove(path, cs);
	}
	return c;
}

/* The worker stops serving, then the startup removes the file at exit. */
static void close_ctl(struct control *c, const char *path, struct control_socket *cs)
{
	control_close(c);
	control_socket_remove(path, cs);
}

/* ---- a client in the loop ---- */

struct client {
	int fd;
	ev_io w;
	ev_timer guard;
	const char *send;
	size_t sendlen, sent;
	bool shut_after_send;
	char reply[65536];
	size_t len;
	bool eof, timed_out;
};

static void fill_sun(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) < sizeof(sun->sun_path))
		memcpy(sun->sun_path, path, strlen(path) + 1);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	fill_sun(&sun, path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void client_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *cl = w->data;

	if ((revents & EV_WRITE) && cl->sent < cl->sendlen) {
		ssize_t n = send(cl->fd, cl->send + cl->sent, cl->sendlen - cl->sent, MSG_NOSIGNAL);
		if (n > 0)
			cl->sent += (size_t)n;
		else if (n < 0 && errno != EAGAIN)
			cl->sent = cl->sendlen; /* the server closed first: read what it said */
		if (cl->sent == cl->sendlen) {
			if (cl->shut_after_send)
				shutdown(cl->fd, SHUT_WR);
			ev_io_stop(loop, w);
			ev_io_set(w, cl->fd, EV_READ);
			ev_io_start(loop, w);
		}
		return;
	}
	if (revents & EV_READ) {
		ssize_t n = recv(cl->fd, cl->reply + cl->len, sizeof(cl->reply) - 1 - cl->len, 0);
		if (n > 0) {
			cl->len += (size_t)n;
			cl->reply[cl->len] = '\0';
			return;
		}
		if (n < 0 && errno == EAGAIN)
			return;
		cl->eof = true;
		ev_io_stop(loop, w);
		ev_timer_stop(loop, &cl->guard);
		ev_break(loop, EVBREAK_ONE);
	}
}

static void client_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct client *cl = w->data;
	(void)revents;
	cl->timed_out = true;
	ev_io_stop(loop, &cl->w);
	ev_break(loop, EVBREAK_ONE);
}

/* Sends data on fd (or a new connection when fd < 0) and runs the loop
 * until the server closes; returns the reply (owned by cl). */
static const char *exchange(struct ev_loop *loop, struct client *cl, int fd, const char *path, const char *data,
    size_t len, bool shut)
{
	memset(cl, 0, sizeof(*cl));
	cl->fd = fd >= 0 ? fd : connect_to(path);
	if (cl->fd < 0)
		return "(connect failed)";
	cl->send = data;
	cl->sendlen = len;
	cl->shut_after_send = shut;
	if (len == 0 && shut)
		shutdown(cl->fd, SHUT_WR);
	ev_io_init(&cl->w, client_io, cl->fd, len > 0 ? EV_WRITE : EV_READ);
	cl->w.data = cl;
	ev_timer_init(&cl->guard, client_guard, 15.0, 0);
	cl->guard.data = cl;
	ev_io_start(loop, &cl->w);
	ev_timer_start(loop, &cl->guard);
	ev_run(loop, 0);
	close(cl->fd);
	return cl->timed_out ? "(timed out)" : cl->reply;
}

static struct client cl;

static const char *request(struct ev_loop *loop, const char *path, const char *line)
{
	return exchange(loop, &cl, -1, path, line, strlen(line), false);
}

/* ---- subrelayctl ---- */

struct run {
	pid_t pid;
	int status;
	bool exited;
	int open_pipes;
	char out[8192], err[8192];
	size_t outlen, errlen;
	ev_child child;
	ev_io out_w, err_w;
};

static void run_check_done(struct ev_loop *loop, struct run *r)
{
	if (r->exited && r->open_pipes == 0)
		ev_break(loop, EVBREAK_ONE);
}

static void run_pipe(struct ev_loop *loop, ev_io *w, int revents)
{
	struct run *r = w->data;
	bool is_out = w == &r->out_w;
	char *buf = is_out ? r->out : r->err;
	size_t *len = is_out ? &r->outlen : &r->errlen;
	(void)revents;

	ssize_t n = read(w->fd, buf + *len, sizeof(r->out) - 1 - *len);
	if (n > 0) {
		*len += (size_t)n;
		buf[*len] = '\0';
		return;
	}
	if (n < 0 && errno == EAGAIN)
		return;
	ev_io_stop(loop, w);
	close(w->fd);
	r->open_pipes--;
	run_check_done(loop, r);
}

static void run_exited(struct ev_loop *loop, ev_child *w, int revents)
{
	struct run *r = w->data;
	(void)revents;
	ev_child_stop(loop, w);
	r->status = w->rstatus;
	r->exited = true;
	run_check_done(loop, r);
}

/* Runs subrelayctl with args while the loop serves the socket; the exit
 * code, or -1 when it did not exit normally. */
static int run_ctl(struct ev_loop *loop, struct run *r, const char *bin, char *const args[])
{
	int po[2], pe[2];
	char *argv[8];
	int n = 0;

	memset(r, 0, sizeof(*r));
	argv[n++] = (char *)bin;
	for (int i = 0; args[i] != NULL && n < 7; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
		return -1;
	r->pid = fork();
	if (r->pid < 0)
		return -1;
	if (r->pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execv(bin, argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	fcntl(po[0], F_SETFL, O_NONBLOCK);
	fcntl(pe[0], F_SETFL, O_NONBLOCK);
	r->open_pipes = 2;
	ev_io_init(&r->out_w, run_pipe, po[0], EV_READ);
	ev_io_init(&r->err_w, run_pipe, pe[0], EV_READ);
	r->out_w.data = r->err_w.data = r;
	ev_child_init(&r->child, run_exited, r->pid, 0);
	r->child.data = r;
	ev_io_start(loop, &r->out_w);
	ev_io_start(loop, &r->err_w);
	ev_child_start(loop, &r->child);
	ev_run(loop, 0);
	return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1;
}

static const char *find_ctl(const char *argv0, char *buf, size_t n)
{
	const char *env = getenv("SUBRELAYCTL");
	if (env != NULL && *env != '\0')
		return env;
	/* $builddir/tests/c/test_control -> $builddir/subrelayctl */
	const char *slash = strrchr(argv0, '/');
	if (slash != NULL) {
		snprintf(buf, n, "%.*s/../../subrelayctl", (int)(slash - argv0), argv0);
		if (access(buf, X_OK) == 0)
			return buf;
	}
	if (access("./subrelayctl", X_OK) == 0)
		return "./subrelayctl";
	return NULL;
}

static void test_ctl(struct ev_loop *loop, const char *bin, const char *sock, const char *dir)
{
	struct run r;
	char missing[128];
	char want[300];

	CHECK(run_ctl(loop, &r, bin, (char *[]){ "-s", (char *)sock, "status", NULL }) == 0);
	CHECK_STR(r.out, "state=running\nsessions=2\n");
	CHECK_STR(r.err, "");

	CHECK(run_ctl(loop, &r, bin, (char *[]){ "-s", (char *)sock, "show", "AAAA", NULL }) == 0);
	CHECK_STR(r.out, "id=AAAA\nfrom=a@example.com\n");

	CHECK(run_ctl(loop, &r, bin, (char *[]){ "-s", (char *)sock, "flush", NULL }) == 0);
	CHECK_STR(r.out, "rescheduled 3 messages\n");

	CHECK(run_ctl(loop, &r, bin, (char *[]){ "-s", (char *)sock, "show", "NOPE", NULL }) == 1);
	CHECK_STR(r.out, "");
	CHECK_STR(r.err, "subrelayctl: no message NOPE\n");

	snprintf(missing, sizeof(missing), "%s/none.sock", dir);
	CHECK(run_ctl(loop, &r, bin, (char *[]){ "-s", missing, "status", NULL }) == 1);
	snprintf(want, sizeof(want), "subrelayctl: cannot connect to %s: %s (is subrelayd running with relay.control set?)\n",
	    missing, strerror(ENOENT));
	CHECK_STR(r.err, want);

	CHECK(run_ctl(loop, &r, bin, (char *[]){ "-s", (char *)sock, "frobnicate", NULL }) == 2);
	CHECK_STR(r.err, "subrelayctl: unknown command frobnicate "
	    "(try: status, queue, show ID, flush [ID], delete ID, reload, stats, failed, requeue ID|all, health)\n");
	CHECK(run_ctl(loop, &r, bin, (char *[]){ "-s", (char *)sock, "show", NULL }) == 2);
	CHECK_STR(r.err, "subrelayctl: missing ID (usage: show ID)\n");
	CHECK(run_ctl(loop, &r, bin, (char *[]){ "-s", (char *)sock, "stats", "x", NULL }) == 2);
	CHECK(run_ctl(loop, &r, bin, (char *[]){ NULL }) == 2);
	CHECK(run_ctl(loop, &r, bin, (char *[]){ "-x", NULL }) == 2);
	CHECK(run_ctl(loop, &r, bin, (char *[]){ "-V", NULL }) == 0);
	CHECK(strncmp(r.out, "subrelayctl ", 12) == 0);
	CHECK(run_ctl(loop, &r, bin, (char *[]){ "-h", NULL }) == 0);
	CHECK(strstr(r.out, "usage: subrelayctl") != NULL);
	/* health: the verdict is the exit status, the reasons the output. */
	health_ready = false;
	CHECK(run_ctl(loop, &r, bin, (char *[]){ "-s", (char *)sock, "health", NULL }) == 1);
	CHECK_STR(r.out, "not ready\nprovider p: not checked yet\n");
	CHECK_STR(r.err, "");
	health_ready = true;
	CHECK(run_ctl(loop, &r, bin, (char *[]){ "-s", (char *)sock, "health", NULL }) == 0);
	CHECK_STR(r.out, "ready\n");
}

/* ---- the tests ---- */

static void test_commands(struct ev_loop *loop, const char *sock)
{
	CHECK_STR(request(loop, sock, "status\n"), "ok\nstate=running\nsessions=2\n");
	CHECK_STR(request(loop, sock, "status\r\n"), "ok\nstate=running\nsessions=2\n");
	CHECK_STR(request(loop, sock, "  status  \n"), "ok\nstate=running\nsessions=2\n");
	CHECK_STR(request(loop, sock, "queue\n"), "ok\nAAAA a@example.com 1 attempt\nBBBB b@example.com 3 attempts\n");
	CHECK_STR(request(loop, sock, "show AAAA\n"), "ok\nid=AAAA\nfrom=a@example.com\n");
	CHECK_STR(request(loop, sock, "show NOPE\n"), "error: no message NOPE\n");
	CHECK_STR(last_id, "NOPE");

	flush_called = false;
	CHECK_STR(request(loop, sock, "flush\n"), "ok\nrescheduled 3 messages\n");
	CHECK(flush_called && flush_null);
	CHECK_STR(request(loop, sock, "flush AAAA\n"), "ok\nrescheduled 1 message\n");
	CHECK(!flush_null);
	CHECK_STR(request(loop, sock, "flush NOPE\n"), "error: no message NOPE\n");

	CHECK_STR(request(loop, sock, "delete AAAA\n"), "ok\ndeleted AAAA\n");
	CHECK_STR(request(loop, sock, "delete NOPE\n"), "error: no message NOPE\n");

	CHECK_STR(request(loop, sock, "reload\n"), "ok\nconfiguration reloaded\n");
	reload_fails = true;
	CHECK_STR(request(loop, sock, "reload\n"),
	    "error: reload failed, the old configuration stays: x.ini:3: unknown key foo; x.ini:4: bad size\n");
	reload_fails = false;

	CHECK_STR(request(loop, sock, "stats\n"), "ok\nmessages_total 5\n");

	CHECK_STR(request(loop, sock, "failed\n"), "ok\nCCCC c@example.com 550 no such user\n");
	CHECK_STR(request(loop, sock, "requeue CCCC\n"), "ok\nrequeued 1 message\n");
	CHECK_STR(request(loop, sock, "requeue all\n"),
	    "ok\nrequeued 1000 messages\n2 failed messages left: run requeue all again\n");
	CHECK_STR(last_id, "(all)");
	CHECK_STR(request(loop, sock, "requeue NOPE\n"), "error: no failed message NOPE\n");
	/* Not ready is the command's answer, not its failure. */
	health_ready = false;
	CHECK_STR(request(loop, sock, "health\n"), "ok\nnot ready\nprovider p: not checked yet\n");
	health_ready = true;
	CHECK_STR(request(loop, sock, "health\n"), "ok\nready\n");
	CHECK_STR(request(loop, sock, "health now\n"), "error: unexpected argument now (usage: health)\n");
	CHECK_STR(request(loop, sock, "requeue\n"), "error: missing ID (usage: requeue ID|all)\n");
}

static void test_errors(struct ev_loop *loop, const char *sock)
{
	CHECK_STR(request(loop, sock, "frobnicate\n"),
	    "error: unknown command frobnicate (try: status, queue, show ID, flush [ID], delete ID, reload, stats, failed, requeue ID|all, health)\n");
	CHECK_STR(request(loop, sock, "STATUS\n"),
	    "error: unknown command STATUS (try: status, queue, show ID, flush [ID], delete ID, reload, stats, failed, requeue ID|all, health)\n");
	CHECK_STR(request(loop, sock, "\n"),
	    "error: empty request (try: status, queue, show ID, flush [ID], delete ID, reload, stats, failed, requeue ID|all, health)\n");
	CHECK_STR(request(loop, sock, "show\n"), "error: missing ID (usage: show ID)\n");
	CHECK_STR(request(loop, sock, "delete\n"), "error: missing ID (usage: delete ID)\n");
	CHECK_STR(request(loop, sock, "status now\n"), "error: unexpected argument now (usage: status)\n");
	CHECK_STR(request(loop, sock, "delete A B\n"), "error: unexpected argument B (usage: delete ID)\n");
	CHECK_STR(request(loop, sock, "flush A B\n"), "error: unexpected argument B (usage: flush [ID])\n");
	CHECK_STR(request(loop, sock, "show A\033[2J\n"), "error: malformed request (control characters)\n");
	CHECK_STR(request(loop, sock, "sh\row A\n"), "error: malformed request (control characters)\n");

	/* No newline, but the client shut down its side: still answered. */
	CHECK_STR(exchange(loop, &cl, -1, sock, "stats", 5, true), "ok\nmessages_total 5\n");
	/* Connected and closed without a word: no reply, no harm. */
	CHECK_STR(exchange(loop, &cl, -1, sock, "", 0, true), "");
	CHECK(cl.eof);

	/* The limit: 512 bytes, newline included. */
	char line[1024];
	memset(line, 'x', sizeof(line));
	memcpy(line, "show ", 5);
	line[511] = '\n';
	line[512] = '\0';
	char want[600];
	snprintf(want, sizeof(want), "error: no message %.506s\n", line + 5);
	CHECK_STR(request(loop, sock, line), want);
	CHECK(strlen(last_id) == 506);

	line[511] = 'x';
	line[512] = '\n';
	line[513] = '\0';
	CHECK_STR(request(loop, sock, line), "error: request too long (at most 512 bytes)\n");
	line[512] = 'x';
	line[900] = '\n';
	line[901] = '\0';
	CHECK_STR(request(loop, sock, line), "error: request too long (at most 512 bytes)\n");
	/* Extra input after the line is ignored and does not spoil the reply. */
	CHECK_STR(request(loop, sock, "status\nstats\nqueue\n"), "ok\nstate=running\nsessions=2\n");
}

/* Sixteen silent clients hold every slot; a seventeenth waits in the
 * backlog until the 5 s timeout frees them, then is answered. */
static void test_timeout(struct ev_loop *loop, const char *sock)
{
	int idle[16];
	for (int i = 0; i < 16; i++)
		idle[i] = connect_to(sock);
	CHECK(idle[0] >= 0 && idle[15] >= 0);
	CHECK(send(idle[0], "sta", 3, 0) == 3);

	ev_now_update(loop);
	ev_tstamp t0 = ev_now(loop);
	CHECK_STR(request(loop, sock, "status\n"), "ok\nstate=running\nsessions=2\n");
	ev_now_update(loop);
	ev_tstamp waited = ev_now(loop) - t0;
	CHECK(waited > 4.5 && waited < 8.0);

	/* The partial line was dropped without a reply. */
	CHECK_STR(exchange(loop, &cl, idle[0], sock, "", 0, false), "");
	CHECK(cl.eof && cl.len == 0);
	for (int i = 1; i < 16; i++)
		close(idle[i]);
}

static void test_files(struct ev_loop *loop, const char *dir)
{
	char path[128], err[512], want[200];
	struct stat st;
	struct control *a, *b;
	struct control_socket csa, csb;

	/* A stale socket file (nobody listening) is replaced. */
	snprintf(path, sizeof(path), "%s/stale.sock", dir);
	{
		struct sockaddr_un sun;
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		fill_sun(&sun, path);
		CHECK(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
		close(fd);
	}
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
	a = open_ctl(loop, path, &ops, &csa, err, sizeof(err));
	CHECK(a != NULL);
	if (a == NULL)
		fprintf(stderr, "open_ctl: %s\n", err);
	CHECK_STR(request(loop, path, "stats\n"), "ok\nmessages_total 5\n");
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);

	/* A live one is refused and keeps working. */
	b = open_ctl(loop, path, &ops, &csb, err, sizeof(err));
	CHECK(b == NULL);
	snprintf(want, sizeof(want), "another daemon is listening on %s", path);
	CHECK_STR(err, want);
	CHECK_STR(request(loop, path, "stats\n"), "ok\nmessages_total 5\n");

	/* control_close leaves the file to whoever bound it... */
	control_close(a);
	CHECK(access(path, F_OK) == 0);
	/* ...which removes its own file... */
	control_socket_remove(path, &csa);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
	/* ...but not one that replaced it. */
	a = open_ctl(loop, path, &ops, &csa, err, sizeof(err));
	CHECK(a != NULL);
	CHECK(unlink(path) == 0);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f != NULL)
		fclose(f);
	close_ctl(a, path, &csa);
	CHECK(access(path, F_OK) == 0);

	/* A file that is not a socket is left alone. */
	CHECK(open_ctl(loop, path, &ops, &csb, err, sizeof(err)) == NULL);
	snprintf(want, sizeof(want), "%s exists and is not a socket", path);
	CHECK_STR(err, want);
	CHECK(access(path, F_OK) == 0);
	unlink(path);

	/* Too long for sun_path. */
	char longpath[300];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	CHECK(open_ctl(loop, longpath, &ops, &csb, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "too long") != NULL);

	/* A missing grandparent is an error, not a tree of directories. */
	snprintf(path, sizeof(path), "%s/no/such/control.sock", dir);
	CHECK(open_ctl(loop, path, &ops, &csb, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "cannot create directory") != NULL);

	/* A callback may close the control that called it: the reply still
	 * goes out, and the socket is closed. */
	snprintf(path, sizeof(path), "%s/closing.sock", dir);
	a = open_ctl(loop, path, &ops, &csa, err, sizeof(err));
	CHECK(a != NULL);
	close_on_reload = a;
	CHECK_STR(request(loop, path, "reload\n"), "ok\nconfiguration reloaded\n");
	CHECK(close_on_reload == NULL);
	CHECK(connect_to(path) < 0 && errno == ECONNREFUSED);
	control_socket_remove(path, &csa);
	CHECK(access(path, F_OK) < 0);
}

int main(int argc, char **argv)
{
	struct ev_loop *loop = ev_default_loop(0);
	const char *tmp = getenv("TMPDIR");
	char dir[72], sock[128], err[512], ctlbuf[PATH_MAX];
	struct stat st;

	(void)argc;
	signal(SIGPIPE, SIG_IGN);
	if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 48)
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/test_control.XXXXXX", tmp);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 99;
	}

	/* The socket's directory does not exist yet: it is made 0700. */
	snprintf(sock, sizeof(sock), "%s/run/control.sock", dir);
	struct control_socket cs;
	struct control *c = open_ctl(loop, sock, &ops, &cs, err, sizeof(err));
	CHECK(c != NULL);
	if (c == NULL) {
		fprintf(stderr, "open_ctl: %s\n", err);
		return check_summary("test_control");
	}
	CHECK(stat(sock, &st) == 0 && S_ISSOCK(st.st_mode));
	CHECK((st.st_mode & 07777) == 0600);
	char rundir[128];
	snprintf(rundir, sizeof(rundir), "%s/run", dir);
	CHECK(stat(rundir, &st) == 0 && (st.st_mode & 07777) == 0700);

	test_commands(loop, sock);
	test_errors(loop, sock);
	test_timeout(loop, sock);

	const char *bin = find_ctl(argv[0], ctlbuf, sizeof(ctlbuf));
	if (bin != NULL) {
		printf("subrelayctl: %s\n", bin);
		test_ctl(loop, bin, sock, dir);
	}
	else
		printf("subrelayctl not found (set SUBRELAYCTL): its checks skipped\n");

	close_ctl(c, sock, &cs);
	CHECK(access(sock, F_OK) < 0 && errno == ENOENT);

	test_files(loop, dir);

	snprintf(sock, sizeof(sock), "%s/run", dir);
	rmdir(sock);
	rmdir(dir);
	return check_summary("test_control");
}

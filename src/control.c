/*
 * control.c: see control.h.
 *
 * Each connection is one small state machine on one ev_io watcher and one
 * timer: READING (collect one line, at most CONTROL_LINE_MAX bytes, within
 * CONTROL_TIMEOUT), then the command runs synchronously and the whole
 * reply is built in memory, then WRITING (send it, the timer re-armed on
 * every bit of progress), then close. A command table separates checking
 * a request (name, argument count, bytes) from running it.
 *
 * control_close() frees connections still reading; those already
 * answering no longer need the control object and finish on their own.
 * That also makes it safe for a callback (say, reload moving the socket)
 * to call control_close() on the control that is calling it.
 */
#include "control.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "control_commands.h"
#include "gate.h"
#include "log.h"

#define CONTROL_TIMEOUT 5.0      /* to send the request; to make progress reading the reply */
#define CONTROL_MAX_CONNS 16     /* more wait in the listen backlog */
#define CONTROL_BACKLOG 16
#define CONTROL_DRAIN_MAX 65536  /* unread input discarded before close */
#define CONN_MAGIC 0xc7c7c0deu

struct conn;

struct control {
	struct ev_loop *loop;
	int fd;
	struct gate gate;    /* accepting, at most CONTROL_MAX_CONNS at once */
	struct control_ops ops;
	void *arg;
	struct conn *conns;  /* connections still reading */
};

enum conn_state { CONN_READING, CONN_ANSWERING };

struct conn {
	unsigned magic;
	enum conn_state state;
	struct control *ctl;  /* NULL once answering */
	struct conn *prev, *next;
	struct ev_loop *loop;
	int fd;
	ev_io w;
	ev_timer timer;
	char line[CONTROL_LINE_MAX + 1];
	size_t len;
	char *reply;
	size_t reply_len, sent;
	bool reply_static;
};

/* ---- the command table ---- */

/* Runs a checked command: true with the output in out, or false with
 * the reason in err. */
typedef bool (*cmd_fn)(const struct control *c, const char *arg, FILE *out, char *err, size_t errlen);

static bool cmd_status(const struct control *c, const char *arg, FILE *out, char *err, size_t errlen)
{
	(void)arg;
	(void)err;
	(void)errlen;
	c->ops.status(out, c->arg);
	return true;
}

static bool cmd_queue(const struct control *c, const char *arg, FILE *out, char *err, size_t errlen)
{
	(void)arg;
	(void)err;
	(void)errlen;
	c->ops.queue_list(out, c->arg);
	return true;
}

static bool cmd_show(const struct control *c, const char *id, FILE *out, char *err, size_t errlen)
{
	if (!c->ops.show(id, out, c->arg)) {
		snprintf(err, errlen, "no message %s", id);
		return false;
	}
	return true;
}

static bool cmd_flush(const struct control *c, const char *id, FILE *out, char *err, size_t errlen)
{
	int n = c->ops.flush(id, c->arg);
	if (n < 0) {
		snprintf(err, errlen, "no message %s", id != NULL ? id : "to flush");
		return false;
	}
	fprintf(out, "rescheduled %d message%s\n", n, n == 1 ? "" : "s");
	return true;
}

static bool cmd_delete(const struct control *c, const char *id, FILE *out, char *err, size_t errlen)
{
	if (!c->ops.remove(id, c->arg)) {
		snprintf(err, errlen, "no message %s", id);
		return false;
	}
	fprintf(out, "deleted %s\n", id);
	return true;
}

/* Copies src to dst with its lines joined by "; ", so a reason stays on
 * the reply's one status line. */
static void join_lines(char *dst, size_t n, const char *src)
{
	size_t o = 0;

	for (const char *p = src; *p && o + 1 < n; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n') {
			if (p[1] == '\0' || o + 3 >= n)
				break;
			dst[o++] = ';';
			dst[o++] = ' ';
			continue;
		}
		dst[o++] = *p;
	}
	dst[o] = '\0';
}

static bool cmd_reload(const struct control *c, const char *arg, FILE *out, char *err, size_t errlen)
{
	char why[1024] = "", joined[1024];

	(void)arg;
	if (!c->ops.reload(why, sizeof(why), c->arg)) {
		why[sizeof(why) - 1] = '\0';
		join_lines(joined, sizeof(joined), why);
		snprintf(err, errlen, "reload failed, the old configuration stays: %s",
		    joined[0] != '\0' ? joined : "no reason given");
		return false;
	}
	fprintf(out, "configuration reloaded\n");
	return true;
}

static bool cmd_stats(const struct control *c, const char *arg, FILE *out, char *err, size_t errlen)
{
	(void)arg;
	(void)err;
	(void)errlen;
	c->ops.stats(out, c->arg);
	return true;
}

static bool cmd_failed(const struct control *c, const char *arg, FILE *out, char *err, size_t errlen)
{
	(void)arg;
	(void)err;
	(void)errlen;
	c->ops.failed_list(out, c->arg);
	return true;
}

static bool cmd_requeue(const struct control *c, const char *id, FILE *out, char *err, size_t errlen)
{
	unsigned left = 0;
	bool all = strcmp(id, "all") == 0;
	int n = c->ops.requeue(all ? NULL : id, &left, c->arg);

	if (n < 0) {
		snprintf(err, errlen, "no failed message %s", id);
		return false;
	}
	fprintf(out, "requeued %d message%s\n", n, n == 1 ? "" : "s");
	if (left > 0)
		fprintf(out, "%u failed message%s left: run requeue all again\n", left, left == 1 ? "" : "s");
	return true;
}

/* Not ready is an answer, not a failure of the command: the reply is
 * "ok" either way and subrelayctl reads the verdict from the output. */
static bool cmd_health(const struct control *c, const char *arg, FILE *out, char *err, size_t errlen)
{
	(void)arg;
	(void)err;
	(void)errlen;
	c->ops.health(out, c->arg);
	return true;
}

/* How each command of the shared table (control_commands.h) runs here. */
static const cmd_fn handlers[CONTROL_NCOMMANDS] = {
	[CONTROL_STATUS] = cmd_status,
	[CONTROL_QUEUE] = cmd_queue,
	[CONTROL_SHOW] = cmd_show,
	[CONTROL_FLUSH] = cmd_flush,
	[CONTROL_DELETE] = cmd_delete,
	[CONTROL_RELOAD] = cmd_reload,
	[CONTROL_STATS] = cmd_stats,
	[CONTROL_FAILED] = cmd_failed,
	[CONTROL_REQUEUE] = cmd_requeue,
	[CONTROL_HEALTH] = cmd_health,
};

/* "(try: status, queue, show ID, ...)" */
static const char *command_list(void)
{
	static char list[256];

	if (list[0] == '\0') {
		size_t n = (size_t)snprintf(list, sizeof(list), "(try:");
		for (size_t i = 0; i < CONTROL_NCOMMANDS && n < sizeof(list); i++)
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s %s", i ? "," : "", control_commands[i].usage);
		if (n < sizeof(list))
			snprintf(list + n, sizeof(list) - n, ")");
	}
	return list;
}

/* Splits the next blank-separated word off *p (NULL when none is left). */
static char *next_word(char **p)
{
	char *s = *p + strspn(*p, " \t");
	if (*s == '\0') {
		*p = s;
		return NULL;
	}
	char *end = s + strcspn(s, " \t");
	if (*end != '\0')
		*end++ = '\0';
	*p = end;
	return s;
}

/*
 * Checks the request line (newline already removed) and runs it. Writes
 * the command's output to out and returns NULL, or writes the reason to
 * err and returns it; *cmdp is the command found (NULL if none).
 */
static const char *run_request(const struct control *c, char *line, size_t len, FILE *out,
    char *err, size_t errlen, const struct control_command **cmdp, const char **argp)
{
	*cmdp = NULL;
	*argp = NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			snprintf(err, errlen, "malformed request (control characters)");
			return err;
		}
	}

	char *p = line;
	char *name = next_word(&p);
	char *arg = next_word(&p);
	char *extra = next_word(&p);

	if (name == NULL) {
		snprintf(err, errlen, "empty request %s", command_list());
		return err;
	}
	int id = control_command_find(name);
	if (id < 0) {
		snprintf(err, errlen, "unknown command %s %s", name, command_list());
		return err;
	}
	const struct control_command *cmd = &control_commands[id];
	*cmdp = cmd;
	*argp = arg;
	if (cmd->arg == CONTROL_ARG_REQUIRED && arg == NULL) {
		snprintf(err, errlen, "missing ID (usage: %s)", cmd->usage);
		return err;
	}
	if ((cmd->arg == CONTROL_ARG_NONE && arg != NULL) || extra != NULL) {
		snprintf(err, errlen, "unexpected argument %s (usage: %s)", cmd->arg == CONTROL_ARG_NONE ? arg : extra,
		    cmd->usage);
		return err;
	}
	return handlers[id](c, arg, out, err, errlen) ? NULL : err;
}

/* ---- connections ---- */


static void conn_free(struct conn *k)
{
	struct control *c = k->ctl;

	ev_io_stop(k->loop, &k->w);
	ev_timer_stop(k->loop, &k->timer);
	/* Unread input would make the peer's read fail with ECONNRESET
	 * instead of ending cleanly after the reply. */
	char scratch[4096];
	size_t drained = 0;
	ssize_t n;
	while (drained < CONTROL_DRAIN_MAX && (n = recv(k->fd, scratch, sizeof(scratch), 0)) > 0)
		drained += (size_t)n;
	close(k->fd);
	if (c != NULL) {
		if (k->prev != NULL)
			k->prev->next = k->next;
		else
			c->conns = k->next;
		if (k->next != NULL)
			k->next->prev = k->prev;
		gate_closed(&c->gate);
	}
	if (!k->reply_static)
		free(k->reply);
	k->magic = 0;
	free(k);
}

static void conn_enter(const struct conn *k)
{
	if (k->magic != CONN_MAGIC)
		abort();
}

/* From here on the connection needs nothing from its control. */
static void conn_detach(struct conn *k)
{
	struct control *c = k->ctl;

	if (c == NULL)
		return;
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		c->conns = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
	k->prev = k->next = NULL;
	k->ctl = NULL;
	gate_closed(&c->gate);
}

static void conn_write(struct conn *k)
{
	while (k->sent < k->reply_len) {
		ssize_t n = send(k->fd, k->reply + k->sent, k->reply_len - k->sent, MSG_NOSIGNAL);
		if (n > 0) {
			k->sent += (size_t)n;
			ev_timer_again(k->loop, &k->timer);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		log_debug("control write: %s", strerror(errno));
		conn_free(k);
		return;
	}
	conn_free(k);
}


static void conn_set_reply(struct conn *k, const char *error, const char *output, size_t outlen)
{
	static const char oom[] = "error: out of memory\n";
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (f != NULL) {
		if (error != NULL) {
			fprintf(f, "error: %s\n", error);
		} else {
			fputs("ok\n", f);
			fwrite(output, 1, outlen, f);
			if (outlen > 0 && output[outlen - 1] != '\n')
				fputc('\n', f);
		}
		if (ferror(f)) {
			fclose(f);
			free(buf);
			f = NULL;
		} else if (fclose(f) != 0) {
			free(buf);
			f = NULL;
		}
	}
	if (f == NULL) {
		k->reply = (char *)oom;
		k->reply_len = sizeof(oom) - 1;
		k->reply_static = true;
		return;
	}
	k->reply = buf;
	k->reply_len = size;
}

static void conn_answer(struct conn *k, const char *early_error)
{
	struct control *c = k->ctl;
	char err[1024] = "";
	char *output = NULL;
	size_t outlen = 0;
	const struct control_command *cmd = NULL;
	const char *arg = NULL;
	const char *error = early_error;

	/* The callbacks may call control_close(c): nothing below uses c. */
	conn_detach(k);
	k->state = CONN_ANSWERING;
	ev_io_stop(k->loop, &k->w);
	ev_timer_stop(k->loop, &k->timer);

	if (error == NULL) {
		FILE *out = open_memstream(&output, &outlen);
		if (out == NULL) {
			error = "out of memory";
		} else {
			error = run_request(c, k->line, k->len, out, err, sizeof(err), &cmd, &arg);
			if (fclose(out) != 0 && error == NULL)
				error = "out of memory";
		}
	}
	if (cmd != NULL && (cmd->changes || log_enabled(LOG_LVL_DEBUG))) {
		char qarg[96], qerr[256];
		log_msg(cmd->changes ? LOG_LVL_INFO : LOG_LVL_DEBUG, "control command=%s%s%s result=%s%s%s",
		    cmd->name, arg != NULL ? " arg=" : "", arg != NULL ? log_quote(qarg, sizeof(qarg), arg) : "",
		    error == NULL ? "ok" : "error", error != NULL ? " reason=" : "",
		    error != NULL ? log_quote(qerr, sizeof(qerr), error) : "");
	} else if (cmd == NULL) {
		char qerr[256];
		log_debug("control result=error reason=%s", log_quote(qerr, sizeof(qerr), error));
	}

	conn_set_reply(k, error, output, outlen);
	free(output);

	ev_io_set(&k->w, k->fd, EV_WRITE);
	ev_io_start(k->loop, &k->w);
	k->timer.repeat = CONTROL_TIMEOUT;
	ev_timer_again(k->loop, &k->timer);
	conn_write(k);
}

static void conn_read(struct conn *k)
{
	for (;;) {
		if (k->len == CONTROL_LINE_MAX) {
			conn_answer(k, "request too long (at most 512 bytes)");
			return;
		}
		ssize_t n = recv(k->fd, k->line + k->len, CONTROL_LINE_MAX - k->len, 0);
		if (n > 0) {
			char *nl = memchr(k->line + k->len, '\n', (size_t)n);
			k->len += (size_t)n;
			if (nl != NULL) {
				k->len = (size_t)(nl - k->line);
				if (k->len > 0 && k->line[k->len - 1] == '\r')
					k->len--;
				k->line[k->len] = '\0';
				conn_answer(k, NULL);
				return;
			}
			continue;
		}
		if (n == 0) {
			/* A client that shut down its side after the line
			 * without a newline still gets its answer. */
			if (k->len == 0) {
				conn_free(k);
				return;
			}
			k->line[k->len] = '\0';
			conn_answer(k, NULL);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			log_debug("control read: %s", strerror(errno));
			conn_free(k);
		}
		return;
	}
}

static void on_conn_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *k = w->data;
	(void)loop;
	(void)revents;

	conn_enter(k);
	if (k->state == CONN_READING)
		conn_read(k);
	else
		conn_write(k);
}

static void on_conn_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *k = w->data;
	(void)loop;
	(void)revents;

	conn_enter(k);
	log_debug("control connection timed out while %s", k->state == CONN_READING ? "reading" : "writing");
	conn_free(k);
}

static void conn_new(int fd, void *arg)
{
	struct control *c = arg;
	struct conn *k = calloc(1, sizeof(*k));
	if (k == NULL) {
		log_error("control: out of memory");
		close(fd);
		gate_closed(&c->gate);
		return;
	}
	k->magic = CONN_MAGIC;
	k->state = CONN_READING;
	k->ctl = c;
	k->loop = c->loop;
	k->fd = fd;
	k->next = c->conns;
	if (c->conns != NULL)
		c->conns->prev = k;
	c->conns = k;
	ev_io_init(&k->w, on_conn_io, fd, EV_READ);
	k->w.data = k;
	ev_timer_init(&k->timer, on_conn_timeout, CONTROL_TIMEOUT, 0);
	k->timer.data = k;
	ev_io_start(k->loop, &k->w);
	ev_timer_start(k->loop, &k->timer);
}

/* ---- the listener ---- */

/* Creates the socket's directory (mode 0700) if it is missing. */
static bool make_parent(const char *path, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL || slash == path)
		return true;
	char *dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	bool ok = true;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create directory %s for the control socket: %s", dir, strerror(errno));
		ok = false;
	}
	free(dir);
	return ok;
}

/* Removes a socket file nobody answers on; refuses a live one. */
static bool clear_stale(const char *path, const struct sockaddr_un *sun, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return true;
		snprintf(err, errlen, "cannot check control socket %s: %s", path, strerror(errno));
		return false;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		return false;
	}
	/* Non-blocking: a full backlog answers EAGAIN, which also means alive. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return false;
	}
	int r = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	int e = errno;
	close(fd);
	if (r == 0 || e == EAGAIN || e == EINPROGRESS) {
		snprintf(err, errlen, "another daemon is listening on %s", path);
		return false;
	}
	if (e == ENOENT)
		return true;
	if (e != ECONNREFUSED) {
		snprintf(err, errlen, "cannot check control socket %s: %s", path, strerror(e));
		return false;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove stale control socket %s: %s", path, strerror(errno));
		return false;
	}
	log_info("control removed stale socket path=%s", path);
	return true;
}

bool control_bind(const char *path, struct control_socket *cs, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	size_t plen = strlen(path);

	if (plen == 0) {
		snprintf(err, errlen, "empty control socket path");
		return false;
	}
	if (plen >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control socket path too long (at most %zu bytes): %s", sizeof(sun.sun_path) - 1,
		    path);
		return false;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen + 1);

	if (!make_parent(path, err, errlen) || !clear_stale(path, &sun, err, errlen))
		return false;

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return false;
	}
	/* The file is born 0600: Linux takes its mode from the socket's
	 * inode, under the umask; chmod afterwards for other systems. */
	(void)fchmod(fd, 0600);
	mode_t old_mask = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	int e = errno;
	umask(old_mask);
	if (r < 0) {
		snprintf(err, errlen, "cannot bind control socket %s: %s", path, strerror(e));
		close(fd);
		return false;
	}
	struct stat st;
	if (chmod(path, 0600) < 0 || lstat(path, &st) < 0 || listen(fd, CONTROL_BACKLOG) < 0) {
		snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
		unlink(path);
		close(fd);
		return false;
	}
	cs->fd = fd;
	cs->dev = st.st_dev;
	cs->ino = st.st_ino;
	return true;
}

/* Only our own file: a newer daemon may have replaced it. */
static void unlink_ours(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	if (lstat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
		unlink(path);
}

void control_socket_remove(const char *path, struct control_socket *cs)
{
	if (cs->fd >= 0)
		close(cs->fd);
	cs->fd = -1;
	unlink_ours(path, cs->dev, cs->ino);
}

struct control *control_serve(struct ev_loop *loop, struct control_socket *cs, const struct control_ops *ops,
    void *arg)
{
	struct control *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->loop = loop;
	c->fd = cs->fd;
	cs->fd = -1;
	c->ops = *ops;
	c->arg = arg;
	gate_start(&c->gate, loop, c->fd, CONTROL_MAX_CONNS, "control", conn_new, c);
	return c;
}

void control_close(struct control *c)
{
	if (c == NULL)
		return;
	gate_stop(&c->gate);
	close(c->fd);
	c->fd = -1;
	while (c->conns != NULL)
		conn_free(c->conns);
	free(c);
}

/*
 * daemon.c: see daemon.h.
 */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <ev.h>
#include <systemd/sd-daemon.h>

#include "control.h"
#include "dns.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "privdrop.h"
#include "queue.h"
#include "runtime.h"
#include "smtp_server.h"
#include "spool.h"
#include "workers.h"

/* Worker 0 looks for messages whose hand-off was lost this often. */
#define RESCAN_INTERVAL 60.
/* Workers publish their gauges for worker 0's /metrics this often. */
#define GAUGE_INTERVAL 1.

struct daemon {
	struct daemon_args args;
	struct server_env env;
	struct dns *dns;
	struct listeners *listeners;
	struct control *control;
	struct metrics_server *metrics;
	ev_signal sigterm, sigint, sighup, sigquit;
	ev_timer drain_check;
	ev_tstamp drain_deadline;
	ev_tstamp started;
	struct worker_env *we;     /* NULL: a single process (relay.workers = 1) */
	ev_timer gauges;           /* workers: publish sessions and idle upstream sessions */
	ev_timer rescan;           /* worker 0, queue mode */
	ev_io handoff;             /* worker 0, queue mode: ids committed by the others */
	char handoff_buf[512];
	size_t handoff_len;
};

/* Worker 0 (or the single process) owns the queue, control and /metrics. */
static bool is_owner(const struct daemon *d)
{
	return d->we == NULL || d->we->worker == 0;
}

/* ---- reload ---- */

static void save_egress(const struct path_env *env, void *arg)
{
	struct spool *sp = arg;
	char *text = path_memory_export(env);

	if (text != NULL && !spool_save_egress(sp, text))
		log_warn("cannot save the egress memory in %s: %s", spool_dir(sp), strerror(errno));
	free(text);
}

/* What a reload cannot change without a restart. */
static const char *reload_blocker(const struct config *old, const struct config *new)
{
	if (old->relay.delivery != new->relay.delivery)
		return "relay.delivery cannot change on reload; restart subrelayd";
	if (config_uses_spool(new) && strcmp(old->relay.spool, new->relay.spool) != 0)
		return "relay.spool cannot change on reload; restart subrelayd";
	return NULL;
}

static bool reload_config(struct daemon *d, char *err, size_t errlen);

/* systemd's Type=notify-reload protocol brackets a reload like this
 * (the master does it when there are workers: it is MAINPID). */
static bool reload(struct daemon *d, char *err, size_t errlen)
{
	if (d->we == NULL)
		sd_notify(0, "RELOADING=1");
	bool ok = reload_config(d, err, errlen);
	if (d->we == NULL)
		sd_notify(0, "READY=1");
	return ok;
}

struct config *daemon_load_config(const struct daemon_args *args, const struct config *old, SSL_CTX ***ctx,
    char **errtext)
{
	char *text = NULL;
	size_t len = 0;
	FILE *errs = open_memstream(&text, &len);

	*ctx = NULL;
	*errtext = NULL;
	if (errs == NULL)
		return NULL;
	struct config *cfg = config_load(args->config_file, args->overrides, args->noverrides, errs);
	*ctx = cfg ? runtime_tls_contexts(cfg, errs) : NULL;
	const char *blocker = *ctx ? reload_blocker(old, cfg) : NULL;
	fclose(errs);
	if (*ctx == NULL || blocker != NULL) {
		if (blocker != NULL || text == NULL || text[0] == '\0') {
			free(text);
			text = strdup(blocker ? blocker : "invalid configuration");
		}
		*errtext = text;
		runtime_free_tls_contexts(cfg, *ctx);
		*ctx = NULL;
		config_free(cfg);
		return NULL;
	}
	free(text);
	return cfg;
}

static bool reload_config(struct daemon *d, char *err, size_t errlen)
{
	const struct config *old = d->env.rt->path.cfg;
	char *text;
	SSL_CTX **ctx;
	struct config *cfg = daemon_load_config(&d->args, old, &ctx, &text);

	if (cfg == NULL) {
		snprintf(err, errlen, "%s", text ? text : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		log_error("reload failed, keeping the running configuration: %s", text ? text : "out of memory");
		free(text);
		return false;
	}
	struct runtime *rt = runtime_new(d->env.loop, d->dns, cfg, ctx, d->env.rt);
	if (rt == NULL) {
		snprintf(err, errlen, "out of memory");
		runtime_free_tls_contexts(cfg, ctx);
		config_free(cfg);
		return false;
	}
	if (old->relay.nlisten != cfg->relay.nlisten ||
	    memcmp(old->relay.listen, cfg->relay.listen, cfg->relay.nlisten * sizeof(*cfg->relay.listen)) != 0)
		log_warn("relay.listen changed: the new addresses take effect after a restart");
	if (old->relay.workers != cfg->relay.workers)
		log_warn("relay.workers changed: the new count takes effect after a restart");
	runtime_unref(d->env.rt);
	d->env.rt = rt;
	log_setup(cfg->relay.log_syslog, cfg->relay.log_level);
	log_info("reloaded file=%s providers=%u", cfg->file, cfg->nproviders);
	if (d->env.queue != NULL)
		queue_reconfigured(d->env.queue);
	return true;
}

/* ---- control commands ---- */

/* Client sessions of every worker. */
static unsigned sessions_now(struct daemon *d)
{
	if (d->we == NULL)
		return d->env.nclients;
	metrics_worker_set(d->env.nclients, pool_idle_count(d->env.rt->path.pool));
	return metrics_workers_sum(d->we->nworkers).sessions;
}

static void ctl_status(FILE *out, void *arg)
{
	struct daemon *d = arg;
	const struct config *cfg = d->env.rt->path.cfg;

	fprintf(out, "version %s\npid %ld\nuptime %.0fs\nconfig %s\ndelivery %s\nsessions %u\nproviders %u\n",
	    PACKAGE_VERSION, (long)(d->we ? d->we->master : getpid()), ev_now(d->env.loop) - d->started, cfg->file,
	    d->env.queue ? "queue" : "passthrough", sessions_now(d), cfg->nproviders);
	if (d->we != NULL)
		fprintf(out, "workers %u\n", d->we->nworkers);
	if (d->env.queue != NULL)
		fprintf(out, "queue_depth %u\n", queue_depth(d->env.queue));
}

static void ctl_queue(FILE *out, void *arg)
{
	struct daemon *d = arg;
	if (d->env.queue != NULL)
		queue_list(d->env.queue, out);
	else
		fprintf(out, "delivery = passthrough: nothing is queued\n");
}

static bool ctl_show(const char *id, FILE *out, void *arg)
{
	struct daemon *d = arg;
	return d->env.queue != NULL && queue_show(d->env.queue, id, out);
}

static int ctl_flush(const char *id, void *arg)
{
	struct daemon *d = arg;
	return d->env.queue != NULL ? queue_flush(d->env.queue, id) : (id ? -1 : 0);
}

static bool ctl_delete(const char *id, void *arg)
{
	struct daemon *d = arg;
	return d->env.queue != NULL && queue_delete(d->env.queue, id);
}

static bool ctl_reload(char *err, size_t errlen, void *arg)
{
	struct daemon *d = arg;

	if (!reload(d, err, errlen))
		return false;
	/* Worker 0 is reloaded; SIGUSR1 asks the master to reload the others
	 * (a SIGHUP to the master would reload this one twice). */
	if (d->we != NULL && getppid() == d->we->master && kill(d->we->master, SIGUSR1) < 0)
		log_warn("cannot ask the master to reload the other workers: %s", strerror(errno));
	return true;
}

static void ctl_stats(FILE *out, void *arg)
{
	struct daemon *d = arg;
	fprintf(out, "sessions %u\n", sessions_now(d));
	if (d->env.queue != NULL)
		queue_stats(d->env.queue, out);
}

static const struct control_ops control_ops = {
	.status = ctl_status,
	.queue_list = ctl_queue,
	.show = ctl_show,
	.flush = ctl_flush,
	.remove = ctl_delete,
	.reload = ctl_reload,
	.stats = ctl_stats,
};

/* ---- signals and shutdown ---- */

static void on_drain_check(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;
	unsigned commits = d->env.queue ? queue_commits_pending(d->env.queue) : 0;
	(void)revents;

	if (d->env.nclients == 0 && commits == 0) {
		log_info("stopped: all sessions finished");
		ev_break(loop, EVBREAK_ALL);
	} else if (ev_now(loop) >= d->drain_deadline) {
		log_warn("stopped: drain_timeout reached with %u sessions still open", d->env.nclients);
		ev_break(loop, EVBREAK_ALL);
	}
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon *d = w->data;
	const struct config *cfg = d->env.rt->path.cfg;
	(void)revents;

	if (ev_is_active(&d->drain_check)) {
		/* A worker hears a stop twice when the whole process group is
		 * signalled (the master forwards it too); the master says
		 * SIGQUIT when it means now. */
		if (d->we != NULL)
			return;
		log_warn("second stop signal: exiting now");
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	log_info("stopping signal=%s sessions=%u drain_timeout=%gs", w->signum == SIGTERM ? "TERM" : "INT",
	    d->env.nclients, cfg->relay.drain_timeout);
	ev_timer_stop(loop, &d->rescan);
	/* Closed, not just unwatched: new clients get a refusal, not silence. */
	listeners_close(d->listeners);
	d->listeners = NULL;
	d->drain_deadline = ev_now(loop) + cfg->relay.drain_timeout;
	ev_timer_set(&d->drain_check, 0., 0.1);
	ev_timer_start(loop, &d->drain_check);
}

/* SIGQUIT: stop at once, without draining. */
static void on_quit_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	log_warn("stop signal=QUIT: exiting now");
	ev_break(loop, EVBREAK_ALL);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	char err[512];
	(void)loop;
	(void)revents;
	reload(w->data, err, sizeof(err));
}

static void install_signals(struct daemon *d)
{
	signal(SIGPIPE, SIG_IGN);
	/* A file-size limit must fail the write (EFBIG, answered 452), not kill us. */
	signal(SIGXFSZ, SIG_IGN);
	ev_signal_init(&d->sigterm, on_stop_signal, SIGTERM);
	ev_signal_init(&d->sigint, on_stop_signal, SIGINT);
	ev_signal_init(&d->sighup, on_hup, SIGHUP);
	ev_signal_init(&d->sigquit, on_quit_signal, SIGQUIT);
	d->sigterm.data = d->sigint.data = d->sighup.data = d;
	ev_signal_start(d->env.loop, &d->sigterm);
	ev_signal_start(d->env.loop, &d->sigint);
	ev_signal_start(d->env.loop, &d->sighup);
	ev_signal_start(d->env.loop, &d->sigquit);
	ev_init(&d->drain_check, on_drain_check);
	d->drain_check.data = d;
	/* A worker is forked with these blocked (workers.c): a signal that came
	 * before the watchers existed was kept pending and is handled now. */
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	sigprocmask(SIG_UNBLOCK, &ss, NULL);
}

/* ---- startup ---- */

/* Every client is a descriptor (two in passthrough): take what we may. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rlim_t before = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (rl.rlim_cur != before && setrlimit(RLIMIT_NOFILE, &rl) != 0)
		rl.rlim_cur = before;
	log_info("open files limit=%llu (was %llu, hard limit %llu)", (unsigned long long)rl.rlim_cur,
	    (unsigned long long)before, (unsigned long long)rl.rlim_max);
}

/* ---- workers: hand-offs from the acceptors to worker 0 ---- */

static void handoff_send(const char *id, void *arg)
{
	struct daemon *d = arg;
	char line[ID_LEN + 2];
	int n = snprintf(line, sizeof(line), "%s\n", id);

	/* One write below PIPE_BUF is atomic among writers. If it fails, the
	 * message is still safe in queue/ and worker 0's rescan finds it. */
	if (write(d->we->handoff_wr, line, (size_t)n) != n)
		log_warn("message id=%s handoff=failed reason=\"%s\" (worker 0 finds it at its next rescan)", id,
		    strerror(errno));
}

static void on_handoff(struct ev_loop *loop, ev_io *w, int revents)
{
	struct daemon *d = w->data;
	(void)revents;

	for (;;) {
		ssize_t n = read(w->fd, d->handoff_buf + d->handoff_len, sizeof(d->handoff_buf) - d->handoff_len);
		if (n == 0)
			ev_io_stop(loop, w); /* every writer is gone: the master too, we are stopping */
		if (n <= 0)
			return;
		d->handoff_len += (size_t)n;
		char *start = d->handoff_buf, *end = d->handoff_buf + d->handoff_len, *nl;
		while ((nl = memchr(start, '\n', (size_t)(end - start))) != NULL) {
			*nl = '\0';
			if (d->env.queue != NULL)
				queue_adopt(d->env.queue, start);
			start = nl + 1;
		}
		d->handoff_len = (size_t)(end - start);
		if (d->handoff_len == sizeof(d->handoff_buf))
			d->handoff_len = 0; /* no line is this long: garbage */
		memmove(d->handoff_buf, start, d->handoff_len);
	}
}

static void on_rescan(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;
	(void)loop;
	(void)revents;
	queue_rescan(d->env.queue);
}

static void on_gauges(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;
	(void)loop;
	(void)revents;
	metrics_worker_set(d->env.nclients, pool_idle_count(d->env.rt->path.pool));
}

static bool start_queue(struct daemon *d)
{
	const struct config *cfg = d->env.rt->path.cfg;
	char err[512];

	if (!is_owner(d)) {
		d->env.spool = d->we->spool;
		d->env.queue = queue_new_acceptor(&d->env.rt, d->env.spool, handoff_send, d, err, sizeof(err));
		if (d->env.queue == NULL)
			log_error("queue: %s", err);
		return d->env.queue != NULL;
	}
	d->env.spool = d->we ? d->we->spool : spool_open(cfg->relay.spool, err, sizeof(err));
	if (d->env.spool == NULL) {
		log_error("spool: %s", err);
		return false;
	}
	char *egress = spool_load_egress(d->env.spool);
	if (egress != NULL)
		path_memory_import(&d->env.rt->path, egress);
	free(egress);
	d->env.rt->path.memory_changed = save_egress;
	d->env.rt->path.memory_arg = d->env.spool;
	d->env.queue = queue_new(&d->env.rt, d->env.spool, err, sizeof(err));
	if (d->env.queue == NULL) {
		log_error("queue: %s", err);
		return false;
	}
	if (d->we != NULL) {
		ev_io_init(&d->handoff, on_handoff, d->we->handoff_rd, EV_READ);
		d->handoff.data = d;
		ev_io_start(d->env.loop, &d->handoff);
		ev_timer_init(&d->rescan, on_rescan, RESCAN_INTERVAL, RESCAN_INTERVAL);
		d->rescan.data = d;
		ev_timer_start(d->env.loop, &d->rescan);
	}
	return true;
}

static void metrics_gauges(FILE *out, void *arg)
{
	struct daemon *d = arg;

	struct metrics_worker_gauges g = { d->env.nclients, pool_idle_count(d->env.rt->path.pool) };

	if (d->we != NULL) {
		metrics_worker_set(g.sessions, g.idle);
		g = metrics_workers_sum(d->we->nworkers);
	}
	fprintf(out, "# TYPE subrelay_sessions gauge\nsubrelay_sessions %u\n", g.sessions);
	fprintf(out, "# TYPE subrelay_upstream_idle gauge\nsubrelay_upstream_idle %u\n", g.idle);
	if (d->env.queue == NULL)
		return;
	fprintf(out, "# TYPE subrelay_queue_depth gauge\nsubrelay_queue_depth %u\n", queue_depth(d->env.queue));
	fprintf(out, "# TYPE subrelay_queue_oldest_age_seconds gauge\nsubrelay_queue_oldest_age_seconds %.0f\n",
	    queue_oldest_age(d->env.queue));
}

static bool start_metrics(struct daemon *d)
{
	const struct relay_cfg *r = &d->env.rt->path.cfg->relay;
	char err[256];

	if (d->we != NULL) {
		if (d->we->metrics_fd >= 0 && (d->metrics = metrics_serve(d->env.loop, d->we->metrics_fd, metrics_gauges, d)) == NULL)
			log_error("metrics: out of memory");
		return d->we->metrics_fd < 0 || d->metrics != NULL;
	}
	if (!r->metrics_on)
		return true;
	d->metrics = metrics_listen(d->env.loop, &r->metrics, metrics_gauges, d, err, sizeof(err));
	if (d->metrics == NULL)
		log_error("metrics: cannot listen: %s", err);
	return d->metrics != NULL;
}

static bool start_control(struct daemon *d)
{
	const char *path = d->env.rt->path.cfg->relay.control;
	char err[512];

	if (d->we != NULL) {
		if (d->we->control.fd < 0)
			return true;
		d->control = control_serve(d->env.loop, path, &d->we->control, false, &control_ops, d, err, sizeof(err));
	} else {
		if (path == NULL || path[0] == '\0')
			return true;
		d->control = control_open(d->env.loop, path, &control_ops, d, err, sizeof(err));
	}
	if (d->control == NULL) {
		log_error("control socket %s: %s", path, err);
		return false;
	}
	if (d->we == NULL)
		log_info("control socket path=%s", path); /* else the master said it */
	return true;
}

/* A worker keeps what it serves and closes the rest of what the master made. */
static bool start_worker(struct daemon *d)
{
	struct worker_env *we = d->we;

	d->listeners = listeners_adopt(&d->env, &we->listen, we->worker);
	listen_fds_close(&we->listen);
	if (we->worker != 0) {
		if (we->control.fd >= 0)
			close(we->control.fd);
		if (we->metrics_fd >= 0)
			close(we->metrics_fd);
		we->control.fd = we->metrics_fd = -1;
		if (we->handoff_rd >= 0)
			close(we->handoff_rd);
		we->handoff_rd = -1;
	} else if (we->handoff_wr >= 0) {
		close(we->handoff_wr);
		we->handoff_wr = -1;
	}
	if (d->listeners == NULL)
		return false;
	ev_timer_init(&d->gauges, on_gauges, 0., GAUGE_INTERVAL);
	d->gauges.data = d;
	ev_timer_start(d->env.loop, &d->gauges);
	return true;
}

/* The daemon in one process: alone (we NULL), or worker we->worker. */
static int run(struct daemon *d, struct config *cfg, SSL_CTX **tls_ctx)
{
	int status = 1;

	d->env.loop = ev_default_loop(EVFLAG_AUTO);
	d->env.nworkers = d->we ? d->we->nworkers : 1;
	d->started = ev_now(d->env.loop);
	d->dns = dns_new(d->env.loop);
	d->env.rt = d->dns ? runtime_new(d->env.loop, d->dns, cfg, tls_ctx, NULL) : NULL;
	if (d->env.rt == NULL) {
		runtime_free_tls_contexts(cfg, tls_ctx);
		config_free(cfg);
		dns_free(d->dns);
		return 1;
	}
	bool queue = config_uses_spool(cfg);
	if (!queue && cfg->relay.nproviders == 0 && cfg->nroutes == 0 && is_owner(d))
		log_warn("no provider configured (relay.providers is empty): mail is refused with 451 until one is");
	bool ok = (!queue || start_queue(d));
	if (ok && d->we != NULL)
		ok = start_worker(d) && start_control(d) && start_metrics(d);
	else if (ok)
		ok = (d->listeners = listeners_open(&d->env)) != NULL && start_control(d) && start_metrics(d) &&
		    privdrop(cfg->relay.user, queue ? cfg->relay.spool : NULL);
	if (ok) {
		install_signals(d);
		if (d->we != NULL) {
			/* The master logs `worker started` and, once all are, tells systemd. */
			struct worker_ready r = { d->we->worker, (int32_t)getpid() };
			if (write(d->we->ready_fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
				log_warn("cannot tell the master this worker is ready: %s", strerror(errno));
			close(d->we->ready_fd);
			d->we->ready_fd = -1;
		} else {
			log_info("started version=%s delivery=%s providers=%u", PACKAGE_VERSION,
			    config_delivery_name(cfg), cfg->nproviders);
			/* Type=notify: ready once listening (a no-op outside systemd). */
			sd_notifyf(0, "READY=1\nSTATUS=delivery=%s providers=%u\nMAINPID=%lu",
			    config_delivery_name(cfg), cfg->nproviders, (unsigned long)getpid());
		}
		ev_run(d->env.loop, 0);
		if (d->we == NULL)
			sd_notify(0, "STOPPING=1");
		status = 0;
	}
	if (d->we != NULL) {
		ev_timer_stop(d->env.loop, &d->rescan);
		ev_io_stop(d->env.loop, &d->handoff);
		ev_timer_stop(d->env.loop, &d->gauges);
		metrics_worker_set(0, 0);
	}
	control_close(d->control);
	metrics_close(d->metrics);
	listeners_close(d->listeners);
	server_close_all(&d->env);
	queue_free(d->env.queue);
	if (d->we == NULL)
		spool_close(d->env.spool); /* a worker's is the master's */
	runtime_unref(d->env.rt);
	dns_free(d->dns);
	return status;
}

int daemon_worker(const struct daemon_args *args, struct config *cfg, SSL_CTX **tls_ctx, struct worker_env *we)
{
	struct daemon d = { .args = *args, .we = we };

	return run(&d, cfg, tls_ctx);
}

int daemon_run(const struct daemon_args *args, struct config *cfg, SSL_CTX **tls_ctx)
{
	struct daemon d = { .args = *args };

	raise_fd_limit();
	unsigned n = workers_wanted(cfg);
	if (n > 1)
		return workers_run(args, cfg, tls_ctx, n);
	return run(&d, cfg, tls_ctx);
}

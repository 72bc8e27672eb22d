/*
 * worker.c: see worker.h.
 */
#include "worker.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ev.h>

#include "control.h"
#include "dns.h"
#include "health.h"
#include "listener.h"
#include "log.h"
#include "maildrop_pickup.h"
#include "metrics.h"
#include "peer_count.h"
#include "pool.h"
#include "queue.h"
#include "runtime.h"
#include "smtp_server.h"
#include "spool.h"

/* Worker 0 looks for messages whose hand-off was lost this often. */
#define RESCAN_INTERVAL 60.
/* Each worker publishes its gauges for worker 0's /metrics this often. */
#define GAUGE_INTERVAL 1.
/* A burst of at least this many clients leaves enough freed memory behind
 * to be worth giving back once it has passed (an eighth of it is left). */
#define TRIM_AFTER_CLIENTS 256
/* Free heap the allocator may keep between messages: without it, glibc
 * gives the top of the heap back (brk) and takes it again for nearly
 * every message, with the page faults that follow. Bursts are given back
 * explicitly (trim_after_burst). */
#define HEAP_KEEP (8 * 1024 * 1024)

struct worker {
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
	struct worker_env *we;
	ev_timer gauges;           /* publish sessions and idle upstream sessions */
	ev_timer rescan;           /* worker 0, queue mode, with others */
	ev_timer maildrop;         /* worker 0, queue and hybrid modes: the drop directory */
	ev_io handoff;             /* worker 0, queue mode, with others: ids they committed */
	char handoff_buf[512];
	size_t handoff_len;
};

/* Worker 0 owns the queue, control and /metrics. */
static bool is_owner(const struct worker *wk)
{
	return wk->we->worker == 0;
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

struct config *worker_load_config(const struct daemon_args *args, const struct config *old, SSL_CTX ***ctx,
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

/* One log line per problem: a message never spans lines. */
static void log_reload_errors(const char *text)
{
	for (const char *line = text; *line != '\0';) {
		size_t n = strcspn(line, "\n");
		log_error("reload failed, keeping the running configuration: %.*s", (int)n, line);
		line += n + (line[n] == '\n');
	}
}

static bool reload_config(struct worker *wk, char *err, size_t errlen)
{
	const struct config *old = wk->env.rt->path.cfg;
	char *text;
	SSL_CTX **ctx;
	struct config *cfg = worker_load_config(&wk->args, old, &ctx, &text);

	if (cfg == NULL) {
		/* Every FILE:LINE: problem goes back to subrelayctl (control.c joins
		 * the lines) and to the log. */
		snprintf(err, errlen, "%s", text ? text : "out of memory");
		log_reload_errors(text ? text : "out of memory");
		free(text);
		return false;
	}
	struct runtime *rt = runtime_new(wk->env.loop, wk->dns, cfg, ctx, wk->env.rt);
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
	runtime_unref(wk->env.rt);
	wk->env.rt = rt;
	log_setup(cfg->relay.log_syslog, cfg->relay.log_level, cfg->relay.log_format);
	log_info("reloaded file=%s providers=%u", cfg->file, cfg->nproviders);
	if (wk->env.queue != NULL)
		queue_reconfigured(wk->env.queue);
	return true;
}

/* SIGHUP and `subrelayctl reload` alike; the parent brackets it. */
static bool reload(struct worker *wk, bool by_control, char *err, size_t errlen)
{
	const struct worker_parent *p = wk->we->parent;

	if (p->reload_begin != NULL)
		p->reload_begin(wk->we);
	bool ok = reload_config(wk, err, errlen);
	if (p->reload_end != NULL)
		p->reload_end(wk->we, ok && by_control);
	return ok;
}

/* ---- control commands ---- */

/* This worker's gauges, fresh, added to the others' last published. */
static struct metrics_worker_gauges gauges_now(struct worker *wk)
{
	metrics_worker_set(wk->env.nclients, pool_idle_count(wk->env.rt->path.pool), ev_now(wk->env.loop));
	return metrics_workers_sum(wk->we->nworkers);
}

static void ctl_status(FILE *out, void *arg)
{
	struct worker *wk = arg;
	const struct config *cfg = wk->env.rt->path.cfg;

	fprintf(out, "version %s\npid %ld\nuptime %.0fs\nconfig %s\ndelivery %s\nsessions %u\nproviders %u\n",
	    PACKAGE_VERSION, (long)wk->we->mainpid, ev_now(wk->env.loop) - wk->started, cfg->file,
	    wk->env.queue ? "queue" : "passthrough", gauges_now(wk).sessions, cfg->nproviders);
	if (wk->we->nworkers > 1)
		fprintf(out, "workers %u\n", wk->we->nworkers);
	if (wk->env.queue != NULL)
		fprintf(out, "queue_depth %u\n", queue_depth(wk->env.queue));
}

static void ctl_queue(FILE *out, void *arg)
{
	struct worker *wk = arg;
	if (wk->env.queue != NULL)
		queue_list(wk->env.queue, out);
	else
		fprintf(out, "delivery = passthrough: nothing is queued\n");
}

static bool ctl_show(const char *id, FILE *out, void *arg)
{
	struct worker *wk = arg;
	return wk->env.queue != NULL && queue_show(wk->env.queue, id, out);
}

static int ctl_flush(const char *id, void *arg)
{
	struct worker *wk = arg;
	return wk->env.queue != NULL ? queue_flush(wk->env.queue, id) : (id ? -1 : 0);
}

static bool ctl_delete(const char *id, void *arg)
{
	struct worker *wk = arg;
	return wk->env.queue != NULL && queue_delete(wk->env.queue, id);
}

static bool ctl_reload(char *err, size_t errlen, void *arg)
{
	return reload(arg, true, err, errlen);
}

/* The message counters are /metrics' own (every worker's), so the two
 * always agree. */
static void ctl_stats(FILE *out, void *arg)
{
	struct worker *wk = arg;

	fprintf(out, "sessions %u\n", gauges_now(wk).sessions);
	metrics_write_messages(out);
	if (wk->env.queue != NULL)
		queue_stats(wk->env.queue, out);
}

/* ---- health (health.h) ---- */

static struct health_view health_view(struct worker *wk)
{
	return (struct health_view){
		.cfg = wk->env.rt->path.cfg,
		.now = ev_now(wk->env.loop),
		.nworkers = wk->we->nworkers,
		.queue = wk->env.queue != NULL,
		.oldest_age = wk->env.queue != NULL ? queue_oldest_age(wk->env.queue) : 0,
	};
}

static void check_provider(unsigned provider, void *arg)
{
	struct worker *wk = arg;
	path_check(&wk->env.rt->path, provider);
}

/* The answer of /readyz and `subrelayctl health`; asking keeps it fresh. */
static bool ready(FILE *out, void *arg)
{
	struct worker *wk = arg;
	struct health_view v = health_view(wk);

	health_stale(&v, check_provider, wk);
	return health_ready(&v, out);
}

static bool live(FILE *out, void *arg)
{
	struct worker *wk = arg;
	struct health_view v = health_view(wk);
	return health_live(&v, out);
}

static void ctl_failed(FILE *out, void *arg)
{
	struct worker *wk = arg;
	if (wk->env.queue != NULL)
		queue_failed_list(wk->env.queue, out);
	else
		fprintf(out, "delivery = passthrough: nothing is queued, so nothing is kept as failed\n");
}

static int ctl_requeue(const char *id, unsigned *left, void *arg)
{
	struct worker *wk = arg;
	*left = 0;
	return wk->env.queue != NULL ? queue_requeue(wk->env.queue, id, left) : (id ? -1 : 0);
}

static const struct control_ops control_ops = {
	.status = ctl_status,
	.queue_list = ctl_queue,
	.show = ctl_show,
	.flush = ctl_flush,
	.remove = ctl_delete,
	.reload = ctl_reload,
	.stats = ctl_stats,
	.failed_list = ctl_failed,
	.requeue = ctl_requeue,
	.health = ready,
};

/* ---- signals and shutdown ---- */

static void on_drain_check(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct worker *wk = w->data;
	unsigned commits = wk->env.queue ? queue_commits_pending(wk->env.queue) : 0;
	(void)revents;

	if (wk->env.nclients == 0 && commits == 0) {
		log_info("stopped: all sessions finished");
		ev_break(loop, EVBREAK_ALL);
	} else if (ev_now(loop) >= wk->drain_deadline) {
		log_warn("stopped: drain_timeout reached with %u sessions still open", wk->env.nclients);
		ev_break(loop, EVBREAK_ALL);
	}
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct worker *wk = w->data;
	const struct config *cfg = wk->env.rt->path.cfg;
	(void)revents;

	if (ev_is_active(&wk->drain_check)) {
		/* A forked worker hears a stop twice when the whole process
		 * group is signalled (the master forwards it too); the master
		 * says SIGQUIT when it means now. */
		if (getpid() != wk->we->mainpid)
			return;
		log_warn("second stop signal: exiting now");
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	log_info("stopping signal=%s sessions=%u drain_timeout=%gs", w->signum == SIGTERM ? "TERM" : "INT",
	    wk->env.nclients, cfg->relay.drain_timeout);
	ev_timer_stop(loop, &wk->rescan);
	ev_timer_stop(loop, &wk->maildrop);
	/* Closed, not just unwatched: new clients get a refusal, not silence. */
	listeners_close(wk->listeners);
	wk->listeners = NULL;
	wk->drain_deadline = ev_now(loop) + cfg->relay.drain_timeout;
	ev_timer_set(&wk->drain_check, 0., 0.1);
	ev_timer_start(loop, &wk->drain_check);
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
	reload(w->data, false, err, sizeof(err));
}

static void install_signals(struct worker *wk)
{
	signal(SIGPIPE, SIG_IGN);
	/* A file-size limit must fail the write (EFBIG, answered 452), not kill us. */
	signal(SIGXFSZ, SIG_IGN);
	ev_signal_init(&wk->sigterm, on_stop_signal, SIGTERM);
	ev_signal_init(&wk->sigint, on_stop_signal, SIGINT);
	ev_signal_init(&wk->sighup, on_hup, SIGHUP);
	ev_signal_init(&wk->sigquit, on_quit_signal, SIGQUIT);
	wk->sigterm.data = wk->sigint.data = wk->sighup.data = wk;
	ev_signal_start(wk->env.loop, &wk->sigterm);
	ev_signal_start(wk->env.loop, &wk->sigint);
	ev_signal_start(wk->env.loop, &wk->sighup);
	ev_signal_start(wk->env.loop, &wk->sigquit);
	ev_init(&wk->drain_check, on_drain_check);
	wk->drain_check.data = wk;
	/* A forked worker starts with these blocked (workers.c): a signal that
	 * came before the watchers existed was kept pending and is handled now. */
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	sigprocmask(SIG_UNBLOCK, &ss, NULL);
}

/* ---- hand-offs from the other workers to worker 0 ---- */

static void handoff_send(const char *id, void *arg)
{
	struct worker *wk = arg;
	char line[ID_LEN + 2];
	int n = snprintf(line, sizeof(line), "%s\n", id);

	/* One write below PIPE_BUF is atomic among writers. If it fails, the
	 * message is still safe in queue/ and worker 0's rescan finds it. */
	if (write(wk->we->handoff_wr, line, (size_t)n) != n)
		log_warn("message id=%s handoff=failed reason=\"%s\" (worker 0 finds it at its next rescan)", id,
		    strerror(errno));
}

static void on_handoff(struct ev_loop *loop, ev_io *w, int revents)
{
	struct worker *wk = w->data;
	(void)revents;

	for (;;) {
		ssize_t n = read(w->fd, wk->handoff_buf + wk->handoff_len, sizeof(wk->handoff_buf) - wk->handoff_len);
		if (n == 0)
			ev_io_stop(loop, w); /* every writer is gone: the master too, we are stopping */
		if (n <= 0)
			return;
		wk->handoff_len += (size_t)n;
		char *start = wk->handoff_buf, *end = wk->handoff_buf + wk->handoff_len, *nl;
		while ((nl = memchr(start, '\n', (size_t)(end - start))) != NULL) {
			*nl = '\0';
			if (wk->env.queue != NULL)
				queue_adopt(wk->env.queue, start);
			start = nl + 1;
		}
		wk->handoff_len = (size_t)(end - start);
		if (wk->handoff_len == sizeof(wk->handoff_buf))
			wk->handoff_len = 0; /* no line is this long: garbage */
		memmove(wk->handoff_buf, start, wk->handoff_len);
	}
}

static void on_rescan(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct worker *wk = w->data;
	(void)loop;
	(void)revents;
	queue_rescan(wk->env.queue);
}

/* The allocator keeps what a burst of clients freed (their sessions,
 * buffers and TLS state) for reuse; give it back to the system once the
 * burst is over, so the daemon's size returns to its quiet size. */
static void trim_after_burst(struct server_env *env)
{
	if (env->clients_peak < TRIM_AFTER_CLIENTS || env->nclients > env->clients_peak / 8)
		return;
	malloc_trim(0);
	log_debug("memory trimmed after a burst of %u clients", env->clients_peak);
	env->clients_peak = env->nclients;
}

static void on_gauges(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct worker *wk = w->data;
	(void)loop;
	(void)revents;
	metrics_worker_set(wk->env.nclients, pool_idle_count(wk->env.rt->path.pool), ev_now(loop));
	trim_after_burst(&wk->env);
}

/* Worker 0 watches the others' hand-offs, and queue/ for any it missed. */
static void start_handoff(struct worker *wk)
{
	ev_io_init(&wk->handoff, on_handoff, wk->we->handoff_rd, EV_READ);
	wk->handoff.data = wk;
	ev_io_start(wk->env.loop, &wk->handoff);
	ev_timer_init(&wk->rescan, on_rescan, RESCAN_INTERVAL, RESCAN_INTERVAL);
	wk->rescan.data = wk;
	ev_timer_start(wk->env.loop, &wk->rescan);
}

static void maildrop_taken(const char *id, void *arg)
{
	struct worker *wk = arg;

	queue_adopt(wk->env.queue, id);
}

/* What subrelay-sendmail dropped while no daemon answered (maildrop.h). */
static void on_maildrop(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct worker *wk = w->data;
	(void)loop;
	(void)revents;
	maildrop_pickup(wk->env.spool, wk->env.rt->path.cfg, maildrop_taken, wk);
}

static void start_maildrop(struct worker *wk)
{
	ev_timer_init(&wk->maildrop, on_maildrop, 0., MAILDROP_INTERVAL);
	wk->maildrop.data = wk;
	ev_timer_start(wk->env.loop, &wk->maildrop);
}

static bool start_queue(struct worker *wk)
{
	char err[512];

	wk->env.spool = wk->we->spool;
	if (!is_owner(wk)) {
		wk->env.queue = queue_new_acceptor(&wk->env.rt, wk->env.spool, handoff_send, wk, err, sizeof(err));
		if (wk->env.queue == NULL)
			log_error("queue: %s", err);
		return wk->env.queue != NULL;
	}
	char *egress = spool_load_egress(wk->env.spool);
	if (egress != NULL)
		path_memory_import(&wk->env.rt->path, egress);
	free(egress);
	wk->env.rt->path.memory_changed = save_egress;
	wk->env.rt->path.memory_arg = wk->env.spool;
	wk->env.queue = queue_new(&wk->env.rt, wk->env.spool, err, sizeof(err));
	if (wk->env.queue == NULL) {
		log_error("queue: %s", err);
		return false;
	}
	if (wk->we->handoff_rd >= 0)
		start_handoff(wk);
	start_maildrop(wk);
	return true;
}

static void metrics_gauges(FILE *out, void *arg)
{
	struct worker *wk = arg;
	struct metrics_worker_gauges g = gauges_now(wk);
	struct health_view v = health_view(wk);
	unsigned depth = wk->env.queue != NULL ? queue_depth(wk->env.queue) : 0;

	fprintf(out, "# TYPE subrelay_sessions gauge\nsubrelay_sessions %u\n", g.sessions);
	fprintf(out, "# TYPE subrelay_upstream_idle gauge\nsubrelay_upstream_idle %u\n", g.idle);
	/* Passthrough queues nothing: 0, so dashboards and alerts need no special case. */
	fprintf(out, "# HELP subrelay_queue_messages Messages in the queue (held ones too).\n"
	    "# TYPE subrelay_queue_messages gauge\nsubrelay_queue_messages %u\n", depth);
	fprintf(out, "# HELP subrelay_queue_oldest_age_seconds Age of the oldest queued message, 0 when empty.\n"
	    "# TYPE subrelay_queue_oldest_age_seconds gauge\nsubrelay_queue_oldest_age_seconds %.0f\n", v.oldest_age);
	health_write_gauges(&v, out);
	if (wk->env.queue == NULL)
		return;
	fprintf(out, "# TYPE subrelay_queue_depth gauge\nsubrelay_queue_depth %u\n", depth);
	fprintf(out, "# TYPE subrelay_failed_messages gauge\nsubrelay_failed_messages %u\n",
	    queue_failed_count(wk->env.queue));
}

static bool start_metrics(struct worker *wk)
{
	if (wk->we->metrics_fd < 0)
		return true;
	struct metrics_handlers h = { .gauges = metrics_gauges, .live = live, .ready = ready, .arg = wk };

	wk->metrics = metrics_serve(wk->env.loop, wk->we->metrics_fd, &h);
	if (wk->metrics == NULL) {
		log_error("metrics: out of memory");
		return false;
	}
	wk->we->metrics_fd = -1; /* metrics_close() closes it */
	return true;
}

static bool start_control(struct worker *wk)
{
	const char *path = wk->env.rt->path.cfg->relay.control;

	if (wk->we->control.fd < 0)
		return true;
	wk->control = control_serve(wk->env.loop, &wk->we->control, &control_ops, wk);
	if (wk->control == NULL) {
		log_error("control socket %s: out of memory", path);
		return false;
	}
	log_debug("control listening path=%s", path);
	return true;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* A worker accepts on its own sockets and closes what was bound for the
 * others: the listeners of every worker, and what only worker 0 serves. */
static bool start_listeners(struct worker *wk)
{
	struct worker_env *we = wk->we;

	wk->listeners = listeners_serve(&wk->env, &we->listen, we->worker);
	listen_fds_close(&we->listen);
	if (is_owner(wk)) {
		close_fd(&we->handoff_wr);
	} else {
		close_fd(&we->control.fd);
		close_fd(&we->metrics_fd);
		close_fd(&we->handoff_rd);
	}
	return wk->listeners != NULL;
}

static bool start(struct worker *wk, const struct config *cfg)
{
	bool queue = config_uses_spool(cfg);

	if (!queue && cfg->relay.nproviders == 0 && cfg->nroutes == 0 && is_owner(wk))
		log_warn("no provider configured (relay.providers is empty): mail is refused with 451 until one is");
	if ((queue && !start_queue(wk)) || !start_listeners(wk) || !start_control(wk) || !start_metrics(wk))
		return false;
	install_signals(wk);
	ev_timer_init(&wk->gauges, on_gauges, 0., GAUGE_INTERVAL);
	wk->gauges.data = wk;
	ev_timer_start(wk->env.loop, &wk->gauges);
	return true;
}

int worker_run(const struct daemon_args *args, struct config *cfg, SSL_CTX **tls_ctx, struct worker_env *we)
{
	struct worker wk = { .args = *args, .we = we };
	int status = 1;

	mallopt(M_TRIM_THRESHOLD, HEAP_KEEP);
	wk.env.loop = ev_default_loop(EVFLAG_AUTO);
	wk.env.nworkers = we->nworkers;
	wk.started = ev_now(wk.env.loop);
	wk.dns = dns_new(wk.env.loop);
	wk.env.per_ip = peer_count_new();
	wk.env.rt = wk.dns && wk.env.per_ip ? runtime_new(wk.env.loop, wk.dns, cfg, tls_ctx, NULL) : NULL;
	if (wk.env.rt == NULL) {
		runtime_free_tls_contexts(cfg, tls_ctx);
		config_free(cfg);
		dns_free(wk.dns);
		peer_count_free(wk.env.per_ip);
		return 1;
	}
	if (start(&wk, cfg)) {
		if (we->parent->serving != NULL)
			we->parent->serving(we, cfg);
		ev_run(wk.env.loop, 0);
		status = 0;
	}
	ev_timer_stop(wk.env.loop, &wk.rescan);
	ev_timer_stop(wk.env.loop, &wk.maildrop);
	ev_io_stop(wk.env.loop, &wk.handoff);
	ev_timer_stop(wk.env.loop, &wk.gauges);
	metrics_worker_set(0, 0, 0);
	control_close(wk.control);
	metrics_close(wk.metrics);
	listeners_close(wk.listeners);
	server_close_all(&wk.env);
	peer_count_free(wk.env.per_ip);
	queue_free(wk.env.queue);
	runtime_unref(wk.env.rt);
	dns_free(wk.dns);
	return status;
}

/*
 * workers.c: see workers.h. The master has no libev loop (the workers
 * create theirs after fork, untouched by ours): it waits in poll() on a
 * signalfd and on the pipe through which workers report that they
 * serve, with a timeout for the next due restart.
 */
#include "workers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "metrics.h"
#include "peer_count.h"
#include "runtime.h"

/* A worker that died is started again after this long (no spinning on a crash loop). */
#define RESTART_DELAY 1.0

struct worker_proc {
	pid_t pid;                 /* 0: not running */
	bool started;              /* has reported once since its fork */
	double restart_at;         /* > 0: start again at this (monotonic) time */
};

/* Said once by a worker that serves; the pid tells a replacement from
 * the one that died after writing. */
struct worker_ready {
	uint32_t worker;
	int32_t pid;
};

struct master {
	struct daemon_args args;
	struct config *cfg;        /* the last good configuration, for (re)starting workers */
	SSL_CTX **ctx;
	unsigned n, nstarted;
	struct worker_proc *w;
	struct worker_env *we;     /* what the startup bound; each worker gets a copy at fork */
	int sigfd;
	int ready_rd, ready_wr;    /* workers write a struct worker_ready once they serve */
	sigset_t blocked;
	bool stopping, announced;
	bool failed;               /* a worker could not start: exit 1 */
};

unsigned workers_wanted(const struct config *cfg)
{
	long n = cfg->relay.workers;

	if (n == 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > METRICS_WORKERS_MAX)
		n = METRICS_WORKERS_MAX;
	return (unsigned)n;
}

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the worker's side, after fork ---- */

static void forked_serving(struct worker_env *we, const struct config *cfg)
{
	struct master *m = we->parent_arg;
	struct worker_ready r = { we->worker, (int32_t)getpid() };
	(void)cfg;

	/* The master logs `worker started` and, once all are, tells systemd. */
	if (write(m->ready_wr, &r, sizeof(r)) != (ssize_t)sizeof(r))
		log_warn("cannot tell the master this worker is ready: %s", strerror(errno));
	close(m->ready_wr);
	m->ready_wr = -1;
}

/* A control reload reloaded worker 0 only: SIGUSR1 asks the master to
 * reload the others (a SIGHUP to the master would reload this one twice). */
static void forked_reload_end(struct worker_env *we, bool others)
{
	if (others && getppid() == we->mainpid && kill(we->mainpid, SIGUSR1) < 0)
		log_warn("cannot ask the master to reload the other workers: %s", strerror(errno));
}

/* systemd hears about reloads from the master, which is MAINPID. */
static const struct worker_parent forked = {
	.serving = forked_serving,
	.reload_end = forked_reload_end,
};

/* ---- starting workers ---- */

static void start_worker(struct master *m, unsigned k)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_error("cannot start worker=%u: fork: %s; trying again in %gs", k, strerror(errno), RESTART_DELAY);
		m->w[k].restart_at = now_mono() + RESTART_DELAY;
		return;
	}
	if (pid == 0) {
		/* A worker stops (draining as on SIGTERM) when its master goes. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != m->we->mainpid)
			_exit(1);
		close(m->sigfd);
		close(m->ready_rd);
		/* TERM, INT and HUP stay blocked until the worker's loop watches
		 * them (worker.c unblocks them then), so a signal that comes early
		 * waits instead of killing the worker. */
		log_set_worker((int)k);
		metrics_set_worker(k);
		peer_count_set_worker(k);
		m->we->worker = k;
		exit(worker_run(&m->args, m->cfg, m->ctx, m->we));
	}
	m->w[k].pid = pid;
	m->w[k].started = false;
	m->w[k].restart_at = 0;
}

/* A worker reports its index once it serves. */
static void on_ready(struct master *m)
{
	struct worker_ready r;

	while (read(m->ready_rd, &r, sizeof(r)) == (ssize_t)sizeof(r)) {
		uint32_t k = r.worker;
		if (k >= m->n || m->w[k].pid != r.pid || m->w[k].started)
			continue;
		m->w[k].started = true;
		log_info("worker started worker=%u pid=%ld", k, (long)m->w[k].pid);
		if (!m->announced && ++m->nstarted == m->n) {
			m->announced = true;
			log_info("started version=%s delivery=%s providers=%u workers=%u", PACKAGE_VERSION,
			    config_delivery_name(m->cfg), m->cfg->nproviders, m->n);
			sd_notifyf(0, "READY=1\nSTATUS=delivery=%s providers=%u workers=%u\nMAINPID=%lu",
			    config_delivery_name(m->cfg), m->cfg->nproviders, m->n, (unsigned long)getpid());
		}
	}
}

static void describe_status(char *out, size_t n, int status)
{
	if (WIFEXITED(status))
		snprintf(out, n, "exit:%d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, n, "signal:%s", sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
	else
		snprintf(out, n, "unknown:%d", status);
}

static void signal_workers(struct master *m, int signo, unsigned from);

static void reap(struct master *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		char how[32];
		unsigned k = 0;
		while (k < m->n && m->w[k].pid != pid)
			k++;
		if (k == m->n)
			continue;
		describe_status(how, sizeof(how), status);
		m->w[k].pid = 0;
		metrics_worker_clear(k);
		peer_count_worker_gone(k);
		if (m->stopping) {
			log_info("worker exited worker=%u pid=%ld status=%s", k, (long)pid, how);
			continue;
		}
		if (!m->announced && !m->w[k].started) {
			/* It could not even start (what a single process would exit
			 * 1 for): restarting it would only loop. Stop everything. */
			log_error("worker exited worker=%u pid=%ld status=%s before serving: stopping", k, (long)pid, how);
			m->stopping = m->failed = true;
			signal_workers(m, SIGTERM, 0);
			continue;
		}
		log_error("worker exited worker=%u pid=%ld status=%s; restarting it in %gs", k, (long)pid, how,
		    RESTART_DELAY);
		m->w[k].restart_at = now_mono() + RESTART_DELAY;
	}
}

/* ---- signals ---- */

static void signal_workers(struct master *m, int signo, unsigned from)
{
	for (unsigned k = from; k < m->n; k++)
		if (m->w[k].pid > 0)
			kill(m->w[k].pid, signo);
}

/* Keeps the file's newest good configuration for workers started later.
 * The workers report a broken file themselves. */
static void reload_master(struct master *m)
{
	char *text;
	SSL_CTX **ctx;
	struct config *cfg = worker_load_config(&m->args, m->cfg, &ctx, &text);

	if (cfg == NULL) {
		log_debug("master: reload failed, workers started later keep the previous configuration");
		free(text);
		return;
	}
	runtime_free_tls_contexts(m->cfg, m->ctx);
	config_free(m->cfg);
	m->cfg = cfg;
	m->ctx = ctx;
	log_setup(cfg->relay.log_syslog, cfg->relay.log_level, cfg->relay.log_format);
}

static void on_signal(struct master *m, const struct signalfd_siginfo *si)
{
	switch (si->ssi_signo) {
	case SIGCHLD:
		reap(m);
		break;
	case SIGTERM:
	case SIGINT:
		if (!m->stopping) {
			m->stopping = true;
			log_info("stopping signal=%s workers=%u", si->ssi_signo == SIGTERM ? "TERM" : "INT", m->n);
			sd_notify(0, "STOPPING=1");
			/* Once the workers close theirs, new clients are refused. */
			listen_fds_close(&m->we->listen);
			signal_workers(m, (int)si->ssi_signo, 0);
		} else {
			/* A second one is for the master: the workers stop now. A
			 * worker's own repeats are ignored, since `systemctl stop`
			 * signals every process of the group besides the master. */
			log_warn("second stop signal: the workers exit now");
			signal_workers(m, SIGQUIT, 0);
		}
		break;
	case SIGHUP:
		sd_notify(0, "RELOADING=1");
		signal_workers(m, SIGHUP, 0);
		reload_master(m);
		sd_notify(0, "READY=1");
		break;
	case SIGUSR1:
		/* Worker 0 reloaded itself for `subrelayctl reload`: now the others. */
		if (m->w[0].pid <= 0 || (pid_t)si->ssi_pid != m->w[0].pid)
			break;
		signal_workers(m, SIGHUP, 1);
		reload_master(m);
		break;
	default:
		break;
	}
}

/* ---- the master's loop ---- */

static bool any_alive(const struct master *m)
{
	for (unsigned k = 0; k < m->n; k++)
		if (m->w[k].pid > 0)
			return true;
	return false;
}

static void supervise(struct master *m)
{
	while (!m->stopping || any_alive(m)) {
		double now = now_mono(), next = -1;
		for (unsigned k = 0; k < m->n && !m->stopping; k++) {
			if (m->w[k].pid != 0 || m->w[k].restart_at <= 0)
				continue;
			if (m->w[k].restart_at <= now)
				start_worker(m, k);
			else if (next < 0 || m->w[k].restart_at < next)
				next = m->w[k].restart_at;
		}
		struct pollfd pfd[2] = { { .fd = m->sigfd, .events = POLLIN }, { .fd = m->ready_rd, .events = POLLIN } };
		int timeout = next < 0 ? -1 : (int)((next - now) * 1000) + 1;
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
			log_error("master: poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents & POLLIN)
			on_ready(m);
		struct signalfd_siginfo si;
		while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			on_signal(m, &si);
	}
}

/* ---- setup ---- */

/* Queue mode: ids committed by workers 1..N-1 go to worker 0. */
static bool open_handoff(struct master *m)
{
	int fds[2];

	if (!config_uses_spool(m->cfg))
		return true;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		log_error("handoff pipe: %s", strerror(errno));
		return false;
	}
	m->we->handoff_rd = fds[0];
	m->we->handoff_wr = fds[1];
	return true;
}

static bool setup_master(struct master *m)
{
	int fds[2];

	sigemptyset(&m->blocked);
	sigaddset(&m->blocked, SIGTERM);
	sigaddset(&m->blocked, SIGINT);
	sigaddset(&m->blocked, SIGHUP);
	sigaddset(&m->blocked, SIGCHLD);
	sigaddset(&m->blocked, SIGUSR1);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &m->blocked, NULL) < 0 ||
	    (m->sigfd = signalfd(-1, &m->blocked, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		log_error("master: signals: %s", strerror(errno));
		return false;
	}
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		log_error("master: pipe: %s", strerror(errno));
		return false;
	}
	m->ready_rd = fds[0];
	m->ready_wr = fds[1];
	return true;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int workers_run(const struct daemon_args *args, struct config *cfg, SSL_CTX **tls_ctx, struct worker_env *we)
{
	struct master m = {
		.args = *args,
		.cfg = cfg,
		.ctx = tls_ctx,
		.n = we->nworkers,
		.we = we,
		.sigfd = -1,
		.ready_rd = -1,
		.ready_wr = -1,
	};
	int status = 1;

	/* Before the first fork, so that every worker counts into one block. */
	if (!metrics_init_shared())
		log_warn("metrics: no shared memory (%s): /metrics counts worker 0 only", strerror(errno));
	if (!peer_count_share(m.n))
		log_warn("max_clients_per_ip: no shared memory (%s): each worker counts its own sessions",
		    strerror(errno));
	we->parent = &forked;
	we->parent_arg = &m;
	m.w = calloc(m.n, sizeof(*m.w));
	if (m.w != NULL && open_handoff(&m) && setup_master(&m)) {
		for (unsigned k = 0; k < m.n; k++)
			start_worker(&m, k);
		supervise(&m);
		status = m.stopping && !m.failed ? 0 : 1;
		log_info("stopped: all workers exited");
	} else if (m.w == NULL) {
		log_error("out of memory");
	}
	/* Only after a failure: normally every worker has exited. */
	for (unsigned k = 0; m.w != NULL && k < m.n; k++) {
		if (m.w[k].pid > 0) {
			kill(m.w[k].pid, SIGKILL);
			waitpid(m.w[k].pid, NULL, 0);
		}
	}
	close_fd(&we->handoff_rd);
	close_fd(&we->handoff_wr);
	close_fd(&m.ready_wr);
	close_fd(&m.ready_rd);
	close_fd(&m.sigfd);
	free(m.w);
	runtime_free_tls_contexts(m.cfg, m.ctx);
	config_free(m.cfg);
	return status;
}

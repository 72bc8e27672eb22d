/*
 * daemon.c: see daemon.h.
 */
#include "daemon.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "maildrop_pickup.h"
#include "metrics.h"
#include "privdrop.h"
#include "runtime.h"
#include "worker.h"
#include "workers.h"

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

/* ---- binding, while we may still be root ---- */

/* On success *control_path is the socket file to remove at exit (NULL: none). */
static bool bind_all(const struct config *cfg, struct worker_env *we, char **control_path)
{
	const struct relay_cfg *r = &cfg->relay;
	char err[512];

	if (config_uses_spool(cfg) && (we->spool = spool_open(r->spool, err, sizeof(err))) == NULL) {
		log_error("spool: %s", err);
		return false;
	}
	/* Not fatal: the daemon works without it, only sendmail's fallback does not. */
	if (we->spool != NULL && !maildrop_prepare(r->spool, err, sizeof(err)))
		log_warn("maildrop: %s (subrelay-sendmail cannot leave mail while the daemon is down)", err);
	if (!listen_fds_bind(r, we->nworkers, &we->listen))
		return false;
	if (r->control != NULL && r->control[0] != '\0') {
		if (!control_bind(r->control, &we->control, err, sizeof(err))) {
			log_error("control socket %s: %s", r->control, err);
			return false;
		}
		if ((*control_path = strdup(r->control)) == NULL) {
			control_socket_remove(r->control, &we->control);
			log_error("out of memory");
			return false;
		}
		log_info("control socket path=%s", r->control);
	}
	if (r->metrics_on && (we->metrics_fd = metrics_bind(&r->metrics, err, sizeof(err))) < 0) {
		log_error("metrics: cannot listen: %s", err);
		return false;
	}
	return true;
}

/* What the workers left open (all of it after a failure). */
static void unbind_all(struct worker_env *we, const char *control_path)
{
	listen_fds_close(&we->listen);
	if (control_path != NULL)
		control_socket_remove(control_path, &we->control);
	if (we->metrics_fd >= 0)
		close(we->metrics_fd);
	we->metrics_fd = -1;
	spool_close(we->spool);
	we->spool = NULL;
}

/* ---- one worker in this process: it is what systemd sees ---- */

static void alone_serving(struct worker_env *we, const struct config *cfg)
{
	(void)we;
	log_info("started version=%s delivery=%s providers=%u", PACKAGE_VERSION, config_delivery_name(cfg),
	    cfg->nproviders);
	/* Type=notify: ready once listening (a no-op outside systemd). */
	sd_notifyf(0, "READY=1\nSTATUS=delivery=%s providers=%u\nMAINPID=%lu", config_delivery_name(cfg),
	    cfg->nproviders, (unsigned long)getpid());
}

/* systemd's Type=notify-reload protocol brackets a reload like this. */
static void alone_reload_begin(struct worker_env *we)
{
	(void)we;
	sd_notify(0, "RELOADING=1");
}

/* A worker alone has no others to make follow. */
static void alone_reload_end(struct worker_env *we, bool others)
{
	(void)we;
	(void)others;
	sd_notify(0, "READY=1");
}

static const struct worker_parent alone = {
	.serving = alone_serving,
	.reload_begin = alone_reload_begin,
	.reload_end = alone_reload_end,
};

static int run_alone(const struct daemon_args *args, struct config *cfg, SSL_CTX **tls_ctx, struct worker_env *we)
{
	we->parent = &alone;
	int status = worker_run(args, cfg, tls_ctx, we);
	if (status == 0)
		sd_notify(0, "STOPPING=1");
	return status;
}

int daemon_run(const struct daemon_args *args, struct config *cfg, SSL_CTX **tls_ctx)
{
	unsigned n = workers_wanted(cfg);
	struct worker_env we = {
		.nworkers = n,
		.mainpid = getpid(),
		.control = { .fd = -1 },
		.metrics_fd = -1,
		.handoff_rd = -1,
		.handoff_wr = -1,
	};
	char *control_path = NULL;
	int status = 1;

	raise_fd_limit();
	if (n > 1)
		log_info("workers=%u delivery=%s: this process supervises, the workers serve", n,
		    config_delivery_name(cfg));
	if (bind_all(cfg, &we, &control_path) &&
	    privdrop(cfg->relay.user, config_uses_spool(cfg) ? cfg->relay.spool : NULL, control_path)) {
		status = n > 1 ? workers_run(args, cfg, tls_ctx, &we) : run_alone(args, cfg, tls_ctx, &we);
	} else {
		runtime_free_tls_contexts(cfg, tls_ctx);
		config_free(cfg);
	}
	unbind_all(&we, control_path);
	free(control_path);
	return status;
}

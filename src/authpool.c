/*
 * authpool.c: see authpool.h.
 *
 * Jobs go to the threads on a `todo` list and come back on a `done` list,
 * both under one mutex; everything else about a job (cancelled, the delay
 * timer) belongs to the loop's thread alone. A cancelled job still in the
 * threads' hands is freed when it comes back.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* explicit_bzero */
#endif
#include "authpool.h"

#include <crypt.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "log.h"

#define PASS_MAX 256

enum job_state { JOB_QUEUED, JOB_DELAYED };

struct auth_job {
	struct auth_job *next;
	enum job_state state;
	bool cancelled;
	bool decoy;
	bool ok;
	char *hash;
	char password[PASS_MAX + 1];
	ev_timer delay;
	struct ev_loop *loop;
	auth_done_fn done;
	void *arg;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct auth_job *todo, *todo_tail, *done;
	unsigned pending;      /* queued or being checked (loop's count) */
	struct ev_loop *loop;
	ev_async wake;
	bool started;
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void job_free(struct auth_job *job)
{
	free(job->hash);
	explicit_bzero(job->password, sizeof(job->password));
	free(job);
}

static bool check_password(struct crypt_data *cd, const struct auth_job *job)
{
	const char *out = crypt_r(job->password, job->hash, cd);
	size_t n = strlen(job->hash);

	/* libxcrypt answers "*0"/"*1" (never the hash) on a bad setting. */
	return out != NULL && strlen(out) == n && CRYPTO_memcmp(out, job->hash, n) == 0;
}

static void *worker(void *unused)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));

	(void)unused;
	for (;;) {
		pthread_mutex_lock(&pool.mu);
		while (pool.todo == NULL)
			pthread_cond_wait(&pool.cv, &pool.mu);
		struct auth_job *job = pool.todo;
		pool.todo = job->next;
		if (pool.todo == NULL)
			pool.todo_tail = NULL;
		pthread_mutex_unlock(&pool.mu);

		bool ok = cd != NULL && check_password(cd, job) && !job->decoy;
		explicit_bzero(job->password, sizeof(job->password));
		if (cd != NULL)
			explicit_bzero(cd, sizeof(*cd));

		pthread_mutex_lock(&pool.mu);
		job->ok = ok;
		job->next = pool.done;
		pool.done = job;
		pthread_mutex_unlock(&pool.mu);
		ev_async_send(pool.loop, &pool.wake);
	}
	return NULL;
}

static void on_delay(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct auth_job *job = w->data;

	(void)loop;
	(void)revents;
	job->done(job->arg, false);
	job_free(job);
}

/* Answers come back in the loop: a success at once, a failure later. */
static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)w;
	(void)revents;
	pthread_mutex_lock(&pool.mu);
	struct auth_job *list = pool.done;
	pool.done = NULL;
	pthread_mutex_unlock(&pool.mu);
	while (list != NULL) {
		struct auth_job *job = list;
		list = job->next;
		pool.pending--;
		if (job->cancelled) {
			job_free(job);
		} else if (job->ok) {
			job->done(job->arg, true);
			job_free(job);
		} else {
			job->state = JOB_DELAYED;
			ev_timer_init(&job->delay, on_delay, AUTHPOOL_FAIL_DELAY, 0);
			job->delay.data = job;
			ev_timer_start(loop, &job->delay);
		}
	}
}

/* The threads start in the process that serves clients, on first use
 * (never before a fork); they take no signals, the loop's thread does. */
static bool pool_start(struct ev_loop *loop)
{
	sigset_t all, old;
	unsigned started = 0;

	pool.loop = loop;
	ev_async_init(&pool.wake, on_wake);
	ev_async_start(loop, &pool.wake);
	ev_unref(loop); /* the pool alone does not keep the loop running */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < AUTHPOOL_THREADS; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, worker, NULL) == 0 && pthread_detach(t) == 0)
			started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started == 0)
		log_error("authpool: cannot start a verification thread");
	pool.started = started > 0;
	return pool.started;
}

struct auth_job *authpool_verify(struct ev_loop *loop, const char *hash, bool decoy, const char *password,
    auth_done_fn done, void *arg)
{
	if (!pool.started && (pool.loop != NULL || !pool_start(loop)))
		return NULL;
	if (pool.pending >= AUTHPOOL_MAX_PENDING || strlen(password) > PASS_MAX)
		return NULL;
	struct auth_job *job = calloc(1, sizeof(*job));
	if (job == NULL || (job->hash = strdup(hash)) == NULL) {
		free(job);
		return NULL;
	}
	memcpy(job->password, password, strlen(password) + 1);
	job->decoy = decoy;
	job->loop = loop;
	job->done = done;
	job->arg = arg;
	pool.pending++;
	pthread_mutex_lock(&pool.mu);
	if (pool.todo_tail != NULL)
		pool.todo_tail->next = job;
	else
		pool.todo = job;
	pool.todo_tail = job;
	pthread_cond_signal(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	return job;
}

void authpool_cancel(struct auth_job *job)
{
	if (job == NULL)
		return;
	if (job->state == JOB_DELAYED) {
		ev_timer_stop(job->loop, &job->delay);
		job_free(job);
		return;
	}
	job->cancelled = true; /* freed by on_wake when the threads give it back */
}

/*
 * commit.c: see commit.h. Two lists under one mutex: `todo` (submitted,
 * not yet durable) and `done` (results for the loop).
 */
#include "commit.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct commit_job {
	struct spool_writer *w;
	char id[ID_LEN + 1];
	bool ok;
	int err;
	struct commit_job *next;
};

struct committer {
	struct ev_loop *loop;
	struct spool *sp;
	commit_cb done_cb;
	void *arg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct commit_job *todo, *done;
	bool stopping;
	ev_async notify;
};

static struct commit_job *reverse(struct commit_job *j)
{
	struct commit_job *r = NULL;
	while (j != NULL) {
		struct commit_job *next = j->next;
		j->next = r;
		r = j;
		j = next;
	}
	return r;
}

/* One batch: each file made durable and renamed, then one directory fsync. */
static void commit_batch(struct committer *c, struct commit_job *batch)
{
	bool any = false;

	for (struct commit_job *j = batch; j != NULL; j = j->next) {
		j->ok = spool_finish(j->w);
		j->err = j->ok ? 0 : errno;
		if (!j->ok)
			spool_discard(j->w);
		any |= j->ok;
	}
	if (any && !spool_sync_queue_dir(c->sp)) {
		/* The renames may not survive a crash: nobody may be told "queued",
		 * and what was renamed goes, or it would be delivered anyway. */
		int err = errno;
		for (struct commit_job *j = batch; j != NULL; j = j->next) {
			if (j->ok)
				spool_remove(c->sp, j->id);
			j->ok = false;
			j->err = err;
		}
	}
}

static void *worker(void *arg)
{
	struct committer *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (c->todo == NULL && !c->stopping)
			pthread_cond_wait(&c->wake, &c->lock);
		if (c->todo == NULL && c->stopping)
			break;
		struct commit_job *batch = reverse(c->todo);
		c->todo = NULL;
		pthread_mutex_unlock(&c->lock);
		commit_batch(c, batch);
		pthread_mutex_lock(&c->lock);
		struct commit_job *last = batch;
		while (last->next != NULL)
			last = last->next;
		last->next = c->done;
		c->done = batch;
		pthread_mutex_unlock(&c->lock);
		ev_async_send(c->loop, &c->notify);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void deliver_results(struct committer *c)
{
	pthread_mutex_lock(&c->lock);
	struct commit_job *list = reverse(c->done);
	c->done = NULL;
	pthread_mutex_unlock(&c->lock);
	while (list != NULL) {
		struct commit_job *j = list;
		list = j->next;
		spool_writer_free(j->w);
		c->done_cb(j->id, j->ok, j->err, c->arg);
		free(j);
	}
}

static void on_notify(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)revents;
	deliver_results(w->data);
}

struct committer *committer_new(struct ev_loop *loop, struct spool *sp, commit_cb done, void *arg)
{
	struct committer *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->loop = loop;
	c->sp = sp;
	c->done_cb = done;
	c->arg = arg;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	ev_async_init(&c->notify, on_notify);
	c->notify.data = c;
	ev_async_start(loop, &c->notify);
	/* The thread must not take the loop's signals. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int err = pthread_create(&c->thread, NULL, worker, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		log_error("cannot start the commit thread: %s", strerror(err));
		ev_async_stop(loop, &c->notify);
		free(c);
		return NULL;
	}
	return c;
}

void committer_free(struct committer *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	deliver_results(c);
	ev_async_stop(c->loop, &c->notify);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

bool committer_submit(struct committer *c, struct spool_writer *w)
{
	struct commit_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return false;
	j->w = w;
	snprintf(j->id, sizeof(j->id), "%s", spool_writer_id(w));
	pthread_mutex_lock(&c->lock);
	j->next = c->todo;
	c->todo = j;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	return true;
}

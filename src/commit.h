/*
 * commit: makes received messages durable without blocking the loop.
 *
 * A worker thread takes every finished spool_writer submitted so far,
 * fsyncs and renames each into queue/, then fsyncs the queue directory
 * once for the whole batch (group commit: concurrent sessions share the
 * directory fsync), and hands the results back to the loop through an
 * ev_async. Only then does anyone answer 250.
 */
#ifndef SUBRELAY_COMMIT_H
#define SUBRELAY_COMMIT_H

#include <stdbool.h>
#include <ev.h>

#include "spool.h"

struct committer;
struct commit_job;

/* ok false: err is the errno of the failed step; the file is gone. */
typedef void (*commit_cb)(const char *id, bool ok, int err, void *arg);

struct committer *committer_new(struct ev_loop *loop, struct spool *sp, commit_cb done, void *arg);
/* Waits for jobs in flight (their callbacks still run), then stops the thread. */
void committer_free(struct committer *c);
/* Takes ownership of w; `done` is called on the loop when it is durable.
 * False (out of memory, w still the caller's): nothing will be called. */
bool committer_submit(struct committer *c, struct spool_writer *w);

#endif

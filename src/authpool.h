/*
 * authpool: password verification off the event loop.
 *
 * crypt(3) is slow on purpose (yescrypt: milliseconds of CPU and memory),
 * so the loop never calls it: a small fixed pool of threads (started in
 * the serving process on first use) runs crypt_r() and wakes the loop
 * through an ev_async; the answer is delivered from the loop. At most
 * AUTHPOOL_MAX_PENDING checks wait per process (a flood of AUTH gets a
 * temporary refusal instead of a queue), and a wrong password is answered
 * only after AUTHPOOL_FAIL_DELAY (slows guessing without blocking anyone).
 * The threads touch nothing but their job's copies of the hash and the
 * password; the caller may cancel a job at any time (its client left).
 */
#ifndef SUBRELAY_AUTHPOOL_H
#define SUBRELAY_AUTHPOOL_H

#include <stdbool.h>
#include <ev.h>

#define AUTHPOOL_THREADS 2
#define AUTHPOOL_MAX_PENDING 32
#define AUTHPOOL_FAIL_DELAY 1.0

struct auth_job;
/* ok: the password matches the hash. Called once, from the loop. */
typedef void (*auth_done_fn)(void *arg, bool ok);

/*
 * Checks password against hash; with decoy set (an unknown user: hash is
 * then another user's), the work is the same and the answer is no. NULL
 * when too many checks are pending or the pool cannot start.
 */
struct auth_job *authpool_verify(struct ev_loop *loop, const char *hash, bool decoy, const char *password,
    auth_done_fn done, void *arg);
/* The caller no longer wants the answer: done() will not be called. */
void authpool_cancel(struct auth_job *job);

#endif

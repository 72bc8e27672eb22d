/*
 * body_pump: a message body from the client's input to the backend.
 *
 * The client's bytes go through the canonicaliser (smtp_data.h) straight
 * into the backend's buffer (tx.h body_space/body_commit), so no copy of
 * the message is kept: when the backend has no room the pump stops, the
 * client's input buffer fills and reading from the client stops. A body
 * that will not be delivered is still read to its terminator and dropped,
 * so that the client's next command is found.
 *
 * It moves one chunk per call: a backend may fail inside body_commit,
 * and the session must see that (and stop feeding it) before the next.
 */
#ifndef SUBRELAY_BODY_PUMP_H
#define SUBRELAY_BODY_PUMP_H

#include "buf.h"
#include "smtp_data.h"
#include "tx.h"

enum body_pump_status {
	BODY_PUMP_WAIT,  /* the input is used up, or the backend has no room (its resume event follows) */
	BODY_PUMP_MOVED, /* a chunk went on: call again */
	BODY_PUMP_END,   /* the terminator was read; what follows it stays in the input */
};

/* Moves a chunk of the body in `in` to `to`, or drops it when `to` is
 * NULL; d counts both sides' bytes, and tx->bytes follows the canonical
 * size. */
enum body_pump_status body_pump(struct smtp_data *d, struct buf *in, const struct backend *to, struct tx *tx);

#endif

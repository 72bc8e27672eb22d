/*
 * body_pump.c: see body_pump.h.
 */
#include "body_pump.h"

enum body_pump_status body_pump(struct smtp_data *d, struct buf *in, const struct backend *to, struct tx *tx)
{
	char scratch[16384]; /* a dropped body is still canonicalised: its size is logged */
	char *out = scratch;
	size_t room = sizeof(scratch), produced;

	if (d->done)
		return BODY_PUMP_END;
	if (buf_empty(in))
		return BODY_PUMP_WAIT;
	if (to != NULL) {
		out = to->ops->body_space(to->impl, SMTP_DATA_MAX_EXPANSION, &room);
		if (room < SMTP_DATA_MAX_EXPANSION)
			return BODY_PUMP_WAIT;
	}
	buf_consume(in, smtp_data_feed(d, buf_peek(in), buf_len(in), out, room, &produced));
	tx->bytes = d->out_bytes;
	if (to != NULL)
		to->ops->body_commit(to->impl, tx, produced);
	return BODY_PUMP_MOVED;
}

/*
 * buf: a bounded byte buffer.
 *
 * Owns one heap block of at most `limit` bytes, allocated on first use
 * and released by buf_release() so idle sessions cost nothing. Bytes are
 * appended at the tail and consumed from the head; buf_compact() moves
 * the unread bytes to the front. It never grows past its limit: callers
 * ask buf_room() first and back-pressure their peer when it is full.
 */
#ifndef SUBRELAY_BUF_H
#define SUBRELAY_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t head;  /* first unread byte */
	size_t tail;  /* one past the last byte */
	size_t limit; /* capacity once allocated */
};

void buf_init(struct buf *b, size_t limit);
/* Frees the block; the buffer must be empty or the bytes are dropped. */
void buf_release(struct buf *b);

static inline size_t buf_len(const struct buf *b) { return b->tail - b->head; }
static inline const char *buf_peek(const struct buf *b) { return b->data + b->head; }
static inline bool buf_empty(const struct buf *b) { return b->tail == b->head; }

/* Free space at the tail after compaction; allocates the block if needed.
 * Returns 0 when the allocation fails or the buffer is full. */
size_t buf_room(struct buf *b);
/* Pointer to write up to buf_room() bytes; call buf_commit() after. */
char *buf_tail(struct buf *b);
void buf_commit(struct buf *b, size_t n);
/* Appends all of p or nothing; false when it does not fit. */
bool buf_append(struct buf *b, const void *p, size_t n);
void buf_consume(struct buf *b, size_t n);
void buf_compact(struct buf *b);

#endif

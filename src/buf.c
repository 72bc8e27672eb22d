#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t limit)
{
	memset(b, 0, sizeof(*b));
	b->limit = limit;
}

void buf_release(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->head = b->tail = 0;
}

static bool buf_ensure(struct buf *b)
{
	if (b->data == NULL)
		b->data = malloc(b->limit);
	return b->data != NULL;
}

void buf_compact(struct buf *b)
{
	if (b->head == 0)
		return;
	memmove(b->data, b->data + b->head, b->tail - b->head);
	b->tail -= b->head;
	b->head = 0;
}

size_t buf_room(struct buf *b)
{
	if (!buf_ensure(b))
		return 0;
	if (b->head == b->tail)
		b->head = b->tail = 0;
	else if (b->limit - b->tail < b->limit / 2)
		buf_compact(b);
	return b->limit - b->tail;
}

char *buf_tail(struct buf *b)
{
	return b->data + b->tail;
}

void buf_commit(struct buf *b, size_t n)
{
	b->tail += n;
}

bool buf_append(struct buf *b, const void *p, size_t n)
{
	if (!buf_ensure(b))
		return false;
	if (b->limit - b->tail < n) {
		buf_compact(b);
		if (b->limit - b->tail < n)
			return false;
	}
	memcpy(b->data + b->tail, p, n);
	b->tail += n;
	return true;
}


void buf_consume(struct buf *b, size_t n)
{
	b->head += n;
	if (b->head == b->tail)
		b->head = b->tail = 0;
}

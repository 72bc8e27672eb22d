/*
 * fdio: whole writes to a blocking file descriptor (spool and drop files).
 */
#ifndef SUBRELAY_FDIO_H
#define SUBRELAY_FDIO_H

#include <stdbool.h>
#include <stddef.h>

/* Writes all n bytes, again after EINTR; false with errno on failure. */
bool fd_write_all(int fd, const void *p, size_t n);

#endif

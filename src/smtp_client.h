/*
 * smtp_client: a blocking SMTP client for one short-lived transaction to
 * the local daemon (subrelay-sendmail). Plain TCP: the daemon listens on
 * loopback. Every wait is bounded: the connection and the greeting by
 * one timeout, each later reply by another (in passthrough mode the
 * daemon answers only once the provider has). Never used inside the
 * daemon (it blocks).
 */
#ifndef SUBRELAY_SMTP_CLIENT_H
#define SUBRELAY_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "cfgval.h"
#include "smtp_parse.h"

struct smtp_client;

/* Connects (a wildcard address means the local host) and reads the
 * greeting into *greeting; NULL with the reason in err when nothing
 * answers in time. */
struct smtp_client *smtp_client_connect(const struct sockaddr_any *addr, double connect_timeout,
    double reply_timeout, struct smtp_reply *greeting, char *err, size_t errlen);
/* Sends line (CRLF added) and reads the reply; false with err when the
 * connection broke or timed out (a reply of any code is true). */
bool smtp_client_command(struct smtp_client *c, const char *line, struct smtp_reply *reply, char *err,
    size_t errlen);
/* Sends canonical data, then ".\r\n", and reads the reply. */
bool smtp_client_data(struct smtp_client *c, const char *data, size_t len, struct smtp_reply *reply, char *err,
    size_t errlen);
/* QUIT (best effort) and close. */
void smtp_client_close(struct smtp_client *c);

#endif

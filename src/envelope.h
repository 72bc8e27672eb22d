/*
 * envelope: what the relay checks in a client's MAIL and RCPT before the
 * transaction takes them, as refusal lines the session sends as they are.
 *
 *   - an address without a domain (legacy senders write MAIL FROM:<root>)
 *     is qualified with relay.qualify_domain instead of refused;
 *   - a non-ASCII address needs SMTPUTF8 (553 5.6.7);
 *   - a declared SIZE over the limit of the sender's route (the relay's,
 *     or its first provider's) is 552 5.3.4 at MAIL, so that the message
 *     is never taken to fail later; the same limit ends an undeclared one.
 */
#ifndef SUBRELAY_ENVELOPE_H
#define SUBRELAY_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "path.h"
#include "smtp_parse.h"

/* The command's address as the transaction takes it (out: SMTP_PATH_MAX
 * + 1 bytes); false with the refusal line in `refusal`. */
bool envelope_address(const struct smtp_cmd *c, bool smtputf8, const struct config *cfg, char *out, char *refusal,
    size_t len);
/* The size limit for a message from `from` (*lim); false with the
 * refusal when MAIL declared more. */
bool envelope_mail_size(const struct smtp_cmd *c, const struct path_env *env, const char *from,
    struct path_limits *lim, char *refusal, size_t len);
/* The refusal of a message over lim. */
void envelope_too_big(const struct path_limits *lim, char *refusal, size_t len);

#endif

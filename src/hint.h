/*
 * hint: plain-words advice when a failure shows a common mistake
 * (STARTTLS spoken to an implicit-TLS port, implicit TLS to a STARTTLS
 * port, port 25 blocked from a cloud host, STARTTLS stripped, a certificate
 * that does not verify, a password refused (with the provider's usual
 * cause, told by its host), the known OAuth2 refusals of Microsoft 365 and
 * Google). Shared by
 * the path chooser's log lines and the probe report. Pure function.
 */
#ifndef SUBRELAY_HINT_H
#define SUBRELAY_HINT_H

#include <stddef.h>
#include <stdint.h>

#include "cfgval.h"
#include "upstream.h"

/* Writes the hint into buf and returns it, or returns NULL when the
 * failure suggests no particular mistake. */
const char *hint_for_failure(const char *host, uint16_t port, enum tls_mode mode, enum upstream_fail cls,
    const char *reason, char *buf, size_t len);

#endif

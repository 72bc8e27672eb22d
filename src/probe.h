/*
 * probe: `subrelayd --probe`, the first question on a new host: which
 * path to each provider works from here?
 *
 * For every provider (or the one named) and each of its configured
 * (port, mode) pairs, plus 587, 465, 2525 and 25 with --all-ports, it
 * runs one upstream session setup in parallel (bounded by the
 * provider's connect and greeting timeouts) and reports TCP connect
 * time or failure, greeting, EHLO extensions, STARTTLS, TLS version and
 * cipher, the certificate (subject, issuer, expiry, verification), AUTH
 * mechanisms and whether the credentials are accepted, and a hint for
 * the common mistakes, and warnings for a path that works but not for
 * every message (an EHLO SIZE below the relay's limit). It sends mail only
 * with --send-test ADDRESS: one message to ADDRESS over the first working
 * pair of each provider, from --from ADDRESS, else the provider's sender,
 * else ADDRESS itself (the provider's sender replaces it in MAIL, and in
 * From: with sender_header, as for any message).
 */
#ifndef SUBRELAY_PROBE_H
#define SUBRELAY_PROBE_H

#include <stdbool.h>
#include <stdio.h>
#include <openssl/ssl.h>

#include "config.h"

struct probe_options {
	const char *provider;      /* NULL: every provider */
	bool all_ports;
	bool json;
	const char *send_test;     /* NULL: send nothing */
	const char *from;          /* the test message's sender; NULL: the provider's sender, else send_test */
};

/* Prints the report to out; returns the exit status: 0 when every probed
 * provider has a working path, 1 otherwise, 2 when the options name an
 * unknown provider. */
int probe_run(const struct config *cfg, SSL_CTX **tls_ctx, const struct probe_options *o, FILE *out);

#endif

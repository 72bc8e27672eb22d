/*
 * tls: OpenSSL contexts and certificate facts. No sockets here: the
 * handshake itself is driven by io.c.
 *
 * A client context per provider: verification on unless tls_verify=no,
 * system trust plus tls_ca_file, minimum version, a client session cache
 * for resumption. tls_client_new() makes an SSL with SNI and host name
 * (or IP address) verification set for that host.
 */
#ifndef SUBRELAY_TLS_H
#define SUBRELAY_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

#include "config.h"

void tls_init(void);
/* Builds the client context for a provider. On failure writes the reason
 * (with the OpenSSL error queue) to err and returns NULL. */
SSL_CTX *tls_client_ctx(const struct provider_cfg *p, char *err, size_t errlen);
/* The server context of the client listeners (STARTTLS, /implicit):
 * TLS 1.2 minimum, the chain and key of relay.tls_cert_file and
 * tls_key_file, checked to match. NULL with the reason in err. */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errlen);
/* A new client SSL for `host`: SNI (unless host is an IP literal) and
 * host/IP verification parameters. NULL on allocation failure. */
SSL *tls_client_new(SSL_CTX *ctx, const char *host, bool verify);

/* Drains the OpenSSL error queue into buf as "lib:reason; ..." (or "" ). */
const char *tls_error_string(char *buf, size_t len);
/* After a finished handshake: "TLSv1.3", cipher name, and for the probe
 * the peer certificate's subject, issuer, notAfter (ISO 8601) and the
 * verification result text ("ok" or X509_verify_cert_error_string). */
struct tls_peer_info {
	char version[16];
	char cipher[64];
	char subject[256];
	char issuer[256];
	char not_after[32];
	char verify[128];
};
void tls_peer_info(SSL *ssl, struct tls_peer_info *info);
/* True if the peer sent a certificate, even one that failed verification. */
bool tls_peer_sent_certificate(SSL *ssl);

#endif

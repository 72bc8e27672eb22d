/*
 * tls: client contexts, per-connection SSL setup and certificate facts.
 *
 * Every function that reports the OpenSSL error queue clears it first,
 * so a message never carries a stale error from an earlier call.
 *
 * Session resumption: each provider's context keeps the last session
 * its server gave (SSL_CTX_sess_set_new_cb: with TLS 1.3 the tickets
 * arrive after the handshake) in its ex_data, and tls_client_new() offers
 * it, so a reconnect skips the full handshake. A server that does not
 * take it (another port, expired ticket) just does a full handshake.
 * OpenSSL marks a session unresumable when its connection is freed
 * without a shutdown: io.c sends close_notify before freeing.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

/* The ex_data slot of a context that holds its last session. */
static int session_slot = -1;

static void free_session_slot(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	SSL_SESSION_free(ptr);
}

/* Keeps the newest session of the provider; the reference is ours. */
static int remember_session(SSL *ssl, SSL_SESSION *sess)
{
	SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);

	if (session_slot < 0)
		return 0;
	SSL_SESSION_free(SSL_CTX_get_ex_data(ctx, session_slot));
	SSL_CTX_set_ex_data(ctx, session_slot, sess);
	return 1;
}

static bool is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

void tls_init(void)
{
	static bool done;

	if (done)
		return;
	/* Implicit in OpenSSL >= 1.1.0; explicit so the strings are loaded
	 * before the first error message, and so a failure is visible. */
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS |
	    OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL) != 1)
		return;
	session_slot = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_session_slot);
	done = true;
}

/* Appends s to buf (len bytes, already a C string), "; "-separated. */
static void append_item(char *buf, size_t len, const char *s)
{
	size_t used = strlen(buf);

	if (used + 1 >= len)
		return;
	snprintf(buf + used, len - used, "%s%s", used ? "; " : "", s);
}

static unsigned long next_error(const char **data, int *flags)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	return ERR_get_error_all(NULL, NULL, NULL, data, flags);
#else
	return ERR_get_error_line_data(NULL, NULL, data, flags);
#endif
}

const char *tls_error_string(char *buf, size_t len)
{
	unsigned long e;
	const char *data;
	int flags;
	char item[512];

	if (len > 0)
		buf[0] = '\0';
	/* Always drain, even when buf is full: the queue must end empty. */
	while ((e = next_error(&data, &flags)) != 0) {
		if (len == 0)
			continue;
		ERR_error_string_n(e, item, sizeof(item));
		/* The data often names the culprit: "calling fopen(/x, r)". */
		if ((flags & ERR_TXT_STRING) && data != NULL && *data != '\0') {
			size_t n = strlen(item);
			snprintf(item + n, sizeof(item) - n, " (%s)", data);
		}
		append_item(buf, len, item);
	}
	return buf;
}

/* err = "what: <error queue>", or just "what" when the queue is empty. */
static void ctx_error(char *err, size_t errlen, const char *what)
{
	char queue[512];

	tls_error_string(queue, sizeof(queue));
	if (queue[0] != '\0')
		snprintf(err, errlen, "%s: %s", what, queue);
	else
		snprintf(err, errlen, "%s", what);
}

static bool ctx_load_trust(SSL_CTX *ctx, const struct provider_cfg *p, char *err, size_t errlen)
{
	if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ctx_error(err, errlen, "cannot load the system trust store");
		return false;
	}
	if (p->tls_ca_file == NULL || p->tls_ca_file[0] == '\0')
		return true;
	if (SSL_CTX_load_verify_locations(ctx, p->tls_ca_file, NULL) != 1) {
		char what[512];

		snprintf(what, sizeof(what), "tls_ca_file %s: cannot load", p->tls_ca_file);
		ctx_error(err, errlen, what);
		return false;
	}
	return true;
}

SSL_CTX *tls_client_ctx(const struct provider_cfg *p, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	tls_init();
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		ctx_error(err, errlen, "cannot create TLS context");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, p->tls_min_version) != 1) {
		ctx_error(err, errlen, "tls_min_version: not supported by this OpenSSL");
		goto fail;
	}
	/* Trust is loaded even with tls_verify=no so the probe can still
	 * report what verification would have said. */
	if (!ctx_load_trust(ctx, p, err, errlen))
		goto fail;
	SSL_CTX_set_verify(ctx, p->tls_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	/* io.c writes from a buffer that moves, and may write part of it;
	 * idle pooled connections should not hold 2 x 16k of buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Not SSL_MODE_RELEASE_BUFFERS: it frees and allocates both 16k
	 * buffers around every record; io_release_idle() frees them once
	 * a session goes idle (pooled) instead. */
	/* One read() per burst of records instead of a header read and a body read each. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, remember_session);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	char what[512];
	SSL_CTX *ctx;

	tls_init();
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		ctx_error(err, errlen, "cannot create TLS context");
		return NULL;
	}
	/* TLS 1.2 and 1.3 with OpenSSL's default ciphers (forward secret,
	 * AEAD first); the server's order, no renegotiation, no compression. */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* Many clients close without close_notify; SMTP frames its own data
	 * (a cut message has no end of data), so that close is an EOF, and
	 * what the client sent before it is still answered. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		snprintf(what, sizeof(what), "tls_cert_file %s: cannot load", cert_file);
		ctx_error(err, errlen, what);
	} else if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		snprintf(what, sizeof(what), "tls_key_file %s: cannot load", key_file);
		ctx_error(err, errlen, what);
	} else if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(what, sizeof(what), "tls_key_file %s does not match the certificate in %s", key_file, cert_file);
		ctx_error(err, errlen, what);
	} else {
		return ctx;
	}
	SSL_CTX_free(ctx);
	return NULL;
}

static bool ssl_set_peer_name(SSL *ssl, const char *host, bool ip, bool verify)
{
	/* RFC 6066: SNI carries host names only, never addresses. */
	if (!ip && SSL_set_tlsext_host_name(ssl, host) != 1)
		return false;
	if (!verify)
		return true;
	if (ip)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
	/* "*.example.com" matches one label, not "a*.example.com" games. */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	return SSL_set1_host(ssl, host) == 1;
}

SSL *tls_client_new(SSL_CTX *ctx, const char *host, bool verify)
{
	SSL *ssl;

	ERR_clear_error();
	ssl = SSL_new(ctx);
	if (ssl == NULL)
		return NULL;
	if (!ssl_set_peer_name(ssl, host, is_ip_literal(host), verify)) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_SESSION *last = session_slot >= 0 ? SSL_CTX_get_ex_data(ctx, session_slot) : NULL;
	if (last != NULL && SSL_SESSION_is_resumable(last))
		SSL_set_session(ssl, last);
	ERR_clear_error();
	return ssl;
}

/* Copies at most n-1 bytes, not cutting a UTF-8 sequence in half. */
static void copy_utf8(char *out, size_t n, const char *s, size_t len)
{
	if (len >= n) {
		len = n - 1;
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(out, s, len);
	out[len] = '\0';
}

/* "C = US, O = Example, CN = smtp.example.com", UTF-8 kept as is. */
static void name_oneline(const X509_NAME *name, char *out, size_t n)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;

	out[0] = '\0';
	if (bio == NULL)
		return;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		len = BIO_get_mem_data(bio, &data);
		if (len > 0)
			copy_utf8(out, n, data, (size_t)len);
	}
	BIO_free(bio);
}

static void time_iso8601(const ASN1_TIME *t, char *out, size_t n)
{
	struct tm tm;

	out[0] = '\0';
	if (t != NULL && ASN1_TIME_to_tm(t, &tm) == 1)
		strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void cert_info(X509 *cert, SSL *ssl, struct tls_peer_info *info)
{
	long v;

	name_oneline(X509_get_subject_name(cert), info->subject, sizeof(info->subject));
	name_oneline(X509_get_issuer_name(cert), info->issuer, sizeof(info->issuer));
	time_iso8601(X509_get0_notAfter(cert), info->not_after, sizeof(info->not_after));
	v = SSL_get_verify_result(ssl);
	snprintf(info->verify, sizeof(info->verify), "%s",
	    v == X509_V_OK ? "ok" : X509_verify_cert_error_string(v));
}

void tls_peer_info(SSL *ssl, struct tls_peer_info *info)
{
	X509 *cert;

	memset(info, 0, sizeof(*info));
	snprintf(info->version, sizeof(info->version), "%s", SSL_get_version(ssl));
	snprintf(info->cipher, sizeof(info->cipher), "%s", SSL_get_cipher_name(ssl));
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	cert = SSL_get1_peer_certificate(ssl);
#else
	cert = SSL_get_peer_certificate(ssl);
#endif
	/* After a failed verification OpenSSL 3 keeps the certificate only in
	 * the chain it received; the probe still wants to show it. */
	if (cert == NULL) {
		STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
		if (chain != NULL && sk_X509_num(chain) > 0) {
			cert = sk_X509_value(chain, 0);
			X509_up_ref(cert);
		}
	}
	if (cert == NULL) {
		/* "ok" would claim a verification that never happened. */
		snprintf(info->verify, sizeof(info->verify), "no peer certificate");
		return;
	}
	cert_info(cert, ssl, info);
	X509_free(cert);
}

bool tls_peer_sent_certificate(SSL *ssl)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	return chain != NULL && sk_X509_num(chain) > 0;
}

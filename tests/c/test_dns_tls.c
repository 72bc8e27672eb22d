/*
 * test_dns_tls: dns.c on a real libev loop, tls.c contexts and an
 * in-memory handshake against a certificate made at run time.
 *
 * No network is needed: numeric hosts, /etc/hosts ("localhost"), a
 * temporary $CARES_HOSTS file, and a ".invalid" name that must fail
 * (refused or timed out; dns.c gives up after about 6 s).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "dns.h"
#include "tls.h"

/* ---- dns ---- */

struct got {
	int calls;
	unsigned naddrs;
	struct sockaddr_storage addrs[8];
	char error[128];
	struct dns_query *cancel;  /* cancelled from inside the callback */
	struct dns *free_dns;      /* freed from inside the callback */
};

static bool in_lookup;
static int pending;

static void got_cb(const struct dns_result *res, void *arg)
{
	struct got *g = arg;

	CHECK(!in_lookup);
	g->calls++;
	pending--;
	g->naddrs = res->naddrs;
	for (unsigned i = 0; i < res->naddrs && i < 8; i++)
		g->addrs[i] = res->addrs[i];
	snprintf(g->error, sizeof(g->error), "%s", res->error ? res->error : "");
	if (g->cancel != NULL)
		dns_cancel(g->cancel);
	if (g->free_dns != NULL)
		dns_free(g->free_dns);
}

static struct dns_query *lookup(struct dns *dns, const char *host, uint16_t port, struct got *g)
{
	struct dns_query *q;

	memset(g, 0, sizeof(*g));
	pending++;
	in_lookup = true;
	q = dns_lookup(dns, host, port, got_cb, g);
	in_lookup = false;
	CHECK(q != NULL);
	return q;
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	*(bool *)w->data = true;
	ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop until every expected callback ran; false on timeout. */
static bool run_until_done(struct ev_loop *loop, double seconds)
{
	bool expired = false;
	ev_timer guard;

	ev_timer_init(&guard, guard_cb, seconds, 0.);
	guard.data = &expired;
	ev_timer_start(loop, &guard);
	while (pending > 0 && !expired)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &guard);
	return pending == 0;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *a = ss->ss_family == AF_INET ?
	    (const void *)&((const struct sockaddr_in *)ss)->sin_addr :
	    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

	return inet_ntop(ss->ss_family, a, buf, (socklen_t)len) ? buf : "?";
}

static void test_numeric(struct ev_loop *loop, struct dns *dns)
{
	struct got v4, v6;
	char s[INET6_ADDRSTRLEN];

	lookup(dns, "127.0.0.1", 25, &v4);
	lookup(dns, "::1", 587, &v6);
	CHECK(v4.calls == 0 && v6.calls == 0);  /* not from inside dns_lookup() */
	CHECK(run_until_done(loop, 5));
	CHECK(v4.calls == 1 && v4.naddrs == 1 && v4.error[0] == '\0');
	CHECK(v4.addrs[0].ss_family == AF_INET && port_of(&v4.addrs[0]) == 25);
	CHECK_STR(addr_str(&v4.addrs[0], s, sizeof(s)), "127.0.0.1");
	CHECK(v6.calls == 1 && v6.naddrs == 1 && v6.error[0] == '\0');
	CHECK(v6.addrs[0].ss_family == AF_INET6 && port_of(&v6.addrs[0]) == 587);
	CHECK_STR(addr_str(&v6.addrs[0], s, sizeof(s)), "::1");
}

static void test_localhost(struct ev_loop *loop, struct dns *dns)
{
	struct got g;
	bool loopback = false;
	char s[INET6_ADDRSTRLEN];

	lookup(dns, "localhost", 2525, &g);
	CHECK(g.calls == 0);
	CHECK(run_until_done(loop, 10));
	CHECK(g.calls == 1 && g.naddrs >= 1);
	CHECK_STR(g.error, "");
	for (unsigned i = 0; i < g.naddrs && i < 8; i++) {
		CHECK(port_of(&g.addrs[i]) == 2525);
		addr_str(&g.addrs[i], s, sizeof(s));
		if (strcmp(s, "127.0.0.1") == 0 || strcmp(s, "::1") == 0)
			loopback = true;
	}
	CHECK(loopback);
}

/* Four distinct addresses (one listed twice) come back deduplicated
 * and alternating by family, whichever family the sort put first. */
static void test_interleave(struct ev_loop *loop, struct dns *dns)
{
	struct got g;

	lookup(dns, "multi.subrelay.test", 465, &g);
	CHECK(run_until_done(loop, 10));
	CHECK_STR(g.error, "");
	CHECK(g.naddrs == 4);
	for (unsigned i = 1; i < g.naddrs && i < 8; i++)
		CHECK(g.addrs[i].ss_family != g.addrs[i - 1].ss_family);
	for (unsigned i = 0; i < g.naddrs && i < 8; i++)
		CHECK(port_of(&g.addrs[i]) == 465);
}

static void test_not_found(struct ev_loop *loop, struct dns *dns)
{
	struct got g;
	ev_tstamp t0;

	ev_now_update(loop);
	t0 = ev_now(loop);
	lookup(dns, "nonexistent.invalid", 25, &g);
	CHECK(run_until_done(loop, 20));
	ev_now_update(loop);
	CHECK(g.calls == 1 && g.naddrs == 0 && g.error[0] != '\0');
	CHECK(ev_now(loop) - t0 < 15);
	printf("nonexistent.invalid: error=\"%s\" after %.1fs\n", g.error, ev_now(loop) - t0);
}

static void test_cancel(struct ev_loop *loop, struct dns *dns)
{
	struct got a, b, c, sentinel, first, second;
	struct dns_query *qa, *qb;

	qa = lookup(dns, "127.0.0.1", 25, &a);
	qb = lookup(dns, "localhost", 25, &b);  /* hosts file: done at once */
	dns_cancel(qa);
	dns_cancel(qb);
	pending -= 2;
	/* Cancelled while c-ares still has it: freed when c-ares gives up. */
	dns_cancel(lookup(dns, "cancelled.invalid", 25, &c));
	pending--;
	lookup(dns, "::1", 25, &sentinel);
	CHECK(run_until_done(loop, 5));
	CHECK(a.calls == 0 && b.calls == 0 && c.calls == 0);
	CHECK(sentinel.calls == 1);

	/* A callback cancels a query delivered in the same batch. */
	lookup(dns, "127.0.0.1", 25, &first);
	first.cancel = lookup(dns, "::1", 25, &second);
	pending--;
	CHECK(run_until_done(loop, 5));
	CHECK(first.calls == 1 && second.calls == 0);
}

/* dns_free() from inside a callback; a later query is never called. */
static void test_free_in_callback(struct ev_loop *loop)
{
	struct dns *dns = dns_new(loop);
	struct got a, b;

	CHECK(dns != NULL);
	if (dns == NULL)
		return;
	lookup(dns, "127.0.0.1", 25, &a);
	a.free_dns = dns;
	lookup(dns, "::1", 25, &b);
	pending--;
	CHECK(run_until_done(loop, 5));
	CHECK(a.calls == 1 && b.calls == 0);
}

static char *write_hosts_file(void)
{
	static const char text[] =
	    "192.0.2.1 multi.subrelay.test\n"
	    "192.0.2.2 multi.subrelay.test\n"
	    "192.0.2.1 multi.subrelay.test\n"
	    "2001:db8::1 multi.subrelay.test\n"
	    "2001:db8::2 multi.subrelay.test\n"
	    "127.0.0.1 localhost\n";
	char *path = strdup("/tmp/test_dns_tls_hosts.XXXXXX");
	int fd;

	if (path == NULL || (fd = mkstemp(path)) < 0) {
		free(path);
		return NULL;
	}
	if (write(fd, text, sizeof(text) - 1) != (ssize_t)(sizeof(text) - 1)) {
		close(fd);
		unlink(path);
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

static void test_dns(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	char *hosts = write_hosts_file();
	struct dns *dns;
	struct got g1, g2;

	CHECK(loop != NULL && hosts != NULL);
	if (loop == NULL || hosts == NULL)
		return;
	setenv("CARES_HOSTS", hosts, 1);
	dns = dns_new(loop);
	CHECK(dns != NULL);
	if (dns != NULL) {
		test_numeric(loop, dns);
		test_localhost(loop, dns);
		test_interleave(loop, dns);
		test_not_found(loop, dns);
		test_cancel(loop, dns);
		/* dns_free() with queries pending: no callback, no leak. */
		lookup(dns, "pending.invalid", 25, &g1);
		lookup(dns, "127.0.0.1", 25, &g2);
		dns_free(dns);
		pending -= 2;
		ev_run(loop, EVRUN_NOWAIT);
		CHECK(g1.calls == 0 && g2.calls == 0);
	}
	test_free_in_callback(loop);
	unsetenv("CARES_HOSTS");
	unlink(hosts);
	free(hosts);
	ev_loop_destroy(loop);
}

/* ---- tls ---- */

static void provider_init(struct provider_cfg *p, bool verify, char *ca_file)
{
	memset(p, 0, sizeof(*p));
	p->name = "test";
	p->host = "localhost";
	p->tls_verify = verify;
	p->tls_ca_file = ca_file;
	p->tls_min_version = TLS1_2_VERSION;
}

static bool add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	bool ok;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return false;
	ok = X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* Self-signed "CN=localhost" for DNS:localhost and IP:127.0.0.1, 1 day. */
static X509 *make_cert(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *name;

	if (x == NULL)
		return NULL;
	name = X509_get_subject_name(x);
	if (X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -60) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	        (const unsigned char *)"localhost", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 ||
	    X509_set_pubkey(x, key) != 1 ||
	    !add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") ||
	    X509_sign(x, key, EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static char *write_cert_file(X509 *x)
{
	char *path = strdup("/tmp/test_dns_tls_ca.XXXXXX");
	FILE *f;
	int fd;
	bool ok;

	if (path == NULL || (fd = mkstemp(path)) < 0) {
		free(path);
		return NULL;
	}
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		unlink(path);
		free(path);
		return NULL;
	}
	ok = PEM_write_X509(f, x) == 1;
	if (fclose(f) != 0 || !ok) {
		unlink(path);
		free(path);
		return NULL;
	}
	return path;
}

/* Drives both ends over a BIO pair; true when both finished. */
static bool handshake(SSL *client, SSL *server)
{
	BIO *cb, *sb;
	int rc, rs = 0;

	if (BIO_new_bio_pair(&cb, 0, &sb, 0) != 1)
		return false;
	SSL_set_bio(client, cb, cb);
	SSL_set_bio(server, sb, sb);
	SSL_set_connect_state(client);
	SSL_set_accept_state(server);
	for (int i = 0; i < 50; i++) {
		rc = SSL_do_handshake(client);
		if (rc <= 0 && SSL_get_error(client, rc) != SSL_ERROR_WANT_READ)
			return false;
		rs = SSL_do_handshake(server);
		if (rs <= 0 && SSL_get_error(server, rs) != SSL_ERROR_WANT_READ)
			return false;
		if (rc == 1 && rs == 1)
			return true;
	}
	return false;
}

struct tls_fixture {
	EVP_PKEY *key;
	X509 *cert;
	char *ca_file;
	SSL_CTX *server;
};

static bool fixture_init(struct tls_fixture *fx)
{
	memset(fx, 0, sizeof(*fx));
	fx->key = EVP_EC_gen("P-256");
	fx->cert = fx->key ? make_cert(fx->key) : NULL;
	fx->ca_file = fx->cert ? write_cert_file(fx->cert) : NULL;
	fx->server = SSL_CTX_new(TLS_server_method());
	return fx->ca_file != NULL && fx->server != NULL &&
	    SSL_CTX_use_certificate(fx->server, fx->cert) == 1 &&
	    SSL_CTX_use_PrivateKey(fx->server, fx->key) == 1;
}

static void fixture_free(struct tls_fixture *fx)
{
	if (fx->ca_file != NULL)
		unlink(fx->ca_file);
	free(fx->ca_file);
	SSL_CTX_free(fx->server);
	X509_free(fx->cert);
	EVP_PKEY_free(fx->key);
}

/* One client connection to `host`; info filled when the handshake worked. */
static bool connect_as(struct tls_fixture *fx, SSL_CTX *ctx, const char *host, bool verify,
    struct tls_peer_info *info, char *sni, size_t snilen)
{
	SSL *c = tls_client_new(ctx, host, verify);
	SSL *s = SSL_new(fx->server);
	bool ok = c != NULL && s != NULL && handshake(c, s);

	if (ok) {
		const char *name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
		tls_peer_info(c, info);
		snprintf(sni, snilen, "%s", name ? name : "");
	}
	SSL_free(c);
	SSL_free(s);
	return ok;
}

static void test_tls_ctx_errors(void)
{
	struct provider_cfg p;
	char err[512], buf[512];
	SSL_CTX *ctx;

	provider_init(&p, true, "/nonexistent/ca.pem");
	err[0] = '\0';
	ctx = tls_client_ctx(&p, err, sizeof(err));
	CHECK(ctx == NULL);
	CHECK(strstr(err, "tls_ca_file /nonexistent/ca.pem: cannot load: error:") != NULL);
	printf("missing tls_ca_file: %s\n", err);
	CHECK_STR(tls_error_string(buf, sizeof(buf)), "");  /* queue drained */
	SSL_CTX_free(ctx);

	provider_init(&p, true, NULL);
	p.tls_min_version = 0x7777;
	ctx = tls_client_ctx(&p, err, sizeof(err));
	CHECK(ctx == NULL);
	CHECK(strncmp(err, "tls_min_version", 15) == 0);
	SSL_CTX_free(ctx);

	provider_init(&p, true, NULL);
	ctx = tls_client_ctx(&p, err, sizeof(err));
	CHECK(ctx != NULL);
	CHECK(ctx != NULL && SSL_CTX_get_verify_mode(ctx) == SSL_VERIFY_PEER);
	CHECK(ctx != NULL && SSL_CTX_get_min_proto_version(ctx) == TLS1_2_VERSION);
	CHECK(ctx != NULL && (SSL_CTX_get_session_cache_mode(ctx) & SSL_SESS_CACHE_CLIENT));
	SSL_CTX_free(ctx);

	/* Errors are joined with "; ", and the queue ends empty. */
	ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
	ERR_raise(ERR_LIB_X509, X509_R_CERT_ALREADY_IN_HASH_TABLE);
	tls_error_string(buf, sizeof(buf));
	CHECK(strstr(buf, "bad length; error:") != NULL);
	CHECK(ERR_peek_error() == 0);
	ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
	CHECK_STR(tls_error_string(buf, 1), "");
	CHECK(ERR_peek_error() == 0);
}

static void test_tls_handshakes(void)
{
	struct tls_fixture fx;
	struct provider_cfg p;
	struct tls_peer_info info;
	char err[512], sni[256], buf[512];
	SSL_CTX *trusting, *blind;

	CHECK(fixture_init(&fx));
	provider_init(&p, true, fx.ca_file);
	p.tls_min_version = TLS1_3_VERSION;
	trusting = tls_client_ctx(&p, err, sizeof(err));
	provider_init(&p, false, NULL);
	blind = tls_client_ctx(&p, err, sizeof(err));
	CHECK(trusting != NULL && blind != NULL);
	if (fx.ca_file == NULL || trusting == NULL || blind == NULL)
		goto out;

	CHECK(connect_as(&fx, trusting, "localhost", true, &info, sni, sizeof(sni)));
	CHECK_STR(info.version, "TLSv1.3");
	CHECK(info.cipher[0] != '\0');
	CHECK_STR(info.subject, "CN = localhost");
	CHECK_STR(info.issuer, "CN = localhost");
	CHECK(strlen(info.not_after) == 20 && info.not_after[10] == 'T' && info.not_after[19] == 'Z');
	CHECK_STR(info.verify, "ok");
	CHECK_STR(sni, "localhost");
	printf("peer: %s %s subject=\"%s\" not_after=%s verify=%s\n",
	    info.version, info.cipher, info.subject, info.not_after, info.verify);

	/* IP literal: no SNI, the address is checked against the SAN. */
	CHECK(connect_as(&fx, trusting, "127.0.0.1", true, &info, sni, sizeof(sni)));
	CHECK_STR(info.verify, "ok");
	CHECK_STR(sni, "");
	CHECK(!connect_as(&fx, trusting, "127.0.0.2", true, &info, sni, sizeof(sni)));
	tls_error_string(buf, sizeof(buf));

	/* Wrong name: the handshake fails and the queue says why. */
	CHECK(!connect_as(&fx, trusting, "other.example", true, &info, sni, sizeof(sni)));
	CHECK(strstr(tls_error_string(buf, sizeof(buf)), "certificate verify failed") != NULL);

	/* tls_verify=no: connects, and still reports what is wrong. */
	CHECK(connect_as(&fx, blind, "localhost", false, &info, sni, sizeof(sni)));
	CHECK_STR(info.verify, "self-signed certificate");
	CHECK_STR(info.version, "TLSv1.3");
out:
	SSL_CTX_free(trusting);
	SSL_CTX_free(blind);
	fixture_free(&fx);
}

/* A second connection with the same provider context resumes the session
 * the first one was given (TLS 1.3 tickets arrive after the handshake, so
 * the client reads one byte to take them in). */
static void test_tls_resumption(void)
{
	struct tls_fixture fx;
	struct provider_cfg p;
	char err[512];
	bool reused[2] = { true, false };

	CHECK(fixture_init(&fx));
	provider_init(&p, true, fx.ca_file);
	SSL_CTX *ctx = fx.ca_file ? tls_client_ctx(&p, err, sizeof(err)) : NULL;
	CHECK(ctx != NULL);
	for (int i = 0; ctx != NULL && i < 2; i++) {
		SSL *c = tls_client_new(ctx, "localhost", true);
		SSL *s = SSL_new(fx.server);
		char byte = 0;
		CHECK(c != NULL && s != NULL && handshake(c, s));
		CHECK(SSL_write(s, "x", 1) == 1);
		CHECK(SSL_read(c, &byte, 1) == 1 && byte == 'x');
		reused[i] = SSL_session_reused(c);
		SSL_shutdown(c); /* as io.c does: a session closed uncleanly is not resumed */
		SSL_free(c);
		SSL_free(s);
	}
	CHECK(!reused[0]);
	CHECK(reused[1]);
	SSL_CTX_free(ctx);
	fixture_free(&fx);
}

int main(void)
{
	tls_init();
	tls_init();
	test_dns();
	test_tls_ctx_errors();
	test_tls_handshakes();
	test_tls_resumption();
	return check_summary("test_dns_tls");
}

/*
 * cfgval: parsers for the value types of the configuration file.
 *
 * Pure functions on strings: no I/O, no globals, unit-tested directly.
 * Each returns true on success; on failure it returns false and writes a
 * one-line reason (without file or line) into err[errlen].
 */
#ifndef SUBRELAY_CFGVAL_H
#define SUBRELAY_CFGVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum tls_mode { TLS_MODE_STARTTLS, TLS_MODE_IMPLICIT, TLS_MODE_PLAIN };

struct port_mode {
	uint16_t port;
	enum tls_mode mode;
};

struct cidr {
	int family;          /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;     /* 0..32 or 0..128 */
};

struct sockaddr_any {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* A relay.listen entry: the address, and what a client speaks first. */

const char *tls_mode_name(enum tls_mode mode); /* "starttls", "implicit", "plain" */

/* "25M", "512k", "1G", "1000": powers of 1024; no negative, no overflow. */
bool cfg_parse_size(const char *s, uint64_t *out, char *err, size_t errlen);
/* "300ms", "5s", "5m", "1h", "5d", "10" (seconds); result in seconds. */
bool cfg_parse_duration(const char *s, double *out, char *err, size_t errlen);
/* The other way, for people: "2h13m", "45s", "1h", "1d2h" (whole seconds:
 * the largest unit, and the next one when not zero); "0s" for zero or less. */
const char *cfg_format_duration(char *out, size_t n, double seconds);
/* A Unix time as ISO 8601 UTC, "2026-12-05T11:20:00Z". */
const char *cfg_format_utc(char *out, size_t n, double t);
/* "yes|no|true|false|on|off|1|0" */
bool cfg_parse_bool(const char *s, bool *out, char *err, size_t errlen);
/* Integer in [min, max]. */
bool cfg_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out,
    char *err, size_t errlen);
/* "127.0.0.1:25", "[::1]:25", "0.0.0.0:0". Port 0 allowed (ephemeral). */
bool cfg_parse_listen(const char *s, struct sockaddr_any *out, char *err, size_t errlen);
/* A relay.listen entry: the address, and what its listener expects first. */
#define LISTEN_PROXY 1u    /* "/proxy": a PROXY protocol header from a relay.proxy_from peer */
#define LISTEN_IMPLICIT 2u /* "/implicit": TLS from the first byte (SMTPS, port 465) */
struct listen_addr {
	struct sockaddr_any sa;
	unsigned flags;        /* LISTEN_* */
};
/* An address as for cfg_parse_listen, then options: "127.0.0.1:2525/proxy", "0.0.0.0:465/implicit". */
bool cfg_parse_listen_addr(const char *s, struct listen_addr *out, char *err, size_t errlen);
/* Formats sa as "IP:PORT" or "[IPv6]:PORT" (the inverse of cfg_parse_listen). */
void sockaddr_format(char *out, size_t len, const struct sockaddr *sa);
/* "127.0.0.0/8", "::1/128", "10.0.0.1" (host = full prefix). Host bits must be zero. */
bool cfg_parse_cidr(const char *s, struct cidr *out, char *err, size_t errlen);
bool cidr_match(const struct cidr *c, const struct sockaddr *sa);
/* Whether sa is in any of the n networks. */
bool cidr_list_match(const struct cidr *list, unsigned n, const struct sockaddr *sa);
/* "587", "465" (implicit by default), "587/starttls", "465/implicit", "1025/plain". */
bool cfg_parse_port_mode(const char *s, struct port_mode *out, char *err, size_t errlen);

/* Trims blanks at both ends, in place; returns the new start. */
char *cfg_trim(char *s);

/*
 * Splits a comma-separated list in place (s is modified): trims blanks
 * around items, calls fn(item, arg) for each; an empty item is an error.
 * A blank s is an empty list (fn is never called; the caller decides).
 * Stops at the first false from fn (whose own error is in err).
 */
bool cfg_split_list(char *s, bool (*fn)(const char *item, void *arg, char *err, size_t errlen),
    void *arg, char *err, size_t errlen);

/*
 * Expands ${NAME} from the environment into a new malloc'd string. An
 * unset variable is an error; "$$" is a literal "$". NULL on error.
 */
char *cfg_expand_env(const char *s, char *err, size_t errlen);

/* "*@billing.example.com", "invoices@example.com", "*": case-insensitive glob with '*' only. */
bool cfg_sender_match(const char *pattern, const char *sender);

#endif

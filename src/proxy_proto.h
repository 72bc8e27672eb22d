/*
 * proxy_proto: the PROXY protocol header (HAProxy's proxy-protocol.txt,
 * versions 1 and 2) that a load balancer sends first on each connection
 * to a `listen = ADDR:PORT/proxy` listener, to say who the client is.
 *
 * A pure parser: bytes in, the client's address out. No sockets (the
 * reading is proxy_accept.c's), no allocation, no globals. It decides as
 * early as it can: bytes that cannot start a header are refused at once,
 * so a client that talks SMTP to a /proxy listener is not kept waiting.
 */
#ifndef SUBRELAY_PROXY_PROTO_H
#define SUBRELAY_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Version 1: one text line, CRLF included (the specification's limit). */
#define PROXY_V1_MAX 107
/* Version 2: the 16-byte fixed part plus addresses and TLVs. The format
 * allows 64 KiB; load balancers send well under this (HAProxy about 250
 * bytes with every TLV), and a longer one is refused as malformed. */
#define PROXY_V2_MAX 2048
/* The most bytes a reader needs to hold for either version. */
#define PROXY_HEADER_MAX PROXY_V2_MAX

enum proxy_status {
	PROXY_MORE, /* a header's start, not yet its end: every byte seen so far belongs to it */
	PROXY_DONE, /* a whole header in the first h->len bytes */
	PROXY_BAD,  /* not a header (h->error says why) */
};

struct proxy_header {
	size_t len;                     /* PROXY_DONE: the bytes it took */
	unsigned version;               /* 1 or 2, once known */
	/* False for v2 LOCAL (a health check of the proxy's own), v1 UNKNOWN
	 * and v2 UNSPEC or UNIX: no client address, the connection's peer
	 * stands for the client. */
	bool has_client;
	struct sockaddr_storage client; /* has_client: the source address and port */
	socklen_t client_len;
	const char *error;              /* PROXY_BAD: a static reason for the log */
};

/* Parses the first len bytes received on a connection. */
enum proxy_status proxy_parse(const unsigned char *buf, size_t len, struct proxy_header *h);

#endif

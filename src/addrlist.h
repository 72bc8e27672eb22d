/*
 * addrlist: the addresses of an RFC 5322 address-list header value (To:,
 * Cc:, Bcc:), for `subrelay-sendmail -t`. A pure function, no I/O.
 *
 * Understands what legacy apps write: bare addresses, "Name <a@b>",
 * quoted display names with commas in them, (comments), groups
 * ("team: a@b, c@d;" and "undisclosed-recipients:;"), folded values
 * (CR/LF and the blanks after them are spaces). An element it cannot
 * read as an address (unbalanced <, a blank in an unquoted address) is
 * an error, so that a typo is not sent somewhere else.
 */
#ifndef SUBRELAY_ADDRLIST_H
#define SUBRELAY_ADDRLIST_H

#include <stdbool.h>
#include <stddef.h>

/* Called with each address (NUL-terminated, without <>); false stops. */
typedef bool (*addrlist_fn)(const char *addr, void *arg);

/* Parses value[0..len); false with the reason in err when an element is
 * not an address (or fn returned false: err is then ""). */
bool addrlist_parse(const char *value, size_t len, addrlist_fn fn, void *arg, char *err, size_t errlen);

#endif

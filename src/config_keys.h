/*
 * config_keys: the key table of the configuration, private to config.c.
 *
 * One row per key of every section: its name, its default (text parsed
 * like a value, so the defaults of DESIGN.md appear once, as written) and
 * the parser that turns a value into a field of struct relay_cfg,
 * provider_cfg, route_cfg or queue_cfg. config.c reads the file and the
 * `-o` overrides and calls these parsers; it never interprets a value
 * itself. The only I/O here is reading the secret files and checking that
 * CA files are readable (both through secret_file.h, against relay.user),
 * so that `subrelayd -t` catches them.
 */
#ifndef SUBRELAY_CONFIG_KEYS_H
#define SUBRELAY_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

enum sect_kind { SECT_RELAY, SECT_PROVIDER, SECT_ROUTE, SECT_QUEUE, SECT_NKINDS };

extern const char *const config_sect_names[SECT_NKINDS];

struct key_def;
struct item_kind;

/*
 * Parses val (modifiable, ${ENV} already expanded) into the key's field of
 * obj, replacing (and freeing) what was there. cfg is the configuration
 * being built: its providers exist, for lists that name them.
 */
typedef bool parse_fn(const struct config *cfg, const struct key_def *k, void *obj, char *val,
    char *err, size_t errlen);

struct key_def {
	const char *name;
	parse_fn *parse;
	enum sect_kind kind;
	size_t off;                     /* field in relay_cfg, provider_cfg, route_cfg or queue_cfg */
	const char *def;                /* default, parsed like a value; NULL = none */
	bool zero_ok;                   /* sizes and durations: 0 is meaningful */
	const struct item_kind *item;   /* lists: element type; only lists continue on indented lines */
	size_t count_off;               /* lists: the count beside the array */
	bool empty_ok;                  /* lists: may be empty */
	const char *const *words;       /* enums: accepted words, in enum order */
	unsigned long min, max;         /* integers */
	bool secret;                    /* printed as <secret> (--print-config) */
	bool first;                     /* parsed before every other key (relay.user: files are checked against it) */
	bool daemon_only;               /* a file only the daemon reads: subrelay-sendmail's load skips it */
};

extern const char *const config_delivery_words[];
extern const struct key_def config_keys[];
extern const size_t config_nkeys;

/* Index in config_keys of `name` in a section of that kind, or -1. */
int config_key_find(enum sect_kind kind, const char *name);

/* Frees a string that may hold a secret, clearing it first. */
static inline void config_wipe_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

#endif

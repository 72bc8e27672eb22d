/*
 * presets: what is public about well-known providers, so that a user who
 * knows only the provider's name and the credentials gets mail out
 * (`[provider NAME] preset = NAME[:REGION]`).
 *
 * A preset is a few settings written as configuration text (host, ports
 * with their modes in a sensible order, auth, the user name a provider
 * fixes); config.c parses them like written values, after the defaults
 * and before the section's own keys, so every key written overrides
 * the preset. One table, in presets.c, with the source of each fact.
 */
#ifndef SUBRELAY_PRESETS_H
#define SUBRELAY_PRESETS_H

#include <stdbool.h>
#include <stddef.h>

#define PRESET_MAX_SETTINGS 8
#define PRESET_HOST_MAX 128

struct preset_setting {
	const char *key;
	const char *value;
};

struct preset_values {
	struct preset_setting settings[PRESET_MAX_SETTINGS];
	unsigned n;
	char host[PRESET_HOST_MAX];   /* the "host" setting's value, region filled in */
};

/* The settings for "NAME" or "NAME:REGION"; false with err saying which
 * presets (or, for a known name, which regions) exist. */
bool preset_resolve(const char *spec, struct preset_values *out, char *err, size_t errlen);

#endif

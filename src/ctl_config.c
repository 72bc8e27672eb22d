/*
 * ctl_config.c: see ctl_config.h.
 */
#include "ctl_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ini.h>

#include "cfgval.h"

struct peek {
	char *value;               /* malloc'd, the last relay.control seen */
	bool oom;
};

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct peek *pk = user;

	if (strcasecmp(section, "relay") != 0 || strcmp(name, "control") != 0)
		return 1;
	free(pk->value);
	pk->value = strdup(value);
	pk->oom = pk->value == NULL;
	return 1;
}

enum ctl_config_result ctl_config_control(const char *file, char *out, size_t n, char *err, size_t errlen)
{
	struct peek pk = { NULL, false };
	FILE *f = fopen(file, "r");

	if (f == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", file, strerror(errno));
		return CTL_CONFIG_UNREADABLE;
	}
	/* Errors on other lines are the daemon's to report (subrelayd -t). */
	ini_parse_file(f, on_key, &pk);
	fclose(f);
	if (pk.oom) {
		snprintf(err, errlen, "out of memory");
		return CTL_CONFIG_UNREADABLE;
	}
	if (pk.value == NULL)
		return CTL_CONFIG_NO_KEY;
	char why[256];
	char *expanded = cfg_expand_env(pk.value, why, sizeof(why));
	free(pk.value);
	if (expanded == NULL) {
		snprintf(err, errlen, "%s: relay.control: %s", file, why);
		return CTL_CONFIG_UNREADABLE;
	}
	snprintf(out, n, "%s", expanded);
	free(expanded);
	return CTL_CONFIG_FOUND;
}

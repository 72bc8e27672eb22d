/*
 * ctl_config: what subrelayctl needs from the daemon's configuration
 * file, the control socket's path (relay.control), read without loading
 * the rest: an operator may run subrelayctl without the right to read
 * the providers' secrets, and a half-edited file must not stop it from
 * finding the running daemon. Only [relay] control is looked at, ${ENV}
 * expanded as the daemon does.
 */
#ifndef SUBRELAY_CTL_CONFIG_H
#define SUBRELAY_CTL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define SUBRELAY_DEFAULT_CONFIG SYSCONFDIR "/subrelay/subrelay.ini"

enum ctl_config_result {
	CTL_CONFIG_FOUND,       /* out holds the path ("" when the socket is off) */
	CTL_CONFIG_NO_KEY,      /* the file has no relay.control: the built-in default applies */
	CTL_CONFIG_UNREADABLE,  /* the reason is in err */
};

enum ctl_config_result ctl_config_control(const char *file, char *out, size_t n, char *err, size_t errlen);

#endif

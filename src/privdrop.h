/*
 * privdrop: becoming relay.user once everything that needs root is
 * bound. The startup (daemon.c) calls it once, before any worker runs
 * and before any client data is read; nothing else changes credentials.
 */
#ifndef SUBRELAY_PRIVDROP_H
#define SUBRELAY_PRIVDROP_H

#include <stdbool.h>

/* user empty: no change (a warning when root). Otherwise gives the user
 * the spool directories and the messages in tmp/, queue/ and failed/
 * (spool may be NULL: none) and the control socket (control: the bound
 * socket's path, or NULL), then initgroups/setgid/
 * setuid (the user's supplementary groups are kept, as secret_file.h
 * assumes). False, with the reason logged, when the user does not exist
 * or the change fails; not being root only warns. */
bool privdrop(const char *user, const char *spool, const char *control);

#endif

/*
 * secret_file: the files a reload reads, checked against the user the
 * daemon runs as.
 *
 * The configuration is read by root at start and by relay.user at every
 * reload (the worker re-reads it after the privilege drop), so two things
 * are checked at load, by `-t`, at start and at reload alike:
 *   - a file holding a secret (password_file, oauth2_*_file, users_file,
 *     tls_key_file) is refused when someone else could read it: readable
 *     by everyone, readable by a group other than the daemon's, or owned
 *     by another user than root or the daemon's;
 *   - while still root with a drop to come, every file a reload reads
 *     (the configuration itself, secrets, CA files) must be readable by
 *     relay.user, computed from its uid and groups against the file's
 *     owner, group and mode and the directories above it (access() would
 *     answer for root, and -t never changes credentials).
 * Secrets are checked on the opened descriptor (fstat), never by name
 * then opened, so the file checked is the file read.
 *
 * Called by config_keys.c (one call per key); does no logging.
 */
#ifndef SUBRELAY_SECRET_FILE_H
#define SUBRELAY_SECRET_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define DAEMON_ID_GROUPS 64
#define DAEMON_ID_NAME 64

/* Who reads the files once the daemon runs. */
struct daemon_id {
	bool drops;                 /* root now, relay.user later: check files for it */
	uid_t uid;
	gid_t gid;                  /* its primary group: the one secrets may be shared with */
	gid_t groups[DAEMON_ID_GROUPS]; /* supplementary groups (the drop keeps them) */
	int ngroups;
	char name[DAEMON_ID_NAME];  /* for messages */
	char group[DAEMON_ID_NAME];
};

/* user "" : this process as it is. Otherwise relay.user, which must
 * exist; it is the reader only when a drop will happen (started as root)
 * or has happened (running as it). False with the reason in err. */
bool daemon_id_resolve(const char *user, struct daemon_id *id, char *err, size_t errlen);

/* Opens a secret file for reading (unbuffered: no copy of the secret in
 * stdio), after checking who could read it; NULL with the reason and the
 * fix in err, e.g. `"/etc/x" is readable by everyone (owner root:root
 * mode 0644): chmod 0640 and chown root:subrelay`. */
FILE *secret_file_open(const struct daemon_id *id, const char *path, char *err, size_t errlen);

/* A file a reload reads but that holds no secret (CA files, the
 * configuration): false with the reason when it cannot be read now, or
 * could not be by relay.user after the drop. */
bool reload_can_read(const struct daemon_id *id, const char *path, char *err, size_t errlen);

#endif

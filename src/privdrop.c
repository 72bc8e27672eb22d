/*
 * privdrop.c: see privdrop.h.
 */
#include "privdrop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* The files of one spool directory, for the user: a daemon run as root
 * before relay.user was set left its messages root's. Not followed: a
 * link stays a link. */
static void chown_entries(const char *dir, const struct passwd *pw)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fchownat(dirfd(d), e->d_name, pw->pw_uid, pw->pw_gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT)
			log_warn("cannot chown %s/%s to %s: %s", dir, e->d_name, pw->pw_name, strerror(errno));
	}
	if (d != NULL)
		closedir(d);
}

/* The spool must stay writable by the user we become, with the messages
 * in it. The drop directory keeps its group and its files their owners
 * (maildrop_pickup.h: the users who dropped them). */
static void chown_spool(const char *spool, const struct passwd *pw)
{
	static const struct { const char *sub; bool keep_group, with_files; } dirs[] = {
		{ "", false, false }, { "/tmp", false, true }, { "/queue", false, true },
		{ "/failed", false, true }, { "/maildrop", true, false }, { "/corrupt", false, false },
	};

	for (size_t i = 0; spool != NULL && i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s%s", spool, dirs[i].sub);
		if (chown(path, pw->pw_uid, dirs[i].keep_group ? (gid_t)-1 : pw->pw_gid) < 0 && errno != ENOENT)
			log_warn("cannot chown %s to %s: %s", path, pw->pw_name, strerror(errno));
		else if (dirs[i].with_files)
			chown_entries(path, pw);
	}
}

bool privdrop(const char *user, const char *spool, const char *control)
{
	if (user == NULL || user[0] == '\0') {
		if (geteuid() == 0)
			log_warn("running as root: set relay.user to drop privileges after binding");
		return true;
	}
	if (geteuid() != 0) {
		log_warn("relay.user=%s ignored: not started as root", user);
		return true;
	}
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		log_error("relay.user: no such user \"%s\"", user);
		return false;
	}
	chown_spool(spool, pw);
	/* The control socket (0600): root and the user may use subrelayctl. */
	if (control != NULL && chown(control, pw->pw_uid, pw->pw_gid) < 0)
		log_warn("cannot chown %s to %s: %s", control, pw->pw_name, strerror(errno));
	/* Its supplementary groups too: a tls_key_file shared through ssl-cert,
	 * and what secret_file.h assumed when it checked the files at load. */
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_error("cannot drop privileges to %s: %s", user, strerror(errno));
		return false;
	}
	log_info("privileges dropped user=%s uid=%u", user, (unsigned)pw->pw_uid);
	return true;
}

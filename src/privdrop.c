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
#include <sys/stat.h>

#include "log.h"

/* The messages of one spool directory (dfd), for the user: a daemon run
 * as root before relay.user was set left them root's. Only regular files
 * with one link are given: a link planted by someone with the user's
 * rights must not hand over what it points to. */
static void chown_entries(int dfd, const char *dir, const struct passwd *pw)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (d == NULL && fd >= 0)
		close(fd);
	while (d != NULL && (e = readdir(d)) != NULL) {
		struct stat st;
		int f = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (f < 0)
			continue; /* ".", "..", a link, gone */
		if (fstat(f, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		    fchown(f, pw->pw_uid, pw->pw_gid) < 0)
			log_warn("cannot chown %s/%s to %s: %s", dir, e->d_name, pw->pw_name, strerror(errno));
		close(f);
	}
	if (d != NULL)
		closedir(d);
}

/* The spool must stay writable by the user we become, with the messages
 * in it. The drop directory keeps its group and its files their owners
 * (maildrop_pickup.h: the users who dropped them). The spool is the path
 * root configured; what is in it is opened without following links. */
static void chown_spool(const char *spool, const struct passwd *pw)
{
	static const struct { const char *sub; bool keep_group, with_files; } dirs[] = {
		{ ".", false, false }, { "tmp", false, true }, { "queue", false, true },
		{ "failed", false, true }, { "maildrop", true, false }, { "corrupt", false, false },
	};
	int top = spool != NULL ? open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;

	for (size_t i = 0; top >= 0 && i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", spool, dirs[i].sub);
		int fd = openat(top, dirs[i].sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			if (errno != ENOENT)
				log_warn("%s: %s: left as it is", path, strerror(errno));
			continue;
		}
		if (fchown(fd, pw->pw_uid, dirs[i].keep_group ? (gid_t)-1 : pw->pw_gid) < 0)
			log_warn("cannot chown %s to %s: %s", path, pw->pw_name, strerror(errno));
		else if (dirs[i].with_files)
			chown_entries(fd, path, pw);
		close(fd);
	}
	if (top >= 0)
		close(top);
}

/* The control socket, so that subrelayctl works as the user too: only a
 * socket, never what a link in its place would name. */
static void chown_control(const char *control, const struct passwd *pw)
{
	struct stat st;

	if (control == NULL)
		return;
	if (lstat(control, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		log_warn("%s is not the control socket any more: left as it is", control);
		return;
	}
	if (fchownat(AT_FDCWD, control, pw->pw_uid, pw->pw_gid, AT_SYMLINK_NOFOLLOW) < 0)
		log_warn("cannot chown %s to %s: %s", control, pw->pw_name, strerror(errno));
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
	chown_control(control, pw);
	/* Its supplementary groups too: a tls_key_file shared through ssl-cert,
	 * and what secret_file.h assumed when it checked the files at load. */
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_error("cannot drop privileges to %s: %s", user, strerror(errno));
		return false;
	}
	log_info("privileges dropped user=%s uid=%u", user, (unsigned)pw->pw_uid);
	return true;
}

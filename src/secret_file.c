/*
 * secret_file.c: see secret_file.h.
 */
#include "secret_file.h"
#include "failf.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* ---- names, for messages ---- */

static void user_name(uid_t uid, char *buf, size_t n)
{
	const struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		snprintf(buf, n, "%s", pw->pw_name);
	else
		snprintf(buf, n, "%lu", (unsigned long)uid);
}

static void group_name(gid_t gid, char *buf, size_t n)
{
	const struct group *gr = getgrgid(gid);

	if (gr != NULL)
		snprintf(buf, n, "%s", gr->gr_name);
	else
		snprintf(buf, n, "%lu", (unsigned long)gid);
}

/* "owner root:adm mode 0640" */
static void describe(const struct stat *st, char *buf, size_t n)
{
	char u[DAEMON_ID_NAME], g[DAEMON_ID_NAME];

	user_name(st->st_uid, u, sizeof(u));
	group_name(st->st_gid, g, sizeof(g));
	snprintf(buf, n, "owner %s:%s mode %04o", u, g, (unsigned)(st->st_mode & 07777));
}

/* What to run so that only root and the daemon can read a secret. */
static void fix_for(const struct daemon_id *id, char *buf, size_t n)
{
	if (id->drops || id->uid == 0)
		snprintf(buf, n, "chown root:%s and chmod 0640", id->group);
	else
		snprintf(buf, n, "chown %s and chmod 0600", id->name);
}

/* ---- who the daemon is ---- */

static void id_from_passwd(struct daemon_id *id, const struct passwd *pw, bool drops)
{
	int n = DAEMON_ID_GROUPS;

	id->drops = drops;
	id->uid = pw->pw_uid;
	id->gid = pw->pw_gid;
	snprintf(id->name, sizeof(id->name), "%s", pw->pw_name);
	/* The groups privdrop's initgroups() will give it; on overflow the
	 * first DAEMON_ID_GROUPS are filled, enough to answer "may it read". */
	if (getgrouplist(pw->pw_name, pw->pw_gid, id->groups, &n) < 0 || n > DAEMON_ID_GROUPS)
		n = DAEMON_ID_GROUPS;
	id->ngroups = n;
}

static void id_from_self(struct daemon_id *id)
{
	id->drops = false;
	id->uid = geteuid();
	id->gid = getegid();
	user_name(id->uid, id->name, sizeof(id->name));
	id->ngroups = getgroups(DAEMON_ID_GROUPS, id->groups);
	if (id->ngroups < 0)
		id->ngroups = 0;
}

bool daemon_id_resolve(const char *user, struct daemon_id *id, char *err, size_t errlen)
{
	memset(id, 0, sizeof(*id));
	if (user[0] != '\0') {
		const struct passwd *pw = getpwnam(user);
		if (pw == NULL)
			return failf(err, errlen, "no such user \"%.64s\" (create it, e.g. with the shipped "
			    "sysusers.d entry, or leave user empty)", user);
		uid_t me = geteuid();
		/* privdrop changes nothing when not started as root. */
		if ((me == 0 && pw->pw_uid != 0) || me == pw->pw_uid) {
			id_from_passwd(id, pw, me == 0);
			group_name(id->gid, id->group, sizeof(id->group));
			return true;
		}
	}
	id_from_self(id);
	group_name(id->gid, id->group, sizeof(id->group));
	return true;
}

/* ---- may the daemon read it ---- */

static bool in_groups(const struct daemon_id *id, gid_t gid)
{
	if (gid == id->gid)
		return true;
	for (int i = 0; i < id->ngroups; i++)
		if (id->groups[i] == gid)
			return true;
	return false;
}

/* The permission bits that apply to id, as the kernel picks them (ACLs aside). */
static bool id_may(const struct daemon_id *id, const struct stat *st, unsigned want)
{
	unsigned mode = (unsigned)st->st_mode;

	if (st->st_uid == id->uid)
		return ((mode >> 6) & want) == want;
	if (in_groups(id, st->st_gid))
		return ((mode >> 3) & want) == want;
	return (mode & want) == want;
}

/* Every directory on the way to path must let id through. */
static bool dirs_open_to(const struct daemon_id *id, const char *path, char *err, size_t errlen)
{
	char buf[PATH_MAX], how[160];
	struct stat st;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return true; /* too long to walk: opening it will tell */
	for (char *slash = strchr(buf + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode) && !id_may(id, &st, 1)) {
			describe(&st, how, sizeof(how));
			return failf(err, errlen, "\"%s\" is not readable by user %s after privileges are dropped: "
			    "the directory \"%s\" is closed to it (%s); a reload would fail: chgrp %s and chmod 0750 "
			    "that directory", path, id->name, buf, how, id->group);
		}
		*slash = '/';
	}
	return true;
}

static bool readable_after_drop(const struct daemon_id *id, const char *path, const struct stat *st,
    const char *fix, char *err, size_t errlen)
{
	char how[160];

	if (!id->drops)
		return true;
	if (!id_may(id, st, 4)) {
		describe(st, how, sizeof(how));
		return failf(err, errlen, "\"%s\" is not readable by user %s after privileges are dropped (%s); "
		    "a reload would fail: %s", path, id->name, how, fix);
	}
	return dirs_open_to(id, path, err, errlen);
}

/* Only root and the daemon may read a secret. */
static bool kept_secret(const struct daemon_id *id, const char *path, const struct stat *st, const char *fix,
    char *err, size_t errlen)
{
	char how[160], who[DAEMON_ID_NAME];

	describe(st, how, sizeof(how));
	if (st->st_uid != 0 && st->st_uid != id->uid) {
		user_name(st->st_uid, who, sizeof(who));
		return failf(err, errlen, "\"%s\" is owned by %s, neither root nor the daemon's user %s (%s): %s",
		    path, who, id->name, how, fix);
	}
	if (st->st_mode & S_IROTH)
		return failf(err, errlen, "\"%s\" is readable by everyone (%s): %s", path, how, fix);
	if ((st->st_mode & S_IRGRP) && st->st_gid != id->gid) {
		group_name(st->st_gid, who, sizeof(who));
		return failf(err, errlen, "\"%s\" is readable by group %s, not only by the daemon's group %s (%s): %s",
		    path, who, id->group, how, fix);
	}
	return true;
}

FILE *secret_file_open(const struct daemon_id *id, const char *path, char *err, size_t errlen)
{
	char fix[160];
	struct stat st;
	/* O_NONBLOCK: a FIFO named by mistake must not stall the load. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	FILE *fp;

	if (fd < 0) {
		failf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	fix_for(id, fix, sizeof(fix));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		failf(err, errlen, "cannot read \"%s\": not a regular file", path);
	} else if (kept_secret(id, path, &st, fix, err, errlen) &&
	    readable_after_drop(id, path, &st, fix, err, errlen)) {
		if ((fp = fdopen(fd, "r")) != NULL) {
			setvbuf(fp, NULL, _IONBF, 0);
			return fp;
		}
		failf(err, errlen, "out of memory");
	}
	close(fd);
	return NULL;
}

bool reload_can_read(const struct daemon_id *id, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char fix[160];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return failf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
	bool ok = fstat(fd, &st) == 0;
	close(fd);
	if (!ok)
		return failf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
	snprintf(fix, sizeof(fix), "chgrp %s and chmod g+r", id->group);
	return readable_after_drop(id, path, &st, fix, err, errlen);
}

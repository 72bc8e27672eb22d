/*
 * maildrop.c: see maildrop.h.
 */
#include "maildrop.h"
#include "fdio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define LINE_BYTES (SMTP_PATH_MAX + 64)  /* an envelope line, parameters included */

static bool write_envelope(int fd, const struct maildrop_submission *s)
{
	char line[LINE_BYTES];
	int n = snprintf(line, sizeof(line), "%s\nuid %lu\nMAIL FROM:<%s>%s\n", MAILDROP_MAGIC, s->uid, s->from,
	    s->eight_bit ? " BODY=8BITMIME" : "");
	bool ok = n > 0 && (size_t)n < sizeof(line) && fd_write_all(fd, line, (size_t)n);

	for (unsigned i = 0; ok && i < s->nrcpts; i++) {
		n = snprintf(line, sizeof(line), "RCPT TO:<%s>\n", s->rcpts[i]);
		ok = n > 0 && (size_t)n < sizeof(line) && fd_write_all(fd, line, (size_t)n);
	}
	if (!ok && errno == 0)
		errno = ENAMETOOLONG;
	return ok && fd_write_all(fd, "\n", 1);
}

/* The directory entry is durable too when we may open the directory
 * (mode 1730 gives its group no read: then the daemon's next scan, not
 * a crash, is what the rename races with). */
static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

bool maildrop_write(const char *spool, const struct maildrop_submission *s, const char *data, size_t len,
    char name[ID_LEN + 1], char *err, size_t errlen)
{
	char dir[4096], tmp[ID_LEN + 8];
	int dfd, fd;

	snprintf(dir, sizeof(dir), "%s/%s", spool, MAILDROP_DIR);
	/* O_PATH: the directory's search and write permissions are enough. */
	if ((dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return false;
	}
	id_new(name);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	/* Readable by all: only the directory's owner and group can reach it,
	 * and the daemon, another user, must read it. */
	if ((fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(e));
		close(dfd);
		errno = e;
		return false;
	}
	errno = 0;
	bool ok = fchmod(fd, 0644) == 0 && write_envelope(fd, s) && fd_write_all(fd, data, len) &&
	    fd_write_all(fd, ".\r\n", 3) && fsync(fd) == 0;
	int e = errno;
	if (close(fd) != 0 && ok) {
		ok = false;
		e = errno;
	}
	if (ok && renameat(dfd, tmp, dfd, name) != 0) {
		ok = false;
		e = errno;
	}
	if (!ok) {
		unlinkat(dfd, tmp, 0);
		snprintf(err, errlen, "%s/%s: %s", dir, tmp, strerror(e ? e : EIO));
	}
	close(dfd);
	if (ok)
		sync_dir(dir);
	errno = e;
	return ok;
}

/* One line without its newline; false at EOF or for a line too long. */
static bool get_line(FILE *f, char *line, size_t n)
{
	if (fgets(line, (int)n, f) == NULL)
		return false;
	size_t len = strlen(line);
	if (len == 0 || line[len - 1] != '\n')
		return false;
	line[len - 1] = '\0';
	return true;
}

static bool parse_cmd(const char *line, enum smtp_verb want, struct smtp_cmd *cmd, char *err, size_t errlen)
{
	const char *why = "";

	if (smtp_parse_command(line, strlen(line), cmd, &why) != SMTP_PARSE_OK || cmd->verb != want) {
		snprintf(err, errlen, "bad envelope line \"%.80s\" (%s)", line, why ? why : "");
		return false;
	}
	return true;
}

bool maildrop_read_envelope(FILE *f, unsigned max_rcpts, struct maildrop_envelope *env, char *err, size_t errlen)
{
	char line[LINE_BYTES], *end;

	memset(env, 0, sizeof(*env));
	if (!get_line(f, line, sizeof(line)) || strcmp(line, MAILDROP_MAGIC) != 0) {
		snprintf(err, errlen, "not a maildrop file (no \"%s\" line)", MAILDROP_MAGIC);
		return false;
	}
	errno = 0;
	if (!get_line(f, line, sizeof(line)) || strncmp(line, "uid ", 4) != 0 ||
	    (env->uid = strtoul(line + 4, &end, 10), *end != '\0' || errno != 0 || line[4] == '\0')) {
		snprintf(err, errlen, "no \"uid\" line");
		return false;
	}
	if (!get_line(f, line, sizeof(line)) || !parse_cmd(line, SMTP_VERB_MAIL, &env->mail, err, errlen))
		return false;
	while (get_line(f, line, sizeof(line)) && line[0] != '\0') {
		if (env->nrcpts == max_rcpts) {
			snprintf(err, errlen, "more than %u recipients", max_rcpts);
			return false;
		}
		struct smtp_cmd *bigger = realloc(env->rcpts, (env->nrcpts + 1) * sizeof(*bigger));
		if (bigger == NULL) {
			snprintf(err, errlen, "out of memory");
			return false;
		}
		env->rcpts = bigger;
		if (!parse_cmd(line, SMTP_VERB_RCPT, &env->rcpts[env->nrcpts], err, errlen))
			return false;
		env->nrcpts++;
	}
	if (line[0] != '\0' || env->nrcpts == 0) {
		snprintf(err, errlen, "%s", env->nrcpts == 0 ? "no recipient" : "the envelope does not end");
		return false;
	}
	return true;
}

void maildrop_envelope_free(struct maildrop_envelope *env)
{
	free(env->rcpts);
	env->rcpts = NULL;
	env->nrcpts = 0;
}

bool maildrop_name_ok(const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'A' && name[i] <= 'Z')))
			return false;
	return n == ID_LEN;
}

/* One file of the listing; damaged ones are shown as such. */
static void list_one(int dfd, const char *name, FILE *out)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	struct maildrop_envelope env = { 0 };
	struct stat st;
	char err[200] = "unreadable";

	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		fprintf(out, "%-12s (cannot read: %s)\n", name, strerror(errno));
		return;
	}
	if (fstat(fd, &st) == 0 && maildrop_read_envelope(f, UINT32_MAX, &env, err, sizeof(err))) {
		fprintf(out, "%-12s %8lld <%s> uid=%lu ->", name, (long long)st.st_size, env.mail.path, env.uid);
		for (unsigned i = 0; i < env.nrcpts; i++)
			fprintf(out, " <%s>", env.rcpts[i].path);
		fputc('\n', out);
	} else {
		fprintf(out, "%-12s (damaged: %s)\n", name, err);
	}
	maildrop_envelope_free(&env);
	fclose(f);
}

int maildrop_list(const char *spool, FILE *out)
{
	char dir[4096];
	int n = 0;
	struct dirent *e;

	snprintf(dir, sizeof(dir), "%s/%s", spool, MAILDROP_DIR);
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		list_one(dirfd(d), e->d_name, out);
		n++;
	}
	closedir(d);
	return n;
}

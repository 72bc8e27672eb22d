/*
 * spool.c: see spool.h. Plain files, one line per envelope field, so an
 * operator can read a queued message with `less`.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "metrics.h"
#include "fdio.h"

#define SPOOL_MAGIC "subrelay-spool 1"
#define WRITE_BUFFER (64 * 1024)

struct spool {
	char *dir;
	int queue_fd;              /* queue/ opened for the directory fsync */
	int failed_fd;             /* failed/, for its debris at open */
	int lock_fd;               /* the spool directory, flock()ed while we run */
};

/* A previous instance may still be exiting (a restart): wait this long. */
#define LOCK_WAIT_TRIES 30
#define LOCK_WAIT_USEC 100000

struct spool_writer {
	struct spool *sp;
	char id[ID_LEN + 1];
	int fd;
	char *buf;
	size_t len;
};

/* Copies src into dst[n], cut to fit: envelope fields are bounded. */
static void copy_field(char *dst, size_t n, const char *src)
{
	size_t len = strnlen(src, n - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void path_of(char *out, size_t len, const struct spool *sp, const char *sub, const char *id,
    const char *suffix)
{
	snprintf(out, len, "%s/%s/%s%s", sp->dir, sub, id, suffix);
}

/* Makes path a 0700 directory. An existing one may have been made by
 * someone else: it is tightened, through a descriptor opened without
 * following a link unless may_be_link (the spool itself, the path root
 * configured): a link planted in the spool by whoever had the daemon's
 * user rights must not make a daemon started as root chmod its target. */
static bool make_dir(const char *path, bool may_be_link, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return false;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (may_be_link ? 0 : O_NOFOLLOW));
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			snprintf(err, errlen, "%s is not a directory (a link?)", path);
		else
			snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return false;
	}
	bool ok = fchmod(fd, 0700) == 0;
	if (!ok && errno == EPERM && fstat(fd, &st) == 0 && st.st_uid != geteuid())
		snprintf(err, errlen, "%s belongs to uid %lu, not to uid %lu that runs the daemon "
		    "(left by a daemon started as root?): give the spool, its tmp, queue and failed "
		    "and their files to this user, or start as root with relay.user",
		    path, (unsigned long)st.st_uid, (unsigned long)geteuid());
	else if (!ok)
		snprintf(err, errlen, "cannot chmod %s: %s", path, strerror(errno));
	close(fd);
	return ok;
}

/* Creates the missing parents of path (mode 0755, like mkdir -p). */
static void make_parents(const char *path)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		mkdir(buf, 0755);
		*p = '/';
	}
}

/* Removes what a crash left in tmp/: messages no client was told about. */
static void clean_tmp(struct spool *sp)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/tmp", sp->dir);
	DIR *d = opendir(path);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		path_of(path, sizeof(path), sp, "tmp", e->d_name, "");
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
}

/* Removes what a crash left in queue/ (or failed/): a state file written
 * for a message that was never committed (hybrid saves the state first,
 * so that the recipients delivered live are never sent again; a requeue
 * writes queue/ID.st before it renames failed/ID, and removes
 * failed/ID.st after), and a state file cut short before its rename.
 * Only at open: a running daemon writes them a moment before the commit. */
static void clean_debris(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (d == NULL && fd >= 0)
		close(fd);
	if (d != NULL)
		rewinddir(d); /* the descriptor's offset is shared with dirfd */
	while (d != NULL && (e = readdir(d)) != NULL) {
		const char *name = e->d_name;
		size_t n = strlen(name);
		bool partial = n > 4 && strcmp(name + n - 4, ".new") == 0;
		bool orphan = n == ID_LEN + 3 && strcmp(name + ID_LEN, ".st") == 0;
		if (orphan) {
			char id[ID_LEN + 1];
			memcpy(id, name, ID_LEN);
			id[ID_LEN] = '\0';
			orphan = faccessat(dirfd, id, F_OK, 0) != 0 && errno == ENOENT;
		}
		if (partial || orphan)
			unlinkat(dirfd, name, 0);
	}
	if (d != NULL)
		closedir(d);
}

/* One daemon per spool: a second would clean tmp/ under the first's
 * feet and deliver its messages twice. The lock is on the directory's
 * open file description, so forked workers hold it too. */
static bool lock_spool(struct spool *sp, char *err, size_t errlen)
{
	sp->lock_fd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->lock_fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", sp->dir, strerror(errno));
		return false;
	}
	for (int i = 0; i < LOCK_WAIT_TRIES; i++) {
		if (flock(sp->lock_fd, LOCK_EX | LOCK_NB) == 0)
			return true;
		if (errno != EWOULDBLOCK)
			break;
		usleep(LOCK_WAIT_USEC);
	}
	snprintf(err, errlen, "%s is in use by another subrelayd (%s)", sp->dir,
	    errno == EWOULDBLOCK ? "locked" : strerror(errno));
	return false;
}

/* Opens dir/sub for the directory fsyncs and the debris cleaning. */
static bool open_dir(const char *dir, const char *sub, int *fd, char *err, size_t errlen)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

struct spool *spool_open(const char *dir, char *err, size_t errlen)
{
	static const char *const subdirs[] = { "tmp", "queue", "failed" };
	struct spool *sp = calloc(1, sizeof(*sp));
	char path[4096];

	if (sp == NULL || (sp->dir = strdup(dir)) == NULL) {
		free(sp);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sp->queue_fd = sp->failed_fd = sp->lock_fd = -1;
	make_parents(dir);
	bool ok = make_dir(dir, true, err, errlen) && lock_spool(sp, err, errlen);
	for (size_t i = 0; ok && i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);
		ok = make_dir(path, false, err, errlen);
	}
	ok = ok && open_dir(dir, "queue", &sp->queue_fd, err, errlen) && open_dir(dir, "failed", &sp->failed_fd, err, errlen);
	if (!ok) {
		spool_close(sp);
		return NULL;
	}
	clean_tmp(sp);
	clean_debris(sp->queue_fd);
	clean_debris(sp->failed_fd);
	return sp;
}

void spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	if (sp->queue_fd >= 0)
		close(sp->queue_fd);
	if (sp->failed_fd >= 0)
		close(sp->failed_fd);
	if (sp->lock_fd >= 0)
		close(sp->lock_fd);
	free(sp->dir);
	free(sp);
}

const char *spool_dir(const struct spool *sp)
{
	return sp->dir;
}

void spool_msg_free(struct spool_msg *m)
{
	free(m->rcpts);
	m->rcpts = NULL;
	m->nrcpts = 0;
}

/* ---- writing ---- */

static bool flush_buffer(struct spool_writer *w)
{
	bool ok = fd_write_all(w->fd, w->buf, w->len);
	w->len = 0;
	return ok;
}

bool spool_write(struct spool_writer *w, const char *p, size_t n)
{
	if (w->len + n > WRITE_BUFFER && !flush_buffer(w))
		return false;
	if (n >= WRITE_BUFFER)
		return fd_write_all(w->fd, p, n);
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return true;
}

static bool write_envelope(struct spool_writer *w, const struct spool_msg *m)
{
	char line[SMTP_PATH_MAX + 160];

	int n = snprintf(line, sizeof(line), "%s\nid %s\nreceived %.3f\nfrom %s\nflags%s%s\n", SPOOL_MAGIC, m->id,
	    m->received, m->from, m->body_8bit ? " 8bitmime" : "", m->smtputf8 ? " smtputf8" : "");
	if (n < 0 || (size_t)n >= sizeof(line)) {
		errno = ENAMETOOLONG;
		return false;
	}
	bool ok = spool_write(w, line, (size_t)n);
	for (unsigned i = 0; ok && i < m->nrcpts; i++) {
		n = snprintf(line, sizeof(line), "rcpt %s\n", m->rcpts[i].addr);
		ok = spool_write(w, line, (size_t)n);
	}
	return ok && spool_write(w, "\n", 1);
}

struct spool_writer *spool_create(struct spool *sp, const struct spool_msg *envelope)
{
	char path[4096];
	struct spool_writer *w = calloc(1, sizeof(*w));

	if (w == NULL || (w->buf = malloc(WRITE_BUFFER)) == NULL) {
		free(w);
		errno = ENOMEM;
		return NULL;
	}
	w->sp = sp;
	snprintf(w->id, sizeof(w->id), "%s", envelope->id);
	path_of(path, sizeof(path), sp, "tmp", w->id, "");
	w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0 || !write_envelope(w, envelope)) {
		int err = errno;
		spool_discard(w);
		spool_writer_free(w);
		errno = err;
		return NULL;
	}
	return w;
}

bool spool_finish(struct spool_writer *w)
{
	char from[4096], to[4096];

	metrics_spool_fsync();
	if (!flush_buffer(w) || fsync(w->fd) < 0)
		return false;
	path_of(from, sizeof(from), w->sp, "tmp", w->id, "");
	path_of(to, sizeof(to), w->sp, "queue", w->id, "");
	/* Never over a queued message with the same ID (EEXIST: the client
	 * is told to try again, and gets another ID). A file system without
	 * RENAME_NOREPLACE gets the classic link and unlink. */
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return true;
	if (errno != EINVAL && errno != ENOSYS)
		return false;
	return link(from, to) == 0 && unlink(from) == 0;
}

bool spool_sync_queue_dir(struct spool *sp)
{
	metrics_spool_fsync();
	return fsync(sp->queue_fd) == 0;
}

void spool_discard(struct spool_writer *w)
{
	char path[4096];

	path_of(path, sizeof(path), w->sp, "tmp", w->id, "");
	unlink(path);
}

void spool_writer_free(struct spool_writer *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->buf);
	free(w);
}

const char *spool_writer_id(const struct spool_writer *w)
{
	return w->id;
}

/* ---- reading ---- */

static bool valid_id(const char *name)
{
	size_t n = strlen(name);
	if (n != ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'A' && name[i] <= 'Z')))
			return false;
	return true;
}

static char **list_in(struct spool *sp, const char *sub, unsigned *n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", sp->dir, sub);
	DIR *d = opendir(path);
	char **ids = NULL;
	unsigned count = 0, cap = 0;
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (!valid_id(e->d_name))
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			char **bigger = realloc(ids, cap * sizeof(*ids));
			if (bigger == NULL)
				break;
			ids = bigger;
		}
		if ((ids[count] = strdup(e->d_name)) != NULL)
			count++;
	}
	if (d != NULL)
		closedir(d);
	*n = count;
	return ids;
}

char **spool_list(struct spool *sp, unsigned *n)
{
	return list_in(sp, "queue", n);
}

char **spool_list_failed(struct spool *sp, unsigned *n)
{
	return list_in(sp, "failed", n);
}

void spool_list_free(char **ids, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

static bool add_rcpt(struct spool_msg *m, const char *addr)
{
	struct spool_rcpt *bigger = realloc(m->rcpts, (m->nrcpts + 1) * sizeof(*bigger));
	if (bigger == NULL)
		return false;
	m->rcpts = bigger;
	copy_field(m->rcpts[m->nrcpts].addr, sizeof(m->rcpts[0].addr), addr);
	m->rcpts[m->nrcpts++].state = RCPT_PENDING;
	return true;
}

static bool parse_envelope(FILE *f, struct spool_msg *m)
{
	char line[SMTP_PATH_MAX + 64];
	bool magic = false;

	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0') {
			m->data_offset = ftell(f);
			return magic && m->nrcpts > 0;
		}
		if (strcmp(line, SPOOL_MAGIC) == 0)
			magic = true;
		else if (strncmp(line, "id ", 3) == 0)
			copy_field(m->id, sizeof(m->id), line + 3);
		else if (strncmp(line, "received ", 9) == 0)
			m->received = strtod(line + 9, NULL);
		else if (strncmp(line, "from ", 5) == 0)
			copy_field(m->from, sizeof(m->from), line + 5);
		else if (strncmp(line, "flags", 5) == 0) {
			m->body_8bit = strstr(line, " 8bitmime") != NULL;
			m->smtputf8 = strstr(line, " smtputf8") != NULL;
		} else if (strncmp(line, "rcpt ", 5) == 0 && !add_rcpt(m, line + 5))
			return false;
	}
	return false;
}

static void parse_state(FILE *f, struct spool_msg *m)
{
	char line[400];
	unsigned idx;
	char word[16];

	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "attempts ", 9) == 0)
			m->attempts = (unsigned)strtoul(line + 9, NULL, 10);
		else if (strncmp(line, "next_try ", 9) == 0)
			m->next_try = strtod(line + 9, NULL);
		else if (strncmp(line, "last_error ", 11) == 0)
			copy_field(m->last_error, sizeof(m->last_error), line + 11);
		else if (strncmp(line, "fail_reason ", 12) == 0)
			copy_field(m->fail_reason, sizeof(m->fail_reason), line + 12);
		else if (sscanf(line, "rcpt %u %15s", &idx, word) == 2 && idx < m->nrcpts)
			m->rcpts[idx].state = strcmp(word, "done") == 0 ? RCPT_DONE :
			    strcmp(word, "failed") == 0 ? RCPT_FAILED : RCPT_PENDING;
	}
}

bool spool_load(struct spool *sp, const char *id, bool failed, struct spool_msg *m)
{
	char path[4096];
	const char *sub = failed ? "failed" : "queue";

	memset(m, 0, sizeof(*m));
	if (!valid_id(id))
		return false;
	path_of(path, sizeof(path), sp, sub, id, "");
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return false;
	bool ok = parse_envelope(f, m);
	/* The file's name is the message's id: a damaged "id" line must not
	 * make its state, data or removal address another message's files. */
	copy_field(m->id, sizeof(m->id), id);
	struct stat st;
	if (ok && fstat(fileno(f), &st) == 0)
		m->size = (uint64_t)st.st_size - (uint64_t)m->data_offset;
	fclose(f);
	if (!ok) {
		spool_msg_free(m);
		return false;
	}
	path_of(path, sizeof(path), sp, sub, id, ".st");
	if ((f = fopen(path, "re")) != NULL) {
		parse_state(f, m);
		fclose(f);
	}
	return true;
}

FILE *spool_open_data(struct spool *sp, const struct spool_msg *m)
{
	char path[4096];

	path_of(path, sizeof(path), sp, "queue", m->id, "");
	FILE *f = fopen(path, "re");
	if (f != NULL && fseek(f, m->data_offset, SEEK_SET) != 0) {
		fclose(f);
		return NULL;
	}
	return f;
}

/* Writes a small file next to its final name and renames it over. */
static bool replace_file(const char *path, const char *text)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	/* Durable before the rename: after a crash the state (which recipients
	 * are done) must be the old one or the new one, never an empty file. */
	metrics_spool_fsync();
	bool ok = fd_write_all(fd, text, strlen(text)) && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (ok && rename(tmp, path) == 0)
		return true;
	unlink(tmp);
	return false;
}

static bool save_state_in(struct spool *sp, const char *sub, const struct spool_msg *m)
{
	char path[4096], *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (out == NULL)
		return false;
	fprintf(out, "attempts %u\nnext_try %.3f\nlast_error %s\n", m->attempts, m->next_try, m->last_error);
	if (m->fail_reason[0] != '\0')
		fprintf(out, "fail_reason %s\n", m->fail_reason);
	for (unsigned i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state != RCPT_PENDING)
			fprintf(out, "rcpt %u %s\n", i, m->rcpts[i].state == RCPT_DONE ? "done" : "failed");
	fclose(out);
	path_of(path, sizeof(path), sp, sub, m->id, ".st");
	bool ok = text != NULL && replace_file(path, text);
	free(text);
	return ok;
}

bool spool_save_state(struct spool *sp, const struct spool_msg *m)
{
	return save_state_in(sp, "queue", m);
}

/* The state first, then the message: a kill between them leaves a state
 * without its message in failed/ (removed at open) and the message still
 * queued, never a failed message without its reason and the recipients
 * that already have it (a requeue would send it to them again). */
bool spool_move_failed(struct spool *sp, const struct spool_msg *m)
{
	char from[4096], to[4096];

	if (!save_state_in(sp, "failed", m))
		return false;
	path_of(from, sizeof(from), sp, "queue", m->id, "");
	path_of(to, sizeof(to), sp, "failed", m->id, "");
	if (rename(from, to) < 0) {
		path_of(to, sizeof(to), sp, "failed", m->id, ".st");
		unlink(to);
		return false;
	}
	path_of(from, sizeof(from), sp, "queue", m->id, ".st");
	unlink(from);
	return true;
}

bool spool_exists(struct spool *sp, const char *id)
{
	char path[4096];

	if (!valid_id(id))
		return false;
	path_of(path, sizeof(path), sp, "queue", id, "");
	return access(path, F_OK) == 0;
}

static bool remove_in(struct spool *sp, const char *sub, const char *id)
{
	char path[4096];

	if (!valid_id(id))
		return false;
	path_of(path, sizeof(path), sp, sub, id, ".st");
	unlink(path);
	path_of(path, sizeof(path), sp, sub, id, "");
	return unlink(path) == 0;
}

bool spool_remove(struct spool *sp, const char *id)
{
	return remove_in(sp, "queue", id);
}

bool spool_remove_failed(struct spool *sp, const char *id)
{
	return remove_in(sp, "failed", id);
}

/*
 * The order, so that a kill at any instant leaves the message in exactly
 * one place, never lost and never delivered twice:
 *   1. queue/ID.st written (new state, fsync'd, renamed) and queue/
 *      fsync'd: without queue/ID it is debris, removed at the next open;
 *   2. failed/ID renamed to queue/ID (never over an existing one): the
 *      one step that moves the message, whose state is already there;
 *   3. queue/ fsync'd again, so that step 2 is durable before
 *   4. failed/ID.st is removed (debris too once failed/ID is gone).
 */
bool spool_requeue(struct spool *sp, const struct spool_msg *m)
{
	char from[4096], to[4096];

	if (!valid_id(m->id) || spool_exists(sp, m->id)) {
		errno = EEXIST;
		return false;
	}
	path_of(from, sizeof(from), sp, "failed", m->id, "");
	path_of(to, sizeof(to), sp, "queue", m->id, "");
	bool ok = spool_save_state(sp, m) && spool_sync_queue_dir(sp);
	int r = ok ? renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) : -1;
	if (ok && r < 0 && (errno == EINVAL || errno == ENOSYS))
		r = rename(from, to); /* queue/ID was checked absent; we own the spool */
	if (r < 0) {
		int e = errno;
		path_of(to, sizeof(to), sp, "queue", m->id, ".st");
		unlink(to); /* the message stays in failed/ as it was */
		errno = e;
		return false;
	}
	(void)spool_sync_queue_dir(sp);
	path_of(from, sizeof(from), sp, "failed", m->id, ".st");
	unlink(from);
	return true;
}

bool spool_save_egress(struct spool *sp, const char *text)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/egress", sp->dir);
	return replace_file(path, text);
}

char *spool_load_egress(struct spool *sp)
{
	char path[4096], *text = NULL;
	size_t cap = 0;
	snprintf(path, sizeof(path), "%s/egress", sp->dir);
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return NULL;
	ssize_t n = getdelim(&text, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(text);
		return NULL;
	}
	return text;
}

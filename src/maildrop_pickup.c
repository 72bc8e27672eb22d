/*
 * maildrop_pickup.c: see maildrop_pickup.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* O_NOFOLLOW with O_PATH, renameat2 */
#endif
#include "maildrop_pickup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "envelope.h"
#include "fixups.h"
#include "headers.h"
#include "log.h"
#include "maildrop.h"
#include "smtp_data.h"

#define DROP_GROUP "subrelay"
#define CORRUPT_DIR "corrupt"
#define CHUNK (64 * 1024)
#define STALE_TMP (24 * 3600)      /* a ".NAME.tmp" this old was left by a crash */

/* One file being taken. */
struct pickup {
	struct spool *sp;
	const struct config *cfg;
	int dfd;                   /* SPOOL/maildrop */
	const char *name;
	uid_t uid;                 /* the file's owner: who dropped it */
	struct spool_msg msg;
	struct spool_writer *w;
	int write_errno;           /* the spool could not be written: try later */
	char chunk[CHUNK];         /* the header filter's sink buffer */
	char reason[400];          /* why the file is damaged */
};

bool maildrop_prepare(const char *spool, char *err, size_t errlen)
{
	char dir[4096];
	struct group *g = getgrnam(DROP_GROUP);

	snprintf(dir, sizeof(dir), "%s/%s", spool, MAILDROP_DIR);
	if (chmod(spool, 0711) < 0 || (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return false;
	}
	/* Not through a link: one planted there by whoever had the daemon's
	 * user rights must not give its target to the group (spool.c). */
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return false;
	}
	/* Without the group, only the daemon's user (and root) can drop. */
	if (g != NULL && fchown(fd, (uid_t)-1, g->gr_gid) < 0)
		log_warn("maildrop dir=%s cannot be given to group %s: %s (only %s's user can drop mail)", dir,
		    DROP_GROUP, strerror(errno), "subrelayd");
	bool ok = fchmod(fd, MAILDROP_MODE) == 0;
	if (!ok)
		snprintf(err, errlen, "chmod %s: %s", dir, strerror(errno));
	close(fd);
	return ok;
}

static bool damaged(struct pickup *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool damaged(struct pickup *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
	va_end(ap);
	return false;
}

/* The envelope as a client's MAIL and RCPT would give it. */
static bool take_envelope(struct pickup *p, const struct maildrop_envelope *env)
{
	char refusal[SMTP_REPLY_TEXT_MAX];
	bool utf8 = env->mail.smtputf8;

	id_new(p->msg.id);
	p->msg.received = (double)time(NULL);
	p->msg.body_8bit = env->mail.body == SMTP_BODY_8BITMIME;
	p->msg.smtputf8 = utf8;
	if ((p->msg.rcpts = calloc(env->nrcpts, sizeof(*p->msg.rcpts))) == NULL)
		return damaged(p, "%s", "out of memory");
	if (!envelope_address(&env->mail, utf8, p->cfg, p->msg.from, refusal, sizeof(refusal)))
		return damaged(p, "sender refused: %.300s", refusal);
	for (unsigned i = 0; i < env->nrcpts; i++) {
		if (!envelope_address(&env->rcpts[i], utf8, p->cfg, p->msg.rcpts[i].addr, refusal, sizeof(refusal)))
			return damaged(p, "recipient refused: %.300s", refusal);
		p->msg.rcpts[p->msg.nrcpts++].state = RCPT_PENDING;
	}
	return true;
}

static char *sink_space(void *ctx, size_t need, size_t *room)
{
	struct pickup *p = ctx;

	(void)need;
	*room = sizeof(p->chunk);
	return p->chunk;
}

static void sink_commit(void *ctx, size_t n)
{
	struct pickup *p = ctx;

	if (p->write_errno == 0 && !spool_write(p->w, p->chunk, n))
		p->write_errno = errno;
}

/* The data, through the canonicaliser and the fix-ups, into the spool. */
static bool copy_data(struct pickup *p, FILE *f, struct header_filter *hf)
{
	char in[CHUNK];
	size_t inlen = 0;
	struct smtp_data d;
	uint64_t max = p->cfg->relay.max_message_size;

	smtp_data_init(&d, false); /* subrelay-sendmail wrote it canonical */
	while (!d.done && p->write_errno == 0 && (inlen > 0 || (inlen = fread(in, 1, sizeof(in), f)) > 0)) {
		size_t room, out;
		char *dst = header_filter_space(hf, SMTP_DATA_MAX_EXPANSION * 2, &room);
		size_t used = smtp_data_feed(&d, in, inlen, dst, room, &out);
		header_filter_commit(hf, out);
		memmove(in, in + used, inlen - used);
		inlen -= used;
		if (max > 0 && d.out_bytes > max)
			return damaged(p, "larger than relay.max_message_size (%llu bytes)", (unsigned long long)max);
	}
	if (ferror(f))
		return damaged(p, "read error: %s", strerror(errno));
	if (!d.done && p->write_errno == 0)
		return damaged(p, "%s", "truncated: no end of data");
	header_filter_end(hf);
	return true;
}

static bool take_data(struct pickup *p, FILE *f)
{
	struct fixup_fields fields;
	struct fixup_facts facts = { .peer = NULL, .uid = p->uid, .hostname = p->cfg->relay.hostname };
	struct header_rules rules = { 0 };
	struct header_sink sink = { .space = sink_space, .commit = sink_commit, .ctx = p };

	if (p->cfg->relay.add_missing_headers) {
		fixups_compose(&fields, &facts, p->msg.id, p->msg.nrcpts == 1 ? p->msg.rcpts[0].addr : NULL);
		rules = (struct header_rules){ .prepend = fields.received, .date = fields.date, .message_id = fields.message_id };
	}
	struct header_filter *hf = header_filter_new(&rules, &sink);
	if (hf == NULL) {
		p->write_errno = ENOMEM;
		return true;
	}
	bool ok = copy_data(p, f, hf);
	header_filter_free(hf);
	return ok;
}

/* Opens the file, refusing what a user could use to make us read
 * something else. fd -1 with the reason. */
static int open_drop(struct pickup *p)
{
	struct stat st;
	int fd = openat(p->dfd, p->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		damaged(p, "cannot open: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		damaged(p, "%s", "not a regular file with one link");
		close(fd);
		return -1;
	}
	p->uid = st.st_uid;
	return fd;
}

/* Moves the file to SPOOL/corrupt, where the operator can look at it. */
static void move_aside(struct pickup *p)
{
	char dir[4096], to[4096 + ID_LEN + 8];

	snprintf(dir, sizeof(dir), "%s/%s", spool_dir(p->sp), CORRUPT_DIR);
	snprintf(to, sizeof(to), "%s/%s", dir, p->name);
	if ((mkdir(dir, 0700) < 0 && errno != EEXIST) || renameat(p->dfd, p->name, AT_FDCWD, to) < 0) {
		log_error("maildrop file=%s uid=%lu damaged (%s); cannot move it to %s: %s: removed", p->name,
		    (unsigned long)p->uid, p->reason, dir, strerror(errno));
		unlinkat(p->dfd, p->name, 0);
		return;
	}
	log_warn("maildrop file=%s uid=%lu damaged: %s; moved to %s", p->name, (unsigned long)p->uid, p->reason, to);
}

/* Reads the file into a new spool message; false when it is damaged. */
static bool take_file(struct pickup *p, int fd)
{
	FILE *f = fdopen(fd, "r");
	struct maildrop_envelope env;
	bool ok;

	if (f == NULL) {
		close(fd);
		p->write_errno = errno;
		return true;
	}
	ok = maildrop_read_envelope(f, p->cfg->relay.max_recipients, &env, p->reason, sizeof(p->reason)) &&
	    take_envelope(p, &env);
	maildrop_envelope_free(&env);
	if (ok && (p->w = spool_create(p->sp, &p->msg)) == NULL)
		p->write_errno = errno;
	if (ok && p->w != NULL)
		ok = take_data(p, f);
	fclose(f);
	return ok;
}

/* Makes the spool message durable and removes the drop file. */
static bool commit(struct pickup *p)
{
	bool renamed = false;

	if (p->write_errno != 0 || !(renamed = spool_finish(p->w)) || !spool_sync_queue_dir(p->sp)) {
		int e = p->write_errno ? p->write_errno : errno;
		log_warn("maildrop file=%s cannot be queued: %s (kept for the next pickup)", p->name, strerror(e));
		if (renamed)
			spool_remove(p->sp, p->msg.id);
		else if (p->w != NULL)
			spool_discard(p->w);
		return false;
	}
	/* A file that stays would be queued again at every pickup: then the
	 * queued copy goes instead, and the operator is told. */
	if (unlinkat(p->dfd, p->name, 0) < 0) {
		log_error("maildrop file=%s cannot be removed: %s (not queued; remove it or fix the directory's owner)",
		    p->name, strerror(errno));
		spool_remove(p->sp, p->msg.id);
		return false;
	}
	log_info("maildrop file=%s uid=%lu id=%s from=<%s> rcpts=%u result=queued", p->name, (unsigned long)p->uid,
	    p->msg.id, p->msg.from, p->msg.nrcpts);
	return true;
}

static bool take_one(struct spool *sp, const struct config *cfg, int dfd, const char *name, maildrop_taken_fn taken_fn,
    void *arg)
{
	struct pickup *p = calloc(1, sizeof(*p));
	bool taken = false;

	if (p == NULL)
		return false;
	*p = (struct pickup){ .sp = sp, .cfg = cfg, .dfd = dfd, .name = name };
	int fd = open_drop(p);
	bool ok = fd >= 0 && take_file(p, fd);
	if (!ok) {
		if (p->w != NULL)
			spool_discard(p->w);
		move_aside(p);
	} else if ((taken = commit(p))) {
		taken_fn(p->msg.id, arg);
	}
	spool_writer_free(p->w);
	spool_msg_free(&p->msg);
	free(p);
	return taken;
}

/* A ".NAME.tmp" a crashed sendmail left long ago. */
static void remove_stale(int dfd, const char *name)
{
	struct stat st;
	size_t n = strlen(name);

	if (n > 5 && strcmp(name + n - 4, ".tmp") == 0 && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    time(NULL) - st.st_mtime > STALE_TMP)
		unlinkat(dfd, name, 0);
}

unsigned maildrop_pickup(struct spool *sp, const struct config *cfg, maildrop_taken_fn taken, void *arg)
{
	char dir[4096];
	unsigned n = 0;

	snprintf(dir, sizeof(dir), "%s/%s", spool_dir(sp), MAILDROP_DIR);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *e;

	if (d == NULL) {
		if (dfd >= 0)
			close(dfd);
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (e->d_name[0] == '.') {
			remove_stale(dfd, e->d_name);
			continue;
		}
		if (!maildrop_name_ok(e->d_name)) {
			struct pickup bad = { .sp = sp, .dfd = dfd, .name = e->d_name };
			if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
				bad.uid = st.st_uid;
			damaged(&bad, "%s", "not a maildrop file name");
			move_aside(&bad);
			continue;
		}
		n += take_one(sp, cfg, dfd, e->d_name, taken, arg);
	}
	closedir(d);
	return n;
}

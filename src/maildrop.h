/*
 * maildrop: the spool's drop directory, where subrelay-sendmail leaves a
 * message when the daemon cannot be reached (as Postfix's postdrop), and
 * the format of its files. Writing (subrelay-sendmail) and reading the
 * envelope back (the daemon's pickup, maildrop_pickup.h, and mailq) are
 * here; the daemon's side is in maildrop_pickup.c.
 *
 * RELAY_SPOOL/maildrop is made by the daemon (queue and hybrid modes),
 * mode 1730, group `subrelay` when that group exists: its members may
 * create files there, but neither list nor remove the others'. A file:
 *
 *   subrelay-maildrop 1
 *   uid 1000                      the submitting user as it says (mailq;
 *                                 the daemon logs the file's owner)
 *   MAIL FROM:<a@b> BODY=8BITMIME the envelope as SMTP commands, parsed
 *   RCPT TO:<c@d>                 by the daemon like a client's
 *   (blank line)
 *   the message as SMTP data: CRLF lines, dot-stuffed, ending ".\r\n"
 *
 * It is written as ".NAME.tmp", fsync'd and renamed to NAME (an id, as
 * the queue's), so the daemon never sees half a file; dot files are not
 * picked up.
 */
#ifndef SUBRELAY_MAILDROP_H
#define SUBRELAY_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "id.h"
#include "smtp_parse.h"

#define MAILDROP_DIR "maildrop"
#define MAILDROP_MAGIC "subrelay-maildrop 1"
#define MAILDROP_MODE 01730

/* What a submission brings (subrelay-sendmail's side). */
struct maildrop_submission {
	unsigned long uid;
	const char *from;          /* as the client would send it in MAIL FROM */
	char *const *rcpts;
	unsigned nrcpts;
	bool eight_bit;
};

/* Writes a drop file into SPOOL/maildrop; its name (an id) in name.
 * False with errno and the reason in err. */
bool maildrop_write(const char *spool, const struct maildrop_submission *s, const char *data, size_t len,
    char name[ID_LEN + 1], char *err, size_t errlen);

/* A drop file's envelope, read back. */
struct maildrop_envelope {
	unsigned long uid;
	struct smtp_cmd mail;
	struct smtp_cmd *rcpts;
	unsigned nrcpts;
};

/* Reads the envelope part of f (at most max_rcpts recipients), leaving
 * f at the start of the data; false with the reason in err. */
bool maildrop_read_envelope(FILE *f, unsigned max_rcpts, struct maildrop_envelope *env, char *err, size_t errlen);
void maildrop_envelope_free(struct maildrop_envelope *env);

/* Prints one line per file waiting in SPOOL/maildrop (name, size,
 * sender, recipients) for mailq; the count, or -1 with errno when the
 * directory cannot be listed (its mode lets only the daemon's user). */
int maildrop_list(const char *spool, FILE *out);

/* True for a name the pickup takes (an id; not a dot file). */
bool maildrop_name_ok(const char *name);

#endif

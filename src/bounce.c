/*
 * bounce.c: see bounce.h.
 */
#include "bounce.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "id.h"
#include "log.h"

/* Who is told: the sender, or the address of bounce = ADDRESS. */
static const char *notice_to(const struct spool_msg *m, const struct config *cfg)
{
	return cfg->queue.bounce == BOUNCE_ADDRESS ? cfg->queue.bounce_to : m->from;
}

/* The notice: headers, the failed recipients, the reason; CRLF lines. */
static void compose(char *text, size_t len, const struct spool_msg *m, const struct config *cfg)
{
	char date[64], msgid[ID_LEN + 1], from[SMTP_PATH_MAX + 16];
	size_t n = 0;
	time_t now = time(NULL);
	struct tm tm;

	id_new(msgid);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (cfg->queue.bounce_from != NULL)
		snprintf(from, sizeof(from), "%s", cfg->queue.bounce_from);
	else
		snprintf(from, sizeof(from), "MAILER-DAEMON@%s", cfg->relay.hostname);
	n += (size_t)snprintf(text + n, len - n,
	    "From: Mail Delivery System <%s>\r\nTo: <%s>\r\nDate: %s\r\n"
	    "Message-ID: <%s@%s>\r\nSubject: Undelivered Mail Returned to Sender\r\n"
	    "Auto-Submitted: auto-replied\r\n\r\n",
	    from, notice_to(m, cfg), date, msgid, cfg->relay.hostname);
	if (cfg->queue.bounce == BOUNCE_ADDRESS)
		n += (size_t)snprintf(text + n, len - n, "The message %s from <%s>", m->id, m->from);
	else
		n += (size_t)snprintf(text + n, len - n, "Your message %s", m->id);
	n += (size_t)snprintf(text + n, len - n, " could not be delivered to these recipients:\r\n\r\n");
	/* Room is kept for the reason line: the text must end in CRLF. */
	for (unsigned i = 0; i < m->nrcpts && n + SMTP_PATH_MAX + 6 < len - 330; i++)
		if (m->rcpts[i].state == RCPT_FAILED)
			n += (size_t)snprintf(text + n, len - n, "  <%s>\r\n", m->rcpts[i].addr);
	snprintf(text + n, len - n, "\r\nReason: %.300s\r\n", m->last_error);
}

bool bounce_queue(struct spool *sp, struct committer *c, const struct spool_msg *m, const struct config *cfg,
    double now)
{
	char text[2048], quoted[SMTP_PATH_MAX + 8];
	struct spool_rcpt to = { .state = RCPT_PENDING };
	struct spool_msg env = { .rcpts = &to, .nrcpts = 1, .received = now };

	/* A bounce is never bounced: it comes from <> or from bounce_from. */
	if (cfg->queue.bounce == BOUNCE_NONE || m->from[0] == '\0' ||
	    (cfg->queue.bounce_from != NULL && strcasecmp(m->from, cfg->queue.bounce_from) == 0))
		return false;
	id_new(env.id);
	if (cfg->queue.bounce_from != NULL)
		snprintf(env.from, sizeof(env.from), "%s", cfg->queue.bounce_from);
	snprintf(to.addr, sizeof(to.addr), "%s", notice_to(m, cfg));
	compose(text, sizeof(text), m, cfg);
	struct spool_writer *w = spool_create(sp, &env);
	if (w == NULL || !spool_write(w, text, strlen(text)) || !committer_submit(c, w)) {
		log_error("id=%s cannot queue the bounce: %s", m->id, strerror(errno));
		if (w != NULL) {
			spool_discard(w);
			spool_writer_free(w);
		}
		return false;
	}
	log_info("message id=%s bounce=%s to=%s", m->id, env.id, log_quote(quoted, sizeof(quoted), to.addr));
	return true;
}

/*
 * presets.c: see presets.h. Only public facts, each with where it is
 * published; a user's own keys override every one of them.
 */
#include "presets.h"

#include <stdio.h>
#include <string.h>

struct region {
	const char *name;
	const char *host;          /* NULL: the preset's host with the name for "{region}" */
};

struct preset {
	const char *name;
	const char *host;          /* "{region}" stands for the region; NULL: per region */
	const struct region *regions; /* NULL: takes no region */
	bool region_required;      /* else the first region is the default */
	struct preset_setting settings[PRESET_MAX_SETTINGS - 1]; /* besides host */
};

/* https://docs.aws.amazon.com/general/latest/gr/ses.html (SMTP endpoints) */
static const struct region ses_regions[] = {
	{ "us-east-1", NULL }, { "us-east-2", NULL }, { "us-west-1", NULL }, { "us-west-2", NULL },
	{ "af-south-1", NULL }, { "ap-south-1", NULL }, { "ap-northeast-1", NULL }, { "ap-northeast-2", NULL },
	{ "ap-northeast-3", NULL }, { "ap-southeast-1", NULL }, { "ap-southeast-2", NULL },
	{ "ap-southeast-3", NULL }, { "ca-central-1", NULL }, { "eu-central-1", NULL }, { "eu-west-1", NULL },
	{ "eu-west-2", NULL }, { "eu-west-3", NULL }, { "eu-north-1", NULL }, { "eu-south-1", NULL },
	{ "il-central-1", NULL }, { "me-south-1", NULL }, { "sa-east-1", NULL }, { "us-gov-west-1", NULL },
	{ NULL, NULL },
};

/* https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/ (SMTP) */
static const struct region mailgun_regions[] = {
	{ "us", "smtp.mailgun.org" }, { "eu", "smtp.eu.mailgun.org" }, { NULL, NULL },
};

/* https://support.sparkpost.com/docs/submitting-email/sending-emails-via-smtp */
static const struct region sparkpost_regions[] = {
	{ "us", "smtp.sparkpostmail.com" }, { "eu", "smtp.eu.sparkpostmail.com" }, { NULL, NULL },
};

/* https://www.zoho.com/mail/help/zoho-smtp.html (one host per data centre) */
static const struct region zoho_regions[] = {
	{ "com", "smtp.zoho.com" }, { "eu", "smtp.zoho.eu" }, { "in", "smtp.zoho.in" },
	{ "com.au", "smtp.zoho.com.au" }, { "jp", "smtp.zoho.jp" }, { NULL, NULL },
};

static const struct preset presets[] = {
	/* https://docs.aws.amazon.com/ses/latest/dg/smtp-connect.html: STARTTLS on 25, 587, 2587;
	 * TLS wrapper on 465, 2465. Credentials are the SMTP user, not the IAM keys.
	 * https://docs.aws.amazon.com/ses/latest/dg/quotas.html: messages up to 40 MB. */
	{ "ses", "email-smtp.{region}.amazonaws.com", ses_regions, true,
	    { { "ports", "587/starttls, 2587/starttls, 465/implicit, 2465/implicit" }, { "max_message_size", "40M" } } },
	/* https://www.twilio.com/docs/sendgrid/for-developers/sending-email/integrating-with-the-smtp-api:
	 * 587 and 2525 (STARTTLS), 465 (TLS); the user is literally "apikey"; messages up to 30 MB. */
	{ "sendgrid", "smtp.sendgrid.net", NULL, false,
	    { { "ports", "587/starttls, 2525/starttls, 465/implicit" }, { "username", "apikey" },
	        { "max_message_size", "30M" } } },
	/* Mailgun (above): 587 and 2525 STARTTLS, 465 TLS. */
	{ "mailgun", NULL, mailgun_regions, false,
	    { { "ports", "587/starttls, 2525/starttls, 465/implicit" } } },
	/* https://postmarkapp.com/developer/user-guide/send-email-with-smtp: 587 and 2525 with
	 * STARTTLS; no implicit TLS port. https://postmarkapp.com/support/article/1071: 10 MB per
	 * message, 50 recipients (To, Cc and Bcc together). */
	{ "postmark", "smtp.postmarkapp.com", NULL, false,
	    { { "ports", "587/starttls, 2525/starttls" }, { "max_message_size", "10M" },
	        { "max_recipients", "50" } } },
	/* https://learn.microsoft.com/exchange/mail-flow-best-practices/how-to-set-up-a-multifunction-device-
	 * or-application-to-send-email-using-microsoft-365-or-office-365: SMTP AUTH client submission
	 * on smtp.office365.com 587 with STARTTLS. Basic authentication goes away (DESIGN.md): OAuth2,
	 * https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-
	 * imap-pop-smtp-application-by-using-oauth: the application scope for SMTP. The token URL
	 * names the tenant: the user writes it.
	 * https://learn.microsoft.com/office365/servicedescriptions/exchange-online-service-description/
	 * exchange-online-limits (Sending limits): SMTP AUTH client submission, 30 messages per minute. */
	{ "m365", "smtp.office365.com", NULL, false,
	    { { "ports", "587/starttls" }, { "auth", "xoauth2" },
	        { "oauth2_scope", "https://outlook.office365.com/.default" }, { "rate", "30/m" } } },
	/* https://support.google.com/a/answer/176600: smtp.gmail.com 587 (STARTTLS), 465 (SSL).
	 * https://support.google.com/mail/answer/6584: messages up to 25 MB.
	 * https://developers.google.com/gmail/imap/xoauth2-protocol: with auth = xoauth2, the token
	 * endpoint and the scope for SMTP (app passwords work with the default auth). */
	{ "gmail", "smtp.gmail.com", NULL, false,
	    { { "ports", "587/starttls, 465/implicit" }, { "max_message_size", "25M" },
	        { "oauth2_token_url", "https://oauth2.googleapis.com/token" },
	        { "oauth2_scope", "https://mail.google.com/" } } },
	/* The same page, SMTP relay service: smtp-relay.gmail.com 587 (TLS), 465 (SSL). */
	{ "google-relay", "smtp-relay.gmail.com", NULL, false,
	    { { "ports", "587/starttls, 465/implicit" } } },
	/* https://help.brevo.com/hc/en-us/articles/7924908994450: smtp-relay.brevo.com, 587 (or 2525)
	 * with STARTTLS, 465 with SSL. */
	{ "brevo", "smtp-relay.brevo.com", NULL, false,
	    { { "ports", "587/starttls, 2525/starttls, 465/implicit" } } },
	/* https://dev.mailjet.com/smtp-relay/configuration/: in-v3.mailjet.com, 587 (and 25, 80, 588,
	 * 2525) with TLS, 465 with SSL. */
	{ "mailjet", "in-v3.mailjet.com", NULL, false,
	    { { "ports", "587/starttls, 2525/starttls, 465/implicit" } } },
	/* SparkPost (above): 587 and 2525 with STARTTLS; the user is "SMTP_Injection". */
	{ "sparkpost", NULL, sparkpost_regions, false,
	    { { "ports", "587/starttls, 2525/starttls" }, { "username", "SMTP_Injection" } } },
	/* https://help.mailtrap.io/article/109-getting-started-with-mailtrap-email-sending:
	 * live.smtp.mailtrap.io, 587 (or 2525) STARTTLS, 465 SSL; the user is "api". */
	{ "mailtrap", "live.smtp.mailtrap.io", NULL, false,
	    { { "ports", "587/starttls, 2525/starttls, 465/implicit" }, { "username", "api" } } },
	/* Zoho Mail (above): 587 with TLS, 465 with SSL. */
	{ "zoho", NULL, zoho_regions, false,
	    { { "ports", "587/starttls, 465/implicit" } } },
};

#define NPRESETS (sizeof(presets) / sizeof(presets[0]))

/* "a, b, c" into out. */
static void list_names(char *out, size_t len, const char *(*name_of)(size_t i, const void *ctx), const void *ctx)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; name_of(i, ctx) != NULL && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? ", " : "", name_of(i, ctx));
}

static const char *preset_name_at(size_t i, const void *ctx)
{
	(void)ctx;
	return i < NPRESETS ? presets[i].name : NULL;
}

static const char *region_name_at(size_t i, const void *ctx)
{
	return ((const struct region *)ctx)[i].name;
}

static const struct region *find_region(const struct preset *p, const char *name)
{
	for (const struct region *r = p->regions; r->name != NULL; r++)
		if (strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

static bool fill_host(const struct preset *p, const char *region, struct preset_values *out, char *err,
    size_t errlen)
{
	char known[600];
	const struct region *r = NULL;

	if (p->regions == NULL && region != NULL) {
		snprintf(err, errlen, "preset %s takes no region", p->name);
		return false;
	}
	if (p->regions != NULL) {
		r = region != NULL ? find_region(p, region) : p->region_required ? NULL : &p->regions[0];
		if (r == NULL) {
			list_names(known, sizeof(known), region_name_at, p->regions);
			if (region != NULL)
				snprintf(err, errlen, "unknown region \"%.64s\" for preset %s (known regions: %s)", region,
				    p->name, known);
			else
				snprintf(err, errlen, "preset %s needs a region, e.g. %s:%s (known regions: %s)", p->name,
				    p->name, p->regions[0].name, known);
			return false;
		}
	}
	const char *host = r != NULL && r->host != NULL ? r->host : p->host;
	const char *mark = r != NULL ? strstr(host, "{region}") : NULL;
	if (mark != NULL)
		snprintf(out->host, sizeof(out->host), "%.*s%s%s", (int)(mark - host), host, r->name,
		    mark + strlen("{region}"));
	else
		snprintf(out->host, sizeof(out->host), "%s", host);
	return true;
}

bool preset_resolve(const char *spec, struct preset_values *out, char *err, size_t errlen)
{
	char name[64], known[600];
	const char *colon = strchr(spec, ':');
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);

	snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) ? n : sizeof(name) - 1), spec);
	for (const struct preset *p = presets; p < presets + NPRESETS; p++) {
		if (strcmp(p->name, name) != 0)
			continue;
		if (!fill_host(p, colon ? colon + 1 : NULL, out, err, errlen))
			return false;
		out->n = 0;
		out->settings[out->n++] = (struct preset_setting){ "host", out->host };
		for (const struct preset_setting *s = p->settings; s->key != NULL; s++)
			out->settings[out->n++] = *s;
		return true;
	}
	list_names(known, sizeof(known), preset_name_at, NULL);
	snprintf(err, errlen, "unknown preset \"%.64s\" (known presets: %s)", name, known);
	return false;
}

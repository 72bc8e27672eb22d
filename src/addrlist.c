/*
 * addrlist.c: see addrlist.h. Two passes over a copy of the value: the
 * first drops comments and turns folding into spaces, the second splits
 * it into elements at the commas (and group colons and semicolons) that
 * are outside quotes and angle brackets.
 */
#include "addrlist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Copies value without its comments, blanks as spaces; false when a
 * comment or quoted string does not end. */
static bool strip_comments(const char *v, size_t len, char *out)
{
	bool quoted = false;
	int depth = 0;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		if (c == '\\' && i + 1 < len && (quoted || depth > 0)) {
			if (depth == 0) {
				out[o++] = c;
				out[o++] = v[i + 1];
			}
			i++;
			continue;
		}
		if (depth > 0) {
			depth += c == '(' ? 1 : c == ')' ? -1 : 0;
			if (depth == 0)
				out[o++] = ' ';
			continue;
		}
		if (c == '"')
			quoted = !quoted;
		else if (c == '(' && !quoted) {
			depth = 1;
			continue;
		}
		out[o++] = is_blank(c) ? ' ' : c;
	}
	out[o] = '\0';
	return !quoted && depth == 0;
}

static char *trim(char *s)
{
	while (*s == ' ')
		s++;
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == ' ')
		s[--n] = '\0';
	return s;
}

/* True when s has a space outside quotes (not one address). */
static bool has_bare_space(const char *s)
{
	bool quoted = false;

	for (; *s; s++) {
		if (*s == '\\' && quoted && s[1] != '\0')
			s++;
		else if (*s == '"')
			quoted = !quoted;
		else if (*s == ' ' && !quoted)
			return true;
	}
	return false;
}

/* One element: "addr", "Name <addr>", "<@route:addr>"; "" is skipped. */
static bool element(char *e, addrlist_fn fn, void *arg, char *err, size_t errlen)
{
	char *addr = trim(e);
	char *lt = NULL;
	bool quoted = false;

	for (char *p = addr; *p && lt == NULL; p++) {
		if (*p == '\\' && quoted && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '<' && !quoted)
			lt = p;
	}
	if (lt != NULL) {
		char *gt = strchr(lt, '>');
		if (gt == NULL || *trim(gt + 1) != '\0') {
			snprintf(err, errlen, "not an address: %.200s", addr);
			return false;
		}
		*gt = '\0';
		addr = trim(lt + 1);
		if (addr[0] == '@' && strchr(addr, ':') != NULL) /* a source route, obsolete: dropped */
			addr = trim(strchr(addr, ':') + 1);
	}
	if (addr[0] == '\0')
		return true;
	if (has_bare_space(addr) || strchr(addr, '<') != NULL || strchr(addr, '>') != NULL) {
		snprintf(err, errlen, "not an address: %.200s", addr);
		return false;
	}
	if (!fn(addr, arg)) {
		if (errlen > 0)
			err[0] = '\0';
		return false;
	}
	return true;
}

bool addrlist_parse(const char *value, size_t len, addrlist_fn fn, void *arg, char *err, size_t errlen)
{
	char *text = malloc(len * 2 + 1);
	bool ok = text != NULL, quoted = false, angle = false;

	if (!ok)
		snprintf(err, errlen, "out of memory");
	else if (!(ok = strip_comments(value, len, text)))
		snprintf(err, errlen, "unterminated comment or quoted string");
	char *start = text;
	for (char *p = text; ok && p != NULL; p++) {
		char c = *p;
		if (c == '\\' && quoted && p[1] != '\0') {
			p++;
			continue;
		}
		if (c == '"' && !angle)
			quoted = !quoted;
		else if (!quoted && c == '<')
			angle = true;
		else if (!quoted && c == '>')
			angle = false;
		else if (!quoted && !angle && c == ':')
			start = p + 1; /* a group's name: its members follow */
		else if ((!quoted && !angle && (c == ',' || c == ';')) || c == '\0') {
			*p = '\0';
			ok = element(start, fn, arg, err, errlen);
			start = p + 1;
			if (c == '\0')
				break;
		}
	}
	free(text);
	return ok;
}

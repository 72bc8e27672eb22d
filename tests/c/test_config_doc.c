/*
 * test_config_doc: man/subrelay.ini.5 is the reference of every key, so it
 * must list each key of the table in src/config_keys.c under its section,
 * with its default, and nothing that is not a key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config_keys.h"

#define MAX_ENTRIES 128

struct entry {
	enum sect_kind kind;
	char name[64];
	char *text;    /* the entry's lines, up to the next .It or .El */
	bool matched;
};

static struct entry entries[MAX_ENTRIES];
static size_t nentries;

/* ".Ss [relay] section" and its kind; -1 for any other line. */
static int section_of(const char *line)
{
	static const char *const heads[SECT_NKINDS] = { "[relay]", "[provider", "[route", "[queue]" };

	if (strncmp(line, ".Ss ", 4) != 0)
		return -1;
	for (int k = 0; k < SECT_NKINDS; k++)
		if (strncmp(line + 4, heads[k], strlen(heads[k])) == 0)
			return k;
	return SECT_NKINDS; /* another subsection: not keys */
}

static void append(char **text, const char *line)
{
	size_t old = *text ? strlen(*text) : 0;
	char *bigger = realloc(*text, old + strlen(line) + 1);

	if (bigger == NULL)
		abort();
	strcpy(bigger + old, line);
	*text = bigger;
}

static void read_page(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int kind = SECT_NKINDS;
	struct entry *cur = NULL;

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		int k = section_of(line);
		if (k >= 0 || strncmp(line, ".Sh ", 4) == 0) {
			kind = k >= 0 ? k : SECT_NKINDS;
			cur = NULL;
			continue;
		}
		if (strncmp(line, ".It ", 4) == 0 || strncmp(line, ".El", 3) == 0)
			cur = NULL;
		if (kind < SECT_NKINDS && strncmp(line, ".It Cm ", 7) == 0 && nentries < MAX_ENTRIES) {
			cur = &entries[nentries++];
			cur->kind = (enum sect_kind)kind;
			sscanf(line + 7, "%63s", cur->name);
			continue;
		}
		if (cur != NULL)
			append(&cur->text, line);
	}
	fclose(f);
}

static struct entry *find(enum sect_kind kind, const char *name)
{
	for (size_t i = 0; i < nentries; i++)
		if (entries[i].kind == kind && strcmp(entries[i].name, name) == 0)
			return &entries[i];
	return NULL;
}

/* The documented default: the table's text (an empty one reads "empty");
 * a built-in path only needs its "Default:" line, its prefix varies. */
static bool default_documented(const struct key_def *k, const char *text)
{
	const char *d = strstr(text, "Default:");

	if (k->def == NULL)
		return true;
	if (d == NULL)
		return false;
	if (k->def[0] == '\0')
		return strncmp(d, "Default: empty", 14) == 0;
	return k->def[0] == '/' || strstr(d, k->def) != NULL;
}

int main(void)
{
	read_page(MANPAGE);
	CHECK(nentries > 0);
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct key_def *k = &config_keys[i];
		struct entry *e = find(k->kind, k->name);
		if (e == NULL) {
			fprintf(stderr, "%s: [%s] %s is not documented\n", MANPAGE, config_sect_names[k->kind], k->name);
			CHECK(e != NULL);
			continue;
		}
		e->matched = true;
		if (!default_documented(k, e->text ? e->text : "")) {
			fprintf(stderr, "%s: [%s] %s: default \"%s\" not documented\n", MANPAGE,
			    config_sect_names[k->kind], k->name, k->def);
			CHECK(false);
		}
	}
	for (size_t i = 0; i < nentries; i++) {
		if (!entries[i].matched)
			fprintf(stderr, "%s: [%s] %s is documented but is not a key\n", MANPAGE,
			    config_sect_names[entries[i].kind], entries[i].name);
		CHECK(entries[i].matched);
		free(entries[i].text);
	}
	return check_summary("test_config_doc");
}

/*
 * fuzz_spool: the spool's file loader (spool.h) on damaged files, as a
 * restart after a crash or a full disk may find them. The input is a
 * message file and its state file, separated by the line "--state--";
 * byte 0 says whether they are in queue/ or failed/. Invariants:
 *
 *  - a loaded message has a recipient, NUL-terminated fields, and its
 *    data offset and size inside the file; its data can be opened;
 *  - a state that was loaded is saved and loads back the same (attempts,
 *    next try, last error, which recipients are done), and saving it
 *    again writes the same file: a restart never drifts.
 *
 * The spool is a private directory under $TMPDIR (saving a state
 * fsyncs: tests/fuzz/run.sh points TMPDIR at /dev/shm when it can).
 */
#include <string.h>

#include "fuzz.h"
#include "spool.h"

#define ID "0ABCDEFGHJKM"
#define SEPARATOR "\n--state--\n"

static struct spool *sp;
static char dir[4000];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char err[256];

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/fuzz_spool.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
	FUZZ_CHECK(mkdtemp(dir) != NULL);
	sp = spool_open(dir, err, sizeof(err));
	if (sp == NULL)
		fprintf(stderr, "fuzz_spool: %s\n", err);
	FUZZ_CHECK(sp != NULL);
	return 0;
}

static void write_file(const char *sub, const char *suffix, const char *p, size_t n)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s/%s%s", dir, sub, ID, suffix);
	FILE *f = fopen(path, "w");
	FUZZ_CHECK(f != NULL && fwrite(p, 1, n, f) == n && fclose(f) == 0);
}

/* The state file as saved (static). */
static const char *saved_state(void)
{
	static char text[4096];
	char path[4200];
	snprintf(path, sizeof(path), "%s/queue/%s.st", dir, ID);
	FILE *f = fopen(path, "r");
	FUZZ_CHECK(f != NULL);
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	return text;
}

static void check_loaded(const struct spool_msg *m, size_t filelen)
{
	FUZZ_CHECK(m->nrcpts > 0);
	FUZZ_CHECK(strnlen(m->id, sizeof(m->id)) < sizeof(m->id));
	FUZZ_CHECK(strnlen(m->from, sizeof(m->from)) < sizeof(m->from));
	FUZZ_CHECK(strnlen(m->last_error, sizeof(m->last_error)) < sizeof(m->last_error));
	for (unsigned i = 0; i < m->nrcpts; i++)
		FUZZ_CHECK(strnlen(m->rcpts[i].addr, sizeof(m->rcpts[i].addr)) < sizeof(m->rcpts[i].addr));
	FUZZ_CHECK(m->data_offset > 0 && (size_t)m->data_offset <= filelen);
	FUZZ_CHECK(m->size == filelen - (size_t)m->data_offset);
}

/* Save, load, save: the same state each time. */
static void check_round_trip(const struct spool_msg *m)
{
	struct spool_msg again;
	char first[4096];

	FUZZ_CHECK(spool_save_state(sp, m));
	snprintf(first, sizeof(first), "%s", saved_state());
	FUZZ_CHECK(spool_load(sp, ID, false, &again));
	FUZZ_CHECK(again.attempts == m->attempts && strcmp(again.last_error, m->last_error) == 0);
	FUZZ_CHECK(again.nrcpts == m->nrcpts);
	for (unsigned i = 0; i < m->nrcpts; i++)
		FUZZ_CHECK(again.rcpts[i].state == m->rcpts[i].state);
	FUZZ_CHECK(spool_save_state(sp, &again));
	FUZZ_CHECK(strcmp(first, saved_state()) == 0);
	spool_msg_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool failed = data[0] & 1;
	const char *sub = failed ? "failed" : "queue";
	const char *msg = (const char *)data + 1, *st = NULL;
	size_t len = size - 1, stlen = 0;
	const char *sep = memmem(msg, len, SEPARATOR, strlen(SEPARATOR));
	if (sep != NULL) {
		st = sep + strlen(SEPARATOR);
		stlen = len - (size_t)(st - msg);
		len = (size_t)(sep - msg) + 1;
	}
	write_file(sub, "", msg, len);
	if (st != NULL)
		write_file(sub, ".st", st, stlen);

	struct spool_msg m;
	if (spool_load(sp, ID, failed, &m)) {
		check_loaded(&m, len);
		FILE *f = failed ? NULL : spool_open_data(sp, &m);
		FUZZ_CHECK(failed || f != NULL);
		if (f != NULL)
			fclose(f);
		if (!failed)
			check_round_trip(&m);
		spool_msg_free(&m);
	}
	spool_remove(sp, ID);
	spool_remove_failed(sp, ID);
	return 0;
}

/*
 * fuzz_config: the configuration loader (config.h) on a file and `-o`
 * overrides taken from the input: the text before the first line "--"
 * is the file, each line after it one override (at most 16). Loaded with
 * config_print(), which also prints the effective configuration.
 * Invariants:
 *
 *  - loading fails exactly when errors were printed;
 *  - every error line is `FILE:LINE: message` or `-o:N: message`, N >= 1;
 *  - a loaded configuration prints as "SECTION.KEY = VALUE" lines.
 *
 * The file lives in a private temporary directory. Keys that read files
 * (password_file, tls_ca_file, ...) may name any path: run the target
 * with stdin closed or from /dev/null (tests/fuzz/run.sh does).
 */
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

#define OVERRIDES_MAX 16

static char path[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char dir[4000];

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/fuzz_config.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
	FUZZ_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/subrelay.ini", dir);
	return 0;
}

/* Whether line[0..len) starts with "PREFIX:N: " and has a message. */
static bool error_line_ok(const char *line, size_t len, const char *prefix)
{
	size_t plen = strlen(prefix), i;

	if (len <= plen + 1 || memcmp(line, prefix, plen) != 0 || line[plen] != ':')
		return false;
	for (i = plen + 1; i < len && line[i] >= '0' && line[i] <= '9'; i++)
		;
	return i > plen + 1 && line[plen + 1] != '0' && i + 2 < len && line[i] == ':' && line[i + 1] == ' ';
}

static void check_lines(const char *text, size_t n, bool errors)
{
	const char *p = text, *end = text + n;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (errors)
			FUZZ_CHECK(error_line_ok(p, len, path) || error_line_ok(p, len, "-o"));
		else
			FUZZ_CHECK(memchr(p, '.', len) != NULL && memmem(p, len, " =", 2) != NULL);
		p += len + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *input = strndup((const char *)data, size), *overrides[OVERRIDES_MAX];
	unsigned n = 0;
	FUZZ_CHECK(input != NULL);
	size_t filelen = strlen(input);

	char *sep = strstr(input, "\n--\n");
	if (sep != NULL) {
		filelen = (size_t)(sep - input) + 1;
		for (char *o = strtok(sep + 4, "\n"); o != NULL && n < OVERRIDES_MAX; o = strtok(NULL, "\n"))
			overrides[n++] = o;
	}
	FILE *f = fopen(path, "w");
	FUZZ_CHECK(f != NULL && fwrite(input, 1, filelen, f) == filelen && fclose(f) == 0);

	char *out = NULL, *errs = NULL;
	size_t outlen = 0, errlen = 0;
	FILE *outf = open_memstream(&out, &outlen), *errf = open_memstream(&errs, &errlen);
	FUZZ_CHECK(outf != NULL && errf != NULL);
	bool ok = config_print(path, overrides, n, outf, errf);
	FUZZ_CHECK(fclose(outf) == 0 && fclose(errf) == 0);

	FUZZ_CHECK(ok == (errlen == 0));
	check_lines(errs, errlen, true);
	if (ok)
		check_lines(out, outlen, false);
	free(out);
	free(errs);
	free(input);
	return 0;
}

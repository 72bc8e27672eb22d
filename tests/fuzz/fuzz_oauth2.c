/*
 * fuzz_oauth2: what a token endpoint and a provider say about OAuth2,
 * parsed: oauth2_parse_answer() on the endpoint's answer (byte 0 picks
 * the HTTP status, the rest is the body) and oauth2_describe_challenge()
 * on the same bytes as a provider's XOAUTH2 error challenge. Invariants:
 *
 *  - an accepted answer came with status 200 and holds a usable token
 *    (1..8192 printable bytes: it goes into a SASL response) and a
 *    lifetime that is positive, finite and at most OAUTH2_LIFETIME_MAX
 *    (it becomes a timer and an expiry timestamp);
 *  - a refused one holds nothing and says why in one log-safe line;
 *  - a described challenge holds no control byte.
 */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "log.h"
#include "oauth2.h"

static void check_log_safe(const char *s, size_t cap)
{
	char quoted[1024];
	size_t n = strnlen(s, cap);

	FUZZ_CHECK(n < cap);
	log_quote(quoted, sizeof(quoted), s);
	for (const char *p = quoted; *p; p++)
		FUZZ_CHECK(!fuzz_is_ctl((unsigned char)*p));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = { 200, 200, 200, 400, 401, 500, 0, 302 };
	struct oauth2_answer a;
	char result[400], described[256];

	if (size < 1)
		return 0;
	long status = statuses[data[0] % 8];
	const char *body = (const char *)data + 1;
	size_t len = size - 1;

	if (oauth2_parse_answer(status, len > 0 ? body : NULL, len, &a, result, sizeof(result))) {
		FUZZ_CHECK(status == 200 && a.token != NULL);
		size_t n = strlen(a.token);
		FUZZ_CHECK(n > 0 && n <= 8192);
		for (const char *p = a.token; *p; p++)
			FUZZ_CHECK(isgraph((unsigned char)*p));
		FUZZ_CHECK(isfinite(a.lifetime) && a.lifetime > 0 && a.lifetime <= OAUTH2_LIFETIME_MAX);
	} else {
		FUZZ_CHECK(a.token == NULL && a.refresh_token == NULL);
		FUZZ_CHECK(result[0] != '\0');
		check_log_safe(result, sizeof(result));
	}
	oauth2_answer_clear(&a);

	char *b64 = strndup(body, len);
	FUZZ_CHECK(b64 != NULL);
	if (oauth2_describe_challenge(b64, described, sizeof(described)))
		for (const char *p = described; *p; p++)
			FUZZ_CHECK(!fuzz_is_ctl((unsigned char)*p));
	free(b64);
	return 0;
}

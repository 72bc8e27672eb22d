/*
 * test_sasl: base64 and the PLAIN / LOGIN responses (sasl.c).
 */
#include "check.h"
#include "sasl.h"

static void test_base64(void)
{
	char out[16];
	size_t n;

	CHECK(sasl_base64_decode("", 0, out, sizeof(out), &n) && n == 0);
	CHECK(sasl_base64_decode("YQ==", 4, out, sizeof(out), &n));
	CHECK_MEM(out, n, "a", 1);
	CHECK(sasl_base64_decode("YWI=", 4, out, sizeof(out), &n));
	CHECK_MEM(out, n, "ab", 2);
	CHECK(sasl_base64_decode("YWJj", 4, out, sizeof(out), &n));
	CHECK_MEM(out, n, "abc", 3);
	CHECK(sasl_base64_decode("AGEAYg==", 8, out, sizeof(out), &n));
	CHECK_MEM(out, n, "\0a\0b", 4);
	CHECK(!sasl_base64_decode("YQ=", 3, out, sizeof(out), &n));      /* padding required */
	CHECK(!sasl_base64_decode("YQ==YQ==", 8, out, sizeof(out), &n)); /* padding inside */
	CHECK(!sasl_base64_decode("Y===", 4, out, sizeof(out), &n));
	CHECK(!sasl_base64_decode("YW=j", 4, out, sizeof(out), &n));
	CHECK(!sasl_base64_decode("YW j", 4, out, sizeof(out), &n));
	CHECK(!sasl_base64_decode("YWJjYWJjYWJjYWJj", 16, out, 12, &n)); /* does not fit */
}

static void test_plain(void)
{
	struct sasl_creds c;

	/* "\0app1\0s3cret" */
	CHECK(sasl_plain("AGFwcDEAczNjcmV0", 16, &c) == SASL_OK);
	CHECK_STR(c.user, "app1");
	CHECK_STR(c.pass, "s3cret");
	/* "app1\0app1\0s3cret": authzid = authcid is fine */
	CHECK(sasl_plain("YXBwMQBhcHAxAHMzY3JldA==", 24, &c) == SASL_OK);
	CHECK_STR(c.user, "app1");
	/* "admin\0app1\0s3cret": acting as another user is not */
	CHECK(sasl_plain("YWRtaW4AYXBwMQBzM2NyZXQ=", 24, &c) == SASL_BAD_MESSAGE);
	/* "\0app1" (no password) and "\0\0pw" (no user) */
	CHECK(sasl_plain("AGFwcDE=", 8, &c) == SASL_BAD_MESSAGE);
	CHECK(sasl_plain("AABwdw==", 8, &c) == SASL_BAD_MESSAGE);
	CHECK(sasl_plain("*", 1, &c) == SASL_CANCELLED);
	CHECK(sasl_plain("not base64!", 11, &c) == SASL_BAD_BASE64);
	sasl_creds_wipe(&c);
	CHECK(c.user[0] == '\0' && c.pass[0] == '\0');
}

static void test_login(void)
{
	char out[32];

	CHECK(sasl_login_field("YXBwMQ==", 8, out, sizeof(out)) == SASL_OK);
	CHECK_STR(out, "app1");
	CHECK(sasl_login_field("*", 1, out, sizeof(out)) == SASL_CANCELLED);
	CHECK(sasl_login_field("", 0, out, sizeof(out)) == SASL_BAD_MESSAGE);
	CHECK(sasl_login_field("YQBi", 4, out, sizeof(out)) == SASL_BAD_MESSAGE); /* a NUL inside */
	CHECK(sasl_login_field("%%%%", 4, out, sizeof(out)) == SASL_BAD_BASE64);
}

int main(void)
{
	test_base64();
	test_plain();
	test_login();
	return check_summary("test_sasl");
}

/*
 * test_users: the users_file parser (users.c): what it accepts, and the
 * PATH:LINE of what it refuses.
 */
#include <stdlib.h>

#include "check.h"
#include "users.h"

static char err[300];

static const char *Y = "$y$j9T$abcdefghijklmnop$3dL1LkYnZM.OVXuVdnnaKVDlLYT92dRwOzDZ5XiVCe.";
static const char *S = "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.";

static void test_good(void)
{
	char text[600];

	snprintf(text, sizeof(text), "# clients\n\n  app1:%s  \r\nscanner@office:%s\n", Y, S);
	struct users *u = users_parse(text, "/etc/u", err, sizeof(err));
	CHECK(u != NULL);
	if (u == NULL)
		return;
	CHECK(users_count(u) == 2);
	CHECK_STR(users_hash(u, "app1"), Y);
	CHECK_STR(users_hash(u, "scanner@office"), S);
	CHECK(users_hash(u, "app") == NULL);
	CHECK(users_hash(u, "APP1") == NULL);
	CHECK_STR(users_decoy_hash(u), Y);
	users_free(u);
}

static void refused(const char *text, const char *want)
{
	struct users *u = users_parse(text, "/etc/u", err, sizeof(err));
	CHECK(u == NULL);
	CHECK_STR(err, want);
	users_free(u);
}

static void test_bad(void)
{
	refused("# nothing\n", "/etc/u: no users in it");
	refused("app1\n", "/etc/u:1: expected user:HASH");
	refused("\n:$6$x$y\n", "/etc/u:2: bad user name (1 to 128 characters, no blanks)");
	refused("a b:$6$x$y\n", "/etc/u:1: bad user name (1 to 128 characters, no blanks)");
	refused("app1:secret\n", "/etc/u:1: user app1: not a crypt(3) hash (e.g. $y$... from mkpasswd, "
	    "$6$... from openssl passwd -6)");
	refused("app1:$6$x y$z\n", "/etc/u:1: user app1: not a crypt(3) hash (e.g. $y$... from mkpasswd, "
	    "$6$... from openssl passwd -6)");
	refused("app1:$6$x$y\n#\napp1:$6$x$z\n", "/etc/u:3: user app1: listed twice");
}

int main(void)
{
	test_good();
	test_bad();
	return check_summary("test_users");
}

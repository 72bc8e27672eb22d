/*
 * test_id.c: message and session ids. A spool file is named by its id, so
 * two ids of one process must never be equal, however fast they come,
 * and a forked worker must not repeat its parent's sequence.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "id.h"

#define MANY 2000000

static int compare(const void *a, const void *b)
{
	return memcmp(a, b, ID_LEN);
}

/* Sorted ids have no two neighbours alike. */
static unsigned duplicates(char (*ids)[ID_LEN + 1], size_t n)
{
	unsigned dups = 0;
	qsort(ids, n, sizeof(*ids), compare);
	for (size_t i = 1; i < n; i++)
		dups += memcmp(ids[i - 1], ids[i], ID_LEN) == 0;
	return dups;
}

static void test_alphabet_and_length(void)
{
	char id[ID_LEN + 1];
	id_new(id);
	CHECK(strlen(id) == ID_LEN);
	CHECK(strspn(id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") == ID_LEN);
}

static void test_no_repeat_in_one_process(void)
{
	char (*ids)[ID_LEN + 1] = malloc(MANY * sizeof(*ids));
	CHECK(ids != NULL);
	if (ids == NULL)
		return;
	for (size_t i = 0; i < MANY; i++)
		id_new(ids[i]);
	CHECK(duplicates(ids, MANY) == 0);
	free(ids);
}

/* The child's first ids differ from the parent's next ones. */
static void test_fork_reseeds(void)
{
	enum { N = 1000 };
	char (*ids)[ID_LEN + 1] = malloc(2 * N * sizeof(*ids));
	int fds[2];

	CHECK(ids != NULL && pipe(fds) == 0);
	id_new(ids[0]); /* seeded before the fork */
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < N; i++) {
			char id[ID_LEN + 1];
			id_new(id);
			if (write(fds[1], id, ID_LEN) != ID_LEN)
				_exit(1);
		}
		_exit(0);
	}
	close(fds[1]);
	for (int i = 0; i < N; i++)
		id_new(ids[i]);
	for (int i = N; i < 2 * N; i++) {
		CHECK(read(fds[0], ids[i], ID_LEN) == ID_LEN);
		ids[i][ID_LEN] = '\0';
	}
	close(fds[0]);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(duplicates(ids, 2 * N) == 0);
	free(ids);
}

int main(void)
{
	test_alphabet_and_length();
	test_no_repeat_in_one_process();
	test_fork_reseeds();
	return check_summary("test_id");
}

/*
 * tests/unit/test_tokens.c - the rung jobserver: a pipe with one byte per
 * rung that may run; take never blocks; a token given back can be taken
 * again; a child process adopting the pipe from LADDERD_TOKENS shares the
 * same limit with its parent.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tokens.h"

static void
test_take_give(void **state)
{
	struct ladderd_tokens t = { -1, -1 };

	(void)state;
	assert_int_equal(ladderd_tokens_init(&t, 3), 0);
	assert_int_equal(ladderd_tokens_take(&t), 1);
	assert_int_equal(ladderd_tokens_take(&t), 1);
	assert_int_equal(ladderd_tokens_take(&t), 1);
	/* All taken: 0 at once, never a wait. */
	assert_int_equal(ladderd_tokens_take(&t), 0);
	ladderd_tokens_give(&t);
	assert_int_equal(ladderd_tokens_take(&t), 1);
	assert_int_equal(ladderd_tokens_take(&t), 0);
	/* Both ends close on exec unless exported. */
	assert_true(fcntl(t.rfd, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(t.wfd, F_GETFD) & FD_CLOEXEC);
	ladderd_tokens_release(&t);
	assert_int_equal(t.rfd, -1);
	assert_int_equal(t.wfd, -1);
	ladderd_tokens_release(&t); /* twice is harmless */
}

static void
test_zero_tokens(void **state)
{
	struct ladderd_tokens t = { -1, -1 };

	(void)state;
	assert_int_equal(ladderd_tokens_init(&t, 0), 0);
	assert_int_equal(ladderd_tokens_take(&t), 0);
	/* No writer left and nothing in the pipe: an error, not "none now". */
	close(t.wfd);
	t.wfd = -1;
	assert_int_equal(ladderd_tokens_take(&t), -EPIPE);
	ladderd_tokens_release(&t);
}

static void
test_env(void **state)
{
	struct ladderd_tokens t = { -1, -1 }, u = { -1, -1 };
	char want[32];

	(void)state;
	assert_int_equal(unsetenv("LADDERD_TOKENS"), 0);
	assert_int_equal(ladderd_tokens_from_env(&u), -ENOENT);
	assert_int_equal(setenv("LADDERD_TOKENS", "garbage", 1), 0);
	assert_int_equal(ladderd_tokens_from_env(&u), -ENOENT);
	assert_int_equal(setenv("LADDERD_TOKENS", "1000,1001", 1), 0);
	assert_int_equal(ladderd_tokens_from_env(&u), -EBADF);

	assert_int_equal(ladderd_tokens_init(&t, 1), 0);
	assert_int_equal(ladderd_tokens_export(&t), 0);
	snprintf(want, sizeof(want), "%d,%d", t.rfd, t.wfd);
	assert_string_equal(getenv("LADDERD_TOKENS"), want);
	/* Exported: the next exec'd job inherits both ends. */
	assert_false(fcntl(t.rfd, F_GETFD) & FD_CLOEXEC);
	assert_false(fcntl(t.wfd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(ladderd_tokens_from_env(&u), 0);
	assert_int_equal(u.rfd, t.rfd);
	assert_int_equal(u.wfd, t.wfd);
	/* The adopter closes them on its own exec, and never blocks. */
	assert_true(fcntl(u.rfd, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(u.rfd, F_GETFL) & O_NONBLOCK);
	ladderd_tokens_release(&t);
	assert_int_equal(unsetenv("LADDERD_TOKENS"), 0);
}

/*
 * Two processes, one limit: a child adopts the pipe and takes both tokens;
 * the parent then has none until the child gives one back.
 */
static void
test_shared_across_processes(void **state)
{
	struct ladderd_tokens t = { -1, -1 };
	int ready[2], go[2], st = 0;
	char c;
	pid_t pid;

	(void)state;
	assert_int_equal(ladderd_tokens_init(&t, 2), 0);
	assert_int_equal(ladderd_tokens_export(&t), 0);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ladderd_tokens u = { -1, -1 };
		int rc = 0;

		if (ladderd_tokens_from_env(&u) < 0 ||
		    ladderd_tokens_take(&u) != 1 ||
		    ladderd_tokens_take(&u) != 1)
			rc = 1;
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			rc = 1;
		ladderd_tokens_give(&u);
		_exit(rc);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(ladderd_tokens_take(&t), 0);
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(ladderd_tokens_take(&t), 1);
	assert_int_equal(ladderd_tokens_take(&t), 0);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	ladderd_tokens_release(&t);
	assert_int_equal(unsetenv("LADDERD_TOKENS"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_take_give),
		cmocka_unit_test(test_zero_tokens),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_shared_across_processes),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

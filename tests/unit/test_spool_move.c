/*
 * tests/unit/test_spool_move.c - moving a marker between two state
 * folders is durable only once both folders are fsync'd: the entry left
 * one and appeared in the other. The fsync of a folder is counted through
 * the linker (--wrap=ladderd_fsutil_fsync_dir), the rename is real.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fsutil.h"
#include "spool.h"

int __real_ladderd_fsutil_fsync_dir(const char *dir);
int __wrap_ladderd_fsutil_fsync_dir(const char *dir);

static char root[] = "/tmp/ladderd-test-spool.XXXXXX";
static char synced[8][PATH_MAX];
static int nsynced;

int
__wrap_ladderd_fsutil_fsync_dir(const char *dir)
{
	if (nsynced < 8)
		snprintf(synced[nsynced++], PATH_MAX, "%s", dir);
	return __real_ladderd_fsutil_fsync_dir(dir);
}

static int
was_synced(const char *state)
{
	char want[PATH_MAX];

	snprintf(want, sizeof(want), "%s/%s", root, state);
	for (int i = 0; i < nsynced; i++)
		if (strcmp(synced[i], want) == 0)
			return 1;
	return 0;
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(root) == NULL || ladderd_spool_init(root) < 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	return ladderd_fsutil_rmtree(root);
}

static void
test_move_syncs_both_folders(void **state)
{
	char p[PATH_MAX];

	(void)state;
	snprintf(p, sizeof(p), "%s/queue/0001-t1", root);
	assert_int_equal(ladderd_fsutil_write_atomic(p, "x", 1), 0);
	nsynced = 0;
	assert_int_equal(ladderd_spool_move(root, "queue", "0001-t1",
			     "active", "0001-t1"),
	    0);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s/active/0001-t1", root);
	assert_int_equal(access(p, F_OK), 0);
	assert_true(was_synced("active"));
	assert_true(was_synced("queue"));
}

static void
test_move_missing(void **state)
{
	(void)state;
	assert_int_equal(ladderd_spool_move(root, "queue", "nope", "active",
			     "nope"),
	    -ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_move_syncs_both_folders),
		cmocka_unit_test(test_move_missing),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}

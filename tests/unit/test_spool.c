/*
 * tests/unit/test_spool.c - queue markers on disk: enqueue, list order,
 * moves between queue/, active/ and deferred/, recovery after a restart
 * (active back to queue, temp files of interrupted writes purged), and
 * the one-daemon-per-spool lock. Real folders under /tmp.
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
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fsutil.h"
#include "spool.h"
#include "scratch.h"

static char spool[600];

/* Each test starts from an empty, initialised spool. */
static int
fresh(void **state)
{
	(void)state;
	scratch_path(spool, sizeof(spool), "spool");
	if (ladderd_fsutil_rmtree(spool) < 0)
		return -1;
	return ladderd_spool_init(spool) == 0 ? 0 : -1;
}

static int
exists(const char *state, const char *name)
{
	char p[PATH_MAX];
	struct stat st;

	assert_int_equal(ladderd_spool_path(spool, state, name, p, sizeof(p)),
	    0);
	return lstat(p, &st) == 0;
}

static void
touch(const char *state, const char *name)
{
	char p[PATH_MAX];
	int fd;

	assert_int_equal(ladderd_spool_path(spool, state, name, p, sizeof(p)),
	    0);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static void
test_init_folders(void **state)
{
	static const char *const dirs[] = { "tasks", "queue", "active",
		"deferred", "outbox", "tmp", NULL };
	char p[PATH_MAX];
	struct stat st;

	(void)state;
	for (int i = 0; dirs[i]; i++) {
		assert_int_equal(ladderd_spool_path(spool, dirs[i], NULL, p,
				     sizeof(p)), 0);
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
	}
	assert_int_equal(ladderd_spool_init(spool), 0); /* again: no error */
	/* A path that does not fit is refused, never cut. */
	assert_int_equal(ladderd_spool_path(spool, "queue", "x", p, 8),
	    -ENAMETOOLONG);
}

/* Markers list in arrival order; names that are not markers are skipped. */
static void
test_enqueue_list_order(void **state)
{
	struct ladderd_marker *v = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(ladderd_spool_enqueue(spool, "first-aaaaaa"), 0);
	assert_int_equal(ladderd_spool_enqueue(spool, "second-bbbbbb"), 0);
	assert_int_equal(ladderd_spool_enqueue(spool, "third-cccccc"), 0);
	touch("queue", ".hidden");
	touch("queue", "0000000000000001-x.tmp.123"); /* a write in flight */
	touch("queue", "nodigits-task");
	touch("queue", "0000000000000001-..");	      /* not a valid task id */
	assert_int_equal(ladderd_spool_list(spool, "queue", &v, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].task_id, "first-aaaaaa");
	assert_string_equal(v[1].task_id, "second-bbbbbb");
	assert_string_equal(v[2].task_id, "third-cccccc");
	/* "<16 digits>-<task_id>": the arrival time sorts as text. */
	assert_int_equal(strlen(v[0].name), 16 + 1 + strlen("first-aaaaaa"));
	assert_true(strcmp(v[0].name, v[1].name) < 0);
	free(v);
	assert_int_equal(ladderd_spool_list(spool, "nosuchstate", &v, &n),
	    -ENOENT);
	assert_null(v);
	assert_int_equal(n, 0);
}

/* A move is in the new folder and not in the old one. */
static void
test_move_queue_active_deferred(void **state)
{
	struct ladderd_marker *v = NULL;
	char due[200];
	size_t n = 0;

	(void)state;
	assert_int_equal(ladderd_spool_enqueue(spool, "job-000001"), 0);
	assert_int_equal(ladderd_spool_list(spool, "queue", &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ladderd_spool_move(spool, "queue", v[0].name,
			     "active", v[0].name), 0);
	assert_false(exists("queue", v[0].name));
	assert_true(exists("active", v[0].name));

	/* deferred/ names start with the due time: listed in due order. */
	snprintf(due, sizeof(due), "%020llu-%s", 5000ull, v[0].name);
	assert_int_equal(ladderd_spool_move(spool, "active", v[0].name,
			     "deferred", due), 0);
	assert_false(exists("active", v[0].name));
	assert_true(exists("deferred", due));
	touch("deferred", "00000000000000001000-0000000000000007-early-000002");
	free(v);
	assert_int_equal(ladderd_spool_list(spool, "deferred", &v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].due_ms, 1000);
	assert_string_equal(v[0].task_id, "early-000002");
	assert_int_equal(v[1].due_ms, 5000);
	assert_string_equal(v[1].task_id, "job-000001");

	/* A marker that is not there: the error, nothing created. */
	assert_int_equal(ladderd_spool_move(spool, "queue", "0000000000000001-"
			     "gone-000003", "active", "0000000000000001-gone-"
			     "000003"), -ENOENT);
	assert_false(exists("active", "0000000000000001-gone-000003"));

	assert_int_equal(ladderd_spool_remove(spool, "deferred", v[0].name),
	    0);
	assert_false(exists("deferred", v[0].name));
	/* Removing what is already gone is not an error. */
	assert_int_equal(ladderd_spool_remove(spool, "deferred", v[0].name),
	    0);
	free(v);
}

/*
 * After a restart: every active marker is back in the queue (under the
 * same name, so it keeps its place), the temp files that killed writers
 * left in the state folders are gone, everything else stays.
 */
static void
test_recover(void **state)
{
	static const char *const temps[][2] = {
		{ "queue", "0000000000000003-c-000003.tmp.4242" },
		{ "active", "0000000000000004-d-000004.tmp.1" },
		{ "deferred", "00000000000000000001-x.tmp.77" },
		{ "replies", "reply.json.tmp.99" },
	};
	struct ladderd_marker *v = NULL;
	size_t n = 0, requeued = 99;

	(void)state;
	touch("active", "0000000000000001-a-000001");
	touch("active", "0000000000000002-b-000002");
	touch("queue", "0000000000000000-q-000000");
	touch("deferred", "00000000000000000009-0000000000000005-e-000005");
	touch("replies", "reply.json");
	for (size_t i = 0; i < sizeof(temps) / sizeof(temps[0]); i++)
		touch(temps[i][0], temps[i][1]);

	assert_int_equal(ladderd_spool_recover(spool, &requeued), 0);
	assert_int_equal(requeued, 2);
	assert_int_equal(ladderd_spool_list(spool, "active", &v, &n), 0);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(ladderd_spool_list(spool, "queue", &v, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].task_id, "q-000000");
	assert_string_equal(v[1].task_id, "a-000001");
	assert_string_equal(v[2].task_id, "b-000002");
	free(v);
	for (size_t i = 0; i < sizeof(temps) / sizeof(temps[0]); i++)
		assert_false(exists(temps[i][0], temps[i][1]));
	assert_true(exists("deferred",
	    "00000000000000000009-0000000000000005-e-000005"));
	assert_true(exists("replies", "reply.json"));

	/* Nothing active: nothing to do. */
	assert_int_equal(ladderd_spool_recover(spool, &requeued), 0);
	assert_int_equal(requeued, 0);
}

/* One daemon per spool: the lock is refused and names the holder. */
static void
test_lock(void **state)
{
	int fd = -1, fd2 = -1;
	long owner = 0;

	(void)state;
	assert_int_equal(ladderd_spool_lock(spool, &fd, &owner), 0);
	assert_true(fd >= 0);
	/* A second open file description conflicts, even in this process. */
	assert_int_equal(ladderd_spool_lock(spool, &fd2, &owner), -EBUSY);
	assert_int_equal(fd2, -1);
	assert_int_equal(owner, (long)getpid());
	close(fd);
	assert_int_equal(ladderd_spool_lock(spool, &fd2, &owner), 0);
	close(fd2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_init_folders, fresh),
		cmocka_unit_test_setup(test_enqueue_list_order, fresh),
		cmocka_unit_test_setup(test_move_queue_active_deferred, fresh),
		cmocka_unit_test_setup(test_recover, fresh),
		cmocka_unit_test_setup(test_lock, fresh),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}

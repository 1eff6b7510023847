/*
 * tests/unit/test_dropfs.c - paths beneath the ingest folder's handle:
 * symlinks anywhere on the way are refused, with openat2 and with the
 * O_NOFOLLOW walk used where openat2 is missing; only regular files open.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../daemon/dropfs.c" /* for dropfs_no_openat2 */

static char root[] = "/tmp/ladderd-test-dropfs.XXXXXX";
static int rootfd = -1;

static int
setup(void **state)
{
	char p[512];

	(void)state;
	if (mkdtemp(root) == NULL)
		return -1;
	snprintf(p, sizeof(p), "%s/in", root);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/in/sub", root);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/out", root);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/out/secret", root);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	snprintf(p, sizeof(p), "%s/in/sub/ok.mp4", root);
	close(open(p, O_CREAT | O_WRONLY, 0644));
	snprintf(p, sizeof(p), "%s/out", root);
	{
		char l[512];

		snprintf(l, sizeof(l), "%s/in/sub/d", root);
		if (symlink(p, l) < 0)
			return -1;
		snprintf(p, sizeof(p), "%s/out/secret", root);
		snprintf(l, sizeof(l), "%s/in/sub/link.mp4", root);
		if (symlink(p, l) < 0)
			return -1;
		snprintf(l, sizeof(l), "%s/in/fifo", root);
		if (mkfifo(l, 0644) < 0)
			return -1;
	}
	snprintf(p, sizeof(p), "%s/in", root);
	rootfd = open(p, O_RDONLY | O_DIRECTORY);
	return rootfd < 0 ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[600];

	(void)state;
	close(rootfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void
check_paths(void)
{
	const char *leaf = NULL;
	struct stat st;
	int fd = -1;

	assert_int_equal(ladderd_dropfs_open_parent(rootfd, "sub/ok.mp4", &fd,
			     &leaf), 0);
	assert_string_equal(leaf, "ok.mp4");
	assert_int_equal(ladderd_dropfs_stat(fd, leaf, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	close(fd);
	/* a symlinked folder on the way */
	assert_int_equal(ladderd_dropfs_open_parent(rootfd, "sub/d/secret", &fd,
			     &leaf), -ELOOP);
	assert_int_equal(ladderd_dropfs_open_parent(rootfd, "../out/secret",
			     &fd, &leaf), -EINVAL);
	assert_int_equal(ladderd_dropfs_open_parent(rootfd, "sub//ok.mp4", &fd,
			     &leaf), -EINVAL);
	assert_int_equal(ladderd_dropfs_open_parent(rootfd, "/etc/passwd", &fd,
			     &leaf), -EXDEV);
	assert_int_equal(ladderd_dropfs_open_parent(rootfd, "nothere/x", &fd,
			     &leaf), -ENOENT);
	/* a symlink as the file itself: found, but never opened */
	assert_int_equal(ladderd_dropfs_open_parent(rootfd, "sub/link.mp4", &fd,
			     &leaf), 0);
	assert_int_equal(ladderd_dropfs_stat(fd, leaf, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(ladderd_dropfs_open_regular(fd, leaf, NULL), -ELOOP);
	close(fd);
	/* a FIFO opens without blocking and is refused */
	assert_int_equal(ladderd_dropfs_open_regular(rootfd, "fifo", NULL),
	    -EINVAL);
}

static void
test_openat2(void **state)
{
	(void)state;
	dropfs_no_openat2 = 0;
	check_paths();
}

static void
test_walk(void **state)
{
	(void)state;
	dropfs_no_openat2 = 1;
	check_paths();
	dropfs_no_openat2 = 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openat2),
		cmocka_unit_test(test_walk),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}

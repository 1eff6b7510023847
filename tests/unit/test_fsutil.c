/*
 * tests/unit/test_fsutil.c - the durable write: readers see the old file or
 * the whole new one, never a part; a writer that fails or dies before its
 * rename leaves the old content; the folder is fsync'd after the rename.
 * rename(2) and fsync(2) are wrapped (-Wl,--wrap, see Makefile.am) so a
 * test can make them fail, or die in place of them, at a chosen call.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fsutil.h"
#include "scratch.h"

int __real_rename(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to);
int __real_fsync(int fd);
int __wrap_fsync(int fd);

/* What the wrappers do: pass through, fail with an errno, or _exit. */
enum fault { FAULT_NONE, FAULT_FAIL, FAULT_EXIT };
static enum fault rename_fault, fsync_fault;
static int fault_errno = EIO;
/* The inodes fsync'd (directories and files), in call order. */
static ino_t synced[64];
static int synced_dir[64];
static int synced_after[64]; /* how many renames had been done by then */
static size_t nsynced;
static int renames;

int
__wrap_rename(const char *from, const char *to)
{
	if (rename_fault == FAULT_EXIT)
		_exit(0); /* killed between the file's fsync and the rename */
	if (rename_fault == FAULT_FAIL) {
		errno = fault_errno;
		return -1;
	}
	renames++;
	return __real_rename(from, to);
}

int
__wrap_fsync(int fd)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && nsynced < 64) {
		synced[nsynced] = st.st_ino;
		synced_dir[nsynced] = S_ISDIR(st.st_mode);
		synced_after[nsynced] = renames;
		nsynced++;
	}
	if (fsync_fault == FAULT_FAIL) {
		errno = fault_errno;
		return -1;
	}
	return __real_fsync(fd);
}

static void
reset_faults(void)
{
	rename_fault = fsync_fault = FAULT_NONE;
	fault_errno = EIO;
	nsynced = 0;
	renames = 0;
}


/* The whole content of `path` (caller frees), or NULL. */
static char *
slurp(const char *path)
{
	char *data = NULL;

	if (ladderd_fsutil_read(path, 1 << 20, &data, NULL) < 0)
		return NULL;
	return data;
}

/* How many names in `dir` contain `part`. */
static int
count_names(const char *dir, const char *part)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, part) != NULL)
			n++;
	closedir(d);
	return n;
}

static void
test_write_replaces_whole(void **state)
{
	char p[512], *got;
	struct stat st, dst;

	(void)state;
	reset_faults();
	scratch_path(p, sizeof(p), "state.json");
	assert_int_equal(ladderd_fsutil_write_atomic(p, "first", 5), 0);
	got = slurp(p);
	assert_string_equal(got, "first");
	free(got);
	assert_int_equal(ladderd_fsutil_write_atomic(p, "second, longer", 14),
	    0);
	got = slurp(p);
	assert_string_equal(got, "second, longer");
	free(got);
	assert_int_equal(count_names(scratch, ".tmp."), 0);
	/*
	 * The file's data was fsync'd before the rename and its folder after
	 * it (else the new name may be lost in a power cut).
	 */
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(stat(scratch, &dst), 0);
	assert_true(nsynced >= 4);
	assert_int_equal(synced_dir[nsynced - 1], 1);
	assert_true(synced[nsynced - 1] == dst.st_ino);
	assert_int_equal(synced_dir[nsynced - 2], 0);
	assert_true(synced[nsynced - 2] == st.st_ino);
	assert_int_equal(renames, 2);
	assert_int_equal(synced_after[nsynced - 2], 1);
	assert_int_equal(synced_after[nsynced - 1], 2);
}

/*
 * A finished file committed under its final name (the stages' commit_file
 * service): the file is fsync'd before the rename, its folder after it; a
 * failed fsync leaves the temp in place and no final name.
 */
static void
test_commit(void **state)
{
	char tmp[512], p[512], *got;
	struct stat st, dst;
	int fd;

	(void)state;
	reset_faults();
	scratch_path(tmp, sizeof(tmp), "out.mp4.tmp");
	scratch_path(p, sizeof(p), "out.mp4");
	assert_true((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644)) >= 0);
	assert_int_equal(write(fd, "media", 5), 5);
	close(fd);
	fsync_fault = FAULT_FAIL;
	assert_int_equal(ladderd_fsutil_commit(tmp, p), -EIO);
	assert_int_equal(access(tmp, F_OK), 0);
	assert_int_equal(access(p, F_OK), -1);
	reset_faults();
	assert_int_equal(ladderd_fsutil_commit(tmp, p), 0);
	assert_int_equal(access(tmp, F_OK), -1);
	got = slurp(p);
	assert_string_equal(got, "media");
	free(got);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(stat(scratch, &dst), 0);
	assert_int_equal(nsynced, 2);
	assert_int_equal(renames, 1);
	assert_true(synced[0] == st.st_ino && !synced_dir[0]);
	assert_int_equal(synced_after[0], 0);
	assert_true(synced[1] == dst.st_ino && synced_dir[1]);
	assert_int_equal(synced_after[1], 1);
}

static void
test_write_mode(void **state)
{
	char p[512];
	struct stat st;
	mode_t old = umask(0);

	(void)state;
	reset_faults();
	scratch_path(p, sizeof(p), "secret");
	assert_int_equal(ladderd_fsutil_write_atomic_mode(p, "k", 1, 0600), 0);
	umask(old);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

/* A failed rename or fsync: an error, the old content, no temp file. */
static void
test_write_failure_keeps_old(void **state)
{
	/* Which call fails, with which errno. */
	static const struct {
		enum fault *fault;
		int err;
	} cases[] = { { &rename_fault, ENOSPC }, { &fsync_fault, EIO } };
	char p[512], *got;

	(void)state;
	reset_faults();
	scratch_path(p, sizeof(p), "keep.json");
	assert_int_equal(ladderd_fsutil_write_atomic(p, "old", 3), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		reset_faults();
		*cases[i].fault = FAULT_FAIL;
		fault_errno = cases[i].err;
		assert_int_equal(ladderd_fsutil_write_atomic(p, "new!", 4),
		    -cases[i].err);
		got = slurp(p);
		assert_string_equal(got, "old");
		free(got);
		assert_int_equal(count_names(scratch, "keep.json.tmp."), 0);
	}
	reset_faults();
}

/*
 * A writer killed after writing its temp and before the rename: the old
 * content stays, and the only trace is NAME.tmp.PID (which the spool's
 * recovery purges, see test_spool.c). A later writer still succeeds.
 */
static void
test_write_killed_before_rename(void **state)
{
	char p[512], tmp[600], *got;
	pid_t pid;
	int st = 0;

	(void)state;
	reset_faults();
	scratch_path(p, sizeof(p), "killed.json");
	assert_int_equal(ladderd_fsutil_write_atomic(p, "old", 3), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		rename_fault = FAULT_EXIT;
		(void)ladderd_fsutil_write_atomic(p, "new", 3);
		_exit(1); /* not reached: the wrapper exits 0 */
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	got = slurp(p);
	assert_string_equal(got, "old");
	free(got);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", p, (long)pid);
	got = slurp(tmp);
	assert_non_null(got);
	assert_string_equal(got, "new"); /* complete: fsync'd before rename */
	free(got);
	assert_int_equal(ladderd_fsutil_write_atomic(p, "newer", 5), 0);
	got = slurp(p);
	assert_string_equal(got, "newer");
	free(got);
	assert_int_equal(unlink(tmp), 0);
}

static void
test_write_missing_folder(void **state)
{
	char p[512];

	(void)state;
	reset_faults();
	scratch_path(p, sizeof(p), "no/such/folder/x");
	assert_int_equal(ladderd_fsutil_write_atomic(p, "x", 1), -ENOENT);
}

static void
test_append_and_read_limit(void **state)
{
	char p[512], *got = NULL;
	size_t len = 0;

	(void)state;
	reset_faults();
	scratch_path(p, sizeof(p), "journal");
	assert_int_equal(ladderd_fsutil_append(p, "a\n", 2), 0);
	assert_int_equal(ladderd_fsutil_append(p, "b\n", 2), 0);
	assert_int_equal(ladderd_fsutil_read(p, 4, &got, &len), 0);
	assert_int_equal(len, 4);
	assert_string_equal(got, "a\nb\n");
	free(got);
	got = NULL;
	assert_int_equal(ladderd_fsutil_read(p, 3, &got, &len), -EFBIG);
	assert_null(got);
}

static void
test_mkdir_rmtree(void **state)
{
	char p[512], f[600], l[600];
	struct stat st;

	(void)state;
	reset_faults();
	scratch_path(p, sizeof(p), "tree/a/b");
	assert_int_equal(ladderd_fsutil_mkdir_p(p, 0755), 0);
	assert_int_equal(ladderd_fsutil_mkdir_p(p, 0755), 0); /* exists: ok */
	snprintf(f, sizeof(f), "%s/file", p);
	assert_int_equal(ladderd_fsutil_write_atomic(f, "x", 1), 0);
	/* A symlink inside is removed, its target is not. */
	snprintf(l, sizeof(l), "%s/link", p);
	scratch_path(p, sizeof(p), "outside");
	assert_int_equal(ladderd_fsutil_write_atomic(p, "keep", 4), 0);
	assert_int_equal(symlink(p, l), 0);
	scratch_path(p, sizeof(p), "tree");
	assert_int_equal(ladderd_fsutil_rmtree(p), 0);
	assert_int_equal(lstat(p, &st), -1);
	assert_int_equal(errno, ENOENT);
	scratch_path(p, sizeof(p), "outside");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(ladderd_fsutil_rmtree(p), 0);
	assert_int_equal(ladderd_fsutil_rmtree(p), 0); /* gone: still 0 */
}

/* replace_dir swaps a whole folder in: the new files, none of the old. */
static void
test_replace_dir(void **state)
{
	char from[512], to[512], f[600], *got;
	struct stat st;

	(void)state;
	reset_faults();
	scratch_path(from, sizeof(from), "pkg.new");
	scratch_path(to, sizeof(to), "pkg");
	assert_int_equal(ladderd_fsutil_mkdir_p(to, 0755), 0);
	snprintf(f, sizeof(f), "%s/old.m3u8", to);
	assert_int_equal(ladderd_fsutil_write_atomic(f, "old", 3), 0);
	assert_int_equal(ladderd_fsutil_mkdir_p(from, 0755), 0);
	snprintf(f, sizeof(f), "%s/master.m3u8", from);
	assert_int_equal(ladderd_fsutil_write_atomic(f, "new", 3), 0);
	assert_int_equal(ladderd_fsutil_replace_dir(from, to), 0);
	assert_int_equal(lstat(from, &st), -1);
	snprintf(f, sizeof(f), "%s/master.m3u8", to);
	got = slurp(f);
	assert_string_equal(got, "new");
	free(got);
	snprintf(f, sizeof(f), "%s/old.m3u8", to);
	assert_int_equal(lstat(f, &st), -1);
	assert_int_equal(ladderd_fsutil_rmtree(to), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_replaces_whole),
		cmocka_unit_test(test_write_mode),
		cmocka_unit_test(test_commit),
		cmocka_unit_test(test_write_failure_keeps_old),
		cmocka_unit_test(test_write_killed_before_rename),
		cmocka_unit_test(test_write_missing_folder),
		cmocka_unit_test(test_append_and_read_limit),
		cmocka_unit_test(test_mkdir_rmtree),
		cmocka_unit_test(test_replace_dir),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}

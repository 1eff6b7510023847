/*
 * fsutil.c - durable writes (temp in the same directory, O_EXCL, write
 * all, fsync, rename, fsync the directory; the temp is unlinked on any
 * failure) and directory chores. Nothing here logs; errors are returned as
 * negative errno values.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../stages/crashpoint.h"
#include "fsutil.h"

/* write(2) until all of `data` is written; 0 or a negative errno. */
int
ladderd_fsutil_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* fsync the directory holding `path` so a rename into it is durable. */
static int
fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return ladderd_fsutil_fsync_dir(".");
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return ladderd_fsutil_fsync_dir(dir);
}

int
ladderd_fsutil_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0 && errno != EINVAL)
		rc = -errno;
	close(fd);
	return rc;
}

/*
 * Write `data` to `path` so that readers see either the old file or the
 * whole new one, and the new one survives a crash once this returns 0.
 */
int
ladderd_fsutil_write_atomic(const char *path, const void *data, size_t len)
{
	return ladderd_fsutil_write_atomic_mode(path, data, len, 0644);
}

/*
 * The same with the file created as `mode` (less the umask): 0600 for a
 * file that holds secrets, whatever the umask.
 */
int
ladderd_fsutil_write_atomic_mode(const char *path, const void *data,
    size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	int fd = -1, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	(void)unlink(tmp); /* a leftover of a crashed writer with our pid */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if ((rc = ladderd_fsutil_write_all(fd, data, len)) < 0)
		goto out;
	if (fsync(fd) < 0) {
		rc = -errno;
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = -errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		goto out;
	}
	return fsync_parent(path);
out:
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
	return rc;
}

/*
 * Make a finished file durable under its final name: fsync `tmp`, rename
 * it to `path`, fsync the folder. On failure before the rename `tmp` is
 * left for the caller.
 */
int
ladderd_fsutil_commit(const char *tmp, const char *path)
{
	int fd = open(tmp, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	(void)close(fd);
	if (rc < 0)
		return rc;
	if (rename(tmp, path) < 0)
		return -errno;
	return fsync_parent(path);
}

/* Copy what is left to read of `in` to `out`; 0 or a negative errno. */
int
ladderd_fsutil_copy_fd(int in, int out)
{
	char buf[1 << 16];

	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		int rc;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		if ((rc = ladderd_fsutil_write_all(out, buf, (size_t)n)) < 0)
			return rc;
	}
}

/* Append one record with a single write(2) on an O_APPEND descriptor. */
int
ladderd_fsutil_append(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	int rc;

	if (fd < 0)
		return -errno;
	rc = ladderd_fsutil_write_all(fd, data, len);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Read a whole file (at most `max` bytes), NUL-terminated; caller frees. */
int
ladderd_fsutil_read(const char *path, size_t max, char **ret_data,
    size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -errno;
	rc = ladderd_fsutil_read_fd(fd, max, ret_data, ret_len);
	close(fd);
	return rc;
}

/* The same from an open descriptor (borrowed, read to its end). */
int
ladderd_fsutil_read_fd(int fd, size_t max, char **ret_data, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc = 0;

	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			if ((nb = realloc(buf, cap + 1)) == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			rc = -EFBIG;
			goto out;
		}
	}
	if (buf == NULL && (buf = malloc(1)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	buf[len] = '\0';
	*ret_data = buf;
	buf = NULL;
	if (ret_len)
		*ret_len = len;
out:
	free(buf);
	return rc;
}

int
ladderd_fsutil_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	char *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * Call fn(child, name, arg) for each entry of folder `dir` but "." and
 * "..", with child = dir/name. Returns 0 or a negative errno: the last
 * one, the walk going on (keep_going), or the first, ending it.
 */
static int
for_each_child(const char *dir, int keep_going,
    int (*fn)(const char *child, const char *name, void *arg), void *arg)
{
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if ((d = opendir(dir)) == NULL)
		return -errno;
	while ((keep_going || rc == 0) && (de = readdir(d)) != NULL) {
		char child[PATH_MAX];
		int r;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(child, sizeof(child), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(child))
			r = -ENAMETOOLONG;
		else
			r = fn(child, de->d_name, arg);
		if (r < 0)
			rc = r;
	}
	closedir(d);
	return rc;
}

static int
rmtree_child(const char *child, const char *name, void *arg)
{
	(void)name;
	(void)arg;
	return ladderd_fsutil_rmtree(child);
}

/* Remove a tree; symlinks are removed, never followed. */
int
ladderd_fsutil_rmtree(const char *path)
{
	struct stat st;
	int rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 ? -errno : 0;
	rc = for_each_child(path, 1, rmtree_child, NULL);
	if (rmdir(path) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

static int
chmod_child(const char *child, const char *name, void *arg)
{
	const mode_t *modes = arg;

	(void)name;
	return ladderd_fsutil_chmod_tree(child, modes[0], modes[1]);
}

/*
 * Set the modes of a tree: directories `dmode`, regular files `fmode`;
 * anything else (a symlink) is left alone and never followed.
 */
int
ladderd_fsutil_chmod_tree(const char *path, mode_t dmode, mode_t fmode)
{
	mode_t modes[2] = { dmode, fmode };
	struct stat st;

	if (lstat(path, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode))
		return chmod(path, fmode) < 0 ? -errno : 0;
	if (!S_ISDIR(st.st_mode))
		return 0;
	if (chmod(path, dmode) < 0)
		return -errno;
	return for_each_child(path, 1, chmod_child, modes);
}

/*
 * Copy a regular file, fsync'd; `to` must not exist and is created 0666
 * less the umask. A symbolic link is not followed and anything but a
 * regular file (a FIFO, a device) is refused with -EINVAL unopened or
 * unread: a copy never reaches outside nor reads forever.
 */
int
ladderd_fsutil_copy_file(const char *from, const char *to)
{
	struct stat st;
	int in = -1, out = -1, rc = 0;

	if ((in = open(from, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
		 O_CLOEXEC)) < 0)
		return -errno;
	if (fstat(in, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if ((out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		 O_CLOEXEC, 0666)) < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = ladderd_fsutil_copy_fd(in, out)) < 0)
		goto out;
	if (fsync(out) < 0)
		rc = -errno;
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0 && out >= 0)
		(void)unlink(to);
	return rc;
}

static int copy_tree(const char *from, const char *to);

static int
copy_child(const char *child, const char *name, void *arg)
{
	const char *const *dest = arg;
	char to[PATH_MAX];

	if (snprintf(to, sizeof(to), "%s/%s", *dest, name) >=
	    (int)sizeof(to))
		return -ENAMETOOLONG;
	return copy_tree(child, to);
}

/*
 * Copy a tree of regular files and directories; anything else (symlinks,
 * FIFOs, devices) is skipped, never followed nor read.
 */
static int
copy_tree(const char *from, const char *to)
{
	struct stat st;
	int rc;

	if (lstat(from, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode))
		return ladderd_fsutil_copy_file(from, to);
	if (!S_ISDIR(st.st_mode))
		return 0;
	if (mkdir(to, 0755) < 0)
		return -errno;
	/* The first error ends the copy. */
	if ((rc = for_each_child(from, 0, copy_child, &to)) < 0)
		return rc;
	return ladderd_fsutil_fsync_dir(to);
}

/*
 * Remove what copies into `to`'s folder left behind ("<to>.incoming.<pid>",
 * any pid): a process killed while copying or before its rename.
 */
static void
fsutil_remove_staged(const char *to)
{
	char dir[PATH_MAX], prefix[NAME_MAX + 16], p[PATH_MAX];
	const char *base = strrchr(to, '/');
	struct dirent *de;
	DIR *d;

	if (base == NULL ||
	    snprintf(dir, sizeof(dir), "%.*s", (int)(base - to), to) >=
		(int)sizeof(dir) ||
	    snprintf(prefix, sizeof(prefix), "%s.incoming.", base + 1) >=
		(int)sizeof(prefix) ||
	    (d = opendir(dir[0] ? dir : "/")) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 &&
		    snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) <
			(int)sizeof(p))
			(void)ladderd_fsutil_rmtree(p);
	closedir(d);
}

/*
 * Make directory `from` appear at `to` in one step, replacing an existing
 * `to` atomically (renameat2 RENAME_EXCHANGE, then the old tree is
 * removed). Readers of `to` see the old package or the new one, never a
 * mix. When the two are on different file systems the tree is first
 * copied next to `to`. `from` is gone on success.
 */
int
ladderd_fsutil_replace_dir(const char *from, const char *to)
{
	char staged[PATH_MAX];
	const char *src = from;
	int rc;

	if (snprintf(staged, sizeof(staged), "%s.incoming.%ld", to,
		(long)getpid()) >= (int)sizeof(staged))
		return -ENAMETOOLONG;
	if (rename(from, to) == 0)
		return fsync_parent(to);
	if (errno == EXDEV) {
		fsutil_remove_staged(to);
		if ((rc = copy_tree(from, staged)) < 0) {
			(void)ladderd_fsutil_rmtree(staged);
			return rc;
		}
		LADDERD_CRASH_POINT("publish.copied", NULL);
		src = staged;
		if (rename(src, to) == 0)
			goto done;
	}
	if (errno != EEXIST && errno != ENOTEMPTY)
		return -errno;
	if (renameat2(AT_FDCWD, src, AT_FDCWD, to, RENAME_EXCHANGE) < 0)
		return -errno;
	/* `src` now holds the old package. */
	(void)ladderd_fsutil_rmtree(src);
done:
	if (src == staged) {
		char gone[PATH_MAX];

		/*
		 * `from` leaves in one rename: a crash while removing it must
		 * not leave half a package that a resumed task would take
		 * for one still to publish.
		 */
		if (snprintf(gone, sizeof(gone), "%s.published", from) <
			(int)sizeof(gone) &&
		    rename(from, gone) == 0)
			(void)ladderd_fsutil_rmtree(gone);
		else
			(void)ladderd_fsutil_rmtree(from);
	}
	return fsync_parent(to);
}

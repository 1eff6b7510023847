/*
 * dropfs.c - resolve, open and move what a drop names, beneath the ingest
 * folder's handle (see dropfs.h).
 *
 * Why handles: a manifest's "source" is a path the dropper chose. Checking
 * its text for "/" and ".." is not enough: a folder on the way may be a
 * symbolic link to anywhere (issue 9, finding 1). So the folder holding
 * the file is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS),
 * and every later step (lstat, open, rename, unlink) is relative to that
 * handle. A swap of the file between the check and the rename is caught by
 * comparing device and inode afterwards.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

#include "dropfs.h"
#include "fsutil.h"

/* Set by unit tests to exercise the walk used where openat2 is missing. */
static int dropfs_no_openat2;

int
ladderd_dropfs_open_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* "", ".", ".." and empty components (a//b) are never accepted. */
static int
dropfs_bad_component(const char *c, size_t n)
{
	return n == 0 || (n == 1 && c[0] == '.') ||
	    (n == 2 && c[0] == '.' && c[1] == '.');
}

/* Without openat2: one O_NOFOLLOW open per component. */
static int
dropfs_walk(int rootfd, const char *dir, size_t len)
{
	int cur = -1;
	size_t i = 0;

	if ((cur = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) <
	    0)
		return -errno;
	while (i < len) {
		const char *c = dir + i;
		size_t n = strcspn(c, "/");
		char comp[NAME_MAX + 1];
		int next;

		if (n > len - i)
			n = len - i;
		if (n > NAME_MAX) {
			close(cur);
			return -ENAMETOOLONG;
		}
		memcpy(comp, c, n);
		comp[n] = '\0';
		next = openat(cur, comp,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			int e = errno;
			struct stat st;

			/* O_NOFOLLOW|O_DIRECTORY on a symlink: ENOTDIR. */
			if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				e = ELOOP;
			close(cur);
			return -e;
		}
		close(cur);
		cur = next;
		i += n + 1;
	}
	return cur;
}

/* The folder `dir` beneath rootfd, no symlinks; -ENOSYS if unavailable. */
static int
dropfs_openat2(int rootfd, const char *dir)
{
#ifdef SYS_openat2
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
		    RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	if (dropfs_no_openat2)
		return -ENOSYS;
	fd = syscall(SYS_openat2, rootfd, dir, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
#else
	(void)rootfd;
	(void)dir;
	(void)dropfs_no_openat2;
	return -ENOSYS;
#endif
}

int
ladderd_dropfs_open_parent(int rootfd, const char *rel, int *ret_dirfd,
    const char **ret_leaf)
{
	const char *slash = strrchr(rel, '/');
	const char *leaf = slash ? slash + 1 : rel;
	char dir[PATH_MAX];
	size_t len = slash ? (size_t)(slash - rel) : 0;
	int fd = -1;

	if (rel[0] == '/')
		return -EXDEV;
	for (const char *c = rel; *c;) {
		size_t n = strcspn(c, "/");

		if (dropfs_bad_component(c, n))
			return -EINVAL;
		c += n;
		if (*c == '/')
			c++;
	}
	if (dropfs_bad_component(leaf, strlen(leaf)))
		return -EINVAL;
	if (len >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, rel, len);
	dir[len] = '\0';
	if (len == 0) {
		/* A copy of the root handle, so the caller always closes. */
		if ((fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0)) < 0)
			fd = -errno;
	} else {
		fd = dropfs_openat2(rootfd, dir);
		/* ENOSYS: an old kernel; EPERM: a seccomp filter. */
		if (fd == -ENOSYS || fd == -EPERM)
			fd = dropfs_walk(rootfd, dir, len);
	}
	if (fd < 0)
		return fd;
	*ret_dirfd = fd;
	*ret_leaf = leaf;
	return 0;
}

int
ladderd_dropfs_stat(int dirfd, const char *leaf, struct stat *ret)
{
	return fstatat(dirfd, leaf, ret, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

int
ladderd_dropfs_open_regular(int dirfd, const char *leaf,
    const struct stat *checked)
{
	struct stat st;
	int fd;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = openat(dirfd, leaf,
	    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (checked &&
	    (st.st_dev != checked->st_dev || st.st_ino != checked->st_ino)) {
		close(fd);
		return -ESTALE;
	}
	/* Reads of a regular file do not block; be plain again. */
	(void)fcntl(fd, F_SETFL, 0);
	return fd;
}

/* Copy `in` (a checked regular file) to `toname` in `tofd`, fsync'd. */
static int
dropfs_copy(int in, int tofd, const char *toname, mode_t mode)
{
	char tmp[NAME_MAX + 1];
	int out = -1, rc = 0;

	if (snprintf(tmp, sizeof(tmp), ".copy.%ld.tmp", (long)getpid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	(void)unlinkat(tofd, tmp, 0);
	out = openat(tofd, tmp,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (out < 0)
		return -errno;
	if ((rc = ladderd_fsutil_copy_fd(in, out)) < 0)
		goto out;
	if (fsync(out) < 0) {
		rc = -errno;
		goto out;
	}
	if (close(out) < 0) {
		out = -1;
		rc = -errno;
		goto out;
	}
	out = -1;
	/* `toname` is in a folder made for this claim: it does not exist. */
	if (renameat(tofd, tmp, tofd, toname) < 0)
		rc = -errno;
	else if (fsync(tofd) < 0 && errno != EINVAL)
		rc = -errno;
out:
	if (out >= 0)
		close(out);
	if (rc < 0)
		(void)unlinkat(tofd, tmp, 0);
	return rc;
}

int
ladderd_dropfs_move(int fromfd, const char *leaf, const struct stat *checked,
    int tofd, const char *toname, mode_t mode)
{
	mode_t mask = umask(0);
	struct stat st;
	int in = -1, rc;

	(void)umask(mask);
	if (renameat(fromfd, leaf, tofd, toname) == 0) {
		if ((rc = ladderd_dropfs_stat(tofd, toname, &st)) < 0)
			return rc;
		if (!S_ISREG(st.st_mode) || st.st_dev != checked->st_dev ||
		    st.st_ino != checked->st_ino)
			return -ESTALE;
		/*
		 * Ours now: the umask decides who else may read it. EPERM:
		 * another user's file (dropped into a folder we may write),
		 * whose mode only its owner may change.
		 */
		if (fchmodat(tofd, toname, mode & ~mask, 0) < 0 &&
		    errno != EPERM)
			return -errno;
		return fsync(tofd) < 0 && errno != EINVAL ? -errno : 0;
	}
	if (errno != EXDEV)
		return -errno;
	if ((in = ladderd_dropfs_open_regular(fromfd, leaf, checked)) < 0)
		return in;
	rc = dropfs_copy(in, tofd, toname, mode & ~mask);
	close(in);
	if (rc < 0)
		return rc;
	return unlinkat(fromfd, leaf, 0) < 0 ? -errno : 0;
}

int
ladderd_dropfs_move_special(int fromfd, const char *leaf, int tofd,
    const char *toname, char *target, size_t size)
{
	struct stat st;
	ssize_t n;

	if (renameat(fromfd, leaf, tofd, toname) == 0)
		return 0;
	if (errno != EXDEV)
		return -errno;
	if (fstatat(fromfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
		return -EINVAL; /* not ours to remove */
	if (S_ISLNK(st.st_mode) && size > 0 &&
	    (n = readlinkat(fromfd, leaf, target, size - 1)) >= 0)
		target[n] = '\0';
	return unlinkat(fromfd, leaf, 0) < 0 ? -errno : 1;
}

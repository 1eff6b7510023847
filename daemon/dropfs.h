/*
 * dropfs.h - the file-system side of taking a drop, done through the
 * ingest folder's handle so a drop can reach nothing outside it: a path
 * named by a drop (a manifest's "source") is resolved beneath the folder
 * without following any symbolic link (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS, or a component-by-component O_NOFOLLOW walk where
 * openat2 is missing); only regular files are opened, with O_NOFOLLOW and
 * O_NONBLOCK (a FIFO never blocks the daemon); moves are renameat from
 * directory handles, and the copy across file systems reads only the
 * regular file that was checked and creates its copy with the given mode
 * (less the umask). Every function returns 0 or a negative errno and does
 * not log.
 */
#ifndef LADDERD_DROPFS_H
#define LADDERD_DROPFS_H

#include <sys/stat.h>
#include <sys/types.h>

/*
 * Open the folder holding `rel` (a relative path, no "." or ".."
 * components, no symbolic link anywhere) beneath `rootfd`. On success
 * *ret_dirfd is an O_DIRECTORY descriptor the caller closes and *ret_leaf
 * points at the last component of `rel`. -ELOOP: a component is a
 * symbolic link; -EXDEV or -EINVAL: the path leaves the folder.
 */
int ladderd_dropfs_open_parent(int rootfd, const char *rel, int *ret_dirfd,
    const char **ret_leaf);

/*
 * lstat of `leaf` in `dirfd` (never follows). 0 with *ret filled, or a
 * negative errno.
 */
int ladderd_dropfs_stat(int dirfd, const char *leaf, struct stat *ret);

/*
 * Open `leaf` in `dirfd` for reading when it is still the regular file
 * `checked` describes (same device and inode; NULL: any regular file).
 * Returns the descriptor, or -ELOOP (a symbolic link), -EINVAL (not a
 * regular file), -ESTALE (another file now has that name), -errno.
 */
int ladderd_dropfs_open_regular(int dirfd, const char *leaf,
    const struct stat *checked);

/*
 * Move the regular file `leaf` of `fromfd` (checked: what the caller
 * lstat'ed and accepted) to `toname` in `tofd`, which must not exist.
 * Same file system: renameat, then the moved entry is checked again
 * (-ESTALE if it is not that file: it was swapped during the move; the
 * entry is at `toname` then, for the caller to dispose of). Across file
 * systems: a copy of the checked file, fsync'd, created `mode` (less the
 * umask), then the original is unlinked. The result gets `mode` (less the
 * umask) either way.
 */
int ladderd_dropfs_move(int fromfd, const char *leaf,
    const struct stat *checked, int tofd, const char *toname, mode_t mode);

/*
 * Move anything that is not a regular file (a refused symlink, FIFO,
 * device) to `toname` in `tofd` without opening it: renameat on one file
 * system; across file systems it is never copied but removed (a symlink's
 * target is returned in target, size > 0, first). Returns 0 (moved), 1
 * (removed), or a negative errno.
 */
int ladderd_dropfs_move_special(int fromfd, const char *leaf, int tofd,
    const char *toname, char *target, size_t size);

/* open(path, O_DIRECTORY) for the handles above; -errno on failure. */
int ladderd_dropfs_open_dir(const char *path);

#endif

/*
 * fsutil.h - the durable-write helper all state goes through, and the few
 * file-system chores around it. Every function returns 0 or a negative
 * errno and does not log: the caller says what failed, once.
 */
#ifndef LADDERD_FSUTIL_H
#define LADDERD_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

int ladderd_fsutil_write_atomic(const char *path, const void *data, size_t len);
int ladderd_fsutil_write_atomic_mode(const char *path, const void *data,
    size_t len, mode_t mode);
int ladderd_fsutil_commit(const char *tmp, const char *path);
int ladderd_fsutil_write_all(int fd, const void *data, size_t len);
int ladderd_fsutil_copy_fd(int in, int out);
int ladderd_fsutil_append(const char *path, const void *data, size_t len);
int ladderd_fsutil_read(const char *path, size_t max, char **ret_data,
    size_t *ret_len);
int ladderd_fsutil_read_fd(int fd, size_t max, char **ret_data,
    size_t *ret_len);
int ladderd_fsutil_mkdir_p(const char *path, mode_t mode);
int ladderd_fsutil_rmtree(const char *path);
int ladderd_fsutil_chmod_tree(const char *path, mode_t dmode, mode_t fmode);
int ladderd_fsutil_fsync_dir(const char *dir);
int ladderd_fsutil_copy_file(const char *from, const char *to);
int ladderd_fsutil_replace_dir(const char *from, const char *to);

#endif

/*
 * spool.h - ladderd's own state on disk. A task is a folder
 * spool/tasks/<task_id>/ (claim.json, the source, context.json, the work);
 * its queue state is an empty marker file whose folder is the state:
 *
 *   spool/queue/<arrival>-<task_id>     waiting for a job slot (FIFO by name)
 *   spool/active/<arrival>-<task_id>    a job process runs it
 *   spool/deferred/<due_ms>-<arrival>-<task_id>  transient failure, backoff
 *   spool/outbox/                       webhook deliveries (webhook.c)
 *   spool/tmp/                          copies across file systems, and
 *                                       finished tasks being removed
 *                                       (emptied at start)
 *
 * Every state change is a rename of a marker. At start, active/ markers go
 * back to queue/ (their jobs died with the daemon) and half-claimed task
 * folders are completed or removed.
 */
#ifndef LADDERD_SPOOL_H
#define LADDERD_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct ladderd_marker {
	char name[160];	  /* "<arrival>-<task_id>" */
	char task_id[80];
	uint64_t due_ms;  /* deferred only */
};

int ladderd_spool_init(const char *spool);
int ladderd_spool_path(const char *spool, const char *sub, const char *name,
    char *buf, size_t size);
int ladderd_spool_enqueue(const char *spool, const char *task_id);
int ladderd_spool_list(const char *spool, const char *state,
    struct ladderd_marker **ret, size_t *ret_n);
int ladderd_spool_move(const char *spool, const char *from_state,
    const char *from_name, const char *to_state, const char *to_name);
int ladderd_spool_remove(const char *spool, const char *state,
    const char *name);
int ladderd_spool_recover(const char *spool, size_t *ret_requeued);
int ladderd_spool_lock(const char *spool, int *ret_fd, long *ret_owner);

#endif

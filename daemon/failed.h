/*
 * failed.h - the failed folder: failed/<id>/ keeps what the user dropped
 * (under its original names) and error.json: what failed, in which stage,
 * why, when, and the task's claim, which `ladderd retry` needs to queue
 * it again. Ingest writes it for a refused drop, the supervisor for a task
 * that failed at run time. Nothing here logs.
 */
#ifndef LADDERD_FAILED_H
#define LADDERD_FAILED_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "conf.h"

/* failed/<id> into buf; 0 or -ENAMETOOLONG. */
int ladderd_failed_dir(const struct ladderd_conf *conf, const char *id,
    char *buf, size_t size);
/*
 * Write <fdir>/error.json (durably). link_target: what a refused symlink
 * pointed at, or NULL; claim (borrowed) may be NULL.
 */
int ladderd_failed_write_error(const char *fdir, const char *id,
    const char *stage, const char *message, const char *link_target,
    const cJSON *claim);
/*
 * A task failed: its drop goes from task_dir to failed/<id>/ under its
 * original names with an error.json, then task_dir is removed.
 */
int ladderd_failed_task(const struct ladderd_conf *conf, const char *id,
    const char *task_dir, const char *stage, const char *message);

#endif

/*
 * ctx.h - the task context beyond the inline helpers of stage.h: merging
 * named arguments, the checkpoint file, and the one function that knows a
 * task's folder layout.
 *
 * Context keys the host maintains: task.{id, main_task_id, profile, source,
 * work_dir, publish_root, status_root, webhook, metadata}, profile.{...}
 * (a copy of the task's profile), done (names of finished pre/post stages),
 * renditions (rung results, ladder order), error.{stage, message}.
 */
#ifndef LADDERD_CTX_H
#define LADDERD_CTX_H

#include <stddef.h>

#include "../stages/stage.h"

int ladderd_ctx_merge(cJSON *ctx, const cJSON *args);
int ladderd_ctx_save(const cJSON *ctx, const char *path);
int ladderd_ctx_load(const char *path, cJSON **ret_ctx);
int ladderd_ctx_path(const cJSON *ctx, enum ladderd_path kind,
    const char *rung, char *buf, size_t size);
int ladderd_ctx_rel_path(const cJSON *ctx, enum ladderd_path kind,
    const char *rung, char *buf, size_t size);
int ladderd_ctx_work_path(const char *work, enum ladderd_path kind,
    const char *rung, char *buf, size_t size);
int ladderd_ctx_load_task(const char *work, cJSON **ret_ctx);
int ladderd_ctx_valid_name(const char *name);
int ladderd_ctx_derive_id(const char *file, unsigned suffix, char *buf,
    size_t size);
void ladderd_ctx_unlink_shm(const cJSON *ctx);
void ladderd_ctx_set_error(cJSON *ctx, const char *stage, const char *rung,
    const char *message);

#endif

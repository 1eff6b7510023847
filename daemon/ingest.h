/*
 * ingest.h - turns a complete drop (a media file or a JSON job manifest)
 * into a queued task: validates it, claims it into the spool by rename,
 * writes the task's first context and its "queued" status. A drop that
 * is refused goes to the failed folder with an error.json and a "failed"
 * status saying why, under an id derived from the file's name (never the
 * task_id a refused manifest names: a refusal reserves no id). Nothing a
 * user dropped is deleted.
 */
#ifndef LADDERD_INGEST_H
#define LADDERD_INGEST_H

#include <stddef.h>

#include "conf.h"

struct ladderd_ingest_result {
	char task_id[80];
	int queued; /* 1: a task was queued; 0: refused or gone */
	char error[1024];
};

int ladderd_ingest_drop(const struct ladderd_conf *conf, const char *dir,
    const char *name, const char *profile,
    struct ladderd_ingest_result *res);
int ladderd_ingest_keep_drop(const cJSON *claim, const char *task_dir,
    const char *dest);
int ladderd_ingest_complete_task(const struct ladderd_conf *conf,
    const char *task_id, const char *task_dir, char *what, size_t size);
int ladderd_ingest_give_back(const char *task_dir);
int ladderd_ingest_retry_task(const struct ladderd_conf *conf,
    const char *id, char *err, size_t errlen);
int ladderd_ingest_is_temporary(const char *name);
int ladderd_ingest_parse_manifest(const struct ladderd_conf *conf,
    const char *text, cJSON **ret_m, char *err, size_t errlen);

#endif

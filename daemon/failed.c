/*
 * failed.c - the failed folder (failed.h). The drop is moved out of the
 * task folder by ingest's rules (ladderd_ingest_keep_drop: original names,
 * nothing copied that is not a regular file) before the task folder goes,
 * so a crash in between leaves the drop in one of the two places.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "failed.h"
#include "fsutil.h"
#include "ingest.h"
#include "status.h"

int
ladderd_failed_dir(const struct ladderd_conf *conf, const char *id,
    char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s", conf->failed, id);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int
ladderd_failed_write_error(const char *fdir, const char *id,
    const char *stage, const char *message, const char *link_target,
    const cJSON *claim)
{
	char p[PATH_MAX], now[32];
	cJSON *e = cJSON_CreateObject();
	char *text;
	int rc;

	if (e == NULL)
		return -ENOMEM;
	(void)ladderd_status_now(now, sizeof(now));
	cJSON_AddStringToObject(e, "task_id", id);
	cJSON_AddStringToObject(e, "stage", stage);
	cJSON_AddStringToObject(e, "message", message);
	cJSON_AddStringToObject(e, "time", now);
	if (link_target && link_target[0])
		cJSON_AddStringToObject(e, "link_target", link_target);
	if (claim)
		cJSON_AddItemToObject(e, "claim", cJSON_Duplicate(claim, 1));
	text = cJSON_Print(e);
	cJSON_Delete(e);
	if (text == NULL)
		return -ENOMEM;
	if (snprintf(p, sizeof(p), "%s/error.json", fdir) >= (int)sizeof(p))
		rc = -ENAMETOOLONG;
	else
		rc = ladderd_fsutil_write_atomic(p, text, strlen(text));
	cJSON_free(text);
	return rc;
}

int
ladderd_failed_task(const struct ladderd_conf *conf, const char *id,
    const char *task_dir, const char *stage, const char *message)
{
	char fdir[PATH_MAX], p[PATH_MAX];
	cJSON *claim = NULL;
	int rc;

	if ((rc = ladderd_failed_dir(conf, id, fdir, sizeof(fdir))) < 0)
		return rc;
	if (ladderd_ctx_work_path(task_dir, LADDERD_PATH_CLAIM, NULL, p,
		sizeof(p)) == 0)
		(void)ladderd_ctx_load(p, &claim);
	(void)ladderd_ingest_keep_drop(claim, task_dir, fdir);
	(void)ladderd_failed_write_error(fdir, id, stage, message, NULL,
	    claim);
	cJSON_Delete(claim);
	return ladderd_fsutil_rmtree(task_dir);
}

/*
 * ctx.c - context merge, checkpoint and layout.
 *
 * Layout of a task (the only place that knows it, `layout` below):
 *   <work>/context.json          checkpoint of the job context
 *   <work>/claim.json            what ingest recorded of the drop
 *   <work>/manifest.json         a dropped manifest
 *   <work>/source/               the source file
 *   <work>/rungs/<rung>/         request.json, result.json, running,
 *                                transcoded.mp4
 *   <work>/fragments/<rung>.m3u8 a rung's master-playlist entry
 *   <work>/package/              what is published: master.m3u8,
 *                                manifest.mpd, <rung>/index.m3u8 + segments
 *   <publish_root>/<task_id>/    the published package
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "ctx.h"
#include "fsutil.h"

#define CTX_MAX_BYTES (64u << 20)

/*
 * Merge `args` into `ctx`: objects are merged key by key (recursively),
 * anything else replaces the value in ctx. `args` is only read.
 */
int
ladderd_ctx_merge(cJSON *ctx, const cJSON *args)
{
	const cJSON *it;

	if (args == NULL)
		return 0;
	if (!cJSON_IsObject(ctx) || !cJSON_IsObject(args))
		return -EINVAL;
	cJSON_ArrayForEach(it, args) {
		cJSON *mine = cJSON_GetObjectItemCaseSensitive(ctx, it->string);
		cJSON *copy;

		if (cJSON_IsObject(mine) && cJSON_IsObject(it)) {
			int rc = ladderd_ctx_merge(mine, it);

			if (rc < 0)
				return rc;
			continue;
		}
		if ((copy = cJSON_Duplicate(it, 1)) == NULL)
			return -ENOMEM;
		if (ladderd_ctx_set(ctx, it->string, copy) < 0) {
			cJSON_Delete(copy);
			return -ENOMEM;
		}
	}
	return 0;
}

int
ladderd_ctx_save(const cJSON *ctx, const char *path)
{
	char *text = cJSON_Print(ctx);
	int rc;

	if (text == NULL)
		return -ENOMEM;
	rc = ladderd_fsutil_write_atomic(path, text, strlen(text));
	cJSON_free(text);
	return rc;
}

/* Load a JSON object; -EBADMSG when the file is not a JSON object. */
int
ladderd_ctx_load(const char *path, cJSON **ret_ctx)
{
	char *text = NULL;
	cJSON *ctx;
	int rc;

	if ((rc = ladderd_fsutil_read(path, CTX_MAX_BYTES, &text, NULL)) < 0)
		return rc;
	ctx = cJSON_Parse(text);
	free(text);
	if (!cJSON_IsObject(ctx)) {
		cJSON_Delete(ctx);
		return -EBADMSG;
	}
	*ret_ctx = ctx;
	return 0;
}

/* Names used in paths: task ids, rung names. 1..64 of [A-Za-z0-9._-]. */
int
ladderd_ctx_valid_name(const char *name)
{
	size_t n;

	if (name == NULL)
		return 0;
	n = strlen(name);
	if (n == 0 || n > 64 || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return 0;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789._-") == n;
}

/*
 * The layout: each kind is root + `dir` + [name] + `file`, where root is the
 * work folder or the publish root and name the rung or the task id.
 */
enum layout_root { IN_WORK, IN_PUBLISH };
enum layout_name { NO_NAME, RUNG_NAME, TASK_ID };
static const struct {
	enum layout_root root;
	const char *dir;
	enum layout_name name;
	const char *file;
} layout[LADDERD_PATH__COUNT] = {
	[LADDERD_PATH_WORK] = { IN_WORK, "", NO_NAME, "" },
	[LADDERD_PATH_CONTEXT] = { IN_WORK, "/context.json", NO_NAME, "" },
	[LADDERD_PATH_CLAIM] = { IN_WORK, "/claim.json", NO_NAME, "" },
	[LADDERD_PATH_MANIFEST] = { IN_WORK, "/manifest.json", NO_NAME, "" },
	[LADDERD_PATH_SOURCE_DIR] = { IN_WORK, "/source", NO_NAME, "" },
	[LADDERD_PATH_RUNG_STATE] = { IN_WORK, "/rungs/", RUNG_NAME, "" },
	[LADDERD_PATH_RUNG_REQUEST] = { IN_WORK, "/rungs/", RUNG_NAME,
	    "/request.json" },
	[LADDERD_PATH_RUNG_RESULT] = { IN_WORK, "/rungs/", RUNG_NAME,
	    "/result.json" },
	[LADDERD_PATH_RUNG_RUNNING] = { IN_WORK, "/rungs/", RUNG_NAME,
	    "/running" },
	[LADDERD_PATH_RUNG_ENDED] = { IN_WORK, "/rungs/", RUNG_NAME,
	    "/ended" },
	[LADDERD_PATH_TRANSCODED] = { IN_WORK, "/rungs/", RUNG_NAME,
	    "/transcoded.mp4" },
	[LADDERD_PATH_FRAGMENTS_DIR] = { IN_WORK, "/fragments", NO_NAME, "" },
	[LADDERD_PATH_HLS_FRAGMENT] = { IN_WORK, "/fragments/", RUNG_NAME,
	    ".m3u8" },
	[LADDERD_PATH_PACKAGE] = { IN_WORK, "/package", NO_NAME, "" },
	[LADDERD_PATH_HLS_DIR] = { IN_WORK, "/package/", RUNG_NAME, "" },
	[LADDERD_PATH_HLS_PLAYLIST] = { IN_WORK, "/package/", RUNG_NAME,
	    "/index.m3u8" },
	[LADDERD_PATH_MASTER] = { IN_WORK, "/package/master.m3u8", NO_NAME,
	    "" },
	[LADDERD_PATH_MPD] = { IN_WORK, "/package/manifest.mpd", NO_NAME, "" },
	[LADDERD_PATH_DASH_DIR] = { IN_WORK, "/package/dash", NO_NAME, "" },
	[LADDERD_PATH_POSTER] = { IN_WORK, "/package/poster.jpg", NO_NAME, "" },
	[LADDERD_PATH_THUMBS_DIR] = { IN_WORK, "/package/thumbs", NO_NAME,
	    "" },
	[LADDERD_PATH_PUBLISH_ROOT] = { IN_PUBLISH, "", NO_NAME, "" },
	[LADDERD_PATH_PUBLISH] = { IN_PUBLISH, "/", TASK_ID, "" },
	[LADDERD_PATH_PUBLISHED_MASTER] = { IN_PUBLISH, "/", TASK_ID,
	    "/master.m3u8" },
	[LADDERD_PATH_PUBLISHED_MPD] = { IN_PUBLISH, "/", TASK_ID,
	    "/manifest.mpd" },
};

/*
 * Write kind's path, below `root` (NULL: relative to it, without the
 * leading '/'). `rung` must be a valid name for the per-rung kinds.
 */
static int
layout_path(const char *root, const char *id, enum ladderd_path kind,
    const char *rung, char *buf, size_t size)
{
	const char *name = "", *dir;
	int n;

	if ((unsigned)kind >= LADDERD_PATH__COUNT || layout[kind].dir == NULL)
		return -EINVAL;
	if (layout[kind].name == RUNG_NAME) {
		if (!ladderd_ctx_valid_name(rung))
			return -EINVAL;
		name = rung;
	} else if (layout[kind].name == TASK_ID) {
		if (id == NULL)
			return -EINVAL;
		name = id;
	}
	dir = layout[kind].dir;
	if (root == NULL) {
		root = "";
		dir += dir[0] == '/';
	}
	n = snprintf(buf, size, "%s%s%s%s", root, dir, name,
	    layout[kind].file);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * The path of `kind` for the task of `ctx` (task.work_dir, task.id and,
 * for the publish kinds, task.publish_root).
 */
int
ladderd_ctx_path(const cJSON *ctx, enum ladderd_path kind, const char *rung,
    char *buf, size_t size)
{
	const char *work = ladderd_ctx_str(ctx, "task.work_dir", NULL);
	const char *id = ladderd_ctx_str(ctx, "task.id", NULL);
	const char *pub = ladderd_ctx_str(ctx, "task.publish_root", NULL);

	if (work == NULL || id == NULL || (unsigned)kind >= LADDERD_PATH__COUNT)
		return -EINVAL;
	if (layout[kind].root == IN_PUBLISH && pub == NULL)
		return -EINVAL;
	return layout_path(layout[kind].root == IN_PUBLISH ? pub : work, id,
	    kind, rung, buf, size);
}

/*
 * The same relative to the root (the work folder or the publish root):
 * "<task_id>/master.m3u8" for LADDERD_PATH_PUBLISHED_MASTER.
 */
int
ladderd_ctx_rel_path(const cJSON *ctx, enum ladderd_path kind,
    const char *rung, char *buf, size_t size)
{
	return layout_path(NULL, ladderd_ctx_str(ctx, "task.id", NULL), kind,
	    rung, buf, size);
}

/*
 * The path of a work-folder kind for the task folder `work`, when no
 * context is at hand (the supervisor, a rung worker before it read its
 * request). -EINVAL for the publish kinds.
 */
int
ladderd_ctx_work_path(const char *work, enum ladderd_path kind,
    const char *rung, char *buf, size_t size)
{
	if (work == NULL || (unsigned)kind >= LADDERD_PATH__COUNT ||
	    layout[kind].root != IN_WORK)
		return -EINVAL;
	return layout_path(work, NULL, kind, rung, buf, size);
}

/* Load the checkpoint of the task whose folder is `work`. */
int
ladderd_ctx_load_task(const char *work, cJSON **ret_ctx)
{
	char path[PATH_MAX];
	int rc;

	*ret_ctx = NULL;
	if ((rc = ladderd_ctx_work_path(work, LADDERD_PATH_CONTEXT, NULL, path,
		 sizeof(path))) < 0)
		return rc;
	return ladderd_ctx_load(path, ret_ctx);
}

/* ctx.error = {stage, rung?, message}; replaces an earlier error. */
void
ladderd_ctx_set_error(cJSON *ctx, const char *stage, const char *rung,
    const char *message)
{
	cJSON *err = cJSON_CreateObject();

	if (err == NULL)
		return;
	cJSON_AddStringToObject(err, "stage", stage ? stage : "");
	if (rung)
		cJSON_AddStringToObject(err, "rung", rung);
	cJSON_AddStringToObject(err, "message", message ? message : "");
	if (ladderd_ctx_set(ctx, "error", err) < 0)
		cJSON_Delete(err);
}

/*
 * Remove the shared memory the task's stages listed (ctx.cleanup.shm,
 * stage.h). Only names of ours ("/ladderd-" and no other '/') are
 * removed: the context is written by plugins. A name that is not there
 * (already removed) is not an error.
 */
void
ladderd_ctx_unlink_shm(const cJSON *ctx)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, ladderd_ctx_get(ctx, "cleanup.shm")) {
		if (!cJSON_IsString(it) ||
		    strncmp(it->valuestring, "/ladderd-", 9) != 0 ||
		    strchr(it->valuestring + 1, '/') != NULL)
			continue;
		(void)shm_unlink(it->valuestring);
	}
}

/*
 * A task id from a file name: its base name without the extension, every
 * character outside [A-Za-z0-9._-] replaced by '_', cut to leave room for
 * a "-" and 6 hex digits of `suffix`, so two drops of one name differ.
 */
int
ladderd_ctx_derive_id(const char *file, unsigned suffix, char *buf,
    size_t size)
{
	const char *base = strrchr(file, '/');
	char stem[48];
	size_t n = 0;
	const char *dot;

	base = base ? base + 1 : file;
	dot = strrchr(base, '.');
	if (dot == base)
		dot = NULL;
	for (const char *p = base; *p && (!dot || p < dot) &&
	     n < sizeof(stem) - 1; p++) {
		unsigned char c = (unsigned char)*p;

		stem[n++] = (c < 128 && (c == '.' || c == '_' || c == '-' ||
				 (c >= '0' && c <= '9') ||
				 ((c | 32) >= 'a' && (c | 32) <= 'z'))) ?
		    (char)c : '_';
	}
	stem[n] = '\0';
	while (n > 0 && stem[0] == '.')
		memmove(stem, stem + 1, n--);
	if (n == 0)
		snprintf(stem, sizeof(stem), "task");
	n = (size_t)snprintf(buf, size, "%s-%06x", stem, suffix & 0xffffffu);
	return n >= size ? -ENAMETOOLONG : 0;
}

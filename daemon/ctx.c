/*
 * ctx.c - context merge, checkpoint and layout.
 *
 * Layout of a task (the only place that knows it):
 *   <work>/context.json          checkpoint of the job context
 *   <work>/source/               the source file
 *   <work>/rungs/<rung>/         request.json, result.json, transcoded.mp4
 *   <work>/fragments/<rung>.m3u8 a rung's master-playlist entry
 *   <work>/package/              what is published: master.m3u8,
 *                                manifest.mpd, <rung>/index.m3u8 + segments
 *   <publish_root>/<task_id>/    the published package
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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

int
ladderd_ctx_path(const cJSON *ctx, enum ladderd_path kind, const char *rung,
    char *buf, size_t size)
{
	const char *work = ladderd_ctx_str(ctx, "task.work_dir", NULL);
	const char *id = ladderd_ctx_str(ctx, "task.id", NULL);
	const char *pub = ladderd_ctx_str(ctx, "task.publish_root", NULL);
	int n;

	if (work == NULL || id == NULL)
		return -EINVAL;
	switch (kind) {
	case LADDERD_PATH_RUNG_STATE:
	case LADDERD_PATH_TRANSCODED:
	case LADDERD_PATH_HLS_DIR:
	case LADDERD_PATH_HLS_PLAYLIST:
	case LADDERD_PATH_HLS_FRAGMENT:
		if (!ladderd_ctx_valid_name(rung))
			return -EINVAL;
		break;
	case LADDERD_PATH_PUBLISH:
	case LADDERD_PATH_PUBLISH_ROOT:
		if (pub == NULL)
			return -EINVAL;
		break;
	default:
		break;
	}
	switch (kind) {
	case LADDERD_PATH_WORK:
		n = snprintf(buf, size, "%s", work);
		break;
	case LADDERD_PATH_SOURCE_DIR:
		n = snprintf(buf, size, "%s/source", work);
		break;
	case LADDERD_PATH_PACKAGE:
		n = snprintf(buf, size, "%s/package", work);
		break;
	case LADDERD_PATH_RUNG_STATE:
		n = snprintf(buf, size, "%s/rungs/%s", work, rung);
		break;
	case LADDERD_PATH_TRANSCODED:
		n = snprintf(buf, size, "%s/rungs/%s/transcoded.mp4", work,
		    rung);
		break;
	case LADDERD_PATH_HLS_DIR:
		n = snprintf(buf, size, "%s/package/%s", work, rung);
		break;
	case LADDERD_PATH_HLS_PLAYLIST:
		n = snprintf(buf, size, "%s/package/%s/index.m3u8", work, rung);
		break;
	case LADDERD_PATH_HLS_FRAGMENT:
		n = snprintf(buf, size, "%s/fragments/%s.m3u8", work, rung);
		break;
	case LADDERD_PATH_FRAGMENTS_DIR:
		n = snprintf(buf, size, "%s/fragments", work);
		break;
	case LADDERD_PATH_MASTER:
		n = snprintf(buf, size, "%s/package/master.m3u8", work);
		break;
	case LADDERD_PATH_MPD:
		n = snprintf(buf, size, "%s/package/manifest.mpd", work);
		break;
	case LADDERD_PATH_DASH_DIR:
		n = snprintf(buf, size, "%s/package/dash", work);
		break;
	case LADDERD_PATH_PUBLISH:
		n = snprintf(buf, size, "%s/%s", pub, id);
		break;
	case LADDERD_PATH_PUBLISH_ROOT:
		n = snprintf(buf, size, "%s", pub);
		break;
	default:
		return -EINVAL;
	}
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
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

/*
 * stages/publish.c - move the finished package (call->path PACKAGE) to
 * publish/<task_id>/ in one step. A re-run of the same task id replaces
 * the old package atomically (renameat2 RENAME_EXCHANGE), so a player
 * never sees half of each; across file systems the package is first
 * copied beside its destination. Adds ctx.publish = { path, hls, dash }.
 * The daemon's umask (027) keeps its other folders private; a package is
 * for players and web servers, so it is made world-readable (folders
 * 0755, files 0644) unless the argument publish_world_readable is false.
 * The folder work (mkdir, modes, the atomic replace) is the host's
 * (struct ladderd_call): this module has no daemon code in it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crashpoint.h"
#include "stage.h"

static enum ladderd_rc
publish_run(void *state, struct ladderd_call *call)
{
	char pkg[PATH_MAX], dst[PATH_MAX], root[PATH_MAX], file[PATH_MAX];
	cJSON *out = NULL;
	struct stat st;
	int err;

	(void)state;
	if (call->path(call, LADDERD_PATH_PACKAGE, NULL, pkg, sizeof(pkg)) < 0 ||
	    call->path(call, LADDERD_PATH_PUBLISH, NULL, dst, sizeof(dst)) < 0 ||
	    call->path(call, LADDERD_PATH_PUBLISH_ROOT, NULL, root,
		sizeof(root)) < 0) {
		call->fail(call, "the context does not name the package or the "
				 "publish folder");
		return LADDERD_FAIL;
	}
	if (stat(pkg, &st) < 0 || !S_ISDIR(st.st_mode)) {
		/*
		 * A task killed after the rename and before its checkpoint
		 * runs this again: the package is already in place (a task
		 * id is never reused, so it is this task's).
		 */
		if (errno == ENOENT && stat(dst, &st) == 0 && S_ISDIR(st.st_mode))
			goto published;
		call->fail(call, "no package to publish in '%s'", pkg);
		return LADDERD_FAIL;
	}
	if ((err = call->mkdirs(call, root)) < 0) {
		call->fail(call, "cannot create publish folder '%s': %s", root,
		    strerror(-err));
		return LADDERD_RETRY;
	}
	if (ladderd_ctx_bool(call->ctx, "publish_world_readable", 1) &&
	    (err = call->chmod_tree(call, pkg, 0755, 0644)) < 0) {
		call->fail(call, "cannot make '%s' readable: %s", pkg,
		    strerror(-err));
		return LADDERD_FAIL;
	}
	LADDERD_CRASH_POINT("publish.rename", NULL);
	if ((err = call->replace_dir(call, pkg, dst)) < 0) {
		call->fail(call, "cannot move '%s' to '%s': %s", pkg, dst,
		    strerror(-err));
		return err == -ENOSPC || err == -EDQUOT ? LADDERD_RETRY :
							  LADDERD_FAIL;
	}
	LADDERD_CRASH_POINT("publish.renamed", NULL);
published:
	if ((out = cJSON_CreateObject()) == NULL) {
		call->fail(call, "out of memory");
		return LADDERD_FAIL;
	}
	cJSON_AddStringToObject(out, "path", dst);
	if (call->path(call, LADDERD_PATH_PUBLISHED_MASTER, NULL, file,
		sizeof(file)) == 0 &&
	    access(file, F_OK) == 0)
		cJSON_AddStringToObject(out, "hls", file);
	if (call->path(call, LADDERD_PATH_PUBLISHED_MPD, NULL, file,
		sizeof(file)) == 0 &&
	    access(file, F_OK) == 0)
		cJSON_AddStringToObject(out, "dash", file);
	if (ladderd_ctx_set(call->ctx, "publish", out) < 0) {
		cJSON_Delete(out);
		call->fail(call, "out of memory");
		return LADDERD_FAIL;
	}
	return LADDERD_OK;
}

LADDERD_STAGE_DEFINE("publish", "1.0", "publishing", NULL, publish_run, NULL);

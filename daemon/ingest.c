/*
 * ingest.c - from a complete drop to a queued task (see ingest.h).
 *
 * Claim order, so a crash at any point loses nothing and takes nothing
 * twice: mkdir spool/tasks/<id> (mkdir is the id's uniqueness test), write
 * claim.json (what was dropped, where, which profile), rename the drop
 * into the task folder (the claim: only one rename can succeed), write
 * the first context.json, the "queued" status, and last the queue marker.
 * Start-up recovery (supervisor.c) finishes a claim interrupted after the
 * first context.json, and gives a drop claimed before it back to its
 * ingest folder (ladderd_ingest_give_back), where it is taken anew.
 *
 * Manifest keys (README "Drops"): task_id, source, profile, webhook,
 * metadata. Unknown keys are refused so a typo never silently does
 * nothing. A manifest's local source is a path relative to the ingest
 * folder, inside it (subfolders are not watched, so put such sources in a
 * subfolder to keep them from being taken as drops of their own).
 *
 * Everything a drop names is reached through the ingest folder's handle
 * (dropfs.c): no symbolic link is followed on the way, only regular files
 * are taken and never opened before they are checked, so a drop cannot
 * move, copy or publish a file from outside the folder (issue 9).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../stages/crashpoint.h"
#include "ctx.h"
#include "dropfs.h"
#include "engine.h"
#include "failed.h"
#include "fsutil.h"
#include "ingest.h"
#include "netpolicy.h"
#include "spool.h"
#include "status.h"

#define MANIFEST_MAX_BYTES (1u << 20)
#define INGEST_MAX_SIDECARS 16 /* a manifest's subtitle files */

/* snprintf into an array; true when the result did not fit. */
#define PATH_TOO_LONG(buf, ...)                                              \
	(snprintf((buf), sizeof(buf), __VA_ARGS__) >= (int)sizeof(buf))
/* buf = the path of `kind` in the task folder `tdir` (ctx.c's layout). */
#define TASK_PATH_BAD(buf, tdir, kind)                                       \
	(ladderd_ctx_work_path((tdir), (kind), NULL, (buf), sizeof(buf)) < 0)

int
ladderd_ingest_is_temporary(const char *name)
{
	static const char *const suffixes[] = { ".part", ".tmp", "~",
		".crdownload", ".partial", ".swp", ".filepart", NULL };
	size_t n = strlen(name);

	if (n == 0 || name[0] == '.')
		return 1;
	for (int i = 0; suffixes[i]; i++) {
		size_t s = strlen(suffixes[i]);

		if (n >= s && strcmp(name + n - s, suffixes[i]) == 0)
			return 1;
	}
	return 0;
}

static int
ingest_exists(const struct ladderd_conf *conf, const char *id)
{
	char p[PATH_MAX];
	struct stat st;

	if (snprintf(p, sizeof(p), "%s/tasks/%s", conf->spool, id) <
		(int)sizeof(p) &&
	    stat(p, &st) == 0)
		return 1;
	if (ladderd_status_path(conf->status, id, LADDERD_STATUS_DIR, p,
		sizeof(p)) == 0 &&
	    stat(p, &st) == 0)
		return 1;
	if (snprintf(p, sizeof(p), "%s/%s", conf->publish, id) <
		(int)sizeof(p) &&
	    stat(p, &st) == 0)
		return 1;
	return 0;
}

static void
ingest_derive(const char *name, char *id, size_t size)
{
	unsigned r = 0;

	if (getrandom(&r, sizeof(r), 0) < 0)
		r = (unsigned)time(NULL) ^ (unsigned)getpid();
	if (ladderd_ctx_derive_id(name, r, id, size) < 0)
		snprintf(id, size, "task-%06x", r & 0xffffffu);
}

/* Mode of the files a drop leaves with us: 0666 less the umask. */
#define INGEST_FILE_MODE 0666

/*
 * Move `from` (a path inside the spool: ours, but checked all the same) to
 * `to`: a regular file is renamed or copied, anything else renamed or,
 * across file systems, removed, never copied.
 */
static int
ingest_move_path(const char *from, const char *to)
{
	char fdir[PATH_MAX], tdir[PATH_MAX];
	const char *fleaf, *tleaf;
	struct stat st;
	int ffd = -1, tfd = -1, rc;

	if (PATH_TOO_LONG(fdir, "%s", from) || PATH_TOO_LONG(tdir, "%s", to) ||
	    strrchr(fdir, '/') == NULL || strrchr(tdir, '/') == NULL)
		return -ENAMETOOLONG;
	fleaf = strrchr(from, '/') + 1;
	tleaf = strrchr(to, '/') + 1;
	*strrchr(fdir, '/') = '\0';
	*strrchr(tdir, '/') = '\0';
	if ((ffd = ladderd_dropfs_open_dir(fdir[0] ? fdir : "/")) < 0)
		return ffd;
	if ((tfd = ladderd_dropfs_open_dir(tdir[0] ? tdir : "/")) < 0) {
		close(ffd);
		return tfd;
	}
	if ((rc = ladderd_dropfs_stat(ffd, fleaf, &st)) == 0) {
		if (S_ISREG(st.st_mode))
			rc = ladderd_dropfs_move(ffd, fleaf, &st, tfd, tleaf,
			    INGEST_FILE_MODE);
		else
			rc = ladderd_dropfs_move_special(ffd, fleaf, tfd, tleaf,
			    NULL, 0) < 0 ? -EINVAL : 0;
	}
	close(ffd);
	close(tfd);
	return rc;
}

static void
ingest_emit(const struct ladderd_conf *conf, const char *id,
    const char *state, const char *message, const char *webhook)
{
	cJSON *ctx = cJSON_CreateObject(), *task;
	char outbox[PATH_MAX];
	bool amqp = ladderd_ctx_str(conf->notify, "amqp.url", "")[0] != '\0';

	if (ctx == NULL)
		return;
	task = cJSON_AddObjectToObject(ctx, "task");
	cJSON_AddStringToObject(task, "id", id);
	cJSON_AddStringToObject(task, "status_root", conf->status);
	cJSON_AddStringToObject(task, "state", state);
	/* Every transport hears of refusals too (issue 13). */
	if (((webhook && webhook[0]) || amqp) &&
	    ladderd_spool_path(conf->spool, "outbox", NULL, outbox,
		sizeof(outbox)) == 0) {
		if (webhook && webhook[0])
			cJSON_AddStringToObject(task, "webhook", webhook);
		if (amqp)
			cJSON_AddBoolToObject(task, "amqp", 1);
		cJSON_AddStringToObject(task, "outbox_dir", outbox);
	}
	if (message)
		ladderd_ctx_set_error(ctx, "ingest", NULL, message);
	(void)ladderd_status_emit(ctx, NULL, NULL);
	cJSON_Delete(ctx);
}

/*
 * Refuse the drop `name` of the ingest folder `rootfd` (st: what lstat
 * saw): move it to failed/<id>/<name> with an error.json and write a
 * "failed" status for id. A regular file is renamed or copied; anything
 * else is renamed, or across file systems removed (never copied: a
 * symlink's target is recorded in error.json instead).
 */
static int
ingest_refuse(const struct ladderd_conf *conf, int rootfd, const char *name,
    const struct stat *st, const char *id, const char *message,
    struct ladderd_ingest_result *res)
{
	char fdir[PATH_MAX], target[PATH_MAX] = "";
	int ffd = -1, rc;

	snprintf(res->task_id, sizeof(res->task_id), "%s", id);
	snprintf(res->error, sizeof(res->error), "%s", message);
	res->queued = 0;
	if ((rc = ladderd_failed_dir(conf, id, fdir, sizeof(fdir))) < 0 ||
	    (rc = ladderd_fsutil_mkdir_p(fdir, 0755)) < 0)
		return rc;
	if ((ffd = ladderd_dropfs_open_dir(fdir)) < 0)
		return ffd;
	if (S_ISREG(st->st_mode))
		rc = ladderd_dropfs_move(rootfd, name, st, ffd, name,
		    INGEST_FILE_MODE);
	else
		rc = ladderd_dropfs_move_special(rootfd, name, ffd, name,
		    target, sizeof(target));
	close(ffd);
	/* -ESTALE: swapped while moving; what was moved is in failed/. */
	if (rc < 0 && rc != -ENOENT && rc != -ESTALE)
		return rc;
	(void)ladderd_failed_write_error(fdir, id, "ingest", message, target,
	    NULL);
	/* The operator hears of refusals too (never a manifest's URL). */
	ingest_emit(conf, id, "failed", message,
	    ladderd_ctx_str(conf->notify, "webhook", NULL));
	return 0;
}

/* "input" plus the drop's extension, if it is short and plain. */
static void
ingest_source_name(const char *name, char *buf, size_t size)
{
	const char *dot = strrchr(name, '.');

	if (dot && dot != name && strlen(dot) <= 9 &&
	    strspn(dot + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789") == strlen(dot + 1))
		snprintf(buf, size, "input%s", dot);
	else
		snprintf(buf, size, "input");
}

struct claim {
	const char *id;
	const char *kind; /* "media" or "manifest" */
	const char *dir, *name; /* the drop */
	int rootfd;		/* the ingest folder dir */
	const struct stat *st;	/* what lstat saw of name */
	const char *profile;
	const char *source;	 /* manifest source (URL or relative path) */
	const char *webhook;	      /* the operator's */
	const char *manifest_webhook; /* the manifest's, checked */
	const cJSON *metadata;
	const cJSON *subtitles; /* the manifest's sidecar files, checked */
};

/*
 * Find a file a manifest names, `source` (relative to the ingest folder
 * rootfd; `what` names it in messages: "source", "subtitle file"): a
 * regular file reached without any symbolic link. 0 with its folder open
 * in *ret_pfd (the caller closes it), its name in *ret_leaf and its lstat
 * in *ret_st; or a negative errno with the reason in err.
 */
static int
ingest_find_file(int rootfd, const char *what, const char *source,
    int *ret_pfd, const char **ret_leaf, struct stat *ret_st, char *err,
    size_t errlen)
{
	int pfd = -1, rc;

	rc = ladderd_dropfs_open_parent(rootfd, source, &pfd, ret_leaf);
	if (rc == 0)
		rc = ladderd_dropfs_stat(pfd, *ret_leaf, ret_st);
	if (rc == -ELOOP || (rc == 0 && S_ISLNK(ret_st->st_mode)))
		snprintf(err, errlen, "%s '%.300s' is or is reached "
		    "through a symbolic link: drop the file itself", what,
		    source);
	else if (rc == -EXDEV || rc == -EINVAL)
		snprintf(err, errlen, "%s '%.300s' must be a file name "
		    "relative to the ingest folder, inside it", what, source);
	else if (rc < 0)
		snprintf(err, errlen, "%s '%.300s' not found in the ingest "
		    "folder: %s", what, source, strerror(-rc));
	else if (!S_ISREG(ret_st->st_mode))
		snprintf(err, errlen, "%s '%.300s' is not a regular file",
		    what, source);
	if (rc == 0 && !S_ISREG(ret_st->st_mode))
		rc = -EINVAL;
	if (rc < 0 && pfd >= 0)
		close(pfd);
	else
		*ret_pfd = pfd;
	return rc;
}

/*
 * Move a file a manifest names (`path`, relative to the ingest folder) to
 * `name` in the task's source folder `sfd`. 0 or a negative errno with the
 * reason in err.
 */
static int
ingest_claim_file(const struct claim *c, const char *what, const char *path,
    int sfd, const char *name, char *err, size_t errlen)
{
	const char *leaf = NULL;
	struct stat st;
	int pfd = -1, rc;

	if ((rc = ingest_find_file(c->rootfd, what, path, &pfd, &leaf, &st,
		 err, errlen)) < 0)
		return rc;
	if ((rc = ladderd_dropfs_move(pfd, leaf, &st, sfd, name,
		 INGEST_FILE_MODE)) < 0)
		snprintf(err, errlen, "cannot take %s '%.300s': %s", what,
		    path, rc == -ESTALE ? "it changed while it was "
		    "being claimed" : strerror(-rc));
	close(pfd);
	return rc;
}

/*
 * The name a manifest's sidecar subtitle file number i gets in the task's
 * source/ folder: "sub-N" plus its (checked) extension.
 */
static void
ingest_sidecar_name(const char *file, int i, char *buf, size_t size)
{
	const char *dot = strrchr(file, '.');

	snprintf(buf, size, "sub-%d%s", i, dot != NULL ? dot : "");
}

/*
 * ctx.task.subtitles for the engine: the claim's sidecar files with the
 * path each has in the task folder `tdir`. NULL when there are none (or
 * out of memory: the stage then has none to read, and says nothing; the
 * caller checks).
 */
static cJSON *
ingest_sidecar_spec(const cJSON *claim, const char *tdir)
{
	const cJSON *it;
	cJSON *a;

	if (cJSON_GetArraySize(ladderd_ctx_get(claim, "subtitles")) == 0 ||
	    (a = cJSON_CreateArray()) == NULL)
		return NULL;
	cJSON_ArrayForEach(it, ladderd_ctx_get(claim, "subtitles")) {
		cJSON *e = cJSON_Duplicate(it, 1);
		char p[PATH_MAX];

		if (e == NULL || PATH_TOO_LONG(p, "%s/source/%s", tdir,
				     ladderd_ctx_str(it, "stored", "")) ||
		    ladderd_ctx_set(e, "path", cJSON_CreateString(p)) < 0 ||
		    !cJSON_AddItemToArray(a, e)) {
			cJSON_Delete(e);
			cJSON_Delete(a);
			return NULL;
		}
	}
	return a;
}

/*
 * The claim record of drop `c` (spool/tasks/<id>/claim.json): who dropped
 * what, where, with which profile, and the name each sidecar subtitle file
 * gets in source/. Returns a new object (the caller's), NULL when out of
 * memory.
 */
static cJSON *
ingest_claim_record(const struct claim *c)
{
	cJSON *claim = cJSON_CreateObject();
	char p[PATH_MAX];

	if (claim == NULL)
		return NULL;
	cJSON_AddStringToObject(claim, "task_id", c->id);
	cJSON_AddStringToObject(claim, "kind", c->kind);
	cJSON_AddStringToObject(claim, "watch", c->dir);
	cJSON_AddStringToObject(claim, "name", c->name);
	cJSON_AddStringToObject(claim, "profile", c->profile);
	cJSON_AddNumberToObject(claim, "claimed", (double)time(NULL));
	cJSON_AddNumberToObject(claim, "attempts", 0);
	if (c->source)
		cJSON_AddStringToObject(claim, "source", c->source);
	if (c->subtitles != NULL) {
		cJSON *subs = cJSON_Duplicate(c->subtitles, 1), *it;
		int i = 0;

		cJSON_ArrayForEach(it, subs) {
			ingest_sidecar_name(ladderd_ctx_str(it, "file", ""), i++,
			    p, sizeof(p));
			ladderd_ctx_set(it, "stored", cJSON_CreateString(p));
		}
		if (subs == NULL || !cJSON_AddItemToObject(claim, "subtitles",
					subs)) {
			cJSON_Delete(subs);
			cJSON_Delete(claim);
			return NULL;
		}
	}
	return claim;
}

/*
 * Write `claim` durably into task folder `tdir` and make its source/
 * folder. 0 or a negative errno.
 */
static int
ingest_claim_write(const cJSON *claim, const char *tdir)
{
	char p[PATH_MAX];
	char *text = cJSON_Print(claim);
	int rc;

	if (text == NULL || TASK_PATH_BAD(p, tdir, LADDERD_PATH_CLAIM)) {
		cJSON_free(text);
		return -ENOMEM;
	}
	rc = ladderd_fsutil_write_atomic(p, text, strlen(text));
	cJSON_free(text);
	if (rc < 0)
		return rc;
	if (TASK_PATH_BAD(p, tdir, LADDERD_PATH_SOURCE_DIR) ||
	    mkdir(p, 0755) < 0)
		return -errno;
	return 0;
}

/*
 * The files that come along with a manifest into source/ (folder `sfd`):
 * its local source (path in `input`, PATH_MAX bytes, and *ret_local set)
 * and its sidecar subtitle files, whose spec for the task is
 * *ret_sidecars (the caller's). 0, else -EINVAL (message in res->error) or
 * -ENOMEM.
 */
static int
ingest_claim_companions(const struct claim *c, const cJSON *claim,
    const char *tdir, int sfd, struct ladderd_ingest_result *res,
    char *input, int *ret_local, cJSON **ret_sidecars)
{
	const cJSON *it;
	char src[64];
	int rc;

	if (strcmp(c->kind, "media") != 0 && c->source &&
	    strstr(c->source, "://") == NULL) {
		ingest_source_name(c->source, src, sizeof(src));
		if (snprintf(input, PATH_MAX, "%s/source/%s", tdir, src) >=
		    PATH_MAX)
			rc = -ENAMETOOLONG;
		else
			rc = ingest_claim_file(c, "source", c->source, sfd,
			    src, res->error, sizeof(res->error));
		if (rc < 0) {
			if (rc == -ENAMETOOLONG)
				snprintf(res->error, sizeof(res->error),
				    "source '%.300s': %s", c->source,
				    strerror(-rc));
			return -EINVAL;
		}
		*ret_local = 1;
	}
	cJSON_ArrayForEach(it, ladderd_ctx_get(claim, "subtitles")) {
		const char *file = ladderd_ctx_str(it, "file", "");

		if (ingest_claim_file(c, "subtitle file", file, sfd,
			ladderd_ctx_str(it, "stored", ""), res->error,
			sizeof(res->error)) < 0)
			return -EINVAL;
	}
	if (ladderd_ctx_get(claim, "subtitles") != NULL &&
	    (*ret_sidecars = ingest_sidecar_spec(claim, tdir)) == NULL)
		return -ENOMEM;
	return 0;
}

/*
 * Make the claimed task's context in `tdir` (`input`: its claimed source
 * file, NULL for a URL; `sidecars`: its subtitle files) and queue it. 0, or
 * a negative errno with the message in res->error.
 */
static int
ingest_claim_queue(const struct ladderd_conf *conf, const struct claim *c,
    const char *tdir, const char *outbox, const char *input,
    cJSON *sidecars, struct ladderd_ingest_result *res)
{
	char err[1024];
	cJSON *ctx = NULL;
	int rc;
	struct ladderd_task_spec spec = {
		.task_id = c->id,
		.source = c->source ? c->source : c->name,
		.input_path = input,
		.profile = c->profile,
		.work_dir = tdir,
		.publish_root = conf->publish,
		.status_root = conf->status,
		.webhook = c->webhook,
		.manifest_webhook = c->manifest_webhook,
		.amqp = ladderd_ctx_str(conf->notify, "amqp.url", "")[0] !=
		    '\0',
		.outbox_dir = outbox,
		.metadata = c->metadata,
		.subtitles = sidecars,
	};

	if ((rc = ladderd_engine_new_task(conf, &spec, &ctx, err,
		 sizeof(err))) < 0) {
		snprintf(res->error, sizeof(res->error), "%s", err);
		return rc;
	}
	if (ladderd_status_emit(ctx, NULL, NULL) < 0) {
		/* Status is advisory here; the queue marker is what counts. */
	}
	cJSON_Delete(ctx);
	LADDERD_CRASH_POINT("ingest.queue", NULL);
	if ((rc = ladderd_spool_enqueue(conf->spool, c->id)) < 0) {
		snprintf(res->error, sizeof(res->error),
		    "cannot queue the task: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

/*
 * Claim a validated drop into spool/tasks/<id> and queue it. Returns 0
 * (queued), -ENOENT (the drop vanished: someone else took it), or another
 * negative errno (message in res->error).
 */
static int
ingest_claim(const struct ladderd_conf *conf, const struct claim *c,
    struct ladderd_ingest_result *res)
{
	char tdir[PATH_MAX], src[64], input[PATH_MAX], outbox[PATH_MAX];
	cJSON *claim = NULL, *sidecars = NULL;
	int rc, media, local = 0, tfd = -1, sfd = -1;

	if ((rc = ladderd_spool_path(conf->spool, "tasks", c->id, tdir,
		 sizeof(tdir))) < 0 ||
	    (rc = ladderd_spool_path(conf->spool, "outbox", NULL, outbox,
		 sizeof(outbox))) < 0)
		return rc;
	if (mkdir(tdir, 0755) < 0) {
		snprintf(res->error, sizeof(res->error),
		    "task_id '%s' already exists", c->id);
		return errno == EEXIST ? -EEXIST : -errno;
	}
	if ((claim = ingest_claim_record(c)) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = ingest_claim_write(claim, tdir)) < 0)
		goto fail;
	/* The claim proper: whoever renames first owns the drop. */
	if ((tfd = ladderd_dropfs_open_dir(tdir)) < 0 ||
	    (sfd = openat(tfd, "source", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) <
		0) {
		rc = tfd < 0 ? tfd : -errno;
		goto fail;
	}
	ingest_source_name(c->name, src, sizeof(src));
	media = strcmp(c->kind, "media") == 0;
	if (media ? PATH_TOO_LONG(input, "%s/source/%s", tdir, src) : 0) {
		rc = -ENAMETOOLONG;
		goto fail;
	}
	rc = ladderd_dropfs_move(c->rootfd, c->name, c->st, media ? sfd : tfd,
	    media ? src : "manifest.json", INGEST_FILE_MODE);
	if (rc == -ESTALE) {
		/* Swapped for another file while moving: keep it, refuse. */
		snprintf(res->error, sizeof(res->error), "'%.300s' changed "
		    "while it was being claimed: drop it again", c->name);
		goto fail_claimed;
	}
	if (rc < 0) {
		if (rc != -ENOENT)
			snprintf(res->error, sizeof(res->error),
			    "cannot claim '%.300s/%.300s': %s", c->dir, c->name,
			    strerror(-rc));
		goto fail;
	}
	LADDERD_CRASH_POINT("ingest.claimed", NULL);
	if ((rc = ingest_claim_companions(c, claim, tdir, sfd, res, input,
		 &local, &sidecars)) < 0 ||
	    (rc = ingest_claim_queue(conf, c, tdir, outbox,
		 media || local ? input : NULL, sidecars, res)) < 0)
		goto fail_claimed;
	res->queued = 1;
	snprintf(res->task_id, sizeof(res->task_id), "%s", c->id);
	rc = 0;
	goto out;
fail_claimed:
	/* The drop is ours now: it goes to the failed folder, not away. */
	(void)ladderd_failed_task(conf, c->id, tdir, "ingest", res->error);
	ingest_emit(conf, c->id, "failed", res->error, c->webhook);
	snprintf(res->task_id, sizeof(res->task_id), "%s", c->id);
	goto out;
fail:
	(void)ladderd_fsutil_rmtree(tdir);
out:
	if (sfd >= 0)
		close(sfd);
	if (tfd >= 0)
		close(tfd);
	cJSON_Delete(claim);
	cJSON_Delete(sidecars);
	return rc;
}

static int
ingest_url_allowed(const struct ladderd_conf *conf, const char *url)
{
	const char *sep = strstr(url, "://");
	const cJSON *it;

	if (sep == NULL)
		return 0;
	cJSON_ArrayForEach(it, ladderd_ctx_get(conf->stage_groups,
				   "download.protocols")) {
		size_t n = strlen(it->valuestring);

		if ((size_t)(sep - url) == n &&
		    strncasecmp(url, it->valuestring, n) == 0)
			return 1;
	}
	return 0;
}

/* Whether `s` holds a control character (C0 or DEL). */
static bool
ingest_has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* Any key or string below `it` with a control character (bounded depth). */
static bool
ingest_metadata_control(const cJSON *it, int depth)
{
	const cJSON *c;

	if (depth > 64)
		return true; /* cJSON stops at 1000; we never need more */
	if (it->string != NULL && ingest_has_control(it->string))
		return true;
	if (cJSON_IsString(it) && ingest_has_control(it->valuestring))
		return true;
	cJSON_ArrayForEach(c, it)
		if (ingest_metadata_control(c, depth + 1))
			return true;
	return false;
}

/*
 * A manifest's metadata travels in events (the queued and the terminal
 * one) and webhooks: at most max_metadata bytes as compact JSON, no
 * control characters (they escape to 6 bytes each and forge log lines in
 * naive consumers). 0 or -EINVAL with the reason in err.
 */
static int
ingest_check_metadata(const struct ladderd_conf *conf, const cJSON *meta,
    char *err, size_t errlen)
{
	char *text;
	size_t n;

	if (ingest_metadata_control(meta, 0)) {
		snprintf(err, errlen, "metadata contains control characters "
		    "(or is nested deeper than 64)");
		return -EINVAL;
	}
	if ((text = cJSON_PrintUnformatted(meta)) == NULL) {
		snprintf(err, errlen, "metadata cannot be serialised");
		return -EINVAL;
	}
	n = strlen(text);
	cJSON_free(text);
	if (n > (size_t)conf->max_metadata) {
		snprintf(err, errlen, "metadata is %zu bytes as JSON, more than "
		    "max_metadata (%d)", n, conf->max_metadata);
		return -EINVAL;
	}
	return 0;
}

/*
 * A manifest's "subtitles": at most INGEST_MAX_SIDECARS objects { file,
 * language?, name?, default?, forced? }; file is a path relative to the
 * ingest folder, inside it, ending in .srt, .vtt, .ass or .ssa (the same
 * rules as a local source; the file itself is checked when it is taken);
 * language 1..35 of [A-Za-z0-9-]; name at most 128 bytes without control
 * characters. 0 or -EINVAL with the reason in err.
 */
static int
ingest_check_sidecars(const cJSON *subs, char *err, size_t errlen)
{
	static const char *const keys[] = { "file", "language", "name",
		"default", "forced", NULL };
	const cJSON *it, *k;
	int i = 0;

	if (!cJSON_IsArray(subs) ||
	    cJSON_GetArraySize(subs) > INGEST_MAX_SIDECARS) {
		snprintf(err, errlen, "subtitles must be a list of at most %d "
		    "{ \"file\": ..., \"language\": ... } objects",
		    INGEST_MAX_SIDECARS);
		return -EINVAL;
	}
	cJSON_ArrayForEach(it, subs) {
		const char *file = ladderd_ctx_str(it, "file", NULL);
		const char *lang = ladderd_ctx_str(it, "language", NULL);
		const char *dot = file ? strrchr(file, '.') : NULL;

		if (!cJSON_IsObject(it) || file == NULL || file[0] == '\0') {
			snprintf(err, errlen, "subtitles[%d] needs a \"file\"",
			    i);
			return -EINVAL;
		}
		cJSON_ArrayForEach(k, it) {
			int known = 0;

			for (int j = 0; keys[j]; j++)
				known |= strcmp(k->string, keys[j]) == 0;
			if (!known) {
				snprintf(err, errlen, "unknown key '%.64s' in "
				    "subtitles[%d] (known: file, language, "
				    "name, default, forced)", k->string, i);
				return -EINVAL;
			}
		}
		if (file[0] == '/' || strstr(file, "..") ||
		    ladderd_ingest_is_temporary(file) ||
		    ingest_has_control(file)) {
			snprintf(err, errlen, "subtitle file '%.200s' must be a "
			    "file name relative to the ingest folder, inside "
			    "it", file);
			return -EINVAL;
		}
		if (dot == NULL || (strcmp(dot, ".srt") != 0 &&
		    strcmp(dot, ".vtt") != 0 && strcmp(dot, ".ass") != 0 &&
		    strcmp(dot, ".ssa") != 0)) {
			snprintf(err, errlen, "subtitle file '%.200s' must be "
			    ".srt, .vtt, .ass or .ssa", file);
			return -EINVAL;
		}
		if ((k = cJSON_GetObjectItemCaseSensitive(it, "language")) &&
		    (!cJSON_IsString(k) || lang[0] == '\0' ||
			strlen(lang) > 35 ||
			strspn(lang, "abcdefghijklmnopqrstuvwxyz"
				     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") !=
			    strlen(lang))) {
			snprintf(err, errlen, "subtitles[%d]: language must be "
			    "a tag like \"en\" or \"pt-BR\"", i);
			return -EINVAL;
		}
		if ((k = cJSON_GetObjectItemCaseSensitive(it, "name")) &&
		    (!cJSON_IsString(k) || strlen(k->valuestring) > 128 ||
			ingest_has_control(k->valuestring))) {
			snprintf(err, errlen, "subtitles[%d]: name must be a "
			    "string of at most 128 bytes", i);
			return -EINVAL;
		}
		if (((k = cJSON_GetObjectItemCaseSensitive(it, "default")) &&
			!cJSON_IsBool(k)) ||
		    ((k = cJSON_GetObjectItemCaseSensitive(it, "forced")) &&
			!cJSON_IsBool(k))) {
			snprintf(err, errlen, "subtitles[%d]: default and forced "
			    "are true or false", i);
			return -EINVAL;
		}
		i++;
	}
	return 0;
}

/* Validate a manifest; 0 or -EINVAL with the reason in err. */
static int
ingest_check_manifest(const struct ladderd_conf *conf, const cJSON *m,
    char *err, size_t errlen)
{
	static const char *const keys[] = { "task_id", "source", "profile",
		"webhook", "metadata", "subtitles", NULL };
	const cJSON *it;
	const char *src, *hook;

	if (!cJSON_IsObject(m)) {
		snprintf(err, errlen, "manifest is not a JSON object");
		return -EINVAL;
	}
	cJSON_ArrayForEach(it, m) {
		int known = 0;

		for (int i = 0; keys[i]; i++)
			known |= strcmp(it->string, keys[i]) == 0;
		if (!known) {
			snprintf(err, errlen, "unknown key '%s' in manifest "
			    "(known: task_id, source, profile, webhook, "
			    "metadata, subtitles)", it->string);
			return -EINVAL;
		}
	}
	it = cJSON_GetObjectItemCaseSensitive(m, "task_id");
	if (it && (!cJSON_IsString(it) ||
		      !ladderd_ctx_valid_name(it->valuestring))) {
		snprintf(err, errlen, "invalid task_id: use 1..64 of "
		    "[A-Za-z0-9._-], not '.' or '..'");
		return -EINVAL;
	}
	src = ladderd_ctx_str(m, "source", NULL);
	if (src == NULL || src[0] == '\0') {
		snprintf(err, errlen, "manifest has no \"source\" (a URL or a "
		    "file name in the ingest folder)");
		return -EINVAL;
	}
	if (strstr(src, "://")) {
		if (!ingest_url_allowed(conf, src)) {
			snprintf(err, errlen, "source URL scheme not allowed: "
			    "'%.200s'", src);
			return -EINVAL;
		}
	} else if (src[0] == '/' || strstr(src, "..") ||
	    ladderd_ingest_is_temporary(src)) {
		snprintf(err, errlen, "source '%.200s' must be a file name "
		    "relative to the ingest folder, inside it", src);
		return -EINVAL;
	}
	it = cJSON_GetObjectItemCaseSensitive(m, "profile");
	if (it && (!cJSON_IsString(it) ||
		      ladderd_conf_profile(conf, it->valuestring) == NULL)) {
		snprintf(err, errlen, "unknown profile '%.100s'",
		    cJSON_IsString(it) ? it->valuestring : "?");
		return -EINVAL;
	}
	it = cJSON_GetObjectItemCaseSensitive(m, "webhook");
	if (it) {
		const cJSON *h;
		char host[256];
		bool listed = false;

		hook = cJSON_IsString(it) ? it->valuestring : "";
		/*
		 * A manifest's URL is a drop's: it may receive events only
		 * where the operator allows (the notify worker checks again
		 * at each send, with libcurl's parse and the address policy).
		 */
		if (!ladderd_ctx_bool(conf->notify, "allow_manifest_webhook",
			0)) {
			snprintf(err, errlen, "this server does not allow a "
			    "manifest to set a webhook");
			return -EINVAL;
		}
		if (ladderd_netpolicy_url_host(hook, host, sizeof(host)) < 0) {
			snprintf(err, errlen, "webhook must be an http(s) URL");
			return -EINVAL;
		}
		cJSON_ArrayForEach(h, ladderd_ctx_get(conf->notify,
		    "manifest_webhook_hosts"))
			if (cJSON_IsString(h) &&
			    ladderd_netpolicy_host_match(h->valuestring, host))
				listed = true;
		if (!listed) {
			snprintf(err, errlen, "webhook host '%.100s' is not "
			    "one this server sends to", host);
			return -EINVAL;
		}
	}
	it = cJSON_GetObjectItemCaseSensitive(m, "subtitles");
	if (it && ingest_check_sidecars(it, err, errlen) < 0)
		return -EINVAL;
	it = cJSON_GetObjectItemCaseSensitive(m, "metadata");
	if (it && !cJSON_IsObject(it)) {
		snprintf(err, errlen, "metadata must be a JSON object");
		return -EINVAL;
	}
	if (it && ingest_check_metadata(conf, it, err, errlen) < 0)
		return -EINVAL;
	return 0;
}

/*
 * What ladderd_ingest_drop does with a manifest's text (NUL-terminated):
 * parse it and check it against conf. Returns 0 with the manifest in
 * *ret_m, or -EINVAL with the reason in err (and in *ret_m whatever JSON
 * parsed, NULL if none). The caller frees *ret_m. A function of bytes,
 * for tests/fuzz/fuzz_manifest.c.
 */
int
ladderd_ingest_parse_manifest(const struct ladderd_conf *conf,
    const char *text, cJSON **ret_m, char *err, size_t errlen)
{
	if ((*ret_m = cJSON_Parse(text)) == NULL) {
		snprintf(err, errlen, "manifest is not valid JSON");
		return -EINVAL;
	}
	return ingest_check_manifest(conf, *ret_m, err, errlen);
}

/*
 * Whether the files manifest `m` names in the drop folder `rootfd` (its
 * local source, its sidecar subtitle files) are there; they are checked
 * again, race-free, when the drop is claimed. 0, or -1 with the reason in
 * `err`.
 */
static int
ingest_manifest_files_present(int rootfd, const cJSON *m, char *err,
    size_t errlen)
{
	const char *src = ladderd_ctx_str(m, "source", "");
	const char *leaf;
	const cJSON *sc;
	struct stat sst;
	int pfd = -1;

	if (strstr(src, "://") == NULL) {
		if (ingest_find_file(rootfd, "source", src, &pfd, &leaf, &sst,
			err, errlen) < 0)
			return -1;
		close(pfd);
	}
	cJSON_ArrayForEach(sc, ladderd_ctx_get(m, "subtitles")) {
		pfd = -1;
		if (ingest_find_file(rootfd, "subtitle file",
			ladderd_ctx_str(sc, "file", ""), &pfd, &leaf, &sst,
			err, errlen) < 0)
			return -1;
		close(pfd);
	}
	return 0;
}

/*
 * Read and check the manifest drop c->name (stat `st`) and fill the claim
 * `c` from it: its task_id (into `id`, `idlen` bytes, which holds the id
 * derived from the file's name), source, profile, webhook, metadata and
 * subtitles. `c` points into *ret_m, which the caller frees. Returns 1 to
 * claim it; else the drop was refused or vanished, and the return value
 * is ladderd_ingest_drop's (0, or a negative errno when the spool failed).
 */
static int
ingest_drop_manifest(const struct ladderd_conf *conf, struct claim *c,
    char *id, size_t idlen, struct ladderd_ingest_result *res,
    cJSON **ret_m)
{
	char err[1024];
	char *text = NULL;
	const char *mid;
	int rc, fd;

	if ((size_t)c->st->st_size > MANIFEST_MAX_BYTES)
		return ingest_refuse(conf, c->rootfd, c->name, c->st, id,
		    "manifest larger than 1 MiB", res);
	fd = ladderd_dropfs_open_regular(c->rootfd, c->name, c->st);
	if (fd == -ENOENT || fd == -ESTALE || fd == -ELOOP || fd == -EINVAL)
		return 0; /* gone or swapped: the next scan looks again */
	if (fd < 0)
		return fd;
	rc = ladderd_fsutil_read_fd(fd, MANIFEST_MAX_BYTES, &text, NULL);
	close(fd);
	if (rc < 0)
		return rc;
	/*
	 * A refusal is reported under the id derived from the file's
	 * name, never under the task_id the manifest names: a refused
	 * drop must not reserve an id a good one would use.
	 */
	rc = ladderd_ingest_parse_manifest(conf, text, ret_m, err,
	    sizeof(err));
	free(text);
	if (rc < 0)
		return ingest_refuse(conf, c->rootfd, c->name, c->st, id, err,
		    res);
	mid = ladderd_ctx_str(*ret_m, "task_id", NULL);
	if (mid && ingest_exists(conf, mid)) {
		snprintf(err, sizeof(err), "task_id '%s' already exists", mid);
		return ingest_refuse(conf, c->rootfd, c->name, c->st, id, err,
		    res);
	}
	if (ingest_manifest_files_present(c->rootfd, *ret_m, err,
		sizeof(err)) < 0)
		return ingest_refuse(conf, c->rootfd, c->name, c->st, id, err,
		    res);
	if (mid)
		snprintf(id, idlen, "%s", mid);
	c->kind = "manifest";
	c->id = id;
	c->source = ladderd_ctx_str(*ret_m, "source", NULL);
	c->profile = ladderd_ctx_str(*ret_m, "profile", c->profile);
	/* In addition to the operator's, never instead of it. */
	c->manifest_webhook = ladderd_ctx_str(*ret_m, "webhook", NULL);
	c->metadata = ladderd_ctx_get(*ret_m, "metadata");
	c->subtitles = ladderd_ctx_get(*ret_m, "subtitles");
	return 1;
}

/*
 * Take the complete drop dir/name. res says what happened; the return
 * value is 0 unless the spool itself failed (a negative errno: the drop
 * stays where it is and will be tried again).
 */
int
ladderd_ingest_drop(const struct ladderd_conf *conf, const char *dir,
    const char *name, const char *profile, struct ladderd_ingest_result *res)
{
	char id[80];
	const char *conf_hook = ladderd_ctx_str(conf->notify, "webhook", "");
	struct claim c = { 0 };
	struct stat st;
	cJSON *m = NULL;
	size_t n = strlen(name);
	int rc = 0, rootfd = -1;

	memset(res, 0, sizeof(*res));
	if (n == 0 || strchr(name, '/') || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return -EINVAL;
	if ((rootfd = ladderd_dropfs_open_dir(dir)) < 0)
		return rootfd;
	if ((rc = ladderd_dropfs_stat(rootfd, name, &st)) < 0) {
		rc = rc == -ENOENT ? 0 : rc;
		goto out;
	}
	ingest_derive(name, id, sizeof(id));
	if (S_ISDIR(st.st_mode))
		goto out; /* subfolders are not drops */
	if (!S_ISREG(st.st_mode)) {
		rc = ingest_refuse(conf, rootfd, name, &st, id,
		    S_ISLNK(st.st_mode) ?
			"symbolic links are not taken: drop the file itself" :
			"not a regular file",
		    res);
		goto out;
	}
	c.dir = dir;
	c.name = name;
	c.rootfd = rootfd;
	c.st = &st;
	c.profile = profile;
	c.webhook = conf_hook[0] ? conf_hook : NULL;
	if (n > 5 && strcmp(name + n - 5, ".json") == 0) {
		if ((rc = ingest_drop_manifest(conf, &c, id, sizeof(id), res,
			 &m)) <= 0)
			goto out;
	} else {
		c.kind = "media";
		c.id = id;
	}
	rc = ingest_claim(conf, &c, res);
	if (rc == -EEXIST)
		rc = ingest_refuse(conf, rootfd, name, &st,
		    (ingest_derive(name, id, sizeof(id)), id), res->error, res);
	else if (rc == -ENOENT)
		rc = 0; /* gone: another daemon took it */
	else if (rc < 0 && !res->queued && res->task_id[0])
		rc = 0; /* failed as a task; already in the failed folder */
out:
	if (rootfd >= 0)
		close(rootfd);
	cJSON_Delete(m);
	return rc;
}

/*
 * The name a file of the task's source/ folder had before it was claimed:
 * the drop's own name for a dropped media file, the base name of a
 * manifest's local source, else its name there (a download keeps the
 * name the download stage gave it).
 */
static const char *
ingest_original_name(const cJSON *claim, const char *entry)
{
	const char *kind = ladderd_ctx_str(claim, "kind", "media");
	const char *name = ladderd_ctx_str(claim, "name", NULL);
	const char *src = ladderd_ctx_str(claim, "source", NULL);
	const cJSON *it;
	char claimed[64];

	cJSON_ArrayForEach(it, ladderd_ctx_get(claim, "subtitles")) {
		const char *file = ladderd_ctx_str(it, "file", "");
		const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 :
							file;

		if (strcmp(entry, ladderd_ctx_str(it, "stored", "")) == 0 &&
		    ladderd_ctx_valid_name(base))
			return base;
	}
	if (strcmp(kind, "media") == 0 && name) {
		ingest_source_name(name, claimed, sizeof(claimed));
		if (strcmp(entry, claimed) == 0)
			return name;
	} else if (src && strstr(src, "://") == NULL) {
		const char *base = strrchr(src, '/') ? strrchr(src, '/') + 1 :
							 src;

		ingest_source_name(src, claimed, sizeof(claimed));
		if (strcmp(entry, claimed) == 0 &&
		    ladderd_ctx_valid_name(base))
			return base;
	}
	return entry;
}

/*
 * Move what the user dropped out of task_dir into dest (created): the
 * manifest under the name it was dropped with, and every file of source/
 * under its original name (a name already taken there gets "source-" in
 * front). Returns 0 or the first negative errno (the rest is still
 * tried).
 */
int
ladderd_ingest_keep_drop(const cJSON *claim, const char *task_dir,
    const char *dest)
{
	char p[PATH_MAX], to[PATH_MAX], sdir[PATH_MAX];
	const char *orig = ladderd_ctx_str(claim, "name", "source");
	struct dirent *de;
	DIR *d;
	int rc, first = 0;

	if ((rc = ladderd_fsutil_mkdir_p(dest, 0755)) < 0)
		return rc;
	if (strcmp(ladderd_ctx_str(claim, "kind", "media"), "manifest") == 0 &&
	    !TASK_PATH_BAD(p, task_dir, LADDERD_PATH_MANIFEST) &&
	    !PATH_TOO_LONG(to, "%s/%s", dest, orig) &&
	    (rc = ingest_move_path(p, to)) < 0 && rc != -ENOENT)
		first = rc;
	if (TASK_PATH_BAD(sdir, task_dir, LADDERD_PATH_SOURCE_DIR) ||
	    (d = opendir(sdir)) == NULL)
		return first;
	while ((de = readdir(d)) != NULL) {
		const char *name = ingest_original_name(claim, de->d_name);
		size_t len = strlen(de->d_name);
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    (len > 5 && strcmp(de->d_name + len - 5, ".part") == 0))
			continue;
		if (PATH_TOO_LONG(p, "%s/%s", sdir, de->d_name) ||
		    PATH_TOO_LONG(to, "%s/%s", dest, name) ||
		    (lstat(to, &st) == 0 &&
			PATH_TOO_LONG(to, "%s/source-%s", dest, name))) {
			first = first ? first : -ENAMETOOLONG;
			continue;
		}
		if ((rc = ingest_move_path(p, to)) < 0 && !first)
			first = rc;
	}
	closedir(d);
	return first;
}

/*
 * A task completed: keep_source says what happens to what the user
 * dropped. "delete": nothing to do here (the caller removes the task
 * folder, and the drop with it). "archive": the drop goes to
 * archive/<id>/ under its original names, as a failed one goes to
 * failed/<id>/. `what` receives a sentence for the log ("source 'x.mp4'
 * archived in '...'"). Returns 0, or a negative errno when archiving
 * failed: the caller then keeps the task folder, so nothing is lost.
 */
int
ladderd_ingest_complete_task(const struct ladderd_conf *conf, const char *id,
    const char *task_dir, char *what, size_t size)
{
	char adir[PATH_MAX], p[PATH_MAX];
	cJSON *claim = NULL;
	int rc = 0;

	if (!TASK_PATH_BAD(p, task_dir, LADDERD_PATH_CLAIM))
		(void)ladderd_ctx_load(p, &claim);
	if (!conf->archive_sources) {
		snprintf(what, size, "source '%s' deleted (keep_source = "
		    "\"delete\")", ladderd_ctx_str(claim, "name", "?"));
	} else if (snprintf(adir, sizeof(adir), "%s/%s", conf->archive, id) >=
	    (int)sizeof(adir)) {
		rc = -ENAMETOOLONG;
		snprintf(what, size, "cannot archive source '%s': path too "
		    "long; it stays in '%s'", ladderd_ctx_str(claim, "name",
		    "?"), task_dir);
	} else if ((rc = ladderd_ingest_keep_drop(claim, task_dir, adir)) < 0) {
		snprintf(what, size, "cannot archive source '%s' in '%s': %s; "
		    "it stays in '%s'", ladderd_ctx_str(claim, "name", "?"),
		    adir, strerror(-rc), task_dir);
	} else {
		snprintf(what, size, "source '%s' archived in '%s'",
		    ladderd_ctx_str(claim, "name", "?"), adir);
	}
	cJSON_Delete(claim);
	return rc;
}

/* Rename from to to unless to exists (-EEXIST); copies across file systems. */
static int
ingest_put_back(const char *from, const char *to)
{
	int rc;

	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EXDEV)
		return -errno;
	if ((rc = ladderd_fsutil_copy_file(from, to)) < 0)
		return rc;
	return unlink(from) < 0 ? -errno : 0;
}

/*
 * Undo a claim that a crash cut short before the task had a context (so
 * before any status or queue marker): the drop goes back into the folder
 * it came from under its own name (claim.json says both), to be taken
 * again as a new drop, and the task folder is removed. The file goes back
 * first, so a crash in between leaves a task folder without its drop,
 * which the next start just removes. The ingest folder is the one this
 * daemon recorded, and the name one it checked when it took the drop.
 * Returns 0, or a negative errno (-EEXIST: a file of that name was
 * dropped since, or a manifest's local source came along too) and the
 * caller moves the task to the failed folder instead.
 */
int
ladderd_ingest_give_back(const char *task_dir)
{
	char p[PATH_MAX], to[PATH_MAX], nm[64];
	const char *watch, *name, *src;
	cJSON *claim = NULL;
	struct stat st;
	int rc = 0;

	if (TASK_PATH_BAD(p, task_dir, LADDERD_PATH_CLAIM) ||
	    ladderd_ctx_load(p, &claim) < 0)
		goto remove; /* claim.json comes before the rename */
	watch = ladderd_ctx_str(claim, "watch", NULL);
	name = ladderd_ctx_str(claim, "name", NULL);
	src = ladderd_ctx_str(claim, "source", NULL);
	if (watch == NULL || name == NULL) {
		rc = -EINVAL;
		goto out;
	}
	if (strcmp(ladderd_ctx_str(claim, "kind", "media"), "manifest") == 0) {
		/*
		 * A local source it named and that came along is not put
		 * back (its subfolder may have changed since): -EEXIST, the
		 * caller keeps both in the failed folder.
		 */
		ingest_source_name(src ? src : "", nm, sizeof(nm));
		if (src && strstr(src, "://") == NULL &&
		    !PATH_TOO_LONG(p, "%s/source/%s", task_dir, nm) &&
		    lstat(p, &st) == 0) {
			rc = -EEXIST;
			goto out;
		}
		/* So are its sidecar subtitle files. */
		if (cJSON_GetArraySize(ladderd_ctx_get(claim, "subtitles")) >
			0 &&
		    !TASK_PATH_BAD(p, task_dir, LADDERD_PATH_SOURCE_DIR) &&
		    lstat(p, &st) == 0) {
			const cJSON *it;

			cJSON_ArrayForEach(it, ladderd_ctx_get(claim,
			    "subtitles")) {
				if (!PATH_TOO_LONG(to, "%s/%s", p,
					ladderd_ctx_str(it, "stored", "")) &&
				    lstat(to, &st) == 0) {
					rc = -EEXIST;
					goto out;
				}
			}
		}
		if (TASK_PATH_BAD(p, task_dir, LADDERD_PATH_MANIFEST)) {
			rc = -ENAMETOOLONG;
			goto out;
		}
	} else {
		ingest_source_name(name, nm, sizeof(nm));
		if (PATH_TOO_LONG(p, "%s/source/%s", task_dir, nm)) {
			rc = -ENAMETOOLONG;
			goto out;
		}
	}
	if (PATH_TOO_LONG(to, "%s/%s", watch, name)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	if (lstat(p, &st) == 0 && (rc = ingest_put_back(p, to)) < 0)
		goto out;
remove:
	rc = ladderd_fsutil_rmtree(task_dir);
out:
	cJSON_Delete(claim);
	return rc;
}

/* Move failed/<id>/<from> to <to>, or back (undo). */
static int
ingest_retry_move(const char *fdir, const char *from, const char *to,
    int back)
{
	char p[PATH_MAX];

	if (PATH_TOO_LONG(p, "%s/%s", fdir, from))
		return -ENAMETOOLONG;
	return ingest_move_path(back ? to : p, back ? p : to);
}

/*
 * A sidecar subtitle file of claim entry `sc` from failed/<id>/ (its base
 * name) to the task's source/ (its claimed name), or back.
 */
static int
ingest_retry_sidecar(const char *fdir, const char *tdir, const cJSON *sc,
    int back)
{
	const char *file = ladderd_ctx_str(sc, "file", "");
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	char to[PATH_MAX];

	if (!ladderd_ctx_valid_name(base) ||
	    PATH_TOO_LONG(to, "%s/source/%s", tdir,
		ladderd_ctx_str(sc, "stored", "")))
		return -EINVAL;
	return ingest_retry_move(fdir, base, to, back);
}

/*
 * A drop on its way back from failed/<id>/ (`fdir`) into the task folder
 * `tdir`: what has moved so far, so that a failure can put it back.
 * moved: 1 = the drop itself (to `input` for media, to `p`, the task's
 * manifest, otherwise), 2 = also the manifest's local source `base` (to
 * `input`); sc_moved: how many of the claim's sidecar files.
 */
struct ingest_retry {
	const char *fdir, *tdir, *name, *base;
	int media, moved, sc_moved;
	char input[PATH_MAX], p[PATH_MAX];
};

/*
 * Move the drop of `claim` back under the names a claim gives it: the
 * media file, or the manifest with its local source and sidecar files.
 * 0 or a negative errno (what moved is recorded in `r`).
 */
static int
ingest_retry_take_back(struct ingest_retry *r, const cJSON *claim,
    const char *source)
{
	const cJSON *sc;
	char src[64];
	int rc;

	if (r->media) {
		ingest_source_name(r->name, src, sizeof(src));
		if (PATH_TOO_LONG(r->input, "%s/source/%s", r->tdir, src))
			return -ENAMETOOLONG;
		if ((rc = ingest_retry_move(r->fdir, r->name, r->input, 0)) < 0)
			return rc;
		r->moved = 1;
		return 0;
	}
	if (TASK_PATH_BAD(r->p, r->tdir, LADDERD_PATH_MANIFEST))
		return -ENAMETOOLONG;
	if ((rc = ingest_retry_move(r->fdir, r->name, r->p, 0)) < 0)
		return rc;
	r->moved = 1;
	if (source && strstr(source, "://") == NULL) {
		r->base = strrchr(source, '/') ? strrchr(source, '/') + 1 :
		    source;
		ingest_source_name(source, src, sizeof(src));
		if (PATH_TOO_LONG(r->input, "%s/source/%s", r->tdir, src))
			return -ENAMETOOLONG;
		if ((rc = ingest_retry_move(r->fdir, r->base, r->input, 0)) <
		    0)
			return rc;
		r->moved = 2;
	}
	/* Its sidecar subtitle files, under their claimed names. */
	cJSON_ArrayForEach(sc, ladderd_ctx_get(claim, "subtitles")) {
		if ((rc = ingest_retry_sidecar(r->fdir, r->tdir, sc, 0)) < 0)
			return rc;
		r->sc_moved++;
	}
	return 0;
}

/*
 * Undo ingest_retry_take_back: whatever came back goes back, so the
 * failed folder keeps the drop.
 */
static void
ingest_retry_put_back(struct ingest_retry *r, const cJSON *claim)
{
	const cJSON *sc;
	int left = r->sc_moved;

	if (r->moved >= 1)
		(void)ingest_retry_move(r->fdir, r->name,
		    r->media ? r->input : r->p, 1);
	if (r->moved == 2)
		(void)ingest_retry_move(r->fdir, r->base, r->input, 1);
	cJSON_ArrayForEach(sc, ladderd_ctx_get(claim, "subtitles")) {
		if (left-- <= 0)
			break;
		(void)ingest_retry_sidecar(r->fdir, r->tdir, sc, 1);
	}
}

/*
 * Write the claim of retry number `retried` (attempts and retries start
 * over) into the task folder `tdir`, and make its source/ folder. 0 or a
 * negative errno.
 */
static int
ingest_retry_claim(cJSON *claim, const char *tdir, int retried)
{
	char p[PATH_MAX];
	int rc;

	ladderd_ctx_set(claim, "retried", cJSON_CreateNumber(retried));
	ladderd_ctx_set(claim, "attempts", cJSON_CreateNumber(0));
	ladderd_ctx_set(claim, "retries", cJSON_CreateNumber(0));
	if (TASK_PATH_BAD(p, tdir, LADDERD_PATH_CLAIM))
		return -EIO;
	if ((rc = ladderd_ctx_save(claim, p)) < 0)
		return rc;
	if (TASK_PATH_BAD(p, tdir, LADDERD_PATH_SOURCE_DIR) ||
	    mkdir(p, 0755) < 0)
		return -EIO;
	return 0;
}

/*
 * Make the context of retried task `id` (its claim, and manifest `m` or
 * NULL) and queue it, with `retried` in its first status event. 0, or a
 * negative errno with the message in `err`.
 */
static int
ingest_retry_queue(const struct ladderd_conf *conf, const char *id,
    const struct ingest_retry *r, const char *outbox, const cJSON *claim,
    const cJSON *m, cJSON *sidecars, int retried, char *err, size_t errlen)
{
	const char *hook = ladderd_ctx_str(conf->notify, "webhook", "");
	const char *source = ladderd_ctx_str(claim, "source", NULL);
	char msg[1024];
	cJSON *ctx = NULL, *f = NULL;
	int rc;
	struct ladderd_task_spec spec = {
		.task_id = id,
		.source = source ? source : r->name,
		.input_path = r->media || r->base ? r->input : NULL,
		.profile = ladderd_ctx_str(claim, "profile", "default"),
		.work_dir = r->tdir,
		.publish_root = conf->publish,
		.status_root = conf->status,
		.webhook = hook[0] ? hook : NULL,
		.manifest_webhook = ladderd_ctx_str(m, "webhook", NULL),
		.outbox_dir = outbox,
		.metadata = ladderd_ctx_get(m, "metadata"),
		.subtitles = sidecars,
	};

	if ((rc = ladderd_engine_new_task(conf, &spec, &ctx, msg,
		 sizeof(msg))) < 0) {
		snprintf(err, errlen, "%s", msg);
		return rc;
	}
	if ((f = cJSON_CreateObject()) != NULL)
		cJSON_AddNumberToObject(f, "retried", retried);
	(void)ladderd_status_emit(ctx, f, NULL);
	cJSON_Delete(f);
	cJSON_Delete(ctx);
	if ((rc = ladderd_spool_enqueue(conf->spool, id)) < 0) {
		snprintf(err, errlen, "cannot queue '%s': %s", id,
		    strerror(-rc));
		return rc;
	}
	return 0;
}

/*
 * `ladderd retry`: the failed task `id` is queued again under the same
 * id. Its drop comes back from failed/<id>/ into spool/tasks/<id>/ with
 * the claim that error.json recorded, a fresh context, and a "queued"
 * event with "retried": N (its status goes on with the next seq); then
 * failed/<id>/ is removed. Refused (-EEXIST) when the task is queued or
 * running, -ENOENT when failed/<id>/ has no retryable drop. On failure
 * the drop stays in (or goes back to) failed/<id>/. err says why.
 */
int
ladderd_ingest_retry_task(const struct ladderd_conf *conf, const char *id,
    char *err, size_t errlen)
{
	char fdir[PATH_MAX], tdir[PATH_MAX], p[PATH_MAX], outbox[PATH_MAX];
	char msg[1024];
	struct ingest_retry r = { .fdir = fdir, .tdir = tdir };
	cJSON *e = NULL, *claim = NULL, *m = NULL, *sidecars = NULL;
	char *text = NULL;
	const char *source;
	int rc, retried;

	if (ladderd_failed_dir(conf, id, fdir, sizeof(fdir)) < 0 ||
	    PATH_TOO_LONG(p, "%s/error.json", fdir) ||
	    (rc = ladderd_spool_path(conf->spool, "tasks", id, tdir,
		 sizeof(tdir))) < 0 ||
	    (rc = ladderd_spool_path(conf->spool, "outbox", NULL, outbox,
		 sizeof(outbox))) < 0) {
		snprintf(err, errlen, "task id too long");
		return -ENAMETOOLONG;
	}
	if (ladderd_ctx_load(p, &e) < 0 ||
	    (claim = cJSON_DetachItemFromObject(e, "claim")) == NULL) {
		snprintf(err, errlen, "task '%s' is not in the failed folder "
		    "with a drop to retry ('%s')", id, p);
		rc = -ENOENT;
		goto out;
	}
	r.name = ladderd_ctx_str(claim, "name", "");
	r.media = strcmp(ladderd_ctx_str(claim, "kind", "media"), "media") ==
	    0;
	source = ladderd_ctx_str(claim, "source", NULL);
	if (!ladderd_ctx_valid_name(r.name)) {
		snprintf(err, errlen, "the claim of '%s' names no drop", id);
		rc = -ENOENT;
		goto out;
	}
	if (mkdir(tdir, 0755) < 0) {
		rc = -errno;
		snprintf(err, errlen, rc == -EEXIST ? "task '%s' is queued or "
		    "running" : "cannot create the task folder of '%s'", id);
		goto out;
	}
	retried = (int)ladderd_ctx_num(claim, "retried", 0) + 1;
	if ((rc = ingest_retry_claim(claim, tdir, retried)) < 0) {
		snprintf(err, errlen, "cannot write the claim of '%s'", id);
		goto fail;
	}
	/* The drop comes back under the names a claim gives it. */
	if ((rc = ingest_retry_take_back(&r, claim, source)) < 0) {
		snprintf(err, errlen, "cannot take the drop of '%s' back from "
		    "'%s': %s", id, fdir, strerror(-rc));
		goto fail;
	}
	if (r.sc_moved > 0 &&
	    (sidecars = ingest_sidecar_spec(claim, tdir)) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	if (!r.media &&
	    (ladderd_fsutil_read(r.p, MANIFEST_MAX_BYTES, &text, NULL) < 0 ||
		ladderd_ingest_parse_manifest(conf, text, &m, msg,
		    sizeof(msg)) < 0)) {
		snprintf(err, errlen, "the manifest of '%s' no longer parses",
		    id);
		rc = -EINVAL;
		goto fail;
	}
	if ((rc = ingest_retry_queue(conf, id, &r, outbox, claim, m, sidecars,
		 retried, err, errlen)) < 0)
		goto fail;
	(void)ladderd_fsutil_rmtree(fdir);
	snprintf(err, errlen, "task '%s' queued again (retry %d)", id,
	    retried);
	rc = 0;
	goto out;
fail:
	ingest_retry_put_back(&r, claim);
	(void)ladderd_fsutil_rmtree(tdir);
out:
	free(text);
	cJSON_Delete(m);
	cJSON_Delete(claim);
	cJSON_Delete(e);
	cJSON_Delete(sidecars);
	return rc;
}

/*
 * status.c - writes status events. Event fields keep the seed's names
 * (task_id, main_task_id, state, quality, complete, progress, error) plus
 * seq, time, started and elapsed (of the task; rung_started and
 * rung_elapsed in a rung's events), outputs (not in failed events) and
 * metadata. status.json is the latest event plus "rungs" (latest state,
 * progress, started and elapsed of every rung) and "schema": 1. A rung's
 * progress never goes back (see status_goes_back).
 *
 * events.ndjson is the journal: an event exists once its line is appended
 * (and fdatasync'd), and the next seq is the last line's seq + 1. Then the
 * outbox file is written, then status.json replaced, all under an flock on
 * status/<task_id>/.lock. A crash after the append leaves status.json
 * behind the journal: the next emit sees that, writes the outbox file of
 * that last line again (a receiver may get it twice, never miss it) and
 * goes on with the next seq; a torn last line is cut off first.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../stages/crashpoint.h"
#include "clock.h"
#include "ctx.h"
#include "fsutil.h"
#include "status.h"

/* RFC 3339 UTC with milliseconds: latency can be measured from events. */
static int
status_stamp(uint64_t ms, char *buf, size_t size)
{
	time_t sec = (time_t)(ms / 1000u);
	struct tm tm;
	char base[32];

	gmtime_r(&sec, &tm);
	if (strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return -ENOSPC;
	return snprintf(buf, size, "%s.%03uZ", base, (unsigned)(ms % 1000u)) <
		(int)size ? 0 : -ENOSPC;
}

int
ladderd_status_now(char *buf, size_t size)
{
	return status_stamp(ladderd_clock_wall_ms(), buf, size);
}

/*
 * obj.started = now (RFC 3339) and obj.started_ms (for elapsed), unless
 * obj has a start already (a resumed task keeps its first one). 0 or
 * -ENOMEM.
 */
int
ladderd_status_set_started(cJSON *obj)
{
	uint64_t ms = ladderd_clock_wall_ms();
	char now[32];

	if (obj == NULL)
		return -ENOMEM;
	if (cJSON_GetObjectItemCaseSensitive(obj, "started_ms"))
		return 0;
	(void)status_stamp(ms, now, sizeof(now));
	if (cJSON_AddStringToObject(obj, "started", now) == NULL ||
	    cJSON_AddNumberToObject(obj, "started_ms", (double)ms) == NULL)
		return -ENOMEM;
	return 0;
}

/*
 * outputs[key] = "<task_id>/" + `rel` (a package-relative path a stage
 * recorded), when `rel` is set and stays inside the package.
 */
static void
status_add_output(const cJSON *ctx, cJSON *outputs, const char *key,
    const char *rel)
{
	char dir[4096], path[8200];

	if (rel == NULL || rel[0] == '\0' || rel[0] == '/' ||
	    strstr(rel, "..") != NULL ||
	    ladderd_ctx_rel_path(ctx, LADDERD_PATH_PUBLISH, NULL, dir,
		sizeof(dir)) < 0 ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel) >=
		sizeof(path))
		return;
	cJSON_AddStringToObject(outputs, key, path);
}

/*
 * ev[key_started] and ev[key_elapsed] (seconds, to the millisecond) from
 * obj.started / obj.started_ms; null when obj has not started.
 */
static void
status_add_timing(cJSON *ev, const cJSON *obj, const char *key_started,
    const char *key_elapsed, uint64_t now_ms)
{
	const cJSON *s = obj ? cJSON_GetObjectItemCaseSensitive(obj,
	    "started") : NULL;
	const cJSON *ms = obj ? cJSON_GetObjectItemCaseSensitive(obj,
	    "started_ms") : NULL;

	if (!cJSON_IsString(s) || !cJSON_IsNumber(ms)) {
		cJSON_AddNullToObject(ev, key_started);
		cJSON_AddNullToObject(ev, key_elapsed);
		return;
	}
	cJSON_AddStringToObject(ev, key_started, s->valuestring);
	cJSON_AddNumberToObject(ev, key_elapsed,
	    now_ms > ms->valuedouble ?
		(double)(now_ms - (uint64_t)ms->valuedouble) / 1000.0 :
		0.0);
}

int
ladderd_status_path(const char *root, const char *task_id,
    enum ladderd_status_file file, char *buf, size_t size)
{
	static const char *const names[] = {
		[LADDERD_STATUS_DIR] = "",
		[LADDERD_STATUS_JSON] = "/status.json",
		[LADDERD_STATUS_EVENTS] = "/events.ndjson",
		[LADDERD_STATUS_LOCK] = "/.lock",
	};
	int n;

	if (root == NULL || !ladderd_ctx_valid_name(task_id) ||
	    (unsigned)file >= sizeof(names) / sizeof(names[0]))
		return -EINVAL;
	n = snprintf(buf, size, "%s/%s%s", root, task_id, names[file]);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* The file of the task of ctx (task.status_root, task.id). */
static int
status_file(const cJSON *ctx, enum ladderd_status_file file, char *buf,
    size_t size)
{
	return ladderd_status_path(ladderd_ctx_str(ctx, "task.status_root",
				       NULL),
	    ladderd_ctx_str(ctx, "task.id", NULL), file, buf, size);
}

static bool
status_carries_metadata(const char *state)
{
	return strcmp(state, "queued") == 0 || strcmp(state, "complete") == 0 ||
	    strcmp(state, "failed") == 0;
}

/* The event the context implies, before the caller's fields. */
static cJSON *
status_base_event(const cJSON *ctx, long seq)
{
	cJSON *ev = cJSON_CreateObject();
	const char *id = ladderd_ctx_str(ctx, "task.id", "");
	const cJSON *err = ladderd_ctx_get(ctx, "error");
	const cJSON *meta = ladderd_ctx_get(ctx, "task.metadata");
	const char *rung = ladderd_ctx_str(ctx, "rung.name", NULL);
	char now[32], path[PATH_MAX];
	cJSON *outputs;

	uint64_t now_ms = ladderd_clock_wall_ms();

	if (ev == NULL)
		return NULL;
	(void)status_stamp(now_ms, now, sizeof(now));
	cJSON_AddStringToObject(ev, "task_id", id);
	cJSON_AddStringToObject(ev, "main_task_id",
	    ladderd_ctx_str(ctx, "task.main_task_id", id));
	cJSON_AddNumberToObject(ev, "seq", (double)seq);
	cJSON_AddStringToObject(ev, "state",
	    ladderd_ctx_str(ctx, "task.state", "queued"));
	if (rung)
		cJSON_AddStringToObject(ev, "quality", rung);
	else
		cJSON_AddNullToObject(ev, "quality");
	cJSON_AddBoolToObject(ev, "complete", 0);
	cJSON_AddNullToObject(ev, "progress");
	cJSON_AddStringToObject(ev, "time", now);
	if (cJSON_IsObject(err))
		cJSON_AddItemToObject(ev, "error", cJSON_Duplicate(err, 1));
	else
		cJSON_AddNullToObject(ev, "error");
	status_add_timing(ev, ladderd_ctx_get(ctx, "task"), "started",
	    "elapsed", now_ms);
	if (rung)
		status_add_timing(ev, ladderd_ctx_get(ctx, "rung"),
		    "rung_started", "rung_elapsed", now_ms);
	/* Video frames the rung encoded, once known (metrics: fps). */
	if (rung && ladderd_ctx_num(ctx, "summary.frames", -1) > 0)
		cJSON_AddNumberToObject(ev, "rung_frames",
		    ladderd_ctx_num(ctx, "summary.frames", 0));
	/* A failed task publishes nothing: no outputs to point at. */
	if (strcmp(ladderd_ctx_str(ctx, "task.state", ""), "failed") != 0) {
		outputs = cJSON_AddObjectToObject(ev, "outputs");
		/* Relative to the publish folder: "<task_id>/master.m3u8". */
		if (ladderd_ctx_rel_path(ctx, LADDERD_PATH_PUBLISHED_MASTER,
			NULL, path, sizeof(path)) == 0)
			cJSON_AddStringToObject(outputs, "hls", path);
		if (ladderd_ctx_bool(ctx, "profile.dash", 1) &&
		    ladderd_ctx_rel_path(ctx, LADDERD_PATH_PUBLISHED_MPD, NULL,
			path, sizeof(path)) == 0)
			cJSON_AddStringToObject(outputs, "dash", path);
		/* Poster and seek-bar track (stage thumbnails), package-relative
		 * there: "<task_id>/poster.jpg", "<task_id>/thumbs/...vtt". */
		status_add_output(ctx, outputs, "poster",
		    ladderd_ctx_str(ctx, "thumbnails.poster.uri", NULL));
		status_add_output(ctx, outputs, "thumbnails",
		    ladderd_ctx_str(ctx, "thumbnails.vtt", NULL));
	}
	/*
	 * The metadata only where a consumer looks for it: the first event
	 * (queued) and the terminal one; status.json always has it. In every
	 * event it multiplied a manifest's size by the number of events.
	 */
	if (meta && status_carries_metadata(ladderd_ctx_str(ctx, "task.state",
			"queued")))
		cJSON_AddItemToObject(ev, "metadata", cJSON_Duplicate(meta, 1));
	/* A rung's events say where the rung runs (rung.c). */
	if (rung && cJSON_IsObject(ladderd_ctx_get(ctx, "unit")))
		cJSON_AddItemToObject(ev, "unit",
		    cJSON_Duplicate(ladderd_ctx_get(ctx, "unit"), 1));
	return ev;
}

/* Keep status.json's "rungs" map up to date from an event. */
static void
status_update_rungs(cJSON *status, const cJSON *old, const cJSON *ev)
{
	const cJSON *oldr = old ? ladderd_ctx_get(old, "rungs") : NULL;
	cJSON *rungs = oldr ? cJSON_Duplicate(oldr, 1) : cJSON_CreateObject();
	const char *q = ladderd_ctx_str(ev, "quality", NULL);

	if (rungs == NULL)
		return;
	if (q) {
		cJSON *r = cJSON_CreateObject();
		const cJSON *p = ladderd_ctx_get(ev, "progress");
		const char *rs = ladderd_ctx_str(ev, "rung_state", NULL);

		const cJSON *was = cJSON_GetObjectItemCaseSensitive(rungs, q);
		const cJSON *t;

		cJSON_AddStringToObject(r, "state",
		    rs ? rs : ladderd_ctx_str(ev, "state", ""));
		cJSON_AddItemToObject(r, "progress",
		    p ? cJSON_Duplicate(p, 1) : cJSON_CreateNull());
		/* The rung's timing, or what an earlier event said. */
		t = cJSON_GetObjectItemCaseSensitive(ev, "rung_started");
		if (!cJSON_IsString(t) && was)
			t = cJSON_GetObjectItemCaseSensitive(was, "started");
		cJSON_AddItemToObject(r, "started",
		    cJSON_IsString(t) ? cJSON_Duplicate(t, 1) :
					cJSON_CreateNull());
		t = cJSON_GetObjectItemCaseSensitive(ev, "rung_elapsed");
		if (!cJSON_IsNumber(t) && was)
			t = cJSON_GetObjectItemCaseSensitive(was, "elapsed");
		cJSON_AddItemToObject(r, "elapsed",
		    cJSON_IsNumber(t) ? cJSON_Duplicate(t, 1) :
					cJSON_CreateNull());
		t = cJSON_GetObjectItemCaseSensitive(ev, "rung_frames");
		if (!cJSON_IsNumber(t) && was)
			t = cJSON_GetObjectItemCaseSensitive(was, "frames");
		if (cJSON_IsNumber(t))
			cJSON_AddItemToObject(r, "frames",
			    cJSON_Duplicate(t, 1));
		/* A chunked rung: chunks finished / chunks (chord.c). */
		for (int k = 0; k < 2; k++) {
			const char *key = k ? "chunks" : "chunks_done";

			t = cJSON_GetObjectItemCaseSensitive(ev, key);
			if (!cJSON_IsNumber(t) && was)
				t = cJSON_GetObjectItemCaseSensitive(was, key);
			if (cJSON_IsNumber(t))
				cJSON_AddItemToObject(r, key,
				    cJSON_Duplicate(t, 1));
		}
		if (cJSON_IsObject(ladderd_ctx_get(ev, "unit")))
			cJSON_AddItemToObject(r, "unit",
			    cJSON_Duplicate(ladderd_ctx_get(ev, "unit"), 1));
		if (ladderd_ctx_set(rungs, q, r) < 0)
			cJSON_Delete(r);
	}
	if (ladderd_ctx_set(status, "rungs", rungs) < 0)
		cJSON_Delete(rungs);
}

/*
 * A rung's progress never goes back within a task: transcode reports up
 * to 1, then chunk_hls from 0 again; a later stage's (or a retry's)
 * lower figure would read as lost work. Such an event says nothing new and
 * is not written. A retry says so explicitly (rung_state "retrying", which
 * resets the rung's progress to 0) and is always written.
 */
static int
status_goes_back(const cJSON *old, const cJSON *ev)
{
	const char *q = ladderd_ctx_str(ev, "quality", NULL);
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(ev, "progress");
	const cJSON *r, *was;

	if (q == NULL || old == NULL || !cJSON_IsNumber(p) ||
	    strcmp(ladderd_ctx_str(ev, "rung_state", ""), "retrying") == 0)
		return 0;
	r = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(old, "rungs"), q);
	was = cJSON_GetObjectItemCaseSensitive(r, "progress");
	return cJSON_IsNumber(was) && p->valuedouble < was->valuedouble;
}

/*
 * Queue the delivery of one event to one destination:
 * outbox/<task>[@manifest].<seq>.json with the exact body bytes, written
 * atomically before the event counts as emitted, so a crash never loses a
 * notification (a receiver may see an event twice, with the same
 * webhook-id, never miss one). `dest` is "operator", "manifest" or
 * "amqp" (outbox.h).
 */
static int
status_outbox_entry(const char *dir, const char *dest, const char *url,
    const char *id, long seq, const char *line)
{
	char path[PATH_MAX], wid[128];
	cJSON *entry = NULL;
	char *text = NULL, *body = NULL;
	size_t n = strlen(line);
	const char *suffix = strcmp(dest, "manifest") == 0 ? "@manifest" :
	    strcmp(dest, "amqp") == 0			 ? "@amqp" :
							   "";
	int rc = -ENOMEM;

	if (snprintf(path, sizeof(path), "%s/%s%s.%010ld.json", dir, id,
		suffix, seq) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	snprintf(wid, sizeof(wid), "%s-%ld", id, seq);
	/* The body without the newline of the ndjson line. */
	if ((body = strndup(line, n > 0 ? n - 1 : 0)) == NULL ||
	    (entry = cJSON_CreateObject()) == NULL)
		goto out;
	cJSON_AddStringToObject(entry, "url", url ? url : "");
	cJSON_AddStringToObject(entry, "dest", dest);
	cJSON_AddStringToObject(entry, "id", wid);
	cJSON_AddStringToObject(entry, "task_id", id);
	cJSON_AddNumberToObject(entry, "seq", (double)seq);
	cJSON_AddNumberToObject(entry, "created", (double)time(NULL));
	/* For the write-to-delivery delay (debug log, contrib/bench). */
	cJSON_AddNumberToObject(entry, "created_ms",
	    (double)ladderd_clock_wall_ms());
	cJSON_AddStringToObject(entry, "body", body);
	if ((text = cJSON_PrintUnformatted(entry)) == NULL)
		goto out;
	if ((rc = ladderd_fsutil_mkdir_p(dir, 0755)) < 0)
		goto out;
	rc = ladderd_fsutil_write_atomic(path, text, strlen(text));
out:
	free(body);
	cJSON_free(text);
	cJSON_Delete(entry);
	return rc;
}

/*
 * Queue the deliveries of one event: the operator's webhook and the AMQP
 * transport get every event; a manifest's own webhook (allowed and
 * checked at ingest) gets them too; each in its own queue, so none waits
 * for another.
 */
static int
status_outbox(const cJSON *ctx, const cJSON *ev, const char *line, long seq)
{
	const char *url = ladderd_ctx_str(ctx, "task.webhook", NULL);
	const char *murl = ladderd_ctx_str(ctx, "task.manifest_webhook", NULL);
	const char *dir = ladderd_ctx_str(ctx, "task.outbox_dir", NULL);
	const char *id = ladderd_ctx_str(ev, "task_id", "");
	int rc;

	if (dir == NULL)
		return 0;
	if (url != NULL && url[0] != '\0' &&
	    (rc = status_outbox_entry(dir, "operator", url, id, seq, line)) <
		0)
		return rc;
	if (ladderd_ctx_bool(ctx, "task.amqp", 0) &&
	    (rc = status_outbox_entry(dir, "amqp", NULL, id, seq, line)) < 0)
		return rc;
	if (murl != NULL && murl[0] != '\0' &&
	    (rc = status_outbox_entry(dir, "manifest", murl, id, seq, line)) <
		0)
		return rc;
	return 0;
}

/*
 * The last line of the journal events.ndjson, with its newline, or NULL
 * when there is none or it is longer than 64 KiB (caller frees). A last
 * line without its newline (a writer killed in the middle of it) is cut
 * off first, so the journal holds whole events only.
 */
static char *
status_journal_last(const char *path)
{
	char buf[65536 + 1], *nl = NULL, *line = NULL;
	struct stat st;
	off_t from;
	ssize_t n;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_size == 0)
		goto out;
	from = st.st_size > (off_t)sizeof(buf) - 1 ?
	    st.st_size - ((off_t)sizeof(buf) - 1) : 0;
	if ((n = pread(fd, buf, (size_t)(st.st_size - from), from)) <= 0)
		goto out;
	while (n > 0 && buf[n - 1] != '\n')
		n--;
	if (n == 0 && from > 0)
		goto out; /* a torn line longer than buf: leave it be */
	if (from + n != st.st_size && ftruncate(fd, from + n) < 0)
		goto out;
	if (n == 0)
		goto out;
	buf[n] = '\0';
	for (char *q = buf; q < buf + n - 1; q++)
		if (*q == '\n')
			nl = q;
	if (nl == NULL && from > 0)
		goto out; /* the last line is longer than buf */
	line = strdup(nl ? nl + 1 : buf);
out:
	close(fd);
	return line;
}

/*
 * The state of the task's last event in its journal (an engine resumed
 * after a crash asks so it never reports the end twice); "" when there is
 * none. Returns 0 or a negative errno.
 */
int
ladderd_status_last_state(const cJSON *ctx, char *buf, size_t size)
{
	char path[PATH_MAX];
	char *last = NULL;
	cJSON *ev = NULL;
	int lock = -1, rc;

	buf[0] = '\0';
	if ((rc = status_file(ctx, LADDERD_STATUS_LOCK, path,
		 sizeof(path))) < 0)
		return rc;
	if ((lock = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (flock(lock, LOCK_EX) < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = status_file(ctx, LADDERD_STATUS_EVENTS, path,
		 sizeof(path))) < 0) {
		goto out;
	}
	if ((last = status_journal_last(path)) != NULL &&
	    (ev = cJSON_Parse(last)) != NULL)
		snprintf(buf, size, "%s", ladderd_ctx_str(ev, "state", ""));
	rc = 0;
out:
	close(lock);
	cJSON_Delete(ev);
	free(last);
	return rc;
}

/*
 * The seq the next event takes: one past status.json's (`old`, may be
 * NULL). An emit that died after its append left a journal line with
 * that seq or later: queue that event's webhook again (it may or may not
 * have been), then go on after it. 0 or a negative errno.
 */
static int
status_next_seq(const cJSON *ctx, const cJSON *old, long *ret_seq)
{
	char path[PATH_MAX];
	char *last = NULL;
	cJSON *lastev = NULL;
	long seq = old != NULL ? (long)ladderd_ctx_num(old, "seq", 0) + 1 : 1;
	int rc;

	if ((rc = status_file(ctx, LADDERD_STATUS_EVENTS, path,
		 sizeof(path))) < 0)
		return rc;
	if ((last = status_journal_last(path)) != NULL &&
	    (lastev = cJSON_Parse(last)) != NULL &&
	    (long)ladderd_ctx_num(lastev, "seq", 0) >= seq) {
		seq = (long)ladderd_ctx_num(lastev, "seq", 0);
		if ((rc = status_outbox(ctx, lastev, last, seq)) < 0)
			goto out;
		seq++;
	}
	*ret_seq = seq;
	rc = 0;
out:
	cJSON_Delete(lastev);
	free(last);
	return rc;
}

/*
 * Append `ev` as one line to the task's event journal. *ret_line gets the
 * line written, newline included (caller frees with cJSON_free), also on
 * failure. 0 or a negative errno.
 */
static int
status_append(const cJSON *ctx, const cJSON *ev, char **ret_line)
{
	char path[PATH_MAX];
	char *line, *nl;
	size_t n;
	int rc;

	*ret_line = NULL;
	if ((line = cJSON_PrintUnformatted(ev)) == NULL)
		return -ENOMEM;
	n = strlen(line);
	nl = cJSON_malloc(n + 2);
	if (nl == NULL) {
		cJSON_free(line);
		return -ENOMEM;
	}
	memcpy(nl, line, n);
	nl[n] = '\n';
	nl[n + 1] = '\0';
	cJSON_free(line);
	*ret_line = nl;
	if ((rc = status_file(ctx, LADDERD_STATUS_EVENTS, path,
		 sizeof(path))) < 0)
		return rc;
	if ((rc = ladderd_fsutil_append(path, nl, n + 1)) < 0)
		return rc;
	LADDERD_CRASH_POINT("status.appended", NULL);
	return 0;
}

/*
 * Replace status.json with `ev` as the task's state (schema 1, the task's
 * metadata, the rungs carried over from `old`). 0 or a negative errno.
 */
static int
status_write_json(const cJSON *ctx, const cJSON *old, const cJSON *ev)
{
	char path[PATH_MAX];
	char *text = NULL;
	cJSON *st;
	int rc;

	if ((st = cJSON_Duplicate(ev, 1)) == NULL)
		return -ENOMEM;
	cJSON_AddNumberToObject(st, "schema", 1);
	if (ladderd_ctx_get(ctx, "task.metadata") != NULL &&
	    ladderd_ctx_get(st, "metadata") == NULL)
		cJSON_AddItemToObject(st, "metadata",
		    cJSON_Duplicate(ladderd_ctx_get(ctx, "task.metadata"), 1));
	status_update_rungs(st, old, ev);
	if ((text = cJSON_Print(st)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = status_file(ctx, LADDERD_STATUS_JSON, path,
		 sizeof(path))) < 0)
		goto out;
	rc = ladderd_fsutil_write_atomic(path, text, strlen(text));
out:
	cJSON_free(text);
	cJSON_Delete(st);
	return rc < 0 ? rc : 0;
}

/*
 * Emit one event: `fields` (borrowed, may be NULL) is merged over the
 * event built from ctx. On success *ret_event (if not NULL) receives the
 * event (caller frees; it stays NULL for a progress event that would go
 * back, which is not written). Returns 0 or a negative errno.
 */
int
ladderd_status_emit(const cJSON *ctx, const cJSON *fields, cJSON **ret_event)
{
	char dir[PATH_MAX], path[PATH_MAX];
	cJSON *old = NULL, *ev = NULL;
	char *line = NULL;
	int lock = -1, rc;
	long seq;

	if (ret_event)
		*ret_event = NULL;
	if ((rc = status_file(ctx, LADDERD_STATUS_DIR, dir, sizeof(dir))) < 0)
		return rc;
	if ((rc = ladderd_fsutil_mkdir_p(dir, 0755)) < 0)
		return rc;
	if ((rc = status_file(ctx, LADDERD_STATUS_LOCK, path,
		 sizeof(path))) < 0)
		return rc;
	if ((lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return -errno;
	if (flock(lock, LOCK_EX) < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = status_file(ctx, LADDERD_STATUS_JSON, path,
		 sizeof(path))) < 0) {
		goto out;
	}
	if (ladderd_ctx_load(path, &old) < 0)
		old = NULL;
	if ((rc = status_next_seq(ctx, old, &seq)) < 0)
		goto out;
	if ((ev = status_base_event(ctx, seq)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (fields && (rc = ladderd_ctx_merge(ev, fields)) < 0)
		goto out;
	/* seq is ours, whatever the fields said. */
	cJSON_ReplaceItemInObjectCaseSensitive(ev, "seq",
	    cJSON_CreateNumber((double)seq));
	if (status_goes_back(old, ev)) {
		rc = 0; /* nothing new to say: no event, seq not used */
		goto out;
	}
	if ((rc = status_append(ctx, ev, &line)) < 0)
		goto out;
	if ((rc = status_outbox(ctx, ev, line, seq)) < 0)
		goto out;
	LADDERD_CRASH_POINT("status.outbox", NULL);
	if ((rc = status_write_json(ctx, old, ev)) < 0)
		goto out;
	if (ret_event) {
		*ret_event = ev;
		ev = NULL;
	}
out:
	if (lock >= 0)
		close(lock); /* releases the flock */
	cJSON_free(line);
	cJSON_Delete(old);
	cJSON_Delete(ev);
	return rc;
}

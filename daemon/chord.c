/*
 * chord.c - plan the rendition phase's units and join them. A runner
 * (runner.h: here, or on a Slurm cluster) executes each unit; the chord
 * decides what runs, when, with how many CPUs, and what a result means.
 *
 * For each member of the ladder (ctx.ladder, else ctx.profile.ladder) the
 * chord writes rungs/<rung>/request.json (the context with the rung
 * merged in as ctx.rung, the rendition stages and their arguments, the
 * stage path, the thread budget) and has the runner start
 * `ladderd rung WORKDIR RUNG` (rung.c) as a child process of the job.
 * The worker writes rungs/<rung>/result.json: the
 * top-level keys its stages added or changed, plus "status". A rung
 * succeeded only if its worker exited 0 *and* result.json parses. A rung
 * that fails (exit code, signal, time limit) is started again up to
 * rung_retries times. A result.json left by an earlier run of the same
 * task is reused, so a restarted task does not encode finished rungs again.
 *
 * The parent waits on a signalfd for SIGCHLD and on the jobserver pipe
 * for free tokens, with a timeout to the nearest deadline: no busy wait.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chord.h"
#include "../stages/crashpoint.h"
#include "chunks.h"
#include "clock.h"
#include "ctx.h"
#include "exitcode.h"
#include "fsutil.h"
#include "host.h"
#include "log.h"
#include "plugin.h"
#include "runner.h"
#include "status.h"

#define KILL_GRACE_US (3u * 1000000u) /* SIGTERM to SIGKILL */
#define TICK_US 500000u
enum member_state {
	M_WAITING,
	M_RUNNING,
	M_DONE,
	M_FAILED,
};

struct member {
	const cJSON *rung; /* in ctx.ladder (borrowed) or own_rung */
	cJSON *own_rung;   /* the plan's group unit (ctx.group) */
	const char *name;
	const char *label; /* what users read: the name, or the unit's label */
	int group;	   /* starts with the shared decoder's group */
	int optional;	   /* its failure does not fail the task */
	int threads;	   /* CPU threads it may use */
	int nice;	   /* niceness added in its worker (group members) */
	enum member_state state;
	pid_t pid;
	int attempts;
	int has_token;
	uint64_t deadline_us;
	uint64_t killed_us; /* when SIGTERM was sent for the time limit */
	int timed_out;
	int resumed;	    /* an earlier run of the task started it */
	int transient;	   /* it last exited 75: a full disk, the network */
	const char *group_dir; /* runs inside the group's process (remote) */
	/* Units its worker runs as threads (rung.c's guests). */
	const char *guests[LADDERD_GROUP_MAX];
	int nguests;
	int hosted;	   /* it runs as a thread of another member's worker */
	/* Chunks (chunks.h): a chunk knows its rung, a rung its chunks. */
	int rung_of;	   /* a chunk: its rung's member index; the chunked
			      rungs' audio: -2; else -1 */
	int chunks;	   /* a chunked rung: its chunks ... */
	int chunks_done;   /* ... and how many have finished */
	cJSON *chunk_rung; /* a chunk: its ctx.rung (owned) */
	cJSON *joined;	   /* a chunked rung: its chunks' results (owned) */
	cJSON *audio;	   /* and the audio it carries (MPEG-TS; owned) */
	char unit[80];	   /* a chunk's unit name, <rung>.chunkNNN */
	cJSON *result;
	char message[1280];	/* for the log: "rung NAME: ..." */
	char err_stage[80];	/* for ctx.error: the stage that failed */
	char err_msg[1024];	/* and why, without the rung's name */
	char dir[PATH_MAX];	/* rungs/<name>: request, result, runner log */
};

static const cJSON *
chord_members(const cJSON *ctx)
{
	const cJSON *l = ladderd_ctx_get(ctx, "ladder");

	return cJSON_IsArray(l) ? l : ladderd_ctx_get(ctx, "profile.ladder");
}

/* Write request.json for member m (index i); 0 or negative errno. */
static int
chord_write_request(const struct ladderd_chord_opts *o,
    const struct ladderd_runner *runner, const cJSON *ctx, struct member *m,
    int index)
{
	const cJSON *only = ladderd_ctx_get(m->rung, "stages");
	char dir[PATH_MAX], path[PATH_MAX];
	cJSON *req = cJSON_CreateObject(), *c = NULL, *rung, *stages;
	const struct ladderd_workflow *wf = o->workflow;
	int rc = -ENOMEM;

	if (req == NULL)
		return -ENOMEM;
	if ((rc = ladderd_ctx_path(ctx, LADDERD_PATH_RUNG_STATE, m->name, dir,
		 sizeof(dir))) < 0 ||
	    (rc = ladderd_fsutil_mkdir_p(dir, 0755)) < 0)
		goto out;
	rc = -ENOMEM;
	if ((c = cJSON_Duplicate(ctx, 1)) == NULL)
		goto out;
	cJSON_DeleteItemFromObjectCaseSensitive(c, "renditions");
	if ((rung = cJSON_Duplicate(m->rung, 1)) == NULL)
		goto out;
	if (!cJSON_GetObjectItemCaseSensitive(rung, "kind"))
		cJSON_AddStringToObject(rung, "kind", "video");
	cJSON_DeleteItemFromObjectCaseSensitive(rung, "index");
	cJSON_AddNumberToObject(rung, "index", m->rung_of >= 0 ? m->rung_of :
	    index);
	/* A chunked rung joins its chunks' encodes (transcode's join). */
	if (m->joined)
		cJSON_AddItemToObject(rung, "chunks",
		    cJSON_Duplicate(m->joined, 1));
	if (m->audio)
		cJSON_AddItemToObject(rung, "chunk_audio",
		    cJSON_Duplicate(m->audio, 1));
	/* The unit it runs with (ctx.group); a retry runs alone. */
	cJSON_DeleteItemFromObjectCaseSensitive(rung, "group");
	if (m->group && !m->own_rung)
		cJSON_AddStringToObject(rung, "group",
		    ladderd_ctx_str(ctx, "group.unit", ""));
	/* This attempt's start: the rung's events carry its elapsed time. */
	cJSON_DeleteItemFromObjectCaseSensitive(rung, "started");
	cJSON_DeleteItemFromObjectCaseSensitive(rung, "started_ms");
	(void)ladderd_status_set_started(rung);
	if (ladderd_ctx_set(c, "rung", rung) < 0) {
		cJSON_Delete(rung);
		goto out;
	}
	stages = cJSON_AddArrayToObject(req, "stages");
	/* A member may name its own stages (the shared decoder does). */
	if (cJSON_IsArray(only)) {
		const cJSON *it;

		cJSON_ArrayForEach(it, only) {
			cJSON *e = cJSON_CreateObject();

			cJSON_AddStringToObject(e, "name",
			    cJSON_IsString(it) ? it->valuestring : "");
			cJSON_AddItemToObject(e, "args", cJSON_CreateObject());
			cJSON_AddItemToArray(stages, e);
		}
	}
	for (size_t i = 0; !cJSON_IsArray(only) &&
	     i < wf->n[LADDERD_PHASE_RENDITION]; i++) {
		const struct ladderd_stage_ref *s =
		    &wf->stages[LADDERD_PHASE_RENDITION][i];
		cJSON *e = cJSON_CreateObject();

		cJSON_AddStringToObject(e, "name", s->name);
		cJSON_AddItemToObject(e, "args", cJSON_Duplicate(s->args, 1));
		cJSON_AddItemToArray(stages, e);
	}
	/*
	 * A chunk is the encode of its time range: its worker runs the
	 * stages up to the one that encodes (stage.h, LADDERD_STATE_ENCODING)
	 * and returns that stage's context as "encode". The rung's own unit
	 * packages the joined encode.
	 */
	if (m->rung_of != -1)
		cJSON_AddTrueToObject(req, "encode_only");
	if (m->nguests > 0) {
		cJSON *g = cJSON_AddArrayToObject(req, "guests");

		for (int j = 0; j < m->nguests; j++)
			cJSON_AddItemToArray(g, cJSON_CreateString(m->guests[j]));
	}
	cJSON_AddStringToObject(req, "stage_path", o->conf->stage_path);
	cJSON_AddNumberToObject(req, "threads", m->threads);
	if (m->nice > 0)
		cJSON_AddNumberToObject(req, "nice", m->nice);
	cJSON_AddStringToObject(req, "runner", runner->ops->name);
	cJSON_AddItemToObject(req, "context", c);
	c = NULL;
	/* A stale failed result must not count, nor a stale stage name. */
	if (ladderd_ctx_path(ctx, LADDERD_PATH_RUNG_RESULT, m->name, path,
		sizeof(path)) == 0)
		(void)unlink(path);
	if (ladderd_ctx_path(ctx, LADDERD_PATH_RUNG_RUNNING, m->name, path,
		sizeof(path)) == 0)
		(void)unlink(path);
	ladderd_chord_mark_ended(ctx, m->name, 0);
	if ((rc = ladderd_ctx_path(ctx, LADDERD_PATH_RUNG_REQUEST, m->name,
		 path, sizeof(path))) < 0)
		goto out;
	/* A request of an earlier run: its unit may still be out there. */
	if (m->attempts == 0 && access(path, F_OK) == 0)
		m->resumed = 1;
	rc = ladderd_ctx_save(req, path);
out:
	cJSON_Delete(c);
	cJSON_Delete(req);
	return rc;
}

/* A result.json of an earlier run that can be reused, or NULL. */
static cJSON *
chord_load_result(const cJSON *ctx, const char *name)
{
	char path[PATH_MAX];
	cJSON *res = NULL;
	const char *st;

	if (ladderd_ctx_path(ctx, LADDERD_PATH_RUNG_RESULT, name, path,
		sizeof(path)) < 0 ||
	    ladderd_ctx_load(path, &res) < 0)
		return NULL;
	st = ladderd_ctx_str(res, "status", "");
	if (strcmp(st, "ok") != 0 && strcmp(st, "dropped") != 0) {
		cJSON_Delete(res);
		return NULL;
	}
	return res;
}

/*
 * A chunk's (or the chunked rungs' audio's) result from an earlier run:
 * an encoded one carries its "encode" (rung.c), else it is done again.
 */
static cJSON *
chord_load_chunk_result(const cJSON *ctx, const char *unit)
{
	cJSON *res = chord_load_result(ctx, unit);

	if (res && strcmp(ladderd_ctx_str(res, "status", ""), "ok") == 0 &&
	    !cJSON_IsObject(ladderd_ctx_get(res, "encode"))) {
		cJSON_Delete(res);
		return NULL;
	}
	return res;
}

/* The runner's view of member m. */
static void
chord_unit(const struct ladderd_chord_opts *o, const cJSON *ctx,
    const struct member *m, struct ladderd_unit *u)
{
	memset(u, 0, sizeof(*u));
	u->work_dir = ladderd_ctx_str(ctx, "task.work_dir", "");
	u->task_id = ladderd_ctx_str(ctx, "task.id", "task");
	u->name = m->name;
	u->state_dir = m->dir;
	u->threads = m->threads;
	u->time_limit = o->conf->rung_timeout;
	u->attempt = m->attempts;
	u->resumed = m->resumed;
	u->group_dir = m->group_dir;
}

/*
 * The stage a worker was running when it ended (rungs/<rung>/running,
 * written by the worker before each stage), into buf; "chord" when it
 * left no word (it died before its first stage).
 */
static void
chord_running_stage(const cJSON *ctx, const char *name, char *buf,
    size_t size)
{
	char path[PATH_MAX];
	FILE *f = NULL;

	snprintf(buf, size, "chord");
	if (ladderd_ctx_path(ctx, LADDERD_PATH_RUNG_RUNNING, name, path,
		sizeof(path)) < 0 ||
	    (f = fopen(path, "r")) == NULL)
		return;
	if (fgets(buf, (int)size, f) == NULL ||
	    !ladderd_ctx_valid_name(buf))
		snprintf(buf, size, "chord");
	fclose(f);
}

/*
 * Describe how a worker ended, and load its result when it exited 0. The
 * failure goes to m->message (for the log) and m->err_stage/err_msg (for
 * ctx.error, with the rung in its own field).
 */
static int
chord_collect(const struct ladderd_chord_opts *o,
    struct ladderd_runner *runner, const cJSON *ctx, struct member *m,
    int status)
{
	char path[PATH_MAX], why[512] = "";
	struct ladderd_unit u;
	cJSON *res = NULL;

	m->transient = !m->timed_out && WIFEXITED(status) &&
	    WEXITSTATUS(status) == LADDERD_EXIT_TEMPFAIL;
	if (ladderd_ctx_path(ctx, LADDERD_PATH_RUNG_RESULT, m->name, path,
		sizeof(path)) == 0)
		(void)ladderd_ctx_load(path, &res);
	if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0 && res)) {
		chord_unit(o, ctx, m, &u);
		runner->ops->ended(runner, &u, status, why, sizeof(why));
	}
	chord_running_stage(ctx, m->name, m->err_stage, sizeof(m->err_stage));
	if (m->timed_out) {
		snprintf(m->err_msg, sizeof(m->err_msg),
		    "stopped at the time limit of %d s",
		    o->conf->rung_timeout);
	} else if (why[0]) {
		/* The runner knows better than the exit status (scancel). */
		snprintf(m->err_msg, sizeof(m->err_msg), "%s", why);
	} else if (WIFSIGNALED(status)) {
		snprintf(m->err_msg, sizeof(m->err_msg),
		    "worker killed by signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && res) {
		cJSON_Delete(m->result);
		m->result = res;
		return 0;
	} else if (res && ladderd_ctx_str(res, "error.message", NULL)) {
		/* The stage said why: "rung b: transcode: cannot open ...". */
		snprintf(m->err_stage, sizeof(m->err_stage), "%s",
		    ladderd_ctx_str(res, "error.stage", "chord"));
		snprintf(m->err_msg, sizeof(m->err_msg), "%s",
		    ladderd_ctx_str(res, "error.message", ""));
		snprintf(m->message, sizeof(m->message), "rung %s: %s: %s",
		    m->label, m->err_stage, m->err_msg);
		cJSON_Delete(res);
		return -1;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		snprintf(m->err_msg, sizeof(m->err_msg),
		    "worker exited 0 without a readable result.json");
	} else {
		snprintf(m->err_msg, sizeof(m->err_msg),
		    "worker exited with status %d",
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	/* The worker died: "rung b: worker killed by ... (in stage x)". */
	snprintf(m->message, sizeof(m->message), "rung %s: %s%s%s%s",
	    m->label,
	    m->err_msg, strcmp(m->err_stage, "chord") ? " (in stage " : "",
	    strcmp(m->err_stage, "chord") ? m->err_stage : "",
	    strcmp(m->err_stage, "chord") ? ")" : "");
	cJSON_Delete(res);
	return -1;
}

/* ctx.renditions = results in ladder order. */
static int
chord_merge(cJSON *ctx, struct member *ms, int n, const char *runner_name)
{
	cJSON *arr = cJSON_CreateArray();

	if (arr == NULL)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		cJSON *r;

		/* The shared decoder and chunks are not renditions. */
		if (ms[i].own_rung || ms[i].rung_of != -1)
			continue;
		r = ms[i].result ? cJSON_Duplicate(ms[i].result, 1) :
				   cJSON_CreateObject();

		if (r == NULL) {
			cJSON_Delete(arr);
			return -ENOMEM;
		}
		if (!cJSON_GetObjectItemCaseSensitive(r, "rung"))
			cJSON_AddItemToObject(r, "rung",
			    cJSON_Duplicate(ms[i].rung, 1));
		if (!cJSON_GetObjectItemCaseSensitive(r, "unit")) {
			cJSON *u = cJSON_AddObjectToObject(r, "unit");

			if (u)
				cJSON_AddStringToObject(u, "runner", runner_name);
		}
		if (ms[i].state == M_FAILED) {
			cJSON *e = cJSON_CreateObject();

			ladderd_ctx_set(r, "status", cJSON_CreateString("failed"));
			cJSON_AddStringToObject(e, "stage", ms[i].err_stage);
			cJSON_AddStringToObject(e, "rung", ms[i].name);
			cJSON_AddStringToObject(e, "message", ms[i].err_msg);
			if (ladderd_ctx_set(r, "error", e) < 0)
				cJSON_Delete(e);
		}
		cJSON_AddItemToArray(arr, r);
	}
	if (ladderd_ctx_set(ctx, "renditions", arr) < 0) {
		cJSON_Delete(arr);
		return -ENOMEM;
	}
	return 0;
}

/* Cancel every running unit (hard: no grace, and nothing left behind). */
static void
chord_cancel_all(const struct ladderd_chord_opts *o,
    struct ladderd_runner *runner, const cJSON *ctx, struct member *ms,
    int n, int hard)
{
	struct ladderd_unit u;

	for (int i = 0; i < n; i++) {
		if (ms[i].state != M_RUNNING || ms[i].pid <= 0)
			continue;
		chord_unit(o, ctx, &ms[i], &u);
		runner->ops->cancel(runner, &u, ms[i].pid, hard);
	}
}

/*
 * What a user reads for a unit: a rung's own name, and for the internal
 * units (the plan's group unit, ctx.group, and a Slurm step's "_group")
 * what they are. Internal names are file and request names, never words
 * for users.
 */
const char *
ladderd_chord_unit_label(const cJSON *ctx, const char *name)
{
	if (strcmp(name, ladderd_ctx_str(ctx, "group.unit", "")) == 0)
		return ladderd_ctx_str(ctx, "group.label", name);
	if (strcmp(name, "_group") == 0)
		return "rung group";
	if (strcmp(name, "_audio") == 0)
		return "chunked rungs' audio";
	return name;
}

/*
 * Say whether unit `name` has ended (LADDERD_PATH_RUNG_ENDED, stage.h):
 * units of a group stop waiting for a peer that ended.
 * Best effort: a unit that is not marked is waited for up to its peers'
 * own limits.
 */
static void
chord_mark_path(const char *path, int ended)
{
	int fd;

	if (!ended) {
		(void)unlink(path);
		return;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) >= 0)
		close(fd);
}

void
ladderd_chord_mark_ended(const cJSON *ctx, const char *name, int ended)
{
	char path[PATH_MAX];

	if (ladderd_ctx_path(ctx, LADDERD_PATH_RUNG_ENDED, name, path,
		sizeof(path)) == 0)
		chord_mark_path(path, ended);
}

void
ladderd_chord_mark_ended_work(const char *work_dir, const char *name)
{
	char path[PATH_MAX];

	if (ladderd_ctx_work_path(work_dir, LADDERD_PATH_RUNG_ENDED, name,
		path, sizeof(path)) == 0)
		chord_mark_path(path, 1);
}

/* Whether the rendition workflow runs stage `name`. */
static int
chord_runs_stage(const struct ladderd_workflow *wf, const char *name)
{
	for (size_t i = 0; i < wf->n[LADDERD_PHASE_RENDITION]; i++)
		if (strcmp(wf->stages[LADDERD_PHASE_RENDITION][i].name,
			name) == 0)
			return 1;
	return 0;
}

/* Whether ctx.group lists `name` among its members. */
static int
chord_group_has(const cJSON *group, const char *name)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, ladderd_ctx_get(group, "members"))
		if (cJSON_IsString(it) && strcmp(it->valuestring, name) == 0)
			return 1;
	return 0;
}

/*
 * Plan the group a pre stage asked for (ctx.group, stage.h): when the
 * rendition workflow runs its required stage and two or more of its video
 * members still have to run, add its unit as one more member (its own
 * stages), grouped with those members so they all start together. Members
 * that will not run now are marked ended, so the unit does not wait for
 * them. `one_unit`: the runner starts the group as one unit (a node's
 * memory). Returns 1 when planned, 0 when every member runs alone.
 *
 * The group's members move in step, so they run at once: the group takes
 * the tokens that are free (at least one, at most one per video member)
 * and its members share those tokens' CPUs. With a group, max_rungs
 * therefore bounds the CPUs the rungs use, not the number of processes.
 */
static int
chord_plan_group(const struct ladderd_workflow *wf, cJSON *ctx,
    struct member **pms, int *pn, int one_unit)
{
	const cJSON *group = ladderd_ctx_get(ctx, "group");
	const char *unit = ladderd_ctx_str(group, "unit", "");
	const char *needs = ladderd_ctx_str(group, "requires_stage", NULL);
	const cJSON *stages = ladderd_ctx_get(group, "stages");
	struct member *ms = *pms, *nm, *d;
	cJSON *own;
	int n = *pn, nv = 0, nm_count = 0;

	if (!cJSON_IsObject(group) || !ladderd_ctx_valid_name(unit) ||
	    !cJSON_IsArray(stages) || cJSON_GetArraySize(stages) == 0 ||
	    (needs != NULL && !chord_runs_stage(wf, needs)))
		return 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(ms[i].name, unit) == 0)
			return 0; /* a rung of that name: the plan is wrong */
		if (!chord_group_has(group, ms[i].name))
			continue;
		nm_count++;
		nv += ms[i].state == M_WAITING &&
		    strcmp(ladderd_ctx_str(ms[i].rung, "kind", "video"),
			"video") == 0;
	}
	if (nv < 2 || nm_count + 1 > LADDERD_GROUP_MAX)
		return 0;
	own = cJSON_CreateObject();
	nm = realloc(ms, (size_t)(n + 1) * sizeof(*ms));
	if (nm)
		*pms = ms = nm;
	if (own == NULL || nm == NULL ||
	    !cJSON_AddStringToObject(own, "name", unit) ||
	    !cJSON_AddStringToObject(own, "kind", "internal") ||
	    !cJSON_AddItemToObject(own, "stages",
		cJSON_Duplicate(stages, 1))) {
		cJSON_Delete(own);
		return 0;
	}
	d = &ms[n];
	memset(d, 0, sizeof(*d));
	d->own_rung = own;
	d->rung = own;
	d->name = ladderd_ctx_str(own, "name", "");
	d->label = ladderd_ctx_str(group, "label", d->name);
	d->pid = -1;
	d->rung_of = -1;
	if (ladderd_ctx_path(ctx, LADDERD_PATH_RUNG_STATE, d->name, d->dir,
		sizeof(d->dir)) < 0)
		d->dir[0] = '\0'; /* no result: it only counts as optional */
	d->group = 1;
	d->optional = 1;
	ladderd_chord_mark_ended(ctx, d->name, 0);
	for (int i = 0; i < n; i++) {
		if (!chord_group_has(group, ms[i].name))
			continue;
		ms[i].group = ms[i].state == M_WAITING;
		ladderd_chord_mark_ended(ctx, ms[i].name, !ms[i].group);
	}
	*pn = n + 1;
	log_info("%s for %d rungs%s", d->label, nv,
	    one_unit ? ", the group runs as one unit" : "");
	return 1;
}

/*
 * Cut the video rungs into chunks (chunks.h) when the profile asks and the
 * source is long enough: each video rung i of ms[0..*pn) gets its chunks
 * appended as members (rung_of = i), and waits for them before its own
 * unit runs. A chunk whose result.json an earlier run left is done
 * already: resume never encodes it again. Returns the number of chunks
 * per rung (0: not chunked), or -1 (out of memory).
 */
static int
chord_plan_chunks(const cJSON *ctx, struct member **pms, int *pn,
    int *finished)
{
	struct member *ms = *pms, *nm;
	int n = *pn, len, count = ladderd_chunks_plan(ctx, &len), nv = 0, k;
	/* MPEG-TS rungs carry the audio: encoded once, for all of them. */
	int audio = ladderd_ctx_bool(ctx, "probe.has_audio", 0) &&
	    strcmp(ladderd_ctx_str(ctx, "profile.segment_type", "fmp4"),
		"mpegts") == 0;

	if (count == 0)
		return 0;
	for (int i = 0; i < n; i++)
		nv += strcmp(ladderd_ctx_str(ms[i].rung, "kind", "video"),
		    "video") == 0 && ms[i].state == M_WAITING;
	if (nv == 0)
		return 0;
	if ((nm = realloc(ms, (size_t)(n + nv * count + audio) *
		 sizeof(*ms))) == NULL)
		return -1;
	*pms = ms = nm;
	k = n;
	/* The audio first: every rung's join waits for it. */
	if (audio) {
		struct member *m = &ms[k++];

		memset(m, 0, sizeof(*m));
		m->rung_of = -2;
		m->pid = -1;
		snprintf(m->unit, sizeof(m->unit), "_audio");
		if ((m->chunk_rung = cJSON_CreateObject()) == NULL ||
		    !cJSON_AddStringToObject(m->chunk_rung, "name", "_audio") ||
		    !cJSON_AddStringToObject(m->chunk_rung, "kind", "audio") ||
		    ladderd_ctx_path(ctx, LADDERD_PATH_RUNG_STATE, m->unit,
			m->dir, sizeof(m->dir)) < 0) {
			*pn = k;
			return -1;
		}
		m->rung = m->chunk_rung;
		if ((m->result = chord_load_chunk_result(ctx, m->unit))) {
			log_info("the chunked rungs' audio: finished in an "
				 "earlier run, reusing it");
			m->state = M_DONE;
			(*finished)++;
		}
	}
	for (int i = 0; i < n; i++) {
		if (strcmp(ladderd_ctx_str(ms[i].rung, "kind", "video"),
			"video") != 0 || ms[i].state != M_WAITING)
			continue;
		ms[i].chunks = count;
		for (int c = 0; c < count; c++) {
			struct member *m = &ms[k++];
			cJSON *range = ladderd_chunks_range(ctx, c, count,
			    len);

			memset(m, 0, sizeof(*m));
			m->rung_of = i;
			m->pid = -1;
			m->chunk_rung = cJSON_Duplicate(ms[i].rung, 1);
			if (range == NULL || m->chunk_rung == NULL ||
			    !cJSON_AddItemToObject(m->chunk_rung, "chunk",
				range)) {
				cJSON_Delete(range);
				*pn = k;
				return -1;
			}
			m->rung = m->chunk_rung;
			if (ladderd_chunks_unit_name(ms[i].name, c, m->unit,
				sizeof(m->unit)) < 0 ||
			    ladderd_ctx_path(ctx, LADDERD_PATH_RUNG_STATE,
				m->unit, m->dir, sizeof(m->dir)) < 0) {
				*pn = k;
				return -1;
			}
			/*
			 * Its events are the chunk's own (status.json rungs:
			 * progress, where it ran); the rung's say chunks done.
			 */
			if (ladderd_ctx_set(m->chunk_rung, "name",
				cJSON_CreateString(m->unit)) < 0 ||
			    !cJSON_AddStringToObject(m->chunk_rung, "chunk_of",
				ms[i].name)) {
				*pn = k;
				return -1;
			}
			if ((m->result = chord_load_chunk_result(ctx, m->unit)) &&
			    !cJSON_Compare(ladderd_ctx_get(m->result,
					       "rung.chunk"),
				range, 1)) {
				/* Another cut of the rung (a changed profile):
				 * its time range is not this chunk's. */
				cJSON_Delete(m->result);
				m->result = NULL;
			}
			if (m->result) {
				log_info("rendition=%s: finished in an earlier "
					 "run, reusing it", m->unit);
				m->state = M_DONE;
				(*finished)++;
			}
		}
	}
	/* Names last: the array moved while it grew. */
	for (int i = n; i < k; i++) {
		ms[i].name = ms[i].unit;
		ms[i].label = ladderd_chord_unit_label(ctx, ms[i].unit);
	}
	*pn = k;
	log_info("chunks: %d video rungs in %d chunks of %d s each", nv,
	    count, len);
	return count;
}

/* Whether member i waits for chunks that have not finished yet. */
static int
chord_blocked(const struct member *m)
{
	return m->chunks > 0 && (m->chunks_done < m->chunks ||
	    m->joined == NULL);
}

/*
 * Count each chunked rung's finished chunks; when all are done, gather
 * their encodes (ctx.rung.chunks of the rung's unit, in chunk order); when
 * one has failed for good, the rung fails with its reason. Says so in a
 * rung event (chunks_done / chunks) when the count moved.
 */
static void
chord_settle_chunks(const cJSON *ctx, struct member *ms, int n,
    int *finished)
{
	for (int i = 0; i < n; i++) {
		struct member *r = &ms[i];
		int done = 0, audio_wait = 0;
		const struct member *bad = NULL, *audio = NULL;

		if (r->chunks == 0 || r->state != M_WAITING)
			continue;
		for (int j = 0; j < n; j++) {
			/* The audio the rung carries (MPEG-TS) is awaited
			 * like a chunk, without counting as one. */
			if (ms[j].rung_of == -2) {
				if (ms[j].state == M_FAILED && bad == NULL)
					bad = &ms[j];
				if (ms[j].state != M_DONE)
					audio_wait = 1;
				else
					audio = &ms[j];
				continue;
			}
			if (ms[j].rung_of != i)
				continue;
			done += ms[j].state == M_DONE;
			if (ms[j].state == M_FAILED && bad == NULL)
				bad = &ms[j];
		}
		if (bad) {
			snprintf(r->err_stage, sizeof(r->err_stage), "%s",
			    bad->err_stage);
			/* The message names the chunk (its unit). */
			snprintf(r->err_msg, sizeof(r->err_msg), "%s",
			    bad->err_msg);
			snprintf(r->message, sizeof(r->message), "%s",
			    bad->message);
			r->transient = bad->transient;
			r->state = M_FAILED;
			(*finished)++;
			continue;
		}
		if (done != r->chunks_done) {
			cJSON *f = cJSON_CreateObject();

			r->chunks_done = done;
			if (f) {
				cJSON_AddStringToObject(f, "quality", r->name);
				cJSON_AddStringToObject(f, "rung_state",
				    "transcoding");
				cJSON_AddNumberToObject(f, "progress",
				    0.9 * done / r->chunks);
				cJSON_AddNumberToObject(f, "chunks_done", done);
				cJSON_AddNumberToObject(f, "chunks",
				    r->chunks);
				if (ladderd_status_emit(ctx, f, NULL) < 0)
					log_debug("rendition=%s: cannot write "
						  "the chunk event, ignoring",
					    r->name);
				cJSON_Delete(f);
			}
		}
		if (done < r->chunks || audio_wait || r->joined)
			continue;
		/* Chunks of a rung above the source: the rung is dropped. */
		for (int j = 0; j < n && r->result == NULL; j++) {
			cJSON *res;

			if (ms[j].rung_of != i ||
			    strcmp(ladderd_ctx_str(ms[j].result, "status", ""),
				"dropped") != 0 ||
			    (res = cJSON_Duplicate(ms[j].result, 1)) == NULL)
				continue;
			if (ladderd_ctx_set(res, "rung",
				cJSON_Duplicate(r->rung, 1)) < 0) {
				cJSON_Delete(res);
				continue;
			}
			r->result = res;
			r->state = M_DONE;
			(*finished)++;
			log_info("rendition=%s: dropped", r->name);
		}
		if (r->state == M_DONE)
			continue;
		if (audio && r->audio == NULL &&
		    (r->audio = cJSON_Duplicate(ladderd_ctx_get(audio->result,
			 "encode"), 1)) == NULL)
			continue; /* tried again at the next pass */
		if ((r->joined = cJSON_CreateArray()) == NULL)
			continue;
		for (int j = 0; j < n; j++) {
			const cJSON *t = ladderd_ctx_get(ms[j].result,
			    "encode");

			if (ms[j].rung_of == i)
				cJSON_AddItemToArray(r->joined, t ?
				    cJSON_Duplicate(t, 1) :
				    cJSON_CreateObject());
		}
	}
}

/*
 * A rung is started again: say so in its events (rung_state "retrying",
 * progress back to 0), so a reader sees why its progress restarts.
 */
static void
chord_emit_retry(const cJSON *ctx, const struct member *m, int attempts)
{
	cJSON *f = cJSON_CreateObject();

	if (f == NULL)
		return;
	cJSON_AddStringToObject(f, "quality", m->name);
	cJSON_AddStringToObject(f, "rung_state", "retrying");
	cJSON_AddNumberToObject(f, "progress", 0);
	cJSON_AddNumberToObject(f, "attempt", m->attempts + 1);
	cJSON_AddNumberToObject(f, "attempts", attempts);
	cJSON_AddStringToObject(f, "reason", m->message);
	if (ladderd_status_emit(ctx, f, NULL) < 0)
		log_debug("rendition=%s: cannot write the retry event, "
			  "ignoring", m->label);
	cJSON_Delete(f);
}

/* Write member i's request for its next attempt; 0 or -1 (failed). */
static int
chord_prepare(const struct ladderd_chord_opts *o,
    const struct ladderd_runner *runner, cJSON *ctx, struct member *m, int i)
{
	snprintf(m->err_stage, sizeof(m->err_stage), "chord");
	if (chord_write_request(o, runner, ctx, m, i) < 0) {
		snprintf(m->err_msg, sizeof(m->err_msg),
		    "cannot write its request");
		snprintf(m->message, sizeof(m->message), "rung %s: %s",
		    m->label, m->err_msg);
		return -1;
	}
	m->attempts++;
	m->timed_out = 0;
	m->killed_us = 0;
	return 0;
}

/* m's worker is pid (or could not start: pid < 0); 0 or -1 (failed). */
static int
chord_launched(const struct ladderd_chord_opts *o,
    const struct ladderd_runner *runner, struct member *m, pid_t pid)
{
	if ((m->pid = pid) < 0) {
		snprintf(m->err_msg, sizeof(m->err_msg),
		    "cannot start it (%s runner): %s", runner->ops->name,
		    strerror(errno));
		snprintf(m->message, sizeof(m->message), "rung %s: %s",
		    m->label, m->err_msg);
		m->pid = -1;
		return -1;
	}
	m->state = M_RUNNING;
	m->deadline_us = ladderd_clock_mono_us() +
	    (uint64_t)o->conf->rung_timeout * 1000000u;
	log_debug("rendition=%s: started worker pid %ld (%s runner, attempt "
		  "%d)", m->label, (long)m->pid, runner->ops->name, m->attempts);
	return 0;
}

/* Write member i's request and start its worker; 0 or -1 (failed). */
static int
chord_start(const struct ladderd_chord_opts *o, struct ladderd_runner *runner,
    cJSON *ctx, struct member *m, int i, const sigset_t *oldmask)
{
	struct ladderd_unit u;
	pid_t pid;

	m->group_dir = NULL;
	if (chord_prepare(o, runner, ctx, m, i) < 0)
		return -1;
	chord_unit(o, ctx, m, &u);
	pid = runner->ops->start(runner, &u, oldmask);
	return chord_launched(o, runner, m, pid);
}

/*
 * Start the members in gi[0..k) as one group process on the runner (the
 * shared decode's group where it cannot use this host's memory), with
 * `cpu` CPUs. Returns how many started (k or 0); failed members are
 * marked and counted in *finished.
 */
static int
chord_start_group(const struct ladderd_chord_opts *o,
    struct ladderd_runner *runner, const cJSON *ctx, struct member *ms,
    const int *gi, int k, int cpu, const char *group_dir,
    const sigset_t *oldmask, int *finished)
{
	struct ladderd_unit units[LADDERD_GROUP_MAX];
	pid_t pid;

	for (int j = 0; j < k; j++) {
		ms[gi[j]].group_dir = group_dir;
		chord_unit(o, ctx, &ms[gi[j]], &units[j]);
	}
	units[0].threads = cpu;
	pid = runner->ops->start_group(runner, units, k, oldmask);
	for (int j = 0; j < k; j++) {
		if (chord_launched(o, runner, &ms[gi[j]], pid) == 0)
			continue;
		ms[gi[j]].state = M_FAILED;
		(*finished)++;
	}
	return pid < 0 ? 0 : k;
}

/* Whether m's result.json says it finished (ok or dropped). */
static int
chord_result_ok(const cJSON *ctx, const struct member *m)
{
	char path[PATH_MAX];
	cJSON *res = NULL;
	const char *st;
	int ok;

	if (ladderd_ctx_path(ctx, LADDERD_PATH_RUNG_RESULT, m->name, path,
		sizeof(path)) < 0 ||
	    ladderd_ctx_load(path, &res) < 0)
		return 0;
	st = ladderd_ctx_str(res, "status", "");
	ok = strcmp(st, "ok") == 0 || strcmp(st, "dropped") == 0;
	cJSON_Delete(res);
	return ok;
}

/*
 * Member m's process ended with `status` (waitpid's; for a unit of a group
 * process, the group's). Give back its token, mark it ended, collect the
 * result, and decide: done, failed, or another attempt. Returns 1 when m
 * is finished (done or failed), 0 when it will run again.
 */
static int
chord_reaped(const struct ladderd_chord_opts *o,
    struct ladderd_runner *runner, cJSON *ctx, struct member *m, int status,
    int retries)
{
	m->pid = -1;
	if (m->has_token) {
		ladderd_tokens_give(runner->tokens);
		m->has_token = 0;
	}
	/* Nobody may wait on a process that is gone. */
	ladderd_chord_mark_ended(ctx, m->name, 1);
	/*
	 * A unit that shared its process (a group's on a node, or a guest of
	 * another member's worker) left its own result, which says how it
	 * did: the process's status is the others' too.
	 */
	if (m->group_dir || m->hosted) {
		if (chord_result_ok(ctx, m))
			status = 0;
		else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			status = 1 << 8; /* exited 1 */
		m->hosted = 0;
	}
	if (chord_collect(o, runner, ctx, m, status) == 0) {
		m->state = M_DONE;
		log_info("%s%s: %s (%.1f s, cpu %.1f s)",
		    m->own_rung ? "" : "rendition=", m->label,
		    ladderd_ctx_str(m->result, "status", "ok"),
		    ladderd_ctx_num(m->result, "timing.elapsed", 0),
		    ladderd_ctx_num(m->result, "timing.cpu", 0));
		return 1;
	}
	if (m->optional) {
		log_info("%s; the rungs decode on their own", m->message);
		m->state = M_FAILED;
		return 1;
	}
	if (m->attempts <= retries && !ladderd_host_cancel) {
		log_warnx("%s; retrying (attempt %d of %d)", m->message,
		    m->attempts + 1, retries + 1);
		m->state = M_WAITING;
		chord_emit_retry(ctx, m, retries + 1);
		return 0;
	}
	log_warnx("%s", m->message);
	m->state = M_FAILED;
	return 1;
}

/*
 * One run of the rendition phase: the members and what the loop keeps
 * between its turns. ladderd_chord_run's steps share it.
 */
struct chord_run {
	const struct ladderd_chord_opts *o;
	cJSON *ctx;
	struct ladderd_runner *runner;
	struct ladderd_tokens *tokens;
	struct member *ms;
	int n, running, finished;
	int retries, threads;
	int sfd;
	sigset_t oldmask;
	uint64_t next_tick;
	char group_dir[PATH_MAX];
	int group_waiting, group_tokens, group_video;
};

/*
 * x264 threads: the runner's CPUs per unit, else rung_threads, else this
 * host's CPUs shared among the rungs that run at once.
 */
static int
chord_threads(const struct chord_run *r)
{
	int cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	int concurrent = r->n < r->o->conf->max_rungs ? r->n :
	    r->o->conf->max_rungs;
	int threads = r->runner->cpus_per_unit > 0 ?
	    r->runner->cpus_per_unit :
	    r->o->conf->rung_threads > 0 ? r->o->conf->rung_threads :
	    cpus / (concurrent > 0 ? concurrent : 1);

	return threads < 1 ? 1 : threads;
}

/* One member per ladder entry; a rung that finished earlier is reused. */
static int
chord_init_members(struct chord_run *r, const cJSON *list)
{
	if ((r->ms = calloc((size_t)r->n, sizeof(*r->ms))) == NULL) {
		ladderd_ctx_set_error(r->ctx, "chord", NULL, "out of memory");
		return -1;
	}
	for (int i = 0; i < r->n; i++) {
		struct member *m = &r->ms[i];

		m->rung = cJSON_GetArrayItem(list, i);
		m->name = ladderd_ctx_str(m->rung, "name", "");
		m->label = m->name;
		m->pid = -1;
		m->rung_of = -1;
		if (!ladderd_ctx_valid_name(m->name) ||
		    ladderd_ctx_path(r->ctx, LADDERD_PATH_RUNG_STATE, m->name,
			m->dir, sizeof(m->dir)) < 0) {
			ladderd_ctx_set_error(r->ctx, "chord", NULL,
			    "a ladder rung has an invalid name");
			return -1;
		}
		if ((m->result = chord_load_result(r->ctx, m->name))) {
			log_info("rendition=%s: finished in an earlier run, "
				 "reusing it", m->label);
			m->state = M_DONE;
			r->finished++;
		}
	}
	return 0;
}

/*
 * A unit that finished in an earlier run of the task is not started
 * again, so nothing else would clear what it may have left: a Slurm job
 * whose srun was killed with the daemon keeps its allocation (and the
 * node) although its step ended. The runner's cancel with no pid removes
 * it by name (the local runner has nothing to remove).
 */
static void
chord_forget_finished(struct chord_run *r)
{
	char path[PATH_MAX];

	for (int i = 0; i < r->n; i++) {
		struct member *m = &r->ms[i];
		struct ladderd_unit u;

		if (m->state != M_DONE ||
		    ladderd_ctx_path(r->ctx, LADDERD_PATH_RUNG_REQUEST, m->name,
			path, sizeof(path)) < 0 ||
		    access(path, F_OK) != 0)
			continue;
		chord_unit(r->o, r->ctx, m, &u);
		r->runner->ops->cancel(r->runner, &u, 0, 1);
	}
}

/*
 * Everything before the loop: the runner, the members (chunks or a
 * shared decoder's group), SIGCHLD as an fd. 0, or -1 with ctx.error set.
 */
static int
chord_setup(struct chord_run *r, const cJSON *list)
{
	char err[512];
	sigset_t mask;
	int chunked;

	if ((r->runner = ladderd_runner_new(r->o->conf, r->ctx, r->o->tokens,
		 err, sizeof(err))) == NULL) {
		ladderd_ctx_set_error(r->ctx, "chord", NULL, err);
		return -1;
	}
	r->tokens = r->runner->tokens;
	/* A group process's own folder (srun's log), when the runner has one. */
	if (r->runner->ops->start_group &&
	    (ladderd_ctx_path(r->ctx, LADDERD_PATH_RUNG_STATE, "_group",
		 r->group_dir, sizeof(r->group_dir)) < 0 ||
		ladderd_fsutil_mkdir_p(r->group_dir, 0750) < 0)) {
		ladderd_ctx_set_error(r->ctx, "chord", NULL,
		    "cannot create the group's folder");
		return -1;
	}
	if (chord_init_members(r, list) < 0)
		return -1;
	r->threads = chord_threads(r);
	/* Chunks share nothing: each decodes its own time range. */
	if ((chunked = chord_plan_chunks(r->ctx, &r->ms, &r->n,
		 &r->finished)) < 0) {
		ladderd_ctx_set_error(r->ctx, "chord", NULL, "out of memory");
		return -1;
	}
	chord_settle_chunks(r->ctx, r->ms, r->n, &r->finished);
	for (int i = 0; i < r->n; i++)
		r->ms[i].threads = r->threads;
	if (!r->runner->shared_host)
		chord_forget_finished(r);
	/*
	 * Shared memory of an earlier run of this task is stale (its job was
	 * killed with the daemon, so nobody removed it): it would leak in
	 * /dev/shm and keep this run from making its own.
	 */
	ladderd_ctx_unlink_shm(r->ctx);
	/*
	 * A group's members share one host's memory: this host's, or the
	 * node that runs the whole group as one unit.
	 */
	if (!chunked &&
	    (r->runner->shared_host || r->runner->ops->start_group) &&
	    chord_plan_group(r->o->workflow, r->ctx, &r->ms, &r->n,
		!r->runner->shared_host)) {
		r->group_waiting = 1;
		for (int i = 0; i < r->n; i++)
			r->group_video += r->ms[i].group &&
			    !r->ms[i].own_rung &&
			    strcmp(ladderd_ctx_str(r->ms[i].rung, "kind",
				       "video"), "video") == 0;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, &r->oldmask) < 0 ||
	    (r->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		ladderd_ctx_set_error(r->ctx, "chord", NULL,
		    "cannot set up SIGCHLD handling");
		return -1;
	}
	return 0;
}

/*
 * The rungs of a shared decoder's group move in step (one ring), so the
 * largest sets the pace. Each gets x264 threads for its share of the
 * group's CPUs (pixels: height squared, same aspect), rounded, at least
 * one: on two CPUs the top rung of the default ladder gets one thread,
 * which costs less CPU than frame threads (no extra frames to fill, no
 * hand-over). And each lighter rung yields to the heavier ones: its
 * worker's niceness grows with how many times less work it has (a
 * nice step is a 1.25x CPU weight), so the scheduler hands the CPU out in
 * proportion to the work and the top rung, holding the ring's oldest
 * slots, is not kept waiting behind rungs that are ahead anyway.
 * Measured on 2 CPUs (contrib/bench/RESULTS.md): 4 % less wall and CPU
 * than one thread more for the top rung and equal shares. The group's
 * own unit (the decoder, which everyone waits on) keeps its priority and
 * gets one thread on up to two CPUs (frame threads would hold more ring
 * slots and cost more: 1-2 % of the task there), two on more.
 */
static void
chord_group_threads(struct chord_run *r, int cpu)
{
	double pixels = 0, top = 0;

	for (int i = 0; i < r->n; i++)
		if (r->ms[i].group && !r->ms[i].own_rung) {
			double h = ladderd_ctx_num(r->ms[i].rung, "height", 0);

			pixels += h * h;
			top = fmax(top, h * h);
		}
	for (int i = 0; i < r->n; i++) {
		struct member *m = &r->ms[i];
		double h = ladderd_ctx_num(m->rung, "height", 0);

		if (!m->group || m->state != M_WAITING)
			continue;
		m->nice = 0;
		if (m->own_rung) {
			m->threads = cpu <= 2 ? 1 : 2;
			continue;
		}
		m->threads = pixels > 0 && h > 0 ?
		    (int)lround(cpu * h * h / pixels) : 1;
		if (m->threads < 1)
			m->threads = 1;
		if (h > 0 && top > h * h)
			m->nice = (int)fmin(19, lround(log(top / (h * h)) /
						       log(1.25)));
	}
}

/*
 * On this host the group's own unit (the shared decoder) and its audio
 * renditions run as threads of the worker of the group's largest video
 * rung (rung.c's guests), which reads every frame at full size: their
 * ~28 MB of libraries each and the decoder's ~20 MB view of the ring are
 * then mapped in no process of their own, and an audio rendition that
 * reads a long source for minutes no longer adds a process to the tree's
 * peak. The units keep their own requests, results, threads and log
 * lines; they share a fate (a rung that loses its decoder fails anyway,
 * and a unit that fails is retried alone). The guests' indexes go to
 * gs[0..*ng) and their host's is returned, or -1 (a remote group, or no
 * video rung and guest waiting: each runs alone).
 */
static int
chord_pick_host(const struct chord_run *r, int *gs, int *ng)
{
	double top = 0;
	int host = -1;

	*ng = 0;
	if (!r->runner->shared_host)
		return -1;
	for (int i = 0; i < r->n; i++) {
		const struct member *m = &r->ms[i];
		const char *kind = ladderd_ctx_str(m->rung, "kind", "video");
		double h = ladderd_ctx_num(m->rung, "height", 0);

		if (!m->group || m->state != M_WAITING)
			continue;
		if ((m->own_rung || strcmp(kind, "audio") == 0) &&
		    *ng < LADDERD_GROUP_MAX)
			gs[(*ng)++] = i;
		else if (strcmp(kind, "video") == 0 && h > top) {
			top = h;
			host = i;
		}
	}
	if (*ng == 0 || host < 0) {
		*ng = 0;
		host = -1;
	}
	return host;
}

/* A member of the group that could not start: it failed, nobody waits. */
static void
chord_not_started(struct chord_run *r, struct member *m)
{
	if (m->has_token)
		ladderd_tokens_give(r->tokens);
	m->has_token = 0;
	m->state = M_FAILED;
	r->finished++;
	ladderd_chord_mark_ended(r->ctx, m->name, 1);
}

/*
 * A guest, after its host's start: running with it, or on its own when
 * the host could not start.
 */
static void
chord_start_guest(struct chord_run *r, int guest, int host)
{
	struct member *g = &r->ms[guest], *h = &r->ms[host];

	if (h->state == M_RUNNING) {
		(void)chord_launched(r->o, r->runner, g, h->pid);
		r->running++;
		return;
	}
	g->hosted = 0;
	g->attempts--; /* its request was written, it never ran */
	if (chord_start(r->o, r->runner, r->ctx, g, guest, &r->oldmask) < 0)
		chord_not_started(r, g);
	else
		r->running++;
}

/*
 * The shared decoder's group starts at once (its rungs read one ring),
 * with the tokens free now: at least one, at most one per rung, taken
 * without waiting for more so two jobs can never hold each other's
 * tokens. The rungs share the tokens' CPUs.
 */
static void
chord_start_group_now(struct chord_run *r)
{
	int gi[LADDERD_GROUP_MAX], gs[LADDERD_GROUP_MAX], k = 0, ng, cpu, host;

	while (r->group_tokens < r->group_video &&
	    ladderd_tokens_take(r->tokens) > 0)
		r->group_tokens++;
	if (r->group_tokens == 0)
		return;
	cpu = r->group_tokens * r->threads;
	/* A group on a node: the CPUs each unit asks. */
	if (!r->runner->shared_host && r->runner->cpus_per_unit > 0)
		cpu = r->runner->cpus_per_unit;
	chord_group_threads(r, cpu);
	/* The guests' requests first: their host's worker reads them. */
	if ((host = chord_pick_host(r, gs, &ng)) >= 0)
		for (int j = 0; j < ng; j++) {
			struct member *g = &r->ms[gs[j]];

			/* One that cannot be prepared fails below, alone. */
			if (chord_prepare(r->o, r->runner, r->ctx, g, gs[j]) < 0)
				continue;
			g->hosted = 1;
			r->ms[host].guests[r->ms[host].nguests++] = g->name;
		}
	for (int i = 0; i < r->n; i++) {
		struct member *m = &r->ms[i];

		if (!m->group || m->state != M_WAITING || m->hosted)
			continue;
		if (!m->own_rung && r->group_tokens > 0) {
			m->has_token = 1;
			r->group_tokens--;
		}
		/* A remote group starts below, at once. */
		if (!r->runner->shared_host && k < LADDERD_GROUP_MAX &&
		    chord_prepare(r->o, r->runner, r->ctx, m, i) == 0) {
			gi[k++] = i;
			continue;
		}
		if (!r->runner->shared_host ||
		    chord_start(r->o, r->runner, r->ctx, m, i,
			&r->oldmask) < 0)
			chord_not_started(r, m);
		else
			r->running++;
	}
	for (int j = 0; host >= 0 && j < ng; j++)
		if (r->ms[gs[j]].hosted)
			chord_start_guest(r, gs[j], host);
	if (k > 0)
		r->running += chord_start_group(r->o, r->runner, r->ctx, r->ms,
		    gi, k, cpu, r->group_dir, &r->oldmask, &r->finished);
	r->group_waiting = 0;
}

/* Start what the jobserver allows. */
static void
chord_start_waiting(struct chord_run *r)
{
	for (int i = 0; i < r->n && !ladderd_host_cancel; i++) {
		struct member *m = &r->ms[i];

		if (m->state != M_WAITING || chord_blocked(m))
			continue;
		if (ladderd_tokens_take(r->tokens) <= 0)
			break;
		m->has_token = 1;
		m->group = 0; /* a retry runs alone, with its own decoder */
		m->nguests = 0;
		m->threads = r->threads;
		if (chord_start(r->o, r->runner, r->ctx, m, i,
			&r->oldmask) < 0) {
			m->state = M_FAILED;
			ladderd_tokens_give(r->tokens);
			m->has_token = 0;
			r->finished++;
			continue;
		}
		r->running++;
	}
}

/*
 * Time limits: SIGTERM, then SIGKILL after a grace. Lowers *wake to the
 * next deadline.
 */
static void
chord_enforce_limits(struct chord_run *r, uint64_t now, uint64_t *wake)
{
	for (int i = 0; i < r->n; i++) {
		struct member *m = &r->ms[i];
		struct ladderd_unit u;

		if (m->state != M_RUNNING)
			continue;
		if (!m->timed_out && now >= m->deadline_us) {
			log_warnx("rendition=%s: time limit of %d s reached, "
				  "stopping it",
			    m->label, r->o->conf->rung_timeout);
			m->timed_out = 1;
			m->killed_us = now;
			chord_unit(r->o, r->ctx, m, &u);
			r->runner->ops->cancel(r->runner, &u, m->pid, 0);
		} else if (m->timed_out &&
		    now >= m->killed_us + KILL_GRACE_US) {
			chord_unit(r->o, r->ctx, m, &u);
			r->runner->ops->cancel(r->runner, &u, m->pid, 1);
		}
		if (!m->timed_out && m->deadline_us < *wake)
			*wake = m->deadline_us;
		if (m->timed_out && m->killed_us + KILL_GRACE_US < *wake)
			*wake = m->killed_us + KILL_GRACE_US;
	}
}

/*
 * Sleep until a child ends, a token comes back (only when a rung waits
 * for one) or `wake`; a cancel stops every unit.
 */
static void
chord_wait(struct chord_run *r, uint64_t now, uint64_t wake)
{
	struct pollfd pfd[2];
	int npfd = 1, timeout_ms;

	pfd[0].fd = r->sfd;
	pfd[0].events = POLLIN;
	pfd[0].revents = 0;
	for (int i = 0; i < r->n; i++) {
		if (r->ms[i].state == M_WAITING && !chord_blocked(&r->ms[i]) &&
		    !ladderd_host_cancel) {
			pfd[1].fd = r->tokens->rfd;
			pfd[1].events = POLLIN;
			npfd = 2;
			break;
		}
	}
	timeout_ms = wake > now ? (int)((wake - now + 999) / 1000) : 0;
	if (poll(pfd, (nfds_t)npfd, timeout_ms) < 0 && errno != EINTR) {
		ladderd_ctx_set_error(r->ctx, "chord", NULL, "poll failed");
		chord_cancel_all(r->o, r->runner, r->ctx, r->ms, r->n, 1);
	}
	if (pfd[0].revents & POLLIN) {
		struct signalfd_siginfo si;

		while (read(r->sfd, &si, sizeof(si)) == sizeof(si))
			;
	}
	if (ladderd_host_cancel)
		chord_cancel_all(r->o, r->runner, r->ctx, r->ms, r->n, 0);
}

/* Reap every child that has ended: one process, or a group's for several. */
static void
chord_reap(struct chord_run *r)
{
	for (;;) {
		int status, found = 0;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid <= 0)
			break;
		for (int i = 0; i < r->n; i++) {
			if (r->ms[i].state != M_RUNNING || r->ms[i].pid != pid)
				continue;
			found = 1;
			r->running--;
			r->finished += chord_reaped(r->o, r->runner, r->ctx,
			    &r->ms[i], status, r->retries);
		}
		if (!found)
			log_debug("reaped unknown child %ld", (long)pid);
	}
	chord_settle_chunks(r->ctx, r->ms, r->n, &r->finished);
}

/*
 * The loop: start what may start, enforce limits, tick the status, wait,
 * reap; until every member has finished or a cancel stopped them all.
 */
static void
chord_loop(struct chord_run *r)
{
	while (r->finished < r->n) {
		uint64_t now = ladderd_clock_mono_us();
		uint64_t wake = now + 3600000000u;

		if (r->group_waiting && !ladderd_host_cancel)
			chord_start_group_now(r);
		if (!r->group_waiting)
			chord_start_waiting(r);
		if (ladderd_host_cancel && r->running == 0)
			break;
		LADDERD_CRASH_POINT("chord.started", NULL);
		now = ladderd_clock_mono_us();
		chord_enforce_limits(r, now, &wake);
		if (r->o->tick) {
			if (now >= r->next_tick) {
				r->o->tick(r->o->tick_arg, r->ctx);
				r->next_tick = now + TICK_US;
			}
			if (r->next_tick < wake)
				wake = r->next_tick;
		}
		chord_wait(r, now, wake);
		chord_reap(r);
	}
}

/*
 * What the finished members make of the task: LADDERD_OK, LADDERD_RETRY
 * (a rung failed for a passing reason: a full disk defers the task,
 * partial ladder or not; it completes once the reason is gone, reusing
 * the rungs that finished) or LADDERD_FAIL naming the stage and rung.
 */
static enum ladderd_rc
chord_verdict(struct chord_run *r)
{
	int ok_video = 0, ok_audio = 0;
	const struct member *first_failure = NULL;

	for (int i = 0; i < r->n; i++) {
		const struct member *m = &r->ms[i];

		if (!m->optional && m->rung_of == -1 &&
		    m->state == M_FAILED && m->transient) {
			ladderd_ctx_set_error(r->ctx, "chord", NULL,
			    m->message);
			return LADDERD_RETRY;
		}
	}
	for (int i = 0; i < r->n; i++) {
		const struct member *m = &r->ms[i];
		const char *kind = ladderd_ctx_str(m->rung, "kind", "video");

		if (m->optional || m->rung_of != -1)
			continue;
		if (m->state == M_FAILED) {
			if (!first_failure)
				first_failure = m;
		} else if (strcmp(ladderd_ctx_str(m->result, "status", ""),
			       "ok") == 0) {
			ok_video += strcmp(kind, "video") == 0;
			ok_audio += strcmp(kind, "audio") == 0;
		}
	}
	/* The error names the stage that failed and the rung. */
	if (first_failure && (ok_video == 0 ||
	    !ladderd_ctx_bool(r->ctx, "profile.partial_ladder", 0))) {
		ladderd_ctx_set_error(r->ctx, first_failure->err_stage,
		    first_failure->name, first_failure->err_msg);
		return LADDERD_FAIL;
	}
	/* A source without video (probe.audio_only): its audio. */
	if (ok_video == 0 && (ok_audio == 0 ||
	    !ladderd_ctx_bool(r->ctx, "probe.audio_only", 0))) {
		ladderd_ctx_set_error(r->ctx, "chord", NULL,
		    "no video rung was produced");
		return LADDERD_FAIL;
	}
	return LADDERD_OK;
}

/* Never leave a worker, a token, shared memory or the signal mask behind. */
static void
chord_teardown(struct chord_run *r)
{
	if (r->ms) {
		chord_cancel_all(r->o, r->runner, r->ctx, r->ms, r->n, 1);
		for (int i = 0; i < r->n; i++) {
			struct member *m = &r->ms[i];

			if (m->state == M_RUNNING && m->pid > 0)
				(void)waitpid(m->pid, NULL, 0);
			if (m->has_token)
				ladderd_tokens_give(r->tokens);
			cJSON_Delete(m->result);
			cJSON_Delete(m->own_rung);
			cJSON_Delete(m->chunk_rung);
			cJSON_Delete(m->joined);
			cJSON_Delete(m->audio);
		}
	}
	free(r->ms);
	ladderd_ctx_unlink_shm(r->ctx);
	for (int i = 0; i < r->group_tokens; i++)
		ladderd_tokens_give(r->tokens);
	if (r->sfd >= 0) {
		close(r->sfd);
		(void)sigprocmask(SIG_SETMASK, &r->oldmask, NULL);
	}
	ladderd_runner_free(r->runner);
}

/*
 * Run the rendition phase. Returns LADDERD_OK (ctx.renditions set),
 * LADDERD_FAIL (ctx.error names the rung and why) or LADDERD_RETRY when
 * the job was cancelled.
 */
enum ladderd_rc
ladderd_chord_run(const struct ladderd_chord_opts *o, cJSON *ctx)
{
	const cJSON *list = chord_members(ctx);
	struct chord_run r = { .o = o, .ctx = ctx, .sfd = -1 };
	enum ladderd_rc rc = LADDERD_FAIL;

	r.n = cJSON_GetArraySize(list);
	r.retries = o->conf->rung_retries;
	if (!cJSON_IsArray(list) || r.n == 0) {
		ladderd_ctx_set_error(ctx, "chord", NULL, "the ladder is empty");
		return LADDERD_FAIL;
	}
	if (chord_setup(&r, list) < 0)
		goto out;
	chord_loop(&r);
	if (ladderd_host_cancel) {
		ladderd_ctx_set_error(ctx, "chord", NULL,
		    "stopped before the rungs finished");
		rc = LADDERD_RETRY;
		goto out;
	}
	if (chord_merge(ctx, r.ms, r.n, r.runner->ops->name) < 0) {
		ladderd_ctx_set_error(ctx, "chord", NULL, "out of memory");
		goto out;
	}
	rc = chord_verdict(&r);
out:
	chord_teardown(&r);
	return rc;
}

/*
 * engine.c - one task's workflow: pre stages, the chord, post stages.
 *
 * The context is checkpointed to <work>/context.json (write temp, fsync,
 * rename) after every stage. ctx.done lists the finished steps
 * ("pre:0:download", "chord", "post:1:chunk_dash"), so running the engine
 * again on a checkpoint resumes after the last finished step; the chord
 * itself reuses finished rungs. The engine owns the task's terminal status
 * event (complete or failed), so a workflow cannot forget to send it.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "chord.h"
#include "../stages/crashpoint.h"
#include "ctx.h"
#include "engine.h"
#include "fsutil.h"
#include "host.h"
#include "log.h"
#include "plugin.h"
#include "status.h"

/*
 * Build a new task context from the spec and the profile, create the work
 * folder and write the first checkpoint. The caller owns *ret_ctx.
 */
int
ladderd_engine_new_task(const struct ladderd_conf *conf,
    const struct ladderd_task_spec *spec, cJSON **ret_ctx, char *err,
    size_t errlen)
{
	const struct ladderd_profile *pr;
	const cJSON *g;
	cJSON *ctx = NULL, *task;
	char path[PATH_MAX];
	int rc;

	if (!ladderd_ctx_valid_name(spec->task_id)) {
		snprintf(err, errlen, "invalid task_id '%s': use 1..64 of "
		    "[A-Za-z0-9._-], not '.' or '..'", spec->task_id);
		return -EINVAL;
	}
	if ((pr = ladderd_conf_profile(conf, spec->profile)) == NULL) {
		char names[1024];

		ladderd_conf_profile_names(conf, names, sizeof(names));
		snprintf(err, errlen, "unknown profile '%s' (configured: %s)",
		    spec->profile, names);
		return -EINVAL;
	}
	if ((ctx = cJSON_CreateObject()) == NULL ||
	    (task = cJSON_AddObjectToObject(ctx, "task")) == NULL)
		goto nomem;
	cJSON_AddStringToObject(task, "id", spec->task_id);
	cJSON_AddStringToObject(task, "main_task_id", spec->task_id);
	cJSON_AddStringToObject(task, "profile", spec->profile);
	cJSON_AddStringToObject(task, "source", spec->source);
	if (spec->source_trusted)
		cJSON_AddBoolToObject(task, "source_trusted", 1);
	cJSON_AddStringToObject(task, "work_dir", spec->work_dir);
	cJSON_AddStringToObject(task, "publish_root", spec->publish_root);
	cJSON_AddStringToObject(task, "status_root", spec->status_root);
	cJSON_AddStringToObject(task, "state", "queued");
	if ((spec->webhook || spec->manifest_webhook || spec->amqp) &&
	    spec->outbox_dir)
		cJSON_AddStringToObject(task, "outbox_dir", spec->outbox_dir);
	if (spec->webhook && spec->outbox_dir)
		cJSON_AddStringToObject(task, "webhook", spec->webhook);
	if (spec->amqp && spec->outbox_dir)
		cJSON_AddBoolToObject(task, "amqp", 1);
	if (spec->manifest_webhook && spec->outbox_dir)
		cJSON_AddStringToObject(task, "manifest_webhook",
		    spec->manifest_webhook);
	if (spec->metadata)
		cJSON_AddItemToObject(task, "metadata",
		    cJSON_Duplicate(spec->metadata, 1));
	if (spec->subtitles)
		cJSON_AddItemToObject(task, "subtitles",
		    cJSON_Duplicate(spec->subtitles, 1));
	if (spec->input_path) {
		cJSON *in = cJSON_AddObjectToObject(ctx, "input");

		cJSON_AddStringToObject(in, "path", spec->input_path);
	}
	cJSON_AddItemToObject(ctx, "profile", cJSON_Duplicate(pr->settings, 1));
	/* Each stage's top-level group under its name ("download"). */
	cJSON_ArrayForEach(g, conf->stage_groups)
		cJSON_AddItemToObject(ctx, g->string, cJSON_Duplicate(g, 1));
	cJSON_AddArrayToObject(ctx, "done");
	if ((rc = ladderd_fsutil_mkdir_p(spec->work_dir, 0755)) < 0) {
		snprintf(err, errlen, "cannot create work folder '%s': %s",
		    spec->work_dir, strerror(-rc));
		goto fail;
	}
	if ((rc = ladderd_ctx_work_path(spec->work_dir, LADDERD_PATH_CONTEXT,
		 NULL, path, sizeof(path))) < 0 ||
	    (rc = ladderd_ctx_save(ctx, path)) < 0) {
		snprintf(err, errlen, "cannot write '%s': %s", path,
		    strerror(-rc));
		goto fail;
	}
	*ret_ctx = ctx;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	rc = -ENOMEM;
fail:
	cJSON_Delete(ctx);
	return rc;
}

static int
engine_done(const cJSON *ctx, const char *step)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, ladderd_ctx_get(ctx, "done"))
		if (cJSON_IsString(it) && strcmp(it->valuestring, step) == 0)
			return 1;
	return 0;
}

/* Whether a step starting with `prefix` ("post:") is finished. */
static int
engine_started(const cJSON *ctx, const char *prefix)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, ladderd_ctx_get(ctx, "done"))
		if (cJSON_IsString(it) &&
		    strncmp(it->valuestring, prefix, strlen(prefix)) == 0)
			return 1;
	return 0;
}

/* Mark `step` finished and checkpoint; 0 or a negative errno. */
static int
engine_checkpoint(cJSON *ctx, const char *step)
{
	char path[PATH_MAX];
	cJSON *done = cJSON_GetObjectItemCaseSensitive(ctx, "done");
	int rc;

	if (!cJSON_IsArray(done)) {
		done = cJSON_CreateArray();
		if (ladderd_ctx_set(ctx, "done", done) < 0) {
			cJSON_Delete(done);
			return -ENOMEM;
		}
	}
	if (step)
		cJSON_AddItemToArray(done, cJSON_CreateString(step));
	if ((rc = ladderd_ctx_path(ctx, LADDERD_PATH_CONTEXT, NULL, path,
		 sizeof(path))) < 0)
		return rc;
	return ladderd_ctx_save(ctx, path);
}

static void
engine_emit_state(cJSON *ctx, const char *state)
{
	if (ladderd_host_set_state(ctx, state) > 0 &&
	    ladderd_status_emit(ctx, NULL, NULL) < 0)
		log_warnx("cannot write status event, ignoring");
}

/*
 * Whether the pre stage `name` is where fetch work ends: its state is
 * LADDERD_STATE_FETCHING (stage.h), the download. Not loadable: no.
 */
static bool
engine_fetches(struct ladderd_plugins *reg, const char *name)
{
	const struct ladderd_plugin *p;
	char err[256];

	return ladderd_plugins_get(reg, name, &p, err, sizeof(err)) == 0 &&
	    p->desc->state != NULL &&
	    strcmp(p->desc->state, LADDERD_STATE_FETCHING) == 0;
}

/*
 * Run the stages of one phase. Each phase loads its stages and unloads
 * them when it ends: the job process then waits through the rungs without
 * the pre phase's libav and most of its ~130 libraries mapped (probe's;
 * ~35 MB of RSS), and the post phase loads what it needs again (~10 ms).
 */
static enum ladderd_rc
engine_run_phase(const struct ladderd_engine_opts *o,
    const struct ladderd_workflow *wf, enum ladderd_phase ph, cJSON *ctx)
{
	bool fetch = o->fetch_only && ph == LADDERD_PHASE_PRE;
	struct ladderd_plugins *reg;
	enum ladderd_rc ret = LADDERD_OK;

	if ((reg = ladderd_plugins_new(o->conf->stage_path)) == NULL) {
		ladderd_ctx_set_error(ctx, "engine", NULL, "out of memory");
		return LADDERD_FAIL;
	}
	for (size_t i = 0; i < wf->n[ph]; i++) {
		const struct ladderd_stage_ref *s = &wf->stages[ph][i];
		const struct ladderd_plugin *p;
		char step[128], err[1024];
		enum ladderd_rc rc;
		int threads = o->conf->max_rungs;

		snprintf(step, sizeof(step), "%s:%zu:%s",
		    ladderd_phase_names[ph], i, s->name);
		if (engine_done(ctx, step)) {
			if (fetch && engine_fetches(reg, s->name))
				break;
			continue;
		}
		if (ladderd_host_cancel) {
			ret = LADDERD_RETRY;
			break;
		}
		if (ladderd_plugins_get(reg, s->name, &p, err, sizeof(err)) <
		    0) {
			ladderd_ctx_set_error(ctx, s->name, NULL, err);
			ret = LADDERD_FAIL;
			break;
		}
		log_debug("stage %s", s->name);
		LADDERD_CRASH_POINT("stage.before", s->name);
		rc = ladderd_host_run_stage(p, s->args, ctx, NULL, threads);
		LADDERD_CRASH_POINT("stage.after", s->name);
		log_debug("stage %s: %s", s->name, ladderd_host_rc_name(rc));
		if (rc == LADDERD_FAIL || rc == LADDERD_RETRY) {
			ret = rc;
			break;
		}
		if (engine_checkpoint(ctx, step) < 0) {
			ladderd_ctx_set_error(ctx, s->name, NULL,
			    "cannot write the checkpoint");
			ret = LADDERD_RETRY;
			break;
		}
		if (rc == LADDERD_STOP || (fetch && engine_fetches(reg, s->name)))
			break;
	}
	ladderd_plugins_free(reg);
	/* And what they freed goes back too (glibc keeps it otherwise). */
	malloc_trim(0);
	return ret;
}

/*
 * ctx.subtitles for the terminal event: { tracks: [ { name, language,
 * forced, default, origin, cues } ], skipped: [ { index, codec, language,
 * reason } ] }.
 */
static cJSON *
engine_subtitles(const cJSON *ctx)
{
	cJSON *o = cJSON_CreateObject(), *tracks;
	const cJSON *t;

	if (o == NULL || (tracks = cJSON_AddArrayToObject(o, "tracks")) == NULL)
		return o;
	cJSON_ArrayForEach(t, ladderd_ctx_get(ctx, "subtitles.tracks")) {
		cJSON *e = cJSON_CreateObject();
		static const char *const keys[] = { "name", "language",
			"forced", "default", "origin", "cues", NULL };

		for (int i = 0; e != NULL && keys[i] != NULL; i++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(t,
			    keys[i]);

			if (v != NULL)
				cJSON_AddItemToObject(e, keys[i],
				    cJSON_Duplicate(v, 1));
		}
		if (e != NULL)
			cJSON_AddItemToArray(tracks, e);
	}
	cJSON_AddItemToObject(o, "skipped", cJSON_Duplicate(
	    ladderd_ctx_get(ctx, "subtitles.skipped"), 1));
	return o;
}

/*
 * A short summary of every rung for the terminal event: name, kind,
 * status, size, measured bandwidth, why a rung was dropped or failed, and
 * where it ran.
 */
static cJSON *
engine_summary(const cJSON *ctx)
{
	cJSON *arr = cJSON_CreateArray();
	const cJSON *r;

	cJSON_ArrayForEach(r, ladderd_ctx_get(ctx, "renditions")) {
		cJSON *o = cJSON_CreateObject();
		const char *why = ladderd_ctx_str(r, "summary.reason",
		    ladderd_ctx_str(r, "error.message", NULL));

		cJSON_AddStringToObject(o, "name",
		    ladderd_ctx_str(r, "rung.name", "?"));
		cJSON_AddStringToObject(o, "kind",
		    ladderd_ctx_str(r, "rung.kind", "video"));
		cJSON_AddStringToObject(o, "status",
		    ladderd_ctx_str(r, "status", "?"));
		/* What the rung's stages reported (ctx.summary, stage.h). */
		if (ladderd_ctx_num(r, "summary.width", 0) > 0) {
			cJSON_AddNumberToObject(o, "width",
			    ladderd_ctx_num(r, "summary.width", 0));
			cJSON_AddNumberToObject(o, "height",
			    ladderd_ctx_num(r, "summary.height", 0));
		}
		if (ladderd_ctx_get(r, "summary.bandwidth"))
			cJSON_AddNumberToObject(o, "bandwidth",
			    ladderd_ctx_num(r, "summary.bandwidth", 0));
		/* The rung worker's wall time (see chord.c). */
		if (ladderd_ctx_str(r, "timing.started", NULL)) {
			cJSON_AddStringToObject(o, "started",
			    ladderd_ctx_str(r, "timing.started", ""));
			cJSON_AddNumberToObject(o, "elapsed",
			    ladderd_ctx_num(r, "timing.elapsed", 0));
		}
		if (why && strcmp(ladderd_ctx_str(r, "status", ""), "ok") != 0)
			cJSON_AddStringToObject(o, "reason", why);
		if (ladderd_ctx_str(r, "summary.filters", "")[0] != '\0')
			cJSON_AddStringToObject(o, "filters",
			    ladderd_ctx_str(r, "summary.filters", ""));
		if (ladderd_ctx_str(r, "summary.decoder", NULL))
			cJSON_AddStringToObject(o, "decoder",
			    ladderd_ctx_str(r, "summary.decoder", ""));
		/* Where it ran: runner, host, Slurm job id (rung.c). */
		if (cJSON_IsObject(ladderd_ctx_get(r, "unit")))
			cJSON_AddItemToObject(o, "unit",
			    cJSON_Duplicate(ladderd_ctx_get(r, "unit"), 1));
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

/*
 * What the probe found that decides the filters (stages/graph.c): field
 * order and how it was found, HDR transfer, measured loudness. NULL when
 * the task was not probed.
 */
static cJSON *
engine_source(const cJSON *ctx)
{
	const cJSON *v = ladderd_ctx_get(ctx, "probe.video");
	const cJSON *loud = ladderd_ctx_get(ctx, "probe.loudness");
	cJSON *o;

	if (!cJSON_IsObject(v) || (o = cJSON_CreateObject()) == NULL)
		return NULL;
	cJSON_AddBoolToObject(o, "interlaced",
	    ladderd_ctx_bool(v, "interlaced", 0));
	cJSON_AddStringToObject(o, "field_order",
	    ladderd_ctx_str(v, "field_order", "unknown"));
	cJSON_AddStringToObject(o, "interlace_source",
	    ladderd_ctx_str(v, "interlace_source", "stream"));
	cJSON_AddStringToObject(o, "hdr", ladderd_ctx_str(v, "hdr", "none"));
	cJSON_AddStringToObject(o, "color_transfer",
	    ladderd_ctx_str(v, "color_transfer", "unknown"));
	if (cJSON_IsObject(loud))
		cJSON_AddItemToObject(o, "loudness", cJSON_Duplicate(loud, 1));
	return o;
}

/*
 * Run (or resume) the task in ctx. Returns LADDERD_OK when the task is
 * complete, LADDERD_FAIL (permanent, ctx.error says why) or LADDERD_RETRY
 * (transient or cancelled: run again later from the checkpoint). The
 * terminal status event is written here.
 */
enum ladderd_rc
ladderd_engine_run(const struct ladderd_engine_opts *o, cJSON *ctx)
{
	const struct ladderd_profile *pr;
	const struct ladderd_workflow *wf;
	enum ladderd_rc rc = LADDERD_FAIL;
	const char *profile = ladderd_ctx_str(ctx, "task.profile", "default");

	if ((pr = ladderd_conf_profile(o->conf, profile)) == NULL) {
		ladderd_ctx_set_error(ctx, "engine", NULL,
		    "the task's profile is no longer configured");
		goto done;
	}
	wf = ladderd_conf_workflow(o->conf, pr);
	cJSON_DeleteItemFromObjectCaseSensitive(ctx, "error");
	/* The work starts now (a resumed task keeps its first start). */
	(void)ladderd_status_set_started(ladderd_ctx_obj(ctx, "task"));
	if ((rc = engine_run_phase(o, wf, LADDERD_PHASE_PRE, ctx)) !=
	    LADDERD_OK)
		goto done;
	if (o->fetch_only) {
		/* Fetched: the rest runs in an encoding slot. */
		cJSON *t = cJSON_CreateTrue();

		if (ladderd_ctx_set(ctx, "fetched", t) < 0) {
			cJSON_Delete(t);
			t = NULL;
		}
		if (t == NULL || engine_checkpoint(ctx, NULL) < 0) {
			ladderd_ctx_set_error(ctx, "engine", NULL,
			    "cannot write the checkpoint");
			rc = LADDERD_RETRY;
		}
		goto out;
	}
	if (!engine_done(ctx, "chord")) {
		struct ladderd_chord_opts co = {
			.conf = o->conf,
			.workflow = wf,
			.tokens = o->tokens,
			.tick = o->tick,
			.tick_arg = o->tick_arg,
		};

		engine_emit_state(ctx, "transcoding");
		if (engine_checkpoint(ctx, NULL) < 0) {
			ladderd_ctx_set_error(ctx, "engine", NULL,
			    "cannot write the checkpoint");
			rc = LADDERD_RETRY;
			goto done;
		}
		if ((rc = ladderd_chord_run(&co, ctx)) != LADDERD_OK)
			goto done;
		LADDERD_CRASH_POINT("chord.joined", NULL);
		if (engine_checkpoint(ctx, "chord") < 0) {
			ladderd_ctx_set_error(ctx, "engine", NULL,
			    "cannot write the checkpoint");
			rc = LADDERD_RETRY;
			goto done;
		}
	}
	LADDERD_CRASH_POINT("engine.packaging", NULL);
	/* A task resumed within post keeps the state its stages set. */
	if (!engine_started(ctx, "post:"))
		engine_emit_state(ctx, "packaging");
	rc = engine_run_phase(o, wf, LADDERD_PHASE_POST, ctx);
done:
	if (rc == LADDERD_OK || rc == LADDERD_FAIL) {
		const char *end = rc == LADDERD_OK ? "complete" : "failed";
		char last[32];
		cJSON *f = NULL;

		/*
		 * Killed after the terminal event and before the checkpoint
		 * that follows it, the task runs again with nothing left to
		 * do: the end was reported already.
		 */
		if (ladderd_status_last_state(ctx, last, sizeof(last)) == 0 &&
		    strcmp(last, end) == 0) {
			ladderd_host_set_state(ctx, end);
			goto checkpoint;
		}
		f = cJSON_CreateObject();

		ladderd_host_set_state(ctx, end);
		if (rc == LADDERD_OK) {
			cJSON_AddBoolToObject(f, "complete", 1);
			cJSON_AddNumberToObject(f, "progress", 1);
		}
		if (ladderd_ctx_get(ctx, "renditions"))
			cJSON_AddItemToObject(f, "renditions",
			    engine_summary(ctx));
		if (ladderd_ctx_get(ctx, "probe.video"))
			cJSON_AddItemToObject(f, "source", engine_source(ctx));
		/* Subtitle tracks made, and those skipped (bitmap) and why. */
		if (ladderd_ctx_get(ctx, "subtitles"))
			cJSON_AddItemToObject(f, "subtitles",
			    engine_subtitles(ctx));
		if (ladderd_status_emit(ctx, f, NULL) < 0)
			log_warnx("cannot write status event, ignoring");
		cJSON_Delete(f);
		LADDERD_CRASH_POINT("engine.terminal", NULL);
	}
checkpoint:
	if (engine_checkpoint(ctx, NULL) < 0)
		log_warnx("cannot write the final checkpoint, ignoring");
out:
	return rc;
}

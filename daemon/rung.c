/*
 * rung.c - the worker side of a unit: `ladderd rung WORKDIR RUNG`, started
 * by a runner (runner.h) on this host or a cluster node. It reads
 * rungs/<rung>/request.json (the context, the rendition stages and their
 * arguments, the stage path, the thread budget, the runner), runs the
 * stages and writes rungs/<rung>/result.json: the top-level keys its
 * stages added or changed, "unit" (where it ran) and "status". Exit
 * status: 0 success (ok or dropped), 75 (EX_TEMPFAIL) for a transient
 * failure, 1 otherwise.
 */
#include "config.h"

#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crashpoint.h"
#include "ctx.h"
#include "host.h"
#include "log.h"
#include "plugin.h"
#include "rung.h"
#include "status.h"

static void
rung_on_term(int sig)
{
	(void)sig;
	ladderd_host_cancel = 1;
}

/*
 * Where this unit runs, for the status (ctx.unit): the runner that started
 * it (the request says), this host, and under Slurm the job and step ids
 * srun gave us.
 */
static cJSON *
rung_unit_detail(const cJSON *req)
{
	const char *runner = ladderd_ctx_str(req, "runner", "local");
	cJSON *u = cJSON_CreateObject();
	char host[256] = "";

	if (u == NULL)
		return NULL;
	(void)gethostname(host, sizeof(host) - 1);
	cJSON_AddStringToObject(u, "runner", runner);
	cJSON_AddStringToObject(u, "host", host);
	if (strcmp(runner, "slurm") == 0) {
		const char *job = getenv("SLURM_JOB_ID");
		const char *step = getenv("SLURM_STEP_ID");

		if (job)
			cJSON_AddNumberToObject(u, "slurm_job_id", atof(job));
		if (step)
			cJSON_AddNumberToObject(u, "slurm_step_id", atof(step));
	}
	return u;
}

int
ladderd_rung_main(const char *work_dir, const char *rung)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], prefix[160];
	cJSON *req = NULL, *ctx = NULL, *orig = NULL, *res = NULL;
	const cJSON *stages, *it;
	struct ladderd_plugins *reg = NULL;
	enum ladderd_rc rc = LADDERD_OK;
	const char *status = "ok";
	struct sigaction sa = { .sa_handler = rung_on_term };
	int exit_code = 1, threads;
	FILE *f;

	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	if (!ladderd_ctx_valid_name(rung) ||
	    snprintf(dir, sizeof(dir), "%s/rungs/%s", work_dir, rung) >=
		(int)sizeof(dir)) {
		log_warnx("invalid rung '%s'", rung);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/request.json", dir);
	if (ladderd_ctx_load(path, &req) < 0) {
		log_warnx("cannot read '%s'", path);
		return 1;
	}
	ctx = cJSON_DetachItemFromObject(req, "context");
	stages = ladderd_ctx_get(req, "stages");
	threads = (int)ladderd_ctx_num(req, "threads", 0);
	if (!cJSON_IsObject(ctx) || !cJSON_IsArray(stages)) {
		log_warnx("'%s' is not a rung request", path);
		goto out;
	}
	{
		cJSON *unit = rung_unit_detail(req);

		if (unit && ladderd_ctx_set(ctx, "unit", unit) < 0)
			cJSON_Delete(unit);
	}
	snprintf(prefix, sizeof(prefix), "job=%s rendition=%s: ",
	    ladderd_ctx_str(ctx, "task.id", "?"), rung);
	log_set_prefix(prefix);
	LADDERD_CRASH_POINT("rung.start", rung);
	if ((orig = cJSON_Duplicate(ctx, 1)) == NULL ||
	    (reg = ladderd_plugins_new(ladderd_ctx_str(req, "stage_path",
		 ""))) == NULL)
		goto out;
	cJSON_ArrayForEach(it, stages) {
		const struct ladderd_plugin *p;
		const char *name = ladderd_ctx_str(it, "name", "");
		char err[1024];

		if (ladderd_plugins_get(reg, name, &p, err, sizeof(err)) < 0) {
			ladderd_ctx_set_error(ctx, name, rung, err);
			rc = LADDERD_FAIL;
			break;
		}
		log_debug("stage %s", name);
		/* Which stage died, should this process die in it. */
		snprintf(path, sizeof(path), "%s/running", dir);
		if ((f = fopen(path, "w")) != NULL) {
			fputs(name, f);
			fclose(f);
		}
		rc = ladderd_host_run_stage(p, ladderd_ctx_get(it, "args"), ctx,
		    rung, threads);
		if (rc == LADDERD_STOP || rc == LADDERD_FAIL ||
		    rc == LADDERD_RETRY)
			break;
		if (ladderd_host_cancel) {
			ladderd_ctx_set_error(ctx, name, rung, "cancelled");
			rc = LADDERD_RETRY;
			break;
		}
	}
	if (rc == LADDERD_STOP)
		status = "dropped";
	else if (rc == LADDERD_FAIL || rc == LADDERD_RETRY)
		status = "failed";
	/* The result is what the stages added or changed. */
	if ((res = cJSON_CreateObject()) == NULL)
		goto out;
	cJSON_ArrayForEach(it, ctx) {
		const cJSON *before = cJSON_GetObjectItemCaseSensitive(orig,
		    it->string);

		if (before && cJSON_Compare(before, it, 1) &&
		    strcmp(it->string, "rung") != 0 &&
		    strcmp(it->string, "unit") != 0)
			continue;
		cJSON_AddItemToObject(res, it->string, cJSON_Duplicate(it, 1));
	}
	ladderd_ctx_set(res, "status", cJSON_CreateString(status));
	/* The rung's wall time, for the task's summary of renditions. */
	if (ladderd_ctx_get(ctx, "rung.started_ms")) {
		cJSON *t = cJSON_CreateObject();
		double ms = ladderd_ctx_num(ctx, "rung.started_ms", 0);
		uint64_t now = ladderd_status_wall_ms();

		cJSON_AddStringToObject(t, "started",
		    ladderd_ctx_str(ctx, "rung.started", ""));
		cJSON_AddNumberToObject(t, "elapsed", now > ms ?
		    (double)(now - (uint64_t)ms) / 1000.0 : 0.0);
		if (ladderd_ctx_set(res, "timing", t) < 0)
			cJSON_Delete(t);
	}
	snprintf(path, sizeof(path), "%s/result.json", dir);
	if (ladderd_ctx_save(res, path) < 0) {
		log_warn("cannot write '%s'", path);
		goto out;
	}
	LADDERD_CRASH_POINT("rung.result", rung);
	if (rc == LADDERD_FAIL || rc == LADDERD_RETRY)
		log_warnx("%s: %s", ladderd_ctx_str(ctx, "error.stage", "?"),
		    ladderd_ctx_str(ctx, "error.message", ""));
	exit_code = rc == LADDERD_RETRY ? 75 : rc == LADDERD_FAIL ? 1 : 0;
out:
	ladderd_plugins_free(reg);
	cJSON_Delete(res);
	cJSON_Delete(orig);
	cJSON_Delete(ctx);
	cJSON_Delete(req);
	return exit_code;
}

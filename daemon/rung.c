/*
 * rung.c - the worker side of a unit: `ladderd rung WORKDIR RUNG`, started
 * by a runner (runner.h) on this host or a cluster node. It reads
 * rungs/<rung>/request.json (the context, the rendition stages and their
 * arguments, the stage path, the thread budget, the runner), runs the
 * stages and writes rungs/<rung>/result.json: the top-level keys its
 * stages added or changed, "unit" (where it ran) and "status". Exit
 * status: 0 success (ok or dropped), 75 (EX_TEMPFAIL) for a transient
 * failure, 1 otherwise. A request may name "guests": units of the same
 * task this worker runs as threads beside its own (the shared decoder and
 * the audio renditions, in the top rung's worker).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../stages/crashpoint.h"
#include "chord.h"
#include "clock.h"
#include "ctx.h"
#include "exe.h"
#include "exitcode.h"
#include "fsutil.h"
#include "host.h"
#include "log.h"
#include "plugin.h"
#include "rung.h"
#include "runner.h"
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

/* CPU seconds (user + sys) of getrusage's `who`. */
static double
rung_cpu(int who)
{
	struct rusage ru;

	if (getrusage(who, &ru) < 0)
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/*
 * The rung's result: what the stages added to or changed in the context
 * (`orig` is the context before them; rung and unit always), its status,
 * and its wall time. NULL when out of memory; the caller frees it.
 */
static cJSON *
rung_result(const cJSON *orig, const cJSON *ctx, const char *status,
    double cpu)
{
	cJSON *res = cJSON_CreateObject();
	const cJSON *it;

	if (res == NULL)
		return NULL;
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
		uint64_t now = ladderd_clock_wall_ms();

		cJSON_AddStringToObject(t, "started",
		    ladderd_ctx_str(ctx, "rung.started", ""));
		cJSON_AddNumberToObject(t, "elapsed", now > ms ?
		    (double)(now - (uint64_t)ms) / 1000.0 : 0.0);
		/* Its CPU seconds: a unit's cost wherever it runs. */
		cJSON_AddNumberToObject(t, "cpu", round(cpu * 1000) / 1000);
		if (ladderd_ctx_set(res, "timing", t) < 0)
			cJSON_Delete(t);
	}
	return res;
}

/*
 * A unit this worker runs as a thread beside its own (the request's
 * "guests": the chord puts the shared decoder and the audio renditions in
 * the top rung's worker; chord_pick_host says why).
 */
struct rung_guest {
	pthread_t thread;
	const char *work_dir;
	char name[80];
	int exit_code;
	double cpu; /* its thread's CPU seconds, once `done` */
	int done;   /* atomic */
};

/* The units a unit's worker runs as threads, and how many started. */
struct rung_guests {
	struct rung_guest g[LADDERD_GROUP_MAX];
	int n;
};

static int rung_unit(const char *work_dir, const char *rung,
    struct rung_guests *guests);

static void *
rung_guest_main(void *arg)
{
	struct rung_guest *g = arg;

	g->exit_code = rung_unit(g->work_dir, g->name, NULL);
	/* Its peers stop waiting for it now, not at the process's end. */
	ladderd_chord_mark_ended_work(g->work_dir, g->name);
	g->cpu = rung_cpu(RUSAGE_THREAD);
	__atomic_store_n(&g->done, 1, __ATOMIC_RELEASE);
	/* What it freed goes back now, not when its host ends. */
	malloc_trim(0);
	return NULL;
}

/*
 * Start the request's guests (its "guests": unit names of the same task,
 * each with its own request). A guest that cannot start is marked ended,
 * so that no peer waits for it; the chord then finds it left no result.
 */
static void
rung_start_guests(const char *work_dir, const char *host, const cJSON *req,
    struct rung_guests *gs)
{
	const cJSON *names = ladderd_ctx_get(req, "guests"), *it;

	cJSON_ArrayForEach(it, names) {
		struct rung_guest *g = &gs->g[gs->n];

		if (!cJSON_IsString(it) ||
		    !ladderd_ctx_valid_name(it->valuestring) ||
		    strcmp(it->valuestring, host) == 0 ||
		    strlen(it->valuestring) >= sizeof(g->name))
			continue;
		if (gs->n == LADDERD_GROUP_MAX) {
			ladderd_chord_mark_ended_work(work_dir,
			    it->valuestring);
			continue;
		}
		g->work_dir = work_dir;
		snprintf(g->name, sizeof(g->name), "%s", it->valuestring);
		if (pthread_create(&g->thread, NULL, rung_guest_main, g) != 0) {
			log_warnx("cannot start unit %s as a thread", g->name);
			ladderd_chord_mark_ended_work(work_dir, g->name);
			continue;
		}
		gs->n++;
	}
}

/*
 * CPU seconds the guests' threads have used so far: a running thread's
 * clock, or the figure a finished one left (its clock is gone with it).
 * `done` is looked at twice: a guest that ends between the first look and
 * the clock's read has no clock any more, but has left its figure.
 */
static double
rung_guests_cpu(const struct rung_guests *gs)
{
	double cpu = 0;

	for (int i = 0; gs && i < gs->n; i++) {
		const struct rung_guest *g = &gs->g[i];
		clockid_t id;
		struct timespec ts;

		if (!__atomic_load_n(&g->done, __ATOMIC_ACQUIRE) &&
		    pthread_getcpuclockid(g->thread, &id) == 0 &&
		    clock_gettime(id, &ts) == 0)
			cpu += ts.tv_sec + ts.tv_nsec / 1e9;
		else if (__atomic_load_n(&g->done, __ATOMIC_ACQUIRE))
			cpu += g->cpu;
	}
	return cpu;
}

int
ladderd_rung_main(const char *work_dir, const char *rung)
{
	struct sigaction sa = { .sa_handler = rung_on_term };
	struct rung_guests guests = { .n = 0 };
	int exit_code;

	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	exit_code = rung_unit(work_dir, rung, &guests);
	if (guests.n > 0) {
		/* Its guests (the decoder) stop waiting for this unit. */
		ladderd_chord_mark_ended_work(work_dir, rung);
		for (int i = 0; i < guests.n; i++)
			(void)pthread_join(guests.g[i].thread, NULL);
	}
	return exit_code;
}

/*
 * Run unit `rung` of the task in work_dir: its request, its stages, its
 * result. `guests` is NULL for a unit that runs as a thread (it starts no
 * guest of its own and sets no process-wide state); otherwise it
 * receives the guests started.
 */
static int
rung_unit(const char *work_dir, const char *rung, struct rung_guests *guests)
{
	char path[PATH_MAX], running[PATH_MAX], result[PATH_MAX], prefix[160];
	cJSON *req = NULL, *ctx = NULL, *orig = NULL, *res = NULL;
	const cJSON *stages, *it;
	struct ladderd_plugins *reg = NULL;
	enum ladderd_rc rc = LADDERD_OK;
	const char *status = "ok";
	int exit_code = 1, threads, niceness, encode_only;
	const char *encoder = NULL; /* the stage that encoded (encode_only) */
	FILE *f;

	if (ladderd_ctx_work_path(work_dir, LADDERD_PATH_RUNG_RUNNING, rung,
		running, sizeof(running)) < 0 ||
	    ladderd_ctx_work_path(work_dir, LADDERD_PATH_RUNG_RESULT, rung,
		result, sizeof(result)) < 0 ||
	    ladderd_ctx_work_path(work_dir, LADDERD_PATH_RUNG_REQUEST, rung,
		path, sizeof(path)) < 0) {
		log_warnx("invalid rung '%s'", rung);
		return 1;
	}
	if (ladderd_ctx_load(path, &req) < 0) {
		log_warnx("cannot read '%s'", path);
		return 1;
	}
	ctx = cJSON_DetachItemFromObject(req, "context");
	stages = ladderd_ctx_get(req, "stages");
	threads = (int)ladderd_ctx_num(req, "threads", 0);
	/* A chunk: the rung's stages up to its encode (stage.h). */
	encode_only = ladderd_ctx_bool(req, "encode_only", 0);
	/*
	 * A lighter member of a group yields the CPU to heavier ones, once
	 * it works (host.c: its start runs at full priority).
	 */
	if ((niceness = (int)ladderd_ctx_num(req, "nice", 0)) > 0) {
		ladderd_host_yield_when_working(niceness);
		log_debug("unit %s: niceness +%d once working, %d encoder "
			  "threads", rung, niceness, threads);
	}
	if (!cJSON_IsObject(ctx) || !cJSON_IsArray(stages)) {
		log_warnx("'%s' is not a rung request", path);
		goto out;
	}
	{
		cJSON *unit = rung_unit_detail(req);

		if (unit && ladderd_ctx_set(ctx, "unit", unit) < 0)
			cJSON_Delete(unit);
	}
	/* An internal unit says what it is ("shared decoder"), not its name. */
	snprintf(prefix, sizeof(prefix), "job=%s %s%s: ",
	    ladderd_ctx_str(ctx, "task.id", "?"),
	    rung[0] == '_' ? "" : "rendition=",
	    ladderd_chord_unit_label(ctx, rung));
	if (guests)
		log_set_prefix(prefix);
	else
		log_set_thread_prefix(prefix);
	LADDERD_CRASH_POINT("rung.start", rung);
	if (guests)
		rung_start_guests(work_dir, rung, req, guests);
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
		if ((f = fopen(running, "w")) != NULL) {
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
		if (encode_only && p->desc->state != NULL &&
		    strcmp(p->desc->state, LADDERD_STATE_ENCODING) == 0) {
			encoder = p->name;
			break;
		}
	}
	if (encode_only && encoder == NULL && rc == LADDERD_OK) {
		ladderd_ctx_set_error(ctx, "engine", rung,
		    "no stage of the rendition phase encodes (state \""
		    LADDERD_STATE_ENCODING "\"): a rung cannot be cut into "
		    "chunks");
		rc = LADDERD_FAIL;
	}
	if (rc == LADDERD_STOP)
		status = "dropped";
	else if (rc == LADDERD_FAIL || rc == LADDERD_RETRY)
		status = "failed";
	if ((res = rung_result(orig, ctx, status, guests ?
		 rung_cpu(RUSAGE_SELF) + rung_cpu(RUSAGE_CHILDREN) -
		 rung_guests_cpu(guests) : rung_cpu(RUSAGE_THREAD))) == NULL)
		goto out;
	/* What the encode left in the context, under a name the chord knows. */
	if (encoder && ladderd_ctx_get(ctx, encoder)) {
		cJSON *enc = cJSON_Duplicate(ladderd_ctx_get(ctx, encoder), 1);

		if (enc == NULL || ladderd_ctx_set(res, "encode", enc) < 0) {
			cJSON_Delete(enc);
			goto out;
		}
	}
	if (ladderd_ctx_save(res, result) < 0) {
		log_warn("cannot write '%s'", result);
		goto out;
	}
	LADDERD_CRASH_POINT("rung.result", rung);
	if (rc == LADDERD_FAIL || rc == LADDERD_RETRY)
		log_warnx("%s: %s", ladderd_ctx_str(ctx, "error.stage", "?"),
		    ladderd_ctx_str(ctx, "error.message", ""));
	exit_code = ladderd_exit_of(rc);
out:
	ladderd_plugins_free(reg);
	cJSON_Delete(res);
	cJSON_Delete(orig);
	cJSON_Delete(ctx);
	cJSON_Delete(req);
	return exit_code;
}

static volatile sig_atomic_t rung_group_term;

static void
rung_group_on_term(int sig)
{
	(void)sig;
	rung_group_term = 1;
}

/*
 * `ladderd group WORKDIR UNIT...`: a group of units (ctx.group: the shared
 * decode's) on a node of a cluster (runner_slurm.c starts it as one step),
 * so that they share the node's memory. It runs each unit as `ladderd rung
 * WORKDIR UNIT`, marks a unit ended as its process ends (as the chord does
 * on the daemon's host), and removes the task's shared memory
 * (ctx.cleanup.shm) before and after. SIGTERM is passed on to the units.
 * Exit status 0 when every unit exited 0, else 1: the chord reads each
 * unit's own result either way.
 */
int
ladderd_rung_group_main(const char *work_dir, int n, char **names)
{
	struct sigaction sa = { .sa_handler = rung_group_on_term };
	pid_t pids[LADDERD_GROUP_MAX];
	char path[PATH_MAX];
	cJSON *req = NULL;
	const cJSON *ctx = NULL;
	int left = 0, bad = 0, term_sent = 0;

	if (n < 1 || n > LADDERD_GROUP_MAX) {
		log_warnx("a group has 1 to %d units", LADDERD_GROUP_MAX);
		return 1;
	}
	for (int i = 0; i < n; i++)
		if (!ladderd_ctx_valid_name(names[i])) {
			log_warnx("invalid unit '%s'", names[i]);
			return 1;
		}
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	/* Every unit's request carries the same task context. */
	if (ladderd_ctx_work_path(work_dir, LADDERD_PATH_RUNG_REQUEST, names[0],
		path, sizeof(path)) == 0 &&
	    ladderd_ctx_load(path, &req) == 0)
		ctx = ladderd_ctx_get(req, "context");
	ladderd_ctx_unlink_shm(ctx);
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
			execl(ladderd_exe_path(), "ladderd", "rung", work_dir,
			    names[i], (char *)NULL);
			_exit(127);
		}
		pids[i] = pid;
		if (pid < 0) {
			log_warn("cannot start unit %s", names[i]);
			bad = 1;
			if (ctx)
				ladderd_chord_mark_ended(ctx, names[i], 1);
			continue;
		}
		left++;
	}
	while (left > 0) {
		int st;
		pid_t pid = waitpid(-1, &st, 0);

		if (pid < 0 && errno == EINTR) {
			if (rung_group_term && !term_sent) {
				for (int i = 0; i < n; i++)
					if (pids[i] > 0)
						(void)kill(pids[i], SIGTERM);
				term_sent = 1;
			}
			continue;
		}
		if (pid < 0)
			break;
		for (int i = 0; i < n; i++) {
			if (pids[i] != pid)
				continue;
			pids[i] = -1;
			left--;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				bad = 1;
			if (ctx)
				ladderd_chord_mark_ended(ctx, names[i], 1);
		}
	}
	ladderd_ctx_unlink_shm(ctx);
	cJSON_Delete(req);
	return bad ? 1 : 0;
}

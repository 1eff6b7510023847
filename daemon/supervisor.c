/*
 * supervisor.c - the daemon's event loop (see supervisor.h).
 *
 * One thread, one epoll set: the inotify fd (drops, the config file), a
 * signalfd (SIGCHLD, SIGTERM, SIGINT, SIGHUP) and one timerfd armed only
 * for what needs a wake-up (a settle check, a deferred task coming due,
 * the shutdown deadline, restarting the webhook worker); an idle daemon
 * sleeps in epoll_wait with no timeout.
 *
 * Each iteration: claim ready drops, release due deferred tasks, start
 * jobs up to max_jobs (FIFO from spool/queue), write status/_daemon.json
 * when something changed, arm the timer, wait. Jobs are `ladderd job`
 * processes in their own process groups; the rung limit across all jobs is
 * the jobserver pipe they inherit. SIGTERM: stop claiming, SIGTERM every
 * job (they stop their rungs, checkpoint and exit 75), SIGKILL what is
 * left after shutdown_timeout, exit 0; the tasks resume at the next start.
 * Under systemd (Type=notify) it says READY=1 once it takes drops, keeps
 * STATUS= current, and pings the watchdog from this loop, so a loop stuck
 * anywhere gets the daemon restarted.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chord.h"
#include "clock.h"
#include "conf.h"
#include "../stages/crashpoint.h"
#include "ctx.h"
#include "exe.h"
#include "exitcode.h"
#include "failed.h"
#include "fsutil.h"
#include "ingest.h"
#include "log.h"
#include "privdrop.h"
#include "request.h"
#include "metrics.h"
#include "sdnotify.h"
#include "settings.h"
#include "spool.h"
#include "status.h"
#include "supervisor.h"
#include "tokens.h"
#include "watch.h"

#define METRICS_INTERVAL_US 1000000u /* _metrics.prom at most 1/s */
#define MAX_JOBS 128 /* max_jobs + max_downloads */
#define CRASH_LIMIT 3
#define DEFER_MAX_MS 3600000u
#define NOTIFY_RESTART_US (5u * 1000000u)

struct running_job {
	pid_t pid;
	int fetch; /* a download slot's job (`ladderd job TASKDIR fetch`) */
	int cancelled; /* `ladderd cancel`: fail it when it has stopped */
	char marker[160];
	char task_id[80];
};

/* Whether a task still has to fetch its source, once looked up. */
struct fetch_hint {
	char task_id[80];
	int fetch;
};

struct sup {
	const char *conf_file;	/* what the user named */
	struct fetch_hint *hints; /* sorted by task_id */
	size_t nhints;
	char snapshot[PATH_MAX]; /* the running config, for workers */
	char conf_dir[PATH_MAX];
	int verbose;
	struct ladderd_conf *conf;
	struct ladderd_watchset *ws;
	struct ladderd_tokens tokens;
	int tokens_n;	    /* tokens the pipe should hold when idle */
	int epfd, sfd, tfd, lockfd;
	int rqfd;	    /* inotify on spool/requests (request.h) */
	int requests_due;   /* look at spool/requests */
	struct running_job jobs[MAX_JOBS];
	int njobs;
	pid_t notify_pid;
	uint64_t notify_restart_at;
	int stopping;
	uint64_t stop_deadline;
	int killed;
	time_t started, conf_loaded;
	char conf_error[1024];
	int dirty;
	struct ladderd_metrics metrics;
	int metrics_dirty;
	uint64_t metrics_at; /* monotonic us of the last _metrics.prom */
	uint64_t watch_next;
};

/* Refill the jobserver: only when no job runs, so every token is home. */
static void
sup_refill_tokens(struct sup *s)
{
	if (s->njobs != 0)
		return;
	while (ladderd_tokens_take(&s->tokens) > 0)
		;
	s->tokens_n = s->conf->max_rungs;
	for (int i = 0; i < s->tokens_n; i++)
		ladderd_tokens_give(&s->tokens);
}

static void
sup_write_daemon_status(struct sup *s)
{
	char path[PATH_MAX], loaded[32], started[32];
	struct ladderd_marker *q = NULL;
	size_t nq = 0, nd = 0;
	cJSON *st = cJSON_CreateObject(), *running, *notify = NULL;
	char *text;
	struct tm tm;

	if (st == NULL)
		return;
	(void)ladderd_spool_list(s->conf->spool, "queue", &q, &nq);
	free(q);
	q = NULL;
	(void)ladderd_spool_list(s->conf->spool, "deferred", &q, &nd);
	free(q);
	gmtime_r(&s->started, &tm);
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	gmtime_r(&s->conf_loaded, &tm);
	strftime(loaded, sizeof(loaded), "%Y-%m-%dT%H:%M:%SZ", &tm);
	cJSON_AddStringToObject(st, "version", PACKAGE_VERSION);
	cJSON_AddNumberToObject(st, "pid", getpid());
	cJSON_AddStringToObject(st, "started", started);
	cJSON_AddNumberToObject(st, "uptime", (double)(time(NULL) - s->started));
	cJSON_AddStringToObject(st, "state", s->stopping ? "stopping" :
							   "running");
	cJSON_AddNumberToObject(st, "queue_length", (double)nq);
	cJSON_AddNumberToObject(st, "deferred", (double)nd);
	cJSON_AddNumberToObject(st, "running_jobs", s->njobs);
	running = cJSON_AddArrayToObject(st, "running");
	for (int i = 0; i < s->njobs; i++)
		cJSON_AddItemToArray(running,
		    cJSON_CreateString(s->jobs[i].task_id));
	cJSON_AddStringToObject(st, "config_file",
	    s->conf_file ? s->conf_file : "(built-in defaults)");
	cJSON_AddStringToObject(st, "config_loaded", loaded);
	ladderd_sdnotify_status(nq, nd, s->njobs, s->stopping);
	if (s->conf_error[0])
		cJSON_AddStringToObject(st, "config_error", s->conf_error);
	else
		cJSON_AddNullToObject(st, "config_error");
	/* What the notify worker says of its transports (outbox.h). */
	if (snprintf(path, sizeof(path), "%s/_notify.json", s->conf->status) <
		(int)sizeof(path) &&
	    ladderd_ctx_load(path, &notify) == 0)
		cJSON_AddItemToObject(st, "notify", notify);
	text = cJSON_Print(st);
	cJSON_Delete(st);
	if (text && snprintf(path, sizeof(path), "%s/_daemon.json",
			s->conf->status) < (int)sizeof(path) &&
	    ladderd_fsutil_write_atomic(path, text, strlen(text)) < 0)
		log_warn("cannot write '%s'", path);
	cJSON_free(text);
	s->dirty = 0;
	s->metrics_dirty = 1;
}

/* A task's status.json (caller frees), NULL when unreadable. */
static cJSON *
sup_task_status(const struct sup *s, const char *task_id)
{
	char path[PATH_MAX];
	cJSON *st = NULL;

	if (ladderd_status_path(s->conf->status, task_id, LADDERD_STATUS_JSON,
		path, sizeof(path)) < 0 ||
	    ladderd_ctx_load(path, &st) < 0)
		return NULL;
	return st;
}

/* A task ended in `state`: count it, and its rungs' encode figures. */
static void
sup_count_end(struct sup *s, const char *task_id, const char *state)
{
	cJSON *st = sup_task_status(s, task_id);

	if (strcmp(state, "complete") == 0)
		s->metrics.complete++;
	else if (strcmp(state, "failed") == 0)
		s->metrics.failed++;
	else if (strcmp(state, "cancelled") == 0)
		s->metrics.cancelled++;
	if (st != NULL)
		ladderd_metrics_rungs(&s->metrics, st);
	cJSON_Delete(st);
}

/* status/_metrics.prom (metrics.h) from the counters and what is now. */
static void
sup_write_metrics(struct sup *s)
{
	struct ladderd_metrics_gauges g = { .running_jobs = s->njobs };
	struct ladderd_marker *q = NULL;
	cJSON *notify = NULL;
	char path[PATH_MAX];
	int rc;

	(void)ladderd_spool_list(s->conf->spool, "queue", &q, &g.queue_length);
	free(q);
	q = NULL;
	(void)ladderd_spool_list(s->conf->spool, "deferred", &q, &g.deferred);
	free(q);
	/* Bounded by max_jobs files, at most once a second. */
	for (int i = 0; i < s->njobs; i++) {
		cJSON *st = sup_task_status(s, s->jobs[i].task_id);

		g.running_units += ladderd_metrics_running_units(st);
		cJSON_Delete(st);
	}
	if (snprintf(path, sizeof(path), "%s/_notify.json", s->conf->status) <
	    (int)sizeof(path))
		(void)ladderd_ctx_load(path, &notify);
	g.notify = notify;
	if ((rc = ladderd_metrics_write(&s->metrics, &g, s->conf->status)) < 0)
		log_warnx("cannot write '%s/_metrics.prom': %s",
		    s->conf->status, strerror(-rc));
	cJSON_Delete(notify);
	s->metrics_dirty = 0;
	s->metrics_at = ladderd_clock_mono_us();
}

static int
sup_take(void *arg, const char *dir, const char *name, const char *profile)
{
	struct sup *s = arg;
	struct ladderd_ingest_result res;
	int rc = ladderd_ingest_drop(s->conf, dir, name, profile, &res);

	if (rc < 0) {
		log_warnx("cannot take '%s/%s': %s; trying again later", dir,
		    name, strerror(-rc));
		return rc;
	}
	if (res.queued) {
		s->metrics.queued++;
		log_info("job=%s: queued '%s'", res.task_id, name);
	} else if (res.task_id[0]) {
		s->metrics.refused++;
		s->metrics.failed++;
		log_warnx("job=%s: refused '%s': %s", res.task_id, name,
		    res.error);
	}
	s->dirty = 1;
	return 0;
}

static void
sup_child_setup(const sigset_t *none)
{
	/* Own process group; die with the daemon (a kill -9 included). */
	(void)setpgid(0, 0);
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	(void)sigprocmask(SIG_SETMASK, none, NULL);
}

/* fork + exec `ladderd CMD [-v] [-c FILE] [ARG [ARG2]]` as our child. */
static pid_t
sup_spawn(struct sup *s, const char *cmd, const char *arg, const char *arg2)
{
	char *argv[8];
	sigset_t none;
	pid_t pid;
	int i = 0;

	argv[i++] = (char *)"ladderd";
	argv[i++] = (char *)cmd;
	if (s->verbose)
		argv[i++] = (char *)"-v";
	if (s->conf_file) {
		argv[i++] = (char *)"-c";
		argv[i++] = s->snapshot;
	}
	if (arg)
		argv[i++] = (char *)arg;
	if (arg && arg2)
		argv[i++] = (char *)arg2;
	argv[i] = NULL;
	sigemptyset(&none);
	/*
	 * The webhook worker reads SIGHUP (reload) from a signalfd: blocked
	 * from birth, one sent before it got there waits instead of killing
	 * it.
	 */
	if (strcmp(cmd, "notify") == 0)
		sigaddset(&none, SIGHUP);
	if ((pid = fork()) != 0)
		return pid;
	sup_child_setup(&none);
	if (getppid() == 1)
		_exit(LADDERD_EXIT_TEMPFAIL); /* the daemon died before PDEATHSIG */
	if (ladderd_tokens_export(&s->tokens) < 0 ||
	    (s->conf_file && setenv("LADDERD_CONF_DIR", s->conf_dir, 1) < 0))
		_exit(127);
	/* The notify worker signals SIGUSR1 when _notify.json changed. */
	if (strcmp(cmd, "notify") == 0 &&
	    setenv("LADDERD_NOTIFY_TELL_PARENT", "1", 1) < 0)
		_exit(127);
	/* The webhook worker is its own, separately linked program. */
	execv(strcmp(cmd, "notify") == 0 ?
		ladderd_exe_helper("ladderd-notify") :
		ladderd_exe_path(),
	    argv);
	_exit(127);
}

static void
sup_start_notify(struct sup *s)
{
	if (s->notify_pid > 0 || s->stopping)
		return;
	if ((s->notify_pid = sup_spawn(s, "notify", NULL, NULL)) < 0) {
		log_warn("cannot start the webhook worker");
		s->notify_pid = 0;
		s->notify_restart_at = ladderd_clock_mono_us() + NOTIFY_RESTART_US;
	}
}

/*
 * Whether the task in `tdir` still has to fetch its source: a URL source
 * not fetched yet (ctx.fetched, set by a fetch job). Such a task runs
 * first in a download slot, so a slow server never holds an encoding slot.
 */
static int
sup_needs_fetch(const char *tdir)
{
	char p[PATH_MAX];
	cJSON *c = NULL;
	int needs;

	if (ladderd_ctx_work_path(tdir, LADDERD_PATH_CLAIM, NULL, p,
		sizeof(p)) < 0 ||
	    ladderd_ctx_load(p, &c) < 0)
		return 0;
	needs = strstr(ladderd_ctx_str(c, "source", ""), "://") != NULL;
	cJSON_Delete(c);
	c = NULL;
	if (!needs)
		return 0;
	if (ladderd_ctx_load_task(tdir, &c) < 0)
		return 1;
	needs = !ladderd_ctx_bool(c, "fetched", 0);
	cJSON_Delete(c);
	return needs;
}

/* Binary search of the hints: true if found; *ret_pos = index or insert. */
static int
sup_hint_find(const struct sup *s, const char *task_id, size_t *ret_pos)
{
	size_t lo = 0, hi = s->nhints;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->hints[mid].task_id, task_id);

		if (c == 0) {
			*ret_pos = mid;
			return 1;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_pos = lo;
	return 0;
}

/*
 * sup_needs_fetch(), remembered per task: the queue is looked at on every
 * loop iteration, and reading each queued task's files every time made a
 * burst of 1000 drops crawl. Only a fetch job changes the answer (to 0).
 */
static int
sup_hint(struct sup *s, const char *task_id, const char *tdir)
{
	struct fetch_hint *nh;
	size_t pos;
	int fetch;

	if (sup_hint_find(s, task_id, &pos))
		return s->hints[pos].fetch;
	fetch = sup_needs_fetch(tdir);
	if (strlen(task_id) >= sizeof(nh->task_id) ||
	    (nh = realloc(s->hints, (s->nhints + 1) * sizeof(*nh))) == NULL)
		return fetch; /* not remembered: looked up again next time */
	s->hints = nh;
	memmove(&nh[pos + 1], &nh[pos], (s->nhints - pos) * sizeof(*nh));
	snprintf(nh[pos].task_id, sizeof(nh[pos].task_id), "%s", task_id);
	nh[pos].fetch = fetch;
	s->nhints++;
	return fetch;
}

/* The task left the queue for good, or was fetched (`fetched`). */
static void
sup_hint_update(struct sup *s, const char *task_id, int fetched)
{
	size_t pos;

	if (!sup_hint_find(s, task_id, &pos))
		return;
	if (fetched) {
		s->hints[pos].fetch = 0;
		return;
	}
	memmove(&s->hints[pos], &s->hints[pos + 1],
	    (s->nhints - pos - 1) * sizeof(*s->hints));
	s->nhints--;
}

/*
 * Start jobs from the queue, FIFO per kind: encoding jobs up to max_jobs,
 * fetch jobs (a URL source not fetched yet) up to max_downloads. A task
 * whose kind is full is passed over, so neither kind waits for the other.
 */
static void
sup_start_jobs(struct sup *s)
{
	struct ladderd_marker *q = NULL;
	size_t n = 0;
	int nfetch = 0;

	for (int i = 0; i < s->njobs; i++)
		nfetch += s->jobs[i].fetch;
	if (s->stopping || (s->njobs - nfetch >= s->conf->max_jobs &&
			       nfetch >= s->conf->max_downloads))
		return;
	if (ladderd_spool_list(s->conf->spool, "queue", &q, &n) < 0)
		return;
	for (size_t i = 0; i < n && s->njobs < MAX_JOBS; i++) {
		struct running_job *j = &s->jobs[s->njobs];
		char tdir[PATH_MAX];
		int rc, fetch;

		if (s->njobs - nfetch >= s->conf->max_jobs &&
		    nfetch >= s->conf->max_downloads)
			break;
		if (ladderd_spool_path(s->conf->spool, "tasks", q[i].task_id,
			tdir, sizeof(tdir)) < 0)
			continue;
		fetch = sup_hint(s, q[i].task_id, tdir);
		if (fetch ? nfetch >= s->conf->max_downloads :
			    s->njobs - nfetch >= s->conf->max_jobs)
			continue;
		if ((rc = ladderd_spool_move(s->conf->spool, "queue", q[i].name,
			 "active", q[i].name)) < 0) {
			log_warnx("job=%s: cannot activate: %s", q[i].task_id,
			    strerror(-rc));
			continue;
		}
		LADDERD_CRASH_POINT("supervisor.activated", NULL);
		snprintf(j->marker, sizeof(j->marker), "%s", q[i].name);
		snprintf(j->task_id, sizeof(j->task_id), "%s", q[i].task_id);
		j->fetch = fetch;
		j->cancelled = 0;
		if ((j->pid = sup_spawn(s, "job", tdir,
			 fetch ? "fetch" : NULL)) < 0) {
			log_warn("job=%s: cannot fork", j->task_id);
			(void)ladderd_spool_move(s->conf->spool, "active",
			    q[i].name, "queue", q[i].name);
			break;
		}
		log_info("job=%s: started%s (pid %ld)", j->task_id,
		    fetch ? " to fetch the source" : "", (long)j->pid);
		s->njobs++;
		nfetch += fetch;
		s->dirty = 1;
	}
	free(q);
}

/*
 * Bump a counter of claim.json ("attempts": crashes, "retries": transient
 * failures); returns the new count.
 */
static int
sup_bump_attempts(const char *tdir, const char *key)
{
	char p[PATH_MAX];
	cJSON *c = NULL;
	int n;

	if (ladderd_ctx_work_path(tdir, LADDERD_PATH_CLAIM, NULL, p,
		sizeof(p)) < 0 ||
	    ladderd_ctx_load(p, &c) < 0)
		return 1;
	n = (int)ladderd_ctx_num(c, key, 0) + 1;
	ladderd_ctx_set(c, key, cJSON_CreateNumber(n));
	(void)ladderd_ctx_save(c, p);
	cJSON_Delete(c);
	return n;
}

/*
 * A task failed for good: failed folder, and a failed status if needed
 * (`why`: the job did not say so itself; the error is {stage, why} and
 * `fields` go into the event).
 */
static void
sup_fail(struct sup *s, const char *task_id, const char *tdir,
    const char *stage, const char *why, const cJSON *fields)
{
	cJSON *ctx = NULL;
	const char *msg = why;

	(void)ladderd_ctx_load_task(tdir, &ctx);
	if (ctx && why) {
		/* The job died without saying so: tell the status. */
		ladderd_ctx_set_error(ctx, stage, NULL, why);
		ladderd_ctx_set(ladderd_ctx_obj(ctx, "task"), "state",
		    cJSON_CreateString("failed"));
		(void)ladderd_status_emit(ctx, fields, NULL);
	}
	if (ctx && !why) {
		stage = ladderd_ctx_str(ctx, "error.stage", "engine");
		msg = ladderd_ctx_str(ctx, "error.message", "failed");
	}
	if (ladderd_failed_task(s->conf, task_id, tdir, stage,
		msg ? msg : "failed") < 0)
		log_warnx("job=%s: cannot move the task to the failed folder",
		    task_id);
	cJSON_Delete(ctx);
}

static void
sup_fail_task(struct sup *s, struct running_job *j, const char *tdir,
    const char *why)
{
	sup_fail(s, j->task_id, tdir, "engine", why, NULL);
}

/* `ladderd cancel`: the task ends failed, reason "cancelled". */
static void
sup_fail_cancelled(struct sup *s, const char *task_id, const char *tdir)
{
	cJSON *f = cJSON_CreateObject();

	if (f)
		cJSON_AddStringToObject(f, "reason", "cancelled");
	sup_fail(s, task_id, tdir, "operator", "cancelled", f);
	cJSON_Delete(f);
	log_info("job=%s: cancelled, moved to the failed folder", task_id);
}

/*
 * A task deferred after a transient failure (a full disk, the network):
 * its status says why and when it runs again, with the state it waits in
 * ("queued") and the error its job left in the checkpoint.
 */
static void
sup_defer_status(const char *tdir, uint64_t delay_ms)
{
	char p[PATH_MAX], when[32];
	cJSON *ctx = NULL, *f = NULL;
	time_t at = time(NULL) + (time_t)(delay_ms / 1000u);
	struct tm tm;

	/* Loaded and saved back: the path is needed. */
	if (ladderd_ctx_work_path(tdir, LADDERD_PATH_CONTEXT, NULL, p,
		sizeof(p)) < 0 ||
	    ladderd_ctx_load(p, &ctx) < 0)
		return;
	gmtime_r(&at, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if ((f = cJSON_CreateObject()) != NULL &&
	    cJSON_AddStringToObject(f, "retry_at", when) != NULL) {
		ladderd_ctx_set(ladderd_ctx_obj(ctx, "task"), "state",
		    cJSON_CreateString("queued"));
		/* The job resumes in "queued", so it reports its next state. */
		(void)ladderd_ctx_save(ctx, p);
		(void)ladderd_status_emit(ctx, f, NULL);
	}
	cJSON_Delete(f);
	cJSON_Delete(ctx);
}

/*
 * A job that died (kill -9, crash) leaves the shared memory its stages
 * listed (ctx.cleanup.shm) in /dev/shm: remove it, it can be large.
 */
static void
sup_remove_ring(const char *tdir)
{
	cJSON *ctx = NULL;

	if (ladderd_ctx_load_task(tdir, &ctx) < 0)
		return;
	ladderd_ctx_unlink_shm(ctx);
	cJSON_Delete(ctx);
}

/* The task's last error message (ctx.error.message), or a stand-in. */
static void
sup_last_error(const char *tdir, char *buf, size_t size)
{
	cJSON *ctx = NULL;

	snprintf(buf, size, "a transient failure");
	if (ladderd_ctx_load_task(tdir, &ctx) == 0)
		snprintf(buf, size, "%s",
		    ladderd_ctx_str(ctx, "error.message", "a transient failure"));
	cJSON_Delete(ctx);
}

static void
sup_job_ended(struct sup *s, struct running_job *j, int status)
{
	char tdir[PATH_MAX], why[512];
	const char *sp = s->conf->spool;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

	if (ladderd_spool_path(sp, "tasks", j->task_id, tdir,
		sizeof(tdir)) < 0)
		return;
	if (code != 0 || j->cancelled)
		sup_remove_ring(tdir);
	if (j->cancelled && !(code == LADDERD_EXIT_OK && !j->fetch)) {
		/* Stopped on `ladderd cancel` (or it ended on its own). */
		sup_fail_cancelled(s, j->task_id, tdir);
		sup_count_end(s, j->task_id, "cancelled");
		(void)ladderd_spool_remove(sp, "active", j->marker);
		sup_hint_update(s, j->task_id, 0); /* gone for good */
	} else if (code == LADDERD_EXIT_OK && j->fetch) {
		/* Fetched: on to an encoding slot, keeping its place. */
		(void)ladderd_spool_move(sp, "active", j->marker, "queue",
		    j->marker);
		sup_hint_update(s, j->task_id, 1);
		log_info("job=%s: source fetched, queued for encoding",
		    j->task_id);
	} else if (code == LADDERD_EXIT_OK) {
		char what[PATH_MAX * 2 + 256], gone[PATH_MAX];

		LADDERD_CRASH_POINT("supervisor.job_complete", NULL);
		/*
		 * Marker first: a crash after it leaves a task whose job
		 * runs again and finds nothing to do. The folder leaves
		 * tasks/ in one rename, so a crash in the middle of removing
		 * it never leaves half a task (tmp/ is emptied at start).
		 */
		(void)ladderd_spool_remove(sp, "active", j->marker);
		/* keep_source: archive the drop, or delete it with tdir. */
		if (ladderd_ingest_complete_task(s->conf, j->task_id, tdir,
			what, sizeof(what)) < 0) {
			log_warnx("job=%s: complete; %s", j->task_id, what);
		} else {
			if (snprintf(gone, sizeof(gone), "%s/tmp/%s.done", sp,
				j->task_id) < (int)sizeof(gone) &&
			    rename(tdir, gone) == 0)
				(void)ladderd_fsutil_rmtree(gone);
			else
				(void)ladderd_fsutil_rmtree(tdir);
			log_info("job=%s: complete; %s", j->task_id, what);
		}
		sup_count_end(s, j->task_id, "complete");
		sup_hint_update(s, j->task_id, 0); /* gone for good */
	} else if (code == LADDERD_EXIT_FAIL) {
		sup_fail_task(s, j, tdir, NULL);
		sup_count_end(s, j->task_id, "failed");
		(void)ladderd_spool_remove(sp, "active", j->marker);
		sup_hint_update(s, j->task_id, 0); /* gone for good */
		log_info("job=%s: failed, moved to the failed folder",
		    j->task_id);
	} else if (s->stopping) {
		(void)ladderd_spool_move(sp, "active", j->marker, "queue",
		    j->marker);
		log_info("job=%s: stopped, resumes at the next start",
		    j->task_id);
	} else if (code == LADDERD_EXIT_TEMPFAIL) {
		int n = sup_bump_attempts(tdir, "retries");
		uint64_t delay = (uint64_t)s->conf->retry_delay * 1000u
		    << (n < 7 ? n - 1 : 6);
		char name[200];

		if (n > s->conf->max_retries) {
			/* A failure that never goes away is a failure. */
			sup_last_error(tdir, name, sizeof(name));
			snprintf(why, sizeof(why), "gave up after %d transient "
			    "failures (max_retries): %s", n, name);
			log_warnx("job=%s: %s", j->task_id, why);
			sup_fail_task(s, j, tdir, why);
			sup_count_end(s, j->task_id, "failed");
			(void)ladderd_spool_remove(sp, "active", j->marker);
			sup_hint_update(s, j->task_id, 0); /* gone for good */
			goto out;
		}
		if (delay > DEFER_MAX_MS)
			delay = DEFER_MAX_MS;
		snprintf(name, sizeof(name), "%013llu-%s",
		    (unsigned long long)(ladderd_clock_wall_ms() + delay), j->marker);
		(void)ladderd_spool_move(sp, "active", j->marker, "deferred",
		    name);
		s->metrics.deferred++;
		log_info("job=%s: transient failure, retrying in %llu s",
		    j->task_id, (unsigned long long)delay / 1000);
		sup_defer_status(tdir, delay);
	} else {
		int n = sup_bump_attempts(tdir, "attempts");

		if (WIFSIGNALED(status))
			snprintf(why, sizeof(why), "job process killed by "
			    "signal %d (%s)", WTERMSIG(status),
			    strsignal(WTERMSIG(status)));
		else
			snprintf(why, sizeof(why), "job process exited with "
			    "status %d", code);
		if (n >= CRASH_LIMIT) {
			log_warnx("job=%s: %s, %d times: failing it",
			    j->task_id, why, n);
			sup_fail_task(s, j, tdir, why);
			(void)ladderd_spool_remove(sp, "active", j->marker);
			sup_hint_update(s, j->task_id, 0); /* gone for good */
		} else {
			log_warnx("job=%s: %s; requeued", j->task_id, why);
			(void)ladderd_spool_move(sp, "active", j->marker,
			    "queue", j->marker);
		}
	}
out:
	*j = s->jobs[--s->njobs];
	s->dirty = 1;
	sup_refill_tokens(s);
}

/* The last state status/<id>/status.json says, or "" when none. */
static void
sup_task_state(const struct sup *s, const char *id, char *buf, size_t size)
{
	char p[PATH_MAX];
	cJSON *st = NULL;

	buf[0] = '\0';
	if (ladderd_status_path(s->conf->status, id, LADDERD_STATUS_JSON, p,
		sizeof(p)) == 0 &&
	    ladderd_ctx_load(p, &st) == 0)
		snprintf(buf, size, "%s", ladderd_ctx_str(st, "state", ""));
	cJSON_Delete(st);
}

/*
 * `ladderd cancel`: a running task's job gets SIGTERM (its rungs are
 * cancelled through their runner, local or cluster) and the task fails
 * with reason "cancelled" when the job has stopped (sup_job_ended); a
 * queued or deferred one leaves the queue and fails now.
 */
static int
sup_cancel(struct sup *s, const char *id, char *msg, size_t size)
{
	static const char *const states[2] = { "queue", "deferred" };
	char tdir[PATH_MAX], state[32];

	for (int i = 0; i < s->njobs; i++) {
		struct running_job *j = &s->jobs[i];

		if (strcmp(j->task_id, id) != 0)
			continue;
		if (!j->cancelled) {
			j->cancelled = 1;
			(void)kill(-j->pid, SIGTERM);
			log_info("job=%s: cancel requested, stopping it", id);
		}
		snprintf(msg, size, "task '%s' is being stopped; it ends "
		    "failed (cancelled)", id);
		return 1;
	}
	if (ladderd_spool_path(s->conf->spool, "tasks", id, tdir,
		sizeof(tdir)) < 0)
		return 0;
	for (int k = 0; k < 2; k++) {
		struct ladderd_marker *v = NULL;
		size_t n = 0;

		if (ladderd_spool_list(s->conf->spool, states[k], &v, &n) < 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(v[i].task_id, id) != 0 ||
			    ladderd_spool_remove(s->conf->spool, states[k],
				v[i].name) < 0)
				continue;
			free(v);
			sup_fail_cancelled(s, id, tdir);
			sup_hint_update(s, id, 0);
			s->dirty = 1;
			snprintf(msg, size, "task '%s' cancelled (it was %s)",
			    id, k == 0 ? "queued" : "deferred");
			return 1;
		}
		free(v);
	}
	sup_task_state(s, id, state, sizeof(state));
	if (state[0] && (strcmp(state, "complete") == 0 ||
			    strcmp(state, "failed") == 0))
		snprintf(msg, size, "task '%s' is already %s", id, state);
	else
		snprintf(msg, size, "no queued or running task '%s'", id);
	return 0;
}

/* `ladderd retry`: a failed task is queued again under its id. */
static int
sup_retry(struct sup *s, const char *id, char *msg, size_t size)
{
	char state[32];

	for (int i = 0; i < s->njobs; i++)
		if (strcmp(s->jobs[i].task_id, id) == 0) {
			snprintf(msg, size, "task '%s' is running", id);
			return 0;
		}
	sup_task_state(s, id, state, sizeof(state));
	if (strcmp(state, "complete") == 0) {
		snprintf(msg, size, "task '%s' is complete", id);
		return 0;
	}
	if (ladderd_ingest_retry_task(s->conf, id, msg, size) < 0)
		return 0;
	log_info("job=%s: queued again on request (retry)", id);
	s->dirty = 1;
	return 1;
}

static int
sup_request(void *arg, const char *verb, const char *id, char *msg,
    size_t size)
{
	struct sup *s = arg;

	if (strcmp(verb, "cancel") == 0)
		return sup_cancel(s, id, msg, size);
	if (strcmp(verb, "retry") == 0)
		return sup_retry(s, id, msg, size);
	snprintf(msg, size, "unknown request '%s'", verb);
	return 0;
}

static void
sup_reap(struct sup *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == s->notify_pid) {
			s->notify_pid = 0;
			if (!s->stopping) {
				log_warnx("webhook worker ended (status %d), "
					  "restarting it",
				    status);
				s->notify_restart_at = ladderd_clock_mono_us() +
				    NOTIFY_RESTART_US;
			}
			continue;
		}
		for (int i = 0; i < s->njobs; i++) {
			if (s->jobs[i].pid == pid) {
				sup_job_ended(s, &s->jobs[i], status);
				break;
			}
		}
	}
}

/* Move deferred tasks whose time has come back to the queue. */
static uint64_t
sup_release_deferred(struct sup *s)
{
	struct ladderd_marker *v = NULL;
	size_t n = 0;
	uint64_t now = ladderd_clock_wall_ms(), next = 0;

	if (ladderd_spool_list(s->conf->spool, "deferred", &v, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const char *orig = strchr(v[i].name, '-');

		if (v[i].due_ms > now) {
			if (next == 0 || v[i].due_ms < next)
				next = v[i].due_ms;
			continue;
		}
		if (orig && ladderd_spool_move(s->conf->spool, "deferred",
				v[i].name, "queue", orig + 1) == 0)
			s->dirty = 1;
	}
	free(v);
	return next ? ladderd_clock_mono_us() + (next - now) * 1000u : 0;
}

/*
 * Keep a copy of the config file the daemon runs in the spool: workers
 * read that, so a broken edit the daemon refused never reaches them.
 */
static int
sup_snapshot_conf(struct sup *s)
{
	char *text = NULL;
	int rc;

	if (s->conf_file == NULL)
		return 0;
	if (realpath(s->conf_file, s->conf_dir) == NULL)
		return -errno;
	if (strrchr(s->conf_dir, '/'))
		*strrchr(s->conf_dir, '/') = '\0';
	if ((rc = ladderd_spool_path(s->conf->spool, "running.conf", NULL,
		 s->snapshot, sizeof(s->snapshot))) < 0 ||
	    (rc = ladderd_fsutil_read(s->conf_file, 1u << 24, &text, NULL)) < 0)
		return rc;
	/* It may hold notify.secret: readable by ladderd alone. */
	rc = ladderd_fsutil_write_atomic_mode(s->snapshot, text, strlen(text),
	    0600);
	free(text);
	return rc;
}

static void
sup_reload(struct sup *s)
{
	struct ladderd_conf *nc = NULL;
	int notify_changed;
	struct ladderd_watchset *nws;
	char err[1024];

	if (s->conf_file == NULL)
		return;
	ladderd_sdnotify_reloading();
	if (ladderd_conf_load(s->conf_file, &nc, err, sizeof(err)) < 0 ||
	    ladderd_settings_check(nc, true, err, sizeof(err)) < 0) {
		ladderd_conf_free(nc);
		log_warnx("config not reloaded, keeping the running one: %s",
		    err);
		snprintf(s->conf_error, sizeof(s->conf_error), "%s", err);
		s->metrics.config_errors++;
		s->dirty = 1;
		ladderd_sdnotify_ready();
		return;
	}
	if (strcmp(nc->spool, s->conf->spool) != 0)
		log_warnx("a new spool folder takes effect at restart, "
			  "ignoring");
	if (strcmp(nc->user, s->conf->user) != 0)
		log_warnx("a new 'user' takes effect at restart, ignoring");
	if ((nws = ladderd_watch_new(nc, s->conf_file)) == NULL) {
		log_warnx("config not reloaded: cannot set up the watches");
		ladderd_conf_free(nc);
		ladderd_sdnotify_ready();
		return;
	}
	if (strcmp(nc->spool, s->conf->spool) != 0) {
		free(nc->spool);
		nc->spool = strdup(s->conf->spool);
	}
	(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, ladderd_watch_fd(s->ws), NULL);
	ladderd_watch_free(s->ws);
	s->ws = nws;
	{
		struct epoll_event ev = { .events = EPOLLIN,
			.data.fd = ladderd_watch_fd(nws) };

		(void)epoll_ctl(s->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
	}
	LADDERD_CRASH_POINT("supervisor.reload", NULL);
	notify_changed = !cJSON_Compare(s->conf->notify, nc->notify, 1);
	ladderd_conf_free(s->conf);
	s->conf = nc;
	(void)umask(s->conf->umask);
	if (sup_snapshot_conf(s) < 0)
		log_warn("cannot write the config snapshot for workers");
	/*
	 * The webhook worker runs for good: it re-reads the snapshot on
	 * SIGHUP (a rotated secret or a new URL must not wait for a restart),
	 * sent only when `notify` changed, since a reload also retries what
	 * waits in backoff. Jobs read the snapshot when they start.
	 */
	if (s->notify_pid > 0 && notify_changed)
		(void)kill(s->notify_pid, SIGHUP);
	s->conf_loaded = time(NULL);
	s->conf_error[0] = '\0';
	sup_refill_tokens(s);
	s->dirty = 1;
	log_info("config reloaded from '%s'", s->conf_file);
	ladderd_sdnotify_ready();
}

static void
sup_stop(struct sup *s)
{
	if (s->stopping)
		return;
	s->stopping = 1;
	ladderd_sdnotify_stopping();
	s->stop_deadline = ladderd_clock_mono_us() +
	    (uint64_t)s->conf->shutdown_timeout * 1000000u;
	log_info("stopping: %d job(s) to stop", s->njobs);
	for (int i = 0; i < s->njobs; i++)
		(void)kill(-s->jobs[i].pid, SIGTERM);
	if (s->notify_pid > 0)
		(void)kill(s->notify_pid, SIGTERM);
	s->dirty = 1;
}

static void
sup_arm_timer(struct sup *s, uint64_t at)
{
	struct itimerspec its = { 0 };
	uint64_t now = ladderd_clock_mono_us();

	if (at) {
		uint64_t d = at > now ? at - now : 1;

		its.it_value.tv_sec = (time_t)(d / 1000000u);
		its.it_value.tv_nsec = (long)(d % 1000000u) * 1000;
	}
	(void)timerfd_settime(s->tfd, 0, &its, NULL);
}

static uint64_t
earliest(uint64_t a, uint64_t b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

/* Complete claims interrupted before their queue marker was written. */
static void
sup_recover_tasks(struct sup *s)
{
	char tasks[PATH_MAX];
	struct ladderd_marker *v[3] = { 0 };
	size_t n[3] = { 0 };
	static const char *const states[3] = { "queue", "active", "deferred" };
	DIR *d;
	struct dirent *de;
	size_t requeued = 0;

	if (ladderd_spool_recover(s->conf->spool, &requeued) == 0 && requeued)
		log_info("resuming %zu task(s) that were running", requeued);
	/* Leftovers of copies and removals a crash cut short. */
	if (ladderd_spool_path(s->conf->spool, "tmp", NULL, tasks,
		sizeof(tasks)) == 0 &&
	    (d = opendir(tasks)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			char p[PATH_MAX];

			if (strcmp(de->d_name, ".") != 0 &&
			    strcmp(de->d_name, "..") != 0 &&
			    snprintf(p, sizeof(p), "%s/%s", tasks, de->d_name) <
				(int)sizeof(p))
				(void)ladderd_fsutil_rmtree(p);
		}
		closedir(d);
	}
	if (ladderd_spool_path(s->conf->spool, "tasks", NULL, tasks,
		sizeof(tasks)) < 0 ||
	    (d = opendir(tasks)) == NULL)
		return;
	for (int k = 0; k < 3; k++)
		(void)ladderd_spool_list(s->conf->spool, states[k], &v[k], &n[k]);
	while ((de = readdir(d)) != NULL) {
		char tdir[PATH_MAX], p[PATH_MAX];
		int known = 0;
		struct stat st;

		if (!ladderd_ctx_valid_name(de->d_name))
			continue;
		for (int k = 0; k < 3; k++)
			for (size_t i = 0; i < n[k]; i++)
				known |= strcmp(v[k][i].task_id, de->d_name) ==
				    0;
		if (known)
			continue;
		if (snprintf(tdir, sizeof(tdir), "%s/%s", tasks, de->d_name) >=
			(int)sizeof(tdir) ||
		    ladderd_ctx_work_path(tdir, LADDERD_PATH_CONTEXT, NULL, p,
			sizeof(p)) < 0)
			continue;
		if (stat(p, &st) == 0) {
			log_info("job=%s: claim was interrupted, queueing it",
			    de->d_name);
			(void)ladderd_spool_enqueue(s->conf->spool, de->d_name);
		} else if (ladderd_ingest_give_back(tdir) == 0) {
			/*
			 * Claimed (maybe) but no context, status or marker
			 * yet: the drop went back where it came from and is
			 * taken again as a new drop.
			 */
			log_info("job=%s: claim was interrupted before the task "
				 "existed, the drop is taken again",
			    de->d_name);
		} else {
			log_warnx("job=%s: incomplete claim, moving it to the "
				  "failed folder",
			    de->d_name);
			(void)ladderd_failed_task(s->conf, de->d_name, tdir,
			    "ingest", "the daemon stopped while claiming this "
				      "drop; drop it again");
		}
	}
	closedir(d);
	for (int k = 0; k < 3; k++)
		free(v[k]);
}

static int
sup_setup(struct sup *s)
{
	sigset_t mask;
	struct epoll_event ev = { .events = EPOLLIN };
	long owner = 0;
	int rc;

	(void)umask(s->conf->umask);
	if ((rc = ladderd_spool_init(s->conf->spool)) < 0) {
		log_warnx("cannot create spool '%s': %s", s->conf->spool,
		    strerror(-rc));
		return -1;
	}
	/* Tasks, the outbox (webhook URLs), the config snapshot: ours only. */
	if (chmod(s->conf->spool, 0700) < 0)
		log_warn("cannot make spool '%s' private (0700), ignoring",
		    s->conf->spool);
	if ((rc = ladderd_spool_lock(s->conf->spool, &s->lockfd, &owner)) < 0) {
		if (rc == -EBUSY)
			log_warnx("another ladderd (pid %ld) uses spool '%s'",
			    owner, s->conf->spool);
		else
			log_warnx("cannot lock spool '%s': %s", s->conf->spool,
			    strerror(-rc));
		return -1;
	}
	for (const char *d = s->conf->publish; d; d = NULL)
		if ((rc = ladderd_fsutil_mkdir_p(d, 0755)) < 0)
			log_warnx("cannot create '%s': %s", d, strerror(-rc));
	(void)ladderd_fsutil_mkdir_p(s->conf->status, 0755);
	(void)ladderd_fsutil_mkdir_p(s->conf->failed, 0755);
	for (size_t i = 0; i < s->conf->nwatches; i++)
		(void)ladderd_fsutil_mkdir_p(s->conf->watches[i].path, 0755);
	if (ladderd_tokens_init(&s->tokens, 0) < 0)
		return -1;
	sup_refill_tokens(s);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
	    (s->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    (s->tfd = timerfd_create(CLOCK_MONOTONIC,
		 TFD_CLOEXEC | TFD_NONBLOCK)) < 0 ||
	    (s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (s->ws = ladderd_watch_new(s->conf, s->conf_file)) == NULL) {
		log_warn("cannot set up the event loop");
		return -1;
	}
	ev.data.fd = s->sfd;
	(void)epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sfd, &ev);
	ev.data.fd = s->tfd;
	(void)epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->tfd, &ev);
	ev.data.fd = ladderd_watch_fd(s->ws);
	(void)epoll_ctl(s->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
	if ((s->rqfd = ladderd_request_watch(s->conf->spool)) < 0) {
		log_warnx("cannot watch '%s/requests': %s", s->conf->spool,
		    strerror(-s->rqfd));
		return -1;
	}
	ev.data.fd = s->rqfd;
	(void)epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->rqfd, &ev);
	s->requests_due = 1; /* made while no daemon ran */
	if ((rc = sup_snapshot_conf(s)) < 0) {
		log_warnx("cannot write the config snapshot: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

/*
 * Started as root with a `user`: become it now, after the set-up that may
 * need root, before any drop is read or worker started. The watch folders
 * are the operator's: say so when the user cannot take drops from them.
 */
static int
sup_drop_privileges(struct sup *s)
{
	char err[1024];
	int rc;

	if ((rc = ladderd_privdrop_drop(s->conf, err, sizeof(err))) < 0) {
		log_warnx("%s", err);
		return -1;
	}
	log_info("dropped root privileges: running as user '%s' (uid %ld, "
		 "gid %ld)",
	    s->conf->user, (long)getuid(), (long)getgid());
	for (size_t i = 0; i < s->conf->nwatches; i++)
		if (access(s->conf->watches[i].path, W_OK | X_OK) < 0)
			log_warn("user '%s' cannot take drops from '%s'",
			    s->conf->user, s->conf->watches[i].path);
	return 0;
}

/*
 * One turn of the loop before it waits: take what the watches collected,
 * serve requests, start jobs, restart the notify worker, write status
 * and metrics when due, and during a stop kill what outlived its
 * deadline. *ret_wake: when the loop must look again (0: not before an
 * event). Returns 1 when the daemon has stopped, else 0.
 */
static int
sup_work(struct sup *s, uint64_t *ret_wake)
{
	uint64_t now = ladderd_clock_mono_us(), wake;

	if (!s->stopping)
		s->watch_next = ladderd_watch_collect(s->ws, now, sup_take, s);
	if (s->requests_due && !s->stopping) {
		s->requests_due = 0;
		(void)ladderd_request_serve(s->conf->spool, sup_request, s);
	}
	wake = s->stopping ? 0 : s->watch_next;
	if (!s->stopping)
		wake = earliest(wake, sup_release_deferred(s));
	sup_start_jobs(s);
	if (s->notify_pid == 0 && !s->stopping && s->notify_restart_at &&
	    now >= s->notify_restart_at) {
		s->notify_restart_at = 0;
		sup_start_notify(s);
	}
	if (s->notify_restart_at && !s->stopping)
		wake = earliest(wake, s->notify_restart_at);
	if (s->dirty)
		sup_write_daemon_status(s);
	/* _metrics.prom: at most once a second, when changed. */
	if (s->metrics_dirty) {
		if (now >= s->metrics_at + METRICS_INTERVAL_US)
			sup_write_metrics(s);
		else
			wake = earliest(wake,
			    s->metrics_at + METRICS_INTERVAL_US);
	}
	wake = earliest(wake, ladderd_sdnotify_watchdog(now));
	if (s->stopping) {
		if (s->njobs == 0 && s->notify_pid == 0)
			return 1;
		if (now >= s->stop_deadline && !s->killed) {
			log_warnx("shutdown timeout: killing %d job(s)",
			    s->njobs);
			for (int i = 0; i < s->njobs; i++)
				(void)kill(-s->jobs[i].pid, SIGKILL);
			if (s->notify_pid > 0)
				(void)kill(s->notify_pid, SIGKILL);
			s->killed = 1;
		}
		if (!s->killed)
			wake = earliest(wake, s->stop_deadline);
	}
	*ret_wake = wake;
	return 0;
}

/* Descriptor fd of the epoll set is readable: drain it and act. */
static void
sup_event(struct sup *s, int fd)
{
	if (fd == s->rqfd) {
		char buf[4096];

		while (read(s->rqfd, buf, sizeof(buf)) > 0)
			;
		s->requests_due = 1;
	} else if (fd == s->tfd) {
		uint64_t x;

		while (read(s->tfd, &x, sizeof(x)) > 0)
			;
	} else if (fd == s->sfd) {
		struct signalfd_siginfo si;

		while (read(s->sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGCHLD)
				sup_reap(s);
			else if (si.ssi_signo == SIGHUP)
				sup_reload(s);
			else if (si.ssi_signo == SIGUSR1)
				s->dirty = 1; /* _notify.json */
			else
				sup_stop(s);
		}
		/* SIGCHLDs coalesce: always reap. */
		sup_reap(s);
	} else {
		(void)ladderd_watch_read(s->ws);
		if (ladderd_watch_conf_changed(s->ws))
			sup_reload(s);
	}
}

int
ladderd_supervisor_main(const char *conf_file, int verbose, int allow_root)
{
	enum ladderd_privdrop_plan plan;
	struct sup s = { .conf_file = conf_file, .verbose = verbose,
		.epfd = -1, .sfd = -1, .tfd = -1, .lockfd = -1, .rqfd = -1,
		.tokens = { -1, -1 } };
	char err[1024];
	int exit_code = 1, r;

	log_init(verbose);
	if ((r = ladderd_sdnotify_init()) < 0)
		log_warnx("systemd will get no notifications: %s",
		    r == -ENOENT ? "cannot load libsystemd.so.0" :
				   strerror(-r));
	/*
	 * Who we run as is decided first; then the stages' groups are
	 * checked by a worker, as that user (settings.c): no plugin code
	 * here, none as root unless --allow-root.
	 */
	if (ladderd_conf_load(conf_file, &s.conf, err, sizeof(err)) < 0 ||
	    ladderd_privdrop_plan(s.conf, allow_root, &plan, err,
		sizeof(err)) < 0 ||
	    ladderd_settings_check(s.conf, true, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		ladderd_conf_free(s.conf);
		return 1;
	}
	if (plan == LADDERD_PRIV_ROOT)
		log_warnx("RUNNING AS ROOT (--allow-root): every drop is parsed "
			  "by libavformat with full privileges; set 'user' in "
			  "the config to drop them");
	s.started = s.conf_loaded = time(NULL);
	s.metrics.started = s.started;
	if (sup_setup(&s) < 0)
		goto out;
	if (plan == LADDERD_PRIV_DROP && sup_drop_privileges(&s) < 0)
		goto out;
	sup_recover_tasks(&s);
	log_info("ladderd %s started: %zu watch folder(s), spool '%s'",
	    PACKAGE_VERSION, s.conf->nwatches, s.conf->spool);
	s.dirty = 1;
	sup_start_notify(&s);
	ladderd_sdnotify_ready();
	for (;;) {
		struct epoll_event evs[8];
		uint64_t wake;
		int n;

		if (sup_work(&s, &wake) > 0)
			break;
		sup_arm_timer(&s, wake);
		n = epoll_wait(s.epfd, evs, 8, -1);
		if (n < 0 && errno != EINTR) {
			log_warn("epoll_wait");
			break;
		}
		for (int i = 0; i < n; i++)
			sup_event(&s, evs[i].data.fd);
	}
	sup_write_daemon_status(&s);
	sup_write_metrics(&s);
	log_info("stopped");
	exit_code = 0;
out:
	ladderd_watch_free(s.ws);
	ladderd_tokens_release(&s.tokens);
	if (s.epfd >= 0)
		close(s.epfd);
	if (s.sfd >= 0)
		close(s.sfd);
	if (s.tfd >= 0)
		close(s.tfd);
	if (s.lockfd >= 0)
		close(s.lockfd);
	if (s.rqfd >= 0)
		close(s.rqfd);
	ladderd_conf_free(s.conf);
	free(s.hints);
	return exit_code;
}

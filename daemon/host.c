/*
 * host.c - the services a stage receives in struct ladderd_call, and the
 * call sequence around run(). Progress events are rate-limited here (one
 * per second per process, plus the final 1.0) so a stage may report as
 * often as it likes.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctx.h"
#include "fsutil.h"
#include "host.h"
#include "log.h"
#include "status.h"

volatile sig_atomic_t ladderd_host_cancel;

/*
 * Niceness this unit takes once its work is under way (see below). Per
 * thread: a unit a worker runs as a thread (rung.c) keeps its own, and
 * nice() on Linux changes the calling thread only.
 */
static _Thread_local int host_yield_pending;

#define PROGRESS_INTERVAL_US 1000000

struct host_call {
	struct ladderd_call call; /* first: stages see only this */
	char message[2048];
	int failed;
	uint64_t last_progress_us;
	double last_progress;
};

__attribute__((format(printf, 2, 3))) static void
host_fail(struct ladderd_call *call, const char *fmt, ...)
{
	struct host_call *hc = (struct host_call *)call;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(hc->message, sizeof(hc->message), fmt, ap);
	va_end(ap);
	hc->failed = 1;
}

__attribute__((format(printf, 3, 4))) static void
host_log(struct ladderd_call *call, int level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/*
	 * The rendition is in the process's log prefix (set by the rung
	 * worker, or by `ladderd stage`), not repeated here.
	 */
	switch (level) {
	case LADDERD_LOG_ERR:
	case LADDERD_LOG_WARN:
		log_warnx("stage=%s: %s", call->stage, msg);
		break;
	case LADDERD_LOG_INFO:
		log_info("stage=%s: %s", call->stage, msg);
		break;
	default:
		log_debug("stage=%s: %s", call->stage, msg);
	}
}

void
ladderd_host_yield_when_working(int niceness)
{
	host_yield_pending = niceness > 0 ? niceness : 0;
}

/*
 * The first progress report of a unit means its work is under way: a
 * lighter member of a shared decoder's group has attached to the ring by
 * then (a rung reports after its first frames), so it lowers its priority
 * now and not at its start, where a busy machine could starve it past the
 * ring's bounds for joining and it would decode on its own.
 */
static void
host_yield_now(void)
{
	int n = host_yield_pending;

	host_yield_pending = 0;
	errno = 0;
	if (nice(n) == -1 && errno != 0)
		log_warn("cannot lower this unit's priority");
	else
		log_debug("working: niceness +%d from now on", n);
}

static void
host_progress(struct ladderd_call *call, double fraction)
{
	struct host_call *hc = (struct host_call *)call;
	uint64_t now = ladderd_clock_mono_us();
	cJSON *fields;

	if (host_yield_pending > 0 && fraction > 0)
		host_yield_now();
	if (fraction < 0)
		fraction = 0;
	if (fraction > 1)
		fraction = 1;
	if (fraction < 1 && now - hc->last_progress_us < PROGRESS_INTERVAL_US)
		return;
	if (fraction == hc->last_progress && hc->last_progress_us != 0)
		return;
	hc->last_progress_us = now;
	hc->last_progress = fraction;
	if ((fields = cJSON_CreateObject()) == NULL)
		return;
	/* Two decimals are plenty and keep the lines short. */
	cJSON_AddNumberToObject(fields, "progress",
	    (double)(long)(fraction * 100 + 0.5) / 100);
	if (ladderd_status_emit(call->ctx, fields, NULL) < 0)
		log_debug("cannot write progress event, ignoring");
	cJSON_Delete(fields);
}

static int
host_path(struct ladderd_call *call, enum ladderd_path kind, const char *rung,
    char *buf, size_t size)
{
	return ladderd_ctx_path(call->ctx, kind, rung ? rung : call->rung, buf,
	    size);
}

static int
host_event(struct ladderd_call *call, const cJSON *fields)
{
	return ladderd_status_emit(call->ctx, fields, NULL);
}

static int
host_write_atomic(struct ladderd_call *call, const char *path,
    const void *data, size_t len)
{
	(void)call;
	return ladderd_fsutil_write_atomic(path, data, len);
}

static int
host_mkdirs(struct ladderd_call *call, const char *path)
{
	(void)call;
	return ladderd_fsutil_mkdir_p(path, 0755);
}

static int
host_commit_file(struct ladderd_call *call, const char *tmp,
    const char *path)
{
	(void)call;
	return ladderd_fsutil_commit(tmp, path);
}

static int
host_replace_dir(struct ladderd_call *call, const char *from, const char *to)
{
	(void)call;
	return ladderd_fsutil_replace_dir(from, to);
}

static int
host_chmod_tree(struct ladderd_call *call, const char *path, uint32_t dmode,
    uint32_t fmode)
{
	(void)call;
	return ladderd_fsutil_chmod_tree(path, (mode_t)dmode, (mode_t)fmode);
}

static int
host_cancelled(struct ladderd_call *call)
{
	(void)call;
	return ladderd_host_cancel != 0;
}

const char *
ladderd_host_rc_name(enum ladderd_rc rc)
{
	switch (rc) {
	case LADDERD_OK:
		return "ok";
	case LADDERD_SKIP:
		return "skip";
	case LADDERD_STOP:
		return "stop";
	case LADDERD_RETRY:
		return "retry";
	case LADDERD_FAIL:
		return "fail";
	}
	return "unknown";
}

/* ctx.error for a log line: "STAGE[ rendition=RUNG]: MESSAGE". */
void
ladderd_host_error_text(const cJSON *ctx, char *buf, size_t size)
{
	(void)snprintf(buf, size, "%s%s%s: %s",
	    ladderd_ctx_str(ctx, "error.stage", "?"),
	    ladderd_ctx_get(ctx, "error.rung") ? " rendition=" : "",
	    ladderd_ctx_str(ctx, "error.rung", ""),
	    ladderd_ctx_str(ctx, "error.message", "?"));
}

/* ctx.task.state = state; returns 1 when it changed, 0 if not, <0 error. */
int
ladderd_host_set_state(cJSON *ctx, const char *state)
{
	cJSON *task = ladderd_ctx_obj(ctx, "task");
	const char *cur = ladderd_ctx_str(ctx, "task.state", NULL);
	cJSON *s;

	if (task == NULL)
		return -ENOMEM;
	if (cur && strcmp(cur, state) == 0)
		return 0;
	s = cJSON_CreateString(state);
	if (ladderd_ctx_set(task, "state", s) < 0) {
		cJSON_Delete(s);
		return -ENOMEM;
	}
	return 1;
}

/*
 * Run one stage on ctx: merge `args` (borrowed, may be NULL), emit a state
 * event when the stage declares a new state, call init/run/fini. On
 * FAIL/RETRY, ctx.error = {stage, rung, message}. Never exits.
 */
enum ladderd_rc
ladderd_host_run_stage(const struct ladderd_plugin *plugin, const cJSON *args,
    cJSON *ctx, const char *rung, int threads)
{
	const struct ladderd_stage *d = plugin->desc;
	struct host_call hc = {
		.call = {
			.abi = LADDERD_STAGE_ABI_VERSION,
			.size = sizeof(struct ladderd_call),
			.ctx = ctx,
			.stage = d->name,
			.rung = rung,
			.fail = host_fail,
			.log = host_log,
			.progress = host_progress,
			.path = host_path,
			.event = host_event,
			.write_atomic = host_write_atomic,
			.cancelled = host_cancelled,
			.threads = threads,
			.mkdirs = host_mkdirs,
			.commit_file = host_commit_file,
			.replace_dir = host_replace_dir,
			.chmod_tree = host_chmod_tree,
		},
	};
	void *state = NULL;
	enum ladderd_rc rc;
	int err;

	if (ladderd_ctx_merge(ctx, args) < 0) {
		ladderd_ctx_set_error(ctx, d->name, rung,
		    "cannot merge the stage's arguments into the context");
		return LADDERD_FAIL;
	}
	/*
	 * A rung's events are about the rung, not about the task state; a
	 * context without a status folder (`ladderd stage`) has no events.
	 */
	if (d->state && rung == NULL &&
	    ladderd_ctx_str(ctx, "task.status_root", NULL) != NULL &&
	    ladderd_host_set_state(ctx, d->state) > 0 &&
	    ladderd_status_emit(ctx, NULL, NULL) < 0)
		log_warnx("stage=%s: cannot write status event, ignoring",
		    d->name);
	if (d->init && (err = d->init(args, &state)) < 0) {
		snprintf(hc.message, sizeof(hc.message),
		    "stage init failed: %s", strerror(-err));
		ladderd_ctx_set_error(ctx, d->name, rung, hc.message);
		return LADDERD_FAIL;
	}
	rc = d->run(state, &hc.call);
	if (d->fini)
		d->fini(state);
	switch (rc) {
	case LADDERD_OK:
	case LADDERD_SKIP:
	case LADDERD_STOP:
		break;
	case LADDERD_RETRY:
	case LADDERD_FAIL:
		ladderd_ctx_set_error(ctx, d->name, rung,
		    hc.failed ? hc.message : "stage failed without a message");
		break;
	default:
		ladderd_ctx_set_error(ctx, d->name, rung,
		    "stage returned an unknown code");
		rc = LADDERD_FAIL;
	}
	return rc;
}

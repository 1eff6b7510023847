/*
 * job.c - the job worker: `ladderd job [-c FILE] TASKDIR`, started by the
 * supervisor (fork + exec) for one queued task. It loads the task's
 * checkpoint (TASKDIR/context.json), runs the workflow with the engine
 * (which forks the rung workers) and exits with 0 (complete), 1 (failed:
 * the supervisor moves the task to the failed folder) or 75 (transient
 * failure or stopped: the supervisor requeues it). With "fetch" after
 * TASKDIR it only fetches the source (a download slot, see supervisor.c)
 * and exits 0 when the source is there. Rungs share the
 * daemon's jobserver, inherited through LADDERD_TOKENS.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "../stages/crashpoint.h"
#include "ctx.h"
#include "engine.h"
#include "exitcode.h"
#include "host.h"
#include "job.h"
#include "log.h"
#include "tokens.h"

static void
job_on_term(int sig)
{
	(void)sig;
	ladderd_host_cancel = 1;
}

int
ladderd_job_main(const char *conf_file, const char *task_dir, int verbose,
    int fetch)
{
	struct ladderd_conf *conf = NULL;
	struct ladderd_tokens tokens = { -1, -1 };
	struct sigaction sa = { .sa_handler = job_on_term };
	char err[2048], prefix[128];
	cJSON *ctx = NULL;
	enum ladderd_rc rc;
	int exit_code = LADDERD_EXIT_TEMPFAIL, r;

	log_init(verbose);
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	/*
	 * The supervisor passes a snapshot of the config it runs (so an edit
	 * that it refused never reaches a job) and the original folder for
	 * relative paths in LADDERD_CONF_DIR.
	 */
	r = ladderd_conf_load_as(conf_file, getenv("LADDERD_CONF_DIR"), &conf,
	    err, sizeof(err));
	if (r < 0) {
		log_warnx("%s", err);
		goto out;
	}
	if ((r = ladderd_ctx_load_task(task_dir, &ctx)) < 0) {
		log_warnx("cannot load the checkpoint of '%s': %s", task_dir,
		    strerror(-r));
		goto out;
	}
	LADDERD_CRASH_POINT("job.loaded", NULL);
	snprintf(prefix, sizeof(prefix), "job=%s: ",
	    ladderd_ctx_str(ctx, "task.id", "?"));
	log_set_prefix(prefix);
	if (ladderd_tokens_from_env(&tokens) < 0 &&
	    ladderd_tokens_init(&tokens, conf->max_rungs) < 0) {
		log_warnx("cannot set up the rung jobserver");
		goto out;
	}
	{
		struct ladderd_engine_opts eo = {
			.conf = conf,
			.tokens = &tokens,
			.fetch_only = fetch != 0,
		};

		rc = ladderd_engine_run(&eo, ctx);
	}
	switch (rc) {
	case LADDERD_OK:
		log_info(fetch ? "source fetched" : "complete");
		break;
	case LADDERD_FAIL:
		ladderd_host_error_text(ctx, err, sizeof(err));
		log_warnx("failed: %s", err);
		break;
	default:
		log_info("stopped, will resume: %s",
		    ladderd_ctx_str(ctx, "error.message", "interrupted"));
	}
	exit_code = ladderd_exit_of(rc);
out:
	ladderd_tokens_release(&tokens);
	cJSON_Delete(ctx);
	ladderd_conf_free(conf);
	return exit_code;
}

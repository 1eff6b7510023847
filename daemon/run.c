/*
 * run.c - `ladderd run [-c FILE] INPUT [-o DIR] [--task-id ID] [-p PROFILE]
 * [--replace]`: one task through the configured workflow, in this process
 * (the job process) with its rung workers. The package lands in
 * DIR/<task_id>/; the work folder and status live in DIR/.ladderd/ so the
 * final move is a rename on one file system. An existing DIR/<task_id> is
 * refused unless --replace. It sends no webhooks and says so when one is
 * configured: a one-off run has no outbox worker to retry deliveries after
 * it exits; its events are in DIR/.ladderd/status/<task_id>/. On a
 * terminal a one-line progress display is redrawn; otherwise plain log
 * lines. Exit status: 0 complete, 1 failed, 75 interrupted or transient
 * failure (run again).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "ctx.h"
#include "engine.h"
#include "fsutil.h"
#include "host.h"
#include "log.h"
#include "run.h"
#include "status.h"

struct run_display {
	int tty;
	char status_file[PATH_MAX];
	size_t last_len;
};

static void
run_on_signal(int sig)
{
	(void)sig;
	ladderd_host_cancel = 1;
}

/* Redraw "state  1080p 42%  720p 60% ..." from status.json. */
static void
run_tick(void *arg, const cJSON *ctx)
{
	struct run_display *d = arg;
	char line[512];
	cJSON *st = NULL;
	const cJSON *r;
	size_t n;

	(void)ctx;
	if (!d->tty || ladderd_ctx_load(d->status_file, &st) < 0)
		return;
	n = (size_t)snprintf(line, sizeof(line), "%-12s",
	    ladderd_ctx_str(st, "state", "?"));
	cJSON_ArrayForEach(r, ladderd_ctx_get(st, "rungs")) {
		const cJSON *p = ladderd_ctx_get(r, "progress");
		const char *s = ladderd_ctx_str(r, "state", "");

		if (n >= sizeof(line) - 40)
			break;
		if (cJSON_IsNumber(p))
			n += (size_t)snprintf(line + n, sizeof(line) - n,
			    " %s %3.0f%%", r->string, p->valuedouble * 100);
		else
			n += (size_t)snprintf(line + n, sizeof(line) - n,
			    " %s %s", r->string, s);
	}
	fprintf(stderr, "\r%s%*s", line,
	    d->last_len > n ? (int)(d->last_len - n) : 0, "");
	fflush(stderr);
	d->last_len = n;
	cJSON_Delete(st);
}

static void
run_usage(void)
{
	fprintf(stderr, "usage: ladderd run [-c FILE] INPUT [-o DIR] "
			"[--task-id ID] [-p PROFILE] [--replace] [-v]\n");
}

int
ladderd_run_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "output", required_argument, NULL, 'o' },
		{ "task-id", required_argument, NULL, 't' },
		{ "profile", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "replace", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf_file = NULL, *out = NULL, *task_id = NULL;
	const char *profile = "default", *input;
	char id[80], outabs[PATH_MAX], work[PATH_MAX], status[PATH_MAX];
	char inabs[PATH_MAX], err[2048];
	struct ladderd_conf *conf = NULL;
	struct ladderd_tokens tokens = { -1, -1 };
	struct run_display disp = { 0 };
	struct sigaction sa = { .sa_handler = run_on_signal };
	cJSON *ctx = NULL;
	enum ladderd_rc rc;
	int ch, verbose = 0, is_url, exit_code = 1, replace = 0;

	while ((ch = getopt_long(argc, argv, "c:o:t:p:v", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			conf_file = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 't':
			task_id = optarg;
			break;
		case 'p':
			profile = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'r':
			replace = 1;
			break;
		default:
			run_usage();
			return 2;
		}
	}
	if (optind != argc - 1) {
		run_usage();
		return 2;
	}
	input = argv[optind];
	log_init(1, verbose, "ladderd");
	if (conf_file)
		ch = ladderd_conf_load(conf_file, &conf, err, sizeof(err));
	else
		ch = ladderd_conf_load_string("", NULL, &conf, err, sizeof(err));
	if (ch < 0) {
		log_warnx("%s", err);
		return 1;
	}
	is_url = strstr(input, "://") != NULL;
	if (!is_url && realpath(input, inabs) == NULL) {
		log_warnx("cannot use input '%s': %s", input, strerror(errno));
		goto out;
	}
	if (task_id == NULL) {
		unsigned r = 0;

		if (getrandom(&r, sizeof(r), 0) < 0)
			r = (unsigned)getpid();
		if (ladderd_ctx_derive_id(input, r, id, sizeof(id)) < 0) {
			log_warnx("cannot derive a task id from '%s'", input);
			goto out;
		}
		task_id = id;
	}
	if (!ladderd_ctx_valid_name(task_id)) {
		log_warnx("invalid task id '%s': use 1..64 of [A-Za-z0-9._-], "
			  "not '.' or '..'", task_id);
		goto out;
	}
	if (out == NULL)
		out = conf->publish;
	if ((ch = ladderd_fsutil_mkdir_p(out, 0755)) < 0 ||
	    realpath(out, outabs) == NULL) {
		log_warnx("cannot create output folder '%s': %s", out,
		    strerror(ch < 0 ? -ch : errno));
		goto out;
	}
	/*
	 * A package of the same id is someone's earlier result: refuse, as
	 * the daemon refuses an id that exists, unless asked to replace it
	 * (publish then swaps the new package in atomically).
	 */
	{
		char pkg[PATH_MAX + 80];
		struct stat st;

		snprintf(pkg, sizeof(pkg), "%s/%s", outabs, task_id);
		if (!replace && lstat(pkg, &st) == 0) {
			log_warnx("task '%s' already exists in '%s': use "
				  "--replace to replace it, or another "
				  "--task-id", task_id, pkg);
			goto out;
		}
	}
	if (ladderd_ctx_str(conf->notify, "webhook", "")[0] != '\0')
		log_info("notify.webhook is configured; `ladderd run` sends no "
			 "webhooks (its events are in "
			 "'%s/.ladderd/status/%s/events.ndjson')", outabs,
		    task_id);
	if (snprintf(work, sizeof(work), "%s/.ladderd/work/%s", outabs,
		task_id) >= (int)sizeof(work) ||
	    snprintf(status, sizeof(status), "%s/.ladderd/status", outabs) >=
		(int)sizeof(status)) {
		log_warnx("output folder path too long");
		goto out;
	}
	/* `run` starts afresh: a work folder of an earlier run is stale. */
	(void)ladderd_fsutil_rmtree(work);
	{
		char sdir[PATH_MAX + 80];

		snprintf(sdir, sizeof(sdir), "%s/%s", status, task_id);
		(void)ladderd_fsutil_rmtree(sdir);
		if (snprintf(disp.status_file, sizeof(disp.status_file),
			"%s/status.json", sdir) >= (int)sizeof(disp.status_file))
			disp.status_file[0] = '\0';
	}
	{
		struct ladderd_task_spec spec = {
			.task_id = task_id,
			.source = input,
			/* The operator typed it: no address policy. */
			.source_trusted = true,
			.input_path = is_url ? NULL : inabs,
			.profile = profile,
			.work_dir = work,
			.publish_root = outabs,
			.status_root = status,
		};

		if (ladderd_engine_new_task(conf, &spec, &ctx, err,
			sizeof(err)) < 0) {
			log_warnx("%s", err);
			goto out;
		}
	}
	{
		char prefix[100];

		snprintf(prefix, sizeof(prefix), "job=%s: ", task_id);
		log_set_prefix(prefix);
	}
	if ((ch = ladderd_tokens_init(&tokens, conf->max_rungs)) < 0) {
		log_warnx("cannot create the rung jobserver: %s",
		    strerror(-ch));
		goto out;
	}
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);
	disp.tty = isatty(STDERR_FILENO) && !verbose;
	{
		struct ladderd_engine_opts eo = {
			.conf = conf,
			.tokens = &tokens,
			.tick = run_tick,
			.tick_arg = &disp,
		};

		rc = ladderd_engine_run(&eo, ctx);
	}
	if (disp.tty)
		fputc('\n', stderr);
	log_set_prefix("");
	switch (rc) {
	case LADDERD_OK:
		printf("%s/%s/master.m3u8\n", outabs, task_id);
		if (ladderd_ctx_bool(ctx, "profile.dash", 1))
			printf("%s/%s/manifest.mpd\n", outabs, task_id);
		(void)ladderd_fsutil_rmtree(work);
		exit_code = 0;
		break;
	case LADDERD_RETRY:
		log_warnx("job=%s: interrupted or transient failure: %s: %s "
			  "(work kept in '%s')", task_id,
		    ladderd_ctx_str(ctx, "error.stage", "?"),
		    ladderd_ctx_str(ctx, "error.message", "?"), work);
		exit_code = 75;
		break;
	default:
		log_warnx("job=%s: failed: %s%s%s: %s (work kept in '%s')",
		    task_id, ladderd_ctx_str(ctx, "error.stage", "?"),
		    ladderd_ctx_get(ctx, "error.rung") ? " rendition=" : "",
		    ladderd_ctx_str(ctx, "error.rung", ""),
		    ladderd_ctx_str(ctx, "error.message", "?"), work);
		exit_code = 1;
	}
out:
	ladderd_tokens_release(&tokens);
	cJSON_Delete(ctx);
	ladderd_conf_free(conf);
	return exit_code;
}

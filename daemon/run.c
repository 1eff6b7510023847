/*
 * run.c - `ladderd run [-c FILE] INPUT [-o DIR] [--task-id ID] [-p PROFILE]
 * [--replace]`: one task through the configured workflow, in this process
 * (the job process) with its rung workers. The package lands in
 * DIR/<task_id>/; the work folder and status live in DIR/.ladderd/ so the
 * final move is a rename on one file system. An existing DIR/<task_id> is
 * refused unless --replace. It sends no webhooks and says so when one is
 * configured: a one-off run has no outbox worker to retry deliveries after
 * it exits; its events are in DIR/.ladderd/status/<task_id>/. On a
 * terminal the task runs in a child under the display (run_display.c),
 * to which it sends its progress and summary as JSON lines on the
 * descriptor LADDERD_RUN_FEED names; otherwise plain log lines and no
 * control codes. Exit status: 0 complete, 1 failed, 75 interrupted or
 * transient failure (run again).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
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
#include "exitcode.h"
#include "fsutil.h"
#include "host.h"
#include "log.h"
#include "run.h"
#include "run_display.h"
#include "settings.h"
#include "status.h"

struct run_display {
	FILE *feed; /* to the display process (LADDERD_RUN_FEED), or NULL */
	char status_file[PATH_MAX];
};

static void
run_on_signal(int sig)
{
	(void)sig;
	ladderd_host_cancel = 1;
}

/* A rung's kind from the ladder ("video" unless it says otherwise). */
static const char *
run_rung_kind(const cJSON *ctx, const char *name)
{
	const cJSON *r;

	cJSON_ArrayForEach(r, ladderd_ctx_get(ctx, "ladder"))
		if (strcmp(ladderd_ctx_str(r, "name", ""), name) == 0)
			return ladderd_ctx_str(r, "kind", "video");
	return "video";
}

/* Send one JSON line to the display; the item is consumed. */
static void
run_feed(struct run_display *d, const char *key, cJSON *item)
{
	cJSON *o = cJSON_CreateObject();
	char *text;

	if (o == NULL || item == NULL ||
	    !cJSON_AddItemToObject(o, key, item)) {
		cJSON_Delete(item);
		cJSON_Delete(o);
		return;
	}
	if ((text = cJSON_PrintUnformatted(o)) != NULL) {
		fprintf(d->feed, "%s\n", text);
		fflush(d->feed);
	}
	cJSON_free(text);
	cJSON_Delete(o);
}

/* Progress for the display: the task's state and each rung's, from status.json. */
static void
run_tick(void *arg, const cJSON *ctx)
{
	struct run_display *d = arg;
	cJSON *st = NULL, *p, *rungs;
	const cJSON *r;

	if (d->feed == NULL || ladderd_ctx_load(d->status_file, &st) < 0)
		return;
	if ((p = cJSON_CreateObject()) == NULL ||
	    (rungs = cJSON_AddArrayToObject(p, "rungs")) == NULL) {
		cJSON_Delete(p);
		cJSON_Delete(st);
		return;
	}
	cJSON_AddStringToObject(p, "state", ladderd_ctx_str(st, "state", ""));
	cJSON_AddNumberToObject(p, "frames",
	    ladderd_ctx_num(ctx, "probe.video.nb_frames", 0));
	cJSON_ArrayForEach(r, ladderd_ctx_get(st, "rungs")) {
		cJSON *o;

		if (r->string[0] == '_' || (o = cJSON_CreateObject()) == NULL)
			continue; /* internal units are no rung of the user's */
		cJSON_AddStringToObject(o, "name", r->string);
		cJSON_AddStringToObject(o, "kind", run_rung_kind(ctx, r->string));
		cJSON_AddStringToObject(o, "state",
		    ladderd_ctx_str(r, "state", ""));
		cJSON_AddNumberToObject(o, "progress",
		    ladderd_ctx_num(r, "progress", 0));
		cJSON_AddItemToArray(rungs, o);
	}
	run_feed(d, "progress", p);
	cJSON_Delete(st);
}

/*
 * The summary for the display: per rung its size, codec and the bit rates
 * measured on its segments (peak as RFC 8216 defines it), and the package.
 */
/* The published package's manifests; mpd is "" without DASH. */
static void
run_package_paths(const cJSON *ctx, char *master, char *mpd, size_t size)
{
	if (ladderd_ctx_path(ctx, LADDERD_PATH_PUBLISHED_MASTER, NULL, master,
		size) < 0)
		master[0] = '\0';
	if (!ladderd_ctx_bool(ctx, "profile.dash", 1) ||
	    ladderd_ctx_path(ctx, LADDERD_PATH_PUBLISHED_MPD, NULL, mpd,
		size) < 0)
		mpd[0] = '\0';
}

static void
run_send_summary(struct run_display *d, const cJSON *ctx, enum ladderd_rc rc)
{
	cJSON *sum = cJSON_CreateObject(), *rungs, *pk;
	const cJSON *r;
	char master[PATH_MAX], mpd[PATH_MAX];

	if (sum == NULL || (rungs = cJSON_AddArrayToObject(sum, "rungs")) ==
		NULL ||
	    (pk = cJSON_AddArrayToObject(sum, "packages")) == NULL) {
		cJSON_Delete(sum);
		return;
	}
	cJSON_AddStringToObject(sum, "state",
	    rc == LADDERD_OK ? "complete" : "failed");
	const cJSON *rends = rc == LADDERD_OK ?
	    ladderd_ctx_get(ctx, "renditions") : NULL;

	cJSON_ArrayForEach(r, rends) {
		cJSON *o;

		if (strcmp(ladderd_ctx_str(r, "status", "ok"), "ok") != 0 ||
		    (o = cJSON_CreateObject()) == NULL)
			continue;
		cJSON_AddStringToObject(o, "name",
		    ladderd_ctx_str(r, "rung.name", "?"));
		cJSON_AddNumberToObject(o, "width",
		    ladderd_ctx_num(r, "summary.width", 0));
		cJSON_AddNumberToObject(o, "height",
		    ladderd_ctx_num(r, "summary.height", 0));
		/* The rung's summary (stage.h), whatever stages made it. */
		cJSON_AddStringToObject(o, "codec",
		    ladderd_ctx_str(r, "summary.codecs", "-"));
		cJSON_AddNumberToObject(o, "peak_bitrate",
		    ladderd_ctx_num(r, "summary.peak_bitrate", 0));
		cJSON_AddNumberToObject(o, "avg_bitrate",
		    ladderd_ctx_num(r, "summary.avg_bitrate",
			ladderd_ctx_num(r, "summary.bitrate", 0)));
		cJSON_AddItemToArray(rungs, o);
	}
	if (rc == LADDERD_OK) {
		run_package_paths(ctx, master, mpd, sizeof(master));
		if (master[0])
			cJSON_AddItemToArray(pk, cJSON_CreateString(master));
		if (mpd[0])
			cJSON_AddItemToArray(pk, cJSON_CreateString(mpd));
	}
	run_feed(d, "summary", sum);
}

static void
run_usage(void)
{
	fprintf(stderr, "usage: ladderd run [-c FILE] INPUT [-o DIR] "
			"[--task-id ID] [-p PROFILE] [--replace] [-v]\n");
}

/* The command line and what it resolves to. */
struct run_task {
	const char *conf_file, *out, *task_id, *profile, *input;
	int verbose, replace, is_url;
	char id[80];	       /* a derived task id */
	char inabs[PATH_MAX];  /* the input, absolute (not for a URL) */
	char outabs[PATH_MAX]; /* the output folder, absolute */
	char work[PATH_MAX];   /* OUT/.ladderd/work/<id> */
	char status[PATH_MAX]; /* OUT/.ladderd/status */
};

/* Parse the options; 0, or -1 after the usage. */
static int
run_parse(int argc, char **argv, struct run_task *t)
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
	int ch;

	t->profile = "default";
	while ((ch = getopt_long(argc, argv, "c:o:t:p:v", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			t->conf_file = optarg;
			break;
		case 'o':
			t->out = optarg;
			break;
		case 't':
			t->task_id = optarg;
			break;
		case 'p':
			t->profile = optarg;
			break;
		case 'v':
			t->verbose++;
			break;
		case 'r':
			t->replace = 1;
			break;
		default:
			run_usage();
			return -1;
		}
	}
	if (optind != argc - 1) {
		run_usage();
		return -1;
	}
	t->input = argv[optind];
	return 0;
}

/*
 * Resolve the input, the task id and the output folder, and refuse an
 * existing package of the same id unless --replace; 0, or -1 after saying
 * why.
 */
static int
run_resolve(const struct ladderd_conf *conf, struct run_task *t)
{
	char pkg[PATH_MAX + 80];
	struct stat st;
	int rc;

	t->is_url = strstr(t->input, "://") != NULL;
	if (!t->is_url && realpath(t->input, t->inabs) == NULL) {
		log_warnx("cannot use input '%s': %s", t->input,
		    strerror(errno));
		return -1;
	}
	if (t->task_id == NULL) {
		unsigned r = 0;

		if (getrandom(&r, sizeof(r), 0) < 0)
			r = (unsigned)getpid();
		if (ladderd_ctx_derive_id(t->input, r, t->id,
			sizeof(t->id)) < 0) {
			log_warnx("cannot derive a task id from '%s'",
			    t->input);
			return -1;
		}
		t->task_id = t->id;
	}
	if (!ladderd_ctx_valid_name(t->task_id)) {
		log_warnx("invalid task id '%s': use 1..64 of [A-Za-z0-9._-], "
			  "not '.' or '..'", t->task_id);
		return -1;
	}
	if (t->out == NULL)
		t->out = conf->publish;
	if ((rc = ladderd_fsutil_mkdir_p(t->out, 0755)) < 0 ||
	    realpath(t->out, t->outabs) == NULL) {
		log_warnx("cannot create output folder '%s': %s", t->out,
		    strerror(rc < 0 ? -rc : errno));
		return -1;
	}
	/*
	 * A package of the same id is someone's earlier result: refuse, as
	 * the daemon refuses an id that exists, unless asked to replace it
	 * (publish then swaps the new package in atomically).
	 */
	snprintf(pkg, sizeof(pkg), "%s/%s", t->outabs, t->task_id);
	if (!t->replace && lstat(pkg, &st) == 0) {
		log_warnx("task '%s' already exists in '%s': use --replace to "
			  "replace it, or another --task-id", t->task_id, pkg);
		return -1;
	}
	if (snprintf(t->work, sizeof(t->work), "%s/.ladderd/work/%s",
		t->outabs, t->task_id) >= (int)sizeof(t->work) ||
	    snprintf(t->status, sizeof(t->status), "%s/.ladderd/status",
		t->outabs) >= (int)sizeof(t->status)) {
		log_warnx("output folder path too long");
		return -1;
	}
	return 0;
}

/*
 * A fresh task in OUT/.ladderd/ (a work or status folder of an earlier
 * run is stale); *ret_ctx is the caller's. 0, or -1 after saying why.
 */
static int
run_new_task(const struct ladderd_conf *conf, const struct run_task *t,
    struct run_display *disp, cJSON **ret_ctx)
{
	struct ladderd_task_spec spec = {
		.task_id = t->task_id,
		.source = t->input,
		/* The operator typed it: no address policy. */
		.source_trusted = true,
		.input_path = t->is_url ? NULL : t->inabs,
		.profile = t->profile,
		.work_dir = t->work,
		.publish_root = t->outabs,
		.status_root = t->status,
	};
	char sdir[PATH_MAX + 80], err[2048];

	if (ladderd_ctx_str(conf->notify, "webhook", "")[0] != '\0')
		log_info("notify.webhook is configured; `ladderd run` sends no "
			 "webhooks (its events are in "
			 "'%s/.ladderd/status/%s/events.ndjson')", t->outabs,
		    t->task_id);
	(void)ladderd_fsutil_rmtree(t->work);
	if (ladderd_status_path(t->status, t->task_id, LADDERD_STATUS_DIR, sdir,
		sizeof(sdir)) == 0)
		(void)ladderd_fsutil_rmtree(sdir);
	if (ladderd_status_path(t->status, t->task_id, LADDERD_STATUS_JSON,
		disp->status_file, sizeof(disp->status_file)) < 0)
		disp->status_file[0] = '\0';
	if (ladderd_engine_new_task(conf, &spec, ret_ctx, err, sizeof(err)) <
	    0) {
		log_warnx("%s", err);
		return -1;
	}
	return 0;
}

/* Say how the task ended: the package paths, or why not. */
static void
run_report(const struct run_task *t, const struct run_display *disp,
    const cJSON *ctx, enum ladderd_rc rc)
{
	char err[2048];

	switch (rc) {
	case LADDERD_OK:
		/* With a display, it prints the paths (in its table). */
		if (disp->feed == NULL) {
			char master[PATH_MAX], mpd[PATH_MAX];

			run_package_paths(ctx, master, mpd, sizeof(master));
			printf("%s\n", master);
			if (mpd[0])
				printf("%s\n", mpd);
		}
		(void)ladderd_fsutil_rmtree(t->work);
		break;
	case LADDERD_RETRY:
		log_warnx("job=%s: interrupted or transient failure: %s: %s "
			  "(work kept in '%s')", t->task_id,
		    ladderd_ctx_str(ctx, "error.stage", "?"),
		    ladderd_ctx_str(ctx, "error.message", "?"), t->work);
		break;
	default:
		ladderd_host_error_text(ctx, err, sizeof(err));
		log_warnx("job=%s: failed: %s (work kept in '%s')", t->task_id,
		    err, t->work);
	}
}

int
ladderd_run_main(int argc, char **argv)
{
	struct run_task t = { 0 };
	char err[2048], prefix[100];
	struct ladderd_conf *conf = NULL;
	struct ladderd_tokens tokens = { -1, -1 };
	struct run_display disp = { 0 };
	struct sigaction sa = { .sa_handler = run_on_signal };
	cJSON *ctx = NULL;
	enum ladderd_rc rc;
	int ch, exit_code = LADDERD_EXIT_FAIL;

	if (run_parse(argc, argv, &t) < 0)
		return LADDERD_EXIT_USAGE;
	if (getenv("LADDERD_RUN_FEED") == NULL && isatty(STDERR_FILENO) &&
	    (ch = ladderd_run_display(argc, argv, t.verbose)) >= 0)
		return ch;
	if (getenv("LADDERD_RUN_FEED") != NULL) {
		int fd = atoi(getenv("LADDERD_RUN_FEED"));

		/* Ours alone: the workers must not hold the display open. */
		if (fd > 2 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0)
			disp.feed = fdopen(fd, "w");
		unsetenv("LADDERD_RUN_FEED");
	}
	log_init(t.verbose);
	/* The task's context carries the stages' settings: check them. */
	if (ladderd_conf_load(t.conf_file, &conf, err, sizeof(err)) < 0 ||
	    ladderd_settings_check(conf, false, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		ladderd_conf_free(conf);
		return LADDERD_EXIT_FAIL;
	}
	if (run_resolve(conf, &t) < 0 ||
	    run_new_task(conf, &t, &disp, &ctx) < 0)
		goto out;
	snprintf(prefix, sizeof(prefix), "job=%s: ", t.task_id);
	log_set_prefix(prefix);
	if ((ch = ladderd_tokens_init(&tokens, conf->max_rungs)) < 0) {
		log_warnx("cannot create the rung jobserver: %s",
		    strerror(-ch));
		goto out;
	}
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);
	{
		struct ladderd_engine_opts eo = {
			.conf = conf,
			.tokens = &tokens,
			.tick = run_tick,
			.tick_arg = &disp,
		};

		rc = ladderd_engine_run(&eo, ctx);
	}
	log_set_prefix("");
	if (disp.feed)
		run_send_summary(&disp, ctx, rc);
	run_report(&t, &disp, ctx, rc);
	exit_code = ladderd_exit_of(rc);
out:
	if (disp.feed)
		fclose(disp.feed);
	ladderd_tokens_release(&tokens);
	cJSON_Delete(ctx);
	ladderd_conf_free(conf);
	return exit_code;
}

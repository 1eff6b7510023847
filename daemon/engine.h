/*
 * engine.h - runs one task's workflow inside a job process: pre stages in
 * order, the chord, post stages, with a checkpoint of the context after
 * every step so a restarted task resumes where it stopped.
 */
#ifndef LADDERD_ENGINE_H
#define LADDERD_ENGINE_H

#include <stdbool.h>

#include "conf.h"
#include "tokens.h"

struct ladderd_task_spec {
	const char *task_id;
	const char *source;   /* URL or local path */
	bool source_trusted;  /* the operator named it (`run`), not a drop */
	const char *input_path; /* the claimed file, or NULL */
	const char *profile;  /* profile name */
	const char *work_dir;
	const char *publish_root;
	const char *status_root;
	const char *webhook;	/* the operator's (config); NULL: none */
	const char *manifest_webhook; /* a manifest's own, checked; NULL: none */
	bool amqp;		/* notify.amqp is configured: queue to it too */
	const char *outbox_dir; /* deliveries; NULL: none */
	const cJSON *metadata;	/* NULL: none */
	/* A manifest's sidecar subtitle files, claimed: [ { path, file,
	 * language, name, default, forced } ] (ctx.task.subtitles); NULL:
	 * none. */
	const cJSON *subtitles;
};

struct ladderd_engine_opts {
	const struct ladderd_conf *conf;
	/*
	 * Run the pre phase only up to and including the "download" stage
	 * (all of it if there is none), set ctx.fetched and return
	 * LADDERD_OK without a terminal event: the supervisor runs downloads
	 * in their own slots (max_downloads), apart from encoding jobs.
	 */
	bool fetch_only;
	struct ladderd_tokens *tokens;
	void (*tick)(void *arg, const cJSON *ctx);
	void *tick_arg;
};

int ladderd_engine_new_task(const struct ladderd_conf *conf,
    const struct ladderd_task_spec *spec, cJSON **ret_ctx, char *err,
    size_t errlen);
enum ladderd_rc ladderd_engine_run(const struct ladderd_engine_opts *opts,
    cJSON *ctx);

#endif

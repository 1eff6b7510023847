/*
 * chord.h - the rendition phase: one unit per ladder rung, each run by the
 * task's runner (runner.h) as `ladderd rung WORKDIR RUNG` (rung.h), at most
 * as many at once as the runner's limit allows, joined with waitpid,
 * failed rungs retried, results merged into ctx.renditions in ladder
 * order.
 */
#ifndef LADDERD_CHORD_H
#define LADDERD_CHORD_H

#include "conf.h"
#include "tokens.h"

struct ladderd_chord_opts {
	const struct ladderd_conf *conf;
	const struct ladderd_workflow *workflow;
	struct ladderd_tokens *tokens;
	/* Called about twice a second while rungs run (may be NULL). */
	void (*tick)(void *arg, const cJSON *ctx);
	void *tick_arg;
};

enum ladderd_rc ladderd_chord_run(const struct ladderd_chord_opts *opts,
    cJSON *ctx);
const char *ladderd_chord_unit_label(const cJSON *ctx, const char *name);
void ladderd_chord_mark_ended(const cJSON *ctx, const char *name, int ended);
/* Mark unit `name` of the task in `work_dir` ended (a worker's side). */
void ladderd_chord_mark_ended_work(const char *work_dir, const char *name);

#endif

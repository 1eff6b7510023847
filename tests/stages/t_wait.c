/*
 * tests/stages/t_wait.c - test-only: the first time it runs for the rung
 * named in `wait_rung`, it writes wait.started in the rung's state folder
 * and waits (at most 120 s) until it is cancelled, as a long encode would;
 * it then reports a transient failure. Every later attempt passes at once
 * (ctx.t_wait = "passed after a cancel"). Other rungs pass at once.
 */
#include <stdio.h>
#include <time.h>

#include "stage.h"

static enum ladderd_rc
t_wait_run(void *state, struct ladderd_call *call)
{
	const char *want = ladderd_ctx_str(call->ctx, "wait_rung", "");
	char dir[4096], mark[4200];
	struct timespec tick = { 0, 50 * 1000 * 1000 };
	FILE *f;

	(void)state;
	if (call->rung == NULL || strcmp(call->rung, want) != 0)
		return LADDERD_OK;
	if (call->path(call, LADDERD_PATH_RUNG_STATE, NULL, dir,
		sizeof(dir)) < 0)
		return LADDERD_FAIL;
	snprintf(mark, sizeof(mark), "%s/wait.started", dir);
	if ((f = fopen(mark, "r")) != NULL) {
		fclose(f);
		ladderd_ctx_set(call->ctx, "t_wait",
		    cJSON_CreateString("passed after a cancel"));
		return LADDERD_OK;
	}
	if ((f = fopen(mark, "w")) != NULL)
		fclose(f);
	for (int i = 0; i < 2400 && !call->cancelled(call); i++)
		nanosleep(&tick, NULL);
	call->fail(call, "cancelled while waiting");
	return LADDERD_RETRY;
}

LADDERD_STAGE_DEFINE("t_wait", "test", NULL, NULL, t_wait_run, NULL);

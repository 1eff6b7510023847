/*
 * tests/stages/t_flaky.c - test-only stage: fails the first time it runs
 * for a rung named in `flaky_rung` (named argument), succeeds after that.
 * The attempt count lives in a file in the rung's state folder.
 */
#include <stdio.h>

#include "stage.h"

static enum ladderd_rc
t_flaky_run(void *state, struct ladderd_call *call)
{
	const char *want = ladderd_ctx_str(call->ctx, "flaky_rung", "");
	char dir[4096], mark[4200];
	FILE *f;

	(void)state;
	if (call->rung == NULL || strcmp(call->rung, want) != 0)
		return LADDERD_SKIP;
	if (call->path(call, LADDERD_PATH_RUNG_STATE, NULL, dir,
		sizeof(dir)) < 0)
		return LADDERD_FAIL;
	snprintf(mark, sizeof(mark), "%s/flaky.mark", dir);
	if ((f = fopen(mark, "r")) != NULL) {
		fclose(f);
		ladderd_ctx_set(call->ctx, "t_flaky",
		    cJSON_CreateString("passed on retry"));
		return LADDERD_OK;
	}
	if ((f = fopen(mark, "w")) != NULL)
		fclose(f);
	call->fail(call, "flaky failure on the first attempt");
	return LADDERD_FAIL;
}

LADDERD_STAGE_DEFINE("t_flaky", "test", NULL, NULL, t_flaky_run, NULL);

/*
 * tests/stages/t_fail.c - test-only: fails with the message `fail_message`.
 * With `fail_once_file` (a path), it fails only while that file does not
 * exist and creates it: the task fails once, and passes when run again
 * (`ladderd retry`).
 */
#include <stdio.h>

#include "stage.h"

static enum ladderd_rc
t_fail_run(void *state, struct ladderd_call *call)
{
	const char *once = ladderd_ctx_str(call->ctx, "fail_once_file", NULL);
	FILE *f;

	(void)state;
	if (once && (f = fopen(once, "r")) != NULL) {
		fclose(f);
		return LADDERD_OK;
	}
	if (once && (f = fopen(once, "w")) != NULL)
		fclose(f);
	call->fail(call, "%s",
	    ladderd_ctx_str(call->ctx, "fail_message", "t_fail failed"));
	return LADDERD_FAIL;
}

LADDERD_STAGE_DEFINE("t_fail", "test", NULL, NULL, t_fail_run, NULL);

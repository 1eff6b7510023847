/* tests/stages/t_fail.c - test-only: fails with the message `fail_message`. */
#include "stage.h"

static enum ladderd_rc
t_fail_run(void *state, struct ladderd_call *call)
{
	(void)state;
	call->fail(call, "%s",
	    ladderd_ctx_str(call->ctx, "fail_message", "t_fail failed"));
	return LADDERD_FAIL;
}

LADDERD_STAGE_DEFINE("t_fail", "test", NULL, NULL, t_fail_run, NULL);

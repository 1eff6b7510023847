/* tests/stages/t_crash.c - test-only: SIGSEGV in the rung `crash_rung`. */
#include <signal.h>

#include "stage.h"

static enum ladderd_rc
t_crash_run(void *state, struct ladderd_call *call)
{
	(void)state;
	if (call->rung &&
	    strcmp(call->rung, ladderd_ctx_str(call->ctx, "crash_rung", "")) ==
		0)
		raise(SIGSEGV);
	return LADDERD_OK;
}

LADDERD_STAGE_DEFINE("t_crash", "test", NULL, NULL, t_crash_run, NULL);

/*
 * tests/stages/t_hang.c - test-only: the rung `hang_rung` never returns
 * and ignores cancellation, like a stuck decoder; the chord's time limit
 * must kill it.
 */
#include <unistd.h>

#include "stage.h"

static enum ladderd_rc
t_hang_run(void *state, struct ladderd_call *call)
{
	(void)state;
	if (call->rung &&
	    strcmp(call->rung, ladderd_ctx_str(call->ctx, "hang_rung", "")) == 0)
		for (;;)
			pause();
	return LADDERD_OK;
}

LADDERD_STAGE_DEFINE("t_hang", "test", NULL, NULL, t_hang_run, NULL);

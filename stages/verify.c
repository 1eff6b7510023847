/* stages/verify.c - placeholder until the stage is written; fails loudly. */
#include "stage.h"

static enum ladderd_rc
verify_run(void *state, struct ladderd_call *call)
{
	(void)state;
	call->fail(call, "stage 'verify' is not implemented yet");
	return LADDERD_FAIL;
}

LADDERD_STAGE_DEFINE("verify", "0", NULL, NULL, verify_run, NULL);

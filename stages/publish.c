/* stages/publish.c - placeholder until the stage is written; fails loudly. */
#include "stage.h"

static enum ladderd_rc
publish_run(void *state, struct ladderd_call *call)
{
	(void)state;
	call->fail(call, "stage 'publish' is not implemented yet");
	return LADDERD_FAIL;
}

LADDERD_STAGE_DEFINE("publish", "0", NULL, NULL, publish_run, NULL);

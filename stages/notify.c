/* stages/notify.c - placeholder until the stage is written; fails loudly. */
#include "stage.h"

static enum ladderd_rc
notify_run(void *state, struct ladderd_call *call)
{
	(void)state;
	call->fail(call, "stage 'notify' is not implemented yet");
	return LADDERD_FAIL;
}

LADDERD_STAGE_DEFINE("notify", "0", NULL, NULL, notify_run, NULL);

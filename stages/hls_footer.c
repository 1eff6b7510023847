/* stages/hls_footer.c - placeholder until the stage is written; fails loudly. */
#include "stage.h"

static enum ladderd_rc
hls_footer_run(void *state, struct ladderd_call *call)
{
	(void)state;
	call->fail(call, "stage 'hls_footer' is not implemented yet");
	return LADDERD_FAIL;
}

LADDERD_STAGE_DEFINE("hls_footer", "0", NULL, NULL, hls_footer_run, NULL);

/* tests/stages/t_badabi.c - test-only: a descriptor from a future ABI. */
#include "stage.h"

static enum ladderd_rc
t_badabi_run(void *state, struct ladderd_call *call)
{
	(void)state;
	(void)call;
	return LADDERD_OK;
}

__attribute__((visibility("default"))) const struct ladderd_stage
    ladderd_stage_entry = {
	    .abi = 99,
	    .size = sizeof(struct ladderd_stage),
	    .name = "t_badabi",
	    .version = "test",
	    .run = t_badabi_run,
    };

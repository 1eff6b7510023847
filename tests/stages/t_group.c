/*
 * tests/stages/t_group.c - test-only pre stage: asks the host for a group
 * (ctx.group, stage.h) with names no stage of ours uses: unit `unit`
 * (named argument, default "_feed") labelled "test feeder", running stage
 * `unit_stage` (default "t_record"), required stage `requires` (default
 * "t_record"), with every rung of ctx.profile.ladder as a member. It also
 * creates the POSIX shared memory `shm` (named argument) and lists it in
 * ctx.cleanup.shm, so a test can see the host remove it.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stage.h"

static enum ladderd_rc
t_group_run(void *state, struct ladderd_call *call)
{
	const char *shm = ladderd_ctx_str(call->ctx, "shm", NULL);
	const char *stage = ladderd_ctx_str(call->ctx, "unit_stage",
	    "t_record");
	cJSON *g = cJSON_CreateObject(), *members, *list;
	const cJSON *it;
	int fd;

	(void)state;
	cJSON_AddStringToObject(g, "unit",
	    ladderd_ctx_str(call->ctx, "unit", "_feed"));
	cJSON_AddStringToObject(g, "label", "test feeder");
	cJSON_AddItemToObject(g, "stages",
	    cJSON_CreateStringArray(&stage, 1));
	cJSON_AddStringToObject(g, "requires_stage",
	    ladderd_ctx_str(call->ctx, "requires", "t_record"));
	members = cJSON_AddArrayToObject(g, "members");
	cJSON_ArrayForEach(it, ladderd_ctx_get(call->ctx, "profile.ladder"))
		cJSON_AddItemToArray(members, cJSON_CreateString(
		    ladderd_ctx_str(it, "name", "?")));
	if (ladderd_ctx_set(call->ctx, "group", g) < 0) {
		cJSON_Delete(g);
		call->fail(call, "cannot store ctx.group");
		return LADDERD_FAIL;
	}
	if (shm != NULL) {
		if ((fd = shm_open(shm, O_RDWR | O_CREAT, 0600)) < 0) {
			call->fail(call, "cannot create '%s'", shm);
			return LADDERD_FAIL;
		}
		close(fd);
		list = cJSON_AddArrayToObject(ladderd_ctx_obj(call->ctx,
						  "cleanup"), "shm");
		cJSON_AddItemToArray(list, cJSON_CreateString(shm));
	}
	return LADDERD_OK;
}

LADDERD_STAGE_DEFINE("t_group", "1.0", NULL, NULL, t_group_run, NULL);

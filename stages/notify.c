/*
 * stages/notify.c - emit a status event (README "Status format") for the task or,
 * in a rendition chain, for the rung ("quality" = the rung, with
 * rung_state "done" and progress 1). The host writes the event: status
 * folder (events.ndjson + status.json) and, when the task has a webhook,
 * the outbox. Named argument `notify_fields` (an object, optional) is
 * merged into the event, for workflows that want to add their own fields.
 * Adds nothing to the context.
 */
#include "stage.h"

static enum ladderd_rc
notify_run(void *state, struct ladderd_call *call)
{
	cJSON *fields = cJSON_CreateObject();
	const cJSON *extra = ladderd_ctx_get(call->ctx, "notify_fields");
	enum ladderd_rc rc = LADDERD_FAIL;
	int err;

	(void)state;
	if (fields == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	if (call->rung) {
		cJSON_AddStringToObject(fields, "rung_state", "done");
		cJSON_AddNumberToObject(fields, "progress", 1);
	}
	if (cJSON_IsObject(extra)) {
		const cJSON *it;

		cJSON_ArrayForEach(it, extra)
			cJSON_AddItemToObject(fields, it->string,
			    cJSON_Duplicate(it, 1));
	}
	if ((err = call->event(call, fields)) < 0) {
		call->fail(call, "cannot write the status event (error %d)",
		    -err);
		/* The status folder is full or gone: transient. */
		rc = LADDERD_RETRY;
		goto out;
	}
	rc = LADDERD_OK;
out:
	cJSON_Delete(fields);
	return rc;
}

LADDERD_STAGE_DEFINE("notify", "1.0", NULL, NULL, notify_run, NULL);

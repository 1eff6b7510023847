/*
 * status.h - status events of a task (README "Status format"): one line per event
 * in status/<task_id>/events.ndjson, the latest in status.json (replaced
 * atomically, with per-rung detail), and a webhook delivery file in the
 * outbox when the task has a webhook. Several processes of one task (the
 * job, its rung children) emit events; a lock file serialises them so `seq`
 * grows by one per event.
 */
#ifndef LADDERD_STATUS_H
#define LADDERD_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/*
 * A task's status folder, <status root>/<task_id>/, and its files: the
 * one place that knows their names.
 */
enum ladderd_status_file {
	LADDERD_STATUS_DIR,	/* the folder itself */
	LADDERD_STATUS_JSON,	/* status.json, replaced at every event */
	LADDERD_STATUS_EVENTS,	/* events.ndjson, one line per event */
	LADDERD_STATUS_LOCK,	/* .lock, held while an event is written */
};

int ladderd_status_path(const char *root, const char *task_id,
    enum ladderd_status_file file, char *buf, size_t size);
int ladderd_status_emit(const cJSON *ctx, const cJSON *fields,
    cJSON **ret_event);
int ladderd_status_now(char *buf, size_t size);
int ladderd_status_set_started(cJSON *obj);
int ladderd_status_last_state(const cJSON *ctx, char *buf, size_t size);

#endif

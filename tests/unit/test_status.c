/*
 * tests/unit/test_status.c - building and writing status events (README.md
 * "Status format"): the fields every event carries, seq growing by one per
 * event, status.json as the latest event plus "rungs" and "schema", the
 * outbox file of each event, progress that would go back not written, and
 * a journal that a crash left ahead of status.json or with a torn line.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <regex.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctx.h"
#include "fsutil.h"
#include "status.h"
#include "scratch.h"

static char sdir[600], odir[600];

/* A fresh status and outbox folder for each test. */
static int
fresh(void **state)
{
	(void)state;
	scratch_path(sdir, sizeof(sdir), "status");
	scratch_path(odir, sizeof(odir), "outbox");
	return ladderd_fsutil_rmtree(sdir) == 0 &&
		       ladderd_fsutil_rmtree(odir) == 0 ?
	    0 :
	    -1;
}

/* A task context as the engine has it: {"task": {...}}. */
static cJSON *
task_ctx(const char *id, const char *state)
{
	cJSON *ctx = cJSON_CreateObject(), *task;

	assert_non_null(ctx);
	task = cJSON_AddObjectToObject(ctx, "task");
	cJSON_AddStringToObject(task, "id", id);
	cJSON_AddStringToObject(task, "status_root", sdir);
	cJSON_AddStringToObject(task, "outbox_dir", odir);
	cJSON_AddStringToObject(task, "state", state);
	return ctx;
}

static void
set_state(cJSON *ctx, const char *state)
{
	assert_int_equal(ladderd_ctx_set(ladderd_ctx_obj(ctx, "task"), "state",
			     cJSON_CreateString(state)), 0);
}

static char *
task_file(const char *id, const char *name)
{
	char p[1024], *data = NULL;

	snprintf(p, sizeof(p), "%s/%s/%s", sdir, id, name);
	if (ladderd_fsutil_read(p, 1 << 20, &data, NULL) < 0)
		return NULL;
	return data;
}

static int
count_lines(const char *text)
{
	int n = 0;

	for (; text && *text; text++)
		n += *text == '\n';
	return n;
}

static cJSON *
load_status(const char *id)
{
	char *text = task_file(id, "status.json");
	cJSON *st = text ? cJSON_Parse(text) : NULL;

	free(text);
	assert_non_null(st);
	return st;
}

static void
assert_matches(const char *text, const char *ere)
{
	regex_t re;

	assert_int_equal(regcomp(&re, ere, REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&re, text, 0, NULL, 0) != 0)
		fail_msg("'%s' does not match '%s'", text, ere);
	regfree(&re);
}

/* The first event: every field README.md "Status format" names. */
static void
test_first_event_fields(void **state)
{
	cJSON *ctx = task_ctx("movie-000001", "queued"), *ev = NULL, *st;
	char *journal;

	(void)state;
	assert_int_equal(ladderd_status_emit(ctx, NULL, &ev), 0);
	assert_non_null(ev);
	assert_string_equal(ladderd_ctx_str(ev, "task_id", ""), "movie-000001");
	/* Without a main task, a task is its own main task. */
	assert_string_equal(ladderd_ctx_str(ev, "main_task_id", ""),
	    "movie-000001");
	assert_int_equal(ladderd_ctx_num(ev, "seq", 0), 1);
	assert_string_equal(ladderd_ctx_str(ev, "state", ""), "queued");
	assert_true(cJSON_IsNull(ladderd_ctx_get(ev, "quality")));
	assert_true(cJSON_IsFalse(ladderd_ctx_get(ev, "complete")));
	assert_true(cJSON_IsNull(ladderd_ctx_get(ev, "progress")));
	assert_true(cJSON_IsNull(ladderd_ctx_get(ev, "error")));
	assert_matches(ladderd_ctx_str(ev, "time", ""),
	    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
	    "\\.[0-9]{3}Z$");
	assert_string_equal(ladderd_ctx_str(ev, "outputs.hls", ""),
	    "movie-000001/master.m3u8");
	assert_string_equal(ladderd_ctx_str(ev, "outputs.dash", ""),
	    "movie-000001/manifest.mpd");

	/* The journal line is that event; status.json adds the schema. */
	journal = task_file("movie-000001", "events.ndjson");
	assert_int_equal(count_lines(journal), 1);
	{
		cJSON *line = cJSON_Parse(journal);

		assert_non_null(line);
		assert_true(cJSON_Compare(line, ev, 1));
		cJSON_Delete(line);
	}
	st = load_status("movie-000001");
	assert_int_equal(ladderd_ctx_num(st, "schema", 0), 1);
	assert_int_equal(ladderd_ctx_num(st, "seq", 0), 1);
	assert_true(cJSON_IsObject(ladderd_ctx_get(st, "rungs")));
	free(journal);
	cJSON_Delete(st);
	cJSON_Delete(ev);
	cJSON_Delete(ctx);
}

/* seq grows by one per event, whatever the caller's fields say. */
static void
test_seq_increments(void **state)
{
	static const char *const states[] = { "queued", "probing",
		"transcoding", "packaging", "publishing" };
	cJSON *ctx = task_ctx("seq-000002", "queued");
	cJSON *fields = cJSON_Parse("{\"seq\":100,\"complete\":false}");
	char *journal, *line, *save = NULL;
	long want = 1;

	(void)state;
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		cJSON *ev = NULL;

		set_state(ctx, states[i]);
		assert_int_equal(ladderd_status_emit(ctx, i % 2 ? fields : NULL,
				     &ev), 0);
		assert_int_equal(ladderd_ctx_num(ev, "seq", 0), (double)i + 1);
		assert_string_equal(ladderd_ctx_str(ev, "state", ""),
		    states[i]);
		cJSON_Delete(ev);
	}
	journal = task_file("seq-000002", "events.ndjson");
	assert_int_equal(count_lines(journal), 5);
	for (line = strtok_r(journal, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), want++) {
		cJSON *ev = cJSON_Parse(line);

		assert_non_null(ev);
		assert_int_equal(ladderd_ctx_num(ev, "seq", 0), want);
		cJSON_Delete(ev);
	}
	{
		cJSON *st = load_status("seq-000002");

		assert_int_equal(ladderd_ctx_num(st, "seq", 0), 5);
		assert_string_equal(ladderd_ctx_str(st, "state", ""),
		    "publishing");
		cJSON_Delete(st);
	}
	free(journal);
	cJSON_Delete(fields);
	cJSON_Delete(ctx);
}

/*
 * A rung's events name it in "quality" and land in status.json's "rungs";
 * a progress lower than the rung's last is not written (no line, no seq).
 */
static void
test_rung_progress(void **state)
{
	cJSON *ctx = task_ctx("rung-000003", "transcoding");
	cJSON *p5 = cJSON_Parse("{\"progress\":0.5}");
	cJSON *p2 = cJSON_Parse("{\"progress\":0.2}");
	cJSON *retry = cJSON_Parse("{\"progress\":0,"
				   "\"rung_state\":\"retrying\"}");
	cJSON *ev = NULL, *st;
	char *journal;

	(void)state;
	assert_int_equal(ladderd_ctx_set(ctx, "rung", cJSON_Parse(
			     "{\"name\":\"720p\"}")), 0);
	assert_int_equal(ladderd_status_emit(ctx, p5, &ev), 0);
	assert_string_equal(ladderd_ctx_str(ev, "quality", ""), "720p");
	cJSON_Delete(ev);
	st = load_status("rung-000003");
	assert_true(ladderd_ctx_num(st, "rungs.720p.progress", 0) == 0.5);
	assert_string_equal(ladderd_ctx_str(st, "rungs.720p.state", ""),
	    "transcoding");
	cJSON_Delete(st);

	assert_int_equal(ladderd_status_emit(ctx, p2, &ev), 0);
	assert_null(ev); /* went back: not written */
	journal = task_file("rung-000003", "events.ndjson");
	assert_int_equal(count_lines(journal), 1);
	free(journal);

	/* A retry says so and is written, with the next seq. */
	assert_int_equal(ladderd_status_emit(ctx, retry, &ev), 0);
	assert_non_null(ev);
	assert_int_equal(ladderd_ctx_num(ev, "seq", 0), 2);
	cJSON_Delete(ev);
	st = load_status("rung-000003");
	assert_string_equal(ladderd_ctx_str(st, "rungs.720p.state", ""),
	    "retrying");
	assert_true(ladderd_ctx_num(st, "rungs.720p.progress", 1) == 0);
	cJSON_Delete(st);
	cJSON_Delete(p5);
	cJSON_Delete(p2);
	cJSON_Delete(retry);
	cJSON_Delete(ctx);
}

/*
 * A failed task points at no outputs and carries its error; metadata is in
 * the first and the terminal event only, and always in status.json.
 */
static void
test_failed_and_metadata(void **state)
{
	cJSON *ctx = task_ctx("fail-000004", "queued"), *ev = NULL, *st;

	(void)state;
	assert_int_equal(ladderd_ctx_set(ladderd_ctx_obj(ctx, "task"),
			     "metadata", cJSON_Parse("{\"k\":\"v\"}")), 0);
	assert_int_equal(ladderd_status_emit(ctx, NULL, &ev), 0);
	assert_string_equal(ladderd_ctx_str(ev, "metadata.k", ""), "v");
	cJSON_Delete(ev);

	set_state(ctx, "probing");
	assert_int_equal(ladderd_status_emit(ctx, NULL, &ev), 0);
	assert_null(ladderd_ctx_get(ev, "metadata"));
	cJSON_Delete(ev);
	st = load_status("fail-000004");
	assert_string_equal(ladderd_ctx_str(st, "metadata.k", ""), "v");
	cJSON_Delete(st);

	set_state(ctx, "failed");
	assert_int_equal(ladderd_ctx_set(ctx, "error", cJSON_Parse(
			     "{\"stage\":\"probe\",\"message\":\"bad\"}")), 0);
	assert_int_equal(ladderd_status_emit(ctx, NULL, &ev), 0);
	assert_null(ladderd_ctx_get(ev, "outputs"));
	assert_string_equal(ladderd_ctx_str(ev, "error.message", ""), "bad");
	assert_string_equal(ladderd_ctx_str(ev, "metadata.k", ""), "v");
	cJSON_Delete(ev);
	{
		char last[32];

		assert_int_equal(ladderd_status_last_state(ctx, last,
				     sizeof(last)), 0);
		assert_string_equal(last, "failed");
	}
	cJSON_Delete(ctx);
}

/* With a webhook, every event is first an outbox file with its exact line. */
static void
test_outbox_entry(void **state)
{
	cJSON *ctx = task_ctx("hook-000005", "queued"), *entry;
	char p[1024], *text = NULL, *journal;

	(void)state;
	assert_int_equal(ladderd_ctx_set(ladderd_ctx_obj(ctx, "task"),
			     "webhook",
			     cJSON_CreateString("http://127.0.0.1:9/h")), 0);
	assert_int_equal(ladderd_status_emit(ctx, NULL, NULL), 0);
	snprintf(p, sizeof(p), "%s/hook-000005.%010d.json", odir, 1);
	assert_int_equal(ladderd_fsutil_read(p, 1 << 20, &text, NULL), 0);
	entry = cJSON_Parse(text);
	assert_non_null(entry);
	assert_string_equal(ladderd_ctx_str(entry, "url", ""),
	    "http://127.0.0.1:9/h");
	assert_string_equal(ladderd_ctx_str(entry, "dest", ""), "operator");
	assert_string_equal(ladderd_ctx_str(entry, "id", ""), "hook-000005-1");
	assert_int_equal(ladderd_ctx_num(entry, "seq", 0), 1);
	journal = task_file("hook-000005", "events.ndjson");
	journal[strlen(journal) - 1] = '\0'; /* the body has no newline */
	assert_string_equal(ladderd_ctx_str(entry, "body", ""), journal);
	free(journal);
	free(text);
	cJSON_Delete(entry);
	cJSON_Delete(ctx);
}

/*
 * A crash between the journal append and status.json: the journal is
 * ahead. The next emit queues that last event's webhook again and goes on
 * after its seq. A torn last line (a writer killed mid-line) is cut off.
 */
static void
test_journal_ahead_and_torn(void **state)
{
	cJSON *ctx = task_ctx("crash-000006", "queued"), *ev = NULL;
	char p[1024], *journal;
	struct stat sb;
	static const char ahead[] =
	    "{\"task_id\":\"crash-000006\",\"seq\":2,\"state\":\"probing\"}\n";
	static const char torn[] = "{\"task_id\":\"crash-000006\",\"se";

	(void)state;
	assert_int_equal(ladderd_ctx_set(ladderd_ctx_obj(ctx, "task"),
			     "webhook",
			     cJSON_CreateString("http://127.0.0.1:9/h")), 0);
	assert_int_equal(ladderd_status_emit(ctx, NULL, NULL), 0);
	snprintf(p, sizeof(p), "%s/crash-000006/events.ndjson", sdir);
	assert_int_equal(ladderd_fsutil_append(p, ahead, strlen(ahead)), 0);
	assert_int_equal(ladderd_fsutil_append(p, torn, strlen(torn)), 0);

	set_state(ctx, "transcoding");
	assert_int_equal(ladderd_status_emit(ctx, NULL, &ev), 0);
	assert_int_equal(ladderd_ctx_num(ev, "seq", 0), 3);
	cJSON_Delete(ev);
	journal = task_file("crash-000006", "events.ndjson");
	assert_int_equal(count_lines(journal), 3);
	assert_null(strstr(journal, "\"se{")); /* the torn bytes are gone */
	free(journal);
	/* The event that was in the journal only has its outbox file now. */
	snprintf(p, sizeof(p), "%s/crash-000006.%010d.json", odir, 2);
	assert_int_equal(stat(p, &sb), 0);
	cJSON_Delete(ctx);
}

static void
test_bad_task_id(void **state)
{
	cJSON *ctx = task_ctx("../escape", "queued");

	(void)state;
	assert_int_equal(ladderd_status_emit(ctx, NULL, NULL), -EINVAL);
	cJSON_Delete(ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_first_event_fields, fresh),
		cmocka_unit_test_setup(test_seq_increments, fresh),
		cmocka_unit_test_setup(test_rung_progress, fresh),
		cmocka_unit_test_setup(test_failed_and_metadata, fresh),
		cmocka_unit_test_setup(test_outbox_entry, fresh),
		cmocka_unit_test_setup(test_journal_ahead_and_torn, fresh),
		cmocka_unit_test_setup(test_bad_task_id, fresh),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}

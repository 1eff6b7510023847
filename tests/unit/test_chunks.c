/*
 * tests/unit/test_chunks.c - cutting a rung into chunks: off unless the
 * profile asks and the source is longer than chunk_min_source and one
 * chunk; a remainder shorter than a segment joins the last chunk; chunk
 * ranges (the last open-ended) and the pre-roll (none for the first);
 * unit names.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "chunks.h"
#include "ctx.h"

/* A context with the profile's chunk settings and the probe's duration. */
static cJSON *
chunks_ctx(int chunk, int seg, int min, double dur)
{
	char text[256];

	snprintf(text, sizeof(text), "{\"profile\": {\"chunk_duration\": %d, "
	    "\"segment_duration\": %d, \"chunk_min_source\": %d, "
	    "\"chunk_preroll_segments\": 1}, \"probe\": {\"duration\": %g}}",
	    chunk, seg, min, dur);
	return cJSON_Parse(text);
}

static int
plan(int chunk, int seg, int min, double dur, int *len)
{
	cJSON *ctx = chunks_ctx(chunk, seg, min, dur);
	int n = ladderd_chunks_plan(ctx, len);

	cJSON_Delete(ctx);
	return n;
}

static void
test_plan(void **state)
{
	int len;

	(void)state;
	assert_int_equal(plan(0, 2, 0, 600, &len), 0);	/* off */
	assert_int_equal(len, 0);
	assert_int_equal(plan(10, 2, 0, 60, &len), 6);
	assert_int_equal(len, 10);
	assert_int_equal(plan(10, 2, 0, 60.04, &len), 6); /* 0.04 s rest */
	assert_int_equal(plan(10, 2, 0, 62, &len), 7);	  /* a segment */
	assert_int_equal(plan(10, 2, 0, 10, &len), 0);	  /* one chunk */
	assert_int_equal(plan(10, 2, 0, 11, &len), 0);	  /* 1 s rest */
	assert_int_equal(plan(10, 2, 60, 60, &len), 0);	  /* not longer */
	assert_int_equal(plan(10, 2, 59, 60, &len), 6);
	assert_int_equal(plan(10, 4, 0, 60, &len), 0);	  /* not a multiple */
	assert_int_equal(plan(10, 2, 0, 0, &len), 0);	  /* no duration */
}

static void
test_range(void **state)
{
	cJSON *ctx = chunks_ctx(10, 2, 0, 60);
	cJSON *first = ladderd_chunks_range(ctx, 0, 6, 10);
	cJSON *mid = ladderd_chunks_range(ctx, 2, 6, 10);
	cJSON *last = ladderd_chunks_range(ctx, 5, 6, 10);
	char name[16];

	(void)state;
	assert_non_null(first);
	assert_true(ladderd_ctx_num(first, "start", -1) == 0);
	assert_true(ladderd_ctx_num(first, "end", -1) == 10);
	assert_true(ladderd_ctx_num(first, "preroll", -1) == 0);
	assert_true(ladderd_ctx_num(mid, "start", -1) == 20);
	assert_true(ladderd_ctx_num(mid, "end", -1) == 30);
	assert_true(ladderd_ctx_num(mid, "preroll", -1) == 2);
	assert_true(ladderd_ctx_num(last, "end", -1) == 0); /* to the end */
	assert_int_equal(ladderd_chunks_unit_name("720p", 3, name,
			     sizeof(name)), 0);
	assert_string_equal(name, "720p.chunk003");
	assert_int_equal(ladderd_chunks_unit_name("a-long-rung-name", 3, name,
			     sizeof(name)), -ENAMETOOLONG);
	cJSON_Delete(first);
	cJSON_Delete(mid);
	cJSON_Delete(last);
	cJSON_Delete(ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_range),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

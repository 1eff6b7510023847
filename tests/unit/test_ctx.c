/* tests/unit/test_ctx.c - context helpers, merge, layout, names. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctx.h"

static void
test_get_set(void **state)
{
	cJSON *ctx = cJSON_Parse("{\"probe\":{\"video\":{\"width\":1280,"
				 "\"codec\":\"h264\",\"on\":true}}}");
	cJSON *obj;

	(void)state;
	assert_int_equal(ladderd_ctx_num(ctx, "probe.video.width", 0), 1280);
	assert_string_equal(ladderd_ctx_str(ctx, "probe.video.codec", "x"),
	    "h264");
	assert_string_equal(ladderd_ctx_str(ctx, "probe.video.width", "dflt"),
	    "dflt"); /* wrong type gives the default */
	assert_null(ladderd_ctx_get(ctx, "probe.audio"));
	assert_null(ladderd_ctx_get(ctx, "probe..video"));
	assert_true(ladderd_ctx_bool(ctx, "probe.video.on", 0));
	/* set replaces instead of appending a duplicate key */
	obj = ladderd_ctx_obj(ctx, "probe");
	assert_int_equal(ladderd_ctx_set(obj, "video", cJSON_CreateNumber(1)),
	    0);
	assert_int_equal(cJSON_GetArraySize(obj), 1);
	assert_int_equal(ladderd_ctx_num(ctx, "probe.video", 0), 1);
	/* lookups are case-sensitive */
	assert_null(ladderd_ctx_get(ctx, "Probe"));
	/* set on a non-object fails and leaves ownership with the caller */
	{
		cJSON *item = cJSON_CreateNumber(2);

		assert_int_equal(ladderd_ctx_set(ladderd_ctx_obj(ctx, "probe")
			->child, "x", item), -1);
		cJSON_Delete(item);
	}
	cJSON_Delete(ctx);
}

static void
test_merge(void **state)
{
	cJSON *ctx = cJSON_Parse("{\"a\":1,\"g\":{\"x\":1,\"y\":2},\"l\":[1]}");
	cJSON *args = cJSON_Parse("{\"a\":2,\"g\":{\"y\":3,\"z\":4},"
				  "\"l\":[5,6],\"new\":\"s\"}");

	(void)state;
	assert_int_equal(ladderd_ctx_merge(ctx, args), 0);
	assert_int_equal(ladderd_ctx_num(ctx, "a", 0), 2);
	assert_int_equal(ladderd_ctx_num(ctx, "g.x", 0), 1); /* kept */
	assert_int_equal(ladderd_ctx_num(ctx, "g.y", 0), 3); /* replaced */
	assert_int_equal(ladderd_ctx_num(ctx, "g.z", 0), 4); /* added */
	assert_int_equal(cJSON_GetArraySize(ladderd_ctx_get(ctx, "l")), 2);
	assert_string_equal(ladderd_ctx_str(ctx, "new", ""), "s");
	/* args are only read */
	assert_int_equal(ladderd_ctx_num(args, "a", 0), 2);
	assert_int_equal(ladderd_ctx_merge(ctx, NULL), 0);
	cJSON_Delete(args);
	cJSON_Delete(ctx);
}

static void
test_paths(void **state)
{
	cJSON *ctx = cJSON_Parse("{\"task\":{\"id\":\"t1\",\"work_dir\":\"/w/t1\","
				 "\"publish_root\":\"/pub\"}}");
	char buf[256], tiny[8];

	(void)state;
	assert_int_equal(ladderd_ctx_path(ctx, LADDERD_PATH_MASTER, NULL, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "/w/t1/package/master.m3u8");
	assert_int_equal(ladderd_ctx_path(ctx, LADDERD_PATH_HLS_PLAYLIST,
	    "720p", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/w/t1/package/720p/index.m3u8");
	assert_int_equal(ladderd_ctx_path(ctx, LADDERD_PATH_TRANSCODED, "720p",
	    buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/w/t1/rungs/720p/transcoded.mp4");
	assert_int_equal(ladderd_ctx_path(ctx, LADDERD_PATH_PUBLISH, NULL, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "/pub/t1");
	assert_int_equal(ladderd_ctx_path(ctx, LADDERD_PATH_MPD, NULL, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "/w/t1/package/manifest.mpd");
	/* a rung name that would escape the folder is refused */
	assert_int_equal(ladderd_ctx_path(ctx, LADDERD_PATH_HLS_DIR, "../x",
	    buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ladderd_ctx_path(ctx, LADDERD_PATH_HLS_DIR, NULL, buf,
	    sizeof(buf)), -EINVAL);
	assert_int_equal(ladderd_ctx_path(ctx, LADDERD_PATH_MASTER, NULL, tiny,
	    sizeof(tiny)), -ENAMETOOLONG);
	/* The host's own files, by context, by folder, and relative. */
	assert_int_equal(ladderd_ctx_path(ctx, LADDERD_PATH_CONTEXT, NULL, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "/w/t1/context.json");
	assert_int_equal(ladderd_ctx_path(ctx, LADDERD_PATH_RUNG_RESULT, "720p",
	    buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/w/t1/rungs/720p/result.json");
	assert_int_equal(ladderd_ctx_work_path("/s/t2", LADDERD_PATH_RUNG_REQUEST,
	    "_group", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/s/t2/rungs/_group/request.json");
	assert_int_equal(ladderd_ctx_work_path("/s/t2", LADDERD_PATH_CLAIM, NULL,
	    buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/s/t2/claim.json");
	assert_int_equal(ladderd_ctx_work_path("/s/t2", LADDERD_PATH_PUBLISH,
	    NULL, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ladderd_ctx_path(ctx, LADDERD_PATH_PUBLISHED_MPD, NULL,
	    buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/pub/t1/manifest.mpd");
	assert_int_equal(ladderd_ctx_rel_path(ctx,
	    LADDERD_PATH_PUBLISHED_MASTER, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "t1/master.m3u8");
	assert_int_equal(ladderd_ctx_rel_path(ctx, LADDERD_PATH_HLS_PLAYLIST,
	    "720p", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "package/720p/index.m3u8");
	assert_int_equal(ladderd_ctx_rel_path(ctx, LADDERD_PATH_POSTER, NULL,
	    buf, sizeof(buf)), 0);
	assert_string_equal(buf, "package/poster.jpg");
	assert_int_equal(ladderd_ctx_rel_path(ctx, LADDERD_PATH_THUMBS_DIR, NULL,
	    buf, sizeof(buf)), 0);
	assert_string_equal(buf, "package/thumbs");
	assert_int_equal(ladderd_ctx_path(ctx, LADDERD_PATH__COUNT, NULL, buf,
	    sizeof(buf)), -EINVAL);
	cJSON_Delete(ctx);
	ctx = cJSON_Parse("{\"task\":{\"id\":\"t1\"}}");
	assert_int_equal(ladderd_ctx_path(ctx, LADDERD_PATH_WORK, NULL, buf,
	    sizeof(buf)), -EINVAL);
	cJSON_Delete(ctx);
}

static void
test_names(void **state)
{
	char long65[66], id[80];

	(void)state;
	memset(long65, 'x', 65);
	long65[65] = '\0';
	assert_true(ladderd_ctx_valid_name("trailer-2026.v1_A"));
	assert_true(ladderd_ctx_valid_name(long65 + 1)); /* 64 is fine */
	assert_false(ladderd_ctx_valid_name(long65));
	assert_false(ladderd_ctx_valid_name(""));
	assert_false(ladderd_ctx_valid_name("."));
	assert_false(ladderd_ctx_valid_name(".."));
	assert_false(ladderd_ctx_valid_name("a/b"));
	assert_false(ladderd_ctx_valid_name("caf\xc3\xa9"));
	assert_false(ladderd_ctx_valid_name("a b"));
	assert_false(ladderd_ctx_valid_name(NULL));
	assert_int_equal(ladderd_ctx_derive_id("/in/My Movie (1).mov", 0xabc,
	    id, sizeof(id)), 0);
	assert_string_equal(id, "My_Movie__1_-000abc");
	assert_true(ladderd_ctx_valid_name(id));
	assert_int_equal(ladderd_ctx_derive_id("..hidden", 1, id, sizeof(id)),
	    0);
	assert_true(ladderd_ctx_valid_name(id));
	assert_int_equal(ladderd_ctx_derive_id("\xc3\xa9t\xc3\xa9.mp4", 1, id,
	    sizeof(id)), 0);
	assert_true(ladderd_ctx_valid_name(id));
}

static void
test_checkpoint(void **state)
{
	char dir[] = "/tmp/ladderd-unit-XXXXXX", path[128];
	cJSON *ctx = cJSON_Parse("{\"a\":{\"b\":[1,2,3]}}"), *back = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/context.json", dir);
	assert_int_equal(ladderd_ctx_save(ctx, path), 0);
	assert_int_equal(ladderd_ctx_load(path, &back), 0);
	assert_true(cJSON_Compare(ctx, back, 1));
	cJSON_Delete(back);
	/* not a JSON object */
	{
		FILE *f = fopen(path, "w");

		fputs("[1,2", f);
		fclose(f);
	}
	assert_int_equal(ladderd_ctx_load(path, &back), -EBADMSG);
	unlink(path);
	rmdir(dir);
	cJSON_Delete(ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_set),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_checkpoint),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

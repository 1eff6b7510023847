/* tests/unit/test_conf.c - config parsing and validation messages. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "ctx.h"

/* What stages would declare (settings.h): the schema of their groups. */
static const char decls_text[] =
    "[ { \"stage\": \"transcode\", \"name\": \"profile.video.preset\","
    "    \"type\": \"string\", \"default\": \"veryfast\","
    "    \"choices\": \"ultrafast|veryfast|medium\" },"
    "  { \"stage\": \"transcode\", \"name\": \"profile.video.profile\","
    "    \"type\": \"string\", \"default\": \"high\" },"
    "  { \"stage\": \"transcode\", \"name\": \"profile.audio.loudness\","
    "    \"type\": \"float\", \"default\": \"0\", \"min\": -70,"
    "    \"max\": -5, \"choices\": \"0\" },"
    "  { \"stage\": \"download\", \"name\": \"download.max_redirects\","
    "    \"type\": \"int\", \"default\": \"5\", \"min\": 0,"
    "    \"max\": 50 },"
    "  { \"stage\": \"download\", \"name\": \"download.protocols\","
    "    \"type\": \"strings\", \"default\": \"http,https\" },"
    "  { \"stage\": \"t\", \"name\": \"profile.t.deep.level\","
    "    \"type\": \"int\", \"default\": \"3\", \"min\": 1,"
    "    \"max\": 9 } ]";

/* Load `text`, then check the stages' groups against decls_text. */
static int
load_checked(const char *text, struct ladderd_conf **c, char *err,
    size_t errlen)
{
	cJSON *decls = cJSON_Parse(decls_text);
	int rc;

	assert_non_null(decls);
	rc = ladderd_conf_load_string(text, "/etc/x", c, err, errlen);
	if (rc == 0 && (rc = ladderd_conf_check_settings(*c, decls, err,
			    errlen)) < 0) {
		ladderd_conf_free(*c);
		*c = NULL;
	}
	cJSON_Delete(decls);
	return rc;
}

static void
test_defaults(void **state)
{
	struct ladderd_conf *c = NULL;
	char err[1024];
	const struct ladderd_profile *p;

	(void)state;
	assert_int_equal(ladderd_conf_load_string("", NULL, &c, err,
	    sizeof(err)), 0);
	p = ladderd_conf_profile(c, "default");
	assert_non_null(p);
	assert_int_equal(ladderd_ctx_num(p->settings, "segment_duration", 0), 4);
	assert_string_equal(ladderd_ctx_str(p->settings, "segment_type", ""),
	    "fmp4");
	assert_int_equal(cJSON_GetArraySize(ladderd_ctx_get(p->settings,
	    "ladder")), 4);
	assert_int_equal(c->max_jobs, 1);
	assert_true(c->max_rungs >= 1);
	assert_int_equal(c->rung_retries, 1);
	assert_string_equal(c->workflow.stages[LADDERD_PHASE_PRE][0].name,
	    "download");
	ladderd_conf_free(c);
}

static void
test_good(void **state)
{
	static const char text[] =
	    "spool = \"spool\";\n"
	    "stage_dir = \"plugins:/opt/st\";\n"
	    "max_rungs = 3;\n"
	    "watch = ( { path = \"/in\"; profile = \"fast\"; } );\n"
	    "profiles = {\n"
	    "  fast = { segment_duration = 2; segment_type = \"mpegts\";\n"
	    "    video = { preset = \"ultrafast\"; };\n"
	    "    ladder = ( { name = \"low\"; height = 240; bitrate = 300; } );\n"
	    "    workflow = { rendition = ( \"transcode\",\n"
	    "      { stage = \"notify\"; args = { level = 2; tag = \"x\"; }; } ); };\n"
	    "  };\n"
	    "};\n";
	struct ladderd_conf *c = NULL;
	const struct ladderd_profile *p;
	const struct ladderd_workflow *wf;
	char err[1024];

	(void)state;
	assert_int_equal(load_checked(text, &c, err, sizeof(err)), 0);
	assert_string_equal(c->spool, "/etc/x/spool"); /* relative to file */
	/* the configured folders first, then the built-in stages */
	assert_int_equal(strncmp(c->stage_path, "/etc/x/plugins:/opt/st:", 23),
	    0);
	assert_true(strlen(c->stage_path) > 23);
	assert_int_equal(c->max_rungs, 3);
	assert_int_equal(c->nwatches, 1);
	assert_string_equal(c->watches[0].profile, "fast");
	p = ladderd_conf_profile(c, "fast");
	assert_non_null(p);
	assert_string_equal(ladderd_ctx_str(p->settings, "video.preset", ""),
	    "ultrafast");
	/* defaults fill what the group leaves out */
	assert_string_equal(ladderd_ctx_str(p->settings, "video.profile", ""),
	    "high");
	assert_non_null(ladderd_conf_profile(c, "default"));
	wf = ladderd_conf_workflow(c, p);
	assert_int_equal(wf->n[LADDERD_PHASE_RENDITION], 2);
	assert_int_equal(ladderd_ctx_num(
	    wf->stages[LADDERD_PHASE_RENDITION][1].args, "level", 0), 2);
	/* phases the profile leaves out keep the default list */
	assert_int_equal(wf->n[LADDERD_PHASE_PRE], 3);
	ladderd_conf_free(c);
}

/* Each bad config must be refused with its line and a reason. */
static void
test_bad(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{ "max_jobs = 1;\nmax_jbos = 2;\n",
		    "<string>:2: unknown setting 'max_jbos'" },
		{ "max_jobs = \"two\";\n", "<string>:1: 'max_jobs' must be an "
					  "integer" },
		{ "\n\nmax_rungs = 1000;\n", "<string>:3: 'max_rungs' is 1000, "
					    "must be in 0..256" },
		{ "profiles = { p = {\n segment_type = \"avi\"; }; };\n",
		    "<string>:2: 'segment_type' is \"avi\", must be one of "
		    "fmp4|mpegts" },
		{ "profiles = { p = { ladder = (\n"
		  "  { name = \"a/b\"; height = 16; bitrate = 100; } ); }; };\n",
		    "<string>:2: rung name 'a/b' is not 1..64 of" },
		/* The name is quoted from the config, not from freed memory. */
		{ "profiles = { p = { ladder = (\n"
		  "  { name = \"540p\"; height = 540; bitrate = 1800; },\n"
		  "  { name = \"540p\"; height = 540; bitrate = 900; } ); }; };\n",
		    "<string>:3: rung name '540p' used twice" },
		{ "profiles = { p = { ladder = (\n"
		  "  { name = \"audio\"; height = 540; bitrate = 1800; } ); };"
		  " };\n",
		    "<string>:2: rung name 'audio' is not 1..64 of" },
		{ "profiles = { p = { ladder = ( { name = \"x\"; height = 720; "
		  "} ); }; };\n",
		    "missing required setting 'bitrate'" },
		{ "profiles = { p = { ladder = (); }; };\n",
		    "'ladder' is empty" },
		{ "watch = ( { path = \"/in\"; profile = \"nope\"; } );\n",
		    "<string>:1: watch names unknown profile 'nope'" },
		{ "workflow = { middle = ( \"x\" ); };\n",
		    "unknown workflow phase 'middle'" },
		{ "workflow = { pre = ( { args = { a = 1; }; } ); };\n",
		    "workflow entry without 'stage" },
		{ "max_jobs = 1;\nspool = ;\n", "<string>:2: syntax error" },
		/* Only a group may be a stage's: a scalar is refused at once. */
		{ "profiles = { p = {\n vidoe = 3; }; };\n",
		    "<string>:2: unknown setting 'vidoe'" },
	};
	char err[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ladderd_conf *c = NULL;
		int rc = ladderd_conf_load_string(cases[i].text, NULL, &c, err,
		    sizeof(err));

		if (rc == 0 || strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: rc %d, message '%s', want '%s'", i,
			    rc, err, cases[i].want);
		assert_null(c);
	}
}

/* Defaults of the stages' groups are filled in, nested ones too. */
static void
test_stage_defaults(void **state)
{
	struct ladderd_conf *c = NULL;
	const struct ladderd_profile *p;
	char err[1024];

	(void)state;
	assert_int_equal(load_checked("download = { max_redirects = 7; };\n",
	    &c, err, sizeof(err)), 0);
	p = ladderd_conf_profile(c, "default");
	assert_string_equal(ladderd_ctx_str(p->settings, "video.preset", ""),
	    "veryfast");
	assert_int_equal(ladderd_ctx_num(p->settings, "t.deep.level", 0), 3);
	assert_int_equal(ladderd_ctx_num(c->stage_groups,
	    "download.max_redirects", 0), 7);
	assert_int_equal(cJSON_GetArraySize(ladderd_ctx_get(c->stage_groups,
	    "download.protocols")), 2);
	ladderd_conf_free(c);
}

/* The stages' groups are refused with their line and the stage's range. */
static void
test_stage_bad(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{ "profiles = { p = { video = {\n preset = \"turbo\"; }; }; };\n",
		    "<string>:2: 'preset' is \"turbo\", must be one of "
		    "ultrafast|veryfast|medium (stage transcode)" },
		{ "profiles = { p = { video = {\n prest = \"fast\"; }; }; };\n",
		    "<string>:2: unknown setting 'prest' (no stage of the "
		    "workflows declares profile.video.prest)" },
		{ "\ndownload = { max_redirects = 80; };\n",
		    "<string>:2: 'max_redirects' is 80, must be in 0..50 (stage "
		    "download)" },
		{ "profiles = { p = { audio = { loudness = -3.0; }; }; };\n",
		    "'loudness' is -3, must be 0 or in -70..-5 (stage "
		    "transcode)" },
		{ "profiles = { p = { t = { deep = { level = 10; }; }; }; };\n",
		    "'level' is 10, must be in 1..9 (stage t)" },
		{ "profiles = { p = { t = { deep = 1; }; }; };\n",
		    "'deep' must be a group" },
		{ "frobnicate = { a = 1; };\n",
		    "<string>:1: unknown setting 'frobnicate' (no stage of the "
		    "workflows declares settings in it)" },
	};
	char err[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ladderd_conf *c = NULL;
		int rc = load_checked(cases[i].text, &c, err, sizeof(err));

		if (rc == 0 || strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: rc %d, message '%s', want '%s'", i,
			    rc, err, cases[i].want);
		assert_null(c);
	}
}

/* A stage may not declare a setting in a group the daemon owns. */
static void
test_stage_collision(void **state)
{
	cJSON *decls = cJSON_Parse("[ { \"stage\": \"x\", \"name\": "
				   "\"profile.ladder.x\", \"type\": \"int\", "
				   "\"default\": \"1\" } ]");
	struct ladderd_conf *c = NULL;
	char err[1024];

	(void)state;
	assert_int_equal(ladderd_conf_load_string("", NULL, &c, err,
	    sizeof(err)), 0);
	assert_true(ladderd_conf_check_settings(c, decls, err, sizeof(err)) <
	    0);
	assert_non_null(strstr(err, "stage 'x' declares setting "
				    "'profile.ladder.x', which is not in a "
				    "group of its own"));
	ladderd_conf_free(c);
	cJSON_Delete(decls);
}

static void
test_file_line(void **state)
{
	char path[] = "/tmp/ladderd-conf-XXXXXX";
	int fd = mkstemp(path);
	struct ladderd_conf *c = NULL;
	char err[1024], want[256];

	(void)state;
	assert_true(fd >= 0);
	assert_true(write(fd, "max_jobs = 2;\n\nrung_timeout = 0;\n", 33) == 33);
	close(fd);
	assert_true(ladderd_conf_load(path, &c, err, sizeof(err)) < 0);
	snprintf(want, sizeof(want), "%s:3: 'rung_timeout' is 0", path);
	assert_non_null(strstr(err, want));
	unlink(path);
	assert_true(ladderd_conf_load("/nonexistent/ladderd.conf", &c, err,
	    sizeof(err)) < 0);
	assert_non_null(strstr(err, "cannot open config"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_stage_defaults),
		cmocka_unit_test(test_stage_bad),
		cmocka_unit_test(test_stage_collision),
		cmocka_unit_test(test_file_line),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

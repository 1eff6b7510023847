/*
 * tests/stages/t_record.c - test-only stage. In a rung: sleeps
 * `record_sleep_ms` (named argument, else the setting it declares,
 * profile.t_record.sleep_ms, default 300: t0115 shows a stage's own setting
 * needs no change of the daemon) and records
 * ctx.t_record = { start_us, end_us, pid, greeting } (greeting: the named
 * argument `greeting`, to show arguments reach the context). Outside a
 * rung (pre/post): records ctx.t_record_post.order = the rung names of
 * ctx.renditions in order, and writes ctx.renditions to package/renditions.json so publish
 * has something to move.
 */
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stage.h"

static const struct ladderd_setting t_record_settings[] = {
	{ "profile.t_record.sleep_ms", LADDERD_SETTING_INT, "300", 0, 60000,
	    NULL, "milliseconds a rung sleeps (test stage)" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL },
};

static double
t_record_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static enum ladderd_rc
t_record_run(void *state, struct ladderd_call *call)
{
	cJSON *rec = cJSON_CreateObject();
	const char *greeting = ladderd_ctx_str(call->ctx, "greeting", NULL);

	(void)state;
	if (call->rung) {
		long ms = (long)ladderd_ctx_num(call->ctx, "record_sleep_ms",
		    ladderd_setting_num(call->ctx, &t_record_settings[0]));
		struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };

		cJSON_AddNumberToObject(rec, "start_us", t_record_now_us());
		while (nanosleep(&d, &d) != 0)
			;
		cJSON_AddNumberToObject(rec, "end_us", t_record_now_us());
		cJSON_AddNumberToObject(rec, "pid", getpid());
		cJSON_AddNumberToObject(rec, "threads", call->threads);
		/* The unit it runs with (ctx.group), if any. */
		if (ladderd_ctx_str(call->ctx, "rung.group", NULL))
			cJSON_AddStringToObject(rec, "group",
			    ladderd_ctx_str(call->ctx, "rung.group", ""));
		if (greeting)
			cJSON_AddStringToObject(rec, "greeting", greeting);
		call->progress(call, 1.0);
		ladderd_ctx_set(call->ctx, "t_record", rec);
	} else {
		cJSON *order = cJSON_AddArrayToObject(rec, "order");
		const cJSON *r;
		char pkg[4096], file[4200];
		FILE *f;

		cJSON_ArrayForEach(r, ladderd_ctx_get(call->ctx, "renditions"))
			cJSON_AddItemToArray(order, cJSON_CreateString(
			    ladderd_ctx_str(r, "rung.name", "?")));
		if (greeting)
			cJSON_AddStringToObject(rec, "greeting", greeting);
		if (call->path(call, LADDERD_PATH_PACKAGE, NULL, pkg,
			sizeof(pkg)) == 0) {
			mkdir(pkg, 0755);
			snprintf(file, sizeof(file), "%s/renditions.json", pkg);
			if ((f = fopen(file, "w")) != NULL) {
				char *txt = cJSON_Print(ladderd_ctx_get(
				    call->ctx, "renditions"));

				fprintf(f, "%s\n", txt ? txt : "null");
				cJSON_free(txt);
				fclose(f);
			}
		}
		ladderd_ctx_set(call->ctx, "t_record_post", rec);
	}
	return LADDERD_OK;
}

LADDERD_STAGE_DEFINE_SETTINGS("t_record", "test", NULL, t_record_settings, NULL,
    t_record_run, NULL);

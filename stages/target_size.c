/*
 * stages/target_size.c - a rung's frame size, from its height.
 *
 * Reads ctx.rung { name, kind, height, bitrate }, the displayed source size
 * ctx.probe.video.display_width/height (after SAR and rotation),
 * ctx.profile.allow_upscale and ctx.ladder (to know whether every video rung
 * is above the source). Adds ctx.target_size = { width, height, bitrate }.
 *
 * A rung's height is the SHORT side of the displayed picture, so a portrait
 * source gets portrait rungs with the pixel budget of the landscape ones:
 * the long side follows the display aspect, both sides are rounded to the
 * nearest even number (4:2:0 chroma needs it), and without allow_upscale
 * neither side exceeds the source. Outcomes:
 *   audio rung                    -> LADDERD_SKIP, nothing added
 *   rung above the source         -> ctx.target_size.dropped = "why",
 *                                    LADDERD_STOP (the engine drops it)
 *   every video rung above source -> the lowest one is kept at the source's
 *                                    short side (ctx.target_size.capped
 *                                    says so), with its own bitrate
 * Fails only on a context without the facts it needs.
 */
#include <math.h>
#include <stdio.h>

#include "stage.h"

/* The nearest even number to x, at least 2. */
static long
target_size_even(double x)
{
	long v = 2 * lround(x / 2.0);

	return v < 2 ? 2 : v;
}

/* The even number at or below n, at least 2. */
static long
target_size_even_down(long n)
{
	n &= ~1L;
	return n < 2 ? 2 : n;
}

/* ctx.rung.height as a positive integer, or -1. */
static long
target_size_height(const cJSON *rung)
{
	double h = ladderd_ctx_num(rung, "height", -1);

	if (!(h >= 1 && h <= 65536) || h != floor(h))
		return -1;
	return (long)h;
}

/*
 * Is `name` (of height `height`) the rung to keep when every video rung is
 * above the source? That is the lowest video rung of the ladder; of rungs
 * of equal height, the last in ladder order (the ladder is highest first).
 * Sets *ret_all_above when no video rung fits within `src_short`.
 */
static int
target_size_is_lowest(const cJSON *ladder, const char *name, long height,
    long src_short, int *ret_all_above)
{
	const cJSON *it;
	const char *lowest = NULL;
	long min = 0;
	int nvideo = 0;

	*ret_all_above = 1;
	cJSON_ArrayForEach(it, ladder) {
		const char *kind = ladderd_ctx_str(it, "kind", "video");
		const char *n = ladderd_ctx_str(it, "name", NULL);
		long h = target_size_height(it);

		if (strcmp(kind, "video") != 0 || n == NULL || h < 0)
			continue;
		nvideo++;
		if (h <= src_short)
			*ret_all_above = 0;
		if (lowest == NULL || h <= min) {
			lowest = n;
			min = h;
		}
	}
	/* No usable ladder: this rung is all we know of. */
	if (nvideo == 0)
		return 1;
	return lowest != NULL && strcmp(lowest, name) == 0 && min == height;
}

/* Hand `ts` to ctx.target_size; fails the call when it cannot. */
static enum ladderd_rc
target_size_store(struct ladderd_call *call, cJSON *ts, enum ladderd_rc rc)
{
	if (ts == NULL || ladderd_ctx_set(call->ctx, "target_size", ts) < 0) {
		cJSON_Delete(ts);
		call->fail(call, "cannot store target_size in the context");
		return LADDERD_FAIL;
	}
	return rc;
}

static enum ladderd_rc
target_size_run(void *state, struct ladderd_call *call)
{
	const cJSON *rung = ladderd_ctx_get(call->ctx, "rung");
	const cJSON *ladder = ladderd_ctx_get(call->ctx, "ladder");
	const char *name = ladderd_ctx_str(rung, "name", NULL);
	const char *kind = ladderd_ctx_str(rung, "kind", "video");
	double dw = ladderd_ctx_num(call->ctx, "probe.video.display_width", 0);
	double dh = ladderd_ctx_num(call->ctx, "probe.video.display_height", 0);
	double bitrate = ladderd_ctx_num(rung, "bitrate", -1);
	int upscale = ladderd_ctx_bool(call->ctx, "profile.allow_upscale", 0);
	long height, src_short, src_long, short_side, long_side;
	int portrait, capped = 0, all_above;
	cJSON *ts = NULL;
	char why[160];

	(void)state;
	if (!cJSON_IsObject(rung) || name == NULL) {
		call->fail(call, "context has no rung (name, kind, height, "
		    "bitrate)");
		return LADDERD_FAIL;
	}
	if (strcmp(kind, "audio") == 0)
		return LADDERD_SKIP;
	if ((height = target_size_height(rung)) < 0 || !(bitrate > 0)) {
		call->fail(call, "rung '%s' needs a positive integer height "
		    "and bitrate", name);
		return LADDERD_FAIL;
	}
	if (!(dw >= 1 && dh >= 1)) {
		call->fail(call, "context has no probe.video.display_width/"
		    "display_height (run probe first)");
		return LADDERD_FAIL;
	}
	if (!cJSON_IsArray(ladder))
		ladder = ladderd_ctx_get(call->ctx, "profile.ladder");
	portrait = dh > dw;
	src_short = lround(portrait ? dw : dh);
	src_long = lround(portrait ? dh : dw);

	short_side = target_size_even(height);
	if (!upscale && height > src_short) {
		/* A chunk's unit (chunk_of) is its rung in the ladder. */
		if (!target_size_is_lowest(ladder, ladderd_ctx_str(rung,
			"chunk_of", name), height, src_short, &all_above) ||
		    !all_above) {
			if (snprintf(why, sizeof(why), "%s is above the source "
			    "(%ld lines)", name, src_short) >= (int)sizeof(why))
				(void)snprintf(why, sizeof(why), "the rung is "
				    "above the source (%ld lines)", src_short);
			ts = cJSON_CreateObject();
			if (ts != NULL &&
			    (!cJSON_AddStringToObject(ts, "dropped", why) ||
			    !cJSON_AddNumberToObject(ts, "height", height) ||
			    !cJSON_AddNumberToObject(ts, "bitrate", bitrate) ||
			    !cJSON_AddNumberToObject(ts, "source_lines",
				src_short))) {
				cJSON_Delete(ts);
				ts = NULL;
			}
			(void)ladderd_summary_str(call->ctx, "reason", why);
			return target_size_store(call, ts, LADDERD_STOP);
		}
		/* At least one rung always: the lowest plays the source. */
		short_side = target_size_even_down(src_short);
		capped = 1;
		(void)snprintf(why, sizeof(why), "every rung is above the "
		    "source (%ld lines): kept at %ld", src_short, short_side);
	}
	long_side = target_size_even((double)short_side * src_long / src_short);
	/* Rounding to even must not upscale by a pixel either. */
	if (!upscale) {
		if (short_side > src_short)
			short_side = target_size_even_down(src_short);
		if (long_side > src_long)
			long_side = target_size_even_down(src_long);
	}

	ts = cJSON_CreateObject();
	if (ts != NULL &&
	    (!cJSON_AddNumberToObject(ts, "width",
		portrait ? short_side : long_side) ||
	    !cJSON_AddNumberToObject(ts, "height",
		portrait ? long_side : short_side) ||
	    !cJSON_AddNumberToObject(ts, "bitrate", bitrate) ||
	    (capped && !cJSON_AddStringToObject(ts, "capped", why)))) {
		cJSON_Delete(ts);
		ts = NULL;
	}
	return target_size_store(call, ts, LADDERD_OK);
}

LADDERD_STAGE_DEFINE("target_size", "1.0", NULL, NULL, target_size_run, NULL);

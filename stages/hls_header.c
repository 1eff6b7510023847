/*
 * stages/hls_header.c - fix the ladder and the master playlist's header.
 *
 * Reads ctx.profile.ladder, profile.segment_type, profile.audio.bitrate and
 * ctx.probe.has_audio. Adds:
 *   ctx.ladder = the chord's members in ladder order: every profile rung
 *     with kind "video", then, in fMP4 mode with a source that has audio,
 *     { name "audio", kind "audio", bitrate profile.audio.bitrate } (audio
 *     is encoded once, as its own rendition; in MPEG-TS mode every video
 *     rung carries it).
 *   ctx.hls_header = { version, independent_segments, segment_type }.
 * It writes no file: hls_footer assembles master.m3u8 atomically once the
 * rungs are done, so a half-built package never has a master.
 *
 * EXT-X-VERSION is the smallest RFC 8216 section 7 allows for what we
 * write: fMP4 media playlists carry EXT-X-MAP without EXT-X-I-FRAMES-ONLY,
 * which needs 6; MPEG-TS ones need 3 for floating-point EXTINF durations.
 * (7 is only needed for INSTREAM-ID "SERVICE" values; EXT-X-MEDIA and
 * EXT-X-INDEPENDENT-SEGMENTS need no particular version.) A chunker that
 * adds EXT-X-BYTERANGE to MPEG-TS playlists must raise it to 4.
 * Fails on a ladder a package cannot be built from: empty, a rung without a
 * valid name (it becomes a folder and a URI: [A-Za-z0-9._-], 1..64, not
 * "." or ".."), height or bitrate, a duplicate name, or a video rung named
 * "audio".
 */
#include <math.h>
#include <stdio.h>

#include "stage.h"

#define HLS_HEADER_NAME_MAX 64

/* A rung name is a folder and a URI path segment: keep it boring. */
static int
hls_header_name_ok(const char *name)
{
	size_t n = strlen(name);
	size_t i;

	if (n == 0 || n > HLS_HEADER_NAME_MAX || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* A positive integer no larger than max, or -1. */
static double
hls_header_posint(const cJSON *obj, const char *key, double max)
{
	double v = ladderd_ctx_num(obj, key, -1);

	if (!(v >= 1 && v <= max) || v != floor(v))
		return -1;
	return v;
}

/*
 * Append one checked video rung of the profile to `ladder`. Returns 0, or
 * -1 after failing the call.
 */
static int
hls_header_add_video(struct ladderd_call *call, cJSON *ladder,
    const cJSON *in, int pos)
{
	const char *name = ladderd_ctx_str(in, "name", NULL);
	double height = hls_header_posint(in, "height", 65536);
	double bitrate = hls_header_posint(in, "bitrate", 1e7);
	const cJSON *other;
	cJSON *rung;

	if (name == NULL || !hls_header_name_ok(name)) {
		call->fail(call, "ladder rung %d: name '%s' is not 1..%d "
		    "characters of [A-Za-z0-9._-] (nor '.' or '..')", pos,
		    name != NULL ? name : "(none)", HLS_HEADER_NAME_MAX);
		return -1;
	}
	if (strcmp(name, "audio") == 0) {
		call->fail(call, "ladder rung %d: the name 'audio' is reserved "
		    "for the audio rendition", pos);
		return -1;
	}
	if (height < 0 || bitrate < 0) {
		call->fail(call, "ladder rung '%s' needs a positive integer "
		    "height and bitrate (kbps)", name);
		return -1;
	}
	cJSON_ArrayForEach(other, ladder) {
		if (strcmp(ladderd_ctx_str(other, "name", ""), name) == 0) {
			call->fail(call, "ladder rung '%s' appears twice",
			    name);
			return -1;
		}
	}
	if ((rung = cJSON_CreateObject()) == NULL ||
	    !cJSON_AddStringToObject(rung, "name", name) ||
	    !cJSON_AddStringToObject(rung, "kind", "video") ||
	    !cJSON_AddNumberToObject(rung, "height", height) ||
	    !cJSON_AddNumberToObject(rung, "bitrate", bitrate) ||
	    (ladderd_ctx_str(in, "codec", NULL) != NULL &&
		!cJSON_AddStringToObject(rung, "codec",
		    ladderd_ctx_str(in, "codec", ""))) ||
	    !cJSON_AddItemToArray(ladder, rung)) {
		cJSON_Delete(rung);
		call->fail(call, "cannot build the ladder: out of memory");
		return -1;
	}
	return 0;
}

static enum ladderd_rc
hls_header_run(void *state, struct ladderd_call *call)
{
	const cJSON *in = ladderd_ctx_get(call->ctx, "profile.ladder");
	const char *seg = ladderd_ctx_str(call->ctx, "profile.segment_type",
	    NULL);
	int has_audio = ladderd_ctx_bool(call->ctx, "probe.has_audio", 0);
	cJSON *ladder = NULL, *header = NULL;
	enum ladderd_rc rc = LADDERD_FAIL;
	const cJSON *it;
	int fmp4, pos = 0;

	(void)state;
	if (seg == NULL ||
	    (strcmp(seg, "fmp4") != 0 && strcmp(seg, "mpegts") != 0)) {
		call->fail(call, "profile.segment_type is '%s', want 'fmp4' "
		    "or 'mpegts'", seg != NULL ? seg : "(none)");
		goto out;
	}
	fmp4 = strcmp(seg, "fmp4") == 0;
	if (!cJSON_IsArray(in) || cJSON_GetArraySize(in) == 0) {
		call->fail(call, "profile.ladder is empty: a package needs "
		    "at least one rung");
		goto out;
	}
	if ((ladder = cJSON_CreateArray()) == NULL) {
		call->fail(call, "cannot build the ladder: out of memory");
		goto out;
	}
	cJSON_ArrayForEach(it, in) {
		if (hls_header_add_video(call, ladder, it, ++pos) < 0)
			goto out;
	}
	if (fmp4 && has_audio) {
		double kbps = hls_header_posint(call->ctx,
		    "profile.audio.bitrate", 1e4);
		cJSON *audio;

		if (kbps < 0) {
			call->fail(call, "profile.audio.bitrate must be a "
			    "positive integer (kbps)");
			goto out;
		}
		if ((audio = cJSON_CreateObject()) == NULL ||
		    !cJSON_AddStringToObject(audio, "name", "audio") ||
		    !cJSON_AddStringToObject(audio, "kind", "audio") ||
		    !cJSON_AddNumberToObject(audio, "bitrate", kbps) ||
		    !cJSON_AddItemToArray(ladder, audio)) {
			cJSON_Delete(audio);
			call->fail(call, "cannot build the ladder: out of "
			    "memory");
			goto out;
		}
	}
	if ((header = cJSON_CreateObject()) == NULL ||
	    !cJSON_AddNumberToObject(header, "version", fmp4 ? 6 : 3) ||
	    !cJSON_AddBoolToObject(header, "independent_segments", 1) ||
	    !cJSON_AddStringToObject(header, "segment_type", seg)) {
		call->fail(call, "cannot build hls_header: out of memory");
		goto out;
	}
	if (ladderd_ctx_set(call->ctx, "ladder", ladder) < 0) {
		call->fail(call, "cannot store the ladder in the context");
		goto out;
	}
	ladder = NULL; /* the context owns it now */
	if (ladderd_ctx_set(call->ctx, "hls_header", header) < 0) {
		call->fail(call, "cannot store hls_header in the context");
		goto out;
	}
	header = NULL; /* the context owns it now */
	rc = LADDERD_OK;
out:
	cJSON_Delete(header);
	cJSON_Delete(ladder);
	return rc;
}

LADDERD_STAGE_DEFINE("hls_header", "1.0", NULL, NULL, hls_header_run, NULL);

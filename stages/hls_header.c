/*
 * stages/hls_header.c - fix the ladder and the master playlist's header.
 *
 * Reads ctx.profile.ladder, profile.segment_type, profile.audio.bitrate and
 * ctx.probe.has_audio. Adds:
 *   ctx.ladder = the chord's members in ladder order: every profile rung
 *     with kind "video", then, in fMP4 mode with a source that has audio,
 *     one member per audio stream kept (profile.audio.languages, max_tracks):
 *     { name "audio" (the default one) or "audio-<lang>" / "audio-<index>",
 *     kind "audio", bitrate profile.audio.bitrate, stream (source index),
 *     language, label (the title tag, made safe), default } (audio is
 *     encoded once per track, as its own rendition; in MPEG-TS mode every
 *     video rung carries the default track). With ctx.probe.audio_only
 *     (a source without video: music, a podcast) the audio members alone,
 *     fMP4 only (an mpegts profile fails, saying so).
 *   ctx.hls_header = { version, independent_segments, segment_type }.
 *   ctx.group, ctx.shared_decode, ctx.cleanup.shm: the shared decode's
 *     plan in fMP4 mode (hls_header_plan_shared below).
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
 * "audio", "audio-*" or "sub-*".
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <strings.h>

#include "stage.h"
#include "tracklabel.h"

enum { HH_MAX_TRACKS, HH_LANGUAGES, HH__COUNT };

/* Its part of the profile's audio group (transcode declares the rest). */
static const struct ladderd_setting hls_header_settings[HH__COUNT + 1] = {
	[HH_MAX_TRACKS] = { "profile.audio.max_tracks", LADDERD_SETTING_INT,
	    "0", 0, 16, NULL,
	    "fMP4: audio streams of the source made renditions, at most "
	    "(0: all)" },
	[HH_LANGUAGES] = { "profile.audio.languages", LADDERD_SETTING_STRINGS,
	    "", 0, 0, NULL,
	    "fMP4: only audio streams in these languages (empty: all; none "
	    "matching: the default stream)" },
	[HH__COUNT] = { NULL, 0, NULL, 0, 0, NULL, NULL },
};

#define HLS_HEADER_NAME_MAX 64
#define HLS_HEADER_MAX_AUDIO 16 /* audio renditions at most */
#define HLS_HEADER_MAX_READERS 16 /* FRAMERING_MAX_READERS */

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
	if (strcmp(name, "audio") == 0 || strncmp(name, "audio-", 6) == 0 ||
	    strncmp(name, "sub-", 4) == 0) {
		call->fail(call, "ladder rung %d: the names 'audio', 'audio-*' "
		    "and 'sub-*' are reserved for the audio and subtitle "
		    "renditions", pos);
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

/* A stream's language tag, or NULL (tracklabel.h). */
static const char *
hls_header_language(const cJSON *stream)
{
	return ladderd_track_language(ladderd_ctx_str(stream, "language",
	    NULL));
}

/* Whether profile.audio.languages (empty: all) lets `lang` in. */
static int
hls_header_language_wanted(const cJSON *ctx, const char *lang)
{
	const cJSON *want =
	    ladderd_ctx_get(ctx, hls_header_settings[HH_LANGUAGES].name);
	const cJSON *it;

	if (!cJSON_IsArray(want) || cJSON_GetArraySize(want) == 0)
		return 1;
	cJSON_ArrayForEach(it, want) {
		if (cJSON_IsString(it) && lang != NULL &&
		    strcasecmp(it->valuestring, lang) == 0)
			return 1;
	}
	return 0;
}

/*
 * One audio member for source stream `st` (a ctx.probe.audio entry). The
 * first is named "audio" (the name packages had before there were several
 * tracks), the next ones "audio-<language>", or "audio-<stream index>" when
 * the language is unknown or taken. Returns 0, or -1 after failing the call.
 */
static int
hls_header_audio_member(struct ladderd_call *call, cJSON *ladder,
    const cJSON *st, double kbps, int first)
{
	const char *lang = hls_header_language(st);
	int idx = (int)ladderd_ctx_num(st, "index", -1);
	char name[80], label[128];
	const cJSON *other;
	cJSON *m;

	if (first)
		(void)snprintf(name, sizeof(name), "audio");
	else if (lang != NULL)
		(void)snprintf(name, sizeof(name), "audio-%s", lang);
	else
		(void)snprintf(name, sizeof(name), "audio-%d", idx);
	cJSON_ArrayForEach(other, ladder) {
		if (strcmp(ladderd_ctx_str(other, "name", ""), name) == 0)
			(void)snprintf(name, sizeof(name), "audio-%d", idx);
	}
	ladderd_track_label(ladderd_ctx_str(st, "title", ""), label,
	    sizeof(label));
	if (label[0] == '\0' && lang != NULL)
		(void)snprintf(label, sizeof(label), "%s", lang);
	if (label[0] == '\0')
		(void)snprintf(label, sizeof(label), "%s", name);
	if ((m = cJSON_CreateObject()) == NULL ||
	    !cJSON_AddStringToObject(m, "name", name) ||
	    !cJSON_AddStringToObject(m, "kind", "audio") ||
	    !cJSON_AddNumberToObject(m, "bitrate", kbps) ||
	    !cJSON_AddNumberToObject(m, "stream", idx) ||
	    !cJSON_AddStringToObject(m, "label", label) ||
	    !cJSON_AddBoolToObject(m, "default", first) ||
	    (lang != NULL && !cJSON_AddStringToObject(m, "language", lang)) ||
	    !cJSON_AddItemToArray(ladder, m)) {
		cJSON_Delete(m);
		call->fail(call, "cannot build the ladder: out of memory");
		return -1;
	}
	return 0;
}

/*
 * fMP4: the audio members, one per decodable audio stream of the source:
 * the probe's chosen stream first (DEFAULT), then the others in stream
 * order, kept by profile.audio.languages and capped at
 * profile.audio.max_tracks (0: no cap). When the languages keep nothing,
 * the chosen stream alone: a package is never without sound.
 */
static int
hls_header_add_audio(struct ladderd_call *call, cJSON *ladder)
{
	double kbps = hls_header_posint(call->ctx, "profile.audio.bitrate",
	    1e4);
	int chosen = (int)ladderd_ctx_num(call->ctx, "probe.audio_index", -1);
	int max = (int)ladderd_setting_num(call->ctx,
	    &hls_header_settings[HH_MAX_TRACKS]);
	const cJSON *streams = ladderd_ctx_get(call->ctx, "probe.audio");
	const cJSON *st, *dflt = NULL;
	int n = 0, pass;

	if (kbps < 0) {
		call->fail(call, "profile.audio.bitrate must be a positive "
		    "integer (kbps)");
		return -1;
	}
	if (max <= 0 || max > HLS_HEADER_MAX_AUDIO)
		max = HLS_HEADER_MAX_AUDIO;
	cJSON_ArrayForEach(st, streams) {
		if ((int)ladderd_ctx_num(st, "index", -2) == chosen)
			dflt = st;
	}
	if (dflt == NULL) {
		call->fail(call, "probe.audio has no stream %d", chosen);
		return -1;
	}
	/* Pass 0: the chosen stream if wanted; pass 1: the others. */
	for (pass = 0; pass < 2; pass++) {
		cJSON_ArrayForEach(st, streams) {
			int is_dflt = st == dflt;

			if (n >= max || is_dflt != (pass == 0) ||
			    !ladderd_ctx_bool(st, "decodable", 0) ||
			    ladderd_ctx_num(st, "channels", 0) <= 0 ||
			    !hls_header_language_wanted(call->ctx,
				hls_header_language(st)))
				continue;
			if (hls_header_audio_member(call, ladder, st, kbps,
				n == 0) < 0)
				return -1;
			n++;
		}
	}
	if (n == 0 && hls_header_audio_member(call, ladder, dflt, kbps, 1) < 0)
		return -1;
	return 0;
}

/*
 * Plan the shared decode (fMP4 mode, profile.shared_decode on, two or more
 * video rungs): one "_decode" unit (stage "decode") feeds the video rungs
 * through a frame ring (stages/framering.h) named after the task (its id
 * and a hash of its work folder, so two spools never collide). Adds
 * ctx.group (the host's side, stage.h), ctx.shared_decode { ring,
 * producer, names } (the ring's side) and the ring to ctx.cleanup.shm.
 * The audio rendition joins the group: it starts alongside the video
 * rather than after it. Returns 0 or -1 after failing the call.
 */
static int
hls_header_plan_shared(struct ladderd_call *call, const cJSON *ladder)
{
	const char *work = ladderd_ctx_str(call->ctx, "task.work_dir", "");
	cJSON *group = NULL, *sd = NULL, *members, *names, *shm;
	uint32_t h = 2166136261u; /* FNV-1a */
	char ring[256];
	const cJSON *it;
	int nv = 0, n;

	if (!ladderd_ctx_bool(call->ctx, "profile.shared_decode", 1) ||
	    ladderd_ctx_str(call->ctx, "input.path", NULL) == NULL)
		return 0;
	cJSON_ArrayForEach(it, ladder)
		nv += strcmp(ladderd_ctx_str(it, "kind", ""), "video") == 0;
	if (nv < 2)
		return 0;
	for (const char *p = work; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	n = snprintf(ring, sizeof(ring), "/ladderd-%s-%08x",
	    ladderd_ctx_str(call->ctx, "task.id", "task"), h);
	if (n < 0 || (size_t)n >= sizeof(ring))
		return 0; /* each rung decodes alone */
	if ((group = cJSON_CreateObject()) == NULL ||
	    (sd = cJSON_CreateObject()) == NULL ||
	    !cJSON_AddStringToObject(group, "unit", "_decode") ||
	    !cJSON_AddStringToObject(group, "label", "shared decoder") ||
	    !cJSON_AddItemToObject(group, "stages",
		cJSON_CreateStringArray((const char *const[]){ "decode" }, 1)) ||
	    !cJSON_AddStringToObject(group, "requires_stage", "transcode") ||
	    (members = cJSON_AddArrayToObject(group, "members")) == NULL ||
	    !cJSON_AddStringToObject(sd, "ring", ring) ||
	    !cJSON_AddStringToObject(sd, "producer", "_decode") ||
	    (names = cJSON_AddArrayToObject(sd, "names")) == NULL)
		goto nomem;
	nv = 0;
	cJSON_ArrayForEach(it, ladder) {
		const char *name = ladderd_ctx_str(it, "name", "");
		int video = strcmp(ladderd_ctx_str(it, "kind", ""),
		    "video") == 0;

		if (video && nv >= HLS_HEADER_MAX_READERS)
			continue; /* the ring's limit: it decodes alone */
		if (!cJSON_AddItemToArray(members, cJSON_CreateString(name)) ||
		    (video &&
			!cJSON_AddItemToArray(names, cJSON_CreateString(name))))
			goto nomem;
		nv += video;
	}
	if ((shm = cJSON_GetObjectItemCaseSensitive(
		 ladderd_ctx_obj(call->ctx, "cleanup"), "shm")) == NULL &&
	    (shm = cJSON_AddArrayToObject(ladderd_ctx_obj(call->ctx,
					      "cleanup"), "shm")) == NULL)
		goto nomem;
	if (!cJSON_AddItemToArray(shm, cJSON_CreateString(ring)) ||
	    ladderd_ctx_set(call->ctx, "shared_decode", sd) < 0)
		goto nomem;
	sd = NULL;
	if (ladderd_ctx_set(call->ctx, "group", group) < 0)
		goto nomem;
	return 0;
nomem:
	cJSON_Delete(group);
	cJSON_Delete(sd);
	call->fail(call, "cannot plan the shared decode: out of memory");
	return -1;
}

static enum ladderd_rc
hls_header_run(void *state, struct ladderd_call *call)
{
	const cJSON *in = ladderd_ctx_get(call->ctx, "profile.ladder");
	const char *seg = ladderd_ctx_str(call->ctx, "profile.segment_type",
	    NULL);
	int has_audio = ladderd_ctx_bool(call->ctx, "probe.has_audio", 0);
	int audio_only = ladderd_ctx_bool(call->ctx, "probe.audio_only", 0);
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
	/* Music, a podcast: the audio renditions alone, which need fMP4. */
	if (audio_only && !fmp4) {
		call->fail(call, "the source has no video: an audio-only "
		    "package needs segment_type = \"fmp4\", this profile is "
		    "\"mpegts\"");
		goto out;
	}
	cJSON_ArrayForEach(it, in) {
		if (!audio_only &&
		    hls_header_add_video(call, ladder, it, ++pos) < 0)
			goto out;
	}
	if (fmp4 && has_audio && hls_header_add_audio(call, ladder) < 0)
		goto out;
	if ((header = cJSON_CreateObject()) == NULL ||
	    !cJSON_AddNumberToObject(header, "version", fmp4 ? 6 : 3) ||
	    !cJSON_AddBoolToObject(header, "independent_segments", 1) ||
	    !cJSON_AddStringToObject(header, "segment_type", seg)) {
		call->fail(call, "cannot build hls_header: out of memory");
		goto out;
	}
	/* A re-run (a restarted task) plans afresh. */
	cJSON_DeleteItemFromObjectCaseSensitive(call->ctx, "group");
	cJSON_DeleteItemFromObjectCaseSensitive(call->ctx, "shared_decode");
	if (fmp4 && hls_header_plan_shared(call, ladder) < 0)
		goto out;
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

LADDERD_STAGE_DEFINE_SETTINGS("hls_header", "1.0", NULL, hls_header_settings,
    NULL, hls_header_run, NULL);

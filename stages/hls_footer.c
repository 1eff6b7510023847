/*
 * stages/hls_footer.c - the master playlist, written once, atomically.
 *
 * A post stage: reads ctx.hls_header.version, ctx.profile.segment_type,
 * ctx.probe (audio language), ctx.renditions (ladder order; only
 * status "ok" entries count) with each rung's chunk_hls, hls_info and
 * iframes, ctx.subtitles (EXT-X-MEDIA TYPE=SUBTITLES) and ctx.thumbnails
 * (EXT-X-IMAGE-STREAM-INF).
 * Writes call->path(MASTER) with call->write_atomic and adds
 * ctx.hls_footer = { master, variants, audio }.
 *
 * With audio renditions (fMP4 mode: one per audio track, an EXT-X-MEDIA
 * each with NAME, LANGUAGE, DEFAULT, AUTOSELECT, CHANNELS) every video
 * variant refers to the AUDIO="audio" group: its BANDWIDTH and
 * AVERAGE-BANDWIDTH are the sums of the video's and the largest audio's
 * (RFC 8216 4.3.4.2: the largest sum of peak rates of any playable
 * combination of renditions), its CODECS name both.
 * Text subtitle tracks (ctx.subtitles.tracks, the subtitles stage) are
 * EXT-X-MEDIA TYPE=SUBTITLES of the "subs" group (NAME, LANGUAGE, DEFAULT,
 * AUTOSELECT, FORCED), and every variant names the group.
 * A source without video (ctx.probe.audio_only) gets one audio-only variant
 * (CODECS "mp4a...") on its default audio track, naming the audio group
 * when there are several tracks. Fails when no video rung succeeded (and
 * the source has video), or when an audio rendition of the ladder did not
 * (a package without sound is never published).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

#include "encode_settings.h"
#include "stage.h"
#include "textbuf.h"
#include "crashpoint.h"

/* Name and kind of a rendition; its "rung" is {name, kind} or a name. */
static const char *
hls_footer_rung(const cJSON *r, const char **kind)
{
	const cJSON *rung = cJSON_GetObjectItemCaseSensitive(r, "rung");
	const char *name = NULL;

	*kind = ladderd_ctx_str(r, "hls_info.kind", NULL);
	if (cJSON_IsString(rung)) {
		name = rung->valuestring;
	} else if (cJSON_IsObject(rung)) {
		name = ladderd_ctx_str(rung, "name", NULL);
		if (*kind == NULL)
			*kind = ladderd_ctx_str(rung, "kind", NULL);
	}
	if (*kind == NULL)
		*kind = "video";
	return name;
}

static int
hls_footer_ok(const cJSON *r)
{
	const char *status = ladderd_ctx_str(r, "status", "");

	return strcmp(status, "ok") == 0;
}

/*
 * What the audio renditions contribute to the variants: the largest peak
 * (RFC 8216 4.3.4.2 counts the largest combination) with its average and
 * CODECS, the default track's playlist for an audio-only variant, how
 * many succeeded, and whether there is an AUDIO group at all (`group`:
 * the last audio rendition, NULL without one).
 */
struct hls_footer_audio {
	const cJSON *group;
	double peak, avg;
	const char *codec, *uri;
	int n;
};

/*
 * Add the EXT-X-MEDIA TYPE=AUDIO entries to `b` and fill `a`. Every audio
 * rendition of the ladder must have succeeded: a package without sound is
 * never published. 0, or -1 with the message recorded.
 */
static int
hls_footer_audio(struct ladderd_call *call, const cJSON *rends, int fmp4,
    int audio_only, struct textbuf *b, struct hls_footer_audio *a)
{
	const cJSON *r;

	cJSON_ArrayForEach(r, rends) {
		const char *kind;

		(void)hls_footer_rung(r, &kind);
		a->n += strcmp(kind, "audio") == 0 && hls_footer_ok(r);
	}
	cJSON_ArrayForEach(r, rends) {
		const char *kind;
		const char *name = hls_footer_rung(r, &kind);
		const char *uri, *lang, *codec;
		double peak;
		int ch;

		if (strcmp(kind, "audio") != 0)
			continue;
		if (!hls_footer_ok(r)) {
			call->fail(call, "audio rendition '%s' is %s: no "
			    "package without sound", name ? name : "?",
			    ladderd_ctx_str(r, "status", "missing"));
			return -1;
		}
		if (!fmp4)
			continue;
		uri = ladderd_ctx_str(r, "hls_info.uri",
		    ladderd_ctx_str(r, "chunk_hls.playlist", NULL));
		/* A single track without its own language: the probe's. */
		lang = ladderd_ctx_str(r, "hls_info.language",
		    ladderd_ctx_get(r, "rung.stream") == NULL ?
			ladderd_ctx_audio_language(call->ctx) : NULL);
		ch = (int)ladderd_ctx_num(r, "hls_info.channels",
		    ladderd_setting_num(call->ctx,
			encode_setting(ENC_AUDIO_CHANNELS)));
		peak = ladderd_ctx_num(r, "hls_info.bandwidth", 0);
		codec = ladderd_ctx_str(r, "hls_info.codecs", NULL);
		if (uri == NULL || codec == NULL || peak <= 0) {
			call->fail(call, "audio rendition '%s' lacks hls_info",
			    name ? name : "?");
			return -1;
		}
		if (a->group == NULL || peak > a->peak) {
			a->peak = peak;
			a->avg = ladderd_ctx_num(r,
			    "hls_info.average_bandwidth", 0);
			a->codec = codec;
		}
		a->group = r;
		if (a->uri == NULL ||
		    ladderd_ctx_bool(r, "hls_info.default", 0))
			a->uri = uri;
		/* One track and no video: the variant itself, no group. */
		if (audio_only && a->n == 1)
			continue;
		textbuf_printf(b, "#EXT-X-MEDIA:TYPE=AUDIO,"
		    "GROUP-ID=\"audio\",NAME=\"%s\"",
		    ladderd_ctx_str(r, "hls_info.label", "audio"));
		if (lang != NULL)
			textbuf_printf(b, ",LANGUAGE=\"%s\"", lang);
		textbuf_printf(b, ",DEFAULT=%s,AUTOSELECT=YES,"
		    "CHANNELS=\"%d\",URI=\"%s\"\n",
		    ladderd_ctx_bool(r, "hls_info.default", 1) ? "YES" : "NO",
		    ch, uri);
	}
	return 0;
}

/*
 * Add the subtitle renditions (stage subtitles) to `b`, one group "subs";
 * returns how many there are.
 */
static int
hls_footer_subtitles(struct ladderd_call *call, struct textbuf *b)
{
	const cJSON *r;
	int subs = 0;

	cJSON_ArrayForEach(r, ladderd_ctx_get(call->ctx, "subtitles.tracks")) {
		const char *uri = ladderd_ctx_str(r, "playlist", NULL);
		const char *lang = ladderd_ctx_str(r, "language", NULL);

		if (uri == NULL)
			continue;
		textbuf_printf(b, "#EXT-X-MEDIA:TYPE=SUBTITLES,"
		    "GROUP-ID=\"subs\",NAME=\"%s\"",
		    ladderd_ctx_str(r, "label", "subtitles"));
		if (lang != NULL)
			textbuf_printf(b, ",LANGUAGE=\"%s\"", lang);
		textbuf_printf(b, ",DEFAULT=%s,AUTOSELECT=YES,FORCED=%s,"
		    "URI=\"%s\"\n",
		    ladderd_ctx_bool(r, "default", 0) ? "YES" : "NO",
		    ladderd_ctx_bool(r, "forced", 0) ? "YES" : "NO", uri);
		subs++;
	}
	return subs;
}

/*
 * Add an EXT-X-STREAM-INF for each video rung that succeeded, its
 * bandwidths and CODECS including the audio `a` carries. Returns the
 * number of variants, or -1 with the message recorded.
 */
static int
hls_footer_video_variants(struct ladderd_call *call, const cJSON *rends,
    const struct hls_footer_audio *a, int subs, struct textbuf *b)
{
	const cJSON *r;
	int variants = 0;

	cJSON_ArrayForEach(r, rends) {
		const char *kind;
		const char *name = hls_footer_rung(r, &kind);
		const char *uri, *codecs, *res;
		double peak, avg, fps;

		if (strcmp(kind, "video") != 0 || !hls_footer_ok(r))
			continue;
		uri = ladderd_ctx_str(r, "hls_info.uri",
		    ladderd_ctx_str(r, "chunk_hls.playlist", NULL));
		codecs = ladderd_ctx_str(r, "hls_info.codecs", NULL);
		res = ladderd_ctx_str(r, "hls_info.resolution", NULL);
		peak = ladderd_ctx_num(r, "hls_info.bandwidth", 0);
		avg = ladderd_ctx_num(r, "hls_info.average_bandwidth", 0);
		fps = ladderd_ctx_num(r, "hls_info.frame_rate", 0);
		if (uri == NULL || codecs == NULL || res == NULL || peak <= 0) {
			call->fail(call, "rendition '%s' lacks hls_info",
			    name ? name : "?");
			return -1;
		}
		textbuf_printf(b, "#EXT-X-STREAM-INF:BANDWIDTH=%.0f,"
		    "AVERAGE-BANDWIDTH=%.0f,CODECS=\"%s%s%s\",RESOLUTION=%s",
		    ceil(peak + a->peak), ceil(avg + a->avg), codecs,
		    a->codec ? "," : "", a->codec ? a->codec : "", res);
		if (fps > 0)
			textbuf_printf(b, ",FRAME-RATE=%.3f", fps);
		if (a->group != NULL)
			textbuf_printf(b, ",AUDIO=\"audio\"");
		if (subs > 0)
			textbuf_printf(b, ",SUBTITLES=\"subs\"");
		textbuf_printf(b, "\n%s\n", uri);
		variants++;
	}
	return variants;
}

/*
 * Add what a player uses besides the variants: each video rung's I-frame
 * playlist (iframes.c, trick play) and the seek-bar thumbnails
 * (thumbnails.c: an image media playlist, RESOLUTION of one tile, as
 * Apple's and Roku's players read it).
 */
static void
hls_footer_extras(struct ladderd_call *call, const cJSON *rends,
    struct textbuf *b)
{
	const cJSON *r;

	cJSON_ArrayForEach(r, rends) {
		const char *kind, *uri;

		(void)hls_footer_rung(r, &kind);
		if (strcmp(kind, "video") != 0 || !hls_footer_ok(r) ||
		    (uri = ladderd_ctx_str(r, "iframes.uri", NULL)) == NULL)
			continue;
		textbuf_printf(b, "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=%.0f,"
		    "AVERAGE-BANDWIDTH=%.0f,CODECS=\"%s\",RESOLUTION=%s,"
		    "URI=\"%s\"\n", ladderd_ctx_num(r, "iframes.bandwidth", 0),
		    ladderd_ctx_num(r, "iframes.average_bandwidth", 0),
		    ladderd_ctx_str(r, "hls_info.video_codec",
			ladderd_ctx_str(r, "hls_info.codecs", "")),
		    ladderd_ctx_str(r, "hls_info.resolution", ""), uri);
	}
	if (ladderd_ctx_str(call->ctx, "thumbnails.playlist", NULL) != NULL)
		textbuf_printf(b, "#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=%.0f,"
		    "RESOLUTION=%.0fx%.0f,CODECS=\"jpeg\",URI=\"%s\"\n",
		    ladderd_ctx_num(call->ctx, "thumbnails.bandwidth", 0),
		    ladderd_ctx_num(call->ctx, "thumbnails.tile_width", 0),
		    ladderd_ctx_num(call->ctx, "thumbnails.tile_height", 0),
		    ladderd_ctx_str(call->ctx, "thumbnails.playlist", ""));
}

/*
 * Write the playlist in `b` to call->path(MASTER), named in `master`
 * (`size` bytes). LADDERD_OK, else the rc with the message recorded (a
 * full disk is worth a retry).
 */
static enum ladderd_rc
hls_footer_write(struct ladderd_call *call, const struct textbuf *b,
    char *master, size_t size)
{
	char pkg[4096];
	int err;

	if (call->path(call, LADDERD_PATH_MASTER, NULL, master, size) < 0 ||
	    call->path(call, LADDERD_PATH_PACKAGE, NULL, pkg, sizeof(pkg)) <
		0) {
		call->fail(call, "cannot name the master playlist");
		return LADDERD_FAIL;
	}
	if ((err = call->mkdirs(call, pkg)) < 0 ||
	    (err = call->write_atomic(call, master, b->data, b->len)) < 0) {
		call->fail(call, "cannot write '%s': %s", master,
		    strerror(-err));
		return err == -ENOSPC ? LADDERD_RETRY : LADDERD_FAIL;
	}
	return LADDERD_OK;
}

static enum ladderd_rc
hls_footer_run(void *state, struct ladderd_call *call)
{
	const cJSON *rends = ladderd_ctx_get(call->ctx, "renditions");
	const char *type = ladderd_ctx_str(call->ctx, "profile.segment_type",
	    "fmp4");
	int fmp4 = strcmp(type, "mpegts") != 0;
	int version = (int)ladderd_ctx_num(call->ctx, "hls_header.version",
	    fmp4 ? 6 : 3); /* hls_header.c: the least RFC 8216 allows */
	struct hls_footer_audio a = { 0 };
	struct textbuf b = { 0 };
	char master[4096];
	cJSON *out = NULL;
	enum ladderd_rc rc = LADDERD_FAIL;
	int variants, subs;
	int audio_only = ladderd_ctx_bool(call->ctx, "probe.audio_only", 0);

	(void)state;
	if (!cJSON_IsArray(rends)) {
		call->fail(call, "context has no renditions");
		goto out;
	}
	textbuf_printf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n"
	    "#EXT-X-INDEPENDENT-SEGMENTS\n", version);
	/*
	 * The audio renditions first: every video variant refers to their
	 * group. Its BANDWIDTH counts the largest of them (the combination a
	 * player may pick).
	 */
	if (hls_footer_audio(call, rends, fmp4, audio_only, &b, &a) < 0)
		goto out;
	subs = hls_footer_subtitles(call, &b);
	if ((variants = hls_footer_video_variants(call, rends, &a, subs,
		 &b)) < 0)
		goto out;
	/*
	 * A source without video (probe.audio_only): one audio-only variant,
	 * CODECS mp4a only, on the default track's playlist; with several
	 * tracks it names the group, whose other members a player may pick.
	 */
	if (audio_only && variants == 0 && a.group != NULL) {
		textbuf_printf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%.0f,"
		    "AVERAGE-BANDWIDTH=%.0f,CODECS=\"%s\"%s%s\n%s\n",
		    ceil(a.peak), ceil(a.avg), a.codec,
		    a.n > 1 ? ",AUDIO=\"audio\"" : "",
		    subs > 0 ? ",SUBTITLES=\"subs\"" : "", a.uri);
		variants++;
	}
	hls_footer_extras(call, rends, &b);
	if (b.failed) {
		call->fail(call, "out of memory");
		goto out;
	}
	if (variants == 0) {
		call->fail(call, "no video rendition succeeded: nothing to "
		    "put in the master playlist");
		goto out;
	}
	if ((rc = hls_footer_write(call, &b, master, sizeof(master))) !=
	    LADDERD_OK)
		goto out;
	rc = LADDERD_FAIL;
	LADDERD_CRASH_POINT("hls_footer.written", NULL);
	if ((out = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(out, "master", master) == NULL ||
	    cJSON_AddNumberToObject(out, "variants", variants) == NULL ||
	    cJSON_AddBoolToObject(out, "audio", a.group != NULL) == NULL ||
	    ladderd_ctx_set(call->ctx, "hls_footer", out) < 0) {
		call->fail(call, "out of memory");
		goto out;
	}
	out = NULL; /* the context owns it now */
	rc = LADDERD_OK;
out:
	cJSON_Delete(out);
	free(b.data);
	return rc;
}

LADDERD_STAGE_DEFINE("hls_footer", "1.0", "packaging", NULL, hls_footer_run,
    NULL);

/*
 * stages/hls_info.c - a rung's entry of the master playlist, measured.
 *
 * Reads ctx.rung (name, kind), ctx.chunk_hls (peak/avg bit rate, playlist),
 * ctx.probe (audio language) and the rung's transcoded file itself
 * (ctx.transcode.path, libavformat): CODECS come from the real SPS
 * (avc1.PPCCLL), hvcC (hvc1.…) or av1C (av01.…) record and the
 * AudioSpecificConfig (mp4a.40.AOT), RESOLUTION and
 * FRAME-RATE from the stream. Adds ctx.hls_info = { kind, bandwidth,
 * average_bandwidth, codecs, resolution, frame_rate, uri, fragment, ... } and
 * writes call->path(HLS_FRAGMENT, rung): the #EXT-X-STREAM-INF + URI lines of
 * a video rung as they stand without an audio group, or the #EXT-X-MEDIA line
 * of the audio rung. hls_footer assembles the master from ctx.renditions.
 *
 * Fails when the file cannot be read or its codecs cannot be named (not
 * H.264, HEVC or AV1 / AAC, no SPS or record): a guessed CODECS makes
 * players refuse the variant.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>

#include "avlog.h"
#include "codecs.h"
#include "stage.h"

struct hls_info_streams {
	char video[64]; /* "avc1.64001f", "hvc1.1.6.L93.B0", "av01.0.04M.08" */
	char audio[32]; /* "mp4a.40.2" or "" */
	int width, height;
	double fps;
	int channels;
};

static int
hls_info_interrupt(void *opaque)
{
	struct ladderd_call *call = opaque;

	return call->cancelled(call);
}

static enum ladderd_rc
hls_info_probe(struct ladderd_call *call, const char *path,
    struct hls_info_streams *s)
{
	AVFormatContext *in = NULL;
	enum ladderd_rc rc = LADDERD_FAIL;
	int vi, ai, err;

	if ((in = avformat_alloc_context()) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	in->interrupt_callback.callback = hls_info_interrupt;
	in->interrupt_callback.opaque = call;
	if ((err = avformat_open_input(&in, path, NULL, NULL)) < 0) {
		call->fail(call, "cannot open '%s': %s", path, av_err2str(err));
		goto out;
	}
	vi = av_find_best_stream(in, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	ai = av_find_best_stream(in, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
	if (vi >= 0) {
		const AVStream *st = in->streams[vi];
		const AVCodecParameters *par = st->codecpar;
		AVRational sar = par->sample_aspect_ratio;
		AVRational fr = st->avg_frame_rate;

		if (codecs_video(par, s->video, sizeof(s->video)) < 0) {
			call->fail(call, "'%s': cannot name the video codec "
			    "(%s without an avcC/SPS, hvcC or av1C)", path,
			    avcodec_get_name(par->codec_id));
			goto out;
		}
		s->width = par->width;
		s->height = par->height;
		/* RESOLUTION is the picture as displayed. */
		if (sar.num > 0 && sar.den > 0 && sar.num != sar.den)
			s->width = (int)lrint(par->width * av_q2d(sar));
		if (fr.num <= 0 || fr.den <= 0)
			fr = st->r_frame_rate;
		if (fr.num > 0 && fr.den > 0)
			s->fps = round(av_q2d(fr) * 1000) / 1000;
	}
	if (ai >= 0) {
		const AVCodecParameters *par = in->streams[ai]->codecpar;

		if (par->codec_id != AV_CODEC_ID_AAC) {
			call->fail(call, "'%s': audio is %s, not AAC", path,
			    avcodec_get_name(par->codec_id));
			goto out;
		}
		codecs_mp4a(par, s->audio, sizeof(s->audio));
		s->channels = par->ch_layout.nb_channels;
	}
	if (vi < 0 && ai < 0) {
		call->fail(call, "'%s' has neither video nor audio", path);
		goto out;
	}
	rc = LADDERD_OK;
out:
	avformat_close_input(&in);
	return rc;
}

static enum ladderd_rc
hls_info_run(void *state, struct ladderd_call *call)
{
	struct hls_info_streams s = { 0 };
	const char *rung = call->rung ? call->rung :
	    ladderd_ctx_str(call->ctx, "rung.name", NULL);
	const char *kind = ladderd_ctx_str(call->ctx, "rung.kind", NULL);
	const char *path = ladderd_ctx_str(call->ctx, "transcode.path", NULL);
	const char *uri = ladderd_ctx_str(call->ctx, "chunk_hls.playlist",
	    NULL);
	const char *type = ladderd_ctx_str(call->ctx,
	    "chunk_hls.segment_type", "fmp4");
	double peak = ladderd_ctx_num(call->ctx, "chunk_hls.peak_bitrate", 0);
	double avg = ladderd_ctx_num(call->ctx, "chunk_hls.avg_bitrate", 0);
	/* One of several audio tracks carries its own (hls_header.c). */
	const char *lang = ladderd_ctx_get(call->ctx, "rung.stream") != NULL ?
	    ladderd_ctx_str(call->ctx, "rung.language", NULL) :
	    ladderd_ctx_audio_language(call->ctx);
	const char *label = ladderd_ctx_str(call->ctx, "rung.label", "audio");
	int dflt = ladderd_ctx_bool(call->ctx, "rung.default", 1);
	char codecs[128], dir[4096], frag[4096], text[1024];
	cJSON *out = NULL;
	enum ladderd_rc rc = LADDERD_FAIL;
	int audio, n, err;

	(void)state;
	if (rung == NULL || path == NULL || uri == NULL || peak <= 0) {
		call->fail(call, "context has no %s",
		    rung == NULL ? "rung name" :
		    path == NULL ? "transcode.path" :
		    uri == NULL	 ? "chunk_hls.playlist" :
				   "chunk_hls.peak_bitrate");
		goto out;
	}
	if ((rc = hls_info_probe(call, path, &s)) != LADDERD_OK)
		goto out;
	rc = LADDERD_FAIL;
	if (kind == NULL)
		kind = s.video[0] != '\0' ? "video" : "audio";
	audio = strcmp(kind, "audio") == 0;
	if (audio ? s.audio[0] == '\0' : s.video[0] == '\0') {
		call->fail(call, "'%s' has no %s stream for rung '%s'", path,
		    kind, rung);
		goto out;
	}
	/* The segments carry what the file carries: video, + audio in TS. */
	if (audio)
		(void)snprintf(codecs, sizeof(codecs), "%s", s.audio);
	else if (s.audio[0] != '\0')
		(void)snprintf(codecs, sizeof(codecs), "%s,%s", s.video,
		    s.audio);
	else
		(void)snprintf(codecs, sizeof(codecs), "%s", s.video);

	if (audio) {
		char langattr[64] = "";

		if (lang != NULL)
			(void)snprintf(langattr, sizeof(langattr),
			    ",LANGUAGE=\"%s\"", lang);
		n = snprintf(text, sizeof(text),
		    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\","
		    "NAME=\"%s\"%s,DEFAULT=%s,AUTOSELECT=YES,"
		    "CHANNELS=\"%d\",URI=\"%s\"\n", label,
		    langattr, dflt ? "YES" : "NO",
		    s.channels > 0 ? s.channels : 2, uri);
	} else {
		n = snprintf(text, sizeof(text),
		    "#EXT-X-STREAM-INF:BANDWIDTH=%.0f,AVERAGE-BANDWIDTH=%.0f,"
		    "CODECS=\"%s\",RESOLUTION=%dx%d,FRAME-RATE=%.3f\n%s\n",
		    ceil(peak), ceil(avg), codecs, s.width, s.height, s.fps,
		    uri);
	}
	if (n < 0 || (size_t)n >= sizeof(text)) {
		call->fail(call, "master entry of rung '%s' too long", rung);
		goto out;
	}
	if (call->path(call, LADDERD_PATH_FRAGMENTS_DIR, NULL, dir,
		sizeof(dir)) < 0 ||
	    call->path(call, LADDERD_PATH_HLS_FRAGMENT, rung, frag,
		sizeof(frag)) < 0) {
		call->fail(call, "cannot name the fragment of rung '%s'", rung);
		goto out;
	}
	if ((err = call->mkdirs(call, dir)) < 0 ||
	    (err = call->write_atomic(call, frag, text, (size_t)n)) < 0) {
		call->fail(call, "cannot write '%s': %s", frag,
		    strerror(-err));
		rc = err == -ENOSPC ? LADDERD_RETRY : LADDERD_FAIL;
		goto out;
	}

	if ((out = cJSON_CreateObject()) == NULL)
		goto nomem;
	cJSON_AddStringToObject(out, "kind", kind);
	cJSON_AddNumberToObject(out, "bandwidth", ceil(peak));
	cJSON_AddNumberToObject(out, "average_bandwidth", ceil(avg));
	cJSON_AddStringToObject(out, "codecs", codecs);
	cJSON_AddStringToObject(out, "segment_type", type);
	cJSON_AddStringToObject(out, "uri", uri);
	if (audio) {
		cJSON_AddNumberToObject(out, "channels",
		    s.channels > 0 ? s.channels : 2);
		if (lang != NULL)
			cJSON_AddStringToObject(out, "language", lang);
		cJSON_AddStringToObject(out, "label", label);
		cJSON_AddBoolToObject(out, "default", dflt);
	} else {
		(void)snprintf(text, sizeof(text), "%dx%d", s.width, s.height);
		cJSON_AddStringToObject(out, "resolution", text);
		cJSON_AddNumberToObject(out, "frame_rate", s.fps);
		cJSON_AddStringToObject(out, "video_codec", s.video);
	}
	if (s.audio[0] != '\0')
		cJSON_AddStringToObject(out, "audio_codec", s.audio);
	cJSON_AddStringToObject(out, "fragment", frag);
	if (ladderd_summary_num(call->ctx, "bandwidth", ceil(peak)) < 0 ||
	    ladderd_ctx_set(call->ctx, "hls_info", out) < 0)
		goto nomem;
	out = NULL; /* the context owns it now */
	rc = LADDERD_OK;
	goto out;
nomem:
	call->fail(call, "out of memory");
out:
	cJSON_Delete(out);
	return rc;
}

LADDERD_STAGE_DEFINE("hls_info", "1.0", NULL, NULL, hls_info_run, NULL);

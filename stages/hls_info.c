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

/* What a rung's master-playlist entry says, gathered from the context. */
struct hls_info_entry {
	const char *rung, *kind, *uri, *type, *lang, *label;
	int audio, dflt;
	double peak, avg;
	char codecs[128];
};

/*
 * The rung's line(s) of the master playlist into `text` (`size` bytes):
 * an EXT-X-MEDIA for an audio rung, an EXT-X-STREAM-INF and its URI for a
 * video one. Returns the length, or -1 when it does not fit.
 */
static int
hls_info_line(const struct hls_info_entry *e,
    const struct hls_info_streams *s, char *text, size_t size)
{
	int n;

	if (e->audio) {
		char langattr[64] = "";

		if (e->lang != NULL)
			(void)snprintf(langattr, sizeof(langattr),
			    ",LANGUAGE=\"%s\"", e->lang);
		n = snprintf(text, size,
		    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\","
		    "NAME=\"%s\"%s,DEFAULT=%s,AUTOSELECT=YES,"
		    "CHANNELS=\"%d\",URI=\"%s\"\n", e->label,
		    langattr, e->dflt ? "YES" : "NO",
		    s->channels > 0 ? s->channels : 2, e->uri);
	} else {
		n = snprintf(text, size,
		    "#EXT-X-STREAM-INF:BANDWIDTH=%.0f,AVERAGE-BANDWIDTH=%.0f,"
		    "CODECS=\"%s\",RESOLUTION=%dx%d,FRAME-RATE=%.3f\n%s\n",
		    ceil(e->peak), ceil(e->avg), e->codecs, s->width,
		    s->height, s->fps, e->uri);
	}
	return n < 0 || (size_t)n >= size ? -1 : n;
}

/*
 * Write the rung's master entry `text` (`len` bytes) as its fragment,
 * named in `frag` (`size` bytes), for hls_footer. LADDERD_OK, else the rc
 * with the message recorded (a full disk is worth a retry).
 */
static enum ladderd_rc
hls_info_write(struct ladderd_call *call, const char *rung,
    const char *text, size_t len, char *frag, size_t size)
{
	char dir[4096];
	int err;

	if (call->path(call, LADDERD_PATH_FRAGMENTS_DIR, NULL, dir,
		sizeof(dir)) < 0 ||
	    call->path(call, LADDERD_PATH_HLS_FRAGMENT, rung, frag, size) <
		0) {
		call->fail(call, "cannot name the fragment of rung '%s'", rung);
		return LADDERD_FAIL;
	}
	if ((err = call->mkdirs(call, dir)) < 0 ||
	    (err = call->write_atomic(call, frag, text, len)) < 0) {
		call->fail(call, "cannot write '%s': %s", frag,
		    strerror(-err));
		return err == -ENOSPC ? LADDERD_RETRY : LADDERD_FAIL;
	}
	return LADDERD_OK;
}

/* ctx.hls_info of the rung; NULL when out of memory. */
static cJSON *
hls_info_json(const struct hls_info_entry *e,
    const struct hls_info_streams *s, const char *frag)
{
	cJSON *out = cJSON_CreateObject();
	char res[64];

	if (out == NULL)
		return NULL;
	cJSON_AddStringToObject(out, "kind", e->kind);
	cJSON_AddNumberToObject(out, "bandwidth", ceil(e->peak));
	cJSON_AddNumberToObject(out, "average_bandwidth", ceil(e->avg));
	cJSON_AddStringToObject(out, "codecs", e->codecs);
	cJSON_AddStringToObject(out, "segment_type", e->type);
	cJSON_AddStringToObject(out, "uri", e->uri);
	if (e->audio) {
		cJSON_AddNumberToObject(out, "channels",
		    s->channels > 0 ? s->channels : 2);
		if (e->lang != NULL)
			cJSON_AddStringToObject(out, "language", e->lang);
		cJSON_AddStringToObject(out, "label", e->label);
		cJSON_AddBoolToObject(out, "default", e->dflt);
	} else {
		(void)snprintf(res, sizeof(res), "%dx%d", s->width, s->height);
		cJSON_AddStringToObject(out, "resolution", res);
		cJSON_AddNumberToObject(out, "frame_rate", s->fps);
		cJSON_AddStringToObject(out, "video_codec", s->video);
	}
	if (s->audio[0] != '\0')
		cJSON_AddStringToObject(out, "audio_codec", s->audio);
	cJSON_AddStringToObject(out, "fragment", frag);
	return out;
}

static enum ladderd_rc
hls_info_run(void *state, struct ladderd_call *call)
{
	struct hls_info_streams s = { 0 };
	struct hls_info_entry e = {
		.rung = call->rung ? call->rung :
		    ladderd_ctx_str(call->ctx, "rung.name", NULL),
		.kind = ladderd_ctx_str(call->ctx, "rung.kind", NULL),
		.uri = ladderd_ctx_str(call->ctx, "chunk_hls.playlist", NULL),
		.type = ladderd_ctx_str(call->ctx, "chunk_hls.segment_type",
		    "fmp4"),
		.peak = ladderd_ctx_num(call->ctx, "chunk_hls.peak_bitrate", 0),
		.avg = ladderd_ctx_num(call->ctx, "chunk_hls.avg_bitrate", 0),
		/* One of several audio tracks carries its own (hls_header.c). */
		.lang = ladderd_ctx_get(call->ctx, "rung.stream") != NULL ?
		    ladderd_ctx_str(call->ctx, "rung.language", NULL) :
		    ladderd_ctx_audio_language(call->ctx),
		.label = ladderd_ctx_str(call->ctx, "rung.label", "audio"),
		.dflt = ladderd_ctx_bool(call->ctx, "rung.default", 1),
	};
	const char *path = ladderd_ctx_str(call->ctx, "transcode.path", NULL);
	char frag[4096], text[1024];
	cJSON *out = NULL;
	enum ladderd_rc rc = LADDERD_FAIL;
	int n;

	(void)state;
	if (e.rung == NULL || path == NULL || e.uri == NULL || e.peak <= 0) {
		call->fail(call, "context has no %s",
		    e.rung == NULL ? "rung name" :
		    path == NULL ? "transcode.path" :
		    e.uri == NULL ? "chunk_hls.playlist" :
				    "chunk_hls.peak_bitrate");
		goto out;
	}
	if ((rc = hls_info_probe(call, path, &s)) != LADDERD_OK)
		goto out;
	rc = LADDERD_FAIL;
	if (e.kind == NULL)
		e.kind = s.video[0] != '\0' ? "video" : "audio";
	e.audio = strcmp(e.kind, "audio") == 0;
	if (e.audio ? s.audio[0] == '\0' : s.video[0] == '\0') {
		call->fail(call, "'%s' has no %s stream for rung '%s'", path,
		    e.kind, e.rung);
		goto out;
	}
	/* The segments carry what the file carries: video, + audio in TS. */
	if (e.audio)
		(void)snprintf(e.codecs, sizeof(e.codecs), "%s", s.audio);
	else if (s.audio[0] != '\0')
		(void)snprintf(e.codecs, sizeof(e.codecs), "%s,%s", s.video,
		    s.audio);
	else
		(void)snprintf(e.codecs, sizeof(e.codecs), "%s", s.video);

	if ((n = hls_info_line(&e, &s, text, sizeof(text))) < 0) {
		call->fail(call, "master entry of rung '%s' too long", e.rung);
		goto out;
	}
	if ((rc = hls_info_write(call, e.rung, text, (size_t)n, frag,
		 sizeof(frag))) != LADDERD_OK)
		goto out;
	rc = LADDERD_FAIL;
	if ((out = hls_info_json(&e, &s, frag)) == NULL ||
	    ladderd_summary_num(call->ctx, "bandwidth", ceil(e.peak)) < 0 ||
	    ladderd_ctx_set(call->ctx, "hls_info", out) < 0) {
		call->fail(call, "out of memory");
		goto out;
	}
	out = NULL; /* the context owns it now */
	rc = LADDERD_OK;
out:
	cJSON_Delete(out);
	return rc;
}

LADDERD_STAGE_DEFINE("hls_info", "1.0", NULL, NULL, hls_info_run, NULL);

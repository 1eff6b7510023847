/*
 * stages/transcode.c - encode one rung of the ladder (README, ladderd-stages(7)).
 *
 * Reads ctx.input.path, ctx.probe (video.index, video.rotation,
 * video.nb_frames, duration, audio_index, has_audio), ctx.profile
 * (segment_duration, segment_type, video.*, audio.*), ctx.rung (kind, name,
 * bitrate) and ctx.target_size (width, height, bitrate). Writes the rung's MP4
 * at call->path(TRANSCODED) (temp name + rename, so it is never half-written)
 * and adds ctx.transcode = { path, kind, width, height, frames, duration,
 * has_video, has_audio, keyframes [s], bitrate (measured, bits/s),
 * codec_profile, codec_level, codecs, audio_codecs, bad_packets }.
 *
 * Video: decode, filter (graph.c: deinterlace, tone map, and the probe's
 * rotation turned into the pixels with transpose / hflip,vflip, so the
 * output carries no display matrix), scale (swscale bicubic, any pix_fmt
 * to yuv420p), H.264 with libx264: ABR at the rung's
 * bitrate, VBV maxrate = bitrate * video.maxrate_factor (default 1.07, so
 * the peak segment rate stays close to the advertised BANDWIDTH) and bufsize
 * = bitrate * video.bufsize_factor (default 1.5, i.e. 1.5 s of buffer: room
 * for an IDR per segment without starving P frames). video.crf > 0 switches
 * to capped CRF with the same VBV. An IDR sits on the first frame at or after
 * every k * segment_duration seconds and nowhere else (scenecut off,
 * keyint infinite, closed GOP), so every rung of a source switches at the
 * same timestamps whatever its size and codec. libx265 likewise; libsvtav1
 * is capped CRF under the same maxrate (transcode_svtav1_options: the only
 * mode of SVT-AV1 1.4 with forced key frames and a rate cap).
 *
 * Time: the video stream's start time becomes 0; audio gets the same shift
 * (leading silence or trimmed samples), so A/V sync and the audio rung's
 * timeline match the video rungs. Video pts are kept (VFR passes through) in
 * a 1/90000 time base; audio pts are continuous sample counts.
 *
 * Audio: AAC-LC (native encoder), profile.audio (stereo 48 kHz by default);
 * swresample downmixes and resamples. segment_type "mpegts": every video
 * rung carries audio; "fmp4": video rungs are video only and the rung of
 * kind "audio" is audio only (no video decode).
 *
 * Fails (LADDERD_FAIL) on unreadable input, missing decoder, encoder or muxer
 * errors, or when nothing decodes; bad packets are skipped with a warning.
 * A full disk and cancellation return LADDERD_RETRY. Interlaced sources are
 * encoded as progressive frames (no deinterlacer without libavfilter).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

#include "avcall.h"
#include "avlog.h"
#include "codecs.h"
#include "encode_summary.h"
#include "encode_settings.h"
#include "framering.h"
#include "graph.h"
#include "source.h"
#include "stage.h"
#include "crashpoint.h"
#include "transcode_join.h"

#define TRANSCODE_VIDEO_HZ	  90000 /* video time base, 1/90000 s */
#define TRANSCODE_PROGRESS_FRAMES 25	/* progress at most every 25 frames */
#define TRANSCODE_CANCEL_PACKETS  32	/* check cancellation this often */
#define TRANSCODE_WARN_BAD	  5	/* warn about the first N bad packets */
#define TRANSCODE_MAX_READ_ERRORS 100
#define TRANSCODE_AV1_CRF	  24 /* capped CRF of AV1 rungs: the cap rules */


/* All state of one run(); lives on run()'s stack, freed by transcode_free. */
struct transcode {
	struct ladderd_call *call;
	enum ladderd_rc rc;  /* what a failure returns (FAIL or RETRY) */
	const char *src;     /* ctx.input.path, borrowed from the context */
	const char *kind;    /* "video" or "audio", borrowed */
	char path[PATH_MAX]; /* the final MP4 */
	char tmp[PATH_MAX];  /* written first, renamed to path at the end */
	int tmp_exists;

	int want_video, want_audio;
	int seg;	      /* segment duration, seconds */
	int width, height;    /* output (displayed) size */
	int64_t start;	      /* source time that becomes 0 ... */
	AVRational start_tb;  /* ... in this time base */
	double est_frames;    /* progress denominator (video) */
	double est_duration;  /* progress denominator (audio only) */
	AVRational fps;

	struct ladderd_source source; /* owns ifmt */
	AVFormatContext *ifmt;	      /* source.fmt */
	AVFormatContext *ofmt;
	int vin, ain;	/* input stream indices, -1 if unused */
	int vout, aout; /* output stream indices */
	AVCodecContext *vdec, *adec, *venc, *aenc;
	struct SwsContext *sws;
	struct SwsContext *sws_ranged; /* sws whose range was set up ... */
	int sws_range;		       /* ... for this input color range */
	SwrContext *swr;
	AVChannelLayout swr_layout; /* the input swr was set up for */
	int swr_rate, swr_fmt;
	AVAudioFifo *fifo;
	/* Converted samples; abuf[0] owns the one buffer of all planes. */
	uint8_t *abuf[AV_NUM_DATA_POINTERS];
	int abuf_cap; /* in samples */
	int aframe_size;
	/* Filters (graph.c) between decoder and scaler / resampler; made on
	 * the first frame when the plan is not empty. */
	char vplan[1024], aplan[512];
	int to_sdr; /* vplan tone maps: the encoder tags BT.709 */
	struct ladderd_graph *vgraph, *agraph;
	AVFrame *filtered; /* graph output */
	AVFrame *frame;	 /* decoder output */
	AVFrame *vframe; /* video encoder input */
	AVFrame *view;	 /* a frame encoded where it is (no scaling) */
	int view_held;	 /* the encoder still references `view`'s slot */
	AVFrame *aframe; /* audio encoder input */
	AVPacket *pkt;	 /* demuxer output */
	AVPacket *opkt;	 /* encoder output */

	int64_t fdur;	   /* nominal frame duration, 1/90000 */
	int64_t next_idr;  /* next segment boundary, 1/90000 */
	int64_t last_pts;  /* last video pts sent to the encoder, or -1 */
	int64_t video_end; /* end of the last video frame, 1/90000 */
	int64_t apts;	   /* samples sent to the audio encoder */
	int64_t askip;	   /* leading samples still to drop */
	int64_t anext;	   /* expected position of the next input frame */
	int audio_started;
	int64_t frames_in, frames_out, dropped, vbytes, abytes, bad;
	int64_t packets;
	cJSON *keyframes; /* owned until moved into the result */

	/* Shared decode (framering.h): video frames come from the ring. */
	struct framering *ring;
	int used_ring; /* frames came from the ring (for the result) */

	/* A chunk (ctx.rung.chunk): only frames in [chunk_start, chunk_end)
	 * of the rung's timeline, 1/90000; chunk_end 0 = to the end. */
	int chunk;
	int64_t chunk_start, chunk_end;
	/* Its encoder starts this much earlier (pre-roll: its rate control
	 * warms up on frames whose packets are dropped). */
	int64_t chunk_from;
	int chunk_past; /* a frame at or after chunk_end was decoded */
};

/*
 * Record a failure: the message (plus the libav text of `err` when it is
 * negative) goes to call->fail. A full disk makes the stage retry later.
 * Returns a negative AVERROR for the caller to pass up.
 */
__attribute__((format(printf, 3, 4))) static int
transcode_error(struct transcode *st, int err, const char *fmt, ...)
{
	va_list ap;

	st->rc = err == AVERROR(ENOSPC) ? LADDERD_RETRY : LADDERD_FAIL;
	va_start(ap, fmt);
	err = ladderd_av_vfail(st->call, err, fmt, ap);
	va_end(ap);
	return err;
}

/* Read what the run needs from the context into st. */
/*
 * Whether this rung's audio is the track the probe measured for loudness
 * (probe.audio_index): another track of the source keeps its level, since
 * one track's gain is wrong for the next.
 */
static int
transcode_measured_track(const cJSON *ctx)
{
	const cJSON *stream = ladderd_ctx_get(ctx, "rung.stream");

	return stream == NULL || (int)ladderd_ctx_num(ctx, "rung.stream", -1) ==
	    (int)ladderd_ctx_num(ctx, "probe.audio_index", -1);
}

static int
transcode_settings(struct transcode *st)
{
	struct ladderd_call *call = st->call;
	const cJSON *ctx = call->ctx;
	const char *segtype;
	const char *rung = call->rung;
	char dir[PATH_MAX];
	int n, err;

	st->src = ladderd_ctx_str(ctx, "input.path", NULL);
	if (st->src == NULL)
		return transcode_error(st, 0, "context has no input.path");
	st->kind = ladderd_ctx_str(ctx, "rung.kind", "video");
	if (rung == NULL)
		rung = ladderd_ctx_str(ctx, "rung.name", NULL);
	if (rung == NULL)
		return transcode_error(st, 0, "context has no rung.name");
	segtype = ladderd_ctx_str(ctx, "profile.segment_type", "fmp4");
	st->seg = (int)ladderd_ctx_num(ctx, "profile.segment_duration", 4);
	if (st->seg <= 0 || st->seg > 60)
		return transcode_error(st, 0,
		    "profile.segment_duration %d is out of range (1..60)",
		    st->seg);
	if (strcmp(segtype, "fmp4") != 0 && strcmp(segtype, "mpegts") != 0)
		return transcode_error(
		    st, 0, "unknown profile.segment_type '%s'", segtype);

	int has_audio = ladderd_ctx_bool(ctx, "probe.has_audio", 0);

	if (strcmp(st->kind, "audio") == 0) {
		if (!has_audio)
			return transcode_error(st, 0,
			    "rung '%s' is an audio rung but '%s' has no audio",
			    rung, st->src);
		st->want_audio = 1;
	} else if (strcmp(st->kind, "video") == 0) {
		st->want_video = 1;
		st->want_audio = has_audio && strcmp(segtype, "mpegts") == 0;
		st->width = (int)ladderd_ctx_num(ctx, "target_size.width", 0);
		st->height = (int)ladderd_ctx_num(ctx, "target_size.height", 0);
		/* x264 wants even 4:2:0 sizes; target_size promises them. */
		st->width &= ~1;
		st->height &= ~1;
		if (st->width < 2 || st->height < 2 || st->width > 16384 ||
		    st->height > 16384)
			return transcode_error(st, 0,
			    "rung '%s' has no valid target_size (%dx%d)", rung,
			    st->width, st->height);
	} else {
		return transcode_error(
		    st, 0, "rung '%s' has unknown kind '%s'", rung, st->kind);
	}

	/*
	 * A chunk encodes the video of its time range alone: the audio is
	 * encoded once, by its own unit (fMP4: the audio rung; MPEG-TS: the
	 * join muxes one audio encode into every rung), so no AAC priming
	 * or encoder delay ever meets a chunk boundary.
	 */
	if (cJSON_IsObject(ladderd_ctx_get(ctx, "rung.chunk"))) {
		double a = ladderd_ctx_num(ctx, "rung.chunk.start", 0);
		double b = ladderd_ctx_num(ctx, "rung.chunk.end", 0);

		if (!st->want_video || a < 0 || b < 0 || (b > 0 && b <= a))
			return transcode_error(st, 0,
			    "rung '%s' has a bad chunk (%g..%g s)", rung, a, b);
		st->chunk = 1;
		st->want_audio = 0;
		st->chunk_start = llround(a * TRANSCODE_VIDEO_HZ);
		st->chunk_end = llround(b * TRANSCODE_VIDEO_HZ);
		st->chunk_from = st->chunk_start - llround(ladderd_ctx_num(ctx,
		    "rung.chunk.preroll", 0) * TRANSCODE_VIDEO_HZ);
		if (st->chunk_from < 0)
			st->chunk_from = 0;
	}

	st->est_duration = ladderd_ctx_num(ctx, "probe.duration", 0);
	st->est_frames = ladderd_ctx_num(ctx, "probe.video.nb_frames", 0);
	if (st->est_frames <= 0)
		st->est_frames = st->est_duration *
		    ladderd_ctx_num(ctx, "probe.video.avg_fps", 25);
	if (st->chunk) {
		double len = (st->chunk_end > 0 ? (double)st->chunk_end :
			st->est_duration * TRANSCODE_VIDEO_HZ) -
		    (double)st->chunk_start;

		if (st->est_duration > 0)
			st->est_frames *= len / TRANSCODE_VIDEO_HZ /
			    st->est_duration;
	}

	if ((n = call->path(
		 call, LADDERD_PATH_RUNG_STATE, rung, dir, sizeof(dir))) < 0 ||
	    (n = call->path(call, LADDERD_PATH_TRANSCODED, rung, st->path,
		 sizeof(st->path))) < 0)
		return transcode_error(st, 0,
		    "cannot compute the paths of rung '%s': %s", rung,
		    strerror(-n));
	if ((err = call->mkdirs(call, dir)) < 0)
		return transcode_error(
		    st, 0, "cannot create '%s': %s", dir, strerror(-err));
	n = snprintf(st->tmp, sizeof(st->tmp), "%s.part", st->path);
	if (n < 0 || (size_t)n >= sizeof(st->tmp))
		return transcode_error(
		    st, 0, "path too long: '%s.part'", st->path);
	/* target_size is the displayed size: the plan turns the picture
	 * upright before the scaler. */
	if (st->want_video && (err = ladderd_graph_video_plan(ctx, st->vplan,
				   sizeof(st->vplan), &st->to_sdr)) < 0)
		return err == -EINVAL
		    ? transcode_error(st, 0,
			  "unsupported rotation %.0f (not a multiple of 90)",
			  ladderd_ctx_num(ctx, "probe.video.rotation", 0))
		    : transcode_error(st, 0, "the filter plan is too long");
	if (st->want_audio && transcode_measured_track(ctx) &&
	    ladderd_graph_audio_plan(ctx, st->aplan, sizeof(st->aplan)) < 0)
		return transcode_error(st, 0, "the filter plan is too long");
	return 0;
}

/* Open a decoder for input stream `idx`. */
static int
transcode_open_decoder(struct transcode *st, int idx, AVCodecContext **ret)
{
	AVStream *s = st->ifmt->streams[idx];
	const AVCodec *codec = avcodec_find_decoder(s->codecpar->codec_id);
	AVCodecContext *dec;
	int err;

	if (codec == NULL)
		return transcode_error(st, 0,
		    "no decoder for %s stream %d (%s) of '%s'",
		    av_get_media_type_string(s->codecpar->codec_type), idx,
		    avcodec_get_name(s->codecpar->codec_id), st->src);
	if ((dec = avcodec_alloc_context3(codec)) == NULL)
		return transcode_error(
		    st, AVERROR(ENOMEM), "cannot allocate a decoder");
	*ret = dec; /* st owns it from here, even on failure */
	if ((err = avcodec_parameters_to_context(dec, s->codecpar)) < 0)
		return transcode_error(
		    st, err, "cannot set up the %s decoder", codec->name);
	dec->pkt_timebase = s->time_base;
	/* probe checked the start; a picture may grow mid-stream. */
	dec->max_pixels = (int64_t)ladderd_ctx_num(st->call->ctx,
	    "profile.max_pixels", LADDERD_SOURCE_MAX_PIXELS);
	if (st->call->threads > 0)
		dec->thread_count = st->call->threads;
	if ((err = avcodec_open2(dec, codec, NULL)) < 0)
		return transcode_error(st, err,
		    "cannot open the %s decoder for '%s'", codec->name,
		    st->src);
	return 0;
}

/* A stream index from the probe, if it names a stream of that type. */
static int
transcode_pick(struct transcode *st, const char *key, enum AVMediaType type)
{
	int idx = (int)ladderd_ctx_num(st->call->ctx, key, -1);

	if (idx >= 0 && (unsigned)idx < st->ifmt->nb_streams &&
	    st->ifmt->streams[idx]->codecpar->codec_type == type)
		return idx;
	idx = av_find_best_stream(st->ifmt, type, -1, -1, NULL, 0);
	return idx < 0 ? -1 : idx;
}

static int
transcode_open_input(struct transcode *st)
{
	int err;

	char msg[1024];

	/* As probe found it: a whitelisted container, no further opens. */
	if ((err = ladderd_source_open(&st->source, st->src,
		 ladderd_ctx_str(st->call->ctx, "probe.format", NULL), NULL,
		 msg, sizeof(msg))) < 0)
		return transcode_error(st, 0, "%s", msg);
	st->ifmt = st->source.fmt;
	if ((err = avformat_find_stream_info(st->ifmt, NULL)) < 0)
		return transcode_error(
		    st, err, "cannot read the streams of '%s'", st->src);
	st->vin = transcode_pick(st, "probe.video.index", AVMEDIA_TYPE_VIDEO);
	/* An audio rendition names its source stream (hls_header). */
	st->ain = !st->want_audio ? -1 :
	    ladderd_ctx_get(st->call->ctx, "rung.stream") != NULL ?
	    transcode_pick(st, "rung.stream", AVMEDIA_TYPE_AUDIO) :
	    transcode_pick(st, "probe.audio_index", AVMEDIA_TYPE_AUDIO);
	if (st->want_video && st->vin < 0)
		return transcode_error(
		    st, 0, "'%s' has no video stream", st->src);
	if (st->want_audio && st->ain < 0)
		return transcode_error(
		    st, 0, "'%s' has no audio stream", st->src);

	/*
	 * Time zero is the video stream's start in every rung, the audio
	 * rung included, so all rungs share one timeline.
	 */
	st->start = 0;
	st->start_tb = AV_TIME_BASE_Q;
	if (st->vin >= 0 &&
	    st->ifmt->streams[st->vin]->start_time != AV_NOPTS_VALUE) {
		st->start = st->ifmt->streams[st->vin]->start_time;
		st->start_tb = st->ifmt->streams[st->vin]->time_base;
	} else if (st->ifmt->start_time != AV_NOPTS_VALUE) {
		st->start = st->ifmt->start_time;
	}

	if (st->vin >= 0) {
		AVStream *vs = st->ifmt->streams[st->vin];

		st->fps = av_guess_frame_rate(st->ifmt, vs, NULL);
		if (st->fps.num <= 0 || st->fps.den <= 0 ||
		    av_q2d(st->fps) > 240 || av_q2d(st->fps) < 1)
			st->fps = (AVRational){25, 1};
	}
	for (unsigned i = 0; i < st->ifmt->nb_streams; i++)
		if ((int)i != st->ain && ((int)i != st->vin || !st->want_video))
			st->ifmt->streams[i]->discard = AVDISCARD_ALL;

	/* With a shared decoder the video stream is not read here at all. */
	if (st->ring != NULL)
		st->ifmt->streams[st->vin]->discard = AVDISCARD_ALL;
	if (st->want_video && st->ring == NULL &&
	    (err = transcode_open_decoder(st, st->vin, &st->vdec)) < 0)
		return err;
	if (st->want_audio &&
	    (err = transcode_open_decoder(st, st->ain, &st->adec)) < 0)
		return err;
	/* A chunk starts decoding at the keyframe at or before its start. */
	if (st->chunk && st->chunk_from > 0) {
		AVStream *vs = st->ifmt->streams[st->vin];
		int64_t ts = av_rescale_q(st->chunk_from,
				 (AVRational){ 1, TRANSCODE_VIDEO_HZ },
				 vs->time_base) +
		    av_rescale_q(st->start, st->start_tb, vs->time_base);

		if ((err = avformat_seek_file(st->ifmt, st->vin, INT64_MIN, ts,
			 ts, 0)) < 0)
			return transcode_error(st, err,
			    "cannot seek '%s' to %.3f s", st->src,
			    (double)st->chunk_from / TRANSCODE_VIDEO_HZ);
	}
	return 0;
}

/* "3.1" -> 31, "" -> 0 (auto), -1 when unparsable. */
static int
transcode_level(const char *s)
{
	char *end;
	double v;

	if (s == NULL || *s == '\0')
		return 0;
	v = strtod(s, &end);
	if (*end != '\0' || v < 1 || v > 6.2)
		return -1;
	return (int)lround(v * 10);
}

/* libx264: preset, H.264 profile, IDR only where forced, closed GOPs. */
static int
transcode_x264_options(struct transcode *st, AVCodecContext *enc,
    const char *preset, const char *prof)
{
	int err;

	if ((err = av_opt_set(enc->priv_data, "preset", preset, 0)) < 0)
		return transcode_error(
		    st, err, "bad profile.video.preset '%s'", preset);
	if ((err = av_opt_set(enc->priv_data, "profile", prof, 0)) < 0)
		return transcode_error(
		    st, err, "bad profile.video.profile '%s'", prof);
	/* A forced I frame must be an IDR, and nothing else may be one. */
	if ((err = av_opt_set(enc->priv_data, "forced-idr", "1", 0)) < 0 ||
	    (err = av_opt_set(enc->priv_data, "x264-params",
		 "scenecut=0:open-gop=0", 0)) < 0)
		return transcode_error(
		    st, err, "cannot set the libx264 options");
	return 0;
}

/*
 * libx265: the same preset names as x264, Main profile (8-bit 4:2:0),
 * infinite GOP with IDRs only where forced (segment starts), closed GOPs,
 * no scene cuts; its frame threads follow the host's thread budget.
 */
static int
transcode_x265_options(struct transcode *st, AVCodecContext *enc,
    const char *preset)
{
	char params[128];
	int err;

	(void)snprintf(params, sizeof(params),
	    "keyint=-1:scenecut=0:open-gop=0:log-level=error:pools=%d",
	    st->call->threads > 0 ? st->call->threads : 1);
	enc->gop_size = -1; /* x265's own keyint (infinite, above) */
	enc->keyint_min = -1;
	if ((err = av_opt_set(enc->priv_data, "preset", preset, 0)) < 0)
		return transcode_error(
		    st, err, "bad profile.video.preset '%s'", preset);
	if ((err = av_opt_set(enc->priv_data, "profile", "main", 0)) < 0 ||
	    (err = av_opt_set(enc->priv_data, "forced-idr", "1", 0)) < 0 ||
	    (err = av_opt_set(enc->priv_data, "x265-params", params, 0)) < 0)
		return transcode_error(
		    st, err, "cannot set the libx265 options");
	return 0;
}

/*
 * libsvtav1 (SVT-AV1 1.4 through libavcodec 59): x264's preset names
 * mapped onto SVT-AV1's speed levels (ultrafast 12 ... veryslow 4),
 * no scene change detection, and capped CRF: the only rate control of
 * this SVT-AV1 that both honours a forced key frame ("Force key frame is
 * only supported with RA CRF/CQP mode"; its VBR refuses
 * enable-force-key-frames) and a maximum rate (its VBR ignores mbr). CRF
 * is profile.video.crf, else TRANSCODE_AV1_CRF, low enough that the cap
 * (the rung's maxrate, bufsize as the buffer) decides the rate of most
 * content; mbr-overshoot-pct=0 because SVT's default lets segments run
 * ~25 % over the cap (README, "AV1 rate control"). Key frames only where
 * transcode_video_out forces them (closed: SVT's default key frame type).
 */
static int
transcode_svtav1_options(struct transcode *st, AVCodecContext *enc,
    const char *preset, double crf)
{
	static const char *const names[] = { "ultrafast", "superfast",
		"veryfast", "faster", "fast", "medium", "slow", "slower",
		"veryslow", NULL };
	static const int speed[] = { 12, 11, 10, 9, 8, 7, 6, 5, 4 };
	int err, level = -1;

	for (int i = 0; names[i] != NULL; i++)
		if (strcmp(preset, names[i]) == 0)
			level = speed[i];
	if (level < 0)
		return transcode_error(
		    st, 0, "bad profile.video.preset '%s'", preset);
	if (crf <= 0)
		crf = TRANSCODE_AV1_CRF;
	if (crf > 63)
		return transcode_error(st, 0,
		    "profile.video.crf %.2f is out of SVT-AV1's range (1..63)",
		    crf);
	if ((err = av_opt_set_int(enc->priv_data, "preset", level, 0)) < 0 ||
	    (err = av_opt_set_int(enc->priv_data, "crf", lround(crf), 0)) <
		0 ||
	    (err = av_opt_set(enc->priv_data, "svtav1-params",
		 "scd=0:enable-force-key-frames=1:mbr-overshoot-pct=0", 0)) <
		0)
		return transcode_error(
		    st, err, "cannot set the libsvtav1 options");
	enc->thread_count = 0;
	return 0;
}

static int
transcode_open_video_encoder(struct transcode *st)
{
	const cJSON *ctx = st->call->ctx;
	const char *name = ladderd_ctx_str(ctx, "rung.codec",
	    ladderd_setting_str(ctx, encode_setting(ENC_VIDEO_CODEC)));
	const char *preset =
	    ladderd_setting_str(ctx, encode_setting(ENC_VIDEO_PRESET));
	const char *prof =
	    ladderd_setting_str(ctx, encode_setting(ENC_VIDEO_PROFILE));
	const char *level =
	    ladderd_setting_str(ctx, encode_setting(ENC_VIDEO_LEVEL));
	double maxf =
	    ladderd_setting_num(ctx, encode_setting(ENC_VIDEO_MAXRATE_FACTOR));
	double buff =
	    ladderd_setting_num(ctx, encode_setting(ENC_VIDEO_BUFSIZE_FACTOR));
	double crf = ladderd_setting_num(ctx, encode_setting(ENC_VIDEO_CRF));
	double kbps = ladderd_ctx_num(ctx, "target_size.bitrate",
	    ladderd_ctx_num(ctx, "rung.bitrate", 0));
	const AVCodecParameters *par = st->ifmt->streams[st->vin]->codecpar;
	const AVCodec *codec = avcodec_find_encoder_by_name(name);
	AVCodecContext *enc;
	int64_t frames_per_seg;
	char num[32];
	int lvl, err;

	if (codec == NULL || (codec->id != AV_CODEC_ID_H264 &&
				 codec->id != AV_CODEC_ID_HEVC &&
				 codec->id != AV_CODEC_ID_AV1))
		return transcode_error(st, 0, "video encoder '%s' is not "
		    "available in libavcodec (libx264, libx265 or libsvtav1)",
		    name);
	if (codec->id != AV_CODEC_ID_H264 &&
	    strcmp(ladderd_ctx_str(ctx, "profile.segment_type", "fmp4"),
		"fmp4") != 0)
		return transcode_error(st, 0, "%s needs segment_type fmp4 "
		    "(MPEG-TS carries H.264 only)", name);
	if (kbps <= 0 || kbps > 1000000)
		return transcode_error(
		    st, 0, "rung bitrate %.0f kbps is out of range", kbps);
	if (maxf < 1 || buff <= 0)
		return transcode_error(st, 0,
		    "bad maxrate_factor %.3f / bufsize_factor %.3f", maxf,
		    buff);
	if ((lvl = transcode_level(level)) < 0)
		return transcode_error(
		    st, 0, "bad profile.video.level '%s'", level);
	if ((enc = st->venc = avcodec_alloc_context3(codec)) == NULL)
		return transcode_error(
		    st, AVERROR(ENOMEM), "cannot allocate the encoder");

	enc->width = st->width;
	enc->height = st->height;
	enc->pix_fmt = AV_PIX_FMT_YUV420P;
	enc->sample_aspect_ratio = (AVRational){1, 1};
	/* Fine time base: VFR timestamps pass through unrounded. */
	enc->time_base = (AVRational){1, TRANSCODE_VIDEO_HZ};
	enc->framerate = st->fps;
	enc->bit_rate = (int64_t)(kbps * 1000);
	enc->rc_max_rate = (int64_t)(kbps * 1000 * maxf);
	enc->rc_buffer_size = (int)(kbps * 1000 * buff);
	/* Keyframes come only from the forced IDRs on segment boundaries. */
	frames_per_seg = (int64_t)ceil(st->seg * av_q2d(st->fps));
	enc->gop_size = 1 << 30; /* X264_KEYINT_MAX_INFINITE */
	enc->keyint_min = (int)FFMIN(frames_per_seg, 250);
	enc->flags |= AV_CODEC_FLAG_CLOSED_GOP;
	if (st->ofmt->oformat->flags & AVFMT_GLOBALHEADER)
		enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	enc->thread_count = st->call->threads > 0 ? st->call->threads : 0;
	enc->thread_type = FF_THREAD_FRAME;
	if (lvl > 0)
		enc->level = lvl;
	/* Keep the source's colour signalling (we convert bit depth only),
	 * unless the filters tone mapped HDR to BT.709 SDR. */
	enc->color_primaries = st->to_sdr ? AVCOL_PRI_BT709
					  : par->color_primaries;
	enc->color_trc = st->to_sdr ? AVCOL_TRC_BT709 : par->color_trc;
	enc->colorspace = st->to_sdr ? AVCOL_SPC_BT709 : par->color_space;
	enc->color_range = AVCOL_RANGE_MPEG;

	if (codec->id == AV_CODEC_ID_HEVC)
		err = transcode_x265_options(st, enc, preset);
	else if (codec->id == AV_CODEC_ID_AV1)
		err = transcode_svtav1_options(st, enc, preset, crf);
	else
		err = transcode_x264_options(st, enc, preset, prof);
	if (err < 0)
		return err;
	if (crf > 0 && codec->id != AV_CODEC_ID_AV1) {
		(void)snprintf(num, sizeof(num), "%.2f", crf);
		if ((err = av_opt_set(enc->priv_data, "crf", num, 0)) < 0)
			return transcode_error(
			    st, err, "bad profile.video.crf %s", num);
	}
	if ((err = avcodec_open2(enc, codec, NULL)) < 0)
		return transcode_error(st, err,
		    "cannot open %s (%dx%d, preset %s, profile %s, level '%s')",
		    name, st->width, st->height, preset, prof, level);

	st->fdur = av_rescale_q(1, av_inv_q(st->fps), enc->time_base);
	if (st->fdur <= 0)
		st->fdur = 1;
	if ((st->vframe = av_frame_alloc()) == NULL)
		return transcode_error(
		    st, AVERROR(ENOMEM), "cannot allocate frames");
	st->vframe->format = AV_PIX_FMT_YUV420P;
	st->vframe->width = st->width;
	st->vframe->height = st->height;
	if ((err = av_frame_get_buffer(st->vframe, 0)) < 0)
		return transcode_error(st, err, "cannot allocate a %dx%d frame",
		    st->width, st->height);
	return 0;
}

static int
transcode_open_audio_encoder(struct transcode *st)
{
	const cJSON *ctx = st->call->ctx;
	const char *name =
	    ladderd_setting_str(ctx, encode_setting(ENC_AUDIO_CODEC));
	double kbps =
	    ladderd_setting_num(ctx, encode_setting(ENC_AUDIO_BITRATE));
	int channels = (int)ladderd_setting_num(ctx,
	    encode_setting(ENC_AUDIO_CHANNELS));
	int rate = (int)ladderd_setting_num(ctx,
	    encode_setting(ENC_AUDIO_SAMPLE_RATE));
	const AVCodec *codec = avcodec_find_encoder_by_name(name);
	AVCodecContext *enc;
	int err;

	if (codec == NULL || codec->id != AV_CODEC_ID_AAC)
		return transcode_error(st, 0,
		    "AAC encoder '%s' is not available in libavcodec", name);
	if (channels < 1 || channels > 2 || rate < 8000 || rate > 96000 ||
	    kbps < 8 || kbps > 1024)
		return transcode_error(st, 0,
		    "bad profile.audio (%d channels, %d Hz, %.0f kbps)",
		    channels, rate, kbps);
	if ((enc = st->aenc = avcodec_alloc_context3(codec)) == NULL)
		return transcode_error(
		    st, AVERROR(ENOMEM), "cannot allocate the encoder");
	enc->sample_fmt = AV_SAMPLE_FMT_FLTP; /* the only one "aac" takes */
	enc->sample_rate = rate;
	av_channel_layout_default(&enc->ch_layout, channels);
	enc->bit_rate = (int64_t)(kbps * 1000);
	enc->profile = FF_PROFILE_AAC_LOW;
	enc->time_base = (AVRational){1, rate};
	if (st->ofmt->oformat->flags & AVFMT_GLOBALHEADER)
		enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	if ((err = avcodec_open2(enc, codec, NULL)) < 0)
		return transcode_error(st, err,
		    "cannot open %s (%d Hz, %d channels)", name, rate,
		    channels);

	st->aframe_size = enc->frame_size > 0 ? enc->frame_size : 1024;
	st->fifo =
	    av_audio_fifo_alloc(enc->sample_fmt, channels, st->aframe_size * 4);
	if (st->fifo == NULL || (st->aframe = av_frame_alloc()) == NULL)
		return transcode_error(
		    st, AVERROR(ENOMEM), "cannot allocate audio buffers");
	st->aframe->format = enc->sample_fmt;
	st->aframe->sample_rate = rate;
	st->aframe->nb_samples = st->aframe_size;
	if ((err = av_channel_layout_copy(
		 &st->aframe->ch_layout, &enc->ch_layout)) < 0 ||
	    (err = av_frame_get_buffer(st->aframe, 0)) < 0)
		return transcode_error(
		    st, err, "cannot allocate an audio frame");
	return 0;
}

/* Add an output stream for an opened encoder. */
static int
transcode_add_stream(struct transcode *st, AVCodecContext *enc, int *ret_idx)
{
	AVStream *os = avformat_new_stream(st->ofmt, NULL);
	int err;

	if (os == NULL)
		return transcode_error(
		    st, AVERROR(ENOMEM), "cannot add a stream");
	if ((err = avcodec_parameters_from_context(os->codecpar, enc)) < 0)
		return transcode_error(
		    st, err, "cannot copy encoder parameters");
	os->time_base = enc->time_base;
	/* hvc1: parameter sets only in the hvcC (what Apple devices take). */
	if (enc->codec_id == AV_CODEC_ID_HEVC)
		os->codecpar->codec_tag = MKTAG('h', 'v', 'c', '1');
	if (enc->codec_type == AVMEDIA_TYPE_VIDEO) {
		os->avg_frame_rate = st->fps;
		os->sample_aspect_ratio = enc->sample_aspect_ratio;
	}
	*ret_idx = os->index;
	return 0;
}

static int
transcode_open_output(struct transcode *st)
{
	int err;

	if ((err = avformat_alloc_output_context2(
		 &st->ofmt, NULL, "mp4", st->tmp)) < 0)
		return transcode_error(st, err, "cannot set up the mp4 muxer");
	if (st->want_video && (err = transcode_open_video_encoder(st)) < 0)
		return err;
	if (st->want_audio && (err = transcode_open_audio_encoder(st)) < 0)
		return err;
	if (st->want_video &&
	    (err = transcode_add_stream(st, st->venc, &st->vout)) < 0)
		return err;
	if (st->want_audio &&
	    (err = transcode_add_stream(st, st->aenc, &st->aout)) < 0)
		return err;
	if ((err = avio_open(&st->ofmt->pb, st->tmp, AVIO_FLAG_WRITE)) < 0)
		return transcode_error(st, err, "cannot create '%s'", st->tmp);
	st->tmp_exists = 1;
	if ((err = avformat_write_header(st->ofmt, NULL)) < 0)
		return transcode_error(
		    st, err, "cannot write the header of '%s'", st->tmp);
	return 0;
}

/* Mux one encoder packet; records keyframes and sizes on the way. */
static int
transcode_write(struct transcode *st, AVCodecContext *enc, AVPacket *pkt)
{
	int video = enc == st->venc;
	AVStream *os = st->ofmt->streams[video ? st->vout : st->aout];
	int err;

	if (video) {
		if (pkt->duration <= 0)
			pkt->duration = st->fdur;
		pkt->pts += st->chunk_from;
		pkt->dts += st->chunk_from;
		/* The pre-roll's packets only warmed the rate control. */
		if (pkt->pts < st->chunk_start) {
			av_packet_unref(pkt);
			return 0;
		}
		st->frames_out++;
		st->vbytes += pkt->size;
		if (pkt->flags & AV_PKT_FLAG_KEY) {
			cJSON *t = cJSON_CreateNumber(
			    (double)pkt->pts / TRANSCODE_VIDEO_HZ);

			if (t == NULL ||
			    !cJSON_AddItemToArray(st->keyframes, t)) {
				cJSON_Delete(t);
				return transcode_error(st, AVERROR(ENOMEM),
				    "cannot record a keyframe");
			}
		}
	} else {
		st->abytes += pkt->size;
	}
	pkt->stream_index = os->index;
	av_packet_rescale_ts(pkt, enc->time_base, os->time_base);
	/* The muxer takes the packet's reference and leaves pkt blank. */
	if ((err = av_interleaved_write_frame(st->ofmt, pkt)) < 0)
		return transcode_error(
		    st, err, "cannot write to '%s'", st->tmp);
	return 0;
}

/* Send a frame (NULL = flush) and mux every packet that comes out. */
static int
transcode_encode(struct transcode *st, AVCodecContext *enc, const AVFrame *fr)
{
	int err = avcodec_send_frame(enc, fr);

	if (err < 0)
		return transcode_error(
		    st, err, "cannot encode with %s", enc->codec->name);
	for (;;) {
		err = avcodec_receive_packet(enc, st->opkt);
		if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
			return 0;
		if (err < 0)
			return transcode_error(
			    st, err, "cannot encode with %s", enc->codec->name);
		err = transcode_write(st, enc, st->opkt);
		av_packet_unref(st->opkt);
		if (err < 0)
			return err;
	}
}

/*
 * A frame already in the rung's size, format and range (the top rung of
 * most ladders) needs no scaler: the encoder reads it where it is, since
 * x264, x265 and SVT-AV1 copy their input on entry.
 */
static int
transcode_as_is(const struct transcode *st, const AVFrame *fr)
{
	return fr->width == st->width && fr->height == st->height &&
	    fr->format == AV_PIX_FMT_YUV420P &&
	    fr->color_range != AVCOL_RANGE_JPEG;
}

static void
transcode_view_free(void *opaque, uint8_t *data)
{
	(void)data;
	*(int *)opaque = 0;
}

/*
 * st->view refers to fr's picture. A ring slot has no buffer of its own,
 * and the encoder would copy a frame without one, so it gets a buffer
 * that only records when the encoder lets go of it.
 */
static int
transcode_view_of(struct transcode *st, const AVFrame *fr)
{
	AVFrame *v = st->view;

	av_frame_unref(v);
	if (fr->buf[0] != NULL)
		return av_frame_ref(v, fr);
	v->buf[0] = av_buffer_create(fr->data[0], 1, transcode_view_free,
	    &st->view_held, AV_BUFFER_FLAG_READONLY);
	if (v->buf[0] == NULL)
		return AVERROR(ENOMEM);
	st->view_held = 1;
	v->format = fr->format;
	v->width = fr->width;
	v->height = fr->height;
	v->color_range = fr->color_range;
	v->colorspace = fr->colorspace;
	memcpy(v->data, fr->data, sizeof(v->data));
	memcpy(v->linesize, fr->linesize, sizeof(v->linesize));
	return 0;
}

/* The encoder's input: fr itself, or fr scaled into st->vframe. */
static AVFrame *
transcode_picture(struct transcode *st, const AVFrame *fr)
{
	int err;

	if (transcode_as_is(st, fr)) {
		if ((err = transcode_view_of(st, fr)) < 0) {
			transcode_error(st, err, "cannot refer to a frame");
			return NULL;
		}
		return st->view;
	}
	st->sws = sws_getCachedContext(st->sws, fr->width, fr->height,
	    fr->format, st->width, st->height, AV_PIX_FMT_YUV420P,
	    SWS_BICUBIC, NULL, NULL, NULL);
	if (st->sws == NULL) {
		transcode_error(st, 0, "cannot scale %dx%d %s to %dx%d",
		    fr->width, fr->height,
		    av_get_pix_fmt_name(fr->format)
			? av_get_pix_fmt_name(fr->format)
			: "?",
		    st->width, st->height);
		return NULL;
	}
	/* Full-range YUV flagged on the frame (not by a yuvj format) is
	 * squeezed to limited range, which is what we signal. */
	if (st->sws != st->sws_ranged ||
	    (int)fr->color_range != st->sws_range) {
		const int *coef = sws_getCoefficients(
		    fr->colorspace == AVCOL_SPC_BT709 ? SWS_CS_ITU709
						      : SWS_CS_DEFAULT);

		int full = fr->color_range == AVCOL_RANGE_JPEG ||
		    fr->format == AV_PIX_FMT_YUVJ420P ||
		    fr->format == AV_PIX_FMT_YUVJ422P ||
		    fr->format == AV_PIX_FMT_YUVJ444P ||
		    fr->format == AV_PIX_FMT_YUVJ440P ||
		    fr->format == AV_PIX_FMT_YUVJ411P;

		(void)sws_setColorspaceDetails(
		    st->sws, coef, full, coef, 0, 0, 1 << 16, 1 << 16);
		st->sws_ranged = st->sws;
		st->sws_range = fr->color_range;
	}
	/* The encoder may still hold a reference to the last buffer. */
	if ((err = av_frame_make_writable(st->vframe)) < 0) {
		transcode_error(st, err, "cannot get a frame buffer");
		return NULL;
	}
	/* sws_scale, not sws_scale_frame: the latter takes a reference to
	 * its input, which copies a frame that has no buffer (a ring slot)
	 * into fresh memory on every frame. */
	if ((err = sws_scale(st->sws, (const uint8_t *const *)fr->data,
		 fr->linesize, 0, fr->height, st->vframe->data,
		 st->vframe->linesize)) < 0) {
		transcode_error(st, err, "cannot scale a frame");
		return NULL;
	}
	return st->vframe;
}

/* Scale, stamp and encode one decoded (and filtered) frame. */
static int
transcode_video_out(struct transcode *st, const AVFrame *fr)
{
	AVFrame *in;
	AVStream *vs = st->ifmt->streams[st->vin];
	AVRational tb = st->venc->time_base;
	int64_t ts = fr->best_effort_timestamp;
	int64_t pts, dur;
	int err;

	st->frames_in++;
	if (ts == AV_NOPTS_VALUE)
		pts = st->last_pts < 0 ? 0 : st->last_pts + st->fdur;
	else
		pts = av_rescale_q(ts, vs->time_base, tb) -
		    av_rescale_q(st->start, st->start_tb, tb);
	/* Rounding can put the first frame a tick before zero. */
	if (pts < 0 && st->last_pts < 0 && pts > -st->fdur)
		pts = 0;
	/* A chunk keeps only its own time range: the frames before its start
	 * were decoded only to reach it. */
	if (st->chunk && st->chunk_end > 0 && pts >= st->chunk_end) {
		st->chunk_past = 1;
		return 0;
	}
	if (st->chunk && pts < st->chunk_from)
		return 0;
	/* The seek must land at or before the start, never after. */
	if (st->chunk && st->last_pts < 0 && st->chunk_from > 0 &&
	    pts >= st->chunk_from + st->fdur)
		return transcode_error(st, 0, "the seek in '%s' landed after "
		    "the chunk's start (%.3f s, first frame %.3f s)", st->src,
		    (double)st->chunk_from / TRANSCODE_VIDEO_HZ,
		    (double)pts / TRANSCODE_VIDEO_HZ);
	/* Frames before the start or with a repeated timestamp are dropped
	 * (x264 needs strictly increasing pts). */
	if (pts < 0 || pts <= st->last_pts) {
		st->dropped++;
		return 0;
	}
	dur = LADDERD_FRAME_DURATION(fr) > 0
	    ? av_rescale_q(LADDERD_FRAME_DURATION(fr), vs->time_base, tb)
	    : st->fdur;

	if ((in = transcode_picture(st, fr)) == NULL)
		return -1;

	/*
	 * A chunk's encoder counts time from its own start, as a whole
	 * rung's does from 0 (x264's rate control reads the first frame's
	 * pts as time already spent); transcode_write puts it back.
	 */
	in->pts = pts - st->chunk_from;
	in->pict_type = AV_PICTURE_TYPE_NONE;
	if (pts >= st->next_idr) {
		int64_t step = (int64_t)st->seg * TRANSCODE_VIDEO_HZ;

		in->pict_type = AV_PICTURE_TYPE_I;
		while (st->next_idr <= pts)
			st->next_idr += step;
	}
	st->last_pts = pts;
	st->video_end = pts + dur;
	err = transcode_encode(st, st->venc, in);
	if (in == st->view) {
		av_frame_unref(st->view);
		/* The slot goes back to the ring after this: nobody may
		 * read it later. */
		if (err >= 0 && st->view_held)
			return transcode_error(st, 0, "%s kept a reference to "
			    "its input frame", st->venc->codec->name);
	}
	if (err < 0)
		return err;
	LADDERD_CRASH_POINT("transcode.frame", st->call->rung);
	if (st->frames_in % TRANSCODE_PROGRESS_FRAMES == 0 &&
	    st->est_frames > 0)
		st->call->progress(
		    st->call, FFMIN(0.99, st->frames_in / st->est_frames));
	return 0;
}

/*
 * Run a frame (NULL: the end) through `*g`, made from `plan` on the first
 * frame, and hand each frame out, stamped back in the stream's time base
 * `tb` (best_effort_timestamp), to `next`.
 */
static int
transcode_filter(struct transcode *st, struct ladderd_graph **g,
    const char *plan, AVFrame *fr, AVRational tb,
    int (*next)(struct transcode *, const AVFrame *))
{
	char msg[1200];
	int err;

	if (*g == NULL) {
		if (fr == NULL)
			return 0;
		if ((err = ladderd_graph_new(g, plan, fr, tb, msg,
			 sizeof(msg))) < 0)
			return transcode_error(st, err, "%s", msg);
		st->call->log(st->call, LADDERD_LOG_DEBUG, "filters: %s", plan);
	}
	if (fr != NULL)
		fr->pts = fr->best_effort_timestamp;
	if ((err = ladderd_graph_push(*g, fr)) < 0)
		return transcode_error(st, err, "cannot filter a frame (%s)",
		    plan);
	for (;;) {
		err = ladderd_graph_pull(*g, st->filtered);
		if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
			return 0;
		if (err < 0)
			return transcode_error(st, err, "cannot filter (%s)",
			    plan);
		if (st->filtered->pts != AV_NOPTS_VALUE)
			st->filtered->best_effort_timestamp = av_rescale_q(
			    st->filtered->pts, ladderd_graph_time_base(*g), tb);
		else
			st->filtered->best_effort_timestamp = AV_NOPTS_VALUE;
		/* The graph's durations are in its own time base. */
		LADDERD_FRAME_DURATION(st->filtered) = 0;
		err = next(st, st->filtered);
		av_frame_unref(st->filtered);
		if (err < 0)
			return err;
	}
}

/*
 * A decoded video frame (NULL: the end): through the filters when there
 * are any and this rung decodes for itself (the shared decoder filtered
 * the ring's frames already), else straight to the scaler.
 */
static int
transcode_video_frame(struct transcode *st, AVFrame *fr)
{
	if (st->vplan[0] == '\0' || st->ring != NULL)
		return fr != NULL ? transcode_video_out(st, fr) : 0;
	return transcode_filter(st, &st->vgraph, st->vplan, fr,
	    st->ifmt->streams[st->vin]->time_base, transcode_video_out);
}

/* Make sure abuf holds n samples of the encoder's format. */
static int
transcode_abuf(struct transcode *st, int n)
{
	int err;

	if (n <= st->abuf_cap)
		return 0;
	av_freep(&st->abuf[0]);
	st->abuf_cap = 0;
	if ((err = av_samples_alloc(st->abuf, NULL,
		 st->aenc->ch_layout.nb_channels, n, st->aenc->sample_fmt, 0)) <
	    0)
		return transcode_error(
		    st, err, "cannot allocate audio samples");
	st->abuf_cap = n;
	return 0;
}

/* Resample (in == NULL: flush swr) into the FIFO, dropping askip samples. */
static int
transcode_resample(struct transcode *st, const uint8_t **in, int n)
{
	for (;;) {
		int cap = swr_get_out_samples(st->swr, n);
		int got, err;

		if (cap < 0)
			return transcode_error(st, cap, "cannot resample");
		if (cap == 0)
			return 0;
		if ((err = transcode_abuf(st, cap)) < 0)
			return err;
		got = swr_convert(st->swr, st->abuf, cap, in, n);
		if (got < 0)
			return transcode_error(st, got, "cannot resample");
		if (got > 0 &&
		    av_audio_fifo_write(st->fifo, (void **)st->abuf, got) < got)
			return transcode_error(
			    st, AVERROR(ENOMEM), "cannot queue audio samples");
		if (st->askip > 0) {
			int d =
			    (int)FFMIN(st->askip, av_audio_fifo_size(st->fifo));

			(void)av_audio_fifo_drain(st->fifo, d);
			st->askip -= d;
		}
		if (in != NULL || got == 0)
			return 0;
	}
}

/* Encode whole frames from the FIFO; with `final`, the short tail too. */
static int
transcode_audio_drain(struct transcode *st, int final)
{
	int err;

	while (av_audio_fifo_size(st->fifo) >= st->aframe_size ||
	    (final && av_audio_fifo_size(st->fifo) > 0)) {
		int n = FFMIN(av_audio_fifo_size(st->fifo), st->aframe_size);

		if ((err = av_frame_make_writable(st->aframe)) < 0)
			return transcode_error(
			    st, err, "cannot get an audio buffer");
		if (av_audio_fifo_read(st->fifo, (void **)st->aframe->data, n) <
		    n)
			return transcode_error(st, AVERROR(EIO),
			    "cannot read queued audio samples");
		/* "aac" accepts one short last frame. */
		st->aframe->nb_samples = n;
		st->aframe->pts = st->apts;
		st->apts += n;
		if ((err = transcode_encode(st, st->aenc, st->aframe)) < 0)
			return err;
		if (!st->want_video && st->est_duration > 0 &&
		    (st->apts / st->aframe_size) % 100 == 0)
			st->call->progress(st->call,
			    FFMIN(0.99,
				st->apts / (double)st->aenc->sample_rate /
				    st->est_duration));
	}
	return 0;
}

/* Queue silence so the audio starts where the video does. */
static int
transcode_silence(struct transcode *st, int64_t n)
{
	int chunk = st->aframe_size;
	int err;

	if ((err = transcode_abuf(st, chunk)) < 0)
		return err;
	(void)av_samples_set_silence(st->abuf, 0, chunk,
	    st->aenc->ch_layout.nb_channels, st->aenc->sample_fmt);
	while (n > 0) {
		int k = (int)FFMIN(n, chunk);

		if (av_audio_fifo_write(st->fifo, (void **)st->abuf, k) < k)
			return transcode_error(
			    st, AVERROR(ENOMEM), "cannot queue audio samples");
		n -= k;
		if ((err = transcode_audio_drain(st, 0)) < 0)
			return err;
	}
	return 0;
}

/* (Re)configure swresample for the frame's format, rate and layout. */
static int
transcode_swr_setup(struct transcode *st, const AVFrame *fr)
{
	AVChannelLayout in = {0};
	int err;

	if (st->swr != NULL && fr->format == st->swr_fmt &&
	    fr->sample_rate == st->swr_rate &&
	    av_channel_layout_compare(&fr->ch_layout, &st->swr_layout) == 0)
		return 0;
	if (st->swr != NULL) {
		/* Parameters changed mid-stream: keep what swr buffered. */
		if ((err = transcode_resample(st, NULL, 0)) < 0)
			return err;
		swr_free(&st->swr);
	}
	av_channel_layout_uninit(&st->swr_layout);
	if ((err = av_channel_layout_copy(&st->swr_layout, &fr->ch_layout)) < 0)
		return transcode_error(st, err, "cannot copy a channel layout");
	st->swr_fmt = fr->format;
	st->swr_rate = fr->sample_rate;
	/* Unordered channels: assume the usual layout for that count. */
	if (fr->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
		av_channel_layout_default(&in, fr->ch_layout.nb_channels);
	else if ((err = av_channel_layout_copy(&in, &fr->ch_layout)) < 0)
		return transcode_error(st, err, "cannot copy a channel layout");
	err = swr_alloc_set_opts2(&st->swr, &st->aenc->ch_layout,
	    st->aenc->sample_fmt, st->aenc->sample_rate, &in, fr->format,
	    fr->sample_rate, 0, NULL);
	av_channel_layout_uninit(&in);
	if (err < 0 || (err = swr_init(st->swr)) < 0)
		return transcode_error(st, err,
		    "cannot resample %d Hz %d channels %s to %d Hz stereo",
		    fr->sample_rate, fr->ch_layout.nb_channels,
		    av_get_sample_fmt_name(fr->format)
			? av_get_sample_fmt_name(fr->format)
			: "?",
		    st->aenc->sample_rate);
	return 0;
}

static int
transcode_audio_out(struct transcode *st, const AVFrame *fr)
{
	int err;

	if (fr->nb_samples <= 0 || fr->sample_rate <= 0)
		return 0;
	if ((err = transcode_swr_setup(st, fr)) < 0)
		return err;
	AVStream *as = st->ifmt->streams[st->ain];
	AVRational otb = {1, st->aenc->sample_rate};
	int64_t ts = fr->best_effort_timestamp;
	int64_t pos = ts == AV_NOPTS_VALUE
	    ? AV_NOPTS_VALUE
	    : av_rescale_q(ts, as->time_base, otb) -
		av_rescale_q(st->start, st->start_tb, otb);
	/* Silence is bounded by the source duration (a bogus pts must not
	 * make us write hours of it). */
	int64_t max_gap = st->est_duration > 0
	    ? (int64_t)(st->est_duration * otb.den)
	    : INT64_MAX;

	if (!st->audio_started) {
		/* Audio before the video start is cut, a late start is
		 * padded: sample 0 is time 0 in every rung. */
		st->audio_started = 1;
		st->anext = pos == AV_NOPTS_VALUE ? 0 : pos;
		if (pos < 0 && pos != AV_NOPTS_VALUE)
			st->askip = -pos;
		else if (pos > 0 && pos < max_gap &&
		    (err = transcode_silence(st, pos)) < 0)
			return err;
	} else if (pos != AV_NOPTS_VALUE && pos - st->anext > otb.den / 25 &&
	    pos - st->anext < max_gap) {
		/* A hole (lost packets): fill it so A/V sync holds after. */
		if ((err = transcode_silence(st, pos - st->anext)) < 0)
			return err;
		st->anext = pos;
	}
	st->anext += av_rescale(fr->nb_samples, otb.den, fr->sample_rate);
	if ((err = transcode_resample(
		 st, (const uint8_t **)fr->extended_data, fr->nb_samples)) < 0)
		return err;
	return transcode_audio_drain(st, 0);
}

/* A decoded audio frame (NULL: the end), through loudnorm if planned. */
static int
transcode_audio_frame(struct transcode *st, AVFrame *fr)
{
	if (st->aplan[0] == '\0')
		return fr != NULL ? transcode_audio_out(st, fr) : 0;
	return transcode_filter(st, &st->agraph, st->aplan, fr,
	    st->ifmt->streams[st->ain]->time_base, transcode_audio_out);
}

/* Note a packet or frame that did not decode; warn about the first few. */
static void
transcode_bad(struct transcode *st, AVCodecContext *dec, int err)
{
	if (++st->bad <= TRANSCODE_WARN_BAD)
		st->call->log(st->call, LADDERD_LOG_WARN,
		    "skipping a bad %s packet in '%s': %s%s",
		    av_get_media_type_string(dec->codec_type), st->src,
		    av_err2str(err),
		    st->bad == TRANSCODE_WARN_BAD ? " (further ones not logged)"
						  : "");
}

/* Feed one packet (NULL = drain) to a decoder and process its frames. */
static int
transcode_decode(struct transcode *st, AVCodecContext *dec, const AVPacket *pkt)
{
	int err = avcodec_send_packet(dec, pkt);
	int errors = 0;

	/* We always drain, so EAGAIN cannot happen; other errors are a bad
	 * packet, and the decoder carries on with the next one. */
	if (err < 0 && err != AVERROR_EOF) {
		transcode_bad(st, dec, err);
		if (pkt != NULL)
			return 0;
	}
	for (;;) {
		err = avcodec_receive_frame(dec, st->frame);
		if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
			return 0;
		if (err < 0) {
			transcode_bad(st, dec, err);
			if (++errors > 16)
				return 0;
			continue;
		}
		err = dec == st->vdec ? transcode_video_frame(st, st->frame)
				      : transcode_audio_frame(st, st->frame);
		av_frame_unref(st->frame);
		if (err < 0)
			return err;
	}
}

/*
 * Read frames from the shared decoder's ring when the chord runs this rung
 * in the decoder's group (ctx.rung.group; a video-only rung: fMP4 mode).
 * Not attaching is not an error: a retried rung runs alone, and a rung
 * that comes too late decodes the source itself.
 */
static int
transcode_ring_attach(struct transcode *st)
{
	const char *names[FRAMERING_MAX_READERS];
	struct framering_spec spec;
	int err;

	if (!st->want_video || st->want_audio || st->call->rung == NULL ||
	    ladderd_ctx_str(st->call->ctx, "rung.group", NULL) == NULL ||
	    framering_spec_load(&spec, st->call, names) < 0)
		return 0;
	if ((err = framering_attach(&st->ring, &spec, st->call->rung)) <= 0) {
		if (err < 0)
			st->call->log(st->call, LADDERD_LOG_DEBUG,
			    "cannot open the frame ring '%s' (%s), decoding "
			    "alone", spec.name, strerror(-err));
		return 0;
	}
	st->used_ring = 1;
	st->call->log(st->call, LADDERD_LOG_DEBUG,
	    "reading frames from the shared decoder");
	return 0;
}

/* Encode every frame of the ring, reading each slot in place. */
static int
transcode_ring_loop(struct transcode *st)
{
	for (;;) {
		int err = framering_read(st->ring, st->frame);

		if (err == AVERROR(EPIPE))
			return transcode_error(st, 0,
			    "the shared decoder failed");
		if (err == AVERROR(ECANCELED)) {
			st->call->fail(st->call, "transcode of rung '%s' "
			    "cancelled", st->call->rung);
			st->rc = LADDERD_RETRY;
			return AVERROR_EXIT;
		}
		if (err <= 0)
			return err;
		err = transcode_video_out(st, st->frame);
		/* The slot's memory is the ring's, never the frame's. */
		framering_release(st->ring, st->frame);
		if (err < 0)
			return err;
	}
}

/* Demux, decode and encode everything, then flush the whole chain. */
static int
transcode_loop(struct transcode *st)
{
	int read_errors = 0;
	int err;

	if (st->ring != NULL && (err = transcode_ring_loop(st)) < 0)
		return err;
	for (; st->ring == NULL || st->want_audio;) {
		/* A chunk stops reading once its range is decoded. */
		if (st->chunk_past)
			break;
		err = av_read_frame(st->ifmt, st->pkt);
		if (err == AVERROR_EOF)
			break;
		if (err < 0) {
			/* A damaged stretch: the demuxer resyncs, within
			 * reason. */
			if (err != AVERROR(EIO) &&
			    ++read_errors <= TRANSCODE_MAX_READ_ERRORS) {
				st->bad++;
				continue;
			}
			return transcode_error(
			    st, err, "cannot read '%s'", st->src);
		}
		read_errors = 0;
		if (st->want_video && st->pkt->stream_index == st->vin)
			err = transcode_decode(st, st->vdec, st->pkt);
		else if (st->want_audio && st->pkt->stream_index == st->ain)
			err = transcode_decode(st, st->adec, st->pkt);
		av_packet_unref(st->pkt);
		if (err < 0)
			return err;
		if (++st->packets % TRANSCODE_CANCEL_PACKETS == 0 &&
		    st->call->cancelled != NULL &&
		    st->call->cancelled(st->call)) {
			st->call->fail(st->call,
			    "transcode of rung '%s' cancelled",
			    st->call->rung ? st->call->rung : "?");
			st->rc = LADDERD_RETRY;
			return AVERROR_EXIT;
		}
	}

	if (st->want_video && st->vdec != NULL &&
	    ((err = transcode_decode(st, st->vdec, NULL)) < 0 ||
		(err = transcode_video_frame(st, NULL)) < 0))
		return err;
	if (st->want_audio &&
	    ((err = transcode_decode(st, st->adec, NULL)) < 0 ||
		(err = transcode_audio_frame(st, NULL)) < 0))
		return err;
	if (st->want_video && st->frames_in == 0)
		return transcode_error(st, 0,
		    "no video frame could be decoded from '%s' (%lld bad "
		    "packets)",
		    st->src, (long long)st->bad);
	if (st->want_audio && !st->audio_started)
		return transcode_error(st, 0,
		    "no audio could be decoded from stream %d of '%s' (%lld "
		    "bad packets)",
		    st->ain, st->src, (long long)st->bad);
	if (st->want_audio) {
		if ((err = transcode_resample(st, NULL, 0)) < 0 ||
		    (err = transcode_audio_drain(st, 1)) < 0 ||
		    (err = transcode_encode(st, st->aenc, NULL)) < 0)
			return err;
	}
	if (st->want_video && (err = transcode_encode(st, st->venc, NULL)) < 0)
		return err;
	if ((err = av_write_trailer(st->ofmt)) < 0)
		return transcode_error(st, err, "cannot finish '%s'", st->tmp);
	if ((err = avio_closep(&st->ofmt->pb)) < 0)
		return transcode_error(st, err, "cannot write '%s'", st->tmp);
	return 0;
}

/* fsync the finished file, rename it into place, fsync the folder. */
static int
transcode_commit(struct transcode *st)
{
	int err = st->call->commit_file(st->call, st->tmp, st->path);

	if (err < 0)
		return transcode_error(st, AVERROR(-err),
		    "cannot commit '%s' as '%s'", st->tmp, st->path);
	st->tmp_exists = 0;
	return 0;
}

/*
 * Describe the H.264 stream from the SPS in the encoder's extradata (Annex
 * B from libx264): codec_profile, codec_level and the RFC 6381 codecs string.
 */
static void
transcode_describe_sps(const AVCodecContext *enc, cJSON *out)
{
	const uint8_t *p = enc->extradata;
	int n = enc->extradata_size;

	for (int i = 0; i + 6 < n; i++) {
		if (p[i] != 0 || p[i + 1] != 0 || p[i + 2] != 1 ||
		    (p[i + 3] & 0x1f) != 7)
			continue;
		int prof = p[i + 4], constraints = p[i + 5], lvl = p[i + 6];
		const char *name = prof == 66 ? "baseline"
		    : prof == 77	      ? "main"
		    : prof == 88	      ? "extended"
		    : prof == 100	      ? "high"
		    : prof == 110	      ? "high10"
		    : prof == 122	      ? "high422"
					      : "other";
		char buf[32];

		if (prof == 66 && (constraints & 0x40))
			name = "constrained_baseline";
		(void)cJSON_AddStringToObject(out, "codec_profile", name);
		(void)snprintf(buf, sizeof(buf), "%d.%d", lvl / 10, lvl % 10);
		(void)cJSON_AddStringToObject(out, "codec_level", buf);
		(void)cJSON_AddNumberToObject(out, "profile_idc", prof);
		(void)cJSON_AddNumberToObject(out, "level_idc", lvl);
		if (codecs_avc1(p, n, buf, sizeof(buf)) == 0)
			(void)cJSON_AddStringToObject(out, "codecs", buf);
		return;
	}
}

/* Build ctx.transcode; ownership of the result passes to the caller. */
static cJSON *
transcode_result(struct transcode *st)
{
	cJSON *out = cJSON_CreateObject();
	double vdur = (double)st->video_end / TRANSCODE_VIDEO_HZ;
	double adur = st->aenc ? (double)st->apts / st->aenc->sample_rate : 0;
	double dur = st->want_video ? vdur : adur;

	if (out == NULL)
		return NULL;
	(void)cJSON_AddStringToObject(out, "path", st->path);
	(void)cJSON_AddStringToObject(out, "kind", st->kind);
	(void)cJSON_AddNumberToObject(
	    out, "width", st->want_video ? st->width : 0);
	(void)cJSON_AddNumberToObject(
	    out, "height", st->want_video ? st->height : 0);
	(void)cJSON_AddNumberToObject(out, "frames", (double)st->frames_out);
	(void)cJSON_AddNumberToObject(out, "duration", dur);
	(void)cJSON_AddBoolToObject(out, "has_video", st->want_video);
	(void)cJSON_AddBoolToObject(out, "has_audio", st->want_audio);
	/* Whether the frames came from the shared decoder's ring. */
	(void)cJSON_AddBoolToObject(out, "shared_decode", st->used_ring);
	if (cJSON_AddItemToObject(out, "keyframes", st->keyframes))
		st->keyframes = NULL; /* out owns it now */
	(void)cJSON_AddNumberToObject(out, "bitrate",
	    dur > 0
		? round((st->want_video ? st->vbytes : st->abytes) * 8 / dur)
		: 0);
	if (st->want_video) {
		(void)cJSON_AddNumberToObject(
		    out, "frame_rate", round(av_q2d(st->fps) * 1000) / 1000);
		transcode_describe_sps(st->venc, out);
	}
	if (st->want_audio) {
		(void)cJSON_AddStringToObject(out, "audio_codecs", "mp4a.40.2");
		(void)cJSON_AddNumberToObject(out, "audio_duration", adur);
		(void)cJSON_AddNumberToObject(out, "audio_bitrate",
		    adur > 0 ? round(st->abytes * 8 / adur) : 0);
	}
	/* The filters this rung's frames went through (graph.c); with the
	 * shared decode, the decoder applied the video ones. */
	(void)cJSON_AddStringToObject(out, "filters",
	    st->want_video ? st->vplan : st->aplan);
	if (st->want_video && st->want_audio)
		(void)cJSON_AddStringToObject(out, "audio_filters", st->aplan);
	(void)cJSON_AddNumberToObject(out, "bad_packets", (double)st->bad);
	(void)cJSON_AddNumberToObject(
	    out, "dropped_frames", (double)st->dropped);
	if (st->chunk)
		(void)cJSON_AddNumberToObject(out, "chunk_start",
		    (double)st->chunk_start / TRANSCODE_VIDEO_HZ);
	return out;
}

/*
 * The rung's summary (stage.h): what the result says (encode_summary.h),
 * and the decoder and filters it used.
 */
static int
transcode_summary(struct transcode *st, const cJSON *res)
{
	cJSON *ctx = st->call->ctx;

	if (ladderd_encode_summary(ctx, res) < 0)
		return -1;
	if (!st->want_video)
		return 0;
	if (ladderd_summary_str(ctx, "decoder",
		st->used_ring ? "shared" : "own") < 0 ||
	    (st->vplan[0] != '\0' &&
		ladderd_summary_str(ctx, "filters", st->vplan) < 0))
		return -1;
	return 0;
}

/* Free everything st holds; safe on a half-built st. */
static void
transcode_free(struct transcode *st)
{
	if (st->ofmt != NULL && st->ofmt->pb != NULL)
		(void)avio_closep(&st->ofmt->pb);
	if (st->tmp_exists)
		(void)unlink(st->tmp);
	avformat_free_context(st->ofmt);
	st->ofmt = NULL;
	ladderd_source_close(&st->source);
	st->ifmt = NULL;
	avcodec_free_context(&st->vdec);
	avcodec_free_context(&st->adec);
	avcodec_free_context(&st->venc);
	avcodec_free_context(&st->aenc);
	sws_freeContext(st->sws);
	st->sws = NULL;
	swr_free(&st->swr);
	av_channel_layout_uninit(&st->swr_layout);
	if (st->fifo != NULL)
		av_audio_fifo_free(st->fifo);
	st->fifo = NULL;
	av_freep(&st->abuf[0]);
	ladderd_graph_free(&st->vgraph);
	ladderd_graph_free(&st->agraph);
	av_frame_free(&st->filtered);
	av_frame_free(&st->frame);
	av_frame_free(&st->vframe);
	av_frame_free(&st->view);
	av_frame_free(&st->aframe);
	av_packet_free(&st->pkt);
	av_packet_free(&st->opkt);
	cJSON_Delete(st->keyframes);
	st->keyframes = NULL;
	framering_finish(&st->ring, 0);
}

static enum ladderd_rc
transcode_run(void *state, struct ladderd_call *call)
{
	struct transcode st = {
	    .call = call,
	    .rc = LADDERD_FAIL,
	    .source = LADDERD_SOURCE_INIT,
	    .vin = -1,
	    .ain = -1,
	    .vout = -1,
	    .aout = -1,
	    .last_pts = -1,
	    .sws_range = -1,
	};
	enum ladderd_rc rc = LADDERD_FAIL;
	cJSON *out = NULL;

	(void)state;
	/* A chunked rung's unit joins its chunks' encodes. */
	if (cJSON_IsArray(ladderd_ctx_get(call->ctx, "rung.chunks")))
		return ladderd_transcode_join(call);
	st.keyframes = cJSON_CreateArray();
	st.frame = av_frame_alloc();
	st.filtered = av_frame_alloc();
	st.view = av_frame_alloc();
	st.pkt = av_packet_alloc();
	st.opkt = av_packet_alloc();
	if (st.keyframes == NULL || st.frame == NULL || st.filtered == NULL ||
	    st.view == NULL || st.pkt == NULL ||
	    st.opkt == NULL) {
		call->fail(call, "cannot allocate: %s", strerror(ENOMEM));
		goto out;
	}
	/* Each step reports its own failure and sets st.rc. */
	if (transcode_settings(&st) < 0 || transcode_ring_attach(&st) < 0 ||
	    transcode_open_input(&st) < 0 ||
	    transcode_open_output(&st) < 0 || transcode_loop(&st) < 0 ||
	    transcode_commit(&st) < 0) {
		rc = st.rc;
		goto out;
	}
	if (st.bad > 0)
		call->log(call, LADDERD_LOG_WARN,
		    "skipped %lld bad packets in '%s'", (long long)st.bad,
		    st.src);
	if ((out = transcode_result(&st)) == NULL ||
	    transcode_summary(&st, out) < 0 ||
	    ladderd_ctx_set(call->ctx, "transcode", out) < 0) {
		call->fail(call, "cannot store the transcode results");
		goto out;
	}
	out = NULL; /* the context owns it now */
	call->progress(call, 1.0);
	rc = LADDERD_OK;
out:
	cJSON_Delete(out);
	transcode_free(&st);
	return rc;
}

/* The profile's video and audio groups (encode_settings.h). */
static const struct ladderd_setting transcode_declared[ENC__COUNT + 1] =
    ENCODE_SETTINGS_INIT;

LADDERD_STAGE_DEFINE_SETTINGS("transcode", "1.0", "transcoding",
    transcode_declared, NULL, transcode_run, NULL);

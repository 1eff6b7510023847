/*
 * stages/probe.c - "get video size": what the source is (libavformat).
 *
 * Reads ctx.input.path. Adds ctx.probe = { format, duration, bit_rate, size,
 * video {...}, audio [...], audio_index, has_audio, subtitles [...] } as the
 * context contract
 * in notes/HELPERS.md describes; display_width/height are the picture as
 * shown: coded size widened by the sample aspect ratio, then turned by the
 * display matrix (rotation is clockwise, one of 0/90/180/270).
 *
 * The source is opened through source.c (a regular file, no symlink, a
 * whitelisted single-file container, no further opens: a playlist is
 * refused). It is not trusted to be what its name says: the stage fails
 * (LADDERD_FAIL, the task goes to failed/) on an empty file, a file
 * libavformat cannot read, neither a video nor an audio stream (audio
 * alone gives probe.audio_only: an audio-only package), a video codec
 * without a decoder,
 * a container whose index points past the end of the file (a cut upload), or
 * a video stream none of whose first packets decodes. Passing here means the
 * transcode stage will at least get started.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/pixdesc.h>

#include "avlog.h"
#include "encode_settings.h"
#include "graph.h"
#include "source.h"
#include "stage.h"
#include "crashpoint.h"

/*
 * Linked, not loaded on a first graph as in decode and transcode
 * (Makefile.am says why): a reference the linker keeps under --as-needed.
 */
__attribute__((used)) static unsigned (*const probe_links_avfilter)(void) =
    avfilter_version;

/* How far the first-frame check reads before it gives up. */
#define PROBE_MAX_VIDEO_PACKETS 300
#define PROBE_MAX_PACKETS 3000
/* idet looks at this many frames when the stream has no field order. */
#define PROBE_IDET_FRAMES 50

/* What the first decoded frame tells that the stream headers may not. */
struct probe_frame {
	int format; /* enum AVPixelFormat */
	int width;
	int height;
	int interlaced;
	/* idet over the first frames, when the stream has no field order:
	 * frames it called top/bottom field first or progressive. */
	int idet_frames, idet_tff, idet_bff, idet_progressive;
};

/* libavformat's blocking calls return early when the task is stopped. */
static int
probe_interrupt(void *opaque)
{
	struct ladderd_call *call = opaque;

	return call->cancelled(call);
}

/*
 * Clockwise display rotation of `st` in degrees, rounded to a quarter turn.
 * av_display_rotation_get() answers counterclockwise, hence the minus (as
 * the ffmpeg CLI does before it inserts its transpose filter).
 */
static int
probe_rotation(const AVStream *st)
{
	size_t size = 0;
	const uint8_t *sd;
	double deg;
	long quarter;

	sd = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
	if (sd == NULL || size < 9 * sizeof(int32_t))
		return 0;
	deg = -av_display_rotation_get((const int32_t *)sd);
	if (isnan(deg))
		return 0;
	quarter = lround(deg / 90.0) % 4;
	if (quarter < 0)
		quarter += 4;
	return (int)quarter * 90;
}

static const char *
probe_field_order_name(enum AVFieldOrder fo)
{
	switch (fo) {
	case AV_FIELD_PROGRESSIVE:
		return "progressive";
	case AV_FIELD_TT:
		return "tt";
	case AV_FIELD_BB:
		return "bb";
	case AV_FIELD_TB:
		return "tb";
	case AV_FIELD_BT:
		return "bt";
	default:
		return "unknown";
	}
}

/*
 * The stream to transcode: libavformat's best video stream, unless that is
 * cover art (an attached picture), then the first real video stream.
 * Returns the index, or -1.
 */
static int
probe_pick_video(AVFormatContext *fmt)
{
	int idx = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	unsigned i;

	if (idx >= 0 &&
	    !(fmt->streams[idx]->disposition & AV_DISPOSITION_ATTACHED_PIC))
		return idx;
	for (i = 0; i < fmt->nb_streams; i++) {
		const AVStream *st = fmt->streams[i];

		if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
		    !(st->disposition & AV_DISPOSITION_ATTACHED_PIC))
			return (int)i;
	}
	return -1;
}

/*
 * A cut upload of an indexed container (MP4/MOV with the moov first) opens
 * fine and its first frames decode; only the index betrays it, pointing at
 * samples past the end of the file. A sample that starts inside the file
 * but overruns its end is tolerated (some muxers write that for the last
 * one). Returns 1 and the byte count the index needs when truncated.
 */
static int
probe_truncated(const AVFormatContext *fmt, int64_t file_size,
    int64_t *ret_needed)
{
	int64_t needed = 0;
	int truncated = 0;
	unsigned i;

	for (i = 0; i < fmt->nb_streams; i++) {
		AVStream *st = fmt->streams[i];
		int n = avformat_index_get_entries_count(st);
		int k;

		for (k = 0; k < n; k++) {
			const AVIndexEntry *e = avformat_index_get_entry(st, k);

			if (e == NULL || e->pos < 0)
				continue;
			if (e->pos >= file_size)
				truncated = 1;
			if (e->pos + e->size > needed)
				needed = e->pos + e->size;
		}
	}
	*ret_needed = needed;
	return truncated;
}

/* The count idet keeps under `key` in a frame's metadata, or 0. */
static int
probe_idet_count(const AVFrame *f, const char *key)
{
	const AVDictionaryEntry *e = av_dict_get(f->metadata, key, NULL, 0);

	return e != NULL ? atoi(e->value) : 0;
}

/*
 * Run one decoded frame (NULL: the end) through idet, the graph made on
 * the first frame; the counts of the last frame out are the totals.
 * idet is a hint: when it cannot run, the stream is taken as it says
 * (a warning, no failure).
 */
static void
probe_idet_push(struct ladderd_call *call, struct ladderd_graph **g,
    const AVFrame *f, AVRational tb, struct probe_frame *ret)
{
	AVFrame *out = NULL;
	char msg[256];
	int err;

	if (*g == NULL && f == NULL)
		return;
	if (*g == NULL && (err = ladderd_graph_new(g, "idet", f, tb, msg,
			       sizeof(msg))) < 0) {
		call->log(call, LADDERD_LOG_WARN, "%s: %s, ignoring", msg,
		    av_err2str(err));
		ret->idet_frames = PROBE_IDET_FRAMES; /* stop trying */
		return;
	}
	if (f != NULL)
		ret->idet_frames++;
	if (ladderd_graph_push(*g, f) < 0 || (out = av_frame_alloc()) == NULL)
		goto out;
	while (ladderd_graph_pull(*g, out) >= 0) {
		ret->idet_tff = probe_idet_count(out, "lavfi.idet.multiple.tff");
		ret->idet_bff = probe_idet_count(out, "lavfi.idet.multiple.bff");
		ret->idet_progressive = probe_idet_count(out,
		    "lavfi.idet.multiple.progressive");
		av_frame_unref(out);
	}
out:
	av_frame_free(&out);
}

/*
 * Decode until the first video frame comes out (no frame above max_pixels), reading at most
 * PROBE_MAX_VIDEO_PACKETS packets of the stream (an open GOP or a cut in
 * the middle of one may need a few). Returns LADDERD_OK with *ret_frame
 * filled, or fails the call.
 */
static enum ladderd_rc
probe_decode_first(struct ladderd_call *call, AVFormatContext *fmt,
    int vidx, const AVCodec *dec, int64_t max_pixels,
    struct probe_frame *ret_frame)
{
	AVCodecContext *cc = NULL;
	AVPacket *pkt = NULL;
	AVFrame *frame = NULL;
	struct ladderd_graph *idet = NULL;
	AVRational tb = fmt->streams[vidx]->time_base;
	enum ladderd_rc rc = LADDERD_FAIL;
	int err, last_err = 0, npkt = 0, nvideo = 0, got = 0, eof = 0;
	int want_idet;

	if ((cc = avcodec_alloc_context3(dec)) == NULL ||
	    (pkt = av_packet_alloc()) == NULL ||
	    (frame = av_frame_alloc()) == NULL) {
		call->fail(call, "cannot decode video: %s",
		    av_err2str(AVERROR(ENOMEM)));
		goto out;
	}
	if ((err = avcodec_parameters_to_context(cc,
		 fmt->streams[vidx]->codecpar)) < 0) {
		call->fail(call, "cannot decode video: %s", av_err2str(err));
		goto out;
	}
	/* One frame is wanted: frame threads would only add latency. */
	cc->thread_count = 1;
	/* A stream may grow mid-way: never allocate past the limit. */
	cc->max_pixels = max_pixels;
	if ((err = avcodec_open2(cc, dec, NULL)) < 0) {
		call->fail(call, "cannot decode video: cannot open the %s "
		    "decoder: %s", dec->name, av_err2str(err));
		goto out;
	}
	want_idet = fmt->streams[vidx]->codecpar->field_order ==
	    AV_FIELD_UNKNOWN;
	while ((!got || (want_idet && ret_frame->idet_frames <
			 PROBE_IDET_FRAMES)) &&
	    nvideo < PROBE_MAX_VIDEO_PACKETS && npkt < PROBE_MAX_PACKETS) {
		if (call->cancelled(call)) {
			rc = LADDERD_RETRY;
			goto out;
		}
		if (!eof) {
			err = av_read_frame(fmt, pkt);
			npkt++;
			if (err == AVERROR_EOF) {
				eof = 1;
				/* Drain what the decoder holds back. */
				(void)avcodec_send_packet(cc, NULL);
			} else if (err < 0) {
				last_err = err;
				continue;
			} else if (pkt->stream_index != vidx) {
				av_packet_unref(pkt);
				continue;
			} else {
				nvideo++;
				err = avcodec_send_packet(cc, pkt);
				av_packet_unref(pkt);
				/* EAGAIN: frames are waiting; received below. */
				if (err < 0 && err != AVERROR(EAGAIN))
					last_err = err;
			}
		}
		for (;;) {
			err = avcodec_receive_frame(cc, frame);
			if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
				break;
			if (err < 0) {
				last_err = err;
				break;
			}
			if (frame->flags & AV_FRAME_FLAG_CORRUPT) {
				av_frame_unref(frame);
				continue;
			}
			if (!got) {
				got = 1;
				ret_frame->format = frame->format;
				ret_frame->width = frame->width;
				ret_frame->height = frame->height;
				ret_frame->interlaced = frame->interlaced_frame;
			}
			if (want_idet)
				probe_idet_push(call, &idet, frame, tb,
				    ret_frame);
			av_frame_unref(frame);
			if (!want_idet ||
			    ret_frame->idet_frames >= PROBE_IDET_FRAMES)
				break;
		}
		if (eof)
			break;
	}
	if (idet != NULL)
		probe_idet_push(call, &idet, NULL, tb, ret_frame);
	if (!got) {
		if (last_err < 0)
			call->fail(call, "cannot decode video: no %s frame "
			    "decodes in the first %d packets: %s", dec->name,
			    nvideo, av_err2str(last_err));
		else
			call->fail(call, "cannot decode video: no %s frame "
			    "decodes in the first %d packets", dec->name,
			    nvideo);
		goto out;
	}
	rc = LADDERD_OK;
out:
	ladderd_graph_free(&idet);
	av_frame_free(&frame);
	av_packet_free(&pkt);
	avcodec_free_context(&cc);
	return rc;
}

/* Seconds: the container's duration, else the video stream's. */
static double
probe_duration(const AVFormatContext *fmt, const AVStream *vst)
{
	unsigned i;
	double best = 0;
	int subs = 0;

	/*
	 * A subtitle event may last past the picture (credits), and Matroska
	 * writes the longest track as the file's duration: with subtitle
	 * streams, the video stream's own duration (or its DURATION tag)
	 * comes first, so the package is not held to a length no rung has.
	 */
	for (i = 0; i < fmt->nb_streams; i++)
		subs |= fmt->streams[i]->codecpar->codec_type ==
		    AVMEDIA_TYPE_SUBTITLE;
	if (subs) {
		const AVDictionaryEntry *tag =
		    av_dict_get(vst->metadata, "DURATION", NULL, 0);
		unsigned h, m;
		double sec;

		if (vst->duration != AV_NOPTS_VALUE && vst->duration > 0)
			return vst->duration * av_q2d(vst->time_base);
		if (tag != NULL &&
		    sscanf(tag->value, "%u:%u:%lf", &h, &m, &sec) == 3 &&
		    h < 100000 && m < 60 && sec >= 0 && sec < 60 &&
		    h * 3600.0 + m * 60.0 + sec > 0)
			return h * 3600.0 + m * 60.0 + sec;
	}
	if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0)
		return fmt->duration / (double)AV_TIME_BASE;
	if (vst->duration != AV_NOPTS_VALUE && vst->duration > 0)
		return vst->duration * av_q2d(vst->time_base);
	/* Last resort: the longest stream. */
	for (i = 0; i < fmt->nb_streams; i++) {
		const AVStream *st = fmt->streams[i];
		double d;

		if (st->duration == AV_NOPTS_VALUE || st->duration <= 0)
			continue;
		d = st->duration * av_q2d(st->time_base);
		if (d > best)
			best = d;
	}
	return best;
}

/* ctx.probe.video; NULL on allocation failure. */
static cJSON *
probe_video_json(AVFormatContext *fmt, int vidx,
    const struct probe_frame *first, double duration)
{
	AVStream *st = fmt->streams[vidx];
	const AVCodecParameters *par = st->codecpar;
	cJSON *v = cJSON_CreateObject();
	AVRational sar = av_guess_sample_aspect_ratio(fmt, st, NULL);
	AVRational fps = av_guess_frame_rate(fmt, st, NULL);
	int width = par->width > 0 ? par->width : first->width;
	int height = par->height > 0 ? par->height : first->height;
	int pix = par->format != AV_PIX_FMT_NONE ? par->format : first->format;
	const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(pix);
	int rotation = probe_rotation(st);
	long dw, dh;
	int64_t nb_frames;
	int interlaced;
	const char *trc, *hdr;

	if (v == NULL)
		return NULL;
	if (sar.num <= 0 || sar.den <= 0)
		sar = (AVRational){ 1, 1 };
	av_reduce(&sar.num, &sar.den, sar.num, sar.den, INT_MAX);
	/* SAR widens (or narrows) the coded picture; rotation turns it. */
	dw = lround((double)width * sar.num / sar.den);
	dh = height;
	if (rotation == 90 || rotation == 270) {
		long t = dw;

		dw = dh;
		dh = t;
	}
	if (fps.num <= 0 || fps.den <= 0)
		fps = st->r_frame_rate;
	nb_frames = st->nb_frames;
	if (nb_frames <= 0 && fps.num > 0 && fps.den > 0)
		nb_frames = llround(duration * av_q2d(fps));
	interlaced = par->field_order == AV_FIELD_TT ||
	    par->field_order == AV_FIELD_BB ||
	    par->field_order == AV_FIELD_TB ||
	    par->field_order == AV_FIELD_BT || first->interlaced;
	/* No field order in the stream: idet's majority decides (a few
	 * misjudged frames of a progressive source do not). */
	if (par->field_order == AV_FIELD_UNKNOWN && first->idet_frames > 0)
		interlaced = first->idet_tff + first->idet_bff >
		    first->idet_progressive;
	trc = av_color_transfer_name(par->color_trc);
	hdr = par->color_trc == AVCOL_TRC_SMPTE2084 ? "pq"
	    : par->color_trc == AVCOL_TRC_ARIB_STD_B67 ? "hlg"
	    : "none";

	if (!cJSON_AddNumberToObject(v, "index", vidx) ||
	    !cJSON_AddStringToObject(v, "codec",
		avcodec_get_name(par->codec_id)) ||
	    !cJSON_AddNumberToObject(v, "width", width) ||
	    !cJSON_AddNumberToObject(v, "height", height) ||
	    !cJSON_AddNumberToObject(v, "sar_num", sar.num) ||
	    !cJSON_AddNumberToObject(v, "sar_den", sar.den) ||
	    !cJSON_AddNumberToObject(v, "rotation", rotation) ||
	    !cJSON_AddNumberToObject(v, "display_width", (double)dw) ||
	    !cJSON_AddNumberToObject(v, "display_height", (double)dh) ||
	    !cJSON_AddNumberToObject(v, "fps_num", fps.num) ||
	    !cJSON_AddNumberToObject(v, "fps_den", fps.den) ||
	    !cJSON_AddNumberToObject(v, "avg_fps",
		st->avg_frame_rate.den > 0 ? av_q2d(st->avg_frame_rate) : 0) ||
	    !cJSON_AddNumberToObject(v, "r_fps",
		st->r_frame_rate.den > 0 ? av_q2d(st->r_frame_rate) : 0) ||
	    !cJSON_AddStringToObject(v, "pix_fmt",
		desc != NULL ? desc->name : "unknown") ||
	    !cJSON_AddNumberToObject(v, "bit_depth",
		desc != NULL ? desc->comp[0].depth : 0) ||
	    !cJSON_AddBoolToObject(v, "interlaced", interlaced) ||
	    !cJSON_AddStringToObject(v, "field_order",
		probe_field_order_name(par->field_order)) ||
	    !cJSON_AddStringToObject(v, "interlace_source",
		par->field_order != AV_FIELD_UNKNOWN ? "stream"
		: first->idet_frames > 0 ? "idet" : "frame") ||
	    (first->idet_frames > 0 &&
		(!cJSON_AddStringToObject(v, "idet",
		     !interlaced ? "progressive"
		     : first->idet_bff > first->idet_tff ? "bff" : "tff") ||
		    !cJSON_AddNumberToObject(v, "idet_frames",
			first->idet_frames) ||
		    !cJSON_AddNumberToObject(v, "idet_interlaced",
			first->idet_tff + first->idet_bff))) ||
	    !cJSON_AddStringToObject(v, "color_transfer",
		trc != NULL ? trc : "unknown") ||
	    !cJSON_AddStringToObject(v, "color_primaries",
		av_color_primaries_name(par->color_primaries) ?
		    av_color_primaries_name(par->color_primaries) : "unknown") ||
	    !cJSON_AddStringToObject(v, "color_space",
		av_color_space_name(par->color_space) ?
		    av_color_space_name(par->color_space) : "unknown") ||
	    !cJSON_AddStringToObject(v, "hdr", hdr) ||
	    !cJSON_AddNumberToObject(v, "nb_frames", (double)nb_frames) ||
	    !cJSON_AddNumberToObject(v, "bit_rate", (double)par->bit_rate)) {
		cJSON_Delete(v);
		return NULL;
	}
	return v;
}

/*
 * A stream's name: its "title" tag (Matroska), else an MP4 handler name
 * that is not the muxers' stock one. NULL when it has none.
 */
static const AVDictionaryEntry *
probe_title(const AVStream *st)
{
	const AVDictionaryEntry *t = av_dict_get(st->metadata, "title", NULL, 0);
	size_t n;

	if (t != NULL && t->value[0] != '\0')
		return t;
	t = av_dict_get(st->metadata, "handler_name", NULL, 0);
	if (t == NULL || (n = strlen(t->value)) == 0 ||
	    (n >= 7 && strcmp(t->value + n - 7, "Handler") == 0) ||
	    strstr(t->value, "ISO Media") != NULL)
		return NULL;
	return t;
}

/*
 * ctx.probe.audio (every audio stream) into `probe`, with audio_index and
 * has_audio: the default-disposition stream, else the first, among those
 * a decoder exists for. Returns 0 or -ENOMEM.
 */
static int
probe_audio_json(const AVFormatContext *fmt, cJSON *probe)
{
	cJSON *list = cJSON_AddArrayToObject(probe, "audio");
	int first = -1, dflt = -1, chosen;
	unsigned i;

	if (list == NULL)
		return -ENOMEM;
	for (i = 0; i < fmt->nb_streams; i++) {
		const AVStream *st = fmt->streams[i];
		const AVCodecParameters *par = st->codecpar;
		const AVDictionaryEntry *lang, *title;
		int decodable, is_default;
		cJSON *a;

		if (par->codec_type != AVMEDIA_TYPE_AUDIO)
			continue;
		lang = av_dict_get(st->metadata, "language", NULL, 0);
		title = probe_title(st);
		decodable = avcodec_find_decoder(par->codec_id) != NULL;
		is_default = (st->disposition & AV_DISPOSITION_DEFAULT) != 0;
		if ((a = cJSON_CreateObject()) == NULL)
			return -ENOMEM;
		if (!cJSON_AddItemToArray(list, a)) {
			cJSON_Delete(a);
			return -ENOMEM;
		}
		if (!cJSON_AddNumberToObject(a, "index", i) ||
		    !cJSON_AddStringToObject(a, "codec",
			avcodec_get_name(par->codec_id)) ||
		    !cJSON_AddNumberToObject(a, "channels",
			par->ch_layout.nb_channels) ||
		    !cJSON_AddNumberToObject(a, "sample_rate",
			par->sample_rate) ||
		    !(lang != NULL ?
			cJSON_AddStringToObject(a, "language", lang->value) :
			cJSON_AddNullToObject(a, "language")) ||
		    !cJSON_AddBoolToObject(a, "default", is_default) ||
		    !cJSON_AddBoolToObject(a, "decodable", decodable) ||
		    (title != NULL &&
			!cJSON_AddStringToObject(a, "title", title->value)))
			return -ENOMEM;
		/* A track nothing can decode is listed, never chosen. */
		if (!decodable || par->ch_layout.nb_channels <= 0)
			continue;
		if (first < 0)
			first = (int)i;
		if (is_default && dflt < 0)
			dflt = (int)i;
	}
	chosen = dflt >= 0 ? dflt : first;
	if (!cJSON_AddNumberToObject(probe, "audio_index", chosen) ||
	    !cJSON_AddBoolToObject(probe, "has_audio", chosen >= 0))
		return -ENOMEM;
	return 0;
}

/*
 * ctx.probe.subtitles: every subtitle stream, { index, codec, language,
 * title, default, forced, text } (text: a codec the subtitles stage can turn
 * into WebVTT; bitmap ones, PGS and DVB, are listed and skipped there).
 * Returns 0 or -ENOMEM.
 */
static int
probe_subtitles_json(const AVFormatContext *fmt, cJSON *probe)
{
	cJSON *list = cJSON_AddArrayToObject(probe, "subtitles");

	if (list == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < fmt->nb_streams; i++) {
		const AVStream *st = fmt->streams[i];
		const AVCodecDescriptor *d =
		    avcodec_descriptor_get(st->codecpar->codec_id);
		const AVDictionaryEntry *lang, *title;
		cJSON *a;

		if (st->codecpar->codec_type != AVMEDIA_TYPE_SUBTITLE)
			continue;
		lang = av_dict_get(st->metadata, "language", NULL, 0);
		title = probe_title(st);
		if ((a = cJSON_CreateObject()) == NULL)
			return -ENOMEM;
		if (!cJSON_AddItemToArray(list, a)) {
			cJSON_Delete(a);
			return -ENOMEM;
		}
		if (!cJSON_AddNumberToObject(a, "index", i) ||
		    !cJSON_AddStringToObject(a, "codec",
			avcodec_get_name(st->codecpar->codec_id)) ||
		    (lang != NULL &&
			!cJSON_AddStringToObject(a, "language", lang->value)) ||
		    (title != NULL &&
			!cJSON_AddStringToObject(a, "title", title->value)) ||
		    !cJSON_AddBoolToObject(a, "default",
			(st->disposition & AV_DISPOSITION_DEFAULT) != 0) ||
		    !cJSON_AddBoolToObject(a, "forced",
			(st->disposition & AV_DISPOSITION_FORCED) != 0) ||
		    !cJSON_AddBoolToObject(a, "text", d != NULL &&
			(d->props & AV_CODEC_PROP_TEXT_SUB) != 0))
			return -ENOMEM;
	}
	return 0;
}

/* The whole ctx.probe object; NULL on allocation failure. */
static cJSON *
probe_json(AVFormatContext *fmt, int vidx, const struct probe_frame *first,
    int64_t file_size)
{
	double duration = probe_duration(fmt, fmt->streams[vidx]);
	cJSON *out = cJSON_CreateObject();
	cJSON *video = NULL, *ret = NULL;

	if (out == NULL ||
	    !cJSON_AddStringToObject(out, "format", fmt->iformat->name) ||
	    !cJSON_AddNumberToObject(out, "duration", duration) ||
	    !cJSON_AddNumberToObject(out, "bit_rate", (double)fmt->bit_rate) ||
	    !cJSON_AddNumberToObject(out, "size", (double)file_size) ||
	    (video = probe_video_json(fmt, vidx, first, duration)) == NULL)
		goto out;
	if (!cJSON_AddItemToObject(out, "video", video)) {
		cJSON_Delete(video);
		goto out;
	}
	if (probe_audio_json(fmt, out) < 0 ||
	    probe_subtitles_json(fmt, out) < 0)
		goto out;
	ret = out;
	out = NULL; /* the caller owns it now */
out:
	cJSON_Delete(out);
	return ret;
}

/*
 * ctx.probe of a source without video: format, duration (the container's,
 * else the chosen audio stream's), bit_rate, size, audio [...], audio_index,
 * has_audio, audio_only: true, cover_art (an attached picture: listed, not
 * used). NULL on allocation failure.
 */
static cJSON *
probe_audio_only_json(AVFormatContext *fmt, int64_t file_size)
{
	cJSON *out = cJSON_CreateObject();
	int aidx, cover = 0;
	unsigned i;

	for (i = 0; i < fmt->nb_streams; i++)
		if (fmt->streams[i]->disposition & AV_DISPOSITION_ATTACHED_PIC)
			cover = 1;
	if (out == NULL ||
	    !cJSON_AddStringToObject(out, "format", fmt->iformat->name) ||
	    !cJSON_AddNumberToObject(out, "bit_rate", (double)fmt->bit_rate) ||
	    !cJSON_AddNumberToObject(out, "size", (double)file_size) ||
	    !cJSON_AddBoolToObject(out, "audio_only", 1) ||
	    !cJSON_AddBoolToObject(out, "cover_art", cover) ||
	    probe_audio_json(fmt, out) < 0)
		goto fail;
	aidx = (int)ladderd_ctx_num(out, "audio_index", -1);
	if (!cJSON_AddNumberToObject(out, "duration", aidx < 0 ? 0 :
		probe_duration(fmt, fmt->streams[aidx])))
		goto fail;
	return out;
fail:
	cJSON_Delete(out);
	return NULL;
}

/*
 * The profile's picture limits (profile.max_width, max_height, max_pixels,
 * max_sar). The fallbacks are ladderd.conf's defaults, for a context
 * built by hand: 8192 x 8192, 8192 x 4320 pixels (8K DCI), 1:4..4:1.
 */
struct probe_limits {
	int width, height;
	int64_t pixels;
	double sar;
};

static void
probe_limits_get(const cJSON *ctx, struct probe_limits *l)
{
	l->width = (int)ladderd_ctx_num(ctx, "profile.max_width", 8192);
	l->height = (int)ladderd_ctx_num(ctx, "profile.max_height", 8192);
	l->pixels = (int64_t)ladderd_ctx_num(ctx, "profile.max_pixels",
	    LADDERD_SOURCE_MAX_PIXELS);
	l->sar = ladderd_ctx_num(ctx, "profile.max_sar", 4);
}

/* 0 when a w x h picture is within the limits, else fails the call. */
static int
probe_check_picture(struct ladderd_call *call, const struct probe_limits *l,
    int w, int h)
{
	if (w <= l->width && h <= l->height && (int64_t)w * h <= l->pixels)
		return 0;
	call->fail(call, "picture %dx%d is larger than allowed (max_width %d, "
	    "max_height %d, max_pixels %" PRId64 ")", w, h, l->width,
	    l->height, l->pixels);
	return -1;
}

/*
 * Before any frame is decoded: every video stream whose size the headers
 * tell (cover art aside: it is never decoded past the limit, see
 * probe_stream_opts).
 */
static int
probe_check_headers(struct ladderd_call *call, const AVFormatContext *fmt,
    const struct probe_limits *l)
{
	for (unsigned i = 0; i < fmt->nb_streams; i++) {
		const AVStream *st = fmt->streams[i];
		const AVCodecParameters *par = st->codecpar;

		if (par->codec_type != AVMEDIA_TYPE_VIDEO ||
		    (st->disposition & AV_DISPOSITION_ATTACHED_PIC) ||
		    par->width <= 0 || par->height <= 0)
			continue;
		if (probe_check_picture(call, l, par->width, par->height) < 0)
			return -1;
	}
	return 0;
}

/*
 * Decoder options for avformat_find_stream_info: no decoder allocates a
 * frame above max_pixels. Returns an array of nb_streams dictionaries
 * (free with probe_stream_opts_free), or NULL.
 */
static AVDictionary **
probe_stream_opts(const AVFormatContext *fmt, const struct probe_limits *l)
{
	AVDictionary **opts = av_calloc(fmt->nb_streams ? fmt->nb_streams : 1,
	    sizeof(*opts));

	for (unsigned i = 0; opts && i < fmt->nb_streams; i++)
		(void)av_dict_set_int(&opts[i], "max_pixels", l->pixels, 0);
	return opts;
}

static void
probe_stream_opts_free(AVDictionary **opts, unsigned n)
{
	for (unsigned i = 0; opts && i < n; i++)
		av_dict_free(&opts[i]);
	av_free(opts);
}

/*
 * The chosen stream as decoded: its size, its sample aspect ratio and the
 * size it is displayed at (rungs are sized from that).
 */
static int
probe_check_display(struct ladderd_call *call, AVFormatContext *fmt,
    int vidx, const struct probe_frame *first, const struct probe_limits *l)
{
	AVStream *st = fmt->streams[vidx];
	AVRational sar = av_guess_sample_aspect_ratio(fmt, st, NULL);
	int w = st->codecpar->width > 0 ? st->codecpar->width : first->width;
	int h = st->codecpar->height > 0 ? st->codecpar->height :
					   first->height;
	double r;
	long dw;

	if (probe_check_picture(call, l, w, h) < 0 ||
	    probe_check_picture(call, l, first->width, first->height) < 0)
		return -1;
	if (sar.num <= 0 || sar.den <= 0)
		return 0;
	av_reduce(&sar.num, &sar.den, sar.num, sar.den, INT_MAX);
	r = (double)sar.num / sar.den;
	if (r > l->sar || r < 1.0 / l->sar) {
		call->fail(call, "sample aspect ratio %d:%d is outside "
		    "1:%g..%g:1 (max_sar %g)", sar.num, sar.den, l->sar, l->sar,
		    l->sar);
		return -1;
	}
	dw = lround(w * r);
	if (dw > l->width) {
		call->fail(call, "displayed picture %ldx%d is larger than "
		    "allowed (max_width %d, max_height %d)", dw, h, l->width,
		    l->height);
		return -1;
	}
	return 0;
}

/* ebur128's value under `key` in a frame's metadata, or NAN. */
static double
probe_r128(const AVFrame *f, const char *key)
{
	const AVDictionaryEntry *e = av_dict_get(f->metadata, key, NULL, 0);

	return e != NULL ? strtod(e->value, NULL) : NAN;
}

/* Keep the latest measurement of a frame that carries one (the frames
 * flushed at the end carry none). */
static void
probe_r128_take(AVFrame *f, double *i, double *tp, double *lra)
{
	double v[3] = { probe_r128(f, "lavfi.r128.I"),
		probe_r128(f, "lavfi.r128.true_peak"),
		probe_r128(f, "lavfi.r128.LRA") };

	if (isfinite(v[0]) && isfinite(v[1]) && isfinite(v[2])) {
		*i = v[0];
		*tp = v[1];
		*lra = v[2];
	}
	av_frame_unref(f);
}

/*
 * The first pass of loudness normalisation (profile.audio.loudness != 0):
 * decode all of audio stream `aidx` through ebur128 and add
 * probe.loudness = { integrated [LUFS], true_peak [dBTP], lra [LU] }
 * (the values of the last frame out, which cover the whole stream). The
 * source is opened afresh through source.c. LADDERD_OK, RETRY when
 * cancelled; an undecodable stretch only shortens the measurement, and
 * no measurement at all leaves probe.loudness out (no normalisation).
 */
static enum ladderd_rc
probe_loudness(struct ladderd_call *call, const char *path,
    const char *format, int aidx, cJSON *probe)
{
	struct ladderd_source src = LADDERD_SOURCE_INIT;
	AVIOInterruptCB cb = { .callback = probe_interrupt, .opaque = call };
	struct ladderd_graph *g = NULL;
	AVCodecContext *cc = NULL;
	AVPacket *pkt = av_packet_alloc();
	AVFrame *frame = av_frame_alloc(), *out = av_frame_alloc();
	double i = NAN, tp = NAN, lra = NAN;
	enum ladderd_rc rc = LADDERD_OK;
	const AVCodec *dec;
	AVStream *st;
	char msg[1024];
	int err, eof = 0;

	msg[0] = '\0';
	if (pkt == NULL || frame == NULL || out == NULL ||
	    ladderd_source_open(&src, path, format, &cb, msg, sizeof(msg)) <
		0 ||
	    avformat_find_stream_info(src.fmt, NULL) < 0 || aidx < 0 ||
	    (unsigned)aidx >= src.fmt->nb_streams)
		goto unmeasured;
	st = src.fmt->streams[aidx];
	for (unsigned k = 0; k < src.fmt->nb_streams; k++)
		if ((int)k != aidx)
			src.fmt->streams[k]->discard = AVDISCARD_ALL;
	if ((dec = avcodec_find_decoder(st->codecpar->codec_id)) == NULL ||
	    (cc = avcodec_alloc_context3(dec)) == NULL ||
	    avcodec_parameters_to_context(cc, st->codecpar) < 0)
		goto unmeasured;
	cc->pkt_timebase = st->time_base;
	if (avcodec_open2(cc, dec, NULL) < 0)
		goto unmeasured;
	while (!eof) {
		if (call->cancelled(call)) {
			rc = LADDERD_RETRY;
			goto out;
		}
		err = av_read_frame(src.fmt, pkt);
		if (err == AVERROR_EOF || err == AVERROR(EIO)) {
			eof = 1;
			(void)avcodec_send_packet(cc, NULL);
		} else if (err < 0) {
			continue;
		} else {
			if (pkt->stream_index == aidx)
				(void)avcodec_send_packet(cc, pkt);
			av_packet_unref(pkt);
		}
		while (avcodec_receive_frame(cc, frame) >= 0) {
			if (g == NULL && frame->nb_samples > 0 &&
			    ladderd_graph_new(&g, "ebur128=peak=true:metadata=1",
				frame, (AVRational){ 1, frame->sample_rate },
				msg, sizeof(msg)) < 0) {
				call->log(call, LADDERD_LOG_WARN,
				    "%s, not measuring the loudness", msg);
				goto out;
			}
			frame->pts = frame->best_effort_timestamp ==
				AV_NOPTS_VALUE
			    ? AV_NOPTS_VALUE
			    : av_rescale_q(frame->best_effort_timestamp,
				  st->time_base,
				  (AVRational){ 1, frame->sample_rate });
			/* A format change mid-stream ends the measurement
			 * there: the part measured stands for the whole. */
			if (g != NULL && ladderd_graph_push(g, frame) < 0)
				eof = 1;
			av_frame_unref(frame);
		}
		while (g != NULL && ladderd_graph_pull(g, out) >= 0)
			probe_r128_take(out, &i, &tp, &lra);
	}
	if (g != NULL && ladderd_graph_push(g, NULL) >= 0)
		while (ladderd_graph_pull(g, out) >= 0)
			probe_r128_take(out, &i, &tp, &lra);
	if (isfinite(i) && isfinite(tp) && isfinite(lra)) {
		cJSON *m = cJSON_AddObjectToObject(probe, "loudness");

		/* true_peak comes as a linear amplitude; 0 is -inf dBTP. */
		if (m == NULL ||
		    !cJSON_AddNumberToObject(m, "integrated",
			round(i * 100) / 100) ||
		    !cJSON_AddNumberToObject(m, "true_peak",
			tp > 0 ? round(2000 * log10(tp)) / 100 : -120) ||
		    !cJSON_AddNumberToObject(m, "lra", round(lra * 100) / 100))
			rc = LADDERD_FAIL;
	} else {
		(void)snprintf(msg, sizeof(msg), "no audio frame measured");
unmeasured:
		call->log(call, LADDERD_LOG_WARN, "cannot measure the "
		    "loudness of '%s': %s, not normalising", path,
		    msg[0] ? msg : "cannot decode the audio");
	}
out:
	ladderd_graph_free(&g);
	avcodec_free_context(&cc);
	av_frame_free(&out);
	av_frame_free(&frame);
	av_packet_free(&pkt);
	ladderd_source_close(&src);
	if (rc == LADDERD_FAIL)
		call->fail(call, "cannot store probe results: %s",
		    strerror(ENOMEM));
	return rc;
}

/*
 * Whether `fmt` (from `path`, `size` bytes) is cut short of what its index
 * needs; records the message when it is.
 */
static bool
probe_check_truncated(struct ladderd_call *call, AVFormatContext *fmt,
    const char *path, off_t size)
{
	int64_t needed;

	if (!probe_truncated(fmt, size, &needed))
		return false;
	call->fail(call, "source file is truncated: its index needs %" PRId64
	    " bytes, '%s' has %jd", needed, path, (intmax_t)size);
	return true;
}

/*
 * A source without video (a cover picture is no video): music, a
 * podcast. With audio, *ret_out describes an audio-only package
 * (hls_header plans no video rung). LADDERD_OK, else LADDERD_FAIL with
 * the message recorded.
 */
static enum ladderd_rc
probe_audio_source(struct ladderd_call *call, AVFormatContext *fmt,
    const char *path, off_t size, cJSON **ret_out)
{
	if ((*ret_out = probe_audio_only_json(fmt, size)) == NULL) {
		call->fail(call, "cannot store probe results: %s",
		    strerror(ENOMEM));
		return LADDERD_FAIL;
	}
	if (!ladderd_ctx_bool(*ret_out, "has_audio", 0)) {
		call->fail(call, "no video or audio stream in '%s' (%s, %u "
		    "streams)", path, fmt->iformat->name, fmt->nb_streams);
		return LADDERD_FAIL;
	}
	if (probe_check_truncated(call, fmt, path, size))
		return LADDERD_FAIL;
	return LADDERD_OK;
}

/*
 * A source with video stream `vidx`: check there is a decoder, the file
 * is whole, and the picture is within `limits`, decode its first frame,
 * and describe it in *ret_out. LADDERD_OK, else the rc with the message
 * recorded.
 */
static enum ladderd_rc
probe_video_source(struct ladderd_call *call, AVFormatContext *fmt,
    int vidx, const char *path, off_t size,
    const struct probe_limits *limits, cJSON **ret_out)
{
	const AVCodecParameters *par = fmt->streams[vidx]->codecpar;
	struct probe_frame first = { .format = AV_PIX_FMT_NONE };
	const AVCodec *dec;
	enum ladderd_rc rc;

	if ((dec = avcodec_find_decoder(par->codec_id)) == NULL) {
		/* An unknown codec has no name, only its tag. */
		if (par->codec_id == AV_CODEC_ID_NONE)
			call->fail(call, "no decoder for the video codec of "
			    "'%s' (stream %d, unknown tag '%s')", path, vidx,
			    av_fourcc2str(par->codec_tag));
		else
			call->fail(call, "no decoder for video codec '%s' in "
			    "'%s' (stream %d)", avcodec_get_name(par->codec_id),
			    path, vidx);
		return LADDERD_FAIL;
	}
	if (probe_check_truncated(call, fmt, path, size))
		return LADDERD_FAIL;
	if (probe_check_picture(call, limits, par->width, par->height) < 0)
		return LADDERD_FAIL;
	if ((rc = probe_decode_first(call, fmt, vidx, dec, limits->pixels,
		 &first)) != LADDERD_OK)
		return rc;
	if (probe_check_display(call, fmt, vidx, &first, limits) < 0)
		return LADDERD_FAIL;
	call->progress(call, 0.9);
	if ((*ret_out = probe_json(fmt, vidx, &first, size)) == NULL) {
		call->fail(call, "cannot store probe results: %s",
		    strerror(ENOMEM));
		return LADDERD_FAIL;
	}
	return LADDERD_OK;
}

static enum ladderd_rc
probe_run(void *state, struct ladderd_call *call)
{
	struct ladderd_source src = LADDERD_SOURCE_INIT;
	AVIOInterruptCB cb = { .callback = probe_interrupt, .opaque = call };
	AVFormatContext *fmt = NULL; /* src.fmt, borrowed */
	cJSON *out = NULL;
	enum ladderd_rc rc = LADDERD_FAIL;
	const char *path = ladderd_ctx_str(call->ctx, "input.path", NULL);
	char msg[1024];
	struct probe_limits limits;
	AVDictionary **opts = NULL;
	unsigned nopts = 0;
	struct stat sb;
	int err = 0, vidx;

	(void)state;
	if (path == NULL || *path == '\0') {
		call->fail(call, "context has no input.path");
		goto out;
	}
	probe_limits_get(call->ctx, &limits);
	/* A checked descriptor, a container whitelist, no further opens. */
	if (ladderd_source_open(&src, path, NULL, &cb, msg, sizeof(msg)) < 0) {
		call->fail(call, "%s", msg);
		goto out;
	}
	/* Too large a picture is refused before anything decodes it. */
	if (probe_check_headers(call, src.fmt, &limits) < 0)
		goto out;
	nopts = src.fmt->nb_streams;
	if ((opts = probe_stream_opts(src.fmt, &limits)) == NULL)
		err = AVERROR(ENOMEM);
	else
		err = avformat_find_stream_info(src.fmt, opts);
	if (err < 0) {
		if (call->cancelled(call)) {
			rc = LADDERD_RETRY;
			goto out;
		}
		call->fail(call, "'%s' is not a media file libavformat "
		    "can read: %s", path, av_err2str(err));
		goto out;
	}
	fmt = src.fmt;
	if (fstat(src.fd, &sb) < 0) {
		call->fail(call, "cannot stat '%s': %s", path, strerror(errno));
		goto out;
	}
	LADDERD_CRASH_POINT("probe.opened", NULL);
	call->progress(call, 0.3);
	/*
	 * No video (a cover picture is no video): music, a podcast. With
	 * audio, an audio-only package (hls_header plans no video rung).
	 */
	vidx = probe_pick_video(fmt);
	rc = vidx < 0 ?
	    probe_audio_source(call, fmt, path, sb.st_size, &out) :
	    probe_video_source(call, fmt, vidx, path, sb.st_size, &limits,
		&out);
	if (rc != LADDERD_OK)
		goto out;
	rc = LADDERD_FAIL; /* what is left can only fail */
	if (ladderd_setting_num(call->ctx,
		encode_setting(ENC_AUDIO_LOUDNESS)) != 0 &&
	    ladderd_ctx_bool(out, "has_audio", 0) &&
	    (rc = probe_loudness(call, path, fmt->iformat->name,
		 (int)ladderd_ctx_num(out, "audio_index", -1), out)) !=
		LADDERD_OK)
		goto out;
	rc = LADDERD_FAIL;
	if (ladderd_ctx_set(call->ctx, "probe", out) < 0) {
		call->fail(call, "cannot store probe results in the context");
		goto out;
	}
	out = NULL; /* the context owns it now */
	call->progress(call, 1.0);
	rc = LADDERD_OK;
out:
	probe_stream_opts_free(opts, nopts);
	cJSON_Delete(out);
	ladderd_source_close(&src);
	return rc;
}

LADDERD_STAGE_DEFINE("probe", "1.0", "probing", NULL, probe_run, NULL);

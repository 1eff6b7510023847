/*
 * stages/decode.c - the shared decoder: the producer of the frame ring
 * (framering.h, where the protocol is).
 *
 * Run by the chord as its own process when several video rungs read one
 * source: decodes ctx.input.path's video stream (ctx.probe.video.index)
 * once and writes every frame into the ring named ctx.shared_decode.ring,
 * in the pixel format and size the task's filters leave (graph.c:
 * deinterlaced, tone mapped, turned upright, once for all rungs; each
 * rung scales for itself, in parallel). Adds ctx.decode =
 * { frames, width, height, pix_fmt }.
 *
 * Fails when the source cannot be decoded or its frame size changes
 * mid-stream (the rungs then fail too and are retried with their own
 * decoder); on any failure the ring is marked failed first so no reader
 * waits for frames that will not come.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>

#include "avcall.h"
#include "avlog.h"
#include "framering.h"
#include "graph.h"
#include "crashpoint.h"
#include "source.h"
#include "stage.h"

#define DECODE_ATTACH_WAIT_MS 60000 /* readers must attach within this */


struct decode {
	struct ladderd_call *call;
	enum ladderd_rc rc;
	struct framering *ring;
	int width, height, format; /* of every frame */
	/* Decoding straight into the ring's slots (no filters): the ring is
	 * sized on the decoder's first get_buffer2, under cfg_mu (the
	 * decoder's threads call it). */
	int direct, configured, cfg_err;
	pthread_mutex_t cfg_mu;
	struct ladderd_source source; /* owns ifmt */
	AVFormatContext *ifmt;	      /* source.fmt */
	AVCodecContext *dec;
	AVPacket *pkt;
	AVFrame *frame;
	/* The task's picture filters (graph.c): applied once here, for
	 * every rung; made on the first frame when the plan is not empty. */
	char plan[1024];
	struct ladderd_graph *graph;
	AVFrame *filtered;
	int vin;
	int64_t frames, bad;
	int stopped; /* every reader is gone: nothing more to do */
};

__attribute__((format(printf, 3, 4))) static int
decode_error(struct decode *d, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = ladderd_av_vfail(d->call, err, fmt, ap);
	va_end(ap);
	return err;
}

/* A ring call failed: cancelled (retry later) or an error. */
static int
decode_ring_error(struct decode *d, int err)
{
	if (err == AVERROR(ECANCELED)) {
		d->call->fail(d->call, "shared decode cancelled");
		d->rc = LADDERD_RETRY;
		return AVERROR_EXIT;
	}
	return decode_error(d, err, "the frame ring failed");
}

/* Size the ring for frames like f (once; any thread). */
static int
decode_configure(struct decode *d, const AVFrame *f)
{
	int err;

	pthread_mutex_lock(&d->cfg_mu);
	if (!d->configured) {
		d->cfg_err = framering_configure(d->ring, f,
		    d->ifmt->streams[d->vin]->time_base);
		d->configured = 1;
	}
	err = d->cfg_err;
	pthread_mutex_unlock(&d->cfg_mu);
	return err;
}

/*
 * The decoder's get_buffer2: a ring slot sized for the decoder's aligned
 * picture, so frames are decoded where the rungs read them; the decoder's
 * own memory when no slot can be spared.
 */
static int
decode_get_buffer(AVCodecContext *c, AVFrame *f, int flags)
{
	struct decode *d = c->opaque;
	int linesize_align[AV_NUM_DATA_POINTERS];
	int w = f->width, h = f->height;
	AVFrame geo = { .format = f->format };

	avcodec_align_dimensions2(c, &w, &h, linesize_align);
	geo.width = w;
	geo.height = h;
	if (decode_configure(d, &geo) == 0 &&
	    framering_get_buffer(d->ring, f) > 0)
		return 0;
	return avcodec_default_get_buffer2(c, f, flags);
}

/* Publish one decoded frame, waiting for room (copied unless in a slot). */
static int
decode_put(struct decode *d, const AVFrame *f)
{
	int err;

	if (d->frames == 0) {
		d->width = f->width;
		d->height = f->height;
		d->format = f->format;
	} else if (f->width != d->width || f->height != d->height ||
	    f->format != d->format) {
		return decode_error(d, 0, "the frame size changes mid-stream "
		    "(%dx%d to %dx%d): not shareable", d->width, d->height,
		    f->width, f->height);
	}
	if ((err = decode_configure(d, f)) < 0)
		return decode_ring_error(d, err);
	if ((err = framering_publish(d->ring, f)) <= 0) {
		if (err == 0)
			d->stopped = 1;
		return err == 0 ? 0 : decode_ring_error(d, err);
	}
	d->frames++;
	return 0;
}

/*
 * A decoded frame (NULL: the end) through the filters, if any, into the
 * ring; filtered frames are stamped back in the stream's time base.
 */
static int
decode_filter(struct decode *d, AVFrame *f)
{
	AVRational tb = d->ifmt->streams[d->vin]->time_base;
	char msg[1200];
	int err;

	if (d->plan[0] == '\0')
		return f != NULL ? decode_put(d, f) : 0;
	if (d->graph == NULL) {
		if (f == NULL)
			return 0;
		if ((err = ladderd_graph_new(&d->graph, d->plan, f, tb, msg,
			 sizeof(msg))) < 0)
			return decode_error(d, err, "%s", msg);
		/* Once for every rung (t0355 counts these lines). */
		d->call->log(d->call, LADDERD_LOG_DEBUG, "filters: %s",
		    d->plan);
	}
	if (f != NULL)
		f->pts = f->best_effort_timestamp;
	if ((err = ladderd_graph_push(d->graph, f)) < 0)
		return decode_error(d, err, "cannot filter a frame (%s)",
		    d->plan);
	for (;;) {
		err = ladderd_graph_pull(d->graph, d->filtered);
		if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
			return 0;
		if (err < 0)
			return decode_error(d, err, "cannot filter (%s)",
			    d->plan);
		d->filtered->best_effort_timestamp =
		    d->filtered->pts == AV_NOPTS_VALUE ? AV_NOPTS_VALUE
		    : av_rescale_q(d->filtered->pts,
			  ladderd_graph_time_base(d->graph), tb);
		LADDERD_FRAME_DURATION(d->filtered) = 0;
		err = decode_put(d, d->filtered);
		av_frame_unref(d->filtered);
		if (err < 0 || d->stopped)
			return err;
	}
}

static int
decode_packet(struct decode *d, const AVPacket *pkt)
{
	int err = avcodec_send_packet(d->dec, pkt);

	if (err < 0 && err != AVERROR_EOF) {
		d->bad++;
		if (pkt != NULL)
			return 0;
	}
	for (;;) {
		err = avcodec_receive_frame(d->dec, d->frame);
		if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
			return 0;
		if (err < 0) {
			d->bad++;
			return 0;
		}
		err = decode_filter(d, d->frame);
		av_frame_unref(d->frame);
		if (err < 0 || d->stopped)
			return err;
	}
}

static int
decode_open(struct decode *d, const char *src)
{
	const AVCodec *codec;
	AVStream *vs;
	int err;

	char msg[1024];

	/* As probe found it: a whitelisted container, no further opens. */
	if ((err = ladderd_source_open(&d->source, src,
		 ladderd_ctx_str(d->call->ctx, "probe.format", NULL), NULL,
		 msg, sizeof(msg))) < 0)
		return decode_error(d, 0, "%s", msg);
	d->ifmt = d->source.fmt;
	if ((err = avformat_find_stream_info(d->ifmt, NULL)) < 0)
		return decode_error(d, err, "cannot read the streams of '%s'",
		    src);
	d->vin = (int)ladderd_ctx_num(d->call->ctx, "probe.video.index", -1);
	if (d->vin < 0 || d->vin >= (int)d->ifmt->nb_streams ||
	    d->ifmt->streams[d->vin]->codecpar->codec_type !=
		AVMEDIA_TYPE_VIDEO)
		d->vin = av_find_best_stream(d->ifmt, AVMEDIA_TYPE_VIDEO, -1,
		    -1, NULL, 0);
	if (d->vin < 0)
		return decode_error(d, 0, "'%s' has no video stream", src);
	for (unsigned i = 0; i < d->ifmt->nb_streams; i++)
		if ((int)i != d->vin)
			d->ifmt->streams[i]->discard = AVDISCARD_ALL;
	vs = d->ifmt->streams[d->vin];
	if ((codec = avcodec_find_decoder(vs->codecpar->codec_id)) == NULL)
		return decode_error(d, 0, "no decoder for '%s'",
		    avcodec_get_name(vs->codecpar->codec_id));
	if ((d->dec = avcodec_alloc_context3(codec)) == NULL)
		return decode_error(d, AVERROR(ENOMEM), "cannot decode");
	if ((err = avcodec_parameters_to_context(d->dec, vs->codecpar)) < 0)
		return decode_error(d, err, "cannot set up the decoder");
	d->dec->pkt_timebase = vs->time_base;
	/* probe checked the start; a picture may grow mid-stream. */
	d->dec->max_pixels = (int64_t)ladderd_ctx_num(d->call->ctx,
	    "profile.max_pixels", LADDERD_SOURCE_MAX_PIXELS);
	/* The decoder is one process feeding N encoders: let it use the
	 * host's thread budget (frame threads). */
	d->dec->thread_count = d->call->threads > 0 ? d->call->threads : 0;
	d->dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
	/* No filters: decode into the ring (filters make new frames). */
	if (d->plan[0] == '\0' && (codec->capabilities & AV_CODEC_CAP_DR1)) {
		d->direct = 1;
		d->dec->opaque = d;
		d->dec->get_buffer2 = decode_get_buffer;
	}
	if ((err = avcodec_open2(d->dec, codec, NULL)) < 0)
		return decode_error(d, err, "cannot open the %s decoder",
		    codec->name);
	return 0;
}

static enum ladderd_rc
decode_run(void *state, struct ladderd_call *call)
{
	struct decode d = { .call = call, .rc = LADDERD_FAIL, .vin = -1,
		.source = LADDERD_SOURCE_INIT,
		.cfg_mu = PTHREAD_MUTEX_INITIALIZER };
	const char *src = ladderd_ctx_str(call->ctx, "input.path", NULL);
	const char *names[FRAMERING_MAX_READERS];
	struct framering_spec spec;
	enum ladderd_rc rc = LADDERD_FAIL;
	cJSON *out = NULL;
	int err = 0, sdr = 0;

	(void)state;
	if (framering_spec_load(&spec, call, names) < 0 || src == NULL) {
		call->fail(call, "the context has no shared_decode plan or "
				 "input.path");
		return LADDERD_FAIL;
	}
	if ((err = framering_create(&d.ring, &spec)) < 0) {
		call->fail(call, "cannot open the frame ring '%s': %s",
		    spec.name, strerror(-err));
		return LADDERD_FAIL;
	}
	if ((d.pkt = av_packet_alloc()) == NULL ||
	    (d.frame = av_frame_alloc()) == NULL ||
	    (d.filtered = av_frame_alloc()) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	if ((err = ladderd_graph_video_plan(call->ctx, d.plan,
		 sizeof(d.plan), &sdr)) < 0) {
		call->fail(call, "%s", err == -EINVAL
		    ? "unsupported rotation (not a multiple of 90)"
		    : "the filter plan is too long");
		goto out;
	}
	if ((err = decode_open(&d, src)) < 0)
		goto out;
	while (!d.stopped && (err = av_read_frame(d.ifmt, d.pkt)) >= 0) {
		if (d.pkt->stream_index == d.vin) {
			err = decode_packet(&d, d.pkt);
			LADDERD_CRASH_POINT("decode.packet", NULL);
		}
		av_packet_unref(d.pkt);
		if (err < 0)
			goto out;
	}
	if (err < 0 && err != AVERROR_EOF) {
		decode_error(&d, err, "cannot read '%s'", src);
		goto out;
	}
	if (!d.stopped && ((err = decode_packet(&d, NULL)) < 0 ||
			      (!d.stopped && (err = decode_filter(&d, NULL)) < 0)))
		goto out;
	if (d.frames == 0 && !d.stopped) {
		decode_error(&d, 0, "no video frame could be decoded from '%s'",
		    src);
		goto out;
	}
	framering_end(d.ring, 1);
	call->log(call, LADDERD_LOG_DEBUG, "%lld frames, %lld of them copied "
	    "into the ring (%s)", (long long)d.frames,
	    (long long)framering_copied(d.ring),
	    d.direct ? "decoded into its slots" : "filtered");
	if ((out = cJSON_CreateObject()) == NULL)
		goto out;
	cJSON_AddNumberToObject(out, "frames", (double)d.frames);
	cJSON_AddBoolToObject(out, "readers_gone", d.stopped);
	cJSON_AddNumberToObject(out, "width", d.width);
	cJSON_AddNumberToObject(out, "height", d.height);
	cJSON_AddStringToObject(out, "pix_fmt",
	    av_get_pix_fmt_name(d.format) ? av_get_pix_fmt_name(d.format) :
					    "?");
	cJSON_AddNumberToObject(out, "bad_packets", (double)d.bad);
	/* Frames not decoded into the ring (filtered, or no slot free). */
	cJSON_AddNumberToObject(out, "frames_copied",
	    (double)framering_copied(d.ring));
	cJSON_AddBoolToObject(out, "direct", d.direct);
	cJSON_AddStringToObject(out, "filters", d.plan);
	if (ladderd_ctx_set(call->ctx, "decode", out) < 0) {
		call->fail(call, "cannot store the decode results");
		goto out;
	}
	out = NULL;
	rc = LADDERD_OK;
out:
	/* First, so no reader waits for frames that will not come. */
	framering_end(d.ring, 0);
	if (rc != LADDERD_OK && d.rc == LADDERD_RETRY)
		rc = LADDERD_RETRY;
	cJSON_Delete(out);
	ladderd_graph_free(&d.graph);
	av_frame_free(&d.filtered);
	av_frame_free(&d.frame);
	av_packet_free(&d.pkt);
	/* The decoder's references to slots go before the mapping. */
	avcodec_free_context(&d.dec);
	framering_finish(&d.ring, 0);
	pthread_mutex_destroy(&d.cfg_mu);
	ladderd_source_close(&d.source);
	d.ifmt = NULL;
	return rc;
}

LADDERD_STAGE_DEFINE("decode", "1.0", NULL, NULL, decode_run, NULL);

/*
 * stages/graph.c - libavfilter chains of the media stages (graph.h).
 *
 * Owns: building one buffer -> filters -> buffersink chain per stream,
 * and the choice of filters for a task (ladderd_graph_video_plan,
 * ladderd_graph_audio_plan). The plans read only the probe's findings and
 * the profile, so every process of a task (shared decoder, rungs) agrees.
 * Descriptions are built from numbers and fixed names only: nothing from
 * the source's metadata reaches a filter string as text. libavfilter is
 * not linked: every call goes through avfilter_lazy.h's table, loaded by
 * the first ladderd_graph_new, so a task without filters never maps it.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/channel_layout.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>

#include "avfilter_lazy.h"
#include "encode_settings.h"
#include "graph.h"

struct ladderd_graph {
	const struct ladderd_avfilter *av; /* set before anything is made */
	AVFilterGraph *graph; /* owns src and sink */
	AVFilterContext *src;
	AVFilterContext *sink;
};

void
ladderd_graph_free(struct ladderd_graph **g)
{
	if (g == NULL || *g == NULL)
		return;
	if ((*g)->av != NULL)
		(*g)->av->avfilter_graph_free(&(*g)->graph);
	av_freep(g);
}

/* The buffer source's arguments for frames like `f`. */
static int
graph_src_args(const AVFrame *f, AVRational tb, int video, char *buf,
    size_t n)
{
	int len;

	if (video) {
		AVRational sar = f->sample_aspect_ratio;

		if (sar.num <= 0 || sar.den <= 0)
			sar = (AVRational){ 1, 1 };
		len = snprintf(buf, n,
		    "video_size=%dx%d:pix_fmt=%d:time_base=%d/%d:"
		    "pixel_aspect=%d/%d",
		    f->width, f->height, f->format, tb.num, tb.den, sar.num,
		    sar.den);
	} else {
		char layout[128];
		AVChannelLayout dflt = { 0 };

		/* Unordered channels: the usual layout for that count. */
		if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
			av_channel_layout_default(&dflt, f->ch_layout.nb_channels);
			(void)av_channel_layout_describe(&dflt, layout,
			    sizeof(layout));
			av_channel_layout_uninit(&dflt);
		} else if (av_channel_layout_describe(&f->ch_layout, layout,
			       sizeof(layout)) < 0) {
			return AVERROR(EINVAL);
		}
		len = snprintf(buf, n,
		    "time_base=%d/%d:sample_rate=%d:sample_fmt=%s:"
		    "channel_layout=%s",
		    tb.num, tb.den, f->sample_rate,
		    av_get_sample_fmt_name(f->format) ?
			av_get_sample_fmt_name(f->format) : "none",
		    layout);
	}
	return len < 0 || (size_t)len >= n ? AVERROR(ENAMETOOLONG) : 0;
}

int
ladderd_graph_new(struct ladderd_graph **ret, const char *desc,
    const AVFrame *like, AVRational tb, char *err, size_t errsz)
{
	const struct ladderd_avfilter *av = NULL;
	struct ladderd_graph *g = NULL;
	int video = like->width > 0 && like->height > 0;
	AVFilterInOut *in = NULL, *out = NULL;
	char args[512];
	int e;

	*ret = NULL;
	/* The first graph of the process loads libavfilter. */
	if ((av = ladderd_avfilter_lazy_get(err, errsz)) == NULL)
		return AVERROR(ELIBACC);
	if ((g = av_mallocz(sizeof(*g))) != NULL)
		g->av = av;
	if (g == NULL || (g->graph = av->avfilter_graph_alloc()) == NULL ||
	    (in = av->avfilter_inout_alloc()) == NULL ||
	    (out = av->avfilter_inout_alloc()) == NULL) {
		e = AVERROR(ENOMEM);
		(void)snprintf(err, errsz, "cannot allocate a filter graph");
		goto out;
	}
	/* Our processes are the parallelism (STYLE 2): one thread. */
	g->graph->nb_threads = 1;
	if ((e = graph_src_args(like, tb, video, args, sizeof(args))) < 0) {
		(void)snprintf(err, errsz, "cannot describe the %s input",
		    video ? "video" : "audio");
		goto out;
	}
	if ((e = av->avfilter_graph_create_filter(&g->src,
		 av->avfilter_get_by_name(video ? "buffer" : "abuffer"), "in",
		 args, NULL, g->graph)) < 0 ||
	    (e = av->avfilter_graph_create_filter(&g->sink,
		 av->avfilter_get_by_name(video ? "buffersink" : "abuffersink"),
		 "out", NULL, NULL, g->graph)) < 0) {
		(void)snprintf(err, errsz, "cannot create the filter "
		    "endpoints (%s)", args);
		goto out;
	}
	/* The description's open input is fed by src, its output feeds
	 * sink (names as in avfilter_graph_parse_ptr's documentation). */
	out->name = av_strdup("in");
	out->filter_ctx = g->src;
	in->name = av_strdup("out");
	in->filter_ctx = g->sink;
	if (out->name == NULL || in->name == NULL) {
		e = AVERROR(ENOMEM);
		(void)snprintf(err, errsz, "cannot allocate a filter graph");
		goto out;
	}
	if ((e = av->avfilter_graph_parse_ptr(g->graph, desc, &in, &out,
		 NULL)) < 0 ||
	    (e = av->avfilter_graph_config(g->graph, NULL)) < 0) {
		(void)snprintf(err, errsz, "cannot set up the filters '%s'",
		    desc);
		goto out;
	}
	*ret = g; /* the caller owns it now */
	g = NULL;
	e = 0;
out:
	av->avfilter_inout_free(&in);
	av->avfilter_inout_free(&out);
	ladderd_graph_free(&g);
	return e;
}

int
ladderd_graph_push(struct ladderd_graph *g, const AVFrame *f)
{
	/* KEEP_REF: the graph references (or copies) the caller's frame. */
	return g->av->av_buffersrc_add_frame_flags(g->src, (AVFrame *)f,
	    AV_BUFFERSRC_FLAG_KEEP_REF);
}

int
ladderd_graph_pull(struct ladderd_graph *g, AVFrame *out)
{
	return g->av->av_buffersink_get_frame(g->sink, out);
}

AVRational
ladderd_graph_time_base(const struct ladderd_graph *g)
{
	return g->av->av_buffersink_get_time_base(g->sink);
}

/* Append to buf at *len; -ENAMETOOLONG when it does not fit. */
__attribute__((format(printf, 4, 5))) static int
graph_append(char *buf, size_t n, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(buf + *len, n - *len, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= n - *len)
		return -ENAMETOOLONG;
	*len += (size_t)k;
	return 0;
}

/* zscale's name for a probe colour value, or the HDR default. */
static const char *
graph_zname(const char *probe_value, const char *const *known,
    const char *dflt)
{
	for (int i = 0; probe_value != NULL && known[i] != NULL; i++)
		if (strcmp(probe_value, known[i]) == 0)
			return known[i];
	return dflt;
}

int
ladderd_graph_video_plan(const cJSON *ctx, char *buf, size_t n, int *ret_sdr)
{
	const char *mode =
	    ladderd_setting_str(ctx, encode_setting(ENC_VIDEO_DEINTERLACE));
	const char *order = ladderd_ctx_str(ctx, "probe.video.field_order",
	    "unknown");
	const char *trc = ladderd_ctx_str(ctx, "probe.video.color_transfer",
	    "");
	int interlaced = ladderd_ctx_bool(ctx, "probe.video.interlaced", 0);
	int rotation =
	    (((int)ladderd_ctx_num(ctx, "probe.video.rotation", 0) % 360) +
		360) % 360;
	const char *rot = NULL;
	static const char *const prims[] = { "bt709", "bt2020", "smpte432",
		"bt470bg", "smpte170m", NULL };
	static const char *const matrices[] = { "bt709", "bt2020nc",
		"bt2020c", "bt470bg", "smpte170m", NULL };
	size_t len = 0;
	int err;

	*ret_sdr = 0;
	if (n == 0)
		return -ENAMETOOLONG;
	buf[0] = '\0';
	if (rotation % 90 != 0)
		return -EINVAL;
	/*
	 * bwdif, one frame out per frame in (send_frame): the frame rate,
	 * the frame count and the keyframe grid stay the source's. Parity
	 * from the stream; "auto" (the frame's own flag) when it says
	 * nothing, e.g. when idet found the interlacing.
	 */
	if (strcmp(mode, "on") == 0 ||
	    (strcmp(mode, "off") != 0 && interlaced)) {
		const char *parity = strcmp(order, "tt") == 0 ||
			strcmp(order, "tb") == 0
		    ? "tff"
		    : strcmp(order, "bb") == 0 || strcmp(order, "bt") == 0
		    ? "bff"
		    : strcmp(ladderd_ctx_str(ctx, "probe.video.idet", ""),
			  "bff") == 0
		    ? "bff"
		    : strcmp(ladderd_ctx_str(ctx, "probe.video.idet", ""),
			  "tff") == 0
		    ? "tff"
		    : "auto";

		if ((err = graph_append(buf, n, &len,
			 "bwdif=mode=send_frame:parity=%s:deint=all",
			 parity)) < 0)
			return err;
	}
	/*
	 * HDR (PQ or HLG) to BT.709 SDR: linear light, BT.709 primaries,
	 * Hable tone curve, back to limited-range BT.709 4:2:0. The input's
	 * primaries and matrix come from the probe (BT.2020 when unknown).
	 */
	if (strcmp(trc, "smpte2084") == 0 || strcmp(trc, "arib-std-b67") == 0) {
		if ((err = graph_append(buf, n, &len,
			 "%szscale=tin=%s:pin=%s:min=%s:t=linear:npl=100,"
			 "format=gbrpf32le,zscale=p=bt709,"
			 "tonemap=tonemap=hable:desat=0,"
			 "zscale=t=bt709:m=bt709:r=tv,format=yuv420p",
			 len ? "," : "", trc,
			 graph_zname(ladderd_ctx_str(ctx,
			     "probe.video.color_primaries", NULL), prims,
			     "bt2020"),
			 graph_zname(ladderd_ctx_str(ctx,
			     "probe.video.color_space", NULL), matrices,
			     "bt2020nc"))) < 0)
			return err;
		*ret_sdr = 1;
	}
	/*
	 * The display matrix's quarter turn (probe: clockwise), done on the
	 * pixels so players that ignore the matrix show the picture upright
	 * too; the encoders write no matrix. Last, so bwdif sees the fields
	 * as they were coded. A turned picture is what target_size sized.
	 */
	switch (rotation) {
	case 90:
		rot = "transpose=clock";
		break;
	case 180:
		rot = "hflip,vflip";
		break;
	case 270:
		rot = "transpose=cclock";
		break;
	}
	if (rot != NULL &&
	    (err = graph_append(buf, n, &len, "%s%s", len ? "," : "", rot)) <
		0)
		return err;
	return 0;
}

int
ladderd_graph_audio_plan(const cJSON *ctx, char *buf, size_t n)
{
	double target =
	    ladderd_setting_num(ctx, encode_setting(ENC_AUDIO_LOUDNESS));
	const cJSON *m = ladderd_ctx_get(ctx, "probe.loudness");
	double i = ladderd_ctx_num(m, "integrated", NAN);
	double tp = ladderd_ctx_num(m, "true_peak", NAN);
	double lra = ladderd_ctx_num(m, "lra", NAN);
	int k;

	if (n == 0)
		return -ENAMETOOLONG;
	buf[0] = '\0';
	/* Silence (-70 LUFS, the gate) has no loudness to correct. */
	if (target == 0 || !isfinite(i) || !isfinite(tp) || !isfinite(lra) ||
	    i <= -70)
		return 0;
	/*
	 * Second pass: loudnorm in linear mode is one gain, target - I,
	 * when the true peak stays under -1.5 dBTP after it (else loudnorm
	 * falls back to its dynamic mode). It takes measured_LRA 0 for "not
	 * measured", so a steady tone's 0 LU goes in as 0.01. loudnorm
	 * works at 192 kHz; the encoder's resampler brings it back.
	 */
	k = snprintf(buf, n,
	    "loudnorm=I=%.1f:TP=-1.5:LRA=20:measured_I=%.2f:measured_TP=%.2f:"
	    "measured_LRA=%.2f:measured_thresh=%.2f:linear=true",
	    target, i, fmin(tp, 20), fmax(fmin(lra, 20), 0.01),
	    fmax(i - 10, -69.99));
	if (k < 0 || (size_t)k >= n)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * stages/chunk_dash.c - the DASH manifest of the package (post stage).
 *
 * Reads ctx.profile.{dash, segment_type, segment_duration, audio},
 * ctx.probe.{audio, audio_index, video.fps_num, video.fps_den},
 * ctx.renditions[] ({rung, status, transcode, chunk_hls, hls_info}) and
 * ctx.thumbnails (an image AdaptationSet of the sprite sheets).
 * Writes call->path(MPD) atomically (isoff-live, static, one Period, a video
 * AdaptationSet with one Representation per ok video rung, one audio
 * AdaptationSet per audio track with its lang, and one text AdaptationSet
 * per subtitle track of ctx.subtitles: a sidecar WebVTT Representation)
 * and adds ctx.chunk_dash = { mpd, segment_type, duration, representations:
 * [ { id, kind, timescale, init, media, start_number, bandwidth, segments:
 * [ { uri, start, length, bytes } ] } ] } (paths relative to the package).
 *
 * fmp4: the MPD references the CMAF segments chunk_hls wrote (one copy on
 * disk); the SegmentTimeline is chunk_hls's start/length (tfdt and sample
 * durations, track timescale). mpegts: the HLS segments are TS, so each
 * rung's transcoded.mp4 is stream-copied into call->path(DASH_DIR)/<rung>/
 * (init.mp4 + seg_NNNNN.m4s, cut at the keyframe of every segment_duration
 * boundary; audio once, from the first rung that has it, into dash/audio/)
 * and the timeline is read back from the fragments written (tfdt, trun).
 * Skips when profile.dash is false; fails when no video rung is usable or
 * a file cannot be written.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

#include <libavformat/avformat.h>
#include <libavutil/bprint.h>
#include <libavutil/mathematics.h>

#include "avcall.h"
#include "avlog.h"
#include "codecs.h"
#include "encode_settings.h"
#include "stage.h"
#include "crashpoint.h"

#define DASH_MAX_REPS 32
#define DASH_URI_MAX 512

/* One segment: start (tfdt) and length in the track timescale. */
struct dash_seg {
	int64_t t;
	int64_t d;
	int64_t bytes;
	char uri[DASH_URI_MAX];
};

struct dash_rep {
	char id[72];
	int audio;
	int width, height;
	int fps_num, fps_den; /* 0/0 = unknown */
	int channels, sample_rate;
	char lang[40];	 /* audio: "" = unknown */
	char label[128]; /* audio: the track's name, "" = none */
	int main_track;	 /* audio: the default track (Role main) */
	char codecs[64];
	int64_t bandwidth;
	int64_t timescale;
	char init[DASH_URI_MAX];  /* relative to the package */
	char media[DASH_URI_MAX]; /* SegmentTemplate@media */
	long start_number;
	struct dash_seg *segs;
	size_t nb_segs, cap_segs;
};

static int
dash_seg_add(struct dash_rep *rep, int64_t t, int64_t d, int64_t bytes,
    const char *uri)
{
	struct dash_seg *s;

	if (rep->nb_segs == rep->cap_segs) {
		size_t cap = rep->cap_segs ? rep->cap_segs * 2 : 64;

		s = av_realloc_array(rep->segs, cap, sizeof(*s));
		if (s == NULL)
			return -ENOMEM;
		rep->segs = s;
		rep->cap_segs = cap;
	}
	s = &rep->segs[rep->nb_segs++];
	s->t = t;
	s->d = d;
	s->bytes = bytes;
	if (snprintf(s->uri, sizeof(s->uri), "%s", uri) >= (int)sizeof(s->uri))
		return -ENAMETOOLONG;
	return 0;
}

/* The part of a CODECS list for one kind ("avc1.64001f,mp4a.40.2"). */
static void
dash_codec_part(const char *list, int audio, char *buf, size_t size)
{
	const char *p = list;

	buf[0] = '\0';
	while (p != NULL && *p != '\0') {
		size_t n = strcspn(p, ",");
		int is_audio = strncmp(p, "mp4a", 4) == 0 ||
		    strncmp(p, "ac-3", 4) == 0 || strncmp(p, "ec-3", 4) == 0 ||
		    strncmp(p, "opus", 4) == 0;

		if (is_audio == audio && n < size) {
			memcpy(buf, p, n);
			buf[n] = '\0';
			return;
		}
		p += n;
		p += *p == ',';
		p += strspn(p, " ");
	}
}

/* Does every segment URI follow u0 with [run, end) counting up from it? */
static int
dash_template_fits(const struct dash_rep *rep, const char *run,
    const char *end, long start)
{
	const char *u0 = rep->segs[0].uri;
	int width = (int)(end - run);

	/* strtol saturates a run too long for a long: no count up from it. */
	if (start < 0 || (size_t)(LONG_MAX - start) < rep->nb_segs)
		return 0;
	for (size_t i = 0; i < rep->nb_segs; i++) {
		char want[DASH_URI_MAX];
		int n = snprintf(want, sizeof(want), "%.*s%0*ld%s",
		    (int)(run - u0), u0, width, start + (long)i, end);

		if (n < 0 || (size_t)n >= sizeof(want) ||
		    strcmp(want, rep->segs[i].uri) != 0)
			return 0;
	}
	return 1;
}

/*
 * Turn the segment URIs of chunk_hls into a SegmentTemplate@media: the
 * run of digits of the first URI's file name that counts up across all
 * URIs becomes $Number$ (the last such run: "seg_00003.m4s" has two).
 */
static int
dash_template(struct dash_rep *rep)
{
	const char *u0 = rep->segs[0].uri, *base = strrchr(u0, '/'), *p;
	const char *run = NULL, *end = NULL;
	AVBPrint bp;
	int rc = 0;

	base = base ? base + 1 : u0;
	for (p = u0 + strlen(u0); p > base && run == NULL; p--) {
		const char *e = p, *b;

		if (!(p[-1] >= '0' && p[-1] <= '9'))
			continue;
		for (b = p; b > base && b[-1] >= '0' && b[-1] <= '9'; b--)
			;
		if (dash_template_fits(rep, b, e, strtol(b, NULL, 10))) {
			run = b;
			end = e;
		}
		p = b + 1;
	}
	if (run == NULL)
		return -EINVAL;
	rep->start_number = strtol(run, NULL, 10);
	av_bprint_init(&bp, 0, AV_BPRINT_SIZE_UNLIMITED);
	/* '$' is the template escape: a literal one is written "$$" */
	for (p = u0; p < run; p++)
		av_bprintf(&bp, *p == '$' ? "$$" : "%c", *p);
	if (end - run > 1)
		av_bprintf(&bp, "$Number%%0%dd$", (int)(end - run));
	else
		av_bprintf(&bp, "$Number$");
	for (p = end; *p != '\0'; p++)
		av_bprintf(&bp, *p == '$' ? "$$" : "%c", *p);
	if (!av_bprint_is_complete(&bp) || bp.len >= sizeof(rep->media))
		rc = -ENAMETOOLONG;
	else
		memcpy(rep->media, bp.str, bp.len + 1);
	av_bprint_finalize(&bp, NULL);
	return rc;
}

/* fmp4: a Representation over the CMAF segments chunk_hls recorded. */
static enum ladderd_rc
dash_rep_from_hls(struct ladderd_call *call, const cJSON *r,
    struct dash_rep *rep)
{
	const cJSON *segs = ladderd_ctx_get(r, "chunk_hls.segments");
	const cJSON *s;
	const char *init = ladderd_ctx_str(r, "chunk_hls.init", NULL);
	const char *codecs = ladderd_ctx_str(r, "hls_info.codecs", "");

	rep->timescale = (int64_t)ladderd_ctx_num(r, "chunk_hls.timescale", 0);
	if (init == NULL || rep->timescale <= 0 || !cJSON_IsArray(segs) ||
	    cJSON_GetArraySize(segs) == 0) {
		call->fail(call, "rung %s: chunk_hls has no fMP4 init, "
		    "timescale or segments", rep->id);
		return LADDERD_FAIL;
	}
	if (snprintf(rep->init, sizeof(rep->init), "%s", init) >=
	    (int)sizeof(rep->init)) {
		call->fail(call, "rung %s: init path too long", rep->id);
		return LADDERD_FAIL;
	}
	cJSON_ArrayForEach(s, segs) {
		const char *uri = ladderd_ctx_str(s, "uri", NULL);
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "start");
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(s, "length");

		if (uri == NULL || !cJSON_IsNumber(t) || !cJSON_IsNumber(d) ||
		    d->valuedouble <= 0) {
			call->fail(call, "rung %s: segment %d has no uri, "
			    "start or length", rep->id, (int)rep->nb_segs);
			return LADDERD_FAIL;
		}
		if (dash_seg_add(rep, (int64_t)t->valuedouble,
			(int64_t)d->valuedouble,
			(int64_t)ladderd_ctx_num(s, "bytes", 0), uri) < 0) {
			call->fail(call, "rung %s: cannot record segment '%s'",
			    rep->id, uri);
			return LADDERD_FAIL;
		}
	}
	if (dash_template(rep) < 0) {
		call->fail(call, "rung %s: segment names ('%s' ...) do not "
		    "follow one numbered pattern", rep->id, rep->segs[0].uri);
		return LADDERD_FAIL;
	}
	rep->bandwidth = (int64_t)ladderd_ctx_num(r, "chunk_hls.peak_bitrate",
	    ladderd_ctx_num(r, "hls_info.bandwidth", 0));
	dash_codec_part(codecs, rep->audio, rep->codecs, sizeof(rep->codecs));
	if (!rep->audio) {
		rep->width = (int)ladderd_ctx_num(r, "transcode.width",
		    ladderd_ctx_num(r, "target_size.width", 0));
		rep->height = (int)ladderd_ctx_num(r, "transcode.height",
		    ladderd_ctx_num(r, "target_size.height", 0));
	}
	return LADDERD_OK;
}

/*
 * The rung's frame rate as a fraction: the probe's exact one when the rung
 * kept it (hls_info.frame_rate, 3 decimals, says what the rung has), else
 * a fraction rebuilt from hls_info.frame_rate (N or N*1000/1001).
 */
static void
dash_fps(const cJSON *ctx, const cJSON *r, struct dash_rep *rep)
{
	int num = (int)ladderd_ctx_num(ctx, "probe.video.fps_num", 0);
	int den = (int)ladderd_ctx_num(ctx, "probe.video.fps_den", 0);
	double fr = ladderd_ctx_num(r, "hls_info.frame_rate", 0);
	AVRational q;

	if (num > 0 && den > 0 && (fr <= 0 || fabs((double)num / den - fr) <
	    0.01)) {
		rep->fps_num = num;
		rep->fps_den = den;
		return;
	}
	if (fr <= 0)
		return;
	if (fabs(fr - round(fr)) < 0.002)
		q = (AVRational){ (int)round(fr), 1 };
	else if (fabs(fr * 1.001 - round(fr * 1.001)) < 0.002)
		q = (AVRational){ (int)round(fr * 1.001) * 1000, 1001 };
	else
		q = av_d2q(fr, 100000);
	rep->fps_num = q.num;
	rep->fps_den = q.den;
}

static uint32_t
dash_rb32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/*
 * The first box of `type` among the boxes in [p, end): its payload, and
 * its end in *ret_end; NULL when absent or malformed.
 */
static const uint8_t *
dash_box(const uint8_t *p, const uint8_t *end, const char *type,
    const uint8_t **ret_end)
{
	while (end - p >= 8) {
		uint64_t size = dash_rb32(p);
		size_t hdr = 8;

		if (size == 1 && end - p >= 16) {
			size = (uint64_t)dash_rb32(p + 8) << 32 |
			    dash_rb32(p + 12);
			hdr = 16;
		} else if (size == 0) {
			size = (uint64_t)(end - p);
		}
		if (size < hdr || size > (uint64_t)(end - p))
			return NULL;
		if (memcmp(p + 4, type, 4) == 0) {
			*ret_end = p + size;
			return p + hdr;
		}
		p += size;
	}
	return NULL;
}

/*
 * The timeline entry of a one-track fragment, read back from the bytes the
 * muxer wrote, so the MPD says what the file says: t = tfdt, d = the sum
 * of the trun sample durations (tfhd default when a trun has none).
 */
static int
dash_fragment_times(const uint8_t *buf, size_t len, int64_t *ret_t,
    int64_t *ret_d)
{
	const uint8_t *end = buf + len, *moof, *moof_end, *traf, *traf_end;
	const uint8_t *b, *b_end, *p;
	uint32_t flags, dflt = 0;
	int64_t d = 0;
	size_t off;
	int runs = 0;

	if ((moof = dash_box(buf, end, "moof", &moof_end)) == NULL ||
	    (traf = dash_box(moof, moof_end, "traf", &traf_end)) == NULL ||
	    (b = dash_box(traf, traf_end, "tfdt", &b_end)) == NULL ||
	    b_end - b < 8 || (b[0] == 1 && b_end - b < 12))
		return -EINVAL;
	*ret_t = b[0] == 1 ? (int64_t)((uint64_t)dash_rb32(b + 4) << 32 |
	    dash_rb32(b + 8)) : (int64_t)dash_rb32(b + 4);
	if ((b = dash_box(traf, traf_end, "tfhd", &b_end)) == NULL ||
	    b_end - b < 8)
		return -EINVAL;
	flags = dash_rb32(b) & 0xffffff;
	off = 8 + (flags & 0x1 ? 8 : 0) + (flags & 0x2 ? 4 : 0);
	if ((flags & 0x8) && (size_t)(b_end - b) >= off + 4)
		dflt = dash_rb32(b + off);
	for (p = traf; (b = dash_box(p, traf_end, "trun", &b_end)); p = b_end) {
		uint32_t n;
		size_t per;

		if (b_end - b < 8)
			return -EINVAL;
		flags = dash_rb32(b) & 0xffffff;
		n = dash_rb32(b + 4);
		off = 8 + (flags & 0x1 ? 4 : 0) + (flags & 0x4 ? 4 : 0);
		per = 4 * (size_t)(!!(flags & 0x100) + !!(flags & 0x200) +
		    !!(flags & 0x400) + !!(flags & 0x800));
		if (((flags & 0x100) == 0 && dflt == 0) ||
		    off + (uint64_t)n * per > (uint64_t)(b_end - b))
			return -EINVAL;
		if (per == 0) {
			/* No per-sample table: n samples of the default. */
			if ((uint64_t)n * dflt > (uint64_t)(INT64_MAX - d))
				return -EINVAL;
			d += (int64_t)n * dflt;
		}
		for (uint32_t i = 0; per != 0 && i < n; i++, off += per) {
			uint32_t v = flags & 0x100 ? dash_rb32(b + off) : dflt;

			if (v > (uint64_t)(INT64_MAX - d))
				return -EINVAL;
			d += v;
		}
		runs++;
	}
	*ret_d = d;
	return runs > 0 && d > 0 ? 0 : -EINVAL;
}

/*
 * Flush what the mp4 muxer holds into `path`: the muxer writes into a
 * memory buffer (oc->pb), which is written atomically and replaced by a
 * fresh one. With ret_t/ret_d (a media segment) the fragment's timeline
 * entry is read back from it. Returns the number of bytes written or -1.
 */
static int64_t
dash_flush(struct ladderd_call *call, AVFormatContext *oc, const char *path,
    int64_t *ret_t, int64_t *ret_d)
{
	uint8_t *buf = NULL;
	int len, err;

	/* with delay_moov the first flush emits ftyp+moov only */
	if ((err = av_write_frame(oc, NULL)) < 0) {
		call->fail(call, "cannot flush fragment for '%s': %s", path,
		    av_err2str(err));
		return -1;
	}
	len = avio_close_dyn_buf(oc->pb, &buf);
	oc->pb = NULL;
	if ((err = avio_open_dyn_buf(&oc->pb)) < 0) {
		av_free(buf);
		call->fail(call, "cannot allocate a buffer: %s",
		    av_err2str(err));
		return -1;
	}
	if (len <= 0) {
		av_free(buf);
		call->fail(call, "mp4 muxer wrote nothing for '%s'", path);
		return -1;
	}
	if (ret_t != NULL &&
	    dash_fragment_times(buf, (size_t)len, ret_t, ret_d) < 0) {
		av_free(buf);
		call->fail(call, "cannot read tfdt/trun back from the fragment "
		    "for '%s'", path);
		return -1;
	}
	err = call->write_atomic(call, path, buf, (size_t)len);
	av_free(buf);
	if (err < 0) {
		call->fail(call, "cannot write '%s': %s", path, strerror(-err));
		return -1;
	}
	return len;
}

/*
 * Set up *ret_oc: an mp4 muxer into a memory buffer with one stream, a
 * copy of `ist`, started in fragment-per-flush mode. Its time base is the
 * track timescale (1/N). 0, or -1 with the message recorded; *ret_oc is
 * the caller's to free either way (dash_remux_free).
 */
static int
dash_remux_muxer(struct ladderd_call *call, const AVStream *ist,
    const char *dir, AVFormatContext **ret_oc)
{
	AVDictionary *opts = NULL;
	AVStream *ost = NULL;
	int err, ret = -1;

	err = avformat_alloc_output_context2(ret_oc, NULL, "mp4", NULL);
	if (err < 0 || (ost = avformat_new_stream(*ret_oc, NULL)) == NULL) {
		call->fail(call, "cannot set up the mp4 muxer: %s",
		    av_err2str(err < 0 ? err : AVERROR(ENOMEM)));
		goto out;
	}
	if ((err = avcodec_parameters_copy(ost->codecpar, ist->codecpar)) < 0) {
		call->fail(call, "cannot copy codec parameters: %s",
		    av_err2str(err));
		goto out;
	}
	ost->codecpar->codec_tag = 0;
	ost->time_base = ist->time_base; /* a hint; the muxer picks */
	(void)av_dict_copy(&ost->metadata, ist->metadata, 0);
	if ((err = avio_open_dyn_buf(&(*ret_oc)->pb)) < 0) {
		call->fail(call, "cannot allocate a buffer: %s",
		    av_err2str(err));
		goto out;
	}
	/*
	 * frag_custom: a fragment ends only when we flush, so each file holds
	 * exactly one segment; delay_moov: the moov (and its edit list) is
	 * written once the first samples are known; dash: sidx per segment,
	 * like the CMAF segments of the HLS muxer.
	 */
	(void)av_dict_set(&opts, "movflags",
	    "+frag_custom+dash+delay_moov+skip_trailer", 0);
	if ((err = avformat_write_header(*ret_oc, &opts)) < 0) {
		call->fail(call, "cannot start the mp4 muxer for '%s': %s",
		    dir, av_err2str(err));
		goto out;
	}
	if (ost->time_base.num != 1) {
		call->fail(call, "mp4 muxer chose time base %d/%d for '%s'",
		    ost->time_base.num, ost->time_base.den, dir);
		goto out;
	}
	ret = 0;
out:
	av_dict_free(&opts);
	return ret;
}

/* Free a muxer of dash_remux_muxer, its memory buffer included. */
static void
dash_remux_free(AVFormatContext **oc)
{
	if (*oc != NULL && (*oc)->pb != NULL) {
		uint8_t *buf = NULL;

		(void)avio_close_dyn_buf((*oc)->pb, &buf);
		av_free(buf);
		(*oc)->pb = NULL;
	}
	avformat_free_context(*oc);
	*oc = NULL;
}

/* What the MPD says of `rep` from its source stream: size and rate. */
static void
dash_remux_describe(struct dash_rep *rep, const AVStream *ist,
    enum AVMediaType type)
{
	if (type == AVMEDIA_TYPE_VIDEO) {
		AVRational fr = ist->avg_frame_rate.num > 0 ?
		    ist->avg_frame_rate : ist->r_frame_rate;

		rep->width = ist->codecpar->width;
		rep->height = ist->codecpar->height;
		if (fr.num > 0 && fr.den > 0) {
			rep->fps_num = fr.num;
			rep->fps_den = fr.den;
		}
	} else {
		rep->channels = ist->codecpar->ch_layout.nb_channels;
		rep->sample_rate = ist->codecpar->sample_rate;
	}
}

/*
 * End the segment being muxed into `oc`: write init.mp4 first if
 * *init_done is not set yet, then <dir>/seg_NNNNN.m4s, and add it to
 * rep's timeline. 0, or -1 with the message recorded.
 */
static int
dash_remux_cut(struct ladderd_call *call, AVFormatContext *oc,
    const char *dir, const char *rel_dir, struct dash_rep *rep,
    int *init_done)
{
	char path[PATH_MAX + 32], uri[DASH_URI_MAX];
	int64_t t, d, bytes;

	if (!*init_done) {
		(void)snprintf(path, sizeof(path), "%s/init.mp4", dir);
		if (dash_flush(call, oc, path, NULL, NULL) < 0)
			return -1;
		*init_done = 1;
	}
	(void)snprintf(uri, sizeof(uri), "%s/%s/seg_%05d.m4s", rel_dir,
	    rep->id, (int)rep->nb_segs);
	(void)snprintf(path, sizeof(path), "%s/seg_%05d.m4s", dir,
	    (int)rep->nb_segs);
	if ((bytes = dash_flush(call, oc, path, &t, &d)) < 0)
		return -1;
	if (dash_seg_add(rep, t, d, bytes, uri) < 0) {
		call->fail(call, "out of memory");
		return -1;
	}
	return 0;
}

/*
 * mpegts: stream-copy the best stream of `type` in `in_path` into
 * <dash_dir>/<rep->id>/init.mp4 + seg_NNNNN.m4s (one fragment per file),
 * cutting at the first keyframe at or after every segment_duration
 * boundary, and fill rep's timeline from the fragments written (tfdt and
 * sample durations: the mp4 muxer rebases dts and guesses missing packet
 * durations, so the packets alone would not say it).
 */
static enum ladderd_rc
dash_remux(struct ladderd_call *call, const char *in_path,
    enum AVMediaType type, const char *dash_dir, const char *rel_dir,
    int segdur, struct dash_rep *rep)
{
	AVFormatContext *ic = NULL, *oc = NULL;
	AVPacket *pkt = NULL;
	AVStream *ist, *ost;
	enum ladderd_rc rc = LADDERD_FAIL;
	char dir[PATH_MAX];
	int64_t boundary, step;
	size_t seg_pkts = 0;
	int idx, err, init_done = 0;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", dash_dir, rep->id) >=
	    sizeof(dir)) {
		call->fail(call, "rung %s: DASH folder path too long", rep->id);
		goto out;
	}
	if ((err = call->mkdirs(call, dir)) < 0) {
		call->fail(call, "cannot create '%s': %s", dir, strerror(-err));
		goto out;
	}
	/* The stream info fills what the mp4 header leaves out (the AAC
	 * frame size). */
	if (ladderd_av_open(call, &ic, in_path, NULL, NULL, in_path) < 0)
		goto out;
	if ((idx = av_find_best_stream(ic, type, -1, -1, NULL, 0)) < 0) {
		call->fail(call, "'%s' has no %s stream", in_path,
		    av_get_media_type_string(type));
		goto out;
	}
	ist = ic->streams[idx];
	if (dash_remux_muxer(call, ist, dir, &oc) < 0)
		goto out;
	ost = oc->streams[0];
	rep->timescale = ost->time_base.den;
	step = av_rescale(segdur, rep->timescale, 1);
	boundary = step;
	dash_remux_describe(rep, ist, type);
	if ((pkt = av_packet_alloc()) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	rep->start_number = 0;
	(void)snprintf(rep->media, sizeof(rep->media),
	    "%s/%s/seg_$Number%%05d$.m4s", rel_dir, rep->id);
	(void)snprintf(rep->init, sizeof(rep->init), "%s/%s/init.mp4", rel_dir,
	    rep->id);
	for (;;) {
		int eof = 0, cut = 0;

		if ((err = av_read_frame(ic, pkt)) == AVERROR_EOF)
			eof = 1;
		else if (err < 0) {
			call->fail(call, "cannot read '%s': %s", in_path,
			    av_err2str(err));
			goto out;
		} else if (pkt->stream_index != idx) {
			av_packet_unref(pkt);
			continue;
		}
		if (!eof) {
			av_packet_rescale_ts(pkt, ist->time_base,
			    ost->time_base);
			pkt->stream_index = 0;
			pkt->pos = -1;
			if (pkt->dts == AV_NOPTS_VALUE)
				pkt->dts = pkt->pts;
			/*
			 * Cut at the keyframe on the boundary; half a packet
			 * of slack keeps a keyframe rounded just below it
			 * on the boundary (audio: the packet nearest it).
			 */
			if (seg_pkts > 0 &&
			    (type != AVMEDIA_TYPE_VIDEO ||
				(pkt->flags & AV_PKT_FLAG_KEY)) &&
			    pkt->pts + pkt->duration / 2 >= boundary)
				cut = 1;
		}
		if ((eof && seg_pkts > 0) || cut) {
			if (dash_remux_cut(call, oc, dir, rel_dir, rep,
				&init_done) < 0)
				goto out;
			seg_pkts = 0;
			if (call->cancelled(call)) {
				rc = LADDERD_RETRY;
				goto out;
			}
		}
		if (eof)
			break;
		/* the next boundary after this segment's start (long GOPs) */
		while (seg_pkts == 0 &&
		    pkt->pts + pkt->duration / 2 >= boundary)
			boundary += step;
		seg_pkts++;
		if ((err = av_write_frame(oc, pkt)) < 0) {
			call->fail(call, "cannot mux a packet of '%s': %s",
			    in_path, av_err2str(err));
			goto out;
		}
		av_packet_unref(pkt);
	}
	if (rep->nb_segs == 0) {
		call->fail(call, "'%s' has no %s packets", in_path,
		    av_get_media_type_string(type));
		goto out;
	}
	(void)av_write_trailer(oc);
	rc = LADDERD_OK;
out:
	av_packet_free(&pkt);
	dash_remux_free(&oc);
	avformat_close_input(&ic);
	return rc;
}

/* Peak of bytes*8/duration over the segments, for @bandwidth. */
static int64_t
dash_peak(const struct dash_rep *rep)
{
	double peak = 0;

	for (size_t i = 0; i < rep->nb_segs; i++) {
		double s = (double)rep->segs[i].d / (double)rep->timescale;

		if (s > 0 && rep->segs[i].bytes * 8.0 / s > peak)
			peak = rep->segs[i].bytes * 8.0 / s;
	}
	return (int64_t)(peak + 0.5);
}

/* "avc1.PPCCLL" from an avcC record, when hls_info has none. */
static void
dash_avc_codecs(const char *path, struct dash_rep *rep)
{
	AVFormatContext *ic = NULL;
	int idx;

	if (avformat_open_input(&ic, path, NULL, NULL) < 0)
		return;
	idx = av_find_best_stream(ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	if (idx >= 0) {
		const AVCodecParameters *par = ic->streams[idx]->codecpar;

		if (par->codec_id == AV_CODEC_ID_H264)
			(void)codecs_avc1(par->extradata, par->extradata_size,
			    rep->codecs, sizeof(rep->codecs));
	}
	avformat_close_input(&ic);
}

/* An attribute value, XML-escaped. */
static void
dash_attr(AVBPrint *bp, const char *name, const char *value)
{
	av_bprintf(bp, " %s=\"", name);
	for (const char *p = value; *p != '\0'; p++) {
		switch (*p) {
		case '&': av_bprintf(bp, "&amp;"); break;
		case '<': av_bprintf(bp, "&lt;"); break;
		case '>': av_bprintf(bp, "&gt;"); break;
		case '"': av_bprintf(bp, "&quot;"); break;
		default: av_bprint_chars(bp, *p, 1); break;
		}
	}
	av_bprintf(bp, "\"");
}

/* XML character data. */
static void
dash_text(AVBPrint *bp, const char *value)
{
	for (const char *p = value; *p != '\0'; p++) {
		switch (*p) {
		case '&': av_bprintf(bp, "&amp;"); break;
		case '<': av_bprintf(bp, "&lt;"); break;
		case '>': av_bprintf(bp, "&gt;"); break;
		default: av_bprint_chars(bp, *p, 1); break;
		}
	}
}

static void
dash_frame_rate(char *buf, size_t size, int num, int den)
{
	buf[0] = '\0';
	if (num <= 0 || den <= 0)
		return;
	(void)av_reduce(&num, &den, num, den, INT_MAX);
	if (den == 1)
		(void)snprintf(buf, size, "%d", num);
	else
		(void)snprintf(buf, size, "%d/%d", num, den);
}

/*
 * SegmentTemplate + SegmentTimeline, run-length coded: S@t only where the
 * timeline does not continue from the previous segment (or at the start),
 * S@r for repeats of the same duration.
 */
static void
dash_template_xml(AVBPrint *bp, const struct dash_rep *rep)
{
	size_t i = 0;

	av_bprintf(bp, "        <SegmentTemplate timescale=\"%" PRId64 "\"",
	    rep->timescale);
	dash_attr(bp, "initialization", rep->init);
	dash_attr(bp, "media", rep->media);
	av_bprintf(bp, " startNumber=\"%ld\">\n", rep->start_number);
	av_bprintf(bp, "          <SegmentTimeline>\n");
	while (i < rep->nb_segs) {
		const struct dash_seg *s = &rep->segs[i];
		size_t j = i + 1;

		while (j < rep->nb_segs && rep->segs[j].d == s->d &&
		    rep->segs[j].t == rep->segs[j - 1].t + rep->segs[j - 1].d)
			j++;
		av_bprintf(bp, "            <S");
		if (i == 0 || s->t != rep->segs[i - 1].t + rep->segs[i - 1].d)
			av_bprintf(bp, " t=\"%" PRId64 "\"", s->t);
		av_bprintf(bp, " d=\"%" PRId64 "\"", s->d);
		if (j - i > 1)
			av_bprintf(bp, " r=\"%zu\"", j - i - 1);
		av_bprintf(bp, "/>\n");
		i = j;
	}
	av_bprintf(bp, "          </SegmentTimeline>\n");
	av_bprintf(bp, "        </SegmentTemplate>\n");
}

static double
dash_end(const struct dash_rep *rep)
{
	const struct dash_seg *s = &rep->segs[rep->nb_segs - 1];

	return (double)(s->t + s->d) / (double)rep->timescale;
}

/*
 * An audio track's language, label and role: from its rendition (one of
 * several tracks, hls_header.c), else the probe's chosen stream.
 */
static void
dash_audio_track(const cJSON *ctx, const cJSON *r, struct dash_rep *rep)
{
	const char *lang = r != NULL && ladderd_ctx_get(r, "rung.stream") ?
	    ladderd_ctx_str(r, "rung.language", NULL) :
	    ladderd_ctx_audio_language(ctx);

	(void)snprintf(rep->lang, sizeof(rep->lang), "%s",
	    lang != NULL ? lang : "");
	(void)snprintf(rep->label, sizeof(rep->label), "%s",
	    r != NULL ? ladderd_ctx_str(r, "rung.label", "") : "");
	rep->main_track = r != NULL ? ladderd_ctx_bool(r, "rung.default", 1) :
	    1;
}

/*
 * Seek-bar thumbnails (ctx.thumbnails, thumbnails.c) as a DASH-IF IOP
 * thumbnail AdaptationSet (6.2.6): one segment per sprite sheet of
 * columns x rows tiles, each sheet lasting that many tile intervals; the
 * Representation's size is the whole sheet's.
 */
static void
dash_thumbnails(AVBPrint *bp, const cJSON *ctx, int id)
{
	const cJSON *t = ladderd_ctx_get(ctx, "thumbnails");
	int cols = (int)ladderd_ctx_num(t, "columns", 0);
	int rows = (int)ladderd_ctx_num(t, "rows", 0);
	double interval = ladderd_ctx_num(t, "interval", 0);

	const cJSON *first = cJSON_GetArrayItem(ladderd_ctx_get(t, "sprites"),
	    0);
	const char *slash;

	/* The sheets are <dir>/sprite_<K>.jpg, K from 0. */
	if (!cJSON_IsString(first) || cols <= 0 || rows <= 0 ||
	    interval <= 0 ||
	    (slash = strrchr(first->valuestring, '/')) == NULL)
		return;
	av_bprintf(bp, "    <AdaptationSet id=\"%d\" contentType=\"image\" "
		       "mimeType=\"image/jpeg\">\n", id);
	av_bprintf(bp, "      <SegmentTemplate media=\"%.*s/"
		       "sprite_$Number$.jpg\" timescale=\"1000\" "
		       "duration=\"%.0f\" startNumber=\"0\"/>\n",
	    (int)(slash - first->valuestring), first->valuestring,
	    interval * cols * rows * 1000);
	av_bprintf(bp, "      <Representation id=\"thumbnails\" "
		       "bandwidth=\"%.0f\" width=\"%.0f\" height=\"%.0f\">\n",
	    fmax(ladderd_ctx_num(t, "bandwidth", 0), 1),
	    ladderd_ctx_num(t, "sprite_width", 0),
	    ladderd_ctx_num(t, "sprite_height", 0));
	av_bprintf(bp, "        <EssentialProperty schemeIdUri=\""
		       "http://dashif.org/thumbnail_tile\" value=\"%dx%d\"/>\n",
	    cols, rows);
	av_bprintf(bp, "      </Representation>\n    </AdaptationSet>\n");
}

/*
 * The video AdaptationSet: one Representation per video rung, the set's
 * maxWidth/maxHeight the largest of them. An audio-only package
 * (probe.audio_only) has none. `*id` is the next AdaptationSet id.
 */
static void
dash_mpd_video(AVBPrint *bp, const struct dash_rep *reps, size_t n,
    int *id)
{
	int max_w = 0, max_h = 0;
	size_t nb_video = 0;
	char fr[32];

	for (size_t i = 0; i < n; i++) {
		if (reps[i].audio)
			continue;
		nb_video++;
		max_w = FFMAX(max_w, reps[i].width);
		max_h = FFMAX(max_h, reps[i].height);
	}
	if (nb_video == 0)
		return;
	av_bprintf(bp, "    <AdaptationSet id=\"%d\" "
		       "contentType=\"video\" mimeType=\"video/mp4\" "
		       "segmentAlignment=\"true\" startWithSAP=\"1\" "
		       "maxWidth=\"%d\" maxHeight=\"%d\">\n",
	    (*id)++, max_w, max_h);
	for (size_t i = 0; i < n; i++) {
		if (reps[i].audio)
			continue;
		av_bprintf(bp, "      <Representation");
		dash_attr(bp, "id", reps[i].id);
		av_bprintf(bp, " bandwidth=\"%" PRId64 "\" width=\"%d\" "
			       "height=\"%d\"", reps[i].bandwidth,
		    reps[i].width, reps[i].height);
		dash_frame_rate(fr, sizeof(fr), reps[i].fps_num,
		    reps[i].fps_den);
		if (fr[0] != '\0')
			av_bprintf(bp, " frameRate=\"%s\"", fr);
		av_bprintf(bp, " sar=\"1:1\"");
		if (reps[i].codecs[0] != '\0')
			dash_attr(bp, "codecs", reps[i].codecs);
		av_bprintf(bp, ">\n");
		dash_template_xml(bp, &reps[i]);
		av_bprintf(bp, "      </Representation>\n");
	}
	av_bprintf(bp, "    </AdaptationSet>\n");
}

/*
 * One AdaptationSet per audio track, with its language, label and role
 * (a player picks among sets, not among Representations of one set).
 */
static void
dash_mpd_audio(AVBPrint *bp, const struct dash_rep *reps, size_t n,
    int *id)
{
	for (size_t i = 0; i < n; i++) {
		if (!reps[i].audio)
			continue;
		av_bprintf(bp, "    <AdaptationSet id=\"%d\" "
			       "contentType=\"audio\" mimeType=\"audio/mp4\"",
		    (*id)++);
		if (reps[i].lang[0] != '\0')
			dash_attr(bp, "lang", reps[i].lang);
		av_bprintf(bp, " segmentAlignment=\"true\" "
			       "startWithSAP=\"1\">\n");
		if (reps[i].label[0] != '\0') {
			av_bprintf(bp, "      <Label>");
			dash_text(bp, reps[i].label);
			av_bprintf(bp, "</Label>\n");
		}
		av_bprintf(bp, "      <Role "
			       "schemeIdUri=\"urn:mpeg:dash:role:2011\" "
			       "value=\"%s\"/>\n",
		    reps[i].main_track ? "main" : "alternate");
		av_bprintf(bp, "      <Representation");
		dash_attr(bp, "id", reps[i].id);
		av_bprintf(bp, " bandwidth=\"%" PRId64 "\"", reps[i].bandwidth);
		dash_attr(bp, "codecs",
		    reps[i].codecs[0] ? reps[i].codecs : "mp4a.40.2");
		av_bprintf(bp, " audioSamplingRate=\"%d\">\n",
		    reps[i].sample_rate);
		av_bprintf(bp, "        <AudioChannelConfiguration "
			       "schemeIdUri=\"urn:mpeg:dash:23003:3:"
			       "audio_channel_configuration:2011\" "
			       "value=\"%d\"/>\n", reps[i].channels);
		dash_template_xml(bp, &reps[i]);
		av_bprintf(bp, "      </Representation>\n");
		av_bprintf(bp, "    </AdaptationSet>\n");
	}
}

/*
 * Subtitles (stage subtitles): each track a sidecar WebVTT file, one
 * Representation with a BaseURL (Shaka and dash.js read it whole).
 */
static void
dash_mpd_subtitles(AVBPrint *bp, const cJSON *ctx, int *id)
{
	const cJSON *t;

	cJSON_ArrayForEach(t, ladderd_ctx_get(ctx, "subtitles.tracks")) {
		const char *vtt = ladderd_ctx_str(t, "vtt", NULL);
		const char *lang = ladderd_ctx_str(t, "language", NULL);

		if (vtt == NULL)
			continue;
		av_bprintf(bp, "    <AdaptationSet id=\"%d\" "
			       "contentType=\"text\" mimeType=\"text/vtt\"",
		    (*id)++);
		if (lang != NULL)
			dash_attr(bp, "lang", lang);
		av_bprintf(bp, ">\n      <Label>");
		dash_text(bp, ladderd_ctx_str(t, "label", ""));
		av_bprintf(bp, "</Label>\n");
		av_bprintf(bp, "      <Role "
			       "schemeIdUri=\"urn:mpeg:dash:role:2011\" "
			       "value=\"%s\"/>\n",
		    ladderd_ctx_bool(t, "forced", 0) ? "forced-subtitle" :
		    "subtitle");
		av_bprintf(bp, "      <Representation");
		dash_attr(bp, "id", ladderd_ctx_str(t, "name", "sub"));
		av_bprintf(bp, " bandwidth=\"1000\">\n        <BaseURL>");
		dash_text(bp, vtt);
		av_bprintf(bp, "</BaseURL>\n      </Representation>\n"
			       "    </AdaptationSet>\n");
	}
}

/* The whole MPD; returns its duration through ret_duration. */
static int
dash_mpd(AVBPrint *bp, const cJSON *ctx, struct dash_rep *reps, size_t n,
    int segdur, double *ret_duration)
{
	double duration = 0, max_seg = 0;
	int id = 0;

	for (size_t i = 0; i < n; i++) {
		if (dash_end(&reps[i]) > duration)
			duration = dash_end(&reps[i]);
		for (size_t j = 0; j < reps[i].nb_segs; j++)
			if ((double)reps[i].segs[j].d / reps[i].timescale >
			    max_seg)
				max_seg = (double)reps[i].segs[j].d /
				    reps[i].timescale;
	}
	av_bprintf(bp, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		       "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" "
		       "profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" "
		       "type=\"static\" "
		       "mediaPresentationDuration=\"PT%.3fS\" "
		       "maxSegmentDuration=\"PT%.3fS\" "
		       "minBufferTime=\"PT%dS\">\n",
	    duration, max_seg, 2 * segdur);
	av_bprintf(bp, "  <Period id=\"0\" start=\"PT0S\">\n");
	dash_mpd_video(bp, reps, n, &id);
	dash_mpd_audio(bp, reps, n, &id);
	dash_mpd_subtitles(bp, ctx, &id);
	dash_thumbnails(bp, ctx, id++);
	av_bprintf(bp, "  </Period>\n</MPD>\n");
	*ret_duration = duration;
	return av_bprint_is_complete(bp) ? 0 : -ENOMEM;
}

/* ctx.chunk_dash, built from the representations written. */
static cJSON *
dash_result(const struct dash_rep *reps, size_t n, const char *mpd_rel,
    const char *segment_type, double duration)
{
	cJSON *out = cJSON_CreateObject(), *arr = NULL;

	if (out == NULL)
		return NULL;
	cJSON_AddStringToObject(out, "mpd", mpd_rel);
	cJSON_AddStringToObject(out, "segment_type", segment_type);
	cJSON_AddNumberToObject(out, "duration", duration);
	arr = cJSON_AddArrayToObject(out, "representations");
	for (size_t i = 0; arr != NULL && i < n; i++) {
		cJSON *r = cJSON_CreateObject(), *segs;

		if (r == NULL || !cJSON_AddItemToArray(arr, r))
			goto fail;
		cJSON_AddStringToObject(r, "id", reps[i].id);
		cJSON_AddStringToObject(r, "kind",
		    reps[i].audio ? "audio" : "video");
		cJSON_AddNumberToObject(r, "timescale",
		    (double)reps[i].timescale);
		cJSON_AddStringToObject(r, "init", reps[i].init);
		cJSON_AddStringToObject(r, "media", reps[i].media);
		cJSON_AddNumberToObject(r, "start_number",
		    (double)reps[i].start_number);
		cJSON_AddNumberToObject(r, "bandwidth",
		    (double)reps[i].bandwidth);
		if ((segs = cJSON_AddArrayToObject(r, "segments")) == NULL)
			goto fail;
		for (size_t j = 0; j < reps[i].nb_segs; j++) {
			const struct dash_seg *s = &reps[i].segs[j];
			cJSON *o = cJSON_CreateObject();

			if (o == NULL || !cJSON_AddItemToArray(segs, o))
				goto fail;
			cJSON_AddStringToObject(o, "uri", s->uri);
			cJSON_AddNumberToObject(o, "start", (double)s->t);
			cJSON_AddNumberToObject(o, "length", (double)s->d);
			cJSON_AddNumberToObject(o, "bytes", (double)s->bytes);
		}
	}
	if (arr != NULL)
		return out;
fail:
	cJSON_Delete(out);
	return NULL;
}

/* `path` relative to `dir` when it lies inside it, else NULL. */
static const char *
dash_relative(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strncmp(path, dir, n) != 0 || path[n] != '/')
		return NULL;
	return path + n + 1;
}

/*
 * Name the package, the MPD and the DASH folder (`pkg`, `mpd`, `dash_dir`,
 * PATH_MAX each) and their parts relative to the package: segment URIs
 * are relative to it, so the MPD must live at its top, and mpegts writes
 * segments under `dash_dir` (*ret_dash_rel; NULL for fmp4). 0, or -1 with
 * the message recorded.
 */
static int
dash_paths(struct ladderd_call *call, int fmp4, char *pkg, char *mpd,
    char *dash_dir, const char **ret_mpd_rel, const char **ret_dash_rel)
{
	int err;

	if ((err = call->path(call, LADDERD_PATH_PACKAGE, NULL, pkg,
		 PATH_MAX)) < 0 ||
	    (err = call->path(call, LADDERD_PATH_MPD, NULL, mpd,
		 PATH_MAX)) < 0 ||
	    (err = call->path(call, LADDERD_PATH_DASH_DIR, NULL, dash_dir,
		 PATH_MAX)) < 0) {
		call->fail(call, "cannot compute the package paths: %s",
		    strerror(-err));
		return -1;
	}
	*ret_dash_rel = NULL;
	if ((*ret_mpd_rel = dash_relative(mpd, pkg)) == NULL ||
	    strchr(*ret_mpd_rel, '/') != NULL ||
	    (!fmp4 && (*ret_dash_rel = dash_relative(dash_dir, pkg)) ==
		NULL)) {
		call->fail(call, "'%s' is not at the top of the package '%s'",
		    mpd, pkg);
		return -1;
	}
	return 0;
}

/*
 * fmp4: describe rendition `r` as `rep` from the CMAF segments chunk_hls
 * wrote (no copy); an audio track also gets its language and the
 * configured channels and rate. LADDERD_OK, else the rc with the message
 * recorded.
 */
static enum ladderd_rc
dash_rep_fmp4(struct ladderd_call *call, const cJSON *r,
    struct dash_rep *rep)
{
	enum ladderd_rc rc;

	if ((rc = dash_rep_from_hls(call, r, rep)) != LADDERD_OK)
		return rc;
	if (rep->audio) {
		dash_audio_track(call->ctx, r, rep);
		rep->channels = (int)ladderd_setting_num(call->ctx,
		    encode_setting(ENC_AUDIO_CHANNELS));
		rep->sample_rate = (int)ladderd_setting_num(call->ctx,
		    encode_setting(ENC_AUDIO_SAMPLE_RATE));
	} else {
		dash_fps(call->ctx, r, rep);
	}
	return LADDERD_OK;
}

/*
 * mpegts: remux video rung `r` (named `name`) into fMP4 segments under
 * `dash_dir` as `rep`. Sets *audio_src to its transcoded file when it is
 * the first with sound (the audio set is cut from it once). LADDERD_OK,
 * else the rc with the message recorded.
 */
static enum ladderd_rc
dash_rep_mpegts(struct ladderd_call *call, const cJSON *r, const char *name,
    const char *dash_dir, const char *dash_rel, int segdur,
    struct dash_rep *rep, const char **audio_src)
{
	const char *src = ladderd_ctx_str(r, "transcode.path", NULL);
	enum ladderd_rc rc;

	if (src == NULL) {
		call->fail(call, "rung %s: no transcode.path", name);
		return LADDERD_FAIL;
	}
	if ((rc = dash_remux(call, src, AVMEDIA_TYPE_VIDEO, dash_dir,
		 dash_rel, segdur, rep)) != LADDERD_OK)
		return rc;
	rep->bandwidth = dash_peak(rep);
	dash_codec_part(ladderd_ctx_str(r, "hls_info.codecs", ""), 0,
	    rep->codecs, sizeof(rep->codecs));
	if (rep->codecs[0] == '\0')
		dash_avc_codecs(src, rep);
	if (*audio_src == NULL && ladderd_ctx_bool(r, "transcode.has_audio",
		ladderd_ctx_bool(call->ctx, "probe.has_audio", 0)))
		*audio_src = src;
	return LADDERD_OK;
}

/*
 * mpegts: the audio Representation, "audio", cut once from `src` (the
 * first video rung with sound) into dash/audio/. LADDERD_OK, else the rc
 * with the message recorded.
 */
static enum ladderd_rc
dash_rep_mpegts_audio(struct ladderd_call *call, const char *src,
    const char *dash_dir, const char *dash_rel, int segdur,
    struct dash_rep *rep)
{
	enum ladderd_rc rc;

	(void)snprintf(rep->id, sizeof(rep->id), "audio");
	rep->audio = 1;
	dash_audio_track(call->ctx, NULL, rep);
	if ((rc = dash_remux(call, src, AVMEDIA_TYPE_AUDIO, dash_dir,
		 dash_rel, segdur, rep)) != LADDERD_OK)
		return rc;
	rep->bandwidth = dash_peak(rep);
	(void)snprintf(rep->codecs, sizeof(rep->codecs), "mp4a.40.2");
	return LADDERD_OK;
}

static enum ladderd_rc
chunk_dash_run(void *state, struct ladderd_call *call)
{
	struct dash_rep reps[DASH_MAX_REPS];
	size_t nb_reps = 0, nb_video = 0, nb_ok = 0, done = 0;
	const cJSON *renditions = ladderd_ctx_get(call->ctx, "renditions");
	const cJSON *r;
	const char *segment_type =
	    ladderd_ctx_str(call->ctx, "profile.segment_type", "fmp4");
	const char *mpd_rel, *dash_rel = NULL, *audio_src = NULL;
	int segdur = (int)ladderd_ctx_num(call->ctx,
	    "profile.segment_duration", 0);
	int fmp4 = strcmp(segment_type, "fmp4") == 0, err;
	char pkg[PATH_MAX], mpd[PATH_MAX], dash_dir[PATH_MAX];
	enum ladderd_rc rc = LADDERD_FAIL;
	double duration = 0;
	cJSON *out = NULL;
	AVBPrint bp;

	(void)state;
	memset(reps, 0, sizeof(reps));
	av_bprint_init(&bp, 0, AV_BPRINT_SIZE_UNLIMITED);
	if (!ladderd_ctx_bool(call->ctx, "profile.dash", 0)) {
		rc = LADDERD_SKIP;
		goto out;
	}
	if (segdur <= 0) {
		call->fail(call, "profile.segment_duration must be positive");
		goto out;
	}
	if (!fmp4 && strcmp(segment_type, "mpegts") != 0) {
		call->fail(call, "unknown profile.segment_type '%s'",
		    segment_type);
		goto out;
	}
	if (dash_paths(call, fmp4, pkg, mpd, dash_dir, &mpd_rel,
		&dash_rel) < 0)
		goto out;
	cJSON_ArrayForEach(r, renditions) {
		const char *kind, *name = ladderd_rendition(r, &kind);
		int audio = strcmp(kind, "audio") == 0;
		struct dash_rep *rep;

		if (strcmp(ladderd_ctx_str(r, "status", ""), "ok") != 0)
			continue;
		nb_ok++;
		/* mpegts: audio is muxed into the video rungs */
		if (name == NULL || (audio && !fmp4))
			continue;
		if (nb_reps == DASH_MAX_REPS - 1) {
			call->fail(call, "more than %d renditions",
			    DASH_MAX_REPS - 1);
			goto out;
		}
		rep = &reps[nb_reps++];
		(void)snprintf(rep->id, sizeof(rep->id), "%s", name);
		rep->audio = audio;
		nb_video += !audio;
		rc = fmp4 ? dash_rep_fmp4(call, r, rep) :
		    dash_rep_mpegts(call, r, name, dash_dir, dash_rel, segdur,
			rep, &audio_src);
		if (rc != LADDERD_OK)
			goto out;
		rc = LADDERD_FAIL;
		if (!fmp4)
			call->progress(call,
			    (double)++done / (double)(nb_ok + 1));
	}
	if (nb_video == 0 && (nb_reps == 0 ||
	    !ladderd_ctx_bool(call->ctx, "probe.audio_only", 0))) {
		call->fail(call, "no video rendition to put in the MPD "
		    "(%zu ok of %d)", nb_ok, cJSON_GetArraySize(renditions));
		goto out;
	}
	if (audio_src != NULL) {
		if ((rc = dash_rep_mpegts_audio(call, audio_src, dash_dir,
			 dash_rel, segdur, &reps[nb_reps++])) != LADDERD_OK)
			goto out;
		rc = LADDERD_FAIL;
	}
	if (dash_mpd(&bp, call->ctx, reps, nb_reps, segdur, &duration) < 0) {
		call->fail(call, "out of memory building the MPD");
		goto out;
	}
	LADDERD_CRASH_POINT("chunk_dash.mpd", NULL);
	if ((err = call->write_atomic(call, mpd, bp.str, bp.len)) < 0) {
		call->fail(call, "cannot write '%s': %s", mpd, strerror(-err));
		rc = err == -ENOSPC || err == -EDQUOT ? LADDERD_RETRY :
		    LADDERD_FAIL;
		goto out;
	}
	if ((out = dash_result(reps, nb_reps, mpd_rel, segment_type,
		 duration)) == NULL ||
	    ladderd_ctx_set(call->ctx, "chunk_dash", out) < 0) {
		call->fail(call, "cannot store chunk_dash results");
		goto out;
	}
	out = NULL; /* the context owns it now */
	call->progress(call, 1.0);
	rc = LADDERD_OK;
out:
	cJSON_Delete(out);
	av_bprint_finalize(&bp, NULL);
	for (size_t i = 0; i < nb_reps; i++)
		av_freep(&reps[i].segs);
	return rc;
}

LADDERD_STAGE_DEFINE("chunk_dash", "1.0", "packaging", NULL, chunk_dash_run,
    NULL);

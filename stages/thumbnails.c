/*
 * stages/thumbnails.c - the package's poster and seek-bar thumbnails
 * (post stage, before hls_footer and chunk_dash, which reference them).
 *
 *   thumbs/sprite_K.jpg   JPEG sprite sheets: profile.thumbnails.columns x
 *                         rows tiles of `width` px (height from the rung's
 *                         aspect, even), one tile every `interval` seconds:
 *                         tile k shows the first frame at or after
 *                         k * interval; unused tiles of the last sheet are
 *                         black (every sheet has the same size: the MPD's
 *                         Representation gives one width and height).
 *   thumbs/thumbnails.vtt WebVTT thumbnail track, one cue per tile:
 *                         "sprite_K.jpg#xywh=x,y,w,h".
 *   thumbs/images.m3u8    HLS image media playlist (Apple/Roku "Image Media
 *                         Playlists": EXT-X-IMAGES-ONLY, EXT-X-TILES), that
 *                         hls_footer lists with EXT-X-IMAGE-STREAM-INF;
 *                         chunk_dash adds a DASH-IF thumbnail AdaptationSet
 *                         over the same sheets.
 *   poster.jpg            a representative frame at the top rung's size.
 *
 * The frames come from the package's own rungs, not from the source: they
 * are already rotated, deinterlaced and tone mapped, and a small rung is
 * cheap to decode. The tiles are cut from the smallest video rung at least
 * `width` wide (else the widest), read as init.mp4 + segments (or the TS
 * segments) through one concatenating reader. Only the frames the tiles
 * and the fade checks below need, and the reference frames they decode
 * from, are decoded (a 30 s 360p rung at 5 s a tile: 484 of 900).
 *
 * The poster: every tile time between 10 % and 90 % of the duration is a
 * candidate, scored on the luma of the sprite rung's frame there. Refused:
 * black or white frames (mean luma below 40 or above 220) and fades (mean
 * luma moves by more than 1.5 levels within the next 0.2 s: a fade moves
 * it steadily, a still or moving scene barely). Of the rest, the frame with
 * the highest luma histogram entropy (the most detail, a fade's compressed
 * histogram scores low) wins, the earliest on a tie; with none left, the
 * highest entropy of all. That time is then decoded from the top rung (the
 * segment holding it and the next; past the last frame, the last frame)
 * and encoded as poster.jpg.
 *
 * Reads profile.thumbnails.{sprites, poster, interval, width, columns,
 * rows}, ctx.renditions (video, status ok: chunk_hls.{init, segments,
 * segment_type, duration}, hls_info.resolution). Adds ctx.thumbnails =
 * { poster: { uri, time, rung, mean_luma, entropy }, vtt, playlist,
 * sprites: [uri...], rung, interval, tile_width, tile_height, columns,
 * rows, count, sprite_width, sprite_height, bandwidth, cpu_seconds }; logs
 * one info line with the count, the poster's time, how many of the
 * sprite rung's frames it decoded and the CPU it took (getrusage of the
 * job process). Paths come from the layout
 * (call->path: LADDERD_PATH_POSTER, LADDERD_PATH_THUMBS_DIR). Skips when
 * both are off, or when there is no video rendition; then (probe.audio_only,
 * a song) the source's cover art, an attached picture, becomes poster.jpg
 * (poster.from "cover_art"). Fails when a rung cannot be decoded; a full
 * disk is a retry.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#include "avlog.h"
#include "source.h"
#include "stage.h"
#include "textbuf.h"

enum { TH_SPRITES, TH_POSTER, TH_INTERVAL, TH_WIDTH, TH_COLUMNS, TH_ROWS,
	TH__COUNT };

/* The profile's thumbnails = { ... } group (ladderd-stages(7)). */
static const struct ladderd_setting thumbnails_settings[TH__COUNT + 1] = {
	[TH_SPRITES] = { "profile.thumbnails.sprites", LADDERD_SETTING_BOOL,
	    "true", 0, 0, NULL, "seek-bar sprite sheets and thumbnails.vtt" },
	[TH_POSTER] = { "profile.thumbnails.poster", LADDERD_SETTING_BOOL,
	    "true", 0, 0, NULL, "poster.jpg, a frame picked by luma" },
	[TH_INTERVAL] = { "profile.thumbnails.interval",
	    LADDERD_SETTING_FLOAT, "5", 0.5, 3600, NULL,
	    "seconds between sprite tiles" },
	[TH_WIDTH] = { "profile.thumbnails.width", LADDERD_SETTING_INT, "160",
	    16, 1920, NULL, "tile width in pixels (made even)" },
	[TH_COLUMNS] = { "profile.thumbnails.columns", LADDERD_SETTING_INT,
	    "5", 1, 50, NULL, "tiles per sprite row" },
	[TH_ROWS] = { "profile.thumbnails.rows", LADDERD_SETTING_INT, "5", 1,
	    50, NULL, "tile rows per sprite sheet" },
	[TH__COUNT] = { NULL, 0, NULL, 0, 0, NULL, NULL },
};

#define THUMBS_MAX_TILES 100000 /* a day at one tile a second */
#define THUMBS_FADE_GAP 0.2	/* s: how far a fade is looked for */
#define THUMBS_FADE_DELTA 1.5	/* mean luma levels within the gap */
#define THUMBS_DARK 40.0
#define THUMBS_BRIGHT 220.0

/* Files read one after another as one stream (init + segments). */
struct thumbs_cat {
	char **paths;
	size_t n, i;
	int fd;
};

/* One decoded rung. */
struct thumbs_in {
	struct thumbs_cat cat;
	AVFormatContext *fmt;
	AVIOContext *pb;
	AVCodecContext *dec;
	AVPacket *pkt;
	AVFrame *frame;
	int stream;
	int64_t first_pts; /* AV_NOPTS_VALUE until the first frame */
	int64_t first_pkt; /* pts of the first packet (the keyframe) */
	/* s from the first frame: a frame before this that no other frame
	 * refers to is not decoded (the poster needs one frame, not the
	 * segment's B-frames before it); 0 = decode all. */
	double skip_before;
	int eof;
	long packets; /* video packets read */
	long frames;  /* frames decoded (the rest were skipped) */
};

/* Per-tile luma figures, for the poster. */
struct thumbs_score {
	double t;     /* s: time of the frame scored */
	double mean;  /* mean luma */
	double entropy;
	double delta; /* |mean luma change| within THUMBS_FADE_GAP, NAN = ? */
};

static int
thumbs_cat_read(void *opaque, uint8_t *buf, int size)
{
	struct thumbs_cat *c = opaque;

	while (c->i < c->n) {
		ssize_t n;

		if (c->fd < 0 && (c->fd = open(c->paths[c->i],
				      O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
			return AVERROR(errno);
		if ((n = read(c->fd, buf, (size_t)size)) < 0)
			return AVERROR(errno);
		if (n > 0)
			return (int)n;
		close(c->fd);
		c->fd = -1;
		c->i++;
	}
	return AVERROR_EOF;
}

static void
thumbs_in_close(struct thumbs_in *in)
{
	avcodec_free_context(&in->dec);
	avformat_close_input(&in->fmt);
	if (in->pb != NULL)
		av_freep(&in->pb->buffer);
	avio_context_free(&in->pb);
	av_packet_free(&in->pkt);
	av_frame_free(&in->frame);
	if (in->cat.fd >= 0)
		close(in->cat.fd);
	for (size_t i = 0; i < in->cat.n; i++)
		free(in->cat.paths[i]);
	free(in->cat.paths);
	memset(in, 0, sizeof(*in));
	in->cat.fd = -1;
}

/* Append pkg/rel to the reader's files; rel must stay in the package. */
static int
thumbs_cat_add(struct thumbs_cat *c, const char *pkg, const char *rel)
{
	char **p;
	size_t len;

	if (rel == NULL || rel[0] == '/' || strstr(rel, "..") != NULL)
		return -EINVAL;
	if ((p = realloc(c->paths, (c->n + 1) * sizeof(*p))) == NULL)
		return -ENOMEM;
	c->paths = p;
	len = strlen(pkg) + strlen(rel) + 2;
	if ((p[c->n] = malloc(len)) == NULL)
		return -ENOMEM;
	(void)snprintf(p[c->n], len, "%s/%s", pkg, rel);
	c->n++;
	return 0;
}

/*
 * Open rendition `r` for decoding: its init segment (fMP4) and segments
 * [first, last) of chunk_hls.segments. Returns 0 or fails the call.
 */
static int
thumbs_in_open(struct ladderd_call *call, struct thumbs_in *in,
    const char *pkg, const cJSON *r, int first, int last)
{
	const char *type = ladderd_ctx_str(r, "chunk_hls.segment_type",
	    "fmp4");
	int fmp4 = strcmp(type, "mpegts") != 0, err, i = 0;
	const AVCodec *codec = NULL;
	const cJSON *s;
	uint8_t *buf = NULL;

	memset(in, 0, sizeof(*in));
	in->cat.fd = -1;
	in->first_pts = AV_NOPTS_VALUE;
	in->first_pkt = AV_NOPTS_VALUE;
	if (fmp4 && (err = thumbs_cat_add(&in->cat, pkg,
			 ladderd_ctx_str(r, "chunk_hls.init", NULL))) < 0)
		goto bad;
	cJSON_ArrayForEach(s, ladderd_ctx_get(r, "chunk_hls.segments")) {
		if (i >= first && i < last &&
		    (err = thumbs_cat_add(&in->cat, pkg,
			 ladderd_ctx_str(s, "uri", NULL))) < 0)
			goto bad;
		i++;
	}
	if (in->cat.n == 0 || (fmp4 && in->cat.n == 1)) {
		err = -ENOENT;
		goto bad;
	}
	if ((buf = av_malloc(65536)) == NULL ||
	    (in->pb = avio_alloc_context(buf, 65536, 0, &in->cat,
		 thumbs_cat_read, NULL, NULL)) == NULL ||
	    (in->fmt = avformat_alloc_context()) == NULL ||
	    (in->pkt = av_packet_alloc()) == NULL ||
	    (in->frame = av_frame_alloc()) == NULL) {
		if (in->pb == NULL)
			av_free(buf);
		err = -ENOMEM;
		goto bad;
	}
	in->fmt->pb = in->pb;
	in->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
	/* Our own files, read in one pass: no protocol, one demuxer. */
	if ((err = avformat_open_input(&in->fmt, NULL,
		 av_find_input_format(fmp4 ? "mov" : "mpegts"), NULL)) < 0 ||
	    (err = avformat_find_stream_info(in->fmt, NULL)) < 0 ||
	    (err = in->stream = av_find_best_stream(in->fmt,
		 AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0)) < 0)
		goto av_bad;
	if ((in->dec = avcodec_alloc_context3(codec)) == NULL) {
		err = -ENOMEM;
		goto bad;
	}
	in->dec->thread_count = call->threads > 0 ? call->threads : 1;
	if ((err = avcodec_parameters_to_context(in->dec,
		 in->fmt->streams[in->stream]->codecpar)) < 0 ||
	    (err = avcodec_open2(in->dec, codec, NULL)) < 0)
		goto av_bad;
	return 0;
av_bad:
	call->fail(call, "cannot decode rung '%s': %s",
	    ladderd_rendition(r, NULL), av_err2str(err));
	return -EIO;
bad:
	call->fail(call, "cannot read rung '%s': %s",
	    ladderd_rendition(r, NULL), strerror(-err));
	return err;
}

/*
 * Before in->pkt goes to the decoder: skip it if it is a non-reference
 * frame wholly before in->skip_before (the decoder's threads take the
 * setting with the packet).
 */
static void
thumbs_in_skip(struct thumbs_in *in, AVRational tb)
{
	int64_t pts = in->pkt->pts;
	int64_t base = in->first_pts != AV_NOPTS_VALUE ? in->first_pts
						       : in->first_pkt;

	if (in->first_pkt == AV_NOPTS_VALUE)
		in->first_pkt = pts;
	in->dec->skip_frame = in->skip_before > 0 && pts != AV_NOPTS_VALUE &&
		base != AV_NOPTS_VALUE &&
		(double)(pts - base) * av_q2d(tb) +
			(double)in->pkt->duration * av_q2d(tb) / 2 <
		    in->skip_before
	    ? AVDISCARD_NONREF
	    : AVDISCARD_DEFAULT;
}

/*
 * The next frame in in->frame, its time in *ret_t (s, from the first
 * frame). 1: a frame, 0: the end, negative: an error (AVERROR).
 */
static int
thumbs_in_next(struct thumbs_in *in, double *ret_t)
{
	AVRational tb = in->fmt->streams[in->stream]->time_base;
	int err;

	for (;;) {
		av_frame_unref(in->frame);
		err = avcodec_receive_frame(in->dec, in->frame);
		if (err == 0) {
			int64_t pts = in->frame->best_effort_timestamp;

			if (pts == AV_NOPTS_VALUE)
				pts = in->first_pts == AV_NOPTS_VALUE ? 0 :
				    in->first_pts;
			if (in->first_pts == AV_NOPTS_VALUE)
				in->first_pts = pts;
			*ret_t = (double)(pts - in->first_pts) * av_q2d(tb);
			in->frames++;
			return 1;
		}
		if (err == AVERROR_EOF)
			return 0;
		if (err != AVERROR(EAGAIN))
			return err;
		if (in->eof) {
			if ((err = avcodec_send_packet(in->dec, NULL)) < 0 &&
			    err != AVERROR_EOF)
				return err;
			continue;
		}
		av_packet_unref(in->pkt);
		err = av_read_frame(in->fmt, in->pkt);
		if (err == AVERROR_EOF) {
			in->eof = 1;
			continue;
		}
		if (err < 0)
			return err;
		if (in->pkt->stream_index != in->stream)
			continue;
		in->packets++;
		thumbs_in_skip(in, tb);
		/* A damaged packet is the decoder's to conceal. */
		if ((err = avcodec_send_packet(in->dec, in->pkt)) < 0 &&
		    err != AVERROR_INVALIDDATA)
			return err;
	}
}

/* Mean luma and histogram entropy (bits) of a frame, on a sample grid. */
static void
thumbs_luma(const AVFrame *f, double *ret_mean, double *ret_entropy)
{
	unsigned hist[256] = { 0 };
	int sx = f->width / 128 > 1 ? f->width / 128 : 1;
	int sy = f->height / 72 > 1 ? f->height / 72 : 1;
	double sum = 0, n = 0, e = 0;

	for (int y = 0; y < f->height; y += sy) {
		const uint8_t *row = f->data[0] + (ptrdiff_t)y * f->linesize[0];

		for (int x = 0; x < f->width; x += sx) {
			hist[row[x]]++;
			sum += row[x];
			n++;
		}
	}
	for (int i = 0; i < 256 && n > 0; i++)
		if (hist[i] > 0)
			e -= hist[i] / n * log2(hist[i] / n);
	*ret_mean = n > 0 ? sum / n : 0;
	*ret_entropy = e;
}

/* Encode a YUVJ420P frame as JPEG (qscale q) and write it atomically. */
static int
thumbs_jpeg(struct ladderd_call *call, const AVFrame *f, int q,
    const char *path)
{
	const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
	AVCodecContext *enc = NULL;
	AVPacket *pkt = NULL;
	AVFrame *in = NULL;
	int err;

	if (codec == NULL) {
		call->fail(call, "libavcodec has no JPEG encoder");
		return -ENOSYS;
	}
	if ((enc = avcodec_alloc_context3(codec)) == NULL ||
	    (pkt = av_packet_alloc()) == NULL ||
	    (in = av_frame_clone(f)) == NULL) {
		err = AVERROR(ENOMEM);
		goto av_bad;
	}
	enc->width = f->width;
	enc->height = f->height;
	enc->pix_fmt = AV_PIX_FMT_YUVJ420P;
	enc->color_range = AVCOL_RANGE_JPEG;
	enc->time_base = (AVRational){ 1, 25 };
	enc->flags |= AV_CODEC_FLAG_QSCALE;
	enc->global_quality = FF_QP2LAMBDA * q;
	in->quality = enc->global_quality;
	in->pts = 0;
	if ((err = avcodec_open2(enc, codec, NULL)) < 0 ||
	    (err = avcodec_send_frame(enc, in)) < 0 ||
	    (err = avcodec_send_frame(enc, NULL)) < 0 ||
	    (err = avcodec_receive_packet(enc, pkt)) < 0)
		goto av_bad;
	if ((err = call->write_atomic(call, path, pkt->data,
		 (size_t)pkt->size)) < 0) {
		call->fail(call, "cannot write '%s': %s", path, strerror(-err));
		goto out;
	}
	err = pkt->size;
	goto out;
av_bad:
	call->fail(call, "cannot encode '%s': %s", path, av_err2str(err));
	err = -EIO;
out:
	av_frame_free(&in);
	av_packet_free(&pkt);
	avcodec_free_context(&enc);
	return err;
}

/* A blank (black) YUVJ420P picture. */
static AVFrame *
thumbs_canvas(int w, int h)
{
	AVFrame *f = av_frame_alloc();

	if (f == NULL)
		return NULL;
	f->format = AV_PIX_FMT_YUVJ420P;
	f->width = w;
	f->height = h;
	f->color_range = AVCOL_RANGE_JPEG;
	if (av_frame_get_buffer(f, 0) < 0) {
		av_frame_free(&f);
		return NULL;
	}
	for (int y = 0; y < h; y++)
		memset(f->data[0] + (ptrdiff_t)y * f->linesize[0], 0,
		    (size_t)w);
	for (int p = 1; p < 3; p++)
		for (int y = 0; y < h / 2; y++)
			memset(f->data[p] + (ptrdiff_t)y * f->linesize[p], 128,
			    (size_t)w / 2);
	return f;
}

/* Scale `src` into the w x h area of `dst` at (x, y) (even numbers). */
static int
thumbs_place(struct SwsContext **sws, const AVFrame *src, AVFrame *dst,
    int x, int y, int w, int h)
{
	uint8_t *planes[4] = { NULL };
	int strides[4] = { 0 };

	*sws = sws_getCachedContext(*sws, src->width, src->height,
	    (enum AVPixelFormat)src->format, w, h, AV_PIX_FMT_YUVJ420P,
	    SWS_AREA, NULL, NULL, NULL);
	if (*sws == NULL)
		return -EINVAL;
	planes[0] = dst->data[0] + (ptrdiff_t)y * dst->linesize[0] + x;
	planes[1] = dst->data[1] + (ptrdiff_t)(y / 2) * dst->linesize[1] +
	    x / 2;
	planes[2] = dst->data[2] + (ptrdiff_t)(y / 2) * dst->linesize[2] +
	    x / 2;
	for (int p = 0; p < 3; p++)
		strides[p] = dst->linesize[p];
	return sws_scale(*sws, (const uint8_t *const *)src->data,
		   src->linesize, 0, src->height, planes, strides) > 0 ?
	    0 :
	    -EINVAL;
}

/* "00:00:05.000" */
static void
thumbs_vtt_time(struct textbuf *b, double t)
{
	long long ms = llround(t * 1000);

	textbuf_printf(b, "%02lld:%02lld:%02lld.%03lld", ms / 3600000,
	    ms / 60000 % 60, ms / 1000 % 60, ms % 1000);
}

/* The rung's size from hls_info.resolution ("WxH"); 0 when unknown. */
static int
thumbs_size(const cJSON *r, int *w, int *h)
{
	const char *res = ladderd_ctx_str(r, "hls_info.resolution", "");

	if (sscanf(res, "%dx%d", w, h) != 2 || *w <= 0 || *h <= 0)
		return 0;
	return 1;
}

struct thumbs_job {
	struct ladderd_call *call;
	char pkg[4096];
	char dir[4096];	   /* call->path(THUMBS_DIR) */
	const char *rel;   /* dir, relative to pkg */
	char poster[4096]; /* call->path(POSTER) */
	const cJSON *sprite_rung, *poster_rung;
	double duration, interval;
	int tw, th, cols, rows, count, sprites, poster_on;
	struct thumbs_score *score;
	cJSON *uris;   /* sprite URIs, package-relative */
	double peak;   /* bit/s of the largest sheet over its time span */
	int best;      /* poster tile, -1 = none */
	long read, decoded; /* the pass's frames: in the rung, decoded */
};

/* Write sheet `k` (tiles [k * per, ...)) and record its URI. */
static int
thumbs_sheet_write(struct thumbs_job *j, AVFrame *sheet, int k)
{
	char path[4400], uri[4200];
	double span = j->interval * j->cols * j->rows;
	double left = j->duration - k * span;
	int n;

	(void)snprintf(path, sizeof(path), "%s/sprite_%d.jpg", j->dir, k);
	(void)snprintf(uri, sizeof(uri), "%s/sprite_%d.jpg", j->rel, k);
	if ((n = thumbs_jpeg(j->call, sheet, 5, path)) < 0)
		return n;
	if (left < span)
		span = left > j->interval ? left : j->interval;
	if (n * 8.0 / span > j->peak)
		j->peak = n * 8.0 / span;
	if (!cJSON_AddItemToArray(j->uris, cJSON_CreateString(uri))) {
		j->call->fail(j->call, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/*
 * Put `f` into tile k (time k * interval): a new sheet starts at every
 * columns x rows tiles, the one before it is written first. Returns 0 or
 * a negative errno (the call has the message).
 */
static int
thumbs_tile(struct thumbs_job *j, AVFrame **sheet, struct SwsContext **sws,
    const AVFrame *f, int k, double t)
{
	int per = j->cols * j->rows, err;

	j->score[k].t = t;
	thumbs_luma(f, &j->score[k].mean, &j->score[k].entropy);
	if (!j->sprites)
		return 0;
	if (k % per == 0) {
		if (*sheet != NULL &&
		    (err = thumbs_sheet_write(j, *sheet, k / per - 1)) < 0)
			return err;
		av_frame_free(sheet);
		if ((*sheet = thumbs_canvas(j->tw * j->cols,
			 j->th * j->rows)) == NULL) {
			j->call->fail(j->call, "out of memory");
			return -ENOMEM;
		}
	}
	if (thumbs_place(sws, f, *sheet, (k % per) % j->cols * j->tw,
		(k % per) / j->cols * j->th, j->tw, j->th) < 0) {
		j->call->fail(j->call, "cannot scale a %dx%d frame", f->width,
		    f->height);
		return -EINVAL;
	}
	return 0;
}

/*
 * The next time the pass needs a frame at, for in->skip_before: the next
 * tile's or the next fade check's, whichever comes first. A frame before
 * it that no other frame refers to is not decoded; the reference frames
 * are, so every frame after them decodes right. The rung's last second is
 * decoded whole: tiles past the last frame show that frame.
 */
static double
thumbs_next_need(const struct thumbs_job *j, int k, int pend)
{
	double need = j->duration - 1.0;

	if (k < j->count)
		need = fmin(need, k * j->interval - 5e-4);
	if (pend < k)
		need = fmin(need, j->score[pend].t + THUMBS_FADE_GAP);
	return need > 0 ? need : 0;
}

/*
 * One pass over the sprite rung: fill the sheets (when j->sprites) and
 * score every tile time (for the poster).
 */
static enum ladderd_rc
thumbs_pass(struct thumbs_job *j)
{
	struct ladderd_call *call = j->call;
	struct thumbs_in in;
	struct SwsContext *sws = NULL;
	AVFrame *sheet = NULL, *last = NULL;
	int k = 0, pend = 0, err;
	enum ladderd_rc rc = LADDERD_FAIL;
	double t = 0;

	if (thumbs_in_open(call, &in, j->pkg, j->sprite_rung, 0, INT32_MAX) <
	    0)
		goto out;
	if ((last = av_frame_alloc()) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	for (;;) {
		err = thumbs_in_next(&in, &t);
		if (err < 0) {
			call->fail(call, "cannot decode rung '%s': %s",
			    ladderd_rendition(j->sprite_rung, NULL),
			    av_err2str(err));
			goto out;
		}
		if (err == 0)
			break;
		/* The fade check of the tiles scored before this frame. */
		while (pend < k && t >= j->score[pend].t + THUMBS_FADE_GAP) {
			double m, e;

			thumbs_luma(in.frame, &m, &e);
			j->score[pend].delta = fabs(m - j->score[pend].mean);
			pend++;
		}
		/* Half a millisecond early still counts as on time. */
		for (; k < j->count && t >= k * j->interval - 5e-4; k++)
			if ((err = thumbs_tile(j, &sheet, &sws, in.frame, k,
				 t)) < 0)
				goto tile_bad;
		in.skip_before = thumbs_next_need(j, k, pend);
		av_frame_unref(last);
		if (av_frame_ref(last, in.frame) < 0) {
			call->fail(call, "out of memory");
			goto out;
		}
		if (call->cancelled(call)) {
			rc = LADDERD_RETRY;
			goto out;
		}
		call->progress(call, fmin(t / j->duration, 1.0) * 0.8);
	}
	if (last->data[0] == NULL) {
		call->fail(call, "rung '%s' has no frame",
		    ladderd_rendition(j->sprite_rung, NULL));
		goto out;
	}
	/* Tiles past the last frame show it (a cue of the last instant). */
	for (; k < j->count; k++)
		if ((err = thumbs_tile(j, &sheet, &sws, last, k, t)) < 0)
			goto tile_bad;
	if (sheet != NULL && (err = thumbs_sheet_write(j, sheet,
				  (j->count - 1) / (j->cols * j->rows))) < 0)
		goto tile_bad;
	j->read = in.packets;
	j->decoded = in.frames;
	rc = LADDERD_OK;
	goto out;
tile_bad:
	/* Reported already; a full disk passes. */
	rc = err == -ENOSPC ? LADDERD_RETRY : LADDERD_FAIL;
out:
	sws_freeContext(sws);
	av_frame_free(&sheet);
	av_frame_free(&last);
	thumbs_in_close(&in);
	return rc;
}

/* The poster's tile (see the top of the file). */
static int
thumbs_pick(const struct thumbs_job *j)
{
	int best = -1, any = -1;

	for (int k = 0; k < j->count; k++) {
		const struct thumbs_score *s = &j->score[k];
		double at = k * j->interval;

		if (any < 0 || s->entropy > j->score[any].entropy)
			any = k;
		if (j->count > 2 &&
		    (at < 0.1 * j->duration || at > 0.9 * j->duration))
			continue;
		if (s->mean < THUMBS_DARK || s->mean > THUMBS_BRIGHT ||
		    (!isnan(s->delta) && s->delta > THUMBS_FADE_DELTA))
			continue;
		if (best < 0 || s->entropy > j->score[best].entropy)
			best = k;
	}
	return best >= 0 ? best : any;
}

/* Decode the top rung at the poster's time and write poster.jpg. */
static enum ladderd_rc
thumbs_poster(struct thumbs_job *j, double at, cJSON *out)
{
	struct ladderd_call *call = j->call;
	const cJSON *s;
	struct thumbs_in in;
	struct SwsContext *sws = NULL;
	AVFrame *pic = NULL, *last = NULL;
	double start = 0, t = 0;
	int seg = 0, i = 0, err, w, h;
	enum ladderd_rc rc = LADDERD_FAIL;
	cJSON *p;

	/* The segment holding `at` (each starts with a keyframe). */
	cJSON_ArrayForEach(s, ladderd_ctx_get(j->poster_rung,
		"chunk_hls.segments")) {
		double d = ladderd_ctx_num(s, "duration", 0);

		if (at >= start + d - 1e-6 && s->next != NULL) {
			start += d;
			i++;
			continue;
		}
		seg = i;
		break;
	}
	/*
	 * And the next one: `at` may fall after the segment's last frame
	 * (29.97 fps: the segment holding 6.0 s ends with the frame at
	 * 5.972 s, the next starts at 6.006 s), and the tile thumbs_pass
	 * scored is the first frame at or after `at`.
	 */
	if (thumbs_in_open(call, &in, j->pkg, j->poster_rung, seg, seg + 2) <
	    0)
		goto out;
	/* The first frame at or after `at`; past the end, the last one (as
	 * thumbs_pass fills tiles past the last frame). */
	if ((last = av_frame_alloc()) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	/* Frames before `at` are only decoded as references of the one at
	 * `at` - unless `at` may lie past the last frame (then the last is
	 * the poster, as it was the tile). */
	if (at < j->duration - 1.0)
		in.skip_before = at - start;
	while ((err = thumbs_in_next(&in, &t)) == 1) {
		av_frame_unref(last);
		if ((err = av_frame_ref(last, in.frame)) < 0)
			break;
		if (start + t >= at - 5e-4)
			break;
	}
	if (err < 0 || last->data[0] == NULL) {
		call->fail(call, "cannot decode the poster frame of rung '%s': "
		    "%s", ladderd_rendition(j->poster_rung, NULL),
		    err < 0 ? av_err2str(err) : "no frame");
		goto out;
	}
	w = last->width & ~1;
	h = last->height & ~1;
	if ((pic = thumbs_canvas(w, h)) == NULL ||
	    thumbs_place(&sws, last, pic, 0, 0, w, h) < 0) {
		call->fail(call, "cannot convert the poster frame");
		goto out;
	}
	if ((err = thumbs_jpeg(call, pic, 2, j->poster)) < 0) {
		rc = err == -ENOSPC ? LADDERD_RETRY : LADDERD_FAIL;
		goto out;
	}
	if ((p = cJSON_AddObjectToObject(out, "poster")) == NULL ||
	    cJSON_AddStringToObject(p, "uri", j->poster + strlen(j->pkg) + 1) ==
		NULL ||
	    cJSON_AddNumberToObject(p, "time", round((start + t) * 1e3) /
		1e3) == NULL ||
	    cJSON_AddStringToObject(p, "rung",
		ladderd_rendition(j->poster_rung, NULL)) == NULL ||
	    cJSON_AddNumberToObject(p, "width", w) == NULL ||
	    cJSON_AddNumberToObject(p, "height", h) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	if (j->best >= 0 &&
	    (cJSON_AddNumberToObject(p, "mean_luma",
		 round(j->score[j->best].mean * 100) / 100) == NULL ||
		cJSON_AddNumberToObject(p, "entropy",
		    round(j->score[j->best].entropy * 1000) / 1000) == NULL)) {
		call->fail(call, "out of memory");
		goto out;
	}
	rc = LADDERD_OK;
out:
	sws_freeContext(sws);
	av_frame_free(&pic);
	av_frame_free(&last);
	thumbs_in_close(&in);
	return rc;
}

/*
 * A source without video (probe.audio_only) with cover art: the attached
 * picture, decoded (at most profile.max_pixels) and written as
 * poster.jpg. The source is read through source.c like every media stage.
 */
static enum ladderd_rc
thumbs_cover(struct thumbs_job *j, cJSON *out)
{
	struct ladderd_call *call = j->call;
	struct ladderd_source src = LADDERD_SOURCE_INIT;
	const char *path = ladderd_ctx_str(call->ctx, "input.path", NULL);
	const AVStream *st = NULL;
	const AVCodec *codec;
	AVCodecContext *dec = NULL;
	struct SwsContext *sws = NULL;
	AVFrame *f = NULL, *pic = NULL;
	enum ladderd_rc rc = LADDERD_FAIL;
	char msg[1024];
	cJSON *p;
	int err;

	if (path == NULL) {
		call->fail(call, "context has no input.path");
		goto out;
	}
	if (ladderd_source_open(&src, path, NULL, NULL, msg, sizeof(msg)) <
	    0) {
		call->fail(call, "%s", msg);
		goto out;
	}
	for (unsigned i = 0; i < src.fmt->nb_streams && st == NULL; i++)
		if (src.fmt->streams[i]->disposition &
		    AV_DISPOSITION_ATTACHED_PIC)
			st = src.fmt->streams[i];
	if (st == NULL || st->attached_pic.size <= 0 ||
	    (codec = avcodec_find_decoder(st->codecpar->codec_id)) == NULL) {
		rc = LADDERD_SKIP; /* none, or nothing decodes it */
		goto out;
	}
	if ((dec = avcodec_alloc_context3(codec)) == NULL ||
	    (f = av_frame_alloc()) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	/* The picture is the drop's: no larger than the profile allows. */
	dec->max_pixels = (int64_t)ladderd_ctx_num(call->ctx,
	    "profile.max_pixels", LADDERD_SOURCE_MAX_PIXELS);
	if ((err = avcodec_parameters_to_context(dec, st->codecpar)) < 0 ||
	    (err = avcodec_open2(dec, codec, NULL)) < 0 ||
	    (err = avcodec_send_packet(dec, &st->attached_pic)) < 0 ||
	    (err = avcodec_send_packet(dec, NULL)) < 0 ||
	    (err = avcodec_receive_frame(dec, f)) < 0 || f->width < 2 ||
	    f->height < 2) {
		/* A cover that does not decode is no reason to fail. */
		call->log(call, LADDERD_LOG_WARN, "cover art of '%s' does not "
		    "decode (%s), no poster", path,
		    err < 0 ? av_err2str(err) : "too small");
		rc = LADDERD_SKIP;
		goto out;
	}
	if ((pic = thumbs_canvas(f->width & ~1, f->height & ~1)) == NULL ||
	    thumbs_place(&sws, f, pic, 0, 0, pic->width, pic->height) < 0) {
		call->fail(call, "cannot convert the cover art");
		goto out;
	}
	if ((err = call->mkdirs(call, j->pkg)) < 0)
		call->fail(call, "cannot create '%s': %s", j->pkg,
		    strerror(-err));
	else
		err = thumbs_jpeg(call, pic, 2, j->poster); /* fails the call */
	if (err < 0) {
		rc = err == -ENOSPC ? LADDERD_RETRY : LADDERD_FAIL;
		goto out;
	}
	if ((p = cJSON_AddObjectToObject(out, "poster")) == NULL ||
	    cJSON_AddStringToObject(p, "uri", j->poster + strlen(j->pkg) + 1) ==
		NULL ||
	    cJSON_AddStringToObject(p, "from", "cover_art") == NULL ||
	    cJSON_AddNumberToObject(p, "width", pic->width) == NULL ||
	    cJSON_AddNumberToObject(p, "height", pic->height) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	rc = LADDERD_OK;
out:
	sws_freeContext(sws);
	av_frame_free(&pic);
	av_frame_free(&f);
	avcodec_free_context(&dec);
	ladderd_source_close(&src);
	return rc;
}

/* thumbnails.vtt and images.m3u8 over the sheets written. */
static enum ladderd_rc
thumbs_playlists(struct thumbs_job *j, cJSON *out)
{
	struct ladderd_call *call = j->call;
	struct textbuf v = { 0 }, m = { 0 };
	int per = j->cols * j->rows, nsheets = (j->count + per - 1) / per;
	double span = j->interval * per;
	enum ladderd_rc rc = LADDERD_FAIL;
	char path[4400];
	int err;

	textbuf_printf(&v, "WEBVTT\n");
	for (int k = 0; k < j->count; k++) {
		double a = k * j->interval, b = fmin(a + j->interval,
		    j->duration);

		textbuf_printf(&v, "\n");
		thumbs_vtt_time(&v, a);
		textbuf_printf(&v, " --> ");
		thumbs_vtt_time(&v, b > a ? b : a + 0.001);
		textbuf_printf(&v, "\nsprite_%d.jpg#xywh=%d,%d,%d,%d\n",
		    k / per, (k % per) % j->cols * j->tw,
		    (k % per) / j->cols * j->th, j->tw, j->th);
	}
	textbuf_printf(&m, "#EXTM3U\n#EXT-X-VERSION:7\n"
	    "#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n"
	    "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-IMAGES-ONLY\n",
	    (int)ceil(fmin(span, j->duration) - 1e-6) > 0 ?
	    (int)ceil(fmin(span, j->duration) - 1e-6) : 1);
	for (int s = 0; s < nsheets; s++) {
		double d = fmin(span, j->duration - s * span);

		textbuf_printf(&m, "#EXTINF:%.3f,\n#EXT-X-TILES:RESOLUTION="
		    "%dx%d,LAYOUT=%dx%d,DURATION=%.3f\nsprite_%d.jpg\n",
		    d > 0 ? d : j->interval, j->tw, j->th, j->cols, j->rows,
		    j->interval, s);
	}
	textbuf_printf(&m, "#EXT-X-ENDLIST\n");
	if (v.failed || m.failed) {
		call->fail(call, "out of memory");
		goto out;
	}
	(void)snprintf(path, sizeof(path), "%s/thumbnails.vtt", j->dir);
	if ((err = call->write_atomic(call, path, v.data, v.len)) < 0)
		goto write_bad;
	(void)snprintf(path, sizeof(path), "%s/images.m3u8", j->dir);
	if ((err = call->write_atomic(call, path, m.data, m.len)) < 0)
		goto write_bad;
	(void)snprintf(path, sizeof(path), "%s/thumbnails.vtt", j->rel);
	if (cJSON_AddStringToObject(out, "vtt", path) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	(void)snprintf(path, sizeof(path), "%s/images.m3u8", j->rel);
	if (cJSON_AddStringToObject(out, "playlist", path) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	rc = LADDERD_OK;
	goto out;
write_bad:
	call->fail(call, "cannot write '%s': %s", path, strerror(-err));
	rc = err == -ENOSPC ? LADDERD_RETRY : LADDERD_FAIL;
out:
	free(v.data);
	free(m.data);
	return rc;
}

/* CPU seconds (user + system) this process, its threads included, used. */
static double
thumbs_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Whether `path` lies below folder `dir` ("dir/..."). */
static int
thumbs_inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && path[n] == '/' &&
	    path[n + 1] != '\0';
}

/* The sprite rung (smallest at least tw wide) and the poster rung (top). */
static int
thumbs_rungs(struct thumbs_job *j)
{
	const cJSON *r;
	int sw = 0, pw = 0, sh = 0;

	cJSON_ArrayForEach(r, ladderd_ctx_get(j->call->ctx, "renditions")) {
		const char *kind;
		int w, h;

		(void)ladderd_rendition(r, &kind);
		if (strcmp(kind, "video") != 0 ||
		    strcmp(ladderd_ctx_str(r, "status", ""), "ok") != 0 ||
		    !thumbs_size(r, &w, &h))
			continue;
		if (j->poster_rung == NULL || w * h > pw) {
			j->poster_rung = r;
			pw = w * h;
		}
		/* Prefer the smallest rung still as wide as a tile. */
		if (j->sprite_rung == NULL ||
		    (w >= j->tw && (sw < j->tw || w < sw)) ||
		    (w < j->tw && sw < j->tw && w > sw)) {
			j->sprite_rung = r;
			sw = w;
			sh = h;
		}
	}
	if (j->sprite_rung == NULL)
		return 0;
	/* The tile keeps the rung's displayed aspect (square pixels). */
	j->th = (int)lround((double)j->tw * sh / sw / 2) * 2;
	if (j->th < 2)
		j->th = 2;
	return 1;
}

/*
 * Fill the settings and the package paths of `j`. LADDERD_OK to go on,
 * LADDERD_SKIP when neither sprites nor a poster are wanted, else
 * LADDERD_FAIL with the message recorded.
 */
static enum ladderd_rc
thumbs_setup(struct thumbs_job *j)
{
	struct ladderd_call *call = j->call;

	j->sprites = ladderd_setting_bool(call->ctx,
	    &thumbnails_settings[TH_SPRITES]);
	j->poster_on = ladderd_setting_bool(call->ctx,
	    &thumbnails_settings[TH_POSTER]);
	j->interval = ladderd_setting_num(call->ctx,
	    &thumbnails_settings[TH_INTERVAL]);
	j->tw = (int)ladderd_setting_num(call->ctx,
		   &thumbnails_settings[TH_WIDTH]) & ~1;
	j->cols = (int)ladderd_setting_num(call->ctx,
	    &thumbnails_settings[TH_COLUMNS]);
	j->rows = (int)ladderd_setting_num(call->ctx,
	    &thumbnails_settings[TH_ROWS]);
	if (!j->sprites && !j->poster_on)
		return LADDERD_SKIP;
	if (!(j->interval >= 0.1) || j->tw < 16 || j->cols < 1 ||
	    j->rows < 1 || j->cols > 100 || j->rows > 100) {
		call->fail(call, "bad profile.thumbnails settings");
		return LADDERD_FAIL;
	}
	/* The layout's: poster and thumbs folder inside the package. */
	if (call->path(call, LADDERD_PATH_PACKAGE, NULL, j->pkg,
		sizeof(j->pkg)) < 0 ||
	    call->path(call, LADDERD_PATH_THUMBS_DIR, NULL, j->dir,
		sizeof(j->dir)) < 0 ||
	    call->path(call, LADDERD_PATH_POSTER, NULL, j->poster,
		sizeof(j->poster)) < 0 ||
	    !thumbs_inside(j->dir, j->pkg) ||
	    !thumbs_inside(j->poster, j->pkg)) {
		call->fail(call, "cannot name the poster and the thumbnails "
		    "folder inside the package");
		return LADDERD_FAIL;
	}
	j->rel = j->dir + strlen(j->pkg) + 1;
	return LADDERD_OK;
}

/*
 * No video rendition: at most the cover art of a song becomes the poster
 * (ctx.thumbnails.poster); skipped without one.
 */
static enum ladderd_rc
thumbs_cover_only(struct thumbs_job *j)
{
	struct ladderd_call *call = j->call;
	enum ladderd_rc rc;
	cJSON *out;

	if (!j->poster_on ||
	    !ladderd_ctx_bool(call->ctx, "probe.cover_art", 0))
		return LADDERD_SKIP;
	if ((out = cJSON_CreateObject()) == NULL) {
		call->fail(call, "out of memory");
		return LADDERD_FAIL;
	}
	if ((rc = thumbs_cover(j, out)) == LADDERD_OK &&
	    ladderd_ctx_set(call->ctx, "thumbnails", out) == 0)
		return LADDERD_OK; /* the context owns `out` now */
	cJSON_Delete(out);
	if (rc == LADDERD_OK)
		call->fail(call, "out of memory");
	return rc == LADDERD_OK ? LADDERD_FAIL : rc;
}

/*
 * How many tiles the sprite rung's duration needs, into j->count.
 * LADDERD_OK, else LADDERD_FAIL with the message recorded.
 */
static enum ladderd_rc
thumbs_count(struct thumbs_job *j)
{
	struct ladderd_call *call = j->call;

	j->duration = ladderd_ctx_num(j->sprite_rung, "chunk_hls.duration",
	    ladderd_ctx_num(call->ctx, "probe.duration", 0));
	if (!(j->duration > 0)) {
		call->fail(call, "rung '%s' has no duration",
		    ladderd_rendition(j->sprite_rung, NULL));
		return LADDERD_FAIL;
	}
	/* A last tile shorter than a millisecond is no tile. */
	j->count = (int)ceil(j->duration / j->interval - 1e-3);
	if (j->count < 1)
		j->count = 1;
	if (j->count > THUMBS_MAX_TILES) {
		call->fail(call, "%d thumbnails (%.0f s every %g s): more than "
		    "%d, raise profile.thumbnails.interval", j->count,
		    j->duration, j->interval, THUMBS_MAX_TILES);
		return LADDERD_FAIL;
	}
	return LADDERD_OK;
}

/*
 * Hand the sheets' URIs (j->uris) to `out` with the sheets' geometry,
 * for hls_footer and chunk_dash. 0, or -1 with the message recorded.
 */
static int
thumbs_sprites_json(struct thumbs_job *j, cJSON *out)
{
	if (!cJSON_AddItemToObject(out, "sprites", j->uris)) {
		j->call->fail(j->call, "out of memory");
		return -1;
	}
	j->uris = NULL; /* `out` owns it now */
	cJSON_AddStringToObject(out, "rung",
	    ladderd_rendition(j->sprite_rung, NULL));
	cJSON_AddNumberToObject(out, "interval", j->interval);
	cJSON_AddNumberToObject(out, "tile_width", j->tw);
	cJSON_AddNumberToObject(out, "tile_height", j->th);
	cJSON_AddNumberToObject(out, "columns", j->cols);
	cJSON_AddNumberToObject(out, "rows", j->rows);
	cJSON_AddNumberToObject(out, "count", j->count);
	cJSON_AddNumberToObject(out, "sprite_width", j->tw * j->cols);
	cJSON_AddNumberToObject(out, "sprite_height", j->th * j->rows);
	cJSON_AddNumberToObject(out, "bandwidth", ceil(j->peak));
	cJSON_AddNumberToObject(out, "duration", j->duration);
	return 0;
}

static enum ladderd_rc
thumbnails_run(void *state, struct ladderd_call *call)
{
	struct thumbs_job j = { .call = call, .best = -1 };
	double cpu0 = thumbs_cpu();
	enum ladderd_rc rc = LADDERD_FAIL;
	cJSON *out = NULL;
	int err;

	(void)state;
	if ((rc = thumbs_setup(&j)) != LADDERD_OK)
		return rc;
	if (!thumbs_rungs(&j))
		return thumbs_cover_only(&j);
	if ((rc = thumbs_count(&j)) != LADDERD_OK)
		return rc;
	rc = LADDERD_FAIL;
	if ((j.score = calloc((size_t)j.count, sizeof(*j.score))) == NULL ||
	    (out = cJSON_CreateObject()) == NULL ||
	    (j.uris = cJSON_CreateArray()) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	for (int k = 0; k < j.count; k++)
		j.score[k].delta = NAN;
	if (j.sprites && (err = call->mkdirs(call, j.dir)) < 0) {
		call->fail(call, "cannot create '%s': %s", j.dir,
		    strerror(-err));
		rc = err == -ENOSPC ? LADDERD_RETRY : LADDERD_FAIL;
		goto out;
	}
	if ((rc = thumbs_pass(&j)) != LADDERD_OK)
		goto out;
	rc = LADDERD_FAIL;
	if (j.sprites) {
		if ((rc = thumbs_playlists(&j, out)) != LADDERD_OK)
			goto out;
		rc = LADDERD_FAIL;
		if (thumbs_sprites_json(&j, out) < 0)
			goto out;
	}
	if (j.poster_on) {
		j.best = thumbs_pick(&j);
		if ((rc = thumbs_poster(&j, j.best * j.interval, out)) !=
		    LADDERD_OK)
			goto out;
		rc = LADDERD_FAIL;
	}
	/* What the stage costs, for the operator (README: a few % of the
	 * ladder's CPU): the job process runs nothing else meanwhile. */
	cJSON_AddNumberToObject(out, "cpu_seconds",
	    round((thumbs_cpu() - cpu0) * 1000) / 1000);
	call->log(call, LADDERD_LOG_INFO, "%d thumbnails from rung '%s' in %d "
	    "sheet(s), poster at %.3f s, %ld of %ld frames decoded: %.2f s CPU",
	    j.count, ladderd_rendition(j.sprite_rung, NULL),
	    j.sprites ? cJSON_GetArraySize(ladderd_ctx_get(out, "sprites")) :
	    0, ladderd_ctx_num(out, "poster.time", -1), j.decoded, j.read,
	    ladderd_ctx_num(out, "cpu_seconds", 0));
	if (ladderd_ctx_set(call->ctx, "thumbnails", out) < 0) {
		call->fail(call, "out of memory");
		goto out;
	}
	out = NULL; /* the context owns it now */
	call->progress(call, 1.0);
	rc = LADDERD_OK;
out:
	cJSON_Delete(out);
	cJSON_Delete(j.uris);
	free(j.score);
	return rc;
}

LADDERD_STAGE_DEFINE_SETTINGS("thumbnails", "1.0", "packaging",
    thumbnails_settings, NULL, thumbnails_run, NULL);

/*
 * stages/subtitles.c - every text subtitle track as a WebVTT rendition
 * (post stage, before hls_footer and chunk_dash).
 *
 * Reads ctx.probe.{format, subtitles, video.index, duration}, ctx.input.path,
 * ctx.task.subtitles (a manifest's sidecar files, already claimed into the
 * task: [ { path, file, language, name, forced, default } ]), ctx.profile.
 * {subtitles, segment_type, segment_duration} and the first ok video
 * rendition's chunk_hls (its segment durations, and in MPEG-TS mode its
 * first segment). For each track it writes, in call->path(HLS_DIR, NAME)
 * (NAME "sub-<language>", or "sub-<n>" when the language is unknown or
 * taken):
 *   index.m3u8 + seg_NNNNN.vtt  the HLS rendition: one WebVTT segment per
 *       video segment (same EXTINF), each with every cue that overlaps it
 *       and an X-TIMESTAMP-MAP that puts LOCAL 00:00:00.000 where the
 *       video's source time 0 is: MPEG-TS mode, the first video PTS of the
 *       rung's first segment (the x264 reorder delay included, so the cues
 *       move with the picture); fMP4, MPEGTS:0 (the players' time 0 is the
 *       edit-listed presentation time 0 there).
 *   full.vtt  the whole track, for DASH (a sidecar Representation).
 * Adds ctx.subtitles = { tracks: [ { name, language, label, default, forced,
 * origin, cues, playlist, vtt } ], skipped: [ { index, codec, language,
 * reason } ] }; the engine copies it into the terminal status event.
 *
 * Cue text comes from libavcodec: the stream's decoder (mov_text, subrip,
 * ass/ssa, webvtt) gives ASS events, libavcodec's webvtt encoder turns them
 * into WebVTT cue text (italics, bold, underline kept). The text is the
 * source's, so it is cleaned before it is written: no CR, no blank line (it
 * would end the cue), no "-->" (it would start one), valid UTF-8 only.
 * Times are milliseconds of the source's presentation: an embedded track is
 * shifted by the video stream's start, as the transcode stage shifts the
 * picture; a sidecar file's times are taken as they are.
 *
 * A bitmap track (PGS, DVB, DVD) cannot become text: it is listed in
 * `skipped` with the reason, never silently dropped; so is an embedded text
 * track that does not decode. A sidecar file that cannot be read fails the
 * task: the manifest asked for it. Skips when profile.subtitles is false or
 * there is nothing to do.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "avlog.h"
#include "source.h"
#include "stage.h"
#include "textbuf.h"
#include "tracklabel.h"

#define SUB_MAX_TRACKS 32
#define SUB_MAX_CUES 200000
#define SUB_MAX_TEXT 8192 /* bytes of one cue's WebVTT text */
#define SUB_MAX_SEGS 1000000

struct sub_cue {
	int64_t start, end; /* ms of presentation */
	char *text;
};

struct sub_track {
	char name[80];
	char lang[40];
	char label[128];
	char origin[400];
	int dflt, forced;
	struct sub_cue *cues;
	size_t n, cap;
};

struct sub_job {
	struct ladderd_call *call;
	struct sub_track tracks[SUB_MAX_TRACKS];
	size_t ntracks;
	cJSON *skipped;
	double *segs; /* segment durations, s */
	size_t nsegs;
	int64_t mpegts; /* X-TIMESTAMP-MAP MPEGTS value, 90 kHz */
	char pkg[PATH_MAX];
};

static void
sub_track_release(struct sub_track *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->cues[i].text);
	free(t->cues);
	t->cues = NULL;
	t->n = t->cap = 0;
}

/* Whether `p` (after a '&') starts a character reference WebVTT knows. */
static int
sub_entity(const char *p, size_t n)
{
	static const char *const names[] = { "amp;", "lt;", "gt;", "nbsp;",
		"lrm;", "rlm;", NULL };

	for (int i = 0; names[i] != NULL; i++)
		if (n >= strlen(names[i]) &&
		    strncmp(p, names[i], strlen(names[i])) == 0)
			return 1;
	return 0;
}

/*
 * Cue text made safe to write between a timing line and a blank line:
 * valid UTF-8, no CR, no empty line, "-->" as "--&gt;", a '&' that starts
 * no character reference as "&amp;". Returns a new
 * string (NULL when nothing is left or out of memory).
 */
static char *
sub_clean(const char *in, size_t len)
{
	char *out = malloc(len * 6 + 1), *o = out;
	const unsigned char *p = (const unsigned char *)in, *end = p + len;

	if (out == NULL)
		return NULL;
	while (p < end) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 :
		    (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
		size_t k;

		for (k = 1; n > 1 && k < n && p + k < end; k++)
			if ((p[k] & 0xc0) != 0x80)
				break;
		if (n == 0 || k < n || (n == 2 && *p < 0xc2) || *p == '\0') {
			p++;
			continue;
		}
		if (*p == '\r' || (*p < 0x20 && *p != '\n' && *p != '\t')) {
			p++;
			continue;
		}
		if (*p == '\n' && (o == out || o[-1] == '\n')) {
			p++; /* a blank line would end the cue */
			continue;
		}
		if (*p == '&' && !sub_entity((const char *)p + 1,
			(size_t)(end - p - 1))) {
			memcpy(o, "&amp;", 5);
			o += 5;
			p++;
			continue;
		}
		if (*p == '-' && end - p >= 3 && p[1] == '-' && p[2] == '>') {
			memcpy(o, "--&gt;", 6);
			o += 6;
			p += 3;
			continue;
		}
		memcpy(o, p, n);
		o += n;
		p += n;
	}
	while (o > out && (o[-1] == '\n' || o[-1] == ' '))
		o--;
	*o = '\0';
	if (o == out) {
		free(out);
		return NULL;
	}
	return out;
}

static int
sub_add_cue(struct sub_track *t, int64_t start, int64_t end,
    const char *text, size_t len)
{
	char *clean;

	if (end <= start || end <= 0)
		return 0; /* nothing to show, or before time 0 */
	if (t->n >= SUB_MAX_CUES)
		return -E2BIG;
	if ((clean = sub_clean(text, len)) == NULL)
		return 0;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct sub_cue *c = realloc(t->cues, cap * sizeof(*c));

		if (c == NULL) {
			free(clean);
			return -ENOMEM;
		}
		t->cues = c;
		t->cap = cap;
	}
	t->cues[t->n++] = (struct sub_cue){ start < 0 ? 0 : start, end,
		clean };
	return 0;
}

static int
sub_cmp(const void *a, const void *b)
{
	const struct sub_cue *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

/*
 * Decode subtitle stream `idx` of `fmt` into t's cues, times shifted by
 * -zero_ms. Returns 0, or a negative AVERROR with a sentence in why.
 */
static int
sub_decode(AVFormatContext *fmt, int idx, int64_t zero_ms,
    struct sub_track *t, char *why, size_t whylen)
{
	AVStream *st = fmt->streams[idx];
	const AVCodec *dc = avcodec_find_decoder(st->codecpar->codec_id);
	const AVCodec *ec = avcodec_find_encoder(AV_CODEC_ID_WEBVTT);
	AVCodecContext *dec = NULL, *enc = NULL;
	AVPacket *pkt = NULL;
	uint8_t *buf = NULL;
	const AVRational ms = { 1, 1000 };
	int err;

	if (dc == NULL || ec == NULL) {
		snprintf(why, whylen, "no %s for %s in this libavcodec",
		    dc == NULL ? "decoder" : "WebVTT encoder",
		    avcodec_get_name(st->codecpar->codec_id));
		return AVERROR_DECODER_NOT_FOUND;
	}
	for (unsigned i = 0; i < fmt->nb_streams; i++)
		fmt->streams[i]->discard =
		    (int)i == idx ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
	if ((dec = avcodec_alloc_context3(dc)) == NULL ||
	    (enc = avcodec_alloc_context3(ec)) == NULL ||
	    (pkt = av_packet_alloc()) == NULL ||
	    (buf = av_malloc(SUB_MAX_TEXT)) == NULL) {
		err = AVERROR(ENOMEM);
		goto fail;
	}
	if ((err = avcodec_parameters_to_context(dec, st->codecpar)) < 0)
		goto fail;
	dec->pkt_timebase = st->time_base;
	if ((err = avcodec_open2(dec, dc, NULL)) < 0)
		goto fail;
	/* The encoder reads the decoder's ASS header (styles). */
	enc->time_base = ms;
	if (dec->subtitle_header != NULL && dec->subtitle_header_size > 0) {
		enc->subtitle_header = av_mallocz(
		    (size_t)dec->subtitle_header_size + 1);
		if (enc->subtitle_header == NULL) {
			err = AVERROR(ENOMEM);
			goto fail;
		}
		memcpy(enc->subtitle_header, dec->subtitle_header,
		    (size_t)dec->subtitle_header_size);
		enc->subtitle_header_size = dec->subtitle_header_size;
	}
	if ((err = avcodec_open2(enc, ec, NULL)) < 0)
		goto fail;
	while ((err = av_read_frame(fmt, pkt)) >= 0) {
		AVSubtitle sub;
		int got = 0, n;
		int64_t pts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;

		if (pkt->stream_index != idx || pts == AV_NOPTS_VALUE) {
			av_packet_unref(pkt);
			continue;
		}
		memset(&sub, 0, sizeof(sub));
		if (avcodec_decode_subtitle2(dec, &sub, &got, pkt) < 0 ||
		    !got) {
			av_packet_unref(pkt); /* a bad event: the next one */
			continue;
		}
		if (sub.num_rects > 0 &&
		    sub.rects[0]->type == SUBTITLE_ASS &&
		    (n = avcodec_encode_subtitle(enc, buf, SUB_MAX_TEXT - 1,
			 &sub)) > 0) {
			int64_t at = av_rescale_q(pts, st->time_base, ms);
			int64_t start = at + sub.start_display_time - zero_ms;
			int64_t end;

			if (sub.end_display_time > sub.start_display_time &&
			    sub.end_display_time != UINT32_MAX)
				end = at + sub.end_display_time - zero_ms;
			else if (pkt->duration > 0)
				end = av_rescale_q(pts + pkt->duration,
				    st->time_base, ms) - zero_ms;
			else
				end = start + 3000; /* no end: 3 s */
			if ((err = sub_add_cue(t, start, end, (char *)buf,
				 (size_t)n)) < 0) {
				avsubtitle_free(&sub);
				av_packet_unref(pkt);
				snprintf(why, whylen, "%s",
				    err == -E2BIG ? "more than 200000 cues" :
				    "out of memory");
				goto out;
			}
		}
		avsubtitle_free(&sub);
		av_packet_unref(pkt);
	}
	if (err == AVERROR_EOF)
		err = 0;
	else
		snprintf(why, whylen, "cannot read the track: %s",
		    av_err2str(err));
	qsort(t->cues, t->n, sizeof(*t->cues), sub_cmp);
	goto out;
fail:
	snprintf(why, whylen, "cannot set up the %s decoder: %s",
	    avcodec_get_name(st->codecpar->codec_id), av_err2str(err));
out:
	av_free(buf);
	av_packet_free(&pkt);
	avcodec_free_context(&dec);
	avcodec_free_context(&enc);
	return err;
}

static void
sub_language(struct sub_track *t, const char *tag)
{
	const char *lang = ladderd_track_language(tag);

	(void)snprintf(t->lang, sizeof(t->lang), "%s", lang ? lang : "");
}

/* A free "sub-*" name for language `lang` (or the track's number). */
static void
sub_name(struct sub_job *job, struct sub_track *t)
{
	int taken = 0;

	if (t->lang[0] != '\0')
		(void)snprintf(t->name, sizeof(t->name), "sub-%s", t->lang);
	for (size_t i = 0; t->lang[0] != '\0' && i < job->ntracks; i++)
		taken |= strcmp(job->tracks[i].name, t->name) == 0;
	if (t->lang[0] == '\0' || taken)
		(void)snprintf(t->name, sizeof(t->name), "sub-%zu",
		    job->ntracks);
}

static int
sub_skip(struct sub_job *job, const cJSON *st, const char *reason)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL ||
	    !cJSON_AddNumberToObject(o, "index",
		ladderd_ctx_num(st, "index", -1)) ||
	    !cJSON_AddStringToObject(o, "codec",
		ladderd_ctx_str(st, "codec", "?")) ||
	    (ladderd_track_language(ladderd_ctx_str(st, "language", NULL)) &&
		!cJSON_AddStringToObject(o, "language",
		    ladderd_ctx_str(st, "language", ""))) ||
	    !cJSON_AddStringToObject(o, "reason", reason) ||
	    !cJSON_AddItemToArray(job->skipped, o)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	job->call->log(job->call, LADDERD_LOG_WARN, "subtitle stream %d "
	    "(%s) skipped: %s", (int)ladderd_ctx_num(st, "index", -1),
	    ladderd_ctx_str(st, "codec", "?"), reason);
	return 0;
}

/* The embedded text tracks. LADDERD_OK, or FAIL/RETRY after call->fail. */
static enum ladderd_rc
sub_embedded(struct sub_job *job)
{
	struct ladderd_call *call = job->call;
	const cJSON *list = ladderd_ctx_get(call->ctx, "probe.subtitles");
	const char *path = ladderd_ctx_str(call->ctx, "input.path", NULL);
	const cJSON *st;
	int vidx = (int)ladderd_ctx_num(call->ctx, "probe.video.index", -1);

	cJSON_ArrayForEach(st, list) {
		struct ladderd_source src = LADDERD_SOURCE_INIT;
		struct sub_track *t;
		int idx = (int)ladderd_ctx_num(st, "index", -1);
		int64_t zero = 0;
		char why[512] = "", msg[1024];

		if (!ladderd_ctx_bool(st, "text", 0)) {
			(void)snprintf(why, sizeof(why), "bitmap subtitles "
			    "(%s) cannot become WebVTT text",
			    ladderd_ctx_str(st, "codec", "?"));
			if (sub_skip(job, st, why) < 0)
				goto nomem;
			continue;
		}
		if (job->ntracks == SUB_MAX_TRACKS) {
			if (sub_skip(job, st, "too many subtitle tracks") < 0)
				goto nomem;
			continue;
		}
		if (path == NULL ||
		    ladderd_source_open(&src, path, ladderd_ctx_str(call->ctx,
			"probe.format", NULL), NULL, msg, sizeof(msg)) < 0 ||
		    idx < 0 || (unsigned)idx >= src.fmt->nb_streams ||
		    src.fmt->streams[idx]->codecpar->codec_type !=
			AVMEDIA_TYPE_SUBTITLE) {
			ladderd_source_close(&src);
			call->fail(call, "cannot read subtitle stream %d of "
			    "'%s'", idx, path ? path : "(no input.path)");
			return LADDERD_FAIL;
		}
		/* Time 0 is the video stream's start, as in transcode. */
		(void)avformat_find_stream_info(src.fmt, NULL);
		if (vidx >= 0 && (unsigned)vidx < src.fmt->nb_streams &&
		    src.fmt->streams[vidx]->start_time != AV_NOPTS_VALUE)
			zero = av_rescale_q(src.fmt->streams[vidx]->start_time,
			    src.fmt->streams[vidx]->time_base,
			    (AVRational){ 1, 1000 });
		t = &job->tracks[job->ntracks];
		memset(t, 0, sizeof(*t));
		if (sub_decode(src.fmt, idx, zero, t, why, sizeof(why)) < 0) {
			ladderd_source_close(&src);
			sub_track_release(t);
			if (sub_skip(job, st, why) < 0)
				goto nomem;
			continue;
		}
		ladderd_source_close(&src);
		sub_language(t, ladderd_ctx_str(st, "language", NULL));
		ladderd_track_label(ladderd_ctx_str(st, "title", ""), t->label,
		    sizeof(t->label));
		t->dflt = ladderd_ctx_bool(st, "default", 0);
		t->forced = ladderd_ctx_bool(st, "forced", 0);
		(void)snprintf(t->origin, sizeof(t->origin), "stream %d (%s)",
		    idx, ladderd_ctx_str(st, "codec", "?"));
		sub_name(job, t);
		job->ntracks++;
	}
	return LADDERD_OK;
nomem:
	call->fail(call, "out of memory");
	return LADDERD_FAIL;
}

/* The manifest's sidecar files. LADDERD_OK, or FAIL after call->fail. */
static enum ladderd_rc
sub_sidecars(struct sub_job *job)
{
	struct ladderd_call *call = job->call;
	const cJSON *sc;

	cJSON_ArrayForEach(sc, ladderd_ctx_get(call->ctx, "task.subtitles")) {
		struct ladderd_source src = LADDERD_SOURCE_INIT;
		const char *path = ladderd_ctx_str(sc, "path", NULL);
		const char *file = ladderd_ctx_str(sc, "file", "?");
		struct sub_track *t;
		char why[512] = "", msg[1024];
		int idx;

		if (job->ntracks == SUB_MAX_TRACKS) {
			call->fail(call, "subtitle file '%s': more than %d "
			    "subtitle tracks", file, SUB_MAX_TRACKS);
			return LADDERD_FAIL;
		}
		if (path == NULL ||
		    ladderd_source_open_subtitles(&src, path, msg,
			sizeof(msg)) < 0) {
			ladderd_source_close(&src);
			call->fail(call, "subtitle file '%s': %s", file,
			    path ? msg : "not claimed");
			return LADDERD_FAIL;
		}
		(void)avformat_find_stream_info(src.fmt, NULL);
		idx = av_find_best_stream(src.fmt, AVMEDIA_TYPE_SUBTITLE, -1,
		    -1, NULL, 0);
		t = &job->tracks[job->ntracks];
		memset(t, 0, sizeof(*t));
		if (idx < 0 ||
		    sub_decode(src.fmt, idx, 0, t, why, sizeof(why)) < 0) {
			ladderd_source_close(&src);
			sub_track_release(t);
			call->fail(call, "subtitle file '%s': %s", file,
			    idx < 0 ? "no subtitle track in it" : why);
			return LADDERD_FAIL;
		}
		ladderd_source_close(&src);
		if (t->n == 0) {
			call->fail(call, "subtitle file '%s': no cue in it",
			    file);
			return LADDERD_FAIL;
		}
		sub_language(t, ladderd_ctx_str(sc, "language", NULL));
		t->dflt = ladderd_ctx_bool(sc, "default", 0);
		t->forced = ladderd_ctx_bool(sc, "forced", 0);
		ladderd_track_label(ladderd_ctx_str(sc, "name", ""), t->label,
		    sizeof(t->label));
		memcpy(t->origin, "sidecar ", 8);
		ladderd_track_label(file, t->origin + 8, sizeof(t->origin) - 8);
		sub_name(job, t);
		job->ntracks++;
	}
	return LADDERD_OK;
}

/* The first ok video rendition, or NULL. */
static const cJSON *
sub_video_rendition(const cJSON *ctx)
{
	const cJSON *r;

	cJSON_ArrayForEach(r, ladderd_ctx_get(ctx, "renditions")) {
		const char *kind;

		if (ladderd_rendition(r, &kind) != NULL &&
		    strcmp(kind, "video") == 0 &&
		    strcmp(ladderd_ctx_str(r, "status", ""), "ok") == 0 &&
		    cJSON_IsArray(ladderd_ctx_get(r, "chunk_hls.segments")))
			return r;
	}
	return NULL;
}

/*
 * The segment grid (the video's EXTINFs, else segment_duration up to the
 * source's duration) and the MPEGTS value. LADDERD_OK or FAIL.
 */
static enum ladderd_rc
sub_timeline(struct sub_job *job)
{
	struct ladderd_call *call = job->call;
	const cJSON *r = sub_video_rendition(call->ctx), *s;
	int ts = strcmp(ladderd_ctx_str(call->ctx, "profile.segment_type",
	    "fmp4"), "mpegts") == 0;
	double segdur = ladderd_ctx_num(call->ctx, "profile.segment_duration",
	    4);
	double dur = ladderd_ctx_num(call->ctx, "probe.duration", 0);
	size_t n = 0;

	if (r != NULL)
		n = (size_t)cJSON_GetArraySize(ladderd_ctx_get(r,
		    "chunk_hls.segments"));
	else if (segdur > 0 && dur > 0 && dur / segdur < SUB_MAX_SEGS)
		n = (size_t)ceil(dur / segdur);
	if (n == 0) {
		call->fail(call, "no segment grid for the subtitles (no video "
		    "rendition, no duration)");
		return LADDERD_FAIL;
	}
	if ((job->segs = calloc(n, sizeof(*job->segs))) == NULL) {
		call->fail(call, "out of memory");
		return LADDERD_FAIL;
	}
	job->nsegs = n;
	if (r != NULL) {
		size_t i = 0;

		cJSON_ArrayForEach(s, ladderd_ctx_get(r, "chunk_hls.segments"))
			job->segs[i++] = ladderd_ctx_num(s, "duration", 0);
	} else {
		for (size_t i = 0; i < n; i++)
			job->segs[i] = fmin(segdur, dur - (double)i * segdur);
	}
	job->mpegts = 0;
	if (ts && r != NULL) {
		const char *uri = ladderd_ctx_str(cJSON_GetArrayItem(
		    ladderd_ctx_get(r, "chunk_hls.segments"), 0), "uri", NULL);
		AVFormatContext *fmt = NULL;
		AVPacket *pkt = av_packet_alloc();
		char path[PATH_MAX];
		int64_t min = INT64_MAX;

		/* Our own segment: the picture's first PTS (90 kHz). */
		if (uri != NULL && pkt != NULL &&
		    snprintf(path, sizeof(path), "%s/%s", job->pkg, uri) <
			(int)sizeof(path) &&
		    avformat_open_input(&fmt, path,
			av_find_input_format("mpegts"), NULL) == 0) {
			for (int k = 0; k < 200 &&
			     av_read_frame(fmt, pkt) >= 0; k++) {
				AVStream *st = fmt->streams[pkt->stream_index];

				if (st->codecpar->codec_type ==
					AVMEDIA_TYPE_VIDEO &&
				    pkt->pts != AV_NOPTS_VALUE && pkt->pts < min)
					min = av_rescale_q(pkt->pts,
					    st->time_base,
					    (AVRational){ 1, 90000 });
				av_packet_unref(pkt);
			}
		}
		avformat_close_input(&fmt);
		av_packet_free(&pkt);
		if (min == INT64_MAX) {
			call->fail(call, "cannot read the first video PTS of "
			    "'%s'", uri ? uri : "(no segment)");
			return LADDERD_FAIL;
		}
		job->mpegts = min;
	}
	return LADDERD_OK;
}

static void
sub_time(struct textbuf *b, int64_t ms)
{
	textbuf_printf(b, "%02" PRId64 ":%02" PRId64 ":%02" PRId64 ".%03" PRId64,
	    ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, ms % 1000);
}

static void
sub_cue_text(struct textbuf *b, const struct sub_cue *c)
{
	sub_time(b, c->start);
	textbuf_printf(b, " --> ");
	sub_time(b, c->end);
	textbuf_printf(b, "\n%s\n\n", c->text);
}

static enum ladderd_rc
sub_write(struct sub_job *job, const char *path, struct textbuf *b)
{
	int err;

	if (b->failed) {
		job->call->fail(job->call, "out of memory");
		return LADDERD_FAIL;
	}
	if ((err = job->call->write_atomic(job->call, path, b->data,
		 b->len)) < 0) {
		job->call->fail(job->call, "cannot write '%s': %s", path,
		    strerror(-err));
		return err == -ENOSPC || err == -EDQUOT ? LADDERD_RETRY :
		    LADDERD_FAIL;
	}
	return LADDERD_OK;
}

/* One track's files; adds its entry to `tracks`. */
static enum ladderd_rc
sub_track_files(struct sub_job *job, struct sub_track *t, cJSON *tracks)
{
	struct ladderd_call *call = job->call;
	struct textbuf b = { 0 }, pl = { 0 };
	char dir[PATH_MAX], path[PATH_MAX + 32];
	enum ladderd_rc rc = LADDERD_FAIL;
	double target = 1, at = 0;
	size_t first = 0;
	cJSON *o = NULL;
	int err;

	if (call->path(call, LADDERD_PATH_HLS_DIR, t->name, dir,
		sizeof(dir)) < 0) {
		call->fail(call, "cannot name the folder of '%s'", t->name);
		goto out;
	}
	if ((err = call->mkdirs(call, dir)) < 0) {
		call->fail(call, "cannot create '%s': %s", dir, strerror(-err));
		rc = err == -ENOSPC ? LADDERD_RETRY : LADDERD_FAIL;
		goto out;
	}
	for (size_t i = 0; i < job->nsegs; i++)
		if (ceil(job->segs[i]) > target)
			target = ceil(job->segs[i]);
	textbuf_printf(&pl, "#EXTM3U\n#EXT-X-VERSION:3\n"
	    "#EXT-X-TARGETDURATION:%.0f\n#EXT-X-MEDIA-SEQUENCE:0\n"
	    "#EXT-X-PLAYLIST-TYPE:VOD\n", target);
	for (size_t i = 0; i < job->nsegs; i++) {
		int64_t a = (int64_t)llround(at * 1000);
		int64_t z = (int64_t)llround((at + job->segs[i]) * 1000);

		/* The last segment takes every later cue too. */
		if (i + 1 == job->nsegs)
			z = INT64_MAX;
		b.len = 0;
		textbuf_printf(&b, "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:%" PRId64
		    ",LOCAL:00:00:00.000\n\n", job->mpegts);
		while (first < t->n && t->cues[first].end <= a)
			first++;
		for (size_t k = first; k < t->n && t->cues[k].start < z; k++)
			if (t->cues[k].end > a)
				sub_cue_text(&b, &t->cues[k]);
		(void)snprintf(path, sizeof(path), "%s/seg_%05zu.vtt", dir, i);
		if ((rc = sub_write(job, path, &b)) != LADDERD_OK)
			goto out;
		rc = LADDERD_FAIL;
		textbuf_printf(&pl, "#EXTINF:%.6f,\nseg_%05zu.vtt\n",
		    job->segs[i], i);
		at += job->segs[i];
	}
	textbuf_printf(&pl, "#EXT-X-ENDLIST\n");
	(void)snprintf(path, sizeof(path), "%s/index.m3u8", dir);
	if ((rc = sub_write(job, path, &pl)) != LADDERD_OK)
		goto out;
	b.len = 0;
	textbuf_printf(&b, "WEBVTT\n\n");
	for (size_t k = 0; k < t->n; k++)
		sub_cue_text(&b, &t->cues[k]);
	(void)snprintf(path, sizeof(path), "%s/full.vtt", dir);
	if ((rc = sub_write(job, path, &b)) != LADDERD_OK)
		goto out;
	rc = LADDERD_FAIL;
	(void)snprintf(path, sizeof(path), "%s/index.m3u8", t->name);
	if ((o = cJSON_CreateObject()) == NULL ||
	    !cJSON_AddStringToObject(o, "name", t->name) ||
	    (t->lang[0] != '\0' &&
		!cJSON_AddStringToObject(o, "language", t->lang)) ||
	    !cJSON_AddStringToObject(o, "label", t->label[0] ? t->label :
		t->lang[0] ? t->lang : t->name) ||
	    !cJSON_AddBoolToObject(o, "default", t->dflt) ||
	    !cJSON_AddBoolToObject(o, "forced", t->forced) ||
	    !cJSON_AddStringToObject(o, "origin", t->origin) ||
	    !cJSON_AddNumberToObject(o, "cues", (double)t->n) ||
	    !cJSON_AddStringToObject(o, "playlist", path) ||
	    ((void)snprintf(path, sizeof(path), "%s/full.vtt", t->name),
		!cJSON_AddStringToObject(o, "vtt", path)) ||
	    !cJSON_AddItemToArray(tracks, o)) {
		cJSON_Delete(o);
		call->fail(call, "out of memory");
		goto out;
	}
	rc = LADDERD_OK;
out:
	free(b.data);
	free(pl.data);
	return rc;
}

static enum ladderd_rc
subtitles_run(void *state, struct ladderd_call *call)
{
	struct sub_job *job = NULL;
	enum ladderd_rc rc = LADDERD_FAIL;
	cJSON *out = NULL, *tracks;
	int dflt_seen = 0;

	(void)state;
	if (!ladderd_ctx_bool(call->ctx, "profile.subtitles", 1) ||
	    (cJSON_GetArraySize(ladderd_ctx_get(call->ctx,
		 "probe.subtitles")) == 0 &&
		cJSON_GetArraySize(ladderd_ctx_get(call->ctx,
		    "task.subtitles")) == 0))
		return LADDERD_SKIP;
	if ((job = calloc(1, sizeof(*job))) == NULL ||
	    (job->skipped = cJSON_CreateArray()) == NULL ||
	    (out = cJSON_CreateObject()) == NULL ||
	    (tracks = cJSON_AddArrayToObject(out, "tracks")) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	job->call = call;
	if (call->path(call, LADDERD_PATH_PACKAGE, NULL, job->pkg,
		sizeof(job->pkg)) < 0) {
		call->fail(call, "cannot name the package folder");
		goto out;
	}
	if ((rc = sub_embedded(job)) != LADDERD_OK ||
	    (rc = sub_sidecars(job)) != LADDERD_OK)
		goto out;
	rc = LADDERD_FAIL;
	if (job->ntracks > 0 && (rc = sub_timeline(job)) != LADDERD_OK)
		goto out;
	for (size_t i = 0; i < job->ntracks; i++) {
		/* HLS allows one DEFAULT=YES per group: the first. */
		if (job->tracks[i].dflt && dflt_seen)
			job->tracks[i].dflt = 0;
		dflt_seen |= job->tracks[i].dflt;
		if ((rc = sub_track_files(job, &job->tracks[i], tracks)) !=
		    LADDERD_OK)
			goto out;
		call->progress(call, (double)(i + 1) / (double)job->ntracks);
	}
	cJSON_AddItemToObject(out, "skipped", job->skipped);
	job->skipped = NULL; /* out owns it now */
	if (ladderd_ctx_set(call->ctx, "subtitles", out) < 0) {
		call->fail(call, "cannot store the subtitles in the context");
		rc = LADDERD_FAIL;
		goto out;
	}
	out = NULL; /* the context owns it now */
	rc = LADDERD_OK;
out:
	if (job != NULL) {
		for (size_t i = 0; i < SUB_MAX_TRACKS; i++)
			sub_track_release(&job->tracks[i]);
		cJSON_Delete(job->skipped);
		free(job->segs);
		free(job);
	}
	cJSON_Delete(out);
	return rc;
}

LADDERD_STAGE_DEFINE("subtitles", "1.0", "packaging", NULL, subtitles_run,
    NULL);

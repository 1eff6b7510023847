/*
 * stages/transcode_join.c - the join of a chunked rung (README, "Chunked
 * encoding").
 *
 * Each chunk of the rung is a unit of its own that encoded only its time
 * range (transcode.c with ctx.rung.chunk) into rungs/<rung>.chunkNNN/
 * transcoded.mp4, with the rung's timeline: its first frame is an IDR on
 * the segment grid at the chunk's start. The rung's own unit runs the
 * transcode stage with ctx.rung.chunks (each chunk's ctx.transcode, in
 * order): this file copies the chunks' packets, one after the other, into
 * the rung's transcoded MP4, and with ctx.rung.chunk_audio.path (MPEG-TS:
 * the audio, encoded once for every rung) interleaves that file's audio.
 * The rest of the rung's stages (chunk_hls, hls_info, iframes) then see
 * the same file an unchunked encode writes, so segment numbers, decode
 * times (tfdt, PES PTS/DTS) and TS continuity counters run on across
 * chunk boundaries without a stage knowing about chunks.
 *
 * Timestamps: a chunk's first packet is its first keyframe (closed GOP),
 * whose time the chunk's result names; whatever offset its container
 * added is taken off every packet of the chunk. The join refuses chunks
 * whose parameter sets differ (the playlist would switch decoders
 * silently), a chunk that does not start with a keyframe, and decode
 * times that do not increase across a boundary (an overlap).
 *
 * ctx.transcode is what an unchunked encode reports (frames, keyframes,
 * duration, measured bitrate, codecs from the first chunk) plus chunks and
 * chunk_boundaries [{ index, start, gap }] (gap: first frame of the chunk
 * minus the end of the last frame of the one before, seconds).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "avlog.h"
#include "encode_summary.h"
#include "transcode_join.h"

#define JOIN_HZ 90000 /* the video time base of every rung, 1/90000 */

/* One input being read: a chunk's video or the audio file. */
struct join_in {
	AVFormatContext *fmt;
	int idx;	/* the stream copied */
	int64_t shift;	/* added to pts/dts, in the output time base */
	AVRational otb; /* the output stream's time base */
	AVPacket *pkt;	/* the next packet, rescaled; valid when ready */
	int ready;
	int eof;
};

struct join {
	struct ladderd_call *call;
	const cJSON *chunks;
	int nchunks, next; /* the next chunk to open */
	char path[PATH_MAX], tmp[PATH_MAX];
	int tmp_exists;
	AVFormatContext *ofmt;
	struct join_in v, a;
	AVCodecParameters *vpar; /* the first chunk's, for the comparison */
	int64_t vend;		 /* end of the last video frame written */
	int64_t last_dts;	 /* last video dts written, or INT64_MIN */
	int64_t frames, vbytes, abytes, aend;
	cJSON *keyframes, *bounds;
};

static void
join_in_close(struct join_in *in)
{
	avformat_close_input(&in->fmt);
	av_packet_free(&in->pkt);
	in->ready = 0;
}

/* Open `path` and pick its first stream of `type`; 0 or -1 (failed). */
static int
join_open(struct join *j, struct join_in *in, const char *path,
    enum AVMediaType type)
{
	int err;

	if ((err = avformat_open_input(&in->fmt, path, NULL, NULL)) < 0 ||
	    (err = avformat_find_stream_info(in->fmt, NULL)) < 0) {
		j->call->fail(j->call, "cannot read '%s': %s", path,
		    av_err2str(err));
		return -1;
	}
	if ((in->idx = av_find_best_stream(in->fmt, type, -1, -1, NULL, 0)) <
	    0) {
		j->call->fail(j->call, "'%s' has no %s stream", path,
		    av_get_media_type_string(type));
		return -1;
	}
	if (in->pkt == NULL && (in->pkt = av_packet_alloc()) == NULL) {
		j->call->fail(j->call, "out of memory");
		return -1;
	}
	return 0;
}

/* Read in's next packet of its stream, rescaled and shifted; 0, or -1. */
static int
join_read(struct join *j, struct join_in *in)
{
	AVStream *is;
	int err;

	for (;;) {
		err = av_read_frame(in->fmt, in->pkt);
		if (err == AVERROR_EOF) {
			in->eof = 1;
			return 0;
		}
		if (err < 0) {
			j->call->fail(j->call, "cannot read a chunk: %s",
			    av_err2str(err));
			return -1;
		}
		if (in->pkt->stream_index == in->idx)
			break;
		av_packet_unref(in->pkt);
	}
	is = in->fmt->streams[in->idx];
	av_packet_rescale_ts(in->pkt, is->time_base, in->otb);
	/* The mp4 demuxer may leave a frame's duration 0: one frame. */
	if (in->pkt->duration <= 0 &&
	    is->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
	    is->avg_frame_rate.num > 0 && is->avg_frame_rate.den > 0)
		in->pkt->duration = av_rescale_q(1,
		    av_inv_q(is->avg_frame_rate), in->otb);
	if (in->pkt->pts != AV_NOPTS_VALUE)
		in->pkt->pts += in->shift;
	if (in->pkt->dts != AV_NOPTS_VALUE)
		in->pkt->dts += in->shift;
	in->ready = 1;
	return 0;
}

/* Open chunk k's file and its first packet; 0, or -1 (failed). */
static int
join_next_chunk(struct join *j)
{
	const cJSON *c = cJSON_GetArrayItem(j->chunks, j->next);
	const char *path = ladderd_ctx_str(c, "path", NULL);
	const cJSON *kf = cJSON_GetArrayItem(ladderd_ctx_get(c, "keyframes"),
	    0);
	AVCodecParameters *par;
	cJSON *b;
	int64_t first;
	int k = j->next++;

	join_in_close(&j->v);
	j->v.eof = 0;
	j->v.shift = 0;
	if (path == NULL) {
		j->call->fail(j->call, "chunk %d has no transcoded file", k);
		return -1;
	}
	/* A chunk with no frame (the last, past the video's end) adds none. */
	if (!cJSON_IsNumber(kf) &&
	    ladderd_ctx_num(c, "frames", 0) == 0) {
		j->v.eof = 1;
		return 0;
	}
	if (join_open(j, &j->v, path, AVMEDIA_TYPE_VIDEO) < 0)
		return -1;
	par = j->v.fmt->streams[j->v.idx]->codecpar;
	if (j->vpar != NULL &&
	    (par->codec_id != j->vpar->codec_id ||
		par->width != j->vpar->width ||
		par->height != j->vpar->height ||
		par->extradata_size != j->vpar->extradata_size ||
		(par->extradata_size > 0 &&
		    memcmp(par->extradata, j->vpar->extradata,
			(size_t)par->extradata_size) != 0))) {
		j->call->fail(j->call, "chunk %d's stream parameters differ "
		    "from chunk 0's ('%s')", k, path);
		return -1;
	}
	if (join_read(j, &j->v) < 0)
		return -1;
	if (j->v.eof)
		return 0;
	if (!(j->v.pkt->flags & AV_PKT_FLAG_KEY) || !cJSON_IsNumber(kf)) {
		j->call->fail(j->call, "chunk %d does not start with a "
		    "keyframe ('%s')", k, path);
		return -1;
	}
	/* Take off what the container added: the first frame is at kf. */
	first = llround(kf->valuedouble * JOIN_HZ);
	j->v.shift = first - j->v.pkt->pts;
	j->v.pkt->pts += j->v.shift;
	j->v.pkt->dts += j->v.shift;
	if (j->last_dts != INT64_MIN && j->v.pkt->dts <= j->last_dts) {
		j->call->fail(j->call, "chunk %d overlaps chunk %d (decode "
		    "time %.3f s after %.3f s)", k, k - 1,
		    (double)j->v.pkt->dts / JOIN_HZ,
		    (double)j->last_dts / JOIN_HZ);
		return -1;
	}
	if ((b = cJSON_CreateObject()) != NULL) {
		cJSON_AddNumberToObject(b, "index", k);
		cJSON_AddNumberToObject(b, "start", (double)first / JOIN_HZ);
		cJSON_AddNumberToObject(b, "gap", k == 0 ? 0 :
		    (double)(first - j->vend) / JOIN_HZ);
		cJSON_AddItemToArray(j->bounds, b);
	}
	return 0;
}

/* The next video packet ready in j->v (across chunks); v.eof at the end. */
static int
join_video_next(struct join *j)
{
	if (j->v.ready)
		return 0;
	while (!j->v.ready) {
		if (j->v.fmt != NULL && !j->v.eof) {
			if (join_read(j, &j->v) < 0)
				return -1;
			if (j->v.ready)
				return 0;
		}
		if (j->next >= j->nchunks) {
			j->v.eof = 1;
			return 0;
		}
		if (join_next_chunk(j) < 0)
			return -1;
	}
	return 0;
}

/* Write one packet of `in` as output stream `os`; 0, or -1. */
static int
join_write(struct join *j, struct join_in *in, int os)
{
	AVPacket *p = in->pkt;
	int err;

	if (in == &j->v) {
		j->frames++;
		j->vbytes += p->size;
		j->last_dts = p->dts;
		if (p->pts + p->duration > j->vend)
			j->vend = p->pts + p->duration;
		if (p->flags & AV_PKT_FLAG_KEY)
			cJSON_AddItemToArray(j->keyframes, cJSON_CreateNumber(
			    (double)p->pts / JOIN_HZ));
	} else {
		j->abytes += p->size;
		if (p->pts + p->duration > j->aend)
			j->aend = p->pts + p->duration;
	}
	p->stream_index = os;
	p->pos = -1;
	in->ready = 0;
	/* The muxer takes the packet's reference and leaves it blank. */
	if ((err = av_interleaved_write_frame(j->ofmt, p)) < 0) {
		j->call->fail(j->call, "cannot write to '%s': %s", j->tmp,
		    av_err2str(err));
		return -1;
	}
	return 0;
}

/* Add an output stream copying in's; its index, or -1. */
static int
join_add_stream(struct join *j, struct join_in *in, AVRational tb)
{
	AVStream *is = in->fmt->streams[in->idx];
	AVStream *os = avformat_new_stream(j->ofmt, NULL);

	if (os == NULL ||
	    avcodec_parameters_copy(os->codecpar, is->codecpar) < 0) {
		j->call->fail(j->call, "cannot add a stream to '%s'", j->tmp);
		return -1;
	}
	os->time_base = tb;
	os->avg_frame_rate = is->avg_frame_rate;
	os->sample_aspect_ratio = is->sample_aspect_ratio;
	in->otb = tb;
	return os->index;
}

/* Copy every chunk (and the audio) into j->tmp; 0, or -1. */
static int
join_copy(struct join *j)
{
	const char *apath = ladderd_ctx_str(j->call->ctx,
	    "rung.chunk_audio.path", NULL);
	int vo, ao = -1, err;

	if ((err = avformat_alloc_output_context2(&j->ofmt, NULL, "mp4",
		 j->tmp)) < 0) {
		j->call->fail(j->call, "cannot set up the mp4 muxer: %s",
		    av_err2str(err));
		return -1;
	}
	/* The first chunk with frames sets the stream. */
	j->v.otb = (AVRational){ 1, JOIN_HZ };
	if (join_video_next(j) < 0)
		return -1;
	if (j->v.eof || j->v.fmt == NULL) {
		j->call->fail(j->call, "no chunk holds a video frame");
		return -1;
	}
	if ((j->vpar = avcodec_parameters_alloc()) == NULL ||
	    avcodec_parameters_copy(j->vpar,
		j->v.fmt->streams[j->v.idx]->codecpar) < 0) {
		j->call->fail(j->call, "out of memory");
		return -1;
	}
	if ((vo = join_add_stream(j, &j->v, (AVRational){ 1, JOIN_HZ })) < 0)
		return -1;
	if (apath != NULL) {
		if (join_open(j, &j->a, apath, AVMEDIA_TYPE_AUDIO) < 0)
			return -1;
		if ((ao = join_add_stream(j, &j->a,
			 j->a.fmt->streams[j->a.idx]->time_base)) < 0)
			return -1;
	}
	if ((err = avio_open(&j->ofmt->pb, j->tmp, AVIO_FLAG_WRITE)) < 0) {
		j->call->fail(j->call, "cannot create '%s': %s", j->tmp,
		    av_err2str(err));
		return -1;
	}
	j->tmp_exists = 1;
	if ((err = avformat_write_header(j->ofmt, NULL)) < 0) {
		j->call->fail(j->call, "cannot write the header of '%s': %s",
		    j->tmp, av_err2str(err));
		return -1;
	}
	/* Interleave by decode time, as the muxer would buffer it anyway. */
	for (;;) {
		if (join_video_next(j) < 0)
			return -1;
		if (ao >= 0 && !j->a.ready && !j->a.eof &&
		    join_read(j, &j->a) < 0)
			return -1;
		if (j->v.eof && (ao < 0 || j->a.eof))
			break;
		if (ao >= 0 && j->a.ready &&
		    (j->v.eof || av_compare_ts(j->a.pkt->dts, j->a.otb,
				     j->v.pkt->dts, j->v.otb) < 0)) {
			if (join_write(j, &j->a, ao) < 0)
				return -1;
			continue;
		}
		if (join_write(j, &j->v, vo) < 0)
			return -1;
		if (j->call->cancelled(j->call)) {
			j->call->fail(j->call, "join of rung '%s' cancelled",
			    j->call->rung ? j->call->rung : "?");
			return -2;
		}
	}
	if ((err = av_write_trailer(j->ofmt)) < 0 ||
	    (err = avio_closep(&j->ofmt->pb)) < 0) {
		j->call->fail(j->call, "cannot finish '%s': %s", j->tmp,
		    av_err2str(err));
		return -1;
	}
	return 0;
}

/* fsync the joined file, rename it into place, fsync the folder. */
static int
join_commit(struct join *j)
{
	int err = j->call->commit_file(j->call, j->tmp, j->path);

	if (err < 0) {
		j->call->fail(j->call, "cannot commit '%s' as '%s': %s", j->tmp,
		    j->path, strerror(-err));
		return -1;
	}
	j->tmp_exists = 0;
	return 0;
}

/* ctx.transcode for the joined rung; the caller owns it. */
static cJSON *
join_result(struct join *j)
{
	const cJSON *c0 = cJSON_GetArrayItem(j->chunks, 0);
	static const char *const copied[] = { "kind", "width", "height",
		"frame_rate", "codec_profile", "codec_level", "profile_idc",
		"level_idc", "codecs", "filters", NULL };
	cJSON *out = cJSON_CreateObject();
	double dur = (double)j->vend / JOIN_HZ, bad = 0, dropped = 0;
	const cJSON *it;

	if (out == NULL)
		return NULL;
	cJSON_AddStringToObject(out, "path", j->path);
	for (int i = 0; copied[i]; i++) {
		const cJSON *v = ladderd_ctx_get(c0, copied[i]);

		if (v)
			cJSON_AddItemToObject(out, copied[i],
			    cJSON_Duplicate(v, 1));
	}
	cJSON_ArrayForEach(it, j->chunks) {
		bad += ladderd_ctx_num(it, "bad_packets", 0);
		dropped += ladderd_ctx_num(it, "dropped_frames", 0);
	}
	cJSON_AddNumberToObject(out, "frames", (double)j->frames);
	cJSON_AddNumberToObject(out, "duration", dur);
	cJSON_AddBoolToObject(out, "has_video", 1);
	cJSON_AddBoolToObject(out, "has_audio", j->a.fmt != NULL);
	cJSON_AddBoolToObject(out, "shared_decode", 0);
	cJSON_AddItemToObject(out, "keyframes", j->keyframes);
	j->keyframes = NULL; /* out owns it now */
	cJSON_AddNumberToObject(out, "bitrate",
	    dur > 0 ? round(j->vbytes * 8 / dur) : 0);
	if (j->a.fmt != NULL) {
		double adur = av_q2d(j->a.otb) * (double)j->aend;

		cJSON_AddStringToObject(out, "audio_codecs", "mp4a.40.2");
		cJSON_AddNumberToObject(out, "audio_duration", adur);
		cJSON_AddNumberToObject(out, "audio_bitrate",
		    adur > 0 ? round(j->abytes * 8 / adur) : 0);
	}
	cJSON_AddNumberToObject(out, "bad_packets", bad);
	cJSON_AddNumberToObject(out, "dropped_frames", dropped);
	cJSON_AddNumberToObject(out, "chunks", j->nchunks);
	cJSON_AddItemToObject(out, "chunk_boundaries", j->bounds);
	j->bounds = NULL;
	return out;
}

enum ladderd_rc
ladderd_transcode_join(struct ladderd_call *call)
{
	struct join j = {
		.call = call,
		.chunks = ladderd_ctx_get(call->ctx, "rung.chunks"),
		.last_dts = INT64_MIN,
	};
	const char *rung = call->rung ? call->rung :
	    ladderd_ctx_str(call->ctx, "rung.name", "");
	enum ladderd_rc rc = LADDERD_FAIL;
	cJSON *out = NULL;
	int n, err;

	j.nchunks = cJSON_GetArraySize(j.chunks);
	j.keyframes = cJSON_CreateArray();
	j.bounds = cJSON_CreateArray();
	if (j.keyframes == NULL || j.bounds == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	if (j.nchunks < 1) {
		call->fail(call, "rung '%s' has no chunks to join", rung);
		goto out;
	}
	if ((n = call->path(call, LADDERD_PATH_TRANSCODED, rung, j.path,
		 sizeof(j.path))) < 0 ||
	    snprintf(j.tmp, sizeof(j.tmp), "%s.part", j.path) >=
		(int)sizeof(j.tmp)) {
		call->fail(call, "cannot compute the path of rung '%s'", rung);
		goto out;
	}
	{
		char dir[PATH_MAX];

		if (call->path(call, LADDERD_PATH_RUNG_STATE, rung, dir,
			sizeof(dir)) < 0 ||
		    (err = call->mkdirs(call, dir)) < 0) {
			call->fail(call, "cannot create the folder of rung "
			    "'%s'", rung);
			goto out;
		}
	}
	if ((err = join_copy(&j)) < 0) {
		rc = err == -2 ? LADDERD_RETRY : LADDERD_FAIL;
		goto out;
	}
	if (join_commit(&j) < 0)
		goto out;
	if ((out = join_result(&j)) == NULL ||
	    ladderd_encode_summary(call->ctx, out) < 0 ||
	    (ladderd_ctx_str(out, "filters", "")[0] != '\0' &&
		ladderd_summary_str(call->ctx, "filters",
		    ladderd_ctx_str(out, "filters", "")) < 0) ||
	    ladderd_ctx_set(call->ctx, "transcode", out) < 0) {
		call->fail(call, "cannot store the transcode results");
		goto out;
	}
	out = NULL; /* the context owns it now */
	call->log(call, LADDERD_LOG_INFO, "joined %d chunks: %lld frames, "
	    "%.3f s", j.nchunks, (long long)j.frames,
	    (double)j.vend / JOIN_HZ);
	call->progress(call, 1.0);
	rc = LADDERD_OK;
out:
	cJSON_Delete(out);
	if (j.ofmt != NULL && j.ofmt->pb != NULL)
		(void)avio_closep(&j.ofmt->pb);
	if (j.tmp_exists)
		(void)unlink(j.tmp);
	avformat_free_context(j.ofmt);
	join_in_close(&j.v);
	join_in_close(&j.a);
	avcodec_parameters_free(&j.vpar);
	cJSON_Delete(j.keyframes);
	cJSON_Delete(j.bounds);
	return rc;
}

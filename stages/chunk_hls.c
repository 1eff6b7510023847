/*
 * stages/chunk_hls.c - a rung's HLS media playlist and segments, by stream
 * copy through libavformat's "hls" muxer (no container code of our own).
 *
 * Reads ctx.transcode.path, ctx.profile.segment_duration/segment_type and the
 * rung name. Writes call->path(HLS_DIR, rung)/{index.m3u8, init.mp4,
 * seg_NNNNN.m4s|ts}. Adds ctx.chunk_hls = { playlist, segment_type, init,
 * timescale, duration, segments [{uri, duration, bytes, start, length}],
 * peak_bitrate, avg_bitrate, max_segment_bitrate, target_duration }.
 *
 * start/length are decode times in the muxer's output time base (for fMP4 the
 * mp4 track timescale), relative to the track's first sample: exactly the
 * tfdt of each segment, which the DASH stage turns into a SegmentTimeline.
 * peak_bitrate is RFC 8216's peak segment bit rate (4.3.4.2: largest rate of
 * any run of segments lasting 0.5..1.5 target durations; the init section is
 * not a media segment and is not counted).
 *
 * Fails on an unreadable input, a muxer error, or a playlist that does not
 * check out (tags, target duration, a segment file missing, segments that do
 * not line up with the keyframes).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libavutil/avstring.h>
#include <libavutil/mathematics.h>

#include "avlog.h"
#include "stage.h"

#define CHUNK_HLS_PLAYLIST_MAX (4u << 20)
#define CHUNK_HLS_EXTINF_MAX 86400.0 /* s; a segment longer is nonsense */

/* A packet of the stream the muxer cuts on, in the output time base. */
struct chunk_hls_pkt {
	int64_t pts;
	int64_t dts;
	int64_t duration;
	int key;
};

/* A segment as the playlist lists it. */
struct chunk_hls_seg {
	char uri[64];
	double extinf;
	int64_t bytes;
	int64_t start;
	int64_t length;
};

struct chunk_hls_job {
	const char *rung;
	int fmp4;
	int seg_dur;
	char dir[4096];	     /* HLS_DIR of the rung */
	char playlist[4096]; /* its index.m3u8 */
	char rel[4096];	     /* the rung folder, package-relative */
	struct chunk_hls_pkt *pkts;
	size_t npkts, cap;
	struct chunk_hls_seg *segs;
	size_t nsegs;
	AVRational tb;	 /* output time base of the cut stream */
	int has_video;
	int64_t offset;	 /* media time of presentation time 0 */
	int target;	 /* EXT-X-TARGETDURATION as written */
	int version_tag; /* EXT-X-VERSION seen */
};

static int
chunk_hls_interrupt(void *opaque)
{
	struct ladderd_call *call = opaque;

	return call->cancelled(call);
}

/*
 * Remove what an earlier attempt left in the rung folder (a retry after a
 * crash): the muxer would overwrite the names it reuses but not the extra
 * segments of a longer earlier run.
 */
static int
chunk_hls_clean(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		char path[4096];

		if (strncmp(n, "seg_", 4) != 0 && strcmp(n, "init.mp4") != 0 &&
		    strncmp(n, "index.m3u8", 10) != 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, n) >=
		    (int)sizeof(path))
			continue;
		if (unlink(path) < 0 && errno != ENOENT) {
			rc = -errno;
			break;
		}
	}
	closedir(d);
	return rc;
}

/*
 * What a packet without a duration lasts, in `tb`: one frame at the
 * stream's frame rate, or one audio frame. Packets reach us with duration 0
 * from some MP4s (seen with transcode's output), and the hls muxer then
 * measures EXTINF from pts gaps, a frame short on the last segment.
 */
static int64_t
chunk_hls_frame(const AVStream *ist, AVRational tb)
{
	const AVCodecParameters *par = ist->codecpar;
	AVRational fr = ist->avg_frame_rate;

	if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
		if (par->sample_rate <= 0)
			return 0;
		return av_rescale_q(par->frame_size > 0 ? par->frame_size :
		    1024, (AVRational){ 1, par->sample_rate }, tb);
	}
	if (fr.num <= 0 || fr.den <= 0)
		fr = ist->r_frame_rate;
	if (fr.num <= 0 || fr.den <= 0)
		return 0;
	return av_rescale_q(1, av_inv_q(fr), tb);
}

static int
chunk_hls_push(struct chunk_hls_job *job, const AVPacket *pkt)
{
	if (job->npkts == job->cap) {
		size_t cap = job->cap ? job->cap * 2 : 4096;
		void *p = av_realloc_array(job->pkts, cap, sizeof(*job->pkts));

		if (p == NULL)
			return -ENOMEM;
		job->pkts = p;
		job->cap = cap;
	}
	job->pkts[job->npkts++] = (struct chunk_hls_pkt){
		.pts = pkt->pts == AV_NOPTS_VALUE ? pkt->dts : pkt->pts,
		.dts = pkt->dts == AV_NOPTS_VALUE ? pkt->pts : pkt->dts,
		.duration = pkt->duration,
		.key = !!(pkt->flags & AV_PKT_FLAG_KEY),
	};
	return 0;
}

/*
 * Open `input` into *ret_in (interruptible by cancel) and find its first
 * video and audio streams (-1 for none). 0, or -1 with the message
 * recorded.
 */
static int
chunk_hls_open(struct ladderd_call *call, const char *input,
    AVFormatContext **ret_in, int *ret_vin, int *ret_ain)
{
	AVFormatContext *in;
	int err;

	if ((in = avformat_alloc_context()) == NULL) {
		call->fail(call, "out of memory");
		return -1;
	}
	in->interrupt_callback.callback = chunk_hls_interrupt;
	in->interrupt_callback.opaque = call;
	/* On failure avformat_open_input frees `in` and sets it NULL. */
	err = avformat_open_input(&in, input, NULL, NULL);
	*ret_in = in;
	if (err < 0) {
		call->fail(call, "cannot open '%s': %s", input,
		    av_err2str(err));
		return -1;
	}
	*ret_vin = av_find_best_stream(in, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	*ret_ain = av_find_best_stream(in, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
	if (*ret_vin < 0 && *ret_ain < 0) {
		call->fail(call, "'%s' has neither video nor audio", input);
		return -1;
	}
	return 0;
}

/*
 * Add copies of input streams `vin` and `ain` (video first: the hls muxer
 * cuts on the first video stream) to `out`, and record in `map` which
 * output stream each input stream feeds. 0, or -1 with the message
 * recorded.
 */
static int
chunk_hls_add_streams(struct ladderd_call *call, const char *input,
    AVFormatContext *in, AVFormatContext *out, int vin, int ain, int *map)
{
	int err;

	for (int k = 0; k < 2; k++) {
		int idx = k == 0 ? vin : ain;
		AVStream *ost;

		if (idx < 0)
			continue;
		if ((ost = avformat_new_stream(out, NULL)) == NULL) {
			call->fail(call, "out of memory");
			return -1;
		}
		if ((err = avcodec_parameters_copy(ost->codecpar,
			 in->streams[idx]->codecpar)) < 0) {
			call->fail(call, "cannot copy stream %d of '%s': %s",
			    idx, input, av_err2str(err));
			return -1;
		}
		/* The mp4 tag of the source means nothing to the new muxer;
		 * HEVC is hvc1 (parameter sets in the hvcC only), the tag
		 * hls_info's CODECS names. */
		ost->codecpar->codec_tag =
		    ost->codecpar->codec_id == AV_CODEC_ID_HEVC
		    ? MKTAG('h', 'v', 'c', '1')
		    : 0;
		ost->time_base = in->streams[idx]->time_base;
		map[idx] = ost->index;
	}
	return 0;
}

/*
 * The hls muxer's options for this rung: VOD, segment length and type,
 * segments named in job->dir. 0, or -1 with the message recorded.
 */
static int
chunk_hls_options(struct chunk_hls_job *job, struct ladderd_call *call,
    AVDictionary **opts)
{
	char value[4200];

	(void)snprintf(value, sizeof(value), "%d", job->seg_dur);
	av_dict_set(opts, "hls_time", value, 0);
	av_dict_set(opts, "hls_playlist_type", "vod", 0);
	av_dict_set(opts, "hls_list_size", "0", 0);
	/* No program-date-time: VOD, and it would differ on every run. */
	av_dict_set(opts, "hls_flags", "independent_segments", 0);
	av_dict_set(opts, "hls_segment_type", job->fmp4 ? "fmp4" : "mpegts",
	    0);
	if (job->fmp4)
		av_dict_set(opts, "hls_fmp4_init_filename", "init.mp4", 0);
	if (snprintf(value, sizeof(value), "%s/seg_%%05d.%s", job->dir,
		job->fmp4 ? "m4s" : "ts") >= (int)sizeof(value)) {
		call->fail(call, "path too long: '%s'", job->dir);
		return -1;
	}
	av_dict_set(opts, "hls_segment_filename", value, 0);
	return 0;
}

/*
 * Record a failed read or write (`writing`) of `path`: a cancelled task is
 * stopped (retried later), a full disk under the package worth a retry,
 * anything else a failure.
 */
static enum ladderd_rc
chunk_hls_io_failed(struct ladderd_call *call, bool writing,
    const char *path, int err)
{
	if (call->cancelled(call)) {
		call->fail(call, "stopped");
		return LADDERD_RETRY;
	}
	call->fail(call, "cannot %s '%s': %s", writing ? "write" : "read",
	    path, av_err2str(err));
	return writing && err == AVERROR(ENOSPC) ? LADDERD_RETRY :
	    LADDERD_FAIL;
}

/*
 * Copy every packet of the mapped streams from `in` to `out` (output
 * stream 0 is the one the muxer cuts on: its packets go to job->pkts),
 * reporting progress against the input's duration. LADDERD_OK at the end
 * of the input, else the rc with the message recorded.
 */
static enum ladderd_rc
chunk_hls_copy(struct chunk_hls_job *job, struct ladderd_call *call,
    const char *input, AVFormatContext *in, AVFormatContext *out,
    const int *map)
{
	const int ref_out = 0;
	AVPacket *pkt = NULL;
	double total = 0;
	enum ladderd_rc rc = LADDERD_FAIL;
	int err;

	if (in->duration > 0)
		total = in->duration / (double)AV_TIME_BASE;
	if ((pkt = av_packet_alloc()) == NULL)
		goto nomem;
	for (;;) {
		AVStream *ist;
		int o;

		err = av_read_frame(in, pkt);
		if (err == AVERROR_EOF)
			break;
		if (err < 0) {
			rc = chunk_hls_io_failed(call, false, input, err);
			goto out;
		}
		if ((o = map[pkt->stream_index]) < 0) {
			av_packet_unref(pkt);
			continue;
		}
		ist = in->streams[pkt->stream_index];
		av_packet_rescale_ts(pkt, ist->time_base,
		    out->streams[o]->time_base);
		pkt->stream_index = o;
		pkt->pos = -1;
		if (pkt->duration <= 0)
			pkt->duration = chunk_hls_frame(ist,
			    out->streams[o]->time_base);
		if (o == ref_out) {
			if (chunk_hls_push(job, pkt) < 0) {
				av_packet_unref(pkt);
				goto nomem;
			}
			if (total > 0 && pkt->pts != AV_NOPTS_VALUE)
				call->progress(call, pkt->pts *
				    av_q2d(job->tb) / total);
		}
		/* The muxer takes the packet's reference (and unrefs pkt). */
		if ((err = av_interleaved_write_frame(out, pkt)) < 0) {
			rc = chunk_hls_io_failed(call, true, job->playlist,
			    err);
			goto out;
		}
	}
	rc = LADDERD_OK;
	goto out;
nomem:
	call->fail(call, "out of memory");
out:
	av_packet_free(&pkt);
	return rc;
}

/*
 * Copy the input's first video and first audio stream into the hls muxer.
 * On success the rung folder holds the playlist and segments and job->pkts
 * the packets of the stream the muxer cut on (video, else audio).
 */
static enum ladderd_rc
chunk_hls_mux(struct chunk_hls_job *job, struct ladderd_call *call,
    const char *input)
{
	AVFormatContext *in = NULL;
	AVFormatContext *out = NULL;
	AVDictionary *opts = NULL;
	AVDictionaryEntry *left = NULL;
	int *map = NULL;
	int vin = -1, ain = -1;
	enum ladderd_rc rc = LADDERD_FAIL;
	int err;

	if (chunk_hls_open(call, input, &in, &vin, &ain) < 0)
		goto out;
	if ((map = av_malloc_array(in->nb_streams, sizeof(*map))) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < in->nb_streams; i++)
		map[i] = -1;

	if ((err = avformat_alloc_output_context2(&out, NULL, "hls",
		 job->playlist)) < 0) {
		call->fail(call, "cannot set up the hls muxer for '%s': %s",
		    job->playlist, av_err2str(err));
		goto out;
	}
	out->interrupt_callback = in->interrupt_callback;
	/*
	 * Hand the segment muxer the timestamps as they are: shifting the
	 * B-frame decode delay (negative dts) to zero here would delay the
	 * picture by that much (an empty edit in init.mp4) and play the AAC
	 * priming samples; movenc copes with negative dts itself.
	 */
	out->avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED;
	if (chunk_hls_add_streams(call, input, in, out, vin, ain, map) < 0)
		goto out;
	job->has_video = vin >= 0;

	if (chunk_hls_options(job, call, &opts) < 0)
		goto out;
	if ((err = avformat_write_header(out, &opts)) < 0) {
		call->fail(call, "cannot start '%s': %s", job->playlist,
		    av_err2str(err));
		goto out;
	}
	if ((left = av_dict_get(opts, "", NULL, AV_DICT_IGNORE_SUFFIX))) {
		/* An option the muxer ignored would change the package. */
		call->fail(call, "the hls muxer does not know option '%s'",
		    left->key);
		goto trailer;
	}
	/* The muxer copies its segment muxer's time base back here. */
	job->tb = out->streams[0]->time_base;

	if ((rc = chunk_hls_copy(job, call, input, in, out, map)) !=
	    LADDERD_OK)
		goto trailer;
	if ((err = av_write_trailer(out)) < 0) {
		call->fail(call, "cannot finish '%s': %s", job->playlist,
		    av_err2str(err));
		rc = LADDERD_FAIL;
		goto out;
	}
	rc = LADDERD_OK;
	goto out;

trailer:
	/* Close the segment files; the result is discarded anyway. */
	(void)av_write_trailer(out);
out:
	av_dict_free(&opts);
	av_freep(&map);
	avformat_free_context(out); /* the hls muxer closes its own files */
	avformat_close_input(&in);
	return rc;
}

/* "#EXTINF:4.000000," -> 4.0; the rest of the playlist checks. */
static enum ladderd_rc
chunk_hls_parse(struct chunk_hls_job *job, struct ladderd_call *call,
    char *text)
{
	size_t cap = 0;
	double extinf = -1;
	int playlist_type = 0, endlist = 0, map = 0, independent = 0;
	char *save = NULL;

	job->target = -1;
	if (strncmp(text, "#EXTM3U", 7) != 0) {
		call->fail(call, "'%s' does not start with #EXTM3U",
		    job->playlist);
		return LADDERD_FAIL;
	}
	for (char *line = strtok_r(text, "\r\n", &save); line != NULL;
	     line = strtok_r(NULL, "\r\n", &save)) {
		if (av_strstart(line, "#EXT-X-TARGETDURATION:", NULL))
			job->target = atoi(line + 22);
		else if (strcmp(line, "#EXT-X-PLAYLIST-TYPE:VOD") == 0)
			playlist_type = 1;
		else if (strcmp(line, "#EXT-X-ENDLIST") == 0)
			endlist = 1;
		else if (strcmp(line, "#EXT-X-INDEPENDENT-SEGMENTS") == 0)
			independent = 1;
		else if (av_strstart(line, "#EXT-X-VERSION:", NULL))
			job->version_tag = atoi(line + 15);
		else if (strcmp(line, "#EXT-X-MAP:URI=\"init.mp4\"") == 0)
			map = 1;
		else if (av_strstart(line, "#EXTINF:", NULL)) {
			extinf = strtod(line + 8, NULL);
			/* (also NaN, "inf": TARGETDURATION is an int of it) */
			if (!(extinf >= 0 && extinf <= CHUNK_HLS_EXTINF_MAX)) {
				call->fail(call, "'%s': bad duration in '%s'",
				    job->playlist, line);
				return LADDERD_FAIL;
			}
		}
		else if (line[0] != '#' && line[0] != '\0') {
			struct chunk_hls_seg *s;

			if (extinf < 0 || strlen(line) >= sizeof(s->uri) ||
			    strchr(line, '/') != NULL) {
				call->fail(call, "'%s': unexpected line '%s'",
				    job->playlist, line);
				return LADDERD_FAIL;
			}
			if (job->nsegs == cap) {
				size_t n = cap ? cap * 2 : 64;
				void *p = av_realloc_array(job->segs, n,
				    sizeof(*job->segs));

				if (p == NULL) {
					call->fail(call, "out of memory");
					return LADDERD_FAIL;
				}
				job->segs = p;
				cap = n;
			}
			s = &job->segs[job->nsegs++];
			memset(s, 0, sizeof(*s));
			av_strlcpy(s->uri, line, sizeof(s->uri));
			s->extinf = extinf;
			extinf = -1;
		}
	}
	/*
	 * The muxer leaves INDEPENDENT-SEGMENTS out of audio-only playlists
	 * (every AAC frame is independent anyway; the master's tag covers
	 * them).
	 */
	if (!job->has_video)
		independent = 1;
	/*
	 * A clip shorter than half a second gets TARGETDURATION:0 from the
	 * muxer (it rounds): valid here, chunk_hls_target writes 1.
	 */
	if (job->target < 0 || !playlist_type || !endlist || !independent ||
	    (job->fmp4 && !map) || job->nsegs == 0) {
		call->fail(call, "'%s' lacks %s", job->playlist,
		    job->target < 0	  ? "#EXT-X-TARGETDURATION" :
		    !playlist_type	  ? "#EXT-X-PLAYLIST-TYPE:VOD" :
		    !endlist		  ? "#EXT-X-ENDLIST" :
		    !independent	  ? "#EXT-X-INDEPENDENT-SEGMENTS" :
		    job->fmp4 && !map	  ? "#EXT-X-MAP" : "segments");
		return LADDERD_FAIL;
	}
	return LADDERD_OK;
}

/*
 * Where the muxer cut: it starts a new segment at the first cut-able packet
 * (a keyframe of the video stream; any packet of an audio-only stream) whose
 * pts lies segment_duration * k past the first pts, k = 1, 2, ... Check that
 * against the playlist and give each segment its start/length (decode time
 * relative to the first packet: what movenc writes as tfdt).
 */
static enum ladderd_rc
chunk_hls_cut(struct chunk_hls_job *job, struct ladderd_call *call)
{
	const struct chunk_hls_pkt *p = job->pkts;
	int64_t first_pts, first_dts, end_dts = INT64_MIN, maxdur = 0;
	size_t seg = 0;
	int64_t k = 1;
	double tbs = av_q2d(job->tb);

	if (job->npkts == 0) {
		call->fail(call, "'%s' has no packets to cut",
		    job->playlist);
		return LADDERD_FAIL;
	}
	first_pts = p[0].pts;
	first_dts = p[0].dts;
	/* The transcode contract: presentation starts at timestamp 0. */
	job->offset = -first_dts;
	job->segs[0].start = 0;
	for (size_t i = 0; i < job->npkts; i++) {
		if (p[i].dts + p[i].duration > end_dts)
			end_dts = p[i].dts + p[i].duration;
		if (p[i].duration > maxdur)
			maxdur = p[i].duration;
		if (i == 0 || !p[i].key)
			continue;
		if (av_compare_ts(p[i].pts - first_pts, job->tb,
			k * job->seg_dur, (AVRational){ 1, 1 }) < 0)
			continue;
		k++;
		if (++seg >= job->nsegs) {
			call->fail(call, "'%s' lists %zu segments, the "
			    "keyframes make more", job->playlist, job->nsegs);
			return LADDERD_FAIL;
		}
		job->segs[seg].start = p[i].dts - first_dts;
	}
	if (seg + 1 != job->nsegs) {
		call->fail(call, "'%s' lists %zu segments, the keyframes "
		    "make %zu", job->playlist, job->nsegs, seg + 1);
		return LADDERD_FAIL;
	}
	for (size_t i = 0; i < job->nsegs; i++) {
		struct chunk_hls_seg *s = &job->segs[i];
		int64_t next = i + 1 < job->nsegs ? job->segs[i + 1].start :
		    end_dts - first_dts;

		s->length = next - s->start;
		/*
		 * The muxer measures EXTINF its own way (pts based); more than
		 * a frame apart means we cut somewhere else than it did.
		 */
		if (fabs(s->length * tbs - s->extinf) >
		    maxdur * tbs + 0.002) {
			call->fail(call, "'%s': segment %s lasts %.6f s, "
			    "expected %.6f s", job->playlist, s->uri,
			    s->extinf, s->length * tbs);
			return LADDERD_FAIL;
		}
	}
	return LADDERD_OK;
}

/*
 * Merge a last segment shorter than a tenth of the segment duration into
 * the one before it. The audio rung ends that way: the muxer cuts relative
 * to the first packet, the AAC priming frame at -1024 samples, so a single
 * frame spills into a segment of its own, and hls.js (which ignores the
 * edit list that hides the priming) takes that segment for an empty append
 * and never ends the stream. Two fMP4 fragments in one file are still one
 * valid media segment (and one DASH segment). `text` and `len` are the
 * playlist; on
 * success the two hold the rewritten playlist.
 */
static enum ladderd_rc
chunk_hls_merge_tail(struct chunk_hls_job *job, struct ladderd_call *call,
    char **text, size_t *len)
{
	struct chunk_hls_seg *last, *prev;
	char a[4200], b[4200], buf[1 << 16], inf[64];
	char *t = *text, *p1 = NULL, *p2 = NULL, *out = NULL, *end;
	int in = -1, fd = -1, err = 0;
	size_t n;

	/* (segs[nsegs - 2] of a one-segment list is not even a pointer) */
	if (!job->fmp4 || job->nsegs < 2)
		return LADDERD_OK;
	last = &job->segs[job->nsegs - 1];
	prev = &job->segs[job->nsegs - 2];
	if (last->extinf >= job->seg_dur / 10.0)
		return LADDERD_OK;
	if (strcmp(last->uri, prev->uri) == 0) {
		/* Appending a file to itself never reaches its end. */
		call->fail(call, "'%s': its last two segments are one file, "
		    "'%s'", job->playlist, last->uri);
		return LADDERD_FAIL;
	}
	/*
	 * The last two EXTINF lines: a tag counts only at the start of a
	 * line (two on one line put the second before the first's end).
	 */
	for (char *p = strstr(t, "#EXTINF:"); p; p = strstr(p + 1, "#EXTINF:")) {
		if (p != t && p[-1] != '\n')
			continue;
		p1 = p2;
		p2 = p;
	}
	end = strstr(t, "#EXT-X-ENDLIST");
	if (p1 == NULL || end == NULL || end < p2 ||
	    strchr(p1, '\n') == NULL || strchr(p1, '\n') >= p2) {
		call->fail(call, "'%s': cannot find its last segments",
		    job->playlist);
		return LADDERD_FAIL;
	}
	(void)snprintf(a, sizeof(a), "%s/%s", job->dir, prev->uri);
	(void)snprintf(b, sizeof(b), "%s/%s", job->dir, last->uri);
	if ((fd = open(a, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0 ||
	    (in = open(b, O_RDONLY | O_CLOEXEC)) < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		ssize_t r = read(in, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			goto out;
		}
		if (r == 0)
			break;
		if (write(fd, buf, (size_t)r) != r) {
			err = errno ? -errno : -EIO;
			goto out;
		}
	}
	if (fsync(fd) < 0) {
		err = -errno;
		goto out;
	}
	prev->bytes += last->bytes;
	prev->length += last->length;
	prev->extinf += last->extinf;
	job->nsegs--;
	/* The playlist: drop the last entry, lengthen the one before. */
	n = (size_t)snprintf(inf, sizeof(inf), "#EXTINF:%.6f,\n",
	    prev->extinf);
	if ((out = malloc(*len + sizeof(inf))) == NULL) {
		err = -ENOMEM;
		goto out;
	}
	{
		size_t head = (size_t)(p1 - t);
		const char *uri = strchr(p1, '\n');
		size_t mid = (size_t)(p2 - (uri + 1));
		size_t tail = *len - (size_t)(end - t);

		memcpy(out, t, head);
		memcpy(out + head, inf, n);
		memcpy(out + head + n, uri + 1, mid);
		memcpy(out + head + n + mid, end, tail);
		*len = head + n + mid + tail;
		out[*len] = '\0';
	}
	if ((err = call->write_atomic(call, job->playlist, out, *len)) < 0)
		goto out;
	(void)unlink(b);
	free(*text);
	*text = out;
	out = NULL;
out:
	if (in >= 0)
		close(in);
	if (fd >= 0)
		close(fd);
	free(out);
	if (err < 0) {
		call->fail(call, "cannot merge '%s' into '%s': %s", b, a,
		    strerror(-err));
		return err == -ENOSPC ? LADDERD_RETRY : LADDERD_FAIL;
	}
	return LADDERD_OK;
}

/*
 * RFC 8216 4.3.3.1 wants every EXTINF, rounded, <= TARGETDURATION; we write
 * ceil(max EXTINF) (stricter, never too small for any rounding rule a
 * player or validator applies). libavformat rounds to nearest, which the
 * audio rung's 21 ms AAC frames push below the ceiling: rewrite the line.
 */
static enum ladderd_rc
chunk_hls_target(struct chunk_hls_job *job, struct ladderd_call *call,
    const char *text, size_t len)
{
	double max = 0;
	int want;
	const char *at;
	char *fixed = NULL;
	char line[64];
	int n, err;

	for (size_t i = 0; i < job->nsegs; i++)
		if (job->segs[i].extinf > max)
			max = job->segs[i].extinf;
	/* EXTINF is printed with 6 decimals: 4.000000 is 4, not 5. */
	want = (int)ceil(max - 1e-6);
	if (want < 1)
		want = 1;
	if (job->target >= want)
		return LADDERD_OK;
	if ((at = strstr(text, "#EXT-X-TARGETDURATION:")) == NULL)
		return LADDERD_FAIL; /* checked by chunk_hls_parse */
	n = snprintf(line, sizeof(line), "#EXT-X-TARGETDURATION:%d", want);
	if ((fixed = malloc(len + sizeof(line))) == NULL) {
		call->fail(call, "out of memory");
		return LADDERD_FAIL;
	}
	{
		size_t head = (size_t)(at - text);
		const char *tail = at + strcspn(at, "\r\n");

		memcpy(fixed, text, head);
		memcpy(fixed + head, line, (size_t)n);
		memcpy(fixed + head + n, tail, len - (size_t)(tail - text));
		len = head + (size_t)n + (len - (size_t)(tail - text));
	}
	err = call->write_atomic(call, job->playlist, fixed, len);
	free(fixed);
	if (err < 0) {
		call->fail(call, "cannot write '%s': %s", job->playlist,
		    strerror(-err));
		return err == -ENOSPC ? LADDERD_RETRY : LADDERD_FAIL;
	}
	job->target = want;
	return LADDERD_OK;
}

static int
chunk_hls_read(const char *path, char **ret, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;

	if (f == NULL)
		return -errno;
	if ((buf = malloc(CHUNK_HLS_PLAYLIST_MAX + 1)) == NULL) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, CHUNK_HLS_PLAYLIST_MAX + 1, f);
	if (ferror(f) || n > CHUNK_HLS_PLAYLIST_MAX) {
		int e = ferror(f) ? -EIO : -EFBIG;

		fclose(f);
		free(buf);
		return e;
	}
	fclose(f);
	buf[n] = '\0';
	*ret = buf;
	*ret_len = n;
	return 0;
}

/* RFC 8216 4.3.4.2 peak segment bit rate over EXTINF durations. */
static double
chunk_hls_peak(const struct chunk_hls_job *job)
{
	double lo = 0.5 * job->target, hi = 1.5 * job->target;
	double peak = 0, bytes = 0, dur = 0;

	for (size_t i = 0; i < job->nsegs; i++) {
		double b = 0, d = 0;

		for (size_t j = i; j < job->nsegs; j++) {
			b += job->segs[j].bytes;
			d += job->segs[j].extinf;
			if (d > hi + 1e-6)
				break;
			if (d >= lo - 1e-6 && d > 0 && b * 8 / d > peak)
				peak = b * 8 / d;
		}
		bytes += job->segs[i].bytes;
		dur += job->segs[i].extinf;
	}
	/* Shorter than half a target duration in all: the whole of it. */
	if (peak == 0 && dur > 0)
		peak = bytes * 8 / dur;
	return peak;
}

static cJSON *
chunk_hls_json(const struct chunk_hls_job *job)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *arr = NULL;
	char buf[4200];
	double bytes = 0, dur = 0, maxseg = 0;

	if (o == NULL)
		return NULL;
	(void)snprintf(buf, sizeof(buf), "%s/index.m3u8", job->rel);
	cJSON_AddStringToObject(o, "playlist", buf);
	cJSON_AddStringToObject(o, "segment_type",
	    job->fmp4 ? "fmp4" : "mpegts");
	if (job->fmp4) {
		(void)snprintf(buf, sizeof(buf), "%s/init.mp4", job->rel);
		cJSON_AddStringToObject(o, "init", buf);
	}
	cJSON_AddNumberToObject(o, "timescale",
	    (double)job->tb.den / job->tb.num);
	cJSON_AddNumberToObject(o, "target_duration", job->target);
	cJSON_AddNumberToObject(o, "presentation_offset", (double)job->offset);
	if ((arr = cJSON_AddArrayToObject(o, "segments")) == NULL)
		goto fail;
	for (size_t i = 0; i < job->nsegs; i++) {
		const struct chunk_hls_seg *s = &job->segs[i];
		cJSON *e = cJSON_CreateObject();

		if (e == NULL || !cJSON_AddItemToArray(arr, e)) {
			cJSON_Delete(e);
			goto fail;
		}
		(void)snprintf(buf, sizeof(buf), "%s/%s", job->rel, s->uri);
		cJSON_AddStringToObject(e, "uri", buf);
		cJSON_AddNumberToObject(e, "duration", s->extinf);
		cJSON_AddNumberToObject(e, "bytes", (double)s->bytes);
		cJSON_AddNumberToObject(e, "start", (double)s->start);
		cJSON_AddNumberToObject(e, "length", (double)s->length);
		bytes += s->bytes;
		dur += s->extinf;
		if (s->extinf > 0 && s->bytes * 8 / s->extinf > maxseg)
			maxseg = s->bytes * 8 / s->extinf;
	}
	cJSON_AddNumberToObject(o, "duration", round(dur * 1e6) / 1e6);
	cJSON_AddNumberToObject(o, "peak_bitrate", ceil(chunk_hls_peak(job)));
	cJSON_AddNumberToObject(o, "avg_bitrate",
	    dur > 0 ? ceil(bytes * 8 / dur) : 0);
	cJSON_AddNumberToObject(o, "max_segment_bitrate", ceil(maxseg));
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

/*
 * Fill `job` from the context (rung, segment length and type, folders) and
 * make the rung's HLS folder, empty. LADDERD_OK, else the rc with the
 * message recorded (a full disk is worth a retry).
 */
static enum ladderd_rc
chunk_hls_prepare(struct chunk_hls_job *job, struct ladderd_call *call)
{
	const char *type = ladderd_ctx_str(call->ctx, "profile.segment_type",
	    "fmp4");
	char pkg[4096];
	size_t plen;
	int err;

	job->rung = call->rung ? call->rung :
	    ladderd_ctx_str(call->ctx, "rung.name", NULL);
	job->seg_dur = (int)ladderd_ctx_num(call->ctx,
	    "profile.segment_duration", 0);
	if (job->rung == NULL) {
		call->fail(call, "context has no rung name");
		return LADDERD_FAIL;
	}
	if (job->seg_dur < 1 || job->seg_dur > 60) {
		call->fail(call, "profile.segment_duration %d is not 1..60",
		    job->seg_dur);
		return LADDERD_FAIL;
	}
	if (strcmp(type, "fmp4") != 0 && strcmp(type, "mpegts") != 0) {
		call->fail(call, "profile.segment_type '%s' is neither fmp4 "
		    "nor mpegts", type);
		return LADDERD_FAIL;
	}
	job->fmp4 = strcmp(type, "fmp4") == 0;
	if (call->path(call, LADDERD_PATH_HLS_DIR, job->rung, job->dir,
		sizeof(job->dir)) < 0 ||
	    call->path(call, LADDERD_PATH_HLS_PLAYLIST, job->rung,
		job->playlist, sizeof(job->playlist)) < 0 ||
	    call->path(call, LADDERD_PATH_PACKAGE, NULL, pkg,
		sizeof(pkg)) < 0) {
		call->fail(call, "cannot name the HLS folder of rung '%s'",
		    job->rung);
		return LADDERD_FAIL;
	}
	/* Segment URIs are relative to the package (the master's folder). */
	plen = strlen(pkg);
	if (strncmp(job->dir, pkg, plen) != 0 || job->dir[plen] != '/') {
		call->fail(call, "'%s' is not inside the package '%s'",
		    job->dir, pkg);
		return LADDERD_FAIL;
	}
	av_strlcpy(job->rel, job->dir + plen + 1, sizeof(job->rel));
	if ((err = call->mkdirs(call, job->dir)) < 0 ||
	    (err = chunk_hls_clean(job->dir)) < 0) {
		call->fail(call, "cannot prepare '%s': %s", job->dir,
		    strerror(-err));
		return err == -ENOSPC ? LADDERD_RETRY : LADDERD_FAIL;
	}
	return LADDERD_OK;
}

/*
 * Parse the playlist the muxer wrote (`text`), then check that every
 * segment it names (and init.mp4) exists and is not empty, recording each
 * segment's size. LADDERD_OK, else the rc with the message recorded.
 */
static enum ladderd_rc
chunk_hls_check(struct chunk_hls_job *job, struct ladderd_call *call,
    const char *text)
{
	/* chunk_hls_parse cuts its copy into lines. */
	char *copy = strdup(text);
	enum ladderd_rc rc;

	if (copy == NULL) {
		call->fail(call, "out of memory");
		return LADDERD_FAIL;
	}
	rc = chunk_hls_parse(job, call, copy);
	free(copy);
	if (rc != LADDERD_OK)
		return rc;
	for (size_t i = 0; i < job->nsegs + (size_t)job->fmp4; i++) {
		const char *name = i < job->nsegs ? job->segs[i].uri :
		    "init.mp4";
		char path[4200];
		struct stat st;

		(void)snprintf(path, sizeof(path), "%s/%s", job->dir, name);
		if (stat(path, &st) < 0 || st.st_size == 0) {
			call->fail(call, "segment '%s' is missing or empty",
			    path);
			return LADDERD_FAIL;
		}
		if (i < job->nsegs)
			job->segs[i].bytes = st.st_size;
	}
	return LADDERD_OK;
}

static enum ladderd_rc
chunk_hls_run(void *state, struct ladderd_call *call)
{
	struct chunk_hls_job job = { 0 };
	const char *input = ladderd_ctx_str(call->ctx, "transcode.path", NULL);
	char *text = NULL;
	size_t len = 0;
	cJSON *out = NULL;
	enum ladderd_rc rc = LADDERD_FAIL;
	int err;

	(void)state;
	if (input == NULL) {
		call->fail(call, "context has no transcode.path");
		goto out;
	}
	if ((rc = chunk_hls_prepare(&job, call)) != LADDERD_OK ||
	    (rc = chunk_hls_mux(&job, call, input)) != LADDERD_OK)
		goto out;
	rc = LADDERD_FAIL;
	if ((err = chunk_hls_read(job.playlist, &text, &len)) < 0) {
		call->fail(call, "cannot read '%s': %s", job.playlist,
		    strerror(-err));
		goto out;
	}
	if ((rc = chunk_hls_check(&job, call, text)) != LADDERD_OK ||
	    (rc = chunk_hls_cut(&job, call)) != LADDERD_OK ||
	    (rc = chunk_hls_merge_tail(&job, call, &text, &len)) !=
		LADDERD_OK ||
	    (rc = chunk_hls_target(&job, call, text, len)) != LADDERD_OK)
		goto out;

	rc = LADDERD_FAIL;
	if ((out = chunk_hls_json(&job)) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	/* The rung's summary (stage.h): its rates as the playlist has them. */
	if (ladderd_summary_num(call->ctx, "peak_bitrate",
		ladderd_ctx_num(out, "peak_bitrate", 0)) < 0 ||
	    ladderd_summary_num(call->ctx, "avg_bitrate",
		ladderd_ctx_num(out, "avg_bitrate", 0)) < 0 ||
	    ladderd_ctx_set(call->ctx, "chunk_hls", out) < 0) {
		call->fail(call, "cannot store chunk_hls results");
		goto out;
	}
	out = NULL; /* the context owns it now */
	call->progress(call, 1.0);
	rc = LADDERD_OK;
out:
	cJSON_Delete(out);
	free(text);
	av_freep(&job.pkts);
	av_freep(&job.segs);
	return rc;
}

LADDERD_STAGE_DEFINE("chunk_hls", "1.0", NULL, NULL, chunk_hls_run, NULL);

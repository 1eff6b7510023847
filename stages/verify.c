/*
 * stages/verify.c - check the package before it is published (post stage).
 *
 * Reads ctx.profile.{segment_duration, dash}, ctx.probe.{duration, video},
 * ctx.renditions[] ({rung, status, transcode.{kind, keyframes},
 * chunk_hls.{playlist, duration}}), ctx.chunk_dash (when present) and the
 * files under call->path(PACKAGE). Checks, in this order: the video rungs'
 * keyframes are identical (1 ms) and on segment_duration boundaries (one
 * frame); every ok rung lasts as long as the source (one segment_duration,
 * from chunk_hls and from its playlist's EXTINFs); a chunked rung's
 * chunks join without gap or overlap, each starting with a keyframe on the
 * grid; master.m3u8 and every
 * media playlist it names parse (#EXTM3U, media ones end with
 * #EXT-X-ENDLIST) and every URI in them is an existing, non-empty file
 * inside the package; every ok rung's playlist is in the master; the MPD
 * (and every file chunk_dash listed) opens with libavformat's dash demuxer.
 * Adds ctx.verify = { checked: [ "what was checked", ... ], ok: true }.
 * The first failure ends the stage with LADDERD_FAIL and a message naming
 * the rung or file ("rung 480p: keyframes differ from 720p at 8.000 s").
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

#include <libavformat/avformat.h>

#include "avcall.h"
#include "avlog.h"
#include "stage.h"
#include "crashpoint.h"

#define VERIFY_MAX_PLAYLIST (16u << 20)
#define VERIFY_MAX_PLAYLISTS 64
#define VERIFY_MAX_EXTINF 86400.0 /* s: one segment */

/* A media playlist already checked (by real path). */
struct verify_playlist {
	char real[PATH_MAX];
	double duration;
	int segments;
};

struct verify {
	struct ladderd_call *call;
	char pkg[PATH_MAX];	 /* call->path(PACKAGE) */
	char pkg_real[PATH_MAX]; /* its realpath, for the inside check */
	struct verify_playlist *pls;
	size_t nb_pls;
	cJSON *checked; /* ctx.verify.checked, being built */
	int files;	/* files checked */
};

static int
verify_ok_rendition(const cJSON *r)
{
	return strcmp(ladderd_ctx_str(r, "status", ""), "ok") == 0;
}

static void
verify_checked(struct verify *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
verify_checked(struct verify *v, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	(void)cJSON_AddItemToArray(v->checked, cJSON_CreateString(buf));
}

/*
 * Keyframes: every ok video rung has the same list (within 1 ms) and its
 * k-th keyframe is within one frame of k * segment_duration (with a
 * fractional frame rate the IDR is the frame nearest the boundary).
 */
static enum ladderd_rc
verify_keyframes(struct verify *v, const cJSON *ctx, int segdur)
{
	struct ladderd_call *call = v->call;
	const cJSON *r, *ref = NULL;
	const char *ref_name = NULL;
	double fps_num = ladderd_ctx_num(ctx, "probe.video.fps_num", 0);
	double fps_den = ladderd_ctx_num(ctx, "probe.video.fps_den", 0);
	double fps = fps_num > 0 && fps_den > 0 ? fps_num / fps_den :
	    ladderd_ctx_num(ctx, "probe.video.avg_fps", 0);
	double slack = (fps > 0 ? 1.0 / fps : 0.1) + 0.001;
	int rungs = 0, n = 0;

	cJSON_ArrayForEach(r, ladderd_ctx_get(ctx, "renditions")) {
		const char *kind, *name = ladderd_rendition(r, &kind);
		const cJSON *kf = ladderd_ctx_get(r, "transcode.keyframes");
		int i;

		if (!verify_ok_rendition(r) || strcmp(kind, "video") != 0)
			continue;
		n = cJSON_GetArraySize(kf);
		if (!cJSON_IsArray(kf) || n == 0) {
			call->fail(call, "rung %s: no keyframes recorded "
			    "(transcode.keyframes)", name);
			return LADDERD_FAIL;
		}
		/* against the first rung (checked below) first: says more */
		for (i = 0; ref != NULL && (i < n ||
		    i < cJSON_GetArraySize(ref)); i++) {
			const cJSON *a = cJSON_GetArrayItem(ref, i);
			const cJSON *b = cJSON_GetArrayItem(kf, i);

			if (a == NULL || b == NULL ||
			    fabs(a->valuedouble - b->valuedouble) > 0.001) {
				call->fail(call, "rung %s: keyframes differ "
				    "from %s at %.3f s", name, ref_name,
				    (a ? a : b)->valuedouble);
				return LADDERD_FAIL;
			}
		}
		for (i = 0; ref == NULL && i < n; i++) {
			double t = cJSON_GetArrayItem(kf, i)->valuedouble;

			if (fabs(t - (double)i * segdur) > slack) {
				call->fail(call, "rung %s: keyframe %d at "
				    "%.3f s is not on the %d s segment "
				    "boundary", name, i, t, i * segdur);
				return LADDERD_FAIL;
			}
		}
		if (ref == NULL) {
			ref = kf;
			ref_name = name;
		}
		rungs++;
	}
	/* A source without video: its audio renditions alone are checked
	 * below (durations, playlists, the MPD). */
	if (rungs == 0 && ladderd_ctx_bool(ctx, "probe.audio_only", 0)) {
		verify_checked(v, "keyframes: no video (audio-only source)");
		return LADDERD_OK;
	}
	if (rungs == 0) {
		call->fail(call, "no ok video rendition to publish");
		return LADDERD_FAIL;
	}
	verify_checked(v, "keyframes: %d video rung(s) aligned, %d keyframes "
	    "every %d s", rungs, n, segdur);
	return LADDERD_OK;
}

/*
 * Chunked rungs (transcode.chunk_boundaries, from the join): every chunk
 * after the first starts where the one before ended (no gap, no overlap:
 * within half a frame), with a keyframe of the rung, on the segment grid
 * (one frame), and the rung holds as many boundaries as chunks.
 */
static enum ladderd_rc
verify_chunks(struct verify *v, const cJSON *ctx, int segdur)
{
	struct ladderd_call *call = v->call;
	double fps = ladderd_ctx_num(ctx, "probe.video.avg_fps", 0);
	double frame = fps > 0 ? 1.0 / fps : 0.04;
	const cJSON *r;
	int rungs = 0, bounds = 0;

	cJSON_ArrayForEach(r, ladderd_ctx_get(ctx, "renditions")) {
		const char *kind, *name = ladderd_rendition(r, &kind);
		const cJSON *b = ladderd_ctx_get(r, "transcode.chunk_boundaries");
		const cJSON *kf = ladderd_ctx_get(r, "transcode.keyframes");
		const cJSON *it;
		int n = (int)ladderd_ctx_num(r, "transcode.chunks", 0);

		if (!verify_ok_rendition(r) || strcmp(kind, "video") != 0 ||
		    b == NULL)
			continue;
		/* An empty last chunk (past the video's end) has none. */
		if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) < n - 1 ||
		    cJSON_GetArraySize(b) > n) {
			call->fail(call, "rung %s: %d chunk boundaries recorded "
			    "for %d chunks", name, cJSON_GetArraySize(b), n);
			return LADDERD_FAIL;
		}
		cJSON_ArrayForEach(it, b) {
			double t = ladderd_ctx_num(it, "start", -1);
			double gap = ladderd_ctx_num(it, "gap", 0);
			int k = (int)ladderd_ctx_num(it, "index", 0), found = 0;
			const cJSON *x;

			if (fabs(gap) > frame / 2 + 0.0005) {
				call->fail(call, "rung %s: chunk %d starts %.3f s "
				    "%s the end of chunk %d", name, k,
				    fabs(gap), gap > 0 ? "after" : "before",
				    k - 1);
				return LADDERD_FAIL;
			}
			cJSON_ArrayForEach(x, kf)
				found |= cJSON_IsNumber(x) &&
				    fabs(x->valuedouble - t) < 0.001;
			if (!found || fabs(t - segdur * round(t / segdur)) >
				frame + 0.001) {
				call->fail(call, "rung %s: chunk %d starts at "
				    "%.3f s, not a keyframe on the %d s segment "
				    "grid", name, k, t, segdur);
				return LADDERD_FAIL;
			}
			bounds += k > 0;
		}
		rungs++;
	}
	if (rungs > 0)
		verify_checked(v, "chunks: %d chunked rung(s), %d joins between "
		    "chunks continuous, each at a keyframe on the grid", rungs, bounds);
	return LADDERD_OK;
}

/* Read a whole (small) file, NUL-terminated; 0 or a negative errno. */
static int
verify_read(const char *path, char **ret_buf)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, got;
	int rc = 0;

	if (f == NULL)
		return -errno;
	do {
		if (cap - len < 4096) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			if (cap > VERIFY_MAX_PLAYLIST) {
				rc = -EFBIG;
				goto out;
			}
			if ((nb = realloc(buf, cap)) == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
	} while (got > 0);
	if (ferror(f)) {
		rc = -EIO;
		goto out;
	}
	buf[len] = '\0';
	*ret_buf = buf;
	buf = NULL;
out:
	free(buf);
	(void)fclose(f);
	return rc;
}

/*
 * `uri` was found in the playlist at package-relative `from`: it must be a
 * relative reference to an existing, non-empty regular file inside the
 * package. Fills rel (package-relative, for messages) and real.
 */
static enum ladderd_rc
verify_uri(struct verify *v, const char *from, const char *uri, char *rel,
    size_t rel_size, char *real)
{
	struct ladderd_call *call = v->call;
	const char *slash = strrchr(from, '/');
	int dir_len = slash ? (int)(slash - from) : 0;
	char abs[PATH_MAX * 2];
	size_t n = strlen(v->pkg_real);
	struct stat st;
	int len;

	len = snprintf(rel, rel_size, "%.*s%s%s", dir_len, from,
	    dir_len ? "/" : "", uri);
	if (len < 0 || (size_t)len >= rel_size) {
		call->fail(call, "%s: URI '%s' is too long", from, uri);
		return LADDERD_FAIL;
	}
	if (uri[0] == '\0' || uri[0] == '/' || strstr(uri, "://") != NULL) {
		call->fail(call, "%s: URI '%s' is not a relative path inside "
		    "the package", from, uri);
		return LADDERD_FAIL;
	}
	len = snprintf(abs, sizeof(abs), "%s/%s", v->pkg, rel);
	if (len < 0 || (size_t)len >= sizeof(abs)) {
		call->fail(call, "%s: path of '%s' is too long", from, rel);
		return LADDERD_FAIL;
	}
	if (realpath(abs, real) == NULL) {
		call->fail(call, "%s: '%s' does not exist: %s", from, rel,
		    strerror(errno));
		return LADDERD_FAIL;
	}
	if (strncmp(real, v->pkg_real, n) != 0 || real[n] != '/') {
		call->fail(call, "%s: '%s' points outside the package", from,
		    rel);
		return LADDERD_FAIL;
	}
	if (stat(real, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		call->fail(call, "%s: '%s' is empty or not a file", from, rel);
		return LADDERD_FAIL;
	}
	v->files++;
	return LADDERD_OK;
}

/* The next line of *p (CR LF or LF), NUL-terminated in place; NULL at end. */
static char *
verify_line(char **p)
{
	char *line = *p;
	size_t n;

	if (line == NULL || *line == '\0')
		return NULL;
	n = strcspn(line, "\n");
	*p = line[n] ? line + n + 1 : line + n;
	line[n] = '\0';
	if (n > 0 && line[n - 1] == '\r')
		line[n - 1] = '\0';
	return line;
}

/* The value of URI="..." in a tag line, copied into buf; NULL if none. */
static const char *
verify_tag_uri(const char *line, char *buf, size_t size)
{
	const char *p = strstr(line, "URI=\""), *end;

	if (p == NULL)
		return NULL;
	p += 5;
	if ((end = strchr(p, '"')) == NULL || (size_t)(end - p) >= size)
		return NULL;
	memcpy(buf, p, (size_t)(end - p));
	buf[end - p] = '\0';
	return buf;
}

/*
 * The text (NUL-terminated, cut into lines in place) of the media playlist
 * at package-relative `rel`, real path `real`: #EXTM3U, #EXT-X-ENDLIST, at
 * least one segment, every URI (segments, EXT-X-MAP) a file in the
 * package. Records it in v->pls. The parser tests/fuzz/ drives.
 */
static enum ladderd_rc
verify_media_text(struct verify *v, const char *rel, const char *real,
    char *text)
{
	struct ladderd_call *call = v->call;
	struct verify_playlist *pl;
	char *p, *line, tag_uri[PATH_MAX];
	char seg_rel[PATH_MAX], seg_real[PATH_MAX];
	double duration = 0;
	int segments = 0, endlist = 0;

	p = text;
	line = verify_line(&p);
	if (line == NULL || strncmp(line, "#EXTM3U", 7) != 0) {
		call->fail(call, "%s: does not start with #EXTM3U", rel);
		return LADDERD_FAIL;
	}
	while ((line = verify_line(&p)) != NULL) {
		const char *uri;

		if (strncmp(line, "#EXTINF:", 8) == 0) {
			double d = strtod(line + 8, NULL);

			/* NaN would pass every duration comparison below. */
			if (!(d >= 0 && d <= VERIFY_MAX_EXTINF)) {
				call->fail(call, "%s: bad duration in '%.100s'",
				    rel, line);
				return LADDERD_FAIL;
			}
			duration += d;
		} else if (strcmp(line, "#EXT-X-ENDLIST") == 0) {
			endlist = 1;
		} else if (line[0] == '#') {
			uri = verify_tag_uri(line, tag_uri, sizeof(tag_uri));
			if (uri != NULL && verify_uri(v, rel, uri, seg_rel,
			    sizeof(seg_rel), seg_real) != LADDERD_OK)
				return LADDERD_FAIL;
		} else if (line[strspn(line, " \t")] != '\0') {
			if (verify_uri(v, rel, line, seg_rel, sizeof(seg_rel),
				seg_real) != LADDERD_OK)
				return LADDERD_FAIL;
			segments++;
		}
	}
	if (!endlist || segments == 0) {
		call->fail(call, "%s: %s", rel, !endlist ?
		    "does not end with #EXT-X-ENDLIST" : "has no segments");
		return LADDERD_FAIL;
	}
	pl = &v->pls[v->nb_pls++];
	(void)snprintf(pl->real, sizeof(pl->real), "%s", real);
	pl->duration = duration;
	pl->segments = segments;
	verify_checked(v, "%s: %d segments, %.3f s", rel, segments, duration);
	return LADDERD_OK;
}

/* The media playlist `rel` (real path `real`), once; see above. */
static enum ladderd_rc
verify_media(struct verify *v, const char *rel, const char *real)
{
	struct ladderd_call *call = v->call;
	enum ladderd_rc rc;
	char *text = NULL;
	int err;

	for (size_t i = 0; i < v->nb_pls; i++)
		if (strcmp(v->pls[i].real, real) == 0)
			return LADDERD_OK;
	if (v->nb_pls == VERIFY_MAX_PLAYLISTS) {
		call->fail(call, "more than %d media playlists",
		    VERIFY_MAX_PLAYLISTS);
		return LADDERD_FAIL;
	}
	if ((err = verify_read(real, &text)) < 0) {
		call->fail(call, "cannot read '%s': %s", rel, strerror(-err));
		return LADDERD_FAIL;
	}
	rc = verify_media_text(v, rel, real, text);
	free(text);
	return rc;
}

/*
 * The text (NUL-terminated, cut in place) of the master playlist at
 * package-relative `master_rel`, and every playlist it names (variants,
 * EXT-X-MEDIA, ...). The parser tests/fuzz/ drives.
 */
static enum ladderd_rc
verify_master_text(struct verify *v, const char *master_rel, char *text)
{
	struct ladderd_call *call = v->call;
	char *p, *line, tag_uri[PATH_MAX];
	char rel[PATH_MAX], real[PATH_MAX];
	int variants = 0;

	p = text;
	line = verify_line(&p);
	if (line == NULL || strncmp(line, "#EXTM3U", 7) != 0) {
		call->fail(call, "%s: does not start with #EXTM3U", master_rel);
		return LADDERD_FAIL;
	}
	while ((line = verify_line(&p)) != NULL) {
		const char *uri = NULL;
		int playlist = 0;

		if (line[0] == '#') {
			uri = verify_tag_uri(line, tag_uri, sizeof(tag_uri));
			playlist = strncmp(line, "#EXT-X-MEDIA:", 13) == 0 ||
			    strncmp(line, "#EXT-X-I-FRAME-STREAM-INF:",
				26) == 0 ||
			    strncmp(line, "#EXT-X-IMAGE-STREAM-INF:", 24) == 0;
		} else if (line[strspn(line, " \t")] != '\0') {
			uri = line;
			playlist = 1;
			variants++;
		}
		if (uri == NULL)
			continue;
		if (verify_uri(v, master_rel, uri, rel, sizeof(rel), real) !=
		    LADDERD_OK)
			return LADDERD_FAIL;
		if (playlist && verify_media(v, rel, real) != LADDERD_OK)
			return LADDERD_FAIL;
	}
	if (variants == 0) {
		call->fail(call, "%s: lists no variant stream", master_rel);
		return LADDERD_FAIL;
	}
	verify_checked(v, "%s: %d variant(s), %zu media playlist(s)",
	    master_rel, variants, v->nb_pls);
	return LADDERD_OK;
}

/* master.m3u8 and every playlist it names. */
static enum ladderd_rc
verify_master(struct verify *v, const char *master)
{
	struct ladderd_call *call = v->call;
	enum ladderd_rc rc;
	char *text = NULL;
	int err;

	if ((err = verify_read(master, &text)) < 0) {
		call->fail(call, "cannot read '%s': %s", master,
		    strerror(-err));
		return LADDERD_FAIL;
	}
	rc = verify_master_text(v, master + strlen(v->pkg) + 1, text);
	free(text);
	return rc;
}

/*
 * Each ok rendition: in the master, and as long as the source (chunk_hls
 * and its playlist) within one segment_duration.
 */
static enum ladderd_rc
verify_durations(struct verify *v, const cJSON *ctx, int segdur)
{
	struct ladderd_call *call = v->call;
	double src = ladderd_ctx_num(ctx, "probe.duration", -1);
	const cJSON *r;
	int n = 0;

	if (src <= 0) {
		call->fail(call, "context has no probe.duration");
		return LADDERD_FAIL;
	}
	cJSON_ArrayForEach(r, ladderd_ctx_get(ctx, "renditions")) {
		const char *kind, *name = ladderd_rendition(r, &kind);
		const char *pl = ladderd_ctx_str(r, "chunk_hls.playlist", NULL);
		double d = ladderd_ctx_num(r, "chunk_hls.duration", -1);
		const struct verify_playlist *found = NULL;
		char abs[PATH_MAX * 2], real[PATH_MAX];

		if (!verify_ok_rendition(r))
			continue;
		if (pl == NULL || d < 0) {
			call->fail(call, "rung %s: no chunk_hls.playlist or "
			    "chunk_hls.duration", name);
			return LADDERD_FAIL;
		}
		if ((size_t)snprintf(abs, sizeof(abs), "%s/%s", v->pkg, pl) >=
		    sizeof(abs))
			abs[0] = '\0'; /* too long: "not in the master" */
		for (size_t i = 0; realpath(abs, real) && i < v->nb_pls; i++)
			if (strcmp(v->pls[i].real, real) == 0)
				found = &v->pls[i];
		if (found == NULL) {
			call->fail(call, "rung %s: playlist '%s' is not in the "
			    "master playlist", name, pl);
			return LADDERD_FAIL;
		}
		if (fabs(d - src) > segdur || fabs(found->duration - src) >
		    segdur) {
			call->fail(call, "rung %s: lasts %.3f s (playlist "
			    "%.3f s) but the source %.3f s", name, d,
			    found->duration, src);
			return LADDERD_FAIL;
		}
		n++;
	}
	verify_checked(v, "durations: %d rendition(s) within %d s of the "
	    "source's %.3f s", n, segdur, src);
	return LADDERD_OK;
}

/*
 * The MPD opens with the dash demuxer (which reads every init segment and
 * the first media segments); every file chunk_dash listed exists.
 */
static enum ladderd_rc
verify_mpd(struct verify *v, const cJSON *ctx, const char *mpd, int segdur)
{
	struct ladderd_call *call = v->call;
	const AVInputFormat *dash = av_find_input_format("dash");
	const char *mpd_rel = mpd + strlen(v->pkg) + 1;
	const cJSON *reps = ladderd_ctx_get(ctx, "chunk_dash.representations");
	const cJSON *rep;
	AVFormatContext *fmt = NULL;
	enum ladderd_rc rc = LADDERD_FAIL;
	char rel[PATH_MAX], real[PATH_MAX];
	double src = ladderd_ctx_num(ctx, "probe.duration", -1);
	double d = ladderd_ctx_num(ctx, "chunk_dash.duration", -1);
	int err, files = v->files;
	int subs = cJSON_GetArraySize(ladderd_ctx_get(ctx, "subtitles.tracks"));
	AVDictionary *opts = NULL;

	if (dash == NULL) {
		call->fail(call, "cannot check '%s': libavformat has no dash "
		    "demuxer", mpd_rel);
		goto out;
	}
	if (verify_uri(v, mpd_rel, mpd_rel, rel, sizeof(rel), real) !=
	    LADDERD_OK)
		goto out;
	cJSON_ArrayForEach(rep, reps) {
		const char *init = ladderd_ctx_str(rep, "init", NULL);
		const cJSON *s;

		if (init != NULL && verify_uri(v, mpd_rel, init, rel,
		    sizeof(rel), real) != LADDERD_OK)
			goto out;
		cJSON_ArrayForEach(s, ladderd_ctx_get(rep, "segments")) {
			const char *uri = ladderd_ctx_str(s, "uri", "");

			if (verify_uri(v, mpd_rel, uri, rel, sizeof(rel),
			    real) != LADDERD_OK)
				goto out;
		}
	}
	if (d >= 0 && fabs(d - src) > segdur) {
		call->fail(call, "%s: lasts %.3f s but the source %.3f s",
		    mpd_rel, d, src);
		goto out;
	}
	/* Subtitle tracks are sidecar WebVTT files (chunk_dash, subtitles). */
	if ((err = av_dict_set(&opts, "allowed_extensions",
		 "aac,m4a,m4s,m4v,mov,mp4,webm,ts,vtt", 0)) < 0) {
		call->fail(call, "cannot open '%s' as DASH: %s", mpd_rel,
		    av_err2str(err));
		goto out;
	}
	if (ladderd_av_open(call, &fmt, mpd, dash, &opts, mpd_rel) < 0)
		goto out;
	if (cJSON_IsArray(reps) &&
	    (int)fmt->nb_streams != cJSON_GetArraySize(reps) + subs) {
		call->fail(call, "%s: the dash demuxer sees %u streams, "
		    "chunk_dash wrote %d representations and %d subtitle "
		    "tracks", mpd_rel, fmt->nb_streams,
		    cJSON_GetArraySize(reps), subs);
		goto out;
	}
	verify_checked(v, "%s: opens with %u stream(s), %d file(s) present",
	    mpd_rel, fmt->nb_streams, v->files - files);
	rc = LADDERD_OK;
out:
	av_dict_free(&opts);
	avformat_close_input(&fmt);
	return rc;
}

static enum ladderd_rc
verify_run(void *state, struct ladderd_call *call)
{
	struct verify v = { .call = call };
	const cJSON *ctx = call->ctx;
	int segdur = (int)ladderd_ctx_num(ctx, "profile.segment_duration", 0);
	char master[PATH_MAX], mpd[PATH_MAX];
	enum ladderd_rc rc = LADDERD_FAIL;
	cJSON *out = NULL;
	struct stat st;
	int err;

	(void)state;
	if (segdur <= 0) {
		call->fail(call, "profile.segment_duration must be positive");
		goto out;
	}
	if ((err = call->path(call, LADDERD_PATH_PACKAGE, NULL, v.pkg,
		 sizeof(v.pkg))) < 0 ||
	    (err = call->path(call, LADDERD_PATH_MASTER, NULL, master,
		 sizeof(master))) < 0 ||
	    (err = call->path(call, LADDERD_PATH_MPD, NULL, mpd,
		 sizeof(mpd))) < 0) {
		call->fail(call, "cannot compute the package paths: %s",
		    strerror(-err));
		goto out;
	}
	if (realpath(v.pkg, v.pkg_real) == NULL) {
		call->fail(call, "cannot open the package '%s': %s", v.pkg,
		    strerror(errno));
		goto out;
	}
	if (strncmp(master, v.pkg, strlen(v.pkg)) != 0 ||
	    strncmp(mpd, v.pkg, strlen(v.pkg)) != 0) {
		call->fail(call, "the playlists are not inside '%s'", v.pkg);
		goto out;
	}
	if ((out = cJSON_CreateObject()) == NULL ||
	    (v.checked = cJSON_AddArrayToObject(out, "checked")) == NULL ||
	    (v.pls = calloc(VERIFY_MAX_PLAYLISTS, sizeof(*v.pls))) == NULL) {
		call->fail(call, "out of memory");
		goto out;
	}
	if ((rc = verify_keyframes(&v, ctx, segdur)) != LADDERD_OK ||
	    (rc = verify_chunks(&v, ctx, segdur)) != LADDERD_OK)
		goto out;
	call->progress(call, 0.2);
	if ((rc = verify_master(&v, master)) != LADDERD_OK)
		goto out;
	call->progress(call, 0.5);
	LADDERD_CRASH_POINT("verify.master", NULL);
	if ((rc = verify_durations(&v, ctx, segdur)) != LADDERD_OK)
		goto out;
	rc = LADDERD_FAIL;
	if (ladderd_ctx_bool(ctx, "profile.dash", 0) || stat(mpd, &st) == 0) {
		if ((rc = verify_mpd(&v, ctx, mpd, segdur)) != LADDERD_OK)
			goto out;
		rc = LADDERD_FAIL;
	}
	cJSON_AddNumberToObject(out, "files", v.files);
	cJSON_AddBoolToObject(out, "ok", 1);
	if (ladderd_ctx_set(call->ctx, "verify", out) < 0) {
		call->fail(call, "cannot store verify results");
		goto out;
	}
	out = NULL; /* the context owns it now */
	call->progress(call, 1.0);
	rc = LADDERD_OK;
out:
	cJSON_Delete(out);
	free(v.pls);
	return rc;
}

LADDERD_STAGE_DEFINE("verify", "1.0", "packaging", NULL, verify_run, NULL);

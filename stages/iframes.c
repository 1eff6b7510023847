/*
 * stages/iframes.c - a video rung's I-frame playlist (RFC 8216 4.3.3.6,
 * EXT-X-I-FRAMES-ONLY) for trick play and scrubbing: no new media, each
 * entry an EXT-X-BYTERANGE into an existing segment that holds exactly one
 * I-frame, the keyframe every segment starts with (transcode puts one on
 * every segment boundary, closed GOPs).
 *
 *   fMP4  the range runs from the segment's first byte through its moof and
 *         the mdat header to the end of the first sample (trun: data
 *         offset + first sample size); the playlist names init.mp4 with
 *         EXT-X-MAP. The first sample must be a sync sample (trun's
 *         first_sample_flags or per-sample flags), else the segment is
 *         left out.
 *   TS    the range runs from the segment's first packet (PAT, PMT) to the
 *         packet before the next PES start on the video PID (found in the
 *         PMT), so the keyframe's whole PES is inside.
 *
 * Reads ctx.rung.kind (audio rungs are skipped), ctx.chunk_hls (segments:
 * uri, duration; playlist; segment_type) and profile.iframe_playlists
 * (default true). Writes <rung>/iframes.m3u8 and ctx.iframes = { uri,
 * bandwidth (peak of range bits / duration, like the rungs'),
 * average_bandwidth, count }; hls_footer adds EXT-X-I-FRAME-STREAM-INF.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stage.h"
#include "textbuf.h"

#define IFRAMES_MAX_HEAD (64 * 1024 * 1024) /* bytes read of a segment */
#define TS_PACKET 188

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Read the whole segment (at most IFRAMES_MAX_HEAD bytes). */
static int
iframes_read(const char *path, uint8_t **ret, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	for (;;) {
		if (len == cap) {
			uint8_t *p;

			cap = cap ? cap * 2 : 256 * 1024;
			if (cap > IFRAMES_MAX_HEAD ||
			    (p = realloc(buf, cap)) == NULL) {
				free(buf);
				close(fd);
				return cap > IFRAMES_MAX_HEAD ? -EFBIG : -ENOMEM;
			}
			buf = p;
		}
		if ((n = read(fd, buf + len, cap - len)) < 0) {
			int e = errno;

			free(buf);
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*ret = buf;
	*ret_len = len;
	return 0;
}

/*
 * Find box `type` among the boxes in [p, p + len): its payload and size.
 * 64-bit sizes are honoured; a box that runs past the end is refused.
 */
static const uint8_t *
iframes_box(const uint8_t *p, size_t len, const char *type, size_t *ret_size,
    size_t *ret_offset)
{
	size_t off = 0;

	while (len - off >= 8) {
		uint64_t size = be32(p + off);
		size_t hdr = 8;

		if (size == 1) {
			if (len - off < 16)
				return NULL;
			size = (uint64_t)be32(p + off + 8) << 32 |
			    be32(p + off + 12);
			hdr = 16;
		} else if (size == 0)
			size = len - off;
		if (size < hdr || size > len - off)
			return NULL;
		if (memcmp(p + off + 4, type, 4) == 0) {
			*ret_size = (size_t)size;
			if (ret_offset)
				*ret_offset = off;
			return p + off + hdr;
		}
		off += (size_t)size;
	}
	return NULL;
}

/*
 * fMP4: the length of [0, end of the first sample of the first fragment).
 * 0 when the first sample is not a sync sample, negative when the
 * segment cannot be read as one.
 */
static int64_t
iframes_fmp4(const uint8_t *seg, size_t len)
{
	size_t moof_size, moof_off, traf_size, tfhd_size, trun_size;
	const uint8_t *moof, *traf, *tfhd, *trun;
	uint32_t tf_flags, tr_flags, count, dflt_size = 0, dflt_flags = 0;
	uint32_t first_size, first_flags;
	int64_t data_offset;
	size_t at;

	if ((moof = iframes_box(seg, len, "moof", &moof_size, &moof_off)) ==
		NULL ||
	    (traf = iframes_box(moof, moof_size - 8, "traf", &traf_size,
		 NULL)) == NULL ||
	    (tfhd = iframes_box(traf, traf_size - 8, "tfhd", &tfhd_size,
		 NULL)) == NULL ||
	    (trun = iframes_box(traf, traf_size - 8, "trun", &trun_size,
		 NULL)) == NULL ||
	    tfhd_size < 16 || trun_size < 16)
		return -1;
	/* tfhd: version/flags, track_ID, then the optional fields. */
	tf_flags = be32(tfhd) & 0xffffff;
	at = 8;
	if (tf_flags & 0x1)
		at += 8; /* base_data_offset: we need moof-relative offsets */
	if (tf_flags & 0x2)
		at += 4;
	if (tf_flags & 0x8)
		at += 4;
	if (tf_flags & 0x10) {
		if (at + 4 > tfhd_size - 8)
			return -1;
		dflt_size = be32(tfhd + at);
		at += 4;
	}
	if (tf_flags & 0x20) {
		if (at + 4 > tfhd_size - 8)
			return -1;
		dflt_flags = be32(tfhd + at);
	}
	if ((tf_flags & 0x1) || !(tf_flags & 0x20000))
		return -1; /* only default-base-is-moof (what libavformat writes) */
	/* trun: version/flags, sample_count, [data_offset], [first flags]. */
	tr_flags = be32(trun) & 0xffffff;
	count = be32(trun + 4);
	at = 8;
	if (count == 0 || !(tr_flags & 0x1))
		return -1;
	data_offset = (int32_t)be32(trun + at);
	at += 4;
	first_flags = dflt_flags;
	if (tr_flags & 0x4) {
		if (at + 4 > trun_size - 8)
			return -1;
		first_flags = be32(trun + at);
		at += 4;
	}
	/* The first sample's entry: duration, size, flags, cts offset. */
	if (tr_flags & 0x100)
		at += 4;
	first_size = dflt_size;
	if (tr_flags & 0x200) {
		if (at + 4 > trun_size - 8)
			return -1;
		first_size = be32(trun + at);
		at += 4;
	}
	if ((tr_flags & 0x400) && !(tr_flags & 0x4)) {
		if (at + 4 > trun_size - 8)
			return -1;
		first_flags = be32(trun + at);
	}
	if (first_size == 0 || data_offset < 0)
		return -1;
	/* sample_is_non_sync_sample (ISO/IEC 14496-12 8.8.3.1). */
	if (first_flags & 0x10000)
		return 0;
	if ((uint64_t)moof_off + (uint64_t)data_offset + first_size > len)
		return -1;
	return (int64_t)moof_off + data_offset + first_size;
}

/*
 * MPEG-TS: the length of [0, the packet where the second PES on the video
 * PID starts), or the whole segment when there is none. Negative when no
 * PMT names a video stream.
 */
static int64_t
iframes_ts(const uint8_t *seg, size_t len)
{
	int pmt_pid = -1, video_pid = -1, starts = 0;

	for (size_t off = 0; off + TS_PACKET <= len; off += TS_PACKET) {
		const uint8_t *p = seg + off;
		int pid = (p[1] & 0x1f) << 8 | p[2];
		int pusi = p[1] & 0x40, afc = (p[3] >> 4) & 3;
		size_t pl = 4;

		if (p[0] != 0x47)
			return -1;
		if (afc == 2 || afc == 0)
			continue; /* no payload */
		if (afc == 3)
			pl += 1 + (size_t)p[4];
		if (pl >= TS_PACKET)
			continue;
		if (pid == video_pid && pusi && ++starts == 2)
			return (int64_t)off;
		if (!pusi || (pid != 0 && pid != pmt_pid))
			continue;
		/* A section: pointer_field, then the table. */
		pl += 1 + (size_t)p[pl];
		if (pl + 12 > TS_PACKET)
			continue;
		if (pid == 0 && p[pl] == 0x00) {
			size_t sec = ((size_t)(p[pl + 1] & 0x0f) << 8 | p[pl + 2]);
			size_t end = pl + 3 + sec - 4; /* before the CRC */

			if (end > TS_PACKET)
				end = TS_PACKET;
			for (size_t e = pl + 8; e + 4 <= end; e += 4) {
				int prog = p[e] << 8 | p[e + 1];

				if (prog != 0) {
					pmt_pid = (p[e + 2] & 0x1f) << 8 |
					    p[e + 3];
					break;
				}
			}
		} else if (pid == pmt_pid && p[pl] == 0x02) {
			size_t sec = ((size_t)(p[pl + 1] & 0x0f) << 8 | p[pl + 2]);
			size_t end = pl + 3 + sec - 4;
			size_t info = ((size_t)(p[pl + 10] & 0x0f) << 8 |
			    p[pl + 11]);

			if (end > TS_PACKET)
				end = TS_PACKET;
			for (size_t e = pl + 12 + info; e + 5 <= end;) {
				int type = p[e];
				int epid = (p[e + 1] & 0x1f) << 8 | p[e + 2];
				size_t es = ((size_t)(p[e + 3] & 0x0f) << 8 |
				    p[e + 4]);

				/* H.264, HEVC, MPEG-2 video. */
				if (type == 0x1b || type == 0x24 ||
				    type == 0x02) {
					video_pid = epid;
					break;
				}
				e += 5 + es;
			}
		}
	}
	return video_pid < 0 ? -1 : (int64_t)(len - len % TS_PACKET);
}

static enum ladderd_rc
iframes_run(void *state, struct ladderd_call *call)
{
	const cJSON *segs = ladderd_ctx_get(call->ctx, "chunk_hls.segments");
	const char *pl = ladderd_ctx_str(call->ctx, "chunk_hls.playlist", NULL);
	int fmp4 = strcmp(ladderd_ctx_str(call->ctx, "chunk_hls.segment_type",
			      "fmp4"), "mpegts") != 0;
	char pkg[4096], path[8300], rel[4096], uri[4200];
	struct textbuf b = { 0 };
	double peak = 0, bits = 0, dur = 0, target = 0;
	const cJSON *s;
	enum ladderd_rc rc = LADDERD_FAIL;
	cJSON *out = NULL;
	int count = 0, err;
	const char *slash;

	(void)state;
	if (strcmp(ladderd_ctx_str(call->ctx, "rung.kind", "video"),
		"video") != 0 ||
	    !ladderd_ctx_bool(call->ctx, "profile.iframe_playlists", 1))
		return LADDERD_SKIP;
	if (!cJSON_IsArray(segs) || pl == NULL ||
	    (slash = strrchr(pl, '/')) == NULL) {
		call->fail(call, "context has no chunk_hls segments");
		return LADDERD_FAIL;
	}
	(void)snprintf(rel, sizeof(rel), "%.*s", (int)(slash - pl), pl);
	if (call->path(call, LADDERD_PATH_PACKAGE, NULL, pkg, sizeof(pkg)) <
	    0) {
		call->fail(call, "cannot name the package folder");
		return LADDERD_FAIL;
	}
	cJSON_ArrayForEach(s, segs) {
		double d = ladderd_ctx_num(s, "duration", 0);
		if (d > target)
			target = d;
	}
	textbuf_printf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n"
	    "#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n"
	    "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-I-FRAMES-ONLY\n",
	    fmp4 ? 6 : 4, (int)ceil(target - 1e-6) > 0 ?
	    (int)ceil(target - 1e-6) : 1);
	if (fmp4)
		textbuf_printf(&b, "#EXT-X-MAP:URI=\"init.mp4\"\n");
	cJSON_ArrayForEach(s, segs) {
		const char *su = ladderd_ctx_str(s, "uri", "");
		double d = ladderd_ctx_num(s, "duration", 0);
		const char *base = strrchr(su, '/');
		uint8_t *seg = NULL;
		size_t len = 0;
		int64_t n;

		base = base ? base + 1 : su;
		if (snprintf(path, sizeof(path), "%s/%s", pkg, su) >=
			(int)sizeof(path) ||
		    strstr(su, "..") != NULL) {
			call->fail(call, "bad segment name '%s'", su);
			goto out;
		}
		if ((err = iframes_read(path, &seg, &len)) < 0) {
			call->fail(call, "cannot read '%s': %s", path,
			    strerror(-err));
			goto out;
		}
		n = fmp4 ? iframes_fmp4(seg, len) : iframes_ts(seg, len);
		free(seg);
		if (n < 0) {
			call->fail(call, "'%s' holds no I-frame this stage can "
			    "find", path);
			goto out;
		}
		/* A segment without a leading I-frame is left out, the time
		 * it covers goes to the entry before it. */
		if (n == 0 || d <= 0) {
			if (count == 0) {
				call->fail(call, "'%s' does not start with an "
				    "I-frame", path);
				goto out;
			}
			continue;
		}
		textbuf_printf(&b, "#EXTINF:%.6f,\n#EXT-X-BYTERANGE:%lld@0\n"
		    "%s\n", d, (long long)n, base);
		if (n * 8.0 / d > peak)
			peak = n * 8.0 / d;
		bits += n * 8.0;
		dur += d;
		count++;
	}
	textbuf_printf(&b, "#EXT-X-ENDLIST\n");
	if (b.failed || count == 0) {
		call->fail(call, b.failed ? "out of memory" : "no I-frame found");
		goto out;
	}
	(void)snprintf(path, sizeof(path), "%s/%s/iframes.m3u8", pkg, rel);
	if ((err = call->write_atomic(call, path, b.data, b.len)) < 0) {
		call->fail(call, "cannot write '%s': %s", path, strerror(-err));
		rc = err == -ENOSPC ? LADDERD_RETRY : LADDERD_FAIL;
		goto out;
	}
	(void)snprintf(uri, sizeof(uri), "%s/iframes.m3u8", rel);
	if ((out = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(out, "uri", uri) == NULL ||
	    cJSON_AddNumberToObject(out, "bandwidth", ceil(peak)) == NULL ||
	    cJSON_AddNumberToObject(out, "average_bandwidth",
		dur > 0 ? ceil(bits / dur) : 0) == NULL ||
	    cJSON_AddNumberToObject(out, "count", count) == NULL ||
	    ladderd_ctx_set(call->ctx, "iframes", out) < 0) {
		call->fail(call, "out of memory");
		goto out;
	}
	out = NULL; /* the context owns it now */
	rc = LADDERD_OK;
out:
	cJSON_Delete(out);
	free(b.data);
	return rc;
}

LADDERD_STAGE_DEFINE("iframes", "1.0", NULL, NULL, iframes_run, NULL);

/*
 * stages/source.h - open a task's source for demuxing, safely. Compiled
 * into each stage that reads ctx.input.path (probe, transcode, decode);
 * not part of the installed ABI.
 *
 * A dropped file is hostile until checked (issue 9, finding 2): a
 * playlist, a concat script or an image sequence makes libavformat open
 * further files named inside it, anywhere on the disk or the network. So:
 *   - the path is opened O_NOFOLLOW and must be a regular file;
 *   - libavformat reads it through an AVIOContext on that descriptor, and
 *     every further open a demuxer attempts (io_open) is refused;
 *   - the container must be on a whitelist of single-file formats
 *     (LADDERD_SOURCE_FORMATS), checked on the probed format before the
 *     demuxer runs, and given to libavformat as format_whitelist;
 *   - protocol_whitelist is "none": no protocol is ever needed.
 */
#ifndef LADDERD_SOURCE_H
#define LADDERD_SOURCE_H

#include <stddef.h>

#include <libavformat/avformat.h>

/* Demuxers that read one file and open nothing else. */
#define LADDERD_SOURCE_FORMATS                                               \
	"mov,matroska,avi,flv,mpegts,mpeg,mpegvideo,m4v,h264,hevc,obu,asf,"  \
	"mxf,ogg,nut,dv,yuv4mpegpipe,ivf,gxf,wav,w64,aiff,caf,mp3,aac,ac3,"  \
	"eac3,flac"

/* Sidecar subtitle files (a manifest's "subtitles"): text formats only. */
#define LADDERD_SOURCE_SUBTITLE_FORMATS "srt,webvtt,ass"

/* profile.max_pixels when the context has none (ladderd.conf's default). */
#define LADDERD_SOURCE_MAX_PIXELS (8192.0 * 4320.0)

struct ladderd_source {
	AVFormatContext *fmt; /* open, headers read; NULL before / after */
	AVIOContext *pb;      /* ours: AVFMT_FLAG_CUSTOM_IO */
	int fd;
};

/*
 * Open `path` into src->fmt (avformat_open_input done; no stream info
 * yet). `format`: the container the probe stage found (ctx.probe.format),
 * or NULL to probe; either way it must be on the whitelist. `cb` (may be
 * NULL) is the interrupt callback. Returns 0, or a negative AVERROR with a
 * sentence in err ("'PATH' is ..."). src must be zeroed with fd = -1
 * (LADDERD_SOURCE_INIT); ladderd_source_close() always.
 */
int ladderd_source_open(struct ladderd_source *src, const char *path,
    const char *format, const AVIOInterruptCB *cb, char *err, size_t errlen);
/*
 * The same for a sidecar subtitle file: probed, and only a format of
 * LADDERD_SOURCE_SUBTITLE_FORMATS is accepted.
 */
int ladderd_source_open_subtitles(struct ladderd_source *src,
    const char *path, char *err, size_t errlen);
void ladderd_source_close(struct ladderd_source *src);

#define LADDERD_SOURCE_INIT { .fmt = NULL, .pb = NULL, .fd = -1 }

#endif

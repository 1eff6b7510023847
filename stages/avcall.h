/*
 * avcall.h - what the libav stages share besides the log level (avlog.h):
 * a failure reported through call->fail with libav's text for its error
 * code, opening an input with the failure said once, and a frame's
 * duration across libavutil versions. Header-only; not installed (not
 * part of the stage ABI).
 */
#ifndef LADDERD_AVCALL_H
#define LADDERD_AVCALL_H

#include <stdarg.h>
#include <stdio.h>

#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>

#include "stage.h"

/* AVFrame.pkt_duration became AVFrame.duration in libavutil 58. */
#if LIBAVUTIL_VERSION_MAJOR >= 58
#define LADDERD_FRAME_DURATION(f) ((f)->duration)
#else
#define LADDERD_FRAME_DURATION(f) ((f)->pkt_duration)
#endif

/*
 * call->fail("MSG: <libav's text for err>"), or just MSG when err >= 0 (a
 * failure libav did not name). Returns err, or AVERROR(EINVAL) for
 * err >= 0, for the caller to pass up.
 */
static inline int ladderd_av_vfail(struct ladderd_call *call, int err,
    const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

static inline int
ladderd_av_vfail(struct ladderd_call *call, int err, const char *fmt,
    va_list ap)
{
	char msg[1024];

	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	if (err < 0)
		call->fail(call, "%s: %s", msg, av_err2str(err));
	else
		call->fail(call, "%s", msg);
	return err < 0 ? err : AVERROR(EINVAL);
}

/*
 * Open `url` (as `fmt`, or probed when NULL; `opts`: the demuxer's
 * options as avformat_open_input takes them, or NULL) and read its
 * streams' info into *ic. On failure call->fail says which step failed
 * about `shown` (how messages name the input) and the libav error is
 * returned; *ic is then NULL or for the caller to close.
 */
static inline int
ladderd_av_open(struct ladderd_call *call, AVFormatContext **ic,
    const char *url, const AVInputFormat *fmt, AVDictionary **opts,
    const char *shown)
{
	int err;

	if ((err = avformat_open_input(ic, url, fmt, opts)) < 0) {
		call->fail(call, "cannot open '%s'%s%s: %s", shown,
		    fmt ? " as " : "", fmt ? fmt->name : "", av_err2str(err));
		return err;
	}
	if ((err = avformat_find_stream_info(*ic, NULL)) < 0) {
		call->fail(call, "cannot read the streams of '%s': %s", shown,
		    av_err2str(err));
		return err;
	}
	return 0;
}

#endif

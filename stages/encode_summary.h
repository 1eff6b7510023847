/*
 * encode_summary.h - the rung summary (stage.h, "What the host reads")
 * that an encoder's result gives: picture size, frames, the RFC 6381
 * codecs string of what the rung carries, its measured bit rate. Shared
 * by transcode and transcode_join, which write the same ctx.transcode
 * shape, so the host reads ctx.summary and never ctx.transcode.
 */
#ifndef LADDERD_ENCODE_SUMMARY_H
#define LADDERD_ENCODE_SUMMARY_H

#include "stage.h"

static inline int
ladderd_encode_summary(cJSON *ctx, const cJSON *res)
{
	int audio = strcmp(ladderd_ctx_str(res, "kind", "video"), "audio") == 0;
	const char *codecs = ladderd_ctx_str(res,
	    audio ? "audio_codecs" : "codecs", "");

	if (!audio && ladderd_ctx_bool(res, "has_video", 0) &&
	    (ladderd_summary_num(ctx, "width",
		 ladderd_ctx_num(res, "width", 0)) < 0 ||
		ladderd_summary_num(ctx, "height",
		    ladderd_ctx_num(res, "height", 0)) < 0 ||
		/* Video frames encoded: the status's rung_frames (fps). */
		ladderd_summary_num(ctx, "frames",
		    ladderd_ctx_num(res, "frames", 0)) < 0))
		return -1;
	if (codecs[0] != '\0' &&
	    ladderd_summary_str(ctx, "codecs", codecs) < 0)
		return -1;
	return ladderd_summary_num(ctx, "bitrate",
	    ladderd_ctx_num(res, "bitrate", 0));
}

#endif

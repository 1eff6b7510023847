/*
 * stages/graph.h - libavfilter graphs of the media stages (probe, decode,
 * transcode); compiled into each of them, never into the daemon.
 *
 * A graph is one chain: a buffer source shaped like a first frame, the
 * filters of a description string ("bwdif=...,zscale=..."), a buffer sink.
 * What the chain is for a task (deinterlace, tone map, loudness) is
 * decided here too, from ctx.probe and ctx.profile only, so the shared
 * decoder and a rung that decodes for itself build the same picture.
 *
 * Fails on an unknown filter, bad options or a frame the filters refuse;
 * the message names the description.
 */
#ifndef LADDERD_GRAPH_H
#define LADDERD_GRAPH_H

#include <stddef.h>

#include <libavutil/frame.h>
#include <libavutil/rational.h>

#include "stage.h"

struct ladderd_graph;

/*
 * Build source -> desc -> sink for frames like `like` (video: size, pixel
 * format, aspect; audio: rate, sample format, channels) stamped in `tb`.
 * 0 and *ret (the caller owns it, ladderd_graph_free) or a negative
 * AVERROR with a message in err.
 */
int ladderd_graph_new(struct ladderd_graph **ret, const char *desc,
    const AVFrame *like, AVRational tb, char *err, size_t errsz);

/* Feed a frame (the graph takes its own reference) or NULL at the end. */
int ladderd_graph_push(struct ladderd_graph *g, const AVFrame *f);

/* 0: a frame in `out` (the caller unrefs it); AVERROR(EAGAIN); AVERROR_EOF. */
int ladderd_graph_pull(struct ladderd_graph *g, AVFrame *out);

/* The time base of the frames that come out. */
AVRational ladderd_graph_time_base(const struct ladderd_graph *g);

/* NULL-safe. */
void ladderd_graph_free(struct ladderd_graph **g);

/*
 * The picture filters a task needs, from ctx.probe.video (interlaced,
 * field_order, transfer, primaries, matrix, rotation) and
 * ctx.profile.video (deinterlace: auto|on|off), in this order:
 * deinterlace, tone map, turn upright (transpose / hflip,vflip). "" when
 * none (frames then skip the graph, so a plain source is encoded exactly
 * as before). *ret_sdr is set when the chain tone maps HDR to BT.709 SDR
 * (the encoder must tag BT.709). 0, -ENAMETOOLONG, or -EINVAL for a
 * rotation that is not a multiple of 90 degrees.
 */
int ladderd_graph_video_plan(const cJSON *ctx, char *buf, size_t n,
    int *ret_sdr);

/*
 * The loudness filter of an audio encode: loudnorm in linear mode with the
 * probe's measurement (ctx.probe.loudness) toward profile.audio.loudness,
 * or "" when the target is 0 or nothing was measured. 0 or -ENAMETOOLONG.
 */
int ladderd_graph_audio_plan(const cJSON *ctx, char *buf, size_t n);

#endif

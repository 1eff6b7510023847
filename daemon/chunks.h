/*
 * chunks.h - how a task's video rungs are cut into chunks (README,
 * "Chunked encoding"): with profile.chunk_duration = S (a whole multiple of
 * segment_duration, 0 = off) and a source longer than
 * profile.chunk_min_source, every video rung becomes ceil(duration / S)
 * units of S seconds, each encoding only its time range, plus the rung's
 * own unit that joins them. Pure arithmetic on the context: the chord
 * (chord.c) makes the units.
 */
#ifndef LADDERD_CHUNKS_H
#define LADDERD_CHUNKS_H

#include <cjson/cJSON.h>

#define LADDERD_CHUNKS_MAX 10000

/*
 * The number of chunks of each video rung of the task in ctx (0: not
 * chunked), and their length in seconds in *ret_len. A remainder shorter
 * than one segment joins the last chunk, so no chunk is nearly empty.
 */
int ladderd_chunks_plan(const cJSON *ctx, int *ret_len);

/*
 * Chunk `index` of `count` of `len` seconds, as ctx.rung.chunk for its
 * unit: { index, count, start, end, preroll } in seconds, end 0 for the
 * last one (to the end of the source); preroll: how long before its start
 * its encoder begins (profile.chunk_preroll_segments segments; their
 * packets are dropped).
 * NULL when out of memory; the caller owns it.
 */
cJSON *ladderd_chunks_range(const cJSON *ctx, int index, int count, int len);

/* A chunk's unit name, "<rung>.chunkNNN"; 0, or -ENAMETOOLONG. */
int ladderd_chunks_unit_name(const char *rung, int index, char *buf,
    size_t size);

#endif

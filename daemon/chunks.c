/*
 * chunks.c - cutting a task's video rungs into chunks (chunks.h).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "chunks.h"
#include "ctx.h"

int
ladderd_chunks_plan(const cJSON *ctx, int *ret_len)
{
	int len = (int)ladderd_ctx_num(ctx, "profile.chunk_duration", 0);
	int seg = (int)ladderd_ctx_num(ctx, "profile.segment_duration", 4);
	double min = ladderd_ctx_num(ctx, "profile.chunk_min_source", 0);
	double dur = ladderd_ctx_num(ctx, "probe.duration", 0);
	double count;

	*ret_len = 0;
	/* The schema checks the multiple; a hand-made context may not. */
	if (len <= 0 || seg <= 0 || len % seg != 0 || !(dur > min) ||
	    !(dur > len))
		return 0;
	count = floor(dur / len);
	/* The rest: a chunk of its own when it holds a segment or more. */
	if (dur - count * len >= seg)
		count++;
	if (count < 2 || count > LADDERD_CHUNKS_MAX)
		return 0;
	*ret_len = len;
	return (int)count;
}

cJSON *
ladderd_chunks_range(const cJSON *ctx, int index, int count, int len)
{
	cJSON *c = cJSON_CreateObject();
	double preroll = ladderd_ctx_num(ctx, "profile.chunk_preroll_segments",
	    1) * ladderd_ctx_num(ctx, "profile.segment_duration", 4);

	if (c == NULL ||
	    !cJSON_AddNumberToObject(c, "index", index) ||
	    !cJSON_AddNumberToObject(c, "count", count) ||
	    !cJSON_AddNumberToObject(c, "start", (double)index * len) ||
	    !cJSON_AddNumberToObject(c, "end",
		index + 1 < count ? (double)(index + 1) * len : 0) ||
	    !cJSON_AddNumberToObject(c, "preroll", index > 0 ? preroll : 0)) {
		cJSON_Delete(c);
		return NULL;
	}
	return c;
}

int
ladderd_chunks_unit_name(const char *rung, int index, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s.chunk%03d", rung, index);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

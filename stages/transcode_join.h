/*
 * stages/transcode_join.h - the transcode stage's join of a chunked rung
 * (transcode_join.c), part of transcode.so.
 */
#ifndef LADDERD_TRANSCODE_JOIN_H
#define LADDERD_TRANSCODE_JOIN_H

#include "stage.h"

/*
 * ctx.rung.chunks (the chunks' ctx.transcode, in order) into the rung's
 * transcoded MP4, by stream copy; sets ctx.transcode as an encode of the
 * whole rung would.
 */
enum ladderd_rc ladderd_transcode_join(struct ladderd_call *call);

#endif

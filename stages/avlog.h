/*
 * avlog.h - libav's log level for the stages that use libav.
 *
 * The level is process-wide state of the shared libavutil. The daemon's
 * own binary does not link libav (it would map the graphics and GPU stack
 * libavutil depends on into the supervisor), so each libav stage sets it
 * when it is loaded: errors only, unless LADDERD_AV_LOG asks for more
 * (a libav level number, for debugging a stage). Every libav stage
 * includes this header once; setting the same level twice is harmless.
 * Not installed: it is not part of the stage ABI.
 */
#ifndef LADDERD_AVLOG_H
#define LADDERD_AVLOG_H

#include <stdlib.h>

#include <libavutil/log.h>

__attribute__((constructor)) static void
ladderd_avlog_init(void)
{
	const char *env = getenv("LADDERD_AV_LOG");

	av_log_set_level(env != NULL ? atoi(env) : AV_LOG_ERROR);
}

#endif

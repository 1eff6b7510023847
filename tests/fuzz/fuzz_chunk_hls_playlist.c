/*
 * fuzz_chunk_hls_playlist.c - libFuzzer harness for the chunk_hls stage's
 * reading of the playlist libavformat's hls muxer wrote
 * (stages/chunk_hls.c: chunk_hls_parse). The first byte sets the job
 * (bit 0: fMP4 segments, bit 1: the rung has video); the rest is the
 * playlist's text.
 */
#include "../../stages/chunk_hls.c"

#include <stdint.h>
#include <stdlib.h>

#include "fake_call.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ladderd_call call;
	struct chunk_hls_job job = { 0 };
	char *text;

	if (size < 1)
		return 0;
	if ((text = malloc(size)) == NULL)
		abort();
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	fake_call_init(&call, NULL);
	job.rung = "fuzz";
	job.fmp4 = data[0] & 1;
	job.has_video = (data[0] >> 1) & 1;
	job.seg_dur = 4;
	snprintf(job.playlist, sizeof(job.playlist), "index.m3u8");
	if (chunk_hls_parse(&job, &call, text) == LADDERD_OK &&
	    (job.nsegs == 0 || job.target < 1))
		abort(); /* accepted what it says it refuses */
	av_freep(&job.segs);
	free(text);
	return 0;
}

/*
 * fuzz_chunk_hls_playlist.c - libFuzzer harness for the chunk_hls stage's
 * handling of the playlist libavformat's hls muxer wrote
 * (stages/chunk_hls.c): chunk_hls_parse reads it; when it is accepted,
 * chunk_hls_merge_tail (fMP4: a last segment under a tenth of
 * segment_duration is appended to the one before and the playlist
 * rewritten; the two segment files are made in a temporary folder) and
 * chunk_hls_target (TARGETDURATION rewritten to ceil(max EXTINF)) rewrite
 * it as the stage does. The first byte sets the job (bit 0: fMP4
 * segments, bit 1: the rung has video); the rest is the playlist's text.
 */
#include "../../stages/chunk_hls.c"

#include <stdint.h>
#include <stdlib.h>

#include "fake_call.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[256];

static void
fuzz_cleanup(void)
{
	char cmd[300];

	if (fuzz_dir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_dir);
	(void)system(cmd);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/ladderd-fuzz-hls.XXXXXX",
	    tmp ? tmp : "/tmp");
	if (mkdtemp(fuzz_dir) == NULL)
		abort();
	atexit(fuzz_cleanup);
	return 0;
}

/* The segment file `uri` in the job's folder, a few bytes long. */
static void
fuzz_segment(const struct chunk_hls_job *job, const char *uri)
{
	char p[4200];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", job->dir, uri);
	if ((f = fopen(p, "w")) != NULL) {
		fputs("fragment", f);
		fclose(f);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ladderd_call call;
	struct chunk_hls_job job = { 0 };
	char *text, *copy;
	size_t len;

	if (size < 1)
		return 0;
	len = size - 1;
	if ((text = malloc(len + 1)) == NULL || (copy = malloc(len + 1)) == NULL)
		abort();
	memcpy(text, data + 1, len);
	text[len] = '\0';
	len = strlen(text); /* what chunk_hls_read's caller sees as text */
	memcpy(copy, text, len + 1);
	fake_call_init(&call, NULL);
	job.rung = "fuzz";
	job.fmp4 = data[0] & 1;
	job.has_video = (data[0] >> 1) & 1;
	job.seg_dur = 4;
	snprintf(job.dir, sizeof(job.dir), "%s", fuzz_dir);
	snprintf(job.playlist, sizeof(job.playlist), "%s/index.m3u8",
	    fuzz_dir);
	if (chunk_hls_parse(&job, &call, copy) == LADDERD_OK) {
		/* TARGETDURATION:0 (a clip under half a second) is accepted:
		 * chunk_hls_target rewrites it to at least 1. */
		if (job.nsegs == 0 || job.target < 0)
			abort(); /* accepted what it says it refuses */
		if (job.nsegs >= 2) {
			fuzz_segment(&job, job.segs[job.nsegs - 2].uri);
			fuzz_segment(&job, job.segs[job.nsegs - 1].uri);
		}
		if (chunk_hls_merge_tail(&job, &call, &text, &len) ==
		    LADDERD_OK)
			(void)chunk_hls_target(&job, &call, text, len);
	}
	av_freep(&job.segs);
	free(copy);
	free(text);
	return 0;
}

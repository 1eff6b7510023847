/*
 * fuzz_hls_info_codecs.c - libFuzzer harness for the hls_info stage's
 * parsers of codec configuration bytes (stages/codecs.h, through
 * stages/hls_info.c): codecs_avc1
 * on H.264 extradata (avcC record or Annex B) and codecs_mp4a on an
 * AudioSpecificConfig, both the whole input.
 */
#include "../../stages/hls_info.c"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	AVCodecParameters par = { 0 };
	uint8_t *ed;
	char buf[64];

	if (size > 1u << 20)
		return 0;
	/* A copy of exactly the bytes, so ASan sees any overread. */
	if ((ed = malloc(size ? size : 1)) == NULL)
		abort();
	memcpy(ed, data, size);
	if (codecs_avc1(ed, (int)size, buf, sizeof(buf)) == 0 &&
	    strncmp(buf, "avc1.", 5) != 0)
		abort();
	par.extradata = ed;
	par.extradata_size = (int)size;
	par.profile = FF_PROFILE_UNKNOWN;
	codecs_mp4a(&par, buf, sizeof(buf));
	free(ed);
	return 0;
}

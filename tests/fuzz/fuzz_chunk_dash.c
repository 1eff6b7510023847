/*
 * fuzz_chunk_dash.c - libFuzzer harness for the chunk_dash stage's
 * hand-written parsers (stages/chunk_dash.c). The first byte picks one:
 *   even: dash_fragment_times on the rest, an MP4 fragment (moof/traf/
 *         tfdt/tfhd/trun boxes) as the muxer wrote it;
 *   odd:  dash_template on the rest as segment URIs, one per line (the
 *         numbered pattern becomes SegmentTemplate@media), and
 *         dash_codec_part on the first line as a CODECS list.
 */
#include "../../stages/chunk_dash.c"

#include <stdint.h>
#include <stdlib.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_template(char *text)
{
	struct dash_rep rep = { 0 };
	char *save = NULL, part[64];

	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (rep.nb_segs == 0) {
			dash_codec_part(line, 0, part, sizeof(part));
			dash_codec_part(line, 1, part, sizeof(part));
		}
		if (dash_seg_add(&rep, 0, 1, 1, line) < 0)
			break;
	}
	if (rep.nb_segs > 0 && dash_template(&rep) == 0 &&
	    strstr(rep.media, "$Number") == NULL)
		abort(); /* a template without the number */
	av_freep(&rep.segs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t t = 0, d = 0;
	char *text;

	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0) {
		/* A copy of exactly the bytes, so ASan sees any overread. */
		uint8_t *buf = malloc(size - 1 ? size - 1 : 1);

		if (buf == NULL)
			abort();
		memcpy(buf, data + 1, size - 1);
		if (dash_fragment_times(buf, size - 1, &t, &d) == 0 && d <= 0)
			abort();
		free(buf);
		return 0;
	}
	if ((text = malloc(size)) == NULL)
		abort();
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	fuzz_template(text);
	free(text);
	return 0;
}

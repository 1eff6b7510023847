/*
 * codecs.h - RFC 6381 codec strings (HLS CODECS, DASH @codecs) worked out
 * once, from a stream's codec configuration bytes: avc1 from an avcC
 * record or an Annex B SPS, hvc1 from an hvcC, av01 from an av1C, mp4a
 * from an AudioSpecificConfig. Header-only, for the stages that name
 * codecs (hls_info, chunk_dash, transcode). Not installed: not part of
 * the stage ABI.
 */
#ifndef LADDERD_CODECS_H
#define LADDERD_CODECS_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>

/*
 * avc1.PPCCLL from H.264 extradata: an avcC record (first byte 1: profile,
 * constraint flags and level are bytes 1..3) or Annex B (the three bytes
 * after the first SPS NAL header; they cannot hold an emulation prevention
 * byte since profile_idc is never 0). 0, or -EINVAL without an SPS.
 */
static inline int
codecs_avc1(const uint8_t *ed, int size, char *buf, size_t bufsize)
{
	if (ed == NULL || size < 4)
		return -EINVAL;
	if (ed[0] == 1) {
		(void)snprintf(buf, bufsize, "avc1.%02x%02x%02x", ed[1], ed[2],
		    ed[3]);
		return 0;
	}
	for (int i = 0; i + 6 < size; i++) {
		if (ed[i] != 0 || ed[i + 1] != 0 || ed[i + 2] != 1)
			continue;
		if ((ed[i + 3] & 0x1f) == 7) {
			(void)snprintf(buf, bufsize, "avc1.%02x%02x%02x",
			    ed[i + 4], ed[i + 5], ed[i + 6]);
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * hvc1.… from an hvcC record (ISO/IEC 14496-15 8.3.3, codecs string per its
 * Annex E): general profile space (A/B/C prefix) and profile_idc, the 32
 * compatibility flags bit-reversed in hex, tier L/H with level_idc, then
 * the six constraint bytes in hex with trailing zero bytes left out.
 * 0, or -EINVAL when the record is not an hvcC.
 */
static inline int
codecs_hvc1(const uint8_t *ed, int size, char *buf, size_t bufsize)
{
	uint32_t compat, rev = 0;
	int space, tier, idc, last = 0;
	size_t len;

	if (ed == NULL || size < 13 || ed[0] != 1)
		return -EINVAL;
	space = ed[1] >> 6;
	tier = (ed[1] >> 5) & 1;
	idc = ed[1] & 0x1f;
	compat = (uint32_t)ed[2] << 24 | (uint32_t)ed[3] << 16 |
	    (uint32_t)ed[4] << 8 | ed[5];
	for (int i = 0; i < 32; i++)
		rev |= ((compat >> i) & 1u) << (31 - i);
	(void)snprintf(buf, bufsize, "hvc1.%s%d.%X.%c%d",
	    space == 0 ? "" : space == 1 ? "A" : space == 2 ? "B" : "C", idc,
	    rev, tier ? 'H' : 'L', ed[12]);
	for (int i = 0; i < 6; i++)
		if (ed[6 + i] != 0)
			last = i + 1;
	for (int i = 0; i < last; i++) {
		len = strlen(buf);
		(void)snprintf(buf + len, bufsize - len, ".%X", ed[6 + i]);
	}
	return 0;
}

/*
 * av01.P.LLT.DD from an av1C record (AV1 in ISOBMFF 2.3): seq_profile,
 * seq_level_idx_0 (two digits) with the tier (M/H), bit depth (08, 10,
 * 12). The short form: the optional fields after DD say the defaults
 * (4:2:0, BT.709 when tagged so) and players take it as is.
 * 0, or -EINVAL when the record is not an av1C.
 */
static inline int
codecs_av01(const uint8_t *ed, int size, char *buf, size_t bufsize)
{
	int profile, level, tier, depth;

	if (ed == NULL || size < 4 || ed[0] != 0x81)
		return -EINVAL;
	profile = ed[1] >> 5;
	level = ed[1] & 0x1f;
	tier = ed[2] >> 7;
	depth = (ed[2] & 0x40) ? ((ed[2] & 0x20) ? 12 : 10) : 8;
	(void)snprintf(buf, bufsize, "av01.%d.%02d%c.%02d", profile, level,
	    tier ? 'H' : 'M', depth);
	return 0;
}

/*
 * mp4a.40.AOT from the AudioSpecificConfig: the object type is the first 5
 * bits; 31 escapes to 32 + the next 6 bits (ISO 14496-3 1.6.2.1).
 */
static inline void
codecs_mp4a(const AVCodecParameters *par, char *buf, size_t bufsize)
{
	const uint8_t *ed = par->extradata;
	int aot = 2; /* AAC-LC, what transcode makes */

	if (ed != NULL && par->extradata_size >= 2) {
		aot = ed[0] >> 3;
		if (aot == 31)
			aot = 32 + (((ed[0] & 7) << 3) | (ed[1] >> 5));
	} else if (par->profile != FF_PROFILE_UNKNOWN) {
		aot = par->profile + 1; /* FF_PROFILE_AAC_* are AOT - 1 */
	}
	(void)snprintf(buf, bufsize, "mp4a.40.%d", aot);
}

/*
 * The video codec string of `par` (H.264, HEVC or AV1 with its
 * configuration record); 0, or -EINVAL when it cannot be named.
 */
static inline int
codecs_video(const AVCodecParameters *par, char *buf, size_t bufsize)
{
	switch (par->codec_id) {
	case AV_CODEC_ID_H264:
		return codecs_avc1(par->extradata, par->extradata_size, buf,
		    bufsize);
	case AV_CODEC_ID_HEVC:
		return codecs_hvc1(par->extradata, par->extradata_size, buf,
		    bufsize);
	case AV_CODEC_ID_AV1:
		return codecs_av01(par->extradata, par->extradata_size, buf,
		    bufsize);
	default:
		return -EINVAL;
	}
}

#endif

/*
 * stages/encode_settings.h - the profile's video = { ... } and
 * audio = { ... } groups: names, types, defaults, ranges and one line of
 * documentation each, in one table.
 *
 * The transcode stage declares the table (its descriptor's `settings`), so
 * the daemon validates a profile against it and fills in the defaults; the
 * other stages that read one of these values (probe and graph: loudness and
 * deinterlace; hls_header, hls_footer, chunk_dash: the audio format) read it
 * through this table too, so a default lives here only.
 */
#ifndef LADDERD_ENCODE_SETTINGS_H
#define LADDERD_ENCODE_SETTINGS_H

#include "stage.h"

enum encode_setting {
	ENC_VIDEO_CODEC,
	ENC_VIDEO_PRESET,
	ENC_VIDEO_PROFILE,
	ENC_VIDEO_LEVEL,
	ENC_VIDEO_MAXRATE_FACTOR,
	ENC_VIDEO_BUFSIZE_FACTOR,
	ENC_VIDEO_CRF,
	ENC_VIDEO_DEINTERLACE,
	ENC_AUDIO_CODEC,
	ENC_AUDIO_BITRATE,
	ENC_AUDIO_CHANNELS,
	ENC_AUDIO_SAMPLE_RATE,
	ENC_AUDIO_LOUDNESS,
	ENC__COUNT
};

/*
 * The table's initialiser, ended by a NULL name: transcode's descriptor
 * is a constant object, so it takes the table as an object of its own
 * (ENCODE_SETTINGS_INIT); the other stages use encode_settings().
 */
#define ENCODE_SETTINGS_INIT                                                    \
	{                                                                       \
	[ENC_VIDEO_CODEC] = { "profile.video.codec",                    \
	    LADDERD_SETTING_STRING, "libx264", 0, 0,                    \
	    "libx264|libx265|libsvtav1",                                \
	    "video encoder (a rung's codec overrides it; HEVC and "     \
	    "AV1 need segment_type \"fmp4\")" },                        \
	/* The benchmark's and README's preset: fast, good enough. */   \
	[ENC_VIDEO_PRESET] = { "profile.video.preset",                  \
	    LADDERD_SETTING_STRING, "veryfast", 0, 0,                   \
	    "ultrafast|superfast|veryfast|faster|fast|medium|slow|"     \
	    "slower|veryslow",                                          \
	    "encoder speed (x264 names; mapped for x265 and "           \
	    "SVT-AV1)" },                                               \
	[ENC_VIDEO_PROFILE] = { "profile.video.profile",                \
	    LADDERD_SETTING_STRING, "high", 0, 0,                       \
	    "baseline|main|high", "H.264 profile" },                    \
	[ENC_VIDEO_LEVEL] = { "profile.video.level",                    \
	    LADDERD_SETTING_STRING, "", 0, 0, NULL,                     \
	    "H.264 level such as \"4.1\" (empty: the encoder's "        \
	    "choice)" },                                                \
	[ENC_VIDEO_MAXRATE_FACTOR] = { "profile.video.maxrate_factor",  \
	    LADDERD_SETTING_FLOAT, "1.07", 1, 4, NULL,                  \
	    "VBV maxrate as a multiple of the rung's bit rate" },       \
	[ENC_VIDEO_BUFSIZE_FACTOR] = { "profile.video.bufsize_factor",  \
	    LADDERD_SETTING_FLOAT, "1.5", 0.1, 10, NULL,                \
	    "VBV buffer as a multiple of the rung's bit rate" },        \
	[ENC_VIDEO_CRF] = { "profile.video.crf", LADDERD_SETTING_INT,   \
	    "0", 0, 51, NULL,                                           \
	    "capped CRF within the same VBV (0: ABR at the rung's "     \
	    "bit rate; AV1 is always capped CRF, 0 = CRF 24)" },        \
	[ENC_VIDEO_DEINTERLACE] = { "profile.video.deinterlace",        \
	    LADDERD_SETTING_STRING, "auto", 0, 0, "auto|on|off",        \
	    "bwdif (auto: when the probe finds the source "             \
	    "interlaced)" },                                            \
	[ENC_AUDIO_CODEC] = { "profile.audio.codec",                    \
	    LADDERD_SETTING_STRING, "aac", 0, 0, "aac",                 \
	    "audio encoder (AAC-LC)" },                                 \
	[ENC_AUDIO_BITRATE] = { "profile.audio.bitrate",                \
	    LADDERD_SETTING_INT, "128", 16, 512, NULL,                  \
	    "audio bit rate, kbit/s" },                                 \
	[ENC_AUDIO_CHANNELS] = { "profile.audio.channels",              \
	    LADDERD_SETTING_INT, "2", 1, 2, NULL,                       \
	    "audio channels (downmixed)" },                             \
	[ENC_AUDIO_SAMPLE_RATE] = { "profile.audio.sample_rate",        \
	    LADDERD_SETTING_INT, "48000", 8000, 96000, NULL,            \
	    "audio sample rate, Hz" },                                  \
	/* loudnorm takes targets from -70 up to -5 LUFS. */            \
	[ENC_AUDIO_LOUDNESS] = { "profile.audio.loudness",              \
	    LADDERD_SETTING_FLOAT, "0", -70, -5, "0",                   \
	    "EBU R128 target in LUFS, two-pass loudnorm (0: off)" },    \
	[ENC__COUNT] = { NULL, 0, NULL, 0, 0, NULL, NULL },             \
	}

/*
 * The table as a function rather than an object, so a stage that includes
 * this header for one value carries no unused copy.
 */
static inline const struct ladderd_setting *
encode_settings(void)
{
	static const struct ladderd_setting table[ENC__COUNT + 1] =
	    ENCODE_SETTINGS_INIT;

	return table;
}

/* One setting of the table. */
static inline const struct ladderd_setting *
encode_setting(enum encode_setting which)
{
	return &encode_settings()[which];
}

#endif /* LADDERD_ENCODE_SETTINGS_H */

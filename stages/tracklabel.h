/*
 * tracklabel.h - a source stream's language tag and title, made safe for
 * the manifests (hls_header's audio tracks, the subtitles stage). Both come
 * from the dropped file (or a manifest): hostile until here. Not installed:
 * not part of the stage ABI.
 */
#ifndef LADDERD_TRACKLABEL_H
#define LADDERD_TRACKLABEL_H

#include <string.h>

/*
 * A language tag fit for HLS LANGUAGE= and DASH lang= (1..35 characters of
 * [A-Za-z0-9-]), or NULL: "und" is no language.
 */
static inline const char *
ladderd_track_language(const char *lang)
{
	size_t n = lang != NULL ? strlen(lang) : 0;

	if (n == 0 || n > 35 || strcmp(lang, "und") == 0 ||
	    strspn(lang, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != n)
		return NULL;
	return lang;
}

/*
 * `in` made safe for a quoted HLS attribute and XML: valid UTF-8 only, no
 * control characters, no '"', '\\', '<', '>', '&', at most `n` - 1 bytes,
 * cut on a character boundary.
 */
static inline void
ladderd_track_label(const char *in, char *out, size_t n)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;

	if (n == 0)
		return;
	while (*p != '\0') {
		size_t len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 :
		    (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
		size_t k;

		for (k = 1; len > 1 && k < len; k++)
			if ((p[k] & 0xc0) != 0x80)
				break;
		if (len == 0 || k < len || (len == 2 && *p < 0xc2)) {
			p++; /* not UTF-8: drop the byte */
			continue;
		}
		if (len == 1 && (*p < 0x20 || *p == 0x7f || *p == '"' ||
		    *p == '\\' || *p == '<' || *p == '>' || *p == '&')) {
			p++;
			continue;
		}
		if (o + len >= n)
			break;
		memcpy(out + o, p, len);
		o += len;
		p += len;
	}
	out[o] = '\0';
}

#endif

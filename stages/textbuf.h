/*
 * textbuf.h - a growing text buffer for stages that assemble playlists
 * (hls_footer, iframes). `failed` sticks after an allocation failure, so
 * callers check once at the end. Not installed: not part of the stage ABI.
 */
#ifndef LADDERD_TEXTBUF_H
#define LADDERD_TEXTBUF_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct textbuf {
	char *data;
	size_t len, cap;
	int failed;
};

static inline void textbuf_printf(struct textbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void
textbuf_printf(struct textbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		size_t room = b->data ? b->cap - b->len : 0;

		va_start(ap, fmt);
		n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = (b->cap + (size_t)n + 1) * 2;
			char *p = realloc(b->data, cap);

			if (p == NULL) {
				b->failed = 1;
				return;
			}
			b->data = p;
			b->cap = cap;
		}
	}
}

#endif

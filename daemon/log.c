/*
 * log.c - stderr or syslog logging with levels. A process-wide prefix (for
 * example "job=trailer ") is put in front of every line so each task's lines
 * can be grepped, like Postfix's queue id.
 *
 * Messages carry text from outside (drop names, manifest fields, stage
 * errors quoting them): every control byte is escaped (\n, \r, \t, \xNN,
 * and the C1 range of UTF-8 as \u0080..\u009f) before a line is written,
 * so no message can start a line of its own or drive a terminal.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static struct {
	int foreground;
	int verbose;
	char prefix[128];
} log_state = { 1, 0, "" };

void
log_init(int foreground, int verbose, const char *ident)
{
	log_state.foreground = foreground;
	log_state.verbose = verbose;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int
log_verbose(void)
{
	return log_state.verbose;
}

void
log_set_prefix(const char *prefix)
{
	log_escape(prefix ? prefix : "", log_state.prefix,
	    sizeof(log_state.prefix));
}

static const char *
level_name(int level)
{
	switch (level) {
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

static void log_vlevel_str(int level, const char *msg, const char *err);

/*
 * Copy `in` to `out` (size > 0, always NUL-terminated) with control bytes
 * escaped. Truncates at a character boundary when `out` is too small.
 */
void
log_escape(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		char esc[8];
		size_t len = 0;

		if (*p == '\n' || *p == '\r' || *p == '\t') {
			esc[len++] = '\\';
			esc[len++] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
		} else if (*p < 0x20 || *p == 0x7f) {
			esc[len++] = '\\';
			esc[len++] = 'x';
			esc[len++] = hex[*p >> 4];
			esc[len++] = hex[*p & 15];
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			/* U+0080..U+009F: C1 controls (CSI is U+009B). */
			p++;
			len = (size_t)snprintf(esc, sizeof(esc), "\\u%04x",
			    (unsigned)*p);
		} else
			esc[len++] = (char)*p;
		if (n + len >= size)
			break;
		memcpy(out + n, esc, len);
		n += len;
	}
	out[n] = '\0';
}

void
log_vlevel(int level, const char *fmt, va_list ap)
{
	char raw[4096], msg[4096];

	if (level == LOG_DEBUG && !log_state.verbose)
		return;
	(void)vsnprintf(raw, sizeof(raw), fmt, ap);
	log_escape(raw, msg, sizeof(msg));
	if (log_state.foreground) {
		/* One fprintf per line so lines of concurrent rungs don't mix. */
		fprintf(stderr, "ladderd[%ld]: %s: %s%s\n", (long)getpid(),
		    level_name(level), log_state.prefix, msg);
		fflush(stderr);
	} else
		syslog(level, "%s%s", log_state.prefix, msg);
}

#define LOG_WRAPPER(NAME, LEVEL)                                             \
	void NAME(const char *fmt, ...)                                      \
	{                                                                    \
		va_list ap;                                                  \
		va_start(ap, fmt);                                           \
		log_vlevel(LEVEL, fmt, ap);                                  \
		va_end(ap);                                                  \
	}
LOG_WRAPPER(log_warnx, LOG_WARNING)
LOG_WRAPPER(log_info, LOG_INFO)
LOG_WRAPPER(log_debug, LOG_DEBUG)

/* Like log_warnx, with ": strerror(errno)" appended. */
void
log_warn(const char *fmt, ...)
{
	char msg[4096];
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s: %s", msg, strerror(saved));
}

void
fatal(const char *fmt, ...)
{
	char msg[4096];
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_vlevel_str(LOG_ERR, msg, strerror(saved));
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlevel(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

static void
log_vlevel_str(int level, const char *raw, const char *err)
{
	char msg[4096];

	log_escape(raw, msg, sizeof(msg));
	if (log_state.foreground) {
		fprintf(stderr, "ladderd[%ld]: %s: %s%s: %s\n", (long)getpid(),
		    level_name(level), log_state.prefix, msg, err);
		fflush(stderr);
	} else
		syslog(level, "%s%s: %s", log_state.prefix, msg, err);
}

/*
 * log.c - logging with levels, to stderr. A process-wide prefix (for
 * example "job=trailer ") is put in front of every line so each task's lines
 * can be grepped, like Postfix's queue id. Lines on stderr start with a UTC
 * timestamp unless stderr is the journal (JOURNAL_STREAM), which stamps
 * them itself.
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
#include <sys/stat.h>
#include <syslog.h> /* the LOG_* level numbers */
#include <time.h>
#include <unistd.h>

#include "log.h"

static struct {
	int verbose;
	int quiet; /* LADDERD_QUIET: warnings and errors only (run's display) */
	int stamp; /* timestamps on stderr lines: -1 not decided yet */
	char prefix[128];
} log_state = { 0, 0, -1, "" };

/*
 * A thread's own prefix, over the process's: a rung worker runs other
 * units (the shared decoder, the audio) as threads, whose lines say which
 * unit they are.
 */
static _Thread_local char log_thread_prefix[128];

/*
 * Is stderr the journal? systemd says so in JOURNAL_STREAM ("DEV:INO" of
 * the stream it connected to stderr); the journal stamps lines itself.
 * Anything else (a terminal, a file, a pipe to another logger) gets our
 * own timestamps.
 */
static int
log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/* "2026-11-28T10:00:00.000Z " (UTC, like event times), or "" when stderr
 * is the journal. */
static void
log_timestamp(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	char base[32];

	buf[0] = '\0';
	if (log_state.stamp < 0)
		log_state.stamp = !log_stderr_is_journal();
	if (!log_state.stamp)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) > 0)
		(void)snprintf(buf, size, "%.24s.%03uZ ", base,
		    (unsigned)(ts.tv_nsec / 1000000) % 1000u);
}

/* Lines always go to stderr: under systemd the journal takes them. */
void
log_init(int verbose)
{
	log_state.verbose = verbose;
	log_state.quiet = getenv("LADDERD_QUIET") != NULL && !verbose;
}

void
log_set_prefix(const char *prefix)
{
	log_escape(prefix ? prefix : "", log_state.prefix,
	    sizeof(log_state.prefix));
}

void
log_set_thread_prefix(const char *prefix)
{
	log_escape(prefix ? prefix : "", log_thread_prefix,
	    sizeof(log_thread_prefix));
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

/*
 * Write one line: `raw` (escaped here), with ": err" when err is not NULL.
 * One fprintf per line so lines of concurrent rungs don't mix.
 */
static void
log_line(int level, const char *raw, const char *err)
{
	char msg[4096], stamp[48];

	log_escape(raw, msg, sizeof(msg));
	log_timestamp(stamp, sizeof(stamp));
	fprintf(stderr, "%sladderd[%ld]: %s: %s%s%s%s\n", stamp, (long)getpid(),
	    level_name(level),
	    log_thread_prefix[0] ? log_thread_prefix : log_state.prefix, msg,
	    err ? ": " : "", err ? err : "");
	fflush(stderr);
}

__attribute__((format(printf, 2, 0))) static void
log_vlevel(int level, const char *fmt, va_list ap)
{
	char raw[4096];

	if (level == LOG_DEBUG && !log_state.verbose)
		return;
	if (level == LOG_INFO && log_state.quiet)
		return;
	(void)vsnprintf(raw, sizeof(raw), fmt, ap);
	log_line(level, raw, NULL);
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

/* The message with ": strerror(saved)" appended. */
__attribute__((format(printf, 3, 0))) static void
log_verrno(int level, int saved, const char *fmt, va_list ap)
{
	char msg[4096];

	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	log_line(level, msg, strerror(saved));
}

/* Like log_warnx, with ": strerror(errno)" appended. */
void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_verrno(LOG_WARNING, saved, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_verrno(LOG_ERR, saved, fmt, ap);
	va_end(ap);
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

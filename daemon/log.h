/*
 * log.h - logging for the daemon and its workers (OpenBSD log.h style).
 * In the foreground lines go to stderr (journald takes them), otherwise to
 * syslog. Only "logging" modules (main, engine, chord, supervisor) log;
 * helpers return error codes.
 */
#ifndef LADDERD_LOG_H
#define LADDERD_LOG_H

#include <stdarg.h>
#include <stddef.h>

void log_init(int foreground, int verbose, const char *ident);
void log_set_prefix(const char *prefix);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vlevel(int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
int log_verbose(void);
void log_escape(const char *in, char *out, size_t size);

#endif

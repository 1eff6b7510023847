/*
 * log.h - logging for the daemon and its workers (OpenBSD log.h style).
 * Lines go to stderr (under systemd, journald takes them). Only "logging"
 * modules (main, engine, chord, supervisor) log; helpers return error codes.
 */
#ifndef LADDERD_LOG_H
#define LADDERD_LOG_H

#include <stdarg.h>
#include <stddef.h>

void log_init(int verbose);
void log_set_prefix(const char *prefix);
/* This thread's prefix, used instead of the process's when not empty. */
void log_set_thread_prefix(const char *prefix);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void log_escape(const char *in, char *out, size_t size);

#endif

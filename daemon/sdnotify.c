/*
 * sdnotify.c - systemd readiness, status and watchdog (see sdnotify.h).
 *
 * libsystemd is loaded with dlopen, and only by a daemon systemd started
 * (NOTIFY_SOCKET set): linked, it and the five libraries it needs
 * (libgcrypt, liblzma, libzstd, liblz4, libcap) cost the idle supervisor
 * about 1 MB of RSS and every exec'd worker 1.6 ms, for nothing outside
 * systemd. configure still checks its header (--with-systemd).
 *
 * The environment is read once and cleared (sd_notify's unset_environment
 * would lose it after the first message): job and notify workers must not
 * talk to systemd, which accepts only the main pid (NotifyAccess=main)
 * and would log every stray message. The socket path is kept here and
 * put back only for the duration of one sd_notify call.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "sdnotify.h"

#ifdef HAVE_SYSTEMD
/* The soname of libsystemd since 2014 (systemd 209). */
#define LIBSYSTEMD "libsystemd.so.0"

static char notify_socket[256];
static uint64_t watchdog_us, watchdog_next;
static __typeof__(sd_notify) *p_sd_notify;

int
ladderd_sdnotify_init(void)
{
	const char *s = getenv("NOTIFY_SOCKET");
	__typeof__(sd_watchdog_enabled) *p_watchdog_enabled;
	void *lib;
	uint64_t us = 0;
	int rc = 0;

	if (s == NULL || s[0] == '\0')
		goto out;
	if (strlen(s) >= sizeof(notify_socket)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	/* Never closed: it stays mapped until exit, like a linked library. */
	if ((lib = dlopen(LIBSYSTEMD, RTLD_NOW | RTLD_LOCAL)) == NULL ||
	    (p_sd_notify = (__typeof__(sd_notify) *)dlsym(lib,
		 "sd_notify")) == NULL ||
	    (p_watchdog_enabled = (__typeof__(sd_watchdog_enabled) *)dlsym(
		 lib, "sd_watchdog_enabled")) == NULL) {
		p_sd_notify = NULL;
		rc = -ENOENT;
		goto out;
	}
	snprintf(notify_socket, sizeof(notify_socket), "%s", s);
	/* WATCHDOG_PID, when set, must name us (sd_watchdog_enabled checks). */
	if (p_watchdog_enabled(0, &us) > 0)
		watchdog_us = us;
out:
	(void)unsetenv("NOTIFY_SOCKET");
	(void)unsetenv("WATCHDOG_USEC");
	(void)unsetenv("WATCHDOG_PID");
	return rc;
}

static void
send_state(const char *state)
{
	if (p_sd_notify == NULL)
		return;
	/* Back for this call only: fork() never sees it set. */
	if (setenv("NOTIFY_SOCKET", notify_socket, 1) < 0)
		return;
	(void)p_sd_notify(1, state);
}

uint64_t
ladderd_sdnotify_watchdog(uint64_t now_us)
{
	if (watchdog_us == 0)
		return 0;
	if (now_us >= watchdog_next) {
		send_state("WATCHDOG=1");
		watchdog_next = now_us + watchdog_us / 2;
	}
	return watchdog_next;
}
#else
int
ladderd_sdnotify_init(void)
{
	return 0;
}

static void
send_state(const char *state)
{
	(void)state;
}

uint64_t
ladderd_sdnotify_watchdog(uint64_t now_us)
{
	(void)now_us;
	return 0;
}
#endif

void
ladderd_sdnotify_ready(void)
{
	send_state("READY=1");
}

void
ladderd_sdnotify_reloading(void)
{
	send_state("RELOADING=1");
}

void
ladderd_sdnotify_stopping(void)
{
	send_state("STOPPING=1");
}

void
ladderd_sdnotify_status(size_t queued, size_t deferred, int running,
    int stopping)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "STATUS=%s%zu queued, %zu deferred, "
	    "%d running", stopping ? "stopping: " : "", queued, deferred,
	    running);
	send_state(msg);
}

/*
 * sdnotify.c - systemd readiness, status and watchdog (see sdnotify.h).
 *
 * The environment is read once and cleared (sd_notify's unset_environment
 * would lose it after the first message): job and notify workers must not
 * talk to systemd, which accepts only the main pid (NotifyAccess=main)
 * and would log every stray message. The socket path is kept here and
 * put back only for the duration of one sd_notify call.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "sdnotify.h"

#ifdef HAVE_SYSTEMD
static char notify_socket[256];
static uint64_t watchdog_us, watchdog_next;

void
ladderd_sdnotify_init(void)
{
	const char *s = getenv("NOTIFY_SOCKET");
	uint64_t us = 0;

	/* WATCHDOG_PID must name us (sd_watchdog_enabled checks it). */
	if (sd_watchdog_enabled(0, &us) > 0)
		watchdog_us = us;
	if (s && strlen(s) < sizeof(notify_socket))
		snprintf(notify_socket, sizeof(notify_socket), "%s", s);
	(void)unsetenv("NOTIFY_SOCKET");
	(void)unsetenv("WATCHDOG_USEC");
	(void)unsetenv("WATCHDOG_PID");
	if (notify_socket[0] == '\0')
		watchdog_us = 0;
}

static void
send_state(const char *state)
{
	if (notify_socket[0] == '\0')
		return;
	/* Back for this call only: fork() never sees it set. */
	if (setenv("NOTIFY_SOCKET", notify_socket, 1) < 0)
		return;
	(void)sd_notify(1, state);
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
void
ladderd_sdnotify_init(void)
{
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

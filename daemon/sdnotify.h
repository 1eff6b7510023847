/*
 * sdnotify.h - tell systemd how the daemon is doing (Type=notify): READY=1
 * once it takes drops, STATUS= with the queue, RELOADING=1 around a config
 * reload, STOPPING=1 on SIGTERM, WATCHDOG=1 from the event loop when the
 * unit sets WatchdogSec=. Built on libsystemd's sd_notify when configure
 * found it (--with-systemd), loaded only when systemd started us; otherwise
 * every call does nothing. Send failures are ignored: systemd reports a
 * missing READY=1 or watchdog ping itself.
 */
#ifndef LADDERD_SDNOTIFY_H
#define LADDERD_SDNOTIFY_H

#include <stddef.h>
#include <stdint.h>

/*
 * Read NOTIFY_SOCKET and the watchdog settings (WATCHDOG_USEC, WATCHDOG_PID)
 * and remove them from the environment so the workers the daemon starts
 * neither ping nor inherit them. Call once, before forking anything.
 * Returns 0 (also when not under systemd), -ENOENT when libsystemd cannot
 * be loaded, -ENAMETOOLONG for an oversized NOTIFY_SOCKET.
 */
int ladderd_sdnotify_init(void);
void ladderd_sdnotify_ready(void);
void ladderd_sdnotify_reloading(void);
void ladderd_sdnotify_stopping(void);
void ladderd_sdnotify_status(size_t queued, size_t deferred, int running,
    int stopping);
/*
 * Ping the watchdog when one is due at `now_us` (CLOCK_MONOTONIC); returns
 * when the next ping is due (0: no watchdog). Pings go out at half the
 * WATCHDOG_USEC interval, so one late wake-up does not kill the daemon.
 */
uint64_t ladderd_sdnotify_watchdog(uint64_t now_us);

#endif
